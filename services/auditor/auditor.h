/*  crm-auditor: the carmaker's data-quality audit (DOMAIN.md, seed 000),
 *  its ABC value classes (seed 003) and retention (seed 002).
 *
 *  live.c   every change of a customer record: its findings (crm_audit's
 *           rules), audit.finding / audit.cleared for its dealer, and what
 *           a run reads (the dealer's files, the periods, the duplicates)
 *  paid.c   what customers paid (work orders, delivered orders) and the
 *           cars each dealer sold, for ABC and retention
 *  run.c    audit runs, ABC runs and retention reports: asked for with
 *           audit.run (or by the schedule), kept, done a slice at a time
 *           between live messages so nothing waits
 */
#ifndef AUDITOR_H
#define AUDITOR_H

#include "crm_audit.h"
#include "crm_service.h"
#include "crm_value.h"

typedef struct aud_run_t aud_run_t;

typedef struct {
    crm_audit_opts_t rules;
    uint64_t rate_mask;    /* rules whose failure puts a record in error (part one by default) */
    int deduct_milli;      /* rebate points lost, thousandths: 100 = 0.1 point */
    int deduct_rate_pct;   /* and every dealer at or above this e-mail error rate (90) */
    int abc_a_pct, abc_b_pct;
    int slice_ms;          /* how long a run works before live messages go on */
    int scan_count;        /* records read per round trip */
    bool sched_monthly, sched_quarterly;
    int sched_min;         /* minutes after 00:00 China time the scheduled runs start */
    aud_run_t *run;        /* the run being done, if any */
    bool look_for_runs;    /* a run was asked for, or the service started */
    int64_t sched_checked_ms;
} aud_t;

aud_t *aud_state(crm_service_t *svc);

/* live.c */
crm_handled_t aud_on_record(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* The records the coming messages name, read at once (the framework's prefetch). */
void aud_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n);
/* The next dealer id of a space-separated list into `did` ("" for one too
   long to be an id); the rest of the list, or NULL at its end. */
const char *aud_next_dealer(const char *list, char did[CRM_ID_NAME_MAX + 1]);
/* The bucket (crm:audit:keys:<n>) of a duplicate index value. */
unsigned aud_key_bucket(const char *key);

/* paid.c */
crm_handled_t aud_on_service(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t aud_on_delivered(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* A car the record's dealer sold (its sale date known): kept for retention. */
void aud_car_sold(crm_tx_t *tx, const char *dealer, const char *vin, const char *sale_date, const char *cid);

/* run.c */
crm_handled_t aud_req_run(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
void aud_tick_runs(crm_service_t *svc);
void aud_tick_schedule(crm_service_t *svc);
void aud_run_forget(aud_t *a);

#endif
