/*  dispatch: test drives from request to dealer (crm-dispatcher's rules). */
#ifndef DISPATCH_H
#define DISPATCH_H

#include "crm_service.h"

#define DISPATCH_TIMERS "dispatch"

typedef struct {
    bool mask_contacts;       /* mask the mobile in dispatches */
    int64_t default_capacity; /* test drives per dealer per day when unset */
    int64_t days_before;      /* dispatch this many days before the test drive (3) */
    int64_t hour;             /* at this hour, China time (9) */
    int64_t escalate_h;       /* escalate a dealer silent this long after dispatch (24) */
} dispatch_config_t;

extern dispatch_config_t dispatch_config;

/* When to hand a test drive at `at_ms` to its dealer: T-3 days, 09:00
   China Standard Time (UTC+8, no DST) by default (our rule, configurable). */
int64_t dispatch_due_ms(int64_t at_ms);
/* When a silent dealer is escalated: 24 h after the dispatch, or 24 h
   before the test drive if that is sooner (our rule; escalate_h). */
int64_t dispatch_escalate_ms(int64_t dispatched_ms, int64_t at_ms);

crm_handled_t dispatch_on_requested(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t dispatch_on_due(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);

/* A dealer acknowledged its stream up to `upto` (from the gateway). */
void dispatch_on_ack(crm_service_t *svc, const char *dealer_id, uint64_t upto);
/* A dealer's status report; 0, or -1 with code and err ("field: why"). */
int dispatch_on_status(crm_service_t *svc, const char *dealer_id, const char *testdrive_id,
                       const char *status, bool has_at, int64_t at, const char *note, char *code,
                       size_t codesz, char *err, size_t errsz);

#endif
