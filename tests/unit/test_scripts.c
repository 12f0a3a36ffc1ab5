/*
 * test_scripts.c - the portable logic of the script runner (service/scripts/scr.c,
 * scr_startup.c): kinds and skip rules, name order, variable names and environment entries,
 * base64 and the PowerShell prologue (injection attempts), output scrubbing and the output
 * cap, and where a file mapping may land under the scripts folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit.h"

#include "plat.h"
#include "scr.h"
#include "scr_startup.h"

static void kinds_and_skip_rules(void **state)
{
    (void)state;
    assert_int_equal(scr_kind_of("10_setup.ps1"), SCR_KIND_PS1);
    assert_int_equal(scr_kind_of("A.PS1"), SCR_KIND_PS1);
    assert_int_equal(scr_kind_of("x_tmp.ps1"), SCR_KIND_TMP);
    assert_int_equal(scr_kind_of("X_TMP.PS1"), SCR_KIND_TMP);
    assert_int_equal(scr_kind_of("run.cmd"), SCR_KIND_CMD);
    assert_int_equal(scr_kind_of("run.BAT"), SCR_KIND_CMD);
    assert_int_equal(scr_kind_of("run.sh"), SCR_KIND_SH);
    assert_int_equal(scr_kind_of("policy.reg"), SCR_KIND_REG);
    assert_int_equal(scr_kind_of("readme.txt"), SCR_KIND_OTHER);
    assert_int_equal(scr_kind_of("ps1"), SCR_KIND_OTHER);
    assert_int_equal(scr_kind_of(".ps1"), SCR_KIND_OTHER);
    assert_int_equal(scr_kind_of(".sh"), SCR_KIND_OTHER);
    assert_int_equal(scr_kind_of("script.ps1.txt"), SCR_KIND_OTHER);
    assert_int_equal(scr_kind_of(""), SCR_KIND_OTHER);
    assert_int_equal(scr_kind_of(NULL), SCR_KIND_OTHER);
}

static void name_order(void **state)
{
    const char *v[] = {"b.sh", "10_x.sh", "A.sh", "a.sh", "2_y.sh", "_z.sh", "B.sh"};
    const char *want[] = {"10_x.sh", "2_y.sh", "_z.sh", "A.sh", "a.sh", "B.sh", "b.sh"};
    (void)state;
    qsort(v, sizeof(v) / sizeof(v[0]), sizeof(v[0]), scr_name_cmp);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_string_equal(v[i], want[i]);
}

static void variable_and_env_names(void **state)
{
    char out[80];
    struct err e = ERR_INIT;
    (void)state;
    assert_true(scr_var_name_valid("kasm_id"));
    assert_true(scr_var_name_valid("_x9"));
    assert_false(scr_var_name_valid("9x"));
    assert_false(scr_var_name_valid("a-b"));
    assert_false(scr_var_name_valid("a b"));
    assert_false(scr_var_name_valid("a$b"));
    assert_false(scr_var_name_valid(""));
    assert_int_equal(scr_env_name("kasm_id", out, sizeof(out), &e), 0);
    assert_string_equal(out, "KASM_KASM_ID");
    assert_int_equal(scr_env_name("username", out, sizeof(out), &e), 0);
    assert_string_equal(out, "KASM_USERNAME");
    assert_int_equal(scr_env_name("user_id", out, sizeof(out), &e), 0);
    assert_string_equal(out, "KASM_USER_ID");
    assert_int_equal(scr_env_name("a=b", out, sizeof(out), &e), ERR_INVALID);
    assert_int_equal(scr_env_name("kasm_id", out, 8, &e), ERR_TOO_LARGE);
}

static void env_list_entries(void **state)
{
    struct scr_var vars[] = {{"kasm_id", "abc", 0}, {"jwt_token", "t=1;x", 1}, {"empty", NULL, 0}};
    char **env = NULL;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(scr_env_list(vars, 3, &env, &e), 0);
    assert_string_equal(env[0], "KASM_KASM_ID=abc");
    assert_string_equal(env[1], "KASM_JWT_TOKEN=t=1;x");
    assert_string_equal(env[2], "KASM_EMPTY=");
    assert_null(env[3]);
    scr_env_list_free(env);
    vars[0].name = "bad name";
    assert_int_equal(scr_env_list(vars, 3, &env, &e), ERR_INVALID);
    assert_null(env);
}

static void base64_vectors(void **state)
{
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"},
             {"\xff\xfe", "//4="}};
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *s = scr_base64(v[i].in, strlen(v[i].in));
        assert_non_null(s);
        assert_string_equal(s, v[i].out);
        free(s);
    }
}

static void prologue_encodes_every_value(void **state)
{
    /* Injection attempts: quotes, $(), backticks, here-string ends, line breaks, Unicode. */
    const char *evil = "x'); Remove-Item -Recurse C:\\ ; ('\r\n\"@\n$(calc) `n \xe2\x80\x99'";
    struct scr_var vars[] = {{"username", evil, 0}, {"kasm_id", "1234", 0}, {"jwt_token", "", 1}};
    char *p = NULL, *enc;
    size_t len = 0;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(scr_ps_prologue(vars, 3, &p, &len, &e), 0);
    assert_int_equal(strlen(p), len);
    enc = scr_base64(evil, strlen(evil));
    assert_non_null(strstr(p, "$username = [System.Text.Encoding]::UTF8.GetString("
                              "[System.Convert]::FromBase64String('"));
    assert_non_null(strstr(p, enc));
    assert_non_null(strstr(p, "$kasm_id = [System.Text.Encoding]::UTF8.GetString([System.Convert]"
                              "::FromBase64String('MTIzNA=='))\r\n"));
    assert_non_null(strstr(p, "$jwt_token = [System.Text.Encoding]::UTF8.GetString([System."
                              "Convert]::FromBase64String(''))\r\n"));
    /* nothing of the raw value reaches the text */
    assert_null(strstr(p, "Remove-Item"));
    assert_null(strstr(p, "calc"));
    /* every quote in the text is one of ours: 2 per variable */
    {
        size_t q = 0;
        for (const char *c = p; *c; c++)
            q += *c == '\'';
        assert_int_equal(q, 6);
    }
    free(enc);
    free(p);
    vars[1].name = "x;y";
    assert_int_equal(scr_ps_prologue(vars, 3, &p, &len, &e), ERR_INVALID);
    assert_null(p);
}

static void ps_copy_bom_and_order(void **state)
{
    struct scr_var vars[] = {{"kasm_id", "k", 0}};
    const char script[] = "\xEF\xBB\xBFWrite-Output $kasm_id\r\n";
    char *c = NULL;
    size_t len = 0;
    struct err e = ERR_INIT;
    (void)state;
    assert_int_equal(scr_ps_copy(script, strlen(script), vars, 1, &c, &len, &e), 0);
    assert_memory_equal(c, "\xEF\xBB\xBF# Variables", 14);
    assert_null(strstr(c + 3, "\xEF\xBB\xBF")); /* the script's own BOM is gone */
    assert_non_null(strstr(c, "$kasm_id = "));
    assert_true(strstr(c, "$kasm_id = ") < strstr(c, "Write-Output $kasm_id"));
    assert_int_equal(len, strlen(c));
    free(c);
}

static void scrub_redacts_secrets(void **state)
{
    const char *jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzZXJ2ZXJfaWQiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
    struct scr_var vars[] = {{"jwt_token", "opaque-session-secret", 1},
                             {"api_token", "another-secret-value", 0},
                             {"kasm_id", "kid-123", 0}};
    char buf[1024];
    size_t len;
    (void)state;
    len = (size_t)snprintf(buf, sizeof(buf),
                           "token is opaque-session-secret\nkey another-secret-value\n"
                           "id kid-123\nbearer %s\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n"
                           "BgkqhkiG9w0B\n-----END PRIVATE KEY-----\nend\n",
                           jwt);
    buf[5] = '\0'; /* a NUL inside the output */
    scr_scrub_output(buf, &len, sizeof(buf), vars, 3);
    assert_int_equal(len, strlen(buf));
    assert_null(strstr(buf, "opaque-session-secret"));
    assert_null(strstr(buf, "another-secret-value"));
    assert_null(strstr(buf, "eyJhbGciOiJSUzI1NiJ9"));
    assert_null(strstr(buf, "MIIEvQIBADAN"));
    assert_null(strstr(buf, "BgkqhkiG9w0B"));
    assert_non_null(strstr(buf, "id kid-123")); /* not a secret */
    assert_non_null(strstr(buf, "<redacted>"));
    assert_non_null(strstr(buf, "end"));
    assert_memory_equal(buf, "token?is", 8);
}

static void scrub_never_overflows(void **state)
{
    /* A short secret repeated: the replacement is longer than the secret. */
    struct scr_var vars[] = {{"jwt", "ab", 1}};
    char buf[32];
    size_t len;
    (void)state;
    memset(buf, 0, sizeof(buf));
    len = (size_t)snprintf(buf, sizeof(buf), "abababababababababab");
    scr_scrub_output(buf, &len, sizeof(buf), vars, 1);
    assert_true(len < sizeof(buf));
    assert_int_equal(len, strlen(buf));
    assert_null(strstr(buf, "ab"));
}

static void outbuf_caps_output(void **state)
{
    struct scr_outbuf b;
    char chunk[1000];
    struct err e = ERR_INIT;
    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    assert_int_equal(scr_outbuf_init(&b, 2500, &e), 0);
    for (int i = 0; i < 5; i++)
        scr_outbuf_add(&b, chunk, sizeof(chunk));
    assert_int_equal(b.len, 2500);
    assert_int_equal(b.dropped, 2500);
    assert_int_equal(b.data[2500], '\0');
    scr_outbuf_free(&b);
}

static void mapping_targets(void **state)
{
#ifdef _WIN32
    const char *root = "C:\\Program Files\\Kasm\\scripts";
    const char *want = "C:\\Program Files\\Kasm\\scripts\\service_startup\\a.ps1";
    const char *want_reg = "C:\\Program Files\\Kasm\\scripts\\registry\\p.reg";
#else
    const char *root = "/opt/kasm/scripts";
    const char *want = "/opt/kasm/scripts/service_startup/a.ps1";
    const char *want_reg = "/opt/kasm/scripts/registry/p.reg";
#endif
    char out[1024];
    struct err e = ERR_INIT;
    (void)state;
    /* absolute, either separator, any case of the root */
    assert_int_equal(scr_mapping_target(root, want, out, sizeof(out), &e), 1);
    assert_string_equal(out, want);
    assert_int_equal(scr_mapping_target("C:\\Program Files\\Kasm\\scripts",
                                        "c:/program files/kasm/SCRIPTS/Service_Startup/a.ps1", out,
                                        sizeof(out), &e),
                     1);
    /* relative */
    assert_int_equal(
        scr_mapping_target(root, "scripts\\service_startup\\a.ps1", out, sizeof(out), &e), 1);
    assert_string_equal(out, want);
    assert_int_equal(scr_mapping_target(root, "scripts/registry/p.reg", out, sizeof(out), &e), 1);
    assert_string_equal(out, want_reg);
    /* not ours */
    assert_int_equal(scr_mapping_target(root, "%HOMEPATH%\\Desktop\\x.txt", out, sizeof(out), &e),
                     0);
    assert_int_equal(scr_mapping_target(root, "C:\\Windows\\x.ps1", out, sizeof(out), &e), 0);
    assert_int_equal(
        scr_mapping_target(root, "scriptsX\\service_startup\\a.ps1", out, sizeof(out), &e), 0);
    /* escapes and rule breaks */
    assert_int_equal(
        scr_mapping_target(root, "scripts\\..\\..\\Windows\\evil.ps1", out, sizeof(out), &e),
        ERR_PERMISSION);
    assert_int_equal(e.code, ERR_PERMISSION);
    assert_int_equal(scr_mapping_target(root, "scripts\\service_startup\\..\\..\\evil.ps1", out,
                                        sizeof(out), &e),
                     ERR_PERMISSION);
    assert_int_equal(scr_mapping_target(root, "scripts\\tmp\\a.ps1", out, sizeof(out), &e),
                     ERR_PERMISSION);
    assert_int_equal(scr_mapping_target(root, "scripts\\a.ps1", out, sizeof(out), &e),
                     ERR_PERMISSION);
    assert_int_equal(
        scr_mapping_target(root, "scripts\\service_startup\\sub\\a.ps1", out, sizeof(out), &e),
        ERR_PERMISSION);
    assert_int_equal(scr_mapping_target(root, "scripts\\service_startup\\", out, sizeof(out), &e),
                     ERR_PERMISSION);
    assert_int_equal(
        scr_mapping_target(root, "scripts\\service_startup\\\\a.ps1", out, sizeof(out), &e),
        ERR_PERMISSION);
    assert_int_equal(
        scr_mapping_target(root, "scripts\\service_startup\\a:b.ps1", out, sizeof(out), &e),
        ERR_PERMISSION);
    assert_int_equal(
        scr_mapping_target(root, "scripts\\service_startup\\CON.ps1", out, sizeof(out), &e),
        ERR_PERMISSION);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinds_and_skip_rules),   cmocka_unit_test(name_order),
        cmocka_unit_test(variable_and_env_names), cmocka_unit_test(env_list_entries),
        cmocka_unit_test(base64_vectors),         cmocka_unit_test(prologue_encodes_every_value),
        cmocka_unit_test(ps_copy_bom_and_order),  cmocka_unit_test(scrub_redacts_secrets),
        cmocka_unit_test(scrub_never_overflows),  cmocka_unit_test(outbuf_caps_output),
        cmocka_unit_test(mapping_targets),
    };
    return UNIT_RUN("scripts", tests, NULL, NULL);
}
