/*  crm-dispatcher: hands test-drive requests to dealers at the right moment.
 *
 *  On testdrive.requested it stores the test drive and chooses its dealer
 *  (the prospect's choice, else city, province, region; fewest open test
 *  drives; dealers at capacity that day skipped), recording why. At T-3
 *  days 09:00 China time (at once if that has passed) a durable timer
 *  fires testdrive.due and the dispatch goes onto the dealer's own stream;
 *  a dealer that stays silent is escalated.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_service.h"
#include "dispatch.h"

static int dispatcher_start(crm_service_t *svc)
{
    const char *mask = crm_service_opt(svc, "mask-contacts");
    dispatch_config.mask_contacts = mask && (!strcmp(mask, "1") || !strcmp(mask, "yes"));
    dispatch_config.default_capacity = atoll(crm_service_opt(svc, "default-capacity"));
    return 0;
}

static const crm_handler_t dispatcher_handlers[] = {
    {"testdrive.requested", dispatch_on_requested, false},
    {"testdrive.due", dispatch_on_due, false},
    {NULL, NULL, false},
};

static const char *const dispatcher_timers[] = {DISPATCH_TIMERS, NULL};

static const crm_opt_t dispatcher_opts[] = {
    {"mask-contacts", "CRM_MASK_CONTACTS", "0",
     "1: dealers get the prospect's mobile masked (138****5678) and no other number", NULL},
    {"default-capacity", "CRM_DEFAULT_CAPACITY", "10",
     "Test drives a dealer takes per day when its registry entry sets none (0: no limit)", NULL},
    CRM_OPT_END,
};

static const crm_service_def_t dispatcher_def = {
    .name = "dispatcher",
    .summary = "Test-drive dispatcher and dealer gateway.",
    .pub_default = "tcp://127.0.0.1:7102",
    .handlers = dispatcher_handlers,
    .timer_sets = dispatcher_timers,
    .opts = dispatcher_opts,
    .on_start = dispatcher_start,
};

int main(int argc, char **argv) { return crm_service_main(&dispatcher_def, argc, argv); }
