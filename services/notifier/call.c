/*  Phone tasks (TM): a call for a dealer's consultant or the call centre.
 *  No I/O: the task is kept in Redis in the same commit as the decision to
 *  "send" it, so it is opened exactly once; crmctl tasks list shows it and
 *  crm-dispatcher puts it on the dealer's gateway stream (dealer.call).
 *  Its due time is the moment the rules allowed, never in quiet hours.
 */
#include <stdlib.h>
#include <string.h>

#include "notifier.h"

int ntf_call_open(crm_service_t *svc, crm_tx_t *tx, const redisReply *h, const char *id, char *call_id, size_t size)
{
    crm_store_t *store = crm_service_store(svc);
    redisReply *r = crm_store_cmd(store, "INCR " CRM_KEY_CALL_IDS);
    if (!r)
        return -1;
    snprintf(call_id, size, "P%lld", r->integer);
    freeReplyObject(r);
    const char *queue = crm_reply_field(h, "to"), *rid = crm_reply_field(h, "request_id");
    const char *cust = crm_reply_field(h, "customer_id"), *staff = crm_reply_field(h, "recipient_id");
    const char *tpl = crm_reply_field(h, "template"), *text = crm_reply_field(h, "text");
    const char *dealer = crm_reply_field(h, "dealer_id");
    if (queue && strcmp(queue, "callcentre") && (!dealer || !*dealer))
        dealer = queue;
    char phone[32] = "";
    if (cust && *cust && crm_id_valid(CRM_ID_NAME, cust)) {
        redisReply *m = crm_store_cmd(store, "HGET " CRM_KEY_CUST_FMT " mobile", cust);
        if (!m)
            return -1;
        if (m->type == REDIS_REPLY_STRING && m->len < sizeof phone)
            snprintf(phone, sizeof phone, "%s", m->str);
        freeReplyObject(m);
    }
    int64_t now = crm_now_ms();
    char due[24];
    snprintf(due, sizeof due, "%lld", (long long) now);
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_CALL_FMT, call_id);
    const char *fv[] = {"call_id", call_id, "request_id", rid, "queue", queue, "dealer_id", dealer,
                        "consultant_id", staff, "customer_id", cust, "phone", phone[0] ? phone : NULL,
                        "template", tpl, "text", text, "due_ms", due, "state", "open", "created_ms", due};
    const char *argv[2 + sizeof fv / sizeof fv[0]];
    int argc = 0;
    argv[argc++] = "HSET";
    argv[argc++] = key;
    for (size_t i = 0; i + 1 < sizeof fv / sizeof fv[0]; i += 2)
        if (fv[i + 1] && *fv[i + 1])
            argv[argc++] = fv[i], argv[argc++] = fv[i + 1];
    crm_tx_cmdargv(tx, argc, argv, NULL);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_CALLS_OPEN_FMT " %s %s", queue, due, call_id);
    crm_tx_cmd(tx, "SADD " CRM_KEY_CALLS_QUEUES " %s", queue);
    crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " state sent reason %s sent_ms %s provider_id %s updated_ms %s", id, "", due, call_id,
               due);
    crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " attempts 1", id);
    ntf_log(tx, id, "sent", "call_task", call_id, 1);
    ntf_metric(tx, "sent", 1);

    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_notify_call);
    CRM_SET_STR(&ev, notify_call, call_id, call_id);
    CRM_SET_STR(&ev, notify_call, request_id, rid);
    CRM_SET_STR(&ev, notify_call, queue, queue);
    if (dealer && *dealer)
        CRM_SET_STR(&ev, notify_call, dealer_id, dealer);
    if (staff && *staff)
        CRM_SET_STR(&ev, notify_call, consultant_id, staff);
    if (cust && *cust)
        CRM_SET_STR(&ev, notify_call, customer_id, cust);
    if (phone[0])
        CRM_SET_STR(&ev, notify_call, phone, phone);
    CRM_SET_STR(&ev, notify_call, template, tpl ? tpl : "");
    CRM_SET_STR(&ev, notify_call, text, text ? text : "");
    CRM_SET_I64(&ev, notify_call, due_at, now);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_msg_init(&ev, CRM_T_notify_sent);
    CRM_SET_STR(&ev, notify_sent, request_id, rid);
    CRM_SET_STR(&ev, notify_sent, channel, "call");
    CRM_SET_STR(&ev, notify_sent, provider_id, call_id);
    CRM_SET_I64(&ev, notify_sent, attempt, 1);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_info("notify.call", "id=%s call=%s queue=%s customer=%s", id, call_id, queue, cust ? cust : "-");
    return 0;
}
