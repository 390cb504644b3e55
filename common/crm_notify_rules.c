#include "crm_notify_rules.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crm_cadence.h"
#include "crm_calendar.h"
#include "crm_norm.h"

#define S_MIN_MS 60000LL
#define S_DAY_MS 86400000LL

static const char *const s_classes[CRM_CLASS_COUNT] = {"transactional", "marketing", "critical"};
static const char *const s_channels[CRM_CHANNEL_COUNT] = {"sms", "email", "call", "webhook"};
static const char *const s_verdicts[] = {"send", "defer", "drop"};
static const char *const s_reasons[] = {"none",    "quiet_hours", "daily_cap",  "not_before",
                                        "expired", "opted_out",   "no_consent", "invalid"};

static int s_find(const char *const *names, int n, const char *text)
{
    for (int i = 0; text && i < n; i++)
        if (!strcmp(names[i], text))
            return i;
    return -1;
}

int crm_class_parse(const char *text)
{
    return s_find(s_classes, CRM_CLASS_COUNT, text);
}
int crm_channel_parse(const char *text)
{
    return s_find(s_channels, CRM_CHANNEL_COUNT, text);
}

const char *crm_class_name(int cls)
{
    return cls >= 0 && cls < CRM_CLASS_COUNT ? s_classes[cls] : "unknown";
}

const char *crm_channel_name(int channel)
{
    return channel >= 0 && channel < CRM_CHANNEL_COUNT ? s_channels[channel] : "unknown";
}

const char *crm_verdict_name(int verdict)
{
    return verdict >= 0 && verdict <= CRM_VERDICT_DROP ? s_verdicts[verdict] : "unknown";
}

const char *crm_reason_name(int reason)
{
    return reason >= 0 && reason <= CRM_REASON_INVALID ? s_reasons[reason] : "unknown";
}

/* ------------------------------------------------------------ quiet hours */

int crm_quiet_parse(const char *text, crm_quiet_t *out)
{
    if (!text || !out)
        return -1;
    if (!strcmp(text, "none")) {
        *out = CRM_QUIET_NONE;
        return 0;
    }
    if (strlen(text) != 11 || text[5] != '-')
        return -1;
    char a[6], b[6];
    memcpy(a, text, 5);
    memcpy(b, text + 6, 5);
    a[5] = b[5] = '\0';
    int start = crm_hhmm_parse(a), end = crm_hhmm_parse(b);
    if (start < 0 || end < 0 || start == end)
        return -1;
    *out = (crm_quiet_t){true, start, end};
    return 0;
}

void crm_quiet_format(const crm_quiet_t *q, char *out, size_t size)
{
    if (!q || !q->on)
        snprintf(out, size, "none");
    else
        snprintf(out, size, "%02d:%02d-%02d:%02d", q->start_min / 60 % 100, q->start_min % 60,
                 q->end_min / 60 % 100, q->end_min % 60);
}

bool crm_quiet_in(const crm_quiet_t *q, int64_t now_ms)
{
    if (!q || !q->on)
        return false;
    int64_t tod = now_ms - crm_cst_day_start_ms(crm_cst_day(now_ms));
    int64_t start = q->start_min * S_MIN_MS, end = q->end_min * S_MIN_MS;
    if (start < end)
        return tod >= start && tod < end;
    return tod >= start || tod < end; /* across midnight */
}

int64_t crm_quiet_next_allowed(const crm_quiet_t *q, int64_t now_ms)
{
    if (!crm_quiet_in(q, now_ms))
        return now_ms;
    int64_t day = crm_cst_day(now_ms);
    int64_t end = crm_cst_day_start_ms(day) + q->end_min * S_MIN_MS;
    /* Across midnight and past its start: it ends tomorrow. */
    return end > now_ms ? end : crm_cst_day_start_ms(day + 1) + q->end_min * S_MIN_MS;
}

/* ------------------------------------------------------------ the config */

void crm_notify_config_default(crm_notify_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int c = 0; c < CRM_CLASS_COUNT; c++)
        for (int ch = 0; ch < CRM_CHANNEL_COUNT; ch++)
            cfg->quiet[c][ch] = ch == CRM_CHANNEL_SMS || ch == CRM_CHANNEL_CALL ? CRM_QUIET_NIGHT
                                                                                : CRM_QUIET_NONE;
    cfg->critical_bypass = true;
}

const crm_quiet_t *crm_notify_quiet(const crm_notify_config_t *cfg, int cls, int channel)
{
    static const crm_quiet_t none = {false, 0, 0};
    if (!cfg || cls < 0 || cls >= CRM_CLASS_COUNT || channel < 0 || channel >= CRM_CHANNEL_COUNT)
        return &none;
    if (cls == CRM_CLASS_CRITICAL && cfg->critical_bypass)
        return &none;
    return &cfg->quiet[cls][channel];
}

/* ------------------------------------------------------------ daily cap */

int crm_cap_key(int channel, const char *customer, int64_t day, char *out, size_t size)
{
    if (!out || size == 0)
        return -1;
    out[0] = '\0';
    if (channel < 0 || channel >= CRM_CHANNEL_COUNT || !customer || !*customer)
        return -1;
    for (const unsigned char *p = (const unsigned char *) customer; *p; p++)
        if (*p == ':' || *p < 0x20 || *p == 0x7f)
            return -1;
    char date[16];
    crm_day_format(day, date, sizeof date);
    int n = snprintf(out, size, "%s:%s:%s", s_channels[channel], customer, date);
    if (n < 0 || (size_t) n >= size) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int64_t crm_cap_next_allowed(int64_t count, int cap, const crm_quiet_t *q, int64_t now_ms)
{
    if (cap <= 0 || count < cap)
        return now_ms;
    return crm_quiet_next_allowed(q, crm_cst_day_start_ms(crm_cst_day(now_ms) + 1));
}

/* ------------------------------------------------------------ opt-out */

bool crm_optout_reply(const char *text)
{
    char t[64];
    if (!text || strlen(text) >= 256 || crm_norm_text(text, t, sizeof t) != 0)
        return false;
    /* NFKC made ！ and ～ ASCII and crm_norm_text 。 a '.'. */
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == '.' || t[n - 1] == '!' || t[n - 1] == '~'))
        t[--n] = '\0';
    static const char *const words[] = {"td", "t", "r", "退订"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i]) == n && !strncasecmp(t, words[i], n))
            return true;
    return false;
}

/* ------------------------------------------------------------ the decision */

static crm_notify_decision_t s_drop(crm_reason_t why)
{
    return (crm_notify_decision_t){CRM_VERDICT_DROP, 0, why};
}

crm_notify_decision_t crm_notify_decide(const crm_notify_config_t *cfg, const crm_notify_msg_t *msg,
                                        int64_t now_ms)
{
    if (!cfg || !msg || msg->cls < 0 || msg->cls >= CRM_CLASS_COUNT || msg->channel < 0 ||
        msg->channel >= CRM_CHANNEL_COUNT)
        return s_drop(CRM_REASON_INVALID);
    if (msg->not_after && now_ms > msg->not_after)
        return s_drop(CRM_REASON_EXPIRED);
    if (msg->opted_out)
        return s_drop(CRM_REASON_OPTED_OUT);
    if (msg->cls == CRM_CLASS_MARKETING && !msg->opted_in)
        return s_drop(CRM_REASON_NO_CONSENT);

    const crm_quiet_t *q = crm_notify_quiet(cfg, msg->cls, msg->channel);
    int64_t at = now_ms;
    crm_reason_t why = CRM_REASON_NONE;
    if (msg->not_before > at) {
        at = msg->not_before;
        why = CRM_REASON_NOT_BEFORE;
    }
    int64_t t = crm_quiet_next_allowed(q, at);
    if (t != at) {
        at = t;
        why = CRM_REASON_QUIET_HOURS;
    }
    /* Today's count says nothing of a later day: there the notifier decides
       again with that day's count. */
    if (crm_cst_day(at) == crm_cst_day(now_ms)) {
        t = crm_cap_next_allowed(msg->count_today, cfg->cap[msg->channel], q, at);
        if (t != at) {
            at = t;
            why = CRM_REASON_DAILY_CAP;
        }
    }
    if (msg->not_after && at > msg->not_after)
        return s_drop(CRM_REASON_EXPIRED);
    if (why == CRM_REASON_NONE)
        return (crm_notify_decision_t){CRM_VERDICT_SEND, now_ms, CRM_REASON_NONE};
    return (crm_notify_decision_t){CRM_VERDICT_DEFER, at, why};
}
