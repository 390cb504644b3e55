/*  crm-bench-intake: acknowledged leads per second, on demand.
 *
 *  Against a private redis-server with AOF (everysec) and a real crm-intake:
 *   1. the yardstick: redis-benchmark -P 16 -t set, from the same run;
 *   2. acknowledged leads/s with 1 and with 16 concurrent submitters (each
 *      a REQ socket waiting for every answer, as a website back end does);
 *   3. the time to import a 100,000-row CSV with crmctl;
 *   4. two crm-intake instances on the same Redis (issue 12, point 2): 16
 *      submitters split 8/8 between their endpoints, beside one instance
 *      with the same 16 and the same logging (info, to count the batches
 *      whose commit met a WATCH conflict: "request.conflict" lines).
 *  Aims (issue 3): >= 25k leads/s with 16 submitters; 100k rows <= 5 s.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <czmq.h>

#include "crm_clock.h"
#include "crm_h_bench.h"
#include "crm_harness.h"

static crm_h_redis_t s_redis;
static char s_endpoint[64], s_endpoint2[64];

typedef struct {
    int id, count;
    long ok;
    const char *endpoint;
} s_worker_t;

static void *s_submitter(void *arg)
{
    s_worker_t *w = arg;
    w->ok = crm_h_bench_submit(w->endpoint ? w->endpoint : s_endpoint, "bench", w->id, w->count, 10000);
    return NULL;
}

/* `workers` submitters of `per_worker` leads each; with `split`, the second
   half sends to s_endpoint2. Acknowledged leads/s. */
static double s_run_on(int workers, int per_worker, int base, bool split)
{
    pthread_t th[64];
    s_worker_t w[64];
    int64_t t0 = crm_mono_us();
    for (int i = 0; i < workers; i++) {
        w[i] = (s_worker_t){.id = base + i, .count = per_worker,
                            .endpoint = split && i >= workers / 2 ? s_endpoint2 : s_endpoint};
        pthread_create(&th[i], NULL, s_submitter, &w[i]);
    }
    long ok = 0;
    for (int i = 0; i < workers; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    double secs = (double) (crm_mono_us() - t0) / 1e6;
    return (double) ok / secs;
}

static double s_run(int workers, int per_worker, int base)
{
    return s_run_on(workers, per_worker, base, false);
}

/* crm-intake on `endpoint` with its own publisher and control endpoint,
   logging at info into `log`; up once it reports itself running. */
static pid_t s_intake(crm_store_t *store, const char *endpoint, const char *log)
{
    char env[5][200];
    snprintf(env[0], sizeof env[0], "CRM_REDIS_URL=%s", s_redis.url);
    snprintf(env[1], sizeof env[1], "CRM_INTAKE_ENDPOINT=%s", endpoint);
    snprintf(env[2], sizeof env[2], "CRM_PUB=tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(env[3], sizeof env[3], "CRM_LOG_LEVEL=info");
    snprintf(env[4], sizeof env[4], "CRM_CONTROL=tcp://127.0.0.1:%d", crm_h_free_port());
    const char *envp[] = {env[0], env[1], env[2], env[3], env[4], NULL};
    redisReply *r = crm_store_cmd(store, "DEL crm:svc:intake");
    freeReplyObject(r);
    pid_t pid = crm_h_spawn("crm-intake", NULL, envp, log);
    crm_h_wait_int(store, 1, 10000, "EXISTS crm:svc:intake");
    return pid;
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    if (crm_h_redis_start(&s_redis, true) != 0)
        return 1;
    crm_store_t *store = crm_store_new(s_redis.url, 5000);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", crm_h_free_port());
    char env[5][200];
    snprintf(env[0], sizeof env[0], "CRM_REDIS_URL=%s", s_redis.url);
    snprintf(env[1], sizeof env[1], "CRM_INTAKE_ENDPOINT=%s", s_endpoint);
    snprintf(env[2], sizeof env[2], "CRM_PUB=tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(env[3], sizeof env[3], "CRM_LOG_LEVEL=warn");
    snprintf(env[4], sizeof env[4], "CRM_CONTROL=tcp://127.0.0.1:%d", crm_h_free_port());
    const char *envp[] = {env[0], env[1], env[2], env[3], env[4], NULL};
    printf("autocrm intake benchmark: %ld cores, redis-server with appendonly yes, appendfsync everysec%s\n",
           sysconf(_SC_NPROCESSORS_ONLN), crm_h_aof_hold(store));
    double yard = crm_h_redis_benchmark(&s_redis);
    char sh[64];
    printf("yardstick   redis-benchmark -P 16 -t set: %.0f SET/s (same Redis, same run)\n", yard);
    redisReply *r = crm_store_cmd(store, "FLUSHALL");
    freeReplyObject(r);
    pid_t intake = crm_h_spawn("crm-intake", NULL, envp, "/dev/null");
    crm_h_wait_int(store, 1, 10000, "EXISTS crm:svc:intake");

    long long aof = crm_h_aof_mark(store);
    double one = s_run(1, 5000, 0);
    printf("submitters  1: %.0f acknowledged leads/s, %s (5000 leads, each answered after commit)%s\n", one,
           crm_h_share(one, yard, sh, sizeof sh), crm_h_aof_note(store, aof));
    aof = crm_h_aof_mark(store);
    double many = s_run(16, 2000, 100);
    printf("submitters 16: %.0f acknowledged leads/s, %s (32000 leads)%s\n", many, crm_h_share(many, yard, sh, sizeof sh),
           crm_h_aof_note(store, aof));

    /* 100k-row import. */
    char csv[300];
    crm_h_path(&s_redis, "show.csv", csv, sizeof csv);
    FILE *c = fopen(csv, "w");
    fputs("姓名,手机,城市,省份,邮编,地址,意向车型\n", c);
    for (int i = 0; i < 100000; i++)
        fprintf(c, "车展客户%d,136%08d,成都,四川,610041,成都市武侯区%d号,508L\n", i, i, i);
    fclose(c);
    char out[300];
    crm_h_path(&s_redis, "import.txt", out, sizeof out);
    const char *args[] = {"lead", "import", csv, NULL};
    const char *cenv[] = {env[0], env[1], NULL};
    long long before = crm_h_int(store, "XLEN crm:{lead}:events");
    aof = crm_h_aof_mark(store);
    int64_t t0 = crm_mono_us();
    pid_t imp = crm_h_spawn("crmctl", args, cenv, out);
    int status;
    waitpid(imp, &status, 0);
    double secs = (double) (crm_mono_us() - t0) / 1e6;
    long long created = crm_h_int(store, "XLEN crm:{lead}:events") - before;
    printf("import      100000-row CSV: %.2f s, %.0f rows/s, %s, exit %d, %lld leads created%s\n", secs,
           100000 / secs, crm_h_share(100000 / secs, yard, sh, sizeof sh), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           created, crm_h_aof_note(store, aof));
    crm_h_stop(intake, SIGTERM, 5000);

    /* 4. One instance, then two, logging at info. */
    char log1[300], log2[300], log0[300];
    crm_h_path(&s_redis, "intake-one.log", log0, sizeof log0);
    crm_h_path(&s_redis, "intake-a.log", log1, sizeof log1);
    crm_h_path(&s_redis, "intake-b.log", log2, sizeof log2);
    snprintf(s_endpoint2, sizeof s_endpoint2, "tcp://127.0.0.1:%d", crm_h_free_port());
    intake = s_intake(store, s_endpoint, log0);
    double single = s_run(16, 2000, 300);
    crm_h_stop(intake, SIGTERM, 5000);
    int c0 = crm_h_file_count(log0, "request.conflict"), a0 = crm_h_file_count(log0, "lead.accepted");
    printf("one instance,  16 submitters, info log: %.0f acknowledged leads/s, %s (32000 leads; %d accepted in its "
           "log, %d request.conflict)\n",
           single, crm_h_share(single, yard, sh, sizeof sh), a0, c0);
    intake = s_intake(store, s_endpoint, log1);
    pid_t intake2 = s_intake(store, s_endpoint2, log2);
    double two = s_run_on(16, 2000, 400, true);
    crm_h_stop(intake, SIGTERM, 5000);
    crm_h_stop(intake2, SIGTERM, 5000);
    int c1 = crm_h_file_count(log1, "request.conflict"), c2 = crm_h_file_count(log2, "request.conflict");
    int a1 = crm_h_file_count(log1, "lead.accepted"), a2 = crm_h_file_count(log2, "lead.accepted");
    printf("two instances, 8 + 8 submitters, info log: %.0f acknowledged leads/s in all, %s, %.2fx one instance "
           "(32000 leads; accepted %d + %d in their logs; request.conflict %d + %d)\n",
           two, crm_h_share(two, yard, sh, sizeof sh), single > 0 ? two / single : 0, a1, a2, c1, c2);
    crm_store_destroy(&store);
    crm_h_redis_stop(&s_redis);
    return 0;
}
