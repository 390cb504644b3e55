/*  crm_audit: the data-quality rules of a customer record (crm_audit.h). */
#include "crm_str.h"
#include "crm_audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crm_cadence.h"
#include "crm_calendar.h"
#include "crm_norm.h"

static const struct {
    const char *name, *text;
    crm_audit_part_t part;
} s_rules[] = {
#define S_RULE(r, p, t) {#r, t, CRM_AUDIT_##p},
    CRM_AUDIT_RULES(S_RULE)
#undef S_RULE
};

_Static_assert(CRM_RULE_COUNT <= 64, "a rule set is a 64-bit mask");

const char *crm_rule_name(crm_rule_t rule) { return (unsigned) rule < CRM_RULE_COUNT ? s_rules[rule].name : "?"; }
const char *crm_rule_text(crm_rule_t rule) { return (unsigned) rule < CRM_RULE_COUNT ? s_rules[rule].text : "?"; }
crm_audit_part_t crm_rule_part(crm_rule_t rule)
{
    return (unsigned) rule < CRM_RULE_COUNT ? s_rules[rule].part : CRM_AUDIT_EXTENDED;
}
const char *crm_audit_part_name(crm_audit_part_t part)
{
    return part == CRM_AUDIT_CONTACT ? "contact" : part == CRM_AUDIT_EMAIL ? "email" : "extended";
}

int crm_rule_from_name(const char *name)
{
    for (int r = 0; name && r < CRM_RULE_COUNT; r++)
        if (!strcmp(name, s_rules[r].name))
            return r;
    return -1;
}

int crm_audit_mask_parse(const char *list, uint64_t *mask, char *bad, size_t badsz)
{
    *mask = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t) (end - p) : strlen(p);
        char word[32];
        if (n && n < sizeof word) {
            memcpy(word, p, n);
            word[n] = 0;
            int r = crm_rule_from_name(word);
            if (r >= 0)
                *mask |= CRM_RULE_BIT(r);
            else if (!strcmp(word, "contact"))
                *mask |= CRM_AUDIT_CONTACT_MASK;
            else if (!strcmp(word, "email"))
                *mask |= CRM_AUDIT_EMAIL_MASK;
            else if (!strcmp(word, "extended"))
                *mask |= CRM_AUDIT_ALL_MASK & ~(CRM_AUDIT_CONTACT_MASK | CRM_AUDIT_EMAIL_MASK);
            else
                n = sizeof word; /* unknown */
        }
        if (!n || n >= sizeof word) {
            if (bad)
                crm_fmt(bad, badsz, "%.*s", (int) (n < 64 ? n : 64), p);
            return -1;
        }
        p += n + (end ? 1 : 0);
        if (end && !*p) {
            if (bad)
                crm_fmt(bad, badsz, "(empty)");
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ plumbing */

typedef struct {
    crm_audit_result_t *out;
    char text[CRM_CF_COUNT][512]; /* NFKC-trimmed values; "" absent */
    bool unreadable[CRM_CF_COUNT];
} s_eval_t;

static void s_fail(s_eval_t *e, crm_rule_t rule, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void s_fail(s_eval_t *e, crm_rule_t rule, const char *field, const char *code, const char *fmt, ...)
{
    crm_issues_t *is = &e->out->issues;
    e->out->fail |= CRM_RULE_BIT(rule);
    crm_audit_part_t part = crm_rule_part(rule);
    if (is->n >= CRM_ISSUES_MAX)
        return;
    crm_issue_t *i = &is->v[is->n++];
    i->severity = part == CRM_AUDIT_EXTENDED ? CRM_SEV_WARNING : CRM_SEV_ERROR;
    crm_copy(i->field, sizeof i->field, field);
    crm_copy(i->code, sizeof i->code, code);
    crm_copy(i->rule, sizeof i->rule, crm_rule_name(rule));
    va_list ap;
    va_start(ap, fmt);
    crm_vfmt(i->message, sizeof i->message, fmt, ap);
    va_end(ap);
}

static void s_na(s_eval_t *e, crm_rule_t rule) { e->out->na |= CRM_RULE_BIT(rule); }
static void s_not_run(s_eval_t *e, crm_rule_t rule) { e->out->not_run |= CRM_RULE_BIT(rule); }

static const char *s_val(const s_eval_t *e, crm_cf_t f) { return e->text[f][0] ? e->text[f] : NULL; }

/* NFKC and trim; a value that cannot be read as text is still there
   (filled), and only the rules on its form fail. */
static void s_norm(s_eval_t *e, crm_cf_t f, const char *in)
{
    e->text[f][0] = 0;
    if (!in || !*in)
        return;
    if (crm_norm_text(in, e->text[f], sizeof e->text[f]) != 0) {
        crm_fmt(e->text[f], sizeof e->text[f], "?");
        e->unreadable[f] = true;
    }
}

/* The shape of a phone value for a message: every digit written as 'd',
   so a finding says what was typed without the number in clear. */
static void s_shape(const char *text, char *out, size_t size)
{
    size_t n = 0, i = 0;
    while (text[i] && size >= 8) {
        unsigned char c = (unsigned char) text[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (strnlen(text + i, len) < len)
            break;
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

/* Whether a phone value is written with a Chinese area code: after
   separators and one +86 / 0086 (the trunk 0 may then be left out), a
   trunk 0 and an area code (10, 2x, 3xx-9xx) with digits after it. */
static bool s_has_area_code(const char *text)
{
    char d[40];
    size_t n = 0;
    bool plus = false;
    for (const char *p = text; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= sizeof d)
                return false;
            d[n++] = *p;
        } else if (*p == '+' && !n)
            plus = true;
        else if (!strchr(" -().", *p))
            break; /* an extension or anything else ends the number */
    }
    d[n] = 0;
    const char *s = d;
    if (plus && n >= 2 && s[0] == '8' && s[1] == '6')
        s += 2;
    else if (n >= 4 && !memcmp(s, "0086", 4))
        s += 4;
    else if (plus)
        return false; /* another calling code */
    else if (s[0] != '0')
        return false;
    if (s[0] == '0')
        s++;
    size_t rest = strlen(s);
    if (rest > 12)
        return false; /* longer than any area code and local number */
    if (s[0] == '1' && s[1] == '0')
        return rest > 2 + 4;
    if (s[0] == '2' && s[1] != '6') /* 026 is reserved */
        return rest > 2 + 4;
    if (s[0] >= '3' && s[0] <= '9')
        return rest > 3 + 4;
    return false;
}

/* A complete number of another plan (+1, +44, +852, ...): usable as
   written, but none of our rules can check it. */
static void s_other_plan(s_eval_t *e, const char *field, const char *text)
{
    int cc = crm_norm_phone_calling_code(text);
    char code[16] = "another one";
    if (cc > 0)
        crm_fmt(code, sizeof code, "+%d", cc);
    s_fail(e, CRM_RULE_phone_form, field, "other_calling_code",
           "%s is written with calling code %s, outside the +86 plan: kept as given, not checked", field, code);
}

/* One of the four phone slots: part one's area code and the extended
   checks. The slot is filled whatever the value is. */
static void s_phone(s_eval_t *e, crm_cf_t f)
{
    const char *text = s_val(e, f), *field = crm_cf_name(f);
    if (!text)
        return;
    char shape[48];
    s_shape(text, shape, sizeof shape);
    if (e->unreadable[f]) {
        s_fail(e, CRM_RULE_phone_form, field, "invalid", "%s is not readable text", field);
        return;
    }
    char mobile[CRM_NORM_MOBILE_SZ];
    crm_norm_code_t mc = crm_norm_mobile(text, mobile);
    switch (mc) {
    case CRM_NORM_OK:
        return;
    case CRM_NORM_MASKED:
        s_fail(e, CRM_RULE_mobile_plan, field, "masked", "%s is masked (%s): the full number is unknown", field, mobile);
        return;
    case CRM_NORM_NOT_IN_PLAN:
        s_fail(e, CRM_RULE_mobile_plan, field, "not_in_numbering_plan",
               "%s %.3s… is not in China's mobile numbering plan", field, mobile);
        return;
    case CRM_NORM_PLACEHOLDER:
        s_fail(e, CRM_RULE_mobile_plan, field, "placeholder", "%s looks like a placeholder, not a real number", field);
        return;
    case CRM_NORM_OTHER_CALLING_CODE:
        s_other_plan(e, field, text);
        return;
    default:
        break;
    }
    crm_landline_t line;
    switch (crm_norm_landline(text, &line)) {
    case CRM_NORM_OK:
        if (f == CRM_CF_mobile)
            s_fail(e, CRM_RULE_phone_form, field, "landline_as_mobile", "mobile holds a landline number");
        return;
    case CRM_NORM_MISSING_AREA_CODE:
        s_fail(e, CRM_RULE_area_code, field, "missing_area_code",
               "%s (written %s) has no area code: a landline must carry it", field, shape);
        return;
    case CRM_NORM_BUSINESS_NUMBER:
        s_fail(e, CRM_RULE_phone_form, field, "business_number", "%s is a 400/800 business number", field);
        return;
    case CRM_NORM_OTHER_CALLING_CODE:
        s_other_plan(e, field, text);
        return;
    case CRM_NORM_NOT_CN_NUMBER:
        s_fail(e, CRM_RULE_area_code, field, "not_cn_number",
               "%s (written %s) shows no area code: no +86 and no trunk 0 before one", field, shape);
        return;
    default:
        break;
    }
    if (s_has_area_code(text)) {
        /* the seed's rule is met: the area code is there */
        s_fail(e, CRM_RULE_phone_form, field, "bad_length",
               "%s (written %s) has an area code but not a local number of the right length", field, shape);
    } else {
        s_fail(e, CRM_RULE_phone_form, field, "invalid", "%s (written %s) is not a phone number", field, shape);
    }
}

static void s_required(s_eval_t *e, crm_rule_t rule, crm_cf_t f, const char *what)
{
    if (!s_val(e, f))
        s_fail(e, rule, crm_cf_name(f), "missing", "%s is missing", what);
}

/* NFKC and trim into `buf`: NULL when nothing is left; "?" when the value
   cannot be read as text (it is there, but no form rule can pass). */
static const char *s_plain(const char *v, char *buf, size_t size)
{
    if (!v || !*v)
        return NULL;
    if (crm_norm_text(v, buf, size) != 0)
        crm_fmt(buf, size, "?");
    return buf[0] ? buf : NULL;
}

static bool s_has_order(const char *stage)
{
    return stage && (!strcmp(stage, "customer") || !strcmp(stage, "owner"));
}

static bool s_is_prospect(const char *stage) { return !stage || !*stage || !strcmp(stage, "prospect"); }

void crm_audit_eval(const crm_audit_input_t *in, const crm_audit_opts_t *opts, crm_audit_result_t *out)
{
    static const crm_audit_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    /* Only what is read before it is written is cleared: the issues are
       written entry by entry, the texts field by field (s_norm). */
    out->fail = out->not_run = out->na = 0;
    out->issues.n = out->issues.rejects = 0;
    s_eval_t ev, *e = &ev;
    e->out = out;
    memset(e->unreadable, 0, sizeof e->unreadable);
    for (int f = 0; f < CRM_CF_COUNT; f++)
        s_norm(e, (crm_cf_t) f, in->v[f]);
    /* the cars' and the prospect's values are read the same way */
    crm_audit_input_t view = *in;
    char cars[CRM_AUDIT_VEHICLES_MAX][3][64], remark[512], gradebuf[16], epdate[32];
    if (view.nveh > CRM_AUDIT_VEHICLES_MAX)
        view.nveh = CRM_AUDIT_VEHICLES_MAX;
    for (size_t i = 0; i < view.nveh; i++) {
        view.veh[i].vin = s_plain(in->veh[i].vin, cars[i][0], sizeof cars[i][0]);
        view.veh[i].plate = s_plain(in->veh[i].plate, cars[i][1], sizeof cars[i][1]);
        view.veh[i].sale_date = s_plain(in->veh[i].sale_date, cars[i][2], sizeof cars[i][2]);
    }
    view.remark = s_plain(in->remark, remark, sizeof remark);
    view.grade = s_plain(in->grade, gradebuf, sizeof gradebuf);
    view.expected_purchase_date = s_plain(in->expected_purchase_date, epdate, sizeof epdate);
    in = &view;

    /* ---- part one: contact data */
    static const crm_cf_t phones[] = {CRM_CF_mobile, CRM_CF_home_phone, CRM_CF_office_phone, CRM_CF_usual_phone};
    bool filled = false;
    for (size_t i = 0; i < 4; i++)
        filled |= s_val(e, phones[i]) != NULL;
    if (!filled) {
        s_fail(e, CRM_RULE_phone, "mobile", "missing",
               "no phone: at least one of mobile, home, office and usual phone must be filled");
        s_na(e, CRM_RULE_area_code);
    }
    for (size_t i = 0; i < 4; i++)
        s_phone(e, phones[i]);
    if (!(out->fail & CRM_RULE_BIT(CRM_RULE_mobile_plan)) && !s_val(e, CRM_CF_mobile))
        s_na(e, CRM_RULE_mobile_plan);

    s_required(e, CRM_RULE_address, CRM_CF_address, "mailing address");
    const char *pc = s_val(e, CRM_CF_postcode);
    char postcode[CRM_NORM_POSTCODE_SZ] = "";
    if (!pc) {
        s_fail(e, CRM_RULE_postcode, "postcode", "missing", "postcode is missing");
        s_na(e, CRM_RULE_postcode_range);
    } else {
        crm_norm_code_t c = e->unreadable[CRM_CF_postcode] ? CRM_NORM_BAD_CHAR : crm_norm_postcode(pc, postcode);
        if (c == CRM_NORM_RESERVED)
            s_fail(e, CRM_RULE_postcode_range, "postcode", "reserved",
                   "postcode %s is in a range no address has (000000-009999, 999xxx)", postcode);
        else if (c != CRM_NORM_OK) {
            postcode[0] = 0;
            s_fail(e, CRM_RULE_postcode, "postcode", crm_norm_code_str(c), "postcode must be exactly 6 digits");
            s_na(e, CRM_RULE_postcode_range);
        }
    }
    s_required(e, CRM_RULE_city, CRM_CF_city, "city");
    const char *prov = s_val(e, CRM_CF_province);
    int pcode = 0;
    if (!prov) {
        s_fail(e, CRM_RULE_province, "province", "missing", "province is missing");
        s_na(e, CRM_RULE_province_name);
    } else if (e->unreadable[CRM_CF_province] || crm_norm_province(prov, NULL, &pcode) != 0) {
        pcode = 0;
        s_fail(e, CRM_RULE_province_name, "province", "unknown",
               "province is not one of the 34 provincial-level divisions");
    }
    if (postcode[0] && pcode) {
        int owner = crm_norm_postcode_province(postcode);
        if (owner < 0)
            s_not_run(e, CRM_RULE_postcode_province); /* no data for the prefix */
        else if (owner != pcode)
            s_fail(e, CRM_RULE_postcode_province, "postcode", "province_mismatch",
                   "postcode %.2s…… belongs to another province than the record's", postcode);
    } else {
        s_na(e, CRM_RULE_postcode_province);
    }

    bool car = in->nveh > 0 || s_val(e, CRM_CF_vin);
    char saleb[64];
    if (!opts->sale_date_all && !car && !s_has_order(in->stage) && !s_plain(in->sale_date, saleb, sizeof saleb)) {
        s_na(e, CRM_RULE_sale_date);
    } else if (in->vehicles_unread && !s_plain(in->sale_date, saleb, sizeof saleb)) {
        s_not_run(e, CRM_RULE_sale_date);
    } else {
        char own[64];
        bool dated = s_plain(in->sale_date, own, sizeof own) != NULL;
        for (size_t i = 0; i < in->nveh && i < CRM_AUDIT_VEHICLES_MAX; i++)
            dated |= in->veh[i].sale_date && *in->veh[i].sale_date;
        if (!dated)
            s_fail(e, CRM_RULE_sale_date, "sale_date", "missing", "sale (invoice) date is missing");
    }

    /* ---- part two: e-mail */
    const char *mail = s_val(e, CRM_CF_email);
    if (!mail) {
        s_fail(e, CRM_RULE_email, "email", "missing", "e-mail is missing");
        s_na(e, CRM_RULE_email_typo);
    } else {
        char norm[CRM_NORM_EMAIL_SZ], suggest[CRM_NORM_DOMAIN_SZ] = "";
        crm_norm_code_t c = e->unreadable[CRM_CF_email] ? CRM_NORM_INVALID : crm_norm_email(mail, norm, suggest);
        if (c == CRM_NORM_SUSPECTED_TYPO)
            s_fail(e, CRM_RULE_email_typo, "email", "suspected_typo", "e-mail domain looks like a typo of %s", suggest);
        else if (c == CRM_NORM_PLACEHOLDER)
            s_fail(e, CRM_RULE_email, "email", "placeholder", "e-mail is a placeholder (无, none, n/a ...), not an address");
        else if (c != CRM_NORM_OK)
            s_fail(e, CRM_RULE_email, "email", crm_norm_code_str(c), "e-mail address is not valid");
        if (c != CRM_NORM_OK && c != CRM_NORM_SUSPECTED_TYPO)
            s_na(e, CRM_RULE_email_typo);
    }

    /* ---- extended: people */
    const char *bd = s_val(e, CRM_CF_birthday);
    char birth[CRM_NORM_DATE_SZ] = "";
    if (!bd)
        s_na(e, CRM_RULE_birthday);
    else {
        crm_norm_code_t c = crm_norm_birthday(bd, birth);
        if (c == CRM_NORM_UNKNOWN_SENTINEL)
            s_fail(e, CRM_RULE_birthday, "birthday", "unknown", "birthday is unknown (1900-01-01)");
        else if (c != CRM_NORM_OK)
            s_fail(e, CRM_RULE_birthday, "birthday", crm_norm_code_str(c), "birthday is not a real date (YYYY-MM-DD)");
        if (c != CRM_NORM_OK)
            birth[0] = 0;
    }
    const char *idn = s_val(e, CRM_CF_id_number);
    if (!idn) {
        s_na(e, CRM_RULE_id_check);
        s_na(e, CRM_RULE_id_birthday);
    } else {
        crm_idcard_t id;
        crm_norm_code_t c = crm_norm_idcard(idn, &id);
        if (c != CRM_NORM_OK) {
            s_fail(e, CRM_RULE_id_check, "id_number", crm_norm_code_str(c), "ID number fails GB 11643 (%s)",
                   crm_norm_code_str(c));
            s_na(e, CRM_RULE_id_birthday);
        } else {
            const char *g = s_val(e, CRM_CF_gender);
            bool checked = false;
            if (birth[0]) {
                checked = true;
                if (strcmp(birth, id.birth))
                    s_fail(e, CRM_RULE_id_birthday, "birthday", "id_number_mismatch",
                           "birthday differs from the birth date in the ID number");
            }
            if (g && (!strcmp(g, "male") || !strcmp(g, "female"))) {
                checked = true;
                if ((id.sex == 'M' && !strcmp(g, "female")) || (id.sex == 'F' && !strcmp(g, "male")))
                    s_fail(e, CRM_RULE_id_birthday, "gender", "id_number_mismatch",
                           "gender differs from the sex in the ID number");
            }
            if (!checked)
                s_na(e, CRM_RULE_id_birthday);
        }
    }

    /* ---- extended: cars (the record's own VIN and plate, and its cars') */
    const char *vins[1 + CRM_AUDIT_VEHICLES_MAX], *plates[1 + CRM_AUDIT_VEHICLES_MAX];
    size_t nv = 0, np = 0;
    if (s_val(e, CRM_CF_vin))
        vins[nv++] = s_val(e, CRM_CF_vin);
    if (s_val(e, CRM_CF_plate))
        plates[np++] = s_val(e, CRM_CF_plate);
    for (size_t i = 0; i < in->nveh && i < CRM_AUDIT_VEHICLES_MAX; i++) {
        if (in->veh[i].vin && *in->veh[i].vin)
            vins[nv++] = in->veh[i].vin;
        if (in->veh[i].plate && *in->veh[i].plate)
            plates[np++] = in->veh[i].plate;
    }
    bool vin_bad = false, plate_bad = false;
    for (size_t i = 0; i < nv && !vin_bad; i++) {
        char vin[CRM_NORM_VIN_SZ];
        crm_norm_code_t c = crm_norm_vin(vins[i], vin);
        if (c != CRM_NORM_OK) {
            vin_bad = true;
            s_fail(e, CRM_RULE_vin_check, "vin", crm_norm_code_str(c),
                   c == CRM_NORM_BAD_CHECK ? "VIN check digit (position 9) is wrong"
                                           : "VIN must be 17 characters without I, O, Q");
        }
    }
    for (size_t i = 0; i < np && !plate_bad; i++) {
        char plate[CRM_NORM_PLATE_SZ];
        if (crm_norm_plate(plates[i], plate, NULL) != CRM_NORM_OK) {
            plate_bad = true;
            s_fail(e, CRM_RULE_plate, "plate", "invalid", "plate number does not match GA 36-2018");
        }
    }
    if (!nv)
        in->vehicles_unread ? s_not_run(e, CRM_RULE_vin_check) : s_na(e, CRM_RULE_vin_check);
    if (!np)
        in->vehicles_unread ? s_not_run(e, CRM_RULE_plate) : s_na(e, CRM_RULE_plate);

    /* ---- extended: the prospect's grade and dates */
    const char *grade = in->grade && *in->grade ? in->grade : NULL;
    bool prospect = s_is_prospect(in->stage);
    if (!grade || !prospect || crm_grade_index(grade) < 0)
        s_na(e, CRM_RULE_remark_grade);
    else if (!in->remark || !*in->remark)
        s_fail(e, CRM_RULE_remark_grade, "remark", "missing", "a %s prospect's remark must start with %s", grade, grade);
    else if (!crm_grade_remark_ok(grade, in->remark))
        s_fail(e, CRM_RULE_remark_grade, "remark", "grade_letter", "the remark does not start with the grade letter %s",
               grade);
    int64_t epd = in->expected_purchase_date && *in->expected_purchase_date ? crm_day_parse(in->expected_purchase_date)
                                                                            : INT64_MIN;
    if (!prospect || epd == INT64_MIN) {
        s_na(e, CRM_RULE_expected_passed);
        s_na(e, CRM_RULE_grade_date);
    } else if (!in->today) {
        s_not_run(e, CRM_RULE_expected_passed);
        s_not_run(e, CRM_RULE_grade_date);
    } else {
        if (epd < in->today)
            s_fail(e, CRM_RULE_expected_passed, "expected_purchase_date", "passed",
                   "the expected purchase date %s has passed without an order", in->expected_purchase_date);
        if (!grade || crm_grade_index(grade) < 0 || epd < in->today)
            s_na(e, CRM_RULE_grade_date); /* a passed date is expected_passed's */
        else if (!crm_grade_date_agrees(grade, epd, in->today))
            s_fail(e, CRM_RULE_grade_date, "grade", "date_disagrees",
                   "grade %s does not agree with the expected purchase date %s (H within 7 days, A 15, B 30, C beyond)",
                   grade, in->expected_purchase_date);
    }
    /* the duplicates are a run's (every record at once) */
}
