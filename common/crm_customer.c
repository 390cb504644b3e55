/*  crm_customer: the one customer store (see crm_customer.h). */
#include "crm_str.h"
#include "crm_customer.h"

#include <stdlib.h>
#include <string.h>

#include "crm_keys.h"

void crm_customer_load(crm_fields_t *rec, const redisReply *h)
{
    for (size_t e = 0; h && h->type == REDIS_REPLY_ARRAY && e + 1 < h->elements; e += 2) {
        if (h->element[e]->type != REDIS_REPLY_STRING || h->element[e + 1]->type != REDIS_REPLY_STRING)
            continue;
        int f = crm_cf_from_name(h->element[e]->str);
        if (f >= 0 && h->element[e + 1]->len && !rec->v[f])
            rec->v[f] = strdup(h->element[e + 1]->str);
    }
}

int crm_customer_merge(crm_tx_t *tx, const char *cid, crm_fields_t *rec, const crm_fields_t *in,
                       const crm_merge_t *how, crm_strs_t *changed)
{
    const char *hset[2 + 2 * CRM_CF_COUNT + 6] = {"HSET", NULL};
    const char *hist[10 + 6 * CRM_CF_COUNT] = {"XADD", NULL, "*", how->ref_name, how->ref, "channel", how->channel,
                                               "ts", how->now};
    char ckey[64], hkey[80], oldnames[CRM_CF_COUNT][24], rawnames[CRM_CF_COUNT][24];
    crm_fmt(ckey, sizeof ckey, CRM_KEY_CUST_FMT, cid);
    crm_fmt(hkey, sizeof hkey, CRM_KEY_CUST_FMT ":history", cid);
    hset[1] = ckey;
    hist[1] = hkey;
    int nh = 2, nx = 9, n = 0;
    /* A new record's first values are the record itself (and the lead or
       record that brought them): its history holds only what the record
       cannot, a dealer record's values that the rules refused or rewrote. A
       value a later change replaces is in that change's entry as
       "<field>.old". */
    bool values = !how->created;
    /* What a lead received is kept with the lead (crm:lead:L, intake); what
       a dealer's record did, here. */
    bool raw_here = strcmp(how->ref_name, "lead") != 0;
    char *olds[CRM_CF_COUNT] = {0};
    bool oom = false;
    for (int i = 0; i < CRM_CF_COUNT; i++) {
        const char *nv = in->v[i];
        const char *name = crm_cf_name((crm_cf_t) i);
        /* "<field>.raw", only where it is used (a dealer's record) */
        if (raw_here && in->raw[i])
            crm_join(rawnames[i], sizeof rawnames[i], name, '.', "raw");
        /* What was received, when it differs from what is kept: a value
           refused by the rules is in the history only. */
        if (raw_here && !nv && in->raw[i]) {
            hist[nx++] = rawnames[i];
            hist[nx++] = in->raw[i];
        }
        if (!nv || (rec->v[i] && !strcmp(rec->v[i], nv)))
            continue;
        char *copy = strdup(nv);
        if (!copy) {
            oom = true;
            break;
        }
        hset[nh++] = name;
        hset[nh++] = nv;
        if (values) {
            hist[nx++] = name;
            hist[nx++] = nv;
        }
        if (rec->v[i]) {
            crm_join(oldnames[i], sizeof oldnames[i], name, '.', "old");
            hist[nx++] = oldnames[i];
            hist[nx++] = rec->v[i];
        }
        if (raw_here && in->raw[i]) {
            hist[nx++] = rawnames[i];
            hist[nx++] = in->raw[i];
        }
        if (changed)
            crm_strs_push(changed, name);
        olds[i] = rec->v[i];
        rec->v[i] = copy;
        n++;
    }
    if (how->created) {
        hset[nh++] = "created_ms", hset[nh++] = how->now;
        hset[nh++] = "first_channel", hset[nh++] = how->channel;
        /* the lead it came from (the later ones are in :leads), or the
           dealer's record */
        if (how->ref && *how->ref)
            hset[nh++] = strcmp(how->ref_name, "lead") ? "first_ref" : "first_lead", hset[nh++] = how->ref;
    }
    hset[nh++] = "updated_ms", hset[nh++] = how->now;
    crm_tx_cmdargv(tx, nh, hset, NULL);
    if (nx > 9)
        crm_tx_cmdargv(tx, nx, hist, NULL);
    for (int i = 0; i < CRM_CF_COUNT; i++)
        free(olds[i]);
    return oom ? -1 : n;
}

/* "<cmd> <prefix><value> <cid>" into `tx`. */
static void s_index(crm_tx_t *tx, const char *cmd, const char *prefix, const char *value, const char *cid)
{
    char buf[512], *key = buf;
    size_t np = strlen(prefix), nv = strlen(value);
    if (np + nv + 1 > sizeof buf && !(key = malloc(np + nv + 1))) {
        crm_tx_cmdargv(tx, 0, NULL, NULL); /* marks the transaction failed: never a lost index */
        return;
    }
    memcpy(key, prefix, np);
    memcpy(key + np, value, nv + 1);
    const char *argv[] = {cmd, key, cid};
    crm_tx_cmdargv(tx, 3, argv, NULL);
    if (key != buf)
        free(key);
}

void crm_customer_index(crm_tx_t *tx, const char *cid, const crm_fields_t *in, unsigned keep)
{
    if (in->indexable_mobile && in->v[CRM_CF_mobile] && !(keep & CRM_IDX_KEEP_MOBILE))
        s_index(tx, "SET", CRM_KEY_IDX_MOBILE, in->v[CRM_CF_mobile], cid);
    if (in->indexable_id && in->v[CRM_CF_id_number] && !(keep & CRM_IDX_KEEP_ID))
        s_index(tx, "SET", CRM_KEY_IDX_ID, in->v[CRM_CF_id_number], cid);
    if (in->v[CRM_CF_name]) {
        /* C<n> as its number n: a set of numbers is Redis's small intset
           (a name's set is a third of the size); readers add the C back */
        const char *member = cid;
        if (cid[0] == 'C' && cid[1] && strspn(cid + 1, "0123456789") == strlen(cid + 1) && strlen(cid) < 19)
            member = cid + 1;
        s_index(tx, "SADD", CRM_KEY_IDX_NAME, in->v[CRM_CF_name], member);
    }
}

static void s_put(const crm_issues_t *list, const char **argv, int *na, char (*keys)[72], char (*vals)[240],
                  int *nk, bool all)
{
    for (int i = 0; list && i < list->n && *nk < 2 * CRM_ISSUES_MAX; i++) {
        const crm_issue_t *is = &list->v[i];
        if (!all && (is->severity == CRM_SEV_REJECT || !crm_lead_is_record_field(is->field)))
            continue;
        /* a rejecting rule of leads is a finding of a record (its data
           are kept whatever they are) */
        crm_severity_t sev = is->severity == CRM_SEV_REJECT ? CRM_SEV_ERROR : is->severity;
        crm_fmt(keys[*nk], sizeof keys[0], "%s:%s", is->field, is->code);
        crm_fmt(vals[*nk], sizeof vals[0], "%s|%s", crm_severity_name(sev), is->message);
        argv[(*na)++] = keys[*nk];
        argv[(*na)++] = vals[*nk];
        (*nk)++;
    }
}

static void s_write(crm_tx_t *tx, const char *key, const crm_issues_t *a, int from, bool all, const crm_issues_t *b,
                    bool replace)
{
    if (replace)
        crm_tx_cmd(tx, "DEL %s", key);
    const char **argv = calloc(2 + 4 * CRM_ISSUES_MAX, sizeof *argv);
    char (*keys)[72] = calloc(2 * CRM_ISSUES_MAX, sizeof *keys);
    char (*vals)[240] = calloc(2 * CRM_ISSUES_MAX, sizeof *vals);
    if (argv && keys && vals) {
        argv[0] = "HSET", argv[1] = key;
        int na = 2, nk = 0;
        crm_issues_t rest = {0};
        for (int i = from; a && i < a->n; i++)
            rest.v[rest.n++] = a->v[i];
        s_put(&rest, argv, &na, keys, vals, &nk, all);
        s_put(b, argv, &na, keys, vals, &nk, true);
        if (na > 2)
            crm_tx_cmdargv(tx, na, argv, NULL);
    }
    free(argv), free(keys), free(vals);
}

void crm_customer_file_findings(crm_tx_t *tx, const char *cid, const crm_issues_t *issues, int first)
{
    char fkey[96];
    crm_fmt(fkey, sizeof fkey, CRM_KEY_CUST_FMT ":findings:dealer", cid);
    s_write(tx, fkey, issues, first, true, NULL, true);
}
