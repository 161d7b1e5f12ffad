/* fuzz_report_json.c - the JSON that `dgm compare` and `dgm report` read:
 * a run's summary.json and metrics.jsonl, a sweep's manifest.json.
 * Input: a selector byte (mod 3: 0 summary.json, 1 metrics.jsonl,
 * 2 manifest.json), then that file; the other files are fixed, valid ones
 * (a run, or a sweep of two trials t0 and t1). A manifest whose run_dir
 * names an absolute path or climbs out of the scratch folder is skipped.
 * Properties: a refusal carries a message; whatever loads is written in
 * every compare format and as the HTML report (which must finish: no
 * axis loop may run away), and --format json gives JSON that parses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compare.h"
#include "fuzz_common.h"

static const char summary[] =
    "{\"name\": \"vae\", \"status\": \"completed\", \"steps\": 3,\n"
    " \"train_loss\": 99.5, \"final\": {\"neg_elbo\": 100.25, \"accuracy\": "
    "0.5}}\n";
static const char config[] =
    "name: vae\nseed: 0\nmodel: {plugin: vae, latent: 2}\n"
    "optimizer: {plugin: adam, lr: 0.001}\n";
static const char metrics[] =
    "{\"bernoulli_nll\": 9, \"loss\": 19, \"lr\": 0.001, \"step\": 1}\n"
    "{\"bernoulli_nll\": 8, \"loss\": 18, \"lr\": 0.001, \"step\": 2}\n"
    "{\"step\": 2, \"eval\": {\"x\": 1}}\n";
static void put(const char *name, const char *text, size_t n)
{
    char p[4096];
    fz_write(name, text, n, p, sizeof p);
}

static void run_files(const char *dir, int fuzzed, const uint8_t *d, size_t n)
{
    const char *file[3] = {"summary.json", "metrics.jsonl", "config.yaml"};
    const char *text[3] = {summary, metrics, config};
    for (int i = 0; i < 3; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s/%s", dir, file[i]);
        if (i == fuzzed)
            put(name, (const char *)d, n);
        else
            put(name, text[i], strlen(text[i]));
    }
}

/* Every trial's run_dir stays inside the sweep's scratch folder. */
static bool run_dirs_inside(const uint8_t *d, size_t n)
{
    json_t *m = json_loadb((const char *)d, n, 0, NULL);
    json_t *t = json_object_get(m, "trials");
    bool ok = true;
    for (size_t i = 0; i < json_array_size(t); i++) {
        const char *rd =
            json_string_value(json_object_get(json_array_get(t, i), "run_dir"));
        ok &= !rd || fz_rel_inside(1, rd);
    }
    json_decref(m);
    return ok;
}

static void write_all(const dgm__compare *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        fz_fail("out of memory");
    for (int fmt = DGM__CMP_TABLE; fmt <= DGM__CMP_JSON; fmt++)
        if (dgm__compare_write(c, (dgm__cmp_format)fmt, f) < 0)
            fz_fail("compare format %d refused a loaded comparison", fmt);
    int rc = dgm__report_write(c, NULL, f);
    if (rc < 0)
        fz_expect_error(rc, NULL);
    fclose(f);
    free(buf);
    json_t *j = dgm__compare_json(c);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_t *back = text ? json_loads(text, 0, NULL) : NULL;
    if (!back)
        fz_fail("--format json does not give JSON that parses");
    json_decref(back);
    free(text);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    fz_clear();
    char path[4096];
    if (mode < 2) {
        run_files("run", mode, d, n);
        snprintf(path, sizeof path, "%s/run", fz_dir());
    } else {
        if (!run_dirs_inside(d, n))
            return 0;
        put("sweep/manifest.json", (const char *)d, n);
        run_files("sweep/t0", -1, NULL, 0);
        run_files("sweep/t1", -1, NULL, 0);
        snprintf(path, sizeof path, "%s/sweep", fz_dir());
    }
    dgm__compare *c;
    const char *paths[1] = {path};
    dgm__cmp_options o = {0};
    int rc = dgm__compare_load(&c, paths, 1, &o);
    if (rc < 0) {
        fz_expect_error(rc, NULL);
        if (rc != DGM_EKEY) /* "no metric": not a file's fault */
            fz_expect_error(rc, fz_dir());
    } else {
        write_all(c);
        dgm__compare_free(c);
    }
    dgm_error_clear();
    return 0;
}
