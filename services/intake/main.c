/*  crm-intake: takes leads from websites, auto shows and partner feeds.
 *
 *  A submitter sends lead.submit on the ROUTER endpoint with its own
 *  submission id and gets lead.accepted or lead.rejected back only once the
 *  outcome is committed in Redis. The same submission id sent again gets the
 *  first answer back, byte for byte, and creates nothing. A lead whose
 *  normalised mobile or ID number matches a known customer is attached to
 *  that customer; a merge never blanks a known field and keeps every change
 *  in the customer's history. A rejected lead is kept in quarantine.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_lead.h"
#include "crm_service.h"
#include "intake.h"

static int intake_on_request(zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    crm_service_t *svc = arg;
    /* What is waiting is handled together: one pipeline of reads and one
       transaction for the whole batch. A bounded batch per wake-up, so
       timers and heartbeats still run. */
    zmsg_t *msgs[INTAKE_BATCH_MAX];
    zframe_t *payloads[INTAKE_BATCH_MAX];
    intake_req_t reqs[INTAKE_BATCH_MAX];
    int n = 0;
    while (n < INTAKE_BATCH_MAX) {
        zmsg_t *req = zmsg_recv_nowait(router);
        if (!req)
            break;
        zframe_t *payload = zmsg_last(req);
        if (!payload || zmsg_size(req) < 2) {
            zmsg_destroy(&req);
            continue;
        }
        zmsg_remove(req, payload);
        msgs[n] = req;
        payloads[n] = payload;
        reqs[n].frame = zframe_data(payload);
        reqs[n].len = zframe_size(payload);
        msgpack_sbuffer_init(&reqs[n].answer);
        n++;
    }
    if (n == 0)
        return 0;
    intake_handle(svc, reqs, n);
    for (int i = 0; i < n; i++) {
        if (reqs[i].answer.size)
            zmsg_addmem(msgs[i], reqs[i].answer.data, reqs[i].answer.size);
        msgpack_sbuffer_destroy(&reqs[i].answer);
        zframe_destroy(&payloads[i]);
        /* The envelope (identity, empty delimiter) goes back as it came. */
        if (zmsg_send(&msgs[i], router) != 0)
            zmsg_destroy(&msgs[i]);
    }
    return 0;
}

static zsock_t *s_router;

static int intake_start(crm_service_t *svc)
{
    const char *endpoint = crm_service_opt(svc, "endpoint");
    s_router = zsock_new(ZMQ_ROUTER);
    if (!s_router)
        return -1;
    zsock_set_maxmsgsize(s_router, CRM_FRAME_MAX + 4096);
    zsock_set_router_mandatory(s_router, 0);
    if (zsock_bind(s_router, "%s", endpoint) < 0) {
        crm_error("intake.bind_failed", "endpoint=%s error=\"%s\"", endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    crm_info("intake.listening", "endpoint=%s", endpoint);
    return zloop_reader(crm_service_loop(svc), s_router, intake_on_request, svc);
}

static void intake_stop(crm_service_t *svc)
{
    zloop_reader_end(crm_service_loop(svc), s_router);
    zsock_destroy(&s_router);
}

static const crm_opt_t intake_opts[] = {
    {"endpoint", "CRM_INTAKE_ENDPOINT", "tcp://127.0.0.1:7201",
     "ZeroMQ ROUTER endpoint where lead sources submit leads", NULL},
    CRM_OPT_END,
};

static const crm_service_def_t intake_def = {
    .name = "intake",
    .summary = "Lead intake: acknowledged, deduplicated, validated leads.",
    .pub_default = "tcp://127.0.0.1:7101",
    .opts = intake_opts,
    .on_start = intake_start,
    .on_stop = intake_stop,
};

int main(int argc, char **argv) { return crm_service_main(&intake_def, argc, argv); }
