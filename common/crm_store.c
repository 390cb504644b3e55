#include "crm_store.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_str.h"
#include "crm_keys.h"
#include "crm_log.h"

enum { CRM_STORE_LISTPACK_VALUE = 256 };

struct crm_store_t {
    char host[256];
    int port;
    char path[256];
    char password[256];
    int db;
    int timeout_ms;
    redisContext *ctx;
    int64_t next_try_ms;
    int backoff_ms;
    crm_store_err_t last;
    bool reader; /* crm_store_reader: loads no functions */
    bool checked; /* the settings the services assume were read once */
    unsigned long generation;
    char err[800];
    /* per stream, the number its next event gets if no other writer appends
       before this one's next commit (crm_append_lua appends the frames as
       sent when it does): learnt from each commit */
    struct {
        char stream[CRM_NAME_MAX];
        uint64_t next;
    } next[16];
    size_t nnext;
};

static uint64_t s_next_seq(const crm_store_t *self, const char *stream)
{
    for (size_t i = 0; i < self->nnext; i++)
        if (!strcmp(self->next[i].stream, stream))
            return self->next[i].next;
    return 0; /* never matches: the numbers are patched in by Redis */
}

static void s_next_seq_set(crm_store_t *self, const char *stream, uint64_t next)
{
    size_t i = 0;
    while (i < self->nnext && strcmp(self->next[i].stream, stream))
        i++;
    if (i == self->nnext) {
        if (self->nnext == sizeof self->next / sizeof self->next[0])
            return; /* more streams than expected: those patched by Redis */
        crm_copy(self->next[i].stream, sizeof self->next[i].stream, stream);
        self->nnext++;
    }
    self->next[i].next = next;
}

unsigned long crm_store_generation(const crm_store_t *self) { return self->generation; }

static void s_unwatch(crm_store_t *self);
void crm_store_unwatch(crm_store_t *self)
{
    crm_store_err_t last = self->last;
    s_unwatch(self);
    self->last = last; /* what the caller's failure was stays told */
}

crm_store_err_t crm_store_last_error(const crm_store_t *self) { return self->last; }

bool crm_store_passing(const crm_store_t *self)
{
    return self->last == CRM_STORE_DOWN || self->last == CRM_STORE_BUSY;
}

/* Error replies that pass by themselves; everything else is permanent. */
static crm_store_err_t s_classify(const char *reply)
{
    static const char *passing[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                                    "READONLY", "NOREPLICAS", "OOM", "NOSCRIPT", "MISCONF"};
    for (size_t i = 0; i < sizeof passing / sizeof passing[0]; i++)
        if (!strncmp(reply, passing[i], strlen(passing[i])))
            return CRM_STORE_BUSY;
    /* FUNCTION FLUSH behind our back: reconnecting loads the library again. */
    if (strstr(reply, "Function not found") || strstr(reply, "function not found"))
        return CRM_STORE_BUSY;
    return CRM_STORE_REFUSED;
}

/* ------------------------------------------------------------ connection */

static int s_parse_url(crm_store_t *self, const char *url)
{
    self->port = 6379;
    if (!strncmp(url, "unix://", 7)) {
        crm_fmt(self->path, sizeof self->path, "%s", url + 7);
        return self->path[0] ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *p = url + 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t) (at - p));
        const char *pw = colon ? colon + 1 : p;
        crm_fmt(self->password, sizeof self->password, "%.*s", (int) (at - pw), pw);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    const char *colon = strchr(p, ':');
    if (colon && slash && colon > slash)
        colon = NULL;
    size_t hostlen = colon ? (size_t) (colon - p) : slash ? (size_t) (slash - p) : strlen(p);
    if (hostlen == 0 || hostlen >= sizeof self->host)
        return -1;
    memcpy(self->host, p, hostlen);
    self->host[hostlen] = 0;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (port <= 0 || port > 65535 || (*end && *end != '/'))
            return -1;
        self->port = (int) port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (db < 0 || db > 10000 || *end)
            return -1;
        self->db = (int) db;
    }
    return 0;
}

static void s_drop(crm_store_t *self, const char *why)
{
    if (self->ctx) {
        crm_fmt(self->err, sizeof self->err, "%s: %s", why,
                 self->ctx->errstr[0] ? self->ctx->errstr : "connection lost");
        redisFree(self->ctx);
        self->ctx = NULL;
    }
    self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 100;
    if (self->backoff_ms > 5000)
        self->backoff_ms = 5000;
    self->next_try_ms = crm_mono_ms() + self->backoff_ms;
}

static int s_vformat(char **out, const char *fmt, va_list ap);

/* redisvCommand with our formatting: NULL when the command could not be
   formatted, sent or answered. */
static redisReply *s_vcommand(redisContext *c, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = s_vformat(&cmd, fmt, ap);
    if (len < 0) {
        /* as redisvCommand says it; the caller logs errstr */
        c->err = REDIS_ERR_OTHER;
        crm_fmt(c->errstr, sizeof c->errstr, "the command could not be formatted (%.40s)", fmt);
        return NULL;
    }
    int ok = redisAppendFormattedCommand(c, cmd, (size_t) len);
    free(cmd);
    void *reply = NULL;
    if (ok != REDIS_OK || redisGetReply(c, &reply) != REDIS_OK)
        return NULL;
    return reply;
}

static redisReply *s_raw(crm_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = s_vcommand(self->ctx, fmt, ap);
    va_end(ap);
    return r;
}

/* Redis settings the memory figures assume (deploy/README.md): told once,
   never refused; a Redis that does not allow CONFIG is not asked again. */
static void s_check_settings(crm_store_t *self)
{
    if (self->checked)
        return;
    self->checked = true;
    redisReply *r = s_raw(self, "CONFIG GET hash-max-listpack-value");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
        atoll(r->element[1]->str) < CRM_STORE_LISTPACK_VALUE)
        crm_warn("store.listpack_value", "hash-max-listpack-value=%s wanted=%d why=\"a hash with a longer value "
                 "takes about three times the memory (deploy/README.md, Redis)\"", r->element[1]->str,
                 CRM_STORE_LISTPACK_VALUE);
    freeReplyObject(r);
}

static int s_setup(crm_store_t *self)
{
    redisReply *r;
    if (self->password[0]) {
        r = s_raw(self, "AUTH %s", self->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            crm_fmt(self->err, sizeof self->err, "AUTH refused: %s", r ? r->str : "no reply");
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (self->db) {
        r = s_raw(self, "SELECT %d", self->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            crm_fmt(self->err, sizeof self->err, "SELECT %d refused", self->db);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (self->reader)
        return 0;
    r = s_raw(self, "FUNCTION LOAD REPLACE %s", crm_functions_lua);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        crm_fmt(self->err, sizeof self->err, "FUNCTION LOAD failed (Redis 7 or later needed): %s",
                 r && r->str ? r->str : "no reply");
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    s_check_settings(self);
    return 0;
}

/* Connects if not connected and the backoff allows it. */
static int s_ensure(crm_store_t *self)
{
    self->last = CRM_STORE_OK;
    if (self->ctx)
        return 0;
    self->last = CRM_STORE_DOWN;
    if (crm_mono_ms() < self->next_try_ms)
        return -1;
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    self->ctx = self->path[0] ? redisConnectUnixWithTimeout(self->path, tv)
                              : redisConnectWithTimeout(self->host, self->port, tv);
    if (!self->ctx || self->ctx->err) {
        crm_fmt(self->err, sizeof self->err, "cannot connect to Redis at %s:%d: %s",
                 self->path[0] ? self->path : self->host, self->port,
                 self->ctx ? self->ctx->errstr : "out of memory");
        if (self->ctx) {
            redisFree(self->ctx);
            self->ctx = NULL;
        }
        s_drop(self, "connect");
        return -1;
    }
    if (redisSetTimeout(self->ctx, tv) != REDIS_OK || s_setup(self) != 0) {
        char why[sizeof self->err];
        memcpy(why, self->err, sizeof why);
        s_drop(self, "setup");
        memcpy(self->err, why, sizeof why);
        return -1;
    }
    if (self->backoff_ms)
        crm_info("redis.reconnected", "redis=%s:%d", self->path[0] ? self->path : self->host,
                 self->port);
    self->backoff_ms = 0;
    self->last = CRM_STORE_OK;
    self->generation++;
    return 0;
}

/* Drops a WATCH the caller may have set, when there is a connection. */
static void s_unwatch(crm_store_t *self)
{
    if (!self->ctx)
        return;
    redisReply *r = redisCommand(self->ctx, "UNWATCH");
    if (!r)
        s_drop(self, "UNWATCH");
    freeReplyObject(r);
}

static crm_store_t *s_new(const char *url, int timeout_ms, bool reader)
{
    crm_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->reader = reader;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    if (!url || s_parse_url(self, url) != 0) {
        fprintf(stderr, "bad Redis URL '%s': expected redis://[:password@]host:port[/db] or "
                        "unix:///path\n", url ? url : "");
        free(self);
        return NULL;
    }
    if (s_ensure(self) != 0) {
        fprintf(stderr, "%s\n", self->err);
        free(self);
        return NULL;
    }
    return self;
}

crm_store_t *crm_store_new(const char *url, int timeout_ms) { return s_new(url, timeout_ms, false); }

crm_store_t *crm_store_reader(const char *url, int timeout_ms) { return s_new(url, timeout_ms, true); }

void crm_store_destroy(crm_store_t **self_p)
{
    if (self_p && *self_p) {
        if ((*self_p)->ctx)
            redisFree((*self_p)->ctx);
        free(*self_p);
        *self_p = NULL;
    }
}

const char *crm_store_error(const crm_store_t *self) { return self->err; }

bool crm_store_connected(const crm_store_t *self) { return self->ctx != NULL; }

static redisReply *s_checked(crm_store_t *self, redisReply *r, const char *what)
{
    if (!r) {
        crm_error("redis.failed", "command=%s error=\"%s\"", what,
                  self->ctx && self->ctx->errstr[0] ? self->ctx->errstr : "no reply");
        s_drop(self, what);
        self->last = CRM_STORE_DOWN;
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char v[200];
        self->last = s_classify(r->str);
        crm_error("redis.error", "command=%s reply=\"%s\" passing=%s", what,
                  crm_log_value(r->str, v, sizeof v), self->last == CRM_STORE_BUSY ? "yes" : "no");
        crm_fmt(self->err, sizeof self->err, "%s: %s", what, r->str);
        if (strstr(r->str, "unction not found"))
            s_drop(self, what); /* reconnect = FUNCTION LOAD again */
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *crm_store_cmd(crm_store_t *self, const char *fmt, ...)
{
    if (s_ensure(self) != 0)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = s_vcommand(self->ctx, fmt, ap);
    va_end(ap);
    char what[32];
    crm_fmt(what, sizeof what, "%.*s", (int) strcspn(fmt, " "), fmt);
    return s_checked(self, r, what);
}

redisReply *crm_store_cmdargv(crm_store_t *self, int argc, const char **argv, const size_t *lens)
{
    if (s_ensure(self) != 0)
        return NULL;
    redisReply *r = redisCommandArgv(self->ctx, argc, argv, lens);
    char what[32];
    crm_fmt(what, sizeof what, "%s", argc > 0 ? argv[0] : "?");
    return s_checked(self, r, what);
}

const redisReply *crm_reply_field_reply(const redisReply *pairs, const char *name)
{
    for (size_t i = 0; pairs && pairs->type == REDIS_REPLY_ARRAY && i + 1 < pairs->elements; i += 2)
        if (pairs->element[i]->type == REDIS_REPLY_STRING && !strcmp(pairs->element[i]->str, name))
            return pairs->element[i + 1];
    return NULL;
}

const char *crm_reply_field(const redisReply *pairs, const char *name)
{
    const redisReply *r = crm_reply_field_reply(pairs, name);
    return r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

const char *crm_reply_field_or(const redisReply *pairs, const char *name, const char *fallback)
{
    const char *v = crm_reply_field(pairs, name);
    return v ? v : fallback;
}

/* ----------------------------------------------------------------- ids */

void crm_new_id(char *out, size_t size)
{
    static char prefix[17];
    static unsigned long long counter;
    if (!prefix[0]) {
        unsigned char rnd[8] = {0};
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(rnd, 1, sizeof rnd, f) != sizeof rnd) {
            /* Without urandom, time and pid still make clashes unlikely. */
            unsigned long long t = (unsigned long long) crm_mono_us() ^ ((unsigned long long) getpid() << 40);
            memcpy(rnd, &t, sizeof rnd);
        }
        if (f)
            fclose(f);
        for (int i = 0; i < 8; i++)
            crm_fmt(prefix + 2 * i, 3, "%02x", rnd[i]);
    }
    crm_fmt(out, size, "%s-%llx", prefix, ++counter);
}

/* ------------------------------------------------------------------ tx */

struct crm_tx_t {
    char **cmds;
    size_t *lens;
    size_t n, cap;
    crm_emit_t *emits;
    size_t nemits, emits_cap;
    char producer[CRM_NAME_MAX];
    char maxlen[24];
    bool failed;
    int *failed_idx; /* commands of the last EXEC Redis refused */
    size_t nfailed, failed_cap;
    redisReply *exec;
    redisReply **pipe; /* replies of crm_store_pipeline */
    size_t npipe;
};

crm_tx_t *crm_tx_new(const char *producer, long long stream_maxlen)
{
    crm_tx_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    crm_fmt(self->producer, sizeof self->producer, "%s", producer ? producer : "crm");
    crm_fmt(self->maxlen, sizeof self->maxlen, "%lld", stream_maxlen > 0 ? stream_maxlen : 1000000);
    return self;
}

void crm_tx_reset(crm_tx_t *self)
{
    for (size_t i = 0; i < self->n; i++)
        free(self->cmds[i]);
    for (size_t i = 0; i < self->nemits; i++)
        free(self->emits[i].frame);
    self->n = self->nemits = 0;
    self->failed = false;
    self->nfailed = 0;
    for (size_t i = 0; i < self->npipe; i++)
        freeReplyObject(self->pipe[i]);
    free(self->pipe);
    self->pipe = NULL;
    self->npipe = 0;
    if (self->exec) {
        freeReplyObject(self->exec);
        self->exec = NULL;
    }
}

void crm_tx_destroy(crm_tx_t **self_p)
{
    if (self_p && *self_p) {
        crm_tx_t *self = *self_p;
        crm_tx_reset(self);
        free(self->cmds);
        free(self->lens);
        free(self->emits);
        free(self->failed_idx);
        free(self);
        *self_p = NULL;
    }
}

size_t crm_tx_size(const crm_tx_t *self) { return self->n; }

static int s_push(crm_tx_t *self, char *cmd, int len);

size_t crm_tx_failed(const crm_tx_t *self, const int **idx)
{
    if (idx)
        *idx = self->failed_idx;
    return self->nfailed;
}

char *crm_tx_failed_blob(const crm_tx_t *self, int except, size_t *len)
{
    size_t total = 0;
    *len = 0;
    for (size_t i = 0; i < self->nfailed; i++)
        if (self->failed_idx[i] != except)
            total += self->lens[self->failed_idx[i]];
    char *blob = total ? malloc(total) : NULL;
    for (size_t i = 0; blob && i < self->nfailed; i++) {
        if (self->failed_idx[i] == except)
            continue;
        memcpy(blob + *len, self->cmds[self->failed_idx[i]], self->lens[self->failed_idx[i]]);
        *len += self->lens[self->failed_idx[i]];
    }
    return blob;
}

char *crm_tx_failed_blob_in(const crm_tx_t *self, int from, int to, size_t *len)
{
    size_t total = 0;
    *len = 0;
    for (size_t i = 0; i < self->nfailed; i++)
        if (self->failed_idx[i] >= from && self->failed_idx[i] < to)
            total += self->lens[self->failed_idx[i]];
    char *blob = total ? malloc(total) : NULL;
    for (size_t i = 0; blob && i < self->nfailed; i++) {
        int k = self->failed_idx[i];
        if (k < from || k >= to)
            continue;
        memcpy(blob + *len, self->cmds[k], self->lens[k]);
        *len += self->lens[k];
    }
    return blob;
}

/* Length of the one Redis protocol command at p ("*N\r\n" then N bulk
   strings "$L\r\n...\r\n"), or 0 when it is not whole within n. */
static size_t s_resp_command(const char *p, size_t n)
{
    size_t i = 0;
    long long count = -1;
    char *end;
    if (n < 4 || p[0] != '*')
        return 0;
    count = strtoll(p + 1, &end, 10);
    if (count <= 0 || count > 1000000 || (size_t) (end - p) + 2 > n || end[0] != '\r' || end[1] != '\n')
        return 0;
    i = (size_t) (end - p) + 2;
    for (long long k = 0; k < count; k++) {
        if (i >= n || p[i] != '$')
            return 0;
        long long len = strtoll(p + i + 1, &end, 10);
        size_t hdr = (size_t) (end - (p + i));
        if (len < 0 || i + hdr + 2 > n || end[0] != '\r' || end[1] != '\n')
            return 0;
        i += hdr + 2;
        if ((unsigned long long) len > n - i || n - i - (size_t) len < 2 || p[i + len] != '\r' || p[i + len + 1] != '\n')
            return 0;
        i += (size_t) len + 2;
    }
    return i;
}

int crm_tx_raw(crm_tx_t *self, const char *blob, size_t len)
{
    int count = 0;
    for (size_t at = 0; at < len;) {
        size_t k = s_resp_command(blob + at, len - at);
        char *cmd = k ? malloc(k) : NULL;
        if (!cmd)
            return -1;
        memcpy(cmd, blob + at, k);
        if (s_push(self, cmd, (int) k) < 0)
            return -1;
        at += k;
        count++;
    }
    return count;
}

static int s_push(crm_tx_t *self, char *cmd, int len)
{
    if (len < 0 || !cmd) {
        self->failed = true;
        return -1;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        char **cmds = realloc(self->cmds, cap * sizeof *cmds);
        if (cmds)
            self->cmds = cmds;
        size_t *lens = realloc(self->lens, cap * sizeof *lens);
        if (lens)
            self->lens = lens;
        if (!cmds || !lens) {
            free(cmd);
            self->failed = true;
            return -1;
        }
        self->cap = cap;
    }
    self->cmds[self->n] = cmd;
    self->lens[self->n] = (size_t) len;
    return (int) self->n++;
}

/* Writes `v` in decimal at `p`; returns the end. */
static char *s_utoa(char *p, unsigned long long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* The Redis protocol, written into a buffer sized with these bounds: a
   command's header, and each argument's framing beside its bytes. */
#define S_RESP_HEAD_MAX (1 + 20 + 2)
#define S_RESP_ARG_MAX (1 + 20 + 2 + 2)

static char *s_resp_head(char *p, size_t argc)
{
    *p++ = '*';
    p = s_utoa(p, argc);
    *p++ = '\r', *p++ = '\n';
    return p;
}

static char *s_resp_arg(char *p, const char *arg, size_t n)
{
    *p++ = '$';
    p = s_utoa(p, n);
    *p++ = '\r', *p++ = '\n';
    if (n)
        memcpy(p, arg, n);
    p += n;
    *p++ = '\r', *p++ = '\n';
    return p;
}

/* Does crm_store_format take `fmt` itself? Yes for %s, %b, %% and d, i, u
   with no size, l or ll: every format of ours. Anything else (flags,
   widths, x, f, h, ...) goes to hiredis, which knows them all. */
static bool s_fmt_simple(const char *fmt)
{
    for (const char *c = fmt; *c; c++) {
        if (*c != '%' || !c[1])
            continue;
        c++;
        if (*c == 's' || *c == 'b' || *c == '%')
            continue;
        if (*c == 'l' && *++c == 'l')
            c++;
        if (*c != 'd' && *c != 'i' && *c != 'u')
            return false;
    }
    return true;
}

/* A growing buffer that starts on the stack. */
typedef struct {
    char *p;
    size_t n, cap;
    bool heap;
} s_buf_t;

static int s_buf_put(s_buf_t *b, const void *src, size_t n)
{
    if (n > b->cap - b->n) {
        size_t cap = b->cap * 2 > b->n + n ? b->cap * 2 : b->n + n + 256;
        char *g = b->heap ? realloc(b->p, cap) : malloc(cap);
        if (!g)
            return -1;
        if (!b->heap)
            memcpy(g, b->p, b->n);
        b->p = g, b->cap = cap, b->heap = true;
    }
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
    return 0;
}

static void s_buf_free(s_buf_t *b)
{
    if (b->heap)
        free(b->p);
}

/* hiredis's printf-like command formatting, without sprintf for each
   length and each argument (it was half of crm-dispatcher's instructions):
   arguments are split at the format's spaces, never at an argument's; a
   conversion makes an argument even when it writes nothing. */
static int s_vformat(char **out, const char *fmt, va_list ap)
{
    *out = NULL;
    if (!s_fmt_simple(fmt))
        return redisvFormatCommand(out, fmt, ap);
    char local[1024];
    size_t ends_local[64];
    s_buf_t data = {local, 0, sizeof local, false};
    s_buf_t ends = {(char *) ends_local, 0, sizeof ends_local, false};
    bool touched = false, failed = false;
    for (const char *c = fmt; *c && !failed; c++) {
        if (*c != '%' || !c[1]) {
            if (*c != ' ')
                failed = s_buf_put(&data, c, 1) != 0, touched = true;
            else if (touched)
                failed = s_buf_put(&ends, &data.n, sizeof data.n) != 0, touched = false;
            continue;
        }
        touched = true;
        c++;
        char num[24], *e = num;
        if (*c == 's') {
            const char *a = va_arg(ap, const char *);
            failed = s_buf_put(&data, a, strlen(a)) != 0;
        } else if (*c == 'b') {
            const char *a = va_arg(ap, const char *);
            size_t n = va_arg(ap, size_t);
            failed = s_buf_put(&data, a, n) != 0;
        } else if (*c == '%') {
            failed = s_buf_put(&data, "%", 1) != 0;
        } else {
            int size = 0;
            while (*c == 'l')
                size++, c++;
            unsigned long long u;
            if (*c == 'u') {
                u = size == 2 ? va_arg(ap, unsigned long long) : size ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            } else {
                long long v = size == 2 ? va_arg(ap, long long) : size ? va_arg(ap, long) : va_arg(ap, int);
                if (v < 0)
                    *e++ = '-';
                u = v < 0 ? 0ULL - (unsigned long long) v : (unsigned long long) v;
            }
            e = s_utoa(e, u);
            failed = s_buf_put(&data, num, (size_t) (e - num)) != 0;
        }
    }
    if (touched && !failed)
        failed = s_buf_put(&ends, &data.n, sizeof data.n) != 0;
    size_t argc = ends.n / sizeof(size_t);
    const size_t *end = (const size_t *) ends.p;
    size_t total = S_RESP_HEAD_MAX + argc * S_RESP_ARG_MAX + data.n;
    char *cmd = failed || total > INT_MAX ? NULL : malloc(total);
    int len = -1;
    if (cmd) {
        char *p = s_resp_head(cmd, argc);
        for (size_t i = 0, from = 0; i < argc; from = end[i++])
            p = s_resp_arg(p, data.p + from, end[i] - from);
        *out = cmd;
        len = (int) (p - cmd);
    }
    s_buf_free(&data);
    s_buf_free(&ends);
    return len;
}

int crm_store_format(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = s_vformat(out, fmt, ap);
    va_end(ap);
    return len;
}

int crm_tx_cmd(crm_tx_t *self, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = s_vformat(&cmd, fmt, ap);
    va_end(ap);
    return s_push(self, cmd, len);
}

/* The Redis protocol form of a command, in one allocation (hiredis's own
   formats every length with sprintf, a tenth of intake's time). */
static int s_format_argv(char **out, int argc, const char **argv, const size_t *lens)
{
    size_t total = S_RESP_HEAD_MAX, len[64], *l = len;
    size_t *heap = NULL;
    if (argc <= 0)
        return -1;
    if (argc > 64 && !lens) {
        if (!(heap = malloc((size_t) argc * sizeof *heap)))
            return -1;
        l = heap;
    }
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        if (!lens)
            l[i] = n;
        total += S_RESP_ARG_MAX + n;
    }
    char *cmd = malloc(total);
    if (!cmd) {
        free(heap);
        return -1;
    }
    char *p = s_resp_head(cmd, (size_t) argc);
    for (int i = 0; i < argc; i++)
        p = s_resp_arg(p, argv[i], lens ? lens[i] : l[i]);
    free(heap);
    *out = cmd;
    return (int) (p - cmd);
}

int crm_tx_cmdargv(crm_tx_t *self, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    /* lens NULL: C strings. */
    int len = s_format_argv(&cmd, argc, argv, lens);
    return s_push(self, cmd, len);
}

/* Encodes `msg` after filling what the producer owns. */
static int s_encode(crm_tx_t *self, crm_msg_t *msg, msgpack_sbuffer *buf, size_t *off)
{
    if (!msg->id[0])
        crm_new_id(msg->id, sizeof msg->id);
    if (!msg->ts)
        msg->ts = crm_now_ms();
    if (!msg->producer[0])
        crm_fmt(msg->producer, sizeof msg->producer, "%s", self->producer);
    crm_sbuffer_init(buf, 512);
    if (crm_msg_encode(msg, buf, off) != 0 || !msg->stream[0]) {
        msgpack_sbuffer_destroy(buf);
        self->failed = true;
        return -1;
    }
    return 0;
}

static int s_add_emit(crm_tx_t *self, const char *stream, char *frame, size_t len, size_t off,
                      int index)
{
    if (self->nemits == self->emits_cap) {
        size_t cap = self->emits_cap ? self->emits_cap * 2 : 8;
        crm_emit_t *grown = realloc(self->emits, cap * sizeof *grown);
        if (!grown) {
            free(frame);
            self->failed = true;
            return -1;
        }
        self->emits = grown;
        self->emits_cap = cap;
    }
    crm_emit_t *e = &self->emits[self->nemits];
    memset(e, 0, sizeof *e);
    crm_fmt(e->stream, sizeof e->stream, "%s", stream);
    e->frame = frame;
    e->len = len;
    e->seq_off = off;
    e->index = index;
    return (int) self->nemits++;
}

int crm_tx_emit(crm_tx_t *self, crm_msg_t *msg)
{
    msgpack_sbuffer buf;
    size_t off;
    if (s_encode(self, msg, &buf, &off) != 0)
        return -1;
    /* Appended at commit, one crm_append_lua for all streams. The sbuffer's data is
       malloc'ed; the emit takes it. */
    return s_add_emit(self, msg->stream, buf.data, buf.size, off, -1);
}

/* Writes `seq` into the frame's seq field, where crm_append_lua patches it
   too: a frame without room for it at its offset (none crm_msg_encode
   makes) is kept as it is, by both. */
static void s_patch_seq(crm_emit_t *e, uint64_t seq)
{
    if (e->seq_off > 0 && e->seq_off + 8 <= e->len)
        crm_frame_patch_seq(e->frame, e->seq_off, seq);
}

/* Queues one EVAL of crm_append_lua after the caller's commands for every
   event not yet queued, grouped by stream in order of first emit; each emit
   learns the call's index, its stream's place in the reply (group) and its
   own place in its stream's numbers. */
static int s_queue_appends(crm_store_t *store, crm_tx_t *self)
{
    size_t todo = 0;
    for (size_t i = 0; i < self->nemits; i++)
        todo += self->emits[i].index < 0;
    if (!todo)
        return 0;
    /* at most 2 keys, a count and a first number a stream, 2 arguments an event */
    size_t cap = 4 + 6 * todo;
    const char **argv = calloc(cap, sizeof *argv);
    size_t *lens = calloc(cap, sizeof *lens);
    char (*nums)[24] = calloc(3 * todo + 1, sizeof *nums); /* key count; count and first a stream; an offset an event */
    char (*keys)[2][96] = calloc(todo, sizeof *keys);
    bool *done = calloc(self->nemits, sizeof *done);
    int rc = -1;
    if (!argv || !lens || !nums || !keys || !done)
        goto out;
    /* the keys first (their count is argument 2), then the arguments */
    size_t groups = 0;
    for (size_t i = 0; i < self->nemits; i++) {
        if (done[i] || self->emits[i].index >= 0)
            continue;
        const char *stream = self->emits[i].stream;
        for (size_t k = i; k < self->nemits; k++)
            if (!done[k] && self->emits[k].index < 0 && !strcmp(self->emits[k].stream, stream)) {
                done[k] = true;
                self->emits[k].group = groups;
            }
        crm_fmt(keys[groups][0], sizeof keys[groups][0], CRM_KEY_EVENTS_FMT, stream);
        crm_fmt(keys[groups][1], sizeof keys[groups][1], CRM_KEY_SEQ_FMT, stream);
        groups++;
    }
    size_t a = 0, nn = 0;
#define S_ARG(s) (argv[a] = (s), lens[a] = strlen(argv[a]), a++)
    S_ARG("EVAL");
    S_ARG(crm_append_lua);
    crm_fmt(nums[nn], sizeof nums[nn], "%zu", 2 * groups);
    S_ARG(nums[nn++]);
    for (size_t g = 0; g < groups; g++) {
        S_ARG(keys[g][0]);
        S_ARG(keys[g][1]);
    }
    S_ARG(self->maxlen);
    int index = (int) self->n; /* the call's index in EXEC */
    for (size_t g = 0; g < groups; g++) {
        size_t count = 0, at = a;
        a += 2;
        uint64_t first = 0;
        for (size_t k = 0; k < self->nemits; k++) {
            crm_emit_t *e = &self->emits[k];
            if (e->index >= 0 || e->group != g)
                continue;
            if (!count)
                first = s_next_seq(store, e->stream);
            /* sent with the number it gets if no other writer comes first */
            if (first)
                s_patch_seq(e, first + count);
            crm_fmt(nums[nn], sizeof nums[nn], "%zu", e->seq_off);
            argv[a] = e->frame, lens[a++] = e->len;
            S_ARG(nums[nn++]);
            e->place = count++;
        }
        crm_fmt(nums[nn], sizeof nums[nn], "%zu", count);
        argv[at] = nums[nn], lens[at] = strlen(nums[nn++]);
        crm_fmt(nums[nn], sizeof nums[nn], "%llu", (unsigned long long) first);
        argv[at + 1] = nums[nn], lens[at + 1] = strlen(nums[nn++]);
    }
#undef S_ARG
    for (size_t k = 0; k < self->nemits; k++)
        if (self->emits[k].index < 0)
            self->emits[k].index = index;
    rc = crm_tx_cmdargv(self, (int) a, argv, lens) == index ? 0 : -1;
out:
    free(argv);
    free(lens);
    free(nums);
    free(keys);
    free(done);
    return rc;
}

int crm_tx_timer(crm_tx_t *self, const char *set, const char *timer_id, int64_t due_ms,
                 crm_msg_t *event)
{
    msgpack_sbuffer buf;
    size_t off;
    if (!event->ts)
        event->ts = due_ms;
    if (s_encode(self, event, &buf, &off) != 0)
        return -1;
    char zset[128], frames[140], meta[140], metav[96];
    crm_fmt(zset, sizeof zset, CRM_KEY_TIMERS_FMT, set);
    crm_fmt(frames, sizeof frames, "%s:frame", zset);
    crm_fmt(meta, sizeof meta, "%s:meta", zset);
    crm_fmt(metav, sizeof metav, "%s %zu", event->stream, off);
    int rc = crm_tx_cmd(self, "HSET %s %s %b", frames, timer_id, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    if (rc < 0 || crm_tx_cmd(self, "HSET %s %s %s", meta, timer_id, metav) < 0)
        return -1;
    return crm_tx_cmd(self, "ZADD %s %lld %s", zset, (long long) due_ms, timer_id);
}

int crm_tx_timer_cancel(crm_tx_t *self, const char *set, const char *timer_id)
{
    char zset[128];
    crm_fmt(zset, sizeof zset, CRM_KEY_TIMERS_FMT, set);
    if (crm_tx_cmd(self, "ZREM %s %s", zset, timer_id) < 0 ||
        crm_tx_cmd(self, "HDEL %s:frame %s", zset, timer_id) < 0)
        return -1;
    return crm_tx_cmd(self, "HDEL %s:meta %s", zset, timer_id);
}

int crm_tx_timer_cancel_many(crm_tx_t *self, const char *set, const char *const *timer_ids, size_t n)
{
    if (n == 0)
        return 0;
    char zset[128], frames[140], meta[140];
    crm_fmt(zset, sizeof zset, CRM_KEY_TIMERS_FMT, set);
    crm_fmt(frames, sizeof frames, "%s:frame", zset);
    crm_fmt(meta, sizeof meta, "%s:meta", zset);
    const char **argv = calloc(n + 2, sizeof *argv);
    if (!argv) {
        self->failed = true;
        return -1;
    }
    memcpy(argv + 2, timer_ids, n * sizeof *argv);
    const char *cmds[3][2] = {{"ZREM", zset}, {"HDEL", frames}, {"HDEL", meta}};
    int rc = 0;
    for (int k = 0; k < 3 && rc >= 0; k++) {
        argv[0] = cmds[k][0];
        argv[1] = cmds[k][1];
        rc = crm_tx_cmdargv(self, (int) n + 2, argv, NULL);
    }
    free(argv);
    return rc;
}

int crm_tx_due(crm_tx_t *self, const char *set, const char *id, int64_t due_ms)
{
    if (!id || !*id || strlen(id) > CRM_DUE_ID_MAX || strchr(id, ' ')) {
        /* Listed in a timers.fired event of 1024 at most: kept short. */
        self->failed = true;
        return -1;
    }
    return crm_tx_cmd(self, "ZADD " CRM_KEY_DUE_FMT " %lld %s", set, (long long) due_ms, id);
}

int crm_tx_due_cancel(crm_tx_t *self, const char *set, const char *id)
{
    return crm_tx_cmd(self, "ZREM " CRM_KEY_DUE_FMT " %s", set, id);
}

int crm_tx_due_cancel_many(crm_tx_t *self, const char *set, const char *const *ids, size_t n)
{
    if (n == 0)
        return 0;
    char zset[128];
    crm_fmt(zset, sizeof zset, CRM_KEY_DUE_FMT, set);
    const char **argv = calloc(n + 2, sizeof *argv);
    if (!argv) {
        self->failed = true;
        return -1;
    }
    argv[0] = "ZREM";
    argv[1] = zset;
    memcpy(argv + 2, ids, n * sizeof *argv);
    int rc = crm_tx_cmdargv(self, (int) n + 2, argv, NULL);
    free(argv);
    return rc;
}

int crm_store_commit(crm_store_t *self, crm_tx_t *tx) { return crm_store_commit_with(self, tx, NULL, NULL); }

int crm_store_commit_with(crm_store_t *self, crm_tx_t *tx, void (*meanwhile)(void *arg), void *arg)
{
    self->last = CRM_STORE_OK;
    if (tx->failed) {
        /* Out of memory, or an event that does not encode (no stream): a
           WATCH the caller set must not outlive this. */
        crm_error("tx.refused", "reason=\"could not build the transaction (out of memory or bad event)\"");
        s_unwatch(self);
        crm_fmt(self->err, sizeof self->err, "could not build the transaction");
        self->last = CRM_STORE_REFUSED;
        return -1;
    }
    if (s_queue_appends(self, tx) != 0) {
        crm_error("tx.refused", "reason=\"out of memory\"");
        s_unwatch(self);
        crm_fmt(self->err, sizeof self->err, "out of memory");
        self->last = CRM_STORE_BUSY;
        return -1;
    }
    if (tx->n == 0)
        return 0;
    if (s_ensure(self) != 0) {
        crm_warn("tx.not_committed", "reason=redis_unavailable error=\"%s\"", self->err);
        return -1;
    }
    if (tx->exec) {
        freeReplyObject(tx->exec);
        tx->exec = NULL;
    }
    redisContext *c = self->ctx;
    /* MULTI, the commands and EXEC in one piece: one copy into hiredis's
       buffer rather than one growth of it a command. */
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n", exec_cmd[] = "*1\r\n$4\r\nEXEC\r\n";
    size_t total = sizeof multi - 1 + sizeof exec_cmd - 1;
    for (size_t i = 0; i < tx->n; i++)
        total += tx->lens[i];
    char *all = malloc(total);
    int ok = all != NULL;
    if (ok) {
        size_t at = 0;
        memcpy(all, multi, sizeof multi - 1), at += sizeof multi - 1;
        for (size_t i = 0; i < tx->n; i++)
            memcpy(all + at, tx->cmds[i], tx->lens[i]), at += tx->lens[i];
        memcpy(all + at, exec_cmd, sizeof exec_cmd - 1);
        ok = redisAppendFormattedCommand(c, all, total) == REDIS_OK;
        free(all);
    }
    if (ok && meanwhile) {
        /* Sent whole, then the caller's work while Redis applies it (the
           connection is not to be used until the replies are read). */
        int done = 0;
        while (ok && !done)
            ok = redisBufferWrite(c, &done) == REDIS_OK;
        if (ok)
            meanwhile(arg);
    }
    int queued_errors = 0;
    crm_store_err_t queued_kind = CRM_STORE_REFUSED;
    for (size_t i = 0; ok && i < tx->n + 1; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **) &r) != REDIS_OK || !r) {
            ok = 0;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            char v[200];
            crm_error("tx.queue_error", "command=%zu reply=\"%s\"", i,
                      crm_log_value(r->str, v, sizeof v));
            crm_fmt(self->err, sizeof self->err, "command %zu: %s", i, r->str);
            if (!queued_errors++)
                queued_kind = s_classify(r->str);
        }
        freeReplyObject(r);
    }
    redisReply *exec = NULL;
    if (ok && (redisGetReply(c, (void **) &exec) != REDIS_OK || !exec))
        ok = 0;
    if (!ok) {
        /* Whether EXEC ran is unknown; the caller decides from Redis. */
        crm_error("tx.io_error", "error=\"%s\"", c->errstr[0] ? c->errstr : "no reply");
        s_drop(self, "EXEC");
        self->last = CRM_STORE_DOWN;
        return -1;
    }
    if (exec->type == REDIS_REPLY_NIL) {
        /* A WATCHed key changed: nothing was applied. */
        freeReplyObject(exec);
        return CRM_TX_CONFLICT;
    }
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != tx->n || queued_errors) {
        char v[200];
        crm_error("tx.aborted", "reply=\"%s\"",
                  crm_log_value(exec->type == REDIS_REPLY_ERROR ? exec->str : "not an array", v,
                                sizeof v));
        /* Nothing was applied. A command Redis would not queue (a wrong
           argument count) is ours to mend; OOM and the like pass. */
        self->last = queued_errors ? queued_kind : CRM_STORE_REFUSED;
        freeReplyObject(exec);
        return -1;
    }
    tx->exec = exec;
    int rc = 0;
    for (size_t i = 0; i < exec->elements; i++)
        if (exec->element[i]->type == REDIS_REPLY_ERROR) {
            char v[200];
            crm_error("tx.command_failed", "command=%zu reply=\"%s\"", i,
                      crm_log_value(exec->element[i]->str, v, sizeof v));
            if (tx->nfailed == tx->failed_cap) {
                size_t cap = tx->failed_cap ? tx->failed_cap * 2 : 4;
                int *grown = realloc(tx->failed_idx, cap * sizeof *grown);
                if (!grown) {
                    /* Not kept for the retry: the log holds which. */
                    crm_error("tx.failed_not_listed", "command=%zu why=\"out of memory\"", i);
                } else {
                    tx->failed_idx = grown;
                    tx->failed_cap = cap;
                }
            }
            if (tx->nfailed < tx->failed_cap)
                tx->failed_idx[tx->nfailed++] = (int) i;
            if (rc == 0)
                crm_fmt(self->err, sizeof self->err, "command %zu: %s", i, exec->element[i]->str);
            /* The rest of the EXEC was applied: never retry it blindly. */
            self->last = CRM_STORE_REFUSED;
            rc = -1;
        }
    for (size_t i = 0; i < tx->nemits; i++) {
        crm_emit_t *e = &tx->emits[i];
        const redisReply *r = e->index >= 0 ? exec->element[e->index] : NULL;
        r = r && r->type == REDIS_REPLY_ARRAY && e->group < r->elements ? r->element[e->group] : NULL;
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            e->seq = (uint64_t) r->integer + e->place;
            /* Same bytes crm_append stored: patch the number in place. */
            s_patch_seq(e, e->seq);
            s_next_seq_set(self, e->stream, e->seq + 1);
        } else {
            e->seq = 0;
        }
    }
    return rc;
}

const redisReply *crm_tx_result(const crm_tx_t *self, int index)
{
    if (index < 0)
        return NULL;
    if (self->pipe)
        return (size_t) index < self->npipe ? self->pipe[index] : NULL;
    if (!self->exec || (size_t) index >= self->exec->elements)
        return NULL;
    return self->exec->element[index];
}

int crm_store_pipeline(crm_store_t *self, crm_tx_t *tx)
{
    if (tx->failed) {
        self->last = CRM_STORE_REFUSED;
        return -1;
    }
    if (s_ensure(self) != 0)
        return -1;
    if (tx->n == 0)
        return 0;
    redisContext *c = self->ctx;
    for (size_t i = 0; i < tx->n; i++)
        if (redisAppendFormattedCommand(c, tx->cmds[i], tx->lens[i]) != REDIS_OK) {
            s_drop(self, "pipeline");
            self->last = CRM_STORE_DOWN;
            return -1;
        }
    tx->pipe = calloc(tx->n, sizeof *tx->pipe);
    if (!tx->pipe) {
        s_drop(self, "pipeline");
        self->last = CRM_STORE_DOWN;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < tx->n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **) &r) != REDIS_OK || !r) {
            crm_error("redis.failed", "command=pipeline error=\"%s\"", c->errstr[0] ? c->errstr : "no reply");
            s_drop(self, "pipeline");
            self->last = CRM_STORE_DOWN;
            return -1;
        }
        tx->pipe[tx->npipe++] = r;
        if (r->type == REDIS_REPLY_ERROR) {
            char v[200];
            crm_error("redis.error", "command=pipeline index=%zu reply=\"%s\"", i,
                      crm_log_value(r->str, v, sizeof v));
            if (rc == 0) {
                self->last = s_classify(r->str);
                crm_fmt(self->err, sizeof self->err, "pipeline %zu: %s", i, r->str);
            }
            rc = -1;
        }
    }
    return rc;
}

size_t crm_tx_emit_count(const crm_tx_t *self) { return self->nemits; }

const crm_emit_t *crm_tx_emit_at(const crm_tx_t *self, size_t i)
{
    return i < self->nemits ? &self->emits[i] : NULL;
}

int crm_store_claim_timers(crm_store_t *self, const char *set, int64_t now_ms, int limit,
                           long long maxlen, crm_tx_t *out)
{
    char zset[128], frames[140], meta[140];
    crm_fmt(zset, sizeof zset, CRM_KEY_TIMERS_FMT, set);
    crm_fmt(frames, sizeof frames, "%s:frame", zset);
    crm_fmt(meta, sizeof meta, "%s:meta", zset);
    redisReply *r = crm_store_cmd(self, "FCALL crm_claim 3 %s %s %s %lld %d %lld", zset, frames,
                                  meta, (long long) now_ms, limit, maxlen > 0 ? maxlen : 1000000);
    if (!r)
        return -1;
    int n = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
                e->element[1]->type != REDIS_REPLY_INTEGER)
                continue;
            char *frame = malloc(e->element[2]->len ? e->element[2]->len : 1);
            if (!frame)
                continue;
            memcpy(frame, e->element[2]->str, e->element[2]->len);
            int k = s_add_emit(out, e->element[0]->str, frame, e->element[2]->len, 0, -1);
            if (k >= 0) {
                out->emits[k].seq = (uint64_t) e->element[1]->integer;
                n++;
            }
        }
    }
    freeReplyObject(r);
    return n;
}

int crm_store_fire_due(crm_store_t *self, const char *set, int64_t now_ms, int limit,
                       long long maxlen, const char *producer, crm_tx_t *out)
{
    /* The event around the list, made by the generated encoder: the list
       is its last field, so its empty array is the frame's last byte and
       crm_fire puts the timers there. */
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_timers_fired);
    crm_new_id(m.id, sizeof m.id);
    m.ts = now_ms;
    crm_fmt(m.producer, sizeof m.producer, "%s", producer);
    CRM_SET_STR(&m, timers_fired, set, set);
    CRM_SET_I64(&m, timers_fired, now, now_ms);
    m.body.timers_fired.has.timers = true;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    size_t off = 0;
    int rc = crm_msg_encode(&m, &buf, &off);
    crm_msg_clear(&m);
    if (rc != 0 || buf.size == 0 || (unsigned char) buf.data[buf.size - 1] != 0x90) {
        msgpack_sbuffer_destroy(&buf);
        crm_fmt(self->err, sizeof self->err, "timers.fired does not encode with its list last");
        self->last = CRM_STORE_REFUSED;
        return -1;
    }
    char key[160], offs[24];
    crm_fmt(key, sizeof key, CRM_KEY_DUE_FMT, set);
    crm_fmt(offs, sizeof offs, "%zu", off);
    char now[24], lim[24], ml[24];
    crm_fmt(now, sizeof now, "%lld", (long long) now_ms);
    crm_fmt(lim, sizeof lim, "%d", limit > 0 && limit <= CRM_STRS_MAX ? limit : CRM_STRS_MAX);
    crm_fmt(ml, sizeof ml, "%lld", maxlen > 0 ? maxlen : 1000000);
    const char *argv[] = {"FCALL", "crm_fire", "3", key, "crm:{timer}:events", "crm:{timer}:seq",
                          now, lim, ml, buf.data, offs};
    size_t lens[11];
    for (int i = 0; i < 11; i++)
        lens[i] = i == 9 ? buf.size : strlen(argv[i]); /* the envelope is no C string */
    redisReply *r = crm_store_cmdargv(self, 11, argv, lens);
    msgpack_sbuffer_destroy(&buf);
    if (!r)
        return -1;
    int n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER && r->element[2]->type == REDIS_REPLY_STRING) {
        char *frame = malloc(r->element[2]->len ? r->element[2]->len : 1);
        if (frame) {
            memcpy(frame, r->element[2]->str, r->element[2]->len);
            int k = s_add_emit(out, "timer", frame, r->element[2]->len, 0, -1);
            if (k >= 0) {
                out->emits[k].seq = (uint64_t) r->element[1]->integer;
                n = (int) r->element[0]->integer;
            }
        }
    }
    freeReplyObject(r);
    return n;
}
