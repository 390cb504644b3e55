/*  crm-dealer: the reference dealer client (see tools/DEALERS.md).
 *
 *  Follows one dealer's dispatch stream from the carmaker's gateway and
 *  applies every dispatch exactly once, in order: it keeps the last number
 *  it applied in a state file, asks for a replay from there on start-up
 *  (and whenever a live push shows a gap, and every --poll-ms in case the
 *  tail of a push was lost), applies live pushes in between, and
 *  acknowledges what it applied.
 *
 *  "Apply" prints the dispatch as one JSON line on stdout, or runs --exec
 *  CMD with that line on its stdin; a failing CMD stops the stream there
 *  (nothing is skipped) and it is tried again later. The state file is
 *  written (tmp, fsync, rename) after each applied dispatch, so a crash
 *  repeats at most the dispatch in hand.
 *
 *  crm-dealer ... status TESTDRIVE_ID STATUS [--at ..] [--note ..] sends one
 *  status report instead (Lazy Pirate: a fresh socket per try, same bytes).
 */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crm_clock.h"
#include "crm_config.h"
#include "crm_log.h"
#include "crm_proto.h"
#include "crm_store.h"

enum { S_EXIT_OK = 0, S_EXIT_NO = 1, S_EXIT_USAGE = 2, S_EXIT_NOANSWER = 2, S_EXIT_GAP = 3 };

#define S_ACK_EVERY_MS 100
#define S_ACK_EVERY_N 100
#define S_APPLY_RETRY_MS 5000

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static crm_opt_t s_opts[] = {
    {"dealer", "CRM_DEALER_ID", NULL, "This dealer's id (as in its certificate)", NULL},
    {"cert", "CRM_DEALER_CERT", NULL, "This dealer's secret certificate file (from crmctl dealer cert)",
     NULL},
    {"server-cert", "CRM_DEALER_SERVER_CERT", NULL,
     "The gateway's public certificate file (var/gateway.cert at the carmaker)", NULL},
    {"state", "CRM_DEALER_STATE", NULL, "File keeping the last applied number (created if missing)",
     NULL},
    {"endpoint", "CRM_DEALER_ENDPOINT", "tcp://127.0.0.1:7302",
     "The gateway's request endpoint (ROUTER: replay, ack, status)", NULL},
    {"pub", "CRM_DEALER_PUB", "tcp://127.0.0.1:7301", "The gateway's live push endpoint (XPUB)", NULL},
    {"exec", "CRM_DEALER_EXEC", NULL,
     "Command run for each dispatch with its JSON line on stdin (default: print to stdout)", NULL},
    {"once", "CRM_DEALER_ONCE", "0", "Exit once the replay is applied (--once, or 1)", NULL},
    {"sync", "CRM_DEALER_SYNC", "each",
     "each: the state file is written (fsync) after every dispatch, so none is ever applied twice; "
     "batch: with every acknowledgement (100 dispatches or 100 ms), so after a crash up to that many "
     "may be applied again (each carries its number)", NULL},
    {"poll-ms", "CRM_DEALER_POLL_MS", "30000", "Ask for a replay this often when nothing arrives",
     NULL},
    {"timeout-ms", "CRM_TIMEOUT_MS", "3000", "How long to wait for the gateway's answer", NULL},
    {"tries", "CRM_TRIES", "3", "How often to send a request before giving up", NULL},
    {"at", NULL, NULL, "status: agreed or new time, \"YYYY-MM-DD HH:MM\" China time", NULL},
    {"note", NULL, NULL, "status: free text", NULL},
    {"log-level", "CRM_LOG_LEVEL", "info", "debug, info, warn or error", NULL},
    CRM_OPT_END};

static const char *s_summary =
    "The reference dealer client: applies this dealer's dispatches exactly once, in order.\n"
    "  crm-dealer --dealer ID --cert SECRET --server-cert PUBLIC --state FILE [--once] [--exec CMD]\n"
    "  crm-dealer --dealer ID --cert SECRET --server-cert PUBLIC status TESTDRIVE_ID STATUS\n"
    "             [--at \"YYYY-MM-DD HH:MM\"] [--note TEXT]\n"
    "Exit: 0 done (or status accepted), 1 refused or start-up failed, 2 usage or no answer,\n"
    "3 the stream no longer holds what this dealer needs (see DEALERS.md)";

typedef struct {
    const char *dealer;
    char stream[64];
    char topic[80];
    zcert_t *cert;
    char server_key[41];
    const char *state_file;
    const char *exec;
    bool sync_batch; /* --sync batch: the state file follows the acks */
    int64_t timeout_ms, tries, poll_ms;
    bool once;
    zsock_t *sub, *req;
    uint64_t last;  /* applied */
    uint64_t acked; /* sent in an ack */
    int64_t ack_at; /* when the last ack went out */
    /* the replay in flight */
    bool replaying;
    char replay_id[CRM_ID_MAX];
    int64_t replay_deadline;
    int replay_tries;
    int64_t next_poll;
    int64_t blocked_until; /* apply failed: wait before asking again */
    bool replay_done_once;
    bool failed; /* an apply failed (--once ends with 1) */
} s_dealer_t;

/* ------------------------------------------------------------ state file */

static int s_state_read(const char *path, uint64_t *last)
{
    *last = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    unsigned long long v = 0;
    int n = fscanf(f, "%llu", &v);
    fclose(f);
    if (n != 1)
        return -1;
    *last = v;
    return 0;
}

/* Written to FILE.tmp, fsynced and renamed: the file always holds a whole
   number, the old one or the new one. */
static int s_state_write(const char *path, uint64_t last)
{
    char tmp[1024], buf[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long) last);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    if (write(fd, buf, (size_t) n) != n || fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ sockets */

static zsock_t *s_socket(s_dealer_t *d, int type, const char *endpoint)
{
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    zcert_apply(d->cert, sock);
    zsock_set_curve_serverkey(sock, d->server_key);
    zsock_set_linger(sock, 1000);
    zsock_set_maxmsgsize(sock, CRM_FRAME_MAX + 1024);
    if (type == ZMQ_SUB)
        zsock_set_subscribe(sock, d->topic);
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

static int s_send_msg(zsock_t *sock, crm_msg_t *m, char *id_out)
{
    crm_new_id(m->id, sizeof m->id);
    m->ts = crm_now_ms();
    snprintf(m->producer, sizeof m->producer, "dealer");
    if (id_out)
        snprintf(id_out, CRM_ID_MAX, "%s", m->id);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = crm_msg_encode(m, &buf, NULL);
    if (rc == 0)
        rc = zmq_send(zsock_resolve(sock), buf.data, buf.size, ZMQ_DONTWAIT) < 0 ? -1 : 0;
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

static void s_ask_replay(s_dealer_t *d)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_replay);
    CRM_SET_I64(&m, dealer_replay, from, (int64_t) d->last + 1);
    if (s_send_msg(d->req, &m, d->replay_id) == 0) {
        d->replaying = true;
        d->replay_deadline = crm_mono_ms() + d->timeout_ms;
        crm_info("dealer.replay_asked", "dealer=%s from=%llu", d->dealer,
                 (unsigned long long) d->last + 1);
    }
    crm_msg_clear(&m);
}

static void s_ack(s_dealer_t *d, bool force)
{
    if (d->last == d->acked)
        return;
    int64_t now = crm_mono_ms();
    if (!force && now - d->ack_at < S_ACK_EVERY_MS && d->last - d->acked < S_ACK_EVERY_N)
        return;
    /* --sync batch: what is acknowledged is on disk first. */
    if (d->sync_batch && s_state_write(d->state_file, d->last) != 0) {
        crm_error("dealer.state_not_written", "dealer=%s file=%s why=\"%s\"", d->dealer, d->state_file,
                  strerror(errno));
        s_stop = 1;
        return;
    }
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_ack);
    CRM_SET_I64(&m, dealer_ack, upto, (int64_t) d->last);
    if (s_send_msg(d->req, &m, NULL) == 0) {
        d->acked = d->last;
        d->ack_at = now;
    }
    crm_msg_clear(&m);
}

/* ------------------------------------------------------------ apply */

static int s_run_exec(const char *cmd, const char *json)
{
    FILE *p = popen(cmd, "w");
    if (!p)
        return -1;
    int ok = fputs(json, p) >= 0 && fputc('\n', p) != EOF;
    int status = pclose(p);
    return ok && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Applies one dispatch that is exactly next in line. 0 applied (state
   written), -1 not applied (left for a later try). */
static int s_apply(s_dealer_t *d, const crm_msg_t *m)
{
    char *json = crm_msg_to_json(m);
    if (!json)
        return -1;
    int rc;
    if (d->exec)
        rc = s_run_exec(d->exec, json);
    else
        rc = fputs(json, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0 ? 0 : -1;
    free(json);
    if (rc != 0) {
        crm_warn("dealer.apply_failed", "dealer=%s seq=%llu retry_ms=%d", d->dealer,
                 (unsigned long long) m->seq, S_APPLY_RETRY_MS);
        return -1;
    }
    if (!d->sync_batch && s_state_write(d->state_file, m->seq) != 0) {
        /* Applied but not recorded: stop here; the next start repeats it. */
        crm_error("dealer.state_not_written", "dealer=%s file=%s why=\"%s\"", d->dealer,
                  d->state_file, strerror(errno));
        s_stop = 1;
        return -1;
    }
    d->last = m->seq;
    return 0;
}

/* A dispatch from a replay or a push: dropped when already applied, applied
   when next, and a replay is asked for when numbers are missing. */
static void s_on_dispatch(s_dealer_t *d, const void *data, size_t len, bool live)
{
    crm_msg_t m;
    crm_err_t e;
    if (crm_msg_decode(data, len, &m, &e) != 0) {
        crm_warn("dealer.malformed", "dealer=%s field=%s", d->dealer, e.field);
        return;
    }
    if (m.type != CRM_T_dealer_dispatch || strcmp(m.stream, d->stream)) {
        crm_warn("dealer.unexpected", "dealer=%s type=%s stream=%s", d->dealer,
                 crm_type_name(m.type), m.stream);
    } else if (m.seq <= d->last) {
        crm_debug("dealer.duplicate", "dealer=%s seq=%llu", d->dealer, (unsigned long long) m.seq);
    } else if (d->blocked_until > crm_mono_ms()) {
        /* waiting to try the failed one again */
    } else if (m.seq == d->last + 1) {
        if (s_apply(d, &m) != 0 && !s_stop) {
            d->blocked_until = crm_mono_ms() + S_APPLY_RETRY_MS;
            d->failed = true;
        } else
            s_ack(d, false);
    } else if (live && !d->replaying) {
        crm_info("dealer.gap", "dealer=%s have=%llu got=%llu", d->dealer,
                 (unsigned long long) d->last, (unsigned long long) m.seq);
        s_ask_replay(d);
    }
    crm_msg_clear(&m);
}

/* ------------------------------------------------------------ run */

static int s_on_reply(s_dealer_t *d, const crm_msg_t *m)
{
    const crm_body_dealer_reply_t *r = &m->body.dealer_reply;
    if (!d->replaying || strcmp(m->corr, d->replay_id)) {
        if (!r->ok)
            crm_warn("dealer.refused", "dealer=%s code=%s message=\"%s\"", d->dealer,
                     r->code ? r->code : "-", r->message ? r->message : "");
        return 0;
    }
    d->replaying = false;
    d->replay_tries = 0;
    d->next_poll = crm_mono_ms() + d->poll_ms;
    if (!r->ok) {
        crm_error("dealer.replay_refused", "dealer=%s code=%s first=%lld message=\"%s\"", d->dealer,
                  r->code ? r->code : "-", (long long) r->first, r->message ? r->message : "");
        if (r->code && !strcmp(r->code, "below_retained"))
            return S_EXIT_GAP;
        return 0; /* busy, unavailable: asked again at the next poll */
    }
    crm_info("dealer.replayed", "dealer=%s count=%lld last=%lld applied=%llu", d->dealer,
             (long long) r->count, (long long) r->last, (unsigned long long) d->last);
    if (d->last < (uint64_t) r->last && d->blocked_until <= crm_mono_ms())
        s_ask_replay(d); /* pushes arrived meanwhile, or some were dropped */
    else
        d->replay_done_once = true;
    return 0;
}

static int s_run(s_dealer_t *d)
{
    if (s_state_read(d->state_file, &d->last) != 0) {
        fprintf(stderr, "crm-dealer: cannot read the state file %s (a number expected)\n",
                d->state_file);
        return S_EXIT_NO;
    }
    d->acked = d->last;
    d->sub = s_socket(d, ZMQ_SUB, crm_opt(s_opts, "pub"));
    d->req = s_socket(d, ZMQ_DEALER, crm_opt(s_opts, "endpoint"));
    if (!d->sub || !d->req) {
        fprintf(stderr, "crm-dealer: cannot connect to %s / %s\n", crm_opt(s_opts, "pub"),
                crm_opt(s_opts, "endpoint"));
        return S_EXIT_NO;
    }
    crm_info("dealer.start", "dealer=%s last=%llu", d->dealer, (unsigned long long) d->last);
    s_ask_replay(d);
    zpoller_t *poller = zpoller_new(d->req, d->sub, NULL);
    int rc = S_EXIT_OK;
    while (!s_stop) {
        zsock_t *which = zpoller_wait(poller, 50);
        if (which == d->req) {
            zframe_t *f = zframe_recv(d->req);
            if (f) {
                crm_msg_t m;
                crm_err_t e;
                if (crm_msg_decode(zframe_data(f), zframe_size(f), &m, &e) == 0) {
                    if (m.type == CRM_T_dealer_reply)
                        rc = s_on_reply(d, &m);
                    else if (d->replaying)
                        d->replay_deadline = crm_mono_ms() + d->timeout_ms;
                    bool dispatch = m.type == CRM_T_dealer_dispatch;
                    crm_msg_clear(&m);
                    if (dispatch)
                        s_on_dispatch(d, zframe_data(f), zframe_size(f), false);
                }
                zframe_destroy(&f);
                if (rc != S_EXIT_OK)
                    break;
            }
        } else if (which == d->sub) {
            zmsg_t *msg = zmsg_recv(d->sub);
            zframe_t *topic = msg ? zmsg_first(msg) : NULL;
            zframe_t *frame = msg ? zmsg_next(msg) : NULL;
            if (topic && frame && zframe_streq(topic, d->topic))
                s_on_dispatch(d, zframe_data(frame), zframe_size(frame), true);
            zmsg_destroy(&msg);
        } else if (zpoller_terminated(poller) && !s_stop) {
            s_stop = 1;
        }
        int64_t now = crm_mono_ms();
        s_ack(d, false);
        if (d->once && d->failed) {
            rc = S_EXIT_NO;
            break;
        }
        if (d->once && d->replay_done_once)
            break;
        if (d->replaying && now > d->replay_deadline) {
            if (++d->replay_tries >= d->tries && d->once) {
                crm_error("dealer.no_answer", "dealer=%s endpoint=%s", d->dealer,
                          crm_opt(s_opts, "endpoint"));
                rc = S_EXIT_NOANSWER;
                break;
            }
            s_ask_replay(d); /* the DEALER socket reconnects by itself; ask again */
        } else if (!d->replaying && d->blocked_until && now >= d->blocked_until) {
            d->blocked_until = 0; /* try the failed dispatch again */
            s_ask_replay(d);
        } else if (!d->replaying && now >= d->next_poll && d->blocked_until <= now) {
            s_ask_replay(d);
        }
    }
    s_ack(d, true);
    /* Let the last ack out (linger), then close. */
    zpoller_destroy(&poller);
    zsock_destroy(&d->sub);
    zsock_destroy(&d->req);
    crm_info("dealer.stop", "dealer=%s last=%llu", d->dealer, (unsigned long long) d->last);
    return rc;
}

/* ------------------------------------------------------------ status */

/* "YYYY-MM-DD HH:MM" in China Standard Time -> ms UTC; -1 when malformed. */
static int64_t s_parse_at(const char *text)
{
    int y, mo, da, h, mi;
    char extra;
    if (sscanf(text, "%4d-%2d-%2d %2d:%2d%c", &y, &mo, &da, &h, &mi, &extra) != 5 || mo < 1 ||
        mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59 || h < 0 || mi < 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da, .tm_hour = h, .tm_min = mi};
    return (int64_t) timegm(&tm) * 1000 - CRM_CST_OFFSET_MS;
}

static int s_status(s_dealer_t *d, const char *testdrive, const char *status)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_dealer_status);
    CRM_SET_STR(&m, dealer_status, testdrive_id, testdrive);
    CRM_SET_STR(&m, dealer_status, status, status);
    const char *at = crm_opt(s_opts, "at"), *note = crm_opt(s_opts, "note");
    if (at) {
        int64_t ms = s_parse_at(at);
        if (ms < 0) {
            fprintf(stderr, "crm-dealer: --at \"%s\": expected \"YYYY-MM-DD HH:MM\"\n", at);
            crm_msg_clear(&m);
            return S_EXIT_USAGE;
        }
        CRM_SET_I64(&m, dealer_status, at, ms);
    }
    if (note)
        CRM_SET_STR(&m, dealer_status, note, note);
    crm_new_id(m.id, sizeof m.id);
    m.ts = crm_now_ms();
    snprintf(m.producer, sizeof m.producer, "dealer");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = S_EXIT_NOANSWER;
    if (crm_msg_encode(&m, &buf, NULL) != 0)
        goto done;
    /* Lazy Pirate: a fresh socket per try, the same bytes (same id). */
    for (int64_t t = 0; t < d->tries && !s_stop; t++) {
        zsock_t *sock = s_socket(d, ZMQ_DEALER, crm_opt(s_opts, "endpoint"));
        if (!sock)
            break;
        zsock_set_linger(sock, 0);
        zmq_send(zsock_resolve(sock), buf.data, buf.size, 0);
        zpoller_t *poller = zpoller_new(sock, NULL);
        int64_t deadline = crm_mono_ms() + d->timeout_ms;
        while (rc == S_EXIT_NOANSWER && crm_mono_ms() < deadline && !s_stop) {
            if (zpoller_wait(poller, (int) (deadline - crm_mono_ms())) != sock)
                continue;
            zframe_t *f = zframe_recv(sock);
            crm_msg_t r;
            crm_err_t e;
            if (f && crm_msg_decode(zframe_data(f), zframe_size(f), &r, &e) == 0) {
                if (r.type == CRM_T_dealer_reply && !strcmp(r.corr, m.id)) {
                    char *json = crm_msg_to_json(&r);
                    printf("%s\n", json ? json : "{}");
                    free(json);
                    rc = r.body.dealer_reply.ok ? S_EXIT_OK : S_EXIT_NO;
                }
                crm_msg_clear(&r);
            }
            zframe_destroy(&f);
        }
        zpoller_destroy(&poller);
        zsock_destroy(&sock);
        if (rc != S_EXIT_NOANSWER)
            break;
        crm_warn("dealer.no_answer", "dealer=%s try=%lld", d->dealer, (long long) t + 1);
    }
    if (rc == S_EXIT_NOANSWER)
        fprintf(stderr, "crm-dealer: no answer from %s\n", crm_opt(s_opts, "endpoint"));
done:
    msgpack_sbuffer_destroy(&buf);
    crm_msg_clear(&m);
    return rc;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    /* --once takes no value; crm_config's options all do, so it is taken
       out here and set as "once=1". */
    bool once = false;
    int n = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--once"))
            once = true;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    argv[argc] = NULL;
    int npos = 0;
    int prc = crm_config_parse(s_opts, argc, argv, "crm-dealer", s_summary, &npos);
    if (prc != 0)
        return prc > 0 ? S_EXIT_OK : S_EXIT_USAGE;
    crm_log_init("dealer", crm_opt(s_opts, "log-level"));
    once = once || !strcmp(crm_opt(s_opts, "once"), "1");

    s_dealer_t d = {.once = once};
    d.dealer = crm_opt(s_opts, "dealer");
    const char *cert = crm_opt(s_opts, "cert"), *server = crm_opt(s_opts, "server-cert");
    bool status = npos >= 1 && !strcmp(argv[1], "status");
    if (!d.dealer || !cert || !server || (!status && !crm_opt(s_opts, "state")) ||
        (npos != 0 && !(status && npos == 3))) {
        fprintf(stderr, "crm-dealer: --dealer, --cert, --server-cert and (to follow the stream) "
                        "--state are needed; try --help\n");
        return S_EXIT_USAGE;
    }
    if (crm_opt_i64(s_opts, "timeout-ms", 1, 3600000, &d.timeout_ms) != 0 ||
        crm_opt_i64(s_opts, "tries", 1, 100, &d.tries) != 0 ||
        crm_opt_i64(s_opts, "poll-ms", 100, 86400000, &d.poll_ms) != 0)
        return S_EXIT_USAGE;
    snprintf(d.stream, sizeof d.stream, "dealer.%s", d.dealer);
    snprintf(d.topic, sizeof d.topic, "dealer.%s:", d.dealer);
    d.state_file = crm_opt(s_opts, "state");
    d.exec = crm_opt(s_opts, "exec");
    const char *sync = crm_opt(s_opts, "sync");
    if (strcmp(sync, "each") && strcmp(sync, "batch")) {
        fprintf(stderr, "crm-dealer: --sync is each or batch\n");
        return S_EXIT_USAGE;
    }
    d.sync_batch = !strcmp(sync, "batch");

    d.cert = zcert_load(cert);
    static const byte zero[32] = {0};
    if (!d.cert || !memcmp(zcert_secret_key(d.cert), zero, sizeof zero)) {
        fprintf(stderr, "crm-dealer: %s is not a secret certificate\n", cert);
        zcert_destroy(&d.cert);
        return S_EXIT_NO;
    }
    zcert_t *sc = zcert_load(server);
    if (!sc) {
        fprintf(stderr, "crm-dealer: cannot read the gateway's certificate %s\n", server);
        zcert_destroy(&d.cert);
        return S_EXIT_NO;
    }
    snprintf(d.server_key, sizeof d.server_key, "%s", zcert_public_txt(sc));
    zcert_destroy(&sc);

    /* Our own handlers: the current dispatch is finished, the state written,
       then the loop ends. */
    zsys_handler_set(NULL);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = status ? s_status(&d, argv[2], argv[3]) : s_run(&d);
    zcert_destroy(&d.cert);
    return rc;
}
