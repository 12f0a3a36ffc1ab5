/*
 * sess_user.c (POSIX) - another user's process (sess_user.h): the account lookup before
 * fork(), the credential switch in the child, and the login environment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sess_user.h"

extern char **environ;

const char *sess_stage_name(int stage)
{
    switch (stage) {
    case SESS_STAGE_GROUPS:
        return "setting the user's groups";
    case SESS_STAGE_SETGID:
        return "setgid to the user's group";
    case SESS_STAGE_SETUID:
        return "setuid to the user";
    case SESS_STAGE_REGAIN:
        return "checking that root cannot be regained";
    case SESS_STAGE_CHANNEL:
        return "passing the channel";
    default:
        return "starting the program";
    }
}

int sess_user_lookup(const char *name, const char *what, struct sess_user *u, struct err *e)
{
    struct passwd pw, *pwp = NULL;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t bl = sz > 0 ? (size_t)sz : 16384;
    char *buf = malloc(bl);
    int gr, rc = 0;

    memset(u, 0, sizeof(*u));
    if (!buf)
        return err_set(e, ERR_NOMEM, "out of memory");
    gr = getpwnam_r(name, &pw, buf, bl, &pwp);
    if (gr != 0 || !pwp) {
        rc = err_set(e, ERR_NOT_FOUND, "user %s (%s) does not exist here%s%s", name, what,
                     gr ? ": " : "", gr ? strerror(gr) : "");
        goto out;
    }
    if (geteuid() != 0 && pw.pw_uid != geteuid()) {
        /* A process of ours would act for another user with our files. */
        rc = err_set(e, ERR_PERMISSION,
                     "cannot start %s as user %s: the agent does not run as root (only as root "
                     "can it start processes as other users)",
                     what, name);
        goto out;
    }
    snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
    snprintf(u->home, sizeof(u->home), "%s", pw.pw_dir ? pw.pw_dir : "/");
    snprintf(u->shell, sizeof(u->shell), "%s",
             pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh");
    u->uid = pw.pw_uid;
    u->gid = pw.pw_gid;
    u->switch_user = geteuid() == 0 && pw.pw_uid != 0;
    if (u->switch_user) {
        u->ngroups = SESS_USER_MAX_GROUPS;
        if (getgrouplist(pw.pw_name, pw.pw_gid, u->groups, &u->ngroups) < 0) {
            rc = err_set(e, ERR_TOO_LARGE, "user %s is in more than %d groups", name,
                         SESS_USER_MAX_GROUPS);
            goto out;
        }
    }
out:
    free(buf);
    return rc;
}

int sess_user_become(const struct sess_user *u, int chdir_home)
{
    if (!u->switch_user)
        return 0;
    if (setgroups((size_t)u->ngroups, u->groups) != 0)
        return SESS_STAGE_GROUPS;
    if (setgid(u->gid) != 0)
        return SESS_STAGE_SETGID;
    if (setuid(u->uid) != 0)
        return SESS_STAGE_SETUID;
    if (setuid(0) != -1) {
        errno = EPERM;
        return SESS_STAGE_REGAIN;
    }
    if (chdir_home && chdir(u->home) != 0 && chdir("/") != 0)
        return SESS_STAGE_EXEC;
    return 0;
}

int sess_env_add(struct sess_env *env, const char *key, const char *val)
{
    size_t kl = strlen(key), need = kl + strlen(val) + 2;
    char *s = malloc(need);
    int i;

    if (!s)
        return ERR_NOMEM;
    snprintf(s, need, "%s=%s", key, val);
    for (i = 0; i < env->n; i++) /* replace */
        if (strncmp(env->v[i], key, kl) == 0 && env->v[i][kl] == '=') {
            free(env->v[i]);
            env->v[i] = s;
            return 0;
        }
    if (env->n >= SESS_ENV_MAX) {
        free(s);
        return ERR_TOO_LARGE;
    }
    env->v[env->n++] = s;
    env->v[env->n] = NULL;
    return 0;
}

void sess_env_free(struct sess_env *env)
{
    for (int i = 0; i < env->n; i++) {
        memset(env->v[i], 0, strlen(env->v[i])); /* values may be tokens */
        free(env->v[i]);
    }
    env->n = 0;
    env->v[0] = NULL;
}

/* Variables passed through from the service's environment to a process of another user. */
static int sess_env_passed(const char *kv)
{
    static const char *const keep[] = {"LANG=",         "LC_ALL=",        "TZ=",           "KASM_",
                                       "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", NULL};
    for (int i = 0; keep[i]; i++)
        if (strncmp(kv, keep[i], strlen(keep[i])) == 0)
            return 1;
    return 0;
}

/* Copies the service's environment into env (only_passed: just what sess_env_passed keeps);
 * a variable already in env is replaced. */
static int sess_env_copy(struct sess_env *env, int only_passed)
{
    for (char **ev = environ; ev && *ev; ev++) {
        char *eq = strchr(*ev, '=');
        char key[256];
        int rc;
        if ((only_passed && !sess_env_passed(*ev)) || !eq || (size_t)(eq - *ev) >= sizeof(key))
            continue;
        memcpy(key, *ev, (size_t)(eq - *ev));
        key[eq - *ev] = '\0';
        if ((rc = sess_env_add(env, key, eq + 1)) < 0)
            return rc;
    }
    return 0;
}

int sess_env_base(struct sess_env *env, const struct sess_user *u)
{
    int rc;
    if (!u->switch_user)
        return sess_env_copy(env, 0);
    if ((rc = sess_env_add(env, "PATH", "/usr/local/bin:/usr/bin:/bin")) < 0 ||
        (rc = sess_env_add(env, "HOME", u->home)) < 0 ||
        (rc = sess_env_add(env, "USER", u->name)) < 0 ||
        (rc = sess_env_add(env, "LOGNAME", u->name)) < 0 ||
        (rc = sess_env_add(env, "SHELL", u->shell)) < 0)
        return rc;
    return sess_env_copy(env, 1);
}
