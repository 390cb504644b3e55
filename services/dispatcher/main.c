/*  crm-dispatcher: hands test-drive requests to dealers at the right moment.
 *
 *  Foundation stage: it follows the testdrive stream (so its cursor and
 *  catch-up run from day one) and fires its durable timer set; dispatch
 *  rules and the dealer gateway arrive with the dispatcher issue.
 */
#include "crm_service.h"

static crm_handled_t dispatcher_on_requested(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) svc;
    (void) tx;
    crm_info("testdrive.seen", "testdrive=%s at=%lld", msg->body.testdrive_requested.testdrive_id,
             (long long) msg->body.testdrive_requested.at);
    return CRM_APPLIED;
}

static const crm_handler_t dispatcher_handlers[] = {
    {"testdrive.requested", dispatcher_on_requested, false},
    {NULL, NULL, false},
};

static const char *const dispatcher_timers[] = {"dispatch", NULL};

static const crm_service_def_t dispatcher_def = {
    .name = "dispatcher",
    .summary = "Test-drive dispatcher and dealer gateway.",
    .pub_default = "tcp://127.0.0.1:7102",
    .handlers = dispatcher_handlers,
    .timer_sets = dispatcher_timers,
};

int main(int argc, char **argv) { return crm_service_main(&dispatcher_def, argc, argv); }
