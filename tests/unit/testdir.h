/*
 * testdir.h - scratch directories for unit tests, through the platform layer only (so the
 * same test runs natively and under Wine): make a unique temp dir, remove a tree without
 * following links, write/read small files.
 */
#ifndef KASM_TESTDIR_H
#define KASM_TESTDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "plat.h"

/* Creates "<temp>/kasm-<tag>-<pid>-<random>" into out; 0 or negative. */
static inline int td_make(const char *tag, char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    unsigned char r[4];
    char leaf[96];
    char resolved[1024];
    if (!base || !*base)
        base = getenv("TEMP");
    if (!base || !*base)
        base = getenv("TMP");
    if (!base || !*base)
        base = "/tmp";
    if (plat_random_bytes(r, sizeof(r), NULL) < 0)
        return -1;
    snprintf(leaf, sizeof(leaf), "kasm-%s-%lu-%02x%02x%02x%02x", tag, plat_pid(), r[0], r[1], r[2],
             r[3]);
    if (fs_join(base, leaf, out, cap, NULL) < 0 || plat_dir_create(out, NULL) < 0)
        return -1;
    /* Tests compare final paths: use the resolved form (e.g. /tmp may be a link). */
    if (plat_dir_final_path(out, resolved, sizeof(resolved), NULL) < 0 ||
        strlen(resolved) + 1 > cap)
        return -1;
    memcpy(out, resolved, strlen(resolved) + 1);
    return 0;
}

/* Removes path and everything below it; links are removed, never followed. */
static inline void td_remove_tree(const char *path)
{
    struct plat_dir *d = NULL;
    struct plat_dir_entry ent;
    char child[2048];
    if (plat_dir_open(path, &d, NULL) == 0) {
        while (plat_dir_next(d, &ent, NULL) == 1) {
            if (fs_join(path, ent.name, child, sizeof(child), NULL) < 0)
                continue;
            if (ent.info.is_dir && !ent.info.is_link)
                td_remove_tree(child);
            else
                plat_path_remove(child, NULL);
        }
        plat_dir_close(d);
    }
    plat_dir_remove(path, NULL);
}

/* Writes a small file (create or truncate); 0 or negative. */
static inline int td_write(const char *path, const char *text)
{
    struct plat_file *f = NULL;
    int rc = plat_file_open(path, PLAT_OPEN_WRITE | PLAT_OPEN_TRUNCATE, &f, NULL);
    if (rc == 0)
        rc = plat_file_write_all(f, text, strlen(text), NULL);
    plat_file_close(f);
    return rc;
}

/* Counts directory entries (0 if it cannot be listed). */
static inline int td_count(const char *dir)
{
    struct plat_dir *d = NULL;
    struct plat_dir_entry ent;
    int n = 0;
    if (plat_dir_open(dir, &d, NULL) < 0)
        return 0;
    while (plat_dir_next(d, &ent, NULL) == 1)
        n++;
    plat_dir_close(d);
    return n;
}

#endif
