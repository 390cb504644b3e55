/*  intake: what crm-intake does with the submissions waiting on its socket. */
#ifndef INTAKE_H
#define INTAKE_H

#include "crm_service.h"

/* The most submissions handled together (one pipeline of reads, one
   transaction of writes). */
#define INTAKE_BATCH_MAX 256

typedef struct {
    const void *frame; /* the request as received */
    size_t len;
    msgpack_sbuffer answer; /* filled by intake_handle: lead.accepted or lead.rejected */
} intake_req_t;

/* Answers `n` requests, in order, as if one after the other: each gets an
   answer (also a frame that cannot be decoded); the answers of stored
   outcomes are only given once the outcome is committed. */
void intake_handle(crm_service_t *svc, intake_req_t *reqs, int n);

#endif
