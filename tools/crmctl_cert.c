/*  crmctl dealer cert|revoke, source cert|revoke: CURVE certificates.
 *
 *  The service that keeps a certificate directory (crm-dispatcher for
 *  dealers, crm-intake for lead sources) trusts a public key for an id
 *  when asked (cert.issue) and stops trusting it (cert.revoke). The key
 *  pair is made here: the secret half is written to the file given (mode
 *  0600 from the start) and never travels; only the public key is sent.
 *  The secret is written under a temporary name first and renamed once the
 *  service has answered, so a refused request leaves no certificate behind;
 *  without an answer (or "unavailable") it is kept, since the key may be
 *  trusted and nobody else has its secret.
 */
#include <czmq.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crmctl.h"

int crmctl_cert(crmctl_t *ctl, const char *service, const char *meta_key, const char *id,
                const char *out_secret_file)
{
    if (!crmctl_id_ok(id, "id"))
        return CRMCTL_USAGE;
    if (!out_secret_file || !*out_secret_file) {
        fprintf(stderr, "crmctl: --out FILE: where to write the secret certificate\n");
        return CRMCTL_USAGE;
    }
    if (zsys_file_exists(out_secret_file)) {
        fprintf(stderr, "crmctl: %s exists; not overwriting a secret key\n", out_secret_file);
        return CRMCTL_NO;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "crmctl: cannot make a certificate (is libzmq built with CURVE?)\n");
        return CRMCTL_NO;
    }
    zcert_set_meta(cert, meta_key, "%s", id);
    zcert_set_meta(cert, "name", "%s", id);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_secret_file);
    mode_t old = umask(077);
    int rc = zcert_save_secret(cert, tmp);
    umask(old);
    if (rc != 0 || chmod(tmp, 0600) != 0) {
        fprintf(stderr, "crmctl: cannot write %s: %s\n", tmp, strerror(errno));
        zcert_destroy(&cert);
        unlink(tmp);
        return CRMCTL_NO;
    }
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_cert_issue);
    CRM_SET_STR(&req, cert_issue, id, id);
    CRM_SET_STR(&req, cert_issue, public_key, zcert_public_txt(cert));
    rc = crmctl_request(ctl, service, &req, &ans);
    crm_msg_clear(&req);
    bool answered = rc == CRMCTL_OK;
    if (rc == CRMCTL_OK && ans.type == CRM_T_reply && ans.body.reply.ok) {
        if (rename(tmp, out_secret_file) != 0) {
            fprintf(stderr, "crmctl: %s trusted, but %s could not be written: %s; revoke it and try again\n", id,
                    out_secret_file, strerror(errno));
            rc = CRMCTL_NO;
        } else {
            printf("%s %s: certificate trusted now; secret certificate %s (give it to %s; key %s)\n",
                   !strcmp(service, "dispatcher") ? "dealer" : "lead source", id, out_secret_file, id,
                   zcert_public_txt(cert));
            const char *key = NULL, *file = NULL;
            for (size_t i = 0; i < ans.body.reply.fields.n; i++) {
                if (!strncmp(ans.body.reply.fields.v[i], "gateway_key=", 12))
                    key = ans.body.reply.fields.v[i] + 12;
                if (!strncmp(ans.body.reply.fields.v[i], "gateway_cert=", 13))
                    file = ans.body.reply.fields.v[i] + 13;
            }
            if (key)
                printf("give %s also the gateway's public certificate %s (key %s)\n", id,
                       file ? file : "(CRM_SERVER_CERT of crm-dispatcher)", key);
        }
    } else if (rc == CRMCTL_UNREACHABLE ||
               (ans.type == CRM_T_reply && ans.body.reply.code && !strcmp(ans.body.reply.code, "unavailable"))) {
        /* Not known whether the service trusted the key: the secret stays,
           since nobody else has it. */
        if (rc == CRMCTL_OK)
            rc = crmctl_reply(&ans, "cert");
        bool renamed = rename(tmp, out_secret_file) == 0;
        fprintf(stderr,
                "crmctl: whether %s's key %s is trusted is not known; its secret is kept in %s. If asking "
                "again says %s already has a certificate, it is this one; otherwise remove the file and ask "
                "again\n",
                id, zcert_public_txt(cert), renamed ? out_secret_file : tmp, id);
    } else {
        unlink(tmp);
        if (rc == CRMCTL_OK)
            rc = crmctl_reply(&ans, "cert");
    }
    if (answered)
        crm_msg_clear(&ans);
    zcert_destroy(&cert);
    return rc;
}

int crmctl_cert_revoke(crmctl_t *ctl, const char *service, const char *id)
{
    if (!crmctl_id_ok(id, "id"))
        return CRMCTL_USAGE;
    crm_msg_t req, ans;
    crm_msg_init(&req, CRM_T_cert_revoke);
    CRM_SET_STR(&req, cert_revoke, id, id);
    int rc = crmctl_request(ctl, service, &req, &ans);
    crm_msg_clear(&req);
    if (rc != CRMCTL_OK)
        return rc;
    if (ans.type == CRM_T_reply && ans.body.reply.ok)
        printf("%s: certificate revoked; refused from now on, open connections cut\n", id);
    rc = crmctl_reply(&ans, "revoke");
    crm_msg_clear(&ans);
    return rc;
}
