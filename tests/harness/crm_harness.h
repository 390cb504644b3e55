/*  crm_harness: what the tests need around the code under test.
 *
 *  A private redis-server on a free port for each test (started and
 *  stopped by the test), service binaries started and stopped as child
 *  processes with their own environment and log file, and waits that poll
 *  a condition instead of sleeping a fixed time.
 */
#ifndef CRM_HARNESS_H
#define CRM_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "crm_store.h"

typedef struct {
    pid_t pid;
    int port;
    char dir[256];
    char url[96];
} crm_h_redis_t;

/* A TCP port nobody listens on right now (bound, read, released). */
int crm_h_free_port(void);
/* Starts redis-server in a fresh temporary directory; 0 when it answers
   PING. `appendonly`: AOF on (everysec) or off. */
int crm_h_redis_start(crm_h_redis_t *r, bool appendonly);
void crm_h_redis_stop(crm_h_redis_t *r);
/* A store connected to the test's Redis (asserts). */
crm_store_t *crm_h_store(const crm_h_redis_t *r);

/* Starts build/<bin> with `args` (NULL-terminated, may be NULL) and the
   extra environment `env` ("NAME=value", NULL-terminated), output to
   `log` (truncated). Returns the pid (asserts on failure). */
/* The same with `path` as it is (not in CRM_BIN_DIR): an interpreter, a script. */
pid_t crm_h_spawn_path(const char *path, const char *const *args, const char *const *env, const char *log);
pid_t crm_h_spawn(const char *bin, const char *const *args, const char *const *env, const char *log);
/* Sends `sig` and waits up to timeout_ms; returns the raw wait status, or
   -1 after a SIGKILL when it did not end in time. */
int crm_h_stop(pid_t pid, int sig, int timeout_ms);
/* Runs build/<bin> to completion (see crm_h_spawn); its exit code, or 128 +
   the signal that ended it. */
int crm_h_run(const char *bin, const char *const *args, const char *const *env, const char *log);
/* The benchmarks' yardstick: `redis-benchmark -P 16 -t set` against `r`,
   in SET/s (0 when it could not run). */
double crm_h_redis_benchmark(const crm_h_redis_t *r);
/* A benchmark's rate as a share of the same run's yardstick, "1.23% of the
   yardstick", into out (returns it); "no yardstick" when there is none. */
const char *crm_h_share(double rate, double yardstick, char *out, size_t size);
bool crm_h_alive(pid_t pid);

/* ------------------------------------------------------------ profiling
 *
 * tests/bench/profile: with CRM_H_CALLGRIND=<dir> in the environment,
 * crm_h_spawn_path and crm_h_redis_start run their program under
 * valgrind --tool=callgrind with instrumentation off (on from the start
 * for the programs whose file names are in CRM_H_CALLGRIND_ATSTART, comma
 * separated), its profile in <dir>/<file name>.<pid>[.<dump>]; the
 * harness's waits for a program to come up are longer then. Without it
 * nothing changes. */
/* The directory, or NULL when not profiling. */
const char *crm_h_callgrind(void);
/* callgrind_control -i on: `pid` counts from now. 0 or -1. */
int crm_h_cg_on(pid_t pid);
/* callgrind_control -d, then -i off: the instructions (Ir) `pid` (program
   file name `name`) counted since crm_h_cg_on; -1 when unknown. */
long long crm_h_cg_off(pid_t pid, const char *name);
/* The Ir of <dir>/<name>.<pid>: its newest dump, or the profile it wrote
   at its exit when it made no dump (-1: none). */
long long crm_h_cg_ir(const char *name, pid_t pid);
/* The same for the calling process when it runs under callgrind itself
   (its --callgrind-out-file <dir>/<name>.%p): on, and dumped and off; -1
   when it does not. */
void crm_h_cg_self_on(void);
long long crm_h_cg_self_off(const char *name);

/* Polls `cond` every 20 ms until true or timeout. */
bool crm_h_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);
/* An integer from Redis: the reply of the command if it is an integer, or
   a string holding one; -1 on a nil or other reply. */
long long crm_h_int(crm_store_t *s, const char *fmt, ...);
/* Waits until the integer command's value reaches `want` (>=); returns the
   last value read, so the caller can assert it is exactly `want`. */
long long crm_h_wait_int(crm_store_t *s, long long want, int timeout_ms, const char *fmt, ...);
/* True when the file contains `needle`. */
bool crm_h_file_contains(const char *path, const char *needle);
/* How many lines of the file contain `needle` (lines up to 16 KiB; 0 when
   it cannot be read). */
int crm_h_file_count(const char *path, const char *needle);
/* In a child just forked by the test (`parent` is the test's pid, taken
   before fork): the child dies with the test, so a test killed by ctest's
   timeout or a signal leaves no redis-server or service behind. */
void crm_h_die_with_parent(pid_t parent);
/* The whole file at `path` ("" when it cannot be read); the caller frees. */
char *crm_h_slurp(const char *path);
/* A path in the test's temporary directory (static buffer per call site). */
void crm_h_path(const crm_h_redis_t *r, const char *name, char *out, size_t size);

/* ------------------------------------------------------------ a system
 *
 * What most bus tests need: a private Redis, ports for every service's
 * publisher and control endpoint, intake's lead endpoint and the dealer
 * gateway, the environment every process of the test gets, a publisher of
 * the test's own (in CRM_PEERS) so events the test writes reach the
 * services at once, and services and crmctl run with that environment. */
#define CRM_H_SERVICES 5
typedef struct {
    crm_h_redis_t redis;
    crm_store_t *store;
    char clock[300]; /* CRM_CLOCK_FILE when started with a clock */
    int pub[CRM_H_SERVICES], control[CRM_H_SERVICES];
    int test_pub, intake, gw_pub, gw_router;
    char env[40][400];
    int nenv;
    const char *envp[41];
    void *pub_sock; /* zsock_t: the test's publisher */
    pid_t pids[CRM_H_SERVICES];
    char out[300];  /* what the last crm_h_sys_crmctl printed */
    char certs[300], server_cert[300];
} crm_h_sys_t;

/* Index of a service name in crm_keys.h's order (intake 0 ... notifier 4), -1. */
int crm_h_service_index(const char *svc);
/* Starts Redis (AOF when asked) and makes the environment; with `clock`
   every process reads "now" from a file the test sets. 0 or -1. */
int crm_h_sys_start(crm_h_sys_t *s, bool aof, bool clock);
/* Adds "NAME=value" to the environment of the processes started after. */
void crm_h_sys_env(crm_h_sys_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void crm_h_sys_set_clock(crm_h_sys_t *s, int64_t ms);
/* Starts crm-<svc> with the environment (and `extra`, NULL-terminated: an
   entry of it replaces the environment's of the same name),
   logging to <dir>/<svc>.log; waits until it reports itself running
   (asserts). Returns its pid. */
pid_t crm_h_sys_spawn(crm_h_sys_t *s, const char *svc, const char *const *extra);
/* Stops crm-<svc> with `sig` (SIGTERM: waits for its exit; SIGKILL: kills). */
int crm_h_sys_kill(crm_h_sys_t *s, const char *svc, int sig);
/* Runs crmctl with the arguments (NULL-terminated); its output (stdout and
   stderr) is in s->out. Its exit code. */
int crm_h_sys_crmctl(crm_h_sys_t *s, ...);
/* Commits `tx` (asserts) and publishes its events on the test's
   publisher, as a service would. */
void crm_h_sys_commit(crm_h_sys_t *s, crm_tx_t *tx);
/* `n` test drives T<first>.. at `at` (ms UTC) for customer C1 (王先生,
   深圳), chosen dealer `dealer` (may be NULL), `per_tx` per transaction,
   committed and published as crm-intake would. */
void crm_h_sys_testdrives(crm_h_sys_t *s, const char *dealer, int first, int n, int per_tx, int64_t at);
/* Field `field` of test drive `tid` (crm:td:<tid>), "" when absent; the
   caller frees. */
char *crm_h_sys_td(crm_h_sys_t *s, const char *tid, const char *field);
/* Whether test drive `tid` has status `status`. */
bool crm_h_sys_td_is(crm_h_sys_t *s, const char *tid, const char *status);
/* Waits up to `ms` for test drive `tid` to have status `status`; fails
   the test, naming the status it has, otherwise. */
void crm_h_sys_wait_td(crm_h_sys_t *s, const char *tid, const char *status, int ms);
/* The hostile ids every id field gets (0 .. CRM_H_NHOSTILE-1): with ':',
   '{', '}', ' ', '*', '\n', and one of 10 KB. None of them is part of a
   key the services make for ordinary ids. */
#define CRM_H_NHOSTILE 7
const char *crm_h_hostile_id(int i);
/* The log of crm-<svc>. */
const char *crm_h_sys_log(crm_h_sys_t *s, const char *svc, char *out, size_t size);
/* A dealer's request socket on the gateway (s->gw_router) with the
   certificate whose secret file is `secret`, the gateway's public key
   `server_key`; NULL when the certificate cannot be read. */
void *crm_h_dealer_socket(crm_h_sys_t *s, const char *secret, const char *server_key);
/* Sends `n` encoded requests (frames[i], lens[i], ids[i] their envelope
   ids) on a request socket, at most `window` unanswered at a time, and
   sends one again (the same bytes) when its answer has not come within
   `resend_ms`, as a dealer's client does; `tick` (may be NULL) is called
   after each answer with how many are answered. Stops when all are
   answered or nothing arrived for `give_up_ms`. Returns how many were
   answered; *ok (may be NULL) gets how many answers were ok. */
int crm_h_send_all(void *sock, void *const *frames, const size_t *lens, char (*ids)[CRM_ID_MAX], int n, int window,
                   int resend_ms, int give_up_ms, void (*tick)(void *arg, int answered), void *arg, int *ok);
/* How many events of `type` on `stream` (read from Redis) have `needle`
   in their JSON form (NULL: every one). */
int crm_h_events(crm_store_t *store, const char *stream, const char *type, const char *needle);
/* The body of the newest of them as JSON (a json_t *, caller decrefs), or NULL. */
struct json_t;
struct json_t *crm_h_event_body(crm_store_t *store, const char *stream, const char *type, const char *needle);
/* Stops every service still running (SIGTERM), then Redis. */
void crm_h_sys_stop(crm_h_sys_t *s);

/* ------------------------------------------------------------ crm-auditor */

/* crm-intake, crm-dispatcher and crm-auditor (no schedule) on `s`, and the
   seed's four sales regions (北京区, 南京区, 成都区, 广州区) loaded with
   crmctl regions load. 0, or -1 after a message. */
int crm_h_audit_system(crm_h_sys_t *s);
/* Sends `req` (type and body set; id, ts and producer are filled) to
   crm-<svc>'s control endpoint and decodes its answer into `answer`
   (caller clears). 0, or -1 when no answer came in 10 s. */
int crm_h_ask(crm_h_sys_t *s, const char *svc, crm_msg_t *req, crm_msg_t *answer);
/* audit.run on crm-auditor's control endpoint as crmctl asks (kind audit,
   abc or retention; the others may be NULL); the run id into `id`
   (fails the test when refused). */
void crm_h_audit_ask(crm_h_sys_t *s, const char *kind, const char *period, const char *dealer, const char *region,
                     char *id, size_t size);
/* Waits until the run is done (fails the test after 30 s). */
void crm_h_audit_wait(crm_h_sys_t *s, const char *run);
/* A run's figures for a dealer (crm:audit:run:<A>:dealers), parsed; the
   caller json_decref()s (a json_t *, void here to keep jansson out of the
   header's users). */
void *crm_h_audit_figures(crm_h_sys_t *s, const char *run, const char *dealer);
/* The integer at "a.b.c" in a JSON object (fails the test when absent). */
long long crm_h_json_num(const void *json, const char *path);

#endif
