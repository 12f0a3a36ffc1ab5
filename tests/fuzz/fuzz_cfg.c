/*
 * fuzz_cfg.c - libFuzzer target for the config loader (common/cfg.c).
 *
 * Feeds the bytes to cfg_load_buffer. Whatever loads must render, the render must load
 * again to an equal config (cfg_equal: same keys, same unknown values in meaning), and
 * rendering that second load must give the same text (render is a fixed point): otherwise the
 * save path could write a file the agent cannot read back, or one that means something else.
 * Merge-on-save: the agent's own keys merged into the input (cfg_merge_text) must load back as
 * the input's values with exactly those keys replaced.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The agent's registration merged into an input that loads. */
static void check_merge(const uint8_t *data, size_t size)
{
    struct cfg agent, want, back;
    struct err e = ERR_INIT;
    char *merged = NULL;
    size_t merged_len = 0;

    cfg_defaults(&agent, "/opt/kasm");
    strcpy(agent.path, "/opt/kasm/config.yaml"); /* its folder gives the defaults, as on load */
    if (cfg_set_agent_token(&agent, "eyJ.fuzz.token", &e) < 0)
        abort();
    agent.multi_user = agent.user_sso = agent.registered = 1;
    agent.api_port = 8443;
    agent.api_host_count = 2;
    agent.api_host_seq = 1;
    strcpy(agent.api_host[0], "a.example");
    strcpy(agent.api_host[1], "b.example");
    strcpy(agent.server_id, "sid-fuzz");
    if (cfg_merge_text(&agent, CFG_OWN_REGISTER, "fuzz", (const char *)data, size, &merged,
                       &merged_len, NULL, &e) < 0) {
        fprintf(stderr, "merge failed on an input that loads: %s\n", e.msg);
        abort();
    }
    /* what it must mean: the input with the agent's keys */
    cfg_defaults(&want, "/opt/kasm");
    if (cfg_load_buffer(&want, "fuzz", (const char *)data, size, &e) < 0)
        abort();
    if (cfg_set_agent_token(&want, agent.agent_jwt_token, &e) < 0)
        abort();
    want.multi_user = want.user_sso = want.registered = 1;
    want.api_port = 8443;
    memcpy(want.api_host, agent.api_host, sizeof(want.api_host));
    want.api_host_count = 2;
    want.api_host_seq = 1;
    strcpy(want.server_id, "sid-fuzz");
    memcpy(want.server_private_key, agent.server_private_key, sizeof(want.server_private_key));
    memcpy(want.server_public_key, agent.server_public_key, sizeof(want.server_public_key));
    memcpy(want.jwt_public_key, agent.jwt_public_key, sizeof(want.jwt_public_key));
    cfg_defaults(&back, "/opt/kasm");
    if (cfg_load_buffer(&back, "merged", merged, merged_len, &e) < 0 || !cfg_equal(&want, &back)) {
        fprintf(stderr, "the merge means something else (%s):\n--- merged ---\n%s\n", e.msg,
                merged);
        abort();
    }
    free(merged);
    cfg_free(&back);
    cfg_free(&want);
    cfg_free(&agent);
}

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
    check_merge(data, size);
    free(first);
    free(second);
    cfg_free(&back);
    cfg_free(&c);
    return 0;
}
