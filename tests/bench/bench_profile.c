/*  crm-bench-profile: instructions and Redis round trips per unit of work.
 *
 *      tests/bench/profile            (runs this under callgrind; see there)
 *      crm-bench-profile [LEADS1 [LEADS16 [ROWS [DISPATCHES]]]]
 *                                     (defaults 1,000 4,000 5,000 1,000)
 *
 *  The paths of crm-bench-intake and crm-bench-dealer with small counts:
 *   1. LEADS1 leads from one submitter (a REQ socket waiting for each
 *      answer), 2. LEADS16 from 16, 3. crmctl lead import of a ROWS-row
 *      CSV, all into crm-intake; 4. DISPATCHES test drives requested
 *      (committed and published as crm-intake does, 10 per transaction),
 *      dispatched by crm-dispatcher and printed by crm-dealer.
 *  For each: the instructions (callgrind's Ir) of the service, of
 *  redis-server and of the client (this process's submitters, crmctl,
 *  crm-dealer), and redis-server's read events (round trips, from every
 *  client) and commands (INFO stats), per unit, as a markdown table. It
 *  only counts: nothing here knows how the services do their work. The
 *  bench's own INFO calls are taken off; in path 4 so is what the
 *  bench's commits of the requests cost (measured alone on a Redis of
 *  their own: they stand in for crm-intake). Without CRM_H_CALLGRIND
 *  (tests/bench/profile sets it) only the round trips are counted.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "crm_clock.h"
#include "crm_h_bench.h"
#include "crm_harness.h"

#define S_SELF "crm-bench-profile"
#define S_TD_PER_TX 10

/* Redis's calls by command (INFO commandstats), or their difference. */
#define S_CMDS 64
typedef struct {
    int n;
    struct {
        char name[40];
        long long calls;
    } v[S_CMDS];
} s_mix_t;

typedef struct {
    const char *path, *unit, *service, *client;
    long long units;
    long long service_ir, redis_ir, client_ir; /* -1: not counted */
    long long reads, commands;
    s_mix_t mix;
} s_row_t;

static s_row_t s_rows[8];
static int s_nrows;
static char s_endpoint[64];

/* ------------------------------------------------------------ Redis's counters */

typedef struct {
    long long reads, commands;
} s_stats_t;

static long long s_info_field(const char *info, const char *field)
{
    const char *p = info ? strstr(info, field) : NULL;
    return p ? atoll(p + strlen(field)) : -1;
}

/* Redis's read events and commands so far. The INFO of the first call of
   a pair counts as one command, that of the second as one read: s_delta
   takes them off. */
static s_stats_t s_stats(crm_store_t *store)
{
    redisReply *r = crm_store_cmd(store, "INFO stats");
    const char *info = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    s_stats_t s = {s_info_field(info, "total_reads_processed:"), s_info_field(info, "total_commands_processed:")};
    freeReplyObject(r);
    return s;
}

static s_stats_t s_delta(s_stats_t a, s_stats_t b)
{
    return (s_stats_t){b.reads - a.reads - 1, b.commands - a.commands - 1};
}

static long long *s_mix_at(s_mix_t *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].name, name))
            return &m->v[i].calls;
    if (m->n == S_CMDS)
        return NULL;
    snprintf(m->v[m->n].name, sizeof m->v[0].name, "%s", name);
    m->v[m->n].calls = 0;
    return &m->v[m->n++].calls;
}

/* Every command's calls so far ("cmdstat_hset:calls=12,..." lines). */
static s_mix_t s_mix(crm_store_t *store)
{
    s_mix_t m = {0};
    redisReply *r = crm_store_cmd(store, "INFO commandstats");
    for (const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_") : NULL; p;
         p = strstr(p + 1, "cmdstat_")) {
        const char *name = p + strlen("cmdstat_"), *colon = strchr(name, ':');
        if (!colon || strncmp(colon, ":calls=", 7) || colon - name >= (long) sizeof m.v[0].name)
            continue;
        char key[40];
        snprintf(key, sizeof key, "%.*s", (int) (colon - name), name);
        long long *at = s_mix_at(&m, key);
        if (at)
            *at = atoll(colon + 7);
    }
    freeReplyObject(r);
    return m;
}

/* a - b, name by name (b's INFO calls taken off). */
static void s_mix_sub(s_mix_t *a, const s_mix_t *b)
{
    for (int i = 0; i < b->n; i++) {
        long long *at = s_mix_at(a, b->v[i].name);
        if (at)
            *at -= b->v[i].calls;
    }
    long long *info = s_mix_at(a, "info");
    if (info)
        *info = 0;
}

/* ------------------------------------------------------------ a measured phase */

typedef struct {
    crm_store_t *store;
    pid_t service, redis, client; /* client 0: this process */
    const char *service_name, *client_name;
    s_stats_t before;
    s_mix_t mix;
} s_phase_t;

static void s_begin(s_phase_t *p)
{
    p->mix = s_mix(p->store);
    p->before = s_stats(p->store);
    crm_h_cg_on(p->service);
    crm_h_cg_on(p->redis);
    if (p->client > 0)
        crm_h_cg_on(p->client);
    else if (p->client == 0)
        crm_h_cg_self_on();
}

static s_row_t *s_end(s_phase_t *p, const char *path, const char *unit, long long units)
{
    s_row_t *row = &s_rows[s_nrows++];
    *row = (s_row_t){path, unit, p->service_name, p->client_name, units, -1, -1, -1, 0, 0, {0}};
    if (p->client == 0)
        row->client_ir = crm_h_cg_self_off(S_SELF);
    row->service_ir = crm_h_cg_off(p->service, p->service_name);
    row->redis_ir = crm_h_cg_off(p->redis, "redis-server");
    if (p->client > 0)
        row->client_ir = crm_h_cg_off(p->client, p->client_name);
    s_stats_t d = s_delta(p->before, s_stats(p->store));
    row->reads = d.reads;
    row->commands = d.commands;
    row->mix = s_mix(p->store);
    s_mix_sub(&row->mix, &p->mix);
    return row;
}

/* ------------------------------------------------------------ intake */

typedef struct {
    int id, count;
    long ok;
} s_worker_t;

static void *s_submitter(void *arg)
{
    s_worker_t *w = arg;
    w->ok = crm_h_bench_submit(s_endpoint, "prof", w->id, w->count, 300000);
    return NULL;
}

static long s_submit(int workers, int per_worker, int base)
{
    pthread_t th[16];
    s_worker_t w[16];
    for (int i = 0; i < workers; i++) {
        w[i] = (s_worker_t){.id = base + i, .count = per_worker};
        pthread_create(&th[i], NULL, s_submitter, &w[i]);
    }
    long ok = 0;
    for (int i = 0; i < workers; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    return ok;
}

static int s_intake_paths(int leads1, int leads16, int rows)
{
    crm_h_redis_t redis;
    if (crm_h_redis_start(&redis, true) != 0) {
        fprintf(stderr, "crm-bench-profile: cannot start redis-server\n");
        return -1;
    }
    crm_store_t *store = crm_store_new(redis.url, 30000);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", crm_h_free_port());
    char env[5][200], log[300];
    snprintf(env[0], sizeof env[0], "CRM_REDIS_URL=%s", redis.url);
    snprintf(env[1], sizeof env[1], "CRM_INTAKE_ENDPOINT=%s", s_endpoint);
    snprintf(env[2], sizeof env[2], "CRM_PUB=tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(env[3], sizeof env[3], "CRM_LOG_LEVEL=warn");
    snprintf(env[4], sizeof env[4], "CRM_CONTROL=tcp://127.0.0.1:%d", crm_h_free_port());
    const char *envp[] = {env[0], env[1], env[2], env[3], env[4], NULL};
    crm_h_path(&redis, "intake.log", log, sizeof log);
    pid_t intake = crm_h_spawn("crm-intake", NULL, envp, log);
    if (crm_h_wait_int(store, 1, 300000, "EXISTS crm:svc:intake") != 1) {
        fprintf(stderr, "crm-bench-profile: crm-intake did not start (see %s)\n", log);
        return -1;
    }
    /* a few leads first: what is done once is not counted */
    s_submit(2, 10, 900);
    s_phase_t ph = {store, intake, redis.pid, 0, "crm-intake", S_SELF, {0, 0}, {0}};
    s_begin(&ph);
    long ok = s_submit(1, leads1, 0);
    s_end(&ph, "intake, 1 submitter", "lead", ok);
    s_begin(&ph);
    ok = s_submit(16, leads16 / 16, 100);
    s_end(&ph, "intake, 16 submitters", "lead", ok);

    char csv[300], out[300];
    crm_h_path(&redis, "import.csv", csv, sizeof csv);
    crm_h_path(&redis, "import.txt", out, sizeof out);
    FILE *c = fopen(csv, "w");
    if (!c)
        return -1;
    fputs("姓名,手机,城市,省份,邮编,地址,意向车型\n", c);
    for (int i = 0; i < rows; i++)
        fprintf(c, "车展客户%d,136%08d,成都,四川,610041,成都市武侯区%d号,508L\n", i, i, i);
    fclose(c);
    const char *args[] = {"lead", "import", csv, NULL};
    /* under callgrind an answer can take longer than crmctl's 3 s */
    const char *cenv[] = {env[0], env[1], "CRM_TIMEOUT_MS=300000", NULL};
    long long leads_before = crm_h_int(store, "XLEN crm:{lead}:events");
    /* crmctl counts from its start: its whole run is the import */
    setenv("CRM_H_CALLGRIND_ATSTART", "crmctl", 1);
    ph.client = -1;
    s_begin(&ph);
    pid_t imp = crm_h_spawn("crmctl", args, cenv, out);
    int status;
    waitpid(imp, &status, 0);
    s_row_t *row = s_end(&ph, "import (crmctl lead import)", "row", rows);
    unsetenv("CRM_H_CALLGRIND_ATSTART");
    row->client = "crmctl";
    row->client_ir = crm_h_cg_ir("crmctl", imp);
    /* per lead made: a row refused or not answered would count otherwise */
    long long created = crm_h_int(store, "XLEN crm:{lead}:events") - leads_before;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || created != rows) {
        fprintf(stderr, "crm-bench-profile: crmctl lead import exited %d, %lld of %d rows made leads (see %s)\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, created, rows, out);
        row->units = created;
    }
    crm_h_stop(intake, SIGTERM, 30000);
    crm_store_destroy(&store);
    crm_h_redis_stop(&redis);
    return 0;
}

/* ------------------------------------------------------------ dispatch */

static zsock_t *s_pub;

/* Test drives P<first>.. requested, S_TD_PER_TX per transaction, committed
   and published as crm-intake does. */
static void s_request(crm_store_t *store, int first, int count, int64_t at, bool publish)
{
    for (int i = first; i < first + count; i += S_TD_PER_TX) {
        crm_tx_t *tx = crm_tx_new("intake", 10000000);
        for (int k = i; k < i + S_TD_PER_TX && k < first + count; k++) {
            char tid[32];
            snprintf(tid, sizeof tid, "P%d", k);
            crm_h_bench_testdrive(tx, tid, "D1", at);
        }
        if (crm_store_commit(store, tx) != 0)
            fprintf(stderr, "crm-bench-profile: commit: %s\n", crm_store_error(store));
        for (size_t e = 0; publish && e < crm_tx_emit_count(tx); e++) {
            const crm_emit_t *em = crm_tx_emit_at(tx, e);
            zsock_send(s_pub, "sb", "testdrive:", em->frame, em->len);
        }
        crm_tx_destroy(&tx);
    }
}

/* What the bench's own commits of `n` requests cost Redis, on a Redis of
   their own (nobody follows it): reads, commands and Ir. */
static s_row_t s_commit_cost(int n, int64_t at)
{
    s_row_t cost = {.redis_ir = -1};
    crm_h_redis_t redis;
    if (crm_h_redis_start(&redis, true) != 0)
        return cost;
    crm_store_t *store = crm_store_new(redis.url, 30000);
    s_request(store, 1000000, 20, at, false); /* once */
    s_mix_t mix = s_mix(store);
    s_stats_t a = s_stats(store);
    crm_h_cg_on(redis.pid);
    s_request(store, 0, n, at, false);
    cost.redis_ir = crm_h_cg_off(redis.pid, "redis-server");
    s_stats_t d = s_delta(a, s_stats(store));
    cost.reads = d.reads;
    cost.commands = d.commands;
    cost.mix = s_mix(store);
    s_mix_sub(&cost.mix, &mix);
    crm_store_destroy(&store);
    crm_h_redis_stop(&redis);
    return cost;
}

static bool s_printed(const char *log, int want)
{
    return crm_h_file_count(log, "\"testdrive_id\":\"P") >= want;
}

static int s_dispatch_path(int n)
{
    int64_t at = crm_now_ms() + 2 * 24 * 3600 * 1000LL;
    s_row_t cost = s_commit_cost(n, at);
    crm_h_redis_t redis;
    if (crm_h_redis_start(&redis, true) != 0)
        return -1;
    crm_store_t *store = crm_store_new(redis.url, 30000);
    char certs[300], secret[300], server[300], state[300], env[10][320], pub[64], router[64], bench_pub[64];
    char dlog[300], dealer_log[300];
    crm_h_path(&redis, "certs", certs, sizeof certs);
    crm_h_path(&redis, "D1.secret", secret, sizeof secret);
    crm_h_path(&redis, "gateway.cert", server, sizeof server);
    crm_h_path(&redis, "dealer.state", state, sizeof state);
    crm_h_path(&redis, "dispatcher.log", dlog, sizeof dlog);
    crm_h_path(&redis, "dealer.log", dealer_log, sizeof dealer_log);
    snprintf(pub, sizeof pub, "tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(router, sizeof router, "tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(bench_pub, sizeof bench_pub, "tcp://127.0.0.1:%d", crm_h_free_port());
    int control = crm_h_free_port();
    snprintf(env[0], sizeof env[0], "CRM_REDIS_URL=%s", redis.url);
    snprintf(env[1], sizeof env[1], "CRM_CERT_DIR=%s", certs);
    snprintf(env[2], sizeof env[2], "CRM_SERVER_CERT=%s", server);
    snprintf(env[3], sizeof env[3], "CRM_GATEWAY_PUB=%s", pub);
    snprintf(env[4], sizeof env[4], "CRM_GATEWAY_ROUTER=%s", router);
    snprintf(env[5], sizeof env[5], "CRM_PUB=tcp://127.0.0.1:%d", crm_h_free_port());
    snprintf(env[6], sizeof env[6], "CRM_LOG_LEVEL=warn");
    snprintf(env[7], sizeof env[7], "CRM_PEERS=%s", bench_pub);
    snprintf(env[8], sizeof env[8], "CRM_CONTROL=tcp://127.0.0.1:%d", control);
    snprintf(env[9], sizeof env[9], "CRM_DISPATCHER_CONTROL=tcp://127.0.0.1:%d", control);
    s_pub = zsock_new_pub(bench_pub);
    char mk[400];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", certs);
    if (!s_pub || system(mk) != 0)
        return -1;
    const char *denv[] = {env[0], env[1], env[2], env[3], env[4], env[5], env[6], env[7], env[8], NULL};
    pid_t disp = crm_h_spawn("crm-dispatcher", NULL, denv, dlog);
    if (crm_h_wait_int(store, 1, 300000, "EXISTS crm:svc:dispatcher") != 1) {
        fprintf(stderr, "crm-bench-profile: crm-dispatcher did not start (see %s)\n", dlog);
        return -1;
    }
    const char *cenv[] = {env[0], env[9], NULL};
    const char *add[] = {"dealer", "add", "D1", "--name", "bench", "--region", "华南", "--province", "广东",
                         "--city", "深圳", "--capacity", "0", NULL};
    const char *cert[] = {"dealer", "cert", "D1", "--out", secret, NULL};
    if (crm_h_run("crmctl", add, cenv, NULL) != 0 || crm_h_run("crmctl", cert, cenv, NULL) != 0) {
        fprintf(stderr, "crm-bench-profile: crmctl dealer add/cert failed\n");
        return -1;
    }
    redisReply *r = crm_store_cmd(store, "HSET crm:cust:{C1} name 王先生 mobile 13812345678 city 深圳");
    freeReplyObject(r);
    const char *dargs[] = {"--dealer", "D1", "--cert", secret, "--server-cert", server, "--state", state,
                           "--endpoint", router, "--pub", pub, "--log-level", "warn", NULL};
    pid_t dealer = crm_h_spawn("crm-dealer", dargs, NULL, dealer_log);
    /* a few first, until crm-dealer prints them: connected end to end */
    int warm = 20;
    for (int tries = 0; tries < 30 && !s_printed(dealer_log, warm); tries++) {
        s_request(store, 1000000 + tries * warm, warm, at, true);
        for (int w = 0; w < 50 && !s_printed(dealer_log, warm); w++)
            usleep(200 * 1000);
    }
    if (!s_printed(dealer_log, warm)) {
        fprintf(stderr, "crm-bench-profile: crm-dealer printed no dispatch (see %s, %s)\n", dealer_log, dlog);
        return -1;
    }
    sleep(crm_h_callgrind() ? 5 : 1); /* their acknowledgements */
    int base = crm_h_file_count(dealer_log, "\"testdrive_id\":\"P");
    s_phase_t ph = {store, disp, redis.pid, dealer, "crm-dispatcher", "crm-dealer", {0, 0}, {0}};
    s_begin(&ph);
    s_request(store, 0, n, at, true);
    for (int64_t end = crm_mono_ms() + 600000; !s_printed(dealer_log, base + n) && crm_mono_ms() < end;)
        usleep(100 * 1000);
    sleep(crm_h_callgrind() ? 5 : 1); /* the last acknowledgements */
    s_row_t *row = s_end(&ph, "dispatch (requested to crm-dealer)", "dispatch", n);
    int printed = crm_h_file_count(dealer_log, "\"testdrive_id\":\"P") - base;
    if (printed < n)
        fprintf(stderr, "crm-bench-profile: crm-dealer printed %d of %d dispatches\n", printed, n);
    row->reads -= cost.reads;
    row->commands -= cost.commands;
    s_mix_sub(&row->mix, &cost.mix);
    if (row->redis_ir >= 0 && cost.redis_ir >= 0)
        row->redis_ir -= cost.redis_ir;
    crm_h_stop(dealer, SIGTERM, 30000);
    crm_h_stop(disp, SIGTERM, 30000);
    zsock_destroy(&s_pub);
    crm_store_destroy(&store);
    crm_h_redis_stop(&redis);
    return 0;
}

/* ------------------------------------------------------------ the table */

static const char *s_ir(long long ir, long long units, char *out, size_t size)
{
    if (ir < 0 || units <= 0)
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.1fk", (double) ir / (double) units / 1000.0);
    return out;
}

int main(int argc, char **argv)
{
    int leads1 = argc > 1 ? atoi(argv[1]) : 1000, leads16 = argc > 2 ? atoi(argv[2]) : 4000,
        rows = argc > 3 ? atoi(argv[3]) : 5000, dispatches = argc > 4 ? atoi(argv[4]) : 1000;
    if (leads1 < 1 || leads16 < 16 || rows < 1 || dispatches < 1) {
        fprintf(stderr, "usage: crm-bench-profile [LEADS1 [LEADS16 (>= 16) [ROWS [DISPATCHES]]]]\n");
        return 2;
    }
    zsys_init();
    zsys_set_logstream(NULL);
    const char *only = getenv("BENCH_ONLY"); /* intake or dispatch: that path alone */
    if ((!only || !strcmp(only, "intake")) && s_intake_paths(leads1, leads16, rows) != 0)
        return 1;
    if ((!only || !strcmp(only, "dispatch")) && s_dispatch_path(dispatches) != 0)
        return 1;
    char day[16];
    time_t now = time(NULL);
    strftime(day, sizeof day, "%Y-%m-%d", gmtime(&now));
    printf("Profile of %s, %ld cores: Ir per unit (instructions, callgrind%s), Redis read events (round trips, from "
           "every client) and commands per unit (INFO stats)\n\n",
           day, sysconf(_SC_NPROCESSORS_ONLN), crm_h_callgrind() ? "" : ": not run under it, not counted");
    printf("| path | unit | service Ir/unit | redis Ir/unit | client Ir/unit | round trips/unit | commands/unit |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *r = &s_rows[i];
        char a[32], b[32], c[32];
        printf("| %s, %lld | %s | %s (%s) | %s | %s (%s) | %.2f | %.2f |\n", r->path, r->units, r->unit,
               s_ir(r->service_ir, r->units, a, sizeof a), r->service, s_ir(r->redis_ir, r->units, b, sizeof b),
               s_ir(r->client_ir, r->units, c, sizeof c), r->client, (double) r->reads / (double) r->units,
               (double) r->commands / (double) r->units);
    }
    printf("\nRedis commands per unit by name (INFO commandstats; those run by scripts included, so they add "
           "up to more than the column above)\n\n");
    for (int i = 0; i < s_nrows; i++) {
        s_row_t *r = &s_rows[i];
        printf("- %s:", r->path);
        for (int shown = 0;; shown++) { /* largest first */
            int best = -1;
            for (int k = 0; k < r->mix.n; k++)
                if (r->mix.v[k].calls > 0 && (best < 0 || r->mix.v[k].calls > r->mix.v[best].calls))
                    best = k;
            if (best < 0 || (double) r->mix.v[best].calls / (double) r->units < 0.005)
                break;
            printf("%s %s %.2f", shown ? "," : "", r->mix.v[best].name,
                   (double) r->mix.v[best].calls / (double) r->units);
            r->mix.v[best].calls = 0;
        }
        printf("\n");
    }
    return 0;
}
