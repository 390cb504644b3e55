/*  Lanes: the threads that do the slow I/O, so the loop never waits on a
 *  gateway. Each lane is a CZMQ actor with its own connection (a CURL
 *  handle kept alive between sends) running one channel's send; the loop
 *  hands it one job at a time over the actor's pipe and gets the job back
 *  with its outcome. Jobs wait in a queue per channel while every lane of
 *  the channel is busy; they were recorded as "sending" before they queued.
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

/* Outcomes back from the lanes: everything ready now, in one commit. */
static int s_on_lane(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    crm_service_t *svc = arg;
    ntf_t *n = ntf_of(svc);
    ntf_job_t *done[256];
    size_t k = 0;
    for (int i = 0; i < n->nlanes && k < 256; i++) {
        ntf_lane_t *l = &n->lanes[i];
        while (l->job && (zsock_events(zactor_sock(l->actor)) & ZMQ_POLLIN) && k < 256) {
            char *cmd = NULL;
            void *ptr = NULL;
            if (zsock_recv(zactor_sock(l->actor), "sp", &cmd, &ptr) != 0)
                break;
            free(cmd);
            ntf_job_t *j = ptr;
            l->job = NULL;
            if (!j)
                continue;
            if (j->pull) {
                n->pulling = false;
                if (j->outcome == NTF_OK && j->text)
                    ntf_apply_pull(svc, j->text, strlen(j->text));
                else
                    crm_warn("sms.pull_failed", "code=%s why=\"%s\"", j->code_out, j->message);
                ntf_job_free(j);
                continue;
            }
            n->inflight--;
            done[k++] = j;
        }
    }
    if (k)
        ntf_outcome(svc, done, k);
    for (size_t i = 0; i < k; i++)
        ntf_job_free(done[i]);
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
    n->inflight++;
    if (n->started)
        s_feed(svc);
}

int64_t ntf_lanes_free(const ntf_t *n) { return n->max_inflight - n->inflight; }

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
    if (pull) {
        if (s_add(svc, &ntf_sms_channel, 1))
            return -1;
        n->puller = &n->lanes[n->nlanes - 1];
    }
    n->started = true;
    s_feed(svc);
    return 0;
}

void ntf_lanes_stop(ntf_t *n)
{
    /* the jobs lanes hold stay "sending" in Redis: the next start looks
       at them again (send.c) */
    for (int i = 0; i < n->nlanes; i++)
        zactor_destroy(&n->lanes[i].actor);
    free(n->lanes);
    n->lanes = NULL;
    n->nlanes = 0;
    for (int c = 0; c < CRM_CHANNEL_COUNT; c++)
        while (n->waiting[c]) {
            ntf_job_t *j = n->waiting[c];
            n->waiting[c] = j->next;
            ntf_job_free(j);
        }
}

void ntf_tick_pull(crm_service_t *svc)
{
    ntf_t *n = ntf_of(svc);
    if (!n->puller || n->pulling || crm_mono_ms() < n->pull_next_mono)
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
