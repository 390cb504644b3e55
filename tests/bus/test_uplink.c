/*  The dealer uplink as a dealer's IT and the carmaker see it: what a
 *  dealer's system sends back on the gateway becomes the carmaker's
 *  customer store and events, once, field-checked, and only about the
 *  dealer's own customers.
 *
 *  One real crm-intake, crm-dispatcher and redis-server for the file; the
 *  dealers' clients are CZMQ CURVE sockets speaking tools/DEALERS.md
 *  directly; the CRM department's requests go to the dispatcher's control
 *  endpoint as crmctl sends them.
 *
 *  CRM_TEST_ONLY=<name> runs the cases whose name matches (cmocka filter).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define DAY_MS 86400000LL
#define S_SOCKS 16

static const char *const s_dealers[] = {"U1", "U2", "U3", "K1", "U4", NULL};

typedef struct {
    crm_h_sys_t sys;
    char server_key[41];
    char log[400];
    zsock_t *socks[S_SOCKS];
    int nsocks;
} fx_t;

/* ------------------------------------------------------------ fixture */

static const char *s_secret(fx_t *f, const char *dealer, char *out, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "%s.secret", dealer);
    crm_h_path(&f->sys.redis, name, out, size);
    return out;
}

static int group_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, true, false) != 0) {
        free(f);
        return -1;
    }
    crm_h_sys_spawn(&f->sys, "intake", NULL);
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    static const char *const aud[] = {"CRM_AUDIT_SCHEDULE=none", NULL};
    crm_h_sys_spawn(&f->sys, "auditor", aud);
    crm_h_sys_log(&f->sys, "dispatcher", f->log, sizeof f->log);
    int rc = 0;
    for (const char *const *d = s_dealers; *d && rc == 0; d++) {
        char secret[300];
        rc = crm_h_sys_crmctl(&f->sys, "dealer", "add", *d, "--name", "测试店", "--province",
                              "广东", "--city", "深圳", NULL) ||
             crm_h_sys_crmctl(&f->sys, "dealer", "cert", *d, "--out",
                              s_secret(f, *d, secret, sizeof secret), NULL);
    }
    zcert_t *server = rc == 0 ? zcert_load(f->sys.server_cert) : NULL;
    if (!server) {
        fprintf(stderr, "group setup failed (see %s, %s)\n", f->log, f->sys.out);
        crm_h_sys_stop(&f->sys);
        free(f);
        return -1;
    }
    snprintf(f->server_key, sizeof f->server_key, "%s", zcert_public_txt(server));
    zcert_destroy(&server);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fx_t *f = *state;
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

static int setup(void **state)
{
    ((fx_t *) *state)->nsocks = 0;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < f->nsocks; i++)
        zsock_destroy(&f->socks[i]);
    f->nsocks = 0;
    int i = crm_h_service_index("dispatcher");
    if (f->sys.pids[i] > 0 && !crm_h_alive(f->sys.pids[i])) {
        f->sys.pids[i] = 0;
        fprintf(stderr, "crm-dispatcher died during the case (see %s)\n", f->log);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ clients */

/* A dealer's request socket on the gateway, with its certificate. */
static zsock_t *s_dealer(fx_t *f, const char *dealer)
{
    char secret[300];
    zcert_t *cert = zcert_load(s_secret(f, dealer, secret, sizeof secret));
    assert_non_null(cert);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    assert_non_null(sock);
    zcert_apply(cert, sock);
    zcert_destroy(&cert);
    zsock_set_curve_serverkey(sock, f->server_key);
    zsock_set_linger(sock, 0);
    assert_int_equal(zsock_connect(sock, "tcp://127.0.0.1:%d", f->sys.gw_router), 0);
    assert_true(f->nsocks < S_SOCKS);
    f->socks[f->nsocks++] = sock;
    return sock;
}

/* The CRM department's socket on the dispatcher's control endpoint. */
static zsock_t *s_control(fx_t *f)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    assert_non_null(sock);
    zsock_set_linger(sock, 0);
    assert_int_equal(zsock_connect(sock, "tcp://127.0.0.1:%d",
                                   f->sys.control[crm_h_service_index("dispatcher")]),
                     0);
    f->socks[f->nsocks++] = sock;
    return sock;
}

static void s_encode(crm_msg_t *m, msgpack_sbuffer *out)
{
    if (!m->id[0])
        crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "uplinktest");
    msgpack_sbuffer_init(out);
    assert_int_equal(crm_msg_encode(m, out, NULL), 0);
}

/* The answer to the bytes sent, within timeout_ms; false when none. */
static bool s_answer(zsock_t *sock, const char *id, int timeout_ms, crm_msg_t *ans)
{
    int64_t deadline = crm_mono_ms() + timeout_ms;
    for (;;) {
        int left = (int) (deadline - crm_mono_ms());
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&item, 1, left) <= 0)
            return false;
        zframe_t *fr = zframe_recv(sock);
        assert_non_null(fr);
        crm_err_t err;
        int rc = crm_msg_decode(zframe_data(fr), zframe_size(fr), ans, &err);
        zframe_destroy(&fr);
        assert_int_equal(rc, 0);
        if (!strcmp(ans->corr, id))
            return true;
        crm_msg_clear(ans);
    }
}

/* Sends `m` (cleared) and returns its answer; sends the same bytes again
   when no answer comes in time, as a dealer's client does. */
static void s_ask(zsock_t *sock, crm_msg_t *m, crm_msg_t *ans)
{
    msgpack_sbuffer buf;
    s_encode(m, &buf);
    char id[CRM_ID_MAX];
    snprintf(id, sizeof id, "%s", m->id);
    crm_msg_clear(m);
    for (int tries = 0; tries < 5; tries++) {
        assert_int_equal(zmq_send(zsock_resolve(sock), buf.data, buf.size, 0), (int) buf.size);
        if (s_answer(sock, id, 3000, ans)) {
            msgpack_sbuffer_destroy(&buf);
            return;
        }
    }
    msgpack_sbuffer_destroy(&buf);
    fail_msg("no answer to %s", id);
}

/* Sends a request of `type` whose body is the name/value pairs (text, as
   crm_msg_set_text reads it; NULL-terminated) and returns its answer. */
static void s_req(zsock_t *sock, crm_msg_t *ans, crm_type_t type, ...) __attribute__((sentinel));
static void s_req(zsock_t *sock, crm_msg_t *ans, crm_type_t type, ...)
{
    crm_msg_t m;
    crm_msg_init(&m, type);
    va_list ap;
    va_start(ap, type);
    for (const char *name; (name = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        crm_err_t err;
        if (value && crm_msg_set_text(&m, name, value, &err) != 0)
            fail_msg("%s: cannot set %s", crm_type_name(type), name);
    }
    va_end(ap);
    s_ask(sock, &m, ans);
}

/* A number as text for s_req (eight at a time may be in use). */
static const char *s_i64(int64_t v)
{
    static char bufs[8][24];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%lld", (long long) v);
    return b;
}

static bool s_ok(const crm_msg_t *a)
{
    return a->type == CRM_T_dealer_reply ? a->body.dealer_reply.ok
                                         : a->type == CRM_T_reply && a->body.reply.ok;
}

static const char *s_code(const crm_msg_t *a)
{
    const char *c = a->type == CRM_T_dealer_reply ? a->body.dealer_reply.code : a->body.reply.code;
    return c ? c : "";
}

/* An answer must be ok; its message shown when not. */
static void s_assert_ok(const crm_msg_t *a, const char *what)
{
    if (!s_ok(a)) {
        const char *msg = a->type == CRM_T_dealer_reply ? a->body.dealer_reply.message
                                                        : a->body.reply.message;
        fail_msg("%s refused: %s %s", what, s_code(a), msg ? msg : "");
    }
}

static void s_assert_refused(const crm_msg_t *a, const char *code, const char *field)
{
    assert_false(s_ok(a));
    assert_string_equal(s_code(a), code);
    if (field && a->type == CRM_T_dealer_reply) {
        assert_true(a->body.dealer_reply.errors.n >= 1);
        assert_true(!strncmp(a->body.dealer_reply.errors.v[0], field, strlen(field)) &&
                    a->body.dealer_reply.errors.v[0][strlen(field)] == '|');
    }
}

/* crm:{<stream>}:seq: how many events a stream has had. */
static long long s_events(fx_t *f, const char *stream)
{
    long long n = crm_h_int(f->sys.store, "GET crm:{%s}:seq", stream);
    return n < 0 ? 0 : n; /* no event yet */
}

/* Events of type `type` on `stream` about `cid` (their bodies' customer_id). */
static int s_events_about(fx_t *f, const char *stream, const char *type, const char *cid)
{
    char want[80];
    snprintf(want, sizeof want, "\"customer_id\":\"%s\"", cid ? cid : "");
    return crm_h_events(f->sys.store, stream, type, cid ? want : NULL);
}

static char *s_hget(fx_t *f, const char *key, const char *field)
{
    redisReply *r = crm_store_cmd(f->sys.store, "HGET %s %s", key, field);
    assert_non_null(r);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static void s_assert_hash(fx_t *f, const char *key, const char *field, const char *want)
{
    char *v = s_hget(f, key, field);
    if (!v || strcmp(v, want))
        fail_msg("%s %s is %s, not %s", key, field, v ? v : "(none)", want);
    free(v);
}

/* staff.add on the control endpoint, as crmctl staff add sends it. */
static void s_staff(fx_t *f, const char *dealer, const char *id, const char *role,
                    const char *manager)
{
    zsock_t *c = s_control(f);
    crm_msg_t m, a;
    crm_msg_init(&m, CRM_T_staff_add);
    char rec[64];
    snprintf(rec, sizeof rec, "staff-%s-%s", dealer, id);
    CRM_SET_STR(&m, staff_add, record_id, rec);
    CRM_SET_STR(&m, staff_add, dealer_id, dealer);
    CRM_SET_STR(&m, staff_add, staff_id, id);
    CRM_SET_STR(&m, staff_add, role, role);
    CRM_SET_STR(&m, staff_add, name, "王五");
    CRM_SET_STR(&m, staff_add, manager_id, manager);
    s_ask(c, &m, &a);
    if (!s_ok(&a) && strcmp(s_code(&a), "exists"))
        s_assert_ok(&a, "staff.add");
    crm_msg_clear(&a);
}

/* A customer file the dealer sends; returns its customer id (malloc'ed). */
static char *s_file(fx_t *f, zsock_t *sock, const char *record, const char *name,
                    const char *mobile, crm_msg_t *ans)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_customer_file);
    CRM_SET_STR(&m, customer_file, record_id, record);
    CRM_SET_STR(&m, customer_file, name, name);
    CRM_SET_STR(&m, customer_file, mobile, mobile);
    CRM_SET_STR(&m, customer_file, address, "深圳市南山区科技园1号");
    CRM_SET_STR(&m, customer_file, postcode, "518057");
    CRM_SET_STR(&m, customer_file, city, "深圳");
    CRM_SET_STR(&m, customer_file, province, "广东");
    CRM_SET_STR(&m, customer_file, grade, "A");
    (void) f;
    s_ask(sock, &m, ans);
    s_assert_ok(ans, "customer.file");
    return strdup(ans->body.dealer_reply.customer_id);
}

/* ------------------------------------------------------------ cases */

/* A record breaking the audit rules is stored with its findings, never
   refused; only one that cannot be a record is. */
static void test_bad_customer_file_is_kept_with_its_findings(void **state)
{
    fx_t *f = *state;
    zsock_t *d = s_dealer(f, "U1");
    long long before = s_events(f, "customer");
    crm_msg_t a;
    s_req(d, &a, CRM_T_customer_file, "record_id", "DMS-0001", "name", "赵六", "postcode", "51805",
          "email", "zhao@@example", "id_number", "11010519491231002X", "vin", "LSVAM4187C2184847",
          "model", "408", "transmission", "自动", "vip", "1", NULL);
    s_assert_ok(&a, "a file with findings");
    assert_true(a.body.dealer_reply.created);
    const crm_strs_t *fs = &a.body.dealer_reply.findings;
    bool phone = false, postcode = false, email = false, sale = false;
    for (size_t i = 0; i < fs->n; i++) {
        phone |= !strncmp(fs->v[i], "mobile|required|", 16);
        postcode |= !strncmp(fs->v[i], "postcode|", 9);
        email |= !strncmp(fs->v[i], "email|", 6);
        sale |= !strncmp(fs->v[i], "sale_date|required|", 19);
    }
    assert_true(phone && postcode && email && sale);
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, a.body.dealer_reply.customer_id);
    s_assert_hash(f, key, "postcode", "51805");
    s_assert_hash(f, key, "dealer_id", "U1");
    s_assert_hash(f, key, "vip", "1");
    s_assert_hash(f, key, "stage", "owner");
    s_assert_hash(f, "crm:veh:LSVAM4187C2184847", "transmission", "automatic");
    s_assert_hash(f, "crm:veh:LSVAM4187C2184847", "customer_id", a.body.dealer_reply.customer_id);
    /* the record's findings, crm-auditor's: no phone, postcode, e-mail, sale date */
    assert_true(crm_h_wait_int(f->sys.store, 4, 10000, "HLEN %s:findings", key) >= 4);
    assert_int_equal(s_events(f, "customer"), before + 2); /* customer.recorded, owner.changed */
    crm_msg_clear(&a);

    /* Neither a name nor an ID number: not a record. */
    s_req(d, &a, CRM_T_customer_file, "record_id", "DMS-0002", "mobile", "13900000002", NULL);
    s_assert_refused(&a, "required", "name");
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "customer"), before + 2);
}

/* The prospect the carmaker sent and the owner the dealer filed are one
   customer, with both histories. */
static void test_lead_and_dealer_file_are_one_customer(void **state)
{
    fx_t *f = *state;
    zsock_t *in = zsock_new(ZMQ_DEALER);
    assert_non_null(in);
    zsock_set_linger(in, 0);
    assert_int_equal(zsock_connect(in, "tcp://127.0.0.1:%d", f->sys.intake), 0);
    f->socks[f->nsocks++] = in;
    crm_msg_t a;
    s_req(in, &a, CRM_T_lead_submit, "submission_id", "web-uplink-1", "channel", "website", "name",
          "钱七", "mobile", "13811112222", "dealer_id", "U1", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    char *cid = strdup(a.body.lead_accepted.customer_id);
    crm_msg_clear(&a);

    zsock_t *d = s_dealer(f, "U1");
    s_req(d, &a, CRM_T_customer_file, "record_id", "DMS-QIAN", "name", "钱七", "mobile",
          "138 1111 2222", "home_phone", "0755-86001234", "vin", "LFV2A21K6D4012345", "sale_date",
          "2026/11/3", NULL);
    s_assert_ok(&a, "the owner's file");
    assert_string_equal(a.body.dealer_reply.customer_id, cid);
    assert_false(a.body.dealer_reply.created);
    crm_msg_clear(&a);
    char key[80];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    s_assert_hash(f, key, "home_phone", "0755-86001234");
    s_assert_hash(f, key, "mobile", "13811112222");
    s_assert_hash(f, key, "dealer_id", "U1");
    /* both histories */
    redisReply *h = crm_store_cmd(f->sys.store, "XRANGE %s:history - +", key);
    assert_non_null(h);
    bool web = false, dealer = false;
    for (size_t i = 0; i < h->elements; i++) {
        const char *ch = crm_reply_field(h->element[i]->element[1], "channel");
        web |= ch && !strcmp(ch, "website");
        dealer |= ch && !strcmp(ch, "dealer:U1");
    }
    freeReplyObject(h);
    /* the lead's values are the record's first ones, not repeated in the
       history; the dealer's change is there */
    assert_true(!web && dealer);
    s_assert_hash(f, key, "first_channel", "website");
    s_assert_hash(f, "crm:veh:LFV2A21K6D4012345", "sale_date", "2026-11-03");
    free(cid);
}

/* A follow-up, an order, a delay, a delivery and a work order become their
   events; the same records sent again change nothing. */
static void test_dealer_work_becomes_events_once(void **state)
{
    fx_t *f = *state;
    s_staff(f, "U2", "M-U2", "manager", NULL);
    s_staff(f, "U2", "S-U2", "consultant", "M-U2");
    zsock_t *d = s_dealer(f, "U2");
    crm_msg_t a;
    char *cid = s_file(f, d, "U2-C1", "孙八", "13922223333", &a);
    crm_msg_clear(&a);
    long long fu = s_events(f, "followup"), od = s_events(f, "order"), sv = s_events(f, "service");
    for (int round = 0; round < 2; round++) {
        int64_t now = crm_now_ms();
        s_req(d, &a, CRM_T_followup_record, "record_id", "U2-F1", "customer_id", cid,
              "consultant_id", "S-U2", "result", "visit", "content", "到店看车，试驾 408", "grade",
              "H", "expected_purchase_date", "2026-12-05", "next_at", s_i64(now + DAY_MS),
              "next_content", "电话确认价格", NULL);
        s_assert_ok(&a, "followup.record");
        crm_msg_clear(&a);

        s_req(d, &a, CRM_T_order_record, "record_id", "U2-O1", "order_id", "SO-1001", "action",
              "placed", "customer_id", cid, "model", "408", "price", s_i64(159800), "promised_date",
              "2026-12-20", NULL);
        s_assert_ok(&a, "order.record");
        crm_msg_clear(&a);

        s_req(d, &a, CRM_T_delivery_record, "record_id", "U2-D1", "order_id", "SO-1001", "action",
              "delayed", "promised_date", "2026-12-28", "reason", "车辆在途", NULL);
        s_assert_ok(&a, "delivery.record delayed");
        crm_msg_clear(&a);

        s_req(d, &a, CRM_T_delivery_record, "record_id", "U2-D2", "order_id", "SO-1001", "action",
              "delivered", "vin", "LSGPC52U0DF111111", "date", "2026-12-27", NULL);
        s_assert_ok(&a, "delivery.record delivered");
        crm_msg_clear(&a);

        s_req(d, &a, CRM_T_service_record, "record_id", "U2-W1", "work_order", "WO-77", "vin",
              "LSGPC52U0DF111111", "date", "2027-01-10", "mileage", s_i64(3000), "work", "首保",
              "amount_fen", s_i64(35050), NULL);
        s_assert_ok(&a, "service.record");
        assert_string_equal(a.body.dealer_reply.customer_id, cid);
        crm_msg_clear(&a);

        /* the second round is a resend: nothing new */
        assert_int_equal(s_events(f, "followup"), fu + 1);
        assert_int_equal(s_events(f, "order"), od + 3);
        assert_int_equal(s_events(f, "service"), sv + 1);
    }
    assert_int_equal(s_events_about(f, "followup", "followup.recorded", cid), 1);
    assert_int_equal(s_events_about(f, "order", "order.placed", cid), 1);
    assert_int_equal(s_events_about(f, "order", "delivery.delayed", cid), 1);
    assert_int_equal(s_events_about(f, "order", "vehicle.delivered", cid), 1);
    assert_int_equal(s_events_about(f, "service", "service.recorded", cid), 1);
    char key[80];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    s_assert_hash(f, key, "stage", "owner");
    s_assert_hash(f, key, "grade", "H");
    s_assert_hash(f, key, "consultant_id", "S-U2");
    /* the order, as crmctl finds it: through the customer's orders */
    redisReply *o = crm_store_cmd(f->sys.store, "SMEMBERS %s:orders", key);
    assert_non_null(o);
    assert_int_equal(o->elements, 1);
    char okey[160];
    snprintf(okey, sizeof okey, "crm:order:%s", o->element[0]->str);
    freeReplyObject(o);
    s_assert_hash(f, okey, "order_id", "SO-1001");
    s_assert_hash(f, okey, "state", "delivered");
    s_assert_hash(f, okey, "promised_date", "2026-12-28");
    s_assert_hash(f, okey, "first_promised_date", "2026-12-20");
    assert_int_equal(crm_h_int(f->sys.store, "XLEN %s:followups", key), 1);
    assert_int_equal(crm_h_int(f->sys.store, "XLEN %s:service", key), 1);

    /* field-level refusals */
    s_req(d, &a, CRM_T_followup_record, "record_id", "U2-F-bad", "customer_id", cid,
          "consultant_id", "S-U2", "result", "chatted", NULL);
    s_assert_refused(&a, "invalid", "result");
    crm_msg_clear(&a);
    s_req(d, &a, CRM_T_followup_record, "record_id", "U2-F-nobody", "customer_id", cid,
          "consultant_id", "NOBODY", "result", "answered", NULL);
    s_assert_refused(&a, "unknown", "consultant_id");
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "followup"), fu + 1);
    /* a work order naming one customer and another customer's car */
    char *other = s_file(f, d, "U2-C2", "孙九", "13922224444", &a);
    crm_msg_clear(&a);
    s_req(d, &a, CRM_T_service_record, "record_id", "U2-W-mixed", "work_order", "WO-78",
          "customer_id", other, "vin", "LSGPC52U0DF111111", "date", "2027-01-11", NULL);
    s_assert_refused(&a, "invalid", "vin");
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "service"), sv + 1);
    free(other);
    free(cid);
}

/* A dealer writes only its own customers' records. */
static void test_another_dealers_customer_is_not_yours(void **state)
{
    fx_t *f = *state;
    s_staff(f, "U3", "S-U3", "consultant", NULL);
    zsock_t *d1 = s_dealer(f, "U1"), *d3 = s_dealer(f, "U3");
    crm_msg_t a;
    char *cid = s_file(f, d1, "U1-LI", "李四", "13733334444", &a);
    crm_msg_clear(&a);
    long long fu = s_events(f, "followup"), cu = s_events(f, "customer");
    s_req(d3, &a, CRM_T_followup_record, "record_id", "U3-F1", "customer_id", cid, "consultant_id",
          "S-U3", "result", "answered", NULL);
    s_assert_refused(&a, "not_yours", "customer_id");
    crm_msg_clear(&a);
    /* the same person filed by U3, matched by mobile */
    s_req(d3, &a, CRM_T_customer_file, "record_id", "U3-LI", "name", "李四", "mobile",
          "13733334444", "email", "li@example.com", NULL);
    s_assert_refused(&a, "not_yours", "mobile");
    crm_msg_clear(&a);
    /* the payload cannot claim another dealer */
    s_req(d3, &a, CRM_T_customer_file, "record_id", "U3-AS-U1", "dealer_id", "U1", "name", "某人",
          NULL);
    s_assert_refused(&a, "not_yours", "dealer_id");
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "followup"), fu);
    assert_int_equal(s_events(f, "customer"), cu);
    char key[80];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    char *email = s_hget(f, key, "email");
    assert_null(email);
    assert_true(crm_h_file_contains(f->log, "uplink.not_yours"));
    free(cid);
}

/* A lost prospect waits for a manager; the carmaker reactivates it and
   gives it to another dealer, which gets it on its stream. */
static void test_lost_prospect_waits_and_is_reactivated_elsewhere(void **state)
{
    fx_t *f = *state;
    s_staff(f, "U1", "M-U1", "manager", NULL);
    s_staff(f, "U1", "S-U1", "consultant", "M-U1");
    zsock_t *d = s_dealer(f, "U1");
    crm_msg_t a;
    char *cid = s_file(f, d, "U1-ZHOU", "周九", "13644445555", &a);
    crm_msg_clear(&a);
    char key[80];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    s_req(d, &a, CRM_T_prospect_lose, "record_id", "U1-LOST-1", "customer_id", cid, "consultant_id",
          "S-U1", "reason", "other_brand", "note", "买了别的品牌", NULL);
    s_assert_ok(&a, "prospect.lose");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "stage", "lost_pending");
    assert_int_equal(s_events_about(f, "followup", "prospect.lost_requested", cid), 1);
    assert_int_equal(s_events_about(f, "followup", "prospect.lost", cid), 0);
    /* a consultant cannot approve */
    s_req(d, &a, CRM_T_lost_decide, "record_id", "U1-DEC-0", "customer_id", cid, "manager_id",
          "S-U1", "decision", "approved", NULL);
    s_assert_refused(&a, "invalid", "manager_id");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "stage", "lost_pending");
    s_req(d, &a, CRM_T_lost_decide, "record_id", "U1-DEC-1", "customer_id", cid, "manager_id",
          "M-U1", "decision", "approved", NULL);
    s_assert_ok(&a, "lost.decide");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "stage", "lost");
    assert_int_equal(s_events_about(f, "followup", "prospect.lost", cid), 1);

    /* reactivation is the carmaker's: not on the gateway */
    s_req(d, &a, CRM_T_prospect_reactivate, "customer_id", cid, "dealer_id", "U1", NULL);
    s_assert_refused(&a, "unknown_type", NULL);
    crm_msg_clear(&a);
    long long k1 = s_events(f, "dealer.K1");
    zsock_t *c = s_control(f);
    s_req(c, &a, CRM_T_prospect_reactivate, "customer_id", cid, "dealer_id", "K1", "reason",
          "换店跟进", NULL);
    s_assert_ok(&a, "prospect.reactivate");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "stage", "prospect");
    s_assert_hash(f, key, "dealer_id", "K1");
    assert_null(s_hget(f, key, "consultant_id"));
    assert_int_equal(s_events_about(f, "followup", "prospect.reactivated", cid), 1);
    /* one assignment (crm-auditor adds the record's open findings, addressed to K1 now) */
    (void) k1;
    assert_int_equal(s_events_about(f, "dealer.K1", "dealer.assigned", cid), 1);
    /* U1 is told that the errors it had on the record are no longer its own */
    char open_u1[160], cleared_u1[160], open_k1[160];
    snprintf(open_u1, sizeof open_u1, "\"customer_id\":\"%s\",\"dealer_id\":\"U1\",\"state\":\"open\"", cid);
    snprintf(cleared_u1, sizeof cleared_u1, "\"customer_id\":\"%s\",\"dealer_id\":\"U1\",\"state\":\"cleared\"", cid);
    snprintf(open_k1, sizeof open_k1, "\"customer_id\":\"%s\",\"dealer_id\":\"K1\",\"state\":\"open\"", cid);
    /* the record has errors (no address, postcode ...), told to U1 when it
       filed it: crm-auditor and crm-dispatcher may still be on their way */
    int opened = 0;
    for (int i = 0; i < 200 && !(opened = crm_h_events(f->sys.store, "dealer.U1", "dealer.finding", open_u1)); i++)
        usleep(50000);
    assert_true(opened > 0);
    int cleared = 0, moved = 0;
    for (int i = 0; i < 200 && (cleared < opened || moved < opened); i++) {
        usleep(50000);
        cleared = crm_h_events(f->sys.store, "dealer.U1", "dealer.finding", cleared_u1);
        moved = crm_h_events(f->sys.store, "dealer.K1", "dealer.finding", open_k1);
    }
    opened = crm_h_events(f->sys.store, "dealer.U1", "dealer.finding", open_u1);
    assert_int_equal(cleared, opened);
    assert_int_equal(moved, opened);
    assert_true(crm_h_int(f->sys.store, "SISMEMBER crm:dealer:K1:customers %s", cid) == 1);
    assert_true(crm_h_int(f->sys.store, "SISMEMBER crm:dealer:U1:customers %s", cid) == 0);
    /* the old dealer is cut off */
    s_req(d, &a, CRM_T_followup_record, "record_id", "U1-AFTER", "customer_id", cid,
          "consultant_id", "S-U1", "result", "answered", NULL);
    s_assert_refused(&a, "not_yours", "customer_id");
    crm_msg_clear(&a);
    free(cid);
}

/* The carmaker acts for a dealer on the control endpoint: dealer_id is
   required there, and a staff member's manager must be one. */
static void test_control_endpoint_acts_for_a_dealer(void **state)
{
    fx_t *f = *state;
    zsock_t *c = s_control(f);
    crm_msg_t a;
    s_req(c, &a, CRM_T_staff_add, "record_id", "ctl-1", "staff_id", "X", "role", "consultant",
          "name", "无店", NULL);
    assert_false(s_ok(&a));
    assert_string_equal(s_code(&a), "required");
    crm_msg_clear(&a);
    s_staff(f, "U3", "C-U3", "consultant", NULL);
    s_req(c, &a, CRM_T_staff_add, "record_id", "ctl-2", "dealer_id", "U3", "staff_id", "C2-U3",
          "role", "consultant", "name", "二号", "manager_id", "C-U3", NULL);
    assert_false(s_ok(&a));
    assert_string_equal(s_code(&a), "invalid");
    crm_msg_clear(&a);
    long long before = s_events(f, "dealers");
    s_req(c, &a, CRM_T_staff_leave, "record_id", "ctl-3", "dealer_id", "U3", "staff_id", "C-U3",
          NULL);
    s_assert_ok(&a, "staff.leave");
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "dealers"), before + 1);
    s_assert_hash(f, "crm:dealer:U3:staff:C-U3", "state", "left");

    /* the reporting lines stay a tree of managers over consultants */
    s_staff(f, "U3", "MA-U3", "manager", NULL);
    s_staff(f, "U3", "MB-U3", "manager", "MA-U3");
    s_staff(f, "U3", "CB-U3", "consultant", "MB-U3");
    s_req(c, &a, CRM_T_staff_update, "record_id", "ctl-4", "dealer_id", "U3", "staff_id", "MA-U3",
          "manager_id", "MB-U3", NULL);
    assert_false(s_ok(&a));
    assert_string_equal(s_code(&a), "invalid"); /* MB-U3 reports to MA-U3: a circle */
    crm_msg_clear(&a);
    s_req(c, &a, CRM_T_staff_update, "record_id", "ctl-5", "dealer_id", "U3", "staff_id", "MB-U3",
          "role", "consultant", NULL);
    assert_false(s_ok(&a));
    assert_string_equal(s_code(&a), "invalid"); /* CB-U3 reports to MB-U3 */
    crm_msg_clear(&a);
    s_assert_hash(f, "crm:dealer:U3:staff:MB-U3", "role", "manager");
    s_assert_hash(f, "crm:dealer:U3:staff:MA-U3", "manager_id", "");
}

/* A revoked dealer cannot write: not on the connection it had open, not on
   a new one. */
static void test_revoked_dealer_cannot_write(void **state)
{
    fx_t *f = *state;
    zsock_t *d = s_dealer(f, "U3");
    crm_msg_t m, a;
    char *cid = s_file(f, d, "U3-BEFORE-REVOKE", "吴十", "13544445555",
                       &a); /* it could, until now */
    crm_msg_clear(&a);
    free(cid);
    assert_int_equal(crm_h_sys_crmctl(&f->sys, "dealer", "revoke", "U3", NULL), 0);
    long long before = s_events(f, "customer");
    crm_msg_init(&m, CRM_T_customer_file);
    CRM_SET_STR(&m, customer_file, record_id, "U3-AFTER-REVOKE");
    CRM_SET_STR(&m, customer_file, name, "吴十一");
    msgpack_sbuffer buf;
    s_encode(&m, &buf);
    char id[CRM_ID_MAX];
    snprintf(id, sizeof id, "%s", m.id);
    crm_msg_clear(&m);
    /* the connection made before the revocation: refused, not_certified */
    assert_int_equal(zmq_send(zsock_resolve(d), buf.data, buf.size, 0), (int) buf.size);
    assert_true(s_answer(d, id, 3000, &a));
    s_assert_refused(&a, "not_certified", NULL);
    crm_msg_clear(&a);
    /* a new connection: the handshake is refused, nothing answers */
    zsock_t *d2 = s_dealer(f, "U3");
    zmq_send(zsock_resolve(d2), buf.data, buf.size, ZMQ_DONTWAIT);
    assert_false(s_answer(d2, id, 1500, &a));
    msgpack_sbuffer_destroy(&buf);
    assert_int_equal(s_events(f, "customer"), before);
    assert_int_equal(crm_h_int(f->sys.store, "SCARD crm:idx:name:吴十一"), 0);
}

/* A dealer's file never takes another dealer's car or match keys, and a
   file's own findings outlive a lead merging into the customer. */
static void test_a_file_takes_nothing_from_another_dealers_customer(void **state)
{
    fx_t *f = *state;
    zsock_t *d1 = s_dealer(f, "U1"), *d3 = s_dealer(f, "K1");
    crm_msg_t a;
    s_req(d1, &a, CRM_T_customer_file, "record_id", "U1-FENG", "name", "冯十二", "mobile",
          "13612340000", "vin", "LFVAB12C3D4567890", NULL);
    s_assert_ok(&a, "U1's owner file");
    char *feng = strdup(a.body.dealer_reply.customer_id);
    crm_msg_clear(&a);
    char key[80], fkey[96];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, feng);
    snprintf(fkey, sizeof fkey, "%s:findings:dealer", key);
    assert_true(crm_h_int(f->sys.store, "HEXISTS %s sale_date:required", fkey) == 1);

    /* K1 files its own customer with U1's car and U1's customer's mobile */
    char *mine = s_file(f, d3, "K1-WEI", "卫十三", "13612349999", &a);
    crm_msg_clear(&a);
    s_req(d3, &a, CRM_T_customer_file, "record_id", "K1-WEI-2", "customer_id", mine, "name",
          "卫十三", "usual_phone", "13612340000", "mobile", "13612340000", "vin",
          "LFVAB12C3D4567890", "sale_date", "2026-10-01", NULL);
    s_assert_ok(&a, "K1's file naming U1's car");
    bool other_owner = false, shared = false;
    for (size_t i = 0; i < a.body.dealer_reply.findings.n; i++) {
        other_owner |= !strncmp(a.body.dealer_reply.findings.v[i], "vin|other_owner|", 16);
        shared |= !strncmp(a.body.dealer_reply.findings.v[i], "mobile|shared|", 14);
    }
    assert_true(other_owner && shared);
    crm_msg_clear(&a);
    s_assert_hash(f, "crm:veh:LFVAB12C3D4567890", "customer_id", feng);
    redisReply *ix = crm_store_cmd(f->sys.store, "GET crm:idx:mobile:13612340000");
    assert_non_null(ix);
    assert_int_equal(ix->type, REDIS_REPLY_STRING);
    assert_string_equal(ix->str, feng); /* still U1's customer's match key */
    freeReplyObject(ix);

    /* nor deliver it: an order of its own customer, delivered with U1's car */
    s_req(d3, &a, CRM_T_order_record, "record_id", "K1-O1", "order_id", "K1-SO-1", "action",
          "placed", "customer_id", mine, "model", "408", "promised_date", "2026-12-30", NULL);
    s_assert_ok(&a, "K1's order");
    crm_msg_clear(&a);
    s_req(d3, &a, CRM_T_delivery_record, "record_id", "K1-D1", "order_id", "K1-SO-1", "action",
          "delivered", "vin", "LFVAB12C3D4567890", "date", "2026-12-29", NULL);
    s_assert_refused(&a, "not_yours", "vin");
    crm_msg_clear(&a);
    s_assert_hash(f, "crm:veh:LFVAB12C3D4567890", "customer_id", feng);
    free(mine);

    /* a lead for 冯 merges in: the file's own findings stay */
    zsock_t *in = zsock_new(ZMQ_DEALER);
    assert_non_null(in);
    zsock_set_linger(in, 0);
    assert_int_equal(zsock_connect(in, "tcp://127.0.0.1:%d", f->sys.intake), 0);
    f->socks[f->nsocks++] = in;
    s_req(in, &a, CRM_T_lead_submit, "submission_id", "web-feng", "channel", "website", "name",
          "冯十二", "mobile", "13612340000", "email", "feng@example.com", NULL);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    assert_string_equal(a.body.lead_accepted.customer_id, feng);
    crm_msg_clear(&a);
    assert_true(crm_h_int(f->sys.store, "HEXISTS %s sale_date:required", fkey) == 1);

    free(feng);
}

/* The smaller rules of follow-ups and orders, as a dealer meets them. */
static void test_followup_and_order_rules(void **state)
{
    fx_t *f = *state;
    s_staff(f, "U2", "S2-U2", "consultant", NULL);
    zsock_t *d = s_dealer(f, "U2");
    crm_msg_t a;
    char *cid = s_file(f, d, "U2-RULES", "何十四", "13533334444", &a);
    crm_msg_clear(&a);
    char key[80];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    /* a next activity's content without its time */
    s_req(d, &a, CRM_T_followup_record, "record_id", "U2-R-F1", "customer_id", cid, "consultant_id",
          "S2-U2", "result", "answered", "next_content", "再联系", NULL);
    s_assert_refused(&a, "required", "next_at");
    crm_msg_clear(&a);
    /* a grade written in lower case is the grade */
    s_req(d, &a, CRM_T_followup_record, "record_id", "U2-R-F2", "customer_id", cid, "consultant_id",
          "S2-U2", "result", "answered", "grade", "b", NULL);
    s_assert_ok(&a, "a follow-up graded b");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "grade", "B");
    /* two orders, one cancelled: still a customer with an order */
    for (int i = 0; i < 2; i++) {
        char rec[32], oid[32];
        snprintf(rec, sizeof rec, "U2-R-O%d", i);
        snprintf(oid, sizeof oid, "R-SO-%d", i);
        s_req(d, &a, CRM_T_order_record, "record_id", rec, "order_id", oid, "action", "placed",
              "customer_id", cid, "model", "508", "promised_date", "2027-01-15", NULL);
        s_assert_ok(&a, "order placed");
        crm_msg_clear(&a);
    }
    s_req(d, &a, CRM_T_order_record, "record_id", "U2-R-C0", "order_id", "R-SO-0", "action",
          "cancelled", "reason", "客户改订", NULL);
    s_assert_ok(&a, "order cancelled");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "stage", "customer");
    s_req(d, &a, CRM_T_order_record, "record_id", "U2-R-C1", "order_id", "R-SO-1", "action",
          "cancelled", NULL);
    s_assert_ok(&a, "the last order cancelled");
    crm_msg_clear(&a);
    s_assert_hash(f, key, "stage", "prospect");
    /* a consultant who left does no more follow-ups */
    zsock_t *c = s_control(f);
    s_req(c, &a, CRM_T_staff_leave, "record_id", "U2-R-LEAVE", "dealer_id", "U2", "staff_id",
          "S2-U2", NULL);
    s_assert_ok(&a, "staff.leave");
    assert_int_equal(a.body.dealer_reply.count, 1); /* 何 is theirs */
    crm_msg_clear(&a);
    s_req(d, &a, CRM_T_followup_record, "record_id", "U2-R-F3", "customer_id", cid, "consultant_id",
          "S2-U2", "result", "answered", NULL);
    s_assert_refused(&a, "closed", "consultant_id");
    crm_msg_clear(&a);
    free(cid);
}

/* A record the dealer sent, sent again by the CRM department for it (an
   import of the dealer's export, say), is one record: the first answer,
   nothing new. */
static void test_the_same_record_on_both_endpoints_is_one(void **state)
{
    fx_t *f = *state;
    zsock_t *d = s_dealer(f, "U2"), *c = s_control(f);
    crm_msg_t a;
    char *cid = s_file(f, d, "U2-BOTH", "郑十一", "13555556666", &a);
    crm_msg_clear(&a);
    long long before = s_events(f, "customer");
    s_req(c, &a, CRM_T_customer_file, "record_id", "U2-BOTH", "dealer_id", "U2", "name", "郑十一",
          "mobile", "13555556666", "email", "zheng@example.com", NULL);
    s_assert_ok(&a, "the same record on the control endpoint");
    assert_int_equal(a.type, CRM_T_dealer_reply); /* the first answer, as the gateway gave it */
    assert_string_equal(a.body.dealer_reply.customer_id, cid);
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "customer"), before);
    char key[80];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    assert_null(s_hget(f, key, "email"));
    /* another dealer's record of the same id is its own */
    s_req(c, &a, CRM_T_customer_file, "record_id", "U2-BOTH", "dealer_id", "U1", "name", "另一位",
          NULL);
    s_assert_ok(&a, "another dealer's record of the same id");
    assert_int_equal(a.type, CRM_T_dealer_reply);
    assert_string_not_equal(a.body.dealer_reply.customer_id, cid);
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "customer"), before + 2);
    free(cid);
}

/* The dispatcher SIGKILLed in the middle of 10,000 uplink records: every
   record is stored once, none lost, none doubled; the client only sends
   again what was not answered, with the same bytes. */
#define S_FLOOD 10000
#define S_FLOOD_CUSTOMERS 100

static int s_killed; /* the dispatcher's exit status when the flood killed it */

static void s_kill_once(void *arg, int answered)
{
    fx_t *f = arg;
    if (answered != S_FLOOD * 3 / 10)
        return;
    s_killed = crm_h_sys_kill(&f->sys, "dispatcher", SIGKILL);
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
}

static void test_dispatcher_killed_mid_uplink_loses_and_doubles_nothing(void **state)
{
    fx_t *f = *state;
    s_staff(f, "U4", "S-U4", "consultant", NULL);
    zsock_t *d = s_dealer(f, "U4");
    char *cids[S_FLOOD_CUSTOMERS];
    crm_msg_t a;
    for (int i = 0; i < S_FLOOD_CUSTOMERS; i++) {
        char rec[32], mobile[16];
        snprintf(rec, sizeof rec, "U4-C%d", i);
        snprintf(mobile, sizeof mobile, "1390000%04d", i);
        cids[i] = s_file(f, d, rec, "批量客户", mobile, &a);
        crm_msg_clear(&a);
    }
    long long before = s_events(f, "followup");
    void **frames = calloc(S_FLOOD, sizeof *frames);
    size_t *lens = calloc(S_FLOOD, sizeof *lens);
    char(*ids)[CRM_ID_MAX] = calloc(S_FLOOD, sizeof *ids);
    assert_true(frames && lens && ids);
    for (int i = 0; i < S_FLOOD; i++) {
        crm_msg_t m;
        crm_msg_init(&m, CRM_T_followup_record);
        char rec[32];
        snprintf(rec, sizeof rec, "U4-F%d", i);
        CRM_SET_STR(&m, followup_record, record_id, rec);
        CRM_SET_STR(&m, followup_record, customer_id, cids[i % S_FLOOD_CUSTOMERS]);
        CRM_SET_STR(&m, followup_record, consultant_id, "S-U4");
        CRM_SET_STR(&m, followup_record, result, "answered");
        CRM_SET_STR(&m, followup_record, content, "电话回访");
        CRM_SET_I64(&m, followup_record, next_at, crm_now_ms() + 3 * DAY_MS);
        msgpack_sbuffer buf;
        s_encode(&m, &buf);
        snprintf(ids[i], CRM_ID_MAX, "%s", m.id);
        crm_msg_clear(&m);
        frames[i] = buf.data;
        lens[i] = buf.size;
    }
    int ok = 0;
    int answered = crm_h_send_all(d, frames, lens, ids, S_FLOOD, 200, 2000, 30000, s_kill_once, f,
                                  &ok);
    assert_int_equal(answered, S_FLOOD);
    assert_int_equal(ok, S_FLOOD);
    assert_int_equal(s_events(f, "followup"), before + S_FLOOD);
    long long stored = 0;
    for (int i = 0; i < S_FLOOD_CUSTOMERS; i++)
        stored += crm_h_int(f->sys.store, "XLEN " CRM_KEY_CUST_FMT ":followups", cids[i]);
    assert_int_equal(stored, S_FLOOD);
    assert_int_equal(s_killed, SIGKILL); /* it was killed, in the middle */
    /* each record once: 10,000 distinct record ids among the follow-ups */
    zhashx_t *seen = zhashx_new();
    assert_non_null(seen);
    for (int i = 0; i < S_FLOOD_CUSTOMERS; i++) {
        redisReply *r = crm_store_cmd(f->sys.store, "XRANGE " CRM_KEY_CUST_FMT ":followups - +",
                                      cids[i]);
        assert_non_null(r);
        for (size_t k = 0; k < r->elements; k++) {
            const char *rid = crm_reply_field(r->element[k]->element[1], "record_id");
            assert_non_null(rid);
            if (zhashx_insert(seen, rid, (void *) 1) != 0)
                fail_msg("record %s stored twice", rid);
        }
        freeReplyObject(r);
        free(cids[i]);
    }
    assert_int_equal(zhashx_size(seen), S_FLOOD);
    zhashx_destroy(&seen);
    for (int i = 0; i < S_FLOOD; i++)
        free(frames[i]);
    free(frames), free(lens), free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_customer_file_is_kept_with_its_findings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lead_and_dealer_file_are_one_customer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dealer_work_becomes_events_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_dealers_customer_is_not_yours, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_prospect_waits_and_is_reactivated_elsewhere,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_endpoint_acts_for_a_dealer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_followup_and_order_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_same_record_on_both_endpoints_is_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_takes_nothing_from_another_dealers_customer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_dealer_cannot_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatcher_killed_mid_uplink_loses_and_doubles_nothing,
                                        setup, teardown),
    };
    const char *only = getenv("CRM_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
