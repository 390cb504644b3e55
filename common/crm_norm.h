/*  crm_norm - normalisation and validation of Chinese customer data.

    Dealer systems send phone numbers, ID numbers, VINs, plates, postcodes and
    e-mail addresses typed by hand, often on a Chinese IME (full-width digits,
    ＠, 。). Every check here first applies NFKC and trims whitespace, then
    validates against the rules in shared/reference/cn-data-rules.md.

    Contract shared by every function:
    - Inputs are untrusted: any length, any bytes. Nothing here asserts,
      allocates without bound or writes past the sizes named below; a bad input
      gives an error code, never a crash.
    - Output buffers are fixed-size (the *_SZ constants include the NUL) and
      are always NUL-terminated; on error they hold "" unless the function
      says otherwise.
    - Validators return a crm_norm_code_t. CRM_NORM_OK is 0, so `if (rc)`
      means "not clean". crm_norm_code_str() gives the stable machine code to
      put into field-level errors. Whether a code is an error or a warning is
      the caller's policy; the comments below say what the audit expects.
    - No function keeps state: all are safe to call from any thread.
*/
#ifndef CRM_NORM_H_INCLUDED
#define CRM_NORM_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CRM_NORM_OK = 0,
    CRM_NORM_EMPTY,             /* nothing left after trimming            */
    CRM_NORM_TOO_LONG,          /* input or result exceeds a fixed bound  */
    CRM_NORM_BAD_ENCODING,      /* not valid UTF-8                        */
    CRM_NORM_INVALID,           /* malformed for this field               */
    CRM_NORM_MASKED,            /* mobile like 138****5678                */
    CRM_NORM_NOT_IN_PLAN,       /* mobile outside the CN numbering plan   */
    CRM_NORM_PLACEHOLDER,       /* 13800000000, "无", "null", ...         */
    CRM_NORM_MISSING_AREA_CODE, /* landline without its area code         */
    CRM_NORM_BUSINESS_NUMBER,   /* 400/800 number                         */
    CRM_NORM_BAD_LENGTH,
    CRM_NORM_BAD_CHAR,
    CRM_NORM_BAD_REGION,        /* ID number: not a province address code */
    CRM_NORM_BAD_DATE,
    CRM_NORM_BAD_CHECK,         /* check character / check digit wrong    */
    CRM_NORM_RESERVED,          /* postcode 000000-009999 or 999xxx       */
    CRM_NORM_UNKNOWN_SENTINEL,  /* birthday 1900-01-01 = "unknown"        */
    CRM_NORM_SUSPECTED_TYPO,    /* e-mail domain looks like a typo        */
    CRM_NORM_NOT_CN_NUMBER,     /* digits that are no Chinese number as written */
    CRM_NORM_OTHER_CALLING_CODE, /* written with a calling code other than +86 */
    CRM_NORM_CODE_COUNT
} crm_norm_code_t;

/* Largest input, in bytes, any function here will look at; longer input is
   CRM_NORM_TOO_LONG. It bounds the work done on hostile input. */
#define CRM_NORM_TEXT_MAX 65536

#define CRM_NORM_MOBILE_SZ   12 /* 11 digits                              */
#define CRM_NORM_POSTCODE_SZ 7
#define CRM_NORM_DATE_SZ     11 /* YYYY-MM-DD                             */
#define CRM_NORM_VIN_SZ      18
#define CRM_NORM_PLATE_SZ    16 /* province char is 3 UTF-8 bytes         */
#define CRM_NORM_EMAIL_SZ    255 /* RFC 5321: at most 254 octets          */
#define CRM_NORM_DOMAIN_SZ   64  /* suggested domain                      */

/* Stable lower-case machine code for a result ("ok", "masked",
   "missing_area_code", "bad_check", ...); never NULL, "unknown_code" for a
   value outside the enum. The strings are part of the integration contract:
   do not rename them. */
const char *crm_norm_code_str(crm_norm_code_t code);

/* NFKC-normalise `in` (full-width digits and letters, ＠, full-width space),
   map the ideographic full stop 。 to '.', and trim ASCII and Unicode
   whitespace at both ends (inner whitespace is kept). Writes into out
   (outsz bytes including the NUL). Returns 0, or -1 on NULL arguments,
   invalid UTF-8, input over CRM_NORM_TEXT_MAX bytes or a result that does
   not fit; out is "" on failure. in and out must not overlap. */
int crm_norm_text(const char *in, char *out, size_t outsz);

/* Phone numbers are never rewritten into something they were not: the
   phone functions below remove separators, one calling code +86/0086 (and
   the documented trunk 0 or bare 86 of a mobile), and nothing else. They
   never add a digit (no trunk 0 or area code is guessed; the trunk 0 a
   landline's formatted form shows after +86 is the national form of what
   was written) and never read a number written with another calling code
   as a Chinese one.

   The calling code a phone number is written with: after a leading '+' or
   the international prefix 00 (what is dialled from China), separators
   allowed: 1 for "+1 393 999 3922" and "001-393-999-3922", 44, 852, 886;
   86 for China. E.164 calling codes are prefix-free, so the length follows
   from the digits. Returns 0 when the number is written without one (or
   '+' is followed by no calling code), -1 for NULL, unreadable input or
   input over 127 bytes after NFKC and trimming (no phone is that long). */
int crm_norm_phone_calling_code(const char *in);

/* Normalise a mobile number to its 11 national digits. Strips +86, 0086,
   a leading 86 when 13 digits are left and no calling code was written, one
   trunk 0 before 1[3-9] (never before 10, 11 or 12: 010 is Beijing's area
   code), and the separators space - . ( ). OTHER_CALLING_CODE (out "") for a
   number written with another calling code (+1, 001, +852, ...). Then
   checks, in this order: MASKED (138****5678 or 138xxxx5678;
   out holds the masked form so it can be shown), INVALID (not 11 digits
   starting with 1), PLACEHOLDER (the 8-digit subscriber part is one repeated
   digit, e.g. 13800000000, or digits 2-11 are a consecutive run such as
   12345678901), NOT_IN_PLAN (fails libphonenumber 8.12.57's strict CN mobile
   pattern). out holds the 11 digits for OK, PLACEHOLDER and NOT_IN_PLAN.
   13812345678 is deliberately OK: it is an assignable number. */
crm_norm_code_t crm_norm_mobile(const char *in, char out[CRM_NORM_MOBILE_SZ]);

typedef struct {
    char area[5];       /* area code without the trunk 0: "10", "571"      */
    char local[11];     /* local number; for a 400/800 number all 10 digits */
    char ext[7];        /* extension, 1-6 digits, or ""                     */
    char formatted[24]; /* "0AREA-LOCAL[-EXT]"; "400-123-4567"; bare local  */
} crm_landline_t;

/* Parse a landline: trunk 0 + area code 10, 2[0-57-9] (8-digit local) or
   3xx-9xx (7 or 8-digit local), optional parentheses, separators, and an
   extension after 转, #, ext, ext., x, 分机 or a final "-group" when the
   digits before it already form a complete number (010-12345678-8001).
   After +86 or 0086 the trunk 0 may be left out (+86 10 6234 5678); it is
   written back in formatted, which is the national form of the same number.
   Returns OK, MISSING_AREA_CODE for a bare 7-8 digit number (an error under
   the carmaker's rule; local and formatted are filled, with the extension),
   BUSINESS_NUMBER for 400/800 numbers (formatted is filled),
   OTHER_CALLING_CODE for a number written with a calling code other than
   +86, NOT_CN_NUMBER for 9-15 digits written with neither +86 nor a trunk
   0 (393-999-3922, 10-62345678: 393 may be Puyang's 0393 or a US area code,
   and guessing would add a digit), or INVALID (026, 021-1234567, a mobile's
   11 digits, a 400/800 number of the wrong length, fewer than 7 or more
   than 15 digits, other characters, ...). Unlike the reference regex a
   local number may start with 1, because libphonenumber accepts
   010-12345678. out is zeroed first; only OK, MISSING_AREA_CODE and
   BUSINESS_NUMBER fill it. */
crm_norm_code_t crm_norm_landline(const char *in, crm_landline_t *out);

/* Recognise one of the 34 provincial-level divisions from its full name
   (广东省), its name without suffix (广东; suffixes 省 市 自治区 …族自治区
   特别行政区 are stripped), or its abbreviation (粤, 川/蜀, 蒙, ...).
   On success sets *canonical to a static full name and *code to its GB/T
   2260 code (44) and returns 0; unknown or bad input returns -1 and sets
   *canonical = NULL, *code = 0. Either out pointer may be NULL. */
int crm_norm_province(const char *in, const char **canonical, int *code);

/* Normalise a city name: NFKC, trim, and strip a trailing 市 when at least
   two characters remain (so 深圳市 -> 深圳 but 沙市 stays). Anything else
   is kept as typed. Returns 0, or -1 for empty/invalid input or a result
   that does not fit outsz. */
int crm_norm_city(const char *in, char *out, size_t outsz);

/* Validate a postcode: exactly 6 ASCII digits after normalisation.
   BAD_LENGTH, BAD_CHAR, or RESERVED for 000000-009999 (set aside for Taiwan)
   and 999xxx (China Post internal, e.g. 999077 Hong Kong). */
crm_norm_code_t crm_norm_postcode(const char *in, char out[CRM_NORM_POSTCODE_SZ]);

/* GB/T 2260 province code (e.g. 44) that owns a postcode's two-digit prefix,
   or -1 when the prefix is unknown or the input is not 6 digits. Postal
   zones cross provincial borders, so a mismatch with the recorded province
   is a warning, never an error. Takes an already-normalised postcode. */
int crm_norm_postcode_province(const char *postcode);

typedef struct {
    char id[19];     /* 18-character form, check character upper-case */
    char birth[CRM_NORM_DATE_SZ]; /* YYYY-MM-DD                         */
    char sex;        /* 'M' (odd sequence) or 'F' (even)                */
    int from_15;     /* 1 when converted from a legacy 15-digit number  */
} crm_idcard_t;

/* Validate a resident ID number (GB 11643-1999). A 15-digit legacy number
   is converted (century 19 inserted, check character computed). Checks in
   order: BAD_LENGTH, BAD_CHAR (17 digits + digit/X), BAD_REGION (first two
   digits not a GB/T 2260 province code; 81/82/83 residence permits are
   accepted), BAD_DATE (birth date not a real date in 1800-2099), BAD_CHECK
   (ISO 7064 MOD 11-2). out is filled for OK and BAD_CHECK, zeroed
   otherwise. Never log out->id in clear (see STYLE.md). */
crm_norm_code_t crm_norm_idcard(const char *in, crm_idcard_t *out);

/* Parse a birthday written YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD (month and
   day may have one digit) or YYYYMMDD into YYYY-MM-DD. Returns BAD_DATE for
   an impossible date or a year outside 1800-2099, INVALID for other shapes,
   and UNKNOWN_SENTINEL for 1900-01-01, which means "unknown" and must never
   be used as a date: out is "" in that case. */
crm_norm_code_t crm_norm_birthday(const char *in, char out[CRM_NORM_DATE_SZ]);

/* Normalise a VIN: NFKC, upper-case, strip spaces, '-' and '.'. Returns
   BAD_LENGTH (not 17), BAD_CHAR (outside [A-HJ-NPR-Z0-9], so I, O, Q are
   rejected) or BAD_CHECK (position 9 is not the GB 16735 / ISO 3779 check
   digit). BAD_CHECK is a warning (imported cars often fail it) and out is
   still filled. */
crm_norm_code_t crm_norm_vin(const char *in, char out[CRM_NORM_VIN_SZ]);

typedef enum {
    CRM_PLATE_NONE = 0,
    CRM_PLATE_ORDINARY,
    CRM_PLATE_NEW_ENERGY
} crm_plate_kind_t;

/* Normalise a plate number (GA 36-2018 shapes as in hutool): strip '·',
   '•', '・', spaces and '-', upper-case ASCII, then match the ordinary
   pattern P[A-HJ-NP-Z][A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳] or a
   new-energy pattern (P[A-HJ-NP-Z][DABCEFGHJK][A-HJ-NP-Z0-9]\d{4} or
   P[A-HJ-NP-Z]\d{5}[DABCEFGHJK]), P being a province abbreviation. Returns
   OK or INVALID; *kind (may be NULL) says which pattern matched. A blank
   plate is EMPTY, which may be legitimate on a newly sold car. */
crm_norm_code_t crm_norm_plate(const char *in, char out[CRM_NORM_PLATE_SZ],
                               crm_plate_kind_t *kind);

/* Validate an e-mail address: WHATWG "valid e-mail address" syntax, domain
   with a dot and an alphabetic TLD (INVALID otherwise); local part <= 64
   and whole address <= 254 octets (TOO_LONG otherwise). The domain is
   lower-cased in out. Returns PLACEHOLDER for
   无 / null / none / n/a and similar (an error: the address is missing),
   INVALID for bad syntax, or SUSPECTED_TYPO (a warning, out still filled,
   never auto-corrected) when the domain is within edit distance 2 of a
   common provider (1 for providers with a name of 3 characters or less, to
   spare unrelated short domains) or is a known provider with a wrong TLD
   (qq.cm, 126.cn); the suggested domain goes into suggest (may be NULL). */
crm_norm_code_t crm_norm_email(const char *in, char out[CRM_NORM_EMAIL_SZ],
                               char suggest[CRM_NORM_DOMAIN_SZ]);

#ifdef __cplusplus
}
#endif

#endif
