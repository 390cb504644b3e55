/*  Reminders and care (DOMAIN.md "Test-drive dispatch", "Care for owners"):
 *  each is a notify.request for crm-notifier and, where a person must act,
 *  a task for the dealer's consultant.
 *
 *    t:<T>      T-1 09:00 before a dispatched test drive: remind the prospect
 *               (testdrive_reminder) and a call task (testdrive_remind)
 *    f:<T>      the day after it, at the opening hour: a feedback call task
 *    (at once)  a delivery delayed: tell the customer now (delivery_delayed)
 *               and a call task due before the old promised date
 *    b:<C>      the birthday, 09:00 (never for the 1900-01-01 sentinel)
 *    h:<day>    the first day of a public holiday: one greeting to the owners
 *               segment ("segment:owners", crm-notifier expands it)
 *    c:<C>:<N>  N days after delivery (--owner-callback-days): a call-back task
 *    s:<C>      --service-reminder-days after delivery or the last service
 */
#include "sched.h"

#include <string.h>

#include "crm_lead.h"

#define S_DAY_MS 86400000LL
#define S_HOUR_MS 3600000LL

/* notify.request to the customer's mobile (none: logged, nothing sent). */
static void s_notify(crm_tx_t *tx, const char *timer, int64_t due, const char *cid, const char *mobile,
                     const char *template, const char *const *params)
{
    if (!mobile || !*mobile) {
        crm_info("care.no_mobile", "customer=%s template=%s", cid ? cid : "-", template);
        return;
    }
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_notify_request);
    char rid[160];
    /* The same timer firing again (it cannot, but a replay of the event can)
       asks the same request: the notifier sends it once. */
    snprintf(rid, sizeof rid, "sched:%s:%lld", timer, (long long) due);
    CRM_SET_STR(&ev, notify_request, request_id, rid);
    CRM_SET_STR(&ev, notify_request, channel, "sms");
    CRM_SET_STR(&ev, notify_request, to, mobile);
    CRM_SET_STR(&ev, notify_request, template, template);
    if (cid)
        CRM_SET_STR(&ev, notify_request, customer_id, cid);
    for (const char *const *p = params; p && *p; p++)
        crm_strs_push(&ev.body.notify_request.params, *p);
    ev.body.notify_request.has.params = params && *params;
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

/* A task for the customer's owner at `dealer`. */
static int s_task(crm_service_t *svc, crm_tx_t *tx, const char *cid, const char *dealer, const char *consultant,
                  const char *kind, int64_t due, const char *content)
{
    sched_task_t t = {0};
    snprintf(t.customer_id, sizeof t.customer_id, "%s", cid);
    snprintf(t.dealer_id, sizeof t.dealer_id, "%s", dealer);
    snprintf(t.consultant_id, sizeof t.consultant_id, "%s", consultant ? consultant : "");
    snprintf(t.kind, sizeof t.kind, "%s", kind);
    snprintf(t.source, sizeof t.source, "rule");
    snprintf(t.content, sizeof t.content, "%s", content);
    t.due_ms = due;
    return sched_task_open(svc, tx, &t, NULL);
}

static void s_timer(crm_tx_t *tx, char kind, const char *id, int64_t due)
{
    char tid[2 * CRM_DUE_ID_MAX]; /* a longer one: crm_tx_due refuses it */
    snprintf(tid, sizeof tid, "%c:%.*s", kind, CRM_DUE_ID_MAX, id);
    crm_tx_due(tx, SCHED_SET, tid, due);
}

static void s_cancel(crm_tx_t *tx, char kind, const char *id)
{
    char tid[2 * CRM_DUE_ID_MAX]; /* a longer one: crm_tx_due refuses it */
    snprintf(tid, sizeof tid, "%c:%.*s", kind, CRM_DUE_ID_MAX, id);
    crm_tx_due_cancel(tx, SCHED_SET, tid);
}

static bool s_id(crm_service_t *svc, const char *field, const char *id)
{
    return crm_service_ids_ok(svc, &id, &field, 1, 1);
}

/* ------------------------------------------------------------ test drives */

static crm_handled_t s_testdrive_timers(crm_service_t *svc, crm_tx_t *tx, const char *tid)
{
    sched_t *s = sched_of(svc);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HMGET " CRM_KEY_TD_FMT " at status dealer_id", tid);
    if (!r)
        return crm_service_failed(svc);
    char dealer[CRM_ID_NAME_MAX + 1] = "";
    if (r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING && crm_id_valid(CRM_ID_NAME, r->element[2]->str))
        snprintf(dealer, sizeof dealer, "%s", r->element[2]->str);
    int64_t at = r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING ? strtoll(r->element[0]->str, NULL, 10)
                                                                               : 0;
    bool cancelled = r->elements == 3 && r->element[1]->type == REDIS_REPLY_STRING &&
                     (!strcmp(r->element[1]->str, "cancelled") || !strcmp(r->element[1]->str, "completed") ||
                      !strcmp(r->element[1]->str, "no_show"));
    freeReplyObject(r);
    if (at <= 0 || cancelled) {
        s_cancel(tx, 't', tid); /* the feedback call stays for one done or missed */
        return CRM_APPLIED;
    }
    int64_t day = crm_cst_day(at);
    int64_t remind = crm_cst_day_start_ms(day - 1) + 9 * S_HOUR_MS;
    s_timer(tx, 't', tid, remind > crm_now_ms() ? remind : crm_now_ms());
    s_timer(tx, 'f', tid, crm_cst_day_start_ms(crm_calendar_next_working(s->cal, day + 1)) +
                               sched_hours(svc, dealer).open_min * 60000LL);
    return CRM_APPLIED;
}

crm_handled_t sched_on_dispatched(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const char *tid = msg->body.testdrive_dispatched.testdrive_id;
    if (!s_id(svc, "testdrive_id", tid))
        return CRM_REFUSE;
    return s_testdrive_timers(svc, tx, tid);
}

crm_handled_t sched_on_testdrive_status(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_testdrive_status_t *b = &msg->body.testdrive_status;
    if (!s_id(svc, "testdrive_id", b->testdrive_id))
        return CRM_REFUSE;
    if (!strcmp(b->status, "cancelled")) {
        s_cancel(tx, 't', b->testdrive_id);
        s_cancel(tx, 'f', b->testdrive_id);
        return CRM_APPLIED;
    }
    if (!strcmp(b->status, "rescheduled") || !strcmp(b->status, "confirmed"))
        return s_testdrive_timers(svc, tx, b->testdrive_id);
    return CRM_APPLIED;
}

/* ------------------------------------------------------------ deliveries */

crm_handled_t sched_on_delayed(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_delivery_delayed_t *b = &msg->body.delivery_delayed;
    if (!s_id(svc, "customer_id", b->customer_id) || !s_id(svc, "dealer_id", b->dealer_id))
        return CRM_REFUSE;
    redisReply *c = crm_store_cmd(crm_service_store(svc), "HMGET " CRM_KEY_CUST_FMT " mobile consultant_id",
                                  b->customer_id);
    if (!c)
        return crm_service_failed(svc);
    const char *mobile = c->elements == 2 && c->element[0]->type == REDIS_REPLY_STRING ? c->element[0]->str : NULL;
    const char *consultant = c->elements == 2 && c->element[1]->type == REDIS_REPLY_STRING &&
                                     crm_id_valid(CRM_ID_NAME, c->element[1]->str)
                                 ? c->element[1]->str
                                 : NULL;
    /* Told now, before the promised date; and a call before it. */
    char p1[96], p2[96], p3[300];
    snprintf(p1, sizeof p1, "promised_date=%s", b->promised_date);
    snprintf(p2, sizeof p2, "old_promised_date=%s", b->has.old_promised_date ? b->old_promised_date : "");
    snprintf(p3, sizeof p3, "reason=%.250s", b->reason);
    crm_utf8_cut(p3);
    const char *params[] = {p1, p2, p3, NULL};
    char timer[96];
    snprintf(timer, sizeof timer, "delay:%.40s:%.20s", b->customer_id, b->promised_date);
    s_notify(tx, timer, msg->ts, b->customer_id, mobile, "delivery_delayed", params);
    int64_t old = b->has.old_promised_date ? crm_day_parse(b->old_promised_date) : INT64_MIN;
    int64_t due = crm_work_shift(s->cal, sched_hours(svc, b->dealer_id), msg->ts, 2 * S_HOUR_MS);
    if (old != INT64_MIN && crm_cst_day_start_ms(old) < due)
        due = crm_cst_day_start_ms(old) > msg->ts ? crm_cst_day_start_ms(old) : msg->ts;
    char content[400];
    snprintf(content, sizeof content, "call: delivery moved to %s (%.250s)", b->promised_date, b->reason);
    int rc = s_task(svc, tx, b->customer_id, b->dealer_id, consultant, "delay_notice", due, content);
    freeReplyObject(c);
    return rc == 0 ? CRM_APPLIED : crm_service_failed(svc);
}

crm_handled_t sched_on_delivered(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_vehicle_delivered_t *b = &msg->body.vehicle_delivered;
    if (!s_id(svc, "customer_id", b->customer_id) || !s_id(svc, "dealer_id", b->dealer_id))
        return CRM_REFUSE;
    int64_t day = crm_day_parse(b->date);
    if (day == INT64_MIN)
        day = crm_cst_day(msg->ts);
    int64_t at = crm_cst_day_start_ms(day) + sched_hours(svc, b->dealer_id).open_min * 60000LL;
    for (int i = 0; i < s->ncallbacks; i++) {
        char id[CRM_DUE_ID_MAX];
        snprintf(id, sizeof id, "%s:%d", b->customer_id, s->callbacks[i]);
        s_timer(tx, 'c', id, at + s->callbacks[i] * S_DAY_MS);
    }
    s_timer(tx, 's', b->customer_id, at + s->service_days * S_DAY_MS);
    return CRM_APPLIED;
}

crm_handled_t sched_on_serviced(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_service_recorded_t *b = &msg->body.service_recorded;
    if (!s_id(svc, "customer_id", b->customer_id) || !s_id(svc, "dealer_id", b->dealer_id))
        return CRM_REFUSE;
    int64_t day = crm_day_parse(b->date);
    if (day == INT64_MIN)
        return CRM_APPLIED;
    s_timer(tx, 's', b->customer_id,
            crm_cst_day_start_ms(day) + sched_hours(svc, b->dealer_id).open_min * 60000LL +
                s->service_days * S_DAY_MS);
    return CRM_APPLIED;
}

/* ------------------------------------------------------------ birthdays */

/* The next 09:00 of the birthday after `now`; 0 for none (unknown, the
   1900-01-01 sentinel, not a date). 29 February is the 28th otherwise. */
int64_t sched_next_birthday(const char *birthday, int64_t now)
{
    int y, m, d;
    char tail;
    if (!birthday || sscanf(birthday, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || crm_day_from_ymd(y, m, d) == INT64_MIN ||
        (y == 1900 && m == 1 && d == 1))
        return 0;
    int ny, nm, nd;
    crm_day_ymd(crm_cst_day(now), &ny, &nm, &nd);
    for (int year = ny; year <= ny + 1; year++) {
        int64_t day = crm_day_from_ymd(year, m, d);
        if (day == INT64_MIN)
            day = crm_day_from_ymd(year, m, d - 1);
        int64_t at = crm_cst_day_start_ms(day) + 9 * S_HOUR_MS;
        if (at > now)
            return at;
    }
    return 0;
}

static crm_handled_t s_birthday(crm_service_t *svc, crm_tx_t *tx, const char *cid)
{
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGET " CRM_KEY_CUST_FMT " birthday", cid);
    if (!r)
        return crm_service_failed(svc);
    int64_t at = sched_next_birthday(r->type == REDIS_REPLY_STRING ? r->str : NULL, crm_now_ms());
    freeReplyObject(r);
    if (at)
        s_timer(tx, 'b', cid, at);
    else
        s_cancel(tx, 'b', cid);
    return CRM_APPLIED;
}

static bool s_has(const crm_strs_t *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], name))
            return true;
    return false;
}

crm_handled_t sched_on_lead(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const char *cid = msg->type == CRM_T_lead_created ? msg->body.lead_created.customer_id
                                                      : msg->body.lead_merged.customer_id;
    if (!s_id(svc, "customer_id", cid))
        return CRM_REFUSE;
    return s_birthday(svc, tx, cid);
}

crm_handled_t sched_on_customer_updated(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_customer_updated_t *b = &msg->body.customer_updated;
    if (!s_id(svc, "customer_id", b->customer_id))
        return CRM_REFUSE;
    return s_has(&b->fields, "birthday") ? s_birthday(svc, tx, b->customer_id) : CRM_APPLIED;
}

crm_handled_t sched_on_customer_recorded(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_customer_recorded_t *b = &msg->body.customer_recorded;
    if (!s_id(svc, "customer_id", b->customer_id))
        return CRM_REFUSE;
    crm_handled_t rc = CRM_APPLIED;
    if (b->created || s_has(&b->fields, "birthday"))
        rc = s_birthday(svc, tx, b->customer_id);
    if (rc == CRM_APPLIED && s_has(&b->fields, "grade"))
        rc = sched_regrade(svc, tx, b->customer_id, msg->ts);
    return rc;
}

/* ------------------------------------------------------------ holidays */

void sched_holidays(crm_service_t *svc, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    int years[16];
    size_t n = crm_calendar_years(s->cal, years, 16);
    int64_t now = crm_now_ms();
    for (size_t i = 0; i < n; i++) {
        const char *prev = NULL;
        for (int64_t d = crm_day_from_ymd(years[i], 1, 1); d < crm_day_from_ymd(years[i] + 1, 1, 1); d++) {
            const char *name = NULL;
            bool off = crm_calendar_kind(s->cal, d, &name) == CRM_DAY_HOLIDAY;
            if (off && name && (!prev || strcmp(prev, name))) {
                int64_t at = crm_cst_day_start_ms(d) + 9 * S_HOUR_MS;
                char day[16];
                crm_day_format(d, day, sizeof day);
                if (at > now)
                    s_timer(tx, 'h', day, at);
            }
            prev = off ? name : NULL;
        }
    }
}

/* ------------------------------------------------------------ firing */

/* A care timer fired: `what` is its reply (the test drive or the customer;
   NULL for holidays). */
int sched_fire_care(crm_service_t *svc, crm_tx_t *tx, char kind, const char *id, int64_t due,
                    const redisReply *what)
{
    sched_t *s = sched_of(svc);
    char timer[CRM_DUE_ID_MAX + 4];
    snprintf(timer, sizeof timer, "%c:%s", kind, id);
    if (kind == 'h') {
        const char *name = NULL;
        crm_calendar_kind(s->cal, crm_day_parse(id), &name);
        char p[96];
        snprintf(p, sizeof p, "holiday=%s", name ? name : id);
        const char *params[] = {p, NULL};
        s_notify(tx, timer, due, NULL, "segment:owners", "holiday_greeting", params);
        return 0;
    }
    if (!what || what->type != REDIS_REPLY_ARRAY || what->elements == 0)
        return 0; /* what it names is gone: nothing to do */
    const char *cid = kind == 't' || kind == 'f' ? crm_reply_field(what, "customer_id") : NULL;
    char cidbuf[CRM_ID_NAME_MAX + 1];
    if (kind != 't' && kind != 'f') {
        snprintf(cidbuf, sizeof cidbuf, "%.*s", (int) strcspn(id, ":"), id);
        cid = cidbuf;
    }
    if (!cid || !crm_id_valid(CRM_ID_NAME, cid))
        return 0;
    /* The customer's mobile and owner (for t/f `what` is the test drive). */
    redisReply *c = NULL;
    if (kind == 't' || kind == 'f') {
        if (!(c = crm_store_cmd(crm_service_store(svc), "HGETALL " CRM_KEY_CUST_FMT, cid)))
            return -1;
    }
    const redisReply *cust = c ? c : what;
    const char *mobile = crm_reply_field(cust, "mobile"), *consultant = crm_reply_field(cust, "consultant_id");
    const char *dealer = kind == 't' || kind == 'f' ? crm_reply_field(what, "dealer_id") : crm_reply_field(cust, "dealer_id");
    const char *stage = crm_reply_field(cust, "stage");
    if (dealer && !crm_id_valid(CRM_ID_NAME, dealer))
        dealer = NULL;
    if (consultant && !crm_id_valid(CRM_ID_NAME, consultant))
        consultant = NULL;
    char when[40] = "", p1[96];
    if (kind == 't' || kind == 'f') {
        const char *at = crm_reply_field(what, "at");
        crm_format_cst(at ? strtoll(at, NULL, 10) : 0, when, sizeof when);
    }
    int rc = 0;
    if (kind == 't') {
        snprintf(p1, sizeof p1, "at=%s", when);
        const char *params[] = {p1, NULL};
        s_notify(tx, timer, due, cid, mobile, "testdrive_reminder", params);
        if (dealer)
            rc = s_task(svc, tx, cid, dealer, consultant, "testdrive_remind", due,
                        "remind the prospect of tomorrow's test drive");
    } else if (kind == 'f') {
        if (dealer)
            rc = s_task(svc, tx, cid, dealer, consultant, "testdrive_feedback", due, "feedback call after the test drive");
    } else if (kind == 'b') {
        s_notify(tx, timer, due, cid, mobile, "birthday_greeting", NULL);
        int64_t next = sched_next_birthday(crm_reply_field(cust, "birthday"), due); /* next year's */
        if (next)
            s_timer(tx, 'b', cid, next);
    } else if (kind == 'c') {
        if (dealer && stage && !strcmp(stage, "owner"))
            rc = s_task(svc, tx, cid, dealer, consultant, "owner_callback", due, "owner call-back after delivery");
    } else if (kind == 's') {
        if (stage && !strcmp(stage, "owner")) {
            s_notify(tx, timer, due, cid, mobile, "service_reminder", NULL);
            if (dealer)
                rc = s_task(svc, tx, cid, dealer, consultant, "service_reminder", due, "service reminder");
            s_timer(tx, 's', cid, due + s->service_days * S_DAY_MS); /* again if no service comes */
        }
    }
    freeReplyObject(c);
    return rc;
}
