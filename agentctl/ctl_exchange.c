/*
 * ctl_exchange.c - one ADMIN_REQUEST / ADMIN_REPLY exchange with a running agent over its
 * admin channel (ctl_exchange.h). Compiled into agentctl and into the agent (whose
 * `--register-host` tells a running agent to reload).
 */
#include "ctl_exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

int ctl_read_frame_header(struct ctl_conn *c, uint64_t deadline, struct proto_header *h,
                          struct err *e)
{
    uint8_t hdr[PROTO_HEADER_SIZE];
    int rc;
    if ((rc = ctl_read(c, hdr, sizeof(hdr), deadline, e)) < 0)
        return rc;
    return proto_header_decode(hdr, h, e);
}

int ctl_exchange(const char *endpoint, int debug, const char *command, const char *args_json,
                 uint32_t timeout_ms, struct proto_admin_reply *rep, struct ctl_conn **keep,
                 struct err *e)
{
    struct proto_admin_request req;
    struct ctl_conn *c = NULL;
    uint8_t hdr[PROTO_HEADER_SIZE];
    struct proto_header h;
    struct proto_frame *f = NULL;
    uint64_t deadline = plat_monotonic_ms() + timeout_ms;
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(&req, 0, sizeof(req));
    memset(rep, 0, sizeof(*rep));
    if (keep)
        *keep = NULL;
    snprintf(req.command, sizeof(req.command), "%s", command);
    if (strlen(args_json) >= sizeof(req.args)) {
        rc = err_set(e, ERR_INVALID, "the command's options are too long");
        goto out;
    }
    memcpy(req.args, args_json, strlen(args_json) + 1);
    if ((rc = proto_admin_request_encode(&req, &text, &len, e)) < 0 ||
        (rc = ctl_connect(endpoint, debug, &c, e)) < 0)
        goto out;
    proto_header_encode(hdr, PROTO_ADMIN_REQUEST, (uint32_t)len, 1);
    if ((rc = ctl_write(c, hdr, sizeof(hdr), deadline, e)) < 0 ||
        (rc = ctl_write(c, text, len, deadline, e)) < 0 ||
        (rc = ctl_read_frame_header(c, deadline, &h, e)) < 0)
        goto out;
    if (h.type != PROTO_ADMIN_REPLY) {
        rc =
            err_set(e, ERR_PROTOCOL, "the agent answered with a %s frame", proto_type_name(h.type));
        goto out;
    }
    if ((rc = proto_frame_alloc(&h, &f, e)) < 0 ||
        (rc = ctl_read(c, f->payload, h.length, deadline, e)) < 0 ||
        (rc = proto_admin_reply_decode(f->payload, h.length, rep, e)) < 0)
        goto out;
    if (keep) {
        *keep = c;
        c = NULL;
    }
out:
    proto_frame_free(f);
    ctl_close(c);
    free(text);
    return rc;
}
