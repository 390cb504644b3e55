/*  test_common: config, logging, masking and the clock from common/, and
 *  the part of the store that needs no Redis (URL checking).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "crm_clock.h"
#include "crm_config.h"
#include "crm_log.h"
#include "crm_store.h"
#include "crm_str.h"

/* A fresh option table for each test: parsing fills `value` in place. */
#define T_OPTS(name)                                                                               \
    crm_opt_t name[] = {{"port", "CRM_TEST_PORT", "100", "a port", NULL},                          \
                        {"host", "CRM_TEST_HOST", "localhost", "a host", NULL},                    \
                        {"nodefault", "CRM_TEST_NODEFAULT", NULL, "no default", NULL},             \
                        {"noenv", NULL, "d", "no environment variable", NULL},                     \
                        CRM_OPT_END}

static int s_setup(void **state)
{
    (void) state;
    unsetenv("CRM_TEST_PORT");
    unsetenv("CRM_TEST_HOST");
    unsetenv("CRM_TEST_NODEFAULT");
    unsetenv("CRM_CLOCK_FILE");
    crm_clock_reset();
    return 0;
}

/* ---------------------------------------------------------------- config */

static void test_default_applies_without_flag_or_env(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *argv[] = {"prog", NULL};
    int npos = -1;
    assert_int_equal(crm_config_parse(opts, 1, argv, "prog", "test", &npos), 0);
    assert_int_equal(npos, 0);
    assert_string_equal(crm_opt(opts, "port"), "100");
    assert_string_equal(crm_opt(opts, "host"), "localhost");
    assert_null(crm_opt(opts, "nodefault"));
    assert_string_equal(crm_opt(opts, "noenv"), "d");
    assert_null(crm_opt(opts, "no-such-option"));
}

static void test_env_beats_default(void **state)
{
    (void) state;
    T_OPTS(opts);
    setenv("CRM_TEST_PORT", "200", 1);
    setenv("CRM_TEST_NODEFAULT", "set", 1);
    char *argv[] = {"prog", NULL};
    assert_int_equal(crm_config_parse(opts, 1, argv, "prog", "test", NULL), 0);
    assert_string_equal(crm_opt(opts, "port"), "200");
    assert_string_equal(crm_opt(opts, "nodefault"), "set");
    assert_string_equal(crm_opt(opts, "host"), "localhost");
}

static void test_empty_env_falls_back_to_default(void **state)
{
    (void) state;
    T_OPTS(opts);
    setenv("CRM_TEST_PORT", "", 1);
    char *argv[] = {"prog", NULL};
    assert_int_equal(crm_config_parse(opts, 1, argv, "prog", "test", NULL), 0);
    assert_string_equal(crm_opt(opts, "port"), "100");
}

static void test_flag_beats_env_and_default(void **state)
{
    (void) state;
    T_OPTS(opts);
    setenv("CRM_TEST_PORT", "200", 1);
    setenv("CRM_TEST_HOST", "envhost", 1);
    char *argv[] = {"prog", "--port", "300", "--noenv", "flag", NULL};
    assert_int_equal(crm_config_parse(opts, 5, argv, "prog", "test", NULL), 0);
    assert_string_equal(crm_opt(opts, "port"), "300");
    assert_string_equal(crm_opt(opts, "host"), "envhost");
    assert_string_equal(crm_opt(opts, "noenv"), "flag");
}

static void test_name_equals_value_form_is_accepted(void **state)
{
    (void) state;
    T_OPTS(opts);
    setenv("CRM_TEST_HOST", "envhost", 1);
    char *argv[] = {"prog", "--port=400", "--host=a=b", "--nodefault=", NULL};
    assert_int_equal(crm_config_parse(opts, 4, argv, "prog", "test", NULL), 0);
    assert_string_equal(crm_opt(opts, "port"), "400");
    assert_string_equal(crm_opt(opts, "host"), "a=b"); /* only the first '=' splits */
    assert_string_equal(crm_opt(opts, "nodefault"), "");
}

static void test_last_flag_wins(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *argv[] = {"prog", "--port", "1", "--port=2", NULL};
    assert_int_equal(crm_config_parse(opts, 4, argv, "prog", "test", NULL), 0);
    assert_string_equal(crm_opt(opts, "port"), "2");
}

static void test_unknown_flag_is_an_error(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *argv[] = {"prog", "--prot", "1", NULL};
    assert_int_equal(crm_config_parse(opts, 3, argv, "prog", "test", NULL), -1);
    char *argv2[] = {"prog", "--por=1", NULL}; /* a prefix is not the name */
    assert_int_equal(crm_config_parse(opts, 2, argv2, "prog", "test", NULL), -1);
    char *argv3[] = {"prog", "--portx", "1", NULL};
    assert_int_equal(crm_config_parse(opts, 3, argv3, "prog", "test", NULL), -1);
}

static void test_flag_without_value_is_an_error(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *argv[] = {"prog", "--port", NULL};
    assert_int_equal(crm_config_parse(opts, 2, argv, "prog", "test", NULL), -1);
}

static void test_help_and_version_are_answered(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *help[] = {"prog", "--port", "1", "--help", "--bogus", NULL};
    assert_int_equal(crm_config_parse(opts, 5, help, "prog", "test", NULL), 1);
    char *h[] = {"prog", "-h", NULL};
    assert_int_equal(crm_config_parse(opts, 2, h, "prog", "test", NULL), 1);
    char *version[] = {"prog", "--version", NULL};
    assert_int_equal(crm_config_parse(opts, 2, version, "prog", "test", NULL), 1);
}

static void test_positional_arguments_move_to_the_front_in_order(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *argv[] = {"prog", "first", "--port", "7", "second", "-x", "--host=h", "-",
                    "--", "--port", "last", NULL};
    int argc = 11;
    int npos = -1;
    assert_int_equal(crm_config_parse(opts, argc, argv, "prog", "test", &npos), 0);
    assert_int_equal(npos, 6);
    assert_string_equal(argv[0], "prog");
    assert_string_equal(argv[1], "first");
    assert_string_equal(argv[2], "second");
    assert_string_equal(argv[3], "-x");
    assert_string_equal(argv[4], "-");
    assert_string_equal(argv[5], "--port"); /* after "--" everything is positional */
    assert_string_equal(argv[6], "last");
    assert_null(argv[7]);
    assert_string_equal(crm_opt(opts, "port"), "7");
    assert_string_equal(crm_opt(opts, "host"), "h");
}

static void test_integer_option_checks_range_and_form(void **state)
{
    (void) state;
    T_OPTS(opts);
    char *argv[] = {"prog", NULL};
    assert_int_equal(crm_config_parse(opts, 1, argv, "prog", "test", NULL), 0);
    int64_t v = -1;
    assert_int_equal(crm_opt_i64(opts, "port", 1, 65535, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(crm_opt_i64(opts, "port", 100, 100, &v), 0); /* bounds are inclusive */

    v = 12345;
    assert_int_equal(crm_opt_i64(opts, "port", 101, 65535, &v), -1);
    assert_int_equal(crm_opt_i64(opts, "port", 1, 99, &v), -1);
    assert_int_equal(v, 12345); /* untouched on error */
    assert_int_equal(crm_opt_i64(opts, "host", 0, 10, &v), -1);      /* not a number */
    assert_int_equal(crm_opt_i64(opts, "nodefault", 0, 10, &v), -1); /* no value */
    assert_int_equal(crm_opt_i64(opts, "missing", 0, 10, &v), -1);

    static const char *bad[] = {"", "12x", "1.5", "0x10", "99999999999999999999",
                                "-99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--port=%s", bad[i]);
        char *a[] = {"prog", flag, NULL};
        assert_int_equal(crm_config_parse(opts, 2, a, "prog", "test", NULL), 0);
        if (crm_opt_i64(opts, "port", INT64_MIN, INT64_MAX, &v) != -1)
            fail_msg("'%s' accepted as an integer", bad[i]);
    }
    char *neg[] = {"prog", "--port=-5", NULL};
    assert_int_equal(crm_config_parse(opts, 2, neg, "prog", "test", NULL), 0);
    assert_int_equal(crm_opt_i64(opts, "port", -10, 10, &v), 0);
    assert_true(v == -5);
    assert_int_equal(crm_opt_i64(opts, "port", 0, 10, &v), -1);
    char *max[] = {"prog", "--port=9223372036854775807", NULL};
    assert_int_equal(crm_config_parse(opts, 2, max, "prog", "test", NULL), 0);
    assert_int_equal(crm_opt_i64(opts, "port", 0, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
}

/* --------------------------------------------------------------- logging */

static void test_mobile_phone_keeps_first_three_and_last_four(void **state)
{
    (void) state;
    char out[32];
    assert_string_equal(crm_mask_phone("13812345678", out, sizeof out), "138****5678");
    assert_ptr_equal(crm_mask_phone("13812345678", out, sizeof out), out);
}

static void test_id_number_keeps_address_code_and_last_four(void **state)
{
    (void) state;
    char out[32];
    assert_string_equal(crm_mask_id("11010519491231002X", out, sizeof out), "110105********002X");
    assert_string_equal(crm_mask_id("110105491231002", out, sizeof out), "110105*****1002");
}

static void test_short_values_are_masked_whole(void **state)
{
    (void) state;
    char out[32];
    assert_string_equal(crm_mask_phone("12345", out, sizeof out), "*****");
    assert_string_equal(crm_mask_phone("123456", out, sizeof out), "******");
    assert_string_equal(crm_mask_id("1101051949", out, sizeof out), "**********");
    assert_string_equal(crm_mask_id("1", out, sizeof out), "*");
    assert_string_equal(crm_mask_phone("", out, sizeof out), "");
    assert_string_equal(crm_mask_phone(NULL, out, sizeof out), "");
}

static void test_mask_never_overflows_its_output(void **state)
{
    (void) state;
    char out[6];
    memset(out, 'Z', sizeof out);
    crm_mask_id("11010519491231002X", out, sizeof out);
    assert_int_equal(strlen(out), 5);
    assert_string_equal(out, "11010");
    char big[300];
    memset(big, '9', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char wide[400];
    crm_mask_phone(big, wide, sizeof wide);
    assert_true(strlen(wide) < sizeof wide);
    assert_int_equal(wide[0], '9');
    assert_true(strchr(wide, '*') != NULL);
}

static void test_mask_cleans_log_breaking_characters(void **state)
{
    (void) state;
    char out[32];
    /* a value that would end the key=value pair must not do so once masked */
    crm_mask_phone("138 1234 5678", out, sizeof out);
    assert_null(strchr(out, ' '));
    assert_int_equal(strlen(out), 13);
    assert_memory_equal(out + 9, "5678", 4);
}

static void test_log_value_replaces_spaces_quotes_and_equals(void **state)
{
    (void) state;
    char out[64];
    assert_string_equal(crm_log_value("a b\"c=d\te\nf\x7fg", out, sizeof out), "a_b_c_d_e_f_g");
    assert_string_equal(crm_log_value("张三", out, sizeof out), "张三");
    assert_string_equal(crm_log_value(NULL, out, sizeof out), "");
    char small[4];
    assert_string_equal(crm_log_value("abcdef", small, sizeof small), "abc");
    small[0] = 'x';
    crm_log_value("abc", small, 0); /* no room: nothing written */
    assert_int_equal(small[0], 'x');
}

/* Runs crm_log with stderr sent to a temporary file; returns its text. */
static char *s_capture_log(void (*emit)(void))
{
    char path[] = "/tmp/crm-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    emit();
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fd);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    unlink(path);
    return text;
}

static void s_emit(void)
{
    crm_log_init("crm-test", "info");
    crm_log_context("msg 1");
    crm_debug("hidden", "x=%d", 1);
    crm_info("lead.accepted", "lead=%s", "L-1");
    crm_log_context(NULL);
    crm_warn("late", "n=%d", 2);
    crm_log_init("crm-test", "info");
}

static void test_log_lines_carry_service_message_and_event(void **state)
{
    (void) state;
    char *text = s_capture_log(s_emit);
    assert_null(strstr(text, "hidden")); /* below the level */
    char *first = strstr(text, "level=info service=crm-test msg=msg_1 event=lead.accepted lead=L-1\n");
    assert_non_null(first);
    assert_true(strncmp(text, "ts=", 3) == 0);
    assert_non_null(strstr(text, "level=warn service=crm-test event=late n=2\n"));
}

/* ----------------------------------------------------------------- clock */

static void test_clock_set_and_reset(void **state)
{
    (void) state;
    crm_clock_set(1767225600000LL);
    assert_true(crm_now_ms() == 1767225600000LL);
    assert_true(crm_now_ms() == 1767225600000LL); /* fixed, not running */
    crm_clock_set(-5);
    assert_true(crm_now_ms() == -5);
    crm_clock_reset();
    int64_t real = (int64_t) time(NULL) * 1000;
    int64_t now = crm_now_ms();
    assert_true(now > real - 5000 && now < real + 5000);
}

static void s_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void test_clock_file_sets_the_time_for_the_process(void **state)
{
    (void) state;
    char path[] = "/tmp/crm-test-clock-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    s_write_file(path, "1767225600123\n");
    setenv("CRM_CLOCK_FILE", path, 1);
    assert_true(crm_now_ms() == 1767225600123LL);
    /* read on every call: a test moves time by rewriting the file */
    s_write_file(path, "1767312000000");
    assert_true(crm_now_ms() == 1767312000000LL);
    /* crm_clock_set still wins in-process */
    crm_clock_set(7);
    assert_true(crm_now_ms() == 7);
    crm_clock_reset();
    assert_true(crm_now_ms() == 1767312000000LL);
    /* garbage or a missing file: back to the system clock */
    int64_t real = (int64_t) time(NULL) * 1000;
    s_write_file(path, "not a time");
    assert_true(crm_now_ms() > real - 5000);
    unlink(path);
    assert_true(crm_now_ms() > real - 5000);
    unsetenv("CRM_CLOCK_FILE");
    assert_true(crm_now_ms() > real - 5000);
}

static void test_monotonic_clock_does_not_go_back(void **state)
{
    (void) state;
    crm_clock_set(0); /* the fake clock does not touch it */
    int64_t a = crm_mono_us();
    int64_t b = crm_mono_us();
    assert_true(b >= a);
    assert_true(crm_mono_ms() >= a / 1000);
    crm_clock_reset();
}

/* ----------------------------------------------------------------- store */

static void test_store_with_a_malformed_url_is_not_created(void **state)
{
    (void) state;
    static const char *bad[] = {"",
                                "http://127.0.0.1:6379",
                                "redis://",
                                "redis://:secret@",
                                "redis://host:notaport",
                                "redis://host:0",
                                "redis://host:70000",
                                "redis://host:6379x",
                                "redis://host:6379/abc",
                                "redis://host/-1",
                                "unix://"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        crm_store_t *s = crm_store_new(bad[i], 100);
        if (s) {
            crm_store_destroy(&s);
            fail_msg("'%s' accepted", bad[i]);
        }
    }
    assert_null(crm_store_new(NULL, 100));
    crm_store_t *none = NULL;
    crm_store_destroy(&none); /* safe on NULL */
    crm_store_destroy(NULL);
}

/* crm_store_format gives byte for byte what hiredis's redisFormatCommand
   gives, for every kind of format the services use and the edges. */
#define SAME(...)                                                                      \
    do {                                                                               \
        char *ours = NULL, *theirs = NULL;                                             \
        int a = crm_store_format(&ours, __VA_ARGS__);                                  \
        int b = redisFormatCommand(&theirs, __VA_ARGS__);                              \
        if (a != b || (a > 0 && memcmp(ours, theirs, (size_t) a)))                     \
            fail_msg("%s: ours %d \"%.*s\", hiredis's %d \"%.*s\"", #__VA_ARGS__, a,   \
                     a > 0 ? a : 0, ours ? ours : "", b, b > 0 ? b : 0, theirs ? theirs : ""); \
        free(ours);                                                                    \
        free(theirs);                                                                  \
        n++;                                                                           \
    } while (0)

static void test_commands_are_formatted_as_hiredis_formats_them(void **state)
{
    (void) state;
    int n = 0;
    static const char bin[] = {'a', 0, 'b', '\r', '\n', ' '};
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    SAME("PING");
    SAME("GET crm:{dealer.%s}:seq", "D1");
    SAME("HSET %s name %s city %s", "crm:cust:{C1}", "王先生", "深圳");
    SAME("SET k %s", "with spaces inside");          /* one argument */
    SAME("SET k %s", "");                            /* an empty one, still an argument */
    SAME("SET %s%s %s", "a", "b", "c");              /* two conversions in one argument */
    SAME("SET pre%ssuf x", "-");
    SAME("SET k %b", bin, sizeof bin);
    SAME("SET k %b", bin, (size_t) 0);
    SAME("  SET   k    v  ");                         /* runs of spaces */
    SAME("INCRBY k %d", -2147483647 - 1);
    SAME("INCRBY k %i", 42);
    SAME("SET k %u", 4294967295u);
    SAME("SET k %ld %lu", -9223372036854775807L - 1, 18446744073709551615UL);
    SAME("ZADD k %lld %s", -9223372036854775807LL - 1, "m");
    SAME("ZADD k %lld %llu", 1795140000000LL, 18446744073709551615ULL);
    SAME("SET k 100%%");
    SAME("SET k %");                                 /* a '%' ending the format */
    SAME("SET k %s", big);                           /* beyond the stack buffer */
    SAME("SET k %05d %x %.2f", 7, 255, 1.5);         /* left to hiredis */
    SAME("SET k %hd", 3);
#define K10 " k v k v k v k v k v k v k v k v k v k v"
    SAME("MSET" K10 K10 K10 K10 K10 K10 K10 K10 K10); /* more arguments than the first array holds */
#undef K10
    assert_true(n > 20);
}
#undef SAME

/* crm_fmt gives what snprintf gives, text and result, for every buffer
   size from 0 to past the text: the conversions it writes itself and
   those it hands to the C library. */
#define S_FMT_CASE(...)                                                                            \
    do {                                                                                           \
        char want[256], got[256];                                                                  \
        int wn = snprintf(want, sizeof want, __VA_ARGS__);                                         \
        assert_true(wn >= 0 && wn < (int) sizeof want);                                            \
        for (size_t size = 0; size <= (size_t) wn + 2; size++) {                                   \
            char a[256], b[256];                                                                   \
            memset(a, 'x', sizeof a), memset(b, 'x', sizeof b);                                    \
            int an = snprintf(size ? a : NULL, size, __VA_ARGS__);                                 \
            int bn = crm_fmt(size ? b : NULL, size, __VA_ARGS__);                                  \
            assert_int_equal(bn, an);                                                              \
            assert_memory_equal(b, a, sizeof a);                                                   \
        }                                                                                          \
        assert_int_equal(crm_fmt(got, sizeof got, __VA_ARGS__), wn);                               \
        assert_string_equal(got, want);                                                            \
    } while (0)

static void test_fmt_writes_what_snprintf_writes(void **state)
{
    (void) state;
    S_FMT_CASE("plain text");
    S_FMT_CASE("%s", "");
    S_FMT_CASE("crm:lead:%s", "L42");
    S_FMT_CASE("crm:cust:{%s}:history", "C7");
    S_FMT_CASE("%s|%s|%s", "mobile", "invalid", "手机号 不是 号码");
    S_FMT_CASE("%.*s", 3, "abcdef");
    S_FMT_CASE("%.*s|", 10, "ab");
    S_FMT_CASE("ans-%.24s", "0123456789abcdef0123456789abcdef");
    S_FMT_CASE("%8s|%2s", "ab", "abcdef");
    S_FMT_CASE("%c:%s", 'm', "13800138000");
    S_FMT_CASE("%3c", 'z');
    S_FMT_CASE("100%% %d%%", 5);
    S_FMT_CASE("C%lld", 1234567890123LL);
    S_FMT_CASE("%lld %lld %lld", 0LL, -1LL, (long long) INT64_MIN);
    S_FMT_CASE("%llu %llu", 0ULL, (unsigned long long) UINT64_MAX);
    S_FMT_CASE("%d %i %u %d", INT32_MIN, -7, 4000000000U, INT32_MAX);
    S_FMT_CASE("%ld %lu %zu %jd", -42L, 42UL, (size_t) 123456, (intmax_t) -9);
    S_FMT_CASE("%hd %hhu %hu", (short) -300, (unsigned char) 250, (unsigned short) 65535);
    S_FMT_CASE("%hd %hhd %hhu %hu", 70000, 300, 300, 70000); /* beyond their types: cut as printf cuts */
    S_FMT_CASE("%.*s|%s", -1, "all of it", "x");
    const char *volatile nul = NULL; /* glibc's own way with a null %s, precision or not */
    S_FMT_CASE("%.3s|%s|%.*s", nul, nul, 8, nul);
    S_FMT_CASE("%.*s %.*s %5.2f", 2, "abc", 1, "xyz", 3.14159); /* the fallback after %.*s took two */
    S_FMT_CASE("%02x%02x%02x", 0, 10, 255);
    S_FMT_CASE("%s-%llx %X %x", "p", 0xdeadbeefULL, 0xABCU, 0U);
    S_FMT_CASE("%5d|%05d|%-5d|%+d|% d", 42, -42, 42, 42, 42);
    S_FMT_CASE("%04d-%02d-%02d %02d:%02d CST", 2026, 12, 4, 9, 5);
    S_FMT_CASE("%.3d|%#x|%o", 7, 255, 8);
    S_FMT_CASE("%.2f ms p50, %g", 0.914, 1e-3);
    S_FMT_CASE("%s %p", "at", (void *) 0x1234);
    S_FMT_CASE("%-8s|", "left");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_applies_without_flag_or_env, s_setup),
        cmocka_unit_test_setup(test_env_beats_default, s_setup),
        cmocka_unit_test_setup(test_empty_env_falls_back_to_default, s_setup),
        cmocka_unit_test_setup(test_flag_beats_env_and_default, s_setup),
        cmocka_unit_test_setup(test_name_equals_value_form_is_accepted, s_setup),
        cmocka_unit_test_setup(test_last_flag_wins, s_setup),
        cmocka_unit_test_setup(test_unknown_flag_is_an_error, s_setup),
        cmocka_unit_test_setup(test_flag_without_value_is_an_error, s_setup),
        cmocka_unit_test_setup(test_help_and_version_are_answered, s_setup),
        cmocka_unit_test_setup(test_positional_arguments_move_to_the_front_in_order, s_setup),
        cmocka_unit_test_setup(test_integer_option_checks_range_and_form, s_setup),
        cmocka_unit_test_setup(test_mobile_phone_keeps_first_three_and_last_four, s_setup),
        cmocka_unit_test_setup(test_id_number_keeps_address_code_and_last_four, s_setup),
        cmocka_unit_test_setup(test_short_values_are_masked_whole, s_setup),
        cmocka_unit_test_setup(test_mask_never_overflows_its_output, s_setup),
        cmocka_unit_test_setup(test_mask_cleans_log_breaking_characters, s_setup),
        cmocka_unit_test_setup(test_log_value_replaces_spaces_quotes_and_equals, s_setup),
        cmocka_unit_test_setup(test_log_lines_carry_service_message_and_event, s_setup),
        cmocka_unit_test_setup(test_clock_set_and_reset, s_setup),
        cmocka_unit_test_setup(test_clock_file_sets_the_time_for_the_process, s_setup),
        cmocka_unit_test_setup(test_monotonic_clock_does_not_go_back, s_setup),
        cmocka_unit_test_setup(test_store_with_a_malformed_url_is_not_created, s_setup),
        cmocka_unit_test_setup(test_commands_are_formatted_as_hiredis_formats_them, s_setup),
        cmocka_unit_test(test_fmt_writes_what_snprintf_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
