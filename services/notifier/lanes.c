/*  Lanes: the threads that do the slow I/O, so the loop never waits on a
 *  gateway. Each lane is a CZMQ actor with its own connection (a CURL
 *  handle kept alive between sends) running one channel's send; the loop
 *  hands it one job at a time over the actor's pipe and gets the job back
 *  with its outcome. Jobs wait in a queue per channel while every lane of
 *  the channel is busy; they were recorded as "sending" before they queued.
 *  A channel takes at most --lane-queue jobs per lane at a time (one sent,
 *  the others waiting), so what is recorded as "sending" leaves within a
 *  few sends' time (the window after a crash stays small, quiet hours and
 *  not_after are never overtaken by a long queue) and a slow channel never
 *  takes the room of the others.
 */
#include <stdlib.h>
#include <string.h>

#include "notifier.h"

struct ntf_lane_t {
    zactor_t *actor;
    const ntf_channel_t *ch;
    const ntf_lane_cfg_t *cfg;
    ntf_job_t *job; /* the one it is working on */
    crm_service_t *svc;
};

static void s_lane(zsock_t *pipe, void *arg)
{
    ntf_lane_t *l = arg;
    void *st = l->ch->open(l->cfg);
    zsock_signal(pipe, 0);
    while (!zsys_interrupted) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv(pipe, "sp", &cmd, &ptr) != 0)
            break;
        bool term = !cmd || !strcmp(cmd, "$TERM");
        free(cmd);
        if (term)
            break;
        ntf_job_t *job = ptr;
        if (!st) {
            job->outcome = NTF_TEMP;
            snprintf(job->message, sizeof job->message, "the lane could not open its connection");
        } else
            l->ch->send(st, l->cfg, job);
        if (zsock_send(pipe, "sp", "DONE", job) != 0)
            break;
    }
    if (st)
        l->ch->close(st);
}

static void s_feed(crm_service_t *svc);

/* Waits up to `timeout_ms` for `sock` to have a message: 0, or -1. */
static int s_wait_readable(void *sock, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
    return zmq_poll(&item, 1, timeout_ms) == 1 ? 0 : -1;
}

/* Hold list: every notification a job of this process holds (its job:
   a job lets go of its own entry only). */
static void s_hold(ntf_t *n, ntf_job_t *job, bool on)
{
    if (!n->held && !(n->held = zhash_new()))
        return;
    if (on)
        zhash_update(n->held, job->id, job);
    else if (zhash_lookup(n->held, job->id) == job)
        zhash_delete(n->held, job->id);
}

bool ntf_held(const ntf_t *n, const char *id) { return n->held && zhash_lookup(n->held, id); }

/* Commits outcomes; the jobs are freed once committed, else kept for the
   next try (ntf_tick_unsaved). */
static void s_commit_outcomes(crm_service_t *svc, ntf_job_t **done, size_t k)
{
    ntf_t *n = ntf_of(svc);
    if (ntf_outcome(svc, done, k) == 0) {
        for (size_t i = 0; i < k; i++) {
            s_hold(n, done[i], false);
            ntf_job_free(done[i]);
        }
        return;
    }
    for (size_t i = 0; i < k; i++) {
        done[i]->next = n->unsaved;
        n->unsaved = done[i];
    }
}

/* A lane's job back: a pull applied, a send's outcome collected. */
static void s_back(crm_service_t *svc, ntf_lane_t *l, ntf_job_t *j, ntf_job_t **done, size_t *k)
{
    ntf_t *n = ntf_of(svc);
    l->job = NULL;
    if (!j)
        return;
    if (j->pull) {
        n->pulling = false;
        if (j->outcome == NTF_OK && j->text)
            ntf_apply_pull(svc, j->text, strlen(j->text), j->to);
        else
            crm_warn("sms.pull_failed", "code=%s why=\"%s\"", j->code_out, j->message);
        ntf_job_free(j);
        return;
    }
    if (j->channel >= 0 && j->channel < CRM_CHANNEL_COUNT)
        n->inflight[j->channel]--;
    done[(*k)++] = j;
}

/* The jobs the lanes have done: what is ready now (until 0), or what comes
   before `until` (mono ms, a stop); their outcomes in one commit. */
static void s_collect(crm_service_t *svc, int64_t until)
{
    ntf_t *n = ntf_of(svc);
    ntf_job_t *done[256];
    size_t k = 0;
    for (int i = 0; i < n->nlanes && k < 256; i++) {
        ntf_lane_t *l = &n->lanes[i];
        while (l->job && k < 256) {
            /* past the deadline every lane is still looked at, without waiting */
            int64_t left = until ? until - crm_mono_ms() : 0;
            if (until ? s_wait_readable(zactor_sock(l->actor), left > 0 ? (int) left : 0) != 0
                      : !(zsock_events(zactor_sock(l->actor)) & ZMQ_POLLIN))
                break;
            char *cmd = NULL;
            void *ptr = NULL;
            if (zsock_recv(zactor_sock(l->actor), "sp", &cmd, &ptr) != 0)
                break;
            free(cmd);
            s_back(svc, l, ptr, done, &k);
        }
    }
    if (k)
        s_commit_outcomes(svc, done, k);
}

/* Outcomes back from the lanes: everything ready now, in one commit. */
static int s_on_lane(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    crm_service_t *svc = arg;
    s_collect(svc, 0);
    s_feed(svc);
    return 0;
}

static bool s_give(ntf_lane_t *l, ntf_job_t *job)
{
    if (zsock_send(zactor_sock(l->actor), "sp", "JOB", job) != 0)
        return false;
    l->job = job;
    return true;
}

/* Waiting jobs to idle lanes. */
static void s_feed(crm_service_t *svc)
{
    ntf_t *n = ntf_of(svc);
    if (n->stopping)
        return;
    for (int i = 0; i < n->nlanes; i++) {
        ntf_lane_t *l = &n->lanes[i];
        if (l->job || l == n->puller)
            continue;
        int ch = l->ch->channel;
        ntf_job_t *j = n->waiting[ch];
        if (!j)
            continue;
        n->waiting[ch] = j->next;
        if (!n->waiting[ch])
            n->waiting_tail[ch] = &n->waiting[ch];
        j->next = NULL;
        if (!s_give(l, j)) {
            j->next = n->waiting[ch];
            n->waiting[ch] = j;
            if (!j->next)
                n->waiting_tail[ch] = &j->next;
        }
    }
}

void ntf_lanes_submit(crm_service_t *svc, ntf_job_t *job)
{
    ntf_t *n = ntf_of(svc);
    if (job->channel < 0 || job->channel >= CRM_CHANNEL_COUNT || job->channel == CRM_CHANNEL_CALL) {
        ntf_job_free(job);
        return;
    }
    if (!n->waiting_tail[job->channel])
        n->waiting_tail[job->channel] = &n->waiting[job->channel];
    job->next = NULL;
    *n->waiting_tail[job->channel] = job;
    n->waiting_tail[job->channel] = &job->next;
    n->inflight[job->channel]++;
    s_hold(n, job, true);
    if (n->started)
        s_feed(svc);
}

int64_t ntf_lanes_free_ch(const ntf_t *n, int ch)
{
    if (ch < 0 || ch >= CRM_CHANNEL_COUNT)
        return 0;
    if (ch == CRM_CHANNEL_CALL)
        return INT32_MAX; /* no I/O */
    int64_t total = 0;
    for (int c = 0; c < CRM_CHANNEL_COUNT; c++)
        total += n->inflight[c];
    int64_t room = (int64_t) n->nlanes_ch[ch] * n->per_lane - n->inflight[ch], all = n->max_inflight - total;
    return room < all ? room : all;
}


static int s_add(crm_service_t *svc, const ntf_channel_t *ch, int count)
{
    ntf_t *n = ntf_of(svc);
    for (int i = 0; i < count; i++) {
        ntf_lane_t *l = &n->lanes[n->nlanes];
        l->ch = ch;
        l->cfg = &n->lane_cfg;
        l->svc = svc;
        if (!(l->actor = zactor_new(s_lane, l))) {
            crm_error("lane.start", "channel=%s lane=%d", ch->name, i);
            return -1;
        }
        n->nlanes++;
        zloop_reader(crm_service_loop(svc), zactor_sock(l->actor), s_on_lane, svc);
    }
    return 0;
}

int ntf_lanes_start(crm_service_t *svc, int sms, int email, int webhook)
{
    ntf_t *n = ntf_of(svc);
    int pull = n->lane_cfg.sms_pull_url[0] ? 1 : 0;
    if (!(n->lanes = calloc((size_t) (sms + email + webhook + pull), sizeof *n->lanes)))
        return -1;
    if (s_add(svc, &ntf_sms_channel, sms) || s_add(svc, &ntf_email_channel, email) ||
        s_add(svc, &ntf_webhook_channel, webhook))
        return -1;
    n->nlanes_ch[CRM_CHANNEL_SMS] = sms;
    n->nlanes_ch[CRM_CHANNEL_EMAIL] = email;
    n->nlanes_ch[CRM_CHANNEL_WEBHOOK] = webhook;
    if (pull) {
        if (s_add(svc, &ntf_sms_channel, 1))
            return -1;
        n->puller = &n->lanes[n->nlanes - 1];
    }
    n->started = true;
    s_feed(svc);
    return 0;
}

/* A clean stop: the sends under way are waited for (each ends within
   --http-timeout-ms) and their outcomes committed; what waited for a lane
   goes back to its timer, never sent and not uncertain. What a lane still
   holds after that stays "sending": the next start looks at it (send.c). */
void ntf_lanes_stop(crm_service_t *svc)
{
    ntf_t *n = ntf_of(svc);
    n->stopping = true;
    ntf_job_t *back = NULL;
    for (int c = 0; c < CRM_CHANNEL_COUNT; c++) {
        while (n->waiting[c]) {
            ntf_job_t *j = n->waiting[c];
            n->waiting[c] = j->next;
            n->inflight[c]--;
            s_hold(n, j, false);
            j->next = back;
            back = j;
        }
        n->waiting_tail[c] = &n->waiting[c];
    }
    if (back)
        ntf_requeue(svc, back);
    /* a send under way ends within its timeout: its outcome is waited for
       (a lane's thread cannot be stopped in the middle of a send anyway) */
    int64_t until = crm_mono_ms() + n->lane_cfg.timeout_ms + 500;
    s_collect(svc, until);
    for (int i = 0; i < n->nlanes; i++) {
        zactor_destroy(&n->lanes[i].actor);
        ntf_job_free(n->lanes[i].job); /* its thread is gone: stays "sending" in Redis */
        n->lanes[i].job = NULL;
    }
    free(n->lanes);
    n->lanes = NULL;
    n->nlanes = 0;
    while (n->unsaved) {
        ntf_job_t *j = n->unsaved;
        n->unsaved = j->next;
        ntf_job_free(j);
    }
    zhash_destroy(&n->held);
}

/* Outcomes whose commit failed (Redis away): tried again. */
void ntf_tick_unsaved(crm_service_t *svc)
{
    ntf_t *n = ntf_of(svc);
    if (!n->unsaved)
        return;
    ntf_job_t *done[256];
    size_t k = 0;
    while (n->unsaved && k < 256) {
        done[k++] = n->unsaved;
        n->unsaved = n->unsaved->next;
    }
    s_commit_outcomes(svc, done, k);
}

void ntf_tick_pull(crm_service_t *svc)
{
    ntf_t *n = ntf_of(svc);
    if (!n->puller || n->pulling || n->stopping || crm_mono_ms() < n->pull_next_mono)
        return;
    redisReply *r = crm_store_cmd(crm_service_store(svc), "GET " CRM_KEY_NOTIFY_SMS_CURSOR);
    if (!r)
        return;
    char cursor[32] = "0";
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof cursor && strspn(r->str, "0123456789") == r->len)
        snprintf(cursor, sizeof cursor, "%s", r->str);
    freeReplyObject(r);
    ntf_job_t *j = ntf_job_new();
    if (!j)
        return;
    j->pull = true;
    j->channel = CRM_CHANNEL_SMS;
    snprintf(j->id, sizeof j->id, "pull");
    j->to = strdup(cursor);
    if (!j->to || !s_give(n->puller, j)) {
        ntf_job_free(j);
        return;
    }
    n->pulling = true;
    n->pull_next_mono = crm_mono_ms() + n->pull_ms;
}
