/*  crm-intake: takes leads from websites, auto shows and partner feeds.
 *
 *  A submitter sends lead.submit on the lead endpoint with its own
 *  submission id and gets lead.accepted or lead.rejected back only once the
 *  outcome is committed in Redis. The same submission id sent again gets the
 *  first answer back and creates nothing. A lead whose normalised mobile or
 *  ID number matches a known customer is attached to that customer; a merge
 *  never blanks a known field and keeps every change in the customer's
 *  history. A rejected lead, and a document no converter could read, is
 *  kept in quarantine. With CRM_INTAKE_CERT_DIR set, lead sources must
 *  authenticate with CURVE certificates, as dealers do on the gateway.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_service.h"
#include "intake.h"

static crm_curve_t *s_curve;

static crm_handled_t intake_on_cert_issue(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);
static crm_handled_t intake_on_cert_revoke(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);

static const crm_request_t intake_lead_requests[] = {
    {"lead.submit", NULL, CRM_REQ_WRITE_BATCH, intake_submit_key, "submission", "submission-ttl-days",
     intake_on_submit, false},
    {"lead.unconvertible", intake_on_unconvertible, CRM_REQ_WRITE, intake_document_key, "document",
     "submission-ttl-days", NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

static const crm_endpoint_def_t intake_leads = {"leads", intake_lead_requests, intake_error, intake_prepare,
                                                intake_kept};

static const crm_request_t intake_control_requests[] = {
    {"cert.issue", intake_on_cert_issue, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {"cert.revoke", intake_on_cert_revoke, CRM_REQ_WRITE, NULL, NULL, NULL, NULL, false},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, false},
};

/* Lead sources' certificates, when the deployment asks for them. */
static crm_handled_t intake_on_cert_issue(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    (void) svc;
    return crm_req_cert_issue(req, tx, s_curve);
}

static crm_handled_t intake_on_cert_revoke(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    (void) svc;
    return crm_req_cert_revoke(req, tx, s_curve);
}

static void intake_reload(crm_service_t *svc)
{
    (void) svc;
    if (s_curve)
        crm_curve_reload(s_curve, false, NULL);
}

static int intake_start(crm_service_t *svc)
{
    const char *dir = crm_service_opt(svc, "cert-dir");
    if (dir && *dir) {
        s_curve = crm_curve_new(dir, crm_service_opt(svc, "server-cert"), "source-id", "source");
        if (!s_curve)
            return -1;
    }
    return crm_service_endpoint(svc, &intake_leads, crm_service_opt(svc, "endpoint"), s_curve) ? 0 : -1;
}

static void intake_stop(crm_service_t *svc)
{
    (void) svc;
    crm_curve_destroy(&s_curve);
}

static const crm_opt_t intake_opts[] = {
    {"endpoint", "CRM_INTAKE_ENDPOINT", "tcp://127.0.0.1:7201",
     "ZeroMQ ROUTER endpoint where lead sources submit leads", NULL},
    {"submission-ttl-days", "CRM_SUBMISSION_TTL_DAYS", "90",
     "How long the answer to a submission id is kept (a resend within it changes nothing)", NULL},
    {"cert-dir", "CRM_INTAKE_CERT_DIR", "",
     "Lead sources' public certificates; when set, the lead endpoint takes CURVE clients from it only", NULL},
    {"server-cert", "CRM_INTAKE_SERVER_CERT", "var/intake.cert",
     "crm-intake's certificate when CURVE is on (secret in <file>_secret); made on first start", NULL},
    CRM_OPT_END,
};

static const crm_tick_t intake_ticks[] = {
    {"certificates", 1000, intake_reload},
    {NULL, 0, NULL},
};

static const crm_service_def_t intake_def = {
    .name = "intake",
    .summary = "Lead intake: acknowledged, deduplicated, validated leads.",
    .pub_default = "tcp://127.0.0.1:7101",
    .control_default = "tcp://127.0.0.1:7211",
    .opts = intake_opts,
    .requests = intake_control_requests,
    .ticks = intake_ticks,
    .on_start = intake_start,
    .on_stop = intake_stop,
};

int main(int argc, char **argv) { return crm_service_main(&intake_def, argc, argv); }
