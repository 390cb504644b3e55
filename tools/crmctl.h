/*  crmctl: shared between its command files. */
#ifndef CRMCTL_H
#define CRMCTL_H

#include <czmq.h>

#include "crm_service.h"

/* Exit codes, stable for scripts. */
enum { CRMCTL_OK = 0, CRMCTL_NO = 1, CRMCTL_USAGE = 2, CRMCTL_UNREACHABLE = 2, CRMCTL_REDIS = 3 };

typedef struct {
    crm_opt_t *opts;
    int argc; /* positional arguments: argv[0] is the command */
    char **argv;
    crm_store_t *store; /* connected on first use */
} crmctl_t;

/* The Redis store, connected on first use; NULL (after a message) when it
   cannot be reached. */
crm_store_t *crmctl_store(crmctl_t *ctl);
int64_t crmctl_i64(crmctl_t *ctl, const char *opt);

/* Lazy Pirate: sends `frame` to crm-intake and waits `timeout_ms` for the
   answer, up to `tries` times, each on a fresh REQ socket with the same
   bytes (intake turns a repeat into the first answer). 0 and the answer
   frame (caller destroys), or -1 when intake did not answer. */
int crmctl_ask(const char *endpoint, const void *frame, size_t len, int timeout_ms, int tries,
               zframe_t **answer);

int crmctl_lead(crmctl_t *ctl);       /* lead submit | lead import */
int crmctl_customer(crmctl_t *ctl);   /* customer show | customer find */
int crmctl_quarantine(crmctl_t *ctl); /* quarantine list | show | retry */
int crmctl_dealer(crmctl_t *ctl);     /* dealer add | list | show | suspend | activate */
int crmctl_testdrive(crmctl_t *ctl);  /* testdrive list | show */
/* The dealers' CURVE certificates (tools/crmctl_dealer_cert.c): 0 or -1,
   after a message on stderr. */
int crmctl_dealer_cert(const char *cert_dir, const char *dealer_id, const char *out_secret_file);
int crmctl_dealer_revoke(const char *cert_dir, const char *dealer_id);

#endif
