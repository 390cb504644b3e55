/*  crm_notify_rules and crm_template: when the notifier may send, and what
 *  it sends, against China time worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_calendar.h"
#include "crm_notify_rules.h"
#include "crm_template.h"

#ifndef CRM_SOURCE_DIR
#define CRM_SOURCE_DIR "/work/main"
#endif
#define TEMPLATES CRM_SOURCE_DIR "/common/data/templates"

#define SEC 1000LL
#define MIN 60000LL
#define HOUR 3600000LL

/* An instant given in China time. */
static int64_t s_cst(int y, int m, int d, int hh, int mm, int ss)
{
    return crm_cst_day_start_ms(crm_day_from_ymd(y, m, d)) + hh * HOUR + mm * MIN + ss * SEC;
}

/* ------------------------------------------------------------ names */

static void test_names_parse_and_come_back(void **state)
{
    (void) state;
    for (int c = 0; c < CRM_CLASS_COUNT; c++)
        assert_int_equal(crm_class_parse(crm_class_name(c)), c);
    for (int c = 0; c < CRM_CHANNEL_COUNT; c++)
        assert_int_equal(crm_channel_parse(crm_channel_name(c)), c);
    assert_int_equal(crm_class_parse("marketing"), CRM_CLASS_MARKETING);
    assert_int_equal(crm_channel_parse("webhook"), CRM_CHANNEL_WEBHOOK);
    assert_int_equal(crm_class_parse("Marketing"), -1);
    assert_int_equal(crm_channel_parse("dealer"), -1);
    assert_int_equal(crm_channel_parse(NULL), -1);
    assert_string_equal(crm_class_name(7), "unknown");
    assert_string_equal(crm_reason_name(CRM_REASON_QUIET_HOURS), "quiet_hours");
    assert_string_equal(crm_reason_name(CRM_REASON_NO_CONSENT), "no_consent");
    assert_string_equal(crm_verdict_name(CRM_VERDICT_DEFER), "defer");
}

/* ------------------------------------------------------------ quiet hours */

static void test_quiet_hours_across_midnight_at_the_edges(void **state)
{
    (void) state;
    crm_quiet_t q = CRM_QUIET_NIGHT;
    int64_t t = s_cst(2026, 3, 2, 20, 59, 59);
    assert_int_equal(crm_quiet_next_allowed(&q, t), t);
    assert_int_equal(crm_quiet_next_allowed(&q, t + 999), t + 999);
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 2, 21, 0, 0)),
                     s_cst(2026, 3, 3, 8, 0, 0));
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 2, 23, 59, 59)),
                     s_cst(2026, 3, 3, 8, 0, 0));
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 3, 0, 0, 0)),
                     s_cst(2026, 3, 3, 8, 0, 0));
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 3, 7, 59, 0)),
                     s_cst(2026, 3, 3, 8, 0, 0));
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 3, 7, 59, 59) + 999),
                     s_cst(2026, 3, 3, 8, 0, 0));
    t = s_cst(2026, 3, 3, 8, 0, 0);
    assert_int_equal(crm_quiet_next_allowed(&q, t), t);
    /* The last day of a month, of a year. */
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 12, 31, 22, 0, 0)),
                     s_cst(2027, 1, 1, 8, 0, 0));
}

static void test_quiet_hours_in_china_time_not_utc(void **state)
{
    (void) state;
    crm_quiet_t q = CRM_QUIET_NIGHT;
    /* 2026-03-02 13:00:00 UTC is 21:00 in China; 12:59:59 UTC is 20:59:59. */
    int64_t utc13 = 1772456400000LL;
    assert_int_equal(utc13, s_cst(2026, 3, 2, 21, 0, 0));
    assert_true(crm_quiet_in(&q, utc13));
    assert_false(crm_quiet_in(&q, utc13 - 1000));
    /* 08:00 China is 00:00 UTC the next day. */
    assert_int_equal(crm_quiet_next_allowed(&q, utc13), utc13 + 11 * HOUR);
    /* 23:30 UTC is 07:30 China: deferred to 00:00 UTC, not allowed as UTC's evening would be. */
    int64_t utc2330 = utc13 + 10 * HOUR + 30 * MIN;
    assert_int_equal(crm_quiet_next_allowed(&q, utc2330), utc13 + 11 * HOUR);
}

static void test_quiet_window_not_crossing_midnight(void **state)
{
    (void) state;
    crm_quiet_t q;
    assert_int_equal(crm_quiet_parse("12:00-14:00", &q), 0);
    assert_true(q.on);
    int64_t t = s_cst(2026, 3, 2, 11, 59, 59);
    assert_int_equal(crm_quiet_next_allowed(&q, t), t);
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 2, 12, 0, 0)),
                     s_cst(2026, 3, 2, 14, 0, 0));
    assert_int_equal(crm_quiet_next_allowed(&q, s_cst(2026, 3, 2, 13, 59, 59)),
                     s_cst(2026, 3, 2, 14, 0, 0));
    t = s_cst(2026, 3, 2, 14, 0, 0);
    assert_int_equal(crm_quiet_next_allowed(&q, t), t);
    t = s_cst(2026, 3, 2, 23, 0, 0);
    assert_int_equal(crm_quiet_next_allowed(&q, t), t);
}

static void test_quiet_window_parse_is_strict(void **state)
{
    (void) state;
    crm_quiet_t q;
    char text[16];
    assert_int_equal(crm_quiet_parse("21:00-08:00", &q), 0);
    assert_int_equal(q.start_min, 21 * 60);
    assert_int_equal(q.end_min, 8 * 60);
    crm_quiet_format(&q, text, sizeof text);
    assert_string_equal(text, "21:00-08:00");
    assert_int_equal(crm_quiet_parse("none", &q), 0);
    assert_false(q.on);
    crm_quiet_format(&q, text, sizeof text);
    assert_string_equal(text, "none");
    int64_t t = s_cst(2026, 3, 2, 23, 0, 0);
    assert_int_equal(crm_quiet_next_allowed(&q, t), t);
    const char *bad[] = {"21:00-8:00",  "21:00 - 08:00", "21:00-08:00 ", "24:00-08:00",
                         "21:60-08:00", "08:00-08:00",   "None",         "",
                         "21:00–08:00", "2100-0800x",    "21:00-08:0a"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(crm_quiet_parse(bad[i], &q), -1);
    assert_int_equal(crm_quiet_parse(NULL, &q), -1);
}

static void test_quiet_hours_per_class_and_channel(void **state)
{
    (void) state;
    crm_notify_config_t cfg;
    crm_notify_config_default(&cfg);
    int64_t night = s_cst(2026, 3, 2, 22, 0, 0), morning = s_cst(2026, 3, 3, 8, 0, 0);
    for (int c = CRM_CLASS_TRANSACTIONAL; c <= CRM_CLASS_MARKETING; c++) {
        assert_int_equal(crm_quiet_next_allowed(crm_notify_quiet(&cfg, c, CRM_CHANNEL_SMS), night),
                         morning);
        assert_int_equal(crm_quiet_next_allowed(crm_notify_quiet(&cfg, c, CRM_CHANNEL_CALL), night),
                         morning);
        assert_int_equal(crm_quiet_next_allowed(crm_notify_quiet(&cfg, c, CRM_CHANNEL_EMAIL),
                                                night),
                         night);
        assert_int_equal(crm_quiet_next_allowed(crm_notify_quiet(&cfg, c, CRM_CHANNEL_WEBHOOK),
                                                night),
                         night);
    }
    /* Critical bypasses, while the flag says so. */
    assert_int_equal(
        crm_quiet_next_allowed(crm_notify_quiet(&cfg, CRM_CLASS_CRITICAL, CRM_CHANNEL_SMS), night),
        night);
    cfg.critical_bypass = false;
    assert_int_equal(
        crm_quiet_next_allowed(crm_notify_quiet(&cfg, CRM_CLASS_CRITICAL, CRM_CHANNEL_SMS), night),
        morning);
    /* A class's own window. */
    assert_int_equal(crm_quiet_parse("20:00-09:00",
                                     &cfg.quiet[CRM_CLASS_MARKETING][CRM_CHANNEL_SMS]),
                     0);
    assert_int_equal(crm_quiet_next_allowed(crm_notify_quiet(&cfg, CRM_CLASS_MARKETING,
                                                             CRM_CHANNEL_SMS),
                                            s_cst(2026, 3, 2, 20, 30, 0)),
                     s_cst(2026, 3, 3, 9, 0, 0));
    assert_int_equal(crm_quiet_next_allowed(crm_notify_quiet(&cfg, CRM_CLASS_TRANSACTIONAL,
                                                             CRM_CHANNEL_SMS),
                                            s_cst(2026, 3, 2, 20, 30, 0)),
                     s_cst(2026, 3, 2, 20, 30, 0));
    assert_false(crm_notify_quiet(&cfg, 9, CRM_CHANNEL_SMS)->on);
}

/* ------------------------------------------------------------ daily cap */

static void test_cap_key_names_channel_customer_and_china_day(void **state)
{
    (void) state;
    char key[64];
    /* 2026-03-02 16:30 UTC is already 2026-03-03 in China. */
    int64_t t = 1772456400000LL + 3 * HOUR + 30 * MIN;
    assert_int_equal(crm_cap_key(CRM_CHANNEL_SMS, "C42", crm_cst_day(t), key, sizeof key), 0);
    assert_string_equal(key, "sms:C42:2026-03-03");
    assert_int_equal(crm_cap_key(CRM_CHANNEL_EMAIL, "C42", crm_day_from_ymd(2026, 1, 9), key,
                                 sizeof key),
                     0);
    assert_string_equal(key, "email:C42:2026-01-09");
    assert_int_equal(crm_cap_key(CRM_CHANNEL_SMS, "C:42", 0, key, sizeof key), -1);
    assert_string_equal(key, "");
    assert_int_equal(crm_cap_key(CRM_CHANNEL_SMS, "", 0, key, sizeof key), -1);
    assert_int_equal(crm_cap_key(CRM_CHANNEL_SMS, "C\n1", 0, key, sizeof key), -1);
    assert_int_equal(crm_cap_key(9, "C42", 0, key, sizeof key), -1);
    assert_int_equal(crm_cap_key(CRM_CHANNEL_SMS, "C42", 0, key, 10), -1);
}

static void test_cap_defers_the_n_plus_first_to_tomorrows_first_allowed_moment(void **state)
{
    (void) state;
    crm_quiet_t q = CRM_QUIET_NIGHT;
    int64_t t = s_cst(2026, 3, 2, 10, 0, 0);
    assert_int_equal(crm_cap_next_allowed(0, 3, &q, t), t);
    assert_int_equal(crm_cap_next_allowed(2, 3, &q, t), t);
    assert_int_equal(crm_cap_next_allowed(3, 3, &q, t), s_cst(2026, 3, 3, 8, 0, 0));
    assert_int_equal(crm_cap_next_allowed(4, 3, &q, t), s_cst(2026, 3, 3, 8, 0, 0));
    assert_int_equal(crm_cap_next_allowed(1000, 0, &q, t), t); /* no cap */
    /* Without quiet hours tomorrow starts at 00:00. */
    assert_int_equal(crm_cap_next_allowed(3, 3, NULL, t), s_cst(2026, 3, 3, 0, 0, 0));
}

/* ------------------------------------------------------------ opt-out */

static void test_optout_words_incl_full_width(void **state)
{
    (void) state;
    const char *yes[] = {"TD",      "td",     "Td",
                         " td ",    "ＴＤ",   "ｔｄ",
                         "T",       "t",      "R",
                         "r",       "Ｒ",     "退订",
                         " 退订\n", "退订。", "TD.",
                         "退订！",  "T!",     "\xe3\x80\x80TD\xe3\x80\x80"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!crm_optout_reply(yes[i]))
            fail_msg("'%s' is an opt-out", yes[i]);
    }
    const char *no[] = {"TDX", "退订了吗", "T D",   "不要再发了", "好的",     "",     " ",
                        "RT",  "TD TD",    "退 订", "N",          "我要退订", "\xff", "TD?"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        if (crm_optout_reply(no[i]))
            fail_msg("'%s' is no opt-out", no[i]);
    }
    assert_false(crm_optout_reply(NULL));
}

/* ------------------------------------------------------------ the decision */

static crm_notify_msg_t s_msg(int cls, int channel)
{
    return (crm_notify_msg_t){.cls = cls, .channel = channel, .opted_in = true};
}

static void s_expect(crm_notify_decision_t d, crm_verdict_t v, int64_t at, crm_reason_t why)
{
    if (d.verdict != v || d.at != at || d.reason != why)
        fail_msg("got %s at %lld (%s), want %s at %lld (%s)", crm_verdict_name(d.verdict),
                 (long long) d.at, crm_reason_name(d.reason), crm_verdict_name(v), (long long) at,
                 crm_reason_name(why));
}

static void test_not_after_drops_and_not_before_defers(void **state)
{
    (void) state;
    crm_notify_config_t cfg;
    crm_notify_config_default(&cfg);
    int64_t now = s_cst(2026, 3, 2, 10, 0, 0);
    crm_notify_msg_t m = s_msg(CRM_CLASS_TRANSACTIONAL, CRM_CHANNEL_SMS);
    m.not_after = now - 1;
    s_expect(crm_notify_decide(&cfg, &m, now), CRM_VERDICT_DROP, 0, CRM_REASON_EXPIRED);
    m.not_after = now; /* the last moment: still sent */
    s_expect(crm_notify_decide(&cfg, &m, now), CRM_VERDICT_SEND, now, CRM_REASON_NONE);
    m.not_after = 0;
    m.not_before = now + HOUR;
    s_expect(crm_notify_decide(&cfg, &m, now), CRM_VERDICT_DEFER, now + HOUR,
             CRM_REASON_NOT_BEFORE);
    m.not_before = now; /* not in the future */
    s_expect(crm_notify_decide(&cfg, &m, now), CRM_VERDICT_SEND, now, CRM_REASON_NONE);
    /* A not_before inside quiet hours: the end of them is what counts. */
    m.not_before = s_cst(2026, 3, 2, 22, 0, 0);
    s_expect(crm_notify_decide(&cfg, &m, now), CRM_VERDICT_DEFER, s_cst(2026, 3, 3, 8, 0, 0),
             CRM_REASON_QUIET_HOURS);
    /* ... and one that would expire before quiet hours end is dropped now. */
    m.not_after = s_cst(2026, 3, 2, 23, 0, 0);
    s_expect(crm_notify_decide(&cfg, &m, now), CRM_VERDICT_DROP, 0, CRM_REASON_EXPIRED);
}

static void test_decision_table(void **state)
{
    (void) state;
    crm_notify_config_t cfg;
    crm_notify_config_default(&cfg);
    cfg.cap[CRM_CHANNEL_SMS] = 2;
    int64_t day = s_cst(2026, 3, 2, 10, 0, 0), night = s_cst(2026, 3, 2, 21, 0, 0),
            morning = s_cst(2026, 3, 3, 8, 0, 0);
    enum { T = CRM_CLASS_TRANSACTIONAL, M = CRM_CLASS_MARKETING, C = CRM_CLASS_CRITICAL };
    struct {
        int cls, channel;
        bool in, out;
        int64_t count, now;
        crm_verdict_t v;
        int64_t at;
        crm_reason_t why;
    } rows[] = {
        /* class channel opted_in opted_out count now -> verdict at reason */
        {T, CRM_CHANNEL_SMS, false, false, 0, day, CRM_VERDICT_SEND, day, CRM_REASON_NONE},
        {T, CRM_CHANNEL_SMS, false, true, 0, day, CRM_VERDICT_DROP, 0, CRM_REASON_OPTED_OUT},
        {T, CRM_CHANNEL_SMS, false, false, 0, night, CRM_VERDICT_DEFER, morning,
         CRM_REASON_QUIET_HOURS},
        {T, CRM_CHANNEL_EMAIL, false, false, 0, night, CRM_VERDICT_SEND, night, CRM_REASON_NONE},
        {T, CRM_CHANNEL_SMS, false, false, 1, day, CRM_VERDICT_SEND, day, CRM_REASON_NONE},
        {T, CRM_CHANNEL_SMS, false, false, 2, day, CRM_VERDICT_DEFER, morning,
         CRM_REASON_DAILY_CAP},
        {T, CRM_CHANNEL_EMAIL, false, false, 99, day, CRM_VERDICT_SEND, day, CRM_REASON_NONE},
        {M, CRM_CHANNEL_SMS, true, false, 0, day, CRM_VERDICT_SEND, day, CRM_REASON_NONE},
        {M, CRM_CHANNEL_SMS, false, false, 0, day, CRM_VERDICT_DROP, 0, CRM_REASON_NO_CONSENT},
        {M, CRM_CHANNEL_SMS, true, true, 0, day, CRM_VERDICT_DROP, 0, CRM_REASON_OPTED_OUT},
        {M, CRM_CHANNEL_SMS, true, false, 0, night, CRM_VERDICT_DEFER, morning,
         CRM_REASON_QUIET_HOURS},
        {M, CRM_CHANNEL_SMS, true, false, 2, day, CRM_VERDICT_DEFER, morning, CRM_REASON_DAILY_CAP},
        {C, CRM_CHANNEL_SMS, false, false, 0, night, CRM_VERDICT_SEND, night, CRM_REASON_NONE},
        {C, CRM_CHANNEL_CALL, false, false, 0, night, CRM_VERDICT_SEND, night, CRM_REASON_NONE},
        {C, CRM_CHANNEL_SMS, true, true, 0, night, CRM_VERDICT_DROP, 0, CRM_REASON_OPTED_OUT},
        /* Critical counts against the cap, and bypasses quiet hours: tomorrow at 00:00. */
        {C, CRM_CHANNEL_SMS, false, false, 2, day, CRM_VERDICT_DEFER, s_cst(2026, 3, 3, 0, 0, 0),
         CRM_REASON_DAILY_CAP},
        /* Quiet hours already move it to tomorrow: today's count says nothing there. */
        {T, CRM_CHANNEL_SMS, false, false, 2, night, CRM_VERDICT_DEFER, morning,
         CRM_REASON_QUIET_HOURS},
        /* At 07:00 with the cap reached: past quiet hours, then the cap. */
        {T, CRM_CHANNEL_SMS, false, false, 2, s_cst(2026, 3, 3, 7, 0, 0), CRM_VERDICT_DEFER,
         s_cst(2026, 3, 4, 8, 0, 0), CRM_REASON_DAILY_CAP},
        {9, CRM_CHANNEL_SMS, true, false, 0, day, CRM_VERDICT_DROP, 0, CRM_REASON_INVALID},
        {T, -1, true, false, 0, day, CRM_VERDICT_DROP, 0, CRM_REASON_INVALID},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        crm_notify_msg_t m = {.cls = rows[i].cls,
                              .channel = rows[i].channel,
                              .count_today = rows[i].count,
                              .opted_in = rows[i].in,
                              .opted_out = rows[i].out};
        crm_notify_decision_t d = crm_notify_decide(&cfg, &m, rows[i].now);
        if (d.verdict != rows[i].v || d.at != rows[i].at || d.reason != rows[i].why)
            fail_msg("row %zu: got %s at %lld (%s), want %s at %lld (%s)", i,
                     crm_verdict_name(d.verdict), (long long) d.at, crm_reason_name(d.reason),
                     crm_verdict_name(rows[i].v), (long long) rows[i].at,
                     crm_reason_name(rows[i].why));
    }
}

/* ------------------------------------------------------------ templates */

static crm_template_t *s_parse(const char *text, char *err, size_t errsz)
{
    return crm_template_parse("t/x.sms.txt", text, strlen(text), err, errsz);
}

static void s_refused(const char *text, const char *want)
{
    char err[256];
    crm_template_t *t = s_parse(text, err, sizeof err);
    if (t) {
        crm_template_destroy(&t);
        fail_msg("accepted, want '%s'", want);
    }
    if (!strstr(err, want))
        fail_msg("error '%s', want '%s'", err, want);
}

static void test_every_shipped_template_loads(void **state)
{
    (void) state;
    DIR *d = opendir(TEMPLATES);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".txt"))
            continue;
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/%s", TEMPLATES, e->d_name);
        crm_template_t *t = crm_template_load(path, err, sizeof err);
        if (!t)
            fail_msg("%s", err);
        n++;
        crm_template_destroy(&t);
        assert_null(t);
    }
    closedir(d);
    /* What crm-scheduler asks for today, and the test-drive escalation. */
    const char *names[] = {"testdrive_reminder.sms",       "delivery_delayed.sms",
                           "birthday_greeting.sms",        "holiday_greeting.sms",
                           "service_reminder.sms",         "followup_overdue.webhook",
                           "opportunity_expired.webhook",  "testdrive_escalated_manager.sms",
                           "testdrive_escalated_crm.email"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/%s.txt", TEMPLATES, names[i]);
        crm_template_t *t = crm_template_load(path, err, sizeof err);
        if (!t)
            fail_msg("%s: %s", names[i], err);
        crm_template_destroy(&t);
    }
    assert_true(n >= (int) (sizeof names / sizeof *names));
}

static void test_template_header_and_render(void **state)
{
    (void) state;
    char err[256];
    crm_template_t *t = crm_template_load(TEMPLATES "/testdrive_reminder.sms.txt", err, sizeof err);
    assert_non_null(t);
    assert_string_equal(crm_template_name(t), "testdrive_reminder");
    assert_int_equal(crm_template_channel(t), CRM_CHANNEL_SMS);
    assert_int_equal(crm_template_class(t), CRM_CLASS_TRANSACTIONAL);
    assert_string_equal(crm_template_sign(t), "汽车客服");
    assert_null(crm_template_subject(t));
    assert_int_equal(crm_template_nvars(t), 3);
    assert_string_equal(crm_template_var(t, 0), "customer_name");
    assert_string_equal(crm_template_var(t, 2), "dealer_name");
    assert_null(crm_template_var(t, 3));
    const char *params[] = {"at=3月3日 10:00", "customer_name=王先生", "dealer_name=杭州西湖店",
                            "extra=ignored"};
    char *s = crm_template_render(t, params, 4, true, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "【汽车客服】王先生您好，您预约的试驾将于3月3日 "
                           "10:00在杭州西湖店进行，请携带驾驶证准时到店。"
                           "如需改期请联系您的销售顾问。");
    free(s);
    s = crm_template_params_json(t, params, 4, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(
        s, "{\"customer_name\":\"王先生\",\"at\":\"3月3日 10:00\",\"dealer_name\":\"杭州西湖店\"}");
    free(s);
    /* JSON strings: quotes and backslashes escaped; in the text, as given. */
    const char *quoted[] = {"at=10:00", "customer_name=王\"小\\明", "dealer_name=店"};
    s = crm_template_params_json(t, quoted, 3, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(
        s, "{\"customer_name\":\"王\\\"小\\\\明\",\"at\":\"10:00\",\"dealer_name\":\"店\"}");
    free(s);
    s = crm_template_render(t, quoted, 3, false, err, sizeof err);
    assert_non_null(s);
    assert_non_null(strstr(s, "王\"小\\明您好"));
    free(s);
    /* One missing: an error naming it, never a half-filled message. */
    s = crm_template_render(t, params, 2, true, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "dealer_name"));
    assert_non_null(strstr(err, "missing"));
    assert_null(crm_template_params_json(t, params, 2, err, sizeof err));
    /* Control characters and invalid UTF-8 in a value; a value given twice. */
    const char *ctl[] = {"at=10:00\n", "customer_name=王", "dealer_name=店"};
    assert_null(crm_template_render(t, ctl, 3, false, err, sizeof err));
    assert_non_null(strstr(err, "at: control character"));
    const char *bad[] = {"at=10:00", "customer_name=\xe7\x8e", "dealer_name=店"};
    assert_null(crm_template_render(t, bad, 3, false, err, sizeof err));
    assert_non_null(strstr(err, "customer_name: invalid UTF-8"));
    const char *twice[] = {"at=10:00", "customer_name=王", "dealer_name=店", "at=11:00"};
    assert_null(crm_template_render(t, twice, 4, false, err, sizeof err));
    assert_non_null(strstr(err, "at given twice"));
    crm_template_destroy(&t);
    crm_template_destroy(&t);

    t = crm_template_load(TEMPLATES "/testdrive_escalated_crm.email.txt", err, sizeof err);
    assert_non_null(t);
    const char *p[] = {"testdrive_id=TD9", "dealer_id=D1", "at=3月3日 10:00", "reason=no_ack_24h"};
    s = crm_template_render_subject(t, p, 4, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "试驾升级：TD9 经销商D1未确认");
    free(s);
    assert_null(crm_template_sign(t));
    crm_template_destroy(&t);
}

static void test_template_load_errors_name_file_line_and_variable(void **state)
{
    (void) state;
    const char *head = "channel: sms\nclass: transactional\nsign: 汽车客服\n";
    char text[512];
    snprintf(text, sizeof text, "%svars: a\n\n你好{{a}}，\n请于{{b}}到店。\n", head);
    s_refused(text, "t/x.sms.txt:7: {{b}} is not a declared variable");
    snprintf(text, sizeof text, "%svars: a, b\n\n你好{{a}}。\n", head);
    s_refused(text, "t/x.sms.txt:4: variable b is declared but not used");
    snprintf(text, sizeof text, "%svars: a\n\n你好{{a}}\xe4\xbd。\n", head);
    s_refused(text, "t/x.sms.txt:6: invalid UTF-8");
    snprintf(text, sizeof text, "%svars: a\n\n你好\xc0\xaf{{a}}\n", head); /* overlong '/' */
    s_refused(text, "t/x.sms.txt:6: invalid UTF-8");
    snprintf(text, sizeof text,
             "channel: sms\nclass: marketing\nsign: 汽车客服\nvars: a\n\n{{a}}生日快乐！\n");
    s_refused(text, "t/x.sms.txt:6: a marketing SMS must end with an opt-out line");
    snprintf(text, sizeof text,
             "channel: sms\nclass: marketing\nsign: 汽车客服\nvars: a\n\n{{a}}生日快乐！回T退订\n");
    char err[256];
    crm_template_t *t = s_parse(text, err, sizeof err);
    assert_non_null(t);
    crm_template_destroy(&t);
    snprintf(text, sizeof text, "%svars: a\n\n你好{{ a }}\n", head);
    s_refused(text, "t/x.sms.txt:6: malformed placeholder");
    snprintf(text, sizeof text, "%svars: a\n\n你好{{a}\n", head);
    s_refused(text, "t/x.sms.txt:6: malformed placeholder");
    snprintf(text, sizeof text, "%svars: a\n\n你好\x01{{a}}\n", head);
    s_refused(text, "t/x.sms.txt:6: control character U+0001");
    snprintf(text, sizeof text, "%svars: a\ncolour: red\n\n{{a}}\n", head);
    s_refused(text, "t/x.sms.txt:5: unknown header key 'colour'");
    snprintf(text, sizeof text, "%svars: a\n{{a}}\n", head);
    s_refused(text, "t/x.sms.txt:5: a header line is 'key: value'");
    snprintf(text, sizeof text, "%svars: a, a\n\n{{a}}\n", head);
    s_refused(text, "t/x.sms.txt:4: variable a declared twice");
    s_refused("channel: sms\nclass: transactional\nvars:\n\n你好\n", "sign is required for sms");
    s_refused("channel: email\nclass: transactional\nvars:\n\n你好\n",
              "the file name says channel sms");
    s_refused("channel: sms\nclass: transactional\nsign: 【汽车客服】\nvars:\n\n你好\n",
              "without 【】");
    s_refused("channel: sms\nclass: transactional\nsign: 汽车客服\nvars:\n\n\n\n", "empty body");
    s_refused("channel: sms\nclass: transactional\nsign: 汽车客服\nvars:\n", "no blank line");
    s_refused("channel: sms\nclass: sometimes\nsign: 汽车客服\nvars:\n\nx\n",
              "t/x.sms.txt:2: unknown class");
    /* CRLF files are read as LF ones. */
    t = s_parse(
        "channel: sms\r\nclass: transactional\r\nsign: 汽车客服\r\nvars: a\r\n\r\n你好{{a}}\r\n",
        err, sizeof err);
    assert_non_null(t);
    assert_string_equal(crm_template_body(t), "你好{{a}}");
    crm_template_destroy(&t);
    /* An e-mail template needs a subject, and its placeholders count too. */
    const char *mail = "channel: email\nclass: critical\nsubject: 关于{{a}}\nvars: a\n\n正文\n";
    t = crm_template_parse("m.email.txt", mail, strlen(mail), err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    crm_template_destroy(&t);
    assert_null(crm_template_load(TEMPLATES "/no_such.sms.txt", err, sizeof err));
    assert_non_null(strstr(err, "no_such.sms.txt: cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_parse_and_come_back),
        cmocka_unit_test(test_quiet_hours_across_midnight_at_the_edges),
        cmocka_unit_test(test_quiet_hours_in_china_time_not_utc),
        cmocka_unit_test(test_quiet_window_not_crossing_midnight),
        cmocka_unit_test(test_quiet_window_parse_is_strict),
        cmocka_unit_test(test_quiet_hours_per_class_and_channel),
        cmocka_unit_test(test_cap_key_names_channel_customer_and_china_day),
        cmocka_unit_test(test_cap_defers_the_n_plus_first_to_tomorrows_first_allowed_moment),
        cmocka_unit_test(test_optout_words_incl_full_width),
        cmocka_unit_test(test_not_after_drops_and_not_before_defers),
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_every_shipped_template_loads),
        cmocka_unit_test(test_template_header_and_render),
        cmocka_unit_test(test_template_load_errors_name_file_line_and_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
