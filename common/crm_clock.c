#include "crm_clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static bool s_fixed;
static int64_t s_fixed_ms;

void crm_clock_set(int64_t now_ms)
{
    s_fixed = true;
    s_fixed_ms = now_ms;
}

void crm_clock_reset(void) { s_fixed = false; }

int64_t crm_now_ms(void)
{
    if (s_fixed)
        return s_fixed_ms;
    const char *path = getenv("CRM_CLOCK_FILE");
    if (path && *path) {
        FILE *f = fopen(path, "r");
        long long ms;
        if (f) {
            int ok = fscanf(f, "%lld", &ms) == 1;
            fclose(f);
            if (ok)
                return ms;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t crm_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t crm_mono_ms(void) { return crm_mono_us() / 1000; }
