/*  crmctl followup|order|delivery|service record, customer assign,
 *  lost request|approve|refuse|reactivate, staff add|update|leave: the
 *  dealer uplink's requests, asked of crm-dispatcher's control endpoint by
 *  the CRM department acting for a dealer (body dealer_id), and lost list.
 *
 *  One table says, for every command, which flag fills which body field
 *  and when it is required; one runner checks the flags, converts times
 *  (China time) and amounts, and sends. crmctl writes nothing itself: it
 *  reads Redis only to find a customer's owning dealer for --dealer and to
 *  show.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crm_id.h"
#include "crm_lead.h"
#include "crm_leadin.h"
#include "crm_norm.h"
#include "crmctl.h"

/* How a command-line value becomes a body field. */
typedef enum {
    A_POS,    /* the positional argument, an id (customer, staff); `flag` names it */
    A_POSKEY, /* the positional argument, a dealer's own key (an order number) */
    A_ID,     /* --flag, an id (dealer, staff, customer): checked here */
    A_KEY,    /* --flag, a dealer's own key (order number): 1-256 characters, checked */
    A_TEXT,   /* --flag, as given (crm_msg_set_text: text, integer, yes/no) */
    A_TIME,   /* --flag "YYYY-MM-DD HH:MM" China time -> ms UTC */
    A_FEN,    /* --flag YUAN[.FEN] -> fen */
    A_OWNER,  /* --dealer, else the owning dealer of the customer (or the vin's) */
    A_FIXED   /* no flag: `flag` is the value (lost approve: decision=approved) */
} s_how_t;

typedef struct {
    s_how_t how;
    const char *flag;
    const char *field; /* the body field it fills */
    /* NULL: optional; "": required; a word of the command's actions:
       required with that one (--placed); "--x": required with --x. */
    const char *need;
} s_arg_t;

typedef struct {
    const char *group, *sub;
    crm_type_t type;
    const char *actions; /* "placed|cancelled": exactly one of --placed, --cancelled */
    const char *either;  /* "customer|vin": at least one of these flags */
    const char *usage;
    s_arg_t args[14];
} s_cmd_t;

/* The commands: one to a few lines, as a table. */
/* clang-format off */
#define S_DEALER {A_ID, "dealer", "dealer_id", ""}
#define S_OWNER {A_OWNER, "dealer", "dealer_id", NULL}
#define S_CUSTOMER {A_POS, "CUSTOMER", "customer_id", ""}
/* lost approve and lost refuse: lost.decide with the decision */
#define S_DECIDE(sub, decision)                                                                     \
    {"lost", sub, CRM_T_lost_decide, NULL, NULL,                                                  \
     "lost " sub " CUSTOMER [--dealer D] --manager M [--note N]",                                  \
     {S_CUSTOMER, S_OWNER, {A_ID, "manager", "manager_id", ""}, {A_TEXT, "note", "note", NULL},         \
      {A_FIXED, decision, "decision", NULL}}}

static const s_cmd_t s_cmds[] = {
    {"staff", "add", CRM_T_staff_add, NULL, NULL,
     "staff add ID --dealer D --role consultant|manager|director --name NAME [--manager M]",
     {{A_POS, "ID", "staff_id", ""}, S_DEALER, {A_TEXT, "role", "role", ""}, {A_TEXT, "name", "name", ""},
      {A_ID, "manager", "manager_id", NULL}}},
    {"staff", "update", CRM_T_staff_update, NULL, NULL,
     "staff update ID --dealer D [--role R] [--name N] [--manager M|'']",
     {{A_POS, "ID", "staff_id", ""}, S_DEALER, {A_TEXT, "role", "role", NULL}, {A_TEXT, "name", "name", NULL},
      {A_TEXT, "manager", "manager_id", NULL}}},
    {"staff", "leave", CRM_T_staff_leave, NULL, NULL,
     "staff leave ID --dealer D [--reason TEXT]",
     {{A_POS, "ID", "staff_id", ""}, S_DEALER, {A_TEXT, "reason", "reason", NULL}}},
    {"followup", "record", CRM_T_followup_record, NULL, NULL,
     "followup record CUSTOMER [--dealer D] --consultant C --result R --content TEXT [--feedback TEXT]\n"
     "    [--grade H|A|B|C] [--expected-date YYYY-MM-DD] [--next \"YYYY-MM-DD HH:MM\" --next-content TEXT]\n"
     "    [--at \"YYYY-MM-DD HH:MM\"]   (times China time; result answered, no_answer, visit, test_drive,\n"
     "    quote, order, message or other)",
     {S_CUSTOMER, S_OWNER, {A_ID, "consultant", "consultant_id", ""}, {A_TEXT, "result", "result", ""},
      {A_TEXT, "content", "content", ""}, {A_TEXT, "feedback", "feedback", NULL},
      {A_TEXT, "grade", "grade", NULL}, {A_TEXT, "expected-date", "expected_purchase_date", NULL},
      {A_TIME, "next", "next_at", "--next-content"},
      {A_TEXT, "next-content", "next_content", "--next"}, {A_TIME, "at", "at", NULL}}},
    {"order", "record", CRM_T_order_record, "placed|cancelled", NULL,
     "order record CUSTOMER [--dealer D] --order ORDER_ID (--placed --model M --price YUAN\n"
     "    --promised YYYY-MM-DD [--consultant C] | --cancelled [--reason R])",
     {S_CUSTOMER, S_OWNER, {A_KEY, "order", "order_id", ""}, {A_TEXT, "action", "action", ""},
      {A_TEXT, "model", "model", "placed"}, {A_TEXT, "price", "price", "placed"},
      {A_TEXT, "promised", "promised_date", "placed"}, {A_ID, "consultant", "consultant_id", NULL},
      {A_TEXT, "reason", "reason", NULL}}},
    {"delivery", "record", CRM_T_delivery_record, "delivered|delayed", NULL,
     "delivery record ORDER_ID --dealer D (--delivered --vin V --date YYYY-MM-DD |\n"
     "    --delayed --promised YYYY-MM-DD --reason R)",
     {{A_POSKEY, "ORDER_ID", "order_id", ""}, S_DEALER, {A_TEXT, "action", "action", ""},
      {A_TEXT, "vin", "vin", "delivered"}, {A_TEXT, "date", "date", "delivered"},
      {A_TEXT, "promised", "promised_date", "delayed"}, {A_TEXT, "reason", "reason", "delayed"}}},
    {"service", "record", CRM_T_service_record, NULL, "customer|vin",
     "service record [--dealer D] (--customer C | --vin V) --work-order W --date YYYY-MM-DD\n"
     "    [--mileage KM] [--work TEXT] [--amount YUAN.FEN]",
     {S_OWNER, {A_ID, "customer", "customer_id", NULL}, {A_TEXT, "vin", "vin", NULL},
      {A_TEXT, "work-order", "work_order", ""}, {A_TEXT, "date", "date", ""},
      {A_TEXT, "mileage", "mileage", NULL},
      {A_TEXT, "work", "work", NULL}, {A_FEN, "amount", "amount_fen", NULL}}},
    {"customer", "assign", CRM_T_customer_assign, NULL, NULL,
     "customer assign CUSTOMER [--dealer D] --consultant C [--reason R]",
     {S_CUSTOMER, S_OWNER, {A_ID, "consultant", "consultant_id", ""}, {A_TEXT, "reason", "reason", NULL}}},
    {"lost", "request", CRM_T_prospect_lose, NULL, NULL,
     "lost request CUSTOMER [--dealer D] --consultant C --reason R [--note N]   (reason other_brand,\n"
     "    other_dealer, no_budget, unreachable, postponed, no_interest or other, which needs --note)",
     {S_CUSTOMER, S_OWNER, {A_ID, "consultant", "consultant_id", ""}, {A_TEXT, "reason", "reason", ""},
      {A_TEXT, "note", "note", NULL}}},
    {"consultant", "leave", CRM_T_staff_away, NULL, NULL,
     "consultant leave ID [--dealer D] --from YYYY-MM-DD --to YYYY-MM-DD [--postpone] [--reason R]",
     {{A_POS, "ID", "staff_id", ""}, S_DEALER, {A_TEXT, "from", "from", ""}, {A_TEXT, "to", "to", ""},
      {A_TEXT, "postpone", "postpone", NULL}, {A_TEXT, "reason", "reason", NULL}}},
    {"consultant", "reassign", CRM_T_consultant_reassign, NULL, NULL,
     "consultant reassign ID --to C2 [--dealer D] [--reason R]",
     {{A_POS, "ID", "from_consultant", ""}, S_DEALER, {A_ID, "to", "to_consultant", ""},
      {A_TEXT, "reason", "reason", NULL}}},
    {"consultant", "reassign", CRM_T_consultant_reassign, NULL, NULL,
     "consultant reassign --undo R12 [--dealer D]",
     {S_DEALER, {A_ID, "undo", "undo", ""}}},
    {"owner", "approve", CRM_T_owner_decide, NULL, NULL,
     "owner approve CUSTOMER [--dealer D] --director X [--note N]",
     {S_CUSTOMER, S_OWNER, {A_ID, "director", "director_id", ""}, {A_TEXT, "note", "note", NULL},
      {A_FIXED, "approve", "decision", NULL}}},
    {"owner", "refuse", CRM_T_owner_decide, NULL, NULL,
     "owner refuse CUSTOMER [--dealer D] --director X [--note N]",
     {S_CUSTOMER, S_OWNER, {A_ID, "director", "director_id", ""}, {A_TEXT, "note", "note", NULL},
      {A_FIXED, "refuse", "decision", NULL}}},
    S_DECIDE("approve", "approved"),
    S_DECIDE("refuse", "refused"),
    {"lost", "reactivate", CRM_T_prospect_reactivate, NULL, NULL,
     "lost reactivate CUSTOMER --to-dealer D [--reason R]   (the carmaker gives a lost prospect to a dealer)",
     {S_CUSTOMER, {A_ID, "to-dealer", "dealer_id", ""}, {A_TEXT, "reason", "reason", NULL}}},
};
/* clang-format on */
#define S_NCMDS (sizeof s_cmds / sizeof s_cmds[0])
#define S_NARGS (sizeof s_cmds[0].args / sizeof s_cmds[0].args[0])

static bool s_has_flag(const s_arg_t *a)
{
    return a->field && a->how != A_POS && a->how != A_POSKEY && a->how != A_FIXED;
}

/* True when `word` is one of the '|'-separated words of `list`. */
static bool s_in_list(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t) (bar - p) : strlen(p);
        if (len == n && !strncmp(p, word, n))
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static const s_arg_t *s_arg(const s_cmd_t *cmd, const char *flag)
{
    for (size_t i = 0; i < S_NARGS && cmd->args[i].field; i++)
        if (s_has_flag(&cmd->args[i]) && !strcmp(cmd->args[i].flag, flag))
            return &cmd->args[i];
    return NULL;
}

/* A flag another uplink command takes but this one does not is a mistake
   (order record --vin), not something to drop silently. */
static bool s_foreign_flag(crmctl_t *ctl, const s_cmd_t *cmd, const char *what)
{
    for (size_t c = 0; c < S_NCMDS; c++)
        for (size_t i = 0; i < S_NARGS && s_cmds[c].args[i].field; i++) {
            const s_arg_t *a = &s_cmds[c].args[i];
            if (s_has_flag(a) && crm_opt(ctl->opts, a->flag) && !s_arg(cmd, a->flag)) {
                /* --placed and the like stand for --action=placed */
                fprintf(stderr, "crmctl %s: --%s does not apply\n", what,
                        strcmp(a->flag, "action") ? a->flag : crm_opt(ctl->opts, "action"));
                return true;
            }
        }
    return false;
}

/* "placed|cancelled" as "--placed or --cancelled", a line on stderr. */
static void s_words(const char *list)
{
    fputs("--", stderr);
    for (const char *p = list; *p; p++)
        if (*p == '|')
            fputs(" or --", stderr);
        else
            fputc(*p, stderr);
    fputc('\n', stderr);
}

/* Whether the flags say enough: what is required, required with the
   chosen action or with another flag, and one of `either`. */
static bool s_complete(crmctl_t *ctl, const s_cmd_t *cmd, const char *what)
{
    const char *action = crm_opt(ctl->opts, "action");
    if (cmd->actions && (!action || !s_in_list(cmd->actions, action))) {
        fprintf(stderr, "crmctl %s: say what happened: ", what);
        s_words(cmd->actions);
        return false;
    }
    for (size_t i = 0; i < S_NARGS && cmd->args[i].field; i++) {
        const s_arg_t *a = &cmd->args[i];
        if (!s_has_flag(a) || !a->need || crm_opt(ctl->opts, a->flag))
            continue;
        bool needed = !*a->need ||
                      (cmd->actions && s_in_list(cmd->actions, a->need) &&
                       !strcmp(a->need, action)) ||
                      (!strncmp(a->need, "--", 2) && crm_opt(ctl->opts, a->need + 2));
        if (needed) {
            fprintf(stderr, "crmctl %s: --%s is required%s%s\n", what, a->flag,
                    *a->need ? " with --" : "",
                    *a->need ? (!strncmp(a->need, "--", 2) ? a->need + 2 : a->need) : "");
            return false;
        }
    }
    if (cmd->either) {
        bool any = false;
        char words[64];
        snprintf(words, sizeof words, "%s", cmd->either);
        for (char *save = NULL, *w = strtok_r(words, "|", &save); w; w = strtok_r(NULL, "|", &save))
            any |= crm_opt(ctl->opts, w) != NULL;
        if (!any) {
            fprintf(stderr, "crmctl %s: give ", what);
            s_words(cmd->either);
            return false;
        }
    }
    return true;
}

/* Puts the value of one argument into the request, converted. */
static int s_set(crm_msg_t *req, const char *what, const s_arg_t *a, const char *value)
{
    char label[48], num[32], err[200];
    bool pos = a->how == A_POS || a->how == A_POSKEY, key = a->how == A_POSKEY || a->how == A_KEY;
    snprintf(label, sizeof label, "%s%s", pos ? "" : "--", a->flag);
    const char *text = value;
    if ((pos || key || a->how == A_ID || a->how == A_OWNER) &&
        crm_id_check(key ? CRM_ID_KEY : CRM_ID_NAME, value, label, err, sizeof err) != 0) {
        fprintf(stderr, "crmctl %s: %s\n", what, err);
        return CRMCTL_USAGE;
    }
    if (a->how == A_TIME) {
        int64_t ms;
        if (crm_leadin_parse_datetime(value, &ms) != 0) {
            fprintf(stderr, "crmctl %s: %s: expected \"YYYY-MM-DD HH:MM\" (China time), got '%s'\n",
                    what, label, value);
            return CRMCTL_USAGE;
        }
        snprintf(num, sizeof num, "%lld", (long long) ms);
        text = num;
    } else if (a->how == A_FEN) {
        int64_t fen; /* read as the CSV import reads amounts */
        if (crm_leadin_parse_fen(value, &fen) != 0 || fen < 0) {
            fprintf(stderr,
                    "crmctl %s: %s: expected yuan with at most two decimals (1280.50, ¥1,200), got '%s'\n",
                    what, label, value);
            return CRMCTL_USAGE;
        }
        snprintf(num, sizeof num, "%lld", (long long) fen);
        text = num;
    }
    crm_err_t e;
    int rc = crm_msg_set_text(req, a->field, text, &e);
    if (rc != 0) {
        fprintf(stderr, "crmctl %s: %s: %s\n", what, label,
                rc > 0 ? "not a field of the request" : e.text);
        return CRMCTL_USAGE;
    }
    return CRMCTL_OK;
}

/* The dealer that owns customer `cid` (or the customer of `vin`), into
   `out`; CRMCTL_OK, or a message and CRMCTL_NO / CRMCTL_REDIS. */
static int s_owner(crmctl_t *ctl, const char *what, const char *cid, const char *vin, char *out,
                   size_t size)
{
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    char from_vin[CRM_ID_NAME_MAX + 1] = "";
    if (!cid && vin) {
        char norm[CRM_NORM_VIN_SZ];
        redisReply *v = crm_store_cmd(store, "HGET crm:veh:%s customer_id",
                                      crm_norm_vin(vin, norm) == CRM_NORM_OK ? norm : vin);
        if (!v)
            return CRMCTL_REDIS;
        if (v->type == REDIS_REPLY_STRING)
            snprintf(from_vin, sizeof from_vin, "%s", v->str);
        freeReplyObject(v);
        if (!*from_vin) {
            fprintf(stderr, "crmctl %s: no vehicle %s is known; give --dealer\n", what, vin);
            return CRMCTL_NO;
        }
        cid = from_vin;
    }
    redisReply *r = crm_store_cmd(store, "HGET " CRM_KEY_CUST_FMT " dealer_id", cid);
    if (!r)
        return CRMCTL_REDIS;
    bool found = r->type == REDIS_REPLY_STRING && r->len > 0;
    if (found)
        snprintf(out, size, "%s", r->str);
    freeReplyObject(r);
    if (!found) {
        fprintf(stderr,
                "crmctl %s: customer %s has no owning dealer (or is not known); give --dealer\n",
                what, cid);
        return CRMCTL_NO;
    }
    return CRMCTL_OK;
}

static int s_run(crmctl_t *ctl, const s_cmd_t *cmd)
{
    char what[48];
    snprintf(what, sizeof what, "%s %s", cmd->group, cmd->sub);
    int npos = 0;
    for (size_t i = 0; i < S_NARGS && cmd->args[i].field; i++)
        npos += cmd->args[i].how == A_POS || cmd->args[i].how == A_POSKEY;
    if (ctl->argc != 2 + npos) {
        fprintf(stderr, "crmctl %s\n", cmd->usage);
        return CRMCTL_USAGE;
    }
    if (s_foreign_flag(ctl, cmd, what) || !s_complete(ctl, cmd, what))
        return CRMCTL_USAGE;
    const char *pos = npos ? ctl->argv[2] : NULL, *cid = NULL, *vin = NULL;
    const s_arg_t *owner = NULL;
    crm_msg_t req;
    crm_msg_init(&req, cmd->type);
    int rc = CRMCTL_OK;
    for (size_t i = 0; rc == CRMCTL_OK && i < S_NARGS && cmd->args[i].field; i++) {
        const s_arg_t *a = &cmd->args[i];
        const char *v = s_has_flag(a)       ? crm_opt(ctl->opts, a->flag)
                        : a->how == A_FIXED ? a->flag
                                            : pos;
        if (!strcmp(a->field, "customer_id"))
            cid = v;
        if (!strcmp(a->field, "vin"))
            vin = v;
        if (a->how == A_OWNER && !v)
            owner = a;
        else if (v)
            rc = s_set(&req, what, a, v);
    }
    char dealer[CRM_ID_NAME_MAX + 1];
    if (rc == CRMCTL_OK && owner &&
        (rc = s_owner(ctl, what, cid, vin, dealer, sizeof dealer)) == CRMCTL_OK)
        rc = s_set(&req, what, owner, dealer);
    /* A fresh record id: this invocation is one record; crmctl_ask's
       retries resend the same bytes, so the dispatcher sees one. */
    if (rc == CRMCTL_OK && crm_msg_field_type(cmd->type, "record_id")) {
        char rid[CRM_ID_MAX + 8];
        crm_new_id(rid, sizeof rid);
        char full[CRM_ID_MAX + 16];
        snprintf(full, sizeof full, "crmctl:%s", rid);
        crm_err_t e;
        if (crm_msg_set_text(&req, "record_id", full, &e) != 0)
            rc = CRMCTL_NO;
    }
    crm_msg_t ans;
    if (rc == CRMCTL_OK)
        rc = crmctl_request(ctl, "dispatcher", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    const char *done_id = ans.type == CRM_T_dealer_reply ? ans.body.dealer_reply.id : ans.body.reply.id;
    bool ok = ans.type == CRM_T_dealer_reply ? ans.body.dealer_reply.ok : ans.type == CRM_T_reply && ans.body.reply.ok;
    if (ok)
        printf("%s%s%s: done%s%s%s\n", what, pos ? " " : "", pos ? pos : "", done_id ? " (" : "",
               done_id ? done_id : "", done_id ? ")" : "");
    rc = crmctl_reply(&ans, what);
    crm_msg_clear(&ans);
    return rc;
}

/* ------------------------------------------------------------ lost list */

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Pending and lost prospects of one dealer or of all: the dealers'
   lost_pending and lost sets, then those customers' records (the stage
   they are at now); two round trips however many there are. */
static int s_lost_list(crmctl_t *ctl)
{
    const char *only = crm_opt(ctl->opts, "dealer");
    if (only && !crmctl_id_ok(only, "--dealer"))
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *dealers = only ? NULL : crm_store_cmd(store, "SMEMBERS " CRM_KEY_DEALERS);
    if (!only && !dealers)
        return CRMCTL_REDIS;
    size_t nd = only ? 1 : dealers->elements, n = 0, cap = 0;
    const char **ids = NULL;
    crm_tx_t *sets = crm_tx_new("crmctl", 0), *recs = crm_tx_new("crmctl", 0);
    int rc = sets && recs ? CRMCTL_OK : CRMCTL_NO;
    for (size_t i = 0; rc == CRMCTL_OK && i < nd; i++) {
        const char *d = only ? only : dealers->element[i]->str;
        if (crm_tx_cmd(sets, "SMEMBERS crm:dealer:%s:lost_pending", d) < 0 ||
            crm_tx_cmd(sets, "SMEMBERS crm:dealer:%s:lost", d) < 0)
            rc = CRMCTL_NO;
    }
    if (rc == CRMCTL_OK && nd && crm_store_pipeline(store, sets) != 0)
        rc = CRMCTL_REDIS;
    for (size_t i = 0; rc == CRMCTL_OK && i < crm_tx_size(sets); i++) {
        const redisReply *m = crm_tx_result(sets, (int) i);
        for (size_t k = 0; rc == CRMCTL_OK && m && m->type == REDIS_REPLY_ARRAY && k < m->elements;
             k++) {
            if (n == cap) {
                const char **grown = realloc(ids, (cap = cap ? 2 * cap : 64) * sizeof *ids);
                if (!grown) {
                    rc = CRMCTL_NO;
                    break;
                }
                ids = grown;
            }
            ids[n++] = m->element[k]->str;
        }
    }
    /* read each once, whatever the sets say */
    if (n)
        qsort(ids, n, sizeof *ids, s_cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || strcmp(ids[u - 1], ids[i]))
            ids[u++] = ids[i];
    enum { F_STAGE, F_DEALER, F_BY, F_REASON, F_ASKED, F_LOST, F_NAME, F_NOTE, F_APPROVER, F_N };
    for (size_t i = 0; rc == CRMCTL_OK && i < u; i++)
        if (crm_tx_cmd(recs,
                       "HMGET " CRM_KEY_CUST_FMT
                       " stage dealer_id lost_by lost_reason lost_requested_ms "
                       "lost_ms name lost_note lost_approved_by",
                       ids[i]) < 0)
            rc = CRMCTL_NO;
    if (rc == CRMCTL_OK && u && crm_store_pipeline(store, recs) != 0)
        rc = CRMCTL_REDIS;
    if (rc == CRMCTL_OK)
        printf("%-10s %-12s %-10s %-10s %-13s %-21s %-10s %s\n", "CUSTOMER", "STAGE", "DEALER",
               "GIVEN UP", "REASON", "SINCE", "APPROVED", "NAME / NOTE");
    /* pending first (since the request), then lost (since the approval) */
    for (int pass = 0; rc == CRMCTL_OK && pass < 2; pass++)
        for (size_t i = 0; i < u; i++) {
            const redisReply *h = crm_tx_result(recs, (int) i);
            if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != F_N)
                continue;
            const char *v[F_N];
            for (int f = 0; f < F_N; f++)
                v[f] = h->element[f]->type == REDIS_REPLY_STRING && *h->element[f]->str
                           ? h->element[f]->str
                           : "-";
            if (strcmp(v[F_STAGE], pass ? "lost" : "lost_pending"))
                continue;
            char since[40] = "-";
            const char *ms = pass ? v[F_LOST] : v[F_ASKED];
            if (*ms != '-')
                crm_format_cst(atoll(ms), since, sizeof since);
            printf("%-10s %-12s %-10s %-10s %-13s %-21s %-10s %s%s%s\n", ids[i], v[F_STAGE],
                   v[F_DEALER], v[F_BY], v[F_REASON], since, pass ? v[F_APPROVER] : "-", v[F_NAME],
                   strcmp(v[F_NOTE], "-") ? " / " : "", strcmp(v[F_NOTE], "-") ? v[F_NOTE] : "");
        }
    free(ids);
    crm_tx_destroy(&sets);
    crm_tx_destroy(&recs);
    freeReplyObject(dealers);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

int crmctl_uplink(crmctl_t *ctl)
{
    const char *group = ctl->argv[0], *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (!strcmp(group, "lost") && !strcmp(sub, "list")) {
        if (ctl->argc != 2) {
            fprintf(stderr, "crmctl lost list [--dealer D]\n");
            return CRMCTL_USAGE;
        }
        return s_lost_list(ctl);
    }
    /* consultant reassign has two forms: with --undo, the second row. */
    bool undo = crm_opt(ctl->opts, "undo") != NULL;
    for (size_t c = 0; c < S_NCMDS; c++)
        if (!strcmp(s_cmds[c].group, group) && !strcmp(s_cmds[c].sub, sub) &&
            (s_cmds[c].type != CRM_T_consultant_reassign || undo == (s_cmds[c].args[0].how != A_POS))) {
            int rc = s_run(ctl, &s_cmds[c]);
            /* Leave without postponing: what to do before it. */
            if (rc == CRMCTL_OK && s_cmds[c].type == CRM_T_staff_away && !crm_opt(ctl->opts, "postpone"))
                rc = crmctl_tasks_away(ctl, crm_opt(ctl->opts, "dealer"), ctl->argv[2], crm_opt(ctl->opts, "from"),
                                       crm_opt(ctl->opts, "to"));
            return rc;
        }
    fprintf(stderr, "crmctl %s:\n", group);
    for (size_t c = 0; c < S_NCMDS; c++)
        if (!strcmp(s_cmds[c].group, group))
            fprintf(stderr, "  crmctl %s\n", s_cmds[c].usage);
    if (!strcmp(group, "lost"))
        fprintf(stderr, "  crmctl lost list [--dealer D]\n");
    return CRMCTL_USAGE;
}
