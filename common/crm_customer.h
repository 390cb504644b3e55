/*  crm_customer: the one customer store (crm:cust:{C}, crm_keys.h), written
 *  by the same rules whoever writes it: crm-intake for leads, crm-dispatcher's
 *  uplink for the files dealers keep.
 *
 *  A merge never blanks a known field; a different value becomes current and
 *  the one it replaced stays in the history, as does what was received when
 *  it differs from what is kept. Match keys: the ID number before the mobile
 *  (mobiles change hands).
 */
#ifndef CRM_CUSTOMER_H
#define CRM_CUSTOMER_H

#include <hiredis/hiredis.h>

#include "crm_lead.h"
#include "crm_store.h"

/* Who and what a merge comes from: the history entry's first fields. */
typedef struct {
    const char *ref_name; /* "lead" or "record" */
    const char *ref;      /* the lead id, or the dealer's record id */
    const char *channel;  /* "website", "dealer:D1", ... */
    const char *now;      /* ms since the epoch, as text */
    bool created;         /* a new customer: created_ms and first_channel too */
} crm_merge_t;

/* The record's fields from an HGETALL reply of crm:cust:{C} (owned copies). */
void crm_customer_load(crm_fields_t *rec, const redisReply *hgetall);

/* Adds to `tx` the merge of `in` into customer `cid`, whose current values
   are `rec` (brought up to date here): one HSET (changed fields, stamps)
   and one history entry of the values changed (a new record's first values
   are the record itself). What was received, when the rules refused or
   rewrote it ("<field>.raw"), is in the entry for a dealer's record; a lead
   keeps it in its own hash (intake writes it there). Names of changed fields go to `changed` (may be
   NULL). Returns how many fields changed, or -1 out of memory. */
int crm_customer_merge(crm_tx_t *tx, const char *cid, crm_fields_t *rec, const crm_fields_t *in,
                       const crm_merge_t *how, crm_strs_t *changed);

/* The match keys of `in` (indexable mobile, ID number) and the name index
   pointed at `cid`; `keep` (CRM_IDX_KEEP_*) leaves a match key as it is. */
#define CRM_IDX_KEEP_ID 1u
#define CRM_IDX_KEEP_MOBILE 2u
void crm_customer_index(crm_tx_t *tx, const char *cid, const crm_fields_t *in, unsigned keep);

/* The findings of a dealer's latest customer file that are the file's own
   (vehicle dates, grade, consultant, VIN, shared match keys: issues
   first..n of `issues`), replacing crm:cust:{C}:findings:dealer. Every
   severity is kept as is, a lead's rejecting one as an error. */
void crm_customer_file_findings(crm_tx_t *tx, const char *cid, const crm_issues_t *issues, int first);

#endif
