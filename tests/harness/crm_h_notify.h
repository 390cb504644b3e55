/*  The notifier's tests' fixture (tests/bus/test_notifier*.c): a Redis, the
 *  real peers of tests/peers (an HTTP server that is the SMS gateway and the
 *  dealers' endpoints, an SMTP sink), crm-notifier pointed at them, and the
 *  means to ask for notifications and read what the peers received.
 */
#ifndef CRM_H_NOTIFY_H
#define CRM_H_NOTIFY_H

#include <jansson.h>

#include "crm_harness.h"

typedef struct {
    crm_h_sys_t sys;
    char dir[300];
    pid_t http, smtp;
    int http_port, smtp_port;
    char http_log[400], smtp_log[400];
    bool clock;
} crm_h_ntf_t;

typedef struct {
    const char *rid, *channel, *to, *tpl, *customer, *cls, *recipient, *dealer;
    const char *params[8];
    int64_t not_before, not_after;
} crm_h_ntf_req_t;

/* Starts Redis (with a test clock when asked), the peers (smtp_args: extra
   arguments of smtp_sink.py), customers C1 (王先生, 13812345678,
   wang@example.cn) and C2 (李女士, 13912345678) of dealer D1 (深圳安途4S店),
   and crm-notifier with `env` ("NAME=value", NULL-terminated) added. */
void crm_h_ntf_up(crm_h_ntf_t *f, bool clock, const char *const *env, const char *const *smtp_args);
/* The same with the test clock set to `clock_ms` first (0: no clock). */
void crm_h_ntf_up_at(crm_h_ntf_t *f, int64_t clock_ms, const char *const *env, const char *const *smtp_args);
void crm_h_ntf_down(crm_h_ntf_t *f);
/* A notify.request published as crm-scheduler would. */
void crm_h_ntf_request(crm_h_ntf_t *f, const crm_h_ntf_req_t *q);
/* The notification number of a request id, "" until kept. */
void crm_h_ntf_nid(crm_h_ntf_t *f, const char *rid, char *out, size_t size);
/* A field of the request's notification ("" when none); returns out. */
const char *crm_h_ntf_field(crm_h_ntf_t *f, const char *rid, const char *field, char *out, size_t size);
/* Waits until the notification is in one of `states` (space-separated); fails otherwise. */
void crm_h_ntf_wait_state(crm_h_ntf_t *f, const char *rid, const char *states, int ms);
/* Requests the HTTP peer logged under `path` (a prefix) whose body holds `needle` (NULL: any). */
int crm_h_ntf_http_count(crm_h_ntf_t *f, const char *path, const char *needle);
/* The last of them as JSON (caller decrefs), or NULL. */
json_t *crm_h_ntf_http_last(crm_h_ntf_t *f, const char *path);
/* A form field of a urlencoded body, decoded (caller frees), or NULL. */
char *crm_h_ntf_form(const char *body, const char *name);
/* The captured mails as tests/peers/check_mail.py decodes them (a JSON array). */
json_t *crm_h_ntf_mails(crm_h_ntf_t *f);
/* Events of `type` on the notice stream (what crm-notifier did) whose JSON holds `needle`. */
int crm_h_ntf_events(crm_h_ntf_t *f, const char *type, const char *needle);
/* China time -> ms UTC. */
int64_t crm_h_ntf_cst(int y, int mo, int d, int h, int mi);
/* POSTs JSON to the HTTP peer's control API (/_ctl/fault, /_ctl/reply ...). */
void crm_h_ntf_ctl(crm_h_ntf_t *f, const char *path, const char *json);
/* Runs a Python script (args[0] the script), its stdout in *out (caller frees); its exit code. */
int crm_h_ntf_run_py(const char *const *args, char **out);
/* tests/peers/<name> into out. */
void crm_h_ntf_peer_path(const char *name, char *out, size_t size);
/* Starts a Python peer logging to `log`; its pid. */
pid_t crm_h_ntf_spawn_py(const char *const *args, const char *log);
const char *crm_h_ntf_python(void);
void crm_h_ntf_start_http(crm_h_ntf_t *f);
void crm_h_ntf_start_smtp(crm_h_ntf_t *f, const char *const *extra);

#endif
