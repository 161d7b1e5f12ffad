/* test_idx.c - IDX files (raw and gzipped, every type, every refusal) and
 * the `idx` dataset plugin through its interface: subsets, masks, scaling,
 * binarisation, errors, and the real Fashion-MNIST when it is installed. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "scratch.h"

/* ---- scratch files ---------------------------------------------------- */

/* Write bytes raw, or gzipped when the name ends in ".gz". */
static void write_file(const char *path, const void *p, size_t n)
{
    size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, ".gz") == 0) {
        gzFile gz = gzopen(path, "wb");
        ck_assert_ptr_nonnull(gz);
        ck_assert_int_eq(gzwrite(gz, p, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(gz), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* An IDX file: header for (type, rank, dims), then `data` (n bytes, already
 * big-endian). */
static void write_idx(const char *path, int type, int rank,
                      const uint32_t *dims, const void *data, size_t n)
{
    size_t hn = 4 + 4 * (size_t)rank;
    unsigned char *buf = malloc(hn + n + 1);
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)rank;
    for (int d = 0; d < rank; d++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    if (n)
        memcpy(buf + hn, data, n);
    write_file(path, buf, hn + n);
    free(buf);
}

static void expect_refused(const char *path, int code, const char *fragment)
{
    dgm_tensor *t = (dgm_tensor *)0x1;
    int rc = dgm_idx_load(path, &t);
    ck_assert_msg(rc == code, "%s: rc %d (%s), want %d", path, rc,
                  dgm_last_error(), code);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(dgm_last_error(), path), "no path in: %s",
                  dgm_last_error());
    ck_assert_msg(strstr(dgm_last_error(), fragment), "no '%s' in: %s",
                  fragment, dgm_last_error());
}

/* ---- dgm_idx_load ----------------------------------------------------- */

START_TEST(load_every_type)
{
    const char *names[2] = {"u8.idx", "u8.idx.gz"};
    unsigned char px[12];
    for (int i = 0; i < 12; i++)
        px[i] = (unsigned char)(i * 20 + 15);
    uint32_t d3[3] = {2, 2, 3};
    for (int k = 0; k < 2; k++) {
        const char *p = tc_spath(names[k]);
        write_idx(p, 0x08, 3, d3, px, 12);
        dgm_tensor *t;
        ck_assert_int_eq(dgm_idx_load(p, &t), 0);
        ck_assert_int_eq(t->dtype, DGM_U8);
        ck_assert_int_eq(t->ndim, 3);
        ck_assert_int_eq(t->shape[0], 2);
        ck_assert_int_eq(t->shape[2], 3);
        ck_assert_mem_eq(t->data, px, 12);
        dgm_tensor_free(t);
    }
    struct {
        int type;
        unsigned char bytes[16];
        size_t n;
        dgm_dtype want;
        double v[2];
    } cases[] = {
        {0x09, {0xff, 0x7f}, 2, DGM_I32, {-1, 127}},
        {0x0B, {0xff, 0xfe, 0x01, 0x00}, 4, DGM_I32, {-2, 256}},
        {0x0C, {0x80, 0, 0, 0, 0, 1, 0, 1}, 8, DGM_I32, {-2147483648.0, 65537}},
        {0x0D, {0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0}, 8, DGM_F32, {1.5, -2}},
        {0x0E,
         {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, 0xbf, 0xf0, 0, 0, 0,
          0, 0, 0},
         16,
         DGM_F64,
         {3.141592653589793, -1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *p = tc_spath("typed.idx.gz");
        uint32_t d1[1] = {2};
        write_idx(p, cases[c].type, 1, d1, cases[c].bytes, cases[c].n);
        dgm_tensor *t;
        ck_assert_int_eq(dgm_idx_load(p, &t), 0);
        ck_assert_int_eq(t->dtype, cases[c].want);
        ck_assert_int_eq(t->shape[0], 2);
        for (int i = 0; i < 2; i++)
            ck_assert_msg(dgm_tensor_get(t, i) == cases[c].v[i],
                          "type 0x%02x [%d]: %.17g != %.17g", cases[c].type,
                          i, dgm_tensor_get(t, i), cases[c].v[i]);
        dgm_tensor_free(t);
    }
    /* A zero dimension is an empty array. */
    uint32_t d0[2] = {0, 4};
    const char *p = tc_spath("empty.idx");
    write_idx(p, 0x08, 2, d0, NULL, 0);
    dgm_tensor *t;
    ck_assert_int_eq(dgm_idx_load(p, &t), 0);
    ck_assert_int_eq(dgm_tensor_numel(t), 0);
    ck_assert_int_eq(t->shape[1], 4);
    dgm_tensor_free(t);
}
END_TEST

START_TEST(load_refusals)
{
    unsigned char px[16] = {0};
    uint32_t d[2] = {3, 4};
    const char *p = tc_spath("trunc.idx");
    write_idx(p, 0x08, 2, d, px, 10);
    expect_refused(p, DGM_EFORMAT, "expected 12 bytes, got 10");
    p = tc_spath("trunc.idx.gz");
    write_idx(p, 0x08, 2, d, px, 10);
    expect_refused(p, DGM_EFORMAT, "expected 12 bytes, got 10");
    /* A gzip stream cut in the middle. */
    unsigned char big[4096];
    for (int i = 0; i < 4096; i++)
        big[i] = (unsigned char)(i * 7919 >> 3);
    uint32_t db[1] = {4096};
    p = tc_spath("cut.idx.gz");
    write_idx(p, 0x08, 1, db, big, 4096);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(truncate(p, sb.st_size / 2), 0);
    expect_refused(p, DGM_EFORMAT, "truncated data: expected 4096 bytes");

    p = tc_spath("trailing.idx");
    write_idx(p, 0x08, 2, d, px, 13);
    expect_refused(p, DGM_EFORMAT, "trailing bytes after the 12 data bytes");
    p = tc_spath("trailing.idx.gz");
    write_idx(p, 0x08, 2, d, px, 16);
    expect_refused(p, DGM_EFORMAT, "trailing bytes");

    p = tc_spath("magic.idx");
    write_file(p, "\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9);
    expect_refused(p, DGM_EFORMAT, "does not start with two zero bytes");
    write_file(p, "PK", 2);
    expect_refused(p, DGM_EFORMAT, "too short for the 4-byte IDX magic");

    p = tc_spath("type.idx");
    write_idx(p, 0x0A, 2, d, px, 12);
    expect_refused(p, DGM_EFORMAT, "unknown IDX type byte 0x0a");
    p = tc_spath("rank.idx");
    write_idx(p, 0x08, 0, d, px, 1);
    expect_refused(p, DGM_EFORMAT, "IDX rank 0 outside [1, 4]");
    uint32_t d5[5] = {1, 1, 1, 1, 1};
    write_idx(p, 0x08, 5, d5, px, 1);
    expect_refused(p, DGM_EFORMAT, "IDX rank 5 outside [1, 4]");
    /* Rank 3, but the header ends after two dimensions. */
    write_file(p, "\0\0\x08\x03\0\0\0\x03\0\0\0\x04", 12);
    expect_refused(p, DGM_EFORMAT, "expected 12 dimension bytes, got 8");

    p = tc_spath("overflow.idx.gz");
    uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0x10u};
    write_idx(p, 0x0E, 4, huge, px, 16);
    expect_refused(p, DGM_EFORMAT, "dimensions overflow");
    /* A zero dim beside huge ones: no data, but the other dims' product
     * (the tensor's strides) overflows; refused, raw and gzipped. */
    uint32_t zero4[4] = {0, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    p = tc_spath("zero.idx");
    write_idx(p, 0x08, 4, zero4, px, 0);
    expect_refused(p, DGM_EFORMAT, "dimensions overflow");
    ck_assert_msg(strstr(dgm_last_error(), "at dimension 2"), "%s",
                  dgm_last_error());
    uint32_t zero3[3] = {0xffffffffu, 0, 0xffffffffu};
    p = tc_spath("zero.idx.gz");
    write_idx(p, 0x08, 3, zero3, px, 0);
    expect_refused(p, DGM_EFORMAT, "dimensions overflow");
    /* an element that widens in memory counts at its tensor size: 2^61
     * signed bytes are 2^63 bytes as i32 */
    uint32_t wide[3] = {0, 0x80000000u, 0x40000000u};
    p = tc_spath("wide.idx");
    write_idx(p, 0x09, 3, wide, px, 0);
    expect_refused(p, DGM_EFORMAT, "dimensions overflow");
    /* A zero dim beside dims whose product fits: an empty tensor whose
     * strides are the products of the later dims. */
    uint32_t fits[3] = {0, 0xffffffffu, 2};
    p = tc_spath("empty.idx");
    write_idx(p, 0x08, 3, fits, px, 0);
    dgm_tensor *t = NULL;
    ck_assert_msg(dgm_idx_load(p, &t) == 0, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_tensor_numel(t), 0);
    ck_assert_int_eq(t->shape[1], 0xffffffffll);
    ck_assert_int_eq(t->strides[0], 2 * 0xffffffffll);
    dgm_tensor_free(t);
    p = tc_spath("overflow.idx.gz");
    /* Large but representable: refused as truncated without allocating. */
    uint32_t large[2] = {0xffffffffu, 0x10u};
    write_idx(p, 0x0C, 2, large, px, 16);
    expect_refused(p, DGM_EFORMAT,
                   "truncated data: expected 274877906880 bytes, got 16");
    expect_refused(tc_spath("absent.idx"), DGM_EIO, "cannot open");
}
END_TEST

/* ---- the plugin ------------------------------------------------------- */

#define N_TRAIN 40
#define N_TEST 8
#define IMG_H 2
#define IMG_W 3

static void *plugin_so;
static const dgm_plugin_desc *desc;
static const dgm_dataset_iface *ds;

/* Image i: pixel 0 is 255, pixel 1 is 0, the rest are 6 i; labels i % 4. */
static void write_dataset(int n_train_labels, int label_rank)
{
    unsigned char img[N_TRAIN * IMG_H * IMG_W], lab[N_TRAIN];
    for (int i = 0; i < N_TRAIN; i++) {
        unsigned char *p = img + i * IMG_H * IMG_W;
        p[0] = 255;
        p[1] = 0;
        for (int k = 2; k < IMG_H * IMG_W; k++)
            p[k] = (unsigned char)(6 * i);
        lab[i] = (unsigned char)(i % 4);
    }
    uint32_t dtr[3] = {N_TRAIN, IMG_H, IMG_W}, dte[3] = {N_TEST, IMG_H, IMG_W};
    write_idx(tc_spath("tr-img.gz"), 0x08, 3, dtr, img, sizeof img);
    write_idx(tc_spath("te-img"), 0x08, 3, dte, img, N_TEST * IMG_H * IMG_W);
    uint32_t dl[2] = {(uint32_t)n_train_labels, 1};
    /* Written without .gz: the plugin falls back to the plain name. */
    write_idx(tc_spath("tr-lab"), 0x08, label_rank, dl, lab,
              (size_t)n_train_labels);
    uint32_t dlt[1] = {N_TEST};
    write_idx(tc_spath("te-lab.gz"), 0x08, 1, dlt, lab, N_TEST);
}

static void plugin_setup(void)
{
    tc_scratch_setup();
    plugin_so = dlopen(DGM_PLUGIN_DIR "/datasets_idx.so", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(plugin_so, "dlopen: %s", dlerror());
    dgm_plugin_query_fn q =
        (dgm_plugin_query_fn)dlsym(plugin_so, DGM_PLUGIN_QUERY_SYMBOL);
    ck_assert_ptr_nonnull(q);
    desc = q(0);
    ck_assert_ptr_nonnull(desc);
    ck_assert_ptr_null(q(1));
    ck_assert_int_eq(desc->kind, DGM_KIND_DATASET);
    ck_assert_str_eq(desc->name, "idx");
    ds = desc->iface.dataset;
    write_dataset(N_TRAIN, 1);
}

static void plugin_teardown(void)
{
    dlclose(plugin_so);
    tc_scratch_teardown();
}

/* Create the dataset from YAML `extra` on top of the scratch files;
 * returns create's code, *self on success, *cfg_out the config (the
 * caller frees it after destroy). */
static int create(const char *extra, void **self, dgm_config **cfg_out)
{
    static const char *base[5][2] = {{"train_images", "tr-img.gz"},
                                     {"train_labels", "tr-lab.gz"},
                                     {"test_images", "te-img"},
                                     {"test_labels", "te-lab.gz"},
                                     {"path", tc_scratch_dir}};
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "%s", extra);
    for (int i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s:", base[i][0]);
        if (!strstr(extra, key)) /* extra overrides the fixture */
            n += (size_t)snprintf(text + n, sizeof text - n, "%s %s\n", key,
                                  base[i][1]);
    }
    dgm_config *cfg;
    ck_assert_int_eq(dgm_config_parse(&cfg, text, "test.yaml"), 0);
    int rc = dgm_config_validate(cfg, desc->params, "idx", NULL);
    ck_assert_msg(rc == 0, "validate: %s", dgm_last_error());
    *self = NULL;
    rc = ds->create(self, cfg);
    *cfg_out = cfg;
    return rc;
}

typedef struct fetched {
    dgm_tensor *x, *y, *m;
} fetched;

static fetched fetch(void *self, dgm_split split, const int64_t *idx,
                     int64_t n, dgm_rng *rng)
{
    int64_t xs[4] = {n, 1, IMG_H, IMG_W};
    fetched f = {dgm_tensor_new(DGM_F32, 4, xs),
                 dgm_tensor_new(DGM_I64, 1, xs),
                 dgm_tensor_new(DGM_F32, 1, xs)};
    dgm_batch b = {n, f.x, f.y, f.m};
    int rc = ds->get(self, split, idx, &b, rng);
    ck_assert_msg(rc == 0, "get: %s", dgm_last_error());
    return f;
}

static void fetched_free(fetched f)
{
    dgm_tensor_free(f.x);
    dgm_tensor_free(f.y);
    dgm_tensor_free(f.m);
}

static double px(const fetched *f, int64_t i, int k)
{
    return dgm_tensor_f32(f->x)[i * IMG_H * IMG_W + k];
}

START_TEST(plugin_defaults)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create("", &self, &cfg), 0);
    dgm_data_info info;
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.x_shape.ndim, 3);
    ck_assert_int_eq(info.x_shape.dim[0], 1);
    ck_assert_int_eq(info.x_shape.dim[1], IMG_H);
    ck_assert_int_eq(info.x_shape.dim[2], IMG_W);
    ck_assert_int_eq(info.x_dtype, DGM_F32);
    ck_assert(info.has_y);
    ck_assert_int_eq(info.y_shape.ndim, 0);
    ck_assert_int_eq(info.y_dtype, DGM_I64);
    ck_assert_int_eq(info.n_classes, 4);
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], N_TRAIN);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], N_TEST);
    ck_assert(info.x_min == 0.0f && info.x_max == 1.0f);
    ck_assert_int_eq(dgm_cfg_int(cfg, "batch_size"), 128);
    ck_assert(dgm_cfg_bool(cfg, "shuffle"));

    int64_t idx[3] = {0, 5, 39};
    fetched f = fetch(self, DGM_SPLIT_TRAIN, idx, 3, NULL);
    ck_assert(px(&f, 1, 0) == 1.0);
    ck_assert(px(&f, 1, 1) == 0.0);
    ck_assert_float_eq_tol(px(&f, 1, 2), 30.0 / 255.0, 1e-7);
    ck_assert_float_eq_tol(px(&f, 2, 5), 234.0 / 255.0, 1e-7);
    ck_assert_int_eq(((int64_t *)f.y->data)[1], 1);
    ck_assert_int_eq(((int64_t *)f.y->data)[2], 3);
    for (int i = 0; i < 3; i++)
        ck_assert(dgm_tensor_f32(f.m)[i] == 1.0f);
    fetched_free(f);

    /* Out of range and a wrong batch shape are refused. */
    int64_t bad[1] = {N_TEST};
    int64_t xs[4] = {1, 1, IMG_H, IMG_W};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, xs);
    dgm_batch b = {1, x, NULL, NULL};
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TEST, bad, &b, NULL), DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "example 8 outside"));
    b.n = 2;
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TEST, idx, &b, NULL), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "batch x"));
    dgm_tensor_free(x);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

START_TEST(plugin_scale_and_threshold)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create("scale: symmetric\n", &self, &cfg), 0);
    dgm_data_info info;
    ds->info(self, &info);
    ck_assert(info.x_min == -1.0f && info.x_max == 1.0f);
    int64_t idx[2] = {5, 30};
    fetched f = fetch(self, DGM_SPLIT_TRAIN, idx, 2, NULL);
    ck_assert(px(&f, 0, 0) == 1.0 && px(&f, 0, 1) == -1.0);
    ck_assert_float_eq_tol(px(&f, 0, 2), -1.0 + 2.0 * 30.0 / 255.0, 1e-6);
    fetched_free(f);
    ds->destroy(self);
    dgm_config_free(cfg);

    ck_assert_int_eq(create("binarize: threshold\n", &self, &cfg), 0);
    f = fetch(self, DGM_SPLIT_TRAIN, idx, 2, NULL);
    ck_assert(px(&f, 0, 2) == 0.0);  /* 30 / 255 */
    ck_assert(px(&f, 1, 2) == 1.0);  /* 180 / 255 */
    fetched_free(f);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

START_TEST(plugin_dynamic_binarisation)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create("binarize: dynamic\n", &self, &cfg), 0);
    enum { REP = 400 };
    int64_t idx[REP];
    for (int i = 0; i < REP; i++)
        idx[i] = 20; /* pixels 2.. are 120 / 255 */
    dgm_rng r1, r2, r3;
    dgm_rng_seed(&r1, 7);
    dgm_rng_seed(&r2, 7);
    dgm_rng_seed(&r3, 8);
    fetched a = fetch(self, DGM_SPLIT_TRAIN, idx, REP, &r1);
    fetched b = fetch(self, DGM_SPLIT_TRAIN, idx, REP, &r2);
    fetched c = fetch(self, DGM_SPLIT_TRAIN, idx, REP, &r3);
    size_t nb = dgm_tensor_nbytes(a.x);
    ck_assert_mem_eq(a.x->data, b.x->data, nb);
    ck_assert(memcmp(a.x->data, c.x->data, nb) != 0);
    double sum = 0;
    for (int i = 0; i < REP; i++) {
        ck_assert(px(&a, i, 0) == 1.0); /* p = 1 */
        ck_assert(px(&a, i, 1) == 0.0); /* p = 0 */
        for (int k = 2; k < IMG_H * IMG_W; k++) {
            double v = px(&a, i, k);
            ck_assert(v == 0.0 || v == 1.0);
            sum += v;
        }
    }
    /* 1600 Bernoulli(0.4706) draws: sd 0.0125. */
    double mean = sum / (REP * (IMG_H * IMG_W - 2));
    ck_assert_msg(fabs(mean - 120.0 / 255.0) < 0.05, "mean %g", mean);
    /* No rng for dynamic binarisation is a caller error. */
    dgm_batch bb = {1, a.x, NULL, NULL};
    a.x->shape[0] = 1;
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TRAIN, idx, &bb, NULL),
                     DGM_EINVAL);
    a.x->shape[0] = REP;
    fetched_free(a);
    fetched_free(b);
    fetched_free(c);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

/* Rows kept for the train split, via each example's pixel 2 (6 * row). */
static void kept_rows(void *self, int64_t n, int64_t *rows, int64_t *labels,
                      float *mask)
{
    int64_t idx[N_TRAIN];
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    fetched f = fetch(self, DGM_SPLIT_TRAIN, idx, n, NULL);
    for (int64_t i = 0; i < n; i++) {
        rows[i] = lrint(px(&f, i, 2) * 255.0 / 6.0);
        labels[i] = ((int64_t *)f.y->data)[i];
        mask[i] = dgm_tensor_f32(f.m)[i];
        ck_assert_int_eq(labels[i], rows[i] % 4);
    }
    fetched_free(f);
}

START_TEST(plugin_class_subset)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create("classes: [3, 1]\n", &self, &cfg), 0);
    dgm_data_info info;
    ds->info(self, &info);
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 20);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 4);
    ck_assert_int_eq(info.n_classes, 4);
    int64_t rows[N_TRAIN], labels[N_TRAIN];
    float mask[N_TRAIN];
    kept_rows(self, 20, rows, labels, mask);
    for (int i = 0; i < 20; i++) /* 1, 3, 5, 7, ...: file order */
        ck_assert_int_eq(rows[i], 2 * i + 1);
    int64_t idx[4] = {0, 1, 2, 3};
    fetched f = fetch(self, DGM_SPLIT_TEST, idx, 4, NULL);
    int64_t want[4] = {1, 3, 1, 3};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(((int64_t *)f.y->data)[i], want[i]);
    fetched_free(f);
    ds->destroy(self);
    dgm_config_free(cfg);

    ck_assert_int_eq(create("classes: [4]\n", &self, &cfg), DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "classes"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "class 4 is not in the data"));
    dgm_config_free(cfg);
}
END_TEST

START_TEST(plugin_train_fraction)
{
    int64_t rows[3][N_TRAIN], labels[N_TRAIN];
    float mask[N_TRAIN];
    const char *yaml[3] = {"train_fraction: 0.5\nseed: 3\n",
                           "train_fraction: 0.5\nseed: 3\n",
                           "train_fraction: 0.5\nseed: 4\n"};
    for (int r = 0; r < 3; r++) {
        void *self;
        dgm_config *cfg;
        ck_assert_int_eq(create(yaml[r], &self, &cfg), 0);
        dgm_data_info info;
        ds->info(self, &info);
        ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 20);
        ck_assert_int_eq(info.size[DGM_SPLIT_TEST], N_TEST);
        kept_rows(self, 20, rows[r], labels, mask);
        int per_class[4] = {0};
        for (int i = 0; i < 20; i++) {
            per_class[labels[i]]++;
            if (i)
                ck_assert_int_lt(rows[r][i - 1], rows[r][i]);
        }
        for (int c = 0; c < 4; c++)
            ck_assert_int_eq(per_class[c], 5); /* stratified */
        ds->destroy(self);
        dgm_config_free(cfg);
    }
    ck_assert_mem_eq(rows[0], rows[1], 20 * sizeof(int64_t));
    ck_assert(memcmp(rows[0], rows[2], 20 * sizeof(int64_t)) != 0);
}
END_TEST

START_TEST(plugin_label_fraction)
{
    int64_t rows[N_TRAIN], labels[N_TRAIN];
    float mask[2][N_TRAIN];
    for (int r = 0; r < 2; r++) {
        void *self;
        dgm_config *cfg;
        ck_assert_int_eq(create("label_fraction: 0.25\nseed: 11\n", &self,
                                &cfg),
                         0);
        kept_rows(self, N_TRAIN, rows, labels, mask[r]);
        int per_class[4] = {0};
        for (int i = 0; i < N_TRAIN; i++) {
            ck_assert(mask[r][i] == 0.0f || mask[r][i] == 1.0f);
            per_class[labels[i]] += mask[r][i] == 1.0f;
        }
        for (int c = 0; c < 4; c++) /* round(0.25 * 10) = 3 per class */
            ck_assert_int_eq(per_class[c], 3);
        int64_t idx[N_TEST] = {0, 1, 2, 3, 4, 5, 6, 7};
        fetched f = fetch(self, DGM_SPLIT_TEST, idx, N_TEST, NULL);
        for (int i = 0; i < N_TEST; i++)
            ck_assert(dgm_tensor_f32(f.m)[i] == 1.0f);
        fetched_free(f);
        ds->destroy(self);
        dgm_config_free(cfg);
    }
    ck_assert_mem_eq(mask[0], mask[1], sizeof mask[0]);

    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create("label_fraction: 0\n", &self, &cfg), 0);
    kept_rows(self, N_TRAIN, rows, labels, mask[0]);
    for (int i = 0; i < N_TRAIN; i++)
        ck_assert(mask[0][i] == 0.0f);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

START_TEST(plugin_bad_files)
{
    void *self;
    dgm_config *cfg;
    write_dataset(N_TRAIN - 1, 1);
    ck_assert_int_eq(create("", &self, &cfg), DGM_EFORMAT);
    ck_assert_ptr_null(self);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(),
                                 "tr-lab.gz holds 39 labels but tr-img.gz "
                                 "holds 40 images"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "test.yaml:"));
    dgm_config_free(cfg);

    write_dataset(N_TRAIN, 2);
    ck_assert_int_eq(create("", &self, &cfg), DGM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(),
                                 "tr-lab.gz: expected integer labels [N]"));
    dgm_config_free(cfg);

    /* Labels above the sanity cap (i32 labels). */
    write_dataset(N_TRAIN, 1);
    unsigned char be[4 * N_TEST] = {0};
    be[4 * 3] = 0x7f; /* example 3: 0x7f000000 */
    uint32_t dl[1] = {N_TEST};
    write_idx(tc_spath("te-lab.gz"), 0x0C, 1, dl, be, sizeof be);
    ck_assert_int_eq(create("", &self, &cfg), DGM_EFORMAT);
    ck_assert_msg(strstr(dgm_last_error(),
                                 "te-lab.gz: label 2130706432 of example 3 "
                                 "outside [0, 65536)"), "%s", dgm_last_error());
    dgm_config_free(cfg);

    ck_assert_int_eq(create("train_images: none.gz\n", &self, &cfg), DGM_EIO);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "train_images: "));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "/none.gz: cannot open"));
    dgm_config_free(cfg);
}
END_TEST

/* Its own ctest entry (idx_installed), skipped when the data set is absent:
 * main checks before running it. */
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

START_TEST(plugin_fashion_mnist)
{
    ck_assert_msg(access(FASHION_DIR, R_OK) == 0, "%s: %s", FASHION_DIR,
                  strerror(errno));
    dgm_config *cfg;
    ck_assert_int_eq(dgm_config_parse(&cfg, "{}", "fm.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, desc->params, "idx", NULL), 0);
    void *self;
    int rc = ds->create(&self, cfg);
    ck_assert_msg(rc == 0, "create: %s", dgm_last_error());
    dgm_data_info info;
    ds->info(self, &info);
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 60000);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 10000);
    ck_assert_int_eq(info.x_shape.dim[1], 28);
    ck_assert_int_eq(info.x_shape.dim[2], 28);
    ck_assert_int_eq(info.n_classes, 10);
    int64_t idx[2] = {0, 59999}, xs[4] = {2, 1, 28, 28};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, xs);
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, xs);
    dgm_batch b = {2, x, y, NULL};
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TRAIN, idx, &b, NULL), 0);
    /* The first and last training labels, read from the file with
     * Python's gzip: 9 (ankle boot) and 5 (sandal). */
    ck_assert_int_eq(((int64_t *)y->data)[0], 9);
    ck_assert_int_eq(((int64_t *)y->data)[1], 5);
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < 2 * 784; i++) {
        double v = dgm_tensor_get(x, i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    ck_assert(lo == 0.0 && hi == 1.0);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

static Suite *idx_suite(void)
{
    Suite *s = suite_create("idx");
    TCase *tc = tq_case(s, "load", load_every_type, load_refusals);
    tcase_add_checked_fixture(tc, tc_scratch_setup, tc_scratch_teardown);
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"plugin_defaults", plugin_defaults},
        {"plugin_scale", plugin_scale_and_threshold},
        {"plugin_binarize", plugin_dynamic_binarisation},
        {"plugin_classes", plugin_class_subset},
        {"plugin_train_fraction", plugin_train_fraction},
        {"plugin_label_fraction", plugin_label_fraction},
        {"plugin_errors", plugin_bad_files},
        {"fashion_mnist", plugin_fashion_mnist},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, plugin_setup, plugin_teardown);
        tcase_add_test(tc, cases[i].test);
        tcase_set_timeout(tc, 60);
        if (cases[i].test == plugin_fashion_mnist)
            tcase_set_tags(tc, "installed");
        suite_add_tcase(s, tc);
    }
    return s;
}

/* `test_idx`: every case but the installed data set's; `test_idx
 * installed`: that one, or exit 77 (skipped) when it is not installed. */
int main(int argc, char **argv)
{
    bool installed = argc > 1 && !strcmp(argv[1], "installed");
    if (installed && access(FASHION_DIR, R_OK) != 0)
        return tq_skip("%s: %s (Debian package dataset-fashion-mnist; "
                       "scripts/bootstrap.sh installs it)",
                       FASHION_DIR, strerror(errno));
    return tq_run(idx_suite(), "installed", installed);
}
