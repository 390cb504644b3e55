/*  The dispatcher's rules with a set clock: when a test drive goes to its
 *  dealer, which dealer and why, and escalation of a silent dealer. A real
 *  crm-dispatcher, a real redis-server; test drives arrive as intake sends
 *  them (testdrive.requested on the testdrive stream). The clock starts at
 *  2026-11-20 10:00 China time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crm_h_bench.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define NOW 1795140000000LL       /* 2026-11-20 10:00 CST */
#define AT_DEC5 1796436000000LL   /* 2026-12-05 10:00 CST */
#define DUE_DEC2 1796173200000LL  /* 2026-12-02 09:00 CST */
#define AT_NOV22 1795330800000LL  /* 2026-11-22 15:00 CST, two days away */
#define HOUR 3600000LL

typedef struct {
    crm_h_sys_t sys;
    crm_store_t *store;
    char *out;
} fx_t;

static void set_clock(fx_t *f, long long ms) { crm_h_sys_set_clock(&f->sys, ms); }

#define crmctl(f, ...) crm_h_sys_crmctl(&(f)->sys, __VA_ARGS__)

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, true) != 0)
        return -1;
    f->store = f->sys.store;
    f->out = f->sys.out;
    set_clock(f, NOW);
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    /* dealers: two in Shenzhen, one in Guangzhou, one in Hainan (华南) */
    assert_int_equal(crmctl(f, "dealer", "add", "SZ1", "--name", "深圳一店", "--region", "华南", "--province", "广东",
                            "--city", "深圳市", NULL), 0);
    assert_int_equal(crmctl(f, "dealer", "add", "SZ2", "--name", "深圳二店", "--province", "广东省", "--city", "深圳",
                            "--capacity", "1", NULL), 0);
    assert_int_equal(crmctl(f, "dealer", "add", "GZ1", "--name", "广州店", "--region", "华南", "--province", "粤",
                            "--city", "广州", NULL), 0);
    assert_int_equal(crmctl(f, "dealer", "add", "HK1", "--name", "海口店", "--province", "海南", "--city", "海口",
                            NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

/* A customer in `city`/`province` asks for a test drive at `at`. */
static void request(fx_t *f, const char *tid, const char *city, const char *province, const char *dealer, long long at)
{
    char cid[32];
    snprintf(cid, sizeof cid, "C-%s", tid);
    redisReply *r = crm_store_cmd(f->store, "HSET crm:cust:{%s} name 测试 mobile 13812345678 city %s province %s",
                                  cid, city, province);
    freeReplyObject(r);
    crm_tx_t *tx = crm_tx_new("intake", 100000);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_testdrive_requested);
    CRM_SET_STR(&m, testdrive_requested, testdrive_id, tid);
    CRM_SET_STR(&m, testdrive_requested, lead_id, "L1");
    CRM_SET_STR(&m, testdrive_requested, customer_id, cid);
    CRM_SET_STR(&m, testdrive_requested, dealer_id, dealer);
    CRM_SET_STR(&m, testdrive_requested, model, "408");
    CRM_SET_I64(&m, testdrive_requested, at, at);
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
}

static char *td_field(fx_t *f, const char *tid, const char *field)
{
    redisReply *r = crm_store_cmd(f->store, "HGET crm:td:%s %s", tid, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : strdup("");
    freeReplyObject(r);
    return v;
}

static void wait_status(fx_t *f, const char *tid, const char *want)
{
    for (int i = 0; i < 300; i++) {
        char *s = td_field(f, tid, "status");
        bool ok = !strcmp(s, want);
        free(s);
        if (ok)
            return;
        usleep(20 * 1000);
    }
    char *s = td_field(f, tid, "status");
    fail_msg("test drive %s is '%s', expected '%s'", tid, s, want);
}

static void test_a_test_drive_is_dispatched_at_t_minus_3_days_0900_china_time(void **state)
{
    fx_t *f = *state;
    request(f, "T1", "深圳", "广东省", "SZ1", AT_DEC5);
    wait_status(f, "T1", "routed");
    char *due = td_field(f, "T1", "due_ms");
    assert_int_equal(atoll(due), DUE_DEC2);
    free(due);
    assert_int_equal(crm_h_int(f->store, "ZSCORE crm:due:dispatch d:T1"), DUE_DEC2);
    set_clock(f, DUE_DEC2 - 1000); /* a second before: nothing */
    usleep(600 * 1000);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{dealer.SZ1}:events"), 0);
    set_clock(f, DUE_DEC2);
    wait_status(f, "T1", "dispatched");
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{dealer.SZ1}:events"), 1);
    assert_int_equal(crm_h_int(f->store, "HGET crm:td:T1 dispatched_ms"), DUE_DEC2);
    /* and it shows in crmctl testdrive show */
    assert_int_equal(crmctl(f, "testdrive", "show", "T1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "dispatch due 2026-12-02 09:00 CST, dispatched 2026-12-02 09:00 CST"));
    assert_true(crm_h_file_contains(f->out, "chosen by the prospect"));
    /* its history, from the record: routed, then dispatched to SZ1 */
    assert_true(crm_h_file_contains(f->out, "routed      by dispatcher chosen by the prospect"));
    assert_true(crm_h_file_contains(f->out, "2026-12-02 09:00 CST  dispatched  by dispatcher SZ1"));
    /* why: the sentence, with its code beside it */
    char *text = td_field(f, "T1", "reason_text");
    char why[700];
    snprintf(why, sizeof why, "why: %s (chosen)", text);
    free(text);
    assert_true(crm_h_file_contains(f->out, why));
}

static void test_a_test_drive_two_days_away_is_dispatched_at_once(void **state)
{
    fx_t *f = *state;
    request(f, "T2", "深圳", "广东省", "SZ1", AT_NOV22);
    wait_status(f, "T2", "dispatched");
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:{dealer.SZ1}:events - +");
    assert_int_equal(r->elements, 1);
    crm_msg_t d;
    crm_err_t err;
    const redisReply *frame = r->element[0]->element[1]->element[1];
    assert_int_equal(crm_msg_decode(frame->str, frame->len, &d, &err), 0);
    assert_int_equal(d.type, CRM_T_dealer_dispatch);
    assert_int_equal(d.seq, 1);
    assert_string_equal(d.body.dealer_dispatch.testdrive_id, "T2");
    assert_string_equal(d.body.dealer_dispatch.customer_name, "测试");
    assert_int_equal(d.body.dealer_dispatch.at, AT_NOV22);
    /* the documented code, and words for the dealer alone */
    assert_string_equal(d.body.dealer_dispatch.reason, "chosen");
    assert_string_equal(d.body.dealer_dispatch.reason_text, "chosen by the prospect");
    crm_msg_clear(&d);
    freeReplyObject(r);
    assert_int_equal(crm_h_int(f->store, "HGET crm:td:T2 dealer_seq"), 1);
}

static void test_routing_goes_city_then_province_then_region_by_fewest_open_and_says_why(void **state)
{
    fx_t *f = *state;
    /* SZ2 gets one open test drive, so the next Shenzhen one goes to SZ1... */
    request(f, "R0", "深圳", "广东省", "SZ2", AT_DEC5);
    wait_status(f, "R0", "routed");
    request(f, "R1", "深圳", "广东省", NULL, AT_DEC5);
    wait_status(f, "R1", "routed");
    char *d = td_field(f, "R1", "dealer_id"), *why = td_field(f, "R1", "reason_text"), *code = td_field(f, "R1", "reason");
    assert_string_equal(d, "SZ1");
    assert_string_equal(code, "city");
    free(code);
    assert_non_null(strstr(why, "city 深圳"));
    assert_non_null(strstr(why, "fewest open test drives"));
    free(d), free(why);
    /* Zhuhai has no dealer: the province, Guangdong; GZ1 has none open. */
    request(f, "R2", "珠海", "广东省", NULL, AT_DEC5);
    wait_status(f, "R2", "routed");
    d = td_field(f, "R2", "dealer_id"), why = td_field(f, "R2", "reason_text");
    assert_string_equal(d, "GZ1");
    assert_non_null(strstr(why, "province 广东省"));
    free(d), free(why);
    /* Nanning (Guangxi) has none in city or province: the region, 华南. */
    request(f, "R3", "南宁", "广西壮族自治区", NULL, AT_DEC5);
    wait_status(f, "R3", "routed");
    d = td_field(f, "R3", "dealer_id"), why = td_field(f, "R3", "reason_text");
    assert_string_equal(d, "HK1"); /* GZ1 and SZ1 have one open each now, HK1 none */
    assert_non_null(strstr(why, "region 华南"));
    free(d), free(why);
    /* What a dealer is told never speaks of other dealers' load. */
    request(f, "R9", "深圳", "广东省", NULL, AT_NOV22);
    wait_status(f, "R9", "dispatched");
    char *dtext = td_field(f, "R9", "reason_dealer");
    assert_string_equal(dtext, "the prospect's city 深圳");
    free(dtext);
    assert_int_equal(crmctl(f, "events", "dealer.SZ1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"reason\":\"city\",\"reason_text\":\"the prospect's city 深圳\""));
    assert_false(crm_h_file_contains(f->out, "fewest"));
    /* Urumqi: no dealer anywhere near: unrouted, and escalated */
    request(f, "R4", "乌鲁木齐", "新疆维吾尔自治区", NULL, AT_DEC5);
    wait_status(f, "R4", "unrouted");
    assert_int_equal(crmctl(f, "events", "testdrive", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "\"reason\":\"no_dealer\""));
}

static void test_a_dealer_at_capacity_that_day_is_skipped(void **state)
{
    fx_t *f = *state;
    /* SZ2 takes one a day; SZ1 gets three open ones first, so SZ2 would
       otherwise be the fewest-open choice. */
    request(f, "C1", "深圳", "广东省", "SZ1", AT_DEC5);
    request(f, "C2", "深圳", "广东省", "SZ1", AT_DEC5);
    request(f, "C3", "深圳", "广东省", "SZ2", AT_DEC5); /* fills SZ2 on Dec 5 */
    wait_status(f, "C3", "routed");
    request(f, "C4", "深圳", "广东省", NULL, AT_DEC5);
    wait_status(f, "C4", "routed");
    char *d = td_field(f, "C4", "dealer_id");
    assert_string_equal(d, "SZ1");
    free(d);
    /* another day, SZ2 has room again */
    request(f, "C5", "深圳", "广东省", NULL, AT_DEC5 + 24 * HOUR);
    wait_status(f, "C5", "routed");
    d = td_field(f, "C5", "dealer_id");
    assert_string_equal(d, "SZ2");
    free(d);
}

static void test_a_silent_dealer_is_escalated(void **state)
{
    fx_t *f = *state;
    request(f, "E1", "深圳", "广东省", "SZ1", AT_DEC5);
    wait_status(f, "E1", "routed");
    set_clock(f, DUE_DEC2);
    wait_status(f, "E1", "dispatched");
    set_clock(f, DUE_DEC2 + 23 * HOUR);
    usleep(600 * 1000);
    assert_int_equal(crmctl(f, "events", "testdrive", NULL), 0);
    assert_false(crm_h_file_contains(f->out, "testdrive.escalated"));
    set_clock(f, DUE_DEC2 + 24 * HOUR);
    bool escalated = false;
    for (int i = 0; i < 100 && !escalated; i++) {
        usleep(20 * 1000);
        crmctl(f, "events", "testdrive", NULL);
        escalated = crm_h_file_contains(f->out, "\"type\":\"testdrive.escalated\"");
    }
    assert_true(escalated);
    assert_true(crm_h_file_contains(f->out, "\"reason\":\"no_ack_24h\""));
}

static void test_dispatch_timers_survive_a_restart(void **state)
{
    fx_t *f = *state;
    request(f, "S1", "深圳", "广东省", "SZ1", AT_DEC5);
    wait_status(f, "S1", "routed");
    int status = crm_h_sys_kill(&f->sys, "dispatcher", SIGKILL);
    assert_true(WIFSIGNALED(status));
    set_clock(f, DUE_DEC2 + HOUR); /* the moment passed while it was down */
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    wait_status(f, "S1", "dispatched");
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{dealer.SZ1}:events"), 1);
}

/* Many test drives requested at once (one batch for the dispatcher) are
   routed as if one at a time: SZ1 and SZ2 share the fewest open test drives
   until SZ2 is full (1 a day) and SZ1 too (10, the default), then the
   province's GZ1; a request sent twice is taken once; a bad id is refused
   alone and kept; each dealer's stream is numbered without a gap. */
/* The dispatcher appends testdrive.dispatched to the stream it reads, and
   its own publications never come back to it on the bus: it applies them
   from what it committed, so the next request (one at a time, as a website
   sends them) is no gap to read back from Redis. */
static void test_its_own_events_on_the_stream_it_reads_are_no_gap(void **state)
{
    fx_t *f = *state;
    /* it hears only the test's publisher, not its own (which would bring
       its events back, racing the test's) */
    crm_h_sys_kill(&f->sys, "dispatcher", SIGTERM);
    char peers[64];
    snprintf(peers, sizeof peers, "CRM_PEERS=tcp://127.0.0.1:%d", f->sys.test_pub);
    const char *only[] = {peers, NULL};
    crm_h_sys_spawn(&f->sys, "dispatcher", only);
    long long now = (long long) time(NULL) * 1000, at = now + 30 * HOUR;
    set_clock(f, now);
    freeReplyObject(crm_store_cmd(f->store, "HSET crm:cust:{CB} name 测试 mobile 13812345678 city 深圳 province 广东省"));
    enum { N = 300 };
    for (int i = 1; i <= N; i++) {
        crm_tx_t *tx = crm_tx_new("intake", 100000);
        char tid[8];
        snprintf(tid, sizeof tid, "G%d", i);
        crm_h_testdrive(tx, tid, "L1", "CB", NULL, at);
        crm_h_sys_commit(&f->sys, tx);
        crm_tx_destroy(&tx);
        if (i % 10 == 0)
            usleep(2000); /* a website's pace, not one burst */
    }
    /* the first ten go to dealers, the rest find them full (unrouted, told
       on the stream too): every request is taken once and in order */
    wait_status(f, "G10", "dispatched");
    long long seq = 0;
    for (int i = 0; i < 250 && crm_h_int(f->store, "HGET crm:cursor:dispatcher testdrive") != seq; i++) {
        usleep(20 * 1000);
        seq = crm_h_int(f->store, "GET crm:{testdrive}:seq");
    }
    char last[8];
    snprintf(last, sizeof last, "G%d", N);
    assert_true(crm_h_sys_td_is(&f->sys, last, "unrouted"));
    assert_true(seq > N);
    assert_int_equal(crm_h_int(f->store, "HGET crm:cursor:dispatcher testdrive"), seq);
    usleep(1200 * 1000); /* its status is written every second */
    assert_int_equal(crm_h_int(f->store, "HGET crm:svc:dispatcher applied"), N);
    assert_int_equal(crm_h_int(f->store, "HGET crm:svc:dispatcher skipped"), seq - N);
    assert_int_equal(crm_h_int(f->store, "HGET crm:svc:dispatcher gaps"), 0);
}

static void test_many_test_drives_at_once_are_routed_as_one_at_a_time_and_numbered_without_gaps(void **state)
{
    fx_t *f = *state;
    /* the real time: a day's bookings expire (in Redis's time) a week after
       the day */
    long long now = (long long) time(NULL) * 1000, at = now + 30 * HOUR;
    set_clock(f, now);
    redisReply *r = crm_store_cmd(f->store, "HSET crm:cust:{CB} name 测试 mobile 13812345678 city 深圳 province 广东省");
    freeReplyObject(r);
    crm_tx_t *tx = crm_tx_new("intake", 100000);
    const char *tids[] = {"B1", "B2", "B3", "B3", "B4", "bad id", "B5", "B6", "B7", "B8", "B9",
                          "B10", "B11", "B12", "B13"};
    for (size_t i = 0; i < sizeof tids / sizeof tids[0]; i++)
        crm_h_testdrive(tx, tids[i], "L1", "CB", NULL, at);
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
    wait_status(f, "B13", "dispatched");
    const char *want[] = {"SZ1", "SZ2", "SZ1", "SZ1", "SZ1", "SZ1", "SZ1", "SZ1", "SZ1", "SZ1", "SZ1", "GZ1", "GZ1"};
    for (int i = 0; i < 13; i++) {
        char tid[8];
        snprintf(tid, sizeof tid, "B%d", i + 1);
        char *d = td_field(f, tid, "dealer_id"), *st = td_field(f, tid, "status");
        if (strcmp(d, want[i]) || strcmp(st, "dispatched"))
            fail_msg("%s went to %s (%s), one at a time it goes to %s", tid, d, st, want[i]);
        free(d);
        free(st);
    }
    char *why = td_field(f, "B12", "reason_text");
    assert_string_equal(why, "province 广东省: 1 of 3 dealers active with capacity; GZ1 has the fewest open test drives (0)");
    free(why);
    const char *dealers[] = {"SZ1", "SZ2", "GZ1"};
    const long long counts[] = {10, 1, 2};
    /* the day of the test drives, China time: each dealer's bookings of it,
       expiring a week after it (one expiry a day key and transaction) */
    long long local = at + 8 * HOUR, day_end = local - local % (24 * HOUR) + 24 * HOUR - 8 * HOUR;
    time_t dt = (time_t) ((local - local % (24 * HOUR)) / 1000);
    struct tm tm;
    gmtime_r(&dt, &tm);
    char day[40];
    snprintf(day, sizeof day, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(crm_h_int(f->store, "GET crm:dealer:%s:day:%s", dealers[k], day), counts[k]);
        long long ttl = crm_h_int(f->store, "PTTL crm:dealer:%s:day:%s", dealers[k], day);
        long long want_ttl = day_end + 7 * 24 * HOUR - (long long) time(NULL) * 1000;
        if (ttl < want_ttl - 60000 || ttl > want_ttl + 60000)
            fail_msg("crm:dealer:%s:day:%s expires in %lld ms, a week after its day is %lld ms", dealers[k], day, ttl,
                     want_ttl);
        assert_int_equal(crm_h_int(f->store, "GET crm:{dealer.%s}:seq", dealers[k]), counts[k]);
        assert_int_equal(crm_h_int(f->store, "XLEN crm:{dealer.%s}:events", dealers[k]), counts[k]);
        assert_int_equal(crm_h_int(f->store, "SCARD crm:dealer:%s:open", dealers[k]), counts[k]);
        for (long long n = 1; n <= counts[k]; n++) {
            redisReply *t = crm_store_cmd(f->store, "HGET crm:dealer:%s:seq2td %lld", dealers[k], n);
            assert_true(t && t->type == REDIS_REPLY_STRING);
            char *seq = td_field(f, t->str, "dealer_seq");
            assert_int_equal(atoll(seq), n);
            free(seq);
            freeReplyObject(t);
        }
    }
    /* B3 sent twice: taken once (one dispatch, counted above), no history of
       its own yet (routing and dispatch are the record's) */
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:td:B3:history"), 0);
    char *disp = td_field(f, "B3", "dispatched_ms");
    assert_non_null(disp);
    free(disp);
    assert_int_equal(crm_h_int(f->store, "XLEN " CRM_KEY_REJECTS), 1);
    assert_int_equal(crm_h_int(f->store, "ZCARD " CRM_KEY_TDS), 13);
}

static char *s_dealer_field(fx_t *f, const char *dealer, const char *field)
{
    redisReply *r = crm_store_cmd(f->store, "HGET crm:dealer:%s %s", dealer, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : strdup("(absent)");
    freeReplyObject(r);
    return v;
}

#define assert_hours(f, dealer, want)                                                             \
    do {                                                                                          \
        char *got_ = s_dealer_field(f, dealer, "hours");                                          \
        assert_string_equal(got_, want);                                                          \
        free(got_);                                                                               \
    } while (0)

/* A dealer's working hours: given at registration, changed, cleared back to the default, shown; a value that is no
   HH:MM-HH:MM opening before it closes is refused naming the field, and
   nothing changes. */
static void test_working_hours_are_stored_shown_changed_cleared_and_a_bad_value_is_refused_naming_hours(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crmctl(f, "dealer", "add", "WH1", "--name", "深圳三店", "--province", "广东", "--city", "深圳",
                            "--hours", "09:30-17:30", NULL), 0);
    assert_hours(f, "WH1", "09:30-17:30");
    assert_true(crm_h_file_contains(f->out, "hours=09:30-17:30"));
    assert_int_equal(crmctl(f, "dealer", "show", "WH1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "hours: 09:30-17:30"));
    /* a dealer registered without them has none: the default */
    assert_hours(f, "SZ1", "(absent)");
    assert_int_equal(crmctl(f, "dealer", "show", "SZ1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "hours: default"));
    static const char *const bad[] = {"9:30-17:30", "18:00-09:00", "09:00-09:00", "25:00-26:00", "9-18", "09:00", "09:00-18:00x",
                                      "", "早上九点"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (crmctl(f, "dealer", "add", "WH2", "--name", "坏", "--province", "广东", "--city", "深圳", "--hours", bad[i],
                   NULL) != 1 ||
            !crm_h_file_contains(f->out, "refused (invalid): hours:"))
            fail_msg("dealer add --hours \"%s\" was not refused naming hours", bad[i]);
        assert_int_equal(crm_h_int(f->store, "EXISTS crm:dealer:WH2"), 0);
        if (!*bad[i])
            continue; /* empty on update clears: below */
        if (crmctl(f, "dealer", "update", "WH1", "--hours", bad[i], NULL) != 1 ||
            !crm_h_file_contains(f->out, "refused (invalid): hours:"))
            fail_msg("dealer update --hours \"%s\" was not refused naming hours", bad[i]);
        assert_hours(f, "WH1", "09:30-17:30");
    }
    /* changed: stored, answered, in dealer.updated */
    assert_int_equal(crmctl(f, "dealer", "update", "WH1", "--hours", "08:00-20:00", NULL), 0);
    assert_hours(f, "WH1", "08:00-20:00");
    assert_true(crm_h_file_contains(f->out, "hours=08:00-20:00"));
    assert_int_equal(crm_h_events(f->store, "dealers", "dealer.updated", "hours=08:00-20:00"), 1);
    /* the same again changes nothing */
    assert_int_equal(crmctl(f, "dealer", "update", "WH1", "--hours", "08:00-20:00", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "nothing changed"));
    /* cleared: "default" or empty */
    assert_int_equal(crmctl(f, "dealer", "update", "WH1", "--hours", "default", NULL), 0);
    assert_hours(f, "WH1", "(absent)");
    assert_int_equal(crm_h_events(f->store, "dealers", "dealer.updated", "hours=default"), 1);
    assert_int_equal(crmctl(f, "dealer", "show", "WH1", NULL), 0);
    assert_true(crm_h_file_contains(f->out, "hours: default"));
    assert_int_equal(crmctl(f, "dealer", "update", "WH1", "--hours", "10:00-19:00", NULL), 0);
    assert_hours(f, "WH1", "10:00-19:00");
    assert_int_equal(crmctl(f, "dealer", "update", "WH1", "--hours", "", NULL), 0);
    assert_hours(f, "WH1", "(absent)");
    assert_int_equal(crm_h_events(f->store, "dealers", "dealer.updated", "hours=default"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_test_drive_is_dispatched_at_t_minus_3_days_0900_china_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_test_drive_two_days_away_is_dispatched_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing_goes_city_then_province_then_region_by_fewest_open_and_says_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_dealer_at_capacity_that_day_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_its_own_events_on_the_stream_it_reads_are_no_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_test_drives_at_once_are_routed_as_one_at_a_time_and_numbered_without_gaps,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_silent_dealer_is_escalated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_timers_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_working_hours_are_stored_shown_changed_cleared_and_a_bad_value_is_refused_naming_hours,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
