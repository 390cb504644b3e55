/*  crm_notify_rules: when crm-notifier may send a message, as pure
 *  functions of the time, the counts and the customer's consent.
 *
 *  Time is ms since the epoch (UTC); every hour and day here is China
 *  Standard Time (crm_calendar), never UTC: 13:00 UTC is 21:00 in China.
 *
 *  The rules, in the order crm_notify_decide applies them:
 *  - a message past its not_after is dropped (expired);
 *  - a channel the customer opted out of is never used, whatever the class:
 *    critical bypasses quiet hours only, never an opt-out (DOMAIN.md:
 *    "consent and opt-out must be honoured"); marketing also needs a current
 *    opt-in (no_consent otherwise);
 *  - a not_before in the future defers to it;
 *  - quiet hours (default 21:00-08:00 for sms and call, none for email and
 *    webhook) defer to their end; critical skips them when the config says
 *    so;
 *  - a daily cap per channel (all classes counted together, critical too)
 *    defers the message to the next China day's first allowed moment;
 *  - a deferral that lands after not_after drops the message now (expired):
 *    it could never be sent.
 */
#ifndef CRM_NOTIFY_RULES_H
#define CRM_NOTIFY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ names */

typedef enum {
    CRM_CLASS_TRANSACTIONAL = 0,
    CRM_CLASS_MARKETING,
    CRM_CLASS_CRITICAL,
    CRM_CLASS_COUNT
} crm_class_t;

/* notify.request's "dealer" channel (the dealer's own system) is webhook
   here; the notifier maps it. */
typedef enum {
    CRM_CHANNEL_SMS = 0,
    CRM_CHANNEL_EMAIL,
    CRM_CHANNEL_CALL,
    CRM_CHANNEL_WEBHOOK,
    CRM_CHANNEL_COUNT
} crm_channel_t;

/* "transactional", "marketing", "critical" -> class; -1 for anything else
   (exact, lower case). */
int crm_class_parse(const char *text);
/* The class's name; "unknown" outside the enum. */
const char *crm_class_name(int cls);
/* "sms", "email", "call", "webhook" -> channel; -1 otherwise. */
int crm_channel_parse(const char *text);
const char *crm_channel_name(int channel);

/* ------------------------------------------------------------ quiet hours */

/* One window of quiet hours in China time: sending is not allowed from
   start_min (inclusive) to end_min (exclusive), minutes after 00:00 CST.
   start_min > end_min crosses midnight (21:00-08:00); off: none at all. */
typedef struct {
    bool on;
    int start_min;
    int end_min;
} crm_quiet_t;

#define CRM_QUIET_NONE ((crm_quiet_t){false, 0, 0})
#define CRM_QUIET_NIGHT ((crm_quiet_t){true, 21 * 60, 8 * 60})

/* "HH:MM-HH:MM" (each half exactly as crm_hhmm_parse takes it) or "none"
   -> window; -1 for anything else, and for a window that starts when it
   ends (empty or the whole day: neither is meant). */
int crm_quiet_parse(const char *text, crm_quiet_t *out);
/* The window back as text ("21:00-08:00", "none") into out (12 bytes). */
void crm_quiet_format(const crm_quiet_t *q, char *out, size_t size);
/* Whether `now_ms` falls inside the window. */
bool crm_quiet_in(const crm_quiet_t *q, int64_t now_ms);
/* `now_ms` itself when sending is allowed then, else the window's end: the
   first allowed moment (08:00 CST the same day at 07:59, the next day at
   21:00, for the default window). */
int64_t crm_quiet_next_allowed(const crm_quiet_t *q, int64_t now_ms);

/* ------------------------------------------------------------ the config */

typedef struct {
    crm_quiet_t quiet[CRM_CLASS_COUNT][CRM_CHANNEL_COUNT];
    bool critical_bypass;       /* critical ignores quiet hours */
    int cap[CRM_CHANNEL_COUNT]; /* messages per customer per China day; 0: no cap */
} crm_notify_config_t;

/* Quiet hours 21:00-08:00 on sms and call for every class, none on email
   and webhook; critical bypasses them; no caps. */
void crm_notify_config_default(crm_notify_config_t *cfg);
/* The window that applies to a class on a channel: CRM_QUIET_NONE's for
   critical when it bypasses. Never NULL for a class and channel in range
   (a static "none" window otherwise). */
const crm_quiet_t *crm_notify_quiet(const crm_notify_config_t *cfg, int cls, int channel);

/* ------------------------------------------------------------ daily cap */

/* The key of a customer's counter on a channel for a China day:
   "<channel>:<customer>:<YYYY-MM-DD>" into out. 0, or -1 (out "") for a
   channel out of range, an empty customer, one with ':' or a control
   character in it, or a key that does not fit. */
int crm_cap_key(int channel, const char *customer, int64_t day, char *out, size_t size);
/* When the next message may go given `count` sent so far on the China day
   of `now_ms` and a cap (0: none): `now_ms` while count < cap, else the
   next China day's first moment allowed by `q` (may be NULL: no quiet
   hours). Quiet hours at `now_ms` itself are not looked at here. */
int64_t crm_cap_next_allowed(int64_t count, int cap, const crm_quiet_t *q, int64_t now_ms);

/* ------------------------------------------------------------ opt-out */

/* Whether an SMS reply (上行) asks to opt out: after NFKC and trimming
   (crm_norm_text), and with trailing punctuation . 。 ! ！ ~ ～ removed, it
   is exactly TD, T, R (any case) or 退订. So "ＴＤ", " td " and "退订。"
   count. Anything more is false ("TDX", "退订了吗", "不要再发了", "T D"):
   the carriers' keywords are whole replies, and a question about opting
   out or a sentence is for a person to read and act on, not for a
   machine to guess. NULL and invalid UTF-8 are false. */
bool crm_optout_reply(const char *text);

/* ------------------------------------------------------------ the decision */

typedef enum { CRM_VERDICT_SEND = 0, CRM_VERDICT_DEFER, CRM_VERDICT_DROP } crm_verdict_t;

typedef enum {
    CRM_REASON_NONE = 0,
    CRM_REASON_QUIET_HOURS, /* defer */
    CRM_REASON_DAILY_CAP,   /* defer */
    CRM_REASON_NOT_BEFORE,  /* defer */
    CRM_REASON_EXPIRED,     /* drop */
    CRM_REASON_OPTED_OUT,   /* drop */
    CRM_REASON_NO_CONSENT,  /* drop */
    CRM_REASON_INVALID      /* drop: a class or channel out of range */
} crm_reason_t;

const char *crm_verdict_name(int verdict); /* "send", "defer", "drop" */
/* "none", "quiet_hours", "daily_cap", "not_before", "expired",
   "opted_out", "no_consent", "invalid". */
const char *crm_reason_name(int reason);

typedef struct {
    int cls;             /* crm_class_t */
    int channel;         /* crm_channel_t */
    int64_t not_before;  /* ms; 0: none */
    int64_t not_after;   /* ms, the last moment it may go; 0: none */
    int64_t count_today; /* sent to this customer on this channel today (CST) */
    bool opted_in;       /* a current marketing opt-in */
    bool opted_out;      /* opted out of this channel */
} crm_notify_msg_t;

typedef struct {
    crm_verdict_t verdict;
    int64_t at;          /* SEND: now; DEFER: when to look again; DROP: 0 */
    crm_reason_t reason; /* DEFER: the rule that set `at` last; DROP: why */
} crm_notify_decision_t;

/* What to do with `msg` at `now_ms`. A deferred message is to be decided
   again at `at` (consent and counts may have changed by then). */
crm_notify_decision_t crm_notify_decide(const crm_notify_config_t *cfg, const crm_notify_msg_t *msg,
                                        int64_t now_ms);

#endif
