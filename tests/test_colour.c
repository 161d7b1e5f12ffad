/* test_colour.c - colour images end to end, through the dgm executable on
 * the tp_rgb test dataset (16x16 RGB of a known pattern): a conv VAE
 * trains on them and its sample and reconstruction grids are RGB PNGs
 * whose test-image row holds exactly the dataset's pixels; a DCGAN's
 * sample grid and `dgm sample`'s are RGB of the expected size. */
#include <check.h>
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

int main(void)
{
    Suite *s = suite_create("colour");
    TCase *tc =
        tq_case(s, "colour", vae_grids_are_rgb, gan_and_sample_command_are_rgb);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    return tq_run(s, "installed", false);
}
