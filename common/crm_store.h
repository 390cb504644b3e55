/*  crm_store: the Redis connection every service keeps.
 *
 *  Connects by URL, puts a timeout on every call, and after a failure
 *  reconnects lazily with exponential backoff (100 ms doubling to 5 s), so a
 *  handler never sleeps waiting for Redis: a call made while Redis is away
 *  fails at once and the caller carries on or retries from a timer.
 *
 *  crm_tx_t collects a handler's state changes and emitted events; one
 *  crm_store_commit sends them as MULTI ... EXEC. Events are appended by the
 *  crm_append function, so each gets the next number of its stream inside
 *  the same transaction. A failed commit is never retried blindly: whether
 *  it applied is decided from Redis (cursor, idempotency key) by the caller.
 */
#ifndef CRM_STORE_H
#define CRM_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crm_proto.h"

typedef struct crm_store_t crm_store_t;
typedef struct crm_tx_t crm_tx_t;

extern const char crm_functions_lua[];
extern const char crm_append_lua[];

/* Parses the URL and connects; NULL (with a line on stderr) on a bad URL or
   when no connection could be made. Loads the function library. */
crm_store_t *crm_store_new(const char *url, int timeout_ms);
/* The same for a client that only reads (crmctl showing things): it loads
   no function library, so it writes nothing and works with a read-only
   user or on a replica. */
crm_store_t *crm_store_reader(const char *url, int timeout_ms);
void crm_store_destroy(crm_store_t **self_p);
const char *crm_store_error(const crm_store_t *self);
bool crm_store_connected(const crm_store_t *self);

/* What went wrong in the last call (hiredis keeps err/errstr the same way):
   DOWN and BUSY pass by themselves (Redis away, timed out, loading its data,
   running a slow script, out of memory, a replica not yet writable), so the
   caller retries later; REFUSED is Redis refusing the command itself (wrong
   type, bad argument, EXECABORT), which no retry can mend: the caller
   refuses the input, keeps it for review and moves on. */
typedef enum {
    CRM_STORE_OK = 0,
    CRM_STORE_DOWN,
    CRM_STORE_BUSY,
    CRM_STORE_REFUSED
} crm_store_err_t;
crm_store_err_t crm_store_last_error(const crm_store_t *self);
/* True when the last failure is DOWN or BUSY. */
bool crm_store_passing(const crm_store_t *self);
/* Counts connections made: a WATCH is lost with its connection, so a
   caller that WATCHed compares this before it commits. */
unsigned long crm_store_generation(const crm_store_t *self);
/* Drops any WATCH on the connection (after a handler that read under
   WATCH gave up); keeps crm_store_last_error as it was. */
void crm_store_unwatch(crm_store_t *self);

/* One command. Returns the reply (caller frees with freeReplyObject), or
   NULL on a connection failure or an error reply, both logged with `why`;
   crm_store_last_error tells which. */
redisReply *crm_store_cmd(crm_store_t *self, const char *fmt, ...);
redisReply *crm_store_cmdargv(crm_store_t *self, int argc, const char **argv, const size_t *lens);

/* Transactions. */
crm_tx_t *crm_tx_new(const char *producer, long long stream_maxlen);
void crm_tx_destroy(crm_tx_t **self_p);
void crm_tx_reset(crm_tx_t *self);
size_t crm_tx_size(const crm_tx_t *self);
/* Queues a command; returns its index in the EXEC result, or -1. For
   crm_tx_cmdargv, `lens` may be NULL when every argument is a C string. */
int crm_tx_cmd(crm_tx_t *self, const char *fmt, ...);
/* The Redis protocol form of `fmt` as hiredis's redisFormatCommand gives it
   (crm_tx_cmd's and crm_store_cmd's): *out malloc'ed; its length, or -1. */
int crm_store_format(char **out, const char *fmt, ...);
int crm_tx_cmdargv(crm_tx_t *self, int argc, const char **argv, const size_t *lens);
/* Queues an event: fills id, ts and producer if unset, encodes it and appends
   it to its stream at commit. The message is not kept (the caller clears
   it). Returns the emit's index or -1. */
int crm_tx_emit(crm_tx_t *self, crm_msg_t *msg);
/* Queues a durable timer: at `due_ms` `event` is appended to its stream by
   crm_store_claim_timers, exactly once. Re-scheduling an id replaces it. */
int crm_tx_timer(crm_tx_t *self, const char *set, const char *timer_id, int64_t due_ms,
                 crm_msg_t *event);
int crm_tx_timer_cancel(crm_tx_t *self, const char *set, const char *timer_id);
/* The same for `n` timers in three commands. */
int crm_tx_timer_cancel_many(crm_tx_t *self, const char *set, const char *const *timer_ids, size_t n);
/* Compact durable timers: a timer is only its id (1 to CRM_DUE_ID_MAX
   bytes without a space, e.g. "o:K12"; a longer one fails the transaction), scored by its due time in crm:due:<set>; what to
   do when it falls due is decided then, from the id and the state it names.
   crm_store_fire_due claims them. Re-scheduling an id moves it. */
#define CRM_DUE_ID_MAX 80
int crm_tx_due(crm_tx_t *self, const char *set, const char *id, int64_t due_ms);
int crm_tx_due_cancel(crm_tx_t *self, const char *set, const char *id);
/* The same for `n` ids in one command. */
int crm_tx_due_cancel_many(crm_tx_t *self, const char *set, const char *const *ids, size_t n);
/* Runs MULTI, the queued commands, EXEC. 0 when every command succeeded;
   CRM_TX_CONFLICT when a key WATCHed before (crm_store_cmd "WATCH ...")
   changed, so nothing was applied and the caller may redo its reads; -1
   otherwise (logged; crm_store_last_error: DOWN when the outcome is unknown,
   REFUSED when Redis refused a command, in which case the other commands of
   an EXEC may have been applied). After success the emits carry their
   numbers. */
#define CRM_TX_CONFLICT (-2)
int crm_store_commit(crm_store_t *self, crm_tx_t *tx);
/* The same, calling `meanwhile(arg)` once the transaction is sent and
   before its replies are read: work that overlaps Redis applying it. It
   must not use this store. */
int crm_store_commit_with(crm_store_t *self, crm_tx_t *tx, void (*meanwhile)(void *arg), void *arg);
/* Sends the queued commands as one pipeline, without a transaction (for
   batched reads; WATCH may be among them). 0 when every reply arrived and
   none is an error; the replies stay in `tx` (crm_tx_result) until reset. */
int crm_store_pipeline(crm_store_t *self, crm_tx_t *tx);
/* After a commit Redis refused in part (an EXEC whose other commands were
   applied, crm_store_last_error REFUSED): how many commands failed, their
   indices in *idx (valid until reset). 0 when none failed or nothing ran. */
size_t crm_tx_failed(const crm_tx_t *self, const int **idx);
/* The commands that failed, back to back in Redis protocol (for
   crm_tx_raw later); malloc'ed, NULL when none failed. */
char *crm_tx_failed_blob(const crm_tx_t *self, int except, size_t *len);
/* The same for the failed commands of indices [from, to) only (one
   message's part of a batch). */
char *crm_tx_failed_blob_in(const crm_tx_t *self, int from, int to, size_t *len);
/* Queues commands already in Redis protocol (one or more, back to back,
   as crm_tx_failed_blob gives them): the commands a refused commit left out,
   applied again. Returns how many, or -1 when `blob` is not whole. */
int crm_tx_raw(crm_tx_t *self, const char *blob, size_t len);
/* Result of queued command `index` after a commit or a pipeline, or NULL. */
const redisReply *crm_tx_result(const crm_tx_t *self, int index);

typedef struct {
    char stream[CRM_NAME_MAX];
    uint64_t seq; /* 0 until committed */
    char *frame;  /* the envelope, seq patched after commit */
    size_t len;
    size_t seq_off; /* where the 8-byte seq sits in frame */
    int index;      /* of the transaction's crm_append_lua in the EXEC result, -1 until commit */
    size_t group;   /* its stream's place in that call's reply */
    size_t place;   /* its place in its stream's numbers */
} crm_emit_t;

size_t crm_tx_emit_count(const crm_tx_t *self);
const crm_emit_t *crm_tx_emit_at(const crm_tx_t *self, size_t i);

/* Claims up to `limit` timers of `set` due at `now_ms`, appending their
   events; returns how many (their frames in `out`, which the caller resets),
   or -1. */
int crm_store_claim_timers(crm_store_t *self, const char *set, int64_t now_ms, int limit,
                           long long maxlen, crm_tx_t *out);

/* Claims up to `limit` timers of due set `set` due at `now_ms` (oldest
   first): removes them and appends one timers.fired event listing them to
   stream "timer", in one step, so two instances never fire a timer twice
   and a crash cannot lose one. Returns how many (the event in `out`, which
   the caller publishes and resets), or -1. */
int crm_store_fire_due(crm_store_t *self, const char *set, int64_t now_ms, int limit,
                       long long maxlen, const char *producer, crm_tx_t *out);

/* The value of `name` in a field/value array reply (HGETALL, a stream
   entry's fields), or NULL. The pointer lives as long as the reply. */
const char *crm_reply_field(const redisReply *pairs, const char *name);
/* The same, with `fallback` when the field is missing (for printing). */
const char *crm_reply_field_or(const redisReply *pairs, const char *name, const char *fallback);
const redisReply *crm_reply_field_reply(const redisReply *pairs, const char *name);

/* A fresh message id: a per-process random prefix and a counter. */
void crm_new_id(char *out, size_t size);

#endif
