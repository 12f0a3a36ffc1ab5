/*
 * auth.h - JWT authentication of API requests.
 *
 * The token comes from `Authorization: Bearer <jwt>` or the `token` query parameter and is
 * verified (jwt.h: RS256, exp required, leeway from the config) against the key in the
 * config's jwt_public_key file. The key file is re-read when its size or modification time
 * changes (or while it was modified in the last seconds), so a new key applies without a
 * restart. 401 answers are {"error": "Token is missing"} and {"error": "Invalid token"}; the
 * reason goes to the debug log, the token never does.
 *
 * Threads: one lock (a->lock) guards the current key reference; verification itself runs
 * outside the lock on a reference-counted key.
 */
#ifndef KASM_HTTP_AUTH_H
#define KASM_HTTP_AUTH_H

#include "err.h"

struct mg_connection;
struct http_auth;

/* What the API handlers learn about the caller. Empty strings when the token lacks a claim. */
struct api_claims {
    char system_username[256]; /* the claim as sent ("jdoe@corp.example") */
    char local_user[256];      /* system_username without the text after '@' ("jdoe") */
    char username[256];        /* the Kasm user name */
    char user_id[128];         /* the Kasm user id (string or number claim, as text) */
};

/* A missing key file is not an error here: requests fail with 401 until it appears. */
int http_auth_create(struct http_auth **out, const char *key_path, int leeway, struct err *e);
/*
 * Authenticates the request. 0 with *who filled; otherwise the 401 answer has been sent and
 * its status (401) is returned.
 */
int http_auth_check(struct http_auth *a, struct mg_connection *conn, struct api_claims *who);
void http_auth_free(struct http_auth *a);

#endif
