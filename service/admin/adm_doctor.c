/*
 * adm_doctor.c - the portable checks of `agentctl doctor` (adm_doctor.h), one function per
 * check, in the order they are reported: config, key_file, config_acl, certificate,
 * certificate_key, jwt_key, https_port, firewall, deployment, token, clock_skew, helpers,
 * winfsp, disk_space. Each fills a struct admd_check; admd_run() turns them into the JSON
 * result. No check prints a secret: the token is judged by its exp claim, the key by OpenSSL.
 */
#define LOG_MODULE "admin"

#include "adm_doctor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "adm_doctor_plat.h"
#include "api/api.h"
#include "cfg.h"
#include "fsutil.h"
#include "https_client.h"
#include "jwt.h"
#include "lifecycle.h"
#include "log.h"
#include "plat.h"
#include "policy.h"
#include "range.h"
#include "register.h"
#include "sesm.h"
#include "timefmt.h"

#define ADMD_PEM_MAX          (1024u * 1024u)
#define ADMD_NET_BUDGET_MS    12000u /* all deployment hosts together */
#define ADMD_HOST_MIN_MS      1500u  /* a host is not started with less budget left */
#define ADMD_TCP_TIMEOUT_MS   3000u
#define ADMD_HTTP_TIMEOUT_MS  4000u
#define ADMD_LOCAL_TIMEOUT_MS 1500u /* our own HTTPS port */
#define ADMD_DATE_MAX         64

#ifdef _WIN32
#define ADMD_RESTART "restart the service (net stop kasm && net start kasm)"
#define ADMD_REGISTER                                                                              \
    "register the agent again (agent.exe /S --register-host HOST --register-port PORT "            \
    "--register-token TOKEN, then restart the service)"
#else
#define ADMD_RESTART "restart the agent"
#define ADMD_REGISTER                                                                              \
    "register the agent again (agent --register-host HOST --register-port PORT "                   \
    "--register-token TOKEN, then restart it)"
#endif

/* What the checks look at; any pointer but cfg may be NULL (the agent is still starting). */
struct admd_ctx {
    struct cfg *cfg; /* the configuration in use (read under the lifecycle's lock) */
    const char *cfg_path;
    struct dlc *lifecycle;
    struct sesm *sessions;
    struct api *api;
};

/* What the checks read from the configuration, copied under the lifecycle's lock. */
struct admd_snap {
    char cfg_path[CFG_PATH_MAX];
    char key[CFG_PATH_MAX], cert[CFG_PATH_MAX], jwt[CFG_PATH_MAX];
    char scripts[CFG_PATH_MAX], upload[CFG_PATH_MAX], download[CFG_PATH_MAX];
    char listen[64];
    char hosts[CFG_MAX_API_HOSTS][256];
    size_t host_count;
    int api_port, port, ssl, verify_cert, leeway;
    char ca_file[CFG_PATH_MAX];
    struct dlc_token_status token;
};

/* What one check leaves for a later one. */
struct admd_state {
    int cert_ok, key_ok;      /* the PEM files could be read */
    int deploy_checked;       /* at least one host answered the health check */
    char date[ADMD_DATE_MAX]; /* its HTTP Date header */
    char date_host[256];      /* which host */
    int64_t date_local;       /* our clock when it answered */
};

const char *admd_verdict_name(enum admd_verdict v)
{
    switch (v) {
    case ADMD_OK:
        return "ok";
    case ADMD_WARNING:
        return "warning";
    case ADMD_FAIL:
        return "fail";
    default:
        return "skipped";
    }
}

/* ---- pure judgements ---- */

enum admd_verdict admd_judge_cert(int64_t to_not_before, int64_t to_not_after)
{
    if (to_not_before > 0 || to_not_after <= 0)
        return ADMD_FAIL;
    if (to_not_after < (int64_t)ADMD_CERT_WARN_DAYS * 86400)
        return ADMD_WARNING;
    return ADMD_OK;
}

enum admd_verdict admd_judge_skew(int64_t skew, int leeway)
{
    int64_t a = skew < 0 ? -skew : skew;
    if (leeway < 0)
        leeway = 0;
    if (a > ADMD_SKEW_FAIL_S)
        return ADMD_FAIL;
    if (a > leeway)
        return ADMD_WARNING;
    return ADMD_OK;
}

enum admd_verdict admd_judge_disk(uint64_t free_bytes, uint64_t total_bytes)
{
    if (free_bytes < ADMD_DISK_WARN_FREE)
        return ADMD_WARNING;
    if (total_bytes && free_bytes < total_bytes / 100 * ADMD_DISK_WARN_PCT)
        return ADMD_WARNING;
    return ADMD_OK;
}

enum admd_verdict admd_judge_token(int has_token, int has_exp, int64_t exp, int64_t now)
{
    if (!has_token)
        return ADMD_FAIL;
    if (has_exp && exp <= now)
        return ADMD_FAIL;
    return ADMD_OK;
}

int admd_port_in_list(const char *list, int port)
{
    const char *p = list;

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[32];
        long lo, hi;
        char *q;

        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len > 0 && len < sizeof(item)) {
            memcpy(item, p, len);
            item[len] = '\0';
            if (strcmp(item, "*") == 0)
                return 1;
            lo = strtol(item, &q, 10);
            hi = lo;
            if (q != item && *q == '-')
                hi = strtol(q + 1, &q, 10);
            if (q != item && *q == '\0' && lo <= port && port <= hi)
                return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* ---- helpers ---- */

/* Sets the verdict and the detail / the fix (printf-style). */
static void admd_say(struct admd_check *c, enum admd_verdict v, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 3, 4)))
#endif
    ;
static void admd_fix(struct admd_check *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(ERR_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

static void admd_say(struct admd_check *c, enum admd_verdict v, const char *fmt, ...)
{
    va_list ap;
    c->verdict = v;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
}

static void admd_fix(struct admd_check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fix, sizeof(c->fix), fmt, ap);
    va_end(ap);
}

static void admd_snapshot(const struct admd_ctx *x, struct admd_snap *s)
{
    const struct cfg *c = x->cfg;

    memset(s, 0, sizeof(*s));
    snprintf(s->cfg_path, sizeof(s->cfg_path), "%s", x->cfg_path ? x->cfg_path : "");
    if (x->lifecycle)
        dlc_cfg_lock(x->lifecycle);
    snprintf(s->key, sizeof(s->key), "%s", c->server_private_key);
    snprintf(s->cert, sizeof(s->cert), "%s", c->server_public_key);
    snprintf(s->jwt, sizeof(s->jwt), "%s", c->jwt_public_key);
    snprintf(s->scripts, sizeof(s->scripts), "%s", c->script_path);
    snprintf(s->upload, sizeof(s->upload), "%s", c->upload_dir);
    snprintf(s->download, sizeof(s->download), "%s", c->download_dir);
    snprintf(s->listen, sizeof(s->listen), "%s", c->listen_address);
    snprintf(s->ca_file, sizeof(s->ca_file), "%s", c->api_ca_file);
    for (size_t i = 0; i < c->api_host_count && i < CFG_MAX_API_HOSTS; i++)
        snprintf(s->hosts[s->host_count++], sizeof(s->hosts[0]), "%s", c->api_host[i]);
    s->api_port = c->api_port;
    s->port = c->port;
    s->ssl = c->ssl;
    s->verify_cert = c->api_verify_cert;
    s->leeway = c->jwt_leeway;
    if (!x->lifecycle) {
        s->token.registered = c->registered;
        s->token.has_token = c->agent_jwt_token != NULL;
        if (c->agent_jwt_token) {
            struct jwt_claims cl = {0};
            if (jwt_decode_unverified(c->agent_jwt_token, strlen(c->agent_jwt_token), &cl, NULL) ==
                    0 &&
                jwt_claim_int(&cl, "exp", &s->token.exp) == 0)
                s->token.has_exp = 1;
            jwt_claims_free(&cl);
        }
    }
    if (x->lifecycle) {
        dlc_cfg_unlock(x->lifecycle);
        dlc_token_status(x->lifecycle, &s->token);
    }
}

/* Reads a PEM file into an OpenSSL memory BIO (the buffer is wiped: it may be a key). */
static BIO *admd_pem_bio(const char *path, struct err *e)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *b = NULL;

    if (fs_read_all(path, ADMD_PEM_MAX, &pem, &len, e) < 0)
        return NULL;
    b = BIO_new(BIO_s_secmem()); /* cleansed when freed: it may hold a key */
    if (!b || BIO_write(b, pem, (int)len) != (int)len) {
        BIO_free(b);
        b = NULL;
        err_set(e, ERR_NOMEM, "out of memory reading %s", path);
    }
    OPENSSL_cleanse(pem, len);
    free(pem);
    return b;
}

static X509 *admd_load_cert(const char *path, struct err *e)
{
    BIO *b = admd_pem_bio(path, e);
    X509 *x;
    if (!b)
        return NULL;
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!x)
        err_set(e, ERR_PARSE, "%s holds no PEM certificate that OpenSSL can read", path);
    return x;
}

static EVP_PKEY *admd_load_key(const char *path, struct err *e)
{
    BIO *b = admd_pem_bio(path, e);
    EVP_PKEY *k;
    if (!b)
        return NULL;
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free_all(b);
    if (!k)
        err_set(e, ERR_PARSE, "%s holds no unencrypted PEM private key that OpenSSL can read",
                path);
    return k;
}

/* Seconds from now to t (negative: in the past). */
static int64_t admd_asn1_from_now(const ASN1_TIME *t)
{
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, t))
        return 0;
    return (int64_t)days * 86400 + secs;
}

/* ---- the checks ---- */

/* config: the file on disk parses, and is what runs. */
static void admd_check_config(const struct admd_ctx *x, const struct admd_snap *s,
                              struct admd_check *c)
{
    struct cfg disk;
    struct err e = ERR_INIT;
    int rc, same = 0;

    c->name = "config";
    memset(&disk, 0, sizeof(disk));
    if (x->lifecycle)
        dlc_cfg_lock(x->lifecycle); /* the lifecycle saves the file under this lock */
    rc = cfg_load(&disk, s->cfg_path, &e);
    if (rc == 0)
        same = cfg_equal(&disk, x->cfg);
    if (x->lifecycle)
        dlc_cfg_unlock(x->lifecycle);
    cfg_free(&disk);
    if (rc < 0) {
        admd_say(c, ADMD_FAIL, "%s", e.msg);
        admd_fix(c,
                 "correct %s where the message says (docs/config.md lists the keys), then %s; "
                 "the agent keeps running with the configuration it started with",
                 s->cfg_path, ADMD_RESTART);
    } else if (!same) {
        admd_say(c, ADMD_WARNING,
                 "%s parses, but differs from the configuration the agent is running with",
                 s->cfg_path);
        admd_fix(c, "%s to use the file's configuration (or undo the edit)", ADMD_RESTART);
    } else {
        admd_say(c, ADMD_OK, "%s parses and is the configuration in use", s->cfg_path);
    }
}

/* key_file: the TLS private key is readable by the agent's account and the admins only. */
static void admd_check_key_file(const struct admd_snap *s, struct admd_check *c)
{
    char why[ADMD_TEXT_MAX / 2], fix[ADMD_TEXT_MAX / 2];
    struct err e = ERR_INIT;
    int rc;

    c->name = "key_file";
    if (!s->ssl) {
        admd_say(c, ADMD_SKIPPED, "ssl is false: the API serves plain HTTP and uses no key");
        return;
    }
    rc = admd_plat_private(s->key, why, sizeof(why), fix, sizeof(fix), &e);
    if (rc < 0) {
        admd_say(c, ADMD_FAIL, "the TLS private key (server_private_key): %s", e.msg);
        admd_fix(c, "%s: it writes the key file with the right permissions", ADMD_REGISTER);
    } else if (rc > 0) {
        admd_say(c, ADMD_FAIL, "the TLS private key %s is not private: %s", s->key, why);
        admd_fix(c, "%s", fix);
    } else {
        admd_say(c, ADMD_OK, "%s is private (%s)", s->key, why);
    }
}

/* config_acl: the config file, its folder, the certs folder and the scripts folder can be
 * changed only by the agent's account and the admins. */
static void admd_check_config_acl(const struct admd_snap *s, struct admd_check *c)
{
    char dir[CFG_PATH_MAX], certs[CFG_PATH_MAX];
    const char *paths[4], *names[4] = {"config", "config folder", "certs folder", "script_path"};
    size_t n = 0, bad = 0, checked = 0;
    char list[ADMD_TEXT_MAX / 2] = "";

    c->name = "config_acl";
    paths[0] = s->cfg_path;
    paths[1] = fs_dirname(s->cfg_path, dir, sizeof(dir), NULL) == 0 ? dir : "";
    paths[2] = fs_dirname(s->key, certs, sizeof(certs), NULL) == 0 ? certs : "";
    paths[3] = s->scripts;
    n = 4;
    c->verdict = ADMD_OK;
    for (size_t i = 0; i < n; i++) {
        char why[256], fix[ADMD_TEXT_MAX / 2];
        struct plat_file_info fi;
        struct err e = ERR_INIT;
        int rc;

        if (!paths[i][0] || (i == 2 && strcmp(paths[2], paths[1]) == 0))
            continue;
        if (i >= 2 && plat_path_stat(paths[i], &fi, NULL) < 0)
            continue; /* no certs or scripts folder: nothing to protect */
        checked++;
        rc = admd_plat_admin_write_only(paths[i], why, sizeof(why), fix, sizeof(fix), &e);
        if (rc == 0) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%s", l ? ", " : "", names[i]);
            continue;
        }
        if (bad++ == 0) {
            if (rc < 0) {
                admd_say(c, ADMD_FAIL, "the %s %s cannot be checked: %s", names[i], paths[i],
                         e.msg);
                admd_fix(c, "make sure %s exists and the agent can read it", paths[i]);
            } else {
                admd_say(c, ADMD_FAIL, "the %s %s can be changed by ordinary users: %s", names[i],
                         paths[i], why);
                admd_fix(c, "%s", fix);
            }
        }
    }
    if (bad > 1) {
        size_t l = strlen(c->detail);
        snprintf(c->detail + l, sizeof(c->detail) - l,
                 " (and %zu more; run doctor again after "
                 "the fix)",
                 bad - 1);
    }
    if (bad == 0)
        admd_say(c, ADMD_OK, "only administrators can change them: %s (%zu checked)",
                 checked ? list : "nothing", checked);
}

/* certificate: the TLS certificate is valid now and not about to expire. */
static void admd_check_certificate(const struct admd_snap *s, struct admd_state *st,
                                   struct admd_check *c)
{
    struct err e = ERR_INIT;
    X509 *x = NULL;
    char subject[256] = "?", until[64], left[64];
    int64_t nb, na;
    enum admd_verdict v;

    c->name = "certificate";
    if (!s->ssl) {
        admd_say(c, ADMD_SKIPPED, "ssl is false: the API serves plain HTTP");
        return;
    }
    if (!(x = admd_load_cert(s->cert, &e))) {
        admd_say(c, ADMD_FAIL, "the TLS certificate (server_public_key): %s", e.msg);
        admd_fix(c, "%s: it writes the certificate and its key", ADMD_REGISTER);
        return;
    }
    st->cert_ok = 1;
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    nb = admd_asn1_from_now(X509_get0_notBefore(x));
    na = admd_asn1_from_now(X509_get0_notAfter(x));
    dpol_format_time(plat_wall_time() + na, until, sizeof(until));
    v = admd_judge_cert(nb, na);
    if (nb > 0) {
        char from[64];
        dpol_format_time(plat_wall_time() + nb, from, sizeof(from));
        tfmt_duration(nb, left, sizeof(left));
        admd_say(c, v, "%s (%s) is not valid before %s (in %s)", s->cert, subject, from, left);
        admd_fix(c,
                 "check this machine's clock (see clock_skew); if it is right, the certificate "
                 "was issued for the future: %s",
                 ADMD_REGISTER);
    } else if (na <= 0) {
        tfmt_duration(na, left, sizeof(left));
        admd_say(c, v, "%s (%s) expired %s (%s ago)", s->cert, subject, until, left);
        admd_fix(c, "renew it: %s, or replace %s and %s with a valid pair and %s", ADMD_REGISTER,
                 s->cert, s->key, ADMD_RESTART);
    } else {
        admd_say(c, v, "%s (%s) is valid until %s (%lld days left)", s->cert, subject, until,
                 (long long)(na / 86400));
        if (v != ADMD_OK)
            admd_fix(c, "renew it within %lld days: %s, or replace %s and %s with a new pair",
                     (long long)(na / 86400), ADMD_REGISTER, s->cert, s->key);
    }
    X509_free(x);
}

/* certificate_key: the certificate and the private key are a pair. */
static void admd_check_cert_key(const struct admd_snap *s, const struct admd_state *st,
                                struct admd_check *c)
{
    struct err e = ERR_INIT;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;

    c->name = "certificate_key";
    if (!s->ssl) {
        admd_say(c, ADMD_SKIPPED, "ssl is false: the API serves plain HTTP");
        return;
    }
    if (!st->cert_ok) {
        admd_say(c, ADMD_SKIPPED, "the certificate cannot be read (see certificate)");
        return;
    }
    if (!(k = admd_load_key(s->key, &e))) {
        admd_say(c, ADMD_FAIL, "the TLS private key (server_private_key): %s", e.msg);
        admd_fix(c, "%s: it writes the certificate and its key", ADMD_REGISTER);
        goto out;
    }
    if (!(x = admd_load_cert(s->cert, &e))) {
        admd_say(c, ADMD_SKIPPED, "the certificate cannot be read (see certificate)");
        goto out;
    }
    if (X509_check_private_key(x, k) == 1) {
        admd_say(c, ADMD_OK, "%s matches the private key %s", s->cert, s->key);
    } else {
        admd_say(c, ADMD_FAIL, "%s does not match the private key %s: TLS clients are refused",
                 s->cert, s->key);
        admd_fix(c,
                 "put the certificate's own key in %s (or the key's certificate in %s) and %s; "
                 "or %s, which writes both",
                 s->key, s->cert, ADMD_RESTART, ADMD_REGISTER);
    }
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
}

/* jwt_key: the deployment's JWT public key is there and loads. */
static void admd_check_jwt_key(const struct admd_snap *s, struct admd_check *c)
{
    struct jwt_key *k = NULL;
    struct err e = ERR_INIT;

    c->name = "jwt_key";
    if (jwt_key_load_file(&k, s->jwt, &e) < 0) {
        admd_say(c, ADMD_FAIL,
                 "the deployment's JWT public key (jwt_public_key): %s; every API request is "
                 "refused (401)",
                 e.msg);
        admd_fix(c, "%s: registration writes %s; the agent reloads it without a restart",
                 ADMD_REGISTER, s->jwt);
        return;
    }
    admd_say(c, ADMD_OK, "%s loads (%d-bit key)", s->jwt, jwt_key_bits(k));
    jwt_key_free(k);
}

/* https_port: the HTTPS API runs, on the configured port, and accepts connections. */
static void admd_check_https_port(const struct admd_ctx *x, const struct admd_snap *s,
                                  struct admd_check *c)
{
    const char *addr = s->listen[0] ? s->listen : "0.0.0.0";
    const char *probe = addr;
    struct err e = ERR_INIT;
    int port;

    c->name = "https_port";
    if (!x->api) {
        admd_say(c, ADMD_FAIL, "the HTTPS API is not running (port %d in the config)", s->port);
        admd_fix(c,
                 "if the agent has just started, run doctor again in a few seconds; else look "
                 "for the reason in the log (agentctl logs --level error) and %s",
                 ADMD_RESTART);
        return;
    }
    port = api_port(x->api);
    if (strcmp(addr, "0.0.0.0") == 0)
        probe = "127.0.0.1";
    else if (strcmp(addr, "::") == 0)
        probe = "::1";
    if (dcl_tcp_check(probe, port, ADMD_LOCAL_TIMEOUT_MS, &e) < 0) {
        admd_say(c, ADMD_FAIL, "the agent's HTTPS API is bound to %s:%d but %s", addr, port, e.msg);
        admd_fix(c, "look for the reason in the log (agentctl logs --level warning) and %s",
                 ADMD_RESTART);
        return;
    }
    if (s->port != 0 && port != s->port) {
        admd_say(c, ADMD_FAIL, "the agent listens on port %d, but the config says %d", port,
                 s->port);
        admd_fix(c, "%s", ADMD_RESTART);
        return;
    }
    admd_say(c, ADMD_OK, "the agent listens on %s:%d (%s)%s", addr, port, s->ssl ? "https" : "http",
             s->port == 0 ? "; port 0 in the config: a free port chosen at start" : "");
}

/* firewall: inbound TCP on the port is allowed (platform). */
static void admd_check_firewall(const struct admd_ctx *x, const struct admd_snap *s,
                                struct admd_check *c)
{
    c->name = "firewall";
    admd_plat_firewall(x->api ? api_port(x->api) : s->port, c);
}

/* deployment: each API host resolves, accepts TCP and passes /api/__healthcheck. */
static void admd_check_deployment(const struct admd_snap *s, struct admd_state *st,
                                  struct admd_check *c)
{
    uint64_t end = plat_monotonic_ms() + ADMD_NET_BUDGET_MS;
    size_t healthy = 0, failed = 0, unchecked = 0;
    enum dreg_step first_step = DREG_STEP_NONE;
    char first_host[256] = "";
    char text[ADMD_TEXT_MAX] = "";

    c->name = "deployment";
    if (s->host_count == 0) {
        admd_say(c, ADMD_FAIL, "no deployment host (api_host) is configured");
        admd_fix(c, "%s", ADMD_REGISTER);
        return;
    }
    for (size_t i = 0; i < s->host_count; i++) {
        struct dcl_options net;
        struct err e = ERR_INIT;
        enum dreg_step step = DREG_STEP_NONE;
        char date[ADMD_DATE_MAX] = "";
        uint64_t now = plat_monotonic_ms();
        size_t l = strlen(text);

        if (now + ADMD_HOST_MIN_MS > end) {
            unchecked++;
            snprintf(text + l, sizeof(text) - l, "%s%s:%d not checked (time budget)", l ? "; " : "",
                     s->hosts[i], s->api_port);
            continue;
        }
        memset(&net, 0, sizeof(net));
        net.verify_cert = s->verify_cert;
        net.ca_file = s->ca_file;
        net.connect_timeout_ms = ADMD_TCP_TIMEOUT_MS;
        net.io_timeout_ms = ADMD_HTTP_TIMEOUT_MS;
        net.max_body = 64 * 1024;
        if (dreg_reach_check(&net, s->hosts[i], s->api_port, ADMD_TCP_TIMEOUT_MS, &step, date,
                             sizeof(date), &e) == 0) {
            healthy++;
            snprintf(text + l, sizeof(text) - l, "%s%s:%d healthy", l ? "; " : "", s->hosts[i],
                     s->api_port);
            if (!st->deploy_checked) {
                st->deploy_checked = 1;
                st->date_local = plat_wall_time();
                snprintf(st->date, sizeof(st->date), "%s", date);
                snprintf(st->date_host, sizeof(st->date_host), "%s", s->hosts[i]);
            }
            continue;
        }
        if (failed++ == 0) {
            first_step = step;
            snprintf(first_host, sizeof(first_host), "%s", s->hosts[i]);
        }
        snprintf(text + l, sizeof(text) - l, "%s%s", l ? "; " : "", e.msg);
    }
    if (healthy == s->host_count)
        admd_say(c, ADMD_OK, "%s", text);
    else
        admd_say(c, healthy ? ADMD_WARNING : ADMD_FAIL, "%s", text);
    if (failed == 0) {
        if (unchecked)
            admd_fix(c, "run doctor again: the other hosts were slow to answer");
        return;
    }
    switch (first_step) {
    case DREG_STEP_RESOLVE:
        admd_fix(c,
                 "this machine cannot resolve %s: check its DNS settings, or correct api_host in "
                 "%s",
                 first_host, s->cfg_path);
        break;
    case DREG_STEP_TCP:
        admd_fix(c,
                 "this machine cannot connect to %s:%d: check that the deployment's web server "
                 "runs and that no firewall or proxy blocks outbound TCP %d (api_port in %s)",
                 first_host, s->api_port, s->api_port, s->cfg_path);
        break;
    default:
        admd_fix(c,
                 "%s:%d accepts connections but its API is not healthy: check the Kasm API "
                 "service (GET https://%s:%d/api/__healthcheck must answer 200); after a TLS "
                 "error check api_verify_cert and api_ca_file",
                 first_host, s->api_port, first_host, s->api_port);
        break;
    }
}

/* token: the agent's token is there and not expired. */
static void admd_check_token(const struct admd_snap *s, struct admd_check *c)
{
    int64_t now = plat_wall_time();
    enum admd_verdict v = admd_judge_token(s->token.has_token, s->token.has_exp, s->token.exp, now);
    char when[64], d[64];

    c->name = "token";
    if (!s->token.has_token) {
        admd_say(c, v, "the agent has no token (agent_jwt_token): it is not registered");
        admd_fix(c,
                 "%s; or put a registration token in registration_token.txt beside %s "
                 "(the agent registers with it without a restart)",
                 ADMD_REGISTER, s->cfg_path);
        return;
    }
    if (!s->token.has_exp) {
        admd_say(c, v, "the agent token is present (no exp claim: it does not expire)");
        return;
    }
    dpol_format_time(s->token.exp, when, sizeof(when));
    tfmt_duration(s->token.exp - now, d, sizeof(d));
    if (v == ADMD_FAIL) {
        admd_say(c, v, "the agent token expired %s (%s ago): the deployment refuses it", when, d);
        admd_fix(c,
                 "the agent exchanges an expired token by itself inside the grace period when "
                 "the deployment answers (see deployment); past it, put a new registration "
                 "token in registration_token.txt beside %s, or %s",
                 s->cfg_path, ADMD_REGISTER);
        return;
    }
    admd_say(c, v, "the agent token is valid until %s (%s left)%s", when, d,
             s->token.registered ? "" : "; registered is false in the config");
}

/* clock_skew: our clock against the deployment's HTTP Date header. */
static void admd_check_clock(const struct admd_snap *s, const struct admd_state *st,
                             struct admd_check *c)
{
    int64_t theirs = 0, skew;
    char d[64];

    c->name = "clock_skew";
    if (!st->deploy_checked) {
        admd_say(c, ADMD_SKIPPED, "no deployment host answered (see deployment)");
        return;
    }
    if (!st->date[0] || rng_http_date_parse(st->date, &theirs, NULL) < 0) {
        admd_say(c, ADMD_SKIPPED, "%s sent no usable HTTP Date header", st->date_host);
        return;
    }
    skew = theirs - st->date_local;
    tfmt_duration(skew, d, sizeof(d));
    admd_say(c, admd_judge_skew(skew, s->leeway),
             "%s's clock is %s %s this machine's (HTTP Date %s); tokens allow %d s (jwt_leeway)",
             st->date_host, d, skew >= 0 ? "ahead of" : "behind", st->date, s->leeway);
    if (c->verdict != ADMD_OK)
        admd_fix(c,
#ifdef _WIN32
                 "synchronise the clocks: w32tm /resync on this machine (and check the Windows "
                 "Time service), NTP on the deployment"
#else
                 "synchronise the clocks: NTP (systemd-timesyncd, chrony) on this machine and "
                 "on the deployment"
#endif
                 "; beyond jwt_leeway the tokens of one side are refused by the other");
}

/* helpers: every logged-on session has its helper running. */
static void admd_check_helpers(const struct admd_ctx *x, struct admd_check *c)
{
    struct sesm_row *rows = NULL;
    size_t n = 0, running = 0, starting = 0, down = 0;
    struct err e = ERR_INIT;
    char text[ADMD_TEXT_MAX] = "";

    c->name = "helpers";
    if (!x->sessions) {
        admd_say(c, ADMD_FAIL,
                 "the session manager is not running: no session helpers "
                 "(no screenshots, files go to upload_dir/download_dir)");
        admd_fix(c, "look for the reason in the log (agentctl logs --level error), then %s",
                 ADMD_RESTART);
        return;
    }
    if (sesm_table(x->sessions, &rows, &n, &e) < 0) {
        admd_say(c, ADMD_FAIL, "the session table cannot be read: %s", e.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(text);
        if (strcmp(rows[i].state, "running") == 0 && rows[i].helper_pid) {
            running++;
            continue;
        }
        if (strcmp(rows[i].state, "starting") == 0)
            starting++;
        else
            down++;
        snprintf(text + l, sizeof(text) - l, "%ssession %u (%s): %s, %u restart(s) so far",
                 l ? "; " : "", (unsigned)rows[i].session_id, rows[i].user, rows[i].state,
                 rows[i].restarts);
    }
    free(rows);
    if (n == 0) {
        admd_say(c, ADMD_OK, "no user is logged on: no helper is needed");
    } else if (down) {
        admd_say(c, ADMD_FAIL, "%zu of %zu session helper(s) not running: %s", n - running, n,
                 text);
        admd_fix(c, "see why in agentctl logs --level warning (the helper's path: "
                    "session_helper in the config); the agent restarts helpers by itself with "
                    "growing delays; a logoff and logon of the user starts a fresh one");
    } else if (starting) {
        admd_say(c, ADMD_WARNING, "%zu session helper(s) still starting: %s", starting, text);
        admd_fix(c, "run doctor again in a few seconds");
    } else {
        admd_say(c, ADMD_OK, "%zu session(s), each with its helper running", n);
    }
}

/* winfsp: needed only for storage mappings, which this agent does not have yet. */
static void admd_check_winfsp(struct admd_check *c)
{
    c->name = "winfsp";
    admd_say(c, ADMD_SKIPPED,
             "no storage mappings: this agent version does not map cloud "
             "storage, so WinFsp is not needed");
}

/* disk_space: free space where uploads land (upload_dir and download_dir). */
static void admd_check_disk(const struct admd_snap *s, struct admd_check *c)
{
    const char *paths[2] = {s->upload, s->download}, *names[2] = {"upload_dir", "download_dir"};
    char text[ADMD_TEXT_MAX] = "", low[CFG_PATH_MAX] = "";
    enum admd_verdict worst = ADMD_OK;

    c->name = "disk_space";
    for (size_t i = 0; i < 2; i++) {
        uint64_t fr = 0, tot = 0;
        struct err e = ERR_INIT;
        size_t l = strlen(text);
        if (!paths[i][0] || (i == 1 && strcmp(paths[0], paths[1]) == 0))
            continue;
        if (plat_disk_free(paths[i], &fr, &tot, &e) < 0) {
            snprintf(text + l, sizeof(text) - l, "%s%s %s: cannot be checked: %s", l ? "; " : "",
                     names[i], paths[i], e.msg);
            if (worst == ADMD_OK)
                snprintf(low, sizeof(low), "%s", paths[i]);
            worst = ADMD_WARNING;
            continue;
        }
        snprintf(text + l, sizeof(text) - l, "%s%s %s: %.1f GiB free of %.1f GiB (%.0f%%)",
                 l ? "; " : "", names[i], paths[i], (double)fr / (1u << 30),
                 (double)tot / (1u << 30), tot ? 100.0 * (double)fr / (double)tot : 0.0);
        if (admd_judge_disk(fr, tot) != ADMD_OK) {
            if (worst == ADMD_OK)
                snprintf(low, sizeof(low), "%s", paths[i]);
            worst = ADMD_WARNING;
        }
    }
    if (!text[0]) {
        admd_say(c, ADMD_SKIPPED, "no upload_dir or download_dir is configured");
        return;
    }
    admd_say(c, worst, "%s", text);
    if (worst != ADMD_OK)
        admd_fix(c,
                 "free space on the volume of %s (at least 1 GiB and 5%%), or point upload_dir "
                 "/ download_dir at a larger volume; the users' own Downloads folders are on "
                 "their profiles' volume",
                 low);
}

/* ---- the command ---- */

int admd_run(struct cfg *cfg, const char *cfg_path, struct dlc *lifecycle, struct sesm *sessions,
             struct api *api, cJSON *r)
{
    const struct admd_ctx ctx = {cfg, cfg_path, lifecycle, sessions, api}, *x = &ctx;
    struct admd_check checks[14];
    struct admd_snap *s = calloc(1, sizeof(*s));
    struct admd_state st;
    size_t n = 0, counts[4] = {0, 0, 0, 0};
    uint64_t t0 = plat_monotonic_ms();
    cJSON *arr;

    if (!s)
        return ERR_NOMEM;
    memset(checks, 0, sizeof(checks));
    memset(&st, 0, sizeof(st));
    admd_snapshot(x, s);
    admd_check_config(x, s, &checks[n++]);
    admd_check_key_file(s, &checks[n++]);
    admd_check_config_acl(s, &checks[n++]);
    admd_check_certificate(s, &st, &checks[n++]);
    admd_check_cert_key(s, &st, &checks[n++]);
    admd_check_jwt_key(s, &checks[n++]);
    admd_check_https_port(x, s, &checks[n++]);
    admd_check_firewall(x, s, &checks[n++]);
    admd_check_deployment(s, &st, &checks[n++]);
    admd_check_token(s, &checks[n++]);
    admd_check_clock(s, &st, &checks[n++]);
    admd_check_helpers(x, &checks[n++]);
    admd_check_winfsp(&checks[n++]);
    admd_check_disk(s, &checks[n++]);

    arr = cJSON_AddArrayToObject(r, "checks");
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        struct admd_check *c = &checks[i];
        if (!o)
            break;
        counts[c->verdict]++;
        cJSON_AddStringToObject(o, "check", c->name);
        cJSON_AddStringToObject(o, "verdict", admd_verdict_name(c->verdict));
        cJSON_AddStringToObject(o, "detail", c->detail);
        if (c->verdict == ADMD_OK || !c->fix[0])
            cJSON_AddNullToObject(o, "fix");
        else
            cJSON_AddStringToObject(o, "fix", c->fix);
        cJSON_AddItemToArray(arr, o);
        if (c->verdict == ADMD_FAIL || c->verdict == ADMD_WARNING)
            log_info("doctor: %s: %s: %s", c->name, admd_verdict_name(c->verdict), c->detail);
    }
    cJSON_AddNumberToObject(r, "ok", (double)counts[ADMD_OK]);
    cJSON_AddNumberToObject(r, "warnings", (double)counts[ADMD_WARNING]);
    cJSON_AddNumberToObject(r, "failed", (double)counts[ADMD_FAIL]);
    cJSON_AddNumberToObject(r, "skipped", (double)counts[ADMD_SKIPPED]);
    cJSON_AddNumberToObject(r, "duration_ms", (double)(plat_monotonic_ms() - t0));
    free(s);
    return 0;
}
