/*  Dealers that export rather than integrate, end to end: crmctl customer|
 *  service import FILE.csv --dealer D against a real crm-dispatcher (its
 *  control endpoint) and crm-intake, crm-dealer import KIND FILE.csv over
 *  the gateway's CURVE ROUTER with the dealer's certificate. Real
 *  redis-server. The files are tests/data/records/ (the seed-003 customer
 *  file in GBK, as a dealer system in China exports it), copied into the
 *  test's directory, where the rejects files are written. The clock is
 *  2026-11-20 00:00 China time.
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

#define RECORDS CRM_SOURCE_DIR "/tests/data/records/"
#define NOW 1795104000000LL

typedef struct {
    crm_h_sys_t sys;
    crm_store_t *store;
    char out[300], secret1[300], secret2[300];
    char ep_router[64];
} fx_t;

static int run(fx_t *f, const char *bin, ...)
{
    const char *args[32];
    int n = 0;
    va_list ap;
    va_start(ap, bin);
    for (const char *a; n < 28 && (a = va_arg(ap, const char *));)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return crm_h_run(bin, args, f->sys.envp, f->out);
}

#define CRMCTL(f, ...) run(f, "crmctl", __VA_ARGS__, "--timeout-ms", "3000", NULL)
#define DEALER(f, secret, dealer, ...)                                                            \
    run(f, "crm-dealer", "--dealer", dealer, "--cert", secret, "--server-cert", (f)->sys.server_cert, \
        "--endpoint", (f)->ep_router, "--timeout-ms", "3000", __VA_ARGS__, NULL)

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || crm_h_sys_start(&f->sys, false, true) != 0)
        return -1;
    f->store = f->sys.store;
    crm_h_sys_set_clock(&f->sys, NOW);
    crm_h_path(&f->sys.redis, "out.txt", f->out, sizeof f->out);
    crm_h_path(&f->sys.redis, "D1.secret", f->secret1, sizeof f->secret1);
    crm_h_path(&f->sys.redis, "D2.secret", f->secret2, sizeof f->secret2);
    snprintf(f->ep_router, sizeof f->ep_router, "tcp://127.0.0.1:%d", f->sys.gw_router);
    crm_h_sys_spawn(&f->sys, "intake", NULL);
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    static const char *const aud[] = {"CRM_AUDIT_SCHEDULE=none", NULL};
    crm_h_sys_spawn(&f->sys, "auditor", aud);
    if (CRMCTL(f, "dealer", "add", "D1", "--name", "北京一店", "--province", "北京", "--city", "北京") != 0 ||
        CRMCTL(f, "dealer", "add", "D2", "--name", "上海一店", "--province", "上海", "--city", "上海") != 0 ||
        CRMCTL(f, "dealer", "cert", "D1", "--out", f->secret1) != 0 ||
        CRMCTL(f, "dealer", "cert", "D2", "--out", f->secret2) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    crm_h_sys_stop(&f->sys);
    free(f);
    return 0;
}

/* Copies a sample into the test's directory (the rejects file is written
   beside the file imported); `path` gets the copy's path. */
static void copy_sample(fx_t *f, const char *sample, char *path, size_t size)
{
    crm_h_path(&f->sys.redis, sample, path, size);
    char from[512];
    snprintf(from, sizeof from, RECORDS "%s", sample);
    FILE *in = fopen(from, "rb"), *out = fopen(path, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

typedef struct {
    long rows, stored, findings, created, refused, unreadable, duplicates, unconfirmed;
} summary_t;

/* The summary line of the last import, as a user reads it. */
static summary_t summary(fx_t *f)
{
    char *text = crm_h_slurp(f->out);
    if (getenv("CRM_TEST_VERBOSE"))
        fprintf(stderr, "%s", text);
    summary_t s = {-1, -1, -1, -1, -1, -1, -1, -1};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        double secs;
        if (sscanf(line, "%ld rows in %lf s: %ld stored (%ld with findings, %ld new customers), %ld refused, "
                         "%ld unreadable, %ld duplicate rows, %ld not confirmed",
                   &s.rows, &secs, &s.stored, &s.findings, &s.created, &s.refused, &s.unreadable,
                   &s.duplicates, &s.unconfirmed) == 9)
            break;
        if (sscanf(line, "%ld rows in %lf s: %ld stored (%ld with findings), %ld refused, "
                         "%ld unreadable, %ld duplicate rows, %ld not confirmed",
                   &s.rows, &secs, &s.stored, &s.findings, &s.refused, &s.unreadable, &s.duplicates,
                   &s.unconfirmed) == 8)
            break;
    }
    free(text);
    if (s.rows < 0)
        fail_msg("no summary in the output:\n%s", crm_h_slurp(f->out));
    return s;
}

/* Everything an import can change: customers, their history entries, the
   customer stream's events, and the service visits of C1. */
typedef struct {
    long long customers, history, events, services, vehicles;
} world_t;

static world_t world(fx_t *f)
{
    world_t w = {0};
    w.customers = crm_h_int(f->store, "GET crm:ids:customer");
    for (long long c = 1; c <= w.customers; c++) {
        w.history += crm_h_int(f->store, "XLEN crm:cust:{C%lld}:history", c);
        w.vehicles += crm_h_int(f->store, "SCARD crm:cust:{C%lld}:vehicles", c);
    }
    w.events = crm_h_int(f->store, "XLEN " CRM_KEY_EVENTS_FMT, "customer");
    w.services = crm_h_int(f->store, "XLEN " CRM_KEY_EVENTS_FMT, "service");
    return w;
}

static void assert_same_world(world_t a, world_t b)
{
    assert_int_equal(a.customers, b.customers);
    assert_int_equal(a.history, b.history);
    assert_int_equal(a.events, b.events);
    assert_int_equal(a.services, b.services);
    assert_int_equal(a.vehicles, b.vehicles);
}

/* The customer the store matched an ID number to ("" when none). */
static void customer_of_id(fx_t *f, const char *id_number, char *out, size_t size)
{
    redisReply *r = crm_store_cmd(f->store, "GET " CRM_KEY_IDX_ID_FMT, id_number);
    snprintf(out, size, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

static char *hget(fx_t *f, const char *key, const char *field)
{
    redisReply *r = crm_store_cmd(f->store, "HGET %s %s", key, field);
    char *v = strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

static void assert_hash(fx_t *f, const char *key, const char *field, const char *want)
{
    char *v = hget(f, key, field);
    if (strcmp(v, want))
        fail_msg("%s %s: \"%s\", want \"%s\"", key, field, v, want);
    free(v);
}

/* How many entries of the customer's history have field `name` = `value`. */
static int history_with(fx_t *f, const char *cid, const char *name, const char *value)
{
    redisReply *r = crm_store_cmd(f->store, "XRANGE crm:cust:{%s}:history - +", cid);
    int n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < kv->elements; k += 2)
            n += !strcmp(kv->element[k]->str, name) && !strcmp(kv->element[k + 1]->str, value);
    }
    freeReplyObject(r);
    return n;
}

/* How many of the name/value `pairs` (NULL-terminated) the first entry of
   the stream `key` holds. */
static int first_entry_has(fx_t *f, const char *key, const char *const *pairs)
{
    redisReply *r = crm_store_cmd(f->store, "XRANGE %s - + COUNT 1", key);
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    const redisReply *kv = r->element[0]->element[1];
    int matched = 0;
    for (size_t k = 0; k + 1 < kv->elements; k += 2)
        for (const char *const *p = pairs; *p; p += 2)
            matched += !strcmp(kv->element[k]->str, p[0]) && !strcmp(kv->element[k + 1]->str, p[1]);
    freeReplyObject(r);
    return matched;
}

static void test_a_gbk_customer_file_imports_and_importing_it_again_changes_nothing(void **state)
{
    fx_t *f = *state;
    char csv[300];
    copy_sample(f, "customers_seed003.gbk.csv", csv, sizeof csv);
    assert_int_equal(CRMCTL(f, "customer", "import", csv, "--dealer", "D1"), 1);
    summary_t s = summary(f);
    assert_int_equal(s.rows, 5);
    assert_int_equal(s.stored, 3);
    assert_int_equal(s.created, 3);
    assert_int_equal(s.refused, 1);    /* neither a name nor an ID number */
    assert_int_equal(s.unreadable, 1); /* a mileage of 三千公里 */
    assert_int_equal(s.unconfirmed, 0);
    /* stored with their findings, never refused for them: 李秀英's 5-digit
       postcode and e-mail without a domain, 赵敏's missing sale date */
    assert_true(s.findings >= 2);
    world_t first = world(f);
    assert_int_equal(first.customers, 3);
    assert_int_equal(first.vehicles, 3);

    /* the record as the dealer keeps it, with its one vehicle */
    char cid[32];
    customer_of_id(f, "110101198003051238", cid, sizeof cid);
    assert_true(cid[0] == 'C');
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    assert_hash(f, key, "name", "王建国");
    assert_hash(f, key, "gender", "male");
    assert_hash(f, key, "birthday", "1980-03-05");
    assert_hash(f, key, "dealer_id", "D1");
    assert_hash(f, key, "vin", "LSGJA52H0EH123456");
    assert_hash(f, "crm:veh:LSGJA52H0EH123456", "customer_id", cid);
    assert_hash(f, "crm:veh:LSGJA52H0EH123456", "sale_date", "2024-05-18");
    assert_hash(f, "crm:veh:LSGJA52H0EH123456", "plate_date", "2024-05-20");
    assert_hash(f, "crm:veh:LSGJA52H0EH123456", "first_service_date", "2024-08-20");
    assert_hash(f, "crm:veh:LSGJA52H0EH123456", "first_service_mileage", "5000");
    assert_hash(f, "crm:veh:LSGJA52H0EH123456", "transmission", "manual");
    assert_true(history_with(f, cid, "channel", "dealer:D1") > 0);
    customer_of_id(f, "310104198511304525", cid, sizeof cid);
    assert_true(cid[0] == 'C');
    /* the record's findings, crm-auditor's */
    assert_true(crm_h_wait_int(f->store, 1, 10000, "HLEN crm:cust:{%s}:findings", cid) >= 1);

    /* The same file again, then the same rows in UTF-8 and with English
       headers in another order: the same record ids, nothing changes. */
    assert_int_equal(CRMCTL(f, "customer", "import", csv, "--dealer", "D1"), 1);
    s = summary(f);
    assert_int_equal(s.stored, 3);
    assert_int_equal(s.refused, 1);
    assert_same_world(first, world(f));
    char utf8[300], en[300];
    copy_sample(f, "customers_seed003.utf8.csv", utf8, sizeof utf8);
    copy_sample(f, "customers_en_reversed.csv", en, sizeof en);
    const char *const again[] = {utf8, en};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(CRMCTL(f, "customer", "import", again[i], "--dealer", "D1"), 1);
        /* read, every row: the same answers, nothing new */
        s = summary(f);
        assert_int_equal(s.rows, 5);
        assert_int_equal(s.stored, 3);
        assert_int_equal(s.created, 3); /* the first answers, as kept */
        assert_int_equal(s.refused, 1);
        assert_int_equal(s.unreadable, 1);
        assert_same_world(first, world(f));
    }
}

static void test_rejects_are_named_by_row_and_field_and_the_fixed_file_imports(void **state)
{
    fx_t *f = *state;
    char csv[300], rejects[400];
    copy_sample(f, "customers_seed003.gbk.csv", csv, sizeof csv);
    assert_int_equal(CRMCTL(f, "customer", "import", csv, "--dealer", "D1"), 1);
    /* the summary lists them by row and field */
    assert_true(crm_h_file_contains(f->out, "row 3: row 3, column 24 (首保里程)"));
    assert_true(crm_h_file_contains(f->out, "row 4: name: required"));
    snprintf(rejects, sizeof rejects, "%s.rejects.csv", csv);
    char *text = crm_h_slurp(rejects);
    /* the header (decoded to UTF-8), an error column, the two rows */
    assert_non_null(strstr(text, "姓名,性别,生日,身份证号"));
    assert_non_null(strstr(text, ",error\n"));
    assert_non_null(strstr(text, "张伟,男,1985-13-01"));
    assert_non_null(strstr(text, "没有姓名也没有身份证"));
    assert_non_null(strstr(text, "name: required"));
    assert_null(strstr(text, "王建国"));
    /* the user fixes both rows in the rejects file and imports it */
    /* only the mileage: an impossible birthday is the dealer's data, stored
       as written with a finding */
    char *p = strstr(text, "三千公里");
    assert_non_null(p);
    memcpy(p, "3000        ", 12); /* the 12 bytes of 三千公里, blanks trimmed */
    p = strstr(text, "\n,,,,成都市武侯区");
    assert_non_null(p);
    char fixed[4096];
    snprintf(fixed, sizeof fixed, "%.*s\n刘洋%s", (int) (p - text), text, p + 1);
    free(text);
    FILE *out = fopen(rejects, "w");
    assert_non_null(out);
    fputs(fixed, out);
    fclose(out);
    assert_int_equal(CRMCTL(f, "customer", "import", rejects, "--dealer", "D1"), 0);
    summary_t s = summary(f);
    assert_int_equal(s.rows, 2);
    assert_int_equal(s.stored, 2);
    assert_int_equal(s.created, 2);
    assert_int_equal(crm_h_int(f->store, "GET crm:ids:customer"), 5);
    char cid[32];
    customer_of_id(f, "440304199001010011", cid, sizeof cid);
    assert_true(cid[0] == 'C');
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    assert_hash(f, key, "birthday", "1985-13-01");
    assert_true(crm_h_wait_int(f->store, 1, 10000, "HEXISTS crm:cust:{%s}:findings birthday:bad_date", cid) == 1);

    /* Rows too big to send are the reader's and the sender's to refuse,
       naming the row: a cell over 64 KiB, a row over a frame's 256 KiB. */
    char big[300];
    crm_h_path(&f->sys.redis, "big.csv", big, sizeof big);
    out = fopen(big, "w");
    assert_non_null(out);
    fputs("姓名,备注,通信地址,车型,颜色,发动机号\n甲,", out);
    for (int i = 0; i < 70000; i++)
        fputc('x', out);
    fputs(",,,,\n乙", out);
    for (int c = 0; c < 5; c++) {
        fputc(',', out);
        for (int i = 0; i < 60000; i++)
            fputc('y', out);
    }
    fputs("\n丙,,,,,\n", out);
    fclose(out);
    assert_int_equal(CRMCTL(f, "customer", "import", big, "--dealer", "D1"), 1);
    s = summary(f);
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.unreadable, 2);
    assert_int_equal(s.stored, 1);
    assert_true(crm_h_file_contains(f->out, "row 1: row 1, column 2 (备注): over 65536 bytes"));
    assert_true(crm_h_file_contains(f->out, "row 2: row 2: "));
    assert_true(crm_h_file_contains(f->out, "over the limit of 262144"));
}

static void test_a_lead_and_the_dealers_file_of_the_same_person_are_one_customer(void **state)
{
    fx_t *f = *state;
    char lead[300], csv[300];
    crm_h_path(&f->sys.redis, "lead.json", lead, sizeof lead);
    FILE *out = fopen(lead, "w");
    assert_non_null(out);
    fputs("{\"name\":\"王建国\",\"mobile\":\"13812345678\",\"city\":\"北京\",\"model\":\"凯越\"}\n", out);
    fclose(out);
    assert_int_equal(CRMCTL(f, "lead", "submit", lead), 0);
    assert_int_equal(crm_h_wait_int(f->store, 1, 5000, "GET crm:ids:customer"), 1);
    copy_sample(f, "customers_seed003.gbk.csv", csv, sizeof csv);
    assert_int_equal(CRMCTL(f, "customer", "import", csv, "--dealer", "D1"), 1);
    summary_t s = summary(f);
    assert_int_equal(s.stored, 3);
    assert_int_equal(s.created, 2); /* 王建国 was known */
    /* one customer: found by the mobile the lead gave, now also by the ID
       number the dealer's file gave */
    assert_int_equal(crm_h_int(f->store, "GET crm:ids:customer"), 3);
    char cid[32];
    customer_of_id(f, "110101198003051238", cid, sizeof cid);
    assert_string_equal(cid, "C1");
    assert_int_equal(crm_h_int(f->store, "LLEN crm:cust:{C1}:leads"), 0); /* one lead: the record's first_lead */
    assert_hash(f, "crm:cust:{C1}", "first_lead", "L1");
    /* the lead's values are the record's first ones (not repeated in the
       history); the dealer's file changed it: that is in the history */
    assert_int_equal(history_with(f, "C1", "channel", "website"), 0);
    assert_true(history_with(f, "C1", "channel", "dealer:D1") > 0);
    assert_hash(f, "crm:cust:{C1}", "first_channel", "website");
    assert_hash(f, "crm:cust:{C1}", "dealer_id", "D1");
    assert_hash(f, "crm:cust:{C1}", "vin", "LSGJA52H0EH123456");
}

static void test_work_orders_import_by_vin_or_customer_once(void **state)
{
    fx_t *f = *state;
    char customers[300], services[300];
    copy_sample(f, "customers_seed003.utf8.csv", customers, sizeof customers);
    copy_sample(f, "services.gbk.csv", services, sizeof services);
    assert_int_equal(CRMCTL(f, "customer", "import", customers, "--dealer", "D1"), 1);
    char cid[32];
    customer_of_id(f, "110101198003051238", cid, sizeof cid);
    assert_string_equal(cid, "C1"); /* the first row made the first customer */
    assert_int_equal(CRMCTL(f, "service", "import", services, "--dealer", "D1"), 1);
    summary_t s = summary(f);
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.stored, 2);
    assert_int_equal(s.unreadable, 1); /* abc元 */
    assert_true(crm_h_file_contains(f->out, "row 3: row 3, column 7 (金额)"));
    assert_int_equal(crm_h_int(f->store, "XLEN crm:cust:{C1}:service"), 2);
    static const char *const visit[] = {"work_order", "WO-2025-0001", "amount_fen", "35050", "mileage", "12000",
                                        "date", "2025-03-01", "dealer_id", "D1", NULL};
    assert_int_equal(first_entry_has(f, "crm:cust:{C1}:service", visit), 5);
    world_t w = world(f);
    assert_int_equal(w.services, 2); /* service.recorded */
    assert_int_equal(CRMCTL(f, "service", "import", services, "--dealer", "D1"), 1);
    s = summary(f);
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.stored, 2);
    assert_int_equal(s.unreadable, 1);
    assert_same_world(w, world(f));
    assert_int_equal(crm_h_int(f->store, "XLEN crm:cust:{C1}:service"), 2);
}

/* staff.add on crm-dispatcher's control endpoint (what crmctl staff add
   sends): a consultant of `dealer`. */
static void add_consultant(fx_t *f, const char *dealer, const char *id)
{
    zsock_t *req = zsock_new(ZMQ_REQ);
    assert_non_null(req);
    zsock_set_rcvtimeo(req, 5000);
    assert_int_equal(zsock_connect(req, "tcp://127.0.0.1:%d", f->sys.control[crm_h_service_index("dispatcher")]), 0);
    crm_msg_t m, a;
    crm_msg_init(&m, CRM_T_staff_add);
    char rec[64];
    snprintf(rec, sizeof rec, "staff-%s-%s", dealer, id);
    CRM_SET_STR(&m, staff_add, record_id, rec);
    CRM_SET_STR(&m, staff_add, dealer_id, dealer);
    CRM_SET_STR(&m, staff_add, staff_id, id);
    CRM_SET_STR(&m, staff_add, role, "consultant");
    CRM_SET_STR(&m, staff_add, name, "钱多多");
    crm_new_id(m.id, sizeof m.id);
    m.ts = crm_now_ms();
    snprintf(m.producer, sizeof m.producer, "test");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(&m, &buf, NULL), 0);
    crm_msg_clear(&m);
    zframe_t *fr = zframe_new(buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    assert_int_equal(zframe_send(&fr, req, 0), 0);
    fr = zframe_recv(req);
    assert_non_null(fr);
    crm_err_t err;
    assert_int_equal(crm_msg_decode(zframe_data(fr), zframe_size(fr), &a, &err), 0);
    zframe_destroy(&fr);
    assert_int_equal(a.type, CRM_T_dealer_reply); /* a record's answer, whichever endpoint */
    if (!a.body.dealer_reply.ok)
        fail_msg("staff.add: %s: %s", a.body.dealer_reply.code, a.body.dealer_reply.message);
    crm_msg_clear(&a);
    zsock_destroy(&req);
}

static void test_follow_ups_import_for_the_dealers_customers_and_consultants(void **state)
{
    fx_t *f = *state;
    char customers[300], followups[300];
    copy_sample(f, "customers_seed003.utf8.csv", customers, sizeof customers);
    copy_sample(f, "followups.gbk.tsv", followups, sizeof followups);
    assert_int_equal(CRMCTL(f, "customer", "import", customers, "--dealer", "D1"), 1);
    add_consultant(f, "D1", "S001");
    /* the contacts happened before now: 2026-11-22 00:00 China time */
    crm_h_sys_set_clock(&f->sys, 1795276800000LL);
    /* C1 and C2: the first two rows of the customer file (王建国, 李秀英) */
    assert_int_equal(CRMCTL(f, "followup", "import", followups, "--dealer", "D1"), 1);
    summary_t s = summary(f);
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.stored, 2);
    assert_int_equal(s.unreadable, 1); /* 2026-11-31 */
    assert_true(crm_h_file_contains(f->out, "row 3: row 3, column 3 (跟进时间)"));
    assert_int_equal(crm_h_int(f->store, "XLEN crm:cust:{C1}:followups"), 1);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:cust:{C2}:followups"), 1);
    static const char *const contact[] = {"result", "answered", "consultant_id", "S001", "at", "1795141800000",
                                          "next_at", "1795744800000", "grade", "A", "expected_purchase_date",
                                          "2026-12-31", "next_content", "邀约试驾", NULL};
    assert_int_equal(first_entry_has(f, "crm:cust:{C1}:followups", contact), 7);
    long long events = crm_h_int(f->store, "XLEN " CRM_KEY_EVENTS_FMT, "followup");
    assert_true(events >= 2);
    /* again: nothing new */
    assert_int_equal(CRMCTL(f, "followup", "import", followups, "--dealer", "D1"), 1);
    assert_int_equal(summary(f).stored, 2);
    assert_int_equal(crm_h_int(f->store, "XLEN crm:cust:{C1}:followups"), 1);
    assert_int_equal(crm_h_int(f->store, "XLEN " CRM_KEY_EVENTS_FMT, "followup"), events);
    /* another dealer's consultant, or a customer the dealer does not own */
    char other[300];
    crm_h_path(&f->sys.redis, "other.csv", other, sizeof other);
    FILE *out = fopen(other, "w");
    assert_non_null(out);
    fputs("客户编号,顾问,跟进结果\nC1,S999,接通\n", out);
    fclose(out);
    assert_int_equal(CRMCTL(f, "followup", "import", other, "--dealer", "D1"), 1);
    assert_true(crm_h_file_contains(f->out, "row 1: consultant_id: unknown"));
    assert_int_equal(CRMCTL(f, "followup", "import", followups, "--dealer", "D2"), 1);
    assert_int_equal(summary(f).refused, 2);
    assert_true(crm_h_file_contains(f->out, "not_yours"));
    assert_int_equal(crm_h_int(f->store, "XLEN crm:cust:{C1}:followups"), 1);
}

static void test_crm_dealer_imports_over_curve_and_cannot_write_another_dealers_customer(void **state)
{
    fx_t *f = *state;
    char csv[300], other[300];
    copy_sample(f, "customers_seed003.utf8.csv", csv, sizeof csv);
    assert_int_equal(DEALER(f, f->secret1, "D1", "import", "customer", csv), 1);
    summary_t s = summary(f);
    assert_int_equal(s.rows, 5);
    assert_int_equal(s.stored, 3);
    assert_int_equal(s.created, 3);
    assert_int_equal(s.refused, 1);
    assert_int_equal(s.unreadable, 1);
    assert_true(crm_h_file_contains(f->out, "row 4: name: required"));
    char cid[32];
    customer_of_id(f, "110101198003051238", cid, sizeof cid);
    assert_true(cid[0] == 'C');
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
    assert_hash(f, key, "dealer_id", "D1");
    assert_true(history_with(f, cid, "channel", "dealer:D1") > 0);
    /* sent again: the first answers, nothing new */
    world_t w = world(f);
    assert_int_equal(DEALER(f, f->secret1, "D1", "import", "customer", csv), 1);
    assert_int_equal(summary(f).stored, 3);
    assert_same_world(w, world(f));

    /* Only the readable, acceptable rows: every row stored, exit 0. */
    crm_h_path(&f->sys.redis, "clean.csv", other, sizeof other);
    FILE *out = fopen(other, "w");
    assert_non_null(out);
    fputs("姓名,手机,身份证号\n孙丽,13500004444,\n", out);
    fclose(out);
    assert_int_equal(DEALER(f, f->secret1, "D1", "import", "customer", other), 0);
    assert_int_equal(summary(f).stored, 1);

    /* D2 files D1's customer: refused, named, nothing changes. */
    w = world(f);
    out = fopen(other, "w");
    assert_non_null(out);
    fputs("姓名,身份证号,备注\n王建国,110101198003051238,D2 says so\n", out);
    fclose(out);
    assert_int_equal(DEALER(f, f->secret2, "D2", "import", "customer", other), 1);
    assert_int_equal(summary(f).refused, 1);
    assert_true(crm_h_file_contains(f->out, "not_yours"));
    assert_same_world(w, world(f));
    assert_hash(f, key, "dealer_id", "D1");

    /* No gateway there: exit 2, nothing claimed. */
    int port = crm_h_free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    const char *args[] = {"--dealer", "D1", "--cert", f->secret1, "--server-cert", f->sys.server_cert,
                          "--endpoint", ep, "--timeout-ms", "300", "--tries", "2",
                          "import", "customer", csv, NULL};
    assert_int_equal(crm_h_run("crm-dealer", args, f->sys.envp, f->out), 2);
    assert_true(crm_h_file_contains(f->out, "not confirmed"));
    assert_int_equal(summary(f).stored, 0);
}

/* 5,000 customer files; the dispatcher is SIGKILLed in the middle of the
   import and started again; the import, run again, ends with every row
   stored once: 5,000 customers of D1, one customer.recorded each. */
static void test_an_import_interrupted_by_a_dispatcher_crash_ends_with_every_row_once(void **state)
{
    fx_t *f = *state;
    enum { N = 5000 };
    /* the crash is the dispatcher's: crm-auditor (whose findings the
       dispatcher would forward meanwhile) waits, and catches up after */
    crm_h_sys_kill(&f->sys, "auditor", SIGTERM);
    char csv[300];
    crm_h_path(&f->sys.redis, "big.csv", csv, sizeof csv);
    FILE *c = fopen(csv, "w");
    assert_non_null(c);
    fputs("姓名\t手机\t城市\t省份\t底盘号\t开票日期\n", c);
    for (int i = 0; i < N; i++)
        fprintf(c, "车主%d\t139%08d\t北京\t北京市\tLSGTEST%010d\t2025/%d/%d\n", i, i, i, i % 12 + 1, i % 28 + 1);
    assert_int_equal(fclose(c), 0);
    const char *args[] = {"customer", "import", csv, "--dealer", "D1", "--timeout-ms", "1000", "--tries", "2", NULL};
    pid_t import = crm_h_spawn("crmctl", args, f->sys.envp, f->out);
    long long seen = crm_h_wait_int(f->store, 800, 30000, "SCARD crm:dealer:D1:customers");
    assert_true(seen >= 800);
    int status = crm_h_sys_kill(&f->sys, "dispatcher", SIGKILL);
    assert_true(WIFSIGNALED(status));
    waitpid(import, &status, 0);
    long long at_crash = crm_h_int(f->store, "SCARD crm:dealer:D1:customers");
    assert_true(at_crash < N); /* the crash was in the middle of the import */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2); /* told the user what was not confirmed */
    assert_true(crm_h_file_contains(f->out, "Run the same import again"));
    crm_h_sys_spawn(&f->sys, "dispatcher", NULL);
    assert_int_equal(CRMCTL(f, "customer", "import", csv, "--dealer", "D1"), 0);
    summary_t s = summary(f);
    assert_int_equal(s.rows, N);
    assert_int_equal(s.stored, N);
    assert_int_equal(crm_h_int(f->store, "SCARD crm:dealer:D1:customers"), N);
    char events[300];
    crm_h_path(&f->sys.redis, "events.jsonl", events, sizeof events);
    const char *ev[] = {"events", "customer", "--count", "1000000", NULL};
    assert_int_equal(crm_h_run("crmctl", ev, f->sys.envp, events), 0);
    assert_int_equal(crm_h_file_count(events, "\"type\":\"customer.recorded\""), N);
    /* each row is one customer with its one car */
    static const int rows[] = {0, 1234, 2500, 4999};
    for (int k = 0; k < 4; k++) {
        char vin[64], name[32];
        snprintf(vin, sizeof vin, "crm:veh:LSGTEST%010d", rows[k]);
        snprintf(name, sizeof name, "车主%d", rows[k]);
        char *cid = hget(f, vin, "customer_id");
        assert_true(cid[0] == 'C');
        char key[64];
        snprintf(key, sizeof key, CRM_KEY_CUST_FMT, cid);
        assert_hash(f, key, "name", name);
        assert_int_equal(crm_h_int(f->store, "SCARD %s:vehicles", key), 1);
        free(cid);
    }
    static const char *const aud[] = {"CRM_AUDIT_SCHEDULE=none", NULL};
    crm_h_sys_spawn(&f->sys, "auditor", aud);
}

/* A long file and nobody answering: the import gives up with exit 2 in
   bounded time (it never blocks on a full queue), for crmctl and for
   crm-dealer. */
static void test_a_long_import_nobody_answers_ends_with_exit_2(void **state)
{
    fx_t *f = *state;
    char csv[300], away[64];
    crm_h_path(&f->sys.redis, "long.csv", csv, sizeof csv);
    FILE *out = fopen(csv, "w");
    assert_non_null(out);
    fputs("档案编号,姓名,手机\n", out);
    for (int i = 0; i < 1500; i++)
        fprintf(out, "L%d,客户%d,139%08d\n", i, i, i);
    fclose(out);
    snprintf(away, sizeof away, "tcp://127.0.0.1:%d", crm_h_free_port());
    int64_t t0 = crm_mono_ms();
    assert_int_equal(run(f, "crmctl", "customer", "import", csv, "--dealer", "D1", "--dispatcher-control", away,
                         "--timeout-ms", "200", "--tries", "2", NULL),
                     2);
    assert_true(crm_h_file_contains(f->out, "not confirmed"));
    assert_int_equal(run(f, "crm-dealer", "--dealer", "D1", "--cert", f->secret1, "--server-cert", f->sys.server_cert,
                         "--endpoint", away, "--timeout-ms", "200", "--tries", "2", "import", "customer", csv, NULL),
                     2);
    assert_true(crm_mono_ms() - t0 < 60000);

    /* a row with a cell more than the header is kept whole in the rejects
       file, for the user to mend */
    char odd[300], rej[400];
    crm_h_path(&f->sys.redis, "odd.csv", odd, sizeof odd);
    out = fopen(odd, "w");
    assert_non_null(out);
    fputs("姓名,通信地址\n甲,深圳市南山区,科技园1号\n", out);
    fclose(out);
    assert_int_equal(CRMCTL(f, "customer", "import", odd, "--dealer", "D1"), 1);
    snprintf(rej, sizeof rej, "%s.rejects.csv", odd);
    assert_true(crm_h_file_contains(rej, "甲,深圳市南山区,科技园1号,"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_gbk_customer_file_imports_and_importing_it_again_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rejects_are_named_by_row_and_field_and_the_fixed_file_imports, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_lead_and_the_dealers_file_of_the_same_person_are_one_customer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_work_orders_import_by_vin_or_customer_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_ups_import_for_the_dealers_customers_and_consultants, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_import_interrupted_by_a_dispatcher_crash_ends_with_every_row_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_crm_dealer_imports_over_curve_and_cannot_write_another_dealers_customer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_long_import_nobody_answers_ends_with_exit_2, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
