/*  The lead sources' stories, end to end: crmctl against a real crm-intake
 *  and a real redis-server. The intake's clock is set to 2026-11-20 00:00
 *  China time (CRM_CLOCK_FILE) so the sample test-drive dates stay ahead.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crm_harness.h"

#define SAMPLES CRM_SOURCE_DIR "/tests/data/leads/"

typedef struct {
    crm_h_sys_t sys;
    crm_store_t *store;
    char out[300];
} fx_t;

#define INTAKE_PID (f->sys.pids[crm_h_service_index("intake")])

static pid_t start_intake(fx_t *f) { return crm_h_sys_spawn(&f->sys, "intake", NULL); }

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, true, true) != 0)
        return -1;
    f->store = f->sys.store;
    crm_h_path(&f->sys.redis, "out.txt", f->out, sizeof f->out);
    crm_h_sys_set_clock(&f->sys, 1795104000000LL); /* 2026-11-20 00:00 CST */
    start_intake(f);
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

/* Runs crmctl with `args` (NULL-terminated); output in f->out. */
static int crmctl(fx_t *f, ...)
{
    const char *args[24];
    int n = 0;
    va_list ap;
    va_start(ap, f);
    for (const char *a; n < 20 && (a = va_arg(ap, const char *));)
        args[n++] = a;
    va_end(ap);
    args[n++] = "--timeout-ms";
    args[n++] = "1500";
    args[n] = NULL;
    return crm_h_run("crmctl", args, f->sys.envp, f->out);
}

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

static void test_a_website_lead_is_accepted_once_and_a_resend_returns_the_first_answer(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "website.json", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"type\":\"lead.accepted\""));
    assert_true(crm_h_file_contains(f->out, "\"lead_id\":\"L1\""));
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "website.json", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"lead_id\":\"L1\""));
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:lead:L2"), 0);
    /* found by name (the index keeps the number; crmctl prints the id) */
    assert_int_equal(crmctl(f, "customer", "find", "--name", "张三", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "C1\n"));
    /* its test drive was requested, at 2026-12-05 10:00 China time */
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{testdrive}:events"), 1);
    assert_int_equal(crmctl(f, "events", "testdrive", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"at\":1796436000000"));
    assert_true(crm_h_file_contains(f->out, "\"dealer_id\":\"DL-0451\""));
}

static void test_partner_adf_leads_and_their_resends_make_one_lead(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_testdrive.xml", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"submission_id\":\"adf:autohome:AH-2026-000123\""));
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_resend.xml", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"lead_id\":\"L1\""));
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_novehicle.xml", NULL), 0);
    /* adf_cpo.xml holds two prospects, both submitted: the second has no
       phone, so it is rejected and the exit code says "no". */
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_cpo.xml", NULL), 1);
    assert_int_equal(count_lines(f->out, "\"type\":\"lead.accepted\""), 1);
    assert_int_equal(count_lines(f->out, "\"type\":\"lead.rejected\""), 1);
    assert_true(crm_h_file_contains(f->out, "\"submission_id\":\"adf:dealerfeed:DF-78\""));
    /* three leads in all: the resend made none (ids are unique, not dense) */
    assert_int_equal(crm_h_int(f->store, "EVAL return(#redis.call('KEYS','crm:lead:*')) 0"), 3);
}

static void test_a_feed_with_several_prospects_or_by_e_mail_submits_every_lead(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_multi.xml", NULL), 0);
    assert_int_equal(count_lines(f->out, "\"type\":\"lead.accepted\""), 3);
    assert_true(crm_h_file_contains(f->out, "\"submission_id\":\"adf:yiche:YC-1003\""));
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "email_mixed_gbk_base64.eml", NULL), 0);
    assert_int_equal(count_lines(f->out, "\"type\":\"lead.accepted\""), 2);
    assert_int_equal(crmctl(f, "customer", "find", "--name", "冯宝宝", NULL), 0);

    /* One prospect cannot be converted: the other is still submitted, the
       reason is printed, and the exit code says "no". */
    char mixed[300];
    crm_h_path(&f->sys.redis, "mixed.xml", mixed, sizeof mixed);
    FILE *x = fopen(mixed, "w");
    fputs("<adf>\n<prospect><id source=\"s\">ok</id><customer><contact><name>甲</name>"
          "<phone>13811112222</phone></contact></customer></prospect>\n"
          "<prospect><id source=\"s\">bad</id><vehicle interest=\"test-drive\"/><customer>"
          "<timeframe><earliestdate>soon</earliestdate></timeframe></customer></prospect>\n"
          "</adf>\n", x);
    fclose(x);
    assert_int_equal(crmctl(f, "lead", "submit", mixed, NULL), 1);
    assert_int_equal(count_lines(f->out, "\"type\":\"lead.accepted\""), 1);
    assert_true(crm_h_file_contains(f->out, "prospect 2 (line 3): line 3: customer/timeframe/earliestdate"));
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "email_no_adf.eml", NULL), 1);
    assert_true(crm_h_file_contains(f->out, "no part holds an ADF document"));
}

static void test_malformed_json_and_xml_are_refused_naming_where(void **state)
{
    fx_t *f = *state;
    char bad[300];
    crm_h_path(&f->sys.redis, "bad.json", bad, sizeof bad);
    FILE *b = fopen(bad, "w");
    fputs("{\"name\": \"x\",\n \"mobile\": }\n", b);
    fclose(b);
    assert_int_equal(crmctl(f, "lead", "submit", bad, NULL), 1);
    assert_true(crm_h_file_contains(f->out, "line 2"));
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_malformed.xml", NULL), 1);
    assert_true(crm_h_file_contains(f->out, "line "));
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:ids:lead"), 0);
    assert_true(crm_h_alive(INTAKE_PID));
}

static void test_a_file_no_converter_can_read_is_kept_in_quarantine_with_the_reason(void **state)
{
    fx_t *f = *state;
    char bad[300];
    crm_h_path(&f->sys.redis, "notes.txt", bad, sizeof bad);
    FILE *b = fopen(bad, "w");
    fputs("客户: 王五 13812340000, wants a test drive\n", b);
    fclose(b);
    assert_int_equal(crmctl(f, "lead", "submit", bad, NULL), 1);
    assert_true(crm_h_file_contains(f->out, "\"quarantine_id\":\"Q1\""));
    assert_true(crm_h_file_contains(f->out, "document|unconvertible|notes.txt: "));
    /* the same file again is the same submission: no second entry */
    assert_int_equal(crmctl(f, "lead", "submit", bad, NULL), 1);
    assert_int_equal(crm_h_int(f->store, "ZCARD crm:quarantine"), 1);
    assert_int_equal(crmctl(f, "quarantine", "show", "Q1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "客户: 王五 13812340000, wants a test drive"));
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:ids:lead"), 0);
}

/* A deployment that asks lead sources for CURVE certificates. */
static void test_lead_sources_with_a_certificate_are_let_in_and_others_are_not(void **state)
{
    fx_t *f = *state;
    char dir[300], cert[300], secret[300];
    crm_h_path(&f->sys.redis, "source-certs", dir, sizeof dir);
    crm_h_path(&f->sys.redis, "intake.cert", cert, sizeof cert);
    crm_h_path(&f->sys.redis, "S1.secret", secret, sizeof secret);
    crm_h_sys_kill(&f->sys, "intake", SIGTERM);
    crm_h_sys_env(&f->sys, "CRM_INTAKE_CERT_DIR=%s", dir);
    crm_h_sys_env(&f->sys, "CRM_INTAKE_SERVER_CERT=%s", cert);
    start_intake(f);
    assert_int_equal(crmctl(f, "source", "cert", "S1", "--out", secret, NULL), 0);
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "website.json", "--source-cert", secret, NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"type\":\"lead.accepted\""));
    char *source = NULL;
    redisReply *r = crm_store_cmd(f->store, "HGET crm:lead:L1 source_id");
    source = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    assert_non_null(source);
    assert_string_equal(source, "S1"); /* who sent it, from the certificate */
    free(source);
    /* without a certificate: the handshake is refused, nothing answers */
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "website.json", "--tries", "1", NULL), 2);
    /* revoked: refused from then on */
    assert_int_equal(crmctl(f, "source", "revoke", "S1", NULL), 0);
    /* asked again (an answer that never came): revoked, not "unknown" */
    assert_int_equal(crmctl(f, "source", "revoke", "S1", NULL), 0);
    /* an id that never had one is unknown */
    assert_int_equal(crmctl(f, "source", "revoke", "S9", NULL), 1);
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "adf_testdrive.xml", "--source-cert", secret, "--tries", "1",
                            NULL), 2);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:lead:L2"), 0);
    assert_int_equal(crmctl(f, "events", "ops", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"type\":\"cert.issued\""));
    assert_true(crm_h_file_contains(f->out, "\"type\":\"cert.revoked\""));
}

static void test_a_gbk_spreadsheet_with_chinese_headers_imports_and_a_second_import_adds_nothing(void **state)
{
    fx_t *f = *state;
    int rc = crmctl(f, "lead", "import", SAMPLES "autoshow_cn.gbk.csv", NULL);
    assert_int_equal(rc, 0);
    assert_true(crm_h_file_contains(f->out, "(GB18030)"));
    assert_true(crm_h_file_contains(f->out, "3 rows in"));
    assert_true(crm_h_file_contains(f->out, "3 accepted"));
    long long leads = crm_h_int(f->store, "XLEN crm:{lead}:events");
    assert_int_equal(leads, 3);
    /* the Chinese name came through GBK intact */
    assert_int_equal(crmctl(f, "customer", "find", "--name", "欧阳娜娜", NULL), 0);
    assert_int_equal(crmctl(f, "lead", "import", SAMPLES "autoshow_cn.gbk.csv", NULL), rc);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), leads);
    /* the same rows in UTF-8 are the same rows */
    assert_int_equal(crmctl(f, "lead", "import", SAMPLES "autoshow_cn.utf8.csv", NULL), rc);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), leads);
}

static void test_rejected_rows_go_to_a_rejects_file_that_imports_once_fixed(void **state)
{
    fx_t *f = *state;
    char csv[300], rejects[340];
    crm_h_path(&f->sys.redis, "show.csv", csv, sizeof csv);
    snprintf(rejects, sizeof rejects, "%s.rejects.csv", csv);
    FILE *c = fopen(csv, "w");
    fputs("name,mobile,city\nAlice,13812340001,Beijing\n,13812340002,Beijing\nCarol,,Beijing\n", c);
    fclose(c);
    assert_int_equal(crmctl(f, "lead", "import", csv, NULL), 1);
    assert_true(crm_h_file_contains(f->out, "row 2: name|required|"));
    assert_true(crm_h_file_contains(f->out, "row 3: mobile|required|"));
    assert_true(crm_h_file_contains(rejects, "name,mobile,city,error"));
    assert_true(crm_h_file_contains(rejects, ",13812340002,Beijing,"));
    /* the user fixes the file and imports it */
    c = fopen(rejects, "w");
    fputs("name,mobile,city,error\nBob,13812340002,Beijing,x\nCarol,13812340003,Beijing,y\n", c);
    fclose(c);
    assert_int_equal(crmctl(f, "lead", "import", rejects, NULL), 0);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:idx:mobile:13812340003"), 1);
    assert_int_equal(crmctl(f, "quarantine", "list", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "Q1 "));
}

static void test_a_quarantined_lead_is_retried_after_correction(void **state)
{
    fx_t *f = *state;
    char bad[300], good[300];
    crm_h_path(&f->sys.redis, "bad.json", bad, sizeof bad);
    crm_h_path(&f->sys.redis, "good.json", good, sizeof good);
    FILE *b = fopen(bad, "w");
    fputs("{\"submission_id\": \"web-9\", \"mobile\": \"13812349999\"}", b);
    fclose(b);
    b = fopen(good, "w");
    fputs("{\"submission_id\": \"web-9\", \"name\": \"钱九\", \"mobile\": \"13812349999\"}", b);
    fclose(b);
    assert_int_equal(crmctl(f, "lead", "submit", bad, NULL), 1);
    assert_true(crm_h_file_contains(f->out, "name|required|"));
    assert_int_equal(crmctl(f, "quarantine", "show", "Q1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "13812349999"));
    assert_int_equal(crmctl(f, "quarantine", "retry", "Q1", good, NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"submission_id\":\"web-9~Q1\""));
    assert_int_equal(crmctl(f, "quarantine", "list", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "retried:L1"));
    assert_int_equal(crmctl(f, "customer", "show", "C1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "钱九"));
}

static void test_customer_show_and_find_tell_the_record_and_its_history(void **state)
{
    fx_t *f = *state;
    char a[300], b2[300];
    crm_h_path(&f->sys.redis, "a.json", a, sizeof a);
    crm_h_path(&f->sys.redis, "b.json", b2, sizeof b2);
    FILE *x = fopen(a, "w");
    fputs("{\"name\": \"周一\", \"mobile\": \"13712345678\", \"email\": \"zhou@qq.con\"}", x);
    fclose(x);
    x = fopen(b2, "w");
    fputs("{\"name\": \"周一\", \"mobile\": \"+86 137 1234 5678\", \"email\": \"zhou@qq.com\", \"channel\": \"hotline\"}", x);
    fclose(x);
    assert_int_equal(crmctl(f, "lead", "submit", a, NULL), 0);
    assert_true(crm_h_file_contains(f->out, "email|suspected_typo|"));
    assert_int_equal(crmctl(f, "lead", "submit", b2, NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"merged\":true"));
    assert_int_equal(crmctl(f, "customer", "find", "--mobile", "137-1234-5678", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "C1"));
    assert_int_equal(crmctl(f, "customer", "show", "C1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "zhou@qq.con -> zhou@qq.com   (hotline, L2)"));
    assert_true(crm_h_file_contains(f->out, "L1 "));
    assert_true(crm_h_file_contains(f->out, "L2 "));
    assert_false(crm_h_file_contains(f->out, "suspected_typo")); /* fixed by the second lead */
    assert_int_equal(crmctl(f, "customer", "find", "--mobile", "13900000001", NULL), 1);
}

static void test_an_unreachable_intake_is_exit_code_2(void **state)
{
    fx_t *f = *state;
    crm_h_sys_kill(&f->sys, "intake", SIGTERM);
    assert_int_equal(crmctl(f, "lead", "submit", SAMPLES "website.json", "--tries", "2", NULL), 2);
    assert_true(crm_h_file_contains(f->out, "did not answer"));
}

/* An import of 20,000 rows; intake is killed with SIGKILL in the middle
   and restarted; the import is run again: every row is stored once. */
static void test_an_import_interrupted_by_an_intake_crash_ends_with_every_row_once(void **state)
{
    fx_t *f = *state;
    char csv[300];
    crm_h_path(&f->sys.redis, "big.csv", csv, sizeof csv);
    FILE *c = fopen(csv, "w");
    fputs("姓名,手机,城市,省份\n", c);
    for (int i = 0; i < 20000; i++)
        fprintf(c, "客户%d,139%08d,上海,上海\n", i, i);
    fclose(c);
    const char *args[] = {"lead", "import", csv, "--timeout-ms", "1000", "--tries", "2", NULL};
    pid_t import = crm_h_spawn("crmctl", args, f->sys.envp, f->out);
    long long seen = crm_h_wait_int(f->store, 3000, 30000, "GET crm:{lead}:seq");
    assert_true(seen >= 3000);
    int status = crm_h_sys_kill(&f->sys, "intake", SIGKILL);
    assert_true(WIFSIGNALED(status));
    waitpid(import, &status, 0);
    long long at_crash = crm_h_int(f->store, "GET crm:{lead}:seq");
    assert_true(WIFEXITED(status));
    assert_true(at_crash < 20000); /* the crash was in the middle of the import */
    assert_int_equal(WEXITSTATUS(status), 2); /* told the user what was not confirmed */
    assert_true(crm_h_file_contains(f->out, "Run the same import again"));
    start_intake(f);
    assert_int_equal(crmctl(f, "lead", "import", csv, NULL), 0);
    assert_true(crm_h_file_contains(f->out, "20000 accepted"));
    /* one lead.created per row, no more: */
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), 20000);
    /* and each row's customer holds exactly one lead (ids are unique, not
       dense: a batch cut by the crash used some) */
    static const int rows[] = {1, 5001, 10001, 19999};
    for (int k = 0; k < 4; k++) {
        redisReply *r = crm_store_cmd(f->store, "GET crm:idx:mobile:139%08d", rows[k]);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_int_equal(crm_h_int(f->store, "LLEN crm:cust:{%s}:leads", r->str), 0); /* its one lead is first_lead */
        freeReplyObject(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_website_lead_is_accepted_once_and_a_resend_returns_the_first_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partner_adf_leads_and_their_resends_make_one_lead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_feed_with_several_prospects_or_by_e_mail_submits_every_lead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_json_and_xml_are_refused_naming_where, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_gbk_spreadsheet_with_chinese_headers_imports_and_a_second_import_adds_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_rows_go_to_a_rejects_file_that_imports_once_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_quarantined_lead_is_retried_after_correction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_no_converter_can_read_is_kept_in_quarantine_with_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lead_sources_with_a_certificate_are_let_in_and_others_are_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customer_show_and_find_tell_the_record_and_its_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_unreachable_intake_is_exit_code_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_import_interrupted_by_an_intake_crash_ends_with_every_row_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
