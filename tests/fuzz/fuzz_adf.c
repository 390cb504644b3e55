/*  fuzz_adf: libFuzzer target for crm_leadin_convert on ADF documents and
 *  e-mails carrying them (detection included, so JSON and junk too).
 *
 *  The document's bookkeeping must hold (raw kept, a reason for every
 *  failure, one line each, failures counted), every lead must have an id
 *  and the partner channel and survive encode -> decode, and converting the
 *  same bytes twice must give the same ids. Seeds: tests/fuzz/seeds/adf and
 *  tests/data/leads.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    crm_leadin_doc_t *doc = crm_leadin_convert(text, size, 1795000000000LL);
    fz_doc("fuzz_adf", doc, data, size);
    crm_leadin_doc_t *again = crm_leadin_convert(text, size, 1795000000000LL);
    if (doc && again) {
        if (again->nleads != doc->nleads || strcmp(again->err, doc->err) != 0)
            fz_die("fuzz_adf", "the same bytes converted differently", doc->err);
        for (size_t i = 0; i < doc->nleads; i++)
            if (doc->leads[i].ok &&
                strcmp(doc->leads[i].msg.body.lead_submit.submission_id,
                       again->leads[i].msg.body.lead_submit.submission_id) != 0)
                fz_die("fuzz_adf", "the same prospect got another id", doc->leads[i].err);
    }
    crm_leadin_doc_destroy(&again);
    /* Only ADF itself, without detection, as crm-intake may call it. */
    crm_leadin_doc_t *adf = crm_leadin_adf(text, size, 0);
    fz_doc("fuzz_adf", adf, data, size);
    crm_leadin_doc_destroy(&adf);
    crm_leadin_doc_destroy(&doc);
    return 0;
}
