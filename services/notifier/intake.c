/*  What crm-notifier is asked to send: notify.request, and the events that
 *  imply one (testdrive.escalated). Every field is checked here, the
 *  template is rendered whole (a missing variable is an error now, never a
 *  half-filled message later), and the notification is kept with its
 *  timer. A request that can never be sent is kept too, as failed, with a
 *  dead letter naming the field.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_calendar.h"
#include "crm_lead.h"
#include "crm_norm.h"
#include "notifier.h"

const crm_template_t *ntf_template(const ntf_t *n, const char *name, int channel)
{
    for (size_t i = 0; i < n->ntemplates; i++)
        if (crm_template_channel(n->templates[i]) == channel && !strcmp(crm_template_name(n->templates[i]), name))
            return n->templates[i];
    return NULL;
}

/* Why a request cannot be sent: field and words. */
typedef struct {
    const char *reason; /* invalid | no_recipient */
    const char *field;
    char message[256];
} s_bad_t;

static int s_bad(s_bad_t *bad, const char *reason, const char *field, const char *fmt, const char *arg)
{
    bad->reason = reason;
    bad->field = field;
    snprintf(bad->message, sizeof bad->message, fmt, arg ? arg : "");
    return -1;
}

/* ------------------------------------------------------------ prefetch
 *
 * One wake-up's requests are read in two pipelines before they are
 * applied (crm_service_def_t.prefetch): whether each request id is known,
 * the customers' names and dealers, the dealers' names, and as many new
 * numbers as there are requests. The handlers then only write (they are
 * batched). What a request of the batch keeps is put in the cache at once,
 * so a second request with the same id in the batch finds it; when the
 * batch is not committed (crm_service_batch changes) the cache is not
 * used and the reads are made one by one. */
static struct {
    zhash_t *req;    /* digest -> N, or "" when not kept */
    zhash_t *name;   /* "c:<C>" -> name, "d:<C>" -> its dealer, "n:<D>" -> dealer name */
    unsigned long batch;
    bool valid;
    long long next_id, last_id; /* numbers taken for this wake-up */
} s_pf;

static void s_pf_put(zhash_t *h, const char *key, const char *value)
{
    char *v = strdup(value ? value : "");
    if (!v)
        return;
    if (zhash_lookup(h, key))
        zhash_delete(h, key);
    if (zhash_insert(h, key, v) == 0)
        zhash_freefn(h, key, free);
    else
        free(v);
}

static bool s_pf_ok(crm_service_t *svc) { return s_pf.valid && s_pf.batch == crm_service_batch(svc); }

/* The request ids kept by this batch, whatever became of the prefetch:
   a second request with the same id in one batch finds the first. Emptied
   when the batch changes (committed or dropped) and at each prefetch. */
static struct {
    zhash_t *ids; /* digest -> N */
    unsigned long batch;
} s_seen;

static const char *s_seen_get(crm_service_t *svc, const char *digest)
{
    if (!s_seen.ids || s_seen.batch != crm_service_batch(svc))
        return NULL;
    return zhash_lookup(s_seen.ids, digest);
}

static void s_seen_put(crm_service_t *svc, const char *digest, const char *id)
{
    if (s_seen.ids && (s_seen.batch != crm_service_batch(svc) || zhash_size(s_seen.ids) > 100000))
        zhash_destroy(&s_seen.ids);
    if (!s_seen.ids && !(s_seen.ids = zhash_new()))
        return;
    s_seen.batch = crm_service_batch(svc);
    char *v = strdup(id);
    if (v && zhash_insert(s_seen.ids, digest, v) == 0)
        zhash_freefn(s_seen.ids, digest, free);
    else
        free(v);
}

static void s_digest(const char *rid, char out[CRM_ID_DIGEST_SZ])
{
    const char *parts[] = {rid};
    crm_id_digest(parts, 1, out);
}

void ntf_prefetch_free(void)
{
    zhash_destroy(&s_pf.req);
    zhash_destroy(&s_pf.name);
    s_pf.valid = false;
}

static void s_seen_free(void) { zhash_destroy(&s_seen.ids); }

void ntf_intake_forget(void) { s_seen_free(); }

void ntf_intake_free(void)
{
    ntf_prefetch_free();
    s_seen_free();
}

/* A notify.request whose id its handler will take, or NULL. */
static const crm_body_notify_request_t *s_request_of(const crm_msg_t *m)
{
    if (m->type != CRM_T_notify_request)
        return NULL;
    const crm_body_notify_request_t *b = &m->body.notify_request;
    return b->request_id && crm_id_check(CRM_ID_KEY, b->request_id, "request_id", NULL, 0) == 0 ? b : NULL;
}

void ntf_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n)
{
    s_pf.valid = false;
    ntf_prefetch_free();
    s_seen_free(); /* everything before these is committed */
    if (!(s_pf.req = zhash_new()) || !(s_pf.name = zhash_new()))
        return;
    crm_tx_t *p = ntf_of(svc)->reads;
    crm_tx_reset(p);
    size_t reqs = 0;
    char key[64];
    for (size_t i = 0; i < n; i++) {
        const crm_body_notify_request_t *b = s_request_of(&msgs[i]);
        if (!b)
            continue;
        reqs++;
        char d[CRM_ID_DIGEST_SZ];
        s_digest(b->request_id, d);
        if (!zhash_lookup(s_pf.req, d)) {
            s_pf_put(s_pf.req, d, "?");
            crm_tx_cmd(p, "GET " CRM_KEY_NOTIFY_REQ_FMT, d);
        }
        const char *c = b->has.customer_id ? b->customer_id : NULL;
        snprintf(key, sizeof key, "c:%s", c ? c : "");
        if (c && crm_id_valid(CRM_ID_NAME, c) && !zhash_lookup(s_pf.name, key)) {
            s_pf_put(s_pf.name, key, "?");
            crm_tx_cmd(p, "HMGET " CRM_KEY_CUST_FMT " name dealer_id", c);
        }
        const char *dl = b->has.dealer_id ? b->dealer_id : NULL;
        snprintf(key, sizeof key, "n:%s", dl ? dl : "");
        if (dl && crm_id_valid(CRM_ID_NAME, dl) && !zhash_lookup(s_pf.name, key)) {
            s_pf_put(s_pf.name, key, "?");
            crm_tx_cmd(p, "HGET " CRM_KEY_DEALER_FMT " name", dl);
        }
    }
    if (!reqs)
        return;
    int id_at = crm_tx_cmd(p, "INCRBY " CRM_KEY_NOTIFY_IDS " %lld", (long long) reqs); /* hiredis knows no %zu */
    if (crm_store_pipeline(crm_service_store(svc), p) != 0)
        return;
    /* the answers, in the order asked */
    int k = 0;
    zhash_t *dealers = zhash_new();
    for (size_t i = 0; i < n; i++) {
        const crm_body_notify_request_t *b = s_request_of(&msgs[i]);
        if (!b)
            continue;
        char d[CRM_ID_DIGEST_SZ];
        s_digest(b->request_id, d);
        const char *v = zhash_lookup(s_pf.req, d);
        if (v && !strcmp(v, "?")) {
            const redisReply *r = crm_tx_result(p, k++);
            s_pf_put(s_pf.req, d, r && r->type == REDIS_REPLY_STRING ? r->str : "");
        }
        const char *c = b->has.customer_id ? b->customer_id : NULL;
        snprintf(key, sizeof key, "c:%s", c ? c : "");
        v = c ? zhash_lookup(s_pf.name, key) : NULL;
        if (v && !strcmp(v, "?")) {
            const redisReply *r = crm_tx_result(p, k++);
            bool two = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
            s_pf_put(s_pf.name, key, two && r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "");
            snprintf(key, sizeof key, "d:%s", c);
            const char *dd = two && r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
            s_pf_put(s_pf.name, key, dd);
            char nk[64];
            snprintf(nk, sizeof nk, "n:%s", dd);
            if (*dd && crm_id_valid(CRM_ID_NAME, dd) && dealers && !zhash_lookup(s_pf.name, nk))
                zhash_insert(dealers, dd, (void *) 1);
        }
        const char *dl = b->has.dealer_id ? b->dealer_id : NULL;
        snprintf(key, sizeof key, "n:%s", dl ? dl : "");
        v = dl ? zhash_lookup(s_pf.name, key) : NULL;
        if (v && !strcmp(v, "?")) {
            const redisReply *r = crm_tx_result(p, k++);
            s_pf_put(s_pf.name, key, r && r->type == REDIS_REPLY_STRING ? r->str : "");
        }
    }
    const redisReply *ids = crm_tx_result(p, id_at);
    if (!ids || ids->type != REDIS_REPLY_INTEGER) {
        zhash_destroy(&dealers);
        return;
    }
    s_pf.last_id = ids->integer;
    s_pf.next_id = ids->integer - (long long) reqs + 1;
    /* the dealers of the customers, in a second round */
    if (dealers && zhash_size(dealers)) {
        crm_tx_reset(p);
        zlist_t *keys = zhash_keys(dealers);
        for (const char *dd = zlist_first(keys); dd; dd = zlist_next(keys))
            crm_tx_cmd(p, "HGET " CRM_KEY_DEALER_FMT " name", dd);
        if (crm_store_pipeline(crm_service_store(svc), p) != 0) {
            zlist_destroy(&keys);
            zhash_destroy(&dealers);
            return;
        }
        int j = 0;
        for (const char *dd = zlist_first(keys); dd; dd = zlist_next(keys), j++) {
            const redisReply *r = crm_tx_result(p, j);
            snprintf(key, sizeof key, "n:%s", dd);
            s_pf_put(s_pf.name, key, r && r->type == REDIS_REPLY_STRING ? r->str : "");
        }
        zlist_destroy(&keys);
    }
    zhash_destroy(&dealers);
    s_pf.batch = crm_service_batch(svc);
    s_pf.valid = true;
}

/* A value the template needs that the request did not give: the names of
   the customer and of the dealer come from their records. `pf` is the
   cache key ("c:<C>", "d:<C>", "n:<D>"). */
static char *s_lookup(crm_service_t *svc, const char *pf, const char *key_fmt, const char *id, const char *field)
{
    if (!id || !*id || !crm_id_valid(CRM_ID_NAME, id))
        return NULL;
    if (s_pf_ok(svc)) {
        char key[64];
        snprintf(key, sizeof key, "%s%s", pf, id);
        const char *v = zhash_lookup(s_pf.name, key);
        if (v && strcmp(v, "?"))
            return *v ? strdup(v) : NULL;
    }
    redisReply *r = crm_store_cmd(crm_service_store(svc), key_fmt, id, field);
    char *v = r && r->type == REDIS_REPLY_STRING && r->len ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static bool s_has_param(const crm_strs_t *p, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < p->n; i++)
        if (!strncmp(p->v[i], name, nl) && p->v[i][nl] == '=')
            return true;
    return false;
}

typedef struct {
    char *rid, *channel, *cls, *recipient, *recipient_id, *to, *tpl, *customer, *dealer;
    char *text, *subject, *sign, *code, *params;
    int64_t not_before, not_after;
} s_note_t;

static void s_note_free(s_note_t *n)
{
    free(n->text), free(n->subject), free(n->params);
    memset(n, 0, sizeof *n);
}

/* Checks and renders; 0, or -1 with `bad`. */
static int s_prepare(crm_service_t *svc, const crm_body_notify_request_t *b, s_note_t *o, s_bad_t *bad,
                     char *to_buf, size_t to_size)
{
    ntf_t *n = ntf_of(svc);
    int ch = !strcmp(b->channel, "dealer") ? CRM_CHANNEL_WEBHOOK : crm_channel_parse(b->channel);
    if (ch < 0)
        return s_bad(bad, "invalid", "channel", "channel: sms, email, call or webhook, not '%.40s'", b->channel);
    o->channel = (char *) crm_channel_name(ch);
    const crm_template_t *tpl = ntf_template(n, b->template, ch);
    if (!tpl)
        return s_bad(bad, "invalid", "template", "template: no template '%.60s' for this channel", b->template);
    o->tpl = (char *) crm_template_name(tpl);
    int cls = crm_template_class(tpl);
    if (b->has.class && b->class[0]) {
        int given = crm_class_parse(b->class);
        if (given < 0)
            return s_bad(bad, "invalid", "class", "class: transactional, marketing or critical, not '%.30s'", b->class);
        if (given != cls)
            return s_bad(bad, "invalid", "class", "class: the template is %s", crm_class_name(cls));
    }
    o->cls = (char *) crm_class_name(cls);
    if (b->has.customer_id && b->customer_id[0] && !crm_id_valid(CRM_ID_NAME, b->customer_id))
        return s_bad(bad, "invalid", "customer_id", "customer_id: not an id%s", NULL);
    o->customer = b->has.customer_id && b->customer_id[0] ? (char *) b->customer_id : NULL;
    if (b->has.dealer_id && b->dealer_id[0] && !crm_id_valid(CRM_ID_NAME, b->dealer_id))
        return s_bad(bad, "invalid", "dealer_id", "dealer_id: not an id%s", NULL);
    o->dealer = b->has.dealer_id && b->dealer_id[0] ? (char *) b->dealer_id : NULL;
    if (b->has.recipient_id && b->recipient_id[0] && !crm_id_valid(CRM_ID_NAME, b->recipient_id))
        return s_bad(bad, "invalid", "recipient_id", "recipient_id: not an id%s", NULL);
    o->recipient_id = b->has.recipient_id && b->recipient_id[0] ? (char *) b->recipient_id : NULL;
    const char *rcpt = b->has.recipient && b->recipient[0] ? b->recipient : NULL;
    if (rcpt && strcmp(rcpt, "customer") && strcmp(rcpt, "staff") && strcmp(rcpt, "dealer") && strcmp(rcpt, "crm"))
        return s_bad(bad, "invalid", "recipient", "recipient: customer, staff, dealer or crm, not '%.30s'", rcpt);
    if (!rcpt)
        rcpt = !strcmp(b->to, "crm") ? "crm" : o->customer ? "customer" : "dealer";
    o->recipient = (char *) rcpt;
    if (cls == CRM_CLASS_MARKETING && (strcmp(rcpt, "customer") || !o->customer))
        return s_bad(bad, "invalid", "customer_id",
                     "customer_id: marketing goes to a customer whose consent is on record%s", NULL);

    /* The address, per channel. */
    const char *to = b->to;
    if (!strcmp(to, "-"))
        return s_bad(bad, "no_recipient", "to", "to: nobody to send it to (no contact on record)%s", NULL);
    switch (ch) {
    case CRM_CHANNEL_SMS:
        if (!strcmp(to, "crm")) {
            if (!n->crm_mobile[0])
                return s_bad(bad, "no_recipient", "to", "to: crm, but no --crm-mobile is configured%s", NULL);
            to = n->crm_mobile;
        }
        if (!strncmp(to, "segment:", 8))
            return s_bad(bad, "invalid", "to", "to: segments ('%.40s') are not expanded by crm-notifier", to);
        {
            char m[CRM_NORM_MOBILE_SZ];
            crm_norm_code_t rc = crm_norm_mobile(to, m);
            if (rc != CRM_NORM_OK && rc != CRM_NORM_NOT_IN_PLAN)
                return s_bad(bad, "invalid", "to", "to: not a Chinese mobile number (%s)", crm_norm_code_str(rc));
            snprintf(to_buf, to_size, "%s", m);
        }
        break;
    case CRM_CHANNEL_EMAIL:
        if (!strcmp(to, "crm")) {
            if (!n->crm_email[0])
                return s_bad(bad, "no_recipient", "to", "to: crm, but no --crm-email is configured%s", NULL);
            to = n->crm_email;
        }
        {
            char e[CRM_NORM_EMAIL_SZ], sug[CRM_NORM_DOMAIN_SZ];
            crm_norm_code_t rc = crm_norm_email(to, e, sug);
            if (rc != CRM_NORM_OK && rc != CRM_NORM_SUSPECTED_TYPO)
                return s_bad(bad, "invalid", "to", "to: not an e-mail address (%s)", crm_norm_code_str(rc));
            snprintf(to_buf, to_size, "%s", e);
        }
        break;
    case CRM_CHANNEL_WEBHOOK:
        if (!crm_id_valid(CRM_ID_NAME, to))
            return s_bad(bad, "invalid", "to", "to: a dealer id for the webhook channel%s", NULL);
        snprintf(to_buf, to_size, "%s", to);
        if (!o->dealer)
            o->dealer = to_buf;
        break;
    case CRM_CHANNEL_CALL:
        if (strcmp(to, "callcentre") && !crm_id_valid(CRM_ID_NAME, to))
            return s_bad(bad, "invalid", "to", "to: a dealer id or callcentre for a call task%s", NULL);
        snprintf(to_buf, to_size, "%s", to);
        break;
    }
    o->to = to_buf;

    /* The variables: the request's, and the names from the records. */
    crm_strs_t params = {0};
    for (size_t i = 0; i < b->params.n; i++)
        crm_strs_push(&params, b->params.v[i]);
    char *cname = NULL, *dname = NULL, *dealer_of = NULL;
    for (size_t i = 0; i < crm_template_nvars(tpl); i++) {
        const char *v = crm_template_var(tpl, i);
        if (!strcmp(v, "customer_name") && !s_has_param(&params, v)) {
            cname = s_lookup(svc, "c:", "HGET " CRM_KEY_CUST_FMT " %s", o->customer, "name");
            char *p = NULL;
            if (asprintf(&p, "customer_name=%s", cname ? cname : "尊敬的客户") >= 0)
                crm_strs_push(&params, p);
            free(p);
        } else if (!strcmp(v, "dealer_name") && !s_has_param(&params, v)) {
            const char *d = o->dealer;
            if (!d && o->customer)
                d = dealer_of = s_lookup(svc, "d:", "HGET " CRM_KEY_CUST_FMT " %s", o->customer, "dealer_id");
            dname = s_lookup(svc, "n:", "HGET " CRM_KEY_DEALER_FMT " %s", d, "name");
            if (dname) {
                char *p = NULL;
                if (asprintf(&p, "dealer_name=%s", dname) >= 0)
                    crm_strs_push(&params, p);
                free(p);
            }
        }
    }
    free(cname), free(dname), free(dealer_of);
    char err[256] = "";
    const char *const *pv = (const char *const *) params.v;
    int rc = 0;
    o->text = crm_template_render(tpl, pv, params.n, false, err, sizeof err);
    if (o->text && ch == CRM_CHANNEL_EMAIL)
        o->subject = crm_template_render_subject(tpl, pv, params.n, err, sizeof err);
    if (o->text && ch == CRM_CHANNEL_SMS)
        o->params = crm_template_params_json(tpl, pv, params.n, err, sizeof err);
    if (!o->text || (ch == CRM_CHANNEL_EMAIL && !o->subject) || (ch == CRM_CHANNEL_SMS && !o->params))
        rc = s_bad(bad, "invalid", "params", "params: %s", err);
    for (size_t i = 0; i < params.n; i++)
        free(params.v[i]);
    free(params.v);
    if (rc)
        return rc;
    o->sign = (char *) crm_template_sign(tpl);
    o->code = (char *) crm_template_code(tpl);

    int64_t now = crm_now_ms();
    o->not_before = b->has.not_before ? b->not_before : 0;
    int64_t from = o->not_before > now ? o->not_before : now;
    o->not_after = b->has.not_after && b->not_after > 0 ? b->not_after : from + n->max_age_ms[cls];
    if (o->not_before < 0 || (o->not_before && o->not_after < o->not_before))
        return s_bad(bad, "invalid", "not_after", "not_after: before not_before%s", NULL);
    return 0;
}

static void s_hset(crm_tx_t *tx, const char *id, const char *const *fv, size_t n)
{
    const char *argv[64];
    char key[64];
    snprintf(key, sizeof key, CRM_KEY_NOTIFY_FMT, id);
    int argc = 0;
    argv[argc++] = "HSET";
    argv[argc++] = key;
    for (size_t i = 0; i + 1 < n && argc + 2 < 64; i += 2)
        if (fv[i + 1]) {
            argv[argc++] = fv[i];
            argv[argc++] = fv[i + 1];
        }
    crm_tx_cmdargv(tx, argc, argv, NULL);
}

int ntf_intake(crm_service_t *svc, crm_tx_t *tx, const crm_body_notify_request_t *b, char *id, size_t idsz)
{
    crm_store_t *store = crm_service_store(svc);
    char digest[CRM_ID_DIGEST_SZ];
    s_digest(b->request_id, digest);
    const char *known = s_seen_get(svc, digest);
    if (!known && s_pf_ok(svc))
        known = zhash_lookup(s_pf.req, digest);
    if (known && !strcmp(known, "?"))
        known = NULL;
    if (known && *known) {
        snprintf(id, idsz, "%s", known);
        return 1;
    }
    if (!known) {
        redisReply *r = crm_store_cmd(store, "GET " CRM_KEY_NOTIFY_REQ_FMT, digest);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_STRING) {
            snprintf(id, idsz, "%s", r->str);
            freeReplyObject(r);
            return 1;
        }
        freeReplyObject(r);
    }
    if (s_pf_ok(svc) && s_pf.next_id && s_pf.next_id <= s_pf.last_id)
        snprintf(id, idsz, "N%lld", s_pf.next_id++);
    else {
        redisReply *r = crm_store_cmd(store, "INCR " CRM_KEY_NOTIFY_IDS);
        if (!r)
            return -1;
        snprintf(id, idsz, "N%lld", r->integer);
        freeReplyObject(r);
    }
    s_seen_put(svc, digest, id); /* a second request of this id in the batch finds it */

    s_note_t o = {0};
    s_bad_t bad = {0};
    char to[CRM_NORM_EMAIL_SZ + 64] = "";
    int bad_rc = s_prepare(svc, b, &o, &bad, to, sizeof to);
    int64_t now = crm_now_ms();
    char created[24], nb[24], na[24];
    snprintf(created, sizeof created, "%lld", (long long) now);
    snprintf(nb, sizeof nb, "%lld", (long long) o.not_before);
    snprintf(na, sizeof na, "%lld", (long long) o.not_after);
    const char *channel = o.channel ? o.channel : b->channel;
    const char *fv[] = {"request_id", b->request_id,
                        "channel", channel,
                        "class", o.cls,
                        "recipient", o.recipient,
                        "recipient_id", o.recipient_id,
                        "to", bad_rc ? b->to : o.to,
                        "template", b->template,
                        "customer_id", o.customer,
                        "dealer_id", o.dealer,
                        "not_before", o.not_before ? nb : NULL,
                        "not_after", bad_rc ? NULL : na,
                        "created_ms", created,
                        "updated_ms", created,
                        "text", o.text,
                        "subject", o.subject,
                        "sign", o.sign,
                        "code", o.code,
                        "params", o.params,
                        "attempts", "0",
                        "refused", bad_rc ? "1" : NULL,
                        "state", bad_rc ? "failed" : "queued"};
    s_hset(tx, id, fv, sizeof fv / sizeof fv[0]);
    crm_tx_cmd(tx, "SET " CRM_KEY_NOTIFY_REQ_FMT " %s", digest, id);
    if (bad_rc) {
        ntf_fail(tx, id, b->request_id, channel, bad.reason, bad.field, NULL, bad.message, 0, true);
        crm_warn("notify.refused", "id=%s request=%.80s field=%s why=\"%s\"", id, b->request_id, bad.field,
                 bad.message);
    } else {
        ntf_log(tx, id, "queued", NULL, NULL, 0);
        char tid[NTF_ID_SZ + 2];
        snprintf(tid, sizeof tid, "n:%s", id);
        crm_tx_due(tx, ntf_set(crm_channel_parse(o.channel)), tid, o.not_before > now ? o.not_before : now);
        crm_debug("notify.queued", "id=%s request=%.80s channel=%s template=%s", id, b->request_id, o.channel,
                  o.tpl);
    }
    s_note_free(&o);
    return 0;
}

crm_handled_t ntf_on_request(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_notify_request_t *b = &msg->body.notify_request;
    char err[160];
    if (crm_id_check(CRM_ID_KEY, b->request_id, "request_id", err, sizeof err) != 0) {
        crm_service_why(svc, "%s", err);
        return CRM_REFUSE;
    }
    char id[NTF_ID_SZ];
    return ntf_intake(svc, tx, b, id, sizeof id) < 0 ? crm_service_failed(svc) : CRM_APPLIED;
}

/* A dealer that left a test drive unacknowledged: the CRM department is
   told by e-mail, the dealer's sales manager by SMS (the contact mobile of
   crmctl webhook set) and the dealer's system by its webhook, where set. */
crm_handled_t ntf_on_escalated(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_testdrive_escalated_t *e = &msg->body.testdrive_escalated;
    const char *ids[] = {e->testdrive_id, e->dealer_id};
    static const char *const names[] = {"testdrive_id", "dealer_id"};
    if (!crm_service_ids_ok(svc, ids, names, 2, 1))
        return CRM_REFUSE;
    bool dealer = e->dealer_id && *e->dealer_id; /* none: nobody to escalate to but the CRM department */
    crm_store_t *store = crm_service_store(svc);
    redisReply *td = crm_store_cmd(store, "HMGET " CRM_KEY_TD_FMT " at", e->testdrive_id);
    if (!td)
        return crm_service_failed(svc);
    char at[40] = "-";
    if (td->type == REDIS_REPLY_ARRAY && td->elements == 1 && td->element[0]->type == REDIS_REPLY_STRING)
        crm_format_cst(strtoll(td->element[0]->str, NULL, 10), at, sizeof at);
    freeReplyObject(td);
    redisReply *wh = crm_store_cmd(store, "HMGET " CRM_KEY_WEBHOOK_FMT " contact_mobile url", dealer ? e->dealer_id : "-");
    if (!wh)
        return crm_service_failed(svc);
    bool mobile = wh->type == REDIS_REPLY_ARRAY && wh->elements == 2 && wh->element[0]->type == REDIS_REPLY_STRING &&
                  wh->element[0]->len;
    bool hook = wh->type == REDIS_REPLY_ARRAY && wh->elements == 2 && wh->element[1]->type == REDIS_REPLY_STRING &&
                wh->element[1]->len;
    char contact[CRM_NORM_MOBILE_SZ + 8] = "";
    if (mobile)
        snprintf(contact, sizeof contact, "%s", wh->element[0]->str);
    freeReplyObject(wh);

    char p[4][160];
    snprintf(p[0], sizeof p[0], "testdrive_id=%s", e->testdrive_id);
    snprintf(p[1], sizeof p[1], "dealer_id=%s", dealer ? e->dealer_id : "-");
    snprintf(p[2], sizeof p[2], "at=%s", at);
    snprintf(p[3], sizeof p[3], "reason=%s", e->reason);
    struct {
        const char *channel, *to, *tpl, *suffix, *recipient;
        bool on;
    } sends[] = {
        {"email", "crm", "testdrive_escalated_crm", "crm", "crm", true},
        {"sms", contact, "testdrive_escalated_manager", "manager", "staff", dealer && (mobile || !hook)},
        {"webhook", e->dealer_id, "testdrive_escalated_manager", "dealer", "dealer", dealer && hook},
    };
    for (size_t i = 0; i < sizeof sends / sizeof sends[0]; i++) {
        if (!sends[i].on)
            continue;
        crm_msg_t m;
        crm_msg_init(&m, CRM_T_notify_request);
        char rid[CRM_ID_KEY_MAX + 1], id[NTF_ID_SZ];
        snprintf(rid, sizeof rid, "esc:%s:%.100s:%s", e->testdrive_id, e->reason, sends[i].suffix);
        CRM_SET_STR(&m, notify_request, request_id, rid);
        CRM_SET_STR(&m, notify_request, channel, sends[i].channel);
        /* no contact mobile: the failure (no_recipient) tells the CRM department */
        CRM_SET_STR(&m, notify_request, to, sends[i].to[0] ? sends[i].to : "-");
        CRM_SET_STR(&m, notify_request, template, sends[i].tpl);
        CRM_SET_STR(&m, notify_request, recipient, sends[i].recipient);
        if (dealer)
            CRM_SET_STR(&m, notify_request, dealer_id, e->dealer_id);
        for (int k = 0; k < 4; k++)
            crm_strs_push(&m.body.notify_request.params, p[k]);
        m.body.notify_request.has.params = true;
        int rc = ntf_intake(svc, tx, &m.body.notify_request, id, sizeof id);
        crm_msg_clear(&m);
        if (rc < 0)
            return crm_service_failed(svc);
    }
    crm_info("testdrive.escalation", "testdrive=%s dealer=%s reason=%s manager_sms=%d webhook=%d", e->testdrive_id,
             e->dealer_id, e->reason, mobile, hook);
    return CRM_APPLIED;
}
