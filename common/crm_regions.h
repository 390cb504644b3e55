/*  crm_regions: the carmaker's sales regions, as data.
 *
 *  A region is a name and the provinces it holds; every province is in at
 *  most one region. The table in force lives in Redis (crm:regions: province
 *  -> region, crm:regions:table: one "region=province,..." line per region,
 *  in order), written only by crm-dispatcher (on its first start from the
 *  table built into the programs, common/data/sales_regions.txt, and on the
 *  request regions.load). Routing, the dealer registry and the audit's
 *  comparison within a region all read it from there.
 */
#ifndef CRM_REGIONS_H
#define CRM_REGIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "crm_store.h"

typedef struct crm_regions_t crm_regions_t;

/* Parses lines "region = province, province ..." (# comments and blank
   lines skipped; separators , 、 ， or spaces; provinces in any form
   crm_norm_province knows). NULL with err naming the line and what is
   wrong (an unknown province, one in two regions, an empty region). */
crm_regions_t *crm_regions_parse(const char *const *lines, size_t n, char *err, size_t errsz);
/* Splits `text` into lines and parses them. */
crm_regions_t *crm_regions_parse_text(const char *text, char *err, size_t errsz);
/* The table built into the programs. */
crm_regions_t *crm_regions_default(void);
extern const char crm_regions_default_text[];
/* The table in force, from Redis; 0 with *out NULL when none is stored
   yet, -1 when Redis failed. */
int crm_regions_read(crm_store_t *store, crm_regions_t **out);
/* Queues the commands that make `r` the table in force. */
void crm_regions_write(const crm_regions_t *r, crm_tx_t *tx);
void crm_regions_destroy(crm_regions_t **r_p);

/* The region of a canonical province name (广东省 -> 华南), or NULL. */
const char *crm_regions_of(const crm_regions_t *r, const char *province);
bool crm_regions_has(const crm_regions_t *r, const char *region);
size_t crm_regions_count(const crm_regions_t *r);
const char *crm_regions_name(const crm_regions_t *r, size_t i);
/* Line i in the stored form "region=province,province". */
const char *crm_regions_line(const crm_regions_t *r, size_t i);

#endif
