/*  crm_config: settings from flags and CRM_* environment variables.
 *
 *  A program declares a table of options; each takes its value from
 *  --name VALUE (or --name=VALUE), else from its environment variable, else
 *  from the default, which is what deploy/local/up runs with. Every program
 *  answers --help and --version through the same code.
 */
#ifndef CRM_CONFIG_H
#define CRM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#ifndef CRM_VERSION
#define CRM_VERSION "0.1.0"
#endif

typedef struct {
    const char *name; /* flag without the leading dashes */
    const char *env;  /* environment variable, or NULL */
    const char *def;  /* default value, or NULL */
    const char *help;
    const char *value; /* filled by crm_config_parse */
} crm_opt_t;

#define CRM_OPT_END {NULL, NULL, NULL, NULL, NULL}

/* The options every service shares (Redis, bus, logging); a service appends
   its own table after them with crm_config_merge. */
#define CRM_OPTS_COMMON(pub_default)                                                              \
    {"redis-url", "CRM_REDIS_URL", "redis://127.0.0.1:6390/0",                                     \
     "Redis to keep state in: redis://[:password@]host:port[/db] or unix:///path", NULL},          \
        {"redis-timeout-ms", "CRM_REDIS_TIMEOUT_MS", "2000", "Timeout of every Redis call", NULL}, \
        {"pub", "CRM_PUB", pub_default, "ZeroMQ endpoint this service publishes its events on",    \
         NULL},                                                                                     \
        {"peers", "CRM_PEERS",                                                                     \
         "tcp://127.0.0.1:7101,tcp://127.0.0.1:7102,tcp://127.0.0.1:7103,tcp://127.0.0.1:7104,"    \
         "tcp://127.0.0.1:7105",                                                                   \
         "Comma-separated publisher endpoints to subscribe to", NULL},                             \
        {"consumer", "CRM_CONSUMER", NULL,                                                         \
         "Name under which this instance keeps its stream cursors (default: the service name)",   \
         NULL},                                                                                     \
        {"stream-maxlen", "CRM_STREAM_MAXLEN", "1000000",                                          \
         "Approximate number of events each stream keeps in Redis", NULL},                         \
        {"log-level", "CRM_LOG_LEVEL", "info", "debug, info, warn or error", NULL}

/* Parses argv against `opts` (terminated by CRM_OPT_END). Positional
   arguments are moved, in order, to argv[1..*npositional].
   Returns 0 to run, 1 when --help or --version was answered (exit 0), -1 on
   a bad flag, after printing why (exit 2). */
int crm_config_parse(crm_opt_t *opts, int argc, char **argv, const char *prog,
                     const char *summary, int *npositional);
const char *crm_opt(const crm_opt_t *opts, const char *name);
/* Integer option; -1 and a message on stderr when it is not a number in
   [min, max]. */
int crm_opt_i64(const crm_opt_t *opts, const char *name, int64_t min, int64_t max, int64_t *out);
void crm_config_usage(const crm_opt_t *opts, const char *prog, const char *summary);

#endif
