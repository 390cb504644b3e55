/*  crm_rate: exact two-decimal figures from integers (see crm_rate.h). */
#include "crm_rate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

__extension__ typedef unsigned __int128 s_u128_t;

/* |v| without overflow at INT64_MIN. */
static uint64_t s_abs(int64_t v)
{
    return v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
}

/* Prints `neg`, then `hundredths` as "I.FF", then `suffix`. The integer part
   may exceed 64 bits (a rate of INT64_MAX/1), so digits are made by hand. */
static int s_put(bool neg, s_u128_t hundredths, const char *suffix, char *out, size_t size)
{
    char digits[48];
    size_t n = 0;
    do {
        digits[n++] = (char) ('0' + (int) (hundredths % 10));
        hundredths /= 10;
    } while (hundredths || n < 3);
    size_t len = (neg ? 1 : 0) + n + 1 + strlen(suffix);
    if (len + 1 > size) {
        if (size)
            out[0] = '\0';
        return -1;
    }
    char *p = out;
    if (neg)
        *p++ = '-';
    while (n > 2)
        *p++ = digits[--n];
    *p++ = '.';
    *p++ = digits[1];
    *p++ = digits[0];
    strcpy(p, suffix);
    return (int) len;
}

/* num/den in hundredths of a percent, half up on the magnitude. */
static int s_rate(int64_t num, int64_t den, const char *suffix, char *out, size_t size)
{
    if (den == 0) {
        if (size)
            out[0] = '\0';
        return -1;
    }
    s_u128_t n = s_abs(num), d = s_abs(den);
    s_u128_t h = (n * 10000 * 2 + d) / (d * 2);
    return s_put(h && (num < 0) != (den < 0), h, suffix, out, size);
}

int crm_rate_format(int64_t num, int64_t den, char *out, size_t size)
{
    if (den == 0) {
        int n = snprintf(out, size, "-");
        return n >= 0 && (size_t) n < size ? n : -1;
    }
    return s_rate(num, den, "%", out, size);
}

int crm_rate_percent(int64_t num, int64_t den, char *out, size_t size)
{
    return s_rate(num, den, "", out, size);
}

int crm_yuan_format(int64_t fen, char *out, size_t size)
{
    return s_put(fen < 0, s_abs(fen), "", out, size);
}
