/*  live: a customer record changed; its findings as it now stands.
 *
 *  One read (the record, its cars, what the auditor kept of it, its
 *  findings), crm_audit's rules, one transaction: the findings, the
 *  auditor's view of the record, the dealer's files and periods, the
 *  duplicate index, and an audit.finding for every error the record gained
 *  (audit.cleared for every one it lost), addressed to its dealer.
 */
#include <stdlib.h>
#include <string.h>

#include "auditor.h"
#include "crm_calendar.h"
#include "crm_norm.h"

/* The duplicate index (crm:audit:keys:<n>, crm:audit:dups): adds or takes
   a customer off a value's holders, and keeps the set of values held by
   two or more. Run as EVAL inside the transaction (crm_functions.c says
   why not as a library function). */
static const char s_key_lua[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) or ''\n"
    "local ids = {}\n"
    "for id in string.gmatch(v, '%S+') do if id ~= ARGV[2] then ids[#ids + 1] = id end end\n"
    "if ARGV[3] == 'add' then ids[#ids + 1] = ARGV[2] end\n"
    "if #ids == 0 then redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "else redis.call('HSET', KEYS[1], ARGV[1], table.concat(ids, ' ')) end\n"
    "if #ids >= 2 then redis.call('SADD', KEYS[2], ARGV[1]) else redis.call('SREM', KEYS[2], ARGV[1]) end\n"
    "return #ids\n";

unsigned aud_key_bucket(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CRM_AUDIT_KEY_BUCKETS;
}

static void s_index(crm_tx_t *tx, const char *key, const char *cid, const char *op)
{
    char bkey[48];
    snprintf(bkey, sizeof bkey, CRM_KEY_AUDIT_KEYS_FMT, aud_key_bucket(key));
    crm_tx_cmd(tx, "EVAL %s 2 %s %s %s %s %s", s_key_lua, bkey, CRM_KEY_AUDIT_DUPS, key, cid, op);
}

/* "m:<mobile>" for a real mobile, "i:<ID number>" for a valid one; "". */
static void s_dup_keys(const crm_audit_input_t *in, char m[24], char i[32])
{
    m[0] = i[0] = 0;
    char mobile[CRM_NORM_MOBILE_SZ];
    const char *mv = in->v[CRM_CF_mobile];
    if (mv && *mv) {
        crm_norm_code_t c = crm_norm_mobile(mv, mobile);
        if (c == CRM_NORM_OK || c == CRM_NORM_NOT_IN_PLAN)
            snprintf(m, 24, "m:%s", mobile);
    }
    const char *iv = in->v[CRM_CF_id_number];
    crm_idcard_t id;
    if (iv && *iv && crm_norm_idcard(iv, &id) == CRM_NORM_OK)
        snprintf(i, 32, "i:%s", id.id);
}

static bool s_word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list ? list : ""; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
            return true;
    return false;
}

/* What the message says of the record: its id, the dealer whose file it
   is, the fields that changed and whether a dealer's file changed them. */
typedef struct {
    const char *cid, *filed_by;
    const crm_strs_t *fields;
    bool by_lead;
} s_what_t;

static bool s_what(crm_service_t *svc, const crm_msg_t *msg, s_what_t *w)
{
    memset(w, 0, sizeof *w);
    const char *dealer = NULL;
    switch (msg->type) {
    case CRM_T_customer_updated:
        w->cid = msg->body.customer_updated.customer_id;
        w->fields = &msg->body.customer_updated.fields;
        w->by_lead = true;
        break;
    case CRM_T_customer_recorded:
        w->cid = msg->body.customer_recorded.customer_id;
        w->filed_by = dealer = msg->body.customer_recorded.dealer_id;
        w->fields = &msg->body.customer_recorded.fields;
        break;
    case CRM_T_owner_changed: w->cid = msg->body.owner_changed.customer_id; break;
    case CRM_T_order_placed: w->cid = msg->body.order_placed.customer_id; break;
    case CRM_T_order_cancelled: w->cid = msg->body.order_cancelled.customer_id; break;
    case CRM_T_followup_recorded: w->cid = msg->body.followup_recorded.customer_id; break;
    case CRM_T_prospect_lost: w->cid = msg->body.prospect_lost.customer_id; break;
    case CRM_T_prospect_reactivated: w->cid = msg->body.prospect_reactivated.customer_id; break;
    case CRM_T_vehicle_delivered: w->cid = msg->body.vehicle_delivered.customer_id; break;
    default: return false;
    }
    const char *ids[] = {w->cid, dealer};
    static const char *const names[] = {"customer_id", "dealer_id"};
    return crm_service_ids_ok(svc, ids, names, 2, 1);
}

/* The findings hash: "<field>:<code>" -> "<severity>|<message>". */
static const char *s_finding_severity(const redisReply *h, const char *key, char *buf, size_t size)
{
    const char *v = crm_reply_field(h, key);
    if (!v)
        return NULL;
    const char *bar = strchr(v, '|');
    snprintf(buf, size, "%.*s", bar ? (int) (bar - v) : (int) strlen(v), v);
    return buf;
}

static void s_emit_finding(crm_tx_t *tx, const char *cid, const char *dealer, const crm_issue_t *is,
                           const char *by)
{
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_audit_finding);
    CRM_SET_STR(&ev, audit_finding, customer_id, cid);
    CRM_SET_STR(&ev, audit_finding, dealer_id, dealer);
    CRM_SET_STR(&ev, audit_finding, field, is->field);
    CRM_SET_STR(&ev, audit_finding, code, is->code);
    CRM_SET_STR(&ev, audit_finding, severity, crm_severity_name(is->severity));
    CRM_SET_STR(&ev, audit_finding, message, is->message);
    CRM_SET_STR(&ev, audit_finding, rule, is->rule);
    int r = crm_rule_from_name(is->rule);
    CRM_SET_STR(&ev, audit_finding, part, crm_audit_part_name(crm_rule_part(r < 0 ? CRM_RULE_COUNT : (crm_rule_t) r)));
    CRM_SET_STR(&ev, audit_finding, consultant_id, by && *by ? by : NULL);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

static void s_emit_cleared(crm_tx_t *tx, const char *cid, const char *dealer, const char *key)
{
    const char *colon = strchr(key, ':');
    if (!colon)
        return;
    char field[64];
    snprintf(field, sizeof field, "%.*s", (int) (colon - key), key);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_audit_cleared);
    CRM_SET_STR(&ev, audit_cleared, customer_id, cid);
    CRM_SET_STR(&ev, audit_cleared, dealer_id, dealer);
    CRM_SET_STR(&ev, audit_cleared, field, field);
    CRM_SET_STR(&ev, audit_cleared, code, colon + 1);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

crm_handled_t aud_on_record(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    aud_t *a = aud_state(svc);
    s_what_t w;
    if (!s_what(svc, msg, &w))
        return CRM_REFUSE;
    crm_store_t *store = crm_service_store(svc);
    crm_handled_t rc = CRM_APPLIED;
    crm_tx_t *rd = crm_tx_new("auditor", 0), *vr = NULL;
    crm_audit_result_t *res = calloc(1, sizeof *res);
    if (!rd || !res) {
        rc = CRM_RETRY;
        goto out;
    }
    crm_tx_cmd(rd, "HGETALL " CRM_KEY_CUST_FMT, w.cid);
    crm_tx_cmd(rd, "SMEMBERS " CRM_KEY_CUST_FMT ":vehicles", w.cid);
    crm_tx_cmd(rd, "HGETALL " CRM_KEY_AUDIT_REC_FMT, w.cid);
    crm_tx_cmd(rd, "HGETALL " CRM_KEY_FINDINGS_FMT, w.cid);
    if (crm_store_pipeline(store, rd) != 0) {
        rc = crm_service_failed(svc);
        goto out;
    }
    const redisReply *cust = crm_tx_result(rd, 0), *vehs = crm_tx_result(rd, 1), *rec = crm_tx_result(rd, 2),
                     *old = crm_tx_result(rd, 3);
    if (!cust || cust->type != REDIS_REPLY_ARRAY || !cust->elements) {
        crm_debug("audit.no_record", "customer=%s type=%s", w.cid, crm_type_name(msg->type));
        goto out; /* nothing to audit (yet) */
    }

    crm_audit_input_t in = {.today = crm_cst_day(crm_now_ms())};
    for (size_t e = 0; e + 1 < cust->elements; e += 2) {
        const char *k = cust->element[e]->str, *v = cust->element[e + 1]->str;
        if (!k || !v)
            continue;
        int f = crm_cf_from_name(k);
        if (f >= 0)
            in.v[f] = v;
    }
    in.remark = crm_reply_field(cust, "remark");
    in.grade = crm_reply_field(cust, "grade");
    in.expected_purchase_date = crm_reply_field(cust, "expected_purchase_date");
    in.stage = crm_reply_field(cust, "stage");
    in.sale_date = crm_reply_field(cust, "sale_date");
    const char *owner = crm_reply_field(cust, "dealer_id");
    const char *consultant = crm_reply_field(cust, "consultant_id");

    /* the cars, in one more round trip when there are any */
    size_t nveh = vehs && vehs->type == REDIS_REPLY_ARRAY ? vehs->elements : 0;
    if (nveh > CRM_AUDIT_VEHICLES_MAX)
        nveh = CRM_AUDIT_VEHICLES_MAX;
    if (nveh) {
        vr = crm_tx_new("auditor", 0);
        if (!vr) {
            rc = CRM_RETRY;
            goto out;
        }
        for (size_t i = 0; i < nveh; i++)
            crm_tx_cmd(vr, "HMGET crm:veh:%s vin plate sale_date dealer_id", vehs->element[i]->str);
        if (crm_store_pipeline(store, vr) != 0) {
            rc = crm_service_failed(svc);
            goto out;
        }
        for (size_t i = 0; i < nveh; i++) {
            const redisReply *r = crm_tx_result(vr, (int) i);
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
                in.vehicles_unread = true;
                continue;
            }
            in.veh[in.nveh].vin = r->element[0]->str;
            in.veh[in.nveh].plate = r->element[1]->str;
            in.veh[in.nveh].sale_date = r->element[2]->str;
            in.nveh++;
        }
    }
    crm_audit_eval(&in, &a->rules, res);

    /* ---- the dealers whose file it is, and who entered what */
    const char *dealers_old = crm_reply_field(rec, "dealers");
    char dealers[1024];
    snprintf(dealers, sizeof dealers, "%s", dealers_old ? dealers_old : "");
    if (w.filed_by && !s_word_in(dealers, w.filed_by) && strlen(dealers) + strlen(w.filed_by) + 2 < sizeof dealers)
        snprintf(dealers + strlen(dealers), sizeof dealers - strlen(dealers), "%s%s", dealers[0] ? " " : "",
                 w.filed_by);
    char rkey[80], fkey[80];
    snprintf(rkey, sizeof rkey, CRM_KEY_AUDIT_REC_FMT, w.cid);
    snprintf(fkey, sizeof fkey, CRM_KEY_FINDINGS_FMT, w.cid);
    for (size_t i = 0; w.fields && i < w.fields->n; i++) {
        const char *f = w.fields->v[i];
        if (!f || strlen(f) > 40)
            continue;
        if (w.filed_by && consultant)
            crm_tx_cmd(tx, "HSET %s by:%s %s", rkey, f, consultant);
        else
            crm_tx_cmd(tx, "HDEL %s by:%s", rkey, f);
    }

    /* ---- the findings: replaced; errors gained and lost told */
    const char *argv[2 + 2 * CRM_ISSUES_MAX];
    char keys[CRM_ISSUES_MAX][72], vals[CRM_ISSUES_MAX][240];
    int na = 2;
    argv[0] = "HSET", argv[1] = fkey;
    const char *old_owner = crm_reply_field(rec, "owner");
    bool new_owner = owner && (!old_owner || strcmp(owner, old_owner));
    int gained = 0, lost = 0;
    for (int i = 0; i < res->issues.n; i++) {
        const crm_issue_t *is = &res->issues.v[i];
        snprintf(keys[i], sizeof keys[i], "%s:%s", is->field, is->code);
        snprintf(vals[i], sizeof vals[i], "%s|%s", crm_severity_name(is->severity), is->message);
        argv[na++] = keys[i];
        argv[na++] = vals[i];
        char sev[16];
        const char *was = s_finding_severity(old, keys[i], sev, sizeof sev);
        if (is->severity == CRM_SEV_ERROR && (new_owner || !was || strcmp(was, "error"))) {
            char bykey[64];
            snprintf(bykey, sizeof bykey, "by:%s", is->field);
            const char *by = w.filed_by && consultant && w.fields ? consultant : crm_reply_field(rec, bykey);
            s_emit_finding(tx, w.cid, owner, is, by);
            gained++;
        }
    }
    for (size_t e = 0; old && old->type == REDIS_REPLY_ARRAY && e + 1 < old->elements; e += 2) {
        const char *k = old->element[e]->str, *v = old->element[e + 1]->str;
        if (!k || !v || strncmp(v, "error|", 6))
            continue;
        bool still = false;
        for (int i = 0; i < res->issues.n && !still; i++)
            still = !strcmp(keys[i], k) && res->issues.v[i].severity == CRM_SEV_ERROR;
        if (!still) {
            s_emit_cleared(tx, w.cid, owner, k);
            lost++;
        }
    }
    crm_tx_cmd(tx, "DEL %s", fkey);
    if (na > 2)
        crm_tx_cmdargv(tx, na, argv, NULL);

    /* ---- the auditor's view, the dealers' files and periods */
    char fail[20], notrun[20], at[24], summary[80];
    snprintf(fail, sizeof fail, "%llx", (unsigned long long) res->fail);
    snprintf(notrun, sizeof notrun, "%llx", (unsigned long long) res->not_run);
    snprintf(at, sizeof at, "%lld", (long long) crm_now_ms());
    bool prospect = !in.stage || !*in.stage || !strcmp(in.stage, "prospect");
    int64_t epd = prospect && in.expected_purchase_date ? crm_day_parse(in.expected_purchase_date) : INT64_MIN;
    snprintf(summary, sizeof summary, "%s %s %s %lld", CRM_AUDIT_RULESET, fail, notrun,
             epd == INT64_MIN ? -1LL : (long long) epd);
    crm_tx_cmd(tx, "HSET %s ver %s fail %s not_run %s at %s dealers %s owner %s", rkey, CRM_AUDIT_RULESET, fail,
               notrun, at, dealers, owner ? owner : "");
    int64_t ts = msg->ts > 0 ? msg->ts : crm_now_ms();
    char month[8], quarter[8];
    crm_period_month_of(crm_cst_day(ts), month);
    crm_period_quarter_of(crm_cst_day(ts), quarter);
    for (const char *p = dealers; *p;) {
        size_t n = strcspn(p, " ");
        char d[CRM_ID_NAME_MAX + 1];
        snprintf(d, sizeof d, "%.*s", (int) (n < sizeof d ? n : sizeof d - 1), p);
        if (crm_id_valid(CRM_ID_NAME, d)) {
            crm_tx_cmd(tx, "HSET " CRM_KEY_AUDIT_FILES_FMT " %s %s", d, w.cid, summary);
            if (month[0])
                crm_tx_cmd(tx, "SADD " CRM_KEY_AUDIT_PERIOD_FMT " %s", month, d, w.cid);
            if (quarter[0])
                crm_tx_cmd(tx, "SADD " CRM_KEY_AUDIT_PERIOD_FMT " %s", quarter, d, w.cid);
        }
        p += n;
        while (*p == ' ')
            p++;
    }

    /* ---- the duplicate index */
    char m[24], idk[32];
    s_dup_keys(&in, m, idk);
    const char *oldm = crm_reply_field(rec, "m"), *oldi = crm_reply_field(rec, "i");
    if (oldm && strcmp(oldm, m))
        s_index(tx, oldm, w.cid, "del");
    if (m[0] && (!oldm || strcmp(oldm, m)))
        s_index(tx, m, w.cid, "add");
    if (oldi && strcmp(oldi, idk))
        s_index(tx, oldi, w.cid, "del");
    if (idk[0] && (!oldi || strcmp(oldi, idk)))
        s_index(tx, idk, w.cid, "add");
    crm_tx_cmd(tx, "HSET %s m %s i %s", rkey, m, idk);

    /* ---- the cars the dealer sold, for retention */
    for (size_t i = 0; i < nveh; i++) {
        const redisReply *r = crm_tx_result(vr, (int) i);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[0]->str && r->element[2]->str &&
            r->element[3]->str && crm_id_valid(CRM_ID_NAME, r->element[3]->str))
            aud_car_sold(tx, r->element[3]->str, r->element[0]->str, r->element[2]->str, w.cid);
    }
    crm_debug("audit.record", "customer=%s type=%s fail=%s not_run=%s findings=%d gained=%d cleared=%d", w.cid,
              crm_type_name(msg->type), fail, notrun, res->issues.n, gained, lost);
out:
    free(res);
    crm_tx_destroy(&vr);
    crm_tx_destroy(&rd);
    return rc;
}
