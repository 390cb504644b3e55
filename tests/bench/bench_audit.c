/*  crm-bench-audit: crm-auditor's live findings and audit runs, on demand.
 *
 *      crm-bench-audit [RECORDS [LIVE]]     (defaults 1,000,000 and 100,000)
 *
 *  Against a private redis-server, with the real crm-auditor:
 *   1. live findings: LIVE customer records of 100 dealers (one in ten
 *      breaking a rule of part one, one in three without e-mail) are
 *      written as the uplink writes them, then their customer.recorded
 *      events are published as crm-dispatcher publishes them, 1,000 per
 *      transaction; the time until crm-auditor has applied the last (its
 *      cursor) gives record changes/s. Aim (issue): >= 10,000/s.
 *      crm-auditor's memory after it is mostly the bus's backlog (the
 *      events come faster than they are applied and wait in its
 *      subscriber queue, at most 100,000 messages).
 *   2. an audit run over those LIVE records (audit.run on crm-auditor's
 *      control endpoint, until the run is done), by a crm-auditor started
 *      afresh: time, and its resident memory (VmRSS) and peak (VmHWM).
 *   3. the same at RECORDS: the records beyond LIVE are added as
 *      crm-auditor keeps a judged record for the runs (an entry of
 *      crm:audit:files:<D>, one per record), not through the live path
 *      (1,000,000 records through it would take as long as step 1 times
 *      ten); then a run over all of them. Aim: <= 10 s and <= 64 MB, the
 *      same memory at LIVE and at RECORDS.
 *  Each run's figures are checked against what was loaded (records audited
 *  and in error). Printed beside the same run's redis-benchmark yardstick.
 *  Asserts nothing; tests/bench/run runs it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_audit.h"
#include "crm_clock.h"
#include "crm_harness.h"
#include "crm_keys.h"

#define S_DEALERS 100
#define S_BATCH 1000

static crm_h_sys_t s_sys;

static double s_secs(int64_t us) { return (double) us / 1e6; }

static long s_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

/* user + system CPU seconds of a process so far */
static double s_cpu(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

static void s_dealer_id(int d, char *out, size_t size) { snprintf(out, size, "D%03d", d); }

/* Record n of the network: which dealer, and whether it is in error. */
static bool s_bad(long long n) { return n % 10 == 3; }

static void s_write_records(long long first, long long count)
{
    crm_tx_t *tx = crm_tx_new("bench", 0);
    for (long long n = first; n < first + count; n++) {
        char key[48], mobile[32], dealer[8];
        snprintf(key, sizeof key, "crm:cust:{C%lld}", n);
        snprintf(mobile, sizeof mobile, "139%08lld", n);
        s_dealer_id((int) (n % S_DEALERS), dealer, sizeof dealer);
        crm_tx_cmd(tx,
                   "HSET %s name 客户%lld mobile %s address 广州市天河区体育西路%lld号 postcode %s city 广州 "
                   "province 广东省 dealer_id %s stage owner sale_date 2026-01-05 %s %s",
                   key, n, mobile, n, s_bad(n) ? "51000" : "510000", dealer, n % 3 ? "email" : "remark",
                   n % 3 ? "kh@example.com" : "老客户");
        if ((n - first + 1) % S_BATCH == 0 || n == first + count - 1) {
            if (crm_store_pipeline(s_sys.store, tx) != 0) {
                fprintf(stderr, "bench: Redis: %s\n", crm_store_error(s_sys.store));
                exit(1);
            }
            crm_tx_reset(tx);
        }
    }
    crm_tx_destroy(&tx);
}

static long long s_cursor(void) { return crm_h_int(s_sys.store, "HGET crm:cursor:auditor customer"); }

/* The records' customer.recorded events, as crm-dispatcher publishes them. */
static double s_live(long long count)
{
    int64_t t0 = crm_mono_us();
    crm_tx_t *tx = crm_tx_new("dispatcher", 0);
    for (long long n = 0; n < count; n++) {
        char cid[24], dealer[8], rec[24];
        snprintf(cid, sizeof cid, "C%lld", n);
        s_dealer_id((int) (n % S_DEALERS), dealer, sizeof dealer);
        snprintf(rec, sizeof rec, "dms-%lld", n);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_customer_recorded);
        crm_new_id(ev.id, sizeof ev.id);
        ev.ts = crm_now_ms();
        snprintf(ev.producer, sizeof ev.producer, "dispatcher");
        char channel[24];
        snprintf(channel, sizeof channel, "dealer:%s", dealer);
        CRM_SET_STR(&ev, customer_recorded, customer_id, cid);
        CRM_SET_STR(&ev, customer_recorded, dealer_id, dealer);
        CRM_SET_STR(&ev, customer_recorded, record_id, rec);
        CRM_SET_STR(&ev, customer_recorded, channel, channel);
        CRM_SET_BOOL(&ev, customer_recorded, created, true);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        if ((n + 1) % S_BATCH == 0 || n == count - 1) {
            crm_h_sys_commit(&s_sys, tx);
            crm_tx_reset(tx);
        }
    }
    crm_tx_destroy(&tx);
    long long last = crm_h_int(s_sys.store, "GET crm:{customer}:seq");
    while (s_cursor() < last)
        usleep(2000);
    return s_secs(crm_mono_us() - t0);
}

/* The records beyond the live ones, as crm-auditor keeps them for runs. */
static void s_write_files(long long first, long long count)
{
    crm_tx_t *tx = crm_tx_new("bench", 0);
    for (long long n = first; n < first + count; n++) {
        char dealer[8], cid[24], summary[64];
        s_dealer_id((int) (n % S_DEALERS), dealer, sizeof dealer);
        snprintf(cid, sizeof cid, "C%lld", n);
        unsigned long long fail = (s_bad(n) ? CRM_RULE_BIT(CRM_RULE_postcode) : 0) |
                                  (n % 3 ? 0 : CRM_RULE_BIT(CRM_RULE_email));
        snprintf(summary, sizeof summary, "%s %llx 0 -1", CRM_AUDIT_RULESET, fail);
        crm_tx_cmd(tx, "HSET " CRM_KEY_AUDIT_FILES_FMT " %s %s", dealer, cid, summary);
        if ((n - first + 1) % S_BATCH == 0 || n == first + count - 1) {
            if (crm_store_pipeline(s_sys.store, tx) != 0) {
                fprintf(stderr, "bench: Redis: %s\n", crm_store_error(s_sys.store));
                exit(1);
            }
            crm_tx_reset(tx);
        }
    }
    crm_tx_destroy(&tx);
}

/* audit.run over every dealer; seconds until done. */
static double s_run(char *id, size_t size)
{
    int64_t t0 = crm_mono_us();
    crm_h_audit_ask(&s_sys, "audit", NULL, NULL, NULL, id, size);
    for (;;) {
        redisReply *r = crm_store_cmd(s_sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " state", id);
        bool done = r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "done");
        freeReplyObject(r);
        if (done)
            break;
        usleep(5000);
    }
    return s_secs(crm_mono_us() - t0);
}

static void s_check(const char *id, long long records)
{
    long long audited = crm_h_int(s_sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " audited", id);
    long long in_error = crm_h_int(s_sys.store, "HGET " CRM_KEY_AUDIT_RUN_FMT " in_error", id);
    long long want = 0;
    for (long long n = 0; n < records; n++)
        want += s_bad(n);
    printf("  figures: %lld audited (%s), %lld in error (%s)\n", audited, audited == records ? "as loaded" : "WRONG",
           in_error, in_error == want ? "as loaded" : "WRONG");
}

int main(int argc, char **argv)
{
    long long records = argc > 1 ? atoll(argv[1]) : 1000000, live = argc > 2 ? atoll(argv[2]) : 100000;
    if (records < 1 || live < 1 || live > records) {
        fprintf(stderr, "usage: crm-bench-audit [RECORDS [LIVE]] (LIVE <= RECORDS)\n");
        return 2;
    }
    if (crm_h_sys_start(&s_sys, false, false) != 0) {
        fprintf(stderr, "bench: cannot start redis-server\n");
        return 1;
    }
    printf("crm-bench-audit: %lld records across %d dealers (%lld through the live path)\n", records, S_DEALERS, live);
    double yard = crm_h_redis_benchmark(&s_sys.redis);
    printf("  yardstick: redis-benchmark SET %.0f requests/s (same Redis, same run)\n", yard);
    /* the dealer registry, as crm-dispatcher keeps it */
    for (int d = 0; d < S_DEALERS; d++) {
        char dealer[8];
        s_dealer_id(d, dealer, sizeof dealer);
        redisReply *r = crm_store_cmd(s_sys.store, "SADD " CRM_KEY_DEALERS " %s", dealer);
        freeReplyObject(r);
        r = crm_store_cmd(s_sys.store, "HSET " CRM_KEY_DEALER_FMT " name 经销商%d region %s state active", dealer, d,
                          d % 2 ? "华南" : "华东");
        freeReplyObject(r);
    }
    static const char *const env[] = {"CRM_AUDIT_SCHEDULE=none", "CRM_LOG_LEVEL=warn", NULL};
    pid_t pid = crm_h_sys_spawn(&s_sys, "auditor", env);

    s_write_records(0, live);
    double c0 = s_cpu(pid), r0 = s_cpu(s_sys.redis.pid);
    double t = s_live(live);
    double c1 = s_cpu(pid), r1 = s_cpu(s_sys.redis.pid);
    char sh[64];
    printf("1. live findings: %lld record changes in %.2f s = %.0f changes/s, %s (aim >= 10,000/s)\n", live, t,
           (double) live / t, crm_h_share((double) live / t, yard, sh, sizeof sh));
    printf("  CPU: crm-auditor %.0f%%, redis-server %.0f%% of the time\n", 100 * (c1 - c0) / t, 100 * (r1 - r0) / t);

    long live_rss = s_status_kb(pid, "VmRSS"), live_hwm = s_status_kb(pid, "VmHWM");
    printf("  crm-auditor after it: VmRSS %ld KB, VmHWM %ld KB (the bus's backlog: the events came faster than they "
           "were applied and waited in its subscriber queue, at most 100,000 messages)\n",
           live_rss, live_hwm);
    /* the runs, by a crm-auditor of their own: its memory is theirs */
    crm_h_sys_kill(&s_sys, "auditor", SIGTERM);
    pid = crm_h_sys_spawn(&s_sys, "auditor", env);
    char id[32];
    t = s_run(id, sizeof id);
    printf("2. run %s over %lld records: %.2f s = %.0f records/s, %s; crm-auditor VmRSS %ld KB, VmHWM %ld KB\n", id,
           live, t, (double) live / t, crm_h_share((double) live / t, yard, sh, sizeof sh), s_status_kb(pid, "VmRSS"),
           s_status_kb(pid, "VmHWM"));
    s_check(id, live);
    long hwm_live = s_status_kb(pid, "VmRSS");

    if (records > live) {
        s_write_files(live, records - live);
        t = s_run(id, sizeof id);
        long rss = s_status_kb(pid, "VmRSS");
        printf("3. run %s over %lld records: %.2f s = %.0f records/s, %s (aim <= 10 s); crm-auditor VmRSS %ld KB "
               "(%+ld KB against %lld records), VmHWM %ld KB (aim <= 65,536 KB)\n",
               id, records, t, (double) records / t, crm_h_share((double) records / t, yard, sh, sizeof sh), rss,
               rss - hwm_live, live, s_status_kb(pid, "VmHWM"));
        s_check(id, records);
    }
    crm_h_sys_stop(&s_sys);
    return 0;
}
