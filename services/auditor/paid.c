/*  paid: what customers paid each dealer, month by month (work orders,
 *  delivered orders), for the ABC value classes; and the cars each dealer
 *  sold, with their service visits, for retention.
 */
#include <stdlib.h>
#include <string.h>

#include "auditor.h"
#include "crm_calendar.h"
#include "crm_id.h"

/* cars:<D> VIN -> "<sale date>|<customer>|<visits>|<last service or ->":
   a sale (re)dated keeps the visits counted so far. */
static const char s_sold_lua[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local visits, last = '0', '-'\n"
    "if v then local a, b, c, d = string.match(v, '^([^|]*)|([^|]*)|(%d+)|(.*)$')\n"
    "  if c then visits, last = c, d end end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. visits .. '|' .. last)\n"
    "return 1\n";

/* A work order on a car the dealer sold: one more visit, the latest date. */
static const char s_serviced_lua[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not v then return 0 end\n"
    "local a, b, c, d = string.match(v, '^([^|]*)|([^|]*)|(%d+)|(.*)$')\n"
    "if not c then return 0 end\n"
    "if d == '-' or ARGV[2] > d then d = ARGV[2] end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], a .. '|' .. b .. '|' .. (tonumber(c) + 1) .. '|' .. d)\n"
    "return 1\n";

void aud_car_sold(crm_tx_t *tx, const char *dealer, const char *vin, const char *sale_date, const char *cid)
{
    if (!*vin || !*sale_date || crm_day_parse(sale_date) == INT64_MIN || strchr(vin, '|'))
        return;
    char key[CRM_ID_NAME_MAX + 32];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_CARS_FMT, dealer);
    crm_tx_cmd(tx, "EVAL %s 1 %s %s %s %s", s_sold_lua, key, vin, sale_date, cid);
}

/* fen paid by customer `cid` to dealer `dealer` on `date` (YYYY-MM-DD). */
static void s_paid(crm_tx_t *tx, const char *dealer, const char *cid, const char *date, int64_t fen, int visits)
{
    int64_t day = crm_day_parse(date);
    char month[8];
    if (day == INT64_MIN || crm_period_month_of(day, month) != 0)
        return;
    char key[CRM_ID_NAME_MAX + 48], vfield[CRM_ID_NAME_MAX + 4];
    snprintf(key, sizeof key, CRM_KEY_AUDIT_PAID_FMT, dealer, month);
    snprintf(vfield, sizeof vfield, "%s#v", cid);
    if (fen > 0)
        crm_tx_cmd(tx, "HINCRBY %s %s %lld", key, cid, (long long) fen);
    if (visits)
        crm_tx_cmd(tx, "HINCRBY %s %s %d", key, vfield, visits);
    crm_tx_cmd(tx, "SADD " CRM_KEY_AUDIT_PAID_MONTHS_FMT " %s", dealer, month);
}

/* The customer, the dealer and the day an event names, checked; false
   after saying why. */
static bool s_event_ok(crm_service_t *svc, const char *cid, const char *dealer, const char *date)
{
    const char *ids[] = {cid, dealer};
    static const char *const names[] = {"customer_id", "dealer_id"};
    if (!crm_service_ids_ok(svc, ids, names, 2, 2))
        return false;
    if (!date || crm_day_parse(date) == INT64_MIN) {
        crm_service_why(svc, "date: YYYY-MM-DD expected");
        return false;
    }
    return true;
}

crm_handled_t aud_on_service(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_service_recorded_t *b = &msg->body.service_recorded;
    if (!s_event_ok(svc, b->customer_id, b->dealer_id, b->date))
        return CRM_REFUSE;
    s_paid(tx, b->dealer_id, b->customer_id, b->date, b->has.amount_fen ? b->amount_fen : 0, 1);
    if (b->has.vin && b->vin && *b->vin && !strchr(b->vin, ' ') && strlen(b->vin) < 64) {
        char key[CRM_ID_NAME_MAX + 32];
        snprintf(key, sizeof key, CRM_KEY_AUDIT_CARS_FMT, b->dealer_id);
        crm_tx_cmd(tx, "EVAL %s 1 %s %s %s", s_serviced_lua, key, b->vin, b->date);
    }
    return CRM_APPLIED;
}

crm_handled_t aud_on_delivered(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_vehicle_delivered_t *b = &msg->body.vehicle_delivered;
    if (!s_event_ok(svc, b->customer_id, b->dealer_id, b->date))
        return CRM_REFUSE;
    /* the order's price: what the customer paid for the car */
    char okey[CRM_ID_NAME_MAX + 64];
    crm_order_key(b->dealer_id, b->order_id, okey, sizeof okey);
    redisReply *r = crm_store_cmd(crm_service_store(svc), "HMGET %s price state", okey);
    if (!r)
        return crm_service_failed(svc);
    long long yuan = r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->str
                         ? strtoll(r->element[0]->str, NULL, 10)
                         : 0;
    freeReplyObject(r);
    if (yuan > 0 && yuan < INT64_MAX / 100)
        s_paid(tx, b->dealer_id, b->customer_id, b->date, yuan * 100, 0);
    /* the car, sold on its delivery day unless the dealer's file dates the sale */
    if (b->vin && *b->vin && strlen(b->vin) < 64 && !strchr(b->vin, ' '))
        aud_car_sold(tx, b->dealer_id, b->vin, b->date, b->customer_id);
    /* and the record: a car now, the sale date rule applies */
    return aud_on_record(svc, msg, tx);
}
