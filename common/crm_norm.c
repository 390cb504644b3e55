/*  crm_norm - normalisation and validation of Chinese customer data.
    Rules and constants: shared/reference/cn-data-rules.md. */

#include "crm_norm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ */
/* Codes                                                               */

static const char *const s_code_names[CRM_NORM_CODE_COUNT] = {
    [CRM_NORM_OK] = "ok",
    [CRM_NORM_EMPTY] = "empty",
    [CRM_NORM_TOO_LONG] = "too_long",
    [CRM_NORM_BAD_ENCODING] = "bad_encoding",
    [CRM_NORM_INVALID] = "invalid",
    [CRM_NORM_MASKED] = "masked",
    [CRM_NORM_NOT_IN_PLAN] = "not_in_numbering_plan",
    [CRM_NORM_PLACEHOLDER] = "placeholder",
    [CRM_NORM_MISSING_AREA_CODE] = "missing_area_code",
    [CRM_NORM_BUSINESS_NUMBER] = "business_number",
    [CRM_NORM_BAD_LENGTH] = "bad_length",
    [CRM_NORM_BAD_CHAR] = "bad_char",
    [CRM_NORM_BAD_REGION] = "bad_region",
    [CRM_NORM_BAD_DATE] = "bad_date",
    [CRM_NORM_BAD_CHECK] = "bad_check",
    [CRM_NORM_RESERVED] = "reserved_range",
    [CRM_NORM_UNKNOWN_SENTINEL] = "unknown_sentinel",
    [CRM_NORM_SUSPECTED_TYPO] = "suspected_typo",
    [CRM_NORM_NOT_CN_NUMBER] = "not_cn_number",
    [CRM_NORM_OTHER_CALLING_CODE] = "other_calling_code",
};

const char *crm_norm_code_str(crm_norm_code_t code)
{
    /* The enum may arrive from a cast int (e.g. a decoded message), so
       range-check instead of trusting it. */
    if ((int) code < 0 || (int) code >= CRM_NORM_CODE_COUNT || !s_code_names[code])
        return "unknown_code";
    return s_code_names[code];
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static int s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int s_is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int s_is_alpha(char c)
{
    return s_is_upper(c) || (c >= 'a' && c <= 'z');
}

static char s_to_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char) (c - 'a' + 'A') : c;
}

static char s_to_lower(char c)
{
    return s_is_upper(c) ? (char) (c - 'A' + 'a') : c;
}

static int s_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s_is_digit(s[i]))
            return 0;
    return 1;
}

/* Copy n bytes and terminate; the caller has checked n < size. */
static void s_copy(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int s_two_digits(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static int s_is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Both ID numbers and birthdays must be real calendar dates; the year
   window keeps garbage like 0000 or 9999 out without needing a clock. */
static int s_date_ok(int y, int m, int d)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1800 || y > 2099 || m < 1 || m > 12 || d < 1)
        return 0;
    int max = days[m - 1] + (m == 2 && s_is_leap(y));
    return d <= max;
}

/* YYYY-MM-DD for a date s_date_ok accepted; written digit by digit so
   no compiler has to prove the snprintf bound. */
static void s_format_date(char out[CRM_NORM_DATE_SZ], int y, int m, int d)
{
    const int v[3] = {y, m, d};
    const int width[3] = {4, 2, 2};
    size_t pos = 0;
    for (int f = 0; f < 3; f++) {
        if (f)
            out[pos++] = '-';
        for (int k = width[f] - 1, x = v[f]; k >= 0; k--, x /= 10)
            out[pos + (size_t) k] = (char) ('0' + x % 10);
        pos += (size_t) width[f];
    }
    out[pos] = '\0';
}

/* ------------------------------------------------------------------ */
/* Text normalisation                                                  */

/* Strict UTF-8 check (no overlongs, surrogates or values past U+10FFFF),
   done here so a bad byte is reported as bad_encoding, not as a field
   error further down. */
static int s_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else
            return 0;
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF
            || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* NFKC leaves the ideographic full stop alone, but in an e-mail address
   typed on a Chinese IME "。" means '.', so we map it before decomposing,
   and the forms NFKC turns into it (halfwidth U+FF61, vertical U+FE12)
   with it: mapped after, they would only become '.' the second time. */
static utf8proc_int32_t s_map_char(utf8proc_int32_t cp, void *data)
{
    (void) data;
    if (cp == 0x3002 || cp == 0xFF61 || cp == 0xFE12)
        return '.';
    return cp;
}

static int s_is_space(utf8proc_int32_t cp)
{
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0x200B
        || cp == 0xFEFF || cp == 0x180E)
        return 1;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL
           || cat == UTF8PROC_CATEGORY_ZP;
}

/* The worker behind crm_norm_text, returning a precise code so each field
   validator can report too_long vs bad_encoding. */
static crm_norm_code_t s_text(const char *in, char *out, size_t outsz)
{
    if (!out || outsz == 0)
        return CRM_NORM_TOO_LONG;
    out[0] = '\0';
    if (!in)
        return CRM_NORM_EMPTY;
    size_t len = strnlen(in, CRM_NORM_TEXT_MAX + 1);
    if (len > CRM_NORM_TEXT_MAX)
        return CRM_NORM_TOO_LONG;
    if (!s_utf8_valid((const unsigned char *) in, len))
        return CRM_NORM_BAD_ENCODING;
    if (len == 0)
        return CRM_NORM_OK;

    /* Text of ASCII and CJK Unified Ideographs (U+4E00..U+9FFF) only, most
       of what leads carry, is its own NFKC form: trimmed, it is copied
       without the round trip through utf8proc. */
    const unsigned char *b = (const unsigned char *) in;
    size_t i = 0;
    while (i < len) {
        if (b[i] < 0x80) {
            i++;
            continue;
        }
        if (i + 2 < len && (b[i] & 0xF0) == 0xE0) {
            unsigned cp = ((b[i] & 0x0Fu) << 12) | ((b[i + 1] & 0x3Fu) << 6) | (b[i + 2] & 0x3Fu);
            if (cp >= 0x4E00 && cp <= 0x9FFF) {
                i += 3;
                continue;
            }
        }
        break;
    }
    if (i == len) {
        size_t start = 0, end = len;
        while (start < end && (b[start] == ' ' || (b[start] >= 0x09 && b[start] <= 0x0D)))
            start++;
        while (end > start && (b[end - 1] == ' ' || (b[end - 1] >= 0x09 && b[end - 1] <= 0x0D)))
            end--;
        if (end - start >= outsz)
            return CRM_NORM_TOO_LONG;
        s_copy(out, in + start, end - start);
        return CRM_NORM_OK;
    }

    const utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    /* Field values are short: decompose on the stack, fall back to the heap
       only for long free text. The +1 leaves room for the NUL that
       utf8proc_reencode writes. */
    utf8proc_int32_t stackbuf[257];
    utf8proc_int32_t *buf = stackbuf;
    utf8proc_ssize_t cap = 256;
    utf8proc_ssize_t n = utf8proc_decompose_custom((const utf8proc_uint8_t *) in,
                                                   (utf8proc_ssize_t) len, buf, cap, opts,
                                                   s_map_char, NULL);
    if (n < 0)
        return CRM_NORM_BAD_ENCODING;
    if (n > cap) {
        cap = n;
        buf = malloc(((size_t) cap + 1) * sizeof *buf);
        if (!buf)
            return CRM_NORM_TOO_LONG;
        n = utf8proc_decompose_custom((const utf8proc_uint8_t *) in, (utf8proc_ssize_t) len,
                                      buf, cap, opts, s_map_char, NULL);
        if (n < 0 || n > cap) {
            free(buf);
            return CRM_NORM_BAD_ENCODING;
        }
    }
    crm_norm_code_t rc = CRM_NORM_OK;
    utf8proc_ssize_t blen = utf8proc_reencode(buf, n, opts);
    if (blen < 0)
        rc = CRM_NORM_BAD_ENCODING;
    else {
        const utf8proc_uint8_t *u = (const utf8proc_uint8_t *) buf;
        utf8proc_ssize_t start = blen, end = 0, pos = 0;
        while (pos < blen) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t step = utf8proc_iterate(u + pos, blen - pos, &cp);
            if (step <= 0) {
                rc = CRM_NORM_BAD_ENCODING;
                break;
            }
            if (!s_is_space(cp)) {
                if (start == blen)
                    start = pos;
                end = pos + step;
            }
            pos += step;
        }
        if (rc == CRM_NORM_OK && start < end) {
            size_t outlen = (size_t) (end - start);
            if (outlen >= outsz)
                rc = CRM_NORM_TOO_LONG;
            else
                s_copy(out, (const char *) u + start, outlen);
        }
    }
    if (buf != stackbuf)
        free(buf);
    return rc;
}

int crm_norm_text(const char *in, char *out, size_t outsz)
{
    if (!out || outsz == 0)
        return -1;
    out[0] = '\0';
    if (!in)
        return -1;
    return s_text(in, out, outsz) == CRM_NORM_OK ? 0 : -1;
}

/* Normalise a field into buf; OK only when something is left. */
static crm_norm_code_t s_field(const char *in, char *buf, size_t bufsz)
{
    crm_norm_code_t rc = s_text(in, buf, bufsz);
    if (rc == CRM_NORM_OK && buf[0] == '\0')
        rc = CRM_NORM_EMPTY;
    if (rc != CRM_NORM_OK)
        buf[0] = '\0';
    return rc;
}

/* ------------------------------------------------------------------ */
/* Calling codes                                                       */

/* Length of the E.164 calling code at the start of d (n digits), 0 when d
   starts with none. Calling codes are prefix-free: 1 and 7 are alone in
   their zone, the two-digit ones are listed, every other is three digits
   long (852, 886, 420, ...). */
static size_t s_calling_code_len(const char *d, size_t n)
{
    static const char two[] = "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 "
                              "54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 "
                              "95 98";
    if (n < 1 || !s_is_digit(d[0]) || d[0] == '0')
        return 0;
    if (d[0] == '1' || d[0] == '7')
        return 1;
    if (n < 2 || !s_is_digit(d[1]))
        return 0;
    for (size_t i = 0; i + 1 < sizeof two; i += 3)
        if (two[i] == d[0] && two[i + 1] == d[1])
            return 2;
    return n >= 3 && s_is_digit(d[2]) ? 3 : 0;
}

/* The calling code d (n digits, after a '+' when plus) is written with, as
   for crm_norm_phone_calling_code; *skip is how many digits it takes,
   including an international prefix 00. No Chinese number starts with 00
   (no area code starts with 0), so 00 before a calling code can only be
   the international prefix. -1 when '+' is followed by no calling code or
   by nothing else. */
static int s_calling_code(int plus, const char *d, size_t n, size_t *skip)
{
    *skip = 0;
    size_t at = 0;
    if (!plus) {
        if (n < 3 || d[0] != '0' || d[1] != '0')
            return 0;
        at = 2;
    }
    size_t len = s_calling_code_len(d + at, n - at);
    if (len == 0 || at + len >= n)
        return plus ? -1 : 0;
    int cc = 0;
    for (size_t i = 0; i < len; i++)
        cc = cc * 10 + (d[at + i] - '0');
    *skip = at + len;
    return cc;
}

int crm_norm_phone_calling_code(const char *in)
{
    if (!in)
        return -1;
    char buf[128];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc == CRM_NORM_EMPTY)
        return 0;
    if (rc != CRM_NORM_OK)
        return -1;
    /* Four digits are enough to read any calling code after 00. */
    char d[8];
    size_t n = 0;
    int plus = 0;
    for (const char *p = buf; *p && n < sizeof d; p++) {
        if (s_is_digit(*p))
            d[n++] = *p;
        else if (*p == '+' && n == 0 && !plus)
            plus = 1;
        else if (!(*p == ' ' || *p == '-' || *p == '.' || *p == '(' || *p == ')'))
            break;
    }
    size_t skip;
    int cc = s_calling_code(plus, d, n, &skip);
    return cc < 0 ? 0 : cc;
}

/* ------------------------------------------------------------------ */
/* Mobile                                                              */

/* libphonenumber 8.12.57 CN mobile pattern:
   1740[0-5]\d{6}|1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}
   d is 11 digits starting with 1. */
static int s_mobile_in_plan(const char *d)
{
    char a = d[1], b = d[2];
    switch (a) {
    case '3':
    case '8':
        return 1;
    case '4':
        return b == '5' || b == '7';
    case '5':
    case '9':
        return b != '4';
    case '6':
        return b == '2' || (b >= '5' && b <= '7');
    case '7':
        if (b == '4')
            return d[3] == '0' && d[4] >= '0' && d[4] <= '5';
        return b != '9';
    default:
        return 0;
    }
}

/* libphonenumber accepts 13800000000, so dummy numbers typed to get past a
   mandatory field need their own test. An ascending subscriber part alone
   (13812345678) is an assignable number and is not flagged. */
static int s_mobile_placeholder(const char *d)
{
    int same = 1;
    for (int i = 4; i < 11; i++)
        if (d[i] != d[3])
            same = 0;
    if (same)
        return 1;
    int up = 1, down = 1;
    for (int i = 2; i < 11; i++) {
        int prev = d[i - 1] - '0', cur = d[i] - '0';
        if (cur != (prev + 1) % 10)
            up = 0;
        if (cur != (prev + 9) % 10)
            down = 0;
    }
    return up || down;
}

crm_norm_code_t crm_norm_mobile(const char *in, char out[CRM_NORM_MOBILE_SZ])
{
    if (!out)
        return CRM_NORM_INVALID;
    out[0] = '\0';
    char buf[128];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc;

    char d[32];
    size_t n = 0;
    int plus = 0, masked = 0;
    for (const char *p = buf; *p; p++) {
        char c = *p;
        if (s_is_digit(c) || c == '*' || c == 'x' || c == 'X') {
            if (n + 1 >= sizeof d)
                return CRM_NORM_INVALID;
            if (!s_is_digit(c)) {
                c = '*';
                masked = 1;
            }
            d[n++] = c;
        } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
            continue;
        else if (c == '+' && n == 0 && !plus)
            plus = 1;
        else
            return CRM_NORM_INVALID;
    }
    d[n] = '\0';

    size_t skip;
    int cc = s_calling_code(plus, d, n, &skip);
    if (cc < 0)
        return CRM_NORM_INVALID;
    /* +1 393 999 3922 is a number of another plan, never a Chinese one. */
    if (cc != 0 && cc != 86)
        return CRM_NORM_OTHER_CALLING_CODE;
    const char *p = d + skip;
    n -= skip;
    /* One calling code only: +86 86 138... is no number. */
    if (cc == 0 && n == 13 && strncmp(p, "86", 2) == 0) {
        p += 2;
        n -= 2;
    }
    /* Mobiles start 13-19; a 0 before 10, 11 or 12 is a landline's trunk
       (010 is Beijing), and dropping it would make up a mobile. */
    if (n == 12 && p[0] == '0' && p[1] == '1' && p[2] >= '3' && p[2] <= '9') {
        p++;
        n--;
    }
    if (n != 11 || p[0] != '1')
        return CRM_NORM_INVALID;
    s_copy(out, p, n);
    if (masked)
        return CRM_NORM_MASKED;
    if (s_mobile_placeholder(out))
        return CRM_NORM_PLACEHOLDER;
    if (!s_mobile_in_plan(out))
        return CRM_NORM_NOT_IN_PLAN;
    return CRM_NORM_OK;
}

/* ------------------------------------------------------------------ */
/* Landline                                                            */

/* Parse n digits (area + local, no separators, calling code removed) into
   out. ext may be NULL. intl: the number was written after +86 or 0086,
   where the trunk 0 is left out (+86 10 6234 5678). */
static crm_norm_code_t s_landline_parse(const char *d, size_t n, const char *ext, int intl,
                                        crm_landline_t *out)
{
    memset(out, 0, sizeof *out);
    const char *extsep = ext ? "-" : "";
    if (!ext)
        ext = "";
    if (n == 0)
        return CRM_NORM_INVALID;
    const char *a = d;
    size_t m = n;
    if (d[0] != '0') {
        int business = n >= 3 && (strncmp(d, "400", 3) == 0 || strncmp(d, "800", 3) == 0);
        if (business && n == 10) {
            s_copy(out->local, d, n);
            s_copy(out->ext, ext, strlen(ext));
            snprintf(out->formatted, sizeof out->formatted, "%.3s-%.3s-%.4s%s%s", d, d + 3,
                     d + 6, extsep, ext);
            return CRM_NORM_BUSINESS_NUMBER;
        }
        if (n >= 7 && n <= 8) {
            s_copy(out->local, d, n);
            s_copy(out->ext, ext, strlen(ext));
            snprintf(out->formatted, sizeof out->formatted, "%s%s%s", out->local, extsep,
                     ext);
            return CRM_NORM_MISSING_AREA_CODE;
        }
        if (!intl) {
            /* Neither +86 nor a trunk 0: 393-999-3922 may be Puyang's 0393
               or a US number, and reading it as Chinese would add a digit.
               Too short for a phone, longer than E.164 allows, a mobile's
               shape (crm_norm_mobile's business) or a 400/800 number of the
               wrong length: plain invalid. */
            if (n < 9 || n > 15 || (n == 11 && d[0] == '1') || business)
                return CRM_NORM_INVALID;
            return CRM_NORM_NOT_CN_NUMBER;
        }
    } else {
        a = d + 1;
        m = n - 1;
    }
    if (n > 12)
        return CRM_NORM_INVALID;
    if (m < 2)
        return CRM_NORM_INVALID;
    size_t alen = 0;
    if (a[0] == '1' && a[1] == '0')
        alen = 2;
    else if (a[0] == '2' && a[1] != '6')
        alen = 2;
    else if (a[0] >= '3' && a[0] <= '9')
        alen = 3;
    if (alen == 0 || m < alen)
        return CRM_NORM_INVALID;
    size_t llen = m - alen;
    /* Two-digit areas are the big cities, all on 8-digit local numbers. */
    if (alen == 2 ? llen != 8 : (llen < 7 || llen > 8))
        return CRM_NORM_INVALID;
    if (a[alen] == '0')
        return CRM_NORM_INVALID;
    s_copy(out->area, a, alen);
    s_copy(out->local, a + alen, llen);
    s_copy(out->ext, ext, strlen(ext));
    snprintf(out->formatted, sizeof out->formatted, "0%s-%s%s%s", out->area, out->local,
             extsep, ext);
    return CRM_NORM_OK;
}

crm_norm_code_t crm_norm_landline(const char *in, crm_landline_t *out)
{
    if (!out)
        return CRM_NORM_INVALID;
    memset(out, 0, sizeof *out);
    char buf[128];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc;
    for (char *q = buf; *q; q++)
        *q = s_to_lower(*q);

    /* An explicit extension marker; "ext" is listed before "x" but the
       earliest match wins, so "ext" is never cut at its 'x'. */
    static const char *const markers[] = {"转", "分机", "#", "ext", "x"};
    char *mark = NULL;
    size_t mlen = 0;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        char *hit = strstr(buf, markers[i]);
        if (hit && (!mark || hit < mark)) {
            mark = hit;
            mlen = strlen(markers[i]);
        }
    }
    const char *ext = NULL;
    if (mark) {
        *mark = '\0';
        ext = mark + mlen;
        while (*ext == '.' || *ext == ':' || *ext == ' ')
            ext++;
        size_t el = strlen(ext);
        if (el < 1 || el > 6 || !s_all_digits(ext, el))
            return CRM_NORM_INVALID;
    }

    /* Collect digits, remembering where the last group starts and whether a
       '-' separated it: "010-12345678-8001" carries its extension that way.
       A '+' may come before the first digit only. */
    char d[32];
    size_t nd = 0, ngroups = 0, last_start = 0;
    int in_group = 0, sep_dash = 0, last_dash = 0, plus = 0;
    for (const char *p = buf; *p; p++) {
        char c = *p;
        if (c == '+' && nd == 0 && !plus) {
            plus = 1;
        } else if (s_is_digit(c)) {
            if (!in_group) {
                ngroups++;
                last_start = nd;
                last_dash = sep_dash;
                sep_dash = 0;
                in_group = 1;
            }
            if (nd + 1 >= sizeof d)
                return CRM_NORM_INVALID;
            d[nd++] = c;
        } else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' || c == '/') {
            in_group = 0;
            if (c == '-')
                sep_dash = 1;
        } else
            return CRM_NORM_INVALID;
    }
    d[nd] = '\0';
    if (nd == 0)
        return CRM_NORM_INVALID;

    size_t skip;
    int cc = s_calling_code(plus, d, nd, &skip);
    if (cc < 0)
        return CRM_NORM_INVALID;
    /* +44 20 7946 0958 is a number of another plan, never a Chinese one. */
    if (cc != 0 && cc != 86)
        return CRM_NORM_OTHER_CALLING_CODE;
    const char *num = d + skip;
    size_t nn = nd - skip;
    int intl = cc == 86;

    crm_landline_t all;
    crm_norm_code_t rc_all = s_landline_parse(num, nn, ext, intl, &all);
    size_t tail = nd - last_start;
    if (!ext && ngroups >= 2 && last_dash && last_start > skip && tail >= 1 && tail <= 6) {
        /* If the digits before the last "-group" already make a whole
           number, that group is an extension; otherwise (010-1234-5678) it
           is part of the local number. */
        char e[7];
        s_copy(e, d + last_start, tail);
        crm_landline_t noext;
        crm_norm_code_t rc_no = s_landline_parse(num, last_start - skip, e, intl, &noext);
        if (rc_no == CRM_NORM_OK
            || (rc_all != CRM_NORM_OK && rc_all != CRM_NORM_BUSINESS_NUMBER
                && (rc_no == CRM_NORM_MISSING_AREA_CODE || rc_no == CRM_NORM_BUSINESS_NUMBER))) {
            *out = noext;
            return rc_no;
        }
    }
    /* Only a number read as Chinese leaves anything in out. */
    if (rc_all == CRM_NORM_OK || rc_all == CRM_NORM_MISSING_AREA_CODE
        || rc_all == CRM_NORM_BUSINESS_NUMBER)
        *out = all;
    return rc_all;
}

/* ------------------------------------------------------------------ */
/* Province and city                                                   */

typedef struct {
    int code;
    const char *full;
    const char *shortname;
    const char *alias[3]; /* abbreviations and common short forms */
} s_province_t;

static const s_province_t s_provinces[] = {
    {11, "北京市", "北京", {"京"}},
    {12, "天津市", "天津", {"津"}},
    {13, "河北省", "河北", {"冀"}},
    {14, "山西省", "山西", {"晋"}},
    {15, "内蒙古自治区", "内蒙古", {"蒙", "内蒙"}},
    {21, "辽宁省", "辽宁", {"辽"}},
    {22, "吉林省", "吉林", {"吉"}},
    {23, "黑龙江省", "黑龙江", {"黑"}},
    {31, "上海市", "上海", {"沪"}},
    {32, "江苏省", "江苏", {"苏"}},
    {33, "浙江省", "浙江", {"浙"}},
    {34, "安徽省", "安徽", {"皖"}},
    {35, "福建省", "福建", {"闽"}},
    {36, "江西省", "江西", {"赣"}},
    {37, "山东省", "山东", {"鲁"}},
    {41, "河南省", "河南", {"豫"}},
    {42, "湖北省", "湖北", {"鄂"}},
    {43, "湖南省", "湖南", {"湘"}},
    {44, "广东省", "广东", {"粤"}},
    {45, "广西壮族自治区", "广西", {"桂"}},
    {46, "海南省", "海南", {"琼"}},
    {50, "重庆市", "重庆", {"渝"}},
    {51, "四川省", "四川", {"川", "蜀"}},
    {52, "贵州省", "贵州", {"贵", "黔"}},
    {53, "云南省", "云南", {"云", "滇"}},
    {54, "西藏自治区", "西藏", {"藏"}},
    {61, "陕西省", "陕西", {"陕", "秦"}},
    {62, "甘肃省", "甘肃", {"甘", "陇"}},
    {63, "青海省", "青海", {"青"}},
    {64, "宁夏回族自治区", "宁夏", {"宁"}},
    {65, "新疆维吾尔自治区", "新疆", {"新"}},
    {71, "台湾省", "台湾", {"台"}},
    {81, "香港特别行政区", "香港", {"港"}},
    {82, "澳门特别行政区", "澳门", {"澳"}},
};
#define S_PROVINCE_COUNT (sizeof s_provinces / sizeof s_provinces[0])

static int s_ends_with(const char *s, size_t n, const char *suffix, size_t *rest)
{
    size_t k = strlen(suffix);
    if (n <= k || memcmp(s + n - k, suffix, k) != 0)
        return 0;
    *rest = n - k;
    return 1;
}

static const s_province_t *s_province_find(const char *s, size_t n)
{
    for (size_t i = 0; i < S_PROVINCE_COUNT; i++) {
        const s_province_t *pr = &s_provinces[i];
        if ((strlen(pr->full) == n && memcmp(pr->full, s, n) == 0)
            || (strlen(pr->shortname) == n && memcmp(pr->shortname, s, n) == 0))
            return pr;
        for (size_t k = 0; k < 3 && pr->alias[k]; k++)
            if (strlen(pr->alias[k]) == n && memcmp(pr->alias[k], s, n) == 0)
                return pr;
    }
    return NULL;
}

int crm_norm_province(const char *in, const char **canonical, int *code)
{
    if (canonical)
        *canonical = NULL;
    if (code)
        *code = 0;
    char buf[128];
    if (s_field(in, buf, sizeof buf) != CRM_NORM_OK)
        return -1;
    size_t n = strlen(buf);
    const s_province_t *pr = s_province_find(buf, n);
    size_t rest = 0;
    if (!pr) {
        /* Longest suffix first, as the reference says. */
        static const char *const suffixes[] = {"特别行政区", "自治区", "省", "市"};
        for (size_t i = 0; i < 4 && !pr; i++) {
            if (!s_ends_with(buf, n, suffixes[i], &rest))
                continue;
            pr = s_province_find(buf, rest);
            if (!pr && i == 1) {
                /* "…族自治区": 广西壮族, 宁夏回族, 新疆维吾尔族 (a common
                   misspelling) - an autonomous region followed by its
                   people. */
                for (size_t k = 0; k < S_PROVINCE_COUNT && !pr; k++) {
                    const s_province_t *ar = &s_provinces[k];
                    size_t sl = strlen(ar->shortname), tail;
                    if (!strstr(ar->full, "自治区") || rest <= sl
                        || memcmp(buf, ar->shortname, sl) != 0)
                        continue;
                    const char *people = buf + sl;
                    size_t pl = rest - sl;
                    if (s_ends_with(people, pl, "族", &tail))
                        pr = ar;
                }
            }
        }
    }
    if (!pr)
        return -1;
    if (canonical)
        *canonical = pr->full;
    if (code)
        *code = pr->code;
    return 0;
}

int crm_norm_city(const char *in, char *out, size_t outsz)
{
    if (!out || outsz == 0)
        return -1;
    out[0] = '\0';
    char buf[256];
    if (s_field(in, buf, sizeof buf) != CRM_NORM_OK)
        return -1;
    size_t n = strlen(buf), rest;
    /* Count code points: one-character names plus 市 (沙市) are real names,
       so keep the suffix unless at least two characters remain. */
    if (s_ends_with(buf, n, "市", &rest)) {
        size_t chars = 0;
        for (size_t i = 0; i < rest; i++)
            if (((unsigned char) buf[i] & 0xC0) != 0x80)
                chars++;
        if (chars >= 2)
            n = rest;
    }
    if (n >= outsz)
        return -1;
    s_copy(out, buf, n);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Postcode                                                            */

crm_norm_code_t crm_norm_postcode(const char *in, char out[CRM_NORM_POSTCODE_SZ])
{
    if (!out)
        return CRM_NORM_INVALID;
    out[0] = '\0';
    char buf[64];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc == CRM_NORM_TOO_LONG ? CRM_NORM_BAD_LENGTH : rc;
    /* Count characters, not bytes: a six-character postcode holding a
       Chinese character is a wrong character, not a wrong length. */
    size_t n = strlen(buf), chars = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char) buf[i] & 0xC0) != 0x80)
            chars++;
    if (chars != 6)
        return CRM_NORM_BAD_LENGTH;
    if (n != 6 || !s_all_digits(buf, n))
        return CRM_NORM_BAD_CHAR;
    if ((buf[0] == '0' && buf[1] == '0') || strncmp(buf, "999", 3) == 0)
        return CRM_NORM_RESERVED;
    s_copy(out, buf, n);
    return CRM_NORM_OK;
}

int crm_norm_postcode_province(const char *postcode)
{
    static const struct {
        int lo, hi, code;
    } map[] = {
        {1, 2, 15},   {3, 4, 14},   {5, 7, 13},   {10, 10, 11}, {11, 12, 21}, {13, 13, 22},
        {15, 16, 23}, {20, 20, 31}, {21, 22, 32}, {23, 24, 34}, {25, 27, 37}, {30, 30, 12},
        {31, 32, 33}, {33, 34, 36}, {35, 36, 35}, {40, 40, 50}, {41, 42, 43}, {43, 44, 42},
        {45, 47, 41}, {51, 52, 44}, {53, 54, 45}, {55, 56, 52}, {57, 57, 46}, {61, 64, 51},
        {65, 67, 53}, {71, 72, 61}, {73, 74, 62}, {75, 75, 64}, {81, 81, 63}, {83, 84, 65},
        {85, 86, 54},
    };
    if (!postcode || strnlen(postcode, 7) != 6 || !s_all_digits(postcode, 6))
        return -1;
    int prefix = s_two_digits(postcode);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (prefix >= map[i].lo && prefix <= map[i].hi)
            return map[i].code;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Resident ID number (GB 11643-1999)                                  */

static int s_is_province_code(int c)
{
    if (c == 83) /* residence permit for Taiwan residents */
        return 1;
    for (size_t i = 0; i < S_PROVINCE_COUNT; i++)
        if (s_provinces[i].code == c)
            return 1;
    return 0;
}

/* ISO 7064 MOD 11-2 over the first 17 digits. */
static char s_id_check(const char *id17)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char map[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (id17[i] - '0') * w[i];
    return map[sum % 11];
}

crm_norm_code_t crm_norm_idcard(const char *in, crm_idcard_t *out)
{
    if (!out)
        return CRM_NORM_INVALID;
    memset(out, 0, sizeof *out);
    char buf[64];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc == CRM_NORM_TOO_LONG ? CRM_NORM_BAD_LENGTH : rc;

    /* People type ID numbers in groups; spaces carry no meaning. */
    char s[24];
    size_t n = 0;
    for (const char *p = buf; *p; p++) {
        if (*p == ' ')
            continue;
        if (n + 1 >= sizeof s)
            return CRM_NORM_BAD_LENGTH;
        s[n++] = s_to_upper(*p);
    }
    s[n] = '\0';
    if (n != 15 && n != 18)
        return CRM_NORM_BAD_LENGTH;
    if (n == 15) {
        if (!s_all_digits(s, 15))
            return CRM_NORM_BAD_CHAR;
    } else if (!s_all_digits(s, 17) || !(s_is_digit(s[17]) || s[17] == 'X'))
        return CRM_NORM_BAD_CHAR;

    char id[19];
    if (n == 15) {
        memcpy(id, s, 6);
        memcpy(id + 6, "19", 2);
        memcpy(id + 8, s + 6, 9);
        id[17] = s_id_check(id);
        id[18] = '\0';
    } else
        s_copy(id, s, 18);

    if (!s_is_province_code(s_two_digits(id)))
        return CRM_NORM_BAD_REGION;
    int y = s_two_digits(id + 6) * 100 + s_two_digits(id + 8);
    int m = s_two_digits(id + 10), d = s_two_digits(id + 12);
    if (!s_date_ok(y, m, d))
        return CRM_NORM_BAD_DATE;

    memcpy(out->id, id, sizeof out->id);
    s_format_date(out->birth, y, m, d);
    out->sex = ((id[16] - '0') % 2) ? 'M' : 'F';
    out->from_15 = n == 15;
    if (id[17] != s_id_check(id))
        return CRM_NORM_BAD_CHECK;
    return CRM_NORM_OK;
}

/* ------------------------------------------------------------------ */
/* Birthday                                                            */

/* Read 1..max digits at *p, advancing it; -1 when there are none. */
static int s_read_num(const char **p, int max)
{
    int v = 0, k = 0;
    while (k < max && s_is_digit(**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        k++;
    }
    return k ? v : -1;
}

crm_norm_code_t crm_norm_birthday(const char *in, char out[CRM_NORM_DATE_SZ])
{
    if (!out)
        return CRM_NORM_INVALID;
    out[0] = '\0';
    char buf[64];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc == CRM_NORM_TOO_LONG ? CRM_NORM_INVALID : rc;

    int y, m, d;
    size_t n = strlen(buf);
    if (n == 8 && s_all_digits(buf, 8)) {
        y = s_two_digits(buf) * 100 + s_two_digits(buf + 2);
        m = s_two_digits(buf + 4);
        d = s_two_digits(buf + 6);
    } else {
        const char *p = buf;
        const char *start = p;
        y = s_read_num(&p, 4);
        if (y < 0 || p - start != 4)
            return CRM_NORM_INVALID;
        char sep = *p;
        if (sep != '-' && sep != '/' && sep != '.')
            return CRM_NORM_INVALID;
        p++;
        m = s_read_num(&p, 2);
        if (m < 0 || *p != sep)
            return CRM_NORM_INVALID;
        p++;
        d = s_read_num(&p, 2);
        if (d < 0 || *p != '\0')
            return CRM_NORM_INVALID;
    }
    if (!s_date_ok(y, m, d))
        return CRM_NORM_BAD_DATE;
    /* Dealer systems write 1900-01-01 when the birthday is unknown; it must
       never reach greetings or age calculations. */
    if (y == 1900 && m == 1 && d == 1)
        return CRM_NORM_UNKNOWN_SENTINEL;
    s_format_date(out, y, m, d);
    return CRM_NORM_OK;
}

/* ------------------------------------------------------------------ */
/* VIN                                                                 */

/* Transliteration value of a VIN character (GB 16735-2019 table A.2);
   -1 for characters a VIN may not contain (I, O, Q and non-alphanumerics). */
static int s_vin_value(char c)
{
    if (s_is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'H')
        return c - 'A' + 1;
    if (c >= 'J' && c <= 'N')
        return c - 'J' + 1;
    if (c == 'P')
        return 7;
    if (c == 'R')
        return 9;
    if (c >= 'S' && c <= 'Z')
        return c - 'S' + 2;
    return -1;
}

crm_norm_code_t crm_norm_vin(const char *in, char out[CRM_NORM_VIN_SZ])
{
    if (!out)
        return CRM_NORM_INVALID;
    out[0] = '\0';
    char buf[128];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc == CRM_NORM_TOO_LONG ? CRM_NORM_BAD_LENGTH : rc;

    char v[CRM_NORM_VIN_SZ];
    size_t n = 0;
    int bad_char = 0;
    for (const unsigned char *p = (const unsigned char *) buf; *p; p++) {
        if (*p == ' ' || *p == '-' || *p == '.')
            continue;
        if ((*p & 0xC0) == 0x80)
            continue; /* count a multibyte character once */
        if (n == 17)
            return CRM_NORM_BAD_LENGTH;
        char c = s_to_upper((char) *p);
        if (*p >= 0x80 || s_vin_value(c) < 0) {
            bad_char = 1;
            c = '?';
        }
        v[n++] = c;
    }
    if (n != 17)
        return CRM_NORM_BAD_LENGTH;
    if (bad_char)
        return CRM_NORM_BAD_CHAR;
    v[17] = '\0';

    static const int w[17] = {8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += s_vin_value(v[i]) * w[i];
    int r = sum % 11;
    char check = r == 10 ? 'X' : (char) ('0' + r);
    memcpy(out, v, sizeof v);
    return v[8] == check ? CRM_NORM_OK : CRM_NORM_BAD_CHECK;
}

/* ------------------------------------------------------------------ */
/* Plate                                                               */

/* [A-HJ-NP-Z]: I and O are never used on plates. */
static int s_plate_letter(char c)
{
    return s_is_upper(c) && c != 'I' && c != 'O';
}

static int s_plate_alnum(char c)
{
    return s_plate_letter(c) || s_is_digit(c);
}

static int s_plate_energy(char c)
{
    return c != '\0' && strchr("DABCEFGHJK", c) != NULL;
}

/* Is the 3-byte UTF-8 sequence at s one of the characters in set (a string
   of 3-byte characters)? */
static int s_in_cjk_set(const char *s, size_t n, const char *set)
{
    if (n < 3)
        return 0;
    for (const char *p = set; *p; p += 3)
        if (memcmp(p, s, 3) == 0)
            return 1;
    return 0;
}

crm_norm_code_t crm_norm_plate(const char *in, char out[CRM_NORM_PLATE_SZ],
                               crm_plate_kind_t *kind)
{
    if (kind)
        *kind = CRM_PLATE_NONE;
    if (!out)
        return CRM_NORM_INVALID;
    out[0] = '\0';
    char buf[128];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc == CRM_NORM_TOO_LONG ? CRM_NORM_INVALID : rc;

    char s[CRM_NORM_PLATE_SZ];
    size_t n = 0;
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *) buf;
    utf8proc_ssize_t len = (utf8proc_ssize_t) strlen(buf), pos = 0;
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(u + pos, len - pos, &cp);
        if (step <= 0)
            return CRM_NORM_BAD_ENCODING;
        /* Separators people type between the region and the serial. */
        if (!(cp == ' ' || cp == '-' || cp == 0xB7 || cp == 0x2022 || cp == 0x30FB
              || cp == 0x2027)) {
            if (n + (size_t) step >= sizeof s)
                return CRM_NORM_INVALID;
            memcpy(s + n, u + pos, (size_t) step);
            if (step == 1)
                s[n] = s_to_upper(s[n]);
            n += (size_t) step;
        }
        pos += step;
    }
    s[n] = '\0';
    if (n == 0)
        return CRM_NORM_EMPTY;

    static const char provinces[] = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
    if (!s_in_cjk_set(s, n, provinces))
        return CRM_NORM_INVALID;
    const char *r = s + 3;
    size_t rl = n - 3;
    crm_plate_kind_t k = CRM_PLATE_NONE;
    if (rl >= 1 && s_plate_letter(r[0])) {
        if (rl == 6 && s_plate_alnum(r[1]) && s_plate_alnum(r[2]) && s_plate_alnum(r[3])
            && s_plate_alnum(r[4]) && s_plate_alnum(r[5]))
            k = CRM_PLATE_ORDINARY;
        else if (rl == 8 && s_plate_alnum(r[1]) && s_plate_alnum(r[2])
                 && s_plate_alnum(r[3]) && s_plate_alnum(r[4])
                 && s_in_cjk_set(r + 5, 3, "挂学警港澳"))
            k = CRM_PLATE_ORDINARY;
        else if (rl == 7 && s_plate_energy(r[1]) && s_plate_alnum(r[2])
                 && s_all_digits(r + 3, 4))
            k = CRM_PLATE_NEW_ENERGY;
        else if (rl == 7 && s_all_digits(r + 1, 5) && s_plate_energy(r[6]))
            k = CRM_PLATE_NEW_ENERGY;
    }
    if (k == CRM_PLATE_NONE)
        return CRM_NORM_INVALID;
    s_copy(out, s, n);
    if (kind)
        *kind = k;
    return CRM_NORM_OK;
}

/* ------------------------------------------------------------------ */
/* E-mail                                                              */

/* Typo targets (mritd/chinaid email_suffix.go plus the big webmail). */
static const char *const s_providers[] = {
    "qq.com",   "foxmail.com", "163.com",  "126.com",    "yeah.net",
    "sina.com", "sina.cn",     "sohu.com", "139.com",    "189.cn",
    "aliyun.com", "gmail.com", "hotmail.com", "outlook.com",
};
#define S_PROVIDER_COUNT (sizeof s_providers / sizeof s_providers[0])

/* Real mail domains that the rules below would otherwise flag: 163.net is
   a "known provider, other TLD", mail.com and email.com are one edit from
   gmail.com. Addresses like vip.qq.com or sina.com.cn are far enough from
   every target not to need listing. */
static const char *const s_known_other[] = {"163.net", "mail.com", "email.com"};

/* Optimal-string-alignment distance (Levenshtein plus adjacent swaps, so
   gmial.com is one edit from gmail.com). Strings longer than 31 bytes are
   "far"; every provider name is much shorter. */
static int s_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31)
        return 99;
    int dp[32][32];
    for (size_t i = 0; i <= la; i++)
        dp[i][0] = (int) i;
    for (size_t j = 0; j <= lb; j++)
        dp[0][j] = (int) j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = dp[i - 1][j] + 1;
            if (dp[i][j - 1] + 1 < best)
                best = dp[i][j - 1] + 1;
            if (dp[i - 1][j - 1] + cost < best)
                best = dp[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && dp[i - 2][j - 2] + 1 < best)
                best = dp[i - 2][j - 2] + 1;
            dp[i][j] = best;
        }
    return dp[la][lb];
}

/* Suggest a provider domain for a domain that is probably mistyped, or
   return NULL. */
static const char *s_email_typo(const char *domain)
{
    for (size_t i = 0; i < S_PROVIDER_COUNT; i++)
        if (strcmp(domain, s_providers[i]) == 0)
            return NULL;
    for (size_t i = 0; i < sizeof s_known_other / sizeof s_known_other[0]; i++)
        if (strcmp(domain, s_known_other[i]) == 0)
            return NULL;

    const char *best = NULL;
    int best_dist = 99;
    /* qq.cm and 126.cn: .cm and .cn are real TLDs, so edit distance alone
       would either miss them or need a threshold that flags everything. */
    const char *dot = strchr(domain, '.');
    if (dot && !strchr(dot + 1, '.')) {
        size_t nl = (size_t) (dot - domain);
        for (size_t i = 0; i < S_PROVIDER_COUNT; i++) {
            const char *pd = s_providers[i];
            const char *pdot = strchr(pd, '.');
            if ((size_t) (pdot - pd) != nl || memcmp(pd, domain, nl) != 0)
                continue;
            int dist = s_edit_distance(domain, pd);
            if (dist < best_dist) {
                best = pd;
                best_dist = dist;
            }
        }
        if (best)
            return best;
    }
    for (size_t i = 0; i < S_PROVIDER_COUNT; i++) {
        const char *pd = s_providers[i];
        /* Short names like qq or 163 are one or two edits from many real
           domains, so they only match at distance 1. */
        int limit = (strchr(pd, '.') - pd) <= 3 ? 1 : 2;
        int dist = s_edit_distance(domain, pd);
        if (dist <= limit && dist < best_dist) {
            best = pd;
            best_dist = dist;
        }
    }
    return best;
}

static int s_email_local_char(char c)
{
    return s_is_alpha(c) || s_is_digit(c) || (c != '\0' && strchr(".!#$%&'*+/=?^_`{|}~-", c));
}

crm_norm_code_t crm_norm_email(const char *in, char out[CRM_NORM_EMAIL_SZ],
                               char suggest[CRM_NORM_DOMAIN_SZ])
{
    if (suggest)
        suggest[0] = '\0';
    if (!out)
        return CRM_NORM_INVALID;
    out[0] = '\0';
    char buf[512];
    crm_norm_code_t rc = s_field(in, buf, sizeof buf);
    if (rc != CRM_NORM_OK)
        return rc;

    /* What dealer staff type when the customer has no address. */
    static const char *const placeholders[] = {
        "无", "没有", "暂无", "不详", "未知", "null", "none", "n/a", "na", "nil", "no", "-", "--",
        "/", "0", "无邮箱",
    };
    char lower[sizeof buf];
    size_t n = strlen(buf);
    for (size_t i = 0; i <= n; i++)
        lower[i] = s_to_lower(buf[i]);
    for (size_t i = 0; i < sizeof placeholders / sizeof placeholders[0]; i++)
        if (strcmp(lower, placeholders[i]) == 0)
            return CRM_NORM_PLACEHOLDER;

    if (n > CRM_NORM_EMAIL_SZ - 1)
        return CRM_NORM_TOO_LONG;
    const char *at = strchr(buf, '@');
    if (!at)
        return CRM_NORM_INVALID;
    size_t ll = (size_t) (at - buf);
    if (ll == 0)
        return CRM_NORM_INVALID;
    if (ll > 64)
        return CRM_NORM_TOO_LONG;
    for (size_t i = 0; i < ll; i++)
        if (!s_email_local_char(buf[i]))
            return CRM_NORM_INVALID;

    /* Domain: labels of [a-z0-9-], 1-63 long, no hyphen at either end. */
    const char *domain = lower + ll + 1;
    size_t dl = n - ll - 1, label = 0, dots = 0, tld_start = 0;
    if (dl == 0)
        return CRM_NORM_INVALID;
    for (size_t i = 0; i <= dl; i++) {
        char c = domain[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || domain[i - 1] == '-')
                return CRM_NORM_INVALID;
            if (c == '.') {
                dots++;
                tld_start = i + 1;
            }
            label = 0;
        } else if (s_is_alpha(c) || s_is_digit(c) || c == '-') {
            if (label == 0 && c == '-')
                return CRM_NORM_INVALID;
            label++;
        } else
            return CRM_NORM_INVALID;
    }
    if (dots == 0 || dl - tld_start < 2)
        return CRM_NORM_INVALID;
    for (size_t i = tld_start; i < dl; i++)
        if (!s_is_alpha(domain[i]))
            return CRM_NORM_INVALID;

    memcpy(out, buf, ll + 1);
    memcpy(out + ll + 1, domain, dl + 1);
    const char *typo = s_email_typo(domain);
    if (typo) {
        if (suggest)
            snprintf(suggest, CRM_NORM_DOMAIN_SZ, "%s", typo);
        return CRM_NORM_SUSPECTED_TYPO;
    }
    return CRM_NORM_OK;
}
