/*  crm_curve: CURVE authentication for a service's request sockets.
 *
 *  Dealers' systems (on the dispatcher's gateway) and, optionally per
 *  deployment, lead sources (on intake's lead endpoint) connect with CURVE
 *  certificates. This module keeps what that takes, once:
 *
 *  - the service's own certificate: loaded from `server_cert` (CZMQ keeps
 *    the secret half in "<file>_secret"), or made there on first start;
 *  - a directory of trusted public certificates, one "<id>.cert" per peer,
 *    whose metadata `meta_key` ("dealer-id", "source-id") names the peer;
 *  - CZMQ's zauth (the ZAP handler), started before any socket is bound,
 *    which refuses unknown keys and passes each certificate's metadata into
 *    the messages of its connection;
 *  - a map public key -> id of our own, so a certificate revoked after its
 *    connection was made is refused too (crm_curve_peer).
 *
 *  zauth serves a whole ZeroMQ context, so a process has at most one.
 *  Certificates are issued and revoked through the owning service
 *  (requests cert.issue / cert.revoke), which calls crm_curve_issue /
 *  crm_curve_revoke: trusted or refused the moment the request is answered.
 *  A change made by hand in the directory is picked up by crm_curve_reload,
 *  which the service calls every second; it re-reads the directory only
 *  when it changed.
 */
#ifndef CRM_CURVE_H
#define CRM_CURVE_H

#include <czmq.h>
#include <stdbool.h>

typedef struct crm_curve_t crm_curve_t;

/* `kind` names the peers in logs and events ("dealer", "source"). NULL
   (logged) when zauth cannot start or the certificate cannot be loaded or
   made. The directory is created when missing. */
crm_curve_t *crm_curve_new(const char *cert_dir, const char *server_cert, const char *meta_key,
                           const char *kind);
void crm_curve_destroy(crm_curve_t **self_p);

/* Makes `sock` a CURVE server with our certificate (ZAP domain = kind,
   linger 0). Call before binding. */
void crm_curve_secure(crm_curve_t *self, zsock_t *sock);

/* The certified id of the peer that sent `frame`, while its certificate is
   still trusted; NULL otherwise. *key_out (may be NULL) gets the peer's
   public key (Z85), or NULL. */
const char *crm_curve_peer(crm_curve_t *self, zframe_t *frame, const char **key_out);
/* True while `key` (Z85) is trusted. */
bool crm_curve_trusts(crm_curve_t *self, const char *key);

/* Re-reads the directory when it changed since the last read (always when
   `force`). *removed (may be NULL) is set when a key trusted before is no
   longer trusted: the caller cuts connections made with it. 0 or -1. */
int crm_curve_reload(crm_curve_t *self, bool force, bool *removed);

/* Trusts `public_key` (Z85, 40 characters) for `id` from now on: writes
   "<dir>/<id>.cert" (metadata meta_key = id) atomically and reloads. 0, or
   -1 with `code` (bad_id, invalid, exists, failed) and `err` ("field: why"). */
int crm_curve_issue(crm_curve_t *self, const char *id, const char *public_key, char *code,
                    size_t codesz, char *err, size_t errsz);
/* Stops trusting `id`: moves its certificate to "<dir>.revoked/" (kept for
   the record) and reloads. key_out (41 bytes, may be NULL) gets the key
   revoked. 0, or -1 with code (bad_id, unknown, failed) and err. */
int crm_curve_revoke(crm_curve_t *self, const char *id, char *key_out, char *code, size_t codesz,
                     char *err, size_t errsz);

/* Calls fn for every trusted id (heartbeats to every certified peer). */
void crm_curve_each(crm_curve_t *self, void (*fn)(void *arg, const char *id), void *arg);

const char *crm_curve_public_key(const crm_curve_t *self);
const char *crm_curve_kind(const crm_curve_t *self);
size_t crm_curve_count(const crm_curve_t *self);

#endif
