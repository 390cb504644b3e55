/*  When a notification's timer fires: the rules decide (crm_notify_rules),
 *  a send is recorded before it leaves, and the outcome a lane brings back
 *  is committed: sent, retried with backoff, deferred, or dead-lettered.
 *
 *  At most once per notification id: a notification is handed to a lane
 *  only after "sending" is committed (crm:notify:inflight); its outcome is
 *  committed when the lane returns. The window is between the two: a crash
 *  there leaves it in crm:notify:inflight, and the start looks at it again
 *  (ntf_reconcile): an SMS is looked up in the gateway's records first
 *  (QuerySendDetails by number, matched by OutId) and sent only when the
 *  gateway does not have it; an e-mail is sent again with the same
 *  Message-ID, a webhook with the same webhook-id (receivers drop the
 *  repeat); a call task is opened in the same commit as its decision and
 *  has no window. Every such second send says resent=true, and counts in
 *  the notification's `resent` and crm:metrics:notifier.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_calendar.h"
#include "notifier.h"

void ntf_log(crm_tx_t *tx, const char *id, const char *state, const char *reason, const char *code,
             int64_t attempt)
{
    char key[64], at[24], att[24];
    snprintf(key, sizeof key, CRM_KEY_NOTIFY_LOG_FMT, id);
    snprintf(at, sizeof at, "%lld", (long long) crm_now_ms());
    snprintf(att, sizeof att, "%lld", (long long) attempt);
    const char *argv[16] = {"XADD", key, "MAXLEN", "~", "200", "*", "state", state, "at", at};
    int argc = 10;
    if (reason)
        argv[argc++] = "reason", argv[argc++] = reason;
    if (code && *code)
        argv[argc++] = "code", argv[argc++] = code;
    if (attempt)
        argv[argc++] = "attempt", argv[argc++] = att;
    crm_tx_cmdargv(tx, argc, argv, NULL);
}

void ntf_metric(crm_tx_t *tx, const char *name, int64_t by)
{
    crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_METRICS " %s %lld", name, (long long) by);
}

static void s_set_state(crm_tx_t *tx, const char *id, const char *state, const char *reason)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long) crm_now_ms());
    crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " state %s reason %s updated_ms %s", id, state, reason ? reason : "",
               now);
}

void ntf_fail(crm_tx_t *tx, const char *id, const char *request_id, const char *channel, const char *reason,
              const char *field, const char *code, const char *message, int64_t attempts, bool dlq)
{
    s_set_state(tx, id, dlq ? "dead" : "failed", reason);
    if (code && *code)
        crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " last_code %s", id, code);
    if (message && *message)
        crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " last_error %s", id, message);
    crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", id);
    if (dlq) {
        char at[24], att[24];
        snprintf(at, sizeof at, "%lld", (long long) crm_now_ms());
        snprintf(att, sizeof att, "%lld", (long long) attempts);
        const char *argv[] = {"XADD", CRM_KEY_NOTIFY_DLQ, "MAXLEN", "~", "1000000", "*",
                              "notification", id, "request_id", request_id, "channel", channel,
                              "reason", reason, "code", code ? code : "", "message", message ? message : "",
                              "field", field ? field : "", "attempts", att, "at", at};
        crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    }
    ntf_log(tx, id, dlq ? "dead" : "failed", reason, code, attempts);
    ntf_metric(tx, dlq ? "dead" : "dropped", 1);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_notify_failed);
    CRM_SET_STR(&ev, notify_failed, request_id, request_id);
    CRM_SET_STR(&ev, notify_failed, channel, channel);
    CRM_SET_STR(&ev, notify_failed, reason, reason);
    if (field)
        CRM_SET_STR(&ev, notify_failed, field, field);
    if (code && *code)
        CRM_SET_STR(&ev, notify_failed, code, code);
    if (message && *message)
        CRM_SET_STR(&ev, notify_failed, message, message);
    if (attempts)
        CRM_SET_I64(&ev, notify_failed, attempts, attempts);
    CRM_SET_BOOL(&ev, notify_failed, dlq, dlq);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

static void s_defer(crm_tx_t *tx, const char *id, const char *request_id, const char *channel, const char *reason,
                    const char *code, int64_t until)
{
    char tid[NTF_ID_SZ + 2], next[24];
    snprintf(tid, sizeof tid, "n:%s", id);
    snprintf(next, sizeof next, "%lld", (long long) until);
    crm_tx_due(tx, ntf_set(crm_channel_parse(channel)), tid, until);
    s_set_state(tx, id, "deferred", reason);
    crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " next_ms %s", id, next);
    ntf_log(tx, id, "deferred", reason, code, 0);
    ntf_metric(tx, "deferred", 1);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_notify_deferred);
    CRM_SET_STR(&ev, notify_deferred, request_id, request_id);
    CRM_SET_STR(&ev, notify_deferred, channel, channel);
    CRM_SET_STR(&ev, notify_deferred, reason, reason);
    CRM_SET_I64(&ev, notify_deferred, until, until);
    if (code && *code)
        CRM_SET_STR(&ev, notify_deferred, code, code);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

/* The daily cap's counter of the customer on a channel, for `at`'s China day. */
static bool s_count_key(const char *channel_name, const char *customer, int64_t at, char *out, size_t size)
{
    char k[160];
    int ch = crm_channel_parse(channel_name);
    if (crm_cap_key(ch, customer, crm_cst_day(at), k, sizeof k) != 0)
        return false;
    snprintf(out, size, CRM_KEY_NOTIFY_COUNT_FMT, k);
    return true;
}

static const char *s_f(const redisReply *h, const char *name)
{
    const char *v = crm_reply_field(h, name);
    return v && *v ? v : NULL;
}

static int64_t s_i64(const redisReply *h, const char *name)
{
    const char *v = crm_reply_field(h, name);
    return v ? strtoll(v, NULL, 10) : 0;
}

static char *s_dup(const char *v) { return v ? strdup(v) : NULL; }

/* The consent state of a channel in a crm:consent hash: 1 opted in, -1 out, 0 none. */
static int s_consent(const redisReply *h, const char *channel)
{
    const char *v = h ? crm_reply_field(h, channel) : NULL;
    if (!v)
        return 0;
    if (!strncmp(v, "opt_out", 7))
        return -1;
    return !strncmp(v, "opt_in", 6) ? 1 : 0;
}

ntf_job_t *ntf_job_new(void) { return calloc(1, sizeof(ntf_job_t)); }

void ntf_job_free(ntf_job_t *job)
{
    if (!job)
        return;
    free(job->request_id), free(job->to), free(job->subject), free(job->text), free(job->sign);
    free(job->code), free(job->params), free(job->url), free(job->secrets), free(job->template_name);
    free(job->customer_id), free(job->dealer_id), free(job->count_key);
    free(job);
}

static ntf_job_t *s_job(const char *id, const redisReply *h, const redisReply *hook)
{
    ntf_job_t *j = ntf_job_new();
    if (!j)
        return NULL;
    snprintf(j->id, sizeof j->id, "%s", id);
    j->request_id = s_dup(s_f(h, "request_id"));
    j->channel = crm_channel_parse(s_f(h, "channel") ? s_f(h, "channel") : "");
    j->cls = crm_class_parse(s_f(h, "class") ? s_f(h, "class") : "");
    j->attempt = s_i64(h, "attempts") + 1;
    j->to = s_dup(s_f(h, "to"));
    j->subject = s_dup(s_f(h, "subject"));
    j->text = s_dup(s_f(h, "text"));
    j->sign = s_dup(s_f(h, "sign"));
    j->code = s_dup(s_f(h, "code"));
    j->params = s_dup(s_f(h, "params"));
    j->template_name = s_dup(s_f(h, "template"));
    j->customer_id = s_dup(s_f(h, "customer_id"));
    j->dealer_id = s_dup(s_f(h, "dealer_id"));
    j->created_ms = s_i64(h, "created_ms");
    j->sending_ms = s_i64(h, "sending_ms");
    j->count_key = s_dup(s_f(h, "count_key"));
    j->reconcile = s_i64(h, "check") == 1; /* an earlier attempt's outcome is unknown */
    if (hook) {
        j->url = s_dup(s_f(hook, "url"));
        j->secrets = s_dup(s_f(hook, "secrets"));
        /* the secret before a rotation signs until prev_until only */
        char *sp = j->secrets ? strchr(j->secrets, ' ') : NULL;
        if (sp && s_i64(hook, "prev_until") < crm_now_ms())
            *sp = '\0';
    }
    if (!j->request_id || !j->to || !j->text) {
        ntf_job_free(j);
        return NULL;
    }
    return j;
}

typedef struct {
    char id[NTF_ID_SZ];
    int64_t due;
    int hi, ci, ti, wi, ki; /* indices of its reads */
} s_fired_t;

/* A pipeline whose replies are read one by one: 0, or -1 when Redis is
   away (a reply Redis refused is that item's error, not the batch's). */
static int s_read(crm_service_t *svc, crm_tx_t *t)
{
    if (!crm_tx_size(t) || crm_store_pipeline(crm_service_store(svc), t) == 0)
        return 0;
    if (crm_store_last_error(crm_service_store(svc)) != CRM_STORE_REFUSED)
        return -1;
    for (size_t i = 0; i < crm_tx_size(t); i++)
        if (!crm_tx_result(t, (int) i))
            return -1; /* not every reply came: not an item's error */
    return 0;
}

static bool s_err(const redisReply *r) { return r && r->type == REDIS_REPLY_ERROR; }

crm_handled_t ntf_on_fired(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) tx;
    ntf_t *n = ntf_of(svc);
    const crm_body_timers_fired_t *b = &msg->body.timers_fired;
    if (ntf_set_channel(b->set) < 0)
        return CRM_APPLIED; /* another service's */
    size_t cnt = b->timers.n;
    if (!cnt)
        return CRM_APPLIED;
    s_fired_t *f = calloc(cnt, sizeof *f);
    crm_tx_t *r2 = crm_tx_new(crm_service_name(svc), 0);
    zhash_t *counted = zhash_new(); /* counter key -> sends added in this batch */
    if (!f || !r2 || !counted) {
        free(f);
        crm_tx_destroy(&r2);
        zhash_destroy(&counted);
        return CRM_RETRY;
    }
    /* Round one: the notifications. */
    crm_tx_reset(n->reads);
    size_t m = 0;
    for (size_t i = 0; i < cnt; i++) {
        char *end;
        long long due = strtoll(b->timers.v[i], &end, 10);
        if (end == b->timers.v[i] || strncmp(end, " n:N", 4) || strlen(end + 3) >= NTF_ID_SZ ||
            !crm_id_valid(CRM_ID_NAME, end + 3)) {
            crm_warn("timer.unknown", "timer=\"%.80s\"", b->timers.v[i]);
            continue;
        }
        snprintf(f[m].id, sizeof f[m].id, "%s", end + 3);
        f[m].due = due;
        f[m].hi = crm_tx_cmd(n->reads, "HGETALL " CRM_KEY_NOTIFY_FMT, f[m].id);
        m++;
    }
    crm_handled_t rc = CRM_APPLIED;
    if (s_read(svc, n->reads) != 0) {
        rc = crm_service_failed(svc);
        goto done;
    }
    /* Round two: consent, the day's counts, webhook endpoints. */
    int64_t now = crm_now_ms();
    for (size_t i = 0; i < m; i++) {
        const redisReply *h = crm_tx_result(n->reads, f[i].hi);
        f[i].ci = f[i].ti = f[i].wi = f[i].ki = -1;
        if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements)
            continue;
        const char *state = s_f(h, "state"), *cust = s_f(h, "customer_id"), *rcpt = s_f(h, "recipient");
        const char *ch = s_f(h, "channel"), *to = s_f(h, "to");
        if (!state || (strcmp(state, "queued") && strcmp(state, "deferred")))
            continue;
        if (cust && rcpt && !strcmp(rcpt, "customer") && crm_id_valid(CRM_ID_NAME, cust)) {
            f[i].ci = crm_tx_cmd(r2, "HGETALL " CRM_KEY_CONSENT_FMT, cust);
            char key[200];
            if (ch && s_count_key(ch, cust, now, key, sizeof key))
                f[i].ki = crm_tx_cmd(r2, "GET %s", key);
        }
        if (ch && !strcmp(ch, "sms") && to && strlen(to) == 11 && strspn(to, "0123456789") == 11) {
            char subject[40];
            snprintf(subject, sizeof subject, "tel:%s", to);
            f[i].ti = crm_tx_cmd(r2, "HGETALL " CRM_KEY_CONSENT_FMT, subject);
        }
        if (ch && !strcmp(ch, "webhook") && to && crm_id_valid(CRM_ID_NAME, to))
            f[i].wi = crm_tx_cmd(r2, "HGETALL " CRM_KEY_WEBHOOK_FMT, to);
    }
    if (s_read(svc, r2) != 0) {
        rc = crm_service_failed(svc);
        goto done;
    }

    /* The decisions, in one commit of their own (the handler's `tx` is
       the framework's, committed with the cursor after this returns); the
       sends leave after it. Applied again after a crash, the timers find
       their notifications decided already. */
    crm_tx_t *w = n->wtx;
    crm_tx_reset(w);
    ntf_job_t *jobs = NULL, **tail = &jobs;
    int64_t room[CRM_CHANNEL_COUNT];
    for (int c = 0; c < CRM_CHANNEL_COUNT; c++)
        room[c] = ntf_lanes_free_ch(n, c);
    for (size_t i = 0; i < m; i++) {
        const redisReply *h = crm_tx_result(n->reads, f[i].hi);
        if (s_err(h)) {
            crm_error("notify.unreadable", "id=%s why=\"%s\" (its timer is dropped)", f[i].id, h->str);
            continue;
        }
        if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements) {
            crm_warn("notify.unknown", "id=%s (a timer of a notification that is not kept)", f[i].id);
            continue;
        }
        const char *state = s_f(h, "state");
        if (!state || (strcmp(state, "queued") && strcmp(state, "deferred")))
            continue; /* fired again after a crash: already decided */
        const char *id = f[i].id, *rid = s_f(h, "request_id"), *chn = s_f(h, "channel");
        const char *cust = s_f(h, "customer_id"), *rcpt = s_f(h, "recipient");
        if (!rid || !chn) {
            crm_warn("notify.broken", "id=%s (no request_id or channel)", id);
            continue;
        }
        int64_t next = s_i64(h, "next_ms");
        if (!strcmp(state, "deferred") && next > now + 50) {
            /* an older timer applied again (after a crash): the notification's
               own time stands (a backoff, an SMS's wait before its lookup) */
            char tid[NTF_ID_SZ + 2];
            snprintf(tid, sizeof tid, "n:%s", id);
            crm_tx_due(w, ntf_set(crm_channel_parse(chn)), tid, next);
            continue;
        }
        crm_notify_msg_t nm = {0};
        nm.cls = crm_class_parse(s_f(h, "class") ? s_f(h, "class") : "");
        nm.channel = crm_channel_parse(chn);
        nm.not_before = s_i64(h, "not_before");
        nm.not_after = s_i64(h, "not_after");
        const redisReply *cons = f[i].ci >= 0 ? crm_tx_result(r2, f[i].ci) : NULL;
        const redisReply *tel = f[i].ti >= 0 ? crm_tx_result(r2, f[i].ti) : NULL;
        const redisReply *hook = f[i].wi >= 0 ? crm_tx_result(r2, f[i].wi) : NULL;
        const redisReply *cntr = f[i].ki >= 0 ? crm_tx_result(r2, f[i].ki) : NULL;
        int64_t attempts = s_i64(h, "attempts");
        if (s_err(cons) || s_err(tel) || s_err(hook) || s_err(cntr)) {
            /* consent that cannot be read is no consent: nothing goes */
            ntf_fail(w, id, rid, chn, "invalid", "customer_id", NULL,
                     "its consent, count or endpoint record cannot be read (Redis refused it)", attempts, true);
            continue;
        }
        bool is_customer = cust && rcpt && !strcmp(rcpt, "customer");
        nm.opted_in = is_customer && s_consent(cons, chn) > 0;
        nm.opted_out = (is_customer && s_consent(cons, chn) < 0) || s_consent(tel, chn) < 0;
        char ckey[200] = "";
        if (cntr && s_count_key(chn, cust, now, ckey, sizeof ckey)) {
            nm.count_today = cntr->type == REDIS_REPLY_STRING ? strtoll(cntr->str, NULL, 10) : 0;
            nm.count_today += (int64_t) (intptr_t) zhash_lookup(counted, ckey);
        }
        crm_notify_config_t rules = n->rules;
        if (!is_customer)
            rules.cap[nm.channel >= 0 && nm.channel < CRM_CHANNEL_COUNT ? nm.channel : 0] = 0;
        bool uncertain = s_i64(h, "check") == 1;
        if (uncertain)
            nm.count_today = 0; /* counted when it first went */
        crm_notify_decision_t d = crm_notify_decide(&rules, &nm, now);
        if (d.verdict == CRM_VERDICT_DROP) {
            ntf_fail(w, id, rid, chn, crm_reason_name(d.reason), NULL, NULL,
                     uncertain ? "it may have gone before the crash that left it uncertain" : NULL, attempts,
                     d.reason == CRM_REASON_INVALID);
            if (uncertain)
                crm_tx_cmd(w, "HDEL " CRM_KEY_NOTIFY_FMT " check", id);
            crm_info("notify.dropped", "id=%s request=%.80s reason=%s", id, rid, crm_reason_name(d.reason));
            continue;
        }
        if (d.verdict == CRM_VERDICT_DEFER) {
            s_defer(w, id, rid, chn, crm_reason_name(d.reason), NULL, d.at);
            continue;
        }
        if (nm.channel == CRM_CHANNEL_WEBHOOK) {
            const char *st = hook ? s_f(hook, "state") : NULL;
            if (!hook || !s_f(hook, "url") || !s_f(hook, "secrets")) {
                ntf_fail(w, id, rid, chn, "no_recipient", "to", NULL, "the dealer has no webhook endpoint (crmctl webhook set)",
                         attempts, true);
                continue;
            }
            if (st && !strcmp(st, "disabled")) {
                ntf_fail(w, id, rid, chn, "endpoint_disabled", "to", NULL,
                         "the dealer's endpoint is disabled (crmctl webhook set --enable)", attempts, true);
                continue;
            }
        }
        if (nm.channel >= 0 && nm.channel < CRM_CHANNEL_COUNT && room[nm.channel] <= 0) {
            /* every lane of the channel busy: looked at again shortly, nothing recorded */
            char tid[NTF_ID_SZ + 2];
            snprintf(tid, sizeof tid, "n:%s", id);
            crm_tx_due(w, ntf_set(nm.channel), tid, now + 100);
            continue;
        }
        if (nm.channel == CRM_CHANNEL_CALL) {
            if (ckey[0]) {
                crm_tx_cmd(w, "INCR %s", ckey);
                crm_tx_cmd(w, "EXPIRE %s 172800", ckey);
                zhash_update(counted, ckey, (void *) ((intptr_t) zhash_lookup(counted, ckey) + 1));
            }
            char call_id[NTF_ID_SZ];
            if (ntf_call_open(svc, w, h, id, call_id, sizeof call_id) != 0) {
                if (crm_store_last_error(crm_service_store(svc)) == CRM_STORE_REFUSED) {
                    ntf_fail(w, id, rid, chn, "invalid", "customer_id", NULL,
                             "the call task cannot be made (Redis refused a read of it)", attempts, true);
                    continue;
                }
                while (jobs) {
                    ntf_job_t *nx = jobs->next;
                    ntf_job_free(jobs);
                    jobs = nx;
                }
                rc = crm_service_failed(svc);
                goto done;
            }
            continue;
        }
        ntf_job_t *j = s_job(id, h, hook);
        if (!j) {
            ntf_fail(w, id, rid, chn, "invalid", NULL, NULL, "the kept notification is incomplete", 0, true);
            continue;
        }
        if (ckey[0] && !uncertain) {
            crm_tx_cmd(w, "INCR %s", ckey);
            crm_tx_cmd(w, "EXPIRE %s 172800", ckey);
            crm_tx_cmd(w, "HSET " CRM_KEY_NOTIFY_FMT " count_key %s", id, ckey);
            zhash_update(counted, ckey, (void *) ((intptr_t) zhash_lookup(counted, ckey) + 1));
            free(j->count_key);
            j->count_key = strdup(ckey);
        }
        s_set_state(w, id, "sending", NULL);
        j->sending_ms = now;
        crm_tx_cmd(w, "HSET " CRM_KEY_NOTIFY_FMT " sending_ms %lld", id, (long long) now);
        crm_tx_cmd(w, "HINCRBY " CRM_KEY_NOTIFY_FMT " attempts 1", id);
        crm_tx_cmd(w, "SADD " CRM_KEY_NOTIFY_INFLIGHT " %s", id);
        ntf_log(w, id, "sending", uncertain ? "uncertain" : NULL, NULL, j->attempt);
        *tail = j, tail = &j->next;
        room[nm.channel]--;
    }
    if (crm_service_commit(svc, w) != 0) {
        /* Not known to have applied: the jobs do not go. If it did apply,
           the notifications are "sending" and the sweep finds them. */
        while (jobs) {
            ntf_job_t *nx = jobs->next;
            ntf_job_free(jobs);
            jobs = nx;
        }
        rc = crm_service_failed(svc);
        goto done;
    }
    while (jobs) {
        ntf_job_t *nx = jobs->next;
        jobs->next = NULL;
        ntf_lanes_submit(svc, jobs);
        jobs = nx;
    }
done:
    zhash_destroy(&counted);
    crm_tx_destroy(&r2);
    free(f);
    return rc;
}

/* Exponential backoff with jitter: base * 2^(attempt-1), at most max, then
   between 75% and 125% of it; never sooner than the peer's Retry-After. */
static int64_t s_backoff(const ntf_t *n, int64_t attempt, int64_t retry_after)
{
    int64_t d = n->retry_base_ms;
    for (int64_t i = 1; i < attempt && d < n->retry_max_ms; i++)
        d *= 2;
    if (d > n->retry_max_ms)
        d = n->retry_max_ms;
    d = d * 3 / 4 + (int64_t) (((double) rand() / RAND_MAX) * (double) (d / 2));
    return d > retry_after ? d : retry_after;
}

/* The daily cap's count given back, in the counter it was taken from. */
static void s_release(crm_tx_t *tx, const ntf_job_t *j)
{
    if (!j->count_key)
        return;
    crm_tx_cmd(tx, "DECR %s", j->count_key);
    crm_tx_cmd(tx, "EXPIRE %s 172800", j->count_key);
    crm_tx_cmd(tx, "HDEL " CRM_KEY_NOTIFY_FMT " count_key", j->id);
}

static int64_t s_not_after(crm_service_t *svc, const char *id)
{
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGET " CRM_KEY_NOTIFY_FMT " not_after", id);
    int64_t v = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

static void s_sent(crm_tx_t *tx, ntf_job_t *j, bool receipted, int64_t now)
{
    const char *chn = crm_channel_name(j->channel);
    char sent[24];
    snprintf(sent, sizeof sent, "%lld", (long long) now);
    if (!receipted)
        s_set_state(tx, j->id, "sent", NULL);
    crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " sent_ms %s provider_id %s", j->id, sent, j->provider_id);
    crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", j->id);
    bool resent = j->reconcile && !j->found;
    if (resent) {
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " resent 1", j->id);
        ntf_metric(tx, "resent", 1);
    }
    if (j->found)
        ntf_metric(tx, "reconciled", 1);
    ntf_log(tx, j->id, "sent", j->found ? "found_at_gateway" : resent ? "resent" : NULL, NULL, j->attempt);
    ntf_metric(tx, "sent", 1);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_notify_sent);
    CRM_SET_STR(&ev, notify_sent, request_id, j->request_id);
    CRM_SET_STR(&ev, notify_sent, channel, chn);
    if (j->provider_id[0])
        CRM_SET_STR(&ev, notify_sent, provider_id, j->provider_id);
    CRM_SET_I64(&ev, notify_sent, attempt, j->attempt);
    if (resent)
        CRM_SET_BOOL(&ev, notify_sent, resent, true);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_debug("notify.sent", "id=%s channel=%s attempt=%lld provider=%s%s", j->id, chn, (long long) j->attempt,
              j->provider_id, resent ? " resent=1" : "");
}

int ntf_outcome(crm_service_t *svc, ntf_job_t **jobs, size_t cnt)
{
    ntf_t *n = ntf_of(svc);
    /* What each notification is now: a receipt may have come before the
       gateway's answer (a delivered message is sent, whatever its lane made
       of the answer); an outcome tried again after a commit that did apply
       finds its notification moved on, and changes nothing. */
    crm_tx_reset(n->reads);
    for (size_t i = 0; i < cnt; i++)
        crm_tx_cmd(n->reads, "HMGET " CRM_KEY_NOTIFY_FMT " state sending_ms", jobs[i]->id);
    if (crm_store_pipeline(crm_service_store(svc), n->reads) != 0)
        return -1;
    crm_tx_t *tx = crm_service_tx(svc);
    int64_t now = crm_now_ms();
    zhash_t *disabled = zhash_new();
    bool hold = !strcmp(n->uncertain, "hold");
    for (size_t i = 0; i < cnt; i++) {
        ntf_job_t *j = jobs[i];
        const redisReply *st = crm_tx_result(n->reads, (int) i);
        const char *state = st && st->type == REDIS_REPLY_ARRAY && st->elements == 2 &&
                                    st->element[0]->type == REDIS_REPLY_STRING
                                ? st->element[0]->str
                                : "";
        int64_t sending = st && st->type == REDIS_REPLY_ARRAY && st->elements == 2 &&
                                  st->element[1]->type == REDIS_REPLY_STRING
                              ? strtoll(st->element[1]->str, NULL, 10)
                              : -1;
        bool receipted = !strcmp(state, "delivered") || !strcmp(state, "undelivered");
        if ((strcmp(state, "sending") && !receipted) || sending != j->sending_ms) {
            crm_info("notify.outcome_stale", "id=%s state=%s (applied already, or another attempt since)", j->id,
                     state);
            continue;
        }
        const char *chn = crm_channel_name(j->channel);
        char code[128];
        if (j->status && !j->code_out[0])
            snprintf(code, sizeof code, "%ld", j->status);
        else
            snprintf(code, sizeof code, "%s", j->code_out);
        if (receipted && j->outcome != NTF_OK) {
            crm_info("notify.receipted", "id=%s (the gateway's receipt came; its answer said %s)", j->id, code);
            j->outcome = NTF_OK;
        }
        /* an attempt whose outcome is known ends the uncertainty; a passing
           failure or a deferral keeps it for the next attempt */
        if ((j->reconcile || j->unknown) && j->outcome != NTF_TEMP && j->outcome != NTF_LIMIT)
            crm_tx_cmd(tx, "HDEL " CRM_KEY_NOTIFY_FMT " check", j->id);
        if (j->channel == CRM_CHANNEL_WEBHOOK)
            ntf_webhook_after(svc, tx, j, disabled);
        switch (j->outcome) {
        case NTF_OK:
            s_sent(tx, j, receipted, now);
            break;
        case NTF_LIMIT:
            if (!j->reconcile)
                s_release(tx, j);
            crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " attempts -1", j->id);
            crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", j->id);
            s_defer(tx, j->id, j->request_id, chn, "gateway_limit", code, j->until_ms > now ? j->until_ms : now + 60000);
            crm_info("notify.limited", "id=%s channel=%s code=%s until=%lld", j->id, chn, code, (long long) j->until_ms);
            break;
        case NTF_TEMP: {
            if (!j->unknown && !j->reconcile)
                s_release(tx, j); /* it did not go: the day's count back (a maybe-sent one stays counted) */
            crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", j->id);
            int64_t at = now + s_backoff(n, j->attempt, j->retry_after_ms);
            bool ask = j->channel == CRM_CHANNEL_SMS && n->lane_cfg.sms_query_url[0];
            if (j->unknown && hold && !ask) {
                ntf_fail(tx, j->id, j->request_id, chn, "uncertain", NULL, code,
                         "no answer came after it was sent: it may have gone (notify dlq retry sends it)", j->attempt,
                         true);
                break;
            }
            if (j->unknown) {
                /* The request left and no answer came: it may have gone. The
                   next attempt is an uncertain one (counted once; an SMS is
                   looked up first, once the gateway has had the time to
                   record it). */
                crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " check 1", j->id);
                if (!j->reconcile) {
                    crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " uncertain 1", j->id);
                    ntf_metric(tx, "uncertain", 1);
                }
                int64_t settle = now + n->lane_cfg.timeout_ms + 2000;
                if (j->channel == CRM_CHANNEL_SMS && at < settle)
                    at = settle;
            }
            int64_t na = s_not_after(svc, j->id);
            if (j->attempt >= n->max_attempts || (na && at > na)) {
                ntf_fail(tx, j->id, j->request_id, chn, j->attempt >= n->max_attempts ? "exhausted" : "expired", NULL,
                         code, j->message, j->attempt, true);
                crm_warn("notify.exhausted", "id=%s channel=%s attempts=%lld code=%s why=\"%s\"", j->id, chn,
                         (long long) j->attempt, code, j->message);
            } else {
                s_defer(tx, j->id, j->request_id, chn, "retry", code, at);
                ntf_metric(tx, "retried", 1);
                crm_info("notify.retry", "id=%s channel=%s attempt=%lld code=%s in_ms=%lld why=\"%s\"", j->id, chn,
                         (long long) j->attempt, code, (long long) (at - now), j->message);
            }
            break;
        }
        case NTF_PERM:
        case NTF_GONE:
            if (!j->reconcile)
                s_release(tx, j);
            ntf_fail(tx, j->id, j->request_id, chn, j->outcome == NTF_GONE ? "endpoint_disabled" : "permanent", NULL,
                     code, j->message, j->attempt, true);
            crm_warn("notify.failed", "id=%s channel=%s code=%s why=\"%s\"", j->id, chn, code, j->message);
            break;
        }
    }
    zhash_destroy(&disabled);
    if (crm_service_commit(svc, tx) != 0) {
        ntf_intake_forget(); /* what the intake of this transaction kept is not committed */
        if (crm_store_last_error(crm_service_store(svc)) == CRM_STORE_REFUSED) {
            /* applied but for what Redis refused: kept for review, not
               tried again (that would apply the rest twice) */
            crm_reject_t r = {.origin = "notice", .kind = "outcome", .field = "commit",
                              .reason = "Redis refused part of the outcomes' commit"};
            crm_service_reject_partial(svc, tx, &r, -1, NULL, 0);
            crm_error("notify.outcome_refused", "count=%zu why=\"%s\"", cnt, crm_store_error(crm_service_store(svc)));
            return 0;
        }
        crm_warn("notify.outcome_unsaved", "count=%zu (tried again; on a crash left in crm:notify:inflight)", cnt);
        return -1;
    }
    return 0;
}

void ntf_requeue(crm_service_t *svc, ntf_job_t *jobs)
{
    crm_tx_t *tx = crm_service_tx(svc);
    int64_t now = crm_now_ms();
    size_t k = 0;
    for (ntf_job_t *j = jobs; j; j = j->next, k++) {
        char tid[NTF_ID_SZ + 2];
        snprintf(tid, sizeof tid, "n:%s", j->id);
        if (!j->reconcile)
            s_release(tx, j);
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " attempts -1", j->id);
        crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", j->id);
        s_set_state(tx, j->id, j->reconcile ? "deferred" : "queued", "stopped");
        crm_tx_due(tx, ntf_set(j->channel), tid, now);
        ntf_log(tx, j->id, "queued", "stopped", NULL, 0);
    }
    if (crm_service_commit(svc, tx) != 0)
        crm_warn("notify.requeue_failed", "count=%zu (left being sent: the next start looks at them)", k);
    while (jobs) {
        ntf_job_t *nx = jobs->next;
        ntf_job_free(jobs);
        jobs = nx;
    }
}

int ntf_reconcile(crm_service_t *svc, bool sweep)
{
    ntf_t *n = ntf_of(svc);
    crm_store_t *store = crm_service_store(svc);
    redisReply *r = crm_store_cmd(store, "SMEMBERS " CRM_KEY_NOTIFY_INFLIGHT);
    if (!r)
        return -1;
    size_t again = 0, held = 0;
    crm_tx_t *tx = crm_service_tx(svc);
    int64_t now = crm_now_ms();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *id = r->element[i]->str;
        if (!crm_id_valid(CRM_ID_NAME, id)) {
            crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", id);
            continue;
        }
        if (sweep && ntf_held(n, id))
            continue; /* being sent by this process */
        redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_NOTIFY_FMT, id);
        if (!h) {
            freeReplyObject(r);
            return -1;
        }
        const char *state = s_f(h, "state");
        if (h->type != REDIS_REPLY_ARRAY || !state || strcmp(state, "sending")) {
            crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", id);
            freeReplyObject(h);
            continue;
        }
        int64_t sending = s_i64(h, "sending_ms");
        if (sweep && now - sending < n->lane_cfg.timeout_ms + 5000) {
            freeReplyObject(h); /* a decision just committed: its job is on its way */
            continue;
        }
        const char *chn = s_f(h, "channel");
        bool sms = chn && !strcmp(chn, "sms");
        bool ask = sms && n->lane_cfg.sms_query_url[0];
        if (!strcmp(n->uncertain, "hold") && !ask) {
            ntf_fail(tx, id, s_f(h, "request_id") ? s_f(h, "request_id") : "", chn ? chn : "", "uncertain", NULL,
                     NULL, "the process stopped while it was being sent: it may have gone (notify dlq retry sends it)",
                     s_i64(h, "attempts"), true);
            held++;
            freeReplyObject(h);
            continue;
        }
        /* Decided again like any other (consent, quiet hours, not_after
           hold); an SMS once the gateway has had the time to record the
           lost request, then looked up before it goes. */
        int64_t at = ask ? sending + n->lane_cfg.timeout_ms + 2000 : now;
        if (at < now)
            at = now;
        char tid[NTF_ID_SZ + 2];
        snprintf(tid, sizeof tid, "n:%s", id);
        s_set_state(tx, id, "deferred", "uncertain");
        crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " check 1 next_ms %lld", id, (long long) at);
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " attempts -1", id);
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_NOTIFY_FMT " uncertain 1", id);
        crm_tx_cmd(tx, "SREM " CRM_KEY_NOTIFY_INFLIGHT " %s", id);
        crm_tx_due(tx, ntf_set(crm_channel_parse(chn ? chn : "")), tid, at);
        ntf_log(tx, id, "deferred", "uncertain", NULL, 0);
        ntf_metric(tx, "uncertain", 1);
        freeReplyObject(h);
        again++;
    }
    freeReplyObject(r);
    if (crm_tx_size(tx) && crm_service_commit(svc, tx) != 0)
        return -1;
    if (again || held)
        crm_warn("notify.reconcile", "uncertain=%zu held=%zu sweep=%d (being sent when a process stopped or a commit "
                 "failed: decided again; sms looked up at the gateway first, others sent with the same id)",
                 again, held, sweep);
    return 0;
}

void ntf_tick_sweep(crm_service_t *svc)
{
    if (ntf_reconcile(svc, true) != 0)
        crm_warn("notify.sweep_failed", "why=\"%s\"", crm_store_error(crm_service_store(svc)));
}

/* notify.retry: a dead letter goes again as new (its attempts start over). */
crm_handled_t ntf_req_retry(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const char *rid = crm_req_msg(req)->body.notify_retry.request_id;
    char err[160];
    if (crm_id_check(CRM_ID_KEY, rid, "request_id", err, sizeof err) != 0)
        return crm_req_fail_text(req, "bad_id", err);
    char digest[CRM_ID_DIGEST_SZ];
    const char *parts[] = {rid};
    crm_id_digest(parts, 1, digest);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "GET " CRM_KEY_NOTIFY_REQ_FMT, digest);
    if (!r)
        return crm_req_unavailable(req);
    char id[NTF_ID_SZ] = "";
    if (r->type == REDIS_REPLY_STRING)
        snprintf(id, sizeof id, "%s", r->str);
    freeReplyObject(r);
    if (!id[0])
        return crm_req_fail(req, "request_id", "unknown", "request_id: no notification with this id");
    if (!(r = crm_store_cmd(crm_service_store(svc), "HMGET " CRM_KEY_NOTIFY_FMT " state text refused class channel", id)))
        return crm_req_unavailable(req);
    bool four = r->type == REDIS_REPLY_ARRAY && r->elements == 5;
    char state[24] = "", cls[24] = "", chn[24] = "";
    if (four && r->element[4]->type == REDIS_REPLY_STRING)
        snprintf(chn, sizeof chn, "%s", r->element[4]->str);
    if (four && r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(state, sizeof state, "%s", r->element[0]->str);
    if (four && r->element[3]->type == REDIS_REPLY_STRING)
        snprintf(cls, sizeof cls, "%s", r->element[3]->str);
    bool has_text = four && r->element[1]->type == REDIS_REPLY_STRING;
    bool refused = four && r->element[2]->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    if (strcmp(state, "dead"))
        return crm_req_fail(req, "request_id", "not_dead", "request_id: only a dead letter is retried (state %s)", state);
    if (!has_text || refused)
        return crm_req_fail(req, "request_id", "invalid",
                            "request_id: it was refused as asked (see its reason): ask again with a corrected request");
    int64_t now = crm_now_ms();
    ntf_t *n = ntf_of(svc);
    int c = crm_class_parse(cls);
    char tid[NTF_ID_SZ + 2], na[24];
    snprintf(tid, sizeof tid, "n:%s", id);
    /* a fresh life: attempts and the age limit of its class start now */
    snprintf(na, sizeof na, "%lld", (long long) (now + n->max_age_ms[c >= 0 ? c : CRM_CLASS_TRANSACTIONAL]));
    s_set_state(tx, id, "queued", "dlq_retry");
    crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_DLQ_STATE " %s retried:%lld", id, (long long) now);
    crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " attempts 0 not_after %s", id, na);
    crm_tx_due(tx, ntf_set(crm_channel_parse(chn)), tid, now);
    ntf_log(tx, id, "queued", "dlq_retry", NULL, 0);
    crm_info("notify.dlq_retry", "id=%s request=%.80s", id, rid);
    crm_req_ok(req, id);
    return CRM_APPLIED;
}
