/*  crm-auditor as the carmaker's CRM department and a dealer see it: a
 *  record that gains an error is told to its dealer at once (and its
 *  clearing once corrected); audit runs give the rebate's figures exactly
 *  as the seed defines them, are kept, and a re-run supersedes; the ABC
 *  classes come out as the seed's worked example.
 *
 *  One real redis-server, crm-intake, crm-dispatcher and crm-auditor; the
 *  dealers' files go in as a dealer's IT sends them (crmctl customer
 *  import, the CSV of tools/DEALERS.md); runs are asked for on
 *  crm-auditor's control endpoint as crmctl asks.
 *
 *  CRM_TEST_ONLY=<name> runs the cases whose name matches (cmocka filter).
 */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_audit.h"
#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"
#include "crm_proto.h"

typedef struct {
    crm_h_sys_t sys;
    char dir[300];
    int files;
} fx_t;

static fx_t *s_fx;

/* ------------------------------------------------------------ fixture */

static int group_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, false) != 0) {
        free(f);
        return -1;
    }
    crm_h_path(&f->sys.redis, "", f->dir, sizeof f->dir);
    if (crm_h_audit_system(&f->sys) != 0) {
        crm_h_sys_stop(&f->sys);
        free(f);
        return -1;
    }
    s_fx = f;
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

static void s_dealer(fx_t *f, const char *id, const char *region, const char *province)
{
    int rc = crm_h_sys_crmctl(&f->sys, "dealer", "add", id, "--name", "测试店", "--province", province, "--city",
                              "某市", "--region", region, NULL);
    if (rc != 0)
        fail_msg("dealer add %s: %s", id, crm_h_slurp(f->sys.out));
}

/* A dealer's customer file export, sent as its IT sends it; waits until
   crm-auditor has every row of it among the dealer's files. */
static void s_import(fx_t *f, const char *dealer, const char *csv, long long files_after)
{
    char path[400];
    snprintf(path, sizeof path, "%s/file%d.csv", f->dir, f->files++);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(csv, fp);
    fclose(fp);
    int rc = crm_h_sys_crmctl(&f->sys, "customer", "import", path, "--dealer", dealer, NULL);
    if (rc != 0)
        fail_msg("customer import for %s: exit %d: %s", dealer, rc, crm_h_slurp(f->sys.out));
    if (files_after >= 0 &&
        crm_h_wait_int(f->sys.store, files_after, 20000, "HLEN " CRM_KEY_AUDIT_FILES_FMT, dealer) != files_after)
        fail_msg("crm-auditor has %lld of %s's files, not %lld", crm_h_int(f->sys.store, "HLEN " CRM_KEY_AUDIT_FILES_FMT, dealer),
                 dealer, files_after);
}

/* Waits until crm-auditor has applied everything up to now (its cursor on
   the customer stream reaches the stream's end). */
static void s_settle(fx_t *f)
{
    for (int i = 0; i < 200; i++) {
        long long seq = crm_h_int(f->sys.store, "GET crm:{customer}:seq");
        long long cur = crm_h_int(f->sys.store, "HGET crm:cursor:auditor customer");
        long long oseq = crm_h_int(f->sys.store, "GET crm:{order}:seq");
        long long ocur = crm_h_int(f->sys.store, "HGET crm:cursor:auditor order");
        long long sseq = crm_h_int(f->sys.store, "GET crm:{service}:seq");
        long long scur = crm_h_int(f->sys.store, "HGET crm:cursor:auditor service");
        if (cur >= seq && ocur >= oseq && scur >= sseq)
            return;
        usleep(50000);
    }
    fail_msg("crm-auditor did not catch up with the customer stream");
}

/* The number of `type` events on `stream` (matching `needle`) once it
   reaches `want`, or what it is after 10 s. */
static int s_events(fx_t *f, const char *stream, const char *type, const char *needle, int want)
{
    int n = 0;
    for (int i = 0; i < 200 && (n = crm_h_events(f->sys.store, stream, type, needle)) < want; i++)
        usleep(50000);
    return n;
}

/* audit.run on crm-auditor's control endpoint; the run id (static). */
static const char *s_ask(fx_t *f, const char *kind, const char *period, const char *dealer, const char *region)
{
    static char id[32];
    crm_h_audit_ask(&f->sys, kind, period, dealer, region, id, sizeof id);
    return id;
}

static void s_wait_run(fx_t *f, const char *run) { crm_h_audit_wait(&f->sys, run); }

static json_t *s_figures(fx_t *f, const char *run, const char *dealer)
{
    return crm_h_audit_figures(&f->sys, run, dealer);
}

#define s_num crm_h_json_num

static char *s_hget(fx_t *f, const char *key, const char *field)
{
    redisReply *r = crm_store_cmd(f->sys.store, "HGET %s %s", key, field);
    assert_non_null(r);
    char *v = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

#define HDR "档案编号,客户编号,姓名,手机,家用电话,通信地址,邮编,城市,省份,电子邮件,底盘号,开票日期\n"

/* ------------------------------------------------------------ live findings */

static void test_an_error_reaches_the_dealer_at_once_and_its_clearing_after_the_correction(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "L1", "北京区", "北京");
    /* a 5-digit postcode: an error of part one */
    s_import(f, "L1",
             HDR "r1,,张伟,13911110001,,北京市朝阳区建国路1号,10002,北京,北京,zw@example.com,LFWADRJF011002346,2026-03-01\n",
             1);
    s_settle(f);
    char cid[32];
    redisReply *k = crm_store_cmd(f->sys.store, "HKEYS " CRM_KEY_AUDIT_FILES_FMT, "L1");
    assert_true(k && k->type == REDIS_REPLY_ARRAY && k->elements == 1);
    snprintf(cid, sizeof cid, "%s", k->element[0]->str);
    freeReplyObject(k);
    char fkey[64];
    snprintf(fkey, sizeof fkey, CRM_KEY_FINDINGS_FMT, cid);
    assert_int_equal(crm_h_int(f->sys.store, "HEXISTS %s postcode:bad_length", fkey), 1);
    char *v = s_hget(f, fkey, "postcode:bad_length");
    assert_non_null(strstr(v, "error|"));
    free(v);
    /* told to the dealer on its own stream, the moment it was entered */
    assert_int_equal(s_events(f, "dealer.L1", "dealer.finding", "\"state\":\"open\"", 1), 1);
    assert_int_equal(crm_h_events(f->sys.store, "dealer.L1", "dealer.finding", "\"code\":\"bad_length\""), 1);
    assert_int_equal(crm_h_events(f->sys.store, "audit", "audit.finding", "\"rule\":\"postcode\""), 1);
    /* nothing else was wrong: no other open finding went to the dealer */
    assert_int_equal(crm_h_events(f->sys.store, "dealer.L1", "dealer.finding", NULL), 1);

    /* the dealer corrects it: the error clears, once */
    char csv[512];
    snprintf(csv, sizeof csv,
             HDR "r1-fix,%s,张伟,13911110001,,北京市朝阳区建国路1号,100022,北京,北京,zw@example.com,,\n", cid);
    s_import(f, "L1", csv, 1);
    s_settle(f);
    assert_int_equal(crm_h_int(f->sys.store, "HEXISTS %s postcode:bad_length", fkey), 0);
    assert_int_equal(s_events(f, "dealer.L1", "dealer.finding", "\"state\":\"cleared\"", 1), 1);
    assert_int_equal(crm_h_events(f->sys.store, "audit", "audit.cleared", "\"field\":\"postcode\""), 1);
    /* a change that breaks nothing tells the dealer nothing */
    snprintf(csv, sizeof csv, HDR "r1-again,%s,张伟,13911110001,,北京市朝阳区建国路2号,100022,北京,北京,,,\n", cid);
    s_import(f, "L1", csv, 1);
    s_settle(f);
    /* ... but the e-mail is never blanked by a file without one */
    assert_int_equal(crm_h_events(f->sys.store, "dealer.L1", "dealer.finding", NULL), 2);
}

static void test_a_warning_stays_with_the_carmaker(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "L2", "北京区", "北京");
    /* masked mobile: filled (part one passes), a warning beyond the seed */
    s_import(f, "L2",
             HDR "w1,,王芳,138****5678,,北京市海淀区1号,100080,北京,北京,wf@example.com,LFWADRJF211002347,2026-03-01\n",
             1);
    s_settle(f);
    assert_int_equal(crm_h_events(f->sys.store, "dealer.L2", "dealer.finding", NULL), 0);
    redisReply *k = crm_store_cmd(f->sys.store, "HVALS " CRM_KEY_AUDIT_FILES_FMT, "L2");
    assert_true(k && k->elements == 1);
    unsigned long long fail = 0;
    char ver[32];
    assert_int_equal(sscanf(k->element[0]->str, "%31s %llx", ver, &fail), 2);
    freeReplyObject(k);
    assert_true(fail & (1ull << 8)); /* mobile_plan */
    assert_int_equal(fail & 0x7f, 0); /* part one passes */
}

/* ------------------------------------------------------------ runs */

/* The seed's rules over files, record by record: each rule failing alone,
   all together, and clean ones; the run counts each rule and the records
   in error, and lists the records behind each figure. */
static void test_a_run_counts_each_rule_of_part_one_record_by_record(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "R1", "南京区", "江苏");
    const char *csv = HDR
        /* clean, full-width digits included */
        "a1,,甲一,１３９１１１１０００２,,南京市玄武区1号,２１００００,南京,江苏,a1@example.com,LFWADRJF411002348,2026-01-05\n"
        /* a 7-digit local number with its area code passes; no mobile */
        "a2,,甲二,,025-1234567,南京市玄武区2号,210000,南京,江苏,a2@example.com,,2026-01-05\n"
        /* each rule alone */
        "b1,,乙一,,,南京市玄武区3号,210000,南京,江苏,b1@example.com,,2026-01-05\n"     /* phone */
        "b2,,乙二,,62345678,南京市玄武区4号,210000,南京,江苏,b2@example.com,,2026-01-05\n" /* area code */
        "b3,,乙三,13911110003,,,210000,南京,江苏,b3@example.com,,2026-01-05\n"          /* address */
        "b4,,乙四,13911110004,,南京市玄武区5号,21000,南京,江苏,b4@example.com,,2026-01-05\n" /* postcode */
        "b5,,乙五,13911110005,,南京市玄武区6号,210000,,江苏,b5@example.com,,2026-01-05\n"   /* city */
        "b6,,乙六,13911110006,,南京市玄武区7号,210000,南京,,b6@example.com,,2026-01-05\n"   /* province */
        "b7,,乙七,13911110007,,南京市玄武区8号,210000,南京,江苏,b7@example.com,LFWADRJF611002349,\n" /* sale date */
        /* all together */
        "c1,,丙一,,,,,,,,LFWADRJF211002350,\n"
        /* e-mail only: part two, not part one */
        "d1,,丁一,13911110008,,南京市玄武区9号,210000,南京,江苏,无,,2026-01-05\n";
    s_import(f, "R1", csv, 11);
    s_settle(f);
    const char *run = s_ask(f, "audit", NULL, "R1", NULL);
    s_wait_run(f, run);
    json_t *j = s_figures(f, run, "R1");
    if (getenv("CRM_TEST_DEBUG")) {
        redisReply *all = crm_store_cmd(f->sys.store, "HGETALL " CRM_KEY_AUDIT_FILES_FMT, "R1");
        for (size_t i = 0; all && i + 1 < all->elements; i += 2) {
            redisReply *fd = crm_store_cmd(f->sys.store, "HKEYS " CRM_KEY_FINDINGS_FMT, all->element[i]->str);
            char *name = s_hget(f, "crm:cust:{C1}", "name");
            fprintf(stderr, "%s %s:", all->element[i]->str, all->element[i + 1]->str);
            for (size_t k = 0; fd && k < fd->elements; k++)
                fprintf(stderr, " %s", fd->element[k]->str);
            fprintf(stderr, "\n");
            free(name);
            freeReplyObject(fd);
        }
        freeReplyObject(all);
        all = crm_store_cmd(f->sys.store, "LRANGE " CRM_KEY_AUDIT_RUN_RECS_FMT " 0 -1", run, "R1");
        for (size_t i = 0; all && i < all->elements; i++)
            fprintf(stderr, "rec %s\n", all->element[i]->str);
        freeReplyObject(all);
    }
    assert_int_equal(s_num(j, "audited"), 11);
    assert_int_equal(s_num(j, "in_error"), 8);
    assert_int_equal(s_num(j, "rules.phone.failed"), 2);
    assert_int_equal(s_num(j, "rules.area_code.failed"), 1);
    assert_int_equal(s_num(j, "rules.address.failed"), 2);
    assert_int_equal(s_num(j, "rules.postcode.failed"), 2);
    assert_int_equal(s_num(j, "rules.city.failed"), 2);
    assert_int_equal(s_num(j, "rules.province.failed"), 2);
    assert_int_equal(s_num(j, "rules.sale_date.failed"), 2);
    assert_int_equal(s_num(j, "email_in_error"), 2);
    assert_int_equal(s_num(j, "rules.sale_date.not_run"), 0);
    /* the records behind a figure: the postcode's are b4 and c1 */
    json_t *smp = json_object_get(json_object_get(json_object_get(j, "rules"), "postcode"), "samples");
    assert_int_equal(json_array_size(smp), 2);
    json_decref(j);
    /* every record that failed a rule: the eight in error, d1's e-mail, and
       a2's warning (025 numbers have 8 digits) */
    assert_int_equal(crm_h_int(f->sys.store, "LLEN " CRM_KEY_AUDIT_RUN_RECS_FMT, run, "R1"), 10);
    /* the kept run says what it applied */
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_RUN_FMT, run);
    char *rs = s_hget(f, key, "ruleset");
    assert_true(strlen(rs) > 0);
    free(rs);
    assert_int_equal(crm_h_events(f->sys.store, "audit", "audit.report", "\"dealer_id\":\"R1\""), 1);
}

/* A re-run of the same period and scope is kept and supersedes the
   earlier one, which is kept too. */
static void test_a_rerun_supersedes_and_both_are_kept(void **state)
{
    fx_t *f = *state;
    const char *a = s_ask(f, "audit", NULL, "R1", NULL);
    char first[32];
    snprintf(first, sizeof first, "%s", a);
    s_wait_run(f, first);
    const char *b = s_ask(f, "audit", NULL, "R1", NULL);
    char second[32];
    snprintf(second, sizeof second, "%s", b);
    s_wait_run(f, second);
    char k1[64], k2[64];
    snprintf(k1, sizeof k1, CRM_KEY_AUDIT_RUN_FMT, first);
    snprintf(k2, sizeof k2, CRM_KEY_AUDIT_RUN_FMT, second);
    char *sup = s_hget(f, k1, "superseded_by"), *was = s_hget(f, k2, "supersedes");
    assert_string_equal(sup, second);
    assert_string_equal(was, first);
    free(sup), free(was);
    json_t *j = s_figures(f, first, "R1");
    assert_int_equal(s_num(j, "audited"), 11);
    json_decref(j);
    /* a run of another scope supersedes nothing of these */
    const char *c = s_ask(f, "audit", "2026Q4", "R1", NULL);
    char third[32];
    snprintf(third, sizeof third, "%s", c);
    s_wait_run(f, third);
    char k3[64];
    snprintf(k3, sizeof k3, CRM_KEY_AUDIT_RUN_FMT, third);
    char *none = s_hget(f, k3, "supersedes");
    assert_string_equal(none, "");
    free(none);
    /* the dealer's history lists every audit run that covered it */
    assert_true(crm_h_int(f->sys.store, "LLEN " CRM_KEY_AUDIT_DEALER_RUNS_FMT, "R1") >= 4);
}


/* ------------------------------------------------------------ ABC */

static void s_cid_of_mobile(fx_t *f, const char *mobile, char *out, size_t size)
{
    redisReply *r = crm_store_cmd(f->sys.store, "GET crm:idx:mobile:%s", mobile);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("no customer has mobile %s", mobile);
    snprintf(out, size, "%s", r->str);
    freeReplyObject(r);
}

static void s_write(fx_t *f, const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* DOMAIN.md's worked example (seed 003): 9 customers, 9,850 paid; the one
   whose running share first passes 80% (李强) is B, the one passing 95%
   (王顺) is C. Amounts come from work orders as a dealer imports them;
   malformed rows are refused, naming their row, and count for nothing. */
static void test_abc_classes_come_out_as_the_seed_worked_example(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "V1", "广州区", "广东");
    static const char *const names[] = {"刘春江", "牛理财", "孙凤武", "张丽", "马玉", "李强", "张昆", "王顺", "李向阳"};
    static const char *const visits[] = {"600 600 600 630", "600 600 640", "400 400 400", "450 450", "445 445",
                                         "300 300 220", "200 200 200 190", "80 80 80 80 80 100", "160 160 160"};
    static const int want_share[] = {2467, 4335, 5553, 6467, 7371, 8203, 9005, 9513, 10000};
    static const char want_cls[] = "AAAAABBCC";
    char csv[4096] = HDR;
    for (int i = 0; i < 9; i++)
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv),
                 "v%d,,%s,1370000000%d,,广州市天河区%d号,510000,广州,广东,v%d@example.com,,2026-01-05\n", i, names[i],
                 i + 1, i + 1, i);
    s_import(f, "V1", csv, 9);
    char cids[9][32];
    char wo[8192] = "工单号,客户编号,维修日期,金额\n";
    int n = 0;
    for (int i = 0; i < 9; i++) {
        char mobile[16];
        snprintf(mobile, sizeof mobile, "1370000000%d", i + 1);
        s_cid_of_mobile(f, mobile, cids[i], sizeof cids[i]);
        char list[64];
        snprintf(list, sizeof list, "%s", visits[i]);
        for (char *save = NULL, *p = strtok_r(list, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
            n++;
            snprintf(wo + strlen(wo), sizeof wo - strlen(wo), "WO-%d,%s,2026-%02d-%02d,%s.00\n", n, cids[i],
                     10 + n % 3, 1 + n % 27, p);
        }
    }
    /* malformed rows, each refused with its row number */
    snprintf(wo + strlen(wo), sizeof wo - strlen(wo),
             "WO-bad1,%s,2026-13-45,100\n" /* no such date */
             "WO-bad2,%s,2026-11-02,abc元\n" /* no amount */
             ",%s,2026-11-03,100\n"           /* no work order */
             "WO-bad4,C999999,2026-11-04,100\n", /* no such customer */
             cids[0], cids[0], cids[0]);
    char path[400];
    s_write(f, "wo.csv", wo, path, sizeof path);
    int rc = crm_h_sys_crmctl(&f->sys, "service", "import", path, "--dealer", "V1", NULL);
    assert_int_equal(rc, 1); /* some rows refused */
    for (int row = n + 1; row <= n + 4; row++) {
        char needle[32];
        snprintf(needle, sizeof needle, "row %d: ", row);
        if (!crm_h_file_contains(f->sys.out, needle))
            fail_msg("the refusal of row %d is not named: %s", row, crm_h_slurp(f->sys.out));
    }
    s_settle(f);
    const char *run = s_ask(f, "abc", "2026Q4", "V1", NULL);
    char first[32];
    snprintf(first, sizeof first, "%s", run);
    s_wait_run(f, first);
    redisReply *rows = crm_store_cmd(f->sys.store, "LRANGE " CRM_KEY_AUDIT_RUN_ROWS_FMT " 0 -1", first);
    assert_non_null(rows);
    assert_int_equal(rows->elements, 9);
    for (int i = 0; i < 9; i++) {
        char cid[32], cls, prev;
        long long amount, v, running;
        int share;
        assert_int_equal(sscanf(rows->element[i]->str, "%31s %lld %lld %lld %d %c %c", cid, &amount, &v, &running,
                                &share, &cls, &prev),
                         7);
        assert_string_equal(cid, cids[i]);
        assert_int_equal(share, want_share[i]);
        if (cls != want_cls[i])
            fail_msg("%s: class %c, the seed says %c", names[i], cls, want_cls[i]);
        assert_int_equal(prev, '-');
    }
    assert_int_equal(crm_h_int(f->sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " total_fen", first), 985000);
    freeReplyObject(rows);
    /* what the CRM department reads */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", first, NULL), 0);
    assert_true(crm_h_file_contains(f->sys.out, "24.67%"));
    assert_true(crm_h_file_contains(f->sys.out, "刘春江"));

    /* a big work order moves 李向阳 up: the move is shown against the last run */
    char more[256];
    snprintf(more, sizeof more, "工单号,客户编号,维修日期,金额\nWO-big,%s,2026-12-20,3000.00\n", cids[8]);
    s_write(f, "wo2.csv", more, path, sizeof path);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "service", "import", path, "--dealer", "V1", NULL), 0);
    s_settle(f);
    run = s_ask(f, "abc", "2026Q4", "V1", NULL);
    char second[32];
    snprintf(second, sizeof second, "%s", run);
    s_wait_run(f, second);
    rows = crm_store_cmd(f->sys.store, "LRANGE " CRM_KEY_AUDIT_RUN_ROWS_FMT " 0 0", second);
    assert_true(rows && rows->elements == 1);
    char cid[32], cls, prev;
    long long amount, v, running;
    int share;
    assert_int_equal(sscanf(rows->element[0]->str, "%31s %lld %lld %lld %d %c %c", cid, &amount, &v, &running, &share,
                            &cls, &prev),
                     7);
    freeReplyObject(rows);
    assert_string_equal(cid, cids[8]);
    assert_int_equal(amount, 348000);
    assert_int_equal(v, 4);
    assert_int_equal(cls, 'A');
    assert_int_equal(prev, 'C');
    assert_true(crm_h_int(f->sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " moved", second) >= 1);
    assert_true(s_events(f, "audit", "audit.classes", "\"dealer_id\":\"V1\"", 2) == 2);
}

/* ------------------------------------------------------------ retention */

/* Cars a dealer sold, by age, and their service visits: sold, serviced in
   the last 12 months (grasp rate), came back for the 1st, 2nd, 3rd. */
static void test_retention_by_vehicle_age(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "G1", "广州区", "广东");
    static const char *const vins[] = {"LFWADRJF411002351", "LFWADRJF611002352", "LFWADRJF811002353",
                                       "LFWADRJFX11002354"};
    /* sold: 2026-03 (age 0), 2025-02 (age 1), 2024-06 (age 2), 2023-01 (age 3), as of 2026-12-01 */
    static const char *const sold[] = {"2026-03-01", "2025-02-01", "2024-06-01", "2023-01-15"};
    char csv[2048] = HDR;
    for (int i = 0; i < 4; i++)
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv),
                 "g%d,,车主%d,1360000000%d,,广州市越秀区%d号,510000,广州,广东,g%d@example.com,%s,%s\n", i, i, i + 1,
                 i + 1, i, vins[i], sold[i]);
    s_import(f, "G1", csv, 4);
    /* visits: car 0 once (this year), car 1 three times (last 2026-05), car 2 twice (last 2025-01: lapsed),
       car 3 never */
    char wo[1024];
    snprintf(wo, sizeof wo,
             "工单号,底盘号,维修日期,金额\n"
             "WG-1,%s,2026-06-01,300\n"
             "WG-2,%s,2025-08-01,300\nWG-3,%s,2026-01-10,300\nWG-4,%s,2026-05-05,300\n"
             "WG-5,%s,2024-12-01,300\nWG-6,%s,2025-01-20,300\n",
             vins[0], vins[1], vins[1], vins[1], vins[2], vins[2]);
    char path[400];
    s_write(f, "wog.csv", wo, path, sizeof path);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "service", "import", path, "--dealer", "G1", NULL), 0);
    s_settle(f);
    const char *run = s_ask(f, "retention", NULL, "G1", NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", run);
    s_wait_run(f, id);
    json_t *j = s_figures(f, id, "G1");
    json_t *ages = json_object_get(j, "ages");
    assert_int_equal(json_array_size(ages), 12);
    /* ages 0..3: one car each */
    for (int a = 0; a < 4; a++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(ages, (size_t) a), "sold")), 1);
    json_t *total = json_array_get(ages, 11);
    assert_int_equal(json_integer_value(json_object_get(total, "sold")), 4);
    assert_int_equal(json_integer_value(json_object_get(total, "active")), 2); /* cars 0 and 1 */
    assert_int_equal(json_integer_value(json_object_get(total, "came1")), 3);
    assert_int_equal(json_integer_value(json_object_get(total, "came2")), 2);
    assert_int_equal(json_integer_value(json_object_get(total, "came3")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ages, 2), "active")), 0); /* lapsed */
    json_decref(j);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", id, NULL), 0);
    assert_true(crm_h_file_contains(f->sys.out, "50.00%")); /* grasp rate, all ages: 2 of 4 */
}

/* ------------------------------------------------------------ periods, not run, CSV */

/* A period run covers the files created or changed in it; none else. */
static void test_a_period_run_covers_the_files_changed_in_it(void **state)
{
    fx_t *f = *state;
    char month[32];
    int64_t now = crm_now_ms();
    time_t t = (time_t) (now / 1000 + 8 * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(month, sizeof month, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    const char *run = s_ask(f, "audit", month, "R1", NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", run);
    s_wait_run(f, id);
    json_t *j = s_figures(f, id, "R1");
    assert_int_equal(s_num(j, "audited"), 11);
    json_decref(j);
    run = s_ask(f, "audit", "2025-11", "R1", NULL);
    snprintf(id, sizeof id, "%s", run);
    s_wait_run(f, id);
    j = s_figures(f, id, "R1");
    assert_int_equal(s_num(j, "audited"), 0);
    json_decref(j);
}

/* A record judged by other rules than the run's is reported "not run",
   rule by rule, never as passing. */
static void test_a_rule_that_could_not_be_evaluated_is_not_run_never_passing(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "N1", "南京区", "江苏");
    s_import(f, "N1",
             HDR "n1,,钱一,13911112001,,南京市1号,210000,南京,江苏,n1@example.com,,2026-01-05\n"
                 "n2,,钱二,13911112002,,南京市2号,21000,南京,江苏,n2@example.com,,2026-01-05\n",
             2);
    s_settle(f);
    /* the record in error (its postcode) as an earlier rule set judged it
       (an upgrade in progress) */
    char bad[32];
    s_cid_of_mobile(f, "13911112002", bad, sizeof bad);
    redisReply *w = crm_store_cmd(f->sys.store, "HSET " CRM_KEY_AUDIT_FILES_FMT " %s %s", "N1", bad, "2020.1 0 0 -1");
    freeReplyObject(w);
    const char *run = s_ask(f, "audit", NULL, "N1", NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", run);
    s_wait_run(f, id);
    json_t *j = s_figures(f, id, "N1");
    /* it is not counted as passing: not judged, outside the rate */
    assert_int_equal(s_num(j, "audited"), 1);
    assert_int_equal(s_num(j, "in_error"), 0);
    assert_int_equal(s_num(j, "unjudged"), 1);
    assert_int_equal(s_num(j, "email_audited"), 1);
    assert_int_equal(s_num(j, "rules.postcode.not_run"), 1);
    assert_int_equal(s_num(j, "rules.phone.not_run"), 1);
    json_decref(j);
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_RUN_FMT, id);
    char *nr = s_hget(f, key, "not_run");
    assert_non_null(strstr(nr, "postcode"));
    free(nr);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", id, NULL), 0);
    assert_true(crm_h_file_contains(f->sys.out, "not run"));
    assert_int_equal(s_events(f, "audit", "audit.report", "\"not_run\":[\"phone\"", 1), 1);
}

/* Reports for Excel in China: every digit of an 18-digit ID number and the
   leading 0 of a landline survive a save and a re-read of the CSV. */
static void test_the_csv_keeps_every_id_digit_and_leading_zero(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "X1", "北京区", "北京");
    /* an 18-digit ID number with a wrong check character, all digits */
    s_import(f, "X1",
             "档案编号,姓名,手机,家用电话,通信地址,邮编,城市,省份,电子邮件,身份证号\n"
             "x1,赵一,13911113001,010-62345678,北京市1号,100010,北京,北京,x1@example.com,110105194912310021\n",
             1);
    s_settle(f);
    const char *run = s_ask(f, "audit", NULL, "X1", NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", run);
    s_wait_run(f, id);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", id, "--dealer", "X1", "--rule", "id_check", "--csv",
                                      NULL),
                     0);
    char *out = crm_h_slurp(f->sys.out);
    assert_non_null(out);
    assert_int_equal(memcmp(out, "\xEF\xBB\xBF", 3), 0);
    char csv[400], cmd[1200];
    snprintf(csv, sizeof csv, "%s/report.csv", f->dir);
    FILE *fp = fopen(csv, "w");
    assert_non_null(fp);
    fputs(out, fp);
    fclose(fp);
    free(out);
    /* re-read as a program (and Excel) reads it: each cell, its text */
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import csv,sys\n"
             "rows=list(csv.reader(open(sys.argv[1],encoding='utf-8-sig')))\n"
             "cells=[c[2:-1] if c.startswith('=\\\"') else c for r in rows for c in r]\n"
             "print('ID' if '110105194912310021' in cells else 'NOID')\" %s",
             csv);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, p));
    pclose(p);
    assert_string_equal(line, "ID\n");
    /* and the landline with its 0, in the phones' figure */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", id, "--csv", NULL), 0);
    assert_true(crm_h_file_contains(f->sys.out, "\"=\"\"X1\"\"\""));
}

/* ------------------------------------------------------------ duplicates */

/* The same mobile on two customers of a dealer, and on a customer of
   another dealer: both counted, each record once per rule. */
static void test_duplicates_within_a_dealer_and_across_dealers(void **state)
{
    fx_t *f = *state;
    s_dealer(f, "P1", "广州区", "广西");
    s_dealer(f, "P2", "广州区", "海南");
    s_import(f, "P1",
             HDR "p1,,周一,13955550001,,南宁市1号,530000,南宁,广西,p1@example.com,,\n"
                 "p2,,周二,13955550002,,南宁市2号,530000,南宁,广西,p2@example.com,,\n",
             2);
    s_import(f, "P2", HDR "q1,,吴一,13955550003,,海口市1号,570000,海口,海南,q1@example.com,,\n", 1);
    char a[32], b[32], c[32];
    s_cid_of_mobile(f, "13955550001", a, sizeof a);
    s_cid_of_mobile(f, "13955550002", b, sizeof b);
    s_cid_of_mobile(f, "13955550003", c, sizeof c);
    /* each dealer corrects a record to the first one's mobile (its own customer, by id) */
    char csv[512];
    snprintf(csv, sizeof csv, HDR "p2-fix,%s,周二,13955550001,,南宁市2号,530000,南宁,广西,p2@example.com,,\n", b);
    s_import(f, "P1", csv, 2);
    snprintf(csv, sizeof csv, HDR "q1-fix,%s,吴一,13955550001,,海口市1号,570000,海口,海南,q1@example.com,,\n", c);
    s_import(f, "P2", csv, 1);
    s_settle(f);
    assert_int_equal(crm_h_int(f->sys.store, "SISMEMBER " CRM_KEY_AUDIT_DUPS " m:13955550001"), 1);
    const char *run = s_ask(f, "audit", NULL, NULL, "广州区");
    char id[32];
    snprintf(id, sizeof id, "%s", run);
    s_wait_run(f, id);
    json_t *j = s_figures(f, id, "P1");
    assert_int_equal(s_num(j, "rules.dup_mobile.failed"), 2);       /* a and b */
    assert_int_equal(s_num(j, "rules.dup_mobile_other.failed"), 2); /* both share it with P2's c */
    assert_int_equal(s_num(j, "rules.dup_id.failed"), 0);
    json_decref(j);
    j = s_figures(f, id, "P2");
    assert_int_equal(s_num(j, "rules.dup_mobile.failed"), 0);
    assert_int_equal(s_num(j, "rules.dup_mobile_other.failed"), 1); /* c */
    json_decref(j);
    /* the records behind the figure, as the CRM department lists them */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", id, "--dealer", "P1", "--rule", "dup_mobile", NULL),
                     0);
    assert_true(crm_h_file_contains(f->sys.out, a));
    assert_true(crm_h_file_contains(f->sys.out, b));
    /* duplicates are warnings: not in the rate */
    j = s_figures(f, id, "P1");
    assert_int_equal(s_num(j, "in_error"), 0);
    json_decref(j);
}

/* ------------------------------------------------------------ crash */

/* A run killed half-way (kill -9 of crm-auditor) is done again from the
   start by the next instance: the same figures, each record behind them
   once, one report per dealer. The files are written as crm-auditor keeps
   them (50,000 of them would take minutes through the uplink). */
static void test_a_run_killed_half_way_is_done_again_once(void **state)
{
    fx_t *f = *state;
    static const char *const ds[] = {"K1", "K2", "K3"};
    for (int d = 0; d < 3; d++)
        s_dealer(f, ds[d], "成都区", "四川");
    crm_tx_t *tx = crm_tx_new("test", 0);
    long long in_error[3] = {0}, total = 60000;
    for (long long n = 0; n < total; n++) {
        int d = (int) (n % 3);
        bool bad = n % 7 == 0;
        in_error[d] += bad;
        char cid[32], v[64];
        snprintf(cid, sizeof cid, "CK%lld", n);
        snprintf(v, sizeof v, "%s %llx 0 -1", CRM_AUDIT_RULESET, bad ? (unsigned long long) CRM_RULE_BIT(CRM_RULE_city) : 0ull);
        crm_tx_cmd(tx, "HSET " CRM_KEY_AUDIT_FILES_FMT " %s %s", ds[d], cid, v);
        if (n % 1000 == 999) {
            assert_int_equal(crm_store_pipeline(f->sys.store, tx), 0);
            crm_tx_reset(tx);
        }
    }
    crm_tx_destroy(&tx);
    /* a slow run: ten records a page, a millisecond at a time */
    crm_h_sys_kill(&f->sys, "auditor", SIGTERM);
    static const char *const slow[] = {"CRM_AUDIT_SCHEDULE=none", "CRM_AUDIT_RUN_PAGE=10", "CRM_AUDIT_RUN_SLICE_MS=1",
                                       NULL};
    crm_h_sys_spawn(&f->sys, "auditor", slow);
    const char *run = s_ask(f, "audit", NULL, NULL, "成都区");
    char id[32], key[64];
    snprintf(id, sizeof id, "%s", run);
    snprintf(key, sizeof key, CRM_KEY_AUDIT_RUN_FMT, id);
    /* half-way: some records read, the run not finished */
    for (int i = 0; i < 400 && crm_h_int(f->sys.store, "LLEN " CRM_KEY_AUDIT_RUN_RECS_FMT, id, "K1") < 500; i++)
        usleep(10000);
    char *st = s_hget(f, key, "state");
    assert_string_equal(st, "running");
    free(st);
    crm_h_sys_kill(&f->sys, "auditor", SIGKILL);
    static const char *const aud[] = {"CRM_AUDIT_SCHEDULE=none", NULL};
    crm_h_sys_spawn(&f->sys, "auditor", aud);
    s_wait_run(f, id);
    for (int d = 0; d < 3; d++) {
        json_t *j = s_figures(f, id, ds[d]);
        assert_int_equal(s_num(j, "audited"), total / 3);
        assert_int_equal(s_num(j, "in_error"), in_error[d]);
        json_decref(j);
        assert_int_equal(crm_h_int(f->sys.store, "LLEN " CRM_KEY_AUDIT_RUN_RECS_FMT, id, ds[d]), in_error[d]);
        char needle[96];
        snprintf(needle, sizeof needle, "\"report_id\":\"%s\",\"dealer_id\":\"%s\"", id, ds[d]);
        assert_int_equal(crm_h_events(f->sys.store, "audit", "audit.report", needle), 1);
    }
    assert_int_equal(crm_h_int(f->sys.store, "SISMEMBER " CRM_KEY_AUDIT_RUNNING " %s", id), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_error_reaches_the_dealer_at_once_and_its_clearing_after_the_correction),
        cmocka_unit_test(test_a_warning_stays_with_the_carmaker),
        cmocka_unit_test(test_a_run_counts_each_rule_of_part_one_record_by_record),
        cmocka_unit_test(test_a_rerun_supersedes_and_both_are_kept),
        cmocka_unit_test(test_abc_classes_come_out_as_the_seed_worked_example),
        cmocka_unit_test(test_retention_by_vehicle_age),
        cmocka_unit_test(test_a_period_run_covers_the_files_changed_in_it),
        cmocka_unit_test(test_a_rule_that_could_not_be_evaluated_is_not_run_never_passing),
        cmocka_unit_test(test_the_csv_keeps_every_id_digit_and_leading_zero),
        cmocka_unit_test(test_duplicates_within_a_dealer_and_across_dealers),
        cmocka_unit_test(test_a_run_killed_half_way_is_done_again_once),
    };
    const char *only = getenv("CRM_TEST_ONLY");
    if (only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
