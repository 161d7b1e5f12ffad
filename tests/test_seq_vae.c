/* test_seq_vae.c - the sequence VAE: every parameter's gradient of the
 * objective (cross_entropy + gaussian_kl, word dropout on) against central
 * differences on a tiny case, z reaching the decoder; and a whole run on a
 * toy corpus with cyclical KL annealing: the reconstruction loss falls well
 * below its start, the held-out KL stays > 0 (no posterior collapse), the
 * bound equals bits/char plus the KL spread over the window, and text
 * sampled from the prior is repeatable for a seed. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "plugin_internal.h"
#include "train.h"

static char root[1024];
static dgm_registry *reg;

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/seqvae-%ld", t ? t : "/tmp",
             (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
}

static void teardown(void)
{
    dgm_registry_free(reg);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* ---- gradients ---------------------------------------------------------- */

typedef struct fixture {
    const dgm_model_iface *model;
    const dgm_loss_iface *ce, *kl;
    void *self;
    dgm_graph *g;
    dgm_tensor *x, *y;
} fixture;

/* The objective summed over the batch, with the graph's and the step's
 * RNGs reseeded so eps and the word-dropout draws repeat; backward too
 * when `grad`. */
static double objective(fixture *f, dgm_params *ps, bool grad)
{
    dgm_graph_reset(f->g);
    dgm_rng gr, sr;
    dgm_rng_seed(&gr, 11);
    dgm_rng_seed(&sr, 12);
    dgm_graph_set_rng(f->g, &gr);
    dgm_step s = {.g = f->g, .rng = &sr, .step = 0, .training = true};
    dgm_vars io = {0};
    ck_assert_int_eq(dgm_vars_set(&io, "x", dgm_input(f->g, f->x)), 0);
    ck_assert_int_eq(dgm_vars_set(&io, "y", dgm_input(f->g, f->y)), 0);
    int rc = f->model->forward(f->self, &s, 0, &io);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_var *ce_in[2] = {dgm_vars_get(&io, "logits"),
                         dgm_vars_get(&io, "target")};
    dgm_var *kl_in[2] = {dgm_vars_get(&io, "mu"), dgm_vars_get(&io, "logvar")};
    dgm_var *loss =
        dgm_sum_all(f->g, dgm_add(f->g, f->ce->apply(NULL, f->g, ce_in, 2),
                                  f->kl->apply(NULL, f->g, kl_in, 2)));
    ck_assert_msg(loss != NULL, "%s", dgm_last_error());
    if (grad) {
        dgm_params_zero_grad(ps);
        ck_assert_int_eq(dgm_backward(f->g, loss), 0);
    }
    double v = ((const float *)dgm_tensor_f32(dgm_value(loss)))[0];
    dgm_graph_set_rng(f->g, NULL);
    return v;
}

static const void *find(dgm_kind kind, const char *name)
{
    const dgm_plugin_desc *d;
    ck_assert_int_eq(dgm_registry_find(reg, kind, name, &d, NULL), 0);
    return kind == DGM_KIND_MODEL  ? (const void *)d->iface.model
           : kind == DGM_KIND_LOSS ? (const void *)d->iface.loss
                                   : (const void *)d;
}

START_TEST(gradients_match_finite_differences)
{
    const dgm_plugin_desc *d;
    ck_assert_int_eq(
        dgm_registry_find(reg, DGM_KIND_MODEL, "seq_vae", &d, NULL), 0);
    fixture f = {.model = d->iface.model,
                 .ce = find(DGM_KIND_LOSS, "cross_entropy"),
                 .kl = find(DGM_KIND_LOSS, "gaussian_kl")};
    dgm_config *cfg;
    ck_assert_int_eq(
        dgm_config_parse(&cfg,
                         "{cell: lstm, embedding: 3, hidden: 4, latent: 2, "
                         "layers: 2, word_dropout: 0.4}",
                         "model.yaml"),
        0);
    ck_assert_int_eq(dgm_config_validate(cfg, d->params, "seq_vae", NULL), 0);
    dgm_data_info info = {.x_shape = {1, {5}},
                          .x_dtype = DGM_I64,
                          .has_y = true,
                          .y_shape = {1, {5}},
                          .y_dtype = DGM_I64,
                          .n_classes = 4};
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    ck_assert_int_eq(dgm_build_new(&b, reg, ps, 3), 0);
    ck_assert_msg(f.model->create(&f.self, cfg, b, &info) == 0, "%s",
                  dgm_last_error());
    int64_t shape[2] = {2, 5};
    f.x = dgm_tensor_new(DGM_I64, 2, shape);
    f.y = dgm_tensor_new(DGM_I64, 2, shape);
    for (int i = 0; i < 10; i++) {
        ((int64_t *)f.x->data)[i] = (i * 3 + 1) % 4;
        ((int64_t *)f.y->data)[i] = (i * 3 + 4) % 4;
    }
    f.g = dgm_graph_new();
    objective(&f, ps, true);
    int checked = 0;
    double enc_grad = 0;
    for (int i = 0; i < dgm_params_count(ps); i++) {
        dgm_param *p = dgm_params_at(ps, i);
        int64_t n = dgm_tensor_numel(p->value);
        float *v = p->value->data;
        const float *gp = p->grad->data;
        if (!strncmp(p->name, "encoder.", 8))
            for (int64_t k = 0; k < n; k++)
                enc_grad += fabs(gp[k]);
        /* a handful of elements spread over each tensor */
        for (int64_t k = 0; k < n; k += n / 5 + 1) {
            const double eps = 1e-2;
            float keep = v[k];
            v[k] = keep + (float)eps;
            double up = objective(&f, ps, false);
            v[k] = keep - (float)eps;
            double down = objective(&f, ps, false);
            v[k] = keep;
            double num = (up - down) / (2 * eps), ana = gp[k];
            ck_assert_msg(fabs(num - ana) <= 3e-3 + 3e-2 * fabs(num),
                          "%s[%lld]: analytic %g, numeric %g", p->name,
                          (long long)k, ana, num);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 60);
    /* the encoder learns only through z at the decoder (and the KL) */
    ck_assert_double_gt(enc_grad, 1e-3);
    dgm_graph_free(f.g);
    dgm_tensor_free(f.x);
    dgm_tensor_free(f.y);
    f.model->destroy(f.self);
    dgm_build_free(b);
    dgm_params_free(ps);
    dgm_config_free(cfg);
}
END_TEST

/* ---- a whole run ----------------------------------------------------------
 */

static double final_of(json_t *s, const char *key)
{
    json_t *v = json_object_get(json_object_get(s, "final"), key);
    ck_assert_msg(json_is_number(v), "no final %s", key);
    return json_number_value(v);
}

/* The first and last logged values of `key` in dir/metrics.jsonl. */
static void first_last(const char *dir, const char *key, double *first,
                       double *last)
{
    char path[1400], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *v = o ? json_object_get(o, key) : NULL;
        if (json_is_number(v)) {
            *last = json_number_value(v);
            if (!seen++)
                *first = *last;
        }
        json_decref(o);
    }
    fclose(f);
    ck_assert_int_ge(seen, 2);
}

START_TEST(learns_toy_corpus_without_collapse)
{
    char corpus[1300], yaml[4096], path[1400], dir[1300];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", root);
    FILE *f = fopen(corpus, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 60; i++)
        fputs("the cat sat on the mat. a dog ran in the fog. ", f);
    fclose(f);
    /* T = 16: the KL weight 1/16 makes the objective the per-byte -ELBO */
    snprintf(yaml, sizeof yaml,
             "name: toy\nseed: 1\nthreads: 2\n"
             "data: {plugin: text, path: '%s', seq_len: 16, batch_size: 16, "
             "val_fraction: 0.2}\n"
             "model: {plugin: seq_vae, cell: gru, embedding: 8, hidden: 32, "
             "latent: 4, word_dropout: 0.5}\n"
             "objective:\n"
             "  - {loss: cross_entropy, inputs: [logits, target]}\n"
             "  - {loss: gaussian_kl, inputs: [mu, logvar], weight: "
             "{value: 0.0625, schedule: cyclical, cycles: 2}}\n"
             "optimizer: {plugin: adam, lr: 1.0e-2, clip_norm: 1.0}\n"
             "train: {steps: 200, log_every: 10}\n"
             "metrics: [{plugin: bits_per_char}]\n",
             corpus);
    snprintf(path, sizeof path, "%s/toy.yaml", root);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/toy", root);
    ck_assert_msg(tc_train(reg, path, dir, NULL, 0) == 0, "%s",
                  dgm_last_error());

    double ce0 = 0, ce1 = 0, w0 = 0, w1 = 0;
    first_last(dir, "cross_entropy", &ce0, &ce1);
    ck_assert_msg(ce1 < 0.4 * ce0, "reconstruction %g -> %g", ce0, ce1);
    /* the weight was annealed from near 0 and reached its value */
    first_last(dir, "weight/gaussian_kl", &w0, &w1);
    ck_assert_double_lt(w0, 0.25 * 0.0625);
    ck_assert_double_eq_tol(w1, 0.0625, 1e-9);

    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_t *s = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(s);
    double kl = final_of(s, "kl_per_seq"), bpc = final_of(s, "bits_per_char");
    double bound = final_of(s, "bpc_bound");
    ck_assert_msg(kl > 0.05, "held-out KL per window %g: collapsed", kl);
    ck_assert_double_eq_tol(bound, bpc + kl / 16.0 / log(2.0), 1e-6);
    ck_assert_double_lt(bpc, 1.0);
    json_decref(s);

    /* text from the prior: one seed, one text; it continues the prompt */
    dgm_generate_opts o = {.temperature = 1.0f};
    char *a, *b;
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the", 30, &o, 5, &a), 0);
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the", 30, &o, 5, &b), 0);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(strlen(a), 33);
    ck_assert_int_eq(strncmp(a, "the", 3), 0);
    free(a);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seq_vae");
    TCase *tc = tq_case(s, "seq_vae", gradients_match_finite_differences,
                        learns_toy_corpus_without_collapse);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    return tq_run(s, "installed", false);
}
