/*  Plans: the cadence by intent grade (DOMAIN.md "Follow-up by intent
 *  grade"), applied to what the uplink and the dispatcher report.
 *
 *  A prospect's plan (crm:plan:{C}) holds its grade, expected purchase
 *  date, last contact, last effective follow-up and its one open
 *  follow-up task. After every contact the next activity must exist: the
 *  consultant's, or one made from the grade (H 3 days, A 7, B 15, C 30,
 *  counted from the contact) with the missing plan counted against the
 *  consultant. An unanswered call changes nothing of the cadence.
 */
#include "sched.h"

#include <string.h>

#define S_DAY_MS 86400000LL

typedef struct {
    redisReply *plan; /* HGETALL crm:plan:{C} */
    const char *cid;
    const char *dealer;
    const char *consultant;
} s_ctx_t;

static const char *s_plan(const s_ctx_t *c, const char *field)
{
    const char *v = c->plan ? crm_reply_field(c->plan, field) : NULL;
    return v && *v ? v : NULL;
}

static int64_t s_plan_i64(const s_ctx_t *c, const char *field)
{
    const char *v = s_plan(c, field);
    return v ? strtoll(v, NULL, 10) : 0;
}

/* The ids an event names become parts of keys (the customer required,
   the others when given). false after saying why. */
static bool s_ids_ok(crm_service_t *svc, const char *cid, const char *dealer, const char *consultant)
{
    const char *v[] = {cid, dealer, consultant};
    static const char *const names[] = {"customer_id", "dealer_id", "consultant_id"};
    return crm_service_ids_ok(svc, v, names, 3, 1);
}

static redisReply *s_read_plan(crm_service_t *svc, const char *cid)
{
    return crm_store_cmd(crm_service_store(svc), "HGETALL " CRM_KEY_PLAN_FMT, cid);
}

static void s_flag(crm_service_t *svc, crm_tx_t *tx, const s_ctx_t *c, const char *code, const char *fid,
                   const char *task, int64_t at, bool sanctioned, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
static void s_flag(crm_service_t *svc, crm_tx_t *tx, const s_ctx_t *c, const char *code, const char *fid,
                   const char *task, int64_t at, bool sanctioned, const char *fmt, ...)
{
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    crm_utf8_cut(text);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_followup_flagged);
    CRM_SET_STR(&ev, followup_flagged, customer_id, c->cid);
    CRM_SET_STR(&ev, followup_flagged, dealer_id, c->dealer);
    CRM_SET_STR(&ev, followup_flagged, consultant_id, c->consultant);
    CRM_SET_STR(&ev, followup_flagged, code, code);
    CRM_SET_STR(&ev, followup_flagged, followup_id, fid);
    if (task && *task)
        CRM_SET_STR(&ev, followup_flagged, task_id, task);
    CRM_SET_STR(&ev, followup_flagged, text, text);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    sched_count(tx, crm_cst_day(at), c->dealer, c->consultant, code, 1);
    if (sanctioned || !strcmp(code, "missing_plan")) {
        char manager[128];
        sched_manager(svc, c->dealer, c->consultant, manager, sizeof manager);
        char records[160];
        snprintf(records, sizeof records, "%s%s%s", fid ? fid : "", task && *task ? " " : "", task ? task : "");
        sched_violation(tx, at, code, c->dealer, c->consultant, manager, c->cid, records);
    }
    crm_info("followup.flagged", "customer=%s consultant=%s code=%s followup=%s", c->cid,
             c->consultant ? c->consultant : "-", code, fid ? fid : "-");
}

/* The end of the expected purchase date: the opportunity expires then
   unless an order came. */
static void s_expiry(crm_service_t *svc, crm_tx_t *tx, const char *cid, const char *date)
{
    sched_t *s = sched_of(svc);
    char tid[CRM_DUE_ID_MAX + 1];
    snprintf(tid, sizeof tid, "x:%s", cid);
    int64_t day = date ? crm_day_parse(date) : INT64_MIN;
    if (day == INT64_MIN) {
        crm_tx_due_cancel(tx, SCHED_SET, tid);
        return;
    }
    if (s->shift_expiry)
        day = crm_calendar_next_working(s->cal, day);
    crm_tx_due(tx, SCHED_SET, tid, crm_overdue_at(crm_cst_day_start_ms(day), s->day_end_min));
}

/* Reads the open follow-up task of the plan; 1 when there is one. */
static int s_open_task(crm_service_t *svc, const s_ctx_t *c, sched_task_t *t)
{
    const char *id = s_plan(c, "task");
    if (!id)
        return 0;
    int rc = sched_task_read(svc, id, t);
    if (rc <= 0)
        return rc;
    return sched_task_is_open(t);
}

crm_handled_t sched_on_followup(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_followup_recorded_t *b = &msg->body.followup_recorded;
    s_ctx_t c = {.cid = b->customer_id, .dealer = b->has.dealer_id ? b->dealer_id : "-",
                 .consultant = b->consultant_id};
    if (!s_ids_ok(svc, c.cid, b->has.dealer_id ? b->dealer_id : NULL, c.consultant))
        return CRM_REFUSE;
    if (!(c.plan = s_read_plan(svc, c.cid)))
        return crm_service_failed(svc);
    crm_handled_t rc = CRM_APPLIED;
    int64_t at = b->has.at ? b->at : msg->ts;
    int64_t day = crm_cst_day(at);
    const char *fid = b->has.followup_id ? b->followup_id : msg->id;
    const char *old_grade = s_plan(&c, "grade");
    const char *grade = b->has.grade && *b->grade ? b->grade : old_grade;
    const char *old_date = s_plan(&c, "expected_purchase_date");
    const char *date = b->has.expected_purchase_date && *b->expected_purchase_date ? b->expected_purchase_date
                                                                                    : old_date;
    const char *content = b->has.content ? b->content : "";
    bool contact = crm_followup_is_contact(b->result);
    bool effective = crm_followup_is_effective(b->result, content);

    /* The remark starts with the grade; the date agrees with the grade. */
    if (b->has.grade && crm_grade_index(b->grade) >= 0 && !crm_grade_remark_ok(b->grade, content))
        s_flag(svc, tx, &c, "remark", fid, NULL, at, false, "the remark does not start with the grade letter %s",
               b->grade);
    int64_t eday = date ? crm_day_parse(date) : INT64_MIN;
    if (grade && crm_grade_index(grade) >= 0 && eday != INT64_MIN && !crm_grade_date_agrees(grade, eday, day))
        s_flag(svc, tx, &c, "grade_date", fid, NULL, at, false,
               "grade %s and expected purchase date %s disagree (H within 7 days, A 15, B 30, C beyond 30)",
               grade, date);
    /* A date about to pass (or passed) moved out without a new grade. */
    int64_t oday = old_date ? crm_day_parse(old_date) : INT64_MIN;
    if (b->has.expected_purchase_date && oday != INT64_MIN && eday != INT64_MIN && eday > oday &&
        oday <= day + s->pushed_out_days && (!b->has.grade || (old_grade && !strcmp(b->grade, old_grade))))
        s_flag(svc, tx, &c, "pushed_out", fid, NULL, at, true,
               "expected purchase date pushed out from %s to %s as it was about to pass, grade unchanged",
               old_date, date);

    sched_task_t open;
    int has_open = s_open_task(svc, &c, &open);
    if (has_open < 0) {
        freeReplyObject(c.plan);
        return crm_service_failed(svc);
    }
    int64_t last_contact = s_plan_i64(&c, "last_contact_ms");
    if (contact) {
        /* The contact does every open task of the customer: the planned
           follow-up and the calls reminders and care asked for. */
        sched_task_t *all = NULL;
        size_t n = 0;
        if (sched_open_tasks(svc, c.cid, &all, &n) != 0) {
            freeReplyObject(c.plan);
            return crm_service_failed(svc);
        }
        bool plan_done = false;
        for (size_t i = 0; i < n; i++) {
            sched_task_close(svc, tx, &all[i], "done", fid, at);
            plan_done |= has_open && !strcmp(all[i].task_id, open.task_id);
        }
        free(all);
        if (has_open && !plan_done)
            sched_task_close(svc, tx, &open, "done", fid, at);
        has_open = 0;
        last_contact = at;
    } else if (!last_contact) {
        last_contact = at; /* the cadence starts with the first attempt */
    }

    /* The next activity. */
    int interval = crm_grade_interval_days(grade);
    if (!interval)
        interval = crm_grade_interval_days("H"); /* ungraded: the strictest until graded */
    int64_t cadence_due = crm_cadence_due(s->cal, sched_hours(svc, c.dealer), last_contact, interval, s->shift_followup);
    sched_task_t next = {0};
    snprintf(next.customer_id, sizeof next.customer_id, "%s", c.cid);
    snprintf(next.dealer_id, sizeof next.dealer_id, "%s", c.dealer);
    /* The next activity is the owner's (the uplink's crm:cust consultant_id,
       which a reassignment changes), else the one who recorded this. */
    redisReply *own = crm_store_cmd(crm_service_store(svc), "HMGET " CRM_KEY_CUST_FMT " dealer_id consultant_id", c.cid);
    if (!own) {
        freeReplyObject(c.plan);
        return crm_service_failed(svc);
    }
    bool owned = own->type == REDIS_REPLY_ARRAY && own->elements == 2 && own->element[0]->type == REDIS_REPLY_STRING &&
                 !strcmp(own->element[0]->str, c.dealer) && own->element[1]->type == REDIS_REPLY_STRING &&
                 crm_id_valid(CRM_ID_NAME, own->element[1]->str);
    snprintf(next.consultant_id, sizeof next.consultant_id, "%s", owned ? own->element[1]->str : c.consultant);
    freeReplyObject(own);
    snprintf(next.kind, sizeof next.kind, "followup");
    bool make = false, missing = false;
    const char *replaces = NULL;
    if (contact) {
        make = true;
        missing = !b->has.next_at;
    } else if (!has_open) {
        make = true;
    } else if (b->has.next_at && b->next_at < open.due_ms) {
        /* An unanswered call with an earlier try planned: the plan moves
           up; the cadence stays. */
        sched_task_close(svc, tx, &open, "replaced", fid, at);
        make = true;
        replaces = open.task_id;
    }
    if (make) {
        if (b->has.next_at) {
            next.due_ms = b->next_at;
            snprintf(next.source, sizeof next.source, "consultant");
            snprintf(next.content, sizeof next.content, "%s", b->has.next_content ? b->next_content : "");
        } else {
            next.due_ms = cadence_due;
            snprintf(next.source, sizeof next.source, "grade");
            snprintf(next.content, sizeof next.content, "follow up (grade %s: at least every %d days)",
                     grade ? grade : "none", interval);
        }
        if (sched_task_open(svc, tx, &next, replaces) != 0)
            rc = crm_service_failed(svc);
        else if (missing)
            s_flag(svc, tx, &c, "missing_plan", fid, next.task_id, at, false,
                   "no next activity planned; one was made from the grade, due %lld", (long long) next.due_ms);
        else if (b->has.next_at && contact &&
                 b->next_at >= crm_overdue_at(cadence_due, s->day_end_min))
            s_flag(svc, tx, &c, "under_frequency", fid, next.task_id, at, true,
                   "next activity planned later than grade %s allows (every %d days)", grade ? grade : "none",
                   interval);
    }

    /* The plan. */
    char lc[24], now[24];
    snprintf(lc, sizeof lc, "%lld", (long long) last_contact);
    snprintf(now, sizeof now, "%lld", (long long) crm_now_ms());
    const char *argv[24] = {"HSET", NULL, "dealer_id", c.dealer, "consultant_id", next.consultant_id,
                            "last_contact_ms", lc, "updated_ms", now};
    int argc = 10;
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_PLAN_FMT, c.cid);
    argv[1] = key;
    if (make) {
        argv[argc++] = "task";
        argv[argc++] = next.task_id;
    }
    if (grade) {
        argv[argc++] = "grade";
        argv[argc++] = grade;
    }
    if (date) {
        argv[argc++] = "expected_purchase_date";
        argv[argc++] = date;
    }
    if (!s_plan(&c, "stage")) {
        argv[argc++] = "stage";
        argv[argc++] = "prospect";
    }
    char le[24];
    const char *released = s_plan(&c, "released"), *owner = next.consultant_id;
    if (effective && released && !strcmp(released, "1") && *owner && strcmp(owner, c.consultant)) {
        /* Released, and another consultant followed it up: ownership
           passes to them if the director approves (owner.decide). */
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_owner_transfer_requested);
        CRM_SET_STR(&ev, owner_transfer_requested, customer_id, c.cid);
        CRM_SET_STR(&ev, owner_transfer_requested, dealer_id, c.dealer);
        CRM_SET_STR(&ev, owner_transfer_requested, from_consultant, owner);
        CRM_SET_STR(&ev, owner_transfer_requested, to_consultant, c.consultant);
        CRM_SET_STR(&ev, owner_transfer_requested, followup_id, fid);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " transfer_to %s transfer_from %s transfer_ms %lld", c.cid,
                   c.consultant, owner, (long long) at);
        crm_info("owner.transfer_requested", "customer=%s from=%s to=%s", c.cid, owner, c.consultant);
    }
    if (effective) {
        snprintf(le, sizeof le, "%lld", (long long) at);
        argv[argc++] = "last_effective_ms";
        argv[argc++] = le;
        argv[argc++] = "released";
        argv[argc++] = "0";
        char tid[CRM_DUE_ID_MAX + 1];
        snprintf(tid, sizeof tid, "r:%s", c.cid);
        crm_tx_due(tx, SCHED_SET, tid, at + s->release_days * S_DAY_MS);
    }
    crm_tx_cmdargv(tx, argc, argv, NULL);
    const char *stage = s_plan(&c, "stage");
    /* A new date (a resent one changes nothing: an expired date does not
       expire again). */
    if (b->has.expected_purchase_date && (!old_date || strcmp(old_date, date)) && (!stage || !strcmp(stage, "prospect")))
        s_expiry(svc, tx, c.cid, date);
    freeReplyObject(c.plan);
    return rc;
}

/* Moves the customer's open tasks to another consultant ("": the dealer's). */
static int s_move_tasks(crm_service_t *svc, crm_tx_t *tx, const char *cid, const char *dealer,
                        const char *consultant)
{
    sched_task_t *all = NULL;
    size_t n = 0;
    if (sched_open_tasks(svc, cid, &all, &n) != 0)
        return -1;
    const char *to = *consultant ? consultant : "-";
    for (size_t i = 0; i < n; i++) {
        sched_task_t *t = &all[i];
        if (strcmp(t->dealer_id, dealer) || !strcmp(t->consultant_id, consultant))
            continue;
        crm_tx_cmd(tx, "ZREM " CRM_KEY_TASKS_MINE_FMT " %s", t->dealer_id, t->consultant_id[0] ? t->consultant_id : "-",
                   t->task_id);
        crm_tx_cmd(tx, "ZADD " CRM_KEY_TASKS_MINE_FMT " %lld %s", t->dealer_id, to, (long long) t->due_ms, t->task_id);
        crm_tx_cmd(tx, "HSET " CRM_KEY_TASK_FMT " consultant_id %s", t->task_id, consultant);
    }
    free(all);
    return 0;
}

crm_handled_t sched_on_owner(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_owner_changed_t *b = &msg->body.owner_changed;
    const char *consultant = b->has.consultant_id ? b->consultant_id : "";
    s_ctx_t c = {.cid = b->customer_id, .dealer = b->dealer_id, .consultant = consultant};
    if (!s_ids_ok(svc, c.cid, c.dealer, consultant) || !*c.dealer)
        return CRM_REFUSE;
    if (!(c.plan = s_read_plan(svc, c.cid)))
        return crm_service_failed(svc);
    bool fresh = !strcmp(b->reason, "testdrive_dispatched") || !strcmp(b->reason, "assigned") ||
                 !strcmp(b->reason, "reactivated");
    sched_task_t open;
    int has_open = s_open_task(svc, &c, &open);
    if (has_open < 0) {
        freeReplyObject(c.plan);
        return crm_service_failed(svc);
    }
    crm_handled_t rc = CRM_APPLIED;
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_PLAN_FMT, c.cid);
    if (has_open && strcmp(open.dealer_id, b->dealer_id)) {
        /* Another dealer has it now: the old dealer's plan ends. */
        sched_task_close(svc, tx, &open, "cancelled", NULL, msg->ts);
        has_open = 0;
    }
    bool first = fresh && (!has_open || !strcmp(open.kind, "first_contact"));
    if (first) {
        /* Contact within the first-contact time (working hours) of being
           dispatched or assigned. */
        if (has_open)
            sched_task_close(svc, tx, &open, "replaced", NULL, msg->ts);
        sched_task_t t = {0};
        snprintf(t.customer_id, sizeof t.customer_id, "%s", c.cid);
        snprintf(t.dealer_id, sizeof t.dealer_id, "%s", b->dealer_id);
        snprintf(t.consultant_id, sizeof t.consultant_id, "%s", consultant);
        snprintf(t.kind, sizeof t.kind, "first_contact");
        snprintf(t.source, sizeof t.source, "rule");
        snprintf(t.content, sizeof t.content, "first contact (%s)", b->reason);
        t.due_ms = crm_work_shift(s->cal, sched_hours(svc, b->dealer_id), msg->ts, s->first_contact_ms);
        if (sched_task_open(svc, tx, &t, has_open ? open.task_id : NULL) != 0)
            rc = crm_service_failed(svc);
        else
            crm_tx_cmd(tx, "HSET %s task %s", key, t.task_id);
    } else if (s_move_tasks(svc, tx, c.cid, b->dealer_id, consultant) != 0) {
        rc = crm_service_failed(svc);
    }
    crm_tx_cmd(tx, "HSET %s dealer_id %s consultant_id %s", key, b->dealer_id, consultant);
    if (!s_plan(&c, "stage") || !strcmp(b->reason, "reactivated"))
        crm_tx_cmd(tx, "HSET %s stage prospect", key);
    freeReplyObject(c.plan);
    return rc;
}

/* The cadence ends: an order, or a prospect given up. */
static crm_handled_t s_end(crm_service_t *svc, crm_tx_t *tx, const char *cid, const char *stage, int64_t at)
{
    s_ctx_t c = {.cid = cid};
    if (!s_ids_ok(svc, cid, NULL, NULL))
        return CRM_REFUSE;
    if (!(c.plan = s_read_plan(svc, cid)))
        return crm_service_failed(svc);
    sched_task_t open;
    int has_open = s_open_task(svc, &c, &open);
    if (has_open < 0) {
        freeReplyObject(c.plan);
        return crm_service_failed(svc);
    }
    if (has_open)
        sched_task_close(svc, tx, &open, "cancelled", NULL, at);
    char tid[CRM_DUE_ID_MAX + 1];
    snprintf(tid, sizeof tid, "x:%s", cid);
    crm_tx_due_cancel(tx, SCHED_SET, tid);
    snprintf(tid, sizeof tid, "r:%s", cid);
    crm_tx_due_cancel(tx, SCHED_SET, tid);
    crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " stage %s", cid, stage);
    freeReplyObject(c.plan);
    return CRM_APPLIED;
}

crm_handled_t sched_on_order(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    return s_end(svc, tx, msg->body.order_placed.customer_id, "ordered", msg->ts);
}

crm_handled_t sched_on_lost(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    return s_end(svc, tx, msg->body.prospect_lost.customer_id, "lost", msg->ts);
}

crm_handled_t sched_on_transfer_decided(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_owner_transfer_decided_t *b = &msg->body.owner_transfer_decided;
    if (!s_ids_ok(svc, b->customer_id, b->dealer_id, b->to_consultant))
        return CRM_REFUSE;
    crm_tx_cmd(tx, "HDEL " CRM_KEY_PLAN_FMT " transfer_to transfer_from", b->customer_id);
    crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " transfer_decision %s transfer_decided_ms %lld", b->customer_id,
               b->decision, (long long) msg->ts);
    return CRM_APPLIED;
}

/* Leave with postponement: every open task of the consultant due in the
   window moves to the first working day after it, same time of day. */
crm_handled_t sched_on_absent(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    sched_t *s = sched_of(svc);
    const crm_body_staff_absent_t *b = &msg->body.staff_absent;
    const char *who[] = {b->dealer_id, b->staff_id};
    static const char *const names[] = {"dealer_id", "staff_id"};
    if (!crm_service_ids_ok(svc, who, names, 2, 2))
        return CRM_REFUSE;
    int64_t from = crm_day_parse(b->from), to = crm_day_parse(b->to);
    if (!b->postpone || from == INT64_MIN || to == INT64_MIN || to < from)
        return CRM_APPLIED;
    int64_t back = crm_calendar_next_working(s->cal, to + 1);
    redisReply *ids = crm_store_cmd(crm_service_store(svc), "ZRANGE " CRM_KEY_TASKS_MINE_FMT " %lld (%lld BYSCORE",
                                    b->dealer_id, b->staff_id, (long long) crm_cst_day_start_ms(from),
                                    (long long) crm_cst_day_start_ms(to + 1));
    if (!ids)
        return crm_service_failed(svc);
    crm_handled_t rc = CRM_APPLIED;
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements && rc == CRM_APPLIED; i++) {
        sched_task_t t;
        int found = sched_task_read(svc, ids->element[i]->str, &t);
        if (found < 0) {
            rc = crm_service_failed(svc);
            break;
        }
        if (!found || !sched_task_is_open(&t))
            continue;
        sched_task_t moved = t;
        moved.due_ms = crm_cst_day_start_ms(back) + (t.due_ms - crm_cst_day_start_ms(crm_cst_day(t.due_ms)));
        snprintf(moved.source, sizeof moved.source, "postponed");
        sched_task_close(svc, tx, &t, "postponed", NULL, msg->ts);
        if (sched_task_open(svc, tx, &moved, t.task_id) != 0) {
            rc = crm_service_failed(svc);
            break;
        }
        /* The plan's open task, when it was this one. */
        redisReply *cur = crm_store_cmd(crm_service_store(svc), "HGET " CRM_KEY_PLAN_FMT " task", t.customer_id);
        if (!cur) {
            rc = crm_service_failed(svc);
            break;
        }
        if (cur->type == REDIS_REPLY_STRING && !strcmp(cur->str, t.task_id))
            crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " task %s", t.customer_id, moved.task_id);
        freeReplyObject(cur);
    }
    crm_info("staff.absent", "dealer=%s staff=%s from=%s to=%s postponed=%zu", b->dealer_id, b->staff_id, b->from,
             b->to, ids->elements);
    freeReplyObject(ids);
    return rc;
}

crm_handled_t sched_regrade(crm_service_t *svc, crm_tx_t *tx, const char *cid, int64_t at)
{
    sched_t *s = sched_of(svc);
    redisReply *g = crm_store_cmd(crm_service_store(svc), "HGET " CRM_KEY_CUST_FMT " grade", cid);
    if (!g)
        return crm_service_failed(svc);
    char grade[8];
    snprintf(grade, sizeof grade, "%s", g->type == REDIS_REPLY_STRING ? g->str : "");
    freeReplyObject(g);
    s_ctx_t c = {.cid = cid};
    if (crm_grade_index(grade) < 0 || !(c.plan = s_read_plan(svc, cid)))
        return crm_grade_index(grade) < 0 ? CRM_APPLIED : crm_service_failed(svc);
    const char *old = s_plan(&c, "grade");
    crm_handled_t rc = CRM_APPLIED;
    sched_task_t open;
    int has_open = old && !strcmp(old, grade) ? 0 : s_open_task(svc, &c, &open);
    if (has_open < 0)
        rc = crm_service_failed(svc);
    crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " grade %s", cid, grade);
    if (has_open > 0 && !strcmp(open.source, "grade")) {
        int64_t last = s_plan_i64(&c, "last_contact_ms");
        sched_task_t next = open;
        int days = crm_grade_interval_days(grade);
        next.due_ms = crm_cadence_due(s->cal, sched_hours(svc, open.dealer_id), last ? last : at, days, s->shift_followup);
        snprintf(next.content, sizeof next.content, "follow up (grade %s: at least every %d days)", grade, days);
        sched_task_close(svc, tx, &open, "replaced", NULL, at);
        if (sched_task_open(svc, tx, &next, open.task_id) != 0)
            rc = crm_service_failed(svc);
        else
            crm_tx_cmd(tx, "HSET " CRM_KEY_PLAN_FMT " task %s", cid, next.task_id);
    }
    freeReplyObject(c.plan);
    return rc;
}
