/*  The delivery rule, proven: ZeroMQ carries every message, Redis keeps
 *  every message. Each test runs a real redis-server and real services
 *  (crm-testpeer as publisher and subscriber) over real sockets.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <czmq.h>

#include "crm_harness.h"
#include "crm_proto.h"

typedef struct {
    crm_h_redis_t redis;
    crm_store_t *store;
    char pub_ep[64], sub_ep[64], inject_ep[64];
    char env[12][320];
    pid_t pub, sub;
    char pub_log[300], sub_log[300];
} bus_t;

static int setup(void **state)
{
    bus_t *b = calloc(1, sizeof *b);
    if (!b || crm_h_redis_start(&b->redis, false) != 0)
        return -1;
    b->store = crm_h_store(&b->redis);
    snprintf(b->pub_ep, sizeof b->pub_ep, "tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(b->sub_ep, sizeof b->sub_ep, "tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(b->inject_ep, sizeof b->inject_ep, "tcp://127.0.0.1:%d", crm_h_free_port());
    crm_h_path(&b->redis, "pub.log", b->pub_log, sizeof b->pub_log);
    crm_h_path(&b->redis, "sub.log", b->sub_log, sizeof b->sub_log);
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    bus_t *b = *state;
    if (b->pub > 0)
        crm_h_stop(b->pub, SIGTERM, 5000);
    if (b->sub > 0)
        crm_h_stop(b->sub, SIGTERM, 5000);
    crm_store_destroy(&b->store);
    crm_h_redis_stop(&b->redis);
    free(b);
    return 0;
}

/* Starts the publisher (role pub) or the subscriber (role sub) with extra
   environment entries (NULL-terminated). The subscriber listens to the
   publisher and to the test's own injection socket. */
static pid_t start(bus_t *b, const char *role, ...)
{
    bool sub = !strcmp(role, "sub");
    int i = sub ? 6 : 0;
    snprintf(b->env[i + 0], sizeof b->env[0], "CRM_TEST_ROLE=%s", role);
    snprintf(b->env[i + 1], sizeof b->env[0], "CRM_REDIS_URL=%s", b->redis.url);
    snprintf(b->env[i + 2], sizeof b->env[0], "CRM_PUB=%s", sub ? b->sub_ep : b->pub_ep);
    snprintf(b->env[i + 3], sizeof b->env[0], "CRM_PEERS=%s,%s", b->pub_ep, b->inject_ep);
    const char *env[12] = {b->env[i], b->env[i + 1], b->env[i + 2], b->env[i + 3]};
    int n = 4;
    va_list ap;
    va_start(ap, role);
    for (const char *e; n < 11 && (e = va_arg(ap, const char *));)
        env[n++] = e;
    va_end(ap);
    env[n] = NULL;
    pid_t pid = crm_h_spawn("tests/crm-testpeer", NULL, env, sub ? b->sub_log : b->pub_log);
    if (sub)
        b->sub = pid;
    else
        b->pub = pid;
    return pid;
}

/* The user's check: the subscriber applied events 1..n, each once, in order. */
static void assert_applied_exactly(bus_t *b, long long n)
{
    redisReply *r = crm_store_cmd(b->store, "LRANGE crm:test:applied 0 -1");
    assert_non_null(r);
    assert_int_equal(r->elements, n);
    for (size_t i = 0; i < r->elements; i++) {
        if (atoll(r->element[i]->str) != (long long) i + 1)
            fail_msg("applied[%zu] is %s, expected %zu", i, r->element[i]->str, i + 1);
    }
    freeReplyObject(r);
}

static long long stat_of(bus_t *b, const char *name)
{
    return crm_h_int(b->store, "HGET crm:svc:testsub %s", name);
}

static void test_late_subscriber_receives_10000_events_in_order_once(void **state)
{
    bus_t *b = *state;
    start(b, "pub", "CRM_TEST_EMIT=10000", "CRM_TEST_BATCH=100", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 10000, 30000, "GET crm:{audit}:seq"), 10000);
    start(b, "sub", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 10000, 60000, "LLEN crm:test:applied"), 10000);
    usleep(1500 * 1000); /* a heartbeat later: nothing more arrives */
    assert_applied_exactly(b, 10000);
    assert_true(crm_h_alive(b->sub));
}

static void test_events_whose_send_is_suppressed_are_applied_from_redis(void **state)
{
    bus_t *b = *state;
    start(b, "sub", NULL);
    usleep(300 * 1000);
    start(b, "pub", "CRM_TEST_EMIT=500", "CRM_TEST_DROP_SEND=all", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 500, 15000, "LLEN crm:test:applied"), 500);
    assert_applied_exactly(b, 500);
    assert_true(crm_h_file_contains(b->pub_log, "service.started"));
    assert_int_equal(crm_h_int(b->store, "HGET crm:svc:testpub published"), 0);
}

static void test_every_third_send_lost_is_filled_from_redis_as_a_gap(void **state)
{
    bus_t *b = *state;
    start(b, "sub", NULL);
    usleep(300 * 1000);
    start(b, "pub", "CRM_TEST_EMIT=300", "CRM_TEST_DROP_SEND=3", "CRM_TEST_RATE=300", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 300, 15000, "LLEN crm:test:applied"), 300);
    assert_applied_exactly(b, 300);
    usleep(1200 * 1000);
    assert_true(stat_of(b, "gaps") > 0);
}

static void test_replayed_duplicates_are_applied_once(void **state)
{
    bus_t *b = *state;
    zsock_t *inject = zsock_new_pub(b->inject_ep);
    assert_non_null(inject);
    start(b, "sub", NULL);
    start(b, "pub", "CRM_TEST_EMIT=100", "CRM_TEST_BATCH=10", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 100, 15000, "LLEN crm:test:applied"), 100);
    /* Replay the whole stream, twice, straight from Redis. */
    redisReply *r = crm_store_cmd(b->store, "XRANGE crm:{audit}:events - +");
    assert_non_null(r);
    assert_int_equal(r->elements, 100);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *frame = r->element[i]->element[1]->element[1];
            zsock_send(inject, "sb", "audit:", frame->str, frame->len);
        }
    freeReplyObject(r);
    /* The subscriber reports what it dropped in its status every second. */
    long long dups = 0;
    for (int i = 0; i < 200 && dups < 200; i++) {
        usleep(25 * 1000);
        dups = stat_of(b, "duplicates");
    }
    assert_true(dups >= 200);
    assert_applied_exactly(b, 100);
    zsock_destroy(&inject);
}

static void test_subscriber_killed_mid_stream_resumes_without_loss_or_double_effect(void **state)
{
    bus_t *b = *state;
    start(b, "sub", NULL);
    start(b, "pub", "CRM_TEST_EMIT=20000", "CRM_TEST_RATE=5000", NULL);
    long long seen = crm_h_wait_int(b->store, 3000, 20000, "LLEN crm:test:applied");
    assert_true(seen >= 3000);
    int status = crm_h_stop(b->sub, SIGKILL, 5000);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    long long at_kill = crm_h_int(b->store, "LLEN crm:test:applied");
    assert_true(at_kill < 20000); /* killed in the middle of the stream */
    usleep(500 * 1000);
    start(b, "sub", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 20000, 60000, "LLEN crm:test:applied"), 20000);
    usleep(1200 * 1000);
    assert_applied_exactly(b, 20000);
}

static void test_publisher_killed_between_exec_and_send_loses_nothing(void **state)
{
    bus_t *b = *state;
    start(b, "sub", NULL);
    usleep(300 * 1000);
    /* Dies after its 5th commit, before sending it: 50 events in Redis,
       the last 10 never on the wire, and no heartbeat ever again. */
    start(b, "pub", "CRM_TEST_EMIT=1000", "CRM_TEST_BATCH=10", "CRM_TEST_DIE_AFTER_EXEC=5", NULL);
    int status = 0;
    for (int i = 0; i < 500; i++) {
        if (waitpid(b->pub, &status, WNOHANG) == b->pub)
            break;
        usleep(10 * 1000);
    }
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    b->pub = 0;
    long long committed = crm_h_int(b->store, "GET crm:{audit}:seq");
    assert_int_equal(committed, 50); /* 5 commits of 10: all of them kept */
    assert_int_equal(crm_h_wait_int(b->store, committed, 15000, "LLEN crm:test:applied"), committed);
    assert_applied_exactly(b, committed);
}

static void test_bad_frames_are_refused_with_a_reason_and_the_service_keeps_running(void **state)
{
    bus_t *b = *state;
    zsock_t *inject = zsock_new_pub(b->inject_ep);
    assert_non_null(inject);
    start(b, "sub", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 1, 10000, "EXISTS crm:svc:testsub"), 1);
    usleep(500 * 1000); /* the subscription reaches our socket */

    /* A valid frame to cut and corrupt. */
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_audit_finding);
    snprintf(m.id, sizeof m.id, "bad-1");
    snprintf(m.producer, sizeof m.producer, "test");
    m.seq = 1;
    m.ts = 1;
    CRM_SET_STR(&m, audit_finding, customer_id, "1");
    CRM_SET_STR(&m, audit_finding, field, "f");
    CRM_SET_STR(&m, audit_finding, code, "c");
    CRM_SET_STR(&m, audit_finding, severity, "warning");
    msgpack_sbuffer good;
    msgpack_sbuffer_init(&good);
    assert_int_equal(crm_msg_encode(&m, &good, NULL), 0);
    crm_msg_clear(&m);

    zsock_send(inject, "ss", "audit:", "this is not msgpack");          /* garbage */
    zsock_send(inject, "sb", "audit:", good.data, good.size / 2);        /* truncated */
    size_t big = CRM_FRAME_MAX + 1;
    char *huge = calloc(1, big);
    zsock_send(inject, "sb", "audit:", huge, big);                       /* oversized */
    free(huge);
    /* wrong type: seq as a string */
    msgpack_sbuffer wrong;
    msgpack_sbuffer_init(&wrong);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &wrong, msgpack_sbuffer_write);
    const char *keys[] = {"v", "type", "id", "stream", "seq", "ts", "producer", "body"};
    msgpack_pack_map(&pk, 8);
    for (int i = 0; i < 8; i++) {
        msgpack_pack_str(&pk, strlen(keys[i]));
        msgpack_pack_str_body(&pk, keys[i], strlen(keys[i]));
        switch (i) {
        case 0: msgpack_pack_uint8(&pk, 1); break;
        case 1: msgpack_pack_str(&pk, 13); msgpack_pack_str_body(&pk, "audit.finding", 13); break;
        case 4: msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "one", 3); break;
        case 5: msgpack_pack_int64(&pk, 1); break;
        case 7: msgpack_pack_map(&pk, 0); break;
        default: msgpack_pack_str(&pk, 1); msgpack_pack_str_body(&pk, "x", 1); break;
        }
    }
    zsock_send(inject, "sb", "audit:", wrong.data, wrong.size);
    zsock_send(inject, "sbs", "audit:", good.data, good.size, "extra frame"); /* 3 frames */
    msgpack_sbuffer_destroy(&wrong);
    msgpack_sbuffer_destroy(&good);

    assert_int_equal(crm_h_wait_int(b->store, 5, 10000, "XLEN crm:rejects"), 5);
    assert_true(crm_h_file_contains(b->sub_log, "field=seq code=type"));
    assert_true(crm_h_file_contains(b->sub_log, "field=frame code=size"));
    assert_true(crm_h_file_contains(b->sub_log, "field=frames"));
    assert_true(crm_h_file_contains(b->sub_log, "code=malformed"));
    assert_true(crm_h_alive(b->sub));

    /* ... and it still applies good events. */
    start(b, "pub", "CRM_TEST_EMIT=3", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 3, 10000, "LLEN crm:test:applied"), 3);
    assert_applied_exactly(b, 3);
    zsock_destroy(&inject);
}

static void test_sigterm_stops_a_service_cleanly_with_exit_0(void **state)
{
    bus_t *b = *state;
    start(b, "sub", NULL);
    assert_int_equal(crm_h_wait_int(b->store, 1, 10000, "EXISTS crm:svc:testsub"), 1);
    int status = crm_h_stop(b->sub, SIGTERM, 5000);
    b->sub = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(crm_h_file_contains(b->sub_log, "event=service.stopped"));
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_late_subscriber_receives_10000_events_in_order_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_whose_send_is_suppressed_are_applied_from_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_third_send_lost_is_filled_from_redis_as_a_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_duplicates_are_applied_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscriber_killed_mid_stream_resumes_without_loss_or_double_effect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publisher_killed_between_exec_and_send_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frames_are_refused_with_a_reason_and_the_service_keeps_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_stops_a_service_cleanly_with_exit_0, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
