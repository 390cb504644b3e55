/*  dispatch: routing, timing and the dealer workflow of test drives. */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm_lead.h"
#include "crm_norm.h"

#define DAY_MS (24LL * 3600 * 1000)

dispatch_config_t dispatch_config = {false, 10, 3, 9, 24};

int64_t dispatch_due_ms(int64_t at_ms)
{
    /* Midnight of the test drive's day in China time, minus 3 days, + 9 h. */
    int64_t local = at_ms + CRM_CST_OFFSET_MS;
    int64_t day = local - ((local % DAY_MS) + DAY_MS) % DAY_MS;
    return day - dispatch_config.days_before * DAY_MS + dispatch_config.hour * 3600 * 1000 - CRM_CST_OFFSET_MS;
}

int64_t dispatch_escalate_ms(int64_t dispatched_ms, int64_t at_ms)
{
    int64_t span = dispatch_config.escalate_h * 3600 * 1000;
    int64_t a = dispatched_ms + span, b = at_ms - DAY_MS;
    return a < b ? a : b;
}

static void s_cst_day(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t) ((ms + CRM_CST_OFFSET_MS) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* ------------------------------------------------------------- routing */

typedef struct {
    char id[64];
    long long open;
    bool ok;       /* active and with capacity that day */
    char why[96];  /* when not ok */
} s_cand_t;

/* Checks a dealer for the day of the test drive. */
static int s_check_dealer(crm_store_t *store, const char *id, const char *day, s_cand_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_DEALER_FMT, id);
    if (!h)
        return -1;
    const char *cap = crm_reply_field(h, "capacity");
    long long capacity = cap ? atoll(cap) : dispatch_config.default_capacity;
    char state[32];
    snprintf(state, sizeof state, "%s", crm_reply_field(h, "state") ? crm_reply_field(h, "state") : "");
    freeReplyObject(h);
    if (!state[0]) {
        snprintf(c->why, sizeof c->why, "unknown dealer");
        return 0;
    }
    if (strcmp(state, "active")) {
        snprintf(c->why, sizeof c->why, "%s", state);
        return 0;
    }
    redisReply *r = crm_store_cmd(store, "GET crm:dealer:%s:day:%s", id, day);
    redisReply *o = r ? crm_store_cmd(store, "SCARD crm:dealer:%s:open", id) : NULL;
    if (!r || !o) {
        freeReplyObject(r);
        return -1;
    }
    long long booked = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    c->open = o->integer;
    freeReplyObject(r);
    freeReplyObject(o);
    if (capacity > 0 && booked >= capacity) {
        snprintf(c->why, sizeof c->why, "at capacity (%lld of %lld that day)", booked, capacity);
        return 0;
    }
    c->ok = true;
    return 0;
}

/* Chooses among the dealers of one routing level; 1 chosen, 0 none, -1 error. */
static int s_route_level(crm_store_t *store, const char *level, const char *value, const char *day,
                         char *dealer, size_t dsz, char *reason, size_t rsz)
{
    if (!value || !*value)
        return 0;
    redisReply *ids = crm_store_cmd(store, "SMEMBERS crm:dealers:%s:%s", level, value);
    if (!ids)
        return -1;
    s_cand_t best = {0}, c;
    int usable = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        if (s_check_dealer(store, ids->element[i]->str, day, &c) != 0) {
            freeReplyObject(ids);
            return -1;
        }
        if (!c.ok)
            continue;
        usable++;
        if (!best.ok || c.open < best.open || (c.open == best.open && strcmp(c.id, best.id) < 0))
            best = c;
    }
    size_t total = ids->elements;
    freeReplyObject(ids);
    if (!best.ok)
        return 0;
    snprintf(dealer, dsz, "%s", best.id);
    snprintf(reason, rsz, "%s %s: %d of %zu dealers active with capacity; %s has the fewest open test drives (%lld)",
             level, value, usable, total, best.id, best.open);
    return 1;
}

/* The prospect's choice, else city, province, region. 1, 0 (none), -1. */
static int s_route(crm_store_t *store, const char *chosen, const char *city, const char *province,
                   const char *day, char *dealer, size_t dsz, char *reason, size_t rsz)
{
    char pre[160] = "";
    if (chosen && *chosen) {
        s_cand_t c;
        if (s_check_dealer(store, chosen, day, &c) != 0)
            return -1;
        if (c.ok || (c.why[0] && strncmp(c.why, "at capacity", 11) == 0)) {
            /* The prospect's choice stands, even at capacity: the dealer sees it. */
            snprintf(dealer, dsz, "%s", chosen);
            snprintf(reason, rsz, "chosen by the prospect%s%s", c.ok ? "" : "; ", c.ok ? "" : c.why);
            return 1;
        }
        snprintf(pre, sizeof pre, "chosen dealer %s is %s; ", chosen, c.why);
    }
    char why[300];
    const char *region = crm_sales_region(province);
    int rc;
    if ((rc = s_route_level(store, "city", city, day, dealer, dsz, why, sizeof why)) == 0 &&
        (rc = s_route_level(store, "province", province, day, dealer, dsz, why, sizeof why)) == 0)
        rc = s_route_level(store, "region", region, day, dealer, dsz, why, sizeof why);
    if (rc == 1)
        snprintf(reason, rsz, "%s%s", pre, why);
    else if (rc == 0)
        snprintf(reason, rsz, "%sno active dealer with capacity in city %s, province %s or region %s", pre,
                 city ? city : "-", province ? province : "-", region ? region : "-");
    return rc;
}

/* ------------------------------------------------------------ dispatch */

typedef struct {
    const char *lead_id, *customer_id, *model, *reason;
    int64_t at;
} s_td_t;

/* Appends the dispatch to the dealer's stream and records it, in `tx`.
   The dealer's next number is read under WATCH: only the dispatcher
   writes dealer streams, and a concurrent writer makes the commit fail
   and the message be applied again. */
static int s_dispatch(crm_service_t *svc, crm_tx_t *tx, const char *tid, const char *dealer, const s_td_t *td)
{
    crm_store_t *store = crm_service_store(svc);
    char seqkey[128];
    snprintf(seqkey, sizeof seqkey, "crm:{dealer.%s}:seq", dealer);
    /* One round trip for everything the dispatch needs. */
    crm_tx_t *reads = crm_tx_new("dispatcher", 0);
    if (!reads)
        return -1;
    crm_tx_cmd(reads, "WATCH %s", seqkey);
    crm_tx_cmd(reads, "GET %s", seqkey);
    crm_tx_cmd(reads, "HGETALL " CRM_KEY_CUST_FMT, td->customer_id ? td->customer_id : "-");
    crm_tx_cmd(reads, "HGETALL " CRM_KEY_LEAD_FMT, td->lead_id ? td->lead_id : "-");
    crm_tx_cmd(reads, "HGETALL " CRM_KEY_CUST_FMT ":findings", td->customer_id ? td->customer_id : "-");
    if (crm_store_pipeline(store, reads) != 0) {
        crm_tx_destroy(&reads);
        return -1;
    }
    const redisReply *cur = crm_tx_result(reads, 1);
    long long dealer_seq = (cur && cur->type == REDIS_REPLY_STRING ? atoll(cur->str) : 0) + 1;
    const redisReply *cust = crm_tx_result(reads, 2), *lead = crm_tx_result(reads, 3),
                     *finds = crm_tx_result(reads, 4);
    crm_msg_t d;
    crm_msg_init(&d, CRM_T_dealer_dispatch);
    snprintf(d.stream, sizeof d.stream, "dealer.%s", dealer);
    CRM_SET_STR(&d, dealer_dispatch, testdrive_id, tid);
    CRM_SET_STR(&d, dealer_dispatch, dealer_id, dealer);
    CRM_SET_STR(&d, dealer_dispatch, lead_id, td->lead_id);
    CRM_SET_STR(&d, dealer_dispatch, customer_id, td->customer_id);
    CRM_SET_STR(&d, dealer_dispatch, customer_name, crm_reply_field(cust, "name"));
    const char *mobile = crm_reply_field(cust, "mobile");
    char masked[32];
    if (mobile && dispatch_config.mask_contacts)
        mobile = crm_mask_phone(mobile, masked, sizeof masked);
    CRM_SET_STR(&d, dealer_dispatch, mobile, mobile);
    const char *phone = crm_reply_field(cust, "usual_phone");
    if (!phone)
        phone = crm_reply_field(cust, "home_phone");
    if (!phone)
        phone = crm_reply_field(cust, "office_phone");
    if (phone && !dispatch_config.mask_contacts)
        CRM_SET_STR(&d, dealer_dispatch, phone, phone);
    CRM_SET_STR(&d, dealer_dispatch, model, td->model && *td->model ? td->model : NULL);
    CRM_SET_I64(&d, dealer_dispatch, at, td->at);
    CRM_SET_STR(&d, dealer_dispatch, channel, crm_reply_field(lead, "channel"));
    CRM_SET_STR(&d, dealer_dispatch, source, crm_reply_field(lead, "source"));
    CRM_SET_STR(&d, dealer_dispatch, reason, td->reason);
    for (size_t i = 0; finds && i + 1 < finds->elements; i += 2) {
        char line[400];
        const char *sev = finds->element[i + 1]->str, *bar = strchr(sev, '|');
        char field[64], code[64];
        const char *colon = strchr(finds->element[i]->str, ':');
        snprintf(field, sizeof field, "%.*s", colon ? (int) (colon - finds->element[i]->str) : 0,
                 finds->element[i]->str);
        snprintf(code, sizeof code, "%s", colon ? colon + 1 : finds->element[i]->str);
        snprintf(line, sizeof line, "%s|%s|%s", field, code, bar ? bar + 1 : sev);
        crm_strs_push(&d.body.dealer_dispatch.findings, line);
        d.body.dealer_dispatch.has.findings = true;
    }
    int64_t at = td->at;
    crm_tx_destroy(&reads);
    int k = crm_tx_emit(tx, &d);
    crm_msg_clear(&d);
    if (k < 0)
        return -1;
    int64_t now = crm_now_ms();
    char nows[24];
    snprintf(nows, sizeof nows, "%lld", (long long) now);
    crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " status dispatched dispatched_ms %s dealer_id %s dealer_seq %lld", tid,
               nows, dealer, dealer_seq);
    crm_tx_cmd(tx, "HSET crm:dealer:%s:seq2td %lld %s", dealer, dealer_seq, tid);
    crm_tx_cmd(tx, "XADD " CRM_KEY_TD_FMT ":history * status dispatched by dispatcher ts %s dealer %s", tid, nows,
               dealer);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_testdrive_dispatched);
    CRM_SET_STR(&ev, testdrive_dispatched, testdrive_id, tid);
    CRM_SET_STR(&ev, testdrive_dispatched, dealer_id, dealer);
    CRM_SET_I64(&ev, testdrive_dispatched, dealer_seq, dealer_seq);
    CRM_SET_STR(&ev, testdrive_dispatched, reason, td->reason);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    /* Escalate if the dealer stays silent. */
    crm_msg_t esc;
    crm_msg_init(&esc, CRM_T_testdrive_escalated);
    CRM_SET_STR(&esc, testdrive_escalated, testdrive_id, tid);
    CRM_SET_STR(&esc, testdrive_escalated, dealer_id, dealer);
    int64_t when = dispatch_escalate_ms(now, at);
    CRM_SET_STR(&esc, testdrive_escalated, reason,
                when == now + dispatch_config.escalate_h * 3600 * 1000 ? "no_ack_24h" : "no_ack_before_t_minus_1");
    char timer[96];
    snprintf(timer, sizeof timer, "escalate:%s", tid);
    crm_tx_timer(tx, DISPATCH_TIMERS, timer, when > now ? when : now, &esc);
    crm_msg_clear(&esc);
    crm_info("testdrive.dispatched", "testdrive=%s dealer=%s escalate_at=%lld", tid, dealer, (long long) when);
    return 0;
}

crm_handled_t dispatch_on_requested(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_testdrive_requested_t *r = &msg->body.testdrive_requested;
    crm_store_t *store = crm_service_store(svc);
    redisReply *exists = crm_store_cmd(store, "EXISTS " CRM_KEY_TD_FMT, r->testdrive_id);
    if (!exists)
        return CRM_RETRY;
    bool known = exists->integer;
    freeReplyObject(exists);
    if (known)
        return CRM_APPLIED; /* already taken (a replay of the stream) */
    redisReply *cust = crm_store_cmd(store, "HGETALL " CRM_KEY_CUST_FMT, r->customer_id);
    if (!cust)
        return CRM_RETRY;
    char day[40], dealer[64] = "", reason[400] = "";
    s_cst_day(r->at, day, sizeof day);
    int routed = s_route(store, r->dealer_id, crm_reply_field(cust, "city"), crm_reply_field(cust, "province"), day,
                         dealer, sizeof dealer, reason, sizeof reason);
    freeReplyObject(cust);
    if (routed < 0)
        return CRM_RETRY;
    int64_t now = crm_now_ms(), due = dispatch_due_ms(r->at);
    char at[24], nows[24], dues[24];
    snprintf(at, sizeof at, "%lld", (long long) r->at);
    snprintf(nows, sizeof nows, "%lld", (long long) now);
    snprintf(dues, sizeof dues, "%lld", (long long) due);
    const char *argv[] = {"HSET", NULL, "lead_id", r->lead_id, "customer_id", r->customer_id,
                          "model", r->model ? r->model : "", "at", at, "requested_ms", nows,
                          "reason", reason, "status", routed ? "routed" : "unrouted",
                          "dealer_id", dealer, "due_ms", dues, "chosen", r->dealer_id ? r->dealer_id : ""};
    char key[96];
    snprintf(key, sizeof key, CRM_KEY_TD_FMT, r->testdrive_id);
    argv[1] = key;
    crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_TDS " %s %s", at, r->testdrive_id);
    crm_tx_cmd(tx, "XADD " CRM_KEY_TD_FMT ":history * status %s by dispatcher ts %s reason %s", r->testdrive_id,
               routed ? "routed" : "unrouted", nows, reason);
    crm_info("testdrive.routed", "testdrive=%s dealer=%s reason=\"%s\"", r->testdrive_id,
             routed ? dealer : "-", reason);
    if (!routed) {
        crm_msg_t esc;
        crm_msg_init(&esc, CRM_T_testdrive_escalated);
        CRM_SET_STR(&esc, testdrive_escalated, testdrive_id, r->testdrive_id);
        CRM_SET_STR(&esc, testdrive_escalated, dealer_id, "");
        CRM_SET_STR(&esc, testdrive_escalated, reason, "no_dealer");
        crm_tx_emit(tx, &esc);
        crm_msg_clear(&esc);
        return CRM_APPLIED;
    }
    crm_tx_cmd(tx, "SADD crm:dealer:%s:open %s", dealer, r->testdrive_id);
    crm_tx_cmd(tx, "INCR crm:dealer:%s:day:%s", dealer, day);
    if (due <= now) {
        /* T-3 09:00 has passed: at once, in this same transaction. */
        s_td_t td = {r->lead_id, r->customer_id, r->model, reason, r->at};
        return s_dispatch(svc, tx, r->testdrive_id, dealer, &td) == 0 ? CRM_APPLIED : CRM_RETRY;
    }
    crm_msg_t d;
    crm_msg_init(&d, CRM_T_testdrive_due);
    CRM_SET_STR(&d, testdrive_due, testdrive_id, r->testdrive_id);
    CRM_SET_STR(&d, testdrive_due, dealer_id, dealer);
    char timer[96];
    snprintf(timer, sizeof timer, "due:%s", r->testdrive_id);
    crm_tx_timer(tx, DISPATCH_TIMERS, timer, due, &d);
    crm_msg_clear(&d);
    return CRM_APPLIED;
}

crm_handled_t dispatch_on_due(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_testdrive_due_t *d = &msg->body.testdrive_due;
    redisReply *h = crm_store_cmd(crm_service_store(svc), "HGETALL " CRM_KEY_TD_FMT, d->testdrive_id);
    if (!h)
        return CRM_RETRY;
    const char *status = crm_reply_field(h, "status");
    crm_handled_t rc = CRM_APPLIED; /* cancelled, or dispatched already */
    if (status && !strcmp(status, "routed")) {
        s_td_t td = {crm_reply_field(h, "lead_id"), crm_reply_field(h, "customer_id"), crm_reply_field(h, "model"),
                     crm_reply_field(h, "reason"), atoll(crm_reply_field(h, "at") ? crm_reply_field(h, "at") : "0")};
        rc = s_dispatch(svc, tx, d->testdrive_id, d->dealer_id, &td) == 0 ? CRM_APPLIED : CRM_RETRY;
    }
    freeReplyObject(h);
    return rc;
}

/* ------------------------------------------------------ dealer workflow */

void dispatch_on_ack(crm_service_t *svc, const char *dealer_id, uint64_t upto)
{
    crm_store_t *store = crm_service_store(svc);
    redisReply *prev = crm_store_cmd(store, "HGET " CRM_KEY_DEALER_FMT " acked", dealer_id);
    if (!prev)
        return;
    uint64_t from = (prev->type == REDIS_REPLY_STRING ? strtoull(prev->str, NULL, 10) : 0) + 1;
    freeReplyObject(prev);
    if (upto < from)
        return; /* an old ack again */
    int64_t now = crm_now_ms();
    char nows[24];
    snprintf(nows, sizeof nows, "%lld", (long long) now);
    crm_tx_t *tx = crm_service_tx(svc);
    /* The test drives behind the acknowledged numbers, 1000 per HMGET. */
    for (uint64_t s = from; s <= upto;) {
        uint64_t end = upto - s >= 1000 ? s + 999 : upto;
        const char *argv[1002];
        char key[96], nums[1000][24];
        snprintf(key, sizeof key, "crm:dealer:%s:seq2td", dealer_id);
        argv[0] = "HMGET";
        argv[1] = key;
        int argc = 2;
        for (uint64_t k = s; k <= end; k++, argc++) {
            snprintf(nums[argc - 2], sizeof nums[0], "%llu", (unsigned long long) k);
            argv[argc] = nums[argc - 2];
        }
        redisReply *tids = crm_store_cmdargv(store, argc, argv, NULL);
        if (!tids)
            return;
        for (size_t i = 0; i < tids->elements; i++) {
            const redisReply *tid = tids->element[i];
            if (tid->type != REDIS_REPLY_STRING)
                continue;
            char timer[96];
            snprintf(timer, sizeof timer, "escalate:%s", tid->str);
            crm_tx_timer_cancel(tx, DISPATCH_TIMERS, timer);
            crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " acked_ms %s", tid->str, nows);
            crm_tx_cmd(tx, "XADD " CRM_KEY_TD_FMT ":history * status acked by %s ts %s", tid->str, dealer_id, nows);
        }
        freeReplyObject(tids);
        s = end + 1;
    }
    crm_tx_cmd(tx, "HSET " CRM_KEY_DEALER_FMT " acked %llu acked_ms %s", dealer_id, (unsigned long long) upto, nows);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_testdrive_acked);
    CRM_SET_STR(&ev, testdrive_acked, dealer_id, dealer_id);
    CRM_SET_I64(&ev, testdrive_acked, dealer_seq, (int64_t) upto);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    if (crm_service_commit(svc, tx) == 0)
        crm_info("dealer.acked", "dealer=%s upto=%llu", dealer_id, (unsigned long long) upto);
}

static bool s_terminal(const char *status)
{
    return status && (!strcmp(status, "completed") || !strcmp(status, "no_show") || !strcmp(status, "cancelled"));
}

int dispatch_on_status(crm_service_t *svc, const char *dealer_id, const char *tid, const char *status,
                       bool has_at, int64_t at, const char *note, char *code, size_t codesz, char *err,
                       size_t errsz)
{
    static const char *allowed[] = {"received", "contacted", "confirmed", "completed",
                                    "no_show",  "rescheduled", "cancelled"};
    bool known = false;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        known |= !strcmp(status, allowed[i]);
    if (!known) {
        snprintf(code, codesz, "invalid");
        snprintf(err, errsz, "status: must be received, contacted, confirmed, completed, no_show, rescheduled or cancelled");
        return -1;
    }
    if ((!strcmp(status, "confirmed") || !strcmp(status, "rescheduled")) && !has_at) {
        snprintf(code, codesz, "required");
        snprintf(err, errsz, "at: %s needs the agreed date and time", status);
        return -1;
    }
    crm_store_t *store = crm_service_store(svc);
    redisReply *h = crm_store_cmd(store, "HGETALL " CRM_KEY_TD_FMT, tid);
    if (!h) {
        snprintf(code, codesz, "unavailable");
        snprintf(err, errsz, "service: Redis is unavailable, retry");
        return -1;
    }
    int rc = -1;
    const char *owner = crm_reply_field(h, "dealer_id"), *cur = crm_reply_field(h, "status");
    if (!owner || !cur || strcmp(cur, "routed") == 0 || strcmp(owner, dealer_id)) {
        /* Not dispatched to this dealer: the same answer as unknown, so a
           dealer learns nothing about other dealers' test drives. */
        snprintf(code, codesz, "unknown_testdrive");
        snprintf(err, errsz, "testdrive_id: no test drive %s was dispatched to you", tid);
    } else if (!strcmp(cur, status) && !has_at) {
        rc = 0; /* the same report again (a client's retry): nothing new */
    } else if (s_terminal(cur)) {
        snprintf(code, codesz, "closed");
        snprintf(err, errsz, "status: the test drive is already %s", cur);
    } else {
        int64_t now = crm_now_ms();
        char nows[24], ats[24];
        snprintf(nows, sizeof nows, "%lld", (long long) now);
        snprintf(ats, sizeof ats, "%lld", (long long) at);
        crm_tx_t *tx = crm_service_tx(svc);
        crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " status %s status_ms %s", tid, status, nows);
        if (has_at && !strcmp(status, "rescheduled"))
            crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " at %s", tid, ats);
        if (has_at && !strcmp(status, "confirmed"))
            crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " confirmed_at %s", tid, ats);
        crm_tx_cmd(tx, "XADD " CRM_KEY_TD_FMT ":history * status %s by %s ts %s at %s note %s", tid, status,
                   dealer_id, nows, has_at ? ats : "", note ? note : "");
        if (s_terminal(status))
            crm_tx_cmd(tx, "SREM crm:dealer:%s:open %s", dealer_id, tid);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_testdrive_status);
        CRM_SET_STR(&ev, testdrive_status, testdrive_id, tid);
        CRM_SET_STR(&ev, testdrive_status, dealer_id, dealer_id);
        CRM_SET_STR(&ev, testdrive_status, status, status);
        if (has_at)
            CRM_SET_I64(&ev, testdrive_status, at, at);
        CRM_SET_STR(&ev, testdrive_status, note, note);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        if (crm_service_commit(svc, tx) == 0) {
            rc = 0;
            crm_info("testdrive.status", "testdrive=%s dealer=%s status=%s", tid, dealer_id, status);
        } else {
            snprintf(code, codesz, "unavailable");
            snprintf(err, errsz, "service: not stored, retry");
        }
    }
    freeReplyObject(h);
    return rc;
}
