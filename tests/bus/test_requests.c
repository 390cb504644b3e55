/*  Requests are data too, as their clients see them: every id field of
 *  every request with hostile values, kept answers and their retention,
 *  two crm-intake instances taking the same submissions, crmctl asking
 *  instead of writing, the dealer registry (default capacity, a chosen
 *  dealer at capacity or suspended, sales regions) and the dispatcher's
 *  timing (the T-1 escalation, an acknowledgement whose commit fails).
 *  Real redis-server, real services, requests on DEALER sockets holding one
 *  msgpack envelope, as any client in any language would send them.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_id.h"
#include "crm_keys.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define CST (8 * HOUR)

typedef struct {
    crm_h_sys_t s;
    zsock_t *ctl[CRM_H_SERVICES]; /* on each service's control endpoint */
    zsock_t *leads;               /* on intake's lead endpoint */
    zsock_t *gw;                  /* a dealer on the gateway's ROUTER */
    int n;                        /* fresh ids and mobiles */
    pid_t second;                 /* a second crm-intake */
} fx_t;

static int s_setup(void **state, bool clock)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->s, false, clock) != 0)
        return -1;
    /* crmctl gives up quickly on a service that is not there */
    crm_h_sys_env(&f->s, "CRM_TIMEOUT_MS=1500");
    *state = f;
    return 0;
}
static int setup(void **state)
{
    return s_setup(state, false);
}
static int setup_clock(void **state)
{
    return s_setup(state, true);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < CRM_H_SERVICES; i++)
        zsock_destroy(&f->ctl[i]);
    zsock_destroy(&f->leads);
    zsock_destroy(&f->gw);
    if (f->second > 0)
        crm_h_stop(f->second, SIGTERM, 5000);
    crm_h_sys_stop(&f->s);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ plumbing */

static bool s_out_has(fx_t *f, const char *needle)
{
    char *text = crm_h_slurp(f->s.out);
    bool found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

static int s_crmctl_ok(fx_t *f, int want, const char *what, int rc)
{
    if (rc != want) {
        char *out = crm_h_slurp(f->s.out), text[600];
        snprintf(text, sizeof text, "%s", out);
        free(out);
        fail_msg("crmctl %s: exit %d, expected %d: %s", what, rc, want, text);
    }
    return rc;
}

static int s_log_has(fx_t *f, const char *svc, const char *needle)
{
    char path[400];
    crm_h_sys_log(&f->s, svc, path, sizeof path);
    char *text = crm_h_slurp(path);
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    free(text);
    return n;
}

/* A key holding `raw` (binary-safe), or NULL; the caller frees it. */
static char *s_key_holding(fx_t *f, const char *raw)
{
    char cursor[32] = "0";
    size_t n = strlen(raw);
    do {
        redisReply *r = crm_store_cmd(f->s.store, "SCAN %s COUNT 1000", cursor);
        assert_non_null(r);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            if (memmem(keys->element[i]->str, keys->element[i]->len, raw, n)) {
                char *k = strndup(keys->element[i]->str,
                                  keys->element[i]->len > 200 ? 200 : keys->element[i]->len);
                freeReplyObject(r);
                return k;
            }
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    return NULL;
}

/* Keys matching a glob pattern (SCAN). */
static long long s_count_keys(fx_t *f, const char *pattern)
{
    char cursor[32] = "0";
    long long count = 0;
    do {
        redisReply *r = crm_store_cmd(f->s.store, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        assert_non_null(r);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        count += (long long) r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    return count;
}

static void s_envelope(fx_t *f, crm_msg_t *m)
{
    if (!m->id[0])
        snprintf(m->id, sizeof m->id, "rq-%d-%lld", ++f->n, (long long) crm_mono_us());
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "test");
    m->stream[0] = 0;
}

static void s_pack_str(msgpack_sbuffer *b, const char *s, size_t n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, s, n);
}

/* Replaces the string `placeholder` in an encoded frame with `value`: how
   a client sends what our own structs cannot hold (a 10 KB envelope id). */
static void s_splice(msgpack_sbuffer *frame, const char *placeholder, const char *value)
{
    msgpack_sbuffer a, b, out;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    msgpack_sbuffer_init(&out);
    s_pack_str(&a, placeholder, strlen(placeholder));
    s_pack_str(&b, value, strlen(value));
    char *at = memmem(frame->data, frame->size, a.data, a.size);
    assert_non_null(at);
    size_t head = (size_t) (at - frame->data);
    msgpack_sbuffer_write(&out, frame->data, head);
    msgpack_sbuffer_write(&out, b.data, b.size);
    msgpack_sbuffer_write(&out, at + a.size, frame->size - head - a.size);
    frame->size = 0;
    msgpack_sbuffer_write(frame, out.data, out.size);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
    msgpack_sbuffer_destroy(&out);
}

static zsock_t *s_connect(int port)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_rcvtimeo(d, 8000);
    zsock_set_linger(d, 0);
    assert_int_equal(zsock_connect(d, "tcp://127.0.0.1:%d", port), 0);
    return d;
}

/* Sends one frame and waits for the answer whose corr is `corr` (the first
   answer when NULL); its bytes into `raw` when asked. */
static void s_ask_raw(zsock_t *sock, const void *data, size_t len, const char *corr, crm_msg_t *ans,
                      msgpack_sbuffer *raw)
{
    assert_int_equal(zsock_send(sock, "b", data, len), 0);
    for (;;) {
        zframe_t *fr = zframe_recv(sock);
        if (!fr)
            fail_msg("no answer to %.40s", corr ? corr : "the request");
        crm_err_t err;
        if (crm_msg_decode(zframe_data(fr), zframe_size(fr), ans, &err) != 0)
            fail_msg("an answer that does not decode (%s: %s)", err.field, err.text);
        if (!corr || !strcmp(ans->corr, corr)) {
            if (raw) {
                raw->size = 0;
                msgpack_sbuffer_write(raw, (const char *) zframe_data(fr), zframe_size(fr));
            }
            zframe_destroy(&fr);
            return;
        }
        crm_msg_clear(ans);
        zframe_destroy(&fr);
    }
}

/* Encodes `m` (an envelope made if it has no id) and asks `sock`; m is
   cleared. */
static void s_ask(fx_t *f, zsock_t *sock, crm_msg_t *m, crm_msg_t *ans)
{
    s_envelope(f, m);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(m, &buf, NULL), 0);
    char id[CRM_ID_MAX];
    snprintf(id, sizeof id, "%s", m->id);
    crm_msg_clear(m);
    s_ask_raw(sock, buf.data, buf.size, id, ans, NULL);
    msgpack_sbuffer_destroy(&buf);
}

static zsock_t *s_ctl(fx_t *f, const char *svc)
{
    int i = crm_h_service_index(svc);
    if (!f->ctl[i])
        f->ctl[i] = s_connect(f->s.control[i]);
    return f->ctl[i];
}

static zsock_t *s_leads(fx_t *f)
{
    if (!f->leads)
        f->leads = s_connect(f->s.intake);
    return f->leads;
}

static void s_describe(const crm_msg_t *a, char *out, size_t size)
{
    switch (a->type) {
    case CRM_T_reply:
        snprintf(out, size, "reply ok=%d code=%s message=%.200s", a->body.reply.ok,
                 a->body.reply.code ? a->body.reply.code : "-",
                 a->body.reply.message ? a->body.reply.message : "-");
        break;
    case CRM_T_dealer_reply:
        snprintf(out, size, "dealer.reply ok=%d code=%s message=%.200s", a->body.dealer_reply.ok,
                 a->body.dealer_reply.code ? a->body.dealer_reply.code : "-",
                 a->body.dealer_reply.message ? a->body.dealer_reply.message : "-");
        break;
    case CRM_T_lead_rejected:
        snprintf(out, size, "lead.rejected %.200s",
                 a->body.lead_rejected.errors.n ? a->body.lead_rejected.errors.v[0] : "-");
        break;
    case CRM_T_lead_accepted:
        snprintf(out, size, "lead.accepted %s", a->body.lead_accepted.lead_id);
        break;
    default: snprintf(out, size, "%s", crm_type_name(a->type)); break;
    }
}

static bool s_prefix_in(const crm_strs_t *list, const char *prefix)
{
    for (size_t i = 0; i < list->n; i++)
        if (!strncmp(list->v[i], prefix, strlen(prefix)))
            return true;
    return false;
}

/* A refusal that names `field`, in whichever answer the endpoint gives. */
static bool s_names_field(const crm_msg_t *a, const char *field)
{
    char bar[80], colon[80];
    snprintf(bar, sizeof bar, "%s|", field);
    snprintf(colon, sizeof colon, "%s:", field);
    switch (a->type) {
    case CRM_T_reply:
        return !a->body.reply.ok &&
               (s_prefix_in(&a->body.reply.errors, bar) ||
                (a->body.reply.message && !strncmp(a->body.reply.message, colon, strlen(colon))));
    case CRM_T_lead_rejected: return s_prefix_in(&a->body.lead_rejected.errors, bar);
    case CRM_T_dealer_reply:
        return !a->body.dealer_reply.ok && a->body.dealer_reply.message &&
               !strncmp(a->body.dealer_reply.message, colon, strlen(colon));
    default: return false;
    }
}

static void s_expect_refusal(const char *label, const crm_msg_t *a, const char *field)
{
    if (!s_names_field(a, field)) {
        char d[400];
        s_describe(a, d, sizeof d);
        fail_msg("%s: expected a refusal naming %s, got %s", label, field, d);
    }
}

static void s_expect_ok(const char *label, const crm_msg_t *a)
{
    bool ok = (a->type == CRM_T_reply && a->body.reply.ok) ||
              (a->type == CRM_T_dealer_reply && a->body.dealer_reply.ok);
    if (!ok) {
        char d[400];
        s_describe(a, d, sizeof d);
        fail_msg("%s: expected ok, got %s", label, d);
    }
}

/* ------------------------------------------------------------ domain */

static void s_register_msg(crm_msg_t *m, const char *id, const char *province, const char *city,
                           long long capacity)
{
    crm_msg_init(m, CRM_T_dealer_register);
    CRM_SET_STR(m, dealer_register, dealer_id, id);
    CRM_SET_STR(m, dealer_register, name, "测试店");
    CRM_SET_STR(m, dealer_register, province, province);
    CRM_SET_STR(m, dealer_register, city, city);
    if (capacity >= 0)
        CRM_SET_I64(m, dealer_register, capacity, capacity);
}

static void s_dealer(fx_t *f, const char *id, const char *province, const char *city,
                     long long capacity)
{
    crm_msg_t m, a;
    s_register_msg(&m, id, province, city, capacity);
    s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
    s_expect_ok(id, &a);
    crm_msg_clear(&a);
}

static void s_customer(fx_t *f, const char *cid, const char *city, const char *province)
{
    redisReply *r = crm_store_cmd(
        f->s.store, "HSET crm:cust:{%s} name 测试 mobile 13812345678 city %s province %s", cid,
        city, province);
    assert_non_null(r);
    freeReplyObject(r);
}

/* A testdrive.requested committed and published as intake would. */
static void s_testdrive(fx_t *f, const char *tid, const char *cid, const char *dealer, int64_t at)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_testdrive_requested);
    CRM_SET_STR(&m, testdrive_requested, testdrive_id, tid);
    CRM_SET_STR(&m, testdrive_requested, lead_id, "L1");
    CRM_SET_STR(&m, testdrive_requested, customer_id, cid);
    CRM_SET_STR(&m, testdrive_requested, dealer_id, dealer);
    CRM_SET_STR(&m, testdrive_requested, model, "408");
    CRM_SET_I64(&m, testdrive_requested, at, at);
    crm_tx_t *tx = crm_tx_new("intake", 100000);
    assert_int_equal(crm_tx_emit(tx, &m), 0);
    crm_msg_clear(&m);
    crm_h_sys_commit(&f->s, tx);
    crm_tx_destroy(&tx);
}

/* Asserts the test drive's dealer, reason code and that its reason says
   `why`. */
static void s_routed(fx_t *f, const char *tid, const char *dealer, const char *code,
                     const char *why)
{
    char *d = crm_h_sys_td(&f->s, tid, "dealer_id"), *c = crm_h_sys_td(&f->s, tid, "reason"),
         *t = crm_h_sys_td(&f->s, tid, "reason_text");
    bool ok = !strcmp(d, dealer) && !strcmp(c, code) && (!why || strstr(t, why));
    char text[600];
    snprintf(text, sizeof text, "'%s' (%s: %s)", d, c, t);
    free(d), free(c), free(t);
    if (!ok)
        fail_msg("%s went to %s; expected %s (%s: ...%s...)", tid, text, dealer, code,
                 why ? why : "");
}

/* Events of a stream, decoded; `fn` sees each and returns true to count it. */
static int s_events(fx_t *f, const char *stream, bool (*fn)(const crm_msg_t *m, const void *arg),
                    const void *arg)
{
    redisReply *r = crm_store_cmd(f->s.store, "XRANGE crm:{%s}:events - +", stream);
    assert_non_null(r);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *frame = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_msg_t m;
        crm_err_t err;
        if (frame && crm_msg_decode(frame->str, frame->len, &m, &err) == 0) {
            n += fn(&m, arg);
            crm_msg_clear(&m);
        }
    }
    freeReplyObject(r);
    return n;
}

/* Whether every entry of a stream is numbered 1, 2, 3 ... in order and
   carries its own number in its envelope (writers that interleave their
   commits included). */
static bool s_numbered_in_order(fx_t *f, const char *stream)
{
    redisReply *r = crm_store_cmd(f->s.store, "XRANGE crm:{%s}:events - +", stream);
    assert_non_null(r);
    bool ok = r->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < r->elements; i++) {
        char want[32];
        snprintf(want, sizeof want, "%zu-0", i + 1);
        const redisReply *frame = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_msg_t m;
        crm_err_t err;
        ok = !strcmp(r->element[i]->element[0]->str, want) && frame &&
             crm_msg_decode(frame->str, frame->len, &m, &err) == 0;
        if (ok) {
            ok = m.seq == i + 1;
            crm_msg_clear(&m);
        }
        if (!ok)
            print_message("%s: entry %zu (%s) is not numbered %zu\n", stream, i,
                          r->element[i]->element[0]->str, i + 1);
    }
    freeReplyObject(r);
    return ok;
}

static void s_lead_msg(fx_t *f, crm_msg_t *m, const char *sid, bool testdrive)
{
    char mobile[24];
    ++f->n;
    snprintf(mobile, sizeof mobile, "1370%07d", f->n % 10000000);
    crm_msg_init(m, CRM_T_lead_submit);
    CRM_SET_STR(m, lead_submit, submission_id, sid);
    CRM_SET_STR(m, lead_submit, channel, "website");
    CRM_SET_STR(m, lead_submit, name, "王小明");
    CRM_SET_STR(m, lead_submit, mobile, mobile);
    CRM_SET_STR(m, lead_submit, city, "深圳");
    CRM_SET_STR(m, lead_submit, province, "广东");
    CRM_SET_STR(m, lead_submit, model, "408");
    if (testdrive) {
        CRM_SET_BOOL(m, lead_submit, testdrive, true);
        CRM_SET_I64(m, lead_submit, testdrive_at, crm_now_ms() + 30 * HOUR);
    }
}

/* An ordinary website lead with a test drive: accepted, and the test drive
   dispatched to `dealer` within a few seconds. */
static void s_lead_flows(fx_t *f, const char *dealer, const char *after)
{
    crm_msg_t m, a;
    char sid[40];
    snprintf(sid, sizeof sid, "form-%d", f->n + 1);
    s_lead_msg(f, &m, sid, true);
    s_ask(f, s_leads(f), &m, &a);
    if (a.type != CRM_T_lead_accepted) {
        char d[400];
        s_describe(&a, d, sizeof d);
        fail_msg("after %s: an ordinary lead was answered %s", after, d);
    }
    char tid[40];
    snprintf(tid, sizeof tid, "T%s", a.body.lead_accepted.lead_id + 1);
    crm_msg_clear(&a);
    crm_h_sys_wait_td(&f->s, tid, "dispatched", 5000);
    char *d = crm_h_sys_td(&f->s, tid, "dealer_id");
    assert_string_equal(d, dealer);
    free(d);
}

/* A dealer on the gateway: its certificate made by crmctl, a CURVE DEALER
   socket on the gateway's ROUTER. */
static zsock_t *s_gateway(fx_t *f, const char *dealer)
{
    char secret[400];
    snprintf(secret, sizeof secret, "%s/%s.secret", f->s.redis.dir, dealer);
    s_crmctl_ok(f, 0, "dealer cert",
                crm_h_sys_crmctl(&f->s, "dealer", "cert", dealer, "--out", secret, NULL));
    zcert_t *c = zcert_load(secret), *srv = zcert_load(f->s.server_cert);
    assert_non_null(c);
    assert_non_null(srv);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zcert_apply(c, d);
    zsock_set_curve_serverkey(d, zcert_public_txt(srv));
    zsock_set_rcvtimeo(d, 8000);
    zsock_set_linger(d, 0);
    assert_int_equal(zsock_connect(d, "tcp://127.0.0.1:%d", f->s.gw_router), 0);
    zcert_destroy(&c);
    zcert_destroy(&srv);
    return d;
}

static const char *const s_default_regions[] = {
    "华北 = 北京市, 天津市, 河北省, 山西省, 内蒙古自治区",
    "东北 = 辽宁省, 吉林省, 黑龙江省",
    "华东 = 上海市, 江苏省, 浙江省, 安徽省, 福建省, 江西省, 山东省, 台湾省",
    "华中 = 河南省, 湖北省, 湖南省",
    "华南 = 广东省, 广西壮族自治区, 海南省, 香港特别行政区, 澳门特别行政区",
    "西南 = 重庆市, 四川省, 贵州省, 云南省, 西藏自治区",
    "西北 = 陕西省, 甘肃省, 青海省, 宁夏回族自治区, 新疆维吾尔自治区",
};

/* regions.load of the default table with 华东 named `east`. */
static void s_regions_msg(crm_msg_t *m, const char *east)
{
    crm_msg_init(m, CRM_T_regions_load);
    for (size_t i = 0; i < 7; i++) {
        if (i == 2) {
            size_t n = strlen(east) + 200;
            char *line = malloc(n);
            snprintf(line, n, "%s = 上海市, 江苏省, 浙江省, 安徽省, 福建省, 江西省, 山东省, 台湾省",
                     east);
            crm_strs_push(&m->body.regions_load.regions, line);
            free(line);
        } else {
            crm_strs_push(&m->body.regions_load.regions, s_default_regions[i]);
        }
    }
    m->body.regions_load.has.regions = true;
}

/* ------------------------------------------------- hostile ids, every request */

typedef enum {
    R_SUBMISSION_ID, /* lead.submit submission_id: an opaque key, ':' and the like are fine */
    R_LEAD_DEALER,   /* lead.submit dealer_id */
    R_RETRY_OF,      /* lead.submit retry_of */
    R_UNCONVERTIBLE, /* lead.unconvertible: its request id (the only id it has) */
    R_REQUEST_ID,    /* dealer.register: the request id, the key of its kept answer */
    R_REGISTER,      /* dealer.register dealer_id */
    R_UPDATE,        /* dealer.update dealer_id */
    R_CERT_ISSUE,    /* cert.issue id */
    R_CERT_REVOKE,   /* cert.revoke id */
    R_REJECT_RETRY,  /* reject.retry reject_id */
    R_REGIONS,       /* regions.load: a region's name */
    R_STATUS,        /* dealer.status testdrive_id, on the gateway */
    R__COUNT
} s_row_t;

static const char *const s_row_names[] = {
    "lead.submit submission_id", "lead.submit dealer_id", "lead.submit retry_of",
    "lead.unconvertible id",     "dealer.register id",    "dealer.register dealer_id",
    "dealer.update dealer_id",   "cert.issue id",         "cert.revoke id",
    "reject.retry reject_id",    "regions.load region",   "dealer.status testdrive_id"};

/* reject.retry also gets the id of an entry applied again already, with a
   space or newline before or after it, braces or a '*': Redis reads
   " 1700000000000-0" as 1700000000000-0. */
#define NSHAPED 5
static const char *const s_shaped_reject_ids[NSHAPED] = {" %s", "\n%s", "%s ", "{%s}", "%s*"};

/* Rejects that can be applied again, one per ordinary reject.retry: test
   drives in 拉萨 refused while crm:dealer:LS1:open held a string. */
typedef struct {
    char ids[CRM_H_NHOSTILE + NSHAPED][64];
    int used;
} s_pool_t;

static void s_make_retryable(fx_t *f, s_pool_t *pool, int n)
{
    s_dealer(f, "LS1", "西藏", "拉萨", 0);
    s_customer(f, "CLS", "拉萨", "西藏自治区");
    redisReply *r = crm_store_cmd(f->s.store, "SET crm:dealer:LS1:open x");
    freeReplyObject(r);
    for (int i = 0; i < n; i++) {
        char tid[16];
        snprintf(tid, sizeof tid, "TLS%d", i);
        s_testdrive(f, tid, "CLS", NULL, crm_now_ms() + 30 * HOUR);
    }
    assert_int_equal(crm_h_wait_int(f->s.store, n, 10000, "XLEN " CRM_KEY_REJECTS), n);
    r = crm_store_cmd(f->s.store, "XRANGE " CRM_KEY_REJECTS " - +");
    for (int i = 0; i < n; i++)
        snprintf(pool->ids[i], sizeof pool->ids[i], "%s", r->element[i]->element[0]->str);
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "DEL crm:dealer:LS1:open");
    freeReplyObject(r);
}

static void s_cert_msg(crm_msg_t *m, crm_type_t type, const char *id)
{
    crm_msg_init(m, type);
    if (type == CRM_T_cert_issue) {
        zcert_t *c = zcert_new();
        CRM_SET_STR(m, cert_issue, id, id);
        CRM_SET_STR(m, cert_issue, public_key, zcert_public_txt(c));
        zcert_destroy(&c);
    } else {
        CRM_SET_STR(m, cert_revoke, id, id);
    }
}

/* What the table found wrong in rows where one defect should not hide the
   rest: reported together at the end. */
static char s_defects[4096];
static void s_defect(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_defect(const char *fmt, ...)
{
    size_t used = strlen(s_defects);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_defects + used, sizeof s_defects - used, fmt, ap);
    va_end(ap);
}

/* The hostile request of row `row` with value `v`; checks its answer. */
static void s_hostile_request(fx_t *f, s_row_t row, const char *v, bool shaped, const char *label)
{
    crm_msg_t m, a;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    bool opaque_ok = !strchr(v, '\n') && strlen(v) <= CRM_ID_KEY_MAX; /* the rule of opaque keys */
    switch (row) {
    case R_SUBMISSION_ID: {
        s_lead_msg(f, &m, v, false);
        s_ask(f, s_leads(f), &m, &a);
        if (!opaque_ok) {
            s_expect_refusal(label, &a, "submission_id");
            break;
        }
        if (a.type != CRM_T_lead_accepted) {
            char d[400];
            s_describe(&a, d, sizeof d);
            fail_msg("%s: a submission id of UTF-8 text is fine, got %s", label, d);
        }
        assert_string_equal(a.body.lead_accepted.submission_id, v);
        redisReply *r = crm_store_cmd(f->s.store, "HGET crm:lead:%s submission_id",
                                      a.body.lead_accepted.lead_id);
        if (!r || r->type != REDIS_REPLY_STRING || strcmp(r->str, v))
            fail_msg("%s: lead %s is not stored under its submission id", label,
                     a.body.lead_accepted.lead_id);
        freeReplyObject(r);
        break;
    }
    case R_LEAD_DEALER:
        s_lead_msg(f, &m, NULL, true);
        CRM_SET_STR(&m, lead_submit, dealer_id, v);
        s_ask(f, s_leads(f), &m, &a);
        s_expect_refusal(label, &a, "dealer_id");
        if (!a.body.lead_rejected.quarantine_id)
            fail_msg("%s: refused but not kept in quarantine", label);
        break;
    case R_RETRY_OF:
        s_lead_msg(f, &m, "form-retry", false);
        CRM_SET_STR(&m, lead_submit, retry_of, v);
        s_ask(f, s_leads(f), &m, &a);
        s_expect_refusal(label, &a, "retry_of");
        break;
    case R_UNCONVERTIBLE:
    case R_REQUEST_ID: {
        char dealer[32];
        if (row == R_UNCONVERTIBLE) {
            crm_msg_init(&m, CRM_T_lead_unconvertible);
            char doc[64];
            snprintf(doc, sizeof doc, "not a lead %d", ++f->n);
            CRM_SET_BIN(&m, lead_unconvertible, document, doc, strlen(doc));
            CRM_SET_STR(&m, lead_unconvertible, reason, "line 1: not JSON, ADF or CSV");
        } else {
            snprintf(dealer, sizeof dealer, "RQ%d", ++f->n);
            s_register_msg(&m, dealer, "广东", "广州", 0);
        }
        bool fits = strlen(v) < CRM_ID_MAX;
        snprintf(m.id, sizeof m.id, "%.*s", (int)sizeof m.id - 1, fits ? v : "@@placeholder@@");
        s_envelope(f, &m);
        assert_int_equal(crm_msg_encode(&m, &buf, NULL), 0);
        crm_msg_clear(&m);
        if (!fits)
            s_splice(&buf, "@@placeholder@@", v);
        zsock_t *sock = row == R_UNCONVERTIBLE ? s_leads(f) : s_ctl(f, "dispatcher");
        s_ask_raw(sock, buf.data, buf.size, fits ? v : NULL, &a, NULL);
        if (!fits || (row == R_REQUEST_ID && !opaque_ok)) {
            s_expect_refusal(label, &a, "id");
        } else if (row == R_REQUEST_ID) {
            s_expect_ok(label, &a);
            assert_int_equal(crm_h_int(f->s.store, "EXISTS crm:dealer:%s", dealer), 1);
        } else if (!s_names_field(&a, "id") &&
                   !(a.type == CRM_T_lead_rejected && a.body.lead_rejected.quarantine_id)) {
            char d[400];
            s_describe(&a, d, sizeof d);
            fail_msg("%s: neither kept in quarantine nor refused naming id: %s", label, d);
        }
        break;
    }
    case R_REGISTER:
        s_register_msg(&m, v, "广东", "广州", 0);
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_refusal(label, &a, "dealer_id");
        break;
    case R_UPDATE:
        crm_msg_init(&m, CRM_T_dealer_update);
        CRM_SET_STR(&m, dealer_update, dealer_id, v);
        CRM_SET_STR(&m, dealer_update, state, "suspended");
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_refusal(label, &a, "dealer_id");
        break;
    case R_CERT_ISSUE:
    case R_CERT_REVOKE:
        s_cert_msg(&m, row == R_CERT_ISSUE ? CRM_T_cert_issue : CRM_T_cert_revoke, v);
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_refusal(label, &a, "id");
        break;
    case R_REJECT_RETRY:
        crm_msg_init(&m, CRM_T_reject_retry);
        CRM_SET_STR(&m, reject_retry, reject_id, v);
        long long retried = crm_h_int(f->s.store, "XLEN crm:{ops}:events");
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        if (crm_h_int(f->s.store, "XLEN crm:{ops}:events") != retried) {
            char d[400];
            s_describe(&a, d, sizeof d);
            s_defect("\n  %s: an entry applied already was applied AGAIN (a second reject.retried; "
                     "answer %s)",
                     label, d);
        }
        if (!s_names_field(&a, "reject_id")) {
            char d[400];
            s_describe(&a, d, sizeof d);
            if (!shaped)
                fail_msg("%s: expected a refusal naming reject_id, got %s", label, d);
            s_defect("\n  %s: expected a refusal naming reject_id, got %s", label, d);
        }
        break;
    case R_REGIONS: {
        s_regions_msg(&m, v);
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        bool refused = s_names_field(&a, "regions");
        redisReply *r = crm_store_cmd(f->s.store, "LINDEX " CRM_KEY_REGIONS_TABLE " 2");
        bool unchanged = r && r->type == REDIS_REPLY_STRING &&
                         !strncmp(r->str, "华东=", strlen("华东="));
        freeReplyObject(r);
        if (!refused || !unchanged) {
            char d[400];
            s_describe(&a, d, sizeof d);
            s_defect("\n  %s: a region name becomes part of crm:dealers:region:<name>; not refused "
                     "naming regions "
                     "(%s), the table %s",
                     label, d, unchanged ? "unchanged" : "REPLACED");
        }
        break;
    }
    case R_STATUS:
        crm_msg_init(&m, CRM_T_dealer_status);
        CRM_SET_STR(&m, dealer_status, testdrive_id, v);
        CRM_SET_STR(&m, dealer_status, status, "received");
        s_ask(f, f->gw, &m, &a);
        s_expect_refusal(label, &a, "testdrive_id");
        break;
    default: fail();
    }
    crm_msg_clear(&a);
    msgpack_sbuffer_destroy(&buf);
}

/* The same kind of request, ordinary: it is carried out. */
static void s_ordinary_request(fx_t *f, s_row_t row, s_pool_t *pool, const char *label)
{
    crm_msg_t m, a;
    char id[40];
    switch (row) {
    case R_SUBMISSION_ID:
    case R_LEAD_DEALER:
    case R_RETRY_OF: return; /* the ordinary lead of s_lead_flows is the same request */
    case R_UNCONVERTIBLE:
        crm_msg_init(&m, CRM_T_lead_unconvertible);
        snprintf(id, sizeof id, "plain document %d", ++f->n);
        CRM_SET_BIN(&m, lead_unconvertible, document, id, strlen(id));
        CRM_SET_STR(&m, lead_unconvertible, reason, "line 1: not JSON, ADF or CSV");
        s_ask(f, s_leads(f), &m, &a);
        if (a.type != CRM_T_lead_rejected || !a.body.lead_rejected.quarantine_id)
            fail_msg("%s: an ordinary unconvertible document was not kept in quarantine", label);
        break;
    case R_REQUEST_ID:
    case R_REGISTER:
        snprintf(id, sizeof id, "OK%d", ++f->n);
        s_register_msg(&m, id, "广东", "广州", 0);
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_ok(label, &a);
        break;
    case R_UPDATE:
        crm_msg_init(&m, CRM_T_dealer_update);
        CRM_SET_STR(&m, dealer_update, dealer_id, "SZ1");
        snprintf(id, sizeof id, "深圳一店 %d", ++f->n);
        CRM_SET_STR(&m, dealer_update, name, id);
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_ok(label, &a);
        break;
    case R_CERT_ISSUE:
    case R_CERT_REVOKE:
        s_cert_msg(&m, CRM_T_cert_issue, "GZ1");
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_ok(label, &a);
        crm_msg_clear(&a);
        s_cert_msg(&m, CRM_T_cert_revoke, "GZ1");
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_ok(label, &a);
        break;
    case R_REJECT_RETRY:
        crm_msg_init(&m, CRM_T_reject_retry);
        CRM_SET_STR(&m, reject_retry, reject_id,
                    pool->ids[pool->used]); /* the macro reads it twice */
        pool->used++;
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_ok(label, &a);
        break;
    case R_REGIONS:
        s_regions_msg(&m, "华东");
        s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
        s_expect_ok(label, &a);
        break;
    case R_STATUS:
        crm_msg_init(&m, CRM_T_dealer_status);
        CRM_SET_STR(&m, dealer_status, testdrive_id, "TG1");
        CRM_SET_STR(&m, dealer_status, status, "received");
        s_ask(f, f->gw, &m, &a);
        s_expect_ok(label, &a);
        break;
    default: fail();
    }
    crm_msg_clear(&a);
}

/* Every request that takes an id, with every hostile value: a refusal
   naming the field (a submission id, an opaque key, may hold ':' and the
   like and is stored as it is), no key made of the raw id, and afterwards
   an ordinary request of the same kind is carried out and an ordinary test
   drive goes from lead to dealer. Refusals that do not name their field
   are collected and reported together at the end (with "DEFECT:"). */
static void
test_hostile_ids_in_every_request_are_refused_by_field_and_requests_and_test_drives_flow(
    void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    crm_h_sys_spawn(&f->s, "intake", NULL);
    s_dealer(f, "SZ1", "广东", "深圳", 0);
    s_dealer(f, "GZ1", "广东", "广州", 0);
    s_pool_t pool = {0};
    s_make_retryable(f, &pool, CRM_H_NHOSTILE + NSHAPED);
    /* a test drive of SZ1 on the gateway, for dealer.status */
    f->gw = s_gateway(f, "SZ1");
    s_customer(f, "CG1", "深圳", "广东省");
    s_testdrive(f, "TG1", "CG1", "SZ1", crm_now_ms() + 30 * HOUR);
    crm_h_sys_wait_td(&f->s, "TG1", "dispatched", 5000);

    char *self_check = s_key_holding(f,
                                     "SZ1:open"); /* the scan sees keys: SZ1 has open test drives */
    assert_non_null(self_check);
    free(self_check);
    s_defects[0] = 0;
    for (int row = 0; row < R__COUNT; row++) {
        int nvalues = CRM_H_NHOSTILE + (row == R_REJECT_RETRY ? NSHAPED : 0);
        for (int h = 0; h < nvalues; h++) {
            bool shaped = h >= CRM_H_NHOSTILE;
            char shape[128];
            if (shaped)
                snprintf(shape, sizeof shape, s_shaped_reject_ids[h - CRM_H_NHOSTILE],
                         pool.ids[pool.used - 1]);
            const char *v = shaped ? shape : crm_h_hostile_id(h);
            char label[120];
            snprintf(label, sizeof label, "%s, hostile value %d (%.12s)", s_row_names[row], h, v);
            for (char *p = label; *p; p++)
                if (*p == '\n')
                    *p = '~';
            s_hostile_request(f, (s_row_t) row, v, shaped, label);
            char *k = s_key_holding(f, v);
            if (k)
                fail_msg("%s: a key holds the raw id: %s", label, k);
            s_ordinary_request(f, (s_row_t) row, &pool, label);
            s_lead_flows(f, "SZ1", label);
        }
    }
    if (s_defects[0])
        fail_msg("DEFECT: these hostile ids were not refused naming their field:%s", s_defects);
}

/* ------------------------------------------------- kept answers */

static bool s_registered(const crm_msg_t *m, const void *arg)
{
    return m->type == CRM_T_dealer_registered && !strcmp(m->body.dealer_registered.dealer_id, arg);
}

static bool s_created(const crm_msg_t *m, const void *arg)
{
    return m->type == CRM_T_lead_created && !strcmp(m->body.lead_created.submission_id, arg);
}

static long long s_answer_pttl(fx_t *f, const char *svc, const char *keyspace, const char *key)
{
    const char *parts[] = {svc, "", keyspace, key};
    char digest[CRM_ID_DIGEST_SZ];
    crm_id_digest(parts, 4, digest);
    return crm_h_int(f->s.store, "PTTL crm:ans:%s:%s", svc, digest);
}

static void s_about(const char *what, long long got, long long want)
{
    if (got < want - 120000 || got > want + 5000)
        fail_msg("%s: PTTL %lld ms, expected about %lld ms (%.2f days)", what, got, want,
                 want / (double) DAY);
}

/* The same bytes sent twice get the same answer, byte for byte, and change
   nothing; the answer is kept 7 days for a control request, 90 days for a
   submission, or what CRM_ANSWER_TTL_DAYS / CRM_SUBMISSION_TTL_DAYS say. */
static void
test_the_same_request_sent_twice_gets_the_same_answer_and_changes_nothing_for_a_kept_time(
    void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    crm_h_sys_spawn(&f->s, "intake", NULL);
    crm_msg_t m, a1, a2;
    msgpack_sbuffer req, r1, r2;
    msgpack_sbuffer_init(&req);
    msgpack_sbuffer_init(&r1);
    msgpack_sbuffer_init(&r2);

    /* dealer.register */
    s_register_msg(&m, "SZ1", "广东", "深圳", 0);
    snprintf(m.id, sizeof m.id, "register-SZ1");
    s_envelope(f, &m);
    assert_int_equal(crm_msg_encode(&m, &req, NULL), 0);
    crm_msg_clear(&m);
    s_ask_raw(s_ctl(f, "dispatcher"), req.data, req.size, "register-SZ1", &a1, &r1);
    s_expect_ok("dealer.register", &a1);
    s_ask_raw(s_ctl(f, "dispatcher"), req.data, req.size, "register-SZ1", &a2, &r2);
    assert_int_equal(r1.size, r2.size);
    assert_memory_equal(r1.data, r2.data, r1.size);
    assert_int_equal(s_events(f, "dealers", s_registered, "SZ1"), 1);
    s_about("kept answer of dealer.register",
            s_answer_pttl(f, "dispatcher", "request", "register-SZ1"), 7 * DAY);
    crm_msg_clear(&a1);
    crm_msg_clear(&a2);

    /* lead.submit: the same bytes, then the same submission id in a new envelope */
    s_lead_msg(f, &m, "form-twice", false);
    snprintf(m.id, sizeof m.id, "post-1");
    s_envelope(f, &m);
    req.size = 0;
    assert_int_equal(crm_msg_encode(&m, &req, NULL), 0);
    crm_msg_clear(&m);
    s_ask_raw(s_leads(f), req.data, req.size, "post-1", &a1, &r1);
    assert_int_equal(a1.type, CRM_T_lead_accepted);
    s_ask_raw(s_leads(f), req.data, req.size, "post-1", &a2, &r2);
    assert_int_equal(r1.size, r2.size);
    assert_memory_equal(r1.data, r2.data, r1.size);
    crm_msg_clear(&a2);
    s_lead_msg(f, &m, "form-twice", false);
    snprintf(m.id, sizeof m.id, "post-2");
    s_ask(f, s_leads(f), &m, &a2);
    assert_int_equal(a2.type, CRM_T_lead_accepted);
    assert_string_equal(a2.body.lead_accepted.lead_id, a1.body.lead_accepted.lead_id);
    assert_string_equal(a2.corr, "post-2");
    assert_int_equal(s_events(f, "lead", s_created, "form-twice"), 1);
    s_about("kept answer of lead.submit", s_answer_pttl(f, "intake", "submission", "form-twice"),
            90 * DAY);
    crm_msg_clear(&a1);
    crm_msg_clear(&a2);

    /* retention as configured */
    crm_h_sys_kill(&f->s, "dispatcher", SIGTERM);
    crm_h_sys_kill(&f->s, "intake", SIGTERM);
    const char *d2[] = {"CRM_ANSWER_TTL_DAYS=2", NULL}, *s3[] = {"CRM_SUBMISSION_TTL_DAYS=3", NULL};
    crm_h_sys_spawn(&f->s, "dispatcher", d2);
    crm_h_sys_spawn(&f->s, "intake", s3);
    zsock_destroy(&f->ctl[crm_h_service_index("dispatcher")]);
    zsock_destroy(&f->leads);
    s_register_msg(&m, "SZ2", "广东", "深圳", 0);
    snprintf(m.id, sizeof m.id, "register-SZ2");
    s_ask(f, s_ctl(f, "dispatcher"), &m, &a1);
    s_expect_ok("dealer.register", &a1);
    crm_msg_clear(&a1);
    s_about("CRM_ANSWER_TTL_DAYS=2", s_answer_pttl(f, "dispatcher", "request", "register-SZ2"),
            2 * DAY);
    s_lead_msg(f, &m, "form-ttl", false);
    s_ask(f, s_leads(f), &m, &a1);
    assert_int_equal(a1.type, CRM_T_lead_accepted);
    crm_msg_clear(&a1);
    s_about("CRM_SUBMISSION_TTL_DAYS=3", s_answer_pttl(f, "intake", "submission", "form-ttl"),
            3 * DAY);
    msgpack_sbuffer_destroy(&req);
    msgpack_sbuffer_destroy(&r1);
    msgpack_sbuffer_destroy(&r2);
}

#define N_LOAD 500

/* One round of the load: N_LOAD submissions from `base` on, the same bytes
   to both instances; returns how many were sent again after "unavailable". */
static int s_load_round(fx_t *f, int port2, int base)
{
    enum { N = N_LOAD };
    msgpack_sbuffer *req = calloc(N, sizeof *req), *ans[2];
    ans[0] = calloc(N, sizeof **ans), ans[1] = calloc(N, sizeof **ans);
    for (int i = 0; i < N; i++) {
        crm_msg_t m;
        char sid[32];
        snprintf(sid, sizeof sid, "load-%d", base + i);
        s_lead_msg(f, &m, sid, false);
        snprintf(m.id, sizeof m.id, "load-%d", base + i);
        s_envelope(f, &m);
        msgpack_sbuffer_init(&req[i]);
        msgpack_sbuffer_init(&ans[0][i]);
        msgpack_sbuffer_init(&ans[1][i]);
        assert_int_equal(crm_msg_encode(&m, &req[i], NULL), 0);
        crm_msg_clear(&m);
    }
    zsock_t *c[2] = {s_connect(f->s.intake), s_connect(port2)};
    zsock_set_sndhwm(c[0], 0), zsock_set_sndhwm(c[1], 0);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++)
            assert_int_equal(zsock_send(c[k], "b", req[i].data, req[i].size), 0);
    int pending = 2 * N, resent = 0;
    zpoller_t *poller = zpoller_new(c[0], c[1], NULL);
    while (pending > 0) {
        zsock_t *which = zpoller_wait(poller, 10000);
        if (!which)
            fail_msg("%d answers missing", pending);
        int k = which == c[0] ? 0 : 1;
        zframe_t *fr = zframe_recv(which);
        crm_msg_t a;
        crm_err_t err;
        assert_int_equal(crm_msg_decode(zframe_data(fr), zframe_size(fr), &a, &err), 0);
        int i = atoi(a.corr + 5) - base;
        assert_true(i >= 0 && i < N);
        if (a.type == CRM_T_lead_rejected &&
            s_prefix_in(&a.body.lead_rejected.errors, "service|unavailable")) {
            zsock_send(which, "b", req[i].data, req[i].size); /* the same bytes again */
            resent++;
        } else {
            assert_int_equal(a.type, CRM_T_lead_accepted);
            msgpack_sbuffer_write(&ans[k][i], (const char *) zframe_data(fr), zframe_size(fr));
            pending--;
        }
        crm_msg_clear(&a);
        zframe_destroy(&fr);
    }
    zpoller_destroy(&poller);
    for (int i = 0; i < N; i++) {
        if (ans[0][i].size != ans[1][i].size ||
            memcmp(ans[0][i].data, ans[1][i].data, ans[0][i].size)) {
            crm_msg_t x, y;
            crm_err_t err;
            crm_msg_decode(ans[0][i].data, ans[0][i].size, &x, &err);
            crm_msg_decode(ans[1][i].data, ans[1][i].size, &y, &err);
            fail_msg("load-%d answered differently: %s vs %s", base + i,
                     x.body.lead_accepted.lead_id, y.body.lead_accepted.lead_id);
        }
        msgpack_sbuffer_destroy(&req[i]);
        msgpack_sbuffer_destroy(&ans[0][i]);
        msgpack_sbuffer_destroy(&ans[1][i]);
    }
    free(req), free(ans[0]), free(ans[1]);
    zsock_destroy(&c[0]);
    zsock_destroy(&c[1]);
    return resent;
}

/* Two crm-intake instances on one Redis, two clients sending the same 500
   submissions to both at once: 500 leads, and every submission answered
   alike, byte for byte, by both (an "unavailable" answer is sent again with
   the same bytes, as a client does). The WATCHed path is taken. */
static void
test_two_intake_instances_given_the_same_500_submissions_store_500_leads_and_answer_alike(
    void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "intake", NULL);
    int port2 = crm_h_free_port();
    char e1[64], e2[64], e3[64], log2[400];
    const char *env[64];
    int ne = 0;
    for (int i = 0; i < f->s.nenv; i++)
        env[ne++] = f->s.envp[i];
    snprintf(e1, sizeof e1, "CRM_INTAKE_ENDPOINT=tcp://127.0.0.1:%d", port2);
    snprintf(e2, sizeof e2, "CRM_PUB=tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(e3, sizeof e3, "CRM_CONTROL=tcp://127.0.0.1:%d", crm_h_free_port());
    env[ne++] = e1, env[ne++] = e2, env[ne++] = e3, env[ne++] = "CRM_CONSUMER=intake2";
    env[ne] = NULL;
    crm_h_path(&f->s.redis, "intake2.log", log2, sizeof log2);
    f->second = crm_h_spawn("crm-intake", NULL, env, log2);
    int64_t end = crm_mono_ms() + 10000;
    while (!crm_h_file_contains(log2, "service.started") && crm_mono_ms() < end)
        usleep(20 * 1000);
    assert_true(crm_h_file_contains(log2, "service.started"));

    int resent = 0, conflicts = 0, rounds = 0;
    while (conflicts == 0 && rounds < 3) {
        resent += s_load_round(f, port2, rounds * N_LOAD);
        rounds++;
        conflicts = s_log_has(f, "intake", "request.conflict");
        char *t = crm_h_slurp(log2);
        for (const char *p = t; (p = strstr(p, "request.conflict")); p++)
            conflicts++;
        free(t);
    }
    assert_int_equal(s_count_keys(f, "crm:lead:*"), rounds * N_LOAD);
    assert_int_equal(crm_h_int(f->s.store, "XLEN crm:{lead}:events"), rounds * N_LOAD);
    /* the two appended to the same streams, turn by turn */
    assert_true(s_numbered_in_order(f, "lead"));
    assert_true(s_numbered_in_order(f, "customer"));
    print_message("two intakes: %d round(s) of %d, %d conflicts, %d answers sent again after "
                  "\"unavailable\"\n",
                  rounds, N_LOAD, conflicts, resent);
    assert_true(conflicts > 0); /* the WATCHed path was taken */
}

/* ------------------------------------------------- crmctl asks */

static bool s_suspended(const crm_msg_t *m, const void *arg)
{
    if (m->type != CRM_T_dealer_updated || strcmp(m->body.dealer_updated.dealer_id, arg))
        return false;
    for (size_t i = 0; i < m->body.dealer_updated.changes.n; i++)
        if (!strcmp(m->body.dealer_updated.changes.v[i], "state=suspended"))
            return true;
    return false;
}

/* crmctl changes nothing without asking a service: with the dispatcher
   down it cannot add or suspend a dealer (exit 2) and Redis is as it was;
   with it up every change comes with its event. */
static void
test_crmctl_changes_nothing_without_the_dispatcher_and_every_change_has_its_event(void **state)
{
    fx_t *f = *state;
    assert_int_equal(crm_h_int(f->s.store, "DBSIZE"), 0);
    s_crmctl_ok(f, 2, "dealer add (no dispatcher)",
                crm_h_sys_crmctl(&f->s, "dealer", "add", "SZ1", "--name", "深圳一店", "--province",
                                 "广东", "--city", "深圳", "--tries", "1", NULL));
    assert_true(s_out_has(f, "did not answer"));
    s_crmctl_ok(f, 2, "dealer suspend (no dispatcher)",
                crm_h_sys_crmctl(&f->s, "dealer", "suspend", "SZ1", "--tries", "1", NULL));
    assert_int_equal(crm_h_int(f->s.store, "DBSIZE"), 0);

    /* Ports free now, not the ones nobody listened on for seconds (a test
       running beside this one may have taken those). */
    int d = crm_h_service_index("dispatcher");
    f->s.control[d] = crm_h_free_port();
    f->s.pub[d] = crm_h_free_port();
    f->s.gw_pub = crm_h_free_port();
    f->s.gw_router = crm_h_free_port();
    crm_h_sys_env(&f->s, "CRM_DISPATCHER_CONTROL=tcp://127.0.0.1:%d", f->s.control[d]);
    crm_h_sys_env(&f->s, "CRM_GATEWAY_PUB=tcp://127.0.0.1:%d", f->s.gw_pub);
    crm_h_sys_env(&f->s, "CRM_GATEWAY_ROUTER=tcp://127.0.0.1:%d", f->s.gw_router);
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_crmctl_ok(f, 0, "dealer add",
                crm_h_sys_crmctl(&f->s, "dealer", "add", "SZ1", "--name", "深圳一店", "--province",
                                 "广东", "--city", "深圳", NULL));
    assert_int_equal(crm_h_int(f->s.store, "EXISTS crm:dealer:SZ1"), 1);
    assert_int_equal(s_events(f, "dealers", s_registered, "SZ1"), 1);
    s_crmctl_ok(f, 0, "dealer suspend", crm_h_sys_crmctl(&f->s, "dealer", "suspend", "SZ1", NULL));
    assert_int_equal(s_events(f, "dealers", s_suspended, "SZ1"), 1);
    redisReply *r = crm_store_cmd(f->s.store, "HGET crm:dealer:SZ1 state");
    assert_string_equal(r->str, "suspended");
    freeReplyObject(r);
}

/* ------------------------------------------------- the registry and routing */

/* "YYYYMMDD" of `ms` in China time, and when that day ends (UTC ms). */
static int64_t s_cst_day(int64_t ms, char *out, size_t size)
{
    int64_t local = ms + CST, start = local - local % DAY;
    time_t t = (time_t) (start / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return start + DAY - CST;
}

/* A dealer registered without a capacity takes the dispatcher's
   CRM_DEFAULT_CAPACITY (1 here): the second test drive that day in its city
   goes to another dealer. Day counters expire a week after their day. */
static void test_a_dealer_registered_without_capacity_takes_the_dispatchers_default(void **state)
{
    fx_t *f = *state;
    const char *env[] = {"CRM_DEFAULT_CAPACITY=1", NULL};
    crm_h_sys_spawn(&f->s, "dispatcher", env);
    s_crmctl_ok(f, 0, "dealer add",
                crm_h_sys_crmctl(&f->s, "dealer", "add", "SZ1", "--name", "深圳一店", "--province",
                                 "广东", "--city", "深圳", NULL));
    assert_true(s_out_has(f, "capacity=default (1)"));
    assert_int_equal(crm_h_int(f->s.store, "HEXISTS crm:dealer:SZ1 capacity"), 0);
    s_dealer(f, "GZ1", "广东", "广州", 0);
    s_customer(f, "C1", "深圳", "广东省");
    int64_t at = crm_now_ms() + 30 * HOUR;
    s_testdrive(f, "T1", "C1", NULL, at);
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 5000);
    s_routed(f, "T1", "SZ1", "city", "city 深圳");
    s_testdrive(f, "T2", "C1", NULL, at + HOUR);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 5000);
    s_routed(f, "T2", "GZ1", "province", NULL);
    char day[48];
    int64_t day_end = s_cst_day(at, day, sizeof day);
    assert_int_equal(crm_h_int(f->s.store, "GET crm:dealer:SZ1:day:%s", day), 1);
    s_about("day counter", crm_h_int(f->s.store, "PTTL crm:dealer:SZ1:day:%s", day),
            day_end + 7 * DAY - crm_now_ms());
}

/* The prospect's choice stands at capacity (the reason says so); a
   suspended choice is routed elsewhere (the reason says so too). */
static void
test_a_chosen_dealer_at_capacity_is_kept_and_a_suspended_one_is_routed_elsewhere(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer(f, "SZ1", "广东", "深圳", 1);
    s_dealer(f, "SZ2", "广东", "深圳", 0);
    s_customer(f, "C1", "深圳", "广东省");
    int64_t at = crm_now_ms() + 30 * HOUR;
    s_testdrive(f, "T1", "C1", "SZ1", at);
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 5000);
    s_routed(f, "T1", "SZ1", "chosen", "chosen by the prospect");
    s_testdrive(f, "T2", "C1", "SZ1", at);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 5000);
    s_routed(f, "T2", "SZ1", "chosen", "at capacity");
    s_crmctl_ok(f, 0, "dealer suspend", crm_h_sys_crmctl(&f->s, "dealer", "suspend", "SZ1", NULL));
    s_testdrive(f, "T3", "C1", "SZ1", at);
    crm_h_sys_wait_td(&f->s, "T3", "dispatched", 5000);
    s_routed(f, "T3", "SZ2", "city", "chosen dealer SZ1 is suspended");
}

static bool s_acked(const crm_msg_t *m, const void *arg)
{
    (void) arg;
    return m->type == CRM_T_testdrive_acked && !strcmp(m->body.testdrive_acked.dealer_id, "SZ1");
}

static void s_ack(fx_t *f, long long upto, crm_msg_t *a)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_ack);
    CRM_SET_I64(&m, dealer_ack, upto, upto);
    s_ask(f, f->gw, &m, a);
}

static bool s_escalated(const crm_msg_t *m, const void *arg)
{
    const char *const *want = arg; /* test drive, reason */
    return m->type == CRM_T_testdrive_escalated &&
           !strcmp(m->body.testdrive_escalated.testdrive_id, want[0]) &&
           !strcmp(m->body.testdrive_escalated.reason, want[1]) &&
           !strcmp(m->body.testdrive_escalated.dealer_id, "SZ1");
}

static int s_wait_escalated(fx_t *f, const char *tid, const char *reason, int ms)
{
    const char *want[] = {tid, reason};
    int64_t end = crm_mono_ms() + ms;
    int n;
    while ((n = s_events(f, "testdrive", s_escalated, want)) == 0 && crm_mono_ms() < end)
        usleep(20 * 1000);
    return n;
}

/* A test drive dispatched less than 48 h before it: a silent dealer is
   escalated 24 h before the test drive (no_ack_before_t_minus_1), not 24 h
   after the dispatch; one further away keeps the 24 h rule. */
static void test_a_late_dispatch_is_escalated_a_day_before_the_test_drive(void **state)
{
    fx_t *f = *state;
    int64_t now = crm_now_ms() / 1000 * 1000;
    crm_h_sys_set_clock(&f->s, now);
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer(f, "SZ1", "广东", "深圳", 0);
    s_customer(f, "C1", "深圳", "广东省");
    int64_t at1 = now + 36 * HOUR, at2 = now + 60 * HOUR;
    /* T0, as near as T1, is acknowledged: never escalated */
    f->gw = s_gateway(f, "SZ1");
    s_testdrive(f, "T0", "C1", "SZ1", at1);
    crm_h_sys_wait_td(&f->s, "T0", "dispatched", 5000);
    crm_msg_t a;
    s_ack(f, 1, &a);
    s_expect_ok("dealer.ack of T0", &a);
    crm_msg_clear(&a);
    s_testdrive(f, "T1", "C1", "SZ1", at1);
    s_testdrive(f, "T2", "C1", "SZ1", at2);
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 5000);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 5000);
    assert_int_equal(crm_h_int(f->s.store, "ZSCORE crm:due:dispatch e:T1"), at1 - DAY);
    assert_int_equal(crm_h_int(f->s.store, "ZSCORE crm:due:dispatch e:T2"), now + DAY);
    crm_h_sys_set_clock(&f->s, at1 - DAY - 1000);
    usleep(400 * 1000);
    assert_int_equal(s_wait_escalated(f, "T1", "no_ack_before_t_minus_1", 0), 0);
    crm_h_sys_set_clock(&f->s, at1 - DAY);
    assert_int_equal(s_wait_escalated(f, "T1", "no_ack_before_t_minus_1", 5000), 1);
    assert_int_equal(s_wait_escalated(f, "T0", "no_ack_before_t_minus_1", 0), 0);
    assert_int_equal(s_wait_escalated(f, "T2", "no_ack_24h", 0), 0);
    crm_h_sys_set_clock(&f->s, now + DAY);
    assert_int_equal(s_wait_escalated(f, "T2", "no_ack_24h", 5000), 1);
}

/* Timers of an earlier release (a whole envelope each in
   crm:timers:dispatch) are carried over when the dispatcher starts: each
   becomes a compact one in crm:due:dispatch with its due time ("e:<T>" an
   escalation, "d:<T>" a dispatch), and is decided when it falls due from
   the record: T1, never acknowledged, is escalated (24 h after its
   dispatch: no_ack_24h); T3, acknowledged since, is not. One whose id is
   no test drive's stays where it was; timers that name no test drive of
   ours (a bad id, a record that is not there) are passed over and the
   service goes on. */
static void test_escalation_timers_of_an_earlier_release_are_carried_over_and_decided_from_the_record(void **state)
{
    fx_t *f = *state;
    int64_t now = crm_now_ms() / 1000 * 1000, sent = now - 2 * HOUR;
    crm_h_sys_set_clock(&f->s, now);
    const char *cmds[] = {
        "HSET crm:td:T1 status dispatched dealer_id SZ1 dispatched_ms %lld at %lld",
        "HSET crm:td:T3 status dispatched dealer_id SZ1 dispatched_ms %lld at %lld acked_ms %lld",
    };
    redisReply *r = crm_store_cmd(f->s.store, cmds[0], (long long) sent, (long long) (now + 60 * HOUR));
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, cmds[1], (long long) sent, (long long) (now + 60 * HOUR),
                      (long long) (sent + HOUR));
    freeReplyObject(r);
    const char *old[] = {"escalate:T1", "escalate:T3", "due:T9", "escalate:../x"};
    for (int i = 0; i < 4; i++) {
        r = crm_store_cmd(f->s.store, "ZADD crm:timers:dispatch %lld %s",
                          (long long) (i == 2 ? now + 10 * DAY : sent + DAY), old[i]);
        freeReplyObject(r);
        r = crm_store_cmd(f->s.store, "HSET crm:timers:dispatch:frame %s envelope", old[i]);
        freeReplyObject(r);
        r = crm_store_cmd(f->s.store, "HSET crm:timers:dispatch:meta %s %s", old[i], "testdrive 0");
        freeReplyObject(r);
    }
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    assert_int_equal(crm_h_wait_int(f->s.store, sent + DAY, 10000, "ZSCORE crm:due:dispatch e:T1"), sent + DAY);
    assert_int_equal(crm_h_int(f->s.store, "ZSCORE crm:due:dispatch e:T3"), sent + DAY);
    assert_true(crm_h_int(f->s.store, "ZSCORE crm:timers:dispatch escalate:T1") < 0);
    assert_int_equal(crm_h_int(f->s.store, "HEXISTS crm:timers:dispatch:frame escalate:T1"), 0);
    assert_int_equal(crm_h_int(f->s.store, "HEXISTS crm:timers:dispatch:meta escalate:T3"), 0);
    assert_int_equal(crm_h_int(f->s.store, "ZSCORE crm:due:dispatch d:T9"), now + 10 * DAY);
    assert_true(crm_h_int(f->s.store, "ZSCORE crm:timers:dispatch due:T9") < 0);
    assert_int_equal(crm_h_int(f->s.store, "HEXISTS crm:timers:dispatch:frame due:T9"), 0);
    assert_int_equal(crm_h_int(f->s.store, "HEXISTS crm:timers:dispatch:meta due:T9"), 0);
    assert_int_equal(crm_h_int(f->s.store, "ZSCORE crm:timers:dispatch escalate:../x"), sent + DAY);
    /* hostile neighbours, due at the same moment */
    r = crm_store_cmd(f->s.store, "ZADD crm:due:dispatch %lld e:no/such/id %lld e:T404 %lld x:T1",
                      (long long) (sent + DAY), (long long) (sent + DAY), (long long) (sent + DAY));
    freeReplyObject(r);
    crm_h_sys_set_clock(&f->s, sent + DAY - 1000);
    usleep(400 * 1000);
    assert_int_equal(s_wait_escalated(f, "T1", "no_ack_24h", 0), 0);
    crm_h_sys_set_clock(&f->s, sent + DAY);
    assert_int_equal(s_wait_escalated(f, "T1", "no_ack_24h", 5000), 1);
    assert_int_equal(crm_h_wait_int(f->s.store, 1, 5000, "ZCARD crm:due:dispatch"), 1); /* d:T9, later */
    usleep(300 * 1000);
    assert_int_equal(s_wait_escalated(f, "T1", "no_ack_24h", 0), 1); /* once */
    assert_int_equal(s_wait_escalated(f, "T3", "no_ack_24h", 0), 0);
    assert_int_equal(s_wait_escalated(f, "T404", "no_ack_24h", 0), 0);
    /* still serving: the registry answers */
    s_dealer(f, "SZ1", "广东", "深圳", 0);
    assert_int_equal(crm_h_int(f->s.store, "EXISTS crm:dealer:SZ1"), 1);
}

/* A timer set that is not a sorted set (another type at crm:due:dispatch,
   then at crm:timers:dispatch) neither stops crm-dispatcher from starting
   nor costs an old timer: it stays where it was, and the log says why it
   was not moved. */
static void test_timer_sets_of_another_type_neither_stop_the_dispatcher_nor_lose_old_timers(void **state)
{
    fx_t *f = *state;
    int64_t later = crm_now_ms() + 10 * DAY;
    redisReply *r = crm_store_cmd(f->s.store, "SET crm:due:dispatch x");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "HSET crm:timers:dispatch:frame escalate:T1 envelope");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "HSET crm:timers:dispatch:meta escalate:T1 x");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "ZADD crm:timers:dispatch %lld escalate:T1", (long long) later);
    freeReplyObject(r);
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    assert_int_equal(crm_h_int(f->s.store, "ZSCORE crm:timers:dispatch escalate:T1"), later);
    assert_int_equal(crm_h_int(f->s.store, "HEXISTS crm:timers:dispatch:frame escalate:T1"), 1);
    char log[400];
    crm_h_path(&f->s.redis, "dispatcher.log", log, sizeof log);
    assert_true(crm_h_file_contains(log, "dispatcher.timers_unmigrated"));
    assert_int_equal(crm_h_sys_kill(&f->s, "dispatcher", SIGTERM), 0);

    r = crm_store_cmd(f->s.store, "DEL crm:due:dispatch crm:timers:dispatch");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "SET crm:timers:dispatch x");
    freeReplyObject(r);
    crm_h_sys_spawn(&f->s, "dispatcher", NULL); /* asserts it runs */
    s_dealer(f, "SZ1", "广东", "深圳", 0);
}

/* An acknowledgement whose commit Redis refuses in part (the test drive's
   record is not a hash). Redis has no rollback: what it applied stands (the
   escalation cancelled, testdrive.acked recorded), the answer says the rest
   failed and names the reject that keeps what was left out; once the record
   is mended, crmctl rejects retry applies exactly that, and the test drive
   shows the acknowledgement. */
static void test_an_ack_whose_commit_redis_refuses_in_part_is_made_whole_by_rejects_retry(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer(f, "SZ1", "广东", "深圳", 0);
    f->gw = s_gateway(f, "SZ1");
    s_customer(f, "C1", "深圳", "广东省");
    s_testdrive(f, "T1", "C1", "SZ1", crm_now_ms() + 30 * HOUR);
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 5000);
    assert_true(crm_h_int(f->s.store, "ZSCORE crm:due:dispatch e:T1") > 0);

    redisReply *r = crm_store_cmd(f->s.store, "RENAME crm:td:T1 crm:test:td");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "SET crm:td:T1 x");
    freeReplyObject(r);
    crm_msg_t a;
    s_ack(f, 1, &a);
    assert_false(a.body.dealer_reply.ok);
    assert_string_equal(a.body.dealer_reply.code, "failed");
    const char *kept = strstr(a.body.dealer_reply.message, "kept for review as ");
    assert_non_null(kept);
    char rid[48];
    snprintf(rid, sizeof rid, "%.40s", kept + strlen("kept for review as "));
    crm_msg_clear(&a);
    /* what Redis applied stands */
    assert_true(crm_h_int(f->s.store, "ZSCORE crm:due:dispatch e:T1") < 0);
    assert_int_equal(s_events(f, "testdrive", s_acked, NULL), 1);
    assert_int_equal(crm_h_int(f->s.store, "HGET crm:dealer:SZ1 acked"), 1);
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", "show", rid, NULL), 0);
    assert_true(crm_h_file_contains(f->s.out, "commands_n=\"1\""));

    r = crm_store_cmd(f->s.store, "DEL crm:td:T1");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "RENAME crm:test:td crm:td:T1");
    freeReplyObject(r);
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", "retry", rid, NULL), 0);
    char *stored = crm_h_sys_td(&f->s, "T1", "acked_ms");
    assert_true(stored && *stored);
    free(stored);
    assert_int_equal(s_events(f, "testdrive", s_acked, NULL), 1);
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", "retry", rid, NULL), 1); /* once */
    assert_true(crm_h_file_contains(f->s.out, "(done)"));
    /* and the ack sent again is an old ack: ok, nothing more */
    s_ack(f, 1, &a);
    assert_true(a.body.dealer_reply.ok);
    crm_msg_clear(&a);
    assert_int_equal(s_events(f, "testdrive", s_acked, NULL), 1);
}

static bool s_regions_loaded(const crm_msg_t *m, const void *arg)
{
    (void) arg;
    return m->type == CRM_T_regions_loaded && m->body.regions_loaded.regions.n == 7 &&
           !strcmp(m->body.regions_loaded.regions.v[5],
                   "西南=重庆市,四川省,贵州省,云南省,西藏自治区,广西壮族自治区");
}

static void s_write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* A dealer's region must be in the table; crmctl regions load replaces the
   table (with its event) but not one that drops a region a dealer is in. */
static void test_sales_regions_are_a_table_the_registry_follows(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    crm_msg_t m, a;
    s_register_msg(&m, "MARS1", "广东", "深圳", 0);
    CRM_SET_STR(&m, dealer_register, region, "火星");
    s_ask(f, s_ctl(f, "dispatcher"), &m, &a);
    s_expect_refusal("a region not in the table", &a, "region");
    crm_msg_clear(&a);
    s_crmctl_ok(f, 1, "dealer add --region 火星",
                crm_h_sys_crmctl(&f->s, "dealer", "add", "MARS1", "--name", "火星店", "--province",
                                 "广东", "--city", "深圳", "--region", "火星", NULL));
    assert_true(s_out_has(f, "region"));
    assert_int_equal(crm_h_int(f->s.store, "EXISTS crm:dealer:MARS1"), 0);
    s_dealer(f, "SZ1", "广东", "深圳", 0); /* in 华南, from its province */
    redisReply *r = crm_store_cmd(f->s.store, "HGET crm:dealer:SZ1 region");
    assert_string_equal(r->str, "华南");
    freeReplyObject(r);

    char path[400];
    crm_h_path(&f->s.redis, "regions.txt", path, sizeof path);
    s_write_file(path, "# 广西 moves to 西南\n"
                       "华北 = 北京市, 天津市, 河北省, 山西省, 内蒙古自治区\n"
                       "东北 = 辽宁省, 吉林省, 黑龙江省\n"
                       "华东 = 上海市, 江苏省, 浙江省, 安徽省, 福建省, 江西省, 山东省, 台湾省\n"
                       "华中 = 河南省, 湖北省, 湖南省\n"
                       "华南 = 广东省, 海南省, 香港特别行政区, 澳门特别行政区\n"
                       "西南 = 重庆市, 四川省, 贵州省, 云南省, 西藏自治区, 广西\n"
                       "西北 = 陕西省, 甘肃省, 青海省, 宁夏回族自治区, 新疆维吾尔自治区\n");
    s_crmctl_ok(f, 0, "regions load", crm_h_sys_crmctl(&f->s, "regions", "load", path, NULL));
    r = crm_store_cmd(f->s.store, "HGET " CRM_KEY_REGIONS " 广西壮族自治区");
    assert_string_equal(r->str, "西南");
    freeReplyObject(r);
    assert_int_equal(s_events(f, "dealers", s_regions_loaded, NULL), 1);

    /* an error names the line of the file, comments and blank lines counted */
    s_write_file(path, "# the carmaker's regions\n\n华北 = 北京市, 火星\n");
    s_crmctl_ok(f, 1, "regions load (bad line 3)", crm_h_sys_crmctl(&f->s, "regions", "load", path, NULL));
    assert_true(s_out_has(f, "line 3"));

    s_write_file(path, "华北 = 北京市, 天津市, 河北省, 山西省, 内蒙古自治区\n"
                       "东北 = 辽宁省, 吉林省, 黑龙江省\n"
                       "华东 = 上海市, 江苏省, 浙江省, 安徽省, 福建省, 江西省, 山东省, 台湾省\n"
                       "华中 = 河南省, 湖北省, 湖南省\n"
                       "岭南 = 广东省, 海南省, 香港特别行政区, 澳门特别行政区\n"
                       "西南 = 重庆市, 四川省, 贵州省, 云南省, 西藏自治区, 广西\n"
                       "西北 = 陕西省, 甘肃省, 青海省, 宁夏回族自治区, 新疆维吾尔自治区\n");
    s_crmctl_ok(f, 1, "regions load (drops 华南)",
                crm_h_sys_crmctl(&f->s, "regions", "load", path, NULL));
    assert_true(s_out_has(f, "华南"));
    assert_true(s_out_has(f, "SZ1"));
    r = crm_store_cmd(f->s.store, "HGET " CRM_KEY_REGIONS " 广东省");
    assert_string_equal(r->str, "华南");
    freeReplyObject(r);
    assert_int_equal(s_events(f, "dealers", s_regions_loaded, NULL), 1);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_hostile_ids_in_every_request_are_refused_by_field_and_requests_and_test_drives_flow,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_same_request_sent_twice_gets_the_same_answer_and_changes_nothing_for_a_kept_time,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_two_intake_instances_given_the_same_500_submissions_store_500_leads_and_answer_alike,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_crmctl_changes_nothing_without_the_dispatcher_and_every_change_has_its_event,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_dealer_registered_without_capacity_takes_the_dispatchers_default, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_chosen_dealer_at_capacity_is_kept_and_a_suspended_one_is_routed_elsewhere, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_late_dispatch_is_escalated_a_day_before_the_test_drive, setup_clock, teardown),
        cmocka_unit_test_setup_teardown(
            test_escalation_timers_of_an_earlier_release_are_carried_over_and_decided_from_the_record,
            setup_clock, teardown),
        cmocka_unit_test_setup_teardown(
            test_timer_sets_of_another_type_neither_stop_the_dispatcher_nor_lose_old_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sales_regions_are_a_table_the_registry_follows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_an_ack_whose_commit_redis_refuses_in_part_is_made_whole_by_rejects_retry, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
