#include "crm_service.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_STREAMS 16
#define S_CATCHUP_BATCH 1000
#define S_HB_QUIET_MS 3000

typedef struct {
    char name[CRM_NAME_MAX];
    uint64_t cursor;   /* last applied (or skipped) number */
    uint64_t flushed;  /* what Redis holds for this consumer */
    bool stale;        /* a gap or a failure: ask Redis soon */
    bool reload;       /* a commit failed: Redis holds the truth of the cursor */
} s_stream_t;

typedef struct {
    uint64_t applied, skipped, duplicates, gaps, refused, frames_bad, published, dropped;
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
    int tick_ids[8];
    int nticks;
    crm_publish_hook_fn hook;
    void *hook_arg;
    /* Batch of messages for handlers marked .batch, applied in one commit. */
    crm_tx_t *batch_tx;
    s_stream_t *batch_stream;
    int batch_n;
    /* test hooks */
    long drop_every; /* 0: none, 1: every send, k: every k-th */
    long die_after;  /* raise SIGKILL after this many commits, before sending */
    long commits;
};

/* ------------------------------------------------------------ accessors */

crm_store_t *crm_service_store(crm_service_t *svc) { return svc->store; }
zloop_t *crm_service_loop(crm_service_t *svc) { return svc->loop; }
const char *crm_service_opt(crm_service_t *svc, const char *name) { return crm_opt(svc->opts, name); }
const char *crm_service_name(crm_service_t *svc) { return svc->def->name; }
void crm_service_set_state(crm_service_t *svc, void *state) { svc->state = state; }
void *crm_service_state(crm_service_t *svc) { return svc->state; }

crm_tx_t *crm_service_tx(crm_service_t *svc)
{
    crm_tx_reset(svc->tx);
    return svc->tx;
}

/* -------------------------------------------------------------- publish */

void crm_service_set_publish_hook(crm_service_t *svc, crm_publish_hook_fn fn, void *arg)
{
    svc->hook = fn;
    svc->hook_arg = arg;
}

void crm_service_publish(crm_service_t *svc, crm_tx_t *tx)
{
    void *sock = zsock_resolve(svc->pub);
    for (size_t i = 0; i < crm_tx_emit_count(tx); i++) {
        const crm_emit_t *e = crm_tx_emit_at(tx, i);
        if (!e->seq)
            continue;
        if (svc->hook)
            svc->hook(svc->hook_arg, e);
        if (svc->drop_every && (svc->drop_every == 1 || e->seq % (uint64_t) svc->drop_every == 0)) {
            svc->stats.dropped++;
            continue;
        }
        char topic[CRM_NAME_MAX + 2];
        int n = snprintf(topic, sizeof topic, "%s:", e->stream);
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

int crm_service_commit(crm_service_t *svc, crm_tx_t *tx)
{
    int rc = crm_store_commit(svc->store, tx);
    svc->commits++;
    if (svc->die_after && svc->commits >= svc->die_after) {
        crm_warn("test.die_after_exec", "commits=%ld", svc->commits);
        raise(SIGKILL);
    }
    crm_service_publish(svc, tx);
    return rc;
}

void crm_service_keep_reject(crm_service_t *svc, const char *origin, const char *field,
                             const char *reason, const void *frame, size_t len)
{
    char size[24];
    snprintf(size, sizeof size, "%zu", len);
    size_t keep = len > CRM_FRAME_MAX ? CRM_FRAME_MAX : len;
    const char *argv[] = {"XADD",   CRM_KEY_REJECTS, "MAXLEN", "~",    CRM_REJECTS_MAXLEN,
                          "*",      "service",       svc->def->name, "origin", origin,
                          "field",  field,           "reason", reason, "size",
                          size,     "frame",         frame ? frame : ""};
    size_t lens[18];
    for (int i = 0; i < 17; i++)
        lens[i] = strlen(argv[i]);
    lens[17] = frame ? keep : 0;
    redisReply *r = crm_store_cmdargv(svc->store, 18, argv, lens);
    if (!r)
        crm_error("reject.not_kept", "origin=%s reason=\"%s\"", origin, reason);
    freeReplyObject(r);
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

static void s_flush_cursors(crm_service_t *svc)
{
    if (s_flush_batch(svc) != 0)
        return;
    for (int i = 0; i < svc->nstreams; i++) {
        s_stream_t *s = &svc->streams[i];
        if (s->cursor == s->flushed)
            continue;
        /* Only ever forward: a handler's own commit may have gone further. */
        redisReply *r = crm_store_cmd(svc->store,
                                      "EVAL %s 1 %s %s %llu", 
                                      "local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') "
                                      "if tonumber(ARGV[2]) > c then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end "
                                      "return 1",
                                      svc->cursor_key, s->name, (unsigned long long) s->cursor);
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

/* Commits the open batch: the handlers' effects and the cursor together. */
static int s_flush_batch(crm_service_t *svc)
{
    s_stream_t *st = svc->batch_stream;
    if (!st)
        return 0;
    crm_tx_t *tx = svc->batch_tx;
    int n = svc->batch_n;
    svc->batch_stream = NULL;
    svc->batch_n = 0;
    crm_tx_cmd(tx, "HSET %s %s %llu", svc->cursor_key, st->name, (unsigned long long) st->cursor);
    int rc = crm_service_commit(svc, tx);
    crm_tx_reset(tx);
    if (rc != 0) {
        s_commit_failed(st);
        return -1;
    }
    st->flushed = st->cursor;
    svc->stats.applied += (uint64_t) n;
    return 0;
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
    if (h->batch) {
        /* Write-only handlers share one transaction per batch. */
        if (svc->batch_stream && (svc->batch_stream != st || svc->batch_n >= 512) &&
            s_flush_batch(svc) != 0) {
            crm_log_context(NULL);
            return -1;
        }
        crm_handled_t rc = h->fn(svc, msg, svc->batch_tx);
        if (rc == CRM_RETRY) {
            /* Drop the whole batch: nothing of it is committed. */
            crm_tx_reset(svc->batch_tx);
            svc->batch_stream = NULL;
            svc->batch_n = 0;
            s_commit_failed(st);
            crm_log_context(NULL);
            return -1;
        }
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
    if (rc == CRM_RETRY) {
        crm_warn("handler.retry", "type=%s stream=%s seq=%llu", crm_type_name(msg->type), st->name,
                 (unsigned long long) msg->seq);
        st->stale = true;
        crm_log_context(NULL);
        return -1;
    }
    if (rc == CRM_REFUSE) {
        crm_tx_reset(tx);
        svc->stats.refused++;
        crm_warn("handler.refused", "type=%s stream=%s seq=%llu", crm_type_name(msg->type),
                 st->name, (unsigned long long) msg->seq);
        char seq[24];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long) msg->seq);
        crm_service_keep_reject(svc, st->name, seq, "refused by handler", frame, len);
    }
    crm_tx_cmd(tx, "HSET %s %s %llu", svc->cursor_key, st->name, (unsigned long long) msg->seq);
    if (crm_service_commit(svc, tx) != 0) {
        s_commit_failed(st);
        crm_log_context(NULL);
        return -1;
    }
    st->cursor = st->flushed = msg->seq;
    if (rc == CRM_APPLIED)
        svc->stats.applied++;
    crm_log_context(NULL);
    return 0;
}

/* Reads (cursor, upto] from Redis and applies it, at most `budget` events.
   Returns 1 when more is left, 0 when done, -1 on failure. */
static int s_catch_up(crm_service_t *svc, s_stream_t *st, uint64_t upto, int budget)
{
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_EVENTS_FMT, st->name);
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
    for (int i = 0; i < svc->nstreams; i++) {
        s_stream_t *st = &svc->streams[i];
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
        snprintf(name, sizeof name, "%.*s", (int) (eq - list->v[i]), list->v[i]);
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

static int s_on_sub(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    crm_service_t *svc = arg;
    /* Drain what is queued, a bounded number per wake-up. */
    for (int k = 0; k < 1000; k++) {
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
            snprintf(why, sizeof why, "%s: %s", crm_errcode_name(err.code), err.text);
            crm_warn("bus.frame_refused", "field=%s code=%s reason=\"%s\" size=%zu", err.field,
                     crm_errcode_name(err.code), err.text, zframe_size(body));
            crm_service_keep_reject(svc, origin, err.field, why, zframe_data(body), zframe_size(body));
            zmsg_destroy(&zm);
            continue;
        }
        if (msg.type == CRM_T_heartbeat)
            s_on_heartbeat(svc, &msg);
        else
            s_offer(svc, &msg, zframe_data(body), zframe_size(body));
        crm_msg_clear(&msg);
        zmsg_destroy(&zm);
    }
    s_flush_batch(svc);
    return 0;
}

/* --------------------------------------------------------------- timers */

static void s_write_status(crm_service_t *svc, const char *state)
{
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_SVC_FMT, svc->def->name);
    redisReply *r = crm_store_cmd(
        svc->store,
        "HSET %s state %s pid %d version %s pub %s consumer %s started_ms %lld seen_ms %lld "
        "applied %llu skipped %llu duplicates %llu gaps %llu refused %llu frames_bad %llu "
        "published %llu",
        key, state, (int) getpid(), CRM_VERSION, crm_opt(svc->opts, "pub"), svc->consumer,
        (long long) svc->started_ms, (long long) crm_now_ms(),
        (unsigned long long) svc->stats.applied, (unsigned long long) svc->stats.skipped,
        (unsigned long long) svc->stats.duplicates, (unsigned long long) svc->stats.gaps,
        (unsigned long long) svc->stats.refused, (unsigned long long) svc->stats.frames_bad,
        (unsigned long long) svc->stats.published);
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
        snprintf(hb.producer, sizeof hb.producer, "%s", svc->def->name);
        hb.body.heartbeat.has.streams = true;
        CRM_SET_I64(&hb, heartbeat, uptime_ms, crm_mono_ms() - svc->started_ms);
        for (size_t i = 0; i < r->elements && i < sizeof names / sizeof names[0]; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            char entry[96];
            snprintf(entry, sizeof entry, "%s=%s", names[i], r->element[i]->str);
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
    for (const char *const *set = svc->def->timer_sets; set && *set; set++) {
        int n;
        do {
            crm_tx_t *tx = crm_service_tx(svc);
            n = crm_store_claim_timers(svc->store, *set, crm_now_ms(), 500, svc->maxlen, tx);
            if (n > 0) {
                crm_info("timers.fired", "set=%s count=%d", *set, n);
                crm_service_publish(svc, tx);
            }
        } while (n == 500);
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
    snprintf(svc->streams[svc->nstreams++].name, CRM_NAME_MAX, "%s", name);
    return 0;
}

static int s_start(crm_service_t *svc)
{
    const crm_service_def_t *def = svc->def;
    int64_t timeout, wait_ms;
    if (crm_opt_i64(svc->opts, "redis-timeout-ms", 1, 600000, &timeout) != 0 ||
        crm_opt_i64(svc->opts, "stream-maxlen", 1000, INT64_MAX / 2, &svc->maxlen) != 0 ||
        crm_opt_i64(svc->opts, "redis-wait-ms", 0, 3600000, &wait_ms) != 0)
        return 2;
    const char *consumer = crm_opt(svc->opts, "consumer");
    snprintf(svc->consumer, sizeof svc->consumer, "%s", consumer && *consumer ? consumer : def->name);
    snprintf(svc->cursor_key, sizeof svc->cursor_key, CRM_KEY_CURSOR_FMT, svc->consumer);
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
            snprintf(topic, sizeof topic, "%s:", svc->streams[i].name);
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
        s_poll_redis(svc, INT32_MAX);
        zloop_reader(svc->loop, svc->sub, s_on_sub, svc);
    }
    zloop_timer(svc->loop, 1000, 0, s_on_second, svc);
    if (def->timer_sets)
        zloop_timer(svc->loop, 100, 0, s_on_timers, svc);
    for (const crm_tick_t *t = def->ticks; t && t->name && svc->nticks < 8; t++)
        svc->tick_ids[svc->nticks++] = zloop_timer(svc->loop, (size_t) t->interval_ms, 0, s_on_tick, svc);
    if (def->on_start && def->on_start(svc) != 0) {
        fprintf(stderr, "crm-%s: cannot start (see the log above)\n", def->name);
        return 1;
    }
    return 0;
}

int crm_service_main(const crm_service_def_t *def, int argc, char **argv)
{
    crm_opt_t common[] = {CRM_OPTS_COMMON(def->pub_default),
                          {"redis-wait-ms", "CRM_REDIS_WAIT_MS", "10000",
                           "How long to wait for Redis at start-up", NULL}};
    int ncommon = (int) (sizeof common / sizeof common[0]);
    int nown = s_count(def->opts);
    crm_opt_t *opts = calloc((size_t) (ncommon + nown + 1), sizeof *opts);
    if (!opts)
        return 1;
    memcpy(opts, common, sizeof common);
    if (nown)
        memcpy(opts + ncommon, def->opts, (size_t) nown * sizeof *opts);
    char prog[64];
    snprintf(prog, sizeof prog, "crm-%s", def->name);
    int rc = crm_config_parse(opts, argc, argv, prog, def->summary, NULL);
    if (rc != 0) {
        free(opts);
        return rc > 0 ? 0 : 2;
    }
    crm_log_init(def->name, crm_opt(opts, "log-level"));
    zsys_init();
    zsys_set_logstream(NULL);

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
        crm_info("service.stopped", "applied=%llu duplicates=%llu gaps=%llu refused=%llu",
                 (unsigned long long) svc->stats.applied, (unsigned long long) svc->stats.duplicates,
                 (unsigned long long) svc->stats.gaps, (unsigned long long) svc->stats.refused);
    }
    zloop_destroy(&svc->loop);
    zsock_destroy(&svc->sub);
    zsock_destroy(&svc->pub);
    crm_tx_destroy(&svc->tx);
    crm_tx_destroy(&svc->batch_tx);
    crm_store_destroy(&svc->store);
    free(opts);
    return rc;
}
