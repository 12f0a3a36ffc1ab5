/*
 * jwt.h - strict verification of compact JWS tokens (JWTs) minted by the Kasm deployment,
 * over OpenSSL 3 EVP and cJSON. No other JWT library is involved.
 *
 * The rules (docs/security.md, "JWT verification", explains each one):
 *  - The key decides the algorithm family: an RSA key allows RS256 (RS384, RS512 and PS256
 *    only when the caller's options list them); an EC P-256 key allows ES256. `none`, every
 *    HMAC algorithm and any algorithm that does not match the key are always rejected.
 *  - Tokens are at most JWT_MAX_TOKEN_LEN bytes, exactly three strict base64url segments (no
 *    padding, no '+' '/' '=', no whitespace, canonical trailing bits), a header object with a
 *    string "alg", an optional string "typ", and no "crit"; the payload is a JSON object.
 *    Duplicate member names at the top level of the header or the payload are rejected (a
 *    parser that keeps the last duplicate would read a different token than cJSON, which keeps
 *    the first).
 *  - `exp` is required and numeric. The token is valid while now < exp + leeway and expired
 *    from now >= exp + leeway (RFC 7519 4.1.4, the same edge as PyJWT). A present `nbf` must
 *    be numeric, and the token is not yet valid while now + leeway < nbf.
 *
 * Errors: ERR_TOO_LARGE (over the size cap), ERR_PARSE (malformed structure, base64url or
 * JSON), ERR_AUTH (algorithm, signature or claims rejected), ERR_EXPIRED. Messages never
 * contain the token or any part of it beyond a short, sanitised algorithm name.
 *
 * A loaded struct jwt_key is immutable and may be shared by threads; jwt_verify() is
 * thread-safe.
 */
#ifndef KASM_JWT_H
#define KASM_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cJSON;

#define JWT_MAX_TOKEN_LEN  16384 /* bytes of the compact form */
#define JWT_DEFAULT_LEEWAY 60    /* seconds of clock skew tolerated for exp and nbf */
#define JWT_MAX_KEY_FILE   65536 /* bytes of a PEM key or certificate file */

enum jwt_alg {
    JWT_ALG_RS256 = 1 << 0,
    JWT_ALG_RS384 = 1 << 1,
    JWT_ALG_RS512 = 1 << 2,
    JWT_ALG_PS256 = 1 << 3,
    JWT_ALG_ES256 = 1 << 4,
};

enum jwt_key_type {
    JWT_KEY_RSA = 1,
    JWT_KEY_EC_P256 = 2,
};

/* A public key for verification (opaque). */
struct jwt_key;

/*
 * Loads the first key-bearing PEM block of a buffer: "PUBLIC KEY" (SubjectPublicKeyInfo),
 * "RSA PUBLIC KEY" (PKCS#1) or "CERTIFICATE" (X.509; only its public key is used, its dates
 * and issuer are not checked: the deployment's public_jwt_cert is a key carrier). Private
 * keys are refused. RSA keys need 1024..16384 bits and an odd public exponent >= 3 (e = 3 is
 * accepted); EC keys must be on P-256. ERR_PARSE for bad PEM/DER, ERR_UNSUPPORTED for other
 * key types, ERR_INVALID for unusable keys.
 */
int jwt_key_load_pem(struct jwt_key **out, const void *pem, size_t len, struct err *e);
/* Same from a file (at most JWT_MAX_KEY_FILE bytes); messages name the path. */
int jwt_key_load_file(struct jwt_key **out, const char *path, struct err *e);
void jwt_key_free(struct jwt_key *key);
enum jwt_key_type jwt_key_type(const struct jwt_key *key);
/* Size of the key in bits (RSA modulus, or 256 for P-256). */
int jwt_key_bits(const struct jwt_key *key);

struct jwt_verify_opts {
    int64_t now;           /* seconds since the Unix epoch; 0: the current time */
    int64_t leeway;        /* seconds, >= 0 (JWT_VERIFY_OPTS_INIT sets JWT_DEFAULT_LEEWAY) */
    unsigned allowed_algs; /* enum jwt_alg bits; 0: RS256 for RSA keys, ES256 for EC keys */
};

#define JWT_VERIFY_OPTS_INIT                                                                       \
    {                                                                                              \
        0, JWT_DEFAULT_LEEWAY, 0                                                                   \
    }

/*
 * Claims of a decoded token. Zero-initialise ({0}) before use and release with
 * jwt_claims_free(). After a failed jwt_verify() the struct holds nothing.
 */
struct jwt_claims {
    struct cJSON *payload; /* the payload object (owned) */
    enum jwt_alg alg;      /* the header's algorithm (0 if unknown, decode_unverified only) */
    int64_t exp;           /* the exp claim, rounded down (0 if absent, decode_unverified only) */
    bool has_exp;
};

/*
 * Verifies token[0..len) with key. opts may be NULL (current time, default leeway, default
 * algorithms). On success fills *claims (may be NULL when only the verdict matters).
 */
int jwt_verify(const struct jwt_key *key, const char *token, size_t len,
               const struct jwt_verify_opts *opts, struct jwt_claims *claims, struct err *e);

/*
 * Decodes a token WITHOUT checking its signature or its times: for reading the agent's OWN
 * token (its exp and server_id) before deciding to refresh it. Never use the result to
 * authorise anything. The structure rules above still apply (size, segments, base64url,
 * header with "alg", payload object); a missing or non-numeric exp leaves has_exp false.
 */
int jwt_decode_unverified(const char *token, size_t len, struct jwt_claims *claims, struct err *e);

void jwt_claims_free(struct jwt_claims *claims);

/* A string claim, or NULL when absent or not a string. Valid until jwt_claims_free(). */
const char *jwt_claim_string(const struct jwt_claims *claims, const char *name);
/*
 * An integral numeric claim. ERR_NOT_FOUND when absent, ERR_INVALID when not a number, not
 * integral or outside +-2^53.
 */
int jwt_claim_int(const struct jwt_claims *claims, const char *name, int64_t *out);
/* Any numeric claim. ERR_NOT_FOUND when absent, ERR_INVALID when not a number. */
int jwt_claim_number(const struct jwt_claims *claims, const char *name, double *out);
/* True when the "authorizations" claim is an array holding the integer n. */
bool jwt_claims_has_authorization(const struct jwt_claims *claims, int64_t n);

/* "RS256" ... for an enum jwt_alg value; "?" for anything else. */
const char *jwt_alg_name(enum jwt_alg alg);
/* Parses "RS256"-style names (exact case) into a bit; 0 when unknown. */
enum jwt_alg jwt_alg_from_name(const char *name);
/*
 * Parses a comma/space separated list ("RS256,PS256") into allowed_algs bits, for config.
 * ERR_INVALID naming the unknown entry (none and HS* are unknown here by design).
 */
int jwt_algs_parse(const char *list, unsigned *out, struct err *e);

#endif
