/*
 * shot_cache.h - the screenshot cache of the HTTPS API: PNGs kept per (session id, helper pid,
 * width), served while younger than screenshot_cache_seconds; bounded in entries and bytes
 * (oldest evicted); one capture per key at a time (shc_claim makes other callers wait).
 */
#ifndef KASM_SHOT_CACHE_H
#define KASM_SHOT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SHC_MAX_ENTRIES 16
#define SHC_MAX_BYTES   (8u * 1024u * 1024u)

struct shc;

/* The key: a helper is identified by its session and its pid (a restarted helper is new). */
struct shc_key {
    uint32_t session_id;
    unsigned long helper_pid;
    int width;
};

int shc_create(struct shc **out, size_t max_entries, size_t max_bytes, struct err *e);
void shc_free(struct shc *c);

enum shc_result {
    SHC_HIT = 1,   /* *png (malloc'd copy, caller frees) and *size are filled */
    SHC_CLAIM = 2, /* no fresh entry: the caller captures, then calls shc_put or shc_abandon */
};
/*
 * Looks key up at monotonic time now_ms: an entry younger than max_age_ms is a HIT. Else,
 * when another caller's capture of the same key is in flight, waits for it (up to wait_ms)
 * and looks again; else the caller gets the CLAIM. Entries of the same session with another
 * helper pid are dropped (the helper was replaced). Returns SHC_HIT, SHC_CLAIM or a negative
 * ERR_* (ERR_NOMEM; ERR_TIMEOUT when the other capture did not end within wait_ms).
 */
int shc_get(struct shc *c, const struct shc_key *k, uint64_t now_ms, uint64_t max_age_ms,
            uint32_t wait_ms, unsigned char **png, size_t *size);
/* Ends the claim on k and stores a copy of png taken at now_ms (evicting the oldest entries
 * beyond the bounds; a PNG larger than the byte bound is not kept). */
void shc_put(struct shc *c, const struct shc_key *k, uint64_t now_ms, const unsigned char *png,
             size_t size);
/* Ends the claim on k without storing anything (the capture failed); waiters retry. */
void shc_abandon(struct shc *c, const struct shc_key *k);
/* Drops the entries of sessions whose helper is not one of the live (session, pid) pairs. */
void shc_retain(struct shc *c, const uint32_t *sessions, const unsigned long *pids, size_t n);
/* The number of entries and their bytes (tests). */
void shc_stats(struct shc *c, size_t *entries, size_t *bytes);

#endif
