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

/* ------------------------------------------------------------ cases */

static void test_an_email_reads_as_the_chinese_template_in_any_mail_reader(void **state)
{
    (void) state;
    crm_h_ntf_t f;
    crm_h_ntf_up(&f, false, NULL, NULL);
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
    crm_h_ntf_up(&f, false, NULL, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_email_reads_as_the_chinese_template_in_any_mail_reader),
        cmocka_unit_test(test_an_sms_goes_to_the_gateway_with_its_out_id_and_the_receipt_marks_it_delivered),
    };
    const char *only = getenv("CRM_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
