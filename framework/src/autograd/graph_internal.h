/* graph_internal.h - what op files share with the tape (never installed).
 *
 * An op file (op_<family>.c) holds, per op: the public constructor, a plain
 * C reference kernel, the oneDNN path, and the backward rule, e.g.
 *
 *     static int linear_backward(dgm_graph *g, dgm_var *node);
 *     static const dgm__op op_linear = {DGM_OP_LINEAR, linear_backward};
 *
 *     dgm_var *dgm_linear(dgm_graph *g, dgm_var *x, dgm_var *w, dgm_var *b)
 *     {
 *         if (!x || !w) return NULL;               // earlier error
 *         ... check shapes: return dgm__fail_null(g, DGM_ESHAPE,
 *                 "linear: x %s and w %s disagree", ...);
 *         dgm_tensor *y = dgm__alloc(g, DGM_F32, 2, shape);
 *         ... forward via dgm__use_dnnl(g) ? dnnl : reference
 *         dgm_var *ins[3] = {x, w, b};
 *         return dgm__node(g, &op_linear, y, ins, b ? 3 : 2);
 *     }
 *
 * Backward rules read node->grad (d loss / d output) and, for each input
 * with requires_grad, either add (+=) into dgm__grad_buf(g, node->in[i]),
 * which is always valid, or ask dgm__grad_in(g, node, i, &store) and
 * store (=) every element when it says this is the input's first
 * contribution in this backward pass (no zero fill, no read of the old
 * value), add otherwise.
 *
 * Every op has a line in ops.def (its id, name, file, whether it has a
 * gradient and a oneDNN path, the suite that checks it); tables indexed
 * by op id are sized DGM_OP_COUNT and guarded with a static assert.
 */
#ifndef DGM_GRAPH_INTERNAL_H
#define DGM_GRAPH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/tensor.h"

typedef enum dgm__op_id {
#define DGM_OP(id, name, file, grad, path, suite) DGM_OP_##id,
#include "ops.def"
#undef DGM_OP
    DGM_OP_COUNT
} dgm__op_id;

typedef struct dgm__op {
    dgm__op_id id;
    /* Accumulate input gradients from node->grad; 0 or DGM_E*. NULL only
     * for the NOGRAD ops of ops.def. */
    int (*backward)(dgm_graph *g, dgm_var *node);
} dgm__op;

/* Data-parallel training (host/dist.c): the graph's batch is rows
 * [off, off + n) of a global batch of `total` rows, the rest on other
 * processes. Random leaves (randn, rand_uniform, dropout masks) whose first
 * dimension is n then draw the whole global batch's values from the graph's
 * RNG and keep their own rows, so every process's RNG advances as one
 * process's would and the union of the shards is what one process draws.
 * n == total (or total 0) turns it off; dgm_graph_reset keeps it. */
void dgm__graph_set_shard(dgm_graph *g, int64_t off, int64_t n, int64_t total);
/* Take off the tape every node a backward gave a gradient (the nodes it
 * walked), keeping their values; what it did not reach stays recorded, so
 * a later backward from a new loss walks only that and the new nodes
 * (a GAN's generator forward kept from one phase into the next). */
void dgm__graph_drop_walked(dgm_graph *g);
/* fn(ctx, p) is called during dgm_backward as soon as trainable parameter
 * p's gradient is final (no node still to be walked reads p), in the same
 * order for the same graph, so a caller may start sending it while
 * backward goes on (host/dist.c). NULL: no calls. Kept across resets. */
void dgm__graph_on_grad_final(dgm_graph *g, void (*fn)(void *ctx, dgm_param *p),
                              void *ctx);
/* fn(ctx, buf, n) sums buf in place across the processes of a
 * data-parallel run (host/dist.c); set, training batch norm takes its
 * statistics, and its backward the sums of its gradient terms, over the
 * global batch (sync_bn). Every process must meet the same calls in the
 * same order. NULL: off. Kept across resets. */
void dgm__graph_on_sum(dgm_graph *g, int (*fn)(void *ctx, double *buf, int n),
                       void *ctx);
/* Is a sum hook set? Then *share: this graph's part of the global batch
 * (shard rows / global rows; 1 without a shard), the weight of its loss
 * in the global mean. */
bool dgm__graph_sums(const dgm_graph *g, double *share);
/* Sum buf across processes through the hook (0 without one). */
int dgm__graph_sum(dgm_graph *g, double *buf, int n);
/* Is a random leaf of `rows` leading rows a shard? Then *off and *total. */
bool dgm__graph_shard(const dgm_graph *g, int64_t rows, int64_t *off,
                      int64_t *total);

/* The op's name in ops.def (for messages). */
const char *dgm__op_name(const dgm__op *op);

#define DGM__MAX_SAVED 6

struct dgm_var {
    const dgm__op *op;     /* NULL for leaves */
    dgm_tensor *value;
    dgm_tensor *grad;      /* NULL until backward asks for it */
    dgm_param *param;      /* set for dgm_param_var leaves */
    bool requires_grad;
    int n_in;
    dgm_var **in;          /* n_in inputs (entries may be NULL) */
    dgm_tensor *saved[DGM__MAX_SAVED]; /* what backward needs */
    union {
        float f[8];
        int64_t i[8];
    } attr;                /* op attributes (axes, slope, ...) */
    void *ctx;             /* op-specific data in the arena */
    /* The backward pass (the graph's count) whose contributions `grad`
     * holds; any other value: grad's contents are stale or uninitialised,
     * and the next contribution stores instead of adding. Leaves and
     * parameters ignore it: they always accumulate. */
    unsigned grad_pass;
    bool grad_alias; /* grad is another node's storage (grad_alias) */
    int n_uses;      /* tape nodes reading this var (set by backward) */
};

/* A contiguous, zero-filled tensor in the graph's arena. Sets the graph
 * status and returns NULL when out of memory. */
dgm_tensor *dgm__alloc(dgm_graph *g, dgm_dtype dtype, int ndim,
                       const int64_t *shape);
/* Same, but the data is left uninitialised: for outputs a kernel writes
 * in full (saves a memset per op per step). */
dgm_tensor *dgm__alloc_uninit(dgm_graph *g, dgm_dtype dtype, int ndim,
                              const int64_t *shape);
/* A contiguous copy of t in the arena, always (NULL and the graph's status
 * set on failure: callers return NULL and the error reaches the caller of
 * the op). */
dgm_tensor *dgm__copy(dgm_graph *g, const dgm_tensor *t);
/* t itself when contiguous, else dgm__copy(g, t). */
dgm_tensor *dgm__contig(dgm_graph *g, dgm_tensor *t);
/* The graph's status, or DGM_ENOMEM if none was recorded. */
int dgm__fail_rc(const dgm_graph *g);
/* Uninitialised memory in the arena (64-byte aligned). */
void *dgm__arena_alloc(dgm_graph *g, size_t bytes);
/* A tensor struct in the arena describing a view of `base` (same storage,
 * no copy); the caller then edits shape/strides/data. */
dgm_tensor *dgm__view(dgm_graph *g, const dgm_tensor *base);

/* Make a node for an op's result. It requires grad if grad recording is
 * on and any input requires grad; then it goes on the tape and the inputs
 * array is copied into the arena. Returns NULL only when out of memory. */
dgm_var *dgm__node(dgm_graph *g, const dgm__op *op, dgm_tensor *value,
                   dgm_var *const *in, int n_in);

/* The gradient buffer of v to add (+=) into: for a parameter var the
 * parameter's own grad tensor (zero-filled first if marked fresh), for a
 * leaf its buffer (zero-filled once, then accumulating across backward
 * passes), for an op's result its buffer, zero-filled on the first
 * request of each backward pass. NULL if v needs no gradient, or out of
 * memory (the graph's status says). This is the slow path: every rule
 * that uses it is correct. */
dgm_tensor *dgm__grad_buf(dgm_graph *g, dgm_var *v);

/* The gradient buffer of node->in[i] (NULL as dgm__grad_buf), and how
 * to write it: *store true means this is the first contribution to an op
 * result's gradient in this backward pass (or to a parameter's marked
 * fresh), the buffer is uninitialised and the rule MUST store (=) every
 * element before it returns (writing a part and leaving the rest is a
 * bug: zero the rest). *store false means
 * add (+=), as into dgm__grad_buf. An input that appears twice among the
 * node's inputs (two vars of one parameter count as one), a leaf, a
 * parameter not marked fresh (below), or a graph under DGM_GRAD_ZERO=1
 * always gets add mode (zero-filled), so the order in which a rule writes
 * its inputs' gradients never matters. */
dgm_tensor *dgm__grad_in(dgm_graph *g, dgm_var *node, int i, bool *store);

/* Parameter gradients written by their first contribution too: after
 * dgm__params_grad_fresh(ps, n) the next contribution to each of these
 * gradients in any backward stores (dgm__grad_in says so; dgm__grad_buf
 * zero-fills first), later ones add, so a parameter read twice still sums
 * both. dgm__params_grad_settle zeroes those no backward reached and ends
 * it; a gradient made final during backward (dgm__graph_on_grad_final) is
 * settled before the hook sees it. The trainer's per-step zeroing. */
void dgm__params_grad_fresh(dgm_param *const *ps, int n);
void dgm__params_grad_settle(dgm_param *const *ps, int n);
void dgm__param_grad_settle(dgm_param *p);
/* p's flag (params.c). */
bool *dgm__param_fresh(dgm_param *p);

/* For the backward of a single-input op whose input gradient is exactly
 * node->grad read in row-major order with the input's shape (reshape,
 * flatten, contiguous): make the input's gradient that same storage, no
 * copy, and return true; false when it cannot, and the rule copies or
 * adds as usual. The rule: only an op result that this node alone reads
 * (n_uses 1), whose gradient nothing wrote yet in this pass, and only when
 * node->grad is contiguous. A second reader would add into the shared
 * storage and change what dgm_grad(node) shows; a leaf or parameter owns
 * its buffer across passes. */
bool dgm__grad_alias(dgm_graph *g, dgm_var *node);
/* The same for input i of any op whose gradient for that input is exactly
 * node->grad (add's, where the input is not broadcast). */
bool dgm__grad_alias_in(dgm_graph *g, dgm_var *node, int i);

/* Record the first error on the graph and set the last error; returns
 * code (or NULL for the _null form). */
int dgm__fail(dgm_graph *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *dgm__fail_null(dgm_graph *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

bool dgm__use_dnnl(const dgm_graph *g);
bool dgm__grad_enabled(const dgm_graph *g);

#endif
