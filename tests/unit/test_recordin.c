/*  Unit tests for common/crm_leadin's dealer-record reader: customer files,
    service work orders and follow-ups from CSV (crmctl customer|service|
    followup import, crm-dealer import).
    Samples live in tests/data/records/: the *.gbk.* files were made from
    the *.utf8.* ones with `iconv -f UTF-8 -t GBK` (the service file uses
    the full-width ￥, which GBK has; ¥ U+00A5 it has not);
    customers_en_reversed.csv is the seed-003 file with the English proto
    names and the columns in reverse order. Times were computed with
    `date -u -d '2026-11-20T10:30:00+08:00' +%s`. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crm_leadin.h"

#ifndef CRM_SOURCE_DIR
#define CRM_SOURCE_DIR "/work/main"
#endif
#define DATA CRM_SOURCE_DIR "/tests/data/records/"

#define NOW_MS 1795000000000LL /* 2026-11-18 */

static void check_str(const char *what, const char *got, const char *want)
{
    if (!got || strcmp(got, want))
        fail_msg("%s: got \"%s\", want \"%s\"", what, got ? got : "(absent)", want);
}

static void check_contains(const char *what, const char *got, const char *needle)
{
    if (!got || !strstr(got, needle))
        fail_msg("%s: \"%s\" does not contain \"%s\"", what, got ? got : "(null)", needle);
}

static crm_csv_reader_t *open_or_fail(const char *path, crm_type_t type, const char *enc)
{
    char err[320];
    crm_csv_reader_t *r = crm_csv_open_records(path, type, enc, err, sizeof err);
    if (!r)
        fail_msg("%s: %s", path, err);
    return r;
}

/* Reads the next row, which must be readable. */
static void next_ok(crm_csv_reader_t *r, crm_msg_t *m, long want_row)
{
    char err[320];
    long row = 0;
    int rc = crm_csv_next(r, NOW_MS, m, &row, err, sizeof err);
    if (rc != 1)
        fail_msg("row %ld: rc %d: %s", want_row, rc, err);
    assert_int_equal(row, want_row);
}

static void next_bad(crm_csv_reader_t *r, long want_row, const char *want_err)
{
    char err[320];
    long row = 0;
    crm_msg_t m;
    assert_int_equal(crm_csv_next(r, NOW_MS, &m, &row, err, sizeof err), -1);
    assert_int_equal(row, want_row);
    check_contains("error", err, want_err);
    crm_msg_clear(&m);
}

static void next_end(crm_csv_reader_t *r)
{
    char err[320];
    crm_msg_t m;
    assert_int_equal(crm_csv_next(r, NOW_MS, &m, NULL, err, sizeof err), 0);
    crm_msg_clear(&m);
}

/* The seed-003 customer file, whatever its encoding or column order. */
static void check_seed003(crm_csv_reader_t *r, char ids[4][CRM_LEADIN_KEY_SZ])
{
    crm_msg_t m;
    next_ok(r, &m, 1);
    assert_int_equal(m.type, CRM_T_customer_file);
    const crm_body_customer_file_t *c = &m.body.customer_file;
    check_str("name", c->name, "王建国");
    check_str("gender", c->gender, "male");
    check_str("birthday", c->birthday, "1980-03-05");
    check_str("id_number", c->id_number, "110101198003051238");
    check_str("address", c->address, "北京市朝阳区建国路88号");
    check_str("postcode", c->postcode, "100022");
    check_str("city", c->city, "北京");
    check_str("province", c->province, "北京市");
    check_str("mobile", c->mobile, "138 1234 5678"); /* normalised by the service */
    check_str("home_phone", c->home_phone, "010-65001234");
    assert_false(c->has.office_phone);
    check_str("usual_phone", c->usual_phone, "13812345678");
    check_str("email", c->email, "wjg@example.com");
    check_str("remark", c->remark, "老客户");
    check_str("model", c->model, "凯越 1.6L");
    check_str("vin", c->vin, "LSGJA52H0EH123456");
    check_str("engine_number", c->engine_number, "E1234567");
    check_str("transmission", c->transmission, "manual");
    check_str("colour", c->colour, "银色");
    check_str("plate", c->plate, "京A12345");
    check_str("plate_date", c->plate_date, "2024-05-20");
    check_str("sale_date", c->sale_date, "2024-05-18");
    check_str("first_service_date", c->first_service_date, "2024-08-20");
    assert_true(c->has.first_service_mileage);
    assert_int_equal(c->first_service_mileage, 5000);
    assert_true(c->has.fleet);
    assert_false(c->fleet);
    assert_true(c->has.vip);
    assert_true(c->vip);
    assert_false(c->has.dealer_id);
    assert_non_null(c->record_id);
    assert_int_equal(strncmp(c->record_id, "csv:", 4), 0);
    assert_int_equal(strlen(c->record_id), 4 + 64);
    snprintf(ids[0], CRM_LEADIN_KEY_SZ, "%s", c->record_id);
    crm_msg_clear(&m);

    /* Data-quality problems are the service's: a 5-digit postcode, an
       e-mail without a domain, no phone at home, no first service. */
    next_ok(r, &m, 2);
    check_str("name", c->name, "李秀英");
    check_str("gender", c->gender, "female");
    check_str("postcode", c->postcode, "20003");
    check_str("email", c->email, "lixiuying@example");
    check_str("transmission", c->transmission, "automatic");
    check_str("sale_date", c->sale_date, "2025-01-08");
    assert_false(c->has.first_service_date);
    assert_false(c->has.first_service_mileage);
    assert_false(c->has.fleet);
    snprintf(ids[1], CRM_LEADIN_KEY_SZ, "%s", c->record_id);
    crm_msg_clear(&m);

    /* A mileage in words cannot be read: the row's error names it (an
       impossible birthday in the same row would be sent as written, for the
       service to store with a finding). */
    next_bad(r, 3, "expected a mileage in km");
    size_t n = 0;
    const char *const *cells = crm_csv_row_fields(r, &n);
    assert_int_equal(n, 26);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= !strcmp(cells[i], "张伟");
    assert_true(found);

    /* Neither a name nor an ID number: read and sent; the service refuses
       it (name required), not the reader. */
    next_ok(r, &m, 4);
    assert_false(c->has.name);
    assert_false(c->has.id_number);
    check_str("address", c->address, "成都市武侯区人民南路4段");
    snprintf(ids[2], CRM_LEADIN_KEY_SZ, "%s", c->record_id);
    crm_msg_clear(&m);

    next_ok(r, &m, 5);
    check_str("birthday", c->birthday, "1975-12-12");
    check_str("transmission", c->transmission, "automatic"); /* 双离合 */
    assert_false(c->has.sale_date);
    check_str("first_service_date", c->first_service_date, "2022-10-01");
    assert_int_equal(c->first_service_mileage, 12000);
    assert_true(c->has.fleet);
    assert_true(c->fleet);
    assert_false(c->has.vip);
    snprintf(ids[3], CRM_LEADIN_KEY_SZ, "%s", c->record_id);
    crm_msg_clear(&m);
    next_end(r);
}

static void test_seed003_customer_file_in_gbk(void **state)
{
    (void) state;
    char ids[4][CRM_LEADIN_KEY_SZ];
    crm_csv_reader_t *r = open_or_fail(DATA "customers_seed003.gbk.csv", CRM_T_customer_file, NULL);
    check_str("encoding", crm_csv_encoding(r), "GB18030");
    assert_null(crm_csv_unknown_columns(r)[0]);
    check_str("header", crm_csv_header(r)[0], "姓名");
    check_seed003(r, ids);
    crm_csv_close(&r);
    assert_null(r);
}

static void test_the_same_rows_get_the_same_ids_in_any_encoding_or_column_order(void **state)
{
    (void) state;
    char gbk[4][CRM_LEADIN_KEY_SZ], utf8[4][CRM_LEADIN_KEY_SZ], en[4][CRM_LEADIN_KEY_SZ];
    crm_csv_reader_t *r = open_or_fail(DATA "customers_seed003.gbk.csv", CRM_T_customer_file, "gbk");
    check_seed003(r, gbk);
    crm_csv_close(&r);
    r = open_or_fail(DATA "customers_seed003.utf8.csv", CRM_T_customer_file, NULL);
    check_str("encoding", crm_csv_encoding(r), "UTF-8");
    check_seed003(r, utf8);
    crm_csv_close(&r);
    r = open_or_fail(DATA "customers_en_reversed.csv", CRM_T_customer_file, NULL);
    assert_null(crm_csv_unknown_columns(r)[0]);
    check_seed003(r, en);
    crm_csv_close(&r);
    for (int i = 0; i < 4; i++) {
        check_str("utf-8 id", utf8[i], gbk[i]);
        check_str("english id", en[i], gbk[i]);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(gbk[i], gbk[k]);
    }
}

/* Every field of each record type, by its proto name, is a column (but
   dealer_id, which the caller sets). */
#define NAME_OF(msg, field, type, req, doc) #field,
static void check_every_field_is_a_column(crm_type_t type, const char *const *fields)
{
    char header[2048] = "", err[320];
    size_t nfields = 0;
    for (const char *const *f = fields; *f; f++) {
        if (!strcmp(*f, "dealer_id"))
            continue;
        strcat(header, nfields++ ? "," : "");
        strcat(header, *f);
    }
    strcat(header, ",dealer_id\n");
    crm_csv_reader_t *r = crm_csv_open_records_mem(header, strlen(header), type, NULL, err,
                                                   sizeof err);
    if (!r)
        fail_msg("%s: %s", crm_type_name(type), err);
    const char *const *unknown = crm_csv_unknown_columns(r);
    check_str("the one unknown column", unknown[0], "dealer_id");
    assert_null(unknown[1]);
    crm_csv_close(&r);
}

static void test_every_proto_field_name_is_a_column(void **state)
{
    (void) state;
    static const char *const cf[] = {CRM_FIELDS_customer_file(NAME_OF) NULL};
    static const char *const sr[] = {CRM_FIELDS_service_record(NAME_OF) NULL};
    static const char *const fr[] = {CRM_FIELDS_followup_record(NAME_OF) NULL};
    check_every_field_is_a_column(CRM_T_customer_file, cf);
    check_every_field_is_a_column(CRM_T_service_record, sr);
    check_every_field_is_a_column(CRM_T_followup_record, fr);
}

static void test_dates_in_every_common_shape(void **state)
{
    (void) state;
    static const struct {
        const char *in, *out;
    } good[] = {
        {"2026-12-05", "2026-12-05"},   {"2026/12/5", "2026-12-05"},  {"2026/1/5", "2026-01-05"},
        {"2026.1.5", "2026-01-05"},     {"20261205", "2026-12-05"},   {"2026年12月5日", "2026-12-05"},
        {"2026年1月5", "2026-01-05"},   {"2024-02-29", "2024-02-29"}, {"2026/3/5 0:00", "2026-03-05"},
        {"2026-03-05 00:00:00", "2026-03-05"}, {" 2026-03-05 ", "2026-03-05"},
        {"1900-01-01", "1900-01-01"},
    };
    static const char *const bad[] = {
        "",           "2026-02-29", "2026-13-01", "2026-00-10", "2026/12/32", "2026-12/05",
        "26-12-05",   "2026-1205",  "202612051",  "12/05/2026", "2026-12-05x", "2026-12-05 25:00",
        "2026年12-05", "abc",       "2026-12-05 10", "2026..12.5",
    };
    char out[16];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (crm_leadin_parse_date(good[i].in, out, sizeof out) != 0)
            fail_msg("\"%s\" refused", good[i].in);
        check_str(good[i].in, out, good[i].out);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (crm_leadin_parse_date(bad[i], out, sizeof out) == 0)
            fail_msg("\"%s\" read as %s", bad[i], out);
        assert_string_equal(out, "");
    }
    assert_int_equal(crm_leadin_parse_date("2026-12-05", out, 10), -1); /* no room */
    assert_int_equal(crm_leadin_parse_date(NULL, out, sizeof out), -1);
}

static void test_money_and_mileage(void **state)
{
    (void) state;
    static const struct {
        const char *in;
        int64_t fen;
    } money[] = {
        {"350.50", 35050}, {"350.5", 35050},      {"¥1,200", 120000},     {"￥1,200.05", 120005},
        {"1200元", 120000}, {"RMB 99", 9900},      {"0", 0},               {"-20", -2000},
        {"¥-20.1", -2010}, {"1,234,567.89", 123456789}, {" 88 ", 8800},
    };
    static const char *const bad_money[] = {"", "abc", "1.234", "12,00", "1,2345", ",100", "1.",
                                            "¥", "100 dollars", "1e3", "1234567890123456"};
    for (size_t i = 0; i < sizeof money / sizeof money[0]; i++) {
        int64_t fen = -1;
        if (crm_leadin_parse_fen(money[i].in, &fen) != 0)
            fail_msg("\"%s\" refused", money[i].in);
        if (fen != money[i].fen)
            fail_msg("\"%s\": %lld fen, want %lld", money[i].in, (long long) fen, (long long) money[i].fen);
    }
    for (size_t i = 0; i < sizeof bad_money / sizeof bad_money[0]; i++) {
        int64_t fen;
        if (crm_leadin_parse_fen(bad_money[i], &fen) == 0)
            fail_msg("\"%s\" read as %lld fen", bad_money[i], (long long) fen);
    }
    static const struct {
        const char *in;
        int64_t km;
    } miles[] = {{"12,000", 12000}, {"12000km", 12000}, {"12000 KM", 12000}, {"12000公里", 12000},
                 {"12000.0", 12000}, {"12000.6", 12001}, {"0", 0},           {"5,000km", 5000}};
    static const char *const bad_miles[] = {"", "-5", "12,00", "twelve", "12000 miles", "km"};
    for (size_t i = 0; i < sizeof miles / sizeof miles[0]; i++) {
        int64_t km = -1;
        if (crm_leadin_parse_km(miles[i].in, &km) != 0)
            fail_msg("\"%s\" refused", miles[i].in);
        if (km != miles[i].km)
            fail_msg("\"%s\": %lld km, want %lld", miles[i].in, (long long) km, (long long) miles[i].km);
    }
    for (size_t i = 0; i < sizeof bad_miles / sizeof bad_miles[0]; i++) {
        int64_t km;
        if (crm_leadin_parse_km(bad_miles[i], &km) == 0)
            fail_msg("\"%s\" read as %lld km", bad_miles[i], (long long) km);
    }
}

static void check_services(crm_csv_reader_t *r)
{
    crm_msg_t m;
    const crm_body_service_record_t *s = &m.body.service_record;
    next_ok(r, &m, 1);
    assert_int_equal(m.type, CRM_T_service_record);
    check_str("work_order", s->work_order, "WO-2025-0001");
    assert_false(s->has.customer_id);
    check_str("vin", s->vin, "LSGJA52H0EH123456");
    check_str("date", s->date, "2025-03-01");
    assert_int_equal(s->mileage, 12000);
    check_str("work", s->work, "更换机油机滤");
    assert_true(s->has.amount_fen);
    assert_int_equal(s->amount_fen, 35050);
    assert_int_equal(strncmp(s->record_id, "csv:", 4), 0);
    crm_msg_clear(&m);
    next_ok(r, &m, 2);
    check_str("customer_id", s->customer_id, "C1");
    assert_int_equal(s->amount_fen, 120000);
    assert_int_equal(s->mileage, 8000);
    crm_msg_clear(&m);
    next_bad(r, 3, "row 3, column 7 (金额): expected an amount in yuan");
    next_end(r);
}

static void test_service_work_orders(void **state)
{
    (void) state;
    crm_csv_reader_t *r = open_or_fail(DATA "services.utf8.csv", CRM_T_service_record, NULL);
    check_services(r);
    crm_csv_close(&r);
    r = open_or_fail(DATA "services.gbk.csv", CRM_T_service_record, NULL);
    check_str("encoding", crm_csv_encoding(r), "GB18030");
    check_services(r);
    crm_csv_close(&r);

    /* amount_fen by its proto name is in fen, an integer */
    char err[320];
    static const char fen[] = "work_order,date,amount_fen\nW1,2025-01-01,35050\nW2,2025-01-01,3.5\n";
    r = crm_csv_open_records_mem(fen, sizeof fen - 1, CRM_T_service_record, NULL, err, sizeof err);
    assert_non_null(r);
    crm_msg_t m;
    next_ok(r, &m, 1);
    assert_int_equal(m.body.service_record.amount_fen, 35050);
    crm_msg_clear(&m);
    next_bad(r, 2, "row 2, column 3 (amount_fen)");
    crm_csv_close(&r);
    /* ... and a file cannot give both */
    static const char both[] = "工单号,金额,amount_fen\nW1,1,100\n";
    assert_null(crm_csv_open_records_mem(both, sizeof both - 1, CRM_T_service_record, NULL, err,
                                         sizeof err));
    check_contains("error", err, "both mean amount_fen");
}

static void check_followups(crm_csv_reader_t *r)
{
    crm_msg_t m;
    const crm_body_followup_record_t *f = &m.body.followup_record;
    next_ok(r, &m, 1);
    assert_int_equal(m.type, CRM_T_followup_record);
    check_str("customer_id", f->customer_id, "C1");
    check_str("consultant_id", f->consultant_id, "S001");
    assert_true(f->has.at);
    assert_int_equal(f->at, 1795141800000LL);
    check_str("result", f->result, "answered");
    check_str("content", f->content, "介绍新款昂科威");
    check_str("feedback", f->feedback, "价格偏高");
    check_str("grade", f->grade, "A");
    check_str("expected_purchase_date", f->expected_purchase_date, "2026-12-31");
    assert_int_equal(f->next_at, 1795744800000LL);
    check_str("next_content", f->next_content, "邀约试驾");
    crm_msg_clear(&m);
    next_ok(r, &m, 2);
    assert_int_equal(f->at, 1795240800000LL);
    check_str("result", f->result, "no_answer");
    check_str("grade", f->grade, "B");
    assert_false(f->has.content);
    crm_msg_clear(&m);
    next_bad(r, 3, "row 3, column 3 (跟进时间): expected a date-time");
    next_end(r);
}

static void test_followups_tab_separated_in_gbk(void **state)
{
    (void) state;
    crm_csv_reader_t *r = open_or_fail(DATA "followups.gbk.tsv", CRM_T_followup_record, NULL);
    assert_int_equal(crm_csv_delimiter(r), '\t');
    check_str("encoding", crm_csv_encoding(r), "GB18030");
    check_followups(r);
    crm_csv_close(&r);
    r = open_or_fail(DATA "followups.utf8.tsv", CRM_T_followup_record, "utf-8");
    check_followups(r);
    crm_csv_close(&r);

    /* A time in ms as the proto gives it; ten years away is a typing error. */
    char err[320];
    static const char ms[] = "customer_id,at,next_at\nC1,1795141800000,2062-01-01 10:00\n"
                             "C1,1795141800000,\n";
    r = crm_csv_open_records_mem(ms, sizeof ms - 1, CRM_T_followup_record, NULL, err, sizeof err);
    assert_non_null(r);
    next_bad(r, 1, "row 1, column 3 (next_at)");
    crm_msg_t m;
    next_ok(r, &m, 2);
    assert_int_equal(m.body.followup_record.at, 1795141800000LL);
    assert_false(m.body.followup_record.has.next_at);
    crm_msg_clear(&m);
    crm_csv_close(&r);
}

static void test_flags_and_values_that_cannot_be_read_name_row_and_column(void **state)
{
    (void) state;
    char err[320];
    static const char csv[] = "姓名,大客户,黑色客户,VIP客户,首保里程,备注\n"
                              "甲,Y,N,√,100,\n"
                              "乙,也许,,,,\n"
                              "丙,,,,一百,\n"
                              "丁,1,0,×,,\"多行\n备注\"\n";
    crm_csv_reader_t *r = crm_csv_open_records_mem(csv, sizeof csv - 1, CRM_T_customer_file, NULL,
                                                   err, sizeof err);
    assert_non_null(r);
    crm_msg_t m;
    next_ok(r, &m, 1);
    assert_true(m.body.customer_file.fleet);
    assert_true(m.body.customer_file.has.difficult);
    assert_false(m.body.customer_file.difficult);
    assert_true(m.body.customer_file.vip);
    crm_msg_clear(&m);
    next_bad(r, 2, "row 2, column 2 (大客户): expected 是 or 否");
    next_bad(r, 3, "row 3, column 5 (首保里程): expected a mileage");
    next_ok(r, &m, 4);
    assert_true(m.body.customer_file.fleet);
    assert_false(m.body.customer_file.vip);
    check_str("remark", m.body.customer_file.remark, "多行\n备注");
    crm_msg_clear(&m);
    next_end(r);
    crm_csv_close(&r);
}

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, n - i, &cp);
        if (k <= 0)
            return false;
        i += (size_t) k;
    }
    return true;
}

/* A reason quotes the cell and names the column: cut where it must be, it
   is still UTF-8 (it goes into the UTF-8 rejects file). */
static void test_reasons_stay_utf8_when_cut(void **state)
{
    (void) state;
    char csv[4096], err[320];
    snprintf(csv, sizeof csv, "姓名,");
    for (int i = 0; i < 60; i++)
        strcat(csv, "首"); /* a header name of 180 bytes ... */
    strcat(csv, "保里程\n甲,");
    for (int i = 0; i < 30; i++)
        strcat(csv, "一百"); /* ... and a cell of 180 that is no mileage */
    strcat(csv, "\n");
    /* that header is no field: map it to one by its proto name instead */
    char *h = strstr(csv, "首");
    char data[4096];
    snprintf(data, sizeof data, "%.*sfirst_service_mileage%s", (int) (h - csv), csv, strstr(csv, "\n"));
    crm_csv_reader_t *r = crm_csv_open_records_mem(data, strlen(data), CRM_T_customer_file, NULL, err,
                                                   sizeof err);
    assert_non_null(r);
    crm_msg_t m;
    long row;
    assert_int_equal(crm_csv_next(r, NOW_MS, &m, &row, err, sizeof err), -1);
    check_contains("error", err, "got \"一百一百");
    assert_true(utf8_ok(err));
    crm_csv_close(&r);
    /* the long header name itself, in a reason cut by a small buffer */
    char small[40];
    static const char hdr[] = "姓名,客户姓名\n甲,乙\n";
    assert_null(crm_csv_open_records_mem(hdr, sizeof hdr - 1, CRM_T_customer_file, NULL, small,
                                         sizeof small));
    assert_true(strlen(small) > 20);
    assert_true(utf8_ok(small));
    /* every cut of the same reason is UTF-8 */
    for (size_t sz = 1; sz < sizeof small; sz++) {
        assert_null(crm_csv_open_records_mem(hdr, sizeof hdr - 1, CRM_T_customer_file, NULL, small, sz));
        if (!utf8_ok(small))
            fail_msg("cut at %zu: not UTF-8", sz);
    }
}

static void test_untyped_phone_column_of_a_customer_file(void **state)
{
    (void) state;
    char err[320];
    static const char csv[] = "姓名,电话\n甲,13812345678\n乙,010-65001234\n";
    crm_csv_reader_t *r = crm_csv_open_records_mem(csv, sizeof csv - 1, CRM_T_customer_file, NULL,
                                                   err, sizeof err);
    assert_non_null(r);
    crm_msg_t m;
    next_ok(r, &m, 1);
    check_str("mobile", m.body.customer_file.mobile, "13812345678");
    assert_false(m.body.customer_file.has.usual_phone);
    crm_msg_clear(&m);
    next_ok(r, &m, 2);
    assert_false(m.body.customer_file.has.mobile);
    check_str("usual_phone", m.body.customer_file.usual_phone, "010-65001234");
    crm_msg_clear(&m);
    crm_csv_close(&r);
}

static void test_record_key_follows_the_content_not_the_id(void **state)
{
    (void) state;
    crm_msg_t a, b;
    crm_msg_init(&a, CRM_T_customer_file);
    crm_msg_init(&b, CRM_T_customer_file);
    CRM_SET_STR(&a, customer_file, name, "王建国");
    CRM_SET_STR(&b, customer_file, name, "王建国");
    CRM_SET_STR(&b, customer_file, record_id, "R1");
    CRM_SET_STR(&b, customer_file, dealer_id, "D1");
    CRM_SET_STR(&b, customer_file, remark, ""); /* empty is absent */
    char ka[CRM_LEADIN_KEY_SZ], kb[CRM_LEADIN_KEY_SZ];
    assert_int_equal(crm_leadin_record_key(&a, "csv:", ka, sizeof ka), 0);
    assert_int_equal(crm_leadin_record_key(&b, "csv:", kb, sizeof kb), 0);
    assert_string_equal(ka, kb);
    CRM_SET_I64(&b, customer_file, first_service_mileage, 0);
    assert_int_equal(crm_leadin_record_key(&b, "csv:", kb, sizeof kb), 0);
    assert_string_not_equal(ka, kb);
    /* the same text in another kind of record is another record */
    crm_msg_t s;
    crm_msg_init(&s, CRM_T_service_record);
    crm_msg_t f;
    crm_msg_init(&f, CRM_T_followup_record);
    CRM_SET_STR(&s, service_record, customer_id, "C1");
    CRM_SET_STR(&f, followup_record, customer_id, "C1");
    assert_int_equal(crm_leadin_record_key(&s, "csv:", ka, sizeof ka), 0);
    assert_int_equal(crm_leadin_record_key(&f, "csv:", kb, sizeof kb), 0);
    assert_string_not_equal(ka, kb);
    /* not a record type, no room */
    crm_msg_t l;
    crm_msg_init(&l, CRM_T_lead_submit);
    assert_int_equal(crm_leadin_record_key(&l, "csv:", ka, sizeof ka), -1);
    assert_int_equal(crm_leadin_record_key(&a, "csv:", ka, 60), -1);
    crm_msg_clear(&a);
    crm_msg_clear(&b);
    crm_msg_clear(&s);
    crm_msg_clear(&f);
}

static void test_headers_that_cannot_be_records_are_refused(void **state)
{
    (void) state;
    char err[320];
    static const char none[] = "甲,乙,丙\n1,2,3\n";
    assert_null(crm_csv_open_records_mem(none, sizeof none - 1, CRM_T_customer_file, NULL, err,
                                         sizeof err));
    check_contains("error", err, "no column is a customer.file field");
    static const char ok[] = "姓名\n甲\n";
    assert_null(crm_csv_open_records_mem(ok, sizeof ok - 1, CRM_T_lead_submit, NULL, err, sizeof err));
    assert_null(crm_csv_open_records_mem(ok, sizeof ok - 1, CRM_T_order_record, NULL, err, sizeof err));
    check_contains("error", err, "order.record");
    static const char twice[] = "姓名,客户姓名\n甲,乙\n";
    assert_null(crm_csv_open_records_mem(twice, sizeof twice - 1, CRM_T_customer_file, NULL, err,
                                         sizeof err));
    check_contains("error", err, "both mean name");
    assert_null(crm_csv_open_records(DATA "no-such-file.csv", CRM_T_customer_file, NULL, err,
                                     sizeof err));
    check_contains("error", err, "no-such-file.csv");
    /* A header that reads as a record but is a lead's spreadsheet is fine
       for the lead reader as before, and the record reader ignores what
       it does not know. */
    static const char lead[] = "姓名,意向车型,试驾时间\n甲,凯越,2026-12-05 10:00\n";
    crm_csv_reader_t *r = crm_csv_open_records_mem(lead, sizeof lead - 1, CRM_T_customer_file,
                                                   NULL, err, sizeof err);
    assert_non_null(r);
    check_str("unknown", crm_csv_unknown_columns(r)[0], "意向车型");
    check_str("unknown", crm_csv_unknown_columns(r)[1], "试驾时间");
    crm_csv_close(&r);
}

static void test_undecodable_bytes_name_row_and_column(void **state)
{
    (void) state;
    char err[320];
    /* GB18030 read, a lone lead byte at the end of the cell */
    static const char csv[] = "\xd0\xd5\xc3\xfb,\xb3\xb5\xd0\xcd\n\xcd\xf5,\x81\n";
    crm_csv_reader_t *r = crm_csv_open_records_mem(csv, sizeof csv - 1, CRM_T_customer_file, NULL,
                                                   err, sizeof err);
    if (!r)
        fail_msg("%s", err);
    next_bad(r, 1, "row 1, column 2 (车型): bytes not valid in GB18030");
    next_end(r);
    crm_csv_close(&r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed003_customer_file_in_gbk),
        cmocka_unit_test(test_the_same_rows_get_the_same_ids_in_any_encoding_or_column_order),
        cmocka_unit_test(test_every_proto_field_name_is_a_column),
        cmocka_unit_test(test_dates_in_every_common_shape),
        cmocka_unit_test(test_money_and_mileage),
        cmocka_unit_test(test_service_work_orders),
        cmocka_unit_test(test_followups_tab_separated_in_gbk),
        cmocka_unit_test(test_flags_and_values_that_cannot_be_read_name_row_and_column),
        cmocka_unit_test(test_reasons_stay_utf8_when_cut),
        cmocka_unit_test(test_untyped_phone_column_of_a_customer_file),
        cmocka_unit_test(test_record_key_follows_the_content_not_the_id),
        cmocka_unit_test(test_headers_that_cannot_be_records_are_refused),
        cmocka_unit_test(test_undecodable_bytes_name_row_and_column),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
