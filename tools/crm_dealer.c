/*  crm-dealer: the reference dealer client (see tools/DEALERS.md).
 *
 *  Follows one dealer's dispatch stream from the carmaker's gateway and
 *  applies every dispatch in order, each once while it runs: it keeps the
 *  last number it applied in a state file, asks for a replay from there on
 *  start-up, applies live pushes in between, and acknowledges what it
 *  applied. It asks for a replay again when a push shows a gap, when a
 *  heartbeat announces a number it has not applied (the last push was
 *  lost), and every --poll-ms without news.
 *
 *  Nothing from the gateway is taken for granted. A request without an
 *  answer is sent again on a fresh socket (an ack with the same bytes, a
 *  replay from where it is); busy, unavailable and not_certified wait (1 s
 *  doubling to 30 s) and ask again; a live socket without a heartbeat for
 *  3 s is replaced and subscribes again, which also recovers a subscription
 *  refused while a new certificate was not yet loaded.
 *
 *  "Apply" prints the dispatch as one JSON line on stdout, or runs --exec
 *  CMD with that line on its stdin; a failing CMD stops the stream there
 *  (nothing is skipped) and it is tried again later. What a crash can
 *  repeat: with --sync each (the state file written after every dispatch)
 *  the one dispatch applied but not yet recorded; with --sync batch (every
 *  100 dispatches or 100 ms) up to 100. Each carries its number (seq) for
 *  the dealer's system to drop a repeat.
 *
 *  The stream carries dealer.dispatch (a test drive), dealer.assigned (a
 *  customer the carmaker gave this dealer), dealer.task (a task for the
 *  dealer's consultant, opened or closed), dealer.call (a call task from
 *  crm-notifier) and dealer.finding (a data-quality
 *  error on one of the dealer's customer records, open or cleared); all are
 *  numbered, applied and acknowledged alike. A numbered message of a type
 *  this client does not know (a newer gateway's) is logged and passed over:
 *  its number counts as applied and is acknowledged, so it never stalls the
 *  stream.
 *
 *  crm-dealer ... status TESTDRIVE_ID STATUS [--at ..] [--note ..] sends one
 *  status report instead, and crm-dealer ... send KIND FILE.json the
 *  uplink records of FILE, one request each, in file order (Lazy Pirate
 *  both: the same bytes again on a fresh socket after a timeout).
 *
 *  crm-dealer ... import customer|service|followup FILE.csv sends a CSV
 *  export row by row (crm_leadin's record reader, crm_import's pipelined
 *  sender, as crmctl customer import): each row a customer.file,
 *  service.record or followup.record request with its record_id (the
 *  row's id column or its content key), answered by dealer.reply.
 */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_config.h"
#include "crm_id.h"
#include "crm_import.h"
#include "crm_leadin.h"
#include "crm_log.h"
#include "crm_mp.h"
#include "crm_proto.h"
#include "crm_store.h"

enum { S_EXIT_OK = 0, S_EXIT_NO = 1, S_EXIT_USAGE = 2, S_EXIT_NOANSWER = 2, S_EXIT_GAP = 3 };

#define S_ACK_EVERY_MS 100
#define S_ACK_EVERY_N 100
#define S_SYNC_EVERY_MS 100 /* --sync batch */
#define S_SYNC_EVERY_N 100
#define S_APPLY_RETRY_MS 5000
#define S_HEARTBEAT_TIMEOUT_MS 3000 /* the gateway sends one every second */
#define S_BACKOFF_FIRST_MS 1000
#define S_BACKOFF_MAX_MS 30000
#define S_DRAIN_MAX 1000   /* messages taken from one socket per turn, so neither starves */
#define S_ACK_FRAME_MAX 256 /* an encoded dealer.ack is about 120 bytes */

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static crm_opt_t s_opts[] = {
    {"dealer", "CRM_DEALER_ID", NULL, "This dealer's id (as in its certificate)", NULL},
    {"cert", "CRM_DEALER_CERT", NULL, "This dealer's secret certificate file (from crmctl dealer cert)",
     NULL},
    {"server-cert", "CRM_DEALER_SERVER_CERT", NULL,
     "The gateway's public certificate file (var/gateway.cert at the carmaker)", NULL},
    {"state", "CRM_DEALER_STATE", NULL, "File keeping the last applied number (created if missing)",
     NULL},
    {"endpoint", "CRM_DEALER_ENDPOINT", "tcp://127.0.0.1:7302",
     "The gateway's request endpoint (ROUTER: replay, ack, status)", NULL},
    {"pub", "CRM_DEALER_PUB", "tcp://127.0.0.1:7301",
     "The gateway's live endpoint (XPUB: pushes and heartbeats)", NULL},
    {"exec", "CRM_DEALER_EXEC", NULL,
     "Command run for each dispatch with its JSON line on stdin (default: print to stdout)", NULL},
    {"once", "CRM_DEALER_ONCE", "0", "Exit once caught up (--once, or 1)", NULL},
    {"sync", "CRM_DEALER_SYNC", "each",
     "each: the state file is written (fsync) after every dispatch, so a crash between applying "
     "and writing it repeats that one dispatch at most; batch: every 100 dispatches or 100 ms, "
     "much faster, but a crash may repeat up to 100 (each carries its number, seq)", NULL},
    {"poll-ms", "CRM_DEALER_POLL_MS", "30000",
     "Ask for a replay this often when nothing else made it ask (heartbeats notice a loss in 3 s)",
     NULL},
    {"timeout-ms", "CRM_TIMEOUT_MS", "3000", "How long to wait for the gateway's answer", NULL},
    {"tries", "CRM_TRIES", "3",
     "How often to send a request before giving up (with --once, status and send; never otherwise)",
     NULL},
    {"at", NULL, NULL, "status: agreed or new time, \"YYYY-MM-DD HH:MM\" China time", NULL},
    {"note", NULL, NULL, "status: free text", NULL},
    {"encoding", NULL, NULL, "import: utf-8, gbk or gb18030 (default: detect)", NULL},
    {"log-level", "CRM_LOG_LEVEL", "info", "debug, info, warn or error", NULL},
    CRM_OPT_END};

static const char *s_summary =
    "The reference dealer client: applies this dealer's dispatches in order, each once while it\n"
    "runs; after a crash --sync each repeats at most the one dispatch applied but not yet in the\n"
    "state file, --sync batch up to one batch (100). Each dispatch carries its number (seq) for\n"
    "the dealer's system to drop a repeat.\n"
    "  crm-dealer --dealer ID --cert SECRET --server-cert PUBLIC --state FILE [--once] [--exec CMD]\n"
    "  crm-dealer --dealer ID --cert SECRET --server-cert PUBLIC status TESTDRIVE_ID STATUS\n"
    "             [--at \"YYYY-MM-DD HH:MM\"] [--note TEXT]\n"
    "  crm-dealer --dealer ID --cert SECRET --server-cert PUBLIC send KIND FILE.json\n"
    "             KIND: customer assign followup order delivery service lost lost-decide\n"
    "             staff-add staff-update staff-leave staff-away reassign owner-decide; FILE: one JSON object, an array of\n"
    "             them, or one a line (\"-\": stdin); one line of JSON out per record\n"
    "  crm-dealer --dealer ID --cert SECRET --server-cert PUBLIC import customer|service|followup\n"
    "             FILE.csv [--encoding utf-8|gbk|gb18030]\n"
    "             sends the file's rows (Chinese or English headers, see DEALERS.md); refused\n"
    "             and unreadable rows go to FILE.csv.rejects.csv; sending it again changes nothing\n"
    "Exit: 0 done (status accepted, every record or row stored), 1 refused (a record or row\n"
    "refused or unreadable) or start-up failed, 2 usage, unreadable FILE or no answer (the\n"
    "gateway could not be reached), 3 the stream no longer holds what this dealer needs\n"
    "(see DEALERS.md)";

typedef struct {
    const char *dealer;
    char stream[64];
    char topic[80];
    char hb_prefix[80]; /* "dealer.<id>=" in a heartbeat's streams */
    zcert_t *cert;
    char server_key[41];
    const char *state_file, *exec, *endpoint, *pub;
    int state_fd; /* open for writes in place after the run's first write */
    bool sync_batch;
    int64_t timeout_ms, tries, poll_ms;
    bool once;
    zsock_t *sub, *req;
    zpoller_t *poller;
    uint64_t last;   /* applied */
    uint64_t synced; /* in the state file */
    int64_t synced_at;
    /* the acknowledgement in flight, kept as bytes for a resend */
    bool acking;
    char ack_id[CRM_ID_MAX];
    uint64_t ack_upto;
    uint64_t ack_done; /* answered: acknowledged, or refused for good */
    byte ack_frame[S_ACK_FRAME_MAX];
    size_t ack_len;
    int64_t ack_deadline, ack_sent_at, ack_retry_at, ack_backoff;
    /* the replay in flight */
    bool replaying;
    char replay_id[CRM_ID_MAX];
    int64_t replay_deadline;
    int64_t replay_retry_at; /* 0: none; else ask again then (after busy, ...) */
    int64_t replay_backoff;
    int64_t replay_fails; /* in a row, for --once */
    bool caught_up;
    int64_t next_poll;
    int64_t blocked_until; /* apply failed: wait before trying it again */
    bool failed;           /* an apply failed (--once ends with 1) */
    bool stopping;
    int64_t sub_alive_at; /* last heartbeat or push, or when the SUB was opened */
    bool sub_live;        /* a heartbeat or push came on this SUB */
    int rc;               /* -1 while running */
} s_dealer_t;

/* ------------------------------------------------------------ state file */

/* The last number applied; 0 when the file does not exist. The file holds
   optional blanks, 1 to 20 digits (below 2^64), optional blanks, and no
   more than S_STATE_MAX bytes in all: anything else ("-1", "1042x",
   "12 junk", an empty file) is refused, as crm_dealer.py refuses it. On -1
   *why says why: the system's error, or "a number expected". */
#define S_STATE_MAX 64
static bool s_blank(char c) { return c && strchr(" \t\n\v\f\r", c); }

static int s_state_read(const char *path, uint64_t *last, const char **why)
{
    *last = 0;
    *why = "a number expected";
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        *why = strerror(errno);
        return -1;
    }
    char buf[S_STATE_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err) {
        *why = strerror(err);
        return -1;
    }
    if (n > S_STATE_MAX)
        return -1;
    size_t i = 0;
    while (i < n && s_blank(buf[i]))
        i++;
    size_t start = i;
    while (i < n && buf[i] >= '0' && buf[i] <= '9')
        i++;
    size_t digits = i - start;
    while (i < n && s_blank(buf[i]))
        i++;
    if (digits < 1 || digits > 20 || i != n)
        return -1;
    char num[21];
    memcpy(num, buf + start, digits);
    num[digits] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(num, &end, 10);
    if (errno != 0 || !end || *end)
        return -1; /* above 2^64 - 1 */
    *last = v;
    return 0;
}

/* The state file, as written: the number padded with spaces to 20 and a
   line end, 21 bytes whatever the number, so that it is rewritten in place. */
#define S_STATE_REC 21

/* The first write of a run puts the whole file in place (FILE.tmp, fsync,
   rename, fsync of the directory); it is then kept open and each write
   overwrites its 21 bytes where they are (pwrite, fdatasync): the size
   never changes and the bytes sit in the file's first disk sector, which
   a disk writes whole, so the file holds the old number or the new one.
   A fifth of the time of a file renamed per dispatch (0.14 against 0.72 ms
   at p50 on ext4, whose journal commits were the tail of --sync each). */
static int s_state_write(s_dealer_t *d, uint64_t last)
{
    char rec[S_STATE_REC + 1];
    snprintf(rec, sizeof rec, "%-20llu\n", (unsigned long long) last);
    if (d->state_fd >= 0) {
        ssize_t n = pwrite(d->state_fd, rec, S_STATE_REC, 0);
        if (n != S_STATE_REC) {
            if (n >= 0)
                errno = EIO;
            return -1;
        }
        return fdatasync(d->state_fd);
    }
    char tmp[1024], dir[1024];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", d->state_file) >= (int) sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", d->state_file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x" is in "/" */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    errno = 0;
    if (write(fd, rec, S_STATE_REC) != S_STATE_REC || fsync(fd) != 0) {
        int err = errno ? errno : EIO; /* a short write sets none */
        close(fd);
        errno = err;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, d->state_file) != 0)
        return -1;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        /* the rename itself made durable; a directory that cannot be
           synced (some network file systems) still holds the file */
        (void) fsync(dfd);
        close(dfd);
    }
    d->state_fd = open(d->state_file, O_WRONLY | O_CLOEXEC);
    return d->state_fd >= 0 ? 0 : -1;
}

/* The state file could not be written: said once, and the run ends with
   1 (what was applied and not recorded is applied again at the next start). */
static int s_state_failed(s_dealer_t *d)
{
    crm_error("dealer.state_not_written", "dealer=%s file=%s why=\"%s\"", d->dealer, d->state_file,
              strerror(errno));
    d->rc = S_EXIT_NO;
    return -1;
}

/* s_state_write, and s_state_failed when it fails. */
static int s_record(s_dealer_t *d, uint64_t last)
{
    return s_state_write(d, last) == 0 ? 0 : s_state_failed(d);
}

/* ------------------------------------------------------------ sockets */

static zsock_t *s_socket(s_dealer_t *d, int type, const char *endpoint)
{
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    zcert_apply(d->cert, sock);
    zsock_set_curve_serverkey(sock, d->server_key);
    zsock_set_linger(sock, 1000);
    zsock_set_maxmsgsize(sock, CRM_FRAME_MAX + 1024);
    if (type == ZMQ_SUB)
        zsock_set_subscribe(sock, d->topic);
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

/* Replaces a socket by a fresh one (new connection, new CURVE handshake). */
static int s_reopen(s_dealer_t *d, zsock_t **sock, int type, const char *endpoint)
{
    if (*sock)
        zsock_set_linger(*sock, 0);
    zsock_destroy(sock);
    *sock = s_socket(d, type, endpoint);
    zpoller_destroy(&d->poller);
    if (!*sock)
        return -1;
    if (d->req && d->sub)
        d->poller = zpoller_new(d->req, d->sub, NULL);
    return 0;
}

static void s_send(s_dealer_t *d, const void *data, size_t len)
{
    /* A full queue loses it like the network would; the timeout resends. */
    if (d->req)
        zmq_send(zsock_resolve(d->req), data, len, ZMQ_DONTWAIT);
}

/* Fills the envelope of a request (fresh id, now, producer) and encodes it. */
static int s_encode_request(crm_msg_t *m, msgpack_sbuffer *buf)
{
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "dealer");
    msgpack_sbuffer_init(buf);
    return crm_msg_encode(m, buf, NULL);
}

/* The answers that mean "ask again later", not "no". */
static bool s_retry_code(const char *code)
{
    return crm_import_retry_code(code);
}

static int64_t s_backoff(int64_t current)
{
    return current ? (current * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : current * 2)
                   : S_BACKOFF_FIRST_MS;
}

/* ------------------------------------------------------------ requests */

static void s_ask_replay(s_dealer_t *d)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, (int64_t) d->last + 1);
    msgpack_sbuffer buf;
    if (s_encode_request(&m, &buf) == 0) {
        s_send(d, buf.data, buf.size);
        snprintf(d->replay_id, sizeof d->replay_id, "%s", m.id);
        d->replaying = true;
        d->replay_deadline = crm_mono_ms() + d->timeout_ms;
        d->replay_retry_at = 0;
        crm_info("dealer.replay_asked", "dealer=%s from=%llu", d->dealer,
                 (unsigned long long) d->last + 1);
    }
    msgpack_sbuffer_destroy(&buf);
    crm_msg_clear(&m);
}

/* --sync batch: the state file follows at most 100 dispatches or 100 ms
   behind, and always before the acknowledgement that covers them. */
static void s_sync(s_dealer_t *d, bool force)
{
    if (d->synced >= d->last)
        return;
    int64_t now = crm_mono_ms();
    if (!force && d->last - d->synced < S_SYNC_EVERY_N && now - d->synced_at < S_SYNC_EVERY_MS)
        return;
    if (s_record(d, d->last) != 0)
        return;
    d->synced = d->last;
    d->synced_at = now;
}

/* One ack in flight at a time, for what is in the state file; the first
   one goes out at start-up, which repairs an ack lost before a crash. */
static void s_ack(s_dealer_t *d, bool force)
{
    int64_t now = crm_mono_ms();
    uint64_t upto = d->synced;
    if (d->acking || upto <= d->ack_done || (!force && now < d->ack_retry_at))
        return;
    if (!force && now - d->ack_sent_at < S_ACK_EVERY_MS && upto - d->ack_done < S_ACK_EVERY_N)
        return;
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_ack);
    CRM_SET_I64(&m, dealer_ack, upto, (int64_t) upto);
    msgpack_sbuffer buf;
    if (s_encode_request(&m, &buf) == 0 && buf.size <= sizeof d->ack_frame) {
        memcpy(d->ack_frame, buf.data, buf.size);
        d->ack_len = buf.size;
        snprintf(d->ack_id, sizeof d->ack_id, "%s", m.id);
        d->ack_upto = upto;
        d->acking = true;
        d->ack_deadline = now + d->timeout_ms;
        d->ack_sent_at = now;
        s_send(d, d->ack_frame, d->ack_len);
    }
    msgpack_sbuffer_destroy(&buf);
    crm_msg_clear(&m);
}

/* A request went unanswered: a fresh socket; the ack goes again with the
   same bytes (same id), the replay from where we are now. */
static void s_reopen_requests(s_dealer_t *d)
{
    crm_warn("dealer.no_answer", "dealer=%s endpoint=%s replay=%d ack=%d", d->dealer, d->endpoint,
             d->replaying, d->acking);
    if (s_reopen(d, &d->req, ZMQ_DEALER, d->endpoint) != 0) {
        crm_error("dealer.socket_failed", "dealer=%s endpoint=%s", d->dealer, d->endpoint);
        d->rc = S_EXIT_NO;
        return;
    }
    int64_t now = crm_mono_ms();
    if (d->acking) {
        d->ack_deadline = now + d->timeout_ms;
        s_send(d, d->ack_frame, d->ack_len);
    }
    if (d->replaying) {
        d->replaying = false;
        if (++d->replay_fails >= d->tries && d->once) {
            d->rc = S_EXIT_NOANSWER;
            return;
        }
        s_ask_replay(d);
    }
}

/* ------------------------------------------------------------ apply */

static int s_run_exec(const char *cmd, const char *json)
{
    FILE *p = popen(cmd, "w");
    if (!p)
        return -1;
    int ok = fputs(json, p) >= 0 && fputc('\n', p) != EOF;
    int status = pclose(p);
    return ok && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Applies one dispatch that is exactly next in line; on failure it is left
   for a later try (blocked_until), or the run ends (state not written). */
/* The types applied (printed or given to --exec); any other type numbered
   on our stream is passed over. */
static bool s_stream_type(crm_type_t t)
{
    return t == CRM_T_dealer_dispatch || t == CRM_T_dealer_assigned || t == CRM_T_dealer_task ||
           t == CRM_T_dealer_finding || t == CRM_T_dealer_call;
}

/* A frame the decoder refused for its type (one this build does not know):
   when the rest of the envelope is sound (v, type, stream, seq, a body map)
   `out` gets its stream and seq and `type` its name, for the stream to pass
   over it. Reads nothing of the body. 0 or -1. */
static int s_peek_numbered(const void *data, size_t len, crm_msg_t *out, char *type, size_t tsz)
{
    memset(out, 0, sizeof *out);
    crm_mp_t r;
    crm_mp_init(&r, data, len);
    uint32_t count;
    if (len == 0 || len > CRM_FRAME_MAX || crm_mp_map(&r, &count) != 0)
        return -1;
    unsigned seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *k, *v;
        uint32_t kl, vl;
        uint64_t n;
        if (crm_mp_str(&r, &k, &kl) != 0)
            return -1;
#define S_IS(lit) (kl == sizeof lit - 1 && !memcmp(k, lit, kl))
        if (S_IS("v")) {
            if (crm_mp_u64(&r, &n) != 0 || n == 0 || n > CRM_SCHEMA_VERSION)
                return -1;
            seen |= 1;
        } else if (S_IS("type") || S_IS("stream")) {
            bool is_type = S_IS("type");
            size_t cap = is_type ? tsz : sizeof out->stream;
            if (crm_mp_str(&r, &v, &vl) != 0 || vl == 0 || (!is_type && vl >= cap))
                return -1;
            if (vl >= cap)
                vl = (uint32_t) cap - 1; /* a type's name is only logged */
            char *dst = is_type ? type : out->stream;
            memcpy(dst, v, vl);
            dst[vl] = 0;
            seen |= is_type ? 2 : 4;
        } else if (S_IS("seq")) {
            if (crm_mp_u64(&r, &out->seq) != 0)
                return -1;
            seen |= 8;
        } else if (S_IS("body")) {
            if (crm_mp_peek(&r) != CRM_MP_MAP || crm_mp_skip(&r, 32) != 0)
                return -1;
            seen |= 16;
        } else if (crm_mp_skip(&r, 32) != 0) {
            return -1;
        }
#undef S_IS
    }
    return seen == 31 && crm_mp_left(&r) == 0 ? 0 : -1;
}

static void s_advance(s_dealer_t *d, const crm_msg_t *m, bool live);

static void s_apply(s_dealer_t *d, const crm_msg_t *m, bool live)
{
    if (!s_stream_type(m->type)) {
        /* Passed over, not applied: nothing for the dealer's system, but
           the number counts, or the stream would stop here. */
        char shown[64];
        crm_warn("dealer.unknown_type", "dealer=%s seq=%llu type=%s hint=\"skipped; a newer client may know it\"",
                 d->dealer, (unsigned long long) m->seq,
                 crm_log_value(m->type == CRM_T_NONE ? m->corr : crm_type_name(m->type), shown, sizeof shown));
        s_advance(d, m, live);
        return;
    }
    char *json = crm_msg_to_json(m);
    int rc = -1;
    if (json && d->exec)
        rc = s_run_exec(d->exec, json);
    else if (json)
        rc = fputs(json, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0 ? 0 : -1;
    free(json);
    if (rc != 0) {
        crm_warn("dealer.apply_failed", "dealer=%s seq=%llu retry_ms=%d", d->dealer,
                 (unsigned long long) m->seq, S_APPLY_RETRY_MS);
        d->blocked_until = crm_mono_ms() + S_APPLY_RETRY_MS;
        d->failed = true;
        return;
    }
    s_advance(d, m, live);
}

/* m's number is applied: recorded (--sync each) and acknowledged. */
static void s_advance(s_dealer_t *d, const crm_msg_t *m, bool live)
{
    if (!d->sync_batch) {
        if (s_record(d, m->seq) != 0)
            return; /* applied but not recorded: stop here; the next start repeats it */
        d->synced = m->seq;
    }
    d->last = m->seq;
    crm_debug("dealer.applied", "dealer=%s seq=%llu via=%s", d->dealer, (unsigned long long) m->seq,
              live ? "live" : "replay");
    s_sync(d, false);
    s_ack(d, false);
}

/* A numbered message of our stream (dealer.dispatch, dealer.assigned,
   dealer.task, dealer.finding, or a type passed over), from a replay or a
   push: dropped when already applied, applied when next, and a replay is
   asked for when numbers are missing. */
static void s_on_dispatch(s_dealer_t *d, const crm_msg_t *m, bool live)
{
    if (strcmp(m->stream, d->stream)) {
        char shown[64];
        crm_warn("dealer.unexpected", "dealer=%s stream=%s", d->dealer,
                 crm_log_value(m->stream, shown, sizeof shown));
    } else if (m->seq <= d->last) {
        crm_debug("dealer.duplicate", "dealer=%s seq=%llu", d->dealer, (unsigned long long) m->seq);
    } else if (d->stopping || d->rc >= 0 || d->blocked_until > crm_mono_ms()) {
        /* stopping, or waiting to try the failed one again */
    } else if (m->seq == d->last + 1) {
        s_apply(d, m, live);
    } else if (live && !d->replaying && !d->replay_retry_at) {
        crm_info("dealer.gap", "dealer=%s have=%llu got=%llu", d->dealer,
                 (unsigned long long) d->last, (unsigned long long) m->seq);
        s_ask_replay(d);
    }
}

/* A heartbeat names the latest number of our stream: above what we
   applied means the last push(es) were lost. */
static void s_on_heartbeat(s_dealer_t *d, const crm_msg_t *m)
{
    const crm_strs_t *streams = &m->body.heartbeat.streams;
    size_t plen = strlen(d->hb_prefix);
    bool found = false;
    uint64_t latest = 0;
    for (size_t i = 0; i < streams->n; i++) {
        const char *e = streams->v[i];
        if (strncmp(e, d->hb_prefix, plen))
            continue;
        const char *num = e + plen;
        size_t n = strspn(num, "0123456789");
        if (n == 0 || n > 20 || num[n])
            continue;
        errno = 0;
        unsigned long long v = strtoull(num, NULL, 10);
        if (errno == 0) {
            latest = v;
            found = true;
        }
    }
    if (found && latest > d->last && !d->replaying && !d->replay_retry_at && !d->blocked_until &&
        !d->stopping) {
        crm_info("dealer.behind", "dealer=%s have=%llu latest=%llu", d->dealer,
                 (unsigned long long) d->last, (unsigned long long) latest);
        s_ask_replay(d);
    }
}

/* ------------------------------------------------------------ answers */

static void s_on_replay_reply(s_dealer_t *d, const crm_body_dealer_reply_t *r)
{
    int64_t now = crm_mono_ms();
    d->replaying = false;
    d->next_poll = now + d->poll_ms;
    if (r->ok) {
        d->replay_fails = d->replay_backoff = 0;
        crm_info("dealer.replayed", "dealer=%s count=%lld last=%lld applied=%llu", d->dealer,
                 (long long) r->count, (long long) r->last, (unsigned long long) d->last);
        if (r->has.last && r->last > 0 && d->last < (uint64_t) r->last) {
            if (!d->blocked_until && !d->stopping)
                s_ask_replay(d); /* pushes arrived meanwhile, or some were lost */
        } else {
            d->caught_up = true;
        }
        return;
    }
    const char *code = r->code ? r->code : "-";
    char c[64], msg[200];
    crm_log_value(code, c, sizeof c);
    crm_log_value(r->message ? r->message : "", msg, sizeof msg);
    if (!strcmp(code, "below_retained")) {
        crm_error("dealer.below_retained", "dealer=%s want=%llu first=%lld last=%lld message=%s",
                  d->dealer, (unsigned long long) d->last + 1, (long long) r->first,
                  (long long) r->last, msg);
        d->rc = S_EXIT_GAP;
        return;
    }
    bool retry = s_retry_code(code);
    d->replay_fails++;
    if (d->once && (!retry || d->replay_fails >= d->tries)) {
        crm_error("dealer.replay_refused", "dealer=%s code=%s message=%s", d->dealer, c, msg);
        d->rc = !strcmp(code, "busy") || !strcmp(code, "unavailable") ? S_EXIT_NOANSWER : S_EXIT_NO;
        return;
    }
    /* Following the stream, it never gives up; a request the gateway finds
       wrong is asked again as slowly as the rest (a gateway may be fixed). */
    d->replay_backoff = s_backoff(d->replay_backoff);
    d->replay_retry_at = now + d->replay_backoff;
    crm_log(retry ? CRM_LOG_WARN : CRM_LOG_ERROR, "dealer.replay_refused",
            "dealer=%s code=%s message=%s retry_ms=%lld", d->dealer, c, msg,
            (long long) d->replay_backoff);
}

static void s_on_ack_reply(s_dealer_t *d, const crm_body_dealer_reply_t *r)
{
    d->acking = false;
    if (r->ok) {
        if (d->ack_upto > d->ack_done)
            d->ack_done = d->ack_upto;
        d->ack_backoff = 0;
        crm_debug("dealer.acked", "dealer=%s upto=%llu", d->dealer, (unsigned long long) d->ack_upto);
        return;
    }
    const char *code = r->code ? r->code : "-";
    char c[64], msg[200];
    crm_log_value(code, c, sizeof c);
    crm_log_value(r->message ? r->message : "", msg, sizeof msg);
    if (s_retry_code(code)) {
        d->ack_backoff = s_backoff(d->ack_backoff);
        d->ack_retry_at = crm_mono_ms() + d->ack_backoff;
        crm_warn("dealer.ack_refused", "dealer=%s code=%s retry_ms=%lld", d->dealer, c,
                 (long long) d->ack_backoff);
        return;
    }
    /* beyond_last and the like: the same ack would get the same answer. */
    if (d->ack_upto > d->ack_done)
        d->ack_done = d->ack_upto;
    crm_error("dealer.ack_refused", "dealer=%s code=%s upto=%llu message=%s", d->dealer, c,
              (unsigned long long) d->ack_upto, msg);
}

static void s_on_reply(s_dealer_t *d, const crm_msg_t *m)
{
    const crm_body_dealer_reply_t *r = &m->body.dealer_reply;
    if (d->replaying && !strcmp(m->corr, d->replay_id)) {
        s_on_replay_reply(d, r);
    } else if (d->acking && !strcmp(m->corr, d->ack_id)) {
        s_on_ack_reply(d, r);
    } else if (!m->corr[0]) {
        /* The gateway could not read the request's id (or refused the
           certificate before reading it): it answers whatever is in flight. */
        char c[64];
        crm_warn("dealer.refused", "dealer=%s code=%s", d->dealer,
                 crm_log_value(r->code ? r->code : "-", c, sizeof c));
        bool retry = !r->ok && s_retry_code(r->code);
        if (retry && d->replaying)
            s_on_replay_reply(d, r);
        if (retry && d->acking)
            s_on_ack_reply(d, r);
    } else {
        crm_debug("dealer.stale_reply", "dealer=%s", d->dealer);
    }
}

/* Replayed dispatches and answers queue on one connection: while any
   arrives, what is in flight is not lost, only behind them. */
static void s_touch_requests(s_dealer_t *d)
{
    int64_t deadline = crm_mono_ms() + d->timeout_ms;
    if (d->replaying)
        d->replay_deadline = deadline;
    if (d->acking)
        d->ack_deadline = deadline;
}

/* ------------------------------------------------------------ sockets in */

/* A decoded message that takes a number of our stream: a type we apply,
   or any other (known to the codec, not to this client) that carries our
   stream's name and a number, passed over in its turn. */
static bool s_numbered(const s_dealer_t *d, const crm_msg_t *m)
{
    if (s_stream_type(m->type))
        return true;
    return m->type != CRM_T_dealer_reply && m->type != CRM_T_heartbeat && m->seq > 0 &&
           !strcmp(m->stream, d->stream);
}

/* The same for a frame of a type the codec does not know: `m` gets its
   stream and seq, type CRM_T_NONE and the type's name in m->corr (for the
   log line only). */
static bool s_numbered_unknown(const s_dealer_t *d, const void *data, size_t len, crm_msg_t *m)
{
    char type[sizeof m->corr];
    if (s_peek_numbered(data, len, m, type, sizeof type) != 0)
        return false;
    m->type = CRM_T_NONE;
    snprintf(m->corr, sizeof m->corr, "%s", type);
    return m->seq > 0 && !strcmp(m->stream, d->stream);
}

static void s_drain_req(s_dealer_t *d, bool finishing)
{
    for (int i = 0; i < S_DRAIN_MAX && (zsock_events(d->req) & ZMQ_POLLIN); i++) {
        if (!finishing && (s_stop || d->rc >= 0))
            return;
        zmsg_t *msg = zmsg_recv(d->req);
        if (!msg)
            return;
        zframe_t *f = zmsg_first(msg);
        if (zmsg_size(msg) == 2 && zframe_size(f) == 0)
            f = zmsg_next(msg); /* a REQ-style delimiter: tolerated */
        else if (zmsg_size(msg) != 1)
            f = NULL;
        crm_msg_t m;
        crm_err_t e;
        if (!f) {
            crm_warn("dealer.malformed", "dealer=%s socket=requests field=frames", d->dealer);
        } else if (crm_msg_decode(zframe_data(f), zframe_size(f), &m, &e) != 0) {
            if (e.code == CRM_E_UNKNOWN && s_numbered_unknown(d, zframe_data(f), zframe_size(f), &m)) {
                s_touch_requests(d);
                s_on_dispatch(d, &m, false);
            } else {
                crm_warn("dealer.malformed", "dealer=%s socket=requests field=%s", d->dealer, e.field);
            }
        } else {
            s_touch_requests(d);
            if (s_numbered(d, &m))
                s_on_dispatch(d, &m, false);
            else if (m.type == CRM_T_dealer_reply)
                s_on_reply(d, &m);
            else
                crm_warn("dealer.unexpected", "dealer=%s type=%s", d->dealer, crm_type_name(m.type));
            crm_msg_clear(&m);
        }
        zmsg_destroy(&msg);
    }
}

static void s_drain_sub(s_dealer_t *d)
{
    for (int i = 0; i < S_DRAIN_MAX && (zsock_events(d->sub) & ZMQ_POLLIN); i++) {
        if (s_stop || d->rc >= 0)
            return;
        zmsg_t *msg = zmsg_recv(d->sub);
        if (!msg)
            return;
        zframe_t *topic = zmsg_first(msg);
        zframe_t *frame = zmsg_next(msg);
        crm_msg_t m;
        crm_err_t e;
        if (zmsg_size(msg) != 2 || !zframe_streq(topic, d->topic)) {
            crm_warn("dealer.malformed", "dealer=%s socket=live field=frames", d->dealer);
        } else if (crm_msg_decode(zframe_data(frame), zframe_size(frame), &m, &e) != 0) {
            if (e.code == CRM_E_UNKNOWN && s_numbered_unknown(d, zframe_data(frame), zframe_size(frame), &m)) {
                d->sub_alive_at = crm_mono_ms();
                s_on_dispatch(d, &m, true);
            } else {
                crm_warn("dealer.malformed", "dealer=%s socket=live field=%s", d->dealer, e.field);
            }
        } else {
            bool numbered = m.type != CRM_T_heartbeat && s_numbered(d, &m);
            if (m.type == CRM_T_heartbeat || numbered) {
                d->sub_alive_at = crm_mono_ms();
                if (!d->sub_live)
                    crm_info("dealer.live", "dealer=%s endpoint=%s", d->dealer, d->pub);
                d->sub_live = true;
            }
            if (m.type == CRM_T_heartbeat)
                s_on_heartbeat(d, &m);
            else if (numbered)
                s_on_dispatch(d, &m, true);
            else
                crm_warn("dealer.unexpected", "dealer=%s type=%s", d->dealer, crm_type_name(m.type));
            crm_msg_clear(&m);
        }
        zmsg_destroy(&msg);
    }
}

/* ------------------------------------------------------------ run */

/* What to send now: acks, a replay again (unanswered, after a backoff,
   after a failed apply, or as the slow poll), a new SUB without heartbeats. */
static void s_tick(s_dealer_t *d)
{
    s_sync(d, false);
    s_ack(d, false);
    if (d->rc >= 0)
        return;
    if (d->once && (d->failed || d->caught_up)) {
        d->rc = d->failed ? S_EXIT_NO : S_EXIT_OK;
        return;
    }
    int64_t now = crm_mono_ms();
    if ((d->replaying && now > d->replay_deadline) || (d->acking && now > d->ack_deadline)) {
        s_reopen_requests(d);
        if (d->rc >= 0)
            return;
    }
    if (!d->replaying) {
        if (d->replay_retry_at) {
            if (now >= d->replay_retry_at)
                s_ask_replay(d);
        } else if (d->blocked_until) {
            if (now >= d->blocked_until) {
                d->blocked_until = 0; /* try the failed dispatch again */
                s_ask_replay(d);
            }
        } else if (now >= d->next_poll) {
            s_ask_replay(d);
        }
    }
    if (!d->once && now - d->sub_alive_at > S_HEARTBEAT_TIMEOUT_MS) {
        /* No heartbeat: the subscription was refused, or the connection died
           without TCP noticing. A new socket subscribes afresh. */
        crm_info("dealer.resubscribed", "dealer=%s silent_ms=%lld", d->dealer,
                 (long long) (now - d->sub_alive_at));
        if (s_reopen(d, &d->sub, ZMQ_SUB, d->pub) != 0) {
            crm_error("dealer.socket_failed", "dealer=%s endpoint=%s", d->dealer, d->pub);
            d->rc = S_EXIT_NO;
        }
        d->sub_alive_at = now;
        d->sub_live = false;
    }
}

/* What was applied goes into the state file and into a last ack whose
   answer is awaited: one timeout after a signal, up to --tries with --once
   (the same bytes on a fresh socket each time). */
static void s_finish(s_dealer_t *d)
{
    d->stopping = true;
    if (d->synced < d->last) {
        if (s_record(d, d->last) != 0)
            return;
        d->synced = d->last;
    }
    d->acking = false; /* an ack still in flight is covered by the last one */
    int64_t tries = d->once && !s_stop ? d->tries : 1;
    for (int64_t t = 0; t < tries && d->synced > d->ack_done && !(s_stop && t > 0); t++) {
        if (!d->acking) {
            while (crm_mono_ms() < d->ack_retry_at && !s_stop)
                zclock_sleep(50);
            s_ack(d, true);
        } else if (s_reopen(d, &d->req, ZMQ_DEALER, d->endpoint) == 0) {
            d->ack_deadline = crm_mono_ms() + d->timeout_ms;
            s_send(d, d->ack_frame, d->ack_len);
        }
        while (d->acking && d->req && crm_mono_ms() < d->ack_deadline) {
            zmq_pollitem_t item = {zsock_resolve(d->req), 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, 50) > 0)
                s_drain_req(d, true);
        }
    }
    if (d->synced > d->ack_done)
        crm_warn("dealer.ack_unanswered", "dealer=%s upto=%llu hint=\"sent again at the next start\"",
                 d->dealer, (unsigned long long) d->synced);
}

static int s_run(s_dealer_t *d)
{
    const char *why = NULL;
    if (s_state_read(d->state_file, &d->last, &why) != 0) {
        fprintf(stderr, "crm-dealer: cannot read the state file %s (%s)\n", d->state_file, why);
        return S_EXIT_NO;
    }
    d->synced = d->last;
    d->rc = -1;
    d->sub = s_socket(d, ZMQ_SUB, d->pub);
    d->req = s_socket(d, ZMQ_DEALER, d->endpoint);
    d->poller = d->sub && d->req ? zpoller_new(d->req, d->sub, NULL) : NULL;
    if (!d->poller) {
        fprintf(stderr, "crm-dealer: cannot connect to %s / %s\n", d->pub, d->endpoint);
        zsock_destroy(&d->sub);
        zsock_destroy(&d->req);
        return S_EXIT_NO;
    }
    d->sub_alive_at = crm_mono_ms();
    crm_info("dealer.start", "dealer=%s last=%llu sync=%s", d->dealer, (unsigned long long) d->last,
             d->sync_batch ? "batch" : "each");
    s_ask_replay(d);
    while (!s_stop && d->rc < 0) {
        zsock_t *which = zpoller_wait(d->poller, 50);
        if (which == d->req || which == d->sub) {
            /* Either may be ready: both are drained, by their events. */
            s_drain_req(d, false);
            if (d->rc < 0)
                s_drain_sub(d);
        } else if (zpoller_terminated(d->poller) && !s_stop) {
            s_stop = 1;
        }
        if (!s_stop)
            s_tick(d);
    }
    s_finish(d);
    if (d->state_fd >= 0 && close(d->state_fd) != 0 && d->rc < 0)
        s_state_failed(d);
    d->state_fd = -1;
    int rc = d->rc < 0 ? S_EXIT_OK : d->rc;
    zpoller_destroy(&d->poller);
    zsock_destroy(&d->sub);
    zsock_destroy(&d->req);
    crm_info("dealer.stop", "dealer=%s last=%llu rc=%d", d->dealer, (unsigned long long) d->last, rc);
    return rc;
}

/* ------------------------------------------------------------ one request */

/* One request, Lazy Pirate: the same bytes (same id) until it is answered.
   No answer within --timeout-ms: the bytes go again on a fresh socket (a
   new connection and CURVE handshake); busy, unavailable and not_certified
   wait (1 s, doubling up to 30 s) and send them again on a fresh socket;
   --tries sends in all. *sock is kept open for the next request while it
   works (NULL: one is opened). True with the last answer in *reply (the
   caller clears it); false when none came. An answer with an empty corr
   answers the one request the socket carries. */
static bool s_call(s_dealer_t *d, zsock_t **sock, const msgpack_sbuffer *buf, const char *id,
                   crm_msg_t *reply)
{
    bool have = false;
    int64_t backoff = 0;
    for (int64_t t = 0; t < d->tries && !s_stop; t++) {
        for (int64_t wake = crm_mono_ms() + backoff; backoff && !s_stop && crm_mono_ms() < wake;)
            zclock_sleep(50);
        if (!*sock) {
            *sock = s_socket(d, ZMQ_DEALER, d->endpoint);
            if (!*sock)
                break;
            zsock_set_linger(*sock, 0);
        }
        /* A full queue is a lost send: the timeout sends again. */
        zmq_send(zsock_resolve(*sock), buf->data, buf->size, ZMQ_DONTWAIT);
        zpoller_t *poller = zpoller_new(*sock, NULL);
        int64_t deadline = crm_mono_ms() + d->timeout_ms;
        bool got = false;
        while (poller && !got && crm_mono_ms() < deadline && !s_stop) {
            if (zpoller_wait(poller, (int) (deadline - crm_mono_ms())) != *sock)
                continue;
            zmsg_t *msg = zmsg_recv(*sock);
            zframe_t *f = msg && zmsg_size(msg) <= 2 ? zmsg_last(msg) : NULL;
            crm_msg_t r;
            crm_err_t e;
            if (f && crm_msg_decode(zframe_data(f), zframe_size(f), &r, &e) == 0) {
                if (r.type == CRM_T_dealer_reply && (!strcmp(r.corr, id) || !r.corr[0])) {
                    got = true;
                    if (have)
                        crm_msg_clear(reply);
                    *reply = r; /* the answer's strings move to *reply */
                    have = true;
                } else {
                    crm_msg_clear(&r); /* an answer to a request given up on */
                }
            } else if (f) {
                crm_warn("dealer.malformed", "dealer=%s socket=requests field=%s", d->dealer, e.field);
            }
            zmsg_destroy(&msg);
        }
        zpoller_destroy(&poller);
        if (!got) {
            zsock_destroy(sock);
            backoff = 0;
            crm_warn("dealer.no_answer", "dealer=%s endpoint=%s try=%lld", d->dealer, d->endpoint,
                     (long long) t + 1);
            continue;
        }
        const crm_body_dealer_reply_t *a = &reply->body.dealer_reply;
        if (a->ok || !s_retry_code(a->code))
            return true;
        zsock_destroy(sock); /* a fresh handshake picks up a newly loaded certificate */
        backoff = s_backoff(backoff);
        char c[64];
        crm_warn("dealer.refused", "dealer=%s code=%s retry_ms=%lld", d->dealer,
                 crm_log_value(a->code, c, sizeof c), (long long) backoff);
    }
    return have;
}

/* ------------------------------------------------------------ status */

/* "YYYY-MM-DD HH:MM" in China Standard Time -> ms UTC; -1 when malformed. */
static int64_t s_parse_at(const char *text)
{
    int y, mo, da, h, mi;
    char extra;
    if (sscanf(text, "%4d-%2d-%2d %2d:%2d%c", &y, &mo, &da, &h, &mi, &extra) != 5 || mo < 1 ||
        mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59 || h < 0 || mi < 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da, .tm_hour = h, .tm_min = mi};
    return (int64_t) timegm(&tm) * 1000 - CRM_CST_OFFSET_MS;
}

/* One report (s_call); the last answer is printed. */
static int s_status(s_dealer_t *d, const char *testdrive, const char *status)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_status);
    CRM_SET_STR(&m, dealer_status, testdrive_id, testdrive);
    CRM_SET_STR(&m, dealer_status, status, status);
    const char *at = crm_opt(s_opts, "at"), *note = crm_opt(s_opts, "note");
    if (at) {
        int64_t ms = s_parse_at(at);
        if (ms < 0) {
            fprintf(stderr, "crm-dealer: --at \"%s\": expected \"YYYY-MM-DD HH:MM\"\n", at);
            crm_msg_clear(&m);
            return S_EXIT_USAGE;
        }
        CRM_SET_I64(&m, dealer_status, at, ms);
    }
    if (note)
        CRM_SET_STR(&m, dealer_status, note, note);
    msgpack_sbuffer buf;
    crm_msg_t r;
    bool got = false;
    zsock_t *sock = NULL;
    if (s_encode_request(&m, &buf) == 0)
        got = s_call(d, &sock, &buf, m.id, &r);
    zsock_destroy(&sock);
    msgpack_sbuffer_destroy(&buf);
    crm_msg_clear(&m);
    if (!got) {
        fprintf(stderr, "crm-dealer: no answer from %s\n", d->endpoint);
        return S_EXIT_NOANSWER;
    }
    char *answer = crm_msg_to_json(&r);
    if (answer)
        printf("%s\n", answer);
    free(answer);
    const crm_body_dealer_reply_t *a = &r.body.dealer_reply;
    int rc = a->ok ? S_EXIT_OK
             : a->code && (!strcmp(a->code, "busy") || !strcmp(a->code, "unavailable")) ? S_EXIT_NOANSWER
                                                                                         : S_EXIT_NO;
    crm_msg_clear(&r);
    return rc;
}

/* ------------------------------------------------------------ send */

/* crm-dealer send KIND FILE: each JSON object of FILE is the body of one
   uplink request, sent in file order, the next one after the answer to
   the one before (records may depend on each other: a manager before the
   consultant reporting to them, an order placed before it is cancelled). */
static const struct {
    const char *kind;
    crm_type_t type;
} s_kinds[] = {
    {"customer", CRM_T_customer_file},     {"assign", CRM_T_customer_assign},
    {"followup", CRM_T_followup_record},   {"order", CRM_T_order_record},
    {"delivery", CRM_T_delivery_record},   {"service", CRM_T_service_record},
    {"lost", CRM_T_prospect_lose},         {"lost-decide", CRM_T_lost_decide},
    {"staff-add", CRM_T_staff_add},        {"staff-update", CRM_T_staff_update},
    {"staff-leave", CRM_T_staff_leave},   {"staff-away", CRM_T_staff_away},
    {"reassign", CRM_T_consultant_reassign}, {"owner-decide", CRM_T_owner_decide},
};
#define S_NKINDS (sizeof s_kinds / sizeof s_kinds[0])
#define S_FILE_MAX ((size_t) 1 << 30)
#define S_I64_TEXT_MAX 999999999999999999LL /* 18 digits: what crm_msg_set_text takes */

/* What the client found wrong with a record before sending it, each as
   the gateway words its own errors: field, code, text. */
#define S_ERRS_MAX 32
typedef struct {
    int n;
    struct {
        char field[64];
        const char *code;
        char text[160];
    } e[S_ERRS_MAX];
} s_errs_t;

static void s_err_add(s_errs_t *errs, bool first, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void s_err_add(s_errs_t *errs, bool first, const char *field, const char *code, const char *fmt, ...)
{
    if (errs->n >= S_ERRS_MAX)
        return;
    int at = first ? 0 : errs->n;
    memmove(&errs->e[at + 1], &errs->e[at], sizeof errs->e[0] * (size_t) (errs->n - at));
    errs->n++;
    snprintf(errs->e[at].field, sizeof errs->e[at].field, "%s", field);
    errs->e[at].code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errs->e[at].text, sizeof errs->e[at].text, fmt, ap);
    va_end(ap);
}

static bool s_err_has(const s_errs_t *errs, const char *field)
{
    for (int i = 0; i < errs->n; i++)
        if (!strcmp(errs->e[i].field, field))
            return true;
    return false;
}

/* The required body fields a message lacks, from proto/messages.def (a
   field whose value was refused is not reported twice). */
#define S_F_REQUIRED(ident, field, type, req, doc)                                                 \
    if (!strcmp(#req, "REQ") && !b->has.field && strcmp(#field, "record_id") &&                    \
        !s_err_has(errs, #field))                                                                  \
        s_err_add(errs, false, #field, "required", "required");
#define S_M_REQUIRED(ident, wire, stream, doc)                                                     \
    static void s_required_##ident(const crm_body_##ident##_t *b, s_errs_t *errs)                  \
    {                                                                                              \
        (void) b, (void) errs;                                                                     \
        CRM_FIELDS_##ident(S_F_REQUIRED)                                                           \
    }
CRM_MESSAGES(S_M_REQUIRED)
#undef S_M_REQUIRED
#undef S_F_REQUIRED

static void s_required(const crm_msg_t *m, s_errs_t *errs)
{
    switch (m->type) {
#define S_M_CASE(ident, wire, stream, doc)                                                         \
    case CRM_T_##ident: s_required_##ident(&m->body.ident, errs); break;
        CRM_MESSAGES(S_M_CASE)
#undef S_M_CASE
    default: break;
    }
}

/* A JSON string value fit for a body string: no NUL, at most CRM_STR_MAX
   bytes. NULL (with the error added) otherwise. */
static const char *s_json_text(json_t *v, const char *field, s_errs_t *errs)
{
    if (!json_is_string(v)) {
        s_err_add(errs, false, field, "invalid", "a string expected");
        return NULL;
    }
    const char *s = json_string_value(v);
    if (json_string_length(v) != strlen(s)) {
        s_err_add(errs, false, field, "invalid", "NUL in a string");
        return NULL;
    }
    if (json_string_length(v) > CRM_STR_MAX) {
        s_err_add(errs, false, field, "too_long", "over %d bytes", CRM_STR_MAX);
        return NULL;
    }
    return s;
}

/* Sets body field `field` (of proto type `type`) from a JSON value, or
   adds why not. */
static void s_set_field(crm_msg_t *m, const char *field, const char *type, json_t *v, s_errs_t *errs)
{
    crm_err_t e;
    char num[32];
    const char *text = NULL;
    if (!strcmp(type, "I64")) {
        if (!json_is_integer(v)) {
            s_err_add(errs, false, field, "invalid", "an integer expected");
            return;
        }
        json_int_t n = json_integer_value(v);
        if (n > S_I64_TEXT_MAX || n < -S_I64_TEXT_MAX) {
            s_err_add(errs, false, field, "invalid", "an integer of at most 18 digits expected");
            return;
        }
        snprintf(num, sizeof num, "%lld", (long long) n);
        text = num;
    } else if (!strcmp(type, "BOOL")) {
        if (!json_is_boolean(v)) {
            s_err_add(errs, false, field, "invalid", "true or false expected");
            return;
        }
        text = json_is_true(v) ? "true" : "false";
    } else if (!strcmp(type, "STRS")) {
        if (!json_is_array(v)) {
            s_err_add(errs, false, field, "invalid", "an array of strings expected");
            return;
        }
        if (json_array_size(v) > CRM_STRS_MAX) {
            s_err_add(errs, false, field, "too_long", "more than %d entries", CRM_STRS_MAX);
            return;
        }
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item)) {
                s_err_add(errs, false, field, "invalid", "an array of strings expected");
                return;
            }
        }
        json_array_foreach(v, i, item)
        {
            const char *s = s_json_text(item, field, errs);
            if (!s)
                return;
            if (crm_msg_set_text(m, field, s, &e) != 0) {
                s_err_add(errs, false, field, "invalid", "%s", e.text);
                return;
            }
        }
        return;
    } else {
        text = s_json_text(v, field, errs);
        if (!text)
            return;
    }
    if (crm_msg_set_text(m, field, text, &e) != 0)
        s_err_add(errs, false, field, "invalid", "%s", e.text);
}

typedef struct {
    s_dealer_t *d;
    crm_type_t type;
    const char *kind;
    zsock_t *sock;
    long records, stored, refused;
    bool stop;        /* the gateway stopped answering: nothing more is sent */
    int stop_rc;
    char stop_why[80];
} s_sender_t;

static void s_out_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void s_out_key(FILE *out, const char *key)
{
    fputc(',', out);
    s_out_str(out, key);
    fputc(':', out);
}

static void s_out_strs(FILE *out, const char *key, const crm_strs_t *list)
{
    if (!list || !list->n)
        return;
    s_out_key(out, key);
    fputc('[', out);
    for (size_t i = 0; i < list->n; i++) {
        if (i)
            fputc(',', out);
        s_out_str(out, list->v[i]);
    }
    fputc(']', out);
}

/* The line for one record: {"record":N[,"line":L][,"record_id":..],"ok":..,
   then code, message, id, customer_id, created, findings, errors when
   present}, as crm_dealer.py writes it. */
static void s_out_record(long record, long line, const char *record_id, const crm_body_dealer_reply_t *a,
                         const crm_strs_t *errors)
{
    FILE *out = stdout;
    fprintf(out, "{\"record\":%ld", record);
    if (line > 0)
        fprintf(out, ",\"line\":%ld", line);
    if (record_id) {
        s_out_key(out, "record_id");
        s_out_str(out, record_id);
    }
    fprintf(out, ",\"ok\":%s", a->ok ? "true" : "false");
    const char *strs[][2] = {{"code", a->code}, {"message", a->message}, {"id", a->id},
                             {"customer_id", a->customer_id}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i][1]) {
            s_out_key(out, strs[i][0]);
            s_out_str(out, strs[i][1]);
        }
    if (a->has.created)
        fprintf(out, ",\"created\":%s", a->created ? "true" : "false");
    if (a->has.count)
        fprintf(out, ",\"count\":%lld", (long long) a->count);
    s_out_strs(out, "findings", a->has.findings ? &a->findings : NULL);
    s_out_strs(out, "errors", errors ? errors : a->has.errors ? &a->errors : NULL);
    fputs("}\n", out);
    fflush(out);
}

/* A record refused before it was sent: its line, as an answer would be. */
static void s_out_client_errors(s_sender_t *s, long record, long line, const char *record_id,
                                const s_errs_t *errs)
{
    crm_body_dealer_reply_t a = {.ok = false};
    char message[256];
    crm_strs_t list = {0};
    snprintf(message, sizeof message, "%s: %s", errs->e[0].field, errs->e[0].text);
    a.code = (char *) errs->e[0].code;
    a.message = message;
    for (int i = 0; i < errs->n; i++) {
        char entry[300];
        snprintf(entry, sizeof entry, "%s|%s|%s", errs->e[i].field, errs->e[i].code, errs->e[i].text);
        if (crm_strs_push(&list, entry) != 0)
            break;
    }
    s_out_record(record, line, record_id, &a, &list);
    for (size_t i = 0; i < list.n; i++)
        free(list.v[i]);
    free(list.v);
    char c[64], f[80];
    crm_warn("dealer.record_not_sent", "dealer=%s record=%ld field=%s code=%s", s->d->dealer, record,
             crm_log_value(errs->e[0].field, f, sizeof f), crm_log_value(errs->e[0].code, c, sizeof c));
    s->refused++;
}

/* One record: checked and converted by the field types of messages.def,
   sent (s_call), its line written. `obj` NULL: a line that is not JSON. */
static void s_send_record(s_sender_t *s, long record, long line, json_t *obj)
{
    s_dealer_t *d = s->d;
    s_errs_t errs = {0};
    s->records++;
    if (!json_is_object(obj)) {
        s_err_add(&errs, false, "record", "invalid", obj ? "not a JSON object" : "not valid JSON");
        s_out_client_errors(s, record, line, NULL, &errs);
        return;
    }
    json_t *rid = json_object_get(obj, "record_id");
    const char *record_id = json_is_string(rid) ? json_string_value(rid) : NULL;
    if (record_id && (!*record_id || json_string_length(rid) != strlen(record_id)))
        record_id = NULL; /* empty, or with a NUL: refused below */
    crm_msg_t m;
    crm_msg_init(&m, s->type);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (json_is_null(v))
            continue; /* absent */
        const char *type = crm_msg_field_type(s->type, key);
        if (!type) {
            char k[80];
            crm_warn("dealer.field_dropped", "dealer=%s record=%ld field=%s hint=\"not a field of %s\"",
                     d->dealer, record, crm_log_value(key, k, sizeof k), crm_type_name(s->type));
            continue;
        }
        s_set_field(&m, key, type, v, &errs);
    }
    /* Never made up: the dealer's own id is what makes a resend harmless. */
    if (!rid || json_is_null(rid) || (json_is_string(rid) && !json_string_length(rid)))
        s_err_add(&errs, true, "record_id", "required",
                  "required: the dealer's own id of this record (the same id on every resend)");
    s_required(&m, &errs);
    if (errs.n) {
        s_out_client_errors(s, record, line, record_id, &errs);
        crm_msg_clear(&m);
        return;
    }
    msgpack_sbuffer buf;
    crm_msg_t r;
    bool got = false;
    int enc = s_encode_request(&m, &buf);
    if (enc == 0 && buf.size > CRM_FRAME_MAX) {
        /* the gateway drops a frame over its limit unanswered: refused here,
           and the records after it go on */
        s_err_add(&errs, true, "record", "too_long", "the record is over the 256 KiB of one request");
        msgpack_sbuffer_destroy(&buf);
        s_out_client_errors(s, record, line, record_id, &errs);
        crm_msg_clear(&m);
        return;
    }
    if (enc == 0)
        got = s_call(d, &s->sock, &buf, m.id, &r);
    msgpack_sbuffer_destroy(&buf);
    crm_msg_clear(&m);
    if (!got) {
        crm_body_dealer_reply_t a = {.ok = false, .code = "no_answer"};
        char message[300];
        snprintf(message, sizeof message, "no answer from %s after %lld tries", d->endpoint,
                 (long long) d->tries);
        a.message = message;
        s_out_record(record, line, record_id, &a, NULL);
        s->stop = true;
        s->stop_rc = S_EXIT_NOANSWER;
        snprintf(s->stop_why, sizeof s->stop_why, "the gateway did not answer");
        return;
    }
    const crm_body_dealer_reply_t *a = &r.body.dealer_reply;
    s_out_record(record, line, record_id, a, NULL);
    if (a->ok) {
        s->stored++;
    } else if (s_retry_code(a->code)) {
        /* still busy, unavailable or not certified after --tries */
        s->stop = true;
        s->stop_rc = !strcmp(a->code, "not_certified") ? S_EXIT_NO : S_EXIT_NOANSWER;
        snprintf(s->stop_why, sizeof s->stop_why, "the gateway still answers %s", a->code);
    } else {
        s->refused++;
    }
    crm_msg_clear(&r);
}

static bool s_blank_text(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s_blank(p[i]))
            return false;
    return true;
}

#define S_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static int s_send_file(s_dealer_t *d, const char *kind, const char *path)
{
    s_sender_t s = {.d = d, .kind = kind};
    for (size_t i = 0; i < S_NKINDS; i++)
        if (!strcmp(kind, s_kinds[i].kind))
            s.type = s_kinds[i].type;
    if (s.type == CRM_T_NONE) {
        fprintf(stderr, "crm-dealer: send: KIND is one of");
        for (size_t i = 0; i < S_NKINDS; i++)
            fprintf(stderr, " %s", s_kinds[i].kind);
        fprintf(stderr, "\n");
        return S_EXIT_USAGE;
    }
    size_t len = 0;
    char *data = crm_leadin_read_file(path, S_FILE_MAX, &len);
    if (!data) {
        fprintf(stderr, "crm-dealer: cannot read %s (%s)\n", path, strerror(errno));
        return S_EXIT_USAGE;
    }
    char *text = data;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) { /* a UTF-8 byte order mark */
        text += 3;
        len -= 3;
    }
    /* One object, an array of objects, or JSON lines (one object a line). */
    json_error_t jerr;
    json_t *all = s_blank_text(text, len) ? NULL : json_loadb(text, len, S_JSON_FLAGS, &jerr);
    bool lines = false;
    if (!all && !s_blank_text(text, len)) {
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t) (end - p));
            size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
            if (!s_blank_text(p, n)) {
                json_error_t e1;
                json_t *first = json_loadb(p, n, S_JSON_FLAGS, &e1);
                lines = json_is_object(first);
                json_decref(first);
                break;
            }
            p += n + 1;
        }
        if (!lines) {
            fprintf(stderr, "crm-dealer: %s: not JSON (line %d, column %d: %s); expected one object, an "
                            "array of objects or one object a line\n",
                    path, jerr.line, jerr.column, jerr.text);
            free(data);
            return S_EXIT_USAGE;
        }
    } else if (!all) {
        lines = true; /* nothing at all: no records */
    } else if (!json_is_object(all) && !json_is_array(all)) {
        fprintf(stderr, "crm-dealer: %s: expected one object, an array of objects or one object a line\n", path);
        json_decref(all);
        free(data);
        return S_EXIT_USAGE;
    }
    if (lines) {
        const char *p = text, *end = text + len;
        long line = 0, record = 0;
        while (p < end && !s.stop && !s_stop) {
            const char *nl = memchr(p, '\n', (size_t) (end - p));
            size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
            line++;
            if (!s_blank_text(p, n)) {
                json_error_t e1;
                json_t *obj = json_loadb(p, n, S_JSON_FLAGS, &e1);
                if (!obj)
                    crm_warn("dealer.not_json", "dealer=%s line=%ld column=%d why=\"%s\"", d->dealer, line,
                             e1.column, e1.text);
                s_send_record(&s, ++record, line, obj);
                json_decref(obj);
            }
            p += n + 1;
        }
    } else if (json_is_object(all)) {
        s_send_record(&s, 1, 0, all);
    } else {
        size_t i;
        json_t *obj;
        json_array_foreach(all, i, obj)
        {
            if (s.stop || s_stop)
                break;
            s_send_record(&s, (long) i + 1, 0, obj);
        }
    }
    json_decref(all);
    free(data);
    zsock_destroy(&s.sock);
    crm_info("dealer.sent", "dealer=%s kind=%s records=%ld stored=%ld refused=%ld", d->dealer, kind,
             s.records, s.stored, s.refused);
    if (s.stop || s_stop) {
        fprintf(stderr, "crm-dealer: stopped at record %ld: %s; what follows was not sent (sending the "
                        "whole file again is safe: a record_id already stored gets its first answer)\n",
                s.records, s_stop ? "interrupted" : s.stop_why);
        return s_stop ? S_EXIT_NOANSWER : s.stop_rc;
    }
    return s.refused ? S_EXIT_NO : S_EXIT_OK;
}

/* ------------------------------------------------------------ import */

static int s_import(s_dealer_t *d, const char *kind, const char *path)
{
    crm_type_t type = !strcmp(kind, "customer")   ? CRM_T_customer_file
                      : !strcmp(kind, "service")  ? CRM_T_service_record
                      : !strcmp(kind, "followup") ? CRM_T_followup_record
                                                  : CRM_T_NONE;
    if (type == CRM_T_NONE) {
        fprintf(stderr, "crm-dealer import: KIND is customer, service or followup, not %s\n", kind);
        return S_EXIT_USAGE;
    }
    zsock_t *sock = s_socket(d, ZMQ_DEALER, d->endpoint);
    if (!sock) {
        fprintf(stderr, "crm-dealer: cannot connect to %s\n", d->endpoint);
        return S_EXIT_NOANSWER;
    }
    zsock_set_linger(sock, 0);
    char peer[300];
    snprintf(peer, sizeof peer, "the gateway at %s", d->endpoint);
    const char *enc = crm_opt(s_opts, "encoding");
    /* no dealer_id in the bodies: the gateway takes the certified one;
       busy, unavailable and not_certified wait and send again */
    crm_import_records_t how = {.tool = "crm-dealer",
                                .sock = sock,
                                .delimiter = false,
                                .peer = peer,
                                .timeout_ms = (int) d->timeout_ms,
                                .tries = (int) d->tries,
                                .dealer = d->dealer,
                                .body_dealer = false,
                                .producer = "dealer",
                                .encoding = enc && *enc ? enc : NULL};
    int rc = crm_import_records(&how, type, path);
    zsock_destroy(&sock);
    return rc == 2 ? S_EXIT_NOANSWER : rc == 1 ? S_EXIT_NO : S_EXIT_OK;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    /* --once takes no value; crm_config's options all do, so it is taken
       out here and set as "once=1". */
    bool once = false;
    int n = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--once"))
            once = true;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    argv[argc] = NULL;
    int npos = 0;
    int prc = crm_config_parse(s_opts, argc, argv, "crm-dealer", s_summary, &npos);
    if (prc != 0)
        return prc > 0 ? S_EXIT_OK : S_EXIT_USAGE;
    crm_log_init("dealer", crm_opt(s_opts, "log-level"));
    once = once || !strcmp(crm_opt(s_opts, "once"), "1");

    s_dealer_t d = {.once = once, .rc = -1, .state_fd = -1};
    d.dealer = crm_opt(s_opts, "dealer");
    d.endpoint = crm_opt(s_opts, "endpoint");
    d.pub = crm_opt(s_opts, "pub");
    const char *cert = crm_opt(s_opts, "cert"), *server = crm_opt(s_opts, "server-cert");
    bool status = npos >= 1 && !strcmp(argv[1], "status");
    bool send = npos >= 1 && !strcmp(argv[1], "send");
    bool import = npos >= 1 && !strcmp(argv[1], "import");
    if (!d.dealer || !cert || !server || (!status && !send && !import && !crm_opt(s_opts, "state")) ||
        (npos != 0 && !((status || send || import) && npos == 3))) {
        fprintf(stderr, "crm-dealer: --dealer, --cert, --server-cert and (to follow the stream) "
                        "--state are needed; try --help\n");
        return S_EXIT_USAGE;
    }
    if (!crm_id_valid(CRM_ID_NAME, d.dealer)) {
        fprintf(stderr, "crm-dealer: --dealer: 1 to %d letters, digits, '_' or '-'\n",
                CRM_ID_NAME_MAX);
        return S_EXIT_USAGE;
    }
    if (crm_opt_i64(s_opts, "timeout-ms", 1, 3600000, &d.timeout_ms) != 0 ||
        crm_opt_i64(s_opts, "tries", 1, 100, &d.tries) != 0 ||
        crm_opt_i64(s_opts, "poll-ms", 100, 86400000, &d.poll_ms) != 0)
        return S_EXIT_USAGE;
    snprintf(d.stream, sizeof d.stream, "dealer.%s", d.dealer);
    snprintf(d.topic, sizeof d.topic, "dealer.%s:", d.dealer);
    snprintf(d.hb_prefix, sizeof d.hb_prefix, "dealer.%s=", d.dealer);
    d.state_file = crm_opt(s_opts, "state");
    d.exec = crm_opt(s_opts, "exec");
    const char *sync = crm_opt(s_opts, "sync");
    if (strcmp(sync, "each") && strcmp(sync, "batch")) {
        fprintf(stderr, "crm-dealer: --sync is each or batch\n");
        return S_EXIT_USAGE;
    }
    d.sync_batch = !strcmp(sync, "batch");

    d.cert = zcert_load(cert);
    static const byte zero[32] = {0};
    if (!d.cert || !memcmp(zcert_secret_key(d.cert), zero, sizeof zero)) {
        fprintf(stderr, "crm-dealer: %s is not a secret certificate\n", cert);
        zcert_destroy(&d.cert);
        return S_EXIT_NO;
    }
    /* The gateway trusts the certificate's id, not ours: a mismatch would
       follow (and write the state file of) the wrong stream. */
    const char *certified = zcert_meta(d.cert, "dealer-id");
    if (certified && strcmp(certified, d.dealer)) {
        char shown[64];
        fprintf(stderr, "crm-dealer: %s is the certificate of dealer %s, not %s\n", cert,
                crm_log_value(certified, shown, sizeof shown), d.dealer);
        zcert_destroy(&d.cert);
        return S_EXIT_NO;
    }
    zcert_t *sc = zcert_load(server);
    if (!sc) {
        fprintf(stderr, "crm-dealer: cannot read the gateway's certificate %s\n", server);
        zcert_destroy(&d.cert);
        return S_EXIT_NO;
    }
    snprintf(d.server_key, sizeof d.server_key, "%s", zcert_public_txt(sc));
    zcert_destroy(&sc);

    /* Our own handlers: the current dispatch is finished, the state written,
       then the loop ends. */
    zsys_handler_set(NULL);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    if (!import) {
        /* an import ends at once on a signal: sending it again is safe */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);

    int rc = status   ? s_status(&d, argv[2], argv[3])
             : send   ? s_send_file(&d, argv[2], argv[3])
             : import ? s_import(&d, argv[2], argv[3])
                      : s_run(&d);
    zcert_destroy(&d.cert);
    return rc;
}
