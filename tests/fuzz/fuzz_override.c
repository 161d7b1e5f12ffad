/* fuzz_override.c - command-line overrides (KEY=VALUE, +KEY=VALUE,
 * a.b[1]=..., a.b[len]=...) applied one line at a time to a fixed
 * experiment tree.
 * Properties: a refused override carries a message and leaves the tree
 * exactly as it was (its written text unchanged); after an accepted one
 * the tree still writes as YAML that reads back to the same tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* Maps, lists of maps, nested lists, quoted strings, nulls, anchors. */
static const char base[] =
    "name: vae-fuzz\n"
    "seed: 0\n"
    "data: {plugin: idx, path: /usr/share/datasets/fashion-mnist, "
    "batch_size: 128}\n"
    "augment: [{plugin: flip, p: 0.5}]\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 20\n"
    "  encoder: &mlp {plugin: mlp, hidden: [400, 200]}\n"
    "  decoder: *mlp\n"
    "objective:\n"
    "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
    "  - {loss: gaussian_kl, inputs: [mu, logvar], weight: 1.0}\n"
    "optimizer: {plugin: adam, lr: 1.0e-3}\n"
    "train: {epochs: 10, note: 'a quoted: string', empty: ~}\n"
    "metrics: [{plugin: iwae_nll, k: 64}]\n"
    "grid: [[1, 2], [3, [4, 5]], []]\n"
    "tags: {}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dgm_config *fixed;
    if (!fixed && dgm_config_parse(&fixed, base, "<fuzz base>") < 0)
        fz_fail("the base config does not parse");
    dgm_config *root = dgm_config_clone(fixed);
    char *text = malloc(size + 1);
    if (!root || !text)
        fz_fail("out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = text; line;) {
        char *nl = memchr(line, '\n', (size_t)(text + size - line));
        if (nl)
            *nl = '\0';
        char *before = dgm_config_to_string(root);
        if (!before)
            fz_fail("the writer refused the tree");
        int rc = dgm_config_override(root, line);
        if (rc < 0) {
            fz_expect_error(rc, NULL);
            char *after = dgm_config_to_string(root);
            if (!after || strcmp(before, after)) {
                fprintf(stderr, "---- before\n%s---- after\n%s----\n", before,
                        after ? after : "(refused)");
                fz_fail("the refused override '%s' changed the config", line);
            }
            free(after);
        } else
            fz_cfg_round_trip(root, "the overridden config");
        free(before);
        dgm_error_clear();
        line = nl ? nl + 1 : NULL;
    }
    dgm_config_free(root);
    free(text);
    return 0;
}
