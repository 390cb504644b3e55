/*  crm_rate: exact two-decimal figures from integers, for reports and messages.
 *
 *  A rate is a numerator and a denominator (9 of 240 follow-ups late), printed
 *  as a percentage with two decimals rounded half up (away from zero), by
 *  integer arithmetic only: 9/240 is "3.75%", 1/20000 is "0.01%". An amount of
 *  money is kept in fen and printed in yuan: 5000 is "50.00".
 */
#ifndef CRM_RATE_H
#define CRM_RATE_H

#include <stddef.h>
#include <stdint.h>

/* "29.70%" for 297/1000 into `out`; "-" when `den` is 0. The length written
   (as snprintf), or -1 when `out` is too small (then `out` holds ""). 24
   bytes always suffice. */
int crm_rate_format(int64_t num, int64_t den, char *out, size_t size);
/* The same figure without the sign, for JSON: "29.70"; -1 (out "") when `den`
   is 0 or `out` is too small. */
int crm_rate_percent(int64_t num, int64_t den, char *out, size_t size);
/* "50.00" for 5000 fen, "-1.50" for -150; the length, or -1 when `out` is too
   small. 24 bytes always suffice. */
int crm_yuan_format(int64_t fen, char *out, size_t size);

#endif
