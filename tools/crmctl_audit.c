/*  crmctl audit: crm-auditor's runs as the carmaker's CRM department reads
 *  them.
 *
 *  audit run | abc | retention ask crm-auditor for a run (audit.run on its
 *  control endpoint) and, unless --no-wait, wait for it by reading its state
 *  from Redis and show it; audit show | history | rules only read. Nothing
 *  here writes Redis: the auditor keeps the runs (common/crm_keys.h,
 *  "Auditor"). Every table goes through the report writer (crm_table.h):
 *  a text table, --json (one document) or --csv for Excel.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm_audit.h"
#include "crm_calendar.h"
#include "crm_rate.h"
#include "crm_table.h"
#include "crm_value.h"
#include "crmctl.h"

static const char *s_usage =
    "crmctl audit run [--period 2026Q4|2026-11] [--dealer D] [--region R] [--no-wait] [--json|--csv]\n"
    "             abc --dealer D [--period P] [--no-wait] [--json|--csv]\n"
    "             retention [--dealer D] [--region R] [--as-of YYYY-MM-DD] [--no-wait] [--json|--csv]\n"
    "             show RUN [--dealer D [--rule R]] [--json|--csv]\n"
    "             history --dealer D [--json|--csv]\n"
    "             rules";

#define S_POLL_MS 200
#define S_SAMPLES_MAX 10

/* ------------------------------------------------------------ a document
 *
 * A report is a few header fields and one or more tables: in text, lines
 * "label: value" and titled tables; in JSON one object with the fields and
 * the tables as arrays; in CSV the tables only (a blank line between them,
 * one BOM). */

typedef struct {
    crm_table_fmt_t fmt;
    int fields; /* json: members written so far */
    int tables; /* tables started so far */
} s_doc_t;

static void s_doc_begin(s_doc_t *d, crm_table_fmt_t fmt)
{
    memset(d, 0, sizeof *d);
    d->fmt = fmt;
    if (fmt == CRM_TABLE_JSON)
        fputc('{', stdout);
}

static void s_doc_key(s_doc_t *d, const char *key)
{
    if (d->fields++)
        fputc(',', stdout);
    crm_table_json_str(stdout, key);
    fputc(':', stdout);
}

/* A text field: NULL or "" is no value ("-", json null). */
static void s_doc_text(s_doc_t *d, const char *key, const char *label, const char *v)
{
    if (v && !*v)
        v = NULL;
    if (d->fmt == CRM_TABLE_TEXT)
        printf("%s: %s\n", label, v ? v : "-");
    else if (d->fmt == CRM_TABLE_JSON) {
        s_doc_key(d, key);
        crm_table_json_str(stdout, v);
    }
}

static void s_doc_int(s_doc_t *d, const char *key, const char *label, long long v)
{
    if (d->fmt == CRM_TABLE_TEXT)
        printf("%s: %lld\n", label, v);
    else if (d->fmt == CRM_TABLE_JSON) {
        s_doc_key(d, key);
        printf("%lld", v);
    }
}

/* num/den as "3.75%" (json 3.75); "-" (null) when den is 0. */
static void s_doc_rate(s_doc_t *d, const char *key, const char *label, int64_t num, int64_t den)
{
    char buf[32];
    if (d->fmt == CRM_TABLE_TEXT) {
        crm_rate_format(num, den, buf, sizeof buf);
        printf("%s: %s\n", label, buf);
    } else if (d->fmt == CRM_TABLE_JSON) {
        s_doc_key(d, key);
        fputs(crm_rate_percent(num, den, buf, sizeof buf) < 0 ? "null" : buf, stdout);
    }
}

/* A new table titled `title` (text), as member `key` (json). */
static crm_table_t *s_doc_table(s_doc_t *d, const char *key, const char *title, const crm_col_t *cols,
                                size_t ncols)
{
    if (d->fmt == CRM_TABLE_TEXT)
        printf("\n## %s\n", title);
    else if (d->fmt == CRM_TABLE_JSON)
        s_doc_key(d, key);
    else if (d->tables)
        fputs("\r\n", stdout);
    return crm_table_new(stdout, d->fmt, cols, ncols, d->tables++ ? CRM_TABLE_MORE : 0);
}

/* A line of explanation for the reader of the text form only. */
static void s_doc_note(const s_doc_t *d, const char *text)
{
    if (d->fmt == CRM_TABLE_TEXT)
        printf("%s\n", text);
}

static int s_doc_end(s_doc_t *d)
{
    if (d->fmt == CRM_TABLE_JSON)
        fputs("}\n", stdout);
    return fflush(stdout) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ helpers */

static int s_fmt(crmctl_t *ctl, crm_table_fmt_t *fmt)
{
    const char *format = crm_opt(ctl->opts, "format");
    if (crm_table_fmt_parse(format, fmt) == 0)
        return 0;
    fprintf(stderr, "crmctl audit: --format: expected table, json or csv, got '%s'\n", format);
    return -1;
}

static int64_t s_i64(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t) json_integer_value(v) : 0;
}

static const char *s_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Dealer and customer ids in a human order: D2 before D10. */
static int s_idcmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char) *a) && isdigit((unsigned char) *b)) {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = strspn(a, "0123456789"), lb = strspn(b, "0123456789");
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c)
                return c;
            a += la, b += lb;
            continue;
        }
        if (*a != *b)
            return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
        a++, b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

/* A deduction in thousandths of a point: 100 is "0.1", 0 is "-". */
static const char *s_deduction(int64_t milli, char *out, size_t size)
{
    if (milli <= 0) {
        snprintf(out, size, "-");
        return out;
    }
    int n = snprintf(out, size, "%lld.%03lld", (long long) (milli / 1000), (long long) (milli % 1000));
    while (n > 0 && (size_t) n < size && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[n - 1] = '\0';
    return out;
}

/* The names of the rules in `mask`, comma-separated, into out. */
static const char *s_rule_list(uint64_t mask, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int r = 0; r < CRM_RULE_COUNT && used < size; r++)
        if (mask & CRM_RULE_BIT(r))
            used += (size_t) snprintf(out + used, size - used, "%s%s", used ? ", " : "", crm_rule_name(r));
    return out;
}

/* The run's hash; NULL after a message (exit code in *rc). */
static redisReply *s_run_hash(crmctl_t *ctl, const char *run, int *rc)
{
    crm_store_t *store = crmctl_store(ctl);
    if (!store) {
        *rc = CRMCTL_REDIS;
        return NULL;
    }
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_AUDIT_RUN_FMT, run);
    if (!h) {
        *rc = CRMCTL_REDIS;
        return NULL;
    }
    if (h->type != REDIS_REPLY_ARRAY || !h->elements) {
        fprintf(stderr, "crmctl audit: no run %s (crmctl audit history --dealer D lists a dealer's)\n", run);
        freeReplyObject(h);
        *rc = CRMCTL_NO;
        return NULL;
    }
    return h;
}

/* One dealer's figures in a run (its JSON), NULL when it has none. */
static json_t *s_dealer_figures(crm_store_t *store, const char *run, const char *dealer, int *rc)
{
    redisReply *r = crm_store_cmd(store, "HGET " CRM_KEY_AUDIT_RUN_DEALERS_FMT " %s", run, dealer);
    if (!r) {
        *rc = CRMCTL_REDIS;
        return NULL;
    }
    json_t *j = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    freeReplyObject(r);
    if (!json_is_object(j)) {
        json_decref(j);
        *rc = CRMCTL_NO;
        return NULL;
    }
    return j;
}

typedef struct {
    const char *id;
    json_t *j;
} s_dealer_t;

static int s_dealer_cmp(const void *a, const void *b)
{
    return s_idcmp(((const s_dealer_t *) a)->id, ((const s_dealer_t *) b)->id);
}

/* Every dealer of a run, sorted by id (ids point into `*h`, which the
   caller frees with the json). NULL with *n 0 when there are none. */
static s_dealer_t *s_dealers(crm_store_t *store, const char *run, redisReply **h, size_t *n, int *rc)
{
    *n = 0;
    *h = crm_store_cmd(store, "HGETALL " CRM_KEY_AUDIT_RUN_DEALERS_FMT, run);
    if (!*h) {
        *rc = CRMCTL_REDIS;
        return NULL;
    }
    size_t cap = (*h)->type == REDIS_REPLY_ARRAY ? (*h)->elements / 2 : 0;
    s_dealer_t *d = calloc(cap ? cap : 1, sizeof *d);
    for (size_t i = 0; d && i < cap; i++) {
        const redisReply *v = (*h)->element[2 * i + 1];
        json_t *j = json_loadb(v->str, v->len, 0, NULL);
        if (!json_is_object(j)) {
            fprintf(stderr, "crmctl audit: run %s: the figures of dealer %s cannot be read\n", run,
                    (*h)->element[2 * i]->str);
            json_decref(j);
            continue;
        }
        d[*n].id = (*h)->element[2 * i]->str;
        d[(*n)++].j = j;
    }
    qsort(d, *n, sizeof *d, s_dealer_cmp);
    return d;
}

static void s_dealers_free(s_dealer_t *d, size_t n, redisReply *h)
{
    for (size_t i = 0; d && i < n; i++)
        json_decref(d[i].j);
    free(d);
    freeReplyObject(h);
}

/* The customers' names (crm:cust:{C} name), one pipeline; names[i] points
   into the returned transaction's replies (NULL when none). */
static crm_tx_t *s_names(crm_store_t *store, const char *const *ids, size_t n, const char **names)
{
    crm_tx_t *tx = crm_tx_new("crmctl", 0);
    if (!tx)
        return NULL;
    for (size_t i = 0; i < n; i++)
        crm_tx_cmd(tx, "HGET " CRM_KEY_CUST_FMT " name", ids[i]);
    bool ok = !n || crm_store_pipeline(store, tx) == 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = ok ? crm_tx_result(tx, (int) i) : NULL;
        names[i] = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    }
    return tx;
}

/* The run's header: what was asked, by whom, when, and its place among
   the runs of its scope. */
static void s_header(s_doc_t *d, const redisReply *h)
{
    char t1[48], t2[48];
    s_doc_text(d, "run_id", "运行 run", crmctl_or(h, "run_id"));
    s_doc_text(d, "kind", "类型 kind", crmctl_or(h, "kind"));
    s_doc_text(d, "period", "期间 period", crmctl_or(h, "period"));
    const char *scope_dealer = crm_reply_field(h, "dealer"), *scope_region = crm_reply_field(h, "region");
    if (d->fmt == CRM_TABLE_JSON || (scope_dealer && *scope_dealer))
        s_doc_text(d, "dealer", "经销商 dealer", scope_dealer);
    if (d->fmt == CRM_TABLE_JSON || (scope_region && *scope_region))
        s_doc_text(d, "region", "大区 region", scope_region);
    const char *as_of = crm_reply_field(h, "as_of");
    if (d->fmt == CRM_TABLE_JSON || (as_of && *as_of))
        s_doc_text(d, "as_of", "截至 as of", as_of);
    s_doc_text(d, "ruleset", "规则版本 rule set", crmctl_or(h, "ruleset"));
    s_doc_text(d, "state", "状态 state", crmctl_or(h, "state"));
    const char *reason = crm_reply_field(h, "reason");
    if (d->fmt == CRM_TABLE_JSON || (reason && *reason))
        s_doc_text(d, "reason", "失败原因 reason", reason);
    s_doc_text(d, "requested_by", "发起人 asked by", crmctl_or(h, "requested_by"));
    s_doc_text(d, "created", "发起时间 asked at", crmctl_time(h, "created_ms", t1, sizeof t1));
    s_doc_text(d, "finished", "完成时间 finished", crmctl_time(h, "finished_ms", t2, sizeof t2));
    s_doc_text(d, "supersedes", "取代 supersedes", crmctl_or(h, "supersedes"));
    s_doc_text(d, "superseded_by", "被取代 superseded by", crmctl_or(h, "superseded_by"));
}

/* ------------------------------------------------------------ audit runs */

static const crm_col_t s_dealer_cols[] = {
    {"dealer_id", "经销商 dealer", CRM_COL_ID},
    {"name", "名称 name", CRM_COL_TEXT},
    {"region", "大区 region", CRM_COL_TEXT},
    {"audited", "审核档案 audited", CRM_COL_INT},
    {"in_error", "错误档案 in error", CRM_COL_INT},
    {"error_rate", "错误率 error rate", CRM_COL_RATE},
    {"email_audited", "邮箱审核 e-mail audited", CRM_COL_INT},
    {"email_in_error", "邮箱错误 e-mail errors", CRM_COL_INT},
    {"email_rate", "邮箱错误率 e-mail rate", CRM_COL_RATE},
    {"deduction", "扣分 deduction", CRM_COL_TEXT},
    {"why", "原因 why", CRM_COL_TEXT},
};

static const crm_col_t s_region_cols[] = {
    {"region", "大区 region", CRM_COL_TEXT},
    {"dealers", "经销商数 dealers", CRM_COL_INT},
    {"best", "最佳 best", CRM_COL_ID},
    {"best_audited", "客户数 customers", CRM_COL_INT},
    {"best_email_rate", "邮箱错误率 e-mail rate", CRM_COL_RATE},
    {"worst", "最差 worst", CRM_COL_ID},
    {"worst_audited", "客户数 customers", CRM_COL_INT},
    {"worst_email_rate", "邮箱错误率 e-mail rate", CRM_COL_RATE},
};

/* The deduction's reasons as one cell: "worst_in_region, at_or_above_90". */
static void s_reasons(const json_t *j, char *out, size_t size)
{
    const json_t *a = json_object_get(j, "deduction_reasons");
    size_t used = 0, i;
    const json_t *v;
    out[0] = '\0';
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && used < size)
            used += (size_t) snprintf(out + used, size - used, "%s%s", used ? ", " : "", json_string_value(v));
    }
}

static void s_not_run_field(s_doc_t *d, const char *list)
{
    if (d->fmt == CRM_TABLE_JSON) {
        s_doc_key(d, "not_run");
        fputc('[', stdout);
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", list ? list : "");
        int k = 0;
        for (char *save = NULL, *w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
            fputs(k++ ? "," : "", stdout);
            crm_table_json_str(stdout, w);
        }
        fputc(']', stdout);
    } else if (d->fmt == CRM_TABLE_TEXT) {
        if (list && *list)
            printf("未执行规则 rules not run: %s (could not be evaluated for some records: those records are "
                   "NOT counted as passing; see audit show RUN --dealer D)\n",
                   list);
        else
            printf("未执行规则 rules not run: none (every rule was evaluated)\n");
    }
}

static int s_show_audit(crmctl_t *ctl, const redisReply *h, crm_table_fmt_t fmt)
{
    const char *run = crmctl_or(h, "run_id");
    s_doc_t d;
    s_doc_begin(&d, fmt);
    if (fmt == CRM_TABLE_TEXT)
        printf("# 档案审核 data-quality audit %s\n", run);
    s_header(&d, h);
    if (fmt == CRM_TABLE_TEXT)
        printf("\n## 汇总 summary\n");
    int64_t audited = atoll(crmctl_or(h, "audited")), in_error = atoll(crmctl_or(h, "in_error"));
    s_doc_int(&d, "dealers", "经销商 dealers", atoll(crmctl_or(h, "dealers")));
    s_doc_int(&d, "audited", "审核档案 records audited", audited);
    s_doc_int(&d, "in_error", "错误档案 in error", in_error);
    s_doc_rate(&d, "error_rate", "错误率 error rate", in_error, audited);
    const char *ppm[][3] = {{"highest_ppm", "highest_rate", "最高 highest rate"},
                            {"lowest_ppm", "lowest_rate", "最低 lowest rate"},
                            {"average_ppm", "average_rate", "平均 average rate"}};
    for (size_t i = 0; i < 3; i++) {
        const char *v = crm_reply_field(h, ppm[i][0]);
        s_doc_rate(&d, ppm[i][1], ppm[i][2], v && *v ? atoll(v) : 0, v && *v ? 1000000 : 0);
    }
    s_doc_int(&d, "dealers_at_zero", "零错误经销商 dealers at 0", atoll(crmctl_or(h, "dealers_at_zero")));
    s_not_run_field(&d, crm_reply_field(h, "not_run"));

    int rc = CRMCTL_OK;
    redisReply *dh = NULL;
    size_t n = 0;
    s_dealer_t *dl = s_dealers(crmctl_store(ctl), run, &dh, &n, &rc);
    crm_table_t *t = s_doc_table(&d, "dealers", "经销商 dealers", s_dealer_cols,
                                 sizeof s_dealer_cols / sizeof *s_dealer_cols);
    for (size_t i = 0; t && i < n; i++) {
        const json_t *j = dl[i].j;
        char ded[32], why[512];
        s_reasons(j, why, sizeof why);
        crm_table_text(t, dl[i].id);
        crm_table_text(t, s_str(j, "name"));
        crm_table_text(t, s_str(j, "region"));
        crm_table_int(t, s_i64(j, "audited"));
        crm_table_int(t, s_i64(j, "in_error"));
        crm_table_rate(t, s_i64(j, "in_error"), s_i64(j, "audited"));
        crm_table_int(t, s_i64(j, "email_audited"));
        crm_table_int(t, s_i64(j, "email_in_error"));
        crm_table_rate(t, s_i64(j, "email_in_error"), s_i64(j, "email_audited"));
        crm_table_text(t, s_i64(j, "deduction_milli") > 0 ? s_deduction(s_i64(j, "deduction_milli"), ded, sizeof ded)
                                                          : NULL);
        crm_table_text(t, why[0] ? why : NULL);
        crm_table_end_row(t);
    }
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    s_dealers_free(dl, n, dh);
    s_doc_note(&d, "扣分 deduction in points of the rebate score; 原因 why: the rules of the deduction");

    const char *regions = crm_reply_field(h, "regions");
    json_t *ra = regions && *regions ? json_loads(regions, 0, NULL) : NULL;
    t = s_doc_table(&d, "regions", "大区对比 regions (e-mail, part two)", s_region_cols,
                    sizeof s_region_cols / sizeof *s_region_cols);
    size_t i;
    const json_t *r;
    json_array_foreach(ra, i, r)
    {
        if (!t)
            break;
        crm_table_text(t, s_str(r, "region"));
        crm_table_int(t, s_i64(r, "dealers"));
        crm_table_text(t, s_str(r, "best"));
        crm_table_int(t, s_i64(r, "best_audited"));
        crm_table_rate(t, s_i64(r, "best_email_in_error"), s_i64(r, "best_audited"));
        crm_table_text(t, s_str(r, "worst"));
        crm_table_int(t, s_i64(r, "worst_audited"));
        crm_table_rate(t, s_i64(r, "worst_email_in_error"), s_i64(r, "worst_audited"));
        crm_table_end_row(t);
    }
    if (regions && *regions && !json_is_array(ra))
        fprintf(stderr, "crmctl audit show: run %s: its regions cannot be read\n", run);
    json_decref(ra);
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    if (s_doc_end(&d) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    return rc;
}

static const crm_col_t s_rule_cols[] = {
    {"rule", "规则 rule", CRM_COL_TEXT},
    {"part", "部分 part", CRM_COL_TEXT},
    {"failed", "不合格 failed", CRM_COL_INT},
    {"not_run", "未执行 not run", CRM_COL_INT},
    {"note", "说明 note", CRM_COL_TEXT},
    {"samples", "样本客户 sample customers", CRM_COL_ID},
};

static const crm_col_t s_rec_cols[] = {
    {"customer_id", "客户 customer", CRM_COL_ID},
    {"name", "姓名 name", CRM_COL_TEXT},
    {"on_rule", "本规则 this rule", CRM_COL_TEXT},
    {"failed_rules", "不合格规则 rules failed in the run", CRM_COL_TEXT},
    {"not_run_rules", "未执行规则 rules not run", CRM_COL_TEXT},
    {"findings_now", "当前问题 findings now", CRM_COL_TEXT},
    {"value_now", "当前值 value now", CRM_COL_ID},
};

/* The record fields a rule judges: a finding (crm:cust:{C}:findings,
   "<field>:<code>") on one of them is shown beside the rule. The fields
   are those crm_audit.c names in its findings for the rule. */
static const char *s_rule_fields(int rule)
{
    static const char *phones = "mobile home_phone office_phone usual_phone";
    switch (rule) {
    case CRM_RULE_phone:
    case CRM_RULE_area_code:
    case CRM_RULE_mobile_plan:
    case CRM_RULE_phone_form:
    case CRM_RULE_dup_mobile:
    case CRM_RULE_dup_mobile_other:
        return phones;
    case CRM_RULE_address:
        return "address";
    case CRM_RULE_postcode:
    case CRM_RULE_postcode_range:
    case CRM_RULE_postcode_province:
        return "postcode";
    case CRM_RULE_city:
        return "city";
    case CRM_RULE_province:
    case CRM_RULE_province_name:
        return "province";
    case CRM_RULE_sale_date:
        return "sale_date";
    case CRM_RULE_email:
    case CRM_RULE_email_typo:
        return "email";
    case CRM_RULE_id_check:
    case CRM_RULE_dup_id:
    case CRM_RULE_dup_id_other:
        return "id_number";
    case CRM_RULE_id_birthday:
        return "id_number birthday gender";
    case CRM_RULE_birthday:
        return "birthday";
    case CRM_RULE_vin_check:
        return "vin";
    case CRM_RULE_plate:
        return "plate";
    case CRM_RULE_remark_grade:
        return "remark";
    case CRM_RULE_expected_passed:
        return "expected_purchase_date";
    case CRM_RULE_grade_date:
        return "grade expected_purchase_date";
    default:
        return "";
    }
}

static bool s_word_in(const char *word, size_t len, const char *list)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && !strncmp(p, word, len))
            return true;
        p += n;
        p += *p == ' ';
    }
    return false;
}

typedef struct {
    char id[128];
    uint64_t fail, not_run;
} s_rec_t;

/* The dealer's records behind a rule's figure: every line of
   crm:audit:run:<A>:recs:<D> merged per customer (its record rules and its
   duplicates come on separate lines), those that failed the rule or could
   not be judged on it. */
static int s_records(crmctl_t *ctl, s_doc_t *d, const char *run, const char *dealer, int rule)
{
    crm_store_t *store = crmctl_store(ctl);
    redisReply *l = crm_store_cmd(store, "LRANGE " CRM_KEY_AUDIT_RUN_RECS_FMT " 0 -1", run, dealer);
    if (!l)
        return CRMCTL_REDIS;
    size_t n = 0, cap = l->type == REDIS_REPLY_ARRAY ? l->elements : 0;
    s_rec_t *recs = calloc(cap ? cap : 1, sizeof *recs);
    for (size_t i = 0; recs && i < cap; i++) {
        char id[128];
        unsigned long long f = 0, nr = 0;
        if (l->element[i]->type != REDIS_REPLY_STRING ||
            sscanf(l->element[i]->str, "%127s %llx %llx", id, &f, &nr) != 3)
            continue;
        size_t k = 0;
        while (k < n && strcmp(recs[k].id, id))
            k++;
        if (k == n)
            snprintf(recs[n++].id, sizeof recs[0].id, "%s", id);
        recs[k].fail |= f;
        recs[k].not_run |= nr;
    }
    freeReplyObject(l);
    size_t m = 0; /* the ones behind the figure, first */
    for (size_t i = 0; recs && i < n; i++)
        if ((recs[i].fail | recs[i].not_run) & CRM_RULE_BIT(rule))
            recs[m++] = recs[i];
    const char **ids = calloc(m ? m : 1, sizeof *ids), **names = calloc(m ? m : 1, sizeof *names);
    for (size_t i = 0; ids && i < m; i++)
        ids[i] = recs[i].id;
    crm_tx_t *nt = ids && names ? s_names(store, ids, m, names) : NULL;
    crm_tx_t *ft = crm_tx_new("crmctl", 0);
    const char *fields = s_rule_fields(rule);
    for (size_t i = 0; ft && i < m; i++) {
        crm_tx_cmd(ft, "HGETALL " CRM_KEY_FINDINGS_FMT, recs[i].id);
        crm_tx_cmd(ft, "HGETALL " CRM_KEY_CUST_FMT, recs[i].id);
    }
    int rc = (!recs || !nt || !ft) ? CRMCTL_NO : (m && crm_store_pipeline(store, ft) != 0) ? CRMCTL_REDIS : CRMCTL_OK;
    crm_table_t *t = s_doc_table(d, "records", "规则背后的档案 the records behind the figure", s_rec_cols,
                                 sizeof s_rec_cols / sizeof *s_rec_cols);
    for (size_t i = 0; t && rc == CRMCTL_OK && i < m; i++) {
        char failed[1024], not_run[1024], now[2048], value[2048] = "";
        size_t used = 0;
        now[0] = '\0';
        const redisReply *fh = crm_tx_result(ft, (int) (2 * i)), *ch = crm_tx_result(ft, (int) (2 * i + 1));
        /* the values the rule judged, as the record holds them now: one
           field's alone, several as field=value */
        size_t nf = 0, vused = 0;
        for (const char *p = fields; *p; p += *p == ' ')
            nf++, p += strcspn(p, " ");
        for (const char *p = fields; *p;) {
            size_t len = strcspn(p, " ");
            char name[48];
            snprintf(name, sizeof name, "%.*s", (int) len, p);
            const char *v = crm_reply_field(ch, name);
            if (v && *v && vused < sizeof value)
                vused += (size_t) (nf > 1 ? snprintf(value + vused, sizeof value - vused, "%s%s=%s", vused ? "; " : "", name, v)
                                          : snprintf(value + vused, sizeof value - vused, "%s", v));
            p += len;
            p += *p == ' ';
        }
        for (size_t k = 0; fh && fh->type == REDIS_REPLY_ARRAY && k + 1 < fh->elements; k += 2) {
            const char *key = fh->element[k]->str, *colon = strchr(key, ':');
            if (!colon || !s_word_in(key, (size_t) (colon - key), fields) || used >= sizeof now)
                continue;
            used += (size_t) snprintf(now + used, sizeof now - used, "%s%.*s: %s", used ? "; " : "",
                                      (int) (colon - key), key, colon + 1);
        }
        crm_table_text(t, recs[i].id);
        crm_table_text(t, names[i]);
        crm_table_text(t, recs[i].fail & CRM_RULE_BIT(rule) ? "failed 不合格" : "not run 未执行");
        crm_table_text(t, s_rule_list(recs[i].fail, failed, sizeof failed)[0] ? failed : NULL);
        crm_table_text(t, s_rule_list(recs[i].not_run, not_run, sizeof not_run)[0] ? not_run : NULL);
        crm_table_text(t, now[0] ? now : "(none now)");
        crm_table_text(t, value[0] ? value : NULL);
        crm_table_end_row(t);
    }
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    if (d->fmt == CRM_TABLE_TEXT)
        printf("# %zu record%s behind %s\n", m, m == 1 ? "" : "s", crm_rule_name(rule));
    crm_tx_destroy(&ft);
    crm_tx_destroy(&nt);
    free(ids), free(names), free(recs);
    return rc;
}

static int s_show_audit_dealer(crmctl_t *ctl, const redisReply *h, const char *dealer, int rule,
                               crm_table_fmt_t fmt)
{
    const char *run = crmctl_or(h, "run_id");
    int rc = CRMCTL_OK;
    json_t *j = s_dealer_figures(crmctl_store(ctl), run, dealer, &rc);
    if (!j) {
        if (rc == CRMCTL_NO)
            fprintf(stderr, "crmctl audit show: run %s has no figures for dealer %s\n", run, dealer);
        return rc;
    }
    s_doc_t d;
    s_doc_begin(&d, fmt);
    if (fmt == CRM_TABLE_TEXT)
        printf("# 档案审核 data-quality audit %s, dealer %s\n", run, dealer);
    s_doc_text(&d, "run_id", "运行 run", run);
    s_doc_text(&d, "period", "期间 period", crmctl_or(h, "period"));
    s_doc_text(&d, "ruleset", "规则版本 rule set", crmctl_or(h, "ruleset"));
    s_doc_text(&d, "state", "状态 state", crmctl_or(h, "state"));
    s_doc_text(&d, "dealer_id", "经销商 dealer", dealer);
    s_doc_text(&d, "name", "名称 name", s_str(j, "name"));
    s_doc_text(&d, "region", "大区 region", s_str(j, "region"));
    s_doc_int(&d, "audited", "审核档案 audited", s_i64(j, "audited"));
    s_doc_int(&d, "in_error", "错误档案 in error", s_i64(j, "in_error"));
    s_doc_rate(&d, "error_rate", "错误率 error rate", s_i64(j, "in_error"), s_i64(j, "audited"));
    s_doc_int(&d, "email_audited", "邮箱审核 e-mail audited", s_i64(j, "email_audited"));
    s_doc_int(&d, "email_in_error", "邮箱错误 e-mail errors", s_i64(j, "email_in_error"));
    s_doc_rate(&d, "email_rate", "邮箱错误率 e-mail rate", s_i64(j, "email_in_error"), s_i64(j, "email_audited"));
    s_doc_int(&d, "warnings", "警告 warnings (extended)", s_i64(j, "warnings"));
    char ded[32], why[512];
    s_reasons(j, why, sizeof why);
    s_doc_text(&d, "deduction", "扣分 deduction",
               s_i64(j, "deduction_milli") > 0 ? s_deduction(s_i64(j, "deduction_milli"), ded, sizeof ded) : NULL);
    s_doc_text(&d, "why", "原因 why", why);
    const char *place = json_is_true(json_object_get(j, "region_worst"))  ? "worst in its region 区域最差"
                        : json_is_true(json_object_get(j, "region_best")) ? "best in its region 区域最佳"
                                                                           : NULL;
    s_doc_text(&d, "region_place", "大区排名 in its region", place);

    const json_t *rules = json_object_get(j, "rules");
    if (rule >= 0) {
        const json_t *rj = json_object_get(rules, crm_rule_name(rule));
        s_doc_text(&d, "rule", "规则 rule", crm_rule_name(rule));
        s_doc_text(&d, "rule_checks", "检查 checks", crm_rule_text(rule));
        if (rj) {
            s_doc_int(&d, "rule_failed", "不合格 failed", s_i64(rj, "failed"));
            s_doc_int(&d, "rule_not_run", "未执行 not run", s_i64(rj, "not_run"));
        } else {
            s_doc_text(&d, "rule_failed", "不合格 failed", NULL);
        }
        rc = s_records(ctl, &d, run, dealer, rule);
    } else {
        crm_table_t *t = s_doc_table(&d, "rules", "规则 rules", s_rule_cols, sizeof s_rule_cols / sizeof *s_rule_cols);
        for (int r = 0; t && r < CRM_RULE_COUNT; r++) {
            const json_t *rj = json_object_get(rules, crm_rule_name(r));
            crm_table_text(t, crm_rule_name(r));
            crm_table_text(t, crm_audit_part_name(crm_rule_part(r)));
            if (!json_is_object(rj)) {
                crm_table_text(t, NULL);
                crm_table_text(t, NULL);
                crm_table_text(t, "no figure in this run");
                crm_table_end_row(t);
                continue;
            }
            crm_table_int(t, s_i64(rj, "failed"));
            crm_table_int(t, s_i64(rj, "not_run"));
            char note[96];
            if (s_i64(rj, "not_run") > 0)
                snprintf(note, sizeof note, "not run for %lld records (not passing)", (long long) s_i64(rj, "not_run"));
            else
                note[0] = '\0';
            crm_table_text(t, note[0] ? note : NULL);
            char samples[1024];
            size_t used = 0, i;
            const json_t *v;
            samples[0] = '\0';
            json_array_foreach(json_object_get(rj, "samples"), i, v)
            {
                if (i < S_SAMPLES_MAX && json_is_string(v) && used < sizeof samples)
                    used += (size_t) snprintf(samples + used, sizeof samples - used, "%s%s", used ? " " : "",
                                              json_string_value(v));
            }
            crm_table_text(t, samples[0] ? samples : NULL);
            crm_table_end_row(t);
        }
        if (crm_table_finish(&t) != 0)
            rc = CRMCTL_NO;
        s_doc_note(&d, "crmctl audit show RUN --dealer D --rule R lists the records behind a figure");
    }
    json_decref(j);
    if (s_doc_end(&d) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    return rc;
}

/* ------------------------------------------------------------ abc runs */

static const crm_col_t s_abc_cols[] = {
    {"rank", "排名 rank", CRM_COL_INT},
    {"customer_id", "客户 customer", CRM_COL_ID},
    {"name", "姓名 name", CRM_COL_TEXT},
    {"visits", "进厂次数 visits", CRM_COL_INT},
    {"amount_fen", "金额(元) amount_yuan", CRM_COL_FEN},
    {"running_share", "累计占比 running share", CRM_COL_RATE},
    {"class", "等级 class", CRM_COL_TEXT},
    {"previous", "上次 previous", CRM_COL_TEXT},
    {"moved", "变动 moved", CRM_COL_TEXT},
};

static const crm_col_t s_moved_cols[] = {
    {"customer_id", "客户 customer", CRM_COL_ID},
    {"name", "姓名 name", CRM_COL_TEXT},
    {"previous", "上次 previous", CRM_COL_TEXT},
    {"class", "本次 now", CRM_COL_TEXT},
};

typedef struct {
    char id[128], cls[4], prev[4];
    long long amount, visits, running, cbp;
} s_abc_row_t;

static bool s_moved(const s_abc_row_t *r)
{
    return strcmp(r->prev, "-") && strcmp(r->prev, r->cls);
}

static int s_show_abc(crmctl_t *ctl, const redisReply *h, crm_table_fmt_t fmt)
{
    const char *run = crmctl_or(h, "run_id");
    crm_store_t *store = crmctl_store(ctl);
    redisReply *l = crm_store_cmd(store, "LRANGE " CRM_KEY_AUDIT_RUN_ROWS_FMT " 0 -1", run);
    if (!l)
        return CRMCTL_REDIS;
    size_t n = 0, cap = l->type == REDIS_REPLY_ARRAY ? l->elements : 0;
    s_abc_row_t *rows = calloc(cap ? cap : 1, sizeof *rows);
    const char **ids = calloc(cap ? cap : 1, sizeof *ids), **names = calloc(cap ? cap : 1, sizeof *names);
    for (size_t i = 0; rows && ids && i < cap; i++) {
        s_abc_row_t *r = &rows[n];
        if (l->element[i]->type != REDIS_REPLY_STRING ||
            sscanf(l->element[i]->str, "%127s %lld %lld %lld %lld %3s %3s", r->id, &r->amount, &r->visits,
                   &r->running, &r->cbp, r->cls, r->prev) != 7)
            continue;
        ids[n++] = r->id;
    }
    freeReplyObject(l);
    crm_tx_t *nt = rows && ids && names ? s_names(store, ids, n, names) : NULL;
    int rc = nt ? CRMCTL_OK : CRMCTL_NO;
    s_doc_t d;
    s_doc_begin(&d, fmt);
    if (fmt == CRM_TABLE_TEXT)
        printf("# 客户价值 ABC value classes %s\n", run);
    s_header(&d, h);
    if (fmt == CRM_TABLE_TEXT)
        printf("\n## 汇总 summary\n");
    s_doc_int(&d, "customers", "客户 customers classified", atoll(crmctl_or(h, "customers")));
    s_doc_int(&d, "a", "A 金牌 gold", atoll(crmctl_or(h, "a")));
    s_doc_int(&d, "b", "B 重要 important", atoll(crmctl_or(h, "b")));
    s_doc_int(&d, "c", "C 一般 general", atoll(crmctl_or(h, "c")));
    s_doc_int(&d, "moved", "变动 moved since the last run", atoll(crmctl_or(h, "moved")));
    char yuan[32];
    const char *total = crm_reply_field(h, "total_fen");
    if (fmt == CRM_TABLE_JSON)
        s_doc_int(&d, "total_fen", "", atoll(total ? total : "0"));
    else if (total && *total)
        s_doc_text(&d, "total_yuan", "总额(元) total (yuan)", crm_yuan_format(atoll(total), yuan, sizeof yuan) < 0 ? NULL : yuan);
    crm_table_t *t = s_doc_table(&d, "rows", "客户 customers by amount", s_abc_cols, sizeof s_abc_cols / sizeof *s_abc_cols);
    size_t moved = 0;
    for (size_t i = 0; t && rc == CRMCTL_OK && i < n; i++) {
        const s_abc_row_t *r = &rows[i];
        char mark[16] = "";
        if (s_moved(r)) {
            snprintf(mark, sizeof mark, "%s→%s", r->prev, r->cls);
            moved++;
        }
        crm_table_int(t, (int64_t) i + 1);
        crm_table_text(t, r->id);
        crm_table_text(t, names[i]);
        crm_table_int(t, r->visits);
        crm_table_int(t, r->amount);
        crm_table_rate(t, r->cbp, 10000);
        crm_table_text(t, r->cls);
        crm_table_text(t, strcmp(r->prev, "-") ? r->prev : NULL);
        crm_table_text(t, mark[0] ? mark : NULL);
        crm_table_end_row(t);
    }
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    t = s_doc_table(&d, "moved_rows", "上次以来变动 moved since the last run", s_moved_cols,
                    sizeof s_moved_cols / sizeof *s_moved_cols);
    for (size_t i = 0; t && rc == CRMCTL_OK && i < n; i++) {
        if (!s_moved(&rows[i]))
            continue;
        crm_table_text(t, rows[i].id);
        crm_table_text(t, names[i]);
        crm_table_text(t, rows[i].prev);
        crm_table_text(t, rows[i].cls);
        crm_table_end_row(t);
    }
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    if (fmt == CRM_TABLE_TEXT)
        printf("# %zu customer%s, %zu moved\n", n, n == 1 ? "" : "s", moved);
    if (s_doc_end(&d) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    crm_tx_destroy(&nt);
    free(rows), free(ids), free(names);
    return rc;
}

/* ------------------------------------------------------------ retention runs */

static const crm_col_t s_ret_cols[] = {
    {"dealer_id", "经销商 dealer", CRM_COL_ID},
    {"age", "车龄 age", CRM_COL_TEXT},
    {"sold", "销售 cars sold", CRM_COL_INT},
    {"active", "12月内进厂 serviced in 12 months", CRM_COL_INT},
    {"grasp_rate", "客户掌握率 grasp rate", CRM_COL_RATE},
    {"active_share", "活跃占比 active share", CRM_COL_RATE},
    {"came1", "首保 1st service", CRM_COL_RATE},
    {"came2", "二保 2nd service", CRM_COL_RATE},
    {"came3", "三保 3rd service", CRM_COL_RATE},
};

static crm_retention_cell_t s_cell(const json_t *a)
{
    crm_retention_cell_t c = {
        .sold = s_i64(a, "sold"),
        .active = s_i64(a, "active"),
        .came = {s_i64(a, "came1"), s_i64(a, "came2"), s_i64(a, "came3")},
    };
    return c;
}

static int s_show_retention(crmctl_t *ctl, const redisReply *h, crm_table_fmt_t fmt)
{
    const char *run = crmctl_or(h, "run_id");
    int rc = CRMCTL_OK;
    redisReply *dh = NULL;
    size_t n = 0;
    s_dealer_t *dl = s_dealers(crmctl_store(ctl), run, &dh, &n, &rc);
    s_doc_t d;
    s_doc_begin(&d, fmt);
    if (fmt == CRM_TABLE_TEXT)
        printf("# 保有客户 retention by vehicle age %s\n", run);
    s_header(&d, h);
    if (fmt == CRM_TABLE_JSON) {
        s_doc_key(&d, "dealers");
        fputc('[', stdout);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *j = dl[i].j, *ages = json_object_get(j, "ages");
        crm_retention_t fleet = {0};
        size_t k;
        const json_t *a;
        json_array_foreach(ages, k, a)
        {
            const char *age = s_str(a, "age");
            if (age && !strcmp(age, "total"))
                fleet.total = s_cell(a);
        }
        char title[512];
        snprintf(title, sizeof title, "%s %s (%s)", dl[i].id, s_str(j, "name") ? s_str(j, "name") : "",
                 s_str(j, "region") ? s_str(j, "region") : "-");
        crm_table_t *t;
        if (fmt == CRM_TABLE_JSON) {
            /* {"dealer_id":..,"name":..,"region":..,"ages":[table]} */
            printf("%s{\"dealer_id\":", i ? "," : "");
            crm_table_json_str(stdout, dl[i].id);
            fputs(",\"name\":", stdout);
            crm_table_json_str(stdout, s_str(j, "name"));
            fputs(",\"region\":", stdout);
            crm_table_json_str(stdout, s_str(j, "region"));
            fputs(",\"ages\":", stdout);
            t = crm_table_new(stdout, fmt, s_ret_cols, sizeof s_ret_cols / sizeof *s_ret_cols, 0);
        } else {
            t = s_doc_table(&d, "ages", title, s_ret_cols, sizeof s_ret_cols / sizeof *s_ret_cols);
        }
        json_array_foreach(ages, k, a)
        {
            if (!t)
                break;
            crm_retention_cell_t c = s_cell(a);
            crm_ratio_t g = crm_retention_grasp(&c), s = crm_retention_active_share(&fleet, &c);
            crm_table_text(t, dl[i].id);
            crm_table_text(t, s_str(a, "age"));
            crm_table_int(t, c.sold);
            crm_table_int(t, c.active);
            crm_table_rate(t, g.num, g.den);
            crm_table_rate(t, s.num, s.den);
            for (int nth = 1; nth <= 3; nth++) {
                crm_ratio_t r = crm_retention_came(&c, nth);
                crm_table_rate(t, r.num, r.den);
            }
            crm_table_end_row(t);
        }
        if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
            rc = CRMCTL_NO;
        if (fmt == CRM_TABLE_JSON)
            fputc('}', stdout);
    }
    if (fmt == CRM_TABLE_JSON)
        fputc(']', stdout);
    s_doc_note(&d, "\n客户掌握率 grasp rate: serviced in the last 12 months / sold; active share: of all the dealer's "
                   "active cars; 1st-3rd service: of the cars sold");
    s_dealers_free(dl, n, dh);
    if (s_doc_end(&d) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    return rc;
}

/* ------------------------------------------------------------ show */

/* A run as its kind calls for; `dealer` (may be NULL) and `rule_name` (may
   be NULL) narrow an audit run to a dealer and to one rule's records. */
static int s_show(crmctl_t *ctl, const char *run, const char *dealer, const char *rule_name, crm_table_fmt_t fmt)
{
    int rule = -1;
    if (rule_name) {
        rule = crm_rule_from_name(rule_name);
        if (rule < 0) {
            fprintf(stderr, "crmctl audit show: --rule: no rule '%s' (crmctl audit rules)\n", rule_name);
            return CRMCTL_USAGE;
        }
        if (!dealer) {
            fprintf(stderr, "crmctl audit show: --rule needs --dealer (the records are a dealer's)\n");
            return CRMCTL_USAGE;
        }
    }
    int rc = CRMCTL_OK;
    redisReply *h = s_run_hash(ctl, run, &rc);
    if (!h)
        return rc;
    const char *kind = crmctl_or(h, "kind");
    if (!strcmp(kind, "abc"))
        rc = s_show_abc(ctl, h, fmt);
    else if (!strcmp(kind, "retention"))
        rc = s_show_retention(ctl, h, fmt);
    else if (dealer)
        rc = s_show_audit_dealer(ctl, h, dealer, rule, fmt);
    else
        rc = s_show_audit(ctl, h, fmt);
    if (rc == CRMCTL_OK && !strcmp(crmctl_or(h, "state"), "failed"))
        rc = CRMCTL_NO;
    freeReplyObject(h);
    return rc;
}

/* ------------------------------------------------------------ run, abc, retention */

/* Waits for the run to end (done or failed), reading its state every
   S_POLL_MS for up to --wait-s seconds. CRMCTL_OK when done. */
static int s_wait(crmctl_t *ctl, const char *run)
{
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    int64_t wait_s = crmctl_i64(ctl, "wait-s");
    int64_t deadline = crm_now_ms() + wait_s * 1000;
    for (;;) {
        redisReply *r = crm_store_cmd(store, "HMGET " CRM_KEY_AUDIT_RUN_FMT " state reason", run);
        if (!r)
            return CRMCTL_REDIS;
        const char *state = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                                    r->element[0]->type == REDIS_REPLY_STRING
                                ? r->element[0]->str
                                : "";
        if (!strcmp(state, "done")) {
            freeReplyObject(r);
            return CRMCTL_OK;
        }
        if (!strcmp(state, "failed")) {
            fprintf(stderr, "crmctl audit: run %s failed: %s\n", run,
                    r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "(no reason given)");
            freeReplyObject(r);
            return CRMCTL_NO;
        }
        freeReplyObject(r);
        if (crm_now_ms() >= deadline) {
            fprintf(stderr,
                    "crmctl audit: run %s has not finished after %lld s; crm-auditor carries on with it "
                    "(crmctl audit show %s later)\n",
                    run, (long long) wait_s, run);
            return CRMCTL_NO;
        }
        usleep(S_POLL_MS * 1000);
    }
}

static int s_ask(crmctl_t *ctl, const char *sub, const char *kind, crm_table_fmt_t fmt)
{
    const char *period = crm_opt(ctl->opts, "period"), *dealer = crm_opt(ctl->opts, "dealer");
    const char *region = crm_opt(ctl->opts, "region"), *as_of = crm_opt(ctl->opts, "as-of");
    bool retention = !strcmp(kind, "retention"), abc = !strcmp(kind, "abc");
    crm_period_t p;
    if (period && retention) {
        fprintf(stderr, "crmctl audit retention: --period does not apply (the fleet is counted on --as-of)\n");
        return CRMCTL_USAGE;
    }
    if (period && crm_period_parse(period, &p) != 0) {
        fprintf(stderr, "crmctl audit %s: --period: expected a quarter (2026Q4, 2026-Q4) or a month (2026-11), "
                        "got '%s'\n", sub, period);
        return CRMCTL_USAGE;
    }
    if (as_of && !retention) {
        fprintf(stderr, "crmctl audit %s: --as-of is for audit retention\n", sub);
        return CRMCTL_USAGE;
    }
    if (as_of && crm_day_parse(as_of) == INT64_MIN) {
        fprintf(stderr, "crmctl audit retention: --as-of: expected YYYY-MM-DD, got '%s'\n", as_of);
        return CRMCTL_USAGE;
    }
    if (abc && !dealer) {
        fprintf(stderr, "crmctl audit abc: --dealer is needed (value classes are a dealer's)\n");
        return CRMCTL_USAGE;
    }
    if (abc && region) {
        fprintf(stderr, "crmctl audit abc: --region does not apply (one dealer's customers)\n");
        return CRMCTL_USAGE;
    }
    if (dealer && !crmctl_id_ok(dealer, "--dealer"))
        return CRMCTL_USAGE;
    if (region && (!*region || strlen(region) > 64 || strpbrk(region, " \t\r\n:{}*"))) {
        fprintf(stderr, "crmctl audit %s: --region: '%s' is not a region name (crmctl regions show)\n", sub, region);
        return CRMCTL_USAGE;
    }
    const char *user = getenv("USER");
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_audit_run);
    CRM_SET_STR(&req, audit_run, kind, kind);
    if (period)
        CRM_SET_STR(&req, audit_run, period, p.name);
    CRM_SET_STR(&req, audit_run, dealer_id, dealer);
    CRM_SET_STR(&req, audit_run, region, region);
    CRM_SET_STR(&req, audit_run, as_of, as_of);
    CRM_SET_STR(&req, audit_run, requested_by, user && *user ? user : "crmctl");
    int rc = crmctl_request(ctl, "auditor", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    char run[64] = "";
    if (ans.type == CRM_T_reply && ans.body.reply.ok && ans.body.reply.id)
        snprintf(run, sizeof run, "%s", ans.body.reply.id);
    else if (ans.type == CRM_T_reply && ans.body.reply.ok)
        fprintf(stderr, "crmctl audit %s: crm-auditor answered without a run id\n", sub);
    if (!run[0]) {
        rc = ans.type == CRM_T_reply && ans.body.reply.ok ? CRMCTL_NO : crmctl_reply(&ans, "audit run");
        crm_msg_clear(&ans);
        return rc;
    }
    crm_msg_clear(&ans);
    if (!crmctl_id_ok(run, "the run id crm-auditor answered"))
        return CRMCTL_NO;
    if (crm_opt(ctl->opts, "no-wait")) {
        printf("run %s\n", run);
        return CRMCTL_OK;
    }
    rc = s_wait(ctl, run);
    if (rc != CRMCTL_OK)
        return rc;
    /* as audit show RUN: the run's scope is in its header */
    return s_show(ctl, run, NULL, NULL, fmt);
}

/* ------------------------------------------------------------ history */

static const crm_col_t s_history_cols[] = {
    {"run_id", "运行 run", CRM_COL_ID},
    {"period", "期间 period", CRM_COL_TEXT},
    {"finished", "完成 finished (China)", CRM_COL_TEXT},
    {"status", "状态 status", CRM_COL_TEXT},
    {"audited", "审核档案 audited", CRM_COL_INT},
    {"in_error", "错误档案 in error", CRM_COL_INT},
    {"error_rate", "错误率 error rate", CRM_COL_RATE},
    {"change", "变化 change", CRM_COL_TEXT},
    {"email_rate", "邮箱错误率 e-mail rate", CRM_COL_RATE},
    {"deduction", "扣分 deduction", CRM_COL_TEXT},
    {"superseded_by", "被取代 superseded by", CRM_COL_ID},
};

/* A rate in hundredths of a percent, rounded half up as crm_rate prints it
   (so a change is the difference of the two rates the reader sees). */
static int64_t s_rate_cbp(int64_t num, int64_t den)
{
    return (2 * 10000 * num + den) / (2 * den);
}

static int s_history(crmctl_t *ctl, crm_table_fmt_t fmt)
{
    const char *dealer = crm_opt(ctl->opts, "dealer");
    if (!dealer) {
        fprintf(stderr, "crmctl audit history: --dealer D is needed\n");
        return CRMCTL_USAGE;
    }
    if (!crmctl_id_ok(dealer, "--dealer"))
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *l = crm_store_cmd(store, "LRANGE " CRM_KEY_AUDIT_DEALER_RUNS_FMT " 0 -1", dealer);
    if (!l)
        return CRMCTL_REDIS;
    size_t n = l->type == REDIS_REPLY_ARRAY ? l->elements : 0;
    crm_tx_t *tx = crm_tx_new("crmctl", 0);
    for (size_t i = 0; tx && i < n; i++) {
        crm_tx_cmd(tx, "HGETALL " CRM_KEY_AUDIT_RUN_FMT, l->element[i]->str);
        crm_tx_cmd(tx, "HGET " CRM_KEY_AUDIT_RUN_DEALERS_FMT " %s", l->element[i]->str, dealer);
    }
    int rc = !tx ? CRMCTL_NO : n && crm_store_pipeline(store, tx) != 0 ? CRMCTL_REDIS : CRMCTL_OK;
    s_doc_t d;
    s_doc_begin(&d, fmt);
    if (fmt == CRM_TABLE_TEXT)
        printf("# 审核历史 audit history of dealer %s, oldest first\n", dealer);
    s_doc_text(&d, "dealer_id", "经销商 dealer", dealer);
    crm_table_t *t = s_doc_table(&d, "runs", "运行 runs", s_history_cols, sizeof s_history_cols / sizeof *s_history_cols);
    bool have_base = false;
    int64_t base_cbp = 0;
    for (size_t i = 0; t && rc == CRMCTL_OK && i < n; i++) {
        const redisReply *h = crm_tx_result(tx, (int) (2 * i)), *fj = crm_tx_result(tx, (int) (2 * i + 1));
        json_t *j = fj && fj->type == REDIS_REPLY_STRING ? json_loadb(fj->str, fj->len, 0, NULL) : NULL;
        const char *state = crmctl_or(h, "state"), *by = crm_reply_field(h, "superseded_by");
        bool superseded = by && *by, done = !strcmp(state, "done") && json_is_object(j);
        char fin[48], ded[32], change[32] = "-";
        int64_t audited = s_i64(j, "audited"), in_error = s_i64(j, "in_error");
        if (done && audited > 0) {
            int64_t cbp = s_rate_cbp(in_error, audited);
            if (have_base) {
                int64_t diff = cbp - base_cbp, a = diff < 0 ? -diff : diff;
                snprintf(change, sizeof change, "%c%lld.%02lld pp", diff < 0 ? '-' : '+', (long long) (a / 100),
                         (long long) (a % 100));
            }
            /* A superseded run is shown, but the next one is compared with
               the last run that still stands. */
            if (!superseded)
                have_base = true, base_cbp = cbp;
        }
        crm_table_text(t, l->element[i]->str);
        crm_table_text(t, crmctl_or(h, "period"));
        crm_table_text(t, crmctl_time(h, "finished_ms", fin, sizeof fin));
        crm_table_text(t, superseded ? "superseded 已被取代" : state);
        if (done) {
            crm_table_int(t, audited);
            crm_table_int(t, in_error);
        } else {
            crm_table_text(t, NULL);
            crm_table_text(t, NULL);
        }
        crm_table_rate(t, in_error, done ? audited : 0);
        crm_table_text(t, change);
        crm_table_rate(t, s_i64(j, "email_in_error"), done ? s_i64(j, "email_audited") : 0);
        crm_table_text(t, s_deduction(s_i64(j, "deduction_milli"), ded, sizeof ded));
        crm_table_text(t, superseded ? by : NULL);
        crm_table_end_row(t);
        json_decref(j);
    }
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    s_doc_note(&d, "变化 change: error rate minus that of the previous run still in force, in percentage points; "
                   "a superseded run is listed but not compared with");
    if (fmt == CRM_TABLE_TEXT)
        printf("# %zu run%s\n", n, n == 1 ? "" : "s");
    if (s_doc_end(&d) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    crm_tx_destroy(&tx);
    freeReplyObject(l);
    return rc;
}

/* ------------------------------------------------------------ rules */

static const crm_col_t s_rules_cols[] = {
    {"rule", "规则 rule", CRM_COL_TEXT},
    {"part", "部分 part", CRM_COL_TEXT},
    {"checks", "检查内容 what it checks", CRM_COL_TEXT},
};

static int s_rules(crm_table_fmt_t fmt)
{
    if (fmt == CRM_TABLE_TEXT)
        printf("# 审核规则 audit rules %s (contact: part one, the rebate's error rate; email: part two, compared "
               "within a region; extended: warnings)\n",
               CRM_AUDIT_RULESET);
    crm_table_t *t = crm_table_new(stdout, fmt, s_rules_cols, sizeof s_rules_cols / sizeof *s_rules_cols, 0);
    for (int r = 0; t && r < CRM_RULE_COUNT; r++) {
        crm_table_text(t, crm_rule_name(r));
        crm_table_text(t, crm_audit_part_name(crm_rule_part(r)));
        crm_table_text(t, crm_rule_text(r));
        crm_table_end_row(t);
    }
    return t && crm_table_finish(&t) == 0 ? CRMCTL_OK : CRMCTL_NO;
}

/* ------------------------------------------------------------ dispatch */

int crmctl_audit(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    crm_table_fmt_t fmt;
    int64_t wait_s;
    if (crm_opt_i64(ctl->opts, "wait-s", 1, 86400, &wait_s) != 0)
        return CRMCTL_USAGE;
    if (s_fmt(ctl, &fmt) != 0)
        return CRMCTL_USAGE;
    if (!strcmp(sub, "run"))
        return s_ask(ctl, sub, "audit", fmt);
    if (!strcmp(sub, "abc") || !strcmp(sub, "retention"))
        return s_ask(ctl, sub, sub, fmt);
    if (!strcmp(sub, "history"))
        return s_history(ctl, fmt);
    if (!strcmp(sub, "rules"))
        return s_rules(fmt);
    if (!strcmp(sub, "show") && ctl->argc > 2) {
        const char *dealer = crm_opt(ctl->opts, "dealer");
        if (!crmctl_id_ok(ctl->argv[2], "the run") || (dealer && !crmctl_id_ok(dealer, "--dealer")))
            return CRMCTL_USAGE;
        return s_show(ctl, ctl->argv[2], dealer, crm_opt(ctl->opts, "rule"), fmt);
    }
    fprintf(stderr, "%s\n", s_usage);
    return CRMCTL_USAGE;
}
