/*  crmctl customer show|find, quarantine list|show. */
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crm_norm.h"
#include "crmctl.h"

static void s_record(const redisReply *c, const redisReply *dealer_name,
                     const redisReply *consultant_name)
{
    const char *dealer = crm_reply_field(c, "dealer_id"),
               *cons = crm_reply_field(c, "consultant_id");
    printf("  owner         dealer %s", dealer && *dealer ? dealer : "- (none yet)");
    if (dealer_name && dealer_name->type == REDIS_REPLY_STRING)
        printf(" (%s)", dealer_name->str);
    printf(", consultant %s", cons && *cons ? cons : "-");
    if (consultant_name && consultant_name->type == REDIS_REPLY_STRING)
        printf(" (%s)", consultant_name->str);
    printf("\n  stage         %s", crmctl_or(c, "stage"));
    static const char *const flags[][2] = {{"fleet", "fleet"},
                                           {"vip", "VIP"},
                                           {"difficult", "difficult"}};
    int nflags = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(crm_reply_field_or(c, flags[i][0], ""), "1"))
            printf("%s%s", nflags++ ? ", " : "   flags ", flags[i][1]);
    printf("   grade %s, expected purchase %s\n", crmctl_or(c, "grade"),
           crmctl_or(c, "expected_purchase_date"));
    const char *stage = crm_reply_field_or(c, "stage", "");
    if (!strcmp(stage, "lost") || !strcmp(stage, "lost_pending"))
        printf("  lost          %s%s%s\n", crmctl_or(c, "lost_reason"),
               *crm_reply_field_or(c, "lost_note", "") ? ": " : "",
               crm_reply_field_or(c, "lost_note", ""));
    for (int i = 0; i < CRM_CF_COUNT; i++) {
        const char *v = crm_reply_field(c, crm_cf_name((crm_cf_t) i));
        if (v)
            printf("  %-13s %s\n", crm_cf_name((crm_cf_t) i), v);
    }
    if (crm_reply_field(c, "remark"))
        printf("  %-13s %s\n", "remark", crm_reply_field(c, "remark"));
}

static void s_vehicle(const char *vin, const redisReply *v)
{
    char extra[64] = "";
    const char *km = crm_reply_field(v, "first_service_mileage");
    if (km && *km)
        snprintf(extra, sizeof extra, " at %s km", km);
    printf("  %-17s %s %s %s, plate %s (%s), engine %s\n", vin, crmctl_or(v, "model"), crmctl_or(v, "colour"),
           crmctl_or(v, "transmission"), crmctl_or(v, "plate"), crmctl_or(v, "plate_date"),
           crmctl_or(v, "engine_number"));
    printf("  %-17s sold %s, delivered %s (order %s), first service %s%s\n", "",
           crmctl_or(v, "sale_date"), crmctl_or(v, "delivered_date"), crmctl_or(v, "order_id"),
           crmctl_or(v, "first_service_date"), extra);
}

static void s_order(const char *member, const redisReply *o)
{
    char placed[40], shown[300];
    /* the member names the key (the order number's digest): show the
       dealer and its own order number */
    const char *colon = strchr(member, ':');
    snprintf(shown, sizeof shown, "%.*s:%s", colon ? (int) (colon - member) : 0, member, crmctl_or(o, "order_id"));
    printf("  %-16s %-9s placed %s by %s: %s, %s yuan, promised %s", shown, crmctl_or(o, "state"),
           crmctl_time(o, "placed_ms", placed, sizeof placed), crmctl_or(o, "consultant_id"),
           crmctl_or(o, "model"), crmctl_or(o, "price"), crmctl_or(o, "promised_date"));
    const char *first = crm_reply_field(o, "first_promised_date"),
               *now = crm_reply_field(o, "promised_date");
    if (first && now && strcmp(first, now))
        printf(" (first promised %s, delays %s)", first, crmctl_or(o, "delays"));
    if (crm_reply_field(o, "delivered_date"))
        printf(", delivered %s vin %s", crmctl_or(o, "delivered_date"), crmctl_or(o, "vin"));
    if (*crm_reply_field_or(o, "reason", ""))
        printf(", reason: %s", crm_reply_field(o, "reason"));
    printf("\n");
}

/* Follow-ups, oldest first, so the newest is last and its next activity
   is the one planned now. */
static void s_followups(const redisReply *f)
{
    printf("follow-ups (oldest first):\n");
    const redisReply *last = NULL;
    for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i < f->elements; i++) {
        const redisReply *kv = f->element[i]->element[1];
        char at[40], next[40];
        printf("  %s  %-8s %s by %s at %s: %s\n", crmctl_time(kv, "at", at, sizeof at),
               crmctl_or(kv, "followup_id"), crmctl_or(kv, "result"), crmctl_or(kv, "consultant_id"),
               crmctl_or(kv, "dealer_id"), crmctl_or(kv, "content"));
        if (*crm_reply_field_or(kv, "feedback", ""))
            printf("  %21s feedback: %s\n", "", crm_reply_field(kv, "feedback"));
        if (*crm_reply_field_or(kv, "grade", "") ||
            *crm_reply_field_or(kv, "expected_purchase_date", ""))
            printf("  %21s grade %s, expected purchase %s\n", "", crmctl_or(kv, "grade"),
                   crmctl_or(kv, "expected_purchase_date"));
        if (*crm_reply_field_or(kv, "next_at", ""))
            printf("  %21s next %s: %s\n", "", crmctl_time(kv, "next_at", next, sizeof next),
                   crmctl_or(kv, "next_content"));
        last = kv;
    }
    char next[40];
    if (last && *crm_reply_field_or(last, "next_at", ""))
        printf("  next activity: %s %s\n", crmctl_time(last, "next_at", next, sizeof next),
               crmctl_or(last, "next_content"));
}

static void s_service(const redisReply *sv)
{
    printf("service history:\n");
    for (size_t i = 0; sv && sv->type == REDIS_REPLY_ARRAY && i < sv->elements; i++) {
        const redisReply *kv = sv->element[i]->element[1];
        char amount[40] = "-";
        const char *fen = crm_reply_field(kv, "amount_fen");
        if (fen && *fen) {
            long long n = atoll(fen);
            snprintf(amount, sizeof amount, "%s%lld.%02lld yuan", n < 0 ? "-" : "", llabs(n) / 100,
                     llabs(n) % 100);
        }
        printf("  %s  work order %s at %s, vin %s, %s km, %s: %s\n", crmctl_or(kv, "date"),
               crmctl_or(kv, "work_order"), crmctl_or(kv, "dealer_id"), crmctl_or(kv, "vin"), crmctl_or(kv, "mileage"),
               amount, crmctl_or(kv, "work"));
    }
}

static bool s_meta_field(const char *name)
{
    static const char *const meta[] = {"channel", "lead", "record", "ts", NULL};
    for (const char *const *m = meta; *m; m++)
        if (!strcmp(name, *m))
            return true;
    size_t n = strlen(name);
    return n > 4 && !strcmp(name + n - 4, ".old");
}

/* The first value of customer field `name`: what its first change
   replaced, or, never changed, what the record holds (a new record's
   values are not repeated in its history). NULL: set later. */
static const char *s_first_value(const redisReply *hist, const redisReply *cust, const char *name)
{
    char oldname[48];
    snprintf(oldname, sizeof oldname, "%s.old", name);
    for (size_t i = 0; hist && hist->type == REDIS_REPLY_ARRAY && i < hist->elements; i++) {
        const redisReply *kv = hist->element[i]->element[1];
        if (crm_reply_field(kv, name))
            return crm_reply_field(kv, oldname);
    }
    return crm_reply_field(cust, name);
}

static void s_history(const redisReply *hist, const redisReply *cust, const char *first_lead)
{
    printf("history (every field change, oldest first):\n");
    char when[40];
    /* What the record was created with, as it came. */
    crmctl_time(cust, "created_ms", when, sizeof when);
    for (int f = 0; f < CRM_CF_COUNT; f++) {
        const char *name = crm_cf_name((crm_cf_t) f), *v = s_first_value(hist, cust, name);
        if (v && *v)
            printf("  %s  %-13s %s   (%s, %s)\n", when, name, v, crmctl_or(cust, "first_channel"),
                   crm_reply_field(cust, "first_ref")   ? crm_reply_field(cust, "first_ref")
                   : first_lead ? first_lead : "created");
    }
    for (size_t i = 0; hist && hist->type == REDIS_REPLY_ARRAY && i < hist->elements; i++) {
        /* One entry per change: "<field>" new value, "<field>.old" the one
           it replaced, the channel (website, dealer:SZ1 ...) and the lead
           or the dealer's record. */
        const redisReply *kv = hist->element[i]->element[1];
        crmctl_time(kv, "ts", when, sizeof when);
        const char *by = crm_reply_field(kv, "lead") ? crm_reply_field(kv, "lead")
                                                     : crmctl_or(kv, "record");
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            const char *name = kv->element[k]->str;
            if (s_meta_field(name))
                continue;
            char oldname[48];
            snprintf(oldname, sizeof oldname, "%s.old", name);
            const char *old = crm_reply_field(kv, oldname);
            printf("  %s  %-13s %s%s%s   (%s, %s)\n", when, name, old ? old : "", old ? " -> " : "",
                   kv->element[k + 1]->str, crmctl_or(kv, "channel"), by);
        }
    }
}

/* Everything about a customer in two round trips: the record and its
   lists, then what the lists name (leads, vehicles, orders) and the names
   of its dealer and consultant. */
static int s_show(crm_store_t *store, const char *cid)
{
    crm_tx_t *tx = crm_tx_new("crmctl", 0), *more = crm_tx_new("crmctl", 0);
    enum { R_CUST, R_FINDINGS, R_FILE_FINDINGS, R_LEADS, R_VEHICLES, R_ORDERS, R_FOLLOWUPS, R_SERVICE, R_HISTORY };
    static const char *const cmds[] = {"HGETALL " CRM_KEY_CUST_FMT,
                                       "HGETALL " CRM_KEY_CUST_FMT ":findings",
                                       "HGETALL " CRM_KEY_CUST_FMT ":findings:dealer",
                                       "LRANGE " CRM_KEY_CUST_FMT ":leads 0 -1",
                                       "SORT " CRM_KEY_CUST_FMT ":vehicles ALPHA",
                                       "SORT " CRM_KEY_CUST_FMT ":orders ALPHA",
                                       "XRANGE " CRM_KEY_CUST_FMT ":followups - +",
                                       "XRANGE " CRM_KEY_CUST_FMT ":service - +",
                                       "XRANGE " CRM_KEY_CUST_FMT ":history - +"};
    int rc = tx && more ? CRMCTL_OK : CRMCTL_NO;
    for (size_t i = 0; rc == CRMCTL_OK && i < sizeof cmds / sizeof cmds[0]; i++)
        if (crm_tx_cmd(tx, cmds[i], cid) < 0)
            rc = CRMCTL_NO;
    if (rc == CRMCTL_OK && crm_store_pipeline(store, tx) != 0)
        rc = CRMCTL_REDIS;
    const redisReply *c = rc == CRMCTL_OK ? crm_tx_result(tx, R_CUST) : NULL;
    if (rc == CRMCTL_OK && c->elements == 0) {
        fprintf(stderr, "crmctl: no customer %s\n", cid);
        rc = CRMCTL_NO;
    }
    const redisReply *leads = crm_tx_result(tx, R_LEADS), *vehs = crm_tx_result(tx, R_VEHICLES),
                     *orders = crm_tx_result(tx, R_ORDERS);
    /* the first lead is the record's (first_lead), the later ones the list's */
    const char *first = c ? crm_reply_field(c, "first_lead") : NULL;
    size_t nlist = leads ? leads->elements : 0, nl = nlist + (first ? 1 : 0);
    const char **lids = calloc(nl + 1, sizeof *lids);
    if (!lids)
        rc = CRMCTL_NO;
    for (size_t i = 0; lids && i < nl; i++)
        lids[i] = first ? (i ? leads->element[i - 1]->str : first) : leads->element[i]->str;
    size_t nv = vehs ? vehs->elements : 0,
           no = orders ? orders->elements : 0;
    for (size_t i = 0; rc == CRMCTL_OK && i < nl; i++)
        rc = crm_tx_cmd(more, "HGETALL " CRM_KEY_LEAD_FMT, lids[i]) < 0 ? CRMCTL_NO
                                                                                       : rc;
    for (size_t i = 0; rc == CRMCTL_OK && i < nv; i++)
        rc = crm_tx_cmd(more, "HGETALL crm:veh:%s", vehs->element[i]->str) < 0 ? CRMCTL_NO : rc;
    for (size_t i = 0; rc == CRMCTL_OK && i < no; i++)
        rc = crm_tx_cmd(more, "HGETALL crm:order:%s", orders->element[i]->str) < 0 ? CRMCTL_NO : rc;
    const char *dealer = c ? crm_reply_field_or(c, "dealer_id", "") : "",
               *cons = c ? crm_reply_field_or(c, "consultant_id", "") : "";
    if (rc == CRMCTL_OK &&
        (crm_tx_cmd(more, "HGET " CRM_KEY_DEALER_FMT " name", *dealer ? dealer : "-") < 0 ||
         crm_tx_cmd(more, "HGET crm:dealer:%s:staff:%s name", *dealer ? dealer : "-",
                    *cons ? cons : "-") < 0))
        rc = CRMCTL_NO;
    if (rc == CRMCTL_OK && crm_store_pipeline(store, more) != 0)
        rc = CRMCTL_REDIS;
    if (rc != CRMCTL_OK) {
        free(lids);
        crm_tx_destroy(&tx);
        crm_tx_destroy(&more);
        return rc;
    }
    char when[40], when2[40];
    printf("customer %s   first seen %s via %s   updated %s\n", cid,
           crmctl_time(c, "created_ms", when, sizeof when), crmctl_or(c, "first_channel"),
           crmctl_time(c, "updated_ms", when2, sizeof when2));
    size_t base = nl + nv + no;
    s_record(c, crm_tx_result(more, (int) base), crm_tx_result(more, (int) base + 1));

    static const char *const heads[] = {"findings:", "findings of the dealer's latest file:"};
    for (int k = 0; k < 2; k++) {
        const redisReply *f = crm_tx_result(tx, k ? R_FILE_FINDINGS : R_FINDINGS);
        if (!f || f->type != REDIS_REPLY_ARRAY || !f->elements)
            continue;
        printf("%s\n", heads[k]);
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            printf("  %-28s %s\n", f->element[i]->str ? f->element[i]->str : "-",
                   f->element[i + 1]->str ? f->element[i + 1]->str : "-");
    }
    printf("leads:\n");
    for (size_t i = 0; i < nl; i++) {
        const redisReply *h = crm_tx_result(more, (int) i);
        const char *td = crm_reply_field(h, "testdrive_at");
        printf("  %-8s %s  %-9s %-18s model=%s grade=%s dealer=%s%s%s  [%s]\n",
               lids[i], crmctl_time(h, "created_ms", when, sizeof when),
               crmctl_or(h, "channel"), crmctl_or(h, "source"), crmctl_or(h, "model"), crmctl_or(h, "intent_grade"),
               crmctl_or(h, "dealer_id"), td ? " test drive " : "",
               td ? crmctl_time(h, "testdrive_at", when2, sizeof when2) : "",
               crm_reply_field_or(h, "submission_id", ""));
        /* what the lead gave where the rules refused or rewrote it */
        for (size_t k = 0; h && h->type == REDIS_REPLY_ARRAY && k + 1 < h->elements; k += 2) {
            const char *name = h->element[k]->str;
            size_t len = name ? strlen(name) : 0;
            if (len > 4 && !strcmp(name + len - 4, ".raw"))
                printf("           received %.*s as \"%s\"\n", (int) (len - 4), name, h->element[k + 1]->str);
        }
    }
    printf("vehicles:\n");
    for (size_t i = 0; i < nv; i++)
        s_vehicle(vehs->element[i]->str, crm_tx_result(more, (int) (nl + i)));
    printf("orders:\n");
    for (size_t i = 0; i < no; i++)
        s_order(orders->element[i]->str, crm_tx_result(more, (int) (nl + nv + i)));
    s_followups(crm_tx_result(tx, R_FOLLOWUPS));
    s_service(crm_tx_result(tx, R_SERVICE));
    s_history(crm_tx_result(tx, R_HISTORY), c, nl ? lids[0] : NULL);
    free(lids);
    crm_tx_destroy(&tx);
    crm_tx_destroy(&more);
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
    /* the name index keeps C<n> as n (crm_customer_index) */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++, found++) {
        const char *m = r->element[i]->str ? r->element[i]->str : "";
        printf("%s%s\n", *m && strspn(m, "0123456789") == strlen(m) ? "C" : "", m);
    }
    freeReplyObject(r);
    return found ? CRMCTL_OK : CRMCTL_NO;
}

int crmctl_customer(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (!strcmp(sub, "assign"))
        return crmctl_uplink(ctl);
    if (strcmp(sub, "show") && strcmp(sub, "find")) {
        fprintf(stderr,
                "crmctl customer: show ID | find --mobile M | --id-number N | --name NAME | "
                "assign ID --consultant S [--dealer D] [--reason R]\n");
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
