/*  Unit tests for tools/crm_table (crmctl's reports) and common/crm_rate:
    what a user checks in each form. The CSV is read back with a strict
    RFC 4180 reader, the JSON with jansson, the text by display columns. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>
#include <jansson.h>
#include <utf8proc.h>

#include "crm_rate.h"
#include "crm_table.h"

#define N_ROWS(t) (sizeof(t) / sizeof((t)[0]))

/* A report written into memory. */
typedef struct {
    FILE *fp;
    char *buf;
    size_t len;
} mem_t;

static void mem_open(mem_t *m)
{
    m->buf = NULL, m->len = 0;
    m->fp = open_memstream(&m->buf, &m->len);
    assert_non_null(m->fp);
}

/* Closes the stream; m->buf holds everything written (caller frees). */
static void mem_close(mem_t *m)
{
    assert_int_equal(fclose(m->fp), 0);
    m->fp = NULL;
}

/* ------------------------------------------------------------ an RFC 4180 reader */

#define CSV_MAX 16

typedef struct {
    size_t nrec;
    size_t nfield[CSV_MAX];
    char *field[CSV_MAX][CSV_MAX];
} csv_t;

/* Reads `s` strictly as RFC 4180: records end with CRLF, a field is either
   quoted (a quote inside doubled) or holds no quote, CR or LF. Fails the
   test on anything else. */
static void csv_read(const char *s, size_t len, csv_t *c)
{
    memset(c, 0, sizeof *c);
    size_t i = 0;
    while (i < len) {
        assert_true(c->nrec < CSV_MAX);
        size_t r = c->nrec++;
        for (;;) {
            assert_true(c->nfield[r] < CSV_MAX);
            char *f = calloc(len + 1, 1), *q = f;
            assert_non_null(f);
            c->field[r][c->nfield[r]++] = f;
            if (i < len && s[i] == '"') {
                for (i++;; i++) {
                    if (i >= len)
                        fail_msg("csv: a quoted field is not closed");
                    if (s[i] == '"' && i + 1 < len && s[i + 1] == '"')
                        *q++ = '"', i++;
                    else if (s[i] == '"')
                        break;
                    else
                        *q++ = s[i];
                }
                i++;
            } else {
                for (; i < len && s[i] != ',' && s[i] != '\r' && s[i] != '\n'; i++) {
                    if (s[i] == '"')
                        fail_msg("csv: a quote inside an unquoted field at byte %zu", i);
                    *q++ = s[i];
                }
            }
            if (i < len && s[i] == ',') {
                i++;
                continue;
            }
            if (i + 1 < len && s[i] == '\r' && s[i + 1] == '\n') {
                i += 2;
                break;
            }
            fail_msg("csv: record %zu does not end with CRLF (byte %zu)", r + 1, i);
        }
    }
}

static void csv_free(csv_t *c)
{
    for (size_t r = 0; r < c->nrec; r++)
        for (size_t f = 0; f < c->nfield[r]; f++)
            free(c->field[r][f]);
}

/* An identifier cell as Excel evaluates it: the string inside ="...". */
static void unwrap_formula(const char *cell, char *out, size_t size)
{
    size_t n = strlen(cell);
    if (n < 3 || strncmp(cell, "=\"", 2) || cell[n - 1] != '"')
        fail_msg("identifier cell '%s' is not written as =\"...\"", cell);
    size_t k = 0;
    for (size_t i = 2; i + 1 < n; i++) {
        if (cell[i] == '"' && cell[i + 1] == '"')
            i++;
        else if (cell[i] == '"')
            fail_msg("identifier cell '%s': a lone quote ends the string early", cell);
        assert_true(k + 1 < size);
        out[k++] = cell[i];
    }
    out[k] = '\0';
}

/* ------------------------------------------------------------ csv */

static const crm_col_t s_people[] = {
    {"name", "姓名 name", CRM_COL_TEXT},
    {"id_number", "身份证 id_number", CRM_COL_ID},
    {"visits", "到店 visits", CRM_COL_INT},
    {"rate", "成交率 rate", CRM_COL_RATE},
};

static void test_csv_has_one_bom_crlf_and_quoting(void **state)
{
    (void) state;
    mem_t m;
    mem_open(&m);
    crm_table_t *t = crm_table_new(m.fp, CRM_TABLE_CSV, s_people, N_ROWS(s_people), 0);
    assert_non_null(t);
    crm_table_text(t, "张三, 李四");
    crm_table_text(t, "110105194912310021");
    crm_table_int(t, 3);
    crm_table_rate(t, 297, 1000);
    crm_table_end_row(t);
    crm_table_text(t, "他说\"明天来\"\n再打");
    crm_table_text(t, NULL);
    crm_table_int(t, -7);
    crm_table_rate(t, 1, 0);
    crm_table_end_row(t);
    assert_int_equal(crm_table_finish(&t), 0);
    assert_null(t);
    assert_int_equal(crm_table_finish(&t), 0); /* safe twice */
    /* A second table on the same output: no second BOM. */
    t = crm_table_new(m.fp, CRM_TABLE_CSV, s_people, 1, CRM_TABLE_MORE);
    crm_table_text(t, "王五");
    crm_table_end_row(t);
    assert_int_equal(crm_table_finish(&t), 0);
    mem_close(&m);

    assert_true(m.len > 3);
    assert_memory_equal(m.buf, "\xEF\xBB\xBF", 3);
    assert_null(memmem(m.buf + 3, m.len - 3, "\xEF\xBB\xBF", 3));
    csv_t c;
    csv_read(m.buf + 3, m.len - 3, &c);
    assert_int_equal(c.nrec, 5);
    assert_int_equal(c.nfield[0], 4);
    assert_string_equal(c.field[0][0], "姓名 name");
    assert_string_equal(c.field[0][3], "成交率 rate");
    assert_string_equal(c.field[1][0], "张三, 李四");
    assert_string_equal(c.field[1][2], "3");
    assert_string_equal(c.field[1][3], "29.70%");
    assert_string_equal(c.field[2][0], "他说\"明天来\"\n再打");
    assert_string_equal(c.field[2][1], "");
    assert_string_equal(c.field[2][2], "-7");
    assert_string_equal(c.field[2][3], "-");
    assert_int_equal(c.nfield[3], 1);
    assert_string_equal(c.field[3][0], "姓名 name");
    assert_string_equal(c.field[4][0], "王五");
    csv_free(&c);
    free(m.buf);
}

static void test_csv_identifiers_keep_every_digit(void **state)
{
    (void) state;
    static const char *const ids[] = {"11010519491231002X", "110105194912310021",
                                      "0571-88888888",      "010020",
                                      "13800138000",        "D\"01"};
    static const crm_col_t cols[] = {{"id", "编号 id", CRM_COL_ID},
                                     {"note", "备注 note", CRM_COL_TEXT}};
    mem_t m;
    mem_open(&m);
    crm_table_t *t = crm_table_new(m.fp, CRM_TABLE_CSV, cols, N_ROWS(cols), 0);
    for (size_t i = 0; i < N_ROWS(ids); i++) {
        crm_table_text(t, ids[i]);
        crm_table_text(t, ids[i]); /* the same as free text: no wrapper */
        crm_table_end_row(t);
    }
    assert_int_equal(crm_table_finish(&t), 0);
    mem_close(&m);

    csv_t c;
    csv_read(m.buf + 3, m.len - 3, &c);
    assert_int_equal(c.nrec, 1 + N_ROWS(ids));
    for (size_t i = 0; i < N_ROWS(ids); i++) {
        char got[64];
        unwrap_formula(c.field[1 + i][0], got, sizeof got);
        if (strcmp(got, ids[i]))
            fail_msg("identifier '%s' reads back as '%s'", ids[i], got);
        assert_string_equal(c.field[1 + i][1], ids[i]);
    }
    /* The project's form, byte for byte (tests/bus/test_scheduler.c). */
    assert_non_null(strstr(m.buf, "\"=\"\"010020\"\"\",\"010020\"\r\n"));
    csv_free(&c);
    free(m.buf);
}

static void test_csv_free_text_never_runs_as_formula(void **state)
{
    (void) state;
    static const char *const risky[] = {
        "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx"};
    static const char *const plain[] = {"王先生", "a=b", "1+1", ""};
    static const crm_col_t cols[] = {{"msg", "留言 message", CRM_COL_TEXT}};
    mem_t m;
    mem_open(&m);
    crm_table_t *t = crm_table_new(m.fp, CRM_TABLE_CSV, cols, 1, 0);
    for (size_t i = 0; i < N_ROWS(risky); i++) {
        crm_table_text(t, risky[i]);
        crm_table_end_row(t);
    }
    for (size_t i = 0; i < N_ROWS(plain); i++) {
        crm_table_text(t, plain[i]);
        crm_table_end_row(t);
    }
    assert_int_equal(crm_table_finish(&t), 0);
    mem_close(&m);

    csv_t c;
    csv_read(m.buf + 3, m.len - 3, &c);
    assert_int_equal(c.nrec, 1 + N_ROWS(risky) + N_ROWS(plain));
    for (size_t i = 0; i < N_ROWS(risky); i++) {
        const char *got = c.field[1 + i][0];
        if (got[0] != '\'' || strcmp(got + 1, risky[i]))
            fail_msg("free text '%s' written as '%s', not made inert with a leading '", risky[i],
                     got);
    }
    for (size_t i = 0; i < N_ROWS(plain); i++)
        assert_string_equal(c.field[1 + N_ROWS(risky) + i][0], plain[i]);
    csv_free(&c);
    free(m.buf);
}

/* ------------------------------------------------------------ rates */

static void test_rates_are_exact_and_round_half_up(void **state)
{
    (void) state;
    static const struct {
        int64_t num, den;
        const char *want;
    } rows[] = {
        {9, 240, "3.75%"},
        {4, 95, "4.21%"},
        {2, 157, "1.27%"},
        {275, 275, "100.00%"},
        {0, 93, "0.00%"},
        {297, 1000, "29.70%"},
        {1, 8, "12.50%"},
        {1, 3, "33.33%"},
        {2, 3, "66.67%"},
        {1, 200000, "0.00%"},
        {1, 20000, "0.01%"},
        {3, 20000, "0.02%"},
        {1, 0, "-"},
        {0, 0, "-"},
        {-1, 8, "-12.50%"},
        {1, -3, "-33.33%"},
        {-1, -3, "33.33%"},
        {-1, 200000, "0.00%"},
        {-1, 20000, "-0.01%"},
        {5, 2, "250.00%"},
        {INT64_MAX, 1, "922337203685477580700.00%"},
        {INT64_MIN, 1, "-922337203685477580800.00%"},
        {1, INT64_MAX, "0.00%"},
        {INT64_MAX, INT64_MAX, "100.00%"},
    };
    for (size_t i = 0; i < N_ROWS(rows); i++) {
        char out[64];
        int n = crm_rate_format(rows[i].num, rows[i].den, out, sizeof out);
        if (strcmp(out, rows[i].want) || n != (int) strlen(rows[i].want))
            fail_msg("crm_rate_format(%lld, %lld): got \"%s\" (%d), want \"%s\"",
                     (long long) rows[i].num, (long long) rows[i].den, out, n, rows[i].want);
    }
    char small[6];
    assert_int_equal(crm_rate_format(297, 1000, small, sizeof small), -1); /* "29.70%" needs 7 */
    assert_string_equal(small, "");
    char fits[7];
    assert_int_equal(crm_rate_format(297, 1000, fits, sizeof fits), 6);
    assert_string_equal(fits, "29.70%");
    assert_int_equal(crm_rate_percent(297, 1000, fits, sizeof fits), 5);
    assert_string_equal(fits, "29.70");
    assert_int_equal(crm_rate_percent(1, 0, fits, sizeof fits), -1);

    static const struct {
        int64_t fen;
        const char *want;
    } money[] = {{5000, "50.00"}, {7, "0.07"},   {-150, "-1.50"},
                 {0, "0.00"},     {-5, "-0.05"}, {INT64_MIN, "-92233720368547758.08"}};
    for (size_t i = 0; i < N_ROWS(money); i++) {
        char out[32];
        crm_yuan_format(money[i].fen, out, sizeof out);
        assert_string_equal(out, money[i].want);
    }
}

/* ------------------------------------------------------------ json */

static const crm_col_t s_mixed[] = {
    {"name", "姓名 name", CRM_COL_TEXT},
    {"id", "编号 id", CRM_COL_ID},
    {"n", "数 n", CRM_COL_INT},
    {"rate", "率 rate", CRM_COL_RATE},
    {"fine_fen", "罚款(元) fine_yuan", CRM_COL_FEN},
};

static void s_mixed_rows(crm_table_t *t)
{
    crm_table_text(t, "王\"小\\明\n\x01\t");
    crm_table_text(t, "11010519491231002X");
    crm_table_int(t, 42);
    crm_table_rate(t, 297, 1000);
    crm_table_int(t, 5000);
    crm_table_end_row(t);
    crm_table_text(t, NULL);
    crm_table_text(t, "0571-88888888");
    crm_table_int(t, INT64_MIN);
    crm_table_rate(t, 5, 0);
    crm_table_end_row(t); /* fine_fen not given: null */
}

static void test_json_types_and_values(void **state)
{
    (void) state;
    mem_t m;
    mem_open(&m);
    crm_table_t *t = crm_table_new(m.fp, CRM_TABLE_JSON, s_mixed, N_ROWS(s_mixed), 0);
    s_mixed_rows(t);
    assert_int_equal(crm_table_finish(&t), 0);
    mem_close(&m);

    json_error_t err;
    json_t *doc = json_loadb(m.buf, m.len, 0, &err);
    if (!doc)
        fail_msg("not JSON: %s (line %d): %s", err.text, err.line, m.buf);
    assert_true(json_is_array(doc));
    assert_int_equal(json_array_size(doc), 2);
    json_t *a = json_array_get(doc, 0), *b = json_array_get(doc, 1);
    assert_int_equal(json_object_size(a), 5);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "王\"小\\明\n\x01\t");
    assert_string_equal(json_string_value(json_object_get(a, "id")), "11010519491231002X");
    assert_true(json_is_integer(json_object_get(a, "n")));
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 42);
    assert_true(json_is_real(json_object_get(a, "rate")));
    assert_true(fabs(json_real_value(json_object_get(a, "rate")) - 29.70) < 1e-9);
    assert_true(json_is_integer(json_object_get(a, "fine_fen")));
    assert_int_equal(json_integer_value(json_object_get(a, "fine_fen")), 5000);
    assert_true(json_is_null(json_object_get(b, "name")));
    assert_string_equal(json_string_value(json_object_get(b, "id")), "0571-88888888");
    assert_int_equal(json_integer_value(json_object_get(b, "n")), INT64_MIN);
    assert_true(json_is_null(json_object_get(b, "rate")));
    assert_true(json_is_null(json_object_get(b, "fine_fen")));
    /* Two decimals as the carmaker writes them, keys in column order. */
    assert_non_null(strstr(m.buf, "\"n\":42,\"rate\":29.70,\"fine_fen\":5000}"));
    json_decref(doc);
    free(m.buf);
}

/* Metadata and two arrays in one document, the caller printing the envelope. */
static void test_json_tables_inside_an_envelope(void **state)
{
    (void) state;
    mem_t m;
    mem_open(&m);
    fputs("{\"month\":", m.fp);
    crm_table_json_str(m.fp, "2026-03 \"三月\"");
    fputs(",\"entries\":", m.fp);
    crm_table_t *t = crm_table_new(m.fp, CRM_TABLE_JSON, s_mixed, N_ROWS(s_mixed), 0);
    s_mixed_rows(t);
    assert_int_equal(crm_table_finish(&t), 0);
    fputs(",\"none\":", m.fp);
    t = crm_table_new(m.fp, CRM_TABLE_JSON, s_mixed, N_ROWS(s_mixed), CRM_TABLE_MORE);
    assert_int_equal(crm_table_finish(&t), 0);
    fputs("}\n", m.fp);
    mem_close(&m);

    json_error_t err;
    json_t *doc = json_loadb(m.buf, m.len, 0, &err);
    if (!doc)
        fail_msg("not JSON: %s: %s", err.text, m.buf);
    assert_string_equal(json_string_value(json_object_get(doc, "month")), "2026-03 \"三月\"");
    assert_int_equal(json_array_size(json_object_get(doc, "entries")), 2);
    assert_true(json_is_array(json_object_get(doc, "none")));
    assert_int_equal(json_array_size(json_object_get(doc, "none")), 0);
    json_decref(doc);
    free(m.buf);
}

/* ------------------------------------------------------------ text */

/* Terminal columns of the first `n` bytes of `s`. */
static size_t display_width(const char *s, size_t n)
{
    size_t w = 0, i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *) s + i,
                                              (utf8proc_ssize_t) (n - i), &cp);
        assert_true(k > 0);
        w += (size_t) utf8proc_charwidth(cp);
        i += (size_t) k;
    }
    return w;
}

static void test_text_columns_line_up_with_chinese(void **state)
{
    (void) state;
    static const crm_col_t cols[] = {
        {"dealer", "经销商 dealer", CRM_COL_TEXT},
        {"n", "跟进 n", CRM_COL_INT},
        {"rate", "逾期率 rate", CRM_COL_RATE},
        {"note", "备注 note", CRM_COL_TEXT},
    };
    static const struct {
        const char *dealer;
        int64_t n, num, den;
        const char *note;
    } rows[] = {
        {"北京朝阳汽车销售服务有限公司", 5, 9, 240, "周五来店"},
        {"D1", 1234, 275, 275, "ok"},
        {"上海浦东 Pudong", 0, 0, 0, "\x1b[31m红"},
    };
    mem_t m;
    mem_open(&m);
    crm_table_t *t = crm_table_new(m.fp, CRM_TABLE_TEXT, cols, N_ROWS(cols), 0);
    for (size_t i = 0; i < N_ROWS(rows); i++) {
        crm_table_text(t, rows[i].dealer);
        crm_table_int(t, rows[i].n);
        crm_table_rate(t, rows[i].num, rows[i].den);
        crm_table_text(t, rows[i].note);
        crm_table_end_row(t);
    }
    assert_int_equal(crm_table_finish(&t), 0);
    mem_close(&m);

    /* Each line: where the count and the rate end (numbers to the right),
       where the note starts (text to the left), in terminal columns. */
    const char *want[][3] = {{"跟进 n", "逾期率 rate", "备注 note"},
                             {"5", "3.75%", "周五来店"},
                             {"1234", "100.00%", "ok"},
                             {"0", "-", "?[31m红"}};
    size_t n_end = 0, rate_end = 0, note_start = 0;
    char *line = m.buf;
    for (size_t i = 0; i < N_ROWS(want); i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (i == 0)
            assert_non_null(strstr(line, "经销商 dealer"));
        else
            assert_memory_equal(line, rows[i - 1].dealer, strlen(rows[i - 1].dealer));
        /* The cells after the dealer, found after its name. */
        char *after = line + (i ? strlen(rows[i - 1].dealer) : strlen("经销商 dealer"));
        char *n = strstr(after, want[i][0]);
        char *r = n ? strstr(n + strlen(want[i][0]), want[i][1]) : NULL;
        char *note = r ? strstr(r + strlen(want[i][1]), want[i][2]) : NULL;
        if (!note)
            fail_msg("line %zu is not as expected: '%s'", i + 1, line);
        assert_string_equal(note, want[i][2]); /* the last cell, no trailing blanks */
        size_t ne = display_width(line, (size_t) (n - line) + strlen(want[i][0]));
        size_t re = display_width(line, (size_t) (r - line) + strlen(want[i][1]));
        size_t ns = display_width(line, (size_t) (note - line));
        if (i == 0) {
            n_end = ne, rate_end = re, note_start = ns;
        } else if (ne != n_end || re != rate_end || ns != note_start) {
            fail_msg("line %zu is out of line with the header (ends %zu %zu, starts %zu; header "
                     "%zu %zu %zu):\n%s",
                     i + 1, ne, re, ns, n_end, rate_end, note_start, m.buf);
        }
        line = nl + 1;
    }
    assert_string_equal(line, "");
    free(m.buf);
}

static void test_format_names(void **state)
{
    (void) state;
    crm_table_fmt_t f = CRM_TABLE_CSV;
    assert_int_equal(crm_table_fmt_parse(NULL, &f), 0);
    assert_int_equal(f, CRM_TABLE_TEXT);
    assert_int_equal(crm_table_fmt_parse("json", &f), 0);
    assert_int_equal(f, CRM_TABLE_JSON);
    assert_int_equal(crm_table_fmt_parse("csv", &f), 0);
    assert_int_equal(f, CRM_TABLE_CSV);
    assert_int_equal(crm_table_fmt_parse("table", &f), 0);
    assert_int_equal(f, CRM_TABLE_TEXT);
    assert_int_equal(crm_table_fmt_parse("xlsx", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_has_one_bom_crlf_and_quoting),
        cmocka_unit_test(test_csv_identifiers_keep_every_digit),
        cmocka_unit_test(test_csv_free_text_never_runs_as_formula),
        cmocka_unit_test(test_rates_are_exact_and_round_half_up),
        cmocka_unit_test(test_json_types_and_values),
        cmocka_unit_test(test_json_tables_inside_an_envelope),
        cmocka_unit_test(test_text_columns_line_up_with_chinese),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
