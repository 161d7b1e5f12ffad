/* test_cifar.c - the `cifar` dataset on CIFAR-10 and CIFAR-100 files the
 * test writes in the official record layout: pixels land at [C, H, W] as
 * the record holds them, labels (fine and coarse), class subsets, scale,
 * and the refusals (a size that is not whole records, a missing batch, a
 * label out of range), each naming the file. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_check.h"
#include "ck_run.h"
#include "ds_fixture.h"

#define PIX 3072

/* The pixel byte of record r at channel c, row y, column x: a pattern
 * that differs in every coordinate. */
static unsigned char pix(int r, int c, int y, int x)
{
    return (unsigned char)(r * 7 + c * 50 + y * 3 + x * 5);
}

/* n records of `lab` label bytes each (label bytes from labels[]),
 * starting at record r0. */
static void write_records(const char *name, int r0, int n, int lab,
                          const int *labels)
{
    size_t rec = (size_t)lab + PIX;
    unsigned char *buf = malloc(rec * (size_t)n);
    for (int i = 0; i < n; i++) {
        unsigned char *p = buf + rec * (size_t)i;
        for (int k = 0; k < lab; k++)
            p[k] = (unsigned char)labels[(r0 + i) * lab + k];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    p[lab + c * 1024 + y * 32 + x] = pix(r0 + i, c, y, x);
    }
    ds_write(name, buf, rec * (size_t)n);
    free(buf);
}

static int labels10[12];

/* CIFAR-10: five training batches of 2 records, a test batch of 2. */
static void write_cifar10(void)
{
    for (int i = 0; i < 12; i++)
        labels10[i] = (i * 3) % 10;
    char name[32];
    for (int b = 0; b < 5; b++) {
        snprintf(name, sizeof name, "c10/data_batch_%d.bin", b + 1);
        write_records(name, 2 * b, 2, 1, labels10);
    }
    write_records("c10/test_batch.bin", 10, 2, 1, labels10);
}

static void setup(void)
{
    ds_setup_tag("cifar");
}

static char yaml[1024];
static const char *cfg_for(const char *sub, const char *extra)
{
    snprintf(yaml, sizeof yaml, "path: %s/%s\n%s", ds_dir, sub, extra);
    return yaml;
}

START_TEST(cifar10_layout)
{
    write_cifar10();
    void *self;
    ck_assert_int_eq(ds_create("cifar", cfg_for("c10", ""), &self), 0);
    dgm_data_info in = ds_info(self);
    ck_assert_int_eq(in.x_shape.ndim, 3);
    ck_assert_int_eq(in.x_shape.dim[0], 3);
    ck_assert_int_eq(in.x_shape.dim[1], 32);
    ck_assert_int_eq(in.x_shape.dim[2], 32);
    ck_assert_int_eq(in.n_classes, 10);
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 10);
    ck_assert_int_eq(in.size[DGM_SPLIT_TEST], 2);
    ck_assert(in.has_y);
    int64_t idx[3] = {9, 0, 4}; /* records across batch files */
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(((int64_t *)b.y->data)[i], labels10[idx[i]]);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y += 7)
                for (int x = 0; x < 32; x += 5) {
                    float got =
                        dgm_tensor_f32(b.x)[((i * 3 + c) * 32 + y) * 32 + x];
                    float want = pix((int)idx[i], c, y, x) / 255.0f;
                    ck_assert_float_eq_tol(got, want, 1e-7);
                }
    }
    ds_batch_free(b);
    int64_t t[1] = {1};
    b = ds_fetch(self, DGM_SPLIT_TEST, t, 1);
    ck_assert_int_eq(((int64_t *)b.y->data)[0], labels10[11]);
    ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[1024 + 32 + 1],
                           pix(11, 1, 1, 1) / 255.0f, 1e-7);
    ds_batch_free(b);
    ds_destroy(self);
}
END_TEST

START_TEST(cifar10_scale_and_classes)
{
    write_cifar10();
    void *self;
    ck_assert_int_eq(ds_create("cifar",
                               cfg_for("c10", "scale: symmetric\n"
                                              "classes: [3, 9]\n"),
                               &self),
                     0);
    dgm_data_info in = ds_info(self);
    ck_assert_float_eq(in.x_min, -1.0f);
    /* labels (i*3)%10 over 0..9: 3 at i=1, 9 at i=3; test 10,11: 0, 3 */
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 2);
    ck_assert_int_eq(in.size[DGM_SPLIT_TEST], 1);
    ck_assert_int_eq(in.n_classes, 10);
    int64_t idx[2] = {0, 1};
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 2);
    ck_assert_int_eq(((int64_t *)b.y->data)[0], 3);
    ck_assert_int_eq(((int64_t *)b.y->data)[1], 9);
    ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[0],
                           -1.0f + 2.0f * pix(1, 0, 0, 0) / 255.0f, 1e-6);
    ds_batch_free(b);
    ds_destroy(self);
}
END_TEST

START_TEST(cifar100_fine_and_coarse)
{
    int labels[2 * 5];
    for (int i = 0; i < 5; i++) {
        labels[2 * i] = 19 - i;     /* coarse */
        labels[2 * i + 1] = 99 - i; /* fine */
    }
    write_records("c100/train.bin", 0, 3, 2, labels);
    write_records("c100/test.bin", 3, 2, 2, labels);
    void *self;
    ck_assert_int_eq(ds_create("cifar", cfg_for("c100", ""), &self), 0);
    dgm_data_info in = ds_info(self);
    ck_assert_int_eq(in.n_classes, 100);
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 3);
    int64_t idx[2] = {2, 0};
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 2);
    ck_assert_int_eq(((int64_t *)b.y->data)[0], 97);
    ck_assert_int_eq(((int64_t *)b.y->data)[1], 99);
    ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[2 * 1024 + 5 * 32 + 6],
                           pix(2, 2, 5, 6) / 255.0f, 1e-7);
    ds_batch_free(b);
    ds_destroy(self);
    ck_assert_int_eq(
        ds_create("cifar", cfg_for("c100", "labels: coarse\n"), &self), 0);
    ck_assert_int_eq(ds_info(self).n_classes, 20);
    b = ds_fetch(self, DGM_SPLIT_TEST, idx + 1, 1);
    ck_assert_int_eq(((int64_t *)b.y->data)[0], 16);
    ds_batch_free(b);
    ds_destroy(self);
}
END_TEST

START_TEST(cifar_refusals)
{
    write_cifar10();
    void *self;
    /* a batch one byte short of whole records */
    static unsigned char junk[3073 * 2 - 1];
    ds_write("c10/data_batch_3.bin", junk, sizeof junk);
    ASSERT_ERR(ds_create("cifar", cfg_for("c10", ""), &self), DGM_EFORMAT,
               "data_batch_3.bin", "6145 bytes", "3073-byte records");
    write_cifar10();
    unlink(ds_path("c10/data_batch_5.bin"));
    ASSERT_ERR(ds_create("cifar", cfg_for("c10", ""), &self), DGM_EIO,
               "data_batch_5.bin");
    /* a CIFAR-100 file read as CIFAR-10: records of the wrong size */
    int labels[4] = {1, 2, 3, 4};
    write_records("c100/train.bin", 0, 2, 2, labels);
    write_records("c100/test.bin", 0, 1, 2, labels);
    ASSERT_ERR(ds_create("cifar", cfg_for("c100", "variant: cifar10\n"), &self),
               DGM_EIO, "data_batch_1.bin");
    /* a label outside CIFAR-10's ten */
    write_cifar10();
    labels10[0] = 10;
    write_records("c10/data_batch_1.bin", 0, 2, 1, labels10);
    ASSERT_ERR(ds_create("cifar", cfg_for("c10", ""), &self), DGM_EFORMAT,
               "label 10 outside [0, 10)");
    /* an empty file */
    ds_write("c100/test.bin", "", 0);
    ASSERT_ERR(ds_create("cifar", cfg_for("c100", ""), &self), DGM_EFORMAT,
               "test.bin", "0 bytes");
    ASSERT_ERR(ds_create("cifar", cfg_for("none", ""), &self), DGM_EIO,
               "none/train.bin");
    write_cifar10();
    ASSERT_ERR(ds_create("cifar", cfg_for("c10", "classes: [12]\n"), &self),
               DGM_ERANGE, "classes", "class 12");
}
END_TEST

static Suite *cifar_suite(void)
{
    Suite *s = suite_create("cifar");
    TCase *tc = tq_case(s, "cifar", cifar10_layout, cifar10_scale_and_classes,
                        cifar100_fine_and_coarse, cifar_refusals);
    tcase_add_checked_fixture(tc, setup, ds_teardown);
    return s;
}

int main(void)
{
    return tq_run(cifar_suite(), "installed", false);
}
