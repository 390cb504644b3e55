/*  crm_str: copying C strings into fixed buffers on hot paths.
 *
 *  snprintf(out, size, "%s", in) parses its format and goes through
 *  stdio's machinery: about a thousand instructions for a short id. These
 *  do the same (cut to size - 1 bytes, always terminated) with strlen and
 *  memcpy.
 */
#ifndef CRM_STR_H
#define CRM_STR_H

#include <string.h>

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

#endif
