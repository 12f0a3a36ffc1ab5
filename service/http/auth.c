/*
 * auth.c - JWT authentication of API requests and the key file reload (auth.h).
 */
#define LOG_MODULE "auth"

#include "auth.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "fsutil.h"
#include "jwt.h"
#include "log.h"
#include "plat.h"
#include "reply.h"

#define AUTH_RECENT_SECONDS 3  /* a file changed this recently is compared byte by byte */
#define AUTH_CACHE_SLOTS    64 /* tokens remembered as verified, per key */

/*
 * A token verified with this key: the SHA-256 of the whole token text, the time until
 * which it stays valid (exp + leeway; nbf cannot matter any more once it was valid) and
 * what it says. The Kasm UI sends the same token with every request; checking its RS256
 * signature once instead of per request is most of the cost of a small request.
 */
struct auth_cached {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    int64_t valid_until; /* 0: empty slot */
    struct api_claims who;
};

struct auth_key {
    struct jwt_key *key;
    int refs;                                   /* guarded by http_auth.lock */
    struct auth_cached cache[AUTH_CACHE_SLOTS]; /* guarded by http_auth.lock; dies with the key */
};

struct http_auth {
    struct plat_mutex *lock; /* guards everything below */
    char path[1024];
    int leeway;
    struct auth_key *cur; /* NULL while no usable key is loaded */
    char *pem;            /* the bytes cur was loaded from */
    size_t pem_len;
    uint64_t size;
    int64_t mtime;
    int have_stat;
    int warned; /* the current load problem was logged */
};

static void keyref_put(struct http_auth *a, struct auth_key *k)
{
    int last;
    if (!k)
        return;
    plat_mutex_lock(a->lock);
    last = --k->refs == 0;
    plat_mutex_unlock(a->lock);
    if (last) {
        jwt_key_free(k->key);
        free(k);
    }
}

/* Called with a->lock held: reloads the key if the file changed. */
static void refresh_locked(struct http_auth *a)
{
    struct plat_file_info fi;
    struct err e = ERR_INIT;
    struct jwt_key *key = NULL;
    struct auth_key *k;
    char *pem = NULL;
    size_t len = 0;
    int64_t now = plat_wall_time();

    if (plat_path_stat(a->path, &fi, &e) < 0) {
        if (!a->warned)
            log_warning("the JWT verification key is not usable: %s; API requests are refused "
                        "until it is",
                        e.msg);
        a->warned = 1;
        return;
    }
    if (a->have_stat && fi.size == a->size && fi.mtime == a->mtime &&
        (now - fi.mtime > AUTH_RECENT_SECONDS || now < fi.mtime - AUTH_RECENT_SECONDS))
        return;
    a->size = fi.size;
    a->mtime = fi.mtime;
    a->have_stat = 1;
    if (fs_read_all(a->path, JWT_MAX_KEY_FILE, &pem, &len, &e) < 0)
        goto bad;
    if (a->cur && a->pem && len == a->pem_len && memcmp(pem, a->pem, len) == 0) {
        free(pem);
        return;
    }
    if (jwt_key_load_pem(&key, pem, len, &e) < 0) {
        err_prefix(&e, "%s", a->path);
        goto bad;
    }
    if (!(k = calloc(1, sizeof(*k)))) {
        jwt_key_free(key);
        err_set(&e, ERR_NOMEM, "out of memory");
        goto bad;
    }
    k->key = key;
    k->refs = 1;
    if (a->cur && --a->cur->refs == 0) {
        jwt_key_free(a->cur->key);
        free(a->cur);
    }
    a->cur = k;
    free(a->pem);
    a->pem = pem;
    a->pem_len = len;
    log_info("loaded the JWT verification key %s", a->path);
    a->warned = 0;
    return;
bad:
    free(pem);
    /* A broken file replaces a good key: refuse tokens rather than trust a stale key. */
    if (a->cur && --a->cur->refs == 0) {
        jwt_key_free(a->cur->key);
        free(a->cur);
    }
    a->cur = NULL;
    free(a->pem);
    a->pem = NULL;
    a->pem_len = 0;
    log_warning("the JWT verification key is not usable: %s; API requests are refused until it "
                "is fixed",
                e.msg);
    a->warned = 1;
}

int http_auth_create(struct http_auth **out, const char *key_path, int leeway, struct err *e)
{
    struct http_auth *a;
    int rc;

    *out = NULL;
    if (!(a = calloc(1, sizeof(*a))))
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = plat_mutex_create(&a->lock, e)) < 0) {
        free(a);
        return rc;
    }
    snprintf(a->path, sizeof(a->path), "%s", key_path);
    a->leeway = leeway;
    plat_mutex_lock(a->lock);
    refresh_locked(a);
    plat_mutex_unlock(a->lock);
    *out = a;
    return 0;
}

void http_auth_free(struct http_auth *a)
{
    if (!a)
        return;
    if (a->cur) {
        jwt_key_free(a->cur->key);
        free(a->cur);
    }
    free(a->pem);
    plat_mutex_destroy(a->lock);
    free(a);
}

static void copy_claim(const struct jwt_claims *c, const char *name, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->payload, name);
    out[0] = '\0';
    if (cJSON_IsString(v) && v->valuestring)
        snprintf(out, cap, "%s", v->valuestring);
    else if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble)
        snprintf(out, cap, "%lld", (long long)v->valuedouble);
}

/* Case-insensitive "Bearer " prefix. */
static void claims_to_who(const struct jwt_claims *claims, struct api_claims *who)
{
    copy_claim(claims, "system_username", who->system_username, sizeof(who->system_username));
    copy_claim(claims, "username", who->username, sizeof(who->username));
    copy_claim(claims, "user_id", who->user_id, sizeof(who->user_id));
    snprintf(who->local_user, sizeof(who->local_user), "%s", who->system_username);
    who->local_user[strcspn(who->local_user, "@")] = '\0';
}

/* With a->lock held. The slot is chosen by the digest; a token still valid at now hits. */
static int cache_lookup(struct auth_key *k, const unsigned char *digest, int64_t now,
                        struct api_claims *who)
{
    struct auth_cached *c = &k->cache[digest[0] % AUTH_CACHE_SLOTS];
    if (!c->valid_until || CRYPTO_memcmp(c->digest, digest, SHA256_DIGEST_LENGTH) != 0)
        return 0;
    if (now >= c->valid_until) {
        c->valid_until = 0; /* expired: verify again, which says why it fails */
        return 0;
    }
    *who = c->who;
    return 1;
}

/* With a->lock held. */
static void cache_store(struct auth_key *k, const unsigned char *digest, int64_t valid_until,
                        const struct api_claims *who)
{
    struct auth_cached *c = &k->cache[digest[0] % AUTH_CACHE_SLOTS];
    memcpy(c->digest, digest, SHA256_DIGEST_LENGTH);
    c->valid_until = valid_until;
    c->who = *who;
}

static const char *bearer(const char *h)
{
    static const char b[] = "bearer ";
    for (size_t i = 0; i < sizeof(b) - 1; i++) {
        char ch = h[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        if (ch != b[i])
            return NULL;
    }
    h += sizeof(b) - 1;
    while (*h == ' ')
        h++;
    return h;
}

int http_auth_check(struct http_auth *a, struct mg_connection *conn, struct api_claims *who)
{
    const char *hdr = mg_get_header(conn, "Authorization");
    const char *tok = NULL;
    char *qtok = NULL;
    struct jwt_verify_opts opts = JWT_VERIFY_OPTS_INIT;
    struct jwt_claims claims = {0};
    struct auth_key *k;
    struct err e = ERR_INIT;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    int rc, hit = 0;

    memset(who, 0, sizeof(*who));
    if (hdr && *hdr) {
        if (!(tok = bearer(hdr)) || !*tok) {
            log_debug("token rejected: the Authorization header is not a Bearer token");
            return http_reply_error(conn, 401, "Invalid token");
        }
    } else {
        if (!(qtok = malloc(JWT_MAX_TOKEN_LEN + 2)))
            return http_reply_error(conn, 500, "out of memory");
        rc = http_query_param(conn, "token", qtok, JWT_MAX_TOKEN_LEN + 2);
        if (rc == ERR_TOO_LARGE) {
            free(qtok);
            log_debug("token rejected: the token parameter is too long");
            return http_reply_error(conn, 401, "Invalid token");
        }
        if (rc < 0 || !qtok[0]) {
            free(qtok);
            return http_reply_error(conn, 401, "Token is missing");
        }
        tok = qtok;
    }

    SHA256((const unsigned char *)tok, strlen(tok), digest);
    plat_mutex_lock(a->lock);
    refresh_locked(a);
    if ((k = a->cur) != NULL) {
        k->refs++;
        hit = cache_lookup(k, digest, plat_wall_time(), who);
    }
    plat_mutex_unlock(a->lock);
    if (!k) {
        rc = err_set(&e, ERR_NOT_FOUND, "no usable JWT verification key (%s)", a->path);
    } else if (hit) {
        rc = 0;
    } else {
        opts.leeway = a->leeway;
        rc = jwt_verify(k->key, tok, strlen(tok), &opts, &claims, &e);
        if (rc == 0) {
            claims_to_who(&claims, who);
            plat_mutex_lock(a->lock);
            cache_store(k, digest, claims.exp + a->leeway, who);
            plat_mutex_unlock(a->lock);
            jwt_claims_free(&claims);
        }
    }
    keyref_put(a, k);
    if (qtok) {
        memset(qtok, 0, strlen(qtok));
        free(qtok);
    }
    if (rc < 0) {
        memset(who, 0, sizeof(*who));
        log_debug("token rejected: %s", e.msg);
        return http_reply_error(conn, 401, "Invalid token");
    }
    return 0;
}
