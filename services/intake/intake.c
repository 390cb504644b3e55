/*  intake: one submission, from frame to committed answer. */
#include "intake.h"

#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"

#define INTAKE_SID_MAX 256
#define INTAKE_ATTEMPTS 3

/* Encodes an answer that travels point to point (no stream, no number). */
static void s_encode_answer(crm_msg_t *msg, msgpack_sbuffer *out)
{
    char stream[CRM_NAME_MAX];
    memcpy(stream, msg->stream, sizeof stream);
    msg->stream[0] = 0;
    if (crm_msg_encode(msg, out, NULL) != 0)
        crm_error("intake.encode_failed", "type=%s", crm_type_name(msg->type));
    memcpy(msg->stream, stream, sizeof stream);
}

static void s_answer_error(const char *sid, const char *field, const char *code, const char *text,
                           msgpack_sbuffer *out)
{
    crm_msg_t ans;
    crm_msg_init(&ans, CRM_T_lead_rejected);
    crm_new_id(ans.id, sizeof ans.id);
    ans.ts = crm_now_ms();
    snprintf(ans.producer, sizeof ans.producer, "intake");
    CRM_SET_STR(&ans, lead_rejected, submission_id, sid ? sid : "");
    char line[400];
    snprintf(line, sizeof line, "%s|%s|%s", field, code, text);
    crm_strs_push(&ans.body.lead_rejected.errors, line);
    ans.body.lead_rejected.has.errors = true;
    s_encode_answer(&ans, out);
    crm_msg_clear(&ans);
}

static long long s_incr(crm_store_t *store, const char *key)
{
    redisReply *r = crm_store_cmd(store, "INCR %s", key);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static char *s_get(crm_store_t *store, const char *fmt, const char *arg, bool *failed)
{
    redisReply *r = crm_store_cmd(store, fmt, arg);
    if (!r) {
        *failed = true;
        return NULL;
    }
    char *v = r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    return v;
}

/* The stored record of customer `cid` (fields only). */
static int s_load_customer(crm_store_t *store, const char *cid, crm_fields_t *cur)
{
    memset(cur, 0, sizeof *cur);
    redisReply *r = crm_store_cmd(store, "HGETALL " CRM_KEY_CUST_FMT, cid);
    if (!r)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        int f = crm_cf_from_name(r->element[i]->str);
        if (f >= 0 && r->element[i + 1]->len)
            cur->v[f] = strdup(r->element[i + 1]->str);
    }
    freeReplyObject(r);
    return 0;
}

/* The record's findings as they stand after this lead: the same rules, run
   over the merged record. */
static void s_record_findings(const crm_fields_t *rec, crm_issues_t *issues)
{
    crm_body_lead_submit_t view;
    memset(&view, 0, sizeof view);
#define S_VIEW(f) view.f = rec->v[CRM_CF_##f];
    CRM_CUSTOMER_FIELDS(S_VIEW)
#undef S_VIEW
    crm_fields_t scratch;
    crm_lead_check(&view, 0, &scratch, issues);
    crm_fields_clear(&scratch);
}

static void s_rejected(crm_service_t *svc, const crm_body_lead_submit_t *lead, const crm_issues_t *is,
                       const void *frame, size_t len, crm_tx_t *tx, msgpack_sbuffer *out)
{
    crm_store_t *store = crm_service_store(svc);
    long long q = s_incr(store, "crm:ids:quarantine");
    if (q < 0) {
        s_answer_error(lead->submission_id, "service", "unavailable", "Redis is unavailable; retry", out);
        return;
    }
    char qid[32], entry[32], now[24];
    snprintf(qid, sizeof qid, "Q%lld", q);
    snprintf(entry, sizeof entry, "%lld-0", q);
    snprintf(now, sizeof now, "%lld", (long long) crm_now_ms());
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_lead_rejected);
    CRM_SET_STR(&ev, lead_rejected, submission_id, lead->submission_id);
    CRM_SET_STR(&ev, lead_rejected, quarantine_id, qid);
    ev.body.lead_rejected.has.errors = true;
    char errors[4096] = "";
    size_t used = 0;
    for (int i = 0; i < is->n; i++) {
        if (is->v[i].severity != CRM_SEV_REJECT)
            continue;
        char line[320];
        crm_issue_format(&is->v[i], line, sizeof line);
        crm_strs_push(&ev.body.lead_rejected.errors, line);
        int n = snprintf(errors + used, sizeof errors - used, "%s%s", used ? "\n" : "", line);
        if (n > 0 && (size_t) n < sizeof errors - used)
            used += (size_t) n;
    }
    snprintf(ev.corr, sizeof ev.corr, "%.*s", CRM_ID_MAX - 1, lead->submission_id);
    crm_tx_cmd(tx, "XADD " CRM_KEY_QUARANTINE " %s quarantine_id %s submission_id %s channel %s "
                   "received_ms %s errors %s frame %b",
               entry, qid, lead->submission_id, lead->channel, now, errors, frame, len);
    crm_tx_cmd(tx, "HSET " CRM_KEY_QUARANTINE_STATE " %s open", qid);
    crm_tx_emit(tx, &ev); /* fills id, ts, producer */
    s_encode_answer(&ev, out);
    crm_tx_cmd(tx, "SET " CRM_KEY_SUBMISSION_FMT " %b", lead->submission_id, out->data, out->size);
    crm_msg_clear(&ev);
    int rc = crm_service_commit(svc, tx);
    if (rc != 0) {
        out->size = 0;
        s_answer_error(lead->submission_id, "service", "unavailable", "not stored; retry with the same submission_id", out);
        return;
    }
    char sid[80];
    crm_info("lead.rejected", "submission=%s quarantine=%s errors=%d", crm_log_value(lead->submission_id, sid, sizeof sid),
             qid, is->rejects);
}

/* Adds "key value" to an argv when the value is there. */
static void s_arg(const char **argv, size_t *lens, int *argc, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    argv[*argc] = key;
    lens[(*argc)++] = strlen(key);
    argv[*argc] = value;
    lens[(*argc)++] = strlen(value);
}

/* Accepts a checked lead: match, merge, store, emit. 0, CRM_TX_CONFLICT or -1. */
static int s_accept(crm_service_t *svc, const crm_msg_t *msg, crm_fields_t *f, const crm_issues_t *is,
                    crm_tx_t *tx, msgpack_sbuffer *out)
{
    const crm_body_lead_submit_t *lead = &msg->body.lead_submit;
    crm_store_t *store = crm_service_store(svc);
    const char *mobile = f->indexable_mobile ? f->v[CRM_CF_mobile] : NULL;
    const char *idnum = f->indexable_id ? f->v[CRM_CF_id_number] : NULL;
    /* Another intake instance may create the same customer meanwhile:
       watch the match keys, and redo the reads if one changes. */
    char wm[64] = "crm:idx:none", wi[64] = "crm:idx:none";
    if (mobile)
        snprintf(wm, sizeof wm, CRM_KEY_IDX_MOBILE_FMT, mobile);
    if (idnum)
        snprintf(wi, sizeof wi, CRM_KEY_IDX_ID_FMT, idnum);
    redisReply *w = crm_store_cmd(store, "WATCH %s %s", wm, wi);
    if (!w)
        return -1;
    freeReplyObject(w);
    bool failed = false;
    char *cid = NULL;
    const char *match = NULL;
    if (idnum && (cid = s_get(store, "GET " CRM_KEY_IDX_ID_FMT, idnum, &failed)))
        match = "id_number";
    if (!cid && mobile && (cid = s_get(store, "GET " CRM_KEY_IDX_MOBILE_FMT, mobile, &failed)))
        match = "mobile";
    long long lnum = failed ? -1 : s_incr(store, "crm:ids:lead");
    if (lnum < 0) {
        free(cid);
        return -1;
    }
    bool merged = cid != NULL;
    if (!merged) {
        long long c = s_incr(store, "crm:ids:customer");
        if (c < 0)
            return -1;
        if (asprintf(&cid, "C%lld", c) < 0)
            return -1;
    }
    char lid[32], now[24];
    snprintf(lid, sizeof lid, "L%lld", lnum);
    int64_t now_ms = crm_now_ms();
    snprintf(now, sizeof now, "%lld", (long long) now_ms);
    crm_fields_t cur;
    if (s_load_customer(store, cid, &cur) != 0) {
        free(cid);
        return -1;
    }

    /* Merge: a known value is never blanked; a different one becomes current
       and the old one stays in the history. */
    crm_msg_t upd;
    crm_msg_init(&upd, CRM_T_customer_updated);
    for (int i = 0; i < CRM_CF_COUNT; i++) {
        const char *nv = f->v[i];
        if (!nv || (cur.v[i] && !strcmp(cur.v[i], nv)))
            continue;
        const char *name = crm_cf_name((crm_cf_t) i);
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " %s %s", cid, name, nv);
        crm_tx_cmd(tx, "XADD " CRM_KEY_CUST_FMT ":history * field %s old %s new %s channel %s lead %s ts %s",
                   cid, name, cur.v[i] ? cur.v[i] : "", nv, lead->channel, lid, now);
        crm_strs_push(&upd.body.customer_updated.fields, name);
        free(cur.v[i]);
        cur.v[i] = strdup(nv);
    }
    if (!merged)
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " created_ms %s first_channel %s", cid, now, lead->channel);
    crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " updated_ms %s", cid, now);
    if (mobile)
        crm_tx_cmd(tx, "SET " CRM_KEY_IDX_MOBILE_FMT " %s", mobile, cid);
    if (idnum)
        crm_tx_cmd(tx, "SET " CRM_KEY_IDX_ID_FMT " %s", idnum, cid);
    if (f->v[CRM_CF_name])
        crm_tx_cmd(tx, "SADD " CRM_KEY_IDX_NAME_FMT " %s", f->v[CRM_CF_name], cid);

    /* The record's findings as it now stands. */
    crm_issues_t rec = {0};
    s_record_findings(&cur, &rec);
    crm_tx_cmd(tx, "DEL " CRM_KEY_CUST_FMT ":findings", cid);
    for (int i = 0; i < rec.n; i++) {
        if (rec.v[i].severity == CRM_SEV_REJECT)
            continue;
        char key[80], val[260];
        snprintf(key, sizeof key, "%s:%s", rec.v[i].field, rec.v[i].code);
        snprintf(val, sizeof val, "%s|%s", crm_severity_name(rec.v[i].severity), rec.v[i].message);
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT ":findings %s %s", cid, key, val);
    }

    /* The lead itself. */
    char tdat[24] = "";
    if (lead->has.testdrive_at)
        snprintf(tdat, sizeof tdat, "%lld", (long long) lead->testdrive_at);
    const char *argv[40];
    size_t lens[40];
    int argc = 0;
    char leadkey[64];
    snprintf(leadkey, sizeof leadkey, CRM_KEY_LEAD_FMT, lid);
#define S_ARG(k, v) s_arg(argv, lens, &argc, (k), (v))
    argv[argc] = "HSET", lens[argc++] = 4;
    argv[argc] = leadkey, lens[argc++] = strlen(leadkey);
    S_ARG("customer_id", cid);
    S_ARG("submission_id", lead->submission_id);
    S_ARG("channel", lead->channel);
    S_ARG("source", lead->source);
    S_ARG("model", lead->model);
    S_ARG("intent_grade", lead->intent_grade);
    S_ARG("expected_purchase_date", lead->expected_purchase_date);
    S_ARG("dealer_id", lead->dealer_id);
    S_ARG("testdrive_at", tdat);
    S_ARG("remark", lead->remark);
    S_ARG("created_ms", now);
    S_ARG("match", match);
#undef S_ARG
    crm_tx_cmdargv(tx, argc, argv, lens);
    crm_tx_cmd(tx, "RPUSH " CRM_KEY_CUST_FMT ":leads %s", cid, lid);

    /* Events. */
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_lead_created);
    snprintf(ev.corr, sizeof ev.corr, "%.*s", CRM_ID_MAX - 1, lead->submission_id);
    CRM_SET_STR(&ev, lead_created, lead_id, lid);
    CRM_SET_STR(&ev, lead_created, customer_id, cid);
    CRM_SET_STR(&ev, lead_created, channel, lead->channel);
    CRM_SET_STR(&ev, lead_created, source, lead->source);
    CRM_SET_STR(&ev, lead_created, model, lead->model);
    CRM_SET_STR(&ev, lead_created, intent_grade, lead->intent_grade);
    CRM_SET_STR(&ev, lead_created, dealer_id, lead->dealer_id);
    CRM_SET_STR(&ev, lead_created, submission_id, lead->submission_id);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    if (merged) {
        crm_msg_init(&ev, CRM_T_lead_merged);
        CRM_SET_STR(&ev, lead_merged, lead_id, lid);
        CRM_SET_STR(&ev, lead_merged, customer_id, cid);
        CRM_SET_STR(&ev, lead_merged, match_key, match);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
    }
    if (upd.body.customer_updated.fields.n) {
        upd.body.customer_updated.has.fields = true;
        CRM_SET_STR(&upd, customer_updated, customer_id, cid);
        CRM_SET_STR(&upd, customer_updated, channel, lead->channel);
        crm_tx_emit(tx, &upd);
    }
    crm_msg_clear(&upd);
    if (lead->has.testdrive_at) {
        char tid[40];
        snprintf(tid, sizeof tid, "T%lld", lnum);
        crm_msg_init(&ev, CRM_T_testdrive_requested);
        CRM_SET_STR(&ev, testdrive_requested, testdrive_id, tid);
        CRM_SET_STR(&ev, testdrive_requested, lead_id, lid);
        CRM_SET_STR(&ev, testdrive_requested, customer_id, cid);
        CRM_SET_STR(&ev, testdrive_requested, dealer_id, lead->dealer_id);
        CRM_SET_STR(&ev, testdrive_requested, model, lead->model);
        CRM_SET_I64(&ev, testdrive_requested, at, lead->testdrive_at);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
    }

    /* The answer, kept for resends in the same transaction. */
    crm_msg_t ans;
    crm_msg_init(&ans, CRM_T_lead_accepted);
    crm_new_id(ans.id, sizeof ans.id);
    ans.ts = now_ms;
    snprintf(ans.producer, sizeof ans.producer, "intake");
    snprintf(ans.corr, sizeof ans.corr, "%.*s", CRM_ID_MAX - 1, lead->submission_id);
    CRM_SET_STR(&ans, lead_accepted, submission_id, lead->submission_id);
    CRM_SET_STR(&ans, lead_accepted, lead_id, lid);
    CRM_SET_STR(&ans, lead_accepted, customer_id, cid);
    CRM_SET_BOOL(&ans, lead_accepted, merged, merged);
    for (int i = 0; i < is->n; i++) {
        char line[320];
        crm_issue_format(&is->v[i], line, sizeof line);
        crm_strs_push(&ans.body.lead_accepted.findings, line);
        ans.body.lead_accepted.has.findings = true;
    }
    s_encode_answer(&ans, out);
    crm_msg_clear(&ans);
    crm_tx_cmd(tx, "SET " CRM_KEY_SUBMISSION_FMT " %b", lead->submission_id, out->data, out->size);

    int rc = crm_service_commit(svc, tx);
    if (rc == 0) {
        char sid[80], m[16];
        crm_info("lead.accepted", "submission=%s lead=%s customer=%s merged=%s match=%s mobile=%s findings=%d",
                 crm_log_value(lead->submission_id, sid, sizeof sid), lid, cid, merged ? "yes" : "no",
                 match ? match : "-", crm_mask_phone(mobile ? mobile : "", m, sizeof m), is->n);
    }
    crm_fields_clear(&cur);
    free(cid);
    return rc;
}

void intake_handle(crm_service_t *svc, const void *frame, size_t len, msgpack_sbuffer *out)
{
    crm_msg_t msg;
    crm_err_t err;
    if (crm_msg_decode(frame, len, &msg, &err) != 0) {
        crm_warn("intake.frame_refused", "field=%s code=%s reason=\"%s\"", err.field,
                 crm_errcode_name(err.code), err.text);
        crm_service_keep_reject(svc, "intake", err.field, err.text, frame, len);
        s_answer_error(NULL, err.field, crm_errcode_name(err.code), err.text, out);
        return;
    }
    crm_log_context(msg.id);
    if (msg.type != CRM_T_lead_submit) {
        crm_service_keep_reject(svc, "intake", "type", "expected lead.submit", frame, len);
        s_answer_error(NULL, "type", "unexpected", "crm-intake takes lead.submit only", out);
        goto done;
    }
    const crm_body_lead_submit_t *lead = &msg.body.lead_submit;
    if (!lead->submission_id[0] || strlen(lead->submission_id) > INTAKE_SID_MAX) {
        s_answer_error(lead->submission_id, "submission_id", "invalid",
                       "submission_id must be 1 to 256 bytes", out);
        goto done;
    }
    crm_store_t *store = crm_service_store(svc);
    for (int attempt = 0; attempt < INTAKE_ATTEMPTS; attempt++) {
        /* A resend gets the first answer, byte for byte. */
        redisReply *r = crm_store_cmd(store, "GET " CRM_KEY_SUBMISSION_FMT, lead->submission_id);
        if (!r) {
            s_answer_error(lead->submission_id, "service", "unavailable",
                           "Redis is unavailable; retry with the same submission_id", out);
            goto done;
        }
        if (r->type == REDIS_REPLY_STRING) {
            msgpack_sbuffer_write(out, r->str, r->len);
            freeReplyObject(r);
            char sid[80];
            crm_info("lead.resend", "submission=%s", crm_log_value(lead->submission_id, sid, sizeof sid));
            goto done;
        }
        freeReplyObject(r);
        crm_fields_t f;
        crm_issues_t is = {0};
        crm_tx_t *tx = crm_service_tx(svc);
        out->size = 0;
        if (crm_lead_check(lead, crm_now_ms(), &f, &is) > 0) {
            s_rejected(svc, lead, &is, frame, len, tx, out);
            crm_fields_clear(&f);
            goto done;
        }
        int rc = s_accept(svc, &msg, &f, &is, tx, out);
        crm_fields_clear(&f);
        if (rc == 0)
            goto done;
        redisReply *u = crm_store_cmd(store, "UNWATCH");
        freeReplyObject(u);
        if (rc != CRM_TX_CONFLICT)
            break;
        crm_info("lead.conflict", "attempt=%d", attempt + 1);
    }
    out->size = 0;
    s_answer_error(lead->submission_id, "service", "unavailable",
                   "the lead was not stored; retry with the same submission_id", out);
done:
    crm_log_context(NULL);
    crm_msg_clear(&msg);
}
