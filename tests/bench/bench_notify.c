/*  crm-bench-notify: crm-notifier's sends per second, on demand.
 *
 *      crm-bench-notify [COUNT]     (default 10,000)
 *
 *  A private redis-server, the local peers of tests/peers (the HTTP server
 *  as SMS gateway and dealer endpoint, the SMTP sink; neither keeps
 *  bodies) and crm-notifier (Release build, no quiet hours, no caps,
 *  16 HTTP lanes, 4 SMTP lanes). For each channel: COUNT notifications are
 *  asked for with a not_before 4 s ahead, so that they are all kept and
 *  queued before the first may go; the figure is COUNT / the time from that
 *  moment until the last is recorded as sent (crm:metrics:notifier sent).
 *  Aim (issue): >= 2,000/s to the HTTP sink. BENCH_ONLY=webhook|sms|email
 *  runs one channel. Printed beside the same run's
 *  redis-benchmark yardstick. Asserts nothing; tests/bench/run runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_h_notify.h"
#include "crm_harness.h"
#include "crm_keys.h"

static long long s_sent(crm_h_ntf_t *f)
{
    redisReply *r = crm_store_cmd(f->sys.store, "HGET " CRM_KEY_NOTIFY_METRICS " sent");
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

static double s_yard;

/* Asks for `count` notifications of one kind; returns the rate, or -1. */
static double s_run(crm_h_ntf_t *f, const char *kind, long long count)
{
    long long before = s_sent(f);
    int64_t go = crm_now_ms() + 4000;
    int64_t t0 = crm_mono_ms();
    for (long long i = 0; i < count;) {
        crm_tx_t *tx = crm_tx_new("scheduler", 10000000);
        for (int k = 0; k < 500 && i < count; k++, i++) {
            char rid[64], p[64];
            snprintf(rid, sizeof rid, "bench:%s:%lld", kind, i);
            crm_msg_t m;
            crm_msg_init(&m, CRM_T_notify_request);
            CRM_SET_STR(&m, notify_request, request_id, rid);
            if (!strcmp(kind, "webhook")) {
                CRM_SET_STR(&m, notify_request, channel, "dealer");
                CRM_SET_STR(&m, notify_request, to, "D1");
                CRM_SET_STR(&m, notify_request, template, "followup_overdue");
                snprintf(p, sizeof p, "record=K%lld", i);
                const char *ps[] = {"manager_id=M1", "consultant_id=S1", "customer_id=C1", p};
                for (int j = 0; j < 4; j++)
                    crm_strs_push(&m.body.notify_request.params, ps[j]);
            } else if (!strcmp(kind, "sms")) {
                CRM_SET_STR(&m, notify_request, channel, "sms");
                CRM_SET_STR(&m, notify_request, to, "13812345678");
                CRM_SET_STR(&m, notify_request, template, "testdrive_reminder");
                CRM_SET_STR(&m, notify_request, customer_id, "C1");
                crm_strs_push(&m.body.notify_request.params, "at=2026-12-05 10:00");
            } else {
                CRM_SET_STR(&m, notify_request, channel, "email");
                CRM_SET_STR(&m, notify_request, to, "crm");
                CRM_SET_STR(&m, notify_request, template, "testdrive_escalated_crm");
                snprintf(p, sizeof p, "testdrive_id=T%lld", i);
                const char *ps[] = {p, "dealer_id=D1", "at=2026-12-05 10:00", "reason=no_ack_24h"};
                for (int j = 0; j < 4; j++)
                    crm_strs_push(&m.body.notify_request.params, ps[j]);
            }
            m.body.notify_request.has.params = true;
            CRM_SET_I64(&m, notify_request, not_before, go);
            crm_tx_emit(tx, &m);
            crm_msg_clear(&m);
        }
        crm_h_sys_commit(&f->sys, tx);
        crm_tx_destroy(&tx);
    }
    /* all kept before they may go */
    char set[48];
    snprintf(set, sizeof set, "ZCARD crm:due:notify_%s", kind);
    while (crm_now_ms() < go - 200) {
        redisReply *r = crm_store_cmd(f->sys.store, set);
        long long q = r ? r->integer : 0;
        freeReplyObject(r);
        if (q >= count)
            break;
        usleep(20000);
    }
    redisReply *r = crm_store_cmd(f->sys.store, set);
    long long queued = r ? r->integer : 0;
    freeReplyObject(r);
    double intake_s = (double) (crm_mono_ms() - t0) / 1000.0;
    while (crm_now_ms() < go)
        usleep(1000);
    int64_t start = crm_mono_ms(), until = start + 300000;
    while (s_sent(f) - before < count && crm_mono_ms() < until)
        usleep(2000);
    double secs = (double) (crm_mono_ms() - start) / 1000.0;
    long long done = s_sent(f) - before;
    char sh[64];
    double rate = secs > 0 ? (double) done / secs : 0;
    printf("%-8s %6lld queued (asked and kept in %.2f s), %6lld sent in %6.2f s: %8.0f sends/s, %s\n", kind, queued,
           intake_s, done, secs, rate, crm_h_share(rate, s_yard, sh, sizeof sh));
    fflush(stdout);
    return done == count && secs > 0 ? (double) done / secs : -1;
}

int main(int argc, char **argv)
{
    long long count = argc > 1 ? atoll(argv[1]) : 10000;
    if (count < 1) {
        fprintf(stderr, "usage: crm-bench-notify [COUNT]\n");
        return 2;
    }
    const char *env[] = {"CRM_QUIET_TRANSACTIONAL=none", "CRM_QUIET_MARKETING=none", "CRM_CAP_SMS=0",
                         "CRM_CAP_EMAIL=0",              "CRM_WEBHOOK_LANES=16",     "CRM_SMS_LANES=16",
                         "CRM_EMAIL_LANES=4",            "CRM_NOTIFY_MAX_INFLIGHT=1024",
                         "CRM_LOG_LEVEL=warn",           "CRM_SMS_PULL_MS=200",      NULL};
    crm_h_ntf_t f;
    crm_h_ntf_up_at(&f, 0, env, (const char *const[]){"--no-log-data", NULL});
    printf("autocrm notifier benchmark: %ld cores, %lld notifications per channel, peers of tests/peers "
           "(Python asyncio HTTP server, aiosmtpd)\n",
           sysconf(_SC_NPROCESSORS_ONLN), count);
    double yard = s_yard = crm_h_redis_benchmark(&f.sys.redis);
    printf("yardstick   redis-benchmark -P 16 -t set: %.0f SET/s (same Redis, same run)\n", yard);
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/d1", f.http_port);
    if (crm_h_sys_crmctl(&f.sys, "webhook", "set", "D1", "--url", url, NULL) != 0) {
        fprintf(stderr, "crm-bench-notify: webhook set failed\n");
        crm_h_ntf_down(&f);
        return 1;
    }
    const char *only = getenv("BENCH_ONLY"); /* webhook, sms or email: that channel alone */
    double w = !only || !strcmp(only, "webhook") ? s_run(&f, "webhook", count) : 0;
    double s = !only || !strcmp(only, "sms") ? s_run(&f, "sms", count) : 0;
    double e = !only || !strcmp(only, "email") ? s_run(&f, "email", count) : 0;
    printf("aim: >= 2,000 sends/s to the HTTP sink:%s%s%s%s\n", !only || !strcmp(only, "webhook") ? " webhooks " : "",
           !only || !strcmp(only, "webhook") ? (w >= 2000 ? "met" : "NOT met") : "",
           !only || !strcmp(only, "sms") ? ", SMS " : "", !only || !strcmp(only, "sms") ? (s >= 2000 ? "met" : "NOT met") : "");
    (void) e;
    crm_h_ntf_down(&f);
    return 0;
}
