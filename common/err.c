/*
 * err.c - filling and naming struct err (see err.h for the convention).
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

void err_clear(struct err *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = '\0';
    }
}

int err_setv(struct err *e, int code, const char *fmt, va_list ap)
{
    if (!e)
        return code;
    e->code = code;
    if (vsnprintf(e->msg, sizeof(e->msg), fmt, ap) < 0)
        snprintf(e->msg, sizeof(e->msg), "%s error", err_code_name(code));
    return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
    char ctx[ERR_MSG_MAX];
    char old[ERR_MSG_MAX];
    va_list ap;

    if (!e || e->code == 0)
        return ERR_INTERNAL;
    va_start(ap, fmt);
    if (vsnprintf(ctx, sizeof(ctx), fmt, ap) < 0)
        ctx[0] = '\0';
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* ctx + ": " + old, cut at the buffer's end (no snprintf: the cut is intended). */
    size_t n = strlen(ctx);
    if (n > sizeof(e->msg) - 1)
        n = sizeof(e->msg) - 1;
    memcpy(e->msg, ctx, n);
    for (const char *p = ": "; *p && n < sizeof(e->msg) - 1; p++)
        e->msg[n++] = *p;
    size_t rest = strlen(old);
    if (rest > sizeof(e->msg) - 1 - n)
        rest = sizeof(e->msg) - 1 - n;
    memcpy(e->msg + n, old, rest);
    e->msg[n + rest] = '\0';
    return e->code;
}

const char *err_code_name(int code)
{
    switch (code) {
    case ERR_OK:
        return "ok";
    case ERR_INVALID:
        return "invalid";
    case ERR_NOMEM:
        return "out of memory";
    case ERR_IO:
        return "io";
    case ERR_NOT_FOUND:
        return "not found";
    case ERR_EXISTS:
        return "exists";
    case ERR_PERMISSION:
        return "permission";
    case ERR_UNSUPPORTED:
        return "unsupported";
    case ERR_PARSE:
        return "parse";
    case ERR_AUTH:
        return "auth";
    case ERR_EXPIRED:
        return "expired";
    case ERR_NO_SPACE:
        return "no space";
    case ERR_TIMEOUT:
        return "timeout";
    case ERR_NETWORK:
        return "network";
    case ERR_PROTOCOL:
        return "protocol";
    case ERR_TOO_LARGE:
        return "too large";
    case ERR_BUSY:
        return "busy";
    case ERR_CANCELLED:
        return "cancelled";
    case ERR_INTERNAL:
        return "internal";
    default:
        return "unknown";
    }
}
