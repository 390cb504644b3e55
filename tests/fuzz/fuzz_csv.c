/*  fuzz_csv: libFuzzer target for the CSV reader, from memory.
 *
 *  The last byte of the input picks the encoding (detected, utf-8, gbk,
 *  gb18030, gb2312), the bytes before it are the file, so the seeds from
 *  tests/data/leads keep their header line. Every row read must come with
 *  its cells as NUL-terminated UTF-8 (undecodable bytes become U+FFFD), a
 *  refused row with a one-line reason naming the row, an accepted one with
 *  an id, channel autoshow and a source. Seeds: tests/fuzz/seeds/csv and
 *  tests/data/leads.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_cells(const char *const *cells, size_t n)
{
    for (size_t i = 0; cells && i < n; i++)
        if (!cells[i] || !fz_utf8(cells[i]))
            fz_die("fuzz_csv", "a cell is not UTF-8", cells[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const enc[] = {NULL, "utf-8", "gbk", "gb18030", "gb2312"};
    if (size == 0)
        return 0;
    const char *e = enc[data[size - 1] % 5];
    char err[256];
    crm_csv_reader_t *r = crm_csv_open_mem((const char *) data, size - 1, e, "fuzz.csv", err,
                                           sizeof err);
    if (!r) {
        fz_reason("fuzz_csv", err, sizeof err, true);
        return 0;
    }
    size_t ncols = 0;
    for (const char *const *h = crm_csv_header(r); h && h[ncols]; h++)
        if (!fz_utf8(*h))
            fz_die("fuzz_csv", "a header cell is not UTF-8", *h);
    char delim = crm_csv_delimiter(r);
    if (delim != ',' && delim != '\t')
        fz_die("fuzz_csv", "an unknown delimiter", NULL);
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
            fz_die("fuzz_csv", "row numbers do not grow", err);
        last = row;
        size_t n = 0;
        s_cells(crm_csv_row_fields(r, &n), n);
        if (rc < 0) {
            fz_reason("fuzz_csv", err, sizeof err, true);
            if (strncmp(err, "row ", 4) != 0 && strncmp(err, "out of memory", 13) != 0)
                fz_die("fuzz_csv", "a reason that does not name the row", err);
        } else {
            fz_lead("fuzz_csv", &m, "autoshow");
            if (!m.body.lead_submit.source)
                fz_die("fuzz_csv", "a row without a source", NULL);
        }
        crm_msg_clear(&m);
        double p = crm_csv_progress(r);
        if (!(p >= 0.0 && p <= 1.0))
            fz_die("fuzz_csv", "progress out of 0..1", NULL);
    }
    crm_csv_close(&r);
    return 0;
}
