/*  crm_leadin: converters from what lead sources send to lead.submit messages.

    Lead sources send a website's JSON object, a partner's ADF 1.0 XML (the
    automotive lead format), ADF inside an e-mail, and auto-show spreadsheets
    saved as CSV, often in GBK/GB18030 by Excel in China. Everything here
    reads from memory: a file is one caller (crmctl), a frame another
    (crm-intake, an HTTP front door). Parsing is done by jansson, libxml2,
    GMime and libcsv; glibc iconv converts encodings; libsodium hashes.

    Contract shared by every function:
    - Input is untrusted. Nothing here asserts on it; a failure gives -1 (or
      an error string) with one line that names the field, or the line/row
      and column, and why.
    - err (errsz bytes, may be NULL/0) is always NUL-terminated when given.
    - A crm_msg_t `out` must be fresh or cleared (no strings allocated): the
      converters call crm_msg_init(out, CRM_T_lead_submit) themselves. On
      success the caller owns the strings and frees them with
      crm_msg_clear(out); on failure out is left cleared.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crm_proto.h"

/* Largest document crm_leadin_convert and crm_leadin_adf look at (an e-mail
   with its attachments); a larger one is refused unread. */
#define CRM_LEADIN_DOC_MAX (8 * 1024 * 1024)
/* Size of the error strings in crm_leadin_doc_t, including the NUL. */
#define CRM_LEADIN_ERR_SZ 320
/* Size of a content key with the longest prefix we use ("json:" + 64). */
#define CRM_LEADIN_KEY_SZ 80

typedef enum {
    CRM_LEADIN_UNKNOWN = 0,
    CRM_LEADIN_JSON,
    CRM_LEADIN_ADF,
    CRM_LEADIN_EMAIL
} crm_leadin_kind_t;

/* Guesses the format of a document so callers can pick a converter without
   a --format flag, after an optional UTF-8 BOM:
   - JSON when the first character after whitespace is '{';
   - ADF when the root element is <adf>, after whitespace, processing
     instructions (<?adf ...?>, <?xml ...?>), comments and a DOCTYPE, also
     one with an internal subset ([ <!ENTITY ...> ]);
   - EMAIL when the text starts with an RFC 5322 header block: every line up
     to the first empty one is a header field ("Name: value", folded lines
     allowed; an mbox "From " line may come first) and one of them is From,
     To, Subject, Date, Message-ID, MIME-Version or Content-Type.
   CSV is never guessed: it is opened with crm_csv_open_mem or crm_csv_open. */
crm_leadin_kind_t crm_leadin_detect(const char *text, size_t len);

/* Parses a date-time shared by all the sources: "YYYY-MM-DD HH:MM[:SS[.fff]]"
   or with 'T' between date and time, '/' allowed instead of '-' and one-digit
   month, day and hour (Excel writes 2026/12/5 9:30); a bare date means
   00:00. ISO 8601 basic format as ADF producers write it is accepted too:
   "YYYYMMDD" and "YYYYMMDDTHHMM[SS[.fff]]" (20270501T153000-0400). Without
   a suffix the time is China Standard Time; a trailing "Z" or an offset
   "+08:00", "+0800", "+08" overrides it. Checks that the date and time exist
   (2026-02-29 is refused). Sets *ms_utc and returns 0, or -1. */
int crm_leadin_parse_datetime(const char *s, int64_t *ms_utc);

/* The content key of a lead.submit body: the idempotency key of a lead that
   brings no submission_id of its own, so the same lead sent twice is one
   lead and two different leads are never taken for one another.

   out gets prefix + 64 lower-case hex digits of the SHA-256 (libsodium's
   crypto_hash_sha256) of every body field except submission_id, channel and
   source, in lead.submit field order (proto/messages.def), each as
   "name=value", joined by 0x1F: STR as its bytes, I64 as decimal, BOOL as 1
   or 0; absent fields, and STR fields that are empty, are left out (the
   converters never set an empty string, so JSON and msgpack agree). So that
   no value can pose as another field (a name "x\x1Fmobile=1..." would
   otherwise hash like a second field), 0x1B and 0x1F inside a value are
   written as 0x1B 0x1B and 0x1B 0x5F: the hashed text decodes to exactly
   one set of fields.

   The prefixes in use: "json:" (a JSON lead, and crm-intake for a msgpack
   lead without submission_id, so both get the same key for the same lead),
   "adf:" (an ADF prospect without <id>), "csv:" (a CSV row without a
   submission_id cell). Returns 0, or -1 when an argument is NULL or out
   (outsz bytes) cannot hold the key (CRM_LEADIN_KEY_SZ always can for
   those prefixes). */
int crm_leadin_content_key(const crm_body_lead_submit_t *lead, const char *prefix, char *out,
                           size_t outsz);

/* Converts one JSON object whose keys are lead.submit field names. Strings
   stay strings; a number given for a string field becomes its decimal text
   (mobile 13812345678); null and "" mean absent; unknown keys are ignored;
   duplicate keys are refused. testdrive is a boolean (0 and 1 accepted);
   testdrive_at is an integer (ms since the epoch, UTC) or a date-time
   string (see crm_leadin_parse_datetime), and implies testdrive = true when
   testdrive is absent. channel defaults to "website". Without a
   submission_id the id is crm_leadin_content_key(.., "json:"), so a resent
   form gets the same id. Malformed JSON gives "line L, column C: ..." from
   jansson. */
int crm_leadin_json(const char *text, size_t len, int64_t now_ms, crm_msg_t *out, char *err,
                    size_t errsz);

/* ----------------------------------------------------------- documents */

/* One lead of a document: converted, or why that part cannot be a lead. */
typedef struct {
    bool ok;                     /* msg holds the lead */
    crm_msg_t msg;               /* lead.submit when ok; cleared otherwise */
    int line;                    /* where it starts: the <prospect> line, 1 for JSON */
    char err[CRM_LEADIN_ERR_SZ]; /* !ok: "prospect 2 (line 27): customer/...: ..." */
} crm_leadin_lead_t;

/* A converted document. Everything in it is owned by it and freed by
   crm_leadin_doc_destroy. */
typedef struct {
    crm_leadin_kind_t kind;      /* what the input was detected as */
    char err[CRM_LEADIN_ERR_SZ]; /* non-empty: the document as a whole cannot be
                                    converted (then nleads is 0) */
    crm_leadin_lead_t *leads;    /* nleads, in document order */
    size_t nleads;
    size_t leads_cap;            /* slots allocated in leads (the converter's) */
    size_t nfailed;              /* leads with !ok, plus 1 when err is set */
    char *raw;                   /* a copy of the input as given (raw_len bytes, plus a
                                    NUL), for the caller to keep in quarantine when
                                    nfailed > 0 */
    size_t raw_len;
} crm_leadin_doc_t;

/* Converts a document whatever it is (see crm_leadin_detect): a JSON lead
   (one lead), an ADF document (every <prospect>), or an e-mail carrying ADF
   (see crm_leadin_adf and "ADF in e-mail" below). A document that is none
   of these, is empty or is over CRM_LEADIN_DOC_MAX gets doc->err. Returns
   NULL only when out of memory. */
crm_leadin_doc_t *crm_leadin_convert(const char *data, size_t len, int64_t now_ms);

/* Converts an ADF 1.0 document: every <prospect> becomes one lead, in
   document order; a prospect that cannot be converted (a bad date, an
   entity too large) is a lead with ok = false and does not stop the others.
   A document that is not well-formed, has another root than <adf> or no
   <prospect> gets doc->err ("line N: ..."). Anything before the XML
   declaration (or the root element) such as a <?adf version="1.0"?> line is
   skipped, and line numbers are those of the original text; unknown
   elements are ignored. The mapping, per prospect:
     prospect/id[@source]          submission_id "adf:SOURCE:ID" (status
                                   "resend" gives the same id as "new");
                                   no id: crm_leadin_content_key(.., "adf:")
     channel                       "partner"
     provider/name (or id)         source
     vendor/id                     dealer_id
     vehicle (interest not sell/trade-in): make + " " + model -> model;
       interest "test-drive"       testdrive = true, and
       customer/timeframe/earliestdate -> testdrive_at (any form that
                                   crm_leadin_parse_datetime reads)
     vehicle interest sell/trade-in: vin -> vin (the car the customer owns)
     customer/contact: name part full, or last+first (CJK, no space) or
       "first last"; phone cellphone|mobile -> mobile, home -> home_phone,
       work -> office_phone, voice or none -> mobile when it looks like a
       Chinese mobile else usual_phone, fax and pager ignored (typed phones
       are taken before untyped ones, whatever their order); email;
       address street lines -> address, city, regioncode -> province,
       postalcode -> postcode
     customer/comments             remark
   Entities and DTDs: libxml2 runs with XML_PARSE_NONET and without
   XML_PARSE_NOENT, XML_PARSE_DTDLOAD, XML_PARSE_DTDVALID or XML_PARSE_HUGE,
   so no external DTD or entity is ever loaded (a reference to an external
   entity contributes nothing). A DOCTYPE with an internal subset is read;
   the internal general entities it declares are expanded by our code, at
   most 64 KiB per prospect (more is that prospect's error, naming the line
   and entity; libxml2 refuses entity loops) and at most 4 times the
   document's size (1 MiB if that is less) for all its prospects together
   (more is an error of the whole document). A document holds at most 10000
   prospects; more is an error of the whole document, naming the limit (an
   e-mail's ADF parts count together for both limits). A reference to a name that is
   neither one of XML's five nor declared in the subset is looked up in
   libxml2's HTML table (htmlEntityLookup: &nbsp; &eacute; &mdash; &copy;
   ...) and becomes its character; an unknown name is an error of the whole
   document: "line N: unknown entity &name;". */
crm_leadin_doc_t *crm_leadin_adf(const char *text, size_t len, int64_t now_ms);

/* ADF in e-mail. Partner feeds deliver ADF by mail; crm_leadin_convert takes
   a plain RFC 5322 message or a MIME message, parsed by GMime: every leaf
   part that is text/xml, application/xml, text/plain, or an attachment
   named *.xml, is decoded (base64, quoted-printable), converted from its
   charset parameter to UTF-8 (GB2312 and GBK are read as GB18030, their
   superset; the MIME charset wins over the XML declaration, as mail
   clients re-encode text without touching it) and taken when it holds an
   ADF document (in text/plain it may be surrounded by other text). In a
   multipart/alternative only the best alternative counts (XML over plain
   text), so the same lead is not read twice, and an alternative that
   cannot be decoded is a failed lead only when no other one gives the
   ADF; ADF parts elsewhere (several
   attachments, message/rfc822 parts) all count; parts nested deeper than
   16 levels are not read. Errors name the part: "part 2 (text/xml): line
   7: ..."; an ADF part that cannot be read at all (undecodable bytes, not
   well-formed) is one lead with ok = false, so the other parts still
   count. A message without an ADF part gets doc->err "e-mail: no part
   holds an ADF document (parts: ...)". */

/* Frees a document and everything in it; sets *doc to NULL, safe twice. */
void crm_leadin_doc_destroy(crm_leadin_doc_t **doc);

/* The whole of the file at `path` ("-": stdin), NUL-terminated, at most
   `max` bytes; *len gets its length. NULL with errno set (EFBIG when it is
   larger than `max`). The caller frees. */
char *crm_leadin_read_file(const char *path, size_t max, size_t *len);

/* ------------------------------------------------------------------ CSV */

typedef struct crm_csv_reader_t crm_csv_reader_t;

/* Opens CSV lead data (auto-show spreadsheets) held in memory for
   streaming. The reader does not copy data: it must stay valid and
   unchanged until crm_csv_close. encoding is "utf-8", "gbk", "gb18030" or
   "gb2312" (case-insensitive; the GB ones are all read as GB18030, their
   superset) or NULL to detect: a UTF-8 BOM or data that is valid UTF-8
   throughout is UTF-8, anything else GB18030. name is the default source
   of the leads (a file's base name; "csv" when NULL).

   The delimiter is a comma, or a tab when the header line holds tabs and
   no comma (dealer systems export tab-separated text). The header row maps
   columns to fields by their Chinese or English names; case, whitespace
   anywhere (dealer exports write "客户\t姓名" and "手机\t"), full-width
   letters, '_' and '-' and a trailing '*' do not matter. Names:
     name      姓名 客户姓名 联系人 name
     mobile    手机 手机号 手机号码 移动电话 mobile
     a phone   电话 联系电话 phone: per cell, mobile when it looks like a
               Chinese mobile and no mobile is set yet, else usual_phone
               (as ADF's untyped phone)
     source    来源 source: overrides the default source for that row
     model 意向车型 车型; intent_grade 意向级别 意向等级 级别;
     expected_purchase_date 预计购买日期 预计购车时间; remark 备注;
     and the others in crm_leadin.c's alias table (性别, 生日, 家庭电话,
     办公电话, 常用电话, 邮箱, 身份证, 地址, 邮编, 城市, 省份, 经销商,
     试驾时间, 车架号, 车牌, submission_id, and the lead.submit names).
   Unknown columns are ignored and listed by crm_csv_unknown_columns. Fails,
   with err saying why, when the header cannot be decoded, has more than
   4096 columns, two columns map to the same field, or there is neither a
   name column nor a phone column.
   Returns a reader the caller destroys with crm_csv_close, or NULL. */
crm_csv_reader_t *crm_csv_open_mem(const char *data, size_t len, const char *encoding,
                                   const char *name, char *err, size_t errsz);

/* crm_csv_open_mem on the file at path (a regular file, mapped read-only
   until crm_csv_close), with its base name as the default source. */
crm_csv_reader_t *crm_csv_open(const char *path, const char *encoding, char *err, size_t errsz);

/* Reads the next data row into out (see the shared contract above; a
   record reader gives its type, see "dealer records" below): channel
   "autoshow", source the reader's (see crm_csv_set_source) unless the row
   has a source cell, fields trimmed, empty cells absent, a gender cell
   mapped by crm_lead_gender (男/先生 -> male, 女/女士 -> female, 未知/保密 ->
   unknown; others as written), a non-empty test-drive cell -> testdrive = true and
   testdrive_at. Without a submission_id cell the id is
   crm_leadin_content_key(.., "csv:"), so the same row from any file, with
   its columns in any order or encoding, gets the same id and a corrected
   row a new one. Rows whose cells are all blank are skipped. *row (may be
   NULL) gets the 1-based data row number (header is row 0). Returns 1 with
   a lead, 0 at the end of the data, or -1 for a row that cannot be read
   (wrong column count, undecodable bytes, bad date-time) with err naming
   the row and the column; the next call goes on with the next row. A row
   of more than max(4 x the header's columns, 1024) fields is such a row
   ("row N: more than M fields, ..."): the fields past the limit are not
   kept, and crm_csv_row_fields gives the first M. A libcsv failure also
   gives -1 and ends the data. */
int crm_csv_next(crm_csv_reader_t *r, int64_t now_ms, crm_msg_t *out, long *row, char *err,
                 size_t errsz);

/* ------------------------------------------------------ dealer records

   Dealers that export rather than integrate send their customer files (客户
   档案), service work orders and follow-up records as CSV (crmctl customer|
   service|followup import, crm-dealer import). The same reader reads them:
   decoding (UTF-8 with or without BOM, else GB18030; or the encoding
   given), tab or comma, header folding, the row cap, blank rows skipped,
   row errors naming the row and the column, crm_csv_row_fields for the
   rejects file, progress. What differs is the message each row becomes and
   the columns:

   customer.file (客户档案, the seed-003 names first):
     record_id 档案编号 客户档案编号 档案号   customer_id 客户编号 客户ID
     name 姓名 客户姓名 客户名称      gender 性别 (crm_lead_gender: 男/女 ...)
     birthday 生日 出生日期 (date)    id_number 身份证号 身份证 身份证号码 证件号码
     address 通信地址 地址 联系地址   postcode 邮编 邮政编码   city 城市
     province 省份 省                 mobile 手机 手机号 手机号码 移动电话
     home_phone 家用电话 家庭电话 住宅电话   office_phone 办公电话 单位电话
     usual_phone 常用电话             phone 电话 联系电话 (mobile when it looks
                                      like one and no mobile is set, else
                                      usual_phone when none is set)
     email 电子邮件 邮箱 电子邮箱      remark 备注
     fleet 大客户, vip VIP 重要客户 VIP客户, difficult 黑色客户 (flags)
     grade 意向级别 意向等级 级别 (H级 -> H)
     expected_purchase_date 预计购买日期 预计购车时间 预计购车日期 (date)
     consultant_id 销售顾问 顾问 顾问编号
     vin 底盘号 车架号 VIN码          engine_number 发动机号   model 车型
     transmission 变速箱 (手动/MT -> manual; 自动/AT/CVT/DCT/双离合/手自一体
                  -> automatic; else as written)
     colour 颜色 车身颜色 color       plate 车牌号 车牌
     plate_date 上牌日期, sale_date 开票日期 购车日期 销售日期,
     first_service_date 首保日期 (dates); first_service_mileage 首保里程 (km)
   service.record:
     record_id 档案编号 记录编号      work_order 工单号 维修工单号 工单编号
     customer_id 客户编号 客户ID      vin 底盘号 车架号 VIN码
     date 维修日期 故障日期 进厂日期 服务日期 (date)
     mileage 里程 行驶里程 进厂里程 (km)   work 维修内容 维修项目
     amount_fen: 金额 费用 维修金额 结算金额 amount in yuan ("350.50",
                 "¥1,200", "1200元"), or amount_fen in fen as an integer
   followup.record:
     record_id 档案编号 记录编号 跟进编号   customer_id 客户编号 客户ID
     consultant_id 顾问 销售顾问 顾问编号   at 跟进时间 跟进日期 (date-time)
     result 跟进结果 (接通 -> answered, 未接通/无人接听 -> no_answer, 到店 ->
            visit, 试驾 -> test_drive, 报价 -> quote, 订单/下单/成交 -> order,
            短信/微信 -> message, 其他 -> other; else as written)
     content 跟进内容, feedback 客户反馈, grade 意向级别 (H级 -> H),
     expected_purchase_date 预计购买日期 (date),
     next_at 下次跟进时间 (date-time), next_content 下次跟进内容
   Every column may also be named by its field's proto name (as above).
   dealer_id is never read from the file: the caller sets it (crmctl's
   --dealer; over the gateway the certificate names the dealer).

   Cells: trimmed, an empty cell is an absent field. Dates: YYYY-MM-DD,
   YYYY/M/D, YYYY.M.D, YYYYMMDD, YYYY年M月D日, with an Excel time after
   them dropped ("2026/3/5 0:00"), written YYYY-MM-DD; a date that does not
   exist is unreadable. Date-times: crm_leadin_parse_datetime (China time
   without an offset) or ms since the epoch as digits, within ten years of
   now_ms (when not 0). Flags: 是/否, Y/N, yes/no, true/false, 1/0, √/×.
   Numbers as crm_leadin_parse_fen and crm_leadin_parse_km. A cell that
   cannot be read makes the row a -1 of crm_csv_next: "row 4, column 7
   (生日): expected a date like ..., got \"...\"".

   Nothing else is judged here: a record without a name, with a bad phone
   or a 5-digit postcode is read and sent; the service stores it with its
   findings or refuses it, field by field.

   Without a record_id cell the id is crm_leadin_record_key(.., "csv:"), so
   the same row from any file, in any column order or encoding, gets the
   same id (a resend changes nothing) and a corrected row a new one. */

/* Opens dealer records of `type` (CRM_T_customer_file, CRM_T_service_record
   or CRM_T_followup_record) held in memory, as crm_csv_open_mem opens
   leads: crm_csv_next then gives messages of that type. Fails, with err,
   for another type, an undecodable header, two columns of one field, or a
   header where no column is a field of the type. */
crm_csv_reader_t *crm_csv_open_records_mem(const char *data, size_t len, crm_type_t type,
                                           const char *encoding, char *err, size_t errsz);

/* crm_csv_open_records_mem on the file at path (mapped, as crm_csv_open). */
crm_csv_reader_t *crm_csv_open_records(const char *path, crm_type_t type, const char *encoding,
                                       char *err, size_t errsz);

/* The content key of a dealer record (customer.file, service.record or
   followup.record): prefix + 64 hex digits of the SHA-256 of
   "type=<wire type>" followed by every body field except record_id and
   dealer_id, in messages.def order, each "name=value" as in
   crm_leadin_content_key (same escapes, absent and empty fields left out,
   I64 decimal, BOOL 1/0). 0, or -1 for another type or a short out
   (CRM_LEADIN_KEY_SZ is enough for "csv:"). */
int crm_leadin_record_key(const crm_msg_t *m, const char *prefix, char *out, size_t outsz);


/* A date in the shapes above -> "YYYY-MM-DD" in out (11 bytes at least).
   0, or -1 (out empty) when it is none of them or does not exist. */
int crm_leadin_parse_date(const char *s, char *out, size_t outsz);

/* Yuan -> fen: "350.50" -> 35050, "¥1,200" -> 120000; a ¥, ￥, RMB or CNY
   before, 元 after, ',' between groups of three digits, at most two
   decimals, an optional '-'. 0, or -1 when malformed. */
int crm_leadin_parse_fen(const char *s, int64_t *fen);

/* Mileage -> km: "12,000", "12000km", "12000 公里", "12000.0" (rounded). 0,
   or -1 when malformed or negative. */
int crm_leadin_parse_km(const char *s, int64_t *km);

/* Sets the source given to the following leads. 0, or -1 on allocation
   failure. */
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

/* Share of the data handed to the CSV parser so far, 0..1. */
double crm_csv_progress(const crm_csv_reader_t *r);

/* "UTF-8" or "GB18030": the encoding the data is read in. */
const char *crm_csv_encoding(const crm_csv_reader_t *r);

/* ',' or '\t': the delimiter the data is read with. */
char crm_csv_delimiter(const crm_csv_reader_t *r);

/* Frees the reader (and unmaps crm_csv_open's file); sets *r to NULL, safe
   to call twice. */
void crm_csv_close(crm_csv_reader_t **r);

#endif
