/*  crm-scheduler as the CRM department and a dealer's manager see it: the
 *  cadence by intent grade, warnings and overdue at the end of the China
 *  day, holidays and make-up working days, expired opportunities, released
 *  prospects, first contacts in working hours, and timers that fire once,
 *  with two instances, after a SIGKILL, and late after an outage.
 *
 *  A real redis-server and crm-scheduler per case, on a clock the test
 *  sets (days pass in milliseconds); the uplink's and the dispatcher's
 *  events are published by the test as those services publish them.
 *
 *  CRM_TEST_ONLY=<name> runs the cases whose name matches (cmocka filter).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_cadence.h"
#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

typedef struct {
    crm_h_sys_t sys;
    char log[400];
    int64_t now;
} fx_t;

static int64_t s_cst(int y, int m, int d, int hh, int mm, int ss)
{
    return crm_cst_day_start_ms(crm_day_from_ymd(y, m, d)) + hh * HOUR_MS + mm * 60000LL + ss * 1000LL;
}

static void s_clock(fx_t *f, int64_t ms)
{
    f->now = ms;
    crm_h_sys_set_clock(&f->sys, ms);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, true) != 0) {
        free(f);
        return -1;
    }
    s_clock(f, s_cst(2026, 3, 2, 8, 0, 0));
    /* A dealer with a manager and two consultants (the uplink's registry). */
    redisReply *r = crm_store_cmd(f->sys.store, "HSET crm:dealer:D1:staff:S1 staff_id S1 role consultant manager_id M1 state active");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "HSET crm:dealer:D1:staff:S2 staff_id S2 role consultant manager_id M1 state active");
    freeReplyObject(r);
    crm_h_sys_spawn(&f->sys, "scheduler", NULL);
    crm_h_sys_log(&f->sys, "scheduler", f->log, sizeof f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    int i = crm_h_service_index("scheduler");
    bool died = f->sys.pids[i] > 0 && !crm_h_alive(f->sys.pids[i]);
    if (died)
        f->sys.pids[i] = 0;
    crm_h_sys_stop(&f->sys);
    free(f);
    if (died) {
        fprintf(stderr, "crm-scheduler died during the case\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ helpers */

static long long s_int(fx_t *f, const char *fmt, const char *a, const char *b)
{
    return crm_h_int(f->sys.store, fmt, a, b);
}

/* Waits until the scheduler has applied everything on `stream`. */
static void s_applied(fx_t *f, const char *stream)
{
    for (int i = 0; i < 1000; i++) {
        long long seq = crm_h_int(f->sys.store, "GET crm:{%s}:seq", stream);
        long long cur = crm_h_int(f->sys.store, "HGET crm:cursor:scheduler %s", stream);
        if (cur >= seq)
            return;
        usleep(10000);
    }
    fail_msg("crm-scheduler did not apply stream %s (see %s)", stream, f->log);
}

/* Waits up to `ms` until no timer due by the clock is left; how many are. */
static long long s_none_left(fx_t *f, int ms)
{
    long long n = 0;
    for (int i = 0; i < ms / 20; i++) {
        if ((n = crm_h_int(f->sys.store, "ZCOUNT crm:due:followup -inf %lld", (long long) f->now)) == 0)
            return 0;
        usleep(20000);
    }
    return n;
}

/* Moves the clock and waits until every timer due by then has fired and
   been applied. */
static void s_at(fx_t *f, int64_t ms)
{
    s_clock(f, ms);
    for (int i = 0; i < 1000; i++) {
        if (crm_h_int(f->sys.store, "ZCOUNT crm:due:followup -inf %lld", (long long) ms) == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(crm_h_int(f->sys.store, "ZCOUNT crm:due:followup -inf %lld", (long long) ms), 0);
    s_applied(f, "timer");
}

static void s_publish(fx_t *f, crm_msg_t *m, const char *producer)
{
    crm_tx_t *tx = crm_tx_new(producer, 1000000);
    assert_non_null(tx);
    m->ts = f->now;
    assert_true(crm_tx_emit(tx, m) >= 0);
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
    crm_msg_clear(m);
}

static int s_fid;

/* A follow-up as the uplink reports it (followup.recorded). */
static void s_followup(fx_t *f, const char *cid, const char *consultant, const char *result, const char *content,
                       const char *grade, const char *date, int64_t next_at, int64_t at)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_followup_recorded);
    char fid[16];
    snprintf(fid, sizeof fid, "F%d", ++s_fid);
    CRM_SET_STR(&m, followup_recorded, customer_id, cid);
    CRM_SET_STR(&m, followup_recorded, consultant_id, consultant);
    CRM_SET_STR(&m, followup_recorded, result, result);
    if (content)
        CRM_SET_STR(&m, followup_recorded, content, content);
    if (grade)
        CRM_SET_STR(&m, followup_recorded, grade, grade);
    if (date)
        CRM_SET_STR(&m, followup_recorded, expected_purchase_date, date);
    if (next_at)
        CRM_SET_I64(&m, followup_recorded, next_at, next_at);
    CRM_SET_STR(&m, followup_recorded, dealer_id, "D1");
    CRM_SET_STR(&m, followup_recorded, followup_id, fid);
    CRM_SET_I64(&m, followup_recorded, at, at);
    s_publish(f, &m, "dispatcher");
    s_applied(f, "followup");
}

static char *s_hget(fx_t *f, const char *key, const char *field)
{
    redisReply *r = crm_store_cmd(f->sys.store, "HGET %s %s", key, field);
    assert_non_null(r);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

/* The plan's open task id of customer `cid` (static buffer). */
static const char *s_task(fx_t *f, const char *cid)
{
    static char out[32];
    char key[64];
    snprintf(key, sizeof key, "crm:plan:{%s}", cid);
    char *v = s_hget(f, key, "task");
    snprintf(out, sizeof out, "%s", v ? v : "");
    free(v);
    return out;
}

static char *s_task_field(fx_t *f, const char *task, const char *field)
{
    char key[64];
    snprintf(key, sizeof key, "crm:task:%s", task);
    return s_hget(f, key, field);
}

static void s_assert_task(fx_t *f, const char *task, const char *field, const char *want)
{
    char *v = s_task_field(f, task, field);
    if (!v || strcmp(v, want))
        fail_msg("task %s %s is %s, not %s", task, field, v ? v : "(none)", want);
    free(v);
}

/* Events of `type` on `stream` whose JSON has `needle` (NULL: any). */
static int s_events(fx_t *f, const char *stream, const char *type, const char *needle)
{
    return crm_h_events(f->sys.store, stream, type, needle);
}

static int64_t s_due(fx_t *f, const char *task)
{
    char *v = s_task_field(f, task, "due_ms");
    assert_non_null(v);
    int64_t due = strtoll(v, NULL, 10);
    free(v);
    return due;
}

/* ------------------------------------------------------------ cadence */

static void test_cadence_per_grade(void **state)
{
    fx_t *f = *state;
    /* Monday 2026-03-02 10:00 China time; no next activity given. */
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    struct {
        const char *cid, *grade, *date;
        int y, m, d;
    } c[] = {
        {"CH", "H", "2026-03-06", 2026, 3, 5},  /* +3: Thursday */
        {"CA", "A", "2026-03-15", 2026, 3, 9},  /* +7: Monday */
        {"CB", "B", "2026-03-30", 2026, 3, 17}, /* +15: Tuesday */
        {"CC", "C", "2026-05-01", 2026, 4, 1},  /* +30: Wednesday */
    };
    for (size_t i = 0; i < 4; i++) {
        char content[64];
        snprintf(content, sizeof content, "%s 客户想买, 下次再约", c[i].grade);
        s_followup(f, c[i].cid, "S1", "answered", content, c[i].grade, c[i].date, 0, at);
        const char *task = s_task(f, c[i].cid);
        assert_true(task[0]);
        s_assert_task(f, task, "source", "grade");
        s_assert_task(f, task, "consultant_id", "S1");
        s_assert_task(f, task, "state", "open");
        /* Due on the grade's day at the opening hour, overdue after 23:59. */
        assert_int_equal(s_due(f, task), s_cst(c[i].y, c[i].m, c[i].d, 9, 0, 0));
        char tid[40];
        snprintf(tid, sizeof tid, "o:%s", task);
        assert_int_equal(s_int(f, "ZSCORE crm:due:followup %s", tid, NULL), s_cst(c[i].y, c[i].m, c[i].d + 1, 0, 0, 0));
        /* The missing plan is a violation, and the remark and date agree. */
        char needle[64];
        snprintf(needle, sizeof needle, "\"customer_id\":\"%s\"", c[i].cid);
        assert_int_equal(s_events(f, "followup", "followup.flagged", needle), 1);
        assert_int_equal(s_events(f, "task", "task.opened", needle), 1);
    }
    assert_int_equal(s_events(f, "followup", "followup.flagged", "\"code\":\"missing_plan\""), 4);
    assert_int_equal(crm_h_int(f->sys.store, "XLEN crm:violations:2026-03"), 4);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-02:D1 S1|missing_plan"), 4);
}

static void test_consultant_plan_and_flags(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    /* Planned by the consultant within the grade's interval: no flag. */
    s_followup(f, "C1", "S1", "answered", "A 看车, 周四再联系", "A", "2026-03-12", s_cst(2026, 3, 5, 15, 0, 0), at);
    const char *task = s_task(f, "C1");
    s_assert_task(f, task, "source", "consultant");
    assert_int_equal(s_due(f, task), s_cst(2026, 3, 5, 15, 0, 0));
    assert_int_equal(s_events(f, "followup", "followup.flagged", NULL), 0);
    /* Planned beyond the grade (A: 7 days), a remark not starting with the
       grade, and a date that disagrees with it. */
    s_followup(f, "C2", "S1", "answered", "客户还在比较", "A", "2026-06-01", s_cst(2026, 3, 20, 10, 0, 0), at);
    assert_int_equal(s_events(f, "followup", "followup.flagged", "\"code\":\"under_frequency\""), 1);
    assert_int_equal(s_events(f, "followup", "followup.flagged", "\"code\":\"remark\""), 1);
    assert_int_equal(s_events(f, "followup", "followup.flagged", "\"code\":\"grade_date\""), 1);
    /* An expected date about to pass, pushed out with the grade kept. */
    s_followup(f, "C3", "S1", "answered", "H 下周提车", "H", "2026-03-04", s_cst(2026, 3, 3, 10, 0, 0), at);
    s_followup(f, "C3", "S1", "answered", "H 再等等", "H", "2026-03-08", s_cst(2026, 3, 4, 10, 0, 0),
               at + HOUR_MS);
    assert_int_equal(s_events(f, "followup", "followup.flagged", "\"code\":\"pushed_out\""), 1);
    /* under_frequency and pushed_out are the sanctioned ones. */
    assert_int_equal(crm_h_int(f->sys.store, "XLEN crm:violations:2026-03"), 2);
}

static void test_unanswered_call_keeps_the_cadence(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "B 考虑中", "B", "2026-03-25", 0, at);
    char first[32];
    snprintf(first, sizeof first, "%s", s_task(f, "C1"));
    int64_t due = s_due(f, first);
    /* Two days later nobody answers: the plan and its due time stay. */
    s_followup(f, "C1", "S1", "no_answer", NULL, NULL, NULL, 0, at + 2 * DAY_MS);
    assert_string_equal(s_task(f, "C1"), first);
    assert_int_equal(s_due(f, first), due);
    s_assert_task(f, first, "state", "open");
    char *lc = s_hget(f, "crm:plan:{C1}", "last_contact_ms");
    assert_int_equal(strtoll(lc, NULL, 10), at);
    free(lc);
    /* A grade change at the next contact recomputes from that contact. */
    s_followup(f, "C1", "S1", "answered", "H 决定下周买", "H", "2026-03-10", 0, at + 3 * DAY_MS);
    const char *task = s_task(f, "C1");
    assert_string_not_equal(task, first);
    assert_int_equal(s_due(f, task), s_cst(2026, 3, 9, 9, 0, 0)); /* Thu 5th + 3 = Sun 8th -> Monday */
    s_assert_task(f, first, "state", "done");
}

/* ------------------------------------------------------------ enforcement */

static void test_warning_then_overdue_at_the_end_of_the_china_day(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "A 约周二下午", "A", "2026-03-12", s_cst(2026, 3, 3, 15, 0, 0), at);
    s_followup(f, "C2", "S2", "answered", "A 约周二下午", "A", "2026-03-12", s_cst(2026, 3, 3, 15, 0, 0), at);
    char t1[32], t2[32];
    snprintf(t1, sizeof t1, "%s", s_task(f, "C1"));
    snprintf(t2, sizeof t2, "%s", s_task(f, "C2"));
    /* The warning comes 2 working hours before: 13:00, not before. */
    s_at(f, s_cst(2026, 3, 3, 12, 59, 59));
    assert_int_equal(s_events(f, "followup", "followup.due", NULL), 0);
    s_at(f, s_cst(2026, 3, 3, 13, 0, 0));
    assert_int_equal(s_events(f, "followup", "followup.due", NULL), 2);
    /* C2's consultant calls at 23:59:59 China time: done that day. */
    s_clock(f, s_cst(2026, 3, 3, 23, 59, 59));
    s_followup(f, "C2", "S2", "answered", "A 已联系", "A", "2026-03-12", s_cst(2026, 3, 6, 10, 0, 0), f->now);
    s_at(f, s_cst(2026, 3, 3, 23, 59, 59) + 999);
    assert_int_equal(s_events(f, "followup", "followup.overdue", NULL), 0);
    /* 00:00:00 the next day (16:00 UTC): C1's is overdue, escalated. */
    s_at(f, s_cst(2026, 3, 4, 0, 0, 0));
    assert_int_equal(s_events(f, "followup", "followup.overdue", NULL), 1);
    assert_int_equal(s_events(f, "followup", "followup.overdue", "\"manager_id\":\"M1\""), 1);
    assert_int_equal(s_events(f, "followup", "followup.overdue", "\"day\":\"2026-03-03\""), 1);
    /* The manager is told on the dealer channel. */
    assert_int_equal(s_events(f, "notify", "notify.request", "\"channel\":\"dealer\",\"to\":\"D1\",\"template\":\"followup_overdue\""), 1);
    assert_int_equal(s_events(f, "notify", "notify.request", "manager_id=M1"), 1);
    s_assert_task(f, t1, "state", "overdue");
    s_assert_task(f, t2, "state", "done");
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-03:D1 S1|overdue"), 1);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-03:D1 S1|due"), 1);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-03:D1 S2|done"), 1);
    redisReply *r = crm_store_cmd(f->sys.store, "XRANGE crm:violations:2026-03 - +");
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    assert_string_equal(crm_reply_field(r->element[0]->element[1], "code"), "overdue");
    assert_string_equal(crm_reply_field(r->element[0]->element[1], "records"), t1);
    assert_string_equal(crm_reply_field(r->element[0]->element[1], "manager_id"), "M1");
    freeReplyObject(r);
    /* Done late: closed, marked overdue, never overdue twice. */
    s_followup(f, "C1", "S1", "answered", "A 补打电话", "A", "2026-03-12", s_cst(2026, 3, 6, 10, 0, 0), f->now + HOUR_MS);
    s_assert_task(f, t1, "state", "done");
    assert_int_equal(s_events(f, "task", "task.closed", "\"overdue\":true"), 1);
}

/* Done the next morning while the scheduler was down: its overdue check
   had not fired yet, and the activity counts overdue all the same, once. */
static void test_done_late_while_the_scheduler_was_down_is_overdue_once(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "A 周二下午", "A", "2026-03-12", s_cst(2026, 3, 3, 15, 0, 0), at);
    char task[32];
    snprintf(task, sizeof task, "%s", s_task(f, "C1"));
    crm_h_sys_kill(&f->sys, "scheduler", SIGTERM);
    /* Wednesday 10:00: the uplink records the call, the scheduler is back. */
    s_clock(f, s_cst(2026, 3, 4, 10, 0, 0));
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_followup_recorded);
    CRM_SET_STR(&m, followup_recorded, customer_id, "C1");
    CRM_SET_STR(&m, followup_recorded, consultant_id, "S1");
    CRM_SET_STR(&m, followup_recorded, result, "answered");
    CRM_SET_STR(&m, followup_recorded, content, "A 晚了一天");
    CRM_SET_STR(&m, followup_recorded, dealer_id, "D1");
    CRM_SET_STR(&m, followup_recorded, followup_id, "F900");
    CRM_SET_I64(&m, followup_recorded, next_at, s_cst(2026, 3, 6, 10, 0, 0));
    CRM_SET_I64(&m, followup_recorded, at, f->now);
    s_publish(f, &m, "dispatcher");
    crm_h_sys_spawn(&f->sys, "scheduler", NULL);
    s_applied(f, "followup");
    s_at(f, f->now + 1000);
    s_assert_task(f, task, "state", "done");
    assert_int_equal(s_events(f, "followup", "followup.overdue", "\"late_ms\":"), 1);
    assert_int_equal(s_events(f, "followup", "followup.overdue", NULL), 1);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-03:D1 S1|overdue"), 1);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-03:D1 S1|done_late"), 1);
    assert_int_equal(crm_h_int(f->sys.store, "XLEN crm:violations:2026-03"), 1);
}

static void test_holiday_and_make_up_working_day(void **state)
{
    fx_t *f = *state;
    /* H on Monday 2026-09-28: +3 is 1 October (National Day) -> 8 October. */
    int64_t at = s_cst(2026, 9, 28, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "H 节后提车", "H", "2026-10-02", 0, at);
    assert_int_equal(s_due(f, s_task(f, "C1")), s_cst(2026, 10, 8, 9, 0, 0));
    /* H on 7 October: +3 is Saturday 10 October, a make-up working day. */
    at = s_cst(2026, 10, 7, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C2", "S1", "answered", "H 周六来店", "H", "2026-10-12", 0, at);
    assert_int_equal(s_due(f, s_task(f, "C2")), s_cst(2026, 10, 10, 9, 0, 0));
    /* An ordinary weekend: Wednesday 2026-03-04 + 3 = Saturday -> Monday. */
    at = s_cst(2026, 3, 4, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C3", "S1", "answered", "H 周末看车", "H", "2026-03-09", 0, at);
    assert_int_equal(s_due(f, s_task(f, "C3")), s_cst(2026, 3, 9, 9, 0, 0));
}

static void test_expired_opportunity_and_order(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "H 本周买", "H", "2026-03-05", s_cst(2026, 3, 4, 10, 0, 0), at);
    s_followup(f, "C2", "S2", "answered", "H 本周买", "H", "2026-03-05", s_cst(2026, 3, 4, 10, 0, 0), at);
    /* C2 orders. */
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_order_placed);
    CRM_SET_STR(&m, order_placed, order_id, "O1");
    CRM_SET_STR(&m, order_placed, dealer_id, "D1");
    CRM_SET_STR(&m, order_placed, customer_id, "C2");
    s_publish(f, &m, "dispatcher");
    s_applied(f, "order");
    s_at(f, s_cst(2026, 3, 5, 23, 59, 59));
    assert_int_equal(s_events(f, "followup", "opportunity.expired", NULL), 0);
    s_at(f, s_cst(2026, 3, 6, 0, 0, 0));
    assert_int_equal(s_events(f, "followup", "opportunity.expired", NULL), 1);
    assert_int_equal(s_events(f, "followup", "opportunity.expired", "\"customer_id\":\"C1\""), 1);
    assert_int_equal(s_events(f, "followup", "opportunity.expired", "\"manager_id\":\"M1\""), 1);
    assert_int_equal(s_events(f, "notify", "notify.request", "\"template\":\"opportunity_expired\""), 1);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:report:2026-03-05:D1 S1|expired"), 1);
}

static void test_release_after_30_days_without_an_effective_followup(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "C 明年再说", "C", "2026-06-01", s_cst(2026, 3, 20, 10, 0, 0), at);
    s_followup(f, "C2", "S1", "answered", "C 明年再说", "C", "2026-06-01", s_cst(2026, 3, 20, 10, 0, 0), at);
    /* C2 gets an effective follow-up on day 20; C1 only unanswered calls. */
    s_clock(f, at + 20 * DAY_MS);
    s_followup(f, "C1", "S1", "no_answer", NULL, NULL, NULL, 0, f->now);
    s_followup(f, "C2", "S1", "visit", "C 来店看了新款", "C", "2026-06-01", s_cst(2026, 4, 10, 10, 0, 0), f->now);
    s_at(f, at + 30 * DAY_MS - 1);
    assert_int_equal(s_events(f, "followup", "prospect.released", NULL), 0);
    s_at(f, at + 30 * DAY_MS);
    assert_int_equal(s_events(f, "followup", "prospect.released", "\"customer_id\":\"C1\""), 1);
    assert_int_equal(s_events(f, "followup", "prospect.released", NULL), 1);
    char *rel = s_hget(f, "crm:plan:{C1}", "released");
    assert_string_equal(rel, "1");
    free(rel);
}

static void test_first_contact_within_24_working_hours(void **state)
{
    fx_t *f = *state;
    /* Dispatched Friday 2026-03-06 17:00: 1 h Friday, 9 h Monday, 9 h
       Tuesday, 5 h Wednesday -> due Wednesday 14:00. */
    s_clock(f, s_cst(2026, 3, 6, 17, 0, 0));
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_owner_changed);
    CRM_SET_STR(&m, owner_changed, customer_id, "C1");
    CRM_SET_STR(&m, owner_changed, dealer_id, "D1");
    CRM_SET_STR(&m, owner_changed, reason, "testdrive_dispatched");
    s_publish(f, &m, "dispatcher");
    s_applied(f, "customer");
    const char *task = s_task(f, "C1");
    s_assert_task(f, task, "kind", "first_contact");
    assert_int_equal(s_due(f, task), s_cst(2026, 3, 11, 14, 0, 0));
    /* Assigned to S2: the task is S2's now, in S2's list. */
    crm_msg_init(&m, CRM_T_owner_changed);
    CRM_SET_STR(&m, owner_changed, customer_id, "C1");
    CRM_SET_STR(&m, owner_changed, dealer_id, "D1");
    CRM_SET_STR(&m, owner_changed, consultant_id, "S2");
    CRM_SET_STR(&m, owner_changed, reason, "first_followup");
    s_publish(f, &m, "dispatcher");
    s_applied(f, "customer");
    assert_string_equal(s_task(f, "C1"), task);
    s_assert_task(f, task, "consultant_id", "S2");
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S2"), 1);
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:-"), 0);
}

static void test_dealers_own_working_hours(void **state)
{
    fx_t *f = *state;
    /* D2 works 10:00-16:00 (crm:dealer:<D> hours, set by crm-dispatcher). */
    redisReply *r = crm_store_cmd(f->sys.store, "HSET crm:dealer:D2 hours 10:00-16:00");
    freeReplyObject(r);
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_followup_recorded);
    CRM_SET_STR(&m, followup_recorded, customer_id, "C1");
    CRM_SET_STR(&m, followup_recorded, consultant_id, "S9");
    CRM_SET_STR(&m, followup_recorded, result, "answered");
    CRM_SET_STR(&m, followup_recorded, content, "H 周四");
    CRM_SET_STR(&m, followup_recorded, grade, "H");
    CRM_SET_STR(&m, followup_recorded, dealer_id, "D2");
    CRM_SET_I64(&m, followup_recorded, at, at);
    s_publish(f, &m, "dispatcher");
    s_applied(f, "followup");
    /* Due at D2's opening hour; warned 2 working hours before: 14:00 the
       day before (D2 closes at 16:00). */
    const char *task = s_task(f, "C1");
    assert_int_equal(s_due(f, task), s_cst(2026, 3, 5, 10, 0, 0));
    char tid[40];
    snprintf(tid, sizeof tid, "w:%s", task);
    assert_int_equal(s_int(f, "ZSCORE crm:due:followup %s", tid, NULL), s_cst(2026, 3, 4, 14, 0, 0));
    /* First contact in 24 working hours of D2 (6 a day), from Monday 15:00:
       1 h Monday, 6 Tuesday, Wednesday, Thursday, 5 h Friday -> 15:00. */
    s_clock(f, s_cst(2026, 3, 2, 15, 0, 0));
    crm_msg_init(&m, CRM_T_owner_changed);
    CRM_SET_STR(&m, owner_changed, customer_id, "C2");
    CRM_SET_STR(&m, owner_changed, dealer_id, "D2");
    CRM_SET_STR(&m, owner_changed, reason, "testdrive_dispatched");
    s_publish(f, &m, "dispatcher");
    s_applied(f, "customer");
    assert_int_equal(s_due(f, s_task(f, "C2")), s_cst(2026, 3, 6, 15, 0, 0));
}

/* ------------------------------------------------------------ crmctl */

/* What the last crmctl printed holds `needle`. */
static void s_out_has(fx_t *f, const char *needle)
{
    char *out = crm_h_slurp(f->sys.out);
    bool has = out && strstr(out, needle);
    if (!has) {
        fprintf(stderr, "crmctl printed:\n%s\n", out ? out : "(nothing)");
        free(out);
        fail_msg("crmctl printed no \"%s\"", needle);
    }
    free(out);
}

static void test_crmctl_calendar_tasks_and_daily_report(void **state)
{
    fx_t *f = *state;
    char path[300];
    crm_h_path(&f->sys.redis, "calendar.txt", path, sizeof path);
    /* A table of the carmaker's own: 5 March 2026 off. */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("year 2026 test\n2026-03-05 off 测试假日\n", fp);
    fclose(fp);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "calendar", "load", path, NULL), 0);
    assert_int_equal(s_events(f, "ops", "calendar.loaded", "\"source\":\"calendar.txt\""), 1);
    s_applied(f, "ops");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "calendar", "show", "--year", "2026", NULL), 0);
    s_out_has(f, "2026-03-05 off  测试假日");
    /* A malformed one is refused, naming its line; the table stays. */
    fp = fopen(path, "w");
    fputs("year 2026 test\n2026-02-30 off 不存在\n", fp);
    fclose(fp);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "calendar", "load", path, NULL), 1);
    s_out_has(f, "line 2");
    /* H on Monday 2 March: +3 is the 5th, off in this table -> the 6th. */
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "H 周五来", "H", "2026-03-06", 0, at);
    s_followup(f, "C2", "S2", "answered", "A 下周二来", "A", "2026-03-12", s_cst(2026, 3, 3, 11, 0, 0), at);
    assert_int_equal(s_due(f, s_task(f, "C1")), s_cst(2026, 3, 6, 9, 0, 0));
    s_at(f, s_cst(2026, 3, 4, 0, 0, 0)); /* C2's is overdue */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "tasks", "list", "--dealer", "D1", NULL), 0);
    s_out_has(f, "2026-03-06 09:00");
    s_out_has(f, "# 2 open tasks");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "tasks", "list", "--overdue", NULL), 0);
    s_out_has(f, "# 1 open task\n");
    s_out_has(f, "C2");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "tasks", "list", "--dealer", "D1", "--consultant", "S1",
                                      "--due-before", "2026-03-06 08:59", NULL), 0);
    s_out_has(f, "# 0 open tasks");
    /* The day's report: S2 and their manager M1 each one due, one overdue. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "report", "daily", "--date", "2026-03-03", "--json", NULL), 0);
    s_out_has(f, "\"role\":\"consultant\",\"staff_id\":\"S2\",\"due\":1,\"done\":0,\"done_late\":0,\"overdue\":1");
    s_out_has(f, "\"role\":\"manager\",\"staff_id\":\"M1\",\"due\":1,\"done\":0,\"done_late\":0,\"overdue\":1");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "report", "daily", "--date", "2026-03-02", "--dealer", "D1", NULL), 0);
    s_out_has(f, "missing_");
}

/* A month of made-up history, its sanctions worked out by hand. */
static void test_sanctions_for_a_month(void **state)
{
    fx_t *f = *state;
    int64_t mon = s_cst(2026, 3, 2, 10, 0, 0), tue = s_cst(2026, 3, 3, 9, 0, 0);
    s_clock(f, mon);
    /* S1: two tasks left undone (overdue at 00:00 on the 4th). */
    s_followup(f, "C1", "S1", "answered", "A 周二再打", "A", "2026-03-12", s_cst(2026, 3, 3, 15, 0, 0), mon);
    s_followup(f, "C2", "S1", "answered", "A 周二再打", "A", "2026-03-12", s_cst(2026, 3, 3, 16, 0, 0), mon);
    /* S1: next activities later than the grade allows (A 7 days, B 15). */
    s_followup(f, "C4", "S1", "answered", "A 月底再说", "A", "2026-03-12", s_cst(2026, 3, 20, 10, 0, 0), mon);
    s_followup(f, "C5", "S1", "answered", "B 下月再说", "B", "2026-03-25", s_cst(2026, 4, 30, 10, 0, 0), mon);
    /* S1: C3's expected date (the 4th) passes without an order. */
    s_followup(f, "C3", "S1", "answered", "H 周三提车", "H", "2026-03-04", s_cst(2026, 3, 3, 8, 30, 0), mon);
    /* S1: C6's date, about to pass, pushed out with the grade kept. */
    s_followup(f, "C6", "S1", "answered", "H 周三提车", "H", "2026-03-04", s_cst(2026, 3, 3, 8, 30, 0), mon);
    /* S2 (also M1's): one late plan. */
    s_followup(f, "C7", "S2", "answered", "A 月底再说", "A", "2026-03-12", s_cst(2026, 3, 25, 10, 0, 0), mon);
    s_clock(f, tue);
    s_followup(f, "C3", "S1", "answered", "H 明天提车", NULL, NULL, s_cst(2026, 3, 5, 10, 0, 0), tue);
    s_followup(f, "C6", "S1", "answered", "H 下周一提车", "H", "2026-03-09", s_cst(2026, 3, 5, 10, 0, 0), tue);
    s_at(f, s_cst(2026, 3, 5, 0, 0, 1));
    /* By hand: S1 overdue C1 (1st: rectification), overdue C2 (2nd:
       suspension), expired C3 (3rd: suspension); under-frequency C4 50,
       C5 100 (doubled), pushed out C6 200. S2: C7 50. M1 bears half. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "report", "sanctions", "--month", "2026-03", "--json", NULL), 0);
    s_out_has(f, "\"consultant_id\":\"S1\",\"day\":\"2026-03-02\",\"violation\":\"under_frequency\",\"nth\":1,\"action\":\"fine\",\"fine_fen\":5000,\"manager_id\":\"M1\",\"manager_fen\":2500,\"customer_id\":\"C4\"");
    s_out_has(f, "\"violation\":\"under_frequency\",\"nth\":2,\"action\":\"fine\",\"fine_fen\":10000,\"manager_id\":\"M1\",\"manager_fen\":5000,\"customer_id\":\"C5\"");
    s_out_has(f, "\"day\":\"2026-03-03\",\"violation\":\"pushed_out\",\"nth\":3,\"action\":\"fine\",\"fine_fen\":20000,\"manager_id\":\"M1\",\"manager_fen\":10000,\"customer_id\":\"C6\"");
    s_out_has(f, "\"violation\":\"overdue\",\"nth\":1,\"action\":\"rectification\",\"fine_fen\":0,\"manager_id\":\"M1\",\"manager_fen\":0,\"customer_id\":\"C1\"");
    s_out_has(f, "\"violation\":\"overdue\",\"nth\":2,\"action\":\"suspension\",\"fine_fen\":0,\"manager_id\":\"M1\",\"manager_fen\":0,\"customer_id\":\"C2\"");
    s_out_has(f, "\"day\":\"2026-03-04\",\"violation\":\"expired\",\"nth\":3,\"action\":\"suspension\"");
    s_out_has(f, "\"consultant_id\":\"S2\",\"day\":\"2026-03-02\",\"violation\":\"under_frequency\",\"nth\":1,\"action\":\"fine\",\"fine_fen\":5000");
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "report", "sanctions", "--month", "2026-03", NULL), 0);
    s_out_has(f, "# 7 entries; fines 400.00 yuan, borne by managers 200.00 yuan");
    /* The CSV opens in Excel: UTF-8 with a BOM, ids as text. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "report", "sanctions", "--month", "2026-03", "--csv", NULL), 0);
    char *csv = crm_h_slurp(f->sys.out);
    assert_non_null(csv);
    assert_memory_equal(csv, "\xEF\xBB\xBF", 3);
    assert_non_null(strstr(csv, "\"=\"\"S1\"\"\",\"2026-03-02\",\"under_frequency\",1,\"fine\",50.00,\"=\"\"M1\"\"\",25.00"));
    free(csv);
}

/* ------------------------------------------------------------ care */

static void s_emit_one(fx_t *f, crm_msg_t *m, const char *stream)
{
    s_publish(f, m, "dispatcher");
    s_applied(f, stream);
}

static void test_reminders_and_care(void **state)
{
    fx_t *f = *state;
    int64_t mon = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, mon);
    redisReply *r = crm_store_cmd(f->sys.store,
                                  "HSET crm:cust:{P1} mobile 13800000001 dealer_id D1 consultant_id S1 stage prospect");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "HSET crm:td:T1 customer_id P1 dealer_id D1 at %lld status dispatched",
                      (long long) s_cst(2026, 3, 6, 15, 0, 0));
    freeReplyObject(r);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_testdrive_dispatched);
    CRM_SET_STR(&m, testdrive_dispatched, testdrive_id, "T1");
    CRM_SET_STR(&m, testdrive_dispatched, dealer_id, "D1");
    CRM_SET_I64(&m, testdrive_dispatched, dealer_seq, 1);
    s_emit_one(f, &m, "testdrive");
    /* T-1 (Thursday 5th) 09:00: the prospect is reminded, the dealer calls. */
    s_at(f, s_cst(2026, 3, 5, 8, 59, 59));
    assert_int_equal(s_events(f, "notify", "notify.request", "testdrive_reminder"), 0);
    s_at(f, s_cst(2026, 3, 5, 9, 0, 0));
    assert_int_equal(s_events(f, "notify", "notify.request", "\"to\":\"13800000001\",\"template\":\"testdrive_reminder\""), 1);
    assert_int_equal(s_events(f, "task", "task.opened", "\"kind\":\"testdrive_remind\""), 1);
    /* The next working day after it (Monday 9th): the feedback call. */
    s_at(f, s_cst(2026, 3, 9, 9, 0, 0));
    assert_int_equal(s_events(f, "task", "task.opened", "\"consultant_id\":\"S1\",\"kind\":\"testdrive_feedback\""), 1);

    /* A delivery delayed: the customer is told at once, a call before the
       old promised date. */
    crm_msg_init(&m, CRM_T_delivery_delayed);
    CRM_SET_STR(&m, delivery_delayed, order_id, "O1");
    CRM_SET_STR(&m, delivery_delayed, dealer_id, "D1");
    CRM_SET_STR(&m, delivery_delayed, customer_id, "P1");
    CRM_SET_STR(&m, delivery_delayed, promised_date, "2026-03-20");
    CRM_SET_STR(&m, delivery_delayed, old_promised_date, "2026-03-10");
    CRM_SET_STR(&m, delivery_delayed, reason, "船期延误");
    s_emit_one(f, &m, "order");
    assert_int_equal(s_events(f, "notify", "notify.request", "\"template\":\"delivery_delayed\""), 1);
    assert_int_equal(s_events(f, "notify", "notify.request", "promised_date=2026-03-20"), 1);
    assert_int_equal(s_events(f, "task", "task.opened", "\"kind\":\"delay_notice\""), 1);

    /* Birthdays: greeted on the day, never for the 1900-01-01 sentinel. */
    r = crm_store_cmd(f->sys.store, "HSET crm:cust:{P2} mobile 13800000002 birthday 1985-03-11");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "HSET crm:cust:{P3} mobile 13800000003 birthday 1900-01-01");
    freeReplyObject(r);
    for (int i = 2; i <= 3; i++) {
        crm_msg_init(&m, CRM_T_customer_updated);
        CRM_SET_STR(&m, customer_updated, customer_id, i == 2 ? "P2" : "P3");
        crm_strs_push(&m.body.customer_updated.fields, "birthday");
        m.body.customer_updated.has.fields = true;
        s_emit_one(f, &m, "customer");
    }
    redisReply *z = crm_store_cmd(f->sys.store, "ZSCORE crm:due:followup b:P3");
    assert_int_equal(z->type, REDIS_REPLY_NIL);
    freeReplyObject(z);
    s_at(f, s_cst(2026, 3, 11, 9, 0, 0));
    assert_int_equal(s_events(f, "notify", "notify.request", "\"template\":\"birthday_greeting\""), 1);
    assert_int_equal(s_events(f, "notify", "notify.request", "\"to\":\"13800000002\""), 1);
    /* Next year's is set. */
    assert_int_equal(crm_h_int(f->sys.store, "ZSCORE crm:due:followup b:P2"), s_cst(2027, 3, 11, 9, 0, 0));

    /* An owner: call-backs 7, 30, 90 days after delivery, a service reminder. */
    r = crm_store_cmd(f->sys.store, "HSET crm:cust:{P4} mobile 13800000004 dealer_id D1 consultant_id S2 stage owner");
    freeReplyObject(r);
    crm_msg_init(&m, CRM_T_vehicle_delivered);
    CRM_SET_STR(&m, vehicle_delivered, order_id, "O2");
    CRM_SET_STR(&m, vehicle_delivered, dealer_id, "D1");
    CRM_SET_STR(&m, vehicle_delivered, customer_id, "P4");
    CRM_SET_STR(&m, vehicle_delivered, vin, "LSGJA52H0EH123456");
    CRM_SET_STR(&m, vehicle_delivered, date, "2026-03-11");
    s_emit_one(f, &m, "order");
    s_at(f, s_cst(2026, 3, 18, 9, 0, 0));
    assert_int_equal(s_events(f, "task", "task.opened", "\"customer_id\":\"P4\",\"dealer_id\":\"D1\",\"consultant_id\":\"S2\",\"kind\":\"owner_callback\""), 1);
    assert_int_equal(crm_h_int(f->sys.store, "ZSCORE crm:due:followup s:P4"), s_cst(2026, 3, 11, 9, 0, 0) + 180 * DAY_MS);
    /* A service visit moves the reminder. */
    crm_msg_init(&m, CRM_T_service_recorded);
    CRM_SET_STR(&m, service_recorded, customer_id, "P4");
    CRM_SET_STR(&m, service_recorded, dealer_id, "D1");
    CRM_SET_STR(&m, service_recorded, work_order, "W1");
    CRM_SET_STR(&m, service_recorded, date, "2026-03-18");
    s_emit_one(f, &m, "service");
    assert_int_equal(crm_h_int(f->sys.store, "ZSCORE crm:due:followup s:P4"), s_cst(2026, 3, 18, 9, 0, 0) + 180 * DAY_MS);

    /* Holiday greetings from the calendar: 清明节 starts Saturday 4 April. */
    s_at(f, s_cst(2026, 4, 4, 9, 0, 0));
    assert_int_equal(s_events(f, "notify", "notify.request", "\"to\":\"segment:owners\",\"template\":\"holiday_greeting\""), 1);
    assert_int_equal(s_events(f, "notify", "notify.request", "holiday=清明节"), 1);
}

static void test_grade_changed_in_a_customer_file(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "C 明年", "C", "2026-06-01", 0, at);
    char first[32];
    snprintf(first, sizeof first, "%s", s_task(f, "C1"));
    assert_int_equal(s_due(f, first), s_cst(2026, 4, 1, 9, 0, 0));
    /* The dealer's file says H now: due 3 days after the last contact. */
    redisReply *r = crm_store_cmd(f->sys.store, "HSET crm:cust:{C1} grade H");
    freeReplyObject(r);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_customer_recorded);
    CRM_SET_STR(&m, customer_recorded, customer_id, "C1");
    CRM_SET_STR(&m, customer_recorded, dealer_id, "D1");
    CRM_SET_STR(&m, customer_recorded, record_id, "file-1");
    CRM_SET_STR(&m, customer_recorded, channel, "dealer:D1");
    CRM_SET_BOOL(&m, customer_recorded, created, false);
    crm_strs_push(&m.body.customer_recorded.fields, "grade");
    m.body.customer_recorded.has.fields = true;
    s_emit_one(f, &m, "customer");
    const char *task = s_task(f, "C1");
    assert_string_not_equal(task, first);
    assert_int_equal(s_due(f, task), s_cst(2026, 3, 5, 9, 0, 0));
    s_assert_task(f, first, "state", "replaced");
}

/* ------------------------------------------------------------ people */

/* The scheduler with the dispatcher (the uplink's control endpoint): dealer
   D1 with manager M1, consultants S1 and S2, director DIR. */
static int setup_people(void **state)
{
    if (setup(state) != 0)
        return -1;
    fx_t *f = *state;
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    redisReply *r = crm_store_cmd(f->sys.store, "DEL crm:dealer:D1:staff:S1 crm:dealer:D1:staff:S2");
    freeReplyObject(r);
    int rc = crm_h_sys_crmctl(&f->sys, "dealer", "add", "D1", "--name", "测试店", "--province", "广东", "--city", "深圳",
                              NULL);
    const char *staff[][3] = {{"DIR", "director", ""}, {"M1", "manager", ""}, {"S1", "consultant", "M1"},
                              {"S2", "consultant", "M1"}};
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = staff[i][2][0] ? crm_h_sys_crmctl(&f->sys, "staff", "add", staff[i][0], "--dealer", "D1", "--role",
                                               staff[i][1], "--name", "某某", "--manager", staff[i][2], NULL)
                            : crm_h_sys_crmctl(&f->sys, "staff", "add", staff[i][0], "--dealer", "D1", "--role",
                                               staff[i][1], "--name", "某某", NULL);
    if (rc != 0) {
        fprintf(stderr, "setup_people: crmctl failed (see %s)\n", f->sys.out);
        teardown(state);
        return -1;
    }
    return 0;
}

/* `n` customers P1..Pn of D1 owned by `consultant`, as the uplink keeps
   them, and the owner.changed it emitted for each. */
static void s_customers(fx_t *f, int n, const char *consultant)
{
    crm_tx_t *tx = crm_tx_new("dispatcher", 1000000);
    for (int i = 1; i <= n; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "P%d", i);
        crm_tx_cmd(tx, "HSET crm:cust:{%s} name 客户 mobile 1380000%04d dealer_id D1 consultant_id %s stage prospect", cid,
                   i, consultant);
        crm_tx_cmd(tx, "SADD crm:dealer:D1:customers %s", cid);
        crm_tx_cmd(tx, "SADD crm:dealer:D1:staff:%s:customers %s", consultant, cid);
        crm_msg_t m;
        crm_msg_init(&m, CRM_T_owner_changed);
        CRM_SET_STR(&m, owner_changed, customer_id, cid);
        CRM_SET_STR(&m, owner_changed, dealer_id, "D1");
        CRM_SET_STR(&m, owner_changed, consultant_id, consultant);
        CRM_SET_STR(&m, owner_changed, reason, "assigned");
        m.ts = f->now;
        crm_tx_emit(tx, &m);
        crm_msg_clear(&m);
    }
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
    s_applied(f, "customer");
}

static void test_reassignment_under_load_and_its_undo(void **state)
{
    fx_t *f = *state;
    s_clock(f, s_cst(2026, 3, 2, 10, 0, 0));
    s_customers(f, 300, "S1");
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S1"), 300);
    /* S1 leaves: while a burst of S1's last follow-ups is still being
       applied, the director reassigns everything to S2. */
    crm_tx_t *tx = crm_tx_new("dispatcher", 1000000);
    for (int i = 1; i <= 300; i++) {
        char cid[16], fid[16];
        snprintf(cid, sizeof cid, "P%d", i);
        snprintf(fid, sizeof fid, "FL%d", i);
        crm_msg_t m;
        crm_msg_init(&m, CRM_T_followup_recorded);
        CRM_SET_STR(&m, followup_recorded, customer_id, cid);
        CRM_SET_STR(&m, followup_recorded, consultant_id, "S1");
        CRM_SET_STR(&m, followup_recorded, result, "answered");
        CRM_SET_STR(&m, followup_recorded, content, "A 交接前最后一次联系");
        CRM_SET_STR(&m, followup_recorded, grade, "A");
        CRM_SET_I64(&m, followup_recorded, next_at, s_cst(2026, 3, 5, 10, 0, 0));
        CRM_SET_STR(&m, followup_recorded, dealer_id, "D1");
        CRM_SET_STR(&m, followup_recorded, followup_id, fid);
        CRM_SET_I64(&m, followup_recorded, at, f->now);
        m.ts = f->now;
        crm_tx_emit(tx, &m);
        crm_msg_clear(&m);
    }
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "reassign", "S1", "--to", "S2", "--dealer", "D1", NULL), 0);
    s_out_has(f, "R1");
    s_applied(f, "followup");
    s_applied(f, "customer");
    /* Every customer and open activity is S2's; none lost, none doubled. */
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S1"), 0);
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S2"), 300);
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1"), 300);
    assert_int_equal(crm_h_int(f->sys.store, "SCARD crm:dealer:D1:staff:S2:customers"), 300);
    assert_int_equal(crm_h_int(f->sys.store, "SCARD crm:dealer:D1:staff:S1:customers"), 0);
    assert_int_equal(s_events(f, "customer", "owner.changed", "\"reassign_id\":\"R1\""), 300);
    assert_int_equal(s_events(f, "customer", "consultant.reassigned", "\"customers\":300"), 1);
    char *orig = s_hget(f, "crm:cust:{P7}", "original_consultant");
    assert_string_equal(orig, "S1");
    free(orig);
    /* Undone (it was a mistake): all back. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "reassign", "--undo", "R1", "--dealer", "D1", NULL), 0);
    s_applied(f, "customer");
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S1"), 300);
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S2"), 0);
    assert_int_equal(crm_h_int(f->sys.store, "SCARD crm:dealer:D1:staff:S1:customers"), 300);
    assert_int_equal(s_events(f, "customer", "owner.changed", "\"reason\":\"reassign_undone\""), 300);
    /* Twice is refused. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "reassign", "--undo", "R1", "--dealer", "D1", NULL), 1);
    s_out_has(f, "closed");
    /* S1 leaves: everything goes to S2 again; nothing of S1 is deleted, and
       nothing can be sent back to someone who left. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "staff", "leave", "S1", "--dealer", "D1", NULL), 0);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "reassign", "S1", "--to", "S2", "--dealer", "D1", NULL), 0);
    s_out_has(f, "R2");
    s_applied(f, "customer");
    assert_int_equal(crm_h_int(f->sys.store, "ZCARD crm:tasks:open:D1:S2"), 300);
    assert_int_equal(crm_h_int(f->sys.store, "EXISTS crm:dealer:D1:staff:S1"), 1);
    assert_int_equal(crm_h_int(f->sys.store, "SCARD crm:cust:{P1}:tasks"), 2); /* first contact and follow-up, kept */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "reassign", "--undo", "R2", "--dealer", "D1", NULL), 1);
    s_out_has(f, "has left");
}

static void test_leave_with_and_without_postponement(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_customers(f, 4, "S1");
    /* P1..P3 planned inside 10-12 March, P4 after. */
    for (int i = 1; i <= 4; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "P%d", i);
        s_followup(f, cid, "S1", "answered", "B 下周再联系", "B", "2026-03-25",
                   i < 4 ? s_cst(2026, 3, 9 + i, 15, 0, 0) : s_cst(2026, 3, 16, 10, 0, 0), at);
    }
    /* Without postponing: the list of what to do first; nothing moves. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "leave", "S1", "--dealer", "D1", "--from", "2026-03-10",
                                      "--to", "2026-03-12", NULL),
                     0);
    s_out_has(f, "# to do before leaving: due from 2026-03-10 to 2026-03-12");
    s_out_has(f, "# 3 open tasks");
    s_applied(f, "dealers");
    assert_int_equal(s_due(f, s_task(f, "P1")), s_cst(2026, 3, 10, 15, 0, 0));
    /* On leave: no new customers for S1. */
    s_clock(f, s_cst(2026, 3, 11, 10, 0, 0));
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "customer", "assign", "P4", "--dealer", "D1", "--consultant", "S1", NULL), 1);
    s_out_has(f, "on_leave");
    /* With postponing (S1 again, a later window): each moves to the first
       working day after, Friday 20 March, same time. */
    s_clock(f, at);
    for (int i = 1; i <= 2; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "P%d", i);
        s_followup(f, cid, "S1", "answered", "B 再约", "B", "2026-03-30", s_cst(2026, 3, 17 + i, 11, 0, 0), at + HOUR_MS);
    }
    char before[32];
    snprintf(before, sizeof before, "%s", s_task(f, "P1"));
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "consultant", "leave", "S1", "--dealer", "D1", "--from", "2026-03-17",
                                      "--to", "2026-03-19", "--postpone", NULL),
                     0);
    s_applied(f, "dealers");
    s_assert_task(f, before, "state", "postponed");
    const char *now1 = s_task(f, "P1");
    assert_string_not_equal(now1, before);
    assert_int_equal(s_due(f, now1), s_cst(2026, 3, 20, 11, 0, 0));
    s_assert_task(f, now1, "source", "postponed");
    assert_int_equal(s_due(f, s_task(f, "P2")), s_cst(2026, 3, 20, 11, 0, 0));
    assert_int_equal(s_events(f, "task", "task.closed", "\"state\":\"postponed\""), 2);
}

static void test_released_prospect_transfers_through_the_director(void **state)
{
    fx_t *f = *state;
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_customers(f, 2, "S1");
    s_followup(f, "P1", "S1", "answered", "C 明年", "C", "2026-06-01", s_cst(2026, 3, 25, 10, 0, 0), at);
    s_followup(f, "P2", "S1", "answered", "C 明年", "C", "2026-06-01", s_cst(2026, 3, 25, 10, 0, 0), at);
    s_at(f, at + 30 * DAY_MS);
    assert_int_equal(s_events(f, "followup", "prospect.released", NULL), 2);
    /* S2 follows both up effectively: a transfer asked for each. */
    s_followup(f, "P1", "S2", "visit", "C 来店试驾", "C", "2026-06-01", s_cst(2026, 4, 10, 10, 0, 0), f->now);
    s_followup(f, "P2", "S2", "visit", "C 来店试驾", "C", "2026-06-01", s_cst(2026, 4, 10, 10, 0, 0), f->now);
    assert_int_equal(s_events(f, "followup", "owner.transfer_requested", "\"to_consultant\":\"S2\""), 2);
    /* Only the director decides. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "owner", "approve", "P1", "--director", "M1", NULL), 1);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "owner", "approve", "P1", "--director", "DIR", NULL), 0);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "owner", "refuse", "P2", "--director", "DIR", NULL), 0);
    s_applied(f, "customer");
    char *o1 = s_hget(f, "crm:cust:{P1}", "consultant_id"), *o2 = s_hget(f, "crm:cust:{P2}", "consultant_id");
    assert_string_equal(o1, "S2");
    assert_string_equal(o2, "S1");
    free(o1);
    free(o2);
    assert_int_equal(s_events(f, "customer", "owner.changed", "\"reason\":\"transferred\""), 1);
    s_assert_task(f, s_task(f, "P1"), "consultant_id", "S2");
    s_assert_task(f, s_task(f, "P2"), "consultant_id", "S1");
    char *t = s_hget(f, "crm:plan:{P1}", "transfer_to");
    assert_null(t);
    /* Decided: nothing waits any more. */
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "owner", "approve", "P2", "--director", "DIR", NULL), 1);
    s_out_has(f, "no ownership transfer");
}

/* ------------------------------------------------------------ timers */

/* Every timers.fired entry, counted per timer id: how many ids fired more
   than once, and how many entries in all. */
static void s_fired(fx_t *f, long *entries, long *twice, long *late)
{
    *entries = *twice = *late = 0;
    zhash_t *seen = zhash_new();
    char last[40] = "-";
    for (;;) {
        redisReply *r = strcmp(last, "-") ? crm_store_cmd(f->sys.store, "XRANGE crm:{timer}:events (%s + COUNT 500", last)
                                          : crm_store_cmd(f->sys.store, "XRANGE crm:{timer}:events - + COUNT 500");
        assert_non_null(r);
        if (r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (size_t i = 0; i < r->elements; i++) {
            snprintf(last, sizeof last, "%s", r->element[i]->element[0]->str);
            const redisReply *fr = crm_reply_field_reply(r->element[i]->element[1], "m");
            crm_msg_t m;
            crm_err_t err;
            assert_int_equal(crm_msg_decode(fr->str, fr->len, &m, &err), 0);
            for (size_t k = 0; k < m.body.timers_fired.timers.n; k++) {
                const char *e = m.body.timers_fired.timers.v[k];
                const char *id = strchr(e, ' ') + 1;
                if (zhash_lookup(seen, id))
                    (*twice)++;
                else
                    zhash_insert(seen, id, (void *) 1);
                if (m.body.timers_fired.now - strtoll(e, NULL, 10) > 5000)
                    (*late)++;
                (*entries)++;
            }
            crm_msg_clear(&m);
        }
        freeReplyObject(r);
    }
    zhash_destroy(&seen);
}

static void s_load_timers(fx_t *f, int n, int64_t due0, int64_t spread)
{
    for (int i = 0; i < n; i += 1000) {
        char **argv = calloc(2 + 2 * 1000, sizeof *argv);
        int argc = 0;
        argv[argc++] = strdup("ZADD");
        argv[argc++] = strdup("crm:due:followup");
        for (int k = i; k < i + 1000 && k < n; k++) {
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long) (due0 + (spread ? (k * 7919LL) % spread : 0)));
            argv[argc++] = strdup(v);
            snprintf(v, sizeof v, "w:Z%d", k);
            argv[argc++] = strdup(v);
        }
        redisReply *r = crm_store_cmdargv(f->sys.store, argc, (const char **) argv, NULL);
        assert_non_null(r);
        freeReplyObject(r);
        for (int k = 0; k < argc; k++)
            free(argv[k]);
        free(argv);
    }
}

static void test_two_instances_fire_100k_timers_once(void **state)
{
    fx_t *f = *state;
    crm_h_sys_kill(&f->sys, "scheduler", SIGTERM);
    int64_t due0 = f->now + 1000;
    s_load_timers(f, 100000, due0, 4000);
    /* Two instances, one consumer: both claim, each timer once. */
    crm_h_sys_spawn(&f->sys, "scheduler", NULL);
    char pub[64], control[64], log[400];
    snprintf(pub, sizeof pub, "CRM_PUB=tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(control, sizeof control, "CRM_CONTROL=tcp://127.0.0.1:%d", crm_h_free_port());
    const char *env[48];
    int n = 0;
    env[n++] = pub;
    env[n++] = control;
    for (int k = 0; k < f->sys.nenv && n < 46; k++)
        env[n++] = f->sys.envp[k];
    env[n] = NULL;
    crm_h_path(&f->sys.redis, "scheduler2.log", log, sizeof log);
    pid_t second = crm_h_spawn("crm-scheduler", NULL, env, log);
    usleep(300000);
    s_clock(f, due0 + 5000);
    assert_int_equal(s_none_left(f, 60000), 0);
    assert_int_equal(crm_h_wait_int(f->sys.store, 100000, 60000, "HGET crm:metrics:scheduler timers_fired"), 100000);
    long entries, twice, late;
    s_fired(f, &entries, &twice, &late);
    assert_int_equal(entries, 100000);
    assert_int_equal(twice, 0);
    usleep(300000);
    /* Applied once: the metric is not counted twice by the second one. */
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:metrics:scheduler timers_fired"), 100000);
    /* Both did share the work. */
    assert_true(crm_h_file_contains(log, "service.started"));
    assert_int_equal(crm_h_stop(second, SIGTERM, 5000), 0);
}

static void test_killed_scheduler_loses_no_timer_and_fires_late_once(void **state)
{
    fx_t *f = *state;
    /* A real task whose overdue check falls due while no scheduler runs. */
    int64_t at = s_cst(2026, 3, 2, 10, 0, 0);
    s_clock(f, at);
    s_followup(f, "C1", "S1", "answered", "A 周二再联系", "A", "2026-03-12", s_cst(2026, 3, 3, 15, 0, 0), at);
    char task[32];
    snprintf(task, sizeof task, "%s", s_task(f, "C1"));
    s_load_timers(f, 30000, at + 1000, 2000);
    /* A burst falls due and the scheduler is killed in the middle of it. */
    s_clock(f, at + 4000);
    for (int i = 0; i < 500 && crm_h_int(f->sys.store, "ZCARD crm:due:followup") > 25000; i++)
        usleep(2000);
    crm_h_sys_kill(&f->sys, "scheduler", SIGKILL);
    long long left = crm_h_int(f->sys.store, "ZCARD crm:due:followup");
    assert_true(left > 4); /* the task's four timers, and part of the burst */
    /* Down for a day: the task's warning and overdue fall due meanwhile. */
    s_clock(f, s_cst(2026, 3, 4, 9, 0, 0));
    crm_h_sys_spawn(&f->sys, "scheduler", NULL);
    assert_int_equal(s_none_left(f, 30000), 0);
    s_applied(f, "timer");
    long entries, twice, late;
    s_fired(f, &entries, &twice, &late);
    assert_int_equal(entries, 30000 + 2);
    assert_int_equal(twice, 0);
    assert_int_equal(crm_h_int(f->sys.store, "HGET crm:metrics:scheduler timers_fired"), 30000 + 2);
    /* Fired once on recovery, marked late with how late. */
    assert_int_equal(s_events(f, "followup", "followup.overdue", "\"late_ms\":"), 1);
    assert_int_equal(s_events(f, "followup", "followup.due", "\"late_ms\":"), 1);
    assert_true(crm_h_int(f->sys.store, "HGET crm:metrics:scheduler timers_late") >= 2);
    assert_true(crm_h_int(f->sys.store, "HGET crm:metrics:scheduler late_max_ms") >= 9 * HOUR_MS);
    s_assert_task(f, task, "state", "overdue");
}

int main(void)
{
    const char *only = getenv("CRM_TEST_ONLY");
    if (only)
        cmocka_set_test_filter(only);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cadence_per_grade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consultant_plan_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unanswered_call_keeps_the_cadence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warning_then_overdue_at_the_end_of_the_china_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_late_while_the_scheduler_was_down_is_overdue_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holiday_and_make_up_working_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_opportunity_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_after_30_days_without_an_effective_followup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_contact_within_24_working_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dealers_own_working_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crmctl_calendar_tasks_and_daily_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sanctions_for_a_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reminders_and_care, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grade_changed_in_a_customer_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reassignment_under_load_and_its_undo, setup_people, teardown),
        cmocka_unit_test_setup_teardown(test_leave_with_and_without_postponement, setup_people, teardown),
        cmocka_unit_test_setup_teardown(test_released_prospect_transfers_through_the_director, setup_people, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances_fire_100k_timers_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_scheduler_loses_no_timer_and_fires_late_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
