/*
 * tls_info.c - the subject and validity of the API's certificate (tls_info.h), with OpenSSL.
 */
#include "tls_info.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fsutil.h"

#define TLS_INFO_PEM_MAX (1024u * 1024u)

static void tls_info_name(const X509_NAME *name, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;

    out[0] = '\0';
    if (!b)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_read(b, out, (int)cap - 1)) > 0)
        out[n] = '\0';
    BIO_free(b);
}

/* Unix seconds of an ASN1_TIME (its difference from the epoch). */
static int tls_info_time(const ASN1_TIME *t, int64_t *out)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days = 0, secs = 0, ok;

    if (!epoch)
        return -1;
    ok = ASN1_TIME_diff(&days, &secs, epoch, t);
    ASN1_TIME_free(epoch);
    if (!ok)
        return -1;
    *out = (int64_t)days * 86400 + secs;
    return 0;
}

int tls_cert_info_read(const char *path, struct tls_cert_info *out, struct err *e)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *b = NULL;
    X509 *x = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = fs_read_all(path, TLS_INFO_PEM_MAX, &pem, &len, e)) < 0)
        goto out;
    if (!(b = BIO_new_mem_buf(pem, (int)len)) || !(x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        rc = err_set(e, ERR_PARSE, "%s holds no PEM certificate", path);
        goto out;
    }
    tls_info_name(X509_get_subject_name(x), out->subject, sizeof(out->subject));
    tls_info_name(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
    if (tls_info_time(X509_get0_notBefore(x), &out->not_before) < 0 ||
        tls_info_time(X509_get0_notAfter(x), &out->not_after) < 0) {
        rc = err_set(e, ERR_PARSE, "the validity dates of the certificate %s cannot be read", path);
        goto out;
    }
    rc = 0;
out:
    X509_free(x);
    BIO_free(b);
    free(pem);
    return rc;
}
