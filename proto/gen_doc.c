/* crm-proto-doc: prints the message reference (proto/README.md) derived
   from messages.def, so the document can never drift from the code. */
#include "crm_proto.h"

int main(void)
{
    crm_proto_write_reference(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
