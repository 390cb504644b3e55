/*  crm_mail: a complete RFC 5322 message in memory, for the notifier's e-mail
 *  channel (sent later over SMTP; nothing here does I/O).
 *
 *  Header values that are not plain printable ASCII become RFC 2047 encoded
 *  words, B encoding, UTF-8: each word at most 75 characters and holding whole
 *  UTF-8 characters only (a word cut inside a character shows as mojibake in
 *  some readers, neomutt#1015), words folded onto lines of at most 76
 *  characters (RFC 2047 §2). Plain values are folded at spaces to lines of 78
 *  characters where a space allows it; no line ever exceeds 998.
 *
 *  Header injection is impossible by construction: a CR or LF (or another
 *  control character) in any header input is refused, as are invalid UTF-8,
 *  malformed addresses and ids. The body is UTF-8 text, sent base64 in lines
 *  of 76, its line ends made CRLF (the canonical form of text, RFC 2045 §6.8).
 *
 *  Marketing mail carries RFC 8058 one-click unsubscribe headers. Receivers
 *  offer one-click only when a DKIM signature's h= covers List-Unsubscribe and
 *  List-Unsubscribe-Post: the signer (later, at sending) must include both.
 */
#ifndef CRM_MAIL_H
#define CRM_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest physical line a header may have (RFC 5322 §2.1.1), without CRLF. */
#define CRM_MAIL_LINE_MAX 998

typedef struct {
    const char *from_name; /* UTF-8 display name, may be NULL or "" */
    const char *from_addr; /* required: local@domain, ASCII */
    const char *to_name;   /* UTF-8 display name, may be NULL or "" */
    const char *to_addr;   /* required */
    const char *subject;   /* required, UTF-8 */
    const char *body;      /* required, UTF-8; "\n", "\r" and "\r\n" all end a line */
    int64_t date;          /* Unix seconds, written in the zone below */
    int tz_minutes;        /* offset east of UTC: 480 for China (+0800) */
    /* Message-ID is <message_id@domain>. Build it from the notification's id
       so a resend carries the same Message-ID; a dot-atom ([A-Za-z0-9] and
       !#$%&'*+-/=?^_`{|}~ and single inner dots). `domain` NULL: the domain
       of from_addr. */
    const char *message_id;
    const char *domain;
    /* Marketing mail: List-Unsubscribe with the https URI (required) and the
       mailto URI (optional, "mailto:..."), and List-Unsubscribe-Post. The
       https URI must identify recipient and list with a hard-to-forge token:
       the receiver's POST carries nothing else (RFC 8058 §3.1). */
    bool marketing;
    const char *unsubscribe_https;
    const char *unsubscribe_mailto;
} crm_mail_t;

/* One header line "Name: value" without the final CRLF into `out`: a value of
   printable ASCII as it is (folded at spaces), anything else as encoded words
   (see above). The length written (as snprintf), or -1 with `out` "" when the
   name is not a field name, the value holds invalid UTF-8 or a control
   character other than TAB, a line cannot be kept to 998, or `out` is too
   small. */
int crm_mail_header_encode(const char *name, const char *utf8_value, char *out, size_t size);
/* The same, allocated: a NUL-terminated string the caller frees, or NULL. */
char *crm_mail_header_new(const char *name, const char *utf8_value);

/* The whole message, headers and body, CRLF line ends, NUL-terminated; its
   length in `*len` (may be NULL). The caller frees it. NULL when any field is
   missing or refused (see above and crm_mail_t). */
char *crm_mail_build(const crm_mail_t *m, size_t *len);

#endif
