/*  crmctl customer show|find, quarantine list|show. */
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crm_norm.h"
#include "crmctl.h"

static void s_when(const char *ms, char *out, size_t size)
{
    if (!ms) {
        snprintf(out, size, "-");
        return;
    }
    crm_format_cst(atoll(ms), out, size);
}

static int s_show(crm_store_t *store, const char *cid)
{
    redisReply *c = crm_store_cmd(store, "HGETALL " CRM_KEY_CUST_FMT, cid);
    if (!c)
        return CRMCTL_REDIS;
    if (c->elements == 0) {
        fprintf(stderr, "crmctl: no customer %s\n", cid);
        freeReplyObject(c);
        return CRMCTL_NO;
    }
    char when[40], when2[40];
    s_when(crm_reply_field(c, "created_ms"), when, sizeof when);
    s_when(crm_reply_field(c, "updated_ms"), when2, sizeof when2);
    printf("customer %s   first seen %s via %s   updated %s\n", cid, when,
           crm_reply_field(c, "first_channel") ? crm_reply_field(c, "first_channel") : "-", when2);
    for (int i = 0; i < CRM_CF_COUNT; i++) {
        const char *v = crm_reply_field(c, crm_cf_name((crm_cf_t) i));
        if (v)
            printf("  %-13s %s\n", crm_cf_name((crm_cf_t) i), v);
    }
    freeReplyObject(c);

    redisReply *f = crm_store_cmd(store, "HGETALL " CRM_KEY_CUST_FMT ":findings", cid);
    if (f && f->elements) {
        printf("findings:\n");
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            printf("  %-28s %s\n", f->element[i]->str, f->element[i + 1]->str);
    }
    freeReplyObject(f);

    redisReply *l = crm_store_cmd(store, "LRANGE " CRM_KEY_CUST_FMT ":leads 0 -1", cid);
    printf("leads:\n");
    for (size_t i = 0; l && i < l->elements; i++) {
        redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_LEAD_FMT, l->element[i]->str);
        s_when(crm_reply_field(h, "created_ms"), when, sizeof when);
        const char *td = crm_reply_field(h, "testdrive_at");
        if (td)
            s_when(td, when2, sizeof when2);
        printf("  %-8s %s  %-9s %-18s model=%s grade=%s dealer=%s%s%s  [%s]\n", l->element[i]->str,
               when, crm_reply_field(h, "channel") ? crm_reply_field(h, "channel") : "-",
               crm_reply_field(h, "source") ? crm_reply_field(h, "source") : "-",
               crm_reply_field(h, "model") ? crm_reply_field(h, "model") : "-",
               crm_reply_field(h, "intent_grade") ? crm_reply_field(h, "intent_grade") : "-",
               crm_reply_field(h, "dealer_id") ? crm_reply_field(h, "dealer_id") : "-", td ? " test drive " : "",
               td ? when2 : "", crm_reply_field(h, "submission_id") ? crm_reply_field(h, "submission_id") : "");
        freeReplyObject(h);
    }
    freeReplyObject(l);

    redisReply *hist = crm_store_cmd(store, "XRANGE " CRM_KEY_CUST_FMT ":history - +", cid);
    printf("history (every field change, oldest first):\n");
    for (size_t i = 0; hist && i < hist->elements; i++) {
        /* One entry per lead: "<field>" new value, "<field>.old" the one it replaced. */
        const redisReply *kv = hist->element[i]->element[1];
        s_when(crm_reply_field(kv, "ts"), when, sizeof when);
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            const char *name = kv->element[k]->str;
            if (crm_cf_from_name(name) < 0)
                continue;
            char oldname[48];
            snprintf(oldname, sizeof oldname, "%s.old", name);
            const char *old = crm_reply_field(kv, oldname);
            printf("  %s  %-13s %s%s%s   (%s, %s)\n", when, name, old ? old : "", old ? " -> " : "",
                   kv->element[k + 1]->str, crm_reply_field_or(kv, "channel", "-"), crm_reply_field_or(kv, "lead", "-"));
        }
    }
    freeReplyObject(hist);
    return CRMCTL_OK;
}

static int s_find(crmctl_t *ctl, crm_store_t *store)
{
    const char *mobile = crm_opt(ctl->opts, "mobile"), *idn = crm_opt(ctl->opts, "id-number"),
               *name = crm_opt(ctl->opts, "name");
    redisReply *r = NULL;
    char norm[64];
    if (mobile) {
        if (crm_norm_mobile(mobile, norm) != CRM_NORM_OK) {
            fprintf(stderr, "crmctl: --mobile %s is not a mobile number\n", mobile);
            return CRMCTL_USAGE;
        }
        r = crm_store_cmd(store, "GET " CRM_KEY_IDX_MOBILE_FMT, norm);
    } else if (idn) {
        crm_idcard_t id;
        if (crm_norm_idcard(idn, &id) != CRM_NORM_OK) {
            fprintf(stderr, "crmctl: --id-number is not a valid ID number\n");
            return CRMCTL_USAGE;
        }
        r = crm_store_cmd(store, "GET " CRM_KEY_IDX_ID_FMT, id.id);
    } else if (name) {
        r = crm_store_cmd(store, "SMEMBERS " CRM_KEY_IDX_NAME_FMT, name);
    } else {
        fprintf(stderr, "crmctl customer find: give --mobile, --id-number or --name\n");
        return CRMCTL_USAGE;
    }
    if (!r)
        return CRMCTL_REDIS;
    int found = 0;
    if (r->type == REDIS_REPLY_STRING) {
        printf("%s\n", r->str);
        found = 1;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++, found++)
        printf("%s\n", r->element[i]->str);
    freeReplyObject(r);
    return found ? CRMCTL_OK : CRMCTL_NO;
}

int crmctl_customer(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (strcmp(sub, "show") && strcmp(sub, "find")) {
        fprintf(stderr, "crmctl customer: show ID | find --mobile M | --id-number N | --name NAME\n");
        return CRMCTL_USAGE;
    }
    if (!strcmp(sub, "show") && ctl->argc < 3) {
        fprintf(stderr, "crmctl customer show: name the customer (e.g. C12)\n");
        return CRMCTL_USAGE;
    }
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    if (!strcmp(sub, "show") && !crmctl_id_ok(ctl->argv[2], "customer id"))
        return CRMCTL_USAGE;
    return !strcmp(sub, "show") ? s_show(store, ctl->argv[2]) : s_find(ctl, store);
}
