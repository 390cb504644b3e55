/*  What a fired timer does. A timer is only its id ("o:K12"); what it
 *  means is read now from the state it names, so a timer whose reason went
 *  away does nothing.
 *
 *  Late-fire policy: a timer that fell due while every scheduler was down
 *  fires once when one is back, with late_ms (how late) on its event when
 *  that is more than --late-after-ms; crm:metrics:scheduler counts them
 *  (timers_late) and keeps the worst (late_max_ms).
 *
 *    w:<K>  the task is due within the lead time: followup.due (the warning)
 *    o:<K>  the task was not done by the end of its day: followup.overdue,
 *           escalated to the consultant's manager, counted, a violation
 *    x:<C>  the expected purchase date passed with no order: opportunity.expired
 *    r:<C>  no effective follow-up for --release-days: prospect.released
 *    t, f, b, c, s, h: reminders and care (care.c)
 */
#include "sched.h"

#include <string.h>

#define S_DAY_MS 86400000LL

typedef struct {
    int64_t due;
    int64_t late; /* 0 unless later than --late-after-ms */
    const char *id; /* after "<kind>:" */
    char kind;
} s_timer_t;

static void s_warn(crm_service_t *svc, crm_tx_t *tx, const s_timer_t *tm, const sched_task_t *t)
{
    (void) svc;
    if (strcmp(t->state, "open"))
        return;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_followup_due);
    CRM_SET_STR(&ev, followup_due, task_id, t->task_id);
    CRM_SET_STR(&ev, followup_due, customer_id, t->customer_id);
    CRM_SET_STR(&ev, followup_due, consultant_id, t->consultant_id);
    CRM_SET_I64(&ev, followup_due, due_at, t->due_ms);
    CRM_SET_STR(&ev, followup_due, dealer_id, t->dealer_id);
    CRM_SET_STR(&ev, followup_due, kind, t->kind);
    if (tm->late)
        CRM_SET_I64(&ev, followup_due, late_ms, tm->late);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_tx_cmd(tx, "HSET " CRM_KEY_TASK_FMT " warned_ms %lld", t->task_id, (long long) crm_now_ms());
}

static void s_overdue(crm_service_t *svc, crm_tx_t *tx, const s_timer_t *tm, const sched_task_t *t,
                      const char *manager)
{
    if (strcmp(t->state, "open"))
        return;
    crm_tx_cmd(tx, "HSET " CRM_KEY_TASK_FMT " state overdue overdue_ms %lld", t->task_id, (long long) tm->due);
    sched_overdue(svc, tx, t, manager, tm->due, tm->late);
}

static void s_plan_timer(crm_service_t *svc, crm_tx_t *tx, const s_timer_t *tm, const redisReply *plan,
                         const char *manager)
{
    sched_t *s = sched_of(svc);
    const char *stage = crm_reply_field(plan, "stage");
    if (plan->type != REDIS_REPLY_ARRAY || plan->elements == 0 || (stage && strcmp(stage, "prospect")))
        return;
    const char *dealer = crm_reply_field_or(plan, "dealer_id", "-");
    const char *consultant = crm_reply_field_or(plan, "consultant_id", "");
    if (tm->kind == 'x') {
        const char *date = crm_reply_field(plan, "expected_purchase_date");
        int64_t day = date ? crm_day_parse(date) : INT64_MIN;
        if (day == INT64_MIN)
            return;
        if (s->shift_expiry)
            day = crm_calendar_next_working(s->cal, day);
        if (crm_overdue_at(crm_cst_day_start_ms(day), s->day_end_min) > tm->due)
            return; /* the date moved later since */
        const char *done = crm_reply_field(plan, "expired_date");
        if (done && !strcmp(done, date))
            return; /* expired once already */
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_opportunity_expired);
        CRM_SET_STR(&ev, opportunity_expired, customer_id, tm->id);
        if (*consultant)
            CRM_SET_STR(&ev, opportunity_expired, consultant_id, consultant);
        CRM_SET_STR(&ev, opportunity_expired, expected_purchase_date, date);
        CRM_SET_STR(&ev, opportunity_expired, dealer_id, dealer);
        if (manager[0])
            CRM_SET_STR(&ev, opportunity_expired, manager_id, manager);
        if (tm->late)
            CRM_SET_I64(&ev, opportunity_expired, late_ms, tm->late);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        sched_count(tx, crm_cst_day(tm->due - 1), dealer, consultant, "expired", 1);
        sched_violation(tx, tm->due - 1, "expired", dealer, consultant, manager, tm->id, date);
        char timer[48];
        snprintf(timer, sizeof timer, "x:%s", tm->id);
        sched_escalate(tx, timer, tm->due, dealer, manager, consultant, tm->id, "opportunity_expired", date);
        crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " expired_ms %lld expired_date %s", tm->id, (long long) tm->due, date);
        crm_info("opportunity.expired", "customer=%s consultant=%s date=%s", tm->id, consultant, date);
        return;
    }
    /* r: released after --release-days without an effective follow-up. */
    const char *le = crm_reply_field(plan, "last_effective_ms");
    const char *released = crm_reply_field(plan, "released");
    int64_t last = le ? strtoll(le, NULL, 10) : 0;
    if ((released && !strcmp(released, "1")) || last + s->release_days * S_DAY_MS > tm->due)
        return;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_prospect_released);
    CRM_SET_STR(&ev, prospect_released, customer_id, tm->id);
    CRM_SET_STR(&ev, prospect_released, dealer_id, dealer);
    if (*consultant)
        CRM_SET_STR(&ev, prospect_released, consultant_id, consultant);
    if (last)
        CRM_SET_I64(&ev, prospect_released, last_effective_at, last);
    if (tm->late)
        CRM_SET_I64(&ev, prospect_released, late_ms, tm->late);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " released 1 released_ms %lld released_from %s", tm->id,
               (long long) tm->due, *consultant ? consultant : "-");
    sched_count(tx, crm_cst_day(tm->due), dealer, consultant, "released", 1);
    crm_info("prospect.released", "customer=%s consultant=%s", tm->id, consultant);
}

/* " <kind>:<id>" after the due time: the id (up to a ':' for c:<C>:<days>)
   keeps the id rule, as it becomes part of keys; h: holds a date. */
static bool s_timer_ok(const char *p)
{
    if (p[0] != ' ' || !p[1] || p[2] != ':')
        return false;
    const char *id = p + 3;
    if (p[1] == 'h')
        return crm_day_parse(id) != INT64_MIN;
    char head[CRM_ID_NAME_MAX + 2];
    size_t n = strcspn(id, ":");
    if (n == 0 || n > CRM_ID_NAME_MAX)
        return false;
    snprintf(head, sizeof head, "%.*s", (int) n, id);
    return crm_id_valid(CRM_ID_NAME, head);
}

crm_handled_t sched_on_fired(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_timers_fired_t *b = &msg->body.timers_fired;
    if (strcmp(b->set, SCHED_SET))
        return CRM_APPLIED; /* another set's */
    size_t n = b->timers.n;
    s_timer_t *tms = calloc(n ? n : 1, sizeof *tms);
    if (!tms)
        return CRM_RETRY;
    /* Read what every timer names in one pipeline. */
    crm_tx_reset(s->reads);
    int64_t late = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = b->timers.v[i];
        char *end;
        s_timer_t *tm = &tms[i];
        tm->due = strtoll(e, &end, 10);
        if (end == e || !s_timer_ok(end)) {
            crm_warn("timer.unknown", "timer=\"%s\"", e);
            continue;
        }
        tm->kind = end[1];
        tm->id = end + 3;
        int64_t by = b->now - tm->due;
        if (by > s->late_after_ms) {
            tm->late = by;
            late++;
            worst = by > worst ? by : worst;
        }
        if (tm->kind == 'w' || tm->kind == 'o')
            crm_tx_cmd(s->reads, "HGETALL " CRM_KEY_TASK_FMT, tm->id);
        else if (tm->kind == 'x' || tm->kind == 'r')
            crm_tx_cmd(s->reads, "HGETALL " CRM_KEY_PLAN_FMT, tm->id);
        else if (tm->kind == 't' || tm->kind == 'f')
            crm_tx_cmd(s->reads, "HGETALL " CRM_KEY_TD_FMT, tm->id);
        else if (tm->kind == 'h')
            crm_tx_cmd(s->reads, "ECHO h");
        else { /* b, c, s: the customer (c:<C>:<days>) */
            char cid[CRM_DUE_ID_MAX + 1];
            snprintf(cid, sizeof cid, "%.*s", (int) strcspn(tm->id, ":"), tm->id);
            crm_tx_cmd(s->reads, "HGETALL " CRM_KEY_CUST_FMT, cid);
        }
    }
    /* A reply that is an error (a key of the wrong type) is that timer's
       alone: it is skipped below; only Redis away retries the batch. */
    if (n && crm_store_pipeline(crm_service_store(svc), s->reads) != 0 && crm_store_passing(crm_service_store(svc))) {
        free(tms);
        return CRM_RETRY;
    }
    /* The managers the overdue and expired ones escalate to, in a second
       pipeline: entry i's result index in mgr_at (-1: none asked). */
    int *mgr_at = calloc(n ? n : 1, sizeof *mgr_at);
    crm_tx_t *mgr = crm_tx_new("scheduler", 0);
    if (!mgr_at || !mgr) {
        free(mgr_at);
        crm_tx_destroy(&mgr);
        free(tms);
        return CRM_RETRY;
    }
    int k = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        mgr_at[i] = -1;
        if (!tms[i].id)
            continue;
        const redisReply *r = crm_tx_result(s->reads, k++);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || (tms[i].kind != 'o' && tms[i].kind != 'x'))
            continue;
        const char *dealer = crm_reply_field(r, "dealer_id"), *consultant = crm_reply_field(r, "consultant_id");
        if (dealer && *dealer && consultant && *consultant) {
            crm_tx_cmd(mgr, "HGET crm:dealer:%s:staff:%s manager_id", dealer, consultant);
            mgr_at[i] = m++;
        }
    }
    if (m && crm_store_pipeline(crm_service_store(svc), mgr) != 0 && crm_store_passing(crm_service_store(svc))) {
        free(mgr_at);
        crm_tx_destroy(&mgr);
        free(tms);
        return CRM_RETRY;
    }
    k = 0;
    for (size_t i = 0; i < n; i++) {
        s_timer_t *tm = &tms[i];
        if (!tm->id)
            continue;
        const redisReply *r = crm_tx_result(s->reads, k++);
        if (tm->kind == 'h') {
            sched_fire_care(svc, tx, tm->kind, tm->id, tm->due, NULL);
            continue;
        }
        int failed = 0;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
            continue;
        const redisReply *mr = mgr_at[i] >= 0 ? crm_tx_result(mgr, mgr_at[i]) : NULL;
        const char *manager = mr && mr->type == REDIS_REPLY_STRING ? mr->str : "";
        if (tm->kind == 'w' || tm->kind == 'o') {
            sched_task_t t;
            sched_task_from_reply(r, &t);
            if (tm->kind == 'w')
                s_warn(svc, tx, tm, &t);
            else
                s_overdue(svc, tx, tm, &t, manager);
        } else if (tm->kind == 'x' || tm->kind == 'r') {
            s_plan_timer(svc, tx, tm, r, manager);
        } else if (strchr("tfbcs", tm->kind)) {
            failed = sched_fire_care(svc, tx, tm->kind, tm->id, tm->due, r);
        } else {
            crm_warn("timer.unknown", "timer=%c:%s", tm->kind, tm->id);
        }
        if (failed) {
            free(mgr_at);
            crm_tx_destroy(&mgr);
            free(tms);
            return crm_service_failed(svc);
        }
    }
    free(mgr_at);
    crm_tx_destroy(&mgr);
    crm_tx_cmd(tx, "HINCRBY " CRM_KEY_SCHED_METRICS " timers_fired %lld", (long long) n);
    if (late) {
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_SCHED_METRICS " timers_late %lld", (long long) late);
        crm_tx_cmd(tx, "EVAL %s 1 " CRM_KEY_SCHED_METRICS " %lld",
                   "if tonumber(redis.call('HGET', KEYS[1], 'late_max_ms') or '0') < tonumber(ARGV[1]) then "
                   "redis.call('HSET', KEYS[1], 'late_max_ms', ARGV[1]) end return 1",
                   (long long) worst);
        crm_warn("timers.late", "count=%lld worst_ms=%lld", (long long) late, (long long) worst);
    }
    free(tms);
    return CRM_APPLIED;
}
