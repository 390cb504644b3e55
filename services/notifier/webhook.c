/*  Dealer webhooks, Standard Webhooks v1 (tools/WEBHOOKS.md): the event as
 *  JSON, POSTed with webhook-id (the notification's number, the same on
 *  every retry and resend, so the dealer drops repeats), webhook-timestamp
 *  (this attempt) and webhook-signature (v1,<base64 HMAC-SHA256 of
 *  id.timestamp.body>, one per secret while a rotation overlaps).
 *
 *  2xx is delivered; 410 disables the endpoint; 408, 429 and 5xx pass
 *  (Retry-After honoured), as do no answer and a 3xx (never followed); any
 *  other 4xx is permanent. An endpoint failing for longer than
 *  --webhook-disable-after-ms is disabled and the dealer's contact told.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm_webhook.h"
#include "notifier.h"

/* ------------------------------------------------------------ the lane */

static void *s_open(const ntf_lane_cfg_t *cfg)
{
    (void) cfg;
    return curl_easy_init();
}

static void s_close(void *lane) { curl_easy_cleanup(lane); }

static char *s_body(const ntf_job_t *job, int64_t now)
{
    char ts[40];
    time_t t = (time_t) (now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char type[96];
    snprintf(type, sizeof type, "notification.%s", job->template_name ? job->template_name : "message");
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:s}", "notification_id", job->request_id, "id", job->id,
                             "template", job->template_name ? job->template_name : "", "class",
                             crm_class_name(job->cls), "text", job->text);
    if (!data)
        return NULL;
    if (job->customer_id)
        json_object_set_new(data, "customer_id", json_string(job->customer_id));
    if (job->dealer_id)
        json_object_set_new(data, "dealer_id", json_string(job->dealer_id));
    json_t *root = json_pack("{s:s, s:s, s:o}", "type", type, "timestamp", ts, "data", data);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

static void s_send(void *lane, const ntf_lane_cfg_t *cfg, ntf_job_t *job)
{
    CURL *curl = lane;
    crm_webhook_key_t keys[CRM_WEBHOOK_KEYS_MAX];
    size_t nkeys = 0;
    char *secrets = job->secrets ? strdup(job->secrets) : NULL, *save = NULL;
    for (char *s = secrets ? strtok_r(secrets, " ", &save) : NULL; s && nkeys < CRM_WEBHOOK_KEYS_MAX;
         s = strtok_r(NULL, " ", &save))
        if (crm_webhook_secret_parse(s, &keys[nkeys]) == 0)
            nkeys++;
    if (secrets)
        sodium_memzero(secrets, strlen(secrets));
    free(secrets);
    int64_t now = crm_now_ms();
    char *body = s_body(job, now);
    char wid[NTF_ID_SZ + 8];
    snprintf(wid, sizeof wid, "ntf_%s", job->id);
    crm_webhook_headers_t h;
    if (!nkeys || !body || !job->url ||
        crm_webhook_sign(wid, now / 1000, body, strlen(body), keys, nkeys, &h) != 0) {
        sodium_memzero(keys, sizeof keys);
        free(body);
        job->outcome = NTF_PERM;
        snprintf(job->message, sizeof job->message, "%s", !nkeys ? "the dealer's webhook secret is unreadable"
                                                                   : "the webhook cannot be built");
        return;
    }
    sodium_memzero(keys, sizeof keys);
    char h1[CRM_WEBHOOK_ID_MAX + 20], h2[48], h3[CRM_WEBHOOK_SIG_SZ + 24];
    snprintf(h1, sizeof h1, "webhook-id: %s", h.id);
    snprintf(h2, sizeof h2, "webhook-timestamp: %s", h.timestamp);
    snprintf(h3, sizeof h3, "webhook-signature: %s", h.signature);
    const char *hdrs[] = {h1, h2, h3, "User-Agent: autocrm-notifier/1", NULL};
    ntf_http_t res;
    int rc = ntf_http_post(curl, job->url, "application/json", hdrs, body, strlen(body), cfg->timeout_ms, &res);
    free(body);
    job->status = res.status;
    snprintf(job->provider_id, sizeof job->provider_id, "%s", wid);
    if (rc != 0) {
        job->outcome = NTF_TEMP;
        job->unknown = res.sent;
        snprintf(job->message, sizeof job->message, "%s", curl_easy_strerror(res.rc));
        snprintf(job->code_out, sizeof job->code_out, "no_answer");
    } else if (res.status >= 200 && res.status < 300)
        job->outcome = NTF_OK;
    else if (res.status == 410) {
        job->outcome = NTF_GONE;
        snprintf(job->message, sizeof job->message, "HTTP 410: the endpoint asks to be disabled");
    } else if (res.status == 408 || res.status == 429 || res.status >= 500 || (res.status >= 300 && res.status < 400)) {
        job->outcome = NTF_TEMP;
        job->retry_after_ms = res.retry_after_ms;
        snprintf(job->message, sizeof job->message, "HTTP %ld", res.status);
    } else {
        job->outcome = NTF_PERM;
        snprintf(job->message, sizeof job->message, "HTTP %ld", res.status);
    }
    ntf_http_clear(&res);
}

const ntf_channel_t ntf_webhook_channel = {"webhook", CRM_CHANNEL_WEBHOOK, s_open, s_send, s_close};

/* ------------------------------------------------------------ the loop's side */

static void s_changed(crm_tx_t *tx, const char *dealer, const char *state, const char *url, const char *reason,
                      int64_t failing_since)
{
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_webhook_changed);
    CRM_SET_STR(&ev, webhook_changed, dealer_id, dealer);
    CRM_SET_STR(&ev, webhook_changed, state, state);
    if (url)
        CRM_SET_STR(&ev, webhook_changed, url, url);
    if (reason)
        CRM_SET_STR(&ev, webhook_changed, reason, reason);
    if (failing_since)
        CRM_SET_I64(&ev, webhook_changed, failing_since, failing_since);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

/* The dealer's contact is told its endpoint was disabled, by e-mail and
   SMS where known (templates webhook_disabled). */
static void s_tell_contact(crm_service_t *svc, crm_tx_t *tx, const char *dealer, const redisReply *w, const char *url,
                           int64_t failing_since)
{
    const char *contacts[2] = {crm_reply_field(w, "contact_email"), crm_reply_field(w, "contact_mobile")};
    const char *channels[2] = {"email", "sms"};
    for (int i = 0; i < 2; i++) {
        if (!contacts[i] || !*contacts[i])
            continue;
        crm_msg_t m;
        crm_msg_init(&m, CRM_T_notify_request);
        char rid[160], p1[80], p2[300], id[NTF_ID_SZ];
        /* one per run of failures: the same id if it is decided twice */
        snprintf(rid, sizeof rid, "webhook_disabled:%s:%lld:%s", dealer, (long long) failing_since, channels[i]);
        snprintf(p1, sizeof p1, "dealer_id=%s", dealer);
        snprintf(p2, sizeof p2, "url=%s", url ? url : "");
        CRM_SET_STR(&m, notify_request, request_id, rid);
        CRM_SET_STR(&m, notify_request, channel, channels[i]);
        CRM_SET_STR(&m, notify_request, to, contacts[i]);
        CRM_SET_STR(&m, notify_request, template, "webhook_disabled");
        CRM_SET_STR(&m, notify_request, recipient, "dealer");
        CRM_SET_STR(&m, notify_request, dealer_id, dealer);
        crm_strs_push(&m.body.notify_request.params, p1);
        crm_strs_push(&m.body.notify_request.params, p2);
        m.body.notify_request.has.params = true;
        if (ntf_intake(svc, tx, &m.body.notify_request, id, sizeof id) < 0)
            crm_warn("webhook.contact", "dealer=%s channel=%s (not told: Redis)", dealer, channels[i]);
        crm_msg_clear(&m);
    }
}

void ntf_webhook_after(crm_service_t *svc, crm_tx_t *tx, const ntf_job_t *job, zhash_t *disabled)
{
    const char *d = job->to;
    if (!d || !crm_id_valid(CRM_ID_NAME, d))
        return;
    if (disabled && zhash_lookup(disabled, d))
        return; /* disabled by an earlier job of this batch */
    if (job->outcome == NTF_OK) {
        crm_tx_cmd(tx, "HDEL " CRM_KEY_WEBHOOK_FMT " failing_since", d);
        return;
    }
    if (job->outcome == NTF_LIMIT)
        return;
    ntf_t *n = ntf_of(svc);
    redisReply *w = crm_store_cmd(crm_service_store(svc), "HGETALL " CRM_KEY_WEBHOOK_FMT, d);
    if (!w)
        return;
    int64_t now = crm_now_ms();
    const char *fs = crm_reply_field(w, "failing_since"), *state = crm_reply_field(w, "state");
    int64_t since = fs ? strtoll(fs, NULL, 10) : now;
    if (!fs)
        crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " failing_since %lld", d, (long long) now);
    bool off = state && !strcmp(state, "disabled");
    bool gone = job->outcome == NTF_GONE;
    if (!off && (gone || now - since >= n->disable_after_ms)) {
        char why[160];
        if (gone)
            snprintf(why, sizeof why, "HTTP 410 from the endpoint");
        else
            snprintf(why, sizeof why, "failing for %lld s (last: %.80s)", (long long) ((now - since) / 1000),
                     job->message);
        crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " state disabled disabled_ms %lld disabled_reason %s", d,
                   (long long) now, why);
        const char *url = crm_reply_field(w, "url");
        s_changed(tx, d, "disabled", url, why, since);
        s_tell_contact(svc, tx, d, w, url, since);
        if (disabled)
            zhash_insert(disabled, d, (void *) 1);
        crm_warn("webhook.disabled", "dealer=%s url=%s why=\"%s\"", d, url ? url : "-", why);
    }
    freeReplyObject(w);
}

static bool s_url_ok(const char *u)
{
    if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
        return false;
    size_t n = strlen(u);
    if (n > 250)
        return false;
    for (const unsigned char *p = (const unsigned char *) u; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* webhook.set: the endpoint, a secret (given, or made when there is none
   or a rotation asks), the contact, enabling again. */
crm_handled_t ntf_req_webhook(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    ntf_t *n = ntf_of(svc);
    const crm_body_webhook_set_t *b = &crm_req_msg(req)->body.webhook_set;
    char err[160];
    if (crm_id_check(CRM_ID_NAME, b->dealer_id, "dealer_id", err, sizeof err) != 0)
        return crm_req_fail_text(req, "bad_id", err);
    crm_store_t *store = crm_service_store(svc);
    redisReply *known = crm_store_cmd(store, "EXISTS " CRM_KEY_DEALER_FMT, b->dealer_id);
    if (!known)
        return crm_req_unavailable(req);
    bool is = known->integer == 1;
    freeReplyObject(known);
    if (!is)
        return crm_req_fail(req, "dealer_id", "unknown", "dealer_id: no dealer %s (crmctl dealer add)", b->dealer_id);
    if (b->has.url && !s_url_ok(b->url))
        return crm_req_fail(req, "url", "invalid", "url: http:// or https://, printable ASCII, at most 250 bytes");
    crm_webhook_key_t k;
    if (b->has.secret && crm_webhook_secret_parse(b->secret, &k) != 0)
        return crm_req_fail(req, "secret", "invalid", "secret: whsec_ and the base64 of 24 to 64 random bytes");
    sodium_memzero(&k, sizeof k);
    if (b->has.contact_email && b->contact_email[0] &&
        (strlen(b->contact_email) > 200 || !strchr(b->contact_email, '@') || strpbrk(b->contact_email, " \r\n")))
        return crm_req_fail(req, "contact_email", "invalid", "contact_email: an e-mail address");
    if (b->has.contact_mobile && b->contact_mobile[0] &&
        (strlen(b->contact_mobile) != 11 || strspn(b->contact_mobile, "0123456789") != 11))
        return crm_req_fail(req, "contact_mobile", "invalid", "contact_mobile: 11 digits");
    redisReply *w = crm_store_cmd(store, "HGETALL " CRM_KEY_WEBHOOK_FMT, b->dealer_id);
    if (!w)
        return crm_req_unavailable(req);
    const char *old = crm_reply_field(w, "secrets"), *url = b->has.url ? b->url : crm_reply_field(w, "url");
    if (!url || !*url) {
        freeReplyObject(w);
        return crm_req_fail(req, "url", "required", "url: the dealer has no endpoint yet");
    }
    int64_t now = crm_now_ms();
    char made[CRM_WEBHOOK_SECRET_SZ] = "";
    const char *secret = b->has.secret ? b->secret : NULL;
    bool rotate = b->has.rotate && b->rotate;
    if (!secret && (rotate || !old || !*old)) {
        if (crm_webhook_secret_generate(32, made, sizeof made) < 0) {
            freeReplyObject(w);
            return crm_req_fail(req, "secret", "internal", "secret: none could be made");
        }
        secret = made;
    }
    char *secrets = NULL;
    const char *reason = "set";
    if (secret) {
        /* the newest first; during a rotation the one before signs too */
        char first[CRM_WEBHOOK_SECRET_SZ] = "";
        if (old && *old)
            snprintf(first, sizeof first, "%.*s", (int) strcspn(old, " "), old);
        if (rotate && first[0] && strcmp(first, secret)) {
            if (asprintf(&secrets, "%s %s", secret, first) < 0)
                secrets = NULL;
            crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " prev_until %lld", b->dealer_id, (long long) (now + n->rotate_ms));
            reason = "rotated";
        } else {
            secrets = strdup(secret);
            crm_tx_cmd(tx, "HDEL " CRM_KEY_WEBHOOK_FMT " prev_until", b->dealer_id);
        }
        if (!secrets) {
            freeReplyObject(w);
            return crm_req_fail(req, "secret", "internal", "out of memory");
        }
        crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " secrets %s", b->dealer_id, secrets);
        sodium_memzero(secrets, strlen(secrets));
        free(secrets);
    }
    crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " url %s updated_ms %lld", b->dealer_id, url, (long long) now);
    const char *state = crm_reply_field(w, "state");
    if (!state || (b->has.enable && b->enable)) {
        crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " state enabled", b->dealer_id);
        crm_tx_cmd(tx, "HDEL " CRM_KEY_WEBHOOK_FMT " failing_since disabled_ms disabled_reason", b->dealer_id);
        if (state && !strcmp(state, "disabled"))
            reason = "enabled";
        state = "enabled";
    }
    if (b->has.contact_email)
        crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " contact_email %s", b->dealer_id, b->contact_email);
    if (b->has.contact_mobile)
        crm_tx_cmd(tx, "HSET " CRM_KEY_WEBHOOK_FMT " contact_mobile %s", b->dealer_id, b->contact_mobile);
    s_changed(tx, b->dealer_id, state, url, reason, 0);
    crm_info("webhook.set", "dealer=%s url=%s state=%s reason=%s", b->dealer_id, url, state, reason);
    crm_msg_t *ans = crm_req_ok(req, b->dealer_id);
    if (made[0]) {
        char f[CRM_WEBHOOK_SECRET_SZ + 8];
        snprintf(f, sizeof f, "secret=%s", made);
        crm_strs_push(&ans->body.reply.fields, f);
        ans->body.reply.has.fields = true;
        sodium_memzero(f, sizeof f);
        sodium_memzero(made, sizeof made);
    }
    freeReplyObject(w);
    return CRM_APPLIED;
}
