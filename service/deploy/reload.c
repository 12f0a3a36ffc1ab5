/*
 * reload.c - sorting and copying the keys of config.yaml read again by `agentctl reload`
 * (reload.h).
 */
#include "reload.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jwt.h"

enum drl_type { DRL_INT, DRL_STR };
enum drl_when {
    DRL_NOW,      /* applied at once */
    DRL_RESTART,  /* needs a restart; copied (read only at start) */
    DRL_NOT_COPY, /* needs a restart; not copied (read without a lock while running) */
};

struct drl_key {
    const char *name;
    enum drl_type type;
    size_t off, size;
    enum drl_when when;
};

#define DRL_I(n, w)                                                                                \
    {                                                                                              \
#n, DRL_INT, offsetof(struct cfg, n), sizeof(int), w                                       \
    }
#define DRL_S(n, w)                                                                                \
    {                                                                                              \
#n, DRL_STR, offsetof(struct cfg, n), sizeof(((struct cfg *)0)->n), w                      \
    }

static const struct drl_key drl_keys[] = {
    DRL_I(api_port, DRL_NOW),
    DRL_I(api_verify_cert, DRL_NOW),
    DRL_S(api_ca_file, DRL_NOW),
    DRL_I(heartbeat_interval, DRL_NOW),
    DRL_I(debug, DRL_NOW),
    DRL_S(upload_dir, DRL_NOW),
    DRL_S(download_dir, DRL_NOW),
    DRL_S(server_id, DRL_NOW),
    DRL_I(registered, DRL_NOW),
    DRL_I(multi_user, DRL_NOW),
    DRL_I(user_sso, DRL_NOW),
    DRL_I(ssl, DRL_RESTART),
    DRL_I(port, DRL_RESTART),
    DRL_S(listen_address, DRL_RESTART),
    DRL_S(server_public_key, DRL_RESTART),
    DRL_S(server_private_key, DRL_RESTART),
    DRL_S(jwt_public_key, DRL_RESTART),
    DRL_I(jwt_leeway, DRL_RESTART),
    DRL_S(log_file, DRL_RESTART),
    DRL_S(admin_socket, DRL_RESTART),
    DRL_S(script_path, DRL_RESTART),
    DRL_I(max_request_header_bytes, DRL_RESTART),
    DRL_I(max_json_body_bytes, DRL_NOT_COPY),
    DRL_I(request_timeout_ms, DRL_RESTART),
    DRL_I(max_concurrent_uploads, DRL_RESTART),
    DRL_I(num_threads, DRL_RESTART),
    DRL_I(screenshot_cache_seconds, DRL_RESTART),
    DRL_S(session_helper, DRL_RESTART),
    DRL_S(sessions_file, DRL_RESTART),
    DRL_S(log_forward_level, DRL_RESTART), /* read by the log shipper at start */
};
#define DRL_NKEYS (sizeof(drl_keys) / sizeof(drl_keys[0]))

static int drl_same(const struct drl_key *k, const struct cfg *a, const struct cfg *b)
{
    const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
    if (k->type == DRL_INT)
        return *(const int *)(const void *)pa == *(const int *)(const void *)pb;
    return strncmp(pa, pb, k->size) == 0;
}

static int drl_hosts_same(const struct cfg *a, const struct cfg *b)
{
    if (a->api_host_count != b->api_host_count)
        return 0;
    for (size_t i = 0; i < a->api_host_count; i++)
        if (strcmp(a->api_host[i], b->api_host[i]) != 0)
            return 0;
    return 1;
}

/* 1 the file holds another token that replaces the running one, -1 another but older one
 * (the running one stays), 0 the same or none. */
static int drl_token_cmp(const struct cfg *running, const struct cfg *file)
{
    struct jwt_claims a = {0}, b = {0};
    const char *ra = running->agent_jwt_token, *fb = file->agent_jwt_token;
    const char *sa, *sb;
    int r;

    if (!fb || !fb[0] || (ra && strcmp(ra, fb) == 0))
        return 0; /* a file without a token keeps the running one */
    if (!ra || !ra[0] || jwt_decode_unverified(ra, strlen(ra), &a, NULL) < 0)
        r = 1; /* nothing usable running */
    else if (jwt_decode_unverified(fb, strlen(fb), &b, NULL) < 0)
        r = -1; /* not a JWT: keep ours */
    else {
        sa = jwt_claim_string(&a, "server_id");
        sb = jwt_claim_string(&b, "server_id");
        if ((sa || sb) && (!sa || !sb || strcmp(sa, sb) != 0))
            r = 1; /* another registration */
        else
            r = b.has_exp && (!a.has_exp || b.exp > a.exp) ? 1 : -1; /* a newer token */
    }
    jwt_claims_free(&a);
    jwt_claims_free(&b);
    return r;
}

static void drl_add(struct drl_diff *d, int now, const char *name)
{
    if (now && d->napplied < DRL_MAX_KEYS)
        d->applied[d->napplied++] = name;
    else if (!now && d->nrestart < DRL_MAX_KEYS)
        d->restart[d->nrestart++] = name;
}

void drl_diff(const struct cfg *running, const struct cfg *started, const struct cfg *file,
              struct drl_diff *d)
{
    memset(d, 0, sizeof(*d));
    if (!started)
        started = running;
    if (!drl_hosts_same(running, file)) {
        drl_add(d, 1, "api_host");
        d->hosts_changed = 1;
    }
    switch (drl_token_cmp(running, file)) {
    case 1:
        drl_add(d, 1, "agent_jwt_token");
        d->token_changed = 1;
        break;
    case -1:
        d->token_stale = 1;
        break;
    }
    for (size_t k = 0; k < DRL_NKEYS; k++) {
        const struct drl_key *key = &drl_keys[k];
        if (drl_same(key, key->when == DRL_NOW ? running : started, file))
            continue;
        drl_add(d, key->when == DRL_NOW, key->name);
        if (key->when == DRL_NOW && strncmp(key->name, "api_", 4) == 0)
            d->hosts_changed = 1;
    }
}

int drl_apply(struct cfg *running, struct cfg *file, struct err *e)
{
    struct cfg_unknown *u;
    int rc = 0;

    if (drl_token_cmp(running, file) == 1 &&
        (rc = cfg_set_agent_token(running, file->agent_jwt_token, e)) < 0)
        return rc;
    for (size_t i = 0; i < file->api_host_count && i < CFG_MAX_API_HOSTS; i++)
        snprintf(running->api_host[i], sizeof(running->api_host[i]), "%s", file->api_host[i]);
    running->api_host_count = file->api_host_count;
    running->api_host_seq = file->api_host_seq;
    for (size_t k = 0; k < DRL_NKEYS; k++) {
        const struct drl_key *key = &drl_keys[k];
        if (key->when != DRL_NOT_COPY)
            memcpy((char *)running + key->off, (const char *)file + key->off, key->size);
    }
    u = running->unknown;
    running->unknown = file->unknown;
    file->unknown = u;
    return 0;
}
