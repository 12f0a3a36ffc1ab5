/*
 * tls_ctx.c - our SSL_CTX settings and the certificate/key loading (tls.h, tls_ctx_setup).
 * Called from civetweb's init_ssl callback, so civetweb's own defaults are overridden here.
 */
#define LOG_MODULE "tls"

#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

/* TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are OpenSSL's (all AEAD). */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

static void ssl_reason(char *buf, size_t cap)
{
    unsigned long code = ERR_peek_last_error();
    if (code)
        ERR_error_string_n(code, buf, cap);
    else
        snprintf(buf, cap, "unknown reason");
    ERR_clear_error();
}

int tls_ctx_setup(void *ssl_ctx, const char *cert_path, const char *key_path, struct err *e)
{
    SSL_CTX *ctx = ssl_ctx;
    char why[256];

    ERR_clear_error();
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
        ssl_reason(why, sizeof(why));
        return err_set(e, ERR_INTERNAL, "cannot configure TLS: %s", why);
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        ssl_reason(why, sizeof(why));
        return err_set(e, ERR_PARSE, "cannot load the server certificate %s: %s", cert_path, why);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(why, sizeof(why));
        return err_set(e, ERR_PARSE, "cannot load the server private key %s: %s", key_path, why);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        return err_set(e, ERR_INVALID,
                       "the server private key %s does not match the certificate %s", key_path,
                       cert_path);
    }
    return 0;
}
