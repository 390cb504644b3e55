/*  crm_fmt: snprintf for the formats the hot paths use, without stdio.
 *
 *  glibc's snprintf sets up a FILE over the buffer and walks its format
 *  through the general printf machinery: 600 to 1,500 instructions for a
 *  key such as "crm:lead:L42" or a number. A lead went through about sixty
 *  of them in crm-intake, 29% of its instructions with 16 submitters
 *  (tests/bench/profile). crm_vfmt writes
 *  literal text, %s, %.*s, %.<n>s, %c, and the integers d, i, u and x
 *  (with h, hh, l, ll, z or j, a 0 flag and a width) itself, and hands any
 *  other conversion (floats, %p, %n, a minus flag, ...) to vsnprintf,
 *  whole. It returns what snprintf returns: the length the whole text has,
 *  of which size - 1 bytes at most are written, always terminated when
 *  size > 0.
 */
#include "crm_str.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct {
    char *out;
    size_t size, n; /* n: the length so far, written or not */
} s_out_t;

static inline void s_put(s_out_t *o, const char *s, size_t len)
{
    if (o->n + 1 < o->size) {
        size_t room = o->size - 1 - o->n, k = len < room ? len : room;
        memcpy(o->out + o->n, s, k);
    }
    o->n += len;
}

static inline void s_pad(s_out_t *o, char c, size_t count)
{
    while (count--)
        s_put(o, &c, 1);
}

/* The digits of v in base 10 or 16, at the end of buf[24]; returns where they start. */
static char *s_digits(char buf[24], uintmax_t v, unsigned base, bool upper)
{
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = buf + 24;
    do {
        *--p = set[v % base];
        v /= base;
    } while (v);
    return p;
}

int crm_vfmt(char *out, size_t size, const char *fmt, va_list ap)
{
    va_list whole;
    va_copy(whole, ap);
    s_out_t o = {out, size, 0};
    const char *f = fmt;
    while (*f) {
        const char *lit = f;
        while (*f && *f != '%')
            f++;
        if (f > lit)
            s_put(&o, lit, (size_t) (f - lit));
        if (!*f)
            break;
        f++; /* the '%' */
        if (*f == '%') {
            s_put(&o, "%", 1);
            f++;
            continue;
        }
        bool zero = false;
        size_t width = 0;
        long prec = -1;
        if (*f == '0')
            zero = true, f++;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (size_t) (*f++ - '0');
        if (*f == '.') {
            f++;
            if (*f == '*') {
                int p = va_arg(ap, int);
                prec = p < 0 ? -1 : p;
                f++;
            } else {
                prec = 0;
                while (*f >= '0' && *f <= '9')
                    prec = prec * 10 + (*f++ - '0');
            }
        }
        int len = 0; /* 1 h, 2 hh, 3 l, 4 ll, 5 z, 6 j */
        if (f[0] == 'h')
            len = f[1] == 'h' ? (f += 2, 2) : (f++, 1);
        else if (f[0] == 'l')
            len = f[1] == 'l' ? (f += 2, 4) : (f++, 3);
        else if (f[0] == 'z')
            len = 5, f++;
        else if (f[0] == 'j')
            len = 6, f++;
        char conv = *f;
        if (conv == 's' && len == 0) {
            const char *s = va_arg(ap, const char *);
            if (!s)
                goto library; /* glibc's "(null)", cut or not by a precision, its own way */
            size_t n = prec >= 0 ? strnlen(s, (size_t) prec) : strlen(s);
            if (width > n)
                s_pad(&o, ' ', width - n);
            s_put(&o, s, n);
        } else if (conv == 'c' && len == 0 && prec < 0) {
            char c = (char) va_arg(ap, int);
            if (width > 1)
                s_pad(&o, ' ', width - 1);
            s_put(&o, &c, 1);
        } else if ((conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X') && prec < 0) {
            uintmax_t v;
            bool neg = false;
            if (conv == 'd' || conv == 'i') {
                intmax_t s;
                switch (len) {
                case 0: s = va_arg(ap, int); break;
                case 1: s = (short) va_arg(ap, int); break;
                case 2: s = (signed char) va_arg(ap, int); break;
                case 3: s = va_arg(ap, long); break;
                case 4: s = va_arg(ap, long long); break;
                case 5: s = (intmax_t) va_arg(ap, ssize_t); break;
                default: s = va_arg(ap, intmax_t); break;
                }
                neg = s < 0;
                v = neg ? (uintmax_t) 0 - (uintmax_t) s : (uintmax_t) s;
            } else {
                switch (len) {
                case 0: v = va_arg(ap, unsigned); break;
                case 1: v = (unsigned short) va_arg(ap, unsigned); break;
                case 2: v = (unsigned char) va_arg(ap, unsigned); break;
                case 3: v = va_arg(ap, unsigned long); break;
                case 4: v = va_arg(ap, unsigned long long); break;
                case 5: v = va_arg(ap, size_t); break;
                default: v = va_arg(ap, uintmax_t); break;
                }
            }
            char buf[24];
            char *p = s_digits(buf, v, conv == 'x' || conv == 'X' ? 16 : 10, conv == 'X');
            size_t n = (size_t) (buf + 24 - p) + neg;
            if (width > n && !zero)
                s_pad(&o, ' ', width - n);
            if (neg)
                s_put(&o, "-", 1);
            if (width > n && zero)
                s_pad(&o, '0', width - n);
            s_put(&o, p, (size_t) (buf + 24 - p));
        } else {
            goto library; /* not one of ours */
        }
        f++;
    }
    va_end(whole);
    if (size > 0)
        out[o.n < size ? o.n : size - 1] = '\0';
    return o.n > INT32_MAX ? -1 : (int) o.n;
library:; /* the whole format by the C library, from the start */
    int r = vsnprintf(out, size, fmt, whole);
    va_end(whole);
    return r;
}

int crm_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = crm_vfmt(out, size, fmt, ap);
    va_end(ap);
    return r;
}
