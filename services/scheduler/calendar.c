/*  The working-day calendar: the built-in table (common/data/calendar_cn.txt)
 *  until `crmctl calendar load FILE` replaces it. The table loaded is kept
 *  in Redis (crm:calendar), so every instance and every restart uses it;
 *  each instance reads it again within 2 s of a load (its version).
 */
#include "sched.h"

#include <stdlib.h>
#include <string.h>

static void s_use(sched_t *s, crm_calendar_t *cal, const char *source)
{
    crm_calendar_destroy(&s->cal);
    s->cal = cal;
    snprintf(s->cal_source, sizeof s->cal_source, "%s", source);
}

/* Reads crm:calendar; 0 (the built-in table when there is none), -1. */
static int s_reload(crm_service_t *svc)
{
    sched_t *s = sched_of(svc);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HMGET " CRM_KEY_CALENDAR " text source version");
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
        s->cal_version = strtoll(r->element[2]->str, NULL, 10);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
        char err[256];
        crm_calendar_t *cal = crm_calendar_parse(r->element[0]->str, r->element[0]->len, err, sizeof err);
        if (cal) {
            s_use(s, cal, r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "crm:calendar");
        } else {
            crm_error("calendar.unreadable", "key=" CRM_KEY_CALENDAR " reason=\"%s\" using=built-in", err);
            rc = s->cal ? 0 : -1;
        }
    }
    freeReplyObject(r);
    if (!s->cal) {
        crm_calendar_t *cal = crm_calendar_default();
        if (!cal)
            return -1;
        s_use(s, cal, "built-in");
        rc = 0;
    }
    int years[16];
    size_t n = crm_calendar_years(s->cal, years, 16);
    crm_info("calendar.using", "source=\"%s\" years=%zu first=%d last=%d", s->cal_source, n, n ? years[0] : 0,
             n ? years[n - 1] : 0);
    return rc;
}

int sched_calendar_start(crm_service_t *svc) { return s_reload(svc); }

/* Every instance looks: with a shared consumer only one of them applies
   calendar.loaded. */
void sched_calendar_tick(crm_service_t *svc)
{
    sched_t *s = sched_of(svc);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HGET " CRM_KEY_CALENDAR " version");
    int64_t v = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    bool changed = r && r->type == REDIS_REPLY_STRING && v != s->cal_version;
    freeReplyObject(r);
    if (changed)
        s_reload(svc);
}

crm_handled_t sched_on_calendar_loaded(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    (void) msg;
    if (s_reload(svc) != 0)
        return crm_service_failed(svc);
    sched_holidays(svc, tx);
    return CRM_APPLIED;
}

crm_handled_t sched_req_calendar_load(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    (void) svc;
    const crm_body_calendar_load_t *b = &crm_req_msg(req)->body.calendar_load;
    char err[256];
    crm_calendar_t *cal = crm_calendar_parse(b->text, strlen(b->text), err, sizeof err);
    if (!cal)
        return crm_req_fail(req, "text", "invalid", "%s", err);
    int years[64];
    size_t n = crm_calendar_years(cal, years, 64);
    const char *source = b->has.source && *b->source ? b->source : "crmctl";
    crm_tx_cmd(tx, "HSET " CRM_KEY_CALENDAR " text %b source %s loaded_ms %lld", b->text, strlen(b->text), source,
               (long long) crm_now_ms());
    crm_tx_cmd(tx, "HINCRBY " CRM_KEY_CALENDAR " version 1");
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_calendar_loaded);
    char y[16];
    for (size_t i = 0; i < n; i++) {
        snprintf(y, sizeof y, "%d", years[i]);
        crm_strs_push(&ev.body.calendar_loaded.years, y);
    }
    ev.body.calendar_loaded.has.years = true;
    int64_t listed = 0;
    for (const char *p = b->text; *p; p++)
        if ((p == b->text || p[-1] == '\n') && p[0] >= '0' && p[0] <= '9')
            listed++;
    CRM_SET_I64(&ev, calendar_loaded, days, listed);
    CRM_SET_STR(&ev, calendar_loaded, source, source);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    /* Every instance takes it from Redis once it is committed (the tick,
       calendar.loaded): never one that was not stored. */
    crm_calendar_destroy(&cal);
    crm_msg_t *ok = crm_req_ok(req, NULL);
    char f[64];
    snprintf(f, sizeof f, "years=%zu", n);
    crm_strs_push(&ok->body.reply.fields, f);
    snprintf(f, sizeof f, "days=%lld", (long long) listed);
    crm_strs_push(&ok->body.reply.fields, f);
    ok->body.reply.has.fields = true;
    return CRM_APPLIED;
}
