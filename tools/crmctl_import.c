/*  crmctl customer|service|followup import FILE.csv --dealer D: a dealer's
 *  export sent row by row to crm-dispatcher's control endpoint, the CRM
 *  department acting for the dealer (body dealer_id = D). The file is read
 *  by crm_leadin's record reader and sent by crm_import, as the lead
 *  import: progress, summary, rejects file, idempotent per row (record_id:
 *  the row's own id column or its content key), resumable after a crash
 *  by running it again. */
#include <stdlib.h>
#include <string.h>

#include "crm_import.h"
#include "crm_leadin.h"
#include "crmctl.h"

int crmctl_records_import(crmctl_t *ctl, crm_type_t type)
{
    const char *kind = ctl->argv[0];
    if (ctl->argc != 3) {
        fprintf(stderr, "crmctl %s import FILE.csv --dealer D [--encoding utf-8|gbk|gb18030]\n",
                kind);
        return CRMCTL_USAGE;
    }
    const char *path = ctl->argv[2], *dealer = crm_opt(ctl->opts, "dealer");
    if (!dealer || !*dealer) {
        fprintf(stderr, "crmctl %s import: --dealer D is needed (the dealer the file is from)\n",
                kind);
        return CRMCTL_USAGE;
    }
    if (!crmctl_id_ok(dealer, "--dealer"))
        return CRMCTL_USAGE;
    const char *endpoint = crm_opt(ctl->opts, "dispatcher-control");
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock || zsock_connect(sock, "%s", endpoint) < 0) {
        fprintf(stderr, "crmctl: bad endpoint %s (--dispatcher-control)\n", endpoint);
        zsock_destroy(&sock);
        return CRMCTL_USAGE;
    }
    zsock_set_linger(sock, 0);
    char peer[300];
    snprintf(peer, sizeof peer, "crm-dispatcher at %s", endpoint);
    const char *enc = crm_opt(ctl->opts, "encoding");
    crm_import_records_t how = {.tool = "crmctl",
                                .sock = sock,
                                .delimiter = true,
                                .peer = peer,
                                .timeout_ms = (int) crmctl_i64(ctl, "timeout-ms"),
                                .tries = (int) crmctl_i64(ctl, "tries"),
                                .dealer = dealer,
                                .body_dealer = true,
                                .producer = "crmctl",
                                .encoding = enc && *enc ? enc : NULL};
    int rc = crm_import_records(&how, type, path);
    zsock_destroy(&sock);
    return rc == 2 ? CRMCTL_UNREACHABLE : rc == 1 ? CRMCTL_NO : CRMCTL_OK;
}
