/*  crm_curve: see crm_curve.h.
 *
 *  What CZMQ 4.2 does, checked on this build: zauth looks the client's key
 *  up in a zcertstore of the directory and, when found, puts every metadata
 *  entry of the certificate into the ZAP reply (at most about 500 bytes in
 *  all, so keep certificate metadata short) and sets the User-Id to the
 *  client's public key (Z85). libzmq then attaches them to every message
 *  from that peer, including the subscription messages an XPUB receives, so
 *  zframe_meta(frame, meta_key) names the certified peer. The zcertstore
 *  re-reads the directory when its file count, size or mtime changes; we
 *  also send zauth "CURVE <dir>" again after every change we make, since two
 *  changes within one second with the same count and size look alike.
 */
#include "crm_curve.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crm_id.h"
#include "crm_log.h"

struct crm_curve_t {
    char *dir;
    char *meta_key;
    char *kind;
    zactor_t *auth;
    zcert_t *cert;
    zhashx_t *keys; /* trusted public key (Z85) -> id */
    struct timespec seen_mtime;
    bool seen;
};

static void s_free_str(void **item)
{
    free(*item);
    *item = NULL;
}

/* The service's own certificate: loaded, or made and saved on first start
   so that a fresh install runs; peers get the public file. */
static zcert_t *s_server_cert(const char *path)
{
    char secret[1024];
    snprintf(secret, sizeof secret, "%s_secret", path);
    if (zsys_file_exists(path) || zsys_file_exists(secret)) {
        zcert_t *cert = zcert_load(path);
        static const byte zero[32] = {0};
        if (!cert || !memcmp(zcert_secret_key(cert), zero, sizeof zero)) {
            crm_error("curve.cert_unusable",
                      "file=%s why=\"no secret key (expected in %s or in the file itself)\"", path,
                      secret);
            zcert_destroy(&cert);
            return NULL;
        }
        return cert;
    }
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = 0;
        zsys_dir_create("%s", dir);
    }
    free(dir);
    zcert_t *cert = zcert_new();
    if (!cert)
        return NULL;
    zcert_set_meta(cert, "name", "autocrm");
    /* The secret half is never readable by others, not even for a moment. */
    mode_t mask = umask(077);
    int saved = zcert_save(cert, path);
    umask(mask);
    if (saved != 0 || chmod(path, 0644) != 0 || chmod(secret, 0600) != 0) {
        crm_error("curve.cert_not_saved", "file=%s why=\"%s\"", path, strerror(errno));
        zcert_destroy(&cert);
        return NULL;
    }
    crm_warn("curve.cert_created", "public=%s secret=%s key=%s hint=\"give the public file to every peer\"",
             path, secret, zcert_public_txt(cert));
    return cert;
}

/* Reads the directory the way zcertstore does (every regular file, also in
   subdirectories): public key -> id. A file without a well-formed id is
   logged and left out. */
static zhashx_t *s_scan(const crm_curve_t *self)
{
    zhashx_t *keys = zhashx_new();
    if (!keys)
        return NULL;
    zhashx_set_destructor(keys, s_free_str);
    zdir_t *dir = zdir_new(self->dir, NULL);
    if (!dir)
        return keys;
    zfile_t **files = zdir_flatten(dir);
    for (size_t i = 0; files && files[i]; i++) {
        if (!zfile_is_regular(files[i]))
            continue;
        const char *name = zfile_filename(files[i], NULL);
        zcert_t *cert = zcert_load(name);
        const char *id = cert ? zcert_meta(cert, self->meta_key) : NULL;
        if (cert && crm_id_valid(CRM_ID_NAME, id)) {
            char *copy = strdup(id);
            if (copy && zhashx_insert(keys, zcert_public_txt(cert), copy) != 0)
                free(copy);
        } else {
            crm_warn("curve.cert_ignored", "file=%s why=\"not a certificate with a %s\"", name,
                     self->meta_key);
        }
        zcert_destroy(&cert);
    }
    zdir_flatten_free(&files);
    zdir_destroy(&dir);
    return keys;
}

crm_curve_t *crm_curve_new(const char *cert_dir, const char *server_cert, const char *meta_key,
                           const char *kind)
{
    if (!cert_dir || !server_cert || !meta_key || !kind)
        return NULL;
    crm_curve_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dir = strdup(cert_dir);
    self->meta_key = strdup(meta_key);
    self->kind = strdup(kind);
    if (!self->dir || !self->meta_key || !self->kind)
        goto fail;
    if (!(self->cert = s_server_cert(server_cert)))
        goto fail;
    if (!zsys_file_exists(self->dir)) {
        zsys_dir_create("%s", self->dir);
        crm_warn("curve.cert_dir_created", "dir=%s kind=%s hint=\"no %s can connect yet\"", self->dir,
                 kind, kind);
    }
    /* The ZAP handler first: a CURVE socket bound without one lets every
       client in. */
    if (!(self->auth = zactor_new(zauth, NULL)))
        goto fail;
    if (crm_curve_reload(self, true, NULL) != 0)
        goto fail;
    crm_info("curve.ready", "kind=%s dir=%s trusted=%zu key=%s", kind, self->dir,
             zhashx_size(self->keys), zcert_public_txt(self->cert));
    return self;
fail:
    crm_error("curve.start_failed", "kind=%s dir=%s", kind, cert_dir);
    crm_curve_destroy(&self);
    return NULL;
}

void crm_curve_destroy(crm_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    crm_curve_t *self = *self_p;
    zactor_destroy(&self->auth);
    zcert_destroy(&self->cert);
    zhashx_destroy(&self->keys);
    free(self->dir);
    free(self->meta_key);
    free(self->kind);
    free(self);
    *self_p = NULL;
}

void crm_curve_secure(crm_curve_t *self, zsock_t *sock)
{
    zcert_apply(self->cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, self->kind);
    zsock_set_linger(sock, 0);
}

const char *crm_curve_peer(crm_curve_t *self, zframe_t *frame, const char **key_out)
{
    const char *id = zframe_meta(frame, self->meta_key);
    const char *key = zframe_meta(frame, "User-Id");
    if (key_out)
        *key_out = key;
    if (!id || !key || !crm_id_valid(CRM_ID_NAME, id))
        return NULL;
    const char *known = zhashx_lookup(self->keys, key);
    if (!known || strcmp(known, id))
        return NULL;
    return id;
}

bool crm_curve_trusts(crm_curve_t *self, const char *key)
{
    return key && zhashx_lookup(self->keys, key) != NULL;
}

int crm_curve_reload(crm_curve_t *self, bool force, bool *removed)
{
    if (removed)
        *removed = false;
    struct stat st;
    bool have = stat(self->dir, &st) == 0;
    if (!force && self->seen && have && st.st_mtim.tv_sec == self->seen_mtime.tv_sec &&
        st.st_mtim.tv_nsec == self->seen_mtime.tv_nsec)
        return 0; /* unchanged: nothing to read */
    /* A fresh store in zauth, also when the directory changed within the
       same second with the same count and size (zcertstore's own check). */
    zstr_sendx(self->auth, "CURVE", self->dir, NULL);
    zsock_wait(self->auth);
    zhashx_t *keys = s_scan(self);
    if (!keys)
        return -1;
    for (const char *id = self->keys ? zhashx_first(self->keys) : NULL; id; id = zhashx_next(self->keys)) {
        const char *key = zhashx_cursor(self->keys);
        const char *now = zhashx_lookup(keys, key);
        if (!now || strcmp(now, id)) {
            crm_warn("curve.cert_revoked", "kind=%s id=%s key=%s", self->kind, id, key);
            if (removed)
                *removed = true;
        }
    }
    zhashx_destroy(&self->keys);
    self->keys = keys;
    if (have) {
        self->seen_mtime = st.st_mtim;
        self->seen = true;
    }
    return 0;
}

static void s_code(char *code, size_t codesz, char *err, size_t errsz, const char *c, const char *fmt,
                   ...) __attribute__((format(printf, 6, 7)));
static void s_code(char *code, size_t codesz, char *err, size_t errsz, const char *c, const char *fmt,
                   ...)
{
    if (code && codesz)
        snprintf(code, codesz, "%s", c);
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
}

static bool s_z85_key_ok(const char *key)
{
    if (!key || strlen(key) != 40)
        return false;
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    for (const char *p = key; *p; p++)
        if (!strchr(z85, *p))
            return false;
    byte raw[32];
    return zmq_z85_decode(raw, key) != NULL;
}

int crm_curve_issue(crm_curve_t *self, const char *id, const char *public_key, char *code,
                    size_t codesz, char *err, size_t errsz)
{
    char why[160];
    if (crm_id_check(CRM_ID_NAME, id, "id", why, sizeof why) != 0) {
        s_code(code, codesz, err, errsz, "bad_id", "%s", why);
        return -1;
    }
    if (!s_z85_key_ok(public_key)) {
        s_code(code, codesz, err, errsz, "invalid", "public_key: 40 characters of Z85 expected");
        return -1;
    }
    char file[1100], tmp[1100];
    snprintf(file, sizeof file, "%s/%s.cert", self->dir, id);
    if (zsys_file_exists(file)) {
        /* The same key again (a request run again after its commit
           failed): trusted already, nothing to do. */
        const char *known = zhashx_lookup(self->keys, public_key);
        if (known && !strcmp(known, id))
            return 0;
        s_code(code, codesz, err, errsz, "exists",
               "id: %s %s already has a certificate; revoke it first", self->kind, id);
        return -1;
    }
    if (zhashx_lookup(self->keys, public_key)) {
        s_code(code, codesz, err, errsz, "exists", "public_key: already trusted for %s %s", self->kind,
               (const char *) zhashx_lookup(self->keys, public_key));
        return -1;
    }
    byte raw[32];
    zmq_z85_decode(raw, public_key);
    zcert_t *cert = zcert_new_from(raw, (byte[32]){0});
    if (!cert) {
        s_code(code, codesz, err, errsz, "failed", "service: cannot make a certificate");
        return -1;
    }
    zcert_set_meta(cert, self->meta_key, "%s", id);
    zcert_set_meta(cert, "name", "%s %s", self->kind, id);
    /* Written under another name and renamed, so zauth never reads a
       half-written certificate (and the temporary name is hidden). */
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", self->dir, id);
    int rc = zcert_save_public(cert, tmp);
    zcert_destroy(&cert);
    if (rc != 0 || rename(tmp, file) != 0) {
        s_code(code, codesz, err, errsz, "failed", "service: cannot write %s: %s", file, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (crm_curve_reload(self, true, NULL) != 0 || !crm_curve_trusts(self, public_key)) {
        s_code(code, codesz, err, errsz, "failed", "service: %s written but not read back", file);
        return -1;
    }
    crm_info("curve.cert_issued", "kind=%s id=%s key=%s", self->kind, id, public_key);
    return 0;
}

/* The newest certificate revoked for `id` (<dir>.revoked/<id>.<time>.cert)
   into `out`: 0, or -1 when there is none. */
static int s_last_revoked(const char *revoked, const char *id, char *out, size_t size)
{
    DIR *d = opendir(revoked);
    if (!d)
        return -1;
    size_t n = strlen(id);
    long long best = -1;
    for (struct dirent *e; (e = readdir(d));) {
        const char *name = e->d_name, *t = name + n + 1;
        char *end;
        if (strncmp(name, id, n) || name[n] != '.' || !isdigit((unsigned char) *t))
            continue;
        long long when = strtoll(t, &end, 10);
        if (strcmp(end, ".cert") || when <= best)
            continue;
        int w = snprintf(out, size, "%s/%s", revoked, name);
        if (w > 0 && (size_t) w < size)
            best = when;
    }
    closedir(d);
    return best >= 0 ? 0 : -1;
}

int crm_curve_revoke(crm_curve_t *self, const char *id, char *key_out, char *code, size_t codesz,
                     char *err, size_t errsz)
{
    char why[160];
    if (key_out)
        key_out[0] = 0;
    if (crm_id_check(CRM_ID_NAME, id, "id", why, sizeof why) != 0) {
        s_code(code, codesz, err, errsz, "bad_id", "%s", why);
        return -1;
    }
    char file[1100], revoked[1100], kept[1300];
    snprintf(file, sizeof file, "%s/%s.cert", self->dir, id);
    snprintf(revoked, sizeof revoked, "%s.revoked", self->dir);
    if (!zsys_file_exists(file)) {
        /* Revoked already (the same request again after its commit
           failed): done, with the key it had. */
        if (s_last_revoked(revoked, id, kept, sizeof kept) == 0) {
            zcert_t *old = zcert_load(kept);
            bool done = old && !crm_curve_trusts(self, zcert_public_txt(old));
            if (done && key_out)
                snprintf(key_out, 41, "%s", zcert_public_txt(old));
            zcert_destroy(&old);
            if (done)
                return 0;
        }
        s_code(code, codesz, err, errsz, "unknown", "id: %s %s has no certificate", self->kind, id);
        return -1;
    }
    zcert_t *cert = zcert_load(file);
    if (cert && key_out)
        snprintf(key_out, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    /* Out of the directory: zcertstore reads subdirectories too. */
    zsys_dir_create("%s", revoked);
    snprintf(kept, sizeof kept, "%s/%s.%lld.cert", revoked, id, (long long) time(NULL));
    if (rename(file, kept) != 0) {
        int e = errno;
        if (unlink(file) != 0) {
            s_code(code, codesz, err, errsz, "failed", "service: cannot remove %s: %s", file, strerror(errno));
            return -1;
        }
        crm_warn("curve.cert_not_kept", "kind=%s id=%s file=%s why=\"%s\" hint=\"removed instead\"", self->kind,
                 id, kept, strerror(e));
        snprintf(kept, sizeof kept, "-");
    }
    if (crm_curve_reload(self, true, NULL) != 0 || (key_out && *key_out && crm_curve_trusts(self, key_out))) {
        s_code(code, codesz, err, errsz, "failed", "service: %s moved out, but the trusted keys were not read "
                                                   "again; it is refused once they are", file);
        return -1;
    }
    crm_info("curve.cert_revoked", "kind=%s id=%s kept=%s", self->kind, id, kept);
    return 0;
}

void crm_curve_each(crm_curve_t *self, void (*fn)(void *arg, const char *id), void *arg)
{
    for (const char *id = zhashx_first(self->keys); id; id = zhashx_next(self->keys))
        fn(arg, id);
}

const char *crm_curve_public_key(const crm_curve_t *self) { return zcert_public_txt(self->cert); }
const char *crm_curve_kind(const crm_curve_t *self) { return self->kind; }
size_t crm_curve_count(const crm_curve_t *self) { return self->keys ? zhashx_size(self->keys) : 0; }
