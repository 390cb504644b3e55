/*  crm-dispatcher: hands test-drive requests to dealers at the right moment,
 *  and keeps the dealer registry.
 *
 *  On testdrive.requested it stores the test drive and chooses its dealer
 *  (the prospect's choice, else city, province, region; fewest open test
 *  drives; dealers at capacity that day skipped), recording why. At T-3
 *  days 09:00 China time (at once if that has passed) a durable timer
 *  fires testdrive.due and the dispatch goes onto the dealer's own stream;
 *  a dealer that stays silent is escalated (both timers compact ones in
 *  crm:due:dispatch, decided from the record when they fall due). Both
 *  are applied in batches (up
 *  to 512 in one transaction), read for in a constant number of Redis round
 *  trips per batch (dispatch.c says which). The scheduler's tasks
 *  (task.opened, task.closed) go onto the same stream as dealer.task. The
 *  registry (dealers, their certificates, the sales regions) changes only
 *  through requests on the control endpoint; dealers' systems talk to the
 *  gateway.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_str.h"
#include "crm_service.h"
#include "dispatch.h"
#include "gateway.h"
#include "tasks.h"
#include "uplink.h"

static gateway_t *s_gateway;

/* Committed dispatches go to their dealer live as well. */
static void dispatcher_on_publish(void *arg, const crm_emit_t *emit)
{
    (void) arg;
    if (s_gateway && !strncmp(emit->stream, "dealer.", 7))
        gateway_push(s_gateway, emit->stream + 7, emit->frame, emit->len);
}

/* cert.issue: crmctl made the key pair and keeps the secret; the public
   key is trusted here, at once (the answer comes after the file is read). */
static crm_handled_t dispatcher_on_cert_issue(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_cert_issue_t *b = &crm_req_msg(req)->body.cert_issue;
    if (!crm_id_valid(CRM_ID_NAME, b->id))
        return crm_req_fail(req, "id", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    redisReply *e = crm_store_cmd(crm_service_store(svc), "EXISTS " CRM_KEY_DEALER_FMT, b->id);
    if (!e)
        return crm_service_failed(svc);
    bool known = e->integer;
    freeReplyObject(e);
    if (!known)
        return crm_req_fail(req, "id", "unknown", "no dealer %s (crmctl dealer add first)", b->id);
    crm_handled_t rc = crm_req_cert_issue(req, tx, gateway_curve(s_gateway));
    if (rc != CRM_APPLIED)
        return rc;
    crm_msg_t *a = crm_req_answer_msg(req);
    char line[1100];
    crm_fmt(line, sizeof line, "gateway_key=%s", gateway_public_key(s_gateway));
    crm_strs_push(&a->body.reply.fields, line);
    crm_fmt(line, sizeof line, "gateway_cert=%s", crm_service_opt(svc, "server-cert"));
    crm_strs_push(&a->body.reply.fields, line);
    a->body.reply.has.fields = true;
    return CRM_APPLIED;
}

/* cert.revoke: refused from now on; open subscriptions are cut at once. */
static crm_handled_t dispatcher_on_cert_revoke(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    (void) svc;
    crm_handled_t rc = crm_req_cert_revoke(req, tx, gateway_curve(s_gateway));
    if (rc == CRM_APPLIED)
        gateway_cut(s_gateway);
    return rc;
}

static void dispatcher_regions_tick(crm_service_t *svc)
{
    /* Another instance (or a failed commit) may have changed the table. */
    dispatch_load_regions(svc);
}

static int dispatcher_start(crm_service_t *svc)
{
    const char *mask = crm_service_opt(svc, "mask-contacts");
    dispatch_config.mask_contacts = mask && (!strcmp(mask, "1") || !strcmp(mask, "yes"));
    if (crm_service_opt_i64(svc, "default-capacity", 0, 100000, &dispatch_config.default_capacity) != 0 ||
        crm_service_opt_i64(svc, "dispatch-days-before", 0, 30, &dispatch_config.days_before) != 0 ||
        crm_service_opt_i64(svc, "dispatch-hour", 0, 23, &dispatch_config.hour) != 0 ||
        crm_service_opt_i64(svc, "escalate-after-h", 1, 24 * 30, &dispatch_config.escalate_h) != 0)
        return -1;
    if (dispatch_migrate_timers(svc) != 0)
        return -1;
    if (dispatch_load_regions(svc) != 0) {
        crm_error("dispatcher.regions_unavailable", "why=\"cannot read or write the sales regions\"");
        return -1;
    }
    s_gateway = gateway_new(svc, crm_service_opt(svc, "cert-dir"), crm_service_opt(svc, "server-cert"),
                            crm_service_opt(svc, "gateway-pub"), crm_service_opt(svc, "gateway-router"),
                            dispatch_on_ack, dispatch_on_status, uplink_gateway_rows);
    if (!s_gateway)
        return -1;
    crm_service_set_publish_hook(svc, dispatcher_on_publish, NULL);
    return 0;
}

static void dispatcher_stop(crm_service_t *svc)
{
    (void) svc;
    gateway_destroy(&s_gateway);
    dispatch_forget();
}

static const crm_handler_t dispatcher_handlers[] = {
    {"testdrive.requested", dispatch_on_requested, true},
    {"testdrive.due", dispatch_on_due, true},
    {"timers.fired", dispatch_on_fired, false},
    {"task.opened", tasks_on_opened, false},
    {"task.closed", tasks_on_closed, false},
    {"audit.finding", tasks_on_finding, false},
    {"audit.cleared", tasks_on_finding, false},
    {"notify.call", tasks_on_call, false},
    {NULL, NULL, false},
};

static const crm_request_t dispatcher_requests[] = {
    {"dealer.register", dispatch_on_register, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"dealer.update", dispatch_on_update, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"regions.load", dispatch_on_regions, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"cert.issue", dispatcher_on_cert_issue, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"cert.revoke", dispatcher_on_cert_revoke, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};
/* The registry's rows, then the uplink's (the CRM department acting for a
   dealer): built at start. */
static crm_request_t dispatcher_all_requests[sizeof dispatcher_requests / sizeof dispatcher_requests[0] + 32];

static const crm_tick_t dispatcher_ticks[] = {
    {"acks", 100, dispatch_ack_tick},
    {"regions", 5000, dispatcher_regions_tick},
    {NULL, 0, NULL},
};

static const char *const dispatcher_timers[] = {DISPATCH_TIMERS, NULL};
static const char *const dispatcher_due[] = {DISPATCH_DUE, NULL};

static const crm_opt_t dispatcher_opts[] = {
    {"mask-contacts", "CRM_MASK_CONTACTS", "0",
     "1: dealers get the prospect's mobile masked (138****5678) and no other number", NULL},
    {"default-capacity", "CRM_DEFAULT_CAPACITY", "10",
     "Test drives a dealer takes per day when its registry entry sets none (0: no limit)", NULL},
    {"dispatch-days-before", "CRM_DISPATCH_DAYS_BEFORE", "3",
     "Dispatch a test drive this many days before it (our rule: 3)", NULL},
    {"dispatch-hour", "CRM_DISPATCH_HOUR", "9", "... at this hour, China Standard Time (our rule: 9)", NULL},
    {"escalate-after-h", "CRM_ESCALATE_AFTER_H", "24",
     "Escalate a dealer that has not acknowledged this many hours after the dispatch, or 24 h before "
     "the test drive if sooner (our rule: 24)",
     NULL},
    {"gateway-pub", "CRM_GATEWAY_PUB", GATEWAY_PUB_DEFAULT, "Dealer gateway: live dispatches (XPUB, CURVE)", NULL},
    {"gateway-router", "CRM_GATEWAY_ROUTER", GATEWAY_ROUTER_DEFAULT,
     "Dealer gateway: replay, acknowledgements, status (ROUTER, CURVE)", NULL},
    {"cert-dir", "CRM_CERT_DIR", GATEWAY_CERT_DIR_DEFAULT, "Dealers' public certificates (crmctl dealer cert)", NULL},
    {UPLINK_KEEP_OPT, "CRM_UPLINK_KEEP_DAYS", "90",
     "Days a dealer's record id is remembered: the same record sent again within them changes nothing", NULL},
    {"server-cert", "CRM_SERVER_CERT", GATEWAY_SERVER_CERT_DEFAULT,
     "The gateway's certificate (public part; the secret is <file>_secret); made on first start", NULL},
    CRM_OPT_END,
};

static const crm_service_def_t dispatcher_def = {
    .name = "dispatcher",
    .summary = "Test-drive dispatcher, dealer registry and dealer gateway.",
    .pub_default = "tcp://127.0.0.1:7102",
    .control_default = "tcp://127.0.0.1:7212",
    .handlers = dispatcher_handlers,
    .requests = dispatcher_all_requests,
    .ticks = dispatcher_ticks,
    .timer_sets = dispatcher_timers,
    .due_sets = dispatcher_due,
    .opts = dispatcher_opts,
    .on_start = dispatcher_start,
    .on_stop = dispatcher_stop,
    .prefetch = dispatch_prefetch,
};

int main(int argc, char **argv)
{
    size_t n = 0;
    for (size_t i = 0; dispatcher_requests[i].type; i++)
        dispatcher_all_requests[n++] = dispatcher_requests[i];
    for (size_t i = 0; uplink_control_rows[i].type && n + 1 < sizeof dispatcher_all_requests / sizeof dispatcher_all_requests[0]; i++)
        dispatcher_all_requests[n++] = uplink_control_rows[i];
    return crm_service_main(&dispatcher_def, argc, argv);
}
