/*
 * fuzz_cfg.c - libFuzzer target for the config loader (common/cfg.c).
 *
 * Feeds the bytes to cfg_load_buffer. Whatever loads must render, the render must load
 * again to an equal config (cfg_equal: same keys, same unknown values in meaning), and
 * rendering that second load must give the same text (render is a fixed point): otherwise the
 * save path could write a file the agent cannot read back, or one that means something else.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg c, back;
    struct err e = ERR_INIT;
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;

    cfg_defaults(&c, "/opt/kasm");
    if (cfg_load_buffer(&c, "fuzz", (const char *)data, size, &e) < 0) {
        /* A failed load must leave no heap members behind and say why. */
        if (c.agent_jwt_token || c.unknown || e.msg[0] == '\0')
            abort();
        return 0;
    }
    if (cfg_render(&c, &first, &first_len, &e) < 0) {
        fprintf(stderr, "render failed: %s\n", e.msg);
        abort();
    }
    cfg_defaults(&back, "/elsewhere");
    if (cfg_load_buffer(&back, "rendered", first, first_len, &e) < 0) {
        fprintf(stderr, "re-load failed: %s\n--- rendered ---\n%s\n", e.msg, first);
        abort();
    }
    if (!cfg_equal(&c, &back)) {
        fprintf(stderr, "the re-load means something else:\n--- rendered ---\n%s\n", first);
        abort();
    }
    if (cfg_render(&back, &second, &second_len, &e) < 0) {
        fprintf(stderr, "second render failed: %s\n", e.msg);
        abort();
    }
    if (first_len != second_len || memcmp(first, second, first_len) != 0) {
        fprintf(stderr, "render is not stable:\n--- first ---\n%s\n--- second ---\n%s\n", first,
                second);
        abort();
    }
    free(first);
    free(second);
    cfg_free(&back);
    cfg_free(&c);
    return 0;
}
