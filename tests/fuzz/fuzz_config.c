/* fuzz_config.c - experiment YAML as `dgm config` takes it: load (includes,
 * anchors, merges), overrides, validation against the build's plugins.
 *
 * Input: up to four parts separated by a line "#--": exp.yaml (loaded),
 * base.yaml and sub/inc.yaml (there to be included), then override lines
 * (one KEY=VALUE per line). Includes are kept inside the scratch folder:
 * an input whose include: names an absolute path or climbs out of it is
 * skipped, and so is one that sets plugin_path (it would load other
 * shared objects).
 * Properties: refusals carry a message; the loaded tree and the resolved
 * one (defaults filled in, what a run saves as config.yaml) write as YAML
 * that reads back to the same tree and writes again to the same text. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define SEP "\n#--\n"

static const char *const names[3] = {"exp.yaml", "base.yaml", "sub/inc.yaml"};

/* rel, seen from the folder of file `from`, stays inside the scratch
 * folder. */
static bool inside(const char *from, const char *rel)
{
    return fz_rel_inside(strchr(from, '/') ? 1 : 0, rel);
}

/* Every include: of this file's text stays inside (unparseable text is
 * fine: loading refuses it before following any include). */
static bool includes_inside(const char *name, const char *text)
{
    dgm_config *c;
    if (dgm_config_parse(&c, text, name) < 0) {
        dgm_error_clear();
        return true;
    }
    const dgm_config *inc = dgm_cfg_get(c, "include");
    bool ok = true;
    if (dgm_cfg_kind_of(c) == DGM_CFG_MAP && inc) {
        if (dgm_cfg_kind_of(inc) == DGM_CFG_SEQ) {
            for (int i = 0; i < dgm_cfg_len(inc); i++) {
                const dgm_config *it = dgm_cfg_at(inc, i);
                ok &= dgm_cfg_kind_of(it) != DGM_CFG_SCALAR ||
                      inside(name, dgm_cfg_text(it));
            }
        } else if (dgm_cfg_kind_of(inc) == DGM_CFG_SCALAR)
            ok = inside(name, dgm_cfg_text(inc));
    }
    dgm_config_free(c);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* the parts; a NUL byte stays in its file (the loader refuses it) */
    char *part[4] = {text, NULL, NULL, NULL};
    size_t len[4] = {size, 0, 0, 0};
    int n = 1;
    for (char *p = text; n < 4;) {
        char *s = memmem(p, (size_t)(text + size - p), SEP, strlen(SEP));
        if (!s)
            break;
        len[n - 1] = (size_t)(s - part[n - 1]);
        *s = '\0';
        part[n] = p = s + strlen(SEP);
        len[n] = (size_t)(text + size - p);
        n++;
    }
    fz_clear();
    char path[4][4096];
    for (int i = 0; i < 3; i++) {
        if (i >= n)
            continue;
        if (!includes_inside(names[i], part[i]))
            goto out;
        fz_write(names[i], part[i], len[i], path[i], sizeof path[i]);
    }
    dgm_config *root;
    int rc = dgm_config_load(&root, path[0]);
    if (rc < 0) {
        fz_expect_error(rc, NULL);
        goto out;
    }
    fz_cfg_round_trip(root, "the loaded config");
    /* overrides, as dgm_experiment_load applies them */
    for (char *line = n > 3 ? part[3] : NULL; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line && (rc = dgm_config_override(root, line)) < 0) {
            fz_expect_error(rc, NULL);
            dgm_config_free(root);
            goto out;
        }
        line = nl ? nl + 1 : NULL;
    }
    const dgm_config *pp = dgm_cfg_get(root, "plugin_path");
    if (pp && dgm_cfg_kind_of(pp) != DGM_CFG_NULL) {
        dgm_config_free(root);
        goto out;
    }
    dgm_experiment *e;
    if ((rc = dgm_experiment_from_config(&e, fz_registry(), root)) < 0) {
        fz_expect_error(rc, NULL);
        goto out;
    }
    fz_cfg_round_trip(dgm_experiment_config(e), "the resolved config");
    dgm_experiment_free(e);
out:
    dgm_error_clear();
    free(text);
    return 0;
}
