/* strided.h - one N-d loop over up to four f32 operands with their own
 * strides (0 = broadcast), shared by the binary, reduction and elementwise
 * reference kernels (never installed). Coalesces dims that are contiguous
 * for every operand so the common dense case is one flat loop. */
#ifndef DGM_STRIDED_H
#define DGM_STRIDED_H

#include <stdint.h>

#include "dgm/tensor.h"

typedef enum dgm__skind {
    /* o = f(x1, x2) */
    DGM__S_ADD,
    DGM__S_SUB,
    DGM__S_MUL,
    DGM__S_DIV,
    DGM__S_COPY, /* o = x1 */
    DGM__S_NEG,  /* o = -x1 */
    DGM__S_DIVB, /* o = -(x1 * x2 / (x3 * x3))   (d(a/b)/db) */
    /* o += f(x1, x2, x3) (gradients, reductions) */
    DGM__S_ACC,      /* o += x1 */
    DGM__S_ACC_NEG,  /* o -= x1 */
    DGM__S_ACC_MUL,  /* o += x1 * x2 */
    DGM__S_ACC_DIV,  /* o += x1 / x2 */
    DGM__S_ACC_DIVB, /* o -= x1 * x2 / (x3 * x3)   (d(a/b)/db) */
    DGM__S_ACC_SCALE /* o += x1 * scale */
} dgm__skind;

typedef struct dgm__sop {
    float *o;
    const float *x[3];
    int64_t so[DGM_MAX_DIMS];
    int64_t sx[3][DGM_MAX_DIMS];
} dgm__sop;

static inline void dgm__sinner(dgm__skind k, int64_t n, float *o, int64_t so,
                               const float *a, int64_t sa, const float *b,
                               int64_t sb, const float *c, int64_t sc,
                               float scale)
{
    int64_t i;
    switch (k) {
    case DGM__S_ADD:
        if (so == 1 && sa == 1 && sb == 1)
            for (i = 0; i < n; i++) o[i] = a[i] + b[i];
        else if (so == 1 && sa == 1 && sb == 0)
            for (i = 0; i < n; i++) o[i] = a[i] + b[0];
        else
            for (i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb];
        break;
    case DGM__S_SUB:
        if (so == 1 && sa == 1 && sb == 1)
            for (i = 0; i < n; i++) o[i] = a[i] - b[i];
        else
            for (i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb];
        break;
    case DGM__S_MUL:
        if (so == 1 && sa == 1 && sb == 1)
            for (i = 0; i < n; i++) o[i] = a[i] * b[i];
        else if (so == 1 && sa == 1 && sb == 0)
            for (i = 0; i < n; i++) o[i] = a[i] * b[0];
        else
            for (i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb];
        break;
    case DGM__S_DIV:
        for (i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb];
        break;
    case DGM__S_COPY:
        if (so == 1 && sa == 1)
            for (i = 0; i < n; i++) o[i] = a[i];
        else
            for (i = 0; i < n; i++) o[i * so] = a[i * sa];
        break;
    case DGM__S_NEG:
        for (i = 0; i < n; i++)
            o[i * so] = -a[i * sa];
        break;
    case DGM__S_DIVB:
        for (i = 0; i < n; i++) {
            float bv = c[i * sc];
            o[i * so] = -(a[i * sa] * b[i * sb] / (bv * bv));
        }
        break;
    case DGM__S_ACC:
        if (so == 1 && sa == 1)
            for (i = 0; i < n; i++) o[i] += a[i];
        else if (so == 0) {
            float s = 0.0f;
            for (i = 0; i < n; i++) s += a[i * sa];
            o[0] += s;
        } else
            for (i = 0; i < n; i++) o[i * so] += a[i * sa];
        break;
    case DGM__S_ACC_NEG:
        if (so == 0) {
            float s = 0.0f;
            for (i = 0; i < n; i++) s += a[i * sa];
            o[0] -= s;
        } else
            for (i = 0; i < n; i++) o[i * so] -= a[i * sa];
        break;
    case DGM__S_ACC_MUL:
        if (so == 0) {
            float s = 0.0f;
            for (i = 0; i < n; i++) s += a[i * sa] * b[i * sb];
            o[0] += s;
        } else
            for (i = 0; i < n; i++) o[i * so] += a[i * sa] * b[i * sb];
        break;
    case DGM__S_ACC_DIV:
        for (i = 0; i < n; i++) o[i * so] += a[i * sa] / b[i * sb];
        break;
    case DGM__S_ACC_DIVB:
        for (i = 0; i < n; i++) {
            float bv = c[i * sc];
            o[i * so] -= a[i * sa] * b[i * sb] / (bv * bv);
        }
        break;
    case DGM__S_ACC_SCALE:
        if (so == 0) {
            float s = 0.0f;
            for (i = 0; i < n; i++) s += a[i * sa];
            o[0] += s * scale;
        } else
            for (i = 0; i < n; i++) o[i * so] += a[i * sa] * scale;
        break;
    }
}

/* Run kind k over `shape` (ndim >= 0). Operands not used by k may have
 * NULL pointers (their strides are ignored). Serial: the output may be
 * reduced into (stride 0), and at these sizes the loop is memory-bound. */
static inline void dgm__strided(dgm__skind k, int ndim, const int64_t *shape,
                                dgm__sop *op, float scale)
{
    int64_t sh[DGM_MAX_DIMS], so[DGM_MAX_DIMS], sx[3][DGM_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0)
            return;
        if (shape[d] == 1)
            continue; /* strides of size-1 dims never matter */
        if (nd > 0) {
            /* merge with the previous kept dim if contiguous for all */
            int p = nd - 1;
            int ok = so[p] == op->so[d] * shape[d];
            for (int j = 0; j < 3 && ok; j++)
                ok = !op->x[j] || sx[j][p] == op->sx[j][d] * shape[d];
            if (ok) {
                sh[p] *= shape[d];
                so[p] = op->so[d];
                for (int j = 0; j < 3; j++)
                    sx[j][p] = op->x[j] ? op->sx[j][d] : 0;
                continue;
            }
        }
        sh[nd] = shape[d];
        so[nd] = op->so[d];
        for (int j = 0; j < 3; j++)
            sx[j][nd] = op->x[j] ? op->sx[j][d] : 0;
        nd++;
    }
    if (nd == 0) {
        sh[0] = 1;
        so[0] = 0;
        for (int j = 0; j < 3; j++)
            sx[j][0] = 0;
        nd = 1;
    }
    int64_t idx[DGM_MAX_DIMS] = {0};
    int64_t n = sh[nd - 1];
    float *o = op->o;
    const float *a = op->x[0], *b = op->x[1], *c = op->x[2];
    for (;;) {
        dgm__sinner(k, n, o, so[nd - 1], a, sx[0][nd - 1], b, sx[1][nd - 1],
                    c, sx[2][nd - 1], scale);
        int d = nd - 2;
        for (; d >= 0; d--) {
            o += so[d];
            if (a) a += sx[0][d];
            if (b) b += sx[1][d];
            if (c) c += sx[2][d];
            if (++idx[d] < sh[d])
                break;
            o -= so[d] * sh[d];
            if (a) a -= sx[0][d] * sh[d];
            if (b) b -= sx[1][d] * sh[d];
            if (c) c -= sx[2][d] * sh[d];
            idx[d] = 0;
        }
        if (d < 0)
            return;
    }
}

/* Strides of t seen from an output of rank `ndim` (right-aligned NumPy
 * broadcasting): 0 on axes t lacks or has size 1 where the output does not. */
static inline void dgm__bcast_strides(const dgm_tensor *t, int ndim,
                                      const int64_t *oshape, int64_t *st)
{
    int off = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int td = d - off;
        if (td < 0 || (t->shape[td] == 1 && oshape[d] != 1))
            st[d] = 0;
        else
            st[d] = t->strides[td];
    }
}

#endif
