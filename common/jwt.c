/*
 * jwt.c - the JWT verifier: PEM key loading, strict compact-JWS parsing, signature checks
 * over OpenSSL EVP, and the claim rules (exp, nbf) and accessors. See jwt.h for the rules.
 */
#include "jwt.h"

#include <limits.h>
#include <math.h> /* isfinite (a macro: no libm needed) */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fsutil.h"
#include "plat.h"

#define JWT_RSA_MIN_BITS  1024
#define JWT_RSA_MAX_BITS  16384
#define JWT_ES256_SIG_LEN 64
#define JWT_MAX_SAFE_INT  9007199254740992.0 /* 2^53 */

struct jwt_key {
    EVP_PKEY *pkey;
    enum jwt_key_type type;
    int bits;
};

/* ------------------------------------------------------------------------------------------
 * Algorithms
 */

static const struct {
    enum jwt_alg alg;
    const char *name;
} jwt_algs[] = {
    {JWT_ALG_RS256, "RS256"}, {JWT_ALG_RS384, "RS384"}, {JWT_ALG_RS512, "RS512"},
    {JWT_ALG_PS256, "PS256"}, {JWT_ALG_ES256, "ES256"},
};

#define JWT_RSA_ALGS (JWT_ALG_RS256 | JWT_ALG_RS384 | JWT_ALG_RS512 | JWT_ALG_PS256)
#define JWT_EC_ALGS  (JWT_ALG_ES256)

const char *jwt_alg_name(enum jwt_alg alg)
{
    for (size_t i = 0; i < sizeof(jwt_algs) / sizeof(jwt_algs[0]); i++) {
        if (jwt_algs[i].alg == alg)
            return jwt_algs[i].name;
    }
    return "?";
}

enum jwt_alg jwt_alg_from_name(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof(jwt_algs) / sizeof(jwt_algs[0]); i++) {
        if (strcmp(jwt_algs[i].name, name) == 0)
            return jwt_algs[i].alg;
    }
    return 0;
}

int jwt_algs_parse(const char *list, unsigned *out, struct err *e)
{
    unsigned bits = 0;
    const char *p = list;

    if (!list || !out)
        return err_set(e, ERR_INVALID, "JWT algorithm list: missing argument");
    while (*p) {
        char name[16];
        size_t n = strcspn(p, ", \t");
        if (n == 0) {
            p++;
            continue;
        }
        if (n >= sizeof(name))
            return err_set(e, ERR_INVALID,
                           "unknown JWT algorithm '%.*s...' (known: RS256, RS384, RS512, "
                           "PS256, ES256)",
                           16, p);
        memcpy(name, p, n);
        name[n] = '\0';
        enum jwt_alg a = jwt_alg_from_name(name);
        if (!a)
            return err_set(e, ERR_INVALID,
                           "unknown JWT algorithm '%s' (known: RS256, RS384, RS512, PS256, "
                           "ES256; none and HMAC are never accepted)",
                           name);
        bits |= (unsigned)a;
        p += n;
    }
    if (!bits)
        return err_set(e, ERR_INVALID, "the JWT algorithm list is empty");
    *out = bits;
    return 0;
}

/*
 * Copies an attacker-chosen algorithm name into buf for an error message, only when it is
 * short and made of harmless characters.
 */
static const char *printable_alg(const char *alg, char *buf, size_t cap)
{
    size_t n = strlen(alg);
    if (n == 0)
        return "(empty)";
    if (n >= cap)
        return "(unprintable)";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)alg[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '+' || c == '.'))
            return "(unprintable)";
    }
    memcpy(buf, alg, n + 1);
    return buf;
}

/* ------------------------------------------------------------------------------------------
 * Keys
 */

static int classify_key(EVP_PKEY *pkey, struct jwt_key *k, struct err *e)
{
    int rc = 0;
    BIGNUM *bn_e = NULL;
    EVP_PKEY_CTX *pctx = NULL;

    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        k->type = JWT_KEY_RSA;
        k->bits = EVP_PKEY_get_bits(pkey);
        if (k->bits < JWT_RSA_MIN_BITS || k->bits > JWT_RSA_MAX_BITS) {
            rc = err_set(e, ERR_INVALID, "RSA key of %d bits is outside %d..%d bits", k->bits,
                         JWT_RSA_MIN_BITS, JWT_RSA_MAX_BITS);
            goto out;
        }
        /*
         * e = 3 is fine and Kasm uses it; e = 1 (or an even e) would make signatures
         * trivial or meaningless. EVP_PKEY_public_check() is NOT used for RSA: its
         * SP 800-56B check refuses e < 65537.
         */
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &bn_e) != 1) {
            rc = err_set(e, ERR_INVALID, "cannot read the RSA public exponent");
            goto out;
        }
        if (!BN_is_odd(bn_e) || BN_is_one(bn_e)) {
            rc = err_set(e, ERR_INVALID, "RSA public exponent must be odd and at least 3");
            goto out;
        }
        break;
    case EVP_PKEY_EC: {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
            (strcmp(group, SN_X9_62_prime256v1) != 0 && strcmp(group, "P-256") != 0)) {
            rc = err_set(e, ERR_UNSUPPORTED,
                         "EC key is not on the P-256 curve (only ES256 is supported)");
            goto out;
        }
        pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!pctx || EVP_PKEY_public_check(pctx) != 1) {
            rc = err_set(e, ERR_INVALID, "EC public key is not a valid P-256 point");
            goto out;
        }
        k->type = JWT_KEY_EC_P256;
        k->bits = 256;
        break;
    }
    case EVP_PKEY_RSA_PSS:
        rc = err_set(e, ERR_UNSUPPORTED,
                     "RSA-PSS-restricted keys are not supported; use a plain RSA public key");
        goto out;
    default:
        rc = err_set(e, ERR_UNSUPPORTED,
                     "unsupported key type (only RSA and EC P-256 public keys are accepted)");
        goto out;
    }
out:
    BN_free(bn_e);
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

/* Decodes one PEM block's DER into a public key. Returns 1 if the label is not a key. */
static int pem_block_to_pkey(const char *label, const unsigned char *der, long dlen, EVP_PKEY **out,
                             struct err *e)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;

    *out = NULL;
    if (strcmp(label, "PUBLIC KEY") == 0) {
        pkey = d2i_PUBKEY(NULL, &p, dlen);
    } else if (strcmp(label, "RSA PUBLIC KEY") == 0) {
        pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, dlen);
    } else if (strcmp(label, "CERTIFICATE") == 0) {
        cert = d2i_X509(NULL, &p, dlen);
        if (cert)
            pkey = X509_get_pubkey(cert);
    } else if (strstr(label, "PRIVATE KEY")) {
        return err_set(e, ERR_INVALID,
                       "found a private key; the JWT key file must hold the deployment's public "
                       "key or certificate");
    } else {
        return 1;
    }
    if (!pkey || p != der + dlen) {
        EVP_PKEY_free(pkey);
        X509_free(cert);
        return err_set(e, ERR_PARSE, "malformed %s block", label);
    }
    X509_free(cert);
    *out = pkey;
    return 0;
}

int jwt_key_load_pem(struct jwt_key **out, const void *pem, size_t len, struct err *e)
{
    int rc = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    struct jwt_key *k = NULL;

    if (!out || !pem)
        return err_set(e, ERR_INVALID, "loading JWT key: missing argument");
    *out = NULL;
    if (len > JWT_MAX_KEY_FILE) {
        rc = err_set(e, ERR_TOO_LARGE, "JWT key PEM is larger than %d bytes", JWT_MAX_KEY_FILE);
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = err_set(e, ERR_NOMEM, "out of memory loading the JWT key");
        goto out;
    }
    for (;;) {
        char *label = NULL, *header = NULL;
        unsigned char *der = NULL;
        long dlen = 0;
        if (!PEM_read_bio(bio, &label, &header, &der, &dlen)) {
            rc = err_set(e, ERR_PARSE,
                         "no usable PEM block (expected PUBLIC KEY, RSA PUBLIC KEY or "
                         "CERTIFICATE)");
            goto out;
        }
        rc = pem_block_to_pkey(label, der, dlen, &pkey, e);
        if (der)
            OPENSSL_cleanse(der, (size_t)dlen);
        OPENSSL_free(label);
        OPENSSL_free(header);
        OPENSSL_free(der);
        if (rc < 0)
            goto out;
        if (rc == 0)
            break;
        /* rc == 1: another kind of block (EC PARAMETERS, ...): keep looking. */
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        rc = err_set(e, ERR_NOMEM, "out of memory loading the JWT key");
        goto out;
    }
    rc = classify_key(pkey, k, e);
    if (rc < 0)
        goto out;
    k->pkey = pkey;
    pkey = NULL;
    *out = k;
    k = NULL;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    free(k);
    BIO_free(bio);
    return rc;
}

int jwt_key_load_file(struct jwt_key **out, const char *path, struct err *e)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (!out || !path)
        return err_set(e, ERR_INVALID, "loading JWT key: missing argument");
    *out = NULL;
    rc = fs_read_all(path, JWT_MAX_KEY_FILE, &buf, &len, e);
    if (rc == 0)
        rc = jwt_key_load_pem(out, buf, len, e);
    if (rc < 0)
        err_prefix(e, "loading JWT key %s", path);
    free(buf);
    return rc;
}

void jwt_key_free(struct jwt_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

enum jwt_key_type jwt_key_type(const struct jwt_key *key)
{
    return key ? key->type : 0;
}

int jwt_key_bits(const struct jwt_key *key)
{
    return key ? key->bits : 0;
}

/* ------------------------------------------------------------------------------------------
 * Parsing
 */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Strict base64url (RFC 7515 appendix C): the url-safe alphabet only, no padding, no
 * whitespace, and the unused low bits of the last character must be zero so that every
 * byte string has exactly one encoding. The output is NUL-terminated (for JSON).
 */
static int b64url_decode(const char *in, size_t n, unsigned char **out, size_t *out_len,
                         const char *what, struct err *e)
{
    size_t rem = n % 4;
    size_t cap = n / 4 * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
    unsigned char *buf;
    size_t o = 0;
    uint32_t acc = 0;
    int nbits = 0;

    *out = NULL;
    *out_len = 0;
    if (rem == 1)
        return err_set(e, ERR_PARSE, "token %s is not valid base64url (bad length)", what);
    buf = malloc(cap + 1);
    if (!buf)
        return err_set(e, ERR_NOMEM, "out of memory decoding the token");
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return err_set(e, ERR_PARSE, "token %s is not valid base64url (bad character)", what);
        }
        acc = (acc << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            buf[o++] = (unsigned char)(acc >> nbits);
            acc &= (1u << nbits) - 1;
        }
    }
    if (acc != 0) {
        free(buf);
        return err_set(e, ERR_PARSE, "token %s is not canonical base64url (trailing bits)", what);
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

static bool has_duplicate_members(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next) {
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return true;
        }
    }
    return false;
}

/* Parses decoded JSON text that must be one object and nothing else. */
static int parse_object(const unsigned char *text, size_t len, cJSON **out, const char *what,
                        struct err *e)
{
    const char *end = NULL;
    cJSON *json;

    *out = NULL;
    if (memchr(text, '\0', len))
        return err_set(e, ERR_PARSE, "token %s contains a NUL byte", what);
    json = cJSON_ParseWithOpts((const char *)text, &end, 1);
    if (!json)
        return err_set(e, ERR_PARSE, "token %s is not valid JSON", what);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return err_set(e, ERR_PARSE, "token %s is not a JSON object", what);
    }
    if (has_duplicate_members(json)) {
        cJSON_Delete(json);
        return err_set(e, ERR_PARSE, "token %s has a duplicate member name", what);
    }
    *out = json;
    return 0;
}

/* A token split into its parts, the base64url already decoded. */
struct jwt_parts {
    cJSON *header;
    const char *alg; /* points into header */
    unsigned char *payload;
    size_t payload_len;
    unsigned char *sig;
    size_t sig_len;
    size_t signing_len; /* bytes of "header.payload", the signed input */
};

static void parts_free(struct jwt_parts *p)
{
    cJSON_Delete(p->header);
    free(p->payload);
    free(p->sig);
    memset(p, 0, sizeof(*p));
}

static int parse_parts(const char *token, size_t len, struct jwt_parts *p, struct err *e)
{
    const char *dot1, *dot2, *seg2, *seg3;
    unsigned char *hdr = NULL;
    size_t hdr_len = 0;
    const cJSON *item;
    int rc;

    memset(p, 0, sizeof(*p));
    if (!token)
        return err_set(e, ERR_INVALID, "no token given");
    if (len > JWT_MAX_TOKEN_LEN)
        return err_set(e, ERR_TOO_LARGE, "token is longer than %d bytes", JWT_MAX_TOKEN_LEN);
    if (len == 0)
        return err_set(e, ERR_PARSE, "token is empty");
    dot1 = memchr(token, '.', len);
    if (!dot1)
        return err_set(e, ERR_PARSE, "token does not have three dot-separated parts");
    seg2 = dot1 + 1;
    dot2 = memchr(seg2, '.', len - (size_t)(seg2 - token));
    if (!dot2)
        return err_set(e, ERR_PARSE, "token does not have three dot-separated parts");
    seg3 = dot2 + 1;
    if (memchr(seg3, '.', len - (size_t)(seg3 - token)))
        return err_set(e, ERR_PARSE, "token has more than three dot-separated parts");

    rc = b64url_decode(token, (size_t)(dot1 - token), &hdr, &hdr_len, "header", e);
    if (rc < 0)
        goto out;
    rc = parse_object(hdr, hdr_len, &p->header, "header", e);
    if (rc < 0)
        goto out;
    item = cJSON_GetObjectItemCaseSensitive(p->header, "alg");
    if (!cJSON_IsString(item) || !item->valuestring) {
        rc = err_set(e, ERR_PARSE, "token header has no \"alg\" string");
        goto out;
    }
    p->alg = item->valuestring;
    item = cJSON_GetObjectItemCaseSensitive(p->header, "typ");
    if (item && !cJSON_IsString(item)) {
        rc = err_set(e, ERR_PARSE, "token header \"typ\" is not a string");
        goto out;
    }
    rc = b64url_decode(seg2, (size_t)(dot2 - seg2), &p->payload, &p->payload_len, "payload", e);
    if (rc < 0)
        goto out;
    rc = b64url_decode(seg3, len - (size_t)(seg3 - token), &p->sig, &p->sig_len, "signature", e);
    if (rc < 0)
        goto out;
    p->signing_len = (size_t)(dot2 - token);
out:
    free(hdr);
    if (rc < 0)
        parts_free(p);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Verification
 */

static int check_alg(const struct jwt_key *key, const struct jwt_parts *p, unsigned allowed,
                     enum jwt_alg *out, struct err *e)
{
    char buf[24];
    enum jwt_alg alg = jwt_alg_from_name(p->alg);
    unsigned family = key->type == JWT_KEY_RSA ? JWT_RSA_ALGS : JWT_EC_ALGS;
    unsigned dflt = key->type == JWT_KEY_RSA ? JWT_ALG_RS256 : JWT_ALG_ES256;
    unsigned effective = (allowed ? allowed : dflt) & family;
    const char *kname = key->type == JWT_KEY_RSA ? "RSA" : "EC P-256";

    if (cJSON_GetObjectItemCaseSensitive(p->header, "crit"))
        return err_set(e, ERR_AUTH,
                       "token header has \"crit\" extensions, which are not "
                       "supported");
    if (!alg) {
        const char *shown = printable_alg(p->alg, buf, sizeof(buf));
        if (strcmp(p->alg, "none") == 0 || strcmp(p->alg, "None") == 0 ||
            strcmp(p->alg, "NONE") == 0)
            return err_set(e, ERR_AUTH, "unsigned token (alg none) is never accepted");
        if (strncmp(p->alg, "HS", 2) == 0)
            return err_set(e, ERR_AUTH, "HMAC token (alg %s) is never accepted", shown);
        return err_set(e, ERR_AUTH, "unsupported token algorithm %s", shown);
    }
    if (!(alg & family))
        return err_set(e, ERR_AUTH, "token algorithm %s does not match the %s key",
                       jwt_alg_name(alg), kname);
    if (!(alg & effective))
        return err_set(e, ERR_AUTH, "token algorithm %s is not allowed by the configuration",
                       jwt_alg_name(alg));
    *out = alg;
    return 0;
}

/* Converts a JWS ES256 signature (R || S, 32 bytes each) into DER for EVP. */
static int es256_to_der(const unsigned char *sig, size_t len, unsigned char **der, int *der_len,
                        struct err *e)
{
    int rc = 0;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;

    *der = NULL;
    if (len != JWT_ES256_SIG_LEN)
        return err_set(e, ERR_AUTH, "ES256 signature must be %d bytes, not %zu", JWT_ES256_SIG_LEN,
                       len);
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, JWT_ES256_SIG_LEN / 2, NULL);
    s = BN_bin2bn(sig + JWT_ES256_SIG_LEN / 2, JWT_ES256_SIG_LEN / 2, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        rc = err_set(e, ERR_NOMEM, "out of memory checking the signature");
        goto out;
    }
    r = s = NULL; /* owned by es now */
    *der_len = i2d_ECDSA_SIG(es, der);
    if (*der_len <= 0) {
        *der = NULL;
        rc = err_set(e, ERR_AUTH, "ES256 signature cannot be encoded");
        goto out;
    }
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

static int verify_signature(const struct jwt_key *key, enum jwt_alg alg, const char *msg,
                            size_t msg_len, const unsigned char *sig, size_t sig_len, struct err *e)
{
    int rc = 0;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *der = NULL;
    int der_len = 0;
    const EVP_MD *md = alg == JWT_ALG_RS384   ? EVP_sha384()
                       : alg == JWT_ALG_RS512 ? EVP_sha512()
                                              : EVP_sha256();

    if (alg == JWT_ALG_ES256) {
        rc = es256_to_der(sig, sig_len, &der, &der_len, e);
        if (rc < 0)
            goto out;
        sig = der;
        sig_len = (size_t)der_len;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) {
        rc = err_set(e, ERR_AUTH, "token signature has the wrong length for the %d-bit key",
                     key->bits);
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) != 1) {
        rc = err_set(e, ERR_INTERNAL, "cannot set up signature verification");
        goto out;
    }
    if (alg == JWT_ALG_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)) {
        rc = err_set(e, ERR_INTERNAL, "cannot set up RSA-PSS verification");
        goto out;
    }
    if (EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)msg, msg_len) != 1) {
        rc = err_set(e, ERR_AUTH, "token signature does not verify");
        goto out;
    }
out:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* floor(v) clamped to int64_t (without libm). v must be finite. */
static int64_t floor_to_int64(double v)
{
    if (v >= 9.2e18)
        return INT64_MAX;
    if (v <= -9.2e18)
        return INT64_MIN;
    int64_t t = (int64_t)v; /* truncates toward zero */
    if ((double)t > v)
        t--;
    return t;
}

static int check_times(const cJSON *payload, int64_t now, int64_t leeway, struct err *e)
{
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(payload, "nbf");
    double dnow = (double)now, dlee = (double)leeway;

    if (!exp)
        return err_set(e, ERR_AUTH, "token has no exp claim");
    if (!cJSON_IsNumber(exp) || !isfinite(exp->valuedouble))
        return err_set(e, ERR_AUTH, "token exp claim is not a number");
    if (dnow >= exp->valuedouble + dlee)
        return err_set(e, ERR_EXPIRED, "token expired at %lld (now %lld, leeway %lld s)",
                       (long long)floor_to_int64(exp->valuedouble), (long long)now,
                       (long long)leeway);
    if (nbf) {
        if (!cJSON_IsNumber(nbf) || !isfinite(nbf->valuedouble))
            return err_set(e, ERR_AUTH, "token nbf claim is not a number");
        if (dnow + dlee < nbf->valuedouble)
            return err_set(e, ERR_AUTH, "token not yet valid (nbf %lld, now %lld, leeway %lld s)",
                           (long long)floor_to_int64(nbf->valuedouble), (long long)now,
                           (long long)leeway);
    }
    return 0;
}

static void fill_claims(struct jwt_claims *claims, cJSON *payload, enum jwt_alg alg)
{
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
    claims->payload = payload;
    claims->alg = alg;
    claims->has_exp = cJSON_IsNumber(exp) && isfinite(exp->valuedouble);
    claims->exp = claims->has_exp ? floor_to_int64(exp->valuedouble) : 0;
}

int jwt_verify(const struct jwt_key *key, const char *token, size_t len,
               const struct jwt_verify_opts *opts, struct jwt_claims *claims, struct err *e)
{
    struct jwt_verify_opts dflt = JWT_VERIFY_OPTS_INIT;
    struct jwt_parts p;
    cJSON *payload = NULL;
    enum jwt_alg alg = 0;
    int rc;

    memset(&p, 0, sizeof(p));
    if (claims)
        memset(claims, 0, sizeof(*claims));
    if (!key)
        return err_set(e, ERR_INVALID, "no JWT key loaded");
    if (!opts)
        opts = &dflt;
    if (opts->leeway < 0 || opts->leeway > 86400)
        return err_set(e, ERR_INVALID, "JWT leeway must be 0..86400 seconds");
    rc = parse_parts(token, len, &p, e);
    if (rc < 0)
        goto out;
    rc = check_alg(key, &p, opts->allowed_algs, &alg, e);
    if (rc < 0)
        goto out;
    rc = verify_signature(key, alg, token, p.signing_len, p.sig, p.sig_len, e);
    if (rc < 0)
        goto out;
    /* Only now, with the signature good, is the payload JSON parsed. */
    rc = parse_object(p.payload, p.payload_len, &payload, "payload", e);
    if (rc < 0)
        goto out;
    rc = check_times(payload, opts->now ? opts->now : plat_wall_time(), opts->leeway, e);
    if (rc < 0)
        goto out;
    if (claims) {
        fill_claims(claims, payload, alg);
        payload = NULL;
    }
out:
    cJSON_Delete(payload);
    parts_free(&p);
    return rc;
}

int jwt_decode_unverified(const char *token, size_t len, struct jwt_claims *claims, struct err *e)
{
    struct jwt_parts p;
    cJSON *payload = NULL;
    int rc;

    if (!claims)
        return err_set(e, ERR_INVALID, "decoding token: missing argument");
    memset(claims, 0, sizeof(*claims));
    rc = parse_parts(token, len, &p, e);
    if (rc < 0)
        return rc;
    rc = parse_object(p.payload, p.payload_len, &payload, "payload", e);
    if (rc == 0)
        fill_claims(claims, payload, jwt_alg_from_name(p.alg));
    parts_free(&p);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Claims
 */

void jwt_claims_free(struct jwt_claims *claims)
{
    if (!claims)
        return;
    cJSON_Delete(claims->payload);
    memset(claims, 0, sizeof(*claims));
}

static const cJSON *claim(const struct jwt_claims *claims, const char *name)
{
    if (!claims || !claims->payload || !name)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(claims->payload, name);
}

const char *jwt_claim_string(const struct jwt_claims *claims, const char *name)
{
    const cJSON *item = claim(claims, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

int jwt_claim_number(const struct jwt_claims *claims, const char *name, double *out)
{
    const cJSON *item = claim(claims, name);
    if (!item)
        return ERR_NOT_FOUND;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return ERR_INVALID;
    *out = item->valuedouble;
    return 0;
}

static bool is_safe_int(double v)
{
    return isfinite(v) && v <= JWT_MAX_SAFE_INT && v >= -JWT_MAX_SAFE_INT &&
           (double)(int64_t)v == v;
}

int jwt_claim_int(const struct jwt_claims *claims, const char *name, int64_t *out)
{
    const cJSON *item = claim(claims, name);
    if (!item)
        return ERR_NOT_FOUND;
    if (!cJSON_IsNumber(item) || !is_safe_int(item->valuedouble))
        return ERR_INVALID;
    *out = (int64_t)item->valuedouble;
    return 0;
}

bool jwt_claims_has_authorization(const struct jwt_claims *claims, int64_t n)
{
    const cJSON *list = claim(claims, "authorizations");
    const cJSON *item;

    if (!cJSON_IsArray(list))
        return false;
    cJSON_ArrayForEach(item, list)
    {
        if (cJSON_IsNumber(item) && is_safe_int(item->valuedouble) &&
            (int64_t)item->valuedouble == n)
            return true;
    }
    return false;
}
