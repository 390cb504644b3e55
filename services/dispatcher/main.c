/*  crm-dispatcher: hands test-drive requests to dealers at the right moment.
 *
 *  On testdrive.requested it stores the test drive and chooses its dealer
 *  (the prospect's choice, else city, province, region; fewest open test
 *  drives; dealers at capacity that day skipped), recording why. At T-3
 *  days 09:00 China time (at once if that has passed) a durable timer
 *  fires testdrive.due and the dispatch goes onto the dealer's own stream;
 *  a dealer that stays silent is escalated.
 */
#include <stdlib.h>
#include <string.h>

#include "crm_service.h"
#include "dispatch.h"
#include "gateway.h"

static gateway_t *s_gateway;

static void dispatcher_on_ack(void *arg, const char *dealer_id, uint64_t upto)
{
    dispatch_on_ack(arg, dealer_id, upto);
}

static int dispatcher_on_status(void *arg, const char *dealer_id, const crm_body_dealer_status_t *st,
                                char *code, size_t codesz, char *err, size_t errsz)
{
    return dispatch_on_status(arg, dealer_id, st->testdrive_id, st->status, st->has.at, st->at, st->note,
                              code, codesz, err, errsz);
}

/* Committed dispatches go to their dealer live as well. */
static void dispatcher_on_publish(void *arg, const crm_emit_t *emit)
{
    (void) arg;
    if (s_gateway && !strncmp(emit->stream, "dealer.", 7))
        gateway_push(s_gateway, emit->stream + 7, emit->frame, emit->len);
}

static int s_opt_range(crm_service_t *svc, const char *name, int64_t min, int64_t max, int64_t *out)
{
    const char *v = crm_service_opt(svc, name);
    char *end;
    long long n = v ? strtoll(v, &end, 10) : -1;
    if (!v || !*v || *end || n < min || n > max) {
        crm_error("dispatcher.bad_option", "option=%s value=%s range=%lld..%lld", name, v ? v : "",
                  (long long) min, (long long) max);
        return -1;
    }
    *out = n;
    return 0;
}

static int dispatcher_start(crm_service_t *svc)
{
    const char *mask = crm_service_opt(svc, "mask-contacts");
    dispatch_config.mask_contacts = mask && (!strcmp(mask, "1") || !strcmp(mask, "yes"));
    dispatch_config.default_capacity = atoll(crm_service_opt(svc, "default-capacity"));
    if (s_opt_range(svc, "dispatch-days-before", 0, 30, &dispatch_config.days_before) != 0 ||
        s_opt_range(svc, "dispatch-hour", 0, 23, &dispatch_config.hour) != 0 ||
        s_opt_range(svc, "escalate-after-h", 1, 24 * 30, &dispatch_config.escalate_h) != 0)
        return -1;
    static gateway_handlers_t handlers = {dispatcher_on_ack, dispatcher_on_status, NULL};
    handlers.arg = svc;
    s_gateway = gateway_new(crm_service_loop(svc), crm_service_store(svc), crm_service_opt(svc, "cert-dir"),
                            crm_service_opt(svc, "server-cert"), crm_service_opt(svc, "gateway-pub"),
                            crm_service_opt(svc, "gateway-router"), &handlers);
    if (!s_gateway)
        return -1;
    crm_service_set_publish_hook(svc, dispatcher_on_publish, NULL);
    return 0;
}

static void dispatcher_stop(crm_service_t *svc)
{
    (void) svc;
    gateway_destroy(&s_gateway);
}

static const crm_handler_t dispatcher_handlers[] = {
    {"testdrive.requested", dispatch_on_requested, false},
    {"testdrive.due", dispatch_on_due, false},
    {NULL, NULL, false},
};

static const char *const dispatcher_timers[] = {DISPATCH_TIMERS, NULL};

static const crm_opt_t dispatcher_opts[] = {
    {"mask-contacts", "CRM_MASK_CONTACTS", "0",
     "1: dealers get the prospect's mobile masked (138****5678) and no other number", NULL},
    {"default-capacity", "CRM_DEFAULT_CAPACITY", "10",
     "Test drives a dealer takes per day when its registry entry sets none (0: no limit)", NULL},
    {"dispatch-days-before", "CRM_DISPATCH_DAYS_BEFORE", "3",
     "Dispatch a test drive this many days before it (our rule: 3)", NULL},
    {"dispatch-hour", "CRM_DISPATCH_HOUR", "9", "... at this hour, China Standard Time (our rule: 9)", NULL},
    {"escalate-after-h", "CRM_ESCALATE_AFTER_H", "24",
     "Escalate a dealer that has not acknowledged this many hours after the dispatch, or 24 h before "
     "the test drive if sooner (our rule: 24)", NULL},
    {"gateway-pub", "CRM_GATEWAY_PUB", GATEWAY_PUB_DEFAULT, "Dealer gateway: live dispatches (XPUB, CURVE)", NULL},
    {"gateway-router", "CRM_GATEWAY_ROUTER", GATEWAY_ROUTER_DEFAULT,
     "Dealer gateway: replay, acknowledgements, status (ROUTER, CURVE)", NULL},
    {"cert-dir", "CRM_CERT_DIR", GATEWAY_CERT_DIR_DEFAULT, "Dealers' public certificates (crmctl dealer cert)", NULL},
    {"server-cert", "CRM_SERVER_CERT", GATEWAY_SERVER_CERT_DEFAULT,
     "The gateway's certificate (public part; the secret is <file>_secret); made on first start", NULL},
    CRM_OPT_END,
};

static const crm_service_def_t dispatcher_def = {
    .name = "dispatcher",
    .summary = "Test-drive dispatcher and dealer gateway.",
    .pub_default = "tcp://127.0.0.1:7102",
    .handlers = dispatcher_handlers,
    .timer_sets = dispatcher_timers,
    .opts = dispatcher_opts,
    .on_start = dispatcher_start,
    .on_stop = dispatcher_stop,
};

int main(int argc, char **argv) { return crm_service_main(&dispatcher_def, argc, argv); }
