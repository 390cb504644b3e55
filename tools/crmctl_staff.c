/*  crmctl staff add|update|leave|list|show: a dealer's consultants,
 *  managers and director. The changes are requests to crm-dispatcher
 *  (tools/crmctl_uplink.c's table); list and show read
 *  crm:dealer:<D>:staff and its members' hashes, pipelined.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crmctl.h"

/* Prints `s` and pads it to `width` columns as a terminal shows it: a
   Chinese character takes two. */
static void s_cell(const char *s, int width)
{
    int cols = 0;
    const unsigned char *p = (const unsigned char *) s;
    size_t n = strlen(s);
    while (n) {
        uint32_t cp;
        int len = crm_utf8_next(p, n, &cp);
        if (len <= 0)
            break;
        cols += cp >= 0x1100 && (cp <= 0x115f || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                                 (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                                 (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                                 (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd))
                    ? 2
                    : 1;
        p += len;
        n -= (size_t) len;
    }
    printf("%s%*s", s, cols < width ? width - cols : 0, "");
}

/* Whether the dealer is known (result 0) and its staff ids sorted
   (result 1), in one round trip; the caller destroys the pipeline. NULL
   when Redis cannot be read. */
static crm_tx_t *s_staff_ids(crm_store_t *store, const char *dealer)
{
    crm_tx_t *tx = crm_tx_new("crmctl", 0);
    if (!tx || crm_tx_cmd(tx, "EXISTS " CRM_KEY_DEALER_FMT, dealer) < 0 ||
        crm_tx_cmd(tx, "SORT crm:dealer:%s:staff ALPHA", dealer) < 0 ||
        crm_store_pipeline(store, tx) != 0)
        crm_tx_destroy(&tx);
    return tx;
}

static int s_list(crm_store_t *store, const char *dealer)
{
    crm_tx_t *head = s_staff_ids(store, dealer);
    if (!head)
        return CRMCTL_REDIS;
    bool known = crm_tx_result(head, 0)->integer > 0;
    const redisReply *ids = crm_tx_result(head, 1);
    if (!known && ids->elements == 0) {
        fprintf(stderr, "crmctl: no dealer %s\n", dealer);
        crm_tx_destroy(&head);
        return CRMCTL_NO;
    }
    crm_tx_t *tx = crm_tx_new("crmctl", 0);
    int rc = tx ? CRMCTL_OK : CRMCTL_NO;
    for (size_t i = 0; rc == CRMCTL_OK && i < ids->elements; i++)
        if (crm_tx_cmd(tx, "HGETALL crm:dealer:%s:staff:%s", dealer, ids->element[i]->str) < 0 ||
            crm_tx_cmd(tx, "SCARD crm:dealer:%s:staff:%s:customers", dealer, ids->element[i]->str) <
                0)
            rc = CRMCTL_NO;
    if (rc == CRMCTL_OK && ids->elements && crm_store_pipeline(store, tx) != 0)
        rc = CRMCTL_REDIS;
    if (rc == CRMCTL_OK) {
        printf("%-12s %-10s ", "STAFF", "ROLE");
        s_cell("NAME", 16);
        printf(" %-12s %-6s %s\n", "MANAGER", "STATE", "CUSTOMERS");
        for (size_t i = 0; i < ids->elements; i++) {
            const redisReply *h = crm_tx_result(tx, (int) (2 * i));
            const redisReply *n = crm_tx_result(tx, (int) (2 * i + 1));
            printf("%-12s %-10s ", ids->element[i]->str, crmctl_or(h, "role"));
            s_cell(crmctl_or(h, "name"), 16);
            printf(" %-12s %-6s %lld\n", crmctl_or(h, "manager_id"), crmctl_or(h, "state"),
                   n ? n->integer : 0);
        }
        printf("%zu staff at %s\n", ids->elements, dealer);
    }
    crm_tx_destroy(&tx);
    crm_tx_destroy(&head);
    return rc;
}

static int s_show(crm_store_t *store, const char *dealer, const char *sid)
{
    crm_tx_t *head = s_staff_ids(store, dealer);
    if (!head)
        return CRMCTL_REDIS;
    bool known = crm_tx_result(head, 0)->integer > 0;
    const redisReply *ids = crm_tx_result(head, 1);
    /* the entry, its customers, and everyone's manager (who reports to it) */
    crm_tx_t *tx = crm_tx_new("crmctl", 0);
    int rc = tx ? CRMCTL_OK : CRMCTL_NO;
    if (rc == CRMCTL_OK &&
        (crm_tx_cmd(tx, "HGETALL crm:dealer:%s:staff:%s", dealer, sid) < 0 ||
         crm_tx_cmd(tx, "SORT crm:dealer:%s:staff:%s:customers ALPHA", dealer, sid) < 0))
        rc = CRMCTL_NO;
    for (size_t i = 0; rc == CRMCTL_OK && i < ids->elements; i++)
        if (crm_tx_cmd(tx, "HMGET crm:dealer:%s:staff:%s manager_id state", dealer,
                       ids->element[i]->str) < 0)
            rc = CRMCTL_NO;
    if (rc == CRMCTL_OK && crm_store_pipeline(store, tx) != 0)
        rc = CRMCTL_REDIS;
    const redisReply *h = rc == CRMCTL_OK ? crm_tx_result(tx, 0) : NULL;
    if (rc == CRMCTL_OK && (!h || h->elements == 0)) {
        fprintf(stderr, "crmctl: no staff member %s at dealer %s%s\n", sid, dealer,
                known ? "" : " (no such dealer)");
        rc = CRMCTL_NO;
    }
    if (rc == CRMCTL_OK) {
        char since[40], updated[40], left[40];
        crmctl_time(h, "created_ms", since, sizeof since);
        crmctl_time(h, "updated_ms", updated, sizeof updated);
        crmctl_time(h, "left_ms", left, sizeof left);
        printf("staff %s at dealer %s: %s %s, %s\n", sid, dealer, crmctl_or(h, "role"), crmctl_or(h, "name"),
               crmctl_or(h, "state"));
        const char *mgr = crm_reply_field(h, "manager_id");
        printf("  manager    %s\n", mgr && *mgr ? mgr : "-");
        printf("  registered %s, updated %s\n", since, updated);
        if (!strcmp(crmctl_or(h, "state"), "left"))
            printf("  left       %s (%s)\n", left, crmctl_or(h, "reason"));
        const redisReply *cs = crm_tx_result(tx, 1);
        printf("  customers  %zu", cs ? cs->elements : 0);
        for (size_t i = 0; cs && i < cs->elements; i++)
            printf("%s%s", i ? " " : ": ", cs->element[i]->str);
        printf("\n  reports    ");
        size_t nrep = 0;
        for (size_t i = 0; i < ids->elements; i++) {
            const redisReply *m = crm_tx_result(tx, (int) (2 + i));
            if (m && m->elements == 2 && m->element[0]->type == REDIS_REPLY_STRING &&
                !strcmp(m->element[0]->str, sid))
                printf("%s%s%s", nrep++ ? " " : "", ids->element[i]->str,
                       m->element[1]->type == REDIS_REPLY_STRING &&
                               !strcmp(m->element[1]->str, "left")
                           ? " (left)"
                           : "");
        }
        printf("%s\n", nrep ? "" : "-");
    }
    crm_tx_destroy(&tx);
    crm_tx_destroy(&head);
    return rc;
}

int crmctl_staff(crmctl_t *ctl)
{
    const char *sub = ctl->argc > 1 ? ctl->argv[1] : "";
    if (strcmp(sub, "list") && strcmp(sub, "show"))
        return crmctl_uplink(ctl); /* add, update, leave, or the usage */
    const char *dealer = crm_opt(ctl->opts, "dealer");
    bool show = !strcmp(sub, "show");
    if (!dealer || ctl->argc != (show ? 3 : 2)) {
        fprintf(stderr, "crmctl staff %s\n", show ? "show ID --dealer D" : "list --dealer D");
        return CRMCTL_USAGE;
    }
    if (!crmctl_id_ok(dealer, "--dealer") || (show && !crmctl_id_ok(ctl->argv[2], "staff id")))
        return CRMCTL_USAGE;
    crm_store_t *store = crmctl_store(ctl);
    if (!store)
        return CRMCTL_REDIS;
    return show ? s_show(store, dealer, ctl->argv[2]) : s_list(store, dealer);
}
