/*  crm_id: the one rule for ids that come from outside.
 *
 *  An id from a lead, a request, a dealer's system or a command line ends up
 *  in Redis keys ("crm:dealer:<id>") and ZeroMQ topics ("dealer.<id>:").
 *  Unchecked, "SZ1:open" names another key of another type and a handler
 *  fails on it forever. So every id is checked here before it is used, and a
 *  bad one is a field-level error, never a key.
 *
 *  Two kinds:
 *  - names of things (dealer, consultant, customer, lead, test drive,
 *    quarantine entry, lead source): 1 to CRM_ID_NAME_MAX of
 *    [A-Za-z0-9_-]; used in keys and topics as they are;
 *  - opaque keys chosen by a submitter (submission id, request id, a
 *    dealer's own record id): 1 to CRM_ID_KEY_MAX bytes of UTF-8 without
 *    control characters; they may hold ':' or '{' (an ADF id is
 *    "adf:source:id") and so never become part of a key themselves, only
 *    through crm_id_digest.
 */
#ifndef CRM_ID_H
#define CRM_ID_H

#include <stdbool.h>
#include <stddef.h>

#define CRM_ID_NAME_MAX 32
#define CRM_ID_KEY_MAX 256
#define CRM_ID_DIGEST_SZ 65 /* 64 hex digits and the NUL */

typedef enum {
    CRM_ID_NAME = 0, /* dealer, consultant, customer, lead, test drive, source, ... */
    CRM_ID_KEY       /* submission id, request id, record id */
} crm_id_kind_t;

/* True when `id` follows the rule of its kind. */
bool crm_id_valid(crm_id_kind_t kind, const char *id);

/* Checks `id` for the field `field`; 0, or -1 with `err` set to
   "<field>: <why>" (never quoting more than a few bytes of the id). The
   code for the answer is "bad_id" (or "required" when absent or empty). */
int crm_id_check(crm_id_kind_t kind, const char *id, const char *field, char *err, size_t errsz);

/* A Redis stream entry id as written by Redis ("1796000000000-0": digits,
   a dash, digits; no blanks or signs, which Redis would read anyway). */
bool crm_id_entry_valid(const char *id);
/* A quarantine id: Q followed by 1 to 18 digits. */
bool crm_id_quarantine_valid(const char *id);

/* SHA-256 of the parts, each followed by a NUL byte (so ("ab","c") and
   ("a","bc") differ), as 64 lower-case hex digits. For keys made from
   opaque ids and for idempotency digests of content. */
void crm_id_digest(const char *const *parts, size_t nparts, char out[CRM_ID_DIGEST_SZ]);
/* The key of a dealer's order: crm:order:<D>:<the first 32 hex digits of
   the SHA-256 of the dealer's order number> (any characters, so never in
   a key as it is). */
void crm_order_key(const char *dealer, const char *order_id, char *out, size_t size);
/* SHA-256 of `len` bytes, as 64 lower-case hex digits. */
void crm_id_digest_bytes(const void *data, size_t len, char out[CRM_ID_DIGEST_SZ]);

#endif
