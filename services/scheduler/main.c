/*  crm-scheduler: follow-up rules by intent grade.
 *
 *  Foundation stage: it follows the lead stream and fires its durable timer
 *  set "followup"; the follow-up rules arrive with their own issue.
 */
#include "crm_service.h"

static crm_handled_t scheduler_on_lead(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) svc;
    (void) tx;
    crm_debug("lead.seen", "lead=%s", msg->body.lead_created.lead_id);
    return CRM_APPLIED;
}

static const crm_handler_t scheduler_handlers[] = {
    {"lead.created", scheduler_on_lead, false},
    {NULL, NULL, false},
};

static const char *const scheduler_timers[] = {"followup", NULL};

static const crm_service_def_t scheduler_def = {
    .name = "scheduler",
    .summary = "Follow-up scheduler: due, overdue and expired opportunities.",
    .pub_default = "tcp://127.0.0.1:7103",
    .control_default = "tcp://127.0.0.1:7213",
    .handlers = scheduler_handlers,
    .timer_sets = scheduler_timers,
};

int main(int argc, char **argv) { return crm_service_main(&scheduler_def, argc, argv); }
