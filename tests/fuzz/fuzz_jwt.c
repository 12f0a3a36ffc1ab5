/*
 * fuzz_jwt.c - libFuzzer target for the JWT verifier (common/jwt.c): arbitrary bytes are a
 * token, verified against two fixed test keys (RSA 2048 with e = 3, and EC P-256; every
 * algorithm allowed) at a fixed time, and decoded with jwt_decode_unverified(). Whenever a
 * token is accepted, the structural rules of jwt.h are re-checked here independently, and a
 * verified token must also decode; any violation aborts.
 *
 * The seed corpus (corpus/fuzz_jwt/) holds tokens signed once with the private halves of
 * these keys (thrown away afterwards), so signature-valid paths - claims, exp, nbf - are
 * reachable from the start.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW    ((int64_t)1700000000)
#define FUZZ_LEEWAY 60

static const char rsa_e3_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIDANBgkqhkiG9w0BAQEFAAOCAQ0AMIIBCAKCAQEAzyRxYObzF/A3M5fljHU0\n"
    "efTNDsLUuEsT6LgTyPr9dtzPw7HpGVD8eC/1M/E8oLg0M8ysI6j6ZxAMiHPLnGNs\n"
    "IKBerUdaDDaFYxg2wprcy5LqSgNkN4yVXg/rZqartyATzir5ns+iu5ie1SqfUWup\n"
    "vmf3X084+4xcaGCioVKTijm4RYnoM+8AOCv++pXzryx0e8f7YW9nH+wQ3PXRPqZz\n"
    "vKJ0l925JJWQf0A6ulrJWY3LWKCc6LPQ8YPDqsxEFLPh/XUMmbzlpM0iOqbkgFY2\n"
    "n6dYtjwz4uwWkLevl0RQDXB3Yg89RmTl8q7aGMGBCNI+pJQPE9XyHHHcewv3j8d9\n"
    "AQIBAw==\n"
    "-----END PUBLIC KEY-----\n";

static const char ec_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7T/SSGXvIkKrF3cMwIRNZHCLqVSE\n"
                             "Dp3nf2k3jw7Kkmv6NSECf3RvyKgCna8qGt8krclgy/yOn+kBYhOlLezcAw==\n"
                             "-----END PUBLIC KEY-----\n";

static struct jwt_key *rsa_key, *ec_key;

static void violated(const char *rule)
{
    fprintf(stderr, "fuzz_jwt: an accepted token breaks the rule: %s\n", rule);
    abort();
}

static void load_keys(void)
{
    struct err e = ERR_INIT;
    if (rsa_key)
        return;
    if (jwt_key_load_pem(&rsa_key, rsa_e3_pem, strlen(rsa_e3_pem), &e) != 0 ||
        jwt_key_load_pem(&ec_key, ec_pem, strlen(ec_pem), &e) != 0) {
        fprintf(stderr, "fuzz_jwt: cannot load the test keys: %s\n", e.msg);
        abort();
    }
}

/* Size, three segments, base64url alphabet only: what any accepted token must look like. */
static void check_shape(const uint8_t *data, size_t size)
{
    size_t dots = 0;
    if (size == 0 || size > JWT_MAX_TOKEN_LEN)
        violated("size within 1..JWT_MAX_TOKEN_LEN");
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            violated("base64url alphabet and dots only");
    }
    if (dots != 2)
        violated("exactly three segments");
}

/* Exercises every accessor on decoded claims. */
static void touch_claims(const struct jwt_claims *c)
{
    static const char *const names[] = {
        "exp", "nbf", "server_id", "user_id", "authorizations", "system_username", ""};
    int64_t i64;
    double d;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *s = jwt_claim_string(c, names[i]);
        if (s)
            (void)strlen(s);
        (void)jwt_claim_int(c, names[i], &i64);
        (void)jwt_claim_number(c, names[i], &d);
    }
    (void)jwt_claims_has_authorization(c, 70);
    (void)jwt_claims_has_authorization(c, -1);
    if (!cJSON_IsObject(c->payload))
        violated("claims hold a JSON object");
}

static void verify_one(const struct jwt_key *key, const uint8_t *data, size_t size)
{
    struct jwt_verify_opts o = JWT_VERIFY_OPTS_INIT;
    struct jwt_claims c = {0};
    struct err e = ERR_INIT;
    int rc;

    o.now = FUZZ_NOW;
    o.leeway = FUZZ_LEEWAY;
    o.allowed_algs = JWT_ALG_RS256 | JWT_ALG_RS384 | JWT_ALG_RS512 | JWT_ALG_PS256 | JWT_ALG_ES256;
    rc = jwt_verify(key, (const char *)data, size, &o, &c, &e);
    if (rc != 0) {
        if (c.payload)
            violated("no claims after a failure");
        if (rc != ERR_PARSE && rc != ERR_AUTH && rc != ERR_EXPIRED && rc != ERR_TOO_LARGE &&
            rc != ERR_NOMEM)
            violated("only parse/auth/expired/too-large errors");
        if (e.code != rc || e.msg[0] == '\0')
            violated("a failure has a message");
        return;
    }
    check_shape(data, size);
    if (!c.has_exp)
        violated("exp present");
    {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c.payload, "exp");
        if (!cJSON_IsNumber(exp) || !(exp->valuedouble + FUZZ_LEEWAY > (double)FUZZ_NOW))
            violated("now < exp + leeway");
    }
    if (jwt_key_type(key) == JWT_KEY_EC_P256 ? c.alg != JWT_ALG_ES256 : c.alg == JWT_ALG_ES256)
        violated("algorithm matches the key type");
    touch_claims(&c);
    jwt_claims_free(&c);

    /* A verified token decodes the same way without the key. */
    if (jwt_decode_unverified((const char *)data, size, &c, &e) != 0)
        violated("a verified token also decodes unverified");
    jwt_claims_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwt_claims c = {0};
    struct err e = ERR_INIT;

    load_keys();
    verify_one(rsa_key, data, size);
    verify_one(ec_key, data, size);

    if (jwt_decode_unverified((const char *)data, size, &c, &e) == 0) {
        check_shape(data, size);
        touch_claims(&c);
        if (c.has_exp) {
            const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c.payload, "exp");
            if (!cJSON_IsNumber(exp) || !isfinite(exp->valuedouble))
                violated("has_exp means a finite numeric exp");
        }
        jwt_claims_free(&c);
    } else if (c.payload) {
        violated("no claims after a failed decode");
    }
    return 0;
}
