/*  crm_log: one key=value line per event on stderr.
 *
 *  Every line carries the time (UTC), the level, the service and, while a
 *  message is being handled, its id, so that one grep follows a message
 *  through every service. Phones and ID numbers are never logged in clear:
 *  pass them through crm_mask_phone / crm_mask_id first.
 */
#ifndef CRM_LOG_H
#define CRM_LOG_H

#include <stddef.h>

typedef enum { CRM_LOG_DEBUG = 0, CRM_LOG_INFO, CRM_LOG_WARN, CRM_LOG_ERROR } crm_level_t;

void crm_log_init(const char *service, const char *level);
/* Sets the message id printed on every line until cleared with NULL. */
void crm_log_context(const char *msg_id);
/* `fmt` formats the key=value pairs after the fixed ones, e.g.
   crm_log(CRM_LOG_INFO, "lead.accepted", "lead=%s customer=%s", ...). */
void crm_log(crm_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define crm_debug(event, ...) crm_log(CRM_LOG_DEBUG, event, __VA_ARGS__)
#define crm_info(event, ...) crm_log(CRM_LOG_INFO, event, __VA_ARGS__)
#define crm_warn(event, ...) crm_log(CRM_LOG_WARN, event, __VA_ARGS__)
#define crm_error(event, ...) crm_log(CRM_LOG_ERROR, event, __VA_ARGS__)

/* Copies `in` into `out` (of `size` bytes) for a log value: quotes, spaces,
   control bytes and '=' become '_', and it is cut at size-1. Returns out. */
const char *crm_log_value(const char *in, char *out, size_t size);
/* 13812345678 -> 138****5678: the first three and the last four characters
   stay (for a landline, the start of its area code). */
const char *crm_mask_phone(const char *in, char *out, size_t size);
/* 11010519491231002X -> 110105********002X (address code and last four). */
const char *crm_mask_id(const char *in, char *out, size_t size);

#endif
