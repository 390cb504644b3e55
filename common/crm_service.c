#include "crm_str.h"
#include "crm_service.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "crm_service_private.h"

#define S_MAX_STREAMS 16
#define S_CATCHUP_BATCH 1000
#define S_BATCH_MAX 512 /* messages of .batch handlers sharing one transaction */
#define S_HB_QUIET_MS 3000
#define S_TIMER_CLAIM 500
#define S_TIMER_ROUNDS 4
#define S_STOP_WATCHDOG_MS 800

typedef struct {
    char name[CRM_NAME_MAX];
    uint64_t cursor;   /* last applied (or skipped) number */
    uint64_t flushed;  /* what Redis holds for this consumer */
    bool stale;        /* a gap or a failure: ask Redis soon */
    bool reload;       /* a commit failed: Redis holds the truth of the cursor */
    /* The message that keeps failing while Redis answers (poison policy). */
    uint64_t fail_seq;
    int64_t fail_tries;
    int64_t fail_since_ms;
    char fail_why[300];
    uint64_t single_upto; /* apply one by one up to here (a batch was refused) */
    /* What this service itself appended to the stream, committed and not yet
       applied (its own publications never come back on the bus): applied
       from here instead of read back from Redis after a gap. */
    struct s_own *own;
    size_t nown, capown;
} s_stream_t;

struct s_own {
    uint64_t seq;
    char *frame;
    size_t len;
};
#define S_OWN_MAX 4096 /* beyond that, read back from Redis as any gap */

typedef struct {
    uint64_t applied, skipped, duplicates, gaps, refused, frames_bad, published, dropped, poisoned;
    uint64_t fired, conflicts;
} s_stats_t;

struct crm_service_t {
    const crm_service_def_t *def;
    crm_opt_t *opts;
    crm_store_t *store;
    crm_tx_t *tx;
    zloop_t *loop;
    zsock_t *pub;
    zsock_t *sub;
    char consumer[CRM_NAME_MAX];
    char cursor_key[96];
    int64_t maxlen;
    s_stream_t streams[S_MAX_STREAMS];
    int nstreams;
    int64_t last_hb_ms;
    int64_t started_ms;
    s_stats_t stats;
    void *state;
    int *tick_ids;
    int nticks;
    /* Requests: the control endpoint's table (the service's rows and the
       framework's own) and every endpoint, destroyed at stop. */
    crm_request_t *control_rows;
    crm_endpoint_def_t control_def;
    crm_endpoint_t **endpoints;
    size_t nendpoints;
    int64_t answer_ttl_ms;
    int64_t retry_max, retry_max_ms;
    int64_t fire_batch, fire_budget_ms;
    char why[300]; /* a handler's reason for its last refusal or retry */
    bool on_start_called;
    crm_publish_hook_fn hook;
    void *hook_arg;
    /* Batch of messages for handlers marked .batch, applied in one commit. */
    crm_tx_t *batch_tx;
    s_stream_t *batch_stream;
    int batch_n;
    uint64_t batch_first;
    /* each message of the batch: its number, type and first command, so
       what Redis refuses of a batch is kept with the message it belongs to */
    struct {
        uint64_t seq;
        const char *type;
        int cmd0;
    } batch_msgs[S_BATCH_MAX];
    bool refused_now; /* a batch was dropped for a refused message: apply it alone at once */
    unsigned long batch_gen; /* changes whenever a batch is dropped (applied again later) */
    unsigned long prefetches; /* the service's prefetch calls: a new one replaces what the last read */
    crm_msg_t *drain_msgs;   /* S_DRAIN, the bus messages of one wake-up */
    crm_msg_t *drain_new;    /* S_DRAIN, shallow copies of those not applied yet (s_prefetch_new) */
    zmsg_t **drain_zms;
    /* test hooks */
    long drop_every; /* 0: none, 1: every send, k: every k-th */
    long die_after;  /* raise SIGKILL after this many commits, before sending */
    long commits;
};

/* ------------------------------------------------------------ accessors */

crm_store_t *crm_service_store(crm_service_t *svc) { return svc->store; }
zloop_t *crm_service_loop(crm_service_t *svc) { return svc->loop; }
const char *crm_service_opt(crm_service_t *svc, const char *name) { return crm_opt(svc->opts, name); }
int crm_service_opt_i64(crm_service_t *svc, const char *name, int64_t min, int64_t max, int64_t *out)
{
    return crm_opt_i64(svc->opts, name, min, max, out);
}
const char *crm_service_name(crm_service_t *svc) { return svc->def->name; }
void crm_service_set_state(crm_service_t *svc, void *state) { svc->state = state; }
void *crm_service_state(crm_service_t *svc) { return svc->state; }

crm_tx_t *crm_service_tx(crm_service_t *svc)
{
    crm_tx_reset(svc->tx);
    return svc->tx;
}

int64_t crm_service_answer_ttl_ms(crm_service_t *svc) { return svc->answer_ttl_ms; }

void crm_service_why(crm_service_t *svc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    crm_vfmt(svc->why, sizeof svc->why, fmt, ap);
    va_end(ap);
}

bool crm_service_ids_ok(crm_service_t *svc, const char *const *ids, const char *const *names, size_t n,
                        size_t required)
{
    for (size_t i = 0; i < n; i++) {
        if (i >= required && (!ids[i] || !*ids[i]))
            continue;
        char err[160];
        if (crm_id_check(CRM_ID_NAME, ids[i], names[i], err, sizeof err) != 0) {
            crm_service_why(svc, "%s", err);
            return false;
        }
    }
    return true;
}

crm_handled_t crm_service_failed(crm_service_t *svc)
{
    if (crm_store_passing(svc->store))
        return CRM_RETRY;
    crm_service_why(svc, "Redis refused a command: %s", crm_store_error(svc->store));
    return CRM_REFUSE;
}

int crm_service_track_endpoint(crm_service_t *svc, crm_endpoint_t *ep)
{
    crm_endpoint_t **grown = realloc(svc->endpoints, (svc->nendpoints + 1) * sizeof *grown);
    if (!grown)
        return -1;
    svc->endpoints = grown;
    svc->endpoints[svc->nendpoints++] = ep;
    return 0;
}

/* -------------------------------------------------------------- publish */

void crm_service_set_publish_hook(crm_service_t *svc, crm_publish_hook_fn fn, void *arg)
{
    svc->hook = fn;
    svc->hook_arg = arg;
}

static s_stream_t *s_stream(crm_service_t *svc, const char *name);

/* Keeps a copy of an event the service appended to a stream it reads. */
static void s_own_keep(crm_service_t *svc, const crm_emit_t *e)
{
    s_stream_t *st = s_stream(svc, e->stream);
    if (!st || st->reload || e->seq <= st->cursor || st->nown >= S_OWN_MAX)
        return;
    if (st->nown == st->capown) {
        size_t cap = st->capown ? st->capown * 2 : 16;
        struct s_own *grown = realloc(st->own, cap * sizeof *grown);
        if (!grown)
            return; /* read back from Redis instead */
        st->own = grown, st->capown = cap;
    }
    char *copy = malloc(e->len ? e->len : 1);
    if (!copy)
        return;
    memcpy(copy, e->frame, e->len);
    st->own[st->nown++] = (struct s_own){e->seq, copy, e->len};
}

static void s_own_drop(s_stream_t *st, size_t k)
{
    if (!st->own)
        return;
    for (size_t i = 0; i < k && i < st->nown; i++)
        free(st->own[i].frame);
    k = k < st->nown ? k : st->nown;
    memmove(st->own, st->own + k, (st->nown - k) * sizeof *st->own);
    st->nown -= k;
}

void crm_service_publish(crm_service_t *svc, crm_tx_t *tx)
{
    void *sock = zsock_resolve(svc->pub);
    for (size_t i = 0; i < crm_tx_emit_count(tx); i++) {
        const crm_emit_t *e = crm_tx_emit_at(tx, i);
        if (!e->seq)
            continue;
        s_own_keep(svc, e);
        if (svc->hook)
            svc->hook(svc->hook_arg, e);
        if (svc->drop_every && (svc->drop_every == 1 || e->seq % (uint64_t) svc->drop_every == 0)) {
            svc->stats.dropped++;
            continue;
        }
        char topic[CRM_NAME_MAX + 2];
        int n = crm_fmt(topic, sizeof topic, "%s:", e->stream);
        if (zmq_send(sock, topic, (size_t) n, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(sock, e->frame, e->len, ZMQ_DONTWAIT) < 0) {
            /* The event is in Redis; subscribers will fetch it. */
            crm_warn("bus.send_failed", "stream=%s seq=%llu error=\"%s\"", e->stream,
                     (unsigned long long) e->seq, zmq_strerror(zmq_errno()));
            continue;
        }
        svc->stats.published++;
    }
}

int crm_service_commit(crm_service_t *svc, crm_tx_t *tx) { return crm_service_commit_with(svc, tx, NULL, NULL); }

int crm_service_commit_with(crm_service_t *svc, crm_tx_t *tx, void (*meanwhile)(void *arg), void *arg)
{
    int rc = crm_store_commit_with(svc->store, tx, meanwhile, arg);
    svc->commits++;
    if (svc->die_after && svc->commits >= svc->die_after) {
        crm_warn("test.die_after_exec", "commits=%ld", svc->commits);
        raise(SIGKILL);
    }
    crm_service_publish(svc, tx);
    return rc;
}

/* The XADD of `r` into crm:rejects: queued in `tx`, or sent (its reply). */
static redisReply *s_reject_xadd(crm_service_t *svc, const crm_reject_t *r, crm_tx_t *tx)
{
    char size[24], seq[24];
    crm_fmt(size, sizeof size, "%zu", r->len);
    crm_fmt(seq, sizeof seq, "%llu", (unsigned long long) r->seq);
    size_t keep = r->len > CRM_FRAME_MAX ? CRM_FRAME_MAX : r->len;
    const char *argv[32] = {"XADD", CRM_KEY_REJECTS, "MAXLEN", "~", CRM_REJECTS_MAXLEN, "*",
                            "service", svc->def->name, "origin", r->origin ? r->origin : "-",
                            "kind", r->kind ? r->kind : "frame"};
    size_t lens[32];
    int argc = 12;
#define S_PAIR(k, v)                                                                               \
    if (v) {                                                                                       \
        argv[argc++] = k;                                                                          \
        argv[argc++] = v;                                                                          \
    }
    if (r->seq) {
        argv[argc++] = "seq";
        argv[argc++] = seq;
    }
    S_PAIR("peer", r->peer)
    S_PAIR("type", r->type)
    S_PAIR("field", r->field ? r->field : "-")
    S_PAIR("reason", r->reason ? r->reason : "-")
    argv[argc++] = "size";
    argv[argc++] = size;
#undef S_PAIR
    char ts[24];
    crm_fmt(ts, sizeof ts, "%lld", (long long) crm_now_ms());
    argv[argc++] = "ts";
    argv[argc++] = ts;
    char ncmds[24];
    if (r->commands_n) {
        crm_fmt(ncmds, sizeof ncmds, "%zu", r->commands_n);
        argv[argc++] = "commands_n";
        argv[argc++] = ncmds;
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (r->commands_n) {
        argv[argc] = "commands";
        lens[argc++] = 8;
        argv[argc] = r->commands;
        lens[argc++] = r->commands_len;
    }
    argv[argc] = "frame";
    lens[argc++] = 5;
    argv[argc] = r->frame ? r->frame : "";
    lens[argc++] = r->frame ? keep : 0;
    if (tx) {
        crm_tx_cmdargv(tx, argc, argv, lens);
        return NULL;
    }
    return crm_store_cmdargv(svc->store, argc, argv, lens);
}

void crm_service_reject(crm_service_t *svc, const crm_reject_t *r)
{
    redisReply *x = s_reject_xadd(svc, r, NULL);
    if (!x)
        crm_error("reject.not_kept", "origin=%s reason=\"%s\"", r->origin ? r->origin : "-",
                  r->reason ? r->reason : "-");
    if (r->id_out && r->id_size)
        crm_fmt(r->id_out, r->id_size, "%s", x && x->type == REDIS_REPLY_STRING ? x->str : "");
    freeReplyObject(x);
}

void crm_service_reject_partial(crm_service_t *svc, crm_tx_t *tx, const crm_reject_t *about, int except,
                                char *id_out, size_t id_size)
{
    crm_reject_t r = *about;
    const int *idx;
    size_t n = crm_tx_failed(tx, &idx), left = 0;
    for (size_t i = 0; i < n; i++)
        left += idx[i] != except;
    size_t len = 0;
    char *blob = crm_tx_failed_blob(tx, except, &len);
    char why[600];
    if (left && blob)
        crm_fmt(why, sizeof why, "Redis refused %zu of the %zu commands of its transaction (%s); the others were "
                                  "applied; crmctl rejects retry applies those %zu again once the cause is mended",
                 left, crm_tx_size(tx), crm_store_error(svc->store), left);
    else
        crm_fmt(why, sizeof why, "Redis refused part of its transaction (%s); the others were applied; %s",
                 crm_store_error(svc->store),
                 left ? "what was left out could not be kept (out of memory): mend it by hand" : "only the cursor");
    r.reason = why;
    /* Without the commands left out it must never be applied again whole. */
    if (!blob)
        r.kind = "partial";
    r.commands = blob;
    r.commands_len = len;
    r.commands_n = blob ? left : 0;
    r.id_out = id_out;
    r.id_size = id_size;
    crm_service_reject(svc, &r);
    free(blob);
}

void crm_service_keep_reject(crm_service_t *svc, const char *origin, const char *field,
                             const char *reason, const void *frame, size_t len)
{
    crm_reject_t r = {.origin = origin, .kind = "frame", .field = field, .reason = reason,
                      .frame = frame, .len = len};
    crm_service_reject(svc, &r);
}

/* -------------------------------------------------------------- cursors */

static s_stream_t *s_stream(crm_service_t *svc, const char *name)
{
    for (int i = 0; i < svc->nstreams; i++)
        if (!strcmp(svc->streams[i].name, name))
            return &svc->streams[i];
    return NULL;
}

static const crm_handler_t *s_handler(crm_service_t *svc, crm_type_t type)
{
    if (!svc->def->handlers)
        return NULL;
    const char *name = crm_type_name(type);
    for (const crm_handler_t *h = svc->def->handlers; h->type; h++)
        if (!strcmp(h->type, name))
            return h;
    return NULL;
}

static int s_flush_batch(crm_service_t *svc);

/* Moves a cursor only forward: a handler's own commit (or another
   instance of a shared consumer) may have gone further. */
#define S_CURSOR_FORWARD_LUA                                                                       \
    "local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') "                             \
    "if tonumber(ARGV[2]) > c then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end "             \
    "return 1"

static void s_flush_cursors(crm_service_t *svc)
{
    if (s_flush_batch(svc) != 0)
        return;
    for (int i = 0; i < svc->nstreams; i++) {
        s_stream_t *s = &svc->streams[i];
        if (s->cursor == s->flushed)
            continue;
        /* Only ever forward: a handler's own commit may have gone further. */
        redisReply *r = crm_store_cmd(svc->store, "EVAL %s 1 %s %s %llu", S_CURSOR_FORWARD_LUA, svc->cursor_key,
                                      s->name, (unsigned long long) s->cursor);
        if (r)
            s->flushed = s->cursor;
        freeReplyObject(r);
    }
}

/* ---------------------------------------------------------------- apply */

/* A commit whose outcome is unknown: take the cursor from Redis again
   before going on, so nothing is applied twice. */
static void s_commit_failed(s_stream_t *st)
{
    st->stale = true;
    st->reload = true;
}

/* Keeps the failed commands [from, to) of a commit Redis refused in part
   (those it holds: none, nothing kept) as a reject like `about`. */
static void s_reject_part(crm_service_t *svc, crm_tx_t *tx, const crm_reject_t *about, int from, int to)
{
    const int *idx;
    size_t n = crm_tx_failed(tx, &idx), left = 0;
    for (size_t i = 0; i < n; i++)
        left += idx[i] >= from && idx[i] < to;
    if (!left)
        return;
    crm_reject_t r = *about;
    size_t len = 0;
    char *blob = crm_tx_failed_blob_in(tx, from, to, &len);
    char why[600];
    if (blob)
        crm_fmt(why, sizeof why, "Redis refused %zu of the %d commands of its part of a batch's transaction (%s); "
                                  "the others were applied; crmctl rejects retry applies those %zu again once the "
                                  "cause is mended",
                 left, to - from, crm_store_error(svc->store), left);
    else
        crm_fmt(why, sizeof why, "Redis refused part of its transaction (%s); the others were applied; what was "
                                  "left out could not be kept (out of memory): mend it by hand",
                 crm_store_error(svc->store));
    r.reason = why;
    if (!blob)
        r.kind = "partial"; /* without the commands left out, never applied again whole */
    r.commands = blob;
    r.commands_len = len;
    r.commands_n = blob ? left : 0;
    crm_service_reject(svc, &r);
    free(blob);
}

/* Commits the open batch: the handlers' effects and the cursor together. */
static int s_flush_batch(crm_service_t *svc)
{
    s_stream_t *st = svc->batch_stream;
    if (!st)
        return 0;
    crm_tx_t *tx = svc->batch_tx;
    int n = svc->batch_n;
    uint64_t first = svc->batch_first;
    svc->batch_stream = NULL;
    svc->batch_n = 0;
    int cursor_cmd = crm_tx_cmd(tx, "HSET %s %s %llu", svc->cursor_key, st->name, (unsigned long long) st->cursor);
    int rc = crm_service_commit(svc, tx);
    if (rc != 0) {
        if (crm_store_last_error(svc->store) == CRM_STORE_REFUSED && crm_tx_failed(tx, NULL)) {
            /* Applied but for what Redis refused, cursor included or not:
               what was left out is kept, to be applied again on request. */
            for (int k = 0; k < n; k++) {
                /* each message's part with it, as if it had been applied alone */
                int to = k + 1 < n ? svc->batch_msgs[k + 1].cmd0 : cursor_cmd;
                crm_reject_t r = {.origin = st->name, .kind = "event", .seq = svc->batch_msgs[k].seq,
                                  .type = svc->batch_msgs[k].type, .field = "commit"};
                s_reject_part(svc, tx, &r, svc->batch_msgs[k].cmd0, to);
            }
            /* what belongs to no one message (the events' appends) with the range */
            char range[64];
            crm_fmt(range, sizeof range, "%llu-%llu", (unsigned long long) first, (unsigned long long) st->cursor);
            crm_reject_t r = {.origin = st->name, .kind = "event", .field = "commit", .type = range};
            s_reject_part(svc, tx, &r, cursor_cmd + 1, INT_MAX);
            svc->stats.poisoned++;
            svc->batch_gen++;
            crm_tx_reset(tx);
            s_commit_failed(st);
            return -1;
        }
        if (crm_store_last_error(svc->store) == CRM_STORE_REFUSED) {
            /* Redis refused something in the batch: apply these one by one
               next time, so the message at fault is found and kept aside. */
            st->single_upto = st->cursor;
            crm_warn("bus.batch_refused", "stream=%s from=%llu to=%llu error=\"%s\"", st->name,
                     (unsigned long long) first, (unsigned long long) st->cursor,
                     crm_store_error(svc->store));
        }
        svc->batch_gen++;
        crm_tx_reset(tx);
        s_commit_failed(st);
        return -1;
    }
    crm_tx_reset(tx);
    st->flushed = st->cursor;
    svc->stats.applied += (uint64_t) n;
    return 0;
}

/* A failure of message `seq` counts towards the poison policy only while
   Redis answers: an outage is nobody's message's fault. */
static void s_failed(crm_service_t *svc, s_stream_t *st, uint64_t seq)
{
    crm_store_err_t e = crm_store_last_error(svc->store);
    if (e == CRM_STORE_DOWN || e == CRM_STORE_BUSY) {
        /* Time spent waiting out an outage does not count either. */
        if (st->fail_seq == seq)
            st->fail_since_ms = crm_mono_ms();
        return;
    }
    if (st->fail_seq != seq) {
        st->fail_seq = seq;
        st->fail_tries = 0;
        st->fail_since_ms = crm_mono_ms();
    }
    st->fail_tries++;
    crm_fmt(st->fail_why, sizeof st->fail_why, "%s",
             svc->why[0] ? svc->why : e == CRM_STORE_REFUSED ? crm_store_error(svc->store) : "handler asked to retry");
}

static bool s_poisoned(const crm_service_t *svc, const s_stream_t *st, uint64_t seq)
{
    if (st->fail_seq != seq || st->fail_tries == 0)
        return false;
    return st->fail_tries >= svc->retry_max ||
           (st->fail_tries >= 2 && crm_mono_ms() - st->fail_since_ms >= svc->retry_max_ms);
}

/* Keeps message `seq` in crm:rejects with `why` and moves the cursor past
   it, so the stream flows again. 0, or -1 when Redis could not take it. */
static int s_set_aside(crm_service_t *svc, s_stream_t *st, const crm_msg_t *msg, const void *frame,
                       size_t len, const char *why)
{
    crm_reject_t r = {.origin = st->name, .kind = "event", .seq = msg->seq,
                      .type = crm_type_name(msg->type), .field = "handler", .reason = why,
                      .frame = frame, .len = len};
    /* Kept and passed in one transaction: never passed without being kept. */
    crm_tx_t *tx = crm_service_tx(svc);
    if (why) /* NULL: kept already; only the cursor moves */
        s_reject_xadd(svc, &r, tx);
    /* Only forward: another instance of a shared consumer may be past it. */
    crm_tx_cmd(tx, "EVAL %s 1 %s %s %llu", S_CURSOR_FORWARD_LUA, svc->cursor_key, st->name,
               (unsigned long long) msg->seq);
    if (crm_service_commit(svc, tx) != 0) {
        if (crm_store_passing(svc->store) || !why) {
            s_commit_failed(st);
            return -1;
        }
        /* Redis refuses to keep it (crm:rejects unusable): the stream
           still moves on, and the log holds what was lost. */
        crm_error("reject.not_kept", "origin=%s seq=%llu reason=\"%s\" redis=\"%s\"", st->name,
                  (unsigned long long) msg->seq, why, crm_store_error(svc->store));
        tx = crm_service_tx(svc);
        crm_tx_cmd(tx, "EVAL %s 1 %s %s %llu", S_CURSOR_FORWARD_LUA, svc->cursor_key, st->name,
                   (unsigned long long) msg->seq);
        if (crm_service_commit(svc, tx) != 0) {
            s_commit_failed(st);
            return -1;
        }
    }
    st->cursor = st->flushed = msg->seq;
    st->fail_seq = 0;
    st->fail_tries = 0;
    return 0;
}

/* For a shared consumer: WATCHes the cursors and reads this stream's.
   1 when another instance applied `seq` already (the cursor moves there),
   0 when it is ours to apply, -1 when Redis could not say. */
static int s_shared_seen(crm_service_t *svc, s_stream_t *st, uint64_t seq)
{
    redisReply *w = crm_store_cmd(svc->store, "WATCH %s", svc->cursor_key);
    redisReply *c = w ? crm_store_cmd(svc->store, "HGET %s %s", svc->cursor_key, st->name) : NULL;
    freeReplyObject(w);
    if (!c) {
        crm_store_unwatch(svc->store);
        st->stale = true;
        return -1;
    }
    uint64_t there = c->type == REDIS_REPLY_STRING ? strtoull(c->str, NULL, 10) : 0;
    freeReplyObject(c);
    if (there < seq)
        return 0;
    crm_store_unwatch(svc->store);
    st->cursor = st->flushed = there;
    svc->stats.duplicates++;
    return 1;
}

/* Applies one in-order message (seq == cursor + 1). 0 when the cursor
   moved, -1 when it must be retried later (the stream is marked stale). */
static int s_apply(crm_service_t *svc, s_stream_t *st, crm_msg_t *msg, const void *frame,
                   size_t len)
{
    const crm_handler_t *h = s_handler(svc, msg->type);
    if (!h) {
        st->cursor = msg->seq;
        svc->stats.skipped++;
        return 0;
    }
    crm_log_context(msg->id);
    if (s_poisoned(svc, st, msg->seq)) {
        /* Still failing after its tries while Redis answers: set it aside. */
        char why[400];
        crm_fmt(why, sizeof why, "still failing after %lld tries in %lld s: %s",
                 (long long) st->fail_tries, (long long) (crm_mono_ms() - st->fail_since_ms) / 1000,
                 st->fail_why);
        int rc = s_flush_batch(svc) == 0 ? s_set_aside(svc, st, msg, frame, len, why) : -1;
        if (rc == 0) {
            svc->stats.poisoned++;
            crm_error("handler.poisoned", "type=%s stream=%s seq=%llu reason=\"%s\"",
                      crm_type_name(msg->type), st->name, (unsigned long long) msg->seq, why);
        }
        crm_log_context(NULL);
        return rc;
    }
    svc->why[0] = 0;
    if (svc->def->shared_consumer) {
        /* Another instance may have applied it: ask Redis, under WATCH, so
           that whichever commits second finds the cursor moved. */
        int seen = s_flush_batch(svc) == 0 ? s_shared_seen(svc, st, msg->seq) : -1;
        if (seen != 0) {
            crm_log_context(NULL);
            return seen > 0 ? 0 : -1;
        }
    }
    if (h->batch && msg->seq > st->single_upto && !svc->def->shared_consumer) {
        /* Write-only handlers share one transaction per batch. */
        if (svc->batch_stream && (svc->batch_stream != st || svc->batch_n >= S_BATCH_MAX) &&
            s_flush_batch(svc) != 0) {
            crm_log_context(NULL);
            return -1;
        }
        int cmd0 = (int) crm_tx_size(svc->batch_tx);
        crm_handled_t rc = h->fn(svc, msg, svc->batch_tx);
        if (rc != CRM_APPLIED)
            crm_store_unwatch(svc->store);
        if (rc == CRM_REFUSE) {
            /* Nothing of it may be committed: apply the batch so far, then
               this one alone (it is refused there and kept aside). */
            st->single_upto = msg->seq;
            s_commit_failed(st);
            svc->refused_now = true;
            crm_tx_reset(svc->batch_tx);
            svc->batch_stream = NULL;
            svc->batch_n = 0;
            svc->batch_gen++;
            crm_log_context(NULL);
            return -1;
        }
        if (rc == CRM_RETRY) {
            /* Drop the whole batch: nothing of it is committed. */
            s_failed(svc, st, msg->seq);
            crm_warn("handler.retry", "type=%s stream=%s seq=%llu tries=%lld batch=%d", crm_type_name(msg->type),
                     st->name, (unsigned long long) msg->seq,
                     st->fail_seq == msg->seq ? (long long) st->fail_tries : 0LL, svc->batch_n + 1);
            crm_tx_reset(svc->batch_tx);
            svc->batch_stream = NULL;
            svc->batch_n = 0;
            svc->batch_gen++;
            s_commit_failed(st);
            crm_log_context(NULL);
            return -1;
        }
        if (!svc->batch_stream)
            svc->batch_first = msg->seq;
        svc->batch_msgs[svc->batch_n].seq = msg->seq;
        svc->batch_msgs[svc->batch_n].type = crm_type_name(msg->type);
        svc->batch_msgs[svc->batch_n].cmd0 = cmd0;
        svc->batch_stream = st;
        svc->batch_n++;
        st->cursor = msg->seq;
        crm_log_context(NULL);
        return 0;
    }
    if (s_flush_batch(svc) != 0) {
        crm_log_context(NULL);
        return -1;
    }
    crm_tx_t *tx = crm_service_tx(svc);
    crm_handled_t rc = h->fn(svc, msg, tx);
    if (rc != CRM_APPLIED)
        crm_store_unwatch(svc->store); /* a handler may have read under WATCH */
    if (rc != CRM_APPLIED)
        svc->batch_gen++; /* what a handler kept of this message is not committed */
    if (rc == CRM_RETRY) {
        s_failed(svc, st, msg->seq);
        crm_warn("handler.retry", "type=%s stream=%s seq=%llu tries=%lld", crm_type_name(msg->type),
                 st->name, (unsigned long long) msg->seq,
                 st->fail_seq == msg->seq ? (long long) st->fail_tries : 0LL);
        st->stale = true;
        crm_log_context(NULL);
        return -1;
    }
    if (rc == CRM_REFUSE) {
        crm_tx_reset(tx);
        svc->stats.refused++;
        char why[400];
        crm_fmt(why, sizeof why, "refused by the handler%s%s", svc->why[0] ? ": " : "", svc->why);
        crm_warn("handler.refused", "type=%s stream=%s seq=%llu reason=\"%s\"", crm_type_name(msg->type),
                 st->name, (unsigned long long) msg->seq, why);
        int k = s_set_aside(svc, st, msg, frame, len, why);
        crm_log_context(NULL);
        return k;
    }
    int cursor_cmd = crm_tx_cmd(tx, "HSET %s %s %llu", svc->cursor_key, st->name, (unsigned long long) msg->seq);
    int committed = crm_service_commit(svc, tx);
    if (committed != 0)
        svc->batch_gen++;
    if (committed == CRM_TX_CONFLICT) {
        /* Another instance moved a cursor (shared consumer) or a key the
           handler watched changed: nothing was applied; ask again. */
        svc->stats.conflicts++;
        crm_tx_reset(tx);
        s_commit_failed(st);
        crm_log_context(NULL);
        return -1;
    }
    if (committed != 0) {
        if (crm_store_last_error(svc->store) == CRM_STORE_REFUSED) {
            /* Redis refused a command of it: no retry can mend that. When
               the rest was applied, what was left out is kept with the
               message, to be applied again once the cause is mended. */
            char why[400];
            crm_fmt(why, sizeof why, "Redis refused its transaction: %s", crm_store_error(svc->store));
            crm_error("handler.poisoned", "type=%s stream=%s seq=%llu reason=\"%s\"",
                      crm_type_name(msg->type), st->name, (unsigned long long) msg->seq, why);
            svc->stats.poisoned++;
            int k;
            if (crm_tx_failed(tx, NULL)) {
                crm_reject_t r = {.origin = st->name, .kind = "event", .seq = msg->seq,
                                  .type = crm_type_name(msg->type), .field = "commit", .frame = frame, .len = len};
                crm_service_reject_partial(svc, tx, &r, cursor_cmd, NULL, 0);
                k = s_set_aside(svc, st, msg, NULL, 0, NULL);
            } else {
                k = s_set_aside(svc, st, msg, frame, len, why);
            }
            crm_log_context(NULL);
            return k;
        }
        s_commit_failed(st);
        crm_log_context(NULL);
        return -1;
    }
    st->cursor = st->flushed = msg->seq;
    st->fail_seq = 0;
    svc->stats.applied++;
    crm_log_context(NULL);
    return 0;
}

/* The service's prefetch over the messages about to be applied. */
static void s_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n)
{
    if (svc->def->prefetch && n) {
        svc->prefetches++;
        svc->def->prefetch(svc, msgs, n);
    }
}

/* Applies the service's own events that follow its cursor, in order, from
   the copies kept at publish, at most *budget (less what it applied);
   what does not follow (another producer's event in between) is left to
   Redis. -1 when an apply failed. */
static int s_own_apply(crm_service_t *svc, s_stream_t *st, int *budget)
{
    size_t k = 0;
    int rc = 0;
    while (rc == 0 && k < st->nown && !st->reload && *budget > 0) {
        uint64_t seq = st->own[k].seq;
        if (seq <= st->cursor) {
            k++;
            continue;
        }
        if (seq != st->cursor + 1)
            break;
        /* s_apply may commit and keep more: the array may move */
        char *frame = st->own[k].frame;
        size_t len = st->own[k].len;
        st->own[k].frame = NULL;
        k++;
        crm_msg_t msg;
        crm_err_t err;
        if (crm_msg_decode(frame, len, &msg, &err) != 0) {
            free(frame);
            break; /* read back from Redis, where it is judged as any stored event */
        }
        msg.seq = seq;
        if (s_handler(svc, msg.type)) {
            /* as a catch-up does: what the prefetch reads must not miss a
               write of the batch still open */
            if ((rc = s_flush_batch(svc)) == 0)
                s_prefetch(svc, &msg, 1);
        }
        if (rc == 0)
            rc = s_apply(svc, st, &msg, frame, len);
        crm_msg_clear(&msg);
        free(frame);
        (*budget)--;
    }
    s_own_drop(st, k);
    /* what the cursor passed (applied from Redis meanwhile) goes too */
    size_t stale = 0;
    while (stale < st->nown && st->own[stale].seq <= st->cursor)
        stale++;
    s_own_drop(st, stale);
    return rc;
}

/* Reads (cursor, upto] from Redis and applies it, at most `budget` events.
   Returns 1 when more is left, 0 when done, -1 on failure. */
static int s_catch_up(crm_service_t *svc, s_stream_t *st, uint64_t upto, int budget)
{
    if (st->nown) {
        /* a failure leaves the stream stale (the caller's -1): the tick
           takes the cursor from Redis again */
        if (s_own_apply(svc, st, &budget) != 0)
            return -1;
        if (st->cursor >= upto || budget <= 0)
            return s_flush_batch(svc) != 0 ? -1 : st->cursor < upto;
    }
    char key[96];
    crm_fmt(key, sizeof key, CRM_KEY_EVENTS_FMT, st->name);
    if (upto > st->cursor) {
        /* A number beyond what the stream has allocated (a peer's bad
           heartbeat or frame) is no loss: never move past the stream. */
        redisReply *r = crm_store_cmd(svc->store, "GET " CRM_KEY_SEQ_FMT, st->name);
        if (!r) {
            st->stale = true;
            return -1;
        }
        uint64_t allocated = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
        freeReplyObject(r);
        if (allocated < upto) {
            crm_warn("bus.beyond_stream", "stream=%s told=%llu allocated=%llu", st->name,
                     (unsigned long long) upto, (unsigned long long) allocated);
            upto = allocated;
        }
    }
    while (budget > 0 && st->cursor < upto) {
        int count = budget < S_CATCHUP_BATCH ? budget : S_CATCHUP_BATCH;
        redisReply *r = crm_store_cmd(svc->store, "XRANGE %s %llu-0 %llu-0 COUNT %d", key,
                                      (unsigned long long) st->cursor + 1,
                                      (unsigned long long) upto, count);
        if (!r) {
            st->stale = true;
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            /* Numbers allocated but nothing kept: trimmed past us. */
            crm_error("bus.events_lost", "stream=%s from=%llu to=%llu reason=trimmed", st->name,
                      (unsigned long long) st->cursor + 1, (unsigned long long) upto);
            st->cursor = upto;
            freeReplyObject(r);
            return 0;
        }
        if (svc->def->prefetch) {
            /* what the prefetch reads must not miss a write of the batch
               still open: commit it first */
            if (s_flush_batch(svc) != 0) {
                freeReplyObject(r);
                return -1;
            }
            crm_msg_t *pre = calloc(r->elements ? r->elements : 1, sizeof *pre);
            size_t np = 0;
            for (size_t i = 0; pre && i < r->elements; i++) {
                const redisReply *e = r->element[i];
                crm_err_t err;
                if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[1]->type == REDIS_REPLY_ARRAY &&
                    e->element[1]->elements >= 2 &&
                    crm_msg_decode(e->element[1]->element[1]->str, e->element[1]->element[1]->len, &pre[np],
                                   &err) == 0)
                    np++;
            }
            if (pre)
                s_prefetch(svc, pre, np);
            for (size_t i = 0; i < np; i++)
                crm_msg_clear(&pre[i]);
            free(pre);
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
                e->element[1]->elements < 2) {
                continue;
            }
            uint64_t seq = strtoull(e->element[0]->str, NULL, 10);
            const redisReply *frame = e->element[1]->element[1];
            if (seq <= st->cursor)
                continue;
            if (seq > st->cursor + 1) {
                crm_error("bus.events_lost", "stream=%s from=%llu to=%llu reason=trimmed", st->name,
                          (unsigned long long) st->cursor + 1, (unsigned long long) seq - 1);
                st->cursor = seq - 1;
            }
            crm_msg_t msg;
            crm_err_t err;
            if (crm_msg_decode(frame->str, frame->len, &msg, &err) != 0) {
                svc->stats.frames_bad++;
                crm_error("bus.bad_stored_event", "stream=%s seq=%llu field=%s reason=\"%s\"",
                          st->name, (unsigned long long) seq, err.field, err.text);
                crm_service_keep_reject(svc, st->name, err.field, err.text, frame->str, frame->len);
                st->cursor = seq;
                continue;
            }
            msg.seq = seq;
            int rc = s_apply(svc, st, &msg, frame->str, frame->len);
            crm_msg_clear(&msg);
            if (rc != 0) {
                freeReplyObject(r);
                return -1;
            }
            budget--;
        }
        bool short_read = r->elements < (size_t) count;
        freeReplyObject(r);
        if (s_flush_batch(svc) != 0)
            return -1;
        if (short_read && st->cursor < upto) {
            /* The range ends before `upto`: the newest numbers were trimmed
               or never written. Say so once and move on. */
            crm_error("bus.events_lost", "stream=%s from=%llu to=%llu reason=missing", st->name,
                      (unsigned long long) st->cursor + 1, (unsigned long long) upto);
            st->cursor = upto;
        }
    }
    return st->cursor < upto ? 1 : 0;
}

/* Asks Redis for the latest numbers of our streams and catches up. */
static void s_poll_redis(crm_service_t *svc, int budget)
{
    for (int i = 0, again = 0; i < svc->nstreams; i++) {
        s_stream_t *st = &svc->streams[i];
    redo:
        if (st->reload) {
            redisReply *c = crm_store_cmd(svc->store, "HGET %s %s", svc->cursor_key, st->name);
            if (!c)
                continue;
            st->cursor = st->flushed = c->type == REDIS_REPLY_STRING ? strtoull(c->str, NULL, 10) : 0;
            st->reload = false;
            freeReplyObject(c);
            crm_info("bus.cursor_reloaded", "stream=%s cursor=%llu", st->name,
                     (unsigned long long) st->cursor);
        }
        redisReply *r = crm_store_cmd(svc->store, "GET " CRM_KEY_SEQ_FMT, st->name);
        if (!r) {
            st->stale = true;
            continue;
        }
        uint64_t latest = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
        freeReplyObject(r);
        int rc = latest > st->cursor ? s_catch_up(svc, st, latest, budget) : 0;
        st->stale = rc != 0;
        if (rc < 0 && svc->refused_now && again++ < 64) {
            /* a batch dropped for one refused message: that one alone now,
               not a second later (a few in a row, then the next turn) */
            svc->refused_now = false;
            goto redo;
        }
    }
}

/* One message for one of our streams, from ZeroMQ. */
static void s_offer(crm_service_t *svc, crm_msg_t *msg, const void *frame, size_t len)
{
    s_stream_t *st = s_stream(svc, msg->stream);
    if (!st)
        return; /* a stream we did not subscribe to (shared prefix) */
    if (st->reload)
        return; /* the cursor is unknown until Redis is asked; the tick does it */
    if (msg->seq <= st->cursor) {
        svc->stats.duplicates++;
        crm_debug("bus.duplicate", "stream=%s seq=%llu cursor=%llu", st->name,
                  (unsigned long long) msg->seq, (unsigned long long) st->cursor);
        return;
    }
    int all = INT32_MAX;
    if (msg->seq > st->cursor + 1 && st->nown && s_own_apply(svc, st, &all) != 0) {
        st->stale = true; /* the tick finishes it */
        return;
    }
    if (msg->seq <= st->cursor)
        return; /* one of ours after all (a peer's copy of it) */
    if (msg->seq > st->cursor + 1) {
        svc->stats.gaps++;
        crm_info("bus.gap", "stream=%s cursor=%llu got=%llu", st->name,
                 (unsigned long long) st->cursor, (unsigned long long) msg->seq);
        if (s_catch_up(svc, st, msg->seq - 1, INT32_MAX) != 0)
            return; /* stale: the tick will finish it */
    }
    if (msg->seq == st->cursor + 1)
        s_apply(svc, st, msg, frame, len);
}

static void s_on_heartbeat(crm_service_t *svc, const crm_msg_t *msg)
{
    svc->last_hb_ms = crm_mono_ms();
    const crm_strs_t *list = &msg->body.heartbeat.streams;
    for (size_t i = 0; i < list->n; i++) {
        const char *eq = strchr(list->v[i], '=');
        if (!eq)
            continue;
        char name[CRM_NAME_MAX];
        crm_fmt(name, sizeof name, "%.*s", (int) (eq - list->v[i]), list->v[i]);
        s_stream_t *st = s_stream(svc, name);
        uint64_t latest = strtoull(eq + 1, NULL, 10);
        if (st && !st->reload && latest > st->cursor) {
            if (s_flush_batch(svc) != 0)
                return;
            crm_debug("bus.behind", "stream=%s cursor=%llu latest=%llu", name,
                      (unsigned long long) st->cursor, (unsigned long long) latest);
            st->stale = s_catch_up(svc, st, latest, 20000) != 0;
        }
    }
}

#define S_DRAIN 1000 /* messages taken from the bus per wake-up */

/* The prefetch over those of msgs[0..n) that may still be applied: not
   one already applied (a catch-up from Redis took it first), nor one of a
   stream whose cursor is being read again. */
static void s_prefetch_new(crm_service_t *svc, const crm_msg_t *msgs, size_t n)
{
    if (!svc->def->prefetch || !n)
        return;
    if (!svc->drain_new && !(svc->drain_new = calloc(S_DRAIN, sizeof *svc->drain_new)))
        return; /* each message reads for itself */
    size_t m = 0;
    for (size_t i = 0; i < n && m < S_DRAIN; i++) {
        const s_stream_t *st = s_stream(svc, msgs[i].stream);
        if (st && !st->reload && msgs[i].seq > st->cursor)
            svc->drain_new[m++] = msgs[i]; /* read only: never cleared */
    }
    s_prefetch(svc, svc->drain_new, m);
}

static int s_on_sub(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    crm_service_t *svc = arg;
    /* Drain what is queued, a bounded number per wake-up: decoded first,
       so a service's prefetch reads for all of them at once, then applied
       in order. */
    if (!svc->drain_msgs && !(svc->drain_msgs = calloc(S_DRAIN, sizeof *svc->drain_msgs)))
        return 0;
    if (!svc->drain_zms && !(svc->drain_zms = calloc(S_DRAIN, sizeof *svc->drain_zms)))
        return 0;
    int n = 0;
    for (int k = 0; k < S_DRAIN; k++) {
        zmsg_t *zm = zmsg_recv_nowait(sock);
        if (!zm)
            break;
        size_t nframes = zmsg_size(zm);
        zframe_t *topic = zmsg_first(zm);
        zframe_t *body = zmsg_next(zm);
        const char *origin = "bus";
        if (nframes != 2 || !body) {
            svc->stats.frames_bad++;
            crm_warn("bus.frame_refused", "field=frames reason=\"expected 2 frames (topic, envelope), got %zu\"",
                     nframes);
            zframe_t *last = body ? body : topic;
            crm_service_keep_reject(svc, origin, "frames", "wrong number of frames",
                                    last ? zframe_data(last) : NULL, last ? zframe_size(last) : 0);
            zmsg_destroy(&zm);
            continue;
        }
        crm_msg_t msg;
        crm_err_t err;
        if (crm_msg_decode(zframe_data(body), zframe_size(body), &msg, &err) != 0) {
            svc->stats.frames_bad++;
            char why[256];
            crm_fmt(why, sizeof why, "%s: %s", crm_errcode_name(err.code), err.text);
            crm_warn("bus.frame_refused", "field=%s code=%s reason=\"%s\" size=%zu", err.field,
                     crm_errcode_name(err.code), err.text, zframe_size(body));
            crm_service_keep_reject(svc, origin, err.field, why, zframe_data(body), zframe_size(body));
            zmsg_destroy(&zm);
            continue;
        }
        svc->drain_msgs[n] = msg;
        svc->drain_zms[n++] = zm;
    }
    if (n && s_flush_batch(svc) == 0)
        s_prefetch_new(svc, svc->drain_msgs, (size_t) n);
    for (int k = 0; k < n; k++) {
        crm_msg_t *msg = &svc->drain_msgs[k];
        zmsg_t *zm = svc->drain_zms[k];
        zframe_t *body = zmsg_last(zm);
        unsigned long pf = svc->prefetches;
        if (msg->type == CRM_T_heartbeat)
            s_on_heartbeat(svc, msg);
        else
            s_offer(svc, msg, zframe_data(body), zframe_size(body));
        /* A catch-up from Redis (a gap) prefetched for what it read, and
           what was read for the rest of the drain is gone: read for it
           again, all at once, not one message at a time. */
        if (svc->prefetches != pf && k + 1 < n && s_flush_batch(svc) == 0)
            s_prefetch_new(svc, &svc->drain_msgs[k + 1], (size_t) (n - k - 1));
        crm_msg_clear(msg);
        zmsg_destroy(&zm);
    }
    s_flush_batch(svc);
    if (svc->refused_now) {
        svc->refused_now = false;
        s_poll_redis(svc, 20000);
    }
    return 0;
}

/* --------------------------------------------------------------- timers */

static void s_write_status(crm_service_t *svc, const char *state)
{
    char key[96];
    crm_fmt(key, sizeof key, CRM_KEY_SVC_FMT, svc->def->name);
    redisReply *r = crm_store_cmd(
        svc->store,
        "HSET %s state %s pid %d version %s pub %s consumer %s started_ms %lld seen_ms %lld "
        "applied %llu skipped %llu duplicates %llu gaps %llu refused %llu frames_bad %llu "
        "published %llu poisoned %llu fired %llu conflicts %llu control %s",
        key, state, (int) getpid(), CRM_VERSION, crm_opt(svc->opts, "pub"), svc->consumer,
        (long long) svc->started_ms, (long long) crm_now_ms(),
        (unsigned long long) svc->stats.applied, (unsigned long long) svc->stats.skipped,
        (unsigned long long) svc->stats.duplicates, (unsigned long long) svc->stats.gaps,
        (unsigned long long) svc->stats.refused, (unsigned long long) svc->stats.frames_bad,
        (unsigned long long) svc->stats.published, (unsigned long long) svc->stats.poisoned,
        (unsigned long long) svc->stats.fired, (unsigned long long) svc->stats.conflicts,
        crm_opt(svc->opts, "control") ? crm_opt(svc->opts, "control") : "none");
    freeReplyObject(r);
    if (r && strcmp(state, "running") == 0) {
        r = crm_store_cmd(svc->store, "PEXPIRE %s 3500", key);
        freeReplyObject(r);
    } else if (r) {
        r = crm_store_cmd(svc->store, "PERSIST %s", key);
        freeReplyObject(r);
    }
}

static int s_on_second(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    crm_service_t *svc = arg;
    /* Heartbeat: the latest number of every stream, straight from Redis,
       so that it also covers events another (dead) publisher committed. */
    redisReply *r = crm_store_cmd(svc->store, "MGET"
#define S_MGET_ARG(s) " " "crm:{" #s "}:seq"
                                              CRM_STREAMS(S_MGET_ARG)
#undef S_MGET_ARG
    );
    if (r && r->type == REDIS_REPLY_ARRAY) {
        static const char *names[] = {
#define S_NAME(s) #s,
            CRM_STREAMS(S_NAME)
#undef S_NAME
        };
        crm_msg_t hb;
        crm_msg_init(&hb, CRM_T_heartbeat);
        crm_new_id(hb.id, sizeof hb.id);
        hb.ts = crm_now_ms();
        crm_fmt(hb.producer, sizeof hb.producer, "%s", svc->def->name);
        hb.body.heartbeat.has.streams = true;
        CRM_SET_I64(&hb, heartbeat, uptime_ms, crm_mono_ms() - svc->started_ms);
        for (size_t i = 0; i < r->elements && i < sizeof names / sizeof names[0]; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            char entry[96];
            crm_fmt(entry, sizeof entry, "%s=%s", names[i], r->element[i]->str);
            crm_strs_push(&hb.body.heartbeat.streams, entry);
        }
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        if (crm_msg_encode(&hb, &buf, NULL) == 0) {
            void *sock = zsock_resolve(svc->pub);
            if (zmq_send(sock, "heartbeat:", 10, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
                zmq_send(sock, buf.data, buf.size, ZMQ_DONTWAIT);
        }
        msgpack_sbuffer_destroy(&buf);
        crm_msg_clear(&hb);
    }
    freeReplyObject(r);
    s_write_status(svc, "running");
    s_flush_cursors(svc);
    /* Without heartbeats (every publisher gone) or after a failure, ask
       Redis directly. */
    bool stale = false;
    for (int i = 0; i < svc->nstreams; i++)
        stale |= svc->streams[i].stale;
    if (svc->nstreams && (stale || crm_mono_ms() - svc->last_hb_ms > S_HB_QUIET_MS))
        s_poll_redis(svc, 20000);
    return 0;
}

static int s_on_timers(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    crm_service_t *svc = arg;
    /* At most S_TIMER_ROUNDS claims per set and turn (every 100 ms), so a
       backlog of due timers never holds the loop: the rest fire next turn. */
    for (const char *const *set = svc->def->timer_sets; set && *set; set++) {
        int n, rounds = 0;
        do {
            crm_tx_t *tx = crm_service_tx(svc);
            n = crm_store_claim_timers(svc->store, *set, crm_now_ms(), S_TIMER_CLAIM, svc->maxlen, tx);
            if (n > 0) {
                crm_info("timers.fired", "set=%s count=%d", *set, n);
                crm_service_publish(svc, tx);
            }
        } while (n == S_TIMER_CLAIM && ++rounds < S_TIMER_ROUNDS);
    }
    return 0;
}

/* Compact timers: claimed and listed in timers.fired events, in rounds of
   fire-batch while they come full, for at most fire-budget-ms per turn
   (every 100 ms), so a backlog never holds the loop; the events are then
   applied at once from Redis (this service's own stream). */
static int s_on_due(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    crm_service_t *svc = arg;
    int64_t until = crm_mono_ms() + svc->fire_budget_ms;
    for (const char *const *set = svc->def->due_sets; set && *set; set++) {
        int n, limit = (int) svc->fire_batch;
        if (svc->def->due_limit) {
            /* what the service can take now: one round, applied below
               before the next turn asks again */
            int64_t l = svc->def->due_limit(svc, *set);
            if (l <= 0)
                continue;
            limit = l < limit ? (int) l : limit;
        }
        do {
            crm_tx_t *tx = crm_service_tx(svc);
            n = crm_store_fire_due(svc->store, *set, crm_now_ms(), limit, svc->maxlen, svc->def->name, tx);
            if (n > 0) {
                svc->stats.fired += (uint64_t) n;
                crm_debug("timers.fired", "set=%s count=%d", *set, n);
                crm_service_publish(svc, tx);
            }
        } while (!svc->def->due_limit && n == svc->fire_batch && crm_mono_ms() < until);
    }
    s_stream_t *st = s_stream(svc, "timer");
    if (st && !st->reload && s_flush_batch(svc) == 0) {
        redisReply *r = crm_store_cmd(svc->store, "GET " CRM_KEY_SEQ_FMT, "timer");
        uint64_t latest = r && r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
        freeReplyObject(r);
        if (latest > st->cursor)
            st->stale = s_catch_up(svc, st, latest, 200) != 0;
    }
    return 0;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    crm_service_t *svc = arg;
    for (int i = 0; i < svc->nticks; i++)
        if (svc->tick_ids[i] == timer_id)
            svc->def->ticks[i].fn(svc);
    return 0;
}

/* -------------------------------------------------- reject.retry (control) */

/* A message a handler refused (or set aside as poison) is applied again by
   the service that refused it: its handler runs with a transaction like on
   the bus, and the entry's state says what became of it. Frames that never
   decoded and refused requests cannot be applied again: their sender sends
   them again. */
static crm_handled_t s_on_reject_retry(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const char *id = crm_req_msg(req)->body.reject_retry.reject_id;
    if (!crm_id_entry_valid(id))
        return crm_req_fail(req, "reject_id", "bad_id", "an entry id of crm:rejects (1700000000000-0) expected");
    /* Two retries of one entry at once (two crmctl runs, two instances):
       the state is read under WATCH, so only one of them commits. */
    redisReply *w = crm_store_cmd(svc->store, "WATCH " CRM_KEY_REJECTS_STATE);
    if (!w)
        return crm_service_failed(svc);
    freeReplyObject(w);
    redisReply *r = crm_store_cmd(svc->store, "XRANGE " CRM_KEY_REJECTS " %s %s", id, id);
    if (!r)
        return crm_service_failed(svc);
    crm_handled_t rc = CRM_APPLIED;
    const redisReply *kv = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0]->element[1] : NULL;
    const char *service = crm_reply_field(kv, "service"), *kind = crm_reply_field(kv, "kind");
    const redisReply *frame = crm_reply_field_reply(kv, "frame"), *commands = crm_reply_field_reply(kv, "commands");
    redisReply *state = kv ? crm_store_cmd(svc->store, "HGET " CRM_KEY_REJECTS_STATE " %s", id) : NULL;
    if (!kv) {
        rc = crm_req_fail(req, "reject_id", "unknown", "no entry %s in crm:rejects (trimmed, or never there)", id);
    } else if (!state) {
        rc = crm_service_failed(svc);
    } else if (!service || strcmp(service, svc->def->name)) {
        rc = crm_req_fail(req, "reject_id", "not_yours", "%s was refused by crm-%s; ask that service",
                          id, service ? service : "?");
    } else if (state->type == REDIS_REPLY_STRING && !strncmp(state->str, "applied", 7)) {
        rc = crm_req_fail(req, "reject_id", "done", "%s was applied again already (%s)", id, state->str);
    } else if (commands && commands->type == REDIS_REPLY_STRING && commands->len) {
        /* A commit Redis refused in part: what it left out, exactly. */
        int n = crm_tx_raw(tx, commands->str, commands->len);
        if (n <= 0) {
            crm_tx_reset(tx);
            rc = crm_req_fail(req, "reject_id", "not_retryable", "%s holds commands that do not parse", id);
        } else {
            char nows[40];
            crm_fmt(nows, sizeof nows, "%lld", (long long) crm_now_ms());
            crm_tx_cmd(tx, "HSET " CRM_KEY_REJECTS_STATE " %s applied:%s", id, nows);
            crm_msg_t ev;
            crm_msg_init(&ev, CRM_T_reject_retried);
            CRM_SET_STR(&ev, reject_retried, reject_id, id);
            CRM_SET_STR(&ev, reject_retried, service, svc->def->name);
            CRM_SET_STR(&ev, reject_retried, type, crm_reply_field(kv, "type"));
            CRM_SET_STR(&ev, reject_retried, outcome, "applied");
            crm_tx_emit(tx, &ev);
            crm_msg_clear(&ev);
            crm_msg_t *a = crm_req_ok(req, id);
            char line[64];
            crm_fmt(line, sizeof line, "commands=%d", n);
            crm_strs_push(&a->body.reply.fields, line);
            a->body.reply.has.fields = true;
            crm_info("reject.applied", "reject=%s commands=%d", id, n);
        }
    } else if (!kind || strcmp(kind, "event") || !frame || frame->type != REDIS_REPLY_STRING) {
        rc = crm_req_fail(req, "reject_id", "not_retryable",
                          "%s is a refused %s: its sender sends it again", id, kind ? kind : "frame");
    } else {
        crm_msg_t m;
        crm_err_t err;
        const crm_handler_t *h = NULL;
        if (crm_msg_decode(frame->str, frame->len, &m, &err) != 0) {
            rc = crm_req_fail(req, "reject_id", "not_retryable", "%s does not decode (%s: %s)", id,
                              err.field, err.text);
        } else if (!(h = s_handler(svc, m.type))) {
            rc = crm_req_fail(req, "reject_id", "not_retryable", "crm-%s has no handler for %s",
                              svc->def->name, crm_type_name(m.type));
        } else {
            svc->why[0] = 0;
            crm_handled_t hr = h->fn(svc, &m, tx);
            char nows[40];
            crm_fmt(nows, sizeof nows, "%lld", (long long) crm_now_ms());
            crm_msg_t ev;
            crm_msg_init(&ev, CRM_T_reject_retried);
            CRM_SET_STR(&ev, reject_retried, reject_id, id);
            CRM_SET_STR(&ev, reject_retried, service, svc->def->name);
            CRM_SET_STR(&ev, reject_retried, type, crm_type_name(m.type));
            if (hr == CRM_RETRY) {
                crm_tx_reset(tx);
                rc = CRM_RETRY; /* answered unavailable: ask again */
            } else if (hr == CRM_REFUSE) {
                /* Refused again: nothing of it is applied; the entry says so. */
                crm_tx_reset(tx);
                crm_tx_cmd(tx, "HSET " CRM_KEY_REJECTS_STATE " %s refused:%s", id, nows);
                CRM_SET_STR(&ev, reject_retried, outcome, "refused");
                CRM_SET_STR(&ev, reject_retried, reason, svc->why[0] ? svc->why : "refused by the handler");
                crm_tx_emit(tx, &ev);
                crm_msg_t *a = crm_req_answer(req, CRM_T_reply);
                CRM_SET_BOOL(a, reply, ok, false);
                CRM_SET_STR(a, reply, code, "refused");
                CRM_SET_STR(a, reply, message, svc->why[0] ? svc->why : "refused by the handler again");
                CRM_SET_STR(a, reply, id, id);
            } else {
                crm_tx_cmd(tx, "HSET " CRM_KEY_REJECTS_STATE " %s applied:%s", id, nows);
                CRM_SET_STR(&ev, reject_retried, outcome, "applied");
                crm_tx_emit(tx, &ev);
                crm_req_ok(req, id);
                crm_info("reject.applied", "reject=%s type=%s", id, crm_type_name(m.type));
            }
            crm_msg_clear(&ev);
            crm_msg_clear(&m);
        }
    }
    freeReplyObject(state);
    freeReplyObject(r);
    return rc;
}

static const crm_request_t s_builtin_requests[] = {
    {"reject.retry", s_on_reject_retry, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

/* The control endpoint serves the service's rows and the framework's own. */
static int s_control(crm_service_t *svc)
{
    size_t n = 0, b = 0;
    while (svc->def->requests && svc->def->requests[n].type)
        n++;
    while (s_builtin_requests[b].type)
        b++;
    svc->control_rows = calloc(n + b + 1, sizeof *svc->control_rows);
    if (!svc->control_rows)
        return -1;
    if (n)
        memcpy(svc->control_rows, svc->def->requests, n * sizeof *svc->control_rows);
    memcpy(svc->control_rows + n, s_builtin_requests, b * sizeof *svc->control_rows);
    svc->control_def.name = "control";
    svc->control_def.requests = svc->control_rows;
    const char *bind = crm_opt(svc->opts, "control");
    if (!bind || !*bind || !strcmp(bind, "none"))
        return 0;
    if (!crm_service_endpoint(svc, &svc->control_def, bind, NULL)) {
        fprintf(stderr, "crm-%s: cannot start: cannot bind the control endpoint %s: %s\n",
                svc->def->name, bind, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

static int s_count(const crm_opt_t *o)
{
    int n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

static int s_add_stream(crm_service_t *svc, const char *name)
{
    if (!*name || s_stream(svc, name))
        return 0;
    if (svc->nstreams == S_MAX_STREAMS)
        return -1;
    crm_fmt(svc->streams[svc->nstreams++].name, CRM_NAME_MAX, "%s", name);
    return 0;
}

static int s_start(crm_service_t *svc)
{
    const crm_service_def_t *def = svc->def;
    int64_t timeout, wait_ms;
    if (crm_opt_i64(svc->opts, "redis-timeout-ms", 1, 600000, &timeout) != 0 ||
        crm_opt_i64(svc->opts, "stream-maxlen", 1000, INT64_MAX / 2, &svc->maxlen) != 0 ||
        crm_opt_i64(svc->opts, "redis-wait-ms", 0, 3600000, &wait_ms) != 0 ||
        crm_opt_i64(svc->opts, "answer-ttl-days", 1, 3650, &svc->answer_ttl_ms) != 0 ||
        crm_opt_i64(svc->opts, "retry-max", 1, 1000000, &svc->retry_max) != 0 ||
        crm_opt_i64(svc->opts, "retry-max-ms", 1000, 86400000LL * 30, &svc->retry_max_ms) != 0 ||
        crm_opt_i64(svc->opts, "fire-batch", 1, CRM_STRS_MAX, &svc->fire_batch) != 0 ||
        crm_opt_i64(svc->opts, "fire-budget-ms", 1, 10000, &svc->fire_budget_ms) != 0)
        return 2;
    svc->answer_ttl_ms *= 86400000LL;
    const char *consumer = crm_opt(svc->opts, "consumer");
    crm_fmt(svc->consumer, sizeof svc->consumer, "%s", consumer && *consumer ? consumer : def->name);
    crm_fmt(svc->cursor_key, sizeof svc->cursor_key, CRM_KEY_CURSOR_FMT, svc->consumer);
    const char *drop = getenv("CRM_TEST_DROP_SEND");
    svc->drop_every = drop ? (strcmp(drop, "all") == 0 ? 1 : atol(drop)) : 0;
    const char *die = getenv("CRM_TEST_DIE_AFTER_EXEC");
    svc->die_after = die ? atol(die) : 0;

    /* Redis may still be starting (containers): wait for it a little. */
    int64_t deadline = crm_mono_ms() + wait_ms;
    while (!(svc->store = crm_store_new(crm_opt(svc->opts, "redis-url"), (int) timeout))) {
        if (crm_mono_ms() >= deadline || zsys_interrupted) {
            fprintf(stderr, "crm-%s: cannot start: Redis at %s is not reachable\n", def->name,
                    crm_opt(svc->opts, "redis-url"));
            return 1;
        }
        zclock_sleep(200);
    }
    if (!(svc->tx = crm_tx_new(def->name, svc->maxlen)) ||
        !(svc->batch_tx = crm_tx_new(def->name, svc->maxlen)) || !(svc->loop = zloop_new()))
        return 1;

    svc->pub = zsock_new(ZMQ_PUB);
    if (!svc->pub)
        return 1;
    zsock_set_sndhwm(svc->pub, 100000);
    if (zsock_bind(svc->pub, "%s", crm_opt(svc->opts, "pub")) < 0) {
        fprintf(stderr, "crm-%s: cannot start: cannot bind %s: %s\n", def->name,
                crm_opt(svc->opts, "pub"), zmq_strerror(zmq_errno()));
        return 1;
    }

    /* Streams follow from the handlers' message types. */
    for (const crm_handler_t *h = def->handlers; h && h->type; h++) {
        crm_type_t t = crm_type_from_name(h->type, strlen(h->type));
        if (t == CRM_T_NONE || s_add_stream(svc, crm_type_stream(t)) != 0) {
            fprintf(stderr, "crm-%s: handler for unknown message type %s\n", def->name, h->type);
            return 1;
        }
    }
    if (svc->nstreams) {
        svc->sub = zsock_new(ZMQ_SUB);
        if (!svc->sub)
            return 1;
        zsock_set_rcvhwm(svc->sub, 100000);
        zsock_set_maxmsgsize(svc->sub, 4 * CRM_FRAME_MAX);
        /* A stopped peer is looked up again at most every 5 s: its name may
           take seconds to fail, in the I/O thread every socket shares. */
        zsock_set_reconnect_ivl_max(svc->sub, 5000);
        char *peers = strdup(crm_opt(svc->opts, "peers"));
        for (char *save = NULL, *p = strtok_r(peers, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            if (zsock_connect(svc->sub, "%s", p) < 0) {
                fprintf(stderr, "crm-%s: cannot start: bad peer endpoint %s\n", def->name, p);
                free(peers);
                return 1;
            }
        }
        free(peers);
        zsock_set_subscribe(svc->sub, "heartbeat:");
        for (int i = 0; i < svc->nstreams; i++) {
            char topic[CRM_NAME_MAX + 2];
            crm_fmt(topic, sizeof topic, "%s:", svc->streams[i].name);
            zsock_set_subscribe(svc->sub, topic);
        }
        /* Cursors, then catch-up, before serving: subscribed first, so
           what arrives meanwhile waits in the socket. */
        redisReply *r = crm_store_cmd(svc->store, "HGETALL %s", svc->cursor_key);
        if (!r) {
            fprintf(stderr, "crm-%s: cannot start: cannot read cursors: %s\n", def->name,
                    crm_store_error(svc->store));
            return 1;
        }
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
            s_stream_t *st = s_stream(svc, r->element[i]->str);
            if (st)
                st->cursor = st->flushed = strtoull(r->element[i + 1]->str, NULL, 10);
        }
        freeReplyObject(r);
        for (int i = 0; i < svc->nstreams; i++)
            crm_info("bus.cursor", "stream=%s cursor=%llu", svc->streams[i].name,
                     (unsigned long long) svc->streams[i].cursor);
    }
    /* Requests wait in their sockets until the loop runs; the service's own
       start (its settings, its sockets) comes before the catch-up, whose
       handlers may need it. */
    if (s_control(svc) != 0)
        return 1;
    svc->on_start_called = true;
    if (def->on_start && def->on_start(svc) != 0) {
        fprintf(stderr, "crm-%s: cannot start (see the log above)\n", def->name);
        return 1;
    }
    if (svc->nstreams) {
        s_poll_redis(svc, INT32_MAX);
        zloop_reader(svc->loop, svc->sub, s_on_sub, svc);
    }
    zloop_timer(svc->loop, 1000, 0, s_on_second, svc);
    if (def->timer_sets)
        zloop_timer(svc->loop, 100, 0, s_on_timers, svc);
    if (def->due_sets)
        zloop_timer(svc->loop, def->due_every_ms > 0 ? def->due_every_ms : 100, 0, s_on_due, svc);
    int nticks = 0;
    while (def->ticks && def->ticks[nticks].name)
        nticks++;
    if (nticks && !(svc->tick_ids = calloc((size_t) nticks, sizeof *svc->tick_ids)))
        return 1;
    for (int i = 0; i < nticks; i++) {
        const crm_tick_t *t = &def->ticks[i];
        if (t->interval_ms <= 0 || !t->fn) {
            fprintf(stderr, "crm-%s: tick %s has no interval or function\n", def->name, t->name);
            return 1;
        }
        svc->tick_ids[svc->nticks++] = zloop_timer(svc->loop, (size_t) t->interval_ms, 0, s_on_tick, svc);
    }
    return 0;
}

/* After the service has stopped and written what it keeps, ZeroMQ's own
   shutdown may still wait (an I/O thread resolving the name of a peer
   that is gone); nothing is left to lose, so the process ends within a
   second whatever ZeroMQ does. */
static volatile sig_atomic_t s_exit_code;
static void s_on_watchdog(int sig)
{
    (void) sig;
    _exit(s_exit_code);
}

static void s_arm_watchdog(int rc)
{
    s_exit_code = rc;
    struct sigaction sa = {.sa_handler = s_on_watchdog};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {S_STOP_WATCHDOG_MS / 1000, (S_STOP_WATCHDOG_MS % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

int crm_service_main(const crm_service_def_t *def, int argc, char **argv)
{
    crm_opt_t common[] = {
        CRM_OPTS_COMMON(def->pub_default),
        {"redis-wait-ms", "CRM_REDIS_WAIT_MS", "10000", "How long to wait for Redis at start-up", NULL},
        {"control", "CRM_CONTROL", def->control_default,
         "ZeroMQ ROUTER endpoint for requests from crmctl (none: no control endpoint)", NULL},
        {"answer-ttl-days", "CRM_ANSWER_TTL_DAYS", "7",
         "How long the answer to a request is kept, so that a resend gets it again", NULL},
        {"retry-max", "CRM_RETRY_MAX", "10",
         "A message still failing after this many tries while Redis answers is set aside in crm:rejects",
         NULL},
        {"retry-max-ms", "CRM_RETRY_MAX_MS", "300000", "... or after this long", NULL},
        {"fire-batch", "CRM_FIRE_BATCH", "1000", "Due timers claimed per timers.fired event (1-1024)", NULL},
        {"fire-budget-ms", "CRM_FIRE_BUDGET_MS", "50",
         "How long each 100 ms turn may spend claiming due timers", NULL}};
    int ncommon = (int) (sizeof common / sizeof common[0]);
    int nown = s_count(def->opts);
    crm_opt_t *opts = calloc((size_t) (ncommon + nown + 1), sizeof *opts);
    if (!opts)
        return 1;
    memcpy(opts, common, sizeof common);
    if (nown)
        memcpy(opts + ncommon, def->opts, (size_t) nown * sizeof *opts);
    char prog[64];
    crm_fmt(prog, sizeof prog, "crm-%s", def->name);
    int rc = crm_config_parse(opts, argc, argv, prog, def->summary, NULL);
    if (rc != 0) {
        free(opts);
        return rc > 0 ? 0 : 2;
    }
    crm_log_init(def->name, crm_opt(opts, "log-level"));
    zsys_init();
    zsys_set_logstream(NULL);
    /* Whatever a socket still holds at exit is in Redis. */
    zsys_set_linger(0);

    crm_service_t svc_storage = {0};
    crm_service_t *svc = &svc_storage;
    svc->def = def;
    svc->opts = opts;
    svc->started_ms = crm_mono_ms();
    svc->last_hb_ms = crm_mono_ms();
    rc = s_start(svc);
    if (rc == 0) {
        crm_info("service.started", "pub=%s consumer=%s streams=%d pid=%d version=%s",
                 crm_opt(opts, "pub"), svc->consumer, svc->nstreams, (int) getpid(), CRM_VERSION);
        s_write_status(svc, "running");
        zloop_start(svc->loop);
        s_flush_batch(svc);
        crm_info("service.stopping", "reason=%s", zsys_interrupted ? "signal" : "loop_ended");
        s_flush_cursors(svc);
        if (def->on_stop)
            def->on_stop(svc);
        s_write_status(svc, "stopped");
        crm_info("service.stopped", "applied=%llu duplicates=%llu gaps=%llu refused=%llu poisoned=%llu",
                 (unsigned long long) svc->stats.applied, (unsigned long long) svc->stats.duplicates,
                 (unsigned long long) svc->stats.gaps, (unsigned long long) svc->stats.refused,
                 (unsigned long long) svc->stats.poisoned);
        s_arm_watchdog(rc);
    } else {
        if (def->on_stop && svc->on_start_called)
            def->on_stop(svc); /* what a failed start made */
        s_arm_watchdog(rc);
    }
    for (size_t i = 0; i < svc->nendpoints; i++)
        crm_endpoint_destroy(&svc->endpoints[i]);
    free(svc->endpoints);
    free(svc->control_rows);
    free(svc->tick_ids);
    zloop_destroy(&svc->loop);
    zsock_destroy(&svc->sub);
    zsock_destroy(&svc->pub);
    crm_tx_destroy(&svc->tx);
    crm_tx_destroy(&svc->batch_tx);
    free(svc->drain_msgs);
    free(svc->drain_new);
    free(svc->drain_zms);
    for (int i = 0; i < svc->nstreams; i++) {
        s_own_drop(&svc->streams[i], svc->streams[i].nown);
        free(svc->streams[i].own);
    }
    crm_store_destroy(&svc->store);
    free(opts);
    return rc;
}

unsigned long crm_service_batch(const crm_service_t *svc) { return svc->batch_gen; }
