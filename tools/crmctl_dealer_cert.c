/*  crmctl dealer cert | revoke: the dealers' CURVE certificates.
 *
 *  The gateway's certificate directory holds one public certificate per
 *  dealer, "<dealer id>.cert", whose metadata "dealer-id" is what the
 *  gateway trusts as the dealer's identity. The secret half goes to the
 *  dealer (file mode 0600) and is never kept here.
 *
 *  Revoking moves the public part out of the directory (into
 *  "<cert_dir>.revoked/", kept for the record; zcertstore reads
 *  subdirectories too, so it cannot stay inside). New connections with that
 *  key are refused at once (zauth's store re-reads the directory when it
 *  changes); connections already open are cut at the gateway's next
 *  certificate reload (gateway_reload_certs, every 5 s).
 *
 *  These two functions are called by crmctl's command table; they print
 *  what went wrong on stderr and return 0 or -1.
 */
#include <czmq.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crm_lead.h"
#include "crmctl.h"

int crmctl_dealer_cert(const char *cert_dir, const char *dealer_id, const char *out_secret_file)
{
    if (!crm_dealer_id_valid(dealer_id)) {
        fprintf(stderr, "crmctl: dealer id \"%s\": 1 to %d letters, digits, '_' or '-'\n",
                dealer_id ? dealer_id : "", CRM_DEALER_ID_MAX);
        return -1;
    }
    if (!cert_dir || !out_secret_file || !*out_secret_file) {
        fprintf(stderr, "crmctl: dealer cert needs a certificate directory and an output file\n");
        return -1;
    }
    char public_file[1024];
    snprintf(public_file, sizeof public_file, "%s/%s.cert", cert_dir, dealer_id);
    if (zsys_file_exists(public_file)) {
        fprintf(stderr,
                "crmctl: %s exists: dealer %s already has a certificate; revoke it first "
                "(crmctl dealer revoke %s)\n",
                public_file, dealer_id, dealer_id);
        return -1;
    }
    if (zsys_file_exists(out_secret_file)) {
        fprintf(stderr, "crmctl: %s exists; not overwriting a secret key\n", out_secret_file);
        return -1;
    }
    if (zsys_dir_create("%s", cert_dir) != 0) {
        fprintf(stderr, "crmctl: cannot create %s: %s\n", cert_dir, strerror(errno));
        return -1;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "crmctl: cannot make a certificate (is libzmq built with CURVE?)\n");
        return -1;
    }
    zcert_set_meta(cert, "dealer-id", "%s", dealer_id);
    zcert_set_meta(cert, "name", "dealer %s", dealer_id);
    /* The secret first, private from the start: if it cannot be written the
       dealer gets nothing and the directory is unchanged. */
    mode_t old = umask(077);
    int rc = zcert_save_secret(cert, out_secret_file);
    umask(old);
    if (rc != 0 || chmod(out_secret_file, 0600) != 0) {
        fprintf(stderr, "crmctl: cannot write %s: %s\n", out_secret_file, strerror(errno));
        zcert_destroy(&cert);
        return -1;
    }
    /* Written under another name and renamed, so the gateway never reads a
       half-written certificate (and the temporary name has no ".cert"). */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", cert_dir, dealer_id);
    if (zcert_save_public(cert, tmp) != 0 || rename(tmp, public_file) != 0) {
        fprintf(stderr, "crmctl: cannot write %s: %s\n", public_file, strerror(errno));
        unlink(tmp);
        unlink(out_secret_file);
        zcert_destroy(&cert);
        return -1;
    }
    printf("dealer %s: public certificate %s, secret %s (give it to the dealer; key %s)\n",
           dealer_id, public_file, out_secret_file, zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

int crmctl_dealer_revoke(const char *cert_dir, const char *dealer_id)
{
    if (!crm_dealer_id_valid(dealer_id) || !cert_dir) {
        fprintf(stderr, "crmctl: dealer id \"%s\" is not valid\n", dealer_id ? dealer_id : "");
        return -1;
    }
    char public_file[1024], revoked_dir[1024], kept[1200];
    snprintf(public_file, sizeof public_file, "%s/%s.cert", cert_dir, dealer_id);
    if (!zsys_file_exists(public_file)) {
        fprintf(stderr, "crmctl: dealer %s has no certificate in %s\n", dealer_id, cert_dir);
        return -1;
    }
    snprintf(revoked_dir, sizeof revoked_dir, "%s.revoked", cert_dir);
    zsys_dir_create("%s", revoked_dir);
    snprintf(kept, sizeof kept, "%s/%s.%lld.cert", revoked_dir, dealer_id, (long long) time(NULL));
    if (rename(public_file, kept) != 0 && unlink(public_file) != 0) {
        fprintf(stderr, "crmctl: cannot remove %s: %s\n", public_file, strerror(errno));
        return -1;
    }
    printf("dealer %s: certificate revoked; new connections are refused now, open ones within "
           "5 s\n",
           dealer_id);
    return 0;
}
