/* test_array.c - .npy headers (dgm_npy_parse: versions, dtypes, shapes,
 * and every lie a header can tell) and the `array` dataset on .npy and
 * .safetensors files the test writes: images [N, H, W] and [N, C, H, W],
 * vectors [N, D], uint8 scaled and float32 as is, labels, refusals. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_check.h"
#include "ck_run.h"
#include "ds_fixture.h"

static void setup(void)
{
    ds_setup_tag("array");
}

START_TEST(npy_headers)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    size_t len;
    dgm_npy_header h;
    unsigned char *b = ds_npy_bytes(
        1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v,
        sizeof v, &len);
    ck_assert_int_eq(dgm_npy_parse(b, len, "a.npy", &h), 0);
    ck_assert_int_eq(h.dtype, DGM_F32);
    ck_assert_int_eq(h.ndim, 2);
    ck_assert_int_eq(h.shape[0], 2);
    ck_assert_int_eq(h.shape[1], 3);
    ck_assert_uint_eq(h.data_offset % 64, 0); /* NumPy's alignment */
    float got;
    memcpy(&got, b + h.data_offset + 4 * 5, 4);
    ck_assert_float_eq(got, 6.0f);
    free(b);
    /* 2.0, one-element tuple, double quotes, uint8 */
    b = ds_npy_bytes(2,
                     "{\"shape\": (6,), \"fortran_order\": False, "
                     "\"descr\": \"|u1\"}",
                     v, 6, &len);
    ck_assert_int_eq(dgm_npy_parse(b, len, "b.npy", &h), 0);
    ck_assert_int_eq(h.dtype, DGM_U8);
    ck_assert_int_eq(h.ndim, 1);
    ck_assert_int_eq(h.shape[0], 6);
    free(b);
    struct {
        const char *dict;
        size_t n;
        const char *why;
    } bad[] = {
        /* shape claims more (and fewer) bytes than the file holds */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", 24,
         "(36 bytes) but the file holds 24"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", 24,
         "but the file holds 24"},
        /* dtype lies: f8 would need 48 bytes */
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 24,
         "(48 bytes)"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24,
         "'>f4' not supported"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
         "Fortran order"},
        {"{'descr': '<f4', 'shape': (2, 3), }", 24, "lacks 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24,
         "not a non-negative integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': "
         "(4294967296, 4294967296, 4294967296), }",
         24, "but the file holds 24"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24,
         "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,"
         "1,1), }",
         4, "more than"},
        {"{'descr': '<f4', 'fortran_order': False, 'evil': 1, }", 24,
         "'evil' unknown"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = ds_npy_bytes(1, bad[i].dict, v, bad[i].n, &len);
        ASSERT_ERR(dgm_npy_parse(b, len, "bad.npy", &h), DGM_EFORMAT, "bad.npy",
                   bad[i].why);
        free(b);
    }
    b = ds_npy_bytes(1, "{}", v, 0, &len);
    b[1] = 'X';
    ASSERT_ERR(dgm_npy_parse(b, len, "m.npy", &h), DGM_EFORMAT, "m.npy",
               "magic");
    /* a header length running past the end */
    b[1] = 'N';
    b[8] = 0xff;
    b[9] = 0xff;
    ASSERT_ERR(dgm_npy_parse(b, len, "m.npy", &h), DGM_EFORMAT, "m.npy",
               "runs past");
    ASSERT_ERR(dgm_npy_parse(b, 5, "m.npy", &h), DGM_EFORMAT, "m.npy");
    free(b);
}
END_TEST

static char yaml[2048];
static const char *cfg(const char *extra)
{
    snprintf(yaml, sizeof yaml, "path: %s\n%s", ds_dir, extra);
    return yaml;
}

/* u8 images [N, H, W] with labels: [1, H, W] examples, scaled pixels. */
START_TEST(array_npy_u8_images)
{
    unsigned char x[5 * 2 * 3], xt[2 * 2 * 3];
    for (int i = 0; i < 30; i++)
        x[i] = (unsigned char)(i * 8);
    for (int i = 0; i < 12; i++)
        xt[i] = (unsigned char)(255 - i);
    int64_t y[5] = {0, 2, 1, 2, 0}, yt[2] = {1, 1};
    ds_write_npy(
        "x.npy", 1,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 2, 3), }", x,
        sizeof x);
    ds_write_npy(
        "xt.npy", 2,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }", xt,
        sizeof xt);
    ds_write_npy("y.npy", 1,
                 "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", y,
                 sizeof y);
    ds_write_npy("yt.npy", 1,
                 "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                 yt, sizeof yt);
    void *self;
    ck_assert_int_eq(ds_create("array",
                               cfg("train: x.npy\ntest: xt.npy\n"
                                   "train_labels: y.npy\n"
                                   "test_labels: yt.npy\n"
                                   "scale: symmetric\n"),
                               &self),
                     0);
    dgm_data_info in = ds_info(self);
    ck_assert_int_eq(in.x_shape.ndim, 3);
    ck_assert_int_eq(in.x_shape.dim[0], 1);
    ck_assert_int_eq(in.x_shape.dim[1], 2);
    ck_assert_int_eq(in.x_shape.dim[2], 3);
    ck_assert_int_eq(in.n_classes, 3);
    ck_assert_int_eq(in.size[DGM_SPLIT_TRAIN], 5);
    ck_assert_int_eq(in.size[DGM_SPLIT_TEST], 2);
    ck_assert_float_eq(in.x_min, -1.0f);
    int64_t idx[2] = {3, 1};
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(((int64_t *)b.y->data)[i], y[idx[i]]);
        for (int k = 0; k < 6; k++)
            ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[i * 6 + k],
                                   -1.0f + 2.0f * x[idx[i] * 6 + k] / 255.0f,
                                   1e-6);
    }
    ds_batch_free(b);
    b = ds_fetch(self, DGM_SPLIT_TEST, idx + 1, 1);
    ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[5],
                           -1.0f + 2.0f * (255 - 11) / 255.0f, 1e-6);
    ds_batch_free(b);
    ds_destroy(self);
    /* class subset */
    ck_assert_int_eq(ds_create("array",
                               cfg("train: x.npy\ntrain_labels: y.npy\n"
                                   "classes: [2]\n"),
                               &self),
                     0);
    ck_assert_int_eq(ds_info(self).size[DGM_SPLIT_TRAIN], 2);
    ck_assert_int_eq(ds_info(self).size[DGM_SPLIT_TEST], 0);
    ds_destroy(self);
}
END_TEST

/* float32 vectors [N, D], no labels: values as is, range from the data. */
START_TEST(array_npy_f32_vectors)
{
    float x[4 * 3] = {0.5f, -2, 3, 1, 1, 1, 0, 0, 7.25f, -1, 0, 0};
    ds_write_npy("v.npy", 1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }",
                 x, sizeof x);
    void *self;
    ck_assert_int_eq(ds_create("array", cfg("train: v.npy\n"), &self), 0);
    dgm_data_info in = ds_info(self);
    ck_assert_int_eq(in.x_shape.ndim, 1);
    ck_assert_int_eq(in.x_shape.dim[0], 3);
    ck_assert(!in.has_y);
    ck_assert_float_eq(in.x_min, -2.0f);
    ck_assert_float_eq(in.x_max, 7.25f);
    int64_t idx[2] = {2, 0};
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 2);
    ck_assert_float_eq(dgm_tensor_f32(b.x)[2], 7.25f);
    ck_assert_float_eq(dgm_tensor_f32(b.x)[4], -2.0f);
    ds_batch_free(b);
    ds_destroy(self);
    x[4] = 0.0f / 0.0f;
    ds_write_npy("v.npy", 1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }",
                 x, sizeof x);
    ASSERT_ERR(ds_create("array", cfg("train: v.npy\n"), &self), DGM_EFORMAT,
               "example 1", "non-finite");
}
END_TEST

/* [N, C, H, W] u8 images and labels in one .safetensors file. */
START_TEST(array_safetensors)
{
    int64_t xs[4] = {3, 3, 2, 2}, ys[1] = {3};
    dgm_tensor *x = dgm_tensor_new(DGM_U8, 4, xs);
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, ys);
    for (int i = 0; i < 36; i++)
        ((uint8_t *)x->data)[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 3; i++)
        ((int64_t *)y->data)[i] = 4 - i;
    dgm_st_writer *w = dgm_st_writer_new();
    ck_assert_int_eq(dgm_st_writer_add(w, "images", x), 0);
    ck_assert_int_eq(dgm_st_writer_add(w, "labels", y), 0);
    ck_assert_int_eq(dgm_st_writer_write(w, ds_path("d.safetensors")), 0);
    dgm_st_writer_free(w);
    void *self;
    ck_assert_int_eq(ds_create("array",
                               cfg("train: d.safetensors\ntensor: images\n"
                                   "train_labels: labels\n"),
                               &self),
                     0);
    dgm_data_info in = ds_info(self);
    ck_assert_int_eq(in.x_shape.dim[0], 3);
    ck_assert_int_eq(in.n_classes, 5);
    int64_t idx[1] = {2};
    ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 1);
    ck_assert_int_eq(((int64_t *)b.y->data)[0], 2);
    for (int k = 0; k < 12; k++)
        ck_assert_float_eq_tol(dgm_tensor_f32(b.x)[k],
                               ((uint8_t *)x->data)[24 + k] / 255.0f, 1e-7);
    ds_batch_free(b);
    ds_destroy(self);
    ASSERT_ERR(ds_create("array", cfg("train: d.safetensors\n"), &self),
               DGM_ENOTFOUND, "d.safetensors", "'x'");
    ASSERT_ERR(ds_create("array", cfg("train: d.safetensors\ntensor: labels\n"),
                         &self),
               DGM_EFORMAT, "expected uint8 or float32");
    dgm_tensor_free(x);
    dgm_tensor_free(y);
}
END_TEST

START_TEST(array_refusals)
{
    unsigned char x[12] = {0};
    int32_t y[3] = {0, 1, 2};
    ds_write_npy("x.npy", 1,
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }",
                 x, sizeof x);
    ds_write_npy("y4.npy", 1,
                 "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", y,
                 8);
    ds_write_npy("lie.npy", 1,
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 4), }",
                 x, sizeof x);
    void *self;
    ASSERT_ERR(ds_create("array", cfg("train: lie.npy\n"), &self), DGM_EFORMAT,
               "lie.npy", "train", "16 bytes");
    ASSERT_ERR(
        ds_create("array", cfg("train: x.npy\ntrain_labels: y4.npy\n"), &self),
        DGM_EFORMAT, "y4.npy", "expected [3] integers");
    ASSERT_ERR(ds_create("array", cfg("train: gone.npy\n"), &self), DGM_EIO,
               "gone.npy");
    ds_write("empty.npy", "", 0);
    ASSERT_ERR(ds_create("array", cfg("train: empty.npy\n"), &self),
               DGM_EFORMAT, "empty.npy", "empty");
    ds_write("text.npy", "hello, world\n", 13);
    ASSERT_ERR(ds_create("array", cfg("train: text.npy\n"), &self), DGM_EFORMAT,
               "text.npy", "not a .npy");
    ds_write_npy("v1.npy", 1,
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (12,), }",
                 x, sizeof x);
    ASSERT_ERR(ds_create("array", cfg("train: v1.npy\n"), &self), DGM_EFORMAT,
               "v1.npy", "[12]");
    ds_write_npy("xt.npy", 1,
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 6), }",
                 x, sizeof x);
    ASSERT_ERR(ds_create("array", cfg("train: x.npy\ntest: xt.npy\n"), &self),
               DGM_EFORMAT, "xt.npy", "differs from the training");
}
END_TEST

static Suite *array_suite(void)
{
    Suite *s = suite_create("array");
    tq_case(s, "npy", npy_headers);
    TCase *tc = tq_case(s, "plugin", array_npy_u8_images, array_npy_f32_vectors,
                        array_safetensors, array_refusals);
    tcase_add_checked_fixture(tc, setup, ds_teardown);
    return s;
}

int main(void)
{
    return tq_run(array_suite(), "installed", false);
}
