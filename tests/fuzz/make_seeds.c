/*  make_seeds: writes the seed corpus of the decoder fuzzer.
 *
 *  One valid, fully filled frame per message in proto/messages.def, named
 *  <wire type>.bin (lead.submit.bin, ...), plus a few broken frames
 *  (broken.*.bin) so the fuzzer starts next to each error path. It is not
 *  part of the CMake build; run it again when messages.def changes:
 *
 *    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I proto \
 *       tests/fuzz/make_seeds.c proto/crm_proto.c proto/crm_mp.c \
 *       $(pkg-config --cflags --libs msgpack) -o /tmp/make_seeds
 *    /tmp/make_seeds tests/fuzz/corpus
 *
 *  (from the repository root). It checks every valid seed decodes and
 *  every broken one is refused, and exits 1 otherwise.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_proto.h"

#define SEED_REQ_REQ 1
#define SEED_REQ_OPT 0

static const char *s_dir;
static int s_failed;

static void s_write(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", s_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Writes a seed after checking that it decodes (or is refused, for the
   broken ones) as intended. */
static void s_seed(const char *name, const void *data, size_t len, bool valid)
{
    crm_msg_t m;
    crm_err_t err;
    int rc = crm_msg_decode(data, len, &m, &err);
    if ((rc == 0) != valid) {
        fprintf(stderr, "%s: expected %s, got %s %s\n", name, valid ? "a message" : "an error",
                rc == 0 ? "a message" : crm_errcode_name(err.code), rc == 0 ? "" : err.field);
        s_failed = 1;
    }
    crm_msg_clear(&m);
    s_write(name, data, len);
}

static void s_fill_STR(char **v, const char *field, int k)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s-%d 值 \"q\"", field, k);
    crm_strdup_into(v, buf);
}
static void s_fill_I64(int64_t *v, const char *field, int k)
{
    (void) field;
    *v = k % 2 ? 1767225600000LL + k : -k;
}
static void s_fill_BOOL(bool *v, const char *field, int k)
{
    (void) field;
    *v = k % 2;
}
static void s_fill_STRS(crm_strs_t *v, const char *field, int k)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s|code|%d", field, k);
    crm_strs_push(v, buf);
    crm_strs_push(v, "name=value");
}

#define SEED_F(msg, field, type, req, doc)                                                        \
    s_fill_##type(&b->field, #field, ++k);                                                         \
    b->has.field = true;
#define SEED_M(ident, wire, stream, doc)                                                           \
    case CRM_T_##ident: {                                                                          \
        crm_body_##ident##_t *b = &m->body.ident;                                                  \
        CRM_FIELDS_##ident(SEED_F) break;                                                          \
    }

static void s_fill(crm_msg_t *m, crm_type_t type)
{
    int k = 0;
    crm_msg_init(m, type);
    snprintf(m->id, sizeof m->id, "01JSEED%02d", (int) type);
    snprintf(m->producer, sizeof m->producer, "crm-seed");
    snprintf(m->corr, sizeof m->corr, "corr-%02d", (int) type);
    m->seq = 42;
    m->ts = 1767225600000LL;
    switch (type) {
        CRM_MESSAGES(SEED_M)
    default: break;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    s_dir = argv[1];
    msgpack_sbuffer sb;

    /* one valid frame per message */
    for (int t = CRM_T_NONE + 1; t < CRM_T__COUNT; t++) {
        crm_msg_t m;
        s_fill(&m, (crm_type_t) t);
        msgpack_sbuffer_init(&sb);
        if (crm_msg_encode(&m, &sb, NULL) != 0)
            return 1;
        s_seed(crm_type_name((crm_type_t) t), sb.data, sb.size, true);
        msgpack_sbuffer_destroy(&sb);
        crm_msg_clear(&m);
    }

    /* broken: lead.submit cut in half, and with one byte after it */
    crm_msg_t m;
    s_fill(&m, CRM_T_lead_submit);
    msgpack_sbuffer_init(&sb);
    crm_msg_encode(&m, &sb, NULL);
    s_seed("broken.truncated", sb.data, sb.size / 2, false);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    s_seed("broken.trailing", sb.data, sb.size, false);
    msgpack_sbuffer_destroy(&sb);
    crm_msg_clear(&m);

    /* broken: lead.accepted whose merged is a string, built by hand */
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
#define PACK_STR(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
    msgpack_pack_map(&pk, 9);
    PACK_STR("v");
    msgpack_pack_uint32(&pk, 1);
    PACK_STR("type");
    PACK_STR("lead.accepted");
    PACK_STR("id");
    PACK_STR("a-1");
    PACK_STR("stream");
    PACK_STR("");
    PACK_STR("seq");
    msgpack_pack_fix_uint64(&pk, 0);
    PACK_STR("ts");
    msgpack_pack_int64(&pk, 1767225600000LL);
    PACK_STR("producer");
    PACK_STR("crm-intake");
    PACK_STR("x-unknown");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_double(&pk, 0.5);
    PACK_STR("body");
    msgpack_pack_map(&pk, 5);
    PACK_STR("submission_id");
    PACK_STR("s-1");
    PACK_STR("lead_id");
    PACK_STR("L-1");
    PACK_STR("customer_id");
    PACK_STR("C-1");
    PACK_STR("findings");
    msgpack_pack_array(&pk, 1);
    PACK_STR("email|format|bad");
    PACK_STR("merged");
    PACK_STR("true");
    s_seed("broken.wrong-type", sb.data, sb.size, false);
    msgpack_sbuffer_destroy(&sb);
#undef PACK_STR

    /* broken: hostile headers */
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x80};
    s_seed("broken.huge-map", huge_map, sizeof huge_map, false);
    static const uint8_t huge_str[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 'v', 0x01};
    s_seed("broken.huge-str", huge_str, sizeof huge_str, false);
    uint8_t deep[64];
    memset(deep, 0x91, sizeof deep);
    deep[0] = 0x81;
    deep[1] = 0xa1;
    deep[2] = 'x';
    deep[sizeof deep - 1] = 0xc0;
    s_seed("broken.deep", deep, sizeof deep, false);

    return s_failed;
}
