/*  crmctl calendar|tasks|report: what crm-scheduler keeps.
 *
 *  calendar load FILE asks crm-scheduler to replace the working-day table;
 *  calendar show, tasks list and the reports (daily, sanctions: a table,
 *  --json or --csv, tools/crm_table.h) read Redis to show things
 *  (crm:calendar, crm:tasks:open:*, crm:task:*, crm:report:*; and
 *  crm-notifier's call tasks, crm:calls:open:*, crm:call:*, in tasks list).
 */
#include <stdlib.h>
#include <string.h>

#include "crm_cadence.h"
#include "crm_lead.h"
#include "crm_leadin.h"
#include "crm_rate.h"
#include "crm_table.h"
#include "crmctl.h"

/* ------------------------------------------------------------ calendar */

static int s_calendar_show(crmctl_t *ctl)
{
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *r = crm_store_cmd(store, "HMGET " CRM_KEY_CALENDAR " text source loaded_ms");
    if (!r)
        return CRMCTL_REDIS;
    crm_calendar_t *cal = NULL;
    char err[256] = "";
    const char *source = "built-in (common/data/calendar_cn.txt)";
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
        cal = crm_calendar_parse(r->element[0]->str, r->element[0]->len, err, sizeof err);
        source = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "crm:calendar";
    } else {
        cal = crm_calendar_default();
    }
    if (!cal) {
        fprintf(stderr, "crmctl calendar show: the table in Redis is unreadable: %s\n", err);
        freeReplyObject(r);
        return CRMCTL_NO;
    }
    int years[64];
    size_t n = crm_calendar_years(cal, years, 64);
    printf("source: %s\nyears:", source);
    for (size_t i = 0; i < n; i++)
        printf(" %d", years[i]);
    printf("\n");
    const char *want = crm_opt(ctl->opts, "year");
    for (size_t i = 0; i < n; i++) {
        if (want && atoi(want) != years[i])
            continue;
        int64_t d = crm_day_from_ymd(years[i], 1, 1), end = crm_day_from_ymd(years[i] + 1, 1, 1);
        int off = 0, work = 0;
        for (; d < end; d++) {
            const char *name = NULL;
            crm_day_kind_t k = crm_calendar_kind(cal, d, &name);
            if (k != CRM_DAY_HOLIDAY && k != CRM_DAY_MAKEUP)
                continue;
            char day[16];
            crm_day_format(d, day, sizeof day);
            printf("%s %-4s %s\n", day, k == CRM_DAY_HOLIDAY ? "off" : "work", name ? name : "");
            off += k == CRM_DAY_HOLIDAY;
            work += k == CRM_DAY_MAKEUP;
        }
        printf("# %d: %d days off, %d make-up working days\n", years[i], off, work);
    }
    crm_calendar_destroy(&cal);
    freeReplyObject(r);
    return CRMCTL_OK;
}

int crmctl_calendar(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "show";
    if (!strcmp(sub, "show"))
        return s_calendar_show(ctl);
    if (strcmp(sub, "load") || ctl->argc < 3) {
        fprintf(stderr, "crmctl calendar: show [--year Y] | load FILE (the form of common/data/calendar_cn.txt)\n");
        return CRMCTL_USAGE;
    }
    size_t len = 0;
    char *text = crm_leadin_read_file(ctl->argv[2], 1 << 20, &len);
    if (!text) {
        fprintf(stderr, "crmctl calendar load: cannot read %s\n", ctl->argv[2]);
        return CRMCTL_USAGE;
    }
    /* Checked here too, so a mistake is named before anything is sent. */
    char err[256];
    crm_calendar_t *cal = crm_calendar_parse(text, len, err, sizeof err);
    if (!cal || strlen(text) != len) {
        fprintf(stderr, "crmctl calendar load: %s: %s\n", ctl->argv[2], cal ? "holds a NUL byte" : err);
        crm_calendar_destroy(&cal);
        free(text);
        return CRMCTL_NO;
    }
    crm_calendar_destroy(&cal);
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_calendar_load);
    CRM_SET_STR(&req, calendar_load, text, text);
    const char *base = strrchr(ctl->argv[2], '/');
    CRM_SET_STR(&req, calendar_load, source, base ? base + 1 : ctl->argv[2]);
    free(text);
    int rc = crmctl_request(ctl, "scheduler", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    rc = crmctl_reply(&ans, "calendar load");
    crm_msg_clear(&ans);
    return rc;
}

/* ------------------------------------------------------------ tasks */

#define S_TASK_ROW "%-10s %-20s %-8s %-14s %-10s %-12s %-12s %s\n"

/* crm-notifier's open call tasks (crm:calls:open:<Q>, crm:call:<P>) of
   queue `queue` (or of every queue), of one consultant, in one state, due
   in [lo, hi), as rows of the tasks list with kind "call"; the number
   printed, or -1 when Redis failed. */
static long s_calls_rows(crm_store_t *store, const char *queue, const char *consultant, const char *state,
                         int64_t lo, int64_t hi)
{
    redisReply *queues = queue ? NULL : crm_store_cmd(store, "SORT " CRM_KEY_CALLS_QUEUES " ALPHA");
    if (!queue && !queues)
        return -1;
    crm_tx_t *ids = crm_tx_new("crmctl", 0), *calls = crm_tx_new("crmctl", 0);
    size_t nq = 0, nc = 0;
    for (size_t i = 0; i < (queue ? 1 : queues->elements); i++) {
        const char *q = queue ? queue : queues->element[i]->str;
        /* Members of a Redis set, but they become part of a key. */
        if (!crm_id_valid(CRM_ID_NAME, q))
            continue;
        crm_tx_cmd(ids, "ZRANGE " CRM_KEY_CALLS_OPEN_FMT " %lld (%lld BYSCORE", q, (long long) lo, (long long) hi);
        nq++;
    }
    long shown = nq && crm_store_pipeline(store, ids) != 0 ? -1 : 0;
    for (size_t i = 0; shown == 0 && i < nq; i++) {
        const redisReply *l = crm_tx_result(ids, (int) i);
        for (size_t k = 0; l && l->type == REDIS_REPLY_ARRAY && k < l->elements; k++)
            if (crm_id_valid(CRM_ID_NAME, l->element[k]->str)) {
                crm_tx_cmd(calls, "HGETALL " CRM_KEY_CALL_FMT, l->element[k]->str);
                nc++;
            }
    }
    if (shown == 0 && nc && crm_store_pipeline(store, calls) != 0)
        shown = -1;
    for (size_t i = 0; shown >= 0 && i < nc; i++) {
        const redisReply *h = crm_tx_result(calls, (int) i);
        if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements)
            continue;
        if ((state && strcmp(crmctl_or(h, "state"), state)) ||
            (consultant && strcmp(crmctl_or(h, "consultant_id"), consultant)))
            continue;
        char due[40], content[600];
        const char *q = crmctl_or(h, "queue");
        snprintf(content, sizeof content, "%s%s: %s", strcmp(q, "callcentre") ? "" : "[callcentre] ",
                 crmctl_or(h, "template"), crmctl_or(h, "text"));
        printf(S_TASK_ROW, crmctl_or(h, "call_id"), crmctl_time(h, "due_ms", due, sizeof due), crmctl_or(h, "state"),
               "call", crmctl_or(h, "dealer_id"), crmctl_or(h, "consultant_id"), crmctl_or(h, "customer_id"),
               content);
        shown++;
    }
    crm_tx_destroy(&calls);
    crm_tx_destroy(&ids);
    freeReplyObject(queues);
    return shown;
}

/* The open tasks of a dealer (or of every dealer), of one consultant,
   in one state, due in [lo, hi), soonest first; then, with `calls`, the
   open call tasks of `queue` (default: the dealer's, or every queue).
   Without `with_tasks` only the call tasks. */
static int s_tasks_list(crmctl_t *ctl, const char *dealer, const char *consultant, const char *state, int64_t lo,
                        int64_t hi, bool with_tasks, bool calls, const char *queue)
{
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *dealers = dealer || !with_tasks ? NULL : crm_store_cmd(store, "SORT " CRM_KEY_TASKS_DEALERS " ALPHA");
    if (!dealer && with_tasks && !dealers)
        return CRMCTL_REDIS;
    crm_tx_t *ids = crm_tx_new("crmctl", 0);
    char key[300];
    size_t nd = !with_tasks ? 0 : dealer ? 1 : dealers->elements;
    for (size_t i = 0; i < nd; i++) {
        const char *d = dealer ? dealer : dealers->element[i]->str;
        if (consultant)
            snprintf(key, sizeof key, CRM_KEY_TASKS_MINE_FMT, d, consultant);
        else
            snprintf(key, sizeof key, CRM_KEY_TASKS_OPEN_FMT, d);
        crm_tx_cmd(ids, "ZRANGE %s %lld (%lld BYSCORE", key, (long long) lo, (long long) hi);
    }
    int rc = nd && crm_store_pipeline(store, ids) != 0 ? CRMCTL_REDIS : CRMCTL_OK;
    crm_tx_t *tasks = crm_tx_new("crmctl", 0);
    size_t nt = 0;
    for (size_t i = 0; rc == CRMCTL_OK && i < nd; i++) {
        const redisReply *l = crm_tx_result(ids, (int) i);
        for (size_t k = 0; l && k < l->elements; k++, nt++)
            crm_tx_cmd(tasks, "HGETALL " CRM_KEY_TASK_FMT, l->element[k]->str);
    }
    if (rc == CRMCTL_OK && nt && crm_store_pipeline(store, tasks) != 0)
        rc = CRMCTL_REDIS;
    if (rc == CRMCTL_OK) {
        printf(S_TASK_ROW, "TASK", "DUE (CHINA)", "STATE", "KIND", "DEALER",
               "CONSULTANT", "CUSTOMER", "CONTENT");
        size_t shown = 0;
        for (size_t i = 0; i < nt; i++) {
            const redisReply *h = crm_tx_result(tasks, (int) i);
            if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements)
                continue;
            if (state && strcmp(crmctl_or(h, "state"), state))
                continue;
            char due[40];
            printf(S_TASK_ROW, crmctl_or(h, "task_id"),
                   crmctl_time(h, "due_ms", due, sizeof due), crmctl_or(h, "state"), crmctl_or(h, "kind"),
                   crmctl_or(h, "dealer_id"), crmctl_or(h, "consultant_id"), crmctl_or(h, "customer_id"),
                   crmctl_or(h, "content"));
            shown++;
        }
        /* The call rows come after the tasks and the tasks' count stays
           as it was: scripts and tests read it. */
        long ncalls = calls ? s_calls_rows(store, queue ? queue : dealer, consultant, state, lo, hi) : 0;
        if (ncalls < 0)
            rc = CRMCTL_REDIS;
        if (with_tasks)
            printf("# %zu open task%s\n", shown, shown == 1 ? "" : "s");
        if (ncalls > 0 || (ncalls == 0 && !with_tasks))
            printf("# %ld open call task%s\n", ncalls, ncalls == 1 ? "" : "s");
    }
    crm_tx_destroy(&tasks);
    crm_tx_destroy(&ids);
    freeReplyObject(dealers);
    return rc;
}

int crmctl_tasks(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "list";
    if (strcmp(sub, "list")) {
        fprintf(stderr, "crmctl tasks: list [--dealer D] [--consultant C] [--overdue] [--due-before \"YYYY-MM-DD HH:MM\"]\n"
                        "                   [--calls] [--queue Q]\n");
        return CRMCTL_USAGE;
    }
    const char *dealer = crm_opt(ctl->opts, "dealer"), *consultant = crm_opt(ctl->opts, "consultant");
    const char *db = crm_opt(ctl->opts, "due-before");
    int64_t before = INT64_MAX / 2;
    if (db && crm_leadin_parse_datetime(db, &before) != 0) {
        fprintf(stderr, "crmctl tasks list: --due-before: expected \"YYYY-MM-DD HH:MM\" (China time), got '%s'\n", db);
        return CRMCTL_USAGE;
    }
    if (consultant && !dealer) {
        fprintf(stderr, "crmctl tasks list: --consultant needs --dealer (staff ids are per dealer)\n");
        return CRMCTL_USAGE;
    }
    const char *queue = crm_opt(ctl->opts, "queue");
    if ((dealer && !crmctl_id_ok(dealer, "--dealer")) || (consultant && !crmctl_id_ok(consultant, "--consultant")) ||
        (queue && !crmctl_id_ok(queue, "--queue")))
        return CRMCTL_USAGE;
    if (queue && dealer && strcmp(queue, dealer)) {
        fprintf(stderr, "crmctl tasks list: --queue %s and --dealer %s: a dealer's calls are in its own queue; say "
                        "one of them\n", queue, dealer);
        return CRMCTL_USAGE;
    }
    /* --calls or --queue: only the call tasks (a queue holds nothing else). */
    bool only_calls = crm_opt(ctl->opts, "calls") || queue;
    return s_tasks_list(ctl, dealer, consultant, crm_opt(ctl->opts, "state"), INT64_MIN / 2, before, !only_calls, true,
                        queue);
}

int crmctl_tasks_away(crmctl_t *ctl, const char *dealer, const char *consultant, const char *from, const char *to)
{
    int64_t f = crm_day_parse(from), t = crm_day_parse(to);
    if (f == INT64_MIN || t == INT64_MIN)
        return CRMCTL_USAGE;
    printf("# to do before leaving: due from %s to %s\n", from, to);
    return s_tasks_list(ctl, dealer, consultant, NULL, crm_cst_day_start_ms(f), crm_cst_day_start_ms(t + 1), true, false,
                        NULL);
}

/* ------------------------------------------------------------ report daily */

/* The daily report's columns; the counters are named as in crm:report:*
   (field "<staff>|<counter>"). */
static const crm_col_t s_daily_cols[] = {
    {"date", "日期 date", CRM_COL_TEXT},
    {"dealer_id", "经销商 dealer", CRM_COL_ID},
    {"role", "角色 role", CRM_COL_TEXT},
    {"staff_id", "员工 staff", CRM_COL_ID},
    {"due", "应跟进 due", CRM_COL_INT},
    {"done", "已完成 done", CRM_COL_INT},
    {"done_late", "逾期完成 done_late", CRM_COL_INT},
    {"overdue", "逾期 overdue", CRM_COL_INT},
    {"expired", "过期 expired", CRM_COL_INT},
    {"missing_plan", "缺计划 missing_plan", CRM_COL_INT},
    {"released", "释放 released", CRM_COL_INT},
    {"lost_pending", "待批战败 lost_pending", CRM_COL_INT},
    {"manager_id", "经理 manager", CRM_COL_ID},
};
#define S_COUNT0 4 /* the first counter's column */
#define S_NCOLS 8
#define S_ROWS 512

typedef struct {
    char who[128];
    char role[16]; /* consultant, manager */
    char manager[128];
    long long v[S_NCOLS];
} s_row_t;

static s_row_t *s_row(s_row_t *rows, size_t *n, const char *who, const char *role)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(rows[i].who, who) && !strcmp(rows[i].role, role))
            return &rows[i];
    if (*n == S_ROWS)
        return NULL;
    s_row_t *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->who, sizeof r->who, "%s", who);
    snprintf(r->role, sizeof r->role, "%s", role);
    return r;
}

static int s_col(const char *what)
{
    for (int i = 0; i < S_NCOLS; i++)
        if (!strcmp(s_daily_cols[S_COUNT0 + i].name, what))
            return i;
    return -1;
}

static int s_report_dealer(crm_store_t *store, const char *day, const char *dealer, crm_table_t *t)
{
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_REPORT_FMT, day, dealer);
    redisReply *lost = h ? crm_store_cmd(store, "SMEMBERS crm:dealer:%s:lost_pending", dealer) : NULL;
    if (!h || !lost) {
        freeReplyObject(h);
        return CRMCTL_REDIS;
    }
    s_row_t *rows = calloc(S_ROWS, sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; rows && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str, *bar = strrchr(f, '|');
        if (!bar)
            continue;
        char who[128];
        snprintf(who, sizeof who, "%.*s", (int) (bar - f), f);
        int c = s_col(bar + 1);
        s_row_t *r = c >= 0 ? s_row(rows, &n, who, "consultant") : NULL;
        if (r)
            r->v[c] += atoll(h->element[i + 1]->str);
    }
    /* Lost prospects waiting for a manager: counted for whoever asked. */
    for (size_t i = 0; rows && i < lost->elements; i++) {
        redisReply *by = crm_store_cmd(store, "HGET " CRM_KEY_CUST_FMT " lost_by", lost->element[i]->str);
        s_row_t *r = s_row(rows, &n, by && by->type == REDIS_REPLY_STRING ? by->str : "-", "consultant");
        if (r)
            r->v[S_NCOLS - 1]++;
        freeReplyObject(by);
    }
    /* Each manager's row sums the consultants reporting to them. */
    size_t consultants = n;
    for (size_t i = 0; rows && i < consultants; i++) {
        redisReply *m = crm_store_cmd(store, "HGET crm:dealer:%s:staff:%s manager_id", dealer, rows[i].who);
        if (m && m->type == REDIS_REPLY_STRING && m->str[0]) {
            snprintf(rows[i].manager, sizeof rows[i].manager, "%s", m->str);
            s_row_t *r = s_row(rows, &n, m->str, "manager");
            for (int c = 0; r && c < S_NCOLS; c++)
                r->v[c] += rows[i].v[c];
        }
        freeReplyObject(m);
    }
    for (size_t i = 0; rows && i < n; i++) {
        const s_row_t *r = &rows[i];
        crm_table_text(t, day);
        crm_table_text(t, dealer);
        crm_table_text(t, r->role);
        crm_table_text(t, r->who);
        for (int c = 0; c < S_NCOLS; c++)
            crm_table_int(t, r->v[c]);
        crm_table_text(t, r->manager[0] ? r->manager : NULL);
        crm_table_end_row(t);
    }
    free(rows);
    freeReplyObject(h);
    freeReplyObject(lost);
    return CRMCTL_OK;
}

/* The form asked for with --json, --csv (--format); -1 after a message. */
static int s_report_fmt(crmctl_t *ctl, const char *what, crm_table_fmt_t *fmt)
{
    const char *format = crm_opt(ctl->opts, "format");
    if (crm_table_fmt_parse(format, fmt) == 0)
        return 0;
    fprintf(stderr, "crmctl report %s: --format: expected table, json or csv, got '%s'\n", what,
            format);
    return -1;
}

/* ------------------------------------------------------------ sanctions */

typedef struct {
    const char *dealer, *consultant, *manager, *code, *customer, *records, *day;
    int64_t at;
    size_t order;
} s_viol_t;

static int s_viol_cmp(const void *a, const void *b)
{
    const s_viol_t *x = a, *y = b;
    int c = strcmp(x->dealer, y->dealer);
    if (!c)
        c = strcmp(x->consultant, y->consultant);
    if (!c)
        c = x->at < y->at ? -1 : x->at > y->at;
    if (!c)
        c = x->order < y->order ? -1 : x->order > y->order;
    return c;
}

static const crm_col_t s_sanction_cols[] = {
    {"month", "月份 month", CRM_COL_TEXT},
    {"dealer_id", "经销商 dealer", CRM_COL_ID},
    {"consultant_id", "顾问 consultant", CRM_COL_ID},
    {"day", "日期 day", CRM_COL_TEXT},
    {"violation", "违规 violation", CRM_COL_TEXT},
    {"nth", "次数 nth", CRM_COL_INT},
    {"action", "处理 action", CRM_COL_TEXT},
    {"fine_fen", "罚款(元) fine_yuan", CRM_COL_FEN},
    {"manager_id", "经理 manager", CRM_COL_ID},
    {"manager_fen", "经理分担(元) manager_yuan", CRM_COL_FEN},
    {"customer_id", "客户 customer", CRM_COL_ID},
    {"records", "记录 records", CRM_COL_ID},
};

static int s_sanctions(crmctl_t *ctl)
{
    const char *month = crm_opt(ctl->opts, "month");
    char mbuf[8];
    if (!month) {
        char d[16];
        crm_day_format(crm_cst_day(crm_now_ms()), d, sizeof d);
        snprintf(mbuf, sizeof mbuf, "%.7s", d);
        month = mbuf;
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.7s-01", month);
    if (strlen(month) != 7 || crm_day_parse(probe) == INT64_MIN) {
        fprintf(stderr, "crmctl report sanctions: --month: expected YYYY-MM, got '%s'\n", month);
        return CRMCTL_USAGE;
    }
    const char *dealer = crm_opt(ctl->opts, "dealer");
    crm_table_fmt_t fmt;
    if (s_report_fmt(ctl, "sanctions", &fmt) != 0)
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *r = crm_store_cmd(store, "XRANGE " CRM_KEY_VIOLATIONS_FMT " - +", month);
    if (!r)
        return CRMCTL_REDIS;
    s_viol_t *v = calloc(r->elements ? r->elements : 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < r->elements; i++) {
        const redisReply *h = r->element[i]->element[1];
        s_viol_t *x = &v[n];
        x->code = crmctl_or(h, "code");
        if (!crm_sanction_class(x->code))
            continue;
        x->dealer = crmctl_or(h, "dealer_id");
        if (dealer && strcmp(dealer, x->dealer))
            continue;
        x->consultant = crmctl_or(h, "consultant_id");
        x->manager = crmctl_or(h, "manager_id");
        x->customer = crmctl_or(h, "customer_id");
        x->records = crmctl_or(h, "records");
        x->day = crmctl_or(h, "day");
        x->at = atoll(crmctl_or(h, "at"));
        x->order = i;
        n++;
    }
    qsort(v, n, sizeof *v, s_viol_cmp);
    if (fmt == CRM_TABLE_TEXT)
        printf("# sanctions %s\n", month);
    crm_table_t *t = crm_table_new(stdout, fmt, s_sanction_cols,
                                   sizeof s_sanction_cols / sizeof *s_sanction_cols, 0);
    int64_t total = 0, mgr_total = 0;
    int disc = 0, fines = 0;
    for (size_t i = 0; t && i < n; i++) {
        const s_viol_t *x = &v[i];
        if (i == 0 || strcmp(x->dealer, v[i - 1].dealer) || strcmp(x->consultant, v[i - 1].consultant))
            disc = fines = 0;
        bool is_fine = !strcmp(crm_sanction_class(x->code), "fine");
        int nth = is_fine ? ++fines : ++disc;
        int64_t fen;
        const char *action = crm_sanction(x->code, nth, &fen);
        int64_t mgr = *x->manager && strcmp(x->manager, "-") ? fen * CRM_SANCTION_MANAGER_SHARE_PCT / 100 : 0;
        total += fen;
        mgr_total += mgr;
        crm_table_text(t, month);
        crm_table_text(t, x->dealer);
        crm_table_text(t, x->consultant);
        crm_table_text(t, x->day);
        crm_table_text(t, x->code);
        crm_table_int(t, nth);
        crm_table_text(t, action);
        crm_table_int(t, fen);
        crm_table_text(t, x->manager);
        crm_table_int(t, mgr);
        crm_table_text(t, x->customer);
        crm_table_text(t, x->records);
        crm_table_end_row(t);
    }
    int rc = t && crm_table_finish(&t) == 0 ? CRMCTL_OK : CRMCTL_NO;
    if (rc == CRMCTL_OK && fmt == CRM_TABLE_TEXT) {
        char yuan[32], myuan[32];
        crm_yuan_format(total, yuan, sizeof yuan);
        crm_yuan_format(mgr_total, myuan, sizeof myuan);
        printf("# %zu entries; fines %s yuan, borne by managers %s yuan\n", n, yuan, myuan);
    }
    free(v);
    freeReplyObject(r);
    return rc;
}

int crmctl_report(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (!strcmp(sub, "sanctions"))
        return s_sanctions(ctl);
    if (strcmp(sub, "daily")) {
        fprintf(stderr,
                "crmctl report: daily [--date YYYY-MM-DD] [--dealer D] [--json|--csv]\n"
                "               | sanctions [--month YYYY-MM] [--dealer D] [--json|--csv]\n");
        return CRMCTL_USAGE;
    }
    char day[16];
    const char *date = crm_opt(ctl->opts, "date");
    if (date) {
        if (crm_day_parse(date) == INT64_MIN) {
            fprintf(stderr, "crmctl report daily: --date: expected YYYY-MM-DD, got '%s'\n", date);
            return CRMCTL_USAGE;
        }
        snprintf(day, sizeof day, "%s", date);
    } else {
        crm_day_format(crm_cst_day(crm_now_ms()), day, sizeof day);
    }
    const char *dealer = crm_opt(ctl->opts, "dealer");
    if (dealer && !crmctl_id_ok(dealer, "--dealer"))
        return CRMCTL_USAGE;
    crm_table_fmt_t fmt;
    if (s_report_fmt(ctl, "daily", &fmt) != 0)
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *dealers = dealer ? NULL : crm_store_cmd(store, "SORT " CRM_KEY_REPORT_DEALERS_FMT " ALPHA", day);
    if (!dealer && !dealers)
        return CRMCTL_REDIS;
    if (fmt == CRM_TABLE_TEXT)
        printf("# daily report %s (China time)\n", day);
    crm_table_t *t = crm_table_new(stdout, fmt, s_daily_cols,
                                   sizeof s_daily_cols / sizeof *s_daily_cols, 0);
    int rc = t ? CRMCTL_OK : CRMCTL_NO;
    size_t nd = dealer ? 1 : dealers->elements;
    for (size_t i = 0; rc == CRMCTL_OK && i < nd; i++)
        rc = s_report_dealer(store, day, dealer ? dealer : dealers->element[i]->str, t);
    /* Printed even after a Redis error, so json stays one document. */
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    freeReplyObject(dealers);
    return rc;
}
