/*  crm-bench-bus: what the bus does on this machine, on demand.
 *
 *  Against a private redis-server with AOF (everysec), like production:
 *   1. the yardstick: redis-benchmark -P 16 -t set, from the same run;
 *   2. throughput: N events committed by a publisher in transactions of
 *      --batch, and applied by a subscriber (batched apply), events/s;
 *   3. latency: events at a fixed rate, publish-to-apply p50/p99/max.
 *  Aims (issue 2): >= 50k events/s with batching; p99 <= 2 ms at 5k/s.
 *  Run it with tests/bench/run; it is not part of the test suite.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_harness.h"

static crm_h_redis_t s_redis;
static char s_env[8][320];

static pid_t start(const char *role, const char *pub_ep, const char *const *extra)
{
    snprintf(s_env[0], sizeof s_env[0], "CRM_TEST_ROLE=%s", role);
    snprintf(s_env[1], sizeof s_env[1], "CRM_REDIS_URL=%s", s_redis.url);
    snprintf(s_env[2], sizeof s_env[2], "CRM_PEERS=%s", pub_ep);
    snprintf(s_env[3], sizeof s_env[3], "CRM_PUB=%s", !strcmp(role, "pub") ? pub_ep : "tcp://127.0.0.1:0");
    const char *env[10] = {s_env[0], s_env[1], s_env[2], s_env[3]};
    int n = 4;
    for (const char *const *e = extra; e && *e && n < 9; e++)
        env[n++] = *e;
    env[n] = NULL;
    return crm_h_spawn("tests/crm-testpeer", NULL, env, "/dev/null");
}

static int s_cmp(const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long long n = argc > 1 ? atoll(argv[1]) : 200000;
    int batch = argc > 2 ? atoi(argv[2]) : 256;
    long long rate = 5000, lat_n = 25000;
    if (crm_h_redis_start(&s_redis, getenv("BENCH_NOAOF") == NULL) != 0) {
        fprintf(stderr, "crm-bench-bus: cannot start redis-server\n");
        return 1;
    }
    crm_store_t *store = crm_store_new(s_redis.url, 5000);
    char pub_ep[64];
    snprintf(pub_ep, sizeof pub_ep, "tcp://127.0.0.1:%d", crm_h_free_port());
    printf("autocrm bus benchmark: %ld cores, redis-server with appendonly yes, appendfsync everysec\n",
           sysconf(_SC_NPROCESSORS_ONLN));

    double yard = crm_h_redis_benchmark(&s_redis);
    printf("yardstick   redis-benchmark -P 16 -t set: %.0f SET/s\n", yard);
    redisReply *r = crm_store_cmd(store, "FLUSHALL");
    freeReplyObject(r);

    /* Throughput. */
    char emit[48], bsz[48];
    snprintf(emit, sizeof emit, "CRM_TEST_EMIT=%lld", n);
    snprintf(bsz, sizeof bsz, "CRM_TEST_BATCH=%d", batch);
    const char *sub_env[] = {NULL};
    pid_t sub = start("sub", pub_ep, sub_env);
    usleep(300 * 1000);
    const char *pub_env[] = {emit, bsz, "CRM_TEST_DELAY_MS=1000", NULL};
    int64_t t0 = crm_mono_us() + 1000000;
    pid_t pub = start("pub", pub_ep, pub_env);
    int64_t t_commit = 0, t_apply = 0;
    while (crm_mono_us() - t0 < 120 * 1000000LL && (!t_commit || !t_apply)) {
        if (!t_commit && crm_h_int(store, "GET crm:{audit}:seq") >= n)
            t_commit = crm_mono_us() - t0;
        if (!t_apply && crm_h_int(store, "LLEN crm:test:applied") >= n)
            t_apply = crm_mono_us() - t0;
        usleep(2000);
    }
    crm_h_stop(pub, SIGTERM, 5000);
    crm_h_stop(sub, SIGTERM, 5000);
    if (!t_commit || !t_apply) {
        printf("throughput  did not finish in 120 s\n");
        return 1;
    }
    double committed = (double) n / ((double) t_commit / 1e6);
    double applied = (double) n / ((double) t_apply / 1e6);
    char sh1[64], sh2[64];
    printf("throughput  %lld events, %d per transaction: committed %.0f events/s (%s), applied by a "
           "subscriber %.0f events/s (%s) (aim >= 50000) %s\n",
           n, batch, committed, crm_h_share(committed, yard, sh1, sizeof sh1), applied,
           crm_h_share(applied, yard, sh2, sizeof sh2), applied >= 50000 ? "MET" : "MISSED");

    /* Latency at a fixed rate. */
    r = crm_store_cmd(store, "FLUSHALL");
    freeReplyObject(r);
    snprintf(emit, sizeof emit, "CRM_TEST_EMIT=%lld", lat_n);
    char rt[48];
    snprintf(rt, sizeof rt, "CRM_TEST_RATE=%lld", rate);
    const char *lsub_env[] = {"CRM_TEST_LATENCY=1", NULL};
    sub = start("sub", pub_ep, lsub_env);
    usleep(300 * 1000);
    /* Measured once the subscriber is connected: the first second's events
       would otherwise reach it through catch-up, not the live path. */
    const char *lpub_env[] = {emit, "CRM_TEST_BATCH=1", rt, "CRM_TEST_DELAY_MS=1000", NULL};
    pub = start("pub", pub_ep, lpub_env);
    crm_h_wait_int(store, lat_n, 120000, "LLEN crm:test:applied");
    crm_h_stop(pub, SIGTERM, 5000);
    crm_h_stop(sub, SIGTERM, 5000);
    r = crm_store_cmd(store, "LRANGE crm:test:latency_us 0 -1");
    if (!r || r->elements == 0) {
        printf("latency     no samples\n");
        return 1;
    }
    size_t m = r->elements;
    long long *v = malloc(m * sizeof *v);
    for (size_t i = 0; i < m; i++)
        v[i] = atoll(r->element[i]->str);
    freeReplyObject(r);
    qsort(v, m, sizeof *v, s_cmp);
    double p50 = (double) v[m / 2] / 1000.0, p99 = (double) v[m * 99 / 100] / 1000.0,
           max = (double) v[m - 1] / 1000.0;
    printf("latency     %zu events at %lld/s, publish to applied: p50 %.3f ms, p99 %.3f ms, max "
           "%.3f ms (aim p99 <= 2 ms) %s (yardstick %.0f SET/s)\n",
           m, rate, p50, p99, max, p99 <= 2.0 ? "MET" : "MISSED", yard);
    free(v);
    crm_store_destroy(&store);
    crm_h_redis_stop(&s_redis);
    return 0;
}
