/*  crmctl for the dealer uplink, as the CRM department uses it: staff,
 *  follow-ups, orders and deliveries, service visits, assignment, and a
 *  lost prospect that waits for its manager and is reactivated to another
 *  dealer. A real crm-dispatcher and redis-server; every change is a
 *  crmctl command, checked by its event, by the record in Redis and by what
 *  crmctl shows. The customers come in as dealers file them (customer.file
 *  on the dispatcher's control endpoint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define DEC5_1000 1796436000000LL /* 2026-12-05 10:00 CST */
#define DEC1_1530 1796110200000LL /* 2026-12-01 15:30 CST */
#define VIN "1M8GDM9AXKP042788"

typedef struct {
    crm_h_sys_t s;
    zsock_t *ctl; /* on crm-dispatcher's control endpoint */
    int n;
} fx_t;

#define crmctl(f, ...) crm_h_sys_crmctl(&(f)->s, __VA_ARGS__, NULL)

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->s, false, false) != 0)
        return -1;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    zsock_destroy(&f->ctl);
    crm_h_sys_stop(&f->s);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ plumbing */

/* crmctl's exit code must be `want`; otherwise the test fails with what
   it printed. */
static void s_expect(fx_t *f, int want, const char *what, int rc)
{
    if (rc != want) {
        char *out = crm_h_slurp(f->s.out);
        fail_msg("crmctl %s: exit %d, expected %d: %.900s", what, rc, want, out);
    }
}
#define ok(f, ...) s_expect((f), 0, #__VA_ARGS__, crmctl(f, __VA_ARGS__))
#define refused(f, ...) s_expect((f), 1, #__VA_ARGS__, crmctl(f, __VA_ARGS__))
#define usage(f, ...) s_expect((f), 2, #__VA_ARGS__, crmctl(f, __VA_ARGS__))

static void s_out_shows(fx_t *f, const char *needle)
{
    if (!crm_h_file_contains(f->s.out, needle)) {
        char *out = crm_h_slurp(f->s.out);
        fail_msg("crmctl did not print \"%s\":\n%.1500s", needle, out);
    }
}

/* The newest event of `type` on `stream` whose body has `field` =
   `value`, decoded into `out` (cleared by the caller);
   fails the test when there is none. */
static void s_event(fx_t *f, const char *stream, crm_type_t type, const char *field,
                    const char *value, crm_msg_t *out)
{
    redisReply *r = crm_store_cmd(f->s.store, "XREVRANGE " CRM_KEY_EVENTS_FMT " + - COUNT 500",
                                  stream);
    assert_non_null(r);
    char quoted[120];
    snprintf(quoted, sizeof quoted, "\"%s\":\"%s\"", field, value);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *frame = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_err_t err;
        if (!frame || crm_msg_decode(frame->str, frame->len, out, &err) != 0)
            continue;
        char *json = crm_msg_to_json(out);
        bool match = out->type == type && json && strstr(json, quoted);
        free(json);
        if (match) {
            freeReplyObject(r);
            return;
        }
        crm_msg_clear(out);
    }
    freeReplyObject(r);
    fail_msg("no %s with %s on the %s stream", crm_type_name(type), quoted, stream);
}

static long long s_count(fx_t *f, const char *stream, crm_type_t type)
{
    redisReply *r = crm_store_cmd(f->s.store, "XRANGE " CRM_KEY_EVENTS_FMT " - +", stream);
    assert_non_null(r);
    long long n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *frame = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_msg_t m;
        crm_err_t err;
        if (frame && crm_msg_decode(frame->str, frame->len, &m, &err) == 0) {
            n += m.type == type;
            crm_msg_clear(&m);
        }
    }
    freeReplyObject(r);
    return n;
}

/* A field of a hash ("" when absent); the caller frees. */
static char *s_hget(fx_t *f, const char *key, const char *field)
{
    redisReply *r = crm_store_cmd(f->s.store, "HGET %s %s", key, field);
    char *v = strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

static void s_hash_is(fx_t *f, const char *key, const char *field, const char *want)
{
    char *v = s_hget(f, key, field);
    if (strcmp(v, want))
        fail_msg("%s %s is '%s', expected '%s'", key, field, v, want);
    free(v);
}

/* Dealer `dealer` files a customer (as its system would over the uplink,
   here on the control endpoint), a fleet VIP when `vip`; the customer's
   id into `cid`. */
static void s_file(fx_t *f, const char *dealer, const char *name, const char *mobile, bool vip,
                   char *cid, size_t size)
{
    if (!f->ctl) {
        f->ctl = zsock_new(ZMQ_DEALER);
        assert_non_null(f->ctl);
        zsock_set_rcvtimeo(f->ctl, 8000);
        zsock_set_linger(f->ctl, 0);
        assert_int_equal(zsock_connect(f->ctl, "tcp://127.0.0.1:%d", f->s.control[1]), 0);
    }
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_customer_file);
    snprintf(m.id, sizeof m.id, "file-%d", ++f->n);
    m.ts = crm_now_ms();
    snprintf(m.producer, sizeof m.producer, "test");
    m.stream[0] = 0;
    char rid[32];
    snprintf(rid, sizeof rid, "file-%d", f->n);
    CRM_SET_STR(&m, customer_file, record_id, rid);
    CRM_SET_STR(&m, customer_file, dealer_id, dealer);
    CRM_SET_STR(&m, customer_file, name, name);
    CRM_SET_STR(&m, customer_file, mobile, mobile);
    CRM_SET_STR(&m, customer_file, city, "深圳");
    CRM_SET_STR(&m, customer_file, province, "广东");
    if (vip) {
        CRM_SET_BOOL(&m, customer_file, vip, true);
        CRM_SET_BOOL(&m, customer_file, fleet, true);
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(&m, &buf, NULL), 0);
    crm_msg_clear(&m);
    assert_int_equal(zsock_send(f->ctl, "b", buf.data, buf.size), 0);
    msgpack_sbuffer_destroy(&buf);
    zframe_t *fr = zframe_recv(f->ctl);
    if (!fr)
        fail_msg("crm-dispatcher did not answer customer.file");
    crm_msg_t a;
    crm_err_t err;
    assert_int_equal(crm_msg_decode(zframe_data(fr), zframe_size(fr), &a, &err), 0);
    zframe_destroy(&fr);
    /* a record's answer is a dealer.reply whichever endpoint it came by */
    assert_int_equal(a.type, CRM_T_dealer_reply);
    if (!a.body.dealer_reply.ok)
        fail_msg("customer.file refused: %s %s", a.body.dealer_reply.code ? a.body.dealer_reply.code : "-",
                 a.body.dealer_reply.message ? a.body.dealer_reply.message : "-");
    snprintf(cid, size, "%s", a.body.dealer_reply.customer_id ? a.body.dealer_reply.customer_id : "");
    crm_msg_clear(&a);
    assert_true(cid[0]);
    char key[64];
    snprintf(key, sizeof key, "crm:cust:{%s}", cid);
    s_hash_is(f, key, "dealer_id", dealer);
}

/* Dealers D1 and D2; at D1 a manager M1 and a consultant S1 under him. */
static void s_dealers(fx_t *f)
{
    ok(f, "dealer", "add", "D1", "--name", "深圳一店", "--province", "广东", "--city", "深圳");
    ok(f, "dealer", "add", "D2", "--name", "广州店", "--province", "广东", "--city", "广州");
    ok(f, "staff", "add", "M1", "--dealer", "D1", "--role", "manager", "--name", "李经理");
    ok(f, "staff", "add", "S1", "--dealer", "D1", "--role", "consultant", "--name", "张三",
       "--manager", "M1");
}

/* ------------------------------------------------------------ staff */

static void test_staff_are_added_listed_updated_and_leave_with_events(void **state)
{
    fx_t *f = *state;
    s_dealers(f);
    crm_msg_t e;
    s_event(f, "dealers", CRM_T_staff_added, "staff_id", "M1", &e);
    assert_string_equal(e.body.staff_added.dealer_id, "D1");
    assert_string_equal(e.body.staff_added.role, "manager");
    assert_string_equal(e.body.staff_added.name, "李经理");
    assert_false(e.body.staff_added.has.manager_id);
    crm_msg_clear(&e);
    s_event(f, "dealers", CRM_T_staff_added, "staff_id", "S1", &e);
    assert_string_equal(e.body.staff_added.role, "consultant");
    assert_string_equal(e.body.staff_added.manager_id, "M1");
    crm_msg_clear(&e);

    /* a manager must exist, at the same dealer, and be a manager */
    refused(f, "staff", "add", "S2", "--dealer", "D1", "--role", "consultant", "--name", "王五",
            "--manager", "M9");
    s_out_shows(f, "manager_id");
    refused(f, "staff", "add", "S2", "--dealer", "D1", "--role", "consultant", "--name", "王五",
            "--manager", "S1");
    ok(f, "staff", "add", "M2", "--dealer", "D2", "--role", "manager", "--name", "赵经理");
    refused(f, "staff", "add", "S2", "--dealer", "D1", "--role", "consultant", "--name", "王五",
            "--manager", "M2");
    assert_int_equal(crm_h_int(f->s.store, "SISMEMBER crm:dealer:D1:staff S2"), 0);
    /* the same id twice, a role that is none, a missing flag */
    refused(f, "staff", "add", "M1", "--dealer", "D1", "--role", "manager", "--name", "李经理");
    s_out_shows(f, "exists");
    refused(f, "staff", "add", "S3", "--dealer", "D1", "--role", "boss", "--name", "钱七");
    usage(f, "staff", "add", "S3", "--dealer", "D1", "--role", "consultant");
    assert_int_equal(s_count(f, "dealers", CRM_T_staff_added), 3);

    ok(f, "staff", "list", "--dealer", "D1");
    s_out_shows(f, "M1           manager    李经理");
    s_out_shows(f, "S1           consultant 张三");
    s_out_shows(f, "M1           active 0");
    s_out_shows(f, "2 staff at D1");

    ok(f, "staff", "update", "S1", "--dealer", "D1", "--name", "张三丰");
    s_event(f, "dealers", CRM_T_staff_updated, "staff_id", "S1", &e);
    assert_string_equal(e.body.staff_updated.dealer_id, "D1");
    bool named = false;
    for (size_t i = 0; i < e.body.staff_updated.changes.n; i++)
        named |= !strcmp(e.body.staff_updated.changes.v[i], "name=张三丰");
    assert_true(named);
    crm_msg_clear(&e);
    s_hash_is(f, "crm:dealer:D1:staff:S1", "name", "张三丰");
    refused(f, "staff", "update", "S9", "--dealer", "D1", "--name", "无名");

    ok(f, "staff", "leave", "S1", "--dealer", "D1", "--reason", "辞职");
    s_event(f, "dealers", CRM_T_staff_left, "staff_id", "S1", &e);
    assert_string_equal(e.body.staff_left.reason, "辞职");
    assert_int_equal(e.body.staff_left.customers, 0);
    crm_msg_clear(&e);
    s_hash_is(f, "crm:dealer:D1:staff:S1", "state", "left");
    ok(f, "staff", "list", "--dealer", "D1");
    s_out_shows(f, "M1           left   0");
    ok(f, "staff", "show", "S1", "--dealer", "D1");
    s_out_shows(f, "staff S1 at dealer D1: consultant 张三丰, left");
    s_out_shows(f, "manager    M1");
    s_out_shows(f, "(辞职)");
    ok(f, "staff", "show", "M1", "--dealer", "D1");
    s_out_shows(f, "reports    S1 (left)");
    refused(f, "staff", "show", "S9", "--dealer", "D1");
    usage(f, "staff", "list");
}

/* ------------------------------------------------------------ follow-up */

static void test_a_followup_is_recorded_with_every_field_and_shown(void **state)
{
    fx_t *f = *state;
    s_dealers(f);
    char c[32];
    s_file(f, "D1", "陈先生", "13812345671", true, c, sizeof c);
    /* --dealer left out: the customer's owning dealer, D1 */
    ok(f, "followup", "record", c, "--consultant", "S1", "--result", "visit", "--content",
       "到店看车", "--feedback", "价格偏高", "--grade", "A", "--expected-date", "2027-01-15",
       "--next", "2026-12-05 10:00", "--next-content", "电话回访", "--at", "2026-12-01 15:30");
    crm_msg_t e;
    s_event(f, "followup", CRM_T_followup_recorded, "customer_id", c, &e);
    const crm_body_followup_recorded_t *b = &e.body.followup_recorded;
    assert_string_equal(b->dealer_id, "D1");
    assert_string_equal(b->consultant_id, "S1");
    assert_string_equal(b->result, "visit");
    assert_string_equal(b->content, "到店看车");
    assert_string_equal(b->feedback, "价格偏高");
    assert_string_equal(b->grade, "A");
    assert_string_equal(b->expected_purchase_date, "2027-01-15");
    assert_int_equal(b->next_at, DEC5_1000);
    assert_string_equal(b->next_content, "电话回访");
    assert_int_equal(b->at, DEC1_1530);
    assert_true(b->has.record_id && !strncmp(b->record_id, "crmctl:", 7));
    assert_true(b->has.followup_id);
    char fid[40];
    snprintf(fid, sizeof fid, "%s", b->followup_id);
    crm_msg_clear(&e);

    ok(f, "customer", "show", c);
    s_out_shows(f, "owner         dealer D1 (深圳一店), consultant");
    s_out_shows(f, "grade A, expected purchase 2027-01-15");
    s_out_shows(f, "2026-12-01 15:30 CST");
    s_out_shows(f, fid);
    s_out_shows(f, "visit by S1 at D1: 到店看车");
    s_out_shows(f, "feedback: 价格偏高");
    s_out_shows(f, "next activity: 2026-12-05 10:00 CST 电话回访");
    s_out_shows(f, "flags fleet, VIP");
    /* the dealer's file in the history, with its channel and record id */
    s_out_shows(f, "陈先生   (dealer:D1, file-");

    /* a second, later one is the newest: its next activity is the one shown */
    ok(f, "followup", "record", c, "--dealer", "D1", "--consultant", "S1", "--result", "answered",
       "--content", "约了试驾", "--next", "2026-12-08 14:00", "--next-content", "试驾");
    ok(f, "customer", "show", c);
    s_out_shows(f, "next activity: 2026-12-08 14:00 CST 试驾");
    assert_int_equal(crm_h_int(f->s.store, "XLEN crm:cust:{%s}:followups", c), 2);

    /* who is not the dealer's staff, a result that is none, a bad time */
    refused(f, "followup", "record", c, "--consultant", "S9", "--result", "visit", "--content",
            "x");
    s_out_shows(f, "unknown");
    refused(f, "followup", "record", c, "--consultant", "S1", "--result", "dinner", "--content",
            "x");
    usage(f, "followup", "record", c, "--consultant", "S1", "--result", "visit", "--content", "x",
          "--at", "2026-02-30 10:00");
    usage(f, "followup", "record", c, "--consultant", "S1", "--result", "visit", "--content", "x",
          "--next", "2026-12-09 10:00");
    usage(f, "followup", "record", c, "--consultant", "S1", "--result", "visit", "--content", "x",
          "--price", "1");
    /* an unknown customer has no dealer to default to; with one, the dispatcher says so */
    refused(f, "followup", "record", "C999999", "--consultant", "S1", "--result", "visit",
            "--content", "x");
    s_out_shows(f, "give --dealer");
    refused(f, "followup", "record", "C999999", "--dealer", "D1", "--consultant", "S1", "--result",
            "visit", "--content", "x");
    s_out_shows(f, "unknown");
    assert_int_equal(s_count(f, "followup", CRM_T_followup_recorded), 2);
}

/* ------------------------------------------------------------ orders */

static void test_an_order_is_placed_delayed_delivered_and_serviced(void **state)
{
    fx_t *f = *state;
    s_dealers(f);
    char c[32];
    s_file(f, "D1", "周女士", "13812345672", false, c, sizeof c);
    ok(f, "order", "record", c, "--order", "O1", "--placed", "--model", "408", "--price", "150000",
       "--promised", "2026-12-20", "--consultant", "S1");
    crm_msg_t e;
    s_event(f, "order", CRM_T_order_placed, "order_id", "O1", &e);
    assert_string_equal(e.body.order_placed.customer_id, c);
    assert_string_equal(e.body.order_placed.dealer_id, "D1");
    assert_string_equal(e.body.order_placed.model, "408");
    assert_int_equal(e.body.order_placed.price, 150000);
    assert_string_equal(e.body.order_placed.promised_date, "2026-12-20");
    crm_msg_clear(&e);

    ok(f, "delivery", "record", "O1", "--dealer", "D1", "--delayed", "--promised", "2027-01-10",
       "--reason", "缺货");
    s_event(f, "order", CRM_T_delivery_delayed, "order_id", "O1", &e);
    assert_string_equal(e.body.delivery_delayed.promised_date, "2027-01-10");
    assert_string_equal(e.body.delivery_delayed.old_promised_date, "2026-12-20");
    assert_string_equal(e.body.delivery_delayed.reason, "缺货");
    assert_string_equal(e.body.delivery_delayed.customer_id, c);
    crm_msg_clear(&e);

    ok(f, "delivery", "record", "O1", "--dealer", "D1", "--delivered", "--vin", VIN, "--date",
       "2027-01-08");
    s_event(f, "order", CRM_T_vehicle_delivered, "order_id", "O1", &e);
    assert_string_equal(e.body.vehicle_delivered.vin, VIN);
    assert_string_equal(e.body.vehicle_delivered.date, "2027-01-08");
    assert_string_equal(e.body.vehicle_delivered.customer_id, c);
    assert_true(e.body.vehicle_delivered.has.late && e.body.vehicle_delivered.late);
    crm_msg_clear(&e);

    /* a work order by customer, and one by VIN alone (its owner's dealer) */
    ok(f, "service", "record", "--customer", c, "--work-order", "W1", "--date", "2027-02-01",
       "--mileage", "1500", "--work", "首保", "--amount", "380.5");
    s_event(f, "service", CRM_T_service_recorded, "work_order", "W1", &e);
    assert_string_equal(e.body.service_recorded.customer_id, c);
    assert_int_equal(e.body.service_recorded.amount_fen, 38050);
    assert_int_equal(e.body.service_recorded.mileage, 1500);
    crm_msg_clear(&e);
    ok(f, "service", "record", "--vin", VIN, "--work-order", "W2", "--date", "2027-06-01",
       "--amount", "1200");
    s_event(f, "service", CRM_T_service_recorded, "work_order", "W2", &e);
    assert_string_equal(e.body.service_recorded.customer_id, c);
    assert_string_equal(e.body.service_recorded.dealer_id, "D1");
    assert_int_equal(e.body.service_recorded.amount_fen, 120000);
    crm_msg_clear(&e);

    /* a dealer's order number is its own text; cancelled after it was placed */
    ok(f, "order", "record", c, "--order", "SO/2026/7", "--placed", "--model", "508", "--price",
       "200000", "--promised", "2027-03-01");
    ok(f, "order", "record", c, "--order", "SO/2026/7", "--cancelled", "--reason", "改买408");
    s_event(f, "order", CRM_T_order_cancelled, "order_id", "SO/2026/7", &e);
    assert_string_equal(e.body.order_cancelled.customer_id, c);
    assert_string_equal(e.body.order_cancelled.reason, "改买408");
    crm_msg_clear(&e);
    refused(f, "order", "record", c, "--order", "SO/2026/8", "--cancelled");

    ok(f, "customer", "show", c);
    s_out_shows(f, "D1:SO/2026/7");
    s_out_shows(f, "cancelled");
    s_out_shows(f, "reason: 改买408");
    s_out_shows(f, "stage         owner");
    s_out_shows(f, "D1:O1");
    s_out_shows(f, "delivered");
    s_out_shows(f, "408, 150000 yuan, promised 2027-01-10 (first promised 2026-12-20");
    s_out_shows(f, "delivered 2027-01-08 vin " VIN);
    s_out_shows(f, "  " VIN " 408");
    s_out_shows(f, "2027-02-01  work order W1 at D1, vin");
    s_out_shows(f, "1500 km, 380.50 yuan: 首保");
    s_out_shows(f, "work order W2");

    /* what the dispatcher cannot know, and what crmctl refuses itself */
    refused(f, "delivery", "record", "O9", "--dealer", "D1", "--delivered", "--vin", VIN, "--date",
            "2027-01-08");
    s_out_shows(f, "unknown");
    usage(f, "order", "record", c, "--order", "O2", "--placed", "--model", "408", "--price",
          "150000");
    usage(f, "order", "record", c, "--order", "O2", "--placed", "--cancelled");
    usage(f, "delivery", "record", "O1", "--dealer", "D1", "--delayed", "--promised", "2027-02-01");
    usage(f, "service", "record", "--work-order", "W3", "--date", "2027-06-01", "--dealer", "D1");
    usage(f, "service", "record", "--customer", c, "--work-order", "W3", "--date", "2027-06-01",
          "--amount", "1.234");
    assert_int_equal(s_count(f, "order", CRM_T_order_placed), 2);
    assert_int_equal(s_count(f, "service", CRM_T_service_recorded), 2);
}

static void test_a_customer_is_assigned_to_a_consultant(void **state)
{
    fx_t *f = *state;
    s_dealers(f);
    char c[32];
    s_file(f, "D1", "吴先生", "13812345673", false, c, sizeof c);
    ok(f, "customer", "assign", c, "--consultant", "S1", "--reason", "新客户");
    crm_msg_t e;
    s_event(f, "customer", CRM_T_owner_changed, "consultant_id", "S1", &e);
    assert_string_equal(e.body.owner_changed.customer_id, c);
    assert_string_equal(e.body.owner_changed.dealer_id, "D1");
    assert_string_equal(e.body.owner_changed.reason, "新客户");
    crm_msg_clear(&e);
    ok(f, "customer", "show", c);
    s_out_shows(f, "owner         dealer D1 (深圳一店), consultant S1 (张三)");
    ok(f, "staff", "list", "--dealer", "D1");
    s_out_shows(f, "M1           active 1");
    refused(f, "customer", "assign", c, "--consultant", "S9");
}

/* ------------------------------------------------------------ lost */

static void
test_a_lost_prospect_waits_for_approval_and_is_reactivated_to_another_dealer(void **state)
{
    fx_t *f = *state;
    s_dealers(f);
    char c[32], key[64];
    s_file(f, "D1", "郑先生", "13812345674", false, c, sizeof c);
    snprintf(key, sizeof key, "crm:cust:{%s}", c);

    ok(f, "lost", "request", c, "--consultant", "S1", "--reason", "other_brand", "--note",
       "买了别家的车");
    crm_msg_t e;
    s_event(f, "followup", CRM_T_prospect_lost_requested, "customer_id", c, &e);
    assert_string_equal(e.body.prospect_lost_requested.dealer_id, "D1");
    assert_string_equal(e.body.prospect_lost_requested.consultant_id, "S1");
    assert_string_equal(e.body.prospect_lost_requested.reason, "other_brand");
    assert_string_equal(e.body.prospect_lost_requested.note, "买了别家的车");
    crm_msg_clear(&e);
    s_hash_is(f, key, "stage", "lost_pending");
    ok(f, "lost", "list", "--dealer", "D1");
    char pending[128];
    snprintf(pending, sizeof pending, "%-10s lost_pending D1         S1         other_brand", c);
    s_out_shows(f, pending);
    s_out_shows(f, "other_brand");
    s_out_shows(f, "郑先生 / 买了别家的车");

    /* a consultant cannot approve; the manager can */
    refused(f, "lost", "approve", c, "--manager", "S1");
    s_hash_is(f, key, "stage", "lost_pending");
    assert_int_equal(s_count(f, "followup", CRM_T_prospect_lost), 0);
    ok(f, "lost", "approve", c, "--manager", "M1", "--note", "同意");
    s_event(f, "followup", CRM_T_prospect_lost, "customer_id", c, &e);
    assert_string_equal(e.body.prospect_lost.manager_id, "M1");
    assert_string_equal(e.body.prospect_lost.reason, "other_brand");
    crm_msg_clear(&e);
    s_hash_is(f, key, "stage", "lost");
    ok(f, "lost", "list");
    char row[128];
    snprintf(row, sizeof row, "%-10s lost         D1         S1         other_brand", c);
    s_out_shows(f, row);

    /* the carmaker gives it to D2 */
    ok(f, "lost", "reactivate", c, "--to-dealer", "D2", "--reason", "重新分配");
    s_event(f, "followup", CRM_T_prospect_reactivated, "customer_id", c, &e);
    assert_string_equal(e.body.prospect_reactivated.dealer_id, "D2");
    assert_string_equal(e.body.prospect_reactivated.old_dealer_id, "D1");
    crm_msg_clear(&e);
    s_event(f, "customer", CRM_T_owner_changed, "reason", "reactivated", &e);
    assert_string_equal(e.body.owner_changed.customer_id, c);
    assert_string_equal(e.body.owner_changed.dealer_id, "D2");
    assert_string_equal(e.body.owner_changed.old_dealer_id, "D1");
    crm_msg_clear(&e);
    s_hash_is(f, key, "dealer_id", "D2");
    s_event(f, "dealer.D2", CRM_T_dealer_assigned, "customer_id", c, &e);
    assert_string_equal(e.body.dealer_assigned.dealer_id, "D2");
    assert_string_equal(e.body.dealer_assigned.reason, "reactivated");
    assert_string_equal(e.body.dealer_assigned.customer_name, "郑先生");
    crm_msg_clear(&e);
    ok(f, "customer", "show", c);
    s_out_shows(f, "owner         dealer D2 (广州店)");

    /* D1 writing about it from now on is refused */
    refused(f, "followup", "record", c, "--dealer", "D1", "--consultant", "S1", "--result",
            "answered", "--content", "再联系");
    s_out_shows(f, "not_yours");
    /* only a lost prospect is reactivated */
    refused(f, "lost", "reactivate", c, "--to-dealer", "D1");
}

static void test_a_refused_loss_keeps_the_prospect(void **state)
{
    fx_t *f = *state;
    s_dealers(f);
    char c[32], key[64];
    s_file(f, "D1", "冯女士", "13812345675", false, c, sizeof c);
    snprintf(key, sizeof key, "crm:cust:{%s}", c);
    usage(f, "lost", "request", c, "--consultant", "S1");
    ok(f, "lost", "request", c, "--consultant", "S1", "--reason", "no_budget");
    ok(f, "lost", "refuse", c, "--manager", "M1", "--note", "再跟一个月");
    crm_msg_t e;
    s_event(f, "followup", CRM_T_prospect_lost_refused, "customer_id", c, &e);
    assert_string_equal(e.body.prospect_lost_refused.manager_id, "M1");
    assert_string_equal(e.body.prospect_lost_refused.note, "再跟一个月");
    crm_msg_clear(&e);
    s_hash_is(f, key, "stage", "prospect");
    ok(f, "lost", "list", "--dealer", "D1");
    assert_false(crm_h_file_contains(f->s.out, c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_staff_are_added_listed_updated_and_leave_with_events,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_followup_is_recorded_with_every_field_and_shown,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_order_is_placed_delayed_delivered_and_serviced,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_customer_is_assigned_to_a_consultant, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_lost_prospect_waits_for_approval_and_is_reactivated_to_another_dealer, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_loss_keeps_the_prospect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
