/*  crmctl dealer add|list|show|suspend|activate, testdrive list|show. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crm_norm.h"
#include "crmctl.h"

/* dealer add and dealer update: the flags given, as one request. */
static int s_change(crmctl_t *ctl, const char *sub, const char *id, const char *state)
{
    if (!crmctl_id_ok(id, "dealer id"))
        return CRMCTL_USAGE;
    const char *name = crm_opt(ctl->opts, "name"), *region = crm_opt(ctl->opts, "region"),
               *province = crm_opt(ctl->opts, "province"), *city = crm_opt(ctl->opts, "city"),
               *address = crm_opt(ctl->opts, "address"), *capacity = crm_opt(ctl->opts, "capacity");
    /* Checked by crm-dispatcher (crm_hours_parse), which names the field. */
    const char *hours = crm_opt(ctl->opts, "hours");
    bool add = !strcmp(sub, "add");
    if (hours && !add && !strcmp(hours, "default"))
        hours = ""; /* empty: back to the scheduler's default */
    if (add && (!name || !province || !city)) {
        fprintf(stderr, "crmctl dealer add ID --name N --province P --city C [--region R] [--capacity K] [--address A] [--hours HH:MM-HH:MM]\n");
        return CRMCTL_USAGE;
    }
    long long cap = 0;
    bool has_cap = capacity != NULL;
    if (capacity && !add && !strcmp(capacity, "default")) {
        cap = -1;
    } else if (capacity) {
        char *end;
        errno = 0;
        cap = strtoll(capacity, &end, 10);
        if (!*capacity || *end || cap < 0 || errno) {
            fprintf(stderr, "crmctl dealer: --capacity is a whole number of test drives per day (0: no limit%s)\n",
                    add ? "" : "; default: the dispatcher's default");
            return CRMCTL_USAGE;
        }
    }
    crm_msg_t req, ans;
    if (add) {
        crm_msg_init(&req, CRM_T_dealer_register);
        CRM_SET_STR(&req, dealer_register, dealer_id, id);
        CRM_SET_STR(&req, dealer_register, name, name);
        CRM_SET_STR(&req, dealer_register, province, province);
        CRM_SET_STR(&req, dealer_register, city, city);
        CRM_SET_STR(&req, dealer_register, region, region);
        CRM_SET_STR(&req, dealer_register, address, address);
        if (has_cap)
            CRM_SET_I64(&req, dealer_register, capacity, cap);
        CRM_SET_STR(&req, dealer_register, hours, hours);
    } else {
        crm_msg_init(&req, CRM_T_dealer_update);
        CRM_SET_STR(&req, dealer_update, dealer_id, id);
        CRM_SET_STR(&req, dealer_update, name, name);
        CRM_SET_STR(&req, dealer_update, province, province);
        CRM_SET_STR(&req, dealer_update, city, city);
        CRM_SET_STR(&req, dealer_update, region, region);
        CRM_SET_STR(&req, dealer_update, address, address);
        CRM_SET_STR(&req, dealer_update, state, state);
        if (has_cap)
            CRM_SET_I64(&req, dealer_update, capacity, cap);
        CRM_SET_STR(&req, dealer_update, hours, hours);
    }
    int rc = crmctl_request(ctl, "dispatcher", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    if (ans.type == CRM_T_reply && ans.body.reply.ok)
        printf("dealer %s: %s\n", id, add ? "registered" : state ? state : "updated");
    rc = crmctl_reply(&ans, add ? "dealer add" : "dealer update");
    crm_msg_clear(&ans);
    return rc;
}

static void s_print_dealer(crm_store_t *store, const char *id, bool full)
{
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_DEALER_FMT, id);
    redisReply *o = crm_store_cmd(store, "SCARD crm:dealer:%s:open", id);
    redisReply *s = crm_store_cmd(store, "GET crm:{dealer.%s}:seq", id);
    printf("%-10s %-9s %-6s %-10s %-10s cap %-4s open %-4lld dispatched %-6s acked %-6s %s\n", id,
           crm_reply_field(h, "state") ? crm_reply_field(h, "state") : "?", crm_reply_field(h, "region") ? crm_reply_field(h, "region") : "-",
           crm_reply_field(h, "province") ? crm_reply_field(h, "province") : "-", crm_reply_field(h, "city") ? crm_reply_field(h, "city") : "-",
           crm_reply_field(h, "capacity") ? crm_reply_field(h, "capacity") : "-", o ? o->integer : 0,
           s && s->type == REDIS_REPLY_STRING ? s->str : "0", crm_reply_field(h, "acked") ? crm_reply_field(h, "acked") : "0",
           crm_reply_field(h, "name") ? crm_reply_field(h, "name") : "");
    if (full && crm_reply_field(h, "address") && *crm_reply_field(h, "address"))
        printf("  address: %s\n", crm_reply_field(h, "address"));
    if (full)
        printf("  hours: %s\n", crm_reply_field(h, "hours") ? crm_reply_field(h, "hours") : "default (09:00-18:00)");
    freeReplyObject(h);
    freeReplyObject(o);
    freeReplyObject(s);
}

int crmctl_dealer(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    const char *id = ctl->argc > 2 ? ctl->argv[2] : NULL;
    static const char *const subs[] = {"add", "update", "show", "suspend", "activate", "cert", "revoke", NULL};
    bool list = !strcmp(sub, "list"), known = false;
    for (const char *const *s = subs; *s; s++)
        known |= !strcmp(sub, *s);
    if (!list && (!id || !known)) {
        fprintf(stderr, "crmctl dealer: add ID --name N --province P --city C [--region R] [--capacity K] [--hours HH:MM-HH:MM] | "
                        "update ID [flags] | list | show ID | suspend ID | activate ID | cert ID --out FILE | revoke ID\n");
        return CRMCTL_USAGE;
    }
    if (id && !crmctl_id_ok(id, "dealer id"))
        return CRMCTL_USAGE;
    if (!strcmp(sub, "cert"))
        return crmctl_cert(ctl, "dispatcher", "dealer-id", id, crm_opt(ctl->opts, "out"));
    if (!strcmp(sub, "revoke"))
        return crmctl_cert_revoke(ctl, "dispatcher", id);
    if (!strcmp(sub, "add") || !strcmp(sub, "update"))
        return s_change(ctl, sub, id, NULL);
    if (!strcmp(sub, "suspend"))
        return s_change(ctl, "update", id, "suspended");
    if (!strcmp(sub, "activate"))
        return s_change(ctl, "update", id, "active");
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    if (list) {
        redisReply *ids = crm_store_cmd(store, "SORT " CRM_KEY_DEALERS " ALPHA");
        if (!ids)
            return CRMCTL_REDIS;
        for (size_t i = 0; i < ids->elements; i++)
            if (crm_id_valid(CRM_ID_NAME, ids->element[i]->str))
                s_print_dealer(store, ids->element[i]->str, false);
        freeReplyObject(ids);
        return CRMCTL_OK;
    }
    redisReply *e = crm_store_cmd(store, "EXISTS " CRM_KEY_DEALER_FMT, id);
    bool exists = e && e->integer;
    freeReplyObject(e);
    if (!exists) {
        fprintf(stderr, "crmctl: no dealer %s\n", id);
        return CRMCTL_NO;
    }
    s_print_dealer(store, id, true);
    return CRMCTL_OK;
}

/* ------------------------------------------------------------ regions */

int crmctl_regions(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "show";
    if (!strcmp(sub, "show")) {
        crm_store_t *store = crmctl_store(ctl);
        if (!store)
            return CRMCTL_REDIS;
        redisReply *r = crm_store_cmd(store, "LRANGE " CRM_KEY_REGIONS_TABLE " 0 -1");
        if (!r)
            return CRMCTL_REDIS;
        if (r->elements == 0)
            printf("no sales regions stored yet (crm-dispatcher writes its built-in table on its first start)\n");
        for (size_t i = 0; i < r->elements; i++) {
            char *line = strdup(r->element[i]->str), *eq = line ? strchr(line, '=') : NULL;
            if (eq) {
                *eq = 0;
                printf("%s = %s\n", line, eq + 1);
            }
            free(line);
        }
        freeReplyObject(r);
        return CRMCTL_OK;
    }
    if (strcmp(sub, "load") || ctl->argc < 3) {
        fprintf(stderr, "crmctl regions: show | load FILE (lines \"region = province, province\")\n");
        return CRMCTL_USAGE;
    }
    FILE *f = fopen(ctl->argv[2], "r");
    if (!f) {
        fprintf(stderr, "crmctl: cannot read %s\n", ctl->argv[2]);
        return CRMCTL_NO;
    }
    /* Every line as it is (the dispatcher skips comments and blank lines),
       so the line numbers of its errors are the file's. */
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_regions_load);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\r\n")] = 0;
        crm_strs_push(&req.body.regions_load.regions, line);
    }
    free(line);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "crmctl: cannot read %s: %s\n", ctl->argv[2], strerror(errno));
        crm_msg_clear(&req);
        return CRMCTL_NO;
    }
    req.body.regions_load.has.regions = true;
    int rc = crmctl_request(ctl, "dispatcher", &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    if (ans.type == CRM_T_reply && ans.body.reply.ok)
        printf("sales regions replaced:\n");
    rc = crmctl_reply(&ans, "regions load");
    crm_msg_clear(&ans);
    return rc;
}

/* ------------------------------------------------------------ testdrive */

static void s_when(const char *ms, char *out, size_t size)
{
    if (ms && *ms)
        crm_format_cst(atoll(ms), out, size);
    else
        snprintf(out, size, "-");
}

int crmctl_testdrive(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (strcmp(sub, "list") && (strcmp(sub, "show") || ctl->argc < 3)) {
        fprintf(stderr, "crmctl testdrive: list [--dealer D] [--status S] | show ID\n");
        return CRMCTL_USAGE;
    }
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    char at[40], due[40], disp[40], ack[40];
    if (!strcmp(sub, "list")) {
        const char *dealer = crm_opt(ctl->opts, "dealer"), *status = crm_opt(ctl->opts, "status");
        redisReply *ids = crm_store_cmd(store, "ZRANGE " CRM_KEY_TDS " 0 -1");
        if (!ids)
            return CRMCTL_REDIS;
        /* every record in one round trip */
        crm_tx_t *tx = crm_tx_new("crmctl", 0);
        for (size_t i = 0; tx && ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++)
            crm_tx_cmd(tx, "HGETALL " CRM_KEY_TD_FMT, ids->element[i]->str);
        if (!tx || crm_store_pipeline(store, tx) != 0) {
            crm_tx_destroy(&tx);
            freeReplyObject(ids);
            return CRMCTL_REDIS;
        }
        printf("%-8s %-21s %-10s %-11s %-21s %s\n", "TEST", "AT", "DEALER", "STATUS", "DISPATCH (DUE)", "CUSTOMER");
        for (size_t i = 0; i < crm_tx_size(tx); i++) {
            const redisReply *h = crm_tx_result(tx, (int) i);
            const char *d = crm_reply_field_or(h, "dealer_id", ""), *st = crm_reply_field_or(h, "status", "-");
            if ((dealer && strcmp(dealer, d)) || (status && strcmp(status, st)))
                continue;
            s_when(crm_reply_field(h, "at"), at, sizeof at);
            s_when(crm_reply_field_or(h, "dispatched_ms", crm_reply_field(h, "due_ms")), disp, sizeof disp);
            printf("%-8s %-21s %-10s %-11s %-21s %s\n", ids->element[i]->str, at, *d ? d : "-", st, disp,
                   crm_reply_field_or(h, "customer_id", "-"));
        }
        crm_tx_destroy(&tx);
        freeReplyObject(ids);
        return CRMCTL_OK;
    }
    const char *tid = ctl->argv[2];
    if (!crmctl_id_ok(tid, "test drive id"))
        return CRMCTL_USAGE;
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_TD_FMT, tid);
    if (!h)
        return CRMCTL_REDIS;
    if (h->elements == 0) {
        fprintf(stderr, "crmctl: no test drive %s\n", tid);
        freeReplyObject(h);
        return CRMCTL_NO;
    }
    s_when(crm_reply_field(h, "at"), at, sizeof at);
    s_when(crm_reply_field(h, "due_ms"), due, sizeof due);
    s_when(crm_reply_field(h, "dispatched_ms"), disp, sizeof disp);
    s_when(crm_reply_field(h, "acked_ms"), ack, sizeof ack);
#define S_F(name) (*crm_reply_field_or(h, name, "") ? crm_reply_field(h, name) : "-")
    printf("test drive %s  at %s  status %s\n", tid, at, S_F("status"));
    printf("  customer %s  lead %s  model %s\n", S_F("customer_id"), S_F("lead_id"), S_F("model"));
    printf("  dealer %s (chosen by the prospect: %s)\n  why: %s (%s)\n", S_F("dealer_id"),
           *crm_reply_field_or(h, "chosen", "") ? crm_reply_field(h, "chosen") : "none", S_F("reason_text"),
           S_F("reason"));
    printf("  dispatch due %s, dispatched %s (dealer number %s), acknowledged %s\n", due, disp, S_F("dealer_seq"),
           ack);
    printf("history:\n");
    /* the routing, the dispatch and the acknowledgement are the record's */
    char when[40];
    if (*crm_reply_field_or(h, "requested_ms", "")) {
        s_when(crm_reply_field(h, "requested_ms"), when, sizeof when);
        printf("  %s  %-11s by %-10s %s\n", when, strcmp(crm_reply_field_or(h, "reason", "none"), "none") ? "routed" : "unrouted",
               "dispatcher", S_F("reason_text"));
    }
    if (*crm_reply_field_or(h, "dispatched_ms", ""))
        printf("  %s  %-11s by %-10s %s\n", disp, "dispatched", "dispatcher", S_F("dealer_id"));
    if (*crm_reply_field_or(h, "acked_ms", ""))
        printf("  %s  %-11s by %-10s\n", ack, "acked", S_F("dealer_id"));
#undef S_F
    freeReplyObject(h);
    redisReply *hist = crm_store_cmd(store, "XRANGE " CRM_KEY_TD_FMT ":history - +", tid);
    for (size_t i = 0; hist && i < hist->elements; i++) {
        const redisReply *kv = hist->element[i]->element[1];
        s_when(crm_reply_field(kv, "ts"), at, sizeof at);
        const char *note = crm_reply_field(kv, "note"), *reason = crm_reply_field(kv, "reason"), *when = crm_reply_field(kv, "at");
        char whens[40] = "";
        if (when && *when)
            crm_format_cst(atoll(when), whens, sizeof whens);
        printf("  %s  %-11s by %-10s %s%s%s\n", at, crm_reply_field_or(kv, "status", "-"), crm_reply_field_or(kv, "by", "-"), whens,
               note && *note ? note : "", reason && *reason ? reason : "");
    }
    freeReplyObject(hist);
    return CRMCTL_OK;
}
