/*
 * tls_info.h - what `agentctl status` shows of the HTTPS API's certificate: its subject and
 * validity, read from the PEM file the API loads (server_public_key).
 */
#ifndef KASM_HTTP_TLS_INFO_H
#define KASM_HTTP_TLS_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct tls_cert_info {
    char subject[512]; /* RFC 2253 form, e.g. "CN=host.example" */
    char issuer[512];
    int64_t not_before, not_after; /* Unix seconds */
};

/* Reads the first certificate of the PEM file at path. ERR_NOT_FOUND: no file; ERR_PARSE: no
 * certificate in it. */
int tls_cert_info_read(const char *path, struct tls_cert_info *out, struct err *e);

#endif
