/*  uplink: what dealers' systems send back, inside crm-dispatcher.
 *
 *  Customer files, consultants' follow-ups, orders, deliveries and delays,
 *  service work orders, lost prospects and staff changes arrive as requests
 *  on two endpoints, served by the same handlers:
 *  - the dealer gateway (CURVE): the dealer is the certified one; a body
 *    dealer_id naming another dealer is refused not_yours;
 *  - the dispatcher's control endpoint (crmctl, the carmaker's CRM
 *    department acting for a dealer): dealer_id is required.
 *  Each request carries the dealer's own record_id: the idempotency key,
 *  so a resend gets the first answer and changes nothing (answers kept
 *  `uplink-keep-days`, 90 by default). Every answer is field-level and
 *  comes after the commit. A dealer writes only its own customers'
 *  records (not_yours otherwise, logged); a customer nobody owns becomes
 *  the first dealer's that files it. Rules and keys: tools/DEALERS.md,
 *  common/crm_keys.h.
 */
#ifndef UPLINK_H
#define UPLINK_H

#include "crm_service.h"

#define UPLINK_KEEP_OPT "uplink-keep-days"

/* The rows served on the gateway (record_id is the key) and on the
   control endpoint (dealer_id/record_id, plus prospect.reactivate); each
   ends with {NULL}. */
extern const crm_request_t uplink_gateway_rows[];
extern const crm_request_t uplink_control_rows[];

/* A dispatched test drive gives an unowned customer to its dealer
   (owner.changed, reason testdrive_dispatched); `cust` is the customer's
   HGETALL. */
void uplink_claim_on_dispatch(crm_tx_t *tx, const char *cid, const char *dealer, const redisReply *cust);

#endif
