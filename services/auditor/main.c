/*  crm-auditor: the carmaker's data-quality audit of dealers' customer
 *  files, live and by run; ABC value classes; retention (auditor.h).
 */
#include <stdlib.h>
#include <string.h>

#include "auditor.h"

static aud_t s_state;

aud_t *aud_state(crm_service_t *svc)
{
    (void) svc;
    return &s_state;
}

static const crm_handler_t auditor_handlers[] = {
    /* a record changed: its findings. Batched: consecutive messages share
       one commit; a record judged earlier in the batch is read from what
       that message wrote (live.c) */
    {"customer.updated", aud_on_record, true},
    {"customer.recorded", aud_on_record, true},
    {"owner.changed", aud_on_record, true},
    {"order.placed", aud_on_record, true},
    {"order.cancelled", aud_on_record, true},
    {"followup.recorded", aud_on_record, true},
    {"prospect.lost", aud_on_record, true},
    {"prospect.reactivated", aud_on_record, true},
    /* what was paid, and the cars sold */
    {"vehicle.delivered", aud_on_delivered, false},
    {"service.recorded", aud_on_service, true},
    {NULL, NULL, false},
};

static const crm_request_t auditor_requests[] = {
    {"audit.run", aud_req_run, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

static const crm_tick_t auditor_ticks[] = {
    {"runs", 2, aud_tick_runs},
    {"schedule", 30000, aud_tick_schedule},
    {NULL, 0, NULL},
};

static const crm_opt_t auditor_opts[] = {
    {"rate-rules", "CRM_AUDIT_RATE_RULES", "contact",
     "Rules whose failure puts a record in error (the rebate's rate): contact (the seed's part one), or a "
     "comma-separated list of rules and parts (crmctl audit rules); the duplicates cannot be among them",
     NULL},
    {"sale-date-for", "CRM_AUDIT_SALE_DATE_FOR", "sold",
     "Records the sale date rule applies to: sold (a car or an order) or all (prospects' files too)", NULL},
    {"deduction", "CRM_AUDIT_DEDUCTION_MILLI", "100",
     "Rebate points lost in part two, thousandths of a point (100 = 0.1 point)", NULL},
    {"deduct-at-pct", "CRM_AUDIT_DEDUCT_AT_PCT", "90",
     "A dealer whose e-mail error rate is this or more loses the points (the seed's 90% 以上, inclusive)", NULL},
    {"abc", "CRM_AUDIT_ABC", "80,95", "ABC boundaries in percent of the total paid: A up to the first, B up to the second",
     NULL},
    {"schedule", "CRM_AUDIT_SCHEDULE", "monthly,quarterly",
     "Audit runs made by crm-auditor itself, in the first three days of a month (quarter) for the one before: "
     "monthly, quarterly, both (comma-separated) or none",
     NULL},
    {"schedule-at", "CRM_AUDIT_SCHEDULE_AT", "02:00", "When the scheduled runs start, China time (HH:MM)", NULL},
    {"run-slice-ms", "CRM_AUDIT_RUN_SLICE_MS", "20",
     "How long a run works at a time before live record changes are applied again", NULL},
    {"run-page", "CRM_AUDIT_RUN_PAGE", "2000", "Records a run reads per round trip to Redis", NULL},
    CRM_OPT_END};

static int auditor_start(crm_service_t *svc)
{
    aud_t *a = &s_state;
    memset(a, 0, sizeof *a);
    char bad[80] = "";
    if (crm_audit_mask_parse(crm_service_opt(svc, "rate-rules"), &a->rate_mask, bad, sizeof bad) != 0 ||
        !a->rate_mask || (a->rate_mask & CRM_AUDIT_DUP_MASK)) {
        fprintf(stderr, "crm-auditor: --rate-rules: unknown rule '%s' (crmctl audit rules lists them; the "
                        "duplicates cannot count in the rate)\n",
                bad[0] ? bad : "dup_*");
        return -1;
    }
    const char *sd = crm_service_opt(svc, "sale-date-for");
    if (strcmp(sd, "sold") && strcmp(sd, "all")) {
        fprintf(stderr, "crm-auditor: --sale-date-for: sold or all\n");
        return -1;
    }
    a->rules.sale_date_all = !strcmp(sd, "all");
    int64_t ded, pct, slice, page;
    if (crm_service_opt_i64(svc, "deduction", 0, 100000, &ded) != 0 ||
        crm_service_opt_i64(svc, "deduct-at-pct", 1, 100, &pct) != 0 ||
        crm_service_opt_i64(svc, "run-slice-ms", 1, 10000, &slice) != 0 ||
        crm_service_opt_i64(svc, "run-page", 10, 100000, &page) != 0)
        return -1;
    a->deduct_milli = (int) ded, a->deduct_rate_pct = (int) pct, a->slice_ms = (int) slice, a->scan_count = (int) page;
    if (sscanf(crm_service_opt(svc, "abc"), "%d,%d", &a->abc_a_pct, &a->abc_b_pct) != 2 || a->abc_a_pct < 1 ||
        a->abc_a_pct >= a->abc_b_pct || a->abc_b_pct > 100) {
        fprintf(stderr, "crm-auditor: --abc: two percentages, A's boundary below B's (80,95)\n");
        return -1;
    }
    const char *sch = crm_service_opt(svc, "schedule");
    a->sched_monthly = strstr(sch, "monthly") || strstr(sch, "both");
    a->sched_quarterly = strstr(sch, "quarterly") || strstr(sch, "both");
    if (!a->sched_monthly && !a->sched_quarterly && strcmp(sch, "none") && *sch) {
        fprintf(stderr, "crm-auditor: --schedule: monthly, quarterly, both or none\n");
        return -1;
    }
    int hh, mm;
    char extra;
    if (sscanf(crm_service_opt(svc, "schedule-at"), "%2d:%2d%c", &hh, &mm, &extra) != 2 || hh > 23 || mm > 59 ||
        hh < 0 || mm < 0) {
        fprintf(stderr, "crm-auditor: --schedule-at: HH:MM\n");
        return -1;
    }
    a->sched_min = hh * 60 + mm;
    a->look_for_runs = true; /* a run asked for before a restart is done now */
    return 0;
}

static void auditor_stop(crm_service_t *svc)
{
    (void) svc;
    aud_run_forget(&s_state); /* it stays in crm:audit:running: done again at the next start */
}

static const crm_service_def_t auditor_def = {
    .name = "auditor",
    .summary = "Data-quality auditor: live findings, audit runs, ABC value classes, retention.",
    .pub_default = "tcp://127.0.0.1:7104",
    .control_default = "tcp://127.0.0.1:7214",
    .handlers = auditor_handlers,
    .requests = auditor_requests,
    .ticks = auditor_ticks,
    .opts = auditor_opts,
    .on_start = auditor_start,
    .on_stop = auditor_stop,
    .prefetch = aud_prefetch,
};

int main(int argc, char **argv) { return crm_service_main(&auditor_def, argc, argv); }
