/*  crm_mail: an RFC 5322 message in memory (see crm_mail.h). */
#include "crm_mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#define S_EW_PREFIX "=?UTF-8?B?"
#define S_EW_WRAP 12    /* "=?UTF-8?B?" and "?=" */
#define S_EW_LINE 76    /* a line holding encoded words (RFC 2047 §2) */
#define S_EW_BYTES 45   /* 60 base64 characters: the word stays within 75 */
#define S_PLAIN_LINE 78 /* the SHOULD of RFC 5322 §2.1.1 */
#define S_BODY_CHUNK 57 /* bytes per base64 line of 76 */

/* A growing string; once `bad` is set every later step is a no-op, so the
   builders check once at the end. */
typedef struct {
    char *data;
    size_t len, cap;
    bool bad;
} s_buf_t;

static void s_add(s_buf_t *b, const char *p, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->bad = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void s_adds(s_buf_t *b, const char *s)
{
    s_add(b, s, strlen(s));
}

/* Characters on the current (last) line so far. */
static size_t s_col(const s_buf_t *b)
{
    size_t i = b->len;
    while (i > 0 && b->data[i - 1] != '\n')
        i--;
    return b->len - i;
}

/* Length of the well-formed UTF-8 character at `p` (1 to 4), or 0: no
   overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t s_utf8_len(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        if (p[0] == 0xE0)
            lo = 0xA0;
        else if (p[0] == 0xED)
            hi = 0x9F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        if (p[0] == 0xF0)
            lo = 0x90;
        else if (p[0] == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

static bool s_utf8_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t c = s_utf8_len(p + i, n - i);
        if (!c)
            return false;
        i += c;
    }
    return true;
}

/* A header value: -1 refused (invalid UTF-8, CR, LF or another control
   character but TAB), 1 writable as it is, 0 to be encoded. Plain needs
   printable ASCII without leading or trailing space (a parser would drop
   it) and without "=?" (a reader would take it for an encoded word). */
static int s_value_kind(const char *v)
{
    size_t n = strlen(v);
    const unsigned char *u = (const unsigned char *) v;
    bool plain = true;
    for (size_t i = 0; i < n; i++) {
        if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7F)
            return -1;
        if (u[i] < 0x20 || u[i] > 0x7E)
            plain = false;
    }
    if (!s_utf8_ok(u, n))
        return -1;
    if (n && (v[0] == ' ' || v[n - 1] == ' '))
        plain = false;
    if (strstr(v, "=?"))
        plain = false;
    return plain ? 1 : 0;
}

static void s_fold(s_buf_t *b)
{
    s_add(b, "\r\n ", 3);
}

/* `v` as B encoded words from the current column on: each line at most 76,
   each word whole characters only, words folded with CRLF + space. */
static void s_words(s_buf_t *b, const char *v)
{
    const unsigned char *u = (const unsigned char *) v;
    size_t n = strlen(v);
    for (size_t i = 0; i < n && !b->bad;) {
        size_t col = s_col(b);
        size_t room = col + S_EW_WRAP + 4 <= S_EW_LINE ? (S_EW_LINE - col - S_EW_WRAP) / 4 * 3 : 0;
        if (room > S_EW_BYTES)
            room = S_EW_BYTES;
        size_t take = 0;
        while (i + take < n) {
            size_t c = s_utf8_len(u + i + take, n - i - take);
            if (!c) {
                b->bad = true;
                return;
            }
            if (take + c > room)
                break;
            take += c;
        }
        if (take == 0) {
            if (col <= 1) { /* cannot happen: a fresh line holds 45 bytes */
                b->bad = true;
                return;
            }
            s_fold(b);
            continue;
        }
        char b64[sodium_base64_ENCODED_LEN(S_EW_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, u + i, take, sodium_base64_VARIANT_ORIGINAL);
        s_adds(b, S_EW_PREFIX);
        s_adds(b, b64);
        s_adds(b, "?=");
        i += take;
        if (i < n)
            s_fold(b);
    }
}

/* Printable ASCII as it is, folded before a run of spaces where the line
   would pass 78; unfolding (removing the CRLF) gives `v` back exactly. */
static void s_plain(s_buf_t *b, const char *v)
{
    const char *p = v;
    while (*p) {
        const char *q = p;
        while (*q == ' ')
            q++;
        while (*q && *q != ' ')
            q++;
        size_t run = (size_t) (q - p);
        if (p != v && s_col(b) + run > S_PLAIN_LINE)
            s_add(b, "\r\n", 2);
        s_add(b, p, run);
        p = q;
    }
}

/* An unstructured value: plain or encoded; false when refused. */
static bool s_value(s_buf_t *b, const char *v)
{
    int kind = s_value_kind(v);
    if (kind < 0)
        return false;
    if (kind)
        s_plain(b, v);
    else
        s_words(b, v);
    return true;
}

static bool s_name_ok(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (*p < 33 || *p > 126 || *p == ':')
            return false;
    return true;
}

/* Every line ends in CRLF (no bare CR or LF) and holds at most 998. */
static bool s_lines_ok(const char *p, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r') {
            if (i + 1 >= n || p[i + 1] != '\n')
                return false;
            i++;
            col = 0;
        } else if (p[i] == '\n') {
            return false;
        } else if (++col > CRM_MAIL_LINE_MAX) {
            return false;
        }
    }
    return true;
}

/* "Name: value" into `b`, without CRLF. */
static bool s_header(s_buf_t *b, const char *name, const char *v)
{
    if (!s_name_ok(name) || !v)
        return false;
    s_adds(b, name);
    s_adds(b, ": ");
    return s_value(b, v);
}

char *crm_mail_header_new(const char *name, const char *utf8_value)
{
    s_buf_t b = {0};
    if (!s_header(&b, name, utf8_value) || b.bad || !s_lines_ok(b.data, b.len)) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

int crm_mail_header_encode(const char *name, const char *utf8_value, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    char *h = crm_mail_header_new(name, utf8_value);
    if (!h)
        return -1;
    size_t n = strlen(h);
    if (n + 1 > size || n > (size_t) INT32_MAX) {
        free(h);
        return -1;
    }
    memcpy(out, h, n + 1);
    free(h);
    return (int) n;
}

/* ------------------------------------------------------------ structured */

static bool s_atext(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5322 dot-atom-text: atoms of atext joined by single dots. */
static bool s_dot_atom_ok(const char *p, size_t n)
{
    if (n == 0 || p[0] == '.' || p[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.' ? p[i + 1] == '.' : !s_atext(p[i]))
            return false;
    }
    return true;
}

/* Minimal: printable ASCII without space and without the specials that
   would end or restructure an address; exactly one @ with text each side. */
static bool s_addr_ok(const char *a)
{
    if (!a)
        return false;
    size_t n = strlen(a), at = n, ats = 0;
    if (n == 0 || n > 254)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (a[i] < 33 || a[i] > 126 || strchr("<>()[],;:\\\"", a[i]))
            return false;
        if (a[i] == '@') {
            ats++;
            at = i;
        }
    }
    return ats == 1 && at > 0 && at + 1 < n;
}

/* "name <addr>", or "addr" alone. A name of atoms goes as it is, other
   printable ASCII as a quoted-string, the rest as encoded words. */
static bool s_mailbox(s_buf_t *b, const char *name, const char *addr)
{
    if (!s_addr_ok(addr))
        return false;
    if (!name || !*name) {
        s_adds(b, addr);
        return true;
    }
    int kind = s_value_kind(name);
    if (kind < 0)
        return false;
    size_t limit = S_PLAIN_LINE;
    if (kind == 0) {
        /* Some readers (Python's email address parser) show a space between
           adjacent encoded words in a phrase, against RFC 2047 §6.2: a name
           that fits one word on a fresh line goes there whole. */
        size_t n = strlen(name), col = s_col(b);
        size_t room = col + S_EW_WRAP < S_EW_LINE ? (S_EW_LINE - col - S_EW_WRAP) / 4 * 3 : 0;
        if (n <= S_EW_BYTES && n > room)
            s_fold(b);
        s_words(b, name);
        limit = S_EW_LINE;
    } else {
        bool atoms = true;
        for (const char *p = name; *p; p++)
            if (*p != ' ' && !s_atext(*p))
                atoms = false;
        if (atoms) {
            s_plain(b, name);
        } else {
            s_add(b, "\"", 1);
            for (const char *p = name; *p; p++) {
                if (*p == '"' || *p == '\\')
                    s_add(b, "\\", 1);
                s_add(b, p, 1);
            }
            s_add(b, "\"", 1);
        }
    }
    if (s_col(b) + strlen(addr) + 3 > limit)
        s_add(b, "\r\n", 2);
    s_adds(b, " <");
    s_adds(b, addr);
    s_adds(b, ">");
    return true;
}

/* "Sat, 05 Dec 2026 10:00:00 +0800" (RFC 5322 §3.3), English names whatever
   the locale. */
static bool s_date(s_buf_t *b, int64_t t, int tz_minutes)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (tz_minutes <= -24 * 60 || tz_minutes >= 24 * 60)
        return false;
    if (t < -2208988800LL || t > 253402300799LL) /* years 1900 to 9999 */
        return false;
    time_t local = (time_t) (t + (int64_t) tz_minutes * 60);
    struct tm tm;
    if (!gmtime_r(&local, &tm))
        return false;
    int off = tz_minutes < 0 ? -tz_minutes : tz_minutes;
    char text[64];
    snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
             tz_minutes < 0 ? '-' : '+', off / 60, off % 60);
    s_adds(b, text);
    return true;
}

/* An https or mailto URI for List-Unsubscribe: the scheme, then printable
   ASCII without space, angle brackets, quotes or commas (RFC 2369 separates
   URIs by commas). */
static bool s_uri_ok(const char *uri, const char *scheme)
{
    size_t k = strlen(scheme);
    if (!uri || strncasecmp(uri, scheme, k) != 0 || !uri[k])
        return false;
    for (const char *p = uri + k; *p; p++)
        if (*p < 33 || *p > 126 || strchr("<>\",", *p))
            return false;
    return true;
}

static bool s_unsubscribe(s_buf_t *b, const crm_mail_t *m)
{
    if (!s_uri_ok(m->unsubscribe_https, "https://"))
        return false;
    if (m->unsubscribe_mailto && !s_uri_ok(m->unsubscribe_mailto, "mailto:"))
        return false;
    s_adds(b, "List-Unsubscribe: <");
    s_adds(b, m->unsubscribe_https);
    s_adds(b, ">");
    if (m->unsubscribe_mailto) {
        s_adds(b, ",");
        if (s_col(b) + strlen(m->unsubscribe_mailto) + 3 > S_PLAIN_LINE)
            s_add(b, "\r\n", 2);
        s_adds(b, " <");
        s_adds(b, m->unsubscribe_mailto);
        s_adds(b, ">");
    }
    s_adds(b, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    return true;
}

/* The body: valid UTF-8, line ends made CRLF, base64 in lines of 76. */
static bool s_body(s_buf_t *b, const char *body)
{
    size_t n = strlen(body);
    if (!s_utf8_ok((const unsigned char *) body, n))
        return false;
    s_buf_t text = {0};
    for (size_t i = 0; i < n; i++) {
        if (body[i] == '\r' || body[i] == '\n') {
            s_add(&text, "\r\n", 2);
            if (body[i] == '\r' && body[i + 1] == '\n')
                i++;
        } else {
            s_add(&text, body + i, 1);
        }
    }
    if (text.bad) {
        free(text.data);
        return false;
    }
    char line[sodium_base64_ENCODED_LEN(S_BODY_CHUNK, sodium_base64_VARIANT_ORIGINAL)];
    for (size_t i = 0; i < text.len; i += S_BODY_CHUNK) {
        size_t k = text.len - i < S_BODY_CHUNK ? text.len - i : S_BODY_CHUNK;
        sodium_bin2base64(line, sizeof line, (const unsigned char *) text.data + i, k,
                          sodium_base64_VARIANT_ORIGINAL);
        s_adds(b, line);
        s_adds(b, "\r\n");
    }
    free(text.data);
    return true;
}

char *crm_mail_build(const crm_mail_t *m, size_t *len)
{
    if (len)
        *len = 0;
    if (!m || !m->subject || !m->body || !m->message_id || !s_addr_ok(m->from_addr))
        return NULL;
    const char *domain = m->domain ? m->domain : strchr(m->from_addr, '@') + 1;
    if (!s_dot_atom_ok(m->message_id, strlen(m->message_id)) ||
        !s_dot_atom_ok(domain, strlen(domain)))
        return NULL;

    s_buf_t b = {0};
    bool ok = true;
    s_adds(&b, "From: ");
    ok = ok && s_mailbox(&b, m->from_name, m->from_addr);
    s_adds(&b, "\r\nTo: ");
    ok = ok && s_mailbox(&b, m->to_name, m->to_addr);
    s_adds(&b, "\r\n");
    ok = ok && s_header(&b, "Subject", m->subject);
    s_adds(&b, "\r\nDate: ");
    ok = ok && s_date(&b, m->date, m->tz_minutes);
    s_adds(&b, "\r\nMessage-ID: <");
    s_adds(&b, m->message_id);
    s_adds(&b, "@");
    s_adds(&b, domain);
    s_adds(&b, ">\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: base64\r\n");
    if (m->marketing)
        ok = ok && s_unsubscribe(&b, m);
    s_adds(&b, "\r\n");
    ok = ok && s_body(&b, m->body);
    if (!ok || b.bad || !s_lines_ok(b.data, b.len)) {
        free(b.data);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}
