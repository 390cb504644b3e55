/*  intake: what crm-intake does with lead submissions (see intake.c). */
#ifndef INTAKE_H
#define INTAKE_H

#include "crm_service.h"

/* lead.submit: the idempotency key is the submission id ("<id>~Q12" for a
   quarantine retry); a batch of them is one transaction. */
int intake_submit_key(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err);
crm_handled_t intake_on_submit(crm_service_t *svc, crm_req_t **reqs, int n, crm_tx_t *tx);
/* The checks of a lead, made once as it is taken (the endpoint's prepare). */
void intake_prepare(crm_req_t *req);
/* A kept answer without its submission id (the key gives it back). */
void intake_kept(crm_msg_t *answer, const char *key, bool restore);

/* lead.unconvertible: kept in quarantine with its reason; the key is a
   digest of the document, so the same file sent again is answered alike. */
int intake_document_key(const crm_msg_t *msg, char *out, size_t size, crm_err_t *err);
crm_handled_t intake_on_unconvertible(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);

/* Errors on the lead endpoint are lead.rejected answers. */
void intake_error(crm_req_t *req, const char *field, const char *code, const char *text);

#endif
