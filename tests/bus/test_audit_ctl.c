/*  crmctl audit as the carmaker's CRM department reads it: a run's summary
 *  with its rates to two decimals, the deduction of a region's worst
 *  dealer, rules that could not be run said plainly, the records behind a
 *  figure, a dealer's history with the change in percentage points (a
 *  superseded run listed but not compared with), ABC classes and their
 *  moves, retention by vehicle age, the CSV for Excel, and `audit run`
 *  waiting for the auditor's run.
 *
 *  crm-auditor is not needed: the test fills a real redis-server in the
 *  auditor's layout (common/crm_keys.h, "Auditor") and, for `audit run`,
 *  answers audit.run on the auditor's control endpoint itself and flips the
 *  run to done a little later, as the auditor does.
 *
 *  CRM_TEST_ONLY=<name> runs the cases whose name matches (cmocka filter).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <jansson.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"
#include "crm_proto.h"

typedef struct {
    crm_h_sys_t sys;
} fx_t;

/* One Redis command given as words (values may hold spaces and JSON). */
static void s_redis(fx_t *f, int argc, const char **argv)
{
    redisReply *r = crm_store_cmdargv(f->sys.store, argc, argv, NULL);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}
#define S_REDIS(f, ...)                                                                            \
    do {                                                                                           \
        const char *argv_[] = {__VA_ARGS__};                                                       \
        s_redis(f, (int) (sizeof argv_ / sizeof *argv_), argv_);                                   \
    } while (0)

/* What the last crmctl printed. */
static char *s_out(fx_t *f)
{
    char *out = crm_h_slurp(f->sys.out);
    assert_non_null(out);
    return out;
}

static void s_has(fx_t *f, const char *needle)
{
    char *out = s_out(f);
    bool has = strstr(out, needle) != NULL;
    if (!has)
        fprintf(stderr, "crmctl printed:\n%s\n", out);
    free(out);
    if (!has)
        fail_msg("crmctl printed no \"%s\"", needle);
}

static void s_has_not(fx_t *f, const char *needle)
{
    char *out = s_out(f);
    bool has = strstr(out, needle) != NULL;
    if (has)
        fprintf(stderr, "crmctl printed:\n%s\n", out);
    free(out);
    if (has)
        fail_msg("crmctl printed \"%s\"", needle);
}

/* The line of the output holding `key` (the first after `from`, when not
   NULL), for checks within one row. */
static char *s_line_from(fx_t *f, const char *from, const char *key)
{
    char *out = s_out(f), *start = from ? strstr(out, from) : out, *p = start ? strstr(start, key) : NULL;
    if (!p) {
        fprintf(stderr, "crmctl printed:\n%s\n", out);
        free(out);
        fail_msg("no line with \"%s\"", key);
    }
    while (p > out && p[-1] != '\n')
        p--;
    size_t n = strcspn(p, "\n");
    char *line = strndup(p, n);
    free(out);
    return line;
}

static char *s_line(fx_t *f, const char *key) { return s_line_from(f, NULL, key); }

static void s_line_from_has(fx_t *f, const char *from, const char *key, const char *needle)
{
    char *line = s_line_from(f, from, key);
    bool has = strstr(line, needle) != NULL;
    if (!has)
        fprintf(stderr, "line: %s\n", line);
    free(line);
    if (!has)
        fail_msg("the line of \"%s\" has no \"%s\"", key, needle);
}

static void s_line_has(fx_t *f, const char *key, const char *needle) { s_line_from_has(f, NULL, key, needle); }

static const char *s_d1 =
    "{\"dealer_id\":\"D1\",\"name\":\"北京一店\",\"region\":\"北京\",\"audited\":240,\"in_error\":9,"
    "\"email_audited\":240,\"email_in_error\":9,\"warnings\":12,\"deduction_milli\":0,\"deduction_reasons\":[],"
    "\"region_best\":true,\"region_worst\":false,\"rules\":{"
    "\"phone\":{\"failed\":3,\"not_run\":0,\"samples\":[\"C1\",\"C7\",\"C5\"]},"
    "\"postcode\":{\"failed\":2,\"not_run\":0,\"samples\":[\"C7\",\"C8\"]},"
    "\"email_typo\":{\"failed\":0,\"not_run\":3,\"samples\":[]},"
    "\"dup_mobile\":{\"failed\":1,\"not_run\":0,\"samples\":[\"C8\"]}}}";
static const char *s_d2 =
    "{\"dealer_id\":\"D2\",\"name\":\"深圳一店\",\"region\":\"华南\",\"audited\":1000,\"in_error\":297,"
    "\"email_audited\":1000,\"email_in_error\":297,\"warnings\":3,\"deduction_milli\":0,\"deduction_reasons\":[],"
    "\"region_best\":true,\"region_worst\":true,\"rules\":{}}";
static const char *s_d3 =
    "{\"dealer_id\":\"D3\",\"name\":\"北京三店\",\"region\":\"北京\",\"audited\":275,\"in_error\":275,"
    "\"email_audited\":275,\"email_in_error\":275,\"warnings\":0,\"deduction_milli\":100,"
    "\"deduction_reasons\":[\"worst_in_region\",\"at_or_above_90\"],\"region_best\":false,\"region_worst\":true,"
    "\"rules\":{}}";
static const char *s_regions =
    "[{\"region\":\"北京\",\"dealers\":2,\"best\":\"D1\",\"best_audited\":240,\"best_email_in_error\":9,"
    "\"worst\":\"D3\",\"worst_audited\":275,\"worst_email_in_error\":275},"
    "{\"region\":\"华南\",\"dealers\":1,\"best\":\"D2\",\"best_audited\":1000,\"best_email_in_error\":297,"
    "\"worst\":\"D2\",\"worst_audited\":1000,\"worst_email_in_error\":297}]";

/* An audit run of D1 alone (history): its hash and D1's figures. */
static void s_run_of_d1(fx_t *f, const char *run, const char *period, long long audited, long long in_error,
                        const char *supersedes, const char *superseded_by, const char *finished_ms)
{
    char json[400], a[24], e[24];
    snprintf(json, sizeof json,
             "{\"dealer_id\":\"D1\",\"name\":\"北京一店\",\"region\":\"北京\",\"audited\":%lld,\"in_error\":%lld,"
             "\"email_audited\":%lld,\"email_in_error\":0,\"deduction_milli\":0,\"rules\":{}}",
             audited, in_error, audited);
    snprintf(a, sizeof a, "%lld", audited);
    snprintf(e, sizeof e, "%lld", in_error);
    char key[64], dkey[80];
    snprintf(key, sizeof key, "crm:audit:run:%s", run);
    snprintf(dkey, sizeof dkey, "crm:audit:run:%s:dealers", run);
    S_REDIS(f, "HSET", key, "run_id", run, "kind", "audit", "period", period, "dealer", "D1", "ruleset", "2026.12-1",
            "state", "done", "requested_by", "crm-auditor", "created_ms", finished_ms, "finished_ms", finished_ms,
            "supersedes", supersedes, "superseded_by", superseded_by, "dealers", "1", "audited", a, "in_error", e);
    S_REDIS(f, "HSET", dkey, "D1", json);
    S_REDIS(f, "RPUSH", "crm:audit:dealer:D1:runs", run);
}

/* What crm-auditor would have kept: A1 an audit of three dealers in two
   regions (A1 later superseded by A2), A0, A2, A3 D1's other runs, A4 an
   ABC run of D1, A5 a retention report. */
static void s_fill(fx_t *f)
{
    /* 2026-10-08 10:00 CST */
    s_run_of_d1(f, "A0", "2026Q2", 200, 10, "", "", "1791424800000");
    S_REDIS(f, "HSET", "crm:audit:run:A1", "run_id", "A1", "kind", "audit", "period", "2026Q3", "dealer", "",
            "region", "", "ruleset", "2026.12-1", "requested_by", "王经理", "state", "done", "created_ms",
            "1791511200000", "finished_ms", "1791511260000", "supersedes", "", "superseded_by", "A2", "dealers", "3",
            "audited", "1515", "in_error", "581", "highest_ppm", "1000000", "lowest_ppm", "37500", "average_ppm",
            "444167", "dealers_at_zero", "0", "not_run", "email_typo", "regions", s_regions);
    S_REDIS(f, "HSET", "crm:audit:run:A1:dealers", "D1", s_d1, "D2", s_d2, "D3", s_d3);
    S_REDIS(f, "RPUSH", "crm:audit:dealer:D1:runs", "A1");
    /* D1's records that failed a rule: C7 failed phone and postcode, C8
       postcode on its record line and dup_mobile on its duplicates line;
       C9 could not be judged on email_typo. */
    S_REDIS(f, "RPUSH", "crm:audit:run:A1:recs:D1", "C1 1 0", "C7 9 0", "C8 8 0", "C5 1 0", "C8 400000 0",
            "C9 0 10000");
    S_REDIS(f, "HSET", "crm:cust:{C7}", "name", "张三", "mobile", "13812345678");
    S_REDIS(f, "HSET", "crm:cust:{C8}", "name", "李四");
    S_REDIS(f, "HSET", "crm:cust:{C7}:findings", "postcode:bad_length", "error|postcode must be exactly 6 digits",
            "email:missing", "error|e-mail is missing");
    S_REDIS(f, "HSET", "crm:cust:{C8}:findings", "mobile:duplicate", "warning|another customer has this mobile");
    s_run_of_d1(f, "A2", "2026Q3", 240, 15, "A1", "", "1791597600000");
    s_run_of_d1(f, "A3", "2026Q4", 250, 10, "", "", "1799460000000");

    S_REDIS(f, "HSET", "crm:audit:run:A4", "run_id", "A4", "kind", "abc", "period", "2026Q4", "dealer", "D1",
            "state", "done", "requested_by", "王经理", "finished_ms", "1799460000000", "customers", "4", "a", "2",
            "b", "1", "c", "1", "moved", "2", "total_fen", "1000000");
    S_REDIS(f, "RPUSH", "crm:audit:run:A4:rows", "C1 500000 5 500000 5000 A B", "C2 300000 3 800000 8000 A A",
            "C3 150000 2 950000 9500 B -", "C4 50000 1 1000000 10000 C B");
    S_REDIS(f, "HSET", "crm:cust:{C1}", "name", "赵一");

    S_REDIS(f, "HSET", "crm:audit:run:A5", "run_id", "A5", "kind", "retention", "period", "all", "dealer", "D1",
            "as_of", "2026-12-31", "state", "done", "finished_ms", "1799460000000");
    S_REDIS(f, "HSET", "crm:audit:run:A5:dealers", "D1",
            "{\"dealer_id\":\"D1\",\"name\":\"北京一店\",\"region\":\"北京\",\"ages\":["
            "{\"age\":\"0\",\"sold\":10,\"active\":8,\"came1\":9,\"came2\":5,\"came3\":2},"
            "{\"age\":\"1\",\"sold\":20,\"active\":12,\"came1\":18,\"came2\":15,\"came3\":10},"
            "{\"age\":\"total\",\"sold\":30,\"active\":20,\"came1\":27,\"came2\":20,\"came3\":12}]}");
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, false) != 0) {
        free(f);
        return -1;
    }
    s_fill(f);
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

/* ------------------------------------------------------------ show */

static void test_run_summary_dealers_and_regions(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", NULL), 0);
    s_has(f, "被取代 superseded by: A2");
    s_has(f, "发起人 asked by: 王经理");
    s_has(f, "错误率 error rate: 38.35%"); /* 581 of 1515 */
    s_has(f, "最高 highest rate: 100.00%");
    s_has(f, "最低 lowest rate: 3.75%");
    s_has(f, "平均 average rate: 44.42%"); /* 444167 ppm, half up */
    /* A rule that could not be evaluated is said so, never as passing. */
    s_has(f, "rules not run: email_typo");
    s_has(f, "NOT counted as passing");
    /* Each dealer's rates to two decimals; the worst of 北京 loses 0.1. */
    s_line_has(f, "北京一店", "3.75%");
    s_line_has(f, "深圳一店", "29.70%");
    s_line_has(f, "北京三店", "100.00%");
    s_line_has(f, "北京三店", "0.1");
    s_line_has(f, "北京三店", "worst_in_region, at_or_above_90");
    char *d1 = s_line(f, "北京一店");
    bool d1_deducted = strstr(d1, "0.1") != NULL;
    free(d1);
    assert_false(d1_deducted);
    /* The region table: best and worst with their e-mail rates. */
    s_line_from_has(f, "## 大区对比", "北京", "D3");
    s_line_from_has(f, "## 大区对比", "北京", "240");
    s_line_from_has(f, "## 大区对比", "北京", "100.00%");
}

static void test_json_is_one_document(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--json", NULL), 0);
    char *out = s_out(f);
    json_error_t err;
    json_t *doc = json_loads(out, 0, &err);
    if (!doc)
        fprintf(stderr, "not JSON (%s at %d):\n%s\n", err.text, err.position, out);
    free(out);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "run_id")), "A1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "not_run"), 0)), "email_typo");
    json_t *dealers = json_object_get(doc, "dealers");
    assert_int_equal(json_array_size(dealers), 3);
    /* Sorted by id; rates as numbers. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(dealers, 1), "dealer_id")), "D2");
    assert_true(json_real_value(json_object_get(json_array_get(dealers, 1), "error_rate")) == 29.70);
    assert_int_equal(json_array_size(json_object_get(doc, "regions")), 2);
    json_decref(doc);
}

static void test_csv_opens_in_excel(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--csv", NULL), 0);
    char *csv = s_out(f);
    assert_memory_equal(csv, "\xEF\xBB\xBF", 3);
    assert_null(strstr(csv + 3, "\xEF\xBB\xBF")); /* one BOM for both tables */
    assert_non_null(strstr(csv, "\"=\"\"D2\"\"\",\"深圳一店\",\"华南\",1000,297,29.70%,"));
    assert_non_null(strstr(csv, "\r\n"));
    free(csv);
}

static void test_dealer_rules_and_the_records_behind_a_figure(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--dealer", "D1", NULL), 0);
    s_has(f, "区域最佳");
    s_line_has(f, "postcode           contact", "C7 C8");
    s_line_has(f, "email_typo", "not run for 3 records");
    s_line_has(f, "phone              contact", "C1 C7 C5");
    /* The two records behind postcode's 2, with their other rules (C8's
       duplicates line merged in) and their findings now. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--dealer", "D1", "--rule", "postcode", NULL), 0);
    s_line_has(f, "张三", "phone, postcode");
    s_line_has(f, "张三", "postcode: bad_length");
    s_line_has(f, "李四", "postcode, dup_mobile");
    s_has(f, "# 2 records behind postcode");
    char *c7 = s_line(f, "张三");
    bool email_shown = strstr(c7, "email: missing") != NULL;
    free(c7);
    assert_false(email_shown); /* a finding on another rule's field */
    s_has_not(f, "C1 ");
    s_has_not(f, "C9");
    /* Not run is listed as such. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--dealer", "D1", "--rule", "email_typo", NULL),
                     0);
    s_line_has(f, "C9", "not run");
    /* Arguments are checked before anything is read. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--dealer", "D1", "--rule", "zip", NULL), 2);
    s_has(f, "--rule");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--dealer", "D 1", NULL), 2);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A1", "--dealer", "D9", NULL), 1);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A99", NULL), 1);
    s_has(f, "no run A99");
}

static void test_history_in_percentage_points(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "history", "--dealer", "D1", NULL), 0);
    /* A0 5.00%, A1 3.75% (superseded by A2), A2 6.25%, A3 4.00%: A2 is
       compared with A0, the last run in force, not with A1. */
    s_line_has(f, "2026Q2", "5.00%");
    s_line_has(f, "A1 ", "superseded");
    s_line_has(f, "A1 ", "-1.25 pp");
    s_line_has(f, "A1 ", "A2");
    s_line_has(f, "A2 ", "+1.25 pp");
    s_line_has(f, "A3 ", "-2.25 pp");
    s_has_not(f, "+2.50 pp");
    s_line_has(f, "A0 ", "2026-10-08 10:00");
    s_has(f, "# 4 runs");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "history", NULL), 2);
}

static void test_abc_marks_the_moves(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A4", NULL), 0);
    s_line_has(f, "赵一", "B→A");
    s_line_has(f, "赵一", "5000.00");
    s_line_has(f, "赵一", "50.00%");
    s_has(f, "# 4 customers, 2 moved");
    s_has(f, "moved since the last run");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A4", "--json", NULL), 0);
    s_has(f, "\"customer_id\":\"C2\",\"name\":null,\"visits\":3,\"amount_fen\":300000,\"running_share\":80.00,"
             "\"class\":\"A\",\"previous\":\"A\",\"moved\":null}");
    s_has(f, "\"moved_rows\":[{\"customer_id\":\"C1\",\"name\":\"赵一\",\"previous\":\"B\",\"class\":\"A\"},\n"
             "{\"customer_id\":\"C4\"");
}

static void test_retention_by_vehicle_age(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A5", NULL), 0);
    s_has(f, "D1 北京一店 (北京)");
    /* age 0: 8 of 10 active, 8 of the 20 active, 9, 5, 2 of 10 came back */
    s_line_has(f, "  80.00%", "40.00%");
    s_line_has(f, "  80.00%", "20.00%");
    s_line_has(f, "total", "66.67%");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "show", "A5", "--json", NULL), 0);
    s_has(f, "\"dealers\":[{\"dealer_id\":\"D1\",\"name\":\"北京一店\",\"region\":\"北京\",\"ages\":[");
    s_has(f, "{\"dealer_id\":\"D1\",\"age\":\"0\",\"sold\":10,\"active\":8,\"grasp_rate\":80.00,"
             "\"active_share\":40.00,\"came1\":90.00,\"came2\":50.00,\"came3\":20.00}");
    s_has(f, "\"age\":\"total\",\"sold\":30,\"active\":20,\"grasp_rate\":66.67,\"active_share\":100.00");
}

static void test_rules_are_listed(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "rules", NULL), 0);
    s_line_has(f, "postcode ", "the postcode is exactly 6 digits");
    s_line_has(f, "email ", "email");
    s_line_has(f, "dup_id_other", "extended");
}

/* ------------------------------------------------------------ audit run */

/* crm-auditor's part, played by the test: answers audit.run with a new run
   id and keeps the run running, then done (dealer D9: failed; D8: never
   finishes). */
typedef struct {
    crm_store_t *store;
    int port;
    char kind[32], period[16], dealer[32], by[64];
    int asked;
} s_fake_t;

static void s_fake_auditor(zsock_t *pipe, void *arg)
{
    s_fake_t *fk = arg;
    zsock_t *rep = zsock_new(ZMQ_REP);
    assert_non_null(rep);
    int rc = zsock_bind(rep, "tcp://127.0.0.1:%d", fk->port);
    zsock_signal(pipe, rc < 0 ? 1 : 0);
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    int64_t finish_at = 0;
    char run[16] = "";
    for (;;) {
        void *which = zpoller_wait(poller, 50);
        if (which == pipe)
            break;
        if (finish_at && zclock_mono() >= finish_at) {
            finish_at = 0;
            bool failed = !strcmp(fk->dealer, "D9");
            redisReply *r = crm_store_cmd(fk->store, "HSET crm:audit:run:%s state %s reason %s finished_ms %lld", run,
                                          failed ? "failed" : "done", failed ? "no_files" : "",
                                          (long long) zclock_time());
            freeReplyObject(r);
        }
        if (which != rep)
            continue;
        zframe_t *fr = zframe_recv(rep);
        crm_msg_t m, a;
        crm_err_t err;
        crm_msg_init(&a, CRM_T_reply);
        if (fr && crm_msg_decode(zframe_data(fr), zframe_size(fr), &m, &err) == 0 && m.type == CRM_T_audit_run) {
            const crm_body_audit_run_t *b = &m.body.audit_run;
            snprintf(fk->kind, sizeof fk->kind, "%s", b->kind ? b->kind : "");
            snprintf(fk->period, sizeof fk->period, "%s", b->period ? b->period : "");
            snprintf(fk->dealer, sizeof fk->dealer, "%s", b->dealer_id ? b->dealer_id : "");
            snprintf(fk->by, sizeof fk->by, "%s", b->requested_by ? b->requested_by : "");
            fk->asked++;
            snprintf(run, sizeof run, "A%d", 6 + fk->asked);
            redisReply *r = crm_store_cmd(fk->store,
                                          "HSET crm:audit:run:%s run_id %s kind audit period %s dealer %s state "
                                          "running requested_by %s audited 240 in_error 9 dealers 1",
                                          run, run, fk->period, fk->dealer, fk->by);
            freeReplyObject(r);
            r = crm_store_cmd(fk->store, "HSET crm:audit:run:%s:dealers %s %s", run, fk->dealer, s_d1);
            freeReplyObject(r);
            if (strcmp(fk->dealer, "D8"))
                finish_at = zclock_mono() + 700;
            CRM_SET_BOOL(&a, reply, ok, true);
            CRM_SET_STR(&a, reply, id, run);
            crm_msg_clear(&m);
        } else {
            CRM_SET_BOOL(&a, reply, ok, false);
            CRM_SET_STR(&a, reply, code, "invalid");
        }
        zframe_destroy(&fr);
        crm_new_id(a.id, sizeof a.id);
        a.ts = crm_now_ms();
        snprintf(a.producer, sizeof a.producer, "auditor");
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        crm_msg_encode(&a, &buf, NULL);
        zframe_t *out = zframe_new(buf.data, buf.size);
        zframe_send(&out, rep, 0);
        msgpack_sbuffer_destroy(&buf);
        crm_msg_clear(&a);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&rep);
}

static void test_run_waits_for_the_auditor(void **state)
{
    fx_t *f = *state;
    /* No auditor: a clear message and exit code 2. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "run", "--no-wait", "--timeout-ms", "200", "--tries", "1",
                                      NULL),
                     2);
    s_has(f, "crm-auditor");
    s_has(f, "did not answer");
    /* A wrong period is named before anything is sent. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "run", "--period", "2026Q5", NULL), 2);
    s_has(f, "--period");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "abc", NULL), 2);

    s_fake_t fk = {.store = crm_h_store(&f->sys.redis), .port = f->sys.control[crm_h_service_index("auditor")]};
    zactor_t *auditor = zactor_new(s_fake_auditor, &fk);
    assert_non_null(auditor);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "run", "--period", "2026-11", "--dealer", "D1", NULL), 0);
    assert_int_equal(fk.asked, 1);
    assert_string_equal(fk.kind, "audit");
    assert_string_equal(fk.period, "2026-11");
    assert_string_equal(fk.dealer, "D1");
    const char *user = getenv("USER");
    assert_string_equal(fk.by, user && *user ? user : "crmctl");
    /* Shown once done, as audit show shows it. */
    s_has(f, "# 档案审核 data-quality audit A7");
    s_has(f, "状态 state: done");
    s_line_has(f, "北京一店", "3.75%");
    /* --no-wait: the run id only. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "run", "--period", "2026Q4", "--dealer", "D1", "--no-wait",
                                      NULL),
                     0);
    s_has(f, "run A8\n");
    s_has_not(f, "档案审核");
    /* A failed run: its reason, exit 1. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "run", "--dealer", "D9", NULL), 1);
    s_has(f, "run A9 failed: no_files");
    /* A run that does not end within --wait-s. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "audit", "run", "--dealer", "D8", "--wait-s", "1", NULL), 1);
    s_has(f, "run A10 has not finished after 1 s");
    zactor_destroy(&auditor);
    crm_store_destroy(&fk.store);
}

int main(void)
{
    const char *only = getenv("CRM_TEST_ONLY");
    if (only)
        cmocka_set_test_filter(only);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_summary_dealers_and_regions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_is_one_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_opens_in_excel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dealer_rules_and_the_records_behind_a_figure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_in_percentage_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abc_marks_the_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_vehicle_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_are_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_waits_for_the_auditor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
