/*  crmctl dealer add|list|show|suspend|activate, testdrive list|show. */
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crm_norm.h"
#include "crmctl.h"

static int s_add(crmctl_t *ctl, crm_store_t *store, const char *id)
{
    const char *name = crm_opt(ctl->opts, "name"), *region = crm_opt(ctl->opts, "region"),
               *province = crm_opt(ctl->opts, "province"), *city = crm_opt(ctl->opts, "city"),
               *address = crm_opt(ctl->opts, "address"), *capacity = crm_opt(ctl->opts, "capacity");
    if (!crm_dealer_id_valid(id)) {
        fprintf(stderr, "crmctl dealer add: the id must be 1-32 letters, digits, '-' or '_'\n");
        return CRMCTL_USAGE;
    }
    if (!name || !region || !province || !city) {
        fprintf(stderr, "crmctl dealer add ID --name N --region R --province P --city C [--capacity K] [--address A]\n");
        return CRMCTL_USAGE;
    }
    const char *prov;
    if (crm_norm_province(province, &prov, NULL) != 0) {
        fprintf(stderr, "crmctl dealer add: --province %s is not one of the 34 provincial-level divisions\n", province);
        return CRMCTL_USAGE;
    }
    char cityn[128];
    if (crm_norm_city(city, cityn, sizeof cityn) != 0) {
        fprintf(stderr, "crmctl dealer add: --city %s is not a city name\n", city);
        return CRMCTL_USAGE;
    }
    char *end;
    long long cap = capacity ? strtoll(capacity, &end, 10) : 10;
    if (capacity && (*end || cap < 0)) {
        fprintf(stderr, "crmctl dealer add: --capacity is a whole number of test drives per day (0: no limit)\n");
        return CRMCTL_USAGE;
    }
    /* Re-adding a dealer moves it in the routing sets. */
    redisReply *old = crm_store_cmd(store, "HGETALL " CRM_KEY_DEALER_FMT, id);
    if (!old)
        return CRMCTL_REDIS;
    crm_tx_t *tx = crm_tx_new("crmctl", 0);
    if (crm_reply_field(old, "city")) {
        crm_tx_cmd(tx, "SREM crm:dealers:city:%s %s", crm_reply_field(old, "city"), id);
        crm_tx_cmd(tx, "SREM crm:dealers:province:%s %s", crm_reply_field(old, "province"), id);
        crm_tx_cmd(tx, "SREM crm:dealers:region:%s %s", crm_reply_field(old, "region"), id);
    }
    const char *state = crm_reply_field(old, "state") ? crm_reply_field(old, "state") : "active";
    crm_tx_cmd(tx, "HSET " CRM_KEY_DEALER_FMT " name %s region %s province %s city %s address %s capacity %lld state %s",
               id, name, region, prov, cityn, address ? address : "", cap, state);
    crm_tx_cmd(tx, "SADD " CRM_KEY_DEALERS " %s", id);
    crm_tx_cmd(tx, "SADD crm:dealers:city:%s %s", cityn, id);
    crm_tx_cmd(tx, "SADD crm:dealers:province:%s %s", prov, id);
    crm_tx_cmd(tx, "SADD crm:dealers:region:%s %s", region, id);
    freeReplyObject(old);
    int rc = crm_store_commit(store, tx);
    crm_tx_destroy(&tx);
    if (rc != 0)
        return CRMCTL_REDIS;
    printf("dealer %s: %s, %s %s (%s region), capacity %lld/day, %s\n", id, name, prov, cityn, region, cap, state);
    return CRMCTL_OK;
}

static int s_state(crm_store_t *store, const char *id, const char *state)
{
    redisReply *e = crm_store_cmd(store, "EXISTS " CRM_KEY_DEALER_FMT, id);
    if (!e)
        return CRMCTL_REDIS;
    bool exists = e->integer;
    freeReplyObject(e);
    if (!exists) {
        fprintf(stderr, "crmctl: no dealer %s\n", id);
        return CRMCTL_NO;
    }
    redisReply *r = crm_store_cmd(store, "HSET " CRM_KEY_DEALER_FMT " state %s", id, state);
    freeReplyObject(r);
    printf("dealer %s: %s\n", id, state);
    return r ? CRMCTL_OK : CRMCTL_REDIS;
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
    freeReplyObject(h);
    freeReplyObject(o);
    freeReplyObject(s);
}

int crmctl_dealer(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    const char *id = ctl->argc > 2 ? ctl->argv[2] : NULL;
    bool list = !strcmp(sub, "list");
    if (!list && (!id || (strcmp(sub, "add") && strcmp(sub, "show") && strcmp(sub, "suspend") &&
                          strcmp(sub, "activate") && strcmp(sub, "cert") && strcmp(sub, "revoke")))) {
        fprintf(stderr, "crmctl dealer: add ID --name N --region R --province P --city C [--capacity K] | "
                        "list | show ID | suspend ID | activate ID | cert ID --out FILE | revoke ID\n");
        return CRMCTL_USAGE;
    }
    const char *certs = crm_opt(ctl->opts, "cert-dir");
    if (!strcmp(sub, "cert")) {
        const char *out = crm_opt(ctl->opts, "out");
        if (!out) {
            fprintf(stderr, "crmctl dealer cert %s --out FILE: where to write the dealer's secret certificate\n", id);
            return CRMCTL_USAGE;
        }
        return crmctl_dealer_cert(certs, id, out) == 0 ? CRMCTL_OK : CRMCTL_NO;
    }
    if (!strcmp(sub, "revoke")) {
        if (crmctl_dealer_revoke(certs, id) != 0)
            return CRMCTL_NO;
        printf("dealer %s: certificate revoked; the gateway refuses it from now on\n", id);
        return CRMCTL_OK;
    }
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    if (!strcmp(sub, "add"))
        return s_add(ctl, store, id);
    if (!strcmp(sub, "suspend"))
        return s_state(store, id, "suspended");
    if (!strcmp(sub, "activate"))
        return s_state(store, id, "active");
    redisReply *ids = list ? crm_store_cmd(store, "SORT " CRM_KEY_DEALERS " ALPHA") : NULL;
    if (list && !ids)
        return CRMCTL_REDIS;
    if (list) {
        for (size_t i = 0; i < ids->elements; i++)
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
        printf("%-8s %-21s %-10s %-11s %-21s %s\n", "TEST", "AT", "DEALER", "STATUS", "DISPATCH (DUE)", "CUSTOMER");
        for (size_t i = 0; i < ids->elements; i++) {
            redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_TD_FMT, ids->element[i]->str);
            if ((dealer && (!crm_reply_field(h, "dealer_id") || strcmp(dealer, crm_reply_field(h, "dealer_id")))) ||
                (status && (!crm_reply_field(h, "status") || strcmp(status, crm_reply_field(h, "status"))))) {
                freeReplyObject(h);
                continue;
            }
            s_when(crm_reply_field(h, "at"), at, sizeof at);
            s_when(crm_reply_field(h, "dispatched_ms") ? crm_reply_field(h, "dispatched_ms") : crm_reply_field(h, "due_ms"), disp, sizeof disp);
            printf("%-8s %-21s %-10s %-11s %-21s %s\n", ids->element[i]->str, at,
                   crm_reply_field(h, "dealer_id") && *crm_reply_field(h, "dealer_id") ? crm_reply_field(h, "dealer_id") : "-",
                   crm_reply_field(h, "status") ? crm_reply_field(h, "status") : "-", disp,
                   crm_reply_field(h, "customer_id") ? crm_reply_field(h, "customer_id") : "-");
            freeReplyObject(h);
        }
        freeReplyObject(ids);
        return CRMCTL_OK;
    }
    const char *tid = ctl->argv[2];
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
    printf("test drive %s  at %s  status %s\n", tid, at, crm_reply_field(h, "status"));
    printf("  customer %s  lead %s  model %s\n", crm_reply_field(h, "customer_id"), crm_reply_field(h, "lead_id"),
           crm_reply_field(h, "model") && *crm_reply_field(h, "model") ? crm_reply_field(h, "model") : "-");
    printf("  dealer %s (chosen by the prospect: %s)\n  why: %s\n",
           crm_reply_field(h, "dealer_id") && *crm_reply_field(h, "dealer_id") ? crm_reply_field(h, "dealer_id") : "-",
           crm_reply_field(h, "chosen") && *crm_reply_field(h, "chosen") ? crm_reply_field(h, "chosen") : "none", crm_reply_field(h, "reason"));
    printf("  dispatch due %s, dispatched %s (dealer number %s), acknowledged %s\n", due, disp,
           crm_reply_field(h, "dealer_seq") ? crm_reply_field(h, "dealer_seq") : "-", ack);
    freeReplyObject(h);
    redisReply *hist = crm_store_cmd(store, "XRANGE " CRM_KEY_TD_FMT ":history - +", tid);
    printf("history:\n");
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
