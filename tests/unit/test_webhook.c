/*  crm_webhook: the Standard Webhooks known-answer vector, sign then verify,
 *  each changed part breaking the signature, stale and future timestamps,
 *  key rotation, Python's hmac as an independent signer, secrets, and
 *  hostile headers and bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crm_webhook.h"

/* From the spec's libraries (shared/reference/calendar-sms-webhooks.md §2). */
#define KAT_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define KAT_KEY_HEX "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0"
#define KAT_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define KAT_TS 1614265330
#define KAT_BODY "{\"test\": 2432232314}"
#define KAT_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

#define OTHER_SECRET "whsec_SVlbuHqkfiD4+jVuUp3qpKqXUh9Z4uT7b9CmJxtHthOLfl0W"

static crm_webhook_key_t s_key(const char *secret)
{
    crm_webhook_key_t key;
    assert_int_equal(crm_webhook_secret_parse(secret, &key), 0);
    return key;
}

static crm_webhook_verdict_t s_verify(const char *secret, const crm_webhook_headers_t *h,
                                      const char *body, int64_t now)
{
    return crm_webhook_verify(secret, h->id, h->timestamp, h->signature, body, strlen(body), now,
                              0);
}

/* ------------------------------------------------------------ known answer */

static void test_known_answer_vector_of_the_spec(void **state)
{
    (void) state;
    crm_webhook_key_t key = s_key(KAT_SECRET);
    assert_int_equal(key.len, 24);
    char hex[2 * CRM_WEBHOOK_KEY_MAX + 1] = "";
    for (size_t i = 0; i < key.len; i++)
        snprintf(hex + 2 * i, 3, "%02x", key.bytes[i]);
    assert_string_equal(hex, KAT_KEY_HEX);

    crm_webhook_headers_t h;
    assert_int_equal(crm_webhook_sign(KAT_ID, KAT_TS, KAT_BODY, strlen(KAT_BODY), &key, 1, &h), 0);
    assert_string_equal(h.id, KAT_ID);
    assert_string_equal(h.timestamp, "1614265330");
    assert_string_equal(h.signature, KAT_SIG);

    assert_int_equal(crm_webhook_verify(KAT_SECRET, KAT_ID, "1614265330", KAT_SIG, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_OK);
    /* The libraries' invalid case: the last base64 digit changed. */
    assert_int_equal(crm_webhook_verify(KAT_SECRET, KAT_ID, "1614265330",
                                        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_MISMATCH);
    /* The key without its prefix, as the libraries accept it. */
    assert_int_equal(crm_webhook_verify("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", KAT_ID, "1614265330",
                                        KAT_SIG, KAT_BODY, strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_OK);
}

/* ------------------------------------------------------------ sign, verify */

static void test_signed_webhook_verifies_and_any_change_breaks_it(void **state)
{
    (void) state;
    const char *body = "{\"type\":\"lead.assigned\",\"lead\":\"L42\"}";
    const int64_t ts = 1790000000;
    crm_webhook_key_t key = s_key(KAT_SECRET);
    crm_webhook_headers_t h;
    assert_int_equal(crm_webhook_sign("ntf_SZ1_000042", ts, body, strlen(body), &key, 1, &h), 0);
    assert_int_equal(s_verify(KAT_SECRET, &h, body, ts + 2), CRM_WEBHOOK_OK);

    assert_int_equal(s_verify(OTHER_SECRET, &h, body, ts), CRM_WEBHOOK_MISMATCH);
    assert_int_equal(s_verify(KAT_SECRET, &h, "{\"type\":\"lead.assigned\",\"lead\":\"L43\"}", ts),
                     CRM_WEBHOOK_MISMATCH);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, "ntf_SZ1_000043", h.timestamp, h.signature,
                                        body, strlen(body), ts, 0),
                     CRM_WEBHOOK_MISMATCH);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, "1790000001", h.signature, body,
                                        strlen(body), ts, 0),
                     CRM_WEBHOOK_MISMATCH);
    /* One byte less of the body (a truncated POST). */
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, h.timestamp, h.signature, body,
                                        strlen(body) - 1, ts, 0),
                     CRM_WEBHOOK_MISMATCH);
}

static void test_timestamps_outside_the_tolerance_are_refused(void **state)
{
    (void) state;
    const char *body = "{}";
    const int64_t ts = 1790000000;
    crm_webhook_key_t key = s_key(KAT_SECRET);
    crm_webhook_headers_t h;
    assert_int_equal(crm_webhook_sign("msg_1", ts, body, 2, &key, 1, &h), 0);
    /* Default: five minutes either side, the edges included. */
    assert_int_equal(s_verify(KAT_SECRET, &h, body, ts + 300), CRM_WEBHOOK_OK);
    assert_int_equal(s_verify(KAT_SECRET, &h, body, ts + 301), CRM_WEBHOOK_TOO_OLD);
    assert_int_equal(s_verify(KAT_SECRET, &h, body, ts + 86400), CRM_WEBHOOK_TOO_OLD);
    assert_int_equal(s_verify(KAT_SECRET, &h, body, ts - 300), CRM_WEBHOOK_OK);
    assert_int_equal(s_verify(KAT_SECRET, &h, body, ts - 301), CRM_WEBHOOK_TOO_NEW);
    /* Configurable. */
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, h.timestamp, h.signature, body, 2,
                                        ts + 61, 60),
                     CRM_WEBHOOK_TOO_OLD);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, h.timestamp, h.signature, body, 2,
                                        ts + 3599, 3600),
                     CRM_WEBHOOK_OK);
    /* Extreme clocks do not overflow the difference. */
    assert_int_equal(s_verify(KAT_SECRET, &h, body, INT64_MAX), CRM_WEBHOOK_TOO_OLD);
    assert_int_equal(s_verify(KAT_SECRET, &h, body, INT64_MIN), CRM_WEBHOOK_TOO_NEW);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, "9223372036854775807", h.signature, body,
                                        2, INT64_MIN, 0),
                     CRM_WEBHOOK_TOO_NEW);
}

/* ------------------------------------------------------------ rotation */

static void test_two_secrets_give_two_signatures_and_either_verifies(void **state)
{
    (void) state;
    const char *body = "{\"n\":1}";
    const int64_t ts = 1790000000;
    crm_webhook_key_t keys[2] = {s_key(KAT_SECRET), s_key(OTHER_SECRET)};
    crm_webhook_headers_t both, old_only, new_only;
    assert_int_equal(crm_webhook_sign("msg_rot", ts, body, strlen(body), keys, 2, &both), 0);
    assert_int_equal(crm_webhook_sign("msg_rot", ts, body, strlen(body), &keys[0], 1, &old_only),
                     0);
    assert_int_equal(crm_webhook_sign("msg_rot", ts, body, strlen(body), &keys[1], 1, &new_only),
                     0);
    char expect[2 * CRM_WEBHOOK_SIG_SZ + 1];
    snprintf(expect, sizeof expect, "%s %s", old_only.signature, new_only.signature);
    assert_string_equal(both.signature, expect);
    assert_int_equal(strlen(both.signature), 2 * 47 + 1);

    assert_int_equal(s_verify(KAT_SECRET, &both, body, ts), CRM_WEBHOOK_OK);
    assert_int_equal(s_verify(OTHER_SECRET, &both, body, ts), CRM_WEBHOOK_OK);
    char third[CRM_WEBHOOK_SECRET_SZ];
    assert_true(crm_webhook_secret_generate(0, third, sizeof third) > 0);
    assert_int_equal(s_verify(third, &both, body, ts), CRM_WEBHOOK_MISMATCH);

    /* Unknown versions are skipped, the v1 entry after them counts. */
    char mixed[CRM_WEBHOOK_SIG_SZ + 32];
    snprintf(mixed, sizeof mixed, "v1a,AAAA v2,zzz  %s", new_only.signature);
    assert_int_equal(crm_webhook_verify(OTHER_SECRET, both.id, both.timestamp, mixed, body,
                                        strlen(body), ts, 0),
                     CRM_WEBHOOK_OK);

    assert_int_equal(crm_webhook_sign("msg_rot", ts, body, 1, keys, 0, &both), -1);
    crm_webhook_key_t five[5] = {keys[0], keys[0], keys[0], keys[0], keys[0]};
    assert_int_equal(crm_webhook_sign("msg_rot", ts, body, 1, five, 5, &both), -1);
    crm_webhook_headers_t four;
    assert_int_equal(crm_webhook_sign("msg_rot", ts, body, 1, five, 4, &four), 0);
    assert_int_equal(strlen(four.signature), 4 * 47 + 3);
}

/* ------------------------------------------------------------ Python */

/* The signature Python's hmac, hashlib and base64 compute for the body in a
   file, the id, the timestamp and the secrets (each "whsec_..."), written
   as a dealer would. */
static const char *s_python =
    "import base64, hashlib, hmac, sys\n"
    "path, msg_id, ts = sys.argv[1:4]\n"
    "body = open(path, 'rb').read()\n"
    "sigs = []\n"
    "for secret in sys.argv[4:]:\n"
    "    key = base64.b64decode(secret[len('whsec_'):], validate=True)\n"
    "    mac = hmac.new(key, msg_id.encode() + b'.' + ts.encode() + b'.' + body, hashlib.sha256)\n"
    "    sigs.append('v1,' + base64.b64encode(mac.digest()).decode())\n"
    "print(' '.join(sigs))\n";

static void s_python_signature(const char *body, size_t len, const char *id, const char *ts,
                               const char *secrets, char *out, size_t size)
{
    char script[] = "/tmp/test_webhook_py_XXXXXX";
    char data[] = "/tmp/test_webhook_body_XXXXXX";
    int fs = mkstemp(script), fd = mkstemp(data);
    assert_true(fs >= 0 && fd >= 0);
    assert_int_equal(write(fs, s_python, strlen(s_python)), (ssize_t) strlen(s_python));
    assert_int_equal(write(fd, body, len), (ssize_t) len);
    close(fs);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 %s %s '%s' '%s' %s", script, data, id, ts, secrets);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    out[0] = '\0';
    if (!fgets(out, (int) size, p))
        out[0] = '\0';
    int rc = pclose(p);
    unlink(script);
    unlink(data);
    assert_int_equal(rc, 0);
    out[strcspn(out, "\n")] = '\0';
}

static void test_python_hmac_computes_the_same_signatures(void **state)
{
    (void) state;
    /* A dealer's notification in Chinese, as UTF-8 JSON bytes. */
    const char *bodies[] = {
        KAT_BODY,
        "{\"事件\":\"线索分配\",\"客户\":\"张伟\",\"门店\":\"深圳福田店\","
        "\"车型\":\"比亚迪汉EV\",\"备注\":\"周六上午试驾，请提前联系。\"}",
        "",
    };
    crm_webhook_key_t keys[2] = {s_key(KAT_SECRET), s_key(OTHER_SECRET)};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        const char *body = bodies[i];
        crm_webhook_headers_t h;
        assert_int_equal(crm_webhook_sign("ntf_SZ1_7f3a", 1790000123, body, strlen(body), keys, 2,
                                          &h),
                         0);
        char py[CRM_WEBHOOK_SIG_SZ + 16];
        s_python_signature(body, strlen(body), h.id, h.timestamp, KAT_SECRET " " OTHER_SECRET, py,
                           sizeof py);
        assert_string_equal(h.signature, py);
    }
    /* And the vector through Python too, so the harness itself is checked. */
    char py[CRM_WEBHOOK_SIG_SZ + 16];
    s_python_signature(KAT_BODY, strlen(KAT_BODY), KAT_ID, "1614265330", KAT_SECRET, py, sizeof py);
    assert_string_equal(py, KAT_SIG);
}

/* ------------------------------------------------------------ secrets */

static void test_secrets_parse_only_whsec_base64_of_24_to_64_bytes(void **state)
{
    (void) state;
    crm_webhook_key_t key;
    assert_int_equal(crm_webhook_secret_parse(KAT_SECRET, &key), 0);
    assert_int_equal(key.len, 24);
    assert_int_equal(crm_webhook_secret_parse(OTHER_SECRET, &key), 0);
    assert_int_equal(key.len, 36);
    /* 64 bytes: 88 characters, two of them padding. */
    char max[CRM_WEBHOOK_SECRET_SZ] = "whsec_";
    for (int i = 0; i < 85; i++)
        strcat(max, "A");
    strcat(max, "Q==");
    assert_int_equal(crm_webhook_secret_parse(max, &key), 0);
    assert_int_equal(key.len, 64);
    assert_int_equal(key.bytes[63], 1);

    const char *bad[] = {
        "",
        "whsec_",
        "whsec",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",   /* not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", /* extra padding */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==",  /* non-zero spare bits */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",  /* not base64 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", /* trailing blank */
        " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", /* leading blank */
        "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", /* URL-safe alphabet */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La",     /* 21 bytes: too short */
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", /* 22 bytes */
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  /* asymmetric prefixes */
        "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsecXMfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        key.len = 99;
        assert_int_equal(crm_webhook_secret_parse(bad[i], &key), -1);
        assert_int_equal(key.len, 0);
    }
    assert_int_equal(crm_webhook_secret_parse(NULL, &key), -1);
    /* 65 bytes: one too many. */
    char over[CRM_WEBHOOK_SECRET_SZ + 8] = "whsec_";
    for (int i = 0; i < 87; i++)
        strcat(over, "A");
    strcat(over, "=");
    assert_int_equal(crm_webhook_secret_parse(over, &key), -1);
    /* The verifier says why. */
    assert_int_equal(crm_webhook_verify("whsec_nope", KAT_ID, "1614265330", KAT_SIG, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_BAD_SECRET);
}

static void test_generated_secrets_parse_back(void **state)
{
    (void) state;
    size_t sizes[] = {24, 32, 48, 64, 0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char a[CRM_WEBHOOK_SECRET_SZ], b[CRM_WEBHOOK_SECRET_SZ];
        int n = crm_webhook_secret_generate(sizes[i], a, sizeof a);
        assert_true(n > 0);
        assert_int_equal((size_t) n, strlen(a));
        assert_memory_equal(a, "whsec_", 6);
        crm_webhook_key_t key;
        assert_int_equal(crm_webhook_secret_parse(a, &key), 0);
        assert_int_equal(key.len, sizes[i] ? sizes[i] : 32);
        assert_int_equal(crm_webhook_secret_generate(sizes[i], b, sizeof b), n);
        assert_string_not_equal(a, b);
    }
    char out[CRM_WEBHOOK_SECRET_SZ] = "x";
    assert_int_equal(crm_webhook_secret_generate(23, out, sizeof out), -1);
    assert_string_equal(out, "");
    assert_int_equal(crm_webhook_secret_generate(65, out, sizeof out), -1);
    /* 64 bytes need 6 + 88 + 1; one less is refused, never overrun. */
    assert_int_equal(crm_webhook_secret_generate(64, out, 94), -1);
    assert_int_equal(crm_webhook_secret_generate(64, out, 95), 94);
    assert_int_equal(crm_webhook_secret_generate(32, out, 0), -1);
}

/* ------------------------------------------------------------ hostile input */

static void test_junk_headers_are_refused_with_a_reason(void **state)
{
    (void) state;
    const char *b = KAT_BODY;
    size_t bl = strlen(b);
#define V(id, ts, sig) crm_webhook_verify(KAT_SECRET, id, ts, sig, b, bl, KAT_TS, 0)
    assert_int_equal(V(NULL, "1614265330", KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    assert_int_equal(V("", "1614265330", KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    assert_int_equal(V("msg.1", "1614265330", KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    assert_int_equal(V("msg 1", "1614265330", KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    assert_int_equal(V("msg\x01", "1614265330", KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    assert_int_equal(V("msg_\xe4\xb8\xad", "1614265330", KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    const char *ts_bad[] = {NULL,
                            "",
                            "-1",
                            "+1614265330",
                            "01614265330",
                            "1614265330.0",
                            "1614265330 ",
                            " 1614265330",
                            "16142653a0",
                            "9223372036854775808",
                            "99999999999999999999999999"};
    for (size_t i = 0; i < sizeof ts_bad / sizeof ts_bad[0]; i++)
        assert_int_equal(V(KAT_ID, ts_bad[i], KAT_SIG), CRM_WEBHOOK_BAD_HEADERS);
    const char *none[] = {NULL,
                          "",
                          " ",
                          "v1",
                          "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                          "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                          "v2,x v10,y ,z",
                          "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        assert_int_equal(V(KAT_ID, "1614265330", none[i]), CRM_WEBHOOK_NO_SIGNATURE);
    const char *wrong[] = {"v1,",
                           "v1,!!!!",
                           "v1,AAAA",
                           "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",   /* unpadded */
                           "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE==", /* extra '=' */
                           "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",  /* URL-safe */
                           "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",  /* spare bits */
                           "v1,,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                           "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=x"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        assert_int_equal(V(KAT_ID, "1614265330", wrong[i]), CRM_WEBHOOK_MISMATCH);
    /* Junk first, the right entry last: still valid. */
    assert_int_equal(V(KAT_ID, "1614265330", "v1,!!!! x  v1, v1a,AA== " KAT_SIG), CRM_WEBHOOK_OK);
    assert_int_equal(V(KAT_ID, "1614265330", KAT_SIG " "), CRM_WEBHOOK_OK);
#undef V
    /* A body pointer of NULL with a length is a caller's mistake, refused. */
    assert_int_equal(crm_webhook_verify(KAT_SECRET, KAT_ID, "1614265330", KAT_SIG, NULL, 5, KAT_TS,
                                        0),
                     CRM_WEBHOOK_BAD_HEADERS);

    crm_webhook_key_t key = s_key(KAT_SECRET);
    crm_webhook_headers_t h;
    char long_id[CRM_WEBHOOK_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(crm_webhook_sign(long_id, KAT_TS, b, bl, &key, 1, &h), -1);
    assert_string_equal(h.signature, "");
    long_id[CRM_WEBHOOK_ID_MAX] = '\0';
    assert_int_equal(crm_webhook_sign(long_id, KAT_TS, b, bl, &key, 1, &h), 0);
    assert_int_equal(s_verify(KAT_SECRET, &h, b, KAT_TS), CRM_WEBHOOK_OK);
    assert_int_equal(crm_webhook_sign("msg.1", KAT_TS, b, bl, &key, 1, &h), -1);
    assert_int_equal(crm_webhook_sign(KAT_ID, -1, b, bl, &key, 1, &h), -1);
    assert_int_equal(crm_webhook_sign(KAT_ID, KAT_TS, NULL, 3, &key, 1, &h), -1);
    crm_webhook_key_t short_key = key;
    short_key.len = 10;
    assert_int_equal(crm_webhook_sign(KAT_ID, KAT_TS, b, bl, &short_key, 1, &h), -1);
    assert_int_equal(crm_webhook_sign(KAT_ID, 0, "", 0, &key, 1, &h), 0);
    assert_string_equal(h.timestamp, "0");
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, h.timestamp, h.signature, NULL, 0, 0, 0),
                     CRM_WEBHOOK_OK);
}

static void test_huge_bodies_and_headers_do_not_break_anything(void **state)
{
    (void) state;
    /* 32 MB of body with NUL bytes in it, signed and verified as bytes. */
    size_t len = 32u << 20;
    char *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (char) (i * 131u);
    crm_webhook_key_t key = s_key(KAT_SECRET);
    crm_webhook_headers_t h;
    assert_int_equal(crm_webhook_sign(KAT_ID, KAT_TS, body, len, &key, 1, &h), 0);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, h.timestamp, h.signature, body, len,
                                        KAT_TS, 0),
                     CRM_WEBHOOK_OK);
    body[len / 2] ^= 1;
    assert_int_equal(crm_webhook_verify(KAT_SECRET, h.id, h.timestamp, h.signature, body, len,
                                        KAT_TS, 0),
                     CRM_WEBHOOK_MISMATCH);
    free(body);

    /* A 4 MB signature header of junk entries, the right one at its end;
       a 4 MB id and a 4 MB secret. */
    size_t big = 4u << 20;
    char *sig = malloc(big + sizeof KAT_SIG + 1);
    assert_non_null(sig);
    for (size_t i = 0; i < big; i++)
        sig[i] = "v1,AAAA v1 ,,,v1,====v1a,x "[i % 27];
    sig[big] = ' ';
    strcpy(sig + big + 1, KAT_SIG);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, KAT_ID, "1614265330", sig, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_OK);
    sig[big] = '\0';
    assert_int_equal(crm_webhook_verify(KAT_SECRET, KAT_ID, "1614265330", sig, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_MISMATCH);
    memset(sig, 'A', big);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, sig, "1614265330", KAT_SIG, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_BAD_HEADERS);
    assert_int_equal(crm_webhook_verify(sig, KAT_ID, "1614265330", KAT_SIG, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_BAD_SECRET);
    memset(sig, '7', big);
    assert_int_equal(crm_webhook_verify(KAT_SECRET, KAT_ID, sig, KAT_SIG, KAT_BODY,
                                        strlen(KAT_BODY), KAT_TS, 0),
                     CRM_WEBHOOK_BAD_HEADERS);
    free(sig);
}

static void test_verdicts_have_names(void **state)
{
    (void) state;
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_OK), "ok");
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_BAD_SECRET), "bad_secret");
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_BAD_HEADERS), "bad_headers");
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_NO_SIGNATURE), "no_signature");
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_MISMATCH), "mismatch");
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_TOO_OLD), "too_old");
    assert_string_equal(crm_webhook_verdict_str(CRM_WEBHOOK_TOO_NEW), "too_new");
    assert_string_equal(crm_webhook_verdict_str((crm_webhook_verdict_t) 99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer_vector_of_the_spec),
        cmocka_unit_test(test_signed_webhook_verifies_and_any_change_breaks_it),
        cmocka_unit_test(test_timestamps_outside_the_tolerance_are_refused),
        cmocka_unit_test(test_two_secrets_give_two_signatures_and_either_verifies),
        cmocka_unit_test(test_python_hmac_computes_the_same_signatures),
        cmocka_unit_test(test_secrets_parse_only_whsec_base64_of_24_to_64_bytes),
        cmocka_unit_test(test_generated_secrets_parse_back),
        cmocka_unit_test(test_junk_headers_are_refused_with_a_reason),
        cmocka_unit_test(test_huge_bodies_and_headers_do_not_break_anything),
        cmocka_unit_test(test_verdicts_have_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
