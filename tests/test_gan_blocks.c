/* test_gan_blocks.c - spectral normalisation (against numpy's largest
 * singular value and PyTorch's spectral_norm, finite differences), the
 * spectral_norm option of mlp/conv_encoder/conv_decoder, the
 * self_attention block (identity at gamma 0, plain-C reference, finite
 * differences), attention_at and spectral_norm of the dcgan blocks, and
 * the image sizes and channel counts the dcgan and conv blocks take.
 * The diffaug augmentation is in test_diffaug.c. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block_check.h"
#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "gradcheck.h"
#include "shipped_registry.h"

/* Run a python3 snippet and read up to max floats it prints. */
static int python_floats(const char *script, double *out, int max)
{
    char path[512];
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(path, sizeof path, "%s/gan-blocks-%d.py", t ? t : "/tmp",
             (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", t ? t : "/tmp");
    ck_assert_int_eq(system(cmd), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s'", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    while (n < max && fscanf(p, "%lf", &out[n]) == 1)
        n++;
    ck_assert_int_eq(pclose(p), 0);
    remove(path);
    return n;
}

/* The test weights: sin(0.7 i + 0.3), which python rebuilds. */
static void fill_sin(dgm_tensor *t)
{
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        dgm_tensor_f32(t)[i] = (float)sin(0.7 * (double)i + 0.3);
}

/* Largest singular value of a [r, c] row-major matrix, by power
 * iteration on A^T A in double. */
static double top_singular(const float *a, int64_t r, int64_t c)
{
    double *v = malloc(sizeof(double) * (size_t)c),
           *u = malloc(sizeof(double) * (size_t)r);
    for (int64_t j = 0; j < c; j++)
        v[j] = 1.0 + 0.01 * (double)j;
    double s = 0;
    for (int it = 0; it < 3000; it++) {
        double nu = 0, nv = 0;
        for (int64_t i = 0; i < r; i++) {
            u[i] = 0;
            for (int64_t j = 0; j < c; j++)
                u[i] += a[i * c + j] * v[j];
            nu += u[i] * u[i];
        }
        for (int64_t j = 0; j < c; j++) {
            v[j] = 0;
            for (int64_t i = 0; i < r; i++)
                v[j] += a[i * c + j] * u[i];
            nv += v[j] * v[j];
        }
        s = sqrt(nv) / sqrt(nu); /* |A^T u| / |u| with u = A v */
        for (int64_t j = 0; j < c; j++)
            v[j] /= sqrt(nv);
    }
    free(u);
    free(v);
    return s;
}

/* A weight [shape] named "<scope>.fc.weight" in a standalone build. */
typedef struct sn_fixture {
    dgm_params *ps;
    dgm_build *b;
    dgm_param *w;
    dgm_sn_params sn;
} sn_fixture;

static void sn_make(sn_fixture *f, int ndim, const int64_t *shape, int dim)
{
    f->ps = dgm_params_new();
    ck_assert_int_eq(dgm_build_new(&f->b, tc_reg, f->ps, 5), 0);
    ck_assert_int_eq(
        dgm_build_param(f->b, "fc.weight", DGM_ROLE_WEIGHT, ndim, shape, &f->w),
        0);
    fill_sin(f->w->value);
    int rc = dgm_build_spectral_norm(f->b, "fc", f->w, dim, &f->sn);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
}

static void sn_done(sn_fixture *f)
{
    dgm_build_free(f->b);
    dgm_params_free(f->ps);
}

/* The matrix view PyTorch uses: dim to the front, the rest flattened. */
static void matrix_view(const dgm_tensor *t, int dim, float *m)
{
    const float *w = dgm_tensor_f32(t);
    int64_t n = dgm_tensor_numel(t);
    if (dim == 0) {
        memcpy(m, w, sizeof(float) * (size_t)n);
        return;
    }
    int64_t a = t->shape[0], b = t->shape[1], r = n / (a * b);
    for (int64_t i = 0; i < a; i++)
        for (int64_t j = 0; j < b; j++)
            for (int64_t k = 0; k < r; k++)
                m[(j * a + i) * r + k] = w[(i * b + j) * r + k];
}

static void check_bound(int ndim, const int64_t *shape, int dim)
{
    sn_fixture f;
    sn_make(&f, ndim, shape, dim);
    dgm_param *u = dgm_params_find(f.ps, "fc.weight_u");
    dgm_param *v = dgm_params_find(f.ps, "fc.weight_v");
    ck_assert_ptr_eq(u, f.sn.u);
    ck_assert_ptr_eq(v, f.sn.v);
    ck_assert_int_eq(u->role, DGM_ROLE_BUFFER);
    int64_t n = dgm_shape_numel(ndim, shape);
    ck_assert_int_eq(dgm_tensor_numel(u->value), shape[dim]);
    ck_assert_int_eq(dgm_tensor_numel(v->value), n / shape[dim]);
    f.sn.n_power = 200;
    dgm_graph *g = dgm_graph_new();
    dgm_var *y = dgm_sn_weight(g, &f.sn, dgm_param_var(g, f.w));
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    float *m = malloc(sizeof(float) * (size_t)n);
    matrix_view(dgm_value(y), dim, m);
    double s1 = top_singular(m, shape[dim], n / shape[dim]);
    ck_assert_msg(fabs(s1 - 1.0) < 1e-3, "normalised sigma %g", s1);
    /* sigma itself against numpy's 2-norm of the matrix */
    char script[800];
    char sh[64] = "";
    for (int i = 0; i < ndim; i++)
        snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%lld,",
                 (long long)shape[i]);
    snprintf(script, sizeof script,
             "import numpy as np\n"
             "s = (%s)\n"
             "w = np.sin(0.7 * np.arange(np.prod(s)) + 0.3)"
             ".astype(np.float32).reshape(s).astype(np.float64)\n"
             "if %d == 1: w = np.swapaxes(w, 0, 1)\n"
             "print(repr(np.linalg.norm(w.reshape(w.shape[0], -1), 2)))\n",
             sh, dim);
    double ref;
    ck_assert_int_eq(python_floats(script, &ref, 1), 1);
    double sigma =
        dgm_tensor_f32(f.w->value)[1] / dgm_tensor_f32(dgm_value(y))[1];
    ck_assert_msg(fabs(sigma - ref) < 1e-4 * ref, "sigma %.8g numpy %.8g",
                  sigma, ref);
    free(m);
    dgm_graph_free(g);
    sn_done(&f);
}

START_TEST(sn_bounds_top_singular_value)
{
    check_bound(2, (int64_t[]){6, 4}, 0);
    check_bound(4, (int64_t[]){5, 3, 2, 2}, 0);
    check_bound(4, (int64_t[]){3, 5, 2, 2}, 1); /* transposed conv */
}
END_TEST

/* One training forward (one power iteration) against PyTorch's
 * spectral_norm started from the same u, v: the weight and the new u;
 * then eval mode leaves u alone and gives the same weight. The cases run
 * through one python process (importing torch once). */
typedef struct torch_case {
    int ndim;
    int64_t shape[4];
    int dim;
    const char *module;
} torch_case;

START_TEST(sn_matches_pytorch)
{
    const torch_case cases[3] = {
        {2, {6, 4}, 0, "torch.nn.Linear(4, 6)"},
        {4, {5, 3, 2, 2}, 0, "torch.nn.Conv2d(3, 5, 2)"},
        {4, {3, 5, 2, 2}, 1, "torch.nn.ConvTranspose2d(3, 5, 2)"}};
    sn_fixture f[3];
    size_t cap = 4096;
    for (int c = 0; c < 3; c++) {
        sn_make(&f[c], cases[c].ndim, cases[c].shape, cases[c].dim);
        cap += 64 * (size_t)(dgm_tensor_numel(f[c].sn.u->value) +
                             dgm_tensor_numel(f[c].sn.v->value));
    }
    char *script = malloc(cap), *p = script;
    p += sprintf(p, "import torch, numpy as np\n");
    int64_t total = 0;
    for (int c = 0; c < 3; c++) {
        int64_t rows = dgm_tensor_numel(f[c].sn.u->value),
                cols = dgm_tensor_numel(f[c].sn.v->value);
        total += rows * cols + rows;
        p += sprintf(p, "u = [");
        for (int64_t i = 0; i < rows; i++)
            p += sprintf(p, "%.9g,", dgm_tensor_f32(f[c].sn.u->value)[i]);
        p += sprintf(p, "]\nv = [");
        for (int64_t i = 0; i < cols; i++)
            p += sprintf(p, "%.9g,", dgm_tensor_f32(f[c].sn.v->value)[i]);
        p += sprintf(
            p,
            "]\nm = torch.nn.utils.spectral_norm(%s)\n"
            "w = np.sin(0.7 * np.arange(%lld) + 0.3).astype(np.float32)\n"
            "with torch.no_grad():\n"
            "    m.weight_orig.copy_(torch.tensor(w).reshape("
            "m.weight_orig.shape))\n"
            "    m.weight_u.copy_(torch.tensor(u))\n"
            "    m.weight_v.copy_(torch.tensor(v))\n"
            "m.train()\n"
            "m._forward_pre_hooks[next(iter(m._forward_pre_hooks))](m, None)\n"
            "for x in m.weight.detach().flatten().tolist(): print(x)\n"
            "for x in m.weight_u.flatten().tolist(): print(x)\n",
            cases[c].module, (long long)(rows * cols));
    }
    double *ref = malloc(sizeof(double) * (size_t)total), *r = ref;
    ck_assert_int_eq(python_floats(script, ref, (int)total), (int)total);
    dgm_graph *g = dgm_graph_new();
    for (int c = 0; c < 3; c++, g = (dgm_graph_free(g), dgm_graph_new())) {
        const char *module = cases[c].module;
        int64_t rows = dgm_tensor_numel(f[c].sn.u->value),
                n = rows * dgm_tensor_numel(f[c].sn.v->value);
        dgm_var *y = dgm_sn_weight(g, &f[c].sn, dgm_param_var(g, f[c].w));
        ck_assert_ptr_nonnull(y);
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(fabs(dgm_tensor_get(dgm_value(y), i) - r[i]) <
                              1e-5 + 1e-4 * fabs(r[i]),
                          "%s weight[%lld]: %g vs torch %g", module,
                          (long long)i, dgm_tensor_get(dgm_value(y), i), r[i]);
        for (int64_t i = 0; i < rows; i++)
            ck_assert_msg(fabs(dgm_tensor_f32(f[c].sn.u->value)[i] - r[n + i]) <
                              1e-5,
                          "%s u[%lld]", module, (long long)i);
        r += n + rows;
        /* eval mode: u and v stay, the weight is the same */
        dgm_tensor *u0 = dgm_tensor_clone(f[c].sn.u->value);
        dgm_tensor *y1 = dgm_tensor_clone(dgm_value(y));
        dgm_graph_reset(g);
        dgm_graph_set_training(g, false);
        dgm_var *y2 = dgm_sn_weight(g, &f[c].sn, dgm_param_var(g, f[c].w));
        ck_assert_ptr_nonnull(y2);
        ck_assert_int_eq(
            memcmp(u0->data, f[c].sn.u->value->data, dgm_tensor_nbytes(u0)), 0);
        gc_result cr = gc_compare_tensors(dgm_value(y2), y1, 1e-6, 1e-7);
        ck_assert_msg(cr.ok, "%s eval: %s", module, gc_describe(&cr));
        dgm_tensor_free(u0);
        dgm_tensor_free(y1);
        sn_done(&f[c]);
    }
    dgm_graph_free(g);
    free(ref);
    free(script);
}
END_TEST

static dgm_var *sn_build(dgm_graph *g, dgm_var **in, void *ctx)
{
    /* eval mode: u, v fixed, so every evaluation sees the same function */
    dgm_graph_set_training(g, false);
    return dgm_sn_weight(g, ctx, in[0]);
}

START_TEST(sn_gradient)
{
    const int64_t s2[2] = {5, 4}, s4[4] = {3, 4, 2, 2};
    const int64_t *shapes[2] = {s2, s4};
    for (int k = 0; k < 2; k++) {
        sn_fixture f;
        int ndim = k ? 4 : 2;
        sn_make(&f, ndim, shapes[k], k);
        dgm_tensor *w = gc_randn(ndim, shapes[k], 3 + (uint64_t)k);
        gc_result r = gc_gradcheck(sn_build, &f.sn, 1, &w, NULL,
                                   DGM_BACKEND_REF, 1e-3, 1e-2, 1e-3);
        ck_assert_msg(r.ok, "dim %d: %s", k, gc_describe(&r));
        dgm_tensor_free(w);
        sn_done(&f);
    }
}
END_TEST

START_TEST(sn_bad_input)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    ck_assert_int_eq(dgm_build_new(&b, tc_reg, ps, 1), 0);
    dgm_param *w;
    ck_assert_int_eq(
        dgm_build_param(b, "fc.weight", DGM_ROLE_WEIGHT, 1, (int64_t[]){4}, &w),
        0);
    dgm_sn_params sn;
    ck_assert_int_eq(dgm_build_spectral_norm(b, "fc", w, 1, &sn), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "spectral_norm 'fc'"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4]"));
    ck_assert_int_eq(dgm_params_count(ps), 1); /* nothing half-made */
    ck_assert_int_eq(dgm_build_spectral_norm(b, "fc", w, 0, &sn), 0);
    ck_assert_int_eq(dgm_build_spectral_norm(b, "fc", w, 0, &sn), DGM_EDUP);
    ck_assert_int_eq(dgm_params_count(ps), 3);
    /* a weight of another size */
    dgm_graph *g = dgm_graph_new();
    dgm_var *x = dgm_constant(g, 2, (int64_t[]){2, 3}, 1.0f);
    ck_assert_ptr_null(dgm_sn_weight(g, &sn, x));
    ck_assert_int_eq(dgm_graph_status(g), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 3]"));
    dgm_graph_free(g);
    dgm_build_free(b);
    dgm_params_free(ps);
}
END_TEST

/* ---- blocks ----------------------------------------------------------- */

START_TEST(sn_option_of_blocks)
{
    dgm_shape img = {3, {2, 8, 8}}, none = {0};
    tc_gradcheck_block("{plugin: mlp, hidden: [5], spectral_norm: true}",
                       (dgm_shape){1, {6}}, (dgm_shape){1, {3}}, 2, true);
    tc_gradcheck_block("{plugin: conv_encoder, channels: [3, 4], out: 3, "
                       "batch_norm: false, spectral_norm: true}",
                       img, none, 2, true);
    tc_gradcheck_block("{plugin: conv_decoder, channels: [4, 3], "
                       "activation: tanh, spectral_norm: true}",
                       (dgm_shape){1, {5}}, img, 2, true);
    /* buffers where PyTorch has them: a deconv's rows are its outputs */
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape out = img;
    tc_make_block(
        &b, ps, &cfg,
        "{plugin: conv_decoder, channels: [4, 3], spectral_norm: true}",
        (dgm_shape){1, {5}}, &out);
    dgm_param *u = dgm_params_find(ps, "blk.deconv1.weight_u");
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(dgm_tensor_numel(u->value), 3);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.deconv2.weight_u")->value),
        2);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.fc0.weight_v")->value), 5);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);

    /* mlp with no hidden layer: y = x W^T / (u^T W v) + b, in eval mode */
    ps = dgm_params_new();
    out = (dgm_shape){1, {3}};
    dgm_block *blk =
        tc_make_block(&b, ps, &cfg, "{plugin: mlp, spectral_norm: true}",
                      (dgm_shape){1, {4}}, &out);
    const float
        *w = dgm_tensor_f32(dgm_params_find(ps, "blk.fc1.weight")->value),
        *bias = dgm_tensor_f32(dgm_params_find(ps, "blk.fc1.bias")->value),
        *uu = dgm_tensor_f32(dgm_params_find(ps, "blk.fc1.weight_u")->value),
        *vv = dgm_tensor_f32(dgm_params_find(ps, "blk.fc1.weight_v")->value);
    double sigma = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            sigma += uu[i] * w[i * 4 + j] * vv[j];
    dgm_tensor *x = tc_batch_of((dgm_shape){1, {4}}, 2, 7);
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_training(g, false);
    dgm_var *y = dgm_block_forward(blk, g, dgm_input(g, x));
    ck_assert_ptr_nonnull(y);
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 3; i++) {
            double want = bias[i];
            for (int j = 0; j < 4; j++)
                want += dgm_tensor_f32(x)[n * 4 + j] * w[i * 4 + j] / sigma;
            ck_assert_double_eq_tol(dgm_tensor_get(dgm_value(y), n * 3 + i),
                                    want, 1e-5);
        }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

/* Plain-C SAGAN on one example x [c, p] (p = H * W) into y. */
static void sa_reference(dgm_params *ps, const float *x, int64_t c, int64_t ck,
                         int64_t p, double *y)
{
    const char *nm[3] = {"blk.query", "blk.key", "blk.value"};
    double *proj[3];
    for (int k = 0; k < 3; k++) {
        char n[64];
        snprintf(n, sizeof n, "%s.weight", nm[k]);
        const float *w = dgm_tensor_f32(dgm_params_find(ps, n)->value);
        snprintf(n, sizeof n, "%s.bias", nm[k]);
        const float *b = dgm_tensor_f32(dgm_params_find(ps, n)->value);
        int64_t oc = k == 2 ? c : ck;
        proj[k] = calloc((size_t)(oc * p), sizeof(double));
        for (int64_t o = 0; o < oc; o++)
            for (int64_t i = 0; i < p; i++) {
                double s = b[o];
                for (int64_t q = 0; q < c; q++)
                    s += w[o * c + q] * x[q * p + i];
                proj[k][o * p + i] = s;
            }
    }
    double gamma = dgm_tensor_f32(dgm_params_find(ps, "blk.gamma")->value)[0];
    double *att = calloc((size_t)p, sizeof(double));
    for (int64_t i = 0; i < p; i++) {
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < p; j++) {
            double e = 0;
            for (int64_t o = 0; o < ck; o++)
                e += proj[0][o * p + i] * proj[1][o * p + j];
            att[j] = e;
            mx = e > mx ? e : mx;
        }
        for (int64_t j = 0; j < p; j++)
            z += (att[j] = exp(att[j] - mx));
        for (int64_t q = 0; q < c; q++) {
            double s = 0;
            for (int64_t j = 0; j < p; j++)
                s += proj[2][q * p + j] * att[j] / z;
            y[q * p + i] = gamma * s + x[q * p + i];
        }
    }
    free(att);
    for (int k = 0; k < 3; k++)
        free(proj[k]);
}

START_TEST(sa_identity_and_reference)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape in = {3, {16, 3, 4}}, out = {0};
    dgm_block *blk =
        tc_make_block(&b, ps, &cfg, "{plugin: self_attention}", in, &out);
    ck_assert_int_eq(out.ndim, 3);
    ck_assert_int_eq(out.dim[0], 16);
    ck_assert_int_eq(out.dim[1], 3);
    ck_assert_int_eq(out.dim[2], 4);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.query.weight")->value),
        2 * 16); /* C / 8 = 2 query channels */
    dgm_tensor *x = tc_batch_of(in, 2, 4);
    dgm_graph *g = dgm_graph_new();
    dgm_var *y = dgm_block_forward(blk, g, dgm_input(g, x));
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_value(y)->ndim, 4);
    for (int64_t i = 0; i < dgm_tensor_numel(x); i++) /* gamma = 0 */
        ck_assert_float_eq(dgm_tensor_get(dgm_value(y), i),
                           dgm_tensor_f32(x)[i]);
    dgm_tensor_fill(dgm_params_find(ps, "blk.gamma")->value, 0.7);
    for (int be = 0; be < 2; be++) {
        dgm_graph_reset(g);
        dgm_graph_set_backend(g, be ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
        y = dgm_block_forward(blk, g, dgm_input(g, x));
        ck_assert_ptr_nonnull(y);
        double ref[16 * 12];
        for (int n = 0; n < 2; n++) {
            sa_reference(ps, dgm_tensor_f32(x) + n * 16 * 12, 16, 2, 12, ref);
            for (int i = 0; i < 16 * 12; i++)
                ck_assert_msg(fabs(dgm_tensor_get(dgm_value(y), n * 192 + i) -
                                   ref[i]) < 1e-4 + 1e-4 * fabs(ref[i]),
                              "backend %d n %d i %d: %g vs %g", be, n, i,
                              dgm_tensor_get(dgm_value(y), n * 192 + i),
                              ref[i]);
        }
    }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

START_TEST(sa_gradient)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape in = {3, {4, 3, 2}}, out = {0};
    tc_block_ctx c = {tc_make_block(&b, ps, &cfg,
                                    "{plugin: self_attention, reduction: 2}",
                                    in, &out),
                      false};
    dgm_tensor_fill(dgm_params_find(ps, "blk.gamma")->value, 0.9);
    dgm_tensor *x = tc_batch_of(in, 2, 9);
    gc_result r = gc_gradcheck(tc_run_block, &c, 1, &x, NULL, DGM_BACKEND_REF,
                               1e-2, 2e-2, 2e-3);
    ck_assert_msg(r.ok, "%s", gc_describe(&r));
    r = gc_compare_backends(tc_run_block, &c, 1, &x, NULL, 1e-4, 1e-4);
    ck_assert_msg(r.ok, "%s", gc_describe(&r));
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
    /* with spectral norm on its projections (eval mode: fixed u, v) */
    tc_gradcheck_block("{plugin: self_attention, reduction: 2, "
                       "spectral_norm: true}",
                       in, (dgm_shape){0}, 2, true);
}
END_TEST

START_TEST(sa_bad_shape)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    ck_assert_int_eq(dgm_build_new(&b, tc_reg, ps, 3), 0);
    ck_assert_int_eq(dgm_config_parse(&cfg, "{plugin: self_attention}", "b"),
                     0);
    dgm_shape in = {1, {12}}, out = {0};
    dgm_block *blk;
    ck_assert_int_eq(dgm_block_create(b, cfg, "sa", &in, &out, &blk),
                     DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "self_attention"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[12]"));
    in = (dgm_shape){3, {4, 2, 2}};
    out = (dgm_shape){3, {4, 2, 3}};
    ck_assert_int_eq(dgm_block_create(b, cfg, "sa", &in, &out, &blk),
                     DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4, 2, 3]"));
    ck_assert_int_eq(dgm_params_count(ps), 0);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

/* ---- dcgan options ------------------------------------------------------ */

/* The block's output for x, as a fresh tensor. */
static dgm_tensor *block_out(dgm_block *blk, dgm_tensor *x)
{
    dgm_graph *g = dgm_graph_new();
    dgm_var *y = dgm_block_forward(blk, g, dgm_input(g, x));
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    dgm_tensor *t = dgm_tensor_clone(dgm_value(y));
    dgm_graph_free(g);
    return t;
}

/* The same network with and without attention_at: identical outputs while
 * gamma is 0 (the attention block's parameters come after the convs'). */
static void check_attention_insert(const char *plain, const char *with,
                                   dgm_shape in, dgm_shape out,
                                   const char *param, int64_t numel)
{
    dgm_params *p1 = dgm_params_new(), *p2 = dgm_params_new();
    dgm_build *b1, *b2;
    dgm_config *c1, *c2;
    dgm_shape o1 = out, o2 = out;
    dgm_block *k1 = tc_make_block(&b1, p1, &c1, plain, in, &o1);
    dgm_block *k2 = tc_make_block(&b2, p2, &c2, with, in, &o2);
    ck_assert_int_eq(o1.ndim, o2.ndim);
    dgm_param *q = dgm_params_find(p2, param);
    ck_assert_msg(q != NULL, "%s: no %s", with, param);
    ck_assert_int_eq(dgm_tensor_numel(q->value), numel);
    ck_assert_ptr_nonnull(dgm_params_find(p2, "blk.attention.gamma"));
    dgm_tensor *x = tc_batch_of(in, 2, 3);
    dgm_tensor *y1 = block_out(k1, x), *y2 = block_out(k2, x);
    ck_assert_int_eq(dgm_tensor_numel(y1), dgm_tensor_numel(y2));
    ck_assert_int_eq(memcmp(y1->data, y2->data, dgm_tensor_nbytes(y1)), 0);
    dgm_tensor_free(y2);
    /* a non-zero gate changes the output */
    dgm_tensor_fill(dgm_params_find(p2, "blk.attention.gamma")->value, 1.0);
    y2 = block_out(k2, x);
    ck_assert_int_ne(memcmp(y1->data, y2->data, dgm_tensor_nbytes(y1)), 0);
    dgm_tensor_free(y1);
    dgm_tensor_free(y2);
    dgm_tensor_free(x);
    dgm_build_free(b1);
    dgm_build_free(b2);
    dgm_config_free(c1);
    dgm_config_free(c2);
    dgm_params_free(p1);
    dgm_params_free(p2);
}

START_TEST(dcgan_attention_and_sn)
{
    dgm_shape img = {3, {1, 28, 28}};
    /* D: stage 0 is 4@14x14 (query: 4 / 2 = 2 channels) */
    check_attention_insert(
        "{plugin: dcgan_discriminator, width: 4}",
        "{plugin: dcgan_discriminator, width: 4, attention_at: 14, "
        "attention: {plugin: self_attention, reduction: 2}}",
        img, (dgm_shape){0}, "blk.attention.query.weight", 2 * 4);
    /* G: stage 0 is 8@7x7, stage 1 is 4@14x14 */
    check_attention_insert(
        "{plugin: dcgan_generator, width: 4}",
        "{plugin: dcgan_generator, width: 4, attention_at: 7, "
        "attention: {plugin: self_attention, reduction: 4}}",
        (dgm_shape){1, {6}}, img, "blk.attention.query.weight", 2 * 8);
    check_attention_insert(
        "{plugin: dcgan_generator, width: 4}",
        "{plugin: dcgan_generator, width: 4, attention_at: 14}",
        (dgm_shape){1, {6}}, img, "blk.attention.value.weight", 4 * 4);

    /* no stage of that size: refused, naming the sizes there are */
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    ck_assert_int_eq(dgm_build_new(&b, tc_reg, ps, 3), 0);
    ck_assert_int_eq(
        dgm_config_parse(
            &cfg, "{plugin: dcgan_discriminator, attention_at: 10}", "d.yaml"),
        0);
    dgm_shape out = {0};
    dgm_block *blk;
    ck_assert_int_eq(dgm_block_create(b, cfg, "d", &img, &out, &blk),
                     DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "attention_at"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "14, 7"));
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);

    /* spectral_norm: buffers on every layer, deconvs over dim 1 (their
     * output channels), and a finite forward */
    ps = dgm_params_new();
    out = img;
    blk = tc_make_block(&b, ps, &cfg,
                        "{plugin: dcgan_generator, width: 4, spectral_norm: "
                        "true}",
                        (dgm_shape){1, {6}}, &out);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.fc0.weight_u")->value),
        8 * 7 * 7);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.deconv1.weight_u")->value),
        4);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.deconv2.weight_v")->value),
        4 * 16);
    dgm_tensor *x = tc_batch_of((dgm_shape){1, {6}}, 2, 1);
    dgm_tensor *y = block_out(blk, x);
    ck_assert_int_eq(y->ndim, 4);
    for (int64_t i = 0; i < dgm_tensor_numel(y); i++)
        ck_assert(isfinite(dgm_tensor_f32(y)[i]));
    dgm_tensor_free(y);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);

    ps = dgm_params_new();
    out = (dgm_shape){0};
    blk = tc_make_block(&b, ps, &cfg,
                        "{plugin: dcgan_discriminator, width: 4, "
                        "spectral_norm: true}",
                        img, &out);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.conv2.weight_u")->value), 8);
    ck_assert_int_eq(
        dgm_tensor_numel(dgm_params_find(ps, "blk.conv2.weight_v")->value),
        4 * 16);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

/* batch_norm: false. G's fc0 bias has one entry per feature of the base
 * map (it was sized by its channels and every forward was refused); both
 * blocks then pass finite differences and REF against oneDNN. */
START_TEST(dcgan_without_batch_norm)
{
    dgm_shape img = {3, {1, 8, 8}}, z = {1, {5}};
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape out = img;
    tc_make_block(&b, ps, &cfg,
                  "{plugin: dcgan_generator, width: 4, "
                  "batch_norm: false}",
                  z, &out);
    /* 8x8: one stage from a 4@4x4 base */
    dgm_param *bias = dgm_params_find(ps, "blk.fc0.bias");
    ck_assert_ptr_nonnull(bias);
    ck_assert_int_eq(dgm_tensor_numel(bias->value), 4 * 4 * 4);
    ck_assert_ptr_null(dgm_params_find(ps, "blk.bn0.weight"));
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
    tc_gradcheck_block("{plugin: dcgan_generator, width: 4, batch_norm: false}",
                       z, img, 2, false);
    tc_gradcheck_block("{plugin: dcgan_discriminator, width: 4, "
                       "batch_norm: false}",
                       img, (dgm_shape){1, {1}}, 2, false);
}
END_TEST

/* The DCGAN pair and the conv encoder/decoder at 16, 32, 64, 128 with 1
 * and 3 channels: stage counts derived from the size (log2(S) - 2), the
 * channels of the image end, and the output shapes of a forward. */
START_TEST(image_sizes_and_channels)
{
    const int64_t sides[4] = {16, 32, 64, 128}, chans[2] = {1, 3};
    for (int si = 0; si < 4; si++)
        for (int ci = 0; ci < 2; ci++) {
            int64_t S = sides[si], C = chans[ci], d1 = 0;
            int stages = si + 2;
            dgm_shape img = {3, {C, S, S}}, z = {1, {6}};
            ck_assert_int_eq(tc_count_layers("{plugin: dcgan_generator, "
                                             "width: 4}",
                                             z, img, "deconv", &d1),
                             stages);
            ck_assert_int_eq(d1, C); /* the last deconv gives C channels */
            tc_sized_block("{plugin: dcgan_generator, width: 4}", z, img, 4,
                           (int64_t[]){2, C, S, S});
            ck_assert_int_eq(tc_count_layers("{plugin: dcgan_discriminator, "
                                             "width: 4}",
                                             img, (dgm_shape){1, {1}}, "conv",
                                             &d1),
                             stages);
            /* features: (4 << (stages - 1)) channels at 4x4 */
            tc_sized_block("{plugin: dcgan_discriminator, width: 4}", img,
                           (dgm_shape){0}, 2,
                           (int64_t[]){2, (4 << (stages - 1)) * 16});
            tc_sized_block("{plugin: conv_encoder, channels: [4, 8], out: 5}",
                           img, (dgm_shape){0}, 2, (int64_t[]){2, 5});
            tc_sized_block("{plugin: conv_decoder, channels: [8, 4]}",
                           (dgm_shape){1, {5}}, img, 4,
                           (int64_t[]){2, C, S, S});
        }
    /* stages set: 64x64 in 3 stages from an 8x8 base */
    int64_t d1 = 0;
    dgm_shape img = {3, {3, 64, 64}};
    ck_assert_int_eq(tc_count_layers("{plugin: dcgan_generator, width: 4, "
                                     "stages: 3}",
                                     (dgm_shape){1, {6}}, img, "deconv", &d1),
                     3);
    tc_sized_block("{plugin: dcgan_discriminator, width: 4, stages: 3}", img,
                   (dgm_shape){0}, 2, (int64_t[]){2, 16 * 8 * 8});
}
END_TEST

/* A size the pair cannot derive stages for, one too large, or stages
 * that do not divide the image: DGM_ESHAPE naming block, key and shape. */
START_TEST(image_sizes_refused)
{
    const struct {
        const char *yaml;
        bool gen;
        dgm_shape img;
        const char *says;
    } bad[] = {
        {"{plugin: dcgan_generator}",
         true,
         {3, {3, 48, 48}},
         "set `stages` for another size"},
        {"{plugin: dcgan_discriminator}",
         false,
         {3, {3, 100, 100}},
         "a power of two from 16 to 128 (or 28)"},
        {"{plugin: dcgan_generator}",
         true,
         {3, {3, 256, 256}},
         "larger than 128 x 128"},
        {"{plugin: dcgan_discriminator, stages: 4}",
         false,
         {3, {3, 24, 24}},
         "4 stride-2 stages need H and W divisible by 16"},
        {"{plugin: dcgan_generator}",
         true,
         {3, {3, 32, 20}},
         "W halving as often"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dgm_params *ps = dgm_params_new();
        dgm_build *b;
        dgm_config *cfg;
        ck_assert_int_eq(dgm_build_new(&b, tc_reg, ps, 3), 0);
        ck_assert_int_eq(dgm_config_parse(&cfg, bad[i].yaml, "block.yaml"), 0);
        dgm_shape z = {1, {6}}, out = bad[i].gen ? bad[i].img : (dgm_shape){0};
        dgm_block *blk;
        int rc = dgm_block_create(b, cfg, "blk", bad[i].gen ? &z : &bad[i].img,
                                  &out, &blk);
        const char *m = dgm_last_error();
        char shape[64];
        dgm_shape_str(3, bad[i].img.dim, shape, sizeof shape);
        ck_assert_msg(rc == DGM_ESHAPE, "%s: rc %d", bad[i].yaml, rc);
        ck_assert_msg(
            strstr(m, bad[i].gen ? "dcgan_generator" : "dcgan_discriminator") &&
                strstr(m, "stages") && strstr(m, shape) &&
                strstr(m, bad[i].says),
            "%s: %s", bad[i].yaml, m);
        dgm_build_free(b);
        dgm_config_free(cfg);
        dgm_params_free(ps);
    }
}
END_TEST

/* Finite differences through the blocks on a small RGB image (8x8,
 * 3 channels), and the oneDNN path against the reference. */
START_TEST(rgb_gradients)
{
    dgm_shape img = {3, {3, 8, 8}}, z = {1, {5}};
    tc_gradcheck_block("{plugin: dcgan_generator, width: 2, batch_norm: false}",
                       z, img, 2, false);
    tc_gradcheck_block("{plugin: dcgan_discriminator, width: 2, "
                       "batch_norm: false}",
                       img, (dgm_shape){1, {1}}, 2, false);
    tc_gradcheck_block(
        "{plugin: conv_encoder, channels: [2, 4], out: 3, activation: tanh, "
        "batch_norm: false}",
        img, (dgm_shape){0}, 2, false);
    tc_gradcheck_block(
        "{plugin: conv_decoder, channels: [4, 2], activation: tanh, "
        "batch_norm: false}",
        z, img, 2, false);
}
END_TEST

static Suite *gan_blocks_suite(void)
{
    Suite *s = suite_create("gan_blocks");
    TCase *tc = tq_case(s, "spectral_norm", sn_bounds_top_singular_value,
                        sn_matches_pytorch, sn_gradient, sn_bad_input,
                        sn_option_of_blocks);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 120);
    tc =
        tq_case(s, "self_attention", sa_identity_and_reference, sa_gradient,
                sa_bad_shape, dcgan_attention_and_sn, dcgan_without_batch_norm);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 120);
    tc = tq_case(s, "image_sizes", image_sizes_and_channels,
                 image_sizes_refused, rgb_gradients);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gan_blocks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
