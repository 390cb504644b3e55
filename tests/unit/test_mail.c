/*  crm_mail: messages with Chinese, emoji and mixed-width headers, decoded by
 *  Python's email package (an independent reader) back to the inputs byte for
 *  byte; every encoded word within 75 characters and whole characters; lines
 *  within 76 / 78 / 998; the RFC 8058 headers on marketing mail only; CR, LF
 *  and invalid UTF-8 refused wherever they come in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <utf8proc.h>

#include "crm_mail.h"

#define SUBJECT_CN "【东风标致】您的试驾预约已确认：2026年12月5日 10:00，北京朝阳4S店"
#define BODY_CN                                                                                          \
    "张先生您好：\r\n\r\n您在北京朝阳4S店预约的东风标致 408X 试驾已确认。\r\n" \
    "时间：2026年12月5日 10:00\r\n地址：北京市朝阳区东四环中路 88 号\r\n\r\n"       \
    "请携带驾驶证。祝您试驾愉快！🚗\r\n"

/* 2026-12-05 10:00:00 +0800 */
#define DATE_T 1796436000LL

static crm_mail_t s_mail(void)
{
    crm_mail_t m = {
        .from_name = "东风标致北京朝阳4S店",
        .from_addr = "notify@dfpeugeot-chaoyang.example.cn",
        .to_name = "张先生",
        .to_addr = "zhang.wei@example.com",
        .subject = SUBJECT_CN,
        .body = BODY_CN,
        .date = DATE_T,
        .tz_minutes = 480,
        .message_id = "ntf-20261205-0001",
        .domain = "dfpeugeot-chaoyang.example.cn",
    };
    return m;
}

/* ------------------------------------------------------------ checks */

/* What Python's email package reads from a message, each field NUL-ended. */
typedef struct {
    char *raw;
    const char *field[12];
} s_read_t;

enum {
    R_SUBJECT,
    R_BODY,
    R_FROM_NAME,
    R_FROM_ADDR,
    R_TO_NAME,
    R_TO_ADDR,
    R_MSGID,
    R_DATE,
    R_UNSUB,
    R_UNSUB_POST,
    R_FROM_NAME_2047,
    R_TO_NAME_2047
};

static void s_python(const char *msg, size_t len, s_read_t *r)
{
    char path[] = "/tmp/test_mail_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, msg, len), (ssize_t) len);
    close(fd);
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "python3 -c 'import email, email.policy, sys\n"
        "m = email.message_from_binary_file(open(sys.argv[1], \"rb\"), "
        "policy=email.policy.default)\n"
        "f = m[\"from\"].addresses[0]; t = m[\"to\"].addresses[0]\n"
        "out = [m[\"subject\"], m.get_content(), f.display_name, f.addr_spec, "
        "t.display_name, t.addr_spec, m[\"message-id\"], m[\"date\"].datetime.isoformat(), "
        "m.get(\"list-unsubscribe\", \"\"), m.get(\"list-unsubscribe-post\", \"\")]\n"
        "from email.header import decode_header, make_header\n"
        "from email.utils import parseaddr\n"
        "c = email.message_from_binary_file(open(sys.argv[1], \"rb\"))\n"
        "out += [parseaddr(str(make_header(decode_header(c[h]))))[0] for h in (\"from\", \"to\")]\n"
        "sys.stdout.buffer.write(b\"\".join(str(s).encode() + b\"\\0\" for s in out))' %s",
        path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    r->raw = malloc(cap);
    assert_non_null(r->raw);
    size_t got;
    while ((got = fread(r->raw + n, 1, cap - n - 1, p)) > 0)
        n += got;
    assert_int_equal(pclose(p), 0);
    unlink(path);
    r->raw[n] = '\0';
    size_t at = 0;
    for (int i = 0; i < 12; i++) {
        assert_true(at < n);
        r->field[i] = r->raw + at;
        at += strlen(r->raw + at) + 1;
    }
    assert_int_equal(at, n);
}

/* Every encoded word: "=?UTF-8?B?" base64 "?=", at most 75 characters, its
   payload a multiple of 4 decoding on its own to whole UTF-8 characters.
   Returns how many there are. */
static int s_check_words(const char *msg)
{
    int words = 0;
    for (const char *p = strstr(msg, "=?"); p; p = strstr(p, "=?")) {
        assert_memory_equal(p, "=?UTF-8?B?", 10);
        const char *payload = p + 10, *end = strstr(payload, "?=");
        assert_non_null(end);
        size_t wlen = (size_t) (end + 2 - p), plen = (size_t) (end - payload);
        assert_true(wlen <= 75);
        assert_int_equal(plen % 4, 0);
        unsigned char bin[64];
        size_t blen = 0;
        assert_int_equal(sodium_base642bin(bin, sizeof bin, payload, plen, NULL, &blen, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        assert_true(blen > 0);
        for (size_t i = 0; i < blen;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t c = utf8proc_iterate(bin + i, (utf8proc_ssize_t) (blen - i), &cp);
            assert_true(c > 0);
            i += (size_t) c;
        }
        words++;
        p = end + 2;
    }
    return words;
}

/* Lines end in CRLF only; header lines with encoded words within 76, other
   header lines within 78, body lines within 76; none over 998. */
static void s_check_lines(const char *msg, size_t len)
{
    bool header = true;
    for (size_t i = 0; i < len;) {
        const char *eol = strstr(msg + i, "\r\n");
        assert_non_null(eol);
        size_t n = (size_t) (eol - (msg + i));
        assert_null(memchr(msg + i, '\n', n));
        assert_null(memchr(msg + i, '\r', n));
        assert_true(n <= 998);
        if (n == 0)
            header = false;
        if (!header || memmem(msg + i, n, "=?", 2))
            assert_true(n <= 76);
        else
            assert_true(n <= 78);
        i += n + 2;
    }
}

/* Builds `m`, checks its form, and checks that Python reads the inputs back. */
static void s_roundtrip(const crm_mail_t *m, const char *body_expected)
{
    size_t len = 0;
    char *msg = crm_mail_build(m, &len);
    assert_non_null(msg);
    assert_int_equal(strlen(msg), len);
    s_check_words(msg);
    s_check_lines(msg, len);
    s_read_t r;
    s_python(msg, len, &r);
    assert_string_equal(r.field[R_SUBJECT], m->subject);
    assert_string_equal(r.field[R_BODY], body_expected ? body_expected : m->body);
    /* Python's address parser puts a space between adjacent encoded words of
       a phrase (RFC 2047 §6.2 says ignore it): names in one word (45 bytes)
       are compared there, all names through its RFC 2047 decoder. */
    const char *from = m->from_name ? m->from_name : "", *to = m->to_name ? m->to_name : "";
    if (strlen(from) <= 45)
        assert_string_equal(r.field[R_FROM_NAME], from);
    if (strlen(to) <= 45)
        assert_string_equal(r.field[R_TO_NAME], to);
    assert_string_equal(r.field[R_FROM_NAME_2047], from);
    assert_string_equal(r.field[R_TO_NAME_2047], to);
    assert_string_equal(r.field[R_FROM_ADDR], m->from_addr);
    assert_string_equal(r.field[R_TO_ADDR], m->to_addr);
    free(r.raw);
    free(msg);
}

/* ------------------------------------------------------------ decoding */

static void test_chinese_message_decodes_to_its_inputs(void **state)
{
    (void) state;
    crm_mail_t m = s_mail();
    size_t len;
    char *msg = crm_mail_build(&m, &len);
    assert_non_null(msg);
    assert_true(s_check_words(msg) >= 5);
    s_check_lines(msg, len);
    /* The fixed headers as they should be. */
    assert_non_null(strstr(msg, "\r\nDate: Sat, 05 Dec 2026 10:00:00 +0800\r\n"));
    assert_non_null(
        strstr(msg, "\r\nMessage-ID: <ntf-20261205-0001@dfpeugeot-chaoyang.example.cn>\r\n"));
    assert_non_null(strstr(msg, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
                                "charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    assert_memory_equal(msg, "From: =?UTF-8?B?", 16);

    s_read_t r;
    s_python(msg, len, &r);
    assert_string_equal(r.field[R_SUBJECT], SUBJECT_CN);
    assert_string_equal(r.field[R_BODY], BODY_CN);
    assert_string_equal(r.field[R_FROM_NAME], "东风标致北京朝阳4S店");
    assert_string_equal(r.field[R_FROM_ADDR], "notify@dfpeugeot-chaoyang.example.cn");
    assert_string_equal(r.field[R_TO_NAME], "张先生");
    assert_string_equal(r.field[R_TO_ADDR], "zhang.wei@example.com");
    assert_string_equal(r.field[R_MSGID], "<ntf-20261205-0001@dfpeugeot-chaoyang.example.cn>");
    assert_string_equal(r.field[R_DATE], "2026-12-05T10:00:00+08:00");
    assert_string_equal(r.field[R_UNSUB], "");
    free(r.raw);

    /* A resend of the same notification is the same message, Message-ID and all. */
    size_t len2;
    char *again = crm_mail_build(&m, &len2);
    assert_non_null(again);
    assert_int_equal(len2, len);
    assert_memory_equal(again, msg, len);
    free(again);
    free(msg);
}

static void test_mixed_widths_and_long_subjects_decode_exactly(void **state)
{
    (void) state;
    const char *subjects[] = {
        SUBJECT_CN,
        "🚗",
        "Ihr Termin: Probefahrt am Samstag — Café Müller, Straße 5 · 试驾 🚗 ok",
        "a🚗b🚗c🚗d🚗e🚗f🚗g🚗h🚗i🚗j🚗k🚗l🚗m🚗n🚗o🚗p🚗q🚗r🚗s🚗t🚗u🚗v🚗w🚗x🚗y🚗z🚗",
        "🚗🚙🚕🚌🏎🚓🚑🚒🚐🛻🚚🚛🚜🛵🏍🛺🚲🛴🚗🚙🚕🚌🏎🚓🚑🚒🚐🛻🚚🚛🚜🛵🏍🛺"
        "🚲"
        "🛴",
        "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
        "x一ab二abc三abcd四é五éé六🚗七a🚗八ab🚗九abc🚗十 ASCII words between 中文 and more",
        "【东风标致】尊敬的客户，您的爱车（京A·12345，4008 豪华版）已到保养周期：上次保养 "
        "2026年6月1日，里程 15,000 公里。请于 2026年12月31日 前预约北京朝阳4S店，"
        "预约电话 010-88888888，或回复本邮件。感谢您选择东风标致！🚗🔧✅",
        "   leading and trailing spaces, kept   ",
        "tab\tinside and =?UTF-8?B?not-a-word?= in plain text",
    };
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        crm_mail_t m = s_mail();
        m.subject = subjects[i];
        s_roundtrip(&m, NULL);
    }
    /* Names in every width too, and a long one that needs folding. */
    crm_mail_t m = s_mail();
    m.from_name = "Dongfeng Peugeot 东风标致 — Beijing Chaoyang 北京朝阳 4S 店 🚗 Service Team";
    m.to_name = "Zoë 张";
    s_roundtrip(&m, NULL);
    /* 15 Chinese characters, 45 bytes: one word on a line of its own. */
    m.from_name = "东风标致北京朝阳四季青服务中心";
    m.to_name = "欧阳🚗";
    s_roundtrip(&m, NULL);
    /* ASCII names: atoms plainly, others quoted. */
    m.from_name = "Dongfeng Peugeot Chaoyang";
    m.to_name = "Wei \"David\" Zhang, Jr. (VIP)";
    s_roundtrip(&m, NULL);
    /* No names at all. */
    m.from_name = NULL;
    m.to_name = "";
    s_roundtrip(&m, NULL);
}

/* An ASCII prefix of every length before wide characters moves each word's
   boundary across every position inside a 2-, 3- and 4-byte character. */
static void test_words_never_split_a_character_at_any_offset(void **state)
{
    (void) state;
    const char *tails[] = {"éüößàç", "东风标致试驾预约确认", "🚗🚙🚕🚌🏎🚓"};
    for (size_t t = 0; t < 3; t++) {
        for (int k = 0; k < 70; k++) {
            char value[512];
            memset(value, 'a', (size_t) k);
            value[k] = '\0';
            for (int rep = 0; rep < 4; rep++)
                strcat(value, tails[t]);
            char *h = crm_mail_header_new("Subject", value);
            assert_non_null(h);
            assert_true(s_check_words(h) >= 1);
            size_t n = strlen(h);
            char *line = malloc(n + 3);
            memcpy(line, h, n);
            memcpy(line + n, "\r\n", 3);
            s_check_lines(line, n + 2);
            free(line);
            free(h);
            if (k % 23 == 0) {
                crm_mail_t m = s_mail();
                m.subject = value;
                s_roundtrip(&m, NULL);
            }
        }
    }
}

static void test_reference_vector_is_reproduced(void **state)
{
    (void) state;
    char out[256];
    int n = crm_mail_header_encode("Subject", "您的爱车保养提醒：国庆节前请预约", out, sizeof out);
    const char *want =
        "Subject: =?UTF-8?B?5oKo55qE54ix6L2m5L+d5YW75o+Q6YaS77ya5Zu95bqG6IqC5YmN?=\r\n"
        " =?UTF-8?B?6K+36aKE57qm?=";
    assert_string_equal(out, want);
    assert_int_equal(n, (int) strlen(want));
    assert_int_equal(strchr(out, '\r') - out, 73);
    /* Too small a buffer: -1 and "". */
    assert_int_equal(crm_mail_header_encode("Subject", "您的爱车保养提醒", out, 20), -1);
    assert_string_equal(out, "");
    /* Not a field name. */
    assert_int_equal(crm_mail_header_encode("Sub ject", "x", out, sizeof out), -1);
    assert_int_equal(crm_mail_header_encode("Subject:", "x", out, sizeof out), -1);
}

static void test_body_line_ends_become_crlf(void **state)
{
    (void) state;
    crm_mail_t m = s_mail();
    m.body = "第一行\n第二行\r第三行\r\n";
    s_roundtrip(&m, "第一行\r\n第二行\r\n第三行\r\n");
    /* A long body: base64 lines of exactly 76 but the last. */
    char body[4096] = "";
    for (int i = 0; i < 60; i++)
        strcat(body, "试驾预约已确认，🚗 ok. ");
    m.body = body;
    size_t len;
    char *msg = crm_mail_build(&m, &len);
    assert_non_null(msg);
    const char *p = strstr(msg, "\r\n\r\n") + 4;
    int lines = 0;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        if (eol[2])
            assert_int_equal(eol - p, 76);
        else
            assert_true(eol - p <= 76);
        lines++;
        p = eol + 2;
    }
    assert_true(lines > 10);
    free(msg);
    s_roundtrip(&m, NULL);
}

static void test_date_is_written_in_the_given_zone(void **state)
{
    (void) state;
    crm_mail_t m = s_mail();
    m.tz_minutes = -330;
    char *msg = crm_mail_build(&m, NULL);
    assert_non_null(strstr(msg, "\r\nDate: Fri, 04 Dec 2026 20:30:00 -0530\r\n"));
    free(msg);
    m.tz_minutes = 24 * 60;
    assert_null(crm_mail_build(&m, NULL));
    m.tz_minutes = 0;
    m.date = 253402300800LL; /* year 10000 */
    assert_null(crm_mail_build(&m, NULL));
}

/* ------------------------------------------------------------ plain ASCII */

static void test_ascii_subject_is_written_plainly(void **state)
{
    (void) state;
    char out[512];
    assert_true(crm_mail_header_encode("Subject", "Your test drive is confirmed", out, sizeof out) >
                0);
    assert_string_equal(out, "Subject: Your test drive is confirmed");
    /* Long: folded at a space, nothing encoded, read back unchanged. */
    const char *lng = "Your test drive of the Dongfeng Peugeot 408X at the Beijing Chaoyang "
                      "dealership is confirmed for Saturday 5 December 2026 at 10:00, please "
                      "bring your driving licence";
    assert_true(crm_mail_header_encode("Subject", lng, out, sizeof out) > 0);
    assert_null(strstr(out, "=?"));
    assert_non_null(strstr(out, "\r\n "));
    for (char *l = out; l; l = strstr(l, "\r\n") ? strstr(l, "\r\n") + 2 : NULL) {
        char *e = strstr(l, "\r\n");
        assert_true((e ? (size_t) (e - l) : strlen(l)) <= 78);
    }
    crm_mail_t m = s_mail();
    m.subject = lng;
    s_roundtrip(&m, NULL);
    /* ASCII that a reader would take for an encoded word, or whose edge
       spaces a reader would drop, is encoded instead, and reads back as is. */
    const char *tricky[] = {"Code =?UTF-8?B?5oKo?= inside", " leading space", "trailing space "};
    for (size_t i = 0; i < 3; i++) {
        assert_true(crm_mail_header_encode("Subject", tricky[i], out, sizeof out) > 0);
        assert_memory_equal(out, "Subject: =?UTF-8?B?", 19);
        assert_null(strstr(out, "5oKo?="));
        m.subject = tricky[i];
        s_roundtrip(&m, NULL);
    }
    /* One word longer than 78 cannot fold: kept whole (<= 998). */
    char word[1200];
    memset(word, 'x', 900);
    word[900] = '\0';
    assert_int_equal(crm_mail_header_encode("Subject", word, out, sizeof out), -1); /* small */
    char *h = crm_mail_header_new("Subject", word);
    assert_non_null(h);
    assert_int_equal(strlen(h), 909);
    free(h);
    memset(word, 'x', 1000);
    word[1000] = '\0';
    assert_null(crm_mail_header_new("Subject", word));
}

/* ------------------------------------------------------------ RFC 8058 */

static void test_marketing_mail_carries_one_click_unsubscribe(void **state)
{
    (void) state;
    crm_mail_t m = s_mail();
    m.marketing = true;
    m.unsubscribe_https = "https://crm.example.cn/u/ntf1?t=9f86d081884c7d65";
    m.unsubscribe_mailto = "mailto:unsubscribe@example.cn?subject=ntf-20261205-0001";
    size_t len;
    char *msg = crm_mail_build(&m, &len);
    assert_non_null(msg);
    s_check_lines(msg, len);
    const char *lu = "\r\nList-Unsubscribe: <https://crm.example.cn/u/ntf1?t="
                     "9f86d081884c7d65>,\r\n <mailto:unsubscribe@example.cn?subject=ntf-"
                     "20261205-0001>\r\n";
    const char *post = "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
    char *at = strstr(msg, lu);
    assert_non_null(at);
    assert_null(strstr(at + 3, "List-Unsubscribe:"));
    at = strstr(msg, post);
    assert_non_null(at);
    assert_null(strstr(at + 3, "List-Unsubscribe-Post"));
    /* Both in the header, not the body. */
    assert_true(at < strstr(msg, "\r\n\r\n"));
    s_read_t r;
    s_python(msg, len, &r);
    assert_string_equal(r.field[R_UNSUB],
                        "<https://crm.example.cn/u/ntf1?t=9f86d081884c7d65>, "
                        "<mailto:unsubscribe@example.cn?subject=ntf-20261205-0001>");
    assert_string_equal(r.field[R_UNSUB_POST], "List-Unsubscribe=One-Click");
    free(r.raw);
    free(msg);

    /* Short URIs stay on one line; the mailto is optional. */
    m.unsubscribe_https = "https://e.cn/u/1?t=ab";
    m.unsubscribe_mailto = "mailto:u@e.cn";
    msg = crm_mail_build(&m, &len);
    assert_non_null(strstr(msg, "\r\nList-Unsubscribe: <https://e.cn/u/1?t=ab>, <mailto:u@e.cn>\r\n"
                                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    free(msg);
    m.unsubscribe_mailto = NULL;
    msg = crm_mail_build(&m, &len);
    assert_non_null(strstr(msg, "\r\nList-Unsubscribe: <https://e.cn/u/1?t=ab>\r\n"
                                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    free(msg);

    /* One HTTPS URI is required: none, http, or mailto alone is refused. */
    const char *bad_https[] = {NULL,
                               "",
                               "https://",
                               "http://e.cn/u/1",
                               "mailto:u@e.cn",
                               "https://e.cn/u 1",
                               "https://e.cn/u>1",
                               "https://e.cn/a,b"};
    for (size_t i = 0; i < sizeof bad_https / sizeof bad_https[0]; i++) {
        m.unsubscribe_https = bad_https[i];
        m.unsubscribe_mailto = "mailto:u@e.cn";
        assert_null(crm_mail_build(&m, &len));
    }
    m.unsubscribe_https = "https://e.cn/u/1?t=ab";
    m.unsubscribe_mailto = "u@e.cn";
    assert_null(crm_mail_build(&m, &len));
}

static void test_transactional_mail_has_no_unsubscribe_headers(void **state)
{
    (void) state;
    crm_mail_t m = s_mail();
    m.unsubscribe_https = "https://e.cn/u/1?t=ab"; /* set, but not marketing */
    size_t len;
    char *msg = crm_mail_build(&m, &len);
    assert_non_null(msg);
    assert_null(strstr(msg, "List-Unsubscribe"));
    free(msg);
}

/* ------------------------------------------------------------ refusals */

static void test_cr_or_lf_in_any_field_is_refused(void **state)
{
    (void) state;
    const char *evil[] = {
        "x\r\nBcc: victim@example.com", "x\nBcc: v@e.cn", "x\rBcc: v@e.cn", "张\r\n先生", "\r\n",
        "a@b.cn\r\nBcc: v@e.cn"};
    for (size_t e = 0; e < sizeof evil / sizeof evil[0]; e++) {
        for (int f = 0; f < 9; f++) {
            crm_mail_t m = s_mail();
            m.marketing = true;
            m.unsubscribe_https = "https://e.cn/u/1?t=ab";
            m.unsubscribe_mailto = "mailto:u@e.cn";
            const char **field[] = {&m.subject,   &m.from_name,         &m.to_name,
                                    &m.from_addr, &m.to_addr,           &m.message_id,
                                    &m.domain,    &m.unsubscribe_https, &m.unsubscribe_mailto};
            *field[f] = evil[e];
            size_t len = 99;
            assert_null(crm_mail_build(&m, &len));
            assert_int_equal(len, 0);
        }
        char out[256];
        assert_int_equal(crm_mail_header_encode("Subject", evil[e], out, sizeof out), -1);
        assert_null(crm_mail_header_new("X-Crm", evil[e]));
    }
    /* Other control characters as well. */
    crm_mail_t m = s_mail();
    m.subject = "bell\a";
    assert_null(crm_mail_build(&m, NULL));
    /* Addresses: exactly one @, no <>, no spaces. */
    const char *bad_addr[] = {"",         "zhang.example.com", "a@b@c.cn", "@e.cn",    "a@",
                              "<a@e.cn>", "a b@e.cn",          "a@e.cn>",  "a,b@e.cn", "张@e.cn"};
    for (size_t i = 0; i < sizeof bad_addr / sizeof bad_addr[0]; i++) {
        m = s_mail();
        m.to_addr = bad_addr[i];
        assert_null(crm_mail_build(&m, NULL));
        m = s_mail();
        m.from_addr = bad_addr[i];
        m.domain = NULL;
        assert_null(crm_mail_build(&m, NULL));
    }
    /* Message-ID parts must be dot-atoms; the domain defaults to the sender's. */
    m = s_mail();
    m.message_id = "ntf 1";
    assert_null(crm_mail_build(&m, NULL));
    m.message_id = "ntf..1";
    assert_null(crm_mail_build(&m, NULL));
    m.message_id = "ntf-1";
    m.domain = NULL;
    char *msg = crm_mail_build(&m, NULL);
    assert_non_null(strstr(msg, "\r\nMessage-ID: <ntf-1@dfpeugeot-chaoyang.example.cn>\r\n"));
    free(msg);
}

static void test_invalid_utf8_is_refused(void **state)
{
    (void) state;
    const char *bad[] = {
        "试驾\xff",         /* not UTF-8 at all */
        "试驾\xe7\xa1",     /* a truncated 3-byte character */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xed\xa0\x80",     /* a surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf0\x9f\x9a",     /* a truncated emoji */
        "a\x80z",           /* a lone continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[256];
        assert_int_equal(crm_mail_header_encode("Subject", bad[i], out, sizeof out), -1);
        assert_string_equal(out, "");
        crm_mail_t m = s_mail();
        m.subject = bad[i];
        assert_null(crm_mail_build(&m, NULL));
        m = s_mail();
        m.from_name = bad[i];
        assert_null(crm_mail_build(&m, NULL));
        m = s_mail();
        m.to_name = bad[i];
        assert_null(crm_mail_build(&m, NULL));
        m = s_mail();
        m.body = bad[i];
        assert_null(crm_mail_build(&m, NULL));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chinese_message_decodes_to_its_inputs),
        cmocka_unit_test(test_mixed_widths_and_long_subjects_decode_exactly),
        cmocka_unit_test(test_words_never_split_a_character_at_any_offset),
        cmocka_unit_test(test_reference_vector_is_reproduced),
        cmocka_unit_test(test_body_line_ends_become_crlf),
        cmocka_unit_test(test_date_is_written_in_the_given_zone),
        cmocka_unit_test(test_ascii_subject_is_written_plainly),
        cmocka_unit_test(test_marketing_mail_carries_one_click_unsubscribe),
        cmocka_unit_test(test_transactional_mail_has_no_unsubscribe_headers),
        cmocka_unit_test(test_cr_or_lf_in_any_field_is_refused),
        cmocka_unit_test(test_invalid_utf8_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
