/*  crm_leadin: JSON, ADF and CSV leads to lead.submit. See crm_leadin.h. */
#include "crm_leadin.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/SAX2.h>
#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <gmime/gmime.h>
#include <math.h> /* isfinite, a macro: no -lm */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crm_lead.h"

#define S_DAY_MS 86400000LL
#define S_WINDOW_MS (3660LL * S_DAY_MS) /* ten years, either side of now */
#define S_CST_OFFSET_MIN 480
#define S_CHUNK (64 * 1024)

/* ------------------------------------------------------------- helpers */

/* Makes a reason one line: jansson and libxml2 messages, and the values
   quoted in ours, may hold line breaks and other control characters, and a
   reason goes into one log line and one quarantine entry. */
static void s_one_line(char *s)
{
    for (unsigned char *p = (unsigned char *) s; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            *p = ' ';
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
}

static void s_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    s_one_line(err);
    crm_utf8_cut(err); /* a reason goes into a UTF-8 rejects file */
}

typedef struct {
    char *p;
    size_t n, cap;
} s_buf_t;

static int s_buf_add(s_buf_t *b, const void *data, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

/* Makes room for exactly n more bytes and the NUL when b has less, so a
   buffer whose size is known up front does not start at 256 bytes. */
static int s_buf_reserve(s_buf_t *b, size_t n)
{
    if (b->n + n + 1 <= b->cap)
        return 0;
    char *p = realloc(b->p, b->n + n + 1);
    if (!p)
        return -1;
    b->p = p;
    b->cap = b->n + n + 1;
    b->p[b->n] = '\0';
    return 0;
}

static int s_buf_str(s_buf_t *b, const char *s)
{
    return s_buf_add(b, s, strlen(s));
}

static bool s_is_blank_cp(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == '\v' || cp == '\f' ||
           cp == 0xA0 || cp == 0x3000 || cp == 0xFEFF;
}

/* Span of s[0..len) without leading and trailing blanks (ASCII, NBSP,
   ideographic space, BOM). */
static void s_trim(const char *s, size_t len, size_t *start, size_t *tlen)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t b = 0, e = 0, i = 0;
    bool seen = false;
    while (i < len) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, len - i, &cp);
        if (k <= 0) {
            k = 1;
            cp = 0xFFFD;
        }
        if (!s_is_blank_cp(cp)) {
            if (!seen)
                b = i, seen = true;
            e = i + (size_t) k;
        }
        i += (size_t) k;
    }
    *start = seen ? b : 0;
    *tlen = seen ? e - b : 0;
}

static bool s_has_cjk(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, n - i, &cp);
        if (k <= 0)
            return false;
        if ((cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
            (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF))
            return true;
        i += (size_t) k;
    }
    return false;
}

/* The first 40 bytes or so of a cell, for a reason: cut at a character
   boundary, so the reason (and the rejects file's error cell it goes to)
   stays UTF-8 and the rejects file still reads as UTF-8. */
static const char *s_clip(const char *v, char out[48])
{
    const unsigned char *p = (const unsigned char *) v;
    size_t n = strlen(v), i = 0;
    while (i < n) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, n - i, &cp);
        if (k <= 0 || i + (size_t) k > 40)
            break;
        i += (size_t) k;
    }
    memcpy(out, v, i);
    out[i] = '\0';
    return out;
}

/* ------------------------------------------------------- field table */

/* The STR fields of lead.submit, derived from messages.def so that JSON keys
   and CSV columns follow the schema without a second list. */
typedef struct {
    const char *name;
    size_t off, has_off;
} s_field_t;

#define S_F(msg, field, type, req, doc) S_F_##type(field)
#define S_F_STR(field)                                                                             \
    {#field, offsetof(crm_body_lead_submit_t, field), offsetof(crm_body_lead_submit_t, has.field)},
#define S_F_I64(field)
#define S_F_BOOL(field)
#define S_F_STRS(field)
static const s_field_t s_fields[] = {CRM_FIELDS_lead_submit(S_F)};
#undef S_F
#undef S_F_STR
#undef S_F_I64
#undef S_F_BOOL
#undef S_F_STRS
#define S_NFIELDS (sizeof s_fields / sizeof s_fields[0])

static const s_field_t *s_field_by_name(const char *name)
{
    for (size_t i = 0; i < S_NFIELDS; i++)
        if (!strcmp(s_fields[i].name, name))
            return &s_fields[i];
    return NULL;
}

static char **s_slot(crm_msg_t *m, const s_field_t *f)
{
    return (char **) ((char *) &m->body.lead_submit + f->off);
}

static int s_set_field(crm_msg_t *m, const s_field_t *f, const char *value)
{
    if (crm_strdup_into(s_slot(m, f), value) != 0)
        return -1;
    *(bool *) ((char *) &m->body.lead_submit + f->has_off) = value != NULL;
    return 0;
}

/* Sets a field by name unless it already has a value (first one wins). */
static int s_set_once(crm_msg_t *m, const char *name, const char *value)
{
    const s_field_t *f = s_field_by_name(name);
    if (!f || !value || !*value || *s_slot(m, f))
        return 0;
    return s_set_field(m, f, value);
}

static const char *s_get(crm_msg_t *m, const char *name)
{
    const s_field_t *f = s_field_by_name(name);
    return f ? *s_slot(m, f) : NULL;
}

/* -------------------------------------------------------- content key */

/* Feeds value to the hash with 0x1B and 0x1F escaped (see the header), so
   the hashed text splits back into exactly the fields it came from. */
static void s_key_value(crypto_hash_sha256_state *st, const char *v, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] != 0x1B && v[i] != 0x1F)
            continue;
        const unsigned char esc[2] = {0x1B, v[i] == 0x1B ? 0x1B : 0x5F};
        crypto_hash_sha256_update(st, (const unsigned char *) v + run, i - run);
        crypto_hash_sha256_update(st, esc, 2);
        run = i + 1;
    }
    crypto_hash_sha256_update(st, (const unsigned char *) v + run, n - run);
}

static bool s_key_skipped(const char *name)
{
    return !strcmp(name, "submission_id") || !strcmp(name, "channel") || !strcmp(name, "source");
}

static void s_key_field(crypto_hash_sha256_state *st, bool *first, const char *name,
                        const char *v, size_t n)
{
    if (s_key_skipped(name))
        return;
    if (!*first)
        crypto_hash_sha256_update(st, (const unsigned char *) "\x1f", 1);
    *first = false;
    crypto_hash_sha256_update(st, (const unsigned char *) name, strlen(name));
    crypto_hash_sha256_update(st, (const unsigned char *) "=", 1);
    s_key_value(st, v, n);
}

static void s_key_str(crypto_hash_sha256_state *st, bool *first, const char *name, bool has,
                      const char *v)
{
    if (has && v && *v)
        s_key_field(st, first, name, v, strlen(v));
}

static void s_key_i64(crypto_hash_sha256_state *st, bool *first, const char *name, bool has,
                      int64_t v)
{
    char num[24];
    if (has)
        s_key_field(st, first, name, num, (size_t) snprintf(num, sizeof num, "%lld", (long long) v));
}

static void s_key_bool(crypto_hash_sha256_state *st, bool *first, const char *name, bool has,
                       bool v)
{
    if (has)
        s_key_field(st, first, name, v ? "1" : "0", 1);
}

/* A list field would need its own rule (order, separator); none exists. */
#define S_K(msg, field, type, req, doc) S_K_##type(field)
#define S_K_STR(field) s_key_str(&st, &first, #field, lead->has.field, lead->field);
#define S_K_I64(field) s_key_i64(&st, &first, #field, lead->has.field, lead->field);
#define S_K_BOOL(field) s_key_bool(&st, &first, #field, lead->has.field, lead->field);
#define S_K_STRS(field) _Static_assert(0, "lead.submit has a list field: give it a key rule");

int crm_leadin_content_key(const crm_body_lead_submit_t *lead, const char *prefix, char *out,
                           size_t outsz)
{
    if (out && outsz)
        out[0] = '\0';
    if (!lead || !prefix || !out || strlen(prefix) + 2 * crypto_hash_sha256_BYTES + 1 > outsz)
        return -1;
    crypto_hash_sha256_state st;
    bool first = true;
    crypto_hash_sha256_init(&st);
    CRM_FIELDS_lead_submit(S_K)
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    size_t o = strlen(prefix);
    memcpy(out, prefix, o);
    sodium_bin2hex(out + o, outsz - o, h, sizeof h);
    return 0;
}
#undef S_K
#undef S_K_STR
#undef S_K_I64
#undef S_K_BOOL
#undef S_K_STRS

/* Sets the lead's submission_id to its content key. */
static int s_content_id(crm_msg_t *m, const char *prefix)
{
    char id[CRM_LEADIN_KEY_SZ];
    if (crm_leadin_content_key(&m->body.lead_submit, prefix, id, sizeof id) != 0)
        return -1;
    return CRM_SET_STR(m, lead_submit, submission_id, id);
}

/* --------------------------------------------------------- date-time */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int s_digits(const char **p, int minw, int maxw, int *v)
{
    int n = 0, x = 0;
    while (n < maxw && (*p)[n] >= '0' && (*p)[n] <= '9')
        x = x * 10 + ((*p)[n] - '0'), n++;
    if (n < minw)
        return -1;
    *p += n;
    *v = x;
    return 0;
}

int crm_leadin_parse_datetime(const char *s, int64_t *ms_utc)
{
    if (!s || !ms_utc)
        return -1;
    size_t b, n;
    s_trim(s, strlen(s), &b, &n);
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s + b, n);
    buf[n] = '\0';
    const char *p = buf;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = S_CST_OFFSET_MIN;
    /* ISO 8601 basic format, as ADF producers write it: 20270501,
       20270501T1530Z, 20270501T153000-0400; the time is basic too. */
    bool basic = n >= 8 && strspn(buf, "0123456789") == 8;
    if (basic) {
        if (s_digits(&p, 4, 4, &y) || s_digits(&p, 2, 2, &mo) || s_digits(&p, 2, 2, &d))
            return -1;
    } else {
        if (s_digits(&p, 4, 4, &y) || (*p != '-' && *p != '/'))
            return -1;
        char sep = *p++;
        if (s_digits(&p, 1, 2, &mo) || *p++ != sep || s_digits(&p, 1, 2, &d))
            return -1;
    }
    bool timed = false, seconds = false;
    if (basic && (*p == 'T' || *p == 't')) {
        p++;
        if (s_digits(&p, 2, 2, &h) || s_digits(&p, 2, 2, &mi))
            return -1;
        if (*p >= '0' && *p <= '9') {
            if (s_digits(&p, 2, 2, &sec))
                return -1;
            seconds = true;
        }
        timed = true;
    } else if (!basic && (*p == 'T' || *p == 't' || *p == ' ')) {
        while (*p == ' ')
            p++;
        if (*p == 'T' || *p == 't')
            p++;
        if (s_digits(&p, 1, 2, &h) || *p++ != ':' || s_digits(&p, 2, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (s_digits(&p, 2, 2, &sec))
                return -1;
            seconds = true;
        }
        timed = true;
    }
    if (seconds && (*p == '.' || *p == ',')) {
        p++;
        int k = 0, frac = 0;
        while (*p >= '0' && *p <= '9') {
            if (k < 3)
                frac = frac * 10 + (*p - '0');
            k++, p++;
        }
        if (k == 0)
            return -1;
        for (int i = k; i < 3; i++)
            frac *= 10;
        ms = frac;
    }
    while (timed && *p == ' ')
        p++;
    if (timed && (*p == 'Z' || *p == 'z')) {
        off = 0;
        p++;
    } else if (timed && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (s_digits(&p, 2, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p >= '0' && *p <= '9' && s_digits(&p, 2, 2, &om))
            return -1;
        if (oh > 14 || om > 59)
            return -1;
        off = sign * (oh * 60 + om);
    }
    if (*p != '\0')
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
        h > 23 || mi > 59 || sec > 59)
        return -1;
    int64_t t = s_days_from_civil(y, mo, d) * S_DAY_MS +
                ((int64_t) h * 3600 + mi * 60 + sec) * 1000 + ms - (int64_t) off * 60000;
    *ms_utc = t;
    return 0;
}

static bool s_in_window(int64_t now_ms, int64_t at)
{
    return now_ms <= 0 || (at > now_ms - S_WINDOW_MS && at < now_ms + S_WINDOW_MS);
}

/* -------------------------------------------------------------- detect */

static size_t s_skip_bom_ws(const char *t, size_t len, size_t i)
{
    if (i == 0 && len >= 3 && !memcmp(t, "\xEF\xBB\xBF", 3))
        i = 3;
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n'))
        i++;
    return i;
}

/* Offset just past `close` starting at i, or len when it never comes. */
static size_t s_skip_past(const char *t, size_t len, size_t i, const char *close)
{
    size_t cl = strlen(close);
    for (; i + cl <= len; i++)
        if (!memcmp(t + i, close, cl))
            return i + cl;
    return len;
}

/* Offset just past a DOCTYPE starting at i: its '>' outside quotes and
   outside the internal subset, whose declarations may hold '>' and ']' in
   quoted values and comments. len when it never ends. */
static size_t s_skip_doctype(const char *t, size_t len, size_t i)
{
    bool subset = false;
    char quote = 0;
    for (i += 9; i < len; i++) {
        char c = t[i];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'')
            quote = c;
        else if (subset && len - i >= 4 && !memcmp(t + i, "<!--", 4))
            i = s_skip_past(t, len, i + 4, "-->") - 1;
        else if (subset && len - i >= 2 && !memcmp(t + i, "<?", 2))
            i = s_skip_past(t, len, i + 2, "?>") - 1;
        else if (c == '[')
            subset = true;
        else if (c == ']')
            subset = false;
        else if (c == '>' && !subset)
            return i + 1;
    }
    return len;
}

/* A header field line of RFC 5322: a name of printable ASCII but ':'
   directly followed by ':'. *name gets its length. */
static bool s_header_line(const char *t, size_t n, size_t *name)
{
    size_t k = 0;
    while (k < n && t[k] > 32 && t[k] < 127 && t[k] != ':')
        k++;
    *name = k;
    return k > 0 && k < n && t[k] == ':';
}

static bool s_is_email(const char *t, size_t len, size_t i)
{
    static const char *const known[] = {"from",       "to",           "subject", "date",
                                        "message-id", "mime-version", "content-type", NULL};
    bool first = true, seen = false;
    int lines = 0;
    while (i < len && lines++ < 1000) {
        const char *nl = memchr(t + i, '\n', len - i);
        size_t n = nl ? (size_t) (nl - (t + i)) : len - i;
        size_t end = n && t[i + n - 1] == '\r' ? n - 1 : n;
        size_t name;
        if (end == 0)
            return seen && !first; /* the blank line that ends the header block */
        if (first && end > 5 && !memcmp(t + i, "From ", 5))
            ; /* an mbox separator line */
        else if ((t[i] == ' ' || t[i] == '\t') && !first)
            ; /* a folded continuation */
        else if (s_header_line(t + i, end, &name)) {
            for (size_t k = 0; known[k]; k++)
                seen |= strlen(known[k]) == name && !strncasecmp(t + i, known[k], name);
        } else
            return false;
        first = false;
        if (!nl)
            return seen; /* headers only, no body */
        i += n + 1;
    }
    return false;
}

crm_leadin_kind_t crm_leadin_detect(const char *text, size_t len)
{
    if (!text)
        return CRM_LEADIN_UNKNOWN;
    size_t i = s_skip_bom_ws(text, len, 0);
    if (i < len && text[i] == '{')
        return CRM_LEADIN_JSON;
    size_t start = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
    if (i < len && text[i] != '<' && s_is_email(text, len, start))
        return CRM_LEADIN_EMAIL;
    for (int guard = 0; guard < 64 && i < len; guard++) {
        if (len - i >= 2 && !memcmp(text + i, "<?", 2))
            i = s_skip_past(text, len, i, "?>");
        else if (len - i >= 4 && !memcmp(text + i, "<!--", 4))
            i = s_skip_past(text, len, i, "-->");
        else if (len - i >= 9 && !strncasecmp(text + i, "<!DOCTYPE", 9))
            i = s_skip_doctype(text, len, i);
        else
            break;
        i = s_skip_bom_ws(text, len, i);
    }
    if (len - i >= 5 && !strncasecmp(text + i, "<adf", 4) &&
        strchr(" \t\r\n>/", text[i + 4]) && text[i + 4] != '\0')
        return CRM_LEADIN_ADF;
    return CRM_LEADIN_UNKNOWN;
}

/* ---------------------------------------------------------------- JSON */

/* Decimal text of a JSON number given for a string field. */
static int s_json_number_text(const json_t *v, char *out, size_t outsz)
{
    if (json_is_integer(v)) {
        snprintf(out, outsz, "%lld", (long long) json_integer_value(v));
        return 0;
    }
    double d = json_real_value(v);
    if (!isfinite(d))
        return -1;
    if (d > -9e15 && d < 9e15 && (double) (long long) d == d)
        snprintf(out, outsz, "%lld", (long long) d);
    else
        snprintf(out, outsz, "%.15g", d);
    return 0;
}

static int s_json_field(crm_msg_t *out, const char *key, json_t *v, int64_t now_ms, char *err,
                        size_t errsz)
{
    const s_field_t *f = s_field_by_name(key);
    if (f) {
        char num[64];
        const char *text;
        if (json_is_string(v))
            text = json_string_value(v);
        else if (json_is_number(v) && s_json_number_text(v, num, sizeof num) == 0)
            text = num;
        else {
            s_err(err, errsz, "%s: expected a string or number", key);
            return -1;
        }
        if (*text && s_set_field(out, f, text) != 0) {
            s_err(err, errsz, "%s: out of memory", key);
            return -1;
        }
        return 0;
    }
    if (!strcmp(key, "testdrive")) {
        if (json_is_boolean(v))
            CRM_SET_BOOL(out, lead_submit, testdrive, json_is_true(v));
        else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
            CRM_SET_BOOL(out, lead_submit, testdrive, json_integer_value(v) == 1);
        else {
            s_err(err, errsz, "testdrive: expected true or false");
            return -1;
        }
        return 0;
    }
    if (!strcmp(key, "testdrive_at")) {
        int64_t at;
        if (json_is_integer(v))
            at = (int64_t) json_integer_value(v);
        else if (!json_is_string(v) || crm_leadin_parse_datetime(json_string_value(v), &at)) {
            s_err(err, errsz, "testdrive_at: expected a date-time or ms integer");
            return -1;
        }
        if (!s_in_window(now_ms, at)) {
            s_err(err, errsz, "testdrive_at: %lld ms is more than ten years from now "
                              "(seconds instead of milliseconds?)", (long long) at);
            return -1;
        }
        CRM_SET_I64(out, lead_submit, testdrive_at, at);
        return 0;
    }
    return 0; /* unknown keys are ignored */
}

int crm_leadin_json(const char *text, size_t len, int64_t now_ms, crm_msg_t *out, char *err,
                    size_t errsz)
{
    s_err(err, errsz, "%s", "");
    crm_msg_init(out, CRM_T_lead_submit);
    if (!text) {
        s_err(err, errsz, "no input");
        return -1;
    }
    /* crm_leadin_detect takes a UTF-8 BOM before the '{' (Windows editors
       write one); jansson refuses it. */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        text += 3, len -= 3;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        s_err(err, errsz, "line %d, column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        s_err(err, errsz, "line 1, column 1: expected a JSON object");
        rc = -1;
    }
    const char *key;
    json_t *v;
    if (rc == 0)
        json_object_foreach(root, key, v)
        {
            if (json_is_null(v))
                continue;
            if ((rc = s_json_field(out, key, v, now_ms, err, errsz)) != 0)
                break;
        }
    crm_body_lead_submit_t *b = &out->body.lead_submit;
    if (rc == 0 && b->has.testdrive_at && !b->has.testdrive)
        CRM_SET_BOOL(out, lead_submit, testdrive, true);
    if (rc == 0 && !b->channel)
        rc = CRM_SET_STR(out, lead_submit, channel, "website");
    if (rc == 0 && !b->submission_id)
        rc = s_content_id(out, "json:");
    if (rc != 0) {
        if (err && errsz && !*err)
            s_err(err, errsz, "out of memory");
        crm_msg_clear(out);
        crm_msg_init(out, CRM_T_lead_submit);
    }
    json_decref(root);
    return rc;
}

/* ----------------------------------------------------------------- ADF */

/* Bytes entity references may add to one prospect's fields, counted with
   every node visited (so empty entities nested deep cost too). */
#define S_ENTITY_BUDGET (64 * 1024)
#define S_ENTITY_DEPTH 16
/* The same for all the prospects of a document (an e-mail's ADF parts
   together): the larger of 1 MiB and four times the document's size, so
   that prospects each within their own budget cannot add up to gigabytes. */
#define S_DOC_ENTITY_MIN (1024 * 1024)
#define S_DOC_ENTITY_FACTOR 4
/* Prospects one document may hold (an e-mail's ADF parts together); more
   is an error of the whole document. */
#define S_PROSPECTS_MAX 10000

/* What a whole document may still use, shared by its ADF parts. exceeded
   is set when a limit is passed: the document then fails as a whole. */
typedef struct {
    size_t budget, limit; /* entity bytes left, and the starting amount */
    size_t prospects;     /* prospects seen so far */
    bool exceeded;
} s_adf_limits_t;

static s_adf_limits_t s_adf_limits(size_t len)
{
    size_t limit = len > SIZE_MAX / S_DOC_ENTITY_FACTOR ? SIZE_MAX : len * S_DOC_ENTITY_FACTOR;
    if (limit < S_DOC_ENTITY_MIN)
        limit = S_DOC_ENTITY_MIN;
    return (s_adf_limits_t){limit, limit, 0, false};
}

/* One prospect's conversion: the entity budgets and the first failure, so
   the text helpers can stay NULL-or-string. */
typedef struct {
    const xmlDoc *doc;
    size_t budget;
    s_adf_limits_t *lim;
    bool failed;
    char err[CRM_LEADIN_ERR_SZ];
} s_adf_t;

static void s_adf_fail(s_adf_t *x, const char *fmt, ...)
{
    if (x->failed)
        return;
    x->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    s_one_line(x->err);
}

static bool s_is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !strcasecmp((const char *) n->name, name);
}

static xmlNode *s_child(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (s_is(c, name))
            return c;
    return NULL;
}

static bool s_spend(s_adf_t *x, size_t n, const xmlNode *at, const xmlChar *ent)
{
    size_t cost = n ? n : 1;
    if (cost > x->budget) {
        s_adf_fail(x, "line %ld: entity &%s; expands to more than %d bytes",
                   at ? xmlGetLineNo(at) : 0L, ent ? (const char *) ent : "?", S_ENTITY_BUDGET);
        return false;
    }
    if (cost > x->lim->budget) {
        s_adf_fail(x, "line %ld: entity &%s;: the document's entities expand to more than %zu "
                      "bytes in all (the limit: 4 times its size, at least 1 MiB)",
                   at ? xmlGetLineNo(at) : 0L, ent ? (const char *) ent : "?", x->lim->limit);
        x->lim->exceeded = true;
        return false;
    }
    x->budget -= cost;
    x->lim->budget -= cost;
    return true;
}

static int s_expand(s_adf_t *x, s_buf_t *b, const xmlNode *first, int depth, const xmlNode *at,
                    const xmlChar *ent);

/* Appends the replacement text of an internal entity that libxml2 did not
   parse into nodes (it does so for references in attribute values): text
   up to each "&name;", then that entity's own replacement. */
static int s_expand_string(s_adf_t *x, s_buf_t *b, const xmlChar *s, int depth, const xmlNode *at,
                           const xmlChar *ent)
{
    while (s && *s && !x->failed) {
        const xmlChar *amp = xmlStrchr(s, '&');
        size_t n = amp ? (size_t) (amp - s) : (size_t) xmlStrlen(s);
        if (!s_spend(x, n, at, ent) || s_buf_add(b, s, n) != 0)
            return -1;
        if (!amp)
            break;
        const xmlChar *semi = xmlStrchr(amp, ';');
        if (!semi || semi - amp > 128) {
            s_adf_fail(x, "line %ld: entity &%s; holds a stray '&'", xmlGetLineNo(at), ent);
            return -1;
        }
        char name[130];
        memcpy(name, amp + 1, (size_t) (semi - amp - 1));
        name[semi - amp - 1] = '\0';
        xmlEntityPtr e = xmlGetPredefinedEntity((const xmlChar *) name);
        if (!e)
            e = xmlGetDocEntity(x->doc, (const xmlChar *) name);
        if (e && e->etype == XML_INTERNAL_PREDEFINED_ENTITY) {
            if (!s_spend(x, 1, at, ent) || s_buf_str(b, (const char *) e->content) != 0)
                return -1;
        } else if (e && e->etype == XML_INTERNAL_GENERAL_ENTITY) {
            if (depth >= S_ENTITY_DEPTH) {
                s_adf_fail(x, "line %ld: entities nested deeper than %d", xmlGetLineNo(at),
                           S_ENTITY_DEPTH);
                return -1;
            }
            int rc = e->children ? s_expand(x, b, e->children, depth + 1, at, e->name)
                                 : s_expand_string(x, b, e->content, depth + 1, at, e->name);
            if (rc != 0)
                return -1;
        }
        s = semi + 1;
    }
    return x->failed ? -1 : 0;
}

/* Appends the text of first and its siblings: text and CDATA, the text of
   elements inside entity replacements, and internal entities expanded
   within the budget. External entities are never loaded, so they add
   nothing. */
static int s_expand(s_adf_t *x, s_buf_t *b, const xmlNode *first, int depth, const xmlNode *at,
                    const xmlChar *ent)
{
    for (const xmlNode *c = first; c && !x->failed; c = c->next) {
        const xmlNode *where = at ? at : c;
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t n = (size_t) xmlStrlen(c->content);
            if ((ent && !s_spend(x, n, where, ent)) || s_buf_add(b, c->content, n) != 0)
                goto fail;
        } else if (c->type == XML_ELEMENT_NODE && depth > 0) {
            if (!s_spend(x, 0, where, ent) || s_expand(x, b, c->children, depth, at, ent) != 0)
                goto fail;
        } else if (c->type == XML_ENTITY_REF_NODE) {
            const xmlEntity *e = (const xmlEntity *) c->children;
            if (!e || e->type != XML_ENTITY_DECL || e->etype != XML_INTERNAL_GENERAL_ENTITY)
                continue;
            if (depth >= S_ENTITY_DEPTH) {
                s_adf_fail(x, "line %ld: entities nested deeper than %d", xmlGetLineNo(where),
                           S_ENTITY_DEPTH);
                return -1;
            }
            if (!s_spend(x, 0, where, e->name))
                return -1;
            int rc = e->children ? s_expand(x, b, e->children, depth + 1, where, e->name)
                                 : s_expand_string(x, b, e->content, depth + 1, where, e->name);
            if (rc != 0)
                return -1;
        }
    }
    return x->failed ? -1 : 0;
fail:
    if (!x->failed)
        s_adf_fail(x, "out of memory");
    return -1;
}

/* The trimmed text of first and its siblings, malloc'ed, or NULL when
   empty or on failure (then x->failed says why). */
static char *s_text_of(s_adf_t *x, const xmlNode *first)
{
    s_buf_t b = {0};
    if (s_expand(x, &b, first, 0, NULL, NULL) != 0 || !b.p) {
        free(b.p);
        return NULL;
    }
    size_t s, n;
    s_trim(b.p, b.n, &s, &n);
    if (n == 0) {
        free(b.p);
        return NULL;
    }
    memmove(b.p, b.p + s, n);
    b.p[n] = '\0';
    return b.p;
}

static char *s_text(s_adf_t *x, const xmlNode *n)
{
    return n ? s_text_of(x, n->children) : NULL;
}

static char *s_attr(s_adf_t *x, const xmlNode *n, const char *name)
{
    xmlAttr *a = n ? xmlHasProp(n, (const xmlChar *) name) : NULL;
    return a && a->type == XML_ATTRIBUTE_NODE ? s_text_of(x, a->children) : NULL;
}

static bool s_attr_is(s_adf_t *x, const xmlNode *n, const char *name, const char *value)
{
    char *v = s_attr(x, n, name);
    bool eq = v && !strcasecmp(v, value);
    free(v);
    return eq;
}

/* Appends `part` to `acc` with a space, or none between CJK text. */
static int s_join(s_buf_t *acc, const char *part, bool cjk_tight)
{
    if (!part || !*part)
        return 0;
    if (acc->n && !(cjk_tight && s_has_cjk(part) && s_has_cjk(acc->p)) &&
        s_buf_add(acc, " ", 1) != 0)
        return -1;
    return s_buf_str(acc, part);
}

/* After stripping +86/0086 and separators: 11 digits starting with 1. */
static bool s_looks_cn_mobile(const char *s)
{
    char d[32];
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= sizeof d)
                return false;
            d[n++] = *p;
        } else if (!strchr(" -.()+", *p))
            return false;
    }
    d[n] = '\0';
    const char *q = d;
    if (n == 15 && !strncmp(q, "0086", 4))
        q += 4;
    else if (n == 13 && !strncmp(q, "86", 2))
        q += 2;
    return strlen(q) == 11 && q[0] == '1';
}

/* An untyped phone: mobile when it looks like one and none is set yet,
   else usual_phone. ADF's untyped phones and CSV's 电话 columns. */
static int s_set_phone(crm_msg_t *out, const char *num)
{
    if (s_looks_cn_mobile(num) && !s_get(out, "mobile"))
        return s_set_once(out, "mobile", num);
    return s_set_once(out, "usual_phone", num);
}

static int s_adf_name(s_adf_t *x, crm_msg_t *out, const xmlNode *contact)
{
    char *full = NULL, *first = NULL, *last = NULL, *middle = NULL;
    for (xmlNode *c = contact->children; c; c = c->next) {
        if (!s_is(c, "name"))
            continue;
        char *part = s_attr(x, c, "part");
        char **slot = !part || !strcasecmp(part, "full") ? &full
                      : !strcasecmp(part, "first")       ? &first
                      : !strcasecmp(part, "last")        ? &last
                      : !strcasecmp(part, "middle")      ? &middle
                                                         : NULL;
        free(part);
        if (slot && !*slot)
            *slot = s_text(x, c);
    }
    int rc = 0;
    if (full)
        rc = s_set_once(out, "name", full);
    else if (first || last) {
        s_buf_t b = {0};
        if (s_has_cjk(first ? first : "") || s_has_cjk(last ? last : ""))
            rc = s_buf_str(&b, last ? last : "") | s_buf_str(&b, first ? first : "");
        else
            rc = s_join(&b, first, false) | s_join(&b, middle, false) | s_join(&b, last, false);
        if (rc == 0)
            rc = s_set_once(out, "name", b.p);
        free(b.p);
    }
    free(full), free(first), free(last), free(middle);
    return rc;
}

/* The field a <phone> of this type goes to; "" for one ignored (fax,
   pager), NULL for an untyped one (voice, none, anything else). */
static const char *s_adf_phone_field(s_adf_t *x, const xmlNode *phone)
{
    char *type = s_attr(x, phone, "type");
    const char *t = type ? type : "voice";
    const char *f = !strcasecmp(t, "cellphone") || !strcasecmp(t, "mobile") ? "mobile"
                    : !strcasecmp(t, "home")                                ? "home_phone"
                    : !strcasecmp(t, "work")                                ? "office_phone"
                    : !strcasecmp(t, "fax") || !strcasecmp(t, "pager")      ? ""
                                                                            : NULL;
    free(type);
    return f;
}

/* Typed phones first, then untyped ones, as the CSV columns: an untyped
   phone that looks like a mobile must not take the slot of a cellphone
   listed after it. */
static int s_adf_phones(s_adf_t *x, crm_msg_t *out, const xmlNode *contact)
{
    int rc = 0;
    for (int pass = 0; pass < 2; pass++)
        for (xmlNode *c = contact->children; c && rc == 0 && !x->failed; c = c->next) {
            if (!s_is(c, "phone"))
                continue;
            const char *f = s_adf_phone_field(x, c);
            if ((pass == 0) != (f != NULL) || (f && !*f))
                continue;
            char *num = s_text(x, c);
            if (num)
                rc = f ? s_set_once(out, f, num) : s_set_phone(out, num);
            free(num);
        }
    return rc;
}

static int s_adf_contact(s_adf_t *x, crm_msg_t *out, const xmlNode *contact)
{
    int rc = s_adf_name(x, out, contact);
    if (rc == 0)
        rc = s_adf_phones(x, out, contact);
    for (xmlNode *c = contact->children; c && rc == 0; c = c->next) {
        if (s_is(c, "email")) {
            char *v = s_text(x, c);
            rc = s_set_once(out, "email", v);
            free(v);
        } else if (s_is(c, "address") && !s_get(out, "address")) {
            s_buf_t street = {0};
            for (xmlNode *a = c->children; a && rc == 0; a = a->next) {
                if (a->type != XML_ELEMENT_NODE)
                    continue;
                char *v = s_text(x, a);
                if (s_is(a, "street") || s_is(a, "apartment"))
                    rc = s_join(&street, v, true);
                else if (s_is(a, "city"))
                    rc = s_set_once(out, "city", v);
                else if (s_is(a, "regioncode"))
                    rc = s_set_once(out, "province", v);
                else if (s_is(a, "postalcode"))
                    rc = s_set_once(out, "postcode", v);
                free(v);
            }
            if (rc == 0 && street.p)
                rc = s_set_once(out, "address", street.p);
            free(street.p);
        }
    }
    return rc;
}

/* Sets model from <make>/<model>; interest test-drive sets testdrive. A car
   the customer sells or trades in gives vin instead. */
static int s_adf_vehicle(s_adf_t *x, crm_msg_t *out, const xmlNode *v)
{
    char *interest = s_attr(x, v, "interest");
    bool owned = interest && (!strcasecmp(interest, "sell") || !strcasecmp(interest, "trade-in"));
    bool drive = interest && !strcasecmp(interest, "test-drive");
    free(interest);
    int rc = 0;
    if (owned) {
        char *vin = s_text(x, s_child(v, "vin"));
        rc = s_set_once(out, "vin", vin);
        free(vin);
        return rc;
    }
    if (drive)
        CRM_SET_BOOL(out, lead_submit, testdrive, true);
    if (!s_get(out, "model")) {
        char *make = s_text(x, s_child(v, "make")), *model = s_text(x, s_child(v, "model"));
        s_buf_t b = {0};
        rc = s_join(&b, make, false) | s_join(&b, model, false);
        if (rc == 0)
            rc = s_set_once(out, "model", b.p);
        free(b.p), free(make), free(model);
    }
    return rc;
}

/* Converts one <prospect>; 0, or -1 with x->err. */
static int s_adf_prospect(s_adf_t *x, crm_msg_t *out, const xmlNode *pr, int64_t now_ms)
{
    int rc = CRM_SET_STR(out, lead_submit, channel, "partner");
    xmlNode *provider = s_child(pr, "provider"), *vendor = s_child(pr, "vendor");
    xmlNode *customer = s_child(pr, "customer");
    char *v = s_text(x, s_child(provider, "name"));
    if (!v)
        v = s_text(x, s_child(provider, "id"));
    rc |= s_set_once(out, "source", v);
    free(v);
    v = s_text(x, s_child(vendor, "id"));
    rc |= s_set_once(out, "dealer_id", v);
    free(v);
    for (xmlNode *c = pr->children; c && rc == 0; c = c->next)
        if (s_is(c, "vehicle"))
            rc = s_adf_vehicle(x, out, c);
    if (customer) {
        xmlNode *contact = NULL;
        for (xmlNode *c = customer->children; c; c = c->next)
            if (s_is(c, "contact") && (!contact || s_attr_is(x, c, "primarycontact", "1"))) {
                bool primary = s_attr_is(x, c, "primarycontact", "1");
                contact = c;
                if (primary)
                    break;
            }
        if (contact && rc == 0)
            rc = s_adf_contact(x, out, contact);
        v = s_text(x, s_child(customer, "comments"));
        rc |= s_set_once(out, "remark", v);
        free(v);
        if (rc == 0 && out->body.lead_submit.testdrive) {
            xmlNode *at = s_child(s_child(customer, "timeframe"), "earliestdate");
            char *when = s_text(x, at);
            int64_t ms;
            if (when && crm_leadin_parse_datetime(when, &ms) != 0)
                s_adf_fail(x, "line %ld: customer/timeframe/earliestdate: expected an ISO 8601 "
                              "date or date-time, got \"%.40s\"", xmlGetLineNo(at), when);
            else if (when && !s_in_window(now_ms, ms))
                s_adf_fail(x, "line %ld: customer/timeframe/earliestdate: more than ten years "
                              "from now", xmlGetLineNo(at));
            else if (when)
                CRM_SET_I64(out, lead_submit, testdrive_at, ms);
            free(when);
        }
    }
    if (rc == 0 && !x->failed) {
        xmlNode *id = s_child(pr, "id");
        char *text = s_text(x, id), *src = s_attr(x, id, "source");
        if (text) {
            s_buf_t b = {0};
            rc = s_buf_str(&b, "adf:") | s_buf_str(&b, src ? src : "") | s_buf_str(&b, ":") |
                 s_buf_str(&b, text);
            if (rc == 0)
                rc = CRM_SET_STR(out, lead_submit, submission_id, b.p);
            free(b.p);
        } else if (!x->failed)
            rc = s_content_id(out, "adf:");
        free(text), free(src);
    }
    if (rc != 0)
        s_adf_fail(x, "out of memory");
    return x->failed ? -1 : 0;
}

/* The parse's state, reached from libxml2's hooks through ctxt->_private:
   the first error (libxml2 goes on after a well-formedness error and keeps
   only the last one, often a consequence such as "premature end of data")
   and the first entity name nobody knows. */
typedef struct {
    int line;
    char msg[160];
    int unknown_line;
    char unknown[64];
} s_xml_state_t;

static void s_xml_error(void *data, xmlErrorPtr e)
{
    xmlParserCtxtPtr ctxt = data;
    s_xml_state_t *st = ctxt ? ctxt->_private : NULL;
    if (!st || !e || st->line > 0 || e->level < XML_ERR_ERROR)
        return;
    st->line = e->line > 0 ? e->line : 1;
    snprintf(st->msg, sizeof st->msg, "%s", e->message ? e->message : "not well-formed");
    size_t n = strlen(st->msg);
    while (n && (st->msg[n - 1] == '\n' || st->msg[n - 1] == ' '))
        st->msg[--n] = '\0';
}

/* libxml2's entity lookup, then HTML's: ADF written by web forms carries
   &nbsp; &eacute; &mdash; and friends without declaring them. A name found
   in libxml2's own HTML table becomes an internal entity of the document
   holding that character, so the tree keeps a reference s_expand resolves
   like any declared one; anything else is remembered for the error. */
static xmlEntityPtr s_get_entity(void *ctx, const xmlChar *name)
{
    xmlParserCtxtPtr ctxt = ctx;
    xmlEntityPtr e = xmlSAX2GetEntity(ctx, name);
    if (e || !ctxt || !name || ctxt->inSubset || !ctxt->myDoc)
        return e;
    const htmlEntityDesc *h = htmlEntityLookup(name);
    s_xml_state_t *st = ctxt->_private;
    if (!h) {
        if (st && !st->unknown_line) {
            st->unknown_line = ctxt->input && ctxt->input->line > 0 ? ctxt->input->line : 1;
            snprintf(st->unknown, sizeof st->unknown, "%s", (const char *) name);
        }
        return NULL;
    }
    xmlChar utf8[8];
    int n = xmlCopyCharMultiByte(utf8, (int) h->value);
    if (n <= 0)
        return NULL;
    utf8[n] = '\0';
    if (!ctxt->myDoc->intSubset && !xmlCreateIntSubset(ctxt->myDoc, BAD_CAST "adf", NULL, NULL))
        return NULL;
    return xmlAddDocEntity(ctxt->myDoc, name, XML_INTERNAL_GENERAL_ENTITY, NULL, NULL, utf8);
}

static crm_leadin_doc_t *s_doc_new(crm_leadin_kind_t kind, const char *data, size_t len)
{
    crm_leadin_doc_t *doc = calloc(1, sizeof *doc);
    if (!doc)
        return NULL;
    doc->kind = kind;
    if (!(doc->raw = malloc(len + 1))) {
        free(doc);
        return NULL;
    }
    if (len)
        memcpy(doc->raw, data, len);
    doc->raw[len] = '\0';
    doc->raw_len = len;
    return doc;
}

static void s_doc_fail(crm_leadin_doc_t *doc, const char *fmt, ...)
{
    if (doc->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(doc->err, sizeof doc->err, fmt, ap);
    va_end(ap);
    s_one_line(doc->err);
    doc->nfailed++;
}

/* A new lead slot at the end of doc->leads, or NULL when out of memory.
   The array doubles, so adding n leads copies O(n) of them. */
static crm_leadin_lead_t *s_doc_add(crm_leadin_doc_t *doc)
{
    if (doc->nleads == doc->leads_cap) {
        size_t cap = doc->leads_cap ? doc->leads_cap * 2 : 4;
        crm_leadin_lead_t *p = cap > SIZE_MAX / sizeof *p ? NULL
                                                          : realloc(doc->leads, cap * sizeof *p);
        if (!p)
            return NULL;
        doc->leads = p;
        doc->leads_cap = cap;
    }
    crm_leadin_lead_t *l = &doc->leads[doc->nleads++];
    memset(l, 0, sizeof *l);
    crm_msg_init(&l->msg, CRM_T_lead_submit);
    return l;
}

/* A document that failed as a whole keeps no leads. */
static void s_doc_settle(crm_leadin_doc_t *doc)
{
    if (!doc->err[0])
        return;
    for (size_t i = 0; i < doc->nleads; i++)
        crm_msg_clear(&doc->leads[i].msg);
    free(doc->leads);
    doc->leads = NULL;
    doc->nleads = doc->leads_cap = 0;
    doc->nfailed = 1;
}

/* Parses an ADF document into doc's leads, within lim (see
   s_adf_limits_t); -1 with doc->err when the document as a whole cannot be
   read or passes a limit. */
static int s_adf_into(crm_leadin_doc_t *doc, const char *text, size_t len, int64_t now_ms,
                      const char *encoding, s_adf_limits_t *lim)
{
    /* A <?adf version="1.0"?> line before the XML declaration is common and
       not XML: skip processing instructions until the declaration or the
       first element. The lines skipped are put back as blanks (inside the
       declaration, the one place before it that takes them) so that every
       line number libxml2 reports is a line of the original text. */
    size_t i = s_skip_bom_ws(text, len, 0);
    while (len - i >= 2 && !memcmp(text + i, "<?", 2) &&
           !(len - i >= 6 && !memcmp(text + i, "<?xml", 5) && strchr(" \t\r\n", text[i + 5])))
        i = s_skip_bom_ws(text, len, s_skip_past(text, len, i, "?>"));
    size_t lines = 0;
    for (size_t k = 0; k < i; k++)
        lines += text[k] == '\n';
    s_buf_t src = {0};
    size_t decl_end = len - i >= 5 && !memcmp(text + i, "<?xml", 5)
                          ? s_skip_past(text, len, i, "?>") : i;
    size_t cut = decl_end > i && decl_end < len ? decl_end - 2 : i;
    int brc = s_buf_add(&src, text + i, cut - i);
    for (size_t k = 0; k < lines && brc == 0; k++)
        brc = s_buf_add(&src, "\n", 1);
    brc |= s_buf_add(&src, text + cut, len - cut);
    if (brc != 0 || src.n > INT_MAX) {
        free(src.p);
        s_doc_fail(doc, brc ? "out of memory" : "document too large");
        return -1;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        free(src.p);
        s_doc_fail(doc, "out of memory");
        return -1;
    }
    s_xml_state_t st = {0, "", 0, ""};
    ctxt->_private = &st;
    ctxt->sax->serror = s_xml_error;
    ctxt->sax->getEntity = s_get_entity;
    /* No XML_PARSE_NOENT, DTDLOAD, DTDVALID or HUGE: nothing outside the
       document is ever read, and libxml2 keeps its amplification limits. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;
    if (encoding)
        opts |= XML_PARSE_IGNORE_ENC;
    xmlDocPtr xdoc = xmlCtxtReadMemory(ctxt, src.p, (int) src.n, NULL, encoding, opts);
    int rc = 0;
    if (st.unknown_line && (!st.line || st.unknown_line <= st.line)) {
        s_doc_fail(doc, "line %d: unknown entity &%s;", st.unknown_line, st.unknown);
        rc = -1;
    } else if (!xdoc) {
        xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
        if (st.line == 0)
            s_xml_error(ctxt, e);
        s_doc_fail(doc, "line %d: %s", st.line ? st.line : 1,
                   st.line ? st.msg : "not well-formed");
        rc = -1;
    }
    xmlNode *root = rc == 0 ? xmlDocGetRootElement(xdoc) : NULL;
    if (rc == 0 && !s_is(root, "adf")) {
        s_doc_fail(doc, "not an ADF document (root element <%s>)",
                   root ? (const char *) root->name : "none");
        rc = -1;
    }
    int count = 0;
    for (xmlNode *c = rc == 0 ? root->children : NULL; c && rc == 0; c = c->next) {
        if (!s_is(c, "prospect"))
            continue;
        count++;
        if (++lim->prospects > S_PROSPECTS_MAX) {
            lim->exceeded = true;
            s_doc_fail(doc, "line %ld: more than %d <prospect> elements in one document",
                       xmlGetLineNo(c), S_PROSPECTS_MAX);
            rc = -1;
            break;
        }
        crm_leadin_lead_t *l = s_doc_add(doc);
        if (!l) {
            s_doc_fail(doc, "out of memory");
            rc = -1;
            break;
        }
        l->line = (int) xmlGetLineNo(c);
        s_adf_t x = {xdoc, S_ENTITY_BUDGET, lim, false, ""};
        if (s_adf_prospect(&x, &l->msg, c, now_ms) == 0)
            l->ok = true;
        else if (lim->exceeded) {
            s_doc_fail(doc, "prospect %d (line %d): %s", count, l->line, x.err);
            rc = -1;
            break;
        } else {
            s_err(l->err, sizeof l->err, "prospect %d (line %d): %s", count, l->line, x.err);
            crm_msg_clear(&l->msg);
            crm_msg_init(&l->msg, CRM_T_lead_submit);
            doc->nfailed++;
        }
    }
    if (rc == 0 && count == 0) {
        s_doc_fail(doc, "adf: no <prospect> element");
        rc = -1;
    }
    xmlFreeDoc(xdoc);
    xmlFreeParserCtxt(ctxt);
    free(src.p);
    return rc;
}

/* -------------------------------------------------------------- e-mail */

/* How deep multiparts and attached messages are followed; a feed's mail is
   two or three levels deep, a hostile one may be thousands. */
#define S_MAIL_DEPTH 16

typedef struct {
    char *text; /* decoded, in UTF-8 when utf8, else as the part's bytes */
    size_t len;
    bool utf8;
    bool xml_type; /* text/xml, application/xml, *+xml or a *.xml file */
    char label[96];
} s_part_t;

typedef struct {
    crm_leadin_doc_t *doc;
    int64_t now_ms;
    s_adf_limits_t lim; /* shared by all the ADF parts */
    int leaf; /* leaf parts seen, for "part N" */
    s_buf_t seen; /* their types, for the error when none holds ADF */
    bool oom, too_deep;
} s_mail_t;

static pthread_once_t s_gmime_once = PTHREAD_ONCE_INIT;

static void s_gmime_init(void)
{
    g_mime_init();
}

/* Converts a part's bytes from charset to UTF-8 with iconv; -1 with err
   naming the first undecodable byte. GB2312 and GBK labels are read as
   GB18030, the superset senders actually write. */
static int s_to_utf8(const char *charset, const char *in, size_t len, s_buf_t *out, char *err,
                     size_t errsz)
{
    const char *cs = g_mime_charset_iconv_name(charset);
    if (!strcasecmp(charset, "gb2312") || !strcasecmp(charset, "gbk") ||
        !strcasecmp(charset, "x-gbk") || !strcasecmp(charset, "cp936") ||
        !strcasecmp(charset, "euc-cn") || !strcasecmp(charset, "gb18030"))
        cs = "GB18030";
    iconv_t cd = iconv_open("UTF-8", cs ? cs : charset);
    if (cd == (iconv_t) -1) {
        s_err(err, errsz, "charset %.40s cannot be converted", charset);
        return -1;
    }
    char *src = (char *) in;
    size_t left = len;
    int rc = s_buf_add(out, "", 0);
    while (rc == 0 && left > 0) {
        char tmp[4096], *dst = tmp;
        size_t room = sizeof tmp;
        size_t n = iconv(cd, &src, &left, &dst, &room);
        int e = errno;
        rc = s_buf_add(out, tmp, (size_t) (dst - tmp));
        if (rc == 0 && n == (size_t) -1 && e != E2BIG) {
            s_err(err, errsz, "byte %zu is not valid %.40s", (size_t) (src - in) + 1, charset);
            rc = -2;
        }
    }
    if (rc == 0) {
        char tmp[64], *dst = tmp;
        size_t room = sizeof tmp;
        iconv(cd, NULL, NULL, &dst, &room); /* flush a stateful encoding's reset */
        rc = s_buf_add(out, tmp, (size_t) (dst - tmp));
    }
    iconv_close(cd);
    if (rc == -1)
        s_err(err, errsz, "out of memory");
    return rc ? -1 : 0;
}

/* The ADF inside a part's text: all of it, or for text/plain the span from
   the first "<?xml"/"<adf" to the last "</adf>" (a feed may wrap it in a
   greeting and a signature). NULL when there is none. */
static const char *s_adf_span(const char *t, size_t len, bool whole_only, size_t *n)
{
    if (crm_leadin_detect(t, len) == CRM_LEADIN_ADF) {
        *n = len;
        return t;
    }
    if (whole_only)
        return NULL;
    const char *start = NULL, *end = NULL;
    for (size_t i = 0; i + 6 <= len; i++) {
        if (!start && (!strncasecmp(t + i, "<?xml", 5) || !strncasecmp(t + i, "<adf", 4)))
            start = t + i;
        if (start && !strncasecmp(t + i, "</adf>", 6))
            end = t + i + 6;
    }
    if (!start || !end || crm_leadin_detect(start, (size_t) (end - start)) != CRM_LEADIN_ADF)
        return NULL;
    *n = (size_t) (end - start);
    return start;
}

/* Decodes a leaf part; 1 with *p filled when it holds ADF, 0 when it does
   not, -1 with err when it should but cannot be decoded. */
static int s_mail_leaf(s_mail_t *m, GMimeObject *obj, s_part_t *p, char *err, size_t errsz)
{
    memset(p, 0, sizeof *p);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *type = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
    type = type ? type : "text", sub = sub ? sub : "plain";
    const char *file = GMIME_IS_PART(obj) ? g_mime_part_get_filename((GMimePart *) obj) : NULL;
    size_t flen = file ? strlen(file) : 0;
    size_t slen = strlen(sub);
    bool plain = !strcasecmp(type, "text") && !strcasecmp(sub, "plain");
    p->xml_type = (!strcasecmp(sub, "xml") && (!strcasecmp(type, "text") ||
                                                !strcasecmp(type, "application"))) ||
                  (slen > 4 && !strcasecmp(sub + slen - 4, "+xml")) ||
                  (flen > 4 && !strcasecmp(file + flen - 4, ".xml"));
    m->leaf++;
    snprintf(p->label, sizeof p->label, "part %d (%.30s/%.30s)", m->leaf, type, sub);
    if (m->seen.n && s_buf_str(&m->seen, ", ") != 0)
        m->oom = true;
    if (s_buf_str(&m->seen, p->label + strlen("part ")) != 0)
        m->oom = true;
    if ((!p->xml_type && !plain) || !GMIME_IS_PART(obj))
        return 0;
    GMimeDataWrapper *w = g_mime_part_get_content((GMimePart *) obj);
    GMimeStream *mem = g_mime_stream_mem_new();
    if (!mem) {
        s_err(err, errsz, "%s: out of memory", p->label);
        return -1;
    }
    if (w && g_mime_data_wrapper_write_to_stream(w, mem) < 0) {
        g_object_unref(mem);
        s_err(err, errsz, "%s: its content cannot be decoded", p->label);
        return -1;
    }
    GByteArray *bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *) mem);
    const char *raw = bytes && bytes->data ? (const char *) bytes->data : "";
    size_t rawlen = bytes ? bytes->len : 0;
    const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
    s_buf_t text = {0};
    int rc;
    if (charset && strcasecmp(charset, "us-ascii") != 0) {
        char why[160];
        p->utf8 = true;
        rc = s_to_utf8(charset, raw, rawlen, &text, why, sizeof why);
        if (rc != 0)
            s_err(err, errsz, "%s: %s", p->label, why);
    } else {
        rc = s_buf_add(&text, raw, rawlen);
        if (rc != 0)
            s_err(err, errsz, "%s: out of memory", p->label);
    }
    g_object_unref(mem);
    if (rc != 0) {
        free(text.p);
        /* An undecodable part counts only when it looks like ADF at all. */
        return p->xml_type ? -1 : 0;
    }
    size_t n = 0;
    const char *span = s_adf_span(text.p, text.n, !plain, &n);
    if (!span) {
        free(text.p);
        return 0;
    }
    memmove(text.p, span, n);
    text.p[n] = '\0';
    p->text = text.p, p->len = n;
    return 1;
}

/* Converts one ADF part into the document, its errors prefixed with the
   part; an ADF part that cannot be read at all is one failed lead. A part
   that passes the limits of the whole message fails the message (doc->err). */
static int s_mail_adf(s_mail_t *m, const s_part_t *p)
{
    crm_leadin_doc_t *sub = s_doc_new(CRM_LEADIN_ADF, "", 0);
    if (!sub)
        return -1;
    s_adf_into(sub, p->text, p->len, m->now_ms, p->utf8 ? "UTF-8" : NULL, &m->lim);
    s_doc_settle(sub);
    int rc = 0;
    if (m->lim.exceeded)
        s_doc_fail(m->doc, "%s: %s", p->label, sub->err);
    else if (sub->err[0]) {
        crm_leadin_lead_t *l = s_doc_add(m->doc);
        if (!l)
            rc = -1;
        else {
            s_err(l->err, sizeof l->err, "%s: %s", p->label, sub->err);
            m->doc->nfailed++;
        }
    }
    for (size_t i = 0; i < sub->nleads && rc == 0; i++) {
        crm_leadin_lead_t *l = s_doc_add(m->doc);
        if (!l) {
            rc = -1;
            break;
        }
        *l = sub->leads[i];
        crm_msg_init(&sub->leads[i].msg, CRM_T_lead_submit); /* moved, not copied */
        if (!l->ok) {
            s_err(l->err, sizeof l->err, "%s: %s", p->label, sub->leads[i].err);
            m->doc->nfailed++;
        }
    }
    crm_leadin_doc_destroy(&sub);
    return rc;
}

static void s_part_free(s_part_t *p)
{
    free(p->text);
    p->text = NULL;
}

/* Walks a MIME tree depth first; in a multipart/alternative only the best
   ADF alternative counts (XML over plain text, the later over the
   earlier, as RFC 2046 orders them). */
static int s_mail_walk(s_mail_t *m, GMimeObject *obj, int depth)
{
    if (!obj || m->doc->err[0])
        return 0;
    if (depth > S_MAIL_DEPTH) {
        m->too_deep = true;
        return 0;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *inner = g_mime_message_part_get_message((GMimeMessagePart *) obj);
        return inner ? s_mail_walk(m, g_mime_message_get_mime_part(inner), depth + 1) : 0;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = (GMimeMultipart *) obj;
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
        bool alt = sub && !strcasecmp(sub, "alternative");
        int n = g_mime_multipart_get_count(mp);
        s_part_t best = {0};
        /* The reasons of alternatives that could not be decoded, each
           CRM_LEADIN_ERR_SZ bytes: failed leads only when no other
           alternative gave the ADF, which is then the same lead. */
        s_buf_t failed = {0};
        int rc = 0;
        for (int i = 0; i < n && rc == 0 && !m->doc->err[0]; i++) {
            GMimeObject *c = g_mime_multipart_get_part(mp, i);
            if (!alt || GMIME_IS_MULTIPART(c) || GMIME_IS_MESSAGE_PART(c)) {
                rc = s_mail_walk(m, c, depth + 1);
                continue;
            }
            s_part_t p;
            char err[CRM_LEADIN_ERR_SZ] = "";
            int got = s_mail_leaf(m, c, &p, err, sizeof err);
            if (got < 0)
                rc = s_buf_add(&failed, err, sizeof err);
            else if (got > 0 && (!best.text || p.xml_type || !best.xml_type)) {
                s_part_free(&best);
                best = p;
            } else
                s_part_free(&p);
        }
        for (size_t k = 0; rc == 0 && !best.text && !m->doc->err[0] && k < failed.n;
             k += CRM_LEADIN_ERR_SZ) {
            crm_leadin_lead_t *l = s_doc_add(m->doc);
            if (!l) {
                rc = -1;
                break;
            }
            snprintf(l->err, sizeof l->err, "%s", failed.p + k);
            m->doc->nfailed++;
        }
        free(failed.p);
        if (rc == 0 && best.text && !m->doc->err[0])
            rc = s_mail_adf(m, &best);
        s_part_free(&best);
        return rc;
    }
    s_part_t p;
    char err[CRM_LEADIN_ERR_SZ];
    int got = s_mail_leaf(m, obj, &p, err, sizeof err);
    int rc = 0;
    if (got < 0) {
        crm_leadin_lead_t *l = s_doc_add(m->doc);
        if (!l)
            return -1;
        snprintf(l->err, sizeof l->err, "%s", err);
        m->doc->nfailed++;
    } else if (got > 0)
        rc = s_mail_adf(m, &p);
    s_part_free(&p);
    return rc;
}

static void s_mail_into(crm_leadin_doc_t *doc, const char *data, size_t len, int64_t now_ms)
{
    pthread_once(&s_gmime_once, s_gmime_init);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = stream ? g_mime_parser_new_with_stream(stream) : NULL;
    GMimeMessage *msg = parser ? g_mime_parser_construct_message(parser, NULL) : NULL;
    if (parser)
        g_object_unref(parser);
    if (stream)
        g_object_unref(stream);
    if (!msg) {
        s_doc_fail(doc, "e-mail: not a message GMime can read");
        return;
    }
    s_mail_t m = {doc, now_ms, s_adf_limits(len), 0, {0}, false, false};
    if (s_mail_walk(&m, g_mime_message_get_mime_part(msg), 0) != 0 || m.oom)
        s_doc_fail(doc, "out of memory");
    else if (doc->err[0])
        ; /* a limit of the whole message (s_mail_adf) */
    else if (doc->nleads == 0)
        s_doc_fail(doc, "e-mail: no part holds an ADF document (parts: %s%s)",
                   m.seen.p ? m.seen.p : "none",
                   m.too_deep ? "; parts nested deeper than 16 levels are not read" : "");
    free(m.seen.p);
    g_object_unref(msg);
}

/* ------------------------------------------------------------ documents */

crm_leadin_doc_t *crm_leadin_convert(const char *data, size_t len, int64_t now_ms)
{
    if (!data)
        data = "", len = 0;
    crm_leadin_kind_t kind = len > CRM_LEADIN_DOC_MAX ? CRM_LEADIN_UNKNOWN
                                                      : crm_leadin_detect(data, len);
    crm_leadin_doc_t *doc = s_doc_new(kind, data, len);
    if (!doc)
        return NULL;
    if (len == 0)
        s_doc_fail(doc, "no input");
    else if (len > CRM_LEADIN_DOC_MAX)
        s_doc_fail(doc, "document of %zu bytes is over the limit of %d", len, CRM_LEADIN_DOC_MAX);
    else if (kind == CRM_LEADIN_JSON) {
        crm_leadin_lead_t *l = s_doc_add(doc);
        if (!l)
            s_doc_fail(doc, "out of memory");
        else if (crm_leadin_json(data, len, now_ms, &l->msg, doc->err, sizeof doc->err) == 0)
            l->ok = true, l->line = 1;
        else
            doc->nfailed++;
    } else if (kind == CRM_LEADIN_ADF) {
        s_adf_limits_t lim = s_adf_limits(len);
        s_adf_into(doc, data, len, now_ms, NULL, &lim);
    } else if (kind == CRM_LEADIN_EMAIL)
        s_mail_into(doc, data, len, now_ms);
    else
        s_doc_fail(doc, "neither a JSON lead, an ADF document nor an e-mail");
    s_doc_settle(doc);
    return doc;
}

crm_leadin_doc_t *crm_leadin_adf(const char *text, size_t len, int64_t now_ms)
{
    crm_leadin_doc_t *doc = s_doc_new(CRM_LEADIN_ADF, text ? text : "", text ? len : 0);
    if (!doc)
        return NULL;
    if (!text || len == 0)
        s_doc_fail(doc, "no input");
    else if (len > CRM_LEADIN_DOC_MAX)
        s_doc_fail(doc, "document of %zu bytes is over the limit of %d", len, CRM_LEADIN_DOC_MAX);
    else {
        s_adf_limits_t lim = s_adf_limits(len);
        s_adf_into(doc, text, len, now_ms, NULL, &lim);
    }
    s_doc_settle(doc);
    return doc;
}

void crm_leadin_doc_destroy(crm_leadin_doc_t **docp)
{
    if (!docp || !*docp)
        return;
    crm_leadin_doc_t *doc = *docp;
    for (size_t i = 0; i < doc->nleads; i++)
        crm_msg_clear(&doc->leads[i].msg);
    free(doc->leads);
    free(doc->raw);
    free(doc);
    *docp = NULL;
}

/* ----------------------------------------------------------------- CSV */

/* A column that maps to no field. */
#define S_COL_UNKNOWN (-1)

/* How a cell becomes a field. A lead's cells are taken as written (its
   special columns are told by their field: testdrive_at, phone, gender);
   a dealer record's by the column's conversion. */
typedef enum {
    S_C_TEXT = 0, /* as written (crm_msg_set_text: I64 decimal, BOOL 1/0/是/否 ...) */
    S_C_DATE,     /* a date in any common shape -> YYYY-MM-DD (crm_leadin_parse_date) */
    S_C_TIME,     /* a date-time -> ms UTC (crm_leadin_parse_datetime, or ms digits) */
    S_C_FEN,      /* yuan, "¥1,200.50" -> fen (crm_leadin_parse_fen) */
    S_C_KM,       /* "12,000km" -> 12000 (crm_leadin_parse_km) */
    S_C_FLAG,     /* 是/否, Y/N, 1/0, √/× -> 1/0 */
    S_C_GENDER,   /* crm_lead_gender, else as written */
    S_C_PHONE,    /* an untyped phone: mobile when it looks like one, else usual_phone */
    S_C_RESULT,   /* a follow-up result: 接通 -> answered ..., else as written */
    S_C_GEARBOX,  /* 手动 -> manual, 自动 -> automatic, else as written */
    S_C_GRADE     /* "H级" -> H, else as written */
} s_conv_t;

/* Header names per field, '|' separated, compared after s_fold. */
typedef struct {
    const char *field;
    const char *names;
    s_conv_t conv;
} s_alias_t;

/* Lead columns. "phone" is no field: its cells go to mobile or usual_phone
   (s_set_phone), after the typed phone columns so those win. */
static const s_alias_t s_aliases[] = {
    {"name", "姓名|客户姓名|联系人|name", S_C_TEXT},
    {"gender", "性别|gender", S_C_TEXT},
    {"birthday", "生日|出生日期|birthday", S_C_TEXT},
    {"mobile", "手机|手机号|手机号码|移动电话|mobile", S_C_TEXT},
    {"home_phone", "家庭电话|家用电话|home_phone", S_C_TEXT},
    {"office_phone", "办公电话|单位电话|office_phone", S_C_TEXT},
    {"usual_phone", "常用电话|usual_phone", S_C_TEXT},
    {"phone", "电话|联系电话|phone", S_C_TEXT},
    {"email", "邮箱|电子邮件|email", S_C_TEXT},
    {"id_number", "身份证|身份证号|身份证号码|id_number", S_C_TEXT},
    {"address", "地址|通信地址|联系地址|address", S_C_TEXT},
    {"postcode", "邮编|邮政编码|postcode", S_C_TEXT},
    {"city", "城市|city", S_C_TEXT},
    {"province", "省份|省|province", S_C_TEXT},
    {"model", "意向车型|车型|model", S_C_TEXT},
    {"intent_grade", "意向级别|意向等级|级别|intent_grade", S_C_TEXT},
    {"expected_purchase_date", "预计购买日期|预计购车时间|expected_purchase_date", S_C_TEXT},
    {"dealer_id", "经销商|经销商代码|dealer_id", S_C_TEXT},
    {"testdrive_at", "试驾时间|试驾日期|testdrive_at", S_C_TEXT},
    {"remark", "备注|remark", S_C_TEXT},
    {"vin", "车架号|底盘号|vin", S_C_TEXT},
    {"plate", "车牌|车牌号|plate", S_C_TEXT},
    {"source", "来源|source", S_C_TEXT},
    {"submission_id", "submission_id", S_C_TEXT},
};
#define S_NALIASES (sizeof s_aliases / sizeof s_aliases[0])

/* Dealer records (see crm_csv_open_records in the header). Every body field
   but dealer_id has its proto name among its names; the unit test checks
   that against messages.def. Two names of one field (金额 in yuan,
   amount_fen in fen) are two rows: the header may hold only one of them. */
static const s_alias_t s_customer_aliases[] = {
    {"record_id", "档案编号|客户档案编号|档案号|record_id", S_C_TEXT},
    {"customer_id", "客户编号|客户ID|customer_id", S_C_TEXT},
    {"name", "姓名|客户姓名|客户名称|name", S_C_TEXT},
    {"gender", "性别|gender", S_C_GENDER},
    {"birthday", "生日|出生日期|birthday", S_C_DATE},
    {"id_number", "身份证号|身份证|身份证号码|证件号码|id_number", S_C_TEXT},
    {"address", "通信地址|地址|联系地址|address", S_C_TEXT},
    {"postcode", "邮编|邮政编码|postcode", S_C_TEXT},
    {"city", "城市|city", S_C_TEXT},
    {"province", "省份|省|province", S_C_TEXT},
    {"mobile", "手机|手机号|手机号码|移动电话|mobile", S_C_TEXT},
    {"home_phone", "家用电话|家庭电话|住宅电话|home_phone", S_C_TEXT},
    {"office_phone", "办公电话|单位电话|office_phone", S_C_TEXT},
    {"usual_phone", "常用电话|usual_phone", S_C_TEXT},
    {"phone", "电话|联系电话|phone", S_C_PHONE},
    {"email", "电子邮件|邮箱|电子邮箱|email", S_C_TEXT},
    {"remark", "备注|remark", S_C_TEXT},
    {"fleet", "大客户|fleet", S_C_FLAG},
    {"vip", "VIP|重要客户|VIP客户|vip", S_C_FLAG},
    {"difficult", "黑色客户|difficult", S_C_FLAG},
    {"grade", "意向级别|意向等级|级别|grade", S_C_GRADE},
    {"expected_purchase_date", "预计购买日期|预计购车时间|预计购车日期|expected_purchase_date",
     S_C_DATE},
    {"consultant_id", "销售顾问|顾问|顾问编号|consultant_id", S_C_TEXT},
    {"vin", "底盘号|车架号|VIN码|vin", S_C_TEXT},
    {"engine_number", "发动机号|engine_number", S_C_TEXT},
    {"model", "车型|model", S_C_TEXT},
    {"transmission", "变速箱|transmission", S_C_GEARBOX},
    {"colour", "颜色|车身颜色|colour|color", S_C_TEXT},
    {"plate", "车牌号|车牌|plate", S_C_TEXT},
    {"plate_date", "上牌日期|plate_date", S_C_DATE},
    {"sale_date", "开票日期|购车日期|销售日期|sale_date", S_C_DATE},
    {"first_service_date", "首保日期|first_service_date", S_C_DATE},
    {"first_service_mileage", "首保里程|first_service_mileage", S_C_KM},
};

static const s_alias_t s_service_aliases[] = {
    {"record_id", "档案编号|记录编号|record_id", S_C_TEXT},
    {"work_order", "工单号|维修工单号|工单编号|work_order", S_C_TEXT},
    {"customer_id", "客户编号|客户ID|customer_id", S_C_TEXT},
    {"vin", "底盘号|车架号|VIN码|vin", S_C_TEXT},
    {"date", "维修日期|故障日期|进厂日期|服务日期|date", S_C_DATE},
    {"mileage", "里程|行驶里程|进厂里程|mileage", S_C_KM},
    {"work", "维修内容|维修项目|work", S_C_TEXT},
    {"amount_fen", "金额|费用|维修金额|结算金额|amount", S_C_FEN},
    {"amount_fen", "amount_fen", S_C_TEXT},
};

static const s_alias_t s_followup_aliases[] = {
    {"record_id", "档案编号|记录编号|跟进编号|record_id", S_C_TEXT},
    {"customer_id", "客户编号|客户ID|customer_id", S_C_TEXT},
    {"consultant_id", "顾问|销售顾问|顾问编号|consultant_id", S_C_TEXT},
    {"at", "跟进时间|跟进日期|at", S_C_TIME},
    {"result", "跟进结果|result", S_C_RESULT},
    {"content", "跟进内容|content", S_C_TEXT},
    {"feedback", "客户反馈|feedback", S_C_TEXT},
    {"grade", "意向级别|意向等级|级别|grade", S_C_GRADE},
    {"expected_purchase_date", "预计购买日期|预计购车时间|预计购车日期|expected_purchase_date",
     S_C_DATE},
    {"next_at", "下次跟进时间|下次跟进日期|next_at", S_C_TIME},
    {"next_content", "下次跟进内容|next_content", S_C_TEXT},
};

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Folds a header name for comparison: full-width ASCII to half-width,
   ASCII lower-case, blanks, '_' and '-' dropped, a trailing '*' (the
   "required" mark of templates) dropped. */
static void s_fold(const char *in, size_t len, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *) in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, len - i, &cp);
        if (k <= 0)
            k = 1, cp = 0xFFFD;
        if (cp >= 0xFF01 && cp <= 0xFF5E)
            cp -= 0xFEE0;
        i += (size_t) k;
        if (s_is_blank_cp(cp) || cp == '_' || cp == '-')
            continue;
        char enc[4];
        size_t el;
        if (cp < 0x80)
            enc[0] = (char) (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp), el = 1;
        else
            memcpy(enc, p + i - k, (size_t) k), el = (size_t) k;
        if (o + el + 1 > outsz)
            break;
        memcpy(out + o, enc, el);
        o += el;
    }
    while (o && out[o - 1] == '*')
        o--;
    out[o] = '\0';
}

typedef struct {
    size_t off, len;
} s_span_t;

typedef struct {
    size_t first, n; /* the spans kept */
    bool over;       /* it had more fields than r->max_fields: the rest were dropped */
} s_rec_t;

/* Fields a record may have: a header at most S_CSV_HEADER_MAX, a data row
   S_CSV_ROW_FACTOR per header column or S_CSV_ROW_MIN, whichever is more.
   Fields past the limit are not kept, so one crafted row cannot fill the
   memory; the row is a bad row. */
#define S_CSV_HEADER_MAX 4096
#define S_CSV_ROW_FACTOR 4
#define S_CSV_ROW_MIN 1024

struct crm_csv_reader_t {
    const char *data; /* the caller's bytes, or the mapped file */
    size_t len, pos;
    void *map; /* crm_csv_open's mapping, unmapped by crm_csv_close */
    size_t map_len;
    char *source;
    bool utf8;
    iconv_t cd;
    struct csv_parser parser;
    bool parser_ok, eof, failed;
    long long size, fed;
    /* libcsv hands fields to callbacks; they land here until crm_csv_next
       takes whole records out of the queue. */
    s_buf_t bytes;
    s_span_t *spans;
    size_t nspans, capspans, cur_first;
    s_rec_t *recs;
    size_t nrecs, caprecs, head;
    size_t max_fields; /* for the record being parsed (see S_CSV_HEADER_MAX) */
    bool cur_over;     /* the record being parsed passed max_fields */
    bool header_seen;  /* its first record (the header) is complete */
    bool oom;
    unsigned char delim;
    /* what it reads: lead.submit (s_aliases) or a dealer record */
    crm_type_t type;
    const s_alias_t *aliases;
    size_t naliases;
    /* the header */
    char **header; /* NULL-terminated */
    size_t ncols;
    int *target;    /* per column: index into aliases, or S_COL_UNKNOWN */
    int *alias_col; /* per alias: its column, or -1 */
    char **unknown; /* NULL-terminated */
    /* the last row */
    long row;
    char **cells; /* NULL-terminated */
    size_t ncells;
};

static void s_cb_field(void *s, size_t len, void *data)
{
    crm_csv_reader_t *r = data;
    if (r->nspans - r->cur_first >= r->max_fields) {
        r->cur_over = true;
        return;
    }
    if (r->nspans == r->capspans) {
        size_t cap = r->capspans ? r->capspans * 2 : 64;
        s_span_t *p = realloc(r->spans, cap * sizeof *p);
        if (!p) {
            r->oom = true;
            return;
        }
        r->spans = p, r->capspans = cap;
    }
    r->spans[r->nspans].off = r->bytes.n;
    r->spans[r->nspans].len = len;
    if (s_buf_add(&r->bytes, s ? s : "", s ? len : 0) != 0) {
        r->oom = true;
        return;
    }
    r->nspans++;
}

static void s_cb_record(int c, void *data)
{
    (void) c;
    crm_csv_reader_t *r = data;
    if (r->nrecs == r->caprecs) {
        size_t cap = r->caprecs ? r->caprecs * 2 : 64;
        s_rec_t *p = realloc(r->recs, cap * sizeof *p);
        if (!p) {
            r->oom = true;
            return;
        }
        r->recs = p, r->caprecs = cap;
    }
    size_t n = r->nspans - r->cur_first;
    r->recs[r->nrecs].first = r->cur_first;
    r->recs[r->nrecs].n = n;
    r->recs[r->nrecs].over = r->cur_over;
    r->nrecs++;
    r->cur_first = r->nspans;
    r->cur_over = false;
    if (!r->header_seen) {
        /* The data rows that follow in the same chunk get their limit now:
           the header's field count is its column count. */
        r->header_seen = true;
        r->max_fields = n > S_CSV_ROW_MIN / S_CSV_ROW_FACTOR ? n * S_CSV_ROW_FACTOR : S_CSV_ROW_MIN;
    }
}

/* Next raw record, or NULL at the end of the file or on a failure (then
   r->failed and err). Reads and parses chunks only when the queue is empty,
   compacting what an unfinished record left behind. */
static const s_rec_t *s_fetch(crm_csv_reader_t *r, char *err, size_t errsz)
{
    while (r->head == r->nrecs) {
        if (r->eof || r->failed)
            return NULL;
        /* Drops what the records taken used. When the unfinished record
           already starts the queue (a long row over several chunks), there
           is nothing before it to drop. */
        size_t keep = r->nspans - r->cur_first;
        if (r->cur_first > 0 || keep == 0) {
            size_t base = keep ? r->spans[r->cur_first].off : r->bytes.n;
            if (base > 0)
                memmove(r->bytes.p, r->bytes.p + base, r->bytes.n - base);
            r->bytes.n -= base;
            for (size_t k = 0; k < keep; k++) {
                r->spans[k] = r->spans[r->cur_first + k];
                r->spans[k].off -= base;
            }
        }
        r->nspans = keep, r->cur_first = 0, r->nrecs = r->head = 0;
        size_t n = r->len - r->pos < S_CHUNK ? r->len - r->pos : S_CHUNK;
        if (n > 0 && csv_parse(&r->parser, r->data + r->pos, n, s_cb_field, s_cb_record, r) != n) {
            s_err(err, errsz, "row %ld: CSV parser: %s", r->row + 1,
                  csv_strerror(csv_error(&r->parser)));
            r->failed = true;
        }
        r->pos += n;
        r->fed += (long long) n;
        if (r->pos == r->len) {
            csv_fini(&r->parser, s_cb_field, s_cb_record, r);
            r->eof = true;
        }
        if (r->oom) {
            s_err(err, errsz, "out of memory at row %ld", r->row + 1);
            r->failed = true;
        }
        if (r->failed) {
            r->eof = true;
            return NULL;
        }
    }
    return &r->recs[r->head++];
}

/* Converts one cell to UTF-8, undecodable bytes as U+FFFD (*bad set).
   Returns a malloc'ed string or NULL when out of memory. */
static char *s_decode(crm_csv_reader_t *r, const char *in, size_t len, bool *bad)
{
    /* Sized from the cell: UTF-8 stays as long unless bytes are replaced,
       GB18030 grows by half at most for its two-byte characters. */
    s_buf_t b = {0};
    size_t want = r->utf8 ? len : len + len / 2;
    if (want < len || s_buf_reserve(&b, want) != 0)
        return NULL;
    const unsigned char *p = (const unsigned char *) in;
    if (r->utf8) {
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int k = crm_utf8_next(p + i, len - i, &cp);
            if (k <= 0) {
                *bad = true;
                if (s_buf_add(&b, "\xEF\xBF\xBD", 3) != 0)
                    goto oom;
                i++;
                continue;
            }
            if (s_buf_add(&b, in + i, (size_t) k) != 0)
                goto oom;
            i += (size_t) k;
        }
        return b.p;
    }
    iconv(r->cd, NULL, NULL, NULL, NULL);
    char *src = (char *) in;
    size_t left = len;
    while (left > 0) {
        char tmp[1024], *dst = tmp;
        size_t room = sizeof tmp;
        size_t rc = iconv(r->cd, &src, &left, &dst, &room);
        int e = errno;
        if (s_buf_add(&b, tmp, (size_t) (dst - tmp)) != 0)
            goto oom;
        if (rc != (size_t) -1 || e == E2BIG)
            continue;
        *bad = true; /* EILSEQ or EINVAL: skip one byte */
        if (s_buf_add(&b, "\xEF\xBF\xBD", 3) != 0)
            goto oom;
        src++, left--;
    }
    return b.p;
oom:
    free(b.p);
    return NULL;
}

static void s_free_list(char ***list)
{
    for (char **p = *list; p && *p; p++)
        free(*p);
    free(*list);
    *list = NULL;
}

/* Decodes a record into r->cells; *bad_col gets the 1-based column of the
   first undecodable cell or 0. -1 when out of memory. */
static int s_take_cells(crm_csv_reader_t *r, const s_rec_t *rec, size_t *bad_col)
{
    s_free_list(&r->cells);
    r->ncells = 0;
    *bad_col = 0;
    if (!(r->cells = calloc(rec->n + 1, sizeof *r->cells)))
        return -1;
    for (size_t k = 0; k < rec->n; k++) {
        const s_span_t *s = &r->spans[rec->first + k];
        bool bad = false;
        if (!(r->cells[k] = s_decode(r, r->bytes.p + s->off, s->len, &bad)))
            return -1;
        r->ncells++;
        if (bad && !*bad_col)
            *bad_col = k + 1;
    }
    return 0;
}

/* Whether the whole buffer is UTF-8. */
static bool s_all_utf8(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *) data;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = crm_utf8_next(p + i, len - i, &cp);
        if (k <= 0)
            return false;
        i += (size_t) k;
    }
    return true;
}

static int s_open_header(crm_csv_reader_t *r, char *err, size_t errsz)
{
    const s_rec_t *rec = s_fetch(r, err, errsz);
    if (!rec) {
        if (!r->failed)
            s_err(err, errsz, "row 0: the file has no header row");
        return -1;
    }
    if (rec->over) {
        s_err(err, errsz, "row 0 (header): more than %d columns", S_CSV_HEADER_MAX);
        return -1;
    }
    size_t bad = 0;
    if (s_take_cells(r, rec, &bad) != 0) {
        s_err(err, errsz, "out of memory");
        return -1;
    }
    if (bad) {
        s_err(err, errsz, "row 0 (header), column %zu: bytes not valid in %s", bad,
              crm_csv_encoding(r));
        return -1;
    }
    r->header = r->cells, r->ncols = r->ncells;
    r->cells = NULL, r->ncells = 0;
    r->target = calloc(r->ncols ? r->ncols : 1, sizeof *r->target);
    r->unknown = calloc(r->ncols + 1, sizeof *r->unknown);
    r->alias_col = calloc(r->naliases, sizeof *r->alias_col);
    if (!r->target || !r->unknown || !r->alias_col) {
        s_err(err, errsz, "out of memory");
        return -1;
    }
    for (size_t a = 0; a < r->naliases; a++)
        r->alias_col[a] = -1;
    size_t nunknown = 0;
    for (size_t c = 0; c < r->ncols; c++) {
        char key[256], alias[256];
        s_fold(r->header[c], strlen(r->header[c]), key, sizeof key);
        r->target[c] = S_COL_UNKNOWN;
        for (size_t a = 0; a < r->naliases && r->target[c] == S_COL_UNKNOWN && *key; a++) {
            for (const char *p = r->aliases[a].names; *p;) {
                const char *bar = strchr(p, '|');
                size_t l = bar ? (size_t) (bar - p) : strlen(p);
                s_fold(p, l, alias, sizeof alias);
                if (!strcmp(alias, key)) {
                    r->target[c] = (int) a;
                    break;
                }
                p += l + (bar != NULL);
            }
        }
        int a = r->target[c];
        if (a == S_COL_UNKNOWN) {
            if (!(r->unknown[nunknown++] = strdup(r->header[c]))) {
                s_err(err, errsz, "out of memory");
                return -1;
            }
            continue;
        }
        /* Another column of the same field (under this name or another
           row of the same field, as 金额 and amount_fen). */
        for (size_t b = 0; b < r->naliases; b++)
            if (r->alias_col[b] >= 0 && !strcmp(r->aliases[b].field, r->aliases[a].field)) {
                s_err(err, errsz, "row 0 (header): columns %d (%s) and %zu (%s) both mean %s",
                      r->alias_col[b] + 1, r->header[r->alias_col[b]], c + 1, r->header[c],
                      r->aliases[a].field);
                return -1;
            }
        r->alias_col[a] = (int) c;
    }
    bool name = false, phone = false, any = false;
    for (size_t a = 0; a < r->naliases; a++) {
        if (r->alias_col[a] < 0)
            continue;
        const char *f = r->aliases[a].field;
        any = true;
        name |= !strcmp(f, "name");
        phone |= !strcmp(f, "mobile") || !strcmp(f, "home_phone") ||
                 !strcmp(f, "office_phone") || !strcmp(f, "usual_phone") || !strcmp(f, "phone");
    }
    if (r->type != CRM_T_lead_submit) {
        /* A record's content is the service's to judge; a header that
           names none of its fields is the wrong file. */
        if (!any) {
            s_err(err, errsz, "row 0 (header): no column is a %s field (see the column names "
                              "in tools/DEALERS.md)",
                  crm_type_name(r->type));
            return -1;
        }
        return 0;
    }
    if (!name && !phone) {
        s_err(err, errsz, "row 0 (header): no name column (姓名/name) and no phone column "
                          "(手机/mobile, 电话/phone, 家庭电话/home_phone, "
                          "办公电话/office_phone, 常用电话/usual_phone)");
        return -1;
    }
    return 0;
}

static crm_csv_reader_t *s_open_mem(const char *data, size_t len, crm_type_t type,
                                    const char *encoding, const char *name, char *err,
                                    size_t errsz)
{
    s_err(err, errsz, "%s", "");
    if (!data && len) {
        s_err(err, errsz, "no data given");
        return NULL;
    }
    crm_csv_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        s_err(err, errsz, "out of memory");
        return NULL;
    }
    r->cd = (iconv_t) -1;
    r->max_fields = S_CSV_HEADER_MAX;
    r->type = type;
    switch (type) {
    case CRM_T_lead_submit: r->aliases = s_aliases, r->naliases = S_NALIASES; break;
    case CRM_T_customer_file:
        r->aliases = s_customer_aliases, r->naliases = S_COUNT(s_customer_aliases);
        break;
    case CRM_T_service_record:
        r->aliases = s_service_aliases, r->naliases = S_COUNT(s_service_aliases);
        break;
    case CRM_T_followup_record:
        r->aliases = s_followup_aliases, r->naliases = S_COUNT(s_followup_aliases);
        break;
    default:
        s_err(err, errsz, "%s: no CSV reader for this message type", crm_type_name(type));
        free(r);
        return NULL;
    }
    r->data = data ? data : "";
    r->len = len;
    r->size = (long long) len;
    if (!(r->source = strdup(name && *name ? name : "csv"))) {
        s_err(err, errsz, "out of memory");
        goto fail;
    }
    bool bom = len >= 3 && !memcmp(r->data, "\xEF\xBB\xBF", 3);
    if (!encoding)
        r->utf8 = bom || s_all_utf8(r->data, len);
    else if (!strcasecmp(encoding, "utf-8") || !strcasecmp(encoding, "utf8"))
        r->utf8 = true;
    else if (!strcasecmp(encoding, "gbk") || !strcasecmp(encoding, "gb18030") ||
             !strcasecmp(encoding, "gb2312"))
        r->utf8 = false;
    else {
        s_err(err, errsz, "encoding: unsupported \"%s\" (utf-8, gbk, gb18030 or gb2312)",
              encoding);
        goto fail;
    }
    if (r->utf8 && bom)
        r->pos = 3;
    r->fed = (long long) r->pos;
    if (!r->utf8 && (r->cd = iconv_open("UTF-8", "GB18030")) == (iconv_t) -1) {
        s_err(err, errsz, "encoding: iconv cannot convert GB18030: %s", strerror(errno));
        goto fail;
    }
    if (csv_init(&r->parser, 0) != 0) {
        s_err(err, errsz, "out of memory");
        goto fail;
    }
    r->parser_ok = true;
    /* Dealer systems export tab-separated text: a header line with tabs and
       no comma. A tab or comma byte is never part of a GB18030 character. */
    const char *line = r->data + r->pos;
    const char *eol = memchr(line, '\n', r->len - r->pos);
    size_t ll = eol ? (size_t) (eol - line) : r->len - r->pos;
    r->delim = memchr(line, '\t', ll) && !memchr(line, ',', ll) ? '\t' : ',';
    csv_set_delim(&r->parser, r->delim);
    if (s_open_header(r, err, errsz) != 0)
        goto fail;
    return r;
fail:
    crm_csv_close(&r);
    return NULL;
}

crm_csv_reader_t *crm_csv_open_mem(const char *data, size_t len, const char *encoding,
                                   const char *name, char *err, size_t errsz)
{
    return s_open_mem(data, len, CRM_T_lead_submit, encoding, name, err, errsz);
}

crm_csv_reader_t *crm_csv_open_records_mem(const char *data, size_t len, crm_type_t type,
                                           const char *encoding, char *err, size_t errsz)
{
    if (type == CRM_T_lead_submit) {
        s_err(err, errsz, "lead.submit: open it with crm_csv_open_mem");
        return NULL;
    }
    return s_open_mem(data, len, type, encoding, NULL, err, errsz);
}

static crm_csv_reader_t *s_open_file(const char *path, crm_type_t type, const char *encoding,
                                     char *err, size_t errsz)
{
    s_err(err, errsz, "%s", "");
    if (!path) {
        s_err(err, errsz, "no file given");
        return NULL;
    }
    /* The file is mapped, not read: a 100k-row export is streamed from the
       page cache without a second copy in memory. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s_err(err, errsz, "%s: %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *map = NULL;
    size_t len = (size_t) st.st_size;
    if (len > 0 && (map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        s_err(err, errsz, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    close(fd);
    const char *base = strrchr(path, '/');
    crm_csv_reader_t *r = type == CRM_T_lead_submit
                              ? s_open_mem(map, len, type, encoding, base ? base + 1 : path, err,
                                           errsz)
                              : crm_csv_open_records_mem(map, len, type, encoding, err, errsz);
    if (!r) {
        if (map)
            munmap(map, len);
        return NULL;
    }
    r->map = map;
    r->map_len = len;
    return r;
}

crm_csv_reader_t *crm_csv_open(const char *path, const char *encoding, char *err, size_t errsz)
{
    return s_open_file(path, CRM_T_lead_submit, encoding, err, errsz);
}

crm_csv_reader_t *crm_csv_open_records(const char *path, crm_type_t type, const char *encoding,
                                       char *err, size_t errsz)
{
    if (type == CRM_T_lead_submit) {
        s_err(err, errsz, "lead.submit: open it with crm_csv_open");
        return NULL;
    }
    return s_open_file(path, type, encoding, err, errsz);
}

/* Builds the lead of the current cells; -1 with err for a bad date-time. */
static int s_row_to_lead(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, char *err,
                         size_t errsz)
{
    int rc = CRM_SET_STR(out, lead_submit, channel, "autoshow");
    bool bad = false;
    for (size_t a = 0; a < r->naliases && rc == 0 && !bad; a++) {
        int c = r->alias_col[a];
        if (c < 0)
            continue;
        size_t s, n;
        s_trim(r->cells[c], strlen(r->cells[c]), &s, &n);
        if (n == 0)
            continue;
        char *v = r->cells[c] + s;
        char save = v[n];
        v[n] = '\0';
        const char *field = r->aliases[a].field;
        if (!strcmp(field, "testdrive_at")) {
            int64_t at;
            if (crm_leadin_parse_datetime(v, &at) != 0 || !s_in_window(now_ms, at)) {
                char clip[48];
                s_err(err, errsz, "row %ld, column %d (%s): expected a date-time like "
                                  "2026-12-05 10:00, got \"%s\"",
                      r->row, c + 1, r->header[c], s_clip(v, clip));
                bad = true;
            } else {
                CRM_SET_I64(out, lead_submit, testdrive_at, at);
                CRM_SET_BOOL(out, lead_submit, testdrive, true);
            }
        } else if (!strcmp(field, "phone"))
            rc = s_set_phone(out, v);
        else if (!strcmp(field, "gender"))
            /* mapped as written in the sheet would be (and as before, so a
               row's content key stays what it was) */
            rc = s_set_once(out, field, crm_lead_gender(v) ? crm_lead_gender(v) : v);
        else
            rc = s_set_once(out, field, v);
        v[n] = save;
    }
    if (rc == 0 && !bad && !out->body.lead_submit.source)
        rc = CRM_SET_STR(out, lead_submit, source, r->source);
    if (rc == 0 && !bad && !out->body.lead_submit.submission_id)
        rc = s_content_id(out, "csv:");
    if (rc != 0)
        s_err(err, errsz, "row %ld: out of memory", r->row);
    return rc || bad ? -1 : 0;
}

/* ------------------------------------------------------ dealer records */

static bool s_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static bool s_date_exists(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 &&
           d <= mdays[m - 1] + (m == 2 && s_leap(y) ? 1 : 0);
}

/* Takes `tok` at *p when it is there. */
static bool s_take(const char **p, const char *tok)
{
    size_t n = strlen(tok);
    if (strncmp(*p, tok, n) != 0)
        return false;
    *p += n;
    return true;
}

static void s_skip_spaces(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

int crm_leadin_parse_date(const char *s, char *out, size_t outsz)
{
    if (out && outsz)
        out[0] = '\0';
    if (!s || !out || outsz < 11)
        return -1;
    const char *p = s;
    s_skip_spaces(&p);
    int y, m, d;
    size_t run = strspn(p, "0123456789");
    if (run == 8) {
        /* YYYYMMDD */
        if (s_digits(&p, 4, 4, &y) || s_digits(&p, 2, 2, &m) || s_digits(&p, 2, 2, &d))
            return -1;
    } else {
        if (run != 4 || s_digits(&p, 4, 4, &y))
            return -1;
        /* The same separator twice: - / . or 年 月 (日) */
        const char *seps[] = {"-", "/", ".", "年"};
        int k = 0;
        while (k < 4 && !s_take(&p, seps[k]))
            k++;
        if (k == 4 || s_digits(&p, 1, 2, &m))
            return -1;
        if (!s_take(&p, k == 3 ? "月" : seps[k]) || s_digits(&p, 1, 2, &d))
            return -1;
        if (k == 3)
            s_take(&p, "日");
    }
    /* Excel writes a date cell as "2026/3/5 0:00": a time after it is
       allowed and dropped, when it is one. */
    const char *date_end = p;
    s_skip_spaces(&p);
    bool spaced = p > date_end;
    if (*p && (spaced || *p == 'T')) {
        if (!spaced)
            p++;
        int h, mi, sec;
        if (s_digits(&p, 1, 2, &h) || *p++ != ':' || s_digits(&p, 2, 2, &mi) || h > 23 || mi > 59)
            return -1;
        if (*p == ':' && (p++, s_digits(&p, 2, 2, &sec) || sec > 59))
            return -1;
        if (*p == '.') {
            p++;
            if (!strspn(p, "0123456789"))
                return -1;
            p += strspn(p, "0123456789");
        }
    }
    s_skip_spaces(&p);
    if (*p || !s_date_exists(y, m, d))
        return -1;
    snprintf(out, outsz, "%04d-%02d-%02d", y, m, d);
    return 0;
}

/* Digits with optional ',' thousands separators (groups of three after the
   first), then optional '.' and decimals: *units the integer part, *frac
   the decimals as written, *nfrac their count. -1 when malformed or over
   15 integer digits. */
static int s_grouped_number(const char **pp, int64_t *units, const char **frac, size_t *nfrac)
{
    const char *p = *pp;
    int64_t v = 0;
    int digits = 0, group = 0;
    bool grouped = false;
    if (!(*p >= '0' && *p <= '9'))
        return -1;
    for (;;) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 15)
                return -1;
            v = v * 10 + (*p - '0');
            group++;
            p++;
        } else if (*p == ',' && p[1] >= '0' && p[1] <= '9') {
            if ((grouped && group != 3) || (!grouped && group > 3))
                return -1;
            grouped = true;
            group = 0;
            p++;
        } else
            break;
    }
    if (grouped && group != 3)
        return -1;
    *frac = p, *nfrac = 0;
    if (*p == '.') {
        p++;
        *frac = p;
        *nfrac = strspn(p, "0123456789");
        if (*nfrac == 0)
            return -1;
        p += *nfrac;
    }
    *units = v;
    *pp = p;
    return 0;
}

int crm_leadin_parse_fen(const char *s, int64_t *fen)
{
    if (!s || !fen)
        return -1;
    const char *p = s;
    s_skip_spaces(&p);
    bool neg = s_take(&p, "-");
    if (s_take(&p, "\xC2\xA5") || s_take(&p, "\xEF\xBF\xA5") || s_take(&p, "RMB") ||
        s_take(&p, "rmb") || s_take(&p, "CNY") || s_take(&p, "cny"))
        s_skip_spaces(&p);
    if (!neg)
        neg = s_take(&p, "-");
    int64_t units;
    const char *frac;
    size_t nfrac;
    if (s_grouped_number(&p, &units, &frac, &nfrac) != 0 || nfrac > 2)
        return -1;
    s_skip_spaces(&p);
    s_take(&p, "元");
    s_skip_spaces(&p);
    if (*p)
        return -1;
    int64_t cents = units * 100;
    if (nfrac >= 1)
        cents += (frac[0] - '0') * 10;
    if (nfrac == 2)
        cents += frac[1] - '0';
    *fen = neg ? -cents : cents;
    return 0;
}

int crm_leadin_parse_km(const char *s, int64_t *km)
{
    if (!s || !km)
        return -1;
    const char *p = s;
    s_skip_spaces(&p);
    int64_t units;
    const char *frac;
    size_t nfrac;
    if (s_grouped_number(&p, &units, &frac, &nfrac) != 0)
        return -1;
    s_skip_spaces(&p);
    if (!s_take(&p, "km") && !s_take(&p, "KM") && !s_take(&p, "Km") && !s_take(&p, "公里"))
        s_take(&p, "千米");
    s_skip_spaces(&p);
    if (*p)
        return -1;
    /* Excel's 12000.0: rounded to the nearest km */
    *km = units + (nfrac > 0 && frac[0] >= '5');
    return 0;
}

/* The hashed text of a record, as crm_leadin_content_key's for a lead. */
#define S_RK(msg, field, type, req, doc) S_RK_##type(msg, field)
#define S_RK_STR(msg, field)                                                                       \
    if (strcmp(#field, "record_id") && strcmp(#field, "dealer_id"))                                \
        s_key_str(&st, &first, #field, m->body.msg.has.field, m->body.msg.field);
#define S_RK_I64(msg, field) s_key_i64(&st, &first, #field, m->body.msg.has.field, m->body.msg.field);
#define S_RK_BOOL(msg, field)                                                                      \
    s_key_bool(&st, &first, #field, m->body.msg.has.field, m->body.msg.field);

int crm_leadin_record_key(const crm_msg_t *m, const char *prefix, char *out, size_t outsz)
{
    if (out && outsz)
        out[0] = '\0';
    if (!m || !prefix || !out || strlen(prefix) + 2 * crypto_hash_sha256_BYTES + 1 > outsz)
        return -1;
    crypto_hash_sha256_state st;
    bool first = true;
    crypto_hash_sha256_init(&st);
    const char *type = crm_type_name(m->type);
    s_key_field(&st, &first, "type", type, strlen(type));
    switch (m->type) {
    case CRM_T_customer_file: CRM_FIELDS_customer_file(S_RK) break;
    case CRM_T_service_record: CRM_FIELDS_service_record(S_RK) break;
    case CRM_T_followup_record: CRM_FIELDS_followup_record(S_RK) break;
    default: return -1;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    size_t o = strlen(prefix);
    memcpy(out, prefix, o);
    sodium_bin2hex(out + o, outsz - o, h, sizeof h);
    return 0;
}
#undef S_RK
#undef S_RK_STR
#undef S_RK_I64
#undef S_RK_BOOL

/* A cell's value looked up in "spelling|spelling=value;..." after s_fold:
   the value in found (foundsz bytes), or NULL when it is none of them. */
static const char *s_value_map(const char *v, const char *map, char *found, size_t foundsz)
{
    char key[128], alias[128];
    s_fold(v, strlen(v), key, sizeof key);
    for (const char *p = map; *p;) {
        const char *end = strchr(p, ';');
        size_t l = end ? (size_t) (end - p) : strlen(p);
        const char *eq = memchr(p, '=', l);
        if (!eq)
            return NULL;
        for (const char *q = p; q < eq;) {
            const char *bar = memchr(q, '|', (size_t) (eq - q));
            size_t n = bar ? (size_t) (bar - q) : (size_t) (eq - q);
            s_fold(q, n, alias, sizeof alias);
            if (*key && !strcmp(alias, key)) {
                size_t vl = l - (size_t) (eq + 1 - p);
                if (vl >= foundsz)
                    return NULL;
                memcpy(found, eq + 1, vl);
                found[vl] = '\0';
                return found;
            }
            q += n + (bar != NULL);
        }
        p += l + (end != NULL);
    }
    return NULL;
}

static const char *const s_results =
    "接通|已接通|电话接通|answered=answered;未接通|无人接听|无法接通|no_answer|noanswer=no_answer;"
    "到店|来店|进店|visit=visit;试驾|test_drive|testdrive=test_drive;报价|quote=quote;"
    "订单|下单|成交|订车|order=order;短信|微信|消息|message=message;其他|其它|other=other";
static const char *const s_gearboxes =
    "手动|手动挡|手动档|MT|manual=manual;"
    "自动|自动挡|自动档|手自一体|双离合|无级变速|AT|AMT|CVT|DCT|automatic=automatic";
static const char *const s_grades = "H|H级=H;A|A级=A;B|B级=B;C|C级=C";
static const char *const s_flags =
    "是|Y|yes|true|1|√|✓|✔=1;否|N|no|false|0|×|✗|✘=0";

/* Builds the record of the current cells; -1 with err naming the row and
   column of a cell that cannot be read. */
static int s_row_to_record(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, char *err,
                           size_t errsz)
{
    int rc = 0;
    bool bad = false;
    for (size_t a = 0; a < r->naliases && rc == 0 && !bad; a++) {
        int c = r->alias_col[a];
        if (c < 0)
            continue;
        size_t s, n;
        s_trim(r->cells[c], strlen(r->cells[c]), &s, &n);
        if (n == 0)
            continue;
        char *v = r->cells[c] + s;
        char save = v[n];
        v[n] = '\0';
        const char *field = r->aliases[a].field, *value = v, *want = NULL;
        char num[32], mapped[32];
        int64_t x;
        switch (r->aliases[a].conv) {
        case S_C_TEXT: break;
        case S_C_DATE:
            if (crm_leadin_parse_date(v, num, sizeof num) == 0)
                value = num;
            else if (out->type != CRM_T_customer_file)
                want = "a date like 2026-12-05, 2026/12/5, 2026.12.5 or 20261205";
            /* a customer file is the dealer's data as it stands: the
               service stores it with a finding on the date */
            break;
        case S_C_TIME:
            if (strspn(v, "0123456789") == n && n == 13)
                x = strtoll(v, NULL, 10); /* ms since the epoch, as the proto field */
            else if (crm_leadin_parse_datetime(v, &x) != 0)
                x = INT64_MIN;
            if (x == INT64_MIN || !s_in_window(now_ms, x))
                want = "a date-time like 2026-12-05 10:00 (China time), within ten years";
            else
                snprintf(num, sizeof num, "%lld", (long long) x), value = num;
            break;
        case S_C_FEN:
            if (crm_leadin_parse_fen(v, &x) == 0)
                snprintf(num, sizeof num, "%lld", (long long) x), value = num;
            else
                want = "an amount in yuan like 350.50 or ¥1,200";
            break;
        case S_C_KM:
            if (crm_leadin_parse_km(v, &x) == 0)
                snprintf(num, sizeof num, "%lld", (long long) x), value = num;
            else
                want = "a mileage in km like 12000 or 12,000km";
            break;
        case S_C_FLAG:
            if (!(value = s_value_map(v, s_flags, mapped, sizeof mapped)))
                want = "是 or 否 (Y/N, 1/0)";
            break;
        case S_C_GENDER: value = crm_lead_gender(v) ? crm_lead_gender(v) : v; break;
        case S_C_PHONE:
            /* Only a customer file has an untyped phone column; the typed
               columns come first in its table and win. */
            if (out->type != CRM_T_customer_file)
                field = "usual_phone";
            else if (s_looks_cn_mobile(v) && !out->body.customer_file.has.mobile)
                field = "mobile";
            else if (!out->body.customer_file.has.usual_phone)
                field = "usual_phone";
            else
                field = NULL;
            break;
        case S_C_RESULT:
        case S_C_GEARBOX:
        case S_C_GRADE: {
            const char *map = r->aliases[a].conv == S_C_RESULT    ? s_results
                              : r->aliases[a].conv == S_C_GEARBOX ? s_gearboxes
                                                                  : s_grades;
            if (!(value = s_value_map(v, map, mapped, sizeof mapped)))
                value = v; /* as written: the service judges it */
            break;
        }
        }
        if (want) {
            char clip[48];
            s_err(err, errsz, "row %ld, column %d (%s): expected %s, got \"%s\"", r->row, c + 1,
                  r->header[c], want, s_clip(v, clip));
            bad = true;
        } else if (field) {
            crm_err_t e;
            int set = crm_msg_set_text(out, field, value, &e);
            if (set < 0 && e.code == CRM_E_SIZE) {
                rc = -1;
            } else if (set != 0) {
                s_err(err, errsz, "row %ld, column %d (%s): %s", r->row, c + 1, r->header[c],
                      set > 0 ? "no such field" : e.text);
                bad = true;
            }
        }
        v[n] = save;
    }
    if (rc == 0 && !bad) {
        char id[CRM_LEADIN_KEY_SZ];
        crm_err_t e;
        const char *has_id = NULL;
        switch (out->type) {
        case CRM_T_customer_file: has_id = out->body.customer_file.record_id; break;
        case CRM_T_service_record: has_id = out->body.service_record.record_id; break;
        case CRM_T_followup_record: has_id = out->body.followup_record.record_id; break;
        default: break;
        }
        if (!has_id && (crm_leadin_record_key(out, "csv:", id, sizeof id) != 0 ||
                        crm_msg_set_text(out, "record_id", id, &e) != 0))
            rc = -1;
    }
    if (rc != 0)
        s_err(err, errsz, "row %ld: out of memory", r->row);
    return rc || bad ? -1 : 0;
}

int crm_csv_next(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, long *row, char *err,
                 size_t errsz)
{
    s_err(err, errsz, "%s", "");
    crm_msg_init(out, r ? r->type : CRM_T_lead_submit);
    if (!r)
        return 0;
    for (;;) {
        const s_rec_t *rec = s_fetch(r, err, errsz);
        if (!rec)
            return r->failed ? -1 : 0;
        r->row++;
        if (row)
            *row = r->row;
        size_t bad = 0;
        if (s_take_cells(r, rec, &bad) != 0) {
            s_err(err, errsz, "row %ld: out of memory", r->row);
            return -1;
        }
        if (rec->over) {
            /* Its cells are the first max_fields, for the rejects file. */
            s_err(err, errsz, "row %ld: more than %zu fields, the limit for a header of %zu "
                              "columns (%d per column, at least %d)",
                  r->row, r->max_fields, r->ncols, S_CSV_ROW_FACTOR, S_CSV_ROW_MIN);
            return -1;
        }
        bool blank = true;
        for (size_t c = 0; c < r->ncells && blank; c++) {
            size_t s, n;
            s_trim(r->cells[c], strlen(r->cells[c]), &s, &n);
            blank = n == 0;
        }
        if (blank)
            continue; /* Excel leaves rows of empty cells at the end */
        if (r->ncells != r->ncols) {
            s_err(err, errsz, "row %ld: %zu columns, the header has %zu", r->row, r->ncells,
                  r->ncols);
            return -1;
        }
        if (bad) {
            s_err(err, errsz, "row %ld, column %zu (%s): bytes not valid in %s", r->row, bad,
                  r->header[bad - 1], crm_csv_encoding(r));
            return -1;
        }
        int conv = r->type == CRM_T_lead_submit ? s_row_to_lead(r, now_ms, out, err, errsz)
                                                 : s_row_to_record(r, now_ms, out, err, errsz);
        if (conv != 0) {
            crm_msg_clear(out);
            crm_msg_init(out, r->type);
            return -1;
        }
        return 1;
    }
}

int crm_csv_set_source(crm_csv_reader_t *r, const char *source)
{
    char *copy = source ? strdup(source) : NULL;
    if (!r || (source && !copy)) {
        free(copy);
        return -1;
    }
    free(r->source);
    r->source = copy;
    return 0;
}

const char *const *crm_csv_header(const crm_csv_reader_t *r)
{
    return r ? (const char *const *) r->header : NULL;
}

const char *const *crm_csv_row_fields(const crm_csv_reader_t *r, size_t *n)
{
    if (n)
        *n = r ? r->ncells : 0;
    return r ? (const char *const *) r->cells : NULL;
}

const char *const *crm_csv_unknown_columns(const crm_csv_reader_t *r)
{
    return r ? (const char *const *) r->unknown : NULL;
}

double crm_csv_progress(const crm_csv_reader_t *r)
{
    if (!r || (r->size <= 0 && !r->eof))
        return 0.0;
    if (r->size <= 0 || r->fed >= r->size)
        return 1.0;
    return (double) r->fed / (double) r->size;
}

char crm_csv_delimiter(const crm_csv_reader_t *r)
{
    return r && r->delim ? (char) r->delim : ',';
}

const char *crm_csv_encoding(const crm_csv_reader_t *r)
{
    return r && !r->utf8 ? "GB18030" : "UTF-8";
}

void crm_csv_close(crm_csv_reader_t **rp)
{
    if (!rp || !*rp)
        return;
    crm_csv_reader_t *r = *rp;
    if (r->map)
        munmap(r->map, r->map_len);
    if (r->cd != (iconv_t) -1)
        iconv_close(r->cd);
    if (r->parser_ok)
        csv_free(&r->parser);
    free(r->source);
    free(r->bytes.p);
    free(r->spans);
    free(r->recs);
    free(r->target);
    free(r->alias_col);
    s_free_list(&r->header);
    s_free_list(&r->unknown);
    s_free_list(&r->cells);
    free(r);
    *rp = NULL;
}

/* ------------------------------------------------------------ files */

char *crm_leadin_read_file(const char *path, size_t max, size_t *len)
{
    FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!in)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    int err = 0;
    while (buf) {
        if (n == cap) {
            char *grown = cap > max ? NULL : realloc(buf, cap * 2 + 1);
            if (!grown) {
                err = cap > max ? EFBIG : ENOMEM;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        errno = 0;
        size_t got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0) {
            if (ferror(in))
                err = errno ? errno : EIO;
            break;
        }
    }
    if (!buf)
        err = ENOMEM;
    if (!err && n > max)
        err = EFBIG;
    if (in != stdin)
        fclose(in);
    if (err) {
        free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
