/*  fuzz_records: libFuzzer target for the dealer-record CSV reader
 *  (customer.file, service.record, followup.record), from memory.
 *
 *  The last byte of the input picks the record type (byte % 3) and the
 *  encoding (byte / 3 % 5: detected, utf-8, gbk, gb18030, gb2312), the
 *  bytes before it are the file, so the seeds from tests/data/records keep
 *  their header line. Every row read must come with its cells as UTF-8, a
 *  refused row with a one-line reason naming the row, an accepted one with
 *  the reader's type, a "csv:" or given record_id, no dealer_id, and every
 *  string UTF-8; dates it wrote are YYYY-MM-DD. Seeds: tests/data/records.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_str(const char *s)
{
    if (s && !fz_utf8(s))
        fz_die("fuzz_records", "a field is not UTF-8", s);
}

static void s_date(const char *s)
{
    char again[16];
    if (s && (strlen(s) != 10 || crm_leadin_parse_date(s, again, sizeof again) != 0 ||
              strcmp(again, s)))
        fz_die("fuzz_records", "a date not written YYYY-MM-DD", s);
}

#define FR_F(msg, field, type, req, doc) FR_F_##type(msg, field)
#define FR_F_STR(msg, field) s_str(m->body.msg.field);
#define FR_F_I64(msg, field)
#define FR_F_BOOL(msg, field)

static void s_record(const crm_msg_t *m, crm_type_t type)
{
    if (m->type != type)
        fz_die("fuzz_records", "a record of another type", crm_type_name(m->type));
    const char *id = NULL;
    bool dealer = false;
    switch (type) {
    case CRM_T_customer_file:
        CRM_FIELDS_customer_file(FR_F)
        id = m->body.customer_file.record_id, dealer = m->body.customer_file.has.dealer_id;
        /* a customer file's dates are sent as written when they cannot be
           read (the service stores a finding): UTF-8 is all they promise */
        break;
    case CRM_T_service_record:
        CRM_FIELDS_service_record(FR_F)
        id = m->body.service_record.record_id, dealer = m->body.service_record.has.dealer_id;
        s_date(m->body.service_record.date);
        break;
    default:
        CRM_FIELDS_followup_record(FR_F)
        id = m->body.followup_record.record_id, dealer = m->body.followup_record.has.dealer_id;
        s_date(m->body.followup_record.expected_purchase_date);
        break;
    }
    if (!id || !*id)
        fz_die("fuzz_records", "a record without a record_id", NULL);
    if (dealer)
        fz_die("fuzz_records", "a dealer_id read from the file", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const enc[] = {NULL, "utf-8", "gbk", "gb18030", "gb2312"};
    static const crm_type_t types[] = {CRM_T_customer_file, CRM_T_service_record,
                                       CRM_T_followup_record};
    if (size == 0)
        return 0;
    crm_type_t type = types[data[size - 1] % 3];
    const char *e = enc[data[size - 1] / 3 % 5];
    char err[320];
    crm_csv_reader_t *r = crm_csv_open_records_mem((const char *) data, size - 1, type, e, err,
                                                   sizeof err);
    if (!r) {
        fz_reason("fuzz_records", err, sizeof err, true);
        return 0;
    }
    long last = 0;
    for (int guard = 0; guard < 100000; guard++) {
        crm_msg_t m;
        long row = 0;
        int rc = crm_csv_next(r, 1795000000000LL, &m, &row, err, sizeof err);
        if (rc == 0) {
            crm_msg_clear(&m);
            break;
        }
        if (row <= last)
            fz_die("fuzz_records", "row numbers do not grow", err);
        last = row;
        size_t n = 0;
        const char *const *cells = crm_csv_row_fields(r, &n);
        for (size_t i = 0; i < n; i++)
            if (!cells[i] || !fz_utf8(cells[i]))
                fz_die("fuzz_records", "a cell is not UTF-8", cells[i]);
        if (rc < 0) {
            fz_reason("fuzz_records", err, sizeof err, true);
            if (strncmp(err, "row ", 4) != 0 && strncmp(err, "out of memory", 13) != 0)
                fz_die("fuzz_records", "a reason that does not name the row", err);
        } else {
            s_record(&m, type);
        }
        crm_msg_clear(&m);
    }
    crm_csv_close(&r);
    return 0;
}
