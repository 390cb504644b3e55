/*  Nothing stalls a stream: hostile ids, messages that fail for good, and
 *  Redis going away, as the CRM department and ops meet them. A real
 *  redis-server, a real crm-dispatcher (and crm-intake where a lead comes
 *  in); test drives arrive as intake sends them, committed and published on
 *  the testdrive stream by the test's own publisher.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define HOUR 3600000LL

typedef struct {
    crm_h_sys_t s;
    zsock_t *leads; /* a website's back end on intake's lead endpoint */
    int n;          /* for fresh ids and mobiles */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->s, true, false) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    zsock_destroy(&f->leads);
    crm_h_sys_stop(&f->s);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ plumbing */

/* Lines of a service's log holding every one of the needles (NULL-ended). */
static int s_log_lines(fx_t *f, const char *svc, ...)
{
    char path[400];
    crm_h_sys_log(&f->s, svc, path, sizeof path);
    char *text = crm_h_slurp(path);
    int count = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        va_list ap;
        va_start(ap, svc);
        bool all = true;
        for (const char *n; all && (n = va_arg(ap, const char *));)
            all = strstr(line, n) != NULL;
        va_end(ap);
        count += all;
    }
    free(text);
    return count;
}

static bool s_out_has(fx_t *f, const char *needle)
{
    char *text = crm_h_slurp(f->s.out);
    bool found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* A key holding `raw` (binary-safe), or NULL; the caller frees it. */
static char *s_key_holding(fx_t *f, const char *raw)
{
    char cursor[32] = "0";
    size_t n = strlen(raw);
    do {
        redisReply *r = crm_store_cmd(f->s.store, "SCAN %s COUNT 1000", cursor);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
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

static void s_no_key_holds(fx_t *f, const char *raw, const char *what)
{
    char *k = s_key_holding(f, raw);
    if (k)
        fail_msg("a key holds the raw %s %.40s: %s", what, raw, k);
}

static void s_dealer_add(fx_t *f, const char *id, const char *city, const char *capacity)
{
    int rc = capacity ? crm_h_sys_crmctl(&f->s, "dealer", "add", id, "--name", id, "--province",
                                         "广东", "--city", city, "--capacity", capacity, NULL)
                      : crm_h_sys_crmctl(&f->s, "dealer", "add", id, "--name", id, "--province",
                                         "广东", "--city", city, NULL);
    if (rc != 0) {
        char *out = crm_h_slurp(f->s.out), text[600];
        snprintf(text, sizeof text, "%s", out);
        free(out);
        fail_msg("crmctl dealer add %s: exit %d: %s", id, rc, text);
    }
}

static void s_customer(fx_t *f, const char *cid, const char *city)
{
    redisReply *r = crm_store_cmd(
        f->s.store, "HSET crm:cust:{%s} name 测试 mobile 13812345678 city %s province 广东省", cid,
        city);
    assert_non_null(r);
    freeReplyObject(r);
}

/* Commits `m` as intake would and publishes it; returns its number. */
static uint64_t s_commit(fx_t *f, crm_msg_t *m)
{
    crm_tx_t *tx = crm_tx_new("intake", 100000);
    assert_int_equal(crm_tx_emit(tx, m), 0);
    crm_msg_clear(m);
    crm_h_sys_commit(&f->s, tx);
    uint64_t seq = crm_tx_emit_at(tx, 0)->seq;
    crm_tx_destroy(&tx);
    return seq;
}

static void s_requested(crm_msg_t *m, const char *tid, const char *lid, const char *cid,
                        const char *dealer, int64_t at)
{
    crm_msg_init(m, CRM_T_testdrive_requested);
    CRM_SET_STR(m, testdrive_requested, testdrive_id, tid);
    CRM_SET_STR(m, testdrive_requested, lead_id, lid);
    CRM_SET_STR(m, testdrive_requested, customer_id, cid);
    CRM_SET_STR(m, testdrive_requested, dealer_id, dealer);
    CRM_SET_STR(m, testdrive_requested, model, "408");
    CRM_SET_I64(m, testdrive_requested, at, at);
}

/* A test drive 30 h away: due at once (T-3 days 09:00 has passed). */
static uint64_t s_testdrive(fx_t *f, const char *tid, const char *cid, const char *dealer)
{
    crm_msg_t m;
    s_requested(&m, tid, "L1", cid, dealer, crm_now_ms() + 30 * HOUR);
    return s_commit(f, &m);
}

/* The crm:rejects entry of `origin`'s message number `seq`: its id into
   `id` and its reason (caller frees), or NULL. */
static char *s_reject(fx_t *f, const char *origin, uint64_t seq, char *id, size_t idsz, char *kind,
                      size_t ksz)
{
    redisReply *r = crm_store_cmd(f->s.store, "XRANGE " CRM_KEY_REJECTS " - +");
    assert_non_null(r);
    char seqs[24];
    snprintf(seqs, sizeof seqs, "%llu", (unsigned long long) seq);
    char *reason = NULL;
    for (size_t i = 0; !reason && i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        const char *o = crm_reply_field(kv, "origin"), *s = crm_reply_field(kv, "seq");
        if (o && s && !strcmp(o, origin) && !strcmp(s, seqs)) {
            snprintf(id, idsz, "%s", r->element[i]->element[0]->str);
            snprintf(kind, ksz, "%s", crm_reply_field_or(kv, "kind", "-"));
            reason = strdup(crm_reply_field_or(kv, "reason", ""));
        }
    }
    freeReplyObject(r);
    return reason;
}

static long long s_svc_count(fx_t *f, const char *field)
{
    return crm_h_int(f->s.store, "HGET crm:svc:dispatcher %s", field);
}

/* The last event of a stream, decoded. */
static void s_last_event(fx_t *f, const char *stream, crm_msg_t *m)
{
    redisReply *r = crm_store_cmd(f->s.store, "XREVRANGE crm:{%s}:events + - COUNT 1", stream);
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    const redisReply *frame = crm_reply_field_reply(r->element[0]->element[1], "m");
    assert_non_null(frame);
    crm_err_t err;
    assert_int_equal(crm_msg_decode(frame->str, frame->len, m, &err), 0);
    freeReplyObject(r);
}

/* ------------------------------------------------------------ leads */

static void s_lead(fx_t *f, crm_msg_t *m, const char *sid, const char *dealer)
{
    char mobile[24];
    snprintf(mobile, sizeof mobile, "1390000%04d", ++f->n % 10000);
    crm_msg_init(m, CRM_T_lead_submit);
    snprintf(m->id, sizeof m->id, "web-%d-%lld", f->n, (long long) crm_mono_us());
    snprintf(m->producer, sizeof m->producer, "website");
    m->ts = crm_now_ms();
    CRM_SET_STR(m, lead_submit, submission_id, sid);
    CRM_SET_STR(m, lead_submit, channel, "website");
    CRM_SET_STR(m, lead_submit, name, "王小明");
    CRM_SET_STR(m, lead_submit, mobile, mobile);
    CRM_SET_STR(m, lead_submit, city, "深圳");
    CRM_SET_STR(m, lead_submit, province, "广东");
    CRM_SET_STR(m, lead_submit, model, "408");
    CRM_SET_STR(m, lead_submit, dealer_id, dealer);
    CRM_SET_BOOL(m, lead_submit, testdrive, true);
    CRM_SET_I64(m, lead_submit, testdrive_at, crm_now_ms() + 30 * HOUR);
}

/* Submits `m` (cleared) and waits for the answer to it. */
static void s_submit(fx_t *f, crm_msg_t *m, crm_msg_t *ans)
{
    if (!f->leads) {
        f->leads = zsock_new(ZMQ_DEALER);
        zsock_set_rcvtimeo(f->leads, 8000);
        assert_true(zsock_connect(f->leads, "tcp://127.0.0.1:%d", f->s.intake) == 0);
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(m, &buf, NULL), 0);
    char id[CRM_ID_MAX];
    snprintf(id, sizeof id, "%s", m->id);
    crm_msg_clear(m);
    assert_int_equal(zsock_send(f->leads, "b", buf.data, buf.size), 0);
    msgpack_sbuffer_destroy(&buf);
    for (;;) {
        zframe_t *fr = zframe_recv(f->leads);
        if (!fr)
            fail_msg("crm-intake did not answer %s", id);
        crm_err_t err;
        assert_int_equal(crm_msg_decode(zframe_data(fr), zframe_size(fr), ans, &err), 0);
        zframe_destroy(&fr);
        if (!strcmp(ans->corr, id))
            return;
        crm_msg_clear(ans);
    }
}

static bool s_has_prefix(const crm_strs_t *list, const char *prefix)
{
    for (size_t i = 0; i < list->n; i++)
        if (!strncmp(list->v[i], prefix, strlen(prefix)))
            return true;
    return false;
}

/* An ordinary website lead with a test drive: accepted, and its test drive
   dispatched to `dealer` within a few seconds. */
static void s_lead_flows(fx_t *f, const char *dealer)
{
    crm_msg_t m, a;
    char sid[40];
    snprintf(sid, sizeof sid, "form-%d", f->n + 1);
    s_lead(f, &m, sid, NULL);
    s_submit(f, &m, &a);
    if (a.type != CRM_T_lead_accepted)
        fail_msg("an ordinary lead was answered %s (%s)", crm_type_name(a.type),
                 a.type == CRM_T_lead_rejected && a.body.lead_rejected.errors.n
                     ? a.body.lead_rejected.errors.v[0]
                     : "-");
    char tid[40];
    snprintf(tid, sizeof tid, "T%s", a.body.lead_accepted.lead_id + 1);
    crm_msg_clear(&a);
    crm_h_sys_wait_td(&f->s, tid, "dispatched", 5000);
    char *d = crm_h_sys_td(&f->s, tid, "dealer_id");
    assert_string_equal(d, dealer);
    free(d);
}

/* ------------------------------------------------------------ the tests */

/* The issue as reported: one public lead naming dealer "SZ1:open" made
   crm-dispatcher read the key crm:dealer:SZ1:open (SZ1's set of open test
   drives) as a dealer, get WRONGTYPE and retry it forever. */
static void
test_a_public_lead_for_dealer_SZ1_open_is_refused_and_later_test_drives_are_dispatched(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    crm_h_sys_spawn(&f->s, "intake", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_lead_flows(f, "SZ1"); /* SZ1 has an open test drive: crm:dealer:SZ1:open is a set */
    redisReply *t = crm_store_cmd(f->s.store, "TYPE crm:dealer:SZ1:open");
    assert_string_equal(t->str, "set");
    freeReplyObject(t);

    crm_msg_t m, a;
    s_lead(f, &m, "form-SZ1-open", "SZ1:open");
    s_submit(f, &m, &a);
    assert_int_equal(a.type, CRM_T_lead_rejected);
    if (!s_has_prefix(&a.body.lead_rejected.errors, "dealer_id|"))
        fail_msg("the lead was refused, but no error names dealer_id (first: %s)",
                 a.body.lead_rejected.errors.n ? a.body.lead_rejected.errors.v[0] : "-");
    assert_non_null(a.body.lead_rejected.quarantine_id);
    /* kept in quarantine for review, under its own submission id */
    redisReply *x = crm_store_cmd(f->s.store, "HGETALL " CRM_KEY_QUARANTINE_FMT, a.body.lead_rejected.quarantine_id);
    assert_true(x->elements > 0);
    assert_string_equal(crm_reply_field(x, "submission_id"), "form-SZ1-open");
    freeReplyObject(x);
    crm_msg_clear(&a);

    /* the stream flows: the next ordinary test drive goes out */
    s_lead_flows(f, "SZ1");
    t = crm_store_cmd(f->s.store, "TYPE crm:dealer:SZ1:open");
    assert_string_equal(t->str, "set");
    freeReplyObject(t);
    assert_int_equal(s_log_lines(f, "dispatcher", "handler.retry", NULL), 0);
    assert_int_equal(crm_h_int(f->s.store, "XLEN " CRM_KEY_REJECTS), 0);
}

/* A lead whose customer record Redis refuses to read (the key holds a
   string): it alone fails, named and kept for review; the leads that came
   in with it are accepted, and the next lead goes through. */
static void test_a_lead_whose_record_redis_refuses_fails_alone_and_the_rest_of_its_batch_is_accepted(
    void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "intake", NULL);
    redisReply *r = crm_store_cmd(f->s.store, "SET " CRM_KEY_IDX_MOBILE_FMT " C77", "13988887777");
    freeReplyObject(r);
    r = crm_store_cmd(f->s.store, "SET " CRM_KEY_CUST_FMT " not-a-hash", "C77");
    freeReplyObject(r);
    f->leads = zsock_new(ZMQ_DEALER);
    zsock_set_rcvtimeo(f->leads, 8000);
    assert_true(zsock_connect(f->leads, "tcp://127.0.0.1:%d", f->s.intake) == 0);
    enum { N = 8 };
    char ids[N][CRM_ID_MAX];
    for (int i = 0; i < N; i++) { /* sent together: they meet in one batch */
        crm_msg_t m;
        char sid[32];
        snprintf(sid, sizeof sid, "batch-%d", i);
        s_lead(f, &m, sid, NULL);
        if (i == 0)
            CRM_SET_STR(&m, lead_submit, mobile, "13988887777");
        snprintf(ids[i], sizeof ids[i], "%s", m.id);
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        assert_int_equal(crm_msg_encode(&m, &buf, NULL), 0);
        assert_int_equal(zsock_send(f->leads, "b", buf.data, buf.size), 0);
        msgpack_sbuffer_destroy(&buf);
        crm_msg_clear(&m);
    }
    int accepted = 0, failed = 0;
    for (int got = 0; got < N; got++) {
        zframe_t *fr = zframe_recv(f->leads);
        if (!fr)
            fail_msg("crm-intake answered %d of %d leads", got, N);
        crm_msg_t a;
        crm_err_t err;
        assert_int_equal(crm_msg_decode(zframe_data(fr), zframe_size(fr), &a, &err), 0);
        zframe_destroy(&fr);
        if (!strcmp(a.corr, ids[0])) {
            assert_int_equal(a.type, CRM_T_lead_rejected);
            if (!s_has_prefix(&a.body.lead_rejected.errors, "service|failed|"))
                fail_msg("the lead meeting the bad record was answered %s",
                         a.body.lead_rejected.errors.n ? a.body.lead_rejected.errors.v[0] : "-");
            failed++;
        } else if (a.type == CRM_T_lead_accepted) {
            accepted++;
        } else {
            fail_msg("a lead of the batch was answered %s (%s)", crm_type_name(a.type),
                     a.type == CRM_T_lead_rejected && a.body.lead_rejected.errors.n
                         ? a.body.lead_rejected.errors.v[0]
                         : "-");
        }
        crm_msg_clear(&a);
    }
    assert_int_equal(failed, 1);
    assert_int_equal(accepted, N - 1);
    /* kept for review, with what Redis said */
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", NULL), 0);
    assert_true(s_out_has(f, "origin=\"leads\""));
    assert_true(s_out_has(f, "WRONGTYPE"));
    crm_msg_t m, a;
    s_lead(f, &m, "after-batch", NULL);
    s_submit(f, &m, &a);
    assert_int_equal(a.type, CRM_T_lead_accepted);
    crm_msg_clear(&a);
}

/* A heartbeat from a bus peer that names a number the stream never
   allocated: nothing is skipped, and the test drives that follow are
   routed. */
static void test_a_heartbeat_naming_a_number_beyond_the_stream_skips_nothing(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_customer(f, "CS", "深圳");
    s_testdrive(f, "T1", "CS", NULL);
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 5000);
    crm_msg_t hb;
    crm_msg_init(&hb, CRM_T_heartbeat);
    crm_new_id(hb.id, sizeof hb.id);
    hb.ts = crm_now_ms();
    snprintf(hb.producer, sizeof hb.producer, "intake");
    crm_strs_push(&hb.body.heartbeat.streams, "testdrive=1000000000");
    hb.body.heartbeat.has.streams = true;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(&hb, &buf, NULL), 0);
    crm_msg_clear(&hb);
    assert_int_equal(zsock_send(f->s.pub_sock, "sb", "heartbeat:", buf.data, buf.size), 0);
    msgpack_sbuffer_destroy(&buf);
    char path[400];
    int64_t end = crm_mono_ms() + 5000;
    while (!crm_h_file_contains(crm_h_sys_log(&f->s, "dispatcher", path, sizeof path), "bus.beyond_stream") &&
           crm_mono_ms() < end)
        usleep(50 * 1000);
    assert_true(crm_h_file_contains(path, "told=1000000000"));
    s_testdrive(f, "T2", "CS", NULL);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 5000);
    assert_int_equal(s_log_lines(f, "dispatcher", "bus.events_lost", NULL), 0);
}

/* The same id bypassing intake, straight onto the testdrive stream: the
   choice is not a dealer, so the test drive is routed by its city, and the
   next one goes out within seconds. */
static void test_a_test_drive_for_dealer_SZ1_open_on_the_stream_does_not_stall_it(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_customer(f, "C1", "深圳");
    s_testdrive(f, "T1", "C1", "SZ1");
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 5000); /* crm:dealer:SZ1:open is a set now */
    s_testdrive(f, "T2", "C1", "SZ1:open");
    s_testdrive(f, "T3", "C1", NULL);
    crm_h_sys_wait_td(&f->s, "T3", "dispatched", 5000);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 100);
    char *chosen = crm_h_sys_td(&f->s, "T2", "chosen"), *why = crm_h_sys_td(&f->s, "T2", "reason_text"),
         *code = crm_h_sys_td(&f->s, "T2", "reason");
    char text[400];
    snprintf(text, sizeof text, "chosen '%s', reason %s: %s", chosen, code, why);
    bool ok = !*chosen && !strcmp(code, "city") &&
              strstr(why, "not a valid id"); /* never kept as a dealer id */
    free(chosen), free(why), free(code);
    if (!ok)
        fail_msg("T2 should be routed by its city, saying the chosen dealer id is not valid: %s",
                 text);
    assert_int_equal(s_log_lines(f, "dispatcher", "handler.retry", NULL), 0);
}

/* Every id field of the events the dispatcher takes, with every hostile
   value: a dealer choice that is no id is ignored (routed by place), any
   other bad id is refused and kept in crm:rejects naming the field, no key
   is made of it, and the next ordinary test drive goes out. */
static void
test_hostile_ids_in_every_field_of_bus_events_are_set_aside_and_the_stream_flows(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_customer(f, "C1", "深圳");
    static const struct {
        crm_type_t type;
        const char *field;
    } fields[] = {
        {CRM_T_testdrive_requested, "testdrive_id"}, {CRM_T_testdrive_requested, "lead_id"},
        {CRM_T_testdrive_requested, "customer_id"},  {CRM_T_testdrive_requested, "dealer_id"},
        {CRM_T_testdrive_due, "testdrive_id"},       {CRM_T_testdrive_due, "dealer_id"},
    };
    int k = 0;
    for (size_t fi = 0; fi < sizeof fields / sizeof fields[0]; fi++) {
        for (int h = 0; h < CRM_H_NHOSTILE; h++) {
            const char *v = crm_h_hostile_id(h), *field = fields[fi].field;
            char tid[32], label[80];
            snprintf(tid, sizeof tid, "B%d", ++k);
            snprintf(label, sizeof label, "%s %s, hostile value %d", crm_type_name(fields[fi].type),
                     field, h);
            crm_msg_t m;
            if (fields[fi].type == CRM_T_testdrive_requested) {
                s_requested(&m, !strcmp(field, "testdrive_id") ? v : tid,
                            !strcmp(field, "lead_id") ? v : "L1",
                            !strcmp(field, "customer_id") ? v : "C1",
                            !strcmp(field, "dealer_id") ? v : NULL, crm_now_ms() + 30 * HOUR);
            } else {
                crm_msg_init(&m, CRM_T_testdrive_due);
                CRM_SET_STR(&m, testdrive_due, testdrive_id,
                            !strcmp(field, "testdrive_id") ? v : "B1ok");
                CRM_SET_STR(&m, testdrive_due, dealer_id, !strcmp(field, "dealer_id") ? v : "SZ1");
            }
            uint64_t seq = s_commit(f, &m);
            char ok[40];
            snprintf(ok, sizeof ok, "%sok", tid);
            s_testdrive(f, ok, "C1", NULL);
            crm_h_sys_wait_td(&f->s, ok, "dispatched", 5000);
            char id[64], kind[32];
            char *reason = s_reject(f, "testdrive", seq, id, sizeof id, kind, sizeof kind);
            if (fields[fi].type == CRM_T_testdrive_requested && !strcmp(field, "dealer_id")) {
                if (reason)
                    fail_msg("%s: refused (%s); a bad choice should be routed by place", label,
                             reason);
                crm_h_sys_wait_td(&f->s, tid, "dispatched", 100);
            } else {
                if (!reason)
                    fail_msg("%s: not kept in crm:rejects", label);
                assert_string_equal(kind, "event");
                if (!strstr(reason, field))
                    fail_msg("%s: the reason does not name the field: %s", label, reason);
            }
            free(reason);
            s_no_key_holds(f, v, label);
        }
    }
    assert_int_equal(s_log_lines(f, "dispatcher", "handler.retry", NULL), 0);
}

/* The scheduler's task events, every id field with every hostile value:
   refused and kept in crm:rejects naming the field, no key made of it,
   and the next ordinary task reaches its dealer's stream. */
static void test_hostile_ids_in_task_events_are_set_aside_and_the_tasks_flow(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    static const struct {
        crm_type_t type;
        const char *field;
    } fields[] = {
        {CRM_T_task_opened, "task_id"},   {CRM_T_task_opened, "customer_id"},
        {CRM_T_task_opened, "dealer_id"}, {CRM_T_task_opened, "consultant_id"},
        {CRM_T_task_closed, "task_id"},   {CRM_T_task_closed, "customer_id"},
        {CRM_T_task_closed, "dealer_id"},
    };
    long long forwarded = 0;
    for (size_t fi = 0; fi < sizeof fields / sizeof fields[0]; fi++) {
        for (int h = 0; h < CRM_H_NHOSTILE; h++) {
            const char *v = crm_h_hostile_id(h), *field = fields[fi].field;
            char label[80];
            snprintf(label, sizeof label, "%s %s, hostile value %d", crm_type_name(fields[fi].type), field, h);
            crm_msg_t m;
            if (fields[fi].type == CRM_T_task_opened) {
                crm_msg_init(&m, CRM_T_task_opened);
                CRM_SET_STR(&m, task_opened, task_id, !strcmp(field, "task_id") ? v : "K1");
                CRM_SET_STR(&m, task_opened, customer_id, !strcmp(field, "customer_id") ? v : "C1");
                CRM_SET_STR(&m, task_opened, dealer_id, !strcmp(field, "dealer_id") ? v : "SZ1");
                CRM_SET_STR(&m, task_opened, consultant_id, !strcmp(field, "consultant_id") ? v : "S1");
                CRM_SET_STR(&m, task_opened, kind, "followup");
                CRM_SET_I64(&m, task_opened, due_at, crm_now_ms() + HOUR);
            } else {
                crm_msg_init(&m, CRM_T_task_closed);
                CRM_SET_STR(&m, task_closed, task_id, !strcmp(field, "task_id") ? v : "K1");
                CRM_SET_STR(&m, task_closed, customer_id, !strcmp(field, "customer_id") ? v : "C1");
                CRM_SET_STR(&m, task_closed, dealer_id, !strcmp(field, "dealer_id") ? v : "SZ1");
                CRM_SET_STR(&m, task_closed, state, "done");
            }
            uint64_t seq = s_commit(f, &m);
            /* an ordinary one behind it */
            crm_msg_init(&m, CRM_T_task_closed);
            CRM_SET_STR(&m, task_closed, task_id, "K2");
            CRM_SET_STR(&m, task_closed, customer_id, "C1");
            CRM_SET_STR(&m, task_closed, dealer_id, "SZ1");
            CRM_SET_STR(&m, task_closed, state, "cancelled");
            s_commit(f, &m);
            forwarded++;
            if (crm_h_wait_int(f->s.store, forwarded, 5000, "GET crm:{dealer.SZ1}:seq") != forwarded)
                fail_msg("%s: the next task did not reach SZ1", label);
            char id[64], kind[32];
            char *reason = s_reject(f, "task", seq, id, sizeof id, kind, sizeof kind);
            if (!reason)
                fail_msg("%s: not kept in crm:rejects", label);
            if (!strstr(reason, field))
                fail_msg("%s: the reason does not name the field: %s", label, reason);
            free(reason);
            s_no_key_holds(f, v, label);
        }
    }
    assert_int_equal(crm_h_int(f->s.store, "XLEN crm:{dealer.SZ1}:events"), forwarded);
    assert_int_equal(s_log_lines(f, "dispatcher", "handler.retry", NULL), 0);
}

/* A message whose handler fails for good (Redis answers WRONGTYPE: a
   string where SZ1's set of open test drives belongs) is set aside with its
   reason, listed, counted and logged once; the stream moves on; once the
   cause is fixed `crmctl rejects retry` applies it, once. */
static void
test_a_message_failing_with_wrongtype_is_set_aside_listed_and_applied_again_after_the_fix(
    void **state)
{
    fx_t *f = *state;
    const char *env[] = {"CRM_RETRY_MAX=3", "CRM_RETRY_MAX_MS=1000", NULL};
    crm_h_sys_spawn(&f->s, "dispatcher", env);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_dealer_add(f, "GZ1", "广州", "0");
    s_customer(f, "CS", "深圳");
    s_customer(f, "CG", "广州");
    redisReply *r = crm_store_cmd(f->s.store, "SET crm:dealer:SZ1:open x");
    freeReplyObject(r);
    uint64_t seq = s_testdrive(f, "T1", "CS", NULL);
    s_testdrive(f, "T2", "CG", NULL);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 5000); /* the stream flows */
    assert_int_equal(crm_h_int(f->s.store, "EXISTS crm:td:T1"), 0);

    char id[64], kind[32];
    char *reason = s_reject(f, "testdrive", seq, id, sizeof id, kind, sizeof kind);
    if (!reason)
        fail_msg("T1's testdrive.requested (seq %llu) is not in crm:rejects",
                 (unsigned long long) seq);
    assert_string_equal(kind, "event");
    if (!strstr(reason, "WRONGTYPE"))
        fail_msg("the reason kept does not say what Redis answered: %s", reason);
    free(reason);
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", NULL), 0);
    char seqs[40];
    snprintf(seqs, sizeof seqs, "seq=\"%llu\"", (unsigned long long) seq);
    assert_true(s_out_has(f, id));
    assert_true(s_out_has(f, "origin=\"testdrive\""));
    assert_true(s_out_has(f, "kind=\"event\""));
    assert_true(s_out_has(f, seqs));
    assert_true(s_out_has(f, "WRONGTYPE"));
    assert_true(s_out_has(f, "state=kept"));
    /* counted in the service's status, logged once */
    int64_t end = crm_mono_ms() + 3000;
    while (s_svc_count(f, "refused") + s_svc_count(f, "poisoned") < 1 && crm_mono_ms() < end)
        usleep(50 * 1000);
    assert_true(s_svc_count(f, "refused") + s_svc_count(f, "poisoned") >= 1);
    snprintf(seqs, sizeof seqs, "seq=%llu ", (unsigned long long) seq);
    assert_int_equal(s_log_lines(f, "dispatcher", "handler.refused", "stream=testdrive", seqs,
                                 NULL) +
                         s_log_lines(f, "dispatcher", "handler.poisoned", "stream=testdrive", seqs,
                                     NULL),
                     1);

    /* fixed: applied again on request */
    r = crm_store_cmd(f->s.store, "DEL crm:dealer:SZ1:open");
    freeReplyObject(r);
    if (crm_h_sys_crmctl(&f->s, "rejects", "retry", id, NULL) != 0) {
        char *out = crm_h_slurp(f->s.out), text[600];
        snprintf(text, sizeof text, "%s", out);
        free(out);
        fail_msg("crmctl rejects retry %s: %s", id, text);
    }
    assert_true(s_out_has(f, "applied again by crm-dispatcher"));
    crm_h_sys_wait_td(&f->s, "T1", "dispatched", 100);
    char *d = crm_h_sys_td(&f->s, "T1", "dealer_id");
    assert_string_equal(d, "SZ1");
    free(d);
    crm_msg_t ev;
    s_last_event(f, "ops", &ev);
    assert_int_equal(ev.type, CRM_T_reject_retried);
    assert_string_equal(ev.body.reject_retried.reject_id, id);
    assert_string_equal(ev.body.reject_retried.outcome, "applied");
    assert_string_equal(ev.body.reject_retried.service, "dispatcher");
    crm_msg_clear(&ev);
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", NULL), 0);
    assert_true(s_out_has(f, "state=applied:"));
    /* and only once */
    assert_int_equal(crm_h_sys_crmctl(&f->s, "rejects", "retry", id, NULL), 1);
    assert_true(s_out_has(f, "done"));
    assert_int_equal(crm_h_int(f->s.store, "XLEN crm:{dealer.SZ1}:events"), 1);
}

/* A string at crm:td:T9 before T9's testdrive.requested arrives: no test
   drive record of ours, so not "taken already (a replay)": refused for good
   (WRONGTYPE), kept in crm:rejects, and the stream flows on. */
static void
test_a_test_drive_whose_record_key_holds_a_string_is_kept_in_rejects_not_dropped(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_customer(f, "C1", "深圳");
    redisReply *r = crm_store_cmd(f->s.store, "SET crm:td:T9 x");
    freeReplyObject(r);
    uint64_t seq = s_testdrive(f, "T9", "C1", NULL);
    s_testdrive(f, "T10", "C1", NULL);
    crm_h_sys_wait_td(&f->s, "T10", "dispatched", 5000);
    char id[64], kind[32];
    char *reason = s_reject(f, "testdrive", seq, id, sizeof id, kind, sizeof kind);
    if (!reason) {
        redisReply *t = crm_store_cmd(f->s.store, "TYPE crm:td:T9");
        char type[32];
        snprintf(type, sizeof type, "%s", t ? t->str : "?");
        freeReplyObject(t);
        fail_msg("DEFECT: T9's testdrive.requested (seq %llu) was neither applied (crm:td:T9 is a "
                 "%s) nor kept in "
                 "crm:rejects; handler.refused/poisoned lines: %d",
                 (unsigned long long) seq, type,
                 s_log_lines(f, "dispatcher", "handler.refused", NULL) +
                     s_log_lines(f, "dispatcher", "handler.poisoned", NULL));
    }
    assert_string_equal(kind, "event");
    free(reason);
}

/* A transaction Redis refuses in part (WRONGTYPE on one command of the
   EXEC: a string at crm:dealer:SZ1:seq2td): the rest of it stands (the test
   drive dispatched, the dispatch on the dealer's stream, the cursor moved)
   and what was left out is kept with it. Once the cause is fixed, the retry
   leaves the test drive whole: dispatched once, and its dealer number
   mapped to it so that the dealer's acknowledgement cancels its
   escalation. */
static void test_a_test_drive_whose_transaction_redis_refuses_is_whole_after_the_retry(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_dealer_add(f, "GZ1", "广州", "0");
    s_customer(f, "CS", "深圳");
    s_customer(f, "CG", "广州");
    redisReply *r = crm_store_cmd(f->s.store, "SET crm:dealer:SZ1:seq2td x");
    freeReplyObject(r);
    uint64_t seq = s_testdrive(f, "T1", "CS", NULL);
    s_testdrive(f, "T2", "CG", NULL);
    crm_h_sys_wait_td(&f->s, "T2", "dispatched", 5000);
    char id[64], kind[32];
    char *reason = s_reject(f, "testdrive", seq, id, sizeof id, kind, sizeof kind);
    if (!reason)
        fail_msg("T1 (seq %llu), whose commit Redis refused, is not in crm:rejects",
                 (unsigned long long) seq);
    free(reason);
    r = crm_store_cmd(f->s.store, "DEL crm:dealer:SZ1:seq2td");
    freeReplyObject(r);
    int rc = crm_h_sys_crmctl(&f->s, "rejects", "retry", id, NULL);
    char *out = crm_h_slurp(f->s.out);
    long long dispatches = crm_h_int(f->s.store, "XLEN crm:{dealer.SZ1}:events");
    redisReply *m = crm_store_cmd(f->s.store, "HGET crm:dealer:SZ1:seq2td 1");
    bool mapped = m && m->type == REDIS_REPLY_STRING && !strcmp(m->str, "T1");
    freeReplyObject(m);
    char *status = crm_h_sys_td(&f->s, "T1", "status"), text[400];
    snprintf(text, sizeof text, "exit %d (%.200s); T1 is '%s'", rc, out, status);
    free(out);
    free(status);
    if (rc != 0 || dispatches != 1 || !mapped)
        fail_msg("DEFECT: after the fix, rejects retry %s, dispatched %lld times to SZ1, dealer "
                 "number 1 %s mapped to "
                 "T1 (an ack cannot cancel its escalation)",
                 text, dispatches, mapped ? "is" : "is NOT");
}

/* ------------------------------------------------------------ Redis away */

static void s_redis_start_again(fx_t *f)
{
    crm_h_redis_t *r = &f->s.redis;
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", r->port);
    crm_h_path(r, "redis-again.log", log, sizeof log);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crm_h_die_with_parent(parent);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir",
               r->dir, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
               "--logfile", log, "--daemonize", "no", (char *) NULL);
        _exit(127);
    }
    r->pid = pid;
    crm_store_t *s = NULL;
    for (int i = 0; i < 500 && !s; i++) {
        usleep(20 * 1000);
        s = crm_store_new(r->url, 500);
        redisReply *p = s ? crm_store_cmd(s, "GET crm:{testdrive}:seq") : NULL;
        if (!p)
            crm_store_destroy(&s); /* still loading */
        freeReplyObject(p);
    }
    assert_non_null(s);
    crm_store_destroy(&f->s.store);
    f->s.store = s;
}

/* An outage is nobody's message's fault: while Redis is down the handler
   fails again and again (a publisher resending, more than CRM_RETRY_MAX
   times and for longer than CRM_RETRY_MAX_MS), yet nothing is set aside;
   once Redis is back every message is applied and crm:rejects has nothing
   new. */
static void
test_while_redis_is_down_nothing_is_set_aside_and_everything_is_applied_after(void **state)
{
    fx_t *f = *state;
    const char *env[] = {"CRM_RETRY_MAX=2", "CRM_RETRY_MAX_MS=1000", NULL};
    pid_t disp = crm_h_sys_spawn(&f->s, "dispatcher", env);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_customer(f, "C1", "深圳");
    s_testdrive(f, "T0", "C1", NULL);
    crm_h_sys_wait_td(&f->s, "T0", "dispatched", 5000);

    /* Five test drives committed while the dispatcher cannot take them. */
    assert_int_equal(kill(disp, SIGSTOP), 0);
    enum { K = 5 };
    char *frames[K];
    size_t lens[K];
    for (int i = 0; i < K; i++) {
        char tid[16];
        snprintf(tid, sizeof tid, "T%d", i + 1);
        crm_msg_t m;
        s_requested(&m, tid, "L1", "C1", NULL, crm_now_ms() + 30 * HOUR);
        crm_tx_t *tx = crm_tx_new("intake", 100000);
        crm_tx_emit(tx, &m);
        crm_msg_clear(&m);
        assert_int_equal(crm_store_commit(f->s.store, tx), 0);
        const crm_emit_t *e = crm_tx_emit_at(tx, 0);
        frames[i] = malloc(e->len);
        memcpy(frames[i], e->frame, e->len);
        lens[i] = e->len;
        crm_tx_destroy(&tx);
    }
    /* Redis goes away (SIGTERM: the AOF is written out), then the
       dispatcher hears of them, again and again. */
    assert_true(crm_h_stop(f->s.redis.pid, SIGTERM, 5000) >= 0);
    f->s.redis.pid = 0;
    assert_int_equal(kill(disp, SIGCONT), 0);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < K; i++)
            zsock_send(f->s.pub_sock, "sb", "testdrive:", frames[i], lens[i]);
        usleep(250 * 1000);
    }
    for (int i = 0; i < K; i++)
        free(frames[i]);
    int retries = s_log_lines(f, "dispatcher", "handler.retry", NULL);
    s_redis_start_again(f);
    for (int i = 0; i < K; i++) {
        char tid[16];
        snprintf(tid, sizeof tid, "T%d", i + 1);
        crm_h_sys_wait_td(&f->s, tid, "dispatched", 15000);
    }
    /* the handler did fail while Redis was away (a batch handler's retry
       drops its batch and the cursor is read again once Redis is back, so
       it fails once per outage rather than once per delivery) */
    assert_true(retries >= 1);
    assert_int_equal(crm_h_int(f->s.store, "XLEN " CRM_KEY_REJECTS), 0);
    assert_int_equal(s_log_lines(f, "dispatcher", "handler.poisoned", NULL), 0);
    assert_int_equal(crm_h_int(f->s.store, "XLEN crm:{dealer.SZ1}:events"), K + 1);
    int64_t end = crm_mono_ms() + 3000;
    while (s_svc_count(f, "applied") < K + 1 && crm_mono_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(s_svc_count(f, "poisoned"), 0);
    assert_int_equal(s_svc_count(f, "refused"), 0);
}

/* FUNCTION FLUSH behind the services' back (or a restore without the
   library): a transaction never depends on it (its appends run as EVAL),
   so a lead submitted then is stored whole at once, and its test drive
   goes out. */
static void
test_a_function_flush_behind_the_services_back_loses_no_lead_and_no_test_drive(void **state)
{
    fx_t *f = *state;
    crm_h_sys_spawn(&f->s, "dispatcher", NULL);
    crm_h_sys_spawn(&f->s, "intake", NULL);
    s_dealer_add(f, "SZ1", "深圳", "0");
    s_lead_flows(f, "SZ1");
    redisReply *r = crm_store_cmd(f->s.store, "FUNCTION FLUSH");
    assert_non_null(r);
    freeReplyObject(r);

    crm_msg_t m, a;
    char answers[600] = "", lead[32] = "";
    for (int attempt = 0; attempt < 10 && !lead[0]; attempt++) {
        s_lead(f, &m, "form-after-flush", NULL);
        snprintf(m.id, sizeof m.id, "post-after-flush-%d", attempt);
        s_submit(f, &m, &a);
        char one[120];
        snprintf(one, sizeof one, "%s%s%.60s", attempt ? "; " : "", crm_type_name(a.type),
                 a.type == CRM_T_lead_rejected && a.body.lead_rejected.errors.n
                     ? a.body.lead_rejected.errors.v[0]
                     : "");
        strncat(answers, one, sizeof answers - strlen(answers) - 1);
        if (a.type == CRM_T_lead_accepted)
            snprintf(lead, sizeof lead, "%s", a.body.lead_accepted.lead_id);
        crm_msg_clear(&a);
        if (!lead[0])
            usleep(200 * 1000);
    }
    if (!lead[0])
        fail_msg("the lead was never accepted: %s", answers);
    char tid[40];
    snprintf(tid, sizeof tid, "T%s", lead + 1);
    int64_t end = crm_mono_ms() + 5000;
    while (!crm_h_sys_td_is(&f->s, tid, "dispatched") && crm_mono_ms() < end)
        usleep(20 * 1000);
    if (!crm_h_sys_td_is(&f->s, tid, "dispatched"))
        fail_msg("DEFECT: after FUNCTION FLUSH the lead was answered: %s; lead %s is stored, but "
                 "its test drive %s "
                 "never reached the dispatcher (%d tx.command_failed lines in intake's log)",
                 answers, lead, tid, s_log_lines(f, "intake", "tx.command_failed", NULL));
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_public_lead_for_dealer_SZ1_open_is_refused_and_later_test_drives_are_dispatched,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_test_drive_for_dealer_SZ1_open_on_the_stream_does_not_stall_it, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_lead_whose_record_redis_refuses_fails_alone_and_the_rest_of_its_batch_is_accepted,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_heartbeat_naming_a_number_beyond_the_stream_skips_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_hostile_ids_in_every_field_of_bus_events_are_set_aside_and_the_stream_flows, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_hostile_ids_in_task_events_are_set_aside_and_the_tasks_flow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_message_failing_with_wrongtype_is_set_aside_listed_and_applied_again_after_the_fix,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_while_redis_is_down_nothing_is_set_aside_and_everything_is_applied_after, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_test_drive_whose_record_key_holds_a_string_is_kept_in_rejects_not_dropped, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_test_drive_whose_transaction_redis_refuses_is_whole_after_the_retry, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_function_flush_behind_the_services_back_loses_no_lead_and_no_test_drive, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
