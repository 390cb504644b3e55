/*  crm_str: copying C strings into fixed buffers on hot paths.
 *
 *  snprintf(out, size, "%s", in) parses its format and goes through
 *  stdio's machinery: about a thousand instructions for a short id. These
 *  do the same (cut to size - 1 bytes, always terminated) with strlen and
 *  memcpy.
 */
#ifndef CRM_STR_H
#define CRM_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

/* snprintf(out, size, fmt, ...), the same text and result, without stdio
   for the conversions the hot paths use (crm_str.c says which). */
int crm_fmt(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int crm_vfmt(char *out, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* `in` into out[size] (size >= 1), cut to fit; returns strlen(in). */
static inline size_t crm_copy(char *out, size_t size, const char *in)
{
    size_t n = strlen(in), k = n < size ? n : size - 1;
    memcpy(out, in, k);
    out[k] = '\0';
    return n;
}

/* `a`, `sep` and `b` joined into out[size], cut to fit. */
static inline void crm_join(char *out, size_t size, const char *a, char sep, const char *b)
{
    size_t n = crm_copy(out, size, a);
    if (n + 1 >= size)
        return;
    out[n] = sep;
    crm_copy(out + n + 1, size - n - 1, b);
}

/* Appends `in` to the text of length *len in out[size] (*len < size), cut
   to fit; *len becomes the new length. */
static inline void crm_cat(char *out, size_t size, size_t *len, const char *in)
{
    size_t n = strlen(in), room = size - 1 - *len, k = n < room ? n : room;
    memcpy(out + *len, in, k);
    *len += k;
    out[*len] = '\0';
}

#endif
