/*  crm_cadence: the follow-up rules by intent grade (DOMAIN.md, seed 004),
 *  as pure functions of the calendar and the time, shared by crm-scheduler
 *  and the tools that show what it decided.
 *
 *  Time is ms since the epoch (UTC); every "day" is a China Standard Time
 *  day (crm_calendar). Working time is the dealer's working hours on
 *  working days.
 */
#ifndef CRM_CADENCE_H
#define CRM_CADENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "crm_calendar.h"

/* ------------------------------------------------------------ grades */

/* The grade letter's index (H 0, A 1, B 2, C 3), or -1. */
int crm_grade_index(const char *grade);
/* How often a grade must be followed up, in days (H 3, A 7, B 15, C 30);
   0 for no grade. */
int crm_grade_interval_days(const char *grade);
/* Whether an expected purchase date agrees with the grade, seen on
   `contact_day`: H within 7 days, A within 15, B within 30, C beyond 30. A
   date already passed agrees with no grade. */
bool crm_grade_date_agrees(const char *grade, int64_t expected_day, int64_t contact_day);
/* Whether the remark (a follow-up's content) starts with the grade letter. */
bool crm_grade_remark_ok(const char *grade, const char *remark);

/* ------------------------------------------------------------ follow-ups */

/* A contact: any result but an unanswered call (which changes nothing of
   the cadence). */
bool crm_followup_is_contact(const char *result);
/* An effective follow-up: answered or a visit, with content. */
bool crm_followup_is_effective(const char *result, const char *content);

/* ------------------------------------------------------------ working time */

typedef struct {
    int open_min;  /* minutes after 00:00 CST the working day starts (540: 09:00) */
    int close_min; /* ... and ends (1080: 18:00); open_min < close_min */
} crm_hours_t;

#define CRM_HOURS_DEFAULT ((crm_hours_t) {9 * 60, 18 * 60})

/* "HH:MM-HH:MM" -> hours; -1 when it is not one (or does not open before
   it closes). */
int crm_hours_parse(const char *text, crm_hours_t *out);
/* `t` moved by `delta_ms` of working time (negative: back), counting only
   the hours of working days; a `t` outside working time first moves to the
   next (or, going back, previous) working moment. */
int64_t crm_work_shift(const crm_calendar_t *cal, crm_hours_t hours, int64_t t, int64_t delta_ms);

/* When a rule "in days" falls due: `days` calendar days after the CST day
   of `from`, at the opening hour; with `shift`, a non-working day moves to
   the next working day. */
int64_t crm_cadence_due(const crm_calendar_t *cal, crm_hours_t hours, int64_t from, int days, bool shift);
/* When an activity due at `due` becomes overdue: the end of its CST day,
   `day_end_min` minutes after 00:00 (1439: 23:59 counts, 00:00 the next
   day does not), i.e. the first ms after that minute; the next day's when
   `due` is later than that. */
int64_t crm_overdue_at(int64_t due, int day_end_min);
/* "HH:MM" (00:00-23:59, exactly so) -> minutes after midnight, or -1. */
int crm_hhmm_parse(const char *text);

/* ------------------------------------------------------------ sanctions */

/* What the n-th (1-based) violation of a kind in a month costs a
   consultant (DOMAIN.md): an overdue item or an expired opportunity
   (codes overdue, expired: counted together) is first a rectification
   report, then suspension for retraining; follow-up below the required
   frequency or a date pushed out (under_frequency, pushed_out: counted
   together) is 50 yuan the first time, doubled each time after. The
   manager bears half of a consultant's fine. Returns the action
   ("rectification", "suspension", "fine") or NULL for a code no sanction
   follows; *fen gets the fine in fen (0 for the others). */
const char *crm_sanction(const char *code, int nth, int64_t *fen);
/* The class a code is counted in ("discipline", "fine"), or NULL. */
const char *crm_sanction_class(const char *code);
#define CRM_SANCTION_MANAGER_SHARE_PCT 50

#endif
