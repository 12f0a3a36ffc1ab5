/*
 * tls_cert.c - generates the self-signed server certificate when none is configured
 * (tls.h, tls_cert_ensure).
 */
#define LOG_MODULE "tls"

#include "tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "plat.h"

#define CERT_DAYS 3650

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (!(ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)))
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Renders a PEM object through a memory BIO into a heap buffer. */
static int bio_take(BIO *b, char **out, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n <= 0 || !(*out = malloc((size_t)n)))
        return 0;
    memcpy(*out, p, (size_t)n);
    *len = (size_t)n;
    return 1;
}

static int exists(const char *path)
{
    struct plat_file_info fi;
    return plat_path_stat(path, &fi, NULL) == 0;
}

static int make_dirs_for(const char *path, struct err *e)
{
    char dir[1024];
    int rc;
    if ((rc = fs_dirname(path, dir, sizeof(dir), e)) < 0)
        return rc;
    return plat_dir_create_all(dir, e);
}

int tls_cert_ensure(const char *cert_path, const char *key_path, int *generated, struct err *e)
{
    char host[256], san[512];
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    BIO *kb = NULL, *cb = NULL;
    char *kpem = NULL, *cpem = NULL;
    size_t klen = 0, clen = 0;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int have_cert = exists(cert_path), have_key = exists(key_path);
    int rc = ERR_INTERNAL;

    *generated = 0;
    if (have_cert && have_key)
        return 0;
    if (have_cert != have_key)
        return err_set(e, ERR_NOT_FOUND,
                       "the server %s %s is missing while %s exists; provide both "
                       "(or remove both to have a self-signed pair generated)",
                       have_cert ? "key" : "certificate", have_cert ? key_path : cert_path,
                       have_cert ? cert_path : key_path);

    if (plat_hostname(host, sizeof(host), NULL) < 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", host);

    if (!(pkey = EVP_EC_gen("P-256")) || !(x = X509_new()) ||
        plat_random_bytes(serial, sizeof(serial), e) < 0) {
        rc = e && e->code ? e->code : ERR_INTERNAL;
        err_set(e, rc, "cannot generate the server key");
        goto out;
    }
    serial[0] &= 0x7f; /* a positive serial number */
    if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400) ||
        !X509_set_pubkey(x, pkey) || !(name = X509_get_subject_name(x)) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !add_ext(x, NID_subject_alt_name, san) ||
        !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth") || !X509_sign(x, pkey, EVP_sha256())) {
        rc = err_set(e, ERR_INTERNAL, "cannot build the self-signed server certificate");
        goto out;
    }
    if (!(kb = BIO_new(BIO_s_mem())) || !(cb = BIO_new(BIO_s_mem())) ||
        !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(cb, x) || !bio_take(kb, &kpem, &klen) || !bio_take(cb, &cpem, &clen)) {
        rc = err_set(e, ERR_NOMEM, "cannot encode the server certificate");
        goto out;
    }
    if ((rc = make_dirs_for(key_path, e)) < 0 || (rc = make_dirs_for(cert_path, e)) < 0 ||
        (rc = fs_write_atomic(key_path, kpem, klen, FS_WRITE_PRIVATE, e)) < 0 ||
        (rc = fs_write_atomic(cert_path, cpem, clen, 0, e)) < 0) {
        err_prefix(e, "writing the generated server certificate");
        goto out;
    }
    *generated = 1;
    log_warning("no server certificate was configured: generated a self-signed one for %s "
                "(%s, key %s)",
                host, cert_path, key_path);
    rc = 0;
out:
    if (kpem) {
        OPENSSL_cleanse(kpem, klen);
        free(kpem);
    }
    free(cpem);
    BIO_free(kb);
    BIO_free(cb);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}
