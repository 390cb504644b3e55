/*  crmctl notify|consent|webhook: what crm-notifier keeps.
 *
 *  notify dlq retry, consent set and webhook set ask crm-notifier (its
 *  control endpoint, --notifier-control); notify show, notify dlq list,
 *  consent show|history and webhook show read Redis (crm:notify:*,
 *  crm:consent:*, crm:webhook:*, common/crm_keys.h). Every id from the
 *  command line is checked before it becomes part of a key; a request id
 *  (any text) only ever does through its digest.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crm_leadin.h"
#include "crm_table.h"
#include "crmctl.h"

/* ------------------------------------------------------------ helpers */

/* The form asked for with --json, --csv (--format); -1 after a message. */
static int s_fmt(crmctl_t *ctl, const char *what, crm_table_fmt_t *fmt)
{
    const char *format = crm_opt(ctl->opts, "format");
    if (crm_table_fmt_parse(format, fmt) == 0)
        return 0;
    fprintf(stderr, "crmctl %s: --format: expected table, json or csv, got '%s'\n", what, format);
    return -1;
}

/* A notification number: N and 1 to 18 digits. */
static bool s_is_notification(const char *id)
{
    size_t n = strlen(id);
    if (n < 2 || n > 19 || id[0] != 'N')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isdigit((unsigned char) id[i]))
            return false;
    return true;
}

/* An 11-digit mobile number (1 and ten digits). */
static bool s_is_mobile(const char *id)
{
    if (strlen(id) != 11 || id[0] != '1')
        return false;
    for (size_t i = 0; i < 11; i++)
        if (!isdigit((unsigned char) id[i]))
            return false;
    return true;
}

/* The notification of `id` (a number N12, or a request id looked up
   through crm:notify:req:<digest>) into `n`. 0; 1 when there is none;
   CRMCTL_REDIS. Tries the number first and falls back to the request id,
   since a request id may look like a number. */
static int s_resolve_notification(crm_store_t *store, const char *id, char *n, size_t size)
{
    if (s_is_notification(id)) {
        redisReply *r = crm_store_cmd(store, "EXISTS " CRM_KEY_NOTIFY_FMT, id);
        if (!r)
            return CRMCTL_REDIS;
        bool found = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        if (found) {
            snprintf(n, size, "%s", id);
            return 0;
        }
    }
    if (!crm_id_valid(CRM_ID_KEY, id))
        return 1;
    char digest[CRM_ID_DIGEST_SZ];
    const char *parts[] = {id};
    crm_id_digest(parts, 1, digest);
    redisReply *r = crm_store_cmd(store, "GET " CRM_KEY_NOTIFY_REQ_FMT, digest);
    if (!r)
        return CRMCTL_REDIS;
    int rc = 1;
    /* The value becomes part of a key: only a notification number. */
    if (r->type == REDIS_REPLY_STRING && s_is_notification(r->str)) {
        snprintf(n, size, "%s", r->str);
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

/* One field of a hash shown by s_show: in text "label  value", in json
   "name": a string, a number (INT, TIME: the ms) or null. */
typedef enum { S_STR, S_INT, S_TIME } s_kind_t;

typedef struct {
    const char *name;
    const char *label;
    s_kind_t kind;
} s_field_t;

/* The json members written so far, to place the commas. */
typedef struct {
    crm_table_fmt_t fmt;
    int members;
} s_doc_t;

static void s_key(s_doc_t *d, const char *key)
{
    if (d->members++)
        fputc(',', stdout);
    crm_table_json_str(stdout, key);
    fputc(':', stdout);
}

static void s_put_str(s_doc_t *d, const char *key, const char *label, const char *v)
{
    if (v && !*v)
        v = NULL;
    if (d->fmt == CRM_TABLE_JSON) {
        s_key(d, key);
        crm_table_json_str(stdout, v);
    } else {
        printf("%-16s %s\n", label, v ? v : "-");
    }
}

static void s_put_field(s_doc_t *d, const redisReply *h, const s_field_t *f)
{
    const char *v = crm_reply_field(h, f->name);
    if (f->kind == S_STR || !v || !*v) {
        s_put_str(d, f->name, f->label, v);
        return;
    }
    if (d->fmt == CRM_TABLE_JSON) {
        s_key(d, f->name);
        printf("%lld", atoll(v));
    } else if (f->kind == S_TIME) {
        char t[40];
        printf("%-16s %s\n", f->label, crmctl_time(h, f->name, t, sizeof t));
    } else {
        printf("%-16s %s\n", f->label, v);
    }
}

/* ------------------------------------------------------------ notify show */

static const s_field_t s_notify_fields[] = {
    {"request_id", "request id", S_STR},
    {"channel", "channel", S_STR},
    {"class", "class", S_STR},
    {"recipient", "recipient", S_STR},
    {"recipient_id", "recipient id", S_STR},
    {"to", "to", S_STR},
    {"template", "template", S_STR},
    {"code", "gateway template", S_STR},
    {"customer_id", "customer", S_STR},
    {"dealer_id", "dealer", S_STR},
    {"state", "state", S_STR},
    {"reason", "reason", S_STR},
    {"attempts", "attempts", S_INT},
    {"resent", "resent", S_INT},
    {"last_code", "last code", S_STR},
    {"last_error", "last error", S_STR},
    {"provider_id", "provider id", S_STR},
    {"created_ms", "created", S_TIME},
    {"not_before", "not before", S_TIME},
    {"not_after", "not after", S_TIME},
    {"next_ms", "next look", S_TIME},
    {"sent_ms", "sent", S_TIME},
    {"delivered_ms", "delivered", S_TIME},
    {"updated_ms", "updated", S_TIME},
    {"sign", "sign", S_STR},
    {"params", "params", S_STR},
    {"subject", "subject", S_STR},
    {"text", "text", S_STR},
};

static void s_notify_log(s_doc_t *d, const redisReply *log)
{
    size_t n = log && log->type == REDIS_REPLY_ARRAY ? log->elements : 0;
    if (d->fmt == CRM_TABLE_JSON) {
        s_key(d, "log");
        fputc('[', stdout);
    } else {
        printf("log (oldest first):\n");
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = log->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        const redisReply *kv = e->element[1];
        if (d->fmt == CRM_TABLE_JSON) {
            s_doc_t entry = {.fmt = CRM_TABLE_JSON};
            printf("%s{", i ? "," : "");
            s_put_str(&entry, "entry", NULL, e->element[0]->str);
            static const s_field_t f[] = {{"at", "", S_TIME},
                                          {"state", "", S_STR},
                                          {"reason", "", S_STR},
                                          {"code", "", S_STR},
                                          {"attempt", "", S_INT}};
            for (size_t k = 0; k < sizeof f / sizeof *f; k++)
                s_put_field(&entry, kv, &f[k]);
            fputc('}', stdout);
        } else {
            char at[40];
            printf("  %s  %-11s %-16s code %-8s attempt %s\n", crmctl_time(kv, "at", at, sizeof at),
                   crmctl_or(kv, "state"), crmctl_or(kv, "reason"), crmctl_or(kv, "code"),
                   crmctl_or(kv, "attempt"));
        }
    }
    if (d->fmt == CRM_TABLE_JSON)
        fputc(']', stdout);
    else if (!n)
        printf("  (none)\n");
}

static int s_notify_show(crmctl_t *ctl, const char *id)
{
    crm_table_fmt_t fmt;
    if (s_fmt(ctl, "notify show", &fmt) != 0)
        return CRMCTL_USAGE;
    if (fmt == CRM_TABLE_CSV) {
        fprintf(stderr, "crmctl notify show: --csv is for lists (notify dlq list); use --json\n");
        return CRMCTL_USAGE;
    }
    if (!crm_id_valid(CRM_ID_KEY, id)) {
        fprintf(stderr, "crmctl notify show: %s is neither a notification (N12) nor a request id\n",
                id);
        return CRMCTL_USAGE;
    }
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    char n[24];
    int rc = s_resolve_notification(store, id, n, sizeof n);
    if (rc == 1) {
        fprintf(
            stderr,
            "crmctl notify show: no notification %s (neither a number nor a request id known)\n",
            id);
        return CRMCTL_NO;
    }
    if (rc != 0)
        return rc;
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_NOTIFY_FMT, n);
    redisReply *log = h ? crm_store_cmd(store, "XRANGE " CRM_KEY_NOTIFY_LOG_FMT " - +", n) : NULL;
    if (!h || !log) {
        freeReplyObject(h);
        return CRMCTL_REDIS;
    }
    if (h->type != REDIS_REPLY_ARRAY || !h->elements) {
        fprintf(stderr, "crmctl notify show: no notification %s\n", n);
        freeReplyObject(log);
        freeReplyObject(h);
        return CRMCTL_NO;
    }
    s_doc_t d = {.fmt = fmt};
    if (fmt == CRM_TABLE_JSON)
        fputc('{', stdout);
    s_put_str(&d, "notification", "notification", n);
    for (size_t i = 0; i < sizeof s_notify_fields / sizeof *s_notify_fields; i++)
        s_put_field(&d, h, &s_notify_fields[i]);
    s_notify_log(&d, log);
    if (fmt == CRM_TABLE_JSON)
        printf("}\n");
    freeReplyObject(log);
    freeReplyObject(h);
    return CRMCTL_OK;
}

/* ------------------------------------------------------------ notify dlq */

static const crm_col_t s_dlq_cols[] = {
    {"entry", "entry", CRM_COL_ID},
    {"at", "at (China)", CRM_COL_TEXT},
    {"notification", "notification", CRM_COL_ID},
    {"request_id", "request id", CRM_COL_ID},
    {"channel", "channel", CRM_COL_TEXT},
    {"reason", "reason", CRM_COL_TEXT},
    {"code", "code", CRM_COL_TEXT},
    {"attempts", "attempts", CRM_COL_INT},
    {"state", "state", CRM_COL_TEXT},
    {"retried_at", "retried (China)", CRM_COL_TEXT},
    {"message", "message", CRM_COL_TEXT},
};

static int s_dlq_list(crmctl_t *ctl)
{
    crm_table_fmt_t fmt;
    if (s_fmt(ctl, "notify dlq list", &fmt) != 0)
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *r = crm_store_cmd(store, "XREVRANGE " CRM_KEY_NOTIFY_DLQ " + - COUNT %lld",
                                  (long long) crmctl_i64(ctl, "count"));
    redisReply *states = r ? crm_store_cmd(store, "HGETALL " CRM_KEY_NOTIFY_DLQ_STATE) : NULL;
    if (!r || !states) {
        freeReplyObject(r);
        return CRMCTL_REDIS;
    }
    crm_table_t *t = crm_table_new(stdout, fmt, s_dlq_cols, sizeof s_dlq_cols / sizeof *s_dlq_cols,
                                   0);
    size_t shown = 0;
    for (size_t i = 0; t && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        const redisReply *kv = e->element[1];
        /* crm:notify:dlq:state: notification -> retried:<ms>, its latest
           retry; an entry older than that retry was retried */
        const char *nid = crm_reply_field(kv, "notification");
        const char *st = nid ? crm_reply_field(states, nid) : NULL;
        const char *eat = crm_reply_field(kv, "at");
        char at[40], retried[40] = "";
        crmctl_time(kv, "at", at, sizeof at);
        if (st && !strncmp(st, "retried:", 8) && (!eat || atoll(st + 8) >= atoll(eat)))
            crm_format_cst(atoll(st + 8), retried, sizeof retried);
        else
            st = NULL;
        crm_table_text(t, e->element[0]->str);
        crm_table_text(t, crm_reply_field(kv, "at") ? at : NULL);
        crm_table_text(t, crm_reply_field(kv, "notification"));
        crm_table_text(t, crm_reply_field(kv, "request_id"));
        crm_table_text(t, crm_reply_field(kv, "channel"));
        crm_table_text(t, crm_reply_field(kv, "reason"));
        crm_table_text(t, crm_reply_field(kv, "code"));
        const char *attempts = crm_reply_field(kv, "attempts");
        if (attempts && *attempts)
            crm_table_int(t, atoll(attempts));
        else
            crm_table_text(t, NULL);
        crm_table_text(t, !st ? "dead" : *retried ? "retried" : st);
        crm_table_text(t, *retried ? retried : NULL);
        crm_table_text(t, crm_reply_field(kv, "message"));
        crm_table_end_row(t);
        shown++;
    }
    int rc = t && crm_table_finish(&t) == 0 ? CRMCTL_OK : CRMCTL_NO;
    if (rc == CRMCTL_OK && fmt == CRM_TABLE_TEXT)
        printf("# %zu dead letter%s, newest first\n", shown, shown == 1 ? "" : "s");
    freeReplyObject(states);
    freeReplyObject(r);
    return rc;
}

/* The request id behind `id` (a dlq entry id, a notification number or a
   request id itself) into `out`. 0; 1 after a message when none; or
   CRMCTL_REDIS. */
static int s_dlq_request_id(crm_store_t *store, const char *id, char *out, size_t size)
{
    redisReply *r = NULL;
    const char *rid = NULL;
    if (crm_id_entry_valid(id)) {
        r = crm_store_cmd(store, "XRANGE " CRM_KEY_NOTIFY_DLQ " %s %s", id, id);
        if (!r)
            return CRMCTL_REDIS;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2)
            rid = crm_reply_field(r->element[0]->element[1], "request_id");
        if (!rid) {
            fprintf(stderr, "crmctl notify dlq retry: no entry %s in " CRM_KEY_NOTIFY_DLQ "\n", id);
            freeReplyObject(r);
            return 1;
        }
    } else {
        char n[24];
        int rc = s_resolve_notification(store, id, n, sizeof n);
        if (rc == CRMCTL_REDIS)
            return rc;
        if (rc != 0) {
            fprintf(stderr,
                    "crmctl notify dlq retry: no notification %s (entry id, N12 or request id)\n",
                    id);
            return 1;
        }
        r = crm_store_cmd(store, "HGET " CRM_KEY_NOTIFY_FMT " request_id", n);
        if (!r)
            return CRMCTL_REDIS;
        rid = r->type == REDIS_REPLY_STRING ? r->str : NULL;
        if (!rid) {
            fprintf(stderr, "crmctl notify dlq retry: notification %s has no request id\n", n);
            freeReplyObject(r);
            return 1;
        }
    }
    int rc = 0;
    if (crm_id_valid(CRM_ID_KEY, rid))
        snprintf(out, size, "%s", rid);
    else {
        fprintf(stderr, "crmctl notify dlq retry: the request id kept for %s is not one\n", id);
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

static int s_dlq_retry(crmctl_t *ctl, const char *id)
{
    if (!crm_id_valid(CRM_ID_KEY, id)) {
        fprintf(stderr,
                "crmctl notify dlq retry: %s is not an entry id, a notification or a request id\n",
                id);
        return CRMCTL_USAGE;
    }
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    char rid[CRM_ID_KEY_MAX + 1];
    int rc = s_dlq_request_id(store, id, rid, sizeof rid);
    if (rc != 0)
        return rc == 1 ? CRMCTL_NO : rc;
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_notify_retry);
    CRM_SET_STR(&req, notify_retry, request_id, rid);
    rc = crmctl_request(ctl, "notifier", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    if (ans.type == CRM_T_reply && ans.body.reply.ok)
        printf("%s: sent again as new by crm-notifier (request %s)\n", id, rid);
    rc = crmctl_reply(&ans, "notify dlq retry");
    crm_msg_clear(&ans);
    return rc;
}

int crmctl_notify(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (!strcmp(sub, "show") && ctl->argc == 3)
        return s_notify_show(ctl, ctl->argv[2]);
    if (!strcmp(sub, "dlq")) {
        const char *what = ctl->argc > 2 ? ctl->argv[2] : "list";
        if (!strcmp(what, "list") && ctl->argc <= 3)
            return s_dlq_list(ctl);
        if (!strcmp(what, "retry") && ctl->argc == 4)
            return s_dlq_retry(ctl, ctl->argv[3]);
    }
    fprintf(
        stderr,
        "crmctl notify: show ID [--json] | dlq list [--count K] [--json|--csv] | dlq retry ID\n"
        "               (ID: a notification N12, a request id; for retry also a dlq entry id)\n");
    return CRMCTL_USAGE;
}

/* ------------------------------------------------------------ consent */

static const char *const s_channels[] = {"sms", "email", "call"};

static bool s_one_of(const char *v, const char *const *words, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (!strcmp(v, words[i]))
            return true;
    return false;
}

static int s_consent_set(crmctl_t *ctl, const char *c)
{
    static const char *const states[] = {"opt_in", "opt_out"};
    const char *channel = crm_opt(ctl->opts, "channel"), *state = crm_opt(ctl->opts, "state");
    const char *source = crm_opt(ctl->opts, "source"), *text = crm_opt(ctl->opts, "text");
    const char *at = crm_opt(ctl->opts, "at");
    if (!crmctl_id_ok(c, "customer"))
        return CRMCTL_USAGE;
    if (!s_one_of(channel, s_channels, 3)) {
        fprintf(stderr, "crmctl consent set: --channel sms, email or call is needed\n");
        return CRMCTL_USAGE;
    }
    if (!s_one_of(state, states, 2)) {
        fprintf(stderr, "crmctl consent set: --state opt_in or opt_out is needed\n");
        return CRMCTL_USAGE;
    }
    if (!source || !*source) {
        fprintf(stderr,
                "crmctl consent set: --source is needed (website, showroom, hotline, sms_reply, "
                "unsubscribe_link, crm ...)\n");
        return CRMCTL_USAGE;
    }
    int64_t at_ms = 0;
    if (at && crm_leadin_parse_datetime(at, &at_ms) != 0) {
        fprintf(stderr,
                "crmctl consent set: --at: expected \"YYYY-MM-DD HH:MM\" (China time), got '%s'\n",
                at);
        return CRMCTL_USAGE;
    }
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_consent_set);
    CRM_SET_STR(&req, consent_set, customer_id, c);
    CRM_SET_STR(&req, consent_set, channel, channel);
    CRM_SET_STR(&req, consent_set, state, state);
    CRM_SET_STR(&req, consent_set, source, source);
    if (text)
        CRM_SET_STR(&req, consent_set, text, text);
    if (at)
        CRM_SET_I64(&req, consent_set, at, at_ms);
    int rc = crmctl_request(ctl, "notifier", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    if (ans.type == CRM_T_reply && ans.body.reply.ok)
        printf("%s: %s %s recorded in the consent ledger\n", c, channel, state);
    rc = crmctl_reply(&ans, "consent set");
    crm_msg_clear(&ans);
    return rc;
}

/* Whose consent `c` names: itself (a customer id), or for a mobile
   tel:<mobile> and the customer crm:idx:mobile:<mobile> names. The number
   of subjects (0 after a message), or -1 when Redis failed. */
static int s_consent_subjects(crm_store_t *store, const char *c, char subj[2][64])
{
    if (!s_is_mobile(c)) {
        if (!crmctl_id_ok(c, "customer"))
            return 0;
        snprintf(subj[0], 64, "%s", c);
        return 1;
    }
    snprintf(subj[0], 64, "tel:%s", c);
    redisReply *r = crm_store_cmd(store, "GET " CRM_KEY_IDX_MOBILE_FMT, c);
    if (!r)
        return -1;
    int n = 1;
    if (r->type == REDIS_REPLY_STRING && crm_id_valid(CRM_ID_NAME, r->str)) {
        snprintf(subj[1], 64, "%s", r->str);
        n = 2;
    }
    freeReplyObject(r);
    return n;
}

static const crm_col_t s_consent_cols[] = {
    {"subject", "subject", CRM_COL_ID},    {"channel", "channel", CRM_COL_TEXT},
    {"state", "state", CRM_COL_TEXT},      {"at", "since (China)", CRM_COL_TEXT},
    {"source", "source", CRM_COL_TEXT},
};

static const crm_col_t s_ledger_cols[] = {
    {"subject", "subject", CRM_COL_ID}, {"entry", "entry", CRM_COL_ID},
    {"at", "at (China)", CRM_COL_TEXT}, {"channel", "channel", CRM_COL_TEXT},
    {"state", "state", CRM_COL_TEXT},   {"source", "source", CRM_COL_TEXT},
    {"by", "by", CRM_COL_TEXT},         {"text", "text", CRM_COL_TEXT},
};

/* One subject's current state per channel: rows of `t`; the number of
   channels without a record, or -1 when Redis failed. */
static int s_consent_rows(crm_store_t *store, const char *subj, crm_table_t *t)
{
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_CONSENT_FMT, subj);
    if (!h)
        return -1;
    int none = 0;
    for (size_t i = 0; i < 3; i++) {
        const char *v = crm_reply_field(h, s_channels[i]);
        char state[16] = "no record", at[40] = "", entry[64] = "";
        const char *bar = v ? strchr(v, '|') : NULL, *bar2 = bar ? strchr(bar + 1, '|') : NULL;
        if (bar) {
            snprintf(state, sizeof state, "%.*s", (int) (bar - v), v);
            crm_format_cst(atoll(bar + 1), at, sizeof at);
            snprintf(entry, sizeof entry, "%s", bar2 ? bar2 + 1 : "");
        } else if (v) {
            snprintf(state, sizeof state, "%s", v); /* not of the documented form: as it is */
        } else {
            none++;
        }
        crm_table_text(t, subj);
        crm_table_text(t, s_channels[i]);
        crm_table_text(t, state);
        crm_table_text(t, *at ? at : NULL);
        crm_table_text(t, *entry ? entry : NULL);
        crm_table_end_row(t);
    }
    freeReplyObject(h);
    return none;
}

static int s_ledger_rows(crm_store_t *store, const char *subj, crm_table_t *t, size_t *n)
{
    redisReply *r = crm_store_cmd(store, "XRANGE " CRM_KEY_CONSENT_LEDGER_FMT " - +", subj);
    if (!r)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        const redisReply *kv = e->element[1];
        char at[40];
        crmctl_time(kv, "at", at, sizeof at);
        crm_table_text(t, subj);
        crm_table_text(t, e->element[0]->str);
        crm_table_text(t, crm_reply_field(kv, "at") ? at : NULL);
        crm_table_text(t, crm_reply_field(kv, "channel"));
        crm_table_text(t, crm_reply_field(kv, "state"));
        crm_table_text(t, crm_reply_field(kv, "source"));
        crm_table_text(t, crm_reply_field(kv, "by"));
        crm_table_text(t, crm_reply_field(kv, "text"));
        crm_table_end_row(t);
        (*n)++;
    }
    freeReplyObject(r);
    return 0;
}

static int s_consent_read(crmctl_t *ctl, const char *c, bool history)
{
    crm_table_fmt_t fmt;
    if (s_fmt(ctl, history ? "consent history" : "consent show", &fmt) != 0)
        return CRMCTL_USAGE;
    if (!s_is_mobile(c) && !crmctl_id_ok(c, "customer"))
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    char subj[2][64];
    int ns = s_consent_subjects(store, c, subj);
    if (ns < 0)
        return CRMCTL_REDIS;
    if (ns == 0)
        return CRMCTL_USAGE;
    const crm_col_t *cols = history ? s_ledger_cols : s_consent_cols;
    size_t ncols = history ? sizeof s_ledger_cols / sizeof *s_ledger_cols
                           : sizeof s_consent_cols / sizeof *s_consent_cols;
    if (fmt == CRM_TABLE_TEXT && ns == 2)
        printf("# %s is the mobile of customer %s: both shown\n", c, subj[1]);
    crm_table_t *t = crm_table_new(stdout, fmt, cols, ncols, 0);
    int none = 0, rc = t ? CRMCTL_OK : CRMCTL_NO;
    size_t entries = 0;
    for (int i = 0; rc == CRMCTL_OK && i < ns; i++) {
        int k = history ? s_ledger_rows(store, subj[i], t, &entries)
                        : s_consent_rows(store, subj[i], t);
        if (k < 0)
            rc = CRMCTL_REDIS;
        else
            none += k;
    }
    /* Printed even after a Redis error, so json stays one document. */
    if (crm_table_finish(&t) != 0 && rc == CRMCTL_OK)
        rc = CRMCTL_NO;
    if (rc == CRMCTL_OK && fmt == CRM_TABLE_TEXT) {
        if (history)
            printf("# %zu ledger entr%s, oldest first\n", entries, entries == 1 ? "y" : "ies");
        else if (none)
            printf("# no record: the customer never said; marketing is not sent on that channel, "
                   "transactional messages are\n");
    }
    return rc;
}

int crmctl_consent(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    const char *c = ctl->argc == 3 ? ctl->argv[2] : NULL;
    if (c && !strcmp(sub, "set"))
        return s_consent_set(ctl, c);
    if (c && (!strcmp(sub, "show") || !strcmp(sub, "history")))
        return s_consent_read(ctl, c, !strcmp(sub, "history"));
    fprintf(stderr,
            "crmctl consent: set C --channel sms|email|call --state opt_in|opt_out --source S "
            "[--text T]\n"
            "                  [--at \"YYYY-MM-DD HH:MM\"] | show C | history C [--json|--csv]\n"
            "                (C: a customer id or, for show and history, an 11-digit mobile)\n");
    return CRMCTL_USAGE;
}

/* ------------------------------------------------------------ webhook */

static int s_webhook_set(crmctl_t *ctl, const char *d)
{
    if (!crmctl_id_ok(d, "dealer"))
        return CRMCTL_USAGE;
    const char *secret = crm_opt(ctl->opts, "secret");
    if (secret && strncmp(secret, "whsec_", 6)) {
        fprintf(stderr, "crmctl webhook set: --secret: expected whsec_... (leave it out with "
                        "--rotate to have one "
                        "made)\n");
        return CRMCTL_USAGE;
    }
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_webhook_set);
    CRM_SET_STR(&req, webhook_set, dealer_id, d);
    CRM_SET_STR(&req, webhook_set, url, crm_opt(ctl->opts, "url"));
    CRM_SET_STR(&req, webhook_set, secret, secret);
    CRM_SET_STR(&req, webhook_set, contact_email, crm_opt(ctl->opts, "contact-email"));
    CRM_SET_STR(&req, webhook_set, contact_mobile, crm_opt(ctl->opts, "contact-mobile"));
    /* Only set when given: absent means "leave as it is". */
    if (crm_opt(ctl->opts, "rotate"))
        CRM_SET_BOOL(&req, webhook_set, rotate, true);
    if (crm_opt(ctl->opts, "enable"))
        CRM_SET_BOOL(&req, webhook_set, enable, true);
    int rc = crmctl_request(ctl, "notifier", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    bool made = false;
    if (ans.type == CRM_T_reply && ans.body.reply.ok) {
        printf("webhook %s: set\n", d);
        for (size_t i = 0; i < ans.body.reply.fields.n; i++)
            made |= !strncmp(ans.body.reply.fields.v[i], "secret=", 7);
    }
    rc = crmctl_reply(&ans, "webhook set");
    if (made)
        printf(
            "# the secret is shown this once: give it to the dealer now (webhook show masks it)\n");
    crm_msg_clear(&ans);
    return rc;
}

/* "whsec_abcd…": the prefix and the first 4 characters after it, never
   more (a short or foreign value shows as "…" alone). */
static void s_mask_secret(const char *s, size_t len, char *out, size_t size)
{
    if (len >= 6 + 8 && !strncmp(s, "whsec_", 6))
        snprintf(out, size, "whsec_%.4s…", s + 6);
    else
        snprintf(out, size, "…");
}

static const s_field_t s_webhook_fields[] = {
    {"url", "url", S_STR},
    {"state", "state", S_STR},
    {"failing_since", "failing since", S_TIME},
    {"disabled_ms", "disabled", S_TIME},
    {"disabled_reason", "disabled reason", S_STR},
    {"contact_email", "contact e-mail", S_STR},
    {"contact_mobile", "contact mobile", S_STR},
    {"prev_until", "previous until", S_TIME},
    {"updated_ms", "updated", S_TIME},
};

static int s_webhook_show(crmctl_t *ctl, const char *d)
{
    crm_table_fmt_t fmt;
    if (s_fmt(ctl, "webhook show", &fmt) != 0)
        return CRMCTL_USAGE;
    if (fmt == CRM_TABLE_CSV) {
        fprintf(stderr, "crmctl webhook show: --csv is for lists; use --json\n");
        return CRMCTL_USAGE;
    }
    if (!crmctl_id_ok(d, "dealer"))
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_WEBHOOK_FMT, d);
    if (!h)
        return CRMCTL_REDIS;
    if (h->type != REDIS_REPLY_ARRAY || !h->elements) {
        fprintf(stderr,
                "crmctl webhook show: dealer %s has no webhook (crmctl webhook set %s --url ...)\n",
                d, d);
        freeReplyObject(h);
        return CRMCTL_NO;
    }
    s_doc_t doc = {.fmt = fmt};
    if (fmt == CRM_TABLE_JSON)
        fputc('{', stdout);
    s_put_str(&doc, "dealer_id", "dealer", d);
    for (size_t i = 0; i < sizeof s_webhook_fields / sizeof *s_webhook_fields; i++)
        s_put_field(&doc, h, &s_webhook_fields[i]);
    /* Newest first, space-separated; each masked. */
    const char *secrets = crm_reply_field_or(h, "secrets", "");
    if (fmt == CRM_TABLE_JSON) {
        s_key(&doc, "secrets");
        fputc('[', stdout);
    }
    int k = 0;
    for (const char *p = secrets; *p;) {
        size_t len = strcspn(p, " ");
        if (len) {
            char m[32];
            s_mask_secret(p, len, m, sizeof m);
            if (fmt == CRM_TABLE_JSON) {
                if (k)
                    fputc(',', stdout);
                crm_table_json_str(stdout, m);
            } else {
                printf("%-16s %s%s\n", k ? "secret (older)" : "secret", m, k ? "" : " (signs now)");
            }
            k++;
        }
        p += len;
        p += *p == ' ';
    }
    if (fmt == CRM_TABLE_JSON)
        printf("]}\n");
    else if (!k)
        printf("%-16s -\n", "secret");
    freeReplyObject(h);
    return CRMCTL_OK;
}

int crmctl_webhook(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    const char *d = ctl->argc == 3 ? ctl->argv[2] : NULL;
    if (d && !strcmp(sub, "set"))
        return s_webhook_set(ctl, d);
    if (d && !strcmp(sub, "show"))
        return s_webhook_show(ctl, d);
    fprintf(stderr,
            "crmctl webhook: set D [--url U] [--secret whsec_...] [--rotate] [--contact-email E]\n"
            "                  [--contact-mobile M] [--enable] | show D [--json]\n");
    return CRMCTL_USAGE;
}
