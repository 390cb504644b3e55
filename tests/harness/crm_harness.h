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
bool crm_h_alive(pid_t pid);

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
/* A path in the test's temporary directory (static buffer per call site). */
void crm_h_path(const crm_h_redis_t *r, const char *name, char *out, size_t size);

#endif
