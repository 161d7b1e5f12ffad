/* test_png.c - sample grids: written by dgm_png_write_grid, decoded here
 * with libpng's read API, checked pixel by pixel at chosen places. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/io.h"
#include "dgm/tensor.h"
#include "scratch.h"
#include "png_read.h"

static int tmp_files_left(void)
{
    DIR *d = opendir(tc_scratch_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

typedef tc_image image;

static image decode(const char *path)
{
    return tc_png_read(path);
}

static int at(const image *im, uint32_t x, uint32_t y, int c)
{
    return tc_png_at(im, x, y, c);
}

START_TEST(grey_grid)
{
    /* 5 images of 3x4 in rows of 2: 3 rows, the last one short. Image k
     * pixel (y, x) = k / 10 + y * 0.1 + x * 0.01, from [-1, 1]. */
    int64_t shape[3] = {5, 3, 4};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 3, shape);
    float *p = dgm_tensor_f32(t);
    for (int k = 0; k < 5; k++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                p[(k * 3 + y) * 4 + x] = k / 10.0f + y * 0.1f + x * 0.01f;
    p[0] = -3.0f;           /* clamps to 0 */
    p[1] = 7.0f;            /* clamps to 255 */
    p[2] = NAN;             /* 0 */
    const char *path = tc_spath("grid.png");
    ck_assert_int_eq(dgm_png_write_grid(path, t, 2, -1.0f, 1.0f), 0);
    ck_assert_int_eq(tmp_files_left(), 0);
    image im = decode(path);
    ck_assert_int_eq(im.w, 2 * (4 + 2) + 2);
    ck_assert_int_eq(im.h, 3 * (3 + 2) + 2);
    ck_assert_int_eq(im.color_type, PNG_COLOR_TYPE_GRAY);
    ck_assert_int_eq(im.bit_depth, 8);
    ck_assert_int_eq(at(&im, 0, 0, 0), 128); /* border */
    ck_assert_int_eq(at(&im, 1, 5, 0), 128);
    ck_assert_int_eq(at(&im, 2, 2, 0), 0);
    ck_assert_int_eq(at(&im, 3, 2, 0), 255);
    ck_assert_int_eq(at(&im, 4, 2, 0), 0);
    /* Image 3 sits in row 1, column 1: origin (2 + 6, 2 + 5). Its pixel
     * (y 2, x 1) = 0.3 + 0.2 + 0.01 -> (0.51 + 1) / 2 * 255 = 192.5. */
    double v = (double)(3 / 10.0f + 2 * 0.1f + 1 * 0.01f);
    int want = (int)lrint((v + 1.0) / 2.0 * 255.0);
    ck_assert_int_eq(at(&im, 8 + 1, 7 + 2, 0), want);
    ck_assert_int_eq(at(&im, 7, 7, 0), 128); /* the gap between columns */
    /* The missing sixth cell is border grey. */
    ck_assert_int_eq(at(&im, 8 + 2, 12 + 1, 0), 128);
    /* Image 4: row 2, column 0, pixel (0, 3). */
    v = (double)(4 / 10.0f + 3 * 0.01f);
    ck_assert_int_eq(at(&im, 2 + 3, 12, 0), (int)lrint((v + 1) / 2 * 255));
    free(im.pix);
    dgm_tensor_free(t);
}
END_TEST

START_TEST(rgb_grid_from_a_view)
{
    /* [N, C, H, W] = [3, 3, 2, 2] in [0, 1], given as a permuted view of an
     * NHWC buffer: pixel (k, c, y, x) = (k * 20 + c * 70 + y * 10 + x) /
     * 255. nrow larger than N: one row of 3. */
    int64_t nhwc[4] = {3, 2, 2, 3};
    dgm_tensor *base = dgm_tensor_new(DGM_F64, 4, nhwc);
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
                for (int c = 0; c < 3; c++)
                    ((double *)base->data)[((k * 2 + y) * 2 + x) * 3 + c] =
                        (k * 20 + c * 70 + y * 10 + x) / 255.0;
    int perm[4] = {0, 3, 1, 2};
    dgm_tensor *t = dgm_tensor_permute(base, perm);
    ck_assert(!dgm_tensor_is_contiguous(t));
    const char *path = tc_spath("rgb.png");
    ck_assert_int_eq(dgm_png_write_grid(path, t, 8, 0.0f, 1.0f), 0);
    image im = decode(path);
    ck_assert_int_eq(im.w, 3 * (2 + 2) + 2);
    ck_assert_int_eq(im.h, 2 + 2 + 2);
    ck_assert_int_eq(im.color_type, PNG_COLOR_TYPE_RGB);
    for (int c = 0; c < 3; c++) {
        ck_assert_int_eq(at(&im, 2, 2, c), c * 70); /* k0 (0, 0) */
        ck_assert_int_eq(at(&im, 6 + 1, 2 + 1, c), 20 + c * 70 + 11);
        ck_assert_int_eq(at(&im, 10, 3, c), 40 + c * 70 + 10);
        ck_assert_int_eq(at(&im, 1, 1, c), 128);
    }
    free(im.pix);
    dgm_tensor_free(t);
    dgm_tensor_free(base);
}
END_TEST

START_TEST(refusals)
{
    int64_t s2[4] = {2, 2, 3, 3};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 4, s2);
    const char *path = tc_spath("bad.png");
    ck_assert_int_eq(dgm_png_write_grid(path, t, 2, 0, 1), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "1 or 3 channels"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "bad.png"));
    dgm_tensor_free(t);
    int64_t s1[2] = {4, 4};
    t = dgm_tensor_new(DGM_F32, 2, s1);
    ck_assert_int_eq(dgm_png_write_grid(path, t, 2, 0, 1), DGM_ESHAPE);
    dgm_tensor_free(t);
    int64_t s3[3] = {1, 4, 4};
    t = dgm_tensor_new(DGM_F32, 3, s3);
    ck_assert_int_eq(dgm_png_write_grid(path, t, 0, 0, 1), DGM_EINVAL);
    ck_assert_int_eq(dgm_png_write_grid(path, t, 1, 1, 1), DGM_EINVAL);
    ck_assert_int_eq(dgm_png_write_grid(tc_spath("no/dir/x.png"), t, 1, 0, 1),
                     DGM_EIO);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "x.png.tmp."));
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(tmp_files_left(), 0);
    dgm_tensor_free(t);
}
END_TEST

static Suite *png_suite(void)
{
    Suite *s = suite_create("png");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"grey", grey_grid},
        {"rgb", rgb_grid_from_a_view},
        {"errors", refusals},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tcase_add_checked_fixture(tq_case(s, cases[i].name, cases[i].test),
                                  tc_scratch_setup, tc_scratch_teardown);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(png_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
