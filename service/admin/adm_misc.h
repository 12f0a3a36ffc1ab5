/*
 * adm_misc.h - the admin commands `screenshot` and `logs follow`, and the certificate, upload
 * and error fields of `status` (adm_misc.c; docs/admin.md). Called by adm_dispatch under the
 * channel's lock.
 */
#ifndef KASM_ADM_MISC_H
#define KASM_ADM_MISC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "proto.h"

struct api;
struct cfg;
struct sesm;

/* The PNG bytes a reply is followed by: DATA frames (request id 1) up to END. */
struct adm_tail {
    uint8_t *data; /* malloc'd; NULL: nothing follows the reply */
    size_t len;
};

/* Adds cert_*, uploads_in_flight and errors_last_hour to a status result. Reads cfg's
 * ssl and server_public_key (the caller holds the config lock). */
void adm_misc_status(const struct cfg *cfg, struct api *api, cJSON *r);

/* `screenshot` {"session": N, "width": W}: the result {session, width, height, bytes} and the
 * PNG in tail. Fills rep and returns -1 on failure: 2 unknown session (the known ones listed),
 * 6 no helper running in it or the helper's own refusal (no display). */
int adm_misc_screenshot(struct sesm *sessions, const cJSON *args, cJSON *r,
                        struct proto_admin_reply *rep, struct adm_tail *tail);

/* `logs follow` {"after": seq, "level": L, "lines": N}: the records after seq (without
 * "after": the last N), each with its "seq"; "next" (the after of the next call), "missed"
 * (records the ring dropped before they were asked for). */
int adm_misc_logs_follow(const cJSON *args, cJSON *r, struct proto_admin_reply *rep);

#endif
