/*  crmctl: the command-line tool of autocrm (see s_summary for the
 *  commands). Lead, customer and quarantine commands are in their own
 *  files; this one holds the system-wide views and the dispatch. */
#include <stdlib.h>
#include <string.h>

#include "crmctl.h"

static const char *s_summary =
    "autocrm command-line tool.\n\n"
    "Commands:\n"
    "  status                      each service's state; exit 0 only when all five are up\n"
    "  streams                     latest sequence number of every event stream\n"
    "  events STREAM [--from N] [--count K]\n"
    "                              the stream's events, one JSON object per line\n"
    "  rejects [--count K]         refused frames and messages kept for review, newest first\n"
    "  lead submit [FILE|-]        submit a JSON lead or an ADF document (told apart by content);\n"
    "                              prints intake's answer as JSON; retries with the same id\n"
    "  lead import FILE.csv [--encoding utf-8|gbk|gb18030] [--source NAME]\n"
    "                              import an auto-show spreadsheet (UTF-8 or GBK, Chinese or\n"
    "                              English headers); rejected rows go to FILE.csv.rejects.csv\n"
    "  customer show ID            the record, its findings, its leads and every field change\n"
    "  customer find --mobile M | --id-number N | --name NAME\n"
    "  quarantine list             rejected submissions kept for review\n"
    "  quarantine show ID          one of them, as submitted, with its errors\n"
    "  quarantine retry ID [FILE|-]  submit it again, corrected from FILE or as it was\n"
    "  dealer add ID --name N --region R --province P --city C [--capacity K] [--address A]\n"
    "  dealer list | show ID | suspend ID | activate ID\n"
    "  dealer cert ID --out FILE   a CURVE certificate for the dealer: public part into the\n"
    "                              gateway's directory (--cert-dir), secret part into FILE\n"
    "  dealer revoke ID            remove it: the dealer can no longer connect\n"
    "  testdrive list [--dealer D] [--status S] | show ID\n\n"
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

static int s_rejects(crm_store_t *store, long long count)
{
    redisReply *r = crm_store_cmd(store, "XREVRANGE " CRM_KEY_REJECTS " + - COUNT %lld", count);
    if (!r)
        return 3;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        printf("%s", e->element[0]->str);
        const redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, "frame"))
                continue;
            char v[256];
            printf(" %s=\"%s\"", f->element[k]->str, crm_log_value(f->element[k + 1]->str, v, sizeof v));
        }
        printf("\n");
    }
    freeReplyObject(r);
    return 0;
}

crm_store_t *crmctl_store(crmctl_t *ctl)
{
    if (!ctl->store)
        ctl->store = crm_store_new(crm_opt(ctl->opts, "redis-url"), 2000);
    return ctl->store;
}

int64_t crmctl_i64(crmctl_t *ctl, const char *opt)
{
    const char *v = crm_opt(ctl->opts, opt);
    return v ? atoll(v) : 0;
}

int main(int argc, char **argv)
{
    crm_opt_t opts[] = {
        {"redis-url", "CRM_REDIS_URL", "redis://127.0.0.1:6390/0", "Redis that autocrm keeps its state in", NULL},
        {"intake", "CRM_INTAKE_ENDPOINT", "tcp://127.0.0.1:7201", "crm-intake's endpoint for leads", NULL},
        {"timeout-ms", "CRM_TIMEOUT_MS", "3000", "lead: how long to wait for intake's answer", NULL},
        {"tries", NULL, "3", "lead: how many times to send before giving up", NULL},
        {"encoding", NULL, NULL, "lead import: utf-8, gbk or gb18030 (default: detect)", NULL},
        {"source", NULL, NULL, "lead import: the source (default: the file name)", NULL},
        {"mobile", NULL, NULL, "customer find: by mobile number", NULL},
        {"id-number", NULL, NULL, "customer find: by ID number", NULL},
        {"name", NULL, NULL, "customer find: by name; dealer add: the dealer's name", NULL},
        {"region", NULL, NULL, "dealer add: sales region (华北 东北 华东 华中 华南 西南 西北)", NULL},
        {"province", NULL, NULL, "dealer add: province", NULL},
        {"city", NULL, NULL, "dealer add: city", NULL},
        {"address", NULL, NULL, "dealer add: address", NULL},
        {"capacity", NULL, NULL, "dealer add: test drives per day (default 10, 0 no limit)", NULL},
        {"dealer", NULL, NULL, "testdrive list: only this dealer's", NULL},
        {"cert-dir", "CRM_CERT_DIR", "var/dealer-certs", "dealer cert|revoke: the gateway's certificate directory", NULL},
        {"out", NULL, NULL, "dealer cert: file for the dealer's secret certificate", NULL},
        {"status", NULL, NULL, "testdrive list: only in this status", NULL},
        {"from", NULL, "1", "events: first sequence number", NULL},
        {"count", NULL, "100", "events, rejects, quarantine list: how many at most", NULL},
        CRM_OPT_END,
    };
    int npos = 0;
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
    int64_t from, count, n;
    if (crm_opt_i64(opts, "from", 1, INT64_MAX, &from) != 0 ||
        crm_opt_i64(opts, "count", 1, 1000000, &count) != 0 ||
        crm_opt_i64(opts, "timeout-ms", 10, 3600000, &n) != 0 ||
        crm_opt_i64(opts, "tries", 1, 100, &n) != 0)
        return 2;
    crmctl_t ctl = {.opts = opts, .argc = npos, .argv = argv + 1};
    const char *cmd = argv[1];
    if (!strcmp(cmd, "lead"))
        rc = crmctl_lead(&ctl);
    else if (!strcmp(cmd, "customer"))
        rc = crmctl_customer(&ctl);
    else if (!strcmp(cmd, "quarantine"))
        rc = crmctl_quarantine(&ctl);
    else if (!strcmp(cmd, "dealer"))
        rc = crmctl_dealer(&ctl);
    else if (!strcmp(cmd, "testdrive"))
        rc = crmctl_testdrive(&ctl);
    else if (!strcmp(cmd, "status") || !strcmp(cmd, "streams") || !strcmp(cmd, "events") ||
             !strcmp(cmd, "rejects")) {
        if (!strcmp(cmd, "events") && npos < 2) {
            fprintf(stderr, "crmctl events: name the stream (lead, customer, testdrive, followup, audit, notify)\n");
            return 2;
        }
        crm_store_t *store = crmctl_store(&ctl);
        if (!store)
            return 3;
        if (!strcmp(cmd, "status"))
            rc = s_status(store);
        else if (!strcmp(cmd, "streams"))
            rc = s_streams(store);
        else if (!strcmp(cmd, "events"))
            rc = s_events(store, argv[2], (long long) from, (long long) count);
        else
            rc = s_rejects(store, (long long) count);
    } else {
        fprintf(stderr, "crmctl: unknown command '%s' (try --help)\n", cmd);
        rc = 2;
    }
    crm_store_destroy(&ctl.store);
    return rc;
}
