/* test_gan_losses.c - the GAN loss plugins (plugins/losses/gan.c): values
 * against numpy (float64, np.logaddexp for softplus), finite-difference
 * gradients, [N, 1] inputs, unpaired batches and the shape error. */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "support/gradcheck.h"

#define GAN_SO DGM_PLUGIN_DIR "/losses_gan.so"
#define N_EX 6

typedef struct loaded {
    void *so;
    const dgm_loss_iface *li;
} loaded;

static loaded load(const char *name)
{
    loaded l = {dlopen(GAN_SO, RTLD_NOW | RTLD_LOCAL), NULL};
    ck_assert_msg(l.so, "dlopen %s: %s", GAN_SO, dlerror());
    dgm_plugin_query_fn q =
        (dgm_plugin_query_fn)dlsym(l.so, DGM_PLUGIN_QUERY_SYMBOL);
    ck_assert_msg(q, "no %s in %s", DGM_PLUGIN_QUERY_SYMBOL, GAN_SO);
    for (uint32_t i = 0; q(i); i++) {
        if (strcmp(q(i)->name, name))
            continue;
        ck_assert_int_eq(q(i)->abi_major, DGM_ABI_MAJOR);
        ck_assert_int_eq(q(i)->size, sizeof(dgm_plugin_desc));
        ck_assert_int_eq(q(i)->kind, DGM_KIND_LOSS);
        l.li = q(i)->iface.loss;
    }
    ck_assert_msg(l.li, "%s does not carry '%s'", GAN_SO, name);
    return l;
}

static bool is_d(const char *name)
{
    return name[strlen(name) - 1] == 'd';
}

/* Inputs and the expected per-example values, from
 *   r = [2, -1, 50, -50, 0.25, -100]; f = [-0.5, 1.5, -50, 50, 0.5, 100]
 *   sp = lambda x: np.logaddexp(0.0, x)   # softplus in float64
 * and each formula of docs/plugins.md. |logit| 50 and 100 are where
 * log(sigmoid(x)) in float32 gives -inf or 0. */
static const float REAL[N_EX] = {2, -1, 50, -50, 0.25f, -100};
static const float FAKE[N_EX] = {-0.5f, 1.5f, -50, 50, 0.5f, 100};
static const struct {
    const char *name;
    double want[N_EX];
} CASES[] = {
    {"gan_ns_d", {0.60100499522307915, 3.0146749655009755,
                  3.8574996959278356e-22, 100, 1.5500164040589501, 200}},
    {"gan_ns_g", {0.97407698418010669, 0.20141327798275241, 50,
                  1.9287498479639178e-22, 0.47407698418010669,
                  3.7200759760208361e-44}},
    {"gan_minimax_d", {0.60100499522307915, 3.0146749655009755,
                       3.8574996959278356e-22, 100, 1.5500164040589501,
                       200}},
    {"gan_minimax_g", {-0.47407698418010669, -1.7014132779827524,
                       -1.9287498479639178e-22, -50, -0.97407698418010669,
                       -100}},
    {"gan_hinge_d", {0.5, 4.5, 0, 102, 2.25, 202}},
    {"gan_hinge_g", {0.5, -1.5, 50, -50, -0.5, -100}},
    {"gan_wasserstein_d", {-2.5, 2.5, -100, 100, 0.25, 200}},
    {"gan_wasserstein_g", {0.5, -1.5, 50, -50, -0.5, -100}},
    {"gan_lsgan_d", {0.625, 3.125, 2450.5, 2550.5, 0.40625, 10100.5}},
    {"gan_lsgan_g", {1.125, 0.125, 1300.5, 1200.5, 0.125, 4900.5}},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static dgm_tensor *make(const float *v, int64_t n, bool column)
{
    int64_t shape[2] = {n, 1};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, column ? 2 : 1, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < n; i++)
        dgm_tensor_f32(t)[i] = v[i];
    return t;
}

/* Apply case c on (real, fake) and compare every value. */
static void check_values(int c, dgm_backend be, bool column)
{
    loaded l = load(CASES[c].name);
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_backend(g, be);
    dgm_tensor *r = make(REAL, N_EX, column), *f = make(FAKE, N_EX, column);
    bool d = is_d(CASES[c].name);
    dgm_var *in[2] = {dgm_leaf(g, d ? r : f, true), dgm_leaf(g, f, true)};
    dgm_var *v = l.li->apply(NULL, g, in, d ? 2 : 1);
    ck_assert_msg(v, "%s: %s", CASES[c].name, dgm_last_error());
    const dgm_tensor *t = dgm_value(v);
    ck_assert_int_eq(t->ndim, 1);
    ck_assert_int_eq(t->shape[0], N_EX);
    for (int i = 0; i < N_EX; i++) {
        double got = dgm_tensor_get(t, i), want = CASES[c].want[i];
        ck_assert_msg(isfinite(got) &&
                          fabs(got - want) <= 1e-6 + 1e-6 * fabs(want),
                      "%s[%d] (backend %d, %s): got %.9g, want %.9g",
                      CASES[c].name, i, (int)be, column ? "[N,1]" : "[N]",
                      got, want);
    }
    /* The gradient at |logit| 50 and 100 stays finite too. */
    ck_assert_int_eq(dgm_backward(g, dgm_sum_all(g, v)), 0);
    for (int j = 0; j < (d ? 2 : 1); j++)
        for (int i = 0; i < N_EX; i++)
            ck_assert_msg(isfinite(dgm_tensor_get(dgm_grad(in[j]), i)),
                          "%s: gradient of input %d [%d] is not finite",
                          CASES[c].name, j, i);
    dgm_graph_free(g);
    dgm_tensor_free(r);
    dgm_tensor_free(f);
    dlclose(l.so);
}

START_TEST(values_per_example)
{
    check_values(_i, DGM_BACKEND_DNNL, false);
    check_values(_i, DGM_BACKEND_REF, false);
}
END_TEST

START_TEST(values_column_input)
{
    check_values(_i, DGM_BACKEND_DNNL, true);
}
END_TEST

/* ---- gradients ---------------------------------------------------------- */

typedef struct gctx {
    const dgm_loss_iface *li;
    int n;
} gctx;

static dgm_var *build(dgm_graph *g, dgm_var **leaves, void *ctx)
{
    gctx *c = ctx;
    return c->li->apply(NULL, g, leaves, c->n);
}

/* Values away from hinge's kinks at +-1 and lsgan's minimum. */
static const float GR_REAL[5] = {1.7f, -0.6f, 0.3f, 3.2f, -2.4f};
static const float GR_FAKE[5] = {-1.4f, 0.8f, -0.2f, 2.6f, -3.1f};

static void gradcheck_case(int c, int64_t n_fake)
{
    loaded l = load(CASES[c].name);
    bool d = is_d(CASES[c].name);
    dgm_tensor *r = make(GR_REAL, 5, false), *f = make(GR_FAKE, n_fake, true);
    dgm_tensor *leaves[2] = {d ? r : f, f};
    gctx ctx = {l.li, d ? 2 : 1};
    for (int be = 0; be < 2; be++) {
        gc_result res = gc_gradcheck(build, &ctx, ctx.n, leaves, NULL,
                                     (dgm_backend)be, 1e-3, 1e-2, 1e-3);
        ck_assert_msg(res.ok, "%s (backend %d, n_fake %lld): %s",
                      CASES[c].name, be, (long long)n_fake,
                      gc_describe(&res));
    }
    dgm_tensor_free(r);
    dgm_tensor_free(f);
    dlclose(l.so);
}

START_TEST(gradients_paired)
{
    gradcheck_case(_i, 5);
}
END_TEST

START_TEST(gradients_unpaired)
{
    gradcheck_case(_i, 3);
}
END_TEST

/* ---- unpaired batches: a scalar mean(real part) + mean(fake part) ---- */

START_TEST(unpaired_scalar)
{
    static const struct {
        const char *name;
        double want;
    } U[] = {
        /* r = [2, -1, 0.25], f = [-0.5, 1.5] (numpy, float64) */
        {"gan_ns_d", 1.7597881705614427},
        {"gan_minimax_d", 1.7597881705614427},
        {"gan_hinge_d", 2.4166666666666665},
        {"gan_wasserstein_d", 0.08333333333333331},
        {"gan_lsgan_d", 1.5520833333333335},
    };
    static const float r3[3] = {2, -1, 0.25f}, f2[2] = {-0.5f, 1.5f};
    for (int k = 0; k < 5; k++) {
        loaded l = load(U[k].name);
        dgm_graph *g = dgm_graph_new();
        dgm_tensor *r = make(r3, 3, false), *f = make(f2, 2, true);
        dgm_var *in[2] = {dgm_input(g, r), dgm_input(g, f)};
        dgm_var *v = l.li->apply(NULL, g, in, 2);
        ck_assert_msg(v, "%s: %s", U[k].name, dgm_last_error());
        ck_assert_int_eq(dgm_value(v)->ndim, 0);
        double got = dgm_tensor_get(dgm_value(v), 0);
        ck_assert_msg(fabs(got - U[k].want) <= 1e-6,
                      "%s unpaired: got %.9g, want %.9g", U[k].name, got,
                      U[k].want);
        dgm_graph_free(g);
        dgm_tensor_free(r);
        dgm_tensor_free(f);
        dlclose(l.so);
    }
}
END_TEST

/* ---- bad shapes ---------------------------------------------------------- */

START_TEST(shape_error)
{
    loaded l = load(CASES[_i].name);
    bool d = is_d(CASES[_i].name);
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *ok = dgm_tensor_new(DGM_F32, 1, (int64_t[]){4});
    dgm_tensor *bad = dgm_tensor_new(DGM_F32, 2, (int64_t[]){4, 2});
    dgm_tensor *scalar = dgm_tensor_new(DGM_F32, 0, NULL);
    char want[256];
    /* the bad one last (d_fake), so the message names the second input */
    dgm_var *in[2] = {dgm_input(g, d ? ok : bad), dgm_input(g, bad)};
    dgm_error_clear();
    ck_assert_ptr_null(l.li->apply(NULL, g, in, d ? 2 : 1));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    snprintf(want, sizeof want,
             "%s: d_fake has shape [4, 2] f32; expected [N] or [N, 1] (one "
             "logit per example)",
             CASES[_i].name);
    ck_assert_str_eq(dgm_last_error(), want);
    if (d) {
        /* a rank-0 d_real is named as d_real */
        dgm_var *in2[2] = {dgm_input(g, scalar), dgm_input(g, ok)};
        dgm_error_clear();
        ck_assert_ptr_null(l.li->apply(NULL, g, in2, 2));
        ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
        snprintf(want, sizeof want,
                 "%s: d_real has shape [] f32; expected [N] or [N, 1] (one "
                 "logit per example)",
                 CASES[_i].name);
        ck_assert_str_eq(dgm_last_error(), want);
    }
    dgm_graph_free(g);
    dgm_tensor_free(ok);
    dgm_tensor_free(bad);
    dgm_tensor_free(scalar);
    dlclose(l.so);
}
END_TEST

static Suite *gan_losses_suite(void)
{
    Suite *s = suite_create("gan_losses");
    TCase *tc = tcase_create("values");
    tcase_add_loop_test(tc, values_per_example, 0, N_CASES);
    tcase_add_loop_test(tc, values_column_input, 0, N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradients");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, gradients_paired, 0, N_CASES);
    /* the unpaired (scalar) form exists only for the discriminator losses */
    for (int c = 0; c < N_CASES; c++)
        if (is_d(CASES[c].name))
            tcase_add_loop_test(tc, gradients_unpaired, c, c + 1);
    suite_add_tcase(s, tc);
    tq_case(s, "unpaired", unpaired_scalar);
    tc = tcase_create("shapes");
    tcase_add_loop_test(tc, shape_error, 0, N_CASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gan_losses_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
