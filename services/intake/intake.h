/*  intake: what crm-intake does with one submission. */
#ifndef INTAKE_H
#define INTAKE_H

#include "crm_service.h"

/* Answers one request frame: a lead.accepted or lead.rejected envelope is
   appended to `answer` (always, also for frames that cannot be decoded). */
void intake_handle(crm_service_t *svc, const void *frame, size_t len, msgpack_sbuffer *answer);

#endif
