/*  gateway: the dealer gateway inside crm-dispatcher.
 *
 *  Each dealer has its own dispatch stream, "dealer.<dealer id>", kept in
 *  Redis (crm:{dealer.<id>}:events, entry "<seq>-0", field m = envelope).
 *  The gateway serves it to the dealers' systems on two CURVE sockets
 *  (tools/DEALERS.md is the protocol):
 *
 *  - an XPUB (live push) in manual mode: a dealer may subscribe to
 *    "dealer.<its own id>:" and to nothing else; every other subscription
 *    (another dealer's topic, the empty prefix) is refused and logged.
 *    Every second each certified dealer's topic also carries a heartbeat
 *    with the latest number of its stream, so a client notices a lost last
 *    push (or a subscription that never took) within seconds;
 *  - a ROUTER for requests, served by the request framework (crm_request):
 *    dealer.replay{from} (the stored frames from `from` on, each as its own
 *    message, then a dealer.reply), and the dispatcher's dealer.ack and
 *    dealer.status, each answered by a dealer.reply after its commit.
 *
 *  Who a peer is comes from its certificate, never from a payload
 *  (crm_curve: zauth plus the certificate's "dealer-id"). Certificates are
 *  issued and revoked through crm-dispatcher's control endpoint
 *  (cert.issue, cert.revoke): trusted, or cut off, the moment the request
 *  is answered. Revoking cuts open subscriptions too: libzmq cannot drop
 *  one XPUB peer, so the XPUB is rebuilt; certified dealers reconnect and
 *  replay what they missed.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include "crm_service.h"

#define GATEWAY_PUB_DEFAULT "tcp://127.0.0.1:7301"
#define GATEWAY_ROUTER_DEFAULT "tcp://127.0.0.1:7302"
#define GATEWAY_CERT_DIR_DEFAULT "var/dealer-certs"
#define GATEWAY_SERVER_CERT_DEFAULT "var/gateway.cert"

#define GATEWAY_REPLAY_BATCH 1000 /* stored frames sent per loop turn, all replays together */
#define GATEWAY_REPLAYS_MAX 256   /* replays in progress at once (one per dealer) */
#define GATEWAY_HEARTBEAT_MS 1000 /* heartbeats on the live socket */
#define GATEWAY_ROWS_MAX 32       /* uplink request types served besides replay, ack and status */

typedef struct gateway_t gateway_t;

/* Starts CURVE on `cert_dir` (zauth before anything is bound), loads or
   makes the gateway's certificate, binds the XPUB and serves the ROUTER
   with dealer.replay, the dispatcher's `on_ack` (idempotent) and
   `on_status` handlers, and the `uplink` rows (uplink.h; ends with {NULL}). NULL (logged) on failure. */
gateway_t *gateway_new(crm_service_t *svc, const char *cert_dir, const char *server_cert,
                       const char *pub_endpoint, const char *router_endpoint,
                       crm_request_fn on_ack, crm_request_fn on_status, const crm_request_t *uplink);

/* Pushes one committed dealer frame live: [topic "dealer.<id>:", frame] on
   the XPUB. Never blocks: a frame a slow dealer cannot take is dropped and
   the dealer fills the gap by replay. */
void gateway_push(gateway_t *gw, const char *dealer_id, const void *frame, size_t len);

/* The last number of a dealer's stream (0 when none), or -1. */
int64_t gateway_last(crm_store_t *store, const char *dealer_id);

/* The dealers' certificates (cert.issue / cert.revoke go through it). */
crm_curve_t *gateway_curve(gateway_t *gw);
/* After a revocation: cut open subscriptions and replays made with a
   certificate that is no longer trusted. */
void gateway_cut(gateway_t *gw);

/* The answer of a dealer request: a dealer.reply (for the handlers). */
crm_msg_t *gateway_reply_ok(crm_req_t *req);

/* The public key of the gateway (Z85), for tests and logs. */
const char *gateway_public_key(gateway_t *gw);

void gateway_destroy(gateway_t **gw_p);

#endif
