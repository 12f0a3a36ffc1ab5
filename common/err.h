/*
 * err.h - the one error convention of the code base.
 *
 * Every fallible function returns an int: 0 on success, a negative ERR_* code on failure.
 * It also takes a `struct err *` (which may be NULL) and, on failure, fills it with the
 * code and a sentence a person can act on ("cannot open C:\...\config.yaml: access denied;
 * run as Administrator"). Callers that add context use err_prefix() so the final message
 * reads from the outside in: "loading config: line 4, column 3: port: expected an integer".
 *
 *     struct err e = ERR_INIT;
 *     if (cfg_load(&cfg, path, &e) < 0) {
 *         log_error("%s", e.msg);
 *         ...
 *     }
 */
#ifndef KASM_ERR_H
#define KASM_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum err_code {
    ERR_OK = 0,
    ERR_INVALID = -1,     /* bad argument or input that can never succeed as given */
    ERR_NOMEM = -2,       /* allocation failed */
    ERR_IO = -3,          /* read/write/OS failure */
    ERR_NOT_FOUND = -4,   /* file, key, user or route does not exist */
    ERR_EXISTS = -5,      /* something is already there */
    ERR_PERMISSION = -6,  /* access denied, or an unsafe owner/ACL */
    ERR_UNSUPPORTED = -7, /* not supported on this platform or build */
    ERR_PARSE = -8,       /* malformed YAML, JSON, base64, PEM, ... */
    ERR_AUTH = -9,        /* signature, algorithm or claims rejected */
    ERR_EXPIRED = -10,    /* a token or certificate is past its validity */
    ERR_NO_SPACE = -11,   /* disk full or quota exceeded */
    ERR_TIMEOUT = -12,    /* an operation took too long */
    ERR_NETWORK = -13,    /* resolution, connection or TLS failure */
    ERR_PROTOCOL = -14,   /* a peer spoke something we do not understand */
    ERR_TOO_LARGE = -15,  /* an input exceeds a configured limit */
    ERR_BUSY = -16,       /* a resource is in use; try again later */
    ERR_CANCELLED = -17,  /* stopped on request (shutdown) */
    ERR_INTERNAL = -18,   /* a bug: an invariant did not hold */
};

#define ERR_MSG_MAX 512

struct err {
    int code;              /* 0 or a negative enum err_code */
    char msg[ERR_MSG_MAX]; /* NUL-terminated, never contains secrets */
};

#define ERR_INIT                                                                                   \
    {                                                                                              \
        0,                                                                                         \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* printf-style checking; mingw builds use the C99 printf (__USE_MINGW_ANSI_STDIO=1). */
#if defined(__MINGW32__)
#define ERR_PRINTF_ARCHETYPE gnu_printf
#else
#define ERR_PRINTF_ARCHETYPE printf
#endif

/* Clears e (if not NULL). */
void err_clear(struct err *e);

/*
 * Sets e->code = code and e->msg from the format. Returns code, so that
 * `return err_set(e, ERR_IO, "cannot open %s", path);` is the idiom.
 * e may be NULL (the error is then only returned).
 */
int err_set(struct err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 3, 4)))
#endif
    ;
int err_setv(struct err *e, int code, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 3, 0)))
#endif
    ;

/*
 * Prepends context: "ctx: <old message>". Returns e->code (or ERR_INTERNAL when e is
 * NULL or holds no error), so `return err_prefix(e, "loading %s", path);` works.
 */
int err_prefix(struct err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

/* A stable lower-case name for a code ("io", "permission", ...), for logs and JSON. */
const char *err_code_name(int code);

#endif
