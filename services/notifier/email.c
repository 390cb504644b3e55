/*  E-mail over SMTP with libcurl (crm_mail builds the message: RFC 2047
 *  encoded words of at most 75 characters, never split inside a character;
 *  List-Unsubscribe and List-Unsubscribe-Post on marketing mail).
 *
 *  The Message-ID comes from the notification (<N12.created@domain>), so a
 *  message sent again after a crash carries the same one. The server's
 *  reply decides: 2xx sent, 4xx (and no answer) passes, 5xx is permanent.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_mail.h"
#include "notifier.h"

static void *s_open(const ntf_lane_cfg_t *cfg)
{
    (void) cfg;
    return curl_easy_init();
}

static void s_close(void *lane) { curl_easy_cleanup(lane); }

typedef struct {
    const char *data;
    size_t len, off;
} s_src_t;

static size_t s_read(char *buf, size_t size, size_t nitems, void *arg)
{
    s_src_t *s = arg;
    size_t n = size * nitems, left = s->len - s->off;
    if (n > left)
        n = left;
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    return n;
}

/* The one-click unsubscribe link: the notification and a token only the
   carmaker can make (the first 32 hex digits of SHA-256(key, id)). */
static void s_unsubscribe(const ntf_lane_cfg_t *cfg, const ntf_job_t *job, char *out, size_t size)
{
    char digest[CRM_ID_DIGEST_SZ];
    const char *parts[] = {cfg->unsubscribe_key, job->id};
    crm_id_digest(parts, 2, digest);
    digest[32] = '\0';
    snprintf(out, size, "%s%sn=%s&t=%s", cfg->unsubscribe_url, strchr(cfg->unsubscribe_url, '?') ? "&" : "?", job->id,
             digest);
}

static void s_send(void *lane, const ntf_lane_cfg_t *cfg, ntf_job_t *job)
{
    CURL *curl = lane;
    char mid[64], unsub[400] = "";
    snprintf(mid, sizeof mid, "%s.%lld", job->id, (long long) job->created_ms);
    bool marketing = job->cls == CRM_CLASS_MARKETING;
    if (marketing) {
        if (!cfg->unsubscribe_url[0]) {
            job->outcome = NTF_PERM;
            snprintf(job->message, sizeof job->message, "marketing mail needs --unsubscribe-url (RFC 8058)");
            return;
        }
        s_unsubscribe(cfg, job, unsub, sizeof unsub);
    }
    crm_mail_t m = {
        .from_name = cfg->mail_from_name,
        .from_addr = cfg->mail_from,
        .to_addr = job->to,
        .subject = job->subject ? job->subject : "",
        .body = job->text,
        .date = crm_now_ms() / 1000,
        .tz_minutes = 480,
        .message_id = mid,
        .marketing = marketing,
        .unsubscribe_https = marketing ? unsub : NULL,
    };
    size_t len = 0;
    char *msg = crm_mail_build(&m, &len);
    if (!msg) {
        job->outcome = NTF_PERM;
        snprintf(job->message, sizeof job->message, "the message cannot be built (address or text refused)");
        return;
    }
    char from[300], rcpt[300];
    snprintf(from, sizeof from, "<%s>", cfg->mail_from);
    snprintf(rcpt, sizeof rcpt, "<%s>", job->to);
    struct curl_slist *to = curl_slist_append(NULL, rcpt);
    s_src_t src = {msg, len, 0};
    curl_easy_setopt(curl, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, to);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, s_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &src);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) cfg->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (cfg->smtp_user[0]) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->smtp_user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg->smtp_pass);
        curl_easy_setopt(curl, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL); /* never a password in clear */
    }
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(to);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, NULL);
    free(msg);
    job->status = code;
    if (rc == CURLE_OK) {
        job->outcome = NTF_OK;
        snprintf(job->provider_id, sizeof job->provider_id, "%s", mid);
        return;
    }
    snprintf(job->message, sizeof job->message, "%s", curl_easy_strerror(rc));
    snprintf(job->code_out, sizeof job->code_out, "smtp %ld", code);
    job->unknown = src.off == len && code == 0; /* the whole message went and no answer came */
    job->outcome = code >= 500 && code < 600 ? NTF_PERM : NTF_TEMP;
}

const ntf_channel_t ntf_email_channel = {"email", CRM_CHANNEL_EMAIL, s_open, s_send, s_close};
