/*  Tasks: the planned activities a dealer's consultant must do, each with
 *  a warning timer (the lead time before it is due, in working time) and
 *  an overdue timer (the end of its CST day). Closing a task removes both
 *  in the same transaction, so a timer never fires for a task done.
 */
#include "sched.h"

#include <string.h>

static void s_copy(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

void sched_task_from_reply(const redisReply *h, sched_task_t *t)
{
    memset(t, 0, sizeof *t);
    s_copy(t->task_id, sizeof t->task_id, crm_reply_field(h, "task_id"));
    s_copy(t->customer_id, sizeof t->customer_id, crm_reply_field(h, "customer_id"));
    s_copy(t->dealer_id, sizeof t->dealer_id, crm_reply_field(h, "dealer_id"));
    s_copy(t->consultant_id, sizeof t->consultant_id, crm_reply_field(h, "consultant_id"));
    s_copy(t->kind, sizeof t->kind, crm_reply_field(h, "kind"));
    s_copy(t->source, sizeof t->source, crm_reply_field(h, "source"));
    s_copy(t->content, sizeof t->content, crm_reply_field(h, "content"));
    s_copy(t->state, sizeof t->state, crm_reply_field(h, "state"));
    const char *due = crm_reply_field(h, "due_ms");
    t->due_ms = due ? strtoll(due, NULL, 10) : 0;
}

int sched_task_read(crm_service_t *svc, const char *id, sched_task_t *t)
{
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGETALL " CRM_KEY_TASK_FMT, id);
    if (!r)
        return -1;
    int found = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    if (found)
        sched_task_from_reply(r, t);
    freeReplyObject(r);
    return found;
}

void sched_count(crm_tx_t *tx, int64_t day, const char *dealer, const char *consultant, const char *what, int n)
{
    char d[16], field[192];
    crm_day_format(day, d, sizeof d);
    snprintf(field, sizeof field, "%s|%s", consultant && *consultant ? consultant : "-", what);
    crm_tx_cmd(tx, "HINCRBY " CRM_KEY_REPORT_FMT " %s %d", d, dealer, field, n);
    crm_tx_cmd(tx, "SADD " CRM_KEY_REPORT_DEALERS_FMT " %s", d, dealer);
}

void sched_violation(crm_tx_t *tx, int64_t at, const char *code, const char *dealer, const char *consultant,
                     const char *manager, const char *customer, const char *records)
{
    char d[16], month[8], ts[24];
    crm_day_format(crm_cst_day(at), d, sizeof d);
    snprintf(month, sizeof month, "%.7s", d);
    snprintf(ts, sizeof ts, "%lld", (long long) at);
    const char *argv[] = {"XADD", NULL, "*", "code", code, "dealer_id", dealer ? dealer : "",
                          "consultant_id", consultant && *consultant ? consultant : "",
                          "manager_id", manager ? manager : "", "customer_id", customer ? customer : "",
                          "records", records ? records : "", "at", ts, "day", d};
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_VIOLATIONS_FMT, month);
    argv[1] = key;
    crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
}

void sched_manager(crm_service_t *svc, const char *dealer, const char *consultant, char *out, size_t size)
{
    out[0] = 0;
    if (!dealer || !*dealer || !consultant || !*consultant)
        return;
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGET crm:dealer:%s:staff:%s manager_id", dealer,
                                  consultant);
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(out, size, "%s", r->str);
    freeReplyObject(r);
}

typedef struct {
    crm_hours_t hours;
    int64_t read_ms;
} s_hours_t;

crm_hours_t sched_hours(crm_service_t *svc, const char *dealer)
{
    sched_t *s = sched_of(svc);
    if (!dealer || !*dealer || !s->dealer_hours)
        return s->hours;
    /* Kept 5 s: several instances share the events, so the one that did
       not apply a dealer.updated learns it this way. */
    s_hours_t *h = zhash_lookup(s->dealer_hours, dealer);
    if (h && crm_mono_ms() - h->read_ms < 5000)
        return h->hours;
    zhash_delete(s->dealer_hours, dealer);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGET " CRM_KEY_DEALER_FMT " hours", dealer);
    if (!r)
        return s->hours; /* not kept: asked again next time */
    crm_hours_t got = s->hours;
    if (r->type == REDIS_REPLY_STRING && *r->str && crm_hours_parse(r->str, &got) != 0) {
        crm_warn("dealer.hours_unreadable", "dealer=%s hours=\"%s\" using=default", dealer, r->str);
        got = s->hours;
    }
    freeReplyObject(r);
    if ((h = malloc(sizeof *h))) {
        h->hours = got;
        h->read_ms = crm_mono_ms();
        if (zhash_insert(s->dealer_hours, dealer, h) == 0)
            zhash_freefn(s->dealer_hours, dealer, free);
        else
            free(h);
    }
    return got;
}

crm_handled_t sched_on_dealer_updated(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) tx;
    sched_t *s = sched_of(svc);
    const char *d = msg->type == CRM_T_dealer_updated ? msg->body.dealer_updated.dealer_id
                                                      : msg->body.dealer_registered.dealer_id;
    if (s->dealer_hours && d)
        zhash_delete(s->dealer_hours, d);
    return CRM_APPLIED;
}

/* The escalation: a notify.request on the dealer channel for the
   consultant's manager (crm-notifier delivers it to the dealer's system). */
void sched_escalate(crm_tx_t *tx, const char *timer, int64_t due, const char *dealer, const char *manager,
                    const char *consultant, const char *customer, const char *what, const char *record)
{
    if (!manager || !*manager)
        return;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_notify_request);
    char rid[160], p[4][160];
    snprintf(rid, sizeof rid, "sched:%s:%lld", timer, (long long) due);
    CRM_SET_STR(&ev, notify_request, request_id, rid);
    CRM_SET_STR(&ev, notify_request, channel, "dealer");
    CRM_SET_STR(&ev, notify_request, to, dealer);
    CRM_SET_STR(&ev, notify_request, template, what);
    CRM_SET_STR(&ev, notify_request, customer_id, customer);
    snprintf(p[0], sizeof p[0], "manager_id=%s", manager);
    snprintf(p[1], sizeof p[1], "consultant_id=%s", consultant ? consultant : "");
    snprintf(p[2], sizeof p[2], "customer_id=%s", customer);
    snprintf(p[3], sizeof p[3], "record=%s", record);
    for (int i = 0; i < 4; i++)
        crm_strs_push(&ev.body.notify_request.params, p[i]);
    ev.body.notify_request.has.params = true;
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

void sched_overdue(crm_service_t *svc, crm_tx_t *tx, const sched_task_t *t, const char *manager, int64_t at,
                   int64_t late)
{
    (void) svc;
    char day[16];
    int64_t d = crm_cst_day(t->due_ms);
    crm_day_format(d, day, sizeof day);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_followup_overdue);
    CRM_SET_STR(&ev, followup_overdue, task_id, t->task_id);
    CRM_SET_STR(&ev, followup_overdue, customer_id, t->customer_id);
    CRM_SET_STR(&ev, followup_overdue, consultant_id, t->consultant_id);
    CRM_SET_I64(&ev, followup_overdue, due_at, t->due_ms);
    CRM_SET_STR(&ev, followup_overdue, dealer_id, t->dealer_id);
    if (manager[0])
        CRM_SET_STR(&ev, followup_overdue, manager_id, manager);
    CRM_SET_STR(&ev, followup_overdue, day, day);
    CRM_SET_STR(&ev, followup_overdue, kind, t->kind);
    if (late)
        CRM_SET_I64(&ev, followup_overdue, late_ms, late);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    char timer[48];
    snprintf(timer, sizeof timer, "o:%s", t->task_id);
    sched_escalate(tx, timer, at, t->dealer_id, manager, t->consultant_id, t->customer_id, "followup_overdue",
                   t->task_id);
    sched_count(tx, d, t->dealer_id, t->consultant_id, "due", 1);
    sched_count(tx, d, t->dealer_id, t->consultant_id, "overdue", 1);
    sched_violation(tx, at - 1, "overdue", t->dealer_id, t->consultant_id, manager, t->customer_id, t->task_id);
    crm_info("followup.overdue", "task=%s customer=%s consultant=%s manager=%s day=%s late_ms=%lld", t->task_id,
             t->customer_id, t->consultant_id, manager[0] ? manager : "-", day, (long long) late);
}

static void s_timer_id(char *out, size_t size, char kind, const char *id) { snprintf(out, size, "%c:%s", kind, id); }

int sched_task_open(crm_service_t *svc, crm_tx_t *tx, sched_task_t *t, const char *replaces)
{
    sched_t *s = sched_of(svc);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "INCR crm:ids:task");
    if (!r)
        return -1;
    snprintf(t->task_id, sizeof t->task_id, "K%lld", r->integer);
    freeReplyObject(r);
    crm_utf8_cut(t->content); /* cut at a character, never inside one */
    int64_t now = crm_now_ms();
    char due[24], created[24], day[16];
    snprintf(due, sizeof due, "%lld", (long long) t->due_ms);
    snprintf(created, sizeof created, "%lld", (long long) now);
    crm_day_format(crm_cst_day(t->due_ms), day, sizeof day);
    snprintf(t->state, sizeof t->state, "open");
    const char *argv[] = {"HSET", NULL, "task_id", t->task_id, "customer_id", t->customer_id,
                          "dealer_id", t->dealer_id, "consultant_id", t->consultant_id, "kind", t->kind,
                          "source", t->source, "content", t->content, "due_ms", due, "day", day,
                          "state", "open", "created_ms", created, "replaces", replaces ? replaces : ""};
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_TASK_FMT, t->task_id);
    argv[1] = key;
    crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_TASKS_OPEN_FMT " %lld %s", t->dealer_id, (long long) t->due_ms, t->task_id);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_TASKS_MINE_FMT " %lld %s", t->dealer_id,
               t->consultant_id[0] ? t->consultant_id : "-", (long long) t->due_ms, t->task_id);
    crm_tx_cmd(tx, "SADD " CRM_KEY_CUST_TASKS_FMT " %s", t->customer_id, t->task_id);
    crm_tx_cmd(tx, "SADD " CRM_KEY_CUST_OPEN_TASKS_FMT " %s", t->customer_id, t->task_id);
    crm_tx_cmd(tx, "SADD " CRM_KEY_TASKS_DEALERS " %s", t->dealer_id);
    char tid[CRM_DUE_ID_MAX + 1];
    int64_t warn = crm_work_shift(s->cal, sched_hours(svc, t->dealer_id), t->due_ms, -s->warn_lead_ms);
    if (warn > now) {
        s_timer_id(tid, sizeof tid, 'w', t->task_id);
        crm_tx_due(tx, SCHED_SET, tid, warn);
    }
    s_timer_id(tid, sizeof tid, 'o', t->task_id);
    crm_tx_due(tx, SCHED_SET, tid, crm_overdue_at(t->due_ms, s->day_end_min));

    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_task_opened);
    CRM_SET_STR(&ev, task_opened, task_id, t->task_id);
    CRM_SET_STR(&ev, task_opened, customer_id, t->customer_id);
    CRM_SET_STR(&ev, task_opened, dealer_id, t->dealer_id);
    if (t->consultant_id[0])
        CRM_SET_STR(&ev, task_opened, consultant_id, t->consultant_id);
    CRM_SET_STR(&ev, task_opened, kind, t->kind);
    CRM_SET_I64(&ev, task_opened, due_at, t->due_ms);
    if (t->content[0])
        CRM_SET_STR(&ev, task_opened, content, t->content);
    CRM_SET_STR(&ev, task_opened, source, t->source);
    if (replaces && *replaces)
        CRM_SET_STR(&ev, task_opened, replaces, replaces);
    int rc = crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_info("task.opened", "task=%s customer=%s dealer=%s consultant=%s kind=%s source=%s due=%lld",
             t->task_id, t->customer_id, t->dealer_id, t->consultant_id, t->kind, t->source,
             (long long) t->due_ms);
    return rc < 0 ? -1 : 0;
}

void sched_task_close(crm_service_t *svc, crm_tx_t *tx, const sched_task_t *t, const char *state,
                      const char *followup_id, int64_t at)
{
    sched_t *s = sched_of(svc);
    bool was_overdue = !strcmp(t->state, "overdue");
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long) at);
    crm_tx_cmd(tx, "HSET " CRM_KEY_TASK_FMT " state %s closed_ms %s followup_id %s", t->task_id, state, ts,
               followup_id ? followup_id : "");
    crm_tx_cmd(tx, "ZREM " CRM_KEY_TASKS_OPEN_FMT " %s", t->dealer_id, t->task_id);
    crm_tx_cmd(tx, "SREM " CRM_KEY_CUST_OPEN_TASKS_FMT " %s", t->customer_id, t->task_id);
    crm_tx_cmd(tx, "ZREM " CRM_KEY_TASKS_MINE_FMT " %s", t->dealer_id,
               t->consultant_id[0] ? t->consultant_id : "-", t->task_id);
    char tid[CRM_DUE_ID_MAX + 1];
    s_timer_id(tid, sizeof tid, 'w', t->task_id);
    crm_tx_due_cancel(tx, SCHED_SET, tid);
    s_timer_id(tid, sizeof tid, 'o', t->task_id);
    crm_tx_due_cancel(tx, SCHED_SET, tid);
    if (!strcmp(state, "done")) {
        int64_t day = crm_cst_day(t->due_ms), end = crm_overdue_at(t->due_ms, s->day_end_min);
        if (was_overdue) {
            sched_count(tx, day, t->dealer_id, t->consultant_id, "done_late", 1);
        } else if (at < end) {
            /* Done by the end of its day (or early): due that day and done. */
            sched_count(tx, day, t->dealer_id, t->consultant_id, "due", 1);
            sched_count(tx, day, t->dealer_id, t->consultant_id, "done", 1);
        } else {
            /* Done late before its overdue timer fired (the scheduler was
               catching up): overdue all the same, and done late. */
            char manager[128];
            sched_manager(svc, t->dealer_id, t->consultant_id, manager, sizeof manager);
            sched_overdue(svc, tx, t, manager, end, at - end);
            sched_count(tx, day, t->dealer_id, t->consultant_id, "done_late", 1);
            was_overdue = true;
        }
    }
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_task_closed);
    CRM_SET_STR(&ev, task_closed, task_id, t->task_id);
    CRM_SET_STR(&ev, task_closed, customer_id, t->customer_id);
    CRM_SET_STR(&ev, task_closed, dealer_id, t->dealer_id);
    CRM_SET_STR(&ev, task_closed, state, state);
    if (followup_id && *followup_id)
        CRM_SET_STR(&ev, task_closed, followup_id, followup_id);
    if (was_overdue)
        CRM_SET_BOOL(&ev, task_closed, overdue, true);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_info("task.closed", "task=%s customer=%s state=%s followup=%s", t->task_id, t->customer_id, state,
             followup_id ? followup_id : "-");
}

bool sched_task_is_open(const sched_task_t *t) { return !strcmp(t->state, "open") || !strcmp(t->state, "overdue"); }

int sched_open_tasks(crm_service_t *svc, const char *cid, sched_task_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    redisReply *ids = crm_store_cmd(crm_service_store(svc), "SMEMBERS " CRM_KEY_CUST_OPEN_TASKS_FMT, cid);
    if (!ids)
        return -1;
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements == 0) {
        freeReplyObject(ids);
        return 0;
    }
    crm_tx_t *reads = crm_tx_new("scheduler", 0);
    sched_task_t *t = calloc(ids->elements, sizeof *t);
    int rc = reads && t ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < ids->elements; i++)
        if (ids->element[i]->type != REDIS_REPLY_STRING ||
            crm_tx_cmd(reads, "HGETALL " CRM_KEY_TASK_FMT, ids->element[i]->str) < 0)
            rc = -1;
    if (rc == 0 && crm_store_pipeline(crm_service_store(svc), reads) != 0 && crm_store_passing(crm_service_store(svc)))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < ids->elements; i++) {
        const redisReply *h = crm_tx_result(reads, (int) i);
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
            continue;
        sched_task_from_reply(h, &t[*n]);
        if (sched_task_is_open(&t[*n]) && crm_id_valid(CRM_ID_NAME, t[*n].dealer_id))
            (*n)++;
    }
    crm_tx_destroy(&reads);
    freeReplyObject(ids);
    if (rc != 0) {
        free(t);
        *n = 0;
        return -1;
    }
    *out = t;
    return 0;
}
