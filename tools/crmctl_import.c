/*  crmctl customer|service|followup import FILE.csv --dealer D: a dealer's
 *  export sent row by row to crm-dispatcher's control endpoint, the CRM
 *  department acting for the dealer (body dealer_id = D). The file is read
 *  by crm_leadin's record reader and sent by crm_import, as the lead
 *  import: progress, summary, rejects file, idempotent per row (record_id:
 *  the row's own id column or its content key), resumable after a crash
 *  by running it again. */
#include <stdlib.h>
#include <string.h>

#include "crm_import.h"
#include "crm_leadin.h"
#include "crmctl.h"

typedef struct {
    const char *dealer;
} s_ctx_t;

static const char *s_record_id(const crm_msg_t *m)
{
    switch (m->type) {
    case CRM_T_customer_file: return m->body.customer_file.record_id;
    case CRM_T_service_record: return m->body.service_record.record_id;
    case CRM_T_followup_record: return m->body.followup_record.record_id;
    default: return NULL;
    }
}

static int s_prepare(void *arg, crm_msg_t *m, char *match, char *dedupe)
{
    s_ctx_t *ctx = arg;
    crm_err_t e;
    if (crm_msg_set_text(m, "dealer_id", ctx->dealer, &e) != 0)
        return -1;
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "crmctl");
    snprintf(match, CRM_IMPORT_KEY_SZ, "%s", m->id);
    snprintf(dedupe, CRM_IMPORT_KEY_SZ, "%s", s_record_id(m) ? s_record_id(m) : m->id);
    return 0;
}

/* reply {ok, code, message, errors[], fields[] "customer_id=C1",
   "created=1|0", "finding=field|code|message" ...}, corr = the request. */
static void s_answer(void *arg, const crm_msg_t *a, crm_import_result_t *res)
{
    (void) arg;
    if (a->type != CRM_T_reply || !a->corr[0])
        return;
    const crm_body_reply_t *r = &a->body.reply;
    snprintf(res->key, sizeof res->key, "%s", a->corr);
    if (r->ok) {
        res->outcome = CRM_IMPORT_STORED;
        for (size_t i = 0; i < r->fields.n; i++) {
            res->flag |= !strcmp(r->fields.v[i], "created=1");
            res->nfindings += !strncmp(r->fields.v[i], "finding=", 8);
        }
        return;
    }
    if (crm_import_retry_code(r->code)) {
        res->outcome = CRM_IMPORT_RETRY;
        return;
    }
    res->outcome = CRM_IMPORT_REFUSED;
    crm_import_why(&r->errors, r->code, r->message, res->why, sizeof res->why);
}

int crmctl_records_import(crmctl_t *ctl, crm_type_t type)
{
    const char *kind = ctl->argv[0];
    if (ctl->argc != 3) {
        fprintf(stderr, "crmctl %s import FILE.csv --dealer D [--encoding utf-8|gbk|gb18030]\n",
                kind);
        return CRMCTL_USAGE;
    }
    const char *path = ctl->argv[2], *dealer = crm_opt(ctl->opts, "dealer");
    if (!dealer || !*dealer) {
        fprintf(stderr, "crmctl %s import: --dealer D is needed (the dealer the file is from)\n",
                kind);
        return CRMCTL_USAGE;
    }
    if (!crmctl_id_ok(dealer, "--dealer"))
        return CRMCTL_USAGE;
    char err[512];
    const char *enc = crm_opt(ctl->opts, "encoding");
    crm_csv_reader_t *r = crm_csv_open_records(path, type, enc && *enc ? enc : NULL, err, sizeof err);
    if (!r) {
        fprintf(stderr, "crmctl: %s: %s\n", path, err);
        return CRMCTL_NO;
    }
    for (const char *const *u = crm_csv_unknown_columns(r); u && *u; u++)
        fprintf(stderr, "crmctl: column '%s' is not a %s field and is not imported\n", *u,
                crm_type_name(type));
    const char *endpoint = crm_opt(ctl->opts, "dispatcher-control");
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock || zsock_connect(sock, "%s", endpoint) < 0) {
        fprintf(stderr, "crmctl: bad endpoint %s (--dispatcher-control)\n", endpoint);
        crm_csv_close(&r);
        zsock_destroy(&sock);
        return CRMCTL_USAGE;
    }
    zsock_set_linger(sock, 0);
    char peer[300];
    snprintf(peer, sizeof peer, "crmctl: crm-dispatcher at %s", endpoint);
    s_ctx_t ctx = {.dealer = dealer};
    crm_import_conf_t conf = {.sock = sock,
                              .delimiter = true,
                              .peer = peer,
                              .what = crm_type_name(type),
                              .timeout_ms = (int) crmctl_i64(ctl, "timeout-ms"),
                              .tries = (int) crmctl_i64(ctl, "tries"),
                              .prepare = s_prepare,
                              .answer = s_answer,
                              .arg = &ctx};
    crm_import_stats_t st;
    printf("importing %s (%s) as %s records of dealer %s\n", path, crm_csv_encoding(r),
           crm_type_name(type), dealer);
    crm_import_run(r, path, &conf, &st);
    char created[64] = "";
    if (type == CRM_T_customer_file)
        snprintf(created, sizeof created, ", %ld new customers", st.flagged);
    printf("%ld rows in %.2f s: %ld stored (%ld with findings%s), %ld refused, %ld unreadable, "
           "%ld duplicate rows, %ld not confirmed\n",
           st.rows, st.secs, st.stored, st.with_findings, created, st.refused, st.unreadable,
           st.duplicates, st.unconfirmed);
    if (st.rejects)
        printf("refused and unreadable rows, with the reason in the last column: %s "
               "(fix them and import that file)\n",
               st.rejects_path);
    zsock_destroy(&sock);
    crm_csv_close(&r);
    if (st.unconfirmed)
        return CRMCTL_UNREACHABLE;
    return st.refused || st.unreadable ? CRMCTL_NO : CRMCTL_OK;
}
