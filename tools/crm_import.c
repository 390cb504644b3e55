/*  crm_import: a CSV file sent row by row to a service. See crm_import.h. */
#include "crm_import.h"
#include "crm_id.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_store.h"

#define S_WINDOW 512
#define S_SHOWN_MAX 20
#define S_RETRY_FIRST_US 200000LL /* a "not now" answer: resent after 0.2 s, doubling */
#define S_RETRY_MAX_US 5000000LL

typedef struct {
    long row;
    char match[CRM_IMPORT_KEY_SZ];
    char *frame;
    size_t len;
    int64_t due_us; /* 0: send now; else when it is sent again */
    int64_t pause_us;
    int tries;
    char **cells; /* for the rejects file */
    size_t ncells;
} s_pending_t;

typedef struct {
    crm_import_stats_t *st;
    FILE *rejects;
    bool rejects_failed; /* the rejects file could not be made */
    const char *const *header;
    int shown;
} s_run_t;

void crm_import_csv_cell(FILE *f, const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void s_reject_row(s_run_t *run, long row, char **cells, size_t n, const char *why)
{
    if (!run->rejects && !run->rejects_failed) {
        run->rejects = fopen(run->st->rejects_path, "w");
        if (!run->rejects) {
            /* every refusal is then listed here, none only in a file */
            run->rejects_failed = true;
            fprintf(stderr, "crm import: cannot write %s; every refused row is listed below\n",
                    run->st->rejects_path);
        } else {
            run->st->rejects = true;
            for (size_t i = 0; run->header[i]; i++) {
                crm_import_csv_cell(run->rejects, run->header[i]);
                fputc(',', run->rejects);
            }
            fputs("error\n", run->rejects);
        }
    }
    if (run->rejects_failed || run->shown++ < S_SHOWN_MAX)
        printf("  row %ld: %s\n", row, why);
    else if (run->shown == S_SHOWN_MAX + 1)
        printf("  ... (all in %s)\n", run->st->rejects_path);
    if (!run->rejects)
        return;
    size_t cols = 0;
    while (run->header[cols])
        cols++;
    /* the row as read, every cell (one with more cells than the header
       keeps them all), then why */
    for (size_t i = 0; i < (n > cols ? n : cols); i++) {
        crm_import_csv_cell(run->rejects, i < n && cells[i] ? cells[i] : "");
        fputc(',', run->rejects);
    }
    crm_import_csv_cell(run->rejects, why);
    fputc('\n', run->rejects);
}

static char **s_copy_cells(const char *const *cells, size_t n)
{
    char **copy = calloc(n ? n : 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++)
        copy[i] = strdup(cells[i] ? cells[i] : "");
    return copy;
}

static void s_free_cells(char **cells, size_t n)
{
    for (size_t i = 0; cells && i < n; i++)
        free(cells[i]);
    free(cells);
}

/* zlistx destructors take the address of the item. */
static void s_free_pending(void **item)
{
    s_pending_t *p = *item;
    *item = NULL;
    if (!p)
        return;
    s_free_cells(p->cells, p->ncells);
    free(p->frame);
    free(p);
}

static void s_free_str(void **item)
{
    free(*item);
    *item = NULL;
}

static void s_progress(double share, long rows, bool tty, int *last_decile)
{
    if (tty) {
        int width = 30, done = (int) (share * width);
        fprintf(stderr, "\rimporting [%.*s%*s] %3d%%  %ld rows", done, "##############################",
                width - done, "", (int) (share * 100), rows);
    } else if ((int) (share * 10) > *last_decile) {
        *last_decile = (int) (share * 10);
        fprintf(stderr, "importing: %d%% (%ld rows)\n", *last_decile * 10, rows);
    }
}

/* pending: match key -> handle in `order`, the list (in row order) that
   owns the rows. */
static void s_on_answer(const crm_import_conf_t *conf, s_run_t *run, zhashx_t *pending,
                        zlistx_t *order, zframe_t *fr)
{
    crm_msg_t a;
    crm_err_t err;
    if (crm_msg_decode(zframe_data(fr), zframe_size(fr), &a, &err) != 0)
        return;
    crm_import_result_t res = {.outcome = CRM_IMPORT_IGNORE};
    conf->answer(conf->arg, &a, &res);
    crm_msg_clear(&a);
    void *handle = res.outcome != CRM_IMPORT_IGNORE ? zhashx_lookup(pending, res.key) : NULL;
    s_pending_t *p = handle ? zlistx_handle_item(handle) : NULL;
    if (!p)
        return; /* a late answer to a resend already counted */
    crm_import_stats_t *st = run->st;
    switch (res.outcome) {
    case CRM_IMPORT_RETRY:
        p->pause_us = p->pause_us ? p->pause_us * 2 : S_RETRY_FIRST_US;
        if (p->pause_us > S_RETRY_MAX_US)
            p->pause_us = S_RETRY_MAX_US;
        p->due_us = crm_mono_us() + p->pause_us;
        return;
    case CRM_IMPORT_STORED:
        st->stored++;
        st->flagged += res.flag;
        st->with_findings += res.nfindings > 0;
        break;
    default:
        st->refused++;
        crm_utf8_cut(res.why); /* the rejects file reads back as UTF-8 */
        s_reject_row(run, p->row, p->cells, p->ncells, res.why[0] ? res.why : "refused");
        break;
    }
    zhashx_delete(pending, res.key);
    zlistx_delete(order, handle);
}

/* Reads rows until the window is full or the file ends; *eof at the end. */
static void s_fill(crm_csv_reader_t *r, const crm_import_conf_t *conf, s_run_t *run,
                   zhashx_t *pending, zlistx_t *order, zhashx_t *seen, bool *eof)
{
    char err[512];
    while (!*eof && zhashx_size(pending) < S_WINDOW) {
        crm_msg_t m;
        long row = 0;
        int got = crm_csv_next(r, crm_now_ms(), &m, &row, err, sizeof err);
        if (got == 0) {
            *eof = true;
            crm_msg_clear(&m);
            return;
        }
        run->st->rows++;
        size_t n = 0;
        const char *const *cells = crm_csv_row_fields(r, &n);
        if (got < 0) {
            run->st->unreadable++;
            char **copy = s_copy_cells(cells, n);
            s_reject_row(run, row, copy, copy ? n : 0, err);
            s_free_cells(copy, copy ? n : 0);
            continue;
        }
        s_pending_t *p = calloc(1, sizeof *p);
        char dedupe[CRM_IMPORT_KEY_SZ] = "";
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        if (!p || conf->prepare(conf->arg, &m, p->match, dedupe) != 0 ||
            crm_msg_encode(&m, &buf, NULL) != 0) {
            run->st->unreadable++;
            s_reject_row(run, row, (char **) cells, n, "out of memory");
            free(p);
            msgpack_sbuffer_destroy(&buf);
            crm_msg_clear(&m);
            continue;
        }
        crm_msg_clear(&m);
        if (buf.size > CRM_FRAME_MAX) {
            /* the service would refuse it unread, without an answer */
            snprintf(err, sizeof err, "row %ld: %zu bytes as a message, over the limit of %d",
                     row, buf.size, CRM_FRAME_MAX);
            run->st->unreadable++;
            s_reject_row(run, row, (char **) cells, n, err);
            free(p);
            msgpack_sbuffer_destroy(&buf);
            continue;
        }
        if (zhashx_lookup(seen, dedupe) || zhashx_lookup(pending, p->match)) {
            run->st->duplicates++;
            free(p);
            msgpack_sbuffer_destroy(&buf);
            continue;
        }
        char rowtxt[24];
        snprintf(rowtxt, sizeof rowtxt, "%ld", row);
        zhashx_insert(seen, dedupe, rowtxt);
        p->row = row;
        p->frame = buf.data;
        p->len = buf.size;
        p->cells = s_copy_cells(cells, n);
        p->ncells = p->cells ? n : 0;
        zhashx_insert(pending, p->match, zlistx_add_end(order, p));
    }
}

int crm_import_run(crm_csv_reader_t *r, const char *path, const crm_import_conf_t *conf,
                   crm_import_stats_t *st)
{
    memset(st, 0, sizeof *st);
    int k = snprintf(st->rejects_path, sizeof st->rejects_path, "%s.rejects.csv", path);
    if (k < 0 || (size_t) k >= sizeof st->rejects_path) {
        /* a cut name could be the input itself, or another file */
        fprintf(stderr, "import: %s: path too long for its rejects file\n", path);
        return -1;
    }
    unlink(st->rejects_path);
    s_run_t run = {.st = st, .header = crm_csv_header(r)};
    zhashx_t *pending = zhashx_new();
    zlistx_t *order = zlistx_new();
    zlistx_set_destructor(order, s_free_pending);
    zhashx_t *seen = zhashx_new(); /* dedupe key -> first row */
    zhashx_set_destructor(seen, s_free_str);
    zhashx_set_duplicator(seen, (zhashx_duplicator_fn *) strdup);
    zpoller_t *poller = zpoller_new(conf->sock, NULL);
    bool tty = isatty(2), eof = false;
    int decile = -1;
    int64_t t0 = crm_mono_us();
    while (!eof || zhashx_size(pending) > 0) {
        if (zsys_interrupted) {
            st->unconfirmed = (long) zhashx_size(pending);
            fprintf(stderr, "\ninterrupted after %ld rows; %ld sent are not confirmed. Run the "
                            "same import again: rows already stored are not stored twice.\n",
                    st->rows, st->unconfirmed);
            if (!st->unconfirmed)
                st->unconfirmed = 1; /* the rest of the file was not sent */
            break;
        }
        s_fill(r, conf, &run, pending, order, seen, &eof);
        /* Send what is due: new ones, resends after a timeout or a pause. */
        int64_t now = crm_mono_us();
        for (s_pending_t *p = zlistx_first(order); p; p = zlistx_next(order)) {
            if (p->due_us && now < p->due_us)
                continue;
            if (p->tries >= conf->tries) {
                st->unconfirmed++;
                continue;
            }
            p->tries++;
            p->due_us = now + (int64_t) conf->timeout_ms * 1000;
            /* never blocking: with the far end away the queue fills, and a
               send that does not go is a lost one, sent again on its timeout */
            void *h = zsock_resolve(conf->sock);
            if (!conf->delimiter || zmq_send(h, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0)
                zmq_send(h, p->frame, p->len, ZMQ_DONTWAIT);
        }
        if (st->unconfirmed) {
            st->unconfirmed = (long) zhashx_size(pending);
            fprintf(stderr, "\n%s stopped answering; %ld rows are not confirmed. Run the same "
                            "import again: rows already stored are not stored twice.\n",
                    conf->peer, st->unconfirmed);
            break;
        }
        /* Collect answers for up to 100 ms. */
        int64_t until = crm_mono_us() + 100000;
        while (crm_mono_us() < until && zhashx_size(pending) > 0) {
            if (zpoller_wait(poller, 20) != conf->sock)
                continue;
            zmsg_t *reply;
            while ((reply = zmsg_recv_nowait(conf->sock))) {
                zframe_t *fr = zmsg_last(reply);
                if (fr)
                    s_on_answer(conf, &run, pending, order, fr);
                zmsg_destroy(&reply);
            }
            if (!eof && zhashx_size(pending) < S_WINDOW / 2)
                break;
        }
        s_progress(eof ? 1.0 : crm_csv_progress(r), st->rows, tty, &decile);
    }
    if (tty)
        fputc('\n', stderr);
    st->secs = (double) (crm_mono_us() - t0) / 1e6;
    if (run.rejects)
        fclose(run.rejects);
    zpoller_destroy(&poller);
    zhashx_destroy(&pending);
    zlistx_destroy(&order);
    zhashx_destroy(&seen);
    return st->unconfirmed ? -1 : 0;
}

void crm_import_why(const crm_strs_t *errors, const char *code, const char *message, char *why,
                    size_t whysz)
{
    if (!why || whysz == 0)
        return;
    why[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; errors && i < errors->n && used + 1 < whysz; i++) {
        const char *e = errors->v[i];
        const char *bar1 = strchr(e, '|');
        const char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
        int n;
        if (bar1 && bar2)
            n = snprintf(why + used, whysz - used, "%s%.*s: %.*s (%s)", used ? "; " : "",
                         (int) (bar1 - e), e, (int) (bar2 - bar1 - 1), bar1 + 1, bar2 + 1);
        else
            n = snprintf(why + used, whysz - used, "%s%s", used ? "; " : "", e);
        used += n > 0 ? (size_t) n : 0;
    }
    if (!why[0])
        snprintf(why, whysz, "%s: %s", code && *code ? code : "refused", message ? message : "");
    /* one line, for the summary and the rejects file's cell */
    for (char *p = why; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

bool crm_import_retry_code(const char *code)
{
    return code && (!strcmp(code, "busy") || !strcmp(code, "unavailable") ||
                    !strcmp(code, "not_certified"));
}

/* ------------------------------------------------------ dealer records */

const char *crm_import_record_id(const crm_msg_t *m)
{
    switch (m->type) {
    case CRM_T_customer_file: return m->body.customer_file.record_id;
    case CRM_T_service_record: return m->body.service_record.record_id;
    case CRM_T_followup_record: return m->body.followup_record.record_id;
    default: return NULL;
    }
}

/* The answer comes back with corr = the request's id; the row's own id
   is its record_id. */
static int s_record_prepare(void *arg, crm_msg_t *m, char *match, char *dedupe)
{
    const crm_import_records_t *how = arg;
    crm_err_t e;
    if (how->body_dealer && crm_msg_set_text(m, "dealer_id", how->dealer, &e) != 0)
        return -1;
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "%s", how->producer);
    snprintf(match, CRM_IMPORT_KEY_SZ, "%s", m->id);
    /* the whole record id, however long: its digest */
    const char *rec = crm_import_record_id(m);
    crm_id_digest_bytes(rec ? rec : m->id, strlen(rec ? rec : m->id), dedupe);
    return 0;
}

/* reply {ok, code, message, errors[], fields[] "customer_id=C1",
   "created=1|0", "finding=field|code|message" ...} on the control
   endpoint; dealer.reply {ok, code, message, customer_id, created,
   findings[], errors[]} on the gateway. */
static void s_record_answer(void *arg, const crm_msg_t *a, crm_import_result_t *res)
{
    (void) arg;
    bool ok;
    const char *code, *message;
    const crm_strs_t *errors;
    if (a->type == CRM_T_reply) {
        const crm_body_reply_t *r = &a->body.reply;
        ok = r->ok, code = r->code, message = r->message, errors = &r->errors;
        for (size_t i = 0; ok && i < r->fields.n; i++) {
            res->flag |= !strcmp(r->fields.v[i], "created=1");
            res->nfindings += !strncmp(r->fields.v[i], "finding=", 8);
        }
    } else if (a->type == CRM_T_dealer_reply) {
        const crm_body_dealer_reply_t *r = &a->body.dealer_reply;
        ok = r->ok, code = r->code, message = r->message, errors = &r->errors;
        res->flag = ok && r->has.created && r->created;
        res->nfindings = ok ? (long) r->findings.n : 0;
    } else
        return;
    if (!a->corr[0])
        return;
    snprintf(res->key, sizeof res->key, "%s", a->corr);
    if (ok)
        res->outcome = CRM_IMPORT_STORED;
    else if (crm_import_retry_code(code))
        res->outcome = CRM_IMPORT_RETRY;
    else {
        res->outcome = CRM_IMPORT_REFUSED;
        crm_import_why(errors, code, message, res->why, sizeof res->why);
    }
}

int crm_import_records(const crm_import_records_t *how, crm_type_t type, const char *path)
{
    char err[512];
    crm_csv_reader_t *r = crm_csv_open_records(path, type, how->encoding, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s: %s: %s\n", how->tool, path, err);
        return 1;
    }
    for (const char *const *u = crm_csv_unknown_columns(r); u && *u; u++)
        fprintf(stderr, "%s: column '%s' is not a %s field and is not sent\n", how->tool, *u,
                crm_type_name(type));
    char peer[300];
    snprintf(peer, sizeof peer, "%s: %s", how->tool, how->peer);
    crm_import_conf_t conf = {.sock = how->sock,
                              .delimiter = how->delimiter,
                              .peer = peer,
                              .what = crm_type_name(type),
                              .timeout_ms = how->timeout_ms,
                              .tries = how->tries,
                              .prepare = s_record_prepare,
                              .answer = s_record_answer,
                              .arg = (void *) how};
    crm_import_stats_t st;
    printf("importing %s (%s) as %s records of dealer %s\n", path, crm_csv_encoding(r),
           crm_type_name(type), how->dealer);
    crm_import_run(r, path, &conf, &st);
    crm_csv_close(&r);
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
    if (st.unconfirmed)
        return 2;
    return st.refused || st.unreadable ? 1 : 0;
}
