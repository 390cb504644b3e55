#include "crm_cadence.h"

#include <stdio.h>
#include <string.h>

#define S_MIN_MS 60000LL
#define S_DAY_MS 86400000LL
/* A shift never walks further than this many days (ten years). */
#define S_MAX_DAYS 3660

static const char s_grades[] = "HABC";
static const int s_interval[] = {3, 7, 15, 30};
static const int s_window[] = {7, 15, 30, 30}; /* C: beyond 30 */

int crm_grade_index(const char *grade)
{
    if (!grade || !grade[0] || grade[1])
        return -1;
    const char *p = strchr(s_grades, grade[0]);
    return p ? (int) (p - s_grades) : -1;
}

int crm_grade_interval_days(const char *grade)
{
    int i = crm_grade_index(grade);
    return i < 0 ? 0 : s_interval[i];
}

bool crm_grade_date_agrees(const char *grade, int64_t expected_day, int64_t contact_day)
{
    int i = crm_grade_index(grade);
    if (i < 0)
        return false;
    int64_t ahead = expected_day - contact_day;
    if (ahead < 0)
        return false;
    if (i == 3)
        return ahead > s_window[3];
    return ahead <= s_window[i];
}

bool crm_grade_remark_ok(const char *grade, const char *remark)
{
    return crm_grade_index(grade) >= 0 && remark && remark[0] == grade[0];
}

bool crm_followup_is_contact(const char *result) { return result && strcmp(result, "no_answer") != 0; }

bool crm_followup_is_effective(const char *result, const char *content)
{
    if (!result || !content)
        return false;
    bool said = false;
    for (const char *p = content; *p && !said; p++)
        said = *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n';
    return said && (strcmp(result, "answered") == 0 || strcmp(result, "visit") == 0);
}

int crm_hours_parse(const char *text, crm_hours_t *out)
{
    /* Exactly "HH:MM-HH:MM": digits where digits go, nothing else. */
    static const char shape[] = "00:00-00:00";
    if (!text || strlen(text) != sizeof shape - 1)
        return -1;
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == '0' ? (text[i] < '0' || text[i] > '9') : text[i] != shape[i])
            return -1;
    int h1 = (text[0] - '0') * 10 + text[1] - '0', m1 = (text[3] - '0') * 10 + text[4] - '0';
    int h2 = (text[6] - '0') * 10 + text[7] - '0', m2 = (text[9] - '0') * 10 + text[10] - '0';
    if (h1 > 23 || m1 > 59 || h2 > 24 || m2 > 59 ||
        (h2 == 24 && m2 != 0))
        return -1;
    int open = h1 * 60 + m1, close = h2 * 60 + m2;
    if (open >= close)
        return -1;
    out->open_min = open;
    out->close_min = close;
    return 0;
}

static int64_t s_at(int64_t day, int min) { return crm_cst_day_start_ms(day) + min * S_MIN_MS; }

static int64_t s_prev_working(const crm_calendar_t *cal, int64_t day)
{
    for (int i = 0; i < S_MAX_DAYS; i++)
        if (crm_calendar_working(cal, --day))
            return day;
    return day;
}

static int64_t s_next_working(const crm_calendar_t *cal, int64_t day)
{
    return crm_calendar_next_working(cal, day + 1);
}

int64_t crm_work_shift(const crm_calendar_t *cal, crm_hours_t hours, int64_t t, int64_t delta_ms)
{
    int64_t day = crm_cst_day(t);
    if (delta_ms >= 0) {
        if (!crm_calendar_working(cal, day) || t >= s_at(day, hours.close_min)) {
            day = s_next_working(cal, day);
            t = s_at(day, hours.open_min);
        } else if (t < s_at(day, hours.open_min)) {
            t = s_at(day, hours.open_min);
        }
        int64_t left = delta_ms;
        for (int i = 0; i < S_MAX_DAYS; i++) {
            int64_t avail = s_at(day, hours.close_min) - t;
            if (left <= avail)
                return t + left;
            left -= avail;
            day = s_next_working(cal, day);
            t = s_at(day, hours.open_min);
        }
        return t;
    }
    if (!crm_calendar_working(cal, day) || t <= s_at(day, hours.open_min)) {
        day = s_prev_working(cal, day);
        t = s_at(day, hours.close_min);
    } else if (t > s_at(day, hours.close_min)) {
        t = s_at(day, hours.close_min);
    }
    int64_t left = -delta_ms;
    for (int i = 0; i < S_MAX_DAYS; i++) {
        int64_t avail = t - s_at(day, hours.open_min);
        if (left <= avail)
            return t - left;
        left -= avail;
        day = s_prev_working(cal, day);
        t = s_at(day, hours.close_min);
    }
    return t;
}

int64_t crm_cadence_due(const crm_calendar_t *cal, crm_hours_t hours, int64_t from, int days, bool shift)
{
    int64_t day = crm_cst_day(from) + days;
    if (shift)
        day = crm_calendar_next_working(cal, day);
    return s_at(day, hours.open_min);
}

int64_t crm_overdue_at(int64_t due, int day_end_min)
{
    int64_t day = crm_cst_day(due), at = s_at(day, day_end_min) + S_MIN_MS;
    /* Due after the day's end (a day ending at 18:00, a call planned at
       20:00): its day ends the next day, never before it is due. */
    return at > due ? at : s_at(day + 1, day_end_min) + S_MIN_MS;
}

int crm_hhmm_parse(const char *text)
{
    if (!text || strlen(text) != 5 || text[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text[i] < '0' || text[i] > '9'))
            return -1;
    int h = (text[0] - '0') * 10 + text[1] - '0', m = (text[3] - '0') * 10 + text[4] - '0';
    return h > 23 || m > 59 ? -1 : h * 60 + m;
}

const char *crm_sanction_class(const char *code)
{
    if (!code)
        return NULL;
    if (!strcmp(code, "overdue") || !strcmp(code, "expired"))
        return "discipline";
    if (!strcmp(code, "under_frequency") || !strcmp(code, "pushed_out"))
        return "fine";
    return NULL;
}

const char *crm_sanction(const char *code, int nth, int64_t *fen)
{
    *fen = 0;
    const char *cls = crm_sanction_class(code);
    if (!cls || nth < 1)
        return NULL;
    if (!strcmp(cls, "discipline"))
        return nth == 1 ? "rectification" : "suspension";
    /* 50 yuan, doubled each time after; capped where int64 would not hold it. */
    int64_t amount = 5000;
    for (int i = 1; i < nth && amount < INT64_MAX / 4; i++)
        amount *= 2;
    *fen = amount;
    return "fine";
}
