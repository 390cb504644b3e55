/*  crm_table: one writer for crmctl's reports, in the form the user asked for.
 *
 *  A report is a list of rows with the same columns. It prints as
 *    text  a table for a terminal: a header row, columns aligned by display
 *          width (Chinese characters take two columns), numbers to the right;
 *    json  an array of objects keyed by the columns' names: integers and
 *          rates (29.70 for 29.70%) as numbers, text as strings;
 *    csv   what Excel in China opens as written: UTF-8 with a BOM, CRLF,
 *          RFC 4180 quoting; identifiers kept as text (="0571-88888888"), so
 *          an 18-digit ID keeps its last digits and a postcode its leading 0;
 *          free text starting with = + - @ TAB CR prefixed with ' so it is
 *          never run as a formula.
 *
 *  The caller adds cells left to right, one call per column, and ends each
 *  row. Text is buffered until crm_table_finish (widths need every row);
 *  json and csv are written as they come. Print nothing else on the output
 *  between crm_table_new and crm_table_finish.
 */
#ifndef CRM_TABLE_H
#define CRM_TABLE_H

#include <stdint.h>
#include <stdio.h>

typedef enum { CRM_TABLE_TEXT, CRM_TABLE_JSON, CRM_TABLE_CSV } crm_table_fmt_t;

typedef enum {
    CRM_COL_TEXT, /* free text (names, messages, codes): a JSON string */
    CRM_COL_ID,   /* an identifier (ID number, phone, postcode, customer or
                     dealer id): a JSON string, text in Excel */
    CRM_COL_INT,  /* an integer */
    CRM_COL_RATE, /* num/den: "29.70%" in text and csv, 29.70 in json */
    CRM_COL_FEN,  /* money in fen: "50.00" (yuan) in text and csv, 5000 in json */
} crm_col_kind_t;

typedef struct {
    const char *name;  /* the JSON key: "dealer_id" */
    const char *title; /* the text and csv header: "经销商 dealer" */
    crm_col_kind_t kind;
} crm_col_t;

typedef struct crm_table crm_table_t;

/* Flags for crm_table_new. */
enum {
    /* Not the first table on this output: csv writes no second BOM. */
    CRM_TABLE_MORE = 1,
};

/* The form named by crmctl's --format value: NULL, "text" or "table" (text),
   "json", "csv". 0, or -1 for anything else. */
int crm_table_fmt_parse(const char *format, crm_table_fmt_t *fmt);

/* A report on `out` (not owned) with `ncols` columns; `cols` and the
   strings in it must outlive the table. csv writes the BOM (unless
   CRM_TABLE_MORE) and the header now, json its '['. NULL when out of
   memory. */
crm_table_t *crm_table_new(FILE *out, crm_table_fmt_t fmt, const crm_col_t *cols, size_t ncols,
                           int flags);
/* The next cell. crm_table_text fills a TEXT or ID column, or with NULL any
   column: no value ("-" in text, an empty csv cell, json null). The string
   is copied. crm_table_int fills an INT or FEN column. crm_table_rate fills
   a RATE column; a `den` of 0 prints "-" (text, csv), null (json). */
void crm_table_text(crm_table_t *t, const char *v);
void crm_table_int(crm_table_t *t, int64_t v);
void crm_table_rate(crm_table_t *t, int64_t num, int64_t den);
/* Ends a row; cells not given are no value. */
void crm_table_end_row(crm_table_t *t);
/* Prints what is left (text: the whole table; json: "]\n"), destroys the
   table and sets *t to NULL; safe on NULL. 0, or -1 when writing failed or
   memory ran out on the way. */
int crm_table_finish(crm_table_t **t);

/* `v` as a JSON string with its quotes, for a caller printing an envelope
   around tables ({"month":"2026-03","entries":[...]}). */
void crm_table_json_str(FILE *out, const char *v);

#endif
