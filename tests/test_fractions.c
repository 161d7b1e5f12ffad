/* test_fractions.c - train_fraction and label_fraction of the image
 * datasets (idx, cifar, array, images: one helper, fractions.h): on the
 * same 40 labelled examples (each one's first pixel is its row) every
 * dataset keeps the same rows and masks the same labels for a seed, with
 * the stratified counts; another seed chooses otherwise; unlabelled data
 * takes a plain seeded fraction and refuses a label fraction. */
#include <check.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "ds_fixture.h"
#include "img_write.h"

#define N 40
#define N_CLASSES 4

/* Uneven classes (13, 9, 9, 9 or so), not in blocks. */
static int label_of(int row)
{
    return (row * row + row / 5) % N_CLASSES;
}

/* An IDX u8 file: dims big-endian after the magic 0, 0, 8, rank. */
static void write_idx(const char *name, int rank, const uint32_t *dims,
                      const unsigned char *data, size_t n)
{
    unsigned char *b = malloc(4 + 4 * (size_t)rank + n);
    b[0] = b[1] = 0, b[2] = 0x08, b[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int j = 0; j < 4; j++)
            b[4 + 4 * i + j] = (unsigned char)(dims[i] >> (24 - 8 * j));
    memcpy(b + 4 + 4 * rank, data, n);
    ds_write(name, b, 4 + 4 * (size_t)rank + n);
    free(b);
}

/* The same examples as IDX files, CIFAR-10 files, .npy arrays and an
 * image folder (train/ and test/, class folders c0..c3): 2x2 grey (CIFAR:
 * 3x32x32), pixel 0 the row, the rest 0; 4 test examples. */
static void setup(void)
{
    ds_setup_tag("fractions");
    unsigned char img[N * 4] = {0}, lab[N];
    for (int r = 0; r < N; r++)
        img[4 * r] = (unsigned char)r, lab[r] = (unsigned char)label_of(r);
    write_idx("idx/tr-img", 3, (uint32_t[]){N, 2, 2}, img, sizeof img);
    write_idx("idx/tr-lab", 1, (uint32_t[]){N}, lab, N);
    write_idx("idx/te-img", 3, (uint32_t[]){4, 2, 2}, img, 16);
    write_idx("idx/te-lab", 1, (uint32_t[]){4}, lab, 4);
    ds_write_npy("x.npy", 1,
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (40, 2, "
                 "2), }",
                 img, sizeof img);
    ds_write_npy("y.npy", 1,
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (40,), }",
                 lab, N);
    static unsigned char rec[5][8][1 + 3072];
    for (int r = 0; r < N; r++) {
        unsigned char *p = rec[r / 8][r % 8];
        p[0] = lab[r];
        p[1] = (unsigned char)r;
    }
    char name[64];
    for (int f = 0; f < 5; f++) {
        snprintf(name, sizeof name, "cifar/data_batch_%d.bin", f + 1);
        ds_write(name, rec[f], sizeof rec[f]);
    }
    ds_write("cifar/test_batch.bin", rec[0], 4 * sizeof rec[0][0]);
    for (int f = 0; f < 2 * N_CLASSES; f++) { /* the folders, once */
        snprintf(name, sizeof name, "images/%s/c%d/r.png",
                 f < N_CLASSES ? "train" : "test", f % N_CLASSES);
        ds_write(name, "", 0);
        remove(ds_path(name));
    }
    for (int r = 0; r < N; r++) {
        unsigned char px[4] = {(unsigned char)r, 0, 0, 0};
        snprintf(name, sizeof name, "images/train/c%d/r%03d.png", label_of(r),
                 r);
        tc_write_png(ds_path(name), 2, 2, PNG_COLOR_TYPE_GRAY, 8, px, NULL, 0);
        /* the first row of each class is its test image too */
        snprintf(name, sizeof name, "images/test/c%d/r.png", label_of(r));
        if (access(ds_path(name), F_OK) != 0)
            tc_write_png(ds_path(name), 2, 2, PNG_COLOR_TYPE_GRAY, 8, px, NULL,
                         0);
    }
}

static void teardown(void)
{
    ds_teardown();
}

/* The training split of plugin `name` (its files, then `extra`): the
 * rows kept, in file order, and each one's y_mask; returns the count. */
static int kept(const char *name, const char *extra, int *rows, float *mask)
{
    char yaml[4096];
    if (!strcmp(name, "idx"))
        snprintf(yaml, sizeof yaml,
                 "path: %s\ntrain_images: tr-img\ntrain_labels: tr-lab\n"
                 "test_images: te-img\ntest_labels: te-lab\n%s",
                 ds_path("idx"), extra);
    else if (!strcmp(name, "cifar"))
        snprintf(yaml, sizeof yaml, "path: %s\n%s", ds_path("cifar"), extra);
    else if (!strcmp(name, "array"))
        snprintf(yaml, sizeof yaml,
                 "path: %s\ntrain: x.npy\ntrain_labels: y.npy\n%s", ds_dir,
                 extra);
    else
        snprintf(yaml, sizeof yaml,
                 "path: %s\nsize: 2\nresize: crop\nchannels: 1\ncache: %s\n%s",
                 ds_path("images"), ds_path("cache.bin"), extra);
    void *self;
    int rc = ds_create(name, yaml, &self);
    ck_assert_msg(rc == 0, "%s: %s", name, dgm_last_error());
    dgm_data_info in = ds_info(self);
    int n = (int)in.size[DGM_SPLIT_TRAIN];
    ck_assert_int_le(n, N);
    int64_t idx[N];
    for (int i = 0; i < n; i++)
        idx[i] = i;
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, n);
    int64_t plane = dgm_tensor_numel(b.x) / n;
    for (int i = 0; i < n; i++) {
        rows[i] = (int)lrint(dgm_tensor_f32(b.x)[i * plane] * 255.0);
        mask[i] = dgm_tensor_f32(b.m)[i];
        ck_assert_int_eq(((int64_t *)b.y->data)[i], label_of(rows[i]));
    }
    ds_batch_free(b);
    ds_destroy(self);
    return n;
}

/* rows/mask sorted by row (the image folder lists its files by class). */
static void by_row(int n, int *rows, float *mask)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && rows[j - 1] > rows[j]; j--) {
            int r = rows[j];
            float m = mask[j];
            rows[j] = rows[j - 1], mask[j] = mask[j - 1];
            rows[j - 1] = r, mask[j - 1] = m;
        }
}

/* round(f * m), at least 1. */
static int share(double f, int m)
{
    int k = (int)(f * m + 0.5);
    return k < 1 ? 1 : k;
}

START_TEST(same_choice_everywhere)
{
    static const char *const plugins[4] = {"idx", "cifar", "array", "images"};
    const char *extra = "train_fraction: 0.5\nlabel_fraction: 0.3\nseed: 7\n";
    int rows[4][N], count[N_CLASSES] = {0};
    float mask[4][N];
    for (int r = 0; r < N; r++)
        count[label_of(r)]++;
    int n0 = 0;
    for (int p = 0; p < 4; p++) {
        int n = kept(plugins[p], extra, rows[p], mask[p]);
        by_row(n, rows[p], mask[p]);
        int kept_c[N_CLASSES] = {0}, masked_c[N_CLASSES] = {0};
        for (int i = 0; i < n; i++) {
            kept_c[label_of(rows[p][i])]++;
            ck_assert(mask[p][i] == 0.0f || mask[p][i] == 1.0f);
            masked_c[label_of(rows[p][i])] += mask[p][i] == 1.0f;
            if (i)
                ck_assert_int_lt(rows[p][i - 1], rows[p][i]);
        }
        for (int c = 0; c < N_CLASSES; c++) {
            ck_assert_int_eq(kept_c[c], share(0.5, count[c]));
            ck_assert_int_eq(masked_c[c], share(0.3, kept_c[c]));
        }
        if (p == 0)
            n0 = n;
        ck_assert_msg(n == n0, "%s keeps %d, idx %d", plugins[p], n, n0);
        ck_assert_msg(!memcmp(rows[p], rows[0], sizeof(int) * (size_t)n),
                      "%s keeps other rows than idx", plugins[p]);
        ck_assert_msg(!memcmp(mask[p], mask[0], sizeof(float) * (size_t)n),
                      "%s masks other labels than idx", plugins[p]);
    }
    /* another seed, another choice; no fraction, everything with y_mask 1 */
    int other[N];
    float om[N];
    ck_assert_int_eq(kept("cifar", "train_fraction: 0.5\nseed: 8\n", other, om),
                     n0);
    ck_assert(memcmp(other, rows[0], sizeof(int) * (size_t)n0) != 0);
    for (int p = 0; p < 4; p++) {
        ck_assert_int_eq(kept(plugins[p], "", other, om), N);
        for (int i = 0; i < N; i++)
            ck_assert(om[i] == 1.0f);
    }
}
END_TEST

START_TEST(unlabelled)
{
    int rows[N];
    float mask[N];
    void *self;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "path: %s\ntrain: x.npy\ntrain_fraction: 0.25\nseed: 2\n", ds_dir);
    ck_assert_int_eq(ds_create("array", yaml, &self), 0);
    ck_assert_int_eq(ds_info(self).size[DGM_SPLIT_TRAIN], 10);
    int64_t idx[10];
    for (int i = 0; i < 10; i++)
        idx[i] = i;
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 10);
    for (int i = 0; i < 10; i++) {
        rows[i] = (int)lrint(dgm_tensor_f32(b.x)[i * 4] * 255.0);
        mask[i] = dgm_tensor_f32(b.m)[i];
        ck_assert(mask[i] == 1.0f);
        if (i)
            ck_assert_int_lt(rows[i - 1], rows[i]); /* file order */
    }
    ck_assert_int_ne(rows[9], 9); /* not simply the first ten */
    ds_batch_free(b);
    ds_destroy(self);
    snprintf(yaml, sizeof yaml, "path: %s\ntrain: x.npy\nlabel_fraction: 0.5\n",
             ds_dir);
    ck_assert_int_eq(ds_create("array", yaml, &self), DGM_EINVAL);
    ck_assert_msg(strstr(dgm_last_error(), "label_fraction") &&
                      strstr(dgm_last_error(), "no labels"),
                  "%s", dgm_last_error());
}
END_TEST

static Suite *fractions_suite(void)
{
    Suite *s = suite_create("fractions");
    TCase *tc = tq_case(s, "fractions", same_choice_everywhere, unlabelled);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fractions_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
