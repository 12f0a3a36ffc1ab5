/*
 * test_setup.c - service/setup/setup.c, what the MSI's custom actions ask of agent.exe: the
 * default config (loads, port, quoting), --install-setup writing it only when none exists and
 * setting --port in an existing one, --uninstall-cleanup removing only what the agent writes
 * beside itself, and the upgrade mark keeping the data. Runs natively and under Wine (there
 * with a service name of its own: the Event Log source and firewall rule it adds go again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fsutil.h"
#include "plat.h"
#include "setup.h"
#include "testdir.h"

static char g_dir[1024];
static char g_cfg[1200];
static char g_service[64];

static int setup_dir(void **state)
{
    (void)state;
    if (td_make("setup", g_dir, sizeof(g_dir)) < 0 ||
        fs_join(g_dir, "config.yaml", g_cfg, sizeof(g_cfg), NULL) < 0)
        return -1;
    snprintf(g_service, sizeof(g_service), "KasmUnitTest-%lu", plat_pid());
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    td_remove_tree(g_dir);
    return 0;
}

static struct setup_request req(int port)
{
    struct setup_request r;
    memset(&r, 0, sizeof(r));
    r.cfg_path = g_cfg;
    r.port = port;
    r.service_name = g_service;
    return r;
}

static int exists(const char *name)
{
    char p[1400];
    struct plat_file_info fi;
    return fs_join(g_dir, name, p, sizeof(p), NULL) == 0 && plat_path_stat(p, &fi, NULL) == 0;
}

static void put(const char *rel, const char *text)
{
    char p[1400], d[1400];
    assert_int_equal(fs_join(g_dir, rel, p, sizeof(p), NULL), 0);
    assert_int_equal(fs_dirname(p, d, sizeof(d), NULL), 0);
    assert_int_equal(plat_dir_create_all(d, NULL), 0);
    assert_int_equal(td_write(p, text), 0);
}

static void load(struct cfg *c)
{
    struct err e = ERR_INIT;
    memset(c, 0, sizeof(*c));
    assert_int_equal(cfg_load(c, g_cfg, &e), 0);
}

static void default_config_loads(void **state)
{
    struct cfg c;
    struct err e = ERR_INIT;
    char *text;
    (void)state;

    text = setup_default_config("C:\\Program Files\\Kasm", 0);
    assert_non_null(text);
    memset(&c, 0, sizeof(c));
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_load_buffer(&c, "default", text, strlen(text), &e), 0);
    assert_int_equal(c.port, 4902);
    {
        char want[256];
        assert_int_equal(fs_join("C:\\Program Files\\Kasm", "agent.log", want, sizeof(want), NULL),
                         0);
        assert_string_equal(c.log_file, want);
    }
    assert_int_equal(c.registered, 0);
    cfg_free(&c);
    free(text);

    /* a quote in the folder name, another port */
    text = setup_default_config("/opt/it's here", 4999);
    assert_non_null(text);
    memset(&c, 0, sizeof(c));
    cfg_defaults(&c, NULL);
    assert_int_equal(cfg_load_buffer(&c, "default", text, strlen(text), &e), 0);
    assert_int_equal(c.port, 4999);
    assert_non_null(strstr(c.log_file, "it's here"));
    cfg_free(&c);
    free(text);
}

static void install_writes_default_then_keeps(void **state)
{
    struct setup_request r = req(0);
    struct err e = ERR_INIT;
    struct cfg c;
    char *text = NULL;
    size_t len = 0;
    (void)state;

    assert_int_equal(setup_install(&r, &e), 0);
    assert_true(exists("config.yaml") && exists("certs") && exists("scripts"));
    load(&c);
    assert_int_equal(c.port, 4902);
    cfg_free(&c);

    /* an administrator's edit, then an upgrade with PORT */
    assert_int_equal(fs_read_all(g_cfg, 65536, &text, &len, &e), 0);
    put("config.yaml", "port: 4902\ncustom_key: kept\n");
    free(text);
    r = req(4999);
    assert_int_equal(setup_install(&r, &e), 0);
    load(&c);
    assert_int_equal(c.port, 4999);
    cfg_free(&c);
    assert_int_equal(fs_read_all(g_cfg, 65536, &text, &len, &e), 0);
    assert_non_null(strstr(text, "custom_key: kept"));
    free(text);

    /* no PORT: the config keeps its port */
    r = req(0);
    assert_int_equal(setup_install(&r, &e), 0);
    load(&c);
    assert_int_equal(c.port, 4999);
    cfg_free(&c);
    r = req(0);
    assert_int_equal(setup_uninstall(&r, &e), 0);
}

static void uninstall_removes_only_agent_files(void **state)
{
    struct setup_request r = req(0);
    struct err e = ERR_INIT;
    static const char *const gone[] = {"config.yaml",
                                       "certs",
                                       "Upload",
                                       "Download",
                                       "agent.log",
                                       "agent.log.1",
                                       "pending_registration.json",
                                       "scripts"};
    (void)state;

    put("config.yaml", "port: 4902\n");
    put("certs/cert.pem", "x");
    put("Upload/a/b.txt", "x");
    put("Download/x.bin", "x");
    put("agent.log", "x");
    put("agent.log.1", "x");
    put("pending_registration.json", "{}");
    put("scripts/session_start/hook.cmd", "echo");
    put("agent.exe", "MZ");             /* the installer's files: not the clean-up's */
    put("notes.txt", "someone's file"); /* not the agent's: INSTALLDIR may be shared */
    assert_int_equal(setup_uninstall(&r, &e), 0);
    for (size_t k = 0; k < sizeof(gone) / sizeof(gone[0]); k++)
        assert_false(exists(gone[k]));
    assert_true(exists("agent.exe"));
    assert_true(exists("notes.txt"));
}

static void upgrade_mark_keeps_data(void **state)
{
    struct setup_request r = req(0);
    struct err e = ERR_INIT;
    (void)state;

    put("config.yaml", "port: 4902\n");
    put("certs/cert.pem", "x");
    put("Upload/kept.txt", "x");
    assert_int_equal(setup_mark_upgrade(&r, &e), 0);
    assert_true(exists("upgrade-in-progress"));
    /* the old version's uninstall, as Wine runs it (no UPGRADINGPRODUCTCODE) */
    assert_int_equal(setup_uninstall(&r, &e), 0);
    assert_true(exists("config.yaml") && exists("certs") && exists("Upload"));
    /* the new version's setup ends the upgrade */
    assert_int_equal(setup_install(&r, &e), 0);
    assert_false(exists("upgrade-in-progress"));
    /* --keep-data (Windows' upgrade path) also keeps it */
    r.keep_data = 1;
    assert_int_equal(setup_uninstall(&r, &e), 0);
    assert_true(exists("config.yaml") && exists("Upload"));
    /* a real uninstall now removes it */
    r.keep_data = 0;
    assert_int_equal(setup_uninstall(&r, &e), 0);
    assert_false(exists("config.yaml") || exists("certs") || exists("Upload"));
}

static void uninstall_removes_emptied_dir(void **state)
{
    struct setup_request r = req(0);
    struct err e = ERR_INIT;
    struct plat_file_info fi;
    char sub[1400], cfg[1500];
    (void)state;

    /* a folder of its own inside the scratch dir: the clean-up removes it once empty */
    assert_int_equal(fs_join(g_dir, "Kasm", sub, sizeof(sub), NULL), 0);
    assert_int_equal(plat_dir_create(sub, NULL), 0);
    assert_int_equal(fs_join(sub, "config.yaml", cfg, sizeof(cfg), NULL), 0);
    assert_int_equal(td_write(cfg, "port: 4902\n"), 0);
    r.cfg_path = cfg;
    assert_int_equal(setup_uninstall(&r, &e), 0);
    assert_int_equal(plat_path_stat(sub, &fi, NULL), ERR_NOT_FOUND);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_config_loads),
        cmocka_unit_test_setup_teardown(install_writes_default_then_keeps, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(uninstall_removes_only_agent_files, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(upgrade_mark_keeps_data, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(uninstall_removes_emptied_dir, setup_dir, teardown_dir),
    };
    return UNIT_RUN("setup", tests, NULL, NULL);
}
