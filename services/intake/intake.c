/*  intake: lead submissions, from checked requests to committed answers.
 *
 *  The framework (crm_request.c) hands over the submissions waiting on the
 *  socket whose answer is not kept yet, one batch per call, and commits
 *  what this adds to the transaction together with every answer. Here a
 *  batch is read in one pipelined round trip (match keys, the
 *  quarantined submissions being retried and fresh ids), and a second one
 *  only when leads matched known customers (their records), decided in memory in arrival order, and written into the
 *  transaction with its events. The keys read are WATCHed, so a second
 *  intake instance writing the same customer makes the framework run the
 *  batch again from its reads.
 */
#include "crm_str.h"
#include "intake.h"

#include <stdlib.h>
#include <string.h>

#include "crm_customer.h"
#include "crm_lead.h"
#include "crm_leadin.h"

typedef enum { S_REJECT = 0, S_ACCEPT } s_kind_t;

typedef struct {
    crm_req_t *req;
    const crm_body_lead_submit_t *lead;
    const char *sid; /* the submission id the lead is stored under */
    s_kind_t kind;
    crm_fields_t fields;
    crm_issues_t issues;
    int r_id, r_mobile, r_quar; /* indices of the reads */
    bool skip;                  /* refused before any write */
} s_item_t;

typedef struct {
    char cid[CRM_ID_NAME_MAX + 8];
    crm_fields_t rec;
    bool loaded;
} s_cust_t;

typedef struct {
    char key[96]; /* "m:<mobile>" or "i:<id number>" */
    char cid[CRM_ID_NAME_MAX + 8];
} s_map_t;

typedef struct {
    crm_store_t *store;
    crm_req_t **reqs;
    s_item_t **items; /* each request's, made by intake_prepare */
    int n;
    s_cust_t *custs; /* records read or created in this batch */
    int ncusts;
    s_map_t *maps; /* match keys written in this batch */
    int nmaps;
    crm_tx_t *reads;
    int r_ids, r_mobiles; /* indices in reads */
    long long lead_base, cust_base, quar_base; /* first fresh ids */
    int leads_used, custs_used, quars_used;
} s_batch_t;

/* ------------------------------------------------------------ answers */

static crm_msg_t *s_rejected(crm_req_t *req, const char *sid)
{
    crm_msg_t *a = crm_req_answer(req, CRM_T_lead_rejected);
    CRM_SET_STR(a, lead_rejected, submission_id, sid ? sid : "");
    a->body.lead_rejected.has.errors = true;
    return a;
}

void intake_error(crm_req_t *req, const char *field, const char *code, const char *text)
{
    const crm_msg_t *m = crm_req_msg(req);
    const char *sid = m->type == CRM_T_lead_submit ? m->body.lead_submit.submission_id : NULL;
    crm_msg_t *a = s_rejected(req, sid);
    char line[600];
    crm_fmt(line, sizeof line, "%s|%s|%s", field, code, text);
    crm_strs_push(&a->body.lead_rejected.errors, line);
}

void intake_kept(crm_msg_t *a, const char *key, bool restore)
{
    char **sid = a->type == CRM_T_lead_accepted   ? &a->body.lead_accepted.submission_id
                 : a->type == CRM_T_lead_rejected ? &a->body.lead_rejected.submission_id
                                                  : NULL;
    if (!sid)
        return;
    /* a required field: kept empty */
    if (!restore && *sid && !strcmp(*sid, key)) {
        (*sid)[0] = 0;
    } else if (restore && (!*sid || !**sid)) {
        if (a->type == CRM_T_lead_accepted)
            CRM_SET_STR(a, lead_accepted, submission_id, key);
        else
            CRM_SET_STR(a, lead_rejected, submission_id, key);
    }
}

/* ------------------------------------------------------------ the key */

int intake_submit_key(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err)
{
    const crm_body_lead_submit_t *b = &msg->body.lead_submit;
    char why[300];
    if (!b->submission_id || !*b->submission_id) {
        /* A website posting msgpack without an id of its own gets the key
           crmctl computes for the same lead as JSON: a form posted twice is
           one lead. */
        if (b->retry_of || crm_leadin_content_key(b, "json:", out, size) != 0) {
            crm_fmt(err->field, sizeof err->field, "submission_id");
            crm_fmt(err->text, sizeof err->text, "required %s",
                     b->retry_of ? "with retry_of (the quarantined submission's id)" : "(the lead cannot be keyed)");
            err->code = CRM_E_MISSING;
            return -1;
        }
        return 0;
    }
    if (crm_id_check(CRM_ID_KEY, b->submission_id, "submission_id", why, sizeof why) != 0) {
        crm_fmt(err->field, sizeof err->field, "submission_id");
        crm_fmt(err->text, sizeof err->text, "%s", strchr(why, ':') + 2);
        return -1;
    }
    if (b->retry_of) {
        const char *q = b->retry_of;
        if (!crm_id_quarantine_valid(q)) {
            crm_fmt(err->field, sizeof err->field, "retry_of");
            crm_fmt(err->text, sizeof err->text, "a quarantine id (Q12) expected");
            return -1;
        }
        /* The retry is a submission of its own: the original's answer (its
           rejection) does not stand in its way. */
        crm_fmt(out, size, "%s~%s", b->submission_id, q);
        return 0;
    }
    crm_fmt(out, size, "%s", b->submission_id);
    return 0;
}

/* ---------------------------------------------------------- the batch */

static s_cust_t *s_cust(s_batch_t *b, const char *cid)
{
    for (int i = 0; i < b->ncusts; i++)
        if (!strcmp(b->custs[i].cid, cid))
            return &b->custs[i];
    s_cust_t *c = &b->custs[b->ncusts++];
    memset(c, 0, sizeof *c);
    crm_fmt(c->cid, sizeof c->cid, "%s", cid);
    return c;
}

static const char *s_map_get(s_batch_t *b, char kind, const char *value)
{
    char key[96];
    crm_fmt(key, sizeof key, "%c:%s", kind, value);
    for (int i = b->nmaps - 1; i >= 0; i--)
        if (!strcmp(b->maps[i].key, key))
            return b->maps[i].cid;
    return NULL;
}

static void s_map_set(s_batch_t *b, char kind, const char *value, const char *cid)
{
    s_map_t *m = &b->maps[b->nmaps++];
    crm_fmt(m->key, sizeof m->key, "%c:%s", kind, value);
    crm_fmt(m->cid, sizeof m->cid, "%s", cid);
}

/* Element `pos` of the MGET at `index` in a pipeline, if a string. */
static const char *s_mget_str(const crm_tx_t *t, int index, int pos)
{
    const redisReply *r = crm_tx_result(t, index);
    if (pos < 0 || !r || r->type != REDIS_REPLY_ARRAY || (size_t) pos >= r->elements)
        return NULL;
    return r->element[pos]->type == REDIS_REPLY_STRING ? r->element[pos]->str : NULL;
}

/* Round 1: WATCH the kept answers and the match keys (one WATCH), read
   them (an MGET each of answers, ID numbers and mobiles, when any), the
   quarantined submissions being retried, and take fresh ids. Round 2, only
   when a lead matched: WATCH and read the matched records. 0; -1 when Redis failed (see the store's
   error); -2 out of memory. */
static int s_read(s_batch_t *b)
{
    crm_tx_t *t = b->reads;
    crm_tx_reset(t);
    int n = b->n;
    const char **watch = calloc((size_t) (2 * n + 1), sizeof *watch); /* the match keys, for one WATCH */
    const char **ids = calloc((size_t) (n + 2), sizeof *ids), **mobiles = calloc((size_t) (n + 2), sizeof *mobiles);
    char (*keys)[2][300] = calloc((size_t) n, sizeof *keys);
    if (!watch || !ids || !mobiles || !keys) {
        free(watch), free(ids), free(mobiles), free(keys);
        return -2;
    }
    int nw = 0, ni = 1, nm = 1;
    ids[0] = mobiles[0] = "MGET";
    for (int i = 0; i < n; i++) {
        s_item_t *it = b->items[i];
        it->r_id = it->r_mobile = it->r_quar = -1;
        if (it->skip || it->kind == S_REJECT)
            continue;
        if (it->fields.indexable_id) {
            crm_fmt(keys[i][0], sizeof keys[i][0], CRM_KEY_IDX_ID_FMT, it->fields.v[CRM_CF_id_number]);
            watch[nw++] = keys[i][0];
            it->r_id = ni - 1;
            ids[ni++] = keys[i][0];
        }
        if (it->fields.indexable_mobile) {
            crm_fmt(keys[i][1], sizeof keys[i][1], CRM_KEY_IDX_MOBILE_FMT, it->fields.v[CRM_CF_mobile]);
            watch[nw++] = keys[i][1];
            it->r_mobile = nm - 1;
            mobiles[nm++] = keys[i][1];
        }
    }
    /* The kept answers first, in the same round trip (the framework leaves
       them to this batch: crm_request_t.reads_kept), under one WATCH with
       the match keys; then only what there is to read: a batch without ID
       numbers (most) sends no MGET of them. */
    int kept = crm_req_kept_reads(b->reqs, n, t, watch, nw);
    b->r_ids = ni > 1 ? crm_tx_cmdargv(t, ni, ids, NULL) : -1;
    b->r_mobiles = nm > 1 ? crm_tx_cmdargv(t, nm, mobiles, NULL) : -1;
    int accepts = 0, rejects = 0;
    for (int i = 0; i < n; i++) {
        s_item_t *it = b->items[i];
        if (it->skip)
            continue;
        accepts += it->kind == S_ACCEPT;
        rejects += it->kind == S_REJECT;
        if (!it->lead->retry_of)
            continue;
        it->r_quar = (int) crm_tx_size(t);
        crm_tx_cmd(t, "HGETALL " CRM_KEY_QUARANTINE_FMT, it->lead->retry_of);
    }
    /* Fresh ids for every lead that may need one (a retry refused below
       leaves a gap: ids are unique, not dense). */
    int fresh_lead = accepts ? crm_tx_cmd(t, "INCRBY crm:ids:lead %d", accepts) : -1;
    int fresh_cust = accepts ? crm_tx_cmd(t, "INCRBY crm:ids:customer %d", accepts) : -1;
    int fresh_quar = rejects ? crm_tx_cmd(t, "INCRBY crm:ids:quarantine %d", rejects) : -1;
    int rc = kept < 0 ? -2 : crm_store_pipeline(b->store, t); /* -2: out of memory, a passing failure */
    free(watch), free(ids), free(mobiles), free(keys);
    /* A submission answered before is answered alike and left alone, also
       when another read of the round failed (its reply is there). */
    if (rc != -2)
        crm_req_kept_apply(b->reqs, n, t, kept);
    for (int i = 0; i < n; i++)
        if (crm_req_is_kept(b->items[i]->req))
            b->items[i]->skip = true;
    if (rc != 0)
        return rc;
    /* A retry must name a quarantined submission of the same id. */
    for (int i = 0; i < n; i++) {
        s_item_t *it = b->items[i];
        if (it->skip || it->r_quar < 0)
            continue;
        const redisReply *x = crm_tx_result(t, it->r_quar);
        const redisReply *kv = x && x->type == REDIS_REPLY_ARRAY && x->elements ? x : NULL;
        const char *orig = crm_reply_field(kv, "submission_id");
        if (!kv) {
            crm_req_fail(it->req, "retry_of", "unknown", "no quarantined submission %s", it->lead->retry_of);
            it->skip = true;
        } else if (!orig || strcmp(orig, it->lead->submission_id)) {
            crm_req_fail(it->req, "retry_of", "invalid", "%s is the quarantine of submission %s, not of %s",
                         it->lead->retry_of, orig ? orig : "-", it->lead->submission_id);
            it->skip = true;
        }
    }
    const int fresh[3] = {fresh_lead, fresh_cust, fresh_quar}, wanted[3] = {accepts, accepts, rejects};
    long long base[3] = {1, 1, 1};
    for (int k = 0; k < 3; k++) {
        if (!wanted[k])
            continue; /* none taken, none used */
        const redisReply *x = crm_tx_result(t, fresh[k]);
        if (!x || x->type != REDIS_REPLY_INTEGER)
            return -1; /* an error reply fails the pipeline first */
        base[k] = x->integer - wanted[k] + 1;
    }
    b->lead_base = base[0];
    b->cust_base = base[1];
    b->quar_base = base[2];
    /* Round 2, when something matched: the records merged into. */
    crm_tx_t *t2 = crm_tx_new("intake", 0);
    if (!t2)
        return -2;
    for (int i = 0; i < b->n; i++) {
        s_item_t *it = b->items[i];
        if (it->skip || it->kind == S_REJECT)
            continue;
        const char *found[2] = {s_mget_str(t, b->r_ids, it->r_id), s_mget_str(t, b->r_mobiles, it->r_mobile)};
        for (int k = 0; k < 2; k++) {
            if (!found[k] || !crm_id_valid(CRM_ID_NAME, found[k]))
                continue;
            s_cust_t *c = s_cust(b, found[k]);
            if (!c->loaded) {
                /* a second instance merging into the same record makes
                   this batch's commit run again */
                c->loaded = true;
                crm_tx_cmd(t2, "WATCH " CRM_KEY_CUST_FMT, found[k]);
                crm_tx_cmd(t2, "HGETALL " CRM_KEY_CUST_FMT, found[k]);
            }
        }
    }
    rc = crm_tx_size(t2) ? crm_store_pipeline(b->store, t2) : 0;
    if (rc == 0) {
        int k = 0;
        for (int i = 0; i < b->ncusts; i++) {
            k++; /* its WATCH */
            crm_customer_load(&b->custs[i].rec, crm_tx_result(t2, k++));
        }
    }
    crm_tx_destroy(&t2);
    return rc;
}

/* A retried quarantine entry records what became of it, in the same
   transaction, with an event. */
static void s_retried(s_item_t *it, crm_tx_t *tx, const char *outcome, const char *lead_id, const char *qid)
{
    if (!it->lead->retry_of)
        return;
    crm_tx_cmd(tx, "HSET " CRM_KEY_QUARANTINE_FMT " state %s:%s", it->lead->retry_of,
               !strcmp(outcome, "accepted") ? "retried" : "rejected-again", lead_id ? lead_id : qid);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_quarantine_retried);
    CRM_SET_STR(&ev, quarantine_retried, quarantine_id, it->lead->retry_of);
    CRM_SET_STR(&ev, quarantine_retried, submission_id, it->sid);
    CRM_SET_STR(&ev, quarantine_retried, outcome, outcome);
    CRM_SET_STR(&ev, quarantine_retried, lead_id, lead_id);
    CRM_SET_STR(&ev, quarantine_retried, requarantined, qid);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
}

/* Keeps a submission in the quarantine stream under a fresh Q id, with
   `errors` and the frame as received; returns the id in qid. */
static void s_quarantine(s_batch_t *b, crm_tx_t *tx, const char *sid, const char *channel, const char *errors,
                         const void *frame, size_t len, const char *doc_field, char qid[32])
{
    long long q = b->quar_base + b->quars_used++;
    char now[24];
    crm_fmt(qid, 32, "Q%lld", q);
    crm_fmt(now, sizeof now, "%lld", (long long) crm_now_ms());
    crm_tx_cmd(tx, "HSET " CRM_KEY_QUARANTINE_FMT " quarantine_id %s submission_id %s channel %s "
                   "received_ms %s errors %s state open %s %b",
               qid, qid, sid, channel ? channel : "-", now, errors, doc_field, frame, len);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_QUARANTINE " %lld %s", q, qid);
}

static void s_reject(s_batch_t *b, s_item_t *it, crm_tx_t *tx)
{
    const crm_body_lead_submit_t *lead = it->lead;
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_lead_rejected);
    CRM_SET_STR(&ev, lead_rejected, submission_id, it->sid);
    ev.body.lead_rejected.has.errors = true;
    crm_msg_t *a = s_rejected(it->req, it->sid);
    char errors[4096] = "";
    size_t used = 0;
    for (int i = 0; i < it->issues.n; i++) {
        if (it->issues.v[i].severity != CRM_SEV_REJECT)
            continue;
        char line[320];
        crm_issue_format(&it->issues.v[i], line, sizeof line);
        crm_strs_push(&ev.body.lead_rejected.errors, line);
        crm_strs_push(&a->body.lead_rejected.errors, line);
        int k = crm_fmt(errors + used, sizeof errors - used, "%s%s", used ? "\n" : "", line);
        if (k > 0 && (size_t) k < sizeof errors - used)
            used += (size_t) k;
    }
    size_t len;
    const void *frame = crm_req_frame(it->req, &len);
    char qid[32];
    s_quarantine(b, tx, it->sid, lead->channel, errors, frame, len, "frame", qid);
    CRM_SET_STR(&ev, lead_rejected, quarantine_id, qid);
    CRM_SET_STR(a, lead_rejected, quarantine_id, qid);
    crm_fmt(ev.corr, sizeof ev.corr, "%.*s", CRM_ID_MAX - 1, it->sid);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    s_retried(it, tx, "rejected", NULL, qid);
    char sid[80];
    crm_info("lead.rejected", "submission=%s quarantine=%s errors=%d", crm_log_value(it->sid, sid, sizeof sid), qid,
             it->issues.rejects);
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

static void s_accept(s_batch_t *b, s_item_t *it, crm_tx_t *tx, const char *now, int64_t now_ms)
{
    const crm_body_lead_submit_t *lead = it->lead;
    crm_fields_t *f = &it->fields;
    const char *mobile = f->indexable_mobile ? f->v[CRM_CF_mobile] : NULL;
    const char *idnum = f->indexable_id ? f->v[CRM_CF_id_number] : NULL;

    /* Match: what this batch wrote first, then what Redis holds; the ID
       number before the mobile (mobiles change hands). */
    const char *cid = NULL, *match = NULL;
    const char *stored_id = s_mget_str(b->reads, b->r_ids, it->r_id),
               *stored_mobile = s_mget_str(b->reads, b->r_mobiles, it->r_mobile);
    if (stored_id && !crm_id_valid(CRM_ID_NAME, stored_id))
        stored_id = NULL; /* never a key from a broken index entry */
    if (stored_mobile && !crm_id_valid(CRM_ID_NAME, stored_mobile))
        stored_mobile = NULL;
    if (idnum && ((cid = s_map_get(b, 'i', idnum)) || (cid = stored_id)))
        match = "id_number";
    if (!cid && mobile && ((cid = s_map_get(b, 'm', mobile)) || (cid = stored_mobile)))
        match = "mobile";
    bool merged = cid != NULL;
    char newcid[40], lid[40];
    if (!merged) {
        crm_fmt(newcid, sizeof newcid, "C%lld", b->cust_base + b->custs_used++);
        cid = newcid;
    }
    long long lnum = b->lead_base + b->leads_used++;
    crm_fmt(lid, sizeof lid, "L%lld", lnum);
    s_cust_t *c = s_cust(b, cid);
    c->loaded = true;
    cid = c->cid;

    /* Merge (crm_customer: never blanks a known field; the history keeps
       what it replaced) and match keys. The record's findings as it now
       stands are crm-auditor's (it follows customer.updated). */
    crm_msg_t upd;
    crm_msg_init(&upd, CRM_T_customer_updated);
    crm_merge_t how = {"lead", lid, lead->channel, now, !merged};
    crm_customer_merge(tx, cid, &c->rec, f, &how, &upd.body.customer_updated.fields);
    crm_customer_index(tx, cid, f, 0);
    if (mobile)
        s_map_set(b, 'm', mobile, cid);
    if (idnum)
        s_map_set(b, 'i', idnum, cid);

    char tdat[24] = "", leadkey[64];
    if (lead->has.testdrive_at)
        crm_fmt(tdat, sizeof tdat, "%lld", (long long) lead->testdrive_at);
    crm_fmt(leadkey, sizeof leadkey, CRM_KEY_LEAD_FMT, lid);
    const char *argv[40 + 2 * CRM_CF_COUNT] = {"HSET", leadkey};
    size_t lens[40 + 2 * CRM_CF_COUNT] = {4, strlen(leadkey)};
    int argc = 2;
    s_arg(argv, lens, &argc, "customer_id", cid);
    s_arg(argv, lens, &argc, "submission_id", it->sid);
    s_arg(argv, lens, &argc, "channel", lead->channel);
    s_arg(argv, lens, &argc, "source", lead->source);
    s_arg(argv, lens, &argc, "source_id", crm_req_peer(it->req));
    s_arg(argv, lens, &argc, "model", lead->model);
    s_arg(argv, lens, &argc, "intent_grade", lead->intent_grade);
    s_arg(argv, lens, &argc, "expected_purchase_date", lead->expected_purchase_date);
    s_arg(argv, lens, &argc, "dealer_id", lead->dealer_id);
    s_arg(argv, lens, &argc, "testdrive_at", tdat);
    s_arg(argv, lens, &argc, "remark", lead->remark);
    s_arg(argv, lens, &argc, "created_ms", now);
    s_arg(argv, lens, &argc, "match", match);
    s_arg(argv, lens, &argc, "retry_of", lead->retry_of);
    /* What was received where the rules refused or rewrote it, byte for
       byte: the lead keeps it (the record keeps the values). */
    char rawnames[CRM_CF_COUNT][32];
    for (int i = 0; i < CRM_CF_COUNT; i++)
        if (f->raw[i]) {
            crm_fmt(rawnames[i], sizeof rawnames[i], "%s.raw", crm_cf_name((crm_cf_t) i));
            s_arg(argv, lens, &argc, rawnames[i], f->raw[i]);
        }
    crm_tx_cmdargv(tx, argc, argv, lens);
    if (merged) {
        /* the first lead is the record's own (first_lead): a list only for the later ones */
        char lkey[64];
        crm_fmt(lkey, sizeof lkey, CRM_KEY_CUST_FMT ":leads", cid);
        const char *push[] = {"RPUSH", lkey, lid};
        crm_tx_cmdargv(tx, 3, push, NULL);
    }

    /* Events. */
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_lead_created);
    crm_fmt(ev.corr, sizeof ev.corr, "%.*s", CRM_ID_MAX - 1, it->sid);
    CRM_SET_STR(&ev, lead_created, lead_id, lid);
    CRM_SET_STR(&ev, lead_created, customer_id, cid);
    CRM_SET_STR(&ev, lead_created, channel, lead->channel);
    CRM_SET_STR(&ev, lead_created, source, lead->source);
    CRM_SET_STR(&ev, lead_created, model, lead->model);
    CRM_SET_STR(&ev, lead_created, intent_grade, lead->intent_grade);
    CRM_SET_STR(&ev, lead_created, dealer_id, lead->dealer_id);
    CRM_SET_STR(&ev, lead_created, submission_id, it->sid);
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
        crm_fmt(tid, sizeof tid, "T%lld", lnum);
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
    s_retried(it, tx, "accepted", lid, NULL);

    /* The answer, kept for resends by the framework in the same transaction. */
    crm_msg_t *ans = crm_req_answer(it->req, CRM_T_lead_accepted);
    ans->ts = now_ms;
    CRM_SET_STR(ans, lead_accepted, submission_id, it->sid);
    CRM_SET_STR(ans, lead_accepted, lead_id, lid);
    CRM_SET_STR(ans, lead_accepted, customer_id, cid);
    CRM_SET_BOOL(ans, lead_accepted, merged, merged);
    for (int i = 0; i < it->issues.n; i++) {
        char line[320];
        crm_issue_format(&it->issues.v[i], line, sizeof line);
        crm_strs_push(&ans->body.lead_accepted.findings, line);
        ans->body.lead_accepted.has.findings = true;
    }
    char sid[80], m[16];
    crm_info("lead.accepted", "submission=%s lead=%s customer=%s merged=%s match=%s mobile=%s findings=%d",
             crm_log_value(it->sid, sid, sizeof sid), lid, cid, merged ? "yes" : "no", match ? match : "-",
             crm_mask_phone(mobile ? mobile : "", m, sizeof m), it->issues.n);
}

/* Checks a lead; what needs no Redis is decided here, once, possibly
   while the batch before commits (the framework's prepare). */
static void s_item_free(void *data)
{
    s_item_t *it = data;
    crm_fields_clear(&it->fields);
    free(it);
}

void intake_prepare(crm_req_t *req)
{
    if (crm_req_msg(req)->type != CRM_T_lead_submit)
        return;
    s_item_t *it = malloc(sizeof *it); /* not zeroed whole: the issues are written entry by entry */
    if (!it)
        return; /* intake_on_submit answers it unavailable */
    it->issues.n = it->issues.rejects = 0;
    const crm_body_lead_submit_t *lead = &crm_req_msg(req)->body.lead_submit;
    it->kind = crm_lead_check(lead, crm_now_ms(), &it->fields, &it->issues) > 0 ? S_REJECT : S_ACCEPT;
    /* The chosen dealer becomes part of keys and topics downstream. */
    const char *d = lead->dealer_id;
    if (d && *d && !crm_id_valid(CRM_ID_NAME, d)) {
        crm_issue_add(&it->issues, CRM_SEV_REJECT, "dealer_id", "bad_id",
                      "a dealer id is 1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
        it->kind = S_REJECT;
    }
    crm_req_set_data(req, it, s_item_free);
}

/* The request's prepared item, made ready for this run of the batch. */
static s_item_t *s_item(crm_req_t *req)
{
    if (!crm_req_data(req))
        intake_prepare(req);
    s_item_t *it = crm_req_data(req);
    if (!it)
        return NULL;
    it->skip = false;
    it->r_id = it->r_mobile = it->r_quar = -1;
    it->req = req;
    it->lead = &crm_req_msg(req)->body.lead_submit;
    it->sid = crm_req_key(req);
    return it;
}

crm_handled_t intake_on_submit(crm_service_t *svc, crm_req_t **reqs, int n, crm_tx_t *tx)
{
    s_batch_t b = {.store = crm_service_store(svc), .reqs = reqs, .n = n};
    b.items = malloc((size_t) n * sizeof *b.items);
    b.custs = calloc((size_t) n * 2 + 1, sizeof *b.custs);
    b.maps = calloc((size_t) n * 2 + 1, sizeof *b.maps);
    b.reads = crm_tx_new("intake", 0);
    crm_handled_t rc = CRM_RETRY;
    if (!b.items || !b.custs || !b.maps || !b.reads)
        goto out;
    for (int i = 0; i < n; i++)
        if (!(b.items[i] = s_item(reqs[i])))
            goto out; /* out of memory: answered unavailable */
    int read = s_read(&b);
    if (read != 0) {
        /* Redis refusing a read (a key of the wrong type, a counter that is
           not a number) is refused, and the framework then takes the
           batch's requests one by one: only the one that meets it fails. */
        rc = read == -1 ? crm_service_failed(svc) : CRM_RETRY;
        for (int i = 0; rc == CRM_REFUSE && i < n; i++)
            if (!crm_req_is_kept(reqs[i])) /* answered with its kept answer already */
                crm_req_fail(reqs[i], "service", "failed",
                         "Redis refused reading what this lead merges into (%s); it is kept for review",
                         crm_store_error(b.store));
        goto out;
    }
    int64_t now_ms = crm_now_ms();
    char now[24];
    crm_fmt(now, sizeof now, "%lld", (long long) now_ms);
    for (int i = 0; i < n; i++) {
        s_item_t *it = b.items[i];
        if (it->skip)
            continue;
        crm_log_context(crm_req_msg(it->req)->id);
        if (it->kind == S_REJECT)
            s_reject(&b, it, tx);
        else
            s_accept(&b, it, tx, now, now_ms);
        crm_log_context(NULL);
    }
    rc = CRM_APPLIED;
out:
    for (int i = 0; b.custs && i < b.ncusts; i++)
        crm_fields_clear(&b.custs[i].rec);
    crm_tx_destroy(&b.reads);
    free(b.items);
    free(b.custs);
    free(b.maps);
    return rc;
}

/* ------------------------------------------------------- unconvertible */

int intake_document_key(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err)
{
    (void) err;
    /* The same document sent again is the same submission. */
    const crm_bin_t *d = &msg->body.lead_unconvertible.document;
    char hex[CRM_ID_DIGEST_SZ];
    crm_id_digest_bytes(d->v ? (const void *) d->v : "", d->n, hex);
    crm_fmt(out, size, "doc:%s", hex);
    return 0;
}

crm_handled_t intake_on_unconvertible(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_lead_unconvertible_t *u = &crm_req_msg(req)->body.lead_unconvertible;
    if (u->document.n == 0)
        return crm_req_fail(req, "document", "required", "the document is empty");
    redisReply *r = crm_store_cmd(crm_service_store(svc), "INCR crm:ids:quarantine");
    if (!r)
        return crm_service_failed(svc);
    s_batch_t b = {.quar_base = r->integer};
    freeReplyObject(r);
    char errors[700], qid[32];
    crm_fmt(errors, sizeof errors, "document|unconvertible|%s%s%s", u->filename ? u->filename : "",
             u->filename ? ": " : "", u->reason);
    s_quarantine(&b, tx, crm_req_key(req), u->channel, errors, u->document.v, u->document.n, "document", qid);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_lead_rejected);
    CRM_SET_STR(&ev, lead_rejected, submission_id, crm_req_key(req));
    CRM_SET_STR(&ev, lead_rejected, quarantine_id, qid);
    crm_strs_push(&ev.body.lead_rejected.errors, errors);
    ev.body.lead_rejected.has.errors = true;
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_msg_t *a = s_rejected(req, crm_req_key(req));
    crm_strs_push(&a->body.lead_rejected.errors, errors);
    CRM_SET_STR(a, lead_rejected, quarantine_id, qid);
    char f[80];
    crm_info("lead.unconvertible", "quarantine=%s file=%s bytes=%zu", qid,
             crm_log_value(u->filename ? u->filename : "-", f, sizeof f), u->document.n);
    return CRM_APPLIED;
}
