#include "crm_str.h"
#include "crm_lead.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm_audit.h"
#include "crm_calendar.h"
#include "crm_clock.h"
#include "crm_norm.h"

static const char *s_cf_names[] = {
#define S_NAME(f) #f,
    CRM_CUSTOMER_FIELDS(S_NAME)
#undef S_NAME
};

const char *crm_cf_name(crm_cf_t field)
{
    return (unsigned) field < CRM_CF_COUNT ? s_cf_names[field] : "unknown";
}

int crm_cf_from_name(const char *name)
{
    for (int i = 0; i < CRM_CF_COUNT; i++)
        if (!strcmp(s_cf_names[i], name))
            return i;
    return -1;
}

bool crm_lead_is_record_field(const char *field) { return crm_cf_from_name(field) >= 0; }

void crm_fields_clear(crm_fields_t *fields)
{
    for (int i = 0; i < CRM_CF_COUNT; i++) {
        free(fields->v[i]);
        fields->v[i] = NULL;
        free(fields->raw[i]);
        fields->raw[i] = NULL;
    }
    fields->indexable_mobile = fields->indexable_id = false;
}

const char *crm_severity_name(crm_severity_t severity)
{
    return severity == CRM_SEV_REJECT ? "reject" : severity == CRM_SEV_ERROR ? "error" : "warning";
}

void crm_issue_add(crm_issues_t *issues, crm_severity_t severity, const char *field,
                   const char *code, const char *fmt, ...)
{
    if (severity == CRM_SEV_REJECT)
        issues->rejects++;
    if (issues->n >= CRM_ISSUES_MAX)
        return;
    crm_issue_t *i = &issues->v[issues->n++];
    i->severity = severity;
    crm_fmt(i->field, sizeof i->field, "%s", field);
    crm_fmt(i->code, sizeof i->code, "%s", code);
    i->rule[0] = 0;
    va_list ap;
    va_start(ap, fmt);
    crm_vfmt(i->message, sizeof i->message, fmt, ap);
    va_end(ap);
}

void crm_issue_format(const crm_issue_t *issue, char *out, size_t size)
{
    if (!size)
        return;
    size_t n = 0;
    out[0] = '\0';
    crm_cat(out, size, &n, issue->field);
    crm_cat(out, size, &n, "|");
    crm_cat(out, size, &n, issue->code);
    crm_cat(out, size, &n, "|");
    crm_cat(out, size, &n, issue->message);
}

void crm_format_cst(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t) ((ms + CRM_CST_OFFSET_MS) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    crm_fmt(out, size, "%04d-%02d-%02d %02d:%02d CST", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/* Keeps what was received for field `f` beside its normalised value when
   the two differ, including a value that was refused (an unknown gender).
   A value that is blank after trimming carried nothing and is not kept. */
static void s_keep_raw(crm_fields_t *out, crm_cf_t f, const char *received)
{
    char probe[2];
    if (!received || !*received || (out->v[f] && !strcmp(out->v[f], received)))
        return;
    /* Longer than anything crm_norm reads: the lead was rejected for it. */
    if (strnlen(received, CRM_NORM_TEXT_MAX + 1) > CRM_NORM_TEXT_MAX)
        return;
    if (!out->v[f] && crm_norm_text(received, probe, sizeof probe) == 0 && !probe[0])
        return;
    out->raw[f] = strdup(received);
}

/* Sets field `f` to a copy of `value` (NULL or "" leaves it absent). */
static void s_set(crm_fields_t *out, crm_cf_t f, const char *value)
{
    free(out->v[f]);
    out->v[f] = value && *value ? strdup(value) : NULL;
}

/* NFKC + trim into `buf`; false (with a reject issue) when it cannot be
   read. An absent or blank value gives "". */
static bool s_text(const char *in, char *buf, size_t size, const char *field, crm_issues_t *issues)
{
    buf[0] = 0;
    if (!in || !*in)
        return true;
    if (crm_norm_text(in, buf, size) != 0) {
        crm_issue_add(issues, CRM_SEV_REJECT, field, "too_long",
                      "%s is longer than %zu bytes or not valid text", field, size - 1);
        return false;
    }
    return true;
}

/* A phone in one of the four slots, normalised (a mobile to its 11
   digits, a landline to its national form); a value that is no number
   of China's plan as written is kept as given (NFKC and trimming only),
   never completed into one. What is wrong with it is crm_audit's.
   Returns true when something was recorded. */
static bool s_phone(const char *raw, crm_cf_t f, crm_fields_t *out, crm_issues_t *issues)
{
    char text[128];
    const char *field = crm_cf_name(f);
    if (!s_text(raw, text, sizeof text, field, issues) || !text[0])
        return false;
    char mobile[CRM_NORM_MOBILE_SZ];
    crm_norm_code_t mc = crm_norm_mobile(text, mobile);
    if (mc == CRM_NORM_OK || mc == CRM_NORM_NOT_IN_PLAN || mc == CRM_NORM_PLACEHOLDER ||
        mc == CRM_NORM_MASKED) {
        s_set(out, f, mobile);
        if (f == CRM_CF_mobile)
            out->indexable_mobile = mc == CRM_NORM_OK || mc == CRM_NORM_NOT_IN_PLAN;
        return true;
    }
    crm_landline_t line;
    crm_norm_code_t lc = mc == CRM_NORM_OTHER_CALLING_CODE ? mc : crm_norm_landline(text, &line);
    if (lc == CRM_NORM_OK || lc == CRM_NORM_MISSING_AREA_CODE || lc == CRM_NORM_BUSINESS_NUMBER)
        s_set(out, f, line.formatted); /* formatted keeps an extension */
    else
        s_set(out, f, text);
    return true;
}

void crm_lead_record_findings(const crm_fields_t *rec, int64_t now_ms, crm_issues_t *issues)
{
    crm_audit_input_t in = {.today = now_ms > 0 ? crm_cst_day(now_ms) : 0, .vehicles_unread = true};
    for (int f = 0; f < CRM_CF_COUNT; f++)
        in.v[f] = rec->v[f];
    crm_audit_result_t *r = malloc(sizeof *r); /* crm_audit_eval sets what it reads */
    if (!r)
        return;
    crm_audit_eval(&in, NULL, r);
    for (int i = 0; i < r->issues.n && issues->n < CRM_ISSUES_MAX; i++)
        issues->v[issues->n++] = r->issues.v[i];
    free(r);
}

const char *crm_lead_gender(const char *in)
{
    static const struct {
        const char *in, *out;
    } map[] = {{"male", "male"},   {"m", "male"},      {"男", "male"},    {"先生", "male"},
               {"female", "female"}, {"f", "female"},  {"女", "female"},  {"女士", "female"},
               {"unknown", "unknown"}, {"未知", "unknown"}, {"保密", "unknown"}};
    char low[32];
    size_t i = 0;
    for (; in && in[i] && i + 1 < sizeof low; i++)
        low[i] = (char) tolower((unsigned char) in[i]);
    low[i] = 0;
    if (in && in[i])
        return NULL; /* longer than any spelling */
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(low, map[k].in))
            return map[k].out;
    return NULL;
}

static int s_gender(const char *in, char *out, size_t size)
{
    const char *g = crm_lead_gender(in);
    if (!g)
        return -1;
    crm_fmt(out, size, "%s", g);
    return 0;
}

int crm_lead_check(const crm_body_lead_submit_t *in, int64_t now_ms, crm_fields_t *out,
                   crm_issues_t *issues)
{
    memset(out, 0, sizeof *out);
    char text[2048], norm[256];

    /* name */
    if (s_text(in->name, text, 256, "name", issues) && text[0])
        s_set(out, CRM_CF_name, text);
    else if (!in->name || !text[0])
        crm_issue_add(issues, CRM_SEV_REJECT, "name", "required", "a name (person or company) is required");

    /* phones: at least one of the four */
    bool any = s_phone(in->mobile, CRM_CF_mobile, out, issues);
    any |= s_phone(in->home_phone, CRM_CF_home_phone, out, issues);
    any |= s_phone(in->office_phone, CRM_CF_office_phone, out, issues);
    any |= s_phone(in->usual_phone, CRM_CF_usual_phone, out, issues);
    if (!any)
        crm_issue_add(issues, CRM_SEV_REJECT, "mobile", "required",
                      "at least one phone number (mobile, home, office or usual) is required");

    /* gender */
    if (s_text(in->gender, text, 64, "gender", issues) && text[0]) {
        if (s_gender(text, norm, sizeof norm) == 0)
            s_set(out, CRM_CF_gender, norm);
        else
            crm_issue_add(issues, CRM_SEV_WARNING, "gender", "invalid",
                          "gender must be male, female or unknown");
    }

    /* birthday: 1900-01-01 is the seed's "unknown" */
    if (s_text(in->birthday, text, 64, "birthday", issues) && text[0]) {
        crm_norm_code_t c = crm_norm_birthday(text, norm);
        s_set(out, CRM_CF_birthday,
              c == CRM_NORM_OK ? norm : c == CRM_NORM_UNKNOWN_SENTINEL ? "1900-01-01" : text);
    }

    /* e-mail: the domain lower-cased */
    if (s_text(in->email, text, 512, "email", issues) && text[0]) {
        char email[CRM_NORM_EMAIL_SZ];
        crm_norm_code_t c = crm_norm_email(text, email, NULL);
        s_set(out, CRM_CF_email, c == CRM_NORM_OK || c == CRM_NORM_SUSPECTED_TYPO ? email : text);
    }

    /* ID number: the 18-character form; a match key only when it passes */
    if (s_text(in->id_number, text, 64, "id_number", issues) && text[0]) {
        crm_idcard_t id;
        crm_norm_code_t c = crm_norm_idcard(text, &id);
        s_set(out, CRM_CF_id_number, c == CRM_NORM_OK || c == CRM_NORM_BAD_CHECK ? id.id : text);
        out->indexable_id = c == CRM_NORM_OK;
    }

    /* address, postcode, city, province */
    if (s_text(in->address, text, sizeof text, "address", issues) && text[0])
        s_set(out, CRM_CF_address, text);
    if (s_text(in->postcode, text, 64, "postcode", issues) && text[0]) {
        crm_norm_code_t c = crm_norm_postcode(text, norm);
        s_set(out, CRM_CF_postcode, c == CRM_NORM_OK || c == CRM_NORM_RESERVED ? norm : text);
    }
    if (s_text(in->city, text, 256, "city", issues) && text[0]) {
        if (crm_norm_city(text, norm, sizeof norm) == 0)
            s_set(out, CRM_CF_city, norm);
        else
            s_set(out, CRM_CF_city, text);
    }
    if (s_text(in->province, text, 256, "province", issues) && text[0]) {
        const char *canonical;
        s_set(out, CRM_CF_province, crm_norm_province(text, &canonical, NULL) == 0 ? canonical : text);
    }

    /* vehicle */
    if (s_text(in->vin, text, 64, "vin", issues) && text[0]) {
        char vin[CRM_NORM_VIN_SZ];
        crm_norm_code_t c = crm_norm_vin(text, vin);
        s_set(out, CRM_CF_vin, c == CRM_NORM_OK || c == CRM_NORM_BAD_CHECK ? vin : text);
    }
    if (s_text(in->plate, text, 64, "plate", issues) && text[0]) {
        char plate[CRM_NORM_PLATE_SZ];
        crm_norm_code_t c = crm_norm_plate(text, plate, NULL);
        s_set(out, CRM_CF_plate, c == CRM_NORM_OK ? plate : text);
    }

    /* what was received, beside what was kept */
#define S_RAW(f) s_keep_raw(out, CRM_CF_##f, in->f);
    CRM_CUSTOMER_FIELDS(S_RAW)
#undef S_RAW

    /* the record's findings: the audit's rules, once (crm_audit) */
    crm_lead_record_findings(out, now_ms, issues);

    /* lead-level: grade, expected date, test drive */
    if (in->intent_grade && *in->intent_grade) {
        const char *g = in->intent_grade;
        if (!(g[1] == 0 && strchr("HABChabc", g[0])))
            crm_issue_add(issues, CRM_SEV_WARNING, "intent_grade", "invalid",
                          "intent grade must be H, A, B or C");
    }
    if (in->expected_purchase_date && *in->expected_purchase_date) {
        crm_norm_code_t c = crm_norm_birthday(in->expected_purchase_date, norm);
        if (c != CRM_NORM_OK)
            crm_issue_add(issues, CRM_SEV_WARNING, "expected_purchase_date", "invalid",
                          "expected purchase date must be a real date (YYYY-MM-DD)");
    }
    bool wants = (in->has.testdrive && in->testdrive) || in->has.testdrive_at;
    if (wants && !in->has.testdrive_at)
        crm_issue_add(issues, CRM_SEV_REJECT, "testdrive_at", "required",
                      "a test-drive request needs its date and time");
    else if (wants && in->testdrive_at < now_ms) {
        char when[40];
        crm_format_cst(in->testdrive_at, when, sizeof when);
        crm_issue_add(issues, CRM_SEV_REJECT, "testdrive_at", "past",
                      "the requested test-drive time %s is in the past", when);
    } else if (wants && in->testdrive_at - now_ms > 366LL * 86400000) {
        crm_issue_add(issues, CRM_SEV_REJECT, "testdrive_at", "invalid",
                      "the requested test-drive time is more than a year ahead");
    }
    return issues->rejects;
}
