/*  The dealer gateway: a dealer gets its own dispatches, all of them, once,
 *  in order, even after a day offline; and nobody gets anyone else's.
 *
 *  Each test hosts a gateway_t in-process on a zloop the test drives
 *  (s_pump runs the loop until a condition holds or time runs out), with a
 *  private redis-server, real CURVE sockets as dealers, and the crm-dealer
 *  binary for the catch-up story.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_log.h"
#include "gateway.h"

int crmctl_dealer_cert(const char *cert_dir, const char *dealer_id, const char *out_secret_file);
int crmctl_dealer_revoke(const char *cert_dir, const char *dealer_id);

typedef struct {
    crm_h_redis_t redis;
    crm_store_t *gw_store; /* the gateway's connection */
    crm_store_t *store;    /* the test's (the dispatcher's writes) */
    zloop_t *loop;
    gateway_t *gw;
    char certs[256], server_cert[256], log[256];
    char pub[64], router[64];
    /* what the handlers saw */
    char acked_dealer[64];
    uint64_t acked_upto;
    int acks;
    char status_dealer[64];
    char status_testdrive[64];
    int statuses;
    bool refuse_status;
    /* s_pump */
    bool (*cond)(void *);
    void *cond_arg;
    int64_t deadline;
    int saved_stderr;
} fx_t;

static void s_on_ack(void *arg, const char *dealer_id, uint64_t upto)
{
    fx_t *f = arg;
    snprintf(f->acked_dealer, sizeof f->acked_dealer, "%s", dealer_id);
    f->acked_upto = upto;
    f->acks++;
}

static int s_on_status(void *arg, const char *dealer_id, const crm_body_dealer_status_t *st,
                       char *code, size_t codesz, char *err, size_t errsz)
{
    fx_t *f = arg;
    snprintf(f->status_dealer, sizeof f->status_dealer, "%s", dealer_id);
    snprintf(f->status_testdrive, sizeof f->status_testdrive, "%s", st->testdrive_id);
    f->statuses++;
    if (f->refuse_status) {
        snprintf(code, codesz, "unknown_testdrive");
        snprintf(err, errsz, "testdrive_id: %s is not one of yours", st->testdrive_id);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ fixture */

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(crm_h_redis_start(&f->redis, false), 0);
    f->gw_store = crm_h_store(&f->redis);
    f->store = crm_h_store(&f->redis);
    crm_h_path(&f->redis, "dealer-certs", f->certs, sizeof f->certs);
    crm_h_path(&f->redis, "gateway.cert", f->server_cert, sizeof f->server_cert);
    crm_h_path(&f->redis, "gateway.log", f->log, sizeof f->log);
    snprintf(f->pub, sizeof f->pub, "tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(f->router, sizeof f->router, "tcp://127.0.0.1:%d", crm_h_free_port());
    /* The gateway's log goes to a file the tests read. */
    fflush(stderr);
    f->saved_stderr = dup(2);
    int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
    char secret[300];
    for (const char *const *d = (const char *const[]){"D1", "D2", NULL}; *d; d++) {
        snprintf(secret, sizeof secret, "%s/%s.secret", f->redis.dir, *d);
        assert_int_equal(crmctl_dealer_cert(f->certs, *d, secret), 0);
    }
    f->loop = zloop_new();
    gateway_handlers_t h = {.on_ack = s_on_ack, .on_status = s_on_status, .arg = f};
    f->gw = gateway_new(f->loop, f->gw_store, f->certs, f->server_cert, f->pub, f->router, &h);
    assert_non_null(f->gw);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    gateway_destroy(&f->gw);
    gateway_destroy(&f->gw); /* safe twice */
    assert_null(f->gw);
    zloop_destroy(&f->loop);
    crm_store_destroy(&f->store);
    crm_store_destroy(&f->gw_store);
    fflush(stderr);
    dup2(f->saved_stderr, 2);
    close(f->saved_stderr);
    /* What was not a log line (cmocka's messages on a failure) is shown. */
    FILE *fp = fopen(f->log, "r");
    char line[4096];
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, "ts=", 3) || getenv("CRM_TEST_VERBOSE"))
            fputs(line, stderr);
    if (fp)
        fclose(fp);
    crm_h_redis_stop(&f->redis);
    free(f);
    return 0;
}

static int s_pump_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    fx_t *f = arg;
    if ((f->cond && f->cond(f->cond_arg)) || crm_mono_ms() >= f->deadline)
        return -1;
    return 0;
}

/* Runs the gateway's loop until cond(arg) holds or timeout_ms pass (cond
   NULL: the whole time). Returns the last value of cond. */
static bool s_pump(fx_t *f, bool (*cond)(void *), void *arg, int timeout_ms)
{
    f->cond = cond;
    f->cond_arg = arg;
    f->deadline = crm_mono_ms() + timeout_ms;
    int id = zloop_timer(f->loop, 5, 0, s_pump_tick, f);
    zloop_start(f->loop);
    zloop_timer_end(f->loop, id);
    f->cond = NULL;
    return cond ? cond(arg) : true;
}

/* Commits `n` dispatches for `dealer` as the dispatcher does, and pushes
   them live when `push`. Returns the last number. */
static uint64_t s_dispatch(fx_t *f, const char *dealer, int n, bool push)
{
    uint64_t last = 0;
    for (int done = 0; done < n;) {
        crm_tx_t *tx = crm_tx_new("dispatcher", 1000000);
        for (int k = 0; k < 500 && done < n; k++, done++) {
            crm_msg_t m;
            crm_msg_init(&m, CRM_T_dealer_dispatch);
            snprintf(m.stream, sizeof m.stream, "dealer.%s", dealer);
            char td[32];
            snprintf(td, sizeof td, "TD%d", done + 1);
            CRM_SET_STR(&m, dealer_dispatch, testdrive_id, td);
            CRM_SET_STR(&m, dealer_dispatch, dealer_id, dealer);
            CRM_SET_STR(&m, dealer_dispatch, customer_name, "张三");
            CRM_SET_I64(&m, dealer_dispatch, at, 1790000000000LL);
            assert_true(crm_tx_emit(tx, &m) >= 0);
            crm_msg_clear(&m);
        }
        assert_int_equal(crm_store_commit(f->store, tx), 0);
        for (size_t i = 0; i < crm_tx_emit_count(tx); i++) {
            const crm_emit_t *e = crm_tx_emit_at(tx, i);
            if (push)
                gateway_push(f->gw, dealer, e->frame, e->len);
            last = e->seq;
        }
        crm_tx_destroy(&tx);
    }
    return last;
}

/* ------------------------------------------------------------ a dealer */

typedef struct {
    zsock_t *sub, *req;
    uint64_t seqs[64]; /* numbers received on the SUB */
    char streams[64][48];
    int got;
    crm_msg_t reply;
    bool replied;
    int frames_before_reply; /* dispatches received on the DEALER before the reply */
} dealer_t;

static zsock_t *s_client(fx_t *f, const char *secret_file, int type, const char *endpoint)
{
    zcert_t *cert = zcert_load(secret_file);
    assert_non_null(cert);
    zsock_t *sock = zsock_new(type);
    assert_non_null(sock);
    zcert_apply(cert, sock);
    zsock_set_curve_serverkey(sock, gateway_public_key(f->gw));
    zsock_set_linger(sock, 0);
    zsock_set_rcvtimeo(sock, 0);
    assert_int_equal(zsock_connect(sock, "%s", endpoint), 0);
    zcert_destroy(&cert);
    return sock;
}

/* A dealer's SUB and DEALER sockets with the certificate in `secret_file`,
   subscribed to each of `topics`. */
static dealer_t *s_dealer(fx_t *f, const char *secret_file, const char *const *topics)
{
    dealer_t *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->sub = s_client(f, secret_file, ZMQ_SUB, f->pub);
    for (; topics && *topics; topics++)
        zsock_set_subscribe(d->sub, *topics);
    d->req = s_client(f, secret_file, ZMQ_DEALER, f->router);
    return d;
}

static const char *s_secret(fx_t *f, const char *dealer, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.secret", f->redis.dir, dealer);
    return out;
}

static void s_dealer_free(dealer_t **d_p)
{
    dealer_t *d = *d_p;
    zsock_destroy(&d->sub);
    zsock_destroy(&d->req);
    crm_msg_clear(&d->reply);
    free(d);
    *d_p = NULL;
}

/* Takes what arrived on the dealer's sockets without waiting. */
static void s_drain(dealer_t *d)
{
    zmsg_t *msg;
    while ((msg = zmsg_recv(d->sub))) {
        zframe_t *frame = zmsg_last(msg);
        crm_msg_t m;
        crm_err_t e;
        if (zmsg_size(msg) == 2 && crm_msg_decode(zframe_data(frame), zframe_size(frame), &m, &e) == 0) {
            if (d->got < 64) {
                d->seqs[d->got] = m.seq;
                snprintf(d->streams[d->got], sizeof d->streams[0], "%s", m.stream);
            }
            d->got++;
            crm_msg_clear(&m);
        }
        zmsg_destroy(&msg);
    }
    zframe_t *frame;
    while ((frame = zframe_recv(d->req))) {
        crm_msg_t m;
        crm_err_t e;
        if (crm_msg_decode(zframe_data(frame), zframe_size(frame), &m, &e) == 0) {
            if (m.type == CRM_T_dealer_reply && !d->replied) {
                d->reply = m;
                d->replied = true;
            } else {
                if (!d->replied)
                    d->frames_before_reply++;
                crm_msg_clear(&m);
            }
        }
        zframe_destroy(&frame);
    }
}

typedef struct {
    dealer_t *d;
    int want;
} want_t;

static bool s_got(void *arg)
{
    want_t *w = arg;
    s_drain(w->d);
    return w->d->got >= w->want;
}

static bool s_replied(void *arg)
{
    dealer_t *d = arg;
    s_drain(d);
    return d->replied;
}

static void s_send(dealer_t *d, crm_msg_t *m)
{
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "dealer");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(m, &buf, NULL), 0);
    /* Without waiting: a socket whose handshake was refused has no peer
       to queue for, and that is an outcome some tests expect. */
    zmq_send(zsock_resolve(d->req), buf.data, buf.size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy(&buf);
    crm_msg_clear(m);
}

/* Sends a request and runs the gateway until its dealer.reply is in. */
static bool s_ask(fx_t *f, dealer_t *d, crm_msg_t *m, int timeout_ms)
{
    crm_msg_clear(&d->reply);
    d->replied = false;
    d->frames_before_reply = 0;
    s_send(d, m);
    return s_pump(f, s_replied, d, timeout_ms);
}

/* Gives CURVE handshakes and subscriptions time to reach the gateway. */
static void s_settle(fx_t *f)
{
    s_pump(f, NULL, NULL, 500);
}

/* ------------------------------------------------------------ tests */

static void test_valid_dealer_receives_its_own_pushes_in_order(void **state)
{
    fx_t *f = *state;
    char secret[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", secret, sizeof secret),
                            (const char *const[]){"dealer.D1:", NULL});
    s_settle(f);
    s_dispatch(f, "D2", 2, true); /* someone else's */
    s_dispatch(f, "D1", 3, true);
    want_t w = {d1, 3};
    assert_true(s_pump(f, s_got, &w, 5000));
    s_pump(f, NULL, NULL, 200);
    s_drain(d1);
    assert_int_equal(d1->got, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d1->seqs[i], (uint64_t) i + 1);
        assert_string_equal(d1->streams[i], "dealer.D1");
    }
    assert_true(crm_h_file_contains(f->log, "event=gateway.subscribed dealer=D1 topic=dealer.D1:"));
    s_dealer_free(&d1);
}

typedef struct {
    pid_t pid;
    int status;
    bool done;
} child_t;

static bool s_child_done(void *arg)
{
    child_t *c = arg;
    if (!c->done)
        c->done = waitpid(c->pid, &c->status, WNOHANG) == c->pid;
    return c->done;
}

/* Runs crm-dealer --once for D1 while the gateway serves; returns its exit
   code and leaves its output (JSON lines and log) in `out`. */
static int s_crm_dealer_once(fx_t *f, const char *state_file, const char *out)
{
    char secret[300];
    s_secret(f, "D1", secret, sizeof secret);
    const char *args[] = {"--dealer", "D1",       "--cert", secret,   "--server-cert",
                          f->server_cert, "--state", state_file, "--endpoint", f->router,
                          "--pub",  f->pub,       "--once", NULL};
    child_t c = {crm_h_spawn("crm-dealer", args, NULL, out), 0, false};
    if (!s_pump(f, s_child_done, &c, 60000)) {
        crm_h_stop(c.pid, SIGKILL, 1000);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -5 '%s' >&2", out);
        if (system(cmd) != 0)
            fprintf(stderr, "(no output)\n");
        fail_msg("crm-dealer --once did not finish");
    }
    assert_true(WIFEXITED(c.status));
    return WEXITSTATUS(c.status);
}

/* The "seq" of each JSON line in `path`, in file order. */
static int s_json_seqs(const char *path, uint64_t *seqs, int max)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] != '{')
            continue;
        assert_non_null(strstr(line, "\"type\":\"dealer.dispatch\""));
        assert_non_null(strstr(line, "\"stream\":\"dealer.D1\""));
        const char *s = strstr(line, "\"seq\":");
        assert_non_null(s);
        if (n < max)
            seqs[n] = strtoull(s + 6, NULL, 10);
        n++;
    }
    fclose(fp);
    return n;
}

static void test_dealer_offline_for_1000_dispatches_gets_each_once_in_order(void **state)
{
    fx_t *f = *state;
    /* The dealer is offline: nothing is pushed to it, all is in Redis. */
    assert_int_equal(s_dispatch(f, "D1", 1000, false), 1000);
    s_dispatch(f, "D2", 10, false);
    char state_file[300], out[300];
    crm_h_path(&f->redis, "d1.state", state_file, sizeof state_file);
    crm_h_path(&f->redis, "d1.run1", out, sizeof out);
    assert_int_equal(s_crm_dealer_once(f, state_file, out), 0);
    static uint64_t seqs[1100];
    int n = s_json_seqs(out, seqs, 1100);
    assert_int_equal(n, 1000);
    for (int i = 0; i < n; i++)
        assert_int_equal(seqs[i], (uint64_t) i + 1);
    assert_true(crm_h_file_contains(state_file, "1000"));
    /* Its ack reached the dispatcher's handler, with the certified id. */
    s_pump(f, NULL, NULL, 200);
    assert_string_equal(f->acked_dealer, "D1");
    assert_int_equal(f->acked_upto, 1000);

    /* A second run has nothing new. */
    crm_h_path(&f->redis, "d1.run2", out, sizeof out);
    assert_int_equal(s_crm_dealer_once(f, state_file, out), 0);
    assert_int_equal(s_json_seqs(out, seqs, 1100), 0);

    /* Two more while it was away: only those come. */
    s_dispatch(f, "D1", 2, false);
    crm_h_path(&f->redis, "d1.run3", out, sizeof out);
    assert_int_equal(s_crm_dealer_once(f, state_file, out), 0);
    assert_int_equal(s_json_seqs(out, seqs, 1100), 2);
    assert_int_equal(seqs[0], 1001);
    assert_int_equal(seqs[1], 1002);
}

static void test_certificate_not_in_directory_gets_nothing(void **state)
{
    fx_t *f = *state;
    /* A well-formed certificate claiming to be D1, never put in the
       gateway's directory. */
    char elsewhere[300], secret[300];
    crm_h_path(&f->redis, "elsewhere", elsewhere, sizeof elsewhere);
    crm_h_path(&f->redis, "intruder.secret", secret, sizeof secret);
    assert_int_equal(crmctl_dealer_cert(elsewhere, "D1", secret), 0);
    dealer_t *x = s_dealer(f, secret, (const char *const[]){"dealer.D1:", "", NULL});
    char ok_secret[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", ok_secret, sizeof ok_secret),
                            (const char *const[]){"dealer.D1:", NULL});
    s_settle(f);
    s_dispatch(f, "D1", 3, true);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, 1);
    assert_false(s_ask(f, x, &m, 1500));
    /* The real D1 got its pushes meanwhile; the intruder got nothing. */
    want_t w = {d1, 3};
    assert_true(s_pump(f, s_got, &w, 3000));
    s_drain(x);
    assert_int_equal(x->got, 0);
    assert_false(x->replied);
    assert_int_equal(x->frames_before_reply, 0);
    s_dealer_free(&x);
    s_dealer_free(&d1);
}

static void test_subscribing_to_another_dealer_or_everything_is_refused_and_logged(void **state)
{
    fx_t *f = *state;
    char s1[300], s2[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", s1, sizeof s1),
                            (const char *const[]){"dealer.D2:", "", "dealer.D", NULL});
    dealer_t *d2 = s_dealer(f, s_secret(f, "D2", s2, sizeof s2),
                            (const char *const[]){"dealer.D2:", NULL});
    s_settle(f);
    s_dispatch(f, "D2", 3, true);
    s_dispatch(f, "D1", 1, true);
    want_t w = {d2, 3};
    assert_true(s_pump(f, s_got, &w, 5000)); /* the pushes went out */
    s_pump(f, NULL, NULL, 300);
    s_drain(d1);
    assert_int_equal(d1->got, 0);
    for (int i = 0; i < 3; i++)
        assert_string_equal(d2->streams[i], "dealer.D2");
    fflush(stderr);
    assert_true(crm_h_file_contains(
        f->log, "event=gateway.subscription_refused dealer=D1 topic=\"dealer.D2:\" certified=yes"));
    assert_true(crm_h_file_contains(
        f->log, "event=gateway.subscription_refused dealer=D1 topic=\"\" certified=yes"));
    assert_true(crm_h_file_contains(
        f->log, "event=gateway.subscription_refused dealer=D1 topic=\"dealer.D\" certified=yes"));
    s_dealer_free(&d1);
    s_dealer_free(&d2);
}

static void test_revoked_certificate_cannot_connect_again(void **state)
{
    fx_t *f = *state;
    char s1[300], s2[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", s1, sizeof s1),
                            (const char *const[]){"dealer.D1:", NULL});
    dealer_t *d2 = s_dealer(f, s_secret(f, "D2", s2, sizeof s2),
                            (const char *const[]){"dealer.D2:", NULL});
    s_settle(f);
    s_dispatch(f, "D1", 1, true);
    want_t w1 = {d1, 1};
    assert_true(s_pump(f, s_got, &w1, 5000)); /* it worked before */

    assert_int_equal(crmctl_dealer_revoke(f->certs, "D1"), 0);
    assert_int_equal(gateway_reload_certs(f->gw), 0);
    dealer_t *again = s_dealer(f, s1, (const char *const[]){"dealer.D1:", NULL});
    s_pump(f, NULL, NULL, 1000); /* reconnects happen */
    /* A valid dealer is back after the rebuild (it reconnects and
       subscribes again by itself; until then, pushes to it are lost and
       its client replays them). */
    s_dispatch(f, "D1", 2, true);
    want_t w2 = {d2, 1};
    bool back = false;
    for (int i = 0; i < 50 && !back; i++) {
        s_dispatch(f, "D2", 1, true);
        back = s_pump(f, s_got, &w2, 200);
    }
    assert_true(back);
    s_dispatch(f, "D1", 2, true);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, 1);
    assert_false(s_ask(f, again, &m, 1500)); /* a new connection gets no answer */
    s_drain(d1);
    s_drain(again);
    assert_int_equal(d1->got, 1); /* nothing after the revocation */
    assert_int_equal(again->got, 0);
    assert_int_equal(again->frames_before_reply, 0);
    /* The connection opened before the revocation is refused too. */
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, 1);
    if (s_ask(f, d1, &m, 1500)) {
        assert_false(d1->reply.body.dealer_reply.ok);
        assert_string_equal(d1->reply.body.dealer_reply.code, "not_certified");
    }
    assert_int_equal(d1->frames_before_reply, 0);
    s_dealer_free(&again);
    s_dealer_free(&d1);
    s_dealer_free(&d2);
}

static void test_replay_below_retained_range_names_the_first_retained_number(void **state)
{
    fx_t *f = *state;
    s_dispatch(f, "D1", 10, false);
    redisReply *r = crm_store_cmd(f->store, "XTRIM crm:{dealer.D1}:events MAXLEN 5");
    assert_non_null(r);
    freeReplyObject(r);
    char s1[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", s1, sizeof s1), NULL);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, 3);
    assert_true(s_ask(f, d1, &m, 5000));
    const crm_body_dealer_reply_t *rep = &d1->reply.body.dealer_reply;
    assert_false(rep->ok);
    assert_string_equal(rep->code, "below_retained");
    assert_int_equal(rep->first, 6);
    assert_int_equal(rep->last, 10);
    assert_non_null(strstr(rep->message, "from 6"));
    assert_int_equal(d1->frames_before_reply, 0);

    /* From the first retained number on, it works. */
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, 6);
    assert_true(s_ask(f, d1, &m, 5000));
    assert_true(d1->reply.body.dealer_reply.ok);
    assert_int_equal(d1->reply.body.dealer_reply.count, 5);
    assert_int_equal(d1->frames_before_reply, 5);
    s_dealer_free(&d1);
}

static void test_ack_beyond_last_is_refused_and_not_passed_on(void **state)
{
    fx_t *f = *state;
    s_dispatch(f, "D1", 3, false);
    char s1[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", s1, sizeof s1), NULL);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_ack);
    CRM_SET_I64(&m, dealer_ack, upto, 4);
    assert_true(s_ask(f, d1, &m, 5000));
    assert_false(d1->reply.body.dealer_reply.ok);
    assert_string_equal(d1->reply.body.dealer_reply.code, "beyond_last");
    assert_int_equal(f->acks, 0);

    crm_msg_init(&m, CRM_T_dealer_ack);
    CRM_SET_I64(&m, dealer_ack, upto, 3);
    assert_true(s_ask(f, d1, &m, 5000));
    assert_true(d1->reply.body.dealer_reply.ok);
    assert_int_equal(f->acks, 1);
    assert_string_equal(f->acked_dealer, "D1");
    assert_int_equal(f->acked_upto, 3);
    s_dealer_free(&d1);
}

/* A dealer.status whose body also carries "dealer_id": "D2" (a field the
   message does not have, so the decoder ignores it). */
static void s_send_status_claiming_d2(dealer_t *d)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
#define S_STR(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
    msgpack_pack_map(&pk, 8);
    S_STR("v"), msgpack_pack_uint32(&pk, 1);
    S_STR("type"), S_STR("dealer.status");
    S_STR("id"), S_STR("status-1");
    S_STR("stream"), S_STR("");
    S_STR("seq"), msgpack_pack_uint64(&pk, 0);
    S_STR("ts"), msgpack_pack_int64(&pk, crm_now_ms());
    S_STR("producer"), S_STR("dealer");
    S_STR("body");
    msgpack_pack_map(&pk, 3);
    S_STR("testdrive_id"), S_STR("TD7");
    S_STR("status"), S_STR("contacted");
    S_STR("dealer_id"), S_STR("D2");
#undef S_STR
    assert_true(zmq_send(zsock_resolve(d->req), buf.data, buf.size, 0) >= 0);
    msgpack_sbuffer_destroy(&buf);
}

static void test_status_reaches_handler_with_the_certified_dealer_not_the_payloads(void **state)
{
    fx_t *f = *state;
    char s1[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", s1, sizeof s1), NULL);
    s_send_status_claiming_d2(d1);
    assert_true(s_pump(f, s_replied, d1, 5000));
    assert_true(d1->reply.body.dealer_reply.ok);
    assert_string_equal(d1->reply.corr, "status-1");
    assert_int_equal(f->statuses, 1);
    assert_string_equal(f->status_dealer, "D1");
    assert_string_equal(f->status_testdrive, "TD7");

    /* Refused by the dispatcher: the dealer hears why. */
    f->refuse_status = true;
    crm_msg_clear(&d1->reply);
    d1->replied = false;
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_status);
    CRM_SET_STR(&m, dealer_status, testdrive_id, "TD8");
    CRM_SET_STR(&m, dealer_status, status, "completed");
    assert_true(s_ask(f, d1, &m, 5000));
    assert_false(d1->reply.body.dealer_reply.ok);
    assert_string_equal(d1->reply.body.dealer_reply.code, "unknown_testdrive");
    assert_non_null(strstr(d1->reply.body.dealer_reply.message, "testdrive_id"));
    s_dealer_free(&d1);
}

static void test_undecodable_request_is_refused_and_kept_in_rejects(void **state)
{
    fx_t *f = *state;
    char s1[300];
    dealer_t *d1 = s_dealer(f, s_secret(f, "D1", s1, sizeof s1), NULL);
    zmq_send(zsock_resolve(d1->req), "\x81\xa1v", 3, 0); /* a map cut short */
    assert_true(s_pump(f, s_replied, d1, 5000));
    assert_false(d1->reply.body.dealer_reply.ok);
    assert_string_equal(d1->reply.body.dealer_reply.code, "malformed");
    assert_int_equal(crm_h_int(f->store, "XLEN crm:rejects"), 1);
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:rejects - +");
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    const redisReply *fields = r->element[0]->element[1];
    bool origin = false, size = false;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (!strcmp(fields->element[i]->str, "origin"))
            origin = !strcmp(fields->element[i + 1]->str, "gateway");
        if (!strcmp(fields->element[i]->str, "size"))
            size = !strcmp(fields->element[i + 1]->str, "3");
    }
    freeReplyObject(r);
    assert_true(origin);
    assert_true(size);
    s_dealer_free(&d1);
}

static void test_server_certificate_is_created_once_and_kept(void **state)
{
    fx_t *f = *state;
    char secret[300];
    snprintf(secret, sizeof secret, "%s_secret", f->server_cert);
    assert_true(zsys_file_exists(f->server_cert));
    assert_true(zsys_file_exists(secret));
    struct stat st;
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    zcert_t *pub = zcert_load(f->server_cert);
    assert_non_null(pub);
    assert_string_equal(zcert_public_txt(pub), gateway_public_key(f->gw));
    zcert_destroy(&pub);
    /* A restart keeps the key dealers were given. */
    char key[41];
    snprintf(key, sizeof key, "%s", gateway_public_key(f->gw));
    gateway_destroy(&f->gw);
    gateway_handlers_t h = {.arg = f};
    f->gw = gateway_new(f->loop, f->gw_store, f->certs, f->server_cert, f->pub, f->router, &h);
    assert_non_null(f->gw);
    assert_string_equal(gateway_public_key(f->gw), key);
}

int main(void)
{
    crm_log_init("dispatcher", "info");
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_dealer_receives_its_own_pushes_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_dealer_offline_for_1000_dispatches_gets_each_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_not_in_directory_gets_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_subscribing_to_another_dealer_or_everything_is_refused_and_logged, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_revoked_certificate_cannot_connect_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_replay_below_retained_range_names_the_first_retained_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_beyond_last_is_refused_and_not_passed_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_status_reaches_handler_with_the_certified_dealer_not_the_payloads, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_request_is_refused_and_kept_in_rejects,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_certificate_is_created_once_and_kept, setup,
                                        teardown),
    };
    /* CRM_TEST_ONLY=name runs one test (cmocka's filter). */
    if (getenv("CRM_TEST_ONLY"))
        cmocka_set_test_filter(getenv("CRM_TEST_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
