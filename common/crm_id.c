#include "crm_str.h"
#include "crm_id.h"

#include "crm_proto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static bool s_name_ok(const char *id)
{
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (n >= CRM_ID_NAME_MAX ||
            !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* UTF-8 (well formed, no overlongs or surrogates) without C0/C1 controls
   or DEL, at most CRM_ID_KEY_MAX bytes. */
static bool s_key_ok(const char *id)
{
    const unsigned char *s = (const unsigned char *) id;
    size_t n = strnlen(id, CRM_ID_KEY_MAX + 1);
    if (n == 0 || n > CRM_ID_KEY_MAX)
        return false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = crm_utf8_next(s + i, n - i, &cp);
        if (k <= 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return false;
        i += (size_t) k;
    }
    return true;
}

bool crm_id_valid(crm_id_kind_t kind, const char *id)
{
    if (!id)
        return false;
    return kind == CRM_ID_NAME ? s_name_ok(id) : s_key_ok(id);
}

int crm_id_check(crm_id_kind_t kind, const char *id, const char *field, char *err, size_t errsz)
{
    if (crm_id_valid(kind, id))
        return 0;
    if (err && errsz) {
        if (!id || !*id)
            crm_fmt(err, errsz, "%s: required", field);
        else if (kind == CRM_ID_NAME)
            crm_fmt(err, errsz, "%s: 1 to %d letters, digits, '-' or '_' (got %zu bytes)", field,
                     CRM_ID_NAME_MAX, strlen(id));
        else
            crm_fmt(err, errsz, "%s: 1 to %d bytes of UTF-8 text without control characters (got %zu bytes)",
                     field, CRM_ID_KEY_MAX, strlen(id));
    }
    return -1;
}

static size_t s_digits(const char *p, size_t max)
{
    size_t n = strspn(p, "0123456789");
    return n <= max ? n : 0;
}

bool crm_id_entry_valid(const char *id)
{
    if (!id)
        return false;
    size_t a = s_digits(id, 20);
    if (!a || id[a] != '-')
        return false;
    size_t b = s_digits(id + a + 1, 20);
    return b && !id[a + 1 + b];
}

bool crm_id_quarantine_valid(const char *id)
{
    if (!id || id[0] != 'Q')
        return false;
    size_t n = s_digits(id + 1, 18);
    return n && !id[1 + n];
}

void crm_id_digest(const char *const *parts, size_t nparts, char out[CRM_ID_DIGEST_SZ])
{
    crypto_hash_sha256_state st;
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < nparts; i++) {
        const char *p = parts[i] ? parts[i] : "";
        crypto_hash_sha256_update(&st, (const unsigned char *) p, strlen(p) + 1);
    }
    crypto_hash_sha256_final(&st, hash);
    sodium_bin2hex(out, CRM_ID_DIGEST_SZ, hash, sizeof hash);
}

void crm_id_digest_bytes(const void *data, size_t len, char out[CRM_ID_DIGEST_SZ])
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, data, len);
    sodium_bin2hex(out, CRM_ID_DIGEST_SZ, hash, sizeof hash);
}

void crm_order_key(const char *dealer, const char *order_id, char *out, size_t size)
{
    const char *parts[] = {order_id ? order_id : ""};
    char digest[CRM_ID_DIGEST_SZ];
    crm_id_digest(parts, 1, digest);
    crm_fmt(out, size, "crm:order:%s:%.32s", dealer, digest);
}
