/*  crm-intake as its submitters see it: a real intake process, a real
 *  redis-server, a REQ socket like a website's back end.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

typedef struct {
    crm_h_sys_t sys;
    crm_store_t *store;
    zsock_t *req;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, false) != 0)
        return -1;
    f->store = f->sys.store;
    crm_h_sys_spawn(&f->sys, "intake", NULL);
    f->req = zsock_new_req(NULL);
    zsock_connect(f->req, "tcp://127.0.0.1:%d", f->sys.intake);
    zsock_set_rcvtimeo(f->req, 5000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    zsock_destroy(&f->req);
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

/* Sends raw bytes, returns the decoded answer (asserts it arrives). */
static void ask_raw(fx_t *f, const void *data, size_t len, crm_msg_t *answer, msgpack_sbuffer *raw)
{
    assert_int_equal(zsock_send(f->req, "b", data, len), 0);
    zframe_t *fr = zframe_recv(f->req);
    assert_non_null(fr);
    if (raw)
        msgpack_sbuffer_write(raw, (const char *) zframe_data(fr), zframe_size(fr));
    crm_err_t err;
    assert_int_equal(crm_msg_decode(zframe_data(fr), zframe_size(fr), answer, &err), 0);
    zframe_destroy(&fr);
}

/* "key=value" pairs of a lead.submit; testdrive_at given as "+<hours>". */
static void submit(fx_t *f, crm_msg_t *answer, msgpack_sbuffer *raw, ...)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_lead_submit);
    snprintf(m.id, sizeof m.id, "test-%lld", (long long) crm_mono_us());
    snprintf(m.producer, sizeof m.producer, "test");
    m.ts = crm_now_ms();
    CRM_SET_STR(&m, lead_submit, channel, "website");
    va_list ap;
    va_start(ap, raw);
    for (const char *kv; (kv = va_arg(ap, const char *));) {
        const char *eq = strchr(kv, '=');
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int) (eq - kv), kv);
        const char *v = eq + 1;
        crm_body_lead_submit_t *b = &m.body.lead_submit;
        if (!strcmp(key, "testdrive_at"))
            CRM_SET_I64(&m, lead_submit, testdrive_at, crm_now_ms() + atoll(v) * 3600000LL);
        else if (!strcmp(key, "testdrive"))
            CRM_SET_BOOL(&m, lead_submit, testdrive, !strcmp(v, "true"));
#define S_FIELD(name)                                                                              \
    else if (!strcmp(key, #name)) CRM_SET_STR(&m, lead_submit, name, v);
        S_FIELD(submission_id) S_FIELD(channel) S_FIELD(name) S_FIELD(mobile) S_FIELD(email)
        S_FIELD(id_number) S_FIELD(city) S_FIELD(province) S_FIELD(home_phone) S_FIELD(model)
        S_FIELD(dealer_id) S_FIELD(postcode) S_FIELD(address) S_FIELD(birthday) S_FIELD(gender)
#undef S_FIELD
        else fail_msg("unknown test field %s", key);
        (void) b;
    }
    va_end(ap);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(&m, &buf, NULL), 0);
    crm_msg_clear(&m);
    ask_raw(f, buf.data, buf.size, answer, raw);
    msgpack_sbuffer_destroy(&buf);
}

static bool has_entry(const crm_strs_t *list, const char *prefix)
{
    for (size_t i = 0; i < list->n; i++)
        if (!strncmp(list->v[i], prefix, strlen(prefix)))
            return true;
    return false;
}

static char *hget(fx_t *f, const char *key, const char *field)
{
    redisReply *r = crm_store_cmd(f->store, "HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static void test_an_accepted_lead_is_stored_and_announced(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    submit(f, &a, NULL, "submission_id=web-1", "name=张三", "mobile=+86 138-1234-5678",
           "email=zhang@qq.com", "city=北京市", "province=京", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    assert_string_equal(a.body.lead_accepted.submission_id, "web-1");
    assert_string_equal(a.body.lead_accepted.lead_id, "L1");
    assert_string_equal(a.body.lead_accepted.customer_id, "C1");
    assert_false(a.body.lead_accepted.merged);
    /* findings, not rejections: no address, no postcode */
    assert_true(has_entry(&a.body.lead_accepted.findings, "address|missing|"));
    assert_true(has_entry(&a.body.lead_accepted.findings, "postcode|missing|"));
    crm_msg_clear(&a);
    char *mobile = hget(f, "crm:cust:{C1}", "mobile"), *prov = hget(f, "crm:cust:{C1}", "province"),
         *city = hget(f, "crm:cust:{C1}", "city");
    assert_string_equal(mobile, "13812345678");
    assert_string_equal(prov, "北京市");
    assert_string_equal(city, "北京");
    free(mobile), free(prov), free(city);
    /* the record's findings as it stands are crm-auditor's, not intake's */
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:cust:{C1}:findings"), 0);
    assert_int_equal(crm_h_int(f->store, "GET crm:{lead}:seq"), 1);
    assert_int_equal(crm_h_int(f->store, "GET crm:{customer}:seq"), 1);
    char *idx = NULL;
    redisReply *r = crm_store_cmd(f->store, "GET crm:idx:mobile:13812345678");
    idx = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    assert_string_equal(idx, "C1");
    free(idx);
}

static void test_a_resent_submission_gets_the_first_answer_and_creates_nothing(void **state)
{
    fx_t *f = *state;
    crm_msg_t a, b;
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init(&first);
    msgpack_sbuffer_init(&second);
    submit(f, &a, &first, "submission_id=web-2", "name=李四", "mobile=13912345678", NULL);
    submit(f, &b, &second, "submission_id=web-2", "name=李四", "mobile=13912345678", NULL);
    /* The first answer again: the same message, answering the new request
       (corr is the id of the request it answers). */
    assert_string_equal(a.id, b.id);
    assert_string_not_equal(a.corr, b.corr);
    snprintf(b.corr, sizeof b.corr, "%s", a.corr);
    char *ja = crm_msg_to_json(&a), *jb = crm_msg_to_json(&b);
    assert_string_equal(ja, jb);
    free(ja), free(jb);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:lead:L2"), 0);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), 1);
    crm_msg_clear(&a);
    crm_msg_clear(&b);
    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
}

static void test_a_known_mobile_attaches_the_lead_and_never_blanks_a_field(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    submit(f, &a, NULL, "submission_id=s1", "name=王五", "mobile=13712345678",
           "email=wang@163.com", "city=上海", NULL);
    crm_msg_clear(&a);
    /* Full-width digits, a new e-mail, no city: same customer, city kept. */
    submit(f, &a, NULL, "submission_id=s2", "name=王五", "mobile=１３７１２３４５６７８",
           "email=wang5@126.com", "channel=autoshow", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    assert_true(a.body.lead_accepted.merged);
    assert_string_equal(a.body.lead_accepted.customer_id, "C1");
    assert_string_equal(a.body.lead_accepted.lead_id, "L2");
    crm_msg_clear(&a);
    char *email = hget(f, "crm:cust:{C1}", "email"), *city = hget(f, "crm:cust:{C1}", "city");
    assert_string_equal(email, "wang5@126.com");
    assert_string_equal(city, "上海");
    free(email), free(city);
    assert_int_equal(crm_h_int(f->store, "LLEN crm:cust:{C1}:leads"), 1); /* the first is the record's first_lead */
    /* The old e-mail is kept in the history, with channel and lead. */
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:cust:{C1}:history - +");
    bool found = false;
    for (size_t i = 0; r && i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        bool is_email = false, old_ok = false, ch_ok = false;
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            is_email |= !strcmp(kv->element[k]->str, "email") && !strcmp(kv->element[k + 1]->str, "wang5@126.com");
            old_ok |= !strcmp(kv->element[k]->str, "email.old") && !strcmp(kv->element[k + 1]->str, "wang@163.com");
            ch_ok |= !strcmp(kv->element[k]->str, "channel") && !strcmp(kv->element[k + 1]->str, "autoshow");
        }
        found |= is_email && old_ok && ch_ok;
    }
    freeReplyObject(r);
    assert_true(found);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), 3); /* created, created, merged */
}

/* A new customer's values are its record: no history of its own to hold
   them again; what was received where the rules rewrote it stays with the
   lead, byte for byte; a later change is in the history with the value it
   replaced. */
static void test_a_new_customer_is_its_record_and_its_lead_keeps_what_was_received(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    submit(f, &a, NULL, "submission_id=raw-1", "name=孙七", "mobile=１３６１２３４５６７８", "city=上海", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    crm_msg_clear(&a);
    char *mobile = hget(f, "crm:cust:{C1}", "mobile"), *raw = hget(f, "crm:lead:L1", "mobile.raw");
    assert_string_equal(mobile, "13612345678");
    assert_non_null(raw);
    assert_string_equal(raw, "１３６１２３４５６７８");
    free(mobile), free(raw);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:cust:{C1}:history"), 0);
    /* the city changes: the history has the change and the first value */
    submit(f, &a, NULL, "submission_id=raw-2", "name=孙七", "mobile=13612345678", "city=北京", NULL);
    assert_true(a.body.lead_accepted.merged);
    crm_msg_clear(&a);
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:cust:{C1}:history - +");
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    const redisReply *kv = r->element[0]->element[1];
    assert_string_equal(crm_reply_field(kv, "city"), "北京");
    assert_string_equal(crm_reply_field(kv, "city.old"), "上海");
    assert_string_equal(crm_reply_field(kv, "lead"), "L2");
    assert_null(crm_reply_field(kv, "mobile.raw"));
    freeReplyObject(r);
}

static void test_the_same_id_number_in_15_and_18_digits_is_the_same_customer(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    submit(f, &a, NULL, "submission_id=i1", "name=赵六", "mobile=13612345678",
           "id_number=11010519491231002X", NULL);
    crm_msg_clear(&a);
    submit(f, &a, NULL, "submission_id=i2", "name=赵六", "mobile=13512345678",
           "id_number=110105491231002", NULL);
    assert_true(a.body.lead_accepted.merged);
    assert_string_equal(a.body.lead_accepted.customer_id, "C1");
    crm_msg_clear(&a);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:cust:{C2}"), 0); /* ids are unique, not dense */
    assert_int_equal(crm_h_int(f->store, "LLEN crm:cust:{C1}:leads"), 1); /* the first is the record's first_lead */
}

static void test_a_lead_without_name_or_phone_is_rejected_naming_the_fields(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    submit(f, &a, NULL, "submission_id=bad-1", "email=x@qq.com", NULL);
    assert_int_equal(a.type, CRM_T_lead_rejected);
    assert_true(has_entry(&a.body.lead_rejected.errors, "name|required|"));
    assert_true(has_entry(&a.body.lead_rejected.errors, "mobile|required|"));
    assert_string_equal(a.body.lead_rejected.quarantine_id, "Q1");
    crm_msg_clear(&a);
    assert_int_equal(crm_h_int(f->store, "ZCARD crm:quarantine"), 1);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:{lead}:events"), 1); /* lead.rejected */
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:lead:L1"), 0);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:cust:{C1}"), 0);
}

static void test_test_drive_dates_are_required_and_never_in_the_past(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    submit(f, &a, NULL, "submission_id=td-1", "name=孙七", "mobile=13312345678", "testdrive=true", NULL);
    assert_int_equal(a.type, CRM_T_lead_rejected);
    assert_true(has_entry(&a.body.lead_rejected.errors, "testdrive_at|required|"));
    crm_msg_clear(&a);
    submit(f, &a, NULL, "submission_id=td-2", "name=孙七", "mobile=13312345678", "testdrive_at=-2", NULL);
    assert_int_equal(a.type, CRM_T_lead_rejected);
    assert_true(has_entry(&a.body.lead_rejected.errors, "testdrive_at|past|"));
    crm_msg_clear(&a);
    submit(f, &a, NULL, "submission_id=td-3", "name=孙七", "mobile=13312345678", "testdrive_at=+72",
           "dealer_id=D042", "model=408X", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    crm_msg_clear(&a);
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:{testdrive}:events - +");
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    const redisReply *frame = r->element[0]->element[1]->element[1];
    crm_msg_t ev;
    crm_err_t err;
    assert_int_equal(crm_msg_decode(frame->str, frame->len, &ev, &err), 0);
    assert_int_equal(ev.type, CRM_T_testdrive_requested);
    assert_string_equal(ev.body.testdrive_requested.dealer_id, "D042");
    assert_string_equal(ev.body.testdrive_requested.model, "408X");
    assert_true(ev.body.testdrive_requested.at > crm_now_ms() + 71 * 3600000LL);
    crm_msg_clear(&ev);
    freeReplyObject(r);
}

static void test_garbage_gets_an_answer_naming_the_problem_and_intake_carries_on(void **state)
{
    fx_t *f = *state;
    crm_msg_t a;
    ask_raw(f, "\x81\xa1x", 3, &a, NULL);
    assert_int_equal(a.type, CRM_T_lead_rejected);
    assert_int_equal(a.body.lead_rejected.errors.n, 1);
    /* a one-entry map with a truncated key: the envelope is what is wrong */
    assert_true(has_entry(&a.body.lead_rejected.errors, "envelope|malformed|"));
    crm_msg_clear(&a);
    assert_true(crm_h_alive(f->sys.pids[crm_h_service_index("intake")]));
    submit(f, &a, NULL, "submission_id=ok-after", "name=周八", "mobile=13212345678", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    crm_msg_clear(&a);
    /* what was received is kept for review, with where and why */
    assert_int_equal(crm_h_int(f->store, "XLEN crm:rejects"), 1);
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:rejects - +");
    const redisReply *kv = r->element[0]->element[1];
    assert_string_equal(crm_reply_field(kv, "origin"), "leads");
    assert_string_equal(crm_reply_field(kv, "kind"), "request");
    assert_string_equal(crm_reply_field(kv, "field"), "envelope");
    assert_int_equal(crm_reply_field_reply(kv, "frame")->len, 3);
    freeReplyObject(r);
}

static void test_a_lead_without_submission_id_is_keyed_by_its_content(void **state)
{
    fx_t *f = *state;
    crm_msg_t a, b;
    submit(f, &a, NULL, "name=吴九", "mobile=13312345678", "city=深圳", NULL);
    submit(f, &b, NULL, "name=吴九", "mobile=13312345678", "city=深圳", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    /* json: + 64 hex digits of SHA-256, the key crmctl computes for the same lead as JSON */
    assert_int_equal(strncmp(a.body.lead_accepted.submission_id, "json:", 5), 0);
    assert_int_equal(strlen(a.body.lead_accepted.submission_id), 5 + 64);
    assert_string_equal(a.body.lead_accepted.lead_id, b.body.lead_accepted.lead_id);
    assert_int_equal(crm_h_int(f->store, "EXISTS crm:lead:L2"), 0);
    crm_msg_clear(&a);
    crm_msg_clear(&b);
}

static void test_the_same_bytes_sent_again_get_the_same_bytes_back(void **state)
{
    fx_t *f = *state;
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_lead_submit);
    snprintf(m.id, sizeof m.id, "req-42");
    snprintf(m.producer, sizeof m.producer, "test");
    m.ts = crm_now_ms();
    CRM_SET_STR(&m, lead_submit, submission_id, "web-42");
    CRM_SET_STR(&m, lead_submit, channel, "website");
    CRM_SET_STR(&m, lead_submit, name, "郑十");
    CRM_SET_STR(&m, lead_submit, mobile, "13412345678");
    msgpack_sbuffer req, first, second;
    msgpack_sbuffer_init(&req);
    msgpack_sbuffer_init(&first);
    msgpack_sbuffer_init(&second);
    assert_int_equal(crm_msg_encode(&m, &req, NULL), 0);
    crm_msg_clear(&m);
    crm_msg_t a, b;
    ask_raw(f, req.data, req.size, &a, &first);
    ask_raw(f, req.data, req.size, &b, &second);
    assert_string_equal(a.corr, "req-42");
    assert_int_equal(first.size, second.size);
    assert_memory_equal(first.data, second.data, first.size);
    /* kept for resends, for the documented retention (90 days) */
    redisReply *r = crm_store_cmd(f->store, "EVAL %s 0", "return redis.call('PTTL', redis.call('KEYS', 'crm:ans:intake:*')[1])");
    long long ttl = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    assert_true(ttl > 89LL * 86400000 && ttl <= 90LL * 86400000);
    crm_msg_clear(&a);
    crm_msg_clear(&b);
    msgpack_sbuffer_destroy(&req);
    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_an_accepted_lead_is_stored_and_announced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_resent_submission_gets_the_first_answer_and_creates_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_known_mobile_attaches_the_lead_and_never_blanks_a_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_customer_is_its_record_and_its_lead_keeps_what_was_received, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_same_id_number_in_15_and_18_digits_is_the_same_customer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_lead_without_name_or_phone_is_rejected_naming_the_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_drive_dates_are_required_and_never_in_the_past, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_gets_an_answer_naming_the_problem_and_intake_carries_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_lead_without_submission_id_is_keyed_by_its_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_same_bytes_sent_again_get_the_same_bytes_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
