/*  crm-auditor: audits dealers' customer data.
 *
 *  Foundation stage: it follows the customer stream; the audit rules arrive
 *  with their own issue.
 */
#include "crm_service.h"

static crm_handled_t auditor_on_customer(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) svc;
    (void) tx;
    crm_debug("customer.seen", "customer=%s", msg->body.customer_updated.customer_id);
    return CRM_APPLIED;
}

static const crm_handler_t auditor_handlers[] = {
    {"customer.updated", auditor_on_customer, false},
    {NULL, NULL, false},
};

static const crm_service_def_t auditor_def = {
    .name = "auditor",
    .summary = "Data-quality auditor: findings and per-dealer reports.",
    .pub_default = "tcp://127.0.0.1:7104",
    .control_default = "tcp://127.0.0.1:7214",
    .handlers = auditor_handlers,
};

int main(int argc, char **argv) { return crm_service_main(&auditor_def, argc, argv); }
