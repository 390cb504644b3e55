#include "crm_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_calendar.h"

/* ------------------------------------------------------------ audit periods */

static bool s_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int s_last_mday(int y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mdays[m - 1] + (m == 2 && leap);
}

/* A period of months first..last of `year` (valid by construction). */
static void s_period(crm_period_t *p, crm_period_kind_t kind, int year, int index)
{
    int first = kind == CRM_PERIOD_MONTH ? index : index * 3 - 2;
    int last = kind == CRM_PERIOD_MONTH ? index : index * 3;
    p->kind = kind;
    p->year = year;
    p->index = index;
    if (kind == CRM_PERIOD_MONTH)
        snprintf(p->name, sizeof p->name, "%04u-%02u", (unsigned) year % 10000u,
                 (unsigned) index % 100u);
    else
        snprintf(p->name, sizeof p->name, "%04uQ%u", (unsigned) year % 10000u,
                 (unsigned) index % 10u);
    p->first_day = crm_day_from_ymd(year, first, 1);
    p->last_day = crm_day_from_ymd(year, last, s_last_mday(year, last));
}

int crm_period_parse(const char *in, crm_period_t *out)
{
    if (!in || !out || !s_digits(in, 4))
        return -1;
    int year = atoi(in);
    if (year < 2000 || year > 2099)
        return -1;
    const char *rest = in + 4;
    size_t len = strlen(rest);
    if (len == 3 && rest[0] == '-' && s_digits(rest + 1, 2)) {
        int month = (rest[1] - '0') * 10 + rest[2] - '0';
        if (month < 1 || month > 12)
            return -1;
        s_period(out, CRM_PERIOD_MONTH, year, month);
        return 0;
    }
    if (len == 3 && rest[0] == '-')
        rest++, len--;
    if (len == 2 && (rest[0] == 'Q' || rest[0] == 'q') && rest[1] >= '1' && rest[1] <= '4') {
        s_period(out, CRM_PERIOD_QUARTER, year, rest[1] - '0');
        return 0;
    }
    return -1;
}

static int s_name_of(int64_t day, char out[8], crm_period_kind_t kind)
{
    int y, m, d;
    crm_day_ymd(day, &y, &m, &d);
    out[0] = '\0';
    if (y < 2000 || y > 2099)
        return -1;
    crm_period_t p;
    s_period(&p, kind, y, kind == CRM_PERIOD_MONTH ? m : (m + 2) / 3);
    memcpy(out, p.name, sizeof p.name);
    return 0;
}

int crm_period_month_of(int64_t day, char out[8])
{
    return s_name_of(day, out, CRM_PERIOD_MONTH);
}

int crm_period_quarter_of(int64_t day, char out[8])
{
    return s_name_of(day, out, CRM_PERIOD_QUARTER);
}

size_t crm_period_months(const crm_period_t *period, crm_period_t out[3])
{
    if (period->kind == CRM_PERIOD_MONTH) {
        out[0] = *period;
        return 1;
    }
    for (int i = 0; i < 3; i++)
        s_period(&out[i], CRM_PERIOD_MONTH, period->year, period->index * 3 - 2 + i);
    return 3;
}

bool crm_period_contains(const crm_period_t *period, int64_t day)
{
    return day >= period->first_day && day <= period->last_day;
}

/* ------------------------------------------------------------ ABC value classes */

/* Amount descending (the classified, positive amounts come first), then id
   ascending: a total order, so qsort's instability cannot show. */
static int s_abc_cmp(const void *a, const void *b)
{
    const crm_abc_row_t *x = a, *y = b;
    if (x->amount != y->amount)
        return x->amount > y->amount ? -1 : 1;
    return strncmp(x->id, y->id, sizeof x->id);
}

int crm_abc_classify(crm_abc_row_t *rows, size_t n, int a_pct, int b_pct, int64_t *total,
                     size_t *classified)
{
    if (a_pct <= 0 || a_pct >= b_pct || b_pct > 100 || (!rows && n > 0))
        return -1;
    /* The total first, so that a refusal leaves the rows as they were. */
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].amount <= 0)
            continue;
        if (rows[i].amount > CRM_ABC_MAX_TOTAL - sum)
            return -1;
        sum += rows[i].amount;
    }
    if (n > 1)
        qsort(rows, n, sizeof *rows, s_abc_cmp);
    /* running <= sum <= INT64_MAX / 20001: running * 20000 + sum and sum * 100
       cannot overflow. */
    int64_t running = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        crm_abc_row_t *row = &rows[i];
        if (row->amount <= 0) {
            row->running = 0;
            row->share_cbp = 0;
            row->cls = '\0';
            continue;
        }
        running += row->amount;
        row->running = running;
        row->share_cbp = (int32_t) ((running * 20000 + sum) / (2 * sum));
        if (running * 100 <= sum * a_pct)
            row->cls = 'A';
        else if (running * 100 <= sum * b_pct)
            row->cls = 'B';
        else
            row->cls = 'C';
        count++;
    }
    if (total)
        *total = sum;
    if (classified)
        *classified = count;
    return 0;
}

/* ------------------------------------------------------------ retention by vehicle age */

int crm_vehicle_age(int64_t sale_day, int64_t as_of_day)
{
    if (sale_day > as_of_day)
        return -1;
    int sy, sm, sd, ay, am, ad;
    crm_day_ymd(sale_day, &sy, &sm, &sd);
    crm_day_ymd(as_of_day, &ay, &am, &ad);
    /* Comparing (month, day) makes 29 February's anniversary 1 March in a
       common year: 28 February is still before it. */
    int age = ay - sy;
    if (am < sm || (am == sm && ad < sd))
        age--;
    return age;
}

bool crm_within_year(int64_t day, int64_t as_of_day)
{
    return crm_vehicle_age(day, as_of_day) == 0; /* -1 after as_of */
}

int crm_retention_bucket(int age)
{
    if (age < 0)
        return -1;
    return age < CRM_RETENTION_AGES - 1 ? age : CRM_RETENTION_AGES - 1;
}

const char *crm_retention_label(int bucket)
{
    static const char *const labels[] = {"0", "1", "2", "3", "4",   "5",
                                         "6", "7", "8", "9", "10+", "total"};
    if (bucket < 0 || bucket > CRM_RETENTION_AGES)
        return NULL;
    return labels[bucket];
}

static void s_count(crm_retention_cell_t *cell, bool active, int64_t visits)
{
    cell->sold++;
    cell->active += active;
    for (int k = 0; k < 3; k++)
        cell->came[k] += visits > k;
}

int crm_retention_add(crm_retention_t *r, int64_t as_of_day, int64_t sale_day,
                      int64_t last_service_day, int64_t visits)
{
    if (sale_day == INT64_MIN)
        return -1;
    int bucket = crm_retention_bucket(crm_vehicle_age(sale_day, as_of_day));
    if (bucket < 0)
        return -1;
    bool active = last_service_day != INT64_MIN && last_service_day >= sale_day &&
                  crm_within_year(last_service_day, as_of_day);
    s_count(&r->age[bucket], active, visits);
    s_count(&r->total, active, visits);
    return 0;
}

crm_ratio_t crm_retention_grasp(const crm_retention_cell_t *cell)
{
    return (crm_ratio_t){cell->active, cell->sold};
}

crm_ratio_t crm_retention_active_share(const crm_retention_t *r, const crm_retention_cell_t *cell)
{
    return (crm_ratio_t){cell->active, r->total.active};
}

crm_ratio_t crm_retention_came(const crm_retention_cell_t *cell, int nth)
{
    if (nth < 1 || nth > 3)
        return (crm_ratio_t){0, 0};
    return (crm_ratio_t){cell->came[nth - 1], cell->sold};
}
