#include "crm_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void crm_config_usage(const crm_opt_t *opts, const char *prog, const char *summary)
{
    printf("%s %s\n%s\n\nOptions (flag, environment variable, default):\n", prog, CRM_VERSION,
           summary ? summary : "");
    for (const crm_opt_t *o = opts; o->name; o++)
        printf("  --%-22s %-24s %s\n  %-24s %s\n", o->name, o->env ? o->env : "-",
               o->def ? o->def : "(none)", "", o->help ? o->help : "");
    printf("  --help                   print this help\n  --version                print the version\n");
}

static crm_opt_t *s_find(crm_opt_t *opts, const char *name, size_t len)
{
    for (crm_opt_t *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

int crm_config_parse(crm_opt_t *opts, int argc, char **argv, const char *prog,
                     const char *summary, int *npositional)
{
    for (crm_opt_t *o = opts; o->name; o++) {
        const char *env = o->env ? getenv(o->env) : NULL;
        o->value = env && *env ? env : o->def;
    }
    /* Positional arguments are moved to the end, in order. */
    int out = 1;
    char *positional[argc > 0 ? argc : 1];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (++i < argc)
                positional[npos++] = argv[i];
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            crm_config_usage(opts, prog, summary);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            printf("%s %s\n", prog, CRM_VERSION);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            positional[npos++] = argv[i];
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        crm_opt_t *o = s_find(opts, name, eq ? (size_t) (eq - name) : strlen(name));
        if (!o) {
            fprintf(stderr, "%s: unknown option %s (try --help)\n", prog, a);
            return -1;
        }
        if (eq)
            o->value = eq + 1;
        else if (i + 1 < argc)
            o->value = argv[++i];
        else {
            fprintf(stderr, "%s: option --%s needs a value\n", prog, o->name);
            return -1;
        }
    }
    for (int k = 0; k < npos; k++)
        argv[out++] = positional[k];
    if (npositional)
        *npositional = npos;
    if (out < argc)
        argv[out] = NULL;
    return 0;
}

const char *crm_opt(const crm_opt_t *opts, const char *name)
{
    for (const crm_opt_t *o = opts; o->name; o++)
        if (!strcmp(o->name, name))
            return o->value;
    return NULL;
}

int crm_opt_i64(const crm_opt_t *opts, const char *name, int64_t min, int64_t max, int64_t *out)
{
    const char *v = crm_opt(opts, name);
    char *end = NULL;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || n < min || n > max) {
        fprintf(stderr, "option --%s: expected a whole number from %lld to %lld, got '%s'\n", name,
                (long long) min, (long long) max, v ? v : "");
        return -1;
    }
    *out = n;
    return 0;
}
