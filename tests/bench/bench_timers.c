/*  crm-bench-timers: compact timers (crm:due:followup), on demand.
 *
 *      crm-bench-timers [TIMERS [DUE]]     (defaults 1,000,000 and 200,000)
 *
 *  Against a private redis-server (AOF off; BENCH_AOF=1 for everysec):
 *   1. Redis memory per pending timer: used_memory before and after loading
 *      TIMERS timers with realistic ids ("w:K<n>", "o:K<n>", "x:C<n>",
 *      "r:C<n>", n up to TIMERS) spread over the next 60 days, by pipelined
 *      ZADD of 1,000 members each; bytes/timer and the load rate. Aim
 *      (issue): <= 150 bytes per timer.
 *   2. claim-and-emit rate, all TIMERS due: (a) this process looping
 *      crm_store_fire_due in rounds of 1,000 until the set is empty;
 *      (b) the real crm-scheduler (clock file past every timer), time until
 *      the set is empty (claimed and appended) and until
 *      crm:metrics:scheduler timers_fired reaches TIMERS (applied). Aim:
 *      >= 100,000 timers/s.
 *   3. lateness under load: TIMERS pending far in the future plus DUE
 *      falling due uniformly over 10 s of real time, crm-scheduler on the
 *      real clock; from the timers.fired events in the stream, each timer's
 *      lateness = the event's `now` - its due time: p50, p99, max. Aim:
 *      p99 <= 1 s.
 *  Every event is decoded and counted against what was loaded (a timer
 *  lost, listed twice or fired early is reported). Printed beside the same
 *  run's redis-benchmark yardstick. Asserts nothing; tests/bench/run runs it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_harness.h"

#define S_PER_ZADD 1000  /* members per ZADD */
#define S_PER_PIPE 20    /* ZADDs per pipeline */
#define S_CLAIM 1000     /* timers per crm_store_fire_due in 2a */
#define S_MAXLEN 1000000 /* the services' default --stream-maxlen */
#define S_DAY_MS 86400000LL
#define S_WINDOW_MS 10000 /* 3: the due timers' spread */
#define S_LEAD_MS 2500    /* 3: from loading to the first due timer */

static crm_h_redis_t s_redis;
static crm_store_t *s_store;
static char s_env[12][400];
static const char *s_envp[13];
static char s_log[300];

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;
static uint64_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

/* Timer i: a task's warning and overdue share K<n>, a customer's expiry
   and release share C<n>: w:K1 o:K1 x:C3 r:C3 w:K5 ... */
static void s_id(long long i, char *out, size_t size)
{
    static const char *const kinds[] = {"w:K", "o:K", "x:C", "r:C"};
    snprintf(out, size, "%s%lld", kinds[i % 4], i + 1 - (i & 1));
}

static double s_secs(int64_t us)
{
    return (double) us / 1e6;
}

static long long s_used_memory(void)
{
    redisReply *r = crm_store_cmd(s_store, "INFO memory");
    long long v = -1;
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    if (p)
        v = atoll(p + strlen("used_memory:"));
    freeReplyObject(r);
    return v;
}

static void s_flush(void)
{
    redisReply *r = crm_store_cmd(s_store, "FLUSHALL");
    freeReplyObject(r);
}

/* Loads timers first .. first+n-1 into crm:due:followup: due(i) gives the
   due time. Returns 0, or -1 when a pipeline failed. */
static int s_load(long long first, long long n, int64_t (*due)(long long i, void *arg), void *arg)
{
    crm_tx_t *tx = crm_tx_new("bench", 0);
    const char **argv = calloc(2 + 2 * S_PER_ZADD, sizeof *argv);
    char(*buf)[2][32] = calloc(S_PER_ZADD, sizeof *buf);
    int rc = tx && argv && buf ? 0 : -1;
    if (argv) {
        argv[0] = "ZADD";
        argv[1] = "crm:due:followup";
    }
    long long i = first, end = first + n;
    while (rc == 0 && i < end) {
        for (int z = 0; z < S_PER_PIPE && i < end; z++) {
            int k = 0;
            for (; k < S_PER_ZADD && i < end; k++, i++) {
                snprintf(buf[k][0], sizeof buf[k][0], "%lld", (long long) due(i, arg));
                s_id(i, buf[k][1], sizeof buf[k][1]);
                argv[2 + 2 * k] = buf[k][0];
                argv[3 + 2 * k] = buf[k][1];
            }
            if (crm_tx_cmdargv(tx, 2 + 2 * k, argv, NULL) < 0)
                rc = -1;
        }
        if (rc == 0 && crm_store_pipeline(s_store, tx) != 0)
            rc = -1;
        crm_tx_reset(tx);
    }
    crm_tx_destroy(&tx);
    free(argv);
    free(buf);
    return rc;
}

typedef struct {
    int64_t from, span; /* random in [from, from + span) */
} s_spread_t;

static int64_t s_due_random(long long i, void *arg)
{
    (void) i;
    const s_spread_t *s = arg;
    return s->from + (int64_t) (s_rand() % (uint64_t) s->span);
}

typedef struct {
    int64_t from, span; /* timer `first` due at from, the n spread evenly over span */
    long long first, n;
} s_even_t;

static int64_t s_due_even(long long i, void *arg)
{
    const s_even_t *e = arg;
    return e->from + (int64_t) ((i - e->first) * e->span / e->n);
}

typedef struct {
    long long events, timers, bad, early, unordered;
    int64_t due_min, due_max, prev_due;
    long long *late; /* when not NULL: lateness of each listed timer, ms */
    long long nlate, cap;
} s_scan_t;

/* Reads every timers.fired event of stream "timer" and checks its list. */
static int s_scan(s_scan_t *sc)
{
    uint64_t from = 1;
    sc->due_min = INT64_MAX, sc->due_max = INT64_MIN, sc->prev_due = INT64_MIN;
    for (;;) {
        redisReply *r = crm_store_cmd(s_store, "XRANGE crm:{timer}:events %llu-0 + COUNT 100",
                                      (unsigned long long) from);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return -1;
        }
        if (r->elements == 0) {
            freeReplyObject(r);
            return 0;
        }
        for (size_t e = 0; e < r->elements; e++) {
            const redisReply *ent = r->element[e];
            from = strtoull(ent->element[0]->str, NULL, 10) + 1;
            const redisReply *frame = crm_reply_field_reply(ent->element[1], "m");
            crm_msg_t msg;
            crm_err_t err;
            if (!frame || crm_msg_decode(frame->str, frame->len, &msg, &err) != 0) {
                sc->bad++;
                continue;
            }
            sc->events++;
            if (msg.type != CRM_T_timers_fired) {
                sc->bad++;
                crm_msg_clear(&msg);
                continue;
            }
            const crm_body_timers_fired_t *b = &msg.body.timers_fired;
            for (size_t i = 0; i < b->timers.n; i++) {
                char *end;
                long long due = strtoll(b->timers.v[i], &end, 10);
                if (end == b->timers.v[i] || *end != ' ' || end[1] == '\0') {
                    sc->bad++;
                    continue;
                }
                sc->timers++;
                sc->early += due > b->now;
                sc->unordered += due < sc->prev_due;
                sc->prev_due = due;
                sc->due_min = due < sc->due_min ? due : sc->due_min;
                sc->due_max = due > sc->due_max ? due : sc->due_max;
                if (sc->late && sc->nlate < sc->cap)
                    sc->late[sc->nlate++] = b->now - due;
            }
            crm_msg_clear(&msg);
        }
        freeReplyObject(r);
    }
}

static void s_scan_report(const char *what, const s_scan_t *sc, long long want)
{
    bool ok = sc->timers == want && !sc->bad && !sc->early;
    printf("  check %-10s %lld timers.fired events listing %lld timers (loaded %lld); %lld "
           "undecodable, %lld listed before due, %lld out of due order%s\n",
           what, sc->events, sc->timers, want, sc->bad, sc->early, sc->unordered,
           ok ? "" : "  <-- WRONG");
}

static pid_t s_scheduler(const char *clock)
{
    int pub = crm_h_free_port(), control = crm_h_free_port(), n = 0;
    snprintf(s_env[n++], sizeof s_env[0], "CRM_REDIS_URL=%s", s_redis.url);
    snprintf(s_env[n++], sizeof s_env[0], "CRM_PUB=tcp://127.0.0.1:%d", pub);
    snprintf(s_env[n++], sizeof s_env[0], "CRM_CONTROL=tcp://127.0.0.1:%d", control);
    snprintf(s_env[n++], sizeof s_env[0], "CRM_PEERS=tcp://127.0.0.1:%d", pub);
    snprintf(s_env[n++], sizeof s_env[0], "CRM_LOG_LEVEL=warn");
    /* crm_h_spawn adds to the inherited environment: unset it there. */
    snprintf(s_env[n++], sizeof s_env[0], "CRM_CLOCK_FILE=%s", clock ? clock : "");
    for (int i = 0; i < n; i++)
        s_envp[i] = s_env[i];
    s_envp[n] = NULL;
    redisReply *r = crm_store_cmd(s_store, "DEL crm:svc:scheduler");
    freeReplyObject(r);
    return crm_h_spawn("crm-scheduler", NULL, s_envp, s_log);
}

/* A stalled run: the scheduler's log, but for the expected timers.late. */
static void s_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int shown = 0, other = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strstr(line, "event=timers.late "))
            continue;
        other++;
        if (shown++ < 20)
            printf("            log: %s", line);
    }
    if (f)
        fclose(f);
    printf("            %d lines in the scheduler's log besides timers.late\n", other);
}

static int s_cmp(const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;
    return x < y ? -1 : x > y;
}

static const char *s_env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(int argc, char **argv)
{
    long long ntimers = argc > 1 ? atoll(argv[1]) : 1000000;
    long long ndue = argc > 2 ? atoll(argv[2]) : 200000;
    if (ntimers < S_PER_ZADD || ndue < 1) {
        fprintf(stderr, "usage: crm-bench-timers [TIMERS (>= %d) [DUE (>= 1)]]\n", S_PER_ZADD);
        return 2;
    }
    bool aof = getenv("BENCH_AOF") != NULL;
    if (crm_h_redis_start(&s_redis, aof) != 0) {
        fprintf(stderr, "crm-bench-timers: cannot start redis-server\n");
        return 1;
    }
    s_store = crm_store_new(s_redis.url, 30000);
    if (!s_store) {
        crm_h_redis_stop(&s_redis);
        return 1;
    }
    crm_h_path(&s_redis, "scheduler.log", s_log, sizeof s_log);
    char clock[300];
    crm_h_path(&s_redis, "clock", clock, sizeof clock);
    printf("autocrm compact timers benchmark: %ld cores, redis-server with appendonly %s, "
           "crm-scheduler fire-batch %s, fire-budget-ms %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), aof ? "yes (everysec)" : "no",
           s_env_or("CRM_FIRE_BATCH", "1000"), s_env_or("CRM_FIRE_BUDGET_MS", "50"));
    double yard = crm_h_redis_benchmark(&s_redis);
    printf("yardstick   redis-benchmark -P 16 -t set: %.0f SET/s (same Redis, same run)\n", yard);
    s_flush();
    int rc = 0;

    /* 1. Memory per pending timer. */
    int64_t now = crm_now_ms();
    s_spread_t future = {now + 60000, 60 * S_DAY_MS};
    long long m0 = s_used_memory();
    int64_t t0 = crm_mono_us();
    if (s_load(0, ntimers, s_due_random, &future) != 0) {
        fprintf(stderr, "crm-bench-timers: loading failed: %s\n", crm_store_error(s_store));
        rc = 1;
        goto out;
    }
    int64_t load_us = crm_mono_us() - t0;
    long long m1 = s_used_memory();
    long long card = crm_h_int(s_store, "ZCARD crm:due:followup");
    long long usage = crm_h_int(s_store, "MEMORY USAGE crm:due:followup");
    double per = (double) (m1 - m0) / (double) ntimers;
    printf("memory      %lld pending timers (ZCARD %lld): used_memory %lld -> %lld bytes, %.1f "
           "bytes/timer (MEMORY USAGE of the key, sampled: %.1f bytes/timer) (aim <= 150) %s\n",
           ntimers, card, m0, m1, per, (double) usage / (double) ntimers,
           per <= 150 ? "MET" : "MISSED");
    char sh[64], sh2[64];
    printf("load        pipelined ZADD, %d members each, %d per pipeline: %.2f s = %.0f timers/s, %s\n",
           S_PER_ZADD, S_PER_PIPE, s_secs(load_us), (double) ntimers / s_secs(load_us),
           crm_h_share((double) ntimers / s_secs(load_us), yard, sh, sizeof sh));

    /* 2a. Claim and emit from this process. */
    int64_t past_all = future.from + future.span + 1000;
    crm_tx_t *tx = crm_tx_new("bench", S_MAXLEN);
    long long claimed = 0, calls = 0;
    int n;
    t0 = crm_mono_us();
    while ((n = crm_store_fire_due(s_store, "followup", past_all, S_CLAIM, S_MAXLEN, "bench", tx)) >
           0) {
        claimed += n;
        calls++;
        crm_tx_reset(tx);
    }
    int64_t fire_us = crm_mono_us() - t0;
    crm_tx_reset(tx);
    crm_tx_destroy(&tx);
    if (n < 0)
        printf("claim       crm_store_fire_due failed after %lld timers: %s\n", claimed,
               crm_store_error(s_store));
    printf("claim (a)   crm_store_fire_due from the bench, %d per call: %lld timers in %lld calls, "
           "%.2f s = %.0f timers/s, %s (aim >= 100000) %s; left in the set: %lld\n",
           S_CLAIM, claimed, calls, s_secs(fire_us), (double) claimed / s_secs(fire_us),
           crm_h_share((double) claimed / s_secs(fire_us), yard, sh, sizeof sh),
           (double) claimed / s_secs(fire_us) >= 100000 ? "MET" : "MISSED",
           crm_h_int(s_store, "ZCARD crm:due:followup"));
    s_scan_t sc = {0};
    if (s_scan(&sc) != 0)
        printf("  check (a) could not read the stream: %s\n", crm_store_error(s_store));
    s_scan_report("(a)", &sc, ntimers);

    /* 2b. The same with crm-scheduler (its clock past every timer). */
    s_flush();
    if (s_load(0, ntimers, s_due_random, &future) != 0) {
        rc = 1;
        goto out;
    }
    FILE *f = fopen(clock, "w");
    if (!f) {
        rc = 1;
        goto out;
    }
    fprintf(f, "%lld\n", (long long) past_all);
    fclose(f);
    t0 = crm_mono_us();
    pid_t pid = s_scheduler(clock);
    int64_t t_up = 0, t_first = 0, t_fired = 0, t_applied = 0, t_sample = 1000000;
    long long applied = 0;
    char trail[600] = "";
    size_t used = 0;
    while (crm_mono_us() - t0 < 120 * 1000000LL && (!t_fired || !t_applied)) {
        int64_t t = crm_mono_us() - t0;
        if (!t_up && crm_h_int(s_store, "EXISTS crm:svc:scheduler") == 1)
            t_up = t;
        long long left = crm_h_int(s_store, "ZCARD crm:due:followup");
        if (!t_first && left < ntimers)
            t_first = t;
        if (!t_fired && left == 0)
            t_fired = t;
        applied = crm_h_int(s_store, "HGET crm:metrics:scheduler timers_fired");
        if (!t_applied && applied >= ntimers)
            t_applied = t;
        if (t >= t_sample && used < sizeof trail - 40) {
            /* claimed by each second, for a run that stalls */
            used += (size_t) snprintf(trail + used, sizeof trail - used, " %lld", ntimers - left);
            t_sample += 1000000;
        }
        if (!crm_h_alive(pid))
            break;
        usleep(5000);
    }
    bool alive = crm_h_alive(pid);
    crm_h_stop(pid, SIGTERM, 10000);
    if (!t_fired || !t_applied) {
        printf("claim (b)   crm-scheduler did not finish in 120 s (%s): %lld left in the set, %lld "
               "applied; see %s (CRM_TEST_KEEP=1 keeps it)\n",
               alive ? "running" : "exited", crm_h_int(s_store, "ZCARD crm:due:followup"), applied,
               s_log);
        printf("            claimed by each second:%s\n", trail);
        s_log_tail(s_log);
        rc = 1;
    } else {
        double fired_rate = (double) ntimers / s_secs(t_fired),
               applied_rate = (double) ntimers / s_secs(t_applied);
        printf("claim (b)   crm-scheduler, %lld timers all due (clock file past them): up "
               "(crm:svc:scheduler) after %.2f s, first claim seen %.2f s; set empty (claimed + "
               "appended) after %.2f s = %.0f timers/s, %s (%.0f timers/s from the first claim); "
               "timers_fired = %lld (applied) after %.2f s = %.0f timers/s, %s (%.0f from the first "
               "claim) (aim >= 100000) %s\n",
               ntimers, s_secs(t_up), s_secs(t_first), s_secs(t_fired), fired_rate,
               crm_h_share(fired_rate, yard, sh, sizeof sh), (double) ntimers / s_secs(t_fired - t_first),
               applied, s_secs(t_applied), applied_rate, crm_h_share(applied_rate, yard, sh2, sizeof sh2),
               (double) ntimers / s_secs(t_applied - t_first),
               applied_rate >= 100000 ? "MET" : "MISSED");
        printf("            timers_late %lld, late_max_ms %lld\n",
               crm_h_int(s_store, "HGET crm:metrics:scheduler timers_late"),
               crm_h_int(s_store, "HGET crm:metrics:scheduler late_max_ms"));
    }
    memset(&sc, 0, sizeof sc);
    if (s_scan(&sc) != 0)
        printf("  check (b) could not read the stream: %s\n", crm_store_error(s_store));
    s_scan_report("(b)", &sc, ntimers);

    /* 3. Lateness on the real clock, under a far-future load. */
    s_flush();
    now = crm_now_ms();
    s_spread_t far = {now + S_DAY_MS, 60 * S_DAY_MS};
    if (s_load(0, ntimers, s_due_random, &far) != 0) {
        rc = 1;
        goto out;
    }
    s_even_t soon = {crm_now_ms() + S_LEAD_MS, S_WINDOW_MS, ntimers, ndue};
    if (s_load(ntimers, ndue, s_due_even, &soon) != 0) {
        rc = 1;
        goto out;
    }
    int64_t loaded_at = crm_now_ms();
    pid = s_scheduler(NULL);
    long long up = crm_h_wait_int(s_store, 1, 15000, "EXISTS crm:svc:scheduler");
    int64_t up_at = crm_now_ms();
    int64_t last_due = soon.from + S_WINDOW_MS;
    long long pending = 0;
    while (crm_now_ms() < last_due + 60000 && crm_h_alive(pid)) {
        pending = crm_h_int(s_store, "ZCARD crm:due:followup");
        if (pending <= ntimers)
            break;
        usleep(20000);
    }
    int64_t all_fired = crm_now_ms();
    long long applied3 = crm_h_wait_int(s_store, ndue, 60000,
                                        "HGET crm:metrics:scheduler timers_fired");
    int64_t all_applied = crm_now_ms();
    crm_h_stop(pid, SIGTERM, 10000);
    printf("lateness    %lld timers due over %d s of real time (from %.2f s after loading) beside "
           "%lld pending far ahead; crm-scheduler up %.2f s after loading%s; %lld left in the set "
           "(want %lld)\n",
           ndue, S_WINDOW_MS / 1000, (double) (soon.from - loaded_at) / 1000.0, ntimers,
           (double) (up_at - loaded_at) / 1000.0, up == 1 ? "" : " (NOT UP)",
           crm_h_int(s_store, "ZCARD crm:due:followup"), ntimers);
    printf("            the last seen fired %lld ms after the last due time, timers_fired = %lld "
           "(applied) %lld ms after it\n",
           (long long) (all_fired - last_due), applied3, (long long) (all_applied - last_due));
    memset(&sc, 0, sizeof sc);
    sc.cap = ndue;
    sc.late = calloc((size_t) ndue, sizeof *sc.late);
    if (!sc.late || s_scan(&sc) != 0)
        printf("  check (3) could not read the stream: %s\n", crm_store_error(s_store));
    if (sc.nlate > 0) {
        qsort(sc.late, (size_t) sc.nlate, sizeof *sc.late, s_cmp);
        long long p50 = sc.late[sc.nlate / 2], p99 = sc.late[sc.nlate * 99 / 100],
                  max = sc.late[sc.nlate - 1];
        printf("            lateness (event's now - due) of %lld fired timers: p50 %lld ms, p99 "
               "%lld ms, max %lld ms, min %lld ms (aim p99 <= 1000 ms) %s (yardstick %.0f SET/s)\n",
               sc.nlate, p50, p99, max, sc.late[0], p99 <= 1000 ? "MET" : "MISSED", yard);
    }
    s_scan_report("(3)", &sc, ndue);
    if (sc.due_max > last_due)
        printf("  check (3) a far-future timer fired (due %lld)  <-- WRONG\n",
               (long long) sc.due_max);
    free(sc.late);
    printf("yardstick   redis-benchmark -P 16 -t set: %.0f SET/s (same Redis, same run)\n", yard);

out:
    crm_store_destroy(&s_store);
    crm_h_redis_stop(&s_redis);
    return rc;
}
