/*
 * posix/sess_user.h - starting a process as another user on POSIX, shared by the session
 * helper spawner (sess_spawn.c) and the script runner (service/scripts/posix/scr_plat.c,
 * storage hooks run as the session's user): the account's ids, groups and login environment
 * are read before fork(); the child only makes system calls (sess_user_become).
 */
#ifndef KASM_SESS_USER_H
#define KASM_SESS_USER_H

#include <sys/types.h>

#include "err.h"

#define SESS_USER_MAX_GROUPS 256
#define SESS_ENV_MAX         64

struct sess_user {
    char name[256];
    char home[1024];
    char shell[256];
    uid_t uid;
    gid_t gid;
    gid_t groups[SESS_USER_MAX_GROUPS];
    int ngroups;
    int switch_user; /* 1: we are root and the user is not: the child must become the user */
};

/* What failed in the child (sess_user_become), for the parent's message. */
enum sess_user_stage {
    SESS_STAGE_GROUPS = 1,
    SESS_STAGE_SETGID,
    SESS_STAGE_SETUID,
    SESS_STAGE_REGAIN,
    SESS_STAGE_CHANNEL,
    SESS_STAGE_EXEC,
};
const char *sess_stage_name(int stage);

/*
 * Reads the account `name` for a process started for `what` ("a helper for session 3",
 * "map_storage.sh"). ERR_NOT_FOUND when there is no such user; ERR_PERMISSION when the agent
 * does not run as root and the user is not the agent's own (only root can start processes
 * as other users).
 */
int sess_user_lookup(const char *name, const char *what, struct sess_user *u, struct err *e);

/*
 * The child, after fork(), when u->switch_user: the user's groups, gid and uid (checked:
 * getting root back must fail), then the home folder as working directory when chdir_home.
 * Async-signal-safe. 0, or the failing stage (errno set).
 */
int sess_user_become(const struct sess_user *u, int chdir_home);

/* An environment being built (heap strings, NULL-terminated v). */
struct sess_env {
    char *v[SESS_ENV_MAX + 1];
    int n;
};
/* Sets key=val (replacing key). ERR_TOO_LARGE, ERR_NOMEM. */
int sess_env_add(struct sess_env *env, const char *key, const char *val);
/*
 * The base environment of a process for u: for another user (u->switch_user) PATH, HOME,
 * USER, LOGNAME, SHELL and the few service variables passed through (LANG, LC_ALL, TZ,
 * KASM_*, the sanitizers' options); for the agent's own user the agent's whole environment.
 */
int sess_env_base(struct sess_env *env, const struct sess_user *u);
void sess_env_free(struct sess_env *env);

#endif
