/*  The dealer gateway as a dealer's IT sees it: its own dispatches, all of
 *  them, once, in order, even after a long time offline; nothing of anyone
 *  else's; answers it can rely on for acknowledgements and status reports.
 *
 *  One real crm-dispatcher and one real redis-server for the whole file
 *  (the harness's system fixture); each case has dealers of its own, made
 *  with crmctl as the carmaker makes them. The test's clients are CZMQ
 *  CURVE sockets speaking tools/DEALERS.md Part 2 directly. Dispatches the
 *  gateway must push live go through testdrive.requested (two days away,
 *  so they are dispatched at once); those only replayed are written to the
 *  dealer's stream directly.
 *
 *  CRM_TEST_ONLY=<name> runs the cases whose name matches (cmocka filter).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define DAY_MS 86400000LL
#define S_SOCKS 16
#define S_QUIET_MS 1500 /* "nothing comes": longer than a heartbeat period */

/* Every dealer of the file, each with its certificate (N1 gets its own in
   its case). */
static const char *const s_dealers[] = {"L1", "L2", "O1", "X1", "D1", "D2", "T1", "A1",
                                        "A2", "S1", "S2", "M1", "Q1", "V1", "W1", NULL};

typedef struct {
    crm_h_sys_t sys;
    char server_key[41];
    char log[400];
    zsock_t *socks[S_SOCKS]; /* the case's clients, closed by its teardown */
    int nsocks;
} fx_t;

/* ------------------------------------------------------------ fixture */

static const char *s_secret(fx_t *f, const char *dealer, char *out, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "%s.secret", dealer);
    crm_h_path(&f->sys.redis, name, out, size);
    return out;
}

static int s_cert_rc(fx_t *f, const char *dealer)
{
    char secret[300];
    int rc = crm_h_sys_crmctl(&f->sys, "dealer", "cert", dealer, "--out", s_secret(f, dealer, secret, sizeof secret),
                              NULL);
    if (rc != 0)
        fprintf(stderr, "crmctl dealer cert %s: exit %d (see %s)\n", dealer, rc, f->sys.out);
    return rc;
}

static void s_cert(fx_t *f, const char *dealer)
{
    if (s_cert_rc(f, dealer) != 0)
        fail_msg("crmctl dealer cert %s failed", dealer);
}

static int s_add(fx_t *f, const char *dealer)
{
    int rc = crm_h_sys_crmctl(&f->sys, "dealer", "add", dealer, "--name", "测试店", "--province", "广东", "--city",
                              "深圳", "--capacity", "0", NULL);
    if (rc != 0)
        fprintf(stderr, "crmctl dealer add %s: exit %d (see %s)\n", dealer, rc, f->sys.out);
    return rc;
}

/* Failures here return -1 rather than assert: cmocka runs no group
   teardown after a failed group setup, and the processes must not outlive
   the test. */
static int group_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, false) != 0) {
        free(f);
        return -1;
    }
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    crm_h_sys_log(&f->sys, "dispatcher", f->log, sizeof f->log);
    int rc = s_add(f, "N1");
    for (const char *const *d = s_dealers; *d && rc == 0; d++)
        rc = s_add(f, *d) || s_cert_rc(f, *d);
    zcert_t *server = rc == 0 ? zcert_load(f->sys.server_cert) : NULL;
    if (!server) {
        fprintf(stderr, "group setup failed (see %s)\n", f->log);
        crm_h_sys_stop(&f->sys);
        free(f);
        return -1;
    }
    snprintf(f->server_key, sizeof f->server_key, "%s", zcert_public_txt(server));
    zcert_destroy(&server);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fx_t *f = *state;
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

static int setup(void **state)
{
    fx_t *f = *state;
    f->nsocks = 0;
    return 0;
}

/* Closes the case's clients; the dispatcher must have survived the case. */
static int teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < f->nsocks; i++)
        zsock_destroy(&f->socks[i]);
    f->nsocks = 0;
    int i = crm_h_service_index("dispatcher");
    if (f->sys.pids[i] > 0 && !crm_h_alive(f->sys.pids[i])) {
        f->sys.pids[i] = 0;
        fprintf(stderr, "crm-dispatcher died during the case (see %s)\n", f->log);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the carmaker's side */

/* A prospect in Shenzhen asks for a test drive two days away with `dealer`:
   it is dispatched (and pushed) at once. */
static void s_testdrive(fx_t *f, const char *tid, const char *dealer)
{
    char cid[48];
    snprintf(cid, sizeof cid, "C-%s", tid);
    redisReply *r = crm_store_cmd(f->sys.store,
                                  "HSET " CRM_KEY_CUST_FMT " name 张三 mobile 13812345678 city 深圳市 province 广东省", cid);
    assert_non_null(r);
    freeReplyObject(r);
    crm_tx_t *tx = crm_tx_new("intake", 100000);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_testdrive_requested);
    CRM_SET_STR(&m, testdrive_requested, testdrive_id, tid);
    CRM_SET_STR(&m, testdrive_requested, lead_id, "L-1");
    CRM_SET_STR(&m, testdrive_requested, customer_id, cid);
    CRM_SET_STR(&m, testdrive_requested, dealer_id, dealer);
    CRM_SET_STR(&m, testdrive_requested, model, "408");
    CRM_SET_I64(&m, testdrive_requested, at, crm_now_ms() + 2 * DAY_MS);
    assert_true(crm_tx_emit(tx, &m) >= 0);
    crm_msg_clear(&m);
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
}

typedef struct {
    fx_t *f;
    const char *key, *field, *want;
} s_field_t;

static bool s_field_is(void *arg)
{
    s_field_t *w = arg;
    redisReply *r = crm_store_cmd(w->f->sys.store, "HGET %s %s", w->key, w->field);
    bool ok = r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, w->want);
    freeReplyObject(r);
    return ok;
}

static void s_wait_td_status(fx_t *f, const char *tid, const char *want)
{
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_TD_FMT, tid);
    s_field_t w = {f, key, "status", want};
    if (!crm_h_wait(s_field_is, &w, 5000))
        fail_msg("test drive %s never became %s (see %s)", tid, want, f->log);
}

/* `n` dispatches on dealer.<dealer> as the dispatcher writes them, not
   pushed by the gateway (it pushes only its own commits). The last number. */
static uint64_t s_dispatch_direct(fx_t *f, const char *dealer, int n)
{
    uint64_t last = 0;
    for (int done = 0; done < n;) {
        crm_tx_t *tx = crm_tx_new("dispatcher", 1000000);
        for (int k = 0; k < 500 && done < n; k++, done++) {
            crm_msg_t m;
            crm_msg_init(&m, CRM_T_dealer_dispatch);
            snprintf(m.stream, sizeof m.stream, "dealer.%s", dealer);
            char td[48];
            snprintf(td, sizeof td, "TD-%s-%d", dealer, done + 1);
            CRM_SET_STR(&m, dealer_dispatch, testdrive_id, td);
            CRM_SET_STR(&m, dealer_dispatch, dealer_id, dealer);
            CRM_SET_STR(&m, dealer_dispatch, customer_name, "张三");
            CRM_SET_I64(&m, dealer_dispatch, at, crm_now_ms() + 2 * DAY_MS);
            assert_true(crm_tx_emit(tx, &m) >= 0);
            crm_msg_clear(&m);
        }
        crm_h_sys_commit(&f->sys, tx);
        last = crm_tx_emit_at(tx, crm_tx_emit_count(tx) - 1)->seq;
        crm_tx_destroy(&tx);
    }
    return last;
}

typedef struct {
    const char *path, *needle;
} s_log_t;

static bool s_log_has(void *arg)
{
    s_log_t *l = arg;
    return crm_h_file_contains(l->path, l->needle);
}

static bool s_wait_log(fx_t *f, const char *needle, int timeout_ms)
{
    s_log_t l = {f->log, needle};
    return crm_h_wait(s_log_has, &l, timeout_ms);
}

/* ------------------------------------------------------------ the dealer's side */

static zsock_t *s_connect_cert(fx_t *f, zcert_t *cert, int type, const char *const *topics)
{
    assert_true(f->nsocks < S_SOCKS);
    zsock_t *sock = zsock_new(type);
    assert_non_null(sock);
    zcert_apply(cert, sock);
    zsock_set_curve_serverkey(sock, f->server_key);
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, CRM_FRAME_MAX + 1024);
    for (; topics && *topics; topics++)
        zsock_set_subscribe(sock, *topics);
    int port = type == ZMQ_SUB ? f->sys.gw_pub : f->sys.gw_router;
    assert_int_equal(zsock_connect(sock, "tcp://127.0.0.1:%d", port), 0);
    f->socks[f->nsocks++] = sock;
    return sock;
}

/* A client socket of `dealer` with the certificate crmctl made for it. */
static zsock_t *s_connect(fx_t *f, const char *dealer, int type, const char *const *topics)
{
    char secret[300];
    zcert_t *cert = zcert_load(s_secret(f, dealer, secret, sizeof secret));
    assert_non_null(cert);
    zsock_t *sock = s_connect_cert(f, cert, type, topics);
    zcert_destroy(&cert);
    return sock;
}

/* A request as a client sends it: envelope filled, encoded into `out`
   (the caller destroys it); `m` is cleared. */
static void s_encode(crm_msg_t *m, msgpack_sbuffer *out, char *id, size_t idsz)
{
    if (!m->id[0])
        crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "gwtest");
    m->stream[0] = 0;
    m->seq = 0;
    if (id)
        snprintf(id, idsz, "%s", m->id);
    msgpack_sbuffer_init(out);
    assert_int_equal(crm_msg_encode(m, out, NULL), 0);
    crm_msg_clear(m);
}

/* Without waiting: a socket whose handshake was refused has no peer to
   queue for, and "nothing happens" is what some cases expect. */
static void s_send_bytes(zsock_t *sock, const void *data, size_t len)
{
    zmq_send(zsock_resolve(sock), data, len, ZMQ_DONTWAIT);
}

static void s_send(zsock_t *sock, crm_msg_t *m, char *id, size_t idsz)
{
    msgpack_sbuffer buf;
    s_encode(m, &buf, id, idsz);
    s_send_bytes(sock, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
}

/* The next message on `sock` within timeout_ms, decoded into `m` (with its
   topic on a SUB); false when nothing came. A frame the gateway sends that
   does not decode, or the wrong number of frames, fails the case. */
static bool s_recv(zsock_t *sock, int timeout_ms, crm_msg_t *m, char *topic, size_t tsz)
{
    zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
        return false;
    zmsg_t *zm = zmsg_recv(sock);
    assert_non_null(zm);
    bool sub = zsock_type(sock) == ZMQ_SUB;
    if (zmsg_size(zm) != (sub ? 2u : 1u))
        fail_msg("the gateway sent %zu frames on a %s socket", zmsg_size(zm), sub ? "SUB" : "request");
    if (sub) {
        char *t = zmsg_popstr(zm);
        snprintf(topic, tsz, "%s", t ? t : "");
        zstr_free(&t);
    }
    zframe_t *frame = zmsg_last(zm);
    crm_err_t err;
    if (crm_msg_decode(zframe_data(frame), zframe_size(frame), m, &err) != 0)
        fail_msg("the gateway sent a frame that does not decode: %s: %s", err.field, err.text);
    zmsg_destroy(&zm);
    return true;
}

static int s_left(int64_t deadline) { return (int) (deadline - crm_mono_ms()); }

/* Reads a request socket until the dealer.reply to `corr` (an empty corr
   also counts when `any_corr`); every dealer.dispatch before it must be on
   `stream` and its number goes into seqs (up to max), *n counts them.
   A reply to another request fails the case. */
static bool s_reply(zsock_t *sock, const char *corr, bool any_corr, int timeout_ms, crm_msg_t *reply,
                    const char *stream, uint64_t *seqs, int max, int *n)
{
    int64_t deadline = crm_mono_ms() + timeout_ms;
    if (n)
        *n = 0;
    crm_msg_t m;
    while (s_recv(sock, s_left(deadline), &m, NULL, 0)) {
        if (m.type == CRM_T_dealer_reply) {
            if (strcmp(m.corr, corr) && !(any_corr && !m.corr[0]))
                fail_msg("a reply to %s while waiting for %s", m.corr, corr);
            *reply = m;
            return true;
        }
        if (m.type != CRM_T_dealer_dispatch)
            fail_msg("a %s on the request socket", crm_type_name(m.type));
        if (stream)
            assert_string_equal(m.stream, stream);
        if (seqs && n && *n < max)
            seqs[*n] = m.seq;
        if (n)
            (*n)++;
        crm_msg_clear(&m);
    }
    return false;
}

/* Sends a one-answer request and waits for its reply; nothing else may
   come first. */
static void s_ask(zsock_t *sock, crm_msg_t *m, crm_msg_t *reply, char *id, size_t idsz)
{
    char own[CRM_ID_MAX];
    if (!id)
        id = own, idsz = sizeof own;
    crm_type_t type = m->type;
    s_send(sock, m, id, idsz);
    int before = 0;
    if (!s_reply(sock, id, false, 5000, reply, NULL, NULL, 0, &before))
        fail_msg("no answer to %s %s", crm_type_name(type), id);
    assert_int_equal(before, 0);
}

/* Nothing at all arrives on `sock` for ms. */
static void s_assert_silent(zsock_t *sock, int ms, const char *what)
{
    crm_msg_t m;
    char topic[64];
    if (s_recv(sock, ms, &m, topic, sizeof topic)) {
        char *json = crm_msg_to_json(&m);
        fprintf(stderr, "%s received: %s %s\n", what, topic, json ? json : "?");
        free(json);
        crm_msg_clear(&m);
        fail_msg("%s received something", what);
    }
}

/* The next heartbeat on a SUB within timeout_ms, skipping dispatches
   (counted into *dispatches when not NULL); its streams in `streams`. */
static bool s_heartbeat(zsock_t *sub, int timeout_ms, char *streams, size_t size, int *dispatches)
{
    int64_t deadline = crm_mono_ms() + timeout_ms;
    crm_msg_t m;
    char topic[64];
    while (s_recv(sub, s_left(deadline), &m, topic, sizeof topic)) {
        if (m.type == CRM_T_heartbeat) {
            size_t used = 0;
            streams[0] = 0;
            for (size_t i = 0; i < m.body.heartbeat.streams.n && used < size; i++)
                used += (size_t) snprintf(streams + used, size - used, "%s%s", i ? "," : "",
                                          m.body.heartbeat.streams.v[i]);
            crm_msg_clear(&m);
            return true;
        }
        if (dispatches)
            (*dispatches)++;
        crm_msg_clear(&m);
    }
    return false;
}

static crm_msg_t s_status_msg(const char *tid, const char *status)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_status);
    CRM_SET_STR(&m, dealer_status, testdrive_id, tid);
    CRM_SET_STR(&m, dealer_status, status, status);
    return m;
}

static crm_msg_t s_ack_msg(int64_t upto)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_ack);
    CRM_SET_I64(&m, dealer_ack, upto, upto);
    return m;
}

static crm_msg_t s_replay_msg(int64_t from)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, from);
    return m;
}

/* A refusal: not ok, `code`, and a message that names `field`. */
static void s_assert_refused(const crm_msg_t *reply, const char *code, const char *field)
{
    assert_int_equal(reply->type, CRM_T_dealer_reply);
    const crm_body_dealer_reply_t *b = &reply->body.dealer_reply;
    if (b->ok || !b->code || strcmp(b->code, code))
        fail_msg("expected %s, got ok=%d code=%s message=%s", code, b->ok, b->code ? b->code : "-",
                 b->message ? b->message : "-");
    assert_non_null(b->message);
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s: ", field);
    if (strncmp(b->message, prefix, strlen(prefix)))
        fail_msg("%s: the message does not name %s: \"%s\"", code, field, b->message);
}

static void s_assert_ok(const crm_msg_t *reply)
{
    const crm_body_dealer_reply_t *b = &reply->body.dealer_reply;
    assert_int_equal(reply->type, CRM_T_dealer_reply);
    if (!b->ok)
        fail_msg("refused: %s %s", b->code ? b->code : "-", b->message ? b->message : "-");
}

/* How many testdrive.status events for tid with `status` the testdrive
   stream holds (each must name `dealer`). */
static int s_status_events(fx_t *f, const char *tid, const char *status, const char *dealer)
{
    redisReply *r = crm_store_cmd(f->sys.store, "XRANGE " CRM_KEY_EVENTS_FMT " - +", "testdrive");
    assert_non_null(r);
    int n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *frame = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_msg_t m;
        crm_err_t err;
        if (!frame || crm_msg_decode(frame->str, frame->len, &m, &err) != 0)
            continue;
        if (m.type == CRM_T_testdrive_status && !strcmp(m.body.testdrive_status.testdrive_id, tid) &&
            !strcmp(m.body.testdrive_status.status, status)) {
            assert_string_equal(m.body.testdrive_status.dealer_id, dealer);
            n++;
        }
        crm_msg_clear(&m);
    }
    freeReplyObject(r);
    return n;
}

/* How many history entries of the test drive say `status` by `by`. */
static int s_history(fx_t *f, const char *tid, const char *status, const char *by)
{
    redisReply *r = crm_store_cmd(f->sys.store, "XRANGE " CRM_KEY_TD_FMT ":history - +", tid);
    assert_non_null(r);
    int n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *fields = r->element[i]->element[1];
        const char *s = crm_reply_field(fields, "status"), *b = crm_reply_field(fields, "by");
        n += s && b && !strcmp(s, status) && !strcmp(b, by);
    }
    freeReplyObject(r);
    return n;
}

/* ------------------------------------------------------------ 1. live */

static void test_a_dealer_receives_its_own_pushes_numbered_1_2_3_and_heartbeats_with_its_latest_number(void **state)
{
    fx_t *f = *state;
    zsock_t *sub = s_connect(f, "L1", ZMQ_SUB, (const char *const[]){"dealer.L1:", NULL});
    char streams[256];
    /* The first heartbeat says the subscription took. */
    if (!s_heartbeat(sub, 4000, streams, sizeof streams, NULL))
        fail_msg("no heartbeat on dealer.L1: within 4 s of subscribing");
    assert_string_equal(streams, "dealer.L1=0");

    s_testdrive(f, "TL2-1", "L2"); /* someone else's */
    const char *tids[] = {"TL1-1", "TL1-2", "TL1-3"};
    for (int i = 0; i < 3; i++)
        s_testdrive(f, tids[i], "L1");
    int64_t deadline = crm_mono_ms() + 5000;
    int got = 0;
    crm_msg_t m;
    char topic[64];
    while (got < 3 && s_recv(sub, s_left(deadline), &m, topic, sizeof topic)) {
        assert_string_equal(topic, "dealer.L1:");
        if (m.type == CRM_T_dealer_dispatch) {
            assert_string_equal(m.stream, "dealer.L1");
            assert_int_equal(m.seq, (uint64_t) got + 1);
            assert_string_equal(m.body.dealer_dispatch.dealer_id, "L1");
            assert_string_equal(m.body.dealer_dispatch.testdrive_id, tids[got]);
            got++;
        } else {
            assert_int_equal(m.type, CRM_T_heartbeat);
        }
        crm_msg_clear(&m);
    }
    if (got < 3)
        fail_msg("%d of 3 live pushes arrived within 5 s (see %s)", got, f->log);

    /* The next heartbeat comes within the second and names the latest number. */
    int extra = 0;
    if (!s_heartbeat(sub, 1500, streams, sizeof streams, &extra))
        fail_msg("no heartbeat within 1.5 s of the last push");
    char want[64];
    snprintf(want, sizeof want, "dealer.L1=%lld", crm_h_int(f->sys.store, "GET " CRM_KEY_SEQ_FMT, "dealer.L1"));
    assert_string_equal(want, "dealer.L1=3");
    assert_string_equal(streams, want);
    assert_int_equal(extra, 0); /* nothing of L2's, no fourth push */
    /* And the one after it a second later, not more. */
    assert_true(s_heartbeat(sub, 1500, streams, sizeof streams, &extra));
    assert_string_equal(streams, want);
    assert_int_equal(extra, 0);
    assert_true(crm_h_file_contains(f->log, "event=gateway.subscribed dealer=L1 topic=dealer.L1:"));
}

/* ------------------------------------------------------------ 2. offline */

static void test_1000_dispatches_to_an_offline_dealer_are_replayed_once_in_order_then_answered(void **state)
{
    fx_t *f = *state;
    assert_int_equal(s_dispatch_direct(f, "O1", 1000), 1000);
    zsock_t *req = s_connect(f, "O1", ZMQ_DEALER, NULL);
    crm_msg_t m = s_replay_msg(1), reply;
    char id[CRM_ID_MAX];
    s_send(req, &m, id, sizeof id);
    static uint64_t seqs[1100];
    int n = 0;
    if (!s_reply(req, id, false, 20000, &reply, "dealer.O1", seqs, 1100, &n))
        fail_msg("no reply to the replay (%d dispatches came)", n);
    assert_int_equal(n, 1000);
    for (int i = 0; i < n; i++)
        if (seqs[i] != (uint64_t) i + 1)
            fail_msg("replayed dispatch %d has number %llu", i + 1, (unsigned long long) seqs[i]);
    s_assert_ok(&reply);
    assert_string_equal(reply.corr, id);
    const crm_body_dealer_reply_t *b = &reply.body.dealer_reply;
    assert_true(b->has.first && b->has.last && b->has.count);
    assert_int_equal(b->first, 1);
    assert_int_equal(b->last, 1000);
    assert_int_equal(b->count, 1000);
    crm_msg_clear(&reply);
    s_assert_silent(req, 300, "after the replay's reply, the request socket");
}

/* ------------------------------------------------------------ 3. certificates */

static void test_a_certificate_not_in_the_directory_gets_no_answer_at_all(void **state)
{
    fx_t *f = *state;
    s_dispatch_direct(f, "X1", 2);
    /* A well-formed certificate claiming to be X1, never trusted. */
    zcert_t *intruder = zcert_new();
    assert_non_null(intruder);
    zcert_set_meta(intruder, "dealer-id", "X1");
    zsock_t *req = s_connect_cert(f, intruder, ZMQ_DEALER, NULL);
    zsock_t *sub = s_connect_cert(f, intruder, ZMQ_SUB, (const char *const[]){"dealer.X1:", "", NULL});
    zcert_destroy(&intruder);
    zsock_t *real = s_connect(f, "X1", ZMQ_SUB, (const char *const[]){"dealer.X1:", NULL});
    crm_msg_t m = s_replay_msg(1);
    s_send(req, &m, NULL, 0);
    m = s_ack_msg(0);
    s_send(req, &m, NULL, 0);
    /* The real X1 hears its heartbeats meanwhile; the intruder nothing. */
    char streams[128];
    assert_true(s_heartbeat(real, 4000, streams, sizeof streams, NULL));
    assert_string_equal(streams, "dealer.X1=2");
    s_assert_silent(req, S_QUIET_MS, "a client with an unknown certificate");
    s_assert_silent(sub, 100, "a subscriber with an unknown certificate");
}

/* ------------------------------------------------------------ 4. a new certificate */

static void test_a_certificate_issued_with_crmctl_works_at_once(void **state)
{
    fx_t *f = *state;
    s_cert(f, "N1");
    int64_t t0 = crm_mono_ms();
    zsock_t *sub = s_connect(f, "N1", ZMQ_SUB, (const char *const[]){"dealer.N1:", NULL});
    zsock_t *req = s_connect(f, "N1", ZMQ_DEALER, NULL);
    crm_msg_t m = s_replay_msg(1), reply;
    char id[CRM_ID_MAX];
    s_send(req, &m, id, sizeof id);
    if (!s_reply(req, id, false, 2000, &reply, NULL, NULL, 0, NULL))
        fail_msg("the replay of a certificate made just now was not answered within 2 s");
    s_assert_ok(&reply);
    assert_int_equal(reply.body.dealer_reply.count, 0);
    crm_msg_clear(&reply);
    /* The subscription took: a heartbeat within the first second or so
       (not the 5 s a poll of the directory would take)... */
    char streams[128];
    if (!s_heartbeat(sub, 2500 - (int) (crm_mono_ms() - t0), streams, sizeof streams, NULL))
        fail_msg("no heartbeat within 2.5 s of crmctl dealer cert");
    assert_string_equal(streams, "dealer.N1=0");
    /* ...and a dispatch is pushed to it. */
    s_testdrive(f, "TN1-1", "N1");
    int64_t deadline = crm_mono_ms() + 3000;
    char topic[64];
    bool pushed = false;
    while (!pushed && s_recv(sub, s_left(deadline), &m, topic, sizeof topic)) {
        assert_string_equal(topic, "dealer.N1:");
        pushed = m.type == CRM_T_dealer_dispatch;
        if (pushed) {
            assert_int_equal(m.seq, 1);
            assert_string_equal(m.body.dealer_dispatch.testdrive_id, "TN1-1");
        }
        crm_msg_clear(&m);
    }
    assert_true(pushed);
}

/* ------------------------------------------------------------ 5. other topics */

static void test_subscribing_to_another_dealer_or_to_everything_gets_nothing_of_theirs_and_is_logged(void **state)
{
    fx_t *f = *state;
    zsock_t *d1 = s_connect(f, "D1", ZMQ_SUB, (const char *const[]){"dealer.D2:", "", "dealer.D", "dealer.D1:", NULL});
    zsock_t *d2 = s_connect(f, "D2", ZMQ_SUB, (const char *const[]){"dealer.D2:", NULL});
    const char *refused[] = {
        "event=gateway.subscription_refused dealer=D1 topic=\"dealer.D2:\" certified=yes",
        "event=gateway.subscription_refused dealer=D1 topic=\"\" certified=yes",
        "event=gateway.subscription_refused dealer=D1 topic=\"dealer.D\" certified=yes",
    };
    for (int i = 0; i < 3; i++)
        if (!s_wait_log(f, refused[i], 4000))
            fail_msg("not in the dispatcher's log: %s", refused[i]);
    char streams[128];
    assert_true(s_heartbeat(d2, 4000, streams, sizeof streams, NULL));
    assert_string_equal(streams, "dealer.D2=0");
    s_testdrive(f, "TD2-1", "D2");
    int64_t deadline = crm_mono_ms() + 5000;
    crm_msg_t m;
    char topic[64];
    bool pushed = false;
    while (!pushed && s_recv(d2, s_left(deadline), &m, topic, sizeof topic)) {
        assert_string_equal(topic, "dealer.D2:");
        pushed = m.type == CRM_T_dealer_dispatch;
        crm_msg_clear(&m);
    }
    assert_true(pushed);
    /* D1 hears its own heartbeats (its subscription works) and nothing of
       D2's: no push, no heartbeat, over more than a heartbeat period. */
    int own = 0;
    deadline = crm_mono_ms() + S_QUIET_MS;
    while (s_recv(d1, s_left(deadline), &m, topic, sizeof topic)) {
        if (strcmp(topic, "dealer.D1:") || m.type != CRM_T_heartbeat) {
            char *json = crm_msg_to_json(&m);
            fail_msg("D1 received %s %s", topic, json ? json : "?");
        }
        own++;
        crm_msg_clear(&m);
    }
    assert_true(own >= 1);
}

/* ------------------------------------------------------------ 6. trimmed */

static void test_a_replay_below_the_retained_range_is_answered_below_retained_with_first(void **state)
{
    fx_t *f = *state;
    assert_int_equal(s_dispatch_direct(f, "T1", 10), 10);
    assert_int_equal(crm_h_int(f->sys.store, "XTRIM " CRM_KEY_EVENTS_FMT " MINID 6", "dealer.T1"), 5);
    zsock_t *req = s_connect(f, "T1", ZMQ_DEALER, NULL);
    crm_msg_t m = s_replay_msg(3), reply;
    char id[CRM_ID_MAX];
    s_send(req, &m, id, sizeof id);
    int n = 0;
    assert_true(s_reply(req, id, false, 5000, &reply, NULL, NULL, 0, &n));
    assert_int_equal(n, 0); /* nothing sent: the dealer must not skip ahead */
    s_assert_refused(&reply, "below_retained", "from");
    assert_true(reply.body.dealer_reply.has.first);
    assert_int_equal(reply.body.dealer_reply.first, 6);
    assert_int_equal(reply.body.dealer_reply.last, 10);
    crm_msg_clear(&reply);

    /* From the first retained number on, it works. */
    m = s_replay_msg(6);
    s_send(req, &m, id, sizeof id);
    uint64_t seqs[8];
    assert_true(s_reply(req, id, false, 5000, &reply, "dealer.T1", seqs, 8, &n));
    s_assert_ok(&reply);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(seqs[i], (uint64_t) i + 6);
    assert_int_equal(reply.body.dealer_reply.first, 6);
    assert_int_equal(reply.body.dealer_reply.count, 5);
    crm_msg_clear(&reply);
}

/* ------------------------------------------------------------ 7. acks */

static void test_an_ack_is_refused_beyond_the_last_number_and_answered_only_after_its_commit(void **state)
{
    fx_t *f = *state;
    assert_int_equal(s_dispatch_direct(f, "A1", 3), 3);
    zsock_t *req = s_connect(f, "A1", ZMQ_DEALER, NULL);
    crm_msg_t m = s_ack_msg(4), reply;
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "beyond_last", "upto");
    assert_true(reply.body.dealer_reply.has.last);
    assert_int_equal(reply.body.dealer_reply.last, 3);
    crm_msg_clear(&reply);
    assert_int_equal(crm_h_int(f->sys.store, "HGET " CRM_KEY_DEALER_FMT " acked", "A1"), -1);

    m = s_ack_msg(3);
    s_ask(req, &m, &reply, NULL, 0);
    /* Read before anything else: the answer promises it is committed. */
    long long acked = crm_h_int(f->sys.store, "HGET " CRM_KEY_DEALER_FMT " acked", "A1");
    s_assert_ok(&reply);
    assert_int_equal(reply.body.dealer_reply.last, 3);
    crm_msg_clear(&reply);
    assert_int_equal(acked, 3);

    /* An old one again is harmless. */
    m = s_ack_msg(2);
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_ok(&reply);
    crm_msg_clear(&reply);
    assert_int_equal(crm_h_int(f->sys.store, "HGET " CRM_KEY_DEALER_FMT " acked", "A1"), 3);
}

static void test_an_ack_of_5000_numbers_at_once_is_finished(void **state)
{
    fx_t *f = *state;
    assert_int_equal(s_dispatch_direct(f, "A2", 5000), 5000);
    zsock_t *req = s_connect(f, "A2", ZMQ_DEALER, NULL);
    crm_msg_t m = s_ack_msg(5000), reply;
    s_ask(req, &m, &reply, NULL, 0);
    long long acked = crm_h_int(f->sys.store, "HGET " CRM_KEY_DEALER_FMT " acked", "A2");
    long long pending = crm_h_int(f->sys.store, "HGET " CRM_KEY_DEALER_FMT " ack_pending", "A2");
    s_assert_ok(&reply);
    crm_msg_clear(&reply);
    /* Committed when answered: done, or durably pending. */
    assert_true(acked >= 1);
    if (acked != 5000 && pending != 5000)
        fail_msg("answered ok with acked=%lld ack_pending=%lld", acked, pending);
    long long done = crm_h_wait_int(f->sys.store, 5000, 2500, "HGET " CRM_KEY_DEALER_FMT " acked", "A2");
    assert_int_equal(done, 5000);
    assert_int_equal(crm_h_int(f->sys.store, "HEXISTS " CRM_KEY_DEALER_FMT " ack_pending", "A2"), 0);
}

/* ------------------------------------------------------------ 8. status */

static void test_a_status_report_is_accepted_for_its_own_test_drive_and_refused_with_the_reason_otherwise(void **state)
{
    fx_t *f = *state;
    s_testdrive(f, "TS1", "S1");
    s_testdrive(f, "TS2", "S2");
    s_wait_td_status(f, "TS1", "dispatched");
    s_wait_td_status(f, "TS2", "dispatched");
    zsock_t *req = s_connect(f, "S1", ZMQ_DEALER, NULL);
    crm_msg_t m = s_status_msg("TS1", "received"), reply, again;

    /* Accepted: the state, an event on the testdrive stream, a history entry. */
    msgpack_sbuffer received;
    char rid[CRM_ID_MAX];
    s_encode(&m, &received, rid, sizeof rid);
    s_send_bytes(req, received.data, received.size);
    assert_true(s_reply(req, rid, false, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_ok(&reply);
    s_field_t w = {f, "crm:td:TS1", "status", "received"};
    assert_true(s_field_is(&w));
    assert_int_equal(s_status_events(f, "TS1", "received", "S1"), 1);
    assert_int_equal(s_history(f, "TS1", "received", "S1"), 1);
    /* The same request again (same id): the same answer, nothing new. */
    s_send_bytes(req, received.data, received.size);
    assert_true(s_reply(req, rid, false, 5000, &again, NULL, NULL, 0, NULL));
    s_assert_ok(&again);
    assert_string_equal(again.id, reply.id); /* the kept answer itself */
    crm_msg_clear(&again);
    crm_msg_clear(&reply);
    assert_int_equal(s_status_events(f, "TS1", "received", "S1"), 1);
    assert_int_equal(s_history(f, "TS1", "received", "S1"), 1);

    m = s_status_msg("TS2", "contacted");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "not_yours", "testdrive_id");
    crm_msg_clear(&reply);
    w = (s_field_t){f, "crm:td:TS2", "status", "dispatched"};
    assert_true(s_field_is(&w));

    m = s_status_msg("TS-NONE", "contacted");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "unknown_testdrive", "testdrive_id");
    crm_msg_clear(&reply);

    static char big[10 * 1024 + 1];
    memset(big, 'T', sizeof big - 1);
    const char *bad[] = {"TS1:x", "TS{1}", "TS 1", big};
    for (int i = 0; i < 4; i++) {
        m = s_status_msg(bad[i], "contacted");
        s_ask(req, &m, &reply, NULL, 0);
        s_assert_refused(&reply, "bad_id", "testdrive_id");
        crm_msg_clear(&reply);
    }

    m = s_status_msg("TS1", "lost");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "invalid", "status");
    crm_msg_clear(&reply);

    m = s_status_msg("TS1", "confirmed");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "required", "at");
    crm_msg_clear(&reply);

    /* contacted, then completed closes it. */
    msgpack_sbuffer contacted;
    char cid[CRM_ID_MAX];
    m = s_status_msg("TS1", "contacted");
    s_encode(&m, &contacted, cid, sizeof cid);
    s_send_bytes(req, contacted.data, contacted.size);
    assert_true(s_reply(req, cid, false, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_ok(&reply);
    crm_msg_clear(&reply);
    m = s_status_msg("TS1", "completed");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_ok(&reply);
    crm_msg_clear(&reply);
    m = s_status_msg("TS1", "no_show");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "closed", "status");
    crm_msg_clear(&reply);
    /* A resend of the earlier report still gets its own answer, not
       "closed", and adds nothing. */
    s_send_bytes(req, contacted.data, contacted.size);
    assert_true(s_reply(req, cid, false, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_ok(&reply);
    crm_msg_clear(&reply);
    assert_int_equal(s_status_events(f, "TS1", "contacted", "S1"), 1);
    assert_int_equal(s_history(f, "TS1", "contacted", "S1"), 1);
    assert_int_equal(s_status_events(f, "TS1", "completed", "S1"), 1);
    assert_int_equal(s_status_events(f, "TS1", "no_show", "S1"), 0);
    w = (s_field_t){f, "crm:td:TS1", "status", "completed"};
    assert_true(s_field_is(&w));
    msgpack_sbuffer_destroy(&received);
    msgpack_sbuffer_destroy(&contacted);
}

/* ------------------------------------------------------------ 9. malformed */

/* The rejects kept from `from` (an entry id) on: how many, and whether
   each has origin gateway and peer `peer`. */
static int s_rejects_since(fx_t *f, const char *from, const char *peer, int *gateway)
{
    redisReply *r = crm_store_cmd(f->sys.store, "XRANGE " CRM_KEY_REJECTS " (%s +", from);
    assert_non_null(r);
    int n = 0;
    *gateway = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *fields = r->element[i]->element[1];
        const char *origin = crm_reply_field(fields, "origin"), *p = crm_reply_field(fields, "peer");
        *gateway += origin && !strcmp(origin, "gateway") && p && !strcmp(p, peer);
        n++;
    }
    freeReplyObject(r);
    return n;
}

static void test_malformed_requests_are_answered_with_the_field_kept_in_rejects_and_the_gateway_keeps_serving(
    void **state)
{
    fx_t *f = *state;
    zsock_t *req = s_connect(f, "M1", ZMQ_DEALER, NULL);
    /* Where crm:rejects stood before. */
    redisReply *r = crm_store_cmd(f->sys.store, "XREVRANGE " CRM_KEY_REJECTS " + - COUNT 1");
    assert_non_null(r);
    char from[64] = "0-0";
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        snprintf(from, sizeof from, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);

    crm_msg_t reply;
    /* Garbage bytes. */
    s_send_bytes(req, "\xc1\xff garbage", 10);
    assert_true(s_reply(req, "", true, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_refused(&reply, "malformed", "envelope");
    crm_msg_clear(&reply);

    /* A truncated envelope: a valid ack cut after its type. */
    crm_msg_t m = s_ack_msg(0);
    msgpack_sbuffer buf;
    char id[CRM_ID_MAX];
    s_encode(&m, &buf, id, sizeof id);
    s_send_bytes(req, buf.data, 20);
    assert_true(s_reply(req, "", true, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_refused(&reply, "malformed", "envelope");
    crm_msg_clear(&reply);

    /* Two frames: a valid envelope and one more. */
    zmq_send(zsock_resolve(req), buf.data, buf.size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(zsock_resolve(req), "x", 1, ZMQ_DONTWAIT);
    assert_true(s_reply(req, id, true, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_refused(&reply, "malformed", "frames");
    crm_msg_clear(&reply);
    msgpack_sbuffer_destroy(&buf);

    /* A message that is not a request taken here. */
    crm_msg_init(&m, CRM_T_lead_submit);
    CRM_SET_STR(&m, lead_submit, channel, "website");
    CRM_SET_STR(&m, lead_submit, name, "张三");
    CRM_SET_STR(&m, lead_submit, mobile, "13812345678");
    s_send(req, &m, id, sizeof id);
    assert_true(s_reply(req, id, false, 5000, &reply, NULL, NULL, 0, NULL));
    s_assert_refused(&reply, "unknown_type", "type");
    assert_non_null(strstr(reply.body.dealer_reply.message, "lead.submit"));
    crm_msg_clear(&reply);

    /* Each is kept for review, as the gateway's, with the certified peer. */
    int gateway = 0;
    int64_t deadline = crm_mono_ms() + 2000;
    while (s_rejects_since(f, from, "M1", &gateway) < 4 && crm_mono_ms() < deadline)
        usleep(20 * 1000);
    assert_int_equal(s_rejects_since(f, from, "M1", &gateway), 4);
    assert_int_equal(gateway, 4);

    /* And the gateway still serves. */
    m = s_replay_msg(1);
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_ok(&reply);
    assert_int_equal(reply.body.dealer_reply.count, 0);
    crm_msg_clear(&reply);
}

/* ------------------------------------------------------------ 10. REQ */

static void test_a_req_socket_works_for_ack_and_status(void **state)
{
    fx_t *f = *state;
    assert_int_equal(s_dispatch_direct(f, "Q1", 2), 2);
    zsock_t *req = s_connect(f, "Q1", ZMQ_REQ, NULL);
    crm_msg_t m = s_ack_msg(2), reply;
    /* A REQ socket drops an answer without the empty delimiter: no answer
       at all is what a missing delimiter looks like. */
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_ok(&reply);
    crm_msg_clear(&reply);
    assert_int_equal(crm_h_int(f->sys.store, "HGET " CRM_KEY_DEALER_FMT " acked", "Q1"), 2);
    m = s_status_msg("TS-NONE", "received");
    s_ask(req, &m, &reply, NULL, 0);
    s_assert_refused(&reply, "unknown_testdrive", "testdrive_id");
    crm_msg_clear(&reply);
}

/* ------------------------------------------------------------ 3b. revocation */

static void test_a_revoked_certificate_is_refused_on_an_open_connection_and_a_new_one_and_its_subscription_is_cut(
    void **state)
{
    fx_t *f = *state;
    zsock_t *sub = s_connect(f, "V1", ZMQ_SUB, (const char *const[]){"dealer.V1:", NULL});
    zsock_t *req = s_connect(f, "V1", ZMQ_DEALER, NULL);
    zsock_t *other = s_connect(f, "W1", ZMQ_SUB, (const char *const[]){"dealer.W1:", NULL});
    char streams[128];
    assert_true(s_heartbeat(sub, 4000, streams, sizeof streams, NULL));
    assert_true(s_heartbeat(other, 4000, streams, sizeof streams, NULL));
    crm_msg_t m = s_replay_msg(1), reply;
    s_ask(req, &m, &reply, NULL, 0); /* it worked before */
    s_assert_ok(&reply);
    crm_msg_clear(&reply);

    if (crm_h_sys_crmctl(&f->sys, "dealer", "revoke", "V1", NULL) != 0)
        fail_msg("crmctl dealer revoke V1 failed (see %s)", f->sys.out);
    /* What was on its way before the revocation may still arrive. */
    crm_msg_t late;
    char topic[64];
    while (s_recv(sub, 200, &late, topic, sizeof topic))
        crm_msg_clear(&late);

    /* The open request connection: not_certified. */
    m = s_ack_msg(0);
    char id[CRM_ID_MAX];
    s_send(req, &m, id, sizeof id);
    if (!s_reply(req, id, true, 3000, &reply, NULL, NULL, 0, NULL))
        fail_msg("no not_certified on the connection opened before the revocation");
    s_assert_refused(&reply, "not_certified", "certificate");
    crm_msg_clear(&reply);

    /* A new connection: nothing. */
    zsock_t *again = s_connect(f, "V1", ZMQ_DEALER, NULL);
    m = s_replay_msg(1);
    s_send(again, &m, NULL, 0);

    /* The open subscription: a dispatch the dispatcher pushes now does not
       reach it. */
    s_testdrive(f, "TV1-1", "V1");
    s_wait_td_status(f, "TV1-1", "dispatched");
    s_assert_silent(sub, S_QUIET_MS, "the subscription of a revoked certificate");
    s_assert_silent(again, 100, "a new connection with a revoked certificate");
    assert_true(s_wait_log(f, "event=gateway.xpub_rebuilt", 100));

    /* Other dealers are back on the rebuilt socket by themselves. */
    if (!s_heartbeat(other, 4000, streams, sizeof streams, NULL))
        fail_msg("W1 gets no heartbeat after V1 was revoked");
    assert_string_equal(streams, "dealer.W1=0");
}

/* ------------------------------------------------------------ last */

static void test_the_dispatcher_stops_cleanly_after_all_of_it(void **state)
{
    fx_t *f = *state;
    int status = crm_h_sys_kill(&f->sys, "dispatcher", SIGTERM);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("crm-dispatcher did not exit 0 on SIGTERM (status %d; see %s)", status, f->log);
    assert_false(crm_h_file_contains(f->log, "AddressSanitizer"));
    assert_false(crm_h_file_contains(f->log, "LeakSanitizer"));
    assert_false(crm_h_file_contains(f->log, "runtime error:"));
}

#define S_CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        S_CASE(test_a_dealer_receives_its_own_pushes_numbered_1_2_3_and_heartbeats_with_its_latest_number),
        S_CASE(test_1000_dispatches_to_an_offline_dealer_are_replayed_once_in_order_then_answered),
        S_CASE(test_a_certificate_not_in_the_directory_gets_no_answer_at_all),
        S_CASE(test_a_certificate_issued_with_crmctl_works_at_once),
        S_CASE(test_subscribing_to_another_dealer_or_to_everything_gets_nothing_of_theirs_and_is_logged),
        S_CASE(test_a_replay_below_the_retained_range_is_answered_below_retained_with_first),
        S_CASE(test_an_ack_is_refused_beyond_the_last_number_and_answered_only_after_its_commit),
        S_CASE(test_an_ack_of_5000_numbers_at_once_is_finished),
        S_CASE(test_a_status_report_is_accepted_for_its_own_test_drive_and_refused_with_the_reason_otherwise),
        S_CASE(test_malformed_requests_are_answered_with_the_field_kept_in_rejects_and_the_gateway_keeps_serving),
        S_CASE(test_a_req_socket_works_for_ack_and_status),
        /* Last but one: the revocation rebuilds the live socket. */
        S_CASE(test_a_revoked_certificate_is_refused_on_an_open_connection_and_a_new_one_and_its_subscription_is_cut),
        S_CASE(test_the_dispatcher_stops_cleanly_after_all_of_it),
    };
    if (getenv("CRM_TEST_ONLY"))
        cmocka_set_test_filter(getenv("CRM_TEST_ONLY"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
