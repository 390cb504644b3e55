/*  SMS through an HTTP gateway shaped like Aliyun's Dysmsapi (tools/
 *  NOTIFY.md, "SMS gateway"): SendSms as a form POST with PhoneNumbers,
 *  SignName, TemplateCode, TemplateParam (JSON) and OutId (the
 *  notification's request id), answered {Code, Message, BizId}.
 *
 *  The gateways give no idempotency, and Aliyun asks callers to check
 *  before sending again after a timeout. So an attempt whose answer was
 *  lost after the request left, and any attempt a crash left unknown, is
 *  first looked up with QuerySendDetails (by number and day, matched by
 *  OutId) when the gateway offers it: found, it counts as sent; when the
 *  gateway cannot say, it is not sent (tried again later).
 *
 *  The gateway's answers: OK sent; isv.BUSINESS_LIMIT_CONTROL (minute,
 *  hour or day flow control), isv.DAY_LIMIT_CONTROL and
 *  isv.MONTH_LIMIT_CONTROL are its own limits: deferred, not failed;
 *  isp.* (its own trouble), isv.AMOUNT_NOT_ENOUGH (the account needs
 *  topping up), HTTP 429 and 5xx and no answer pass: retried; any other
 *  isv.* code and other HTTP errors are permanent.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "crm_calendar.h"
#include "notifier.h"

static void *s_open(const ntf_lane_cfg_t *cfg)
{
    (void) cfg;
    return curl_easy_init();
}

static void s_close(void *lane) { curl_easy_cleanup(lane); }

static int64_t s_next_day(int64_t now) { return crm_cst_day_start_ms(crm_cst_day(now) + 1); }

/* QuerySendDetails: 1 found (OutId matches), 0 not there, -1 could not ask. */
static int s_query(CURL *curl, const ntf_lane_cfg_t *cfg, ntf_job_t *job)
{
    if (!cfg->sms_query_url[0])
        return -1;
    /* the day the lost attempt went (China time), and the next (the
       gateway's day may have turned while it was working), and today */
    int64_t sent = job->sending_ms ? job->sending_ms : job->created_ms;
    int64_t days[3] = {sent ? crm_cst_day(sent) : -1, sent ? crm_cst_day(sent) + 1 : -1, crm_cst_day(crm_now_ms())};
    for (int d = 0; d < 3; d++) {
        if (days[d] < 0 || (d == 2 && (days[2] == days[0] || days[2] == days[1])) ||
            (d == 1 && days[1] > days[2]))
            continue;
        int y, mo, da;
        crm_day_ymd(days[d], &y, &mo, &da);
        char date[16];
        snprintf(date, sizeof date, "%04d%02d%02d", y, mo, da);
        for (int page = 1; page <= 20; page++) {
            char *form = NULL, pg[8];
            size_t len = 0;
            snprintf(pg, sizeof pg, "%d", page);
            if (ntf_form_add(curl, &form, &len, "PhoneNumber", job->to) ||
                ntf_form_add(curl, &form, &len, "SendDate", date) ||
                ntf_form_add(curl, &form, &len, "PageSize", "50") ||
                ntf_form_add(curl, &form, &len, "CurrentPage", pg) ||
                (cfg->sms_key[0] && ntf_form_add(curl, &form, &len, "AccessKeyId", cfg->sms_key))) {
                free(form);
                return -1;
            }
            ntf_http_t res;
            int rc = ntf_http_post(curl, cfg->sms_query_url, "application/x-www-form-urlencoded", NULL, form, len,
                                   cfg->timeout_ms, &res);
            free(form);
            if (rc != 0 || res.status != 200 || !res.body) {
                ntf_http_clear(&res);
                return -1;
            }
            json_error_t jerr;
            json_t *root = json_loadb(res.body, res.len, 0, &jerr);
            ntf_http_clear(&res);
            const char *code = json_string_value(json_object_get(root, "Code"));
            json_t *list = json_object_get(json_object_get(root, "SmsSendDetailDTOs"), "SmsSendDetailDTO");
            if (!code || strcmp(code, "OK") || !json_is_array(list)) {
                json_decref(root);
                return -1;
            }
            size_t i;
            json_t *e;
            json_array_foreach(list, i, e)
            {
                const char *out = json_string_value(json_object_get(e, "OutId"));
                if (out && !strcmp(out, job->request_id)) {
                    json_decref(root);
                    return 1;
                }
            }
            json_int_t total = json_integer_value(json_object_get(root, "TotalCount"));
            size_t got = json_array_size(list);
            json_decref(root);
            if (got < 50 || (json_int_t) page * 50 >= total)
                break;
        }
    }
    return 0;
}

static void s_pull(CURL *curl, const ntf_lane_cfg_t *cfg, ntf_job_t *job)
{
    char url[400];
    snprintf(url, sizeof url, "%s%scursor=%s&limit=200", cfg->sms_pull_url, strchr(cfg->sms_pull_url, '?') ? "&" : "?",
             job->to);
    ntf_http_t res = {.max = 16u << 20};
    if (ntf_http_get(curl, url, cfg->timeout_ms, &res) == 0 && res.status == 200 && res.body && !res.truncated) {
        job->outcome = NTF_OK;
        job->text = res.body;
        res.body = NULL;
    } else {
        job->outcome = NTF_TEMP;
        snprintf(job->code_out, sizeof job->code_out, "%ld", res.status);
        snprintf(job->message, sizeof job->message, "pull: %s",
                 res.rc ? curl_easy_strerror(res.rc) : res.truncated ? "the answer is over 16 MiB" : "bad answer");
    }
    ntf_http_clear(&res);
}

static void s_answer(ntf_job_t *job, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *code = json_string_value(json_object_get(root, "Code"));
    const char *msg = json_string_value(json_object_get(root, "Message"));
    const char *biz = json_string_value(json_object_get(root, "BizId"));
    int64_t now = crm_now_ms();
    if (!code) {
        job->outcome = NTF_TEMP;
        snprintf(job->message, sizeof job->message, "the gateway's answer is not {Code, Message}");
    } else {
        snprintf(job->code_out, sizeof job->code_out, "%s", code);
        snprintf(job->message, sizeof job->message, "%s", msg ? msg : "");
        if (!strcmp(code, "OK")) {
            job->outcome = NTF_OK;
            snprintf(job->provider_id, sizeof job->provider_id, "%s", biz ? biz : "");
        } else if (!strcmp(code, "isv.BUSINESS_LIMIT_CONTROL")) {
            job->outcome = NTF_LIMIT;
            job->until_ms = msg && strstr(msg, "天级")     ? s_next_day(now)
                            : msg && strstr(msg, "小时级") ? now + 3600000
                                                           : now + 60000;
        } else if (!strcmp(code, "isv.DAY_LIMIT_CONTROL") || !strcmp(code, "isv.MONTH_LIMIT_CONTROL")) {
            job->outcome = NTF_LIMIT;
            job->until_ms = s_next_day(now);
        } else if (!strncmp(code, "isp.", 4) || !strcmp(code, "isv.AMOUNT_NOT_ENOUGH"))
            job->outcome = NTF_TEMP;
        else
            job->outcome = NTF_PERM;
    }
    json_decref(root);
}

static void s_send(void *lane, const ntf_lane_cfg_t *cfg, ntf_job_t *job)
{
    CURL *curl = lane;
    if (job->pull) {
        s_pull(curl, cfg, job);
        return;
    }
    if (job->reconcile && cfg->sms_query_url[0]) {
        int q = s_query(curl, cfg, job);
        if (q == 1) {
            job->outcome = NTF_OK;
            job->found = true;
            snprintf(job->message, sizeof job->message, "found in the gateway's records");
            return;
        }
        if (q < 0) {
            /* not known whether the gateway has it: never sent blind */
            job->outcome = NTF_TEMP;
            job->unknown = true;
            snprintf(job->message, sizeof job->message, "the gateway could not say whether it has it (QuerySendDetails)");
            return;
        }
    }
    char *form = NULL;
    size_t len = 0;
    if (ntf_form_add(curl, &form, &len, "PhoneNumbers", job->to) ||
        ntf_form_add(curl, &form, &len, "SignName", job->sign) ||
        ntf_form_add(curl, &form, &len, "TemplateCode", job->code) ||
        ntf_form_add(curl, &form, &len, "TemplateParam", job->params ? job->params : "{}") ||
        ntf_form_add(curl, &form, &len, "OutId", job->request_id) ||
        (cfg->sms_key[0] && ntf_form_add(curl, &form, &len, "AccessKeyId", cfg->sms_key))) {
        free(form);
        job->outcome = NTF_TEMP;
        snprintf(job->message, sizeof job->message, "out of memory");
        return;
    }
    ntf_http_t res;
    int rc = ntf_http_post(curl, cfg->sms_url, "application/x-www-form-urlencoded", NULL, form, len, cfg->timeout_ms,
                           &res);
    free(form);
    job->status = res.status;
    if (rc != 0) {
        /* No answer. If the request left, the gateway may have it: the
           next attempt looks it up first, once the gateway has had the time
           to record it (send.c). */
        job->unknown = res.sent;
        job->outcome = NTF_TEMP;
        snprintf(job->message, sizeof job->message, "%s", curl_easy_strerror(res.rc));
    } else if (res.status == 429 || res.status >= 500) {
        job->outcome = NTF_TEMP;
        job->retry_after_ms = res.retry_after_ms;
        snprintf(job->message, sizeof job->message, "HTTP %ld", res.status);
    } else if (res.status != 200) {
        job->outcome = NTF_PERM;
        snprintf(job->message, sizeof job->message, "HTTP %ld", res.status);
    } else
        s_answer(job, res.body ? res.body : "", res.len);
    ntf_http_clear(&res);
}

const ntf_channel_t ntf_sms_channel = {"sms", CRM_CHANNEL_SMS, s_open, s_send, s_close};
