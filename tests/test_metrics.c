/* test_metrics.c - suite metrics: FID, KID and precision/recall maths on
 * fixed feature sets against numpy, the classifier and its accuracy, and
 * `dgm eval` on runs and on sample files (good and malformed). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "cli.h"
#include "dgm/dgm.h"
#include "feature_math.h"

static char tmp_dir[1024];

static void make_tmp(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/metrics-%ld", t ? t : "/tmp",
             (long)getpid());
    if (t)
        mkdir(t, 0755);
    mkdir(tmp_dir, 0755);
}

/* Deterministic features: x [n, d] = A z + b with z from an LCG's
 * uniform draws (so the sets are correlated, not isotropic). */
static float *features(int64_t n, int64_t d, unsigned seed, float shift,
                       float scale)
{
    float *x = malloc(sizeof *x * (size_t)(n * d));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int64_t i = 0; i < n; i++) {
        float z[64];
        for (int64_t j = 0; j < d; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            z[j] = (float)((s >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
        }
        for (int64_t j = 0; j < d; j++) {
            float v = z[j] + 0.5f * z[(j + 1) % d] - 0.25f * z[(j + 3) % d];
            x[i * d + j] = scale * v + shift * (float)(j % 3);
        }
    }
    return x;
}

static void write_raw(const char *path, const float *x, int64_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(x, sizeof *x, (size_t)n, f), (size_t)n);
    fclose(f);
}

/* The numpy reference for FID and the unbiased cubic-kernel MMD^2 of the
 * two sets (whole sets). trace sqrt(S1 S2) is taken as the sum of square
 * roots of the eigenvalues of the (non-symmetric) product S1 S2, a
 * different route from the plugin's two symmetric eigendecompositions. */
static const char ref_py[] =
    "import sys, numpy as np\n"
    "d = int(sys.argv[3])\n"
    "x = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64)"
    ".reshape(-1, d)\n"
    "y = np.fromfile(sys.argv[2], dtype=np.float32).astype(np.float64)"
    ".reshape(-1, d)\n"
    "m1, m2 = x.mean(0), y.mean(0)\n"
    "s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)\n"
    "ev = np.linalg.eigvals(s1 @ s2)\n"
    "tr = np.sqrt(np.clip(ev.real, 0, None)).sum()\n"
    "fid = ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr\n"
    "k = lambda a, b: (a @ b.T / d + 1) ** 3\n"
    "m = min(len(x), len(y))\n"
    "x, y = x[:m], y[:m]\n"
    "kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)\n"
    "mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / "
    "(m * (m - 1)) - 2 * kxy.sum() / (m * m)\n"
    "print('%.17g %.17g' % (fid, mmd))\n";

static void reference(const float *x, int64_t nx, const float *y, int64_t ny,
                      int64_t d, double *fid, double *kid)
{
    char px[1100], py[1100], ps[1100], cmd[4000];
    snprintf(px, sizeof px, "%s/x.f32", tmp_dir);
    snprintf(py, sizeof py, "%s/y.f32", tmp_dir);
    snprintf(ps, sizeof ps, "%s/ref.py", tmp_dir);
    write_raw(px, x, nx * d);
    write_raw(py, y, ny * d);
    FILE *f = fopen(ps, "w");
    ck_assert_ptr_nonnull(f);
    fputs(ref_py, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %lld", ps, px, py,
             (long long)d);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%lf %lf", fid, kid), 2);
    ck_assert_int_eq(pclose(p), 0);
}

static void assert_rel(double got, double want, double rtol, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rtol * fabs(want),
                  "%s: got %.12g, numpy %.12g (rel %.3g)", what, got, want,
                  fabs(got - want) / fabs(want));
}

/* ---- fid -------------------------------------------------------------- */

START_TEST(fid_matches_numpy)
{
    make_tmp();
    const int64_t d = 24, nx = 700, ny = 500;
    float *x = features(nx, d, 1, 0.0f, 1.0f);
    float *y = features(ny, d, 2, 0.3f, 1.4f);
    double fid, kid_ref, got;
    reference(x, nx, y, ny, d, &fid, &kid_ref);
    ck_assert_int_eq(dgm__feat_fid(x, nx, y, ny, d, &got), 0);
    ck_assert(fid > 0.1); /* the sets really differ */
    assert_rel(got, fid, 1e-4, "fid");
    /* a set against itself: zero up to rounding */
    ck_assert_int_eq(dgm__feat_fid(x, nx, x, nx, d, &got), 0);
    ck_assert_msg(fabs(got) < 1e-9, "fid(x, x) = %g", got);
    free(x);
    free(y);
}
END_TEST

START_TEST(fid_refuses_one_row)
{
    float x[4] = {1, 2, 3, 4};
    double got;
    ck_assert_int_eq(dgm__feat_fid(x, 1, x, 1, 4, &got), DGM_EINVAL);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[1, 4]"));
}
END_TEST

/* ---- kid -------------------------------------------------------------- */

START_TEST(kid_matches_numpy)
{
    make_tmp();
    const int64_t d = 16, n = 400;
    float *x = features(n, d, 3, 0.0f, 1.0f);
    float *y = features(n, d, 4, 0.5f, 1.2f);
    double fid, mmd, mean, std;
    reference(x, n, y, n, d, &fid, &mmd);
    /* subsets as large as the sets: every subset is the whole set, so each
     * equals numpy's whole-set value and they do not spread */
    ck_assert_int_eq(dgm__feat_kid(x, n, y, n, d, 5, 1000, 7, &mean, &std), 0);
    ck_assert(mmd > 1e-3);
    assert_rel(mean, mmd, 1e-4, "kid");
    ck_assert_msg(std < 1e-6 * mmd, "kid_std %g", std);
    /* real subsets: an unbiased estimate near the whole-set value */
    ck_assert_int_eq(dgm__feat_kid(x, n, y, n, d, 50, 200, 7, &mean, &std), 0);
    ck_assert_msg(fabs(mean - mmd) < 0.2 * mmd && std > 0,
                  "subset kid %g +- %g, whole %g", mean, std, mmd);
    /* two draws of one distribution: unbiased, so near 0 (either sign) */
    float *x2 = features(n, d, 5, 0.0f, 1.0f);
    ck_assert_int_eq(dgm__feat_kid(x, n, x2, n, d, 1, 1000, 7, &mean, &std), 0);
    ck_assert_msg(fabs(mean) < 0.05 * mmd, "kid(x, x') = %g", mean);
    free(x2);
    free(x);
    free(y);
}
END_TEST

/* ---- precision / recall ----------------------------------------------- */

START_TEST(precision_recall_known_sets)
{
    /* real: (i, 0) for i = 0..9, so with k = 1 every radius is 1. */
    float real[20], fake[8] = {0.5f, 0,    100, 0,  /* in, out */
                               3.0f, 0.5f, 5,   2}; /* in, out (dist 2) */
    for (int i = 0; i < 10; i++)
        real[2 * i] = (float)i, real[2 * i + 1] = 0;
    double p, r;
    ck_assert_int_eq(
        dgm__feat_precision_recall(real, 10, fake, 4, 2, 1, &p, &r), 0);
    ck_assert_double_eq_tol(p, 0.5, 1e-12);
    /* fake radii (k = 1): 2.55, 95.02, 2.5, 2.5: the balls of (0.5, 0)
     * and (100, 0) cover every real point */
    ck_assert_double_eq_tol(r, 1.0, 1e-12);
    /* two fakes, k = 1: each fake's radius is their distance (~51.3);
     * (4.5, 2.9) is 2.9 from the real line, outside every radius-1 ball */
    float fake2[4] = {4.5f, 2.9f, 40, 40};
    ck_assert_int_eq(
        dgm__feat_precision_recall(real, 10, fake2, 2, 2, 1, &p, &r), 0);
    ck_assert_double_eq_tol(p, 0.0, 1e-12);
    /* the ball around (4.5, 2.9) of radius ~50.4 holds every real point */
    ck_assert_double_eq_tol(r, 1.0, 1e-12);
    /* identical sets: everything inside */
    ck_assert_int_eq(
        dgm__feat_precision_recall(real, 10, real, 10, 2, 3, &p, &r), 0);
    ck_assert_double_eq_tol(p, 1.0, 1e-12);
    ck_assert_double_eq_tol(r, 1.0, 1e-12);
    /* k too large for the set */
    ck_assert_int_eq(
        dgm__feat_precision_recall(real, 10, fake, 4, 2, 4, &p, &r),
        DGM_EINVAL);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "k = 4"));
}
END_TEST

/* memorization on a constructed set, worked by hand: training rows (0, 0)
 * and (10, 0); test rows (0, 3), (10, 4) are 3 and 4 from them (mean 3.5,
 * smallest 3); fakes (0, 1), (10, 0), (5, 0) are 1, 0 and 5 away (mean
 * 2): ratio 2 / 3.5, and 2 of 3 fakes nearer than 3. */
START_TEST(memorization_constructed_set)
{
    const float train[] = {0, 0, 10, 0}, test[] = {0, 3, 10, 4},
                fake[] = {0, 1, 10, 0, 5, 0};
    double ratio, closer;
    ck_assert_int_eq(
        dgm__feat_memorization(train, 2, test, 2, fake, 3, 2, &ratio, &closer),
        0);
    ck_assert_double_eq_tol(ratio, 2.0 / 3.5, 1e-12);
    ck_assert_double_eq_tol(closer, 2.0 / 3.0, 1e-12);
    /* samples that are the test rows: ratio 1, none nearer than every
     * test row */
    ck_assert_int_eq(
        dgm__feat_memorization(train, 2, test, 2, test, 2, 2, &ratio, &closer),
        0);
    ck_assert_double_eq_tol(ratio, 1.0, 1e-12);
    ck_assert(closer == 0.0);
    /* copies of training rows: distance 0, all nearer */
    ck_assert_int_eq(dgm__feat_memorization(train, 2, test, 2, train, 2, 2,
                                            &ratio, &closer),
                     0);
    ck_assert(ratio == 0.0 && closer == 1.0);
    ck_assert_int_eq(
        dgm__feat_memorization(train, 0, test, 2, fake, 3, 2, &ratio, &closer),
        DGM_EINVAL);
}
END_TEST

/* ---- dgm eval ----------------------------------------------------------- */

/* Run the CLI with `args` (shell words); stderr goes to *err (malloc'd). */
static int run_cli(const char *args, char **out, char **err)
{
    enum { N = 1 << 16 };
    char *o = out ? calloc(1, N) : NULL, *e = err ? calloc(1, N) : NULL;
    int st = tc_cli(NULL, args, o, o ? N : 0, e, e ? N : 0);
    if (out)
        *out = o;
    if (err)
        *err = e;
    return st;
}

/* An experiment with a tiny classifier: on 5% of Fashion-MNIST, or on
 * the tiny data set of write_tiny_data (fast to load). */
static void write_experiment(char *path, size_t cap, bool tiny)
{
    snprintf(path, cap, "%s/%s.yaml", tmp_dir, tiny ? "tiny" : "cls");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("name: tiny_classifier\n"
          "seed: 0\n",
          f);
    if (tiny)
        fprintf(f,
                "data: {plugin: idx, path: %s, train_images: ti, "
                "train_labels: tl, test_images: si, test_labels: sl}\n",
                tmp_dir);
    else
        fputs("data: {plugin: idx, batch_size: 64, train_fraction: 0.05}\n", f);
    fputs("model:\n"
          "  plugin: classifier\n"
          "  features: {plugin: conv_encoder, channels: [8, 16], "
          "out: 32}\n"
          "optimizer: {plugin: adam, lr: 3.0e-3}\n"
          "train: {steps: 40}\n"
          "metrics: [{plugin: accuracy, max_examples: 1000}]\n",
          f);
    fclose(f);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* An IDX u8 file of n images h x w (magic 0x00000803), with `drop` bytes
 * cut from the end. */
static void write_idx(const char *path, uint32_t n, uint32_t h, uint32_t w,
                      size_t drop, unsigned char type)
{
    size_t len = 16 + (size_t)n * h * w;
    unsigned char *b = calloc(1, len);
    b[2] = type;
    b[3] = 3;
    uint32_t dims[3] = {n, h, w};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            b[4 + 4 * i + j] = (unsigned char)(dims[i] >> (24 - 8 * j));
    for (size_t i = 16; i < len; i++)
        b[i] = (unsigned char)(i * 7);
    write_bytes(path, b, len - drop);
    free(b);
}

/* Labels: an IDX u8 vector of n class ids (magic 0x00000801). */
static void write_labels(const char *path, uint32_t n)
{
    unsigned char b[8 + 64] = {0, 0, 0x08, 1};
    for (int j = 0; j < 4; j++)
        b[4 + j] = (unsigned char)(n >> (24 - 8 * j));
    for (uint32_t i = 0; i < n && i < 64; i++)
        b[8 + i] = (unsigned char)(i % 10);
    write_bytes(path, b, 8 + n);
}

/* 20 training and 10 test images of 28 x 28 with labels. */
static void write_tiny_data(void)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/ti", tmp_dir);
    write_idx(p, 20, 28, 28, 0, 0x08);
    snprintf(p, sizeof p, "%s/tl", tmp_dir);
    write_labels(p, 20);
    snprintf(p, sizeof p, "%s/si", tmp_dir);
    write_idx(p, 10, 28, 28, 0, 0x08);
    snprintf(p, sizeof p, "%s/sl", tmp_dir);
    write_labels(p, 10);
}

/* A safetensors file with one tensor `name` of dtype and shape. */
static void write_st(const char *path, const char *dtype, int64_t n, int64_t h,
                     int64_t w, float fill, bool nan)
{
    size_t es = 4, count = (size_t)(n * h * w);
    char hdr[256];
    int hl =
        snprintf(hdr, sizeof hdr,
                 "{\"samples\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld,"
                 "%lld],\"data_offsets\":[0,%zu]}}",
                 dtype, (long long)n, (long long)h, (long long)w, count * es);
    while (hl % 8)
        hdr[hl++] = ' ';
    size_t len = 8 + (size_t)hl + count * es;
    unsigned char *b = calloc(1, len);
    uint64_t h64 = (uint64_t)hl;
    memcpy(b, &h64, 8);
    memcpy(b + 8, hdr, (size_t)hl);
    float *v = (float *)(b + 8 + hl);
    for (size_t i = 0; i < count; i++)
        v[i] = fill;
    if (nan)
        v[count / 2] = NAN;
    write_bytes(path, b, len);
    free(b);
}

static void expect_refused(const char *file, const char *exp,
                           const char *problem)
{
    char args[4096], *err = NULL;
    snprintf(args, sizeof args,
             "eval --samples %s --data %s --metric fid --set "
             "classifier=%s/nowhere",
             file, exp, tmp_dir);
    int code = run_cli(args, NULL, &err);
    ck_assert_msg(code == 1, "exit %d for %s: %s", code, file, err);
    ck_assert_msg(strstr(err, file) && strstr(err, problem),
                  "stderr for %s lacks the file or '%s': %s", file, problem,
                  err);
    free(err);
}

START_TEST(eval_refuses_malformed_samples)
{
    make_tmp();
    char exp[1100], f[1200];
    write_tiny_data();
    write_experiment(exp, sizeof exp, true);
    snprintf(f, sizeof f, "%s/truncated.idx", tmp_dir);
    write_idx(f, 10, 28, 28, 100, 0x08);
    expect_refused(f, exp, "truncated");
    snprintf(f, sizeof f, "%s/magic.idx", tmp_dir);
    write_idx(f, 10, 28, 28, 0, 0x42);
    expect_refused(f, exp, "type");
    snprintf(f, sizeof f, "%s/shape.idx", tmp_dir);
    write_idx(f, 10, 20, 20, 0, 0x08);
    expect_refused(f, exp, "do not match the data's examples [1, 28, 28]");
    /* zero samples beside dims whose product overflows: refused by the
     * readers, before any tensor (or its strides) is made */
    snprintf(f, sizeof f, "%s/zero.idx", tmp_dir);
    write_idx(f, 0, 0xffffffffu, 0xffffffffu, 0, 0x08);
    expect_refused(f, exp, "dimensions overflow");
    snprintf(f, sizeof f, "%s/zero.safetensors", tmp_dir);
    write_st(f, "F32", 0, 1ll << 32, 1ll << 32, 0, false);
    expect_refused(f, exp, "shape size overflows");
    snprintf(f, sizeof f, "%s/dtype.safetensors", tmp_dir);
    write_st(f, "I32", 4, 28, 28, 0, false);
    expect_refused(f, exp, "samples must be F32");
    snprintf(f, sizeof f, "%s/nan.safetensors", tmp_dir);
    write_st(f, "F32", 4, 28, 28, 0.5f, true);
    expect_refused(f, exp, "non-finite");
    snprintf(f, sizeof f, "%s/missing.safetensors", tmp_dir);
    expect_refused(f, exp, "missing.safetensors");
    /* usage errors are 2 */
    char *err = NULL;
    ck_assert_int_eq(run_cli("eval --samples x.idx --metric fid", NULL, &err),
                     2);
    free(err);
    char args[2400];
    snprintf(args, sizeof args,
             "eval --samples %s --data %s --metric fid --set nosuch=1", f, exp);
    ck_assert_int_eq(run_cli(args, NULL, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "nosuch"));
    free(err);
}
END_TEST

/* Train a tiny classifier (40 steps on 5% of the data), then: its own
 * accuracy through `dgm eval RUNDIR`, and FID / precision-recall of the
 * test images given back as an IDX sample file (the same images: FID 0,
 * precision and recall 1). */
START_TEST(eval_classifier_run_and_sample_file)
{
    make_tmp();
    char exp[1100], run[1100], args[4096], *out = NULL, *err = NULL;
    write_experiment(exp, sizeof exp, false);
    snprintf(run, sizeof run, "%s/cls-run", tmp_dir);
    snprintf(args, sizeof args, "run %s --run-dir %s --quiet", exp, run);
    int code = run_cli(args, &out, &err);
    ck_assert_msg(code == 0, "training failed (%d): %s", code, err);
    free(out), free(err);

    snprintf(args, sizeof args, "eval %s --json", run);
    code = run_cli(args, &out, &err);
    ck_assert_msg(code == 0, "eval failed (%d): %s", code, err);
    double acc = -1;
    const char *a = strstr(out, "\"accuracy\":");
    ck_assert_ptr_nonnull(a);
    acc = strtod(a + 11, NULL);
    ck_assert_msg(acc > 0.4 && acc <= 1.0, "accuracy %g after 40 steps", acc);
    free(out), free(err);

    snprintf(args, sizeof args,
             "eval --samples "
             "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "
             "--data %s --metric fid --metric precision_recall --set "
             "classifier=%s --set n=600 --set batch_size=256",
             exp, run);
    code = run_cli(args, &out, &err);
    ck_assert_msg(code == 0, "eval --samples failed (%d): %s", code, err);
    double fid = -1, p = -1, r = -1;
    char *l;
    ck_assert_ptr_nonnull(l = strstr(out, "fid"));
    fid = strtod(l + 3, NULL);
    ck_assert_ptr_nonnull(l = strstr(out, "precision"));
    p = strtod(l + 9, NULL);
    ck_assert_ptr_nonnull(l = strstr(out, "recall"));
    r = strtod(l + 6, NULL);
    ck_assert_msg(fabs(fid) < 1e-3, "fid of the test set with itself %g", fid);
    ck_assert_double_eq_tol(p, 1.0, 1e-12);
    ck_assert_double_eq_tol(r, 1.0, 1e-12);
    free(out), free(err);

    /* memorization of the test images given back as samples: their
     * nearest-training distances are the test rows' own (ratio 1), none
     * nearer than every test image (up to rounding) */
    snprintf(args, sizeof args,
             "eval --samples "
             "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "
             "--data %s --metric memorization --set classifier=%s --set "
             "n=300 --set n_train=1000 --set batch_size=256 --json",
             exp, run);
    code = run_cli(args, &out, &err);
    ck_assert_msg(code == 0, "eval memorization failed (%d): %s", code, err);
    ck_assert_ptr_nonnull(l = strstr(out, "\"memorization_ratio\":"));
    double ratio = strtod(l + 21, NULL);
    ck_assert_ptr_nonnull(l = strstr(out, "\"memorization_closer\":"));
    double closer = strtod(l + 22, NULL);
    /* the same images reach the classifier by two paths (the data set's
     * batches and the sample file's), so a distance may differ in its
     * last bits: allow a tie or two broken the other way */
    ck_assert_msg(fabs(ratio - 1.0) < 1e-4 && closer <= 2.0 / 300, "%g %g: %s",
                  ratio, closer, out);
    free(out), free(err);

    /* corruptions of a sample file's evaluation disturb the data set's
     * test images the file is scored against, each run reading the file
     * from its first row: at strength 0 the clean FID exactly, and noise
     * moves the test images away from their copies in the file */
    snprintf(args, sizeof args,
             "eval --samples "
             "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "
             "--data %s --metric fid --set classifier=%s --set n=300 --set "
             "batch_size=256 --set 'corrupt=[{noise: 0}, {noise: 0.5}]' "
             "--json",
             exp, run);
    code = run_cli(args, &out, &err);
    ck_assert_msg(code == 0, "eval fid corrupt failed (%d): %s", code, err);
    json_t *cj = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(cj);
    double f0 = json_number_value(json_object_get(cj, "fid")),
           fz = json_number_value(json_object_get(cj, "fid@noise=0")),
           fn = json_number_value(json_object_get(cj, "fid@noise=0.5")),
           dn = json_number_value(json_object_get(cj, "fid@noise=0.5/drop"));
    ck_assert_msg(fz == f0 && fn > f0 + 1.0 && fabs(dn - (fn - f0)) < 1e-6,
                  "%s", out);
    json_decref(cj);
    free(out), free(err);
    /* a generalization gap needs a model: refused at the key */
    snprintf(args, sizeof args,
             "eval --samples "
             "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "
             "--data %s --metric memorization --set classifier=%s --set "
             "generalization_gap=100",
             exp, run);
    code = run_cli(args, &out, &err);
    ck_assert_int_eq(code, 1);
    ck_assert_msg(strstr(err, "metrics[0].generalization_gap") &&
                      strstr(err, "no model"),
                  "%s", err);
    free(out), free(err);

    /* a conditional metric on a sample file: refused, saying why */
    snprintf(args, sizeof args,
             "eval --samples "
             "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "
             "--data %s --metric classifier_accuracy --set classifier=%s "
             "--set n=10",
             exp, run);
    code = run_cli(args, &out, &err);
    ck_assert_int_eq(code, 1);
    ck_assert_msg(strstr(err, "carries no labels"), "%s", err);
    free(out), free(err);
}
END_TEST

/* The direction of a figure in compare's JSON ("metrics": [{name,
 * better}]) and whether the variant whose mean is `mean` is marked best. */
static void expect_ranked(json_t *cmp, const char *name, const char *better,
                          double mean)
{
    const char *got = NULL;
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(cmp, "metrics"), i, m)
    {
        if (!strcmp(json_string_value(json_object_get(m, "name")), name))
            got = json_string_value(json_object_get(m, "better"));
    }
    ck_assert_msg(got && !strcmp(got, better), "%s: better is %s, not %s", name,
                  got ? got : "(missing)", better);
    int seen = 0;
    json_t *v;
    json_array_foreach(json_object_get(cmp, "variants"), i, v)
    {
        json_t *st = json_object_get(json_object_get(v, "metrics"), name);
        double mu = json_real_value(json_object_get(st, "mean"));
        bool best = json_is_true(json_object_get(st, "best"));
        ck_assert_msg(best == (fabs(mu - mean) < 1e-12),
                      "%s: the variant with mean %g is %smarked best", name, mu,
                      best ? "" : "not ");
        seen++;
    }
    ck_assert_int_eq(seen, 2);
}

/* A run records in summary.json which way each figure improves, as its
 * metric declares it, and compare ranks by that: error_rate declares
 * higher-is-better (its name alone would be guessed lower); the ABI 2.0
 * metric old_error_rate has no table, so its figure is recorded without
 * a direction and compare falls back to the guess (lower). */
START_TEST(directions_recorded_and_ranked)
{
    make_tmp();
    write_tiny_data();
    const double values[2] = {0.2, 0.8};
    char run[2][1100], args[4096], *out = NULL, *err = NULL;
    for (int i = 0; i < 2; i++) {
        char exp[1100];
        snprintf(exp, sizeof exp, "%s/directions%d.yaml", tmp_dir, i);
        FILE *f = fopen(exp, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "name: directions\n"
                "seed: 0\n"
                "plugin_path: [\"%s\"]\n"
                "data: {plugin: idx, path: %s, train_images: ti, "
                "train_labels: tl, test_images: si, test_labels: sl}\n"
                "model:\n"
                "  plugin: classifier\n"
                "  features: {plugin: conv_encoder, channels: [4], out: 8}\n"
                "optimizer: {plugin: adam, lr: 1.0e-3}\n"
                "train: {steps: 2}\n"
                "metrics: [{plugin: accuracy}, {plugin: error_rate, "
                "value: %g}, {plugin: old_error_rate, value: %g}]\n",
                DGM_TEST_PLUGIN_DIR, tmp_dir, values[i], values[i]);
        fclose(f);
        snprintf(run[i], sizeof run[i], "%s/directions-run%d", tmp_dir, i);
        snprintf(args, sizeof args, "run %s --run-dir %s --quiet", exp, run[i]);
        int code = run_cli(args, &out, &err);
        ck_assert_msg(code == 0, "training failed (%d): %s", code, err);
        free(out), free(err);
    }

    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", run[0]);
    json_error_t je;
    json_t *s = json_load_file(path, 0, &je);
    ck_assert_msg(s != NULL, "%s: %s", path, je.text);
    json_t *b = json_object_get(s, "better");
    ck_assert_str_eq(json_string_value(json_object_get(b, "error_rate")),
                     "higher");
    ck_assert_str_eq(json_string_value(json_object_get(b, "accuracy")),
                     "higher");
    ck_assert_str_eq(json_string_value(json_object_get(b, "train_loss")),
                     "lower");
    ck_assert_ptr_null(json_object_get(b, "old_error_rate"));
    json_decref(s);

    snprintf(args, sizeof args,
             "compare %s %s --format json --metric error_rate "
             "--metric old_error_rate",
             run[0], run[1]);
    int code = run_cli(args, &out, &err);
    ck_assert_msg(code == 0, "compare failed (%d): %s", code, err);
    json_t *cmp = json_loads(out, 0, &je);
    ck_assert_msg(cmp != NULL, "compare's JSON: %s: %s", je.text, out);
    expect_ranked(cmp, "error_rate", "higher", 0.8);
    expect_ranked(cmp, "old_error_rate", "lower", 0.2);
    json_decref(cmp);
    free(out), free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *t = tq_case(s, "fid", fid_matches_numpy, fid_refuses_one_row);
    tcase_set_timeout(t, 60);
    t = tq_case(s, "kid", kid_matches_numpy);
    tcase_set_timeout(t, 60);
    tq_case(s, "precision_recall", precision_recall_known_sets,
            memorization_constructed_set);
    t = tq_case(s, "eval", eval_refuses_malformed_samples,
                eval_classifier_run_and_sample_file,
                directions_recorded_and_ranked);
    tcase_set_timeout(t, 300);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed != 0;
}
