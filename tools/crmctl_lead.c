/*  crmctl lead submit|import, quarantine list|show|retry: the client side of
 *  crm-intake. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm_lead.h"
#include "crm_import.h"
#include "crm_leadin.h"
#include "crmctl.h"

/* One try of a Lazy Pirate exchange on a fresh REQ socket. */
static int s_ask_once(const char *endpoint, crmctl_t *curve, const void *frame, size_t len, int timeout_ms,
                      zframe_t **answer)
{
    zsock_t *req = zsock_new(ZMQ_REQ);
    if (!req)
        return -1;
    zsock_set_linger(req, 0);
    if (curve && crmctl_secure_intake(curve, req) != 0) {
        zsock_destroy(&req);
        return -2;
    }
    if (zsock_connect(req, "%s", endpoint) < 0) {
        fprintf(stderr, "crmctl: bad endpoint %s\n", endpoint);
        zsock_destroy(&req);
        return -2;
    }
    zframe_t *f = zframe_new(frame, len);
    zframe_send(&f, req, 0);
    zpoller_t *poller = zpoller_new(req, NULL);
    void *ready = zpoller_wait(poller, timeout_ms);
    zpoller_destroy(&poller);
    int rc = -1;
    if (ready == req && (*answer = zframe_recv(req)))
        rc = 0;
    zsock_destroy(&req);
    return rc;
}

static int s_ask(const char *endpoint, crmctl_t *curve, const void *frame, size_t len, int timeout_ms, int tries,
                 zframe_t **answer)
{
    for (int attempt = 1; attempt <= tries; attempt++) {
        int rc = s_ask_once(endpoint, curve, frame, len, timeout_ms, answer);
        if (rc == 0)
            return 0;
        if (rc == -2)
            return -2; /* set-up (certificate, endpoint): said already */
        if (attempt < tries)
            fprintf(stderr, "crmctl: no answer from %s in %d ms, retrying (%d/%d)\n", endpoint, timeout_ms,
                    attempt + 1, tries);
    }
    return -1;
}

int crmctl_ask(const char *endpoint, const void *frame, size_t len, int timeout_ms, int tries,
               zframe_t **answer)
{
    return s_ask(endpoint, NULL, frame, len, timeout_ms, tries, answer);
}

int crmctl_secure_intake(crmctl_t *ctl, zsock_t *sock)
{
    const char *cert = crm_opt(ctl->opts, "source-cert");
    if (!cert || !*cert)
        return 0;
    if (!ctl->source_cert) {
        ctl->source_cert = zcert_load(cert);
        static const byte zero[32] = {0};
        if (!ctl->source_cert || !memcmp(zcert_secret_key(ctl->source_cert), zero, sizeof zero)) {
            fprintf(stderr, "crmctl: --source-cert %s is not a secret certificate\n", cert);
            zcert_destroy(&ctl->source_cert);
            return -1;
        }
        const char *server = crm_opt(ctl->opts, "intake-server-cert");
        zcert_t *sc = server ? zcert_load(server) : NULL;
        if (!sc) {
            fprintf(stderr, "crmctl: cannot read crm-intake's certificate %s (--intake-server-cert)\n",
                    server ? server : "");
            zcert_destroy(&ctl->source_cert);
            return -1;
        }
        snprintf(ctl->intake_key, sizeof ctl->intake_key, "%s", zcert_public_txt(sc));
        zcert_destroy(&sc);
    }
    zcert_apply(ctl->source_cert, sock);
    zsock_set_curve_serverkey(sock, ctl->intake_key);
    return 0;
}

int crmctl_ask_intake(crmctl_t *ctl, const void *frame, size_t len, zframe_t **answer)
{
    return s_ask(crm_opt(ctl->opts, "intake"), ctl, frame, len, (int) crmctl_i64(ctl, "timeout-ms"),
                 (int) crmctl_i64(ctl, "tries"), answer);
}

/* Prints the answer as JSON and maps it to the exit code. */
static int s_print_answer(const zframe_t *answer)
{
    crm_msg_t a;
    crm_err_t err;
    if (crm_msg_decode(zframe_data((zframe_t *) answer), zframe_size((zframe_t *) answer), &a, &err) != 0) {
        fprintf(stderr, "crmctl: intake's answer cannot be read (%s: %s)\n", err.field, err.text);
        return CRMCTL_UNREACHABLE;
    }
    char *json = crm_msg_to_json(&a);
    printf("%s\n", json ? json : "{}");
    free(json);
    int rc = a.type == CRM_T_lead_accepted ? CRMCTL_OK : CRMCTL_NO;
    crm_msg_clear(&a);
    return rc;
}

/* An unconvertible document goes to quarantine in one frame: this much of it. */
#define S_DOC_KEEP_MAX (200 * 1024)

static int s_encode_submit(crm_msg_t *m, msgpack_sbuffer *buf)
{
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "crmctl");
    msgpack_sbuffer_init(buf);
    return crm_msg_encode(m, buf, NULL);
}

/* Reads a JSON lead, an ADF document or an e-mail carrying ADF and
   converts it (crm_leadin_convert). Prints why each part that cannot be a
   lead cannot. NULL when the file cannot be read or memory is short. */
static crm_leadin_doc_t *s_parse_doc(const char *path)
{
    size_t len;
    char *text = crm_leadin_read_file(path, CRM_LEADIN_DOC_MAX, &len);
    if (!text) {
        if (errno == EFBIG)
            fprintf(stderr, "crmctl: %s is larger than %d bytes\n", path, CRM_LEADIN_DOC_MAX);
        else
            fprintf(stderr, "crmctl: cannot read %s (%s)\n", path, strerror(errno));
        return NULL;
    }
    crm_leadin_doc_t *doc = crm_leadin_convert(text, len, crm_now_ms());
    free(text);
    if (!doc) {
        fprintf(stderr, "crmctl: %s: out of memory\n", path);
        return NULL;
    }
    if (doc->err[0])
        fprintf(stderr, "crmctl: %s: %s\n", path, doc->err);
    for (size_t i = 0; i < doc->nleads; i++)
        if (!doc->leads[i].ok)
            fprintf(stderr, "crmctl: %s: %s\n", path, doc->leads[i].err);
    return doc;
}

/* Reads a document that must hold exactly one lead into `m`. */
static int s_parse_lead(const char *path, crm_msg_t *m)
{
    crm_leadin_doc_t *doc = s_parse_doc(path);
    if (!doc)
        return -1;
    int rc = -1;
    if (doc->nfailed == 0 && doc->nleads == 1) {
        *m = doc->leads[0].msg;
        crm_msg_init(&doc->leads[0].msg, CRM_T_lead_submit); /* moved to m */
        rc = 0;
    } else if (doc->nfailed == 0)
        fprintf(stderr, "crmctl: %s holds %zu leads; give one\n", path, doc->nleads);
    crm_leadin_doc_destroy(&doc);
    return rc;
}

/* Sends a document (or the part that fits in a frame) that could not be
   converted, with the reasons, to be kept in quarantine; prints intake's
   answer. The exit code of that answer (1: kept and rejected). */
static int s_quarantine_doc(crmctl_t *ctl, const char *path, const crm_leadin_doc_t *doc)
{
    char reason[2048];
    size_t used = (size_t) snprintf(reason, sizeof reason, "%s", doc->err);
    for (size_t i = 0; i < doc->nleads && used < sizeof reason - 1; i++)
        if (!doc->leads[i].ok)
            used += (size_t) snprintf(reason + used, sizeof reason - used, "%s%s", used ? "; " : "", doc->leads[i].err);
    size_t keep = doc->raw_len > S_DOC_KEEP_MAX ? S_DOC_KEEP_MAX : doc->raw_len;
    if (keep < doc->raw_len && used < sizeof reason - 1)
        snprintf(reason + used, sizeof reason - used, " (the first %zu of %zu bytes are kept)", keep, doc->raw_len);
    if (!reason[0])
        snprintf(reason, sizeof reason, "no lead in it");
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_lead_unconvertible);
    CRM_SET_BIN(&m, lead_unconvertible, document, doc->raw ? doc->raw : "", keep);
    CRM_SET_STR(&m, lead_unconvertible, reason, reason);
    const char *base = strrchr(path, '/');
    CRM_SET_STR(&m, lead_unconvertible, filename, !strcmp(path, "-") ? "(stdin)" : base ? base + 1 : path);
    CRM_SET_STR(&m, lead_unconvertible, channel,
                doc->kind == CRM_LEADIN_JSON ? "website" : doc->kind == CRM_LEADIN_UNKNOWN ? NULL : "partner");
    msgpack_sbuffer buf;
    s_encode_submit(&m, &buf);
    crm_msg_clear(&m);
    zframe_t *answer = NULL;
    const char *endpoint = crm_opt(ctl->opts, "intake");
    int rc = crmctl_ask_intake(ctl, buf.data, buf.size, &answer);
    msgpack_sbuffer_destroy(&buf);
    if (rc == -2)
        return CRMCTL_USAGE;
    if (rc != 0) {
        fprintf(stderr, "crmctl: crm-intake at %s did not answer; the document is not kept\n", endpoint);
        return CRMCTL_UNREACHABLE;
    }
    rc = s_print_answer(answer);
    zframe_destroy(&answer);
    return rc;
}

/* Submits every lead of the document, printing each answer as one JSON
   line: 0 when all were accepted, 1 when one was rejected or a part could
   not be converted, 2 when intake did not answer. */
static int s_submit(crmctl_t *ctl, const char *path)
{
    crm_leadin_doc_t *doc = s_parse_doc(path);
    if (!doc)
        return CRMCTL_NO;
    int rc = CRMCTL_OK;
    if (doc->nfailed > 0) {
        /* What could not be converted is kept in quarantine by intake,
           with the reasons, never only printed. */
        rc = s_quarantine_doc(ctl, path, doc);
        if (rc == CRMCTL_OK)
            rc = CRMCTL_NO;
    }
    const char *endpoint = crm_opt(ctl->opts, "intake");
    for (size_t i = 0; i < doc->nleads; i++) {
        if (!doc->leads[i].ok)
            continue;
        msgpack_sbuffer buf;
        s_encode_submit(&doc->leads[i].msg, &buf);
        zframe_t *answer = NULL;
        int asked = crmctl_ask_intake(ctl, buf.data, buf.size, &answer);
        msgpack_sbuffer_destroy(&buf);
        if (asked == -2) {
            rc = CRMCTL_USAGE;
            break;
        }
        if (asked != 0) {
            fprintf(stderr, "crmctl: crm-intake at %s did not answer\n", endpoint);
            rc = CRMCTL_UNREACHABLE;
            break;
        }
        int one = s_print_answer(answer);
        zframe_destroy(&answer);
        if (one == CRMCTL_UNREACHABLE || (one == CRMCTL_NO && rc == CRMCTL_OK))
            rc = one;
        if (rc == CRMCTL_UNREACHABLE)
            break;
    }
    crm_leadin_doc_destroy(&doc);
    return rc;
}

/* ---------------------------------------------------------------- import */

/* The lead import's side of crm_import: the submission id is both the
   key of intake's answer and the row's own id. */
static int s_lead_prepare(void *arg, crm_msg_t *m, char *match, char *dedupe)
{
    (void) arg;
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "crmctl");
    snprintf(match, CRM_IMPORT_KEY_SZ, "%s", m->body.lead_submit.submission_id);
    snprintf(dedupe, CRM_IMPORT_KEY_SZ, "%s", m->body.lead_submit.submission_id);
    return 0;
}

static void s_lead_answer(void *arg, const crm_msg_t *a, crm_import_result_t *res)
{
    (void) arg;
    if (a->type == CRM_T_lead_accepted) {
        res->outcome = CRM_IMPORT_STORED;
        res->flag = a->body.lead_accepted.merged;
        snprintf(res->key, sizeof res->key, "%s", a->body.lead_accepted.submission_id);
        return;
    }
    if (a->type != CRM_T_lead_rejected)
        return;
    snprintf(res->key, sizeof res->key, "%s", a->body.lead_rejected.submission_id);
    const crm_strs_t *e = &a->body.lead_rejected.errors;
    /* "service|unavailable" is intake saying "not stored, retry";
       "service|failed" is final (Redis refused it; kept for review). */
    if (e->n && !strncmp(e->v[0], "service|unavailable|", 20)) {
        res->outcome = CRM_IMPORT_RETRY;
        return;
    }
    res->outcome = CRM_IMPORT_REFUSED;
    size_t used = 0;
    for (size_t i = 0; i < e->n && used < sizeof res->why - 1; i++)
        used += (size_t) snprintf(res->why + used, sizeof res->why - used, "%s%s", i ? "; " : "",
                                  e->v[i]);
}

static int s_import(crmctl_t *ctl, const char *path)
{
    char err[512];
    const char *enc = crm_opt(ctl->opts, "encoding");
    crm_csv_reader_t *r = crm_csv_open(path, enc && *enc ? enc : NULL, err, sizeof err);
    if (!r) {
        fprintf(stderr, "crmctl: %s: %s\n", path, err);
        return CRMCTL_NO;
    }
    const char *source = crm_opt(ctl->opts, "source");
    if (source && *source)
        crm_csv_set_source(r, source);
    for (const char *const *u = crm_csv_unknown_columns(r); u && *u; u++)
        fprintf(stderr, "crmctl: column '%s' is not a lead field and is not imported\n", *u);
    const char *endpoint = crm_opt(ctl->opts, "intake");
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zsock_set_linger(dealer, 0);
    zsock_set_sndhwm(dealer, 0);
    zsock_set_rcvhwm(dealer, 0);
    bool secured = crmctl_secure_intake(ctl, dealer) == 0; /* says what is wrong */
    if (!secured || zsock_connect(dealer, "%s", endpoint) < 0) {
        if (secured)
            fprintf(stderr, "crmctl: bad intake endpoint %s\n", endpoint);
        crm_csv_close(&r);
        zsock_destroy(&dealer);
        return CRMCTL_USAGE;
    }
    char peer[300];
    snprintf(peer, sizeof peer, "crmctl: crm-intake at %s", endpoint);
    crm_import_conf_t conf = {.sock = dealer,
                              .delimiter = true,
                              .peer = peer,
                              .what = "lead",
                              .timeout_ms = (int) crmctl_i64(ctl, "timeout-ms"),
                              .tries = (int) crmctl_i64(ctl, "tries"),
                              .prepare = s_lead_prepare,
                              .answer = s_lead_answer};
    crm_import_stats_t st;
    printf("importing %s (%s)\n", path, crm_csv_encoding(r));
    crm_import_run(r, path, &conf, &st);
    printf("%ld rows in %.2f s: %ld accepted (%ld merged into known customers), %ld rejected, "
           "%ld unreadable, %ld duplicate rows, %ld not confirmed\n",
           st.rows, st.secs, st.stored, st.flagged, st.refused, st.unreadable, st.duplicates,
           st.unconfirmed);
    if (st.rejects)
        printf("rejected rows, with the reason in the last column: %s (fix them and import that file)\n",
               st.rejects_path);
    zsock_destroy(&dealer);
    crm_csv_close(&r);
    if (st.unconfirmed)
        return CRMCTL_UNREACHABLE;
    return st.refused || st.unreadable ? CRMCTL_NO : CRMCTL_OK;
}

int crmctl_lead(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (!strcmp(sub, "submit"))
        return s_submit(ctl, ctl->argc > 2 ? ctl->argv[2] : "-");
    if (!strcmp(sub, "import") && ctl->argc > 2)
        return s_import(ctl, ctl->argv[2]);
    fprintf(stderr, "crmctl lead: submit [FILE|-] | import FILE.csv [--encoding E] [--source S]\n");
    return CRMCTL_USAGE;
}

/* ------------------------------------------------------------ quarantine */

static int s_qlist(crm_store_t *store, long long count)
{
    redisReply *ids = crm_store_cmd(store, "ZREVRANGE " CRM_KEY_QUARANTINE " 0 %lld", count - 1);
    if (!ids)
        return CRMCTL_REDIS;
    for (size_t i = 0; i < ids->elements; i++) {
        const char *qid = ids->element[i]->str;
        if (!qid || !crm_id_quarantine_valid(qid))
            continue;
        redisReply *kv = crm_store_cmd(store, "HMGET " CRM_KEY_QUARANTINE_FMT " received_ms channel state submission_id errors", qid);
        const char *v[5] = {0};
        for (size_t k = 0; kv && kv->type == REDIS_REPLY_ARRAY && k < kv->elements && k < 5; k++)
            v[k] = kv->element[k]->type == REDIS_REPLY_STRING ? kv->element[k]->str : NULL;
        char when[40];
        crm_format_cst(atoll(v[0] ? v[0] : "0"), when, sizeof when);
        char errors[512];
        snprintf(errors, sizeof errors, "%s", v[4] ? v[4] : "");
        for (char *p = errors; *p; p++)
            if (*p == '\n')
                *p = ';';
        printf("%-6s %s  %-8s %-16s %-30s %s\n", qid, when, v[1] ? v[1] : "-", v[2] ? v[2] : "open",
               v[3] ? v[3] : "-", errors);
        freeReplyObject(kv);
    }
    freeReplyObject(ids);
    return CRMCTL_OK;
}

/* The quarantined submission `qid` ("Q12"): its hash (caller frees). */
static redisReply *s_qentry(crm_store_t *store, const char *qid)
{
    if (!crm_id_quarantine_valid(qid)) {
        fprintf(stderr, "crmctl: %s is not a quarantine id (Q<number>)\n", qid);
        return NULL;
    }
    redisReply *r = crm_store_cmd(store, "HGETALL " CRM_KEY_QUARANTINE_FMT, qid);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements)
        return r;
    fprintf(stderr, "crmctl: no quarantined submission %s\n", qid);
    freeReplyObject(r);
    return NULL;
}

static int s_qshow(crm_store_t *store, const char *qid)
{
    redisReply *r = s_qentry(store, qid);
    if (!r)
        return CRMCTL_NO;
    const redisReply *frame = crm_reply_field_reply(r, "frame");
    crm_msg_t m;
    crm_err_t err;
    const redisReply *doc = crm_reply_field_reply(r, "document");
    if (frame && crm_msg_decode(frame->str, frame->len, &m, &err) == 0) {
        char *json = crm_msg_to_json(&m);
        printf("%s\n", json ? json : "{}");
        free(json);
        crm_msg_clear(&m);
    } else if (doc && doc->type == REDIS_REPLY_STRING) {
        /* A document no converter could read, as it was received. */
        printf("document (%zu bytes) as received:\n", (size_t) doc->len);
        fwrite(doc->str, 1, doc->len > 4096 ? 4096 : doc->len, stdout);
        printf("%s\n", doc->len > 4096 ? "\n..." : "");
    }
    printf("errors:\n  %s\nstate: %s\n", crm_reply_field_or(r, "errors", "-"), crm_reply_field_or(r, "state", "open"));
    freeReplyObject(r);
    return CRMCTL_OK;
}

/* Submits a corrected lead (FILE) or the original again as a retry of the
   quarantined one: crm-intake checks that it is, stores it under
   "<submission id>~Q<n>" (so the first answer, the rejection, does not
   stand in its way) and records the outcome on the quarantine entry. */
static int s_qretry(crmctl_t *ctl, crm_store_t *store, const char *qid, const char *path)
{
    redisReply *r = s_qentry(store, qid);
    if (!r)
        return CRMCTL_NO;
    const redisReply *kv = r;
    crm_msg_t m;
    crm_err_t err;
    int parsed = -1;
    if (path) {
        parsed = s_parse_lead(path, &m);
    } else {
        const redisReply *frame = crm_reply_field_reply(kv, "frame");
        parsed = frame ? crm_msg_decode(frame->str, frame->len, &m, &err) : -1;
        if (parsed == 0 && m.type != CRM_T_lead_submit) {
            crm_msg_clear(&m);
            parsed = -1;
        }
        if (parsed != 0)
            fprintf(stderr, "crmctl: %s holds no lead to submit again (a document no converter could read?); "
                            "give the corrected lead as a file\n", qid);
    }
    char sid[300];
    snprintf(sid, sizeof sid, "%s", crm_reply_field_or(kv, "submission_id", ""));
    freeReplyObject(r);
    if (parsed != 0)
        return CRMCTL_NO;
    CRM_SET_STR(&m, lead_submit, submission_id, sid);
    CRM_SET_STR(&m, lead_submit, retry_of, qid);
    msgpack_sbuffer buf;
    s_encode_submit(&m, &buf);
    crm_msg_clear(&m);
    zframe_t *answer = NULL;
    int rc = crmctl_ask_intake(ctl, buf.data, buf.size, &answer);
    msgpack_sbuffer_destroy(&buf);
    if (rc == -2)
        return CRMCTL_USAGE;
    if (rc != 0) {
        fprintf(stderr, "crmctl: crm-intake did not answer\n");
        return CRMCTL_UNREACHABLE;
    }
    rc = s_print_answer(answer);
    zframe_destroy(&answer);
    return rc;
}

int crmctl_quarantine(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    bool list = !strcmp(sub, "list");
    if (!list && (ctl->argc < 3 || (strcmp(sub, "show") && strcmp(sub, "retry")))) {
        fprintf(stderr, "crmctl quarantine: list | show ID | retry ID [CORRECTED_FILE|-]\n");
        return CRMCTL_USAGE;
    }
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    if (list)
        return s_qlist(store, crmctl_i64(ctl, "count"));
    if (!crm_id_quarantine_valid(ctl->argv[2])) {
        fprintf(stderr, "crmctl: %s is not a quarantine id (Q<number>)\n", ctl->argv[2]);
        return CRMCTL_USAGE;
    }
    if (!strcmp(sub, "show"))
        return s_qshow(store, ctl->argv[2]);
    return s_qretry(ctl, store, ctl->argv[2], ctl->argc > 3 ? ctl->argv[3] : NULL);
}
