/*  The Redis store against a real redis-server: transactions that commit
 *  state and events together, contiguous stream numbers, durable timers
 *  that fire once, timeouts and reconnects.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

typedef struct {
    crm_h_redis_t redis;
    crm_store_t *store;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_redis_start(&f->redis, false) != 0)
        return -1;
    f->store = crm_h_store(&f->redis);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    crm_store_destroy(&f->store);
    crm_h_redis_stop(&f->redis);
    free(f);
    return 0;
}

static void make_lead(crm_msg_t *m, const char *lead)
{
    crm_msg_init(m, CRM_T_lead_created);
    CRM_SET_STR(m, lead_created, lead_id, lead);
    CRM_SET_STR(m, lead_created, customer_id, "c1");
    CRM_SET_STR(m, lead_created, channel, "website");
}

static void make_customer(crm_msg_t *m, const char *cid)
{
    crm_msg_init(m, CRM_T_customer_updated);
    CRM_SET_STR(m, customer_updated, customer_id, cid);
    crm_strs_push(&m->body.customer_updated.fields, "name");
    m->body.customer_updated.has.fields = true;
}

static void test_commit_numbers_events_contiguously_and_the_entry_id_is_the_number(void **state)
{
    fx_t *f = *state;
    crm_tx_t *tx = crm_tx_new("test", 100000);
    crm_tx_cmd(tx, "SET crm:test:state %s", "applied");
    for (int i = 0; i < 3; i++) {
        crm_msg_t m;
        char id[8];
        snprintf(id, sizeof id, "L%d", i + 1);
        make_lead(&m, id);
        assert_true(crm_tx_emit(tx, &m) >= 0);
        crm_msg_clear(&m);
    }
    assert_int_equal(crm_store_commit(f->store, tx), 0);
    assert_int_equal(crm_tx_emit_count(tx), 3);
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:{lead}:events - +");
    assert_non_null(r);
    assert_int_equal(r->elements, 3);
    for (size_t i = 0; i < 3; i++) {
        const crm_emit_t *e = crm_tx_emit_at(tx, i);
        assert_int_equal(e->seq, i + 1);
        char want[16];
        snprintf(want, sizeof want, "%zu-0", i + 1);
        assert_string_equal(r->element[i]->element[0]->str, want);
        const redisReply *stored = r->element[i]->element[1]->element[1];
        /* Redis keeps exactly the bytes ZeroMQ carries. */
        assert_int_equal(stored->len, e->len);
        assert_memory_equal(stored->str, e->frame, e->len);
        crm_msg_t m;
        crm_err_t err;
        assert_int_equal(crm_msg_decode(stored->str, stored->len, &m, &err), 0);
        assert_int_equal(m.seq, i + 1);
        assert_string_equal(m.stream, "lead");
        assert_string_equal(m.producer, "test");
        crm_msg_clear(&m);
    }
    freeReplyObject(r);
    assert_int_equal(crm_h_int(f->store, "GET crm:{lead}:seq"), 3);
    crm_tx_destroy(&tx);
}

/* The stored entry of emit `e` is its frame, byte for byte, and decodes with
   number `want` (and, for a lead or a customer event, the id `id`). */
static void s_stored_as_carried(fx_t *f, const crm_emit_t *e, uint64_t want, const char *id)
{
    assert_int_equal(e->seq, want);
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:{%s}:events %llu-0 %llu-0", e->stream,
                                  (unsigned long long) want, (unsigned long long) want);
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    const redisReply *stored = r->element[0]->element[1]->element[1];
    assert_int_equal(stored->len, e->len);
    assert_memory_equal(stored->str, e->frame, e->len);
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(crm_msg_decode(stored->str, stored->len, &m, &err), 0);
    assert_int_equal(m.seq, want);
    if (m.type == CRM_T_lead_created)
        assert_string_equal(m.body.lead_created.lead_id, id);
    else if (m.type == CRM_T_customer_updated)
        assert_string_equal(m.body.customer_updated.customer_id, id);
    crm_msg_clear(&m);
    freeReplyObject(r);
}

/* Events of several streams in one transaction: each stream numbered from
   its own counter in the order of emit, the bytes kept the bytes carried
   (a number beyond 32 bits too), and one append for the whole commit (Redis
   hashes and sets up a script per EVAL). */
static void test_events_of_several_streams_in_one_commit_are_numbered_per_stream(void **state)
{
    fx_t *f = *state;
    redisReply *r = crm_store_cmd(f->store, "SET crm:{customer}:seq 4294967337"); /* 2^32 + 41 */
    freeReplyObject(r);
    r = crm_store_cmd(f->store, "CONFIG RESETSTAT");
    freeReplyObject(r);
    for (int round = 0; round < 2; round++) {
        crm_tx_t *tx = crm_tx_new("test", 100000);
        for (int i = 0; i < 5; i++) {
            crm_msg_t m;
            char id[16];
            snprintf(id, sizeof id, "X%d", round * 5 + i);
            if (i % 2 == 0)
                make_lead(&m, id);
            else
                make_customer(&m, id);
            assert_true(crm_tx_emit(tx, &m) >= 0);
            crm_msg_clear(&m);
        }
        assert_int_equal(crm_store_commit(f->store, tx), 0);
        /* leads 1-3 then 4-6; customers 2^32 + 42-43 then 2^32 + 44-45 */
        uint64_t lead = 1 + 3 * (uint64_t) round, cust = (UINT64_C(1) << 32) + 42 + 2 * (uint64_t) round;
        for (size_t i = 0; i < 5; i++) {
            char id[16];
            snprintf(id, sizeof id, "X%d", round * 5 + (int) i);
            s_stored_as_carried(f, crm_tx_emit_at(tx, i), i % 2 == 0 ? lead++ : cust++, id);
        }
        crm_tx_destroy(&tx);
    }
    assert_int_equal(crm_h_int(f->store, "GET crm:{lead}:seq"), 6);
    assert_int_equal(crm_h_int(f->store, "GET crm:{customer}:seq"), (UINT64_C(1) << 32) + 45);
    r = crm_store_cmd(f->store, "INFO commandstats");
    assert_non_null(r);
    const char *eval = strstr(r->str, "cmdstat_eval:calls=");
    assert_non_null(eval);
    assert_int_equal(atoi(eval + strlen("cmdstat_eval:calls=")), 2); /* one a commit */
    freeReplyObject(r);
}

/* A writer sends its frames with the numbers its last commit left next;
   when another writer appended in between, Redis gives the frames their
   real numbers: what is kept is what is carried, with the right number,
   either way, and the next commit after that is numbered on from it. In
   one commit, a stream another writer touched and one it did not each get
   theirs. */
static void test_a_commit_after_another_writer_gets_the_numbers_the_stream_gives(void **state)
{
    fx_t *f = *state;
    const uint64_t lead[] = {1, 2, 13, 14, 15}, cust[] = {1, 2, 3, 4, 25};
    for (size_t i = 0; i < sizeof lead / sizeof lead[0]; i++) {
        /* another writer takes leads 3-12 before the third commit, customers 5-24 before the fifth */
        const char *bump = i == 2 ? "lead" : i == 4 ? "customer" : NULL;
        if (bump) {
            redisReply *r = crm_store_cmd(f->store, "INCRBY crm:{%s}:seq %d", bump, i == 2 ? 10 : 20);
            freeReplyObject(r);
        }
        crm_tx_t *tx = crm_tx_new("test", 100000);
        crm_msg_t m;
        char id[16];
        snprintf(id, sizeof id, "L%zu", i);
        make_lead(&m, id);
        assert_true(crm_tx_emit(tx, &m) >= 0);
        crm_msg_clear(&m);
        make_customer(&m, id);
        assert_true(crm_tx_emit(tx, &m) >= 0);
        crm_msg_clear(&m);
        assert_int_equal(crm_store_commit(f->store, tx), 0);
        s_stored_as_carried(f, crm_tx_emit_at(tx, 0), lead[i], id);
        s_stored_as_carried(f, crm_tx_emit_at(tx, 1), cust[i], id);
        crm_tx_destroy(&tx);
    }
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), 5);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{customer}:events"), 5);
}

/* Each stream keeps about its last maxlen events (whole nodes of 100 go at
   once), the newest always. */
static void test_a_stream_is_trimmed_to_about_its_maxlen(void **state)
{
    fx_t *f = *state;
    for (int round = 0; round < 20; round++) {
        crm_tx_t *tx = crm_tx_new("test", 150);
        for (int i = 0; i < 50; i++) {
            crm_msg_t m;
            make_lead(&m, "L1");
            assert_true(crm_tx_emit(tx, &m) >= 0);
            crm_msg_clear(&m);
            make_customer(&m, "C1");
            assert_true(crm_tx_emit(tx, &m) >= 0);
            crm_msg_clear(&m);
        }
        assert_int_equal(crm_store_commit(f->store, tx), 0);
        crm_tx_destroy(&tx);
    }
    for (int k = 0; k < 2; k++) { /* every stream of the commits, not only the last */
        const char *stream = k ? "customer" : "lead";
        long long len = crm_h_int(f->store, "XLEN crm:{%s}:events", stream);
        assert_true(len >= 150 && len <= 250);
        redisReply *r = crm_store_cmd(f->store, "XREVRANGE crm:{%s}:events + - COUNT 1", stream);
        assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
        assert_string_equal(r->element[0]->element[0]->str, "1000-0");
        freeReplyObject(r);
    }
}

static void test_a_failed_transaction_leaves_neither_state_nor_event(void **state)
{
    fx_t *f = *state;
    crm_tx_t *tx = crm_tx_new("test", 100000);
    crm_tx_cmd(tx, "SET crm:test:state %s", "applied");
    crm_msg_t m;
    make_lead(&m, "L1");
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
    crm_tx_cmd(tx, "NOSUCHCOMMAND x"); /* refused when queued: EXEC aborts all */
    assert_int_equal(crm_store_commit(f->store, tx), -1);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:test:state"), 0);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:{lead}:events"), 0);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:{lead}:seq"), 0);
    crm_tx_destroy(&tx);
}

static void schedule(crm_store_t *s, const char *id, int64_t due)
{
    crm_tx_t *tx = crm_tx_new("test", 100000);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_followup_due);
    CRM_SET_STR(&m, followup_due, task_id, id);
    CRM_SET_STR(&m, followup_due, customer_id, "c1");
    CRM_SET_STR(&m, followup_due, consultant_id, "s1");
    CRM_SET_I64(&m, followup_due, due_at, due);
    assert_true(crm_tx_timer(tx, "t", id, due, &m) >= 0);
    crm_msg_clear(&m);
    assert_int_equal(crm_store_commit(s, tx), 0);
    crm_tx_destroy(&tx);
}

static void test_due_timers_fire_once_even_with_two_claimers(void **state)
{
    fx_t *f = *state;
    crm_store_t *other = crm_h_store(&f->redis);
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "task-%d", i);
        schedule(f->store, id, 1000 + i);
    }
    char seen[100] = {0};
    int fired = 0;
    for (int round = 0; round < 2; round++) {
        int64_t now = round == 0 ? 1050 : 5000;
        int n;
        do {
            crm_tx_t *out = crm_tx_new("test", 100000);
            n = crm_store_claim_timers(fired % 2 ? other : f->store, "t", now, 7, 100000, out);
            assert_true(n >= 0);
            for (int k = 0; k < n; k++) {
                const crm_emit_t *e = crm_tx_emit_at(out, (size_t) k);
                crm_msg_t m;
                crm_err_t err;
                assert_int_equal(crm_msg_decode(e->frame, e->len, &m, &err), 0);
                assert_int_equal(m.seq, e->seq);
                int idx = atoi(m.body.followup_due.task_id + 5);
                assert_true(m.body.followup_due.due_at <= now);
                assert_int_equal(seen[idx], 0);
                seen[idx] = 1;
                crm_msg_clear(&m);
            }
            fired += n;
            crm_tx_destroy(&out);
        } while (n > 0);
        assert_int_equal(fired, round == 0 ? 51 : 100);
    }
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{followup}:events"), 100);
    assert_int_equal(crm_h_int(f->store, "ZCARD crm:timers:t"), 0);
    assert_int_equal(crm_h_int(f->store, "HLEN crm:timers:t:frame"), 0);
    crm_store_destroy(&other);
}

static void test_a_rescheduled_timer_fires_once_at_its_new_time(void **state)
{
    fx_t *f = *state;
    schedule(f->store, "x", 1000);
    schedule(f->store, "x", 3000);
    crm_tx_t *out = crm_tx_new("test", 100000);
    assert_int_equal(crm_store_claim_timers(f->store, "t", 2000, 10, 100000, out), 0);
    assert_int_equal(crm_store_claim_timers(f->store, "t", 3000, 10, 100000, out), 1);
    assert_int_equal(crm_store_claim_timers(f->store, "t", 9000, 10, 100000, out), 0);
    crm_tx_destroy(&out);
}

static void test_a_cancelled_timer_never_fires(void **state)
{
    fx_t *f = *state;
    schedule(f->store, "x", 1000);
    crm_tx_t *tx = crm_tx_new("test", 100000);
    crm_tx_timer_cancel(tx, "t", "x");
    assert_int_equal(crm_store_commit(f->store, tx), 0);
    crm_tx_reset(tx);
    assert_int_equal(crm_store_claim_timers(f->store, "t", 9000, 10, 100000, tx), 0);
    crm_tx_destroy(&tx);
}

static void test_store_reconnects_after_redis_restarts(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_int(f->store, "INCR crm:test:n"), 1);
    crm_h_stop(f->redis.pid, SIGKILL, 5000);
    int64_t t0 = crm_mono_ms();
    redisReply *r = crm_store_cmd(f->store, "PING");
    assert_null(r); /* fails at once, no hang */
    assert_true(crm_mono_ms() - t0 < 3000);
    /* Same port again. */
    int port = f->redis.port;
    char dir[256];
    snprintf(dir, sizeof dir, "%s", f->redis.dir);
    pid_t parent = getpid();
    f->redis.pid = fork();
    if (f->redis.pid == 0) {
        crm_h_die_with_parent(parent);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--dir", dir,
               "--save", "", "--logfile", "/dev/null", (char *) NULL);
        _exit(127);
    }
    bool back = false;
    for (int i = 0; i < 300 && !back; i++) {
        usleep(20 * 1000);
        r = crm_store_cmd(f->store, "PING");
        back = r != NULL;
        freeReplyObject(r);
    }
    assert_true(back);
    assert_true(crm_store_connected(f->store));
    /* The function library is loaded again on reconnect. */
    crm_tx_t *tx = crm_tx_new("test", 100000);
    crm_msg_t m;
    make_lead(&m, "L1");
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
    assert_int_equal(crm_store_commit(f->store, tx), 0);
    crm_tx_destroy(&tx);
}

static void test_a_redis_that_does_not_answer_times_out(void **state)
{
    (void) state;
    /* A listener that accepts and never answers. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *) &a, &len);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", ntohs(a.sin_port));
    int64_t t0 = crm_mono_ms();
    crm_store_t *s = crm_store_new(url, 300);
    int64_t took = crm_mono_ms() - t0;
    assert_null(s);
    assert_true(took >= 250 && took < 2000);
    close(fd);
}

static void test_bad_urls_are_refused(void **state)
{
    (void) state;
    assert_null(crm_store_new("http://localhost:6379", 100));
    assert_null(crm_store_new("redis://:6379", 100));
    assert_null(crm_store_new("redis://host:notaport", 100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_numbers_events_contiguously_and_the_entry_id_is_the_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_of_several_streams_in_one_commit_are_numbered_per_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_after_another_writer_gets_the_numbers_the_stream_gives, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_is_trimmed_to_about_its_maxlen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_transaction_leaves_neither_state_nor_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_timers_fire_once_even_with_two_claimers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_rescheduled_timer_fires_once_at_its_new_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_cancelled_timer_never_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_reconnects_after_redis_restarts, setup, teardown),
        cmocka_unit_test(test_a_redis_that_does_not_answer_times_out),
        cmocka_unit_test(test_bad_urls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
