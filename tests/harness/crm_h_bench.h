/*  crm_h_bench: what the benchmarks' lead submitters share. */
#ifndef CRM_H_BENCH_H
#define CRM_H_BENCH_H

#include <czmq.h>

#include "crm_proto.h"
#include "crm_store.h"

/* The benchmarks' website lead: envelope "<prefix>-<w>-<i>", submission
   "<prefix>:<w>:<i>", a mobile of its own for each (w, i), in 上海. */
void crm_h_bench_lead(crm_msg_t *m, const char *prefix, int w, int i);
/* Encodes `m` (then cleared), sends it on the REQ socket `req` and waits
   for the answer: its frame (the caller destroys it), or NULL after the
   socket's receive timeout. */
zframe_t *crm_h_bench_ask(zsock_t *req, crm_msg_t *m);
/* One submitter: `count` of crm_h_bench_lead(prefix, w, 0..count-1) sent to
   `endpoint` over a REQ socket, each after the answer to the one before
   (each waited for up to `timeout_ms`). How many were answered. */
long crm_h_bench_submit(const char *endpoint, const char *prefix, int w, int count, int timeout_ms);
/* Adds to `tx` the testdrive.requested crm-intake would emit for test
   drive `tid` of lead L1 and customer C1 at `at` (ms), for `dealer` (NULL:
   none chosen, routed). */
void crm_h_bench_testdrive(crm_tx_t *tx, const char *tid, const char *dealer, int64_t at);
/* The same for lead `lid` and customer `cid`. */
void crm_h_testdrive(crm_tx_t *tx, const char *tid, const char *lid, const char *cid, const char *dealer,
                     int64_t at);

/* Redis's AOF rewrites so far, one more while one runs (INFO persistence;
   -1 when Redis does not say). */
long long crm_h_aof_mark(crm_store_t *store);
/* "" when Redis has not rewritten its append-only file since `mark`, else
   a note saying it did: a rewrite forks and takes a core of two. */
const char *crm_h_aof_note(crm_store_t *store, long long mark);
/* Turns Redis's automatic AOF rewrites off for a timed run (CONFIG SET
   auto-aof-rewrite-percentage 0) unless BENCH_AOF_REWRITE is set: where a
   rewrite's fork fell decided a run's figure more than the code did. Returns
   what to print on the header line. */
const char *crm_h_aof_hold(crm_store_t *store);

#endif
