/*
 * test_jwt.c - the JWT verifier (common/jwt.c): key loading in every PEM form, the accepted
 * algorithms per key type, every classic attack (alg none, HMAC key confusion, algorithm
 * swaps, tampering), strict base64url and JSON, the exp/nbf edges, size caps, claims
 * accessors and the unverified decoder.
 *
 * Keys are generated at start-up with OpenSSL and tokens are signed here, so the test runs
 * the same natively and under Wine. Run as `test_jwt --oracle DIR` it instead checks every
 * token of the PyJWT-made corpus in DIR (tests/oracle/mint_tokens.py) against its verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "unit.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "err.h"
#include "fsutil.h"
#include "jwt.h"

#define NOW ((int64_t)1700000000)

/* ------------------------------------------------------------------------------------------
 * Fixtures: keys made once per run
 */

struct fixture {
    EVP_PKEY *rsa;       /* 2048, e = 65537 */
    EVP_PKEY *rsa3;      /* 2048, e = 3 */
    EVP_PKEY *rsa_other; /* a second RSA key: "wrong key" */
    EVP_PKEY *ec;        /* P-256 */
    EVP_PKEY *ec_other;
    char *rsa_spki; /* PEM of rsa's public key */
    struct jwt_key *k_rsa, *k_rsa3, *k_ec;
};

static struct fixture F;

static EVP_PKEY *gen_rsa(unsigned bits, unsigned long exponent)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *bn = BN_new();
    if (!ctx || !bn || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) != 1 || BN_set_word(bn, exponent) != 1 ||
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1)
        pkey = NULL;
    BN_free(bn);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *gen_ec(const char *curve)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

/* Runs a PEM writer on a memory BIO and returns the text (malloc). */
static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)n + 1);
    if (out) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(bio);
    return out;
}

static char *pem_spki(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    return bio_to_string(bio);
}

static char *pem_pkcs1(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    int n = i2d_PublicKey(pkey, &der);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(n > 0);
    assert_true(PEM_write_bio(bio, "RSA PUBLIC KEY", "", der, n) > 0);
    OPENSSL_free(der);
    return bio_to_string(bio);
}

static char *pem_cert(EVP_PKEY *pkey)
{
    X509 *x = X509_new();
    X509_NAME *name;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kasm-test", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    X509_free(x);
    return bio_to_string(bio);
}

static struct jwt_key *load_pem(const char *pem)
{
    struct jwt_key *k = NULL;
    struct err e = ERR_INIT;
    int rc = jwt_key_load_pem(&k, pem, strlen(pem), &e);
    if (rc != 0)
        print_error("key load failed: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return k;
}

static struct jwt_key *load_spki(EVP_PKEY *pkey)
{
    char *pem = pem_spki(pkey);
    struct jwt_key *k = load_pem(pem);
    free(pem);
    return k;
}

static int setup_keys(void **state)
{
    (void)state;
    F.rsa = gen_rsa(2048, 65537);
    F.rsa3 = gen_rsa(2048, 3);
    F.rsa_other = gen_rsa(2048, 65537);
    F.ec = gen_ec("P-256");
    F.ec_other = gen_ec("P-256");
    if (!F.rsa || !F.rsa3 || !F.rsa_other || !F.ec || !F.ec_other)
        return -1;
    F.rsa_spki = pem_spki(F.rsa);
    F.k_rsa = load_spki(F.rsa);
    F.k_rsa3 = load_spki(F.rsa3);
    F.k_ec = load_spki(F.ec);
    return 0;
}

static int teardown_keys(void **state)
{
    (void)state;
    jwt_key_free(F.k_rsa);
    jwt_key_free(F.k_rsa3);
    jwt_key_free(F.k_ec);
    free(F.rsa_spki);
    EVP_PKEY_free(F.rsa);
    EVP_PKEY_free(F.rsa3);
    EVP_PKEY_free(F.rsa_other);
    EVP_PKEY_free(F.ec);
    EVP_PKEY_free(F.ec_other);
    memset(&F, 0, sizeof(F));
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Token minting (test side: an encoder and signer of its own)
 */

static char *b64url(const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0, i = 0;
    assert_non_null(out);
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s.%s", a, b, c);
    return out;
}

/* Signs msg as alg with pkey (asymmetric) or secret (HS*); returns the raw signature. */
static unsigned char *sign_raw(EVP_PKEY *pkey, const char *alg, const void *secret,
                               size_t secret_len, const char *msg, size_t *sig_len)
{
    const char *mdname = strstr(alg, "384") ? "SHA384" : strstr(alg, "512") ? "SHA512" : "SHA256";
    unsigned char *sig = NULL;

    if (alg[0] == 'H') {
        sig = malloc(EVP_MAX_MD_SIZE);
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, mdname, NULL, secret, secret_len,
                                  (const unsigned char *)msg, strlen(msg), sig, EVP_MAX_MD_SIZE,
                                  sig_len));
        return sig;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t n = 0;
    assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, mdname, NULL, NULL, pkey, NULL), 1);
    if (alg[0] == 'P') {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)msg, strlen(msg)), 1);
    sig = malloc(n);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    if (alg[0] == 'E') { /* DER -> R || S */
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        unsigned char *raw = malloc(64);
        assert_non_null(es);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        free(sig);
        sig = raw;
        n = 64;
    }
    *sig_len = n;
    return sig;
}

/*
 * A token with the given header and payload JSON, signed as sign_alg with pkey (or secret
 * for HS*); sign_alg NULL leaves the signature empty.
 */
static char *mint_ex(EVP_PKEY *pkey, const char *sign_alg, const void *secret, size_t secret_len,
                     const char *header, const char *payload)
{
    char *h = b64url_str(header), *p = b64url_str(payload), *s;
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    char *tok;
    snprintf(input, n, "%s.%s", h, p);
    if (sign_alg) {
        size_t sig_len = 0;
        unsigned char *sig = sign_raw(pkey, sign_alg, secret, secret_len, input, &sig_len);
        s = b64url(sig, sig_len);
        free(sig);
    } else {
        s = calloc(1, 1);
    }
    tok = concat3(h, p, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

static char *mint(EVP_PKEY *pkey, const char *alg, const char *payload)
{
    char header[64];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    return mint_ex(pkey, alg, NULL, 0, header, payload);
}

/* A Kasm server-agent style payload expiring at exp. */
static char *payload_exp(int64_t exp)
{
    char *out = malloc(160);
    snprintf(out, 160,
             "{\"server_id\":\"0123456789abcdef0123456789abcdef\",\"authorizations\":[70],"
             "\"exp\":%lld}",
             (long long)exp);
    return out;
}

static int verify_opts(const struct jwt_key *k, const char *tok, int64_t now, int64_t leeway,
                       unsigned algs, struct jwt_claims *c, struct err *e)
{
    struct jwt_verify_opts o = JWT_VERIFY_OPTS_INIT;
    o.now = now;
    o.leeway = leeway;
    o.allowed_algs = algs;
    return jwt_verify(k, tok, strlen(tok), &o, c, e);
}

static int verify(const struct jwt_key *k, const char *tok, struct err *e)
{
    return verify_opts(k, tok, NOW, JWT_DEFAULT_LEEWAY, 0, NULL, e);
}

/* The error message must not quote any 8-byte run of the token. */
static void assert_msg_clean(const char *msg, const char *tok)
{
    size_t n = strlen(tok);
    char win[9];
    assert_true(strlen(msg) > 0);
    for (size_t i = 0; i + 8 <= n; i++) {
        memcpy(win, tok + i, 8);
        win[8] = '\0';
        if (strstr(msg, win)) {
            print_error("message quotes the token: %s\n", msg);
            fail();
        }
    }
}

static void expect_code(const struct jwt_key *k, const char *tok, int code)
{
    struct err e = ERR_INIT;
    struct jwt_claims c = {0};
    int rc = verify_opts(k, tok, NOW, JWT_DEFAULT_LEEWAY, 0, &c, &e);
    if (rc != code)
        print_error("expected %s, got %s (%s)\n", err_code_name(code), err_code_name(rc), e.msg);
    assert_int_equal(rc, code);
    if (code == 0) {
        assert_non_null(c.payload);
        jwt_claims_free(&c);
    } else {
        assert_null(c.payload);
        assert_msg_clean(e.msg, tok);
    }
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    memcpy(out, s, n);
    return out;
}

/* Replaces the character at pos with a different base64url character. */
static void flip_char(char *tok, size_t pos)
{
    tok[pos] = tok[pos] == 'A' ? 'B' : 'A';
}

/* ------------------------------------------------------------------------------------------
 * Acceptance
 */

static void rs256_valid_token_is_accepted(void **state)
{
    struct err e = ERR_INIT;
    struct jwt_claims c = {0};
    char *pl = payload_exp(NOW + 4 * 3600);
    char *tok = mint(F.rsa, "RS256", pl);
    (void)state;

    assert_int_equal(verify_opts(F.k_rsa, tok, NOW, 60, 0, &c, &e), 0);
    assert_int_equal(e.code, 0);
    assert_non_null(c.payload);
    assert_int_equal(c.alg, JWT_ALG_RS256);
    assert_true(c.has_exp);
    assert_int_equal(c.exp, NOW + 4 * 3600);
    assert_string_equal(jwt_claim_string(&c, "server_id"), "0123456789abcdef0123456789abcdef");
    assert_true(jwt_claims_has_authorization(&c, 70));
    jwt_claims_free(&c);
    assert_null(c.payload);
    /* A NULL claims pointer only returns the verdict. */
    assert_int_equal(verify(F.k_rsa, tok, &e), 0);
    free(tok);
    free(pl);
}

static void null_options_use_wall_clock_and_defaults(void **state)
{
    struct err e = ERR_INIT;
    char *fresh = payload_exp(time(NULL) + 3600), *stale = payload_exp(NOW);
    char *t1 = mint(F.rsa, "RS256", fresh), *t2 = mint(F.rsa, "RS256", stale);
    char *t3 = mint(F.rsa, "RS384", fresh);
    (void)state;

    assert_int_equal(jwt_verify(F.k_rsa, t1, strlen(t1), NULL, NULL, &e), 0);
    assert_int_equal(jwt_verify(F.k_rsa, t2, strlen(t2), NULL, NULL, &e), ERR_EXPIRED);
    assert_int_equal(jwt_verify(F.k_rsa, t3, strlen(t3), NULL, NULL, &e), ERR_AUTH);
    free(t1);
    free(t2);
    free(t3);
    free(fresh);
    free(stale);
}

static void es256_token_is_accepted_with_ec_key(void **state)
{
    struct jwt_claims c = {0};
    struct err e = ERR_INIT;
    char *pl = payload_exp(NOW + 600);
    char *tok = mint(F.ec, "ES256", pl);
    char *wrong = mint(F.ec_other, "ES256", pl);
    (void)state;

    assert_int_equal(jwt_key_type(F.k_ec), JWT_KEY_EC_P256);
    assert_int_equal(jwt_key_bits(F.k_ec), 256);
    assert_int_equal(verify_opts(F.k_ec, tok, NOW, 60, 0, &c, &e), 0);
    assert_int_equal(c.alg, JWT_ALG_ES256);
    jwt_claims_free(&c);
    expect_code(F.k_ec, wrong, ERR_AUTH);
    /* A DER signature (what EVP produces) instead of R || S is refused. */
    {
        char header[] = "{\"alg\":\"ES256\"}";
        char *h = b64url_str(header), *p = b64url_str(pl);
        size_t n = strlen(h) + strlen(p) + 2, sl = 0;
        char *input = malloc(n);
        snprintf(input, n, "%s.%s", h, p);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, F.ec, NULL), 1);
        assert_int_equal(EVP_DigestSign(ctx, NULL, &sl, (unsigned char *)input, strlen(input)), 1);
        unsigned char *der = malloc(sl);
        assert_int_equal(EVP_DigestSign(ctx, der, &sl, (unsigned char *)input, strlen(input)), 1);
        char *s = b64url(der, sl);
        char *t = concat3(h, p, s);
        expect_code(F.k_ec, t, ERR_AUTH);
        EVP_MD_CTX_free(ctx);
        free(der);
        free(s);
        free(t);
        free(h);
        free(p);
        free(input);
    }
    free(tok);
    free(wrong);
    free(pl);
}

static void rsa_e3_key_loads_and_verifies(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *tok = mint(F.rsa3, "RS256", pl);
    char *pem1 = pem_pkcs1(F.rsa3), *pem2 = pem_cert(F.rsa3);
    struct jwt_key *k1 = load_pem(pem1), *k2 = load_pem(pem2);
    (void)state;

    assert_int_equal(jwt_key_type(F.k_rsa3), JWT_KEY_RSA);
    assert_int_equal(jwt_key_bits(F.k_rsa3), 2048);
    expect_code(F.k_rsa3, tok, 0);
    expect_code(k1, tok, 0);
    expect_code(k2, tok, 0);
    expect_code(F.k_rsa, tok, ERR_AUTH); /* a different key */
    flip_char(tok, 40);
    expect_code(F.k_rsa3, tok, ERR_AUTH);
    jwt_key_free(k1);
    jwt_key_free(k2);
    free(pem1);
    free(pem2);
    free(tok);
    free(pl);
}

/* ------------------------------------------------------------------------------------------
 * Tampering and attacks
 */

static void tampered_parts_are_rejected(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *tok = mint(F.rsa, "RS256", pl);
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    size_t hpos = 3, ppos = (size_t)(d1 - tok) + 5, spos = (size_t)(d2 - tok) + 10;
    (void)state;

    expect_code(F.k_rsa, tok, 0);
    /* Payload: a claim changed, re-encoded, the old signature kept. */
    {
        char *forged_pl = payload_exp(NOW + 99999);
        char *forged = mint(F.rsa_other, "RS256", forged_pl);
        const char *fd1 = strchr(forged, '.'), *fd2 = strrchr(forged, '.');
        size_t n = strlen(tok) + strlen(forged);
        char *f = malloc(n);
        snprintf(f, n, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(fd2 - fd1), fd1, d2);
        expect_code(F.k_rsa, f, ERR_AUTH);
        free(f);
        free(forged);
        free(forged_pl);
    }
    /* One character changed in each segment in turn. */
    size_t positions[] = {hpos, ppos, spos, strlen(tok) - 5};
    for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
        char *t = dup(tok);
        flip_char(t, positions[i]);
        struct err e = ERR_INIT;
        int rc = verify(F.k_rsa, t, &e);
        /* A changed header may also become invalid JSON: both are rejections. */
        assert_true(rc == ERR_AUTH || (i == 0 && rc == ERR_PARSE));
        assert_msg_clean(e.msg, t);
        free(t);
    }
    /* Signature of another token, and a truncated / empty / doubled signature. */
    {
        char *other_pl = payload_exp(NOW + 601);
        char *other = mint(F.rsa, "RS256", other_pl);
        char *t = dup(tok);
        strcpy(t + (d2 - tok), strrchr(other, '.'));
        expect_code(F.k_rsa, t, ERR_AUTH);
        t[strlen(t) - 2] = '\0'; /* 340 characters: 255 bytes, still canonical */
        expect_code(F.k_rsa, t, ERR_AUTH);
        t[(d2 - tok) + 1] = '\0';
        expect_code(F.k_rsa, t, ERR_AUTH);
        free(t);
        free(other);
        free(other_pl);
    }
    /* The right signature made by the wrong key. */
    {
        char *t = mint(F.rsa_other, "RS256", pl);
        expect_code(F.k_rsa, t, ERR_AUTH);
        free(t);
    }
    free(tok);
    free(pl);
}

static void alg_none_is_always_rejected(void **state)
{
    static const char *const names[] = {"none", "None", "NONE", "nOnE", ""};
    char *pl = payload_exp(NOW + 600);
    (void)state;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char header[64];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", names[i]);
        /* Without a signature... */
        char *t = mint_ex(NULL, NULL, NULL, 0, header, pl);
        expect_code(F.k_rsa, t, ERR_AUTH);
        expect_code(F.k_ec, t, ERR_AUTH);
        free(t);
        /* ...and with a real RS256 signature over the same input. */
        t = mint_ex(F.rsa, "RS256", NULL, 0, header, pl);
        expect_code(F.k_rsa, t, ERR_AUTH);
        free(t);
    }
    /* Even when the caller's allow-list is every algorithm there is. */
    {
        char *t = mint_ex(NULL, NULL, NULL, 0, "{\"alg\":\"none\"}", pl);
        struct err e = ERR_INIT;
        assert_int_equal(verify_opts(F.k_rsa, t, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
        assert_non_null(strstr(e.msg, "none"));
        free(t);
    }
    free(pl);
}

static void hmac_with_public_key_as_secret_is_rejected(void **state)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512"};
    char *pl = payload_exp(NOW + 600);
    char *pkcs1 = pem_pkcs1(F.rsa);
    const char *secrets[] = {F.rsa_spki, pkcs1};
    (void)state;

    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        for (size_t s = 0; s < sizeof(secrets) / sizeof(secrets[0]); s++) {
            char header[64];
            struct err e = ERR_INIT;
            snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", algs[i]);
            char *t = mint_ex(NULL, algs[i], secrets[s], strlen(secrets[s]), header, pl);
            assert_int_equal(verify_opts(F.k_rsa, t, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
            assert_non_null(strstr(e.msg, "HMAC"));
            assert_msg_clean(e.msg, t);
            free(t);
        }
    }
    free(pkcs1);
    free(pl);
}

static void algorithm_must_match_key_type(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *rs = mint(F.rsa, "RS256", pl), *es = mint(F.ec, "ES256", pl);
    char *ps = mint(F.rsa, "PS256", pl);
    /* An EC-signed input labelled RS256 and an RSA-signed one labelled ES256. */
    char *rs_by_ec = mint_ex(F.ec, "ES256", NULL, 0, "{\"alg\":\"RS256\"}", pl);
    char *es_by_rsa = mint_ex(F.rsa, "RS256", NULL, 0, "{\"alg\":\"ES256\"}", pl);
    struct err e = ERR_INIT;
    (void)state;

    assert_int_equal(verify_opts(F.k_ec, rs, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(verify_opts(F.k_ec, ps, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
    assert_int_equal(verify_opts(F.k_rsa, es, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(verify_opts(F.k_ec, rs_by_ec, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
    assert_int_equal(verify_opts(F.k_rsa, es_by_rsa, NOW, 60, ~0u, NULL, &e), ERR_AUTH);
    /* An allow-list with only RSA algorithms leaves nothing for an EC key. */
    assert_int_equal(verify_opts(F.k_ec, es, NOW, 60, JWT_ALG_RS256, NULL, &e), ERR_AUTH);
    free(rs);
    free(es);
    free(ps);
    free(rs_by_ec);
    free(es_by_rsa);
    free(pl);
}

static void other_rsa_algorithms_need_opt_in(void **state)
{
    static const struct {
        const char *alg;
        unsigned allowed;
        int expect;
    } cases[] = {
        {"RS256", 0, 0},
        {"RS384", 0, ERR_AUTH},
        {"RS512", 0, ERR_AUTH},
        {"PS256", 0, ERR_AUTH},
        {"RS384", JWT_ALG_RS256 | JWT_ALG_RS384, 0},
        {"RS512", JWT_ALG_RS512, 0},
        {"PS256", JWT_ALG_PS256, 0},
        {"RS256", JWT_ALG_PS256, ERR_AUTH}, /* the list replaces the default */
        {"PS256", JWT_ALG_RS256 | JWT_ALG_RS384 | JWT_ALG_RS512, ERR_AUTH},
        {"RS512", JWT_ALG_RS384, ERR_AUTH},
    };
    char *pl = payload_exp(NOW + 600);
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = ERR_INIT;
        char *t = mint(F.rsa, cases[i].alg, pl);
        int rc = verify_opts(F.k_rsa, t, NOW, 60, cases[i].allowed, NULL, &e);
        if (rc != cases[i].expect)
            print_error("case %u (%s): %s\n", (unsigned)i, cases[i].alg, e.msg);
        assert_int_equal(rc, cases[i].expect);
        free(t);
    }
    /* PS256 means a salt as long as the hash (RFC 7518 3.5): other salt lengths fail. */
    {
        static const int salts[] = {0, 20, 48, RSA_PSS_SALTLEN_MAX};
        const char *hdr = "{\"alg\":\"PS256\"}";
        char *h = b64url_str(hdr), *p = b64url_str(pl);
        size_t n = strlen(h) + strlen(p) + 2;
        char *input = malloc(n);
        snprintf(input, n, "%s.%s", h, p);
        for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++) {
            EVP_MD_CTX *ctx = EVP_MD_CTX_new();
            EVP_PKEY_CTX *pctx = NULL;
            size_t sl = 0;
            assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, F.rsa, NULL),
                             1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salts[i]), 1);
            assert_int_equal(EVP_DigestSign(ctx, NULL, &sl, (unsigned char *)input, strlen(input)),
                             1);
            unsigned char *sig = malloc(sl);
            assert_int_equal(EVP_DigestSign(ctx, sig, &sl, (unsigned char *)input, strlen(input)),
                             1);
            char *s = b64url(sig, sl), *t = concat3(h, p, s);
            struct err e = ERR_INIT;
            assert_int_equal(verify_opts(F.k_rsa, t, NOW, 60, JWT_ALG_PS256, NULL, &e), ERR_AUTH);
            EVP_MD_CTX_free(ctx);
            free(sig);
            free(s);
            free(t);
        }
        free(h);
        free(p);
        free(input);
    }
    /* A PS256 signature presented as RS256 (same key, same digest) must not pass. */
    {
        char *t = mint_ex(F.rsa, "PS256", NULL, 0, "{\"alg\":\"RS256\"}", pl);
        expect_code(F.k_rsa, t, ERR_AUTH);
        free(t);
    }
    free(pl);
}

static void crit_header_is_rejected(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *t = mint_ex(F.rsa, "RS256", NULL, 0,
                      "{\"alg\":\"RS256\",\"crit\":[\"b64\"],\"b64\":false}", pl);
    char *t2 = mint_ex(F.rsa, "RS256", NULL, 0, "{\"alg\":\"RS256\",\"crit\":[]}", pl);
    char *ok = mint_ex(F.rsa, "RS256", NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"x\":{}}", pl);
    (void)state;
    expect_code(F.k_rsa, t, ERR_AUTH);
    expect_code(F.k_rsa, t2, ERR_AUTH);
    expect_code(F.k_rsa, ok, 0); /* unknown, non-critical header members are ignored */
    free(t);
    free(t2);
    free(ok);
    free(pl);
}

/* ------------------------------------------------------------------------------------------
 * Times
 */

static void exp_and_leeway_edges(void **state)
{
    /* Valid while now < exp + leeway; expired from now >= exp + leeway. */
    static const struct {
        int64_t exp_offset;
        int64_t leeway;
        int expect;
    } cases[] = {
        {3600, 60, 0},
        {0, 60, 0},
        {-59, 60, 0},
        {-60, 60, ERR_EXPIRED},
        {-61, 60, ERR_EXPIRED},
        {-86400, 60, ERR_EXPIRED},
        {1, 0, 0},
        {0, 0, ERR_EXPIRED},
        {-1, 0, ERR_EXPIRED},
        {-299, 300, 0},
        {-300, 300, ERR_EXPIRED},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = ERR_INIT;
        char *pl = payload_exp(NOW + cases[i].exp_offset);
        char *t = mint(F.rsa, "RS256", pl);
        int rc = verify_opts(F.k_rsa, t, NOW, cases[i].leeway, 0, NULL, &e);
        if (rc != cases[i].expect)
            print_error("case %u: %s\n", (unsigned)i, e.msg);
        assert_int_equal(rc, cases[i].expect);
        if (rc == ERR_EXPIRED)
            assert_non_null(strstr(e.msg, "expired"));
        free(t);
        free(pl);
    }
    /* Fractional NumericDate values. */
    {
        char pl[96];
        snprintf(pl, sizeof(pl), "{\"exp\":%lld.5}", (long long)(NOW - 60));
        char *t = mint(F.rsa, "RS256", pl);
        struct jwt_claims c = {0};
        struct err e = ERR_INIT;
        assert_int_equal(verify_opts(F.k_rsa, t, NOW, 60, 0, &c, &e), 0);
        assert_int_equal(c.exp, NOW - 60); /* rounded down */
        jwt_claims_free(&c);
        assert_int_equal(verify_opts(F.k_rsa, t, NOW + 1, 60, 0, NULL, &e), ERR_EXPIRED);
        free(t);
    }
    /* A negative leeway is a caller bug. */
    {
        char *pl = payload_exp(NOW + 600);
        char *t = mint(F.rsa, "RS256", pl);
        struct err e = ERR_INIT;
        assert_int_equal(verify_opts(F.k_rsa, t, NOW, -1, 0, NULL, &e), ERR_INVALID);
        free(t);
        free(pl);
    }
}

static void exp_is_required_and_numeric(void **state)
{
    static const char *const payloads[] = {
        "{\"server_id\":\"x\",\"authorizations\":[70]}",
        "{\"exp\":\"9999999999\"}",
        "{\"exp\":null}",
        "{\"exp\":true}",
        "{\"exp\":[9999999999]}",
        "{\"exp\":{\"t\":9999999999}}",
        "{\"EXP\":9999999999}",
        "{\"exp\":1e999}", /* overflows to infinity */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *t = mint(F.rsa, "RS256", payloads[i]);
        expect_code(F.k_rsa, t, ERR_AUTH);
        free(t);
    }
}

static void nbf_in_the_future_is_rejected(void **state)
{
    static const struct {
        const char *before, *after; /* around the number NOW + offset */
        int64_t offset;
        int expect;
    } cases[] = {
        {"", "", 61, ERR_AUTH},   {"", "", 60, 0},           {"", "", 0, 0},
        {"", "", -3600, 0},       {"\"", "\"", 0, ERR_AUTH}, {"[", "]", 0, ERR_AUTH},
        {"", ".5", 60, ERR_AUTH},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char nbf[48], pl[128];
        snprintf(nbf, sizeof(nbf), "%s%lld%s", cases[i].before, (long long)(NOW + cases[i].offset),
                 cases[i].after);
        snprintf(pl, sizeof(pl), "{\"exp\":%lld,\"nbf\":%s}", (long long)(NOW + 3600), nbf);
        char *t = mint(F.rsa, "RS256", pl);
        struct err e = ERR_INIT;
        int rc = verify_opts(F.k_rsa, t, NOW, 60, 0, NULL, &e);
        if (rc != cases[i].expect)
            print_error("case %u: %s\n", (unsigned)i, e.msg);
        assert_int_equal(rc, cases[i].expect);
        free(t);
    }
}

/* ------------------------------------------------------------------------------------------
 * Structure
 */

static void malformed_base64url_is_rejected(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *good = mint(F.rsa, "RS256", pl);
    size_t d1 = (size_t)(strchr(good, '.') - good), d2 = (size_t)(strrchr(good, '.') - good);
    (void)state;

    expect_code(F.k_rsa, good, 0);
    /* Each mutation: insert or replace one character at a spot in one segment. */
    static const struct {
        int seg; /* 0 header, 1 payload, 2 signature */
        int end; /* 0: at offset 2 of the segment, 1: append at its end */
        char c;
        int replace;
    } muts[] = {
        {0, 1, '=', 0},  {1, 1, '=', 0},    {2, 1, '=', 0}, {0, 0, '+', 1},  {1, 0, '/', 1},
        {2, 0, '+', 1},  {2, 0, '/', 1},    {0, 0, ' ', 0}, {1, 0, '\t', 0}, {2, 0, '\n', 0},
        {2, 1, '\n', 0}, {1, 0, '\x80', 1}, {2, 0, '~', 1}, {0, 0, '%', 1},  {1, 0, '!', 1},
    };
    for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
        size_t start = muts[i].seg == 0 ? 0 : muts[i].seg == 1 ? d1 + 1 : d2 + 1;
        size_t stop = muts[i].seg == 0 ? d1 : muts[i].seg == 1 ? d2 : strlen(good);
        size_t pos = muts[i].end ? stop : start + 2;
        size_t n = strlen(good);
        char *t = malloc(n + 2);
        memcpy(t, good, pos);
        t[pos] = muts[i].c;
        if (muts[i].replace)
            memcpy(t + pos + 1, good + pos + 1, n - pos);
        else
            memcpy(t + pos + 1, good + pos, n - pos + 1);
        struct err e = ERR_INIT;
        int rc = verify(F.k_rsa, t, &e);
        if (rc != ERR_PARSE)
            print_error("mutation %u: %s (%s)\n", (unsigned)i, err_code_name(rc), e.msg);
        assert_int_equal(rc, ERR_PARSE);
        free(t);
    }
    /* Embedded NUL byte, given with an explicit length. */
    {
        size_t n = strlen(good);
        char *t = malloc(n + 1);
        memcpy(t, good, n + 1);
        t[d1 + 3] = '\0';
        struct err e = ERR_INIT;
        assert_int_equal(jwt_verify(F.k_rsa, t, n, NULL, NULL, &e), ERR_PARSE);
        free(t);
    }
    free(good);
    free(pl);
}

static void non_canonical_trailing_bits_are_rejected(void **state)
{
    /*
     * H is {"alg":"RS256"} (20 characters, no spare bits). "e30" is {} with 2 spare bits,
     * "AA" one zero byte with 4 spare bits, "AAA" two bytes with 2 spare bits. A spare bit
     * set gives another string for the same bytes: refused. Well-formed ones reach the
     * signature check (ERR_AUTH: the signature has the wrong length).
     */
    static const struct {
        const char *tok;
        int expect;
    } cases[] = {
        {"eyJhbGciOiJSUzI1NiJ9.e30.AA", ERR_AUTH},     {"eyJhbGciOiJSUzI1NiJ9.e30.AAA", ERR_AUTH},
        {"eyJhbGciOiJSUzI1NiJ9.e31.AA", ERR_PARSE},    {"eyJhbGciOiJSUzI1NiJ9.e33.AA", ERR_PARSE},
        {"eyJhbGciOiJSUzI1NiJ9.e30.AB", ERR_PARSE},    {"eyJhbGciOiJSUzI1NiJ9.e30.AP", ERR_PARSE},
        {"eyJhbGciOiJSUzI1NiJ9.e30.AAB", ERR_PARSE},   {"eyJhbGciOiJSUzI1NiJ9.e30.A", ERR_PARSE},
        {"eyJhbGciOiJSUzI1NiJ9.e30.AAAAA", ERR_PARSE}, {"eyJhbGciOiJSUzI1NiJ9.e30=.AA", ERR_PARSE},
        {"eyJhbGciOiJSUzI1NiJ9.e30.AA==", ERR_PARSE},  {"eyJhbGciOiJSUzI1NiJ9.e30.AA=", ERR_PARSE},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = ERR_INIT;
        int rc = jwt_verify(F.k_rsa, cases[i].tok, strlen(cases[i].tok), NULL, NULL, &e);
        if (rc != cases[i].expect)
            print_error("case %u (%s): %s\n", (unsigned)i, cases[i].tok, e.msg);
        assert_int_equal(rc, cases[i].expect);
    }
    /* The header too: {"alg":"RS256"}  (16 bytes, 4 spare bits) with its last bit set. */
    {
        char *h = b64url_str("{\"alg\":\"RS256\"} ");
        size_t n = strlen(h);
        char buf[64];
        struct err e = ERR_INIT;
        assert_int_equal(n % 4, 2);
        snprintf(buf, sizeof(buf), "%s.e30.AA", h);
        assert_int_equal(jwt_verify(F.k_rsa, buf, strlen(buf), NULL, NULL, &e), ERR_AUTH);
        buf[n - 1] = (char)(buf[n - 1] + 1); /* 'A' -> 'B': sets the lowest spare bit */
        assert_int_equal(jwt_verify(F.k_rsa, buf, strlen(buf), NULL, NULL, &e), ERR_PARSE);
        free(h);
    }
}

static void segment_count_must_be_three(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *good = mint(F.rsa, "RS256", pl);
    char buf[4096];
    const char *sig = strrchr(good, '.') + 1;
    const char *cases[8];
    size_t nc = 0;
    (void)state;

    cases[nc++] = "";
    cases[nc++] = ".";
    cases[nc++] = "..";
    cases[nc++] = "...";
    cases[nc++] = "e30";
    cases[nc++] = "e30.e30";
    for (size_t i = 0; i < nc; i++) {
        struct err e = ERR_INIT;
        assert_int_equal(jwt_verify(F.k_rsa, cases[i], strlen(cases[i]), NULL, NULL, &e),
                         ERR_PARSE);
    }
    /* Two segments (signature dropped) and four (an extra segment appended or inserted). */
    snprintf(buf, sizeof(buf), "%.*s", (int)(strrchr(good, '.') - good), good);
    expect_code(F.k_rsa, buf, ERR_PARSE);
    snprintf(buf, sizeof(buf), "%s.%s", good, sig);
    expect_code(F.k_rsa, buf, ERR_PARSE);
    snprintf(buf, sizeof(buf), "%s.", good);
    expect_code(F.k_rsa, buf, ERR_PARSE);
    snprintf(buf, sizeof(buf), "e30.%s", good);
    expect_code(F.k_rsa, buf, ERR_PARSE);
    free(good);
    free(pl);
}

static void oversized_tokens_are_rejected_before_parsing(void **state)
{
    /* Grow a padding claim until the token is as long as allowed, then one step more. */
    char *pl = malloc(JWT_MAX_TOKEN_LEN);
    char *best = NULL;
    (void)state;

    for (size_t pad = 11900; pad < 12500; pad++) {
        snprintf(pl, JWT_MAX_TOKEN_LEN, "{\"exp\":%lld,\"pad\":\"%0*d\"}", (long long)(NOW + 60),
                 (int)pad, 0);
        char *t = mint(F.rsa, "RS256", pl);
        size_t n = strlen(t);
        if (n <= JWT_MAX_TOKEN_LEN) {
            free(best);
            best = t;
            continue;
        }
        /* First one over the limit: a valid signature, still refused for its size. */
        struct err e = ERR_INIT;
        assert_int_equal(jwt_verify(F.k_rsa, t, n, NULL, NULL, &e), ERR_TOO_LARGE);
        struct jwt_claims c = {0};
        assert_int_equal(jwt_decode_unverified(t, n, &c, &e), ERR_TOO_LARGE);
        free(t);
        break;
    }
    assert_non_null(best);
    assert_true(strlen(best) > JWT_MAX_TOKEN_LEN - 4);
    expect_code(F.k_rsa, best, 0);
    /* The exact edge: JWT_MAX_TOKEN_LEN bytes are parsed, one more byte is not. */
    {
        char *t = malloc(JWT_MAX_TOKEN_LEN + 2);
        struct err e = ERR_INIT;
        size_t n = strlen(best);
        memcpy(t, best, n);
        memset(t + n, 'A', JWT_MAX_TOKEN_LEN + 1 - n);
        assert_int_not_equal(jwt_verify(F.k_rsa, t, JWT_MAX_TOKEN_LEN, NULL, NULL, &e),
                             ERR_TOO_LARGE);
        assert_int_equal(jwt_verify(F.k_rsa, t, JWT_MAX_TOKEN_LEN + 1, NULL, NULL, &e),
                         ERR_TOO_LARGE);
        free(t);
    }
    free(best);
    /* Garbage far over the limit never reaches the parser. */
    {
        size_t n = 1u << 20;
        char *big = malloc(n);
        memset(big, 'A', n);
        struct err e = ERR_INIT;
        assert_int_equal(jwt_verify(F.k_rsa, big, n, NULL, NULL, &e), ERR_TOO_LARGE);
        free(big);
    }
    free(pl);
}

static void json_shape_is_enforced(void **state)
{
    static const struct {
        const char *header;
        const char *payload;
        int expect;
    } cases[] = {
        {"[\"RS256\"]", "{\"exp\":1800000000}", ERR_PARSE},
        {"\"RS256\"", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\"", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\"} x", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"typ\":\"JWT\"}", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":256}", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":null}", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\",\"typ\":1}", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\",\"alg\":\"RS256\"}", "{\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "[1800000000]", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "1800000000", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "{\"exp\":1800000000", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "{\"exp\":1800000000}{}", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "{\"exp\":1699000000,\"exp\":1800000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", "{\"exp\":1800000000,\"exp\":1699000000}", ERR_PARSE},
        {"{\"alg\":\"RS256\"}", " {\"exp\":1800000000} \n", 0},
        {"{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", "{\"exp\":1800000000}", 0},
        {"{\"alg\":\"RS256\"}", "{\"exp\":1800000000,\"a\":{\"a\":1,\"a\":2}}", 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = mint_ex(F.rsa, "RS256", NULL, 0, cases[i].header, cases[i].payload);
        struct err e = ERR_INIT;
        int rc = verify(F.k_rsa, t, &e);
        if (rc != cases[i].expect)
            print_error("case %u: %s (%s)\n", (unsigned)i, err_code_name(rc), e.msg);
        assert_int_equal(rc, cases[i].expect);
        free(t);
    }
    /* A NUL inside the decoded JSON ends nothing early: the token is refused. */
    {
        const char hdr[] = "{\"alg\":\"RS256\"}";
        unsigned char pl[] = "{\"exp\":1800000000}\0{\"x\":1}";
        char *h = b64url_str(hdr), *p = b64url(pl, sizeof(pl) - 1);
        size_t n = strlen(h) + strlen(p) + 2, sl = 0;
        char *input = malloc(n);
        snprintf(input, n, "%s.%s", h, p);
        unsigned char *sig = sign_raw(F.rsa, "RS256", NULL, 0, input, &sl);
        char *s = b64url(sig, sl), *t = concat3(h, p, s);
        expect_code(F.k_rsa, t, ERR_PARSE);
        free(h);
        free(p);
        free(input);
        free(sig);
        free(s);
        free(t);
    }
}

/* ------------------------------------------------------------------------------------------
 * Keys
 */

static void pem_forms_all_load(void **state)
{
    char *pl = payload_exp(NOW + 600);
    char *rs = mint(F.rsa, "RS256", pl), *es = mint(F.ec, "ES256", pl);
    char *pems[] = {pem_spki(F.rsa), pem_pkcs1(F.rsa), pem_cert(F.rsa), NULL};
    (void)state;

    assert_non_null(strstr(pems[0], "BEGIN PUBLIC KEY"));
    assert_non_null(strstr(pems[1], "BEGIN RSA PUBLIC KEY"));
    assert_non_null(strstr(pems[2], "BEGIN CERTIFICATE"));
    for (int i = 0; pems[i]; i++) {
        struct jwt_key *k = load_pem(pems[i]);
        assert_int_equal(jwt_key_type(k), JWT_KEY_RSA);
        assert_int_equal(jwt_key_bits(k), 2048);
        expect_code(k, rs, 0);
        expect_code(k, es, ERR_AUTH);
        jwt_key_free(k);
        free(pems[i]);
    }
    /* EC certificate; text before the block and a non-key block first are skipped. */
    {
        char *cert = pem_cert(F.ec);
        const char *ecparams = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                               "-----END EC PARAMETERS-----\n";
        size_t n = strlen(cert) + strlen(ecparams) + 64;
        char *both = malloc(n);
        snprintf(both, n, "issued by the deployment\n%s%s", ecparams, cert);
        struct jwt_key *k = load_pem(both);
        assert_int_equal(jwt_key_type(k), JWT_KEY_EC_P256);
        expect_code(k, es, 0);
        expect_code(k, rs, ERR_AUTH);
        jwt_key_free(k);
        free(both);
        free(cert);
    }
    /* A key given with an explicit length and no NUL after it. */
    {
        char *pem = pem_spki(F.rsa);
        size_t n = strlen(pem);
        char *copy = malloc(n);
        memcpy(copy, pem, n);
        struct jwt_key *k = NULL;
        struct err e = ERR_INIT;
        assert_int_equal(jwt_key_load_pem(&k, copy, n, &e), 0);
        jwt_key_free(k);
        free(copy);
        free(pem);
    }
    free(rs);
    free(es);
    free(pl);
}

static int load_pem_code(const char *pem, struct err *e)
{
    struct jwt_key *k = (struct jwt_key *)&k; /* must be reset to NULL on failure */
    int rc = jwt_key_load_pem(&k, pem, strlen(pem), e);
    if (rc == 0)
        jwt_key_free(k);
    else
        assert_null(k);
    return rc;
}

static void bad_key_material_is_refused(void **state)
{
    struct err e = ERR_INIT;
    BIO *bio;
    char *pem;
    (void)state;

    /* Private keys (PKCS#8 and traditional) are refused with a hint, not used. */
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, F.rsa, NULL, NULL, 0, NULL, NULL), 1);
    pem = bio_to_string(bio);
    assert_int_equal(load_pem_code(pem, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "private key"));
    assert_null(strstr(e.msg, "MII"));
    free(pem);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, F.ec, NULL, NULL, 0, NULL, NULL), 1);
    pem = bio_to_string(bio);
    assert_int_equal(load_pem_code(pem, &e), ERR_INVALID);
    free(pem);

    /* Not PEM at all, empty, a broken body, DER with trailing bytes. */
    assert_int_equal(load_pem_code("", &e), ERR_PARSE);
    assert_int_equal(load_pem_code("hello", &e), ERR_PARSE);
    assert_int_equal(
        load_pem_code("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", &e),
        ERR_PARSE);
    assert_int_equal(
        load_pem_code("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &e),
        ERR_PARSE);
    assert_int_equal(
        load_pem_code("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &e),
        ERR_PARSE);
    {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(F.rsa, &der);
        unsigned char *longer = malloc((size_t)n + 2);
        memcpy(longer, der, (size_t)n);
        longer[n] = 0;
        longer[n + 1] = 0;
        bio = BIO_new(BIO_s_mem());
        PEM_write_bio(bio, "PUBLIC KEY", "", longer, n + 2);
        pem = bio_to_string(bio);
        assert_int_equal(load_pem_code(pem, &e), ERR_PARSE);
        free(pem);
        free(longer);
        OPENSSL_free(der);
    }
    /* Over the size cap. */
    {
        struct jwt_key *k = NULL;
        char *big = calloc(1, JWT_MAX_KEY_FILE + 1);
        memset(big, ' ', JWT_MAX_KEY_FILE);
        assert_int_equal(jwt_key_load_pem(&k, big, JWT_MAX_KEY_FILE + 1, &e), ERR_TOO_LARGE);
        free(big);
    }
    /* Other key types and curves. */
    {
        EVP_PKEY *p384 = gen_ec("P-384");
        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        pem = pem_spki(p384);
        assert_int_equal(load_pem_code(pem, &e), ERR_UNSUPPORTED);
        assert_non_null(strstr(e.msg, "P-256"));
        free(pem);
        pem = pem_spki(ed);
        assert_int_equal(load_pem_code(pem, &e), ERR_UNSUPPORTED);
        free(pem);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(ed);
    }
}

/* A public RSA key with the modulus of base and the given exponent, as SPKI PEM. */
static char *rsa_with_exponent(EVP_PKEY *base, unsigned long exponent)
{
    BIGNUM *n = NULL, *ebn = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pkey = NULL;
    char *pem;

    assert_int_equal(EVP_PKEY_get_bn_param(base, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    BN_set_word(ebn, exponent);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ebn);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
    pem = pem_spki(pkey);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(ebn);
    return pem;
}

static void weak_rsa_keys_are_refused(void **state)
{
    static const struct {
        unsigned long e;
        int expect;
    } cases[] = {{1, ERR_INVALID}, {2, ERR_INVALID}, {4, ERR_INVALID}, {3, 0},
                 {5, 0},           {17, 0},          {65537, 0}};
    struct err e = ERR_INIT;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *pem = rsa_with_exponent(F.rsa, cases[i].e);
        assert_int_equal(load_pem_code(pem, &e), cases[i].expect);
        free(pem);
    }
    /* 512-bit modulus: too small. */
    {
        EVP_PKEY *small = gen_rsa(512, 65537);
        char *pem = pem_spki(small);
        assert_int_equal(load_pem_code(pem, &e), ERR_INVALID);
        assert_non_null(strstr(e.msg, "512"));
        free(pem);
        EVP_PKEY_free(small);
    }
}

static void key_file_loading(void **state)
{
    const char *path = "test_jwt_key.pem";
    char *pem = pem_cert(F.rsa3);
    struct jwt_key *k = NULL;
    struct err e = ERR_INIT;
    FILE *f;
    (void)state;

    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(pem, 1, strlen(pem), f), strlen(pem));
    fclose(f);
    assert_int_equal(jwt_key_load_file(&k, path, &e), 0);
    assert_int_equal(jwt_key_type(k), JWT_KEY_RSA);
    jwt_key_free(k);
    remove(path);

    assert_int_equal(jwt_key_load_file(&k, "no_such_dir/jwt.pem", &e), ERR_NOT_FOUND);
    assert_null(k);
    assert_non_null(strstr(e.msg, "no_such_dir"));

    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(jwt_key_load_file(&k, path, &e), ERR_PARSE);
    assert_non_null(strstr(e.msg, path));
    remove(path);
    free(pem);
}

/* ------------------------------------------------------------------------------------------
 * Claims and the unverified decoder
 */

static void claim_accessors(void **state)
{
    const char *pl = "{\"system_username\":\"jdoe@corp.example\",\"username\":\"J\\u00fcrgen\","
                     "\"user_id\":\"a1b2\",\"n\":42,\"neg\":-7,\"f\":1.5,\"big\":1e300,"
                     "\"s\":\"42\",\"authorizations\":[50,\"70\",100.5,100],\"exp\":1800000000}";
    char *t = mint(F.rsa, "RS256", pl);
    struct jwt_claims c = {0};
    struct err e = ERR_INIT;
    int64_t i = 0;
    double d = 0;
    (void)state;

    assert_int_equal(verify_opts(F.k_rsa, t, NOW, 60, 0, &c, &e), 0);
    assert_string_equal(jwt_claim_string(&c, "system_username"), "jdoe@corp.example");
    assert_string_equal(jwt_claim_string(&c, "username"), "J\xc3\xbcrgen");
    assert_null(jwt_claim_string(&c, "n"));
    assert_null(jwt_claim_string(&c, "missing"));
    assert_int_equal(jwt_claim_int(&c, "n", &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(jwt_claim_int(&c, "neg", &i), 0);
    assert_int_equal(i, -7);
    assert_int_equal(jwt_claim_int(&c, "f", &i), ERR_INVALID);
    assert_int_equal(jwt_claim_int(&c, "big", &i), ERR_INVALID);
    assert_int_equal(jwt_claim_int(&c, "s", &i), ERR_INVALID);
    assert_int_equal(jwt_claim_int(&c, "missing", &i), ERR_NOT_FOUND);
    assert_int_equal(jwt_claim_number(&c, "f", &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(jwt_claim_number(&c, "s", &d), ERR_INVALID);
    assert_int_equal(jwt_claim_number(&c, "missing", &d), ERR_NOT_FOUND);
    assert_true(jwt_claims_has_authorization(&c, 50));
    assert_true(jwt_claims_has_authorization(&c, 100));
    assert_false(jwt_claims_has_authorization(&c, 70)); /* a string is not the integer */
    assert_false(jwt_claims_has_authorization(&c, 200));
    assert_int_equal(c.exp, 1800000000);
    jwt_claims_free(&c);
    jwt_claims_free(&c); /* idempotent */
    assert_null(jwt_claim_string(&c, "user_id"));
    assert_false(jwt_claims_has_authorization(NULL, 50));
    free(t);

    /* authorizations that is not a list grants nothing. */
    t = mint(F.rsa, "RS256", "{\"authorizations\":70,\"exp\":1800000000}");
    assert_int_equal(verify_opts(F.k_rsa, t, NOW, 60, 0, &c, &e), 0);
    assert_false(jwt_claims_has_authorization(&c, 70));
    jwt_claims_free(&c);
    free(t);
}

static void decode_unverified_reads_own_token(void **state)
{
    char *pl = payload_exp(NOW - 3600);
    char *t = mint(F.rsa_other, "RS256", pl); /* expired, and signed by a key we lack */
    struct jwt_claims c = {0};
    struct err e = ERR_INIT;
    (void)state;

    assert_int_equal(jwt_decode_unverified(t, strlen(t), &c, &e), 0);
    assert_true(c.has_exp);
    assert_int_equal(c.exp, NOW - 3600);
    assert_int_equal(c.alg, JWT_ALG_RS256);
    assert_string_equal(jwt_claim_string(&c, "server_id"), "0123456789abcdef0123456789abcdef");
    jwt_claims_free(&c);

    /* No exp: decodes, has_exp false. Unknown alg: decodes, alg 0. */
    free(t);
    t = mint_ex(NULL, NULL, NULL, 0, "{\"alg\":\"HS256\"}", "{\"server_id\":\"x\"}");
    assert_int_equal(jwt_decode_unverified(t, strlen(t), &c, &e), 0);
    assert_false(c.has_exp);
    assert_int_equal(c.alg, 0);
    assert_string_equal(jwt_claim_string(&c, "server_id"), "x");
    jwt_claims_free(&c);
    free(t);

    /* Structure rules still apply. */
    static const char *const bad[] = {"",
                                      "a.b",
                                      "e30.e30.",
                                      "eyJhbGciOiJSUzI1NiJ9.W10.",
                                      "eyJhbGciOiJSUzI1NiJ9.e30=.",
                                      "eyJhbGciOiJSUzI1NiJ9.e30.A"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(jwt_decode_unverified(bad[i], strlen(bad[i]), &c, &e), ERR_PARSE);
        assert_null(c.payload);
    }
    assert_int_equal(jwt_decode_unverified("x", 1, NULL, &e), ERR_INVALID);
    free(pl);
}

static void algorithm_list_parsing(void **state)
{
    struct err e = ERR_INIT;
    unsigned bits = 0;
    (void)state;

    assert_int_equal(jwt_algs_parse("RS256", &bits, &e), 0);
    assert_int_equal(bits, JWT_ALG_RS256);
    assert_int_equal(jwt_algs_parse(" RS256, PS256,,ES256 ", &bits, &e), 0);
    assert_int_equal(bits, JWT_ALG_RS256 | JWT_ALG_PS256 | JWT_ALG_ES256);
    assert_int_equal(jwt_algs_parse("RS256,none", &bits, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "none"));
    assert_int_equal(jwt_algs_parse("HS256", &bits, &e), ERR_INVALID);
    assert_int_equal(jwt_algs_parse("rs256", &bits, &e), ERR_INVALID);
    assert_int_equal(jwt_algs_parse(" , ", &bits, &e), ERR_INVALID);
    assert_int_equal(jwt_algs_parse("RS256RS256RS256RS256", &bits, &e), ERR_INVALID);
    assert_string_equal(jwt_alg_name(JWT_ALG_PS256), "PS256");
    assert_string_equal(jwt_alg_name(0), "?");
    assert_int_equal(jwt_alg_from_name("ES256"), JWT_ALG_ES256);
    assert_int_equal(jwt_alg_from_name("none"), 0);
}

static void bad_arguments_are_reported(void **state)
{
    struct err e = ERR_INIT;
    struct jwt_claims c = {0};
    (void)state;

    assert_int_equal(jwt_verify(NULL, "a.b.c", 5, NULL, &c, &e), ERR_INVALID);
    assert_int_equal(jwt_verify(F.k_rsa, NULL, 0, NULL, &c, &e), ERR_INVALID);
    assert_int_equal(jwt_key_load_pem(NULL, "x", 1, &e), ERR_INVALID);
    /* An unprintable algorithm name is not echoed. */
    char *t = mint_ex(NULL, NULL, NULL, 0, "{\"alg\":\"RS256\\u0001<script>\"}", "{}");
    assert_int_equal(verify(F.k_rsa, t, &e), ERR_AUTH);
    assert_null(strstr(e.msg, "<script>"));
    free(t);
}

/* ------------------------------------------------------------------------------------------
 * Oracle mode: tokens minted by PyJWT (tests/oracle/mint_tokens.py)
 */

static const char *oracle_dir;

static int verdict_code(const char *s)
{
    if (strcmp(s, "ok") == 0)
        return 0;
    if (strcmp(s, "parse") == 0)
        return ERR_PARSE;
    if (strcmp(s, "auth") == 0)
        return ERR_AUTH;
    if (strcmp(s, "expired") == 0)
        return ERR_EXPIRED;
    if (strcmp(s, "too_large") == 0)
        return ERR_TOO_LARGE;
    return 1;
}

#define ORACLE_FIELDS 9

/* Checks "k=v;k2=v2" string claims and "50,70" authorizations of an accepted token. */
static int oracle_check_claims(const struct jwt_claims *c, char *strs, char *auths)
{
    int bad = 0;
    if (strcmp(strs, "-") != 0) {
        for (char *kv = strs; kv && *kv;) {
            char *next = strchr(kv, ';');
            if (next)
                *next++ = '\0';
            char *eq = strchr(kv, '=');
            if (!eq)
                return 1;
            *eq = '\0';
            const char *got = jwt_claim_string(c, kv);
            if (!got || strcmp(got, eq + 1) != 0)
                bad = 1;
            kv = next;
        }
    }
    if (strcmp(auths, "-") != 0) {
        for (char *a = strtok(auths, ","); a; a = strtok(NULL, ","))
            if (!jwt_claims_has_authorization(c, strtoll(a, NULL, 10)))
                bad = 1;
    }
    return bad;
}

static void oracle_corpus(void **state)
{
    char path[4096], *manifest = NULL;
    size_t len = 0;
    struct err e = ERR_INIT;
    int total = 0, failures = 0, accepted = 0, rejected = 0;
    struct {
        char name[128];
        struct jwt_key *key;
    } keys[32];
    int nkeys = 0;
    (void)state;

    snprintf(path, sizeof(path), "%s/manifest.txt", oracle_dir);
    if (fs_read_all(path, 64u << 20, &manifest, &len, &e) != 0) {
        print_error("cannot read the oracle manifest: %s\n", e.msg);
        fail();
    }
    for (char *line = manifest; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[ll - 1] = '\0';
        if (line[0] == '#' || line[0] == '\0') {
            line = nl ? nl + 1 : NULL;
            continue;
        }
        char *f[ORACLE_FIELDS];
        int nf = 0;
        for (char *p = line; nf < ORACLE_FIELDS;) {
            f[nf++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (nf != ORACLE_FIELDS) {
            print_error("manifest line with %d fields: %.60s\n", nf, line);
            fail();
        }
        /* name, verdict, key, algs, now, leeway, string claims, authorizations, token */
        int expect = verdict_code(f[1]);
        assert_int_not_equal(expect, 1);
        struct jwt_key *key = NULL;
        for (int i = 0; i < nkeys; i++)
            if (strcmp(keys[i].name, f[2]) == 0)
                key = keys[i].key;
        if (!key) {
            assert_true(nkeys < 32);
            snprintf(path, sizeof(path), "%s/%s", oracle_dir, f[2]);
            if (jwt_key_load_file(&key, path, &e) != 0) {
                print_error("%s: %s\n", f[0], e.msg);
                fail();
            }
            snprintf(keys[nkeys].name, sizeof(keys[nkeys].name), "%s", f[2]);
            keys[nkeys++].key = key;
        }
        struct jwt_verify_opts o = JWT_VERIFY_OPTS_INIT;
        if (strcmp(f[3], "default") != 0 && jwt_algs_parse(f[3], &o.allowed_algs, &e) != 0) {
            print_error("%s: %s\n", f[0], e.msg);
            fail();
        }
        o.now = strtoll(f[4], NULL, 10);
        o.leeway = strtoll(f[5], NULL, 10);
        struct jwt_claims c = {0};
        err_clear(&e);
        int rc = jwt_verify(key, f[8], strlen(f[8]), &o, &c, &e);
        total++;
        if (rc != expect) {
            print_error("oracle case %s: expected %s, got %s (%s)\n", f[0], f[1], err_code_name(rc),
                        rc ? e.msg : "accepted");
            failures++;
        } else if (rc == 0) {
            accepted++;
            if (oracle_check_claims(&c, f[6], f[7])) {
                print_error("oracle case %s: claims differ\n", f[0]);
                failures++;
            }
        } else {
            rejected++;
        }
        jwt_claims_free(&c);
        line = nl ? nl + 1 : NULL;
    }
    for (int i = 0; i < nkeys; i++)
        jwt_key_free(keys[i].key);
    free(manifest);
    print_message("oracle: %d tokens, %d accepted, %d rejected, %d failures\n", total, accepted,
                  rejected, failures);
    assert_int_equal(failures, 0);
    /* The corpus must really hold both kinds, in numbers. */
    assert_true(total >= 60);
    assert_true(accepted >= 15);
    assert_true(rejected >= 40);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rs256_valid_token_is_accepted),
        cmocka_unit_test(null_options_use_wall_clock_and_defaults),
        cmocka_unit_test(es256_token_is_accepted_with_ec_key),
        cmocka_unit_test(rsa_e3_key_loads_and_verifies),
        cmocka_unit_test(tampered_parts_are_rejected),
        cmocka_unit_test(alg_none_is_always_rejected),
        cmocka_unit_test(hmac_with_public_key_as_secret_is_rejected),
        cmocka_unit_test(algorithm_must_match_key_type),
        cmocka_unit_test(other_rsa_algorithms_need_opt_in),
        cmocka_unit_test(crit_header_is_rejected),
        cmocka_unit_test(exp_and_leeway_edges),
        cmocka_unit_test(exp_is_required_and_numeric),
        cmocka_unit_test(nbf_in_the_future_is_rejected),
        cmocka_unit_test(malformed_base64url_is_rejected),
        cmocka_unit_test(non_canonical_trailing_bits_are_rejected),
        cmocka_unit_test(segment_count_must_be_three),
        cmocka_unit_test(oversized_tokens_are_rejected_before_parsing),
        cmocka_unit_test(json_shape_is_enforced),
        cmocka_unit_test(pem_forms_all_load),
        cmocka_unit_test(bad_key_material_is_refused),
        cmocka_unit_test(weak_rsa_keys_are_refused),
        cmocka_unit_test(key_file_loading),
        cmocka_unit_test(claim_accessors),
        cmocka_unit_test(decode_unverified_reads_own_token),
        cmocka_unit_test(algorithm_list_parsing),
        cmocka_unit_test(bad_arguments_are_reported),
    };
    const struct CMUnitTest oracle[] = {cmocka_unit_test(oracle_corpus)};

    if (argc == 3 && strcmp(argv[1], "--oracle") == 0) {
        oracle_dir = argv[2];
        return cmocka_run_group_tests_name("jwt_oracle", oracle, NULL, NULL);
    }
    return UNIT_RUN("jwt", tests, setup_keys, teardown_keys);
}
