/*  dispatch: routing, timing and the dealer workflow of test drives, and
 *  the dealer registry. */
#include "dispatch.h"
#include "uplink.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm_cadence.h"
#include "crm_lead.h"
#include "crm_norm.h"
#include "crm_str.h"
#include "gateway.h"

#define DAY_MS (24LL * 3600 * 1000)
#define S_DAY_KEEP_MS (7 * DAY_MS) /* a day counter outlives its day by a week */
#define S_NAME_MAX 200

dispatch_config_t dispatch_config = {false, 10, 3, 9, 24};

static crm_regions_t *s_regions;

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

/* "YYYYMMDD" of `ms` in China time, and the UTC ms at which that day ends. */
static int64_t s_cst_day(int64_t ms, char *out, size_t size)
{
    int64_t local = ms + CRM_CST_OFFSET_MS;
    int64_t start = local - ((local % DAY_MS) + DAY_MS) % DAY_MS;
    time_t t = (time_t) (start / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    crm_fmt(out, size, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return start + DAY_MS - CRM_CST_OFFSET_MS;
}

/* A string built to its full length (no silent truncation). */
static char *s_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *s_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* -------------------------------------------------------------- regions */

int dispatch_load_regions(crm_service_t *svc)
{
    crm_regions_t *r = NULL;
    if (crm_regions_read(crm_service_store(svc), &r) != 0)
        return -1;
    if (r) {
        crm_regions_destroy(&s_regions);
        s_regions = r;
        return 0;
    }
    /* None stored yet: the built-in table becomes the one in force. */
    if (!(r = crm_regions_default()))
        return -1;
    crm_tx_t *tx = crm_service_tx(svc);
    crm_regions_write(r, tx);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_regions_loaded);
    for (size_t i = 0; i < crm_regions_count(r); i++)
        crm_strs_push(&ev.body.regions_loaded.regions, crm_regions_line(r, i));
    ev.body.regions_loaded.has.regions = true;
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    if (crm_service_commit(svc, tx) != 0) {
        crm_regions_destroy(&r);
        return -1;
    }
    crm_info("regions.loaded", "source=built-in regions=%zu", crm_regions_count(r));
    crm_regions_destroy(&s_regions);
    s_regions = r;
    return 0;
}

/* 9999-12-31 23:59:59 UTC: beyond it the day arithmetic would overflow. */
#define S_AT_MAX 253402300799000LL

/* ------------------------------------------------------- batched reads
 *
 * testdrive.requested and testdrive.due are batch handlers: consecutive
 * messages share one transaction (up to 512). Their reads are made for all
 * of them together, in a constant number of pipelined round trips whatever
 * the number of test drives and of candidate dealers:
 *   1. (prefetch) each test drive's status (requested) or record (due),
 *      each customer's city and province;
 *   2. (prefetch) the dealer sets of every routing level named (each set
 *      once), each lead and each customer's findings;
 *   3. (the first message of each transaction, for it and the next 511)
 *      under WATCH: every candidate dealer's state, capacity, open test
 *      drives, bookings on the days asked and stream number, and the
 *      customer of every test drive dispatched now;
 *   4. the commit (MULTI/EXEC, the framework's).
 * So 4 round trips for a batch of up to 512 test drives, 2 for each further
 * transaction of the same prefetch (3 and 4); today's per-message code made
 * 4 to 9 plus a commit for each test drive.
 *
 * What earlier messages of the transaction decided (open test drives, day
 * bookings, the dealer stream's next number, customers claimed, test drives
 * taken) is kept in memory, so the choices are those of applying the
 * messages one at a time. The view of step 3 belongs to one transaction: it
 * is read again when the transaction is not the one it was read for (a
 * commit or a drop empties it, ending the WATCH; crm_service_batch()
 * changes when what handlers did is not committed). Everything is read
 * afresh at each prefetch (all before it is committed). A message the
 * prefetch did not read (reject.retry, a failed read, a prefetch of another
 * range in between) reads for itself in the same steps. */

#define S_LEVELS 3
#define S_AHEAD 511 /* messages read ahead for, with the first of a transaction */

static const char *const s_level_names[S_LEVELS] = {"city", "province", "region"};

/* One message's reads. */
typedef struct {
    char key[CRM_NAME_MAX + CRM_ID_MAX + 64];
    crm_type_t type;
    char tid[CRM_ID_NAME_MAX + 1];
    char dealer[CRM_ID_NAME_MAX + 1]; /* due: the dealer named; requested: the one chosen, if valid */
    char cid[CRM_ID_NAME_MAX + 1], lid[CRM_ID_NAME_MAX + 1]; /* or "-" */
    const redisReply *td;    /* requested: HGET status; due: HGETALL */
    const redisReply *place; /* requested: HMGET city province */
    const redisReply *lead, *finds;
    const redisReply *set[S_LEVELS]; /* the dealers of city, province, region */
    char region[160];
    char day[40];
    int64_t at;
    bool read2, done;
} s_pre_t;

/* What the prefetches read, and the test drives taken since (a replay in
   the same transaction, or read before an earlier commit, changes nothing). */
static struct {
    unsigned long gen;
    s_pre_t **v;
    size_t n, cap;
    zhashx_t *by_key; /* key -> s_pre_t (in v) */
    zhashx_t *taken;  /* testdrive id -> "routed", "unrouted", "dispatched" */
    crm_tx_t **txs;   /* the pipelines the replies live in */
    size_t ntx, txcap;
    size_t views; /* transactions' views read since the prefetch */
} s_pf;

typedef struct {
    char state[48];
    bool has_state;
    long long capacity, open, seq; /* seq: the last number of its stream */
    char err[240];                 /* Redis refused a read of its state or open test drives */
    char seq_err[240];             /* ... of its stream's number */
    int ix;
    bool read;
} s_dealer_t;

/* The most strings of a test drive's record written with its dispatch. */
#define S_REC_MAX 32

typedef struct {
    long long booked;
    bool expiry; /* its PEXPIREAT is in this transaction (once a day key) */
    char err[240];
    int ix;
    bool read;
} s_day_t;

typedef struct {
    const redisReply *h;
    bool claimed; /* by a dispatch of this transaction */
    int ix;
} s_cust_t;

/* This transaction's view of the dealers and customers (step 3). */
static struct {
    bool valid;
    const crm_tx_t *tx; /* the transaction, and its size after our last message */
    size_t size;
    unsigned long gen, conn;
    zhashx_t *dealers, *days, *custs;
    crm_tx_t **txs;
    size_t ntx, txcap;
    size_t used; /* messages applied with this view */
} s_bt;

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
}

static int s_keep_tx(crm_tx_t ***txs, size_t *n, size_t *cap, crm_tx_t *t)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        crm_tx_t **g = realloc(*txs, c * sizeof *g);
        if (!g)
            return -1;
        *txs = g;
        *cap = c;
    }
    (*txs)[(*n)++] = t;
    return 0;
}

static void s_bt_clear(void)
{
    if (s_bt.dealers)
        zhashx_purge(s_bt.dealers);
    if (s_bt.days)
        zhashx_purge(s_bt.days);
    if (s_bt.custs)
        zhashx_purge(s_bt.custs);
    for (size_t i = 0; i < s_bt.ntx; i++)
        crm_tx_destroy(&s_bt.txs[i]);
    s_bt.ntx = 0;
    s_bt.valid = false;
}

static void s_pf_clear(unsigned long gen)
{
    if (s_pf.by_key)
        zhashx_purge(s_pf.by_key);
    if (s_pf.taken)
        zhashx_purge(s_pf.taken);
    for (size_t i = 0; i < s_pf.n; i++)
        free(s_pf.v[i]);
    s_pf.n = 0;
    for (size_t i = 0; i < s_pf.ntx; i++)
        crm_tx_destroy(&s_pf.txs[i]);
    s_pf.ntx = 0;
    s_pf.gen = gen;
    s_pf.views = 0;
    s_bt_clear();
}

static int s_init(void)
{
    if (s_pf.by_key)
        return 0;
    s_pf.by_key = zhashx_new();
    s_pf.taken = zhashx_new();
    s_bt.dealers = zhashx_new();
    s_bt.days = zhashx_new();
    s_bt.custs = zhashx_new();
    if (!s_pf.by_key || !s_pf.taken || !s_bt.dealers || !s_bt.days || !s_bt.custs)
        return -1;
    zhashx_set_destructor(s_pf.taken, s_free);
    zhashx_set_destructor(s_bt.dealers, s_free);
    zhashx_set_destructor(s_bt.days, s_free);
    zhashx_set_destructor(s_bt.custs, s_free);
    return 0;
}

void dispatch_forget(void)
{
    s_pf_clear(0);
    zhashx_destroy(&s_pf.by_key);
    zhashx_destroy(&s_pf.taken);
    zhashx_destroy(&s_bt.dealers);
    zhashx_destroy(&s_bt.days);
    zhashx_destroy(&s_bt.custs);
    free(s_pf.v);
    free(s_pf.txs);
    free(s_bt.txs);
    memset(&s_pf, 0, sizeof s_pf);
    memset(&s_bt, 0, sizeof s_bt);
}

static void s_key(const crm_msg_t *msg, char *out, size_t size)
{
    crm_fmt(out, size, "%d|%s|%llu|%s", (int) msg->type, msg->stream, (unsigned long long) msg->seq, msg->id);
}

static bool s_str(const redisReply *r) { return r && r->type == REDIS_REPLY_STRING; }

/* A reply Redis refused: says why, for a handler that then refuses. */
static bool s_refused(crm_service_t *svc, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR)
        return false;
    crm_service_why(svc, "Redis refused a command: %s", r->str);
    return true;
}

/* The customer's city (0) or province (1) from HMGET city province. */
static const char *s_place_of(const redisReply *place, int i)
{
    return place && place->type == REDIS_REPLY_ARRAY && place->elements == 2 && s_str(place->element[i])
               ? place->element[i]->str : NULL;
}

static const char *s_level_value(const s_pre_t *e, int level)
{
    return level < 2 ? s_place_of(e->place, level) : *e->region ? e->region : NULL;
}

static bool s_level_ok(const char *value) { return value && *value && strlen(value) <= 128; }

/* Round 2 for the entries [from, n): the routing sets (each once), leads
   and findings. */
static void s_read2(crm_store_t *store, size_t from)
{
    crm_tx_t *t = crm_tx_new("dispatcher", 0);
    zhashx_t *sets = zhashx_new();
    if (!t || !sets || s_keep_tx(&s_pf.txs, &s_pf.ntx, &s_pf.txcap, t) != 0) {
        crm_tx_destroy(&t);
        zhashx_destroy(&sets);
        return;
    }
    /* the command index of each, +1 (0: not read); a key read once */
    int (*ix)[2 + S_LEVELS] = calloc(s_pf.n - from + 1, sizeof *ix);
    for (size_t k = from; ix && k < s_pf.n; k++) {
        s_pre_t *e = s_pf.v[k];
        int *x = ix[k - from];
        if (e->done)
            continue;
        if (e->type == CRM_T_testdrive_due) {
            const char *status = crm_reply_field(e->td, "status");
            if (!status || strcmp(status, "routed"))
                continue;
            const char *cid = crm_reply_field(e->td, "customer_id"), *lid = crm_reply_field(e->td, "lead_id");
            crm_copy(e->cid, sizeof e->cid, cid && crm_id_valid(CRM_ID_NAME, cid) ? cid : "-");
            crm_copy(e->lid, sizeof e->lid, lid && crm_id_valid(CRM_ID_NAME, lid) ? lid : "-");
        } else if (!e->td || e->td->type != REDIS_REPLY_NIL || !e->place || e->place->type != REDIS_REPLY_ARRAY) {
            continue; /* known, or refused: nothing more is read */
        } else {
            const char *region = crm_regions_of(s_regions, s_place_of(e->place, 1));
            crm_copy(e->region, sizeof e->region, region && strlen(region) < sizeof e->region ? region : "");
            for (int l = 0; l < S_LEVELS; l++) {
                const char *v = s_level_value(e, l);
                if (!s_level_ok(v))
                    continue;
                char key[200];
                crm_fmt(key, sizeof key, "crm:dealers:%s:%s", s_level_names[l], v);
                void *have = zhashx_lookup(sets, key);
                if (have) {
                    x[2 + l] = (int) (intptr_t) have;
                } else {
                    x[2 + l] = crm_tx_cmd(t, "SMEMBERS %s", key) + 1;
                    zhashx_insert(sets, key, (void *) (intptr_t) x[2 + l]);
                }
            }
        }
        /* each lead and each customer's findings once, too */
        char lk[96], fk[96];
        crm_fmt(lk, sizeof lk, CRM_KEY_LEAD_FMT, e->lid);
        crm_fmt(fk, sizeof fk, CRM_KEY_CUST_FMT ":findings", e->cid);
        const char *keys[2] = {lk, fk};
        for (int j = 0; j < 2; j++) {
            void *have = zhashx_lookup(sets, keys[j]);
            if (have) {
                x[j] = (int) (intptr_t) have;
            } else {
                x[j] = crm_tx_cmd(t, "HGETALL %s", keys[j]) + 1;
                zhashx_insert(sets, keys[j], (void *) (intptr_t) x[j]);
            }
        }
    }
    int rc = ix && crm_tx_size(t) ? crm_store_pipeline(store, t) : -1;
    if (ix && (rc == 0 || crm_store_last_error(store) == CRM_STORE_REFUSED))
        for (size_t k = from; k < s_pf.n; k++) {
            s_pre_t *e = s_pf.v[k];
            int *x = ix[k - from];
            if (!x[0])
                continue;
            e->lead = crm_tx_result(t, x[0] - 1);
            e->finds = crm_tx_result(t, x[1] - 1);
            for (int l = 0; l < S_LEVELS; l++)
                e->set[l] = x[2 + l] ? crm_tx_result(t, x[2 + l] - 1) : NULL;
            e->read2 = e->lead && e->finds;
        }
    free(ix);
    zhashx_destroy(&sets);
}

/* Rounds 1 and 2 for the test drives among `msgs`: entries added (a
   message read again replaces its entry). */
static void s_read(crm_service_t *svc, const crm_msg_t *msgs, size_t n)
{
    crm_store_t *store = crm_service_store(svc);
    crm_tx_t *t = crm_tx_new("dispatcher", 0);
    if (!t || s_keep_tx(&s_pf.txs, &s_pf.ntx, &s_pf.txcap, t) != 0) {
        crm_tx_destroy(&t);
        return;
    }
    size_t from = s_pf.n;
    for (size_t i = 0; i < n; i++) {
        const crm_msg_t *m = &msgs[i];
        const char *tid, *cid = NULL, *lid = NULL, *dealer = NULL;
        if (m->type == CRM_T_testdrive_requested) {
            tid = m->body.testdrive_requested.testdrive_id;
            dealer = m->body.testdrive_requested.dealer_id;
            if (dealer && !crm_id_valid(CRM_ID_NAME, dealer))
                dealer = NULL;
            cid = m->body.testdrive_requested.customer_id;
            lid = m->body.testdrive_requested.lead_id;
            if (!crm_id_valid(CRM_ID_NAME, cid) || !crm_id_valid(CRM_ID_NAME, lid))
                continue;
        } else if (m->type == CRM_T_testdrive_due) {
            tid = m->body.testdrive_due.testdrive_id;
            dealer = m->body.testdrive_due.dealer_id;
            if (!crm_id_valid(CRM_ID_NAME, dealer))
                continue;
        } else {
            continue;
        }
        if (!crm_id_valid(CRM_ID_NAME, tid))
            continue;
        if (s_pf.n == s_pf.cap) {
            size_t c = s_pf.cap ? s_pf.cap * 2 : 1024;
            s_pre_t **g = realloc(s_pf.v, c * sizeof *g);
            if (!g)
                break;
            s_pf.v = g;
            s_pf.cap = c;
        }
        s_pre_t *e = calloc(1, sizeof *e);
        if (!e)
            break;
        s_key(m, e->key, sizeof e->key);
        e->type = m->type;
        crm_copy(e->tid, sizeof e->tid, tid);
        crm_copy(e->cid, sizeof e->cid, cid ? cid : "-");
        crm_copy(e->lid, sizeof e->lid, lid ? lid : "-");
        crm_copy(e->dealer, sizeof e->dealer, dealer ? dealer : "");
        if (m->type == CRM_T_testdrive_requested) {
            int64_t at = m->body.testdrive_requested.at;
            e->at = at >= 0 && at <= S_AT_MAX ? at : 0;
            s_cst_day(e->at, e->day, sizeof e->day);
            /* HGET, not EXISTS: a key of another type there is no test
               drive of ours, and Redis says so (WRONGTYPE: refused). */
            crm_tx_cmd(t, "HGET " CRM_KEY_TD_FMT " status", tid);
            crm_tx_cmd(t, "HMGET " CRM_KEY_CUST_FMT " city province", cid);
        } else {
            crm_tx_cmd(t, "HGETALL " CRM_KEY_TD_FMT, tid);
        }
        s_pre_t *old = zhashx_lookup(s_pf.by_key, e->key);
        if (old)
            old->done = true;
        zhashx_update(s_pf.by_key, e->key, e);
        s_pf.v[s_pf.n++] = e;
    }
    if (s_pf.n == from)
        return;
    int rc = crm_store_pipeline(store, t);
    if (rc != 0 && crm_store_last_error(store) != CRM_STORE_REFUSED)
        return; /* no replies: each message reads for itself */
    int k = 0;
    for (size_t i = from; i < s_pf.n; i++) {
        s_pre_t *e = s_pf.v[i];
        e->td = crm_tx_result(t, k++);
        if (e->type == CRM_T_testdrive_requested)
            e->place = crm_tx_result(t, k++);
    }
    s_read2(store, from);
}

/* The framework's prefetch: everything before `msgs` is committed, so what
   was read and taken before is in Redis now and is read afresh. */
void dispatch_prefetch(crm_service_t *svc, const crm_msg_t *msgs, size_t n)
{
    if (s_init() != 0)
        return;
    s_pf_clear(crm_service_batch(svc));
    s_read(svc, msgs, n);
}

/* Is s_bt the view of the transaction `tx` is? It is while nothing but our
   own messages went into `tx` since it was read: a commit or a drop empties
   `tx` (and ends the WATCH), a failure changes crm_service_batch(). 1 yes,
   0 no (read it again), -1 the connection was lost in the middle of a
   transaction (its WATCH with it): the batch must be applied again. */
static int s_bt_current(crm_service_t *svc, const crm_tx_t *tx)
{
    if (!s_bt.valid || s_bt.tx != tx || s_bt.gen != crm_service_batch(svc) || !s_bt.size ||
        crm_tx_size(tx) != s_bt.size)
        return 0;
    return s_bt.conn == crm_store_generation(crm_service_store(svc)) ? 1 : -1;
}

/* A dealer, a dealer's bookings on a day, or a customer the view lacks. */
typedef struct {
    char kind; /* 'd' dealer, 'b' bookings, 'c' customer */
    const char *id, *day;
    void *item;
} s_miss_t;

typedef struct {
    s_miss_t *v;
    size_t n, cap;
} s_misses_t;

static void s_miss(s_misses_t *m, char kind, const char *id, const char *day)
{
    char k[CRM_ID_NAME_MAX + 48];
    zhashx_t *h = kind == 'd' ? s_bt.dealers : kind == 'b' ? s_bt.days : s_bt.custs;
    if (day)
        crm_join(k, sizeof k, id, ' ', day);
    else
        crm_copy(k, sizeof k, id);
    if (zhashx_lookup(h, k))
        return;
    if (m->n == m->cap) {
        size_t c = m->cap ? m->cap * 2 : 64;
        s_miss_t *g = realloc(m->v, c * sizeof *g);
        if (!g)
            return;
        m->v = g;
        m->cap = c;
    }
    size_t size = kind == 'd' ? sizeof(s_dealer_t) : kind == 'b' ? sizeof(s_day_t) : sizeof(s_cust_t);
    void *item = calloc(1, size);
    if (!item || zhashx_insert(h, k, item) != 0) {
        free(item);
        return;
    }
    m->v[m->n++] = (s_miss_t){kind, id, day, item};
}

/* What entry `e` needs from the view: the dealers it may go to (with its
   day) and, when it is dispatched now, its customer. */
static void s_needs(s_misses_t *m, const s_pre_t *e, int64_t now)
{
    if (e->type == CRM_T_testdrive_due) {
        s_miss(m, 'd', e->dealer, NULL);
        s_miss(m, 'c', e->cid, NULL);
        return;
    }
    if (*e->dealer) {
        s_miss(m, 'd', e->dealer, NULL);
        s_miss(m, 'b', e->dealer, e->day);
    }
    for (int l = 0; l < S_LEVELS; l++) {
        const redisReply *s = e->set[l];
        for (size_t i = 0; s && s->type == REDIS_REPLY_ARRAY && i < s->elements; i++)
            if (s_str(s->element[i]) && crm_id_valid(CRM_ID_NAME, s->element[i]->str)) {
                s_miss(m, 'd', s->element[i]->str, NULL);
                s_miss(m, 'b', s->element[i]->str, e->day);
            }
    }
    if (dispatch_due_ms(e->at) <= now)
        s_miss(m, 'c', e->cid, NULL);
}

static void s_copy_err(char *out, size_t size, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR && !*out)
        crm_fmt(out, size, "%s", r->str);
}

/* Step 3: reads what the view lacks for `e` (and, at the start of a
   transaction, for the messages after it, up to a batch) in one round
   trip, under WATCH for the dealers' numbers and the customers. 0, or -1
   after saying why (Redis away: the message is tried again). */
static int s_ready(crm_service_t *svc, const crm_tx_t *tx, s_pre_t *e)
{
    int cur = s_bt_current(svc, tx);
    if (cur < 0) {
        crm_service_why(svc, "the connection to Redis was lost during the batch (its WATCH with it)");
        s_bt_clear();
        return -1;
    }
    int64_t now = crm_now_ms();
    s_misses_t m = {0};
    size_t ahead = S_AHEAD;
    if (!cur) {
        /* A new transaction: what the last one kept is committed or gone.
           When the last one held a single message (the framework applying
           them one by one), this one will too: no reading ahead. */
        if (s_pf.views && s_bt.used <= 1)
            ahead = 0;
        s_bt_clear();
        s_bt.valid = true;
        s_bt.tx = tx;
        s_bt.size = 0;
        s_bt.used = 0;
        s_bt.gen = crm_service_batch(svc);
        s_bt.conn = crm_store_generation(crm_service_store(svc));
        s_pf.views++;
    }
    s_needs(&m, e, now);
    if (!m.n && cur) {
        free(m.v);
        return 0; /* read already */
    }
    size_t k = 0;
    while (k < s_pf.n && s_pf.v[k] != e)
        k++;
    for (k++; k < s_pf.n && ahead; k++)
        if (!s_pf.v[k]->done && s_pf.v[k]->read2) {
            s_needs(&m, s_pf.v[k], now);
            ahead--;
        }
    if (!m.n) {
        free(m.v);
        return 0;
    }
    crm_store_t *store = crm_service_store(svc);
    crm_tx_t *t = crm_tx_new("dispatcher", 0);
    if (!t || s_keep_tx(&s_bt.txs, &s_bt.ntx, &s_bt.txcap, t) != 0) {
        crm_tx_destroy(&t);
        free(m.v);
        s_bt_clear();
        crm_service_why(svc, "out of memory");
        return -1;
    }
    /* only the dispatcher writes dealer streams: a concurrent writer makes
       the commit fail and the batch be applied again */
    for (size_t i = 0; i < m.n; i++)
        if (m.v[i].kind == 'd')
            crm_tx_cmd(t, "WATCH crm:{dealer.%s}:seq", m.v[i].id);
        else if (m.v[i].kind == 'c')
            crm_tx_cmd(t, "WATCH " CRM_KEY_CUST_FMT, m.v[i].id);
    for (size_t i = 0; i < m.n; i++) {
        s_miss_t *x = &m.v[i];
        if (x->kind == 'd') {
            s_dealer_t *d = x->item;
            d->ix = crm_tx_cmd(t, "GET crm:{dealer.%s}:seq", x->id);
            crm_tx_cmd(t, "HMGET " CRM_KEY_DEALER_FMT " state capacity", x->id);
            crm_tx_cmd(t, "SCARD crm:dealer:%s:open", x->id);
        } else if (x->kind == 'b') {
            ((s_day_t *) x->item)->ix = crm_tx_cmd(t, "GET crm:dealer:%s:day:%s", x->id, x->day);
        } else {
            ((s_cust_t *) x->item)->ix = crm_tx_cmd(t, "HGETALL " CRM_KEY_CUST_FMT, x->id);
        }
    }
    int rc = crm_store_pipeline(store, t);
    if (rc != 0 && crm_store_last_error(store) != CRM_STORE_REFUSED) {
        free(m.v);
        s_bt_clear();
        crm_service_why(svc, "Redis unavailable: %s", crm_store_error(store));
        return -1;
    }
    for (size_t i = 0; i < m.n; i++) {
        s_miss_t *x = &m.v[i];
        if (x->kind == 'd') {
            s_dealer_t *d = x->item;
            const redisReply *seq = crm_tx_result(t, d->ix), *h = crm_tx_result(t, d->ix + 1),
                             *o = crm_tx_result(t, d->ix + 2);
            s_copy_err(d->seq_err, sizeof d->seq_err, seq);
            s_copy_err(d->err, sizeof d->err, h);
            s_copy_err(d->err, sizeof d->err, o);
            d->seq = s_str(seq) ? atoll(seq->str) : 0;
            bool two = h && h->type == REDIS_REPLY_ARRAY && h->elements == 2;
            const char *state = two && s_str(h->element[0]) ? h->element[0]->str : NULL;
            const char *cap = two && s_str(h->element[1]) ? h->element[1]->str : NULL;
            d->has_state = state != NULL;
            crm_copy(d->state, sizeof d->state, state ? state : "");
            d->capacity = cap ? atoll(cap) : dispatch_config.default_capacity;
            d->open = o && o->type == REDIS_REPLY_INTEGER ? o->integer : 0;
            d->read = true;
        } else if (x->kind == 'b') {
            s_day_t *b = x->item;
            const redisReply *r = crm_tx_result(t, b->ix);
            s_copy_err(b->err, sizeof b->err, r);
            b->booked = s_str(r) ? atoll(r->str) : 0;
            b->read = true;
        } else {
            s_cust_t *c = x->item;
            c->h = crm_tx_result(t, c->ix);
        }
    }
    free(m.v);
    s_bt.conn = crm_store_generation(store);
    return 0;
}

/* After a message applied with the view: the transaction as it now is. */
static void s_done(s_pre_t *e, const crm_tx_t *tx)
{
    e->done = true;
    if (s_bt.valid && s_bt.tx == tx) {
        s_bt.size = crm_tx_size(tx);
        s_bt.used++;
    }
}

/* The entry of `msg`, read now if the prefetch did not (or is gone); NULL
   with *rc when it cannot be read. */
static bool s_complete(const s_pre_t *e)
{
    if (!e->td)
        return false;
    if (e->td->type == REDIS_REPLY_ERROR)
        return true;
    if (e->type == CRM_T_testdrive_requested) {
        if (e->td->type != REDIS_REPLY_NIL)
            return true;
        if (!e->place)
            return false;
        return e->place->type == REDIS_REPLY_ERROR || e->read2;
    }
    const char *status = crm_reply_field(e->td, "status");
    return !status || strcmp(status, "routed") || e->read2;
}

static s_pre_t *s_entry(crm_service_t *svc, const crm_msg_t *msg, const char *tid, crm_handled_t *rc)
{
    *rc = CRM_RETRY;
    if (s_init() != 0) {
        crm_service_why(svc, "out of memory");
        return NULL;
    }
    unsigned long gen = crm_service_batch(svc);
    if (gen != s_pf.gen)
        s_pf_clear(gen); /* what was kept is not committed */
    char key[sizeof s_pf.v[0]->key];
    s_key(msg, key, sizeof key);
    s_pre_t *e = zhashx_lookup(s_pf.by_key, key);
    if (!e || e->done || strcmp(e->tid, tid) || !s_complete(e)) {
        s_read(svc, msg, 1);
        e = zhashx_lookup(s_pf.by_key, key);
    }
    if (!e || !s_complete(e)) {
        crm_service_why(svc, "could not read the test drive's state: %s", crm_store_error(crm_service_store(svc)));
        return NULL;
    }
    return e;
}

static void s_take(const char *tid, const char *status)
{
    char *v = strdup(status);
    if (v)
        zhashx_update(s_pf.taken, tid, v);
}

/* ------------------------------------------------------------- routing */

typedef struct {
    char dealer[CRM_ID_NAME_MAX + 1];
    const char *code;  /* chosen, city, province, region */
    char *text;        /* why, with the figures (for the CRM department) */
    char *dealer_text; /* why, for the dealer: nothing about other dealers */
} s_route_t;

static void s_route_clear(s_route_t *r)
{
    free(r->text);
    free(r->dealer_text);
    memset(r, 0, sizeof *r);
}

typedef struct {
    const char *id;
    long long open;
    bool ok;   /* active and with capacity that day */
    char why[96];
} s_cand_t;

/* A candidate's state and capacity, its bookings that day and its open
   test drives, as this transaction sees them. 0; -1 after saying why
   (Redis refused one of its reads); -2 not read. */
static int s_check(crm_service_t *svc, const char *id, const char *day, s_cand_t *c)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    char k[CRM_ID_NAME_MAX + 48];
    crm_join(k, sizeof k, id, ' ', day);
    const s_dealer_t *d = zhashx_lookup(s_bt.dealers, id);
    const s_day_t *b = zhashx_lookup(s_bt.days, k);
    if (!d || !b || !d->read || !b->read) {
        crm_service_why(svc, "dealer %s was not read", id);
        return -2;
    }
    if (*d->err || *b->err) {
        crm_service_why(svc, "Redis refused a command: %s", *d->err ? d->err : b->err);
        return -1;
    }
    c->open = d->open;
    if (!d->has_state)
        crm_fmt(c->why, sizeof c->why, "unknown dealer");
    else if (strcmp(d->state, "active"))
        crm_fmt(c->why, sizeof c->why, "%.40s", d->state);
    else if (d->capacity > 0 && b->booked >= d->capacity)
        crm_fmt(c->why, sizeof c->why, "at capacity (%lld of %lld that day)", b->booked, d->capacity);
    else
        c->ok = true;
    return 0;
}

/* Chooses among the dealers of one routing level (`set`, read by the
   prefetch); 1 chosen, 0 none, -1 refused (why said), -2 not read. */
static int s_route_level(crm_service_t *svc, const char *level, const char *value, const redisReply *set,
                         const char *day, s_route_t *out)
{
    if (!s_level_ok(value))
        return 0;
    if (!set)
        return -2;
    if (s_refused(svc, set))
        return -1;
    size_t n = 0;
    const char **list = calloc(set->elements + 1, sizeof *list);
    s_cand_t *cands = calloc(set->elements + 1, sizeof *cands);
    if (!list || !cands) {
        free(list);
        free(cands);
        return -2;
    }
    for (size_t i = 0; set->type == REDIS_REPLY_ARRAY && i < set->elements; i++)
        if (s_str(set->element[i]) && crm_id_valid(CRM_ID_NAME, set->element[i]->str))
            list[n++] = set->element[i]->str;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = s_check(svc, list[i], day, &cands[i]);
    const s_cand_t *best = NULL;
    int usable = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!cands[i].ok)
            continue;
        usable++;
        if (!best || cands[i].open < best->open || (cands[i].open == best->open && strcmp(cands[i].id, best->id) < 0))
            best = &cands[i];
    }
    if (rc == 0 && best) {
        crm_copy(out->dealer, sizeof out->dealer, best->id);
        out->code = level;
        out->text = s_fmt("%s %s: %d of %zu dealers active with capacity; %s has the fewest open test drives (%lld)",
                          level, value, usable, n, best->id, best->open);
        out->dealer_text = s_fmt("%s %s", !strcmp(level, "city") ? "the prospect's city"
                                          : !strcmp(level, "province") ? "the prospect's province"
                                                                       : "the prospect's sales region",
                                 value);
        rc = 1;
    }
    free(list);
    free(cands);
    return rc;
}

/* The prospect's choice, else city, province, region. 1, 0 (none), -1
   (refused, why said), -2 (not read). */
static int s_route(crm_service_t *svc, const s_pre_t *e, const char *chosen, const char *day, s_route_t *out)
{
    const char *city = s_level_value(e, 0), *province = s_level_value(e, 1), *region = s_level_value(e, 2);
    char *pre = NULL;
    if (chosen && *chosen && !crm_id_valid(CRM_ID_NAME, chosen)) {
        /* Never a key: an id intake would not have let through. */
        pre = s_fmt("chosen dealer id is not a valid id; ");
    } else if (chosen && *chosen) {
        s_cand_t c;
        int k = s_check(svc, chosen, day, &c);
        if (k != 0)
            return k;
        if (c.ok || !strncmp(c.why, "at capacity", 11)) {
            /* The prospect's choice stands, even at capacity: the dealer sees it. */
            crm_copy(out->dealer, sizeof out->dealer, chosen);
            out->code = "chosen";
            out->text = s_fmt("chosen by the prospect%s%s", c.ok ? "" : "; ", c.ok ? "" : c.why);
            out->dealer_text = s_fmt("chosen by the prospect");
            return 1;
        }
        pre = s_fmt("chosen dealer %s is %s; ", chosen, c.why);
    }
    int rc;
    if ((rc = s_route_level(svc, "city", city, e->set[0], day, out)) == 0 &&
        (rc = s_route_level(svc, "province", province, e->set[1], day, out)) == 0)
        rc = s_route_level(svc, "region", region, e->set[2], day, out);
    if (rc == 1 && pre) {
        char *t = s_fmt("%s%s", pre, out->text ? out->text : "");
        free(out->text);
        out->text = t;
    } else if (rc == 0) {
        out->text = s_fmt("%sno active dealer with capacity in city %s, province %s or region %s", pre ? pre : "",
                          city ? city : "-", province ? province : "-", region ? region : "-");
    }
    free(pre);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

typedef struct {
    const char *lead_id, *customer_id, *model, *reason, *reason_text, *reason_dealer;
    int64_t at;
} s_td_t;

/* Appends the dispatch to the dealer's stream and records it, in `tx`.
   The dealer's next number is this transaction's view of it, read under
   WATCH (s_ready): only the dispatcher writes dealer streams, and a
   concurrent writer makes the commit fail and the batch be applied again.
   `rec` (field, value pairs, `nrec` strings; NULL: none) is the rest of a
   record written with the dispatch in one HSET: a test drive dispatched
   as it is requested. */
static crm_handled_t s_dispatch(crm_service_t *svc, crm_tx_t *tx, const char *tid, const char *dealer,
                                const s_td_t *td, const s_pre_t *e, const char *const *rec, int nrec)
{
    s_dealer_t *dl = zhashx_lookup(s_bt.dealers, dealer);
    s_cust_t *cu = zhashx_lookup(s_bt.custs, e->cid);
    if (!dl || !dl->read || !cu || !cu->h || !e->lead || !e->finds) {
        crm_service_why(svc, "the dispatch of %s to %s was not read", tid, dealer);
        return CRM_RETRY;
    }
    if (*dl->seq_err) {
        crm_service_why(svc, "Redis refused a command: %s", dl->seq_err);
        return CRM_REFUSE;
    }
    if (s_refused(svc, cu->h) || s_refused(svc, e->lead) || s_refused(svc, e->finds))
        return CRM_REFUSE;
    long long dealer_seq = dl->seq + 1;
    const redisReply *cust = cu->h, *lead = e->lead, *finds = e->finds;
    const char *cid = e->cid;
    crm_msg_t d;
    crm_msg_init(&d, CRM_T_dealer_dispatch);
    crm_fmt(d.stream, sizeof d.stream, "dealer.%s", dealer);
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
    CRM_SET_STR(&d, dealer_dispatch, reason_text, td->reason_dealer);
    for (size_t i = 0; finds && finds->type == REDIS_REPLY_ARRAY && i + 1 < finds->elements; i += 2) {
        const char *k = finds->element[i]->str, *v = finds->element[i + 1]->str;
        if (!k || !v)
            continue;
        const char *bar = strchr(v, '|'), *colon = strchr(k, ':');
        char *line = s_fmt("%.*s|%s|%s", colon ? (int) (colon - k) : 0, k, colon ? colon + 1 : k, bar ? bar + 1 : v);
        if (line)
            crm_strs_push(&d.body.dealer_dispatch.findings, line);
        free(line);
        d.body.dealer_dispatch.has.findings = true;
    }
    int64_t at = td->at;
    /* A customer nobody owns yet becomes this dealer's (the first dispatch
       of the transaction decides; the later ones see it owned). */
    if (!cu->claimed)
        uplink_claim_on_dispatch(tx, cid, dealer, cust);
    cu->claimed = true;
    int k = crm_tx_emit(tx, &d);
    crm_msg_clear(&d);
    if (k < 0)
        return CRM_RETRY;
    dl->seq = dealer_seq;
    int64_t now = crm_now_ms();
    char nows[24];
    crm_fmt(nows, sizeof nows, "%lld", (long long) now);
    char key[96], seqs[24];
    crm_fmt(key, sizeof key, CRM_KEY_TD_FMT, tid);
    crm_fmt(seqs, sizeof seqs, "%lld", dealer_seq);
    const char *argv[2 + S_REC_MAX + 8] = {"HSET", key};
    int argc = 2;
    for (int i = 0; rec && i + 1 < nrec && argc + 2 <= 2 + S_REC_MAX; i += 2)
        if (strcmp(rec[i], "status") && strcmp(rec[i], "dealer_id")) {
            argv[argc++] = rec[i];
            argv[argc++] = rec[i + 1];
        }
    const char *mine[] = {"status", "dispatched", "dispatched_ms", nows, "dealer_id", dealer, "dealer_seq", seqs};
    memcpy(argv + argc, mine, sizeof mine);
    argc += 8;
    crm_tx_cmdargv(tx, argc, argv, NULL);
    crm_tx_cmd(tx, "HSET crm:dealer:%s:seq2td %lld %s", dealer, dealer_seq, tid);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_testdrive_dispatched);
    CRM_SET_STR(&ev, testdrive_dispatched, testdrive_id, tid);
    CRM_SET_STR(&ev, testdrive_dispatched, dealer_id, dealer);
    CRM_SET_I64(&ev, testdrive_dispatched, dealer_seq, dealer_seq);
    CRM_SET_STR(&ev, testdrive_dispatched, reason, td->reason);
    CRM_SET_STR(&ev, testdrive_dispatched, reason_text, td->reason_text);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    /* Escalate if the dealer stays silent: a compact timer, decided when it
       falls due from the record (dispatch_on_fired). */
    int64_t when = dispatch_escalate_ms(now, at);
    char timer[CRM_ID_NAME_MAX + 8];
    crm_join(timer, sizeof timer, DISPATCH_ESCALATE_KIND, ':', tid);
    crm_tx_due(tx, DISPATCH_DUE, timer, when > now ? when : now);
    crm_info("testdrive.dispatched", "testdrive=%s dealer=%s escalate_at=%lld", tid, dealer, (long long) when);
    return CRM_APPLIED;
}

/* Every id of a bus event becomes part of keys: checked first. */
static bool s_ids_ok(crm_service_t *svc, const char *const *ids, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!crm_id_valid(CRM_ID_NAME, ids[i])) {
            crm_service_why(svc, "%s is not a valid id", names[i]);
            return false;
        }
    return true;
}

crm_handled_t dispatch_on_requested(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_testdrive_requested_t *r = &msg->body.testdrive_requested;
    const char *ids[] = {r->testdrive_id, r->lead_id, r->customer_id};
    static const char *const names[] = {"testdrive_id", "lead_id", "customer_id"};
    if (!s_ids_ok(svc, ids, names, 3))
        return CRM_REFUSE;
    if (r->at < 0 || r->at > S_AT_MAX) {
        crm_service_why(svc, "at: %lld is no time a test drive can have", (long long) r->at);
        return CRM_REFUSE;
    }
    crm_handled_t handled;
    s_pre_t *e = s_entry(svc, msg, r->testdrive_id, &handled);
    if (!e)
        return handled;
    if (zhashx_lookup(s_pf.taken, r->testdrive_id)) {
        e->done = true;
        return CRM_APPLIED; /* taken by an earlier message of the batch */
    }
    /* HGET status, not EXISTS: a key of another type there is no test
       drive of ours, and Redis says so (WRONGTYPE: refused, kept in
       crm:rejects). */
    if (s_refused(svc, e->td))
        return CRM_REFUSE;
    if (e->td->type == REDIS_REPLY_STRING) {
        e->done = true;
        return CRM_APPLIED; /* already taken (a replay of the stream) */
    }
    if (s_refused(svc, e->place))
        return CRM_REFUSE;
    if (s_ready(svc, tx, e) != 0)
        return CRM_RETRY;
    char day[40];
    int64_t day_end = s_cst_day(r->at, day, sizeof day);
    s_route_t route = {0};
    int routed = s_route(svc, e, r->dealer_id, day, &route);
    if (routed < 0) {
        s_route_clear(&route);
        return routed == -1 ? CRM_REFUSE : CRM_RETRY;
    }
    const char *reason = route.text ? route.text : "";
    int64_t now = crm_now_ms(), due = dispatch_due_ms(r->at);
    char at[24], nows[24], dues[24];
    crm_fmt(at, sizeof at, "%lld", (long long) r->at);
    crm_fmt(nows, sizeof nows, "%lld", (long long) now);
    crm_fmt(dues, sizeof dues, "%lld", (long long) due);
    const char *chosen = r->dealer_id && crm_id_valid(CRM_ID_NAME, r->dealer_id) ? r->dealer_id : "";
    const char *argv[] = {"HSET", NULL, "lead_id", r->lead_id, "customer_id", r->customer_id,
                          "model", r->model ? r->model : "", "at", at, "requested_ms", nows,
                          "reason", routed ? route.code : "none", "reason_text", reason,
                          "reason_dealer", route.dealer_text ? route.dealer_text : "",
                          "status", routed ? "routed" : "unrouted", "dealer_id", route.dealer,
                          "due_ms", dues, "chosen", chosen};
    char key[96];
    crm_fmt(key, sizeof key, CRM_KEY_TD_FMT, r->testdrive_id);
    argv[1] = key;
    _Static_assert(sizeof argv / sizeof argv[0] - 2 <= S_REC_MAX, "the record fits s_dispatch's HSET");
    /* dispatched at once: the record is written with the dispatch */
    bool now_due = routed && due <= now;
    if (!now_due)
        crm_tx_cmdargv(tx, (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    crm_tx_cmd(tx, "ZADD " CRM_KEY_TDS " %s %s", at, r->testdrive_id);
    /* The routing, the dispatch and the acknowledgement are the record's own
       (requested_ms and reason_text, dispatched_ms, acked_ms): its history
       stream is for what the dealer says of it (one stream less a test
       drive: Redis gives a new stream 4 KB until it is loaded again). */
    crm_info("testdrive.routed", "testdrive=%s dealer=%s reason=%s", r->testdrive_id, routed ? route.dealer : "-",
             routed ? route.code : "none");
    crm_handled_t rc = CRM_APPLIED;
    if (!routed) {
        crm_msg_t esc;
        crm_msg_init(&esc, CRM_T_testdrive_escalated);
        CRM_SET_STR(&esc, testdrive_escalated, testdrive_id, r->testdrive_id);
        CRM_SET_STR(&esc, testdrive_escalated, dealer_id, "");
        CRM_SET_STR(&esc, testdrive_escalated, reason, "no_dealer");
        crm_tx_emit(tx, &esc);
        crm_msg_clear(&esc);
        s_route_clear(&route);
        s_take(r->testdrive_id, "unrouted");
        s_done(e, tx);
        return CRM_APPLIED;
    }
    /* what the later messages of the batch see */
    char dk[CRM_ID_NAME_MAX + 48];
    crm_join(dk, sizeof dk, route.dealer, ' ', day);
    s_dealer_t *dl = zhashx_lookup(s_bt.dealers, route.dealer);
    s_day_t *bk = zhashx_lookup(s_bt.days, dk);
    crm_tx_cmd(tx, "SADD crm:dealer:%s:open %s", route.dealer, r->testdrive_id);
    crm_tx_cmd(tx, "INCR crm:dealer:%s:day:%s", route.dealer, day);
    if (!bk || !bk->expiry)
        crm_tx_cmd(tx, "PEXPIREAT crm:dealer:%s:day:%s %lld", route.dealer, day,
                   (long long) (day_end + S_DAY_KEEP_MS));
    if (dl)
        dl->open++;
    if (bk)
        bk->booked++;
    if (due <= now) {
        /* T-3 09:00 has passed: at once, in this same transaction. */
        s_td_t td = {r->lead_id, r->customer_id, r->model, route.code, reason, route.dealer_text, r->at};
        rc = s_dispatch(svc, tx, r->testdrive_id, route.dealer, &td, e, argv + 2,
                        (int) (sizeof argv / sizeof argv[0]) - 2);
    } else {
        /* testdrive.due at T-3 09:00 (dispatch_on_fired) */
        char timer[CRM_ID_NAME_MAX + 8];
        crm_join(timer, sizeof timer, DISPATCH_DUE_KIND, ':', r->testdrive_id);
        crm_tx_due(tx, DISPATCH_DUE, timer, due);
    }
    s_route_clear(&route);
    if (rc == CRM_APPLIED) {
        if (bk)
            bk->expiry = true; /* the next bookings of the day in this transaction need none */
        s_take(r->testdrive_id, due <= now ? "dispatched" : "routed");
        s_done(e, tx);
    }
    return rc;
}

crm_handled_t dispatch_on_due(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_testdrive_due_t *d = &msg->body.testdrive_due;
    const char *ids[] = {d->testdrive_id, d->dealer_id};
    static const char *const names[] = {"testdrive_id", "dealer_id"};
    if (!s_ids_ok(svc, ids, names, 2))
        return CRM_REFUSE;
    crm_handled_t handled;
    s_pre_t *e = s_entry(svc, msg, d->testdrive_id, &handled);
    if (!e)
        return handled;
    const char *taken = zhashx_lookup(s_pf.taken, d->testdrive_id);
    if (taken && !strcmp(taken, "dispatched")) {
        e->done = true;
        return CRM_APPLIED; /* dispatched by an earlier message of the batch */
    }
    if (s_refused(svc, e->td))
        return CRM_REFUSE;
    const redisReply *h = e->td;
    const char *status = crm_reply_field(h, "status");
    if (!status || strcmp(status, "routed")) {
        e->done = true;
        return CRM_APPLIED; /* cancelled, or dispatched already */
    }
    if (s_ready(svc, tx, e) != 0)
        return CRM_RETRY;
    const char *code = crm_reply_field(h, "reason");
    s_td_t td = {crm_reply_field(h, "lead_id"), crm_reply_field(h, "customer_id"), crm_reply_field(h, "model"),
                 code, crm_reply_field(h, "reason_text"), crm_reply_field(h, "reason_dealer"),
                 atoll(crm_reply_field_or(h, "at", "0"))};
    crm_handled_t rc = s_dispatch(svc, tx, d->testdrive_id, d->dealer_id, &td, e, NULL, 0);
    if (rc == CRM_APPLIED) {
        s_take(d->testdrive_id, "dispatched");
        s_done(e, tx);
    }
    return rc;
}

/* ------------------------------------------------------ dealer workflow */

/* Cancels the escalation of every test drive behind the numbers
   [from, upto] of the dealer's stream (at most DISPATCH_ACK_STEP), records
   the acknowledgement and forgets the numbers. Returns the last number
   handled, or -1 (store failure). */
static int64_t s_ack_step(crm_service_t *svc, crm_tx_t *tx, const char *dealer, uint64_t from, uint64_t upto)
{
    crm_store_t *store = crm_service_store(svc);
    uint64_t end = upto - from >= DISPATCH_ACK_STEP ? from + DISPATCH_ACK_STEP - 1 : upto;
    int64_t now = crm_now_ms();
    char nows[24], key[96];
    crm_fmt(nows, sizeof nows, "%lld", (long long) now);
    crm_fmt(key, sizeof key, "crm:dealer:%s:seq2td", dealer);
    const char **argv = calloc((size_t) (end - from + 3), sizeof *argv);
    char (*nums)[24] = calloc((size_t) (end - from + 1), sizeof *nums);
    if (!argv || !nums) {
        free(argv), free(nums);
        return -1;
    }
    argv[0] = "HMGET";
    argv[1] = key;
    int argc = 2;
    for (uint64_t k = from; k <= end; k++, argc++) {
        crm_fmt(nums[argc - 2], sizeof nums[0], "%llu", (unsigned long long) k);
        argv[argc] = nums[argc - 2];
    }
    redisReply *tids = crm_store_cmdargv(store, argc, argv, NULL);
    if (!tids) {
        free(argv), free(nums);
        return -1;
    }
    /* The escalation timers of them all in one command; the record of
       each. */
    size_t nt = 0, cap = tids->type == REDIS_REPLY_ARRAY ? tids->elements : 0;
    char (*timers)[48] = cap ? calloc(cap, sizeof *timers) : NULL;
    const char **tptr = cap ? calloc(cap, sizeof *tptr) : NULL;
    for (size_t i = 0; timers && tptr && i < cap; i++) {
        const redisReply *tid = tids->element[i];
        if (tid->type != REDIS_REPLY_STRING || !crm_id_valid(CRM_ID_NAME, tid->str))
            continue;
        crm_join(timers[nt], sizeof timers[0], DISPATCH_ESCALATE_KIND, ':', tid->str);
        tptr[nt] = timers[nt];
        nt++;
        crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " acked_ms %s", tid->str, nows);
    }
    bool oom = cap && (!timers || !tptr);
    if (!oom)
        crm_tx_due_cancel_many(tx, DISPATCH_DUE, tptr, nt);
    free(timers);
    free(tptr);
    freeReplyObject(tids);
    if (oom) {
        free(argv), free(nums);
        return -1;
    }
    /* The numbers are not needed once acknowledged: the map stays small. */
    argv[0] = "HDEL";
    crm_tx_cmdargv(tx, argc, argv, NULL);
    free(argv), free(nums);
    crm_tx_cmd(tx, "HSET " CRM_KEY_DEALER_FMT " acked %llu acked_ms %s", dealer, (unsigned long long) end, nows);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_testdrive_acked);
    CRM_SET_STR(&ev, testdrive_acked, dealer_id, dealer);
    CRM_SET_I64(&ev, testdrive_acked, dealer_seq, (int64_t) end);
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    return (int64_t) end;
}

crm_handled_t dispatch_on_ack(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const char *dealer = crm_req_peer(req);
    int64_t upto = crm_req_msg(req)->body.dealer_ack.upto;
    crm_store_t *store = crm_service_store(svc);
    int64_t last = gateway_last(store, dealer);
    if (last < 0)
        return crm_service_failed(svc);
    if (upto < 0)
        return crm_req_fail(req, "upto", "invalid", "a number of your stream (0 or more) expected");
    if (upto > last) {
        crm_warn("gateway.ack_refused", "dealer=%s upto=%lld last=%lld", dealer, (long long) upto, (long long) last);
        crm_req_fail(req, "upto", "beyond_last", "%lld is beyond the last number %lld of dealer.%s", (long long) upto,
                       (long long) last, dealer);
        CRM_SET_I64(crm_req_answer_msg(req), dealer_reply, last, last);
        return CRM_REFUSE;
    }
    redisReply *h = crm_store_cmd(store, "HMGET " CRM_KEY_DEALER_FMT " acked ack_pending", dealer);
    if (!h)
        return crm_service_failed(svc);
    uint64_t acked = h->elements == 2 && h->element[0]->type == REDIS_REPLY_STRING ? strtoull(h->element[0]->str, NULL, 10) : 0;
    uint64_t pending = h->elements == 2 && h->element[1]->type == REDIS_REPLY_STRING ? strtoull(h->element[1]->str, NULL, 10) : 0;
    freeReplyObject(h);
    crm_msg_t *a = gateway_reply_ok(req);
    CRM_SET_I64(a, dealer_reply, last, last);
    if ((uint64_t) upto <= acked || (uint64_t) upto <= pending)
        return CRM_APPLIED; /* an old ack again, or one being finished */
    int64_t done = s_ack_step(svc, tx, dealer, acked + 1, (uint64_t) upto);
    if (done < 0)
        return crm_service_failed(svc);
    if (done < upto) {
        crm_tx_cmd(tx, "HSET " CRM_KEY_DEALER_FMT " ack_pending %lld", dealer, (long long) upto);
        crm_tx_cmd(tx, "SADD " CRM_KEY_ACKS_PENDING " %s", dealer);
    }
    crm_info("dealer.acked", "dealer=%s upto=%lld done=%lld", dealer, (long long) upto, (long long) done);
    return CRM_APPLIED;
}

/* Acknowledgements longer than one step are durable as ack_pending and
   finished here, one step per dealer and tick. */
void dispatch_ack_tick(crm_service_t *svc)
{
    crm_store_t *store = crm_service_store(svc);
    /* A few dealers a tick: the rest are finished at the next ones. */
    redisReply *ids = crm_store_cmd(store, "SRANDMEMBER " CRM_KEY_ACKS_PENDING " 8");
    for (size_t i = 0; ids && ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        const char *dealer = ids->element[i]->str;
        if (!dealer || !crm_id_valid(CRM_ID_NAME, dealer))
            continue;
        redisReply *h = crm_store_cmd(store, "HMGET " CRM_KEY_DEALER_FMT " acked ack_pending", dealer);
        if (!h || h->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(h);
            break; /* Redis away or refusing: next tick */
        }
        uint64_t acked = h && h->elements == 2 && h->element[0]->type == REDIS_REPLY_STRING ? strtoull(h->element[0]->str, NULL, 10) : 0;
        uint64_t pending = h && h->elements == 2 && h->element[1]->type == REDIS_REPLY_STRING ? strtoull(h->element[1]->str, NULL, 10) : 0;
        freeReplyObject(h);
        if (!pending) {
            redisReply *x = crm_store_cmd(store, "SREM " CRM_KEY_ACKS_PENDING " %s", dealer);
            freeReplyObject(x);
            continue;
        }
        crm_tx_t *tx = crm_service_tx(svc);
        int64_t done = pending > acked ? s_ack_step(svc, tx, dealer, acked + 1, pending) : (int64_t) pending;
        if (done < 0)
            break;
        if ((uint64_t) done >= pending) {
            crm_tx_cmd(tx, "HDEL " CRM_KEY_DEALER_FMT " ack_pending", dealer);
            crm_tx_cmd(tx, "SREM " CRM_KEY_ACKS_PENDING " %s", dealer);
        }
        if (crm_service_commit(svc, tx) != 0) {
            crm_warn("dealer.ack_step_failed", "dealer=%s done=%lld pending=%llu", dealer, (long long) done,
                     (unsigned long long) pending);
            break;
        }
    }
    freeReplyObject(ids);
}

static bool s_terminal(const char *status)
{
    return status && (!strcmp(status, "completed") || !strcmp(status, "no_show") || !strcmp(status, "cancelled"));
}

crm_handled_t dispatch_on_status(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    static const char *allowed[] = {"received", "contacted", "confirmed", "completed", "no_show", "rescheduled", "cancelled"};
    const crm_body_dealer_status_t *st = &crm_req_msg(req)->body.dealer_status;
    const char *dealer = crm_req_peer(req), *tid = st->testdrive_id, *status = st->status;
    if (!crm_id_valid(CRM_ID_NAME, tid))
        return crm_req_fail(req, "testdrive_id", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    bool known = false;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        known |= !strcmp(status, allowed[i]);
    if (!known)
        return crm_req_fail(req, "status", "invalid", "must be received, contacted, confirmed, completed, no_show, rescheduled or cancelled");
    if ((!strcmp(status, "confirmed") || !strcmp(status, "rescheduled")) && !st->has.at)
        return crm_req_fail(req, "at", "required", "%s needs the agreed date and time", status);
    if (st->note && strlen(st->note) > 2000)
        return crm_req_fail(req, "note", "too_long", "at most 2000 bytes");
    redisReply *h = crm_store_cmd(crm_service_store(svc), "HMGET " CRM_KEY_TD_FMT " dealer_id status", tid);
    if (!h)
        return crm_service_failed(svc);
    const char *owner = h->elements == 2 && h->element[0]->type == REDIS_REPLY_STRING ? h->element[0]->str : NULL;
    const char *cur = h->elements == 2 && h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str : NULL;
    crm_handled_t rc = CRM_APPLIED;
    if (!owner || !cur || !strcmp(cur, "routed") || !strcmp(cur, "unrouted") || !*owner) {
        rc = crm_req_fail(req, "testdrive_id", "unknown_testdrive", "no test drive %s was dispatched", tid);
    } else if (strcmp(owner, dealer)) {
        rc = crm_req_fail(req, "testdrive_id", "not_yours", "%s was dispatched to another dealer", tid);
    } else if (!strcmp(cur, status) && !st->has.at) {
        gateway_reply_ok(req); /* the same report again (a client's retry): nothing new */
    } else if (s_terminal(cur)) {
        rc = crm_req_fail(req, "status", "closed", "the test drive is already %s", cur);
    } else {
        int64_t now = crm_now_ms();
        char nows[24], ats[24];
        crm_fmt(nows, sizeof nows, "%lld", (long long) now);
        crm_fmt(ats, sizeof ats, "%lld", (long long) st->at);
        crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " status %s status_ms %s", tid, status, nows);
        if (st->has.at && !strcmp(status, "rescheduled"))
            crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " at %s", tid, ats);
        if (st->has.at && !strcmp(status, "confirmed"))
            crm_tx_cmd(tx, "HSET " CRM_KEY_TD_FMT " confirmed_at %s", tid, ats);
        crm_tx_cmd(tx, "XADD " CRM_KEY_TD_FMT ":history * status %s by %s ts %s at %s note %s", tid, status, dealer, nows,
                   st->has.at ? ats : "", st->note ? st->note : "");
        if (s_terminal(status))
            crm_tx_cmd(tx, "SREM crm:dealer:%s:open %s", dealer, tid);
        crm_msg_t ev;
        crm_msg_init(&ev, CRM_T_testdrive_status);
        CRM_SET_STR(&ev, testdrive_status, testdrive_id, tid);
        CRM_SET_STR(&ev, testdrive_status, dealer_id, dealer);
        CRM_SET_STR(&ev, testdrive_status, status, status);
        if (st->has.at)
            CRM_SET_I64(&ev, testdrive_status, at, st->at);
        CRM_SET_STR(&ev, testdrive_status, note, st->note);
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
        gateway_reply_ok(req);
        crm_info("testdrive.status", "testdrive=%s dealer=%s status=%s", tid, dealer, status);
    }
    freeReplyObject(h);
    return rc;
}

/* ------------------------------------------------------ dealer registry */

/* A registry field's value: trimmed text of at most S_NAME_MAX bytes. */
static int s_text(crm_req_t *req, const char *field, const char *in, char *out, size_t size)
{
    char buf[512];
    if (!in || crm_norm_text(in, buf, sizeof buf) != 0 || !*buf || strlen(buf) > S_NAME_MAX) {
        crm_req_fail(req, field, "invalid", "1 to %d bytes of text", S_NAME_MAX);
        return -1;
    }
    crm_fmt(out, size, "%s", buf);
    return 0;
}

static int s_place(crm_req_t *req, const char *prov_in, const char *city_in, const char **prov, char *city, size_t csz)
{
    if (prov_in && crm_norm_province(prov_in, prov, NULL) != 0) {
        crm_req_fail(req, "province", "invalid", "%.60s is not one of the 34 provincial-level divisions", prov_in);
        return -1;
    }
    if (city_in && crm_norm_city(city_in, city, csz) != 0) {
        crm_req_fail(req, "city", "invalid", "%.60s is not a city name", city_in);
        return -1;
    }
    return 0;
}

static int s_region(crm_req_t *req, const char *given, const char *province, const char **out)
{
    const char *derived = crm_regions_of(s_regions, province);
    if (given && !crm_regions_has(s_regions, given)) {
        char list[600] = "";
        size_t used = 0;
        for (size_t i = 0; i < crm_regions_count(s_regions); i++) {
            int k = crm_fmt(list + used, sizeof list - used, "%s%s", i ? ", " : "", crm_regions_name(s_regions, i));
            if (k > 0 && (size_t) k < sizeof list - used)
                used += (size_t) k;
        }
        crm_req_fail(req, "region", "invalid", "%.60s is not a sales region (%s)", given, list);
        return -1;
    }
    *out = given ? given : derived;
    if (!*out) {
        crm_req_fail(req, "region", "required", "province %s is in no sales region; name the region", province);
        return -1;
    }
    return 0;
}

/* Working hours as given ("HH:MM-HH:MM", China time), written back in one
   canonical form ("9:00-18:00" becomes "09:00-18:00"). 0, or -1 after
   refusing the field. */
static int s_hours(crm_req_t *req, const char *in, char *out, size_t size)
{
    crm_hours_t h;
    if (!in || crm_hours_parse(in, &h) != 0) {
        crm_req_fail(req, "hours", "invalid", "HH:MM-HH:MM, China time, opening before closing (09:00-18:00)");
        return -1;
    }
    crm_fmt(out, size, "%02d:%02d-%02d:%02d", h.open_min / 60, h.open_min % 60, h.close_min / 60, h.close_min % 60);
    return 0;
}

crm_handled_t dispatch_on_register(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_dealer_register_t *b = &crm_req_msg(req)->body.dealer_register;
    if (!crm_id_valid(CRM_ID_NAME, b->dealer_id))
        return crm_req_fail(req, "dealer_id", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    char name[S_NAME_MAX + 1], city[128], address[S_NAME_MAX + 1] = "";
    const char *prov = NULL, *region = NULL;
    if (s_text(req, "name", b->name, name, sizeof name) != 0 ||
        s_place(req, b->province, b->city, &prov, city, sizeof city) != 0 ||
        (b->address && s_text(req, "address", b->address, address, sizeof address) != 0) ||
        s_region(req, b->region, prov, &region) != 0)
        return CRM_REFUSE;
    if (b->has.capacity && (b->capacity < 0 || b->capacity > 100000))
        return crm_req_fail(req, "capacity", "invalid", "0 (no limit) to 100000 test drives a day");
    char hours[48] = "";
    if (b->has.hours && s_hours(req, b->hours, hours, sizeof hours) != 0)
        return CRM_REFUSE;
    redisReply *e = crm_store_cmd(crm_service_store(svc), "EXISTS " CRM_KEY_DEALER_FMT, b->dealer_id);
    if (!e)
        return crm_service_failed(svc);
    bool exists = e->integer;
    freeReplyObject(e);
    if (exists)
        return crm_req_fail(req, "dealer_id", "exists", "dealer %s is registered already (crmctl dealer update)",
                            b->dealer_id);
    char nows[24], caps[24];
    crm_fmt(nows, sizeof nows, "%lld", (long long) crm_now_ms());
    crm_fmt(caps, sizeof caps, "%lld", (long long) b->capacity);
    const char *argv[20] = {"HSET", NULL, "name", name, "region", region, "province", prov, "city", city,
                            "state", "active", "created_ms", nows};
    int argc = 14;
    if (*address)
        argv[argc++] = "address", argv[argc++] = address;
    if (b->has.capacity)
        argv[argc++] = "capacity", argv[argc++] = caps;
    if (*hours)
        argv[argc++] = "hours", argv[argc++] = hours;
    char key[96];
    crm_fmt(key, sizeof key, CRM_KEY_DEALER_FMT, b->dealer_id);
    argv[1] = key;
    crm_tx_cmdargv(tx, argc, argv, NULL);
    crm_tx_cmd(tx, "SADD " CRM_KEY_DEALERS " %s", b->dealer_id);
    crm_tx_cmd(tx, "SADD crm:dealers:city:%s %s", city, b->dealer_id);
    crm_tx_cmd(tx, "SADD crm:dealers:province:%s %s", prov, b->dealer_id);
    crm_tx_cmd(tx, "SADD crm:dealers:region:%s %s", region, b->dealer_id);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_dealer_registered);
    CRM_SET_STR(&ev, dealer_registered, dealer_id, b->dealer_id);
    CRM_SET_STR(&ev, dealer_registered, name, name);
    CRM_SET_STR(&ev, dealer_registered, region, region);
    CRM_SET_STR(&ev, dealer_registered, province, prov);
    CRM_SET_STR(&ev, dealer_registered, city, city);
    CRM_SET_STR(&ev, dealer_registered, address, *address ? address : NULL);
    if (b->has.capacity)
        CRM_SET_I64(&ev, dealer_registered, capacity, b->capacity);
    CRM_SET_STR(&ev, dealer_registered, state, "active");
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    crm_msg_t *a = crm_req_ok(req, b->dealer_id);
    char line[300];
#define S_FIELD(k, v)                                                                               \
    crm_fmt(line, sizeof line, "%s=%s", k, v);                                                    \
    crm_strs_push(&a->body.reply.fields, line);
    S_FIELD("name", name) S_FIELD("region", region) S_FIELD("province", prov) S_FIELD("city", city)
    if (b->has.capacity) {
        S_FIELD("capacity", caps)
    } else {
        crm_fmt(caps, sizeof caps, "default (%lld)", (long long) dispatch_config.default_capacity);
        S_FIELD("capacity", caps)
    }
    S_FIELD("hours", *hours ? hours : "default")
    S_FIELD("state", "active")
#undef S_FIELD
    a->body.reply.has.fields = true;
    crm_info("dealer.registered", "dealer=%s city=%s region=%s", b->dealer_id, city, region);
    return CRM_APPLIED;
}

/* One field of an update, when it changes: the write and the event's entry. */
static void s_change(crm_tx_t *tx, crm_msg_t *ev, const char *key, const char *field, const char *value,
                     const char *old)
{
    if (!value || (old && !strcmp(value, old)))
        return;
    crm_tx_cmd(tx, "HSET %s %s %s", key, field, value);
    char *line = s_fmt("%s=%s", field, value);
    if (line)
        crm_strs_push(&ev->body.dealer_updated.changes, line);
    free(line);
}

crm_handled_t dispatch_on_update(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_body_dealer_update_t *b = &crm_req_msg(req)->body.dealer_update;
    if (!crm_id_valid(CRM_ID_NAME, b->dealer_id))
        return crm_req_fail(req, "dealer_id", "bad_id", "1 to %d letters, digits, '-' or '_'", CRM_ID_NAME_MAX);
    redisReply *h = crm_store_cmd(crm_service_store(svc), "HGETALL " CRM_KEY_DEALER_FMT, b->dealer_id);
    if (!h)
        return crm_service_failed(svc);
    crm_handled_t rc = CRM_APPLIED;
    char name[S_NAME_MAX + 1] = "", city[128] = "", address[S_NAME_MAX + 1] = "";
    const char *prov = NULL, *region = NULL;
    const char *old_city = crm_reply_field(h, "city"), *old_prov = crm_reply_field(h, "province"),
               *old_region = crm_reply_field(h, "region");
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_dealer_updated);
    if (!old_city) {
        rc = crm_req_fail(req, "dealer_id", "unknown", "no dealer %s", b->dealer_id);
        goto done;
    }
    if ((b->name && s_text(req, "name", b->name, name, sizeof name) != 0) ||
        (b->address && s_text(req, "address", b->address, address, sizeof address) != 0) ||
        s_place(req, b->province, b->city, &prov, city, sizeof city) != 0) {
        rc = CRM_REFUSE;
        goto done;
    }
    /* The region: as given, else the new province's (or left as it is). */
    if (b->region || prov) {
        if (s_region(req, b->region, prov ? prov : old_prov, &region) != 0) {
            if (b->region) {
                rc = CRM_REFUSE;
                goto done;
            }
            region = old_region; /* the new province is in no region: keep the old one */
        }
    }
    if (b->has.capacity && (b->capacity < -1 || b->capacity > 100000)) {
        rc = crm_req_fail(req, "capacity", "invalid", "-1 (the default), 0 (no limit) to 100000 test drives a day");
        goto done;
    }
    if (b->state && strcmp(b->state, "active") && strcmp(b->state, "suspended")) {
        rc = crm_req_fail(req, "state", "invalid", "active or suspended");
        goto done;
    }
    /* Working hours: empty clears them (the scheduler's default again). */
    char hours[48] = "";
    if (b->has.hours && b->hours && *b->hours && s_hours(req, b->hours, hours, sizeof hours) != 0) {
        rc = CRM_REFUSE;
        goto done;
    }
    char key[96], line[300];
    crm_fmt(key, sizeof key, CRM_KEY_DEALER_FMT, b->dealer_id);
#define S_CHANGE(field, value, old) s_change(tx, &ev, key, field, value, old);
    S_CHANGE("name", *name ? name : NULL, crm_reply_field(h, "name"))
    S_CHANGE("address", *address ? address : NULL, crm_reply_field(h, "address"))
    S_CHANGE("state", b->state, crm_reply_field(h, "state"))
    /* Routing sets move with the place. */
    if (*city && strcmp(city, old_city)) {
        crm_tx_cmd(tx, "SREM crm:dealers:city:%s %s", old_city, b->dealer_id);
        crm_tx_cmd(tx, "SADD crm:dealers:city:%s %s", city, b->dealer_id);
    }
    S_CHANGE("city", *city ? city : NULL, old_city)
    if (prov && old_prov && strcmp(prov, old_prov)) {
        crm_tx_cmd(tx, "SREM crm:dealers:province:%s %s", old_prov, b->dealer_id);
        crm_tx_cmd(tx, "SADD crm:dealers:province:%s %s", prov, b->dealer_id);
    }
    S_CHANGE("province", prov, old_prov)
    if (region && old_region && strcmp(region, old_region)) {
        crm_tx_cmd(tx, "SREM crm:dealers:region:%s %s", old_region, b->dealer_id);
        crm_tx_cmd(tx, "SADD crm:dealers:region:%s %s", region, b->dealer_id);
    }
    S_CHANGE("region", region, old_region)
#undef S_CHANGE
    if (b->has.capacity) {
        const char *old_cap = crm_reply_field(h, "capacity");
        char caps[24];
        crm_fmt(caps, sizeof caps, "%lld", (long long) b->capacity);
        if (b->capacity == -1 && old_cap) {
            crm_tx_cmd(tx, "HDEL %s capacity", key);
            crm_strs_push(&ev.body.dealer_updated.changes, "capacity=default");
        } else if (b->capacity >= 0 && (!old_cap || strcmp(old_cap, caps))) {
            crm_tx_cmd(tx, "HSET %s capacity %s", key, caps);
            crm_fmt(line, sizeof line, "capacity=%s", caps);
            crm_strs_push(&ev.body.dealer_updated.changes, line);
        }
    }
    if (b->has.hours) {
        const char *old_hours = crm_reply_field(h, "hours");
        if (!*hours && old_hours) {
            crm_tx_cmd(tx, "HDEL %s hours", key);
            crm_strs_push(&ev.body.dealer_updated.changes, "hours=default");
        } else if (*hours && (!old_hours || strcmp(old_hours, hours))) {
            crm_tx_cmd(tx, "HSET %s hours %s", key, hours);
            crm_fmt(line, sizeof line, "hours=%s", hours);
            crm_strs_push(&ev.body.dealer_updated.changes, line);
        }
    }
    crm_msg_t *a = crm_req_ok(req, b->dealer_id);
    if (!ev.body.dealer_updated.changes.n) {
        CRM_SET_STR(a, reply, message, "nothing changed");
        goto done;
    }
    for (size_t i = 0; i < ev.body.dealer_updated.changes.n; i++)
        crm_strs_push(&a->body.reply.fields, ev.body.dealer_updated.changes.v[i]);
    a->body.reply.has.fields = true;
    ev.body.dealer_updated.has.changes = true;
    CRM_SET_STR(&ev, dealer_updated, dealer_id, b->dealer_id);
    crm_tx_emit(tx, &ev);
    crm_info("dealer.updated", "dealer=%s changes=%zu", b->dealer_id, ev.body.dealer_updated.changes.n);
done:
    crm_msg_clear(&ev);
    freeReplyObject(h);
    return rc;
}

crm_handled_t dispatch_on_regions(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx)
{
    const crm_strs_t *lines = &crm_req_msg(req)->body.regions_load.regions;
    char err[300];
    crm_regions_t *r = crm_regions_parse((const char *const *) lines->v, lines->n, err, sizeof err);
    if (!r)
        return crm_req_fail(req, "regions", "invalid", "%s", err);
    /* A region dealers are in may not disappear: the regions in use are
       the routing sets of the table in force (one pipeline of SCARDs). */
    crm_handled_t rc = CRM_APPLIED;
    crm_tx_t *t = crm_tx_new("dispatcher", 0);
    size_t nold = crm_regions_count(s_regions);
    for (size_t i = 0; t && i < nold; i++)
        crm_tx_cmd(t, "SRANDMEMBER crm:dealers:region:%s 5", crm_regions_name(s_regions, i));
    if (!t || (nold && crm_store_pipeline(crm_service_store(svc), t) != 0)) {
        crm_tx_destroy(&t);
        crm_regions_destroy(&r);
        return crm_service_failed(svc);
    }
    for (size_t i = 0; rc == CRM_APPLIED && i < nold; i++) {
        const redisReply *c = crm_tx_result(t, (int) i);
        const char *name = crm_regions_name(s_regions, i);
        if (!c || c->type != REDIS_REPLY_ARRAY || c->elements == 0 || crm_regions_has(r, name))
            continue;
        char who[200] = "";
        size_t used = 0;
        for (size_t k = 0; k < c->elements && used < sizeof who - 1; k++)
            used += (size_t) crm_fmt(who + used, sizeof who - used, "%s%s", k ? ", " : "",
                                      c->element[k]->type == REDIS_REPLY_STRING ? c->element[k]->str : "?");
        rc = crm_req_fail(req, "regions", "in_use",
                          "region %s is the region of dealer(s) %s; keep it or move them to another region first",
                          name, who);
    }
    crm_tx_destroy(&t);
    if (rc != CRM_APPLIED) {
        crm_regions_destroy(&r);
        return rc;
    }
    crm_regions_write(r, tx);
    crm_msg_t ev;
    crm_msg_init(&ev, CRM_T_regions_loaded);
    crm_msg_t *a = crm_req_ok(req, NULL);
    for (size_t i = 0; i < crm_regions_count(r); i++) {
        crm_strs_push(&ev.body.regions_loaded.regions, crm_regions_line(r, i));
        crm_strs_push(&a->body.reply.fields, crm_regions_line(r, i));
    }
    ev.body.regions_loaded.has.regions = true;
    a->body.reply.has.fields = true;
    crm_tx_emit(tx, &ev);
    crm_msg_clear(&ev);
    /* In force for routing from the next message on (the commit follows at
       once; should it fail, the table is read back on the next start). */
    crm_regions_destroy(&s_regions);
    s_regions = r;
    crm_info("regions.loaded", "source=request regions=%zu", crm_regions_count(r));
    return CRM_APPLIED;
}

/* ---------------------------------------------------- dispatch timers */

/* The dispatcher's timers that fell due (timers.fired of set "dispatch",
   each "<due ms> <kind>:<test drive>"):
   - d: its T-3 09:00: a test drive still routed gets testdrive.due (its
     dispatch, dispatch_on_due);
   - e: its escalation: a test drive still not acknowledged since its
     dispatch is escalated, the reason told by the timer's due time (24 h
     after the dispatch, or earlier: the day before the test drive).
   The records are read in one pipeline; a timer naming no test drive of
   ours, or a record Redis refuses to read (a key of another type), is
   logged and passed over; Redis away, or no reply, retries the event. */
crm_handled_t dispatch_on_fired(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx)
{
    const crm_body_timers_fired_t *b = &msg->body.timers_fired;
    if (strcmp(b->set, DISPATCH_DUE))
        return CRM_APPLIED; /* another service's set */
    size_t n = b->timers.n;
    struct {
        const char *tid;
        int64_t due;
        char kind;
    } *tm = calloc(n ? n : 1, sizeof *tm);
    crm_tx_t *reads = crm_tx_new("dispatcher", 0);
    if (!tm || !reads) {
        free(tm);
        crm_tx_destroy(&reads);
        return CRM_RETRY;
    }
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = b->timers.v[i];
        char *sp;
        long long due = strtoll(e, &sp, 10);
        bool ok = sp != e && due >= 0 && sp[0] == ' ' && (sp[1] == 'd' || sp[1] == 'e') && sp[2] == ':';
        if (!ok || !crm_id_valid(CRM_ID_NAME, sp + 3)) {
            crm_warn("timer.unknown", "set=%s timer=\"%.100s\"", DISPATCH_DUE, e);
            continue;
        }
        tm[nr].tid = sp + 3;
        tm[nr].due = due;
        tm[nr++].kind = sp[1];
        crm_tx_cmd(reads, "HMGET " CRM_KEY_TD_FMT " dealer_id dispatched_ms acked_ms status", sp + 3);
    }
    crm_store_t *store = crm_service_store(svc);
    bool retry = nr && crm_store_pipeline(store, reads) != 0 && crm_store_passing(store);
    for (size_t i = 0; i < nr && !retry; i++)
        retry = !crm_tx_result(reads, (int) i); /* not asked (out of memory) or not answered */
    for (size_t i = 0; i < nr && !retry; i++) {
        const redisReply *r = crm_tx_result(reads, (int) i);
        const char *tid = tm[i].tid;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
            crm_warn("dispatcher.timer_unread", "testdrive=%s why=\"%.200s\"", tid,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not a reply of HMGET");
            continue;
        }
        const redisReply *dealer = r->element[0], *sent = r->element[1], *acked = r->element[2],
                         *status = r->element[3];
        if (!s_str(dealer) || !crm_id_valid(CRM_ID_NAME, dealer->str))
            continue; /* not routed to a dealer: nothing to dispatch or escalate */
        crm_msg_t ev;
        if (tm[i].kind == 'd') {
            if (!s_str(status) || strcmp(status->str, "routed"))
                continue; /* dispatched already, or taken out of routing */
            crm_msg_init(&ev, CRM_T_testdrive_due);
            CRM_SET_STR(&ev, testdrive_due, testdrive_id, tid);
            CRM_SET_STR(&ev, testdrive_due, dealer_id, dealer->str);
        } else {
            if (!s_str(sent))
                continue; /* never dispatched: nothing to escalate */
            long long sent_ms = atoll(sent->str);
            if (s_str(acked) && atoll(acked->str) >= sent_ms)
                continue; /* acknowledged since the dispatch */
            /* set at dispatch (s_dispatch): 24 h after it, or sooner (the day
               before the test drive, or at once when that has passed) */
            bool day = tm[i].due == sent_ms + dispatch_config.escalate_h * 3600 * 1000;
            crm_msg_init(&ev, CRM_T_testdrive_escalated);
            CRM_SET_STR(&ev, testdrive_escalated, testdrive_id, tid);
            CRM_SET_STR(&ev, testdrive_escalated, dealer_id, dealer->str);
            CRM_SET_STR(&ev, testdrive_escalated, reason, day ? "no_ack_24h" : "no_ack_before_t_minus_1");
            crm_info("testdrive.escalated", "testdrive=%s dealer=%s", tid, dealer->str);
        }
        crm_tx_emit(tx, &ev);
        crm_msg_clear(&ev);
    }
    free(tm);
    crm_tx_destroy(&reads);
    return retry ? CRM_RETRY : CRM_APPLIED;
}

/* Timers of an earlier release (whole envelopes in crm:timers:dispatch:
   "due:<T>", "escalate:<T>") become compact ones ("d:<T>", "e:<T>") with
   the same due time, in steps of a few hundred, so that an acknowledgement
   cancels an escalation. */
int dispatch_migrate_timers(crm_service_t *svc)
{
    crm_store_t *store = crm_service_store(svc);
    /* Inside MULTI/EXEC a ZADD Redis refuses (another type there) would not
       stop the ZREM of the old timers: asked first. */
    redisReply *t = crm_store_cmd(store, "TYPE " CRM_KEY_DUE_FMT, DISPATCH_DUE);
    if (!t)
        return crm_store_passing(store) ? -1 : 0;
    bool ours = t->type == REDIS_REPLY_STATUS && (!strcmp(t->str, "zset") || !strcmp(t->str, "none"));
    if (!ours)
        crm_error("dispatcher.timers_unmigrated", "why=\"" CRM_KEY_DUE_FMT " is a %s, not a sorted set\"",
                  DISPATCH_DUE, t->str ? t->str : "?");
    freeReplyObject(t);
    if (!ours)
        return 0;
    char cursor[32] = "0";
    long long moved = 0;
    do {
        redisReply *r = crm_store_cmd(store, "ZSCAN " CRM_KEY_TIMERS_FMT " %s COUNT 500", DISPATCH_TIMERS, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !s_str(r->element[0]) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            /* Redis away: no start; a set Redis will not scan (another type
               there) is not ours to mend: its timers stay as they are */
            bool away = !r && crm_store_passing(store);
            crm_error("dispatcher.timers_unmigrated", "why=\"%s\"", r ? "not a reply of ZSCAN" : crm_store_error(store));
            freeReplyObject(r);
            return away ? -1 : 0;
        }
        crm_fmt(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *items = r->element[1];
        const char **old = calloc(items->elements / 2 + 1, sizeof *old);
        crm_tx_t *tx = crm_tx_new("dispatcher", 0);
        if (!old || !tx) {
            free(old);
            crm_tx_destroy(&tx);
            freeReplyObject(r);
            return -1;
        }
        size_t k = 0;
        for (size_t i = 0; i + 1 < items->elements; i += 2) {
            const char *id = items->element[i]->str, *score = items->element[i + 1]->str;
            bool esc = id && !strncmp(id, "escalate:", 9), due = id && !strncmp(id, "due:", 4);
            const char *tid = esc ? id + 9 : due ? id + 4 : NULL;
            if (!score || !tid || !crm_id_valid(CRM_ID_NAME, tid))
                continue; /* fires as it is */
            char timer[CRM_ID_NAME_MAX + 8];
            crm_join(timer, sizeof timer, esc ? DISPATCH_ESCALATE_KIND : DISPATCH_DUE_KIND, ':', tid);
            crm_tx_due(tx, DISPATCH_DUE, timer, atoll(score));
            old[k++] = id;
        }
        crm_tx_timer_cancel_many(tx, DISPATCH_TIMERS, old, k);
        int rc = k ? crm_store_commit(store, tx) : 0;
        free(old);
        crm_tx_destroy(&tx);
        freeReplyObject(r);
        if (rc != 0) {
            crm_error("dispatcher.timers_unmigrated", "why=\"%s\"", crm_store_error(store));
            return crm_store_passing(store) ? -1 : 0;
        }
        moved += (long long) k;
    } while (strcmp(cursor, "0"));
    if (moved)
        crm_info("dispatcher.timers_migrated", "count=%lld from=" CRM_KEY_TIMERS_FMT " to=" CRM_KEY_DUE_FMT, moved,
                 DISPATCH_TIMERS, DISPATCH_DUE);
    return 0;
}
