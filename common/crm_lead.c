#include "crm_lead.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    snprintf(i->field, sizeof i->field, "%s", field);
    snprintf(i->code, sizeof i->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(i->message, sizeof i->message, fmt, ap);
    va_end(ap);
}

void crm_issue_format(const crm_issue_t *issue, char *out, size_t size)
{
    snprintf(out, size, "%s|%s|%s", issue->field, issue->code, issue->message);
}

void crm_format_cst(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t) ((ms + CRM_CST_OFFSET_MS) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%04d-%02d-%02d %02d:%02d CST", tm.tm_year + 1900, tm.tm_mon + 1,
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

/* The shape of a phone value for a message: every digit written as 'd',
   so the finding says what was typed (ddd-ddd-dddd) without the number in
   clear. Whole characters only; a long value is cut with "…". size >= 4. */
static void s_shape(const char *text, char *out, size_t size)
{
    size_t n = 0, i = 0;
    while (text[i]) {
        unsigned char c = (unsigned char) text[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (strnlen(text + i, len) < len)
            break;
        /* Leave room for "…" and the NUL. */
        if (n >= 32 || n + len + 4 > size) {
            memcpy(out + n, "…", 3);
            n += 3;
            break;
        }
        if (len == 1)
            out[n++] = (c >= '0' && c <= '9') ? 'd' : (char) c;
        else {
            memcpy(out + n, text + i, len);
            n += len;
        }
        i += len;
    }
    out[n] = 0;
}

/* A complete number of another plan (+1, +44, +852, ...): usable as
   written, but none of our rules can check it, and reading it as Chinese
   would make up a number. */
static void s_other_plan(const char *text, crm_cf_t f, crm_fields_t *out, crm_issues_t *issues)
{
    const char *field = crm_cf_name(f);
    int cc = crm_norm_phone_calling_code(text);
    char code[16] = "another one";
    if (cc > 0)
        snprintf(code, sizeof code, "+%d", cc);
    s_set(out, f, text);
    crm_issue_add(issues, CRM_SEV_WARNING, field, "other_calling_code",
                  "%s is written with calling code %s, outside the +86 plan: kept as given, "
                  "not checked",
                  field, code);
}

/* A phone in one of the four slots: a mobile anywhere is fine; a landline
   must carry its area code. A value that is no Chinese number as written is
   kept as given (NFKC and trimming only), never completed into one.
   Returns true when something was recorded. */
static bool s_phone(const char *raw, crm_cf_t f, crm_fields_t *out, crm_issues_t *issues)
{
    char text[128];
    const char *field = crm_cf_name(f);
    if (!s_text(raw, text, sizeof text, field, issues) || !text[0])
        return false;
    char mobile[CRM_NORM_MOBILE_SZ];
    crm_norm_code_t mc = crm_norm_mobile(text, mobile);
    if (mc == CRM_NORM_OTHER_CALLING_CODE) {
        s_other_plan(text, f, out, issues);
        return true;
    }
    if (mc == CRM_NORM_OK || mc == CRM_NORM_NOT_IN_PLAN || mc == CRM_NORM_PLACEHOLDER ||
        mc == CRM_NORM_MASKED) {
        s_set(out, f, mobile);
        if (mc == CRM_NORM_MASKED)
            crm_issue_add(issues, CRM_SEV_ERROR, field, "masked",
                          "%s is masked (%s): the full number is unknown", field, mobile);
        else if (mc == CRM_NORM_NOT_IN_PLAN)
            crm_issue_add(issues, CRM_SEV_WARNING, field, "not_in_numbering_plan",
                          "%s %.3s… is not in China's mobile numbering plan", field, mobile);
        else if (mc == CRM_NORM_PLACEHOLDER)
            crm_issue_add(issues, CRM_SEV_ERROR, field, "placeholder",
                          "%s looks like a placeholder, not a real number", field);
        if (f == CRM_CF_mobile)
            out->indexable_mobile = mc == CRM_NORM_OK || mc == CRM_NORM_NOT_IN_PLAN;
        return true;
    }
    crm_landline_t line;
    crm_norm_code_t lc = crm_norm_landline(text, &line);
    switch (lc) {
    case CRM_NORM_OK:
        s_set(out, f, line.formatted);
        if (f == CRM_CF_mobile)
            crm_issue_add(issues, CRM_SEV_WARNING, field, "landline_as_mobile",
                          "mobile holds a landline number");
        return true;
    case CRM_NORM_MISSING_AREA_CODE:
        /* formatted keeps the extension (12345678-8001); local alone would
           drop digits the customer wrote. */
        s_set(out, f, line.formatted);
        crm_issue_add(issues, CRM_SEV_ERROR, field, "missing_area_code",
                      "%s has no area code (a landline must carry it)", field);
        return true;
    case CRM_NORM_BUSINESS_NUMBER:
        s_set(out, f, line.formatted);
        crm_issue_add(issues, CRM_SEV_WARNING, field, "business_number",
                      "%s is a 400/800 business number", field);
        return true;
    case CRM_NORM_OTHER_CALLING_CODE: /* with an extension the mobile check refuses */
        s_other_plan(text, f, out, issues);
        return true;
    case CRM_NORM_NOT_CN_NUMBER: {
        /* An error like missing_area_code: written without +86 and without
           a trunk 0, it shows no area code, and guessing one (0393?) would
           make up a number. It still counts as filled. */
        char shape[48];
        s_shape(text, shape, sizeof shape);
        s_set(out, f, text);
        crm_issue_add(issues, CRM_SEV_ERROR, field, "not_cn_number",
                      "%s (written %s) is not a Chinese number as written: no +86 and no "
                      "trunk 0 before an area code; kept as given",
                      field, shape);
        return true;
    }
    default:
        s_set(out, f, text);
        crm_issue_add(issues, CRM_SEV_ERROR, field, "invalid", "%s is not a phone number", field);
        return true;
    }
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
    snprintf(out, size, "%s", g);
    return 0;
}

void crm_record_audit(const crm_fields_t *f, crm_issues_t *issues)
{
    if (!f->v[CRM_CF_address])
        crm_issue_add(issues, CRM_SEV_ERROR, "address", "missing", "mailing address is missing");
    if (!f->v[CRM_CF_postcode])
        crm_issue_add(issues, CRM_SEV_ERROR, "postcode", "missing", "postcode is missing");
    if (!f->v[CRM_CF_city])
        crm_issue_add(issues, CRM_SEV_ERROR, "city", "missing", "city is missing");
    if (!f->v[CRM_CF_province])
        crm_issue_add(issues, CRM_SEV_ERROR, "province", "missing", "province is missing");
    if (!f->v[CRM_CF_email])
        crm_issue_add(issues, CRM_SEV_WARNING, "email", "missing", "e-mail is missing");
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
        if (c == CRM_NORM_OK)
            s_set(out, CRM_CF_birthday, norm);
        else if (c == CRM_NORM_UNKNOWN_SENTINEL) {
            s_set(out, CRM_CF_birthday, "1900-01-01");
            crm_issue_add(issues, CRM_SEV_WARNING, "birthday", "unknown",
                          "birthday is unknown (1900-01-01)");
        } else {
            s_set(out, CRM_CF_birthday, text);
            crm_issue_add(issues, CRM_SEV_WARNING, "birthday", crm_norm_code_str(c),
                          "birthday is not a real date (YYYY-MM-DD)");
        }
    }

    /* e-mail */
    if (s_text(in->email, text, 512, "email", issues) && text[0]) {
        char email[CRM_NORM_EMAIL_SZ], suggest[CRM_NORM_DOMAIN_SZ] = "";
        crm_norm_code_t c = crm_norm_email(text, email, suggest);
        if (c == CRM_NORM_OK || c == CRM_NORM_SUSPECTED_TYPO)
            s_set(out, CRM_CF_email, email);
        else
            s_set(out, CRM_CF_email, text);
        if (c == CRM_NORM_SUSPECTED_TYPO)
            crm_issue_add(issues, CRM_SEV_ERROR, "email", "suspected_typo",
                          "e-mail domain looks like a typo of %s", suggest);
        else if (c != CRM_NORM_OK)
            crm_issue_add(issues, CRM_SEV_ERROR, "email", crm_norm_code_str(c),
                          "e-mail address is not valid");
    }

    /* ID number, and its birth date and sex against the record's */
    if (s_text(in->id_number, text, 64, "id_number", issues) && text[0]) {
        crm_idcard_t id;
        crm_norm_code_t c = crm_norm_idcard(text, &id);
        if (c == CRM_NORM_OK) {
            s_set(out, CRM_CF_id_number, id.id);
            out->indexable_id = true;
            const char *bd = out->v[CRM_CF_birthday];
            if (bd && strcmp(bd, "1900-01-01") && strcmp(bd, id.birth))
                crm_issue_add(issues, CRM_SEV_WARNING, "birthday", "id_number_mismatch",
                              "birthday differs from the birth date in the ID number");
            const char *g = out->v[CRM_CF_gender];
            if (g && ((id.sex == 'M' && !strcmp(g, "female")) || (id.sex == 'F' && !strcmp(g, "male"))))
                crm_issue_add(issues, CRM_SEV_WARNING, "gender", "id_number_mismatch",
                              "gender differs from the sex in the ID number");
        } else {
            s_set(out, CRM_CF_id_number, c == CRM_NORM_BAD_CHECK ? id.id : text);
            crm_issue_add(issues, CRM_SEV_WARNING, "id_number", crm_norm_code_str(c),
                          "ID number fails GB 11643 (%s)", crm_norm_code_str(c));
        }
    }

    /* address, postcode, city, province */
    if (s_text(in->address, text, sizeof text, "address", issues) && text[0])
        s_set(out, CRM_CF_address, text);
    if (s_text(in->postcode, text, 64, "postcode", issues) && text[0]) {
        crm_norm_code_t c = crm_norm_postcode(text, norm);
        s_set(out, CRM_CF_postcode, c == CRM_NORM_OK ? norm : text);
        if (c != CRM_NORM_OK)
            crm_issue_add(issues, CRM_SEV_ERROR, "postcode", crm_norm_code_str(c),
                          "postcode must be exactly 6 digits");
    }
    if (s_text(in->city, text, 256, "city", issues) && text[0]) {
        if (crm_norm_city(text, norm, sizeof norm) == 0)
            s_set(out, CRM_CF_city, norm);
        else
            s_set(out, CRM_CF_city, text);
    }
    if (s_text(in->province, text, 256, "province", issues) && text[0]) {
        const char *canonical;
        int code;
        if (crm_norm_province(text, &canonical, &code) == 0) {
            s_set(out, CRM_CF_province, canonical);
            const char *pc = out->v[CRM_CF_postcode];
            int pprov = pc ? crm_norm_postcode_province(pc) : -1;
            if (pprov > 0 && pprov != code)
                crm_issue_add(issues, CRM_SEV_WARNING, "postcode", "province_mismatch",
                              "postcode belongs to another province than %s", canonical);
        } else {
            s_set(out, CRM_CF_province, text);
            crm_issue_add(issues, CRM_SEV_ERROR, "province", "unknown",
                          "province is not one of the 34 provincial-level divisions");
        }
    }

    /* vehicle */
    if (s_text(in->vin, text, 64, "vin", issues) && text[0]) {
        char vin[CRM_NORM_VIN_SZ];
        crm_norm_code_t c = crm_norm_vin(text, vin);
        s_set(out, CRM_CF_vin, c == CRM_NORM_OK || c == CRM_NORM_BAD_CHECK ? vin : text);
        if (c != CRM_NORM_OK)
            crm_issue_add(issues, CRM_SEV_WARNING, "vin", crm_norm_code_str(c),
                          c == CRM_NORM_BAD_CHECK ? "VIN check digit (position 9) is wrong"
                                                  : "VIN must be 17 characters without I, O, Q");
    }
    if (s_text(in->plate, text, 64, "plate", issues) && text[0]) {
        char plate[CRM_NORM_PLATE_SZ];
        crm_norm_code_t c = crm_norm_plate(text, plate, NULL);
        s_set(out, CRM_CF_plate, c == CRM_NORM_OK ? plate : text);
        if (c != CRM_NORM_OK)
            crm_issue_add(issues, CRM_SEV_WARNING, "plate", crm_norm_code_str(c),
                          "plate number does not match GA 36-2018");
    }

    /* what was received, beside what was kept */
#define S_RAW(f) s_keep_raw(out, CRM_CF_##f, in->f);
    CRM_CUSTOMER_FIELDS(S_RAW)
#undef S_RAW

    /* the record-level rules of the audit */
    crm_record_audit(out, issues);

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
