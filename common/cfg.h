/*
 * cfg.h - config.yaml: load, validate and save the agent's configuration.
 *
 * Every key of Kasm's own agent is here, typed and defaulted (docs/config.md lists them);
 * keys of ours are optional. Keys the agent does not know are kept and written back on save,
 * so a file written by Kasm's agent or a newer version survives a round trip. Saving is atomic
 * (fsutil.h). Errors name the file, line and column ("config.yaml:4:7: port: expected an
 * integer from 0 to 65535, got 'abc'").
 */
#ifndef KASM_CFG_H
#define KASM_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CFG_PATH_MAX      1024
#define CFG_MAX_API_HOSTS 8
#define CFG_MAX_FILE_SIZE (1024 * 1024) /* larger files are refused (ERR_TOO_LARGE) */
#define CFG_MAX_SCALAR    (64 * 1024)   /* longest single value or key */
#define CFG_MAX_DEPTH     32            /* deepest nesting kept in an unknown key's value */

struct cfg_unknown; /* keys we do not know, kept verbatim for save; owned by struct cfg */

struct cfg {
    /* --- Kasm agent keys (KASM_INTERFACE.md section 3) --- */
    int ssl;                               /* ssl: true */
    int port;                              /* port: 4902 */
    char server_private_key[CFG_PATH_MAX]; /* TLS key PEM path */
    char server_public_key[CFG_PATH_MAX];  /* TLS certificate PEM path */
    char jwt_public_key[CFG_PATH_MAX];     /* deployment's JWT verification key PEM path */
    char upload_dir[CFG_PATH_MAX];
    char download_dir[CFG_PATH_MAX];
    char log_file[CFG_PATH_MAX];           /* "" = no log file */
    int multi_user;                        /* false */
    int user_sso;                          /* false */
    char api_host[CFG_MAX_API_HOSTS][256]; /* one or more hosts (YAML list or comma list) */
    size_t api_host_count;
    int api_host_seq; /* it was a YAML sequence: saved as one again */
    int api_port;     /* 443 */
    int registered;   /* false */
    char script_path[CFG_PATH_MAX];
    char server_id[128];
    int debug;             /* false */
    char *agent_jwt_token; /* heap, NULL when absent; a secret */

    /* --- keys of ours (optional, documented in docs/config.md) --- */
    char listen_address[64];         /* "" = all addresses */
    int heartbeat_interval;          /* seconds, 30 */
    int api_verify_cert;             /* false */
    char api_ca_file[CFG_PATH_MAX];  /* "" = system store */
    int jwt_leeway;                  /* seconds of clock skew allowed, 60 */
    char admin_socket[CFG_PATH_MAX]; /* POSIX admin socket path */
    /* HTTPS API limits (docs/config.md, "Keys of this agent") */
    int max_request_header_bytes; /* request line + headers, 16384 */
    int max_json_body_bytes;      /* JSON request bodies, 1 MiB */
    int request_timeout_ms;       /* a request must arrive within this, 30000 */
    int max_concurrent_uploads;   /* /upload requests served at once, 8 */
    int num_threads;              /* HTTP worker threads (connections served at once), 16 */
    int screenshot_cache_seconds; /* /screenshot PNGs served again while younger; 10, 0 = off */
    /* session helpers (service/session/) */
    char session_helper[CFG_PATH_MAX]; /* session_helper(.exe) path; "" = beside the agent */
    char sessions_file[CFG_PATH_MAX];  /* POSIX declared sessions; "" = logind */
    /* scripts (service/scripts/) */
    int script_timeout; /* seconds one script may run before its process tree is killed, 300 */
    /* session orchestration (service/orch/) */
    int logoff_on_session_end; /* session_end logs the user off (Windows), false */
    /* the log shipper (service/deploy/logship.c) */
    char log_forward_level[16]; /* "off", "debug", "info" (default), "warning", ... */

    /* --- bookkeeping --- */
    char path[CFG_PATH_MAX]; /* file it was loaded from / will be saved to */
    struct cfg_unknown *unknown;
};

/*
 * Fills every field with its default (paths under base_dir, e.g. the install dir; NULL or ""
 * means "."). c may hold garbage: nothing is freed (cfg_free first when reusing a loaded c).
 */
void cfg_defaults(struct cfg *c, const char *base_dir);
/*
 * Loads path over the defaults (cfg_defaults with the file's directory, then the file). c is
 * overwritten like cfg_defaults does; cfg_free(c) is safe afterwards whether it failed or not.
 */
int cfg_load(struct cfg *c, const char *path, struct err *e);
/*
 * Parses YAML from memory over the current values of c (which must be initialised by
 * cfg_defaults or a load); name is used in error messages. Keys present replace values, the
 * unknown keys are replaced by the buffer's. On failure c is left unchanged.
 */
int cfg_load_buffer(struct cfg *c, const char *name, const char *yaml, size_t len, struct err *e);
/* Writes c to path (c->path when path is NULL) atomically, unknown keys kept. */
int cfg_save(const struct cfg *c, const char *path, struct err *e);
/*
 * The keys the agent itself writes while it runs (the token lifecycle, registration): a save
 * of the agent's own changes names the ones it changed (cfg_save_keys).
 */
enum cfg_own {
    CFG_OWN_TOKEN = 1u << 0,      /* agent_jwt_token: check-in, refresh, exchange, registration */
    CFG_OWN_SERVER_ID = 1u << 1,  /* server_id: from the claims of a check-in's token */
    CFG_OWN_MULTI_USER = 1u << 2, /* multi_user: the deployment's flag (check-in) */
    CFG_OWN_USER_SSO = 1u << 3,   /* user_sso: the deployment's flag (check-in) */
    CFG_OWN_REGISTERED = 1u << 4, /* registered: registration */
    CFG_OWN_API_HOST = 1u << 5,   /* api_host: registration with a host */
    CFG_OWN_API_PORT = 1u << 6,   /* api_port: registration with a host */
    /* registration writes the PEM files it receives at these paths: the file names them */
    CFG_OWN_SERVER_PRIVATE_KEY = 1u << 7,
    CFG_OWN_SERVER_PUBLIC_KEY = 1u << 8,
    CFG_OWN_JWT_PUBLIC_KEY = 1u << 9,
};
#define CFG_OWN_CHECKIN (CFG_OWN_TOKEN | CFG_OWN_SERVER_ID | CFG_OWN_MULTI_USER | CFG_OWN_USER_SSO)
#define CFG_OWN_PEMS                                                                               \
    (CFG_OWN_SERVER_PRIVATE_KEY | CFG_OWN_SERVER_PUBLIC_KEY | CFG_OWN_JWT_PUBLIC_KEY)
/* a registration with a token found by the running agent (registration_token.txt) */
#define CFG_OWN_REREGISTER (CFG_OWN_CHECKIN | CFG_OWN_REGISTERED | CFG_OWN_PEMS)
/* a registration with a given host (the command line, agentctl register, a queued one) */
#define CFG_OWN_REGISTER (CFG_OWN_REREGISTER | CFG_OWN_API_HOST | CFG_OWN_API_PORT)
/*
 * Merge-on-save: reads path (c->path when NULL) as it is now and writes it back atomically
 * with only the keys in `keys` (enum cfg_own) set to c's values; every other key keeps the
 * file's value, so an administrator's edit made since c was loaded survives. The file's
 * comments, key order and line breaks (CRLF too) are kept when the keys can be edited in
 * place (replaced where they are, missing ones appended); else the file is written whole
 * from its own values plus ours (comments then lost). A missing file is written whole from c
 * (cfg_save). A file that does not load (or cannot be read) is left untouched and its error
 * returned ("PATH no longer loads, so the agent's new values (agent_jwt_token) are not saved
 * and the file is left as it is: PATH:4:7: ...").
 */
int cfg_save_keys(const struct cfg *c, const char *path, unsigned keys, struct err *e);
/*
 * The pure part of cfg_save_keys: merges c's `keys` into the file text old (name for
 * messages); *out is heap (it holds the token: wipe, then free()). *in_place (may be NULL):
 * 1 edited in place, 0 written whole. Fails, *out NULL, when old does not load.
 */
int cfg_merge_text(const struct cfg *c, unsigned keys, const char *name, const char *old,
                   size_t old_len, char **out, size_t *out_len, int *in_place, struct err *e);
/* "agent_jwt_token, multi_user" for the keys in `keys` (messages). */
void cfg_own_names(unsigned keys, char *out, size_t cap);
/* Renders the YAML that cfg_save would write (heap; it holds the token: wipe, then free()). */
int cfg_render(const struct cfg *c, char **out, size_t *len, struct err *e);
/* Sets the agent token (copied); NULL clears it. The old value is wiped before freeing. */
int cfg_set_agent_token(struct cfg *c, const char *token, struct err *e);
/* Unknown top-level keys kept for save, in file order (text of the i-th key, NULL past the end). */
size_t cfg_unknown_count(const struct cfg *c);
const char *cfg_unknown_key(const struct cfg *c, size_t i);
/*
 * 1 when a and b hold the same configuration: every key, the token, and the unknown keys in the
 * same order with the same meaning (text, tags, quoted vs plain; not layout). path is ignored.
 */
int cfg_equal(const struct cfg *a, const struct cfg *b);
/* Frees heap members (the token is wiped first); c can be loaded again afterwards. */
void cfg_free(struct cfg *c);

#endif
