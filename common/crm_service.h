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
 *  - nothing stalls a stream: a message its handler refuses, or one that
 *    still fails after a bounded number of tries or time while Redis
 *    answers, is kept in crm:rejects with its reason and the stream moves
 *    on; `reject.retry` applies it again once the cause is fixed;
 *  - requests as data: a table of (request type -> handler) per endpoint;
 *    the framework owns the ROUTER socket, decodes with the same rules,
 *    hands the handler a transaction, commits, and only then answers; the
 *    answer is kept, so a request sent again gets the same answer and
 *    changes nothing (see "Requests" below). Every service has a control
 *    endpoint (--control) for crmctl;
 *  - SIGINT/SIGTERM stop the loop between two messages; cursors are flushed
 *    and the process exits 0.
 */
#ifndef CRM_SERVICE_H
#define CRM_SERVICE_H

#include <czmq.h>

#include "crm_clock.h"
#include "crm_config.h"
#include "crm_curve.h"
#include "crm_id.h"
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

/* ------------------------------------------------------------ requests
 *
 * A request arrives on an endpoint (a ROUTER socket the framework owns) as
 * one frame holding an envelope (REQ clients' empty delimiter frame is
 * accepted too). The framework decodes it, checks the peer (CURVE
 * endpoints), finds its row, checks its idempotency key (the envelope id,
 * or what the row's key function says, e.g. lead.submit's submission_id)
 * against crm_id's rule, and:
 * - a key whose answer is kept gets that answer again, nothing else runs;
 * - else the handler runs with a transaction; CRM_APPLIED commits it with
 *   the answer kept under the key (WATCHed, so two instances never apply the
 *   same request twice), and only then answers; CRM_REFUSE answers the
 *   handler's error and keeps the frame in crm:rejects; CRM_RETRY answers
 *   "unavailable" (retry with the same id).
 * Answers carry corr = the request's id. Kept answers live
 * CRM_ANSWER_TTL_DAYS (7) days, or what the row's keep_opt option says. */
typedef struct crm_req_t crm_req_t;
typedef struct crm_route_t crm_route_t;
typedef struct crm_endpoint_t crm_endpoint_t;

typedef enum {
    CRM_REQ_WRITE = 0,  /* a transaction, committed before the answer, which is kept */
    CRM_REQ_IDEMPOTENT, /* a transaction, but the answer is not kept: the handler is idempotent
                           by nature (an acknowledgement up to a number) */
    CRM_REQ_READ,       /* no transaction; the answer is sent at once, or later (CRM_DEFERRED) */
    CRM_REQ_WRITE_BATCH /* as CRM_REQ_WRITE, for a batch handler that reads the kept answers itself
                           in its first round trip (crm_req_kept_reads below): one less a batch */
} crm_req_mode_t;

/* A CRM_REQ_READ handler that keeps the request (crm_req_detach) and
   answers later, e.g. a replay sending many frames. */
#define CRM_DEFERRED ((crm_handled_t) 3)

typedef crm_handled_t (*crm_request_fn)(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
/* Many requests of one type at once in one transaction (intake's batches).
   Returns CRM_APPLIED to commit (a request refused with crm_req_fail
   changes nothing; the others are APPLIED), CRM_RETRY for none (Redis
   away), or CRM_REFUSE when Redis refused what the batch read: the
   framework then runs each request alone, so only the one at fault fails. */
typedef crm_handled_t (*crm_request_batch_fn)(crm_service_t *svc, crm_req_t **reqs, int n,
                                              crm_tx_t *tx);
/* The idempotency key of a request into `out`: 0, or -1 with `err` naming
   the field. Default: the envelope's id. */
typedef int (*crm_request_key_fn)(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err);

typedef struct {
    const char *type;           /* wire type, e.g. "dealer.register" */
    crm_request_fn fn;          /* or batch */
    crm_req_mode_t mode;
    crm_request_key_fn key;     /* NULL: the envelope id */
    const char *keyspace;       /* rows sharing keys share a keyspace; NULL: "request" */
    const char *keep_opt;       /* option holding how many days answers are kept; NULL: answer-ttl-days */
    crm_request_batch_fn batch; /* handles consecutive requests of this type together */
    /* The key function's key is "<peer>/<key>" on an endpoint without CURVE
       (crmctl acting for a dealer): the answer is kept as that peer's, so
       the request sent on a CURVE endpoint by the peer and on this one for
       it is one request. */
    bool key_names_peer;
} crm_request_t;

/* For a row of mode CRM_REQ_WRITE_BATCH: appends the WATCH and the MGET of the
   requests' kept answers to `reads` and returns the MGET's index; after the
   round trip, crm_req_kept_apply answers those that have one, and
   crm_req_is_kept tells them (the handler leaves them alone: no change, no
   answer of its own). The WATCH also takes the handler's own `watch` keys
   (nwatch of them; none: NULL, 0): one WATCH a round trip. */
int crm_req_kept_reads(crm_req_t **reqs, int n, crm_tx_t *reads, const char *const *watch, int nwatch);
void crm_req_kept_apply(crm_req_t **reqs, int n, const crm_tx_t *reads, int index);
bool crm_req_is_kept(const crm_req_t *req);

/* Builds an error answer for an endpoint's clients (a lead.rejected, a
   dealer.reply); default: a reply. */
typedef void (*crm_error_fn)(crm_req_t *req, const char *field, const char *code, const char *text);

typedef struct {
    const char *name;              /* "control", "leads", "gateway": logs and crm:rejects */
    const crm_request_t *requests; /* ends with {NULL} */
    crm_error_fn error;            /* NULL: reply {ok: false, code, message, errors} */
    /* Called for each write request once it is decoded and keyed, before
       its batch runs, possibly while the batch before it commits: work
       that needs no Redis (intake's checks), kept with crm_req_set_data.
       May be NULL. */
    void (*prepare)(crm_req_t *req);
    /* What of a kept answer the request gives again (intake: the
       submission id, which is the key): taken out before it is kept
       (restore false) and put back when it is used (restore true). May be
       NULL. */
    void (*kept)(crm_msg_t *answer, const char *key, bool restore);
} crm_endpoint_def_t;

/* What prepare made of a request (freed with `free_fn` when the request
   is done); NULL when nothing. */
void crm_req_set_data(crm_req_t *req, void *data, void (*free_fn)(void *data));
void *crm_req_data(const crm_req_t *req);

/* Binds `bind` and serves `def` on it from the service's loop until the
   service stops. With `curve` the socket is a CURVE server and every
   request carries its certified peer (refused "not_certified" otherwise).
   NULL (logged) when the endpoint cannot be bound. Call from on_start. */
crm_endpoint_t *crm_service_endpoint(crm_service_t *svc, const crm_endpoint_def_t *def,
                                     const char *bind, crm_curve_t *curve);

const crm_msg_t *crm_req_msg(const crm_req_t *req);
/* The certified peer (dealer id, source id) on a CURVE endpoint, else NULL. */
const char *crm_req_peer(const crm_req_t *req);
/* The peer's public key (Z85) on a CURVE endpoint, else NULL. */
const char *crm_req_peer_key(const crm_req_t *req);
/* The idempotency key (for lead.submit: the effective submission id). */
const char *crm_req_key(const crm_req_t *req);
/* The request as received. */
const void *crm_req_frame(const crm_req_t *req, size_t *len);
/* The answer, (re)initialised to `type`; the handler fills its body. The
   framework sets id, ts, producer and corr. */
crm_msg_t *crm_req_answer(crm_req_t *req, crm_type_t type);
/* The answer set so far (e.g. by crm_req_fail), to add fields; or NULL. */
crm_msg_t *crm_req_answer_msg(crm_req_t *req);
/* A reply {ok: true, id} (id may be NULL); returns it for more fields. */
crm_msg_t *crm_req_ok(crm_req_t *req, const char *id);
/* An error answer built by the endpoint's error function. Returns
   CRM_REFUSE, so a handler can `return crm_req_fail(...)`. */
crm_handled_t crm_req_fail(crm_req_t *req, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same from "field: why" (the field before the first ": "; "service"
   when there is none), as crm_curve and the gateway write their errors. */
crm_handled_t crm_req_fail_text(crm_req_t *req, const char *code, const char *text);
/* The answer of a request with no answer set when its transaction failed in
   a way that passes (Redis away). */
crm_handled_t crm_req_unavailable(crm_req_t *req);

/* cert.issue and cert.revoke for a service that keeps a certificate
   directory (`curve`, NULL when the deployment has none): trusts the key
   (or stops trusting it) at once, emits cert.issued / cert.revoked on the
   ops stream and answers a reply. */
crm_handled_t crm_req_cert_issue(crm_req_t *req, crm_tx_t *tx, crm_curve_t *curve);
crm_handled_t crm_req_cert_revoke(crm_req_t *req, crm_tx_t *tx, crm_curve_t *curve);

/* A CRM_REQ_READ handler that answers later takes the route back to its
   client; the framework then sends nothing. */
crm_route_t *crm_req_detach(crm_req_t *req);
/* Sends one frame to the client: 0 sent, 1 its queue is full (try later),
   -1 the client is gone. */
int crm_route_send(crm_route_t *route, const void *data, size_t len);
/* Encodes `answer` (id, ts, producer, corr filled) and sends it; as above. */
int crm_route_answer(crm_route_t *route, crm_msg_t *answer);
void crm_route_destroy(crm_route_t **route_p);

typedef struct {
    const char *name;        /* "intake": binary crm-intake, cursors, status */
    const char *summary;     /* one line for --help */
    const char *pub_default; /* default publish endpoint */
    const crm_handler_t *handlers; /* ends with {NULL, NULL}; may be NULL */
    const crm_tick_t *ticks;       /* ends with {NULL, 0, NULL}; may be NULL */
    const char *const *timer_sets; /* durable timer sets this service fires; NULL-terminated */
    /* compact timer sets (crm_tx_due) this service fires as timers.fired on
       stream "timer" (its handler applies them); NULL-terminated */
    const char *const *due_sets;
    /* Several instances may run with one consumer name: each message is
       applied by exactly one of them (the cursor is read and committed
       under WATCH; batching is off). */
    bool shared_consumer;
    const crm_opt_t *opts;         /* the service's own options, CRM_OPT_END-terminated */
    const crm_request_t *requests; /* served on the control endpoint (with reject.retry); may be NULL */
    const char *control_default;   /* default control endpoint */
    int (*on_start)(crm_service_t *svc); /* after catch-up, before serving; -1 aborts */
    void (*on_stop)(crm_service_t *svc);
    /* Called with the messages of the bus (or of a catch-up from Redis)
       about to be applied, in order, before the first of them is: one
       round trip can read for all (what each handler reads for itself
       otherwise). Everything before them is committed. May be NULL. */
    void (*prefetch)(crm_service_t *svc, const crm_msg_t *msgs, size_t n);
    /* How many timers of due set `set` the service can take now (a
       notifier with so many sends in flight): each turn fires at most
       that many, in one round, and none when it is 0. NULL: fire-batch,
       in rounds while they come full. */
    int64_t (*due_limit)(crm_service_t *svc, const char *set);
    /* How often due sets are claimed, ms; 0: every 100 ms. A service with
       a due_limit claims more often, so that room freed is taken soon. */
    int due_every_ms;
} crm_service_def_t;

/* Runs the service until SIGINT/SIGTERM. Returns the process exit code:
   0 after a clean stop (or --help/--version), 1 when start-up failed
   (with a clear message), 2 on bad flags. */
int crm_service_main(const crm_service_def_t *def, int argc, char **argv);

crm_store_t *crm_service_store(crm_service_t *svc);
zloop_t *crm_service_loop(crm_service_t *svc);
const char *crm_service_opt(crm_service_t *svc, const char *name);
/* An integer option in [min, max]; -1 after a message naming it. */
int crm_service_opt_i64(crm_service_t *svc, const char *name, int64_t min, int64_t max, int64_t *out);
const char *crm_service_name(crm_service_t *svc);
void crm_service_set_state(crm_service_t *svc, void *state);
void *crm_service_state(crm_service_t *svc);
/* A transaction outside a handler (a request from a socket, a tick). */
crm_tx_t *crm_service_tx(crm_service_t *svc);
/* Commits `tx` and publishes its events; 0 or -1 (logged). */
int crm_service_commit(crm_service_t *svc, crm_tx_t *tx);
/* The same, with `meanwhile` run while Redis applies it (crm_store_commit_with). */
int crm_service_commit_with(crm_service_t *svc, crm_tx_t *tx, void (*meanwhile)(void *arg), void *arg);
/* Called for every committed event as it is published (after the bus
   send), e.g. to forward dealer streams to the dealer gateway. */
typedef void (*crm_publish_hook_fn)(void *arg, const crm_emit_t *emit);
void crm_service_set_publish_hook(crm_service_t *svc, crm_publish_hook_fn fn, void *arg);
/* Publishes already-committed emits of `tx` (used after claims). */
void crm_service_publish(crm_service_t *svc, crm_tx_t *tx);
/* Keeps a refused frame or message for review in crm:rejects. */
void crm_service_keep_reject(crm_service_t *svc, const char *origin, const char *field,
                             const char *reason, const void *frame, size_t len);
typedef struct {
    const char *origin;  /* stream name, endpoint name, "bus" */
    const char *kind;    /* event (can be applied again), request, frame */
    uint64_t seq;        /* event: its number in its stream */
    const char *peer;    /* request: the certified peer, if any */
    const char *type;    /* the message type, if known */
    const char *field;   /* what was wrong */
    const char *reason;
    const void *frame;
    size_t len;
    /* what a commit Redis refused in part left out, in Redis protocol:
       reject.retry applies exactly these again */
    const char *commands;
    size_t commands_len, commands_n;
    char *id_out; /* gets the entry's id (may be NULL) */
    size_t id_size;
} crm_reject_t;
void crm_service_reject(crm_service_t *svc, const crm_reject_t *r);
/* Keeps what a commit Redis refused in part left out (crm_tx_failed, but
   command `except`: the consumer's cursor, which the caller sets itself),
   as a reject like `about`; `id_out` gets its id. */
void crm_service_reject_partial(crm_service_t *svc, crm_tx_t *tx, const crm_reject_t *about, int except,
                                char *id_out, size_t id_size);
/* A handler says why it refuses or retries (kept with the message in
   crm:rejects when it is refused for good). */
void crm_service_why(crm_service_t *svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The ids an event names, checked against crm_id's name rule before they
   become parts of keys: the first `required` must be there, the others
   may be NULL or "". false after saying why (crm_service_why), for a
   handler that then refuses the message. */
bool crm_service_ids_ok(crm_service_t *svc, const char *const *ids, const char *const *names, size_t n,
                        size_t required);
/* A number that changes whenever what handlers did is not committed (a
   batch of .batch handlers dropped, a handler's own commit failed, a
   message refused or retried). A handler that
   keeps what it wrote for the later messages of its batch (they cannot
   read it from Redis before the commit) drops what it kept when the
   number changes. */
unsigned long crm_service_batch(const crm_service_t *svc);
/* What a handler returns after a failed store call: CRM_RETRY when the
   failure passes (Redis away, loading), CRM_REFUSE when Redis refused the
   command (retrying cannot help). */
crm_handled_t crm_service_failed(crm_service_t *svc);
/* How long kept answers live by default, ms. */
int64_t crm_service_answer_ttl_ms(crm_service_t *svc);

#endif
