/*  China's working days as the scheduler will count them: the built-in
 *  table against the State Council's notices (2025, 2026), days in China
 *  Standard Time, and tables that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crm_calendar.h"

static int64_t D(const char *s)
{
    int64_t d = crm_day_parse(s);
    if (d == INT64_MIN)
        fail_msg("not a date: %s", s);
    return d;
}

static void assert_day(int64_t day, const char *want)
{
    char got[16];
    crm_day_format(day, got, sizeof got);
    assert_string_equal(got, want);
}

/* Days are China's: 2026-12-01 15:59:59.999 UTC is still the 1st in UTC
   but the 2nd in Beijing from 16:00 UTC on. */
static void test_days_are_china_standard_time(void **state)
{
    (void) state;
    int64_t utc_16h = 1796140800000LL; /* 2026-12-01T16:00:00Z = 2026-12-02 00:00 CST */
    assert_day(crm_cst_day(utc_16h), "2026-12-02");
    assert_day(crm_cst_day(utc_16h - 1), "2026-12-01"); /* 23:59:59.999 CST */
    assert_int_equal(crm_cst_day_start_ms(D("2026-12-02")), utc_16h);
    assert_int_equal(crm_day_weekday(D("2026-12-01")), 2); /* a Tuesday */
    assert_int_equal(crm_day_weekday(D("1970-01-01")), 4);
    assert_int_equal(crm_day_weekday(D("2024-02-29")), 4);
    assert_true(crm_day_parse("2026-02-29") == INT64_MIN);
    assert_true(crm_day_parse("2026-13-01") == INT64_MIN);
    assert_true(crm_day_parse("2026-1-01") == INT64_MIN);
    assert_day(crm_cst_day(0), "1970-01-01");
    assert_day(crm_cst_day(-8LL * 3600 * 1000 - 1), "1969-12-31");
}

/* The notices: holidays off, make-up days worked, the rest by the week. */
static void test_the_built_in_table_is_the_notices(void **state)
{
    (void) state;
    crm_calendar_t *cal = crm_calendar_default();
    assert_non_null(cal);
    int years[8];
    assert_int_equal(crm_calendar_years(cal, years, 8), 2);
    assert_int_equal(years[0], 2025);
    assert_int_equal(years[1], 2026);
    assert_false(crm_calendar_knows(cal, 2027)); /* not published: no data, not "no holidays" */
    const char *name;
    assert_int_equal(crm_calendar_kind(cal, D("2026-02-16"), &name), CRM_DAY_HOLIDAY); /* a Monday */
    assert_string_equal(name, "春节");
    assert_int_equal(crm_calendar_kind(cal, D("2026-02-14"), &name), CRM_DAY_MAKEUP); /* a Saturday */
    assert_int_equal(crm_calendar_kind(cal, D("2026-02-28"), NULL), CRM_DAY_MAKEUP);
    assert_int_equal(crm_calendar_kind(cal, D("2026-03-07"), &name), CRM_DAY_WEEKEND);
    assert_null(name);
    assert_int_equal(crm_calendar_kind(cal, D("2026-03-09"), NULL), CRM_DAY_WORKING);
    assert_int_equal(crm_calendar_kind(cal, D("2025-10-06"), NULL), CRM_DAY_HOLIDAY);
    assert_int_equal(crm_calendar_kind(cal, D("2025-09-28"), NULL), CRM_DAY_MAKEUP);
    /* the counts the notices give: 28 days off and 5 worked in 2025, 33 and 6 in 2026 */
    int off[2] = {0, 0}, work[2] = {0, 0};
    for (int64_t d = D("2025-01-01"); d <= D("2026-12-31"); d++) {
        int y, m, dd;
        crm_day_ymd(d, &y, &m, &dd);
        crm_day_kind_t k = crm_calendar_kind(cal, d, NULL);
        off[y - 2025] += k == CRM_DAY_HOLIDAY;
        work[y - 2025] += k == CRM_DAY_MAKEUP;
    }
    assert_int_equal(off[0], 28);
    assert_int_equal(work[0], 5);
    assert_int_equal(off[1], 33);
    assert_int_equal(work[1], 6);
    crm_calendar_destroy(&cal);
    assert_null(cal);
}

/* Due dates in working days move over holidays and land on make-up days. */
static void test_working_days_move_over_holidays(void **state)
{
    (void) state;
    crm_calendar_t *cal = crm_calendar_default();
    assert_non_null(cal);
    /* Friday 2026-02-13, then the Saturday make-up day, then the nine days of 春节 */
    assert_day(crm_calendar_add_working(cal, D("2026-02-13"), 1), "2026-02-14");
    assert_day(crm_calendar_add_working(cal, D("2026-02-13"), 2), "2026-02-24");
    assert_day(crm_calendar_add_working(cal, D("2026-02-13"), 3), "2026-02-25");
    /* a due date on 国庆 moves to the first working day after it */
    assert_day(crm_calendar_next_working(cal, D("2026-10-03")), "2026-10-08");
    assert_day(crm_calendar_next_working(cal, D("2026-10-08")), "2026-10-08");
    /* the Saturday make-up day after 国庆 counts */
    assert_day(crm_calendar_add_working(cal, D("2026-10-09"), 1), "2026-10-10");
    /* an ordinary weekend */
    assert_day(crm_calendar_next_working(cal, D("2026-12-05")), "2026-12-07");
    /* a year with no data: weekends only */
    assert_day(crm_calendar_next_working(cal, D("2027-01-01")), "2027-01-01"); /* a Friday */
    crm_calendar_destroy(&cal);
}

static void s_refused(const char *text, const char *why)
{
    char err[200] = "";
    crm_calendar_t *cal = crm_calendar_parse(text, strlen(text), err, sizeof err);
    if (cal) {
        crm_calendar_destroy(&cal);
        fail_msg("accepted: %s", text);
    }
    if (!strstr(err, why))
        fail_msg("\"%s\" does not say \"%s\"", err, why);
}

/* A table that would make the rules wrong is refused, naming the line. */
static void test_bad_tables_are_refused(void **state)
{
    (void) state;
    s_refused("2026-10-01 off 国庆节\n", "no \"year YYYY\" line");
    s_refused("year 2026\n2026-10-01 of 国庆节\n", "line 2: off or work expected");
    s_refused("year 2026\n2026-02-30 off 春节\n", "line 2:");
    s_refused("year 2026\n2026-10-08 work 国庆节\n", "line 2: a make-up working day falls on a Saturday or Sunday");
    s_refused("year 2026\n2026-10-01 off 国庆节\n2026-10-01 off 国庆节\n", "2026-10-01 is listed twice");
    s_refused("year 2026\n2027-01-01 off 元旦\n", "2027-01-01: its year has no \"year 2027\" line");
    s_refused("year 2026\nyear 2026\n", "line 2: the year is declared twice");
    s_refused("year 26\n", "line 1: \"year YYYY\" expected");
    /* comments, blank lines and CRLF are fine */
    const char *ok = "# a comment\r\n\r\nyear 2027 test\r\n2027-01-01 off 元旦\r\n";
    char err[200];
    crm_calendar_t *cal = crm_calendar_parse(ok, strlen(ok), err, sizeof err);
    assert_non_null(cal);
    assert_true(crm_calendar_knows(cal, 2027));
    assert_int_equal(crm_calendar_kind(cal, D("2027-01-01"), NULL), CRM_DAY_HOLIDAY);
    crm_calendar_destroy(&cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days_are_china_standard_time),
        cmocka_unit_test(test_the_built_in_table_is_the_notices),
        cmocka_unit_test(test_working_days_move_over_holidays),
        cmocka_unit_test(test_bad_tables_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
