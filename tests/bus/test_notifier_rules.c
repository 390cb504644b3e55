/*  crm-notifier's rules as a user meets them: quiet hours and caps defer
 *  and never drop, consent and opt-outs are honoured and provable, passing
 *  failures are retried and permanent ones dead-lettered, the gateway's own
 *  limit defers, dealer webhooks are signed, and a failing endpoint is
 *  disabled with its contact told. What is checked is the notification's
 *  state, the events on the notify stream, what the peers received
 *  (tests/peers) and what crmctl shows.
 *
 *  Every case starts its own Redis, peers and crm-notifier. Cases about the
 *  hour of the day set the test clock; the others run on the real clock
 *  (retries need time to pass) with quiet hours off, so they hold at any
 *  hour. Waits are polled with deadlines, generous for ASan.
 *  CRM_TEST_ONLY=<name> runs the matching cases.
 */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_calendar.h"
#include "crm_clock.h"
#include "crm_h_notify.h"
#include "crm_harness.h"
#include "crm_id.h"
#include "crm_keys.h"
#include "crm_proto.h"

#define S_WAIT_MS 20000

/* Two valid Standard Webhooks secrets (base64 of 32 bytes each). */
#define S_SECRET_A "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define S_SECRET_B "whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="

/* Quiet hours off for cases on the real clock that are not about them. */
static const char *const s_anytime[] = {"CRM_QUIET_TRANSACTIONAL=none", "CRM_QUIET_MARKETING=none",
                                        NULL};

/* ------------------------------------------------------------ helpers */

/* The body of the newest event of `type` on the notice stream whose JSON
   holds `needle` (caller decrefs), or NULL. */
static json_t *s_event(crm_h_ntf_t *f, const char *type, const char *needle)
{
    return crm_h_event_body(f->sys.store, "notice", type, needle);
}

/* Waits until at least `n` events of `type` hold `needle`; their count. */
static int s_wait_events(crm_h_ntf_t *f, const char *type, const char *needle, int n, int ms)
{
    int64_t until = crm_mono_ms() + ms;
    int have = 0;
    while ((have = crm_h_ntf_events(f, type, needle)) < n && crm_mono_ms() < until)
        usleep(50 * 1000);
    if (have < n)
        fail_msg("%d %s event(s) holding %s, expected %d", have, type, needle ? needle : "-", n);
    return have;
}

/* Waits until the HTTP peer logged at least `n` requests to `path` whose
   body holds `needle`; their count. */
static int s_wait_http(crm_h_ntf_t *f, const char *path, const char *needle, int n, int ms)
{
    int64_t until = crm_mono_ms() + ms;
    int have = 0;
    while ((have = crm_h_ntf_http_count(f, path, needle)) < n && crm_mono_ms() < until)
        usleep(50 * 1000);
    if (have < n)
        fail_msg("%d request(s) to %s holding %s, expected %d", have, path, needle ? needle : "-",
                 n);
    return have;
}

/* The captured mails to `rcpt` (a JSON array, caller decrefs), waiting for at least `n`. */
static json_t *s_wait_mails(crm_h_ntf_t *f, const char *rcpt, size_t n, int ms)
{
    int64_t until = crm_mono_ms() + ms;
    for (;;) {
        json_t *all = crm_h_ntf_mails(f), *mine = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(all, i, m)
        {
            const char *to = json_string_value(json_object_get(m, "to"));
            json_t *env = json_object_get(m, "envelope_to");
            bool hit = to && strstr(to, rcpt);
            size_t k;
            json_t *e;
            json_array_foreach(env, k, e)
                hit |= json_string_value(e) && strstr(json_string_value(e), rcpt);
            if (hit)
                json_array_append(mine, m);
        }
        json_decref(all);
        if (json_array_size(mine) >= n || crm_mono_ms() >= until) {
            if (json_array_size(mine) < n)
                fail_msg("%zu mail(s) to %s, expected %zu", json_array_size(mine), rcpt, n);
            return mine;
        }
        json_decref(mine);
        usleep(200 * 1000);
    }
}

/* What the last crmctl printed (stdout and stderr; a static buffer). */
static const char *s_out(crm_h_ntf_t *f)
{
    static char buf[65536];
    char *t = crm_h_slurp(f->sys.out);
    snprintf(buf, sizeof buf, "%s", t ? t : "");
    free(t);
    return buf;
}

/* Runs crmctl until its output holds `needle` or `ms` pass (fails then). */
#define S_CTL_UNTIL(f, needle, ms, ...)                                                            \
    do {                                                                                           \
        int64_t until_ = crm_mono_ms() + (ms);                                                     \
        bool ok_ = false;                                                                          \
        while (!ok_) {                                                                             \
            crm_h_sys_crmctl(&(f)->sys, __VA_ARGS__, NULL);                                        \
            ok_ = strstr(s_out(f), (needle)) != NULL;                                              \
            if (ok_ || crm_mono_ms() >= until_)                                                    \
                break;                                                                             \
            usleep(200 * 1000);                                                                    \
        }                                                                                          \
        if (!ok_)                                                                                  \
            fail_msg("crmctl never showed '%s'; last output:\n%s", (needle), s_out(f));            \
    } while (0)

static void s_sms(crm_h_ntf_t *f, const char *rid, const char *to, const char *tpl,
                  const char *customer, const char *p0, const char *p1)
{
    crm_h_ntf_request(f, &(crm_h_ntf_req_t){.rid = rid,
                                            .channel = "sms",
                                            .to = to,
                                            .tpl = tpl,
                                            .customer = customer,
                                            .dealer = "D1",
                                            .params = {p0, p1}});
}

static void s_reminder(crm_h_ntf_t *f, const char *rid, const char *customer, const char *mobile)
{
    s_sms(f, rid, mobile, "testdrive_reminder", customer, "at=2026-12-05 10:00", NULL);
}

static void s_dealer_note(crm_h_ntf_t *f, const char *rid)
{
    crm_h_ntf_request(f, &(crm_h_ntf_req_t){.rid = rid,
                                            .channel = "dealer",
                                            .to = "D1",
                                            .tpl = "followup_overdue",
                                            .params = {"manager_id=M1", "consultant_id=S1",
                                                       "customer_id=C1", "record=F7"}});
}

static void s_expect_field(crm_h_ntf_t *f, const char *rid, const char *field, const char *want)
{
    char v[1200];
    crm_h_ntf_field(f, rid, field, v, sizeof v);
    if (strcmp(v, want))
        fail_msg("%s: %s is '%s', expected '%s'", rid, field, v, want);
}

static int64_t s_json_i64(json_t *o, const char *k)
{
    return (int64_t) json_integer_value(json_object_get(o, k));
}

static const char *s_json_s(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* The notification is deferred for `reason` until `until`: its state, and
   the notify.deferred event that says so. */
static void s_expect_deferred(crm_h_ntf_t *f, const char *rid, const char *reason, int64_t until)
{
    crm_h_ntf_wait_state(f, rid, "deferred", S_WAIT_MS);
    s_expect_field(f, rid, "reason", reason);
    s_wait_events(f, "notify.deferred", rid, 1, S_WAIT_MS);
    json_t *ev = s_event(f, "notify.deferred", rid);
    assert_string_equal(s_json_s(ev, "reason"), reason);
    assert_true(s_json_i64(ev, "until") == until);
    json_decref(ev);
}

/* The t_ms of every logged request to `path` holding `needle`, into t (at most max); how many. */
static int s_http_times(crm_h_ntf_t *f, const char *path, const char *needle, int64_t *t, int max)
{
    usleep(120 * 1000);
    char *text = crm_h_slurp(f->http_log);
    int n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line && n < max;
         line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        const char *p = json_string_value(json_object_get(o, "path")),
                   *b = json_string_value(json_object_get(o, "body"));
        if (p && !json_is_true(json_object_get(o, "control")) && !strncmp(p, path, strlen(path)) &&
            b && strstr(b, needle))
            t[n++] = (int64_t) json_number_value(json_object_get(o, "t_ms"));
        json_decref(o);
    }
    free(text);
    return n;
}

/* verify_webhook.py on `log` with the secrets (NULL-terminated); its exit code, its output in *out.
 */
static int s_verify(const char *log, const char *const *secrets, char **out)
{
    char script[400];
    crm_h_ntf_peer_path("verify_webhook.py", script, sizeof script);
    const char *args[16] = {script};
    int n = 1;
    for (const char *const *s = secrets; *s && n < 12; s++)
        args[n++] = "--secret", args[n++] = *s;
    args[n++] = log;
    args[n] = NULL;
    return crm_h_ntf_run_py(args, out);
}

/* The newest logged /hook/ request alone in a log of its own (path into out). */
static json_t *s_last_hook_alone(crm_h_ntf_t *f, const char *path, char *out, size_t size)
{
    json_t *last = crm_h_ntf_http_last(f, path);
    assert_non_null(last);
    snprintf(out, size, "%s/last_hook.jsonl", f->dir);
    FILE *fp = fopen(out, "w");
    assert_non_null(fp);
    char *line = json_dumps(last, JSON_COMPACT);
    fprintf(fp, "%s\n", line);
    free(line);
    fclose(fp);
    return last;
}

static void s_hook_url(crm_h_ntf_t *f, const char *path, char *out, size_t size)
{
    snprintf(out, size, "http://127.0.0.1:%d%s", f->http_port, path);
}

/* ------------------------------------------------------------ 1. quiet hours */

static void
test_quiet_hours_defer_an_sms_to_08_00_and_never_drop_it_while_critical_goes_at_once(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, true, NULL, NULL);
    crm_h_sys_set_clock(&f.sys, crm_h_ntf_cst(2026, 12, 4, 22, 30));
    s_reminder(&f, "quiet:T1:1", "C1", "13812345678");
    s_expect_deferred(&f, "quiet:T1:1", "quiet_hours", crm_h_ntf_cst(2026, 12, 5, 8, 0));

    /* a critical message to staff goes at 22:30 all the same */
    crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = "quiet:esc:T5",
                                             .channel = "sms",
                                             .to = "13712345678",
                                             .tpl = "testdrive_escalated_manager",
                                             .recipient = "staff",
                                             .dealer = "D1",
                                             .params = {"testdrive_id=T5", "at=2026-12-05 10:00"}});
    crm_h_ntf_wait_state(&f, "quiet:esc:T5", "sent delivered", S_WAIT_MS);
    assert_int_equal(s_wait_http(&f, "/sms/send", "PhoneNumbers=13712345678", 1, S_WAIT_MS), 1);
    /* ...and the deferred one did not */
    assert_int_equal(crm_h_ntf_http_count(&f, "/sms/send", "PhoneNumbers=13812345678"), 0);
    s_expect_field(&f, "quiet:T1:1", "state", "deferred");

    crm_h_sys_set_clock(&f.sys, crm_h_ntf_cst(2026, 12, 5, 8, 0) + 1000);
    crm_h_ntf_wait_state(&f, "quiet:T1:1", "sent delivered", S_WAIT_MS);
    assert_int_equal(s_wait_http(&f, "/sms/send", "PhoneNumbers=13812345678", 1, S_WAIT_MS), 1);
    assert_int_equal(crm_h_ntf_events(&f, "notify.sent", "quiet:T1:1"), 1);
    assert_int_equal(crm_h_ntf_events(&f, "notify.failed", "quiet:T1:1"), 0);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 2. daily cap */

static void
test_the_daily_cap_defers_the_third_sms_to_the_next_china_day_and_spares_other_customers(
    void **state)
{
    (void) state;
    static const char *const env[] = {"CRM_CAP_SMS=2", NULL};
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, true, env, NULL);
    crm_h_sys_set_clock(&f.sys, crm_h_ntf_cst(2026, 12, 4, 10, 0));
    s_reminder(&f, "cap:C1:1", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "cap:C1:1", "sent delivered", S_WAIT_MS);
    /* the day's count (crm_keys.h) after one SMS: said on failure, it tells why the second is held
     */
    redisReply *c = crm_store_cmd(f.sys.store, "GET crm:notify:count:sms:C1:2026-12-04");
    char counted[32];
    snprintf(counted, sizeof counted, "%s", c && c->type == REDIS_REPLY_STRING ? c->str : "(none)");
    freeReplyObject(c);
    s_reminder(&f, "cap:C1:2", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "cap:C1:2", "sent delivered deferred", S_WAIT_MS);
    char st[32];
    if (strcmp(crm_h_ntf_field(&f, "cap:C1:2", "state", st, sizeof st), "deferred") == 0)
        fail_msg("the second SMS of the day was deferred (%s) with a cap of 2; the day's count was "
                 "%s after one",
                 crm_h_ntf_field(&f, "cap:C1:2", "reason", st, sizeof st), counted);
    s_reminder(&f, "cap:C1:3", "C1", "13812345678");
    s_expect_deferred(&f, "cap:C1:3", "daily_cap", crm_h_ntf_cst(2026, 12, 5, 8, 0));
    /* another customer the same day is not held back */
    s_reminder(&f, "cap:C2:1", "C2", "13912345678");
    crm_h_ntf_wait_state(&f, "cap:C2:1", "sent delivered", S_WAIT_MS);
    assert_int_equal(s_wait_http(&f, "/sms/send", "PhoneNumbers=13912345678", 1, S_WAIT_MS), 1);
    assert_int_equal(crm_h_ntf_http_count(&f, "/sms/send", "PhoneNumbers=13812345678"), 2);
    assert_int_equal(crm_h_ntf_http_count(&f, "/sms/send", "OutId=cap%3AC1%3A3"), 0);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 3. opt-out by reply */

static void test_an_sms_reply_td_opts_out_and_the_ledger_shows_why(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_anytime, NULL);
    s_reminder(&f, "optout:C1:1", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "optout:C1:1", "delivered", S_WAIT_MS);
    crm_h_ntf_ctl(&f, "/_ctl/reply", "{\"phone_number\":\"13812345678\",\"content\":\"TD\"}");
    S_CTL_UNTIL(&f, "sms_reply", S_WAIT_MS, "consent", "history", "C1");
    assert_non_null(strstr(s_out(&f), "opt_out"));
    assert_non_null(strstr(s_out(&f), "TD"));
    /* one entry in the customer's ledger, one in the number's own (a
       message to the number that names no customer is refused too) */
    assert_true(s_wait_events(&f, "consent.changed", "sms_reply", 2, S_WAIT_MS) == 2);
    assert_int_equal(crm_h_ntf_events(&f, "consent.changed", "\"customer_id\":\"tel:13812345678\""), 1);
    json_t *ev = s_event(&f, "consent.changed", "\"customer_id\":\"C1\"");
    assert_string_equal(s_json_s(ev, "customer_id"), "C1");
    assert_string_equal(s_json_s(ev, "channel"), "sms");
    assert_string_equal(s_json_s(ev, "state"), "opt_out");
    assert_string_equal(s_json_s(ev, "text"), "TD");
    json_decref(ev);

    s_reminder(&f, "optout:C1:2", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "optout:C1:2", "failed", S_WAIT_MS);
    s_expect_field(&f, "optout:C1:2", "reason", "opted_out");
    s_wait_events(&f, "notify.failed", "optout:C1:2", 1, S_WAIT_MS);
    assert_int_equal(crm_h_ntf_http_count(&f, "/sms/send", "PhoneNumbers=13812345678"), 1);
    crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = "optout:tel:3",
                                             .channel = "sms",
                                             .to = "13812345678",
                                             .tpl = "testdrive_escalated_manager",
                                             .recipient = "staff",
                                             .params = {"testdrive_id=T1", "at=2026-12-05 10:00"}});
    crm_h_ntf_wait_state(&f, "optout:tel:3", "failed", S_WAIT_MS);
    s_expect_field(&f, "optout:tel:3", "reason", "opted_out");

    /* a question about opting out is kept for a person, and changes nothing */
    crm_h_ntf_ctl(&f, "/_ctl/reply",
                  "{\"phone_number\":\"13912345678\",\"content\":\"请问怎么退订\"}");
    int64_t until = crm_mono_ms() + S_WAIT_MS;
    bool kept = false;
    while (!kept && crm_mono_ms() < until) {
        redisReply *r = crm_store_cmd(f.sys.store, "XRANGE crm:notify:replies - +");
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const char *c = crm_reply_field(r->element[i]->element[1], "content");
            const char *o = crm_reply_field(r->element[i]->element[1], "optout");
            if (c && !strcmp(c, "请问怎么退订")) {
                kept = true;
                assert_string_equal(o ? o : "", "0");
            }
        }
        freeReplyObject(r);
        if (!kept)
            usleep(100 * 1000);
    }
    assert_true(kept);
    redisReply *r = crm_store_cmd(f.sys.store, "HGET crm:consent:{C2} sms");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* "退订。" does count */
    crm_h_ntf_ctl(&f, "/_ctl/reply", "{\"phone_number\":\"13912345678\",\"content\":\"退订。\"}");
    S_CTL_UNTIL(&f, "opt_out", S_WAIT_MS, "consent", "show", "C2");
    S_CTL_UNTIL(&f, "退订。", S_WAIT_MS, "consent", "history", "C2");
    assert_non_null(strstr(s_out(&f), "sms_reply"));
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 4. marketing consent */

static void test_marketing_needs_a_current_opt_in_and_carries_the_opt_out_line_and_list_unsubscribe(
    void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_anytime, NULL);
    s_sms(&f, "mkt:C1:1", "13812345678", "birthday_greeting", "C1", NULL, NULL);
    crm_h_ntf_wait_state(&f, "mkt:C1:1", "failed", S_WAIT_MS);
    s_expect_field(&f, "mkt:C1:1", "reason", "no_consent");
    assert_int_equal(crm_h_ntf_http_count(&f, "/sms/send", NULL), 0);

    assert_int_equal(crm_h_sys_crmctl(&f.sys, "consent", "set", "C1", "--channel", "sms", "--state",
                                      "opt_in", "--source", "website", "--text",
                                      "我同意接收优惠信息", NULL),
                     0);
    s_sms(&f, "mkt:C1:2", "13812345678", "birthday_greeting", "C1", NULL, NULL);
    crm_h_ntf_wait_state(&f, "mkt:C1:2", "sent delivered", S_WAIT_MS);
    char text[1200];
    crm_h_ntf_field(&f, "mkt:C1:2", "text", text, sizeof text);
    const char *tail = "拒收请回复R";
    assert_true(strlen(text) > strlen(tail));
    assert_string_equal(text + strlen(text) - strlen(tail), tail);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "notify", "show", "mkt:C1:2", NULL), 0);
    assert_non_null(strstr(s_out(&f), tail));
    s_wait_http(&f, "/sms/send", "OutId=mkt%3AC1%3A2", 1, S_WAIT_MS);
    json_t *req = crm_h_ntf_http_last(&f, "/sms/send");
    char *code = crm_h_ntf_form(json_string_value(json_object_get(req, "body")), "TemplateCode");
    char *params = crm_h_ntf_form(json_string_value(json_object_get(req, "body")), "TemplateParam");
    assert_string_equal(code, "birthday_greeting");
    assert_non_null(strstr(params, "王先生"));
    free(code), free(params);
    json_decref(req);

    /* marketing e-mail: one-click unsubscribe (RFC 8058), clean encoding */
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "consent", "set", "C1", "--channel", "email",
                                      "--state", "opt_in", "--source", "website", "--text",
                                      "我同意接收优惠信息", NULL),
                     0);
    crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = "mkt:C1:mail",
                                             .channel = "email",
                                             .to = "wang@example.cn",
                                             .tpl = "service_offer",
                                             .customer = "C1",
                                             .dealer = "D1"});
    crm_h_ntf_wait_state(&f, "mkt:C1:mail", "sent", S_WAIT_MS);
    json_t *mails = s_wait_mails(&f, "wang@example.cn", 1, S_WAIT_MS);
    json_t *m = json_array_get(mails, 0);
    assert_string_equal(s_json_s(m, "subject"), "王先生，深圳安途4S店冬季保养季邀您到店");
    const char *lu = s_json_s(m, "list_unsubscribe");
    assert_non_null(strstr(lu, "<https://"));
    assert_string_equal(s_json_s(m, "list_unsubscribe_post"), "List-Unsubscribe=One-Click");
    assert_int_equal(json_array_size(json_object_get(m, "problems")), 0);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(m, "encoded_words"), i, w)
        assert_true(strlen(json_string_value(w)) <= 75);
    json_decref(mails);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 5. retries */

static void
test_a_passing_gateway_failure_is_retried_honouring_retry_after_until_it_goes(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_anytime, NULL);
    crm_h_ntf_ctl(&f, "/_ctl/fault",
                  "{\"prefix\":\"/sms/send\",\"mode\":\"status\",\"status\":503,\"count\":2,"
                  "\"headers\":{\"Retry-After\":\"1\"}}");
    s_reminder(&f, "retry:C1:1", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "retry:C1:1", "sent delivered", S_WAIT_MS);
    int64_t t[8];
    assert_int_equal(s_http_times(&f, "/sms/send", "OutId=retry%3AC1%3A1", t, 8), 3);
    for (int k = 1; k < 3; k++)
        if (t[k] - t[k - 1] < 950)
            fail_msg("attempt %d came %lld ms after the one before (Retry-After: 1)", k + 1,
                     (long long) (t[k] - t[k - 1]));
    assert_int_equal(crm_h_ntf_events(&f, "notify.deferred", "retry:C1:1"), 2);
    assert_int_equal(crm_h_ntf_events(&f, "notify.deferred", "\"reason\":\"retry\""), 2);
    /* three requests reached the gateway: the notification says 3 attempts */
    char att[16], logp[400];
    crm_h_ntf_field(&f, "retry:C1:1", "attempts", att, sizeof att);
    json_t *sent = s_event(&f, "notify.sent", "retry:C1:1");
    if (strcmp(att, "3") || s_json_i64(sent, "attempt") != 3)
        fail_msg(
            "3 requests at the gateway, but attempts '%s' and notify.sent attempt %lld; see %s",
            att, (long long) s_json_i64(sent, "attempt"),
            crm_h_sys_log(&f.sys, "notifier", logp, sizeof logp));
    json_decref(sent);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 6. dead letters */

static void
test_a_permanent_failure_goes_to_the_dead_letter_stream_and_is_retried_from_it(void **state)
{
    (void) state;
    static const char *const env[] = {"CRM_QUIET_TRANSACTIONAL=none", "CRM_MAX_ATTEMPTS=3", NULL};
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, env, NULL);
    crm_h_ntf_ctl(
        &f, "/_ctl/fault",
        "{\"prefix\":\"/sms/send\",\"mode\":\"aliyun\",\"code\":\"isv.MOBILE_NUMBER_ILLEGAL\","
        "\"message\":\"invalid mobile\",\"count\":-1}");
    s_reminder(&f, "dlq:C1:1", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "dlq:C1:1", "dead", S_WAIT_MS);
    s_expect_field(&f, "dlq:C1:1", "reason", "permanent");
    s_wait_events(&f, "notify.failed", "dlq:C1:1", 1, S_WAIT_MS);
    json_t *ev = s_event(&f, "notify.failed", "dlq:C1:1");
    assert_string_equal(s_json_s(ev, "reason"), "permanent");
    assert_string_equal(s_json_s(ev, "code"), "isv.MOBILE_NUMBER_ILLEGAL");
    assert_true(json_is_true(json_object_get(ev, "dlq")));
    json_decref(ev);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "notify", "dlq", "list", NULL), 0);
    assert_non_null(strstr(s_out(&f), "dlq:C1:1"));
    assert_non_null(strstr(s_out(&f), "isv.MOBILE_NUMBER_ILLEGAL"));

    crm_h_ntf_ctl(&f, "/_ctl/clear", "{}");
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "notify", "dlq", "retry", "dlq:C1:1", NULL), 0);
    crm_h_ntf_wait_state(&f, "dlq:C1:1", "sent delivered", S_WAIT_MS);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "notify", "dlq", "list", NULL), 0);
    assert_non_null(strstr(s_out(&f), "retried"));

    /* retries run out: dead, exhausted, after 3 attempts */
    crm_h_ntf_ctl(&f, "/_ctl/fault",
                  "{\"prefix\":\"/sms/send\",\"mode\":\"status\",\"status\":500,\"count\":-1}");
    s_reminder(&f, "dlq:C1:2", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "dlq:C1:2", "dead", S_WAIT_MS);
    s_expect_field(&f, "dlq:C1:2", "reason", "exhausted");
    int tries = crm_h_ntf_http_count(&f, "/sms/send", "OutId=dlq%3AC1%3A2");
    char att[16];
    crm_h_ntf_field(&f, "dlq:C1:2", "attempts", att, sizeof att);
    if (tries != 3 || strcmp(att, "3"))
        fail_msg("exhausted after %d request(s) at the gateway, attempts '%s'; expected 3 and 3",
                 tries, att);
    ev = s_event(&f, "notify.failed", "dlq:C1:2");
    assert_non_null(ev);
    assert_string_equal(s_json_s(ev, "reason"), "exhausted");
    assert_int_equal(s_json_i64(ev, "attempts"), 3);
    assert_true(json_is_true(json_object_get(ev, "dlq")));
    json_decref(ev);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 7. gateway limit */

static void
test_the_gateways_own_flow_control_defers_the_sms_about_a_minute_and_does_not_fail_it(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_anytime, NULL);
    crm_h_ntf_ctl(
        &f, "/_ctl/fault",
        "{\"prefix\":\"/sms/send\",\"mode\":\"aliyun\",\"code\":\"isv.BUSINESS_LIMIT_CONTROL\","
        "\"message\":\"触发分钟级流控Permits:1\",\"count\":1}");
    int64_t asked = crm_now_ms();
    s_reminder(&f, "limit:C1:1", "C1", "13812345678");
    crm_h_ntf_wait_state(&f, "limit:C1:1", "deferred", S_WAIT_MS);
    s_expect_field(&f, "limit:C1:1", "reason", "gateway_limit");
    s_wait_events(&f, "notify.deferred", "limit:C1:1", 1, S_WAIT_MS);
    json_t *ev = s_event(&f, "notify.deferred", "limit:C1:1");
    assert_string_equal(s_json_s(ev, "reason"), "gateway_limit");
    int64_t until = s_json_i64(ev, "until");
    json_decref(ev);
    if (until < asked + 55000 || until > crm_now_ms() + 65000)
        fail_msg("deferred until %lld, %lld ms after it was asked (expected about 60 s)",
                 (long long) until, (long long) (until - asked));
    assert_int_equal(crm_h_ntf_events(&f, "notify.failed", "limit:C1:1"), 0);
    s_expect_field(&f, "limit:C1:1", "state", "deferred");
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 8. webhook signatures */

static void
test_a_dealer_webhook_verifies_with_its_secret_and_with_each_secret_during_a_rotation(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, NULL, NULL);
    char url[200];
    s_hook_url(&f, "/hook/d1", url, sizeof url);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--url", url, "--secret",
                                      S_SECRET_A, NULL),
                     0);
    s_dealer_note(&f, "hook:D1:1");
    crm_h_ntf_wait_state(&f, "hook:D1:1", "sent", S_WAIT_MS);
    s_wait_http(&f, "/hook/d1", "followup_overdue", 1, S_WAIT_MS);
    json_t *req = crm_h_ntf_http_last(&f, "/hook/d1");
    json_t *h = json_object_get(req, "headers");
    assert_string_equal(s_json_s(req, "method"), "POST");
    assert_true(strlen(s_json_s(h, "webhook-id")) > 0);
    assert_true(strlen(s_json_s(h, "webhook-timestamp")) > 0);
    assert_non_null(strstr(s_json_s(h, "webhook-signature"), "v1,"));
    json_decref(req);

    char *out = NULL;
    const char *good[] = {S_SECRET_A, NULL}, *bad[] = {S_SECRET_B, NULL};
    int rc = s_verify(f.http_log, good, &out);
    if (rc != 0 || !strstr(out, "verified"))
        fail_msg("verify_webhook.py with the dealer's secret: exit %d\n%s", rc, out ? out : "");
    assert_non_null(strstr(out, "\"ok\""));
    free(out);
    rc = s_verify(f.http_log, bad, &out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "mismatch"));
    free(out);

    /* a rotation: a new secret shown once; both sign while they overlap */
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--rotate", NULL), 0);
    char *s = strstr(s_out(&f), "secret=whsec_");
    assert_non_null(s);
    char fresh[120];
    snprintf(fresh, sizeof fresh, "%.*s", (int) strcspn(s + 7, " \r\n"), s + 7);
    assert_string_not_equal(fresh, S_SECRET_A);
    s_dealer_note(&f, "hook:D1:2");
    crm_h_ntf_wait_state(&f, "hook:D1:2", "sent", S_WAIT_MS);
    s_wait_http(&f, "/hook/d1", "hook:D1:2", 1, S_WAIT_MS);
    char alone[400];
    req = s_last_hook_alone(&f, "/hook/d1", alone, sizeof alone);
    const char *sig = s_json_s(json_object_get(req, "headers"), "webhook-signature");
    const char *second = strstr(sig, "v1,");
    assert_non_null(second);
    assert_non_null(strstr(second + 3, "v1,"));
    json_decref(req);
    const char *old_only[] = {S_SECRET_A, NULL}, *new_only[] = {fresh, NULL};
    rc = s_verify(alone, old_only, &out);
    if (rc != 0)
        fail_msg("after the rotation, the old secret alone: exit %d\n%s", rc, out ? out : "");
    free(out);
    rc = s_verify(alone, new_only, &out);
    if (rc != 0)
        fail_msg("after the rotation, the new secret alone: exit %d\n%s", rc, out ? out : "");
    free(out);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 9. disabling */

static void test_a_failing_endpoint_is_disabled_and_the_dealers_contact_told(void **state)
{
    (void) state;
    static const char *const env[] = {"CRM_WEBHOOK_DISABLE_AFTER_MS=1500", NULL};
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, env, NULL);
    char url[200];
    s_hook_url(&f, "/hook/d1", url, sizeof url);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--url", url,
                                      "--contact-email", "it@d1.example", NULL),
                     0);
    crm_h_ntf_ctl(&f, "/_ctl/fault",
                  "{\"prefix\":\"/hook/d1\",\"mode\":\"status\",\"status\":500,\"count\":-1}");
    s_dealer_note(&f, "off:D1:1");
    s_wait_events(&f, "webhook.changed", "\"state\":\"disabled\"", 1, S_WAIT_MS);
    assert_true(crm_h_ntf_http_count(&f, "/hook/d1", NULL) >= 2); /* retried before that */
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "show", "D1", NULL), 0);
    assert_non_null(strstr(s_out(&f), "disabled"));
    json_t *mails = s_wait_mails(&f, "it@d1.example", 1, S_WAIT_MS);
    json_t *m = json_array_get(mails, 0);
    assert_non_null(strstr(s_json_s(m, "subject"), "贵店接口已停用：D1"));
    assert_non_null(strstr(s_json_s(m, "body"), url));
    assert_int_equal(json_array_size(json_object_get(m, "problems")), 0);
    json_decref(mails);
    crm_h_ntf_wait_state(&f, "off:D1:1", "dead", S_WAIT_MS);

    int hooks = crm_h_ntf_http_count(&f, "/hook/d1", NULL);
    s_dealer_note(&f, "off:D1:2");
    crm_h_ntf_wait_state(&f, "off:D1:2", "dead", S_WAIT_MS);
    s_expect_field(&f, "off:D1:2", "reason", "endpoint_disabled");
    assert_int_equal(crm_h_ntf_http_count(&f, "/hook/d1", NULL), hooks);

    /* enabled again, a 410 disables at once */
    crm_h_ntf_ctl(&f, "/_ctl/clear", "{}");
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--enable", NULL), 0);
    S_CTL_UNTIL(&f, "enabled", S_WAIT_MS, "webhook", "show", "D1");
    crm_h_ntf_ctl(&f, "/_ctl/fault",
                  "{\"prefix\":\"/hook/d1\",\"mode\":\"status\",\"status\":410,\"count\":1}");
    s_dealer_note(&f, "off:D1:3");
    crm_h_ntf_wait_state(&f, "off:D1:3", "dead", S_WAIT_MS);
    s_expect_field(&f, "off:D1:3", "reason", "endpoint_disabled");
    assert_int_equal(crm_h_ntf_http_count(&f, "/hook/d1", NULL),
                     hooks + 1); /* no retry after a 410 */
    s_wait_events(&f, "webhook.changed", "\"state\":\"disabled\"", 2, S_WAIT_MS);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "show", "D1", NULL), 0);
    assert_non_null(strstr(s_out(&f), "disabled"));
    assert_non_null(strstr(s_out(&f), "410"));
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 10. not_after */

static void
test_a_message_past_its_not_after_is_dropped_and_a_restart_sends_no_stale_backlog(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_anytime, NULL);
    crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = "late:C1:1",
                                             .channel = "sms",
                                             .to = "13812345678",
                                             .tpl = "testdrive_reminder",
                                             .customer = "C1",
                                             .dealer = "D1",
                                             .params = {"at=2026-12-05 10:00"},
                                             .not_after = crm_now_ms() - 60000});
    crm_h_ntf_wait_state(&f, "late:C1:1", "failed", S_WAIT_MS);
    s_expect_field(&f, "late:C1:1", "reason", "expired");
    s_wait_events(&f, "notify.failed", "late:C1:1", 1, S_WAIT_MS);

    assert_int_equal(crm_h_sys_kill(&f.sys, "notifier", SIGTERM), 0);
    int64_t na = crm_now_ms() + 1000;
    for (int i = 1; i <= 3; i++) {
        char rid[40];
        snprintf(rid, sizeof rid, "backlog:C1:%d", i);
        crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = rid,
                                                 .channel = "sms",
                                                 .to = "13812345678",
                                                 .tpl = "testdrive_reminder",
                                                 .customer = "C1",
                                                 .dealer = "D1",
                                                 .params = {"at=2026-12-05 10:00"},
                                                 .not_after = na});
    }
    while (crm_now_ms() < na + 1000) /* the backlog goes stale while no notifier runs */
        usleep(50 * 1000);
    crm_h_sys_spawn(&f.sys, "notifier", NULL);
    for (int i = 1; i <= 3; i++) {
        char rid[40];
        snprintf(rid, sizeof rid, "backlog:C1:%d", i);
        crm_h_ntf_wait_state(&f, rid, "failed", S_WAIT_MS);
        s_expect_field(&f, rid, "reason", "expired");
    }
    assert_int_equal(crm_h_ntf_http_count(&f, "/sms/send", NULL), 0);
    assert_int_equal(crm_h_ntf_events(&f, "notify.sent", NULL), 0);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 11. escalation */

static void
test_an_escalated_test_drive_reaches_the_crm_department_and_the_dealers_sales_manager(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, NULL, NULL);
    char url[200];
    s_hook_url(&f, "/hook/d1", url, sizeof url);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--url", url,
                                      "--contact-mobile", "13712345678", NULL),
                     0);
    int64_t at = crm_h_ntf_cst(2026, 12, 5, 10, 0);
    redisReply *r = crm_store_cmd(f.sys.store, "HSET crm:td:T5 at %lld dealer_id D1",
                                  (long long) at);
    freeReplyObject(r);
    crm_tx_t *tx = crm_tx_new("scheduler", 1000000);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_testdrive_escalated);
    CRM_SET_STR(&m, testdrive_escalated, testdrive_id, "T5");
    CRM_SET_STR(&m, testdrive_escalated, dealer_id, "D1");
    CRM_SET_STR(&m, testdrive_escalated, reason, "no_ack_24h");
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
    crm_h_sys_commit(&f.sys, tx);
    crm_tx_destroy(&tx);

    json_t *mails = s_wait_mails(&f, "crm@carmaker.example", 1, S_WAIT_MS);
    assert_string_equal(s_json_s(json_array_get(mails, 0), "subject"),
                        "试驾升级：T5 经销商D1未确认");
    json_decref(mails);
    s_wait_http(&f, "/sms/send", "PhoneNumbers=13712345678", 1, S_WAIT_MS);
    json_t *req = crm_h_ntf_http_last(&f, "/sms/send");
    char *code = crm_h_ntf_form(json_string_value(json_object_get(req, "body")), "TemplateCode");
    assert_string_equal(code, "testdrive_escalated_manager");
    free(code);
    json_decref(req);
    s_wait_http(&f, "/hook/d1", "T5", 1, S_WAIT_MS);
    crm_h_ntf_wait_state(&f, "esc:T5:no_ack_24h:crm", "sent", S_WAIT_MS);
    crm_h_ntf_wait_state(&f, "esc:T5:no_ack_24h:manager", "sent delivered", S_WAIT_MS);
    crm_h_ntf_wait_state(&f, "esc:T5:no_ack_24h:dealer", "sent", S_WAIT_MS);
    crm_h_ntf_down(&f);
}

/* ------------------------------------------------------------ 12. call tasks */

static void test_a_call_request_opens_a_call_task_that_crmctl_lists(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_anytime, NULL);
    crm_tx_t *tx = crm_tx_new("scheduler", 1000000);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_notify_request);
    CRM_SET_STR(&m, notify_request, request_id, "call:C1:1");
    CRM_SET_STR(&m, notify_request, channel, "call");
    CRM_SET_STR(&m, notify_request, to, "D1");
    CRM_SET_STR(&m, notify_request, template, "followup_call");
    CRM_SET_STR(&m, notify_request, customer_id, "C1");
    CRM_SET_STR(&m, notify_request, recipient_id, "S1");
    CRM_SET_STR(&m, notify_request, dealer_id, "D1");
    crm_strs_push(&m.body.notify_request.params, "reason=试驾后三天回访");
    m.body.notify_request.has.params = true;
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
    crm_h_sys_commit(&f.sys, tx);
    crm_tx_destroy(&tx);

    crm_h_ntf_wait_state(&f, "call:C1:1", "sent", S_WAIT_MS);
    s_expect_field(&f, "call:C1:1", "provider_id", "P1");
    s_wait_events(&f, "notify.call", "call:C1:1", 1, S_WAIT_MS);
    json_t *ev = s_event(&f, "notify.call", "call:C1:1");
    assert_string_equal(s_json_s(ev, "call_id"), "P1");
    assert_string_equal(s_json_s(ev, "queue"), "D1");
    assert_string_equal(s_json_s(ev, "consultant_id"), "S1");
    assert_string_equal(s_json_s(ev, "customer_id"), "C1");
    assert_non_null(strstr(s_json_s(ev, "text"), "请致电王先生：试驾后三天回访"));
    json_decref(ev);
    redisReply *r = crm_store_cmd(f.sys.store, "HGET crm:call:P1 state");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "open");
    freeReplyObject(r);
    r = crm_store_cmd(f.sys.store, "HGET crm:call:P1 consultant_id");
    assert_string_equal(r->str, "S1");
    freeReplyObject(r);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "tasks", "list", "--calls", NULL), 0);
    if (!strstr(s_out(&f), "P1"))
        fail_msg("crmctl tasks list --calls does not list P1:\n%s", s_out(&f));
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "tasks", "list", "--dealer", "D1", NULL), 0);
    if (!strstr(s_out(&f), "P1"))
        fail_msg("crmctl tasks list --dealer D1 does not list P1:\n%s", s_out(&f));
    crm_h_ntf_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_quiet_hours_defer_an_sms_to_08_00_and_never_drop_it_while_critical_goes_at_once),
        cmocka_unit_test(
            test_the_daily_cap_defers_the_third_sms_to_the_next_china_day_and_spares_other_customers),
        cmocka_unit_test(test_an_sms_reply_td_opts_out_and_the_ledger_shows_why),
        cmocka_unit_test(
            test_marketing_needs_a_current_opt_in_and_carries_the_opt_out_line_and_list_unsubscribe),
        cmocka_unit_test(
            test_a_passing_gateway_failure_is_retried_honouring_retry_after_until_it_goes),
        cmocka_unit_test(
            test_a_permanent_failure_goes_to_the_dead_letter_stream_and_is_retried_from_it),
        cmocka_unit_test(
            test_the_gateways_own_flow_control_defers_the_sms_about_a_minute_and_does_not_fail_it),
        cmocka_unit_test(
            test_a_dealer_webhook_verifies_with_its_secret_and_with_each_secret_during_a_rotation),
        cmocka_unit_test(test_a_failing_endpoint_is_disabled_and_the_dealers_contact_told),
        cmocka_unit_test(
            test_a_message_past_its_not_after_is_dropped_and_a_restart_sends_no_stale_backlog),
        cmocka_unit_test(
            test_an_escalated_test_drive_reaches_the_crm_department_and_the_dealers_sales_manager),
        cmocka_unit_test(test_a_call_request_opens_a_call_task_that_crmctl_lists),
    };
    const char *only = getenv("CRM_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
