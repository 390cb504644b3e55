/*  HTTP for the lanes: one POST or GET on a kept CURL handle, the status,
 *  the body (bounded) and Retry-After. Never follows redirects (Standard
 *  Webhooks: a 3xx is a failure).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notifier.h"

#define S_BODY_MAX 65536

static size_t s_write(char *data, size_t size, size_t nmemb, void *arg)
{
    ntf_http_t *res = arg;
    size_t n = size * nmemb, max = res->max ? res->max : S_BODY_MAX;
    if (res->len + n > max) {
        res->truncated = true;
        n = res->len < max ? max - res->len : 0;
    }
    if (n) {
        char *b = realloc(res->body, res->len + n + 1);
        if (!b)
            return 0;
        memcpy(b + res->len, data, n);
        res->len += n;
        b[res->len] = '\0';
        res->body = b;
    }
    return size * nmemb;
}

int64_t ntf_retry_after_ms(const char *v)
{
    if (!v)
        return 0;
    while (*v == ' ')
        v++;
    if (isdigit((unsigned char) *v)) {
        char *end;
        long long s = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        return *end || s < 0 ? 0 : (s > 86400 ? 86400 : s) * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t < 0)
        return 0;
    int64_t d = ((int64_t) t - (int64_t) time(NULL)) * 1000;
    return d > 0 ? (d > 86400000 ? 86400000 : d) : 0;
}

static size_t s_header(char *data, size_t size, size_t nmemb, void *arg)
{
    ntf_http_t *res = arg;
    size_t n = size * nmemb;
    if (n > 12 && !strncasecmp(data, "retry-after:", 12)) {
        char v[128];
        size_t l = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
        memcpy(v, data + 12, l);
        v[l] = '\0';
        res->retry_after_ms = ntf_retry_after_ms(v);
    }
    return n;
}

static int s_perform(CURL *curl, const char *url, int timeout_ms, ntf_http_t *res, struct curl_slist *hdrs)
{
    size_t max = res->max;
    memset(res, 0, sizeof *res);
    res->max = max;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) (timeout_ms < 5000 ? timeout_ms : 5000));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, res);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    res->rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    curl_off_t up = 0;
    curl_easy_getinfo(curl, CURLINFO_SIZE_UPLOAD_T, &up);
    double pre = 0;
    curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME, &pre);
    res->sent = up > 0 || pre > 0;
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    return res->rc == CURLE_OK && res->status > 0 ? 0 : -1;
}

int ntf_http_post(CURL *curl, const char *url, const char *content_type, const char *const *headers,
                  const char *body, size_t len, int timeout_ms, ntf_http_t *res)
{
    struct curl_slist *h = NULL, *t;
    char ct[160];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    res->max = 0;
    if (!(t = curl_slist_append(h, ct)))
        goto oom;
    h = t;
    if (!(t = curl_slist_append(h, "Expect:"))) /* no 100-continue round trip */
        goto oom;
    h = t;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (!(t = curl_slist_append(h, headers[i])))
            goto oom;
        h = t;
    }
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 0L);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    int rc = s_perform(curl, url, timeout_ms, res, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(h);
    return rc;
oom:
    curl_slist_free_all(h);
    memset(res, 0, sizeof *res);
    res->rc = CURLE_OUT_OF_MEMORY;
    return -1;
}

int ntf_http_get(CURL *curl, const char *url, int timeout_ms, ntf_http_t *res)
{
    /* res->max: set by the caller (0: 64 KiB) */
    curl_easy_setopt(curl, CURLOPT_POST, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    return s_perform(curl, url, timeout_ms, res, NULL);
}

void ntf_http_clear(ntf_http_t *res)
{
    free(res->body);
    memset(res, 0, sizeof *res);
}

int ntf_form_add(CURL *curl, char **form, size_t *len, const char *name, const char *value)
{
    char *e = curl_easy_escape(curl, value ? value : "", 0);
    if (!e)
        return -1;
    size_t add = strlen(name) + strlen(e) + 2;
    char *f = realloc(*form, *len + add + 1);
    if (!f) {
        curl_free(e);
        return -1;
    }
    *len += (size_t) sprintf(f + *len, "%s%s=%s", *len ? "&" : "", name, e);
    *form = f;
    curl_free(e);
    return 0;
}
