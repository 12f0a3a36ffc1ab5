/*
 * test_adm_doctor.c - agentctl doctor's portable logic (service/admin/adm_doctor.c): the
 * verdicts at their thresholds, every check present in a run over a bare configuration (no
 * lifecycle, session manager or API; no deployment host), and the platform's file checks on
 * a private and an open file (natively and under Wine).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "adm_doctor.h"
#include "adm_doctor_plat.h"
#include "cfg.h"
#include "testdir.h"
#include "unit.h"

#ifdef _WIN32
#include <windows.h>

/* 1 under Wine (ntdll exports wine_get_version): its file DACLs are not Windows'. */
static int test_under_wine(void)
{
    HMODULE nt = GetModuleHandleA("ntdll.dll");
    return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}
#else
#include <sys/stat.h>
#endif

static void cert_verdicts(void **state)
{
    (void)state;
    assert_int_equal(admd_judge_cert(-86400, 365 * 86400), ADMD_OK);
    assert_int_equal(admd_judge_cert(-86400, 30 * 86400), ADMD_OK);
    assert_int_equal(admd_judge_cert(-86400, 30 * 86400 - 1), ADMD_WARNING);
    assert_int_equal(admd_judge_cert(-86400, 1), ADMD_WARNING);
    assert_int_equal(admd_judge_cert(-86400, 0), ADMD_FAIL);
    assert_int_equal(admd_judge_cert(-86400, -1), ADMD_FAIL);
    assert_int_equal(admd_judge_cert(0, 365 * 86400), ADMD_OK);
    assert_int_equal(admd_judge_cert(1, 365 * 86400), ADMD_FAIL); /* not valid yet */
}

static void skew_verdicts(void **state)
{
    (void)state;
    assert_int_equal(admd_judge_skew(0, 60), ADMD_OK);
    assert_int_equal(admd_judge_skew(60, 60), ADMD_OK);
    assert_int_equal(admd_judge_skew(-60, 60), ADMD_OK);
    assert_int_equal(admd_judge_skew(61, 60), ADMD_WARNING);
    assert_int_equal(admd_judge_skew(-61, 60), ADMD_WARNING);
    assert_int_equal(admd_judge_skew(300, 60), ADMD_WARNING);
    assert_int_equal(admd_judge_skew(301, 60), ADMD_FAIL);
    assert_int_equal(admd_judge_skew(-3600, 60), ADMD_FAIL);
    assert_int_equal(admd_judge_skew(200, 600), ADMD_OK); /* a wide leeway */
    assert_int_equal(admd_judge_skew(400, 600), ADMD_FAIL);
    assert_int_equal(admd_judge_skew(1, -5), ADMD_WARNING);
}

static void disk_verdicts(void **state)
{
    const uint64_t gib = 1024ull * 1024ull * 1024ull;
    (void)state;
    assert_int_equal(admd_judge_disk(10 * gib, 100 * gib), ADMD_OK);
    assert_int_equal(admd_judge_disk(5 * gib, 100 * gib), ADMD_OK);
    assert_int_equal(admd_judge_disk(5 * gib - 1, 100 * gib), ADMD_WARNING); /* under 5% */
    assert_int_equal(admd_judge_disk(gib, 2 * gib), ADMD_OK);
    assert_int_equal(admd_judge_disk(gib - 1, 2 * gib), ADMD_WARNING); /* under 1 GiB */
    assert_int_equal(admd_judge_disk(0, 0), ADMD_WARNING);
    assert_int_equal(admd_judge_disk(2 * gib, 0), ADMD_OK); /* total unknown */
}

static void token_verdicts(void **state)
{
    (void)state;
    assert_int_equal(admd_judge_token(0, 0, 0, 1000), ADMD_FAIL);
    assert_int_equal(admd_judge_token(1, 0, 0, 1000), ADMD_OK);
    assert_int_equal(admd_judge_token(1, 1, 1001, 1000), ADMD_OK);
    assert_int_equal(admd_judge_token(1, 1, 1000, 1000), ADMD_FAIL);
    assert_int_equal(admd_judge_token(1, 1, 10, 1000), ADMD_FAIL);
    assert_string_equal(admd_verdict_name(ADMD_OK), "ok");
    assert_string_equal(admd_verdict_name(ADMD_WARNING), "warning");
    assert_string_equal(admd_verdict_name(ADMD_FAIL), "fail");
    assert_string_equal(admd_verdict_name(ADMD_SKIPPED), "skipped");
}

static void firewall_port_lists(void **state)
{
    (void)state;
    assert_true(admd_port_in_list("*", 4902));
    assert_true(admd_port_in_list("4902", 4902));
    assert_true(admd_port_in_list("80,443,4902", 4902));
    assert_true(admd_port_in_list("80, 4900-4910", 4902));
    assert_true(admd_port_in_list("4902-4902", 4902));
    assert_false(admd_port_in_list("49020", 4902));
    assert_false(admd_port_in_list("4903-4910", 4902));
    assert_false(admd_port_in_list("RPC,RPC-EPMap", 4902));
    assert_false(admd_port_in_list("", 4902));
    assert_false(admd_port_in_list("490", 4902));
    assert_false(admd_port_in_list("4902x", 4902));
}

static const cJSON *find_check(const cJSON *checks, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, checks)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "check");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return c;
    }
    return NULL;
}

static const char *verdict_of(const cJSON *checks, const char *name)
{
    const cJSON *c = find_check(checks, name);
    const cJSON *v = c ? cJSON_GetObjectItemCaseSensitive(c, "verdict") : NULL;
    assert_non_null(v);
    return v->valuestring;
}

/* A bare configuration: nothing attached, no deployment host, no certificate files. */
static void run_over_a_bare_config(void **state)
{
    static const char *names[] = {"config",          "key_file",  "config_acl", "certificate",
                                  "certificate_key", "jwt_key",   "https_port", "firewall",
                                  "deployment",      "token",     "clock_skew", "helpers",
                                  "winfsp",          "disk_space"};
    char dir[512], path[CFG_PATH_MAX];
    struct cfg cfg;
    struct err e = ERR_INIT;
    cJSON *r = cJSON_CreateObject();
    const cJSON *checks, *c;
    size_t i = 0;

    (void)state;
    assert_int_equal(td_make("doctor", dir, sizeof(dir)), 0);
    assert_int_equal(fs_join(dir, "config.yaml", path, sizeof(path), NULL), 0);
    cfg_defaults(&cfg, dir);
    assert_int_equal(cfg_save(&cfg, path, &e), 0);
    snprintf(cfg.path, sizeof(cfg.path), "%s", path);

    assert_int_equal(admd_run(&cfg, path, NULL, NULL, NULL, r), 0);
    checks = cJSON_GetObjectItemCaseSensitive(r, "checks");
    assert_int_equal(cJSON_GetArraySize(checks), 14);
    cJSON_ArrayForEach(c, checks)
    {
        const char *v = cJSON_GetObjectItemCaseSensitive(c, "verdict")->valuestring;
        const cJSON *fix = cJSON_GetObjectItemCaseSensitive(c, "fix");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "check")->valuestring, names[i++]);
        assert_true(strlen(cJSON_GetObjectItemCaseSensitive(c, "detail")->valuestring) > 0);
        if (strcmp(v, "fail") == 0 || strcmp(v, "warning") == 0)
            assert_true(cJSON_IsString(fix) && strlen(fix->valuestring) > 0);
        if (strcmp(v, "ok") == 0)
            assert_true(cJSON_IsNull(fix));
    }
    assert_string_equal(verdict_of(checks, "config"), "ok");        /* the file is what runs */
    assert_string_equal(verdict_of(checks, "certificate"), "fail"); /* no certs/cert.pem */
    assert_string_equal(verdict_of(checks, "certificate_key"), "skipped");
    assert_string_equal(verdict_of(checks, "jwt_key"), "fail");
    assert_string_equal(verdict_of(checks, "https_port"), "fail"); /* no API attached */
    assert_string_equal(verdict_of(checks, "deployment"), "fail"); /* no api_host */
    assert_string_equal(verdict_of(checks, "token"), "fail");      /* not registered */
    assert_string_equal(verdict_of(checks, "clock_skew"), "skipped");
    assert_string_equal(verdict_of(checks, "helpers"), "fail"); /* no session manager */
    assert_string_equal(verdict_of(checks, "winfsp"), "skipped");
    assert_true(cJSON_GetObjectItemCaseSensitive(r, "failed")->valuedouble >= 7);

    /* the file edited behind the agent's back: a warning */
    cfg.jwt_leeway = 99;
    cJSON_Delete(r);
    r = cJSON_CreateObject();
    assert_int_equal(admd_run(&cfg, path, NULL, NULL, NULL, r), 0);
    assert_string_equal(verdict_of(cJSON_GetObjectItemCaseSensitive(r, "checks"), "config"),
                        "warning");
    cJSON_Delete(r);
    cfg_free(&cfg);
    td_remove_tree(dir);
}

/* The platform's file checks: a file restricted to administrators is private; on POSIX a
 * file of mode 0644 is not, and names its mode and the chmod that fixes it. */
static void file_checks(void **state)
{
    char dir[1024], path[1100], why[256], fix[512];
    struct err e = ERR_INIT;
    int rc;

    (void)state;
    assert_int_equal(td_make("doctor-acl", dir, sizeof(dir)), 0);
    assert_int_equal(fs_join(dir, "key.pem", path, sizeof(path), NULL), 0);
    assert_int_equal(td_write(path, "not a key\n"), 0);
    assert_int_equal(plat_path_restrict_to_admins(path, &e), 0);
    rc = admd_plat_private(path, why, sizeof(why), fix, sizeof(fix), &e);
    print_message("private: %d: %s %s\n", rc, why, rc < 0 ? e.msg : "");
#ifdef _WIN32
    if (test_under_wine()) {
        /* Wine keeps no DACL on a Unix file: it shows one made from the mode (Everyone may
         * read), so the check must say so and name the fix. */
        assert_int_equal(rc, 1);
        assert_non_null(strstr(why, "S-1-1-0"));
        assert_non_null(strstr(fix, "icacls \""));
        assert_non_null(strstr(fix, "/remove:g *S-1-1-0"));
    } else {
        assert_int_equal(rc, 0);
    }
#else
    assert_int_equal(rc, 0);
#endif
    rc = admd_plat_admin_write_only(path, why, sizeof(why), fix, sizeof(fix), &e);
    assert_int_equal(rc, 0);
#ifndef _WIN32
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(admd_plat_private(path, why, sizeof(why), fix, sizeof(fix), &e), 1);
    assert_non_null(strstr(why, "mode 0644"));
    assert_non_null(strstr(fix, "chmod 600"));
    assert_int_equal(admd_plat_admin_write_only(path, why, sizeof(why), fix, sizeof(fix), &e), 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(admd_plat_admin_write_only(path, why, sizeof(why), fix, sizeof(fix), &e), 1);
    assert_non_null(strstr(fix, "chmod go-w"));
#endif
    assert_int_equal(fs_join(dir, "missing.pem", path, sizeof(path), NULL), 0);
    assert_true(admd_plat_private(path, why, sizeof(why), fix, sizeof(fix), &e) < 0);
    assert_int_equal(e.code, ERR_NOT_FOUND);
    td_remove_tree(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cert_verdicts),       cmocka_unit_test(skew_verdicts),
        cmocka_unit_test(disk_verdicts),       cmocka_unit_test(token_verdicts),
        cmocka_unit_test(firewall_port_lists), cmocka_unit_test(run_over_a_bare_config),
        cmocka_unit_test(file_checks),
    };
    return UNIT_RUN("adm_doctor", tests, NULL, NULL);
}
