/*
 * tls.h - the TLS side of the HTTPS server: our own SSL_CTX settings (TLS 1.2 minimum, no
 * compression, no renegotiation, AEAD ciphers with server preference) and the server
 * certificate, loaded from the configured PEM files or generated when both are missing.
 */
#ifndef KASM_HTTP_TLS_H
#define KASM_HTTP_TLS_H

#include "err.h"

/*
 * If neither cert_path nor key_path exists, generates a self-signed P-256 certificate
 * (CN = this host's name; SANs: the host name, localhost, 127.0.0.1, ::1; 10 years) and
 * writes both atomically, the key admin-only. Sets *generated to 1 then. If exactly one of
 * them exists, fails (ERR_NOT_FOUND naming the missing one): a lone key is never replaced.
 */
int tls_cert_ensure(const char *cert_path, const char *key_path, int *generated, struct err *e);

/*
 * Applies our settings to ssl_ctx (an SSL_CTX *) and loads the certificate chain and the
 * private key (RSA of any odd exponent >= 3, or EC), checking that they match.
 */
int tls_ctx_setup(void *ssl_ctx, const char *cert_path, const char *key_path, struct err *e);

#endif
