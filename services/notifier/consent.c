/*  Consent (PIPL: provable, and refusing is easy): an append-only ledger
 *  per customer (crm:consent:{C}:ledger: channel, state, source, the text
 *  the customer saw or sent, when, by whom) and the current state per
 *  channel beside it (crm:consent:{C}). A statement older than the current
 *  one is kept in the ledger but does not change the state.
 *
 *  Also here: what the SMS gateway sends back, pulled from its queue with
 *  a cursor kept in the same commit (a crash pulls the same items again):
 *  delivery receipts become notify.delivered; replies are kept in
 *  crm:notify:replies, and a reply of TD, T, R or 退订 is an opt-out of
 *  SMS in the ledger of the customer the number belongs to (or of
 *  tel:<mobile> when no record has it).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "crm_calendar.h"
#include "crm_lead.h"
#include "crm_norm.h"
#include "notifier.h"

static bool s_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *) s + i, (utf8proc_ssize_t) (n - i), &c);
        if (k <= 0)
            return false;
        i += (size_t) k;
    }
    return true;
}

static bool s_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max || !s_utf8_valid(s, n))
        return false;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p < 0x20 && *p != '\n')
            return false;
    return true;
}

void ntf_consent_add(crm_tx_t *tx, const char *subject, const char *channel, const char *state, const char *source,
                     const char *text, int64_t at, const char *by)
{
    ntf_consent_add_current(tx, subject, channel, state, source, text, at, by, true);
}

void ntf_consent_add_current(crm_tx_t *tx, const char *subject, const char *channel, const char *state,
                             const char *source, const char *text, int64_t at, const char *by, bool current)
{
    char key[96], at_s[24], val[160];
    snprintf(key, sizeof key, CRM_KEY_CONSENT_LEDGER_FMT, subject);
    snprintf(at_s, sizeof at_s, "%lld", (long long) at);
    const char *argv[] = {"XADD", key, "*", "channel", channel, "state", state, "source", source,
                          "text", text ? text : "", "at", at_s, "by", by ? by : ""};
    crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    if (current) {
        snprintf(key, sizeof key, CRM_KEY_CONSENT_FMT, subject);
        snprintf(val, sizeof val, "%s|%lld|%.100s", state, (long long) at, source);
        crm_tx_cmd(tx, "HSET %s %s %s", key, channel, val);
    }
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_consent_changed);
    CRM_SET_STR(&ev, consent_changed, customer_id, subject);
    CRM_SET_STR(&ev, consent_changed, channel, channel);
    CRM_SET_STR(&ev, consent_changed, state, state);
    CRM_SET_STR(&ev, consent_changed, source, source);
    if (text && *text)
        CRM_SET_STR(&ev, consent_changed, text, text);
    CRM_SET_I64(&ev, consent_changed, at, at);
    CRM_SET_BOOL(&ev, consent_changed, current, current);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

/* The current statement's time for a channel, 0 when none; -1 on failure. */
static int64_t s_current_at(crm_service_t *svc, const char *subject, const char *channel)
{
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_CONSENT_FMT, subject);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGET %s %s", key, channel);
    if (!r)
        return -1;
    int64_t at = 0;
    const char *bar = r->type == REDIS_REPLY_STRING ? strchr(r->str, '|') : NULL;
    if (bar)
        at = strtoll(bar + 1, NULL, 10);
    freeReplyObject(r);
    return at;
}

crm_handled_t ntf_req_consent(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_consent_set_t *b = &crm_req_msg(req)->body.consent_set;
    const char *c = b->customer_id;
    bool tel = !strncmp(c, "tel:", 4) && strlen(c) == 15 && strspn(c + 4, "0123456789") == 11;
    char err[160];
    if (!tel && crm_id_check(CRM_ID_NAME, c, "customer_id", err, sizeof err) != 0)
        return crm_req_fail_text(req, "bad_id", err);
    if (strcmp(b->channel, "sms") && strcmp(b->channel, "email") && strcmp(b->channel, "call"))
        return crm_req_fail(req, "channel", "invalid", "channel: sms, email or call");
    if (strcmp(b->state, "opt_in") && strcmp(b->state, "opt_out"))
        return crm_req_fail(req, "state", "invalid", "state: opt_in or opt_out");
    if (!b->source[0] || !s_text_ok(b->source, 64) || strchr(b->source, '\n') || strchr(b->source, '|'))
        return crm_req_fail(req, "source", "invalid", "source: 1 to 64 bytes of text on one line, without '|'");
    if (b->has.text && !s_text_ok(b->text, 2000))
        return crm_req_fail(req, "text", "invalid", "text: at most 2000 bytes of UTF-8 without control characters");
    int64_t now = crm_now_ms();
    int64_t at = b->has.at ? b->at : now;
    if (at <= 0 || at > now + 300000)
        return crm_req_fail(req, "at", "invalid", "at: when the customer gave it, not in the future");
    if (at > now)
        at = now; /* a clock a little ahead: in force from now */
    if (!tel) {
        redisReply *r = crm_store_cmd(crm_service_store(svc), "EXISTS " CRM_KEY_CUST_FMT, c);
        if (!r)
            return crm_req_unavailable(req);
        bool known = r->integer == 1;
        freeReplyObject(r);
        if (!known)
            return crm_req_fail(req, "customer_id", "unknown", "customer_id: no customer %s", c);
    }
    int64_t cur = s_current_at(svc, c, b->channel);
    if (cur < 0)
        return crm_req_unavailable(req);
    bool current = at >= cur;
    ntf_consent_add_current(tx, c, b->channel, b->state, b->source, b->has.text ? b->text : NULL, at,
                            crm_req_peer(req) ? crm_req_peer(req) : "crmctl", current);
    crm_info("consent.set", "subject=%s channel=%s state=%s source=%s current=%d", c, b->channel, b->state, b->source,
             current);
    crm_msg_t *ans = crm_req_ok(req, c);
    if (!current) {
        crm_strs_push(&ans->body.reply.fields, "current=false (an older statement: kept in the ledger only)");
        ans->body.reply.has.fields = true;
    }
    return CRM_APPLIED;
}

/* "YYYY-MM-DD HH:MM:SS" China time -> ms; `fallback` when unreadable. */
static int64_t s_cst(const char *s, int64_t fallback)
{
    int y, mo, d, h, mi, se;
    if (!s || sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6)
        return fallback;
    int64_t day = crm_day_from_ymd(y, mo, d);
    if (day < 0 || h > 23 || mi > 59 || se > 60)
        return fallback;
    return crm_cst_day_start_ms(day) + ((int64_t) h * 3600 + mi * 60 + se) * 1000;
}

static const char *s_str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

void ntf_apply_pull(crm_service_t *svc, const char *json, size_t len, const char *from)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    json_t *cursor = json_object_get(root, "cursor");
    json_t *reports = json_object_get(root, "reports"), *replies = json_object_get(root, "replies");
    if (!json_is_integer(cursor) || json_integer_value(cursor) < 0) {
        crm_warn("sms.pull_refused", "why=\"no cursor in the gateway's answer\" at=%d", jerr.position);
        json_decref(root);
        return;
    }
    size_t nrep = json_array_size(reports), nreply = json_array_size(replies);
    long long next = (long long) json_integer_value(cursor);
    if (!nrep && !nreply) {
        /* nothing new; a cursor the gateway moved all the same is kept */
        if (from && next != atoll(from)) {
            redisReply *r = crm_store_cmd(crm_service_store(svc), "SET " CRM_KEY_NOTIFY_SMS_CURSOR " %lld", next);
            freeReplyObject(r);
        }
        json_decref(root);
        return;
    }
    crm_store_t *store = crm_service_store(svc);
    crm_tx_t *tx = crm_service_tx(svc);
    int64_t now = crm_now_ms();
    size_t i;
    json_t *e;
    size_t delivered = 0, optouts = 0;
    /* the notifications the receipts name, in one round trip */
    crm_tx_t *rd = ntf_of(svc)->reads;
    crm_tx_reset(rd);
    json_array_foreach(reports, i, e)
    {
        const char *out = s_str(e, "out_id");
        char digest[CRM_ID_DIGEST_SZ] = "-";
        if (*out && crm_id_check(CRM_ID_KEY, out, "out_id", NULL, 0) == 0) {
            const char *parts[] = {out};
            crm_id_digest(parts, 1, digest);
        }
        crm_tx_cmd(rd, "GET " CRM_KEY_NOTIFY_REQ_FMT, digest);
    }
    if (nrep && crm_store_pipeline(store, rd) != 0) {
        json_decref(root);
        return; /* pulled again later */
    }
    json_array_foreach(reports, i, e)
    {
        const char *out = s_str(e, "out_id");
        const redisReply *r = crm_tx_result(rd, (int) i);
        char id[NTF_ID_SZ] = "";
        if (r && r->type == REDIS_REPLY_STRING && r->len < sizeof id)
            snprintf(id, sizeof id, "%s", r->str);
        if (!id[0]) {
            crm_info("sms.receipt_unknown", "out_id=%.80s", out);
            continue;
        }
        bool ok = json_is_true(json_object_get(e, "success"));
        const char *code = s_str(e, "err_code");
        int64_t at = s_cst(json_string_value(json_object_get(e, "report_time")), now);
        crm_tx_cmd(tx, "HSET " CRM_KEY_NOTIFY_FMT " state %s delivered_ms %lld delivery_code %s", id,
                   ok ? "delivered" : "undelivered", (long long) at, code);
        ntf_log(tx, id, ok ? "delivered" : "undelivered", NULL, code, 0);
        ntf_metric(tx, ok ? "delivered" : "undelivered", 1);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_notify_delivered);
        CRM_SET_STR(&ev, notify_delivered, request_id, out);
        CRM_SET_STR(&ev, notify_delivered, channel, "sms");
        CRM_SET_BOOL(&ev, notify_delivered, delivered, ok);
        if (*code)
            CRM_SET_STR(&ev, notify_delivered, code, code);
        if (*s_str(e, "biz_id"))
            CRM_SET_STR(&ev, notify_delivered, provider_id, s_str(e, "biz_id"));
        CRM_SET_I64(&ev, notify_delivered, at, at);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        delivered++;
    }
    /* the customers the replying numbers belong to, in one round trip */
    crm_tx_reset(rd);
    json_array_foreach(replies, i, e)
    {
        char m[CRM_NORM_MOBILE_SZ];
        crm_norm_code_t c = crm_norm_mobile(s_str(e, "phone_number"), m);
        crm_tx_cmd(rd, "GET " CRM_KEY_IDX_MOBILE_FMT, c == CRM_NORM_OK || c == CRM_NORM_NOT_IN_PLAN ? m : "-");
    }
    if (nreply && crm_store_pipeline(store, rd) != 0) {
        crm_tx_reset(tx);
        json_decref(root);
        return; /* pulled again later */
    }
    json_array_foreach(replies, i, e)
    {
        const char *phone = s_str(e, "phone_number"), *content = s_str(e, "content");
        char m[CRM_NORM_MOBILE_SZ];
        crm_norm_code_t c = crm_norm_mobile(phone, m);
        if (c != CRM_NORM_OK && c != CRM_NORM_NOT_IN_PLAN) {
            crm_info("sms.reply_refused", "why=\"not a mobile number\"");
            continue;
        }
        if (!s_utf8_valid(content, strlen(content)))
            content = "";
        int64_t at = s_cst(json_string_value(json_object_get(e, "send_time")), now);
        const redisReply *r = crm_tx_result(rd, (int) i);
        char subject[40], tel[40];
        snprintf(tel, sizeof tel, "tel:%s", m);
        if (r && r->type == REDIS_REPLY_STRING && crm_id_valid(CRM_ID_NAME, r->str))
            snprintf(subject, sizeof subject, "%s", r->str);
        else
            snprintf(subject, sizeof subject, "%s", tel);
        bool optout = crm_optout_reply(content);
        char at_s[24];
        snprintf(at_s, sizeof at_s, "%lld", (long long) at);
        char cut[1024];
        snprintf(cut, sizeof cut, "%s", content);
        crm_utf8_cut(cut);
        const char *argv[] = {"XADD", CRM_KEY_NOTIFY_REPLIES, "MAXLEN", "~", "1000000", "*", "phone", m,
                              "content", cut, "at", at_s, "customer_id", strncmp(subject, "tel:", 4) ? subject : "",
                              "optout", optout ? "1" : "0"};
        crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
        if (optout) {
            int64_t cur = s_current_at(svc, subject, "sms");
            if (cur < 0) {
                crm_tx_reset(tx);
                json_decref(root);
                return;
            }
            /* in force from when we learn it (the gateway's send_time is
               kept in crm:notify:replies): the customer's latest word */
            ntf_consent_add_current(tx, subject, "sms", "opt_out", "sms_reply", cut, now > cur ? now : cur, m, true);
            if (strcmp(subject, tel)) {
                /* the number's own record too: a message to it that names no
                   customer is refused as well */
                int64_t tcur = s_current_at(svc, tel, "sms");
                if (tcur < 0) {
                    crm_tx_reset(tx);
                    json_decref(root);
                    return;
                }
                ntf_consent_add_current(tx, tel, "sms", "opt_out", "sms_reply", cut, now > tcur ? now : tcur, m, true);
            }
            optouts++;
            crm_info("consent.sms_reply", "subject=%s reply=\"%s\"", subject, cut);
        }
    }
    crm_tx_cmd(tx, "SET " CRM_KEY_NOTIFY_SMS_CURSOR " %lld", next);
    if (crm_service_commit(svc, tx) != 0)
        crm_warn("sms.pull_lost", "reports=%zu replies=%zu (pulled again)", nrep, nreply);
    else if (delivered || nreply)
        crm_debug("sms.pulled", "receipts=%zu replies=%zu optouts=%zu", delivered, nreply, optouts);
    json_decref(root);
}
