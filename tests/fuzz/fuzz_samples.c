/* fuzz_samples.c - sample files as `dgm eval --samples FILE --data EXP`
 * reads them (IDX u8 images or a safetensors F32 tensor), scored against
 * a tiny 28x28 one-channel IDX data set by the fuzz plugin fuzz_samples,
 * which draws every row and aborts on a wrong shape or a non-finite value.
 * Input: a flag byte (bit 0: the file is .safetensors, else IDX), then
 * the file. Property: a refusal carries a message naming the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "quadrants.h"

static const char *data_experiment(void)
{
    static char exp[4096];
    if (exp[0])
        return exp;
    char dir[2048], yaml[4096];
    snprintf(dir, sizeof dir, "%s/data", fz_dir());
    if (mkdir(dir, 0755) != 0 ||
        tq_write_quadrants(dir, "img", "lab", 8, 1) < 0)
        fz_fail("cannot write the data set");
    snprintf(yaml, sizeof yaml,
             "name: fuzz_samples\n"
             "data: {plugin: idx, path: '%s', train_images: img,\n"
             "       train_labels: lab, test_images: img, test_labels: lab,\n"
             "       scale: unit, batch_size: 4}\n"
             "model:\n"
             "  plugin: vae\n"
             "  latent: 2\n"
             "  encoder: {plugin: mlp, hidden: [4]}\n"
             "  decoder: {plugin: mlp, hidden: [4]}\n"
             "objective:\n"
             "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
             "  - {loss: gaussian_kl, inputs: [mu, logvar]}\n",
             dir);
    fz_write("exp.yaml", yaml, strlen(yaml), exp, sizeof exp);
    return exp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static dgm_config *metrics;
    if (!metrics &&
        dgm_config_parse(&metrics, "[{plugin: fuzz_samples}]", "<metrics>") < 0)
        fz_fail("the metric list does not parse");
    const char *exp = data_experiment();
    char path[4096];
    fz_write(data[0] & 1 ? "samples.safetensors" : "samples.idx", data + 1,
             size - 1, path, sizeof path);
    dgm_results *res = NULL;
    int rc = dgm_eval_file_metrics(fz_registry(), path, exp, metrics, 0, &res);
    if (rc < 0)
        fz_expect_error(rc, path);
    else if (dgm_results_count(res) != 1)
        fz_fail("%d results, expected 1", dgm_results_count(res));
    dgm_results_free(res);
    dgm_error_clear();
    return 0;
}
