/*  tasks: the scheduler's tasks, forwarded to each dealer's own stream.
 *
 *  task.opened and task.closed (stream "task", crm-scheduler) become one
 *  dealer.task each on dealer.<D>, numbered with the dealer's dispatches,
 *  pushed live on the gateway and replayed on request; the dealer's system
 *  keeps the latest dealer.task per task_id and shows the open ones to the
 *  consultant. The auditor's findings on a dealer's records travel the same
 *  way (dealer.finding). Nothing is recorded for acknowledgements: a number with no
 *  test drive behind it (crm:dealer:<D>:seq2td) is simply passed over.
 */
#ifndef DISPATCHER_TASKS_H
#define DISPATCHER_TASKS_H

#include "crm_service.h"

/* Bus handlers. A task for a dealer the registry does not know is skipped
   (applied, one log line); an event naming a malformed id is refused. */
crm_handled_t tasks_on_opened(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t tasks_on_closed(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* audit.finding (errors only) and audit.cleared (crm-auditor) become a
   dealer.finding, state open or cleared, on the record's dealer's stream. */
crm_handled_t tasks_on_finding(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* notify.call -> dealer.call on the dealer's stream. */
crm_handled_t tasks_on_call(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);

#endif
