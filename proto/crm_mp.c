#include "crm_mp.h"

#include <string.h>

void crm_mp_init(crm_mp_t *r, const void *data, size_t len)
{
    r->p = data;
    r->end = r->p + len;
}

size_t crm_mp_left(const crm_mp_t *r) { return (size_t) (r->end - r->p); }

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

crm_mp_kind_t crm_mp_peek(const crm_mp_t *r)
{
    if (r->p >= r->end)
        return CRM_MP_BAD;
    uint8_t b = *r->p;
    if (b <= 0x7f || b >= 0xe0)
        return CRM_MP_INT;
    if (b >= 0x80 && b <= 0x8f)
        return CRM_MP_MAP;
    if (b >= 0x90 && b <= 0x9f)
        return CRM_MP_ARRAY;
    if (b >= 0xa0 && b <= 0xbf)
        return CRM_MP_STR;
    switch (b) {
    case 0xc0: return CRM_MP_NIL;
    case 0xc2: case 0xc3: return CRM_MP_BOOL;
    case 0xc4: case 0xc5: case 0xc6: return CRM_MP_BIN;
    case 0xc7: case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return CRM_MP_EXT;
    case 0xca: case 0xcb: return CRM_MP_FLOAT;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return CRM_MP_INT;
    case 0xd9: case 0xda: case 0xdb: return CRM_MP_STR;
    case 0xdc: case 0xdd: return CRM_MP_ARRAY;
    case 0xde: case 0xdf: return CRM_MP_MAP;
    default: return CRM_MP_BAD; /* 0xc1 is never used */
    }
}

const char *crm_mp_kind_name(crm_mp_kind_t kind)
{
    static const char *names[] = {"invalid", "nil", "bool", "integer", "float",
                                  "string", "binary", "array", "map", "extension"};
    return (unsigned) kind < sizeof names / sizeof names[0] ? names[kind] : "invalid";
}

/* Reads a length-prefixed header: `fix` is the value carried in a fixed
   form (or -1), `width` the size of the length field that follows. */
static int s_header(crm_mp_t *r, int width, uint32_t fix, uint64_t *count)
{
    if (width == 0) {
        *count = fix;
        r->p += 1;
        return 0;
    }
    if (crm_mp_left(r) < (size_t) (1 + width))
        return -1;
    *count = s_be(r->p + 1, width);
    r->p += 1 + width;
    return 0;
}

static int s_container(crm_mp_t *r, crm_mp_kind_t kind, uint32_t *count, unsigned per_item)
{
    if (crm_mp_peek(r) != kind)
        return -1;
    const uint8_t *start = r->p;
    uint8_t b = *r->p;
    uint64_t n;
    int width = 0;
    if (kind == CRM_MP_MAP)
        width = b == 0xde ? 2 : b == 0xdf ? 4 : 0;
    else
        width = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if (s_header(r, width, b & 0x0f, &n) != 0)
        return -1;
    /* Every element takes at least one byte: refuse a count the rest of the
       frame cannot hold, before anybody sizes anything by it. */
    if (n * per_item > crm_mp_left(r)) {
        r->p = start;
        return -1;
    }
    *count = (uint32_t) n;
    return 0;
}

int crm_mp_map(crm_mp_t *r, uint32_t *count) { return s_container(r, CRM_MP_MAP, count, 2); }

int crm_mp_array(crm_mp_t *r, uint32_t *count) { return s_container(r, CRM_MP_ARRAY, count, 1); }

static int s_bytes(crm_mp_t *r, const char **str, uint32_t *len, bool bin)
{
    const uint8_t *start = r->p;
    uint8_t b = *r->p;
    uint64_t n;
    int rc;
    if (bin)
        rc = s_header(r, b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4, 0, &n);
    else if (b >= 0xa0 && b <= 0xbf)
        rc = s_header(r, 0, b & 0x1f, &n);
    else
        rc = s_header(r, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, 0, &n);
    if (rc != 0 || n > crm_mp_left(r)) {
        r->p = start;
        return -1;
    }
    *str = (const char *) r->p;
    *len = (uint32_t) n;
    r->p += n;
    return 0;
}

int crm_mp_str(crm_mp_t *r, const char **str, uint32_t *len)
{
    if (crm_mp_peek(r) != CRM_MP_STR)
        return -1;
    return s_bytes(r, str, len, false);
}

int crm_mp_bin(crm_mp_t *r, const char **data, uint32_t *len)
{
    if (crm_mp_peek(r) != CRM_MP_BIN)
        return -1;
    return s_bytes(r, data, len, true);
}

/* Integers: fixed forms and the 1/2/4/8-byte signed and unsigned forms.
   `neg` tells the caller that the value did not fit the unsigned range. */
static int s_int(crm_mp_t *r, uint64_t *u, int64_t *s, bool *is_signed)
{
    if (crm_mp_peek(r) != CRM_MP_INT)
        return -1;
    uint8_t b = *r->p;
    if (b <= 0x7f) {
        *u = b;
        *is_signed = false;
        r->p++;
        return 0;
    }
    if (b >= 0xe0) {
        *s = (int8_t) b;
        *is_signed = true;
        r->p++;
        return 0;
    }
    int width = 1 << ((b - 0xcc) & 3);
    if (crm_mp_left(r) < (size_t) (1 + width))
        return -1;
    uint64_t v = s_be(r->p + 1, width);
    r->p += 1 + width;
    if (b <= 0xcf) {
        *u = v;
        *is_signed = false;
    } else {
        *is_signed = true;
        switch (width) {
        case 1: *s = (int8_t) v; break;
        case 2: *s = (int16_t) v; break;
        case 4: *s = (int32_t) v; break;
        default: memcpy(s, &v, sizeof v); break;
        }
    }
    return 0;
}

int crm_mp_i64(crm_mp_t *r, int64_t *value)
{
    const uint8_t *start = r->p;
    uint64_t u;
    int64_t s;
    bool is_signed;
    if (s_int(r, &u, &s, &is_signed) != 0)
        return -1;
    if (!is_signed) {
        if (u > INT64_MAX) {
            r->p = start;
            return -1;
        }
        s = (int64_t) u;
    }
    *value = s;
    return 0;
}

int crm_mp_u64(crm_mp_t *r, uint64_t *value)
{
    const uint8_t *start = r->p;
    uint64_t u;
    int64_t s;
    bool is_signed;
    if (s_int(r, &u, &s, &is_signed) != 0)
        return -1;
    if (is_signed) {
        if (s < 0) {
            r->p = start;
            return -1;
        }
        u = (uint64_t) s;
    }
    *value = u;
    return 0;
}

int crm_mp_bool(crm_mp_t *r, bool *value)
{
    if (crm_mp_peek(r) != CRM_MP_BOOL)
        return -1;
    *value = *r->p == 0xc3;
    r->p++;
    return 0;
}

int crm_mp_skip(crm_mp_t *r, int depth)
{
    const uint8_t *start = r->p;
    const char *s;
    uint32_t n;
    uint64_t u;
    int64_t i;
    bool b;
    uint8_t tag = r->p < r->end ? *r->p : 0;
    switch (crm_mp_peek(r)) {
    case CRM_MP_NIL: r->p++; return 0;
    case CRM_MP_BOOL: return crm_mp_bool(r, &b);
    case CRM_MP_INT: return s_int(r, &u, &i, &b);
    case CRM_MP_FLOAT: {
        size_t w = tag == 0xca ? 4 : 8;
        if (crm_mp_left(r) < 1 + w)
            return -1;
        r->p += 1 + w;
        return 0;
    }
    case CRM_MP_STR: return crm_mp_str(r, &s, &n);
    case CRM_MP_BIN: return s_bytes(r, &s, &n, true);
    case CRM_MP_EXT: {
        static const uint8_t fixlen[] = {1, 2, 4, 8, 16};
        size_t need;
        if (tag >= 0xd4 && tag <= 0xd8) {
            need = 2 + (size_t) fixlen[tag - 0xd4];
        } else {
            int width = tag == 0xc7 ? 1 : tag == 0xc8 ? 2 : 4;
            if (crm_mp_left(r) < (size_t) (1 + width))
                return -1;
            need = 1 + (size_t) width + 1 + s_be(r->p + 1, width);
        }
        if (crm_mp_left(r) < need)
            return -1;
        r->p += need;
        return 0;
    }
    case CRM_MP_ARRAY:
    case CRM_MP_MAP: {
        if (depth <= 0)
            return -1;
        bool map = crm_mp_peek(r) == CRM_MP_MAP;
        if ((map ? crm_mp_map(r, &n) : crm_mp_array(r, &n)) != 0)
            return -1;
        uint64_t items = map ? 2ull * n : n;
        for (uint64_t k = 0; k < items; k++)
            if (crm_mp_skip(r, depth - 1) != 0) {
                r->p = start;
                return -1;
            }
        return 0;
    }
    default: return -1;
    }
}
