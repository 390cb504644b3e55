/*  gateway: the dealer gateway inside crm-dispatcher.
 *
 *  Each dealer has its own dispatch stream, "dealer.<dealer id>", kept in
 *  Redis (crm:{dealer.<id>}:events, entry "<seq>-0", field m = envelope).
 *  The gateway serves it to the dealers' systems on two CURVE sockets:
 *
 *  - an XPUB (live push) in manual mode: a dealer may subscribe to
 *    "dealer.<its own id>:" and to nothing else; every other subscription
 *    (another dealer's topic, the empty prefix) is refused and logged;
 *  - a ROUTER for requests, one frame each: dealer.replay{from} (the stored
 *    frames from `from` on, each as its own message, then a dealer.reply),
 *    dealer.ack{upto} and dealer.status, each answered by a dealer.reply.
 *
 *  Who a peer is comes from its certificate, never from a payload: zauth
 *  (started and configured before anything is bound) checks the client's
 *  key against the certificate directory and passes the certificate's
 *  metadata into the ZAP reply, so every received frame carries
 *  "dealer-id" (and "User-Id", the client's public key, z85).
 *
 *  Dealers need the gateway's public key: it is the public certificate file
 *  `server_secret_cert` (the secret half lives in `<file>_secret`, CZMQ's
 *  convention). Give that public file to each dealer with its own
 *  certificate (crmctl dealer cert).
 *
 *  Revocation: a dealer's certificate is removed from the directory. New
 *  connections are then refused by zauth; connections already established
 *  are cut by gateway_reload_certs (the XPUB is rebuilt, requests on the
 *  ROUTER are checked against the reloaded directory), which the gateway
 *  runs itself every GATEWAY_RELOAD_MS and the dispatcher may call at any
 *  time (e.g. on SIGHUP).
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

#include "crm_proto.h"
#include "crm_store.h"

#define GATEWAY_PUB_DEFAULT "tcp://127.0.0.1:7301"
#define GATEWAY_ROUTER_DEFAULT "tcp://127.0.0.1:7302"
#define GATEWAY_CERT_DIR_DEFAULT "var/dealer-certs"
#define GATEWAY_SERVER_CERT_DEFAULT "var/gateway.cert"

#define GATEWAY_REPLAY_BATCH 1000 /* stored frames sent per loop turn, all replays together */
#define GATEWAY_REPLAYS_MAX 256   /* replays in progress at once (one per dealer) */
#define GATEWAY_RELOAD_MS 5000    /* how often the certificate directory is re-read */
#define GATEWAY_DEALER_ID_MAX 32  /* = CRM_DEALER_ID_MAX */

typedef struct gateway_t gateway_t;

typedef struct {
    /* The dealer applied its stream up to `upto` (already checked <= its last number). */
    void (*on_ack)(void *arg, const char *dealer_id, uint64_t upto);
    /* A status report; return 0 when accepted, else -1 with err ("field: why") and code set. */
    int (*on_status)(void *arg, const char *dealer_id, const crm_body_dealer_status_t *st,
                     char *code, size_t codesz, char *err, size_t errsz);
    void *arg;
} gateway_handlers_t;

/* Starts zauth on the certificate directory, loads (or creates, and logs
   where) the server certificate, binds the XPUB and the ROUTER and adds
   them to `loop`. `store` stays the caller's. NULL (logged) when a socket
   cannot be bound or the certificate cannot be loaded or created. */
gateway_t *gateway_new(zloop_t *loop, crm_store_t *store, const char *cert_dir,
                       const char *server_secret_cert, const char *pub_endpoint,
                       const char *router_endpoint, const gateway_handlers_t *handlers);

/* Pushes one committed dealer frame live: [topic "dealer.<id>:", frame] on
   the XPUB. Never blocks: a frame a slow dealer cannot take is dropped and
   the dealer fills the gap by replay. */
void gateway_push(gateway_t *gw, const char *dealer_id, const void *frame, size_t len);

/* Re-reads the certificate directory (zauth and the gateway's own view).
   When a certificate disappeared, the XPUB is rebuilt so that no revoked
   dealer keeps a live subscription. 0, or -1 when the XPUB could not be
   bound again (logged; retried on the next reload). */
int gateway_reload_certs(gateway_t *gw);

/* The public key of the gateway (z85), for tests and logs. */
const char *gateway_public_key(gateway_t *gw);

/* True when `id` is a well-formed dealer id (1..GATEWAY_DEALER_ID_MAX of
   [A-Za-z0-9_-]); it becomes part of topics and Redis keys. */
bool gateway_dealer_id_valid(const char *id);

void gateway_destroy(gateway_t **gw_p);

#endif
