/*  The five services and crmctl as ops meet them: --help and --version,
 *  a clear message when Redis is not there, all five up in `crmctl status`,
 *  a clean exit 0 on SIGTERM, and the event log readable with crmctl.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_h_bench.h"
#include "crm_harness.h"

static const char *s_services[] = {"intake", "dispatcher", "scheduler", "auditor", "notifier"};

typedef struct {
    crm_h_sys_t sys;
    crm_store_t *store;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, true, false) != 0)
        return -1;
    f->store = f->sys.store;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

static void test_every_binary_answers_help_and_version(void **state)
{
    fx_t *f = *state;
    char log[300], bin[64];
    crm_h_path(&f->sys.redis, "out.txt", log, sizeof log);
    for (int i = 0; i < 6; i++) {
        if (i < 5)
            snprintf(bin, sizeof bin, "crm-%s", s_services[i]);
        else
            snprintf(bin, sizeof bin, "crmctl");
        const char *help[] = {"--help", NULL};
        assert_int_equal(crm_h_run(bin, help, NULL, log), 0);
        assert_true(crm_h_file_contains(log, "--redis-url"));
        assert_true(crm_h_file_contains(log, "CRM_REDIS_URL"));
        const char *version[] = {"--version", NULL};
        assert_int_equal(crm_h_run(bin, version, NULL, log), 0);
        assert_true(crm_h_file_contains(log, " 0."));
        const char *bad[] = {"--no-such-flag", NULL};
        assert_int_equal(crm_h_run(bin, bad, NULL, log), 2);
        assert_true(crm_h_file_contains(log, "unknown option --no-such-flag"));
    }
}

static void test_a_service_without_redis_exits_1_with_a_clear_message(void **state)
{
    fx_t *f = *state;
    char log[300], url[64];
    crm_h_path(&f->sys.redis, "out.txt", log, sizeof log);
    snprintf(url, sizeof url, "CRM_REDIS_URL=redis://127.0.0.1:%d/0", crm_h_free_port());
    const char *env[] = {url, "CRM_REDIS_WAIT_MS=0", NULL};
    assert_int_equal(crm_h_run("crm-intake", NULL, env, log), 1);
    assert_true(crm_h_file_contains(log, "cannot start: Redis at redis://127.0.0.1:"));
    const char *bad[] = {"CRM_REDIS_URL=mysql://x", NULL};
    assert_int_equal(crm_h_run("crm-intake", NULL, bad, log), 1);
    assert_true(crm_h_file_contains(log, "bad Redis URL 'mysql://x'"));
}

static void start_all(fx_t *f)
{
    for (int i = 0; i < 5; i++)
        crm_h_sys_spawn(&f->sys, s_services[i], NULL);
}

static void test_crmctl_status_is_0_only_when_all_five_are_up(void **state)
{
    fx_t *f = *state;
    char out[300];
    crm_h_path(&f->sys.redis, "status.txt", out, sizeof out);
    const char *args[] = {"status", NULL};
    assert_int_equal(crm_h_run("crmctl", args, f->sys.envp, out), 1); /* nothing running yet */
    assert_true(crm_h_file_contains(out, "0 of 5 services up"));
    start_all(f);
    assert_int_equal(crm_h_run("crmctl", args, f->sys.envp, out), 0);
    assert_true(crm_h_file_contains(out, "5 of 5 services up"));
    /* One stops cleanly: exit 0, and status says so. */
    int status = crm_h_sys_kill(&f->sys, "dispatcher", SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(crm_h_run("crmctl", args, f->sys.envp, out), 1);
    assert_true(crm_h_file_contains(out, "dispatcher  stopped"));
    assert_true(crm_h_file_contains(out, "4 of 5 services up"));
    for (int i = 0; i < 5; i++) {
        if (f->sys.pids[i] <= 0)
            continue;
        status = crm_h_stop(f->sys.pids[i], SIGINT, 5000);
        f->sys.pids[i] = 0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* A stop finishes within a second, also when a peer's name cannot be
   resolved (a stopped container) and the sockets still hold messages. */
static void test_a_service_stops_within_a_second(void **state)
{
    fx_t *f = *state;
    char peers[200];
    snprintf(peers, sizeof peers, "CRM_PEERS=tcp://gone.invalid:7101,tcp://127.0.0.1:%d", f->sys.pub[0]);
    const char *extra[] = {peers, NULL};
    for (int i = 0; i < 5; i++) {
        crm_h_sys_spawn(&f->sys, s_services[i], extra);
        int64_t t0 = crm_mono_ms();
        int status = crm_h_sys_kill(&f->sys, s_services[i], SIGTERM);
        int64_t took = crm_mono_ms() - t0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (took >= 1000)
            fail_msg("crm-%s took %lld ms to stop", s_services[i], (long long) took);
    }
}

/* A Redis with the default hash-max-listpack-value (64) is told in each
   service's log once, at connect time; at the 256 the deployment sets it
   is not. */
static void test_a_redis_below_the_listpack_setting_is_told_once(void **state)
{
    fx_t *f = *state;
    char log[300];
    crm_h_sys_spawn(&f->sys, "scheduler", NULL); /* waits until it runs: it has connected */
    crm_h_sys_kill(&f->sys, "scheduler", SIGTERM);
    assert_false(crm_h_file_contains(crm_h_sys_log(&f->sys, "scheduler", log, sizeof log), "store.listpack_value"));
    freeReplyObject(crm_store_cmd(f->store, "CONFIG SET hash-max-listpack-value 64"));
    crm_h_sys_spawn(&f->sys, "intake", NULL);
    crm_h_sys_log(&f->sys, "intake", log, sizeof log);
    assert_int_equal(crm_h_file_count(log, "store.listpack_value"), 1);
    assert_true(crm_h_file_contains(log, "hash-max-listpack-value=64 wanted=256"));
    crm_h_sys_kill(&f->sys, "intake", SIGTERM);
    freeReplyObject(crm_store_cmd(f->store, "CONFIG SET hash-max-listpack-value 256"));
}

static void test_a_service_catches_up_on_events_committed_while_it_was_down(void **state)
{
    fx_t *f = *state;
    /* Events on the testdrive stream before the dispatcher ever ran. */
    crm_tx_t *tx = crm_tx_new("test", 100000);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "T%d", i);
        crm_h_testdrive(tx, id, "L", "C", NULL, 1800000000000LL);
    }
    assert_int_equal(crm_store_commit(f->store, tx), 0);
    crm_tx_destroy(&tx);
    start_all(f);
    assert_int_equal(crm_h_wait_int(f->store, 25, 10000, "HGET crm:cursor:dispatcher testdrive"), 25);
    /* applied, not merely passed over: every test drive is stored, none refused */
    for (int i = 0; i < 25; i++)
        assert_int_equal(crm_h_int(f->store, "EXISTS crm:td:T%d", i), 1);
    assert_int_equal(crm_h_int(f->store, "ZCARD crm:tds"), 25);
    if (crm_h_int(f->store, "XLEN crm:rejects") != 0) {
        redisReply *r = crm_store_cmd(f->store, "XRANGE crm:rejects - + COUNT 1");
        for (size_t k = 0; r && k < r->elements; k++)
            for (size_t j = 0; j + 1 < r->element[k]->element[1]->elements; j += 2)
                if (strcmp(r->element[k]->element[1]->element[j]->str, "frame"))
                    print_message("  %s=%s\n", r->element[k]->element[1]->element[j]->str,
                                  r->element[k]->element[1]->element[j + 1]->str);
        freeReplyObject(r);
    }
    assert_int_equal(crm_h_int(f->store, "XLEN crm:rejects"), 0);
    /* crmctl events shows the log as JSON lines. */
    char out[300];
    crm_h_path(&f->sys.redis, "events.txt", out, sizeof out);
    const char *args[] = {"events", "testdrive", "--from", "25", NULL};
    assert_int_equal(crm_h_run("crmctl", args, f->sys.envp, out), 0);
    assert_true(crm_h_file_contains(out, "\"type\":\"testdrive.requested\""));
    assert_true(crm_h_file_contains(out, "\"seq\":25,"));
    assert_true(crm_h_file_contains(out, "\"testdrive_id\":\"T24\""));
    assert_false(crm_h_file_contains(out, "\"seq\":24,"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_binary_answers_help_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_without_redis_exits_1_with_a_clear_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crmctl_status_is_0_only_when_all_five_are_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_stops_within_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_catches_up_on_events_committed_while_it_was_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_redis_below_the_listpack_setting_is_told_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
