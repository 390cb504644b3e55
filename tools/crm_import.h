/*  crm_import: a CSV file sent row by row to a service, the behaviour every
 *  import shares (crmctl lead import, crmctl customer|service|followup
 *  import, crm-dealer import):
 *
 *  - pipelined: up to `window` rows in flight on one DEALER socket, each
 *    answer matched to its row by a key the caller's callbacks give;
 *  - resent with the same bytes (the same ids) after `timeout_ms` without
 *    an answer, up to `tries` sends; an answer that says "not now"
 *    (unavailable, busy) is resent after a pause, and counts as a send;
 *  - idempotent per row: every row carries an id of its own (its id
 *    column, or a content key), so a row sent twice -- in the same run, in
 *    a run after a crash, in the same file imported again -- is stored
 *    once; a row whose id an earlier row of the same file already has is
 *    not sent again (a duplicate row);
 *  - progress on stderr (a bar on a terminal, every 10% otherwise);
 *  - every row that cannot be read or is refused goes to
 *    "<file>.rejects.csv": the header, the row as read, and an "error"
 *    column; the first 20 are printed as "  row N: why". Fix them there and
 *    import that file: the error column is ignored.
 *
 *  Nothing here knows the messages: the callbacks prepare each row's
 *  message and read each answer.
 */
#ifndef CRM_IMPORT_H
#define CRM_IMPORT_H

#include <czmq.h>
#include <stdbool.h>

#include "crm_leadin.h"

#define CRM_IMPORT_KEY_SZ 320
#define CRM_IMPORT_WHY_SZ 1024

typedef enum {
    CRM_IMPORT_STORED,  /* the service took the row */
    CRM_IMPORT_REFUSED, /* the service refused it for good: why says why */
    CRM_IMPORT_RETRY,   /* not now (unavailable, busy): send it again later */
    CRM_IMPORT_IGNORE   /* not an answer to any row (unreadable, unknown type) */
} crm_import_outcome_t;

/* What the answer callback says of one answer. */
typedef struct {
    crm_import_outcome_t outcome;
    char key[CRM_IMPORT_KEY_SZ]; /* the row it answers: its prepare key */
    bool flag;                   /* stored: a lead merged into a known customer, a
                                    record that made a new customer */
    long nfindings;              /* stored: the findings the record has */
    char why[CRM_IMPORT_WHY_SZ]; /* refused: for the rejects file and the summary */
} crm_import_result_t;

typedef struct {
    zsock_t *sock;       /* a connected DEALER socket (CURVE applied when needed) */
    bool delimiter;      /* an empty frame before each request (a REQ-style envelope) */
    const char *peer;    /* "crm-intake at tcp://...", for messages */
    const char *what;    /* "lead", "customer file", ...: for messages */
    int timeout_ms, tries;
    /* Completes a row's message (the envelope and whatever the caller adds,
       e.g. dealer_id) and gives the key its answer will carry (match) and
       the row's own id (dedupe, the same for the same row). 0, or -1 when
       the row cannot be sent (out of memory). */
    int (*prepare)(void *arg, crm_msg_t *m, char *match, char *dedupe);
    /* Reads one answer (decoded) into res. */
    void (*answer)(void *arg, const crm_msg_t *a, crm_import_result_t *res);
    void *arg;
} crm_import_conf_t;

typedef struct {
    long rows;          /* data rows read (blank ones are not rows) */
    long stored;        /* answered CRM_IMPORT_STORED */
    long flagged;       /* of which flag was set */
    long with_findings; /* of which nfindings > 0 */
    long refused;       /* answered CRM_IMPORT_REFUSED */
    long unreadable;    /* the reader's -1 */
    long duplicates;    /* rows with the id of an earlier row of the file */
    long unconfirmed;   /* sent `tries` times without a final answer */
    double secs;
    bool rejects;             /* the rejects file was written */
    char rejects_path[4096 + 16]; /* "<file>.rejects.csv" (a path the reader opened is under PATH_MAX) */
} crm_import_stats_t;

/* Imports every row of r (opened on `path`); fills *st. 0, or -1 when
   the run stopped because rows went unanswered (st->unconfirmed > 0: run
   it again, rows already stored are not stored twice). */
int crm_import_run(crm_csv_reader_t *r, const char *path, const crm_import_conf_t *conf,
                   crm_import_stats_t *st);

/* ------------------------------------------------------ dealer records */

/* How dealer records (customer.file, service.record, followup.record) are
   sent: the tool says where and as whom. */
typedef struct {
    const char *tool;     /* "crmctl", "crm-dealer": the prefix of its messages */
    zsock_t *sock;        /* connected DEALER socket */
    bool delimiter;       /* see crm_import_conf_t */
    const char *peer;     /* "crm-dispatcher at ...", "the gateway at ..." */
    int timeout_ms, tries;
    const char *dealer;   /* the dealer the file is from, for the messages */
    bool body_dealer;     /* dealer_id goes into every body (crm-dispatcher's
                             control endpoint, answered by `reply`); false on
                             the gateway (the certificate names the dealer,
                             answered by `dealer.reply`) */
    const char *producer; /* the envelope's producer */
    const char *encoding; /* NULL: detect */
} crm_import_records_t;

/* Opens `path` with crm_csv_open_records, warns of columns that are not
   sent, sends every row (crm_import_run), and prints "<verb> FILE (ENC) as
   TYPE records of dealer D", the first refusals ("row N: field: code
   (message)"), the summary "R rows in S s: X stored (F with findings[, C
   new customers]), Y refused, U unreadable, D duplicate rows, N not
   confirmed" and where the rejects file is. Returns 0 when every row was
   stored, 1 when one was refused or unreadable or the file cannot be
   read, 2 when rows were left without an answer. */
int crm_import_records(const crm_import_records_t *how, crm_type_t type, const char *path);

/* The record_id of a dealer record; NULL for another message. */
const char *crm_import_record_id(const crm_msg_t *m);

/* A refusal as people read it, from the answer's errors ("field|code|
   message" each): "name: required (a record needs a name or an ID
   number); ...", or "code: message" when it names no field. */
void crm_import_why(const crm_strs_t *errors, const char *code, const char *message, char *why,
                    size_t whysz);

/* Whether an answer's code means "not now, send it again" (unavailable,
   busy; not_certified on the gateway while a new certificate loads). */
bool crm_import_retry_code(const char *code);

/* Writes v as one CSV cell (quoted when it holds , " CR or LF). */
void crm_import_csv_cell(FILE *f, const char *v);

#endif
