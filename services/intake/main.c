/*  crm-intake: takes leads from websites, auto shows and partner feeds.
 *
 *  Foundation stage: the service joins the bus (publishes, heartbeats,
 *  reports its status); lead handling arrives with the intake issue.
 */
#include "crm_service.h"

static const crm_service_def_t intake_def = {
    .name = "intake",
    .summary = "Lead intake: acknowledged, deduplicated, validated leads.",
    .pub_default = "tcp://127.0.0.1:7101",
};

int main(int argc, char **argv) { return crm_service_main(&intake_def, argc, argv); }
