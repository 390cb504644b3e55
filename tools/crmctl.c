/*  crmctl: the command-line tool of autocrm (see s_summary for the
 *  commands). Lead, customer and quarantine commands are in their own
 *  files; this one holds the system-wide views and the dispatch. */
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crmctl.h"

static const char *s_summary =
    "autocrm command-line tool.\n\n"
    "Commands:\n"
    "  status                      each service's state; exit 0 only when all five are up\n"
    "  streams                     latest sequence number of every event stream\n"
    "  events STREAM [--from N] [--count K]\n"
    "                              the stream's events, one JSON object per line\n"
    "  rejects [list] [--count K]  refused frames, requests and messages kept for review, newest first\n"
    "  rejects show ID             one of them, with the message as JSON when it decodes\n"
    "  rejects retry ID            the service that refused it applies it again (once the cause is fixed)\n"
    "  lead submit [FILE|-]        submit a JSON lead or an ADF document (told apart by content);\n"
    "                              prints intake's answer as JSON; retries with the same id\n"
    "  lead import FILE.csv [--encoding utf-8|gbk|gb18030] [--source NAME]\n"
    "                              import an auto-show spreadsheet (UTF-8 or GBK, Chinese or\n"
    "                              English headers); rejected rows go to FILE.csv.rejects.csv\n"
    "  customer import FILE.csv --dealer D [--encoding utf-8|gbk|gb18030]\n"
    "  service import FILE.csv --dealer D [--encoding E]\n"
    "  followup import FILE.csv --dealer D [--encoding E]\n"
    "                              a dealer's customer files (客户档案), work orders or follow-ups,\n"
    "                              Chinese or English headers (tools/DEALERS.md), sent to\n"
    "                              crm-dispatcher for dealer D; rows it refuses or that cannot be\n"
    "                              read go to FILE.csv.rejects.csv; importing again changes nothing\n"
    "  customer show ID            the record, its findings, its leads and every field change\n"
    "  customer find --mobile M | --id-number N | --name NAME\n"
    "  quarantine list             rejected submissions kept for review\n"
    "  quarantine show ID          one of them, as submitted, with its errors\n"
    "  quarantine retry ID [FILE|-]  submit it again, corrected from FILE or as it was\n"
    "  dealer add ID --name N --province P --city C [--region R] [--capacity K] [--address A]\n"
    "                   [--hours HH:MM-HH:MM]\n"
    "  dealer update ID [--name N] [--province P] [--city C] [--region R] [--address A]\n"
    "                   [--capacity K|default] [--hours HH:MM-HH:MM|default]\n"
    "  dealer list | show ID | suspend ID | activate ID\n"
    "  dealer cert ID --out FILE   a CURVE certificate for the dealer: crm-dispatcher trusts its\n"
    "                              public key at once; the secret part is written to FILE only\n"
    "  dealer revoke ID            refused from now on, open connections cut\n"
    "  source cert ID --out FILE | source revoke ID   the same for lead sources (when crm-intake\n"
    "                              runs with CRM_INTAKE_CERT_DIR)\n"
    "  regions show | load FILE    the carmaker's sales regions (region = provinces)\n"
    "  testdrive list [--dealer D] [--status S] | show ID\n"
    "  staff add ID --dealer D --role consultant|manager|director --name NAME [--manager M]\n"
    "  staff update ID --dealer D [--role R] [--name N] [--manager M|'']\n"
    "  staff leave ID --dealer D [--reason TEXT] | list --dealer D | show ID --dealer D\n"
    "  calendar show [--year Y] | load FILE   China's working days (holidays, make-up working\n"
    "                              days) crm-scheduler counts with; FILE as common/data/calendar_cn.txt\n"
    "  tasks list [--dealer D [--consultant S]] [--overdue] [--due-before \"YYYY-MM-DD HH:MM\"]\n"
    "             [--calls] [--queue Q]\n"
    "                              open tasks (planned follow-ups, first contacts), soonest first,\n"
    "                              then crm-notifier's open call tasks (kind call; queue Q: a dealer\n"
    "                              id or callcentre); --calls or --queue: only the call tasks\n"
    "  notify show ID [--json]     a notification (N12, or the request id): its record, its log\n"
    "  notify dlq list [--count K] [--json|--csv]   dead letters, newest first, dead or retried\n"
    "  notify dlq retry ID         crm-notifier sends it again as new (ID: dlq entry, N12, request id)\n"
    "  consent set C --channel sms|email|call --state opt_in|opt_out --source S [--text T]\n"
    "                  [--at \"YYYY-MM-DD HH:MM\"]   a customer's consent, into the ledger\n"
    "  consent show C [--json|--csv]   the state per channel (C: a customer or an 11-digit mobile);\n"
    "                              no record: marketing is not sent, transactional messages are\n"
    "  consent history C [--json|--csv]   the consent ledger, oldest first\n"
    "  webhook set D [--url U] [--secret whsec_...] [--rotate] [--contact-email E]\n"
    "                  [--contact-mobile M] [--enable]   a dealer's webhook; --rotate without\n"
    "                              --secret makes one, shown this once\n"
    "  webhook show D [--json]     the endpoint, its state, its secrets masked\n"
    "  report daily [--date YYYY-MM-DD] [--dealer D] [--json|--csv]   per consultant and manager:\n"
    "                              due, done, overdue, expired, missing plans, released, lost pending\n"
    "  report sanctions [--month YYYY-MM] [--dealer D] [--json|--csv]   the month's sanctions ledger:\n"
    "                              each entry, what it costs and the records behind it; --csv opens\n"
    "                              in Excel (UTF-8 with BOM, ids as text)\n"
    "  audit run [--period 2026Q4|2026-11] [--dealer D] [--region R] [--no-wait] [--json|--csv]\n"
    "                              crm-auditor audits the customer files (the seed's contact rules, e-mail,\n"
    "                              extended warnings); waits for the run (--wait-s) and shows it\n"
    "  audit abc --dealer D [--period P] [--no-wait] [--json|--csv]   ABC value classes of D's customers\n"
    "  audit retention [--dealer D] [--region R] [--as-of YYYY-MM-DD] [--no-wait] [--json|--csv]\n"
    "                              cars kept by vehicle age: grasp rate, 1st-3rd service\n"
    "  audit show RUN [--dealer D [--rule R]] [--json|--csv]   a run: summary, dealers, regions; one\n"
    "                              dealer's rules; with --rule the records behind the figure\n"
    "  audit history --dealer D [--json|--csv]   the dealer's audit runs, the change between them\n"
    "  audit rules                 every audit rule: part (contact, email, extended) and what it checks\n"
    "  consultant leave S [--dealer D] --from YYYY-MM-DD --to YYYY-MM-DD [--postpone] [--reason R]\n"
    "                              leave or training: no new customers meanwhile; --postpone moves the\n"
    "                              activities due then to the first working day after, else they are listed\n"
    "  consultant reassign S --to S2 [--dealer D] [--reason R] | reassign --undo R12 [--dealer D]\n"
    "                              every customer and open activity of S goes to S2 (undone by its id)\n"
    "  owner approve|refuse C --director X [--dealer D]   a released prospect's transfer to the\n"
    "                              consultant who followed it up\n"
    "  followup record C --consultant S --result R --content TEXT [--feedback TEXT] [--grade H|A|B|C]\n"
    "                  [--expected-date YYYY-MM-DD] [--next \"YYYY-MM-DD HH:MM\" --next-content TEXT]\n"
    "                  [--at \"YYYY-MM-DD HH:MM\"]   (times China time)\n"
    "  order record C --order O (--placed --model M --price YUAN --promised YYYY-MM-DD\n"
    "                  | --cancelled [--reason R])\n"
    "  delivery record O --dealer D (--delivered --vin V --date YYYY-MM-DD\n"
    "                  | --delayed --promised YYYY-MM-DD --reason R)\n"
    "  service record (--customer C | --vin V) --work-order W --date YYYY-MM-DD [--mileage KM]\n"
    "                  [--work TEXT] [--amount YUAN.FEN]\n"
    "  customer assign C --consultant S [--reason R]\n"
    "  lost request C --consultant S --reason R [--note N]   a prospect given up, pending until\n"
    "  lost approve|refuse C --manager M [--note N]          a manager or director decides\n"
    "  lost reactivate C --to-dealer D [--reason R]          the carmaker gives it to a dealer\n"
    "  lost list [--dealer D]      prospects pending approval and lost ones\n"
    "                              These ask crm-dispatcher for dealer --dealer D; where a customer\n"
    "                              is named, --dealer defaults to its owning dealer (crm:cust dealer_id)\n\n"
    "Every command that changes something asks the service that owns it (crm-intake,\n"
    "crm-dispatcher ...) on its control endpoint; the others read Redis to show things.\n\n"
    "Exit codes: 0 success (lead accepted, also when a resend returns the first answer),\n"
    "1 the answer is 'no' (a service is down, a lead rejected, nothing found), 2 usage error or\n"
    "crm-intake unreachable, 3 Redis unreachable.";

static int s_status(crm_store_t *store)
{
    static const char *names[] = {
#define S_NAME(name, port, control) #name,
        CRM_SERVICES(S_NAME)
#undef S_NAME
    };
    int up = 0, total = (int) (sizeof names / sizeof names[0]);
    printf("%-11s %-8s %-8s %-24s %-10s %s\n", "SERVICE", "STATE", "PID", "PUBLISHES", "APPLIED",
           "LAST SEEN");
    for (int i = 0; i < total; i++) {
        redisReply *r = crm_store_cmd(store, "HGETALL " CRM_KEY_SVC_FMT, names[i]);
        if (!r)
            return 3;
        const char *state = crm_reply_field(r, "state");
        const char *seen = crm_reply_field(r, "seen_ms");
        long long age = seen ? (long long) (crm_now_ms() - atoll(seen)) : -1;
        bool running = state && !strcmp(state, "running") && age >= 0 && age < 3500;
        up += running;
        char ago[32] = "-";
        if (seen)
            snprintf(ago, sizeof ago, "%.1fs ago", (double) age / 1000.0);
        printf("%-11s %-8s %-8s %-24s %-10s %s\n", names[i],
               running ? "up" : state && strcmp(state, "running") ? state : "down",
               crm_reply_field(r, "pid") ? crm_reply_field(r, "pid") : "-",
               crm_reply_field(r, "pub") ? crm_reply_field(r, "pub") : "-",
               crm_reply_field(r, "applied") ? crm_reply_field(r, "applied") : "-", ago);
        freeReplyObject(r);
    }
    printf("%d of %d services up\n", up, total);
    return up == total ? 0 : 1;
}

static int s_streams(crm_store_t *store)
{
    static const char *names[] = {
#define S_NAME(s) #s,
        CRM_STREAMS(S_NAME)
#undef S_NAME
    };
    printf("%-10s %s\n", "STREAM", "LATEST");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        redisReply *r = crm_store_cmd(store, "GET " CRM_KEY_SEQ_FMT, names[i]);
        if (!r)
            return 3;
        printf("%-10s %s\n", names[i], r->type == REDIS_REPLY_STRING ? r->str : "0");
        freeReplyObject(r);
    }
    return 0;
}

static int s_events(crm_store_t *store, const char *stream, long long from, long long count)
{
    /* A stream's name becomes part of a key: lead, dealer.D0421, ... */
    bool ok = *stream && strlen(stream) < CRM_NAME_MAX;
    for (const char *p = stream; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
             *p == '_' || *p == '-';
    if (!ok) {
        fprintf(stderr, "crmctl events: %s is not a stream name\n", stream);
        return 2;
    }
    redisReply *r = crm_store_cmd(store, "XRANGE " CRM_KEY_EVENTS_FMT " %lld-0 + COUNT %lld", stream,
                                  from, count);
    if (!r)
        return 3;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->elements != 2 || e->element[1]->elements < 2)
            continue;
        const redisReply *frame = e->element[1]->element[1];
        crm_msg_t msg;
        crm_err_t err;
        if (crm_msg_decode(frame->str, frame->len, &msg, &err) != 0) {
            printf("{\"entry\":\"%s\",\"error\":{\"field\":\"%s\",\"code\":\"%s\"}}\n",
                   e->element[0]->str, err.field, crm_errcode_name(err.code));
            continue;
        }
        char *json = crm_msg_to_json(&msg);
        if (json)
            printf("%s\n", json);
        free(json);
        crm_msg_clear(&msg);
    }
    freeReplyObject(r);
    return 0;
}

static const char *s_rejects_usage = "crmctl rejects [list] [--count K] | show ID | retry ID";

static bool s_reject_id_ok(const char *id)
{
    if (crm_id_entry_valid(id))
        return true;
    fprintf(stderr, "crmctl: %s is not an entry id of crm:rejects (1796000000000-0)\n", id);
    return false;
}

int crmctl_rejects(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "list";
    const char *id = ctl->argc > 2 ? ctl->argv[2] : NULL;
    if (strcmp(sub, "list") && (!id || (strcmp(sub, "show") && strcmp(sub, "retry")))) {
        fprintf(stderr, "%s\n", s_rejects_usage);
        return CRMCTL_USAGE;
    }
    if (id && !s_reject_id_ok(id))
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    redisReply *r = id ? crm_store_cmd(store, "XRANGE " CRM_KEY_REJECTS " %s %s", id, id)
                       : crm_store_cmd(store, "XREVRANGE " CRM_KEY_REJECTS " + - COUNT %lld",
                                       (long long) crmctl_i64(ctl, "count"));
    if (!r)
        return CRMCTL_REDIS;
    if (id && (r->type != REDIS_REPLY_ARRAY || r->elements != 1)) {
        fprintf(stderr, "crmctl: no entry %s in crm:rejects\n", id);
        freeReplyObject(r);
        return CRMCTL_NO;
    }
    int rc = CRMCTL_OK;
    if (!strcmp(sub, "retry")) {
        /* Asked of the service that refused it. */
        const char *service = crm_reply_field(r->element[0]->element[1], "service");
        char svc[32];
        snprintf(svc, sizeof svc, "%s", service ? service : "");
        freeReplyObject(r);
        if (!crmctl_id_ok(svc, "service of the entry"))
            return CRMCTL_NO;
        crm_msg_t req, ans;
        crm_msg_init(&req, CRM_T_reject_retry);
        CRM_SET_STR(&req, reject_retry, reject_id, id);
        rc = crmctl_request(ctl, svc, &req, &ans);
        crm_msg_clear(&req);
        if (rc != CRMCTL_OK)
            return rc;
        if (ans.type == CRM_T_reply && ans.body.reply.ok)
            printf("%s: applied again by crm-%s\n", id, svc);
        rc = crmctl_reply(&ans, "rejects retry");
        crm_msg_clear(&ans);
        return rc;
    }
    redisReply *states = crm_store_cmd(store, "HGETALL " CRM_KEY_REJECTS_STATE);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        printf("%s", e->element[0]->str);
        const redisReply *f = e->element[1];
        const redisReply *frame = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, "frame")) {
                frame = f->element[k + 1];
                continue;
            }
            char v[256];
            printf(" %s=\"%s\"", f->element[k]->str, crm_log_value(f->element[k + 1]->str, v, sizeof v));
        }
        const char *state = crm_reply_field(states, e->element[0]->str);
        printf(" state=%s\n", state ? state : "kept");
        if (id && frame && frame->len) {
            crm_msg_t m;
            crm_err_t err;
            if (crm_msg_decode(frame->str, frame->len, &m, &err) == 0) {
                char *json = crm_msg_to_json(&m);
                printf("%s\n", json ? json : "{}");
                free(json);
                crm_msg_clear(&m);
            } else {
                printf("(%zu bytes that do not decode: %s: %s)\n", (size_t) frame->len, err.field, err.text);
            }
        }
    }
    freeReplyObject(states);
    freeReplyObject(r);
    return rc;
}

bool crmctl_id_ok(const char *id, const char *what)
{
    char err[200];
    if (crm_id_check(CRM_ID_NAME, id, what, err, sizeof err) == 0)
        return true;
    fprintf(stderr, "crmctl: %s\n", err);
    return false;
}

int crmctl_request(crmctl_t *ctl, const char *service, crm_msg_t *req, crm_msg_t *answer)
{
    char opt[48];
    snprintf(opt, sizeof opt, "%s-control", service);
    const char *endpoint = crm_opt(ctl->opts, opt);
    if (!endpoint) {
        fprintf(stderr, "crmctl: no control endpoint for %s\n", service);
        return CRMCTL_UNREACHABLE;
    }
    crm_new_id(req->id, sizeof req->id);
    req->ts = crm_now_ms();
    snprintf(req->producer, sizeof req->producer, "crmctl");
    req->stream[0] = 0;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (crm_msg_encode(req, &buf, NULL) != 0) {
        msgpack_sbuffer_destroy(&buf);
        fprintf(stderr, "crmctl: cannot encode the request\n");
        return CRMCTL_UNREACHABLE;
    }
    zframe_t *fr = NULL;
    int rc = crmctl_ask(endpoint, buf.data, buf.size, (int) crmctl_i64(ctl, "timeout-ms"),
                        (int) crmctl_i64(ctl, "tries"), &fr);
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0) {
        fprintf(stderr, "crmctl: crm-%s at %s did not answer (is it running? --%s)\n", service, endpoint, opt);
        return CRMCTL_UNREACHABLE;
    }
    crm_err_t err;
    rc = crm_msg_decode(zframe_data(fr), zframe_size(fr), answer, &err);
    zframe_destroy(&fr);
    if (rc != 0) {
        fprintf(stderr, "crmctl: crm-%s's answer cannot be read (%s: %s)\n", service, err.field, err.text);
        return CRMCTL_UNREACHABLE;
    }
    return CRMCTL_OK;
}

/* A refusal: "code: message" and the further errors on stderr; the exit
   code (unavailable is the unreachable one). */
static int s_refused(const char *what, const char *code, const char *message, const crm_strs_t *errors)
{
    fprintf(stderr, "crmctl %s: refused (%s): %s\n", what, code ? code : "-", message ? message : "");
    for (size_t i = 1; i < errors->n; i++)
        fprintf(stderr, "  %s\n", errors->v[i]);
    return code && !strcmp(code, "unavailable") ? CRMCTL_UNREACHABLE : CRMCTL_NO;
}

/* A dealer.reply (the answer of an uplink record, whichever endpoint it
   came through) printed as a reply is: its fields as name=value lines. */
static int s_dealer_reply(const crm_msg_t *answer, const char *what)
{
    const crm_body_dealer_reply_t *r = &answer->body.dealer_reply;
    if (!r->ok)
        return s_refused(what, r->code, r->message, &r->errors);
    if (r->customer_id)
        printf("  customer_id=%s\n", r->customer_id);
    if (r->has.created)
        printf("  created=%d\n", r->created ? 1 : 0);
    if (r->has.count)
        printf("  customers=%lld\n", (long long) r->count);
    for (size_t i = 0; i < r->findings.n; i++)
        printf("  finding=%s\n", r->findings.v[i]);
    return CRMCTL_OK;
}

const char *crmctl_or(const redisReply *h, const char *field)
{
    const char *v = crm_reply_field(h, field);
    return v && *v ? v : "-";
}

const char *crmctl_time(const redisReply *h, const char *field, char *out, size_t size)
{
    const char *v = crm_reply_field(h, field);
    if (v && *v)
        crm_format_cst(atoll(v), out, size);
    else
        snprintf(out, size, "-");
    return out;
}

int crmctl_reply(const crm_msg_t *answer, const char *what)
{
    if (answer->type == CRM_T_dealer_reply)
        return s_dealer_reply(answer, what);
    if (answer->type != CRM_T_reply) {
        fprintf(stderr, "crmctl %s: unexpected answer %s\n", what, crm_type_name(answer->type));
        return CRMCTL_NO;
    }
    const crm_body_reply_t *r = &answer->body.reply;
    if (r->ok) {
        for (size_t i = 0; i < r->fields.n; i++)
            printf("  %s\n", r->fields.v[i]);
        if (r->message)
            printf("  %s\n", r->message);
        return CRMCTL_OK;
    }
    return s_refused(what, r->code, r->message, &r->errors);
}

crm_store_t *crmctl_store(crmctl_t *ctl)
{
    if (!ctl->store)
        ctl->store = crm_store_reader(crm_opt(ctl->opts, "redis-url"), 2000);
    return ctl->store;
}

int64_t crmctl_i64(crmctl_t *ctl, const char *opt)
{
    const char *v = crm_opt(ctl->opts, opt);
    return v ? atoll(v) : 0;
}

/* Flags without a value, which crm_config does not have, become valued
   options here: order record --placed, delivery record --delayed, ...
   become --action=<word> (two of them are a mistake); tasks list --overdue
   is --state=overdue; report --json, --csv are --format=json|csv. Only an
   argument in a flag's place counts (not the value of --content). 0, or -1
   after a message. */
static int s_value_flags(const crm_opt_t *opts, int argc, char **argv)
{
    static char words[][24] = {"--action=placed", "--action=cancelled", "--action=delivered",
                               "--action=delayed", "--state=overdue", "--format=json", "--format=csv", "--postpone=yes",
                               "--no-wait=yes", "--calls=yes", "--rotate=yes", "--enable=yes"};
    static const char *const flags[] = {"placed", "cancelled", "delivered", "delayed", "overdue", "json", "csv",
                                        "postpone", "no-wait", "calls", "rotate", "enable"};
    const char *given = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--action=", 9))
            given = given ? given : a;
        if (strncmp(a, "--", 2) || strchr(a, '='))
            continue;
        bool takes_value = false;
        /* --postpone's, --no-wait's, --calls', --rotate's and --enable's
           options only hold what the flag says: no value */
        bool bare = !strcmp(a, "--postpone") || !strcmp(a, "--no-wait") || !strcmp(a, "--calls") ||
                    !strcmp(a, "--rotate") || !strcmp(a, "--enable");
        for (const crm_opt_t *o = opts; o->name && !bare; o++)
            takes_value |= !strcmp(o->name, a + 2);
        if (takes_value) {
            if (!strcmp(a, "--action"))
                given = given ? given : a;
            i++;
            continue;
        }
        for (size_t w = 0; w < sizeof flags / sizeof flags[0]; w++) {
            if (strcmp(a + 2, flags[w]))
                continue;
            if (!strncmp(words[w], "--action=", 9)) {
                if (given) {
                    fprintf(stderr, "crmctl: %s and %s: say one of them\n", given, a);
                    return -1;
                }
                given = a;
            }
            argv[i] = words[w];
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    crm_opt_t opts[] = {
        {"redis-url", "CRM_REDIS_URL", "redis://127.0.0.1:6390/0", "Redis that autocrm keeps its state in", NULL},
        {"intake", "CRM_INTAKE_ENDPOINT", "tcp://127.0.0.1:7201", "crm-intake's endpoint for leads", NULL},
        {"intake-control", "CRM_INTAKE_CONTROL", "tcp://127.0.0.1:7211", "crm-intake's control endpoint", NULL},
        {"dispatcher-control", "CRM_DISPATCHER_CONTROL", "tcp://127.0.0.1:7212", "crm-dispatcher's control endpoint", NULL},
        {"scheduler-control", "CRM_SCHEDULER_CONTROL", "tcp://127.0.0.1:7213", "crm-scheduler's control endpoint", NULL},
        {"auditor-control", "CRM_AUDITOR_CONTROL", "tcp://127.0.0.1:7214", "crm-auditor's control endpoint", NULL},
        {"notifier-control", "CRM_NOTIFIER_CONTROL", "tcp://127.0.0.1:7215", "crm-notifier's control endpoint", NULL},
        {"source-cert", "CRM_SOURCE_CERT", NULL,
         "lead: this lead source's secret certificate, when crm-intake asks for CURVE", NULL},
        {"intake-server-cert", "CRM_INTAKE_SERVER_CERT", "var/intake.cert",
         "lead: crm-intake's public certificate, with --source-cert", NULL},
        {"timeout-ms", "CRM_TIMEOUT_MS", "3000", "lead and every request to a service (notify dlq retry, consent set, "
         "webhook set, ...): how long to wait for an answer", NULL},
        {"tries", NULL, "3", "lead and requests to a service: how many times to send before giving up", NULL},
        {"encoding", NULL, NULL, "lead|customer|service|followup import: utf-8, gbk or gb18030 (default: detect)", NULL},
        {"source", NULL, NULL,
         "lead import: the source (default: the file name); consent set: where it was given (website, showroom, "
         "hotline, sms_reply, unsubscribe_link, crm ...)", NULL},
        {"mobile", NULL, NULL, "customer find: by mobile number", NULL},
        {"id-number", NULL, NULL, "customer find: by ID number", NULL},
        {"name", NULL, NULL, "customer find: by name; dealer add|update: the dealer's name; staff add|update: the person's", NULL},
        {"region", NULL, NULL,
         "dealer add|update: sales region (crmctl regions show; default: the province's); audit run|retention: only "
         "the dealers of this region", NULL},
        {"province", NULL, NULL, "dealer add|update: province", NULL},
        {"city", NULL, NULL, "dealer add|update: city", NULL},
        {"address", NULL, NULL, "dealer add|update: address", NULL},
        {"capacity", NULL, NULL,
         "dealer add|update: test drives per day (0: no limit; default: crm-dispatcher's CRM_DEFAULT_CAPACITY)", NULL},
        {"hours", NULL, NULL,
         "dealer add|update: working hours, China time, HH:MM-HH:MM (update: default or \"\" for the scheduler's, "
         "09:00-18:00)", NULL},
        {"dealer", NULL, NULL,
         "testdrive|lost list: only this dealer's; staff, followup, order, delivery, service, customer assign, "
         "lost: the dealer crmctl acts for (default, where a customer is named: its owning dealer); "
         "customer|service|followup import: the dealer the file is from (required); audit run|abc|retention: only "
         "this dealer; audit show: this dealer's figures; audit history: whose runs", NULL},
        {"role", NULL, NULL, "staff add|update: consultant, manager or director", NULL},
        {"manager", NULL, NULL, "staff add|update: the manager a consultant reports to; lost approve|refuse: who decides", NULL},
        {"consultant", NULL, NULL, "followup|order record, customer assign, lost request: the consultant", NULL},
        {"reason", NULL, NULL, "staff leave, order|delivery record, customer assign, lost request|reactivate: why", NULL},
        {"note", NULL, NULL, "lost request|approve|refuse: the note", NULL},
        {"result", NULL, NULL,
         "followup record: answered, no_answer, visit, test_drive, quote, order, message or other", NULL},
        {"content", NULL, NULL, "followup record: what was said or done", NULL},
        {"feedback", NULL, NULL, "followup record: the customer's feedback", NULL},
        {"grade", NULL, NULL, "followup record: intent grade H, A, B or C", NULL},
        {"expected-date", NULL, NULL, "followup record: expected purchase date YYYY-MM-DD", NULL},
        {"next", NULL, NULL, "followup record: the next activity, \"YYYY-MM-DD HH:MM\" China time", NULL},
        {"next-content", NULL, NULL, "followup record: what the next activity is", NULL},
        {"at", NULL, NULL, "followup record: when the contact was, consent set: when it was given; \"YYYY-MM-DD HH:MM\" "
         "China time (default: now)",
         NULL},
        {"action", NULL, NULL,
         "order record: placed|cancelled, delivery record: delivered|delayed (or --placed, --cancelled, "
         "--delivered, --delayed)", NULL},
        {"order", NULL, NULL, "order record: the dealer's order number", NULL},
        {"model", NULL, NULL, "order record --placed: the model", NULL},
        {"price", NULL, NULL, "order record --placed: the price in yuan", NULL},
        {"promised", NULL, NULL, "order record --placed, delivery record --delayed: delivery date promised", NULL},
        {"vin", NULL, NULL, "delivery record --delivered, service record: the car's VIN", NULL},
        {"date", NULL, NULL, "delivery record --delivered, service record: YYYY-MM-DD", NULL},
        {"customer", NULL, NULL, "service record: the customer (or --vin)", NULL},
        {"work-order", NULL, NULL, "service record: the work-order number", NULL},
        {"mileage", NULL, NULL, "service record: km", NULL},
        {"work", NULL, NULL, "service record: work done", NULL},
        {"amount", NULL, NULL, "service record: amount paid, yuan with up to two decimals", NULL},
        {"to-dealer", NULL, NULL, "lost reactivate: the dealer that takes the prospect over", NULL},
        {"out", NULL, NULL, "dealer|source cert: file for the secret certificate", NULL},
        {"status", NULL, NULL, "testdrive list: only in this status", NULL},
        {"year", NULL, NULL, "calendar show: only this year's days", NULL},
        {"month", NULL, NULL, "report sanctions: the month, YYYY-MM (default: this month, China time)", NULL},
        {"due-before", NULL, NULL, "tasks list: only tasks due before \"YYYY-MM-DD HH:MM\" China time", NULL},
        {"state", NULL, NULL,
         "tasks list: only tasks in this state (open, overdue; --overdue); consent set: opt_in or opt_out", NULL},
        {"calls", NULL, NULL, "tasks list: only crm-notifier's call tasks (--calls)", NULL},
        {"queue", NULL, NULL, "tasks list: only the call tasks of this queue (a dealer id, or callcentre)", NULL},
        {"channel", NULL, NULL, "consent set: sms, email or call", NULL},
        {"text", NULL, NULL, "consent set: the text the customer saw or sent, as it was", NULL},
        {"url", NULL, NULL, "webhook set: the dealer's endpoint, http(s)://...", NULL},
        {"secret", NULL, NULL, "webhook set: the signing secret, whsec_... (absent with --rotate: one is made)", NULL},
        {"rotate", NULL, NULL, "webhook set: a new secret signs beside the old one for a while (--rotate)", NULL},
        {"enable", NULL, NULL, "webhook set: enable a disabled endpoint again (--enable)", NULL},
        {"contact-email", NULL, NULL, "webhook set: who is told by e-mail when the endpoint is disabled", NULL},
        {"contact-mobile", NULL, NULL, "webhook set: who is told by SMS when the endpoint is disabled", NULL},
        {"format", NULL, NULL, "report, audit: table (default), json (--json) or csv (--csv)", NULL},
        {"period", NULL, NULL, "audit run|abc: a quarter 2026Q4 (or 2026-Q4) or a month 2026-11 (default: every record, "
         "all time)", NULL},
        {"as-of", NULL, NULL, "audit retention: the day the fleet is counted on, YYYY-MM-DD (default: today)", NULL},
        {"rule", NULL, NULL, "audit show RUN --dealer D: the records behind this rule's figure (crmctl audit rules)", NULL},
        {"no-wait", NULL, NULL, "audit run|abc|retention: print the run id and return (--no-wait)", NULL},
        {"wait-s", NULL, "900", "audit run|abc|retention: how long to wait for the run, in seconds", NULL},
        {"from", NULL, NULL, "events: first sequence number (default 1); consultant leave: first day away, YYYY-MM-DD", NULL},
        {"to", NULL, NULL, "consultant leave: last day away, YYYY-MM-DD; consultant reassign: who takes the customers", NULL},
        {"postpone", NULL, NULL, "consultant leave: move the activities due meanwhile to after it (--postpone)", NULL},
        {"undo", NULL, NULL, "consultant reassign: the reassignment (R12) to undo", NULL},
        {"director", NULL, NULL, "owner approve|refuse: the dealer's director deciding", NULL},
        {"count", NULL, "100", "events, rejects, quarantine list, notify dlq list: how many at most", NULL},
        CRM_OPT_END,
    };
    int npos = 0;
    if (s_value_flags(opts, argc, argv) != 0)
        return 2;
    int rc = crm_config_parse(opts, argc, argv, "crmctl", s_summary, &npos);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    crm_log_init("crmctl", "warn");
    zsys_init();
    zsys_set_logstream(NULL);
    if (npos < 1) {
        fprintf(stderr, "crmctl: a command is needed (try --help)\n");
        return 2;
    }
    int64_t from = 1, count, n;
    if ((!strcmp(argv[1], "events") && crm_opt(opts, "from") && crm_opt_i64(opts, "from", 1, INT64_MAX, &from) != 0) ||
        crm_opt_i64(opts, "count", 1, 1000000, &count) != 0 ||
        crm_opt_i64(opts, "timeout-ms", 10, 3600000, &n) != 0 ||
        crm_opt_i64(opts, "tries", 1, 100, &n) != 0)
        return 2;
    crmctl_t ctl = {.opts = opts, .argc = npos, .argv = argv + 1};
    const char *cmd = argv[1];
    crm_type_t import = npos < 2 || strcmp(argv[2], "import") ? CRM_T_NONE
                        : !strcmp(cmd, "customer")            ? CRM_T_customer_file
                        : !strcmp(cmd, "service")             ? CRM_T_service_record
                        : !strcmp(cmd, "followup")            ? CRM_T_followup_record
                                                              : CRM_T_NONE;
    if (import != CRM_T_NONE)
        rc = crmctl_records_import(&ctl, import);
    else if (!strcmp(cmd, "lead"))
        rc = crmctl_lead(&ctl);
    else if (!strcmp(cmd, "customer"))
        rc = crmctl_customer(&ctl);
    else if (!strcmp(cmd, "quarantine"))
        rc = crmctl_quarantine(&ctl);
    else if (!strcmp(cmd, "dealer"))
        rc = crmctl_dealer(&ctl);
    else if (!strcmp(cmd, "testdrive"))
        rc = crmctl_testdrive(&ctl);
    else if (!strcmp(cmd, "regions"))
        rc = crmctl_regions(&ctl);
    else if (!strcmp(cmd, "rejects"))
        rc = crmctl_rejects(&ctl);
    else if (!strcmp(cmd, "staff"))
        rc = crmctl_staff(&ctl);
    else if (!strcmp(cmd, "calendar"))
        rc = crmctl_calendar(&ctl);
    else if (!strcmp(cmd, "tasks"))
        rc = crmctl_tasks(&ctl);
    else if (!strcmp(cmd, "report"))
        rc = crmctl_report(&ctl);
    else if (!strcmp(cmd, "audit"))
        rc = crmctl_audit(&ctl);
    else if (!strcmp(cmd, "notify"))
        rc = crmctl_notify(&ctl);
    else if (!strcmp(cmd, "consent"))
        rc = crmctl_consent(&ctl);
    else if (!strcmp(cmd, "webhook"))
        rc = crmctl_webhook(&ctl);
    else if (!strcmp(cmd, "followup") || !strcmp(cmd, "order") || !strcmp(cmd, "delivery") ||
             !strcmp(cmd, "service") || !strcmp(cmd, "lost") || !strcmp(cmd, "consultant") || !strcmp(cmd, "owner"))
        rc = crmctl_uplink(&ctl);
    else if (!strcmp(cmd, "source")) {
        const char *sub = npos > 1 ? argv[2] : "", *id = npos > 2 ? argv[3] : NULL;
        if (id && !strcmp(sub, "cert"))
            rc = crmctl_cert(&ctl, "intake", "source-id", id, crm_opt(opts, "out"));
        else if (id && !strcmp(sub, "revoke"))
            rc = crmctl_cert_revoke(&ctl, "intake", id);
        else {
            fprintf(stderr, "crmctl source: cert ID --out FILE | revoke ID\n");
            rc = 2;
        }
    } else if (!strcmp(cmd, "status") || !strcmp(cmd, "streams") || !strcmp(cmd, "events")) {
        if (!strcmp(cmd, "events") && npos < 2) {
            fprintf(stderr, "crmctl events: name the stream (lead, customer, testdrive, followup, audit, notify, "
                            "dealers, ops, dealer.<id>)\n");
            return 2;
        }
        crm_store_t *store = crmctl_store(&ctl);
        if (!store)
            return 3;
        if (!strcmp(cmd, "status"))
            rc = s_status(store);
        else if (!strcmp(cmd, "streams"))
            rc = s_streams(store);
        else
            rc = s_events(store, argv[2], (long long) from, (long long) count);
    } else {
        fprintf(stderr, "crmctl: unknown command '%s' (try --help)\n", cmd);
        rc = 2;
    }
    crm_store_destroy(&ctl.store);
    zcert_destroy(&ctl.source_cert);
    return rc;
}
