/*  Between crm_service.c and crm_request.c only. */
#ifndef CRM_SERVICE_PRIVATE_H
#define CRM_SERVICE_PRIVATE_H

#include "crm_service.h"

/* The service destroys its endpoints when it stops. */
int crm_service_track_endpoint(crm_service_t *svc, crm_endpoint_t *ep);
void crm_endpoint_destroy(crm_endpoint_t **ep_p);

#endif
