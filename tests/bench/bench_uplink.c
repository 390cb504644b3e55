/*  crm-bench-uplink: what dealers' systems send back, on demand.
 *
 *  A private redis-server (AOF everysec), crm-dispatcher with its gateway,
 *  dealers with their certificates (made by crmctl, as the carmaker makes
 *  them):
 *   1. one dealer client sends 20,000 follow-up records (200 unanswered at
 *      most, as crm_h_send_all does): records/s, each answered after its
 *      commit;
 *   2. 50 dealer clients at once, 2,000 records each: records/s in all;
 *   3. crmctl customer import of a 100,000-row customer file (seed-003
 *      headers, UTF-8): rows/s.
 *  Printed beside the same run's redis-benchmark yardstick (SET, pipelined
 *  16, 50 clients). Asserts nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_harness.h"

#define S_ONE 20000
#define S_CLIENTS 50
#define S_EACH 2000
#define S_ROWS 100000

static crm_h_sys_t s_sys;
static char s_server_key[41];

static void s_secret(const char *dealer, char *out, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "%s.secret", dealer);
    crm_h_path(&s_sys.redis, name, out, size);
}

static int s_dealer(const char *dealer)
{
    char secret[300];
    s_secret(dealer, secret, sizeof secret);
    char rec[64];
    snprintf(rec, sizeof rec, "bench-%s-staff", dealer);
    return crm_h_sys_crmctl(&s_sys, "dealer", "add", dealer, "--name", "基准店", "--province", "广东", "--city", "深圳",
                            "--capacity", "0", NULL) ||
           crm_h_sys_crmctl(&s_sys, "dealer", "cert", dealer, "--out", secret, NULL) ||
           crm_h_sys_crmctl(&s_sys, "staff", "add", "S1", "--dealer", dealer, "--role", "consultant", "--name", "顾问",
                            NULL);
}

typedef struct {
    const char *dealer;
    int n;
    int answered, ok;
    double seconds;
} s_job_t;

static void s_encode(crm_msg_t *m, void **data, size_t *len, char *id)
{
    crm_new_id(m->id, CRM_ID_MAX);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "bench");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    crm_msg_encode(m, &buf, NULL);
    snprintf(id, CRM_ID_MAX, "%s", m->id);
    *data = buf.data;
    *len = buf.size;
    crm_msg_clear(m);
}

/* One dealer's customer, then `n` follow-ups about it. */
static void *s_run(void *arg)
{
    s_job_t *job = arg;
    char secret[300];
    s_secret(job->dealer, secret, sizeof secret);
    zsock_t *sock = crm_h_dealer_socket(&s_sys, secret, s_server_key);
    if (!sock)
        return NULL;
    void **frames = calloc((size_t) job->n + 1, sizeof *frames);
    size_t *lens = calloc((size_t) job->n + 1, sizeof *lens);
    char(*ids)[CRM_ID_MAX] = calloc((size_t) job->n + 1, sizeof *ids);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_customer_file);
    char rec[64], cid[32];
    snprintf(rec, sizeof rec, "%s-C1", job->dealer);
    CRM_SET_STR(&m, customer_file, record_id, rec);
    CRM_SET_STR(&m, customer_file, name, "基准客户");
    s_encode(&m, &frames[0], &lens[0], ids[0]);
    crm_h_send_all(sock, frames, lens, ids, 1, 1, 2000, 10000, NULL, NULL, NULL);
    free(frames[0]);
    /* the customer id: the dealer's only one */
    crm_store_t *store = crm_store_new(s_sys.redis.url, 5000); /* one connection per client thread */
    redisReply *r = store ? crm_store_cmd(store, "SRANDMEMBER crm:dealer:%s:customers", job->dealer) : NULL;
    snprintf(cid, sizeof cid, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "-");
    freeReplyObject(r);
    crm_store_destroy(&store);
    for (int i = 0; i < job->n; i++) {
        crm_msg_init(&m, CRM_T_followup_record);
        snprintf(rec, sizeof rec, "%s-F%d", job->dealer, i);
        CRM_SET_STR(&m, followup_record, record_id, rec);
        CRM_SET_STR(&m, followup_record, customer_id, cid);
        CRM_SET_STR(&m, followup_record, consultant_id, "S1");
        CRM_SET_STR(&m, followup_record, result, "answered");
        CRM_SET_STR(&m, followup_record, content, "电话回访，客户考虑中");
        CRM_SET_I64(&m, followup_record, next_at, crm_now_ms() + 3 * 86400000LL);
        CRM_SET_STR(&m, followup_record, next_content, "再次电话");
        s_encode(&m, &frames[i], &lens[i], ids[i]);
    }
    int64_t t0 = crm_mono_us();
    job->answered = crm_h_send_all(sock, frames, lens, ids, job->n, 200, 5000, 30000, NULL, NULL, &job->ok);
    job->seconds = (double) (crm_mono_us() - t0) / 1e6;
    for (int i = 0; i < job->n; i++)
        free(frames[i]);
    free(frames), free(lens), free(ids);
    zsock_destroy(&sock);
    return NULL;
}

int main(void)
{
    if (crm_h_sys_start(&s_sys, true, false) != 0)
        return 1;
    crm_h_sys_env(&s_sys, "CRM_LOG_LEVEL=warn");
    crm_h_sys_spawn(&s_sys, "dispatcher", NULL);
    int rc = s_dealer("B0");
    char name[S_CLIENTS][16];
    for (int i = 0; i < S_CLIENTS && rc == 0; i++) {
        snprintf(name[i], sizeof name[i], "B%d", i + 1);
        rc = s_dealer(name[i]);
    }
    zcert_t *server = rc == 0 ? zcert_load(s_sys.server_cert) : NULL;
    if (!server) {
        fprintf(stderr, "bench set-up failed: %s\n", s_sys.out);
        crm_h_sys_stop(&s_sys);
        return 1;
    }
    snprintf(s_server_key, sizeof s_server_key, "%s", zcert_public_txt(server));
    zcert_destroy(&server);
    double yard = crm_h_redis_benchmark(&s_sys.redis);
    char sh[64];
    printf("yardstick: redis-benchmark SET (pipeline 16, 50 clients) %.0f requests/s, same Redis, same run\n", yard);

    s_job_t one = {"B0", S_ONE, 0, 0, 0};
    s_run(&one);
    double rate = one.seconds > 0 ? one.answered / one.seconds : 0;
    printf("uplink, one dealer client: %d follow-ups in %.2f s = %.0f records/s, %s (%d ok)\n", one.answered,
           one.seconds, rate, crm_h_share(rate, yard, sh, sizeof sh), one.ok);

    pthread_t th[S_CLIENTS];
    s_job_t jobs[S_CLIENTS];
    int64_t t0 = crm_mono_us();
    for (int i = 0; i < S_CLIENTS; i++) {
        jobs[i] = (s_job_t){name[i], S_EACH, 0, 0, 0};
        pthread_create(&th[i], NULL, s_run, &jobs[i]);
    }
    int total = 0, oks = 0;
    for (int i = 0; i < S_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        total += jobs[i].answered;
        oks += jobs[i].ok;
    }
    double secs = (double) (crm_mono_us() - t0) / 1e6;
    rate = secs > 0 ? total / secs : 0;
    printf("uplink, %d dealer clients at once: %d follow-ups in %.2f s = %.0f records/s, %s (%d ok; set-up of each "
           "client included)\n",
           S_CLIENTS, total, secs, rate, crm_h_share(rate, yard, sh, sizeof sh), oks);

    /* 3. a customer file of S_ROWS rows through crmctl */
    char path[300];
    crm_h_path(&s_sys.redis, "customers.csv", path, sizeof path);
    FILE *csv = fopen(path, "w");
    if (csv) {
        fprintf(csv, "档案编号,姓名,性别,手机,通信地址,邮编,城市,省份,车型,底盘号,开票日期\n");
        for (int i = 0; i < S_ROWS; i++)
            fprintf(csv, "R%d,客户%d,男,139%08d,深圳市南山区%d号,518057,深圳,广东,408,,2026-0%d-1%d\n", i, i, i, i,
                    1 + i % 9, i % 10);
        fclose(csv);
        t0 = crm_mono_us();
        int irc = crm_h_sys_crmctl(&s_sys, "customer", "import", path, "--dealer", "B0", NULL);
        secs = (double) (crm_mono_us() - t0) / 1e6;
        rate = secs > 0 ? S_ROWS / secs : 0;
        printf("customer-file import (crmctl customer import, %d rows): %.2f s = %.0f rows/s, %s (exit %d)\n", S_ROWS,
               secs, rate, crm_h_share(rate, yard, sh, sizeof sh), irc);
    }
    crm_h_sys_stop(&s_sys);
    return 0;
}
