/*  crm_template: the texts crm-notifier sends, one UTF-8 file per template
 *  (common/data/templates/<name>.<channel>.txt):
 *
 *      channel: sms
 *      class: transactional
 *      sign: 安途汽车
 *      vars: customer_name, at
 *
 *      {{customer_name}}您好，您预约的试驾时间为{{at}}……
 *
 *  Header keys (each once, no others): channel and class (the names of
 *  crm_notify_rules), vars (a comma-separated list, may be empty), sign
 *  (the SMS signature, required for sms and refused elsewhere: the
 *  gateways take it apart from the text, SignName) and subject (required
 *  for email, refused elsewhere; it may hold placeholders too) and code
 *  (sms only, optional: the template code the gateway approved, SMS_123;
 *  absent: the template's name). A blank
 *  line ends the header; the rest, trailing newlines cut, is the body.
 *
 *  Loading checks what would otherwise go wrong at 21:00 in front of a
 *  customer: valid UTF-8, no control characters but a newline (and a CR
 *  before it) and tab, every {{name}} declared, every declared variable
 *  used, and a marketing SMS ending with the opt-out line (the carriers'
 *  rule for marketing SMS: a way to refuse in every message). Errors read
 *  "FILE:LINE: what", naming the variable.
 *
 *  Rendering fills every placeholder or fails: never a half-filled message.
 */
#ifndef CRM_TEMPLATE_H
#define CRM_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct crm_template_t crm_template_t;

/* Largest template file read, in bytes. */
#define CRM_TEMPLATE_MAX 65536

/* The opt-out lines a marketing SMS body may end with (NULL-terminated):
   "拒收请回复R", "回T退订", "退订回T", "回TD退订", "退订回TD". */
extern const char *const crm_template_optout_lines[];

/* A template from `text` (`len` bytes); `file` names it in errors and gives
   its name (the base name up to the first '.'; a base name of the form
   NAME.CHANNEL.txt must agree with the channel header). NULL with `err`
   ("FILE:LINE: ...") when it is not a valid template. The caller owns the
   result. */
crm_template_t *crm_template_parse(const char *file, const char *text, size_t len, char *err,
                                   size_t errsz);
/* The same from a file (at most CRM_TEMPLATE_MAX bytes). */
crm_template_t *crm_template_load(const char *path, char *err, size_t errsz);
void crm_template_destroy(crm_template_t **tpl_p);

/* What it is; strings owned by the template. */
const char *crm_template_name(const crm_template_t *tpl);
int crm_template_channel(const crm_template_t *tpl);         /* crm_channel_t */
int crm_template_class(const crm_template_t *tpl);           /* crm_class_t */
const char *crm_template_sign(const crm_template_t *tpl);    /* sms; else NULL */
const char *crm_template_subject(const crm_template_t *tpl); /* email, unrendered; else NULL */
const char *crm_template_code(const crm_template_t *tpl);    /* sms: the gateway's code; else NULL */
const char *crm_template_body(const crm_template_t *tpl);    /* unrendered */
/* The declared variables in their declared order (Tencent's
   TemplateParamSet takes the values in that order). */
size_t crm_template_nvars(const crm_template_t *tpl);
const char *crm_template_var(const crm_template_t *tpl, size_t i);

/* Values are given as notify.request carries them, "name=value" (nparams
   of them). Names not declared are ignored; a declared one given twice, a
   declared one missing, or a value with a control character or invalid
   UTF-8 is an error (`err` names it). */

/* `text` (the body or the subject) with every placeholder filled; for an
   SMS body `with_sign` puts 【sign】 first, as the phone shows it. A new
   string the caller frees, or NULL with `err`. */
char *crm_template_render(const crm_template_t *tpl, const char *const *params, size_t nparams,
                          bool with_sign, char *err, size_t errsz);
char *crm_template_render_subject(const crm_template_t *tpl, const char *const *params,
                                  size_t nparams, char *err, size_t errsz);
/* The declared variables as Aliyun's TemplateParam: a JSON object of
   strings, {"at":"2026-03-02 10:00"}, in declared order. Same rules and
   ownership as crm_template_render. */
char *crm_template_params_json(const crm_template_t *tpl, const char *const *params, size_t nparams,
                               char *err, size_t errsz);

#endif
