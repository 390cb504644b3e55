/*  The carmaker's data-quality audit over a whole dealer network, as the
 *  CRM department reads it (DOMAIN.md, "Data-quality audit", seed 000):
 *
 *  - part one on a generated network of 100 dealers in the four sales
 *    regions: every dealer's error rate, and the summary across dealers
 *    (highest, lowest, average rate, dealers at 0), against figures the
 *    test computes from what it generated, never from the service's code;
 *  - part two on a region table built to the seed's Q1 2007 figures: the
 *    e-mail rates compared within each region, the region's best and
 *    worst, and the rebate deductions (the worst of a region, and every
 *    dealer at 90% or more, lose 0.1 point, once).
 *
 *  Each case has its own system (redis-server, crm-intake, crm-dispatcher,
 *  crm-auditor), so the two networks never see each other's dealers. The
 *  dealers' files go in as their IT sends them (crmctl customer import,
 *  one CSV per dealer, the columns of tools/DEALERS.md); runs are asked on
 *  crm-auditor's control endpoint as crmctl asks, and one figure of each
 *  case is read as a user reads it (crmctl audit show).
 *
 *  CRM_TEST_ONLY=<name> runs the cases whose name matches (cmocka filter);
 *  CRM_TEST_DEBUG=1 prints the generated network's figures.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"
#include "crm_proto.h"

typedef struct {
    crm_h_sys_t sys;
    char dir[300];
    int files;
} fx_t;

/* Every customer of the test gets its own mobile and VIN (13900000000 + n):
   the uplink merges files with the same mobile or VIN into one customer. */
static long long s_next_customer;

/* ------------------------------------------------------------ fixture */

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, false) != 0) {
        free(f);
        return -1;
    }
    crm_h_path(&f->sys.redis, "", f->dir, sizeof f->dir);
    if (crm_h_audit_system(&f->sys) != 0) {
        crm_h_sys_stop(&f->sys);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

static void s_dealer(fx_t *f, const char *id, const char *region, const char *province,
                     const char *city)
{
    int rc = crm_h_sys_crmctl(&f->sys, "dealer", "add", id, "--name", "测试店", "--province",
                              province, "--city", city, "--region", region, NULL);
    if (rc != 0)
        fail_msg("dealer add %s: %s", id, crm_h_slurp(f->sys.out));
}

/* A dealer's customer file export of `rows` records, sent as its IT sends
   it (one crmctl customer import); waits until crm-auditor has every
   record among the dealer's files. */
static void s_import(fx_t *f, const char *dealer, const char *csv, long long rows)
{
    char path[400];
    snprintf(path, sizeof path, "%s/file%d.csv", f->dir, f->files++);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(csv, fp);
    fclose(fp);
    int rc = crm_h_sys_crmctl(&f->sys, "customer", "import", path, "--dealer", dealer, NULL);
    if (rc != 0)
        fail_msg("customer import for %s: exit %d: %s", dealer, rc, crm_h_slurp(f->sys.out));
    if (crm_h_wait_int(f->sys.store, rows, 30000, "HLEN " CRM_KEY_AUDIT_FILES_FMT, dealer) != rows)
        fail_msg("crm-auditor has %lld of %s's files, not %lld",
                 crm_h_int(f->sys.store, "HLEN " CRM_KEY_AUDIT_FILES_FMT, dealer), dealer, rows);
}

/* Waits until crm-auditor has applied everything up to now. */
static void s_settle(fx_t *f)
{
    for (int i = 0; i < 400; i++) {
        long long seq = crm_h_int(f->sys.store, "GET crm:{customer}:seq");
        long long cur = crm_h_int(f->sys.store, "HGET crm:cursor:auditor customer");
        if (cur >= seq)
            return;
        usleep(50000);
    }
    fail_msg("crm-auditor did not catch up with the customer stream");
}

/* audit.run on crm-auditor's control endpoint (as crmctl audit run asks);
   the run id into `id`. */
static void s_ask(fx_t *f, const char *region, char id[32]) { crm_h_audit_ask(&f->sys, "audit", NULL, NULL, region, id, 32); }

static void s_wait_run(fx_t *f, const char *run) { crm_h_audit_wait(&f->sys, run); }

static json_t *s_figures(fx_t *f, const char *run, const char *dealer)
{
    return crm_h_audit_figures(&f->sys, run, dealer);
}

#define s_num crm_h_json_num

/* A field of the run's hash as a number (fails when absent). */
static long long s_run_num(fx_t *f, const char *run, const char *field)
{
    long long v = crm_h_int(f->sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " %s", run, field);
    if (v < 0)
        fail_msg("run %s has no %s", run, field);
    return v;
}

/* The deduction reasons of a dealer's figures (or an event), as
   "worst_in_region,at_or_above_90" ("" when none). */
static void s_reasons(const json_t *arr, char *out, size_t size)
{
    size_t i, used = 0;
    const json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && used < size)
            used += (size_t) snprintf(out + used, size - used, "%s%s", used ? "," : "",
                                      json_string_value(v));
    }
}

/* `crmctl audit show RUN [--dealer D]`, as a user reads it, prints `line` as a whole line. */
static void s_show_says(fx_t *f, const char *line, const char *run, const char *dealer)
{
    int rc = dealer ? crm_h_sys_crmctl(&f->sys, "audit", "show", run, "--dealer", dealer, NULL)
                    : crm_h_sys_crmctl(&f->sys, "audit", "show", run, NULL);
    char *out = crm_h_slurp(f->sys.out);
    if (rc != 0)
        fail_msg("crmctl audit show %s: exit %d: %s", run, rc, out);
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    bool found = strstr(out, want) != NULL;
    if (!found)
        fprintf(stderr, "crmctl audit show %s%s%s printed:\n%s\n", run, dealer ? " --dealer " : "",
                dealer ? dealer : "", out);
    free(out);
    if (!found)
        fail_msg("crmctl audit show %s does not say \"%s\"", run, line);
}

/* ------------------------------------------------------------ what the test knows */

/* Rates as the carmaker states them, computed here, not by the service:
   parts per million rounded half up, and hundredths of a percent rounded
   half up for what a user reads. */
static long long s_ppm(long long num, long long den)
{
    return den ? (num * 2000000 + den) / (2 * den) : 0;
}

static void s_pct(long long num, long long den, char *out, size_t size)
{
    long long h = den ? (num * 20000 + den) / (2 * den) : 0;
    snprintf(out, size, "%lld.%02lld%%", h / 100, h % 100);
}

/* A real VIN (GB 16735 / ISO 3779): WMI LFW, our VDS, the check digit at
   position 9, model year T (2026), plant 1, the serial. */
static int s_vin_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    static const char *const letters = "ABCDEFGHJKLMNPRSTUVWXYZ";
    static const int values[] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9};
    const char *p = strchr(letters, c);
    assert_non_null(p);
    return values[p - letters];
}

static void s_vin(long long serial, char out[18])
{
    static const int weights[17] = {8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2};
    snprintf(out, 18, "LFWADRJF0T1%06u", (unsigned) (serial % 1000000) % 1000000u);
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += s_vin_value(out[i]) * weights[i];
    out[8] = sum % 11 == 10 ? 'X' : (char) ('0' + sum % 11);
}

static uint64_t s_rng = 0x2007031ULL; /* the seed's March 2007 audit */

/* splitmix64: deterministic, the same network every run */
static uint64_t s_rand(void)
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int s_below(int n)
{
    return (int) (s_rand() % (uint64_t) n);
}

/* Part one's defects a file may carry (DOMAIN.md's rules, one each). */
enum {
    D_NO_PHONE,      /* none of the four phones */
    D_BARE_LANDLINE, /* an 8-digit landline without its area code, no mobile */
    D_NO_ADDRESS,
    D_SHORT_POSTCODE, /* 5 digits */
    D_NO_CITY,
    D_NO_PROVINCE,
    D_NO_SALE_DATE, /* a car (VIN) without its sale date */
    D_COUNT
};

static const char *const s_rule_of[D_COUNT] = {"phone", "area_code", "address",  "postcode",
                                               "city",  "province",  "sale_date"};

enum { E_NONE, E_MISSING, E_PLACEHOLDER, E_INVALID };

/* Where a dealer is: its region, a province of it, a city, the city's
   postcode and area code. */
typedef struct {
    const char *region, *province, *city, *postcode, *area;
} s_place_t;

static const s_place_t s_places[] = {
    {"北京区", "北京", "北京", "100020", "010"},  {"北京区", "河北", "石家庄", "050000", "0311"},
    {"北京区", "山东", "济南", "250000", "0531"}, {"南京区", "江苏", "南京", "210000", "025"},
    {"南京区", "浙江", "杭州", "310000", "0571"}, {"南京区", "上海", "上海", "200000", "021"},
    {"成都区", "四川", "成都", "610000", "028"},  {"成都区", "陕西", "西安", "710000", "029"},
    {"成都区", "重庆", "重庆", "400000", "023"},  {"广州区", "广东", "广州", "510000", "020"},
    {"广州区", "广西", "南宁", "530000", "0771"}, {"广州区", "海南", "海口", "570000", "0898"},
};

#define HDR "档案编号,姓名,手机,家用电话,通信地址,邮编,城市,省份,电子邮件,底盘号,开票日期\n"

/* `digits` in full-width (U+FF10..U+FF19), as some dealers' systems type them. */
static void s_fullwidth(const char *digits, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = digits; *p && n + 4 <= size; p++) {
        out[n++] = (char) 0xef;
        out[n++] = (char) 0xbc;
        out[n++] = (char) (0x90 + (*p - '0'));
    }
    out[n] = '\0';
}

/* One customer file row: `defects` (bits of D_*), an e-mail defect, and
   whether the customer has a car; appended to `csv`. */
static void s_row(char **csv, size_t *len, const char *dealer, int k, const s_place_t *pl,
                  unsigned defects, int email, bool car)
{
    long long n = s_next_customer++;
    char mobile[24] = "", home[24] = "", address[96], postcode[24], city[40], province[40],
         mail[64], vin[18] = "", sale[40] = "";
    if (defects & (1u << D_NO_SALE_DATE))
        car = true; /* a sale date is only required of a file with a car */
    if (defects & (1u << D_NO_PHONE)) {
        /* nothing in any of the four */
    } else if (defects & (1u << D_BARE_LANDLINE)) {
        snprintf(home, sizeof home, "6%07lld", n % 10000000);
    } else {
        int how = s_below(8);
        if (how == 0) /* a landline with its area code is a phone, and enough */
            snprintf(home, sizeof home, "%s-6%07lld", pl->area, n % 10000000);
        else
            snprintf(mobile, sizeof mobile, "%lld", 13900000000LL + n);
        if (how == 1)
            snprintf(home, sizeof home, "%s-8%07lld", pl->area, n % 10000000);
    }
    /* "filled" is after normalisation: a full-width space is no address, no
       city; full-width digits are digits */
    bool wide = s_below(4) == 0;
    if (defects & (1u << D_NO_ADDRESS))
        snprintf(address, sizeof address, "%s", wide ? "　" : "");
    else
        snprintf(address, sizeof address, "%s市某区某路%d号", pl->city, k + 1);
    if (defects & (1u << D_SHORT_POSTCODE))
        snprintf(postcode, sizeof postcode, "%.5s", pl->postcode);
    else if (wide)
        s_fullwidth(pl->postcode, postcode, sizeof postcode);
    else
        snprintf(postcode, sizeof postcode, "%s", pl->postcode);
    snprintf(city, sizeof city, "%s", defects & (1u << D_NO_CITY) ? (wide ? "　" : "") : pl->city);
    snprintf(province, sizeof province, "%s", defects & (1u << D_NO_PROVINCE) ? "" : pl->province);
    switch (email) {
    case E_MISSING: mail[0] = '\0'; break;
    case E_PLACEHOLDER: snprintf(mail, sizeof mail, "无"); break;
    case E_INVALID: snprintf(mail, sizeof mail, "c%lld.example.com", n); break;
    default: snprintf(mail, sizeof mail, "c%lld@example.com", n);
    }
    if (car) {
        s_vin(n, vin);
        if (!(defects & (1u << D_NO_SALE_DATE)))
            snprintf(sale, sizeof sale, "2025-%02d-%02d", 1 + s_below(12), 1 + s_below(28));
    }
    char line[512];
    int w = snprintf(line, sizeof line, "%s-%d,客户%lld,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", dealer, k, n,
                     mobile, home, address, postcode, city, province, mail, vin, sale);
    assert_true(w > 0 && (size_t) w < sizeof line);
    char *grown = realloc(*csv, *len + (size_t) w + 1);
    assert_non_null(grown);
    memcpy(grown + *len, line, (size_t) w + 1);
    *csv = grown;
    *len += (size_t) w;
}

/* ------------------------------------------------------------ part one: a network of 100 dealers
 */

#define NET_DEALERS 100

typedef struct {
    char id[16];
    const s_place_t *place;
    int files, in_error, email_err;
    int rule[D_COUNT];
} s_expect_t;

static void test_a_network_of_100_dealers_gets_each_rate_and_the_summary_exactly(void **state)
{
    fx_t *f = *state;
    static s_expect_t ex[NET_DEALERS];
    memset(ex, 0, sizeof ex);
    int64_t t0 = crm_mono_us();
    for (int d = 0; d < NET_DEALERS; d++) {
        s_expect_t *e = &ex[d];
        snprintf(e->id, sizeof e->id, "N%03d", d + 1);
        e->place = &s_places[d % (sizeof s_places / sizeof s_places[0])];
        e->files = 5 + s_below(36); /* 5..40 */
        /* one in ten keeps perfect files, two send nothing right; the
           others err with a chance of their own */
        int kind = d % 10 == 0 ? 0 : d == 1 || d == 2 ? 2 : 1;
        int chance = 5 + s_below(76); /* % of files in error */
        s_dealer(f, e->id, e->place->region, e->place->province, e->place->city);
        char *csv = strdup(HDR);
        size_t len = strlen(csv);
        for (int k = 0; k < e->files; k++) {
            unsigned defects = 0;
            if (kind == 2 || (kind == 1 && s_below(100) < chance)) {
                for (int m = 1 + s_below(3); m > 0; m--)
                    defects |= 1u << s_below(D_COUNT);
                /* the phone is missing altogether or a bare landline, not both */
                if ((defects & (1u << D_NO_PHONE)) && (defects & (1u << D_BARE_LANDLINE)))
                    defects &= ~(1u << (s_below(2) ? D_NO_PHONE : D_BARE_LANDLINE));
            }
            int email = s_below(4) == 0 ? 1 + s_below(3) : E_NONE;
            bool car = s_below(2) == 0;
            s_row(&csv, &len, e->id, k, e->place, defects, email, car);
            e->in_error += defects != 0;
            e->email_err += email != E_NONE;
            for (int r = 0; r < D_COUNT; r++)
                e->rule[r] += (defects >> r) & 1;
        }
        s_import(f, e->id, csv, e->files);
        free(csv);
    }
    s_settle(f);
    int64_t t1 = crm_mono_us();

    /* the summary, computed the carmaker's way from what was sent */
    long long audited = 0, in_error = 0, hi = -1, lo = -1, sum = 0, at_zero = 0;
    for (int d = 0; d < NET_DEALERS; d++) {
        long long ppm = s_ppm(ex[d].in_error, ex[d].files);
        audited += ex[d].files;
        in_error += ex[d].in_error;
        hi = hi < 0 || ppm > hi ? ppm : hi;
        lo = lo < 0 || ppm < lo ? ppm : lo;
        sum += ppm;
        at_zero += ex[d].in_error == 0;
        if (getenv("CRM_TEST_DEBUG"))
            fprintf(stderr, "%s %s files=%d in_error=%d email=%d ppm=%lld\n", ex[d].id,
                    ex[d].place->region, ex[d].files, ex[d].in_error, ex[d].email_err, ppm);
    }
    long long avg = (sum * 2 + NET_DEALERS) / (2 * NET_DEALERS);
    /* the network is what the case says it is: every rule of part one
       broken somewhere, perfect dealers and dealers wholly in error */
    for (int r = 0; r < D_COUNT; r++) {
        int broken = 0;
        for (int d = 0; d < NET_DEALERS; d++)
            broken += ex[d].rule[r];
        if (broken == 0)
            fail_msg("the generated network never breaks %s", s_rule_of[r]);
    }
    assert_int_equal(hi, 1000000);
    assert_int_equal(lo, 0);
    assert_true(at_zero >= 10);

    char run[32];
    s_ask(f, NULL, run);
    s_wait_run(f, run);
    int64_t t2 = crm_mono_us();

    /* every dealer's figures, exactly */
    for (int d = 0; d < NET_DEALERS; d++) {
        s_expect_t *e = &ex[d];
        json_t *j = s_figures(f, run, e->id);
        if (s_num(j, "audited") != e->files || s_num(j, "in_error") != e->in_error ||
            s_num(j, "email_in_error") != e->email_err || s_num(j, "email_audited") != e->files)
            fail_msg("%s: audited %lld in error %lld e-mail %lld/%lld; expected %d, %d, %d/%d",
                     e->id, s_num(j, "audited"), s_num(j, "in_error"), s_num(j, "email_in_error"),
                     s_num(j, "email_audited"), e->files, e->in_error, e->email_err, e->files);
        for (int r = 0; r < D_COUNT; r++) {
            char path[64];
            snprintf(path, sizeof path, "rules.%s.failed", s_rule_of[r]);
            if (s_num(j, path) != e->rule[r])
                fail_msg("%s: %s failed %lld times, expected %d", e->id, s_rule_of[r],
                         s_num(j, path), e->rule[r]);
            snprintf(path, sizeof path, "rules.%s.not_run", s_rule_of[r]);
            if (s_num(j, path) != 0)
                fail_msg("%s: %s not run for %lld records", e->id, s_rule_of[r], s_num(j, path));
        }
        json_decref(j);
    }
    /* the summary across dealers */
    assert_int_equal(s_run_num(f, run, "dealers"), NET_DEALERS);
    assert_int_equal(s_run_num(f, run, "dealers_audited"), NET_DEALERS);
    assert_int_equal(s_run_num(f, run, "audited"), audited);
    assert_int_equal(s_run_num(f, run, "in_error"), in_error);
    assert_int_equal(s_run_num(f, run, "highest_ppm"), hi);
    assert_int_equal(s_run_num(f, run, "lowest_ppm"), lo);
    assert_int_equal(s_run_num(f, run, "average_ppm"), avg);
    assert_int_equal(s_run_num(f, run, "dealers_at_zero"), at_zero);
    assert_int_equal(crm_h_events(f->sys.store, "audit", "audit.report", NULL), NET_DEALERS + 1);

    /* what the CRM department reads */
    char line[128], pct[32];
    s_pct(avg, 1000000, pct, sizeof pct);
    snprintf(line, sizeof line, "平均 average rate: %s", pct);
    s_show_says(f, line, run, NULL);
    snprintf(line, sizeof line, "零错误经销商 dealers at 0: %lld", at_zero);
    s_show_says(f, line, run, NULL);
    const s_expect_t *some = &ex[NET_DEALERS / 2 + 7];
    s_pct(some->in_error, some->files, pct, sizeof pct);
    snprintf(line, sizeof line, "错误率 error rate: %s", pct);
    s_show_says(f, line, run, some->id);
    fprintf(stderr, "network: %d dealers, %lld files imported in %.1f s, audited in %.1f s\n",
            NET_DEALERS, audited, (double) (t1 - t0) / 1e6, (double) (t2 - t1) / 1e6);
}

/* ------------------------------------------------------------ part two: the seed's region table */

typedef struct {
    const char *id;
    const s_place_t *place;
    int customers, bad;
    long long deduction_milli;
    const char *reasons;
} s_email_dealer_t;

static const s_place_t s_bj = {"北京区", "北京", "北京", "100020", "010"};
static const s_place_t s_nj = {"南京区", "江苏", "南京", "210000", "025"};
static const s_place_t s_cd = {"成都区", "四川", "成都", "610000", "028"};
static const s_place_t s_gz = {"广州区", "广东", "广州", "510000", "020"};

/* Q1 2007 (seed 000): Beijing best 240 / 3.75%, worst 275 / 100%; Nanjing
   95 / 4.21% vs 137 / 100%; Chengdu 157 / 1.27% vs 197 / 100%; a middle
   dealer in each, one of them at exactly 90% (以上 includes 90%), one at
   89.47%; and Guangzhou, whose worst is far below 90%. */
static const s_email_dealer_t s_q1[] = {
    {"BJ-A", &s_bj, 240, 9, 0, ""},
    {"BJ-B", &s_bj, 275, 275, 100, "worst_in_region,at_or_above_90"},
    {"BJ-C", &s_bj, 40, 36, 100, "at_or_above_90"},
    {"NJ-A", &s_nj, 95, 4, 0, ""},
    {"NJ-B", &s_nj, 137, 137, 100, "worst_in_region,at_or_above_90"},
    {"NJ-C", &s_nj, 38, 34, 0, ""},
    {"CD-A", &s_cd, 157, 2, 0, ""},
    {"CD-B", &s_cd, 197, 197, 100, "worst_in_region,at_or_above_90"},
    {"CD-C", &s_cd, 60, 18, 0, ""},
    {"GZ-A", &s_gz, 50, 5, 0, ""},
    {"GZ-B", &s_gz, 50, 20, 100, "worst_in_region"},
};
#define Q1_DEALERS (sizeof s_q1 / sizeof s_q1[0])

/* The region table the seed prints: best and worst of each region. */
static const struct {
    const char *region, *best, *worst;
    int dealers;
} s_q1_regions[] = {
    {"北京区", "BJ-A", "BJ-B", 3},
    {"南京区", "NJ-A", "NJ-B", 3},
    {"成都区", "CD-A", "CD-B", 3},
    {"广州区", "GZ-A", "GZ-B", 2},
};

static const s_email_dealer_t *s_q1_dealer(const char *id)
{
    for (size_t i = 0; i < Q1_DEALERS; i++)
        if (!strcmp(s_q1[i].id, id))
            return &s_q1[i];
    fail_msg("no dealer %s in the table", id);
    return NULL;
}

/* The dealer's audit.report of run `run` on stream "audit" (JSON; the
   caller decrefs); fails unless there is exactly one. */
static json_t *s_report(fx_t *f, const char *run, const char *dealer)
{
    redisReply *r = crm_store_cmd(f->sys.store, "XRANGE crm:{audit}:events - +");
    assert_non_null(r);
    json_t *found = NULL;
    int n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *fr = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_msg_t m;
        crm_err_t err;
        if (!fr || crm_msg_decode(fr->str, fr->len, &m, &err) != 0)
            continue;
        if (m.type == CRM_T_audit_report && m.body.audit_report.run_id &&
            m.body.audit_report.dealer_id && !strcmp(m.body.audit_report.run_id, run) &&
            !strcmp(m.body.audit_report.dealer_id, dealer)) {
            char *text = crm_msg_to_json(&m);
            json_t *j = text ? json_loads(text, 0, NULL) : NULL;
            free(text);
            if (j) {
                json_decref(found);
                found = j;
                n++;
            }
        }
        crm_msg_clear(&m);
    }
    freeReplyObject(r);
    if (n != 1)
        fail_msg("run %s: %d audit.report events for %s, expected 1", run, n, dealer);
    return found;
}

/* A field of an event's JSON: at the top or in its body. */
static json_t *s_event_field(json_t *ev, const char *name)
{
    json_t *v = json_object_get(ev, name);
    if (!v)
        v = json_object_get(json_object_get(ev, "body"), name);
    return v;
}

static void
test_the_seed_region_table_gives_each_region_best_and_worst_and_the_deductions(void **state)
{
    fx_t *f = *state;
    for (size_t i = 0; i < Q1_DEALERS; i++) {
        const s_email_dealer_t *d = &s_q1[i];
        s_dealer(f, d->id, d->place->region, d->place->province, d->place->city);
        /* part one clean; the bad e-mails spread over the file, of the
           three kinds (missing, 无, not an address) */
        char *csv = strdup(HDR);
        size_t len = strlen(csv);
        int bad = 0;
        for (int k = 0; k < d->customers; k++) {
            bool is_bad = (long long) (k + 1) * d->bad / d->customers >
                          (long long) k * d->bad / d->customers;
            s_row(&csv, &len, d->id, k, d->place, 0, is_bad ? 1 + bad % 3 : E_NONE, k % 2 == 0);
            bad += is_bad;
        }
        assert_int_equal(bad, d->bad);
        s_import(f, d->id, csv, d->customers);
        free(csv);
    }
    s_settle(f);
    char run[32];
    s_ask(f, NULL, run);
    s_wait_run(f, run);

    /* part two's rates, dealer by dealer, and who loses 0.1 point */
    for (size_t i = 0; i < Q1_DEALERS; i++) {
        const s_email_dealer_t *d = &s_q1[i];
        json_t *j = s_figures(f, run, d->id);
        assert_int_equal(s_num(j, "email_audited"), d->customers);
        if (s_num(j, "email_in_error") != d->bad)
            fail_msg("%s: %lld e-mail errors, expected %d", d->id, s_num(j, "email_in_error"),
                     d->bad);
        assert_int_equal(s_num(j, "in_error"), 0);
        if (s_num(j, "deduction_milli") != d->deduction_milli)
            fail_msg("%s (%d of %d e-mails bad): deduction_milli %lld, expected %lld", d->id,
                     d->bad, d->customers, s_num(j, "deduction_milli"), d->deduction_milli);
        char why[128];
        s_reasons(json_object_get(j, "deduction_reasons"), why, sizeof why);
        if (strcmp(why, d->reasons))
            fail_msg("%s: deduction reasons \"%s\", expected \"%s\"", d->id, why, d->reasons);
        json_decref(j);

        /* the same, told on the audit stream */
        json_t *ev = s_report(f, run, d->id);
        json_t *ded = s_event_field(ev, "deduction_milli");
        if (!json_is_integer(ded) || json_integer_value(ded) != d->deduction_milli)
            fail_msg("%s: audit.report deduction_milli %lld, expected %lld", d->id,
                     json_is_integer(ded) ? (long long) json_integer_value(ded) : -1LL,
                     d->deduction_milli);
        s_reasons(s_event_field(ev, "deduction_reasons"), why, sizeof why);
        if (strcmp(why, d->reasons))
            fail_msg("%s: audit.report deduction reasons \"%s\", expected \"%s\"", d->id, why,
                     d->reasons);
        json_t *em = s_event_field(ev, "email_in_error");
        assert_true(json_is_integer(em) && json_integer_value(em) == d->bad);
        json_decref(ev);
    }

    /* the region table: best and worst of each region, with their figures */
    char *text = NULL;
    redisReply *r = crm_store_cmd(f->sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " regions", run);
    assert_true(r && r->type == REDIS_REPLY_STRING);
    text = strdup(r->str);
    freeReplyObject(r);
    json_t *regions = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_array(regions));
    assert_int_equal(json_array_size(regions), 4);
    for (size_t i = 0; i < sizeof s_q1_regions / sizeof s_q1_regions[0]; i++) {
        json_t *row = NULL, *v;
        size_t k;
        json_array_foreach(regions, k, v)
        {
            if (!strcmp(json_string_value(json_object_get(v, "region"))
                            ? json_string_value(json_object_get(v, "region"))
                            : "",
                        s_q1_regions[i].region))
                row = v;
        }
        if (!row)
            fail_msg("no row for %s in the region table", s_q1_regions[i].region);
        const s_email_dealer_t *best = s_q1_dealer(s_q1_regions[i].best),
                               *worst = s_q1_dealer(s_q1_regions[i].worst);
        assert_string_equal(json_string_value(json_object_get(row, "best")), best->id);
        assert_string_equal(json_string_value(json_object_get(row, "worst")), worst->id);
        assert_int_equal(s_num(row, "dealers"), s_q1_regions[i].dealers);
        assert_int_equal(s_num(row, "best_audited"), best->customers);
        assert_int_equal(s_num(row, "best_email_in_error"), best->bad);
        assert_int_equal(s_num(row, "worst_audited"), worst->customers);
        assert_int_equal(s_num(row, "worst_email_in_error"), worst->bad);
    }
    json_decref(regions);

    /* what a user reads: the seed's figures to two decimals */
    static const struct {
        const char *dealer, *line;
    } reads[] = {
        {"BJ-A", "邮箱错误率 e-mail rate: 3.75%"},
        {"NJ-A", "邮箱错误率 e-mail rate: 4.21%"},
        {"CD-A", "邮箱错误率 e-mail rate: 1.27%"},
        {"BJ-B", "邮箱错误率 e-mail rate: 100.00%"},
        {"BJ-C", "邮箱错误率 e-mail rate: 90.00%"},
        {"BJ-C", "扣分 deduction: 0.1"},
        {"NJ-C", "邮箱错误率 e-mail rate: 89.47%"},
        {"BJ-B", "原因 why: worst_in_region, at_or_above_90"},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        s_show_says(f, reads[i].line, run, reads[i].dealer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_network_of_100_dealers_gets_each_rate_and_the_summary_exactly, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_the_seed_region_table_gives_each_region_best_and_worst_and_the_deductions, s_setup,
            s_teardown),
    };
    const char *only = getenv("CRM_TEST_ONLY");
    if (only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
