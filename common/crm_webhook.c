/*  crm_webhook: Standard Webhooks signatures (see crm_webhook.h). */
#include "crm_webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define S_PREFIX "whsec_"
#define S_PREFIX_LEN 6
#define S_MAC_B64_LEN 44 /* base64 of 32 bytes, with padding, without NUL */

/* sodium_init is cheap once done; it picks the fastest code and seeds the
   random generator, which randombytes needs before its first use. */
static int s_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

int crm_webhook_secret_parse(const char *text, crm_webhook_key_t *key)
{
    if (!key)
        return -1;
    sodium_memzero(key, sizeof *key);
    if (!text)
        return -1;
    if (strncmp(text, S_PREFIX, S_PREFIX_LEN) == 0)
        text += S_PREFIX_LEN;
    /* Bounded: a hostile multi-megabyte "secret" is not scanned to its end. */
    size_t n = strnlen(text, sodium_base64_ENCODED_LEN(CRM_WEBHOOK_KEY_MAX,
                                                       sodium_base64_VARIANT_ORIGINAL));
    if (n == 0 || text[n] != '\0')
        return -1;
    size_t len = 0;
    /* Without an end pointer libsodium refuses trailing junk, and it refuses
       missing or extra padding and non-zero spare bits in every case. */
    if (sodium_base642bin(key->bytes, sizeof key->bytes, text, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len < CRM_WEBHOOK_KEY_MIN || len > CRM_WEBHOOK_KEY_MAX) {
        sodium_memzero(key, sizeof *key);
        return -1;
    }
    key->len = len;
    return 0;
}

int crm_webhook_secret_generate(size_t nbytes, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    if (nbytes == 0)
        nbytes = 32;
    if (nbytes < CRM_WEBHOOK_KEY_MIN || nbytes > CRM_WEBHOOK_KEY_MAX || s_init() != 0)
        return -1;
    /* sodium_bin2base64 aborts the process when its buffer is short, so the
       size is checked here first. */
    size_t b64 = sodium_base64_ENCODED_LEN(nbytes, sodium_base64_VARIANT_ORIGINAL);
    if (size < S_PREFIX_LEN + b64)
        return -1;
    uint8_t raw[CRM_WEBHOOK_KEY_MAX];
    randombytes_buf(raw, nbytes);
    memcpy(out, S_PREFIX, S_PREFIX_LEN);
    sodium_bin2base64(out + S_PREFIX_LEN, size - S_PREFIX_LEN, raw, nbytes,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(raw, sizeof raw);
    return (int) (S_PREFIX_LEN + b64 - 1);
}

bool crm_webhook_id_valid(const char *id)
{
    if (!id || !id[0])
        return false;
    size_t i = 0;
    for (; id[i]; i++) {
        unsigned char c = (unsigned char) id[i];
        if (i >= CRM_WEBHOOK_ID_MAX || c <= 0x20 || c >= 0x7f || c == '.')
            return false;
    }
    return true;
}

/* HMAC-SHA256 of "id.timestamp.body" with `key`, fed in pieces so the body
   is never copied. */
static void s_mac(const crm_webhook_key_t *key, const char *id, const char *ts, const void *body,
                  size_t len, uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key->bytes, key->len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *) id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *) ".", 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *) ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *) ".", 1);
    if (len)
        crypto_auth_hmacsha256_update(&st, body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

int crm_webhook_sign(const char *id, int64_t timestamp, const void *body, size_t len,
                     const crm_webhook_key_t *keys, size_t nkeys, crm_webhook_headers_t *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!crm_webhook_id_valid(id) || timestamp < 0 || (len && !body) || !keys || nkeys == 0 ||
        nkeys > CRM_WEBHOOK_KEYS_MAX || s_init() != 0)
        return -1;
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].len < CRM_WEBHOOK_KEY_MIN || keys[i].len > CRM_WEBHOOK_KEY_MAX)
            return -1;
    strcpy(out->id, id);
    snprintf(out->timestamp, sizeof out->timestamp, "%" PRId64, timestamp);
    char *p = out->signature;
    for (size_t i = 0; i < nkeys; i++) {
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        s_mac(&keys[i], out->id, out->timestamp, body, len, mac);
        if (i)
            *p++ = ' ';
        memcpy(p, "v1,", 3);
        p += 3;
        /* Room: 48 bytes per key in CRM_WEBHOOK_SIG_SZ, 45 used here. */
        sodium_bin2base64(p, out->signature + sizeof out->signature - p, mac, sizeof mac,
                          sodium_base64_VARIANT_ORIGINAL);
        p += S_MAC_B64_LEN;
    }
    return 0;
}

/* A webhook-timestamp as we write it: decimal digits, no sign, no leading
   zero, within int64. Anything else would be signed as text but read as a
   different number. */
static int s_timestamp_parse(const char *text, int64_t *out)
{
    if (!text || !text[0] || (text[0] == '0' && text[1]))
        return -1;
    int64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

crm_webhook_verdict_t crm_webhook_verify(const char *secret, const char *id, const char *timestamp,
                                         const char *signature, const void *body, size_t len,
                                         int64_t now, int64_t tolerance)
{
    crm_webhook_key_t key;
    if (crm_webhook_secret_parse(secret, &key) != 0)
        return CRM_WEBHOOK_BAD_SECRET;
    int64_t ts = 0;
    if (!crm_webhook_id_valid(id) || s_timestamp_parse(timestamp, &ts) != 0 || (len && !body)) {
        sodium_memzero(&key, sizeof key);
        return CRM_WEBHOOK_BAD_HEADERS;
    }
    if (tolerance <= 0)
        tolerance = CRM_WEBHOOK_TOLERANCE_DEFAULT;
    /* Differences in unsigned arithmetic: exact, since ts >= 0 and the
       larger side is subtracted from. */
    crm_webhook_verdict_t verdict = CRM_WEBHOOK_OK;
    if (now > ts && (uint64_t) now - (uint64_t) ts > (uint64_t) tolerance)
        verdict = CRM_WEBHOOK_TOO_OLD;
    else if (ts > now && (uint64_t) ts - (uint64_t) now > (uint64_t) tolerance)
        verdict = CRM_WEBHOOK_TOO_NEW;
    if (verdict != CRM_WEBHOOK_OK || s_init() != 0) {
        sodium_memzero(&key, sizeof key);
        return verdict != CRM_WEBHOOK_OK ? verdict : CRM_WEBHOOK_MISMATCH;
    }

    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    s_mac(&key, id, timestamp, body, len, mac);
    sodium_memzero(&key, sizeof key);
    bool seen_v1 = false, match = false;
    const char *p = signature ? signature : "";
    while (*p && !match) {
        /* One entry: up to the next space; runs of spaces are tolerated. */
        const char *end = strchr(p, ' ');
        if (!end)
            end = p + strlen(p);
        const char *comma = memchr(p, ',', (size_t) (end - p));
        if (comma && comma - p == 2 && memcmp(p, "v1", 2) == 0) {
            seen_v1 = true;
            uint8_t got[crypto_auth_hmacsha256_BYTES];
            size_t got_len = 0;
            size_t b64_len = (size_t) (end - comma - 1);
            if (b64_len == S_MAC_B64_LEN &&
                sodium_base642bin(got, sizeof got, comma + 1, b64_len, NULL, &got_len, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) == 0 &&
                got_len == sizeof got && sodium_memcmp(got, mac, sizeof mac) == 0)
                match = true;
        }
        p = *end ? end + 1 : end;
    }
    sodium_memzero(mac, sizeof mac);
    if (match)
        return CRM_WEBHOOK_OK;
    return seen_v1 ? CRM_WEBHOOK_MISMATCH : CRM_WEBHOOK_NO_SIGNATURE;
}

const char *crm_webhook_verdict_str(crm_webhook_verdict_t verdict)
{
    switch (verdict) {
    case CRM_WEBHOOK_OK: return "ok";
    case CRM_WEBHOOK_BAD_SECRET: return "bad_secret";
    case CRM_WEBHOOK_BAD_HEADERS: return "bad_headers";
    case CRM_WEBHOOK_NO_SIGNATURE: return "no_signature";
    case CRM_WEBHOOK_MISMATCH: return "mismatch";
    case CRM_WEBHOOK_TOO_OLD: return "too_old";
    case CRM_WEBHOOK_TOO_NEW: return "too_new";
    }
    return "unknown";
}
