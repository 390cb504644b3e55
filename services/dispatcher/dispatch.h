/*  dispatch: test drives from request to dealer, and the dealer registry
 *  (crm-dispatcher's rules). */
#ifndef DISPATCH_H
#define DISPATCH_H

#include "crm_regions.h"
#include "crm_service.h"

/* crm:timers:dispatch: an earlier release's timers (whole envelopes),
   moved to crm:due:dispatch at start (dispatch_migrate_timers) */
#define DISPATCH_TIMERS "dispatch"
/* crm:due:dispatch: compact timers, decided when they fall due from the
   record (dispatch_on_fired): "d:<T>" its dispatch at T-3 09:00, "e:<T>"
   the escalation of a silent dealer */
#define DISPATCH_DUE "dispatch"
#define DISPATCH_DUE_KIND "d"
#define DISPATCH_ESCALATE_KIND "e"
/* The most acknowledged numbers one step handles; a longer ack is finished
   by the ack tick, so no request holds the loop. */
#define DISPATCH_ACK_STEP 2000

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

/* The sales regions in force: read from Redis, the built-in table written
   there when none is. 0 or -1. */
int dispatch_load_regions(crm_service_t *svc);

/* Bus handlers, batch handlers both: their reads are made for a whole
   batch by dispatch_prefetch and once per transaction (see dispatch.c). */
crm_handled_t dispatch_on_requested(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t dispatch_on_due(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* timers.fired of DISPATCH_DUE: testdrive.due for the test drives still
   routed at their T-3 09:00; escalates those still not acknowledged since
   their dispatch. */
crm_handled_t dispatch_on_fired(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* At start: timers of an earlier release become compact ones. 0, or -1
   when Redis is away. */
int dispatch_migrate_timers(crm_service_t *svc);
/* The service's prefetch: reads for the test drives among `msgs`. */
void dispatch_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n);
/* Frees what the prefetches kept (at stop). */
void dispatch_forget(void);

/* Gateway requests: dealer.ack, dealer.status (the dealer is the
   certified peer). */
crm_handled_t dispatch_on_ack(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
crm_handled_t dispatch_on_status(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
/* Finishes acknowledgements longer than one step (a tick). */
void dispatch_ack_tick(crm_service_t *svc);

/* Control requests: the dealer registry and the sales regions. */
crm_handled_t dispatch_on_register(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
crm_handled_t dispatch_on_update(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
crm_handled_t dispatch_on_regions(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);

#endif
