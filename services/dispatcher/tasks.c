/*  tasks: task.opened / task.closed -> dealer.task on dealer.<D>. */
#include <string.h>

#include "crm_str.h"
#include "tasks.h"

/* 1: the dealer is in the registry; 0: it is not (logged); -1: store failure. */
static int s_dealer_known(crm_service_t *svc, const char *type, const char *task,
                          const char *dealer)
{
    redisReply *e = crm_store_cmd(crm_service_store(svc), "EXISTS " CRM_KEY_DEALER_FMT, dealer);
    if (!e)
        return -1;
    int known = e->type == REDIS_REPLY_INTEGER && e->integer > 0;
    freeReplyObject(e);
    if (!known)
        crm_warn("task.dealer_unknown",
                 "type=%s task=%s dealer=%s why=\"no such dealer: not forwarded\"", type, task,
                 dealer);
    return known;
}

/* Appended on the dealer's own stream, numbered with its dispatches; the
   publish hook pushes it live on the gateway after the commit. */
static crm_handled_t s_emit(crm_tx_t *tx, crm_msg_t *ev, const char *dealer)
{
    crm_fmt(ev->stream, sizeof ev->stream, "dealer.%s", dealer);
    int k = crm_tx_emit(tx, ev);
    crm_msg_clear(ev);
    return k < 0 ? CRM_RETRY : CRM_APPLIED;
}

crm_handled_t tasks_on_opened(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_task_opened_t *t = &msg->body.task_opened;
    const char *ids[] = {t->task_id, t->customer_id, t->dealer_id, t->consultant_id};
    static const char *const names[] = {"task_id", "customer_id", "dealer_id", "consultant_id"};
    if (!crm_service_ids_ok(svc, ids, names, 4, 3))
        return CRM_REFUSE;
    int known = s_dealer_known(svc, "task.opened", t->task_id, t->dealer_id);
    if (known < 0)
        return crm_service_failed(svc);
    if (!known)
        return CRM_APPLIED;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_dealer_task);
    CRM_SET_STR(&ev, dealer_task, task_id, t->task_id);
    CRM_SET_STR(&ev, dealer_task, customer_id, t->customer_id);
    CRM_SET_STR(&ev, dealer_task, dealer_id, t->dealer_id);
    CRM_SET_STR(&ev, dealer_task, state, "open");
    if (t->has.consultant_id && t->consultant_id && *t->consultant_id)
        CRM_SET_STR(&ev, dealer_task, consultant_id, t->consultant_id);
    CRM_SET_STR(&ev, dealer_task, kind, t->kind);
    CRM_SET_I64(&ev, dealer_task, due_at, t->due_at);
    if (t->has.content && t->content && *t->content)
        CRM_SET_STR(&ev, dealer_task, content, t->content);
    crm_handled_t rc = s_emit(tx, &ev, t->dealer_id);
    if (rc == CRM_APPLIED)
        crm_info("task.forwarded", "task=%s dealer=%s customer=%s state=open kind=%s due_at=%lld",
                 t->task_id, t->dealer_id, t->customer_id, t->kind, (long long) t->due_at);
    return rc;
}

crm_handled_t tasks_on_closed(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_task_closed_t *t = &msg->body.task_closed;
    const char *ids[] = {t->task_id, t->customer_id, t->dealer_id};
    static const char *const names[] = {"task_id", "customer_id", "dealer_id"};
    if (!crm_service_ids_ok(svc, ids, names, 3, 3))
        return CRM_REFUSE;
    static const char *const states[] = {"done", "replaced", "postponed", "cancelled"};
    bool state_ok = false;
    for (size_t i = 0; t->state && i < sizeof states / sizeof states[0]; i++)
        state_ok |= !strcmp(t->state, states[i]);
    if (!state_ok) {
        crm_service_why(svc, "state: done, replaced, postponed or cancelled expected");
        return CRM_REFUSE;
    }
    int known = s_dealer_known(svc, "task.closed", t->task_id, t->dealer_id);
    if (known < 0)
        return crm_service_failed(svc);
    if (!known)
        return CRM_APPLIED;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_dealer_task);
    CRM_SET_STR(&ev, dealer_task, task_id, t->task_id);
    CRM_SET_STR(&ev, dealer_task, customer_id, t->customer_id);
    CRM_SET_STR(&ev, dealer_task, dealer_id, t->dealer_id);
    CRM_SET_STR(&ev, dealer_task, state, t->state);
    crm_handled_t rc = s_emit(tx, &ev, t->dealer_id);
    if (rc == CRM_APPLIED)
        crm_info("task.forwarded", "task=%s dealer=%s customer=%s state=%s", t->task_id,
                 t->dealer_id, t->customer_id, t->state);
    return rc;
}

/* audit.finding / audit.cleared (crm-auditor) -> dealer.finding on the
   record's dealer's stream: an error the moment it is entered, and its
   clearing once corrected. Warnings stay with the carmaker. */
crm_handled_t tasks_on_finding(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    bool open = msg->type == CRM_T_audit_finding;
    const char *cid = open ? msg->body.audit_finding.customer_id : msg->body.audit_cleared.customer_id;
    const char *dealer = open ? msg->body.audit_finding.dealer_id : msg->body.audit_cleared.dealer_id;
    const char *ids[] = {cid, dealer};
    static const char *const names[] = {"customer_id", "dealer_id"};
    if (!crm_service_ids_ok(svc, ids, names, 2, 1))
        return CRM_REFUSE;
    if (!dealer || !*dealer || (open && strcmp(msg->body.audit_finding.severity, "error")))
        return CRM_APPLIED; /* nobody's file, or a warning */
    int known = s_dealer_known(svc, crm_type_name(msg->type), cid, dealer);
    if (known <= 0)
        return known < 0 ? crm_service_failed(svc) : CRM_APPLIED;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_dealer_finding);
    CRM_SET_STR(&ev, dealer_finding, customer_id, cid);
    CRM_SET_STR(&ev, dealer_finding, dealer_id, dealer);
    CRM_SET_STR(&ev, dealer_finding, state, open ? "open" : "cleared");
    if (open) {
        const crm_body_audit_finding_t *f = &msg->body.audit_finding;
        CRM_SET_STR(&ev, dealer_finding, field, f->field);
        CRM_SET_STR(&ev, dealer_finding, code, f->code);
        CRM_SET_STR(&ev, dealer_finding, rule, f->has.rule ? f->rule : NULL);
        CRM_SET_STR(&ev, dealer_finding, part, f->has.part ? f->part : NULL);
        CRM_SET_STR(&ev, dealer_finding, severity, f->severity);
        CRM_SET_STR(&ev, dealer_finding, message, f->has.message ? f->message : NULL);
        CRM_SET_STR(&ev, dealer_finding, consultant_id, f->has.consultant_id ? f->consultant_id : NULL);
    } else {
        const crm_body_audit_cleared_t *f = &msg->body.audit_cleared;
        CRM_SET_STR(&ev, dealer_finding, field, f->field);
        CRM_SET_STR(&ev, dealer_finding, code, f->code);
        CRM_SET_STR(&ev, dealer_finding, rule, f->has.rule ? f->rule : NULL);
    }
    crm_handled_t rc = s_emit(tx, &ev, dealer);
    if (rc == CRM_APPLIED)
        crm_info("finding.forwarded", "dealer=%s customer=%s state=%s", dealer, cid, open ? "open" : "cleared");
    return rc;
}

/* notify.call (crm-notifier) -> dealer.call on the dealer's stream: a call
   task for one of its consultants. Call-centre tasks stay with the carmaker. */
crm_handled_t tasks_on_call(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_notify_call_t *c = &msg->body.notify_call;
    const char *ids[] = {c->call_id, c->has.dealer_id ? c->dealer_id : NULL,
                         c->has.consultant_id ? c->consultant_id : NULL, c->has.customer_id ? c->customer_id : NULL};
    static const char *const names[] = {"call_id", "dealer_id", "consultant_id", "customer_id"};
    if (!crm_service_ids_ok(svc, ids, names, 4, 1))
        return CRM_REFUSE;
    if (!c->has.dealer_id || !c->dealer_id[0] || !strcmp(c->queue, "callcentre"))
        return CRM_APPLIED;
    int known = s_dealer_known(svc, "notify.call", c->call_id, c->dealer_id);
    if (known <= 0)
        return known < 0 ? crm_service_failed(svc) : CRM_APPLIED;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_dealer_call);
    CRM_SET_STR(&ev, dealer_call, call_id, c->call_id);
    CRM_SET_STR(&ev, dealer_call, dealer_id, c->dealer_id);
    if (c->has.consultant_id && c->consultant_id[0])
        CRM_SET_STR(&ev, dealer_call, consultant_id, c->consultant_id);
    if (c->has.customer_id && c->customer_id[0])
        CRM_SET_STR(&ev, dealer_call, customer_id, c->customer_id);
    if (c->has.phone && c->phone[0])
        CRM_SET_STR(&ev, dealer_call, phone, c->phone);
    CRM_SET_STR(&ev, dealer_call, topic, c->template);
    CRM_SET_STR(&ev, dealer_call, text, c->text);
    CRM_SET_I64(&ev, dealer_call, due_at, c->due_at);
    crm_handled_t rc = s_emit(tx, &ev, c->dealer_id);
    if (rc == CRM_APPLIED)
        crm_info("call.forwarded", "call=%s dealer=%s customer=%s", c->call_id, c->dealer_id,
                 c->has.customer_id ? c->customer_id : "-");
    return rc;
}
