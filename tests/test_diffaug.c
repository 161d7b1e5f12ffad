/* test_diffaug.c - the diffaug augmentation of the GAN plugins: exact
 * shifts and cutouts, colour formulas, finite differences for fixed
 * draws, determinism and eval mode, bad input. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "gradcheck.h"
#include "shipped_registry.h"

typedef struct aug {
    const dgm_augment_iface *iface;
    dgm_config *cfg;
    void *self;
} aug;

static int aug_make(aug *a, const char *yaml)
{
    const dgm_plugin_desc *d;
    ck_assert_int_eq(
        dgm_registry_find(tc_reg, DGM_KIND_AUGMENT, "diffaug", &d, NULL), 0);
    a->iface = d->iface.augment;
    ck_assert_ptr_null(a->iface->apply); /* graph only */
    ck_assert_ptr_nonnull(a->iface->forward);
    ck_assert_int_eq(dgm_config_parse(&a->cfg, yaml, "aug.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(a->cfg, d->params, "diffaug", NULL),
                     0);
    dgm_data_info info;
    memset(&info, 0, sizeof info);
    info.x_shape = (dgm_shape){3, {2, 8, 8}};
    a->self = NULL;
    int rc = a->iface->create(&a->self, a->cfg, &info);
    if (rc < 0)
        dgm_config_free(a->cfg);
    return rc;
}

static void aug_done(aug *a)
{
    a->iface->destroy(a->self);
    dgm_config_free(a->cfg);
}

static dgm_tensor *ramp(int64_t n, int64_t c, int64_t h, int64_t w)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 4, (int64_t[]){n, c, h, w});
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        dgm_tensor_f32(t)[i] = (float)(i + 1);
    return t;
}

/* forward once with an rng seeded `seed` */
static dgm_var *aug_run(aug *a, dgm_graph *g, dgm_tensor *x, uint64_t seed)
{
    dgm_rng r;
    dgm_rng_seed(&r, seed);
    dgm_var *y = a->iface->forward(a->self, g, dgm_input(g, x), &r);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    return y;
}

START_TEST(diffaug_translation_exact)
{
    aug a;
    ck_assert_int_eq(aug_make(&a, "{policy: [translation], translation: 0.25}"),
                     0);
    dgm_tensor *x = ramp(4, 2, 8, 8);
    dgm_graph *g = dgm_graph_new();
    for (int be = 0; be < 2; be++) {
        dgm_graph_reset(g);
        dgm_graph_set_backend(g, be ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
        dgm_var *y = aug_run(&a, g, x, 21);
        dgm_rng pred;
        dgm_rng_seed(&pred, 21);
        const float *xs = dgm_tensor_f32(x);
        int moved = 0;
        for (int n = 0; n < 4; n++) {
            int dy = (int)dgm_rng_below(&pred, 5) - 2; /* 8 * 0.25 = 2 */
            int dx = (int)dgm_rng_below(&pred, 5) - 2;
            moved += dy != 0 || dx != 0;
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < 8; i++)
                    for (int j = 0; j < 8; j++) {
                        int si = i + dy, sj = j + dx;
                        float want = si >= 0 && si < 8 && sj >= 0 && sj < 8
                                         ? xs[((n * 2 + c) * 8 + si) * 8 + sj]
                                         : 0.0f;
                        int64_t k = ((n * 2 + c) * 8 + i) * 8 + j;
                        ck_assert_msg(dgm_tensor_get(dgm_value(y), k) == want,
                                      "n %d shift (%d, %d) at (%d, %d): %g, "
                                      "want %g",
                                      n, dy, dx, i, j,
                                      dgm_tensor_get(dgm_value(y), k), want);
                    }
        }
        ck_assert_int_gt(moved, 0); /* the seed gives real shifts */
    }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    aug_done(&a);
}
END_TEST

START_TEST(diffaug_cutout_and_colour_exact)
{
    aug a;
    ck_assert_int_eq(aug_make(&a, "{policy: [cutout], cutout: 0.5}"), 0);
    dgm_tensor *x = ramp(3, 2, 8, 8);
    const float *xs = dgm_tensor_f32(x);
    dgm_graph *g = dgm_graph_new();
    dgm_var *y = aug_run(&a, g, x, 5);
    dgm_rng pred;
    dgm_rng_seed(&pred, 5);
    for (int n = 0; n < 3; n++) {
        int cy = (int)dgm_rng_below(&pred, 9) - 2; /* side 4: [0, 9) */
        int cx = (int)dgm_rng_below(&pred, 9) - 2;
        int zeros = 0;
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 8; j++) {
                    bool cut = i >= cy && i < cy + 4 && j >= cx && j < cx + 4;
                    int64_t k = ((n * 2 + c) * 8 + i) * 8 + j;
                    ck_assert_float_eq(dgm_tensor_get(dgm_value(y), k),
                                       cut ? 0.0f : xs[k]);
                    zeros += cut;
                }
        ck_assert_int_gt(zeros, 0);
    }
    aug_done(&a);

    /* brightness, saturation, contrast: DiffAugment's formulas */
    ck_assert_int_eq(aug_make(&a, "{policy: [color]}"), 0);
    dgm_graph_reset(g);
    y = aug_run(&a, g, x, 8);
    dgm_rng_seed(&pred, 8);
    double *h = malloc(sizeof(double) * 128);
    /* draws: all brightness first (one per example), then saturation,
     * then contrast */
    double br[3], sat[3], con[3];
    for (int n = 0; n < 3; n++)
        br[n] = -0.5 + dgm_rng_uniform(&pred);
    for (int n = 0; n < 3; n++)
        sat[n] = 2.0 * dgm_rng_uniform(&pred);
    for (int n = 0; n < 3; n++)
        con[n] = 0.5 + dgm_rng_uniform(&pred);
    for (int n = 0; n < 3; n++) {
        for (int k = 0; k < 128; k++)
            h[k] = xs[n * 128 + k] + br[n];
        for (int p = 0; p < 64; p++) {
            double m = (h[p] + h[64 + p]) / 2;
            for (int c = 0; c < 2; c++)
                h[c * 64 + p] = (h[c * 64 + p] - m) * sat[n] + m;
        }
        double m = 0;
        for (int k = 0; k < 128; k++)
            m += h[k] / 128;
        for (int k = 0; k < 128; k++) {
            double want = (h[k] - m) * con[n] + m;
            ck_assert_msg(fabs(dgm_tensor_get(dgm_value(y), n * 128 + k) -
                               want) < 1e-4 * (1 + fabs(want)),
                          "n %d k %d: %g want %g", n, k,
                          dgm_tensor_get(dgm_value(y), n * 128 + k), want);
        }
    }
    free(h);
    aug_done(&a);
    dgm_graph_free(g);
    dgm_tensor_free(x);
}
END_TEST

typedef struct da_ctx {
    aug *a;
    uint64_t seed;
} da_ctx;

static dgm_var *da_build(dgm_graph *g, dgm_var **in, void *ctx)
{
    da_ctx *c = ctx;
    dgm_rng r;
    dgm_rng_seed(&r, c->seed); /* the same draws for every evaluation */
    return c->a->iface->forward(c->a->self, g, in[0], &r);
}

START_TEST(diffaug_gradient)
{
    aug a;
    ck_assert_int_eq(aug_make(&a, "{policy: [color, translation, cutout], "
                                  "translation: 0.25, cutout: 0.4}"),
                     0);
    dgm_tensor *x = gc_randn(4, (int64_t[]){2, 2, 6, 5}, 13);
    da_ctx c = {&a, 17};
    gc_result r = gc_gradcheck(da_build, &c, 1, &x, NULL, DGM_BACKEND_REF, 1e-2,
                               1e-2, 1e-3);
    ck_assert_msg(r.ok, "%s", gc_describe(&r));
    r = gc_compare_backends(da_build, &c, 1, &x, NULL, 1e-5, 1e-5);
    ck_assert_msg(r.ok, "%s", gc_describe(&r));
    /* flat [N, D] inputs of the data's size are unflattened and back */
    dgm_tensor *xf = gc_randn(2, (int64_t[]){3, 128}, 2);
    gc_result rf = gc_gradcheck(da_build, &c, 1, &xf, NULL, DGM_BACKEND_REF,
                                1e-2, 1e-2, 1e-3);
    ck_assert_msg(rf.ok, "%s", gc_describe(&rf));
    dgm_tensor_free(xf);
    dgm_tensor_free(x);
    aug_done(&a);
}
END_TEST

START_TEST(diffaug_determinism_and_eval)
{
    aug a;
    ck_assert_int_eq(aug_make(&a, "{}"), 0);
    dgm_tensor *x = gc_randn(4, (int64_t[]){4, 2, 8, 8}, 1);
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *y1 = dgm_tensor_clone(dgm_value(aug_run(&a, g, x, 3)));
    dgm_graph_reset(g);
    dgm_tensor *y2 = dgm_tensor_clone(dgm_value(aug_run(&a, g, x, 3)));
    dgm_graph_reset(g);
    dgm_tensor *y3 = dgm_tensor_clone(dgm_value(aug_run(&a, g, x, 4)));
    ck_assert_int_eq(memcmp(y1->data, y2->data, dgm_tensor_nbytes(y1)), 0);
    ck_assert_int_ne(memcmp(y1->data, y3->data, dgm_tensor_nbytes(y1)), 0);
    ck_assert_int_ne(memcmp(y1->data, x->data, dgm_tensor_nbytes(y1)), 0);
    /* eval mode: the identity, and no draws */
    dgm_graph_reset(g);
    dgm_graph_set_training(g, false);
    dgm_rng r, r0;
    dgm_rng_seed(&r, 3);
    r0 = r;
    dgm_var *xi = dgm_input(g, x);
    ck_assert_ptr_eq(a.iface->forward(a.self, g, xi, &r), xi);
    ck_assert_int_eq(memcmp(&r, &r0, sizeof r), 0);
    dgm_graph_free(g);
    dgm_tensor_free(y1);
    dgm_tensor_free(y2);
    dgm_tensor_free(y3);
    dgm_tensor_free(x);
    aug_done(&a);
}
END_TEST

START_TEST(diffaug_bad_input)
{
    aug a;
    ck_assert_int_eq(aug_make(&a, "{policy: [color, blur]}"), DGM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "policy[1]"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'blur'"));
    ck_assert_int_eq(aug_make(&a, "{policy: [translation]}"), 0);
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *x = gc_randn(3, (int64_t[]){2, 8, 8}, 1);
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    ck_assert_ptr_null(a.iface->forward(a.self, g, dgm_input(g, x), &r));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "diffaug"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 8, 8]"));
    dgm_graph_free(g);
    dgm_tensor_free(x);
    aug_done(&a);
}
END_TEST

static Suite *diffaug_suite(void)
{
    Suite *s = suite_create("diffaug");
    TCase *tc = tq_case(s, "diffaug", diffaug_translation_exact,
                        diffaug_cutout_and_colour_exact, diffaug_gradient,
                        diffaug_determinism_and_eval, diffaug_bad_input);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(diffaug_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
