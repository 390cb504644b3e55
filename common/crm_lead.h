/*  crm_lead: the carmaker's rules for what a lead and a customer record may
 *  hold, in one place (intake applies them to leads; the auditor to
 *  records).
 *
 *  crm_lead_check normalises every field of a lead.submit (NFKC, phones,
 *  ID numbers, VINs, plates, provinces, postcodes, e-mail) and sorts what is
 *  wrong into hard errors, which reject the lead (no name; no phone of any
 *  kind; a test drive without a date or with a date in the past), and
 *  findings, which are stored with the customer (DOMAIN.md, "Data-quality
 *  audit"). Each issue names its field and carries a stable machine code.
 */
#ifndef CRM_LEAD_H
#define CRM_LEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "crm_proto.h"

/* The customer-record fields a lead can carry, in display order. */
#define CRM_CUSTOMER_FIELDS(X)                                                                     \
    X(name) X(gender) X(birthday) X(mobile) X(home_phone) X(office_phone) X(usual_phone)           \
    X(email) X(id_number) X(address) X(postcode) X(city) X(province) X(vin) X(plate)

typedef enum {
#define CRM__CF_ENUM(f) CRM_CF_##f,
    CRM_CUSTOMER_FIELDS(CRM__CF_ENUM)
#undef CRM__CF_ENUM
    CRM_CF_COUNT
} crm_cf_t;

const char *crm_cf_name(crm_cf_t field);
/* -1 when `name` is not a customer field. */
int crm_cf_from_name(const char *name);

typedef struct {
    char *v[CRM_CF_COUNT]; /* normalised values; NULL when absent */
    /* The value as received, byte for byte (before NFKC, trimming and
       normalisation), set only when it differs from v (also when v is NULL
       because the value was refused, e.g. an unknown gender); NULL when v
       is exactly what was received or nothing but blanks was. Owned, freed
       by crm_fields_clear. At most CRM_NORM_TEXT_MAX bytes: a longer value
       rejects the lead and is not kept. */
    char *raw[CRM_CF_COUNT];
    bool indexable_mobile; /* the mobile is a real number to match on */
    bool indexable_id;     /* the ID number passed its check */
} crm_fields_t;

void crm_fields_clear(crm_fields_t *fields);

typedef enum { CRM_SEV_WARNING = 0, CRM_SEV_ERROR = 1, CRM_SEV_REJECT = 2 } crm_severity_t;

typedef struct {
    char field[32];
    char code[32];
    char message[200];
    char rule[24]; /* the audit rule (crm_audit.h), "" for the lead's own checks */
    crm_severity_t severity; /* REJECT: the lead is refused; ERROR: counts in the audit rate */
} crm_issue_t;

#define CRM_ISSUES_MAX 48
typedef struct {
    crm_issue_t v[CRM_ISSUES_MAX];
    int n;
    int rejects;
} crm_issues_t;

void crm_issue_add(crm_issues_t *issues, crm_severity_t severity, const char *field,
                   const char *code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "field|code|message", the form used in lead.accepted / lead.rejected. */
void crm_issue_format(const crm_issue_t *issue, char *out, size_t size);
const char *crm_severity_name(crm_severity_t severity);

/* The gender a spelling means (male, m, 男, 先生; female, f, 女, 女士;
   unknown, 未知, 保密; case aside): "male", "female", "unknown", or NULL. */
const char *crm_lead_gender(const char *in);

/* Normalises the lead's customer fields into `out` and reports issues.
   Returns the number of rejecting issues (0: the lead may be accepted).
   `now_ms` decides whether a test-drive date is in the past (or more than
   a year ahead). */
int crm_lead_check(const crm_body_lead_submit_t *lead, int64_t now_ms, crm_fields_t *out,
                   crm_issues_t *issues);

/* True for a field of the customer record (findings on the lead itself,
   such as intent_grade or testdrive_at, are not kept with the record). */
bool crm_lead_is_record_field(const char *field);

/* The record's findings (crm_audit's rules over its fields; the cars are
   not known here, so the rules on them are not run), added to `issues`:
   used by crm_lead_check and by whoever answers with a record's findings. */
void crm_lead_record_findings(const crm_fields_t *rec, int64_t now_ms, crm_issues_t *issues);


/* "2026-12-05 10:00 CST" for messages to people. */
void crm_format_cst(int64_t ms, char *out, size_t size);

#endif
