/*  Unit tests for common/crm_audit: the carmaker's data-quality rules, record
    by record, written from DOMAIN.md ("Data-quality audit", seed 000) and
    shared/reference/cn-data-rules.md rather than from the code. Part one is
    exactly the seed's seven rules; e-mail is part two; everything else is a
    warning. Each table row starts from one clean record and changes one
    thing, so a row that fails names the rule it broke. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crm_audit.h"
#include "crm_calendar.h"
#include "crm_lead.h"
#include "crm_norm.h"

#define N_ROWS(t) (sizeof(t) / sizeof((t)[0]))

/* A VIN whose check digit was computed by hand from GB 16735's table (the
   reference's LFWADRJF011002346: position 9 is 0), and the same VIN with
   position 9 changed. */
#define VIN_OK "LFWADRJF011002346"
#define VIN_BAD_CHECK "LFWADRJF111002346"

/* The reference's standard ID number (born 1949-12-31, sequence 002: female). */
#define ID_OK "11010519491231002X"

static int64_t s_today(void)
{
    return crm_day_from_ymd(2026, 12, 1);
}

/* All seven of part one filled right, a valid e-mail, one car with its sale
   date, a valid VIN and plate: no rule fails, not even a warning. */
static crm_audit_input_t s_clean(void)
{
    crm_audit_input_t in;
    memset(&in, 0, sizeof in);
    in.v[CRM_CF_name] = "张伟";
    in.v[CRM_CF_mobile] = "13812345678";
    in.v[CRM_CF_address] = "广东省深圳市南山区科技园路1号";
    in.v[CRM_CF_postcode] = "518000";
    in.v[CRM_CF_city] = "深圳";
    in.v[CRM_CF_province] = "广东";
    in.v[CRM_CF_email] = "zhangwei@163.com";
    in.stage = "owner";
    in.nveh = 1;
    in.veh[0].vin = VIN_OK;
    in.veh[0].plate = "粤B12345";
    in.veh[0].sale_date = "2026-03-15";
    in.today = s_today();
    return in;
}

static void s_eval(const crm_audit_input_t *in, const crm_audit_opts_t *opts,
                   crm_audit_result_t *out)
{
    crm_audit_eval(in, opts, out);
    assert_true(out->issues.n >= 0 && out->issues.n <= CRM_ISSUES_MAX);
}

static int s_errors(const crm_audit_result_t *r)
{
    int n = 0;
    for (int i = 0; i < r->issues.n; i++)
        n += r->issues.v[i].severity == CRM_SEV_ERROR;
    return n;
}

/* The first issue of a rule, or NULL. */
static const crm_issue_t *s_issue(const crm_audit_result_t *r, crm_rule_t rule)
{
    for (int i = 0; i < r->issues.n; i++)
        if (!strcmp(r->issues.v[i].rule, crm_rule_name(rule)))
            return &r->issues.v[i];
    return NULL;
}

/* Every issue, for a failure message. */
static const char *s_dump(const crm_audit_result_t *r)
{
    static char buf[4096];
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < r->issues.n && n < sizeof buf - 200; i++)
        n += (size_t) snprintf(buf + n, sizeof buf - n, " [%s %s/%s/%s]",
                               crm_severity_name(r->issues.v[i].severity), r->issues.v[i].rule,
                               r->issues.v[i].field, r->issues.v[i].code);
    return buf;
}

/* The rules of a mask, "phone,city"; two buffers, so one message can show
   what failed and what should have. */
static const char *s_rules_of(uint64_t mask)
{
    static char bufs[2][1024];
    static int which;
    char *buf = bufs[which ^= 1];
    size_t n = 0;
    buf[0] = 0;
    for (int r = 0; r < CRM_RULE_COUNT; r++)
        if (mask & CRM_RULE_BIT(r))
            n += (size_t) snprintf(buf + n, sizeof bufs[0] - n, "%s%s", n ? "," : "",
                                   crm_rule_name((crm_rule_t) r));
    return n ? buf : "(none)";
}

/* The record fails part one with exactly `want` among the contact bits. */
static void s_expect_contact(const char *what, const crm_audit_result_t *r, uint64_t want)
{
    uint64_t got = r->fail & CRM_AUDIT_CONTACT_MASK;
    if (got != want)
        fail_msg("%s: contact rules failed %s, want %s;%s", what, s_rules_of(got), s_rules_of(want),
                 s_dump(r));
}

/* An issue of `rule` exists with that field, severity and (if given) code. */
static void s_expect_issue(const char *what, const crm_audit_result_t *r, crm_rule_t rule,
                           const char *field, crm_severity_t sev, const char *code)
{
    const crm_issue_t *i = s_issue(r, rule);
    if (!i)
        fail_msg("%s: no issue of rule %s;%s", what, crm_rule_name(rule), s_dump(r));
    if (field && strcmp(i->field, field))
        fail_msg("%s: rule %s names field %s, want %s", what, crm_rule_name(rule), i->field, field);
    if (i->severity != sev)
        fail_msg("%s: rule %s is %s, want %s", what, crm_rule_name(rule),
                 crm_severity_name(i->severity), crm_severity_name(sev));
    if (code && strcmp(i->code, code))
        fail_msg("%s: rule %s has code %s, want %s", what, crm_rule_name(rule), i->code, code);
    if (!(r->fail & CRM_RULE_BIT(rule)))
        fail_msg("%s: an issue of %s but its bit is not in fail", what, crm_rule_name(rule));
}

/* ------------------------------------------------------------ 1. clean */

static void test_a_clean_record_passes_every_rule(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    s_expect_contact("clean", &r, 0);
    assert_int_equal(s_errors(&r), 0);
    if (r.fail)
        fail_msg("clean record fails %s;%s", s_rules_of(r.fail), s_dump(&r));
    assert_int_equal(r.issues.n, 0);
    /* nothing of part one was skipped: each rule was judged and passed */
    assert_int_equal(r.not_run & CRM_AUDIT_CONTACT_MASK, 0);
    assert_int_equal(r.na & CRM_AUDIT_CONTACT_MASK, 0);
    assert_int_equal(r.fail & CRM_AUDIT_EMAIL_MASK, 0);
}

/* ------------------------------------------------------------ 2. one rule alone */

typedef enum { CH_NONE, CH_NO_PHONE, CH_HOME_ONLY, CH_NO_CAR_DATE } s_change_t;

static void test_each_contact_rule_fails_alone(void **state)
{
    (void) state;
    static const struct {
        const char *what;
        s_change_t change; /* a change beyond one field */
        crm_cf_t field;    /* the field set to value (when change is CH_NONE or CH_HOME_ONLY) */
        const char *value;
        crm_rule_t rule;
        const char *issue_field;
    } rows[] = {
        {"no phone at all", CH_NO_PHONE, CRM_CF_mobile, NULL, CRM_RULE_phone, NULL},
        {"home phone 62345678 without area code, no mobile", CH_HOME_ONLY, CRM_CF_home_phone,
         "62345678", CRM_RULE_area_code, "home_phone"},
        {"office phone 6234567 without area code, no mobile", CH_HOME_ONLY, CRM_CF_office_phone,
         "6234567", CRM_RULE_area_code, "office_phone"},
        {"address absent", CH_NONE, CRM_CF_address, NULL, CRM_RULE_address, "address"},
        {"address empty", CH_NONE, CRM_CF_address, "", CRM_RULE_address, "address"},
        {"address only spaces", CH_NONE, CRM_CF_address, "   \t ", CRM_RULE_address, "address"},
        {"address only a full-width space", CH_NONE, CRM_CF_address, "\u3000", CRM_RULE_address,
         "address"},
        {"postcode 5 digits", CH_NONE, CRM_CF_postcode, "51800", CRM_RULE_postcode, "postcode"},
        {"postcode 7 digits", CH_NONE, CRM_CF_postcode, "5180000", CRM_RULE_postcode, "postcode"},
        {"postcode with a letter", CH_NONE, CRM_CF_postcode, "51800A", CRM_RULE_postcode,
         "postcode"},
        {"postcode absent", CH_NONE, CRM_CF_postcode, NULL, CRM_RULE_postcode, "postcode"},
        {"postcode only spaces", CH_NONE, CRM_CF_postcode, "  ", CRM_RULE_postcode, "postcode"},
        {"city absent", CH_NONE, CRM_CF_city, NULL, CRM_RULE_city, "city"},
        {"city a full-width space", CH_NONE, CRM_CF_city, "\u3000", CRM_RULE_city, "city"},
        {"province absent", CH_NONE, CRM_CF_province, NULL, CRM_RULE_province, "province"},
        {"sale date absent on a record with a car", CH_NO_CAR_DATE, CRM_CF_name, NULL,
         CRM_RULE_sale_date, "sale_date"},
    };
    for (size_t k = 0; k < N_ROWS(rows); k++) {
        crm_audit_input_t in = s_clean();
        switch (rows[k].change) {
        case CH_NO_PHONE: in.v[CRM_CF_mobile] = NULL; break;
        case CH_HOME_ONLY:
            in.v[CRM_CF_mobile] = NULL;
            in.v[rows[k].field] = rows[k].value;
            break;
        case CH_NO_CAR_DATE: in.veh[0].sale_date = NULL; break;
        case CH_NONE: in.v[rows[k].field] = rows[k].value; break;
        }
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(rows[k].what, &r, CRM_RULE_BIT(rows[k].rule));
        s_expect_issue(rows[k].what, &r, rows[k].rule, rows[k].issue_field, CRM_SEV_ERROR, NULL);
        /* the one failure is the record's only error, and no other rule fails */
        if (s_errors(&r) != 1 || r.fail != CRM_RULE_BIT(rows[k].rule))
            fail_msg("%s: fails %s;%s", rows[k].what, s_rules_of(r.fail), s_dump(&r));
    }
}

/* "No phone" names one of the four phones (there is no field "phone"). */
static void test_no_phone_names_a_phone_field(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_mobile] = "  ";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    const crm_issue_t *i = s_issue(&r, CRM_RULE_phone);
    assert_non_null(i);
    assert_true(crm_cf_from_name(i->field) == CRM_CF_mobile ||
                crm_cf_from_name(i->field) == CRM_CF_home_phone ||
                crm_cf_from_name(i->field) == CRM_CF_office_phone ||
                crm_cf_from_name(i->field) == CRM_CF_usual_phone);
    assert_int_equal(i->severity, CRM_SEV_ERROR);
    /* with no phone there is no landline to look at */
    assert_true(r.na & CRM_RULE_BIT(CRM_RULE_area_code));
}

/* Any one of the four phones is enough. */
static void test_any_one_phone_is_enough(void **state)
{
    (void) state;
    static const crm_cf_t phones[] = {CRM_CF_mobile, CRM_CF_home_phone, CRM_CF_office_phone,
                                      CRM_CF_usual_phone};
    for (size_t k = 0; k < N_ROWS(phones); k++) {
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_mobile] = NULL;
        in.v[phones[k]] = phones[k] == CRM_CF_mobile ? "13812345678" : "0755-86012345";
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(crm_cf_name(phones[k]), &r, 0);
    }
}

static void test_postcode_of_full_width_digits_passes(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_postcode] = "５１８０００";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    s_expect_contact("postcode ５１８０００", &r, 0);
    assert_int_equal(s_errors(&r), 0);
    /* it is read as 518000, which is Guangdong's: no mismatch either */
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_postcode_province));
}

/* A postcode of 6 digits in a reserved range is 6 digits: part one passes,
   the range is a warning beyond the seed. */
static void test_a_reserved_postcode_is_only_a_warning(void **state)
{
    (void) state;
    static const char *const codes[] = {"000123", "999077"};
    for (size_t k = 0; k < N_ROWS(codes); k++) {
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_postcode] = codes[k];
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(codes[k], &r, 0);
        s_expect_issue(codes[k], &r, CRM_RULE_postcode_range, "postcode", CRM_SEV_WARNING, NULL);
    }
}

/* "Filled" is presence, whatever the value is worth: an unknown province,
   an odd city, an out-of-plan mobile are warnings or nothing, never a part
   one failure. */
static void test_filled_is_presence_not_validity(void **state)
{
    (void) state;
    static const struct {
        crm_cf_t field;
        const char *value;
    } rows[] = {
        {CRM_CF_province, "火星"},
        {CRM_CF_province, "xx"},
        {CRM_CF_city, "?"},
        {CRM_CF_address, "x"},
        {CRM_CF_mobile, "14612345678"},
        {CRM_CF_mobile, "12345"},
        {CRM_CF_mobile, "+1 393 999 3922"},
    };
    for (size_t k = 0; k < N_ROWS(rows); k++) {
        crm_audit_input_t in = s_clean();
        in.v[rows[k].field] = rows[k].value;
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(rows[k].value, &r, 0);
        assert_int_equal(s_errors(&r), 0);
    }
    /* and the unknown province is named as a warning */
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_province] = "火星";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    s_expect_issue("province 火星", &r, CRM_RULE_province_name, "province", CRM_SEV_WARNING, NULL);
}

/* cn-data-rules.md: "Before every check, apply NFKC ... and trim." A sale
   date of blanks is no sale date. */
static void test_a_blank_sale_date_is_absent(void **state)
{
    (void) state;
    static const char *const blanks[] = {"", "   ", "\u3000"};
    int wrong = 0;
    for (size_t k = 0; k < N_ROWS(blanks); k++) {
        crm_audit_input_t in = s_clean();
        in.veh[0].sale_date = blanks[k];
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        /* DISAGREES: crm_audit.c counts a car's sale_date as given when its
           first byte is not NUL (`*in->veh[i].sale_date`), without NFKC and
           trimming, so "   " and "　" (U+3000) pass the sale_date rule. The
           documents (cn-data-rules.md, "apply NFKC and trim" before every
           check; DOMAIN.md, filled = present after normalisation) say a value
           of blanks is absent: sale_date must fail. */
        if ((r.fail & CRM_AUDIT_CONTACT_MASK) != CRM_RULE_BIT(CRM_RULE_sale_date)) {
            wrong++;
            print_error("sale_date %s: contact rules failed %s, want sale_date\n",
                        k == 0   ? "\"\""
                        : k == 1 ? "\"   \""
                                 : "U+3000",
                        s_rules_of(r.fail & CRM_AUDIT_CONTACT_MASK));
        }
    }
    if (wrong)
        fail_msg("%d blank sale date(s) counted as given", wrong);
}

/* The extended checks read their values the same way (cn-data-rules.md:
   "Before every check, apply NFKC ... and trim"): a full-width or padded
   value is the value, a value of blanks is absent. */
static void test_extended_checks_read_values_after_nfkc_and_trimming(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    crm_audit_result_t r;
    int wrong = 0; /* each disagreement is reported, not only the first */

    /* a car's plate and VIN typed full-width are the plate and the VIN */
    in.veh[0].plate = "粤Ｂ１２３４５";
    in.veh[0].vin = "ＬＦＷＡＤＲＪＦ０１１００２３４６";
    s_eval(&in, NULL, &r);
    if (r.fail)
        (wrong++, print_error("full-width car: fails %s;%s\n", s_rules_of(r.fail), s_dump(&r)));

    /* DISAGREES: a car's plate "  " or VIN "　" (U+3000) is judged as given:
       crm_audit.c checks `*in->veh[i].plate` / `*in->veh[i].vin` before NFKC
       and trimming, so "  " fails plate (code invalid) and "　" fails
       vin_check (code empty). The documents: blanks after NFKC and trim are
       no value (and a blank plate on a new car may be legitimate), so both
       rules do not apply; the record's own plate and VIN fields are already
       read that way. */
    in = s_clean();
    in.veh[0].plate = "  ";
    in.veh[0].vin = "\u3000";
    s_eval(&in, NULL, &r);
    if (r.fail & (CRM_RULE_BIT(CRM_RULE_plate) | CRM_RULE_BIT(CRM_RULE_vin_check)))
        (wrong++,
         print_error("blank car plate/VIN: fails %s;%s\n", s_rules_of(r.fail), s_dump(&r)));

    /* DISAGREES: an expected purchase date "２０２６－１１－２０" or
       " 2026-11-20 " is read as no date (expected_passed does not apply),
       because crm_day_parse gets the raw value; after NFKC and trimming it
       is 2026-11-20, before today: expected_passed fails. */
    static const char *const dates[] = {"２０２６－１１－２０", " 2026-11-20 "};
    for (size_t k = 0; k < N_ROWS(dates); k++) {
        in = s_clean();
        in.stage = "prospect";
        in.nveh = 0;
        in.expected_purchase_date = dates[k];
        s_eval(&in, NULL, &r);
        if (!(r.fail & CRM_RULE_BIT(CRM_RULE_expected_passed)))
            (wrong++, print_error("expected date \"%s\": expected_passed not failed;%s\n", dates[k],
                                  s_dump(&r)));
    }

    /* DISAGREES: grade H with a remark "Ｈ 客户..." (full-width H) or " H 客户..."
       (leading space) fails remark_grade (grade_letter): crm_grade_remark_ok
       compares the remark's first raw byte. After NFKC and trimming both
       start with H: the rule passes. */
    static const char *const remarks[] = {"Ｈ 客户本周提车", " H 客户本周提车"};
    for (size_t k = 0; k < N_ROWS(remarks); k++) {
        in = s_clean();
        in.stage = "prospect";
        in.nveh = 0;
        in.grade = "H";
        in.remark = remarks[k];
        s_eval(&in, NULL, &r);
        if (r.fail & CRM_RULE_BIT(CRM_RULE_remark_grade))
            (wrong++,
             print_error("remark \"%s\": remark_grade failed;%s\n", remarks[k], s_dump(&r)));
    }
    if (wrong)
        fail_msg("%d value(s) not read after NFKC and trimming (see above)", wrong);
}

/* ------------------------------------------------------------ 3. all together */

static void test_all_seven_fail_together(void **state)
{
    (void) state;
    crm_audit_input_t in;
    memset(&in, 0, sizeof in);
    in.v[CRM_CF_name] = "李娜";
    in.stage = "owner"; /* a sold customer's file: the sale date applies */
    in.today = s_today();
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    /* no phone at all: "phone" fails and there is no landline for area_code */
    s_expect_contact("empty record", &r,
                     CRM_AUDIT_CONTACT_MASK & ~CRM_RULE_BIT(CRM_RULE_area_code));
    assert_true(r.na & CRM_RULE_BIT(CRM_RULE_area_code));

    /* and with a landline lacking its area code, every contact bit is set */
    in.v[CRM_CF_home_phone] = "62345678";
    s_eval(&in, NULL, &r);
    s_expect_contact("empty record, bare landline", &r,
                     CRM_AUDIT_CONTACT_MASK & ~CRM_RULE_BIT(CRM_RULE_phone));
    /* phone and area_code exclude each other (no phone: no landline to
       judge), so "every contact bit" is every bit but one of them; both
       are covered above, and each is an error. */
    assert_int_equal(s_errors(&r), 6 + 1 /* e-mail missing */);
    assert_true(r.fail & CRM_AUDIT_EMAIL_MASK);

    /* a prospect with the option "every record": all seven of the seed */
    in.v[CRM_CF_home_phone] = NULL;
    in.stage = NULL;
    crm_audit_opts_t all = {.sale_date_all = true};
    s_eval(&in, &all, &r);
    s_expect_contact("empty prospect, sale_date_all", &r,
                     CRM_AUDIT_CONTACT_MASK & ~CRM_RULE_BIT(CRM_RULE_area_code));
    for (int k = 0; k < r.issues.n; k++)
        if (crm_rule_part((crm_rule_t) crm_rule_from_name(r.issues.v[k].rule)) !=
            CRM_AUDIT_EXTENDED)
            assert_int_equal(r.issues.v[k].severity, CRM_SEV_ERROR);
}

/* ------------------------------------------------------------ 4. full width */

static void test_full_width_digits_pass_part_one(void **state)
{
    (void) state;
    static const struct {
        crm_cf_t field;
        const char *value;
    } rows[] = {
        {CRM_CF_mobile, "１３８１２３４５６７８"},
        {CRM_CF_home_phone, "０５７１－８８８８８８８８"},
        {CRM_CF_office_phone, "（０２１）６２３４５６７８"},
        {CRM_CF_postcode, "５１８０００"},
    };
    for (size_t k = 0; k < N_ROWS(rows); k++) {
        crm_audit_input_t in = s_clean();
        if (rows[k].field != CRM_CF_postcode)
            in.v[CRM_CF_mobile] = NULL; /* the value alone carries the phone rules */
        in.v[rows[k].field] = rows[k].value;
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(rows[k].value, &r, 0);
        if (r.fail)
            fail_msg("%s: fails %s;%s", rows[k].value, s_rules_of(r.fail), s_dump(&r));
    }
}

/* ------------------------------------------------------------ 5. masked */

static void test_a_masked_or_placeholder_mobile_is_filled_with_a_warning(void **state)
{
    (void) state;
    static const struct {
        const char *mobile, *code;
    } rows[] = {
        {"138****5678", "masked"},
        {"138xxxx5678", "masked"},
        {"１３８＊＊＊＊５６７８", "masked"},
        {"13800000000", "placeholder"},
    };
    for (size_t k = 0; k < N_ROWS(rows); k++) {
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_mobile] = rows[k].mobile;
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(rows[k].mobile, &r, 0);
        assert_int_equal(s_errors(&r), 0);
        s_expect_issue(rows[k].mobile, &r, CRM_RULE_mobile_plan, "mobile", CRM_SEV_WARNING,
                       rows[k].code);
        /* a finding never shows the number in clear */
        const crm_issue_t *i = s_issue(&r, CRM_RULE_mobile_plan);
        assert_null(strstr(i->message, "13800000000"));
    }
}

/* ------------------------------------------------------------ 6. 7-digit local */

static void test_a_landline_with_its_area_code_passes_whatever_its_length(void **state)
{
    (void) state;
    static const struct {
        const char *phone;
        bool warned; /* a warning of the extended rules (the local length) */
    } rows[] = {
        {"021-1234567", true},                             /* Shanghai's numbers have 8 digits */
        {"010-1234567", true},                             /* Beijing's too */
        {"(020)1234567", true},                            /* Guangzhou */
        {"+86 21 1234567", true}, {"0571-1234567", false}, /* Hangzhou: 7 digits are fine */
        {"0571-88888888", false}, {"0991-1234567", false}, {"021-62345678", false},
    };
    for (size_t k = 0; k < N_ROWS(rows); k++) {
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_mobile] = NULL;
        in.v[CRM_CF_home_phone] = rows[k].phone;
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(rows[k].phone, &r, 0);
        assert_int_equal(s_errors(&r), 0);
        if (rows[k].warned) {
            const crm_issue_t *i = NULL;
            for (int n = 0; n < r.issues.n && !i; n++)
                if (r.issues.v[n].severity == CRM_SEV_WARNING &&
                    !strcmp(r.issues.v[n].field, "home_phone"))
                    i = &r.issues.v[n];
            if (!i)
                fail_msg("%s: no warning on home_phone;%s", rows[k].phone, s_dump(&r));
            assert_int_equal(crm_rule_part((crm_rule_t) crm_rule_from_name(i->rule)),
                             CRM_AUDIT_EXTENDED);
            /* and it says what is wrong: the length, the area code being there */
            if (strcmp(i->code, "bad_length"))
                fail_msg("%s: warning %s/%s, want the local number's length (bad_length)",
                         rows[k].phone, i->rule, i->code);
            /* the number is not in clear in the message */
            assert_null(strstr(i->message, "1234567"));
        } else if (r.issues.n) {
            fail_msg("%s: want no issue;%s", rows[k].phone, s_dump(&r));
        }
    }
}

static void test_a_bare_local_number_is_an_area_code_error(void **state)
{
    (void) state;
    static const char *const bare[] = {"1234567", "62345678", "６２３４５６７８", "8888-8888"};
    for (size_t k = 0; k < N_ROWS(bare); k++) {
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_mobile] = NULL;
        in.v[CRM_CF_usual_phone] = bare[k];
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(bare[k], &r, CRM_RULE_BIT(CRM_RULE_area_code));
        s_expect_issue(bare[k], &r, CRM_RULE_area_code, "usual_phone", CRM_SEV_ERROR, NULL);
    }
    /* a mobile beside it does not excuse the landline */
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_office_phone] = "1234567";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    s_expect_contact("mobile and bare 1234567", &r, CRM_RULE_BIT(CRM_RULE_area_code));
}

/* ------------------------------------------------------------ 7. e-mail */

static void test_email_errors_are_part_two_only(void **state)
{
    (void) state;
    static const char *const bad[] = {NULL, "", " ", "无", "null", "abc@", "abc", "a@b", "@qq.com"};
    for (size_t k = 0; k < N_ROWS(bad); k++) {
        const char *what = bad[k] ? bad[k] : "(absent)";
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_email] = bad[k];
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(what, &r, 0);
        if ((r.fail & CRM_AUDIT_EMAIL_MASK) != CRM_AUDIT_EMAIL_MASK)
            fail_msg("e-mail %s: no email error;%s", what, s_dump(&r));
        s_expect_issue(what, &r, CRM_RULE_email, "email", CRM_SEV_ERROR, NULL);
        assert_int_equal(crm_rule_part(CRM_RULE_email), CRM_AUDIT_EMAIL);
    }
}

static void test_an_email_typo_is_a_warning_not_an_error(void **state)
{
    (void) state;
    static const char *const typos[] = {"a@qq.cm", "a@qq.con", "a@163.cm", "a@gmial.com",
                                        "ａ＠ｑｑ。ｃｍ"};
    for (size_t k = 0; k < N_ROWS(typos); k++) {
        crm_audit_input_t in = s_clean();
        in.v[CRM_CF_email] = typos[k];
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(typos[k], &r, 0);
        assert_int_equal(r.fail & CRM_AUDIT_EMAIL_MASK, 0);
        assert_int_equal(s_errors(&r), 0);
        s_expect_issue(typos[k], &r, CRM_RULE_email_typo, "email", CRM_SEV_WARNING, NULL);
    }
    /* full-width ＠ and 。 are an address like any other */
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_email] = "ｚｈａｎｇ＠qq。com";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    assert_int_equal(r.fail, 0);
}

/* ------------------------------------------------------------ 8. extended */

typedef enum { X_FIELD, X_VEH_VIN, X_VEH_PLATE, X_REMARK, X_EXPECTED, X_ID_BIRTHDAY } s_xchange_t;

static void test_each_extended_rule_is_a_warning(void **state)
{
    (void) state;
    static const struct {
        const char *what;
        s_xchange_t change;
        crm_cf_t field;
        const char *value;
        crm_rule_t rule;
        const char *code; /* NULL: any */
    } rows[] = {
        {"ID with a wrong check character", X_FIELD, CRM_CF_id_number, "110105194912310021",
         CRM_RULE_id_check, "bad_check"},
        {"ID whose birth date is not the birthday", X_ID_BIRTHDAY, CRM_CF_birthday, "1980-05-05",
         CRM_RULE_id_birthday, NULL},
        {"VIN with a wrong check digit", X_VEH_VIN, CRM_CF_vin, VIN_BAD_CHECK, CRM_RULE_vin_check,
         "bad_check"},
        {"record VIN with a wrong check digit", X_FIELD, CRM_CF_vin, VIN_BAD_CHECK,
         CRM_RULE_vin_check, "bad_check"},
        {"plate 粤B1234 (too short)", X_VEH_PLATE, CRM_CF_plate, "粤B1234", CRM_RULE_plate, NULL},
        {"record plate 粤B1234", X_FIELD, CRM_CF_plate, "粤B1234", CRM_RULE_plate, NULL},
        {"grade H, remark B ...", X_REMARK, CRM_CF_name, "B 客户说下月再来", CRM_RULE_remark_grade,
         NULL},
        {"expected purchase date passed", X_EXPECTED, CRM_CF_name, "2026-11-20",
         CRM_RULE_expected_passed, "passed"},
        {"birthday 1900-01-01", X_FIELD, CRM_CF_birthday, "1900-01-01", CRM_RULE_birthday,
         "unknown"},
        {"birthday 1990-02-30", X_FIELD, CRM_CF_birthday, "1990-02-30", CRM_RULE_birthday, NULL},
        {"mobile out of plan", X_FIELD, CRM_CF_mobile, "14612345678", CRM_RULE_mobile_plan,
         "not_in_numbering_plan"},
        {"postcode of another province", X_FIELD, CRM_CF_postcode, "310000",
         CRM_RULE_postcode_province, NULL},
    };
    for (size_t k = 0; k < N_ROWS(rows); k++) {
        crm_audit_input_t in = s_clean();
        switch (rows[k].change) {
        case X_FIELD: in.v[rows[k].field] = rows[k].value; break;
        case X_ID_BIRTHDAY:
            in.v[CRM_CF_id_number] = ID_OK;
            in.v[CRM_CF_birthday] = rows[k].value;
            break;
        case X_VEH_VIN: in.veh[0].vin = rows[k].value; break;
        case X_VEH_PLATE: in.veh[0].plate = rows[k].value; break;
        case X_REMARK:
            in.stage = "prospect";
            in.nveh = 0;
            in.grade = "H";
            in.remark = rows[k].value;
            break;
        case X_EXPECTED:
            in.stage = "prospect";
            in.nveh = 0;
            in.expected_purchase_date = rows[k].value;
            break;
        }
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        s_expect_contact(rows[k].what, &r, 0);
        assert_int_equal(r.fail & CRM_AUDIT_EMAIL_MASK, 0);
        assert_int_equal(s_errors(&r), 0);
        s_expect_issue(rows[k].what, &r, rows[k].rule, NULL, CRM_SEV_WARNING, rows[k].code);
        assert_int_equal(crm_rule_part(rows[k].rule), CRM_AUDIT_EXTENDED);
        if (r.fail != CRM_RULE_BIT(rows[k].rule))
            fail_msg("%s: fails %s;%s", rows[k].what, s_rules_of(r.fail), s_dump(&r));
    }
}

/* The same records, right, raise nothing: each row above fails for its one
   change and not for the fields it sets. */
static void test_the_extended_values_done_right_pass(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_id_number] = ID_OK;
    in.v[CRM_CF_birthday] = "1949-12-31";
    in.v[CRM_CF_gender] = "female";
    in.v[CRM_CF_vin] = "1M8GDM9AXKP042788";
    in.v[CRM_CF_plate] = "粤B12345";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    if (r.fail)
        fail_msg("fails %s;%s", s_rules_of(r.fail), s_dump(&r));

    in = s_clean();
    in.stage = "prospect";
    in.nveh = 0;
    in.grade = "B";
    in.remark = "B 客户说下月再来";
    in.expected_purchase_date = "2026-12-20"; /* 19 days ahead: B (30) */
    s_eval(&in, NULL, &r);
    if (r.fail)
        fail_msg("prospect fails %s;%s", s_rules_of(r.fail), s_dump(&r));
    assert_true(r.na & CRM_RULE_BIT(CRM_RULE_sale_date));

    /* the legacy 15-digit form of the same ID number is right too */
    in = s_clean();
    in.v[CRM_CF_id_number] = "110105491231002";
    in.v[CRM_CF_birthday] = "1949-12-31";
    s_eval(&in, NULL, &r);
    if (r.fail)
        fail_msg("15-digit ID fails %s;%s", s_rules_of(r.fail), s_dump(&r));
}

/* ------------------------------------------------------------ 9. not run */

static void test_not_run_is_never_passing(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    in.nveh = 0; /* the cars could not be read, so none is known */
    in.vehicles_unread = true;
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    assert_true(r.not_run & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.na & CRM_RULE_BIT(CRM_RULE_sale_date));
    /* the caller can tell: part one is not "passed", it is not complete */
    uint64_t passed = CRM_AUDIT_CONTACT_MASK & ~(r.fail | r.not_run | r.na);
    assert_int_equal(passed, CRM_AUDIT_CONTACT_MASK & ~CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_null(s_issue(&r, CRM_RULE_sale_date));
    /* the rules on the cars are not run either */
    assert_true(r.not_run & CRM_RULE_BIT(CRM_RULE_vin_check));
    assert_true(r.not_run & CRM_RULE_BIT(CRM_RULE_plate));

    /* the same with a car that was read before: still not run */
    in = s_clean();
    in.veh[0].sale_date = NULL;
    in.vehicles_unread = true;
    s_eval(&in, NULL, &r);
    assert_true(r.not_run & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_sale_date));

    /* the dates' rules without today are not run */
    in = s_clean();
    in.stage = "prospect";
    in.nveh = 0;
    in.expected_purchase_date = "2026-11-20";
    in.today = 0;
    s_eval(&in, NULL, &r);
    assert_true(r.not_run & CRM_RULE_BIT(CRM_RULE_expected_passed));
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_expected_passed));
}

static void test_sale_date_of_a_prospect_does_not_apply_unless_configured(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    in.stage = "prospect";
    in.nveh = 0;
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    assert_true(r.na & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.not_run & CRM_RULE_BIT(CRM_RULE_sale_date));
    s_expect_contact("prospect", &r, 0);

    crm_audit_opts_t defaults = {0};
    s_eval(&in, &defaults, &r);
    assert_true(r.na & CRM_RULE_BIT(CRM_RULE_sale_date));

    crm_audit_opts_t all = {.sale_date_all = true};
    s_eval(&in, &all, &r);
    s_expect_contact("prospect, sale_date_all", &r, CRM_RULE_BIT(CRM_RULE_sale_date));
    s_expect_issue("prospect, sale_date_all", &r, CRM_RULE_sale_date, "sale_date", CRM_SEV_ERROR,
                   NULL);
    assert_false(r.na & CRM_RULE_BIT(CRM_RULE_sale_date));

    /* a customer with an order but no car yet: the rule applies */
    in.stage = "customer";
    s_eval(&in, NULL, &r);
    s_expect_contact("customer without car", &r, CRM_RULE_BIT(CRM_RULE_sale_date));
}

/* ------------------------------------------------------------ 10. hostile */

static void test_hostile_values_never_crash_and_are_judged(void **state)
{
    (void) state;
    size_t big_n = 70 * 1024;
    char *big = malloc(big_n + 1);
    assert_non_null(big);
    memset(big, '8', big_n);
    big[big_n] = 0;
    char *bigzh = malloc(big_n + 1); /* 70 KB of 深 (3 bytes each) */
    assert_non_null(bigzh);
    for (size_t i = 0; i + 3 <= big_n; i += 3)
        memcpy(bigzh + i, "深", 3);
    bigzh[big_n - big_n % 3] = 0;
    const char *const hostile[] = {
        big,
        bigzh,
        "\xff\xfe\xfd", /* not UTF-8 */
        "\xe6\xb7",     /* a truncated character */
        "\xc0\xaf",     /* overlong '/' */
        "138\x01"
        "1234\x7f"
        "5678",                /* control characters inside */
        "\x1b[31m13812345678", /* an escape sequence */
        "广东\r\n省",
        "\xed\xa0\x80", /* a surrogate */
    };
    for (size_t h = 0; h < N_ROWS(hostile); h++) {
        for (int f = 0; f < CRM_CF_COUNT; f++) {
            crm_audit_input_t in = s_clean();
            in.v[f] = hostile[h];
            crm_audit_result_t r;
            s_eval(&in, NULL, &r);
            /* the value is present: the field's presence rule passes */
            if (f == CRM_CF_mobile && (r.fail & CRM_RULE_BIT(CRM_RULE_phone)))
                fail_msg("hostile %zu in mobile: phone not filled", h);
            if (f == CRM_CF_address && (r.fail & CRM_RULE_BIT(CRM_RULE_address)))
                fail_msg("hostile %zu in address: not filled", h);
            if (f == CRM_CF_city && (r.fail & CRM_RULE_BIT(CRM_RULE_city)))
                fail_msg("hostile %zu in city: not filled", h);
            if (f == CRM_CF_province && (r.fail & CRM_RULE_BIT(CRM_RULE_province)))
                fail_msg("hostile %zu in province: not filled", h);
            /* an unreadable postcode is not 6 digits */
            if (f == CRM_CF_postcode && !(r.fail & CRM_RULE_BIT(CRM_RULE_postcode)))
                fail_msg("hostile %zu in postcode: passed", h);
            if (f == CRM_CF_email && !(r.fail & CRM_AUDIT_EMAIL_MASK))
                fail_msg("hostile %zu in email: passed", h);
            for (int i = 0; i < r.issues.n; i++) {
                assert_true(memchr(r.issues.v[i].message, 0, sizeof r.issues.v[i].message) != NULL);
                assert_true(memchr(r.issues.v[i].field, 0, sizeof r.issues.v[i].field) != NULL);
            }
        }
        /* the cars' values and the prospect's too */
        crm_audit_input_t in = s_clean();
        in.veh[0].vin = hostile[h];
        in.veh[0].plate = hostile[h];
        in.veh[0].sale_date = hostile[h];
        crm_audit_result_t r;
        s_eval(&in, NULL, &r);
        assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_sale_date)); /* present */
        assert_true(r.fail & CRM_RULE_BIT(CRM_RULE_vin_check));
        assert_true(r.fail & CRM_RULE_BIT(CRM_RULE_plate));
        in = s_clean();
        in.stage = hostile[h];
        in.grade = hostile[h];
        in.remark = hostile[h];
        in.expected_purchase_date = hostile[h];
        s_eval(&in, NULL, &r);
    }
    /* an unreadable phone is still a phone: the only phone, and it is filled */
    crm_audit_input_t in = s_clean();
    in.v[CRM_CF_mobile] = NULL;
    in.v[CRM_CF_home_phone] = "\xff\xfe";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_phone));
    /* more cars than the input holds are not read past its end */
    in = s_clean();
    in.nveh = 1000;
    for (size_t i = 0; i < CRM_AUDIT_VEHICLES_MAX; i++)
        in.veh[i].sale_date = "2026-01-01";
    s_eval(&in, NULL, &r);
    free(big);
    free(bigzh);
}

/* ------------------------------------------------------------ masks */

/* The record's own sale date (a file without a car's VIN) fills part one's
   rule, and is never read as the prospect's expected purchase date. */
static void test_the_records_own_sale_date_fills_the_rule_and_nothing_else(void **state)
{
    (void) state;
    crm_audit_input_t in = s_clean();
    in.nveh = 0;
    in.sale_date = "2025-03-01";
    in.stage = "prospect";
    in.grade = "C";
    in.remark = "C 明年再说";
    in.expected_purchase_date = "2027-06-20";
    crm_audit_result_t r;
    s_eval(&in, NULL, &r);
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.na & CRM_RULE_BIT(CRM_RULE_sale_date));
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_expected_passed));
    assert_false(r.fail & CRM_RULE_BIT(CRM_RULE_grade_date));
    in.sale_date = "  ";
    s_eval(&in, NULL, &r);
    assert_true(r.na & CRM_RULE_BIT(CRM_RULE_sale_date)); /* a prospect without one */
}

static void test_mask_parse_reads_names_and_parts(void **state)
{
    (void) state;
    uint64_t mask = 0;
    char bad[64] = "";
    assert_int_equal(crm_audit_mask_parse("contact,email_typo", &mask, bad, sizeof bad), 0);
    assert_true(mask == (CRM_AUDIT_CONTACT_MASK | CRM_RULE_BIT(CRM_RULE_email_typo)));
    /* part one is the seven rules of the seed, no more */
    assert_int_equal(__builtin_popcountll(CRM_AUDIT_CONTACT_MASK), 7);
    assert_true(CRM_AUDIT_CONTACT_MASK ==
                (CRM_RULE_BIT(CRM_RULE_phone) | CRM_RULE_BIT(CRM_RULE_area_code) |
                 CRM_RULE_BIT(CRM_RULE_address) | CRM_RULE_BIT(CRM_RULE_postcode) |
                 CRM_RULE_BIT(CRM_RULE_city) | CRM_RULE_BIT(CRM_RULE_province) |
                 CRM_RULE_BIT(CRM_RULE_sale_date)));
    assert_false(CRM_AUDIT_CONTACT_MASK & CRM_AUDIT_EMAIL_MASK);

    assert_int_equal(crm_audit_mask_parse("email", &mask, bad, sizeof bad), 0);
    assert_true(mask == CRM_AUDIT_EMAIL_MASK);
    assert_int_equal(crm_audit_mask_parse("postcode,city", &mask, NULL, 0), 0);
    assert_true(mask == (CRM_RULE_BIT(CRM_RULE_postcode) | CRM_RULE_BIT(CRM_RULE_city)));

    assert_int_equal(crm_audit_mask_parse("nope", &mask, bad, sizeof bad), -1);
    assert_string_equal(bad, "nope");
    assert_int_equal(crm_audit_mask_parse("contact,nope", &mask, bad, sizeof bad), -1);
    assert_string_equal(bad, "nope");
    assert_int_equal(crm_audit_mask_parse("contact,", &mask, bad, sizeof bad), -1);
    assert_int_equal(crm_audit_mask_parse("contact,,city", &mask, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_clean_record_passes_every_rule),
        cmocka_unit_test(test_each_contact_rule_fails_alone),
        cmocka_unit_test(test_no_phone_names_a_phone_field),
        cmocka_unit_test(test_any_one_phone_is_enough),
        cmocka_unit_test(test_postcode_of_full_width_digits_passes),
        cmocka_unit_test(test_a_reserved_postcode_is_only_a_warning),
        cmocka_unit_test(test_filled_is_presence_not_validity),
        cmocka_unit_test(test_a_blank_sale_date_is_absent),
        cmocka_unit_test(test_extended_checks_read_values_after_nfkc_and_trimming),
        cmocka_unit_test(test_all_seven_fail_together),
        cmocka_unit_test(test_full_width_digits_pass_part_one),
        cmocka_unit_test(test_a_masked_or_placeholder_mobile_is_filled_with_a_warning),
        cmocka_unit_test(test_a_landline_with_its_area_code_passes_whatever_its_length),
        cmocka_unit_test(test_a_bare_local_number_is_an_area_code_error),
        cmocka_unit_test(test_email_errors_are_part_two_only),
        cmocka_unit_test(test_an_email_typo_is_a_warning_not_an_error),
        cmocka_unit_test(test_each_extended_rule_is_a_warning),
        cmocka_unit_test(test_the_extended_values_done_right_pass),
        cmocka_unit_test(test_not_run_is_never_passing),
        cmocka_unit_test(test_sale_date_of_a_prospect_does_not_apply_unless_configured),
        cmocka_unit_test(test_hostile_values_never_crash_and_are_judged),
        cmocka_unit_test(test_the_records_own_sale_date_fills_the_rule_and_nothing_else),
        cmocka_unit_test(test_mask_parse_reads_names_and_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
