/*  crm_request: requests as data (see "requests" in crm_service.h).
 *
 *  One endpoint is one ROUTER socket on the service's loop. What is waiting
 *  on it is taken together, up to S_BATCH requests a wake-up, so timers and
 *  the bus still run between two batches. Each request is parsed, decoded
 *  and checked here; requests that fail those checks are answered at once
 *  and kept in crm:rejects. The rest run in arrival order: a read at once,
 *  a write in its own transaction, consecutive requests of a row with a
 *  batch handler in one transaction together.
 *
 *  A write's answer is kept under crm:ans:{<service>}:<digest of service,
 *  peer, keyspace and key>, WATCHed before the handler runs and SET in the
 *  same MULTI/EXEC as the handler's effects: a resend finds it and gets it
 *  back, and two instances that take the same request at once cannot both
 *  commit (the second's EXEC fails, it reads again and finds the answer).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crm_str.h"
#include "crm_service.h"
#include "crm_service_private.h"

#define S_BATCH 64
#define S_ATTEMPTS 3
#define S_SINGLES 8 /* requests of rows without a batch handler per wake-up */
#define S_KEY_MAX (CRM_ID_KEY_MAX + 64)

/* A refused request's frame to keep in crm:rejects once the store is free
   (it was refused while a commit was under way). */
typedef struct s_later_t {
    struct s_later_t *next;
    char *field, *reason, *peer, *type;
    void *frame;
    size_t len;
} s_later_t;

struct crm_endpoint_t {
    crm_service_t *svc;
    const crm_endpoint_def_t *def;
    crm_curve_t *curve;
    zsock_t *sock;
    char bind[256];
    /* Two batches of S_BATCH, reused: the one running and the one taken
       off the socket (decoded, keyed, prepared) while the first commits. */
    crm_req_t *bufs[2];
    int cur;
    int nahead;       /* requests taken ahead into bufs[!cur] */
    bool ahead_ok;    /* this round may take ahead */
    bool in_commit;   /* the store is busy: refusals are kept later */
    s_later_t *later; /* those, oldest first */
    s_later_t **later_tail;
    int64_t *keep_ms; /* per row of def->requests: how long its answers are kept */
};

struct crm_req_t {
    crm_endpoint_t *ep;
    const crm_request_t *row;
    zframe_t *rid;
    bool delim; /* a REQ client: an empty frame between routing id and body */
    zframe_t *body;
    crm_msg_t msg;
    char peer[CRM_ID_NAME_MAX + 1];
    char peer_key[48];
    char key[S_KEY_MAX];
    char akey[CRM_ID_DIGEST_SZ + 48];
    crm_msg_t answer;
    bool has_answer;
    crm_handled_t outcome;
    bool kept;    /* answered from the kept answer */
    int dup_of;   /* an earlier request of the batch with the same key */
    bool detached;
    bool refused_kept; /* its frame is in crm:rejects */
    char why[600];     /* "field|code|text" of its first error: the reason kept */
    msgpack_sbuffer out;
    void *data; /* the endpoint's prepare's */
    void (*data_free)(void *data);
};

struct crm_route_t {
    crm_endpoint_t *ep;
    zframe_t *rid;
    bool delim;
    char corr[CRM_ID_MAX];
};

/* ------------------------------------------------------------ accessors */

const crm_msg_t *crm_req_msg(const crm_req_t *req) { return &req->msg; }
const char *crm_req_peer(const crm_req_t *req) { return req->peer[0] ? req->peer : NULL; }
const char *crm_req_key(const crm_req_t *req) { return req->key; }
const char *crm_req_peer_key(const crm_req_t *req) { return req->peer_key[0] ? req->peer_key : NULL; }

void crm_req_set_data(crm_req_t *req, void *data, void (*free_fn)(void *data))
{
    if (req->data && req->data_free)
        req->data_free(req->data);
    req->data = data;
    req->data_free = free_fn;
}

void *crm_req_data(const crm_req_t *req) { return req->data; }

const void *crm_req_frame(const crm_req_t *req, size_t *len)
{
    if (len)
        *len = req->body ? zframe_size(req->body) : 0;
    return req->body ? zframe_data(req->body) : NULL;
}

crm_msg_t *crm_req_answer(crm_req_t *req, crm_type_t type)
{
    crm_msg_clear(&req->answer);
    crm_msg_init(&req->answer, type);
    req->has_answer = true;
    return &req->answer;
}

crm_msg_t *crm_req_answer_msg(crm_req_t *req) { return req->has_answer ? &req->answer : NULL; }

crm_msg_t *crm_req_ok(crm_req_t *req, const char *id)
{
    crm_msg_t *a = crm_req_answer(req, CRM_T_reply);
    CRM_SET_BOOL(a, reply, ok, true);
    if (id)
        CRM_SET_STR(a, reply, id, id);
    return a;
}

/* The default error answer: a reply naming the field. */
static void s_reply_error(crm_req_t *req, const char *field, const char *code, const char *text)
{
    crm_msg_t *a = crm_req_answer(req, CRM_T_reply);
    CRM_SET_BOOL(a, reply, ok, false);
    CRM_SET_STR(a, reply, code, code);
    char line[600];
    crm_fmt(line, sizeof line, "%s: %s", field, text);
    CRM_SET_STR(a, reply, message, line);
    crm_fmt(line, sizeof line, "%s|%s|%s", field, code, text);
    crm_strs_push(&a->body.reply.errors, line);
    a->body.reply.has.errors = true;
}

static void s_error(crm_req_t *req, const char *field, const char *code, const char *text)
{
    crm_error_fn fn = req->ep->def->error ? req->ep->def->error : s_reply_error;
    if (!req->why[0])
        crm_fmt(req->why, sizeof req->why, "%s|%s|%s", field, code, text);
    fn(req, field, code, text);
}

crm_handled_t crm_req_fail(crm_req_t *req, const char *field, const char *code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    crm_vfmt(text, sizeof text, fmt, ap);
    va_end(ap);
    s_error(req, field, code, text);
    req->outcome = CRM_REFUSE;
    return CRM_REFUSE;
}

crm_handled_t crm_req_unavailable(crm_req_t *req)
{
    s_error(req, "service", "unavailable", "not stored (Redis is unavailable); send it again with the same id");
    req->outcome = CRM_RETRY;
    return CRM_RETRY;
}

/* ------------------------------------------------------------- sending */

static int s_send_frames(crm_endpoint_t *ep, zframe_t *rid, bool delim, const void *data, size_t len)
{
    void *h = zsock_resolve(ep->sock);
    if (zmq_send(h, zframe_data(rid), zframe_size(rid), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? 1 : -1;
    if (delim && zmq_send(h, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send(h, data, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

/* Encodes an answer that travels point to point: no stream, no number,
   corr = the request it answers. */
static int s_encode(crm_service_t *svc, crm_msg_t *a, const char *corr, msgpack_sbuffer *out)
{
    a->stream[0] = 0;
    a->seq = 0;
    if (!a->id[0])
        crm_new_id(a->id, sizeof a->id);
    if (!a->ts)
        a->ts = crm_now_ms();
    crm_fmt(a->producer, sizeof a->producer, "%s", crm_service_name(svc));
    crm_fmt(a->corr, sizeof a->corr, "%s", corr ? corr : "");
    out->size = 0;
    return crm_msg_encode(a, out, NULL);
}

/* The id of a kept answer comes from its key: a resend gets the same id
   back without the id being kept. */
static void s_answer_id(const crm_req_t *req, crm_msg_t *a)
{
    const char *digest = req->akey[0] ? strrchr(req->akey, ':') : NULL;
    if (!a->id[0] && digest)
        crm_fmt(a->id, sizeof a->id, "ans-%.24s", digest + 1);
}

static void s_encode_answer(crm_req_t *req)
{
    if (!req->has_answer)
        crm_req_ok(req, NULL);
    if (s_encode(req->ep->svc, &req->answer, req->msg.id, &req->out) != 0)
        crm_error("request.encode_failed", "type=%s", crm_type_name(req->answer.type));
}

/* What is kept for a resend: the answer in its compact form, without what
   is made again alike (its id from the key, the producer, corr: the
   resend's id; s_use_kept fills them), so a resend of the same bytes gets
   the same bytes. */
static int s_encode_kept(crm_req_t *req, msgpack_sbuffer *out)
{
    crm_msg_t *a = &req->answer;
    if (req->ep->def->kept)
        req->ep->def->kept(a, req->key, false);
    out->size = 0;
    int rc = crm_msg_encode_compact(a, out);
    if (req->ep->def->kept)
        req->ep->def->kept(a, req->key, true);
    return rc;
}

static void s_send(crm_req_t *req)
{
    if (req->detached || !req->rid)
        return;
    if (!req->out.size)
        s_encode_answer(req);
    if (req->out.size && s_send_frames(req->ep, req->rid, req->delim, req->out.data, req->out.size) != 0)
        crm_debug("request.answer_dropped", "endpoint=%s why=\"%s\"", req->ep->def->name,
                  zmq_strerror(errno));
}

/* A kept answer, with corr set to this request's id (a resend under another
   envelope id, e.g. the same submission_id from a new form post). */
static int s_use_kept(crm_req_t *req, const char *data, size_t len)
{
    crm_msg_t a;
    crm_err_t err;
    if (crm_msg_decode_kept(data, len, &a, &err) != 0)
        return -1;
    int rc = 0;
    s_answer_id(req, &a); /* kept without it */
    if (req->ep->def->kept)
        req->ep->def->kept(&a, req->key, true);
    if (a.corr[0] && !strcmp(a.corr, req->msg.id)) {
        req->out.size = 0;
        msgpack_sbuffer_write(&req->out, data, len);
    } else {
        rc = s_encode(req->ep->svc, &a, req->msg.id, &req->out);
    }
    crm_msg_clear(&a);
    req->kept = true;
    return rc;
}

int crm_req_kept_reads(crm_req_t **reqs, int n, crm_tx_t *reads, const char *const *watch, int nwatch)
{
    nwatch = watch && nwatch > 0 ? nwatch : 0;
    const char **argv = malloc(((size_t) n + (size_t) nwatch + 1) * sizeof *argv);
    if (!argv || n <= 0) {
        free(argv);
        crm_tx_cmdargv(reads, 0, NULL, NULL); /* the pipeline fails: answered unavailable */
        return -1;
    }
    argv[0] = "WATCH";
    for (int i = 0; i < n; i++)
        argv[i + 1] = reqs[i]->akey;
    for (int i = 0; i < nwatch; i++)
        argv[n + 1 + i] = watch[i];
    crm_tx_cmdargv(reads, n + 1 + nwatch, argv, NULL);
    argv[0] = "MGET";
    int index = crm_tx_cmdargv(reads, n + 1, argv, NULL);
    free(argv);
    return index;
}

bool crm_req_is_kept(const crm_req_t *req) { return req->kept; }

static crm_handled_t s_failed(crm_req_t *req);

void crm_req_kept_apply(crm_req_t **reqs, int n, const crm_tx_t *reads, int index)
{
    const redisReply *got = index >= 0 ? crm_tx_result(reads, index) : NULL;
    for (int i = 0; got && got->type == REDIS_REPLY_ARRAY && i < n && (size_t) i < got->elements; i++) {
        const redisReply *e = got->element[i];
        if (e->type == REDIS_REPLY_STRING && s_use_kept(reqs[i], e->str, e->len) != 0) {
            crm_error("request.kept_unreadable", "endpoint=%s key=%s", reqs[i]->ep->def->name, reqs[i]->akey);
            s_failed(reqs[i]);
            reqs[i]->kept = true; /* never applied twice: answered as failed */
        }
    }
}

/* ------------------------------------------------------- certificates */

crm_handled_t crm_req_fail_text(crm_req_t *req, const char *code, const char *text)
{
    const char *colon = strstr(text, ": ");
    char field[64] = "service";
    if (colon && (size_t) (colon - text) < sizeof field)
        crm_fmt(field, sizeof field, "%.*s", (int) (colon - text), text);
    return crm_req_fail(req, field, code, "%s", colon ? colon + 2 : text);
}

crm_handled_t crm_req_cert_issue(crm_req_t *req, crm_tx_t *tx, crm_curve_t *curve)
{
    const crm_body_cert_issue_t *b = &req->msg.body.cert_issue;
    if (!curve)
        return crm_req_fail(req, "service", "not_configured", "this deployment takes no certificates here");
    char code[32], err[300];
    if (crm_curve_issue(curve, b->id, b->public_key, code, sizeof code, err, sizeof err) != 0)
        return crm_req_fail_text(req, code, err);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_cert_issued);
    CRM_SET_STR(&ev, cert_issued, kind, crm_curve_kind(curve));
    CRM_SET_STR(&ev, cert_issued, id, b->id);
    CRM_SET_STR(&ev, cert_issued, public_key, b->public_key);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_req_ok(req, b->id);
    return CRM_APPLIED;
}

crm_handled_t crm_req_cert_revoke(crm_req_t *req, crm_tx_t *tx, crm_curve_t *curve)
{
    const char *id = req->msg.body.cert_revoke.id;
    if (!curve)
        return crm_req_fail(req, "service", "not_configured", "this deployment takes no certificates here");
    char code[32], err[300], key[41];
    if (crm_curve_revoke(curve, id, key, code, sizeof code, err, sizeof err) != 0)
        return crm_req_fail_text(req, code, err);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_cert_revoked);
    CRM_SET_STR(&ev, cert_revoked, kind, crm_curve_kind(curve));
    CRM_SET_STR(&ev, cert_revoked, id, id);
    CRM_SET_STR(&ev, cert_revoked, public_key, key[0] ? key : NULL);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_req_ok(req, id);
    return CRM_APPLIED;
}

/* ------------------------------------------------------------- routes */

crm_route_t *crm_req_detach(crm_req_t *req)
{
    crm_route_t *route = calloc(1, sizeof *route);
    if (!route || !(route->rid = zframe_dup(req->rid))) {
        free(route);
        return NULL;
    }
    route->ep = req->ep;
    route->delim = req->delim;
    crm_fmt(route->corr, sizeof route->corr, "%s", req->msg.id);
    req->detached = true;
    return route;
}


int crm_route_send(crm_route_t *route, const void *data, size_t len)
{
    return s_send_frames(route->ep, route->rid, route->delim, data, len);
}

int crm_route_answer(crm_route_t *route, crm_msg_t *answer)
{
    msgpack_sbuffer buf;
    crm_sbuffer_init(&buf, 512);
    int rc = s_encode(route->ep->svc, answer, route->corr, &buf) == 0
                 ? crm_route_send(route, buf.data, buf.size)
                 : -1;
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

void crm_route_destroy(crm_route_t **route_p)
{
    if (route_p && *route_p) {
        zframe_destroy(&(*route_p)->rid);
        free(*route_p);
        *route_p = NULL;
    }
}

/* ------------------------------------------------------------ parsing */

static const crm_request_t *s_row(const crm_endpoint_t *ep, crm_type_t type)
{
    const char *name = crm_type_name(type);
    for (const crm_request_t *r = ep->def->requests; r && r->type; r++)
        if (!strcmp(r->type, name))
            return r;
    return NULL;
}

static char *s_dup(const char *s) { return s ? strdup(s) : NULL; }

static void s_later_free(s_later_t *l)
{
    free(l->field), free(l->reason), free(l->peer), free(l->type), free(l->frame);
    free(l);
}

/* Keeps what was refused while a commit was under way. */
static void s_keep_later(crm_endpoint_t *ep)
{
    while (ep->later) {
        s_later_t *l = ep->later;
        ep->later = l->next;
        crm_reject_t r = {.origin = ep->def->name, .kind = "request", .peer = l->peer, .type = l->type,
                          .field = l->field, .reason = l->reason, .frame = l->frame, .len = l->len};
        crm_service_reject(ep->svc, &r);
        s_later_free(l);
    }
    ep->later_tail = &ep->later;
}

static void s_keep(crm_req_t *req, const char *field, const char *reason)
{
    size_t len;
    const void *frame = crm_req_frame(req, &len);
    if (req->ep->in_commit) {
        /* the store is mid-commit: kept as soon as it is free */
        s_later_t *l = calloc(1, sizeof *l);
        if (l && (l->frame = malloc(len ? len : 1))) {
            if (len)
                memcpy(l->frame, frame, len);
            l->len = len;
            l->field = s_dup(field), l->reason = s_dup(reason), l->peer = s_dup(crm_req_peer(req));
            l->type = s_dup(req->msg.type ? crm_type_name(req->msg.type) : NULL);
            *req->ep->later_tail = l;
            req->ep->later_tail = &l->next;
        } else {
            free(l);
            crm_error("request.not_kept", "endpoint=%s why=\"out of memory\"", req->ep->def->name);
        }
        req->refused_kept = true;
        return;
    }
    crm_reject_t r = {.origin = req->ep->def->name,
                      .kind = "request",
                      .peer = crm_req_peer(req),
                      .type = req->msg.type ? crm_type_name(req->msg.type) : NULL,
                      .field = field,
                      .reason = reason,
                      .frame = frame,
                      .len = len};
    crm_service_reject(req->ep->svc, &r);
    req->refused_kept = true;
}

/* Refuses a request before any handler ran: logged, kept, answered. */
static void s_refuse_early(crm_req_t *req, const char *field, const char *code, const char *text, bool keep)
{
    char v[200], t[64];
    crm_warn("request.refused", "endpoint=%s type=%s peer=%s field=%s code=%s reason=\"%s\"",
             req->ep->def->name, crm_log_value(req->msg.type ? crm_type_name(req->msg.type) : "-", t, sizeof t),
             req->peer[0] ? req->peer : "-", field, code, crm_log_value(text, v, sizeof v));
    s_error(req, field, code, text);
    if (keep)
        s_keep(req, field, text);
    s_send(req);
}

static void s_release(crm_req_t *req)
{
    crm_req_set_data(req, NULL, NULL);
    crm_msg_clear(&req->msg);
    crm_msg_clear(&req->answer);
    zframe_destroy(&req->rid);
    zframe_destroy(&req->body);
    msgpack_sbuffer_destroy(&req->out);
    memset(req, 0, sizeof *req);
}

static void s_init(crm_endpoint_t *ep, crm_req_t *req)
{
    memset(req, 0, sizeof *req);
    req->ep = ep;
    req->dup_of = -1;
    crm_sbuffer_init(&req->out, 512);
}

/* Takes one message off the socket into `req`. 0 when it is a request to
   run; -1 when it was answered here (refused) or dropped. */
static int s_take(crm_endpoint_t *ep, crm_req_t *req, zmsg_t *zm)
{
    s_init(ep, req);
    req->rid = zmsg_pop(zm);
    zframe_t *f = zmsg_pop(zm);
    if (f && zframe_size(f) == 0 && zmsg_size(zm) > 0) {
        req->delim = true;
        zframe_destroy(&f);
        f = zmsg_pop(zm);
    }
    req->body = f;
    bool extra = zmsg_size(zm) > 0;
    zmsg_destroy(&zm);
    if (!req->rid || !req->body) {
        s_release(req);
        return -1;
    }
    if (ep->curve) {
        const char *key = NULL;
        const char *peer = crm_curve_peer(ep->curve, req->body, &key);
        if (!peer) {
            /* zauth let it in, but its certificate is gone (revoked since
               the connection was made) or names no peer. */
            crm_warn("request.not_certified", "endpoint=%s key=%s", ep->def->name, key ? key : "-");
            crm_err_t e;
            crm_msg_decode(zframe_data(req->body), zframe_size(req->body), &req->msg, &e);
            crm_msg_clear(&req->msg);
            s_error(req, "certificate", "not_certified", "not (or no longer) trusted");
            s_send(req);
            s_release(req);
            return -1;
        }
        crm_fmt(req->peer, sizeof req->peer, "%s", peer);
        crm_fmt(req->peer_key, sizeof req->peer_key, "%s", key ? key : "");
    }
    if (extra) {
        s_refuse_early(req, "frames", "malformed", "a request is one frame (after an optional empty delimiter)", true);
        s_release(req);
        return -1;
    }
    crm_err_t err;
    if (crm_msg_decode(zframe_data(req->body), zframe_size(req->body), &req->msg, &err) != 0) {
        char text[300];
        crm_fmt(text, sizeof text, "%s", err.text);
        const char *code = err.code == CRM_E_TOOLONG ? "too_long" : err.code == CRM_E_UNKNOWN ? "unknown_type" : "malformed";
        s_refuse_early(req, err.field, code, text, true);
        s_release(req);
        return -1;
    }
    req->row = s_row(ep, req->msg.type);
    if (!req->row) {
        char text[160];
        crm_fmt(text, sizeof text, "%s is not a request taken here", crm_type_name(req->msg.type));
        s_refuse_early(req, "type", "unknown_type", text, true);
        s_release(req);
        return -1;
    }
    if (req->row->mode == CRM_REQ_READ)
        return 0;
    char why[300];
    if (req->row->key) {
        crm_err_t kerr = {0};
        if (req->row->key(&req->msg, req->key, sizeof req->key, &kerr) != 0) {
            s_refuse_early(req, kerr.field[0] ? kerr.field : "id",
                           kerr.code == CRM_E_MISSING ? "required" : "bad_id",
                           kerr.text[0] ? kerr.text : "not a valid key", true);
            s_release(req);
            return -1;
        }
    } else {
        /* The envelope id is the key: the same rule as every opaque key. */
        if (crm_id_check(CRM_ID_KEY, req->msg.id, "id", why, sizeof why) != 0) {
            const char *colon = strchr(why, ':');
            s_refuse_early(req, "id", "bad_id", colon ? colon + 2 : why, true);
            s_release(req);
            return -1;
        }
        crm_fmt(req->key, sizeof req->key, "%s", req->msg.id);
    }
    /* A key naming its peer ("<peer>/<key>", on an endpoint without CURVE)
       is digested as that peer's: the same request sent by the peer on a
       CURVE endpoint and by crmctl for it is one. */
    const char *peer = req->peer, *key = req->key;
    char named[CRM_ID_NAME_MAX + 1];
    const char *slash = req->row->key_names_peer && !req->peer[0] ? strchr(req->key, '/') : NULL;
    if (slash && slash > req->key && (size_t) (slash - req->key) <= CRM_ID_NAME_MAX) {
        crm_fmt(named, sizeof named, "%.*s", (int) (slash - req->key), req->key);
        peer = named;
        key = slash + 1;
    }
    const char *parts[] = {crm_service_name(ep->svc), peer, req->row->keyspace ? req->row->keyspace : "request", key};
    char digest[CRM_ID_DIGEST_SZ];
    crm_id_digest(parts, 4, digest);
    crm_fmt(req->akey, sizeof req->akey, CRM_KEY_ANSWER_FMT, crm_service_name(ep->svc), digest);
    return 0;
}

/* Takes one message and, when it is a write to run, prepares it. */
static int s_take_prepared(crm_endpoint_t *ep, crm_req_t *req, zmsg_t *zm)
{
    if (s_take(ep, req, zm) != 0)
        return -1;
    if (req->row->mode != CRM_REQ_READ && ep->def->prepare) {
        crm_log_context(req->msg.id);
        ep->def->prepare(req);
        crm_log_context(NULL);
    }
    return 0;
}

/* ------------------------------------------------------------ running */

static int64_t s_keep_ms(crm_req_t *req)
{
    return req->ep->keep_ms[req->row - req->ep->def->requests];
}

static void s_reset(crm_req_t *req)
{
    crm_msg_clear(&req->answer);
    req->has_answer = false;
    req->outcome = CRM_APPLIED;
    req->kept = false;
    req->dup_of = -1;
    req->why[0] = 0;
    req->out.size = 0;
}

/* Every request of the batch that has no answer yet gets `fn`'s. */
static void s_all(crm_req_t *reqs, int n, crm_handled_t (*fn)(crm_req_t *))
{
    for (int i = 0; i < n; i++)
        if (!reqs[i].kept && reqs[i].dup_of < 0)
            fn(&reqs[i]);
}

static crm_handled_t s_failed(crm_req_t *req)
{
    return crm_req_fail(req, "service", "failed", "the store refused the change; it is kept for review");
}

static void s_keep_failed(crm_req_t *reqs, int n)
{
    const char *why = crm_store_error(crm_service_store(reqs[0].ep->svc));
    for (int i = 0; i < n; i++)
        if (!reqs[i].kept && reqs[i].dup_of < 0)
            s_keep(&reqs[i], "service", why);
}

/* Runs `n` write requests of one row: alone (n == 1) or through the row's
   batch handler. */
static void s_write(crm_endpoint_t *ep, crm_req_t *reqs, int n);

/* Takes what waits on the socket into the next batch (decoded, keyed and
   prepared) while a commit is under way: never the store. Up to S_BATCH
   of rows with a batch handler, S_SINGLES of the others, as a wake-up. */
static void s_take_ahead(void *arg)
{
    crm_endpoint_t *ep = arg;
    crm_req_t *next = ep->bufs[!ep->cur];
    while (ep->ahead_ok && ep->nahead < S_BATCH) {
        if (ep->nahead > 0 && !next[ep->nahead - 1].row->batch)
            break; /* one request of another row at most: it starts the next round */
        zmsg_t *zm = zmsg_recv_nowait(ep->sock);
        if (!zm)
            break;
        if (s_take_prepared(ep, &next[ep->nahead], zm) == 0)
            ep->nahead++;
    }
}

/* Whether queued command `index` is among those a refused commit left out. */
static bool s_failed_index(crm_tx_t *tx, int index)
{
    const int *idx;
    size_t nf = crm_tx_failed(tx, &idx);
    for (size_t i = 0; i < nf; i++)
        if (idx[i] == index)
            return true;
    return false;
}

/* Every request still to be answered gets `fn`'s answer, freshly encoded. */
static void s_answer_all(crm_req_t **todo, int m, crm_handled_t (*fn)(crm_req_t *))
{
    for (int i = 0; i < m; i++) {
        fn(todo[i]);
        todo[i]->out.size = 0;
        s_encode_answer(todo[i]);
    }
}

/* Runs `n` write requests of one row: alone (n == 1) or through the row's
   batch handler. */
static void s_write(crm_endpoint_t *ep, crm_req_t *reqs, int n)
{
    crm_service_t *svc = ep->svc;
    crm_store_t *store = crm_service_store(svc);
    const crm_request_t *row = reqs[0].row;
    bool keep = row->mode == CRM_REQ_WRITE || row->mode == CRM_REQ_WRITE_BATCH;
    crm_req_t **todo = calloc((size_t) n, sizeof *todo);
    if (!todo) {
        s_all(reqs, n, crm_req_unavailable);
        return;
    }
    bool decided = false;
    int m = 0;
    for (int attempt = 0; attempt < S_ATTEMPTS && !decided; attempt++) {
        for (int i = 0; i < n; i++)
            s_reset(&reqs[i]);
        crm_tx_t *tx = crm_service_tx(svc);
        unsigned long gen = crm_store_generation(store);
        /* A batch handler that reads the kept answers itself does so in its
           first round trip (after this: a reconnect since then changes gen). */
        bool handler_reads = row->batch && row->mode == CRM_REQ_WRITE_BATCH;
        if (keep && !handler_reads) {
            /* WATCH and read the kept answers in one round trip. */
            crm_tx_t *reads = crm_tx_new(crm_service_name(svc), 0);
            const char **watch = calloc((size_t) n + 1, sizeof *watch), **mget = calloc((size_t) n + 1, sizeof *mget);
            int rc = -1;
            if (reads && watch && mget) {
                watch[0] = "WATCH", mget[0] = "MGET";
                for (int i = 0; i < n; i++)
                    watch[i + 1] = mget[i + 1] = reqs[i].akey;
                crm_tx_cmdargv(reads, n + 1, watch, NULL);
                crm_tx_cmdargv(reads, n + 1, mget, NULL);
                rc = crm_store_pipeline(store, reads);
            }
            /* The connection the WATCH lives on (after any reconnect). */
            gen = crm_store_generation(store);
            const redisReply *got = rc == 0 ? crm_tx_result(reads, 1) : NULL;
            for (int i = 0; got && got->type == REDIS_REPLY_ARRAY && i < n && (size_t) i < got->elements; i++) {
                const redisReply *e = got->element[i];
                if (e->type == REDIS_REPLY_STRING && s_use_kept(&reqs[i], e->str, e->len) != 0) {
                    crm_error("request.kept_unreadable", "endpoint=%s key=%s", ep->def->name, reqs[i].akey);
                    s_failed(&reqs[i]);
                    reqs[i].kept = true; /* never applied twice: answered as failed */
                }
            }
            bool read = got && got->type == REDIS_REPLY_ARRAY;
            crm_tx_destroy(&reads);
            free(watch);
            free(mget);
            if (!read) {
                if (crm_store_connected(store))
                    crm_store_unwatch(store);
                s_all(reqs, n, crm_store_passing(store) ? crm_req_unavailable : s_failed);
                decided = true;
                break;
            }
        }
        /* The same key twice in one batch: the later one gets the first's answer. */
        m = 0;
        for (int i = 0; i < n; i++) {
            if (reqs[i].kept)
                continue;
            for (int k = 0; k < i && reqs[i].dup_of < 0; k++)
                if (!reqs[k].kept && reqs[k].dup_of < 0 && !strcmp(reqs[k].akey, reqs[i].akey))
                    reqs[i].dup_of = k;
            if (reqs[i].dup_of < 0)
                todo[m++] = &reqs[i];
        }
        if (m == 0) {
            if (keep)
                crm_store_unwatch(store);
            decided = true;
            break;
        }
        crm_handled_t rc;
        if (row->batch) {
            rc = row->batch(svc, todo, m, tx);
            if (handler_reads) {
                /* those it found answered are no longer to do */
                int k = 0;
                for (int i = 0; i < m; i++)
                    if (!todo[i]->kept)
                        todo[k++] = todo[i];
                m = k;
                if (m == 0) {
                    /* every one answered already: nothing to change */
                    crm_tx_reset(tx);
                    crm_store_unwatch(store);
                    decided = true;
                    break;
                }
            }
            if (rc == CRM_REFUSE && m > 1) {
                /* Redis refused something the batch read: each alone, so
                   only the one at fault is refused. */
                crm_tx_reset(tx);
                if (keep)
                    crm_store_unwatch(store);
                for (int i = 0; i < m; i++)
                    s_write(ep, todo[i], 1);
                decided = true;
                break;
            }
        } else {
            crm_log_context(todo[0]->msg.id);
            rc = row->fn(svc, todo[0], tx);
            crm_log_context(NULL);
            todo[0]->outcome = rc;
        }
        if (rc == CRM_REFUSE) {
            /* A refusal changes nothing. */
            if (!todo[0]->has_answer)
                crm_req_fail(todo[0], "request", "refused", "refused");
            todo[0]->outcome = CRM_REFUSE;
            crm_tx_reset(tx);
            rc = CRM_APPLIED;
        }
        if (rc == CRM_RETRY || rc != CRM_APPLIED) {
            crm_tx_reset(tx);
            if (crm_store_connected(store))
                crm_store_unwatch(store);
            s_answer_all(todo, m, crm_req_unavailable);
            decided = true;
            break;
        }
        int set_index[S_BATCH];
        msgpack_sbuffer kept;
        msgpack_sbuffer_init(&kept);
        for (int i = 0; i < m; i++) {
            crm_req_t *r = todo[i];
            set_index[i] = -1;
            if (r->outcome == CRM_APPLIED && keep) {
                if (!r->has_answer)
                    crm_req_ok(r, NULL);
                s_answer_id(r, &r->answer);
            }
            s_encode_answer(r);
            if (r->outcome != CRM_APPLIED || !keep || !r->out.size)
                continue;
            char px[24];
            crm_fmt(px, sizeof px, "%lld", (long long) s_keep_ms(r));
            const char *argv[] = {"SET", r->akey, kept.data, "PX", px};
            size_t lens[] = {3, strlen(r->akey), 0, 2, strlen(px)};
            if (s_encode_kept(r, &kept) != 0) {
                argv[2] = r->out.data; /* kept whole rather than not at all */
                lens[2] = r->out.size;
            } else {
                argv[2] = kept.data;
                lens[2] = kept.size;
            }
            set_index[i] = crm_tx_cmdargv(tx, 5, argv, lens);
        }
        msgpack_sbuffer_destroy(&kept);
        if (crm_tx_size(tx) == 0 && crm_tx_emit_count(tx) == 0) {
            if (keep)
                crm_store_unwatch(store);
            decided = true;
            break;
        }
        if (keep && crm_store_generation(store) != gen) {
            /* Reconnected since the WATCH: it is gone; read again. */
            crm_tx_reset(tx);
            continue;
        }
        ep->in_commit = true;
        int c = crm_service_commit_with(svc, tx, s_take_ahead, ep);
        ep->in_commit = false;
        s_keep_later(ep);
        if (c == CRM_TX_CONFLICT) {
            crm_info("request.conflict", "endpoint=%s type=%s attempt=%d batch=%d", ep->def->name, row->type,
                     attempt + 1, m);
            continue;
        }
        decided = true;
        if (c == 0)
            break;
        bool passing = crm_store_passing(store);
        if (!passing && crm_tx_failed(tx, NULL)) {
            /* Applied but for what Redis refused: that is kept, to be
               applied again (crmctl rejects retry) once mended. A request
               whose kept answer was applied is answered with it (a resend
               gets it too); one whose kept answer was left out is told it
               failed (it is among what the retry applies). */
            size_t len;
            crm_reject_t r = {.origin = ep->def->name, .kind = "request", .peer = crm_req_peer(todo[0]),
                              .type = crm_type_name(todo[0]->msg.type), .field = "commit",
                              .frame = crm_req_frame(todo[0], &len)};
            r.len = len;
            char rid[48] = "";
            crm_service_reject_partial(svc, tx, &r, -1, rid, sizeof rid);
            for (int i = 0; i < m; i++) {
                todo[i]->refused_kept = true;
                if (todo[i]->outcome == CRM_APPLIED && set_index[i] >= 0 && !s_failed_index(tx, set_index[i]))
                    continue;
                crm_req_fail(todo[i], "service", "failed",
                             "Redis refused part of the change; the rest stands and the part left out is kept "
                             "for review as %s",
                             rid[0] ? rid : "a reject");
                todo[i]->out.size = 0;
                s_encode_answer(todo[i]);
            }
        } else {
            s_answer_all(todo, m, passing ? crm_req_unavailable : s_failed);
            if (!passing)
                s_keep_failed(reqs, n);
        }
    }
    if (!decided)
        s_answer_all(todo, m, crm_req_unavailable); /* conflicts every time: send it again */
    /* Refusals are kept for review; answers of duplicates are the first's. */
    for (int i = 0; i < n; i++) {
        crm_req_t *r = &reqs[i];
        if (r->dup_of >= 0) {
            r->out.size = 0;
            msgpack_sbuffer_write(&r->out, reqs[r->dup_of].out.data, reqs[r->dup_of].out.size);
            continue;
        }
        if (!r->out.size)
            s_encode_answer(r);
        if (r->outcome == CRM_REFUSE && !r->refused_kept && !r->kept)
            s_keep(r, "request", r->why[0] ? r->why : "refused by the handler");
    }
    free(todo);
}

static void s_read(crm_endpoint_t *ep, crm_req_t *req)
{
    crm_log_context(req->msg.id);
    crm_handled_t rc = req->row->fn(ep->svc, req, NULL);
    crm_log_context(NULL);
    req->outcome = rc;
    if (rc == CRM_DEFERRED)
        return;
    if (rc == CRM_RETRY && !req->has_answer)
        crm_req_unavailable(req);
    if (rc == CRM_REFUSE && !req->has_answer)
        crm_req_fail(req, "request", "refused", "refused");
    s_encode_answer(req);
}

#define S_ROUNDS 4 /* batches a wake-up, each taken while the one before commits */

static int s_on_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    crm_endpoint_t *ep = arg;
    /* Up to S_BATCH of a row with a batch handler (one transaction), but
       only a few of the others, each its own transaction, so that timers
       (a replay in progress) and the bus get their turns between them.
       While a batch commits, the next is taken off the socket and
       prepared; a few rounds a wake-up, the last taking none ahead. */
    for (int round = 0; round < S_ROUNDS; round++) {
        if (round > 0) {
            if (!ep->nahead)
                break;
            ep->cur = !ep->cur;
        }
        crm_req_t *reqs = ep->bufs[ep->cur];
        int n = ep->nahead, taken = 0;
        ep->nahead = 0;
        while (n < S_BATCH && taken < S_BATCH) {
            if (n >= S_SINGLES && !reqs[n - 1].row->batch)
                break;
            zmsg_t *zm = zmsg_recv_nowait(sock);
            if (!zm)
                break;
            taken++;
            if (s_take_prepared(ep, &reqs[n], zm) == 0)
                n++;
        }
        /* only batches are taken ahead: requests of other rows stay a few
           a wake-up, so that the bus and the timers get their turns */
        ep->ahead_ok = round + 1 < S_ROUNDS && n > 0 && reqs[0].row->batch;
        for (int i = 0; i < n;) {
            crm_req_t *r = &reqs[i];
            int j = i + 1;
            if (r->row->mode == CRM_REQ_READ)
                s_read(ep, r);
            else if (r->row->batch) {
                while (j < n && reqs[j].row == r->row)
                    j++;
                s_write(ep, r, j - i);
            } else
                s_write(ep, r, 1);
            for (int k = i; k < j; k++)
                s_send(&reqs[k]);
            i = j;
        }
        ep->ahead_ok = false;
        for (int i = 0; i < n; i++)
            s_release(&reqs[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

crm_endpoint_t *crm_service_endpoint(crm_service_t *svc, const crm_endpoint_def_t *def,
                                     const char *bind, crm_curve_t *curve)
{
    crm_endpoint_t *ep = calloc(1, sizeof *ep);
    if (!ep)
        return NULL;
    ep->svc = svc;
    ep->def = def;
    ep->curve = curve;
    crm_fmt(ep->bind, sizeof ep->bind, "%s", bind ? bind : "");
    ep->bufs[0] = calloc(S_BATCH, sizeof *ep->bufs[0]);
    ep->bufs[1] = calloc(S_BATCH, sizeof *ep->bufs[1]);
    ep->later_tail = &ep->later;
    size_t nrows = 0;
    while (def->requests && def->requests[nrows].type)
        nrows++;
    ep->keep_ms = calloc(nrows + 1, sizeof *ep->keep_ms);
    if (!ep->bufs[0] || !ep->bufs[1] || !ep->keep_ms)
        goto fail;
    /* checked once, here: a bad value stops the start, never a commit */
    for (size_t i = 0; i < nrows; i++) {
        const char *opt = def->requests[i].keep_opt;
        if (!opt) {
            ep->keep_ms[i] = crm_service_answer_ttl_ms(svc);
        } else if (crm_service_opt_i64(svc, opt, 1, 3650, &ep->keep_ms[i]) != 0) {
            crm_error("request.bad_option", "endpoint=%s option=%s why=\"1 to 3650 days\"", def->name, opt);
            goto fail;
        } else {
            ep->keep_ms[i] *= 86400000LL;
        }
    }
    ep->sock = zsock_new(ZMQ_ROUTER);
    if (!ep->sock)
        goto fail;
    if (curve)
        crm_curve_secure(curve, ep->sock);
    zsock_set_linger(ep->sock, 0);
    zsock_set_router_mandatory(ep->sock, 1);
    zsock_set_maxmsgsize(ep->sock, CRM_FRAME_MAX + 4096);
    zsock_set_sndhwm(ep->sock, 10000);
    zsock_set_rcvhwm(ep->sock, 10000);
    if (zsock_bind(ep->sock, "%s", ep->bind) < 0) {
        crm_error("request.bind_failed", "endpoint=%s bind=%s why=\"%s\"", def->name, ep->bind,
                  zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zloop_reader(crm_service_loop(svc), ep->sock, s_on_readable, ep) != 0)
        goto fail;
    if (crm_service_track_endpoint(svc, ep) != 0) {
        zloop_reader_end(crm_service_loop(svc), ep->sock);
        goto fail;
    }
    crm_info("request.listening", "endpoint=%s bind=%s curve=%s", def->name, ep->bind,
             curve ? crm_curve_kind(curve) : "no");
    return ep;
fail:
    zsock_destroy(&ep->sock);
    free(ep->keep_ms);
    free(ep->bufs[0]);
    free(ep->bufs[1]);
    free(ep);
    return NULL;
}

void crm_endpoint_destroy(crm_endpoint_t **ep_p)
{
    if (!ep_p || !*ep_p)
        return;
    crm_endpoint_t *ep = *ep_p;
    if (ep->sock) {
        zloop_reader_end(crm_service_loop(ep->svc), ep->sock);
        zsock_destroy(&ep->sock);
    }
    for (int i = 0; i < ep->nahead; i++)
        s_release(&ep->bufs[!ep->cur][i]);
    while (ep->later) {
        s_later_t *l = ep->later;
        ep->later = l->next;
        s_later_free(l);
    }
    free(ep->keep_ms);
    free(ep->bufs[0]);
    free(ep->bufs[1]);
    free(ep);
    *ep_p = NULL;
}
