/*  A dealer's story, end to end: crm-dispatcher with its gateway, crmctl
 *  making the dealer's certificate, crm-dealer receiving, acknowledging and
 *  reporting. Real redis-server, real CURVE sockets. The clock is
 *  2026-11-20 10:00 China time; test drives two days away go at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define NOW 1795140000000LL
#define AT_NOV22 1795330800000LL /* 2026-11-22 15:00 CST */

typedef struct {
    crm_h_sys_t sys;
    crm_store_t *store;
    char out[300], dealer_out[300], state[300], secret[300];
    char *server;
    char ep_router[64], ep_pub[64];
    pid_t dealer; /* the last crm-dealer started: stopped by teardown, also after a failure */
} fx_t;

static int run(fx_t *f, const char *bin, const char *out, ...)
{
    const char *args[32];
    int n = 0;
    va_list ap;
    va_start(ap, out);
    for (const char *a; n < 30 && (a = va_arg(ap, const char *));)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return crm_h_run(bin, args, f->sys.envp, out);
}

static void start_dispatcher(fx_t *f) { crm_h_sys_spawn(&f->sys, "dispatcher", NULL); }

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, true) != 0)
        return -1;
    f->store = f->sys.store;
    crm_h_sys_set_clock(&f->sys, NOW);
    crm_h_path(&f->sys.redis, "out.txt", f->out, sizeof f->out);
    crm_h_path(&f->sys.redis, "dealer.jsonl", f->dealer_out, sizeof f->dealer_out);
    crm_h_path(&f->sys.redis, "dealer.state", f->state, sizeof f->state);
    crm_h_path(&f->sys.redis, "D1.secret", f->secret, sizeof f->secret);
    f->server = f->sys.server_cert;
    snprintf(f->ep_pub, sizeof f->ep_pub, "tcp://127.0.0.1:%d", f->sys.gw_pub);
    snprintf(f->ep_router, sizeof f->ep_router, "tcp://127.0.0.1:%d", f->sys.gw_router);
    start_dispatcher(f);
    if (run(f, "crmctl", f->out, "dealer", "add", "D1", "--name", "深圳一店", "--region", "华南", "--province",
            "广东", "--city", "深圳", "--capacity", "0", NULL) != 0 ||
        run(f, "crmctl", f->out, "dealer", "cert", "D1", "--out", f->secret, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (f->dealer > 0 && crm_h_alive(f->dealer))
        crm_h_stop(f->dealer, SIGKILL, 2000);
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

/* `n` test drives two days away, chosen dealer D1, `per_tx` per transaction. */
static void request_many(fx_t *f, int first, int n, int per_tx)
{
    crm_h_sys_testdrives(&f->sys, "D1", first, n, per_tx, AT_NOV22);
}

/* The dealer's output: every line a dispatch; checks 1..n in order, once. */
static void assert_dealer_got_exactly(fx_t *f, int n)
{
    FILE *in = fopen(f->dealer_out, "r");
    assert_non_null(in);
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, in)) {
        if (!strstr(line, "\"type\":\"dealer.dispatch\""))
            continue;
        count++;
        char want[32];
        snprintf(want, sizeof want, "\"seq\":%d,", count);
        if (!strstr(line, want))
            fail_msg("dispatch %d is out of order: %.120s", count, line);
    }
    fclose(in);
    assert_int_equal(count, n);
}

static pid_t start_dealer(fx_t *f, bool once)
{
    const char *args[] = {"--dealer", "D1", "--cert", f->secret, "--server-cert", f->server, "--state", f->state,
                          "--endpoint", f->ep_router, "--pub", f->ep_pub, "--poll-ms", "500", once ? "--once" : NULL,
                          NULL};
    const char *env[] = {"CRM_LOG_LEVEL=warn", NULL};
    /* stdout (the JSON lines) and stderr go to the same file; lines are told apart */
    return f->dealer = crm_h_spawn("crm-dealer", args, env, f->dealer_out);
}

static void test_a_dealer_offline_while_1000_are_dispatched_gets_them_once_in_order(void **state)
{
    fx_t *f = *state;
    request_many(f, 1, 1000, 100);
    assert_int_equal(crm_h_wait_int(f->store, 1000, 30000, "GET crm:{dealer.D1}:seq"), 1000);
    assert_int_equal(crm_h_int(f->store, "ZCARD crm:due:dispatch"), 1000); /* an escalation each */
    pid_t d = start_dealer(f, true);
    int status;
    waitpid(d, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_dealer_got_exactly(f, 1000);
    /* acknowledged: the dispatcher knows, and stops the escalation timers */
    assert_int_equal(crm_h_wait_int(f->store, 1000, 10000, "HGET crm:dealer:D1 acked"), 1000);
    assert_int_equal(crm_h_wait_int(f->store, 0, 1, "ZCARD crm:due:dispatch"), 0);
    /* back again: nothing new */
    d = start_dealer(f, true);
    waitpid(d, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_dealer_got_exactly(f, 0);
}

static void test_the_dispatcher_killed_mid_stream_loses_nothing_and_doubles_nothing(void **state)
{
    fx_t *f = *state;
    pid_t d = start_dealer(f, false);
    usleep(500 * 1000);
    request_many(f, 1, 2000, 20);
    long long seen = crm_h_wait_int(f->store, 300, 30000, "GET crm:{dealer.D1}:seq");
    assert_true(seen >= 300);
    int status = crm_h_sys_kill(&f->sys, "dispatcher", SIGKILL);
    assert_true(WIFSIGNALED(status));
    assert_true(crm_h_int(f->store, "GET crm:{dealer.D1}:seq") < 2000); /* in the middle */
    start_dispatcher(f);
    assert_int_equal(crm_h_wait_int(f->store, 2000, 60000, "GET crm:{dealer.D1}:seq"), 2000);
    assert_int_equal(crm_h_wait_int(f->store, 2000, 30000, "HGET crm:dealer:D1 acked"), 2000);
    crm_h_stop(d, SIGTERM, 5000);
    assert_dealer_got_exactly(f, 2000);
    /* and every test drive went out once: 2000 on the dealer's stream, each
       open, the map of acknowledged numbers emptied */
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{dealer.D1}:events"), 2000);
    assert_int_equal(crm_h_int(f->store, "SCARD crm:dealer:D1:open"), 2000);
    assert_int_equal(crm_h_int(f->store, "HLEN crm:dealer:D1:seq2td"), 0);
}

/* The number in the state file (-1: none), and the file's inode. */
static long long state_of(fx_t *f, ino_t *ino)
{
    struct stat st;
    long long v = -1;
    FILE *in = fopen(f->state, "r");
    if (in && fstat(fileno(in), &st) == 0 && fscanf(in, "%lld", &v) == 1 && ino)
        *ino = st.st_ino;
    if (in)
        fclose(in);
    return v;
}

static void test_the_state_file_is_rewritten_in_place_and_always_reads_as_a_number(void **state)
{
    fx_t *f = *state;
    /* as crm_dealer.py (or an operator) leaves it: the number alone */
    FILE *out = fopen(f->state, "w");
    assert_non_null(out);
    fputs("0\n", out);
    assert_int_equal(fclose(out), 0);
    pid_t d = start_dealer(f, false);
    usleep(500 * 1000);
    request_many(f, 1, 1, 1);
    int64_t deadline = crm_mono_ms() + 30000;
    ino_t first = 0, later = 0;
    long long v;
    while ((v = state_of(f, &first)) < 1 && crm_mono_ms() < deadline)
        usleep(1000);
    assert_int_equal(v, 1); /* its first write of the run: the file made whole */
    /* then 299 more while it is read: every read finds a whole number that
       never goes back, in the same file */
    request_many(f, 2, 299, 20);
    long long last = v;
    while (last < 300 && crm_mono_ms() < deadline) {
        v = state_of(f, &later);
        if (v < last)
            fail_msg("state file read %lld after %lld", v, last);
        if (later != first)
            fail_msg("the state file was replaced (inode %llu, then %llu)", (unsigned long long) first,
                     (unsigned long long) later);
        last = v;
        usleep(200);
    }
    assert_int_equal(last, 300);
    assert_int_equal(crm_h_stop(d, SIGTERM, 5000), 0);
    assert_dealer_got_exactly(f, 300);
    /* 300, padded to 20 and a line end: the next run (and crm_dealer.py) reads it */
    char *kept = crm_h_slurp(f->state);
    assert_non_null(kept);
    assert_string_equal(kept, "300                 \n");
    free(kept);
    d = start_dealer(f, true);
    int status;
    waitpid(d, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(state_of(f, NULL), 300);
}

static void test_dealer_status_reports_become_events_and_are_checked(void **state)
{
    fx_t *f = *state;
    request_many(f, 1, 1, 1);
    assert_int_equal(crm_h_wait_int(f->store, 1, 10000, "GET crm:{dealer.D1}:seq"), 1);
    const char *base[] = {"--dealer", "D1", "--cert", f->secret, "--server-cert", f->server, "--endpoint",
                          f->ep_router, "--pub", f->ep_pub};
    (void) base;
#define DEALER(...)                                                                                 \
    run(f, "crm-dealer", f->out, "--dealer", "D1", "--cert", f->secret, "--server-cert", f->server, \
        "--endpoint", f->ep_router, "--pub", f->ep_pub, __VA_ARGS__, NULL)
    assert_int_equal(DEALER("status", "T1", "contacted"), 0);
    assert_int_equal(DEALER("status", "T1", "contacted"), 0); /* a retry: accepted, nothing new */
    assert_int_equal(DEALER("status", "T1", "confirmed"), 1);
    assert_true(crm_h_file_contains(f->out, "at: confirmed needs the agreed date and time"));
    assert_int_equal(DEALER("status", "T1", "confirmed", "--at", "2026-11-22 16:00"), 0);
    assert_int_equal(DEALER("status", "T999", "contacted"), 1);
    assert_true(crm_h_file_contains(f->out, "unknown_testdrive"));
    assert_int_equal(DEALER("status", "T1", "completed"), 0);
    assert_int_equal(DEALER("status", "T1", "cancelled"), 1);
    assert_true(crm_h_file_contains(f->out, "already completed"));
#undef DEALER
    assert_int_equal(run(f, "crmctl", f->out, "testdrive", "show", "T1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "status completed"));
    assert_true(crm_h_file_contains(f->out, "confirmed   by D1"));
    assert_true(crm_h_file_contains(f->out, "2026-11-22 16:00 CST"));
    assert_int_equal(crm_h_int(f->store, "SCARD crm:dealer:D1:open"), 0);
    assert_int_equal(run(f, "crmctl", f->out, "events", "testdrive", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"status\":\"completed\""));
    FILE *in = fopen(f->out, "r");
    char line[4096];
    int contacted = 0;
    while (in && fgets(line, sizeof line, in))
        contacted += strstr(line, "\"status\":\"contacted\"") != NULL;
    if (in)
        fclose(in);
    assert_int_equal(contacted, 1);
}

static void test_a_revoked_dealer_gets_nothing_more(void **state)
{
    fx_t *f = *state;
    assert_int_equal(run(f, "crmctl", f->out, "dealer", "revoke", "D1", NULL), 0);
    request_many(f, 1, 3, 3);
    assert_int_equal(crm_h_wait_int(f->store, 3, 10000, "GET crm:{dealer.D1}:seq"), 3);
    /* its handshake is refused: no answer, nothing received */
    const char *args[] = {"--dealer", "D1", "--cert", f->secret, "--server-cert", f->server, "--state", f->state,
                          "--endpoint", f->ep_router, "--pub", f->ep_pub, "--once", "--tries", "1",
                          "--timeout-ms", "1500", NULL};
    pid_t d = crm_h_spawn("crm-dealer", args, NULL, f->dealer_out);
    int status = crm_h_stop(d, 0, 15000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    assert_dealer_got_exactly(f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_dealer_offline_while_1000_are_dispatched_gets_them_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_dispatcher_killed_mid_stream_loses_nothing_and_doubles_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_state_file_is_rewritten_in_place_and_always_reads_as_a_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dealer_status_reports_become_events_and_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_revoked_dealer_gets_nothing_more, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
