/*  crm-testpeer: a service made for the bus tests and the benchmark.
 *
 *  CRM_TEST_ROLE=pub  publishes audit.finding events numbered 1..--emit
 *                     (customer_id = the number), --batch per transaction,
 *                     at --rate per second (0: as fast as it can); after a
 *                     restart it goes on from the stream's latest number;
 *                     --delay-ms lets subscribers connect first.
 *  CRM_TEST_ROLE=sub  applies them: RPUSH crm:test:applied <number> in the
 *                     same transaction as its cursor, and, with --latency,
 *                     RPUSH crm:test:latency_us <publish-to-apply µs>.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "crm_service.h"

static int64_t s_emit, s_batch, s_rate, s_emitted, s_started_us, s_base, s_delay_us;
static bool s_latency;

static int64_t s_wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

static crm_handled_t testpeer_on_finding(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) svc;
    const crm_body_audit_finding_t *b = &msg->body.audit_finding;
    crm_tx_cmd(tx, "RPUSH crm:test:applied %s", b->customer_id);
    if (s_latency && b->message && !strncmp(b->message, "t=", 2))
        crm_tx_cmd(tx, "RPUSH crm:test:latency_us %lld",
                   (long long) (s_wall_us() - atoll(b->message + 2)));
    return CRM_APPLIED;
}

static void testpeer_tick(crm_service_t *svc)
{
    if (crm_mono_us() < s_started_us)
        return;
    int64_t allowed = s_rate ? (crm_mono_us() - s_started_us) * s_rate / 1000000 - (s_emitted - s_base)
                             : 200 * s_batch;
    while (s_emitted < s_emit && allowed > 0) {
        int64_t k = s_batch;
        if (k > s_emit - s_emitted)
            k = s_emit - s_emitted;
        if (k > allowed)
            k = allowed;
        crm_tx_t *tx = crm_service_tx(svc);
        for (int64_t i = 1; i <= k; i++) {
            crm_msg_t m;
            char num[24], stamp[32];
            snprintf(num, sizeof num, "%lld", (long long) (s_emitted + i));
            snprintf(stamp, sizeof stamp, "t=%lld", (long long) s_wall_us());
            crm_msg_init(&m, CRM_T_audit_finding);
            CRM_SET_STR(&m, audit_finding, customer_id, num);
            CRM_SET_STR(&m, audit_finding, field, "test");
            CRM_SET_STR(&m, audit_finding, code, "numbered");
            CRM_SET_STR(&m, audit_finding, severity, "warning");
            CRM_SET_STR(&m, audit_finding, message, stamp);
            crm_tx_emit(tx, &m);
            crm_msg_clear(&m);
        }
        if (crm_service_commit(svc, tx) != 0) {
            crm_error("testpeer.commit_failed", "at=%lld", (long long) s_emitted);
            return;
        }
        s_emitted += k;
        allowed -= k;
    }
}

static int testpeer_start(crm_service_t *svc)
{
    const char *e = crm_service_opt(svc, "emit"), *b = crm_service_opt(svc, "batch"),
               *r = crm_service_opt(svc, "rate"), *l = crm_service_opt(svc, "latency");
    s_emit = atoll(e);
    s_batch = atoll(b) > 0 ? atoll(b) : 1;
    s_rate = atoll(r);
    s_latency = l && !strcmp(l, "1");
    redisReply *seq = crm_store_cmd(crm_service_store(svc), "GET " CRM_KEY_SEQ_FMT, "audit");
    s_base = s_emitted = seq && seq->type == REDIS_REPLY_STRING ? atoll(seq->str) : 0;
    freeReplyObject(seq);
    s_delay_us = atoll(crm_service_opt(svc, "delay-ms")) * 1000;
    s_started_us = crm_mono_us() + s_delay_us;
    return 0;
}

static const crm_opt_t testpeer_opts[] = {
    {"emit", "CRM_TEST_EMIT", "0", "pub: publish events up to this number", NULL},
    {"batch", "CRM_TEST_BATCH", "1", "pub: events per transaction", NULL},
    {"rate", "CRM_TEST_RATE", "0", "pub: events per second, 0 for as fast as possible", NULL},
    {"latency", "CRM_TEST_LATENCY", "0", "sub: record publish-to-apply latency", NULL},
    {"delay-ms", "CRM_TEST_DELAY_MS", "0", "pub: wait this long before publishing (subscribers connect)", NULL},
    CRM_OPT_END,
};

static const crm_handler_t testpeer_handlers[] = {
    {"audit.finding", testpeer_on_finding, true},
    {NULL, NULL, false},
};

static const crm_tick_t testpeer_ticks[] = {
    {"emit", 2, testpeer_tick},
    {NULL, 0, NULL},
};

static const crm_service_def_t testpub_def = {
    .name = "testpub",
    .summary = "Bus test publisher.",
    .pub_default = "tcp://127.0.0.1:7199",
    .ticks = testpeer_ticks,
    .opts = testpeer_opts,
    .on_start = testpeer_start,
};

static const crm_service_def_t testsub_def = {
    .name = "testsub",
    .summary = "Bus test subscriber.",
    .pub_default = "tcp://127.0.0.1:7198",
    .handlers = testpeer_handlers,
    .opts = testpeer_opts,
    .on_start = testpeer_start,
};

int main(int argc, char **argv)
{
    const char *role = getenv("CRM_TEST_ROLE");
    return crm_service_main(role && !strcmp(role, "sub") ? &testsub_def : &testpub_def, argc, argv);
}
