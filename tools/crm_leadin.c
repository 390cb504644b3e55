/*  crm_leadin: JSON, ADF and CSV leads to lead.submit. See crm_leadin.h. */
#include "crm_leadin.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <math.h> /* isfinite, a macro: no -lm */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define S_DAY_MS 86400000LL
#define S_WINDOW_MS (3660LL * S_DAY_MS) /* ten years, either side of now */
#define S_CST_OFFSET_MIN 480
#define S_CHUNK (64 * 1024)

/* ------------------------------------------------------------- helpers */

static void s_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
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

static int s_buf_str(s_buf_t *b, const char *s)
{
    return s_buf_add(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (1-4) with its code point, 0 if
   the bytes are not UTF-8, -1 if the sequence runs past n. */
static int s_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
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
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
        (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return len;
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
        int k = s_utf8_seq(p + i, len - i, &cp);
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
        int k = s_utf8_seq(p + i, n - i, &cp);
        if (k <= 0)
            return false;
        if ((cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
            (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF))
            return true;
        i += (size_t) k;
    }
    return false;
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

/* ----------------------------------------------------------- digest */

void crm_leadin_digest(const void *data, size_t len, char out[33])
{
    /* The two halves of the FNV-128 offset basis seed two FNV-1a-64 passes. */
    uint64_t h1 = 0x6c62272e07bb0142ULL, h2 = 0x62b821756295c58dULL;
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h1 = (h1 ^ p[i]) * 0x100000001b3ULL;
        h2 = (h2 ^ p[i]) * 0x100000001b3ULL;
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long) h1, (unsigned long long) h2);
}

/* "prefix" + digest of every non-empty field as "name=value\x1f" in the
   schema's order; used when a JSON or ADF lead brings no id of its own. */
static int s_content_id(crm_msg_t *m, const char *prefix)
{
    s_buf_t b = {0};
    int rc = 0;
    for (size_t i = 0; i < S_NFIELDS && rc == 0; i++) {
        const char *v = *s_slot(m, &s_fields[i]);
        if (!v || !strcmp(s_fields[i].name, "submission_id"))
            continue;
        rc |= s_buf_str(&b, s_fields[i].name) | s_buf_add(&b, "=", 1) | s_buf_str(&b, v) |
              s_buf_add(&b, "\x1f", 1);
    }
    if (rc == 0 && m->body.lead_submit.has.testdrive_at) {
        char num[40];
        snprintf(num, sizeof num, "testdrive_at=%lld\x1f",
                 (long long) m->body.lead_submit.testdrive_at);
        rc = s_buf_str(&b, num);
    }
    char id[64], hex[33];
    if (rc == 0) {
        crm_leadin_digest(b.p ? b.p : "", b.n, hex);
        snprintf(id, sizeof id, "%s%s", prefix, hex);
        rc = CRM_SET_STR(m, lead_submit, submission_id, id);
    }
    free(b.p);
    return rc;
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
    if (s_digits(&p, 4, 4, &y) || (*p != '-' && *p != '/'))
        return -1;
    char sep = *p++;
    if (s_digits(&p, 1, 2, &mo) || *p++ != sep || s_digits(&p, 1, 2, &d))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
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
            if (*p == '.' || *p == ',') {
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
        }
        while (*p == ' ')
            p++;
        if (*p == 'Z' || *p == 'z') {
            off = 0;
            p++;
        } else if (*p == '+' || *p == '-') {
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

crm_leadin_kind_t crm_leadin_detect(const char *text, size_t len)
{
    if (!text)
        return CRM_LEADIN_UNKNOWN;
    size_t i = s_skip_bom_ws(text, len, 0);
    if (i < len && text[i] == '{')
        return CRM_LEADIN_JSON;
    for (int guard = 0; guard < 64 && i < len; guard++) {
        if (len - i >= 2 && !memcmp(text + i, "<?", 2))
            i = s_skip_past(text, len, i, "?>");
        else if (len - i >= 4 && !memcmp(text + i, "<!--", 4))
            i = s_skip_past(text, len, i, "-->");
        else if (len - i >= 9 && !strncasecmp(text + i, "<!DOCTYPE", 9))
            i = s_skip_past(text, len, i, ">");
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

/* The trimmed text of n's own text and CDATA children, malloc'ed, or NULL
   when empty. Entity reference nodes are skipped on purpose: expanding them
   is how billion-laughs and external-entity documents attack a reader. */
static char *s_text_of(const xmlNode *first)
{
    s_buf_t b = {0};
    for (const xmlNode *c = first; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content &&
            s_buf_str(&b, (const char *) c->content) != 0) {
            free(b.p);
            return NULL;
        }
    if (!b.p)
        return NULL;
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

static char *s_text(const xmlNode *n)
{
    return n ? s_text_of(n->children) : NULL;
}

static char *s_attr(const xmlNode *n, const char *name)
{
    xmlAttr *a = n ? xmlHasProp(n, (const xmlChar *) name) : NULL;
    return a && a->type == XML_ATTRIBUTE_NODE ? s_text_of(a->children) : NULL;
}

static bool s_attr_is(const xmlNode *n, const char *name, const char *value)
{
    char *v = s_attr(n, name);
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

static int s_adf_name(crm_msg_t *out, const xmlNode *contact)
{
    char *full = NULL, *first = NULL, *last = NULL, *middle = NULL;
    for (xmlNode *c = contact->children; c; c = c->next) {
        if (!s_is(c, "name"))
            continue;
        char *part = s_attr(c, "part");
        char **slot = !part || !strcasecmp(part, "full") ? &full
                      : !strcasecmp(part, "first")       ? &first
                      : !strcasecmp(part, "last")        ? &last
                      : !strcasecmp(part, "middle")      ? &middle
                                                         : NULL;
        free(part);
        if (slot && !*slot)
            *slot = s_text(c);
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

static int s_adf_contact(crm_msg_t *out, const xmlNode *contact)
{
    int rc = s_adf_name(out, contact);
    for (xmlNode *c = contact->children; c && rc == 0; c = c->next) {
        if (s_is(c, "phone")) {
            char *num = s_text(c), *type = s_attr(c, "type");
            const char *t = type ? type : "voice";
            if (!num)
                ;
            else if (!strcasecmp(t, "cellphone") || !strcasecmp(t, "mobile"))
                rc = s_set_once(out, "mobile", num);
            else if (!strcasecmp(t, "home"))
                rc = s_set_once(out, "home_phone", num);
            else if (!strcasecmp(t, "work"))
                rc = s_set_once(out, "office_phone", num);
            else if (!strcasecmp(t, "fax") || !strcasecmp(t, "pager"))
                ;
            else if (s_looks_cn_mobile(num) && !s_get(out, "mobile"))
                rc = s_set_once(out, "mobile", num);
            else
                rc = s_set_once(out, "usual_phone", num);
            free(num), free(type);
        } else if (s_is(c, "email")) {
            char *v = s_text(c);
            rc = s_set_once(out, "email", v);
            free(v);
        } else if (s_is(c, "address") && !s_get(out, "address")) {
            s_buf_t street = {0};
            for (xmlNode *a = c->children; a && rc == 0; a = a->next) {
                char *v = s_text(a);
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
static int s_adf_vehicle(crm_msg_t *out, const xmlNode *v)
{
    char *interest = s_attr(v, "interest");
    bool owned = interest && (!strcasecmp(interest, "sell") || !strcasecmp(interest, "trade-in"));
    bool drive = interest && !strcasecmp(interest, "test-drive");
    free(interest);
    int rc = 0;
    if (owned) {
        char *vin = s_text(s_child(v, "vin"));
        rc = s_set_once(out, "vin", vin);
        free(vin);
        return rc;
    }
    if (drive)
        CRM_SET_BOOL(out, lead_submit, testdrive, true);
    if (!s_get(out, "model")) {
        char *make = s_text(s_child(v, "make")), *model = s_text(s_child(v, "model"));
        s_buf_t b = {0};
        rc = s_join(&b, make, false) | s_join(&b, model, false);
        if (rc == 0)
            rc = s_set_once(out, "model", b.p);
        free(b.p), free(make), free(model);
    }
    return rc;
}

static int s_adf_prospect(crm_msg_t *out, const xmlNode *pr, int64_t now_ms, char *err,
                          size_t errsz)
{
    int rc = CRM_SET_STR(out, lead_submit, channel, "partner");
    xmlNode *provider = s_child(pr, "provider"), *vendor = s_child(pr, "vendor");
    xmlNode *customer = s_child(pr, "customer");
    char *v = s_text(s_child(provider, "name"));
    if (!v)
        v = s_text(s_child(provider, "id"));
    rc |= s_set_once(out, "source", v);
    free(v);
    v = s_text(s_child(vendor, "id"));
    rc |= s_set_once(out, "dealer_id", v);
    free(v);
    for (xmlNode *c = pr->children; c && rc == 0; c = c->next)
        if (s_is(c, "vehicle"))
            rc = s_adf_vehicle(out, c);
    if (customer) {
        xmlNode *contact = NULL;
        for (xmlNode *c = customer->children; c; c = c->next)
            if (s_is(c, "contact") && (!contact || s_attr_is(c, "primarycontact", "1"))) {
                bool primary = s_attr_is(c, "primarycontact", "1");
                contact = c;
                if (primary)
                    break;
            }
        if (contact && rc == 0)
            rc = s_adf_contact(out, contact);
        v = s_text(s_child(customer, "comments"));
        rc |= s_set_once(out, "remark", v);
        free(v);
        if (rc == 0 && out->body.lead_submit.testdrive) {
            char *when = s_text(s_child(s_child(customer, "timeframe"), "earliestdate"));
            int64_t at;
            if (when && crm_leadin_parse_datetime(when, &at) != 0) {
                s_err(err, errsz, "customer/timeframe/earliestdate: expected an ISO 8601 date "
                                  "or date-time, got \"%.40s\"", when);
                rc = -2;
            } else if (when && !s_in_window(now_ms, at)) {
                s_err(err, errsz, "customer/timeframe/earliestdate: more than ten years from now");
                rc = -2;
            } else if (when)
                CRM_SET_I64(out, lead_submit, testdrive_at, at);
            free(when);
        }
    }
    if (rc == 0) {
        xmlNode *id = s_child(pr, "id");
        char *text = s_text(id), *src = s_attr(id, "source");
        if (text) {
            s_buf_t b = {0};
            rc = s_buf_str(&b, "adf:") | s_buf_str(&b, src ? src : "") | s_buf_str(&b, ":") |
                 s_buf_str(&b, text);
            if (rc == 0)
                rc = CRM_SET_STR(out, lead_submit, submission_id, b.p);
            free(b.p);
        } else
            rc = s_content_id(out, "adf:");
        free(text), free(src);
    }
    return rc;
}

/* libxml2 goes on after a well-formedness error and keeps only the last
   one, which is often a consequence ("premature end of data"); the first
   is the one to show, so the context's structured-error hook keeps it. */
typedef struct {
    int line;
    char msg[160];
} s_xml_first_t;

static void s_xml_error(void *data, xmlErrorPtr e)
{
    xmlParserCtxtPtr ctxt = data;
    s_xml_first_t *first = ctxt ? ctxt->_private : NULL;
    if (!first || !e || first->line > 0 || e->level < XML_ERR_ERROR)
        return;
    first->line = e->line > 0 ? e->line : 1;
    snprintf(first->msg, sizeof first->msg, "%s", e->message ? e->message : "not well-formed");
    size_t n = strlen(first->msg);
    while (n && (first->msg[n - 1] == '\n' || first->msg[n - 1] == ' '))
        first->msg[--n] = '\0';
}

int crm_leadin_adf(const char *text, size_t len, int64_t now_ms, crm_msg_t *out, int *prospects,
                   char *err, size_t errsz)
{
    s_err(err, errsz, "%s", "");
    crm_msg_init(out, CRM_T_lead_submit);
    if (prospects)
        *prospects = 0;
    if (!text) {
        s_err(err, errsz, "no input");
        return -1;
    }
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
        s_err(err, errsz, brc ? "out of memory" : "document too large");
        return -1;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        free(src.p);
        s_err(err, errsz, "out of memory");
        return -1;
    }
    s_xml_first_t first_error = {0, ""};
    ctxt->_private = &first_error;
    ctxt->sax->serror = s_xml_error;
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, src.p, (int) src.n, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    int rc = 0;
    if (!doc) {
        xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
        if (first_error.line == 0)
            s_xml_error(ctxt, e);
        s_err(err, errsz, "line %d: %s", first_error.line ? first_error.line : 1,
              first_error.line ? first_error.msg : "not well-formed");
        rc = -1;
    }
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (rc == 0 && !s_is(root, "adf")) {
        s_err(err, errsz, "not an ADF document (root element <%s>)",
              root ? (const char *) root->name : "none");
        rc = -1;
    }
    xmlNode *first = NULL;
    int count = 0;
    for (xmlNode *c = rc == 0 ? root->children : NULL; c; c = c->next)
        if (s_is(c, "prospect") && count++ == 0)
            first = c;
    if (prospects)
        *prospects = count;
    if (rc == 0 && !first) {
        s_err(err, errsz, "adf: no <prospect> element");
        rc = -1;
    }
    if (rc == 0 && (rc = s_adf_prospect(out, first, now_ms, err, errsz)) != 0) {
        if (rc != -2)
            s_err(err, errsz, "out of memory");
        rc = -1;
    }
    if (rc != 0) {
        crm_msg_clear(out);
        crm_msg_init(out, CRM_T_lead_submit);
    }
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    free(src.p);
    return rc;
}

/* ----------------------------------------------------------------- CSV */

/* Column targets beyond the STR fields of s_fields. */
#define S_COL_UNKNOWN (-1)
#define S_COL_TESTDRIVE_AT (-2)

/* Header names per field, '|' separated, compared after s_fold. The order
   of this table is also the order of the cells in a row's digest. */
static const struct {
    const char *field;
    const char *names;
} s_aliases[] = {
    {"name", "姓名|name"},
    {"gender", "性别|gender"},
    {"birthday", "生日|出生日期|birthday"},
    {"mobile", "手机|手机号|手机号码|移动电话|mobile"},
    {"home_phone", "家庭电话|家用电话|home_phone"},
    {"office_phone", "办公电话|单位电话|office_phone"},
    {"usual_phone", "常用电话|usual_phone"},
    {"email", "邮箱|电子邮件|email"},
    {"id_number", "身份证|身份证号|身份证号码|id_number"},
    {"address", "地址|通信地址|联系地址|address"},
    {"postcode", "邮编|邮政编码|postcode"},
    {"city", "城市|city"},
    {"province", "省份|省|province"},
    {"model", "意向车型|车型|model"},
    {"intent_grade", "意向级别|级别|intent_grade"},
    {"expected_purchase_date", "预计购买日期|expected_purchase_date"},
    {"dealer_id", "经销商|经销商代码|dealer_id"},
    {"testdrive_at", "试驾时间|试驾日期|testdrive_at"},
    {"remark", "备注|remark"},
    {"vin", "车架号|底盘号|vin"},
    {"plate", "车牌|车牌号|plate"},
    {"submission_id", "submission_id"},
};
#define S_NALIASES (sizeof s_aliases / sizeof s_aliases[0])

/* Folds a header name for comparison: full-width ASCII to half-width,
   ASCII lower-case, blanks, '_' and '-' dropped, a trailing '*' (the
   "required" mark of templates) dropped. */
static void s_fold(const char *in, size_t len, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *) in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = s_utf8_seq(p + i, len - i, &cp);
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
    size_t first, n;
} s_rec_t;

struct crm_csv_reader_t {
    FILE *f;
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
    bool oom;
    /* the header */
    char **header; /* NULL-terminated */
    size_t ncols;
    int *target; /* per column: index into s_aliases, or S_COL_UNKNOWN */
    int alias_col[S_NALIASES];
    char **unknown; /* NULL-terminated */
    /* the last row */
    long row;
    char **cells; /* NULL-terminated */
    size_t ncells;
    char chunk[S_CHUNK];
};

static void s_cb_field(void *s, size_t len, void *data)
{
    crm_csv_reader_t *r = data;
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
    r->recs[r->nrecs].first = r->cur_first;
    r->recs[r->nrecs].n = r->nspans - r->cur_first;
    r->nrecs++;
    r->cur_first = r->nspans;
}

/* Next raw record, or NULL at the end of the file or on a failure (then
   r->failed and err). Reads and parses chunks only when the queue is empty,
   compacting what an unfinished record left behind. */
static const s_rec_t *s_fetch(crm_csv_reader_t *r, char *err, size_t errsz)
{
    while (r->head == r->nrecs) {
        if (r->eof || r->failed)
            return NULL;
        size_t keep = r->nspans - r->cur_first;
        size_t base = keep ? r->spans[r->cur_first].off : r->bytes.n;
        if (base > 0)
            memmove(r->bytes.p, r->bytes.p + base, r->bytes.n - base);
        r->bytes.n -= base;
        for (size_t k = 0; k < keep; k++) {
            r->spans[k] = r->spans[r->cur_first + k];
            r->spans[k].off -= base;
        }
        r->nspans = keep, r->cur_first = 0, r->nrecs = r->head = 0;
        size_t n = fread(r->chunk, 1, sizeof r->chunk, r->f);
        if (n > 0 && csv_parse(&r->parser, r->chunk, n, s_cb_field, s_cb_record, r) != n) {
            s_err(err, errsz, "row %ld: CSV parser: %s", r->row + 1,
                  csv_strerror(csv_error(&r->parser)));
            r->failed = true;
        }
        r->fed += (long long) n;
        if (n < sizeof r->chunk) {
            if (ferror(r->f)) {
                s_err(err, errsz, "read error after row %ld", r->row);
                r->failed = true;
            } else
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
    s_buf_t b = {0};
    if (s_buf_add(&b, "", 0) != 0)
        return NULL;
    const unsigned char *p = (const unsigned char *) in;
    if (r->utf8) {
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int k = s_utf8_seq(p + i, len - i, &cp);
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

static int s_detect_utf8(FILE *f, bool *utf8, bool *bom)
{
    unsigned char buf[S_CHUNK + 4];
    size_t carry = 0, n;
    bool first = true;
    *utf8 = true, *bom = false;
    while ((n = fread(buf + carry, 1, S_CHUNK, f)) > 0 || carry) {
        size_t total = carry + n, i = 0;
        if (first && total >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
            *bom = true;
            return 0;
        }
        first = false;
        while (i < total) {
            uint32_t cp;
            int k = s_utf8_seq(buf + i, total - i, &cp);
            if (k == 0 || (k < 0 && n == 0)) {
                *utf8 = false;
                return 0;
            }
            if (k < 0)
                break;
            i += (size_t) k;
        }
        carry = total - i;
        memmove(buf, buf + i, carry);
        if (n == 0)
            break;
    }
    return ferror(f) ? -1 : 0;
}

static int s_open_header(crm_csv_reader_t *r, char *err, size_t errsz)
{
    const s_rec_t *rec = s_fetch(r, err, errsz);
    if (!rec) {
        if (!r->failed)
            s_err(err, errsz, "row 0: the file has no header row");
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
    if (!r->target || !r->unknown) {
        s_err(err, errsz, "out of memory");
        return -1;
    }
    for (size_t a = 0; a < S_NALIASES; a++)
        r->alias_col[a] = -1;
    size_t nunknown = 0;
    for (size_t c = 0; c < r->ncols; c++) {
        char key[256], alias[256];
        s_fold(r->header[c], strlen(r->header[c]), key, sizeof key);
        r->target[c] = S_COL_UNKNOWN;
        for (size_t a = 0; a < S_NALIASES && r->target[c] == S_COL_UNKNOWN && *key; a++) {
            for (const char *p = s_aliases[a].names; *p;) {
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
        } else if (r->alias_col[a] >= 0) {
            s_err(err, errsz, "row 0 (header): columns %d (%s) and %zu (%s) both mean %s",
                  r->alias_col[a] + 1, r->header[r->alias_col[a]], c + 1, r->header[c],
                  s_aliases[a].field);
            return -1;
        } else
            r->alias_col[a] = (int) c;
    }
    bool name = false, phone = false;
    for (size_t a = 0; a < S_NALIASES; a++) {
        if (r->alias_col[a] < 0)
            continue;
        const char *f = s_aliases[a].field;
        name |= !strcmp(f, "name");
        phone |= !strcmp(f, "mobile") || !strcmp(f, "home_phone") ||
                 !strcmp(f, "office_phone") || !strcmp(f, "usual_phone");
    }
    if (!name && !phone) {
        s_err(err, errsz, "row 0 (header): no name column (姓名/name) and no phone column "
                          "(手机/mobile, 家庭电话/home_phone, 办公电话/office_phone, "
                          "常用电话/usual_phone)");
        return -1;
    }
    return 0;
}

crm_csv_reader_t *crm_csv_open(const char *path, const char *encoding, char *err, size_t errsz)
{
    s_err(err, errsz, "%s", "");
    if (!path) {
        s_err(err, errsz, "no file given");
        return NULL;
    }
    crm_csv_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        s_err(err, errsz, "out of memory");
        return NULL;
    }
    r->cd = (iconv_t) -1;
    const char *base = strrchr(path, '/');
    if (!(r->source = strdup(base ? base + 1 : path))) {
        s_err(err, errsz, "out of memory");
        goto fail;
    }
    struct stat st;
    if (!(r->f = fopen(path, "rb")) || fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode)) {
        s_err(err, errsz, "%s: %s", path, r->f ? "not a regular file" : strerror(errno));
        goto fail;
    }
    r->size = (long long) st.st_size;
    bool bom = false;
    if (!encoding) {
        if (s_detect_utf8(r->f, &r->utf8, &bom) != 0) {
            s_err(err, errsz, "%s: read error", path);
            goto fail;
        }
    } else if (!strcasecmp(encoding, "utf-8") || !strcasecmp(encoding, "utf8"))
        r->utf8 = true;
    else if (!strcasecmp(encoding, "gbk") || !strcasecmp(encoding, "gb18030") ||
             !strcasecmp(encoding, "gb2312"))
        r->utf8 = false;
    else {
        s_err(err, errsz, "encoding: unsupported \"%s\" (utf-8, gbk, gb18030 or gb2312)",
              encoding);
        goto fail;
    }
    rewind(r->f);
    if (r->utf8) {
        unsigned char head[3];
        size_t n = fread(head, 1, 3, r->f);
        bom = n == 3 && !memcmp(head, "\xEF\xBB\xBF", 3);
        if (!bom)
            rewind(r->f);
    }
    r->fed = bom ? 3 : 0;
    if (!r->utf8 && (r->cd = iconv_open("UTF-8", "GB18030")) == (iconv_t) -1) {
        s_err(err, errsz, "encoding: iconv cannot convert GB18030: %s", strerror(errno));
        goto fail;
    }
    if (csv_init(&r->parser, 0) != 0) {
        s_err(err, errsz, "out of memory");
        goto fail;
    }
    r->parser_ok = true;
    if (s_open_header(r, err, errsz) != 0)
        goto fail;
    return r;
fail:
    crm_csv_close(&r);
    return NULL;
}

/* Builds the lead of the current cells; -1 with err for a bad date-time. */
static int s_row_to_lead(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, char *err,
                         size_t errsz)
{
    s_buf_t key = {0};
    int rc = CRM_SET_STR(out, lead_submit, channel, "autoshow") |
             CRM_SET_STR(out, lead_submit, source, r->source);
    const char *sid = NULL;
    for (size_t a = 0; a < S_NALIASES && rc == 0; a++) {
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
        const char *field = s_aliases[a].field;
        if (strcmp(field, "submission_id") != 0)
            rc = s_buf_str(&key, field) | s_buf_add(&key, "=", 1) | s_buf_str(&key, v) |
                 s_buf_add(&key, "\x1f", 1);
        if (!strcmp(field, "submission_id")) {
            sid = v;
            rc = CRM_SET_STR(out, lead_submit, submission_id, v);
        } else if (!strcmp(field, "testdrive_at")) {
            int64_t at;
            if (crm_leadin_parse_datetime(v, &at) != 0 || !s_in_window(now_ms, at)) {
                s_err(err, errsz, "row %ld, column %d (%s): expected a date-time like "
                                  "2026-12-05 10:00, got \"%.40s\"",
                      r->row, c + 1, r->header[c], v);
                rc = -2;
            } else {
                CRM_SET_I64(out, lead_submit, testdrive_at, at);
                CRM_SET_BOOL(out, lead_submit, testdrive, true);
            }
        } else if (!strcmp(field, "gender")) {
            const char *g = v;
            if (!strcmp(v, "男") || !strcmp(v, "先生") || !strcasecmp(v, "m") ||
                !strcasecmp(v, "male"))
                g = "male";
            else if (!strcmp(v, "女") || !strcmp(v, "女士") || !strcasecmp(v, "f") ||
                     !strcasecmp(v, "female"))
                g = "female";
            else if (!strcmp(v, "未知") || !strcmp(v, "保密") || !strcasecmp(v, "unknown"))
                g = "unknown";
            rc = s_set_once(out, field, g);
        } else
            rc = s_set_once(out, field, v);
        v[n] = save;
    }
    if (rc == 0 && !sid) {
        char hex[33], id[40];
        crm_leadin_digest(key.p ? key.p : "", key.n, hex);
        snprintf(id, sizeof id, "csv:%s", hex);
        rc = CRM_SET_STR(out, lead_submit, submission_id, id);
    }
    free(key.p);
    if (rc != 0 && rc != -2)
        s_err(err, errsz, "row %ld: out of memory", r->row);
    return rc ? -1 : 0;
}

int crm_csv_next(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, long *row, char *err,
                 size_t errsz)
{
    s_err(err, errsz, "%s", "");
    crm_msg_init(out, CRM_T_lead_submit);
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
        if (s_row_to_lead(r, now_ms, out, err, errsz) != 0) {
            crm_msg_clear(out);
            crm_msg_init(out, CRM_T_lead_submit);
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

const char *crm_csv_encoding(const crm_csv_reader_t *r)
{
    return r && !r->utf8 ? "GB18030" : "UTF-8";
}

void crm_csv_close(crm_csv_reader_t **rp)
{
    if (!rp || !*rp)
        return;
    crm_csv_reader_t *r = *rp;
    if (r->f)
        fclose(r->f);
    if (r->cd != (iconv_t) -1)
        iconv_close(r->cd);
    if (r->parser_ok)
        csv_free(&r->parser);
    free(r->source);
    free(r->bytes.p);
    free(r->spans);
    free(r->recs);
    free(r->target);
    s_free_list(&r->header);
    s_free_list(&r->unknown);
    s_free_list(&r->cells);
    free(r);
    *rp = NULL;
}
