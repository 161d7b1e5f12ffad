/* test_images.c - PNG and JPEG decoding (dgm_image_load/_decode: every
 * PNG colour type and depth exact, JPEG within tolerance, every refusal
 * naming the file) and the `images` dataset on folders the test writes:
 * labels from folder names, `classes:` order, flat folders, train/test
 * folders and fractions, resize geometry on a known pattern, the cache
 * (hit without reading an image, rebuilt after a change, never left
 * half-written), and the bad inputs of a real folder. */
#include <check.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cfg_check.h"
#include "ck_run.h"
#include "ds_fixture.h"
#include "files.h"
#include "img_write.h"

static void setup(void)
{
    ds_setup_tag("images");
}

static void load_ok(const char *name, int channels, dgm_image *img)
{
    int rc = dgm_image_load(ds_path(name), channels, img);
    ck_assert_msg(rc == 0, "%s: %s", name, dgm_last_error());
}

/* ---- decoding ------------------------------------------------------------ */

START_TEST(png_every_type)
{
    /* 3 x 2 RGB */
    unsigned char rgb[18];
    for (int i = 0; i < 18; i++)
        rgb[i] = (unsigned char)(i * 13 + 1);
    tc_write_png(ds_path("rgb.png"), 3, 2, PNG_COLOR_TYPE_RGB, 8, rgb, NULL, 0);
    dgm_image img;
    load_ok("rgb.png", 3, &img);
    ck_assert_int_eq(img.w, 3);
    ck_assert_int_eq(img.h, 2);
    ck_assert_int_eq(img.channels, 3);
    ck_assert_mem_eq(img.pixels, rgb, 18);
    dgm_image_free(&img);
    load_ok("rgb.png", 1, &img); /* luma, rounded */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(img.pixels[i],
                         (299 * rgb[3 * i] + 587 * rgb[3 * i + 1] +
                          114 * rgb[3 * i + 2] + 500) /
                             1000);
    dgm_image_free(&img);
    /* grey to RGB: repeated */
    unsigned char g[4] = {0, 90, 200, 255};
    tc_write_png(ds_path("g.png"), 2, 2, PNG_COLOR_TYPE_GRAY, 8, g, NULL, 0);
    load_ok("g.png", 3, &img);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            ck_assert_int_eq(img.pixels[3 * i + c], g[i]);
    dgm_image_free(&img);
    /* RGBA: composited on black */
    unsigned char rgba[8] = {200, 100, 50, 128, 10, 20, 30, 0};
    tc_write_png(ds_path("a.png"), 2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba,
                 NULL, 0);
    load_ok("a.png", 3, &img);
    unsigned char want_a[6] = {(200 * 128 + 127) / 255,
                               (100 * 128 + 127) / 255,
                               (50 * 128 + 127) / 255,
                               0,
                               0,
                               0};
    ck_assert_mem_eq(img.pixels, want_a, 6);
    dgm_image_free(&img);
    /* palette, 4-bit indices */
    unsigned char pal[9] = {255, 0, 0, 0, 255, 0, 1, 2, 3};
    unsigned char idx4[2] = {0x21, 0x00}; /* 2, 1 | 0, 0 */
    tc_write_png(ds_path("p.png"), 2, 2, PNG_COLOR_TYPE_PALETTE, 4, idx4, pal,
                 3);
    load_ok("p.png", 3, &img);
    unsigned char want_p[12] = {1, 2, 3, 0, 255, 0, 255, 0, 0, 255, 0, 0};
    ck_assert_mem_eq(img.pixels, want_p, 12);
    dgm_image_free(&img);
    /* 16-bit grey: scaled to 8 bits with rounding (v * 255 / 65535) */
    unsigned char g16[4] = {0x12, 0x34, 0xFF, 0x7F}; /* 4660, 65407 */
    tc_write_png(ds_path("g16.png"), 2, 1, PNG_COLOR_TYPE_GRAY, 16, g16, NULL,
                 0);
    load_ok("g16.png", 1, &img);
    ck_assert_int_eq(img.pixels[0], (4660 * 255 + 32767) / 65535);
    ck_assert_int_eq(img.pixels[1], (65407 * 255 + 32767) / 65535);
    dgm_image_free(&img);
}
END_TEST

START_TEST(jpeg_decodes)
{
    enum { W = 16, H = 16 };
    unsigned char px[W * H * 3], grey[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            px[(y * W + x) * 3] = (unsigned char)(x * 12);
            px[(y * W + x) * 3 + 1] = (unsigned char)(y * 12);
            px[(y * W + x) * 3 + 2] = 128;
            grey[y * W + x] = (unsigned char)((x + y) * 6);
        }
    tc_write_jpeg(ds_path("c.jpg"), W, H, 3, px, 100);
    tc_write_jpeg(ds_path("g.jpg"), W, H, 1, grey, 100);
    dgm_image img;
    load_ok("c.jpg", 3, &img);
    ck_assert_int_eq(img.w, W);
    ck_assert_int_eq(img.channels, 3);
    int worst = 0;
    for (int i = 0; i < W * H * 3; i++) {
        int d = abs(img.pixels[i] - px[i]);
        worst = d > worst ? d : worst;
    }
    ck_assert_int_le(worst, 8); /* quality 100, chroma subsampled 2x2 */
    dgm_image_free(&img);
    load_ok("g.jpg", 3, &img);
    worst = 0;
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++) {
            int d = abs(img.pixels[3 * i + c] - grey[i]);
            worst = d > worst ? d : worst;
        }
    ck_assert_int_le(worst, 2);
    dgm_image_free(&img);
}
END_TEST

/* A PNG whose IHDR declares w x h (valid CRC), then IEND. */
static void write_png_header(const char *name, uint32_t w, uint32_t h)
{
    unsigned char b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                    0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    for (int i = 0; i < 4; i++) {
        b[16 + i] = (unsigned char)(w >> (24 - 8 * i));
        b[20 + i] = (unsigned char)(h >> (24 - 8 * i));
    }
    b[24] = 8; /* depth */
    b[25] = 2; /* RGB */
    uLong crc = crc32(0, b + 12, 17);
    for (int i = 0; i < 4; i++)
        b[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
    memcpy(b + 33, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    ds_write(name, b, sizeof b);
}

START_TEST(decode_refusals)
{
    dgm_image img;
    unsigned char px[64 * 3];
    for (int i = 0; i < (int)sizeof px; i++)
        px[i] = (unsigned char)(i * 37);
    tc_write_png(ds_path("ok.png"), 8, 8, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0);
    size_t n;
    char *b = tc_slurp(ds_path("ok.png"), &n, true);
    ds_write("cut.png", b, n - 20); /* inside IDAT */
    ASSERT_ERR(dgm_image_load(ds_path("cut.png"), 3, &img), DGM_EFORMAT,
               "cut.png", "corrupt PNG");
    b[n - 22] ^= 0x55; /* IDAT data: the CRC no longer matches */
    ds_write("crc.png", b, n);
    ASSERT_ERR(dgm_image_load(ds_path("crc.png"), 3, &img), DGM_EFORMAT,
               "crc.png", "corrupt PNG");
    free(b);
    ck_assert_ptr_null(img.pixels);
    write_png_header("huge.png", 60000, 60000);
    ASSERT_ERR(dgm_image_load(ds_path("huge.png"), 3, &img), DGM_EFORMAT,
               "huge.png", "60000 x 60000");
    write_png_header("wide.png", 20000, 1);
    ASSERT_ERR(dgm_image_load(ds_path("wide.png"), 3, &img), DGM_EFORMAT,
               "wide.png");
    ds_write("notes.png", "just some text\n", 15);
    ASSERT_ERR(dgm_image_load(ds_path("notes.png"), 3, &img), DGM_EFORMAT,
               "notes.png", "not a PNG or JPEG");
    ASSERT_ERR(dgm_image_load(ds_path("absent.png"), 3, &img), DGM_EIO,
               "absent.png");
    tc_write_jpeg(ds_path("ok.jpg"), 8, 8, 3, px, 90);
    b = tc_slurp(ds_path("ok.jpg"), &n, true);
    ds_write("cut.jpg", b, n / 2);
    ASSERT_ERR(dgm_image_load(ds_path("cut.jpg"), 3, &img), DGM_EFORMAT,
               "cut.jpg", "corrupt JPEG");
    /* SOF0: FF C0, length (2), precision (1), height (2), width (2) */
    size_t sof = 0;
    for (size_t i = 0; i + 1 < n && !sof; i++)
        if ((unsigned char)b[i] == 0xFF && (unsigned char)b[i + 1] == 0xC0)
            sof = i;
    ck_assert_uint_gt(sof, 0);
    b[sof + 5] = (char)0xEA; /* 60000 = 0xEA60 */
    b[sof + 6] = 0x60;
    b[sof + 7] = (char)0xEA;
    b[sof + 8] = 0x60;
    ds_write("huge.jpg", b, n);
    ASSERT_ERR(dgm_image_load(ds_path("huge.jpg"), 3, &img), DGM_EFORMAT,
               "huge.jpg", "60000 x 60000");
    free(b);
    ASSERT_ERR(dgm_image_load(ds_path("ok.jpg"), 2, &img), DGM_EINVAL, "ok.jpg",
               "channels 2");
}
END_TEST

/* ---- the dataset ------------------------------------------------------- */

/* A w x h RGB PNG whose every pixel is (v, v + 1, v + 2). */
static void flat_png(const char *name, int w, int h, int v)
{
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            px[3 * i + c] = (unsigned char)(v + c);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", ds_path(name));
    *strrchr(dir, '/') = '\0';
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    tc_write_png(ds_path(name), w, h, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0);
    free(px);
}

static char yaml[4096];
static const char *cfg(const char *sub, const char *extra)
{
    snprintf(yaml, sizeof yaml, "path: %s/%s\ncache: %s/cache/%s.u8\n%s",
             ds_dir, sub, ds_dir, sub, extra);
    return yaml;
}

/* The label and red channel (unit scale, x 255) of example i of split. */
static void example(void *self, dgm_split sp, int64_t i, int64_t *label,
                    int *red)
{
    ds_batch b = ds_fetch(self, sp, &i, 1);
    *label = b.y ? ((int64_t *)b.y->data)[0] : -1;
    *red = (int)(dgm_tensor_f32(b.x)[0] * 255.0f + 0.5f);
    ds_batch_free(b);
}

START_TEST(images_class_folders)
{
    /* classes by sorted folder name: bird 0, cat 1, dog 2 */
    flat_png("cls/dog/a.png", 4, 4, 30);
    flat_png("cls/cat/b.png", 4, 4, 20);
    flat_png("cls/cat/sub/c.png", 4, 4, 21);
    flat_png("cls/bird/d.png", 4, 4, 10);
    void *self;
    ck_assert_int_eq(
        ds_create("images", cfg("cls", "size: 2\ntest_fraction: 0\n"), &self),
        0);
    dgm_data_info in = ds_info(self);
    ck_assert_int_eq(in.n_classes, 3);
    ck_assert_int_eq(in.x_shape.dim[0], 3);
    ck_assert_int_eq(in.x_shape.dim[1], 2);
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 4);
    ck_assert_int_eq(in.size[DGM_SPLIT_TEST], 0);
    int64_t want_label[4] = {0, 1, 1, 2}; /* bird/d, cat/b, cat/sub/c, dog/a */
    int want_red[4] = {10, 20, 21, 30}, red;
    int64_t label;
    for (int i = 0; i < 4; i++) {
        example(self, DGM_SPLIT_TRAIN, i, &label, &red);
        ck_assert_int_eq(label, want_label[i]);
        ck_assert_int_eq(red, want_red[i]);
    }
    int64_t i0 = 0;
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, &i0, 1);
    ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[4 + 3], 11 / 255.0f, 1e-6);
    ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[8], 12 / 255.0f, 1e-6);
    ds_batch_free(b);
    ds_destroy(self);
    /* classes: picks and orders */
    ck_assert_int_eq(ds_create("images",
                               cfg("cls", "size: 2\ntest_fraction: 0\n"
                                          "classes: [dog, bird]\n"),
                               &self),
                     0);
    ck_assert_int_eq(ds_info(self).n_classes, 2);
    ck_assert_int_eq(ds_info(self).size[DGM_SPLIT_TRAIN], 2);
    example(self, DGM_SPLIT_TRAIN, 0, &label, &red);
    ck_assert_int_eq(label, 0);
    ck_assert_int_eq(red, 30);
    example(self, DGM_SPLIT_TRAIN, 1, &label, &red);
    ck_assert_int_eq(label, 1);
    ck_assert_int_eq(red, 10);
    ds_destroy(self);
    ASSERT_ERR(ds_create("images", cfg("cls", "classes: [cow]\n"), &self),
               DGM_ENOTFOUND, "cow", "cls");
}
END_TEST

START_TEST(images_splits_and_flat)
{
    for (int i = 0; i < 20; i++) {
        char name[64];
        snprintf(name, sizeof name, "flat/%02d.png", i);
        flat_png(name, 3, 3, i);
    }
    void *self;
    ck_assert_int_eq(ds_create("images",
                               cfg("flat", "size: 3\nchannels: 1\n"
                                           "test_fraction: 0.25\nseed: 4\n"),
                               &self),
                     0);
    dgm_data_info in = ds_info(self);
    ck_assert(!in.has_y);
    ck_assert_int_eq(in.n_classes, 0);
    ck_assert_int_eq(in.x_shape.dim[0], 1);
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 15);
    ck_assert_int_eq(in.size[DGM_SPLIT_TEST], 5);
    /* each image is in exactly one split, in file order within it */
    int seen[20] = {0}, prev = -1;
    for (int sp = 0; sp < 2; sp++, prev = -1)
        for (int64_t i = 0; i < in.size[sp]; i++) {
            ds_batch b = ds_fetch(self, sp, &i, 1);
            /* grey of (v, v+1, v+2) is v + 1 (0.299 + 0.587*1 + 0.114*2) */
            int v = (int)(dgm_tensor_f32(b.x)[0] * 255.0f + 0.5f) - 1;
            ds_batch_free(b);
            ck_assert_int_gt(v, prev);
            prev = v;
            seen[v]++;
        }
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(seen[i], 1);
    ds_destroy(self);
    /* train/ and test/ folders */
    flat_png("tt/train/a/1.png", 2, 2, 1);
    flat_png("tt/train/b/2.png", 2, 2, 2);
    flat_png("tt/test/b/3.png", 2, 2, 3);
    ck_assert_int_eq(ds_create("images", cfg("tt", "size: 2\n"), &self), 0);
    in = ds_info(self);
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 2);
    ck_assert_int_eq(in.size[DGM_SPLIT_TEST], 1);
    int64_t label;
    int red;
    example(self, DGM_SPLIT_TEST, 0, &label, &red);
    ck_assert_int_eq(label, 1);
    ck_assert_int_eq(red, 3);
    ds_destroy(self);
}
END_TEST

/* Resize geometry on a known pattern: pixel (x, y) red = 10 x + y. */
START_TEST(images_resize_geometry)
{
    enum { W = 6, H = 4 };
    unsigned char px[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            px[(y * W + x) * 3] = (unsigned char)(10 * x + y);
            px[(y * W + x) * 3 + 1] = px[(y * W + x) * 3 + 2] = 0;
        }
    tc_write_png(ds_path("pat.png"), W, H, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0);
    size_t n;
    char *b = tc_slurp(ds_path("pat.png"), &n, true);
    ds_write("geo/a/pat.png", b, n);
    free(b);
    /* shorter: the centred 4 x 4 (columns 1..4), each 2 x 2 block averaged:
     * output (row i, column j) = mean of 10 x + y over x in {1 + 2j,
     * 2 + 2j}, y in {2i, 2i + 1} = 10 (1.5 + 2j) + 2i + 0.5 */
    void *self;
    ck_assert_int_eq(
        ds_create("images", cfg("geo", "size: 2\ntest_fraction: 0\n"), &self),
        0);
    int64_t i0 = 0;
    ds_batch bt = ds_fetch(self, DGM_SPLIT_TRAIN, &i0, 1);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double want = 10 * (1.5 + 2 * j) + 2 * i + 0.5;
            long q = lround(want); /* .5 rounds away from zero */
            ck_assert_float_eq_tol(dgm_tensor_f32(bt.x)[i * 2 + j] * 255.0f,
                                   (float)q, 1e-3);
        }
    ds_batch_free(bt);
    ds_destroy(self);
    /* crop: the centred 2 x 2 window, columns 2..3, rows 1..2 */
    ck_assert_int_eq(ds_create("images",
                               cfg("geo", "size: 2\ntest_fraction: 0\n"
                                          "resize: crop\n"),
                               &self),
                     0);
    bt = ds_fetch(self, DGM_SPLIT_TRAIN, &i0, 1);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            ck_assert_float_eq_tol(dgm_tensor_f32(bt.x)[i * 2 + j] * 255.0f,
                                   10.0f * (2 + j) + (1 + i), 1e-3);
    ds_batch_free(bt);
    ds_destroy(self);
    /* upscaling: size 8 from the 4 x 4 centre repeats each pixel twice */
    ck_assert_int_eq(
        ds_create("images", cfg("geo", "size: 8\ntest_fraction: 0\n"), &self),
        0);
    bt = ds_fetch(self, DGM_SPLIT_TRAIN, &i0, 1);
    ck_assert_float_eq_tol(dgm_tensor_f32(bt.x)[3 * 8 + 5] * 255.0f,
                           10.0f * (1 + 2) + 1, 1e-3);
    ds_batch_free(bt);
    ds_destroy(self);
    ASSERT_ERR(
        ds_create("images", cfg("geo", "size: 5\nresize: crop\n"), &self),
        DGM_EFORMAT, "pat.png", "smaller than the 5 x 5 crop");
}
END_TEST

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

START_TEST(images_cache)
{
    flat_png("c/a/1.png", 4, 4, 40);
    flat_png("c/b/2.png", 4, 4, 50);
    set_mtime(ds_path("c/a/1.png"), 1000000);
    void *self;
    const char *y = "size: 4\ntest_fraction: 0\n";
    ck_assert_int_eq(ds_create("images", cfg("c", y), &self), 0);
    ds_destroy(self);
    struct stat st;
    ck_assert_int_eq(stat(ds_path("cache/c.u8"), &st), 0);
    /* Same size, same mtime, other pixels: a hit must not see them. */
    off_t old_size = 0;
    ck_assert_int_eq(stat(ds_path("c/a/1.png"), &st), 0);
    old_size = st.st_size;
    flat_png("c/a/1.png", 4, 4, 99);
    set_mtime(ds_path("c/a/1.png"), 1000000);
    ck_assert_int_eq(stat(ds_path("c/a/1.png"), &st), 0);
    ck_assert_int_eq(st.st_size, old_size); /* else the key changes */
    int64_t label;
    int red;
    ck_assert_int_eq(ds_create("images", cfg("c", y), &self), 0);
    example(self, DGM_SPLIT_TRAIN, 0, &label, &red);
    ck_assert_int_eq(red, 40);
    ds_destroy(self);
    /* a changed mtime: rebuilt, the new pixels seen */
    set_mtime(ds_path("c/a/1.png"), 2000000);
    ck_assert_int_eq(ds_create("images", cfg("c", y), &self), 0);
    example(self, DGM_SPLIT_TRAIN, 0, &label, &red);
    ck_assert_int_eq(red, 99);
    ds_destroy(self);
    /* a new file: rebuilt */
    flat_png("c/b/3.png", 4, 4, 77);
    ck_assert_int_eq(ds_create("images", cfg("c", y), &self), 0);
    ck_assert_int_eq(ds_info(self).size[DGM_SPLIT_TRAIN], 3);
    example(self, DGM_SPLIT_TRAIN, 2, &label, &red);
    ck_assert_int_eq(red, 77);
    ds_destroy(self);
    /* other options: rebuilt at the same path */
    ck_assert_int_eq(ds_create("images",
                               cfg("c", "size: 2\n"
                                        "test_fraction: 0\n"),
                               &self),
                     0);
    ck_assert_int_eq(ds_info(self).x_shape.dim[1], 2);
    ds_destroy(self);
    /* a bad image: refused, the old cache left whole, no temp file */
    ck_assert_int_eq(stat(ds_path("cache/c.u8"), &st), 0);
    off_t before = st.st_size;
    ds_write("c/b/4.png", "\x89PNG\r\n\x1a\nbroken", 14);
    ASSERT_ERR(ds_create("images", cfg("c", y), &self), DGM_EFORMAT,
               "c/b/4.png");
    ck_assert_int_eq(stat(ds_path("cache/c.u8"), &st), 0);
    ck_assert_int_eq(st.st_size, before);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s/cache' | grep -q tmp", ds_dir);
    ck_assert_int_ne(system(cmd), 0);
}
END_TEST

START_TEST(images_bad_folders)
{
    void *self;
    ck_assert_int_eq(mkdir(ds_path("empty"), 0755), 0);
    ASSERT_ERR(ds_create("images", cfg("empty", ""), &self), DGM_EFORMAT,
               "empty", "empty folder");
    flat_png("nocls/a/1.png", 2, 2, 1);
    ck_assert_int_eq(mkdir(ds_path("nocls/b"), 0755), 0);
    ASSERT_ERR(ds_create("images", cfg("nocls", "size: 2\n"), &self),
               DGM_EFORMAT, "nocls/b", "class folder without images");
    flat_png("txt/a/1.png", 2, 2, 1);
    ds_write("txt/a/readme.txt", "hello\n", 6);
    ASSERT_ERR(ds_create("images", cfg("txt", "size: 2\n"), &self), DGM_EFORMAT,
               "txt/a/readme.txt", "not a PNG or JPEG");
    flat_png("mixed/a/1.png", 2, 2, 1);
    flat_png("mixed/2.png", 2, 2, 1);
    ASSERT_ERR(ds_create("images", cfg("mixed", "size: 2\n"), &self),
               DGM_EFORMAT, "mixed/2.png", "beside class folders");
    flat_png("loop/a/1.png", 2, 2, 1);
    ck_assert_int_eq(symlink("..", ds_path("loop/a/up")), 0);
    ASSERT_ERR(ds_create("images", cfg("loop", "size: 2\n"), &self),
               DGM_EFORMAT, "loop/a/up", "symlink loop");
    flat_png("big/a/1.png", 2, 2, 1);
    write_png_header("big/a/2.png", 60000, 60000);
    ASSERT_ERR(ds_create("images", cfg("big", "size: 2\n"), &self), DGM_EFORMAT,
               "big/a/2.png", "60000 x 60000");
    flat_png("ch/a/1.png", 2, 2, 1);
    ASSERT_ERR(ds_create("images", cfg("ch", "channels: 2\n"), &self),
               DGM_ERANGE, "channels");
    flat_png("half/train/a/1.png", 2, 2, 1);
    ASSERT_ERR(ds_create("images", cfg("half", ""), &self), DGM_EFORMAT,
               "no test/ folder");
    /* no cache file was left by any refusal */
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s/cache' 2>/dev/null)\"",
             ds_dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The class names are the state: the same folder resumes, one with a
 * class added (every later label shifts) is refused. */
START_TEST(images_state)
{
    flat_png("st/b/1.png", 2, 2, 1);
    flat_png("st/c/2.png", 2, 2, 2);
    const dgm_dataset_iface *it = ds_desc("images")->iface.dataset;
    void *self;
    ck_assert_int_eq(ds_create("images", cfg("st", "size: 2\n"), &self), 0);
    dgm_params *state = dgm_params_new();
    ck_assert_int_eq(it->save_state(self, state), 0);
    dgm_param *p = dgm_params_find(state, "classes");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->value->shape[0], 3);
    ck_assert_mem_eq(p->value->data, "b\nc", 3);
    ck_assert_int_eq(it->load_state(self, state), 0);
    ds_destroy(self);
    flat_png("st/a/3.png", 2, 2, 3);
    ck_assert_int_eq(ds_create("images", cfg("st", "size: 2\n"), &self), 0);
    ASSERT_ERR(it->load_state(self, state), DGM_ESTATE, "class folders",
               "[a, b, c]", "[b, c]");
    ds_destroy(self);
    /* an unlabelled folder has no state, and refuses a labelled one's */
    flat_png("st2/1.png", 2, 2, 1);
    ck_assert_int_eq(ds_create("images", cfg("st2", "size: 2\n"), &self), 0);
    dgm_params *none = dgm_params_new();
    ck_assert_int_eq(it->save_state(self, none), 0);
    ck_assert_ptr_null(dgm_params_find(none, "classes"));
    ck_assert_int_eq(it->load_state(self, none), 0);
    ASSERT_ERR(it->load_state(self, state), DGM_ESTATE, "[]", "[b, c]");
    ds_destroy(self);
    dgm_params_free(none);
    dgm_params_free(state);
}
END_TEST

static Suite *images_suite(void)
{
    Suite *s = suite_create("images");
    TCase *tc =
        tq_case(s, "decode", png_every_type, jpeg_decodes, decode_refusals);
    tcase_add_checked_fixture(tc, setup, ds_teardown);
    tc = tq_case(s, "dataset", images_class_folders, images_splits_and_flat,
                 images_resize_geometry, images_cache, images_bad_folders,
                 images_state);
    tcase_add_checked_fixture(tc, setup, ds_teardown);
    tcase_set_timeout(tc, 60);
    return s;
}

int main(void)
{
    return tq_run(images_suite(), "installed", false);
}
