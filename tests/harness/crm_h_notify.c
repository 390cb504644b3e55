/*  The notifier's tests' fixture (crm_h_notify.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "crm_calendar.h"
#include "crm_clock.h"
#include "crm_h_notify.h"
#include "crm_id.h"



/* ------------------------------------------------------------ peers */

const char *crm_h_ntf_python(void)
{
    const char *p = getenv("CRM_TEST_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

pid_t crm_h_ntf_spawn_py(const char *const *args, const char *log)
{
    return crm_h_spawn_path(crm_h_ntf_python(), args, NULL, log);
}

static int s_wait_port(const char *file)
{
    for (int i = 0; i < 150; i++) {
        char *t = crm_h_slurp(file);
        if (t) {
            int p = atoi(t);
            free(t);
            if (p > 0)
                return p;
        }
        usleep(100 * 1000);
    }
    fail_msg("peer did not write %s", file);
    return -1;
}

void crm_h_ntf_peer_path(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/tests/peers/%s", CRM_SOURCE_DIR, name);
}

void crm_h_ntf_start_http(crm_h_ntf_t *f)
{
    char script[400], pf[400], out[400];
    crm_h_ntf_peer_path("http_peer.py", script, sizeof script);
    snprintf(pf, sizeof pf, "%s/http.port", f->dir);
    snprintf(f->http_log, sizeof f->http_log, "%s/http.jsonl", f->dir);
    snprintf(out, sizeof out, "%s/http_peer.out", f->dir);
    unlink(pf);
    const char *args[] = {script, "--port", "0", "--port-file", pf, "--log", f->http_log, NULL};
    f->http = crm_h_ntf_spawn_py(args, out);
    f->http_port = s_wait_port(pf);
}

void crm_h_ntf_start_smtp(crm_h_ntf_t *f, const char *const *extra)
{
    char script[400], pf[400], out[400];
    crm_h_ntf_peer_path("smtp_sink.py", script, sizeof script);
    snprintf(pf, sizeof pf, "%s/smtp.port", f->dir);
    snprintf(f->smtp_log, sizeof f->smtp_log, "%s/smtp.jsonl", f->dir);
    snprintf(out, sizeof out, "%s/smtp_sink.out", f->dir);
    unlink(pf);
    const char *args[16] = {script, "--port", "0", "--port-file", pf, "--log", f->smtp_log};
    int n = 7;
    for (const char *const *e = extra; e && *e && n < 15; e++)
        args[n++] = *e;
    args[n] = NULL;
    f->smtp = crm_h_ntf_spawn_py(args, out);
    f->smtp_port = s_wait_port(pf);
}

/* Runs a peer script, its stdout into `out` (caller frees); its exit code. */
int crm_h_ntf_run_py(const char *const *args, char **out)
{
    char path[400];
    snprintf(path, sizeof path, "/tmp/crm-notifier-py-%d.out", (int) getpid());
    pid_t pid = crm_h_ntf_spawn_py(args, path);
    int status = 0;
    waitpid(pid, &status, 0);
    *out = crm_h_slurp(path);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The peer's control API. */
void crm_h_ntf_ctl(crm_h_ntf_t *f, const char *path, const char *json)
{
    char url[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->http_port, path);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary '%s' '%s'",
             json, url);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------ the system */

void crm_h_ntf_up(crm_h_ntf_t *f, bool clock, const char *const *env, const char *const *smtp_args)
{
    crm_h_ntf_up_at(f, clock ? crm_now_ms() : 0, env, smtp_args);
}

void crm_h_ntf_up_at(crm_h_ntf_t *f, int64_t clock_ms, const char *const *env, const char *const *smtp_args)
{
    memset(f, 0, sizeof *f);
    bool clock = clock_ms != 0;
    assert_int_equal(crm_h_sys_start(&f->sys, false, clock), 0);
    if (clock)
        crm_h_sys_set_clock(&f->sys, clock_ms);
    f->clock = clock;
    crm_h_path(&f->sys.redis, "", f->dir, sizeof f->dir);
    crm_h_ntf_start_http(f);
    crm_h_ntf_start_smtp(f, smtp_args);
    crm_h_sys_env(&f->sys, "CRM_SMS_URL=http://127.0.0.1:%d/sms/send", f->http_port);
    crm_h_sys_env(&f->sys, "CRM_SMS_QUERY_URL=http://127.0.0.1:%d/sms/query", f->http_port);
    crm_h_sys_env(&f->sys, "CRM_SMS_PULL_URL=http://127.0.0.1:%d/sms/pull", f->http_port);
    crm_h_sys_env(&f->sys, "CRM_SMS_PULL_MS=%d", 100);
    crm_h_sys_env(&f->sys, "CRM_SMTP_URL=smtp://127.0.0.1:%d", f->smtp_port);
    crm_h_sys_env(&f->sys, "CRM_DEPT_EMAIL=%s", "crm@carmaker.example");
    crm_h_sys_env(&f->sys, "CRM_MAIL_FROM=%s", "notice@carmaker.example");
    crm_h_sys_env(&f->sys, "CRM_UNSUBSCRIBE_URL=%s", "https://crm.carmaker.example/unsubscribe");
    crm_h_sys_env(&f->sys, "CRM_UNSUBSCRIBE_KEY=%s", "test-key-of-16-chars");
    crm_h_sys_env(&f->sys, "CRM_RETRY_BASE_MS=%d", 200);
    crm_h_sys_env(&f->sys, "CRM_RETRY_MAX_MS=%d", 1000);
    crm_h_sys_env(&f->sys, "CRM_NOTIFY_TIMEOUT_MS=%d", 3000);
    for (const char *const *e = env; e && *e; e++)
        crm_h_sys_env(&f->sys, "%s", *e);
    /* the customers and the dealer the messages are about */
    redisReply *r = crm_store_cmd(f->sys.store, "HSET crm:cust:{C1} name 王先生 mobile 13812345678 email wang@example.cn "
                                                "dealer_id D1");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "SET crm:idx:mobile:13812345678 C1");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "HSET crm:cust:{C2} name 李女士 mobile 13912345678 dealer_id D1");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "SET crm:idx:mobile:13912345678 C2");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "HSET crm:dealer:D1 name 深圳安途4S店 province 广东 city 深圳 state active");
    freeReplyObject(r);
    r = crm_store_cmd(f->sys.store, "SADD crm:dealers D1");
    freeReplyObject(r);
    crm_h_sys_spawn(&f->sys, "notifier", NULL);
}

void crm_h_ntf_down(crm_h_ntf_t *f)
{
    crm_h_sys_stop(&f->sys);
    if (f->http > 0)
        crm_h_stop(f->http, SIGTERM, 5000);
    if (f->smtp > 0)
        crm_h_stop(f->smtp, SIGTERM, 5000);
}



void crm_h_ntf_request(crm_h_ntf_t *f, const crm_h_ntf_req_t *q)
{
    crm_tx_t *tx = crm_tx_new("scheduler", 1000000);
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_notify_request);
    CRM_SET_STR(&m, notify_request, request_id, q->rid);
    CRM_SET_STR(&m, notify_request, channel, q->channel);
    CRM_SET_STR(&m, notify_request, to, q->to);
    CRM_SET_STR(&m, notify_request, template, q->tpl);
    if (q->customer)
        CRM_SET_STR(&m, notify_request, customer_id, q->customer);
    if (q->cls)
        CRM_SET_STR(&m, notify_request, class, q->cls);
    if (q->recipient)
        CRM_SET_STR(&m, notify_request, recipient, q->recipient);
    if (q->dealer)
        CRM_SET_STR(&m, notify_request, dealer_id, q->dealer);
    for (int i = 0; i < 8 && q->params[i]; i++) {
        crm_strs_push(&m.body.notify_request.params, q->params[i]);
        m.body.notify_request.has.params = true;
    }
    if (q->not_before)
        CRM_SET_I64(&m, notify_request, not_before, q->not_before);
    if (q->not_after)
        CRM_SET_I64(&m, notify_request, not_after, q->not_after);
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
    crm_h_sys_commit(&f->sys, tx);
    crm_tx_destroy(&tx);
}

/* The notification number of a request id, "" until kept. */
void crm_h_ntf_nid(crm_h_ntf_t *f, const char *rid, char *out, size_t size)
{
    char digest[CRM_ID_DIGEST_SZ];
    const char *parts[] = {rid};
    crm_id_digest(parts, 1, digest);
    redisReply *r = crm_store_cmd(f->sys.store, "GET crm:notify:req:%s", digest);
    snprintf(out, size, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

/* A field of the request's notification into out ("" when none). */
const char *crm_h_ntf_field(crm_h_ntf_t *f, const char *rid, const char *field, char *out, size_t size)
{
    char id[32];
    crm_h_ntf_nid(f, rid, id, sizeof id);
    out[0] = '\0';
    if (!id[0])
        return out;
    redisReply *r = crm_store_cmd(f->sys.store, "HGET crm:notify:%s %s", id, field);
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(out, size, "%s", r->str);
    freeReplyObject(r);
    return out;
}

/* Waits until the request's notification is in one of the states (a
   space-separated list); fails with its state and log otherwise. */
void crm_h_ntf_wait_state(crm_h_ntf_t *f, const char *rid, const char *states, int ms)
{
    char st[64] = "";
    int64_t until = crm_mono_ms() + ms;
    while (crm_mono_ms() < until) {
        crm_h_ntf_field(f, rid, "state", st, sizeof st);
        if (st[0]) {
            char want[200];
            snprintf(want, sizeof want, " %s ", states);
            char me[70];
            snprintf(me, sizeof me, " %s ", st);
            if (strstr(want, me))
                return;
        }
        usleep(20 * 1000);
    }
    char reason[200], err[300], log[400];
    crm_h_ntf_field(f, rid, "reason", reason, sizeof reason);
    crm_h_ntf_field(f, rid, "last_error", err, sizeof err);
    fail_msg("%s: state '%s' (reason '%s', error '%s'), expected %s; see %s", rid, st, reason, err, states,
             crm_h_sys_log(&f->sys, "notifier", log, sizeof log));
}

/* How many logged requests to the HTTP peer have `path` prefix and
   contain `needle` in their body (NULL: any). */
int crm_h_ntf_http_count(crm_h_ntf_t *f, const char *path, const char *needle)
{
    usleep(120 * 1000); /* the peer flushes its log every 50 ms */
    char *t = crm_h_slurp(f->http_log);
    int n = 0;
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        const char *p = json_string_value(json_object_get(o, "path"));
        const char *b = json_string_value(json_object_get(o, "body"));
        if (p && !json_is_true(json_object_get(o, "control")) && !strncmp(p, path, strlen(path)) &&
            (!needle || (b && strstr(b, needle))))
            n++;
        json_decref(o);
    }
    free(t);
    return n;
}

/* The last logged request to `path` as JSON (caller decrefs), or NULL. */
json_t *crm_h_ntf_http_last(crm_h_ntf_t *f, const char *path)
{
    usleep(120 * 1000);
    char *t = crm_h_slurp(f->http_log);
    json_t *last = NULL;
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        const char *p = json_string_value(json_object_get(o, "path"));
        if (p && !json_is_true(json_object_get(o, "control")) && !strncmp(p, path, strlen(path))) {
            json_decref(last);
            last = o;
        } else
            json_decref(o);
    }
    free(t);
    return last;
}

/* A form field of an x-www-form-urlencoded body, decoded (caller frees). */
char *crm_h_ntf_form(const char *body, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t) (amp - p) : strlen(p);
        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            char *v = zmalloc(len);
            size_t o = 0;
            for (size_t i = nl + 1; i < len; i++) {
                if (p[i] == '%' && i + 2 < len) {
                    char hx[3] = {p[i + 1], p[i + 2], 0};
                    v[o++] = (char) strtol(hx, NULL, 16);
                    i += 2;
                } else
                    v[o++] = p[i] == '+' ? ' ' : p[i];
            }
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* The decoded messages the SMTP sink captured (check_mail.py), a JSON array. */
json_t *crm_h_ntf_mails(crm_h_ntf_t *f)
{
    char script[400];
    crm_h_ntf_peer_path("check_mail.py", script, sizeof script);
    const char *args[] = {script, f->smtp_log, NULL};
    char *out = NULL;
    crm_h_ntf_run_py(args, &out);
    json_error_t e;
    json_t *a = out ? json_loads(out, 0, &e) : NULL;
    if (!json_is_array(a))
        fail_msg("check_mail.py: %s", out ? out : "(nothing)");
    free(out);
    return a;
}

int crm_h_ntf_events(crm_h_ntf_t *f, const char *type, const char *needle)
{
    return crm_h_events(f->sys.store, "notice", type, needle);
}

/* China time "YYYY-MM-DD HH:MM" -> ms. */
int64_t crm_h_ntf_cst(int y, int mo, int d, int h, int mi)
{
    return crm_cst_day_start_ms(crm_day_from_ymd(y, mo, d)) + ((int64_t) h * 60 + mi) * 60000;
}

