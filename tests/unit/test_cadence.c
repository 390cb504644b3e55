/*  crm_cadence: the follow-up rules by grade, working time and sanctions,
 *  against the figures of DOMAIN.md and the 2026 calendar worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crm_cadence.h"

#define HOUR 3600000LL

static int64_t s_at(int y, int m, int d, int hh, int mm)
{
    return crm_cst_day_start_ms(crm_day_from_ymd(y, m, d)) + hh * HOUR + mm * 60000LL;
}

static void test_grades(void **state)
{
    (void) state;
    assert_int_equal(crm_grade_interval_days("H"), 3);
    assert_int_equal(crm_grade_interval_days("A"), 7);
    assert_int_equal(crm_grade_interval_days("B"), 15);
    assert_int_equal(crm_grade_interval_days("C"), 30);
    assert_int_equal(crm_grade_interval_days("h"), 0);
    assert_int_equal(crm_grade_interval_days("HA"), 0);
    assert_int_equal(crm_grade_interval_days(NULL), 0);
    int64_t d = crm_day_from_ymd(2026, 3, 2);
    assert_true(crm_grade_date_agrees("H", d + 7, d));
    assert_false(crm_grade_date_agrees("H", d + 8, d));
    assert_true(crm_grade_date_agrees("A", d + 15, d));
    assert_false(crm_grade_date_agrees("A", d + 16, d));
    assert_true(crm_grade_date_agrees("B", d + 30, d));
    assert_false(crm_grade_date_agrees("C", d + 30, d));
    assert_true(crm_grade_date_agrees("C", d + 31, d));
    assert_false(crm_grade_date_agrees("H", d - 1, d)); /* passed already */
    assert_true(crm_grade_remark_ok("H", "H 下周买"));
    assert_false(crm_grade_remark_ok("H", "A 下周买"));
    assert_false(crm_grade_remark_ok("H", NULL));
    assert_true(crm_followup_is_effective("answered", "谈了价格"));
    assert_true(crm_followup_is_effective("visit", "来店"));
    assert_false(crm_followup_is_effective("answered", " \t\n"));
    assert_false(crm_followup_is_effective("message", "微信联系"));
    assert_false(crm_followup_is_effective("no_answer", "无人接听"));
    assert_false(crm_followup_is_contact("no_answer"));
    assert_true(crm_followup_is_contact("message"));
}

static void test_hours_are_exactly_hh_mm(void **state)
{
    (void) state;
    crm_hours_t h;
    assert_int_equal(crm_hours_parse("09:00-18:00", &h), 0);
    assert_int_equal(h.open_min, 540);
    assert_int_equal(h.close_min, 1080);
    assert_int_equal(crm_hours_parse("00:00-24:00", &h), 0);
    const char *bad[] = {"+9:00-18:00", " 9:00-18:00", "9:00-18:00", "09:00-18:00 ", "18:00-09:00", "09:00-09:00",
                         "24:00-24:00", "09:60-18:00", "09:00-24:01", "09-00-18:00", "", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(crm_hours_parse(bad[i], &h), -1);
    assert_int_equal(crm_hours_parse(NULL, &h), -1);
}

static void test_working_time_skips_nights_weekends_and_holidays(void **state)
{
    (void) state;
    crm_calendar_t *cal = crm_calendar_default();
    assert_non_null(cal);
    crm_hours_t h = CRM_HOURS_DEFAULT;
    /* Friday 17:00 + 24 working hours: 1 + 9 + 9 + 5 -> Wednesday 14:00. */
    assert_int_equal(crm_work_shift(cal, h, s_at(2026, 3, 6, 17, 0), 24 * HOUR), s_at(2026, 3, 11, 14, 0));
    /* From a Saturday night: Monday 09:00 + 2 h. */
    assert_int_equal(crm_work_shift(cal, h, s_at(2026, 3, 7, 22, 0), 2 * HOUR), s_at(2026, 3, 9, 11, 0));
    /* Back: 2 working hours before Monday 10:00 is Friday 17:00. */
    assert_int_equal(crm_work_shift(cal, h, s_at(2026, 3, 9, 10, 0), -2 * HOUR), s_at(2026, 3, 6, 17, 0));
    /* Across National Day: 30 September 17:00 + 2 h is 1 h that day, then
       1-7 October off: 8 October 10:00. */
    assert_int_equal(crm_work_shift(cal, h, s_at(2026, 9, 30, 17, 0), 2 * HOUR), s_at(2026, 10, 8, 10, 0));
    /* The make-up Saturday 10 October counts. */
    assert_int_equal(crm_work_shift(cal, h, s_at(2026, 10, 9, 17, 0), 2 * HOUR), s_at(2026, 10, 10, 10, 0));
    /* Rules in days: +3 from Monday 28 September is 1 October -> the 8th. */
    assert_int_equal(crm_cadence_due(cal, h, s_at(2026, 9, 28, 10, 0), 3, true), s_at(2026, 10, 8, 9, 0));
    assert_int_equal(crm_cadence_due(cal, h, s_at(2026, 9, 28, 10, 0), 3, false), s_at(2026, 10, 1, 9, 0));
    /* Overdue after 23:59 China time of the due day: 00:00 the next day. */
    assert_int_equal(crm_overdue_at(s_at(2026, 3, 3, 15, 0), 23 * 60 + 59), s_at(2026, 3, 4, 0, 0));
    assert_int_equal(crm_overdue_at(s_at(2026, 3, 3, 0, 0), 18 * 60), s_at(2026, 3, 3, 18, 1));
    /* Due after the day's end: overdue at the next day's, never before due. */
    assert_int_equal(crm_overdue_at(s_at(2026, 3, 3, 20, 0), 18 * 60), s_at(2026, 3, 4, 18, 1));
    assert_int_equal(crm_hhmm_parse("23:59"), 1439);
    assert_int_equal(crm_hhmm_parse("+9:00"), -1);
    assert_int_equal(crm_hhmm_parse(" 9:00"), -1);
    assert_int_equal(crm_hhmm_parse("24:00"), -1);
    crm_calendar_destroy(&cal);
}

static void test_sanctions(void **state)
{
    (void) state;
    int64_t fen;
    assert_string_equal(crm_sanction("overdue", 1, &fen), "rectification");
    assert_int_equal(fen, 0);
    assert_string_equal(crm_sanction("expired", 2, &fen), "suspension");
    assert_string_equal(crm_sanction("under_frequency", 1, &fen), "fine");
    assert_int_equal(fen, 5000);
    assert_string_equal(crm_sanction("pushed_out", 4, &fen), "fine");
    assert_int_equal(fen, 40000);
    assert_null(crm_sanction("missing_plan", 1, &fen));
    assert_null(crm_sanction("overdue", 0, &fen));
    /* Doubling never overflows. */
    assert_string_equal(crm_sanction("pushed_out", 1000, &fen), "fine");
    assert_true(fen > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grades),
        cmocka_unit_test(test_hours_are_exactly_hh_mm),
        cmocka_unit_test(test_working_time_skips_nights_weekends_and_holidays),
        cmocka_unit_test(test_sanctions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
