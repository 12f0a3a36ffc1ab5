/*
 * test_jwt_cjose.c - cross-checks the JWT verifier (common/jwt.c) against cjose, an
 * independent JOSE implementation (Debian's libcjose; native builds only).
 *
 * cjose generates the keys (RSA 2048 with e = 65537 and e = 3, EC P-256) and signs the tokens;
 * only the public half crosses over, as a JWK that is turned into a PEM public key. Our
 * verifier must accept what cjose signs, refuse every tampered variant, refuse cjose's
 * HMAC tokens keyed with the public key PEM, and never accept a token that cjose's own
 * verifier refuses.
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

#include <cjose/cjose.h>
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "err.h"
#include "jwt.h"

#define NOW ((int64_t)1700000000)

struct ckey {
    cjose_jwk_t *jwk;    /* cjose's key pair */
    char *pem;           /* its public key, SubjectPublicKeyInfo PEM */
    struct jwt_key *key; /* the same, loaded by our verifier */
};

static struct {
    struct ckey rsa, rsa3, rsa_other, ec;
} K;

/* ------------------------------------------------------------------------------------------
 * JWK (public part, from cjose) -> PEM (through OpenSSL) -> struct jwt_key
 */

static BIGNUM *jwk_bn(const cJSON *jwk, const char *member)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, member);
    uint8_t *raw = NULL;
    size_t n = 0;
    cjose_err cerr;
    BIGNUM *bn;

    assert_true(cJSON_IsString(v));
    assert_true(cjose_base64url_decode(v->valuestring, strlen(v->valuestring), &raw, &n, &cerr));
    bn = BN_bin2bn(raw, (int)n, NULL);
    free(raw);
    assert_non_null(bn);
    return bn;
}

static char *jwk_to_pem(const cjose_jwk_t *jwk)
{
    cjose_err cerr;
    char *json = cjose_jwk_to_json(jwk, false, &cerr);
    cJSON *j = cJSON_Parse(json);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *a = NULL, *b = NULL;
    unsigned char point[65];
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long n;

    assert_non_null(j);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "d")); /* public part only */
    const char *kty = cJSON_GetObjectItemCaseSensitive(j, "kty")->valuestring;
    if (strcmp(kty, "RSA") == 0) {
        a = jwk_bn(j, "n");
        b = jwk_bn(j, "e");
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, a);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else {
        assert_string_equal(kty, "EC");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "crv")->valuestring, "P-256");
        a = jwk_bn(j, "x");
        b = jwk_bn(j, "y");
        point[0] = 0x04;
        assert_int_equal(BN_bn2binpad(a, point + 1, 32), 32);
        assert_int_equal(BN_bn2binpad(b, point + 33, 32), 32);
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    n = BIO_get_mem_data(bio, &data);
    pem = malloc((size_t)n + 1);
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';

    BIO_free(bio);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(a);
    BN_free(b);
    cJSON_Delete(j);
    free(json);
    return pem;
}

static void ckey_make(struct ckey *k, cjose_jwk_t *jwk)
{
    struct err e = ERR_INIT;
    assert_non_null(jwk);
    k->jwk = jwk;
    k->pem = jwk_to_pem(jwk);
    if (jwt_key_load_pem(&k->key, k->pem, strlen(k->pem), &e) != 0) {
        print_error("loading the cjose key: %s\n", e.msg);
        fail();
    }
}

static void ckey_free(struct ckey *k)
{
    cjose_jwk_release(k->jwk);
    free(k->pem);
    jwt_key_free(k->key);
    memset(k, 0, sizeof(*k));
}

static int setup(void **state)
{
    static const uint8_t e3[] = {3};
    cjose_err cerr;
    (void)state;
    ckey_make(&K.rsa, cjose_jwk_create_RSA_random(2048, NULL, 0, &cerr));
    ckey_make(&K.rsa3, cjose_jwk_create_RSA_random(2048, e3, sizeof(e3), &cerr));
    ckey_make(&K.rsa_other, cjose_jwk_create_RSA_random(2048, NULL, 0, &cerr));
    ckey_make(&K.ec, cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ckey_free(&K.rsa);
    ckey_free(&K.rsa3);
    ckey_free(&K.rsa_other);
    ckey_free(&K.ec);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Signing with cjose
 */

/* A compact JWS made by cjose (malloc'd copy). */
static char *cjose_mint(const cjose_jwk_t *jwk, const char *alg, const char *payload)
{
    cjose_err cerr;
    cjose_header_t *hdr = cjose_header_new(&cerr);
    cjose_jws_t *jws;
    const char *compact = NULL;
    char *out;

    assert_non_null(hdr);
    assert_true(cjose_header_set(hdr, CJOSE_HDR_ALG, alg, &cerr));
    assert_true(cjose_header_set(hdr, "typ", "JWT", &cerr));
    jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
    if (!jws) {
        print_error("cjose_jws_sign(%s): %s\n", alg, cerr.message);
        fail();
    }
    assert_true(cjose_jws_export(jws, &compact, &cerr));
    out = malloc(strlen(compact) + 1);
    strcpy(out, compact);
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    return out;
}

static bool cjose_accepts(const cjose_jwk_t *jwk, const char *tok)
{
    cjose_err cerr;
    cjose_jws_t *jws = cjose_jws_import(tok, strlen(tok), &cerr);
    bool ok = jws && cjose_jws_verify(jws, jwk, &cerr);
    cjose_jws_release(jws);
    return ok;
}

static char *agent_payload(int64_t exp)
{
    char *out = malloc(160);
    snprintf(out, 160,
             "{\"server_id\":\"0123456789abcdef0123456789abcdef\",\"authorizations\":[70],"
             "\"exp\":%lld}",
             (long long)exp);
    return out;
}

static int check(const struct jwt_key *key, const char *tok, unsigned algs, struct err *e)
{
    struct jwt_verify_opts o = JWT_VERIFY_OPTS_INIT;
    o.now = NOW;
    o.allowed_algs = algs;
    return jwt_verify(key, tok, strlen(tok), &o, NULL, e);
}

static void expect(const struct jwt_key *key, const char *tok, unsigned algs, int code)
{
    struct err e = ERR_INIT;
    int rc = check(key, tok, algs, &e);
    if (rc != code)
        print_error("expected %s, got %s (%s)\n", err_code_name(code), err_code_name(rc), e.msg);
    assert_int_equal(rc, code);
}

/* ------------------------------------------------------------------------------------------
 * Tests
 */

static void cjose_rs256_tokens_are_accepted(void **state)
{
    struct ckey *keys[] = {&K.rsa, &K.rsa3};
    char *pl = agent_payload(NOW + 3600);
    (void)state;

    assert_non_null(strstr(K.rsa3.pem, "BEGIN PUBLIC KEY"));
    for (size_t i = 0; i < 2; i++) {
        char *tok = cjose_mint(keys[i]->jwk, CJOSE_HDR_ALG_RS256, pl);
        struct jwt_verify_opts o = JWT_VERIFY_OPTS_INIT;
        struct jwt_claims c = {0};
        struct err e = ERR_INIT;
        o.now = NOW;
        assert_true(cjose_accepts(keys[i]->jwk, tok));
        assert_int_equal(jwt_verify(keys[i]->key, tok, strlen(tok), &o, &c, &e), 0);
        assert_string_equal(jwt_claim_string(&c, "server_id"), "0123456789abcdef0123456789abcdef");
        assert_true(jwt_claims_has_authorization(&c, 70));
        assert_int_equal(c.exp, NOW + 3600);
        jwt_claims_free(&c);
        /* The other key refuses it. */
        expect(keys[1 - i]->key, tok, 0, ERR_AUTH);
        expect(K.rsa_other.key, tok, 0, ERR_AUTH);
        free(tok);
    }
    free(pl);
}

static void cjose_e3_key_really_has_exponent_3(void **state)
{
    cjose_err cerr;
    char *json = cjose_jwk_to_json(K.rsa3.jwk, false, &cerr);
    (void)state;
    assert_non_null(strstr(json, "\"e\":\"Aw\""));
    assert_int_equal(jwt_key_type(K.rsa3.key), JWT_KEY_RSA);
    assert_int_equal(jwt_key_bits(K.rsa3.key), 2048);
    free(json);
}

static void cjose_es256_and_other_rsa_algs(void **state)
{
    static const struct {
        const char *alg;
        unsigned allowed;
        int expect;
    } rsa_cases[] = {
        {"RS384", 0, ERR_AUTH},      {"RS384", JWT_ALG_RS384, 0}, {"RS512", 0, ERR_AUTH},
        {"RS512", JWT_ALG_RS512, 0}, {"PS256", 0, ERR_AUTH},      {"PS256", JWT_ALG_PS256, 0},
    };
    char *pl = agent_payload(NOW + 3600);
    (void)state;

    char *es = cjose_mint(K.ec.jwk, CJOSE_HDR_ALG_ES256, pl);
    expect(K.ec.key, es, 0, 0);
    expect(K.rsa.key, es, ~0u, ERR_AUTH);
    free(es);
    for (size_t i = 0; i < sizeof(rsa_cases) / sizeof(rsa_cases[0]); i++) {
        for (int k = 0; k < 2; k++) {
            struct ckey *key = k ? &K.rsa3 : &K.rsa;
            char *tok = cjose_mint(key->jwk, rsa_cases[i].alg, pl);
            assert_true(cjose_accepts(key->jwk, tok));
            expect(key->key, tok, rsa_cases[i].allowed, rsa_cases[i].expect);
            expect(K.ec.key, tok, ~0u, ERR_AUTH);
            free(tok);
        }
    }
    free(pl);
}

static void cjose_tokens_tampered_are_rejected(void **state)
{
    struct ckey *keys[] = {&K.rsa, &K.rsa3, &K.ec};
    const char *algs[] = {"RS256", "RS256", "ES256"};
    char *pl = agent_payload(NOW + 3600);
    char *forged_pl = agent_payload(NOW + 999999);
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        char *tok = cjose_mint(keys[i]->jwk, algs[i], pl);
        char *forged = cjose_mint(K.rsa_other.jwk, "RS256", forged_pl);
        size_t n = strlen(tok);
        const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
        const char *fd1 = strchr(forged, '.'), *fd2 = strrchr(forged, '.');
        char *t = malloc(n + strlen(forged) + 1);

        expect(keys[i]->key, tok, 0, 0);
        /* Another payload under the original header and signature. */
        sprintf(t, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(fd2 - fd1), fd1, d2);
        assert_false(cjose_accepts(keys[i]->jwk, t));
        expect(keys[i]->key, t, 0, ERR_AUTH);
        /* One character changed in the payload, and in the signature. */
        size_t spots[] = {(size_t)(d1 - tok) + 4, (size_t)(d2 - tok) + 7, n - 3};
        for (size_t s = 0; s < 3; s++) {
            strcpy(t, tok);
            t[spots[s]] = t[spots[s]] == 'Q' ? 'R' : 'Q';
            assert_false(cjose_accepts(keys[i]->jwk, t));
            expect(keys[i]->key, t, 0, ERR_AUTH);
        }
        /* Signature cut off, and signature of the forged token. */
        sprintf(t, "%.*s", (int)(d2 - tok) + 1, tok);
        expect(keys[i]->key, t, 0, ERR_AUTH);
        sprintf(t, "%.*s%s", (int)(d2 - tok), tok, fd2);
        expect(keys[i]->key, t, 0, ERR_AUTH);
        free(t);
        free(forged);
        free(tok);
    }
    free(pl);
    free(forged_pl);
}

static void cjose_hmac_keyed_with_public_pem_is_rejected(void **state)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512"};
    struct ckey *keys[] = {&K.rsa, &K.rsa3, &K.ec};
    char *pl = agent_payload(NOW + 3600);
    cjose_err cerr;
    (void)state;

    for (size_t k = 0; k < 3; k++) {
        cjose_jwk_t *oct =
            cjose_jwk_create_oct_spec((const uint8_t *)keys[k]->pem, strlen(keys[k]->pem), &cerr);
        assert_non_null(oct);
        for (size_t a = 0; a < 3; a++) {
            char *tok = cjose_mint(oct, algs[a], pl);
            assert_true(cjose_accepts(oct, tok));     /* a genuine HMAC token... */
            expect(keys[k]->key, tok, ~0u, ERR_AUTH); /* ...that we never take */
            free(tok);
        }
        cjose_jwk_release(oct);
    }
    free(pl);
}

static void cjose_token_times(void **state)
{
    static const struct {
        int64_t exp_offset;
        int expect;
    } cases[] = {{3600, 0}, {-59, 0}, {-60, ERR_EXPIRED}, {-3600, ERR_EXPIRED}};
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *pl = agent_payload(NOW + cases[i].exp_offset);
        char *tok = cjose_mint(K.rsa3.jwk, "RS256", pl);
        expect(K.rsa3.key, tok, 0, cases[i].expect);
        free(tok);
        free(pl);
    }
    char *tok = cjose_mint(K.rsa.jwk, "RS256", "{\"server_id\":\"x\",\"authorizations\":[70]}");
    expect(K.rsa.key, tok, 0, ERR_AUTH); /* no exp */
    free(tok);
}

/*
 * Differential: mutate a cjose token byte by byte; whenever we accept a variant, cjose's own
 * verifier must accept it too (we may be stricter - non-canonical base64url - never looser).
 */
static void never_looser_than_cjose(void **state)
{
    static const char repl[] = {'A', 'B', 'g', '-', '_', '=', '.', '+', ' '};
    struct ckey *keys[] = {&K.rsa3, &K.ec};
    const char *algs[] = {"RS256", "ES256"};
    char *pl = agent_payload(NOW + 3600);
    (void)state;

    for (size_t k = 0; k < 2; k++) {
        char *tok = cjose_mint(keys[k]->jwk, algs[k], pl);
        size_t n = strlen(tok);
        char *t = malloc(n + 1);
        int accepted = 0, tried = 0;
        for (size_t pos = 0; pos < n; pos += 3) {
            for (size_t r = 0; r < sizeof(repl); r++) {
                if (tok[pos] == repl[r])
                    continue;
                memcpy(t, tok, n + 1);
                t[pos] = repl[r];
                struct err e = ERR_INIT;
                tried++;
                if (check(keys[k]->key, t, 0, &e) == 0) {
                    accepted++;
                    if (!cjose_accepts(keys[k]->jwk, t)) {
                        print_error("accepted a variant cjose refuses (position %u)\n",
                                    (unsigned)pos);
                        fail();
                    }
                }
            }
        }
        /* Nothing but the original signs correctly (canonical base64url is one spelling). */
        assert_int_equal(accepted, 0);
        assert_true(tried > 300);
        free(t);
        free(tok);
    }
    free(pl);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cjose_rs256_tokens_are_accepted),
        cmocka_unit_test(cjose_e3_key_really_has_exponent_3),
        cmocka_unit_test(cjose_es256_and_other_rsa_algs),
        cmocka_unit_test(cjose_tokens_tampered_are_rejected),
        cmocka_unit_test(cjose_hmac_keyed_with_public_pem_is_rejected),
        cmocka_unit_test(cjose_token_times),
        cmocka_unit_test(never_looser_than_cjose),
    };
    return UNIT_RUN("jwt_cjose", tests, setup, teardown);
}
