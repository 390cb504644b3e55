/*  gateway: the dealer gateway inside crm-dispatcher (see gateway.h).
 *
 *  Everything runs on the dispatcher's loop: the XPUB reader, the request
 *  endpoint (crm_request), a replay timer that sends at most
 *  GATEWAY_REPLAY_BATCH stored frames per turn, and a one-second timer for
 *  heartbeats, certificate changes made by hand and a pending rebind.
 *  zauth runs in its own thread (a CZMQ actor, in crm_curve).
 */
#include "crm_str.h"
#include "gateway.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#define S_XPUB_MSG_MAX 1024 /* a subscription message: 1 byte + topic */
#define S_XPUB_HWM 10000
#define S_REPLAY_STALL_MS 60000 /* a replay whose dealer takes nothing for this long is dropped */
#define S_HB_CHUNK 500          /* dealers per MGET of their latest numbers */

typedef struct {
    bool used;
    crm_route_t *route; /* back to the dealer on the ROUTER */
    char dealer[CRM_ID_NAME_MAX + 1];
    char key[48]; /* the certificate the request came with */
    uint64_t next, last, first, count;
    int64_t wait_until_ms; /* the dealer's queue was full: try again after this */
    int64_t stalled_since_ms;
} s_replay_t;

struct gateway_t {
    zloop_t *loop;
    crm_store_t *store;
    char *pub_endpoint;
    crm_curve_t *curve;
    zsock_t *xpub;
    bool rebind; /* the XPUB is closed and waits to be bound again */
    crm_request_t rows[GATEWAY_ROWS_MAX + 4];
    crm_endpoint_def_t def;
    s_replay_t replays[GATEWAY_REPLAYS_MAX];
    size_t nreplays;
    size_t rr; /* round-robin start of the next replay turn */
    int replay_timer;
    int second_timer;
};

/* One gateway per process: the request rows reach it through this. */
static gateway_t *s_gw;

/* ------------------------------------------------------------ answers */

crm_msg_t *gateway_reply_ok(crm_req_t *req)
{
    crm_msg_t *a = crm_req_answer(req, CRM_T_dealer_reply);
    CRM_SET_BOOL(a, dealer_reply, ok, true);
    return a;
}

/* The error answer of every refusal on the gateway: a dealer.reply. */
static void s_error(crm_req_t *req, const char *field, const char *code, const char *text)
{
    crm_msg_t *a = crm_req_answer(req, CRM_T_dealer_reply);
    CRM_SET_BOOL(a, dealer_reply, ok, false);
    CRM_SET_STR(a, dealer_reply, code, code);
    char msg[600];
    crm_fmt(msg, sizeof msg, "%s: %s", field, text);
    CRM_SET_STR(a, dealer_reply, message, msg);
    crm_fmt(msg, sizeof msg, "%s|%s|%s", field, code, text);
    crm_strs_push(&a->body.dealer_reply.errors, msg);
    a->body.dealer_reply.has.errors = true;
}

/* ------------------------------------------------------------ Redis reads */

int64_t gateway_last(crm_store_t *store, const char *dealer)
{
    char key[96];
    crm_fmt(key, sizeof key, "crm:{dealer.%s}:seq", dealer);
    redisReply *r = crm_store_cmd(store, "GET %s", key);
    if (!r)
        return -1;
    int64_t last = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return last < 0 ? 0 : last;
}

/* The first number still kept (last + 1 when nothing is), or -1. */
static int64_t s_first(gateway_t *gw, const char *dealer, int64_t last)
{
    char key[96];
    crm_fmt(key, sizeof key, "crm:{dealer.%s}:events", dealer);
    redisReply *r = crm_store_cmd(gw->store, "XRANGE %s - + COUNT 1", key);
    if (!r)
        return -1;
    int64_t first = last + 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements >= 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        first = strtoll(r->element[0]->element[0]->str, NULL, 10);
    freeReplyObject(r);
    return first;
}

/* ------------------------------------------------------------ the XPUB */

static int s_on_xpub(zloop_t *loop, zsock_t *sock, void *arg);

/* Copies a topic (any bytes) into a printable log value. */
static const char *s_topic_value(const byte *data, size_t len, char *out, size_t size)
{
    char raw[128];
    size_t n = len < sizeof raw - 1 ? len : sizeof raw - 1;
    for (size_t i = 0; i < n; i++)
        raw[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char) data[i] : '?';
    raw[n] = 0;
    return crm_log_value(raw, out, size);
}

/* Binds a new XPUB; the previous listener of the same endpoint may still be
   closing in libzmq's I/O thread, in which case the one-second timer tries
   again (never a sleep on the loop). */
static int s_xpub_open(gateway_t *gw)
{
    zsock_t *sock = zsock_new(ZMQ_XPUB);
    if (!sock)
        return -1;
    crm_curve_secure(gw->curve, sock);
    zsock_set_xpub_manual(sock, 1);
    zsock_set_maxmsgsize(sock, S_XPUB_MSG_MAX);
    zsock_set_sndhwm(sock, S_XPUB_HWM);
    if (zsock_bind(sock, "%s", gw->pub_endpoint) < 0) {
        int e = zmq_errno();
        zsock_destroy(&sock);
        /* Tried again every second (the old listener may still be
           closing); at start-up the caller gives up instead. */
        gw->rebind = true;
        if (e == EADDRINUSE)
            return 1;
        crm_error("gateway.bind_failed", "endpoint=%s why=\"%s\"", gw->pub_endpoint, zmq_strerror(e));
        return -1;
    }
    if (zloop_reader(gw->loop, sock, s_on_xpub, gw) != 0) {
        zsock_destroy(&sock);
        return -1;
    }
    gw->xpub = sock;
    gw->rebind = false;
    return 0;
}

static void s_xpub_close(gateway_t *gw)
{
    if (gw->xpub) {
        zloop_reader_end(gw->loop, gw->xpub);
        zsock_destroy(&gw->xpub);
    }
}

/* A subscription is accepted only when its topic is exactly
   "dealer.<certified id>:", for the peer that sent it (XPUB manual mode:
   ZMQ_SUBSCRIBE applies to the pipe of the message just received). */
static int s_on_xpub(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    gateway_t *gw = arg;
    zframe_t *frame = zframe_recv(sock);
    if (!frame)
        return 0;
    size_t size = zframe_size(frame);
    const byte *data = zframe_data(frame);
    if (size == 0 || (data[0] != 0 && data[0] != 1)) {
        zframe_destroy(&frame);
        return 0;
    }
    bool subscribe = data[0] == 1;
    const byte *topic = data + 1;
    size_t tlen = size - 1;
    const char *dealer = crm_curve_peer(gw->curve, frame, NULL);
    char want[CRM_ID_NAME_MAX + 16] = "";
    if (dealer)
        crm_fmt(want, sizeof want, "dealer.%s:", dealer);
    bool own = dealer && tlen == strlen(want) && !memcmp(topic, want, tlen);
    char shown[160];
    s_topic_value(topic, tlen, shown, sizeof shown);
    if (own) {
        zmq_setsockopt(zsock_resolve(sock), subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic, tlen);
        crm_info(subscribe ? "gateway.subscribed" : "gateway.unsubscribed", "dealer=%s topic=%s", dealer,
                 shown);
    } else if (subscribe) {
        const char *claimed = zframe_meta(frame, "dealer-id");
        char who[64];
        crm_log_value(claimed ? claimed : "-", who, sizeof who);
        crm_warn("gateway.subscription_refused", "dealer=%s topic=\"%s\" certified=%s", who, shown,
                 dealer ? "yes" : "no");
    }
    /* An unsubscription for a topic never accepted needs nothing. */
    zframe_destroy(&frame);
    return 0;
}

void gateway_push(gateway_t *gw, const char *dealer_id, const void *frame, size_t len)
{
    if (!gw || !gw->xpub || !frame || len == 0 || len > CRM_FRAME_MAX ||
        !crm_id_valid(CRM_ID_NAME, dealer_id))
        return;
    char topic[CRM_ID_NAME_MAX + 16];
    int n = crm_fmt(topic, sizeof topic, "dealer.%s:", dealer_id);
    void *h = zsock_resolve(gw->xpub);
    if (zmq_send(h, topic, (size_t) n, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(h, frame, len, ZMQ_DONTWAIT) < 0)
        crm_debug("gateway.push_dropped", "dealer=%s why=\"%s\"", dealer_id, zmq_strerror(errno));
}

/* ------------------------------------------------------------ heartbeats */

typedef struct {
    const char *ids[S_HB_CHUNK];
    char keys[S_HB_CHUNK][64];
    size_t n;
    gateway_t *gw;
} s_hb_t;

static void s_hb_flush(s_hb_t *hb)
{
    gateway_t *gw = hb->gw;
    size_t n = hb->n;
    hb->n = 0;
    if (!n || !gw->xpub)
        return;
    const char *argv[S_HB_CHUNK + 1] = {"MGET"};
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = hb->keys[i];
    redisReply *r = crm_store_cmdargv(gw->store, (int) n + 1, argv, NULL);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && i < n; i++) {
        crm_msg_t m;
        crm_msg_init(&m, CRM_T_heartbeat);
        crm_new_id(m.id, sizeof m.id);
        m.ts = crm_now_ms();
        crm_fmt(m.producer, sizeof m.producer, "dispatcher");
        char entry[96];
        crm_fmt(entry, sizeof entry, "dealer.%s=%s", hb->ids[i],
                 r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "0");
        crm_strs_push(&m.body.heartbeat.streams, entry);
        m.body.heartbeat.has.streams = true;
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        if (crm_msg_encode(&m, &buf, NULL) == 0)
            gateway_push(gw, hb->ids[i], buf.data, buf.size);
        msgpack_sbuffer_destroy(&buf);
        crm_msg_clear(&m);
    }
    freeReplyObject(r);
}

static void s_hb_add(void *arg, const char *id)
{
    s_hb_t *hb = arg;
    hb->ids[hb->n] = id;
    crm_fmt(hb->keys[hb->n], sizeof hb->keys[0], "crm:{dealer.%s}:seq", id);
    if (++hb->n == S_HB_CHUNK)
        s_hb_flush(hb);
}

/* Every certified dealer's topic gets its latest number each second (a
   topic nobody subscribed costs the XPUB a lookup, nothing more). */
static void s_heartbeats(gateway_t *gw)
{
    if (!gw->xpub)
        return; /* closed until the rebind: nobody to tell */
    s_hb_t *hb = calloc(1, sizeof *hb);
    if (!hb)
        return;
    hb->gw = gw;
    crm_curve_each(gw->curve, s_hb_add, hb);
    s_hb_flush(hb);
    free(hb);
}

/* ------------------------------------------------------------ replay */

static int s_on_replay_tick(zloop_t *loop, int timer_id, void *arg);

static void s_replay_free(gateway_t *gw, s_replay_t *job)
{
    crm_route_destroy(&job->route);
    job->used = false;
    gw->nreplays--;
    if (gw->nreplays == 0 && gw->replay_timer >= 0) {
        zloop_timer_end(gw->loop, gw->replay_timer);
        gw->replay_timer = -1;
    }
}

/* The dealer.reply that ends a replay, sent on its route. */
static int s_replay_reply(s_replay_t *job, bool ok, const char *code, const char *message, int64_t first,
                          int64_t last)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_reply);
    CRM_SET_BOOL(&m, dealer_reply, ok, ok);
    if (code)
        CRM_SET_STR(&m, dealer_reply, code, code);
    if (message)
        CRM_SET_STR(&m, dealer_reply, message, message);
    if (first >= 0)
        CRM_SET_I64(&m, dealer_reply, first, first);
    if (last >= 0)
        CRM_SET_I64(&m, dealer_reply, last, last);
    CRM_SET_I64(&m, dealer_reply, count, (int64_t) job->count);
    int rc = crm_route_answer(job->route, &m);
    crm_msg_clear(&m);
    return rc;
}

/* Sends one batch of `job`, at most `budget` frames. Returns the number
   sent; finishes (reply, free) the job when it is done or hopeless. */
static int s_replay_step(gateway_t *gw, s_replay_t *job, int budget)
{
    int64_t now = crm_mono_ms();
    if (job->wait_until_ms > now)
        return 0;
    if (job->next > job->last) {
        int rc = s_replay_reply(job, true, NULL, NULL, (int64_t) job->first, (int64_t) job->last);
        if (rc == 1) {
            if (!job->stalled_since_ms)
                job->stalled_since_ms = now;
            job->wait_until_ms = now + 10;
            if (now - job->stalled_since_ms <= S_REPLAY_STALL_MS)
                return 0;
            crm_warn("gateway.replay_dropped", "dealer=%s why=stalled_on_reply", job->dealer);
            s_replay_free(gw, job);
            return 0;
        }
        crm_info("gateway.replayed", "dealer=%s count=%llu last=%llu", job->dealer,
                 (unsigned long long) job->count, (unsigned long long) job->last);
        s_replay_free(gw, job);
        return 0;
    }
    char key[96];
    crm_fmt(key, sizeof key, "crm:{dealer.%s}:events", job->dealer);
    redisReply *r = crm_store_cmd(gw->store, "XRANGE %s %llu-0 %llu-0 COUNT %d", key,
                                  (unsigned long long) job->next, (unsigned long long) job->last, budget);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        /* Redis away: the store reconnects lazily; the dealer asks again. */
        s_replay_reply(job, false, "unavailable", "store: try again later", -1, -1);
        freeReplyObject(r);
        s_replay_free(gw, job);
        return 0;
    }
    int sent = 0;
    bool finished = false;
    for (size_t i = 0; i < r->elements && !finished; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        uint64_t seq = strtoull(e->element[0]->str, NULL, 10);
        if (seq != job->next) {
            /* Trimmed while we were replaying: what is missing is gone. */
            char msg[160];
            crm_fmt(msg, sizeof msg, "from: replay is possible from %llu on (%llu was trimmed)",
                     (unsigned long long) seq, (unsigned long long) job->next);
            s_replay_reply(job, false, "below_retained", msg, (int64_t) seq, (int64_t) job->last);
            finished = true;
            break;
        }
        const redisReply *frame = crm_reply_field_reply(e->element[1], "m");
        if (!frame || frame->type != REDIS_REPLY_STRING) {
            job->next++; /* not ours to repair; the dealer sees a gap it cannot fill */
            continue;
        }
        int rc = crm_route_send(job->route, frame->str, frame->len);
        if (rc == 1) {
            if (!job->stalled_since_ms)
                job->stalled_since_ms = now;
            job->wait_until_ms = now + 10;
            if (now - job->stalled_since_ms > S_REPLAY_STALL_MS) {
                crm_warn("gateway.replay_dropped", "dealer=%s why=stalled next=%llu", job->dealer,
                         (unsigned long long) job->next);
                finished = true;
            }
            break;
        }
        if (rc < 0) {
            crm_info("gateway.replay_dropped", "dealer=%s why=gone next=%llu", job->dealer,
                     (unsigned long long) job->next);
            finished = true;
            break;
        }
        job->stalled_since_ms = 0;
        job->next++;
        job->count++;
        sent++;
    }
    if (!finished && r->elements == 0 && job->next <= job->last) {
        /* Nothing left between next and last: trimmed away entirely. */
        s_replay_reply(job, false, "below_retained", "from: nothing left to replay, the stream was trimmed", -1,
                       (int64_t) job->last);
        finished = true;
    }
    freeReplyObject(r);
    if (finished)
        s_replay_free(gw, job);
    return sent;
}

static int s_on_replay_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gateway_t *gw = arg;
    int budget = GATEWAY_REPLAY_BATCH;
    for (size_t n = 0; n < GATEWAY_REPLAYS_MAX && budget > 0 && gw->nreplays > 0; n++) {
        s_replay_t *job = &gw->replays[(gw->rr + n) % GATEWAY_REPLAYS_MAX];
        if (job->used)
            budget -= s_replay_step(gw, job, budget);
    }
    gw->rr = (gw->rr + 1) % GATEWAY_REPLAYS_MAX;
    return 0;
}

/* dealer.replay: answered at once when there is nothing to send, else the
   request is kept and answered by the replay timer. */
static crm_handled_t s_on_replay(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    (void) svc, (void) tx;
    gateway_t *gw = s_gw;
    const char *dealer = crm_req_peer(req);
    int64_t from = crm_req_msg(req)->body.dealer_replay.from;
    int64_t last = gateway_last(gw->store, dealer);
    int64_t first = last >= 0 ? s_first(gw, dealer, last) : -1;
    if (last < 0 || first < 0)
        return crm_req_fail(req, "store", "unavailable", "try again later");
    if (from < 1)
        from = 1;
    if (from < first && from <= last) {
        crm_warn("gateway.below_retained", "dealer=%s from=%lld first=%lld last=%lld", dealer, (long long) from,
                 (long long) first, (long long) last);
        crm_req_fail(req, "from", "below_retained", "%lld is below the retained range; replay is possible from %lld on",
                       (long long) from, (long long) first);
        crm_msg_t *a = crm_req_answer_msg(req);
        CRM_SET_I64(a, dealer_reply, first, first);
        CRM_SET_I64(a, dealer_reply, last, last);
        CRM_SET_I64(a, dealer_reply, count, 0);
        return CRM_REFUSE;
    }
    if (from > last) {
        crm_msg_t *a = gateway_reply_ok(req);
        CRM_SET_I64(a, dealer_reply, first, first);
        CRM_SET_I64(a, dealer_reply, last, last);
        CRM_SET_I64(a, dealer_reply, count, 0);
        return CRM_APPLIED;
    }
    /* One replay per dealer: a new request supersedes the one in progress
       (the dealer drops what it already has). */
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX; i++)
        if (gw->replays[i].used && !strcmp(gw->replays[i].dealer, dealer)) {
            s_replay_free(gw, &gw->replays[i]);
            break;
        }
    s_replay_t *job = NULL;
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX && !job; i++)
        if (!gw->replays[i].used)
            job = &gw->replays[i];
    if (!job)
        return crm_req_fail(req, "request", "busy", "too many replays in progress; ask again");
    memset(job, 0, sizeof *job);
    if (!(job->route = crm_req_detach(req)))
        return crm_req_fail(req, "service", "unavailable", "out of memory; ask again");
    job->used = true;
    crm_fmt(job->dealer, sizeof job->dealer, "%s", dealer);
    crm_fmt(job->key, sizeof job->key, "%s", crm_req_peer_key(req) ? crm_req_peer_key(req) : "");
    job->next = (uint64_t) from;
    job->last = (uint64_t) last;
    job->first = (uint64_t) first;
    gw->nreplays++;
    crm_info("gateway.replay", "dealer=%s from=%lld last=%lld", dealer, (long long) from, (long long) last);
    if (gw->replay_timer < 0)
        gw->replay_timer = zloop_timer(gw->loop, 1, 0, s_on_replay_tick, gw);
    return CRM_DEFERRED;
}

/* ------------------------------------------------------------ certificates */

void gateway_cut(gateway_t *gw)
{
    /* Replays for a certificate no longer trusted stop here. */
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX; i++)
        if (gw->replays[i].used && !crm_curve_trusts(gw->curve, gw->replays[i].key))
            s_replay_free(gw, &gw->replays[i]);
    /* libzmq cannot drop one XPUB peer: close the socket, bind a new one.
       Certified dealers reconnect through zauth and subscribe again; what
       they miss meanwhile they replay. */
    s_xpub_close(gw);
    if (s_xpub_open(gw) == 0)
        crm_info("gateway.xpub_rebuilt", "endpoint=%s", gw->pub_endpoint);
}

static int s_on_second(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gateway_t *gw = arg;
    bool removed = false;
    /* A certificate removed by hand (not through cert.revoke). */
    if (crm_curve_reload(gw->curve, false, &removed) == 0 && removed)
        gateway_cut(gw);
    if (gw->rebind && s_xpub_open(gw) == 0)
        crm_info("gateway.xpub_rebuilt", "endpoint=%s", gw->pub_endpoint);
    s_heartbeats(gw);
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

gateway_t *gateway_new(crm_service_t *svc, const char *cert_dir, const char *server_cert,
                       const char *pub_endpoint, const char *router_endpoint,
                       crm_request_fn on_ack, crm_request_fn on_status, const crm_request_t *uplink)
{
    if (s_gw)
        return NULL;
    gateway_t *gw = calloc(1, sizeof *gw);
    if (!gw)
        return NULL;
    gw->loop = crm_service_loop(svc);
    gw->store = crm_service_store(svc);
    gw->replay_timer = gw->second_timer = -1;
    gw->pub_endpoint = strdup(pub_endpoint ? pub_endpoint : GATEWAY_PUB_DEFAULT);
    if (!gw->pub_endpoint)
        goto fail;
    gw->curve = crm_curve_new(cert_dir ? cert_dir : GATEWAY_CERT_DIR_DEFAULT,
                              server_cert ? server_cert : GATEWAY_SERVER_CERT_DEFAULT, "dealer-id", "dealer");
    if (!gw->curve || s_xpub_open(gw) != 0)
        goto fail;
    gw->rows[0] = (crm_request_t){"dealer.replay", s_on_replay, CRM_REQ_READ, NULL, NULL, NULL, NULL, false};
    gw->rows[1] = (crm_request_t){"dealer.ack", on_ack, CRM_REQ_IDEMPOTENT, NULL, NULL, NULL, NULL, false};
    gw->rows[2] = (crm_request_t){"dealer.status", on_status, CRM_REQ_WRITE, NULL, "status", NULL, NULL, false};
    for (size_t i = 0; uplink && uplink[i].type && i < GATEWAY_ROWS_MAX; i++)
        gw->rows[3 + i] = uplink[i];
    gw->def = (crm_endpoint_def_t){"gateway", gw->rows, s_error, NULL, NULL};
    s_gw = gw;
    if (!crm_service_endpoint(svc, &gw->def, router_endpoint ? router_endpoint : GATEWAY_ROUTER_DEFAULT, gw->curve))
        goto fail;
    gw->second_timer = zloop_timer(gw->loop, GATEWAY_HEARTBEAT_MS, 0, s_on_second, gw);
    crm_info("gateway.ready", "pub=%s router=%s dealers=%zu key=%s", gw->pub_endpoint,
             router_endpoint ? router_endpoint : GATEWAY_ROUTER_DEFAULT, crm_curve_count(gw->curve),
             crm_curve_public_key(gw->curve));
    return gw;
fail:
    crm_error("gateway.start_failed", "pub=%s router=%s certs=%s", pub_endpoint ? pub_endpoint : "-",
              router_endpoint ? router_endpoint : "-", cert_dir ? cert_dir : "-");
    gateway_destroy(&gw);
    return NULL;
}

crm_curve_t *gateway_curve(gateway_t *gw) { return gw ? gw->curve : NULL; }

const char *gateway_public_key(gateway_t *gw) { return gw && gw->curve ? crm_curve_public_key(gw->curve) : NULL; }

void gateway_destroy(gateway_t **gw_p)
{
    if (!gw_p || !*gw_p)
        return;
    gateway_t *gw = *gw_p;
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX; i++)
        if (gw->replays[i].used)
            s_replay_free(gw, &gw->replays[i]);
    if (gw->replay_timer >= 0)
        zloop_timer_end(gw->loop, gw->replay_timer);
    if (gw->second_timer >= 0)
        zloop_timer_end(gw->loop, gw->second_timer);
    s_xpub_close(gw);
    crm_curve_destroy(&gw->curve);
    free(gw->pub_endpoint);
    if (s_gw == gw)
        s_gw = NULL;
    free(gw);
    *gw_p = NULL;
}
