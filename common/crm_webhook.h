/*  crm_webhook: signing and verifying webhooks by Standard Webhooks v1.0.0.
 *
 *  The notifier's dealer-webhook channel POSTs a body with three headers:
 *  webhook-id (the same on every retry), webhook-timestamp (Unix seconds of
 *  the attempt) and webhook-signature, a space-separated list of
 *  "v1,<base64 HMAC-SHA256 of "id.timestamp.body">", one per secret, so a
 *  dealer's secret can be rotated without a gap. A secret is "whsec_" and the
 *  standard base64 (with padding) of 24 to 64 random bytes; the HMAC key is
 *  the decoded bytes. No I/O here: the HTTP part lives in the notifier, and
 *  crm_webhook_verify is the reference dealers' code is checked against
 *  (tools/WEBHOOKS.md).
 */
#ifndef CRM_WEBHOOK_H
#define CRM_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRM_WEBHOOK_KEY_MIN 24 /* key bytes, as the spec asks */
#define CRM_WEBHOOK_KEY_MAX 64
#define CRM_WEBHOOK_SECRET_SZ 96 /* "whsec_", 88 base64 characters of 64 bytes, NUL */
#define CRM_WEBHOOK_ID_MAX 256   /* bytes of a webhook-id */
#define CRM_WEBHOOK_KEYS_MAX 4   /* signatures in one header (rotation needs 2) */
#define CRM_WEBHOOK_SIG_SZ (CRM_WEBHOOK_KEYS_MAX * 48) /* "v1," 44 chars, a space each, NUL */
#define CRM_WEBHOOK_TOLERANCE_DEFAULT 300              /* seconds either side of now */

/* A decoded secret. Holds key material: callers clear it (sodium_memzero)
   when done if it lived anywhere but the stack of a short function. */
typedef struct {
    uint8_t bytes[CRM_WEBHOOK_KEY_MAX];
    size_t len;
} crm_webhook_key_t;

/* The three header values of one attempt, NUL-terminated. */
typedef struct {
    char id[CRM_WEBHOOK_ID_MAX + 1];
    char timestamp[24];
    char signature[CRM_WEBHOOK_SIG_SZ];
} crm_webhook_headers_t;

typedef enum {
    CRM_WEBHOOK_OK = 0,
    CRM_WEBHOOK_BAD_SECRET,   /* not whsec_ + base64 of 24..64 bytes */
    CRM_WEBHOOK_BAD_HEADERS,  /* id or timestamp missing or malformed */
    CRM_WEBHOOK_NO_SIGNATURE, /* no "v1," entry in webhook-signature */
    CRM_WEBHOOK_MISMATCH,     /* v1 entries, none made with this secret */
    CRM_WEBHOOK_TOO_OLD,      /* timestamp more than the tolerance before now */
    CRM_WEBHOOK_TOO_NEW       /* timestamp more than the tolerance after now */
} crm_webhook_verdict_t;

/* Decodes "whsec_<base64>" into `key`. Bare base64 is accepted as well, as
   the Standard Webhooks libraries do; anything else (whsk_/whpk_ keys, bad
   or unpadded base64, fewer than 24 or more than 64 bytes, NULL) is -1 with
   `key` cleared. 0 on success. */
int crm_webhook_secret_parse(const char *text, crm_webhook_key_t *key);

/* A new secret of `nbytes` random bytes (24..64; 0 means 32) from libsodium,
   as "whsec_<base64>" into `out`. The length written, or -1 (out "") when
   `nbytes` is out of range, `out` is too small or libsodium fails to start.
   CRM_WEBHOOK_SECRET_SZ bytes always suffice. */
int crm_webhook_secret_generate(size_t nbytes, char *out, size_t size);

/* True when `id` may be a webhook-id: 1 to CRM_WEBHOOK_ID_MAX bytes of
   printable ASCII other than space and '.' (the signed content's
   separator). "msg_..." and our notification ids pass. */
bool crm_webhook_id_valid(const char *id);

/* Fills `out` for the message `id` sent at `timestamp` (Unix seconds, >= 0)
   with `body` (`len` raw bytes, sent exactly as signed): one v1 signature
   per key, in the order given. 0, or -1 (out cleared) when the id is
   invalid, the timestamp negative, `nkeys` is 0 or above
   CRM_WEBHOOK_KEYS_MAX, or a key's length is outside 24..64. */
int crm_webhook_sign(const char *id, int64_t timestamp, const void *body, size_t len,
                     const crm_webhook_key_t *keys, size_t nkeys, crm_webhook_headers_t *out);

/* Checks a received webhook as a dealer should: `secret` as text
   ("whsec_..."), the three header values as received (NULL for a missing
   one), the raw body, the receiver's clock `now` and `tolerance` seconds
   (<= 0 means CRM_WEBHOOK_TOLERANCE_DEFAULT). Valid when the timestamp is
   within the tolerance and any "v1," entry equals the HMAC of this secret
   (compared in constant time); other versions are skipped. Checked in
   this order: secret, headers, timestamp (cheap, before any HMAC), then the
   signatures. */
crm_webhook_verdict_t crm_webhook_verify(const char *secret, const char *id, const char *timestamp,
                                         const char *signature, const void *body, size_t len,
                                         int64_t now, int64_t tolerance);

/* "ok", "bad_secret", "bad_headers", "no_signature", "mismatch", "too_old",
   "too_new"; "unknown" for anything else. */
const char *crm_webhook_verdict_str(crm_webhook_verdict_t verdict);

#endif
