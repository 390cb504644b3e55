/*  crm_h_bench: what the benchmarks' lead submitters share (crm_h_bench.h). */
#include "crm_h_bench.h"

#include <stdio.h>

#include "crm_clock.h"

void crm_h_bench_lead(crm_msg_t *m, const char *prefix, int w, int i)
{
    crm_msg_init(m, CRM_T_lead_submit);
    snprintf(m->id, sizeof m->id, "%s-%d-%d", prefix, w, i);
    snprintf(m->producer, sizeof m->producer, "bench");
    m->ts = crm_now_ms();
    char sid[64], mobile[16], name[32];
    snprintf(sid, sizeof sid, "%s:%d:%d", prefix, w, i);
    snprintf(mobile, sizeof mobile, "13%d%08d", w % 10, w / 10 * 10000000 + i);
    snprintf(name, sizeof name, "客户%d-%d", w, i);
    CRM_SET_STR(m, lead_submit, submission_id, sid);
    CRM_SET_STR(m, lead_submit, channel, "website");
    CRM_SET_STR(m, lead_submit, name, name);
    CRM_SET_STR(m, lead_submit, mobile, mobile);
    CRM_SET_STR(m, lead_submit, city, "上海");
    CRM_SET_STR(m, lead_submit, province, "上海");
}

zframe_t *crm_h_bench_ask(zsock_t *req, crm_msg_t *m)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = crm_msg_encode(m, &buf, NULL);
    crm_msg_clear(m);
    if (rc == 0)
        zsock_send(req, "b", buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    return rc == 0 ? zframe_recv(req) : NULL;
}

void crm_h_testdrive(crm_tx_t *tx, const char *tid, const char *lid, const char *cid, const char *dealer,
                     int64_t at)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_testdrive_requested);
    CRM_SET_STR(&m, testdrive_requested, testdrive_id, tid);
    CRM_SET_STR(&m, testdrive_requested, lead_id, lid);
    CRM_SET_STR(&m, testdrive_requested, customer_id, cid);
    CRM_SET_STR(&m, testdrive_requested, dealer_id, dealer);
    CRM_SET_I64(&m, testdrive_requested, at, at);
    crm_tx_emit(tx, &m);
    crm_msg_clear(&m);
}

void crm_h_bench_testdrive(crm_tx_t *tx, const char *tid, const char *dealer, int64_t at)
{
    crm_h_testdrive(tx, tid, "L1", "C1", dealer, at);
}

long crm_h_bench_submit(const char *endpoint, const char *prefix, int w, int count, int timeout_ms)
{
    zsock_t *req = zsock_new_req(endpoint);
    if (!req)
        return 0;
    zsock_set_rcvtimeo(req, timeout_ms);
    long ok = 0;
    for (int i = 0; i < count; i++) {
        crm_msg_t m;
        crm_h_bench_lead(&m, prefix, w, i);
        zframe_t *ans = crm_h_bench_ask(req, &m);
        if (!ans)
            break;
        ok++;
        zframe_destroy(&ans);
    }
    zsock_destroy(&req);
    return ok;
}

static long long s_persistence_field(const char *info, const char *name)
{
    const char *p = info ? strstr(info, name) : NULL;
    return p ? atoll(p + strlen(name)) : -1;
}

long long crm_h_aof_mark(crm_store_t *store)
{
    redisReply *r = crm_store_cmd(store, "INFO persistence");
    const char *info = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    long long done = s_persistence_field(info, "aof_rewrites:"),
              running = s_persistence_field(info, "aof_rewrite_in_progress:");
    freeReplyObject(r);
    return done < 0 || running < 0 ? -1 : done + running;
}

const char *crm_h_aof_note(crm_store_t *store, long long mark)
{
    long long now = crm_h_aof_mark(store);
    if (now < 0 || mark < 0)
        return " [Redis did not say whether it rewrote its AOF meanwhile]";
    return now > mark ? " [Redis rewrote its AOF during this run: a fork busy on one of the cores]" : "";
}

const char *crm_h_aof_hold(crm_store_t *store)
{
    if (getenv("BENCH_AOF_REWRITE"))
        return ", automatic AOF rewrites as configured (BENCH_AOF_REWRITE)";
    redisReply *r = crm_store_cmd(store, "CONFIG SET auto-aof-rewrite-percentage 0");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok ? ", no automatic AOF rewrite (BENCH_AOF_REWRITE=1 leaves them on)"
              : ", automatic AOF rewrites on (CONFIG SET refused)";
}
