/* dgm/graph.h - parameters, the tape and the differentiable ops.
 *
 * Execution is eager: each op computes its value at once and, when
 * gradients are on, records itself on the graph's tape. dgm_backward walks
 * the tape in reverse and accumulates (+=) into the gradients of every
 * variable that needs one, parameters included. A plugin writes only the
 * forward pass:
 *
 *     dgm_var *x = dgm_input(g, batch_x);                  // [N, 784]
 *     dgm_var *h = dgm_relu(g, dgm_linear(g, x, dgm_param_var(g, w1),
 *                                         dgm_param_var(g, b1)));
 *     dgm_var *loss = dgm_mean_all(g, dgm_square(g, h));
 *     if (!loss) return dgm_last_code();                   // checked once
 *     int rc = dgm_backward(g, loss);
 *
 * Errors: an op returns NULL and sets the last error (naming the op and the
 * shapes); an op given a NULL input returns NULL and leaves the message
 * alone. The first error is also kept on the graph (dgm_graph_status).
 *
 * Memory: every dgm_var and every value, gradient and saved tensor of a
 * step lives in the graph's arena; dgm_graph_reset forgets them all. A
 * steady-state step allocates nothing from the heap.
 *
 * Ownership:
 *   1. dgm_graph_new -> dgm_graph_free. dgm_params_new -> dgm_params_free,
 *      which frees every dgm_param in it.
 *   2. Vars and their tensors belong to the graph and die at reset.
 *   3. dgm_input borrows the caller's tensor: keep it alive until reset.
 */
#ifndef DGM_GRAPH_H
#define DGM_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/export.h"
#include "dgm/rng.h"
#include "dgm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ====================================================================== */
/* Parameters                                                             */
/* ====================================================================== */

typedef enum dgm_param_role {
    DGM_ROLE_WEIGHT = 0, /* trainable, gets a gradient */
    DGM_ROLE_BUFFER      /* state saved with the model, no gradient
                            (batch-norm statistics, power-iteration u) */
} dgm_param_role;

typedef struct dgm_param {
    const char *name;   /* hierarchical: "decoder.conv2.weight" */
    dgm_tensor *value;  /* persistent, contiguous */
    dgm_tensor *grad;   /* same shape; NULL for buffers */
    dgm_param_role role;
    bool frozen;        /* no gradient, no update */
    int group;          /* index into the owner's group names, -1: none */
} dgm_param;

typedef struct dgm_params dgm_params;

DGM_API dgm_params *dgm_params_new(void);
DGM_API void dgm_params_free(dgm_params *ps);
/* Create a zero-filled parameter named `name`; fails with DGM_EDUP if the
 * name exists. The returned pointer stays valid until dgm_params_free. */
DGM_API int dgm_params_add(dgm_params *ps, const char *name, dgm_param_role role,
                           int ndim, const int64_t *shape, dgm_param **out);
/* A buffer (role BUFFER) holding a copy of src, of src's dtype: data-set
 * state such as a vocabulary. */
DGM_API int dgm_params_add_copy(dgm_params *ps, const char *name,
                                const dgm_tensor *src, dgm_param **out);
DGM_API dgm_param *dgm_params_find(const dgm_params *ps, const char *name);
DGM_API int dgm_params_count(const dgm_params *ps);
DGM_API dgm_param *dgm_params_at(const dgm_params *ps, int i);
/* Set every gradient to zero. */
DGM_API void dgm_params_zero_grad(dgm_params *ps);
/* Total element count of weights (role WEIGHT), split by frozen. */
DGM_API void dgm_params_counts(const dgm_params *ps, int64_t *trainable,
                               int64_t *frozen);

/* Per-parameter named state (optimizer moments, ...): created zero-filled
 * with the parameter's shape on first use, saved in checkpoints as
 * "<prefix><param name>.<slot>". NULL only when out of memory. */
DGM_API dgm_tensor *dgm_param_slot(dgm_param *p, const char *slot);
DGM_API int dgm_param_slot_count(const dgm_param *p);
DGM_API dgm_tensor *dgm_param_slot_at(const dgm_param *p, int i,
                                      const char **slot_name);

/* Initialisers, drawing from r. fan_in/fan_out are taken from the shape
 * ([out, in, kh, kw...] for weights). */
DGM_API void dgm_init_uniform(dgm_tensor *t, dgm_rng *r, float lo, float hi);
DGM_API void dgm_init_normal(dgm_tensor *t, dgm_rng *r, float mean, float std);
/* PyTorch's default for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * for biases; kaiming_uniform(a=sqrt(5)) for weights. */
DGM_API void dgm_init_kaiming_uniform(dgm_tensor *w, dgm_rng *r, float a);
DGM_API void dgm_init_fan_in_uniform(dgm_tensor *b, dgm_rng *r,
                                     int64_t fan_in);
DGM_API void dgm_init_xavier_uniform(dgm_tensor *w, dgm_rng *r, float gain);

/* ====================================================================== */
/* The graph                                                              */
/* ====================================================================== */

typedef struct dgm_graph dgm_graph;
typedef struct dgm_var dgm_var;

/* Which kernels run. DNNL is the default; REF is the plain-C oracle the
 * tests compare against. */
typedef enum dgm_backend { DGM_BACKEND_DNNL = 0, DGM_BACKEND_REF } dgm_backend;

DGM_API dgm_graph *dgm_graph_new(void);
DGM_API void dgm_graph_free(dgm_graph *g);
/* Forget the tape and every var; keep the arena's memory. */
DGM_API void dgm_graph_reset(dgm_graph *g);
DGM_API void dgm_graph_set_backend(dgm_graph *g, dgm_backend b);
/* Training mode (dropout active, batch norm uses batch statistics and
 * updates running ones) or eval mode. Default: training. */
DGM_API void dgm_graph_set_training(dgm_graph *g, bool training);
DGM_API bool dgm_graph_training(const dgm_graph *g);
/* Gradient recording on or off (no tape, no saved tensors). Default: on.
 * Returns the previous value so callers can restore it. */
DGM_API bool dgm_graph_set_grad(dgm_graph *g, bool enabled);
/* The RNG used by dropout and the sampling ops; borrowed, may be NULL
 * (then those ops fail with DGM_ESTATE). */
DGM_API void dgm_graph_set_rng(dgm_graph *g, dgm_rng *r);
DGM_API dgm_rng *dgm_graph_rng(dgm_graph *g);
/* The first error any op on this graph hit since reset (0 if none). */
DGM_API int dgm_graph_status(const dgm_graph *g);
DGM_API dgm_arena *dgm_graph_arena(dgm_graph *g);

/* Probes: a block records an intermediate var under a static name
 * ("attention": softmax probabilities) with dgm_graph_tap, so that tools
 * looking inside a trained model (dgm explore) can read it after the
 * forward. Nothing is kept unless the probing is on (off by default, and
 * training never turns it on); reset forgets what was kept. At most
 * DGM_GRAPH_MAX_TAPS vars are kept per reset, later ones are dropped. */
#define DGM_GRAPH_MAX_TAPS 256
DGM_API void dgm_graph_tap(dgm_graph *g, const char *name, dgm_var *v);
/* Returns the previous value, as dgm_graph_set_grad. */
DGM_API bool dgm_graph_set_tapping(dgm_graph *g, bool on);
/* Whether probing is on: a block with a fused fast path that never forms
 * what it taps takes its unfused path then. */
DGM_API bool dgm_graph_tapping(const dgm_graph *g);
DGM_API int dgm_graph_tap_count(const dgm_graph *g);
/* The i-th var kept (in the order recorded) and its name. */
DGM_API dgm_var *dgm_graph_tap_at(const dgm_graph *g, int i, const char **name);

/* Run backward from a scalar (rank 0 or one element) var: seed 1 and
 * accumulate into every gradient. May be called more than once per reset
 * (gradients accumulate); saved tensors are kept until reset. */
DGM_API int dgm_backward(dgm_graph *g, dgm_var *loss);

/* ---- vars ------------------------------------------------------------ */

DGM_API dgm_tensor *dgm_value(const dgm_var *v);
/* The gradient after backward; NULL if v needs none. */
DGM_API dgm_tensor *dgm_grad(const dgm_var *v);
DGM_API bool dgm_requires_grad(const dgm_var *v);
DGM_API const char *dgm_var_op_name(const dgm_var *v);

/* A constant leaf on a borrowed tensor (data batch, targets). */
DGM_API dgm_var *dgm_input(dgm_graph *g, dgm_tensor *t);
/* A leaf that collects a gradient (tests, inputs to optimise). */
DGM_API dgm_var *dgm_leaf(dgm_graph *g, dgm_tensor *t, bool requires_grad);
/* A parameter on the tape: its value is used in place and backward adds
 * into p->grad (unless frozen, a buffer, or grad is off). */
DGM_API dgm_var *dgm_param_var(dgm_graph *g, dgm_param *p);
/* Same value, no gradient flows back through it. */
DGM_API dgm_var *dgm_detach(dgm_graph *g, dgm_var *x);
/* An arena tensor filled with a constant, as a constant leaf. */
DGM_API dgm_var *dgm_constant(dgm_graph *g, int ndim, const int64_t *shape,
                              float value);

/* ====================================================================== */
/* Ops. Shapes are given row-major; N is the batch.                       */
/* ====================================================================== */

/* ---- dense ------------------------------------------------------------ */

/* x [N, in], w [out, in], b [out] or NULL -> [N, out]. x of higher rank
 * is treated as [prod(leading), in]. */
DGM_API dgm_var *dgm_linear(dgm_graph *g, dgm_var *x, dgm_var *w, dgm_var *b);
/* gelu(linear(x, w, b)) (erf form) as one op: the GELU is applied in the
 * pass after the GEMM, and backward computes d gelu from the saved
 * pre-activation together with the bias gradient in one pass. Same
 * shapes as dgm_linear; the values agree with the composition to float
 * rounding (erf by a fit within 1.2e-7 relative of erfc). */
DGM_API dgm_var *dgm_linear_gelu(dgm_graph *g, dgm_var *x, dgm_var *w,
                                 dgm_var *b);
/* a [..., M, K] (or [..., K, M] if trans_a), b [..., K, P] (or [..., P, K])
 * -> [..., M, P]; leading (batch) dims equal, or one side has none. */
DGM_API dgm_var *dgm_matmul(dgm_graph *g, dgm_var *a, dgm_var *b, bool trans_a,
                            bool trans_b);

/* ---- convolution ----------------------------------------------------- */

typedef struct dgm_conv_params {
    int stride[2];
    int pad[2];
    int dilation[2];     /* 1 = dense */
    int groups;          /* 1 = dense */
    int output_pad[2];   /* conv_transpose only */
} dgm_conv_params;

/* x [N, C, H, W], w [OC, C/groups, KH, KW], b [OC] or NULL. */
DGM_API dgm_var *dgm_conv2d(dgm_graph *g, dgm_var *x, dgm_var *w, dgm_var *b,
                            const dgm_conv_params *p);
/* x [N, C, H, W], w [C, OC/groups, KH, KW] (PyTorch's layout), b [OC]. */
DGM_API dgm_var *dgm_conv_transpose2d(dgm_graph *g, dgm_var *x, dgm_var *w,
                                      dgm_var *b, const dgm_conv_params *p);

/* ---- normalisation --------------------------------------------------- */

/* x [N, C, ...]; gamma, beta [C] (may be NULL); running_mean/var buffers of
 * [C] updated with `momentum` in training mode, used in eval mode. */
DGM_API dgm_var *dgm_batch_norm(dgm_graph *g, dgm_var *x, dgm_var *gamma,
                                dgm_var *beta, dgm_param *running_mean,
                                dgm_param *running_var, float momentum,
                                float eps);
/* Normalise over the last dimension; gamma, beta [D] (may be NULL). */
DGM_API dgm_var *dgm_layer_norm(dgm_graph *g, dgm_var *x, dgm_var *gamma,
                                dgm_var *beta, float eps);

/* ---- elementwise ----------------------------------------------------- */

DGM_API dgm_var *dgm_relu(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_leaky_relu(dgm_graph *g, dgm_var *x, float slope);
DGM_API dgm_var *dgm_elu(dgm_graph *g, dgm_var *x, float alpha);
DGM_API dgm_var *dgm_gelu(dgm_graph *g, dgm_var *x); /* erf form */
DGM_API dgm_var *dgm_tanh(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_sigmoid(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_softplus(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_exp(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_log(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_sqrt(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_square(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_abs(dgm_graph *g, dgm_var *x);
/* min(max(x, lo), hi); the gradient passes where lo <= x <= hi (closed,
 * as PyTorch's), 0 elsewhere. lo > hi is refused (DGM_EINVAL). */
DGM_API dgm_var *dgm_clamp(dgm_graph *g, dgm_var *x, float lo, float hi);
/* alpha * x + beta */
DGM_API dgm_var *dgm_affine(dgm_graph *g, dgm_var *x, float alpha, float beta);
DGM_API dgm_var *dgm_neg(dgm_graph *g, dgm_var *x);

/* An activation chosen by name, for blocks whose YAML picks one:
 * DGM_ACTIVATIONS lists the names ("none" is the identity); slope is
 * leaky_relu's. An unknown name fails with DGM_EINVAL. */
#define DGM_ACTIVATIONS "relu|leaky_relu|elu|gelu|tanh|sigmoid|softplus|none"
DGM_API dgm_var *dgm_activation(dgm_graph *g, dgm_var *x, const char *name,
                                float slope);

/* ---- binary, NumPy broadcasting -------------------------------------- */

DGM_API dgm_var *dgm_add(dgm_graph *g, dgm_var *a, dgm_var *b);
DGM_API dgm_var *dgm_sub(dgm_graph *g, dgm_var *a, dgm_var *b);
DGM_API dgm_var *dgm_mul(dgm_graph *g, dgm_var *a, dgm_var *b);
DGM_API dgm_var *dgm_div(dgm_graph *g, dgm_var *a, dgm_var *b);

/* ---- reductions ------------------------------------------------------ */

/* Reduce over the axes whose bit is set in axis_mask (bit i = axis i). */
DGM_API dgm_var *dgm_sum(dgm_graph *g, dgm_var *x, uint32_t axis_mask,
                         bool keepdim);
DGM_API dgm_var *dgm_mean(dgm_graph *g, dgm_var *x, uint32_t axis_mask,
                          bool keepdim);
/* Over every element, to a rank-0 scalar. */
DGM_API dgm_var *dgm_sum_all(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_mean_all(dgm_graph *g, dgm_var *x);
/* log(sum(exp(x))) over one axis, stable; the axis is removed. */
DGM_API dgm_var *dgm_logsumexp(dgm_graph *g, dgm_var *x, int axis);

DGM_API dgm_var *dgm_softmax(dgm_graph *g, dgm_var *x, int axis);
DGM_API dgm_var *dgm_log_softmax(dgm_graph *g, dgm_var *x, int axis);

/* Scaled dot-product attention as one op: q, k, v [..., T, d] (same
 * shape) -> softmax(scale * q k^T, masked to keys j <= query i when
 * causal) v, [..., T, d]. Equal to the composition of matmul, a mask,
 * softmax and matmul, without its [..., T, T] tensors: the backward
 * recomputes the weights from the per-row log-sum-exp. */
DGM_API dgm_var *dgm_attention(dgm_graph *g, dgm_var *q, dgm_var *k, dgm_var *v,
                               float scale, bool causal);
/* Multi-head attention from a packed projection (ABI 2.4): qkv
 * [N, T, 3D], each token's row q | k | v, each of `heads` heads of
 * d = D / heads channels -> [N, T, D], the heads' outputs side by side
 * (what an output projection reads). Equal to splitting q, k and v into
 * heads [N, heads, T, d], dgm_attention on them, and merging the heads
 * back, without those nodes in the graph; the probabilities [N, heads, T, T]
 * are kept for the backward (dgm_attention keeps no [T, T] tensor: use
 * it when that memory matters). heads must divide D. */
DGM_API dgm_var *dgm_attention_packed(dgm_graph *g, dgm_var *qkv, int heads,
                                      float scale, bool causal);

/* ---- pooling and resampling ------------------------------------------ */

DGM_API dgm_var *dgm_max_pool2d(dgm_graph *g, dgm_var *x, int kernel,
                                int stride, int pad);
DGM_API dgm_var *dgm_avg_pool2d(dgm_graph *g, dgm_var *x, int kernel,
                                int stride, int pad);
DGM_API dgm_var *dgm_upsample_nearest2d(dgm_graph *g, dgm_var *x, int scale);

/* ---- shape ----------------------------------------------------------- */

/* One dim may be -1 (inferred). Views when x is contiguous. */
DGM_API dgm_var *dgm_reshape(dgm_graph *g, dgm_var *x, int ndim,
                             const int64_t *shape);
/* [N, ...] -> [N, prod(...)] */
DGM_API dgm_var *dgm_flatten(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_permute(dgm_graph *g, dgm_var *x, const int *perm);
DGM_API dgm_var *dgm_transpose(dgm_graph *g, dgm_var *x, int a, int b);
DGM_API dgm_var *dgm_contiguous(dgm_graph *g, dgm_var *x);
DGM_API dgm_var *dgm_concat(dgm_graph *g, dgm_var *const *xs, int n, int axis);
DGM_API dgm_var *dgm_slice(dgm_graph *g, dgm_var *x, int axis, int64_t start,
                           int64_t stop, int64_t step);

/* ---- lookup, regularisation, sampling -------------------------------- */

/* weight [V, D], idx of any shape S (i32 or i64 values in [0, V)) ->
 * S + [D]. Out-of-range indices are an error naming the index. */
DGM_API dgm_var *dgm_embedding(dgm_graph *g, dgm_var *weight, dgm_var *idx);
/* Inverted dropout with the graph's RNG; identity in eval mode. */
DGM_API dgm_var *dgm_dropout(dgm_graph *g, dgm_var *x, float p);
/* Constant leaves drawn from the graph's RNG. */
DGM_API dgm_var *dgm_randn(dgm_graph *g, int ndim, const int64_t *shape);
DGM_API dgm_var *dgm_rand_uniform(dgm_graph *g, int ndim,
                                  const int64_t *shape, float lo, float hi);

/* ---- losses (elementwise; reduce with dgm_sum / dgm_mean) ------------ */

/* max(l,0) - l*t + log(1 + exp(-|l|)), same shape as logits. */
DGM_API dgm_var *dgm_bce_with_logits(dgm_graph *g, dgm_var *logits,
                                     dgm_var *target);
/* logits [..., C], target class indices [...] (i32/i64) -> [...]:
 * -log_softmax(logits)[target]. */
DGM_API dgm_var *dgm_cross_entropy(dgm_graph *g, dgm_var *logits,
                                   dgm_var *target);

/* ---- recurrent ------------------------------------------------------- */

typedef enum dgm_rnn_cell { DGM_RNN_LSTM = 0, DGM_RNN_GRU } dgm_rnn_cell;

/* The most stacked layers one RNN may have: dgm_rnn refuses more, and
 * dgm_rnn_params (plugin.h) holds this many per weight array. */
#define DGM_RNN_MAX_LAYERS 16

/* Weights of a multi-layer unidirectional RNN, PyTorch's layout per layer
 * l: w_ih[l] [G*H, in_l], w_hh[l] [G*H, H], b_ih[l], b_hh[l] [G*H], with
 * G = 4 (gates i, f, g, o) for LSTM and 3 (r, z, n) for GRU. */
typedef struct dgm_rnn_weights {
    dgm_rnn_cell cell;
    int layers;
    int64_t hidden;
    dgm_var **w_ih, **w_hh, **b_ih, **b_hh; /* arrays of `layers` */
} dgm_rnn_weights;

/* x [T, N, I]; h0, c0 [L, N, H] or NULL (zeros; c0 ignored for GRU).
 * Returns y [T, N, H]; *h_n / *c_n (if not NULL) receive [L, N, H]. */
DGM_API dgm_var *dgm_rnn(dgm_graph *g, dgm_var *x, const dgm_rnn_weights *w,
                         dgm_var *h0, dgm_var *c0, dgm_var **h_n,
                         dgm_var **c_n);

/* ====================================================================== */
/* Threads                                                                */
/* ====================================================================== */

/* Threads used by the kernels (OpenMP); n <= 0 means all cores. Process-
 * wide (OpenMP's own setting): the host sets it from an experiment's
 * `threads:`; plugins leave it alone (dgm/plugin.h, "Threads"). */
DGM_API void dgm_set_threads(int n);
/* The thread count in effect: the process's, set by the top-level
 * experiment (a teacher or a run opened inside it leaves it alone). */
DGM_API int dgm_threads(void);

#ifdef __cplusplus
}
#endif
#endif
