/*
 * posix/adm_doctor_plat.c - the POSIX parts of `agentctl doctor` (adm_doctor_plat.h): file
 * modes and owners (lstat: a symbolic link is reported, not followed), and the firewall check,
 * which does not apply here.
 */
#include "adm_doctor_plat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plat.h"

/* The owners we trust: root and the agent's own user (tests run the agent unprivileged). */
static int admd_trusted_uid(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

static int admd_lstat(const char *path, struct stat *st, struct err *e)
{
    if (lstat(path, st) != 0) {
        int code = plat_err_from_os(errno);
        return err_set(e, code, "%s: %s", path,
                       code == ERR_NOT_FOUND ? "missing" : strerror(errno));
    }
    return 0;
}

static void admd_chown_cmd(char *out, size_t cap)
{
    if (geteuid() == 0)
        snprintf(out, cap, "chown root:root");
    else
        snprintf(out, cap, "chown %lu", (unsigned long)geteuid());
}

int admd_plat_private(const char *path, char *why, size_t why_cap, char *fix, size_t fix_cap,
                      struct err *e)
{
    struct stat st;
    char chown_cmd[64];
    int rc;

    if ((rc = admd_lstat(path, &st, e)) < 0)
        return rc;
    admd_chown_cmd(chown_cmd, sizeof(chown_cmd));
    if (S_ISLNK(st.st_mode)) {
        snprintf(why, why_cap,
                 "it is a symbolic link (whoever controls the target controls the "
                 "key)");
        snprintf(fix, fix_cap, "replace the link %s by the key file itself, mode 0600", path);
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_cap, "it is not a regular file");
        snprintf(fix, fix_cap, "put the PEM key file at %s", path);
        return 1;
    }
    if (!admd_trusted_uid(st.st_uid)) {
        snprintf(why, why_cap, "it belongs to uid %lu, who can read and change it",
                 (unsigned long)st.st_uid);
        snprintf(fix, fix_cap, "%s '%s' && chmod 600 '%s'", chown_cmd, path, path);
        return 1;
    }
    if (st.st_mode & 077) {
        snprintf(why, why_cap, "mode %04o: %s can %s it", (unsigned)(st.st_mode & 07777),
                 (st.st_mode & 007) ? "every user" : "its group",
                 (st.st_mode & 022) ? "read or change" : "read");
        snprintf(fix, fix_cap, "chmod 600 '%s'", path);
        return 1;
    }
    snprintf(why, why_cap, "mode %04o, owner uid %lu", (unsigned)(st.st_mode & 07777),
             (unsigned long)st.st_uid);
    fix[0] = '\0';
    return 0;
}

int admd_plat_admin_write_only(const char *path, char *why, size_t why_cap, char *fix,
                               size_t fix_cap, struct err *e)
{
    struct stat st;
    char chown_cmd[64];
    int rc;

    if ((rc = admd_lstat(path, &st, e)) < 0)
        return rc;
    admd_chown_cmd(chown_cmd, sizeof(chown_cmd));
    if (S_ISLNK(st.st_mode) && stat(path, &st) != 0)
        return err_set(e, plat_err_from_os(errno), "%s: a dangling link", path);
    if (!admd_trusted_uid(st.st_uid)) {
        snprintf(why, why_cap, "it belongs to uid %lu", (unsigned long)st.st_uid);
        snprintf(fix, fix_cap, "%s '%s' && chmod go-w '%s'", chown_cmd, path, path);
        return 1;
    }
    if (st.st_mode & 022) {
        snprintf(why, why_cap, "mode %04o: %s can write it", (unsigned)(st.st_mode & 07777),
                 (st.st_mode & 002) ? "every user" : "its group");
        snprintf(fix, fix_cap, "chmod go-w '%s'", path);
        return 1;
    }
    fix[0] = '\0';
    snprintf(why, why_cap, "mode %04o", (unsigned)(st.st_mode & 07777));
    return 0;
}

void admd_plat_firewall(int port, struct admd_check *c)
{
    c->verdict = ADMD_SKIPPED;
    snprintf(c->detail, sizeof(c->detail),
             "not applicable on this platform: the agent does not manage a host firewall here "
             "(inbound TCP %d must be open to the Kasm deployment)",
             port);
    c->fix[0] = '\0';
}
