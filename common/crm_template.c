#include "crm_template.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "crm_notify_rules.h"

#define S_MAX_VARS 32
#define S_NAME_MAX 64

const char *const crm_template_optout_lines[] = {"拒收请回复R", "回T退订",  "退订回T",
                                                 "回TD退订",    "退订回TD", NULL};

struct crm_template_t {
    char *name;
    int channel;
    int cls;
    char *sign;
    char *subject;
    char *code;
    char *body;
    size_t nvars;
    char *vars[S_MAX_VARS];
};

static void s_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static char *s_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A control character: C0 but tab and newline, DEL, C1. */
static bool s_control(int32_t cp)
{
    return (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp < 0xa0);
}

/* Checks text as UTF-8 without control characters (a CR only before a LF
   when crlf); 0, or -1 with *line (1-based) and *cp (-1: invalid UTF-8). */
static int s_check_text(const char *text, size_t len, bool crlf, bool newline_ok, int *line,
                        int32_t *cp)
{
    *line = 1;
    size_t i = 0;
    while (i < len) {
        int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *) text + i,
                                              (utf8proc_ssize_t) (len - i), &c);
        if (n <= 0) {
            *cp = -1;
            return -1;
        }
        bool cr_ok = crlf && c == '\r' && i + 1 < len && text[i + 1] == '\n';
        if ((s_control(c) && !cr_ok) || (c == '\n' && !newline_ok) || c == 0) {
            *cp = c;
            return -1;
        }
        if (c == '\n')
            (*line)++;
        i += (size_t) n;
    }
    return 0;
}

static bool s_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool s_valid_name(const char *s, size_t n)
{
    if (n == 0 || n >= S_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_name_char(s[i]))
            return false;
    return true;
}

static int s_var_index(const crm_template_t *t, const char *name, size_t n)
{
    for (size_t i = 0; i < t->nvars; i++)
        if (strlen(t->vars[i]) == n && !memcmp(t->vars[i], name, n))
            return (int) i;
    return -1;
}

/* Every {{name}} in `text` (starting on `line`) declared; marks used. */
static int s_check_placeholders(const crm_template_t *t, const char *file, const char *text,
                                int line, bool *used, char *err, size_t errsz)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            line++;
            continue;
        }
        if (p[0] != '{' || p[1] != '{')
            continue;
        const char *name = p + 2, *q = name;
        while (*q && s_name_char(*q))
            q++;
        if (q[0] != '}' || q[1] != '}' || !s_valid_name(name, (size_t) (q - name))) {
            s_err(err, errsz, "%s:%d: malformed placeholder (want {{name}}, name [a-z][a-z0-9_]*)",
                  file, line);
            return -1;
        }
        int i = s_var_index(t, name, (size_t) (q - name));
        if (i < 0) {
            s_err(err, errsz, "%s:%d: {{%.*s}} is not a declared variable (vars:)", file, line,
                  (int) (q - name), name);
            return -1;
        }
        used[i] = true;
        p = q + 1;
    }
    return 0;
}

static bool s_ends_with_optout(const char *body)
{
    size_t n = strlen(body);
    while (n > 0 && (body[n - 1] == ' ' || body[n - 1] == '\t' || body[n - 1] == '\n'))
        n--;
    for (const char *const *l = crm_template_optout_lines; *l; l++) {
        size_t m = strlen(*l);
        if (m <= n && !memcmp(body + n - m, *l, m))
            return true;
    }
    return false;
}

/* The template's name and the channel its file name claims (NULL: none). */
static char *s_name_of(const char *file, char **claimed)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strcspn(base, ".");
    *claimed = NULL;
    const char *rest = base + n;
    if (*rest == '.') {
        const char *dot2 = strchr(rest + 1, '.');
        if (dot2 && !strcmp(dot2, ".txt"))
            *claimed = s_strndup(rest + 1, (size_t) (dot2 - rest - 1));
    }
    return s_strndup(base, n);
}

static void s_trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int s_parse_vars(crm_template_t *t, const char *file, int line, const char *v, size_t n,
                        char *err, size_t errsz)
{
    if (n == 0)
        return 0; /* a template without variables */
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        const char *name = v + i;
        size_t len = j - i;
        s_trim(&name, &len);
        if (!s_valid_name(name, len)) {
            s_err(err, errsz, "%s:%d: bad variable name '%.*s' (want [a-z][a-z0-9_]*)", file, line,
                  (int) len, name);
            return -1;
        }
        if (s_var_index(t, name, len) >= 0) {
            s_err(err, errsz, "%s:%d: variable %.*s declared twice", file, line, (int) len, name);
            return -1;
        }
        if (t->nvars == S_MAX_VARS) {
            s_err(err, errsz, "%s:%d: more than %d variables", file, line, S_MAX_VARS);
            return -1;
        }
        if (!(t->vars[t->nvars] = s_strndup(name, len))) {
            s_err(err, errsz, "%s:%d: out of memory", file, line);
            return -1;
        }
        t->nvars++;
        i = j + 1;
    }
    return 0;
}

static crm_template_t *s_parse(crm_template_t *t, const char *file, const char *text, size_t len,
                               char *err, size_t errsz)
{
    int line;
    int32_t cp;
    if (s_check_text(text, len, true, true, &line, &cp) != 0) {
        if (cp < 0)
            s_err(err, errsz, "%s:%d: invalid UTF-8", file, line);
        else
            s_err(err, errsz, "%s:%d: control character U+%04X", file, line, (unsigned) cp);
        return NULL;
    }
    char *claimed = NULL;
    if (!(t->name = s_name_of(file, &claimed)) || !t->name[0]) {
        free(claimed);
        s_err(err, errsz, "%s: no template name in the file name", file);
        return NULL;
    }
    t->channel = t->cls = -1;
    int vars_line = 0, subject_line = 0, seen = 0;
    const char *p = text, *end = text + len;
    line = 0;
    bool blank = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t) (le - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        line++;
        const char *l = p;
        p = nl ? nl + 1 : end;
        if (n == 0) {
            blank = true;
            break;
        }
        const char *colon = memchr(l, ':', n);
        size_t klen = colon ? (size_t) (colon - l) : 0;
        if (!colon || !s_valid_name(l, klen)) {
            s_err(err, errsz, "%s:%d: a header line is 'key: value'", file, line);
            goto fail;
        }
        const char *v = colon + 1;
        size_t vlen = n - klen - 1;
        s_trim(&v, &vlen);
        static const char *const keys[] = {"channel", "class", "sign", "subject", "vars", "code"};
        int k = -1;
        for (int i = 0; i < 6; i++)
            if (strlen(keys[i]) == klen && !memcmp(keys[i], l, klen))
                k = i;
        if (k < 0) {
            s_err(err, errsz, "%s:%d: unknown header key '%.*s'", file, line, (int) klen, l);
            goto fail;
        }
        if (seen & (1 << k)) {
            s_err(err, errsz, "%s:%d: header key %s given twice", file, line, keys[k]);
            goto fail;
        }
        seen |= 1 << k;
        char *val = s_strndup(v, vlen);
        if (!val) {
            s_err(err, errsz, "%s:%d: out of memory", file, line);
            goto fail;
        }
        if (k == 0 && (t->channel = crm_channel_parse(val)) < 0) {
            s_err(err, errsz, "%s:%d: unknown channel '%s'", file, line, val);
            free(val);
            goto fail;
        }
        if (k == 1 && (t->cls = crm_class_parse(val)) < 0) {
            s_err(err, errsz, "%s:%d: unknown class '%s'", file, line, val);
            free(val);
            goto fail;
        }
        if (k == 2 && (!*val || strstr(val, "【") || strstr(val, "】"))) {
            s_err(err, errsz, "%s:%d: sign is the signature's text, without 【】", file, line);
            free(val);
            goto fail;
        }
        if (k == 5 && (!*val || strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") !=
                                    strlen(val))) {
            s_err(err, errsz, "%s:%d: code is the gateway's template code (letters, digits, _ - .)", file, line);
            free(val);
            goto fail;
        }
        if (k == 2)
            t->sign = val;
        else if (k == 3)
            t->subject = val, subject_line = line;
        else if (k == 5)
            t->code = val;
        else
            free(val);
        if (k == 4) {
            vars_line = line;
            if (s_parse_vars(t, file, line, v, vlen, err, errsz) != 0)
                goto fail;
        }
    }
    if (!blank) {
        s_err(err, errsz, "%s:%d: no blank line after the header", file, line);
        goto fail;
    }
    if (t->channel < 0 || t->cls < 0 || !vars_line) {
        s_err(err, errsz, "%s:1: the header needs channel, class and vars", file);
        goto fail;
    }
    if (claimed && crm_channel_parse(claimed) != t->channel) {
        s_err(err, errsz, "%s:1: the file name says channel %s, the header %s", file, claimed,
              crm_channel_name(t->channel));
        goto fail;
    }
    if ((t->channel == CRM_CHANNEL_SMS) != (t->sign != NULL)) {
        s_err(err, errsz, "%s:1: sign is %s", file, t->sign ? "for sms only" : "required for sms");
        goto fail;
    }
    if (t->code && t->channel != CRM_CHANNEL_SMS) {
        s_err(err, errsz, "%s:1: code is for sms only", file);
        goto fail;
    }
    if ((t->channel == CRM_CHANNEL_EMAIL) != (t->subject != NULL)) {
        s_err(err, errsz, "%s:1: subject is %s", file,
              t->subject ? "for email only" : "required for email");
        goto fail;
    }
    int body_line = line + 1;
    size_t blen = (size_t) (end - p);
    while (blen > 0 && (p[blen - 1] == '\n' || p[blen - 1] == '\r'))
        blen--;
    if (blen == 0) {
        s_err(err, errsz, "%s:%d: empty body", file, body_line);
        goto fail;
    }
    /* The body without the CRs of CRLF lines. */
    if (!(t->body = malloc(blen + 1))) {
        s_err(err, errsz, "%s: out of memory", file);
        goto fail;
    }
    size_t o = 0;
    for (size_t i = 0; i < blen; i++)
        if (!(p[i] == '\r' && i + 1 < blen && p[i + 1] == '\n'))
            t->body[o++] = p[i];
    t->body[o] = '\0';

    bool used[S_MAX_VARS] = {false};
    if ((t->subject &&
         s_check_placeholders(t, file, t->subject, subject_line, used, err, errsz) != 0) ||
        s_check_placeholders(t, file, t->body, body_line, used, err, errsz) != 0)
        goto fail;
    for (size_t i = 0; i < t->nvars; i++)
        if (!used[i]) {
            s_err(err, errsz, "%s:%d: variable %s is declared but not used", file, vars_line,
                  t->vars[i]);
            goto fail;
        }
    if (t->channel == CRM_CHANNEL_SMS && t->cls == CRM_CLASS_MARKETING &&
        !s_ends_with_optout(t->body)) {
        int last = body_line;
        for (const char *b = t->body; *b; b++)
            last += *b == '\n';
        s_err(err, errsz,
              "%s:%d: a marketing SMS must end with an opt-out line (拒收请回复R, 回T退订, ...)",
              file, last);
        goto fail;
    }
    free(claimed);
    return t;
fail:
    free(claimed);
    return NULL;
}

crm_template_t *crm_template_parse(const char *file, const char *text, size_t len, char *err,
                                   size_t errsz)
{
    s_err(err, errsz, "%s", "");
    if (!file)
        file = "(template)";
    if (!text) {
        s_err(err, errsz, "%s: no text", file);
        return NULL;
    }
    if (len > CRM_TEMPLATE_MAX) {
        s_err(err, errsz, "%s: larger than %d bytes", file, CRM_TEMPLATE_MAX);
        return NULL;
    }
    crm_template_t *t = calloc(1, sizeof *t);
    if (!t) {
        s_err(err, errsz, "%s: out of memory", file);
        return NULL;
    }
    if (!s_parse(t, file, text, len, err, errsz))
        crm_template_destroy(&t);
    return t;
}

crm_template_t *crm_template_load(const char *path, char *err, size_t errsz)
{
    if (!path) {
        s_err(err, errsz, "(template): no path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_err(err, errsz, "%s: cannot open", path);
        return NULL;
    }
    char *buf = malloc(CRM_TEMPLATE_MAX + 1);
    size_t n = buf ? fread(buf, 1, CRM_TEMPLATE_MAX + 1, f) : 0;
    bool bad = !buf || ferror(f);
    fclose(f);
    crm_template_t *t = NULL;
    if (bad)
        s_err(err, errsz, "%s: cannot read", path);
    else
        t = crm_template_parse(path, buf, n, err, errsz);
    free(buf);
    return t;
}

void crm_template_destroy(crm_template_t **tpl_p)
{
    if (!tpl_p || !*tpl_p)
        return;
    crm_template_t *t = *tpl_p;
    free(t->name);
    free(t->sign);
    free(t->subject);
    free(t->code);
    free(t->body);
    for (size_t i = 0; i < t->nvars; i++)
        free(t->vars[i]);
    free(t);
    *tpl_p = NULL;
}

const char *crm_template_name(const crm_template_t *tpl)
{
    return tpl ? tpl->name : NULL;
}
int crm_template_channel(const crm_template_t *tpl)
{
    return tpl ? tpl->channel : -1;
}
int crm_template_class(const crm_template_t *tpl)
{
    return tpl ? tpl->cls : -1;
}
const char *crm_template_sign(const crm_template_t *tpl)
{
    return tpl ? tpl->sign : NULL;
}
const char *crm_template_subject(const crm_template_t *tpl)
{
    return tpl ? tpl->subject : NULL;
}
const char *crm_template_code(const crm_template_t *tpl)
{
    return !tpl ? NULL : tpl->code ? tpl->code : tpl->channel == CRM_CHANNEL_SMS ? tpl->name : NULL;
}
const char *crm_template_body(const crm_template_t *tpl)
{
    return tpl ? tpl->body : NULL;
}
size_t crm_template_nvars(const crm_template_t *tpl)
{
    return tpl ? tpl->nvars : 0;
}

const char *crm_template_var(const crm_template_t *tpl, size_t i)
{
    return tpl && i < tpl->nvars ? tpl->vars[i] : NULL;
}

/* ------------------------------------------------------------ rendering */

/* What a render writes: a memory stream (open_memstream), nothing grown by hand. */
typedef struct {
    FILE *f;
    char *s;
    size_t len;
} s_buf_t;

static bool s_open(s_buf_t *b, char *err, size_t errsz)
{
    b->s = NULL;
    b->len = 0;
    b->f = open_memstream(&b->s, &b->len);
    if (!b->f)
        s_err(err, errsz, "out of memory");
    return b->f != NULL;
}

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (n)
        fwrite(s, 1, n, b->f);
}

/* The text written, or NULL after an error (the stream failed). */
static char *s_done(s_buf_t *b, char *err, size_t errsz)
{
    bool failed = ferror(b->f) != 0;
    if (fclose(b->f) != 0 || failed || !b->s) {
        free(b->s);
        s_err(err, errsz, "out of memory");
        return NULL;
    }
    return b->s;
}

static void s_drop(s_buf_t *b)
{
    fclose(b->f);
    free(b->s);
}

/* Every declared variable's value from params into values; 0 or -1. */
static int s_values(const crm_template_t *t, const char *const *params, size_t nparams,
                    const char **values, char *err, size_t errsz)
{
    for (size_t i = 0; i < t->nvars; i++) {
        size_t n = strlen(t->vars[i]);
        values[i] = NULL;
        for (size_t j = 0; params && j < nparams; j++) {
            if (!params[j] || strncmp(params[j], t->vars[i], n) || params[j][n] != '=')
                continue;
            if (values[i]) {
                s_err(err, errsz, "%s: variable %s given twice", t->name, t->vars[i]);
                return -1;
            }
            values[i] = params[j] + n + 1;
        }
        if (!values[i]) {
            s_err(err, errsz, "%s: variable %s missing", t->name, t->vars[i]);
            return -1;
        }
        int line;
        int32_t cp;
        if (s_check_text(values[i], strlen(values[i]), false, false, &line, &cp) != 0) {
            s_err(err, errsz, "%s: variable %s: %s", t->name, t->vars[i],
                  cp < 0 ? "invalid UTF-8" : "control character");
            return -1;
        }
    }
    return 0;
}

static char *s_fill(const crm_template_t *t, const char *text, const char *prefix,
                    const char *const *params, size_t nparams, char *err, size_t errsz)
{
    s_err(err, errsz, "%s", "");
    if (!t || !text) {
        s_err(err, errsz, "no template or no text");
        return NULL;
    }
    const char *values[S_MAX_VARS];
    if (s_values(t, params, nparams, values, err, errsz) != 0)
        return NULL;
    s_buf_t b;
    if (!s_open(&b, err, errsz))
        return NULL;
    if (prefix)
        s_put(&b, prefix, strlen(prefix));
    const char *p = text;
    while (*p) {
        const char *o = strstr(p, "{{");
        if (!o) {
            s_put(&b, p, strlen(p));
            break;
        }
        s_put(&b, p, (size_t) (o - p));
        const char *name = o + 2, *c = strstr(name, "}}");
        int i = c ? s_var_index(t, name, (size_t) (c - name)) : -1;
        if (i < 0) { /* load made sure it cannot be */
            s_drop(&b);
            s_err(err, errsz, "%s: malformed placeholder", t->name);
            return NULL;
        }
        s_put(&b, values[i], strlen(values[i]));
        p = c + 2;
    }
    return s_done(&b, err, errsz);
}

char *crm_template_render(const crm_template_t *tpl, const char *const *params, size_t nparams,
                          bool with_sign, char *err, size_t errsz)
{
    char sign[256] = "";
    if (tpl && with_sign && tpl->sign)
        snprintf(sign, sizeof sign, "【%s】", tpl->sign);
    return s_fill(tpl, tpl ? tpl->body : NULL, sign[0] ? sign : NULL, params, nparams, err, errsz);
}

char *crm_template_render_subject(const crm_template_t *tpl, const char *const *params,
                                  size_t nparams, char *err, size_t errsz)
{
    return s_fill(tpl, tpl ? tpl->subject : NULL, NULL, params, nparams, err, errsz);
}

static void s_put_json(s_buf_t *b, const char *s)
{
    s_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            char e[2] = {'\\', *s};
            s_put(b, e, 2);
        } else {
            s_put(b, s, 1); /* no control characters: s_values refused them */
        }
    }
    s_put(b, "\"", 1);
}

char *crm_template_params_json(const crm_template_t *tpl, const char *const *params, size_t nparams,
                               char *err, size_t errsz)
{
    s_err(err, errsz, "%s", "");
    if (!tpl) {
        s_err(err, errsz, "no template");
        return NULL;
    }
    const char *values[S_MAX_VARS];
    if (s_values(tpl, params, nparams, values, err, errsz) != 0)
        return NULL;
    s_buf_t b;
    if (!s_open(&b, err, errsz))
        return NULL;
    s_put(&b, "{", 1);
    for (size_t i = 0; i < tpl->nvars; i++) {
        if (i)
            s_put(&b, ",", 1);
        s_put_json(&b, tpl->vars[i]);
        s_put(&b, ":", 1);
        s_put_json(&b, values[i]);
    }
    s_put(&b, "}", 1);
    return s_done(&b, err, errsz);
}
