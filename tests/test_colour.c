/* test_colour.c - colour images end to end, through the dgm executable on
 * the tp_rgb test dataset (16x16 RGB of a known pattern): a conv VAE
 * trains on them and its sample and reconstruction grids are RGB PNGs
 * whose test-image row holds exactly the dataset's pixels, and `dgm
 * report` embeds that sample grid as an RGB PNG of the same pixels; a
 * DCGAN's sample grid and `dgm sample`'s are RGB of the expected size;
 * `dgm eval --samples` scores an RGB sample file [N, 3, 32, 32] with
 * fid and kid in the features of a tiny classifier trained on CIFAR-format
 * files the test writes. */
#include <check.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "cli.h"
#include "png_read.h"

static char root[1024];
static char out[1 << 16], err[1 << 16];

static const char vae_yaml[] =
    "name: vae_rgb\n"
    "seed: 1\n"
    "threads: 1\n"
    "data: {plugin: tp_rgb, size: 16, channels: 3, train: 32, test: 4,\n"
    "       batch_size: 16}\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 4\n"
    "  encoder: {plugin: conv_encoder, channels: [4, 8]}\n"
    "  decoder: {plugin: conv_decoder, channels: [8, 4]}\n"
    "objective:\n"
    "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
    "  - {loss: gaussian_kl, inputs: [mu, logvar]}\n"
    "train: {steps: 2, samples: 4}\n";

static const char gan_yaml[] =
    "name: gan_rgb\n"
    "seed: 1\n"
    "threads: 1\n"
    "data: {plugin: tp_rgb, size: 16, channels: 3, train: 32, test: 4,\n"
    "       symmetric: true, batch_size: 16}\n"
    "model:\n"
    "  plugin: gan\n"
    "  latent: 8\n"
    "  generator: {plugin: dcgan_generator, width: 4}\n"
    "  discriminator: {plugin: dcgan_discriminator, width: 4}\n"
    "train: {steps: 2, samples: 9}\n";

static void write_file(const char *name, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/colour-%ld", t ? t : "/tmp",
             (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
    write_file("vae.yaml", vae_yaml);
    write_file("gan.yaml", gan_yaml);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static int dgm(const char *fmt, const char *a, const char *b)
{
    char args[4096];
    snprintf(args, sizeof args, fmt, a, b);
    return tc_cli("DGM_PLUGIN_PATH=" DGM_TEST_PLUGIN_DIR, args, out, sizeof out,
                  err, sizeof err);
}

/* An RGB grid of n images of side s, `cols` to a row, 2-pixel borders. */
static tc_image rgb_grid(const char *dir, const char *file, int n, int cols,
                         int s)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    tc_image im = tc_png_read(p);
    int rows = (n + cols - 1) / cols;
    ck_assert_int_eq(im.color_type, PNG_COLOR_TYPE_RGB);
    ck_assert_int_eq(im.channels, 3);
    ck_assert_int_eq(im.bit_depth, 8);
    ck_assert_int_eq(im.w, cols * (s + 2) + 2);
    ck_assert_int_eq(im.h, rows * (s + 2) + 2);
    return im;
}

/* `dgm report RUN`'s page: its one embedded PNG, decoded, is an RGB
 * image with the pixels of the run's grid `file`. */
static void report_embeds(const char *run, const char *file)
{
    char html[1200], b64[1200], png[2600], cmd[4096];
    snprintf(html, sizeof html, "%s/report.html", root);
    ck_assert_msg(dgm("report %s -o %s", run, html) == 0, "%s", err);
    FILE *f = fopen(html, "r");
    ck_assert_ptr_nonnull(f);
    static char page[1 << 20];
    size_t n = fread(page, 1, sizeof page - 1, f);
    fclose(f);
    page[n] = 0;
    const char *tag = "src=\"data:image/png;base64,";
    char *at = strstr(page, tag);
    ck_assert_msg(at != NULL, "no embedded PNG in %s", html);
    ck_assert_ptr_null(strstr(at + 1, tag)); /* one run, one grid */
    at += strlen(tag);
    char *end = strchr(at, '"');
    ck_assert_ptr_nonnull(end);
    snprintf(b64, sizeof b64, "%s/grid.b64", root);
    snprintf(png, sizeof png, "%s/grid.png", root);
    f = fopen(b64, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(at, 1, (size_t)(end - at), f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "base64 -d '%s' > '%s'", b64, png);
    ck_assert_int_eq(system(cmd), 0);
    tc_image got = tc_png_read(png);
    snprintf(png, sizeof png, "%s/%s", run, file);
    tc_image want = tc_png_read(png);
    ck_assert_int_eq(got.color_type, PNG_COLOR_TYPE_RGB);
    ck_assert_int_eq(got.channels, 3);
    ck_assert_int_eq(got.w, want.w);
    ck_assert_int_eq(got.h, want.h);
    ck_assert_int_eq(want.channels, 3);
    ck_assert(!memcmp(got.pix, want.pix, (size_t)got.w * got.h * 3));
    free(got.pix);
    free(want.pix);
}

START_TEST(vae_grids_are_rgb)
{
    char y[1200], d[1200];
    snprintf(y, sizeof y, "%s/vae.yaml", root);
    snprintf(d, sizeof d, "%s/vae", root);
    ck_assert_msg(dgm("run %s --run-dir %s --quiet", y, d) == 0, "%s", err);
    tc_image im = rgb_grid(d, "samples/samples_000002.png", 4, 2, 16);
    free(im.pix);
    /* the 4 test images above their 4 reconstructions */
    im = rgb_grid(d, "samples/recon_000002.png", 8, 4, 16);
    for (int e = 0; e < 4; e++)
        for (int c = 0; c < 3; c++)
            for (int py = 0; py < 16; py++)
                for (int px = 0; px < 16; px++) {
                    /* tp_rgb: (7e + 50c + 3y + 5x) % 256 / 255, in [0, 1] */
                    int want = (7 * e + 50 * c + 3 * py + 5 * px) % 256;
                    int got = tc_png_at(&im, (uint32_t)(2 + e * 18 + px),
                                        (uint32_t)(2 + py), c);
                    ck_assert_msg(got == want,
                                  "image %d channel %d (%d, %d): %d, not %d", e,
                                  c, px, py, got, want);
                }
    free(im.pix);
    report_embeds(d, "samples/samples_000002.png");
}
END_TEST

START_TEST(gan_and_sample_command_are_rgb)
{
    char y[1200], d[1200], o[1300];
    snprintf(y, sizeof y, "%s/gan.yaml", root);
    snprintf(d, sizeof d, "%s/gan", root);
    ck_assert_msg(dgm("run %s --run-dir %s --quiet", y, d) == 0, "%s", err);
    tc_image im = rgb_grid(d, "samples/samples_000002.png", 9, 3, 16);
    /* three channels that differ somewhere: colour, not grey */
    int differ = 0;
    for (size_t k = 0; k < (size_t)im.w * im.h; k++)
        differ += im.pix[3 * k] != im.pix[3 * k + 1] ||
                  im.pix[3 * k + 1] != im.pix[3 * k + 2];
    ck_assert_int_gt(differ, 0);
    free(im.pix);
    snprintf(o, sizeof o, "%s/s.png", root);
    ck_assert_msg(dgm("sample %s -n 5 -o %s", d, o) == 0, "%s", err);
    im = rgb_grid(root, "s.png", 5, 3, 16);
    free(im.pix);
}
END_TEST

/* CIFAR-10 files of 8 records a training file and 40 test records: a
 * class-dependent colour pattern with noise. The test records' pixels
 * (40 x 3072) go to test_px. */
static void write_cifar(const char *dir, unsigned char *test_px)
{
    char p[1400];
    uint64_t r = 12345;
    for (int file = 0; file < 6; file++) {
        int n = file < 5 ? 8 : 40;
        if (file < 5)
            snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, file + 1);
        else
            snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        for (int e = 0; e < n; e++) {
            unsigned char rec[1 + 3072];
            int label = (e + file) % 4;
            rec[0] = (unsigned char)label;
            for (int k = 0; k < 3072; k++) {
                int c = k / 1024, y = k / 32 % 32, x = k % 32;
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                rec[1 + k] =
                    (unsigned char)(label * 60 + c * 40 * (label + 1) +
                                    (label % 2 ? x : y) * 3 + (int)(r >> 59));
            }
            fwrite(rec, 1, sizeof rec, f);
            if (file == 5)
                memcpy(test_px + (size_t)e * 3072, rec + 1, 3072);
        }
        fclose(f);
    }
}

/* A safetensors file of one F32 tensor `samples` [n, 3, 32, 32]. */
static void write_samples(const char *path, const float *v, int n)
{
    size_t bytes = (size_t)n * 3072 * sizeof(float);
    char hdr[160];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"samples\":{\"dtype\":\"F32\",\"shape\":[%d,3,32,"
                      "32],\"data_offsets\":[0,%zu]}}",
                      n, bytes);
    while (hl % 8)
        hdr[hl++] = ' ';
    uint64_t h64 = (uint64_t)hl;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(&h64, 8, 1, f);
    fwrite(hdr, 1, (size_t)hl, f);
    fwrite(v, 1, bytes, f);
    fclose(f);
}

/* `fid` and `kid` of a sample file against the test split; *fid, *kid. */
static void eval_file(const char *samples, const char *exp, const char *run,
                      double *fid, double *kid)
{
    char args[4096];
    snprintf(args, sizeof args,
             "eval --samples %s --data %s --metric fid --metric kid --set "
             "classifier=%s --set kid.subsets=10 --set kid.subset_size=40",
             samples, exp, run);
    ck_assert_msg(dgm("%s%s", args, "") == 0, "%s", err);
    char *l = strstr(out, "fid");
    ck_assert_msg(l != NULL, "%s", out);
    *fid = strtod(l + 3, NULL);
    ck_assert_msg((l = strstr(out, "kid ")) != NULL, "%s", out);
    *kid = strtod(l + 4, NULL);
    ck_assert_msg(isfinite(*fid) && isfinite(*kid), "%s", out);
}

/* A tiny classifier (conv_encoder of derived stages on 32x32 RGB) trained
 * on CIFAR-format files; the test images given back as [40, 3, 32, 32]
 * samples score fid ~0, uniform noise far from it, both finite. */
START_TEST(eval_rgb_samples)
{
    char dir[1200], exp[1200], run[1200], same[1200], noise[1200], cmd[1300];
    static unsigned char px[40 * 3072];
    static float v[40 * 3072];
    snprintf(dir, sizeof dir, "%s/cifar", root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    write_cifar(dir, px);
    snprintf(exp, sizeof exp, "%s/cls.yaml", root);
    FILE *f = fopen(exp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name: cls_rgb\n"
            "seed: 0\n"
            "threads: 1\n"
            "data: {plugin: cifar, path: %s, batch_size: 8}\n"
            "model:\n"
            "  plugin: classifier\n"
            "  features: {plugin: conv_encoder, width: 4, out: 8}\n"
            "optimizer: {plugin: adam, lr: 3.0e-3}\n"
            "train: {steps: 10}\n"
            "metrics: []\n",
            dir);
    fclose(f);
    snprintf(run, sizeof run, "%s/cls", root);
    ck_assert_msg(dgm("run %s --run-dir %s --quiet", exp, run) == 0, "%s", err);
    /* cifar's unit scale: v * (1 / 255) */
    for (size_t i = 0; i < sizeof px; i++)
        v[i] = px[i] * (1.0f / 255.0f);
    snprintf(same, sizeof same, "%s/same.safetensors", root);
    write_samples(same, v, 40);
    uint64_t r = 99;
    for (size_t i = 0; i < sizeof px; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)(r >> 40) / (float)(1 << 24);
    }
    snprintf(noise, sizeof noise, "%s/noise.safetensors", root);
    write_samples(noise, v, 40);
    double fid_same, kid_same, fid_noise, kid_noise;
    eval_file(same, exp, run, &fid_same, &kid_same);
    eval_file(noise, exp, run, &fid_noise, &kid_noise);
    ck_assert_msg(fid_noise > 1e-3, "fid of noise %g", fid_noise);
    ck_assert_msg(fabs(fid_same) < 1e-4 * fid_noise,
                  "fid of the test set with itself %g, of noise %g", fid_same,
                  fid_noise);
    /* KID's unbiased estimate of a set against itself is not 0 (here
     * about -0.4 times noise's: the estimator's diagonal term); with the
     * whole set in each subset it is fixed, and below noise's */
    ck_assert_msg(kid_noise > 0 && kid_same < kid_noise,
                  "kid of the test set with itself %g, of noise %g", kid_same,
                  kid_noise);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("colour");
    TCase *tc = tq_case(s, "colour", vae_grids_are_rgb,
                        gan_and_sample_command_are_rgb, eval_rgb_samples);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    return tq_run(s, "installed", false);
}
