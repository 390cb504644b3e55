/*  uplink: what dealers' systems send back (see uplink.h).
 *
 *  Every handler follows the same steps: who the dealer is (certificate or
 *  dealer_id), the checks that need no Redis, the reads it decides on
 *  (WATCHed, so a second dispatcher instance writing the same customer
 *  makes the framework run the request again), then its writes and events
 *  into the transaction and the answer, sent after the commit.
 */
#include "crm_str.h"
#include "uplink.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crm_calendar.h"
#include "crm_customer.h"
#include "crm_lead.h"
#include "crm_norm.h"
#include "dispatch.h"
#include "gateway.h"

#define S_TEXT_MAX 4000 /* content, feedback, notes, work done */
#define S_SHORT_MAX 256 /* model, colour, engine number, order and work-order numbers */
#define S_STAFF_ROLE_ANY 7
enum { S_CONSULTANT = 1, S_MANAGER = 2, S_DIRECTOR = 4 };

/* The uplink request types and their body structs. */
#define S_UPLINK(X)                                                                                \
    X(customer_file) X(customer_assign) X(followup_record) X(order_record) X(delivery_record)       \
    X(service_record) X(prospect_lose) X(lost_decide) X(staff_add) X(staff_update) X(staff_leave)           \
    X(staff_away) X(consultant_reassign) X(owner_decide)

typedef struct {
    crm_service_t *svc;
    crm_req_t *req;
    crm_store_t *store;
    crm_tx_t *tx;
    const char *record;
    char dealer[CRM_ID_NAME_MAX + 1];
    bool gateway;
    int64_t now;
    char nows[24];
    redisReply *cust; /* the customer read by s_customer */
    char okey[CRM_ID_NAME_MAX + 96]; /* crm:order:<D>:<digest of the order number> (s_order) */
    /* What s_prefetch read in one round trip (owned by `pre`). */
    crm_tx_t *pre;
    const redisReply *pre_cust, *pre_staff;
    const char *pre_cid, *pre_sid;
    long long counter;
    char cid[CRM_ID_NAME_MAX + 1];
} s_up_t;

static void s_ids(const crm_msg_t *m, const char **record, const char **dealer)
{
    *record = *dealer = NULL;
    switch (m->type) {
#define S_CASE(t)                                                                                  \
    case CRM_T_##t:                                                                                \
        *record = m->body.t.record_id;                                                             \
        *dealer = m->body.t.dealer_id;                                                             \
        return;
        S_UPLINK(S_CASE)
#undef S_CASE
    default: return;
    }
}

/* ------------------------------------------------------------ keys */

static int s_key(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err, bool with_dealer)
{
    const char *rec, *dealer;
    s_ids(msg, &rec, &dealer);
    char why[160];
    if (crm_id_check(CRM_ID_KEY, rec, "record_id", why, sizeof why) != 0) {
        crm_fmt(err->field, sizeof err->field, "record_id");
        crm_fmt(err->text, sizeof err->text, "%.150s", strchr(why, ':') ? strchr(why, ':') + 2 : why);
        return -1;
    }
    if (!with_dealer) {
        crm_fmt(out, size, "%s", rec);
        return 0;
    }
    if (!dealer || !*dealer) {
        crm_fmt(err->field, sizeof err->field, "dealer_id");
        crm_fmt(err->text, sizeof err->text, "required here: the dealer the record is for");
        err->code = CRM_E_MISSING;
        return -1;
    }
    if (!crm_id_valid(CRM_ID_NAME, dealer)) {
        crm_fmt(err->field, sizeof err->field, "dealer_id");
        crm_fmt(err->text, sizeof err->text, "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
        return -1;
    }
    crm_fmt(out, size, "%s/%s", dealer, rec);
    return 0;
}

static int s_key_gateway(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err)
{
    return s_key(msg, out, size, err, false);
}

static int s_key_control(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err)
{
    return s_key(msg, out, size, err, true);
}

/* ------------------------------------------------------------ answers */

/* An uplink record's answer is a dealer.reply on both endpoints: kept
   under the record, it is the first answer to a resend from either (the
   dealer's client, or crmctl importing the dealer's export). Refusals are
   the endpoint's own (they are not kept). */
static crm_msg_t *s_ok(s_up_t *u, const char *id, const char *cid)
{
    crm_msg_t *a = gateway_reply_ok(u->req);
    CRM_SET_STR(a, dealer_reply, id, id);
    CRM_SET_STR(a, dealer_reply, customer_id, cid);
    return a;
}

static void s_ok_finding(crm_msg_t *a, const char *line)
{
    crm_strs_push(&a->body.dealer_reply.findings, line);
    a->body.dealer_reply.has.findings = true;
}

static crm_handled_t s_not_yours(s_up_t *u, const char *field, const char *what)
{
    char f[80];
    crm_warn("uplink.not_yours", "dealer=%s type=%s %s=%s", u->dealer, crm_type_name(crm_req_msg(u->req)->type),
             field, crm_log_value(what, f, sizeof f));
    return crm_req_fail(u->req, field, "not_yours", "%s is another dealer's; a dealer writes only its own customers",
                        what);
}

/* ------------------------------------------------------------ checks */

/* Trimmed text of 1..max bytes into out (malloc'ed), or NULL when absent;
   -1 after an answer naming the field. */
static int s_text(s_up_t *u, const char *field, const char *in, size_t max, bool required, char **out)
{
    *out = NULL;
    char *buf = in ? malloc(strlen(in) * 3 + 16) : NULL;
    if (in && !buf) {
        crm_req_fail(u->req, "service", "unavailable", "out of memory; send again");
        return -1;
    }
    if (in && crm_norm_text(in, buf, strlen(in) * 3 + 16) != 0) {
        free(buf);
        crm_req_fail(u->req, field, "invalid", "not readable text");
        return -1;
    }
    if (!in || !*buf) {
        free(buf);
        if (required) {
            crm_req_fail(u->req, field, "required", "required");
            return -1;
        }
        return 0;
    }
    if (strlen(buf) > max) {
        free(buf);
        crm_req_fail(u->req, field, "too_long", "at most %zu bytes", max);
        return -1;
    }
    *out = buf;
    return 0;
}

/* A date YYYY-MM-DD (the usual shapes read) into out; 0 absent, 1 set,
   -1 after an answer. */
static int s_date(s_up_t *u, const char *field, const char *in, bool required, char out[CRM_NORM_DATE_SZ])
{
    out[0] = 0;
    if (!in || !*in) {
        if (required) {
            crm_req_fail(u->req, field, "required", "required (YYYY-MM-DD)");
            return -1;
        }
        return 0;
    }
    if (crm_norm_birthday(in, out) != CRM_NORM_OK) {
        crm_req_fail(u->req, field, "invalid", "a date YYYY-MM-DD expected");
        return -1;
    }
    return 1;
}

static bool s_in(const char *v, const char *const *list)
{
    for (int i = 0; v && list[i]; i++)
        if (!strcmp(v, list[i]))
            return true;
    return false;
}

static int s_one_of(s_up_t *u, const char *field, const char *v, const char *const *list, const char *shown)
{
    if (!v || !*v) {
        crm_req_fail(u->req, field, "required", "one of %s", shown);
        return -1;
    }
    if (!s_in(v, list)) {
        crm_req_fail(u->req, field, "invalid", "one of %s", shown);
        return -1;
    }
    return 0;
}

static const char *const s_grades[] = {"H", "A", "B", "C", NULL};

/* An intent grade as a dealer writes it (h, H): the letter, or NULL. */
static const char *s_grade(const char *in)
{
    if (!in || !in[0] || in[1])
        return NULL;
    for (int i = 0; s_grades[i]; i++)
        if ((in[0] & ~0x20) == s_grades[i][0])
            return s_grades[i];
    return NULL;
}

/* Adds "key value" to an argv when the value is there. */
static void s_arg(const char **argv, int *n, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    argv[(*n)++] = key;
    argv[(*n)++] = value;
}

/* ------------------------------------------------------------ the dealer */

static crm_handled_t s_begin(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx, s_up_t *u)
{
    memset(u, 0, sizeof *u);
    u->svc = svc, u->req = req, u->tx = tx, u->store = crm_service_store(svc);
    const char *body_dealer;
    s_ids(crm_req_msg(req), &u->record, &body_dealer);
    const char *peer = crm_req_peer(req);
    u->now = crm_now_ms();
    crm_fmt(u->nows, sizeof u->nows, "%lld", (long long) u->now);
    if (peer) {
        u->gateway = true;
        crm_fmt(u->dealer, sizeof u->dealer, "%s", peer);
        if (body_dealer && *body_dealer && strcmp(body_dealer, peer))
            return s_not_yours(u, "dealer_id", body_dealer);
        return CRM_APPLIED;
    }
    /* The control endpoint: the key function checked dealer_id. */
    if (!body_dealer || !crm_id_valid(CRM_ID_NAME, body_dealer))
        return crm_req_fail(req, "dealer_id", "required", "the dealer the record is for");
    crm_fmt(u->dealer, sizeof u->dealer, "%s", body_dealer);
    redisReply *e = crm_store_cmd(u->store, "EXISTS " CRM_KEY_DEALER_FMT, u->dealer);
    if (!e)
        return crm_service_failed(svc);
    bool known = e->type == REDIS_REPLY_INTEGER && e->integer == 1;
    freeReplyObject(e);
    if (!known)
        return crm_req_fail(req, "dealer_id", "unknown", "no dealer %s", u->dealer);
    return CRM_APPLIED;
}

static void s_end(s_up_t *u)
{
    if (u->cust != u->pre_cust)
        freeReplyObject(u->cust);
    u->cust = NULL;
    crm_tx_destroy(&u->pre);
}

/* One round trip for what a record about a customer by a staff member
   needs: the customer (WATCHed), the staff member, and a fresh number of
   `counter` (may be NULL). Later s_customer / s_staff calls for the same
   ids use it. A failure here is left to them (they read again). */
static void s_prefetch(s_up_t *u, const char *cid, const char *sid, const char *counter)
{
    if (!cid || !crm_id_valid(CRM_ID_NAME, cid) || !sid || !crm_id_valid(CRM_ID_NAME, sid) ||
        !(u->pre = crm_tx_new("dispatcher", 0)))
        return;
    crm_tx_cmd(u->pre, "WATCH " CRM_KEY_CUST_FMT " crm:dealer:%s:staff:%s", cid, u->dealer, sid);
    crm_tx_cmd(u->pre, "HGETALL " CRM_KEY_CUST_FMT, cid);
    crm_tx_cmd(u->pre, "HGETALL crm:dealer:%s:staff:%s", u->dealer, sid);
    if (counter)
        crm_tx_cmd(u->pre, "INCR %s", counter);
    if (crm_store_pipeline(u->store, u->pre) != 0) {
        crm_tx_destroy(&u->pre);
        return;
    }
    const redisReply *c = crm_tx_result(u->pre, 1), *st = crm_tx_result(u->pre, 2);
    const redisReply *n = counter ? crm_tx_result(u->pre, 3) : NULL;
    if (!c || c->type != REDIS_REPLY_ARRAY || !st || st->type != REDIS_REPLY_ARRAY ||
        (counter && (!n || n->type != REDIS_REPLY_INTEGER))) {
        crm_tx_destroy(&u->pre);
        return;
    }
    u->pre_cust = c, u->pre_staff = st, u->pre_cid = cid, u->pre_sid = sid;
    u->counter = n ? n->integer : 0;
}

static const char *s_cust_field(const s_up_t *u, const char *name)
{
    const char *v = crm_reply_field(u->cust, name);
    return v && *v ? v : NULL;
}

/* owner.changed, and the sets that list a dealer's and a consultant's
   customers. */
static void s_owner_r(crm_tx_t *tx, const char *cid, const char *dealer, const char *consultant,
                      const char *old_dealer, const char *old_consultant, const char *reason, const char *reassign);

static void s_owner(crm_tx_t *tx, const char *cid, const char *dealer, const char *consultant, const char *old_dealer,
                    const char *old_consultant, const char *reason)
{
    s_owner_r(tx, cid, dealer, consultant, old_dealer, old_consultant, reason, NULL);
}

/* The same, part of reassignment `reassign` (owner.changed reassign_id). */
static void s_owner_r(crm_tx_t *tx, const char *cid, const char *dealer, const char *consultant,
                      const char *old_dealer, const char *old_consultant, const char *reason, const char *reassign)
{
    if (old_dealer && strcmp(old_dealer, dealer))
        crm_tx_cmd(tx, "SREM crm:dealer:%s:customers %s", old_dealer, cid);
    crm_tx_cmd(tx, "SADD crm:dealer:%s:customers %s", dealer, cid);
    if (old_consultant && old_dealer && (!consultant || strcmp(old_consultant, consultant) || strcmp(old_dealer, dealer)))
        crm_tx_cmd(tx, "SREM crm:dealer:%s:staff:%s:customers %s", old_dealer, old_consultant, cid);
    if (consultant)
        crm_tx_cmd(tx, "SADD crm:dealer:%s:staff:%s:customers %s", dealer, consultant, cid);
    crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " dealer_id %s", cid, dealer);
    if (consultant)
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " consultant_id %s", cid, consultant);
    else
        crm_tx_cmd(tx, "HDEL " CRM_KEY_CUST_FMT " consultant_id", cid);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_owner_changed);
    CRM_SET_STR(&ev, owner_changed, customer_id, cid);
    CRM_SET_STR(&ev, owner_changed, dealer_id, dealer);
    CRM_SET_STR(&ev, owner_changed, consultant_id, consultant);
    CRM_SET_STR(&ev, owner_changed, old_dealer_id, old_dealer);
    CRM_SET_STR(&ev, owner_changed, old_consultant_id, old_consultant);
    CRM_SET_STR(&ev, owner_changed, reason, reason);
    CRM_SET_STR(&ev, owner_changed, reassign_id, reassign);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_info("owner.changed", "customer=%s dealer=%s consultant=%s old_dealer=%s reason=%s", cid, dealer,
             consultant ? consultant : "-", old_dealer ? old_dealer : "-", reason);
}

void uplink_claim_on_dispatch(crm_tx_t *tx, const char *cid, const char *dealer, const redisReply *cust)
{
    if (!cid || !crm_id_valid(CRM_ID_NAME, cid) || !cust || cust->type != REDIS_REPLY_ARRAY || !cust->elements)
        return;
    const char *owner = crm_reply_field(cust, "dealer_id");
    if (owner && *owner)
        return;
    s_owner(tx, cid, dealer, NULL, NULL, NULL, "testdrive_dispatched");
    if (!crm_reply_field(cust, "stage"))
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage prospect", cid);
}

/* Reads customer `cid` (WATCHed) into u->cust. A customer of another dealer
   is not_yours; one nobody owns becomes this dealer's when `claim`. */
static crm_handled_t s_read_customer(s_up_t *u, const char *field, const char *cid)
{
    if (!cid || !crm_id_valid(CRM_ID_NAME, cid))
        return crm_req_fail(u->req, field, "bad_id", "a customer id (C12) expected");
    crm_fmt(u->cid, sizeof u->cid, "%s", cid);
    if (u->cust != u->pre_cust)
        freeReplyObject(u->cust);
    u->cust = NULL;
    if (u->pre_cust && !strcmp(u->pre_cid, cid)) {
        u->cust = (redisReply *) u->pre_cust; /* WATCHed by s_prefetch */
    } else {
        redisReply *w = crm_store_cmd(u->store, "WATCH " CRM_KEY_CUST_FMT, cid);
        if (!w)
            return crm_service_failed(u->svc);
        freeReplyObject(w);
        u->cust = crm_store_cmd(u->store, "HGETALL " CRM_KEY_CUST_FMT, cid);
        if (!u->cust)
            return crm_service_failed(u->svc);
    }
    if (u->cust->type != REDIS_REPLY_ARRAY || u->cust->elements == 0)
        return crm_req_fail(u->req, field, "unknown", "no customer %s", cid);
    return CRM_APPLIED;
}

static crm_handled_t s_customer(s_up_t *u, const char *field, const char *cid, bool claim)
{
    crm_handled_t rc = s_read_customer(u, field, cid);
    if (rc != CRM_APPLIED)
        return rc;
    const char *owner = s_cust_field(u, "dealer_id");
    if (owner && strcmp(owner, u->dealer))
        return s_not_yours(u, field, cid);
    if (!owner && claim)
        s_owner(u->tx, cid, u->dealer, s_cust_field(u, "consultant_id"), NULL, NULL, "first_record");
    return CRM_APPLIED;
}

/* A staff member of this dealer, active, of one of `roles`; *out (may be
   NULL) gets the HGETALL. */
static crm_handled_t s_staff(s_up_t *u, const char *field, const char *sid, int roles, redisReply **out)
{
    if (!sid || !crm_id_valid(CRM_ID_NAME, sid))
        return crm_req_fail(u->req, field, "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    bool borrowed = u->pre_staff && !strcmp(u->pre_sid, sid) && !out;
    if (!borrowed) {
        /* decided on: WATCHed (a person leaving meanwhile runs this again) */
        redisReply *w = crm_store_cmd(u->store, "WATCH crm:dealer:%s:staff:%s", u->dealer, sid);
        if (!w)
            return crm_service_failed(u->svc);
        freeReplyObject(w);
    }
    redisReply *h = borrowed ? (redisReply *) u->pre_staff
                             : crm_store_cmd(u->store, "HGETALL crm:dealer:%s:staff:%s", u->dealer, sid);
    if (!h)
        return crm_service_failed(u->svc);
    crm_handled_t rc = CRM_APPLIED;
    const char *state = crm_reply_field(h, "state"), *role = crm_reply_field(h, "role");
    int mask = !role ? 0 : !strcmp(role, "consultant") ? S_CONSULTANT : !strcmp(role, "manager") ? S_MANAGER : S_DIRECTOR;
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        rc = crm_req_fail(u->req, field, "unknown", "no staff member %s at dealer %s (staff.add first)", sid, u->dealer);
    else if (state && !strcmp(state, "left"))
        rc = crm_req_fail(u->req, field, "closed", "%s has left the dealer", sid);
    else if (!(mask & roles))
        rc = crm_req_fail(u->req, field, "invalid", "%s is a %s; this needs a %s", sid, role ? role : "-",
                          roles == (S_MANAGER | S_DIRECTOR) ? "sales manager or director" : "consultant");
    if (rc == CRM_APPLIED && out)
        *out = h;
    else if (!borrowed)
        freeReplyObject(h);
    return rc;
}

/* An event with the common fields set by the caller, emitted and cleared. */
static void s_emit(s_up_t *u, crm_msg_t *ev)
{
    crm_fmt(ev->corr, sizeof ev->corr, "%.*s", CRM_ID_MAX - 1, u->record ? u->record : "");
    crm_tx_emit(u->tx, ev);
    crm_msg_clear(ev);
}

/* ------------------------------------------------------------ staff */

static int s_role(const char *r)
{
    return !r ? 0 : !strcmp(r, "consultant") ? S_CONSULTANT : !strcmp(r, "manager") ? S_MANAGER : !strcmp(r, "director") ? S_DIRECTOR : 0;
}

/* A manager given for a staff member: a manager or director of the same
   dealer, not the person themself. */
static crm_handled_t s_manager(s_up_t *u, const char *sid, const char *mid)
{
    if (!mid || !*mid)
        return CRM_APPLIED;
    if (!strcmp(mid, sid))
        return crm_req_fail(u->req, "manager_id", "invalid", "a person cannot be their own manager");
    crm_handled_t rc = s_staff(u, "manager_id", mid, S_MANAGER | S_DIRECTOR, NULL);
    /* up the chain from the new manager: never back to the person */
    char at[CRM_ID_NAME_MAX + 1];
    crm_fmt(at, sizeof at, "%s", mid);
    for (int depth = 0; rc == CRM_APPLIED && depth < 64; depth++) {
        redisReply *r = crm_store_cmd(u->store, "HGET crm:dealer:%s:staff:%s manager_id", u->dealer, at);
        if (!r)
            return crm_service_failed(u->svc);
        bool up = r->type == REDIS_REPLY_STRING && crm_id_valid(CRM_ID_NAME, r->str);
        if (up && !strcmp(r->str, sid))
            rc = crm_req_fail(u->req, "manager_id", "invalid", "%s reports to %s already (a circle)", mid, sid);
        if (up)
            crm_fmt(at, sizeof at, "%s", r->str);
        freeReplyObject(r);
        if (!up)
            break;
    }
    return rc;
}

/* Whether anyone active reports to `sid` (a manager becoming a
   consultant must hand them over first): 1, 0, or -1 (store). */
static int s_has_reports(s_up_t *u, const char *sid)
{
    redisReply *ids = crm_store_cmd(u->store, "SMEMBERS crm:dealer:%s:staff", u->dealer);
    if (!ids)
        return -1;
    crm_tx_t *t = crm_tx_new("dispatcher", 0);
    int found = t ? 0 : -1;
    for (size_t i = 0; t && ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++)
        crm_tx_cmd(t, "HMGET crm:dealer:%s:staff:%s manager_id state", u->dealer, ids->element[i]->str);
    if (t && crm_tx_size(t) && crm_store_pipeline(u->store, t) != 0)
        found = -1;
    for (size_t i = 0; found == 0 && t && i < crm_tx_size(t); i++) {
        const redisReply *r = crm_tx_result(t, (int) i);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            !strcmp(r->element[0]->str, sid) &&
            !(r->element[1]->type == REDIS_REPLY_STRING && !strcmp(r->element[1]->str, "left")))
            found = 1;
    }
    crm_tx_destroy(&t);
    freeReplyObject(ids);
    return found;
}

static crm_handled_t s_on_staff_add(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_staff_add_t *b = &crm_req_msg(req)->body.staff_add;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    if (!crm_id_valid(CRM_ID_NAME, b->staff_id))
        return crm_req_fail(req, "staff_id", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    if (!s_role(b->role))
        return crm_req_fail(req, "role", "invalid", "consultant, manager or director");
    char *name = NULL;
    if (s_text(&u, "name", b->name, S_SHORT_MAX, true, &name) != 0)
        return CRM_REFUSE;
    rc = s_manager(&u, b->staff_id, b->manager_id);
    redisReply *w = rc == CRM_APPLIED ? crm_store_cmd(u.store, "WATCH crm:dealer:%s:staff:%s", u.dealer, b->staff_id)
                                      : NULL;
    freeReplyObject(w);
    redisReply *e = rc == CRM_APPLIED && w ? crm_store_cmd(u.store, "HGET crm:dealer:%s:staff:%s state", u.dealer,
                                                           b->staff_id)
                                           : NULL;
    if (rc == CRM_APPLIED && !e)
        rc = crm_service_failed(svc);
    else if (rc == CRM_APPLIED && e->type == REDIS_REPLY_STRING && strcmp(e->str, "left"))
        rc = crm_req_fail(req, "staff_id", "exists", "%s is registered already (staff.update changes it)", b->staff_id);
    /* someone who left and comes back is registered again (staff.added) */
    freeReplyObject(e);
    if (rc == CRM_APPLIED) {
        const char *mid = b->manager_id && *b->manager_id ? b->manager_id : "";
        crm_tx_cmd(tx, "HSET crm:dealer:%s:staff:%s staff_id %s dealer_id %s role %s name %s manager_id %s state active "
                       "created_ms %s updated_ms %s",
                   u.dealer, b->staff_id, b->staff_id, u.dealer, b->role, name, mid, u.nows, u.nows);
        crm_tx_cmd(tx, "SADD crm:dealer:%s:staff %s", u.dealer, b->staff_id);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_staff_added);
        CRM_SET_STR(&ev, staff_added, dealer_id, u.dealer);
        CRM_SET_STR(&ev, staff_added, staff_id, b->staff_id);
        CRM_SET_STR(&ev, staff_added, role, b->role);
        CRM_SET_STR(&ev, staff_added, name, name);
        CRM_SET_STR(&ev, staff_added, manager_id, *mid ? mid : NULL);
        s_emit(&u, &ev);
        s_ok(&u, b->staff_id, NULL);
        crm_info("staff.added", "dealer=%s staff=%s role=%s", u.dealer, b->staff_id, b->role);
    }
    free(name);
    return rc;
}

static crm_handled_t s_on_staff_update(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_staff_update_t *b = &crm_req_msg(req)->body.staff_update;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    redisReply *h = NULL;
    if ((rc = s_staff(&u, "staff_id", b->staff_id, S_STAFF_ROLE_ANY, &h)) != CRM_APPLIED)
        return rc;
    char *name = NULL;
    if (b->role && !s_role(b->role))
        rc = crm_req_fail(req, "role", "invalid", "consultant, manager or director");
    else if (b->name && s_text(&u, "name", b->name, S_SHORT_MAX, true, &name) != 0)
        rc = CRM_REFUSE;
    else
        rc = s_manager(&u, b->staff_id, b->manager_id);
    if (rc == CRM_APPLIED && b->role && !strcmp(b->role, "consultant") &&
        strcmp(crm_reply_field_or(h, "role", "consultant"), "consultant")) {
        int has = s_has_reports(&u, b->staff_id);
        if (has < 0)
            rc = crm_service_failed(svc);
        else if (has)
            rc = crm_req_fail(req, "role", "invalid",
                              "%s still manages staff; give them another manager first", b->staff_id);
    }
    if (rc == CRM_APPLIED) {
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_staff_updated);
        const char *names[] = {"role", "name", "manager_id"};
        const char *vals[] = {b->role, name, b->manager_id};
        for (int i = 0; i < 3; i++) {
            const char *cur = crm_reply_field(h, names[i]);
            if (!vals[i] || (cur && !strcmp(cur, vals[i])))
                continue;
            crm_tx_cmd(tx, "HSET crm:dealer:%s:staff:%s %s %s", u.dealer, b->staff_id, names[i], vals[i]);
            char line[400];
            crm_fmt(line, sizeof line, "%s=%s", names[i], vals[i]);
            crm_strs_push(&ev.body.staff_updated.changes, line);
        }
        if (ev.body.staff_updated.changes.n) {
            crm_tx_cmd(tx, "HSET crm:dealer:%s:staff:%s updated_ms %s", u.dealer, b->staff_id, u.nows);
            ev.body.staff_updated.has.changes = true;
            CRM_SET_STR(&ev, staff_updated, dealer_id, u.dealer);
            CRM_SET_STR(&ev, staff_updated, staff_id, b->staff_id);
            s_emit(&u, &ev);
        }
        crm_msg_clear(&ev);
        s_ok(&u, b->staff_id, NULL);
    }
    free(name);
    freeReplyObject(h);
    return rc;
}

static crm_handled_t s_on_staff_leave(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_staff_leave_t *b = &crm_req_msg(req)->body.staff_leave;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    if ((rc = s_staff(&u, "staff_id", b->staff_id, S_STAFF_ROLE_ANY, NULL)) != CRM_APPLIED)
        return rc;
    char *reason = NULL;
    if (s_text(&u, "reason", b->reason, S_TEXT_MAX, false, &reason) != 0)
        return CRM_REFUSE;
    redisReply *n = crm_store_cmd(u.store, "SCARD crm:dealer:%s:staff:%s:customers", u.dealer, b->staff_id);
    if (!n) {
        free(reason);
        return crm_service_failed(svc);
    }
    int64_t owned = n->type == REDIS_REPLY_INTEGER ? n->integer : 0;
    freeReplyObject(n);
    crm_tx_cmd(tx, "HSET crm:dealer:%s:staff:%s state left left_ms %s updated_ms %s reason %s", u.dealer, b->staff_id,
               u.nows, u.nows, reason ? reason : "");
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_staff_left);
    CRM_SET_STR(&ev, staff_left, dealer_id, u.dealer);
    CRM_SET_STR(&ev, staff_left, staff_id, b->staff_id);
    CRM_SET_I64(&ev, staff_left, customers, owned);
    CRM_SET_STR(&ev, staff_left, reason, reason);
    s_emit(&u, &ev);
    crm_msg_t *a = s_ok(&u, b->staff_id, NULL);
    CRM_SET_I64(a, dealer_reply, count, owned); /* customers to reassign */
    crm_info("staff.left", "dealer=%s staff=%s customers=%lld", u.dealer, b->staff_id, (long long) owned);
    free(reason);
    return CRM_APPLIED;
}

/* Whether the staff member (HGETALL) is away today (China time). */
static bool s_away_now(const s_up_t *u, const redisReply *staff)
{
    const char *from = crm_reply_field(staff, "away_from"), *to = crm_reply_field(staff, "away_to");
    int64_t f = from ? crm_day_parse(from) : INT64_MIN, t = to ? crm_day_parse(to) : INT64_MIN;
    int64_t today = crm_cst_day(u->now);
    return f != INT64_MIN && t != INT64_MIN && f <= today && today <= t;
}

/* staff.away: leave or training from one day to another. */
static crm_handled_t s_on_staff_away(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_staff_away_t *b = &crm_req_msg(req)->body.staff_away;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    if ((rc = s_staff(&u, "staff_id", b->staff_id, S_STAFF_ROLE_ANY, NULL)) != CRM_APPLIED)
        return rc;
    int64_t from = crm_day_parse(b->from), to = crm_day_parse(b->to);
    if (from == INT64_MIN)
        return crm_req_fail(req, "from", "invalid", "not a date (YYYY-MM-DD)");
    if (to == INT64_MIN)
        return crm_req_fail(req, "to", "invalid", "not a date (YYYY-MM-DD)");
    if (to < from || to - from > 366)
        return crm_req_fail(req, "to", "invalid", "the last day away is before the first, or more than a year after");
    char *reason = NULL;
    if (s_text(&u, "reason", b->reason, S_SHORT_MAX, false, &reason) != 0)
        return CRM_REFUSE;
    bool postpone = b->has.postpone && b->postpone;
    char f[16], t[16];
    crm_day_format(from, f, sizeof f);
    crm_day_format(to, t, sizeof t);
    crm_tx_cmd(tx, "HSET crm:dealer:%s:staff:%s away_from %s away_to %s away_postpone %s updated_ms %s", u.dealer,
               b->staff_id, f, t, postpone ? "1" : "0", u.nows);
    /* What falls due meanwhile (the scheduler's open tasks), for the answer. */
    redisReply *n = crm_store_cmd(u.store, "ZCOUNT " CRM_KEY_TASKS_MINE_FMT " %lld (%lld", u.dealer, b->staff_id,
                                  (long long) crm_cst_day_start_ms(from), (long long) crm_cst_day_start_ms(to + 1));
    int64_t due = n && n->type == REDIS_REPLY_INTEGER ? n->integer : 0;
    freeReplyObject(n);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_staff_absent);
    CRM_SET_STR(&ev, staff_absent, dealer_id, u.dealer);
    CRM_SET_STR(&ev, staff_absent, staff_id, b->staff_id);
    CRM_SET_STR(&ev, staff_absent, from, f);
    CRM_SET_STR(&ev, staff_absent, to, t);
    CRM_SET_BOOL(&ev, staff_absent, postpone, postpone);
    CRM_SET_STR(&ev, staff_absent, reason, reason);
    s_emit(&u, &ev);
    crm_msg_t *a = s_ok(&u, b->staff_id, NULL);
    CRM_SET_I64(a, dealer_reply, count, due); /* activities due while away */
    crm_info("staff.absent", "dealer=%s staff=%s from=%s to=%s postpone=%d due=%lld", u.dealer, b->staff_id, f, t,
             postpone, (long long) due);
    free(reason);
    return CRM_APPLIED;
}

/* consultant.reassign: every customer of one consultant to another at
   once, in this one transaction, each with its owner.changed; the
   original owner is kept on each (original_consultant) and the list in
   crm:reassign:<R>, so the reassignment can be undone. */
/* consultant.reassigned, and the answer: the reassignment and how many moved. */
static void s_reassigned(s_up_t *u, const char *rid, const char *from, const char *to, int64_t n, const char *undo_of)
{
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_consultant_reassigned);
    CRM_SET_STR(&ev, consultant_reassigned, reassign_id, rid);
    CRM_SET_STR(&ev, consultant_reassigned, dealer_id, u->dealer);
    CRM_SET_STR(&ev, consultant_reassigned, from_consultant, from);
    CRM_SET_STR(&ev, consultant_reassigned, to_consultant, to);
    CRM_SET_I64(&ev, consultant_reassigned, customers, n);
    CRM_SET_STR(&ev, consultant_reassigned, undo_of, undo_of);
    s_emit(u, &ev);
    crm_msg_t *a = s_ok(u, rid, NULL);
    CRM_SET_I64(a, dealer_reply, count, n);
}

static crm_handled_t s_reassign_undo(s_up_t *u, const char *rid)
{
    if (!crm_id_valid(CRM_ID_NAME, rid))
        return crm_req_fail(u->req, "undo", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    redisReply *w = crm_store_cmd(u->store, "WATCH crm:reassign:%s", rid);
    freeReplyObject(w);
    redisReply *h = w ? crm_store_cmd(u->store, "HGETALL crm:reassign:%s", rid) : NULL;
    if (!h)
        return crm_service_failed(u->svc);
    crm_handled_t rc = CRM_APPLIED;
    const char *dealer = crm_reply_field(h, "dealer_id"), *state = crm_reply_field(h, "state");
    if (h->elements == 0 || !dealer || strcmp(dealer, u->dealer))
        rc = crm_req_fail(u->req, "undo", "unknown", "no reassignment %s at dealer %s", rid, u->dealer);
    else if (state && !strcmp(state, "undone"))
        rc = crm_req_fail(u->req, "undo", "closed", "%s was undone already", rid);
    if (rc != CRM_APPLIED) {
        freeReplyObject(h);
        return rc;
    }
    const char *from = crm_reply_field_or(h, "from_consultant", ""), *to = crm_reply_field_or(h, "to_consultant", "");
    /* Back to someone who has left: no (reassign to someone else). */
    if ((rc = s_staff(u, "undo", from, S_STAFF_ROLE_ANY, NULL)) != CRM_APPLIED) {
        freeReplyObject(h);
        return rc;
    }
    char *list = strdup(crm_reply_field_or(h, "customers", ""));
    if (!list) {
        freeReplyObject(h);
        return CRM_RETRY;
    }
    /* Back only what is still the other's by this reassignment. */
    int64_t moved = 0;
    for (char *save = NULL, *cid = strtok_r(list, " ", &save); cid && rc == CRM_APPLIED;
         cid = strtok_r(NULL, " ", &save)) {
        if (!crm_id_valid(CRM_ID_NAME, cid))
            continue;
        redisReply *cw = crm_store_cmd(u->store, "WATCH " CRM_KEY_CUST_FMT, cid);
        freeReplyObject(cw);
        redisReply *c = cw ? crm_store_cmd(u->store, "HMGET " CRM_KEY_CUST_FMT " dealer_id consultant_id", cid) : NULL;
        if (!c) {
            rc = crm_service_failed(u->svc);
            break;
        }
        bool still = c->elements == 2 && c->element[0]->type == REDIS_REPLY_STRING &&
                     !strcmp(c->element[0]->str, u->dealer) && c->element[1]->type == REDIS_REPLY_STRING &&
                     !strcmp(c->element[1]->str, to);
        freeReplyObject(c);
        if (still) {
            s_owner_r(u->tx, cid, u->dealer, from, u->dealer, to, "reassign_undone", rid);
            moved++;
        }
    }
    free(list);
    if (rc == CRM_APPLIED) {
        crm_tx_cmd(u->tx, "HSET crm:reassign:%s state undone undone_ms %s", rid, u->nows);
        s_reassigned(u, rid, to, from, moved, rid);
        crm_info("consultant.reassign_undone", "dealer=%s reassign=%s customers=%lld", u->dealer, rid, (long long) moved);
    }
    freeReplyObject(h);
    return rc;
}

static crm_handled_t s_on_reassign(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_consultant_reassign_t *b = &crm_req_msg(req)->body.consultant_reassign;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    if (b->has.undo && *b->undo)
        return s_reassign_undo(&u, b->undo);
    if (!b->has.from_consultant || !crm_id_valid(CRM_ID_NAME, b->from_consultant))
        return crm_req_fail(req, "from_consultant", "required", "whose customers (or undo)");
    if (!b->has.to_consultant || !*b->to_consultant)
        return crm_req_fail(req, "to_consultant", "required", "who takes them");
    if (!strcmp(b->from_consultant, b->to_consultant))
        return crm_req_fail(req, "to_consultant", "invalid", "the same consultant");
    /* The one who gives may have left; the one who takes must be here. */
    redisReply *fw = crm_store_cmd(u.store, "WATCH crm:dealer:%s:staff:%s crm:dealer:%s:staff:%s:customers", u.dealer,
                                   b->from_consultant, u.dealer, b->from_consultant);
    freeReplyObject(fw);
    redisReply *fe = fw ? crm_store_cmd(u.store, "EXISTS crm:dealer:%s:staff:%s", u.dealer, b->from_consultant) : NULL;
    if (!fe)
        return crm_service_failed(svc);
    bool known = fe->type == REDIS_REPLY_INTEGER && fe->integer == 1;
    freeReplyObject(fe);
    if (!known)
        return crm_req_fail(req, "from_consultant", "unknown", "no staff member %s at dealer %s", b->from_consultant,
                            u.dealer);
    redisReply *staff = NULL;
    if ((rc = s_staff(&u, "to_consultant", b->to_consultant, S_STAFF_ROLE_ANY, &staff)) != CRM_APPLIED)
        return rc;
    bool away = s_away_now(&u, staff);
    freeReplyObject(staff);
    if (away)
        return crm_req_fail(req, "to_consultant", "on_leave", "%s is away: no new customers meanwhile", b->to_consultant);
    char *reason = NULL;
    if (s_text(&u, "reason", b->reason, S_SHORT_MAX, false, &reason) != 0)
        return CRM_REFUSE;
    redisReply *ids = crm_store_cmd(u.store, "SORT crm:dealer:%s:staff:%s:customers ALPHA", u.dealer, b->from_consultant);
    redisReply *n = ids ? crm_store_cmd(u.store, "INCR crm:ids:reassign") : NULL;
    if (!ids || !n) {
        freeReplyObject(ids);
        free(reason);
        return crm_service_failed(svc);
    }
    char rid[32];
    crm_fmt(rid, sizeof rid, "R%lld", n->integer);
    freeReplyObject(n);
    size_t cap = 1, len = 0;
    for (size_t i = 0; i < ids->elements; i++)
        cap += ids->element[i]->len + 1;
    char *list = malloc(cap);
    if (!list) {
        freeReplyObject(ids);
        free(reason);
        return CRM_RETRY;
    }
    list[0] = 0;
    size_t moved = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        const char *cid = ids->element[i]->str;
        if (ids->element[i]->type != REDIS_REPLY_STRING || !crm_id_valid(CRM_ID_NAME, cid)) {
            crm_warn("reassign.bad_member", "dealer=%s staff=%s", u.dealer, b->from_consultant);
            continue;
        }
        moved++;
        s_owner_r(tx, cid, u.dealer, b->to_consultant, u.dealer, b->from_consultant, "reassigned", rid);
        crm_tx_cmd(tx, "HSETNX " CRM_KEY_CUST_FMT " original_consultant %s", cid, b->from_consultant);
        len += (size_t) crm_fmt(list + len, cap - len, "%s%s", len ? " " : "", cid);
    }
    crm_tx_cmd(tx, "HSET crm:reassign:%s reassign_id %s dealer_id %s from_consultant %s to_consultant %s customers %s "
                   "reason %s state done created_ms %s",
               rid, rid, u.dealer, b->from_consultant, b->to_consultant, list, reason ? reason : "", u.nows);
    s_reassigned(&u, rid, b->from_consultant, b->to_consultant, (int64_t) moved, NULL);
    crm_info("consultant.reassigned", "dealer=%s reassign=%s from=%s to=%s customers=%zu", u.dealer, rid,
             b->from_consultant, b->to_consultant, moved);
    free(list);
    free(reason);
    freeReplyObject(ids);
    return CRM_APPLIED;
}

/* owner.decide: the director approves or refuses the transfer of a
   released prospect that crm-scheduler asked for (crm:plan:{C}
   transfer_to). */
static crm_handled_t s_on_owner_decide(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_owner_decide_t *b = &crm_req_msg(req)->body.owner_decide;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    bool approve = b->decision && !strcmp(b->decision, "approve");
    if (rc == CRM_APPLIED && !approve && (!b->decision || strcmp(b->decision, "refuse")))
        rc = crm_req_fail(req, "decision", "invalid", "approve or refuse");
    if (rc == CRM_APPLIED)
        rc = s_customer(&u, "customer_id", b->customer_id, false);
    if (rc == CRM_APPLIED)
        rc = s_staff(&u, "director_id", b->director_id, S_DIRECTOR, NULL);
    redisReply *p = NULL;
    if (rc == CRM_APPLIED) {
        redisReply *w = crm_store_cmd(u.store, "WATCH " CRM_KEY_PLAN_FMT, u.cid);
        freeReplyObject(w);
        p = w ? crm_store_cmd(u.store, "HMGET " CRM_KEY_PLAN_FMT " transfer_to transfer_from", u.cid) : NULL;
        if (!p)
            rc = crm_service_failed(svc);
    }
    const char *to = p && p->elements == 2 && p->element[0]->type == REDIS_REPLY_STRING ? p->element[0]->str : NULL;
    if (rc == CRM_APPLIED && (!to || !*to))
        rc = crm_req_fail(req, "customer_id", "unknown", "no ownership transfer of %s is waiting", u.cid);
    /* The one who would take it over must still be here (refused closed
       when they left meanwhile). */
    if (rc == CRM_APPLIED && approve)
        rc = s_staff(&u, "customer_id", to, S_STAFF_ROLE_ANY, NULL);
    if (rc == CRM_APPLIED) {
        const char *cur = s_cust_field(&u, "consultant_id");
        if (approve && (!cur || strcmp(cur, to)))
            s_owner(tx, u.cid, u.dealer, to, u.dealer, cur, "transferred");
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_owner_transfer_decided);
        CRM_SET_STR(&ev, owner_transfer_decided, customer_id, u.cid);
        CRM_SET_STR(&ev, owner_transfer_decided, dealer_id, u.dealer);
        CRM_SET_STR(&ev, owner_transfer_decided, decision, approve ? "approved" : "refused");
        CRM_SET_STR(&ev, owner_transfer_decided, director_id, b->director_id);
        CRM_SET_STR(&ev, owner_transfer_decided, to_consultant, to);
        CRM_SET_STR(&ev, owner_transfer_decided, from_consultant, cur);
        s_emit(&u, &ev);
        s_ok(&u, u.cid, u.cid);
        crm_info("owner.transfer_decided", "customer=%s to=%s decision=%s by=%s", u.cid, to,
                 approve ? "approved" : "refused", b->director_id);
    }
    freeReplyObject(p);
    s_end(&u);
    return rc;
}

/* ------------------------------------------------------------ customers */

static crm_handled_t s_on_assign(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_customer_assign_t *b = &crm_req_msg(req)->body.customer_assign;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    char *reason = NULL;
    if (rc == CRM_APPLIED)
        rc = s_customer(&u, "customer_id", b->customer_id, true);
    redisReply *staff = NULL;
    if (rc == CRM_APPLIED)
        rc = s_staff(&u, "consultant_id", b->consultant_id, S_STAFF_ROLE_ANY, &staff);
    if (rc == CRM_APPLIED && s_away_now(&u, staff))
        rc = crm_req_fail(req, "consultant_id", "on_leave", "%s is away from %s to %s: no new customers meanwhile",
                          b->consultant_id, crm_reply_field(staff, "away_from"), crm_reply_field(staff, "away_to"));
    freeReplyObject(staff);
    if (rc == CRM_APPLIED && s_text(&u, "reason", b->reason, S_SHORT_MAX, false, &reason) != 0)
        rc = CRM_REFUSE;
    if (rc == CRM_APPLIED) {
        const char *cur = s_cust_field(&u, "consultant_id");
        if (!cur || strcmp(cur, b->consultant_id))
            s_owner(tx, u.cid, u.dealer, b->consultant_id, u.dealer, cur, reason ? reason : "assigned");
        s_ok(&u, u.cid, u.cid);
    }
    free(reason);
    s_end(&u);
    return rc;
}

/* The vehicle fields of a customer file, stored by VIN. */
typedef struct {
    char vin[CRM_NORM_VIN_SZ];
    char plate[CRM_NORM_PLATE_SZ];
    char plate_date[CRM_NORM_DATE_SZ], sale_date[CRM_NORM_DATE_SZ], first_service_date[CRM_NORM_DATE_SZ];
    const char *transmission;
    bool any;
} s_vehicle_t;

static void s_file_date(crm_issues_t *is, const char *field, const char *in, char out[CRM_NORM_DATE_SZ])
{
    out[0] = 0;
    if (!in || !*in)
        return;
    if (crm_norm_birthday(in, out) != CRM_NORM_OK) {
        out[0] = 0;
        crm_issue_add(is, CRM_SEV_ERROR, field, "invalid", "not a date (YYYY-MM-DD); kept in the history as received");
    }
}

static const char *s_transmission(const char *in)
{
    static const char *const manual[] = {"manual", "mt", "手动", "手动挡", "手动档", NULL};
    static const char *const automatic[] = {"automatic", "auto", "at", "cvt", "dct", "amt", "自动", "自动挡",
                                            "自动档", "手自一体", NULL};
    for (int i = 0; manual[i]; i++)
        if (!strcasecmp(in, manual[i]))
            return "manual";
    for (int i = 0; automatic[i]; i++)
        if (!strcasecmp(in, automatic[i]))
            return "automatic";
    return NULL;
}

/* Matches a customer file to a customer: its customer_id, else the ID
   number, else the mobile. 0 (cid "" when new), or the handled code. The
   match keys are read (WATCHed) in every case: idx_id / idx_mobile get the
   customers they name now ("" when none), so a file never points them
   away from another customer. */
typedef struct {
    char id[CRM_ID_NAME_MAX + 1], mobile[CRM_ID_NAME_MAX + 1];
} s_idx_t;

static crm_handled_t s_match(s_up_t *u, const crm_body_customer_file_t *b, const crm_fields_t *f, char *cid,
                             size_t size, const char **match, s_idx_t *idx)
{
    cid[0] = 0;
    *match = NULL;
    memset(idx, 0, sizeof *idx);
    char kid[300] = "crm:idx:none", kmob[300] = "crm:idx:none";
    if (f->indexable_id)
        crm_fmt(kid, sizeof kid, CRM_KEY_IDX_ID_FMT, f->v[CRM_CF_id_number]);
    if (f->indexable_mobile)
        crm_fmt(kmob, sizeof kmob, CRM_KEY_IDX_MOBILE_FMT, f->v[CRM_CF_mobile]);
    redisReply *w = crm_store_cmd(u->store, "WATCH %s %s", kid, kmob);
    if (!w)
        return crm_service_failed(u->svc);
    freeReplyObject(w);
    redisReply *m = crm_store_cmd(u->store, "MGET %s %s", kid, kmob);
    if (!m)
        return crm_service_failed(u->svc);
    const char *found = NULL;
    for (size_t i = 0; m->type == REDIS_REPLY_ARRAY && i < m->elements && i < 2; i++) {
        const redisReply *e = m->element[i];
        if (e->type != REDIS_REPLY_STRING || !crm_id_valid(CRM_ID_NAME, e->str))
            continue;
        crm_fmt(i == 0 ? idx->id : idx->mobile, sizeof idx->id, "%s", e->str);
        if (!found) {
            found = e->str;
            *match = i == 0 ? "id_number" : "mobile";
        }
    }
    if (b->customer_id && *b->customer_id) {
        found = b->customer_id;
        *match = "customer_id";
    }
    crm_handled_t rc = CRM_APPLIED;
    if (found) {
        rc = s_customer(u, *match, found, false);
        if (rc == CRM_APPLIED)
            crm_fmt(cid, size, "%s", found);
    }
    freeReplyObject(m);
    return rc;
}

/* The car `vin` as the store has it (WATCHed): *owner gets its customer
   ("" when none), *owner_dealer that customer's dealer. 0, or -1 (store). */
static int s_vehicle(s_up_t *u, const char *vin, char owner[CRM_ID_NAME_MAX + 1],
                     char owner_dealer[CRM_ID_NAME_MAX + 1], redisReply **out)
{
    owner[0] = owner_dealer[0] = 0;
    if (out)
        *out = NULL;
    redisReply *w = crm_store_cmd(u->store, "WATCH crm:veh:%s", vin);
    if (!w)
        return -1;
    freeReplyObject(w);
    redisReply *h = crm_store_cmd(u->store, "HGETALL crm:veh:%s", vin);
    if (!h)
        return -1;
    const char *c = crm_reply_field(h, "customer_id");
    if (c && crm_id_valid(CRM_ID_NAME, c)) {
        crm_fmt(owner, CRM_ID_NAME_MAX + 1, "%s", c);
        redisReply *d = crm_store_cmd(u->store, "HGET " CRM_KEY_CUST_FMT " dealer_id", c);
        if (!d) {
            freeReplyObject(h);
            return -1;
        }
        if (d->type == REDIS_REPLY_STRING)
            crm_fmt(owner_dealer, CRM_ID_NAME_MAX + 1, "%s", d->str);
        freeReplyObject(d);
    }
    if (out)
        *out = h;
    else
        freeReplyObject(h);
    return 0;
}

static crm_handled_t s_on_file(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_customer_file_t *b = &crm_req_msg(req)->body.customer_file;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    /* The person, by the lead rules; what would reject a lead is a
       finding of a record (the audit must count it). */
    crm_body_lead_submit_t view;
    memset(&view, 0, sizeof view);
#define S_VIEW(fld) view.fld = b->fld;
    CRM_CUSTOMER_FIELDS(S_VIEW)
#undef S_VIEW
    view.channel = "dealer";
    crm_fields_t f;
    crm_issues_t *is = calloc(1, sizeof *is);
    crm_fields_t rec;
    memset(&rec, 0, sizeof rec);
    memset(&f, 0, sizeof f);
    char *remark = NULL, *engine = NULL, *model = NULL, *colour = NULL;
    if (!is) {
        rc = crm_req_fail(req, "service", "unavailable", "out of memory; send again");
        goto out;
    }
    crm_lead_check(&view, u.now, &f, is);
    if (!f.v[CRM_CF_name] && !f.v[CRM_CF_id_number] && !f.raw[CRM_CF_id_number]) {
        rc = crm_req_fail(req, "name", "required", "a customer file needs a name or an ID number");
        goto out;
    }
    if (s_text(&u, "remark", b->remark, S_TEXT_MAX, false, &remark) != 0 ||
        s_text(&u, "engine_number", b->engine_number, S_SHORT_MAX, false, &engine) != 0 ||
        s_text(&u, "model", b->model, S_SHORT_MAX, false, &model) != 0 ||
        s_text(&u, "colour", b->colour, S_SHORT_MAX, false, &colour) != 0) {
        rc = CRM_REFUSE;
        goto out;
    }
    /* The file's own rules: vehicle dates, grade, the sale date of an owner. */
    int n_lead = is->n; /* the issues after this are the file's own */
    s_vehicle_t v = {0};
    if (f.v[CRM_CF_vin]) {
        /* a car is kept by its VIN only when it is one (a check digit that
           fails is a warning: imported cars often do) */
        crm_norm_code_t vc = crm_norm_vin(f.v[CRM_CF_vin], v.vin);
        if (vc != CRM_NORM_OK && vc != CRM_NORM_BAD_CHECK)
            v.vin[0] = 0;
    }
    if (f.v[CRM_CF_plate])
        crm_fmt(v.plate, sizeof v.plate, "%s", f.v[CRM_CF_plate]);
    s_file_date(is, "plate_date", b->plate_date, v.plate_date);
    s_file_date(is, "sale_date", b->sale_date, v.sale_date);
    s_file_date(is, "first_service_date", b->first_service_date, v.first_service_date);
    if (b->transmission && *b->transmission && !(v.transmission = s_transmission(b->transmission)))
        crm_issue_add(is, CRM_SEV_WARNING, "transmission", "invalid", "manual or automatic");
    if (b->has.first_service_mileage && (b->first_service_mileage < 0 || b->first_service_mileage > 10000000))
        crm_issue_add(is, CRM_SEV_WARNING, "first_service_mileage", "invalid", "0 to 10,000,000 km");
    v.any = v.vin[0] || v.plate[0] || engine || model || colour || v.sale_date[0] || b->sale_date;
    bool owner = v.vin[0] || v.sale_date[0] || (b->sale_date && *b->sale_date);
    const char *grade = b->grade && *b->grade ? s_grade(b->grade) : NULL;
    if (b->grade && *b->grade && !grade) {
        crm_issue_add(is, CRM_SEV_WARNING, "grade", "invalid", "intent grade H, A, B or C");
        grade = NULL;
    }
    char epd[CRM_NORM_DATE_SZ] = "";
    s_file_date(is, "expected_purchase_date", b->expected_purchase_date, epd);
    if (owner && !v.sale_date[0] && !(b->sale_date && *b->sale_date))
        crm_issue_add(is, CRM_SEV_ERROR, "sale_date", "required", "an owner's file needs the sale (invoice) date");
    if (v.any && !v.vin[0])
        crm_issue_add(is, CRM_SEV_WARNING, "vin", f.v[CRM_CF_vin] ? "unusable" : "required",
                      "a vehicle without a usable VIN is kept in the customer's history only");

    /* Who it is. */
    char cid[CRM_ID_NAME_MAX + 8];
    const char *match;
    s_idx_t idx;
    if ((rc = s_match(&u, b, &f, cid, sizeof cid, &match, &idx)) != CRM_APPLIED)
        goto out;
    /* The car: another dealer's customer's car is not moved (a finding);
       one of this dealer's other customers' moves to this one. */
    char vowner[CRM_ID_NAME_MAX + 1] = "", vdealer[CRM_ID_NAME_MAX + 1] = "";
    if (v.vin[0] && s_vehicle(&u, v.vin, vowner, vdealer, NULL) != 0) {
        rc = crm_service_failed(svc);
        goto out;
    }
    bool created = !cid[0];
    if (created) {
        redisReply *r = crm_store_cmd(u.store, "INCR crm:ids:customer");
        if (!r) {
            rc = crm_service_failed(svc);
            goto out;
        }
        crm_fmt(cid, sizeof cid, "C%lld", r->integer);
        freeReplyObject(r);
        crm_fmt(u.cid, sizeof u.cid, "%.*s", (int) sizeof u.cid - 1, cid);
    } else {
        crm_customer_load(&rec, u.cust);
    }
    const char *old_dealer = created ? NULL : s_cust_field(&u, "dealer_id");
    const char *old_consultant = created ? NULL : s_cust_field(&u, "consultant_id");

    /* The consultant, when the dealer names a registered one. */
    const char *consultant = NULL;
    if (b->consultant_id && *b->consultant_id) {
        redisReply *h = crm_store_cmd(u.store, "HGET crm:dealer:%s:staff:%s state", u.dealer,
                                      crm_id_valid(CRM_ID_NAME, b->consultant_id) ? b->consultant_id : "-");
        if (!h) {
            rc = crm_service_failed(svc);
            goto out;
        }
        if (h->type == REDIS_REPLY_STRING && !strcmp(h->str, "active"))
            consultant = b->consultant_id;
        else
            crm_issue_add(is, CRM_SEV_WARNING, "consultant_id", "unknown",
                          "not an active staff member of the dealer; the customer keeps its consultant");
        freeReplyObject(h);
    }

    /* The record: merged by the rules intake uses. */
    char channel[CRM_ID_NAME_MAX + 16];
    crm_fmt(channel, sizeof channel, "dealer:%s", u.dealer);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_customer_recorded);
    crm_merge_t how = {"record", u.record, channel, u.nows, created};
    if (crm_customer_merge(tx, cid, &rec, &f, &how, &ev.body.customer_recorded.fields) < 0) {
        crm_msg_clear(&ev);
        rc = crm_req_fail(req, "service", "unavailable", "out of memory; send again");
        goto out;
    }
    /* A match key that names another customer keeps naming it: a dealer's
       file never takes a customer's ID number or mobile away. */
    unsigned keep = 0;
    if (f.indexable_id && idx.id[0] && strcmp(idx.id, cid)) {
        keep |= CRM_IDX_KEEP_ID;
        crm_issue_add(is, CRM_SEV_WARNING, "id_number", "shared",
                      "the ID number is on file for customer %s, which keeps it as its match key", idx.id);
    }
    if (f.indexable_mobile && idx.mobile[0] && strcmp(idx.mobile, cid)) {
        keep |= CRM_IDX_KEEP_MOBILE;
        crm_issue_add(is, CRM_SEV_WARNING, "mobile", "shared",
                      "the mobile is on file for customer %s, which keeps it as its match key", idx.mobile);
    }
    crm_customer_index(tx, cid, &f, keep);
    /* What the file gave that no rule could read stays in the history as
       received (the record's own fields keep theirs in the merge's entry). */
    char hkey[80];
    crm_fmt(hkey, sizeof hkey, CRM_KEY_CUST_FMT ":history", cid);
    const char *raw[20] = {"XADD", hkey, "*", "record", u.record, "channel", channel, "ts", u.nows};
    int nr = 9;
    const char *given[] = {b->plate_date, b->sale_date, b->first_service_date, b->expected_purchase_date,
                           b->transmission, b->grade};
    const char *kept[] = {v.plate_date, v.sale_date, v.first_service_date, epd, v.transmission, grade};
    const char *names[] = {"plate_date.raw", "sale_date.raw", "first_service_date.raw", "expected_purchase_date.raw",
                           "transmission.raw", "grade.raw"};
    for (int i = 0; i < 6; i++)
        if (given[i] && *given[i] && (!kept[i] || !*kept[i])) {
            raw[nr++] = names[i];
            raw[nr++] = given[i];
        }
    if (nr > 9)
        crm_tx_cmdargv(tx, nr, raw, NULL);
    const char *stage = s_cust_field(&u, "stage");
    const char *new_stage = owner ? "owner" : (!stage ? "prospect" : NULL);
    const char *extra[24];
    int ne = 0;
    s_arg(extra, &ne, "remark", remark);
    s_arg(extra, &ne, "stage", new_stage);
    s_arg(extra, &ne, "grade", grade);
    s_arg(extra, &ne, "expected_purchase_date", epd);
    /* the sale date of part one is the record's too (a file may give it
       without a usable VIN; an unreadable one is still given) */
    char sale_given[64] = "";
    if (!v.sale_date[0] && b->sale_date && *b->sale_date)
        crm_fmt(sale_given, sizeof sale_given, "%s", b->sale_date), crm_utf8_cut(sale_given);
    s_arg(extra, &ne, "sale_date", v.sale_date[0] ? v.sale_date : sale_given[0] ? sale_given : NULL);
    s_arg(extra, &ne, "fleet", b->has.fleet ? (b->fleet ? "1" : "0") : NULL);
    s_arg(extra, &ne, "vip", b->has.vip ? (b->vip ? "1" : "0") : NULL);
    s_arg(extra, &ne, "difficult", b->has.difficult ? (b->difficult ? "1" : "0") : NULL);
    if (ne) {
        const char *argv[2 + 24] = {"HSET"};
        char ckey[64];
        crm_fmt(ckey, sizeof ckey, CRM_KEY_CUST_FMT, cid);
        argv[1] = ckey;
        memcpy(argv + 2, extra, (size_t) ne * sizeof *extra);
        crm_tx_cmdargv(tx, ne + 2, argv, NULL);
    }
    if (!old_dealer)
        s_owner(tx, cid, u.dealer, consultant ? consultant : old_consultant, NULL, NULL, "first_record");
    else if (consultant && (!old_consultant || strcmp(old_consultant, consultant)))
        s_owner(tx, cid, u.dealer, consultant, u.dealer, old_consultant, "customer_file");

    /* The vehicle: another dealer's customer's car stays theirs. */
    if (v.vin[0] && vowner[0] && strcmp(vowner, cid) && strcmp(vdealer, u.dealer)) {
        crm_issue_add(is, CRM_SEV_WARNING, "vin", "other_owner",
                      "the car is on file for another dealer's customer; it stays with them");
        v.vin[0] = 0;
    } else if (v.vin[0] && vowner[0] && strcmp(vowner, cid)) {
        crm_tx_cmd(tx, "SREM " CRM_KEY_CUST_FMT ":vehicles %s", vowner, v.vin); /* sold on within the dealer */
    }
    if (v.vin[0]) {
        char vkey[64];
        crm_fmt(vkey, sizeof vkey, "crm:veh:%s", v.vin);
        const char *argv[40] = {"HSET", vkey, "vin", v.vin, "customer_id", cid, "dealer_id", u.dealer};
        int na = 8;
        char km[24];
        crm_fmt(km, sizeof km, "%lld", (long long) b->first_service_mileage);
        s_arg(argv, &na, "engine_number", engine);
        s_arg(argv, &na, "model", model);
        s_arg(argv, &na, "transmission", v.transmission);
        s_arg(argv, &na, "colour", colour);
        s_arg(argv, &na, "plate", v.plate);
        s_arg(argv, &na, "plate_date", v.plate_date);
        s_arg(argv, &na, "sale_date", v.sale_date);
        s_arg(argv, &na, "first_service_date", v.first_service_date);
        if (b->has.first_service_mileage && b->first_service_mileage >= 0)
            s_arg(argv, &na, "first_service_mileage", km);
        crm_tx_cmdargv(tx, na, argv, NULL);
        crm_tx_cmd(tx, "SADD " CRM_KEY_CUST_FMT ":vehicles %s", cid, v.vin);
        CRM_SET_STR(&ev, customer_recorded, vin, v.vin);
    }

    /* Findings: this file's own (…:findings:dealer); the record's as it
       stands are crm-auditor's (it follows customer.recorded). */
    crm_customer_file_findings(tx, cid, is, n_lead);
    crm_msg_t *a = s_ok(&u, cid, cid);
    CRM_SET_BOOL(a, dealer_reply, created, created);
    for (int i = 0; i < is->n; i++) {
        crm_issue_t one = is->v[i];
        if (one.severity == CRM_SEV_REJECT)
            one.severity = CRM_SEV_ERROR;
        char line[320];
        crm_issue_format(&one, line, sizeof line);
        s_ok_finding(a, line);
        crm_strs_push(&ev.body.customer_recorded.findings, line);
        ev.body.customer_recorded.has.findings = true;
    }
    ev.body.customer_recorded.has.fields = ev.body.customer_recorded.fields.n > 0;
    CRM_SET_STR(&ev, customer_recorded, customer_id, cid);
    CRM_SET_STR(&ev, customer_recorded, dealer_id, u.dealer);
    CRM_SET_STR(&ev, customer_recorded, record_id, u.record);
    CRM_SET_STR(&ev, customer_recorded, channel, channel);
    CRM_SET_BOOL(&ev, customer_recorded, created, created);
    CRM_SET_STR(&ev, customer_recorded, match_key, match);
    s_emit(&u, &ev);
    char rid[80];
    crm_info("customer.recorded", "dealer=%s record=%s customer=%s created=%s match=%s findings=%d", u.dealer,
             crm_log_value(u.record, rid, sizeof rid), cid, created ? "yes" : "no", match ? match : "-", is->n);
    rc = CRM_APPLIED;
out:
    free(remark), free(engine), free(model), free(colour);
    crm_fields_clear(&f);
    crm_fields_clear(&rec);
    free(is);
    s_end(&u);
    return rc;
}

/* ------------------------------------------------------------ follow-ups */

static const char *const s_results[] = {"answered", "no_answer", "visit", "test_drive", "quote",
                                        "order",    "message",   "other", NULL};
#define S_RESULTS "answered, no_answer, visit, test_drive, quote, order, message or other"
#define S_DAY_MS (86400000LL)

static crm_handled_t s_on_followup(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_followup_record_t *b = &crm_req_msg(req)->body.followup_record;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    char *content = NULL, *feedback = NULL, *next = NULL;
    char epd[CRM_NORM_DATE_SZ];
    if (rc != CRM_APPLIED)
        return rc;
    int64_t at = b->has.at ? b->at : u.now;
    if (s_one_of(&u, "result", b->result, s_results, S_RESULTS) != 0 ||
        (b->grade && !s_grade(b->grade) && s_one_of(&u, "grade", b->grade, s_grades, "H, A, B or C") != 0) ||
        s_date(&u, "expected_purchase_date", b->expected_purchase_date, false, epd) < 0 ||
        s_text(&u, "content", b->content, S_TEXT_MAX, false, &content) != 0 ||
        s_text(&u, "feedback", b->feedback, S_TEXT_MAX, false, &feedback) != 0 ||
        s_text(&u, "next_content", b->next_content, S_TEXT_MAX, false, &next) != 0)
        rc = CRM_REFUSE;
    else if (at < 946684800000LL || at > u.now + S_DAY_MS)
        rc = crm_req_fail(req, "at", "invalid", "the contact's time, ms UTC, not in the future");
    else if (next && !b->has.next_at)
        rc = crm_req_fail(req, "next_at", "required", "the time of the next activity, with its content");
    else if (b->has.next_at && (b->next_at < at || b->next_at > at + 400 * S_DAY_MS))
        rc = crm_req_fail(req, "next_at", "invalid", "the next activity comes after the contact, within 400 days");
    if (rc == CRM_APPLIED)
        s_prefetch(&u, b->customer_id, b->consultant_id, "crm:ids:followup");
    if (rc == CRM_APPLIED)
        rc = s_customer(&u, "customer_id", b->customer_id, true);
    if (rc == CRM_APPLIED)
        rc = s_staff(&u, "consultant_id", b->consultant_id, S_STAFF_ROLE_ANY, NULL);
    const char *stage = rc == CRM_APPLIED ? s_cust_field(&u, "stage") : NULL;
    if (rc == CRM_APPLIED && stage && !strcmp(stage, "lost"))
        rc = crm_req_fail(req, "customer_id", "closed", "%s is a lost prospect (the carmaker can reactivate it)", u.cid);
    if (rc == CRM_APPLIED) {
        redisReply *r = u.counter ? NULL : crm_store_cmd(u.store, "INCR crm:ids:followup");
        if (!u.counter && (!r || r->type != REDIS_REPLY_INTEGER)) {
            rc = r ? CRM_REFUSE : crm_service_failed(svc);
            if (r)
                crm_req_fail(req, "service", "failed", "Redis refused a new follow-up number");
            freeReplyObject(r);
        } else {
            char fid[32], ats[24], nexts[24] = "";
            crm_fmt(fid, sizeof fid, "F%lld", u.counter ? u.counter : r->integer);
            freeReplyObject(r);
            crm_fmt(ats, sizeof ats, "%lld", (long long) at);
            if (b->has.next_at)
                crm_fmt(nexts, sizeof nexts, "%lld", (long long) b->next_at);
            const char *argv[40] = {"XADD", NULL, "*", "followup_id", fid, "dealer_id", u.dealer, "record_id", u.record,
                                    "consultant_id", b->consultant_id, "at", ats, "result", b->result};
            char skey[64];
            crm_fmt(skey, sizeof skey, CRM_KEY_CUST_FMT ":followups", u.cid);
            argv[1] = skey;
            int na = 15;
            s_arg(argv, &na, "content", content);
            s_arg(argv, &na, "feedback", feedback);
            s_arg(argv, &na, "grade", s_grade(b->grade));
            s_arg(argv, &na, "expected_purchase_date", epd);
            s_arg(argv, &na, "next_at", nexts);
            s_arg(argv, &na, "next_content", next);
            crm_tx_cmdargv(tx, na, argv, NULL);
            /* The customer's current state of the plan. */
            char ckey[64];
            crm_fmt(ckey, sizeof ckey, CRM_KEY_CUST_FMT, u.cid);
            const char *hs[20] = {"HSET", ckey, "last_followup_ms", ats, "last_followup_id", fid, "last_result", b->result};
            na = 8;
            s_arg(hs, &na, "grade", s_grade(b->grade));
            s_arg(hs, &na, "expected_purchase_date", epd);
            s_arg(hs, &na, "next_at", nexts);
            s_arg(hs, &na, "next_content", next);
            crm_tx_cmdargv(tx, na, hs, NULL);
            if (!b->has.next_at)
                crm_tx_cmd(tx, "HDEL %s next_at next_content", ckey);
            if (!s_cust_field(&u, "consultant_id"))
                s_owner(tx, u.cid, u.dealer, b->consultant_id, u.dealer, NULL, "first_followup");
            crm_msg_t ev;
            crm_msg_init(&ev, CRM_T_followup_recorded);
            CRM_SET_STR(&ev, followup_recorded, customer_id, u.cid);
            CRM_SET_STR(&ev, followup_recorded, consultant_id, b->consultant_id);
            CRM_SET_STR(&ev, followup_recorded, result, b->result);
            CRM_SET_STR(&ev, followup_recorded, content, content);
            CRM_SET_STR(&ev, followup_recorded, feedback, feedback);
            CRM_SET_STR(&ev, followup_recorded, grade, s_grade(b->grade));
            CRM_SET_STR(&ev, followup_recorded, expected_purchase_date, epd[0] ? epd : NULL);
            if (b->has.next_at)
                CRM_SET_I64(&ev, followup_recorded, next_at, b->next_at);
            CRM_SET_STR(&ev, followup_recorded, next_content, next);
            CRM_SET_STR(&ev, followup_recorded, dealer_id, u.dealer);
            CRM_SET_STR(&ev, followup_recorded, record_id, u.record);
            CRM_SET_STR(&ev, followup_recorded, followup_id, fid);
            CRM_SET_I64(&ev, followup_recorded, at, at);
            s_emit(&u, &ev);
            s_ok(&u, fid, u.cid);
            crm_info("followup.recorded", "dealer=%s customer=%s followup=%s result=%s next=%s", u.dealer, u.cid, fid,
                     b->result, b->has.next_at ? "yes" : "no");
        }
    }
    free(content), free(feedback), free(next);
    s_end(&u);
    return rc;
}

/* ------------------------------------------------------------ orders */

/* The order `oid` of this dealer (WATCHed) into *out; -1 failed store. */
static int s_order(s_up_t *u, const char *oid, redisReply **out)
{
    /* The dealer's order number is its own key (any characters): in a
       Redis key only as a digest. */
    crm_order_key(u->dealer, oid, u->okey, sizeof u->okey);
    redisReply *w = crm_store_cmd(u->store, "WATCH %s", u->okey);
    if (!w)
        return -1;
    freeReplyObject(w);
    *out = crm_store_cmd(u->store, "HGETALL %s", u->okey);
    return *out ? 0 : -1;
}

static crm_handled_t s_on_order(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_order_record_t *b = &crm_req_msg(req)->body.order_record;
    static const char *const actions[] = {"placed", "cancelled", NULL};
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    char *oid = NULL, *model = NULL, *reason = NULL;
    char promised[CRM_NORM_DATE_SZ];
    redisReply *o = NULL;
    bool placed = b->action && !strcmp(b->action, "placed");
    if (s_one_of(&u, "action", b->action, actions, "placed or cancelled") != 0 ||
        s_text(&u, "order_id", b->order_id, S_SHORT_MAX, true, &oid) != 0 ||
        s_text(&u, "model", b->model, S_SHORT_MAX, placed, &model) != 0 ||
        s_text(&u, "reason", b->reason, S_TEXT_MAX, false, &reason) != 0 ||
        s_date(&u, "promised_date", b->promised_date, placed, promised) < 0) {
        rc = CRM_REFUSE;
        goto out;
    }
    if (!crm_id_valid(CRM_ID_KEY, oid)) {
        rc = crm_req_fail(req, "order_id", "bad_id", "1 to %d characters, no control characters", CRM_ID_KEY_MAX);
        goto out;
    }
    if (placed && b->has.price && (b->price < 0 || b->price > 100000000)) {
        rc = crm_req_fail(req, "price", "invalid", "yuan, 0 to 100,000,000");
        goto out;
    }
    if (s_order(&u, oid, &o) != 0) {
        rc = crm_service_failed(svc);
        goto out;
    }
    const char *state = crm_reply_field(o, "state");
    const char *ocid = crm_reply_field(o, "customer_id");
    if (placed) {
        if (state) {
            rc = crm_req_fail(req, "order_id", "exists", "order %s is %s already", oid, state);
            goto out;
        }
        if ((rc = s_customer(&u, "customer_id", b->customer_id, true)) != CRM_APPLIED)
            goto out;
        if (b->consultant_id && (rc = s_staff(&u, "consultant_id", b->consultant_id, S_STAFF_ROLE_ANY, NULL)) != CRM_APPLIED)
            goto out;
        const char *was = s_cust_field(&u, "stage");
        if (was && !strcmp(was, "lost")) {
            rc = crm_req_fail(req, "customer_id", "closed", "%s is a lost prospect (the carmaker can reactivate it)", u.cid);
            goto out;
        }
        if (was && !strcmp(was, "lost_pending")) {
            /* an order answers the question the manager was asked */
            crm_tx_cmd(tx, "SREM crm:dealer:%s:lost_pending %s", u.dealer, u.cid);
            crm_tx_cmd(tx, "HDEL " CRM_KEY_CUST_FMT " lost_reason lost_note lost_by lost_requested_ms", u.cid);
        }
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_CUST_FMT " open_orders 1", u.cid);
        char price[24] = "";
        if (b->has.price)
            crm_fmt(price, sizeof price, "%lld", (long long) b->price);
        crm_tx_cmd(tx, "HSET %s order_id %s dealer_id %s customer_id %s model %s price %s promised_date %s "
                       "first_promised_date %s state placed consultant_id %s placed_ms %s delays 0 record_id %s",
                   u.okey, oid, u.dealer, u.cid, model, price, promised, promised,
                   b->consultant_id ? b->consultant_id : "", u.nows, u.record);
        /* the member is the key after "crm:order:" */
        crm_tx_cmd(tx, "SADD " CRM_KEY_CUST_FMT ":orders %s", u.cid, u.okey + 10);
        const char *stage = s_cust_field(&u, "stage");
        if (!stage || strcmp(stage, "owner"))
            crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage customer", u.cid);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_order_placed);
        CRM_SET_STR(&ev, order_placed, order_id, oid);
        CRM_SET_STR(&ev, order_placed, dealer_id, u.dealer);
        CRM_SET_STR(&ev, order_placed, customer_id, u.cid);
        CRM_SET_STR(&ev, order_placed, model, model);
        if (b->has.price)
            CRM_SET_I64(&ev, order_placed, price, b->price);
        CRM_SET_STR(&ev, order_placed, promised_date, promised);
        CRM_SET_STR(&ev, order_placed, consultant_id, b->consultant_id);
        s_emit(&u, &ev);
    } else {
        if (!state) {
            rc = crm_req_fail(req, "order_id", "unknown", "no order %s of dealer %s", oid, u.dealer);
            goto out;
        }
        if (strcmp(state, "placed")) {
            rc = crm_req_fail(req, "order_id", "closed", "order %s is %s", oid, state);
            goto out;
        }
        if ((rc = s_customer(&u, "customer_id", ocid, false)) != CRM_APPLIED)
            goto out;
        crm_tx_cmd(tx, "HSET %s state cancelled cancelled_ms %s reason %s", u.okey, u.nows,
                   reason ? reason : "");
        /* back to a prospect when it was the customer's last open order */
        const char *stage = s_cust_field(&u, "stage");
        long long open = atoll(crm_reply_field_or(u.cust, "open_orders", "1"));
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_CUST_FMT " open_orders -1", u.cid);
        if (stage && !strcmp(stage, "customer") && open <= 1)
            crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage prospect", u.cid);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_order_cancelled);
        CRM_SET_STR(&ev, order_cancelled, order_id, oid);
        CRM_SET_STR(&ev, order_cancelled, dealer_id, u.dealer);
        CRM_SET_STR(&ev, order_cancelled, customer_id, u.cid);
        CRM_SET_STR(&ev, order_cancelled, reason, reason);
        s_emit(&u, &ev);
    }
    s_ok(&u, oid, u.cid);
    crm_info("order.recorded", "dealer=%s customer=%s action=%s", u.dealer, u.cid, b->action);
out:
    free(oid), free(model), free(reason);
    freeReplyObject(o);
    s_end(&u);
    return rc;
}

static crm_handled_t s_on_delivery(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_delivery_record_t *b = &crm_req_msg(req)->body.delivery_record;
    static const char *const actions[] = {"delivered", "delayed", NULL};
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    char *oid = NULL, *reason = NULL;
    char date[CRM_NORM_DATE_SZ], promised[CRM_NORM_DATE_SZ], vin[CRM_NORM_VIN_SZ] = "";
    redisReply *o = NULL;
    bool delivered = b->action && !strcmp(b->action, "delivered");
    if (s_one_of(&u, "action", b->action, actions, "delivered or delayed") != 0 ||
        s_text(&u, "order_id", b->order_id, S_SHORT_MAX, true, &oid) != 0 ||
        s_text(&u, "reason", b->reason, S_TEXT_MAX, !delivered, &reason) != 0 ||
        s_date(&u, "date", b->date, delivered, date) < 0 ||
        s_date(&u, "promised_date", b->promised_date, !delivered, promised) < 0) {
        rc = CRM_REFUSE;
        goto out;
    }
    if (delivered) {
        crm_norm_code_t c = b->vin ? crm_norm_vin(b->vin, vin) : CRM_NORM_EMPTY;
        if (c != CRM_NORM_OK && c != CRM_NORM_BAD_CHECK) {
            rc = crm_req_fail(req, "vin", b->vin ? "invalid" : "required", "the car's VIN, 17 characters");
            goto out;
        }
    }
    if (!crm_id_valid(CRM_ID_KEY, oid)) {
        rc = crm_req_fail(req, "order_id", "bad_id", "1 to %d characters, no control characters", CRM_ID_KEY_MAX);
        goto out;
    }
    if (s_order(&u, oid, &o) != 0) {
        rc = crm_service_failed(svc);
        goto out;
    }
    const char *state = crm_reply_field(o, "state");
    if (!state) {
        rc = crm_req_fail(req, "order_id", "unknown", "no order %s of dealer %s (order.record placed first)", oid, u.dealer);
        goto out;
    }
    if (strcmp(state, "placed")) {
        rc = crm_req_fail(req, "order_id", "closed", "order %s is %s", oid, state);
        goto out;
    }
    if ((rc = s_customer(&u, "order_id", crm_reply_field(o, "customer_id"), false)) != CRM_APPLIED)
        goto out;
    const char *old = crm_reply_field(o, "promised_date");
    const char *first = crm_reply_field_or(o, "first_promised_date", old ? old : "");
    crm_msg_t ev;
    char vowner[CRM_ID_NAME_MAX + 1], vdealer[CRM_ID_NAME_MAX + 1];
    if (delivered && s_vehicle(&u, vin, vowner, vdealer, NULL) != 0) {
        rc = crm_service_failed(svc);
        goto out;
    }
    if (delivered && vowner[0] && strcmp(vowner, u.cid) && strcmp(vdealer, u.dealer)) {
        rc = s_not_yours(&u, "vin", vin);
        goto out;
    }
    if (delivered) {
        bool late = first && *first && strcmp(date, first) > 0;
        if (vowner[0] && strcmp(vowner, u.cid))
            crm_tx_cmd(tx, "SREM " CRM_KEY_CUST_FMT ":vehicles %s", vowner, vin);
        crm_tx_cmd(tx, "HSET %s state delivered vin %s delivered_date %s", u.okey, vin, date);
        crm_tx_cmd(tx, "HSET crm:veh:%s vin %s customer_id %s dealer_id %s order_id %s delivered_date %s", vin, vin, u.cid,
                   u.dealer, oid, date);
        const char *model = crm_reply_field(o, "model");
        if (model && *model)
            crm_tx_cmd(tx, "HSET crm:veh:%s model %s", vin, model);
        crm_tx_cmd(tx, "SADD " CRM_KEY_CUST_FMT ":vehicles %s", u.cid, vin);
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage owner", u.cid);
        crm_tx_cmd(tx, "HINCRBY " CRM_KEY_CUST_FMT " open_orders -1", u.cid);
        crm_msg_init(&ev, CRM_T_vehicle_delivered);
        CRM_SET_STR(&ev, vehicle_delivered, order_id, oid);
        CRM_SET_STR(&ev, vehicle_delivered, dealer_id, u.dealer);
        CRM_SET_STR(&ev, vehicle_delivered, customer_id, u.cid);
        CRM_SET_STR(&ev, vehicle_delivered, vin, vin);
        CRM_SET_STR(&ev, vehicle_delivered, date, date);
        CRM_SET_BOOL(&ev, vehicle_delivered, late, late);
    } else {
        crm_tx_cmd(tx, "HSET %s promised_date %s delay_reason %s delayed_ms %s", u.okey, promised,
                   reason, u.nows);
        crm_tx_cmd(tx, "HINCRBY %s delays 1", u.okey);
        crm_msg_init(&ev, CRM_T_delivery_delayed);
        CRM_SET_STR(&ev, delivery_delayed, order_id, oid);
        CRM_SET_STR(&ev, delivery_delayed, dealer_id, u.dealer);
        CRM_SET_STR(&ev, delivery_delayed, customer_id, u.cid);
        CRM_SET_STR(&ev, delivery_delayed, promised_date, promised);
        CRM_SET_STR(&ev, delivery_delayed, old_promised_date, old);
        CRM_SET_STR(&ev, delivery_delayed, reason, reason);
    }
    s_emit(&u, &ev);
    s_ok(&u, oid, u.cid);
    crm_info("delivery.recorded", "dealer=%s customer=%s action=%s", u.dealer, u.cid, b->action);
out:
    free(oid), free(reason);
    freeReplyObject(o);
    s_end(&u);
    return rc;
}

/* ------------------------------------------------------------ service */

static crm_handled_t s_on_service(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_service_record_t *b = &crm_req_msg(req)->body.service_record;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    char *wo = NULL, *work = NULL;
    char date[CRM_NORM_DATE_SZ], vin[CRM_NORM_VIN_SZ] = "";
    if (s_text(&u, "work_order", b->work_order, S_SHORT_MAX, true, &wo) != 0 ||
        s_text(&u, "work", b->work, S_TEXT_MAX, false, &work) != 0 || s_date(&u, "date", b->date, true, date) < 0) {
        rc = CRM_REFUSE;
        goto out;
    }
    if (b->has.mileage && (b->mileage < 0 || b->mileage > 10000000)) {
        rc = crm_req_fail(req, "mileage", "invalid", "0 to 10,000,000 km");
        goto out;
    }
    if (b->has.amount_fen && (b->amount_fen < 0 || b->amount_fen > 100000000000LL)) {
        rc = crm_req_fail(req, "amount_fen", "invalid", "fen, not negative");
        goto out;
    }
    if (b->vin && *b->vin) {
        crm_norm_code_t c = crm_norm_vin(b->vin, vin);
        if (c != CRM_NORM_OK && c != CRM_NORM_BAD_CHECK) {
            rc = crm_req_fail(req, "vin", "invalid", "a VIN of 17 characters");
            goto out;
        }
    }
    /* The car (WATCHed): it names the customer when none is given, and
       must be that customer's when both are. */
    char vowner[CRM_ID_NAME_MAX + 1] = "", vdealer[CRM_ID_NAME_MAX + 1] = "";
    redisReply *veh = NULL;
    if (vin[0] && s_vehicle(&u, vin, vowner, vdealer, &veh) != 0) {
        rc = crm_service_failed(svc);
        goto out;
    }
    const char *cid = b->customer_id && *b->customer_id ? b->customer_id : vowner[0] ? vowner : NULL;
    if (!cid)
        rc = vin[0] ? crm_req_fail(req, "vin", "unknown",
                                   "no car %s on file (send its customer file first, or the customer_id)", vin)
                    : crm_req_fail(req, "customer_id", "required", "the customer_id or a vin on file");
    else if (vowner[0] && strcmp(vowner, cid))
        rc = crm_req_fail(req, "vin", "invalid", "%s is another customer's car, not %s's", vin, cid);
    else
        rc = s_customer(&u, b->customer_id && *b->customer_id ? "customer_id" : "vin", cid, true);
    const char *last = crm_reply_field(veh, "last_service_date");
    bool newer = !last || strcmp(date, last) >= 0; /* an older visit imported late moves nothing */
    bool on_file = vowner[0] != 0;
    freeReplyObject(veh);
    if (rc != CRM_APPLIED)
        goto out;
    char km[24] = "", amt[24] = "";
    if (b->has.mileage)
        crm_fmt(km, sizeof km, "%lld", (long long) b->mileage);
    if (b->has.amount_fen)
        crm_fmt(amt, sizeof amt, "%lld", (long long) b->amount_fen);
    crm_tx_cmd(tx, "XADD " CRM_KEY_CUST_FMT ":service * work_order %s dealer_id %s record_id %s vin %s date %s mileage %s "
                   "work %s amount_fen %s",
               u.cid, wo, u.dealer, u.record, vin, date, km, work ? work : "", amt);
    if (vin[0] && !on_file) {
        /* a car first known by its work order */
        crm_tx_cmd(tx, "HSET crm:veh:%s vin %s customer_id %s dealer_id %s", vin, vin, u.cid, u.dealer);
        crm_tx_cmd(tx, "SADD " CRM_KEY_CUST_FMT ":vehicles %s", u.cid, vin);
    }
    if (vin[0] && newer) {
        crm_tx_cmd(tx, "HSET crm:veh:%s last_service_date %s", vin, date);
        if (km[0])
            crm_tx_cmd(tx, "HSET crm:veh:%s last_service_mileage %s", vin, km);
    }
    const char *clast = s_cust_field(&u, "last_service_date");
    if (!clast || strcmp(date, clast) >= 0)
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " last_service_date %s", u.cid, date);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_service_recorded);
    CRM_SET_STR(&ev, service_recorded, customer_id, u.cid);
    CRM_SET_STR(&ev, service_recorded, dealer_id, u.dealer);
    CRM_SET_STR(&ev, service_recorded, work_order, wo);
    CRM_SET_STR(&ev, service_recorded, vin, vin[0] ? vin : NULL);
    CRM_SET_STR(&ev, service_recorded, date, date);
    if (b->has.mileage)
        CRM_SET_I64(&ev, service_recorded, mileage, b->mileage);
    CRM_SET_STR(&ev, service_recorded, work, work);
    if (b->has.amount_fen)
        CRM_SET_I64(&ev, service_recorded, amount_fen, b->amount_fen);
    s_emit(&u, &ev);
    s_ok(&u, wo, u.cid);
    crm_info("service.recorded", "dealer=%s customer=%s", u.dealer, u.cid);
out:
    free(wo), free(work);
    s_end(&u);
    return rc;
}

/* ------------------------------------------------------------ lost prospects */

static const char *const s_lost_reasons[] = {"other_brand", "other_dealer", "no_budget", "unreachable",
                                             "postponed",   "no_interest",  "other",     NULL};
#define S_LOST_REASONS "other_brand, other_dealer, no_budget, unreachable, postponed, no_interest or other"

static crm_handled_t s_on_lose(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_prospect_lose_t *b = &crm_req_msg(req)->body.prospect_lose;
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    char *note = NULL;
    if (s_one_of(&u, "reason", b->reason, s_lost_reasons, S_LOST_REASONS) != 0 ||
        s_text(&u, "note", b->note, S_TEXT_MAX, !strcmp(b->reason, "other"), &note) != 0)
        rc = CRM_REFUSE;
    if (rc == CRM_APPLIED)
        rc = s_customer(&u, "customer_id", b->customer_id, true);
    if (rc == CRM_APPLIED)
        rc = s_staff(&u, "consultant_id", b->consultant_id, S_STAFF_ROLE_ANY, NULL);
    const char *stage = rc == CRM_APPLIED ? s_cust_field(&u, "stage") : NULL;
    if (rc == CRM_APPLIED && stage && strcmp(stage, "prospect"))
        rc = crm_req_fail(req, "customer_id", "closed", "%s is %s, not a prospect", u.cid,
                          !strcmp(stage, "lost_pending") ? "waiting for a manager's decision already" : stage);
    if (rc == CRM_APPLIED) {
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage lost_pending lost_reason %s lost_note %s lost_by %s "
                       "lost_requested_ms %s",
                   u.cid, b->reason, note ? note : "", b->consultant_id, u.nows);
        crm_tx_cmd(tx, "SADD crm:dealer:%s:lost_pending %s", u.dealer, u.cid);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_prospect_lost_requested);
        CRM_SET_STR(&ev, prospect_lost_requested, customer_id, u.cid);
        CRM_SET_STR(&ev, prospect_lost_requested, dealer_id, u.dealer);
        CRM_SET_STR(&ev, prospect_lost_requested, consultant_id, b->consultant_id);
        CRM_SET_STR(&ev, prospect_lost_requested, reason, b->reason);
        CRM_SET_STR(&ev, prospect_lost_requested, note, note);
        s_emit(&u, &ev);
        s_ok(&u, u.cid, u.cid);
        crm_info("prospect.lost_requested", "dealer=%s customer=%s reason=%s", u.dealer, u.cid, b->reason);
    }
    free(note);
    s_end(&u);
    return rc;
}

static crm_handled_t s_on_decide(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_lost_decide_t *b = &crm_req_msg(req)->body.lost_decide;
    static const char *const decisions[] = {"approved", "refused", NULL};
    s_up_t u;
    crm_handled_t rc = s_begin(svc, req, tx, &u);
    if (rc != CRM_APPLIED)
        return rc;
    char *note = NULL;
    if (s_one_of(&u, "decision", b->decision, decisions, "approved or refused") != 0 ||
        s_text(&u, "note", b->note, S_TEXT_MAX, false, &note) != 0)
        rc = CRM_REFUSE;
    if (rc == CRM_APPLIED)
        rc = s_customer(&u, "customer_id", b->customer_id, false);
    if (rc == CRM_APPLIED)
        rc = s_staff(&u, "manager_id", b->manager_id, S_MANAGER | S_DIRECTOR, NULL);
    const char *stage = rc == CRM_APPLIED ? s_cust_field(&u, "stage") : NULL;
    if (rc == CRM_APPLIED && (!stage || strcmp(stage, "lost_pending")))
        rc = crm_req_fail(req, "customer_id", "closed", "%s is not waiting for a decision (%s)", u.cid,
                          stage ? stage : "prospect");
    if (rc == CRM_APPLIED) {
        bool ok = !strcmp(b->decision, "approved");
        crm_tx_cmd(tx, "SREM crm:dealer:%s:lost_pending %s", u.dealer, u.cid);
        crm_msg_t ev;
        if (ok) {
            crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage lost lost_ms %s lost_approved_by %s", u.cid, u.nows,
                       b->manager_id);
            crm_tx_cmd(tx, "SADD crm:dealer:%s:lost %s", u.dealer, u.cid);
            crm_msg_init(&ev, CRM_T_prospect_lost);
            CRM_SET_STR(&ev, prospect_lost, customer_id, u.cid);
            CRM_SET_STR(&ev, prospect_lost, dealer_id, u.dealer);
            CRM_SET_STR(&ev, prospect_lost, consultant_id, s_cust_field(&u, "lost_by"));
            CRM_SET_STR(&ev, prospect_lost, manager_id, b->manager_id);
            CRM_SET_STR(&ev, prospect_lost, reason, crm_reply_field_or(u.cust, "lost_reason", "other"));
        } else {
            crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage prospect lost_refused_by %s lost_refused_ms %s", u.cid,
                       b->manager_id, u.nows);
            crm_tx_cmd(tx, "HDEL " CRM_KEY_CUST_FMT " lost_reason lost_note lost_by lost_requested_ms", u.cid);
            crm_msg_init(&ev, CRM_T_prospect_lost_refused);
            CRM_SET_STR(&ev, prospect_lost_refused, customer_id, u.cid);
            CRM_SET_STR(&ev, prospect_lost_refused, dealer_id, u.dealer);
            CRM_SET_STR(&ev, prospect_lost_refused, manager_id, b->manager_id);
            CRM_SET_STR(&ev, prospect_lost_refused, note, note);
        }
        s_emit(&u, &ev);
        s_ok(&u, u.cid, u.cid);
        crm_info("prospect.lost_decided", "dealer=%s customer=%s decision=%s", u.dealer, u.cid, b->decision);
    }
    free(note);
    s_end(&u);
    return rc;
}

/* prospect.reactivate (control endpoint only): the carmaker gives a lost
   prospect to a dealer, which gets it on its own stream. */
static crm_handled_t s_on_reactivate(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_prospect_reactivate_t *b = &crm_req_msg(req)->body.prospect_reactivate;
    s_up_t u;
    memset(&u, 0, sizeof u);
    u.svc = svc, u.req = req, u.tx = tx, u.store = crm_service_store(svc);
    u.now = crm_now_ms();
    crm_fmt(u.nows, sizeof u.nows, "%lld", (long long) u.now);
    if (!crm_id_valid(CRM_ID_NAME, b->dealer_id))
        return crm_req_fail(req, "dealer_id", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    crm_fmt(u.dealer, sizeof u.dealer, "%s", b->dealer_id);
    char *reason = NULL;
    if (s_text(&u, "reason", b->reason, S_TEXT_MAX, false, &reason) != 0)
        return CRM_REFUSE;
    redisReply *d = crm_store_cmd(u.store, "HGET " CRM_KEY_DEALER_FMT " state", u.dealer);
    crm_handled_t rc = CRM_APPLIED;
    if (!d)
        rc = crm_service_failed(svc);
    else if (d->type != REDIS_REPLY_STRING)
        rc = crm_req_fail(req, "dealer_id", "unknown", "no dealer %s", u.dealer);
    else if (strcmp(d->str, "active"))
        rc = crm_req_fail(req, "dealer_id", "closed", "dealer %s is %s", u.dealer, d->str);
    freeReplyObject(d);
    /* Read as the carmaker: any dealer's customer. */
    if (rc == CRM_APPLIED)
        rc = s_read_customer(&u, "customer_id", b->customer_id);
    const char *stage = rc == CRM_APPLIED ? s_cust_field(&u, "stage") : NULL;
    if (rc == CRM_APPLIED && (!stage || strcmp(stage, "lost")))
        rc = crm_req_fail(req, "customer_id", "closed", "%s is not a lost prospect (%s)", u.cid, stage ? stage : "prospect");
    if (rc == CRM_APPLIED) {
        const char *old = s_cust_field(&u, "dealer_id");
        crm_tx_cmd(tx, "HSET " CRM_KEY_CUST_FMT " stage prospect reactivated_ms %s", u.cid, u.nows);
        crm_tx_cmd(tx, "HDEL " CRM_KEY_CUST_FMT " lost_reason lost_note lost_by lost_requested_ms lost_ms lost_approved_by",
                   u.cid);
        if (old) {
            crm_tx_cmd(tx, "SREM crm:dealer:%s:lost %s", old, u.cid);
            crm_tx_cmd(tx, "SREM crm:dealer:%s:lost_pending %s", old, u.cid);
        }
        s_owner(tx, u.cid, u.dealer, NULL, old, s_cust_field(&u, "consultant_id"), "reactivated");
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_prospect_reactivated);
        CRM_SET_STR(&ev, prospect_reactivated, customer_id, u.cid);
        CRM_SET_STR(&ev, prospect_reactivated, dealer_id, u.dealer);
        CRM_SET_STR(&ev, prospect_reactivated, old_dealer_id, old);
        CRM_SET_STR(&ev, prospect_reactivated, reason, reason);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        /* On the dealer's own stream, numbered with its dispatches. */
        crm_msg_init(&ev, CRM_T_dealer_assigned);
        crm_fmt(ev.stream, sizeof ev.stream, "dealer.%s", u.dealer);
        CRM_SET_STR(&ev, dealer_assigned, customer_id, u.cid);
        CRM_SET_STR(&ev, dealer_assigned, dealer_id, u.dealer);
        CRM_SET_STR(&ev, dealer_assigned, customer_name, s_cust_field(&u, "name"));
        const char *mobile = s_cust_field(&u, "mobile");
        char masked[32];
        if (mobile && dispatch_config.mask_contacts)
            mobile = crm_mask_phone(mobile, masked, sizeof masked);
        CRM_SET_STR(&ev, dealer_assigned, mobile, mobile);
        const char *phone = s_cust_field(&u, "usual_phone");
        if (!phone)
            phone = s_cust_field(&u, "home_phone");
        if (!phone)
            phone = s_cust_field(&u, "office_phone");
        if (phone && !dispatch_config.mask_contacts)
            CRM_SET_STR(&ev, dealer_assigned, phone, phone);
        CRM_SET_STR(&ev, dealer_assigned, grade, s_cust_field(&u, "grade"));
        CRM_SET_STR(&ev, dealer_assigned, reason, "reactivated");
        CRM_SET_STR(&ev, dealer_assigned, reason_text,
                    "a prospect another dealer gave up, reactivated by the carmaker: contact it and follow up");
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        s_ok(&u, u.cid, u.cid);
        crm_info("prospect.reactivated", "customer=%s dealer=%s old_dealer=%s", u.cid, u.dealer, old ? old : "-");
    }
    free(reason);
    s_end(&u);
    return rc;
}

/* ------------------------------------------------------------ the tables */

#define S_ROWS(KEY, NAMED)                                                                                \
    {"customer.file", s_on_file, CRM_REQ_WRITE, KEY, "customer.file", UPLINK_KEEP_OPT, NULL, NAMED},      \
        {"customer.assign", s_on_assign, CRM_REQ_WRITE, KEY, "customer.assign", UPLINK_KEEP_OPT, NULL, NAMED}, \
        {"followup.record", s_on_followup, CRM_REQ_WRITE, KEY, "followup.record", UPLINK_KEEP_OPT, NULL, NAMED}, \
        {"order.record", s_on_order, CRM_REQ_WRITE, KEY, "order.record", UPLINK_KEEP_OPT, NULL, NAMED},   \
        {"delivery.record", s_on_delivery, CRM_REQ_WRITE, KEY, "delivery.record", UPLINK_KEEP_OPT, NULL, NAMED}, \
        {"service.record", s_on_service, CRM_REQ_WRITE, KEY, "service.record", UPLINK_KEEP_OPT, NULL, NAMED}, \
        {"prospect.lose", s_on_lose, CRM_REQ_WRITE, KEY, "prospect.lose", UPLINK_KEEP_OPT, NULL, NAMED},  \
        {"lost.decide", s_on_decide, CRM_REQ_WRITE, KEY, "lost.decide", UPLINK_KEEP_OPT, NULL, NAMED},    \
        {"staff.add", s_on_staff_add, CRM_REQ_WRITE, KEY, "staff.add", UPLINK_KEEP_OPT, NULL, NAMED},     \
        {"staff.update", s_on_staff_update, CRM_REQ_WRITE, KEY, "staff.update", UPLINK_KEEP_OPT, NULL, NAMED}, \
        {"staff.leave", s_on_staff_leave, CRM_REQ_WRITE, KEY, "staff.leave", UPLINK_KEEP_OPT, NULL, NAMED},    \
        {"staff.away", s_on_staff_away, CRM_REQ_WRITE, KEY, "staff.away", UPLINK_KEEP_OPT, NULL, NAMED},     \
        {"consultant.reassign", s_on_reassign, CRM_REQ_WRITE, KEY, "consultant.reassign", UPLINK_KEEP_OPT, NULL, \
         NAMED},                                                                                          \
        {"owner.decide", s_on_owner_decide, CRM_REQ_WRITE, KEY, "owner.decide", UPLINK_KEEP_OPT, NULL, NAMED}

const crm_request_t uplink_gateway_rows[] = {
    S_ROWS(s_key_gateway, false),
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

const crm_request_t uplink_control_rows[] = {
    S_ROWS(s_key_control, true),
    {"prospect.reactivate", s_on_reactivate, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};
