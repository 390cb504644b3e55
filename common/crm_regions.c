#include "crm_regions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_id.h"
#include "crm_keys.h"
#include "crm_log.h"
#include "crm_norm.h"

#define S_REGIONS_MAX 64
#define S_PROVINCES_MAX 64

typedef struct {
    char name[64];
    char line[1024];
} s_region_t;

struct crm_regions_t {
    s_region_t regions[S_REGIONS_MAX];
    size_t n;
    /* province (canonical) -> index of its region */
    struct {
        const char *province;
        size_t region;
    } map[S_PROVINCES_MAX];
    size_t nmap;
};

void crm_regions_destroy(crm_regions_t **r_p)
{
    if (r_p && *r_p) {
        free(*r_p);
        *r_p = NULL;
    }
}

/* Trims ASCII blanks and the full-width space in place. */
static char *s_trim(char *s)
{
    for (;;) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        else if (!strncmp(s, "\xe3\x80\x80", 3))
            s += 3;
        else
            break;
    }
    size_t n = strlen(s);
    for (;;) {
        if (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
            s[--n] = 0;
        else if (n >= 3 && !strcmp(s + n - 3, "\xe3\x80\x80"))
            s[n -= 3] = 0;
        else
            break;
    }
    return s;
}

/* One "region = provinces" line into r; 0, or -1 with err. */
static int s_line(crm_regions_t *r, const char *text, size_t lineno, char *err, size_t errsz)
{
    char buf[2048];
    if (strlen(text) >= sizeof buf) {
        snprintf(err, errsz, "line %zu: too long", lineno);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", text);
    char *eq = strchr(buf, '=');
    if (!eq) {
        snprintf(err, errsz, "line %zu: \"region = province, province\" expected", lineno);
        return -1;
    }
    *eq = 0;
    char *name = s_trim(buf);
    /* A region's name becomes part of keys (crm:dealers:region:<name>):
       text without blanks, control characters or , : { } * ? [ ] */
    bool ok = *name && strlen(name) < sizeof r->regions[0].name && crm_id_valid(CRM_ID_KEY, name) &&
              !strpbrk(name, " ,:{}*?[]\\") && !strstr(name, "\xe3\x80\x80");
    if (!ok) {
        snprintf(err, errsz, "line %zu: a region needs a name of 1 to 63 bytes of text without blanks, control "
                             "characters or , : { } * ? [ ]", lineno);
        return -1;
    }
    if (crm_regions_has(r, name)) {
        snprintf(err, errsz, "line %zu: region %s is given twice", lineno, name);
        return -1;
    }
    if (r->n == S_REGIONS_MAX) {
        snprintf(err, errsz, "line %zu: more than %d regions", lineno, S_REGIONS_MAX);
        return -1;
    }
    s_region_t *reg = &r->regions[r->n];
    snprintf(reg->name, sizeof reg->name, "%s", name);
    size_t used = (size_t) snprintf(reg->line, sizeof reg->line, "%s=", name);
    int count = 0;
    /* Separators: ASCII comma, 、 and ， (and blanks). */
    char *p = eq + 1;
    for (char *q = p; *q; q++)
        if (!strncmp(q, "\xe3\x80\x81", 3) || !strncmp(q, "\xef\xbc\x8c", 3))
            memset(q, ',', 3);
    for (char *save = NULL, *tok = strtok_r(p, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        tok = s_trim(tok);
        if (!*tok)
            continue;
        const char *canon;
        if (crm_norm_province(tok, &canon, NULL) != 0) {
            snprintf(err, errsz, "line %zu: %s is not one of the 34 provincial-level divisions", lineno, tok);
            return -1;
        }
        const char *other = crm_regions_of(r, canon);
        if (other) {
            snprintf(err, errsz, "line %zu: %s is in region %s already", lineno, canon, other);
            return -1;
        }
        if (r->nmap == S_PROVINCES_MAX)
            return -1;
        r->map[r->nmap].province = canon;
        r->map[r->nmap++].region = r->n;
        int k = snprintf(reg->line + used, sizeof reg->line - used, "%s%s", count ? "," : "", canon);
        if (k < 0 || (size_t) k >= sizeof reg->line - used) {
            snprintf(err, errsz, "line %zu: too many provinces", lineno);
            return -1;
        }
        used += (size_t) k;
        count++;
    }
    if (!count) {
        snprintf(err, errsz, "line %zu: region %s has no province", lineno, name);
        return -1;
    }
    r->n++;
    return 0;
}

crm_regions_t *crm_regions_parse(const char *const *lines, size_t n, char *err, size_t errsz)
{
    char dummy[8];
    if (!err || !errsz)
        err = dummy, errsz = sizeof dummy;
    crm_regions_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char buf[2048];
        if (lines[i] && strlen(lines[i]) >= sizeof buf) {
            snprintf(err, errsz, "line %zu: too long", i + 1);
            free(r);
            return NULL;
        }
        snprintf(buf, sizeof buf, "%s", lines[i] ? lines[i] : "");
        char *t = s_trim(buf);
        if (!*t || *t == '#')
            continue;
        if (s_line(r, t, i + 1, err, errsz) != 0) {
            free(r);
            return NULL;
        }
    }
    if (!r->n) {
        snprintf(err, errsz, "no region given");
        free(r);
        return NULL;
    }
    return r;
}

crm_regions_t *crm_regions_parse_text(const char *text, char *err, size_t errsz)
{
    char *copy = strdup(text ? text : "");
    const char **lines = copy ? calloc(strlen(copy) + 2, sizeof *lines) : NULL;
    crm_regions_t *r = NULL;
    if (copy && lines) {
        size_t n = 0;
        for (char *p = copy, *nl; p; p = nl) {
            nl = strchr(p, '\n');
            if (nl)
                *nl++ = 0;
            lines[n++] = p;
        }
        r = crm_regions_parse(lines, n, err, errsz);
    }
    free(lines);
    free(copy);
    return r;
}

crm_regions_t *crm_regions_default(void)
{
    char err[256];
    return crm_regions_parse_text(crm_regions_default_text, err, sizeof err);
}

int crm_regions_read(crm_store_t *store, crm_regions_t **out)
{
    *out = NULL;
    redisReply *r = crm_store_cmd(store, "LRANGE " CRM_KEY_REGIONS_TABLE " 0 -1");
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        const char **lines = calloc(r->elements, sizeof *lines);
        for (size_t i = 0; lines && i < r->elements; i++)
            lines[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
        char err[256] = "out of memory";
        *out = lines ? crm_regions_parse(lines, r->elements, err, sizeof err) : NULL;
        free(lines);
        if (!*out) {
            /* Stored but unreadable: never taken for "none stored" (which
               would put the built-in table in its place). */
            crm_error("regions.unreadable", "key=" CRM_KEY_REGIONS_TABLE " why=\"%s\"", err);
            rc = -1;
        }
    } else if (r->type != REDIS_REPLY_ARRAY) {
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

void crm_regions_write(const crm_regions_t *r, crm_tx_t *tx)
{
    crm_tx_cmd(tx, "DEL " CRM_KEY_REGIONS " " CRM_KEY_REGIONS_TABLE);
    for (size_t i = 0; i < r->n; i++)
        crm_tx_cmd(tx, "RPUSH " CRM_KEY_REGIONS_TABLE " %s", r->regions[i].line);
    for (size_t i = 0; i < r->nmap; i++)
        crm_tx_cmd(tx, "HSET " CRM_KEY_REGIONS " %s %s", r->map[i].province, r->regions[r->map[i].region].name);
}

const char *crm_regions_of(const crm_regions_t *r, const char *province)
{
    for (size_t i = 0; r && province && i < r->nmap; i++)
        if (!strcmp(r->map[i].province, province))
            return r->regions[r->map[i].region].name;
    return NULL;
}

bool crm_regions_has(const crm_regions_t *r, const char *region)
{
    for (size_t i = 0; r && region && i < r->n; i++)
        if (!strcmp(r->regions[i].name, region))
            return true;
    return false;
}

size_t crm_regions_count(const crm_regions_t *r) { return r ? r->n : 0; }
const char *crm_regions_name(const crm_regions_t *r, size_t i) { return r && i < r->n ? r->regions[i].name : NULL; }
const char *crm_regions_line(const crm_regions_t *r, size_t i) { return r && i < r->n ? r->regions[i].line : NULL; }
