/*  run: audit runs, ABC runs and retention reports.
 *
 *  audit.run (or the schedule) keeps a run in crm:audit:run:<A>, state
 *  running, and answers its id at once. The run is then done a slice at a
 *  time (--run-slice-ms) between live messages: it reads each dealer's
 *  files (crm:audit:files:<D>, or the period's set) a page at a time, so
 *  its memory is per-dealer counters whatever the number of records; the
 *  records behind each figure go to crm:audit:run:<A>:recs:<D> as they are
 *  read. A run asked for before a crash is done again from the start.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auditor.h"
#include "crm_calendar.h"

#define S_SAMPLES 10
#define S_RUN_ID_SZ 24

typedef struct {
    char id[CRM_ID_NAME_MAX + 1];
    char name[160], region[96];
    int64_t audited, in_error, email_audited, email_err, warnings;
    int64_t unjudged; /* records whose rate rules could not all be run, none failed */
    int64_t failed[CRM_RULE_COUNT], not_run[CRM_RULE_COUNT];
    char samples[CRM_RULE_COUNT][S_SAMPLES][24];
    int nsamples[CRM_RULE_COUNT];
    crm_retention_t ret;
    /* part two's outcome */
    bool best, worst, over;
    int deduction_milli;
} s_dealer_t;

struct aud_run_t {
    char id[S_RUN_ID_SZ], kind[12], period[8], dealer[CRM_ID_NAME_MAX + 1], region[96], as_of[12], by[64];
    bool has_period;
    int64_t today, as_of_day;
    s_dealer_t *d;
    size_t nd, di;
    int phase; /* 0 the dealers' records, 1 the duplicates, 2 finish */
    char cursor[32];
    int failures;
    int64_t started_us;
    int64_t records;
    zhashx_t *dups_seen; /* duplicate values counted (SSCAN may return one twice) */
};

typedef enum { S_AUDIT, S_ABC, S_RETENTION } s_kind_t;

static s_kind_t s_kind(const char *k)
{
    return !strcmp(k, "abc") ? S_ABC : !strcmp(k, "retention") ? S_RETENTION : S_AUDIT;
}

static void s_run_free(aud_run_t **run_p)
{
    if (!*run_p)
        return;
    zhashx_destroy(&(*run_p)->dups_seen);
    free((*run_p)->d);
    free(*run_p);
    *run_p = NULL;
}

void aud_run_forget(aud_t *a) { s_run_free(&a->run); }

/* ------------------------------------------------------------ asking */

/* Keeps a new run; its id into `id`. 0, or -1 (store failure). */
static int s_create(crm_service_t *svc, crm_tx_t *tx, const char *kind, const char *period, const char *dealer,
                    const char *region, const char *as_of, const char *by, char id[S_RUN_ID_SZ])
{
    redisReply *r = crm_store_cmd(crm_service_store(svc), "INCR crm:ids:audit");
    if (!r)
        return -1;
    snprintf(id, S_RUN_ID_SZ, "A%lld", r->integer);
    freeReplyObject(r);
    char key[64], now[24];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_RUN_FMT, id);
    snprintf(now, sizeof now, "%lld", (long long) crm_now_ms());
    const char *argv[] = {"HSET", key, "run_id", id, "kind", kind, "period", period ? period : "all",
                          "dealer", dealer ? dealer : "", "region", region ? region : "", "as_of",
                          as_of ? as_of : "", "ruleset", CRM_AUDIT_RULESET, "requested_by", by ? by : "",
                          "state", "running", "created_ms", now};
    crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_AUDIT_RUNS " %s %s", now, id);
    crm_tx_cmd(tx, "SADD " CRM_KEY_AUDIT_RUNNING " %s", id);
    return 0;
}

static bool s_text_ok(const char *v, size_t max)
{
    if (!v)
        return true;
    size_t n = strlen(v);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) v[i] < 0x20 || v[i] == 0x7f)
            return false;
    return true;
}

crm_handled_t aud_req_run(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_audit_run_t *b = &crm_req_msg(req)->body.audit_run;
    const char *kind = b->kind && *b->kind ? b->kind : "audit";
    if (strcmp(kind, "audit") && strcmp(kind, "abc") && strcmp(kind, "retention"))
        return crm_req_fail(req, "kind", "invalid", "audit, abc or retention");
    crm_period_t p;
    const char *period = b->period && *b->period ? b->period : NULL;
    if (period && strcmp(kind, "retention") && crm_period_parse(period, &p) != 0)
        return crm_req_fail(req, "period", "invalid", "a quarter 2026Q4 (or 2026-Q4) or a month 2026-11");
    if (period && !strcmp(kind, "retention"))
        return crm_req_fail(req, "period", "invalid", "a retention report is as of a day (as_of)");
    const char *dealer = b->dealer_id && *b->dealer_id ? b->dealer_id : NULL;
    if (dealer && !crm_id_valid(CRM_ID_NAME, dealer))
        return crm_req_fail(req, "dealer_id", "bad_id", "not a valid id");
    if (!dealer && !strcmp(kind, "abc"))
        return crm_req_fail(req, "dealer_id", "required", "an ABC run is per dealer");
    const char *region = b->region && *b->region ? b->region : NULL;
    if (!s_text_ok(region, 90))
        return crm_req_fail(req, "region", "invalid", "at most 90 bytes of text");
    if (region && !strcmp(kind, "abc"))
        return crm_req_fail(req, "region", "invalid", "an ABC run is per dealer");
    const char *as_of = b->as_of && *b->as_of ? b->as_of : NULL;
    if (as_of && (strcmp(kind, "retention") || crm_day_parse(as_of) == INT64_MIN))
        return crm_req_fail(req, "as_of", "invalid", "YYYY-MM-DD, for a retention report");
    const char *by = b->requested_by && *b->requested_by ? b->requested_by : "crmctl";
    if (!s_text_ok(by, 60))
        return crm_req_fail(req, "requested_by", "invalid", "at most 60 bytes of text");
    if (dealer) {
        redisReply *r = crm_store_cmd(crm_service_store(svc), "EXISTS " CRM_KEY_DEALER_FMT, dealer);
        if (!r)
            return crm_req_unavailable(req);
        bool known = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        freeReplyObject(r);
        if (!known)
            return crm_req_fail(req, "dealer_id", "unknown", "no such dealer");
    }
    char id[S_RUN_ID_SZ];
    if (s_create(svc, tx, kind, period ? p.name : NULL, dealer, region, as_of, by, id) != 0)
        return crm_req_unavailable(req);
    crm_req_ok(req, id);
    aud_state(svc)->look_for_runs = true;
    crm_info("audit.asked", "run=%s kind=%s period=%s dealer=%s", id, kind, period ? p.name : "all",
             dealer ? dealer : "-");
    return CRM_APPLIED;
}

/* ------------------------------------------------------------ starting */

static int s_dealer_cmp(const void *x, const void *y)
{
    return strcmp(((const s_dealer_t *) x)->id, ((const s_dealer_t *) y)->id);
}

static s_dealer_t *s_find(aud_run_t *run, const char *id)
{
    s_dealer_t key;
    snprintf(key.id, sizeof key.id, "%s", id);
    return bsearch(&key, run->d, run->nd, sizeof *run->d, s_dealer_cmp);
}

/* Loads run `id` and the dealers it covers; 1 started, 0 nothing to do
   (it was finished or is unreadable: taken off the running set), -1 store. */
static int s_begin(crm_service_t *svc, const char *id, aud_run_t **out)
{
    crm_store_t *store = crm_service_store(svc);
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_AUDIT_RUN_FMT, id);
    if (!h)
        return -1;
    const char *state = crm_reply_field(h, "state");
    if (!state || strcmp(state, "running")) {
        freeReplyObject(h);
        redisReply *r = crm_store_cmd(store, "SREM " CRM_KEY_AUDIT_RUNNING " %s", id);
        if (r)
            freeReplyObject(r);
        return 0;
    }
    aud_run_t *run = calloc(1, sizeof *run);
    if (!run) {
        freeReplyObject(h);
        return -1;
    }
    snprintf(run->id, sizeof run->id, "%s", id);
    snprintf(run->kind, sizeof run->kind, "%s", crm_reply_field_or(h, "kind", "audit"));
    const char *period = crm_reply_field_or(h, "period", "all");
    crm_period_t p;
    if (strcmp(period, "all") && crm_period_parse(period, &p) == 0) {
        run->has_period = true;
        snprintf(run->period, sizeof run->period, "%s", p.name);
    }
    snprintf(run->dealer, sizeof run->dealer, "%s", crm_reply_field_or(h, "dealer", ""));
    snprintf(run->region, sizeof run->region, "%s", crm_reply_field_or(h, "region", ""));
    snprintf(run->as_of, sizeof run->as_of, "%s", crm_reply_field_or(h, "as_of", ""));
    snprintf(run->by, sizeof run->by, "%s", crm_reply_field_or(h, "requested_by", ""));
    freeReplyObject(h);
    run->today = crm_cst_day(crm_now_ms());
    run->as_of_day = run->as_of[0] ? crm_day_parse(run->as_of) : run->today;
    if (!run->as_of[0])
        crm_day_format(run->as_of_day, run->as_of, sizeof run->as_of);
    snprintf(run->cursor, sizeof run->cursor, "0");
    run->started_us = crm_mono_us();

    /* the dealers: one, or every registered dealer (of the region) */
    redisReply *ds = run->dealer[0] ? NULL : crm_store_cmd(store, "SMEMBERS " CRM_KEY_DEALERS);
    if (!run->dealer[0] && !ds) {
        s_run_free(&run);
        return -1;
    }
    size_t n = run->dealer[0] ? 1 : ds->type == REDIS_REPLY_ARRAY ? ds->elements : 0;
    run->d = calloc(n ? n : 1, sizeof *run->d);
    if (!run->d) {
        if (ds)
            freeReplyObject(ds);
        s_run_free(&run);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *d = run->dealer[0] ? run->dealer : ds->element[i]->str;
        if (d && crm_id_valid(CRM_ID_NAME, d))
            snprintf(run->d[run->nd++].id, sizeof run->d[0].id, "%s", d);
    }
    if (ds)
        freeReplyObject(ds);
    qsort(run->d, run->nd, sizeof *run->d, s_dealer_cmp);
    crm_tx_t *rd = crm_tx_new("auditor", 0);
    if (!rd) {
        s_run_free(&run);
        return -1;
    }
    for (size_t i = 0; i < run->nd; i++)
        crm_tx_cmd(rd, "HMGET " CRM_KEY_DEALER_FMT " name region", run->d[i].id);
    if (run->nd && crm_store_pipeline(store, rd) != 0) {
        crm_tx_destroy(&rd);
        s_run_free(&run);
        return -1;
    }
    size_t keep = 0;
    for (size_t i = 0; i < run->nd; i++) {
        const redisReply *r = crm_tx_result(rd, (int) i);
        const char *name = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[0]->str : NULL;
        const char *region = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->str : NULL;
        if (run->region[0] && (!region || strcmp(region, run->region)))
            continue;
        s_dealer_t *d = &run->d[keep++];
        if (d != &run->d[i])
            *d = run->d[i];
        snprintf(d->name, sizeof d->name, "%s", name ? name : "");
        snprintf(d->region, sizeof d->region, "%s", region ? region : "");
    }
    run->nd = keep;
    crm_tx_destroy(&rd);
    /* a run done again after a crash starts from a clean slate */
    crm_tx_t *tx = crm_service_tx(svc);
    for (size_t i = 0; i < run->nd; i++)
        crm_tx_cmd(tx, "DEL " CRM_KEY_AUDIT_RUN_RECS_FMT, run->id, run->d[i].id);
    crm_tx_cmd(tx, "DEL " CRM_KEY_AUDIT_RUN_DEALERS_FMT " " CRM_KEY_AUDIT_RUN_ROWS_FMT, run->id, run->id);
    if (crm_service_commit(svc, tx) != 0) {
        s_run_free(&run);
        return -1;
    }
    crm_info("audit.started", "run=%s kind=%s period=%s dealers=%zu", run->id, run->kind,
             run->has_period ? run->period : "all", run->nd);
    *out = run;
    return 1;
}

/* ------------------------------------------------------------ reading */

static void s_sample(s_dealer_t *d, int r, const char *cid)
{
    if (d->nsamples[r] < S_SAMPLES)
        snprintf(d->samples[r][d->nsamples[r]++], sizeof d->samples[0][0], "%s", cid);
}

/* One record's evaluation ("<ver> <fail> <not_run> <expected day>"). */
static void s_account(aud_t *a, aud_run_t *run, s_dealer_t *d, const char *cid, const char *summary,
                      crm_tx_t *recs, int64_t *records)
{
    char ver[32] = "";
    unsigned long long fail = 0, notrun = 0;
    long long epd = -1;
    if (!summary || sscanf(summary, "%31s %llx %llx %lld", ver, &fail, &notrun, &epd) < 3 ||
        strcmp(ver, CRM_AUDIT_RULESET)) {
        /* evaluated by other rules (or never): nothing of it is known */
        fail = 0;
        notrun = CRM_AUDIT_ALL_MASK & ~CRM_AUDIT_DUP_MASK;
    } else if (epd >= 0 && epd < run->today) {
        /* a date passes with time, not with a change of the record */
        fail |= CRM_RULE_BIT(CRM_RULE_expected_passed);
    }
    (*records)++;
    /* a record whose rate rules were not all run is in error when one of
       them failed, and otherwise not judged: never counted as passing */
    if ((fail & a->rate_mask) || !(notrun & a->rate_mask)) {
        d->audited++;
        d->in_error += (fail & a->rate_mask) != 0;
    } else {
        d->unjudged++;
    }
    if (!(notrun & CRM_AUDIT_EMAIL_MASK)) {
        d->email_audited++;
        d->email_err += (fail & CRM_AUDIT_EMAIL_MASK) != 0;
    }
    if (fail & ~(CRM_AUDIT_CONTACT_MASK | CRM_AUDIT_EMAIL_MASK | CRM_AUDIT_DUP_MASK))
        d->warnings++;
    for (int r = 0; r < CRM_RULE_COUNT; r++) {
        if (fail & CRM_RULE_BIT(r)) {
            d->failed[r]++;
            s_sample(d, r, cid);
        }
        if (notrun & CRM_RULE_BIT(r))
            d->not_run[r]++;
    }
    if (fail || notrun) {
        char line[96];
        snprintf(line, sizeof line, "%s %llx %llx", cid, fail, notrun);
        crm_tx_cmd(recs, "RPUSH " CRM_KEY_AUDIT_RUN_RECS_FMT " %s", run->id, d->id, line);
    }
}

/* One page of the current dealer's files. 1 more to do, 0 done with the
   dealer, -1 store failure. */
static int s_page(aud_t *a, crm_store_t *store, aud_run_t *run)
{
    /* counted into a copy, kept only when the page is done: a page read
       again after a failure counts once */
    s_dealer_t *d = malloc(sizeof *d);
    if (!d)
        return -1;
    *d = run->d[run->di];
    int64_t records = run->records;
    s_kind_t kind = s_kind(run->kind);
    redisReply *scan;
    if (kind == S_RETENTION)
        scan = crm_store_cmd(store, "HSCAN " CRM_KEY_AUDIT_CARS_FMT " %s COUNT %d", d->id, run->cursor, a->scan_count);
    else if (run->has_period)
        scan = crm_store_cmd(store, "SSCAN " CRM_KEY_AUDIT_PERIOD_FMT " %s COUNT %d", run->period, d->id, run->cursor,
                             a->scan_count);
    else
        scan = crm_store_cmd(store, "HSCAN " CRM_KEY_AUDIT_FILES_FMT " %s COUNT %d", d->id, run->cursor,
                             a->scan_count);
    if (!scan) {
        free(d);
        return -1;
    }
    if (scan->type != REDIS_REPLY_ARRAY || scan->elements != 2 || scan->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(scan);
        free(d);
        return 0; /* not a set or hash (nothing filed): done */
    }
    const redisReply *items = scan->element[1];
    int rc = 1;
    crm_tx_t *recs = crm_tx_new("auditor", 0), *look = NULL;
    if (!recs) {
        freeReplyObject(scan);
        free(d);
        return -1;
    }
    if (kind == S_RETENTION) {
        for (size_t i = 0; i + 1 < items->elements; i += 2) {
            char sale[16] = "", last[16] = "";
            long long visits = 0;
            const char *v = items->element[i + 1]->str;
            if (!v || sscanf(v, "%15[^|]|%*[^|]|%lld|%15s", sale, &visits, last) < 2)
                continue;
            int64_t sd = crm_day_parse(sale), ld = last[0] && strcmp(last, "-") ? crm_day_parse(last) : INT64_MIN;
            if (sd != INT64_MIN)
                crm_retention_add(&d->ret, run->as_of_day, sd, ld == INT64_MIN ? INT64_MIN : ld, visits);
            records++;
        }
    } else if (run->has_period) {
        if (items->elements) {
            look = crm_tx_new("auditor", 0);
            const char **argv = look ? calloc(items->elements + 2, sizeof *argv) : NULL;
            char key[CRM_ID_NAME_MAX + 32];
            snprintf(key, sizeof key, CRM_KEY_AUDIT_FILES_FMT, d->id);
            if (!argv) {
                rc = -1;
                goto out;
            }
            argv[0] = "HMGET", argv[1] = key;
            for (size_t i = 0; i < items->elements; i++)
                argv[2 + i] = items->element[i]->str ? items->element[i]->str : "";
            crm_tx_cmdargv(look, (int) items->elements + 2, argv, NULL);
            free(argv);
            if (crm_store_pipeline(store, look) != 0) {
                rc = -1;
                goto out;
            }
            const redisReply *vals = crm_tx_result(look, 0);
            for (size_t i = 0; i < items->elements; i++) {
                const char *cid = items->element[i]->str;
                const char *v = vals && vals->type == REDIS_REPLY_ARRAY && i < vals->elements ? vals->element[i]->str
                                                                                              : NULL;
                if (cid)
                    s_account(a, run, d, cid, v, recs, &records);
            }
        }
    } else {
        for (size_t i = 0; i + 1 < items->elements; i += 2)
            if (items->element[i]->str)
                s_account(a, run, d, items->element[i]->str, items->element[i + 1]->str, recs, &records);
    }
    if (crm_tx_size(recs) && crm_store_commit(store, recs) != 0) {
        rc = -1;
        goto out;
    }
    run->d[run->di] = *d;
    run->records = records;
    snprintf(run->cursor, sizeof run->cursor, "%s", scan->element[0]->str ? scan->element[0]->str : "0");
    if (!strcmp(run->cursor, "0"))
        rc = 0;
out:
    free(d);
    crm_tx_destroy(&look);
    crm_tx_destroy(&recs);
    freeReplyObject(scan);
    return rc;
}

/* One page of the duplicates: values held by two customers or more
   (crm:audit:dups). For each value, its holders and the dealers whose
   files they are: a holder filed by D has a duplicate within D when
   another holder is filed by D too, across dealers when another holder is
   filed by another dealer. Linear in the holders; counted into copies of
   the dealers' counters, kept only when the page is done. A value SSCAN
   returns twice (the set changes under it) counts once. 1 more, 0 done,
   -1 store failure. */
typedef struct {
    char cid[CRM_ID_NAME_MAX + 1];
    char dealers[512];
    size_t key;
} s_holder_t;

static void s_count_drop(void **p)
{
    free(*p);
    *p = NULL;
}

static size_t s_ndealers(const char *list)
{
    size_t n = 0;
    char did[CRM_ID_NAME_MAX + 1];
    for (const char *q = list; (q = aud_next_dealer(q, did));)
        n++;
    return n;
}

static int s_dups(aud_run_t *run, crm_store_t *store)
{
    if (!run->dups_seen && !(run->dups_seen = zhashx_new()))
        return -1;
    redisReply *scan = crm_store_cmd(store, "SSCAN " CRM_KEY_AUDIT_DUPS " %s COUNT 200", run->cursor);
    if (!scan)
        return -1;
    if (scan->type != REDIS_REPLY_ARRAY || scan->elements != 2 || scan->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(scan);
        return 0;
    }
    const redisReply *keys = scan->element[1];
    int rc = -1;
    crm_tx_t *holders = crm_tx_new("auditor", 0), *who = crm_tx_new("auditor", 0), *inp = crm_tx_new("auditor", 0),
             *recs = crm_tx_new("auditor", 0);
    s_holder_t *h = NULL;
    size_t nh = 0, cap = 0;
    s_dealer_t *copy = malloc((run->nd ? run->nd : 1) * sizeof *copy);
    bool *fresh = calloc(keys->elements ? keys->elements : 1, sizeof *fresh);
    if (!holders || !who || !inp || !recs || !copy || !fresh)
        goto out;
    memcpy(copy, run->d, run->nd * sizeof *copy);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        fresh[i] = k && !zhashx_lookup(run->dups_seen, k);
        if (fresh[i])
            crm_tx_cmd(holders, "HGET " CRM_KEY_AUDIT_KEYS_FMT " %s", aud_key_bucket(k), k);
    }
    if (crm_tx_size(holders) && crm_store_pipeline(store, holders) != 0)
        goto out;
    int hi = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        if (!fresh[i])
            continue;
        const redisReply *v = crm_tx_result(holders, hi++);
        for (const char *p = v && v->str ? v->str : ""; *p;) {
            size_t n = strcspn(p, " ");
            if (n && n <= CRM_ID_NAME_MAX) {
                if (nh == cap) {
                    size_t nc = cap ? cap * 2 : 256;
                    s_holder_t *g = realloc(h, nc * sizeof *g);
                    if (!g)
                        goto out;
                    h = g, cap = nc;
                }
                snprintf(h[nh].cid, sizeof h[nh].cid, "%.*s", (int) n, p);
                h[nh].dealers[0] = 0;
                h[nh++].key = i;
            }
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    for (size_t j = 0; j < nh; j++)
        crm_tx_cmd(who, "HGET " CRM_KEY_AUDIT_REC_FMT " dealers", h[j].cid);
    if (nh && crm_store_pipeline(store, who) != 0)
        goto out;
    for (size_t j = 0; j < nh; j++) {
        const redisReply *dl = crm_tx_result(who, (int) j);
        snprintf(h[j].dealers, sizeof h[j].dealers, "%s", dl && dl->str ? dl->str : "");
    }
    /* in the run's period: one pipeline for every (holder, dealer of the run) */
    if (run->has_period) {
        char did[CRM_ID_NAME_MAX + 1];
        for (size_t j = 0; j < nh; j++)
            for (const char *p = h[j].dealers; (p = aud_next_dealer(p, did));)
                if (did[0] && s_find(run, did))
                    crm_tx_cmd(inp, "SISMEMBER " CRM_KEY_AUDIT_PERIOD_FMT " %s", run->period, did, h[j].cid);
        if (crm_tx_size(inp) && crm_store_pipeline(store, inp) != 0)
            goto out;
    }
    int pi = 0;
    for (size_t g0 = 0; g0 < nh;) {
        size_t g1 = g0;
        while (g1 < nh && h[g1].key == h[g0].key)
            g1++;
        const char *key = keys->element[h[g0].key]->str;
        bool mobile = key[0] == 'm';
        /* per dealer: holders filed by it, and those filed by it alone */
        size_t filed = 0;
        zhashx_t *per = zhashx_new();
        if (!per)
            goto out;
        zhashx_set_destructor(per, s_count_drop);
        for (size_t j = g0; j < g1; j++) {
            size_t mine = s_ndealers(h[j].dealers);
            filed += mine > 0;
            char did[CRM_ID_NAME_MAX + 1];
            for (const char *p = h[j].dealers; (p = aud_next_dealer(p, did));) {
                if (!did[0])
                    continue;
                size_t *c = zhashx_lookup(per, did);
                if (!c && (c = calloc(2, sizeof *c)) && zhashx_insert(per, did, c) != 0) {
                    free(c);
                    c = NULL;
                }
                if (c)
                    c[0]++, c[1] += mine == 1;
            }
        }
        for (size_t j = g0; j < g1; j++) {
            size_t mine = s_ndealers(h[j].dealers);
            char did[CRM_ID_NAME_MAX + 1];
            for (const char *p = h[j].dealers; (p = aud_next_dealer(p, did));) {
                s_dealer_t *d0 = did[0] ? s_find(run, did) : NULL;
                const size_t *c = did[0] ? zhashx_lookup(per, did) : NULL;
                if (!d0 || !c)
                    continue;
                if (run->has_period) {
                    const redisReply *m = crm_tx_result(inp, pi++);
                    if (!m || m->type != REDIS_REPLY_INTEGER || m->integer != 1)
                        continue;
                }
                s_dealer_t *d = &copy[d0 - run->d];
                size_t same = c[0] - 1;                             /* others filed by this dealer */
                size_t others = filed - c[1] - (mine >= 2 ? 1 : 0); /* others filed by another one */
                int rules[2] = {same ? (mobile ? CRM_RULE_dup_mobile : CRM_RULE_dup_id) : -1,
                                others ? (mobile ? CRM_RULE_dup_mobile_other : CRM_RULE_dup_id_other) : -1};
                for (int r = 0; r < 2; r++) {
                    if (rules[r] < 0)
                        continue;
                    d->failed[rules[r]]++;
                    s_sample(d, rules[r], h[j].cid);
                    char line[96];
                    snprintf(line, sizeof line, "%s %llx 0", h[j].cid, (unsigned long long) CRM_RULE_BIT(rules[r]));
                    crm_tx_cmd(recs, "RPUSH " CRM_KEY_AUDIT_RUN_RECS_FMT " %s", run->id, d->id, line);
                }
            }
        }
        zhashx_destroy(&per);
        g0 = g1;
    }
    if (crm_tx_size(recs) && crm_store_commit(store, recs) != 0)
        goto out;
    memcpy(run->d, copy, run->nd * sizeof *copy);
    for (size_t i = 0; i < keys->elements; i++)
        if (fresh[i])
            zhashx_insert(run->dups_seen, keys->element[i]->str, (void *) 1);
    snprintf(run->cursor, sizeof run->cursor, "%s", scan->element[0]->str ? scan->element[0]->str : "0");
    rc = strcmp(run->cursor, "0") ? 1 : 0;
out:
    free(h);
    free(copy);
    free(fresh);
    crm_tx_destroy(&recs);
    crm_tx_destroy(&inp);
    crm_tx_destroy(&who);
    crm_tx_destroy(&holders);
    freeReplyObject(scan);
    return rc;
}

/* ------------------------------------------------------------ finishing */

static int64_t s_ppm(int64_t num, int64_t den) { return den > 0 ? (num * 2000000 + den) / (2 * den) : 0; }

/* a/b against c/d, exactly: <0, 0, >0 */
static int s_rate_cmp(int64_t a, int64_t b, int64_t c, int64_t d)
{
    __int128 l = (__int128) a * d, r = (__int128) c * b;
    return l < r ? -1 : l > r;
}

static json_t *s_dealer_json(const aud_run_t *run, const s_dealer_t *d)
{
    json_t *o = json_object(), *rules = json_object(), *why = json_array();
    json_object_set_new(o, "dealer_id", json_string(d->id));
    json_object_set_new(o, "name", json_string(d->name));
    json_object_set_new(o, "region", json_string(d->region));
    if (s_kind(run->kind) == S_RETENTION) {
        json_t *ages = json_array();
        for (int b = 0; b <= CRM_RETENTION_AGES; b++) {
            const crm_retention_cell_t *c = b < CRM_RETENTION_AGES ? &d->ret.age[b] : &d->ret.total;
            json_t *row = json_object();
            json_object_set_new(row, "age", json_string(b < CRM_RETENTION_AGES ? crm_retention_label(b) : "total"));
            json_object_set_new(row, "sold", json_integer(c->sold));
            json_object_set_new(row, "active", json_integer(c->active));
            json_object_set_new(row, "came1", json_integer(c->came[0]));
            json_object_set_new(row, "came2", json_integer(c->came[1]));
            json_object_set_new(row, "came3", json_integer(c->came[2]));
            json_array_append_new(ages, row);
        }
        json_object_set_new(o, "ages", ages);
        json_decref(rules);
        json_decref(why);
        return o;
    }
    json_object_set_new(o, "audited", json_integer(d->audited));
    json_object_set_new(o, "in_error", json_integer(d->in_error));
    json_object_set_new(o, "email_audited", json_integer(d->email_audited));
    json_object_set_new(o, "email_in_error", json_integer(d->email_err));
    json_object_set_new(o, "warnings", json_integer(d->warnings));
    json_object_set_new(o, "unjudged", json_integer(d->unjudged));
    json_object_set_new(o, "deduction_milli", json_integer(d->deduction_milli));
    if (d->worst && d->deduction_milli)
        json_array_append_new(why, json_string("worst_in_region"));
    if (d->over)
        json_array_append_new(why, json_string("at_or_above_90"));
    json_object_set_new(o, "deduction_reasons", why);
    json_object_set_new(o, "region_best", json_boolean(d->best));
    json_object_set_new(o, "region_worst", json_boolean(d->worst));
    for (int r = 0; r < CRM_RULE_COUNT; r++) {
        json_t *x = json_object(), *smp = json_array();
        json_object_set_new(x, "failed", json_integer(d->failed[r]));
        json_object_set_new(x, "not_run", json_integer(d->not_run[r]));
        for (int k = 0; k < d->nsamples[r]; k++)
            json_array_append_new(smp, json_string(d->samples[r][k]));
        json_object_set_new(x, "samples", smp);
        json_object_set_new(rules, crm_rule_name((crm_rule_t) r), x);
    }
    json_object_set_new(o, "rules", rules);
    return o;
}

/* Part two: within each sales region the worst dealer (every one at the
   worst rate; none when all are equal or the region has one dealer) and
   every dealer at or above the threshold lose the points, once. */
static json_t *s_regions(aud_t *a, aud_run_t *run)
{
    json_t *out = json_array();
    /* a one-dealer run cannot tell the worst of its region: not run */
    bool *seen = run->dealer[0] ? NULL : calloc(run->nd + 1, sizeof *seen);
    for (size_t i = 0; seen && i < run->nd; i++) {
        if (seen[i])
            continue;
        const char *region = run->d[i].region;
        s_dealer_t *best = NULL, *worst = NULL;
        int n = 0;
        for (size_t j = i; j < run->nd; j++) {
            s_dealer_t *d = &run->d[j];
            if (strcmp(d->region, region))
                continue;
            seen[j] = true;
            if (!d->email_audited)
                continue;
            n++;
            if (!best || s_rate_cmp(d->email_err, d->email_audited, best->email_err, best->email_audited) < 0)
                best = d;
            if (!worst || s_rate_cmp(d->email_err, d->email_audited, worst->email_err, worst->email_audited) > 0)
                worst = d;
        }
        if (!n || !region[0])
            continue;
        bool differ = s_rate_cmp(worst->email_err, worst->email_audited, best->email_err, best->email_audited) > 0;
        for (size_t j = i; j < run->nd; j++) {
            s_dealer_t *d = &run->d[j];
            if (strcmp(d->region, region) || !d->email_audited)
                continue;
            d->best = !s_rate_cmp(d->email_err, d->email_audited, best->email_err, best->email_audited);
            d->worst = n >= 2 && differ &&
                       !s_rate_cmp(d->email_err, d->email_audited, worst->email_err, worst->email_audited);
            if (d->worst)
                d->deduction_milli = a->deduct_milli;
        }
        json_t *r = json_object();
        json_object_set_new(r, "region", json_string(region));
        json_object_set_new(r, "dealers", json_integer(n));
        json_object_set_new(r, "best", json_string(best->id));
        json_object_set_new(r, "best_audited", json_integer(best->email_audited));
        json_object_set_new(r, "best_email_in_error", json_integer(best->email_err));
        json_object_set_new(r, "worst", json_string(worst->id));
        json_object_set_new(r, "worst_audited", json_integer(worst->email_audited));
        json_object_set_new(r, "worst_email_in_error", json_integer(worst->email_err));
        json_array_append_new(out, r);
    }
    for (size_t i = 0; i < run->nd; i++) {
        s_dealer_t *d = &run->d[i];
        d->over = d->email_audited && d->email_err * 100 >= (int64_t) a->deduct_rate_pct * d->email_audited;
        if (d->over)
            d->deduction_milli = a->deduct_milli;
    }
    free(seen);
    return out;
}

static void s_hset_i64(crm_tx_t *tx, const char *key, const char *field, int64_t v)
{
    crm_tx_cmd(tx, "HSET %s %s %lld", key, field, (long long) v);
}

/* The run's end: figures kept, the earlier run of its scope superseded,
   its events emitted; one transaction. */
static int s_finish(crm_service_t *svc, aud_run_t *run)
{
    aud_t *a = aud_state(svc);
    s_kind_t kind = s_kind(run->kind);
    char key[64], dkey[80], scope[256], now[24];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_RUN_FMT, run->id);
    snprintf(dkey, sizeof dkey, CRM_KEY_AUDIT_RUN_DEALERS_FMT, run->id);
    snprintf(scope, sizeof scope, CRM_KEY_AUDIT_SCOPE_FMT "%s|%s|%s|%s", "", run->kind,
             run->has_period ? run->period : "all", run->dealer[0] ? run->dealer : "-",
             run->region[0] ? run->region : "-");
    snprintf(now, sizeof now, "%lld", (long long) crm_now_ms());
    redisReply *prev = crm_store_cmd(crm_service_store(svc), "GET %s", scope);
    if (!prev)
        return -1;
    char earlier[S_RUN_ID_SZ] = "";
    if (prev->type == REDIS_REPLY_STRING && strcmp(prev->str, run->id))
        snprintf(earlier, sizeof earlier, "%s", prev->str);
    freeReplyObject(prev);

    crm_tx_t *tx = crm_service_tx(svc);
    json_t *regions = kind == S_AUDIT ? s_regions(a, run) : NULL;
    int64_t n = 0, at_zero = 0, hi = 0, lo = 0, audited = 0, in_error = 0, sold = 0, active = 0;
    __int128 sum_ppm_num = 0; /* sum of in_error * 1e6 / audited, as exact fractions is too much: ppm each */
    uint64_t not_run = 0;
    for (size_t i = 0; i < run->nd; i++) {
        s_dealer_t *d = &run->d[i];
        json_t *j = s_dealer_json(run, d);
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (text)
            crm_tx_cmd(tx, "HSET %s %s %s", dkey, d->id, text);
        free(text);
        sold += d->ret.total.sold;
        active += d->ret.total.active;
        if (kind != S_AUDIT)
            continue;
        crm_tx_cmd(tx, "RPUSH " CRM_KEY_AUDIT_DEALER_RUNS_FMT " %s", d->id, run->id);
        for (int r = 0; r < CRM_RULE_COUNT; r++)
            if (d->not_run[r])
                not_run |= CRM_RULE_BIT(r);
        audited += d->audited;
        in_error += d->in_error;
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_audit_report);
        CRM_SET_STR(&ev, audit_report, report_id, run->id);
        CRM_SET_STR(&ev, audit_report, run_id, run->id);
        CRM_SET_STR(&ev, audit_report, dealer_id, d->id);
        CRM_SET_STR(&ev, audit_report, period, run->has_period ? run->period : "all");
        CRM_SET_STR(&ev, audit_report, ruleset, CRM_AUDIT_RULESET);
        CRM_SET_STR(&ev, audit_report, region, d->region[0] ? d->region : NULL);
        CRM_SET_I64(&ev, audit_report, audited, d->audited);
        CRM_SET_I64(&ev, audit_report, in_error, d->in_error);
        CRM_SET_I64(&ev, audit_report, error_rate_ppm, s_ppm(d->in_error, d->audited));
        CRM_SET_I64(&ev, audit_report, email_audited, d->email_audited);
        CRM_SET_I64(&ev, audit_report, email_in_error, d->email_err);
        CRM_SET_I64(&ev, audit_report, email_rate_ppm, s_ppm(d->email_err, d->email_audited));
        CRM_SET_I64(&ev, audit_report, deduction_milli, d->deduction_milli);
        CRM_SET_I64(&ev, audit_report, warnings, d->warnings);
        if (d->worst && d->deduction_milli)
            crm_strs_push(&ev.body.audit_report.deduction_reasons, "worst_in_region");
        if (d->over)
            crm_strs_push(&ev.body.audit_report.deduction_reasons, "at_or_above_90");
        ev.body.audit_report.has.deduction_reasons = ev.body.audit_report.deduction_reasons.n > 0;
        for (int r = 0; r < CRM_RULE_COUNT; r++)
            if (d->not_run[r])
                crm_strs_push(&ev.body.audit_report.not_run, crm_rule_name((crm_rule_t) r));
        if (run->dealer[0])
            crm_strs_push(&ev.body.audit_report.not_run, "worst_in_region");
        ev.body.audit_report.has.not_run = ev.body.audit_report.not_run.n > 0;
        CRM_SET_STR(&ev, audit_report, supersedes, earlier[0] ? earlier : NULL);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        if (!d->audited)
            continue;
        int64_t ppm = s_ppm(d->in_error, d->audited);
        if (!n || ppm > hi)
            hi = ppm;
        if (!n || ppm < lo)
            lo = ppm;
        n++;
        at_zero += d->in_error == 0;
        sum_ppm_num += ppm;
    }
    int64_t avg = n ? (int64_t) ((sum_ppm_num * 2 + n) / (2 * n)) : 0;
    char notrun_list[1024] = "";
    for (int r = 0; r < CRM_RULE_COUNT; r++)
        if (not_run & CRM_RULE_BIT(r))
            snprintf(notrun_list + strlen(notrun_list), sizeof notrun_list - strlen(notrun_list), "%s%s",
                     notrun_list[0] ? "," : "", crm_rule_name((crm_rule_t) r));
    crm_tx_cmd(tx, "HSET %s state done finished_ms %s not_run %s", key, now, notrun_list);
    s_hset_i64(tx, key, "dealers", (int64_t) run->nd);
    s_hset_i64(tx, key, "records", run->records);
    if (kind == S_AUDIT) {
        char *rj = json_dumps(regions, JSON_COMPACT);
        crm_tx_cmd(tx, "HSET %s regions %s region_comparison %s", key, rj ? rj : "[]",
                   run->dealer[0] ? "not_run" : "done");
        free(rj);
        s_hset_i64(tx, key, "audited", audited);
        s_hset_i64(tx, key, "in_error", in_error);
        s_hset_i64(tx, key, "highest_ppm", hi);
        s_hset_i64(tx, key, "lowest_ppm", lo);
        s_hset_i64(tx, key, "average_ppm", avg);
        s_hset_i64(tx, key, "dealers_at_zero", at_zero);
        s_hset_i64(tx, key, "dealers_audited", n);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_audit_report);
        CRM_SET_STR(&ev, audit_report, report_id, run->id);
        CRM_SET_STR(&ev, audit_report, run_id, run->id);
        CRM_SET_STR(&ev, audit_report, period, run->has_period ? run->period : "all");
        CRM_SET_STR(&ev, audit_report, ruleset, CRM_AUDIT_RULESET);
        CRM_SET_STR(&ev, audit_report, region, run->region[0] ? run->region : NULL);
        CRM_SET_I64(&ev, audit_report, audited, audited);
        CRM_SET_I64(&ev, audit_report, in_error, in_error);
        CRM_SET_I64(&ev, audit_report, error_rate_ppm, s_ppm(in_error, audited));
        CRM_SET_I64(&ev, audit_report, dealers, n);
        CRM_SET_I64(&ev, audit_report, dealers_at_zero, at_zero);
        CRM_SET_I64(&ev, audit_report, highest_ppm, hi);
        CRM_SET_I64(&ev, audit_report, lowest_ppm, lo);
        CRM_SET_I64(&ev, audit_report, average_ppm, avg);
        CRM_SET_STR(&ev, audit_report, supersedes, earlier[0] ? earlier : NULL);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
    } else if (kind == S_RETENTION) {
        s_hset_i64(tx, key, "sold", sold);
        s_hset_i64(tx, key, "active", active);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_audit_retention);
        CRM_SET_STR(&ev, audit_retention, run_id, run->id);
        CRM_SET_STR(&ev, audit_retention, as_of, run->as_of);
        CRM_SET_I64(&ev, audit_retention, dealers, (int64_t) run->nd);
        CRM_SET_I64(&ev, audit_retention, sold, sold);
        CRM_SET_I64(&ev, audit_retention, active, active);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        crm_tx_cmd(tx, "HSET %s as_of %s", key, run->as_of);
    }
    json_decref(regions);
    if (earlier[0]) {
        crm_tx_cmd(tx, "HSET " CRM_KEY_AUDIT_RUN_FMT " superseded_by %s", earlier, run->id);
        crm_tx_cmd(tx, "HSET %s supersedes %s", key, earlier);
    }
    crm_tx_cmd(tx, "SET %s %s", scope, run->id);
    crm_tx_cmd(tx, "SREM " CRM_KEY_AUDIT_RUNNING " %s", run->id);
    int rc = crm_service_commit(svc, tx);
    if (rc == 0)
        crm_info("audit.done", "run=%s kind=%s period=%s dealers=%zu records=%lld audited=%lld in_error=%lld ms=%lld%s%s",
                 run->id, run->kind, run->has_period ? run->period : "all", run->nd, (long long) run->records,
                 (long long) audited, (long long) in_error, (long long) ((crm_mono_us() - run->started_us) / 1000),
                 earlier[0] ? " supersedes=" : "", earlier);
    return rc;
}

/* ------------------------------------------------------------ ABC */

typedef struct {
    crm_abc_row_t *rows;
    size_t n, cap;
    zhashx_t *at; /* customer id -> index + 1 */
} s_abc_t;

static crm_abc_row_t *s_abc_row(s_abc_t *x, const char *cid)
{
    size_t i = (size_t) (uintptr_t) zhashx_lookup(x->at, cid);
    if (i)
        return &x->rows[i - 1];
    if (strlen(cid) >= sizeof x->rows[0].id)
        return NULL;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        crm_abc_row_t *r = realloc(x->rows, cap * sizeof *r);
        if (!r)
            return NULL;
        x->rows = r, x->cap = cap;
    }
    crm_abc_row_t *r = &x->rows[x->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", cid);
    zhashx_insert(x->at, cid, (void *) (uintptr_t) x->n);
    return r;
}

/* A dealer's customers by amount paid in the period (all months when
   none), classed; the moves against the dealer's last run. */
static int s_abc(crm_service_t *svc, aud_run_t *run)
{
    aud_t *a = aud_state(svc);
    crm_store_t *store = crm_service_store(svc);
    const char *dealer = run->dealer;
    s_abc_t x = {.at = zhashx_new()};
    int rc = -1;
    redisReply *months = NULL, *last = NULL;
    if (!x.at)
        return -1;
    char list[3][8];
    size_t nm = 0;
    if (run->has_period) {
        crm_period_t p, ms[3];
        crm_period_parse(run->period, &p);
        nm = crm_period_months(&p, ms);
        for (size_t i = 0; i < nm; i++)
            snprintf(list[i], sizeof list[i], "%s", ms[i].name);
    } else if (!(months = crm_store_cmd(store, "SMEMBERS " CRM_KEY_AUDIT_PAID_MONTHS_FMT, dealer))) {
        goto out;
    }
    size_t total_months = months ? (months->type == REDIS_REPLY_ARRAY ? months->elements : 0) : nm;
    for (size_t mi = 0; mi < total_months; mi++) {
        const char *m = months ? months->element[mi]->str : list[mi];
        char cursor[32] = "0";
        do {
            redisReply *s = crm_store_cmd(store, "HSCAN " CRM_KEY_AUDIT_PAID_FMT " %s COUNT 1000", dealer, m, cursor);
            if (!s)
                goto out;
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
                freeReplyObject(s);
                break;
            }
            const redisReply *it = s->element[1];
            for (size_t i = 0; i + 1 < it->elements; i += 2) {
                const char *f = it->element[i]->str, *v = it->element[i + 1]->str;
                if (!f || !v)
                    continue;
                const char *hash = strchr(f, '#');
                char cid[64];
                snprintf(cid, sizeof cid, "%.*s", hash ? (int) (hash - f) : (int) strlen(f), f);
                crm_abc_row_t *r = s_abc_row(&x, cid);
                if (!r)
                    continue;
                if (hash)
                    r->visits += strtoll(v, NULL, 10);
                else
                    r->amount += strtoll(v, NULL, 10);
            }
            snprintf(cursor, sizeof cursor, "%s", s->element[0]->str ? s->element[0]->str : "0");
            freeReplyObject(s);
        } while (strcmp(cursor, "0"));
    }
    int64_t total = 0;
    size_t classified = 0;
    if (x.n && crm_abc_classify(x.rows, x.n, a->abc_a_pct, a->abc_b_pct, &total, &classified) != 0)
        classified = 0;
    if (!(last = crm_store_cmd(store, "HGETALL " CRM_KEY_AUDIT_ABC_LAST_FMT, dealer)))
        goto out;
    crm_tx_t *tx = crm_service_tx(svc);
    char key[64], rkey[80], lkey[CRM_ID_NAME_MAX + 32];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_RUN_FMT, run->id);
    snprintf(rkey, sizeof rkey, CRM_KEY_AUDIT_RUN_ROWS_FMT, run->id);
    snprintf(lkey, sizeof lkey, CRM_KEY_AUDIT_ABC_LAST_FMT, dealer);
    int64_t count[3] = {0}, moved = 0;
    crm_tx_cmd(tx, "DEL %s", lkey);
    for (size_t i = 0; i < classified; i++) {
        crm_abc_row_t *r = &x.rows[i];
        const char *was = crm_reply_field(last, r->id);
        char prev = was && *was ? was[0] : '-';
        if (prev != r->cls)
            moved += prev != '-';
        count[r->cls == 'A' ? 0 : r->cls == 'B' ? 1 : 2]++;
        char line[160];
        snprintf(line, sizeof line, "%s %lld %lld %lld %d %c %c", r->id, (long long) r->amount, (long long) r->visits,
                 (long long) r->running, (int) r->share_cbp, r->cls, prev);
        crm_tx_cmd(tx, "RPUSH %s %s", rkey, line);
        char cls[2] = {r->cls, 0};
        crm_tx_cmd(tx, "HSET %s %s %s", lkey, r->id, cls);
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long) crm_now_ms());
    crm_tx_cmd(tx, "HSET %s state done finished_ms %s customers %lld a %lld b %lld c %lld moved %lld total_fen %lld", key,
               now, (long long) classified, (long long) count[0], (long long) count[1], (long long) count[2], (long long) moved,
               (long long) total);
    crm_tx_cmd(tx, "SREM " CRM_KEY_AUDIT_RUNNING " %s", run->id);
    char scope[256];
    snprintf(scope, sizeof scope, CRM_KEY_AUDIT_SCOPE_FMT "abc|%s|%s|-", "", run->has_period ? run->period : "all",
             dealer);
    crm_tx_cmd(tx, "SET %s %s", scope, run->id);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_audit_classes);
    CRM_SET_STR(&ev, audit_classes, run_id, run->id);
    CRM_SET_STR(&ev, audit_classes, dealer_id, dealer);
    CRM_SET_STR(&ev, audit_classes, period, run->has_period ? run->period : "all");
    CRM_SET_I64(&ev, audit_classes, customers, (int64_t) classified);
    CRM_SET_I64(&ev, audit_classes, a, count[0]);
    CRM_SET_I64(&ev, audit_classes, b, count[1]);
    CRM_SET_I64(&ev, audit_classes, c, count[2]);
    CRM_SET_I64(&ev, audit_classes, moved, moved);
    CRM_SET_I64(&ev, audit_classes, total_fen, total);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    rc = crm_service_commit(svc, tx);
    if (rc == 0)
        crm_info("audit.abc", "run=%s dealer=%s customers=%zu a=%lld b=%lld c=%lld moved=%lld", run->id, dealer,
                 classified, (long long) count[0], (long long) count[1], (long long) count[2], (long long) moved);
out:
    if (months)
        freeReplyObject(months);
    if (last)
        freeReplyObject(last);
    free(x.rows);
    zhashx_destroy(&x.at);
    return rc;
}

/* ------------------------------------------------------------ the loop */

static void s_failed(crm_service_t *svc, aud_run_t *run, const char *where)
{
    crm_warn("audit.retry", "run=%s at=%s reason=\"%s\"", run->id, where, crm_store_error(crm_service_store(svc)));
    if (++run->failures < 200)
        return;
    crm_tx_t *tx = crm_service_tx(svc);
    crm_tx_cmd(tx, "HSET " CRM_KEY_AUDIT_RUN_FMT " state failed reason %s", run->id, "the store kept failing");
    crm_tx_cmd(tx, "SREM " CRM_KEY_AUDIT_RUNNING " %s", run->id);
    if (crm_service_commit(svc, tx) == 0)
        s_run_free(&aud_state(svc)->run);
}

static int s_id_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *) x, *b = *(const char *const *) y;
    long long na = strtoll(a + 1, NULL, 10), nb = strtoll(b + 1, NULL, 10);
    return na < nb ? -1 : na > nb;
}

void aud_tick_runs(crm_service_t *svc)
{
    aud_t *a = aud_state(svc);
    crm_store_t *store = crm_service_store(svc);
    if (!a->run) {
        if (!a->look_for_runs)
            return;
        redisReply *r = crm_store_cmd(store, "SMEMBERS " CRM_KEY_AUDIT_RUNNING);
        if (!r)
            return;
        if (r->type != REDIS_REPLY_ARRAY || !r->elements) {
            a->look_for_runs = false;
            freeReplyObject(r);
            return;
        }
        const char **ids = calloc(r->elements, sizeof *ids);
        size_t n = 0;
        for (size_t i = 0; ids && i < r->elements; i++)
            if (r->element[i]->str && r->element[i]->str[0] == 'A')
                ids[n++] = r->element[i]->str;
        if (n) {
            qsort(ids, n, sizeof *ids, s_id_cmp);
            char id[S_RUN_ID_SZ];
            snprintf(id, sizeof id, "%s", ids[0]);
            free(ids);
            freeReplyObject(r);
            if (s_begin(svc, id, &a->run) < 0)
                crm_warn("audit.retry", "run=%s at=start reason=\"%s\"", id, crm_store_error(store));
            return;
        }
        free(ids);
        freeReplyObject(r);
        a->look_for_runs = false;
        return;
    }
    aud_run_t *run = a->run;
    int64_t until = crm_mono_us() + (int64_t) a->slice_ms * 1000;
    do {
        s_kind_t kind = s_kind(run->kind);
        if (kind == S_ABC) {
            if (s_abc(svc, run) != 0)
                s_failed(svc, run, "abc");
            else
                s_run_free(&a->run);
            return;
        }
        if (run->phase == 0) {
            if (run->di >= run->nd) {
                run->phase = kind == S_AUDIT ? 1 : 2;
                snprintf(run->cursor, sizeof run->cursor, "0");
                continue;
            }
            int k = s_page(a, store, run);
            if (k < 0) {
                s_failed(svc, run, "files");
                return;
            }
            if (k == 0) {
                run->di++;
                snprintf(run->cursor, sizeof run->cursor, "0");
            }
        } else if (run->phase == 1) {
            int k = s_dups(run, store);
            if (k < 0) {
                s_failed(svc, run, "duplicates");
                return;
            }
            if (k == 0)
                run->phase = 2;
        } else {
            if (s_finish(svc, run) != 0)
                s_failed(svc, run, "finish");
            else
                s_run_free(&a->run);
            a->look_for_runs = true;
            return;
        }
        run->failures = 0;
    } while (crm_mono_us() < until);
}

/* ------------------------------------------------------------ schedule */

/* On the first days of a month (of a quarter), once: last month's
   (quarter's) audit. A run already asked for that period is not asked
   again (crm:audit:scheduled:<P>). */
void aud_tick_schedule(crm_service_t *svc)
{
    aud_t *a = aud_state(svc);
    if (!a->sched_monthly && !a->sched_quarterly)
        return;
    int64_t now = crm_now_ms(), day = crm_cst_day(now);
    int y, m, d;
    crm_day_ymd(day, &y, &m, &d);
    if (d > 3 || now - crm_cst_day_start_ms(day) < (int64_t) a->sched_min * 60000)
        return;
    int64_t prev = day - d; /* the last day of last month */
    char names[2][8];
    int n = 0;
    if (a->sched_monthly && crm_period_month_of(prev, names[n]) == 0)
        n++;
    if (a->sched_quarterly && (m - 1) % 3 == 0 && crm_period_quarter_of(prev, names[n]) == 0)
        n++;
    for (int i = 0; i < n; i++) {
        redisReply *r = crm_store_cmd(crm_service_store(svc), "SET " CRM_KEY_AUDIT_SCHEDULED_FMT " 1 NX", names[i]);
        if (!r)
            return;
        bool first = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!first)
            continue;
        crm_tx_t *tx = crm_service_tx(svc);
        char id[S_RUN_ID_SZ];
        if (s_create(svc, tx, "audit", names[i], NULL, NULL, NULL, "schedule", id) != 0 ||
            crm_service_commit(svc, tx) != 0) {
            redisReply *u = crm_store_cmd(crm_service_store(svc), "DEL " CRM_KEY_AUDIT_SCHEDULED_FMT, names[i]);
            if (u)
                freeReplyObject(u);
            continue;
        }
        crm_info("audit.scheduled", "run=%s period=%s", id, names[i]);
        a->look_for_runs = true;
    }
}
