/*  crm_table: one writer for crmctl's reports (see crm_table.h). */
#include "crm_table.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "crm_rate.h"

struct crm_table {
    FILE *out;
    crm_table_fmt_t fmt;
    const crm_col_t *cols;
    size_t ncols;
    size_t col;  /* the next cell's column */
    size_t rows; /* rows ended */
    bool failed; /* out of memory on the way */
    /* text: every cell (NULL: no value), row after row, and the widths */
    char **cells;
    size_t ncells, cap;
};

int crm_table_fmt_parse(const char *format, crm_table_fmt_t *fmt)
{
    if (!format || !strcmp(format, "text") || !strcmp(format, "table"))
        *fmt = CRM_TABLE_TEXT;
    else if (!strcmp(format, "json"))
        *fmt = CRM_TABLE_JSON;
    else if (!strcmp(format, "csv"))
        *fmt = CRM_TABLE_CSV;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------ csv */

/* `v` with each '"' written as `quote`. */
static void s_csv_escaped(FILE *out, const char *v, const char *quote)
{
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            fputs(quote, out);
        else
            fputc(*p, out);
    }
}

/* A header cell, quoted only when it must be (RFC 4180). */
static void s_csv_plain(FILE *out, const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    s_csv_escaped(out, v, "\"\"");
    fputc('"', out);
}

/* Free text, always quoted; one that Excel would take for a formula starts
   with ' instead, which Excel shows as text and does not run. */
static void s_csv_text(FILE *out, const char *v)
{
    fputc('"', out);
    if (*v && strchr("=+-@\t\r", *v))
        fputc('\'', out);
    s_csv_escaped(out, v, "\"\"");
    fputc('"', out);
}

/* An identifier as the formula ="...", so Excel keeps it as text: an
   18-digit ID keeps its last digits, a postcode its leading 0. A quote in
   it is doubled for the formula's string and again for the CSV. */
static void s_csv_id(FILE *out, const char *v)
{
    fputs("\"=\"\"", out);
    s_csv_escaped(out, v, "\"\"\"\"");
    fputs("\"\"\"", out);
}

/* ------------------------------------------------------------ json */

void crm_table_json_str(FILE *out, const char *v)
{
    if (!v) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* ------------------------------------------------------------ text */

/* How many terminal columns `v` takes. */
static size_t s_width(const char *v)
{
    size_t w = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) v;
    while (*p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, -1, &cp);
        if (n <= 0) {
            w++, p++;
            continue;
        }
        int cw = utf8proc_charwidth(cp);
        w += cw > 0 ? (size_t) cw : 0;
        p += n;
    }
    return w;
}

/* A copy of `v` safe on a terminal and in one line: a line break or tab
   becomes a space, any other control character (an escape sequence typed
   into a dealer's system) or a byte that is not UTF-8 becomes '?'. */
static char *s_terminal_copy(const char *v)
{
    char *copy = malloc(strlen(v) + 1), *q = copy;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) v;
    while (copy && *p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, -1, &cp);
        if (n <= 0) {
            *q++ = '?', p++;
        } else if (utf8proc_category(cp) == UTF8PROC_CATEGORY_CC) {
            *q++ = cp == '\t' || cp == '\n' || cp == '\r' ? ' ' : '?';
            p += n;
        } else {
            memcpy(q, p, (size_t) n);
            q += n, p += n;
        }
    }
    if (copy)
        *q = '\0';
    return copy;
}

/* Keeps a text cell (taking `v`, NULL for no value) for crm_table_finish. */
static void s_keep(crm_table_t *t, char *v, bool had_value)
{
    if (had_value && !v)
        t->failed = true;
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **cells = realloc(t->cells, cap * sizeof *cells);
        if (!cells) {
            free(v);
            t->failed = true;
            return;
        }
        t->cells = cells, t->cap = cap;
    }
    t->cells[t->ncells++] = v;
}

static bool s_right(crm_col_kind_t kind)
{
    return kind == CRM_COL_INT || kind == CRM_COL_RATE || kind == CRM_COL_FEN;
}

static void s_text_row(crm_table_t *t, char *const *cells, const size_t *widths)
{
    for (size_t c = 0; c < t->ncols; c++) {
        const char *v = cells[c] ? cells[c] : "-";
        size_t pad = widths[c] - s_width(v);
        bool right = s_right(t->cols[c].kind), last = c + 1 == t->ncols;
        fprintf(t->out, "%s%*s%s%*s", c ? "  " : "", right ? (int) pad : 0, "", v,
                right || last ? 0 : (int) pad, "");
    }
    fputs("\n", t->out);
}

static void s_text_print(crm_table_t *t)
{
    size_t *widths = calloc(t->ncols, sizeof *widths);
    char **titles = calloc(t->ncols, sizeof *titles);
    if (!widths || !titles) {
        t->failed = true;
    } else {
        for (size_t c = 0; c < t->ncols; c++) {
            titles[c] = (char *) t->cols[c].title;
            widths[c] = s_width(titles[c]);
        }
        for (size_t i = 0; i < t->ncells; i++) {
            size_t w = s_width(t->cells[i] ? t->cells[i] : "-"), c = i % t->ncols;
            if (w > widths[c])
                widths[c] = w;
        }
        s_text_row(t, titles, widths);
        for (size_t i = 0; i + t->ncols <= t->ncells; i += t->ncols)
            s_text_row(t, t->cells + i, widths);
    }
    free(titles);
    free(widths);
}

/* ------------------------------------------------------------ the table */

crm_table_t *crm_table_new(FILE *out, crm_table_fmt_t fmt, const crm_col_t *cols, size_t ncols,
                           int flags)
{
    assert(out && cols && ncols);
    crm_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->out = out, t->fmt = fmt, t->cols = cols, t->ncols = ncols;
    if (fmt == CRM_TABLE_CSV) {
        if (!(flags & CRM_TABLE_MORE))
            fputs("\xEF\xBB\xBF", out);
        for (size_t c = 0; c < ncols; c++) {
            if (c)
                fputc(',', out);
            s_csv_plain(out, cols[c].title);
        }
        fputs("\r\n", out);
    } else if (fmt == CRM_TABLE_JSON) {
        fputc('[', out);
    }
    return t;
}

/* Starts the next cell: json opens the row and writes the key, csv the
   separator. */
static void s_cell(crm_table_t *t)
{
    assert(t->col < t->ncols);
    if (t->fmt == CRM_TABLE_JSON) {
        if (t->col == 0)
            fputs(t->rows ? ",\n{" : "{", t->out);
        else
            fputc(',', t->out);
        crm_table_json_str(t->out, t->cols[t->col].name);
        fputc(':', t->out);
    } else if (t->fmt == CRM_TABLE_CSV && t->col) {
        fputc(',', t->out);
    }
}

void crm_table_text(crm_table_t *t, const char *v)
{
    crm_col_kind_t kind = t->cols[t->col].kind;
    assert(!v || kind == CRM_COL_TEXT || kind == CRM_COL_ID);
    s_cell(t);
    if (t->fmt == CRM_TABLE_TEXT)
        s_keep(t, v ? s_terminal_copy(v) : NULL, v != NULL);
    else if (t->fmt == CRM_TABLE_JSON)
        crm_table_json_str(t->out, v);
    else if (v && kind == CRM_COL_ID)
        s_csv_id(t->out, v);
    else if (v)
        s_csv_text(t->out, v);
    t->col++;
}

void crm_table_int(crm_table_t *t, int64_t v)
{
    crm_col_kind_t kind = t->cols[t->col].kind;
    assert(kind == CRM_COL_INT || kind == CRM_COL_FEN);
    s_cell(t);
    char buf[32];
    if (kind == CRM_COL_FEN && t->fmt != CRM_TABLE_JSON)
        crm_yuan_format(v, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%" PRId64, v);
    if (t->fmt == CRM_TABLE_TEXT)
        s_keep(t, strdup(buf), true);
    else
        fputs(buf, t->out);
    t->col++;
}

void crm_table_rate(crm_table_t *t, int64_t num, int64_t den)
{
    assert(t->cols[t->col].kind == CRM_COL_RATE);
    s_cell(t);
    char buf[32];
    if (t->fmt == CRM_TABLE_JSON) {
        fputs(crm_rate_percent(num, den, buf, sizeof buf) < 0 ? "null" : buf, t->out);
    } else {
        crm_rate_format(num, den, buf, sizeof buf);
        if (t->fmt == CRM_TABLE_TEXT)
            s_keep(t, strdup(buf), true);
        else
            fputs(buf, t->out);
    }
    t->col++;
}

void crm_table_end_row(crm_table_t *t)
{
    while (t->col < t->ncols)
        crm_table_text(t, NULL);
    if (t->fmt == CRM_TABLE_JSON)
        fputc('}', t->out);
    else if (t->fmt == CRM_TABLE_CSV)
        fputs("\r\n", t->out);
    t->col = 0;
    t->rows++;
}

int crm_table_finish(crm_table_t **tp)
{
    crm_table_t *t = tp ? *tp : NULL;
    if (!t)
        return 0;
    /* A row left open is a caller's mistake; it is ended, not lost. */
    assert(t->col == 0);
    if (t->col)
        crm_table_end_row(t);
    if (t->fmt == CRM_TABLE_TEXT)
        s_text_print(t);
    else if (t->fmt == CRM_TABLE_JSON)
        fputs("]\n", t->out);
    int rc = fflush(t->out) == 0 && !ferror(t->out) && !t->failed ? 0 : -1;
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
    *tp = NULL;
    return rc;
}
