/*
 * ctl_misc.c - the agentctl commands that need more than one reply: `screenshot` (the PNG follows
 * the reply as DATA frames up to END and is written to a temp file beside --out, renamed into place
 * only when complete) and `logs --follow` (a fresh `logs follow` request every second for the
 * records after the last one seen, until SIGINT or SIGTERM).
 */
#include "ctl_misc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl_exchange.h"
#include "plat.h"

#ifdef _WIN32
#define CTL_PROG "agentctl.exe"
#else
#define CTL_PROG "agentctl"
#endif

#define CTL_MISC_USAGE       2
#define CTL_MISC_UNAVAILABLE 3
#define CTL_MISC_PERMISSION  4
#define CTL_MISC_FAILED      5
#define CTL_SHOT_MAX         (64u * 1024u * 1024u) /* the largest PNG accepted */
#define CTL_SHOT_TIMEOUT_MS  90000u                /* the helper may take a while */
#define CTL_FRAME_TIMEOUT_MS 30000u
#define CTL_FOLLOW_EVERY_MS  1000u
#define CTL_REQ_TIMEOUT_MS   30000u

int ctl_exit_code(int rc)
{
    switch (rc) {
    case ERR_PERMISSION:
        return CTL_MISC_PERMISSION;
    case ERR_NOT_FOUND:
    case ERR_AUTH:
        return CTL_MISC_UNAVAILABLE;
    default:
        return CTL_MISC_FAILED;
    }
}

/* ---- screenshot ---- */

static double ctl_jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Receives DATA frames up to END into f: exactly `bytes` bytes, each frame of request 1. */
static int ctl_shot_receive(struct ctl_conn *c, struct plat_file *f, uint64_t bytes, struct err *e)
{
    uint8_t *buf = malloc(PROTO_DATA_MAX);
    uint64_t got = 0;
    struct proto_header h;
    int rc;

    if (!buf)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (;;) {
        uint64_t deadline = plat_monotonic_ms() + CTL_FRAME_TIMEOUT_MS;
        if ((rc = ctl_read_frame_header(c, deadline, &h, e)) < 0)
            goto out;
        if (h.request_id != 1 || (h.type != PROTO_DATA && h.type != PROTO_END)) {
            rc = err_set(e, ERR_PROTOCOL, "the agent sent a %s frame (request %u) inside the image",
                         proto_type_name(h.type), (unsigned)h.request_id);
            goto out;
        }
        if (h.type == PROTO_END)
            break;
        if (h.length > bytes - got) {
            rc = err_set(e, ERR_PROTOCOL, "the agent sent more than the %llu bytes it announced",
                         (unsigned long long)bytes);
            goto out;
        }
        if ((rc = ctl_read(c, buf, h.length, deadline, e)) < 0 ||
            (rc = plat_file_write_all(f, buf, h.length, e)) < 0)
            goto out;
        got += h.length;
    }
    if (got != bytes) {
        rc = err_set(e, ERR_PROTOCOL, "the image ended after %llu of %llu bytes",
                     (unsigned long long)got, (unsigned long long)bytes);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int ctl_screenshot(const char *endpoint, int debug, int json, long session, long width,
                   const char *out_path)
{
    struct proto_admin_reply rep;
    struct ctl_conn *c = NULL;
    struct plat_file *f = NULL;
    struct err e = ERR_INIT;
    cJSON *args = cJSON_CreateObject(), *res = NULL;
    char *argtext = NULL, tmp[4200];
    double bytes;
    int rc, code = CTL_MISC_FAILED, made = 0;

    memset(&rep, 0, sizeof(rep));
    if (!args) {
        fprintf(stderr, "%s: out of memory\n", CTL_PROG);
        goto out;
    }
    cJSON_AddNumberToObject(args, "session", (double)session);
    if (width)
        cJSON_AddNumberToObject(args, "width", (double)width);
    if (!(argtext = cJSON_PrintUnformatted(args))) {
        fprintf(stderr, "%s: out of memory\n", CTL_PROG);
        goto out;
    }
    if ((rc = ctl_exchange(endpoint, debug, "screenshot", argtext, CTL_SHOT_TIMEOUT_MS, &rep, &c,
                           &e)) < 0) {
        fprintf(stderr, "%s: screenshot: %s\n", CTL_PROG, e.msg);
        code = ctl_exit_code(rc);
        goto out;
    }
    if (rep.status != 0) {
        fprintf(stderr, "%s: %s\n", CTL_PROG, rep.error);
        code = rep.status;
        goto out;
    }
    res = cJSON_Parse(rep.result);
    bytes = res ? ctl_jnum(res, "bytes") : -1;
    if (bytes <= 0 || bytes > CTL_SHOT_MAX) {
        fprintf(stderr, "%s: screenshot: the agent announced %.0f bytes (at most %u accepted)\n",
                CTL_PROG, bytes, CTL_SHOT_MAX);
        goto out;
    }
    /* A temp file beside the target, renamed into place only when the image is complete. */
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.part-%lu", out_path, plat_pid()) >= sizeof(tmp)) {
        fprintf(stderr, "%s: screenshot: the --out path is too long\n", CTL_PROG);
        code = CTL_MISC_USAGE;
        goto out;
    }
    if ((rc = plat_file_open(tmp, PLAT_OPEN_WRITE | PLAT_OPEN_CREATE_NEW, &f, &e)) < 0) {
        fprintf(stderr, "%s: screenshot: cannot write %s: %s\n", CTL_PROG, tmp, e.msg);
        goto out;
    }
    made = 1;
    if ((rc = ctl_shot_receive(c, f, (uint64_t)bytes, &e)) < 0) {
        fprintf(stderr, "%s: screenshot: %s; nothing was written to %s\n", CTL_PROG, e.msg,
                out_path);
        code = CTL_MISC_FAILED;
        goto out;
    }
    plat_file_close(f);
    f = NULL;
    if ((rc = plat_path_replace(tmp, out_path, &e)) < 0) {
        fprintf(stderr, "%s: screenshot: cannot put the image at %s: %s\n", CTL_PROG, out_path,
                e.msg);
        goto out;
    }
    made = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *text;
        if (o) {
            cJSON_AddNumberToObject(o, "session", ctl_jnum(res, "session"));
            cJSON_AddNumberToObject(o, "width", ctl_jnum(res, "width"));
            cJSON_AddNumberToObject(o, "height", ctl_jnum(res, "height"));
            cJSON_AddNumberToObject(o, "bytes", bytes);
            cJSON_AddStringToObject(o, "file", out_path);
        }
        text = o ? cJSON_Print(o) : NULL;
        if (text)
            printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else {
        printf("session %.0f: %.0fx%.0f PNG, %.0f bytes written to %s\n", ctl_jnum(res, "session"),
               ctl_jnum(res, "width"), ctl_jnum(res, "height"), bytes, out_path);
    }
    code = fflush(stdout) == 0 ? 0 : CTL_MISC_FAILED;
out:
    plat_file_close(f);
    if (made)
        plat_path_remove(tmp, NULL);
    ctl_close(c);
    cJSON_Delete(res);
    cJSON_Delete(args);
    cJSON_free(argtext);
    proto_admin_reply_clear(&rep);
    return code;
}

/* ---- logs --follow ---- */

static volatile sig_atomic_t ctl_stop;

static void ctl_on_signal(int sig)
{
    (void)sig;
    ctl_stop = 1;
}

static void ctl_print_record(const cJSON *x, int json)
{
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(x, "time_text");
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(x, "level");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(x, "module");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(x, "message");

    if (json) {
        char *text = cJSON_PrintUnformatted(x);
        if (text)
            printf("%s\n", text);
        cJSON_free(text);
        return;
    }
    printf("%s %-8s [%s] %s\n", cJSON_IsString(tt) ? tt->valuestring : "",
           cJSON_IsString(lv) ? lv->valuestring : "", cJSON_IsString(md) ? md->valuestring : "",
           cJSON_IsString(ms) ? ms->valuestring : "");
}

/* Says that records were lost (the ring wrapped) or that the agent started again. */
static void ctl_follow_notice(int json, const char *what, double n)
{
    if (json)
        printf("{\"%s\":%.0f}\n", what, n);
    else if (strcmp(what, "missed") == 0)
        printf("-- %.0f record(s) missed: the agent's log ring wrapped between two requests --\n",
               n);
    else
        printf("-- the agent started again --\n");
}

/* One `logs follow` request; prints its records; *after becomes the reply's next. Returns an
 * exit code, or -1 to go on. */
static int ctl_follow_once(const char *endpoint, int debug, int json, long lines, const char *level,
                           int first, double *after)
{
    struct proto_admin_reply rep;
    struct err e = ERR_INIT;
    cJSON *args = cJSON_CreateObject(), *res = NULL;
    const cJSON *x;
    char *argtext = NULL;
    int rc, code = -1;

    memset(&rep, 0, sizeof(rep));
    if (!args) {
        code = CTL_MISC_FAILED;
        goto out;
    }
    if (first && lines)
        cJSON_AddNumberToObject(args, "lines", (double)lines);
    if (!first)
        cJSON_AddNumberToObject(args, "after", *after);
    if (level)
        cJSON_AddStringToObject(args, "level", level);
    if (!(argtext = cJSON_PrintUnformatted(args))) {
        code = CTL_MISC_FAILED;
        goto out;
    }
    if ((rc = ctl_exchange(endpoint, debug, "logs follow", argtext, CTL_REQ_TIMEOUT_MS, &rep, NULL,
                           &e)) < 0) {
        fprintf(stderr, "%s: logs: %s\n", CTL_PROG, e.msg);
        code = ctl_exit_code(rc);
        goto out;
    }
    if (rep.status != 0) {
        fprintf(stderr, "%s: logs: %s\n", CTL_PROG, rep.error);
        code = rep.status;
        goto out;
    }
    if (!(res = cJSON_Parse(rep.result)) || ctl_jnum(res, "next") < 0) {
        fprintf(stderr, "%s: logs: the agent's answer cannot be read\n", CTL_PROG);
        code = CTL_MISC_FAILED;
        goto out;
    }
    if (!first && ctl_jnum(res, "last") < *after) {
        /* The agent's numbers went back: it was restarted. Start over from its oldest. */
        ctl_follow_notice(json, "restarted", 1);
        *after = 0;
        goto out;
    }
    if (ctl_jnum(res, "missed") > 0)
        ctl_follow_notice(json, "missed", ctl_jnum(res, "missed"));
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(res, "records"))
    {
        ctl_print_record(x, json);
    }
    *after = ctl_jnum(res, "next");
    if (fflush(stdout) != 0)
        code = CTL_MISC_FAILED;
out:
    cJSON_Delete(res);
    cJSON_Delete(args);
    cJSON_free(argtext);
    proto_admin_reply_clear(&rep);
    return code;
}

int ctl_logs_follow(const char *endpoint, int debug, int json, long lines, const char *level)
{
    double after = 0;
    int code, first = 1;

    signal(SIGINT, ctl_on_signal);
    signal(SIGTERM, ctl_on_signal);
    while (!ctl_stop) {
        if ((code = ctl_follow_once(endpoint, debug, json, lines, level, first, &after)) >= 0)
            return ctl_stop ? 0 : code;
        first = 0;
        for (uint32_t waited = 0; waited < CTL_FOLLOW_EVERY_MS && !ctl_stop; waited += 100)
            plat_sleep_ms(100);
    }
    return 0;
}
