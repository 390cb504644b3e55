/*  100,000 randomized notifications over a simulated week break no rule.
 *
 *  One crm-notifier with a clock the test moves in one-hour steps through
 *  seven days (China time), real peers (the SMS gateway and the SMTP sink
 *  of tests/peers). Every step asks for a random mix (transactional,
 *  marketing and critical SMS, marketing e-mail, call tasks, for 200
 *  customers, some with not_before or not_after), changes consent at
 *  random (opt-in and opt-out on every channel through consent.set, and
 *  SMS replies "TD" through the gateway), then waits until the notifier has
 *  done everything due. At the end every notification's record is read
 *  back and checked against the rules as the issue states them:
 *  - nothing is lost: every request has its notification;
 *  - quiet hours: no SMS or call that is not critical went between 21:00
 *    and 08:00 China time;
 *  - the daily caps (SMS 3, e-mail 2, calls 2 per customer per China day);
 *  - nothing went on a channel the customer had opted out of, or as
 *    marketing without a current opt-in, per the consent ledger;
 *  - nothing went before its not_before or after its not_after.
 *
 *  CRM_NTF_SIM_N sets the number of requests (default 100,000; 20,000 in a
 *  sanitizer build, which runs every case several times slower).
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_calendar.h"
#include "crm_clock.h"
#include "crm_h_notify.h"
#include "crm_harness.h"
#include "crm_id.h"
#include "crm_keys.h"

#if defined(__SANITIZE_ADDRESS__)
#define S_DEFAULT_N 20000
#else
#define S_DEFAULT_N 100000
#endif

#define S_CUSTOMERS 200
#define S_DAYS 7
#define S_STEP_MS (60LL * 60000)
#define S_CAP_SMS 3
#define S_CAP_EMAIL 2
#define S_CAP_CALL 2

static void s_mobile(int c, char *out, size_t size) { snprintf(out, size, "139%08d", 10000000 + c * 37); }

static long long s_int(crm_store_t *st, const char *fmt, const char *arg)
{
    redisReply *r = crm_store_cmd(st, fmt, arg);
    long long v = !r ? -1 : r->type == REDIS_REPLY_INTEGER ? r->integer : r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* Everything due by now is done: the requests applied, no timer due and
   unfired, the timers' events applied, nothing being sent, the replies
   pulled. */
static void s_idle(crm_h_ntf_t *f, uint64_t last_seq, long long replies, int64_t now)
{
    crm_store_t *st = f->sys.store;
    int64_t until = crm_mono_ms() + 120000;
    char now_s[24];
    snprintf(now_s, sizeof now_s, "%lld", (long long) now);
    while (crm_mono_ms() < until) {
        long long cur = s_int(st, "HGET crm:cursor:notifier %s", "notify");
        long long due = 0;
        static const char *const sets[] = {"sms", "email", "call", "webhook"};
        for (int k = 0; k < 4; k++) {
            char key[48];
            snprintf(key, sizeof key, "ZCOUNT crm:due:notify_%s -inf %%s", sets[k]);
            due += s_int(st, key, now_s);
        }
        long long tseq = s_int(st, "GET crm:{%s}:seq", "timer");
        long long tcur = s_int(st, "HGET crm:cursor:notifier %s", "timer");
        long long inflight = s_int(st, "SCARD %s", CRM_KEY_NOTIFY_INFLIGHT);
        long long got = s_int(st, "XLEN %s", CRM_KEY_NOTIFY_REPLIES);
        if (cur >= (long long) last_seq && due == 0 && tcur >= tseq && inflight == 0 && got >= replies)
            return;
        usleep(5000);
    }
    char log[400];
    fail_msg("the notifier did not catch up (see %s)", crm_h_sys_log(&f->sys, "notifier", log, sizeof log));
}

static void s_consent(crm_h_ntf_t *f, const char *cust, const char *channel, const char *state)
{
    crm_msg_t m, a;
    crm_msg_init(&m, CRM_T_consent_set);
    CRM_SET_STR(&m, consent_set, customer_id, cust);
    CRM_SET_STR(&m, consent_set, channel, channel);
    CRM_SET_STR(&m, consent_set, state, state);
    CRM_SET_STR(&m, consent_set, source, "sim");
    CRM_SET_STR(&m, consent_set, text, !strcmp(state, "opt_in") ? "我同意接收信息" : "不再接收");
    assert_int_equal(crm_h_ask(&f->sys, "notifier", &m, &a), 0);
    if (a.type != CRM_T_reply || !a.body.reply.ok)
        fail_msg("consent.set refused: %s", a.body.reply.message ? a.body.reply.message : "?");
    crm_msg_clear(&m);
    crm_msg_clear(&a);
}

/* The consent state of (subject, channel) at `t` from its ledger: 1 in, -1 out, 0 none. */
typedef struct {
    int64_t at;
    int channel; /* 0 sms 1 email 2 call */
    int state;
} s_entry_t;

typedef struct {
    s_entry_t *v;
    size_t n, cap;
} s_ledger_t;

static int s_channel(const char *c) { return !strcmp(c, "sms") ? 0 : !strcmp(c, "email") ? 1 : !strcmp(c, "call") ? 2 : -1; }

static void s_ledger_read(crm_store_t *st, const char *subject, s_ledger_t *l)
{
    redisReply *r = crm_store_cmd(st, "XRANGE crm:consent:{%s}:ledger - +", subject);
    assert_non_null(r);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->v = realloc(l->v, l->cap * sizeof *l->v);
        }
        s_entry_t *e = &l->v[l->n++];
        e->at = atoll(crm_reply_field_or(kv, "at", "0"));
        e->channel = s_channel(crm_reply_field_or(kv, "channel", ""));
        e->state = !strcmp(crm_reply_field_or(kv, "state", ""), "opt_in") ? 1 : -1;
    }
    freeReplyObject(r);
}

static int s_state_at(const s_ledger_t *l, int channel, int64_t t)
{
    int st = 0;
    int64_t best = -1;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].channel == channel && l->v[i].at <= t && l->v[i].at >= best)
            best = l->v[i].at, st = l->v[i].state;
    return st;
}

static void test_randomized_requests_over_a_simulated_week_break_no_rule(void **state)
{
    (void) state;
    const char *ns = getenv("CRM_NTF_SIM_N");
    int total = ns && atoi(ns) > 0 ? atoi(ns) : S_DEFAULT_N;
    int steps = (int) (S_DAYS * 86400000LL / S_STEP_MS);
    int per_step = (total + steps - 1) / steps;
    int64_t start = crm_h_ntf_cst(2026, 12, 7, 0, 0);
    const char *env[] = {"CRM_CAP_SMS=3", "CRM_CAP_EMAIL=2", "CRM_CAP_CALL=2", "CRM_NOTIFY_MAX_INFLIGHT=100000", "CRM_NOTIFY_LANE_QUEUE=100000",
                         "CRM_SMS_LANES=8", "CRM_LOG_LEVEL=warn", NULL};
    crm_h_ntf_t f;
    crm_h_ntf_up_at(&f, start, env, (const char *const[]){"--no-log-data", NULL});
    crm_store_t *st = f.sys.store;
    for (int c = 1; c <= S_CUSTOMERS; c++) {
        char m[16];
        s_mobile(c, m, sizeof m);
        redisReply *r = crm_store_cmd(st, "HSET crm:cust:{C%d} name 客户%d mobile %s email c%d@example.cn dealer_id D1",
                                      1000 + c, c, m, c);
        freeReplyObject(r);
        r = crm_store_cmd(st, "SET crm:idx:mobile:%s C%d", m, 1000 + c);
        freeReplyObject(r);
    }
    srand(20261207);
    long long replies = 0;
    int made = 0;
    for (int step = 0; step < steps && made < total; step++) {
        int64_t now = start + step * S_STEP_MS;
        crm_h_sys_set_clock(&f.sys, now);
        crm_tx_t *tx = crm_tx_new("scheduler", 10000000);
        for (int k = 0; k < per_step && made < total; k++, made++) {
            int c = 1 + rand() % S_CUSTOMERS, kind = rand() % 100;
            char rid[48], cust[16], to[48], p1[64];
            snprintf(rid, sizeof rid, "sim:%d", made);
            snprintf(cust, sizeof cust, "C%d", 1000 + c);
            crm_msg_t m;
            crm_msg_init(&m, CRM_T_notify_request);
            CRM_SET_STR(&m, notify_request, request_id, rid);
            CRM_SET_STR(&m, notify_request, customer_id, cust);
            const char *channel = "sms", *tpl;
            p1[0] = '\0';
            if (kind < 40)
                tpl = "testdrive_reminder", snprintf(p1, sizeof p1, "at=12-%02d 10:00", 8 + step / 24);
            else if (kind < 55)
                tpl = "birthday_greeting";
            else if (kind < 60)
                tpl = "testdrive_cancelled", snprintf(p1, sizeof p1, "at=15:00");
            else if (kind < 75)
                tpl = "service_offer", channel = "email";
            else if (kind < 85)
                tpl = "followup_call", channel = "call", snprintf(p1, sizeof p1, "reason=回访");
            else
                tpl = "service_reminder";
            if (!strcmp(channel, "sms"))
                s_mobile(c, to, sizeof to);
            else if (!strcmp(channel, "email"))
                snprintf(to, sizeof to, "c%d@example.cn", c);
            else
                snprintf(to, sizeof to, "D1");
            CRM_SET_STR(&m, notify_request, channel, channel);
            CRM_SET_STR(&m, notify_request, to, to);
            CRM_SET_STR(&m, notify_request, template, tpl);
            CRM_SET_STR(&m, notify_request, dealer_id, "D1");
            if (p1[0]) {
                crm_strs_push(&m.body.notify_request.params, p1);
                m.body.notify_request.has.params = true;
            }
            int r = rand() % 100;
            if (r < 20)
                CRM_SET_I64(&m, notify_request, not_before, now + (rand() % 360) * 60000LL);
            else if (r < 50)
                CRM_SET_I64(&m, notify_request, not_after, now + (60 + rand() % 2880) * 60000LL);
            crm_tx_emit(tx, &m);
            crm_msg_clear(&m);
        }
        crm_h_sys_commit(&f.sys, tx);
        uint64_t last = crm_tx_emit_count(tx) ? crm_tx_emit_at(tx, crm_tx_emit_count(tx) - 1)->seq : 0;
        crm_tx_destroy(&tx);
        s_idle(&f, last, replies, now);
        /* consent changes, a moment later */
        crm_h_sys_set_clock(&f.sys, now + 1);
        static const char *const chans[] = {"sms", "email", "call"};
        for (int k = 0; k < 4; k++) {
            char cust[16];
            snprintf(cust, sizeof cust, "C%d", 1000 + 1 + rand() % S_CUSTOMERS);
            s_consent(&f, cust, chans[rand() % 3], rand() % 3 ? "opt_in" : "opt_out");
        }
        if (rand() % 3 == 0) {
            char m[16], js[200];
            s_mobile(1 + rand() % S_CUSTOMERS, m, sizeof m);
            snprintf(js, sizeof js, "{\"phone_number\":\"%s\",\"content\":\"%s\"}", m, rand() % 2 ? "TD" : "退订");
            crm_h_ntf_ctl(&f, "/_ctl/reply", js);
            replies++;
        }
        s_idle(&f, last, replies, now + 1);
    }

    /* ------------------------------------------------ every record, checked */
    long long n_ids = s_int(st, "GET %s", CRM_KEY_NOTIFY_IDS);
    zhash_t *ledgers = zhash_new(), *caps = zhash_new();
    int sent = 0, kept = 0, violations = 0;
    zhash_t *states = zhash_new();
    for (long long i = 1; i <= n_ids; i++) {
        redisReply *h = crm_store_cmd(st, "HGETALL crm:notify:N%lld", i);
        assert_non_null(h);
        if (!h->elements) {
            freeReplyObject(h);
            continue;
        }
        kept++;
        const char *stt = crm_reply_field_or(h, "state", "?"), *reason = crm_reply_field_or(h, "reason", "");
        char sk[64];
        snprintf(sk, sizeof sk, "%s%s%s", stt, *reason ? "/" : "", reason);
        zhash_update(states, sk, (void *) ((intptr_t) zhash_lookup(states, sk) + 1));
        bool went = !strcmp(stt, "sent") || !strcmp(stt, "delivered") || !strcmp(stt, "undelivered");
        if (!went) {
            freeReplyObject(h);
            continue;
        }
        sent++;
        const char *chn = crm_reply_field_or(h, "channel", ""), *cls = crm_reply_field_or(h, "class", "");
        const char *cust = crm_reply_field_or(h, "customer_id", ""), *to = crm_reply_field_or(h, "to", "");
        int64_t at = atoll(crm_reply_field_or(h, "sending_ms", crm_reply_field_or(h, "sent_ms", "0")));
        int64_t nb = atoll(crm_reply_field_or(h, "not_before", "0")), na = atoll(crm_reply_field_or(h, "not_after", "0"));
        int ch = s_channel(chn);
        int64_t day = crm_cst_day(at);
        int minute = (int) (((at + CRM_CST_OFFSET_MS) % 86400000LL) / 60000);
        char why[200] = "";
        if ((ch == 0 || ch == 2) && strcmp(cls, "critical") && (minute >= 21 * 60 || minute < 8 * 60))
            snprintf(why, sizeof why, "sent in quiet hours (%02d:%02d China time)", minute / 60, minute % 60);
        if (nb && at < nb)
            snprintf(why, sizeof why, "sent before its not_before");
        if (na && at > na)
            snprintf(why, sizeof why, "sent after its not_after");
        char ck[64];
        snprintf(ck, sizeof ck, "%d:%s:%lld", ch, cust, (long long) day);
        intptr_t count = (intptr_t) zhash_lookup(caps, ck) + 1;
        zhash_update(caps, ck, (void *) count);
        int cap = ch == 0 ? S_CAP_SMS : ch == 1 ? S_CAP_EMAIL : S_CAP_CALL;
        if (count > cap)
            snprintf(why, sizeof why, "message %ld of the day to %s on %s (cap %d)", (long) count, cust, chn, cap);
        s_ledger_t *l = zhash_lookup(ledgers, cust);
        if (!l) {
            l = calloc(1, sizeof *l);
            s_ledger_read(st, cust, l);
            char tel[40];
            snprintf(tel, sizeof tel, "tel:%s", to);
            if (ch == 0)
                s_ledger_read(st, tel, l);
            zhash_insert(ledgers, cust, l);
        }
        int consent = s_state_at(l, ch, at);
        if (consent < 0)
            snprintf(why, sizeof why, "sent to %s on %s after an opt-out", cust, chn);
        if (!strcmp(cls, "marketing") && consent <= 0)
            snprintf(why, sizeof why, "marketing to %s on %s without a current opt-in", cust, chn);
        if (why[0]) {
            if (violations++ < 10)
                print_message("  N%lld (%s): %s\n", i, crm_reply_field_or(h, "request_id", "?"), why);
        }
        freeReplyObject(h);
    }
    print_message("# %d requests over %d simulated days: %d kept, %d sent, %d rule violations\n", made, S_DAYS, kept,
                  sent, violations);
    for (void *v = zhash_first(states); v; v = zhash_next(states))
        print_message("#   %-28s %ld\n", zhash_cursor(states), (long) (intptr_t) v);
    assert_int_equal(kept, made);
    assert_true(sent > made / 20); /* the rules did not simply stop everything */
    assert_int_equal(violations, 0);
    for (s_ledger_t *l = zhash_first(ledgers); l; l = zhash_next(ledgers)) {
        free(l->v);
        free(l);
    }
    zhash_destroy(&ledgers);
    zhash_destroy(&caps);
    zhash_destroy(&states);
    crm_h_ntf_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_randomized_requests_over_a_simulated_week_break_no_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
