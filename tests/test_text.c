/* test_text.c - the `text` dataset plugin through its interface: folder
 * scanning (skipping .dat, binary files and symlinks), vocabulary with the
 * unknown id, split sizes, windows, determinism, every refusal, the
 * vocabulary saved and checked as data-set state, and the real fortunes
 * corpus when it is installed. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "scratch.h"

static void *plugin_so;
static const dgm_plugin_desc *desc;
static const dgm_dataset_iface *ds;

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* corpus/: a.txt (60 bytes "abcdefghij" x 6), b.txt (20 bytes with 'Z',
 * never seen in training when val_fraction is 0.25), c.dat and d.bin
 * (binary, skipped), a.u8 -> a.txt (a symlink, skipped). */
static void setup(void)
{
    tc_scratch_setup();
    ck_assert_int_eq(mkdir(tc_spath("corpus"), 0755), 0);
    ck_assert_int_eq(mkdir(tc_spath("empty"), 0755), 0);
    char a[61];
    for (int i = 0; i < 60; i++)
        a[i] = (char)('a' + i % 10);
    write_file(tc_spath("corpus/a.txt"), a, 60);
    write_file(tc_spath("corpus/b.txt"), "abcdeZZZZZabcdeZZZZZ", 20);
    unsigned char bin[64];
    for (int i = 0; i < 64; i++)
        bin[i] = (unsigned char)(i * 37);
    write_file(tc_spath("corpus/c.dat"), "\0\0\0\2abc", 7);
    write_file(tc_spath("corpus/d.bin"), bin, sizeof bin);
    ck_assert_int_eq(symlink("a.txt", tc_spath("corpus/a.u8")), 0);
    write_file(tc_spath("empty/x.dat"), "\0\1", 2);
    /* no NUL, but mostly control bytes */
    unsigned char ctl[100];
    for (int i = 0; i < 100; i++)
        ctl[i] = i % 2 ? (unsigned char)('a' + i % 26) : 0x01;
    write_file(tc_spath("ctl.txt"), ctl, sizeof ctl);
    write_file(tc_spath("nothing.txt"), "", 0);
    /* UTF-8 is text: 'é' is 0xc3 0xa9 */
    write_file(tc_spath("utf8.txt"), "caf\xc3\xa9 caf\xc3\xa9 caf\xc3\xa9 ok\n",
               21);

    plugin_so =
        dlopen(DGM_PLUGIN_DIR "/datasets_text.so", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(plugin_so, "dlopen: %s", dlerror());
    dgm_plugin_query_fn q =
        (dgm_plugin_query_fn)dlsym(plugin_so, DGM_PLUGIN_QUERY_SYMBOL);
    ck_assert_ptr_nonnull(q);
    desc = q(0);
    ck_assert_ptr_nonnull(desc);
    ck_assert_ptr_null(q(1));
    ck_assert_int_eq(desc->kind, DGM_KIND_DATASET);
    ck_assert_str_eq(desc->name, "text");
    ds = desc->iface.dataset;
}

static void teardown(void)
{
    dlclose(plugin_so);
    tc_scratch_teardown();
}

/* Create from YAML text (a flow map); *cfg_out is freed by the caller. */
static int create(const char *yaml, void **self, dgm_config **cfg_out)
{
    dgm_config *cfg;
    ck_assert_int_eq(dgm_config_parse(&cfg, yaml, "test.yaml"), 0);
    int rc = dgm_config_validate(cfg, desc->params, "text", NULL);
    ck_assert_msg(rc == 0, "validate: %s", dgm_last_error());
    *self = NULL;
    rc = ds->create(self, cfg);
    *cfg_out = cfg;
    return rc;
}

static const char *yaml(const char *path, const char *extra)
{
    static char buf[PATH_MAX * 2];
    snprintf(buf, sizeof buf, "{path: '%s'%s%s}", path, *extra ? ", " : "",
             extra);
    return buf;
}

typedef struct fetched {
    dgm_tensor *x, *y;
} fetched;

static fetched fetch(void *self, dgm_split split, const int64_t *idx, int64_t n,
                     int64_t T, dgm_rng *rng)
{
    int64_t sh[2] = {n, T};
    fetched f = {dgm_tensor_new(DGM_I64, 2, sh),
                 dgm_tensor_new(DGM_I64, 2, sh)};
    dgm_batch b = {.n = n, .x = f.x, .y = f.y};
    int rc = ds->get(self, split, idx, &b, rng);
    ck_assert_msg(rc == 0, "get: %s", dgm_last_error());
    return f;
}

static void fetched_free(fetched f)
{
    dgm_tensor_free(f.x);
    dgm_tensor_free(f.y);
}

static int64_t at(const dgm_tensor *t, int64_t i, int64_t k)
{
    return ((const int64_t *)t->data)[i * t->strides[0] + k * t->strides[1]];
}

/* ---- the small corpus --------------------------------------------------- */

START_TEST(test_info)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), "seq_len: 4, "
                                                     "val_fraction: 0.25"),
                            &self, &cfg),
                     0);
    dgm_data_info info;
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.x_shape.ndim, 1);
    ck_assert_int_eq(info.x_shape.dim[0], 4);
    ck_assert_int_eq(info.y_shape.ndim, 1);
    ck_assert_int_eq(info.y_shape.dim[0], 4);
    ck_assert_int_eq(info.x_dtype, DGM_I64);
    ck_assert_int_eq(info.y_dtype, DGM_I64);
    ck_assert(info.has_y);
    ck_assert_int_eq(info.n_classes, 11);             /* a..j and unknown */
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 15); /* 60 / 4 */
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 4);   /* (20 - 1) / 4 */
    ds->destroy(self);
    dgm_config_free(cfg);

    /* train_windows given; no validation split */
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), "seq_len: 8, "
                                                     "val_fraction: 0, "
                                                     "train_windows: 1000"),
                            &self, &cfg),
                     0);
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.n_classes, 12); /* a..j, Z and unknown */
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 1000);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 0);
    ds->destroy(self);
    dgm_config_free(cfg);

    /* a single file; UTF-8 bytes count as text */
    ck_assert_int_eq(create(yaml(tc_spath("utf8.txt"), "seq_len: 2, "
                                                       "val_fraction: 0.2"),
                            &self, &cfg),
                     0);
    ck_assert_int_eq(ds->info(self, &info), 0);
    /* training = first 17 bytes "café café café": ' ' a c f 0xa9 0xc3 */
    ck_assert_int_eq(info.n_classes, 7);
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 8);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 1); /* (4 - 1) / 2 */
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

/* `path` as a list: entries concatenated in the order given, each a file
 * or a folder; a listed binary file, an empty list or a non-string entry
 * is refused naming the entry. */
START_TEST(test_path_list)
{
    void *self;
    dgm_config *cfg;
    char y[PATH_MAX * 3];
    snprintf(y, sizeof y,
             "{path: ['%s', '%s'], seq_len: 4, val_fraction: 0.25}",
             tc_spath("corpus/a.txt"), tc_spath("corpus/b.txt"));
    ck_assert_int_eq(create(y, &self, &cfg), 0);
    dgm_data_info info;
    ck_assert_int_eq(ds->info(self, &info), 0);
    /* as the folder: training = a.txt, validation = b.txt */
    ck_assert_int_eq(info.n_classes, 11);
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 15);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 4);
    ds->destroy(self);
    dgm_config_free(cfg);

    /* b.txt first: its 'Z' is in the training split now */
    snprintf(y, sizeof y,
             "{path: ['%s', '%s'], seq_len: 4, val_fraction: 0.25}",
             tc_spath("corpus/b.txt"), tc_spath("corpus/a.txt"));
    ck_assert_int_eq(create(y, &self, &cfg), 0);
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.n_classes, 12);
    int64_t idx[1] = {0};
    fetched f = fetch(self, DGM_SPLIT_TEST, idx, 1, 4, NULL);
    /* validation starts at byte 60: a.txt's byte 40, 'a' (id 1 after Z) */
    ck_assert_int_eq(at(f.x, 0, 0), 1);
    fetched_free(f);
    ds->destroy(self);
    dgm_config_free(cfg);

    /* a folder and a file together */
    snprintf(y, sizeof y,
             "{path: ['%s', '%s'], seq_len: 4, val_fraction: 0.25}",
             tc_spath("corpus"), tc_spath("utf8.txt"));
    ck_assert_int_eq(create(y, &self, &cfg), 0);
    /* 80 + 21 bytes, a quarter held out: 76 training bytes */
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 76 / 4);
    ds->destroy(self);
    dgm_config_free(cfg);

    /* a binary file named in the list is refused, named */
    snprintf(y, sizeof y, "{path: ['%s', '%s']}", tc_spath("corpus/a.txt"),
             tc_spath("corpus/d.bin"));
    ck_assert_int_eq(create(y, &self, &cfg), DGM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), tc_spath("corpus/d.bin")));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "looks binary"));
    dgm_config_free(cfg);
    /* a missing one too */
    snprintf(y, sizeof y, "{path: ['%s', '%s']}", tc_spath("corpus/a.txt"),
             tc_spath("missing.txt"));
    ck_assert_int_eq(create(y, &self, &cfg), DGM_EIO);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), tc_spath("missing.txt")));
    dgm_config_free(cfg);
    /* an empty list, a map entry: refused by the schema (DGM_PARAM_PATHS)
     * before the plugin sees them */
    ck_assert_int_eq(dgm_config_parse(&cfg, "{path: []}", "test.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, desc->params, "text", NULL),
                     DGM_ETYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "non-empty list"));
    dgm_config_free(cfg);
    snprintf(y, sizeof y, "{path: ['%s', {a: 1}]}", tc_spath("corpus/a.txt"));
    ck_assert_int_eq(dgm_config_parse(&cfg, y, "test.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, desc->params, "text", NULL),
                     DGM_ETYPE);
    ck_assert_msg(strstr(dgm_last_error(), "path[1]"), "%s", dgm_last_error());
    dgm_config_free(cfg);
    ck_assert_ptr_null(self);
}
END_TEST

START_TEST(test_train_windows)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), "seq_len: 4, "
                                                     "val_fraction: 0.25"),
                            &self, &cfg),
                     0);
    enum { N = 15 };
    int64_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    dgm_rng r1, r2, ref;
    dgm_rng_seed(&r1, 7);
    dgm_rng_seed(&r2, 7);
    dgm_rng_seed(&ref, 7);
    fetched a = fetch(self, DGM_SPLIT_TRAIN, idx, N, 4, &r1);
    fetched b = fetch(self, DGM_SPLIT_TRAIN, idx, N, 4, &r2);
    for (int i = 0; i < N; i++) {
        /* one uniform draw over the 56 valid starts per example */
        int64_t s = (int64_t)dgm_rng_below(&ref, 60 - 4);
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(at(a.x, i, k), (s + k) % 10);
            ck_assert_int_eq(at(a.y, i, k), (s + k + 1) % 10);
            if (k < 3)
                ck_assert_int_eq(at(a.y, i, k), at(a.x, i, k + 1));
            ck_assert_int_eq(at(a.x, i, k), at(b.x, i, k));
            ck_assert_int_eq(at(a.y, i, k), at(b.y, i, k));
        }
    }
    /* a different seed gives different windows */
    dgm_rng r3;
    dgm_rng_seed(&r3, 8);
    fetched c = fetch(self, DGM_SPLIT_TRAIN, idx, N, 4, &r3);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += at(c.x, i, 0) == at(a.x, i, 0);
    ck_assert_int_lt(same, N);
    fetched_free(a);
    fetched_free(b);
    fetched_free(c);

    /* every valid start is reachable, none beyond: 2000 draws */
    int64_t big[2000];
    for (int i = 0; i < 2000; i++)
        big[i] = i % 15;
    dgm_rng_seed(&r1, 1);
    fetched d = fetch(self, DGM_SPLIT_TRAIN, big, 2000, 4, &r1);
    int hist[10] = {0};
    for (int i = 0; i < 2000; i++)
        hist[at(d.x, i, 0)]++;
    for (int v = 0; v < 10; v++) /* starts 0..55: each residue 5 or 6 of 56 */
        ck_assert_int_gt(hist[v], 100);
    fetched_free(d);

    /* without an rng, the plugin's own stream seeded by `seed` */
    void *self2;
    dgm_config *cfg2;
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), "seq_len: 4, "
                                                     "val_fraction: 0.25, "
                                                     "seed: 3"),
                            &self2, &cfg2),
                     0);
    fetched e = fetch(self2, DGM_SPLIT_TRAIN, idx, N, 4, NULL);
    dgm_rng_seed(&ref, 3);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(at(e.x, i, 0), (int64_t)dgm_rng_below(&ref, 56) % 10);
    fetched_free(e);
    ds->destroy(self2);
    dgm_config_free(cfg2);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

START_TEST(test_val_windows)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), "seq_len: 4, "
                                                     "val_fraction: 0.25"),
                            &self, &cfg),
                     0);
    /* validation = "abcdeZZZZZabcdeZZZZZ"; Z is unknown (id 10) */
    static const int64_t ex[4][5] = {{0, 1, 2, 3, 4},
                                     {4, 10, 10, 10, 10},
                                     {10, 10, 0, 1, 2},
                                     {2, 3, 4, 10, 10}};
    int64_t idx[4] = {3, 1, 0, 2};
    fetched f = fetch(self, DGM_SPLIT_TEST, idx, 4, 4, NULL);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(at(f.x, i, k), ex[idx[i]][k]);
            ck_assert_int_eq(at(f.y, i, k), ex[idx[i]][k + 1]);
        }
    fetched_free(f);

    /* bad indices, shapes and dtypes */
    int64_t sh[2] = {1, 4}, bad_sh[2] = {1, 5};
    dgm_tensor *x = dgm_tensor_new(DGM_I64, 2, sh);
    dgm_tensor *xb = dgm_tensor_new(DGM_I64, 2, bad_sh);
    dgm_tensor *xf = dgm_tensor_new(DGM_F32, 2, sh);
    int64_t four = 4, minus = -1, last = 14, fifteen = 15;
    dgm_batch b = {.n = 1, .x = x};
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TEST, &four, &b, NULL),
                     DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "example 4 outside the "
                                                   "test split [0, 4)"));
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TEST, &minus, &b, NULL),
                     DGM_ERANGE);
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TRAIN, &last, &b, NULL), 0);
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TRAIN, &fifteen, &b, NULL),
                     DGM_ERANGE);
    b.x = xb;
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TEST, &minus, &b, NULL),
                     DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "batch x"));
    b.x = xf;
    ck_assert_int_eq(ds->get(self, DGM_SPLIT_TEST, &minus, &b, NULL),
                     DGM_ESHAPE);
    dgm_tensor_free(x);
    dgm_tensor_free(xb);
    dgm_tensor_free(xf);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

/* ---- refusals -------------------------------------------------------------
 */

static void expect_fail(const char *path, const char *extra, int code,
                        const char *needle)
{
    void *self;
    dgm_config *cfg;
    int rc = create(yaml(path, extra), &self, &cfg);
    ck_assert_msg(rc == code, "%s: got %d (%s), expected %d", path, rc,
                  dgm_last_error(), code);
    ck_assert_ptr_null(self);
    ck_assert_msg(strstr(dgm_last_error(), path), "message '%s' lacks %s",
                  dgm_last_error(), path);
    ck_assert_msg(strstr(dgm_last_error(), needle), "message '%s' lacks %s",
                  dgm_last_error(), needle);
    /* the message points at the config key */
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "test.yaml:1:"));
    dgm_config_free(cfg);
}

START_TEST(test_errors)
{
    expect_fail(tc_spath("missing.txt"), "", DGM_EIO,
                "cannot open: No such file or directory");
    expect_fail(tc_spath("missing/"), "", DGM_EIO, "cannot open");
    expect_fail(tc_spath("empty"), "", DGM_EFORMAT, "empty corpus");
    expect_fail(tc_spath("nothing.txt"), "", DGM_EFORMAT, "empty corpus");
    expect_fail(tc_spath("corpus/d.bin"), "", DGM_EFORMAT,
                "looks binary, not text: it holds NUL bytes");
    expect_fail(tc_spath("corpus/c.dat"), "", DGM_EFORMAT, "looks binary");
    expect_fail(tc_spath("ctl.txt"), "", DGM_EFORMAT,
                "looks binary, not text: 50% of its bytes are not text");
    /* 80 bytes, val 0.25: training 60, validation 20 */
    expect_fail(tc_spath("corpus"), "seq_len: 19, val_fraction: 0.25",
                DGM_EFORMAT,
                "the validation split holds 20 bytes, fewer than seq_len + "
                "2 = 21");
    expect_fail(tc_spath("corpus"), "seq_len: 59, val_fraction: 0.25",
                DGM_EFORMAT,
                "the training split holds 60 bytes, fewer than seq_len + 2 "
                "= 61");
    expect_fail(tc_spath("corpus"), "seq_len: 79, val_fraction: 0", DGM_EFORMAT,
                "the training split holds 80 bytes");

    /* the limits themselves load */
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), "seq_len: 18, "
                                                     "val_fraction: 0.25"),
                            &self, &cfg),
                     0);
    dgm_data_info info;
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.size[DGM_SPLIT_TEST], 1);  /* (20 - 1) / 18 */
    ck_assert_int_eq(info.size[DGM_SPLIT_TRAIN], 3); /* 60 / 18 */
    ds->destroy(self);
    dgm_config_free(cfg);

    /* the schema refuses bad parameters before create */
    static const char *bad[] = {"{seq_len: 0}", "{val_fraction: 0.6}",
                                "{val_fraction: -0.1}", "{train_windows: -1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(dgm_config_parse(&cfg, bad[i], "bad.yaml"), 0);
        ck_assert_int_eq(dgm_config_validate(cfg, desc->params, "text", NULL),
                         DGM_ERANGE);
        dgm_config_free(cfg);
    }
}
END_TEST

/* ---- the vocabulary as data-set state ----------------------------------- */

/* load_state of `state` into the data set of corpus path; returns the code. */
static int load_into(const char *path, const char *extra,
                     const dgm_params *state)
{
    void *self;
    dgm_config *cfg;
    ck_assert_int_eq(create(yaml(path, extra), &self, &cfg), 0);
    int rc = ds->load_state(self, state);
    ds->destroy(self);
    dgm_config_free(cfg);
    return rc;
}

START_TEST(test_state)
{
    ck_assert_ptr_nonnull(ds->save_state);
    ck_assert_ptr_nonnull(ds->load_state);
    void *self;
    dgm_config *cfg;
    const char *extra = "seq_len: 4, val_fraction: 0.25";
    ck_assert_int_eq(create(yaml(tc_spath("corpus"), extra), &self, &cfg), 0);
    dgm_params *st = dgm_params_new();
    ck_assert_int_eq(ds->save_state(self, st), 0);
    ds->destroy(self);
    dgm_config_free(cfg);
    /* "vocab": U8 [V - 1], the training bytes in id order (a..j) */
    ck_assert_int_eq(dgm_params_count(st), 1);
    dgm_param *v = dgm_params_find(st, "vocab");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->role, DGM_ROLE_BUFFER);
    ck_assert_int_eq(v->value->dtype, DGM_U8);
    ck_assert_int_eq(v->value->ndim, 1);
    ck_assert_int_eq(v->value->shape[0], 10);
    ck_assert_int_eq(memcmp(v->value->data, "abcdefghij", 10), 0);

    /* the same corpus and split: accepted */
    ck_assert_int_eq(load_into(tc_spath("corpus"), extra, st), 0);
    /* val_fraction 0 puts 'Z' (before 'a') into training: id 0 differs,
     * named with both bytes and both sizes */
    int rc = load_into(tc_spath("corpus"), "seq_len: 4, val_fraction: 0", st);
    ck_assert_int_eq(rc, DGM_ESTATE);
    const char *m = dgm_last_error();
    ck_assert_msg(strstr(m, tc_spath("corpus")) &&
                      strstr(m, "id 0 is 'a' in the checkpoint, 'Z' in the "
                                "corpus (10 and 11 symbols)"),
                  "message: %s", m);
    dgm_params_free(st);
    /* a checkpoint vocabulary that is a prefix of the corpus's (a..i) */
    st = dgm_params_new();
    int64_t nine = 9;
    char a_to_i[] = "abcdefghi";
    dgm_tensor *t = dgm_tensor_wrap(a_to_i, DGM_U8, 1, &nine, NULL);
    ck_assert_int_eq(dgm_params_add_copy(st, "vocab", t, NULL), 0);
    dgm_tensor_free(t);
    ck_assert_int_eq(load_into(tc_spath("corpus"), extra, st), DGM_ESTATE);
    m = dgm_last_error();
    ck_assert_msg(strstr(m, "10 symbols in the corpus, 9 in the checkpoint "
                            "(id 9 is 'j' only in the corpus)"),
                  "message: %s", m);
    dgm_params_free(st);

    /* no vocabulary in the checkpoint, or not bytes: refused */
    st = dgm_params_new();
    ck_assert_int_eq(load_into(tc_spath("corpus"), extra, st), DGM_ESTATE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "\"vocab\""));
    dgm_param *w;
    ck_assert_int_eq(
        dgm_params_add(st, "vocab", DGM_ROLE_BUFFER, 1, (int64_t[]){10}, &w),
        0);
    ck_assert_int_eq(load_into(tc_spath("corpus"), extra, st), DGM_ESTATE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "U8"));
    dgm_params_free(st);
}
END_TEST

/* ---- the installed corpus -------------------------------------------------
 */

/* Its own ctest entry (text_installed), skipped when the corpus is absent:
 * main checks before running it. */
#define FORTUNES_DIR "/usr/share/games/fortunes"

START_TEST(test_fortunes)
{
    ck_assert_msg(access(FORTUNES_DIR, R_OK) == 0, "%s: %s", FORTUNES_DIR,
                  strerror(errno));
    dgm_config *cfg;
    ck_assert_int_eq(dgm_config_parse(&cfg, "{}", "f.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, desc->params, "text", NULL), 0);
    ck_assert_str_eq(dgm_cfg_str(cfg, "path"), "/usr/share/games/fortunes");
    void *self = NULL;
    int rc = ds->create(&self, cfg);
    ck_assert_msg(rc == 0, "create: %s", dgm_last_error());
    dgm_data_info info;
    ck_assert_int_eq(ds->info(self, &info), 0);
    ck_assert_int_eq(info.x_shape.dim[0], 64);
    ck_assert_int_gt(info.size[DGM_SPLIT_TRAIN], 1000);
    ck_assert_int_gt(info.size[DGM_SPLIT_TEST], 100);
    /* printable ASCII and newline at least; at most 256 bytes + unknown */
    ck_assert_int_gt(info.n_classes, 90);
    ck_assert_int_le(info.n_classes, 257);
    int64_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    fetched f = fetch(self, DGM_SPLIT_TRAIN, idx, 8, 64, &r);
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 64; k++) {
            ck_assert_int_ge(at(f.x, i, k), 0);
            ck_assert_int_lt(at(f.x, i, k), info.n_classes - 1);
            if (k < 63)
                ck_assert_int_eq(at(f.y, i, k), at(f.x, i, k + 1));
        }
    fetched_free(f);
    ds->destroy(self);
    dgm_config_free(cfg);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tq_case(s, "info", test_info, test_path_list);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "train_windows", test_train_windows);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "val_windows", test_val_windows);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "errors", test_errors);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "state", test_state);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "fortunes", test_fortunes);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_set_tags(tc, "installed");
    return s;
}

/* `test_text`: every case but the installed corpus's; `test_text
 * installed`: that one, or exit 77 (skipped) when it is not installed. */
int main(int argc, char **argv)
{
    bool installed = argc > 1 && !strcmp(argv[1], "installed");
    if (installed && access(FORTUNES_DIR, R_OK) != 0)
        return tq_skip("%s: %s (Debian package fortunes; "
                       "scripts/bootstrap.sh installs it)",
                       FORTUNES_DIR, strerror(errno));
    return tq_run(text_suite(), "installed", installed);
}
