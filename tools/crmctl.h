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
    /* CURVE towards crm-intake's lead endpoint (--source-cert): loaded on
       first use; NULL when the deployment asks for none. */
    zcert_t *source_cert;
    char intake_key[41];
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
/* The same towards crm-intake's lead endpoint, with CURVE when a source
   certificate is given (--source-cert, --intake-server-cert). */
int crmctl_ask_intake(crmctl_t *ctl, const void *frame, size_t len, zframe_t **answer);
/* Makes `sock` a CURVE client of crm-intake when a source certificate is
   given; 0, or -1 after a message (the certificate cannot be read). */
int crmctl_secure_intake(crmctl_t *ctl, zsock_t *sock);

/* Sends `req` (type and body filled; id, ts and producer are set here) to
   `service`'s control endpoint (--<service>-control) and decodes the
   answer into `answer` (caller clears it). CRMCTL_OK, or
   CRMCTL_UNREACHABLE after a message when no answer came. */
int crmctl_request(crmctl_t *ctl, const char *service, crm_msg_t *req, crm_msg_t *answer);
/* Prints a reply: its fields on stdout when ok, else "code: message" on
   stderr; the exit code (0 ok, 1 refused, 2 unreachable-like). */
int crmctl_reply(const crm_msg_t *answer, const char *what);
/* For showing a Redis hash: field `field`, "-" when absent or empty. */
const char *crmctl_or(const redisReply *h, const char *field);
/* "2026-12-05 10:00 CST" from a field holding ms, "-" without; returns out. */
const char *crmctl_time(const redisReply *h, const char *field, char *out, size_t size);
/* A positional id argument checked against the id rule (crm_id). */
bool crmctl_id_ok(const char *id, const char *what);

int crmctl_lead(crmctl_t *ctl);       /* lead submit | lead import */
/* customer|service|followup import FILE.csv --dealer D (type customer.file,
   service.record, followup.record), tools/crmctl_import.c */
int crmctl_records_import(crmctl_t *ctl, crm_type_t type);
int crmctl_customer(crmctl_t *ctl);   /* customer show | customer find */
int crmctl_quarantine(crmctl_t *ctl); /* quarantine list | show | retry */
int crmctl_dealer(crmctl_t *ctl);     /* dealer add | update | list | show | suspend | activate | cert | revoke */
int crmctl_testdrive(crmctl_t *ctl);  /* testdrive list | show */
int crmctl_regions(crmctl_t *ctl);    /* regions show | load FILE */
int crmctl_rejects(crmctl_t *ctl);    /* rejects [list] | show ID | retry ID */
/* The dealer uplink's requests (tools/crmctl_uplink.c): followup|order|
   delivery|service record, customer assign, lost request|approve|refuse|
   reactivate|list, staff add|update|leave; argv[0] and argv[1] name it. */
int crmctl_uplink(crmctl_t *ctl);
int crmctl_staff(crmctl_t *ctl); /* staff add | update | leave | list | show */
/* crm-scheduler's (tools/crmctl_sched.c) */
int crmctl_calendar(crmctl_t *ctl); /* calendar show | load FILE */
int crmctl_tasks(crmctl_t *ctl);    /* tasks list */
/* consultant leave without --postpone: the tasks due while away. */
int crmctl_tasks_away(crmctl_t *ctl, const char *dealer, const char *consultant, const char *from, const char *to);
int crmctl_report(crmctl_t *ctl);   /* report daily */
/* crm-auditor's runs (tools/crmctl_audit.c): audit run | abc | retention
   (asked of crm-auditor), show | history | rules (read from Redis). */
int crmctl_audit(crmctl_t *ctl);
/* CURVE certificates of dealers (service "dispatcher", kind "dealer-id")
   and lead sources ("intake", "source-id"), tools/crmctl_cert.c: the key
   pair is made here and the secret written to `out_secret_file` (0600);
   only the public key travels, in a cert.issue request. */
/* crm-notifier's (tools/crmctl_notify.c): notify show | dlq list | dlq retry,
   consent set | show | history, webhook set | show. */
int crmctl_notify(crmctl_t *ctl);
int crmctl_consent(crmctl_t *ctl);
int crmctl_webhook(crmctl_t *ctl);
int crmctl_cert(crmctl_t *ctl, const char *service, const char *meta_key, const char *id,
                const char *out_secret_file);
int crmctl_cert_revoke(crmctl_t *ctl, const char *service, const char *id);

#endif
