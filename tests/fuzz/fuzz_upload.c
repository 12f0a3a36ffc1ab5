/*
 * fuzz_upload.c - libFuzzer target for the Dropzone request path of service/transfer/upload.c:
 * the input is a multipart body (boundary "B") fed in pieces to upl_request_* against a real
 * scratch folder. Checks: no crash or leak; every answer has a status the spec allows and a
 * message; nothing is ever created next to the folder (only inside it); every file left in
 * the folder has a name that name_validate() accepts. The folder is emptied between inputs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "name.h"
#include "plat.h"
#include "upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_parent[1024], g_root[1024];
static struct upl_registry *g_reg;

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_upload: %s\n", what);
    abort();
}

static void cleanup(void)
{
    upl_registry_free(g_reg); /* deletes unfinished temp files */
    plat_dir_remove(g_root, NULL);
    plat_dir_remove(g_parent, NULL);
}

static void init_once(void)
{
    char leaf[64];
    const char *tmp = getenv("TMPDIR");
    if (g_reg)
        return;
    snprintf(leaf, sizeof(leaf), "kasm-fuzz-upload-%lu", plat_pid());
    if (fs_join(tmp && *tmp ? tmp : "/tmp", leaf, g_parent, sizeof(g_parent), NULL) < 0 ||
        plat_dir_create(g_parent, NULL) < 0 ||
        fs_join(g_parent, "root", g_root, sizeof(g_root), NULL) < 0 ||
        plat_dir_create(g_root, NULL) < 0 || upl_registry_create(NULL, &g_reg, NULL) < 0)
        violated("cannot set up the scratch folder");
    atexit(cleanup);
}

/* Checks the folder and its parent, then empties the folder. */
static void check_and_clean(void)
{
    struct plat_dir *d = NULL;
    struct plat_dir_entry ent;
    char path[2048];
    int n = 0;
    if (plat_dir_open(g_parent, &d, NULL) < 0)
        violated("cannot list the parent");
    while (plat_dir_next(d, &ent, NULL) == 1)
        if (++n > 1 || strcmp(ent.name, "root") != 0)
            violated("something was created next to the upload folder");
    plat_dir_close(d);
    if (plat_dir_open(g_root, &d, NULL) < 0)
        violated("cannot list the folder");
    while (plat_dir_next(d, &ent, NULL) == 1) {
        if (ent.info.is_dir || ent.info.is_link)
            violated("a directory or link appeared in the folder");
        if (name_validate(ent.name, NULL) < 0)
            violated("a file with an invalid name was created");
        if (fs_join(g_root, ent.name, path, sizeof(path), NULL) == 0)
            plat_path_remove(path, NULL);
    }
    plat_dir_close(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct upl_request *q = NULL;
    struct upl_result res;
    size_t off = 0;
    unsigned seed = 7;
    init_once();
    memset(&res, 0, sizeof(res));
    if (upl_request_begin(g_reg, g_root, "multipart/form-data; boundary=B", &q, &res) < 0)
        violated("begin failed on a valid content type");
    while (off < size) {
        size_t n;
        seed = seed * 1103515245u + 12345u;
        n = 1 + (seed >> 16) % 300;
        if (n > size - off)
            n = size - off;
        if (upl_request_feed(q, data + off, n, &res) < 0)
            break;
        off += n;
    }
    if (size && data[size - 1] == '!') {
        upl_request_abort(q); /* as if the client went away */
    } else {
        upl_request_finish(q, &res);
        if (res.status != 200 && res.status != 400 && res.status != 409 && res.status != 413 &&
            res.status != 500 && res.status != 503)
            violated("an unexpected status");
        if (!res.message[0])
            violated("an answer without a message");
    }
    /* forget every upload, so the next input starts from an empty registry and folder */
    upl_registry_expire(g_reg, INT64_MAX / 2);
    check_and_clean();
    return 0;
}
