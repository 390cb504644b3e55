/*  crm-bench-memory: Redis bytes per customer by key family, on demand.
 *
 *      crm-bench-memory [LEADS]     (default 20,000)
 *
 *  A private redis-server (AOF off: it does not change what the keys
 *  hold), crm-intake, crm-dispatcher and crm-auditor as they run in a
 *  deployment (the auditor follows customer.updated and writes the
 *  findings), the seed's sales regions and four dealers. LEADS realistic
 *  leads of new customers (a Chinese name, a unique mobile, city and
 *  province, one in three with e-mail, one in five asking for a test drive
 *  two to five days ahead, half of those with a chosen dealer) are
 *  submitted by 8 submitters. Once Redis stops changing, every key is
 *  walked (SCAN, TYPE, MEMORY USAGE ... SAMPLES 0), named by its family
 *  (ids, digits, digests and names replaced: crm:cust:{C*}:history) and
 *  counted against the same walk before the leads: bytes per new customer
 *  by family, their total, and each event stream's bytes per event
 *  (MEMORY USAGE / XLEN). INFO memory's used_memory before and after is the
 *  cross-check. Then the same after every key is DUMPed and RESTOREd, as
 *  a restart loads them: Redis 7.0 gives a new stream's first node room
 *  for 4 KB, which a customer's one-entry history keeps until then.
 *  Printed beside the same run's yardstick; asserts nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_h_bench.h"
#include "crm_harness.h"

#define S_SUBMITTERS 8
#define S_FAMILIES 512
#define S_PIPE 500 /* keys per pipelined round of TYPE + MEMORY USAGE */
#define S_MAXLEN 1000000.0 /* the services' default --stream-maxlen */

static crm_h_sys_t s_sys;
static char s_endpoint[64];
static int64_t s_now;

typedef struct {
    char name[160];
    bool stream; /* a bus stream, crm:{<stream>}:events (a record's own stream, its history, is not) */
    long long keys, bytes, entries; /* entries: XLEN of the streams */
} s_family_t;

typedef struct {
    s_family_t v[S_FAMILIES];
    int n;
    long long keys;
} s_walk_t;

/* ------------------------------------------------------------ leads */

static const char *const s_surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周",
                                         "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗"};
static const char *const s_given[] = {"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳",
                                      "杰", "娟", "涛", "明", "超", "霞", "平", "刚", "秀英", "桂英", "建华", "志强"};
static const struct {
    const char *city, *province, *postcode, *district;
} s_places[] = {{"上海", "上海", "200030", "上海市徐汇区漕溪北路"}, {"北京", "北京", "100020", "北京市朝阳区建国路"},
                {"成都", "四川", "610041", "成都市武侯区人民南路"}, {"广州", "广东", "510620", "广州市天河区体育西路"},
                {"深圳", "广东", "518057", "深圳市南山区科技园路"}, {"杭州", "浙江", "310012", "杭州市西湖区文三路"},
                {"南京", "江苏", "210008", "南京市鼓楼区中山路"},   {"武汉", "湖北", "430071", "武汉市武昌区中南路"}};
#define S_NPLACES (int) (sizeof s_places / sizeof s_places[0])
static const char *const s_models[] = {"508L", "408", "4008", "5008", "C5 X"};
static const char *const s_dealers[] = {"D1", "D2", "D3", "D4"}; /* 上海, 北京, 成都, 广州 */

typedef struct {
    int id, first, count;
    long ok;
} s_worker_t;

/* Lead i: all different mobiles (new customers), names that repeat as
   names do. */
static void s_lead(int i, crm_msg_t *m)
{
    crm_msg_init(m, CRM_T_lead_submit);
    crm_new_id(m->id, sizeof m->id);
    snprintf(m->producer, sizeof m->producer, "website");
    m->ts = crm_now_ms();
    static const char *const prefixes[] = {"138", "139", "135", "186", "151", "177"};
    char sid[32], mobile[16], name[32], email[48], address[96];
    snprintf(sid, sizeof sid, "web-%08d", i);
    snprintf(mobile, sizeof mobile, "%s%08d", prefixes[i % 6], (int) (((long long) i * 7919 + 12345) % 100000000));
    int g = (i / 20) % 24, g2 = (i / 480) % 25; /* a second given character in most names */
    snprintf(name, sizeof name, "%s%s%s", s_surnames[i % 20], s_given[g], g2 < 24 && g2 != g ? s_given[g2] : "");
    int p = (i * 7) % S_NPLACES;
    CRM_SET_STR(m, lead_submit, submission_id, sid);
    CRM_SET_STR(m, lead_submit, channel, i % 10 == 9 ? "autoshow" : "website");
    CRM_SET_STR(m, lead_submit, source, i % 10 == 9 ? "广州车展" : "官网试驾页");
    CRM_SET_STR(m, lead_submit, name, name);
    CRM_SET_STR(m, lead_submit, mobile, mobile);
    CRM_SET_STR(m, lead_submit, city, s_places[p].city);
    CRM_SET_STR(m, lead_submit, province, s_places[p].province);
    CRM_SET_STR(m, lead_submit, model, s_models[i % 5]);
    if (i % 3 == 0) {
        snprintf(email, sizeof email, "kh%d@qq.com", i);
        CRM_SET_STR(m, lead_submit, email, email);
    }
    if (i % 2 == 0) {
        snprintf(address, sizeof address, "%s%d号", s_places[p].district, 1 + i % 300);
        CRM_SET_STR(m, lead_submit, address, address);
        CRM_SET_STR(m, lead_submit, postcode, s_places[p].postcode);
    }
    if (i % 5 == 1) {
        CRM_SET_BOOL(m, lead_submit, testdrive, true);
        CRM_SET_I64(m, lead_submit, testdrive_at, s_now + (2 + i % 4) * 86400000LL + (i % 8) * 3600000LL);
        if (i % 10 == 1)
            CRM_SET_STR(m, lead_submit, dealer_id, s_dealers[i % 4]);
    }
}

static void *s_submitter(void *arg)
{
    s_worker_t *w = arg;
    zsock_t *req = zsock_new_req(s_endpoint);
    zsock_set_rcvtimeo(req, 30000);
    for (int i = w->first; i < w->first + w->count; i++) {
        crm_msg_t m;
        s_lead(i, &m);
        zframe_t *ans = crm_h_bench_ask(req, &m);
        if (!ans)
            break;
        crm_err_t err;
        if (crm_msg_decode(zframe_data(ans), zframe_size(ans), &m, &err) == 0) {
            w->ok += m.type == CRM_T_lead_accepted;
            crm_msg_clear(&m);
        }
        zframe_destroy(&ans);
    }
    zsock_destroy(&req);
    return NULL;
}

/* ------------------------------------------------------------ the walk */

static bool s_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool s_digit(char c) { return c >= '0' && c <= '9'; }
static bool s_hex(char c) { return s_digit(c) || (c >= 'a' && c <= 'f'); }

/* One word of a key (between ':', '{', '}', '.'), as its family names it:
   C12 -> C*, a digest -> <hex>, a name -> <name>, digits -> # (mobiles,
   dates, numbers), and a run of three digits or more in a word (web-#;
   seq2td stays). */
static void s_word(const char *w, size_t n, char *out, size_t *used, size_t size)
{
    size_t u = 0, d = 0, h = 0, hi = 0;
    while (u < n && s_upper(w[u]))
        u++;
    for (size_t i = 0; i < n; i++) {
        d += s_digit(w[i]);
        h += s_hex(w[i]);
        hi += (unsigned char) w[i] >= 0x80;
    }
    char tmp[170];
    size_t t = 0;
    if (d == n && n > 0)
        t = (size_t) snprintf(tmp, sizeof tmp, "#");
    else if (u >= 1 && u <= 3 && d == n - u && d > 0)
        t = (size_t) snprintf(tmp, sizeof tmp, "%.*s*", (int) u, w);
    else if (hi)
        t = (size_t) snprintf(tmp, sizeof tmp, "<name>");
    else if (h == n && n >= 16)
        t = (size_t) snprintf(tmp, sizeof tmp, "<hex>");
    else if (n > 40)
        t = (size_t) snprintf(tmp, sizeof tmp, "<id>");
    else
        for (size_t i = 0; i < n && t < sizeof tmp - 2;) {
            size_t run = 0;
            while (i + run < n && s_digit(w[i + run]))
                run++;
            if (run >= 3) {
                tmp[t++] = '#';
                i += run;
            } else if (run) {
                for (size_t k = 0; k < run && t < sizeof tmp - 2; k++)
                    tmp[t++] = w[i++];
            } else {
                tmp[t++] = w[i++];
            }
        }
    if (*used + t < size) {
        memcpy(out + *used, tmp, t);
        *used += t;
    }
    out[*used] = 0;
}

static void s_family_name(const char *key, size_t len, char *out, size_t size)
{
    size_t used = 0, start = 0;
    out[0] = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? key[i] : 0;
        if (i < len && c != ':' && c != '{' && c != '}' && c != '.')
            continue;
        s_word(key + start, i - start, out, &used, size);
        if (i < len && used + 1 < size) {
            out[used++] = c;
            out[used] = 0;
        }
        start = i + 1;
    }
}

static s_family_t *s_family(s_walk_t *w, const char *name, bool stream)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->v[i].name, name))
            return &w->v[i];
    if (w->n == S_FAMILIES)
        return &w->v[S_FAMILIES - 1]; /* the last one takes the rest */
    s_family_t *f = &w->v[w->n++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->stream = stream;
    return f;
}

static long long s_reply_int(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

/* Every key of the bench's Redis, a SCAN batch at a time, to `fn` (which
   pipelines what it asks of them on `c`). 0, or -1 when Redis or `fn` failed. */
static int s_scan(int (*fn)(redisContext *c, const redisReply *keys, void *arg), void *arg)
{
    redisContext *c = redisConnect("127.0.0.1", s_sys.redis.port);
    if (!c || c->err) {
        redisFree(c);
        return -1;
    }
    char cursor[32] = "0";
    int rc = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s COUNT %d", cursor, S_PIPE);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            rc = -1;
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        rc = fn(c, r->element[1], arg);
        freeReplyObject(r);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    redisFree(c);
    return rc;
}

/* One SCAN batch into the walk: each key's type, size and length. */
static int s_walk_keys(redisContext *c, const redisReply *keys, void *arg)
{
    s_walk_t *w = arg;
    int rc = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        redisAppendCommand(c, "TYPE %b", k->str, k->len);
        redisAppendCommand(c, "MEMORY USAGE %b SAMPLES 0", k->str, k->len);
        redisAppendCommand(c, "XLEN %b", k->str, k->len); /* an error but for streams */
    }
    for (size_t i = 0; i < keys->elements && rc == 0; i++) {
        redisReply *type = NULL, *mem = NULL, *xlen = NULL;
        if (redisGetReply(c, (void **) &type) != REDIS_OK || redisGetReply(c, (void **) &mem) != REDIS_OK ||
            redisGetReply(c, (void **) &xlen) != REDIS_OK)
            rc = -1;
        bool is_stream = type && type->type == REDIS_REPLY_STATUS && !strcmp(type->str, "stream");
        char name[160];
        s_family_name(keys->element[i]->str, keys->element[i]->len, name, sizeof name);
        size_t nl = strlen(name);
        bool stream = is_stream && !strncmp(name, "crm:{", 5) && nl > 8 && !strcmp(name + nl - 8, "}:events");
        s_family_t *f = s_family(w, name, stream);
        f->keys++;
        f->bytes += s_reply_int(mem);
        f->entries += is_stream ? s_reply_int(xlen) : 0;
        w->keys++;
        freeReplyObject(type);
        freeReplyObject(mem);
        freeReplyObject(xlen);
    }
    return rc;
}

/* Walks every key of the bench's Redis into `w`. 0 or -1. */
static int s_walk(s_walk_t *w)
{
    memset(w, 0, sizeof *w);
    return s_scan(s_walk_keys, w);
}

static const s_family_t *s_find(const s_walk_t *w, const char *name)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->v[i].name, name))
            return &w->v[i];
    return NULL;
}

static long long s_used_memory(void)
{
    redisReply *r = crm_store_cmd(s_sys.store, "INFO memory");
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    long long v = p ? atoll(p + strlen("used_memory:")) : -1;
    freeReplyObject(r);
    return v;
}

/* Waits until the services have applied everything: the number of keys,
   the streams' total length and used_memory the same for 2 s running. */
static void s_settle(int timeout_ms)
{
    int64_t end = crm_mono_ms() + timeout_ms, since = crm_mono_ms();
    long long last = -1;
    while (crm_mono_ms() < end && crm_mono_ms() - since < 2000) {
        long long now = crm_h_int(s_sys.store, "DBSIZE") * 1000003LL + s_used_memory();
        if (now != last) {
            last = now;
            since = crm_mono_ms();
        }
        usleep(200 * 1000);
    }
}

static int s_by_bytes(const void *a, const void *b)
{
    const s_family_t *x = *(const s_family_t *const *) a, *y = *(const s_family_t *const *) b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* The families, largest first, as the leads changed them (the walks
   before and after, used_memory m0 and m1), per new customer. */
static void s_report(const char *title, const s_walk_t *before, const s_walk_t *after, long long customers,
                     long long m0, long long m1)
{
    printf("\n%s\n", title);
    s_family_t *order[S_FAMILIES];
    static s_family_t delta[S_FAMILIES];
    int n = 0;
    for (int i = 0; i < after->n; i++) {
        const s_family_t *b = s_find(before, after->v[i].name);
        delta[n] = after->v[i];
        if (b) {
            delta[n].keys -= b->keys;
            delta[n].bytes -= b->bytes;
            delta[n].entries -= b->entries;
        }
        if (delta[n].bytes != 0 || delta[n].keys != 0)
            order[n] = &delta[n], n++;
    }
    qsort(order, (size_t) n, sizeof *order, s_by_bytes);
    double cust_bytes = 0, event_bytes = 0, capped_bytes = 0;
    printf("\n%-44s %9s %10s %12s\n", "key family (MEMORY USAGE, SAMPLES 0)", "new keys", "bytes/key", "B/customer");
    /* a record's own stream (its history) is the record's: counted here, its entries beside it */
    for (int i = 0; i < n; i++) {
        const s_family_t *f = order[i];
        if (f->stream)
            continue;
        double per = (double) f->bytes / (double) customers;
        cust_bytes += per;
        char entries[48] = "";
        if (f->entries)
            snprintf(entries, sizeof entries, "  (a stream: %lld entries, %.0f B/entry)", f->entries,
                     (double) f->bytes / (double) f->entries);
        printf("%-44s %9lld %10.0f %12.1f%s\n", f->name, f->keys, f->keys ? (double) f->bytes / (double) f->keys : 0,
               per, entries);
    }
    printf("%-44s %9s %10s %12.1f\n", "total per new customer, before events", "", "", cust_bytes);
    printf("\n%-44s %9s %10s %12s %12s\n", "event stream (MEMORY USAGE / XLEN)", "events", "B/event", "events/cust",
           "B/customer");
    for (int i = 0; i < n; i++) {
        const s_family_t *f = order[i];
        if (!f->stream)
            continue;
        const s_family_t *a = s_find(after, f->name);
        double per_event = a && a->entries ? (double) a->bytes / (double) a->entries : 0;
        double epc = (double) f->entries / (double) customers;
        event_bytes += epc * per_event;
        /* each stream is trimmed to --stream-maxlen entries (1,000,000) */
        double kept = epc * 1e6 < S_MAXLEN ? epc * 1e6 : S_MAXLEN;
        capped_bytes += kept * per_event;
        printf("%-44s %9lld %10.0f %12.2f %12.1f\n", f->name, f->entries, per_event, epc, epc * per_event);
    }
    printf("%-44s %9s %10s %12s %12.1f\n", "events per new customer", "", "", "", event_bytes);
    double used = (double) (m1 - m0) / (double) customers;
    printf("\nused_memory (INFO memory) %lld -> %lld: %.1f bytes per new customer (cross-check of %.1f + %.1f)\n", m0,
           m1, used, cust_bytes, event_bytes);
    printf("Redis per million customers: %.2f GB before events, %.2f GB with every event kept, %.2f GB with the "
           "events kept as now (each stream trimmed to 1,000,000 entries)\n",
           cust_bytes * 1e6 / 1e9, (cust_bytes + event_bytes) * 1e6 / 1e9, (cust_bytes * 1e6 + capped_bytes) / 1e9);
}

/* One SCAN batch DUMPed and RESTOREd (REPLACE, its TTL kept). */
static int s_restore_keys(redisContext *c, const redisReply *keys, void *arg)
{
    (void) arg;
    int rc = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        redisAppendCommand(c, "DUMP %b", keys->element[i]->str, keys->element[i]->len);
        redisAppendCommand(c, "PTTL %b", keys->element[i]->str, keys->element[i]->len);
    }
    size_t restores = 0;
    for (size_t i = 0; i < keys->elements && rc == 0; i++) {
        redisReply *dump = NULL, *ttl = NULL;
        if (redisGetReply(c, (void **) &dump) != REDIS_OK || redisGetReply(c, (void **) &ttl) != REDIS_OK)
            rc = -1;
        if (rc == 0 && dump->type == REDIS_REPLY_STRING) {
            long long ms = ttl->type == REDIS_REPLY_INTEGER && ttl->integer > 0 ? ttl->integer : 0;
            redisAppendCommand(c, "RESTORE %b %lld %b REPLACE", keys->element[i]->str, keys->element[i]->len, ms,
                               dump->str, dump->len);
            restores++;
        }
        freeReplyObject(dump);
        freeReplyObject(ttl);
    }
    for (size_t i = 0; i < restores && rc == 0; i++) {
        redisReply *ok = NULL;
        if (redisGetReply(c, (void **) &ok) != REDIS_OK || ok->type == REDIS_REPLY_ERROR)
            rc = -1;
        freeReplyObject(ok);
    }
    return rc;
}

/* DUMP and RESTORE (REPLACE, its TTL kept) of every key, as a restart
   loads them. 0 or -1. */
static int s_restore_all(void) { return s_scan(s_restore_keys, NULL); }

int main(int argc, char **argv)
{
    int leads = argc > 1 ? atoi(argv[1]) : 20000;
    if (leads < S_SUBMITTERS) {
        fprintf(stderr, "usage: crm-bench-memory [LEADS (>= %d)]\n", S_SUBMITTERS);
        return 2;
    }
    zsys_init();
    zsys_set_logstream(NULL);
    if (crm_h_sys_start(&s_sys, false, false) != 0) {
        fprintf(stderr, "crm-bench-memory: cannot start redis-server\n");
        return 1;
    }
    crm_h_sys_env(&s_sys, "CRM_LOG_LEVEL=warn");
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", s_sys.intake);
    printf("autocrm memory benchmark: %ld cores, %d leads of new customers through crm-intake, crm-dispatcher and "
           "crm-auditor following\n",
           sysconf(_SC_NPROCESSORS_ONLN), leads);
    double yard = crm_h_redis_benchmark(&s_sys.redis);
    printf("yardstick   redis-benchmark -P 16 -t set: %.0f SET/s (same Redis, same run)\n", yard);
    redisReply *fr = crm_store_cmd(s_sys.store, "FLUSHALL");
    freeReplyObject(fr);
    if (crm_h_audit_system(&s_sys) != 0) {
        crm_h_sys_stop(&s_sys);
        return 1;
    }
    static const char *const dealers[][3] = {
        {"D1", "上海", "上海"}, {"D2", "北京", "北京"}, {"D3", "成都", "四川"}, {"D4", "广州", "广东"}};
    for (int d = 0; d < 4; d++)
        if (crm_h_sys_crmctl(&s_sys, "dealer", "add", dealers[d][0], "--name", "基准店", "--province", dealers[d][2],
                             "--city", dealers[d][1], "--capacity", "0", NULL) != 0) {
            char *out = crm_h_slurp(s_sys.out);
            fprintf(stderr, "crm-bench-memory: dealer add %s: %s\n", dealers[d][0], out);
            free(out);
            crm_h_sys_stop(&s_sys);
            return 1;
        }
    s_settle(10000);

    static s_walk_t before, after;
    long long m0 = s_used_memory();
    if (s_walk(&before) != 0) {
        fprintf(stderr, "crm-bench-memory: the walk failed\n");
        crm_h_sys_stop(&s_sys);
        return 1;
    }
    s_now = crm_now_ms();
    pthread_t th[S_SUBMITTERS];
    s_worker_t w[S_SUBMITTERS];
    int64_t t0 = crm_mono_us();
    for (int i = 0; i < S_SUBMITTERS; i++) {
        int first = leads / S_SUBMITTERS * i;
        w[i] = (s_worker_t){i, first, i == S_SUBMITTERS - 1 ? leads - first : leads / S_SUBMITTERS, 0};
        pthread_create(&th[i], NULL, s_submitter, &w[i]);
    }
    long ok = 0;
    for (int i = 0; i < S_SUBMITTERS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    double secs = (double) (crm_mono_us() - t0) / 1e6;
    char sh[64];
    printf("leads       %ld of %d accepted in %.2f s: %.0f leads/s, %s\n", ok, leads, secs, (double) ok / secs,
           crm_h_share((double) ok / secs, yard, sh, sizeof sh));
    s_settle(120000);
    long long m1 = s_used_memory();
    if (s_walk(&after) != 0) {
        fprintf(stderr, "crm-bench-memory: the walk failed\n");
        crm_h_sys_stop(&s_sys);
        return 1;
    }
    const s_family_t *cf = s_find(&after, "crm:cust:{C*}"), *cb = s_find(&before, "crm:cust:{C*}");
    long long customers = (cf ? cf->keys : 0) - (cb ? cb->keys : 0);
    printf("customers   %lld new (crm:cust:{C*}), %lld keys before the leads, %lld after\n", customers, before.keys,
           after.keys);
    if (customers <= 0) {
        crm_h_sys_stop(&s_sys);
        return 1;
    }

    s_report("As written (the live Redis):", &before, &after, customers, m0, m1);

    /* What a restart makes of it: loading writes every key afresh, compact
       (a stream's node is no longer its first allocation). DUMP and
       RESTORE of every key do the same without restarting. */
    if (s_restore_all() != 0) {
        fprintf(stderr, "crm-bench-memory: DUMP/RESTORE failed\n");
    } else {
        static s_walk_t restored;
        long long m2 = s_used_memory();
        if (s_walk(&restored) == 0)
            s_report("After a restart (every key DUMPed and RESTOREd, as loading the AOF or RDB writes it):", &before,
                     &restored, customers, m0, m2);
    }
    crm_h_sys_stop(&s_sys);
    return 0;
}
