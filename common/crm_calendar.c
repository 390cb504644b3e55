/*  crm_calendar: China's working days, as data (see crm_calendar.h). */
#include "crm_calendar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DAY_MS 86400000LL
#define S_CST_MS (8LL * 3600 * 1000)
#define S_NAME_MAX 64
#define S_YEARS_MAX 64
#define S_DAYS_MAX 4096

typedef struct {
    int64_t day;
    bool work; /* a make-up working day; else a holiday */
    char name[S_NAME_MAX];
} s_entry_t;

struct crm_calendar_t {
    s_entry_t *days; /* ascending by day */
    size_t n;
    int years[S_YEARS_MAX];
    size_t nyears;
};

/* ------------------------------------------------------------ days */

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t crm_cst_day(int64_t ms) { return s_floor_div(ms + S_CST_MS, S_DAY_MS); }

int64_t crm_cst_day_start_ms(int64_t day) { return day * S_DAY_MS - S_CST_MS; }

/* Days from civil, in the proleptic Gregorian calendar (the algorithm of
   H. Hinnant's "chrono-compatible low-level date algorithms"). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = s_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void crm_day_ymd(int64_t day, int *y, int *m, int *d)
{
    int64_t z = day + 719468;
    int64_t era = s_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int) (doy - (153 * mp + 2) / 5 + 1);
    int mm = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (mm <= 2));
    *m = mm;
    *d = dd;
}

int64_t crm_day_from_ymd(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
        return INT64_MIN;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return INT64_MIN;
    return s_days_from_civil(y, m, d);
}

int crm_day_weekday(int64_t day)
{
    /* 1970-01-01 was a Thursday (4) */
    int64_t w = (day % 7 + 7) % 7; /* 0: Thursday */
    return (int) ((w + 3) % 7) + 1;
}

void crm_day_format(int64_t day, char *out, size_t size)
{
    int y, m, d;
    crm_day_ymd(day, &y, &m, &d);
    snprintf(out, size, "%04d-%02d-%02d", y, m, d);
}

int64_t crm_day_parse(const char *s)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return INT64_MIN;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return INT64_MIN;
    return crm_day_from_ymd(atoi(s), atoi(s + 5), atoi(s + 8));
}

/* ------------------------------------------------------------ the table */

static int s_cmp(const void *a, const void *b)
{
    int64_t x = ((const s_entry_t *) a)->day, y = ((const s_entry_t *) b)->day;
    return x < y ? -1 : x > y;
}

static crm_calendar_t *s_fail(crm_calendar_t *cal, char *err, size_t errsz, int line, const char *why)
{
    if (err && errsz)
        snprintf(err, errsz, "line %d: %s", line, why);
    crm_calendar_destroy(&cal);
    return NULL;
}

crm_calendar_t *crm_calendar_parse(const char *text, size_t len, char *err, size_t errsz)
{
    crm_calendar_t *cal = calloc(1, sizeof *cal);
    if (!cal || !(cal->days = calloc(S_DAYS_MAX, sizeof *cal->days)))
        return s_fail(cal, err, errsz, 0, "out of memory");
    int line = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line++;
        char buf[256];
        size_t n = end - pos;
        if (n >= sizeof buf)
            return s_fail(cal, err, errsz, line, "longer than 255 bytes");
        memcpy(buf, text + pos, n);
        buf[n] = 0;
        pos = end + 1;
        if (n && buf[n - 1] == '\r')
            buf[--n] = 0;
        char *p = buf;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        if (!strncmp(p, "year ", 5)) {
            int y = atoi(p + 5);
            if (y < 1900 || y > 9999 || strspn(p + 5, "0123456789") != 4)
                return s_fail(cal, err, errsz, line, "\"year YYYY\" expected");
            for (size_t i = 0; i < cal->nyears; i++)
                if (cal->years[i] == y)
                    return s_fail(cal, err, errsz, line, "the year is declared twice");
            if (cal->nyears == S_YEARS_MAX)
                return s_fail(cal, err, errsz, line, "more than 64 years");
            cal->years[cal->nyears++] = y;
            continue;
        }
        char date[16] = "", kind[8] = "", name[S_NAME_MAX] = "";
        int got = sscanf(p, "%15s %7s %63[^\n]", date, kind, name);
        int64_t day = crm_day_parse(date);
        if (got < 2 || day == INT64_MIN)
            return s_fail(cal, err, errsz, line, "\"YYYY-MM-DD off|work NAME\" expected");
        bool work = !strcmp(kind, "work");
        if (!work && strcmp(kind, "off"))
            return s_fail(cal, err, errsz, line, "off or work expected");
        int wd = crm_day_weekday(day);
        if (work && wd < 6)
            return s_fail(cal, err, errsz, line, "a make-up working day falls on a Saturday or Sunday");
        if (cal->n == S_DAYS_MAX)
            return s_fail(cal, err, errsz, line, "more than 4096 days");
        s_entry_t *e = &cal->days[cal->n++];
        e->day = day;
        e->work = work;
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    if (!cal->nyears)
        return s_fail(cal, err, errsz, line, "no \"year YYYY\" line: the table covers no year");
    qsort(cal->days, cal->n, sizeof *cal->days, s_cmp);
    for (size_t i = 0; i < cal->n; i++) {
        int y, m, d;
        crm_day_ymd(cal->days[i].day, &y, &m, &d);
        char date[16], why[96];
        crm_day_format(cal->days[i].day, date, sizeof date);
        if (i && cal->days[i].day == cal->days[i - 1].day) {
            snprintf(why, sizeof why, "%s is listed twice", date);
            return s_fail(cal, err, errsz, 0, why);
        }
        if (!crm_calendar_knows(cal, y)) {
            snprintf(why, sizeof why, "%s: its year has no \"year %d\" line", date, y);
            return s_fail(cal, err, errsz, 0, why);
        }
    }
    return cal;
}

crm_calendar_t *crm_calendar_default(void)
{
    return crm_calendar_parse(crm_calendar_default_text, strlen(crm_calendar_default_text), NULL, 0);
}

void crm_calendar_destroy(crm_calendar_t **cal_p)
{
    if (!cal_p || !*cal_p)
        return;
    free((*cal_p)->days);
    free(*cal_p);
    *cal_p = NULL;
}

bool crm_calendar_knows(const crm_calendar_t *cal, int year)
{
    for (size_t i = 0; cal && i < cal->nyears; i++)
        if (cal->years[i] == year)
            return true;
    return false;
}

static int s_cmp_int(const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return x < y ? -1 : x > y;
}

size_t crm_calendar_years(const crm_calendar_t *cal, int *years, size_t max)
{
    if (!cal)
        return 0;
    int sorted[S_YEARS_MAX];
    memcpy(sorted, cal->years, cal->nyears * sizeof *sorted);
    qsort(sorted, cal->nyears, sizeof *sorted, s_cmp_int);
    size_t n = cal->nyears < max ? cal->nyears : max;
    memcpy(years, sorted, n * sizeof *years);
    return n;
}

static const s_entry_t *s_find(const crm_calendar_t *cal, int64_t day)
{
    size_t lo = 0, hi = cal ? cal->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return cal && lo < cal->n && cal->days[lo].day == day ? &cal->days[lo] : NULL;
}

crm_day_kind_t crm_calendar_kind(const crm_calendar_t *cal, int64_t day, const char **name)
{
    const s_entry_t *e = s_find(cal, day);
    if (name)
        *name = e && e->name[0] ? e->name : NULL;
    if (e)
        return e->work ? CRM_DAY_MAKEUP : CRM_DAY_HOLIDAY;
    return crm_day_weekday(day) >= 6 ? CRM_DAY_WEEKEND : CRM_DAY_WORKING;
}

bool crm_calendar_working(const crm_calendar_t *cal, int64_t day)
{
    crm_day_kind_t k = crm_calendar_kind(cal, day, NULL);
    return k == CRM_DAY_WORKING || k == CRM_DAY_MAKEUP;
}

int64_t crm_calendar_next_working(const crm_calendar_t *cal, int64_t day)
{
    /* the longest run of days off in any table is far below a year */
    for (int i = 0; i < 366; i++, day++)
        if (crm_calendar_working(cal, day))
            return day;
    return day;
}

int64_t crm_calendar_add_working(const crm_calendar_t *cal, int64_t day, int n)
{
    for (int k = 0; k < n; k++)
        day = crm_calendar_next_working(cal, day + 1);
    return day;
}
