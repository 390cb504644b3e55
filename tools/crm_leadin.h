/*  crm_leadin: converters from what lead sources send to lead.submit messages.

    crmctl uses these to import leads: a website's JSON object, a partner's
    ADF 1.0 XML (the automotive lead format) and auto-show spreadsheets saved
    as CSV, often in GBK/GB18030 by Excel in China. Parsing is done by
    jansson, libxml2 and libcsv; glibc iconv converts encodings.

    Contract shared by every function:
    - Input is untrusted. Nothing here asserts on it; a bad input gives -1 and
      a message in err that names the field, or the line/row and column.
    - err (errsz bytes, may be NULL/0) is always NUL-terminated when given.
    - `out` must be fresh or cleared (no strings allocated): the converters
      call crm_msg_init(out, CRM_T_lead_submit) themselves. On success the
      caller owns the strings and frees them with crm_msg_clear(out); on
      failure out is left cleared.
    - The converters do not validate phones, ID numbers or dates of birth:
      crm-intake does that and answers with field-level errors. They only
      refuse what cannot be represented (wrong JSON types, bad date-times).
    - now_ms is the time of the conversion. A testdrive_at more than ten
      years away from now_ms is refused as a unit or typing error (seconds
      given instead of milliseconds, 2062 for 2026). Pass 0 to skip the check.
    - Date-times without an offset are China Standard Time (UTC+8, no DST).
*/
#ifndef CRM_LEADIN_H
#define CRM_LEADIN_H

#include <stddef.h>
#include <stdint.h>

#include "crm_proto.h"

typedef enum {
    CRM_LEADIN_UNKNOWN = 0,
    CRM_LEADIN_JSON,
    CRM_LEADIN_ADF
} crm_leadin_kind_t;

/* Guesses the format of a document so crmctl can pick a converter without a
   --format flag: JSON when the first character after an optional UTF-8 BOM
   and whitespace is '{'; ADF when the root element is <adf>, after an
   optional BOM, whitespace, processing instructions (<?adf ...?>,
   <?xml ...?>), comments and a DOCTYPE. CSV is never guessed: it is
   imported from a file with crm_csv_open. */
crm_leadin_kind_t crm_leadin_detect(const char *text, size_t len);

/* Parses a date-time shared by all the sources: "YYYY-MM-DD HH:MM[:SS[.fff]]"
   or with 'T' between date and time, '/' allowed instead of '-' and one-digit
   month, day and hour (Excel writes 2026/12/5 9:30); a bare date means
   00:00. Without a suffix the time is China Standard Time; a trailing "Z" or
   an offset "+08:00", "+0800", "+08" overrides it. Checks that the date and
   time exist (2026-02-29 is refused). Sets *ms_utc and returns 0, or -1. */
int crm_leadin_parse_datetime(const char *s, int64_t *ms_utc);

/* Converts one JSON object whose keys are lead.submit field names. Strings
   stay strings; a number given for a string field becomes its decimal text
   (mobile 13812345678); null means absent; unknown keys are ignored;
   duplicate keys are refused. testdrive is a boolean (0 and 1 accepted);
   testdrive_at is an integer (ms since the epoch, UTC) or a date-time
   string (see crm_leadin_parse_datetime), and implies testdrive = true when
   testdrive is absent. channel defaults to "website". Without a
   submission_id the id is "json:" + a digest of the lead's content (see
   crm_leadin_digest), so a resent form gets the same id. Malformed JSON
   gives "line L, column C: ..." from jansson. */
int crm_leadin_json(const char *text, size_t len, int64_t now_ms, crm_msg_t *out, char *err,
                    size_t errsz);

/* Converts an ADF 1.0 document. Anything before the XML declaration (or the
   root element) such as a <?adf version="1.0"?> line is skipped; unknown
   elements are ignored. Only the first <prospect> is converted: *prospects
   (may be NULL) receives how many the document holds, so the caller can warn
   when it is more than one. The mapping:
     prospect/id[@source]          submission_id "adf:SOURCE:ID" (status
                                   "resend" gives the same id as "new");
                                   no id: "adf:" + content digest
     channel                       "partner"
     provider/name (or id)         source
     vendor/id                     dealer_id
     vehicle (interest not sell/trade-in): make + " " + model -> model;
       interest "test-drive"       testdrive = true, and
       customer/timeframe/earliestdate -> testdrive_at
     vehicle interest sell/trade-in: vin -> vin (the car the customer owns)
     customer/contact: name part full, or last+first (CJK, no space) or
       "first last"; phone cellphone|mobile -> mobile, home -> home_phone,
       work -> office_phone, voice or none -> mobile when it looks like a
       Chinese mobile else usual_phone, fax and pager ignored; email;
       address street lines -> address, city, regioncode -> province,
       postalcode -> postcode
     customer/comments             remark
   libxml2 runs with XML_PARSE_NONET and without XML_PARSE_NOENT,
   XML_PARSE_DTDLOAD or XML_PARSE_HUGE; entity references are never expanded
   into field values. Malformed XML gives "line N: ..." counted in the
   original text; a root other than <adf> gives "not an ADF document". */
int crm_leadin_adf(const char *text, size_t len, int64_t now_ms, crm_msg_t *out, int *prospects,
                   char *err, size_t errsz);

/* Writes "csv:"/"json:"/"adf:" style idempotency digests: 32 lower-case hex
   digits of two 64-bit FNV-1a hashes of data, seeded with the two halves of
   the FNV-128 offset basis. FNV needs no crypto library, and a submission id
   is an idempotency key, not a security boundary: a collision (about 2^-64
   per pair of different leads) would at worst make intake answer a lead as a
   resend. out must hold 33 bytes. */
void crm_leadin_digest(const void *data, size_t len, char out[33]);

/* ------------------------------------------------------------------ CSV */

typedef struct crm_csv_reader_t crm_csv_reader_t;

/* Opens a CSV lead file (auto-show spreadsheets) for streaming. encoding is
   "utf-8", "gbk", "gb18030" or "gb2312" (case-insensitive; the GB ones are
   all read as GB18030, their superset) or NULL to detect: a UTF-8 BOM or a
   file that is valid UTF-8 throughout is UTF-8, anything else GB18030.
   Detection reads the file once; the rows are then streamed. path must name
   a regular file. The header row maps columns to fields by their Chinese or
   English names (case, surrounding blanks, full-width letters, spaces, '_'
   and '-' and a trailing '*' do not matter); unknown columns are ignored and
   listed by crm_csv_unknown_columns. Fails, with err saying why, when the
   file cannot be read, the header cannot be decoded, two columns map to the
   same field, or there is neither a name column nor a phone column. Returns
   a reader the caller destroys with crm_csv_close, or NULL. */
crm_csv_reader_t *crm_csv_open(const char *path, const char *encoding, char *err, size_t errsz);

/* Reads the next data row into out (see the shared contract above): channel
   "autoshow", source the file's base name (or crm_csv_set_source), fields
   trimmed, empty cells absent, 男/先生 -> male, 女/女士 -> female, a
   non-empty test-drive cell -> testdrive = true and testdrive_at. Without a
   submission_id cell the id is "csv:" + crm_leadin_digest of the mapped
   cells, trimmed and joined with 0x1f in lead.submit field order, so the
   same row from any file, with its columns in any order, gets the same id
   and a corrected row a new one. Rows whose cells are all blank are
   skipped. *row (may be NULL) gets the 1-based data row number (header is
   row 0). Returns 1 with a lead, 0 at the end of the file, or -1 for a row
   that cannot be read (wrong column count, undecodable bytes, bad date-time)
   with err naming the row and the column; the next call goes on with the
   next row. A read error or a libcsv failure also gives -1 and ends the
   file. */
int crm_csv_next(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, long *row, char *err,
                 size_t errsz);

/* Sets the source given to the following leads (default: the file's base
   name). 0, or -1 on allocation failure. */
int crm_csv_set_source(crm_csv_reader_t *r, const char *source);

/* The header's column names in UTF-8, NULL-terminated, owned by the reader:
   for the first line of a rejects file. */
const char *const *crm_csv_header(const crm_csv_reader_t *r);

/* The cells of the row last returned by crm_csv_next (accepted or not), in
   UTF-8, undecodable bytes shown as U+FFFD; *n gets their count, which
   differs from the header's for a wrong-column-count row. Owned by the
   reader and valid until the next crm_csv_next: the tool writes them to a
   rejects file (header + an "error" column) the user fixes and re-imports. */
const char *const *crm_csv_row_fields(const crm_csv_reader_t *r, size_t *n);

/* Header names that map to no field, NULL-terminated, owned by the reader,
   so the tool can warn that those columns were not imported. */
const char *const *crm_csv_unknown_columns(const crm_csv_reader_t *r);

/* Share of the file's bytes handed to the CSV parser so far, 0..1. */
double crm_csv_progress(const crm_csv_reader_t *r);

/* "UTF-8" or "GB18030": the encoding the file is read in. */
const char *crm_csv_encoding(const crm_csv_reader_t *r);

/* Closes the file and frees the reader; sets *r to NULL, safe to call twice. */
void crm_csv_close(crm_csv_reader_t **r);

#endif
