/*  fuzz_json: libFuzzer target for crm_leadin_json, the website's lead.
 *
 *  Every input is either refused with a one-line reason and nothing left
 *  allocated, or becomes a lead with an id and a channel that encodes and
 *  decodes with its content key unchanged; converting it again gives the
 *  same id (a resent form is one lead). Seeds: tests/fuzz/seeds/json and
 *  tests/data/leads.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_msg_t m, again;
    char err[256];
    memset(err, 'x', sizeof err);
    const char *text = (const char *) data;
    if (crm_leadin_json(text, size, 1795000000000LL, &m, err, sizeof err) != 0) {
        fz_reason("fuzz_json", err, sizeof err, true);
        if (m.body.lead_submit.channel || m.body.lead_submit.submission_id)
            fz_die("fuzz_json", "a refused lead keeps fields", err);
        crm_msg_clear(&m);
        return 0;
    }
    fz_lead("fuzz_json", &m, NULL);
    if (crm_leadin_json(text, size, 1795000000000LL, &again, err, sizeof err) != 0 ||
        strcmp(m.body.lead_submit.submission_id, again.body.lead_submit.submission_id) != 0)
        fz_die("fuzz_json", "the same JSON got another id", m.body.lead_submit.submission_id);
    crm_msg_clear(&again);
    crm_msg_clear(&m);
    return 0;
}
