/*  crm_proto: codec derived from messages.def. See crm_proto.h. */
#include "crm_proto.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crm_mp.h"

#define CRM__REQ_REQ 1
#define CRM__REQ_OPT 0
#define CRM_DEPTH_MAX 16

/* ---------------------------------------------------------------- table */

typedef struct {
    const char *name;
    const char *stream;
    const char *doc;
} s_type_info_t;

static const s_type_info_t s_types[] = {
    {"", "", ""},
#define CRM__M_INFO(ident, wire, stream, doc) {wire, stream, doc},
    CRM_MESSAGES(CRM__M_INFO)
#undef CRM__M_INFO
};

const char *crm_type_name(crm_type_t type)
{
    return type > CRM_T_NONE && type < CRM_T__COUNT ? s_types[type].name : "unknown";
}

const char *crm_type_stream(crm_type_t type)
{
    return type > CRM_T_NONE && type < CRM_T__COUNT ? s_types[type].stream : "";
}

const char *crm_type_doc(crm_type_t type)
{
    return type > CRM_T_NONE && type < CRM_T__COUNT ? s_types[type].doc : "";
}

crm_type_t crm_type_from_name(const char *name, size_t len)
{
    for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++)
        if (strlen(s_types[t].name) == len && memcmp(s_types[t].name, name, len) == 0)
            return (crm_type_t) t;
    return CRM_T_NONE;
}

const char *crm_errcode_name(crm_errcode_t code)
{
    static const char *names[] = {"ok", "size", "malformed", "type", "missing", "unknown_type",
                                  "version", "too_long"};
    return (unsigned) code < sizeof names / sizeof names[0] ? names[code] : "error";
}

/* ------------------------------------------------------------- lifetime */

void crm_msg_init(crm_msg_t *msg, crm_type_t type)
{
    memset(msg, 0, sizeof *msg);
    msg->v = CRM_SCHEMA_VERSION;
    msg->type = type;
    snprintf(msg->stream, sizeof msg->stream, "%s", crm_type_stream(type));
}

static void s_free_STR(char **v)
{
    free(*v);
    *v = NULL;
}
static void s_free_BIN(crm_bin_t *v)
{
    free(v->v);
    v->v = NULL;
    v->n = 0;
}
static void s_free_I64(int64_t *v) { *v = 0; }
static void s_free_BOOL(bool *v) { *v = false; }
static void s_free_STRS(crm_strs_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

#define CRM__F_FREE(msg, field, type, req, doc)                                                   \
    s_free_##type(&b->field);                                                                      \
    b->has.field = false;
#define CRM__M_FREE(ident, wire, stream, doc)                                                      \
    static void s_clear_##ident(crm_body_##ident##_t *b) { CRM_FIELDS_##ident(CRM__F_FREE) }
CRM_MESSAGES(CRM__M_FREE)
#undef CRM__M_FREE
#undef CRM__F_FREE

void crm_msg_clear(crm_msg_t *msg)
{
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: s_clear_##ident(&msg->body.ident); break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: break;
    }
}

int crm_strdup_into(char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

int crm_bin_set(crm_bin_t *bin, const void *data, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy)
        return -1;
    if (n)
        memcpy(copy, data, n);
    free(bin->v);
    bin->v = copy;
    bin->n = n;
    return 0;
}

int crm_strs_push(crm_strs_t *list, const char *value)
{
    char **grown = realloc(list->v, (list->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    list->v = grown;
    if (!(list->v[list->n] = strdup(value ? value : "")))
        return -1;
    list->n++;
    return 0;
}

/* -------------------------------------------------------------- encoder */

static int s_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return n ? msgpack_pack_str_body(pk, s, n) : 0;
}

static int s_pack_STR(msgpack_packer *pk, char *const *v) { return s_pack_cstr(pk, *v); }
static int s_pack_I64(msgpack_packer *pk, const int64_t *v) { return msgpack_pack_int64(pk, *v); }
static int s_pack_BIN(msgpack_packer *pk, const crm_bin_t *v)
{
    if (msgpack_pack_bin(pk, v->n) != 0)
        return -1;
    return v->n ? msgpack_pack_bin_body(pk, v->v, v->n) : 0;
}
static int s_pack_BOOL(msgpack_packer *pk, const bool *v)
{
    return *v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}
static int s_pack_STRS(msgpack_packer *pk, const crm_strs_t *v)
{
    int rc = msgpack_pack_array(pk, v->n);
    for (size_t i = 0; i < v->n; i++)
        rc |= s_pack_cstr(pk, v->v[i]);
    return rc;
}

#define CRM__F_COUNT(msg, field, type, req, doc) n += b->has.field ? 1 : 0;
#define CRM__F_ENC(msg, field, type, req, doc)                                                    \
    if (b->has.field) {                                                                            \
        rc |= s_pack_cstr(pk, #field);                                                             \
        rc |= s_pack_##type(pk, &b->field);                                                        \
    }
#define CRM__M_ENC(ident, wire, stream, doc)                                                       \
    static int s_enc_##ident(msgpack_packer *pk, const crm_body_##ident##_t *b)                    \
    {                                                                                              \
        size_t n = 0;                                                                              \
        CRM_FIELDS_##ident(CRM__F_COUNT) int rc = msgpack_pack_map(pk, n);                         \
        CRM_FIELDS_##ident(CRM__F_ENC) return rc ? -1 : 0;                                         \
    }
CRM_MESSAGES(CRM__M_ENC)
#undef CRM__M_ENC
#undef CRM__F_ENC
#undef CRM__F_COUNT

int crm_msg_encode(const crm_msg_t *msg, msgpack_sbuffer *out, size_t *seq_off)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, msg->corr[0] ? 9 : 8);
    rc |= s_pack_cstr(&pk, "v") | msgpack_pack_uint32(&pk, msg->v);
    rc |= s_pack_cstr(&pk, "type") | s_pack_cstr(&pk, crm_type_name(msg->type));
    rc |= s_pack_cstr(&pk, "id") | s_pack_cstr(&pk, msg->id);
    rc |= s_pack_cstr(&pk, "stream") | s_pack_cstr(&pk, msg->stream);
    rc |= s_pack_cstr(&pk, "seq");
    if (seq_off)
        *seq_off = out->size + 1;
    rc |= msgpack_pack_fix_uint64(&pk, msg->seq);
    rc |= s_pack_cstr(&pk, "ts") | msgpack_pack_int64(&pk, msg->ts);
    rc |= s_pack_cstr(&pk, "producer") | s_pack_cstr(&pk, msg->producer);
    if (msg->corr[0])
        rc |= s_pack_cstr(&pk, "corr") | s_pack_cstr(&pk, msg->corr);
    rc |= s_pack_cstr(&pk, "body");
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: rc |= s_enc_##ident(&pk, &msg->body.ident); break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: rc |= msgpack_pack_map(&pk, 0); break;
    }
    return rc ? -1 : 0;
}

void crm_frame_patch_seq(void *frame, size_t off, uint64_t seq)
{
    uint8_t *p = (uint8_t *) frame + off;
    for (int i = 7; i >= 0; i--, seq >>= 8)
        p[i] = (uint8_t) (seq & 0xff);
}

/* -------------------------------------------------------------- decoder */

static int s_err(crm_err_t *err, crm_errcode_t code, const char *field, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        snprintf(err->field, sizeof err->field, "%s", field);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int crm_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    int len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07;
    else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t) i >= n)
            return -1;
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return len;
}

/* Strict UTF-8 (no overlongs, no surrogates) and no NUL, since the rest of
   the system keeps strings as C strings and prints them as JSON. */
static bool s_utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = crm_utf8_next(s + i, n - i, &cp);
        if (k <= 0 || cp == 0)
            return false;
        i += (size_t) k;
    }
    return true;
}

static int s_read_str(crm_mp_t *r, const char **s, uint32_t *n, const char *field, crm_err_t *err)
{
    crm_mp_kind_t kind = crm_mp_peek(r);
    if (kind != CRM_MP_STR)
        return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, field,
                     "expected a string, got %s", crm_mp_kind_name(kind));
    if (crm_mp_str(r, s, n) != 0)
        return s_err(err, CRM_E_MALFORMED, field, "string longer than the frame");
    if (*n > CRM_STR_MAX)
        return s_err(err, CRM_E_TOOLONG, field, "string of %u bytes, limit %d", *n, CRM_STR_MAX);
    if (!s_utf8_ok((const unsigned char *) *s, *n))
        return s_err(err, CRM_E_TYPE, field, "not valid UTF-8 text");
    return 0;
}

static int s_dec_STR(crm_mp_t *r, char **v, const char *field, crm_err_t *err)
{
    const char *s;
    uint32_t n;
    if (s_read_str(r, &s, &n, field, err) != 0)
        return -1;
    char *copy = malloc((size_t) n + 1);
    if (!copy)
        return s_err(err, CRM_E_SIZE, field, "out of memory");
    memcpy(copy, s, n);
    copy[n] = 0;
    free(*v);
    *v = copy;
    return 0;
}

static int s_dec_BIN(crm_mp_t *r, crm_bin_t *v, const char *field, crm_err_t *err)
{
    crm_mp_kind_t kind = crm_mp_peek(r);
    const char *data;
    uint32_t n;
    if (kind != CRM_MP_BIN)
        return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, field,
                     "expected binary data, got %s", crm_mp_kind_name(kind));
    if (crm_mp_bin(r, &data, &n) != 0)
        return s_err(err, CRM_E_MALFORMED, field, "binary data longer than the frame");
    if (crm_bin_set(v, data, n) != 0)
        return s_err(err, CRM_E_SIZE, field, "out of memory");
    return 0;
}

static int s_dec_I64(crm_mp_t *r, int64_t *v, const char *field, crm_err_t *err)
{
    crm_mp_kind_t kind = crm_mp_peek(r);
    if (kind != CRM_MP_INT)
        return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, field,
                     "expected an integer, got %s", crm_mp_kind_name(kind));
    if (crm_mp_i64(r, v) != 0)
        return s_err(err, CRM_E_TYPE, field, "integer truncated or out of range");
    return 0;
}

static int s_dec_BOOL(crm_mp_t *r, bool *v, const char *field, crm_err_t *err)
{
    crm_mp_kind_t kind = crm_mp_peek(r);
    if (kind != CRM_MP_BOOL)
        return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, field,
                     "expected true or false, got %s", crm_mp_kind_name(kind));
    return crm_mp_bool(r, v);
}

static int s_dec_STRS(crm_mp_t *r, crm_strs_t *v, const char *field, crm_err_t *err)
{
    crm_mp_kind_t kind = crm_mp_peek(r);
    uint32_t n;
    if (kind != CRM_MP_ARRAY)
        return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, field,
                     "expected an array of strings, got %s", crm_mp_kind_name(kind));
    if (crm_mp_array(r, &n) != 0)
        return s_err(err, CRM_E_MALFORMED, field, "array claims more items than the frame holds");
    if (n > CRM_STRS_MAX)
        return s_err(err, CRM_E_TOOLONG, field, "%u items, limit %d", n, CRM_STRS_MAX);
    s_free_STRS(v);
    if (n == 0)
        return 0;
    if (!(v->v = calloc(n, sizeof *v->v)))
        return s_err(err, CRM_E_SIZE, field, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        if (s_dec_STR(r, &v->v[i], field, err) != 0) {
            v->n = i + 1; /* so that the caller's clear frees what was copied */
            return -1;
        }
    }
    v->n = n;
    return 0;
}

#define CRM__F_DEC(msg, field, type, req, doc)                                                    \
    if (klen == sizeof #field - 1 && memcmp(key, #field, klen) == 0) {                             \
        if (crm_mp_peek(r) == CRM_MP_NIL) { /* nil is "absent" */                                  \
            crm_mp_skip(r, 1);                                                                     \
            continue;                                                                              \
        }                                                                                          \
        if (s_dec_##type(r, &b->field, "body." #field, err) != 0)                                  \
            return -1;                                                                             \
        b->has.field = true;                                                                       \
        continue;                                                                                  \
    }
#define CRM__F_REQ(msg, field, type, req, doc)                                                    \
    if (CRM__REQ_##req && !b->has.field)                                                           \
        return s_err(err, CRM_E_MISSING, "body." #field, "required field is missing");
#define CRM__M_DEC(ident, wire, stream, doc)                                                       \
    static int s_dec_##ident(crm_mp_t *r, uint32_t count, crm_body_##ident##_t *b, crm_err_t *err) \
    {                                                                                              \
        for (uint32_t i = 0; i < count; i++) {                                                     \
            const char *key;                                                                       \
            uint32_t klen;                                                                         \
            if (s_read_str(r, &key, &klen, "body", err) != 0)                                      \
                return -1;                                                                         \
            CRM_FIELDS_##ident(CRM__F_DEC) if (crm_mp_skip(r, CRM_DEPTH_MAX) != 0) return s_err(   \
                err, CRM_E_MALFORMED, "body", "unknown field %.*s is malformed", (int) klen, key);  \
        }                                                                                          \
        CRM_FIELDS_##ident(CRM__F_REQ) return 0;                                                   \
    }
CRM_MESSAGES(CRM__M_DEC)
#undef CRM__M_DEC
#undef CRM__F_REQ
#undef CRM__F_DEC

static int s_dec_fixed(crm_mp_t *r, char *dst, size_t size, const char *field, crm_err_t *err)
{
    const char *s;
    uint32_t n;
    if (s_read_str(r, &s, &n, field, err) != 0)
        return -1;
    if (n >= size)
        return s_err(err, CRM_E_TOOLONG, field, "%u bytes, limit %zu", n, size - 1);
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

enum { S_V = 1, S_TYPE = 2, S_ID = 4, S_STREAM = 8, S_SEQ = 16, S_TS = 32, S_PRODUCER = 64,
       S_BODY = 128 };

static int s_decode(crm_mp_t *r, crm_msg_t *msg, crm_err_t *err)
{
    uint32_t count;
    crm_mp_kind_t kind = crm_mp_peek(r);
    if (kind != CRM_MP_MAP)
        return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, "envelope",
                     "expected a map, got %s", crm_mp_kind_name(kind));
    if (crm_mp_map(r, &count) != 0)
        return s_err(err, CRM_E_MALFORMED, "envelope", "map claims more entries than the frame holds");
    unsigned seen = 0;
    crm_mp_t body = {0};
    for (uint32_t i = 0; i < count; i++) {
        const char *key;
        uint32_t klen;
        if (s_read_str(r, &key, &klen, "envelope", err) != 0)
            return -1;
#define S_KEY(lit) (klen == sizeof lit - 1 && memcmp(key, lit, klen) == 0)
        if (S_KEY("v")) {
            uint64_t v;
            if (crm_mp_peek(r) != CRM_MP_INT || crm_mp_u64(r, &v) != 0)
                return s_err(err, CRM_E_TYPE, "v", "expected a positive integer");
            if (v > CRM_SCHEMA_VERSION || v == 0)
                return s_err(err, CRM_E_VERSION, "v", "schema version %llu, this build reads up to %d",
                             (unsigned long long) v, CRM_SCHEMA_VERSION);
            msg->v = (uint32_t) v;
            seen |= S_V;
        } else if (S_KEY("type")) {
            const char *s;
            uint32_t n;
            if (s_read_str(r, &s, &n, "type", err) != 0)
                return -1;
            msg->type = crm_type_from_name(s, n);
            if (msg->type == CRM_T_NONE)
                return s_err(err, CRM_E_UNKNOWN, "type", "unknown message type %.*s",
                             (int) (n > 64 ? 64 : n), s);
            seen |= S_TYPE;
        } else if (S_KEY("id")) {
            if (s_dec_fixed(r, msg->id, sizeof msg->id, "id", err) != 0)
                return -1;
            seen |= S_ID;
        } else if (S_KEY("stream")) {
            if (s_dec_fixed(r, msg->stream, sizeof msg->stream, "stream", err) != 0)
                return -1;
            seen |= S_STREAM;
        } else if (S_KEY("seq")) {
            if (crm_mp_peek(r) != CRM_MP_INT || crm_mp_u64(r, &msg->seq) != 0)
                return s_err(err, CRM_E_TYPE, "seq", "expected a non-negative integer");
            seen |= S_SEQ;
        } else if (S_KEY("ts")) {
            if (s_dec_I64(r, &msg->ts, "ts", err) != 0)
                return -1;
            seen |= S_TS;
        } else if (S_KEY("producer")) {
            if (s_dec_fixed(r, msg->producer, sizeof msg->producer, "producer", err) != 0)
                return -1;
            seen |= S_PRODUCER;
        } else if (S_KEY("corr")) {
            if (crm_mp_peek(r) == CRM_MP_NIL)
                crm_mp_skip(r, 1);
            else if (s_dec_fixed(r, msg->corr, sizeof msg->corr, "corr", err) != 0)
                return -1;
        } else if (S_KEY("body")) {
            body = *r;
            kind = crm_mp_peek(r);
            if (kind != CRM_MP_MAP)
                return s_err(err, kind == CRM_MP_BAD ? CRM_E_MALFORMED : CRM_E_TYPE, "body",
                             "expected a map, got %s", crm_mp_kind_name(kind));
            if (crm_mp_skip(r, CRM_DEPTH_MAX) != 0)
                return s_err(err, CRM_E_MALFORMED, "body", "truncated or nested too deep");
            seen |= S_BODY;
        } else if (crm_mp_skip(r, CRM_DEPTH_MAX) != 0) {
            return s_err(err, CRM_E_MALFORMED, "envelope", "unknown field %.*s is malformed",
                         (int) (klen > 64 ? 64 : klen), key);
        }
#undef S_KEY
    }
    static const struct {
        unsigned bit;
        const char *name;
    } required[] = {{S_V, "v"},         {S_TYPE, "type"}, {S_ID, "id"},
                    {S_STREAM, "stream"}, {S_SEQ, "seq"},   {S_TS, "ts"},
                    {S_PRODUCER, "producer"}, {S_BODY, "body"}};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!(seen & required[i].bit))
            return s_err(err, CRM_E_MISSING, required[i].name, "required field is missing");
    if (crm_mp_left(r) != 0)
        return s_err(err, CRM_E_MALFORMED, "envelope", "%zu bytes after the envelope",
                     crm_mp_left(r));
    uint32_t fields;
    if (crm_mp_map(&body, &fields) != 0)
        return s_err(err, CRM_E_MALFORMED, "body", "map claims more entries than the frame holds");
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: return s_dec_##ident(&body, fields, &msg->body.ident, err);
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: return s_err(err, CRM_E_UNKNOWN, "type", "unknown message type");
    }
}

int crm_msg_decode(const void *data, size_t len, crm_msg_t *msg, crm_err_t *err)
{
    memset(msg, 0, sizeof *msg);
    if (err)
        memset(err, 0, sizeof *err);
    if (len == 0 || len > CRM_FRAME_MAX)
        return s_err(err, CRM_E_SIZE, "frame", "frame of %zu bytes, limit %d", len, CRM_FRAME_MAX);
    crm_mp_t r;
    crm_mp_init(&r, data, len);
    if (s_decode(&r, msg, err) != 0) {
        crm_msg_clear(msg);
        crm_type_t type = msg->type;
        char id[CRM_ID_MAX];
        memcpy(id, msg->id, sizeof id);
        memset(msg, 0, sizeof *msg);
        msg->type = type;
        memcpy(msg->id, id, sizeof id);
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- printer */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void s_putf(s_buf_t *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        s_put(b, tmp, (size_t) n < sizeof tmp ? (size_t) n : sizeof tmp - 1);
}

static void s_json_str(s_buf_t *b, const char *s)
{
    s_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char) *p};
            s_put(b, esc, 2);
        } else if (*p < 0x20) {
            s_putf(b, "\\u%04x", *p);
        } else {
            s_put(b, (const char *) p, 1);
        }
    }
    s_put(b, "\"", 1);
}

static void s_json_STR(s_buf_t *b, char *const *v) { s_json_str(b, *v); }
static void s_json_I64(s_buf_t *b, const int64_t *v) { s_putf(b, "%lld", (long long) *v); }
static void s_json_BOOL(s_buf_t *b, const bool *v) { s_put(b, *v ? "true" : "false", *v ? 4 : 5); }
/* Bytes as a base64 string (RFC 4648, with padding). */
static void s_json_BIN(s_buf_t *b, const crm_bin_t *v)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    s_put(b, "\"", 1);
    for (size_t i = 0; i < v->n; i += 3) {
        uint32_t w = (uint32_t) v->v[i] << 16;
        size_t left = v->n - i;
        if (left > 1)
            w |= (uint32_t) v->v[i + 1] << 8;
        if (left > 2)
            w |= v->v[i + 2];
        char q[4] = {abc[(w >> 18) & 63], abc[(w >> 12) & 63], left > 1 ? abc[(w >> 6) & 63] : '=',
                     left > 2 ? abc[w & 63] : '='};
        s_put(b, q, 4);
    }
    s_put(b, "\"", 1);
}
static void s_json_STRS(s_buf_t *b, const crm_strs_t *v)
{
    s_put(b, "[", 1);
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            s_put(b, ",", 1);
        s_json_str(b, v->v[i]);
    }
    s_put(b, "]", 1);
}

#define CRM__F_JSON(msg, field, type, req, doc)                                                   \
    if (bd->has.field) {                                                                           \
        if (first++)                                                                               \
            s_put(b, ",", 1);                                                                      \
        s_json_str(b, #field);                                                                     \
        s_put(b, ":", 1);                                                                          \
        s_json_##type(b, &bd->field);                                                              \
    }
#define CRM__M_JSON(ident, wire, stream, doc)                                                      \
    static void s_json_##ident(s_buf_t *b, const crm_body_##ident##_t *bd)                         \
    {                                                                                              \
        int first = 0;                                                                             \
        CRM_FIELDS_##ident(CRM__F_JSON)                                                            \
    }
CRM_MESSAGES(CRM__M_JSON)
#undef CRM__M_JSON
#undef CRM__F_JSON

char *crm_msg_to_json(const crm_msg_t *msg)
{
    s_buf_t b = {0};
    s_putf(&b, "{\"v\":%u,\"type\":", msg->v);
    s_json_str(&b, crm_type_name(msg->type));
    s_put(&b, ",\"id\":", 6);
    s_json_str(&b, msg->id);
    s_put(&b, ",\"stream\":", 10);
    s_json_str(&b, msg->stream);
    /* Separate calls: together the widest seq and ts overflow s_putf's buffer. */
    s_putf(&b, ",\"seq\":%llu", (unsigned long long) msg->seq);
    s_putf(&b, ",\"ts\":%lld", (long long) msg->ts);
    s_put(&b, ",\"producer\":", 12);
    s_json_str(&b, msg->producer);
    if (msg->corr[0]) {
        s_put(&b, ",\"corr\":", 8);
        s_json_str(&b, msg->corr);
    }
    s_put(&b, ",\"body\":{", 9);
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: s_json_##ident(&b, &msg->body.ident); break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: break;
    }
    s_put(&b, "}}", 2);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ------------------------------------------------------------ reference */

static const char *s_type_doc_name(const char *t)
{
    if (!strcmp(t, "STR"))
        return "string";
    if (!strcmp(t, "I64"))
        return "int64";
    if (!strcmp(t, "BOOL"))
        return "bool";
    if (!strcmp(t, "BIN"))
        return "binary (base64 in JSON)";
    return "array of string";
}

void crm_proto_write_reference(FILE *out)
{
    fprintf(out,
            "# autocrm messages (schema version %d)\n\n"
            "Generated from `proto/messages.def` by `crm-proto-doc`; do not edit by hand "
            "(the test suite fails when this file and the definitions disagree).\n\n"
            "## Envelope\n\n"
            "Every message is one msgpack map:\n\n"
            "| key | type | required | meaning |\n|---|---|---|---|\n"
            "| `v` | uint | yes | schema version; a reader refuses a newer one |\n"
            "| `type` | string | yes | message type, e.g. `lead.created` |\n"
            "| `id` | string | yes | unique message id (at most %d bytes) |\n"
            "| `stream` | string | yes | the sequenced stream, or empty for requests and heartbeats |\n"
            "| `seq` | uint64 | yes | contiguous sequence number within the stream, from 1; "
            "always sent as msgpack uint64 (0xcf) |\n"
            "| `ts` | int64 | yes | time of the event, milliseconds since the epoch, UTC |\n"
            "| `producer` | string | yes | the service that emitted it |\n"
            "| `corr` | string | no | correlation id: the message or submission this one answers |\n"
            "| `body` | map | yes | the fields below |\n\n"
            "On ZeroMQ a stream event is two frames: the topic `<stream>:` and the envelope. "
            "Readers ignore fields they do not know. A frame over %d bytes is refused unread; "
            "strings are UTF-8 of at most %d bytes; lists hold at most %d strings. A missing "
            "required field is an error naming the field (`body.mobile`).\n\n"
            "## Messages\n\n",
            CRM_SCHEMA_VERSION, CRM_ID_MAX - 1, CRM_FRAME_MAX, CRM_STR_MAX, CRM_STRS_MAX);
    fprintf(out, "| type | stream | meaning |\n|---|---|---|\n");
#define CRM__M_INDEX(ident, wire, stream, doc)                                                     \
    fprintf(out, "| [`%s`](#%s) | %s | %s |\n", wire, #ident, *stream ? "`" stream "`" : "-", doc);
    CRM_MESSAGES(CRM__M_INDEX)
#undef CRM__M_INDEX
#define CRM__F_DOC(msg, field, type, req, doc)                                                    \
    fprintf(out, "| `%s` | %s | %s | %s |\n", #field, s_type_doc_name(#type),                      \
            CRM__REQ_##req ? "yes" : "no", doc);
#define CRM__M_DOC(ident, wire, stream, doc)                                                       \
    fprintf(out, "\n<a id=\"%s\"></a>\n### `%s`\n\n%s\n\nStream: %s.\n\n"                         \
                 "| field | type | required | meaning |\n|---|---|---|---|\n",                      \
            #ident, wire, doc, *stream ? "`" stream "`" : "none (point to point)");                \
    CRM_FIELDS_##ident(CRM__F_DOC)
    CRM_MESSAGES(CRM__M_DOC)
#undef CRM__M_DOC
#undef CRM__F_DOC
}

/* ------------------------------------------------------- set from text */

static int s_text_STR(char **dst, const char *text, const char *field, crm_err_t *err)
{
    if (strlen(text) > CRM_STR_MAX)
        return s_err(err, CRM_E_TOOLONG, field, "over %d bytes", CRM_STR_MAX);
    return crm_strdup_into(dst, text) == 0 ? 0 : s_err(err, CRM_E_SIZE, field, "out of memory");
}

static int s_text_I64(int64_t *dst, const char *text, const char *field, crm_err_t *err)
{
    const char *p = text;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
        return s_err(err, CRM_E_TYPE, field, "an integer expected, not \"%.40s\"", text);
    *dst = strtoll(text, NULL, 10);
    return 0;
}

static int s_text_BOOL(bool *dst, const char *text, const char *field, crm_err_t *err)
{
    static const char *yes[] = {"1", "true", "yes", "y", "是", NULL}, *no[] = {"0", "false", "no", "n", "否", NULL};
    for (int i = 0; yes[i]; i++)
        if (!strcasecmp(text, yes[i]))
            return *dst = true, 0;
    for (int i = 0; no[i]; i++)
        if (!strcasecmp(text, no[i]))
            return *dst = false, 0;
    return s_err(err, CRM_E_TYPE, field, "true or false expected, not \"%.40s\"", text);
}

static int s_text_STRS(crm_strs_t *dst, const char *text, const char *field, crm_err_t *err)
{
    if (dst->n >= CRM_STRS_MAX)
        return s_err(err, CRM_E_TOOLONG, field, "more than %d entries", CRM_STRS_MAX);
    return crm_strs_push(dst, text) == 0 ? 0 : s_err(err, CRM_E_SIZE, field, "out of memory");
}

static int s_text_BIN(crm_bin_t *dst, const char *text, const char *field, crm_err_t *err)
{
    return crm_bin_set(dst, text, strlen(text)) == 0 ? 0 : s_err(err, CRM_E_SIZE, field, "out of memory");
}

#define CRM__F_TEXT(msg, field, type, req, doc)                                                   \
    if (!strcmp(name, #field)) {                                                                   \
        if (s_text_##type(&b->field, text, "body." #field, err) != 0)                              \
            return -1;                                                                             \
        b->has.field = true;                                                                       \
        return 0;                                                                                  \
    }
#define CRM__M_TEXT(ident, wire, stream, doc)                                                      \
    static int s_text_##ident(crm_body_##ident##_t *b, const char *name, const char *text,         \
                              crm_err_t *err)                                                      \
    {                                                                                              \
        (void) b, (void) text, (void) err;                                                         \
        CRM_FIELDS_##ident(CRM__F_TEXT) return 1;                                                  \
    }
CRM_MESSAGES(CRM__M_TEXT)
#undef CRM__M_TEXT
#undef CRM__F_TEXT

int crm_msg_set_text(crm_msg_t *msg, const char *field, const char *text, crm_err_t *err)
{
    if (!msg || !field || !text)
        return 1;
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: return s_text_##ident(&msg->body.ident, field, text, err);
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: return 1;
    }
}

#define CRM__F_TYPE(msg, field, type, req, doc)                                                   \
    if (!strcmp(name, #field))                                                                     \
        return #type;
#define CRM__M_TYPE(ident, wire, stream, doc)                                                      \
    static const char *s_type_##ident(const char *name)                                            \
    {                                                                                              \
        (void) name;                                                                               \
        CRM_FIELDS_##ident(CRM__F_TYPE) return NULL;                                               \
    }
CRM_MESSAGES(CRM__M_TYPE)
#undef CRM__M_TYPE
#undef CRM__F_TYPE

const char *crm_msg_field_type(crm_type_t type, const char *field)
{
    if (!field)
        return NULL;
    switch (type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: return s_type_##ident(field);
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: return NULL;
    }
}

void crm_utf8_cut(char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, n - i, &cp);
        if (k < 0) {
            s[i] = '\0';
            return;
        }
        i += k > 0 ? (size_t) k : 1;
    }
}

/* --------------------------------------------------------- compact form */

static uint32_t s_fnv(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 16777619u;
    return (h ^ ',') * 16777619u;
}

/* A 16-bit hash of a type's field names and types, in their order. */
static unsigned s_shape(crm_type_t type)
{
    uint32_t h = 2166136261u;
    switch (type) {
#define CRM__F_SHAPE(msg, field, type, req, doc) h = s_fnv(s_fnv(h, #field), #type);
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: CRM_FIELDS_##ident(CRM__F_SHAPE) break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
#undef CRM__F_SHAPE
    default: break;
    }
    return (h ^ (h >> 16)) & 0xffffu;
}

#define CRM__F_ENCP(msg, field, type, req, doc)                                                   \
    rc |= b->has.field ? s_pack_##type(pk, &b->field) : msgpack_pack_nil(pk);
#define CRM__M_ENCP(ident, wire, stream, doc)                                                      \
    static int s_encp_##ident(msgpack_packer *pk, const crm_body_##ident##_t *b)                   \
    {                                                                                              \
        int rc = 0;                                                                                \
        CRM_FIELDS_##ident(CRM__F_ENCP) return rc ? -1 : 0;                                        \
    }
CRM_MESSAGES(CRM__M_ENCP)
#undef CRM__M_ENCP
#undef CRM__F_ENCP

static uint32_t s_nfields(crm_type_t type)
{
    uint32_t n = 0;
    switch (type) {
#define CRM__F_NUM(msg, field, type, req, doc) n++;
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: CRM_FIELDS_##ident(CRM__F_NUM) break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
#undef CRM__F_NUM
    default: break;
    }
    return n;
}

int crm_msg_encode_compact(const crm_msg_t *msg, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = 0;
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident:                                                                            \
        rc |= msgpack_pack_array(&pk, 4 + s_nfields(msg->type));                                   \
        rc |= msgpack_pack_uint32(&pk, msg->v) | s_pack_cstr(&pk, wire);                          \
        rc |= msgpack_pack_int64(&pk, msg->ts) | msgpack_pack_uint32(&pk, s_shape(msg->type));     \
        rc |= s_encp_##ident(&pk, &msg->body.ident);                                             \
        break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: return -1;
    }
    return rc ? -1 : 0;
}

#define CRM__F_DECP(msg, field, type, req, doc)                                                   \
    if (i++ < count) {                                                                             \
        if (crm_mp_peek(r) == CRM_MP_NIL) {                                                        \
            crm_mp_skip(r, 1);                                                                     \
        } else {                                                                                   \
            if (s_dec_##type(r, &b->field, "body." #field, err) != 0)                              \
                return -1;                                                                         \
            b->has.field = true;                                                                   \
        }                                                                                          \
    }
#define CRM__F_REQP(msg, field, type, req, doc)                                                   \
    if (CRM__REQ_##req && !b->has.field)                                                           \
        return s_err(err, CRM_E_MISSING, "body." #field, "required field is missing");
#define CRM__M_DECP(ident, wire, stream, doc)                                                      \
    static int s_decp_##ident(crm_mp_t *r, uint32_t count, crm_body_##ident##_t *b, crm_err_t *err) \
    {                                                                                              \
        uint32_t i = 0;                                                                            \
        CRM_FIELDS_##ident(CRM__F_DECP) CRM_FIELDS_##ident(CRM__F_REQP) return i < count ? -1 : 0;  \
    }
CRM_MESSAGES(CRM__M_DECP)
#undef CRM__M_DECP
#undef CRM__F_DECP

static int s_decode_compact(crm_mp_t *r, crm_msg_t *msg, crm_err_t *err)
{
    uint32_t count, n;
    uint64_t v, shape;
    const char *s;
    if (crm_mp_array(r, &count) != 0 || count < 4)
        return s_err(err, CRM_E_MALFORMED, "envelope", "a kept message of fewer than 4 items");
    if (crm_mp_peek(r) != CRM_MP_INT || crm_mp_u64(r, &v) != 0 || v == 0 || v > CRM_SCHEMA_VERSION)
        return s_err(err, CRM_E_VERSION, "v", "not a schema version this build reads");
    msg->v = (uint32_t) v;
    if (s_read_str(r, &s, &n, "type", err) != 0)
        return -1;
    if ((msg->type = crm_type_from_name(s, n)) == CRM_T_NONE)
        return s_err(err, CRM_E_UNKNOWN, "type", "unknown message type %.*s", (int) (n > 64 ? 64 : n), s);
    if (s_dec_I64(r, &msg->ts, "ts", err) != 0)
        return -1;
    if (crm_mp_peek(r) != CRM_MP_INT || crm_mp_u64(r, &shape) != 0 || shape != s_shape(msg->type))
        return s_err(err, CRM_E_VERSION, "body", "kept by a build whose %s has other fields",
                     crm_type_name(msg->type));
    int rc;
    switch (msg->type) {
#define CRM__M_CASE(ident, wire, stream, doc)                                                      \
    case CRM_T_##ident: rc = s_decp_##ident(r, count - 4, &msg->body.ident, err); break;
        CRM_MESSAGES(CRM__M_CASE)
#undef CRM__M_CASE
    default: rc = -1; break;
    }
    if (rc != 0)
        return err && err->code ? -1 : s_err(err, CRM_E_MALFORMED, "body", "more items than fields");
    if (crm_mp_left(r) != 0)
        return s_err(err, CRM_E_MALFORMED, "envelope", "%zu bytes after the kept message", crm_mp_left(r));
    return 0;
}
#undef CRM__F_REQP

int crm_msg_decode_kept(const void *data, size_t len, crm_msg_t *msg, crm_err_t *err)
{
    crm_mp_t r;
    crm_mp_init(&r, data, len);
    if (len == 0 || len > CRM_FRAME_MAX || crm_mp_peek(&r) != CRM_MP_ARRAY)
        return crm_msg_decode(data, len, msg, err);
    memset(msg, 0, sizeof *msg);
    if (err)
        memset(err, 0, sizeof *err);
    if (s_decode_compact(&r, msg, err) != 0) {
        crm_msg_clear(msg);
        crm_type_t type = msg->type;
        memset(msg, 0, sizeof *msg);
        msg->type = type;
        return -1;
    }
    return 0;
}
