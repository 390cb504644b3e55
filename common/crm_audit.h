/*  crm_audit: the carmaker's data-quality audit of one customer record,
 *  written once (DOMAIN.md, "Data-quality audit", seed 000) and used by
 *  everyone who judges a record: crm-auditor (live findings and audit
 *  runs), crm-intake (the findings in lead.accepted) and crm-dispatcher's
 *  uplink (the findings in a customer file's reply).
 *
 *  Three parts:
 *  - contact (part one, the rebate's error rate), exactly the seed's rules:
 *    at least one of the four phones filled; a landline carries its area
 *    code; mailing address; a postcode of exactly 6 digits; city; province;
 *    sale (invoice) date. "Filled" means present after NFKC and trimming,
 *    whatever its validity (a masked mobile is filled); full-width digits
 *    are digits; a landline written with its area code passes whatever the
 *    local number's length.
 *  - email (part two, compared within a sales region): missing, a
 *    placeholder or invalid is an error (our rule).
 *  - extended (warnings beyond the seed, not in the rebate rate unless
 *    configured): numbering plan, postcode ranges and province, ID number,
 *    birthday, VIN, plate, remark grade letter, expected date, grade vs
 *    date, duplicates.
 *
 *  Each rule, for one record, passes, fails, does not apply (nothing to
 *  check: no ID number, no grade) or is not run (what it needs could not be
 *  read, or it has no data for the value): a rule not run is never counted
 *  as passing. The duplicate rules need every record at once: crm-auditor's
 *  run evaluates them; crm_audit_eval leaves them out.
 */
#ifndef CRM_AUDIT_H
#define CRM_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "crm_lead.h"

/* The version of the rule set: kept with every run and every record's
   evaluation, so a figure can be traced to the rules that made it. */
#define CRM_AUDIT_RULESET "2026.12-1"

typedef enum { CRM_AUDIT_CONTACT = 0, CRM_AUDIT_EMAIL, CRM_AUDIT_EXTENDED } crm_audit_part_t;

/* R(rule, part, what it checks): the order is the order reports show. */
#define CRM_AUDIT_RULES(R)                                                                         \
    R(phone, CONTACT, "at least one of the four phones (mobile, home, office, usual) is filled")    \
    R(area_code, CONTACT, "a landline carries its area code")                                      \
    R(address, CONTACT, "the mailing address is filled")                                           \
    R(postcode, CONTACT, "the postcode is exactly 6 digits")                                       \
    R(city, CONTACT, "the city is filled")                                                         \
    R(province, CONTACT, "the province is filled")                                                 \
    R(sale_date, CONTACT, "the sale (invoice) date is filled")                                     \
    R(email, EMAIL, "the e-mail is filled and valid")                                              \
    R(mobile_plan, EXTENDED, "mobiles are real numbers of China's plan (not masked, no placeholder)") \
    R(phone_form, EXTENDED, "every phone is a well-formed number")                                 \
    R(postcode_range, EXTENDED, "the postcode is not in a reserved range")                         \
    R(postcode_province, EXTENDED, "the postcode belongs to the record's province")                \
    R(province_name, EXTENDED, "the province is one of the 34 provincial-level divisions")         \
    R(id_check, EXTENDED, "the ID number passes GB 11643 (check character)")                       \
    R(id_birthday, EXTENDED, "the ID number's birth date and sex agree with birthday and gender")  \
    R(birthday, EXTENDED, "the birthday is known (not 1900-01-01) and a real date")                \
    R(email_typo, EXTENDED, "the e-mail domain is no typo of a common provider")                   \
    R(vin_check, EXTENDED, "the VIN has 17 characters and its GB 16735 check digit")               \
    R(plate, EXTENDED, "the plate number has a GA 36-2018 shape")                                  \
    R(remark_grade, EXTENDED, "a graded prospect's remark starts with its grade letter")           \
    R(expected_passed, EXTENDED, "a prospect's expected purchase date has not passed")             \
    R(grade_date, EXTENDED, "the intent grade agrees with the expected purchase date")             \
    R(dup_mobile, EXTENDED, "no other customer of the same dealer has this mobile")                \
    R(dup_mobile_other, EXTENDED, "no customer of another dealer has this mobile")                 \
    R(dup_id, EXTENDED, "no other customer of the same dealer has this ID number")                 \
    R(dup_id_other, EXTENDED, "no customer of another dealer has this ID number")

typedef enum {
#define CRM__RULE_ENUM(r, p, t) CRM_RULE_##r,
    CRM_AUDIT_RULES(CRM__RULE_ENUM)
#undef CRM__RULE_ENUM
        CRM_RULE_COUNT
} crm_rule_t;

#define CRM_RULE_BIT(r) (UINT64_C(1) << (r))
/* Part one's rules, part two's, and the duplicates (evaluated by a run). */
#define CRM_AUDIT_CONTACT_MASK (CRM_RULE_BIT(CRM_RULE_sale_date + 1) - 1)
#define CRM_AUDIT_EMAIL_MASK CRM_RULE_BIT(CRM_RULE_email)
#define CRM_AUDIT_DUP_MASK                                                                         \
    (CRM_RULE_BIT(CRM_RULE_dup_mobile) | CRM_RULE_BIT(CRM_RULE_dup_mobile_other) |                  \
     CRM_RULE_BIT(CRM_RULE_dup_id) | CRM_RULE_BIT(CRM_RULE_dup_id_other))
#define CRM_AUDIT_ALL_MASK (CRM_RULE_BIT(CRM_RULE_COUNT) - 1)

const char *crm_rule_name(crm_rule_t rule);
/* -1 when `name` is no rule. */
int crm_rule_from_name(const char *name);
crm_audit_part_t crm_rule_part(crm_rule_t rule);
const char *crm_rule_text(crm_rule_t rule);
const char *crm_audit_part_name(crm_audit_part_t part);

#define CRM_AUDIT_VEHICLES_MAX 8

/* A record as stored (crm:cust:{C} and its cars): every value may be NULL
   or "" (absent). Values are read as text: NFKC and trimming first, so a
   value typed with full-width digits is judged as the digits. */
typedef struct {
    const char *v[CRM_CF_COUNT]; /* name ... plate (crm_lead.h) */
    const char *remark, *grade, *expected_purchase_date, *stage;
    const char *sale_date; /* the record's own (a dealer's file may give it without a car's VIN) */
    struct {
        const char *vin, *plate, *sale_date;
    } veh[CRM_AUDIT_VEHICLES_MAX];
    size_t nveh;
    bool vehicles_unread; /* the cars could not be read: the rules on them are not run */
    int64_t today;        /* China day (crm_calendar) for the dates' rules; 0: not run */
} crm_audit_input_t;

typedef struct {
    /* The sale date rule applies to every record (the seed's audit was of
       sold customers' files). Default (false, our rule): to a record with a
       car or an order (stage customer or owner); a prospect's file has no
       sale date to give, and the rule does not apply to it. */
    bool sale_date_all;
} crm_audit_opts_t;

typedef struct {
    uint64_t fail;    /* rules failed (CRM_RULE_BIT) */
    uint64_t not_run; /* rules that could not be evaluated */
    uint64_t na;      /* rules that do not apply to this record */
    /* One per failure, naming field, code, rule and message; severity
       error for part one and part two, warning for the extended checks. */
    crm_issues_t issues;
} crm_audit_result_t;

/* Evaluates every rule but the duplicates over `in`. Never fails: an
   unreadable value is a finding, never a crash. */
void crm_audit_eval(const crm_audit_input_t *in, const crm_audit_opts_t *opts, crm_audit_result_t *out);

/* The rules as a bitmask from "phone,area_code,..." (names or the parts
   "contact", "email", "extended"); -1 naming the first unknown one in
   `bad` (may be NULL). */
int crm_audit_mask_parse(const char *list, uint64_t *mask, char *bad, size_t badsz);

#endif
