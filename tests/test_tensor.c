/* test_tensor.c - the "tensor" suite: construction, views and their
 * strides, reshape rules and errors, strided copy/fill, arenas and the
 * heap-allocation counter, DLPack export/import. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlpack/dlpack.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/tensor.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static int is_aligned(const void *p)
{
    return ((uintptr_t)p % 64) == 0;
}

/* Fill t (any strides) with 0, 1, 2, ... in logical row-major order. */
static void iota(dgm_tensor *t)
{
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        dgm_tensor_set(t, i, (double)i);
}

/* ---- construction ------------------------------------------------------- */

START_TEST(test_new_basic)
{
    uint64_t h0 = dgm_heap_allocations();
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 2, SHAPE(3, 5));
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_gt(dgm_heap_allocations(), h0);
    ck_assert_int_eq(t->dtype, DGM_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_int_eq(t->shape[1], 5);
    ck_assert_int_eq(t->strides[0], 5);
    ck_assert_int_eq(t->strides[1], 1);
    ck_assert_int_eq(dgm_tensor_numel(t), 15);
    ck_assert_uint_eq(dgm_tensor_nbytes(t), 60);
    ck_assert_ptr_nonnull(t->storage);
    ck_assert(is_aligned(t->data));
    ck_assert(dgm_tensor_is_contiguous(t));
    const unsigned char *b = t->data;
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(b[i], 0);
    dgm_tensor_free(t);

    /* every dtype: size, name, alignment and zero fill */
    static const size_t sizes[] = {4, 8, 4, 8, 1, 8};
    static const char *names[] = {"f32", "f64", "i32", "i64", "u8", "u64"};
    for (int d = 0; d < DGM_DTYPE_COUNT; d++) {
        ck_assert_uint_eq(dgm_dtype_size((dgm_dtype)d), sizes[d]);
        ck_assert_str_eq(dgm_dtype_name((dgm_dtype)d), names[d]);
        dgm_tensor *u = dgm_tensor_new((dgm_dtype)d, 3, SHAPE(2, 3, 7));
        ck_assert_ptr_nonnull(u);
        ck_assert(is_aligned(u->data));
        for (int64_t i = 0; i < 42; i++)
            ck_assert(dgm_tensor_get(u, i) == 0.0);
        dgm_tensor_set(u, 41, 7.0);
        ck_assert(dgm_tensor_get(u, 41) == 7.0);
        dgm_tensor_free(u);
    }
    dgm_tensor_free(NULL); /* allowed */
}
END_TEST

START_TEST(test_new_scalar_and_empty)
{
    dgm_tensor *s = dgm_tensor_new(DGM_F64, 0, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(dgm_tensor_numel(s), 1);
    ck_assert_uint_eq(dgm_tensor_nbytes(s), 8);
    dgm_tensor_set(s, 0, 2.5);
    ck_assert(dgm_tensor_get(s, 0) == 2.5);
    ck_assert(isnan(dgm_tensor_get(s, 1))); /* out of range */
    char buf[64];
    ck_assert_str_eq(dgm_tensor_describe(s, buf, sizeof buf), "[] f64");
    dgm_tensor_free(s);

    dgm_tensor *e = dgm_tensor_new(DGM_F32, 2, SHAPE(0, 5));
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(e->data);
    ck_assert_int_eq(dgm_tensor_numel(e), 0);
    ck_assert(dgm_tensor_is_contiguous(e));
    ck_assert_int_eq(dgm_tensor_fill(e, 1.0), 0);
    dgm_tensor *c = dgm_tensor_clone(e);
    ck_assert_ptr_nonnull(c);
    dgm_tensor_free(c);
    dgm_tensor_free(e);
}
END_TEST

START_TEST(test_new_errors)
{
    dgm_error_clear();
    ck_assert_ptr_null(dgm_tensor_new(DGM_F32, 2, SHAPE(3, -1)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "tensor_new"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "-1"));

    ck_assert_ptr_null(dgm_tensor_new(DGM_F32, DGM_MAX_DIMS + 1,
                                      SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "rank 9"));

    ck_assert_ptr_null(dgm_tensor_new((dgm_dtype)DGM_DTYPE_COUNT, 1, SHAPE(4)));
    ck_assert_int_eq(dgm_last_code(), DGM_EDTYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "dtype"));

    /* element count that overflows int64 */
    ck_assert_ptr_null(
        dgm_tensor_new(DGM_F32, 3, SHAPE(1ll << 40, 1ll << 40, 1 << 20)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "overflow"));

    /* A zero dim makes no elements but the strides still multiply the
     * other dims: their product (times the element size) must fit, in
     * every constructor (the check used to stop at the zero). */
    ck_assert_ptr_null(
        dgm_tensor_new(DGM_U8, 4, SHAPE(0, 1ll << 32, 1ll << 32, 1ll << 32)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "overflows at axis 2"));
    ck_assert_ptr_null(dgm_tensor_wrap(NULL, DGM_F32, 3,
                                       SHAPE(1ll << 31, 0, 1ll << 31), NULL));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "tensor_wrap"));
    dgm_arena *a = dgm_arena_new(1024);
    ck_assert_ptr_null(
        dgm_arena_tensor(a, DGM_F64, 3, SHAPE(1ll << 40, 1ll << 40, 0)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "arena_tensor"));
    /* where the other dims fit, an empty tensor with their strides */
    dgm_tensor *e = dgm_arena_tensor(a, DGM_F32, 3, SHAPE(0, 1ll << 30, 4));
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->strides[0], 1ll << 32);
    dgm_arena_free(a);
    e = dgm_tensor_new(DGM_F32, 3, SHAPE(0, 1ll << 30, 4));
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(dgm_tensor_numel(e), 0);
    ck_assert_int_eq(e->strides[0], 1ll << 32);
    dgm_tensor_free(e);

#if !defined(__SANITIZE_ADDRESS__) /* ASan aborts on absurd requests */
    /* 4 PiB: a clean ENOMEM naming the shape */
    uint64_t h = dgm_heap_allocations();
    ck_assert_ptr_null(dgm_tensor_new(DGM_F32, 2, SHAPE(1ll << 40, 1 << 20)));
    ck_assert_int_eq(dgm_last_code(), DGM_ENOMEM);
    ck_assert_ptr_nonnull(
        strstr(dgm_last_error(), "tensor_new [1099511627776, 1048576] f32"));
    ck_assert_uint_eq(dgm_heap_allocations(), h + 1); /* the struct, freed */
#endif
}
END_TEST

START_TEST(test_describe)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 2, SHAPE(128, 784));
    char buf[64];
    ck_assert_str_eq(dgm_tensor_describe(t, buf, sizeof buf), "[128, 784] f32");
    /* always terminated when the buffer is short */
    char small[6];
    dgm_tensor_describe(t, small, sizeof small);
    ck_assert_str_eq(small, "[128,");
    ck_assert_str_eq(dgm_shape_str(3, SHAPE(2, 1, 3), buf, sizeof buf),
                     "[2, 1, 3]");
    ck_assert_str_eq(dgm_shape_str(0, NULL, buf, sizeof buf), "[]");
    dgm_shape_str(3, SHAPE(1000, 1000, 1000), small, sizeof small);
    ck_assert_str_eq(small, "[1000");
    dgm_tensor_free(t);
}
END_TEST

START_TEST(test_wrap)
{
    float mem[12];
    for (int i = 0; i < 12; i++)
        mem[i] = (float)i;
    /* a [3, 2] view of every other column of a [3, 4] buffer */
    dgm_tensor *t =
        dgm_tensor_wrap(mem + 1, DGM_F32, 2, SHAPE(3, 2), SHAPE(4, 2));
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(t->storage);
    ck_assert(!dgm_tensor_is_contiguous(t));
    static const double want[] = {1, 3, 5, 7, 9, 11};
    for (int i = 0; i < 6; i++)
        ck_assert(dgm_tensor_get(t, i) == want[i]);
    dgm_tensor *v = dgm_tensor_view(t);
    dgm_tensor_free(t);
    ck_assert(dgm_tensor_get(v, 5) == 11.0);
    dgm_tensor_free(v);

    dgm_tensor *d = dgm_tensor_wrap(mem, DGM_F32, 1, SHAPE(12), NULL);
    ck_assert_int_eq(d->strides[0], 1);
    dgm_tensor_free(d);
    ck_assert(mem[11] == 11.0f); /* not freed, not touched */
}
END_TEST

/* ---- views -------------------------------------------------------------- */

START_TEST(test_view_survives_parent)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 2, SHAPE(2, 3));
    iota(t);
    dgm_tensor *v = dgm_tensor_view(t);
    dgm_tensor *r = dgm_tensor_reshape(t, 1, SHAPE(6));
    dgm_tensor *p = dgm_tensor_permute(t, (const int[]){1, 0});
    dgm_tensor *s = dgm_tensor_slice(t, 1, 1, 3, 1);
    ck_assert_ptr_eq(v->storage, t->storage);
    ck_assert_ptr_eq(r->storage, t->storage);
    ck_assert_ptr_eq(p->data, t->data);
    ck_assert_ptr_eq(r->data, t->data);
    ck_assert_ptr_eq(s->data, (float *)t->data + 1);
    dgm_tensor_free(t); /* the views keep the storage alive (ASan checks) */
    dgm_tensor_set(v, 0, 42.0);
    ck_assert(dgm_tensor_get(r, 0) == 42.0);
    ck_assert(dgm_tensor_get(r, 5) == 5.0);
    ck_assert(dgm_tensor_get(p, 1) == 3.0); /* p[0][1] = t[1][0] */
    ck_assert(dgm_tensor_get(s, 3) == 5.0); /* s[1][1] = t[1][2] */
    dgm_tensor_free(v);
    dgm_tensor_free(r);
    dgm_tensor_free(p);
    ck_assert(dgm_tensor_get(s, 0) == 1.0);
    dgm_tensor_free(s);
}
END_TEST

START_TEST(test_permute_strides)
{
    dgm_tensor *t = dgm_tensor_new(DGM_I32, 3, SHAPE(2, 3, 4));
    iota(t);
    dgm_tensor *p = dgm_tensor_permute(t, (const int[]){2, 0, 1});
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->shape[0], 4);
    ck_assert_int_eq(p->shape[1], 2);
    ck_assert_int_eq(p->shape[2], 3);
    ck_assert_int_eq(p->strides[0], 1);
    ck_assert_int_eq(p->strides[1], 12);
    ck_assert_int_eq(p->strides[2], 4);
    ck_assert(!dgm_tensor_is_contiguous(p));
    /* p[k][i][j] = t[i][j][k] = 12 i + 4 j + k */
    int64_t f = 0;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                ck_assert(dgm_tensor_get(p, f++) == 12 * i + 4 * j + k);

    /* a bad permutation: EINVAL naming the op, t unchanged */
    dgm_tensor before = *p;
    ck_assert_int_eq(dgm_view_permute(p, (const int[]){0, 0, 1}), DGM_EINVAL);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "permute [4, 2, 3]"));
    ck_assert(memcmp(&before, p, sizeof before) == 0);
    ck_assert_ptr_null(dgm_tensor_permute(t, (const int[]){0, 1, 3}));
    ck_assert_int_eq(dgm_last_code(), DGM_EINVAL);
    dgm_tensor_free(p);
    dgm_tensor_free(t);
}
END_TEST

START_TEST(test_slice_strides)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F64, 2, SHAPE(4, 6));
    iota(t);
    dgm_tensor *s = dgm_tensor_slice(t, 1, 1, 6, 2); /* columns 1, 3, 5 */
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->shape[0], 4);
    ck_assert_int_eq(s->shape[1], 3);
    ck_assert_int_eq(s->strides[0], 6);
    ck_assert_int_eq(s->strides[1], 2);
    ck_assert_ptr_eq(s->data, (double *)t->data + 1);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            ck_assert(dgm_tensor_get(s, i * 3 + j) == 6 * i + 2 * j + 1);
    /* slice of a slice, negative axis */
    ck_assert_int_eq(dgm_view_slice(s, -2, 2, 4, 1), 0);
    ck_assert_int_eq(s->shape[0], 2);
    ck_assert(dgm_tensor_get(s, 0) == 13.0);
    /* an empty slice is allowed */
    dgm_tensor *e = dgm_tensor_slice(t, 0, 2, 2, 1);
    ck_assert_int_eq(e->shape[0], 0);
    ck_assert_int_eq(dgm_tensor_numel(e), 0);
    dgm_tensor_free(e);

    /* out of range: ESHAPE with the shape, bounds and axis */
    ck_assert_ptr_null(dgm_tensor_slice(t, 1, 2, 7, 1));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "slice [4, 6]"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2:7:1]"));
    ck_assert_int_eq(dgm_view_slice(t, 0, 0, 1, 0), DGM_ESHAPE); /* step 0 */
    ck_assert_int_eq(dgm_view_slice(t, 2, 0, 1, 1), DGM_EINVAL); /* axis */
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "axis 2"));
    ck_assert_int_eq(t->shape[0], 4); /* failed calls changed nothing */
    dgm_tensor_free(s);
    dgm_tensor_free(t);
}
END_TEST

START_TEST(test_reshape)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 3, SHAPE(2, 3, 4));
    iota(t);
    dgm_tensor *r = dgm_tensor_reshape(t, 2, SHAPE(6, 4));
    ck_assert_int_eq(r->strides[0], 4);
    ck_assert_int_eq(r->strides[1], 1);
    dgm_tensor_free(r);
    r = dgm_tensor_reshape(t, 3, SHAPE(4, -1, 2)); /* inferred */
    ck_assert_int_eq(r->shape[1], 3);
    ck_assert(dgm_tensor_is_contiguous(r));
    dgm_tensor_free(r);
    r = dgm_tensor_reshape(t, 0, NULL);
    ck_assert_ptr_null(r); /* 24 elements are not a scalar */
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 3, 4] -> []"));

    /* element counts differ: both shapes in the message */
    ck_assert_ptr_null(dgm_tensor_reshape(t, 2, SHAPE(5, 5)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 3, 4]"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[5, 5]"));
    /* sizes whose product overflows, and an empty tensor viewed with huge
     * sizes beside its 0 (its strides would overflow) */
    ck_assert_ptr_null(
        dgm_tensor_reshape(t, 3, SHAPE(1ll << 40, 1ll << 40, 1ll << 40)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "overflow at axis 1"));
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 1, SHAPE(0));
    ck_assert_ptr_null(
        dgm_tensor_reshape(z, 3, SHAPE(0, 1ll << 40, 1ll << 40)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "overflow at axis 2"));
    r = dgm_tensor_reshape(z, 3, SHAPE(0, 1ll << 20, 1ll << 20));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->strides[0], 1ll << 40);
    dgm_tensor_free(r);
    dgm_tensor_free(z);

    /* a transposed [3, 4] is [4, 3] with strides [1, 4]: splitting its
     * first axis is a view, flattening it is not */
    dgm_tensor *m = dgm_tensor_new(DGM_F32, 2, SHAPE(3, 4));
    iota(m);
    dgm_tensor *tr = dgm_tensor_permute(m, (const int[]){1, 0});
    dgm_tensor *sp = dgm_tensor_reshape(tr, 3, SHAPE(2, 2, 3));
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(sp->strides[0], 2);
    ck_assert_int_eq(sp->strides[1], 1);
    ck_assert_int_eq(sp->strides[2], 4);
    for (int64_t i = 0; i < 12; i++)
        ck_assert(dgm_tensor_get(sp, i) == dgm_tensor_get(tr, i));
    /* merging a split axis back is a view too */
    dgm_tensor *back = dgm_tensor_reshape(sp, 2, SHAPE(4, 3));
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(back->strides[0], 1);
    ck_assert_int_eq(back->strides[1], 4);
    dgm_tensor_free(back);

    dgm_tensor before = *tr;
    ck_assert_int_eq(dgm_view_reshape(tr, 1, SHAPE(12)), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "reshape [4, 3] -> [12]"));
    ck_assert(memcmp(&before, tr, sizeof before) == 0);
    ck_assert_ptr_null(dgm_tensor_reshape(tr, 2, SHAPE(2, 6)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4, 3] -> [2, 6]"));

    /* size-1 axes are free to come and go even when non-contiguous */
    dgm_tensor *u = dgm_tensor_reshape(tr, 4, SHAPE(1, 4, 1, 3));
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(u->strides[1], 1);
    ck_assert_int_eq(u->strides[3], 4);
    dgm_tensor_free(u);

    /* the stride of a size-1 axis never blocks a view: a [4, 1, 3] with a
     * junk stride on the middle axis flattens its tail */
    float mem[12];
    dgm_tensor *w =
        dgm_tensor_wrap(mem, DGM_F32, 3, SHAPE(4, 1, 3), SHAPE(1, 99, 4));
    ck_assert_int_eq(dgm_view_reshape(w, 2, SHAPE(4, 3)), 0);
    ck_assert_int_eq(w->strides[0], 1);
    ck_assert_int_eq(w->strides[1], 4);
    dgm_tensor_free(w);

    /* a scalar becomes [1, 1] and back */
    dgm_tensor *s = dgm_tensor_new(DGM_F32, 0, NULL);
    dgm_tensor *s11 = dgm_tensor_reshape(s, 2, SHAPE(1, 1));
    ck_assert_ptr_nonnull(s11);
    ck_assert_int_eq(dgm_view_reshape(s11, 0, NULL), 0);
    ck_assert_int_eq(s11->ndim, 0);
    dgm_tensor_free(s11);
    dgm_tensor_free(s);

    dgm_tensor_free(sp);
    dgm_tensor_free(tr);
    dgm_tensor_free(m);
    dgm_tensor_free(t);
}
END_TEST

/* ---- data movement ------------------------------------------------------ */

START_TEST(test_copy_strided)
{
    dgm_tensor *a = dgm_tensor_new(DGM_F32, 3, SHAPE(2, 3, 4));
    iota(a);
    dgm_tensor *p = dgm_tensor_permute(a, (const int[]){2, 0, 1}); /* [4,2,3] */
    dgm_tensor *c = dgm_tensor_new(DGM_F32, 3, SHAPE(4, 2, 3));
    ck_assert_int_eq(dgm_tensor_copy(c, p), 0);
    const float *cv = c->data;
    int64_t f = 0;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                ck_assert(cv[f++] == (float)(12 * i + 4 * j + k));

    /* into a strided destination: every other column of a [4, 12] */
    dgm_tensor *big = dgm_tensor_new(DGM_F32, 2, SHAPE(4, 12));
    dgm_tensor_fill(big, -1.0);
    dgm_tensor *cols = dgm_tensor_slice(big, 1, 0, 12, 2); /* [4, 6] */
    dgm_tensor *src = dgm_tensor_reshape(c, 2, SHAPE(4, 6));
    ck_assert_int_eq(dgm_tensor_copy(cols, src), 0);
    const float *bv = big->data;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 12; j++)
            ck_assert(bv[i * 12 + j] == (j % 2 ? -1.0f : cv[i * 6 + j / 2]));

    /* clone makes a contiguous copy of any strides */
    dgm_tensor *cl = dgm_tensor_clone(cols);
    ck_assert(dgm_tensor_is_contiguous(cl));
    ck_assert_ptr_ne(cl->storage, big->storage);
    for (int64_t i = 0; i < 24; i++)
        ck_assert(dgm_tensor_get(cl, i) == dgm_tensor_get(src, i));

    /* u8 and i64 through a transpose */
    for (int dt = 0; dt < DGM_DTYPE_COUNT; dt++) {
        dgm_tensor *x = dgm_tensor_new((dgm_dtype)dt, 2, SHAPE(5, 3));
        iota(x);
        dgm_tensor *xt = dgm_tensor_permute(x, (const int[]){1, 0});
        dgm_tensor *y = dgm_tensor_new((dgm_dtype)dt, 2, SHAPE(3, 5));
        ck_assert_int_eq(dgm_tensor_copy(y, xt), 0);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                ck_assert(dgm_tensor_get(y, i * 5 + j) == j * 3 + i);
        dgm_tensor_free(y);
        dgm_tensor_free(xt);
        dgm_tensor_free(x);
    }

    /* mismatches: exact codes, both tensors named */
    dgm_tensor *d = dgm_tensor_new(DGM_F64, 3, SHAPE(4, 2, 3));
    ck_assert_int_eq(dgm_tensor_copy(d, p), DGM_EDTYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "tensor_copy"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4, 2, 3] f64"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4, 2, 3] f32"));
    ck_assert_int_eq(dgm_tensor_copy(a, p), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 3, 4] f32"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4, 2, 3] f32"));

    dgm_tensor_free(d);
    dgm_tensor_free(cl);
    dgm_tensor_free(src);
    dgm_tensor_free(cols);
    dgm_tensor_free(big);
    dgm_tensor_free(c);
    dgm_tensor_free(p);
    dgm_tensor_free(a);
}
END_TEST

START_TEST(test_fill_get_set)
{
    dgm_tensor *t = dgm_tensor_new(DGM_I64, 2, SHAPE(3, 4));
    dgm_tensor *s = dgm_tensor_slice(t, 0, 1, 3, 1);
    ck_assert_int_eq(dgm_view_permute(s, (const int[]){1, 0}), 0);
    ck_assert_int_eq(dgm_tensor_fill(s, 7.0), 0);
    const int64_t *v = t->data;
    for (int i = 0; i < 12; i++)
        ck_assert_int_eq(v[i], i < 4 ? 0 : 7);
    dgm_tensor_set(s, 1, -3.0); /* s[0][1] = t[2][0] */
    ck_assert_int_eq(v[8], -3);
    ck_assert(dgm_tensor_get(s, 1) == -3.0);
    dgm_tensor_free(s);

    dgm_tensor *u = dgm_tensor_new(DGM_U8, 1, SHAPE(3));
    dgm_tensor_fill(u, 255.0);
    ck_assert(dgm_tensor_get(u, 2) == 255.0);
    dgm_tensor_free(u);
    dgm_tensor *f = dgm_tensor_new(DGM_F32, 1, SHAPE(2));
    dgm_tensor_fill(f, 0.1);
    ck_assert(dgm_tensor_get(f, 1) == (double)0.1f);
    dgm_tensor_free(f);
    dgm_tensor_free(t);
}
END_TEST

/* ---- arena -------------------------------------------------------------- */

/* One "step": tensors of assorted sizes, several chunks' worth for an
 * arena that starts at 1 KiB. */
static void arena_round(dgm_arena *a, void **ptrs, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t len = 10 + 37 * i;
        dgm_tensor *t = dgm_arena_tensor(a, DGM_F32, 1, &len);
        ck_assert_ptr_nonnull(t);
        ck_assert(is_aligned(t->data));
        ck_assert_ptr_null(t->storage);
        const float *v = t->data;
        for (int64_t k = 0; k < len; k++)
            ck_assert(v[k] == 0.0f);
        memset(t->data, 0xab, (size_t)len * 4); /* dirty for next round */
        ptrs[2 * i] = t;
        ptrs[2 * i + 1] = t->data;
        void *raw = dgm_arena_alloc(a, 3);
        ck_assert(is_aligned(raw));
    }
}

START_TEST(test_arena_reset)
{
    enum { N = 20 };
    void *p1[2 * N], *p2[2 * N], *p3[2 * N];
    dgm_arena *a = dgm_arena_new(1024);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(dgm_arena_capacity(a), 1024);
    arena_round(a, p1, N);
    size_t used = dgm_arena_used(a);
    ck_assert_uint_gt(used, 1024);
    ck_assert_uint_ge(dgm_arena_capacity(a), used);
    dgm_arena_reset(a);
    ck_assert_uint_eq(dgm_arena_used(a), 0);

    /* after the merge an identical step allocates nothing on the heap and
     * reuses the same addresses from then on */
    uint64_t h = dgm_heap_allocations();
    arena_round(a, p2, N);
    ck_assert_uint_eq(dgm_heap_allocations(), h);
    ck_assert_uint_eq(dgm_arena_used(a), used);
    dgm_arena_reset(a);
    arena_round(a, p3, N);
    ck_assert_uint_eq(dgm_heap_allocations(), h);
    ck_assert(memcmp(p2, p3, sizeof p2) == 0);
    dgm_arena_reset(a);

    /* a larger step grows again; its successor is again allocation-free */
    int64_t huge = 100000;
    ck_assert_ptr_nonnull(dgm_arena_tensor(a, DGM_F64, 1, &huge));
    ck_assert_uint_gt(dgm_heap_allocations(), h);
    dgm_arena_reset(a);
    h = dgm_heap_allocations();
    ck_assert_ptr_nonnull(dgm_arena_tensor(a, DGM_F64, 1, &huge));
    ck_assert_uint_eq(dgm_heap_allocations(), h);

    /* scalar and bad shape */
    dgm_tensor *s = dgm_arena_tensor(a, DGM_U64, 0, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(dgm_tensor_numel(s), 1);
    ck_assert(dgm_tensor_get(s, 0) == 0.0);
    ck_assert_ptr_null(dgm_arena_tensor(a, DGM_F32, 2, SHAPE(2, -2)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, -2]"));
    dgm_arena_free(a);
    dgm_arena_free(NULL);
}
END_TEST

/* ---- DLPack ------------------------------------------------------------- */

static int deleter_calls;
static void (*inner_deleter)(DLManagedTensor *);

static void counting_deleter(DLManagedTensor *m)
{
    deleter_calls++;
    inner_deleter(m);
}

START_TEST(test_dlpack_roundtrip)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 2, SHAPE(3, 4));
    iota(t);
    dgm_tensor *tp = dgm_tensor_permute(t, (const int[]){1, 0});
    DLManagedTensor *m = NULL;
    ck_assert_int_eq(dgm_tensor_to_dlpack(tp, &m), 0);
    ck_assert_ptr_nonnull(m);
    DLTensor *dl = &m->dl_tensor;
    ck_assert_int_eq(dl->device.device_type, kDLCPU);
    ck_assert_int_eq(dl->ndim, 2);
    ck_assert_int_eq(dl->dtype.code, kDLFloat);
    ck_assert_int_eq(dl->dtype.bits, 32);
    ck_assert_int_eq(dl->dtype.lanes, 1);
    ck_assert_int_eq(dl->shape[0], 4);
    ck_assert_int_eq(dl->shape[1], 3);
    ck_assert_int_eq(dl->strides[0], 1);
    ck_assert_int_eq(dl->strides[1], 4);
    ck_assert_ptr_eq((char *)dl->data + dl->byte_offset, t->data);

    inner_deleter = m->deleter;
    m->deleter = counting_deleter;
    deleter_calls = 0;
    dgm_tensor_free(tp);
    dgm_tensor_free(t); /* the export keeps the storage alive */

    dgm_tensor *back = NULL;
    ck_assert_int_eq(dgm_tensor_from_dlpack(m, &back), 0);
    ck_assert_ptr_eq(back->data, (char *)dl->data + dl->byte_offset);
    ck_assert_int_eq(back->dtype, DGM_F32);
    ck_assert_int_eq(back->strides[0], 1);
    ck_assert_int_eq(back->strides[1], 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            ck_assert(dgm_tensor_get(back, i * 3 + j) == 4 * j + i);

    /* a view of the import outlives it; the deleter runs once, last */
    dgm_tensor *v = dgm_tensor_slice(back, 0, 1, 3, 1);
    dgm_tensor_free(back);
    ck_assert_int_eq(deleter_calls, 0);
    ck_assert(dgm_tensor_get(v, 0) == 1.0);
    dgm_tensor_free(v);
    ck_assert_int_eq(deleter_calls, 1);
}
END_TEST

START_TEST(test_dlpack_export_deleter_only)
{
    /* the consumer may drop an export without importing it */
    dgm_tensor *t = dgm_tensor_new(DGM_U64, 1, SHAPE(5));
    DLManagedTensor *m;
    ck_assert_int_eq(dgm_tensor_to_dlpack(t, &m), 0);
    ck_assert_int_eq(m->dl_tensor.dtype.code, kDLUInt);
    ck_assert_int_eq(m->dl_tensor.dtype.bits, 64);
    dgm_tensor_free(t);
    ((uint64_t *)m->dl_tensor.data)[4] = 9; /* still alive (ASan checks) */
    m->deleter(m);

    /* scalars export with rank 0 */
    dgm_tensor *s = dgm_tensor_new(DGM_I32, 0, NULL);
    ck_assert_int_eq(dgm_tensor_to_dlpack(s, &m), 0);
    ck_assert_int_eq(m->dl_tensor.ndim, 0);
    dgm_tensor_free(s);
    m->deleter(m);
}
END_TEST

/* A foreign producer: its own buffer and a deleter that counts. */
typedef struct foreign {
    DLManagedTensor m;
    int64_t shape[2], strides[2];
    double buf[16];
} foreign;

static int foreign_deletes;

static void foreign_deleter(DLManagedTensor *m)
{
    foreign_deletes++;
    free(m->manager_ctx);
}

static foreign *foreign_new(void)
{
    foreign *f = calloc(1, sizeof *f);
    for (int i = 0; i < 16; i++)
        f->buf[i] = i;
    f->m.manager_ctx = f;
    f->m.deleter = foreign_deleter;
    f->m.dl_tensor.data = f->buf;
    f->m.dl_tensor.device = (DLDevice){kDLCPU, 0};
    f->m.dl_tensor.ndim = 2;
    f->m.dl_tensor.dtype = (DLDataType){kDLFloat, 64, 1};
    f->m.dl_tensor.shape = f->shape;
    f->shape[0] = 2;
    f->shape[1] = 3;
    return f;
}

START_TEST(test_dlpack_foreign)
{
    /* custom strides and a byte offset: element (i, j) = buf[1 + 6i + 2j] */
    foreign *f = foreign_new();
    f->strides[0] = 6;
    f->strides[1] = 2;
    f->m.dl_tensor.strides = f->strides;
    f->m.dl_tensor.byte_offset = sizeof(double);
    foreign_deletes = 0;
    dgm_tensor *t = NULL;
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), 0);
    ck_assert_ptr_eq(t->data, f->buf + 1);
    ck_assert_int_eq(t->dtype, DGM_F64);
    ck_assert_int_eq(t->strides[0], 6);
    ck_assert_int_eq(t->strides[1], 2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            ck_assert(dgm_tensor_get(t, i * 3 + j) == 1 + 6 * i + 2 * j);
    dgm_tensor *c = dgm_tensor_clone(t);
    dgm_tensor_free(t);
    ck_assert_int_eq(foreign_deletes, 1);
    ck_assert(dgm_tensor_get(c, 5) == 11.0);
    dgm_tensor_free(c);

    /* NULL strides: compact row-major, offset still honoured */
    f = foreign_new();
    f->m.dl_tensor.byte_offset = 4 * sizeof(double);
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), 0);
    ck_assert_int_eq(t->strides[0], 3);
    ck_assert_int_eq(t->strides[1], 1);
    ck_assert(dgm_tensor_get(t, 0) == 4.0);
    ck_assert(dgm_tensor_get(t, 5) == 9.0);
    dgm_tensor_free(t);
    ck_assert_int_eq(foreign_deletes, 2);
}
END_TEST

START_TEST(test_dlpack_refused)
{
    foreign *f = foreign_new();
    foreign_deletes = 0;
    f->m.dl_tensor.dtype = (DLDataType){kDLFloat, 16, 1};
    DLManagedTensor saved = f->m;
    dgm_tensor *t = (dgm_tensor *)0x1;
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), DGM_EDTYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "dlpack import"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "code 2, bits 16, lanes 1"));
    ck_assert_ptr_eq(t, (dgm_tensor *)0x1);
    ck_assert(memcmp(&saved, &f->m, sizeof saved) == 0);
    ck_assert_int_eq(foreign_deletes, 0);

    f->m.dl_tensor.dtype = (DLDataType){kDLFloat, 32, 4}; /* vector lanes */
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), DGM_EDTYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "code 2, bits 32, lanes 4"));
    f->m.dl_tensor.dtype = (DLDataType){kDLBfloat, 16, 1};
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), DGM_EDTYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "code 4, bits 16"));

    f->m.dl_tensor.dtype = (DLDataType){kDLFloat, 64, 1};
    f->m.dl_tensor.device.device_type = kDLCUDA;
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), DGM_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "device type 2"));
    f->m.dl_tensor.device.device_type = kDLCPU;
    f->m.dl_tensor.ndim = DGM_MAX_DIMS + 1;
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "rank 9"));
    /* no elements, but the non-zero dims' product overflows (contiguous
     * strides, no strides given) */
    f->m.dl_tensor.ndim = 2;
    f->m.dl_tensor.strides = NULL;
    f->shape[0] = 0;
    f->shape[1] = INT64_MAX / 4;
    ck_assert_int_eq(dgm_tensor_from_dlpack(&f->m, &t), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "at axis 1"));
    ck_assert_int_eq(foreign_deletes, 0);
    ck_assert_ptr_eq(t, (dgm_tensor *)0x1);
    f->m.deleter(&f->m); /* still ours to release */
    ck_assert_int_eq(foreign_deletes, 1);
}
END_TEST

/* PyTorch 1.13 as the other side: it consumes a dgm export (same memory,
 * transposed values) and produces a strided float64 slice dgm imports;
 * torch calls dgm's deleter and dgm calls torch's. The script drives
 * libdgm through ctypes and prints "ok" only if every check held. */
static const char torch_script[] =
    "import ctypes, sys, gc\n"
    "import torch\n"
    "from torch.utils.dlpack import from_dlpack, to_dlpack\n"
    "import os\n"
    "# lazy binding: a dev build of libdgm may still lack unrelated symbols\n"
    "libc = ctypes.CDLL(None)\n"
    "libc.dlopen.restype = ctypes.c_void_p\n"
    "libc.dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]\n"
    "h = libc.dlopen(sys.argv[1].encode(), os.RTLD_LAZY | os.RTLD_LOCAL)\n"
    "assert h, 'dlopen failed'\n"
    "lib = ctypes.CDLL(sys.argv[1], handle=h)\n"
    "P = ctypes.c_void_p\n"
    "lib.dgm_tensor_new.restype = P\n"
    "lib.dgm_tensor_new.argtypes = [ctypes.c_int, ctypes.c_int, P]\n"
    "lib.dgm_tensor_permute.restype = P\n"
    "lib.dgm_tensor_permute.argtypes = [P, P]\n"
    "lib.dgm_tensor_set.argtypes = [P, ctypes.c_int64, ctypes.c_double]\n"
    "lib.dgm_tensor_get.restype = ctypes.c_double\n"
    "lib.dgm_tensor_get.argtypes = [P, ctypes.c_int64]\n"
    "lib.dgm_tensor_free.argtypes = [P]\n"
    "lib.dgm_tensor_to_dlpack.argtypes = [P, ctypes.POINTER(P)]\n"
    "lib.dgm_tensor_from_dlpack.argtypes = [P, ctypes.POINTER(P)]\n"
    "api = ctypes.pythonapi\n"
    "api.PyCapsule_New.restype = ctypes.py_object\n"
    "api.PyCapsule_New.argtypes = [P, ctypes.c_char_p, P]\n"
    "api.PyCapsule_GetPointer.restype = P\n"
    "api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]\n"
    "api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]\n"
    "shape = (ctypes.c_int64 * 2)(3, 4)\n"
    "t = lib.dgm_tensor_new(0, 2, shape)\n"
    "for i in range(12): lib.dgm_tensor_set(t, i, float(i))\n"
    "tt = lib.dgm_tensor_permute(t, (ctypes.c_int * 2)(1, 0))\n"
    "m = P()\n"
    "assert lib.dgm_tensor_to_dlpack(tt, ctypes.byref(m)) == 0\n"
    "data = ctypes.cast(m, ctypes.POINTER(P))[0]\n"
    "lib.dgm_tensor_free(tt); lib.dgm_tensor_free(t)\n"
    "x = from_dlpack(api.PyCapsule_New(m, b'dltensor', None))\n"
    "want = torch.arange(12, dtype=torch.float32).reshape(3, 4).T\n"
    "assert x.data_ptr() == data, 'torch copied the export'\n"
    "assert x.stride() == (1, 4) and torch.equal(x, want), x\n"
    "x.mul_(2)\n"
    "del x; gc.collect()\n"
    "y = torch.arange(20, dtype=torch.float64).reshape(4, 5)[1:, 1::2]\n"
    "cap = to_dlpack(y)\n"
    "mp = api.PyCapsule_GetPointer(cap, b'dltensor')\n"
    "out = P()\n"
    "assert lib.dgm_tensor_from_dlpack(mp, ctypes.byref(out)) == 0\n"
    "api.PyCapsule_SetName(cap, b'used_dltensor')\n"
    "del cap\n"
    "flat = y.reshape(-1).tolist()\n"
    "del y; gc.collect()\n"
    "got = [lib.dgm_tensor_get(out, i) for i in range(len(flat))]\n"
    "assert got == flat, (got, flat)\n"
    "lib.dgm_tensor_free(out)\n"
    "print('ok')\n";

/* An ASan-built libdgm loads into python3 only with the ASan runtime
 * loaded first: the path of the shared runtime this program runs with (from
 * /proc/self/maps), "" without ASan or when the runtime is linked in
 * statically (then the case cannot run: main skips it). */
static const char *python_preload(void)
{
    static char path[PATH_MAX];
#if defined(__SANITIZE_ADDRESS__)
    FILE *f = path[0] ? NULL : fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 256];
    while (f && !path[0] && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "/libasan.so")) {
            p[strcspn(p, "\n")] = '\0';
            snprintf(path, sizeof path, "%s", p);
        }
    }
    if (f)
        fclose(f);
#endif
    return path;
}

START_TEST(test_dlpack_torch)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    if (!tmp)
        tmp = "/tmp";
    char cmd[2 * PATH_MAX + 2048], script[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(script, sizeof script, "%s/dlpack-torch-%d.py", tmp,
             (int)getpid());
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs(torch_script, f);
    fclose(f);
    const char *asan = python_preload();
    if (asan[0]) {
        /* python3 itself leaks by design: leak checks off in it */
        const char *opt = getenv("ASAN_OPTIONS");
        int len = snprintf(cmd, sizeof cmd,
                           "LD_PRELOAD='%s' ASAN_OPTIONS='%s%sdetect_leaks=0' "
                           "/usr/bin/python3 '%s' '%s/lib/libdgm.so' 2>&1",
                           asan, opt ? opt : "", opt && opt[0] ? ":" : "",
                           script, DGM_BINARY_DIR);
        ck_assert_int_lt(len, (int)sizeof cmd);
    } else {
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 '%s' '%s/lib/libdgm.so' 2>&1", script,
                 DGM_BINARY_DIR);
    }
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    remove(script);
    ck_assert_msg(status == 0 && strcmp(out, "ok\n") == 0,
                  "python3 said (status %d): %s", status, out);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc;
    tq_case(s, "construction", test_new_basic, test_new_scalar_and_empty,
            test_new_errors, test_describe, test_wrap);
    tq_case(s, "views", test_view_survives_parent, test_permute_strides,
            test_slice_strides, test_reshape);
    tq_case(s, "data", test_copy_strided, test_fill_get_set);
    tq_case(s, "arena", test_arena_reset);
    tq_case(s, "dlpack", test_dlpack_roundtrip, test_dlpack_export_deleter_only,
            test_dlpack_foreign, test_dlpack_refused);
    tc = tq_case(s, "dlpack_torch", test_dlpack_torch);
    tcase_set_timeout(tc, 120);
    tcase_set_tags(tc, "installed");
    return s;
}

/* `test_tensor`: every case but the PyTorch exchange; `test_tensor
 * installed`: that one, or exit 77 (skipped) when it cannot run here. */
int main(int argc, char **argv)
{
    bool installed = argc > 1 && !strcmp(argv[1], "installed");
    if (installed) {
#if defined(__SANITIZE_ADDRESS__)
        if (!python_preload()[0])
            return tq_skip("ASan build without a shared ASan runtime to "
                           "load into python3");
#endif
        if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
            return tq_skip("/usr/bin/python3 cannot import torch (Debian "
                           "package python3-torch; scripts/bootstrap.sh "
                           "installs it)");
    }
    return tq_run(tensor_suite(), "installed", installed);
}
