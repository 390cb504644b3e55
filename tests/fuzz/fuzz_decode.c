/*  fuzz_decode: libFuzzer target for crm_msg_decode.
 *
 *  Every input must either be refused with an error code and a field name,
 *  or decode into a message that survives encode -> decode unchanged (the
 *  JSON of both must be equal). Anything else aborts, and the sanitizers
 *  catch reads past the input, leaks and undefined behaviour.
 *
 *  Seeds: tests/fuzz/corpus (made by tests/fuzz/make_seeds.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "fuzz_decode: %s\n  first:  %s\n  second: %s\n", what, a ? a : "(null)",
            b ? b : "(null)");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_msg_t first, second;
    crm_err_t err;
    if (crm_msg_decode(data, size, &first, &err) != 0) {
        if (err.code == CRM_E_OK || err.field[0] == 0)
            s_die("refused without an error code or a field", err.field, err.text);
        crm_msg_clear(&first); /* nothing should be left, but clearing must be safe */
        return 0;
    }

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t seq_off = 0;
    if (crm_msg_encode(&first, &sb, &seq_off) != 0)
        s_die("a decoded message does not encode", NULL, NULL);
    if (seq_off < 1 || seq_off + 8 > sb.size || (uint8_t) sb.data[seq_off - 1] != 0xcf)
        s_die("seq is not a fixed uint64 at the reported offset", NULL, NULL);

    char *a = crm_msg_to_json(&first);
    if (!a)
        s_die("no JSON for the first decode", NULL, NULL);
    /* The encoder writes seq as 9 bytes whatever the input used; only a
       frame near the limit can grow past it, and then it is refused. */
    if (sb.size > CRM_FRAME_MAX) {
        free(a);
        msgpack_sbuffer_destroy(&sb);
        crm_msg_clear(&first);
        return 0;
    }
    if (crm_msg_decode(sb.data, sb.size, &second, &err) != 0)
        s_die("the re-encoded message does not decode", a, err.text);
    char *b = crm_msg_to_json(&second);
    if (!b || strcmp(a, b) != 0)
        s_die("the message changed in encode -> decode", a, b);

    free(a);
    free(b);
    msgpack_sbuffer_destroy(&sb);
    crm_msg_clear(&first);
    crm_msg_clear(&second);
    return 0;
}
