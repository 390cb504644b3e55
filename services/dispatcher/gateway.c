/*  gateway: the dealer gateway inside crm-dispatcher (see gateway.h).
 *
 *  Everything runs on the dispatcher's zloop: two socket readers, a replay
 *  timer that sends at most GATEWAY_REPLAY_BATCH stored frames per turn, and
 *  a reload timer for the certificate directory. zauth runs in its own
 *  thread (a CZMQ actor) and answers the ZAP requests of both sockets.
 *
 *  What CZMQ 4.2 does, checked on this build: zauth looks the client's key
 *  up in a zcertstore of the directory and, when found, puts every metadata
 *  entry of the certificate into the ZAP reply (at most about 500 bytes in
 *  all, so keep certificate metadata short) and sets the User-Id to the
 *  client's public key (z85). libzmq then attaches them to every message
 *  from that peer, including the subscription messages an XPUB receives,
 *  so zframe_meta(frame, "dealer-id") names the certified dealer. The
 *  zcertstore re-reads the directory when its file count, size or mtime
 *  changes, so a new connection of a revoked key is refused at once; a
 *  connection established before the revocation lives on until
 *  gateway_reload_certs cuts it.
 */
#include "gateway.h"

#include "crm_lead.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "crm_clock.h"
#include "crm_keys.h"
#include "crm_log.h"

#define S_PRODUCER "dispatcher"
#define S_XPUB_MSG_MAX 1024 /* a subscription message: 1 byte + topic */
#define S_XPUB_HWM 10000
#define S_ROUTER_HWM 4096
#define S_REPLAY_STALL_MS 60000 /* a replay whose dealer takes nothing for this long is dropped */
#define S_REBIND_TRIES 100      /* x 10 ms: the old listener is closed asynchronously */

typedef struct {
    bool used;
    zframe_t *rid; /* the dealer's routing id on the ROUTER */
    char dealer[GATEWAY_DEALER_ID_MAX + 1];
    char key[41]; /* the certificate the request came with */
    char corr[CRM_ID_MAX];
    uint64_t next, last, first, count;
    int64_t wait_until_ms; /* the dealer's queue was full: try again after this */
    int64_t stalled_since_ms;
} s_replay_t;

struct gateway_t {
    zloop_t *loop;
    crm_store_t *store;
    char *cert_dir;
    char *pub_endpoint;
    char *router_endpoint;
    gateway_handlers_t handlers;
    zactor_t *auth;
    zcert_t *cert;
    zsock_t *xpub;
    zsock_t *router;
    zhashx_t *keys; /* certified public key (z85) -> dealer id */
    s_replay_t replays[GATEWAY_REPLAYS_MAX];
    size_t nreplays;
    size_t rr; /* round-robin start of the next replay turn */
    int replay_timer;
    int reload_timer;
};

bool gateway_dealer_id_valid(const char *id) { return crm_dealer_id_valid(id); }

/* ------------------------------------------------------------ certificates */

/* The gateway's own certificate: loaded from `path` (CZMQ reads
   `path`_secret when it exists), or made and saved there on first start so
   that a fresh install runs; dealers get the public file. */
static zcert_t *s_server_cert(const char *path)
{
    char secret[1024];
    snprintf(secret, sizeof secret, "%s_secret", path);
    if (zsys_file_exists(path) || zsys_file_exists(secret)) {
        zcert_t *cert = zcert_load(path);
        static const byte zero[32] = {0};
        if (!cert || !memcmp(zcert_secret_key(cert), zero, sizeof zero)) {
            crm_error("gateway.cert_unusable",
                      "file=%s why=\"no secret key (expected in %s or in the file itself)\"", path,
                      secret);
            zcert_destroy(&cert);
            return NULL;
        }
        return cert;
    }
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = 0;
        zsys_dir_create("%s", dir);
    }
    free(dir);
    zcert_t *cert = zcert_new();
    if (!cert)
        return NULL;
    zcert_set_meta(cert, "name", "autocrm dealer gateway");
    if (zcert_save(cert, path) != 0) {
        crm_error("gateway.cert_not_saved", "file=%s why=\"%s\"", path, strerror(errno));
        zcert_destroy(&cert);
        return NULL;
    }
    chmod(secret, 0600);
    crm_warn("gateway.cert_created",
             "public=%s secret=%s key=%s hint=\"give the public file to every dealer\"", path,
             secret, zcert_public_txt(cert));
    return cert;
}

static void s_free_str(void **item)
{
    free(*item);
    *item = NULL;
}

/* Reads the directory the way zcertstore does (every regular file, also in
   subdirectories): public key -> dealer id. A file without a well-formed
   "dealer-id" is logged and left out. */
static zhashx_t *s_scan_certs(const char *cert_dir)
{
    zhashx_t *keys = zhashx_new();
    if (!keys)
        return NULL;
    zhashx_set_destructor(keys, s_free_str);
    zdir_t *dir = zdir_new(cert_dir, NULL);
    if (!dir)
        return keys;
    zfile_t **files = zdir_flatten(dir);
    for (size_t i = 0; files && files[i]; i++) {
        if (!zfile_is_regular(files[i]))
            continue;
        const char *name = zfile_filename(files[i], NULL);
        zcert_t *cert = zcert_load(name);
        const char *dealer = cert ? zcert_meta(cert, "dealer-id") : NULL;
        if (cert && gateway_dealer_id_valid(dealer)) {
            char *copy = strdup(dealer);
            if (copy && zhashx_insert(keys, zcert_public_txt(cert), copy) != 0)
                free(copy);
        } else {
            crm_warn("gateway.cert_ignored", "file=%s why=\"not a certificate with a dealer-id\"",
                     name);
        }
        zcert_destroy(&cert);
    }
    zdir_flatten_free(&files);
    zdir_destroy(&dir);
    return keys;
}

/* The dealer a frame came from: its certificate's "dealer-id", and only
   while that certificate is still in the directory. NULL otherwise. */
static const char *s_peer(gateway_t *gw, zframe_t *frame, const char **key_out)
{
    const char *dealer = zframe_meta(frame, "dealer-id");
    const char *key = zframe_meta(frame, "User-Id");
    if (key_out)
        *key_out = key;
    if (!dealer || !key || !gateway_dealer_id_valid(dealer))
        return NULL;
    const char *known = zhashx_lookup(gw->keys, key);
    if (!known || strcmp(known, dealer))
        return NULL;
    return dealer;
}

/* ------------------------------------------------------------ sockets */

static int s_on_xpub(zloop_t *loop, zsock_t *sock, void *arg);
static int s_on_router(zloop_t *loop, zsock_t *sock, void *arg);

static void s_secure(zsock_t *sock, zcert_t *cert)
{
    zcert_apply(cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, "dealers");
    zsock_set_linger(sock, 0);
}

/* Binds `sock`; the previous listener of the same endpoint may still be
   closing in libzmq's I/O thread, so a busy address is tried again for up
   to a second (only ever after a revocation). */
static int s_bind(zsock_t *sock, const char *endpoint)
{
    for (int i = 0; i < S_REBIND_TRIES; i++) {
        if (zsock_bind(sock, "%s", endpoint) >= 0)
            return 0;
        if (errno != EADDRINUSE)
            break;
        zclock_sleep(10);
    }
    crm_error("gateway.bind_failed", "endpoint=%s why=\"%s\"", endpoint, zmq_strerror(errno));
    return -1;
}

static zsock_t *s_xpub_open(gateway_t *gw)
{
    zsock_t *sock = zsock_new(ZMQ_XPUB);
    if (!sock)
        return NULL;
    s_secure(sock, gw->cert);
    zsock_set_xpub_manual(sock, 1);
    zsock_set_maxmsgsize(sock, S_XPUB_MSG_MAX);
    zsock_set_sndhwm(sock, S_XPUB_HWM);
    if (s_bind(sock, gw->pub_endpoint) != 0 ||
        zloop_reader(gw->loop, sock, s_on_xpub, gw) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

static void s_xpub_close(gateway_t *gw)
{
    if (gw->xpub) {
        zloop_reader_end(gw->loop, gw->xpub);
        zsock_destroy(&gw->xpub);
    }
}

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
    const char *key = NULL;
    const char *dealer = s_peer(gw, frame, &key);
    char want[GATEWAY_DEALER_ID_MAX + 16] = "";
    if (dealer)
        snprintf(want, sizeof want, "dealer.%s:", dealer);
    bool own = dealer && tlen == strlen(want) && !memcmp(topic, want, tlen);
    char shown[160];
    s_topic_value(topic, tlen, shown, sizeof shown);
    if (own) {
        zmq_setsockopt(zsock_resolve(sock), subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic,
                       tlen);
        crm_info(subscribe ? "gateway.subscribed" : "gateway.unsubscribed", "dealer=%s topic=%s",
                 dealer, shown);
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

/* Sends [routing id, data] on the ROUTER without waiting. 0 sent, 1 the
   dealer's queue is full (try later), -1 the dealer is gone. */
static int s_send_to(gateway_t *gw, zframe_t *rid, const void *data, size_t len)
{
    void *h = zsock_resolve(gw->router);
    if (zmq_send(h, zframe_data(rid), zframe_size(rid), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? 1 : -1;
    if (zmq_send(h, data, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

/* Sends a dealer.reply; `first`, `last`, `count` below 0 are left out. */
static int s_reply(gateway_t *gw, zframe_t *rid, const char *corr, bool ok, const char *code,
                   const char *message, int64_t first, int64_t last, int64_t count)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_reply);
    crm_new_id(m.id, sizeof m.id);
    m.ts = crm_now_ms();
    snprintf(m.producer, sizeof m.producer, "%s", S_PRODUCER);
    if (corr)
        snprintf(m.corr, sizeof m.corr, "%s", corr);
    CRM_SET_BOOL(&m, dealer_reply, ok, ok);
    int rc = -1;
    if ((code && CRM_SET_STR(&m, dealer_reply, code, code) != 0) ||
        (message && CRM_SET_STR(&m, dealer_reply, message, message) != 0))
        goto done;
    if (first >= 0)
        CRM_SET_I64(&m, dealer_reply, first, first);
    if (last >= 0)
        CRM_SET_I64(&m, dealer_reply, last, last);
    if (count >= 0)
        CRM_SET_I64(&m, dealer_reply, count, count);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (crm_msg_encode(&m, &buf, NULL) == 0)
        rc = s_send_to(gw, rid, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
done:
    crm_msg_clear(&m);
    return rc;
}

/* Keeps a refused frame for review, as crm_service_keep_reject does. */
static void s_keep_reject(gateway_t *gw, const char *dealer, const char *field, const char *reason,
                          const void *frame, size_t len)
{
    char size[24], why[320];
    snprintf(size, sizeof size, "%zu", len);
    snprintf(why, sizeof why, "%s (dealer %s)", reason, dealer);
    size_t keep = len > CRM_FRAME_MAX ? CRM_FRAME_MAX : len;
    const char *argv[] = {"XADD",  CRM_KEY_REJECTS, "MAXLEN", "~",   CRM_REJECTS_MAXLEN, "*",
                          "service", S_PRODUCER,    "origin", "gateway", "field",       field,
                          "reason",  why,           "size",   size,  "frame",         frame};
    size_t lens[18];
    for (int i = 0; i < 17; i++)
        lens[i] = strlen(argv[i]);
    lens[17] = keep;
    redisReply *r = crm_store_cmdargv(gw->store, 18, argv, lens);
    if (!r)
        crm_error("reject.not_kept", "origin=gateway dealer=%s reason=\"%s\"", dealer, reason);
    freeReplyObject(r);
}

/* ------------------------------------------------------------ Redis reads */

/* The last number of the dealer's stream (0 when none), or -1. */
static int64_t s_last(gateway_t *gw, const char *dealer)
{
    char key[96];
    snprintf(key, sizeof key, "crm:{dealer.%s}:seq", dealer);
    redisReply *r = crm_store_cmd(gw->store, "GET %s", key);
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
    snprintf(key, sizeof key, "crm:{dealer.%s}:events", dealer);
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

/* ------------------------------------------------------------ replay */

static int s_on_replay_tick(zloop_t *loop, int timer_id, void *arg);

static void s_replay_free(gateway_t *gw, s_replay_t *job)
{
    zframe_destroy(&job->rid);
    job->used = false;
    gw->nreplays--;
    if (gw->nreplays == 0 && gw->replay_timer >= 0) {
        zloop_timer_end(gw->loop, gw->replay_timer);
        gw->replay_timer = -1;
    }
}

/* Sends one batch of `job`, at most `budget` frames. Returns the number
   sent; finishes (reply, free) the job when it is done or hopeless. */
static int s_replay_step(gateway_t *gw, s_replay_t *job, int budget)
{
    int64_t now = crm_mono_ms();
    if (job->wait_until_ms > now)
        return 0;
    if (job->next > job->last) {
        int rc = s_reply(gw, job->rid, job->corr, true, NULL, NULL, (int64_t) job->first,
                         (int64_t) job->last, (int64_t) job->count);
        if (rc == 1) {
            job->wait_until_ms = now + 10;
            return 0;
        }
        crm_info("gateway.replayed", "dealer=%s count=%llu last=%llu", job->dealer,
                 (unsigned long long) job->count, (unsigned long long) job->last);
        s_replay_free(gw, job);
        return 0;
    }
    char key[96];
    snprintf(key, sizeof key, "crm:{dealer.%s}:events", job->dealer);
    redisReply *r = crm_store_cmd(gw->store, "XRANGE %s %llu-0 %llu-0 COUNT %d", key,
                                  (unsigned long long) job->next, (unsigned long long) job->last,
                                  budget);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        /* Redis away: the store reconnects lazily; the dealer asks again. */
        s_reply(gw, job->rid, job->corr, false, "unavailable", "store: try again later", -1, -1,
                (int64_t) job->count);
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
            snprintf(msg, sizeof msg, "from: replay is possible from %llu on (%llu was trimmed)",
                     (unsigned long long) seq, (unsigned long long) job->next);
            s_reply(gw, job->rid, job->corr, false, "below_retained", msg, (int64_t) seq,
                    (int64_t) job->last, (int64_t) job->count);
            finished = true;
            break;
        }
        redisReply *fields = e->element[1];
        const redisReply *frame = NULL;
        for (size_t k = 0; fields->type == REDIS_REPLY_ARRAY && k + 1 < fields->elements; k += 2)
            if (fields->element[k]->type == REDIS_REPLY_STRING && !strcmp(fields->element[k]->str, "m"))
                frame = fields->element[k + 1];
        if (!frame || frame->type != REDIS_REPLY_STRING) {
            job->next++; /* not ours to repair; the dealer sees a gap it cannot fill */
            continue;
        }
        int rc = s_send_to(gw, job->rid, frame->str, frame->len);
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
        s_reply(gw, job->rid, job->corr, false, "below_retained",
                "from: nothing left to replay, the stream was trimmed", -1, (int64_t) job->last,
                (int64_t) job->count);
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

static void s_replay_start(gateway_t *gw, zframe_t *rid, const char *dealer, const char *key,
                           const char *corr, int64_t from)
{
    int64_t last = s_last(gw, dealer);
    int64_t first = last >= 0 ? s_first(gw, dealer, last) : -1;
    if (last < 0 || first < 0) {
        s_reply(gw, rid, corr, false, "unavailable", "store: try again later", -1, -1, -1);
        return;
    }
    if (from < 1)
        from = 1;
    if (from < first && from <= last) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "from: %lld is below the retained range; replay is possible from %lld on",
                 (long long) from, (long long) first);
        crm_warn("gateway.below_retained", "dealer=%s from=%lld first=%lld last=%lld", dealer,
                 (long long) from, (long long) first, (long long) last);
        s_reply(gw, rid, corr, false, "below_retained", msg, first, last, 0);
        return;
    }
    if (from > last) {
        s_reply(gw, rid, corr, true, NULL, NULL, first, last, 0);
        return;
    }
    /* One replay per dealer: a new request supersedes the one in progress
       (the dealer drops what it already has). */
    s_replay_t *job = NULL;
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX; i++)
        if (gw->replays[i].used && !strcmp(gw->replays[i].dealer, dealer)) {
            s_replay_free(gw, &gw->replays[i]);
            break;
        }
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX && !job; i++)
        if (!gw->replays[i].used)
            job = &gw->replays[i];
    if (!job) {
        s_reply(gw, rid, corr, false, "busy", "too many replays in progress; ask again", first,
                last, 0);
        return;
    }
    memset(job, 0, sizeof *job);
    job->used = true;
    job->rid = zframe_dup(rid);
    snprintf(job->dealer, sizeof job->dealer, "%s", dealer);
    snprintf(job->key, sizeof job->key, "%s", key);
    snprintf(job->corr, sizeof job->corr, "%s", corr ? corr : "");
    job->next = (uint64_t) from;
    job->last = (uint64_t) last;
    job->first = (uint64_t) first;
    gw->nreplays++;
    crm_info("gateway.replay", "dealer=%s from=%lld last=%lld", dealer, (long long) from,
             (long long) last);
    if (gw->replay_timer < 0)
        gw->replay_timer = zloop_timer(gw->loop, 1, 0, s_on_replay_tick, gw);
}

/* ------------------------------------------------------------ requests */

static void s_on_ack(gateway_t *gw, zframe_t *rid, const char *dealer, const crm_msg_t *m)
{
    int64_t upto = m->body.dealer_ack.upto;
    int64_t last = s_last(gw, dealer);
    if (last < 0) {
        s_reply(gw, rid, m->id, false, "unavailable", "store: try again later", -1, -1, -1);
        return;
    }
    if (upto < 0 || upto > last) {
        char msg[200];
        snprintf(msg, sizeof msg, "upto: %lld is beyond the last number %lld of dealer.%s",
                 (long long) upto, (long long) last, dealer);
        crm_warn("gateway.ack_refused", "dealer=%s upto=%lld last=%lld", dealer, (long long) upto,
                 (long long) last);
        s_reply(gw, rid, m->id, false, upto < 0 ? "malformed" : "beyond_last", msg, -1, last, -1);
        return;
    }
    if (upto > 0 && gw->handlers.on_ack)
        gw->handlers.on_ack(gw->handlers.arg, dealer, (uint64_t) upto);
    crm_debug("gateway.acked", "dealer=%s upto=%lld", dealer, (long long) upto);
    s_reply(gw, rid, m->id, true, NULL, NULL, -1, last, -1);
}

static void s_on_status(gateway_t *gw, zframe_t *rid, const char *dealer, const crm_msg_t *m)
{
    char code[64] = "", err[256] = "";
    int rc = -1;
    if (gw->handlers.on_status)
        rc = gw->handlers.on_status(gw->handlers.arg, dealer, &m->body.dealer_status, code,
                                    sizeof code, err, sizeof err);
    else {
        snprintf(code, sizeof code, "unsupported");
        snprintf(err, sizeof err, "status: not taken here");
    }
    char td[80];
    crm_log_value(m->body.dealer_status.testdrive_id, td, sizeof td);
    if (rc == 0) {
        crm_info("gateway.status", "dealer=%s testdrive=%s", dealer, td);
        s_reply(gw, rid, m->id, true, NULL, NULL, -1, -1, -1);
    } else {
        char c[64];
        crm_warn("gateway.status_refused", "dealer=%s testdrive=%s code=%s", dealer, td,
                 crm_log_value(code[0] ? code : "refused", c, sizeof c));
        s_reply(gw, rid, m->id, false, code[0] ? code : "refused", err[0] ? err : NULL, -1, -1, -1);
    }
}

static int s_on_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    gateway_t *gw = arg;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 0;
    zframe_t *rid = zmsg_pop(msg);
    zframe_t *body = zmsg_pop(msg);
    if (!rid || !body) {
        zframe_destroy(&rid);
        zframe_destroy(&body);
        zmsg_destroy(&msg);
        return 0;
    }
    const char *key = NULL;
    const char *dealer = s_peer(gw, body, &key);
    if (!dealer) {
        /* zauth let it in, but its certificate is gone (revoked since the
           connection was made) or carries no dealer id. */
        crm_warn("gateway.not_certified", "key=%s", key ? key : "-");
        s_reply(gw, rid, NULL, false, "not_certified", "certificate: not (or no longer) valid", -1,
                -1, -1);
        goto done;
    }
    crm_msg_t m;
    crm_err_t e;
    if (zmsg_size(msg) != 0) {
        s_reply(gw, rid, NULL, false, "malformed", "frames: a request is one frame", -1, -1, -1);
        s_keep_reject(gw, dealer, "frames", "a request is one frame", zframe_data(body),
                      zframe_size(body));
        goto done;
    }
    if (crm_msg_decode(zframe_data(body), zframe_size(body), &m, &e) != 0) {
        char text[300], why[200];
        snprintf(text, sizeof text, "%s: %s", e.field, e.text);
        crm_warn("gateway.malformed", "dealer=%s field=%s reason=\"%s\"", dealer, e.field,
                 crm_log_value(e.text, why, sizeof why));
        s_reply(gw, rid, NULL, false, "malformed", text, -1, -1, -1);
        s_keep_reject(gw, dealer, e.field, e.text, zframe_data(body), zframe_size(body));
        goto done;
    }
    crm_log_context(m.id);
    switch (m.type) {
    case CRM_T_dealer_replay:
        s_replay_start(gw, rid, dealer, key, m.id, m.body.dealer_replay.from);
        break;
    case CRM_T_dealer_ack:
        s_on_ack(gw, rid, dealer, &m);
        break;
    case CRM_T_dealer_status:
        s_on_status(gw, rid, dealer, &m);
        break;
    default: {
        char text[120];
        snprintf(text, sizeof text, "type: %s is not a dealer request", crm_type_name(m.type));
        crm_warn("gateway.malformed", "dealer=%s field=type reason=not_a_request", dealer);
        s_reply(gw, rid, m.id, false, "malformed", text, -1, -1, -1);
        s_keep_reject(gw, dealer, "type", "not a dealer request", zframe_data(body),
                      zframe_size(body));
    }
    }
    crm_log_context(NULL);
    crm_msg_clear(&m);
done:
    zframe_destroy(&rid);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
    return 0;
}

/* ------------------------------------------------------------ reload */

int gateway_reload_certs(gateway_t *gw)
{
    if (!gw)
        return -1;
    /* A fresh store in zauth, also when the directory changed within the
       same second with the same count and size (zcertstore's own check). */
    zstr_sendx(gw->auth, "CURVE", gw->cert_dir, NULL);
    zsock_wait(gw->auth);
    zhashx_t *keys = s_scan_certs(gw->cert_dir);
    if (!keys)
        return -1;
    bool removed = false;
    for (const char *dealer = zhashx_first(gw->keys); dealer; dealer = zhashx_next(gw->keys)) {
        const char *now = zhashx_lookup(keys, (const char *) zhashx_cursor(gw->keys));
        if (!now || strcmp(now, dealer)) {
            crm_warn("gateway.cert_revoked", "dealer=%s key=%s", dealer,
                     (const char *) zhashx_cursor(gw->keys));
            removed = true;
        }
    }
    zhashx_destroy(&gw->keys);
    gw->keys = keys;
    /* Replays for a revoked certificate stop here. */
    for (size_t i = 0; i < GATEWAY_REPLAYS_MAX; i++)
        if (gw->replays[i].used && !zhashx_lookup(gw->keys, gw->replays[i].key))
            s_replay_free(gw, &gw->replays[i]);
    if (removed || !gw->xpub) {
        /* libzmq cannot drop one XPUB peer: close the socket, bind a new
           one. Certified dealers reconnect through zauth and subscribe
           again; what they miss meanwhile they replay. */
        s_xpub_close(gw);
        gw->xpub = s_xpub_open(gw);
        if (!gw->xpub)
            return -1;
        crm_info("gateway.xpub_rebuilt", "endpoint=%s", gw->pub_endpoint);
    }
    return 0;
}

static int s_on_reload(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gateway_reload_certs(arg);
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

gateway_t *gateway_new(zloop_t *loop, crm_store_t *store, const char *cert_dir,
                       const char *server_secret_cert, const char *pub_endpoint,
                       const char *router_endpoint, const gateway_handlers_t *handlers)
{
    if (!loop || !store)
        return NULL;
    gateway_t *gw = calloc(1, sizeof *gw);
    if (!gw)
        return NULL;
    gw->loop = loop;
    gw->store = store;
    gw->replay_timer = gw->reload_timer = -1;
    if (handlers)
        gw->handlers = *handlers;
    gw->cert_dir = strdup(cert_dir ? cert_dir : GATEWAY_CERT_DIR_DEFAULT);
    gw->pub_endpoint = strdup(pub_endpoint ? pub_endpoint : GATEWAY_PUB_DEFAULT);
    gw->router_endpoint = strdup(router_endpoint ? router_endpoint : GATEWAY_ROUTER_DEFAULT);
    if (!gw->cert_dir || !gw->pub_endpoint || !gw->router_endpoint)
        goto fail;
    gw->cert = s_server_cert(server_secret_cert ? server_secret_cert : GATEWAY_SERVER_CERT_DEFAULT);
    if (!gw->cert)
        goto fail;
    if (!zsys_file_exists(gw->cert_dir)) {
        zsys_dir_create("%s", gw->cert_dir);
        crm_warn("gateway.cert_dir_created", "dir=%s hint=\"no dealer can connect yet\"",
                 gw->cert_dir);
    }
    /* The ZAP handler first: a CURVE socket bound without one lets every
       client in. */
    gw->auth = zactor_new(zauth, NULL);
    if (!gw->auth)
        goto fail;
    zstr_sendx(gw->auth, "CURVE", gw->cert_dir, NULL);
    zsock_wait(gw->auth);
    gw->keys = s_scan_certs(gw->cert_dir);
    if (!gw->keys)
        goto fail;

    gw->xpub = s_xpub_open(gw);
    if (!gw->xpub)
        goto fail;
    gw->router = zsock_new(ZMQ_ROUTER);
    if (!gw->router)
        goto fail;
    s_secure(gw->router, gw->cert);
    zsock_set_router_mandatory(gw->router, 1);
    zsock_set_maxmsgsize(gw->router, CRM_FRAME_MAX);
    zsock_set_sndhwm(gw->router, S_ROUTER_HWM);
    if (s_bind(gw->router, gw->router_endpoint) != 0 ||
        zloop_reader(loop, gw->router, s_on_router, gw) != 0)
        goto fail;
    gw->reload_timer = zloop_timer(loop, GATEWAY_RELOAD_MS, 0, s_on_reload, gw);
    crm_info("gateway.ready", "pub=%s router=%s certs=%s dealers=%zu key=%s", gw->pub_endpoint,
             gw->router_endpoint, gw->cert_dir, zhashx_size(gw->keys), zcert_public_txt(gw->cert));
    return gw;
fail:
    crm_error("gateway.start_failed", "pub=%s router=%s certs=%s",
              gw->pub_endpoint ? gw->pub_endpoint : "-",
              gw->router_endpoint ? gw->router_endpoint : "-", gw->cert_dir ? gw->cert_dir : "-");
    gateway_destroy(&gw);
    return NULL;
}

void gateway_push(gateway_t *gw, const char *dealer_id, const void *frame, size_t len)
{
    if (!gw || !gw->xpub || !frame || len == 0 || len > CRM_FRAME_MAX ||
        !gateway_dealer_id_valid(dealer_id))
        return;
    char topic[GATEWAY_DEALER_ID_MAX + 16];
    int n = snprintf(topic, sizeof topic, "dealer.%s:", dealer_id);
    void *h = zsock_resolve(gw->xpub);
    if (zmq_send(h, topic, (size_t) n, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(h, frame, len, ZMQ_DONTWAIT) < 0)
        crm_warn("gateway.push_failed", "dealer=%s why=\"%s\"", dealer_id, zmq_strerror(errno));
}

const char *gateway_public_key(gateway_t *gw)
{
    return gw && gw->cert ? zcert_public_txt(gw->cert) : NULL;
}

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
    if (gw->reload_timer >= 0)
        zloop_timer_end(gw->loop, gw->reload_timer);
    s_xpub_close(gw);
    if (gw->router) {
        zloop_reader_end(gw->loop, gw->router);
        zsock_destroy(&gw->router);
    }
    zactor_destroy(&gw->auth);
    zcert_destroy(&gw->cert);
    zhashx_destroy(&gw->keys);
    free(gw->cert_dir);
    free(gw->pub_endpoint);
    free(gw->router_endpoint);
    free(gw);
    *gw_p = NULL;
}
