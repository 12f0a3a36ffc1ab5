/*
 * shot_cache.c - the screenshot cache of the HTTPS API (shot_cache.h): a small table of PNGs
 * and the captures in flight, under one mutex; waiters sleep on one condition variable.
 */
#include "shot_cache.h"

#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define SHC_MAX_CLAIMS 32

struct shc_entry {
    struct shc_key key;
    uint64_t at_ms;
    unsigned char *png; /* NULL: free slot */
    size_t size;
};

struct shc {
    struct plat_mutex *lock;
    struct plat_cond *done; /* broadcast when a claim ends */
    size_t max_entries, max_bytes, bytes;
    struct shc_entry *entries;
    struct shc_key claims[SHC_MAX_CLAIMS];
    int claimed[SHC_MAX_CLAIMS];
};

static int shc_same(const struct shc_key *a, const struct shc_key *b)
{
    return a->session_id == b->session_id && a->helper_pid == b->helper_pid && a->width == b->width;
}

int shc_create(struct shc **out, size_t max_entries, size_t max_bytes, struct err *e)
{
    struct shc *c;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (!(c = calloc(1, sizeof(*c))) ||
        !(c->entries = calloc(max_entries + 1, sizeof(*c->entries)))) {
        err_set(e, ERR_NOMEM, "out of memory creating the screenshot cache");
        goto fail;
    }
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    if ((rc = plat_mutex_create(&c->lock, e)) < 0 || (rc = plat_cond_create(&c->done, e)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    shc_free(c);
    return rc;
}

static void shc_drop(struct shc *c, struct shc_entry *en)
{
    c->bytes -= en->size;
    free(en->png);
    memset(en, 0, sizeof(*en));
}

void shc_free(struct shc *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->entries && i < c->max_entries; i++)
        if (c->entries[i].png)
            shc_drop(c, &c->entries[i]);
    free(c->entries);
    if (c->done)
        plat_cond_destroy(c->done);
    if (c->lock)
        plat_mutex_destroy(c->lock);
    free(c);
}

/* Under the lock: the entry of k (dropping those of k's session with another helper pid). */
static struct shc_entry *shc_find(struct shc *c, const struct shc_key *k)
{
    struct shc_entry *hit = NULL;
    for (size_t i = 0; i < c->max_entries; i++) {
        struct shc_entry *en = &c->entries[i];
        if (!en->png || en->key.session_id != k->session_id)
            continue;
        if (en->key.helper_pid != k->helper_pid)
            shc_drop(c, en);
        else if (en->key.width == k->width)
            hit = en;
    }
    return hit;
}

static int shc_claim_index(struct shc *c, const struct shc_key *k)
{
    for (int i = 0; i < SHC_MAX_CLAIMS; i++)
        if (c->claimed[i] && shc_same(&c->claims[i], k))
            return i;
    return -1;
}

int shc_get(struct shc *c, const struct shc_key *k, uint64_t now_ms, uint64_t max_age_ms,
            uint32_t wait_ms, unsigned char **png, size_t *size)
{
    uint64_t deadline = plat_monotonic_ms() + wait_ms;
    struct shc_entry *en;
    int rc;

    *png = NULL;
    *size = 0;
    plat_mutex_lock(c->lock);
    for (;;) {
        en = shc_find(c, k);
        /* an entry stored after now_ms (while this caller waited) has age 0 */
        if (en && (now_ms > en->at_ms ? now_ms - en->at_ms : 0) < max_age_ms) {
            if (!(*png = malloc(en->size ? en->size : 1))) {
                rc = ERR_NOMEM;
                goto out;
            }
            memcpy(*png, en->png, en->size);
            *size = en->size;
            rc = SHC_HIT;
            goto out;
        }
        if (shc_claim_index(c, k) < 0)
            break;
        uint64_t t = plat_monotonic_ms();
        if (t >= deadline) {
            rc = ERR_TIMEOUT;
            goto out;
        }
        plat_cond_wait(c->done, c->lock, (uint32_t)(deadline - t));
    }
    /* A full claim table only loses the single flight, never the capture. */
    for (int i = 0; i < SHC_MAX_CLAIMS; i++) {
        if (!c->claimed[i]) {
            c->claimed[i] = 1;
            c->claims[i] = *k;
            break;
        }
    }
    rc = SHC_CLAIM;
out:
    plat_mutex_unlock(c->lock);
    return rc;
}

/* Under the lock: ends the claim on k and wakes the waiters. */
static void shc_unclaim(struct shc *c, const struct shc_key *k)
{
    int i = shc_claim_index(c, k);
    if (i >= 0)
        c->claimed[i] = 0;
    plat_cond_broadcast(c->done);
}

void shc_put(struct shc *c, const struct shc_key *k, uint64_t now_ms, const unsigned char *png,
             size_t size)
{
    struct shc_entry *en;
    unsigned char *copy;

    plat_mutex_lock(c->lock);
    if ((en = shc_find(c, k)) != NULL)
        shc_drop(c, en);
    if (size > c->max_bytes || c->max_entries == 0 || !(copy = malloc(size ? size : 1)))
        goto out;
    memcpy(copy, png, size);
    /* Evict the oldest until one slot is free and the bytes fit. */
    for (;;) {
        struct shc_entry *oldest = NULL, *free_slot = NULL;
        for (size_t i = 0; i < c->max_entries; i++) {
            struct shc_entry *x = &c->entries[i];
            if (!x->png)
                free_slot = free_slot ? free_slot : x;
            else if (!oldest || x->at_ms < oldest->at_ms)
                oldest = x;
        }
        if (free_slot && c->bytes + size <= c->max_bytes) {
            en = free_slot;
            break;
        }
        shc_drop(c, oldest); /* not NULL: a full table or bytes over the bound need entries */
    }
    en->key = *k;
    en->at_ms = now_ms;
    en->png = copy;
    en->size = size;
    c->bytes += size;
out:
    shc_unclaim(c, k);
    plat_mutex_unlock(c->lock);
}

void shc_abandon(struct shc *c, const struct shc_key *k)
{
    plat_mutex_lock(c->lock);
    shc_unclaim(c, k);
    plat_mutex_unlock(c->lock);
}

void shc_retain(struct shc *c, const uint32_t *sessions, const unsigned long *pids, size_t n)
{
    plat_mutex_lock(c->lock);
    for (size_t i = 0; i < c->max_entries; i++) {
        struct shc_entry *en = &c->entries[i];
        size_t j;
        if (!en->png)
            continue;
        for (j = 0; j < n; j++)
            if (sessions[j] == en->key.session_id && pids[j] == en->key.helper_pid)
                break;
        if (j == n)
            shc_drop(c, en);
    }
    plat_mutex_unlock(c->lock);
}

void shc_stats(struct shc *c, size_t *entries, size_t *bytes)
{
    size_t n = 0;
    plat_mutex_lock(c->lock);
    for (size_t i = 0; i < c->max_entries; i++)
        n += c->entries[i].png != NULL;
    *entries = n;
    *bytes = c->bytes;
    plat_mutex_unlock(c->lock);
}
