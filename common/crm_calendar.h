/*  crm_calendar: China's working days, as data.
 *
 *  Rules "in working days" (the day's work done the same day, a due date
 *  on a holiday moved to the next working day) need China's public
 *  holidays and the weekend make-up working days (调休), which no rule can
 *  derive: the State Council publishes them each year. They come from a
 *  table (common/data/calendar_cn.txt built in; crmctl calendar load
 *  replaces it): a date listed "off" is a holiday, one listed "work" a
 *  make-up working day, any other follows the week. A year is known only
 *  when the table says so ("year YYYY"): for an unknown year weekends are
 *  all there is, and crm_calendar_knows says it is a guess.
 *
 *  Days are day numbers: days since 1970-01-01 in China Standard Time
 *  (UTC+8, no DST), so "today" is never taken in UTC.
 */
#ifndef CRM_CALENDAR_H
#define CRM_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ days */

/* The CST day of an instant (ms since the epoch, UTC). */
int64_t crm_cst_day(int64_t ms);
/* 00:00 CST of a day, in ms since the epoch (UTC). */
int64_t crm_cst_day_start_ms(int64_t day);
/* The day of a date, or INT64_MIN when it is no date (Feb 30, month 13). */
int64_t crm_day_from_ymd(int y, int m, int d);
void crm_day_ymd(int64_t day, int *y, int *m, int *d);
/* 1 Monday .. 7 Sunday. */
int crm_day_weekday(int64_t day);
/* "YYYY-MM-DD" into out (11 bytes at least). */
void crm_day_format(int64_t day, char *out, size_t size);
/* "YYYY-MM-DD" -> day; INT64_MIN when it is not one. */
int64_t crm_day_parse(const char *s);

/* ------------------------------------------------------------ the calendar */

typedef struct crm_calendar_t crm_calendar_t;

typedef enum {
    CRM_DAY_WORKING = 0, /* Monday to Friday, not a holiday */
    CRM_DAY_WEEKEND,     /* Saturday or Sunday, not a make-up day */
    CRM_DAY_HOLIDAY,     /* listed off */
    CRM_DAY_MAKEUP       /* a Saturday or Sunday listed work (调休上班) */
} crm_day_kind_t;

/* Reads a table (the format of common/data/calendar_cn.txt: "year YYYY
   [source]" and "YYYY-MM-DD off|work NAME" lines, '#' comments). NULL with
   `err` naming the line when a line is malformed, a date is listed twice, a
   make-up day is not a Saturday or Sunday, a date's year has no "year"
   line, or there is no year at all. */
crm_calendar_t *crm_calendar_parse(const char *text, size_t len, char *err, size_t errsz);
/* The table built into the programs (common/data/calendar_cn.txt). */
crm_calendar_t *crm_calendar_default(void);
extern const char crm_calendar_default_text[];
void crm_calendar_destroy(crm_calendar_t **cal_p);

/* Whether the table covers `year` (else its days are weekends only). */
bool crm_calendar_knows(const crm_calendar_t *cal, int year);
/* The known years, ascending, into years (at most max); their count. */
size_t crm_calendar_years(const crm_calendar_t *cal, int *years, size_t max);

/* What a day is; *name (may be NULL) gets the holiday's name for a
   listed day (春节, 国庆节, ...), else NULL. */
crm_day_kind_t crm_calendar_kind(const crm_calendar_t *cal, int64_t day, const char **name);
bool crm_calendar_working(const crm_calendar_t *cal, int64_t day);
/* The first working day on or after `day`. */
int64_t crm_calendar_next_working(const crm_calendar_t *cal, int64_t day);
/* The n-th working day after `day` (n >= 1; `day` itself does not count). */
int64_t crm_calendar_add_working(const crm_calendar_t *cal, int64_t day, int n);

#endif
