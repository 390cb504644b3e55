/*  intake: a batch of submissions, from frames to committed answers.
 *
 *  The batch is read in two pipelined round trips (answers already given,
 *  match keys; then the matched records and fresh ids), decided in memory
 *  in arrival order, and written in one MULTI/EXEC with its events. The
 *  keys read are WATCHed, so a second intake instance writing the same
 *  customer or submission makes the batch start again from its reads.
 */
#include "intake.h"

#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"

#define INTAKE_SID_MAX 256
#define INTAKE_ATTEMPTS 3

typedef enum { S_NEW = 0, S_DONE, S_REJECT, S_ACCEPT } s_kind_t;

typedef struct {
    intake_req_t *req;
    crm_msg_t msg;
    bool decoded;
    s_kind_t kind;
    int dup_of; /* an earlier request of the batch with the same submission id, or -1 */
    crm_fields_t fields;
    crm_issues_t issues;
    int r_sub, r_id, r_mobile; /* indices of the reads */
} s_item_t;

typedef struct {
    char cid[32];
    crm_fields_t rec;
    bool loaded;
} s_cust_t;

typedef struct {
    char key[96]; /* "m:<mobile>" or "i:<id number>" */
    char cid[32];
} s_map_t;

typedef struct {
    crm_service_t *svc;
    crm_store_t *store;
    s_item_t *items;
    int n;
    s_cust_t *custs; /* records read or created in this batch */
    int ncusts;
    s_map_t *maps; /* match keys written in this batch */
    int nmaps;
    crm_tx_t *reads;
    long long lead_base, cust_base, quar_base; /* first fresh ids */
    int leads_used, custs_used, quars_used;
} s_batch_t;

/* ---------------------------------------------------------------- answers */

/* Encodes an answer that travels point to point (no stream, no number). */
static void s_encode_answer(crm_msg_t *msg, msgpack_sbuffer *out)
{
    char stream[CRM_NAME_MAX];
    memcpy(stream, msg->stream, sizeof stream);
    msg->stream[0] = 0;
    out->size = 0;
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

/* ------------------------------------------------------------ the batch */

static s_cust_t *s_cust(s_batch_t *b, const char *cid)
{
    for (int i = 0; i < b->ncusts; i++)
        if (!strcmp(b->custs[i].cid, cid))
            return &b->custs[i];
    s_cust_t *c = &b->custs[b->ncusts++];
    memset(c, 0, sizeof *c);
    snprintf(c->cid, sizeof c->cid, "%s", cid);
    return c;
}

static const char *s_map_get(s_batch_t *b, char kind, const char *value)
{
    char key[96];
    snprintf(key, sizeof key, "%c:%s", kind, value);
    for (int i = b->nmaps - 1; i >= 0; i--)
        if (!strcmp(b->maps[i].key, key))
            return b->maps[i].cid;
    return NULL;
}

static void s_map_set(s_batch_t *b, char kind, const char *value, const char *cid)
{
    s_map_t *m = &b->maps[b->nmaps++];
    snprintf(m->key, sizeof m->key, "%c:%s", kind, value);
    snprintf(m->cid, sizeof m->cid, "%s", cid);
}

static void s_release(s_batch_t *b)
{
    for (int i = 0; i < b->ncusts; i++)
        crm_fields_clear(&b->custs[i].rec);
    b->ncusts = b->nmaps = 0;
    b->leads_used = b->custs_used = b->quars_used = 0;
    crm_tx_reset(b->reads);
}

/* Element `pos` of the MGET at `index` in a pipeline, if a string. */
static const char *s_mget_str(const crm_tx_t *t, int index, int pos)
{
    const redisReply *r = crm_tx_result(t, index);
    if (pos < 0 || !r || r->type != REDIS_REPLY_ARRAY || (size_t) pos >= r->elements)
        return NULL;
    return r->element[pos]->type == REDIS_REPLY_STRING ? r->element[pos]->str : NULL;
}

/* Round 1: WATCH what decides the outcome, then the answers already given
   and the match keys, as one WATCH and three MGETs. Round 2: the matched
   records, and fresh ids. */
static int s_read(s_batch_t *b)
{
    crm_tx_t *t = b->reads;
    crm_tx_reset(t);
    int n = b->n;
    const char **watch = calloc((size_t) (3 * n + 1), sizeof *watch);
    const char **subs = calloc((size_t) (n + 1), sizeof *subs), **ids = calloc((size_t) (n + 1), sizeof *ids),
               **mobiles = calloc((size_t) (n + 1), sizeof *mobiles);
    char (*keys)[3][300] = calloc((size_t) n, sizeof *keys);
    if (!watch || !subs || !ids || !mobiles || !keys) {
        free(watch), free(subs), free(ids), free(mobiles), free(keys);
        return -1;
    }
    int nw = 1, ns = 1, ni = 1, nm = 1;
    watch[0] = "WATCH", subs[0] = ids[0] = mobiles[0] = "MGET";
    for (int i = 0; i < n; i++) {
        s_item_t *it = &b->items[i];
        it->r_sub = it->r_id = it->r_mobile = -1;
        if (it->kind == S_DONE || it->dup_of >= 0)
            continue;
        snprintf(keys[i][0], sizeof keys[i][0], CRM_KEY_SUBMISSION_FMT, it->msg.body.lead_submit.submission_id);
        watch[nw++] = keys[i][0];
        it->r_sub = ns - 1;
        subs[ns++] = keys[i][0];
        if (it->fields.indexable_id) {
            snprintf(keys[i][1], sizeof keys[i][1], CRM_KEY_IDX_ID_FMT, it->fields.v[CRM_CF_id_number]);
            watch[nw++] = keys[i][1];
            it->r_id = ni - 1;
            ids[ni++] = keys[i][1];
        }
        if (it->fields.indexable_mobile) {
            snprintf(keys[i][2], sizeof keys[i][2], CRM_KEY_IDX_MOBILE_FMT, it->fields.v[CRM_CF_mobile]);
            watch[nw++] = keys[i][2];
            it->r_mobile = nm - 1;
            mobiles[nm++] = keys[i][2];
        }
    }
    int rc = 0;
    if (ns > 1) {
        crm_tx_cmdargv(t, nw, watch, NULL);                         /* 0 */
        crm_tx_cmdargv(t, ns, subs, NULL);                          /* 1 */
        crm_tx_cmdargv(t, ni > 1 ? ni : 2, ni > 1 ? ids : (const char *[]){"MGET", "crm:idx:none"}, NULL);
        crm_tx_cmdargv(t, nm > 1 ? nm : 2, nm > 1 ? mobiles : (const char *[]){"MGET", "crm:idx:none"}, NULL);
        rc = crm_store_pipeline(b->store, t);
    }
    free(watch), free(subs), free(ids), free(mobiles), free(keys);
    if (rc != 0 || ns == 1)
        return rc;
    /* Round 2. */
    crm_tx_t *t2 = crm_tx_new("intake", 0);
    if (!t2)
        return -1;
    int accepts = 0, rejects = 0;
    for (int i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        if (it->r_sub < 0 || s_mget_str(t, 1, it->r_sub))
            continue;
        if (it->kind == S_REJECT) {
            rejects++;
            continue;
        }
        accepts++;
        const char *found[2] = {s_mget_str(t, 2, it->r_id), s_mget_str(t, 3, it->r_mobile)};
        for (int k = 0; k < 2; k++) {
            if (!found[k])
                continue;
            s_cust_t *c = s_cust(b, found[k]);
            if (!c->loaded) {
                c->loaded = true;
                crm_tx_cmd(t2, "HGETALL " CRM_KEY_CUST_FMT, found[k]);
            }
        }
    }
    int base = (int) crm_tx_size(t2);
    crm_tx_cmd(t2, "INCRBY crm:ids:lead %d", accepts);
    crm_tx_cmd(t2, "INCRBY crm:ids:customer %d", accepts);
    crm_tx_cmd(t2, "INCRBY crm:ids:quarantine %d", rejects);
    rc = crm_store_pipeline(b->store, t2);
    if (rc == 0) {
        int k = 0;
        for (int i = 0; i < b->ncusts; i++) {
            const redisReply *h = crm_tx_result(t2, k++);
            for (size_t e = 0; h && h->type == REDIS_REPLY_ARRAY && e + 1 < h->elements; e += 2) {
                int f = crm_cf_from_name(h->element[e]->str);
                if (f >= 0 && h->element[e + 1]->len)
                    b->custs[i].rec.v[f] = strdup(h->element[e + 1]->str);
            }
        }
        b->lead_base = crm_tx_result(t2, base)->integer - accepts + 1;
        b->cust_base = crm_tx_result(t2, base + 1)->integer - accepts + 1;
        b->quar_base = crm_tx_result(t2, base + 2)->integer - rejects + 1;
    }
    crm_tx_destroy(&t2);
    return rc;
}

/* The record's findings as it stands: the same rules over the record. */
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

static void s_reject(s_batch_t *b, s_item_t *it, crm_tx_t *tx, const char *now)
{
    const crm_body_lead_submit_t *lead = &it->msg.body.lead_submit;
    long long q = b->quar_base + b->quars_used++;
    char qid[32], entry[32];
    snprintf(qid, sizeof qid, "Q%lld", q);
    snprintf(entry, sizeof entry, "%lld-0", q);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_lead_rejected);
    CRM_SET_STR(&ev, lead_rejected, submission_id, lead->submission_id);
    CRM_SET_STR(&ev, lead_rejected, quarantine_id, qid);
    ev.body.lead_rejected.has.errors = true;
    char errors[4096] = "";
    size_t used = 0;
    for (int i = 0; i < it->issues.n; i++) {
        if (it->issues.v[i].severity != CRM_SEV_REJECT)
            continue;
        char line[320];
        crm_issue_format(&it->issues.v[i], line, sizeof line);
        crm_strs_push(&ev.body.lead_rejected.errors, line);
        int k = snprintf(errors + used, sizeof errors - used, "%s%s", used ? "\n" : "", line);
        if (k > 0 && (size_t) k < sizeof errors - used)
            used += (size_t) k;
    }
    snprintf(ev.corr, sizeof ev.corr, "%.*s", CRM_ID_MAX - 1, lead->submission_id);
    crm_tx_cmd(tx, "XADD " CRM_KEY_QUARANTINE " %s quarantine_id %s submission_id %s channel %s "
                   "received_ms %s errors %s frame %b",
               entry, qid, lead->submission_id, lead->channel, now, errors, it->req->frame, it->req->len);
    crm_tx_cmd(tx, "HSET " CRM_KEY_QUARANTINE_STATE " %s open", qid);
    crm_tx_emit(tx, &ev);
    s_encode_answer(&ev, &it->req->answer);
    crm_tx_cmd(tx, "SET " CRM_KEY_SUBMISSION_FMT " %b", lead->submission_id, it->req->answer.data,
               it->req->answer.size);
    crm_msg_clear(&ev);
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
    const crm_body_lead_submit_t *lead = &it->msg.body.lead_submit;
    crm_fields_t *f = &it->fields;
    const char *mobile = f->indexable_mobile ? f->v[CRM_CF_mobile] : NULL;
    const char *idnum = f->indexable_id ? f->v[CRM_CF_id_number] : NULL;

    /* Match: what this batch wrote first, then what Redis holds; the ID
       number before the mobile (mobiles change hands). */
    const char *cid = NULL, *match = NULL;
    if (idnum && ((cid = s_map_get(b, 'i', idnum)) || (cid = s_mget_str(b->reads, 2, it->r_id))))
        match = "id_number";
    if (!cid && mobile &&
        ((cid = s_map_get(b, 'm', mobile)) || (cid = s_mget_str(b->reads, 3, it->r_mobile))))
        match = "mobile";
    bool merged = cid != NULL;
    char newcid[32], lid[32];
    if (!merged) {
        snprintf(newcid, sizeof newcid, "C%lld", b->cust_base + b->custs_used++);
        cid = newcid;
    }
    long long lnum = b->lead_base + b->leads_used++;
    snprintf(lid, sizeof lid, "L%lld", lnum);
    s_cust_t *c = s_cust(b, cid);
    c->loaded = true;
    cid = c->cid;

    /* Merge: a known value is never blanked; a different one becomes
       current and the old one stays in the history. One HSET for the
       record, one history entry for the lead: "<field>" is the new value,
       "<field>.old" the one it replaced. */
    crm_msg_t upd;
    crm_msg_init(&upd, CRM_T_customer_updated);
    const char *hset[2 + 2 * CRM_CF_COUNT + 6] = {"HSET", NULL};
    const char *hist[10 + 4 * CRM_CF_COUNT] = {"XADD", NULL, "*", "lead", lid, "channel", lead->channel, "ts", now};
    char ckey[64], hkey[80], oldnames[CRM_CF_COUNT][24];
    snprintf(ckey, sizeof ckey, CRM_KEY_CUST_FMT, cid);
    snprintf(hkey, sizeof hkey, CRM_KEY_CUST_FMT ":history", cid);
    hset[1] = ckey;
    hist[1] = hkey;
    int nh = 2, nx = 9;
    char *olds[CRM_CF_COUNT] = {0};
    for (int i = 0; i < CRM_CF_COUNT; i++) {
        const char *nv = f->v[i];
        if (!nv || (c->rec.v[i] && !strcmp(c->rec.v[i], nv)))
            continue;
        const char *name = crm_cf_name((crm_cf_t) i);
        hset[nh++] = name;
        hset[nh++] = nv;
        hist[nx++] = name;
        hist[nx++] = nv;
        if (c->rec.v[i]) {
            snprintf(oldnames[i], sizeof oldnames[i], "%s.old", name);
            hist[nx++] = oldnames[i];
            hist[nx++] = c->rec.v[i];
        }
        crm_strs_push(&upd.body.customer_updated.fields, name);
        olds[i] = c->rec.v[i];
        c->rec.v[i] = strdup(nv);
    }
    if (!merged) {
        hset[nh++] = "created_ms", hset[nh++] = now;
        hset[nh++] = "first_channel", hset[nh++] = lead->channel;
    }
    hset[nh++] = "updated_ms", hset[nh++] = now;
    crm_tx_cmdargv(tx, nh, hset, NULL);
    if (nx > 9)
        crm_tx_cmdargv(tx, nx, hist, NULL);
    for (int i = 0; i < CRM_CF_COUNT; i++)
        free(olds[i]);
    if (mobile) {
        crm_tx_cmd(tx, "SET " CRM_KEY_IDX_MOBILE_FMT " %s", mobile, cid);
        s_map_set(b, 'm', mobile, cid);
    }
    if (idnum) {
        crm_tx_cmd(tx, "SET " CRM_KEY_IDX_ID_FMT " %s", idnum, cid);
        s_map_set(b, 'i', idnum, cid);
    }
    if (f->v[CRM_CF_name])
        crm_tx_cmd(tx, "SADD " CRM_KEY_IDX_NAME_FMT " %s", f->v[CRM_CF_name], cid);

    /* The record's findings as it now stands: for a new customer the
       lead's own, else the rules run again over the merged record. */
    crm_issues_t *rec = merged ? calloc(1, sizeof *rec) : &it->issues;
    if (rec) {
        if (merged)
            s_record_findings(&c->rec, rec);
        char fkey[80];
        snprintf(fkey, sizeof fkey, CRM_KEY_CUST_FMT ":findings", cid);
        if (merged)
            crm_tx_cmd(tx, "DEL %s", fkey);
        const char *fargv[2 + 2 * CRM_ISSUES_MAX] = {"HSET", fkey};
        char keys[CRM_ISSUES_MAX][72], vals[CRM_ISSUES_MAX][240];
        int na = 2;
        for (int i = 0; i < rec->n; i++) {
            if (rec->v[i].severity == CRM_SEV_REJECT || !crm_lead_is_record_field(rec->v[i].field))
                continue;
            snprintf(keys[i], sizeof keys[i], "%s:%s", rec->v[i].field, rec->v[i].code);
            snprintf(vals[i], sizeof vals[i], "%s|%s", crm_severity_name(rec->v[i].severity), rec->v[i].message);
            fargv[na++] = keys[i];
            fargv[na++] = vals[i];
        }
        if (na > 2)
            crm_tx_cmdargv(tx, na, fargv, NULL);
        if (merged)
            free(rec);
    }

    char tdat[24] = "", leadkey[64];
    if (lead->has.testdrive_at)
        snprintf(tdat, sizeof tdat, "%lld", (long long) lead->testdrive_at);
    snprintf(leadkey, sizeof leadkey, CRM_KEY_LEAD_FMT, lid);
    const char *argv[40] = {"HSET", leadkey};
    size_t lens[40] = {4, strlen(leadkey)};
    int argc = 2;
    s_arg(argv, lens, &argc, "customer_id", cid);
    s_arg(argv, lens, &argc, "submission_id", lead->submission_id);
    s_arg(argv, lens, &argc, "channel", lead->channel);
    s_arg(argv, lens, &argc, "source", lead->source);
    s_arg(argv, lens, &argc, "model", lead->model);
    s_arg(argv, lens, &argc, "intent_grade", lead->intent_grade);
    s_arg(argv, lens, &argc, "expected_purchase_date", lead->expected_purchase_date);
    s_arg(argv, lens, &argc, "dealer_id", lead->dealer_id);
    s_arg(argv, lens, &argc, "testdrive_at", tdat);
    s_arg(argv, lens, &argc, "remark", lead->remark);
    s_arg(argv, lens, &argc, "created_ms", now);
    s_arg(argv, lens, &argc, "match", match);
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
    for (int i = 0; i < it->issues.n; i++) {
        char line[320];
        crm_issue_format(&it->issues.v[i], line, sizeof line);
        crm_strs_push(&ans.body.lead_accepted.findings, line);
        ans.body.lead_accepted.has.findings = true;
    }
    s_encode_answer(&ans, &it->req->answer);
    crm_msg_clear(&ans);
    crm_tx_cmd(tx, "SET " CRM_KEY_SUBMISSION_FMT " %b", lead->submission_id, it->req->answer.data,
               it->req->answer.size);
    char sid[80], m[16];
    crm_info("lead.accepted", "submission=%s lead=%s customer=%s merged=%s match=%s mobile=%s findings=%d",
             crm_log_value(lead->submission_id, sid, sizeof sid), lid, cid, merged ? "yes" : "no",
             match ? match : "-", crm_mask_phone(mobile ? mobile : "", m, sizeof m), it->issues.n);
}

/* One attempt: reads, decisions, one transaction. 0, CRM_TX_CONFLICT, -1. */
static int s_attempt(s_batch_t *b)
{
    s_release(b);
    if (s_read(b) != 0)
        return -1;
    crm_tx_t *tx = crm_service_tx(b->svc);
    int64_t now_ms = crm_now_ms();
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long) now_ms);
    int writes = 0;
    for (int i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        if (it->kind == S_DONE || it->dup_of >= 0)
            continue;
        const redisReply *mget = crm_tx_result(b->reads, 1);
        const redisReply *given = mget && it->r_sub >= 0 && (size_t) it->r_sub < mget->elements
                                      ? mget->element[it->r_sub] : NULL;
        if (given && given->type == REDIS_REPLY_STRING) {
            /* A resend gets the first answer, byte for byte. */
            it->req->answer.size = 0;
            msgpack_sbuffer_write(&it->req->answer, given->str, given->len);
            char sid[80];
            crm_info("lead.resend", "submission=%s",
                     crm_log_value(it->msg.body.lead_submit.submission_id, sid, sizeof sid));
            continue;
        }
        crm_log_context(it->msg.id);
        if (it->kind == S_REJECT)
            s_reject(b, it, tx, now);
        else
            s_accept(b, it, tx, now, now_ms);
        crm_log_context(NULL);
        writes++;
    }
    if (!writes) {
        redisReply *u = crm_store_cmd(b->store, "UNWATCH");
        freeReplyObject(u);
        return 0;
    }
    return crm_service_commit(b->svc, tx);
}

/* Decodes and checks each request; what needs no Redis is answered here. */
static void s_prepare(crm_service_t *svc, s_item_t *it, intake_req_t *req, s_item_t *items, int index)
{
    it->req = req;
    it->dup_of = -1;
    crm_err_t err;
    if (crm_msg_decode(req->frame, req->len, &it->msg, &err) != 0) {
        crm_warn("intake.frame_refused", "field=%s code=%s reason=\"%s\"", err.field,
                 crm_errcode_name(err.code), err.text);
        crm_service_keep_reject(svc, "intake", err.field, err.text, req->frame, req->len);
        s_answer_error(NULL, err.field, crm_errcode_name(err.code), err.text, &req->answer);
        it->kind = S_DONE;
        return;
    }
    it->decoded = true;
    if (it->msg.type != CRM_T_lead_submit) {
        crm_service_keep_reject(svc, "intake", "type", "expected lead.submit", req->frame, req->len);
        s_answer_error(NULL, "type", "unexpected", "crm-intake takes lead.submit only", &req->answer);
        it->kind = S_DONE;
        return;
    }
    const char *sid = it->msg.body.lead_submit.submission_id;
    if (!sid[0] || strlen(sid) > INTAKE_SID_MAX) {
        s_answer_error(sid, "submission_id", "invalid", "submission_id must be 1 to 256 bytes",
                       &req->answer);
        it->kind = S_DONE;
        return;
    }
    for (int k = 0; k < index; k++)
        if (items[k].decoded && items[k].msg.type == CRM_T_lead_submit &&
            !strcmp(items[k].msg.body.lead_submit.submission_id, sid)) {
            it->dup_of = k; /* answered with the earlier one's answer */
            return;
        }
    it->kind = crm_lead_check(&it->msg.body.lead_submit, crm_now_ms(), &it->fields, &it->issues) > 0
                   ? S_REJECT
                   : S_ACCEPT;
}

void intake_handle(crm_service_t *svc, intake_req_t *reqs, int n)
{
    s_batch_t b = {.svc = svc, .store = crm_service_store(svc), .n = n};
    b.items = calloc((size_t) n, sizeof *b.items);
    b.custs = calloc((size_t) n * 2 + 1, sizeof *b.custs);
    b.maps = calloc((size_t) n * 2 + 1, sizeof *b.maps);
    b.reads = crm_tx_new("intake", 0);
    if (!b.items || !b.custs || !b.maps || !b.reads) {
        for (int i = 0; i < n; i++)
            s_answer_error(NULL, "service", "unavailable", "out of memory; retry", &reqs[i].answer);
        goto out;
    }
    for (int i = 0; i < n; i++)
        s_prepare(svc, &b.items[i], &reqs[i], b.items, i);
    int rc = -1;
    for (int attempt = 0; attempt < INTAKE_ATTEMPTS; attempt++) {
        rc = s_attempt(&b);
        if (rc != CRM_TX_CONFLICT)
            break;
        crm_info("intake.conflict", "attempt=%d batch=%d", attempt + 1, n);
    }
    for (int i = 0; i < n; i++) {
        s_item_t *it = &b.items[i];
        if (it->kind == S_DONE)
            continue;
        if (rc != 0 && it->dup_of < 0) {
            s_answer_error(it->msg.body.lead_submit.submission_id, "service", "unavailable",
                           "the lead was not stored; retry with the same submission_id", &it->req->answer);
        } else if (it->dup_of >= 0) {
            const msgpack_sbuffer *first = &b.items[it->dup_of].req->answer;
            it->req->answer.size = 0;
            msgpack_sbuffer_write(&it->req->answer, first->data, first->size);
        }
    }
out:
    for (int i = 0; b.items && i < n; i++) {
        crm_fields_clear(&b.items[i].fields);
        crm_msg_clear(&b.items[i].msg);
    }
    if (b.reads)
        s_release(&b);
    crm_tx_destroy(&b.reads);
    free(b.items);
    free(b.custs);
    free(b.maps);
}
