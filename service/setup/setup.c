/*
 * setup.c - the portable part of the installer's custom actions (setup.h): the default
 * config.yaml, the port property, the folders, and the clean-up of what the agent wrote
 * beside itself on uninstall. The machine-wide settings are in win32/ and posix/setup_plat.c.
 */
#define LOG_MODULE "setup"

#include "setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fsutil.h"
#include "log.h"
#include "plat.h"

#define SETUP_TREE_DEPTH      16
#define SETUP_STOP_TIMEOUT_MS 120000
#define SETUP_MARK_NAME       "upgrade-in-progress"
#define SETUP_MARK_MAX_AGE    1800 /* s: an older mark is from an upgrade that failed */

/* s as a YAML single-quoted scalar (quotes doubled) appended to out; 0 or -1 if it is full. */
static int yaml_quote(const char *s, char *out, size_t cap)
{
    size_t n = strlen(out);
    if (n + 1 >= cap)
        return -1;
    out[n++] = '\'';
    for (; *s; s++) {
        if (n + 3 >= cap)
            return -1;
        if (*s == '\'')
            out[n++] = '\'';
        out[n++] = *s;
    }
    if (n + 2 > cap)
        return -1;
    out[n++] = '\'';
    out[n] = '\0';
    return 0;
}

char *setup_default_config(const char *install_dir, int port)
{
    char log_path[CFG_PATH_MAX];
    char quoted[2 * CFG_PATH_MAX + 3] = "";
    char *text = NULL;
    size_t cap;

    if (fs_join(install_dir, "agent.log", log_path, sizeof(log_path), NULL) < 0 ||
        yaml_quote(log_path, quoted, sizeof(quoted)) < 0)
        return NULL;
    cap = strlen(quoted) + 1024;
    text = malloc(cap);
    if (!text)
        return NULL;
    snprintf(text, cap,
             "# config.yaml - the Kasm open agent's configuration (docs/config.md).\n"
             "# Written by the installer because none existed; upgrades and repairs keep it.\n"
             "# Registration (the installer's API_HOST/REGISTRATION_TOKEN properties, or\n"
             "# agent.exe /S --register-host ...) adds the deployment's settings and tokens.\n"
             "port: %d\n"
             "log_file: %s\n",
             port > 0 ? port : 4902, quoted);
    return text;
}

/* A config without registration: the default text; an existing one: kept, its port set. */
static int ensure_config(const struct setup_request *r, const char *dir, struct err *e)
{
    struct plat_file_info fi;
    struct cfg c;
    char *text = NULL;
    int rc;

    memset(&c, 0, sizeof(c));
    rc = plat_path_stat(r->cfg_path, &fi, e);
    if (rc < 0 && rc != ERR_NOT_FOUND) {
        err_prefix(e, "cannot tell whether the config exists (it is never overwritten)");
        goto out;
    }
    if (rc == ERR_NOT_FOUND) {
        err_clear(e);
        if (!(text = setup_default_config(dir, r->port))) {
            rc = err_set(e, ERR_NOMEM,
                         "cannot make the default config (out of memory or the "
                         "install folder's path is too long)");
            goto out;
        }
        if ((rc = fs_write_atomic(r->cfg_path, text, strlen(text), FS_WRITE_PRIVATE, e)) < 0) {
            err_prefix(e, "cannot write the default config");
            goto out;
        }
        log_info("wrote the default config %s (port %d)", r->cfg_path,
                 r->port > 0 ? r->port : 4902);
        rc = 0;
        goto out;
    }
    log_info("kept the existing config %s", r->cfg_path);
    if (r->port <= 0) {
        rc = 0;
        goto out;
    }
    if ((rc = cfg_load(&c, r->cfg_path, e)) < 0) {
        err_prefix(e, "cannot set the port");
        goto out;
    }
    if (c.port != r->port) {
        c.port = r->port;
        if ((rc = cfg_save(&c, NULL, e)) < 0) {
            err_prefix(e, "cannot set the port");
            goto out;
        }
        log_info("set port %d in %s", r->port, r->cfg_path);
    }
    rc = 0;
out:
    free(text);
    cfg_free(&c);
    return rc;
}

static int mark_path(const struct setup_request *r, char *out, size_t cap, struct err *e)
{
    char dir[CFG_PATH_MAX];
    int rc = fs_dirname(r->cfg_path, dir, sizeof(dir), e);
    return rc < 0 ? rc : fs_join(dir, SETUP_MARK_NAME, out, cap, e);
}

int setup_mark_upgrade(const struct setup_request *r, struct err *e)
{
    char path[CFG_PATH_MAX];
    static const char text[] = "a newer version is being installed; the uninstall of this one "
                               "keeps the configuration and the data\n";
    int rc;

    if ((rc = mark_path(r, path, sizeof(path), e)) < 0 ||
        (rc = fs_write_atomic(path, text, sizeof(text) - 1, 0, e)) < 0)
        return rc;
    log_info("marked %s: the removal of this version is part of an upgrade", path);
    return setup_stop_service(r, e);
}

int setup_stop_service(const struct setup_request *r, struct err *e)
{
    return setup_plat_wait_stopped(r->service_name, SETUP_STOP_TIMEOUT_MS, e);
}

/* 1 when a fresh upgrade mark is there (see setup_mark_upgrade), else 0. */
static int upgrade_marked(const struct setup_request *r)
{
    char path[CFG_PATH_MAX];
    struct plat_file_info fi;
    int64_t now = plat_wall_time();

    if (mark_path(r, path, sizeof(path), NULL) < 0 || plat_path_stat(path, &fi, NULL) < 0)
        return 0;
    return fi.mtime <= now + 60 && now - fi.mtime < SETUP_MARK_MAX_AGE;
}

int setup_install(const struct setup_request *r, struct err *e)
{
    char dir[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    static const char *const dirs[] = {"certs", "scripts"};
    struct cfg c;
    int rc, port;

    memset(&c, 0, sizeof(c));
    if ((rc = fs_dirname(r->cfg_path, dir, sizeof(dir), e)) < 0 ||
        (rc = plat_dir_create_all(dir, e)) < 0)
        goto out;
    for (size_t k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++) {
        if ((rc = fs_join(dir, dirs[k], sub, sizeof(sub), e)) < 0 ||
            (rc = plat_dir_create_all(sub, e)) < 0)
            goto out;
    }
    if ((rc = ensure_config(r, dir, e)) < 0)
        goto out;
    if (mark_path(r, sub, sizeof(sub), NULL) == 0)
        plat_path_remove(sub, NULL); /* the upgrade got this far */
    /* The firewall rule follows the port the agent will listen on. */
    port = r->port;
    if (port <= 0) {
        port = 4902;
        if (cfg_load(&c, r->cfg_path, NULL) == 0)
            port = c.port;
    }
    rc = setup_plat_harden(dir, r->cfg_path, r->service_name, port, e);
out:
    cfg_free(&c);
    return rc;
}

/* Removes path and, for a folder, what it holds; links are removed, never followed. */
static int remove_tree(const char *path, int depth, struct err *e)
{
    struct plat_file_info fi;
    struct plat_dir *d = NULL;
    struct plat_dir_entry *ent = NULL;
    char child[CFG_PATH_MAX];
    int rc;

    if ((rc = plat_path_stat(path, &fi, e)) < 0) {
        if (rc == ERR_NOT_FOUND) {
            err_clear(e);
            rc = 0;
        }
        goto out;
    }
    if (!fi.is_dir || fi.is_link) {
        rc = fi.is_dir ? plat_dir_remove(path, e) : plat_path_remove(path, e);
        goto out;
    }
    if (depth >= SETUP_TREE_DEPTH) {
        rc = err_set(e, ERR_TOO_LARGE, "%s is nested deeper than %d folders; remove it by hand",
                     path, SETUP_TREE_DEPTH);
        goto out;
    }
    if (!(ent = malloc(sizeof(*ent)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory removing %s", path);
        goto out;
    }
    if ((rc = plat_dir_open(path, &d, e)) < 0)
        goto out;
    while ((rc = plat_dir_next(d, ent, e)) == 1) {
        if ((rc = fs_join(path, ent->name, child, sizeof(child), e)) < 0 ||
            (rc = remove_tree(child, depth + 1, e)) < 0)
            goto out;
    }
    if (rc < 0)
        goto out;
    plat_dir_close(d);
    d = NULL;
    rc = plat_dir_remove(path, e);
out:
    plat_dir_close(d);
    free(ent);
    return rc;
}

/* Only names the agent itself writes beside agent.exe: INSTALLDIR may be any folder. */
static int agent_owned(const char *name)
{
    static const char *const exact[] = {"config.yaml", "pending_registration.json", "certs",
                                        "Upload", "Download"};
    static const char *const prefix[] = {"agent.log", "config.yaml.tmp-",
                                         "pending_registration.json.tmp-"};
    for (size_t k = 0; k < sizeof(exact) / sizeof(exact[0]); k++)
        if (strcmp(name, exact[k]) == 0)
            return 1;
    for (size_t k = 0; k < sizeof(prefix) / sizeof(prefix[0]); k++)
        if (strncmp(name, prefix[k], strlen(prefix[k])) == 0)
            return 1;
    return 0;
}

/* Keeps the first failure in e, logs every one. */
static void note_failure(struct err *one, struct err *e, int *failed)
{
    log_warning("%s", one->msg);
    if (!*failed)
        err_set(e, one->code, "%s", one->msg);
    *failed = 1;
    err_clear(one);
}

int setup_uninstall(const struct setup_request *r, struct err *e)
{
    char dir[CFG_PATH_MAX], path[CFG_PATH_MAX];
    struct plat_dir *d = NULL;
    struct plat_dir_entry *ent = NULL;
    struct err one = ERR_INIT;
    int rc, failed = 0;

    if ((rc = setup_plat_wait_stopped(r->service_name, SETUP_STOP_TIMEOUT_MS, e)) < 0 ||
        r->keep_data)
        goto out;
    if (upgrade_marked(r)) {
        log_info("an upgrade is in progress: the configuration, certificates and data stay");
        goto out;
    }
    setup_plat_unharden(r->service_name);
    if ((rc = fs_dirname(r->cfg_path, dir, sizeof(dir), e)) < 0)
        goto out;
    if (!(ent = malloc(sizeof(*ent)))) {
        rc = err_set(e, ERR_NOMEM, "out of memory cleaning %s", dir);
        goto out;
    }
    if ((rc = plat_dir_open(dir, &d, e)) < 0) {
        if (rc == ERR_NOT_FOUND) {
            err_clear(e);
            rc = 0;
        }
        goto out;
    }
    while ((rc = plat_dir_next(d, ent, &one)) == 1) {
        if (!agent_owned(ent->name))
            continue;
        if (fs_join(dir, ent->name, path, sizeof(path), &one) < 0 || remove_tree(path, 0, &one) < 0)
            note_failure(&one, e, &failed);
        else
            log_info("removed %s", path);
    }
    if (rc < 0)
        note_failure(&one, e, &failed);
    /* scripts\ with the administrator's scripts; its folders belong to the package, which
     * removes them too (Wine's RemoveFolders leaves scripts\ itself). */
    if (fs_join(dir, "scripts", path, sizeof(path), &one) < 0 || remove_tree(path, 0, &one) < 0)
        note_failure(&one, e, &failed);
    /* Empty now where the installer has removed its files first (Wine runs this last). */
    if (!failed && plat_dir_remove(dir, NULL) == 0)
        log_info("removed %s", dir);
    rc = failed ? e->code : 0;
out:
    plat_dir_close(d);
    free(ent);
    return rc;
}
