/* test_safetensors.c - safetensors checkpoints: round trips for every
 * dtype, an independent Python reader and writer (tests/support/st_read.py),
 * every malformed-file refusal with its message, and atomic replacement. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/io.h"
#include "dgm/tensor.h"
#include "files.h"
#include "scratch.h"

#define ST_READ_PY DGM_SOURCE_DIR "/tests/support/st_read.py"

/* ---- scratch files ---------------------------------------------------- */

/* Number of "*.tmp.*" entries left in the scratch folder. */
static int tmp_files_left(void)
{
    DIR *d = opendir(tc_scratch_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A file: u64 LE header length (len_override if nonzero), the header text,
 * then data_len bytes 0, 1, 2, ... */
static void write_st_raw(const char *path, const char *header,
                         uint64_t len_override, size_t data_len)
{
    size_t n = strlen(header);
    uint64_t len = len_override ? len_override : n;
    unsigned char *buf = malloc(8 + n + data_len + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + n + i] = (unsigned char)i;
    write_bytes(path, buf, 8 + n + data_len);
    free(buf);
}

/* Run a shell command and return its stdout (malloc'ed). */
static char *run_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    for (size_t r; (r = fread(out + n, 1, cap - 1 - n, p)) > 0;)
        n += r;
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "'%s' failed:\n%s",
                  cmd, out);
    return out;
}

/* ---- tensors to write ------------------------------------------------- */

static dgm_tensor *make(dgm_dtype dt, int ndim, const int64_t *shape,
                        const double *vals)
{
    dgm_tensor *t = dgm_tensor_new(dt, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        dgm_tensor_set(t, i, vals[i]);
    return t;
}

/* Same dtype, shape and bytes (v may be any view; a is contiguous). */
static void assert_same(const dgm_tensor *a, const dgm_tensor *v,
                        const char *name)
{
    ck_assert_msg(v->dtype == a->dtype, "%s: dtype %d vs %d", name, v->dtype,
                  a->dtype);
    ck_assert_msg(dgm_tensor_same_shape(a, v), "%s: shapes differ", name);
    ck_assert_msg(dgm_tensor_is_contiguous(v), "%s: view not dense", name);
    size_t nb = dgm_tensor_nbytes(a);
    ck_assert_msg(nb == 0 || memcmp(a->data, v->data, nb) == 0,
                  "%s: bytes differ", name);
    ck_assert_msg((uintptr_t)v->data % dgm_dtype_size(v->dtype) == 0,
                  "%s: view misaligned", name);
}

/* ---- round trips ------------------------------------------------------ */

START_TEST(roundtrip_every_dtype)
{
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s0[2] = {0, 3};
    double fv[6] = {-1.5, 0.0, 0.1, 1e30, -1e-30, 3.0};
    double ints[4] = {-7, 0, 123456, -2147483648.0};
    dgm_tensor *t[9];
    t[0] = make(DGM_F32, 2, s23, fv);
    t[1] = make(DGM_F64, 2, s23, fv);
    t[2] = make(DGM_I32, 1, s4, ints);
    t[3] = make(DGM_I64, 1, s4, ints);
    double u8[4] = {0, 1, 128, 255};
    t[4] = make(DGM_U8, 1, s4, u8);
    t[5] = dgm_tensor_new(DGM_U64, 1, s4);
    uint64_t *u = t[5]->data;
    u[0] = 0, u[1] = 1, u[2] = UINT64_MAX, u[3] = 0x0123456789abcdefull;
    ((int64_t *)t[3]->data)[0] = INT64_MIN; /* beyond a double's reach */
    t[6] = dgm_tensor_new(DGM_F64, 0, NULL);
    *(double *)t[6]->data = 2.718281828459045;
    t[7] = dgm_tensor_new(DGM_F32, 2, s0);
    int perm[2] = {1, 0};
    t[8] = dgm_tensor_permute(t[0], perm); /* [3, 2], not contiguous */
    ck_assert(!dgm_tensor_is_contiguous(t[8]));
    const char *names[9] = {"f32",    "f64",   "i32",   "i64",        "u8",
                            "u64",    "scalar", "empty", "transposed"};

    dgm_st_writer *w = dgm_st_writer_new();
    ck_assert_ptr_nonnull(w);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(dgm_st_writer_add(w, names[i], t[i]), 0);
    ck_assert_int_eq(dgm_st_writer_meta(w, "dgm.step", "7"), 0);
    ck_assert_int_eq(dgm_st_writer_meta(w, "note", "first"), 0);
    ck_assert_int_eq(dgm_st_writer_meta(w, "note", "héllo \"q\""), 0);
    const char *path = tc_spath("all.safetensors");
    ck_assert_int_eq(dgm_st_writer_write(w, path), 0);
    dgm_st_writer_free(w);
    ck_assert_int_eq(tmp_files_left(), 0);

    dgm_st_file *f;
    ck_assert_int_eq(dgm_st_open(&f, path), 0);
    ck_assert_int_eq(dgm_st_count(f), 9);
    /* Names come back sorted. */
    for (int i = 1; i < 9; i++)
        ck_assert_int_lt(strcmp(dgm_st_name_at(f, i - 1), dgm_st_name_at(f, i)),
                         0);
    for (int i = 0; i < 9; i++) {
        dgm_tensor *v;
        ck_assert_int_eq(dgm_st_get(f, names[i], &v), 0);
        dgm_tensor *dense = dgm_tensor_clone(t[i]);
        assert_same(dense, v, names[i]);
        dgm_tensor_free(dense);
    }
    dgm_tensor *v;
    ck_assert_int_eq(dgm_st_get(f, "transposed", &v), 0);
    ck_assert_int_eq(v->shape[0], 3);
    ck_assert(dgm_tensor_get(v, 4) == (float)0.1); /* t[0][0][2] */
    ck_assert_int_eq(dgm_st_get(f, "scalar", &v), 0);
    ck_assert_int_eq(v->ndim, 0);
    ck_assert_str_eq(dgm_st_meta(f, "dgm.step"), "7");
    ck_assert_str_eq(dgm_st_meta(f, "note"), "héllo \"q\"");
    ck_assert_ptr_null(dgm_st_meta(f, "absent"));
    ck_assert_int_eq(dgm_st_meta_count(f), 2);
    ck_assert_str_eq(dgm_st_meta_key_at(f, 0), "dgm.step");

    dgm_st_entry e;
    int i = dgm_st_find(f, "f32");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(dgm_st_entry_at(f, i, &e), 0);
    ck_assert_str_eq(e.dtype, "F32");
    ck_assert_int_eq(e.ndim, 2);
    ck_assert_int_eq(e.shape[1], 3);
    ck_assert_uint_eq(e.end - e.begin, 24);
    ck_assert_int_eq(dgm_st_entry_at(f, 9, &e), DGM_EINVAL);

    ck_assert_int_eq(dgm_st_get(f, "nope", &v), DGM_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'nope'"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), path));
    dgm_st_close(f);
    for (int k = 0; k < 9; k++)
        dgm_tensor_free(t[k]);
}
END_TEST

START_TEST(writer_refusals)
{
    int64_t s[1] = {2};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 1, s);
    dgm_st_writer *w = dgm_st_writer_new();
    ck_assert_int_eq(dgm_st_writer_add(w, "a", t), 0);
    ck_assert_int_eq(dgm_st_writer_add(w, "a", t), DGM_EDUP);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'a'"));
    ck_assert_int_eq(dgm_st_writer_add(w, "__metadata__", t), DGM_EINVAL);
    ck_assert_int_eq(dgm_st_writer_add(w, "", t), DGM_EINVAL);
    ck_assert_int_eq(dgm_st_writer_add(w, "b", NULL), DGM_EINVAL);
    /* A missing folder: nothing is created, the error names the tmp. */
    const char *bad = tc_spath("no/such/dir/x.safetensors");
    ck_assert_int_eq(dgm_st_writer_write(w, bad), DGM_EIO);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "x.safetensors.tmp."));
    dgm_st_writer_free(w);
    dgm_tensor_free(t);
}
END_TEST

/* ---- the independent Python reader and writer ------------------------- */

START_TEST(python_reads_dgm)
{
    int64_t s23[2] = {2, 3}, s3[1] = {3};
    double f[6] = {0.5, -0.25, 1.0, 2.0, -3.5, 1e-3};
    double b[3] = {9, 0, 200};
    dgm_tensor *a = make(DGM_F32, 2, s23, f);
    dgm_tensor *c = make(DGM_U8, 1, s3, b);
    dgm_tensor *d = make(DGM_F64, 1, s3, f);
    dgm_tensor *r = dgm_tensor_new(DGM_U64, 1, (int64_t[]){4});
    uint64_t *rs = r->data;
    rs[0] = 1, rs[1] = UINT64_MAX, rs[2] = 3, rs[3] = 1ull << 63;
    dgm_st_writer *w = dgm_st_writer_new();
    ck_assert_int_eq(dgm_st_writer_add(w, "zz.bytes", c), 0);
    ck_assert_int_eq(dgm_st_writer_add(w, "enc.w", a), 0);
    ck_assert_int_eq(dgm_st_writer_add(w, "dec.b", d), 0);
    ck_assert_int_eq(dgm_st_writer_add(w, "rng.state", r), 0);
    ck_assert_int_eq(dgm_st_writer_meta(w, "dgm.step", "42"), 0);
    const char *path = tc_spath("py.safetensors");
    ck_assert_int_eq(dgm_st_writer_write(w, path), 0);
    dgm_st_writer_free(w);

    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", ST_READ_PY, path);
    char *out = run_capture(cmd);
    /* Alignment order: 8-byte dtypes by name, then F32, then U8; the
     * header is padded, nothing misaligned. The float32 values are the
     * widened floats (0.001f is not 1e-3). */
    char want[2048];
    snprintf(want, sizeof want,
             "meta dgm.step 42\n"
             "order dec.b rng.state enc.w zz.bytes\n"
             "dec.b F64 [3] 0.5 -0.25 1\n"
             "enc.w F32 [2, 3] 0.5 -0.25 1 2 -3.5 %.17g\n"
             "rng.state U64 [4] 1 18446744073709551615 3 "
             "9223372036854775808\n"
             "zz.bytes U8 [3] 9 0 200\n",
             (double)(float)1e-3);
    ck_assert_str_eq(out, want);
    free(out);
    dgm_tensor_free(a);
    dgm_tensor_free(c);
    dgm_tensor_free(d);
    dgm_tensor_free(r);
}
END_TEST

START_TEST(dgm_reads_python)
{
    const char *path = tc_spath("numpy.safetensors");
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --write %s", ST_READ_PY,
             path);
    free(run_capture(cmd));
    dgm_st_file *f;
    ck_assert_int_eq(dgm_st_open(&f, path), 0);
    ck_assert_int_eq(dgm_st_count(f), 6);
    ck_assert_str_eq(dgm_st_name_at(f, 0), "bytes");
    ck_assert_str_eq(dgm_st_meta(f, "origin"), "numpy");
    dgm_tensor *v;
    ck_assert_int_eq(dgm_st_get(f, "w", &v), 0); /* at offset 3: copied */
    ck_assert_int_eq(v->dtype, DGM_F32);
    ck_assert_int_eq(v->shape[0], 2);
    ck_assert_int_eq(v->shape[1], 3);
    ck_assert_uint_eq((uintptr_t)v->data % 4, 0);
    for (int i = 0; i < 6; i++)
        ck_assert(dgm_tensor_get(v, i) == i * 0.25 - 1);
    ck_assert_int_eq(dgm_st_get(f, "bytes", &v), 0);
    ck_assert(dgm_tensor_get(v, 2) == 255);
    ck_assert_int_eq(dgm_st_get(f, "ids", &v), 0);
    ck_assert_int_eq(((int64_t *)v->data)[2], 1ll << 40);
    ck_assert_int_eq(((int64_t *)v->data)[0], -5);
    ck_assert_int_eq(dgm_st_get(f, "scalar", &v), 0);
    ck_assert_int_eq(v->ndim, 0);
    ck_assert(*(double *)v->data == 3.125);
    ck_assert_int_eq(dgm_st_get(f, "empty", &v), 0);
    ck_assert_int_eq(dgm_tensor_numel(v), 0);
    ck_assert_int_eq(v->shape[1], 4);
    /* Listed, but dgm tensors have no F16. */
    dgm_st_entry e;
    ck_assert_int_eq(dgm_st_entry_at(f, dgm_st_find(f, "half"), &e), 0);
    ck_assert_str_eq(e.dtype, "F16");
    ck_assert_int_eq(dgm_st_get(f, "half", &v), DGM_EDTYPE);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'half'"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "F16"));
    dgm_st_close(f);
}
END_TEST

/* ---- malformed files -------------------------------------------------- */

static void expect_refused(const char *path, const char *fragment)
{
    dgm_st_file *f = (dgm_st_file *)0x1;
    int rc = dgm_st_open(&f, path);
    ck_assert_msg(rc == DGM_EFORMAT, "%s: rc %d (%s), want EFORMAT", path, rc,
                  dgm_last_error());
    ck_assert_ptr_null(f);
    const char *msg = dgm_last_error();
    ck_assert_msg(strstr(msg, path), "message lacks the path: %s", msg);
    ck_assert_msg(strstr(msg, fragment), "message lacks '%s': %s", fragment,
                  msg);
}

#define T1 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

START_TEST(malformed_files)
{
    /* A sound file to start from, and its cut-off copies. */
    const char *good = tc_spath("good.safetensors");
    write_st_raw(good, T1 "}", 0, 8);
    dgm_st_file *f;
    ck_assert_int_eq(dgm_st_open(&f, good), 0);
    dgm_st_close(f);

    const char *p = tc_spath("trunc.safetensors");
    write_st_raw(p, T1 "}", 0, 5);
    expect_refused(p, "truncated");
    write_bytes(p, "\x10\0\0", 3);
    expect_refused(p, "too short");

    p = tc_spath("pastend.safetensors");
    write_st_raw(p, T1 "}", 1000, 8);
    expect_refused(p, "header length 1000 runs past the end");
    write_st_raw(p, T1 "}", UINT64_MAX, 8); /* N + 8 overflows */
    expect_refused(p, "exceeds the cap");

    p = tc_spath("cap.safetensors");
    write_st_raw(p, T1 "}", 200000000, 8);
    expect_refused(p, "header length 200000000 exceeds the cap");

    p = tc_spath("notjson.safetensors");
    write_st_raw(p, "{\"a\": [1, 2", 0, 0);
    expect_refused(p, "not valid JSON");
    write_st_raw(p, "[1, 2]", 0, 0);
    expect_refused(p, "not a JSON object");
    write_st_raw(p, "{\"\xff\xfe\":{}}", 0, 0);
    expect_refused(p, "not valid JSON");

    p = tc_spath("overlap.safetensors");
    write_st_raw(p,
                 T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                    "\"data_offsets\":[4,12]}}",
                 0, 12);
    expect_refused(p, "tensor 'b': overlaps 'a'");

    p = tc_spath("hole.safetensors");
    write_st_raw(p,
                 T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
                    "\"data_offsets\":[12,16]}}",
                 0, 16);
    expect_refused(p, "tensor 'b': hole in the data buffer");
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                 "\"data_offsets\":[4,12]}}",
                 0, 12);
    expect_refused(p, "tensor 'a': hole");

    p = tc_spath("dtype.safetensors");
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],"
                 "\"data_offsets\":[0,8]}}",
                 0, 8);
    expect_refused(p, "tensor 'a': unknown dtype 'F33'");

    p = tc_spath("size.safetensors");
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
                 "\"data_offsets\":[0,8]}}",
                 0, 8);
    expect_refused(p, "tensor 'a': shape and dtype F32 give 12 bytes but "
                      "data_offsets span 8");
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,"
                 "4294967296],\"data_offsets\":[0,8]}}",
                 0, 8);
    expect_refused(p, "tensor 'a': shape size overflows");
    /* A zero dim beside huge ones holds no bytes, but the other dims'
     * product (a view's strides, a reader's element count) overflows:
     * refused for every dtype, also those dgm makes no view of. */
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,"
                 "4294967296],\"data_offsets\":[0,0]}}",
                 0, 0);
    expect_refused(p, "tensor 'a': shape size overflows at shape[2]");
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"BF16\",\"shape\":[65536,65536,0,"
                 "65536,65536,1,1,1,1],\"data_offsets\":[0,0]}}",
                 0, 0);
    expect_refused(p, "tensor 'a': shape size overflows at shape[4]");
    /* ... while an empty tensor whose other dims fit opens */
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,2],"
                 "\"data_offsets\":[0,0]}}",
                 0, 0);
    dgm_st_file *e;
    ck_assert_msg(dgm_st_open(&e, p) == 0, "%s", dgm_last_error());
    dgm_tensor *v;
    ck_assert_int_eq(dgm_st_get(e, "a", &v), 0);
    ck_assert_int_eq(dgm_tensor_numel(v), 0);
    ck_assert_int_eq(v->strides[0], 2 * 4294967296ll);
    dgm_st_close(e);
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],"
                 "\"data_offsets\":[0,8]}}",
                 0, 8);
    expect_refused(p, "shape[0] is not a non-negative integer");
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                 "\"data_offsets\":[8,0]}}",
                 0, 8);
    expect_refused(p, "tensor 'a': data_offsets end 0 < begin 8");

    p = tc_spath("trailing.safetensors");
    write_st_raw(p, T1 "}", 0, 12);
    expect_refused(p, "trailing bytes");

    p = tc_spath("dup.safetensors");
    write_st_raw(p,
                 T1 ",\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                    "\"data_offsets\":[8,16]}}",
                 0, 16);
    expect_refused(p, "duplicate object key");

    p = tc_spath("meta.safetensors");
    write_st_raw(p, T1 ",\"__metadata__\":{\"k\":3}}", 0, 8);
    expect_refused(p, "__metadata__ value of 'k' is not a string");
    write_st_raw(p, T1 ",\"__metadata__\":[1]}", 0, 8);
    expect_refused(p, "__metadata__ is not a map of strings");

    dgm_st_file *g = (dgm_st_file *)0x1;
    ck_assert_int_eq(dgm_st_open(&g, tc_spath("absent.safetensors")), DGM_EIO);
    ck_assert_ptr_null(g);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "absent.safetensors"));
}
END_TEST

/* ---- atomic replacement ----------------------------------------------- */

static char *slurp(const char *path, size_t *n)
{
    return tc_slurp(path, n, true);
}

START_TEST(atomic_write)
{
    const char *path = tc_spath("ckpt.safetensors");
    int64_t s[1] = {1000};
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 1, s);
    dgm_tensor_fill(t, 1.0);
    dgm_st_writer *w = dgm_st_writer_new();
    ck_assert_int_eq(dgm_st_writer_add(w, "w", t), 0);
    ck_assert_int_eq(dgm_st_writer_write(w, path), 0);
    size_t n0;
    char *before = slurp(path, &n0);
    ck_assert_uint_gt(n0, 4000);

    /* A write that fails half-way (file size limit) leaves the old file
     * byte for byte and no tmp file. In a child, so the limit stays
     * there. */
    dgm_tensor_fill(t, 2.0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1024, 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        int rc = dgm_st_writer_write(w, path);
        _exit(rc == DGM_EIO && strstr(dgm_last_error(), "write failed") ? 0
                                                                          : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the limited write did not fail with DGM_EIO");
    size_t n1;
    char *after = slurp(path, &n1);
    ck_assert_uint_eq(n1, n0);
    ck_assert(memcmp(before, after, n0) == 0);
    free(after);
    ck_assert_int_eq(tmp_files_left(), 0);

    /* Renaming over a folder fails: the folder stays, no tmp is left. */
    const char *dir = tc_spath("a-folder");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert_int_eq(dgm_st_writer_write(w, dir), DGM_EIO);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "cannot rename"));
    struct stat sb;
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(tmp_files_left(), 0);

    /* A successful write replaces the file. */
    ck_assert_int_eq(dgm_st_writer_write(w, path), 0);
    ck_assert_int_eq(tmp_files_left(), 0);
    dgm_st_file *f;
    dgm_tensor *v;
    ck_assert_int_eq(dgm_st_open(&f, path), 0);
    ck_assert_int_eq(dgm_st_get(f, "w", &v), 0);
    ck_assert(dgm_tensor_get(v, 999) == 2.0);
    dgm_st_close(f);
    free(before);
    dgm_st_writer_free(w);
    dgm_tensor_free(t);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"roundtrip", roundtrip_every_dtype},
        {"writer_errors", writer_refusals},
        {"python_reader", python_reads_dgm},
        {"python_writer", dgm_reads_python},
        {"malformed", malformed_files},
        {"atomic", atomic_write},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tcase_add_checked_fixture(tq_case(s, cases[i].name, cases[i].test),
                                  tc_scratch_setup, tc_scratch_teardown);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(safetensors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
