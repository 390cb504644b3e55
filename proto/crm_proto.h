/*  crm_proto: every autocrm message, derived from proto/messages.def.
 *
 *  A message on the wire is one msgpack map, the envelope:
 *      v, type, id, stream, seq, ts, producer, corr (optional), body
 *  where body is a map of the message's own fields. Nothing here does I/O,
 *  so the codec can be fuzzed and tested alone.
 */
#ifndef CRM_PROTO_H
#define CRM_PROTO_H

#include <msgpack.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "messages.def"

/* Limits for hostile input; a frame over CRM_FRAME_MAX is refused unread. */
#define CRM_FRAME_MAX (256 * 1024)
#define CRM_STR_MAX (64 * 1024)
#define CRM_STRS_MAX 1024
#define CRM_ID_MAX 64   /* message and correlation ids, including the NUL */
#define CRM_NAME_MAX 48 /* stream and producer names, including the NUL */

typedef struct {
    size_t n;
    char **v;
} crm_strs_t;

typedef struct {
    size_t n;
    unsigned char *v;
} crm_bin_t;

#define CRM_CTYPE_STR char *
#define CRM_CTYPE_BIN crm_bin_t
#define CRM_CTYPE_I64 int64_t
#define CRM_CTYPE_BOOL bool
#define CRM_CTYPE_STRS crm_strs_t

typedef enum {
    CRM_T_NONE = 0,
#define CRM__M_ENUM(ident, wire, stream, doc) CRM_T_##ident,
    CRM_MESSAGES(CRM__M_ENUM)
#undef CRM__M_ENUM
    CRM_T__COUNT
} crm_type_t;

#define CRM__F_MEMBER(msg, field, type, req, doc) CRM_CTYPE_##type field;
#define CRM__F_HAS(msg, field, type, req, doc) bool field;
#define CRM__M_STRUCT(ident, wire, stream, doc)                                                    \
    typedef struct {                                                                               \
        struct {                                                                                   \
            bool _none;                                                                            \
            CRM_FIELDS_##ident(CRM__F_HAS)                                                         \
        } has;                                                                                     \
        CRM_FIELDS_##ident(CRM__F_MEMBER)                                                          \
    } crm_body_##ident##_t;
CRM_MESSAGES(CRM__M_STRUCT)
#undef CRM__M_STRUCT
#undef CRM__F_HAS
#undef CRM__F_MEMBER

typedef struct {
    uint32_t v;
    crm_type_t type;
    char id[CRM_ID_MAX];
    char stream[CRM_NAME_MAX];
    uint64_t seq;
    int64_t ts;
    char producer[CRM_NAME_MAX];
    char corr[CRM_ID_MAX];
    union {
#define CRM__M_UNION(ident, wire, stream, doc) crm_body_##ident##_t ident;
        CRM_MESSAGES(CRM__M_UNION)
#undef CRM__M_UNION
    } body;
} crm_msg_t;

/* Error codes of the decoder; the field names where it went wrong. */
typedef enum {
    CRM_E_OK = 0,
    CRM_E_SIZE,      /* frame empty or over CRM_FRAME_MAX */
    CRM_E_MALFORMED, /* not msgpack, truncated, or counts beyond the frame */
    CRM_E_TYPE,      /* a field of the wrong type */
    CRM_E_MISSING,   /* a required field is absent */
    CRM_E_UNKNOWN,   /* a message type this build does not know */
    CRM_E_VERSION,   /* a schema version newer than this build */
    CRM_E_TOOLONG    /* a string or list over its limit */
} crm_errcode_t;

typedef struct {
    crm_errcode_t code;
    char field[64];
    char text[192];
} crm_err_t;

const char *crm_errcode_name(crm_errcode_t code);

/* The UTF-8 sequence at p (n bytes left): its length 1-4 with its code
   point in *cp, 0 when the bytes are not UTF-8 (overlongs and surrogates
   included), -1 when the sequence runs past n. The one decoder every
   check of text from outside uses. */
int crm_utf8_next(const unsigned char *p, size_t n, uint32_t *cp);
/* Cuts a UTF-8 sequence left unfinished at the end of s (valid UTF-8 that
   snprintf cut at its buffer's end), so s ends at a character boundary. */
void crm_utf8_cut(char *s);

/* The message table. */
const char *crm_type_name(crm_type_t type);
const char *crm_type_stream(crm_type_t type);
const char *crm_type_doc(crm_type_t type);
crm_type_t crm_type_from_name(const char *name, size_t len);

/* Prepares `msg` for `type`: zeroed, schema version and stream set. */
void crm_msg_init(crm_msg_t *msg, crm_type_t type);
/* Frees the strings a decoder or a setter allocated; the message can be
   reused after crm_msg_init. Safe to call twice. */
void crm_msg_clear(crm_msg_t *msg);

/* Copies `value` into a body string field (NULL clears it). 0 or -1. */
int crm_strdup_into(char **field, const char *value);
int crm_strs_push(crm_strs_t *list, const char *value);
/* Copies `n` bytes into a body BIN field. 0 or -1. */
int crm_bin_set(crm_bin_t *bin, const void *data, size_t n);
#define CRM_SET_STR(msg, ident, field, value)                                                      \
    (crm_strdup_into(&(msg)->body.ident.field, (value)) == 0                                       \
         ? ((msg)->body.ident.has.field = (value) != NULL, 0)                                      \
         : -1)
#define CRM_SET_I64(msg, ident, field, value)                                                      \
    ((msg)->body.ident.field = (value), (msg)->body.ident.has.field = true)
#define CRM_SET_BOOL CRM_SET_I64
#define CRM_SET_BIN(msg, ident, field, data, len)                                                 \
    (crm_bin_set(&(msg)->body.ident.field, (data), (len)) == 0                                     \
         ? ((msg)->body.ident.has.field = true, 0)                                                 \
         : -1)

/* Sets the body field `field` of `msg` (already crm_msg_init'ed) from
   text, as a CSV cell or a command-line flag gives it: STR as is; I64 an
   optional sign and decimal digits; BOOL 1/0, true/false, yes/no, y/n,
   是/否 (case aside); STRS appends one entry. 0; 1 when the message has no
   such field; -1 with `err` (naming "body.<field>") for a value of the
   wrong form, or on allocation failure. */
int crm_msg_set_text(crm_msg_t *msg, const char *field, const char *text, crm_err_t *err);
/* The type of a body field ("STR", "I64", "BOOL", "STRS", "BIN"), or NULL
   when the message type has no such field. */
const char *crm_msg_field_type(crm_type_t type, const char *field);

/* Appends the encoded envelope to `out`. The sequence number is always
   written as a fixed 8-byte integer, and its offset is stored in *seq_off
   (if not NULL) so that the store can patch it when it allocates the
   number. Returns 0 or -1 (allocation failure). */
int crm_msg_encode(const crm_msg_t *msg, msgpack_sbuffer *out, size_t *seq_off);
/* msgpack_sbuffer_init with room for `cap` bytes at first (msgpack-c's own
   first allocation is 8 KB, a slow one for the C library's allocator,
   where an envelope takes a few hundred bytes); it grows as usual, and
   starts empty when the allocation fails. */
static inline void crm_sbuffer_init(msgpack_sbuffer *buf, size_t cap)
{
    msgpack_sbuffer_init(buf);
    if ((buf->data = malloc(cap)))
        buf->alloc = cap;
}
/* Writes `seq` big-endian at `off` in an encoded frame. */
void crm_frame_patch_seq(void *frame, size_t off, uint64_t seq);

/* Decodes one frame into `msg` (which it initialises). On failure returns -1,
   fills `err` and leaves nothing allocated; msg->type and msg->id keep what
   was read before the failure (so an answer can still name the request).
   Unknown fields are ignored. */
int crm_msg_decode(const void *data, size_t len, crm_msg_t *msg, crm_err_t *err);

/* The compact form, for what Redis keeps rather than what the bus carries
   (a kept answer): a msgpack array [v, type, ts, shape, body fields in the
   order of messages.def, nil where absent]. id, stream, seq, producer and
   corr are not kept: the keeper fills them again. `shape` is a 16-bit hash
   of the type's field names, so a form written by a build whose fields
   differ is refused rather than read into the wrong fields. */
int crm_msg_encode_compact(const crm_msg_t *msg, msgpack_sbuffer *out);
/* Decodes a kept message: the compact form, or a whole envelope as
   crm_msg_decode reads it (what was kept before the compact form). */
int crm_msg_decode_kept(const void *data, size_t len, crm_msg_t *msg, crm_err_t *err);

/* One line of JSON for people and tools (crmctl, logs). Strings are escaped;
   the caller frees the result. NULL on allocation failure. */
char *crm_msg_to_json(const crm_msg_t *msg);

/* Writes the Markdown reference of every message (proto/README.md). */
void crm_proto_write_reference(FILE *out);

#endif
