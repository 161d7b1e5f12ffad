/* test_augment.c - the data augmentation plugins (flip, crop, rotate,
 * noise, color, occlude, blur, jpeg): exact results on small hand-checked
 * images, determinism per seed, noise statistics, shape errors, and colour
 * images: the geometric ones per channel against their one-channel
 * results, color against a float64 torchvision rebuild (tests/reference). */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct aug {
    void *so;
    const dgm_plugin_desc *desc;
    const dgm_augment_iface *iface;
    dgm_config *cfg;
    void *self;
} aug;

static dgm_data_info image_info(float lo, float hi)
{
    dgm_data_info info;
    memset(&info, 0, sizeof info);
    info.x_shape.ndim = 3;
    info.x_shape.dim[0] = 1;
    info.x_shape.dim[1] = 4;
    info.x_shape.dim[2] = 4;
    info.x_dtype = DGM_F32;
    info.x_min = lo;
    info.x_max = hi;
    return info;
}

/* dlopen DGM_PLUGIN_DIR/augment_<name>.so, validate yaml, create. */
static aug make(const char *name, const char *yaml, const dgm_data_info *info)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/augment_%s.so", DGM_PLUGIN_DIR, name);
    aug a;
    memset(&a, 0, sizeof a);
    a.so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(a.so, "dlopen %s: %s", path, dlerror());
    dgm_plugin_query_fn q =
        (dgm_plugin_query_fn)dlsym(a.so, DGM_PLUGIN_QUERY_SYMBOL);
    ck_assert_ptr_nonnull(q);
    a.desc = q(0);
    ck_assert_ptr_nonnull(a.desc);
    ck_assert_ptr_null(q(1));
    ck_assert_str_eq(a.desc->name, name);
    ck_assert_int_eq(a.desc->kind, DGM_KIND_AUGMENT);
    a.iface = a.desc->iface.augment;
    /* Not differentiable: apply only. */
    ck_assert_ptr_nonnull(a.iface->apply);
    ck_assert_ptr_null(a.iface->forward);
    ck_assert_int_eq(dgm_config_parse(&a.cfg, yaml, "aug.yaml"), 0);
    int rc = dgm_config_validate(a.cfg, a.desc->params, name, NULL);
    ck_assert_msg(rc == 0, "%s: %s", yaml, dgm_last_error());
    dgm_data_info def = image_info(0, 1);
    rc = a.iface->create(&a.self, a.cfg, info ? info : &def);
    ck_assert_msg(rc == 0, "%s: %s", yaml, dgm_last_error());
    return a;
}

static void done(aug *a)
{
    a->iface->destroy(a->self);
    dgm_config_free(a->cfg);
    dlclose(a->so);
}

/* [n, c, h, w] f32 holding 1, 2, 3, ... */
static dgm_tensor *ramp(int64_t n, int64_t c, int64_t h, int64_t w)
{
    const int64_t shape[4] = {n, c, h, w};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 4, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        dgm_tensor_f32(t)[i] = (float)(i + 1);
    return t;
}

static float at(const dgm_tensor *t, int64_t i, int64_t k, int64_t y, int64_t x)
{
    return dgm_tensor_f32(
        t)[((i * t->shape[1] + k) * t->shape[2] + y) * t->shape[3] + x];
}

static bool same_data(const dgm_tensor *a, const dgm_tensor *b)
{
    return dgm_tensor_numel(a) == dgm_tensor_numel(b) &&
           !memcmp(a->data, b->data, dgm_tensor_nbytes(a));
}

/* ---- flip --------------------------------------------------------------- */

START_TEST(test_flip_exact)
{
    aug a = make("flip", "{p: 1}", NULL);
    dgm_tensor *x = ramp(2, 2, 3, 4), *orig = dgm_tensor_clone(x);
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            for (int y = 0; y < 3; y++)
                for (int xx = 0; xx < 4; xx++)
                    ck_assert_float_eq(at(x, i, k, y, xx),
                                       at(orig, i, k, y, 3 - xx));
    /* Row 0 of image 0: 1 2 3 4 -> 4 3 2 1. */
    ck_assert_float_eq(dgm_tensor_f32(x)[0], 4.0f);
    ck_assert_float_eq(dgm_tensor_f32(x)[3], 1.0f);
    done(&a);

    a = make("flip", "{p: 1.0, horizontal: false}", NULL);
    dgm_tensor_copy(x, orig);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            for (int y = 0; y < 3; y++)
                for (int xx = 0; xx < 4; xx++)
                    ck_assert_float_eq(at(x, i, k, y, xx),
                                       at(orig, i, k, 2 - y, xx));
    done(&a);

    a = make("flip", "{p: 0}", NULL);
    dgm_tensor_copy(x, orig);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    ck_assert(same_data(x, orig));
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
}
END_TEST

START_TEST(test_flip_random)
{
    /* p = 0.5 over 64 images: each image is either itself or its mirror,
     * both happen, one uniform per image decides (u < p). */
    aug a = make("flip", "{}", NULL);
    dgm_tensor *x = ramp(64, 1, 2, 3), *orig = dgm_tensor_clone(x);
    dgm_rng r, pred;
    dgm_rng_seed(&r, 7);
    pred = r;
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    int flipped = 0;
    for (int i = 0; i < 64; i++) {
        bool want = dgm_rng_uniform(&pred) < 0.5f;
        bool got = at(x, i, 0, 0, 0) == at(orig, i, 0, 0, 2);
        ck_assert_int_eq(got, want);
        flipped += got;
        for (int y = 0; y < 2; y++)
            for (int xx = 0; xx < 3; xx++)
                ck_assert_float_eq(at(x, i, 0, y, xx),
                                   at(orig, i, 0, y, got ? 2 - xx : xx));
    }
    ck_assert_int_gt(flipped, 10);
    ck_assert_int_lt(flipped, 54);
    /* The stream advanced by exactly one draw per image. */
    ck_assert(!memcmp(&r, &pred, sizeof r));
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
}
END_TEST

/* ---- crop --------------------------------------------------------------- */

/* Check x against orig shifted by the (top, left) draws a copy of the rng
 * predicts; returns how many images moved. */
static int check_crop(const dgm_tensor *x, const dgm_tensor *orig, dgm_rng pred,
                      int pad, bool edge)
{
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    int moved = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t dy = (int64_t)dgm_rng_below(&pred, 2 * pad + 1) - pad;
        int64_t dx = (int64_t)dgm_rng_below(&pred, 2 * pad + 1) - pad;
        moved += dy != 0 || dx != 0;
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t xx = 0; xx < w; xx++) {
                    int64_t sy = y + dy, sx = xx + dx;
                    float want;
                    if (sy >= 0 && sy < h && sx >= 0 && sx < w)
                        want = at(orig, i, k, sy, sx);
                    else if (!edge)
                        want = 0.0f;
                    else
                        want = at(orig, i, k,
                                  sy < 0    ? 0
                                  : sy >= h ? h - 1
                                            : sy,
                                  sx < 0    ? 0
                                  : sx >= w ? w - 1
                                            : sx);
                    ck_assert_msg(at(x, i, k, y, xx) == want,
                                  "image %lld shift (%lld, %lld) at c%lld "
                                  "y%lld x%lld: %g, want %g",
                                  (long long)i, (long long)dy, (long long)dx,
                                  (long long)k, (long long)y, (long long)xx,
                                  at(x, i, k, y, xx), want);
                }
    }
    return moved;
}

START_TEST(test_crop_translation)
{
    aug a = make("crop", "{pad: 2}", NULL);
    dgm_tensor *x = ramp(12, 2, 5, 6), *orig = dgm_tensor_clone(x);
    dgm_rng r;
    dgm_rng_seed(&r, 3);
    dgm_rng pred = r;
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    ck_assert_int_ge(check_crop(x, orig, pred, 2, false), 6);
    /* Zeros came in somewhere. */
    int zeros = 0;
    for (int64_t i = 0; i < dgm_tensor_numel(x); i++)
        zeros += dgm_tensor_f32(x)[i] == 0.0f;
    ck_assert_int_gt(zeros, 0);
    done(&a);

    a = make("crop", "{pad: 1, mode: edge}", NULL);
    dgm_tensor_copy(x, orig);
    pred = r;
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    ck_assert_int_ge(check_crop(x, orig, pred, 1, true), 6);
    for (int64_t i = 0; i < dgm_tensor_numel(x); i++)
        ck_assert_float_ne(dgm_tensor_f32(x)[i], 0.0f);
    done(&a);

    /* pad 0 draws below(1) = 0: identity. */
    a = make("crop", "{pad: 0}", NULL);
    dgm_tensor_copy(x, orig);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    ck_assert(same_data(x, orig));
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
}
END_TEST

START_TEST(test_crop_hand)
{
    /* A 3x3 image with pad 1: find the seed whose first draws are
     * top 0, left 2, i.e. the window moves up one and right one:
     * out(y, x) = in(y - 1, x + 1). */
    aug a = make("crop", "{pad: 1}", NULL);
    dgm_rng r;
    uint64_t seed = 0;
    for (;; seed++) {
        dgm_rng_seed(&r, seed);
        dgm_rng p = r;
        if (dgm_rng_below(&p, 3) == 0 && dgm_rng_below(&p, 3) == 2)
            break;
    }
    dgm_tensor *x = ramp(1, 1, 3, 3);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    const float want[9] = {0, 0, 0, 2, 3, 0, 5, 6, 0};
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(dgm_tensor_f32(x)[i], want[i]);
    done(&a);
    dgm_tensor_free(x);
}
END_TEST

/* ---- rotate ------------------------------------------------------------- */

START_TEST(test_rotate_90)
{
    aug a = make("rotate", "{degrees: 90, fixed: true}", NULL);
    dgm_tensor *x = ramp(1, 2, 3, 3);
    dgm_rng r, before;
    dgm_rng_seed(&r, 5);
    before = r;
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    /* Counter-clockwise: 1 2 3 / 4 5 6 / 7 8 9 -> 3 6 9 / 2 5 8 / 1 4 7,
     * and the same for the second channel (10..18). */
    const float want[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
    for (int i = 0; i < 9; i++) {
        ck_assert_float_eq(dgm_tensor_f32(x)[i], want[i]);
        ck_assert_float_eq(dgm_tensor_f32(x)[9 + i], want[i] + 9);
    }
    ck_assert(!memcmp(&r, &before, sizeof r)); /* fixed: no draws */
    /* Four quarter turns give the image back, on an even size too. */
    dgm_tensor *y = ramp(2, 1, 4, 4), *orig = dgm_tensor_clone(y);
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(a.iface->apply(a.self, y, &r), 0);
        if (k == 0) /* top-left of the turned 4x4 is the old top-right */
            ck_assert_float_eq(dgm_tensor_f32(y)[0], 4.0f);
    }
    ck_assert(same_data(y, orig));
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    dgm_tensor_free(orig);
}
END_TEST

START_TEST(test_rotate_45)
{
    /* An all-ones 3x3 turned by 45 degrees: the centre stays 1, the edge
     * middles sample exactly inside (1), and each corner samples
     * (1, 1 - sqrt 2) (up to symmetry), half inside: 2 - sqrt 2. */
    aug a = make("rotate", "{degrees: 45, fixed: true}", NULL);
    const int64_t shape[4] = {1, 1, 3, 3};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, shape);
    dgm_tensor_fill(x, 1.0);
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    const float *v = dgm_tensor_f32(x);
    ck_assert_float_eq_tol(v[4], 1.0f, 1e-6f);
    for (int c = 1; c < 9; c += 2) /* e.g. top middle samples (1.71, 0.29) */
        ck_assert_float_eq_tol(v[c], 1.0f, 1e-6f);
    for (int c = 0; c < 9; c += 2)
        if (c != 4)
            ck_assert_float_eq_tol(v[c], 2.0 - sqrt(2.0), 1e-6);
    done(&a);
    dgm_tensor_free(x);
}
END_TEST

START_TEST(test_rotate_random)
{
    /* Same seed, same result; degrees 0 is the identity. */
    aug a = make("rotate", "{degrees: 30}", NULL);
    dgm_tensor *x1 = ramp(4, 1, 6, 6), *x2 = ramp(4, 1, 6, 6),
               *orig = ramp(4, 1, 6, 6);
    dgm_rng r1, r2;
    dgm_rng_seed(&r1, 11);
    dgm_rng_seed(&r2, 11);
    ck_assert_int_eq(a.iface->apply(a.self, x1, &r1), 0);
    ck_assert_int_eq(a.iface->apply(a.self, x2, &r2), 0);
    ck_assert(same_data(x1, x2));
    ck_assert(!same_data(x1, orig));
    /* The centre pixels of an even image stay inside: no zeros there. */
    for (int i = 0; i < 4; i++)
        ck_assert_float_ne(at(x1, i, 0, 2, 2), 0.0f);
    done(&a);
    a = make("rotate", "{degrees: 0}", NULL);
    ck_assert_int_eq(a.iface->apply(a.self, x2, &r2), 0);
    ck_assert(same_data(x1, x2));
    done(&a);
    dgm_tensor_free(x1);
    dgm_tensor_free(x2);
    dgm_tensor_free(orig);
}
END_TEST

/* ---- noise -------------------------------------------------------------- */

START_TEST(test_noise_stats)
{
    aug a = make("noise", "{std: 0.2, clamp: false}", NULL);
    const int64_t shape[2] = {100, 400};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 2, shape);
    dgm_tensor_fill(x, 0.5);
    dgm_rng r;
    dgm_rng_seed(&r, 9);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    double s = 0, s2 = 0;
    const int64_t n = dgm_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        double d = dgm_tensor_f32(x)[i] - 0.5;
        s += d;
        s2 += d * d;
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    /* 40000 draws: the mean's sd is 0.001, the sd's about 0.0007. */
    ck_assert_double_lt(fabs(mean), 0.005);
    ck_assert_double_lt(fabs(sd - 0.2), 0.004);
    done(&a);
    dgm_tensor_free(x);
}
END_TEST

START_TEST(test_noise_clamp_and_seed)
{
    dgm_data_info info = image_info(0.0f, 1.0f);
    aug a = make("noise", "{std: 1.0}", &info); /* clamp defaults to true */
    dgm_tensor *x1 = ramp(8, 1, 4, 4), *x2 = ramp(8, 1, 4, 4);
    dgm_tensor_fill(x1, 0.5);
    dgm_tensor_fill(x2, 0.5);
    dgm_rng r1, r2;
    dgm_rng_seed(&r1, 21);
    dgm_rng_seed(&r2, 21);
    ck_assert_int_eq(a.iface->apply(a.self, x1, &r1), 0);
    ck_assert_int_eq(a.iface->apply(a.self, x2, &r2), 0);
    ck_assert(same_data(x1, x2));
    int lo = 0, hi = 0;
    for (int64_t i = 0; i < dgm_tensor_numel(x1); i++) {
        float v = dgm_tensor_f32(x1)[i];
        ck_assert(v >= 0.0f && v <= 1.0f);
        lo += v == 0.0f;
        hi += v == 1.0f;
    }
    ck_assert_int_gt(lo, 0);
    ck_assert_int_gt(hi, 0);
    /* The value added is exactly std * the stream's normals. */
    dgm_rng pred;
    dgm_rng_seed(&pred, 21);
    dgm_tensor_fill(x1, 0.5);
    dgm_rng_seed(&r1, 21);
    ck_assert_int_eq(a.iface->apply(a.self, x1, &r1), 0);
    for (int64_t i = 0; i < dgm_tensor_numel(x1); i++) {
        float want = 0.5f + 1.0f * dgm_rng_normal(&pred);
        want = want < 0 ? 0 : want > 1 ? 1 : want;
        ck_assert_float_eq(dgm_tensor_f32(x1)[i], want);
    }
    done(&a);
    dgm_tensor_free(x1);
    dgm_tensor_free(x2);
}
END_TEST

/* ---- occlude, blur (robustness corruptions) ------------------------------ */

/* occlude: exactly one size x size square per image and channel takes the
 * data's lowest value (here -1, below every ramp value), the rest is
 * untouched; a size past the image covers all of it; size 0 changes
 * nothing. */
START_TEST(test_occlude_square)
{
    dgm_data_info info = image_info(-1, 100);
    dgm_rng r;
    dgm_rng_seed(&r, 5);
    aug a = make("occlude", "{size: 3}", &info);
    dgm_tensor *x = ramp(4, 2, 6, 7), *orig = ramp(4, 2, 6, 7);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int64_t i = 0; i < 4; i++)
        for (int64_t k = 0; k < 2; k++) {
            int filled = 0, y0 = 99, x0 = 99;
            for (int64_t y = 0; y < 6; y++)
                for (int64_t xx = 0; xx < 7; xx++) {
                    float v = at(x, i, k, y, xx);
                    if (v == -1.0f) {
                        filled++;
                        y0 = y < y0 ? (int)y : y0;
                        x0 = xx < x0 ? (int)xx : x0;
                    } else {
                        ck_assert(v == at(orig, i, k, y, xx));
                    }
                }
            ck_assert_int_eq(filled, 9);
            for (int64_t y = y0; y < y0 + 3; y++) /* a square, not scattered */
                for (int64_t xx = x0; xx < x0 + 3; xx++)
                    ck_assert(at(x, i, k, y, xx) == -1.0f);
        }
    done(&a);
    a = make("occlude", "{size: 50}", &info);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int64_t j = 0; j < dgm_tensor_numel(x); j++)
        ck_assert(dgm_tensor_f32(x)[j] == -1.0f);
    done(&a);
    a = make("occlude", "{size: 0}", &info);
    dgm_tensor *y = ramp(4, 2, 6, 7);
    ck_assert_int_eq(a.iface->apply(a.self, y, &r), 0);
    ck_assert(same_data(y, orig));
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    dgm_tensor_free(orig);
}
END_TEST

/* blur: an impulse spreads into the separable kernel
 * k(i) k(j), k(j) = exp(-j^2 / (2 sigma^2)) / sum over |j| <= 3 sigma; a
 * constant image stays constant (edges replicated); sigma 0 is exact
 * identity. */
START_TEST(test_blur_kernel)
{
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    aug a = make("blur", "{sigma: 1.0}", NULL);
    const int64_t shape[4] = {1, 1, 9, 9};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, shape);
    dgm_tensor_fill(x, 0.0);
    dgm_tensor_f32(x)[4 * 9 + 4] = 1.0f;
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    double k[7], sum = 0;
    for (int j = -3; j <= 3; j++)
        sum += k[j + 3] = exp(-0.5 * j * j);
    double total = 0;
    for (int y = 0; y < 9; y++)
        for (int xx = 0; xx < 9; xx++) {
            int dy = y - 4, dx = xx - 4;
            double want = abs(dy) <= 3 && abs(dx) <= 3
                              ? k[dy + 3] / sum * k[dx + 3] / sum
                              : 0.0;
            ck_assert_double_eq_tol(at(x, 0, 0, y, xx), want, 1e-7);
            total += at(x, 0, 0, y, xx);
        }
    ck_assert_double_eq_tol(total, 1.0, 1e-6);
    dgm_tensor_fill(x, 0.25);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int64_t j = 0; j < 81; j++)
        ck_assert_double_eq_tol(dgm_tensor_f32(x)[j], 0.25, 1e-7);
    done(&a);
    a = make("blur", "{sigma: 0}", NULL);
    dgm_tensor *y = ramp(2, 3, 5, 5), *orig = ramp(2, 3, 5, 5);
    ck_assert_int_eq(a.iface->apply(a.self, y, &r), 0);
    ck_assert(same_data(y, orig));
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    dgm_tensor_free(orig);
}
END_TEST

/* jpeg: values map to 8 bits over the data's range and back; at quality
 * 100 a smooth grey or RGB image returns within a few levels, a lower
 * quality loses more of a checkerboard; other channel counts and data
 * without a range are refused. */
static double jpeg_error(int quality, int64_t c, bool checker)
{
    dgm_data_info info = image_info(-1, 1);
    char yaml[64];
    snprintf(yaml, sizeof yaml, "{quality: %d}", quality);
    aug a = make("jpeg", yaml, &info);
    const int64_t shape[4] = {2, c, 16, 16};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, shape);
    float *d = dgm_tensor_f32(x);
    for (int64_t j = 0; j < dgm_tensor_numel(x); j++) {
        int64_t p = j % 256, y = p / 16, xx = p % 16;
        d[j] = checker ? (((y / 2 + xx / 2) % 2) ? 0.8f : -0.8f)
                       : -1.0f + 2.0f * (float)(y + xx) / 30.0f;
    }
    dgm_tensor *orig = dgm_tensor_new(DGM_F32, 4, shape);
    memcpy(orig->data, x->data, dgm_tensor_nbytes(x));
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    double worst = 0;
    for (int64_t j = 0; j < dgm_tensor_numel(x); j++) {
        double e = fabs(d[j] - dgm_tensor_f32(orig)[j]);
        worst = e > worst ? e : worst;
    }
    done(&a);
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
    return worst;
}

START_TEST(test_jpeg_round_trip)
{
    /* 8-bit levels of a range of 2: one level is 2 / 255 */
    ck_assert_double_lt(jpeg_error(100, 1, false), 3 * 2.0 / 255);
    ck_assert_double_lt(jpeg_error(100, 3, false), 4 * 2.0 / 255);
    double q90 = jpeg_error(90, 1, true), q5 = jpeg_error(5, 1, true);
    ck_assert_msg(q5 > q90 && q5 > 0.1, "q5 %g q90 %g", q5, q90);
    dgm_data_info info = image_info(-1, 1);
    aug a = make("jpeg", "{quality: 50}", &info);
    const int64_t shape[4] = {1, 2, 4, 4};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, shape);
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "jpeg"), "%s", dgm_last_error());
    done(&a);
    dgm_tensor_free(x);
    /* No range: refused at create. */
    char path[1024];
    snprintf(path, sizeof path, "%s/augment_jpeg.so", DGM_PLUGIN_DIR);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(so);
    const dgm_plugin_desc *d =
        ((dgm_plugin_query_fn)dlsym(so, DGM_PLUGIN_QUERY_SYMBOL))(0);
    dgm_config *cfg = NULL;
    ck_assert_int_eq(dgm_config_parse(&cfg, "{quality: 50}", "j.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, d->params, "jpeg", NULL), 0);
    dgm_data_info none = image_info(0, 0);
    void *self = NULL;
    ck_assert_int_eq(d->iface.augment->create(&self, cfg, &none), DGM_ECONFIG);
    ck_assert_msg(strstr(dgm_last_error(), "range"), "%s", dgm_last_error());
    dgm_config_free(cfg);
    dlclose(so);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(test_shape_errors)
{
    const char *names[] = {"flip", "crop", "rotate"};
    const int64_t shape3[3] = {2, 3, 4};
    dgm_tensor *x3 = dgm_tensor_new(DGM_F32, 3, shape3);
    const int64_t shape4[4] = {1, 1, 2, 2};
    dgm_tensor *xi = dgm_tensor_new(DGM_I32, 4, shape4);
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    for (int k = 0; k < 3; k++) {
        aug a = make(names[k], "{}", NULL);
        dgm_error_clear();
        ck_assert_int_eq(a.iface->apply(a.self, x3, &r), DGM_ESHAPE);
        ck_assert_msg(strstr(dgm_last_error(), names[k]) &&
                          strstr(dgm_last_error(), "[2, 3, 4]"),
                      "%s", dgm_last_error());
        ck_assert_int_eq(a.iface->apply(a.self, xi, &r), DGM_EDTYPE);
        ck_assert_msg(strstr(dgm_last_error(), names[k]) &&
                          strstr(dgm_last_error(), "i32"),
                      "%s", dgm_last_error());
        done(&a);
    }
    aug a = make("noise", "{}", NULL);
    ck_assert_int_eq(a.iface->apply(a.self, xi, &r), DGM_EDTYPE);
    ck_assert_msg(strstr(dgm_last_error(), "noise"), "%s", dgm_last_error());
    /* Noise works on any rank. */
    ck_assert_int_eq(a.iface->apply(a.self, x3, &r), 0);
    done(&a);
    dgm_tensor_free(x3);
    dgm_tensor_free(xi);
}
END_TEST

/* ---- colour images ------------------------------------------------------ */

/* [n, c, h, w] f32: lo + (hi - lo) * ((37i + 53k + 11y + 7x) % 97) / 96,
 * the formula of tests/reference/color_jitter_ref.py. */
static dgm_tensor *rgb_pattern(int64_t n, int64_t c, int64_t h, int64_t w,
                               float lo, float hi)
{
    const int64_t shape[4] = {n, c, h, w};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 4, shape);
    ck_assert_ptr_nonnull(t);
    float *d = dgm_tensor_f32(t);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++) {
                    float u = (float)((i * 37 + k * 53 + y * 11 + x * 7) % 97) /
                              96.0f;
                    *d++ = lo + (hi - lo) * u;
                }
    return t;
}

/* Channel k of a batch, as a one-channel batch [n, 1, h, w]. */
static dgm_tensor *channel_of(const dgm_tensor *x, int64_t k)
{
    const int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3];
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 4, (int64_t[]){n, 1, h, w});
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < n; i++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t xx = 0; xx < w; xx++)
                dgm_tensor_f32(t)[(i * h + y) * w + xx] = at(x, i, k, y, xx);
    return t;
}

/* The geometric augments on RGB: each channel of the result is what the
 * one-channel augment gives for that channel alone with the same stream
 * (one geometry per image, shared by its channels, which stay apart). */
START_TEST(test_rgb_like_per_channel)
{
    const char *names[3] = {"flip", "crop", "rotate"};
    const char *yamls[3] = {"{p: 0.5}", "{pad: 2}", "{degrees: 40}"};
    for (int a = 0; a < 3; a++) {
        aug g = make(names[a], yamls[a], NULL);
        dgm_tensor *x = rgb_pattern(6, 3, 7, 6, 0.0f, 1.0f);
        dgm_tensor *orig = rgb_pattern(6, 3, 7, 6, 0.0f, 1.0f);
        dgm_rng r;
        dgm_rng_seed(&r, 21);
        ck_assert_int_eq(g.iface->apply(g.self, x, &r), 0);
        ck_assert_msg(!same_data(x, orig), "%s changed nothing", names[a]);
        for (int64_t k = 0; k < 3; k++) {
            dgm_tensor *one = channel_of(orig, k), *got = channel_of(x, k);
            dgm_rng_seed(&r, 21);
            ck_assert_int_eq(g.iface->apply(g.self, one, &r), 0);
            ck_assert_msg(same_data(one, got), "%s: channel %lld differs",
                          names[a], (long long)k);
            dgm_tensor_free(one);
            dgm_tensor_free(got);
        }
        dgm_tensor_free(x);
        dgm_tensor_free(orig);
        done(&g);
    }
}
END_TEST

/* A known RGB pattern mirrored left-right: pixel (y, x) of every channel
 * comes from (y, W-1-x), and the channels keep their own values. */
START_TEST(test_flip_rgb_known)
{
    aug a = make("flip", "{p: 1}", NULL);
    dgm_tensor *x = rgb_pattern(1, 3, 2, 3, 0.0f, 1.0f);
    dgm_tensor *orig = rgb_pattern(1, 3, 2, 3, 0.0f, 1.0f);
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int64_t k = 0; k < 3; k++)
        for (int64_t y = 0; y < 2; y++)
            for (int64_t xx = 0; xx < 3; xx++) {
                /* (53k + 11y + 7(2 - x)) % 97 / 96 by hand */
                float want =
                    (float)((53 * k + 11 * y + 7 * (2 - xx)) % 97) / 96.0f;
                ck_assert_float_eq(at(x, 0, k, y, xx), want);
                ck_assert_float_eq(at(x, 0, k, y, xx),
                                   at(orig, 0, k, y, 2 - xx));
            }
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
    done(&a);
}
END_TEST

/* noise on RGB: x + std * the stream's normals in memory order. */
START_TEST(test_noise_rgb_reference)
{
    aug a = make("noise", "{std: 0.1, clamp: false}", NULL);
    dgm_tensor *x = rgb_pattern(2, 3, 4, 4, 0.0f, 1.0f);
    dgm_tensor *orig = rgb_pattern(2, 3, 4, 4, 0.0f, 1.0f);
    dgm_rng r, ref;
    dgm_rng_seed(&r, 9);
    dgm_rng_seed(&ref, 9);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    for (int64_t i = 0; i < dgm_tensor_numel(x); i++) {
        float want = dgm_tensor_f32(orig)[i] + 0.1f * dgm_rng_normal(&ref);
        ck_assert_float_eq_tol(dgm_tensor_f32(x)[i], want, 1e-6);
    }
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
    done(&a);
}
END_TEST

/* color with fixed factors against the float64 torchvision rebuild: each
 * case on the pattern images in its data range. */
START_TEST(test_color_matches_torch)
{
    const struct {
        const char *yaml;
        float lo, hi;
        double b, c, s, h;
    } cases[] = {
        {"{brightness: 0.2, contrast: 0.3, saturation: 0.4, hue: 0.1, "
         "fixed: true}",
         0.0f, 1.0f, 0.2, 0.3, 0.4, 0.1},
        {"{saturation: 0.5, hue: 0.45, fixed: true}", -1.0f, 1.0f, 0, 0, 0.5,
         0.45},
        {"{hue: 0.3, fixed: true}", 0.0f, 1.0f, 0, 0, 0, 0.3},
    };
    enum { N_CASES = sizeof cases / sizeof cases[0] };
    const int64_t n = 2, C = 3, H = 4, W = 5;
    dgm_tensor *x[N_CASES];
    char cmd[2048];
    int len = snprintf(cmd, sizeof cmd,
                       "/usr/bin/python3 "
                       "'%s/tests/reference/color_jitter_ref.py' %lld %lld "
                       "%lld %lld",
                       DGM_SOURCE_DIR, (long long)n, (long long)C, (long long)H,
                       (long long)W);
    for (int k = 0; k < N_CASES; k++) {
        dgm_data_info info = image_info(cases[k].lo, cases[k].hi);
        info.x_shape.dim[0] = 3;
        aug a = make("color", cases[k].yaml, &info);
        x[k] = rgb_pattern(n, C, H, W, cases[k].lo, cases[k].hi);
        dgm_rng r;
        dgm_rng_seed(&r, 3);
        ck_assert_int_eq(a.iface->apply(a.self, x[k], &r), 0);
        done(&a);
        len +=
            snprintf(cmd + len, sizeof cmd - (size_t)len,
                     " %g %g %.17g %.17g %.17g %.17g", cases[k].lo, cases[k].hi,
                     cases[k].b, cases[k].c, cases[k].s, cases[k].h);
    }
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    for (int k = 0; k < N_CASES; k++) {
        int64_t got = 0;
        double v, worst = 0;
        while (got < dgm_tensor_numel(x[k]) && fscanf(p, "%lf", &v) == 1) {
            double d = fabs(v - dgm_tensor_f32(x[k])[got++]);
            worst = d > worst ? d : worst;
        }
        ck_assert_int_eq(got, dgm_tensor_numel(x[k]));
        ck_assert_msg(worst < 2e-6 * (cases[k].hi - cases[k].lo),
                      "%s: worst |dgm - torch| %g", cases[k].yaml, worst);
        dgm_tensor_free(x[k]);
    }
    ck_assert_int_eq(pclose(p), 0);
}
END_TEST

/* Drawn factors: per image, within their ranges, repeatable per seed;
 * saturation and hue leave a grey image alone. */
START_TEST(test_color_random_and_grey)
{
    aug a = make("color", "{brightness: 0.5}", NULL);
    dgm_tensor *x = rgb_pattern(8, 3, 4, 4, 0.0f, 0.5f);
    dgm_tensor *y = rgb_pattern(8, 3, 4, 4, 0.0f, 0.5f);
    dgm_tensor *orig = rgb_pattern(8, 3, 4, 4, 0.0f, 0.5f);
    dgm_rng r;
    dgm_rng_seed(&r, 4);
    ck_assert_int_eq(a.iface->apply(a.self, x, &r), 0);
    dgm_rng_seed(&r, 4);
    ck_assert_int_eq(a.iface->apply(a.self, y, &r), 0);
    ck_assert(same_data(x, y));
    double first = 0;
    bool differ = false;
    for (int64_t i = 0; i < 8; i++) {
        /* one factor per image: every pixel scaled alike, in [0.5, 1.5] */
        int64_t k0 = i * 48 + 1; /* a non-zero pixel */
        double f = dgm_tensor_f32(x)[k0] / dgm_tensor_f32(orig)[k0];
        ck_assert_msg(f >= 0.5 - 1e-6 && f <= 1.5 + 1e-6, "factor %g", f);
        for (int64_t k = i * 48; k < (i + 1) * 48; k++)
            ck_assert_float_eq_tol(dgm_tensor_f32(x)[k],
                                   (float)(f * dgm_tensor_f32(orig)[k]), 1e-6);
        if (i == 0)
            first = f;
        else if (fabs(f - first) > 1e-3)
            differ = true;
    }
    ck_assert(differ);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    dgm_tensor_free(orig);
    done(&a);
    aug g = make("color", "{saturation: 0.8, hue: 0.4}", NULL);
    x = rgb_pattern(3, 1, 4, 4, 0.0f, 1.0f);
    orig = rgb_pattern(3, 1, 4, 4, 0.0f, 1.0f);
    ck_assert_int_eq(g.iface->apply(g.self, x, &r), 0);
    ck_assert(same_data(x, orig));
    dgm_tensor_free(x);
    dgm_tensor_free(orig);
    /* two channels are neither grey nor RGB: refused at create */
    dgm_data_info two = image_info(0, 1);
    two.x_shape.dim[0] = 2;
    void *self = NULL;
    ck_assert_int_eq(g.iface->create(&self, g.cfg, &two), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "color: images of 1 or 3 "
                                           "channels, the data has 2"),
                  "%s", dgm_last_error());
    done(&g);
}
END_TEST

static Suite *augment_suite(void)
{
    Suite *s = suite_create("augment");
    tq_case(s, "flip", test_flip_exact, test_flip_random);
    tq_case(s, "crop", test_crop_translation, test_crop_hand);
    tq_case(s, "rotate", test_rotate_90, test_rotate_45, test_rotate_random);
    tq_case(s, "noise", test_noise_stats, test_noise_clamp_and_seed);
    TCase *tc = tq_case(s, "colour", test_rgb_like_per_channel,
                        test_flip_rgb_known, test_noise_rgb_reference,
                        test_color_matches_torch, test_color_random_and_grey);
    tcase_set_timeout(tc, 60);
    tq_case(s, "corruptions", test_occlude_square, test_blur_kernel,
            test_jpeg_round_trip);
    tq_case(s, "errors", test_shape_errors);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(augment_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
