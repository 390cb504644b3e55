/*  crm-scheduler: follow-up rules by intent grade.
 *
 *  It follows the uplink's follow-ups, orders and lost prospects and the
 *  owners the dispatcher and the uplink set, keeps each prospect's plan and
 *  tasks, and fires its compact timers (crm:due:followup) as timers.fired
 *  events it applies itself: warnings, overdue, expired opportunities,
 *  released prospects. Any number of instances may run: each timer fires
 *  once, each event is applied by one of them (shared consumer).
 *  Every "today" and "end of day" is China Standard Time, from the common
 *  clock.
 */
#include "sched.h"

#include <stdlib.h>
#include <string.h>

static sched_t s_state;

sched_t *sched_of(crm_service_t *svc)
{
    (void) svc;
    return &s_state;
}

crm_handled_t sched_on_calendar_loaded(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);

static const crm_handler_t scheduler_handlers[] = {
    {"followup.recorded", sched_on_followup, false},
    {"owner.changed", sched_on_owner, false},
    {"order.placed", sched_on_order, false},
    {"prospect.lost", sched_on_lost, false},
    {"owner.transfer_decided", sched_on_transfer_decided, false},
    {"staff.absent", sched_on_absent, false},
    {"timers.fired", sched_on_fired, false},
    {"dealer.registered", sched_on_dealer_updated, false},
    {"dealer.updated", sched_on_dealer_updated, false},
    {"testdrive.dispatched", sched_on_dispatched, false},
    {"testdrive.status", sched_on_testdrive_status, false},
    {"delivery.delayed", sched_on_delayed, false},
    {"vehicle.delivered", sched_on_delivered, false},
    {"service.recorded", sched_on_serviced, false},
    {"lead.created", sched_on_lead, false},
    {"lead.merged", sched_on_lead, false},
    {"customer.updated", sched_on_customer_updated, false},
    {"customer.recorded", sched_on_customer_recorded, false},
    {"calendar.loaded", sched_on_calendar_loaded, false},
    {NULL, NULL, false},
};

static const crm_request_t scheduler_requests[] = {
    {"calendar.load", sched_req_calendar_load, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

static const char *const scheduler_due[] = {SCHED_SET, NULL};

static const crm_tick_t scheduler_ticks[] = {
    {"calendar", 2000, sched_calendar_tick},
    {NULL, 0, NULL},
};

static const crm_opt_t scheduler_opts[] = {
    {"hours", "CRM_HOURS", "09:00-18:00", "Dealers' working hours, China time (HH:MM-HH:MM)", NULL},
    {"first-contact-hours", "CRM_FIRST_CONTACT_HOURS", "24",
     "A prospect dispatched or assigned must be contacted within this many working hours", NULL},
    {"warn-lead-min", "CRM_WARN_LEAD_MIN", "120",
     "followup.due warns this many working minutes before an activity is due", NULL},
    {"day-end", "CRM_DAY_END", "23:59",
     "The last minute of the working day that still counts (overdue after it), China time", NULL},
    {"late-after-ms", "CRM_LATE_AFTER_MS", "5000",
     "A timer fired later than this after its due time is marked late (late_ms)", NULL},
    {"release-days", "CRM_RELEASE_DAYS", "30", "A prospect with no effective follow-up this long is released", NULL},
    {"pushed-out-days", "CRM_PUSHED_OUT_DAYS", "3",
     "Moving an expected date that passes within this many days later, grade unchanged, is pushing it out", NULL},
    {"calendar-days", "CRM_CALENDAR_DAYS", "",
     "Rules in days that do not move off non-working days: followup, expiry (comma-separated)", NULL},
    {"owner-callback-days", "CRM_OWNER_CALLBACK_DAYS", "7,30,90",
     "Owner call-back tasks this many days after delivery (comma-separated, at most 8)", NULL},
    {"service-reminder-days", "CRM_SERVICE_REMINDER_DAYS", "180",
     "A service reminder this many days after delivery or the last service", NULL},
    CRM_OPT_END};

static int scheduler_start(crm_service_t *svc)
{
    sched_t *s = &s_state;
    int64_t fc, lead, late, rel, po;
    if (crm_hours_parse(crm_service_opt(svc, "hours"), &s->hours) != 0) {
        fprintf(stderr, "crm-scheduler: --hours: expected HH:MM-HH:MM, opening before closing\n");
        return -1;
    }
    if ((s->day_end_min = crm_hhmm_parse(crm_service_opt(svc, "day-end"))) < 0) {
        fprintf(stderr, "crm-scheduler: --day-end: expected HH:MM (00:00-23:59)\n");
        return -1;
    }
    if (crm_service_opt_i64(svc, "first-contact-hours", 1, 24 * 365, &fc) != 0 ||
        crm_service_opt_i64(svc, "warn-lead-min", 0, 60 * 24 * 30, &lead) != 0 ||
        crm_service_opt_i64(svc, "late-after-ms", 0, 86400000, &late) != 0 ||
        crm_service_opt_i64(svc, "release-days", 1, 3650, &rel) != 0 ||
        crm_service_opt_i64(svc, "pushed-out-days", 0, 365, &po) != 0)
        return -1;
    s->first_contact_ms = fc * 3600000;
    s->warn_lead_ms = lead * 60000;
    s->late_after_ms = late;
    s->release_days = (int) rel;
    s->pushed_out_days = (int) po;
    const char *cd = crm_service_opt(svc, "calendar-days");
    s->shift_followup = !strstr(cd, "followup");
    s->shift_expiry = !strstr(cd, "expiry");
    int64_t sd;
    if (crm_service_opt_i64(svc, "service-reminder-days", 1, 3650, &sd) != 0)
        return -1;
    s->service_days = (int) sd;
    s->ncallbacks = 0;
    char list[128];
    snprintf(list, sizeof list, "%s", crm_service_opt(svc, "owner-callback-days"));
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *end;
        long d = strtol(p, &end, 10);
        if (*end || d < 1 || d > 3650 || s->ncallbacks == 8) {
            fprintf(stderr, "crm-scheduler: --owner-callback-days: up to 8 whole numbers of days, 1-3650\n");
            return -1;
        }
        s->callbacks[s->ncallbacks++] = (int) d;
    }
    if (!(s->reads = crm_tx_new("scheduler", 0)) || !(s->dealer_hours = zhash_new()) || sched_calendar_start(svc) != 0)
        return -1;
    /* The holidays still to come (again when the calendar is replaced). */
    crm_tx_t *tx = crm_service_tx(svc);
    sched_holidays(svc, tx);
    if (crm_service_commit(svc, tx) != 0)
        crm_warn("holidays.not_scheduled", "reason=\"%s\"", crm_store_error(crm_service_store(svc)));
    return 0;
}

static void scheduler_stop(crm_service_t *svc)
{
    (void) svc;
    crm_calendar_destroy(&s_state.cal);
    crm_tx_destroy(&s_state.reads);
    zhash_destroy(&s_state.dealer_hours);
}

static const crm_service_def_t scheduler_def = {
    .name = "scheduler",
    .summary = "Follow-up scheduler: cadence by intent grade, due, overdue, expired, released.",
    .pub_default = "tcp://127.0.0.1:7103",
    .control_default = "tcp://127.0.0.1:7213",
    .handlers = scheduler_handlers,
    .requests = scheduler_requests,
    .due_sets = scheduler_due,
    .ticks = scheduler_ticks,
    .shared_consumer = true,
    .opts = scheduler_opts,
    .on_start = scheduler_start,
    .on_stop = scheduler_stop,
};

int main(int argc, char **argv) { return crm_service_main(&scheduler_def, argc, argv); }
