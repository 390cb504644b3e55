/*  fuzz_common.h: what every lead-converter fuzz target checks of what it
 *  gets back. Header-only: each target is one file plus this.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_leadin.h"

static inline void fz_die(const char *target, const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s\n  %s\n", target, what, detail ? detail : "(null)");
    abort();
}

/* A reason is NUL-terminated inside its array and one line. */
static inline void fz_reason(const char *target, const char *err, size_t errsz, bool want_text)
{
    if (!memchr(err, '\0', errsz))
        fz_die(target, "a reason is not NUL-terminated", NULL);
    if (strchr(err, '\n'))
        fz_die(target, "a reason spans lines", err);
    if (want_text && !*err)
        fz_die(target, "a failure without a reason", NULL);
}

/* Well-formed UTF-8 (no overlong forms, surrogates or values past
   U+10FFFF). */
static inline bool fz_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (n == 0)
            return false;
        unsigned v = n == 1 ? c : c & (0x7F >> n);
        for (int k = 1; k < n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            v = (v << 6) | (p[k] & 0x3F);
        }
        if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
            (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
            return false;
        p += n;
    }
    return true;
}

/* Every string of a converted lead is UTF-8, the id the rules promise is
   set, and the lead travels. */
static inline void fz_lead(const char *target, const crm_msg_t *m, const char *channel)
{
    const crm_body_lead_submit_t *b = &m->body.lead_submit;
#define FZ_F(msg, field, type, req, doc) FZ_F_##type(field)
#define FZ_F_STR(field)                                                                            \
    if (b->field && !fz_utf8(b->field))                                                            \
        fz_die(target, "a field is not UTF-8: " #field, NULL);
#define FZ_F_I64(field)
#define FZ_F_BOOL(field)
#define FZ_F_STRS(field)
    CRM_FIELDS_lead_submit(FZ_F)
#undef FZ_F
#undef FZ_F_STR
#undef FZ_F_I64
#undef FZ_F_BOOL
#undef FZ_F_STRS
    if (m->type != CRM_T_lead_submit || !b->submission_id || !*b->submission_id)
        fz_die(target, "a lead without a submission_id", NULL);
    if (!b->channel || (channel && strcmp(b->channel, channel) != 0))
        fz_die(target, "a lead with the wrong channel", b->channel);
    char key[CRM_LEADIN_KEY_SZ];
    if (crm_leadin_content_key(b, "json:", key, sizeof key) != 0 || strlen(key) != 5 + 64)
        fz_die(target, "no content key for a converted lead", b->submission_id);
    /* A converted lead must travel: it encodes, and decodes to the same. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    crm_msg_t copy = *m;
    snprintf(copy.id, sizeof copy.id, "fuzz");
    snprintf(copy.producer, sizeof copy.producer, "fuzz");
    if (crm_msg_encode(&copy, &sb, NULL) == 0 && sb.size <= CRM_FRAME_MAX) {
        crm_msg_t back;
        crm_err_t err;
        if (crm_msg_decode(sb.data, sb.size, &back, &err) != 0)
            fz_die(target, "a converted lead does not decode after encoding", err.text);
        char again[CRM_LEADIN_KEY_SZ];
        if (crm_leadin_content_key(&back.body.lead_submit, "json:", again, sizeof again) != 0 ||
            strcmp(key, again) != 0)
            fz_die(target, "the content key changed in encode -> decode", key);
        crm_msg_clear(&back);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* The document's own bookkeeping holds. */
static inline void fz_doc(const char *target, const crm_leadin_doc_t *doc, const void *data, size_t size)
{
    if (!doc)
        return; /* out of memory */
    if (doc->raw_len != size || (size && memcmp(doc->raw, data, size) != 0) ||
        doc->raw[size] != '\0')
        fz_die(target, "the raw document is not the input", NULL);
    fz_reason(target, doc->err, sizeof doc->err, false);
    size_t failed = doc->err[0] ? 1 : 0;
    if (doc->err[0] && doc->nleads)
        fz_die(target, "a document that failed as a whole keeps leads", doc->err);
    if (!doc->err[0] && doc->nleads == 0)
        fz_die(target, "a document with neither leads nor a reason", NULL);
    for (size_t i = 0; i < doc->nleads; i++) {
        const crm_leadin_lead_t *l = &doc->leads[i];
        fz_reason(target, l->err, sizeof l->err, !l->ok);
        if (l->ok)
            fz_lead(target, &l->msg, doc->kind == CRM_LEADIN_JSON ? NULL : "partner");
        else if (l->msg.body.lead_submit.channel)
            fz_die(target, "a failed lead keeps fields", l->err);
        failed += !l->ok;
    }
    if (failed != doc->nfailed)
        fz_die(target, "nfailed does not count the failures", NULL);
}

#endif
