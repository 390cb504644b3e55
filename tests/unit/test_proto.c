/*  test_proto: the message codec derived from proto/messages.def.
 *
 *  Round trips are generated from the same X-macros as the codec, so a
 *  message or field added to messages.def is covered without a new test.
 *  Hostile frames are built byte by byte or with msgpack-c's packer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crm_mp.h"
#include "crm_proto.h"

#define T_REQ_REQ 1
#define T_REQ_OPT 0

/* ------------------------------------------------------------ helpers */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} s_frame_t;

static void s_frame_init(s_frame_t *f)
{
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
}

static void s_frame_destroy(s_frame_t *f) { msgpack_sbuffer_destroy(&f->sb); }

static void s_str(s_frame_t *f, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(msgpack_pack_str(&f->pk, n), 0);
    assert_int_equal(msgpack_pack_str_body(&f->pk, s, n), 0);
}

static void s_strn(s_frame_t *f, const char *s, size_t n)
{
    assert_int_equal(msgpack_pack_str(&f->pk, n), 0);
    assert_int_equal(msgpack_pack_str_body(&f->pk, s, n), 0);
}

static void s_kv(s_frame_t *f, const char *key, const char *value)
{
    s_str(f, key);
    s_str(f, value);
}

static void s_raw(s_frame_t *f, const void *bytes, size_t n)
{
    assert_int_equal(msgpack_sbuffer_write(&f->sb, bytes, n), 0);
}

/* Packs the header of an envelope map holding the eight standard keys minus
   `omit`, plus `extra` pairs, then every standard key except "body" and
   `omit`. The caller packs the extra pairs and, unless omitted, "body". */
static void s_env(s_frame_t *f, const char *type, const char *omit, unsigned extra)
{
    static const char *keys[] = {"v", "type", "id", "stream", "seq", "ts", "producer", "body"};
    unsigned n = 8 + extra;
    for (size_t i = 0; i < 8; i++)
        if (omit && !strcmp(omit, keys[i]))
            n--;
    assert_int_equal(msgpack_pack_map(&f->pk, n), 0);
    for (size_t i = 0; i < 7; i++) {
        const char *k = keys[i];
        if (omit && !strcmp(omit, k))
            continue;
        s_str(f, k);
        if (!strcmp(k, "v"))
            msgpack_pack_uint32(&f->pk, 1);
        else if (!strcmp(k, "type"))
            s_str(f, type);
        else if (!strcmp(k, "id"))
            s_str(f, "m-1");
        else if (!strcmp(k, "stream"))
            s_str(f, "lead");
        else if (!strcmp(k, "seq"))
            msgpack_pack_uint64(&f->pk, 5);
        else if (!strcmp(k, "ts"))
            msgpack_pack_int64(&f->pk, 1700000000000LL);
        else
            s_str(f, "test");
    }
}

/* The three required fields of lead.merged, as "body" and its map with
   room for `extra` more pairs. */
static void s_body_lead_merged(s_frame_t *f, unsigned extra)
{
    s_str(f, "body");
    msgpack_pack_map(&f->pk, 3 + extra);
    s_kv(f, "lead_id", "L1");
    s_kv(f, "customer_id", "C1");
    s_kv(f, "match_key", "mobile");
}

static int s_decode(const s_frame_t *f, crm_msg_t *m, crm_err_t *err)
{
    return crm_msg_decode(f->sb.data, f->sb.size, m, err);
}

/* Decodes a frame that must be refused with `code` naming `field`. */
static void s_expect_error(const void *data, size_t len, crm_errcode_t code, const char *field)
{
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(crm_msg_decode(data, len, &m, &err), -1);
    if (err.code != code)
        fail_msg("expected %s, got %s (%s: %s)", crm_errcode_name(code),
                 crm_errcode_name(err.code), err.field, err.text);
    if (field)
        assert_string_equal(err.field, field);
    assert_true(err.text[0] != 0);
    crm_msg_clear(&m);
}

static void s_expect_frame_error(const s_frame_t *f, crm_errcode_t code, const char *field)
{
    s_expect_error(f->sb.data, f->sb.size, code, field);
}

/* --------------------------------------------- generated fill / compare */

static int s_k; /* makes every filled value differ from the others */

static void s_fill_STR(char **v, const char *field)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s 值-%d \"q\" \\ /", field, ++s_k);
    assert_int_equal(crm_strdup_into(v, buf), 0);
}

static void s_fill_I64(int64_t *v, const char *field)
{
    (void) field;
    switch (++s_k % 4) {
    case 0: *v = INT64_MAX - s_k; break;
    case 1: *v = INT64_MIN + s_k; break;
    case 2: *v = -s_k; break;
    default: *v = 1767225600000LL + s_k; break;
    }
}

static void s_fill_BOOL(bool *v, const char *field)
{
    (void) field;
    *v = true;
}

static void s_fill_STRS(crm_strs_t *v, const char *field)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s|code|信息 %d", field, ++s_k);
    assert_int_equal(crm_strs_push(v, buf), 0);
    assert_int_equal(crm_strs_push(v, ""), 0);
    assert_int_equal(crm_strs_push(v, "name=value"), 0);
}

static void s_fill_BIN(crm_bin_t *v, const char *field)
{
    /* Bytes that are not text: NUL, invalid UTF-8, the field's name. */
    unsigned char buf[80] = {0x00, 0xff, 0xc3, 0x28};
    size_t n = 4 + (size_t) snprintf((char *) buf + 4, sizeof buf - 4, "%s %d", field, ++s_k);
    assert_int_equal(crm_bin_set(v, buf, n), 0);
}

static void s_unset_STR(char **v) { crm_strdup_into(v, NULL); }
static void s_unset_BIN(crm_bin_t *v)
{
    free(v->v);
    v->v = NULL;
    v->n = 0;
}
static void s_unset_I64(int64_t *v) { *v = 0; }
static void s_unset_BOOL(bool *v) { *v = false; }
static void s_unset_STRS(crm_strs_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

static void s_cmp_STR(char *const *a, char *const *b)
{
    assert_non_null(*a);
    assert_non_null(*b);
    assert_string_equal(*a, *b);
}
static void s_cmp_I64(const int64_t *a, const int64_t *b) { assert_true(*a == *b); }
static void s_cmp_BOOL(const bool *a, const bool *b) { assert_int_equal(*a, *b); }
static void s_cmp_BIN(const crm_bin_t *a, const crm_bin_t *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->v, b->v, a->n);
}
static void s_cmp_STRS(const crm_strs_t *a, const crm_strs_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->v[i], b->v[i]);
}

#define T_FILL(msg, field, type, req, doc)                                                        \
    if (all || T_REQ_##req) {                                                                      \
        s_fill_##type(&b->field, #field);                                                          \
        b->has.field = true;                                                                       \
    }
#define T_FILL_MSG(ident, wire, stream, doc)                                                       \
    case CRM_T_##ident: {                                                                          \
        crm_body_##ident##_t *b = &m->body.ident;                                                  \
        CRM_FIELDS_##ident(T_FILL) break;                                                          \
    }

/* A message of `type` with its envelope set and every field (or only the
   required ones) set to a value of its type. */
static void s_fill(crm_msg_t *m, crm_type_t type, bool all)
{
    s_k = 0;
    crm_msg_init(m, type);
    snprintf(m->id, sizeof m->id, "msg-%d", (int) type);
    snprintf(m->producer, sizeof m->producer, "crm-test");
    snprintf(m->corr, sizeof m->corr, "corr-%d", (int) type);
    m->seq = 1000 + (uint64_t) type;
    m->ts = 1767225600123LL;
    switch (type) {
        CRM_MESSAGES(T_FILL_MSG)
    default: fail_msg("no such type %d", (int) type);
    }
}

#define T_DROP(msg, field, type, req, doc)                                                        \
    if (!strcmp(name, #field)) {                                                                   \
        s_unset_##type(&b->field);                                                                 \
        b->has.field = false;                                                                      \
        found = true;                                                                              \
    }
#define T_DROP_MSG(ident, wire, stream, doc)                                                       \
    case CRM_T_##ident: {                                                                          \
        crm_body_##ident##_t *b = &m->body.ident;                                                  \
        CRM_FIELDS_##ident(T_DROP) break;                                                          \
    }

/* Removes one body field from a filled message. */
static void s_drop(crm_msg_t *m, const char *name)
{
    bool found = false;
    switch (m->type) {
        CRM_MESSAGES(T_DROP_MSG)
    default: break;
    }
    assert_true(found);
}

#define T_CMP(msg, field, type, req, doc)                                                         \
    assert_int_equal(x->has.field, y->has.field);                                                  \
    if (x->has.field)                                                                              \
        s_cmp_##type(&x->field, &y->field);
#define T_CMP_MSG(ident, wire, stream, doc)                                                        \
    case CRM_T_##ident: {                                                                          \
        const crm_body_##ident##_t *x = &a->body.ident, *y = &b->body.ident;                       \
        CRM_FIELDS_##ident(T_CMP) break;                                                           \
    }

/* Envelope and body of `a` and `b` are equal, field by field. */
static void s_cmp(const crm_msg_t *a, const crm_msg_t *b)
{
    assert_int_equal(a->v, b->v);
    assert_int_equal(a->type, b->type);
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->stream, b->stream);
    assert_true(a->seq == b->seq);
    assert_true(a->ts == b->ts);
    assert_string_equal(a->producer, b->producer);
    assert_string_equal(a->corr, b->corr);
    switch (a->type) {
        CRM_MESSAGES(T_CMP_MSG)
    default: fail_msg("no such type %d", (int) a->type);
    }
    char *ja = crm_msg_to_json(a), *jb = crm_msg_to_json(b);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
}

/* Encodes `m`, decodes the frame into `out` (which the caller clears). */
static void s_round_trip(const crm_msg_t *m, crm_msg_t *out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(crm_msg_encode(m, &sb, NULL), 0);
    crm_err_t err;
    if (crm_msg_decode(sb.data, sb.size, out, &err) != 0)
        fail_msg("%s does not decode: %s %s: %s", crm_type_name(m->type),
                 crm_errcode_name(err.code), err.field, err.text);
    assert_int_equal(err.code, CRM_E_OK);
    msgpack_sbuffer_destroy(&sb);
    s_cmp(m, out);
}

/* Every body field of every message, as a table. */
typedef struct {
    crm_type_t type;
    const char *name;
    bool required;
} s_field_t;

#define T_ROW(msg, field, type, req, doc) {CRM_T_##msg, #field, T_REQ_##req},
#define T_ROWS(ident, wire, stream, doc) CRM_FIELDS_##ident(T_ROW)
static const s_field_t s_fields[] = {CRM_MESSAGES(T_ROWS)};
#define S_NFIELDS (sizeof s_fields / sizeof s_fields[0])

/* ------------------------------------------------------------ round trips */

static void test_fully_filled_lead_submit_round_trips(void **state)
{
    (void) state;
    crm_msg_t m, d;
    crm_msg_init(&m, CRM_T_lead_submit);
    snprintf(m.id, sizeof m.id, "01J9Z3-lead-submit");
    snprintf(m.producer, sizeof m.producer, "web-gateway");
    m.seq = 0;
    m.ts = 1767225600000LL;
    assert_int_equal(CRM_SET_STR(&m, lead_submit, submission_id, "web-000123"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, channel, "website"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, source, "brand-site"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, name, "张三"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, gender, "male"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, birthday, "1949-12-31"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, mobile, "+86 138-1234-5678"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, home_phone, "010-12345678"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, office_phone, "021-87654321"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, usual_phone, "13812345678"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, email, "zhang@example.cn"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, id_number, "11010519491231002X"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, address, "北京市东城区1号"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, postcode, "100010"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, city, "北京"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, province, "京"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, model, "Model \"X\""), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, intent_grade, "H"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, expected_purchase_date, "2026-03-01"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, dealer_id, "D-0042"), 0);
    CRM_SET_I64(&m, lead_submit, testdrive_at, 1767582000000LL);
    assert_int_equal(CRM_SET_STR(&m, lead_submit, remark, "line1\nline2\ttab \\ back"), 0);

    s_round_trip(&m, &d);
    assert_string_equal(d.body.lead_submit.name, "张三");
    assert_true(d.body.lead_submit.has.testdrive_at);
    assert_true(d.body.lead_submit.testdrive_at == 1767582000000LL);
    assert_string_equal(d.body.lead_submit.remark, "line1\nline2\ttab \\ back");
    assert_string_equal(d.corr, "");
    crm_msg_clear(&d);
    crm_msg_clear(&m);
    crm_msg_clear(&m); /* twice is safe */
}

static void test_lead_accepted_with_findings_and_bool_round_trips(void **state)
{
    (void) state;
    crm_msg_t m, d;
    crm_msg_init(&m, CRM_T_lead_accepted);
    snprintf(m.id, sizeof m.id, "a-1");
    snprintf(m.producer, sizeof m.producer, "crm-intake");
    snprintf(m.corr, sizeof m.corr, "web-000123");
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, submission_id, "web-000123"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, lead_id, "L-9"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, customer_id, "C-7"), 0);
    CRM_SET_BOOL(&m, lead_accepted, merged, true);
    assert_int_equal(crm_strs_push(&m.body.lead_accepted.findings, "email|format|not an address"), 0);
    assert_int_equal(crm_strs_push(&m.body.lead_accepted.findings, "postcode|city|不匹配"), 0);
    m.body.lead_accepted.has.findings = true;

    s_round_trip(&m, &d);
    assert_true(d.body.lead_accepted.merged);
    assert_int_equal(d.body.lead_accepted.findings.n, 2);
    assert_string_equal(d.body.lead_accepted.findings.v[1], "postcode|city|不匹配");
    assert_string_equal(d.corr, "web-000123");
    crm_msg_clear(&d);

    /* false is a value, not absence */
    CRM_SET_BOOL(&m, lead_accepted, merged, false);
    s_round_trip(&m, &d);
    assert_true(d.body.lead_accepted.has.merged);
    assert_false(d.body.lead_accepted.merged);
    crm_msg_clear(&d);

    /* an empty list is present and empty */
    crm_msg_clear(&m);
    crm_msg_init(&m, CRM_T_lead_accepted);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, submission_id, "s"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, lead_id, "l"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, customer_id, "c"), 0);
    CRM_SET_BOOL(&m, lead_accepted, merged, false);
    m.body.lead_accepted.has.findings = true;
    s_round_trip(&m, &d);
    assert_true(d.body.lead_accepted.has.findings);
    assert_int_equal(d.body.lead_accepted.findings.n, 0);
    crm_msg_clear(&d);
    crm_msg_clear(&m);
}

static void test_heartbeat_streams_round_trip(void **state)
{
    (void) state;
    crm_msg_t m, d;
    crm_msg_init(&m, CRM_T_heartbeat);
    snprintf(m.id, sizeof m.id, "hb-1");
    snprintf(m.producer, sizeof m.producer, "crm-dispatcher");
    static const char *streams[] = {"lead=12", "testdrive=0", "followup=18446744073709551615"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(crm_strs_push(&m.body.heartbeat.streams, streams[i]), 0);
    m.body.heartbeat.has.streams = true;
    CRM_SET_I64(&m, heartbeat, uptime_ms, 86400000);
    s_round_trip(&m, &d);
    assert_string_equal(d.stream, "");
    assert_int_equal(d.body.heartbeat.streams.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(d.body.heartbeat.streams.v[i], streams[i]);
    assert_true(d.body.heartbeat.uptime_ms == 86400000);
    crm_msg_clear(&d);
    crm_msg_clear(&m);
}

static void test_i64_extremes_round_trip(void **state)
{
    (void) state;
    static const int64_t values[] = {0,     1,          -1,         -32,        -33,
                                     127,   128,        255,        256,        65535,
                                     65536, -32768,     -32769,     INT32_MAX,  INT32_MIN,
                                     (int64_t) UINT32_MAX + 1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        crm_msg_t m, d;
        crm_msg_init(&m, CRM_T_testdrive_acked);
        assert_int_equal(CRM_SET_STR(&m, testdrive_acked, dealer_id, "D1"), 0);
        CRM_SET_I64(&m, testdrive_acked, dealer_seq, values[i]);
        m.ts = values[i];
        m.seq = (uint64_t) values[i];
        s_round_trip(&m, &d);
        assert_true(d.body.testdrive_acked.dealer_seq == values[i]);
        crm_msg_clear(&d);
        crm_msg_clear(&m);
    }
}

static void test_every_message_type_round_trips_with_every_field_set(void **state)
{
    (void) state;
    for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++) {
        crm_msg_t m, d;
        s_fill(&m, (crm_type_t) t, true);
        s_round_trip(&m, &d);
        crm_msg_clear(&d);
        crm_msg_clear(&m);
    }
}

static void test_every_message_type_round_trips_with_only_required_fields(void **state)
{
    (void) state;
    for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++) {
        crm_msg_t m, d;
        s_fill(&m, (crm_type_t) t, false);
        m.corr[0] = 0;
        s_round_trip(&m, &d); /* s_cmp also checks optional fields stay absent */
        crm_msg_clear(&d);
        crm_msg_clear(&m);
    }
}

static void test_message_table_matches_definitions(void **state)
{
    (void) state;
    for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++) {
        const char *name = crm_type_name((crm_type_t) t);
        assert_int_equal(crm_type_from_name(name, strlen(name)), t);
        assert_true(crm_type_doc((crm_type_t) t)[0] != 0);
        crm_msg_t m;
        crm_msg_init(&m, (crm_type_t) t);
        assert_string_equal(m.stream, crm_type_stream((crm_type_t) t));
        assert_int_equal(m.v, CRM_SCHEMA_VERSION);
        size_t nfields = 0;
        for (size_t i = 0; i < S_NFIELDS; i++)
            nfields += (int) s_fields[i].type == t;
        assert_true(nfields > 0);
    }
    assert_string_equal(crm_type_stream(CRM_T_lead_created), "lead");
    assert_string_equal(crm_type_stream(CRM_T_heartbeat), "");
    assert_string_equal(crm_type_name(CRM_T_NONE), "unknown");
    assert_string_equal(crm_type_name(CRM_T__COUNT), "unknown");
    assert_int_equal(crm_type_from_name("lead.submi", 10), CRM_T_NONE);
    assert_int_equal(crm_type_from_name("lead.submitx", 12), CRM_T_NONE);
}

/* ------------------------------------------------------------------- seq */

static void test_seq_is_fixed_uint64_at_reported_offset(void **state)
{
    (void) state;
    static const uint64_t seqs[] = {0, 1, 127, 128, 65536, UINT32_MAX, UINT64_MAX};
    size_t size0 = 0;
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        crm_msg_t m, d;
        s_fill(&m, CRM_T_lead_submit, true);
        m.seq = seqs[i];
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        size_t off = 0;
        assert_int_equal(crm_msg_encode(&m, &sb, &off), 0);
        const uint8_t *p = (const uint8_t *) sb.data;
        /* the offset is that of the 8 big-endian bytes after the 0xcf tag,
           right after the key "seq" */
        assert_true(off >= 6 && off + 8 <= sb.size);
        assert_memory_equal(p + off - 5, "\xa3seq", 4);
        assert_int_equal(p[off - 1], 0xcf);
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = v << 8 | p[off + k];
        assert_true(v == seqs[i]);
        if (i == 0)
            size0 = sb.size;
        assert_int_equal(sb.size, size0); /* the frame never changes size */

        crm_frame_patch_seq(sb.data, off, 0x0102030405060708ULL);
        crm_err_t err;
        assert_int_equal(crm_msg_decode(sb.data, sb.size, &d, &err), 0);
        assert_true(d.seq == 0x0102030405060708ULL);
        assert_string_equal(d.body.lead_submit.submission_id, m.body.lead_submit.submission_id);
        crm_msg_clear(&d);
        crm_frame_patch_seq(sb.data, off, UINT64_MAX);
        assert_int_equal(crm_msg_decode(sb.data, sb.size, &d, &err), 0);
        assert_true(d.seq == UINT64_MAX);
        crm_msg_clear(&d);
        msgpack_sbuffer_destroy(&sb);
        crm_msg_clear(&m);
    }
}

static void test_seq_offset_is_relative_to_the_frame_start_in_a_shared_buffer(void **state)
{
    (void) state;
    crm_msg_t m, d;
    s_fill(&m, CRM_T_heartbeat, true);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t off1, off2;
    assert_int_equal(crm_msg_encode(&m, &sb, &off1), 0);
    size_t first = sb.size;
    assert_int_equal(crm_msg_encode(&m, &sb, &off2), 0);
    /* encode appends: the offset of the second frame counts from the buffer */
    assert_int_equal(off2, off1 + first);
    crm_frame_patch_seq(sb.data, off2, 77);
    crm_err_t err;
    assert_int_equal(crm_msg_decode(sb.data + first, sb.size - first, &d, &err), 0);
    assert_true(d.seq == 77);
    crm_msg_clear(&d);
    assert_int_equal(crm_msg_decode(sb.data, first, &d, &err), 0);
    assert_true(d.seq == m.seq);
    crm_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    crm_msg_clear(&m);
}

/* --------------------------------------------------------------- missing */

static void test_missing_required_body_field_is_named(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.submit", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 2);
    s_kv(&f, "submission_id", "s-1");
    s_kv(&f, "name", "李四");
    s_expect_frame_error(&f, CRM_E_MISSING, "body.channel");
    s_frame_destroy(&f);
}

static void test_every_required_body_field_is_reported_missing_by_name(void **state)
{
    (void) state;
    size_t checked = 0;
    for (size_t i = 0; i < S_NFIELDS; i++) {
        crm_msg_t m, d;
        crm_err_t err;
        s_fill(&m, s_fields[i].type, true);
        s_drop(&m, s_fields[i].name);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(crm_msg_encode(&m, &sb, NULL), 0);
        int rc = crm_msg_decode(sb.data, sb.size, &d, &err);
        if (s_fields[i].required) {
            char want[80];
            snprintf(want, sizeof want, "body.%s", s_fields[i].name);
            if (rc != -1 || err.code != CRM_E_MISSING || strcmp(err.field, want) != 0)
                fail_msg("%s without %s: rc %d, %s %s", crm_type_name(s_fields[i].type), want, rc,
                         crm_errcode_name(err.code), err.field);
            checked++;
        } else {
            assert_int_equal(rc, 0);
            s_cmp(&m, &d); /* the optional field comes back absent */
        }
        crm_msg_clear(&d);
        msgpack_sbuffer_destroy(&sb);
        crm_msg_clear(&m);
    }
    assert_true(checked >= CRM_T__COUNT - 1);
}

static void test_missing_envelope_field_is_named(void **state)
{
    (void) state;
    static const char *keys[] = {"v", "type", "id", "stream", "seq", "ts", "producer", "body"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        s_frame_t f;
        s_frame_init(&f);
        s_env(&f, "lead.merged", keys[i], 0);
        if (strcmp(keys[i], "body") != 0)
            s_body_lead_merged(&f, 0);
        s_expect_frame_error(&f, CRM_E_MISSING, keys[i]);
        s_frame_destroy(&f);
    }
}

static void test_body_that_is_not_a_map_is_a_type_error(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_array(&f.pk, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "body");
    s_frame_destroy(&f);

    s_frame_init(&f);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_nil(&f.pk);
    s_expect_frame_error(&f, CRM_E_TYPE, "envelope");
    s_frame_destroy(&f);
}

/* ---------------------------------------------------------------- types */

static void test_seq_as_string_is_a_type_error(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", "seq", 1);
    s_kv(&f, "seq", "5");
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "seq");
    s_frame_destroy(&f);

    /* a negative seq is not a sequence number either */
    s_frame_init(&f);
    s_env(&f, "lead.merged", "seq", 1);
    s_str(&f, "seq");
    msgpack_pack_int64(&f.pk, -1);
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "seq");
    s_frame_destroy(&f);
}

static void test_merged_as_string_is_a_type_error(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.accepted", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 4);
    s_kv(&f, "submission_id", "s");
    s_kv(&f, "lead_id", "l");
    s_kv(&f, "customer_id", "c");
    s_kv(&f, "merged", "true");
    s_expect_frame_error(&f, CRM_E_TYPE, "body.merged");
    s_frame_destroy(&f);
}

static void test_testdrive_at_as_string_is_a_type_error_and_frees_what_was_read(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.submit", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 4);
    s_kv(&f, "submission_id", "s-1");
    s_kv(&f, "channel", "website");
    s_kv(&f, "name", "王五"); /* allocated before the error: ASan checks it is freed */
    s_kv(&f, "testdrive_at", "2026-01-05 10:00");
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&f, &m, &err), -1);
    assert_int_equal(err.code, CRM_E_TYPE);
    assert_string_equal(err.field, "body.testdrive_at");
    assert_null(m.body.lead_submit.name);
    assert_false(m.body.lead_submit.has.name);
    s_frame_destroy(&f);
}

static void test_other_wrong_types_are_named(void **state)
{
    (void) state;
    s_frame_t f;

    /* an integer that does not fit int64 */
    s_frame_init(&f);
    s_env(&f, "testdrive.acked", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 2);
    s_kv(&f, "dealer_id", "D1");
    s_str(&f, "dealer_seq");
    msgpack_pack_uint64(&f.pk, (uint64_t) INT64_MAX + 1);
    s_expect_frame_error(&f, CRM_E_TYPE, "body.dealer_seq");
    s_frame_destroy(&f);

    /* a float where an integer belongs */
    s_frame_init(&f);
    s_env(&f, "testdrive.acked", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 2);
    s_kv(&f, "dealer_id", "D1");
    s_str(&f, "dealer_seq");
    msgpack_pack_double(&f.pk, 1.0);
    s_expect_frame_error(&f, CRM_E_TYPE, "body.dealer_seq");
    s_frame_destroy(&f);

    /* a list item that is not a string */
    s_frame_init(&f);
    s_env(&f, "heartbeat", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 1);
    s_str(&f, "streams");
    msgpack_pack_array(&f.pk, 2);
    s_str(&f, "lead=1"); /* copied before the error, must be freed */
    msgpack_pack_int(&f.pk, 7);
    s_expect_frame_error(&f, CRM_E_TYPE, "body.streams");
    s_frame_destroy(&f);

    /* a string where a list belongs */
    s_frame_init(&f);
    s_env(&f, "heartbeat", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 1);
    s_kv(&f, "streams", "lead=1");
    s_expect_frame_error(&f, CRM_E_TYPE, "body.streams");
    s_frame_destroy(&f);

    /* an integer where a string belongs */
    s_frame_init(&f);
    s_env(&f, "lead.merged", "id", 1);
    s_str(&f, "id");
    msgpack_pack_int(&f.pk, 12);
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "id");
    s_frame_destroy(&f);

    /* ts as a string */
    s_frame_init(&f);
    s_env(&f, "lead.merged", "ts", 1);
    s_kv(&f, "ts", "1700000000000");
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "ts");
    s_frame_destroy(&f);

    /* a body key that is not a string */
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 0);
    s_body_lead_merged(&f, 1);
    msgpack_pack_int(&f.pk, 1);
    msgpack_pack_int(&f.pk, 2);
    s_expect_frame_error(&f, CRM_E_TYPE, "body");
    s_frame_destroy(&f);
}

/* ------------------------------------------------ unknown fields and nil */

static void s_pack_junk(s_frame_t *f)
{
    /* {"a": [1, -2, 1.5, nil, true, bin, ext, {"b": {"c": []}}], "d": "x"} */
    msgpack_pack_map(&f->pk, 2);
    s_str(f, "a");
    msgpack_pack_array(&f->pk, 8);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_int(&f->pk, -2);
    msgpack_pack_double(&f->pk, 1.5);
    msgpack_pack_nil(&f->pk);
    msgpack_pack_true(&f->pk);
    msgpack_pack_bin(&f->pk, 3);
    msgpack_pack_bin_body(&f->pk, "\0\1\2", 3);
    msgpack_pack_ext(&f->pk, 5, 9);
    msgpack_pack_ext_body(&f->pk, "12345", 5);
    msgpack_pack_map(&f->pk, 1);
    s_str(f, "b");
    msgpack_pack_map(&f->pk, 1);
    s_str(f, "c");
    msgpack_pack_array(&f->pk, 0);
    s_kv(f, "d", "x");
}

static void test_unknown_fields_are_ignored_in_envelope_and_body(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 3);
    s_str(&f, "x-trace");
    s_pack_junk(&f);
    s_str(&f, "x-float");
    msgpack_pack_float(&f.pk, 2.5f);
    s_body_lead_merged(&f, 3);
    s_str(&f, "future_field");
    s_pack_junk(&f);
    s_str(&f, "another");
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_int(&f.pk, 1);
    s_str(&f, "two");
    s_str(&f, "lead_idx"); /* close to a known name, still unknown */
    s_str(&f, "nope");
    s_str(&f, "x-last"); /* an unknown key after the body */
    msgpack_pack_nil(&f.pk);

    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&f, &m, &err), 0);
    assert_int_equal(m.type, CRM_T_lead_merged);
    assert_string_equal(m.id, "m-1");
    assert_true(m.seq == 5);
    assert_string_equal(m.body.lead_merged.lead_id, "L1");
    assert_string_equal(m.body.lead_merged.customer_id, "C1");
    assert_string_equal(m.body.lead_merged.match_key, "mobile");
    crm_msg_clear(&m);
    s_frame_destroy(&f);
}

static void test_envelope_keys_may_come_in_any_order(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    msgpack_pack_map(&f.pk, 8);
    s_body_lead_merged(&f, 0);
    s_kv(&f, "producer", "p");
    s_str(&f, "ts");
    msgpack_pack_int(&f.pk, -5);
    s_str(&f, "seq");
    msgpack_pack_uint8(&f.pk, 3);
    s_kv(&f, "stream", "lead");
    s_kv(&f, "id", "i");
    s_kv(&f, "type", "lead.merged");
    s_str(&f, "v");
    msgpack_pack_int(&f.pk, 1);
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&f, &m, &err), 0);
    assert_true(m.ts == -5);
    assert_true(m.seq == 3);
    assert_string_equal(m.body.lead_merged.match_key, "mobile");
    crm_msg_clear(&m);
    s_frame_destroy(&f);
}

static void test_nil_for_an_optional_field_means_absent(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.submit", NULL, 1);
    s_str(&f, "corr");
    msgpack_pack_nil(&f.pk);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 5);
    s_kv(&f, "submission_id", "s-1");
    s_kv(&f, "channel", "walkin");
    s_str(&f, "name");
    msgpack_pack_nil(&f.pk);
    s_str(&f, "testdrive_at");
    msgpack_pack_nil(&f.pk);
    s_str(&f, "mobile");
    msgpack_pack_nil(&f.pk);
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&f, &m, &err), 0);
    assert_false(m.body.lead_submit.has.name);
    assert_null(m.body.lead_submit.name);
    assert_false(m.body.lead_submit.has.testdrive_at);
    assert_false(m.body.lead_submit.has.mobile);
    assert_string_equal(m.corr, "");
    char *json = crm_msg_to_json(&m);
    assert_non_null(json);
    assert_null(strstr(json, "name"));
    assert_null(strstr(json, "corr"));
    free(json);
    crm_msg_clear(&m);
    s_frame_destroy(&f);
}

static void test_nil_for_a_required_field_is_missing(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.submit", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 2);
    s_kv(&f, "submission_id", "s-1");
    s_str(&f, "channel");
    msgpack_pack_nil(&f.pk);
    s_expect_frame_error(&f, CRM_E_MISSING, "body.channel");
    s_frame_destroy(&f);
}

/* ------------------------------------------------------ hostile headers */

static void test_map_claiming_4g_entries_in_6_bytes_is_malformed(void **state)
{
    (void) state;
    static const uint8_t frame[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x80};
    s_expect_error(frame, sizeof frame, CRM_E_MALFORMED, "envelope");

    /* the reader refuses it without moving */
    crm_mp_t r;
    uint32_t n = 0;
    crm_mp_init(&r, frame, sizeof frame);
    assert_int_equal(crm_mp_map(&r, &n), -1);
    assert_int_equal(crm_mp_left(&r), sizeof frame);
    assert_int_equal(crm_mp_skip(&r, 16), -1);
    assert_int_equal(crm_mp_left(&r), sizeof frame);

    /* and a map header cut short */
    static const uint8_t cut[] = {0xdf, 0x00, 0x00};
    s_expect_error(cut, sizeof cut, CRM_E_MALFORMED, "envelope");
}

static void test_str32_claiming_4gb_is_malformed(void **state)
{
    (void) state;
    static const uint8_t frame[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 'v', 0x01};
    s_expect_error(frame, sizeof frame, CRM_E_MALFORMED, NULL);

    /* as the value of the id */
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", "id", 1);
    s_str(&f, "id");
    s_raw(&f, "\xdb\xff\xff\xff\xfe" "abc", 8);
    s_expect_frame_error(&f, CRM_E_MALFORMED, "id");
    s_frame_destroy(&f);

    crm_mp_t r;
    const char *s;
    uint32_t n;
    crm_mp_init(&r, frame + 1, sizeof frame - 1);
    assert_int_equal(crm_mp_str(&r, &s, &n), -1);
    assert_int_equal(crm_mp_left(&r), sizeof frame - 1);
}

static void test_array_claiming_more_items_than_bytes_is_malformed(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "heartbeat", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 1);
    s_str(&f, "streams");
    s_raw(&f, "\xdd\x00\x01\x00\x00\xa1x\xa1y", 9); /* 65536 items, two present */
    s_expect_frame_error(&f, CRM_E_MALFORMED, NULL);
    s_frame_destroy(&f);

    /* the same inside an unknown field */
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 1);
    s_str(&f, "x-list");
    s_raw(&f, "\xdc\xff\xff\xc0", 4);
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_MALFORMED, "envelope");
    s_frame_destroy(&f);

    /* a fixarray of 15 with 14 bytes left */
    static const uint8_t small[] = {0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    crm_mp_t r;
    uint32_t n;
    crm_mp_init(&r, small, sizeof small);
    assert_int_equal(crm_mp_array(&r, &n), -1);
    crm_mp_init(&r, small, sizeof small - 1);
    assert_int_equal(crm_mp_left(&r), 14);
    assert_int_equal(crm_mp_skip(&r, 4), -1);
}

static void test_list_over_its_item_limit_is_too_long(void **state)
{
    (void) state;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "heartbeat", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 1);
    s_str(&f, "streams");
    msgpack_pack_array(&f.pk, CRM_STRS_MAX + 1);
    for (int i = 0; i <= CRM_STRS_MAX; i++)
        s_str(&f, "s");
    s_expect_frame_error(&f, CRM_E_TOOLONG, "body.streams");
    s_frame_destroy(&f);
}

static void test_string_over_its_limit_is_too_long(void **state)
{
    (void) state;
    char *big = malloc(CRM_STR_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', CRM_STR_MAX + 1);
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 1);
    s_str(&f, "x-big"); /* unknown fields are skipped, whatever their size */
    s_strn(&f, big, CRM_STR_MAX + 1);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 3);
    s_kv(&f, "lead_id", "L1");
    s_kv(&f, "customer_id", "C1");
    s_str(&f, "match_key");
    s_strn(&f, big, CRM_STR_MAX + 1);
    s_expect_frame_error(&f, CRM_E_TOOLONG, "body.match_key");
    s_frame_destroy(&f);

    /* exactly at the limit is fine */
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 3);
    s_kv(&f, "lead_id", "L1");
    s_kv(&f, "customer_id", "C1");
    s_str(&f, "match_key");
    s_strn(&f, big, CRM_STR_MAX);
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&f, &m, &err), 0);
    assert_int_equal(strlen(m.body.lead_merged.match_key), CRM_STR_MAX);
    crm_msg_clear(&m);
    s_frame_destroy(&f);
    free(big);
}

/* ----------------------------------------------------------------- sizes */

static void test_frame_over_the_maximum_is_refused_unread(void **state)
{
    (void) state;
    /* a valid frame padded by an unknown field to one byte over the limit */
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 1);
    s_str(&f, "x-pad");
    size_t now = f.sb.size + 5; /* str32 header */
    size_t tail = 0;
    {
        s_frame_t t;
        s_frame_init(&t);
        s_body_lead_merged(&t, 0);
        tail = t.sb.size;
        s_frame_destroy(&t);
    }
    size_t pad = CRM_FRAME_MAX + 1 - now - tail;
    char *big = calloc(1, pad);
    assert_non_null(big);
    memset(big, 'p', pad);
    s_raw(&f, "\xdb", 1);
    uint8_t len[4] = {(uint8_t) (pad >> 24), (uint8_t) (pad >> 16), (uint8_t) (pad >> 8),
                      (uint8_t) pad};
    s_raw(&f, len, 4);
    s_raw(&f, big, pad);
    s_body_lead_merged(&f, 0);
    assert_int_equal(f.sb.size, CRM_FRAME_MAX + 1);
    s_expect_frame_error(&f, CRM_E_SIZE, "frame");

    /* one byte less of padding and it decodes */
    s_frame_t g;
    s_frame_init(&g);
    s_env(&g, "lead.merged", NULL, 1);
    s_str(&g, "x-pad");
    s_raw(&g, "\xdb", 1);
    len[3] = (uint8_t) (pad - 1);
    len[2] = (uint8_t) ((pad - 1) >> 8);
    len[1] = (uint8_t) ((pad - 1) >> 16);
    s_raw(&g, len, 4);
    s_raw(&g, big, pad - 1);
    s_body_lead_merged(&g, 0);
    assert_int_equal(g.sb.size, CRM_FRAME_MAX);
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&g, &m, &err), 0);
    crm_msg_clear(&m);
    s_frame_destroy(&g);
    s_frame_destroy(&f);
    free(big);
}

static void test_zero_length_frame_is_a_size_error(void **state)
{
    (void) state;
    static const uint8_t one[1] = {0x80};
    s_expect_error(one, 0, CRM_E_SIZE, "frame");
    s_expect_error(NULL, 0, CRM_E_SIZE, "frame");
}

/* ------------------------------------------------------- compact form */

/* The compact (kept) form of every message with all or only its required
   fields reads back the same, but for what it does not keep. */
static void test_every_message_type_round_trips_in_the_compact_form(void **state)
{
    (void) state;
    for (int all = 0; all < 2; all++) {
        for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++) {
            crm_msg_t m, d;
            s_fill(&m, (crm_type_t) t, all);
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            assert_int_equal(crm_msg_encode_compact(&m, &sb), 0);
            crm_err_t err;
            if (crm_msg_decode_kept(sb.data, sb.size, &d, &err) != 0)
                fail_msg("%s does not decode: %s %s: %s", crm_type_name(m.type), crm_errcode_name(err.code),
                         err.field, err.text);
            /* not kept: made again by the keeper */
            m.id[0] = m.stream[0] = m.producer[0] = m.corr[0] = 0;
            m.seq = 0;
            s_cmp(&m, &d);
            /* every cut of it fails cleanly */
            for (size_t len = 0; len < sb.size; len++) {
                uint8_t *copy = malloc(len ? len : 1);
                assert_non_null(copy);
                memcpy(copy, sb.data, len);
                crm_msg_t c;
                if (crm_msg_decode_kept(copy, len, &c, &err) != -1)
                    fail_msg("%s cut to %zu of %zu bytes decoded", crm_type_name(m.type), len, sb.size);
                assert_int_not_equal(err.code, CRM_E_OK);
                crm_msg_clear(&c);
                free(copy);
            }
            msgpack_sbuffer_destroy(&sb);
            crm_msg_clear(&d);
            crm_msg_clear(&m);
        }
    }
}

/* A lead.accepted answer with a finding kept compact is under half its
   envelope's size; an envelope kept before the compact form still reads. */
static void test_compact_form_is_small_and_whole_envelopes_still_read(void **state)
{
    (void) state;
    crm_msg_t m, d;
    crm_msg_init(&m, CRM_T_lead_accepted);
    m.ts = 1796206480832LL;
    CRM_SET_STR(&m, lead_accepted, submission_id, "");
    CRM_SET_STR(&m, lead_accepted, lead_id, "L192");
    CRM_SET_STR(&m, lead_accepted, customer_id, "C192");
    m.body.lead_accepted.merged = false, m.body.lead_accepted.has.merged = true;
    assert_int_equal(crm_strs_push(&m.body.lead_accepted.findings, "email|missing|e-mail is missing"), 0);
    m.body.lead_accepted.has.findings = true;
    msgpack_sbuffer whole, compact;
    msgpack_sbuffer_init(&whole), msgpack_sbuffer_init(&compact);
    assert_int_equal(crm_msg_encode(&m, &whole, NULL), 0);
    assert_int_equal(crm_msg_encode_compact(&m, &compact), 0);
    assert_true(compact.size * 2 < whole.size);
    assert_true(compact.size <= 80); /* 73: names and the envelope are not kept */
    crm_err_t err;
    assert_int_equal(crm_msg_decode_kept(whole.data, whole.size, &d, &err), 0);
    s_cmp(&m, &d);
    crm_msg_clear(&d);
    msgpack_sbuffer_destroy(&whole);

    /* another build's fields (the shape hash, item 4, differs): refused */
    uint8_t *bad = malloc(compact.size);
    assert_non_null(bad);
    memcpy(bad, compact.data, compact.size);
    /* [v, "lead.accepted", ts, shape, ...]: the shape follows the int64 ts */
    size_t shape_at = 1 + 1 + 1 + strlen("lead.accepted") + 9;
    assert_true(bad[shape_at] == 0xcd || bad[shape_at] < 0x80);
    bad[shape_at + (bad[shape_at] == 0xcd ? 2 : 0)] ^= 1;
    assert_int_equal(crm_msg_decode_kept(bad, compact.size, &d, &err), -1);
    assert_int_equal(err.code, CRM_E_VERSION);
    assert_string_equal(err.field, "body");
    crm_msg_clear(&d);
    free(bad);
    msgpack_sbuffer_destroy(&compact);
    crm_msg_clear(&m);
}

static void test_every_prefix_of_every_message_fails_cleanly(void **state)
{
    (void) state;
    for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++) {
        crm_msg_t m;
        s_fill(&m, (crm_type_t) t, true);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(crm_msg_encode(&m, &sb, NULL), 0);
        for (size_t len = 0; len < sb.size; len++) {
            /* a copy of exactly `len` bytes, so ASan sees any read past it */
            uint8_t *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, sb.data, len);
            crm_msg_t d;
            crm_err_t err;
            if (crm_msg_decode(copy, len, &d, &err) != -1)
                fail_msg("%s cut to %zu of %zu bytes decoded", crm_type_name(m.type), len, sb.size);
            assert_int_not_equal(err.code, CRM_E_OK);
            assert_true(len == 0 ? err.code == CRM_E_SIZE : err.code != CRM_E_SIZE);
            crm_msg_clear(&d);
            free(copy);
        }
        msgpack_sbuffer_destroy(&sb);
        crm_msg_clear(&m);
    }
}

static void test_trailing_bytes_after_the_envelope_are_malformed(void **state)
{
    (void) state;
    crm_msg_t m;
    s_fill(&m, CRM_T_lead_merged, true);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(crm_msg_encode(&m, &sb, NULL), 0);
    crm_msg_t d;
    crm_err_t err;
    assert_int_equal(crm_msg_decode(sb.data, sb.size, &d, &err), 0);
    crm_msg_clear(&d);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    s_expect_error(sb.data, sb.size, CRM_E_MALFORMED, "envelope");
    /* two frames back to back are not one frame */
    assert_int_equal(crm_msg_encode(&m, &sb, NULL), 0);
    s_expect_error(sb.data, sb.size, CRM_E_MALFORMED, "envelope");
    msgpack_sbuffer_destroy(&sb);
    crm_msg_clear(&m);
}

/* ----------------------------------------------------------------- text */

static void s_expect_bad_text(const char *bytes, size_t n)
{
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.submit", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 3);
    s_kv(&f, "submission_id", "s-1");
    s_kv(&f, "channel", "website");
    s_str(&f, "name");
    s_strn(&f, bytes, n);
    s_expect_frame_error(&f, CRM_E_TYPE, "body.name");
    s_frame_destroy(&f);
}

static void test_invalid_utf8_or_nul_in_a_string_is_a_type_error(void **state)
{
    (void) state;
    s_expect_bad_text("a\0b", 3);             /* embedded NUL */
    s_expect_bad_text("\xff\xfe", 2);         /* never valid */
    s_expect_bad_text("\xc0\xaf", 2);         /* overlong '/' */
    s_expect_bad_text("\xe0\x80\xaf", 3);     /* overlong, three bytes */
    s_expect_bad_text("\xed\xa0\x80", 3);     /* UTF-16 surrogate */
    s_expect_bad_text("\xf4\x90\x80\x80", 4); /* beyond U+10FFFF */
    s_expect_bad_text("\xe5\xbc", 2);         /* cut in the middle of a character */
    s_expect_bad_text("\x80", 1);             /* continuation byte alone */

    /* in the envelope and in a list */
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", "producer", 1);
    s_str(&f, "producer");
    s_strn(&f, "p\0", 2);
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "producer");
    s_frame_destroy(&f);

    s_frame_init(&f);
    s_env(&f, "heartbeat", NULL, 0);
    s_str(&f, "body");
    msgpack_pack_map(&f.pk, 1);
    s_str(&f, "streams");
    msgpack_pack_array(&f.pk, 1);
    s_strn(&f, "\xc3\x28", 2);
    s_expect_frame_error(&f, CRM_E_TYPE, "body.streams");
    s_frame_destroy(&f);
}

static void test_valid_multibyte_utf8_is_accepted(void **state)
{
    (void) state;
    static const char *texts[] = {"é", "张三", "€", "𝄞 G clef", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        s_frame_t f;
        s_frame_init(&f);
        s_env(&f, "lead.submit", NULL, 0);
        s_str(&f, "body");
        msgpack_pack_map(&f.pk, 3);
        s_kv(&f, "submission_id", "s-1");
        s_kv(&f, "channel", "website");
        s_kv(&f, "name", texts[i]);
        crm_msg_t m;
        crm_err_t err;
        if (s_decode(&f, &m, &err) != 0)
            fail_msg("'%s' refused: %s", texts[i], err.text);
        assert_string_equal(m.body.lead_submit.name, texts[i]);
        crm_msg_clear(&m);
        s_frame_destroy(&f);
    }
}

/* --------------------------------------------------------------- envelope */

static void test_newer_schema_version_is_refused(void **state)
{
    (void) state;
    static const uint64_t versions[] = {CRM_SCHEMA_VERSION + 1, 0, UINT32_MAX + 2ULL};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        s_frame_t f;
        s_frame_init(&f);
        s_env(&f, "lead.merged", "v", 1);
        s_str(&f, "v");
        msgpack_pack_uint64(&f.pk, versions[i]);
        s_body_lead_merged(&f, 0);
        s_expect_frame_error(&f, CRM_E_VERSION, "v");
        s_frame_destroy(&f);
    }
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", "v", 1);
    s_kv(&f, "v", "1");
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TYPE, "v");
    s_frame_destroy(&f);
}

static void test_unknown_message_type_is_refused(void **state)
{
    (void) state;
    static const char *types[] = {"lead.teleported", "", "lead.submit ", "LEAD.SUBMIT"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        s_frame_t f;
        s_frame_init(&f);
        s_env(&f, types[i], NULL, 0);
        s_str(&f, "body");
        msgpack_pack_map(&f.pk, 0);
        s_expect_frame_error(&f, CRM_E_UNKNOWN, "type");
        s_frame_destroy(&f);
    }
}

static void test_over_long_id_is_too_long(void **state)
{
    (void) state;
    char id[CRM_ID_MAX + 1];
    memset(id, 'i', sizeof id);
    id[CRM_ID_MAX] = 0; /* CRM_ID_MAX characters: one too many */
    for (int ok = 0; ok < 2; ok++) {
        if (ok)
            id[CRM_ID_MAX - 1] = 0; /* CRM_ID_MAX-1 characters: just fits */
        s_frame_t f;
        s_frame_init(&f);
        s_env(&f, "lead.merged", "id", 1);
        s_kv(&f, "id", id);
        s_body_lead_merged(&f, 0);
        if (!ok) {
            s_expect_frame_error(&f, CRM_E_TOOLONG, "id");
        } else {
            crm_msg_t m;
            crm_err_t err;
            assert_int_equal(s_decode(&f, &m, &err), 0);
            assert_string_equal(m.id, id);
            crm_msg_clear(&m);
        }
        s_frame_destroy(&f);
    }

    /* and the names: producer */
    char name[CRM_NAME_MAX + 1];
    memset(name, 'n', sizeof name);
    name[CRM_NAME_MAX] = 0;
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", "producer", 1);
    s_kv(&f, "producer", name);
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_TOOLONG, "producer");
    s_frame_destroy(&f);
}

/* `depth` one-item containers (0x91: fixarray of 1) around a nil. */
static void s_nest(s_frame_t *f, size_t depth, uint8_t container)
{
    uint8_t *b = malloc(depth + 1);
    assert_non_null(b);
    memset(b, container, depth);
    b[depth] = 0xc0; /* nil at the bottom */
    s_raw(f, b, depth + 1);
    free(b);
}

static void test_deep_nesting_in_an_unknown_field_is_malformed(void **state)
{
    (void) state;
    /* 100 000 nested arrays: a recursive skip without a limit would
       overflow the stack; the codec must stop at its depth limit */
    s_frame_t f;
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 0);
    s_body_lead_merged(&f, 1);
    s_str(&f, "x-deep");
    s_nest(&f, 100000, 0x91);
    s_expect_frame_error(&f, CRM_E_MALFORMED, NULL);
    s_frame_destroy(&f);

    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 1);
    s_str(&f, "x-deep");
    s_nest(&f, 100000, 0x91);
    s_body_lead_merged(&f, 0);
    s_expect_frame_error(&f, CRM_E_MALFORMED, "envelope");
    s_frame_destroy(&f);

    /* shallow nesting in an unknown field is fine */
    s_frame_init(&f);
    s_env(&f, "lead.merged", NULL, 0);
    s_body_lead_merged(&f, 1);
    s_str(&f, "x-shallow");
    s_nest(&f, 8, 0x91);
    crm_msg_t m;
    crm_err_t err;
    assert_int_equal(s_decode(&f, &m, &err), 0);
    crm_msg_clear(&m);
    s_frame_destroy(&f);

    /* the reader's own limit */
    uint8_t deep[20];
    memset(deep, 0x91, sizeof deep);
    deep[19] = 0xc0;
    crm_mp_t r;
    crm_mp_init(&r, deep, sizeof deep);
    assert_int_equal(crm_mp_skip(&r, 18), -1);
    assert_int_equal(crm_mp_left(&r), sizeof deep);
    assert_int_equal(crm_mp_skip(&r, 19), 0);
    assert_int_equal(crm_mp_left(&r), 0);
}

static void test_not_msgpack_is_malformed(void **state)
{
    (void) state;
    static const uint8_t reserved[] = {0xc1};
    s_expect_error(reserved, sizeof reserved, CRM_E_MALFORMED, "envelope");
    /* JSON starts with '{', which msgpack reads as the integer 123 */
    static const char text[] = "{\"v\":1}";
    s_expect_error(text, sizeof text - 1, CRM_E_TYPE, "envelope");
}

/* ------------------------------------------------------------------ json */

static void test_json_of_a_small_message_is_exact_and_escaped(void **state)
{
    (void) state;
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_lead_merged);
    snprintf(m.id, sizeof m.id, "m-1");
    snprintf(m.producer, sizeof m.producer, "crm-intake");
    snprintf(m.corr, sizeof m.corr, "c\"1");
    m.seq = 7;
    m.ts = 1700000000000LL;
    assert_int_equal(CRM_SET_STR(&m, lead_merged, lead_id, "L\\1"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_merged, customer_id, "C\n\x01\x1f 张"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_merged, match_key, "mobile"), 0);
    char *json = crm_msg_to_json(&m);
    assert_non_null(json);
    assert_string_equal(json, "{\"v\":1,\"type\":\"lead.merged\",\"id\":\"m-1\",\"stream\":\"lead\","
                              "\"seq\":7,\"ts\":1700000000000,\"producer\":\"crm-intake\","
                              "\"corr\":\"c\\\"1\",\"body\":{\"lead_id\":\"L\\\\1\","
                              "\"customer_id\":\"C\\u000a\\u0001\\u001f 张\","
                              "\"match_key\":\"mobile\"}}");
    free(json);
    crm_msg_clear(&m);
}

static void test_json_of_lists_bools_and_integers_is_exact(void **state)
{
    (void) state;
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_lead_accepted);
    snprintf(m.id, sizeof m.id, "a");
    snprintf(m.producer, sizeof m.producer, "p");
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, submission_id, "s"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, lead_id, "l"), 0);
    assert_int_equal(CRM_SET_STR(&m, lead_accepted, customer_id, "c"), 0);
    CRM_SET_BOOL(&m, lead_accepted, merged, false);
    assert_int_equal(crm_strs_push(&m.body.lead_accepted.findings, "a|b"), 0);
    assert_int_equal(crm_strs_push(&m.body.lead_accepted.findings, "\"q\""), 0);
    m.body.lead_accepted.has.findings = true;
    char *json = crm_msg_to_json(&m);
    assert_non_null(json);
    assert_string_equal(json, "{\"v\":1,\"type\":\"lead.accepted\",\"id\":\"a\",\"stream\":\"\","
                              "\"seq\":0,\"ts\":0,\"producer\":\"p\",\"body\":{\"submission_id\":"
                              "\"s\",\"lead_id\":\"l\",\"customer_id\":\"c\",\"merged\":false,"
                              "\"findings\":[\"a|b\",\"\\\"q\\\"\"]}}");
    free(json);
    crm_msg_clear(&m);

    crm_msg_init(&m, CRM_T_testdrive_acked);
    snprintf(m.id, sizeof m.id, "k");
    snprintf(m.producer, sizeof m.producer, "d");
    assert_int_equal(CRM_SET_STR(&m, testdrive_acked, dealer_id, "D"), 0);
    CRM_SET_I64(&m, testdrive_acked, dealer_seq, INT64_MIN);
    json = crm_msg_to_json(&m);
    assert_non_null(json);
    assert_string_equal(json, "{\"v\":1,\"type\":\"testdrive.acked\",\"id\":\"k\",\"stream\":"
                              "\"testdrive\",\"seq\":0,\"ts\":0,\"producer\":\"d\",\"body\":{"
                              "\"dealer_id\":\"D\",\"dealer_seq\":-9223372036854775808}}");
    free(json);
    crm_msg_clear(&m);
}

static void test_json_with_the_widest_seq_and_ts_is_complete(void **state)
{
    (void) state;
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_heartbeat);
    snprintf(m.id, sizeof m.id, "h");
    snprintf(m.producer, sizeof m.producer, "p");
    m.seq = UINT64_MAX;
    m.ts = INT64_MIN;
    m.body.heartbeat.has.streams = true;
    char *json = crm_msg_to_json(&m);
    assert_non_null(json);
    assert_string_equal(json, "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"h\",\"stream\":\"\","
                              "\"seq\":18446744073709551615,\"ts\":-9223372036854775808,"
                              "\"producer\":\"p\",\"body\":{\"streams\":[]}}");
    free(json);
    crm_msg_clear(&m);
}

/* ------------------------------------------------------------- reference */

static void test_reference_mentions_every_message_and_field(void **state)
{
    (void) state;
    char *doc = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&doc, &len);
    assert_non_null(out);
    crm_proto_write_reference(out);
    assert_int_equal(fclose(out), 0);
    assert_non_null(doc);
    assert_true(len > 1000);
#define T_REF_FIELD(msg, field, type, req, what) assert_non_null(strstr(doc, "| `" #field "` |"));
#define T_REF(ident, wire, stream, text)                                                           \
    assert_non_null(strstr(doc, "### `" wire "`"));                                                \
    assert_non_null(strstr(doc, text));                                                            \
    CRM_FIELDS_##ident(T_REF_FIELD)
    CRM_MESSAGES(T_REF)
#undef T_REF
#undef T_REF_FIELD
    assert_non_null(strstr(doc, "schema version 1"));
    assert_non_null(strstr(doc, "| `producer` | string | yes |"));
    assert_non_null(strstr(doc, "| `testdrive_at` | int64 | no |"));
    assert_non_null(strstr(doc, "| `merged` | bool | yes |"));
    assert_non_null(strstr(doc, "| `streams` | array of string | yes |"));
    free(doc);
}

/* -------------------------------------------------------------- errors */

static void test_error_codes_have_names(void **state)
{
    (void) state;
    assert_string_equal(crm_errcode_name(CRM_E_OK), "ok");
    assert_string_equal(crm_errcode_name(CRM_E_MALFORMED), "malformed");
    assert_string_equal(crm_errcode_name(CRM_E_TOOLONG), "too_long");
    assert_string_equal(crm_errcode_name((crm_errcode_t) 99), "error");
}

static void test_decode_without_an_error_struct_still_fails_cleanly(void **state)
{
    (void) state;
    static const uint8_t frame[] = {0x81, 0xa1, 'v', 0x05};
    crm_msg_t m;
    assert_int_equal(crm_msg_decode(frame, sizeof frame, &m, NULL), -1);
    assert_int_equal(crm_msg_decode(frame, 0, &m, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fully_filled_lead_submit_round_trips),
        cmocka_unit_test(test_lead_accepted_with_findings_and_bool_round_trips),
        cmocka_unit_test(test_heartbeat_streams_round_trip),
        cmocka_unit_test(test_i64_extremes_round_trip),
        cmocka_unit_test(test_every_message_type_round_trips_with_every_field_set),
        cmocka_unit_test(test_every_message_type_round_trips_with_only_required_fields),
        cmocka_unit_test(test_message_table_matches_definitions),
        cmocka_unit_test(test_seq_is_fixed_uint64_at_reported_offset),
        cmocka_unit_test(test_seq_offset_is_relative_to_the_frame_start_in_a_shared_buffer),
        cmocka_unit_test(test_missing_required_body_field_is_named),
        cmocka_unit_test(test_every_required_body_field_is_reported_missing_by_name),
        cmocka_unit_test(test_missing_envelope_field_is_named),
        cmocka_unit_test(test_body_that_is_not_a_map_is_a_type_error),
        cmocka_unit_test(test_seq_as_string_is_a_type_error),
        cmocka_unit_test(test_merged_as_string_is_a_type_error),
        cmocka_unit_test(test_testdrive_at_as_string_is_a_type_error_and_frees_what_was_read),
        cmocka_unit_test(test_other_wrong_types_are_named),
        cmocka_unit_test(test_unknown_fields_are_ignored_in_envelope_and_body),
        cmocka_unit_test(test_envelope_keys_may_come_in_any_order),
        cmocka_unit_test(test_nil_for_an_optional_field_means_absent),
        cmocka_unit_test(test_nil_for_a_required_field_is_missing),
        cmocka_unit_test(test_map_claiming_4g_entries_in_6_bytes_is_malformed),
        cmocka_unit_test(test_str32_claiming_4gb_is_malformed),
        cmocka_unit_test(test_array_claiming_more_items_than_bytes_is_malformed),
        cmocka_unit_test(test_list_over_its_item_limit_is_too_long),
        cmocka_unit_test(test_string_over_its_limit_is_too_long),
        cmocka_unit_test(test_frame_over_the_maximum_is_refused_unread),
        cmocka_unit_test(test_zero_length_frame_is_a_size_error),
        cmocka_unit_test(test_every_prefix_of_every_message_fails_cleanly),
        cmocka_unit_test(test_every_message_type_round_trips_in_the_compact_form),
        cmocka_unit_test(test_compact_form_is_small_and_whole_envelopes_still_read),
        cmocka_unit_test(test_trailing_bytes_after_the_envelope_are_malformed),
        cmocka_unit_test(test_invalid_utf8_or_nul_in_a_string_is_a_type_error),
        cmocka_unit_test(test_valid_multibyte_utf8_is_accepted),
        cmocka_unit_test(test_newer_schema_version_is_refused),
        cmocka_unit_test(test_unknown_message_type_is_refused),
        cmocka_unit_test(test_over_long_id_is_too_long),
        cmocka_unit_test(test_deep_nesting_in_an_unknown_field_is_malformed),
        cmocka_unit_test(test_not_msgpack_is_malformed),
        cmocka_unit_test(test_json_of_a_small_message_is_exact_and_escaped),
        cmocka_unit_test(test_json_of_lists_bools_and_integers_is_exact),
        cmocka_unit_test(test_json_with_the_widest_seq_and_ts_is_complete),
        cmocka_unit_test(test_reference_mentions_every_message_and_field),
        cmocka_unit_test(test_error_codes_have_names),
        cmocka_unit_test(test_decode_without_an_error_struct_still_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
