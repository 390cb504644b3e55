/*  crm_clock: the one clock every service reads.
 *
 *  Business rules ("two days before the test drive, 09:00 China time") are
 *  tested in milliseconds by setting this clock: in-process with
 *  crm_clock_set, or for a whole service by CRM_CLOCK_FILE, a file holding
 *  the current time in ms since the epoch, read on every call.
 */
#ifndef CRM_CLOCK_H
#define CRM_CLOCK_H

#include <stdint.h>

#define CRM_CST_OFFSET_MS (8LL * 3600 * 1000) /* China Standard Time, no DST */

int64_t crm_now_ms(void);
void crm_clock_set(int64_t now_ms); /* fixes the clock (tests) */
void crm_clock_reset(void);         /* back to the system clock */
/* Monotonic milliseconds for timeouts and latencies, never faked. */
int64_t crm_mono_ms(void);
int64_t crm_mono_us(void);

#endif
