/*  fuzz_norm: libFuzzer target for every crm_norm_* function.
 *
 *  The input, made a C string, goes through each normaliser. Outputs are
 *  heap buffers of exactly the documented size, so ASan catches a write
 *  past them; each must be NUL-terminated inside it. Where the contract
 *  makes a normalised value a fixed point, normalising it again must give
 *  it back with the same code. Seeds: tests/fuzz/seeds/norm.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_norm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *in, const char *a, const char *b)
{
    fprintf(stderr, "fuzz_norm: %s\n  input:  %s\n  first:  %s\n  second: %s\n", what,
            in ? in : "", a ? a : "(null)", b ? b : "(null)");
    abort();
}

/* A fresh buffer of n bytes filled with a mark, so a missing NUL shows. */
static char *s_buf(size_t n)
{
    char *p = malloc(n);
    if (p)
        memset(p, 0x5A, n);
    return p;
}

static void s_terminated(const char *what, const char *in, const char *out, size_t n)
{
    if (!memchr(out, '\0', n))
        s_die(what, in, "output not NUL-terminated", NULL);
}

static void s_code(const char *what, const char *in, int code)
{
    if (code < 0 || code >= CRM_NORM_CODE_COUNT || !crm_norm_code_str((crm_norm_code_t) code))
        s_die(what, in, "a code outside the enum", NULL);
}

/* norm(in) = out with code c; for a fixed point, norm(out) must be out, c. */
#define S_FIXED(what, in, fn, sz, ok)                                                              \
    do {                                                                                           \
        char *o1 = s_buf(sz), *o2 = s_buf(sz);                                                     \
        if (!o1 || !o2) {                                                                          \
            free(o1), free(o2);                                                                    \
            break;                                                                                 \
        }                                                                                          \
        crm_norm_code_t c1 = fn(in, o1);                                                           \
        s_code(what, in, (int) c1);                                                                \
        s_terminated(what, in, o1, sz);                                                            \
        if (ok) {                                                                                  \
            crm_norm_code_t c2 = fn(o1, o2);                                                       \
            s_terminated(what, in, o2, sz);                                                        \
            if (c2 != c1 || strcmp(o1, o2) != 0)                                                   \
                s_die(what " is not idempotent", in, o1, o2);                                      \
        }                                                                                          \
        free(o1), free(o2);                                                                        \
    } while (0)

static void s_text(const char *in)
{
    char *o1 = s_buf(256), *o2 = s_buf(256);
    if (o1 && o2 && crm_norm_text(in, o1, 256) == 0) {
        s_terminated("text", in, o1, 256);
        if (crm_norm_text(o1, o2, 256) != 0 || strcmp(o1, o2) != 0)
            s_die("text is not idempotent", in, o1, o2);
    } else if (o1)
        s_terminated("text", in, o1, 256);
    free(o1), free(o2);
    /* Bounds: a one-byte buffer holds only the NUL. */
    char one[1] = {'x'};
    crm_norm_text(in, one, 1);
    if (one[0] != '\0')
        s_die("text ignores outsz 1", in, NULL, NULL);
}

static void s_city(const char *in)
{
    char *o1 = s_buf(64);
    if (!o1)
        return;
    if (crm_norm_city(in, o1, 64) == 0)
        s_terminated("city", in, o1, 64);
    /* Not checked for idempotence: 深圳市市 -> 深圳市 -> 深圳 by the rule
       (strip one trailing 市 while two characters remain). */
    free(o1);
}

static void s_landline(const char *in)
{
    crm_landline_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) {
        free(a), free(b);
        return;
    }
    memset(a, 0x5A, sizeof *a);
    crm_norm_code_t c = crm_norm_landline(in, a);
    s_code("landline", in, (int) c);
    s_terminated("landline.area", in, a->area, sizeof a->area);
    s_terminated("landline.local", in, a->local, sizeof a->local);
    s_terminated("landline.ext", in, a->ext, sizeof a->ext);
    s_terminated("landline.formatted", in, a->formatted, sizeof a->formatted);
    /* A 400/800 number with an extension is checked too: "400-123-1234-1"
       reads back as that business number (seed regress-landline-400-ext). */
    if (c == CRM_NORM_OK || c == CRM_NORM_BUSINESS_NUMBER) {
        crm_norm_code_t c2 = crm_norm_landline(a->formatted, b);
        if (c2 != c || strcmp(a->formatted, b->formatted) != 0)
            s_die("landline is not idempotent", in, a->formatted, b->formatted);
    }
    free(a), free(b);
}

static void s_province(const char *in)
{
    const char *canon = "x";
    int code = -7;
    if (crm_norm_province(in, &canon, &code) == 0) {
        const char *again = NULL;
        int code2 = 0;
        if (!canon || crm_norm_province(canon, &again, &code2) != 0 || code2 != code ||
            strcmp(again, canon) != 0)
            s_die("province is not idempotent", in, canon, again);
        if (code < 11 || code > 82)
            s_die("province code out of GB/T 2260", in, canon, NULL);
    } else if (canon || code != 0)
        s_die("province failure leaves outputs", in, canon, NULL);
}

static void s_idcard(const char *in)
{
    crm_idcard_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) {
        free(a), free(b);
        return;
    }
    memset(a, 0x5A, sizeof *a);
    crm_norm_code_t c = crm_norm_idcard(in, a);
    s_code("idcard", in, (int) c);
    s_terminated("idcard.id", in, a->id, sizeof a->id);
    s_terminated("idcard.birth", in, a->birth, sizeof a->birth);
    if (c == CRM_NORM_OK || c == CRM_NORM_BAD_CHECK) {
        crm_norm_code_t c2 = crm_norm_idcard(a->id, b);
        if (c2 != c || strcmp(a->id, b->id) != 0 || strcmp(a->birth, b->birth) != 0 ||
            a->sex != b->sex || b->from_15)
            s_die("idcard is not idempotent", in, a->id, b->id);
    }
    free(a), free(b);
}

static void s_plate(const char *in)
{
    char *o1 = s_buf(CRM_NORM_PLATE_SZ), *o2 = s_buf(CRM_NORM_PLATE_SZ);
    if (!o1 || !o2) {
        free(o1), free(o2);
        return;
    }
    crm_plate_kind_t k1 = CRM_PLATE_NONE, k2 = CRM_PLATE_NONE;
    crm_norm_code_t c = crm_norm_plate(in, o1, &k1);
    s_code("plate", in, (int) c);
    s_terminated("plate", in, o1, CRM_NORM_PLATE_SZ);
    if (c == CRM_NORM_OK && (crm_norm_plate(o1, o2, &k2) != c || strcmp(o1, o2) || k1 != k2))
        s_die("plate is not idempotent", in, o1, o2);
    crm_norm_plate(in, o2, NULL); /* kind may be NULL */
    free(o1), free(o2);
}

static void s_email(const char *in)
{
    char *o1 = s_buf(CRM_NORM_EMAIL_SZ), *o2 = s_buf(CRM_NORM_EMAIL_SZ);
    char *g1 = s_buf(CRM_NORM_DOMAIN_SZ), *g2 = s_buf(CRM_NORM_DOMAIN_SZ);
    if (o1 && o2 && g1 && g2) {
        crm_norm_code_t c = crm_norm_email(in, o1, g1);
        s_code("email", in, (int) c);
        s_terminated("email", in, o1, CRM_NORM_EMAIL_SZ);
        s_terminated("email.suggest", in, g1, CRM_NORM_DOMAIN_SZ);
        if ((c == CRM_NORM_OK || c == CRM_NORM_SUSPECTED_TYPO) &&
            (crm_norm_email(o1, o2, g2) != c || strcmp(o1, o2) != 0 || strcmp(g1, g2) != 0))
            s_die("email is not idempotent", in, o1, o2);
        crm_norm_email(in, o2, NULL); /* suggest may be NULL */
    }
    free(o1), free(o2), free(g1), free(g2);
}

static bool s_mobile_fixed(crm_norm_code_t c)
{
    return c == CRM_NORM_OK || c == CRM_NORM_PLACEHOLDER || c == CRM_NORM_NOT_IN_PLAN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    s_text(in);
    char probe[CRM_NORM_MOBILE_SZ];
    crm_norm_code_t mc = crm_norm_mobile(in, probe);
    S_FIXED("mobile", in, crm_norm_mobile, CRM_NORM_MOBILE_SZ, s_mobile_fixed(mc));
    s_landline(in);
    /* E.164 calling codes have one to three digits; -1 is unreadable input. */
    int cc = crm_norm_phone_calling_code(in);
    if (cc < -1 || cc > 999)
        s_die("calling code outside -1..999", in, NULL, NULL);
    s_province(in);
    s_city(in);
    char pc[CRM_NORM_POSTCODE_SZ];
    crm_norm_code_t pcc = crm_norm_postcode(in, pc);
    S_FIXED("postcode", in, crm_norm_postcode, CRM_NORM_POSTCODE_SZ, pcc == CRM_NORM_OK);
    int prov = crm_norm_postcode_province(in);
    if (prov != -1 && (prov < 11 || prov > 82))
        s_die("postcode province out of GB/T 2260", in, NULL, NULL);
    s_idcard(in);
    char bd[CRM_NORM_DATE_SZ];
    crm_norm_code_t bc = crm_norm_birthday(in, bd);
    S_FIXED("birthday", in, crm_norm_birthday, CRM_NORM_DATE_SZ, bc == CRM_NORM_OK);
    char vin[CRM_NORM_VIN_SZ];
    crm_norm_code_t vc = crm_norm_vin(in, vin);
    S_FIXED("vin", in, crm_norm_vin, CRM_NORM_VIN_SZ,
            vc == CRM_NORM_OK || vc == CRM_NORM_BAD_CHECK);
    s_plate(in);
    s_email(in);
    (void) crm_norm_code_str((crm_norm_code_t) (size ? data[0] : 0));
    free(in);
    return 0;
}
