/*  crm-notifier against real peers: a local SMTP server (aiosmtpd,
 *  tests/peers/smtp_sink.py) that captures every message, and a local HTTP
 *  server (tests/peers/http_peer.py) that is the SMS gateway (receipts,
 *  replies, limit errors) and the dealers' webhook endpoints (failing,
 *  slow or down on request). What is checked is what a customer's phone,
 *  a mail reader, a dealer's verifier and the CRM department would see.
 *
 *  Every case starts its own Redis, peers and crm-notifier (some with a
 *  clock the test sets). CRM_TEST_ONLY=<name> runs the matching cases.
 *  CRM_TEST_PYTHON is the interpreter (default /usr/bin/python3, Debian's,
 *  with aiosmtpd).
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

/* The real clock runs these cases: whatever the hour in China, no quiet
   hours (test_notifier_rules checks them with a clock of its own). */
static const char *const s_daytime[] = {"CRM_QUIET_TRANSACTIONAL=none", NULL};

/* ------------------------------------------------------------ cases */

static void test_an_email_reads_as_the_chinese_template_in_any_mail_reader(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_daytime, NULL);
    crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = "esc:T9:no_ack_24h:crm", .channel = "email", .to = "crm",
                             .tpl = "testdrive_escalated_crm", .recipient = "crm", .dealer = "D1",
                             .params = {"testdrive_id=T9", "dealer_id=D1", "at=2026-12-05 10:00", "reason=no_ack_24h"}});
    crm_h_ntf_wait_state(&f, "esc:T9:no_ack_24h:crm", "sent", 10000);
    json_t *mails = crm_h_ntf_mails(&f);
    assert_int_equal(json_array_size(mails), 1);
    json_t *m = json_array_get(mails, 0);
    assert_string_equal(json_string_value(json_object_get(m, "subject")), "试驾升级：T9 经销商D1未确认");
    const char *body = json_string_value(json_object_get(m, "body"));
    assert_non_null(strstr(body, "客户关系部：\n\n试驾单 T9（试驾时间 2026-12-05 10:00）已派发给经销商 D1，"
                                 "对方未在规定时间内确认（原因代码：no_ack_24h）。"));
    assert_int_equal(json_array_size(json_object_get(m, "problems")), 0);
    json_t *words = json_object_get(m, "encoded_words");
    assert_true(json_array_size(words) >= 2); /* the subject is split into several words */
    size_t i;
    json_t *w;
    json_array_foreach(words, i, w) assert_true(strlen(json_string_value(w)) <= 75);
    /* transactional / critical mail carries no unsubscribe header */
    assert_true(json_is_null(json_object_get(m, "list_unsubscribe")) ||
                !json_string_value(json_object_get(m, "list_unsubscribe")));
    char id[32], mid[200];
    crm_h_ntf_nid(&f, "esc:T9:no_ack_24h:crm", id, sizeof id);
    snprintf(mid, sizeof mid, "<%s.", id);
    assert_non_null(strstr(json_string_value(json_object_get(m, "message_id")), mid));
    assert_int_equal(crm_h_ntf_events(&f, "notify.sent", "esc:T9:no_ack_24h:crm"), 1);
    json_decref(mails);
    crm_h_ntf_down(&f);
}

static void test_an_sms_goes_to_the_gateway_with_its_out_id_and_the_receipt_marks_it_delivered(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, s_daytime, NULL);
    crm_h_ntf_request(&f, &(crm_h_ntf_req_t){.rid = "sched:t:T1:1", .channel = "sms", .to = "13812345678", .tpl = "testdrive_reminder",
                             .customer = "C1", .dealer = "D1", .params = {"at=2026-12-05 10:00"}});
    crm_h_ntf_wait_state(&f, "sched:t:T1:1", "delivered", 10000);
    json_t *req = crm_h_ntf_http_last(&f, "/sms/send");
    assert_non_null(req);
    const char *body = json_string_value(json_object_get(req, "body"));
    char *phone = crm_h_ntf_form(body, "PhoneNumbers"), *sign = crm_h_ntf_form(body, "SignName"), *code = crm_h_ntf_form(body, "TemplateCode");
    char *params = crm_h_ntf_form(body, "TemplateParam"), *out = crm_h_ntf_form(body, "OutId");
    assert_string_equal(phone, "13812345678");
    assert_string_equal(sign, "汽车客服");
    assert_string_equal(code, "testdrive_reminder");
    assert_string_equal(out, "sched:t:T1:1");
    json_error_t e;
    json_t *p = json_loads(params, 0, &e);
    assert_string_equal(json_string_value(json_object_get(p, "customer_name")), "王先生");
    assert_string_equal(json_string_value(json_object_get(p, "at")), "2026-12-05 10:00");
    assert_string_equal(json_string_value(json_object_get(p, "dealer_name")), "深圳安途4S店");
    json_decref(p);
    free(phone), free(sign), free(code), free(params), free(out);
    json_decref(req);
    char biz[64];
    crm_h_ntf_field(&f, "sched:t:T1:1", "provider_id", biz, sizeof biz);
    assert_true(strlen(biz) > 3);
    assert_int_equal(crm_h_ntf_events(&f, "notify.delivered", "sched:t:T1:1"), 1);
    crm_h_ntf_down(&f);
}

/* How many times each id was received by the peers: SMS by OutId, e-mail
   by Message-ID (<N.created@...>), webhooks by webhook-id (ntf_N). */
static int s_received(crm_h_ntf_t *f, zhash_t *counts)
{
    usleep(150 * 1000);
    int total = 0;
    char *t = crm_h_slurp(f->http_log);
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        const char *p = json_string_value(json_object_get(o, "path"));
        int status = (int) json_integer_value(json_object_get(o, "status"));
        char key[128] = "";
        if (p && !strcmp(p, "/sms/send") && status == 200) {
            char *out = crm_h_ntf_form(json_string_value(json_object_get(o, "body")), "OutId");
            char id[32];
            crm_h_ntf_nid(f, out ? out : "", id, sizeof id);
            snprintf(key, sizeof key, "%s", id);
            free(out);
        } else if (p && !strncmp(p, "/hook/", 6) && status == 204) {
            const char *wid = json_string_value(json_object_get(json_object_get(o, "headers"), "webhook-id"));
            if (wid && !strncmp(wid, "ntf_", 4))
                snprintf(key, sizeof key, "%s", wid + 4);
        }
        if (key[0]) {
            zhash_update(counts, key, (void *) ((intptr_t) zhash_lookup(counts, key) + 1));
            total++;
        }
        json_decref(o);
    }
    free(t);
    json_t *mails = crm_h_ntf_mails(f);
    size_t i;
    json_t *m;
    json_array_foreach(mails, i, m)
    {
        const char *mid = json_string_value(json_object_get(m, "message_id"));
        char key[64] = "";
        if (mid && mid[0] == '<')
            snprintf(key, sizeof key, "%.*s", (int) strcspn(mid + 1, "."), mid + 1);
        if (key[0]) {
            zhash_update(counts, key, (void *) ((intptr_t) zhash_lookup(counts, key) + 1));
            total++;
        }
    }
    json_decref(mails);
    return total;
}

static void test_sigkill_twenty_times_during_a_run_loses_nothing_and_every_second_send_is_explained(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    /* slow peers, so that a kill finds sends in flight */
    const char *env[] = {"CRM_CAP_SMS=0", "CRM_CAP_EMAIL=0", "CRM_NOTIFY_MAX_INFLIGHT=32", "CRM_QUIET_TRANSACTIONAL=none", NULL};
    const char *smtp[] = {"--delay-ms", "40", NULL};
    crm_h_ntf_up(&f, false, env, smtp);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--url", "http://127.0.0.1:1/hook/d1", NULL), 0);
    char url[120];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/d1", f.http_port);
    assert_int_equal(crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--url", url, NULL), 0);
    crm_h_ntf_ctl(&f, "/_ctl/fault", "{\"prefix\":\"/sms/send\",\"mode\":\"slow\",\"delay_ms\":40,\"count\":-1}");
    crm_h_ntf_ctl(&f, "/_ctl/fault", "{\"prefix\":\"/hook/d1\",\"mode\":\"slow\",\"delay_ms\":40,\"count\":-1}");
    enum { N = 300 };
    static char rids[N][48];
    for (int i = 0; i < N; i++) {
        snprintf(rids[i], sizeof rids[i], "kill:%d", i);
        crm_h_ntf_req_t q = {.rid = rids[i]};
        char p1[64];
        if (i % 3 == 0) {
            q.channel = "sms", q.to = i % 2 ? "13812345678" : "13912345678", q.tpl = "testdrive_reminder";
            q.customer = i % 2 ? "C1" : "C2", q.dealer = "D1";
            snprintf(p1, sizeof p1, "at=2026-12-05 10:%02d", i % 60);
            q.params[0] = p1;
        } else if (i % 3 == 1) {
            q.channel = "email", q.to = "crm", q.tpl = "testdrive_escalated_crm", q.recipient = "crm", q.dealer = "D1";
            snprintf(p1, sizeof p1, "testdrive_id=T%d", i);
            q.params[0] = p1, q.params[1] = "dealer_id=D1", q.params[2] = "at=2026-12-05 10:00",
            q.params[3] = "reason=no_ack_24h";
        } else {
            q.channel = "dealer", q.to = "D1", q.tpl = "followup_overdue";
            snprintf(p1, sizeof p1, "record=K%d", i);
            q.params[0] = "manager_id=M1", q.params[1] = "consultant_id=S1", q.params[2] = "customer_id=C1",
            q.params[3] = p1;
        }
        crm_h_ntf_request(&f, &q);
    }
    srand(7);
    for (int k = 0; k < 20; k++) {
        usleep((useconds_t) (100 + rand() % 250) * 1000);
        crm_h_sys_kill(&f.sys, "notifier", SIGKILL);
        crm_h_sys_spawn(&f.sys, "notifier", NULL);
    }
    for (int i = 0; i < N; i++)
        crm_h_ntf_wait_state(&f, rids[i], "sent delivered", 60000);
    zhash_t *counts = zhash_new();
    int total = s_received(&f, counts);
    long long uncertain_sum = 0, extra = 0;
    for (int i = 0; i < N; i++) {
        char id[32], unc[24], chn[16];
        crm_h_ntf_nid(&f, rids[i], id, sizeof id);
        crm_h_ntf_field(&f, rids[i], "uncertain", unc, sizeof unc);
        crm_h_ntf_field(&f, rids[i], "channel", chn, sizeof chn);
        long long got = (long long) (intptr_t) zhash_lookup(counts, id), u = atoll(unc);
        if (got < 1)
            fail_msg("%s (%s, %s) never reached its peer", rids[i], id, chn);
        if (got - 1 > u)
            fail_msg("%s (%s, %s) received %lld times, but only %lld starts found it being sent", rids[i], id, chn, got,
                     u);
        /* the gateway's records are looked up first: an SMS is never sent twice */
        if (!strcmp(chn, "sms") && got != 1) {
            redisReply *r = crm_store_cmd(f.sys.store, "XRANGE crm:notify:%s:log - +", id);
            for (size_t k = 0; r && k < r->elements; k++) {
                const redisReply *kv = r->element[k]->element[1];
                print_message("  %s state=%s reason=%s at=%s attempt=%s\n", r->element[k]->element[0]->str,
                              crm_reply_field_or(kv, "state", "-"), crm_reply_field_or(kv, "reason", "-"),
                              crm_reply_field_or(kv, "at", "-"), crm_reply_field_or(kv, "attempt", "-"));
            }
            freeReplyObject(r);
            fail_msg("%s (%s): SMS received %lld times", rids[i], id, got);
        }
        uncertain_sum += u;
        extra += got - 1;
    }
    print_message("# %d notifications, 20 kills: %d receptions, %lld second sends, %lld found being sent at a start\n",
                  N, total, extra, uncertain_sum);
    assert_true(uncertain_sum > 0); /* the kills did land in the window */
    zhash_destroy(&counts);
    crm_h_ntf_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_email_reads_as_the_chinese_template_in_any_mail_reader),
        cmocka_unit_test(test_an_sms_goes_to_the_gateway_with_its_out_id_and_the_receipt_marks_it_delivered),
        cmocka_unit_test(test_sigkill_twenty_times_during_a_run_loses_nothing_and_every_second_send_is_explained),
    };
    const char *only = getenv("CRM_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
