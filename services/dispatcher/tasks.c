/*  tasks: task.opened / task.closed -> dealer.task on dealer.<D>. */
#include <string.h>

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
    snprintf(ev->stream, sizeof ev->stream, "dealer.%s", dealer);
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
