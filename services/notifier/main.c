/*  crm-notifier: notifies customers and dealers.
 *
 *  Foundation stage: it follows the notify stream; gateways, consent and
 *  limits arrive with their own issue.
 */
#include "crm_service.h"

static crm_handled_t notifier_on_request(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) svc;
    (void) tx;
    crm_debug("notify.seen", "request=%s", msg->body.notify_request.request_id);
    return CRM_APPLIED;
}

static const crm_handler_t notifier_handlers[] = {
    {"notify.request", notifier_on_request, false},
    {NULL, NULL, false},
};

static const crm_service_def_t notifier_def = {
    .name = "notifier",
    .summary = "Notifier: SMS, email and dealer notifications.",
    .pub_default = "tcp://127.0.0.1:7105",
    .control_default = "tcp://127.0.0.1:7215",
    .handlers = notifier_handlers,
};

int main(int argc, char **argv) { return crm_service_main(&notifier_def, argc, argv); }
