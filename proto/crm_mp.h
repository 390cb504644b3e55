/*  crm_mp: a bounded msgpack reader for bytes that came from outside.
 *
 *  msgpack-c's unpacker allocates whatever a header claims, so a five-byte
 *  frame can ask for gigabytes. This reader never allocates: it walks a byte
 *  range, and every header that claims elements or bytes is checked against
 *  what remains before the caller sees it. Encoding uses msgpack-c as is.
 */
#ifndef CRM_MP_H
#define CRM_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} crm_mp_t;

/* Kinds of the next object, for type checks that name what was found. */
typedef enum {
    CRM_MP_BAD = 0, CRM_MP_NIL, CRM_MP_BOOL, CRM_MP_INT, CRM_MP_FLOAT,
    CRM_MP_STR, CRM_MP_BIN, CRM_MP_ARRAY, CRM_MP_MAP, CRM_MP_EXT
} crm_mp_kind_t;

void crm_mp_init(crm_mp_t *r, const void *data, size_t len);
size_t crm_mp_left(const crm_mp_t *r);
crm_mp_kind_t crm_mp_peek(const crm_mp_t *r);
const char *crm_mp_kind_name(crm_mp_kind_t kind);

/* Each returns 0 and advances, or -1 and leaves the cursor where it was
   (wrong type, truncated, or a count larger than the bytes left). */
int crm_mp_map(crm_mp_t *r, uint32_t *count);
int crm_mp_array(crm_mp_t *r, uint32_t *count);
int crm_mp_str(crm_mp_t *r, const char **str, uint32_t *len);
int crm_mp_bin(crm_mp_t *r, const char **data, uint32_t *len);
int crm_mp_i64(crm_mp_t *r, int64_t *value);
int crm_mp_u64(crm_mp_t *r, uint64_t *value);
int crm_mp_bool(crm_mp_t *r, bool *value);
/* Skips one object of any kind, nested at most `depth` levels. */
int crm_mp_skip(crm_mp_t *r, int depth);

#endif
