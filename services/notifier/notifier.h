/*  crm-notifier: every message to a customer, a staff member, a dealer or
 *  the CRM department goes out here, at most once per notification id.
 *
 *  The life of a notification (keys in crm_keys.h, "Notifier"):
 *  - notify.request (or an event that implies one, testdrive.escalated) is
 *    checked, its template rendered whole, and kept as crm:notify:<N> with
 *    a compact timer "n:<N>" (intake.c);
 *  - when the timer fires, the rules decide (consent, quiet hours, caps,
 *    not-after: crm_notify_rules); a message to send is recorded as
 *    "sending" (crm:notify:inflight) BEFORE it is handed to a lane (send.c);
 *  - a lane is a thread with its own connection that runs one channel's
 *    send (email.c, sms.c, webhook.c; a call task needs no I/O: call.c),
 *    so slow I/O never holds the loop (lanes.c);
 *  - its outcome comes back to the loop and is committed: sent, a retry
 *    with backoff, a deferral (the gateway's limit), or the dead-letter
 *    stream (send.c);
 *  - on start, what is still "sending" had its outcome lost with the
 *    process: an SMS is looked up in the gateway's records first, the
 *    others are sent again with the same id (the documented window).
 *  Consent (consent.c) is an append-only ledger per customer; SMS replies
 *  TD/T/R/退订 become opt-outs; receipts become notify.delivered.
 */
#ifndef NOTIFIER_H
#define NOTIFIER_H

#include <curl/curl.h>

#include "crm_notify_rules.h"
#include "crm_service.h"
#include "crm_template.h"

#define NTF_ID_SZ 24

/* What a lane made of one attempt. */
typedef enum {
    NTF_OK = 0,     /* accepted by the gateway / server / endpoint */
    NTF_TEMP,       /* a passing failure: retry with backoff (retry_after_ms honoured) */
    NTF_PERM,       /* refused for good: dead letter */
    NTF_LIMIT,      /* the gateway's own rate limit: defer, not a failure (until_ms) */
    NTF_GONE        /* the endpoint asks to be disabled (HTTP 410) */
} ntf_outcome_t;

typedef struct ntf_job_t {
    struct ntf_job_t *next;
    char id[NTF_ID_SZ];       /* N12 */
    char *request_id;
    int channel;              /* crm_channel_t */
    int cls;
    int64_t attempt;
    bool reconcile;           /* its earlier attempt's outcome is unknown: look it up first (sms) */
    bool pull;                /* not a send: pull receipts and replies from `to` (the cursor); the
                                 gateway's answer comes back in `text` */
    char *to;                 /* mobile, e-mail address, dealer id */
    char *subject, *text, *sign, *code, *params; /* rendered */
    char *url, *secrets;      /* webhook: endpoint, whsec_ secrets (space-separated) */
    char *template_name;
    char *customer_id, *dealer_id;
    char *count_key;          /* the daily cap's counter it was counted in, or NULL */
    int64_t created_ms;
    int64_t sending_ms;       /* when this attempt was recorded as being sent */
    /* the outcome */
    ntf_outcome_t outcome;
    bool found;               /* reconcile: the gateway has it already */
    bool unknown;             /* the request went out but no answer came (timeout) */
    long status;              /* HTTP status or SMTP reply code, 0 when none */
    int64_t retry_after_ms;   /* TEMP: the peer's Retry-After, 0 when none */
    int64_t until_ms;         /* LIMIT: when to try again */
    char provider_id[128];
    char code_out[96];
    char message[256];
} ntf_job_t;

ntf_job_t *ntf_job_new(void);
void ntf_job_free(ntf_job_t *job);

/* The configuration the lanes read (set before they start, never changed). */
typedef struct {
    char smtp_url[256], mail_from[256], mail_from_name[128], smtp_user[128], smtp_pass[128];
    char unsubscribe_url[256]; /* https://...; ?n=<N>&t=<token> is added */
    char unsubscribe_key[128];
    char sms_url[256];         /* SendSms */
    char sms_query_url[256];   /* QuerySendDetails; "" when the gateway has none */
    char sms_pull_url[256];    /* receipts and replies; "" when pushed elsewhere */
    char sms_key[128];         /* AccessKeyId sent along; "" for none */
    int timeout_ms;
} ntf_lane_cfg_t;

/* One channel behind a small interface: a new channel is a new file with
   one of these. open/close run in the lane's thread; send blocks and fills
   the job's outcome. */
typedef struct {
    const char *name;
    int channel;
    void *(*open)(const ntf_lane_cfg_t *cfg);
    void (*send)(void *lane, const ntf_lane_cfg_t *cfg, ntf_job_t *job);
    void (*close)(void *lane);
} ntf_channel_t;

extern const ntf_channel_t ntf_email_channel;
extern const ntf_channel_t ntf_sms_channel;
extern const ntf_channel_t ntf_webhook_channel;

/* HTTP helpers for the lanes (http.c). */
typedef struct {
    long status;
    char *body; /* NUL-terminated, at most 64 KiB kept */
    size_t len;
    int64_t retry_after_ms;
    CURLcode rc;
    bool sent; /* the request left (so a failure after it may have been applied) */
    size_t max;      /* GET: the most of the body kept (0: 64 KiB); POST: 64 KiB */
    bool truncated;  /* the body was longer */
} ntf_http_t;
/* POSTs `body` with `content_type` and extra headers (NULL-terminated
   "Name: value"); 0 when an HTTP answer came (any status), -1 otherwise
   (res->rc, res->sent say how far it got). */
int ntf_http_post(CURL *curl, const char *url, const char *content_type, const char *const *headers,
                  const char *body, size_t len, int timeout_ms, ntf_http_t *res);
int ntf_http_get(CURL *curl, const char *url, int timeout_ms, ntf_http_t *res);
void ntf_http_clear(ntf_http_t *res);
/* Retry-After: seconds or an HTTP date -> ms from now; 0 when absent or unreadable. */
int64_t ntf_retry_after_ms(const char *value);
/* A form field appended URL-encoded ("&name=value"). */
int ntf_form_add(CURL *curl, char **form, size_t *len, const char *name, const char *value);

/* ------------------------------------------------------------ the service */

typedef struct ntf_lane_t ntf_lane_t;

typedef struct {
    crm_notify_config_t rules;
    crm_template_t **templates;
    size_t ntemplates;
    ntf_lane_cfg_t lane_cfg;
    char crm_email[256], crm_mobile[24];
    int64_t max_age_ms[CRM_CLASS_COUNT];
    int64_t retry_base_ms, retry_max_ms, max_attempts;
    int64_t disable_after_ms, rotate_ms, pull_ms;
    int64_t max_inflight, per_lane;
    char uncertain[16]; /* resend | hold */
    /* lanes */
    ntf_lane_t *lanes;
    int nlanes, nlanes_ch[CRM_CHANNEL_COUNT];
    ntf_job_t *waiting[CRM_CHANNEL_COUNT], **waiting_tail[CRM_CHANNEL_COUNT];
    int64_t inflight[CRM_CHANNEL_COUNT]; /* jobs handed out and not yet back, per channel */
    zhash_t *held;       /* notifications a job of this process holds */
    ntf_job_t *unsaved;  /* outcomes whose commit failed, tried again */
    bool stopping;
    ntf_lane_t *puller;
    bool pulling;
    int64_t pull_next_mono;
    crm_tx_t *reads, *wtx;
    bool started;
} ntf_t;

ntf_t *ntf_of(crm_service_t *svc);

/* The timer set of a channel's notifications ("notify_sms", ...), and back
   (-1: not one of ours). */
const char *ntf_set(int channel);
int ntf_set_channel(const char *set);

/* Templates (intake.c). */
const crm_template_t *ntf_template(const ntf_t *n, const char *name, int channel);

/* intake.c: notify.request and the events that imply one. */
crm_handled_t ntf_on_request(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* Reads one wake-up's requests need in two round trips (the handlers then
   only write and share one commit). */
void ntf_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n);
void ntf_prefetch_free(void);
/* All intake keeps (the prefetch, the batch's ids): on stop. */
void ntf_intake_free(void);
/* The batch's kept ids forgotten (a commit of what intake kept failed). */
void ntf_intake_forget(void);
crm_handled_t ntf_on_escalated(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* Keeps a new notification from a notify.request body (validated here) in
   `tx`; the notification's number in `id` (already there: kept as it was,
   returns 1). 0 kept, 1 known, -1 a store failure (crm_service_failed). A
   request that cannot be sent is kept as failed with notify.failed and a
   dead letter (0). */
int ntf_intake(crm_service_t *svc, crm_tx_t *tx, const crm_body_notify_request_t *b, char *id, size_t idsz);

/* send.c: the timers, the decision, the outcomes. */
crm_handled_t ntf_on_fired(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* Commits the outcomes of `n` jobs in one transaction: 0, or -1 when the
   commit failed (the caller keeps the jobs and tries again). */
int ntf_outcome(crm_service_t *svc, ntf_job_t **jobs, size_t n);
/* Jobs that never left (a stop): back to their timers, not sent, not uncertain. */
void ntf_requeue(crm_service_t *svc, ntf_job_t *jobs);
crm_handled_t ntf_req_retry(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
/* What a crash left "sending" (at start: all of crm:notify:inflight; later,
   the sweep: those no job of this process holds, older than a send's
   timeout): each is decided again (consent, quiet hours, not_after), and
   sent again only as NOTIFY.md section 6 says. */
int ntf_reconcile(crm_service_t *svc, bool sweep);
void ntf_tick_sweep(crm_service_t *svc);
/* Dead letter + notify.failed + state, in `tx`. */
void ntf_fail(crm_tx_t *tx, const char *id, const char *request_id, const char *channel, const char *reason,
              const char *field, const char *code, const char *message, int64_t attempts, bool dlq);
void ntf_log(crm_tx_t *tx, const char *id, const char *state, const char *reason, const char *code,
             int64_t attempt);
void ntf_metric(crm_tx_t *tx, const char *name, int64_t by);

/* lanes.c */
int ntf_lanes_start(crm_service_t *svc, int sms, int email, int webhook);
void ntf_lanes_stop(crm_service_t *svc);
/* Hands a job to an idle lane of its channel, or queues it. */
void ntf_lanes_submit(crm_service_t *svc, ntf_job_t *job);
/* Room for more jobs of a channel (call tasks: no limit). */
int64_t ntf_lanes_free_ch(const ntf_t *n, int channel);
/* Whether a job of this process holds the notification. */
bool ntf_held(const ntf_t *n, const char *id);
void ntf_tick_unsaved(crm_service_t *svc);
/* Starts a receipt/reply pull when one is due and none runs (a tick). */
void ntf_tick_pull(crm_service_t *svc);

/* call.c: a call task, opened in `tx` (no I/O). */
int ntf_call_open(crm_service_t *svc, crm_tx_t *tx, const redisReply *h, const char *id, char *call_id,
                  size_t size);

/* consent.c */
crm_handled_t ntf_req_consent(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
/* Appends to the ledger and sets the current state, with consent.changed. */
void ntf_consent_add(crm_tx_t *tx, const char *subject, const char *channel, const char *state,
                     const char *source, const char *text, int64_t at, const char *by);
/* The same; `current` false for an older statement (ledger only). */
void ntf_consent_add_current(crm_tx_t *tx, const char *subject, const char *channel, const char *state,
                             const char *source, const char *text, int64_t at, const char *by, bool current);
/* The receipts and replies of one pull (JSON text from the gateway), asked
   from cursor `from`. */
void ntf_apply_pull(crm_service_t *svc, const char *json, size_t len, const char *from);

/* webhook.c (the loop's side) */
crm_handled_t ntf_req_webhook(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
/* After a webhook attempt: failing_since, disabling (`disabled`: the
   dealers disabled in this batch already). */
void ntf_webhook_after(crm_service_t *svc, crm_tx_t *tx, const ntf_job_t *job, zhash_t *disabled);

#endif
