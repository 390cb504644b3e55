/*  crm_service: everything a service is made of except its own rules.
 *
 *  A service declares a table of (message type -> handler), its periodic
 *  ticks and the durable timer sets it fires, and calls crm_service_main.
 *  The plumbing lives here, once:
 *
 *  - publish after commit: a handler adds its state changes and events to
 *    a transaction; the bus commits it with the consumer's cursor in one
 *    MULTI/EXEC and only then sends the events on ZeroMQ;
 *  - per-stream cursors: a message with seq <= cursor is a duplicate and is
 *    dropped; a gap is filled from Redis before going on; on start-up the
 *    service catches up from its cursors before it serves;
 *  - heartbeats every second with every stream's latest number, so a lost
 *    tail is noticed; when no heartbeat arrives the subscriber asks Redis;
 *  - frames that fail to decode are refused with a logged reason and kept in
 *    crm:rejects; the service carries on;
 *  - SIGINT/SIGTERM stop the loop between two messages; cursors are flushed
 *    and the process exits 0.
 */
#ifndef CRM_SERVICE_H
#define CRM_SERVICE_H

#include <czmq.h>

#include "crm_clock.h"
#include "crm_config.h"
#include "crm_keys.h"
#include "crm_log.h"
#include "crm_proto.h"
#include "crm_store.h"

typedef struct crm_service_t crm_service_t;

/* What a handler returns. */
typedef enum {
    CRM_APPLIED = 0, /* commit the transaction and move the cursor */
    CRM_REFUSE = 1,  /* the message can never be applied: keep it in crm:rejects, move on */
    CRM_RETRY = 2    /* a passing failure (Redis away): leave the cursor, try again later */
} crm_handled_t;

typedef crm_handled_t (*crm_handler_fn)(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
typedef struct {
    const char *type; /* wire type, e.g. "lead.created" */
    crm_handler_fn fn;
    /* true for a handler that only writes (never reads state it or an
       earlier message changed): consecutive messages then share one
       transaction, up to 512, for throughput. Such a handler must not
       return CRM_RETRY for a reason that outlives the batch. */
    bool batch;
} crm_handler_t;

typedef void (*crm_tick_fn)(crm_service_t *svc);
typedef struct {
    const char *name;
    int interval_ms;
    crm_tick_fn fn;
} crm_tick_t;

typedef struct {
    const char *name;        /* "intake": binary crm-intake, cursors, status */
    const char *summary;     /* one line for --help */
    const char *pub_default; /* default publish endpoint */
    const crm_handler_t *handlers; /* ends with {NULL, NULL}; may be NULL */
    const crm_tick_t *ticks;       /* ends with {NULL, 0, NULL}; may be NULL */
    const char *const *timer_sets; /* durable timer sets this service fires; NULL-terminated */
    const crm_opt_t *opts;         /* the service's own options, CRM_OPT_END-terminated */
    int (*on_start)(crm_service_t *svc); /* after catch-up, before serving; -1 aborts */
    void (*on_stop)(crm_service_t *svc);
} crm_service_def_t;

/* Runs the service until SIGINT/SIGTERM. Returns the process exit code:
   0 after a clean stop (or --help/--version), 1 when start-up failed
   (with a clear message), 2 on bad flags. */
int crm_service_main(const crm_service_def_t *def, int argc, char **argv);

crm_store_t *crm_service_store(crm_service_t *svc);
zloop_t *crm_service_loop(crm_service_t *svc);
const char *crm_service_opt(crm_service_t *svc, const char *name);
const char *crm_service_name(crm_service_t *svc);
void crm_service_set_state(crm_service_t *svc, void *state);
void *crm_service_state(crm_service_t *svc);
/* A transaction outside a handler (a request from a socket, a tick). */
crm_tx_t *crm_service_tx(crm_service_t *svc);
/* Commits `tx` and publishes its events; 0 or -1 (logged). */
int crm_service_commit(crm_service_t *svc, crm_tx_t *tx);
/* Called for every committed event as it is published (after the bus
   send), e.g. to forward dealer streams to the dealer gateway. */
typedef void (*crm_publish_hook_fn)(void *arg, const crm_emit_t *emit);
void crm_service_set_publish_hook(crm_service_t *svc, crm_publish_hook_fn fn, void *arg);
/* Publishes already-committed emits of `tx` (used after claims). */
void crm_service_publish(crm_service_t *svc, crm_tx_t *tx);
/* Keeps a refused frame or message for review in crm:rejects. */
void crm_service_keep_reject(crm_service_t *svc, const char *origin, const char *field,
                             const char *reason, const void *frame, size_t len);

#endif
