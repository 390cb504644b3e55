#include "crm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static char s_service[48] = "crm";
static char s_msg_id[80];
static crm_level_t s_level = CRM_LOG_INFO;

void crm_log_init(const char *service, const char *level)
{
    snprintf(s_service, sizeof s_service, "%s", service ? service : "crm");
    if (level) {
        if (!strcasecmp(level, "debug"))
            s_level = CRM_LOG_DEBUG;
        else if (!strcasecmp(level, "warn"))
            s_level = CRM_LOG_WARN;
        else if (!strcasecmp(level, "error"))
            s_level = CRM_LOG_ERROR;
        else
            s_level = CRM_LOG_INFO;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
}

void crm_log_context(const char *msg_id)
{
    if (msg_id)
        crm_log_value(msg_id, s_msg_id, sizeof s_msg_id);
    else
        s_msg_id[0] = 0;
}

void crm_log(crm_level_t level, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < s_level)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s service=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long) (tv.tv_usec / 1000), names[level], s_service);
    if (s_msg_id[0] && n > 0 && (size_t) n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t) n, " msg=%s", s_msg_id);
    if (n > 0 && (size_t) n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t) n, " event=%s", event);
    if (fmt && *fmt && n > 0 && (size_t) n < sizeof line - 1) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        n += vsnprintf(line + n, sizeof line - (size_t) n, fmt, ap);
        va_end(ap);
    }
    if (n < 0)
        return;
    if ((size_t) n >= sizeof line)
        n = sizeof line - 1;
    line[n] = 0;
    fprintf(stderr, "%s\n", line);
}

const char *crm_log_value(const char *in, char *out, size_t size)
{
    size_t i = 0;
    if (size == 0)
        return out;
    for (const unsigned char *p = (const unsigned char *) (in ? in : ""); *p && i + 1 < size; p++)
        out[i++] = (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f) ? '_' : (char) *p;
    out[i] = 0;
    return out;
}

/* Keeps `head` leading and `tail` trailing characters of the digits and
   masks the rest; short values are masked whole. */
static const char *s_mask(const char *in, char *out, size_t size, size_t head, size_t tail)
{
    char clean[128];
    crm_log_value(in, clean, sizeof clean);
    size_t len = strlen(clean);
    if (size == 0)
        return out;
    size_t i = 0;
    for (size_t k = 0; k < len && i + 1 < size; k++)
        out[i++] = (len > head + tail && (k < head || k >= len - tail)) ? clean[k] : '*';
    out[i] = 0;
    return out;
}

const char *crm_mask_phone(const char *in, char *out, size_t size)
{
    size_t len = in ? strlen(in) : 0;
    return s_mask(in, out, size, len >= 11 ? 3 : 2, 4);
}

const char *crm_mask_id(const char *in, char *out, size_t size) { return s_mask(in, out, size, 6, 4); }
