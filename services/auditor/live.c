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
   a customer off a value's holders (at most 1,000 listed: a number typed
   into a thousand records is a duplicate already), and keeps the set of
   values held by two or more. Run as EVAL inside the transaction (crm_functions.c says
   why not as a library function). */
static const char s_key_lua[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) or ''\n"
    "local ids = {}\n"
    "for id in string.gmatch(v, '%S+') do if id ~= ARGV[2] then ids[#ids + 1] = id end end\n"
    "if ARGV[3] == 'add' and #ids < 1000 then ids[#ids + 1] = ARGV[2] end\n"
    "if #ids == 0 then redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "else redis.call('HSET', KEYS[1], ARGV[1], table.concat(ids, ' ')) end\n"
    "if #ids >= 2 then redis.call('SADD', KEYS[2], ARGV[1]) else redis.call('SREM', KEYS[2], ARGV[1]) end\n"
    "return #ids\n";

const char *aud_next_dealer(const char *p, char did[CRM_ID_NAME_MAX + 1])
{
    while (p && *p == ' ')
        p++;
    if (!p || !*p)
        return NULL;
    size_t n = strcspn(p, " ");
    snprintf(did, CRM_ID_NAME_MAX + 1, "%.*s", (int) (n <= CRM_ID_NAME_MAX ? n : 0), p);
    return p + n;
}

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

static bool s_what_of(const crm_msg_t *msg, s_what_t *w, const char **dealer_out)
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
    *dealer_out = dealer;
    return true;
}

static bool s_what(crm_service_t *svc, const crm_msg_t *msg, s_what_t *w)
{
    const char *dealer = NULL;
    if (!s_what_of(msg, w, &dealer))
        return false;
    const char *ids[] = {w->cid, dealer};
    static const char *const names[] = {"customer_id", "dealer_id"};
    return crm_service_ids_ok(svc, ids, names, 2, 1);
}

/* What the auditor kept of a record before this message: from Redis, or,
   when an earlier message of the same batch judged it (its commit is not
   made yet), from what that message wrote. */
#define S_BY_MAX (CRM_CF_COUNT + 8)
typedef struct {
    char dealers[512], owner[CRM_ID_NAME_MAX + 1], m[24], i[32];
    int nby, nf;
    struct {
        char field[24], who[CRM_ID_NAME_MAX + 1];
    } by[S_BY_MAX];
    struct {
        char key[72]; /* "<field>:<code>" */
        bool error;
    } f[CRM_ISSUES_MAX];
} s_prev_t;

static void s_pre_reset(void);
static zhashx_t *s_cache;          /* customer id -> s_prev_t, this batch's */
static unsigned long s_cache_batch; /* the batch it is of */

static void s_cache_drop(void **p)
{
    free(*p);
    *p = NULL;
}

static s_prev_t *s_cached(crm_service_t *svc, const char *cid)
{
    if (!s_cache) {
        s_cache = zhashx_new();
        if (!s_cache)
            return NULL;
        zhashx_set_destructor(s_cache, s_cache_drop);
    }
    if (s_cache_batch != crm_service_batch(svc)) {
        /* a batch was dropped: what it wrote is not in Redis, and what was
           read before it may be older than what was committed before it */
        zhashx_purge(s_cache);
        s_pre_reset();
        s_cache_batch = crm_service_batch(svc);
    }
    return zhashx_lookup(s_cache, cid);
}

static void s_prev_by_set(s_prev_t *p, const char *field, const char *who)
{
    int k = 0;
    while (k < p->nby && strcmp(p->by[k].field, field))
        k++;
    if (k == p->nby && (!who || p->nby == S_BY_MAX))
        return;
    if (!who) {
        p->by[k] = p->by[--p->nby];
        return;
    }
    snprintf(p->by[k].field, sizeof p->by[k].field, "%s", field);
    snprintf(p->by[k].who, sizeof p->by[k].who, "%s", who);
    if (k == p->nby)
        p->nby++;
}

static const char *s_prev_by(const s_prev_t *p, const char *field)
{
    for (int k = 0; k < p->nby; k++)
        if (!strcmp(p->by[k].field, field))
            return p->by[k].who;
    return NULL;
}

/* A field of the auditor's view that had a value and has none now. */
static void s_hdel_emptied(crm_tx_t *tx, const char *key, const char *field, const char *was, const char *now)
{
    if (was[0] && !now[0])
        crm_tx_cmd(tx, "HDEL %s %s", key, field);
}

static void s_prev_from(s_prev_t *p, const redisReply *rec, const redisReply *old)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dealers, sizeof p->dealers, "%s", crm_reply_field_or(rec, "dealers", ""));
    snprintf(p->owner, sizeof p->owner, "%s", crm_reply_field_or(rec, "owner", ""));
    snprintf(p->m, sizeof p->m, "%s", crm_reply_field_or(rec, "m", ""));
    snprintf(p->i, sizeof p->i, "%s", crm_reply_field_or(rec, "i", ""));
    for (size_t e = 0; rec && rec->type == REDIS_REPLY_ARRAY && e + 1 < rec->elements; e += 2) {
        const char *k = rec->element[e]->str, *v = rec->element[e + 1]->str;
        if (k && v && !strncmp(k, "by:", 3) && *v)
            s_prev_by_set(p, k + 3, v);
    }
    for (size_t e = 0; old && old->type == REDIS_REPLY_ARRAY && e + 1 < old->elements && p->nf < CRM_ISSUES_MAX;
         e += 2) {
        const char *k = old->element[e]->str, *v = old->element[e + 1]->str;
        if (!k || !v)
            continue;
        snprintf(p->f[p->nf].key, sizeof p->f[0].key, "%s", k);
        p->f[p->nf++].error = !strncmp(v, "error|", 6);
    }
}

/* -1 not there, 0 a warning, 1 an error */
static int s_prev_finding(const s_prev_t *p, const char *key)
{
    for (int k = 0; k < p->nf; k++)
        if (!strcmp(p->f[k].key, key))
            return p->f[k].error;
    return -1;
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

/* ------------------------------------------------------------ prefetch
 *
 * The framework hands over the messages of a wake-up before applying
 * them: the records they name are read in one pipeline (and their cars in
 * a second), instead of a round trip per message. What the auditor itself
 * writes (its view, the findings) is read from there for a record's first
 * message only; the batch's cache has it after that. */
#define S_PRE_CMDS 4
static crm_tx_t *s_pre, *s_pre_veh;
static zhashx_t *s_pre_at; /* customer id -> 1 + its index among the prefetched */
static size_t s_pre_n;
static struct {
    int first; /* its first car's result in s_pre_veh, -1 none */
    int nveh;
    int msgs;  /* how many of the wake-up's messages name it */
} *s_pre_cars;

static void s_pre_reset(void)
{
    if (s_pre)
        crm_tx_reset(s_pre);
    if (s_pre_veh)
        crm_tx_reset(s_pre_veh);
    if (s_pre_at)
        zhashx_purge(s_pre_at);
    s_pre_n = 0;
}

void aud_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n)
{
    /* everything before these is committed: what was kept for a batch is
       in Redis now, and the reads below see it */
    (void) s_cached(svc, "");
    if (s_cache)
        zhashx_purge(s_cache);
    if (!s_pre && !(s_pre = crm_tx_new("auditor", 0)))
        return;
    if (!s_pre_veh && !(s_pre_veh = crm_tx_new("auditor", 0)))
        return;
    if (!s_pre_at && !(s_pre_at = zhashx_new()))
        return;
    s_pre_reset();
    void *grown = realloc(s_pre_cars, (n ? n : 1) * sizeof *s_pre_cars);
    if (!grown)
        return;
    s_pre_cars = grown;
    for (size_t k = 0; k < n; k++) {
        s_what_t w;
        const char *dealer;
        if (!s_what_of(&msgs[k], &w, &dealer) || !w.cid || !crm_id_valid(CRM_ID_NAME, w.cid))
            continue;
        size_t seen = (size_t) (uintptr_t) zhashx_lookup(s_pre_at, w.cid);
        if (seen) {
            s_pre_cars[seen - 1].msgs++;
            continue;
        }
        crm_tx_cmd(s_pre, "HGETALL " CRM_KEY_CUST_FMT, w.cid);
        crm_tx_cmd(s_pre, "SMEMBERS " CRM_KEY_CUST_FMT ":vehicles", w.cid);
        crm_tx_cmd(s_pre, "HGETALL " CRM_KEY_AUDIT_REC_FMT, w.cid);
        crm_tx_cmd(s_pre, "HGETALL " CRM_KEY_FINDINGS_FMT, w.cid);
        s_pre_cars[s_pre_n].first = -1;
        s_pre_cars[s_pre_n].nveh = 0;
        s_pre_cars[s_pre_n].msgs = 1;
        zhashx_insert(s_pre_at, w.cid, (void *) (uintptr_t) ++s_pre_n);
    }
    crm_store_t *store = crm_service_store(svc);
    if (!s_pre_n || crm_store_pipeline(store, s_pre) != 0) {
        s_pre_reset();
        return;
    }
    int nv = 0;
    for (size_t i = 0; i < s_pre_n; i++) {
        const redisReply *v = crm_tx_result(s_pre, (int) (i * S_PRE_CMDS + 1));
        size_t cars = v && v->type == REDIS_REPLY_ARRAY ? v->elements : 0;
        if (cars > CRM_AUDIT_VEHICLES_MAX)
            cars = CRM_AUDIT_VEHICLES_MAX;
        if (!cars)
            continue;
        s_pre_cars[i].first = nv;
        s_pre_cars[i].nveh = (int) cars;
        for (size_t c = 0; c < cars; c++, nv++)
            crm_tx_cmd(s_pre_veh, "HMGET crm:veh:%s vin plate sale_date dealer_id", v->element[c]->str);
    }
    if (nv && crm_store_pipeline(store, s_pre_veh) != 0)
        s_pre_reset();
}

/* The prefetched reads of `cid`: index, or -1. Once per record per wake-up
   for what the auditor writes (`own`: its view and findings are usable). */
static long s_pre_of(const char *cid)
{
    if (!s_pre_at || !s_pre_n)
        return -1;
    size_t i = (size_t) (uintptr_t) zhashx_lookup(s_pre_at, cid);
    return i ? (long) i - 1 : -1;
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
    s_prev_t *cached = s_cached(svc, w.cid), *prev = malloc(sizeof *prev);
    if (!rd || !res || !prev) {
        rc = CRM_RETRY;
        goto out;
    }
    long pre = s_pre_of(w.cid);
    const redisReply *cust, *vehs;
    if (pre >= 0) {
        cust = crm_tx_result(s_pre, (int) (pre * S_PRE_CMDS));
        vehs = crm_tx_result(s_pre, (int) (pre * S_PRE_CMDS + 1));
        if (cached)
            *prev = *cached;
        else
            s_prev_from(prev, crm_tx_result(s_pre, (int) (pre * S_PRE_CMDS + 2)),
                        crm_tx_result(s_pre, (int) (pre * S_PRE_CMDS + 3)));
    } else {
        crm_tx_cmd(rd, "HGETALL " CRM_KEY_CUST_FMT, w.cid);
        crm_tx_cmd(rd, "SMEMBERS " CRM_KEY_CUST_FMT ":vehicles", w.cid);
        if (!cached) {
            crm_tx_cmd(rd, "HGETALL " CRM_KEY_AUDIT_REC_FMT, w.cid);
            crm_tx_cmd(rd, "HGETALL " CRM_KEY_FINDINGS_FMT, w.cid);
        }
        if (crm_store_pipeline(store, rd) != 0) {
            rc = crm_service_failed(svc);
            goto out;
        }
        cust = crm_tx_result(rd, 0);
        vehs = crm_tx_result(rd, 1);
        if (cached)
            *prev = *cached;
        else
            s_prev_from(prev, crm_tx_result(rd, 2), crm_tx_result(rd, 3));
    }
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
    const crm_tx_t *cars = NULL;
    int car0 = 0;
    if (nveh && pre >= 0 && s_pre_cars[pre].nveh == (int) nveh) {
        cars = s_pre_veh;
        car0 = s_pre_cars[pre].first;
    } else if (nveh) {
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
        cars = vr;
    }
    if (nveh) {
        for (size_t i = 0; i < nveh; i++) {
            const redisReply *r = crm_tx_result(cars, car0 + (int) i);
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
    s_prev_t next = *prev;
    if (w.filed_by && !s_word_in(next.dealers, w.filed_by)) {
        if (strlen(next.dealers) + strlen(w.filed_by) + 2 < sizeof next.dealers)
            snprintf(next.dealers + strlen(next.dealers), sizeof next.dealers - strlen(next.dealers), "%s%s",
                     next.dealers[0] ? " " : "", w.filed_by);
        else
            crm_warn("audit.too_many_dealers", "customer=%s dealer=%s why=\"the record is on file for more "
                     "dealers than are kept; not counted as this dealer's file\"", w.cid, w.filed_by);
    }
    char rkey[80], fkey[80];
    snprintf(rkey, sizeof rkey, CRM_KEY_AUDIT_REC_FMT, w.cid);
    snprintf(fkey, sizeof fkey, CRM_KEY_FINDINGS_FMT, w.cid);
    for (size_t i = 0; w.fields && i < w.fields->n; i++) {
        const char *f = w.fields->v[i];
        if (!f || strlen(f) >= sizeof next.by[0].field)
            continue;
        if (w.filed_by && consultant) {
            crm_tx_cmd(tx, "HSET %s by:%s %s", rkey, f, consultant);
            s_prev_by_set(&next, f, consultant);
        } else {
            crm_tx_cmd(tx, "HDEL %s by:%s", rkey, f);
            s_prev_by_set(&next, f, NULL);
        }
    }

    /* ---- the findings: replaced; errors gained and lost told */
    const char *argv[2 + 2 * CRM_ISSUES_MAX];
    char keys[CRM_ISSUES_MAX][72], vals[CRM_ISSUES_MAX][240];
    int na = 2;
    argv[0] = "HSET", argv[1] = fkey;
    bool new_owner = owner && strcmp(owner, prev->owner);
    int gained = 0, lost = 0;
    next.nf = 0;
    for (int i = 0; i < res->issues.n; i++) {
        const crm_issue_t *is = &res->issues.v[i];
        snprintf(keys[i], sizeof keys[i], "%s:%s", is->field, is->code);
        snprintf(vals[i], sizeof vals[i], "%s|%s", crm_severity_name(is->severity), is->message);
        crm_utf8_cut(vals[i]);
        argv[na++] = keys[i];
        argv[na++] = vals[i];
        snprintf(next.f[next.nf].key, sizeof next.f[0].key, "%s", keys[i]);
        next.f[next.nf++].error = is->severity == CRM_SEV_ERROR;
        if (is->severity == CRM_SEV_ERROR && (new_owner || s_prev_finding(prev, keys[i]) != 1)) {
            const char *by = s_prev_by(&next, is->field);
            s_emit_finding(tx, w.cid, owner, is, by);
            gained++;
        }
    }
    for (int k = 0; k < prev->nf; k++) {
        if (!prev->f[k].error)
            continue;
        /* the dealer that had the record is told its errors are no longer
           its own; the new one was told them all above */
        if (new_owner && prev->owner[0])
            s_emit_cleared(tx, w.cid, prev->owner, prev->f[k].key);
        else if (s_prev_finding(&next, prev->f[k].key) == 1)
            continue;
        else
            s_emit_cleared(tx, w.cid, owner, prev->f[k].key);
        lost++;
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
    snprintf(next.owner, sizeof next.owner, "%s", owner ? owner : "");
    /* Empty fields are not kept (a record no dealer filed has neither
       dealers nor owner): a field read back absent is empty. */
    const char *rec[16] = {"HSET", rkey, "ver", CRM_AUDIT_RULESET, "fail", fail, "not_run", notrun, "at", at};
    int nr = 10;
    if (next.dealers[0])
        rec[nr++] = "dealers", rec[nr++] = next.dealers;
    if (next.owner[0])
        rec[nr++] = "owner", rec[nr++] = next.owner;
    crm_tx_cmdargv(tx, nr, rec, NULL);
    s_hdel_emptied(tx, rkey, "dealers", prev->dealers, next.dealers);
    s_hdel_emptied(tx, rkey, "owner", prev->owner, next.owner);
    int64_t ts = msg->ts > 0 ? msg->ts : crm_now_ms();
    char month[8], quarter[8];
    crm_period_month_of(crm_cst_day(ts), month);
    crm_period_quarter_of(crm_cst_day(ts), quarter);
    char d[CRM_ID_NAME_MAX + 1];
    for (const char *p = next.dealers; (p = aud_next_dealer(p, d));) {
        if (crm_id_valid(CRM_ID_NAME, d)) {
            crm_tx_cmd(tx, "HSET " CRM_KEY_AUDIT_FILES_FMT " %s %s", d, w.cid, summary);
            if (month[0])
                crm_tx_cmd(tx, "SADD " CRM_KEY_AUDIT_PERIOD_FMT " %s", month, d, w.cid);
            if (quarter[0])
                crm_tx_cmd(tx, "SADD " CRM_KEY_AUDIT_PERIOD_FMT " %s", quarter, d, w.cid);
        }
    }

    /* ---- the duplicate index */
    char m[24], idk[32];
    s_dup_keys(&in, m, idk);
    if (prev->m[0] && strcmp(prev->m, m))
        s_index(tx, prev->m, w.cid, "del");
    if (m[0] && strcmp(prev->m, m))
        s_index(tx, m, w.cid, "add");
    if (prev->i[0] && strcmp(prev->i, idk))
        s_index(tx, prev->i, w.cid, "del");
    if (idk[0] && strcmp(prev->i, idk))
        s_index(tx, idk, w.cid, "add");
    if (m[0] && strcmp(prev->m, m))
        crm_tx_cmd(tx, "HSET %s m %s", rkey, m);
    if (idk[0] && strcmp(prev->i, idk))
        crm_tx_cmd(tx, "HSET %s i %s", rkey, idk);
    s_hdel_emptied(tx, rkey, "m", prev->m, m);
    s_hdel_emptied(tx, rkey, "i", prev->i, idk);
    snprintf(next.m, sizeof next.m, "%s", m);
    snprintf(next.i, sizeof next.i, "%s", idk);

    /* ---- the cars the dealer sold, for retention */
    for (size_t i = 0; i < nveh; i++) {
        const redisReply *r = crm_tx_result(cars, car0 + (int) i);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[0]->str && r->element[2]->str &&
            r->element[3]->str && crm_id_valid(CRM_ID_NAME, r->element[3]->str))
            aud_car_sold(tx, r->element[3]->str, r->element[0]->str, r->element[2]->str, w.cid);
    }

    /* ---- what later messages of this batch must see (none when the
       wake-up's prefetch saw no other message about this record) */
    if (s_cache && (pre < 0 || s_pre_cars[pre].msgs > 1 || cached)) {
        s_prev_t *keep = cached ? cached : malloc(sizeof *keep);
        if (keep) {
            *keep = next;
            if (!cached && zhashx_insert(s_cache, w.cid, keep) != 0)
                free(keep);
        }
    }
    crm_debug("audit.record", "customer=%s type=%s fail=%s not_run=%s findings=%d gained=%d cleared=%d", w.cid,
              crm_type_name(msg->type), fail, notrun, res->issues.n, gained, lost);
out:
    free(prev);
    free(res);
    crm_tx_destroy(&vr);
    crm_tx_destroy(&rd);
    return rc;
}
