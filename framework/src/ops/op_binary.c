/* op_binary.c - add, sub, mul, div with NumPy broadcasting. Inputs of any
 * strides; backward sums the gradient over the broadcast axes. The kernels
 * are the strided C loops of strided.h on both backends: oneDNN's binary
 * primitive was no faster here for these memory-bound sizes and would need
 * a contiguous copy of strided inputs plus a separate reduction backward. */
#include <stdio.h>
#include <string.h>

#include "graph_internal.h"
#include "strided.h"

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

static int binary_backward(dgm_graph *g, dgm_var *node);

static const dgm__op op_add = {DGM_OP_ADD, binary_backward};
static const dgm__op op_sub = {DGM_OP_SUB, binary_backward};
static const dgm__op op_mul = {DGM_OP_MUL, binary_backward};
static const dgm__op op_div = {DGM_OP_DIV, binary_backward};

static void contig_strides(const dgm_tensor *t, int64_t *st)
{
    dgm_contiguous_strides(t->ndim, t->shape, st);
}

/* y = a (op) b, with y contiguous [broadcast shape]. */
static dgm_var *binary(dgm_graph *g, int kind, const dgm__op *op, dgm_var *a,
                       dgm_var *b)
{
    if (!a || !b)
        return NULL;
    const dgm_tensor *ta = a->value, *tb = b->value;
    char sa[128], sb[128];
    if (ta->dtype != DGM_F32 || tb->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE, "%s: %s and %s (f32 only)",
                              dgm__op_name(op),
                              dgm_tensor_describe(ta, sa, sizeof sa),
                              dgm_tensor_describe(tb, sb, sizeof sb));
    int nd = ta->ndim > tb->ndim ? ta->ndim : tb->ndim;
    int64_t shape[DGM_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - ta->ndim), db = d - (nd - tb->ndim);
        int64_t ea = da >= 0 ? ta->shape[da] : 1;
        int64_t eb = db >= 0 ? tb->shape[db] : 1;
        if (ea != eb && ea != 1 && eb != 1)
            return dgm__fail_null(
                g, DGM_ESHAPE, "%s: shapes %s and %s do not broadcast",
                dgm__op_name(op),
                dgm_shape_str(ta->ndim, ta->shape, sa, sizeof sa),
                dgm_shape_str(tb->ndim, tb->shape, sb, sizeof sb));
        shape[d] = ea == 1 ? eb : ea;
    }
    dgm_tensor *y = dgm__alloc_uninit(g, DGM_F32, nd, shape);
    if (!y)
        return NULL;
    dgm__sop s = {.o = y->data, .x = {ta->data, tb->data, NULL}};
    contig_strides(y, s.so);
    dgm__bcast_strides(ta, nd, shape, s.sx[0]);
    dgm__bcast_strides(tb, nd, shape, s.sx[1]);
    static const dgm__skind fk[] = {DGM__S_ADD, DGM__S_SUB, DGM__S_MUL,
                                    DGM__S_DIV};
    dgm__strided(fk[kind], nd, shape, &s, 0.0f);
    dgm_var *ins[2] = {a, b};
    dgm_var *v = dgm__node(g, op, y, ins, 2);
    if (v)
        v->attr.i[0] = kind;
    return v;
}

dgm_var *dgm_add(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_ADD, &op_add, a, b);
}
dgm_var *dgm_sub(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_SUB, &op_sub, a, b);
}
dgm_var *dgm_mul(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_MUL, &op_mul, a, b);
}
dgm_var *dgm_div(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_DIV, &op_div, a, b);
}

/* Accumulate into the gradient of one input: the loop runs over the output
 * shape with the input's gradient broadcast (stride 0 where it was), which
 * sums over the broadcast axes. store: gx is uninitialised and this is
 * its first contribution: a gradient of dy's size is written with the
 * storing kind `sk`; a broadcast one is zeroed, then summed into. */
static void acc_grad(dgm__skind k, dgm__skind sk, bool store,
                     const dgm_tensor *dy, dgm_tensor *gx, const dgm_tensor *x1,
                     const dgm_tensor *x2)
{
    const int nd = dy->ndim;
    if (store && dgm_tensor_numel(gx) != dgm_tensor_numel(dy))
        memset(gx->data, 0, dgm_tensor_nbytes(gx));
    else if (store)
        k = sk;
    dgm__sop s = {.o = gx->data,
                  .x = {dy->data, x1 ? x1->data : NULL, x2 ? x2->data : NULL}};
    dgm__bcast_strides(gx, nd, dy->shape, s.so);
    contig_strides(dy, s.sx[0]);
    if (x1)
        dgm__bcast_strides(x1, nd, dy->shape, s.sx[1]);
    if (x2)
        dgm__bcast_strides(x2, nd, dy->shape, s.sx[2]);
    dgm__strided(k, nd, dy->shape, &s, 0.0f);
}

static int binary_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *a = node->in[0], *b = node->in[1];
    const dgm_tensor *dy = node->grad;
    bool sa, sb;
    dgm_tensor *ga = dgm__grad_in(g, node, 0, &sa);
    dgm_tensor *gb = dgm__grad_in(g, node, 1, &sb);
    if ((a->requires_grad && !ga) || (b->requires_grad && !gb))
        return DGM_ENOMEM;
    switch (node->attr.i[0]) {
    case BIN_ADD:
        if (ga)
            acc_grad(DGM__S_ACC, DGM__S_COPY, sa, dy, ga, NULL, NULL);
        if (gb)
            acc_grad(DGM__S_ACC, DGM__S_COPY, sb, dy, gb, NULL, NULL);
        break;
    case BIN_SUB:
        if (ga)
            acc_grad(DGM__S_ACC, DGM__S_COPY, sa, dy, ga, NULL, NULL);
        if (gb)
            acc_grad(DGM__S_ACC_NEG, DGM__S_NEG, sb, dy, gb, NULL, NULL);
        break;
    case BIN_MUL:
        if (ga)
            acc_grad(DGM__S_ACC_MUL, DGM__S_MUL, sa, dy, ga, b->value, NULL);
        if (gb)
            acc_grad(DGM__S_ACC_MUL, DGM__S_MUL, sb, dy, gb, a->value, NULL);
        break;
    case BIN_DIV:
        if (ga)
            acc_grad(DGM__S_ACC_DIV, DGM__S_DIV, sa, dy, ga, b->value, NULL);
        if (gb)
            acc_grad(DGM__S_ACC_DIVB, DGM__S_DIVB, sb, dy, gb, a->value,
                     b->value);
        break;
    }
    return 0;
}
