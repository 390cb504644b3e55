/*  crm_value: what a dealer's customers are worth and how many it keeps —
 *  audit periods, ABC value classes (DOMAIN.md, seed 003) and retention by
 *  vehicle age (seed 002), as pure functions: no Redis, no I/O, no floating
 *  point. Rates and shares go to the caller as exact numerator/denominator
 *  pairs (or integer hundredths of a percent); printing them is the caller's.
 *
 *  Days are day numbers (crm_calendar.h: days since 1970-01-01, CST).
 */
#ifndef CRM_VALUE_H
#define CRM_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ audit periods */

typedef enum { CRM_PERIOD_MONTH = 1, CRM_PERIOD_QUARTER = 2 } crm_period_kind_t;

typedef struct {
    crm_period_kind_t kind;
    int year;          /* 2000..2099 */
    int index;         /* the month 1..12, or the quarter 1..4 */
    char name[8];      /* canonical: "2026-11" or "2026Q4" */
    int64_t first_day; /* inclusive */
    int64_t last_day;  /* inclusive */
} crm_period_t;

/* A month "YYYY-MM" (two digits, 01..12) or a quarter "YYYYQn" / "YYYY-Qn"
   (q either case, n 1..4), nothing before or after, year 2000..2099 -> 0
   and *out; -1 for anything else (out untouched). */
int crm_period_parse(const char *in, crm_period_t *out);
/* The name of the month / quarter a day falls in ("2026-11", "2026Q4"),
   the same name crm_period_parse gives; -1 and "" when the day's year is
   outside 2000..2099 (a name crm_period_parse would refuse). */
int crm_period_month_of(int64_t day, char out[8]);
int crm_period_quarter_of(int64_t day, char out[8]);
/* The months of a period, in order, into out: 1 for a month (itself), 3 for
   a quarter; their count. */
size_t crm_period_months(const crm_period_t *period, crm_period_t out[3]);
bool crm_period_contains(const crm_period_t *period, int64_t day);

/* ------------------------------------------------------------ ABC value classes */

#define CRM_ABC_A_PCT 80 /* running share up to 80%: A (gold) */
#define CRM_ABC_B_PCT 95 /* up to 95%: B (important); the rest C (general) */
/* The largest total crm_abc_classify takes, in fen (4.6e14 fen, 4.6
   trillion yuan): its share arithmetic stays exact in int64 below it. */
#define CRM_ABC_MAX_TOTAL (INT64_MAX / 20001)

typedef struct {
    char id[64];       /* the customer (UTF-8, NUL-terminated): a name fits */
    int64_t amount;    /* paid in the period, fen */
    int64_t visits;    /* carried along for the caller; not used */
    int64_t running;   /* out: the amounts of this row and all before it */
    int32_t share_cbp; /* out: running / total in hundredths of a percent, half up */
    char cls;          /* out: 'A', 'B', 'C'; '\0' not classified */
} crm_abc_row_t;

/* Classifies a period's customers. Sorts rows in place by amount,
   descending, ties by id ascending (byte order, so the result does not
   depend on the input order); accumulates, and gives each row its class by
   its running share: running <= a_pct% of the total is A, else
   <= b_pct% is B, else C. So the customer whose running share first passes
   a boundary belongs to the lower class (82.03% is B, 95.13% C), a share of
   exactly 80% is still A and exactly 95% still B. The last classified
   customer reaches 100%, beyond 95%, and is C; a customer alone is C too
   (its share passes both boundaries at once: the lower class of the last
   one passed). Two customers with the same amount can fall on either side
   of a boundary; the id decides which comes first.

   A customer with amount <= 0 (nothing paid, or refunds) is not classified:
   it adds nothing to the total, sorts after every classified row, and gets
   running 0, share 0 and cls '\0' (the caller comparing periods sees it left
   the classes, rather than an invented C).

   *total (may be NULL) gets the sum of the positive amounts, *classified
   (may be NULL) the number of classified rows (they come first). -1 with
   rows untouched when 0 < a_pct < b_pct <= 100 does not hold, rows is NULL
   with n > 0, or the total exceeds CRM_ABC_MAX_TOTAL. */
int crm_abc_classify(crm_abc_row_t *rows, size_t n, int a_pct, int b_pct, int64_t *total,
                     size_t *classified);

/* ------------------------------------------------------------ retention by vehicle age */

/* A car's age in whole years on `as_of_day`: the anniversaries of its sale
   reached by then, so a car sold on 2024-05-10 is 0 on 2025-05-09 and 1 on
   2025-05-10. A car sold on 29 February is a year older on 1 March in a
   common year (its anniversary has not come on 28 February). -1 when the
   sale is after as_of_day. */
int crm_vehicle_age(int64_t sale_day, int64_t as_of_day);
/* Whether `day` falls in the 12 months up to `as_of_day`: (as_of - 1 year,
   as_of], i.e. on or before as_of and less than a whole year before it
   (crm_vehicle_age 0). For as_of 2026-03-15 that is 2025-03-16 .. 2026-03-15;
   for 2028-02-29, 2027-03-01 .. 2028-02-29; for 2025-02-28, 2024-02-29 ..
   2025-02-28. */
bool crm_within_year(int64_t day, int64_t as_of_day);

/* Ages 0..9, then one bucket for 10 and older. */
#define CRM_RETENTION_AGES 11

typedef struct {
    int64_t sold;    /* cars sold (with this age on as_of) */
    int64_t active;  /* ... with a service visit in the last 12 months */
    int64_t came[3]; /* ... that came back for a 1st, 2nd, 3rd service */
} crm_retention_cell_t;

/* One dealer's fleet on one day. Start from {0}: every count zero. */
typedef struct {
    crm_retention_cell_t age[CRM_RETENTION_AGES]; /* [10]: 10 years and older */
    crm_retention_cell_t total;                   /* all ages */
} crm_retention_t;

/* Counts one car of the dealer, seen on as_of_day: sold on sale_day, its
   after-sales service visits (`visits`, counted by the caller up to as_of;
   the sale itself is no visit) and the last of them (`last_service_day`,
   INT64_MIN for none). Active when that last visit is within the year of
   crm_within_year and not before the sale. 0 when counted; -1 when not: a
   sale after as_of (a future car) or no sale day (INT64_MIN). A negative
   `visits` counts as none. */
int crm_retention_add(crm_retention_t *r, int64_t as_of_day, int64_t sale_day,
                      int64_t last_service_day, int64_t visits);
/* The bucket of an age (10 and older: 10), or -1 for a negative age. */
int crm_retention_bucket(int age);
/* "0".."9", "10+"; "total" for CRM_RETENTION_AGES; NULL otherwise. */
const char *crm_retention_label(int bucket);

/* An exact rate: num / den; den 0 when there is nothing to divide. */
typedef struct {
    int64_t num, den;
} crm_ratio_t;

/* Customer grasp rate (客户掌握率): serviced in the last 12 months / sold. */
crm_ratio_t crm_retention_grasp(const crm_retention_cell_t *cell);
/* Share of the active: this cell's active / the fleet's active (all ages). */
crm_ratio_t crm_retention_active_share(const crm_retention_t *r, const crm_retention_cell_t *cell);
/* Share of the sold cars that came back for their nth (1..3) service;
   {0, 0} for another nth. */
crm_ratio_t crm_retention_came(const crm_retention_cell_t *cell, int nth);

#endif
