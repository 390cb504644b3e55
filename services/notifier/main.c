/*  crm-notifier: SMS, e-mail, call tasks and dealer webhooks, on consent,
 *  within quiet hours and caps, at most once per notification id
 *  (notifier.h; what is guaranteed per channel: tools/NOTIFY.md).
 */
#include <dirent.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.h"

#ifndef CRM_TEMPLATES_DIR
#define CRM_TEMPLATES_DIR "/usr/share/autocrm/templates"
#endif

static ntf_t s_state;

ntf_t *ntf_of(crm_service_t *svc)
{
    (void) svc;
    return &s_state;
}

static const crm_handler_t notifier_handlers[] = {
    /* batched: a wake-up's requests are read at once (ntf_prefetch) and
       share one commit */
    {"notify.request", ntf_on_request, true},
    {"testdrive.escalated", ntf_on_escalated, false},
    {"timers.fired", ntf_on_fired, false},
    {NULL, NULL, false},
};

static const crm_request_t notifier_requests[] = {
    {"notify.retry", ntf_req_retry, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"consent.set", ntf_req_consent, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"webhook.set", ntf_req_webhook, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

static const crm_tick_t notifier_ticks[] = {
    {"pull", 100, ntf_tick_pull},
    /* outcomes whose commit failed (Redis away), again */
    {"unsaved", 500, ntf_tick_unsaved},
    /* "sending" that no job of this process holds (a decision whose commit
       was not known to apply): decided again */
    {"sweep", 10000, ntf_tick_sweep},
    {NULL, 0, NULL},
};

static const char *const notifier_due[] = {"notify_sms", "notify_email", "notify_call", "notify_webhook", NULL};

const char *ntf_set(int channel)
{
    switch (channel) {
    case CRM_CHANNEL_EMAIL:
        return "notify_email";
    case CRM_CHANNEL_CALL:
        return "notify_call";
    case CRM_CHANNEL_WEBHOOK:
        return "notify_webhook";
    default:
        return "notify_sms";
    }
}

int ntf_set_channel(const char *set)
{
    if (!set || strncmp(set, "notify_", 7))
        return -1;
    int c = crm_channel_parse(set + 7);
    return c >= 0 && !strcmp(ntf_set(c), set) ? c : -1;
}

/* No more notifications of a channel are taken from their timers than
   there is room for in its lanes: the window after a crash stays small,
   none is taken only to be put back, and a full channel never holds up the
   others (each has its own set). */
static int64_t s_due_limit(crm_service_t *svc, const char *set)
{
    return ntf_lanes_free_ch(ntf_of(svc), ntf_set_channel(set));
}

static const crm_opt_t notifier_opts[] = {
    {"templates", "CRM_NOTIFY_TEMPLATES", CRM_TEMPLATES_DIR,
     "Directory of the message templates (NAME.CHANNEL.txt, UTF-8); every one is checked at start", NULL},
    {"smtp-url", "CRM_SMTP_URL", "smtp://127.0.0.1:25", "SMTP server for e-mail: smtp://host:port or smtps://", NULL},
    {"smtp-user", "CRM_SMTP_USER", "", "SMTP user (with CRM_SMTP_PASS); empty: none", NULL},
    {"smtp-pass", "CRM_SMTP_PASS", "", "SMTP password (prefer the environment to the command line)", NULL},
    {"mail-from", "CRM_MAIL_FROM", "crm@autocrm.example", "Sender address of e-mail", NULL},
    {"mail-from-name", "CRM_MAIL_FROM_NAME", "客户关系部", "Sender name of e-mail (UTF-8)", NULL},
    {"unsubscribe-url", "CRM_UNSUBSCRIBE_URL", "",
     "https:// one-click unsubscribe page for marketing mail (RFC 8058; ?n=<N>&t=<token> is added); "
     "marketing mail is refused without it",
     NULL},
    {"unsubscribe-key", "CRM_UNSUBSCRIBE_KEY", "", "Secret the unsubscribe tokens are made with", NULL},
    {"sms-url", "CRM_SMS_URL", "http://127.0.0.1:8090/sms/send", "The SMS gateway's SendSms (tools/NOTIFY.md)", NULL},
    {"sms-query-url", "CRM_SMS_QUERY_URL", "",
     "The gateway's QuerySendDetails, to check before sending again after a lost answer; empty: none", NULL},
    {"sms-pull-url", "CRM_SMS_PULL_URL", "", "Where delivery receipts and replies are pulled from; empty: none", NULL},
    {"sms-key", "CRM_SMS_KEY", "", "AccessKeyId sent to the gateway; empty: none", NULL},
    {"pull-ms", "CRM_SMS_PULL_MS", "1000", "How often receipts and replies are pulled", NULL},
    {"crm-email", "CRM_DEPT_EMAIL", "", "The CRM department's address (recipient crm, escalations)", NULL},
    {"crm-mobile", "CRM_DEPT_MOBILE", "", "The CRM department's mobile (recipient crm on sms)", NULL},
    {"quiet-transactional", "CRM_QUIET_TRANSACTIONAL", "21:00-08:00",
     "Quiet hours of transactional SMS and calls, China time (HH:MM-HH:MM or none)", NULL},
    {"quiet-marketing", "CRM_QUIET_MARKETING", "21:00-08:00", "Quiet hours of marketing SMS and calls", NULL},
    {"quiet-critical", "CRM_QUIET_CRITICAL", "none",
     "Quiet hours of critical SMS and calls (none: critical messages go at any hour)", NULL},
    {"quiet-email", "CRM_QUIET_EMAIL", "none", "Quiet hours of e-mail, every class", NULL},
    {"cap-sms", "CRM_CAP_SMS", "5", "SMS per customer per China day, every class (0: no cap)", NULL},
    {"cap-email", "CRM_CAP_EMAIL", "5", "E-mails per customer per China day (0: no cap)", NULL},
    {"cap-call", "CRM_CAP_CALL", "2", "Call tasks per customer per China day (0: no cap)", NULL},
    {"max-age-transactional-ms", "CRM_MAX_AGE_TRANSACTIONAL_MS", "172800000",
     "A transactional notification without not_after is dropped this long after it was asked (48 h)", NULL},
    {"max-age-marketing-ms", "CRM_MAX_AGE_MARKETING_MS", "259200000", "The same for marketing (72 h)", NULL},
    {"max-age-critical-ms", "CRM_MAX_AGE_CRITICAL_MS", "43200000", "The same for critical (12 h)", NULL},
    {"retry-base-ms", "CRM_RETRY_BASE_MS", "5000", "First retry after a passing failure; doubles each time", NULL},
    {"retry-max-ms", "CRM_RETRY_MAX_MS", "3600000", "Longest wait between retries", NULL},
    {"max-attempts", "CRM_MAX_ATTEMPTS", "8", "Attempts before a notification goes to the dead-letter stream", NULL},
    {"webhook-disable-after-ms", "CRM_WEBHOOK_DISABLE_AFTER_MS", "259200000",
     "A dealer endpoint failing without a success for this long is disabled and its contact told (72 h)", NULL},
    {"rotate-ms", "CRM_WEBHOOK_ROTATE_MS", "86400000",
     "After a secret rotation the old secret signs too for this long (24 h)", NULL},
    {"http-timeout-ms", "CRM_NOTIFY_TIMEOUT_MS", "15000", "Timeout of one send (SMTP, gateway, webhook)", NULL},
    {"sms-lanes", "CRM_SMS_LANES", "4", "Connections to the SMS gateway", NULL},
    {"email-lanes", "CRM_EMAIL_LANES", "2", "Connections to the SMTP server", NULL},
    {"webhook-lanes", "CRM_WEBHOOK_LANES", "8", "Connections to dealers' endpoints", NULL},
    {"lane-queue", "CRM_NOTIFY_LANE_QUEUE", "4",
     "Notifications a channel takes per lane at a time (one being sent, the others waiting for it)", NULL},
    {"max-inflight", "CRM_NOTIFY_MAX_INFLIGHT", "256",
     "Notifications recorded as being sent at most at once (the window after a crash)", NULL},
    {"uncertain", "CRM_NOTIFY_UNCERTAIN", "resend",
     "After a crash, what was being sent: resend (same id; sms looked up first when it can be) or hold "
     "(dead letter, for a person to decide)",
     NULL},
    CRM_OPT_END};

static int s_cmp_name(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

static int s_load_templates(ntf_t *n, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "crm-notifier: --templates: cannot open %s\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t cnt = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt") || e->d_name[0] == '.')
            continue;
        char **nn = realloc(names, (cnt + 1) * sizeof *names);
        if (!nn || !(nn[cnt] = strdup(e->d_name))) {
            free(nn ? nn : names);
            closedir(d);
            return -1;
        }
        names = nn;
        cnt++;
    }
    closedir(d);
    qsort(names, cnt, sizeof *names, s_cmp_name);
    int rc = 0;
    n->templates = calloc(cnt ? cnt : 1, sizeof *n->templates);
    for (size_t i = 0; i < cnt; i++) {
        char path[1024], err[300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        crm_template_t *t = n->templates ? crm_template_load(path, err, sizeof err) : NULL;
        if (!t) {
            fprintf(stderr, "crm-notifier: template %s\n", err);
            rc = -1;
        } else if (ntf_template(n, crm_template_name(t), crm_template_channel(t))) {
            fprintf(stderr, "crm-notifier: template %s: a second one for %s\n", path,
                    crm_channel_name(crm_template_channel(t)));
            crm_template_destroy(&t);
            rc = -1;
        } else
            n->templates[n->ntemplates++] = t;
        free(names[i]);
    }
    free(names);
    if (rc == 0)
        crm_info("notify.templates", "dir=%s count=%zu", dir, n->ntemplates);
    return rc;
}

static int s_quiet(crm_service_t *svc, const char *opt, crm_quiet_t *q)
{
    if (crm_quiet_parse(crm_service_opt(svc, opt), q) != 0) {
        fprintf(stderr, "crm-notifier: --%s: HH:MM-HH:MM (China time) or none\n", opt);
        return -1;
    }
    return 0;
}

static void s_copy(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

static int notifier_start(crm_service_t *svc)
{
    ntf_t *n = &s_state;
    memset(n, 0, sizeof *n);
    srand((unsigned) (crm_mono_us() ^ (int64_t) getpid())); /* the retries' jitter */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "crm-notifier: libcurl does not start\n");
        return -1;
    }
    if (s_load_templates(n, crm_service_opt(svc, "templates")) != 0)
        return -1;
    crm_notify_config_default(&n->rules);
    crm_quiet_t qt, qm, qc, qe;
    if (s_quiet(svc, "quiet-transactional", &qt) || s_quiet(svc, "quiet-marketing", &qm) ||
        s_quiet(svc, "quiet-critical", &qc) || s_quiet(svc, "quiet-email", &qe))
        return -1;
    const crm_quiet_t *per[CRM_CLASS_COUNT] = {&qt, &qm, &qc};
    for (int c = 0; c < CRM_CLASS_COUNT; c++) {
        n->rules.quiet[c][CRM_CHANNEL_SMS] = *per[c];
        n->rules.quiet[c][CRM_CHANNEL_CALL] = *per[c];
        n->rules.quiet[c][CRM_CHANNEL_EMAIL] = qe;
        n->rules.quiet[c][CRM_CHANNEL_WEBHOOK] = CRM_QUIET_NONE;
    }
    n->rules.critical_bypass = false; /* critical's own window above says it */
    int64_t v[20];
    if (crm_service_opt_i64(svc, "cap-sms", 0, 1000, &v[0]) || crm_service_opt_i64(svc, "cap-email", 0, 1000, &v[1]) ||
        crm_service_opt_i64(svc, "cap-call", 0, 1000, &v[2]) ||
        crm_service_opt_i64(svc, "max-age-transactional-ms", 1000, 90LL * 86400000, &v[3]) ||
        crm_service_opt_i64(svc, "max-age-marketing-ms", 1000, 90LL * 86400000, &v[4]) ||
        crm_service_opt_i64(svc, "max-age-critical-ms", 1000, 90LL * 86400000, &v[5]) ||
        crm_service_opt_i64(svc, "retry-base-ms", 1, 86400000, &v[6]) ||
        crm_service_opt_i64(svc, "retry-max-ms", 1, 7LL * 86400000, &v[7]) ||
        crm_service_opt_i64(svc, "max-attempts", 1, 100, &v[8]) ||
        crm_service_opt_i64(svc, "webhook-disable-after-ms", 0, 90LL * 86400000, &v[9]) ||
        crm_service_opt_i64(svc, "rotate-ms", 0, 90LL * 86400000, &v[10]) ||
        crm_service_opt_i64(svc, "http-timeout-ms", 100, 600000, &v[11]) ||
        crm_service_opt_i64(svc, "sms-lanes", 1, 64, &v[12]) || crm_service_opt_i64(svc, "email-lanes", 1, 64, &v[13]) ||
        crm_service_opt_i64(svc, "webhook-lanes", 1, 64, &v[14]) ||
        crm_service_opt_i64(svc, "max-inflight", 1, 100000, &v[15]) ||
        crm_service_opt_i64(svc, "pull-ms", 10, 3600000, &v[16]) ||
        crm_service_opt_i64(svc, "lane-queue", 1, 1000000, &v[17]))
        return -1;
    n->per_lane = v[17];
    n->rules.cap[CRM_CHANNEL_SMS] = (int) v[0];
    n->rules.cap[CRM_CHANNEL_EMAIL] = (int) v[1];
    n->rules.cap[CRM_CHANNEL_CALL] = (int) v[2];
    n->rules.cap[CRM_CHANNEL_WEBHOOK] = 0;
    n->max_age_ms[CRM_CLASS_TRANSACTIONAL] = v[3];
    n->max_age_ms[CRM_CLASS_MARKETING] = v[4];
    n->max_age_ms[CRM_CLASS_CRITICAL] = v[5];
    n->retry_base_ms = v[6], n->retry_max_ms = v[7], n->max_attempts = v[8];
    n->disable_after_ms = v[9], n->rotate_ms = v[10];
    n->max_inflight = v[15];
    n->pull_ms = v[16];
    const char *unc = crm_service_opt(svc, "uncertain");
    if (strcmp(unc, "resend") && strcmp(unc, "hold")) {
        fprintf(stderr, "crm-notifier: --uncertain: resend or hold\n");
        return -1;
    }
    s_copy(n->uncertain, sizeof n->uncertain, unc);
    ntf_lane_cfg_t *c = &n->lane_cfg;
    s_copy(c->smtp_url, sizeof c->smtp_url, crm_service_opt(svc, "smtp-url"));
    s_copy(c->smtp_user, sizeof c->smtp_user, crm_service_opt(svc, "smtp-user"));
    s_copy(c->smtp_pass, sizeof c->smtp_pass, crm_service_opt(svc, "smtp-pass"));
    s_copy(c->mail_from, sizeof c->mail_from, crm_service_opt(svc, "mail-from"));
    s_copy(c->mail_from_name, sizeof c->mail_from_name, crm_service_opt(svc, "mail-from-name"));
    s_copy(c->unsubscribe_url, sizeof c->unsubscribe_url, crm_service_opt(svc, "unsubscribe-url"));
    s_copy(c->unsubscribe_key, sizeof c->unsubscribe_key, crm_service_opt(svc, "unsubscribe-key"));
    s_copy(c->sms_url, sizeof c->sms_url, crm_service_opt(svc, "sms-url"));
    s_copy(c->sms_query_url, sizeof c->sms_query_url, crm_service_opt(svc, "sms-query-url"));
    s_copy(c->sms_pull_url, sizeof c->sms_pull_url, crm_service_opt(svc, "sms-pull-url"));
    s_copy(c->sms_key, sizeof c->sms_key, crm_service_opt(svc, "sms-key"));
    c->timeout_ms = (int) v[11];
    if (c->unsubscribe_url[0] && strncmp(c->unsubscribe_url, "https://", 8)) {
        fprintf(stderr, "crm-notifier: --unsubscribe-url: an https:// URI (RFC 8058)\n");
        return -1;
    }
    if (c->unsubscribe_url[0] && strlen(c->unsubscribe_key) < 16) {
        fprintf(stderr, "crm-notifier: --unsubscribe-url needs --unsubscribe-key (16 characters or more): the "
                        "links' tokens are made with it, so that nobody can unsubscribe someone else\n");
        return -1;
    }
    s_copy(n->crm_email, sizeof n->crm_email, crm_service_opt(svc, "crm-email"));
    s_copy(n->crm_mobile, sizeof n->crm_mobile, crm_service_opt(svc, "crm-mobile"));
    if (!(n->reads = crm_tx_new(crm_service_name(svc), 0)) || !(n->wtx = crm_tx_new(crm_service_name(svc), strtoll(crm_service_opt(svc, "stream-maxlen"), NULL, 10))))
        return -1;
    if (ntf_lanes_start(svc, (int) v[12], (int) v[13], (int) v[14]) != 0)
        return -1;
    if (ntf_reconcile(svc, false) != 0) {
        fprintf(stderr, "crm-notifier: cannot read what was being sent (Redis)\n");
        return -1;
    }
    return 0;
}

static void notifier_stop(crm_service_t *svc)
{
    ntf_t *n = ntf_of(svc);
    ntf_lanes_stop(svc);
    ntf_intake_free();
    for (size_t i = 0; i < n->ntemplates; i++)
        crm_template_destroy(&n->templates[i]);
    free(n->templates);
    crm_tx_destroy(&n->reads);
    crm_tx_destroy(&n->wtx);
    curl_global_cleanup();
}

static const crm_service_def_t notifier_def = {
    .name = "notifier",
    .summary = "Notifier: SMS, e-mail, call tasks and dealer webhooks, on consent, within quiet hours, at most once.",
    .pub_default = "tcp://127.0.0.1:7105",
    .control_default = "tcp://127.0.0.1:7215",
    .handlers = notifier_handlers,
    .requests = notifier_requests,
    .ticks = notifier_ticks,
    .due_sets = notifier_due,
    .opts = notifier_opts,
    .on_start = notifier_start,
    .on_stop = notifier_stop,
    .prefetch = ntf_prefetch,
    .due_limit = s_due_limit,
    .due_every_ms = 10,
};

int main(int argc, char **argv) { return crm_service_main(&notifier_def, argc, argv); }
