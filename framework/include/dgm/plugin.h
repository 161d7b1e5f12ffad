/* dgm/plugin.h - the plugin ABI: descriptors, kinds and their interfaces.
 *
 * A plugin is a shared object exporting one function, dgm_plugin_query,
 * which returns descriptors by index until NULL, so one file may carry
 * several plugins. Everything else in the file is static.
 *
 *     static const dgm_param_spec params[] = {
 *         DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
 *                         .help = "negative slope"),
 *         DGM_PARAM_END,
 *     };
 *     static const dgm_block_iface iface = {.create = create,
 *                                           .forward = forward,
 *                                           .destroy = destroy};
 *     static const dgm_plugin_desc desc = {
 *         DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&iface), .name = "leaky",
 *         .version = "1.0", .summary = "leaky ReLU", .params = params};
 *     DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
 *     {
 *         return i == 0 ? &desc : NULL;
 *     }
 *
 * Rules (the host relies on them):
 *   1. The host checks abi_major == DGM_ABI_MAJOR, abi_minor <= the host's
 *      and size before reading anything else, and refuses the file with a
 *      message naming it and both versions otherwise; then every field of
 *      `layout` (the layout constants the plugin was compiled with), naming
 *      the constant and both values.
 *   2. Descriptors and everything they point to are static: the host never
 *      frees what a plugin returns.
 *   3. The config a create() receives is validated against `params` with
 *      defaults filled in; it stays valid until destroy().
 *   4. create() returns 0 and sets *self, or a DGM_E* code with a message
 *      (dgm_error / dgm_cfg_error); the host prefixes the plugin's name.
 *      destroy(self) frees what create made; the host calls it once.
 *   5. Optional interface slots may be NULL.
 *   6. Interfaces grow at their end, in a new minor ABI; a slot added so
 *      is marked "(ABI 2.x)" and is optional. The host reads a slot only
 *      when it lies within the descriptor's iface_size (so a plugin built
 *      against an older minor lacks it, as if NULL) and never needs
 *      reserved pointers to run out of.
 *   7. The host reads some keys of a plugin's map itself (`plugin` for
 *      every kind; an optimizer's schedule keys; a loss term's `loss`,
 *      `inputs`, `weight`, `mask`, `name`; a dataset's `prefetch`): a
 *      schema declaring one of them is refused at load. An optimizer must
 *      declare `lr` (DGM_P_FLOAT), the base rate the host's schedule
 *      scales.
 *   8. Lifetimes: a plugin's `self` is its own from create() until the
 *      host calls destroy() once (never while another of its slots runs);
 *      what create() receives (cfg, data info, the build) is valid during
 *      the call only, except cfg (rule 3). Vars, steps, batches and
 *      dgm_vars maps a slot receives belong to the host and live for that
 *      call or step: keep none of them. Parameters made with
 *      dgm_build_param live as long as the model; dgm_param_slot state
 *      too. Strings the host returns (names, dgm_last_error()) are
 *      borrowed and valid until the next call that changes them.
 *
 * Threads (what is process-wide, and what a plugin may do):
 *   - The host calls every slot of every plugin from one thread, the one
 *     that loaded the experiment, with one exception: while training, a
 *     dataset's get (training split) and an augment's apply may run on
 *     the host's loader thread (data.prefetch > 0), one call at a time
 *     and never while another slot of the same plugin runs. A plugin
 *     needs no locks for its own state. Parallelism is inside ops: the kernels use OpenMP, and the
 *     oneDNN CPU engine, its single stream and the primitive cache are
 *     process-wide, created once (thread-safely) on first use and freed
 *     at exit.
 *   - dgm_set_threads sets OpenMP's thread count for the whole process;
 *     the host calls it from an experiment's `threads:`; a plugin must not.
 *   - A plugin may run its own `#pragma omp parallel` loops over plain
 *     memory (as the in-tree ones do), but may not call dgm_* functions
 *     that record on a graph, touch a dgm_params or set a dgm_vars from
 *     inside them: graphs, tapes, arenas, parameter sets and RNGs are not
 *     thread-safe. dgm_error / dgm_last_error are per thread.
 *   - The registry (load, scan, find) is not thread-safe either; the host
 *     builds it before training and only reads it afterwards.
 */
#ifndef DGM_PLUGIN_H
#define DGM_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/config.h"
#include "dgm/error.h"
#include "dgm/export.h"
#include "dgm/graph.h"
#include "dgm/rng.h"
#include "dgm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version (docs/writing-plugins.md, "ABI versions", states when
 * each number moves): major when a plugin built against the old headers can
 * no longer load, minor when something is added that an older plugin
 * simply lacks. */
#define DGM_ABI_MAJOR 2
#define DGM_ABI_MINOR 5

#define DGM_PLUGIN_EXPORT __attribute__((visibility("default")))
#define DGM_PLUGIN_QUERY_SYMBOL "dgm_plugin_query"

typedef enum dgm_kind {
    DGM_KIND_DATASET = 1,
    DGM_KIND_AUGMENT,
    DGM_KIND_BLOCK,
    DGM_KIND_MODEL,
    DGM_KIND_LOSS,
    DGM_KIND_OPTIMIZER,
    DGM_KIND_METRIC,
    DGM_KIND_COUNT_ /* one past the last */
} dgm_kind;

/* "dataset", "block", ...; NULL for an unknown value. */
DGM_API const char *dgm_kind_name(dgm_kind k);
/* The keys the host reads from a map of kind k besides its plugin's
 * parameters (a metric's "corrupt" and "generalization_gap", an
 * optimizer's "schedule", ...), NULL-ended; a schema may not declare
 * them. Static: never freed. */
DGM_API const char *const *dgm_host_keys(dgm_kind k);

typedef struct dgm_dataset_iface dgm_dataset_iface;
typedef struct dgm_augment_iface dgm_augment_iface;
typedef struct dgm_block_iface dgm_block_iface;
typedef struct dgm_model_iface dgm_model_iface;
typedef struct dgm_loss_iface dgm_loss_iface;
typedef struct dgm_optimizer_iface dgm_optimizer_iface;
typedef struct dgm_metric_iface dgm_metric_iface;

/* The build values that public structs embed, as the plugin saw them: a
 * plugin built with another DGM_MAX_DIMS (or a dgm_tensor of another size)
 * would read and write the host's structs at the wrong offsets, so the
 * host compares every field and refuses a file that differs in one, naming
 * the constant and both values. DGM_PLUGIN_HEADER fills it. */
typedef struct dgm_abi_layout {
    uint32_t size;           /* sizeof(dgm_abi_layout) */
    uint32_t max_dims;       /* DGM_MAX_DIMS */
    uint32_t rnn_max_layers; /* DGM_RNN_MAX_LAYERS */
    /* sizeof each public struct a plugin shares with the host */
    uint32_t tensor, shape, step, batch, data_info, param_spec, phase_desc,
        generate_opts, bn_params, sn_params, rnn_params;
} dgm_abi_layout;

/* The layout this build has; DGM__ABI_LAYOUT_DIMS(n) claims DGM_MAX_DIMS n
 * instead (for the tests that check a plugin built so is refused). */
#define DGM_ABI_LAYOUT DGM__ABI_LAYOUT_DIMS(DGM_MAX_DIMS)
#define DGM__ABI_LAYOUT_DIMS(max_dims_)                                    \
    {.size = sizeof(dgm_abi_layout),                                       \
     .max_dims = (max_dims_),                                              \
     .rnn_max_layers = DGM_RNN_MAX_LAYERS,                                 \
     .tensor = sizeof(dgm_tensor),                                         \
     .shape = sizeof(dgm_shape),                                           \
     .step = sizeof(dgm_step),                                             \
     .batch = sizeof(dgm_batch),                                           \
     .data_info = sizeof(dgm_data_info),                                   \
     .param_spec = sizeof(dgm_param_spec),                                 \
     .phase_desc = sizeof(dgm_phase_desc),                                 \
     .generate_opts = sizeof(dgm_generate_opts),                           \
     .bn_params = sizeof(dgm_bn_params),                                   \
     .sn_params = sizeof(dgm_sn_params),                                   \
     .rnn_params = sizeof(dgm_rnn_params)}

typedef struct dgm_plugin_desc {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t size; /* sizeof(dgm_plugin_desc) as the plugin was built */
    dgm_abi_layout layout; /* (ABI 2.0) */
    dgm_kind kind;
    const char *name;    /* unique among loaded plugins */
    const char *version; /* the plugin's own version */
    const char *summary; /* one line */
    const dgm_param_spec *params; /* ends with DGM_PARAM_END; may be NULL */
    /* The kind's interface struct (below), typed: set both fields with the
     * kind's macro, DGM_PLUGIN_BLOCK(&iface) and so on, which also sets
     * `kind`, so a model's interface cannot be given as a block's. */
    union {
        const dgm_dataset_iface *dataset;
        const dgm_augment_iface *augment;
        const dgm_block_iface *block;
        const dgm_model_iface *model;
        const dgm_loss_iface *loss;
        const dgm_optimizer_iface *optimizer;
        const dgm_metric_iface *metric;
        const void *any; /* for the host's NULL test */
    } iface;
    /* sizeof the interface struct as the plugin was built: an interface
     * grows at its end in a new minor ABI, and the host reads a slot only
     * if it lies within iface_size (an older plugin simply lacks it). */
    uint32_t iface_size;
} dgm_plugin_desc;

/* The end of slot `slot` of interface struct `type`, and whether
 * descriptor `desc`'s interface has it: the slot lies within the
 * iface_size the plugin was built with. A tool reading a slot added in a
 * later minor ABI tests DGM_PLUGIN_HAS_SLOT first. */
#define DGM_PLUGIN_SLOT_END(type, slot)                                        \
    (offsetof(type, slot) + sizeof(((type *)0)->slot))
#define DGM_PLUGIN_HAS_SLOT(desc, type, slot)                                  \
    ((desc)->iface_size >= DGM_PLUGIN_SLOT_END(type, slot))

/* kind, iface and iface_size of a descriptor, type-checked: the pointer
 * must be to that kind's interface struct. */
#define DGM__PLUGIN_KIND(k, member, p)                                         \
    .kind = (k), .iface = {.member = (p)}, .iface_size = sizeof *(p)
#define DGM_PLUGIN_DATASET(p) DGM__PLUGIN_KIND(DGM_KIND_DATASET, dataset, p)
#define DGM_PLUGIN_AUGMENT(p) DGM__PLUGIN_KIND(DGM_KIND_AUGMENT, augment, p)
#define DGM_PLUGIN_BLOCK(p) DGM__PLUGIN_KIND(DGM_KIND_BLOCK, block, p)
#define DGM_PLUGIN_MODEL(p) DGM__PLUGIN_KIND(DGM_KIND_MODEL, model, p)
#define DGM_PLUGIN_LOSS(p) DGM__PLUGIN_KIND(DGM_KIND_LOSS, loss, p)
#define DGM_PLUGIN_OPTIMIZER(p)                                                \
    DGM__PLUGIN_KIND(DGM_KIND_OPTIMIZER, optimizer, p)
#define DGM_PLUGIN_METRIC(p) DGM__PLUGIN_KIND(DGM_KIND_METRIC, metric, p)

#define DGM_PLUGIN_HEADER                                                  \
    .abi_major = DGM_ABI_MAJOR, .abi_minor = DGM_ABI_MINOR,                \
    .size = sizeof(dgm_plugin_desc), .layout = DGM_ABI_LAYOUT

typedef const dgm_plugin_desc *(*dgm_plugin_query_fn)(uint32_t index);

/* DGM_PLUGIN_NAME(leaky); beside a descriptor named "leaky" lists the name
 * in the file's `.dgm_plugins` ELF section, which the host reads without
 * loading the file: `dgm run` then dlopens only the files that provide a
 * name the experiment uses (a stray library's constructors never run).
 * List every descriptor's name (the host refuses a file that returns a
 * name it does not list); a file without the section still works, but is
 * loaded at every start. The name is an identifier here ([a-z0-9_]). */
#define DGM_PLUGIN_NAME(name)                                                  \
    __attribute__((section(".dgm_plugins"), used,                              \
                   aligned(1))) static const char dgm__plugin_name_##name[] =  \
        #name

/* ====================================================================== */
/* Shared types                                                           */
/* ====================================================================== */

typedef enum dgm_split {
    DGM_SPLIT_TRAIN = 0,
    DGM_SPLIT_TEST, /* the held-out split: test or validation */
    DGM_SPLIT_COUNT
} dgm_split;

/* What a dataset holds. Shapes are per example (no batch dimension). */
typedef struct dgm_data_info {
    dgm_shape x_shape;
    dgm_dtype x_dtype;
    bool has_y;
    dgm_shape y_shape; /* rank 0 for one class label per example */
    dgm_dtype y_dtype;
    int64_t n_classes; /* classes, or vocabulary size; 0 if none */
    int64_t size[DGM_SPLIT_COUNT];
    float x_min, x_max; /* value range of x, for images */
} dgm_data_info;

/* A batch the host allocates (x [n, x_shape], y [n, y_shape] or NULL,
 * y_mask [n] f32 or NULL) and a dataset fills. */
typedef struct dgm_batch {
    int64_t n;
    dgm_tensor *x;
    dgm_tensor *y;
    dgm_tensor *y_mask; /* 1 where the label may be used, else 0 */
} dgm_batch;

/* A small name -> var map: a model's inputs and outputs for one step.
 * The host owns it; it lives for one step (one forward, sample or eval
 * batch) and so do the vars in it (they belong to the step's graph).
 * dgm_vars_set copies `name` (at most DGM_VAR_NAME_MAX - 1 bytes; longer
 * is DGM_ERANGE), so a caller may pass a buffer it reuses; setting a name
 * again replaces its var. Names returned by dgm_vars_name_at are valid
 * until the map is next changed or the step ends. */
#define DGM_VAR_NAME_MAX 64
typedef struct dgm_vars dgm_vars;
/* Set `name` to v (replacing an earlier v of that name). The name is
 * copied: the caller's string need not outlive the call. At most 48
 * names of at most 63 bytes each: else DGM_ERANGE. */
DGM_API int dgm_vars_set(dgm_vars *vs, const char *name, dgm_var *v);
/* NULL if absent (no error is set). */
DGM_API dgm_var *dgm_vars_get(const dgm_vars *vs, const char *name);
DGM_API int dgm_vars_count(const dgm_vars *vs);
/* The i-th name (owned by vs, valid while vs holds it), NULL past the
 * last. */
DGM_API const char *dgm_vars_name_at(const dgm_vars *vs, int i);

/* One step's context for a model: graph, RNG, whether training. */
typedef struct dgm_step {
    dgm_graph *g;
    dgm_rng *rng;
    int64_t step;  /* optimizer steps done so far */
    bool training;
    void *host_;   /* the host's; do not touch */
} dgm_step;

/* Apply the experiment's differentiable augmentations to x (identity if
 * there are none). Models call it where augmentation belongs, e.g. on
 * every discriminator input. */
DGM_API dgm_var *dgm_step_augment(dgm_step *s, dgm_var *x);

/* ====================================================================== */
/* Building models from blocks                                            */
/* ====================================================================== */

typedef struct dgm_build dgm_build;
typedef struct dgm_block dgm_block;

/* Create a parameter "<scope>.<name>" in the model being built. */
DGM_API int dgm_build_param(dgm_build *b, const char *name,
                            dgm_param_role role, int ndim,
                            const int64_t *shape, dgm_param **out);
/* A layer's weight "<scope>.<name>.weight" of `shape`, initialised as
 * PyTorch's nn.Linear / nn.Conv*d (kaiming_uniform with a = sqrt(5), fan_in
 * = shape[1] * prod(shape[2:])), and when bias_len > 0 its bias
 * "<name>.bias" [bias_len] from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 * bias may be NULL when bias_len is 0. */
DGM_API int dgm_build_weights(dgm_build *b, const char *name, int ndim,
                              const int64_t *shape, int64_t bias_len,
                              dgm_param **weight, dgm_param **bias);

/* A batch-norm layer over c channels, PyTorch's parameter names:
 * "<name>.weight" (ones), "<name>.bias" (zeros) and the buffers
 * "<name>.running_mean" (zeros), "<name>.running_var" (ones). */
typedef struct dgm_bn_params {
    dgm_param *weight, *bias, *running_mean, *running_var;
} dgm_bn_params;
DGM_API int dgm_build_batch_norm(dgm_build *b, const char *name, int64_t c,
                                 dgm_bn_params *out);
/* Apply it with PyTorch's defaults (momentum 0.1, eps 1e-5). */
DGM_API dgm_var *dgm_bn_forward(dgm_graph *g, const dgm_bn_params *p,
                                dgm_var *x);

/* A layer-norm layer over the last d features, PyTorch's names and
 * initial values: "<name>.weight" [d] (ones), "<name>.bias" [d] (zeros);
 * apply with dgm_layer_norm. */
DGM_API int dgm_build_layer_norm(dgm_build *b, const char *name, int64_t d,
                                 dgm_param **weight, dgm_param **bias);
/* An embedding table "<name>" [n, dim] drawn from N(0, std^2) with the
 * build RNG (nn.Embedding: std 1); apply with dgm_embedding. */
DGM_API int dgm_build_embedding(dgm_build *b, const char *name, int64_t n,
                                int64_t dim, float std, dgm_param **out);

/* Spectral normalisation of a weight (torch.nn.utils.spectral_norm): the
 * weight is viewed as a matrix W [rows, cols] with rows = shape[dim]
 * (dim 0 for Linear/Conv, 1 for ConvTranspose, PyTorch's choices) and
 * cols the product of the other dims; the layer uses W / sigma, sigma
 * estimated by power iteration on the buffers "<name>.weight_u" [rows]
 * and "<name>.weight_v" [cols] (PyTorch's names; drawn from N(0, 1) with
 * the build RNG and normalised), which checkpoint with the model. */
typedef struct dgm_sn_params {
    dgm_param *u, *v;
    int dim;     /* 0 or 1 */
    int n_power; /* power iterations per training forward; default 1 */
    float eps;   /* floor of the norms; default 1e-12 */
} dgm_sn_params;
DGM_API int dgm_build_spectral_norm(dgm_build *b, const char *name,
                                    const dgm_param *weight, int dim,
                                    dgm_sn_params *out);
/* w / sigma with sigma = u^T W v. In training mode n_power iterations
 * (v = W^T u / |W^T u|, u = W v / |W v|) first update u and v in place,
 * without gradient; in eval mode the stored u, v are used as they are.
 * The gradient flows through W in both places, u and v held constant, as
 * in PyTorch. w is the weight's var (normally dgm_param_var). */
DGM_API dgm_var *dgm_sn_weight(dgm_graph *g, const dgm_sn_params *p,
                               dgm_var *w);

/* A multi-layer LSTM or GRU's weights with PyTorch's names and init:
 * "<name>.weight_ih_l<k>" [G*H, in_k], "<name>.weight_hh_l<k>" [G*H, H],
 * "<name>.bias_ih_l<k>", "<name>.bias_hh_l<k>" [G*H], all drawn from
 * U(-1/sqrt(H), 1/sqrt(H)), so an nn.LSTM state_dict maps name for name.
 * At most DGM_RNN_MAX_LAYERS layers (graph.h: the op's limit too). */
typedef struct dgm_rnn_params {
    dgm_rnn_cell cell;
    int layers;
    int64_t input, hidden;
    dgm_param *w_ih[DGM_RNN_MAX_LAYERS], *w_hh[DGM_RNN_MAX_LAYERS];
    dgm_param *b_ih[DGM_RNN_MAX_LAYERS], *b_hh[DGM_RNN_MAX_LAYERS];
} dgm_rnn_params;
DGM_API int dgm_build_rnn(dgm_build *b, const char *name, dgm_rnn_cell cell,
                          int layers, int64_t input, int64_t hidden,
                          dgm_rnn_params *out);
/* Run it: x [T, N, in] -> [T, N, H], with inverted dropout of probability
 * `dropout` between layers (training mode only; the layers then run one
 * by one). h0, c0 [L, N, H] or NULL; *h_n, *c_n (if not NULL) receive the
 * final states [L, N, H]. */
DGM_API dgm_var *dgm_rnn_forward(dgm_graph *g, const dgm_rnn_params *p,
                                 dgm_var *x, float dropout, dgm_var *h0,
                                 dgm_var *c0, dgm_var **h_n, dgm_var **c_n);

/* The RNG for initialisation (seeded from the experiment). */
DGM_API dgm_rng *dgm_build_rng(dgm_build *b);
/* Every parameter created so far in the model being built (all scopes),
 * for models that keep per-parameter state over their blocks' weights
 * (EMA copies, weight clipping): borrowed; the dgm_param pointers stay
 * valid as long as the model. */
DGM_API const dgm_params *dgm_build_params(const dgm_build *b);
/* Create the block plugin named by cfg's `plugin:` under scope
 * "<current scope>.<scope>". `in` is the per-example input shape; `out`
 * holds the requested output shape (ndim 0: the block chooses) and
 * receives the actual one. The host owns the block and destroys it with
 * the model. */
DGM_API int dgm_block_create(dgm_build *b, const dgm_config *cfg,
                             const char *scope, const dgm_shape *in,
                             dgm_shape *out, dgm_block **blk);
DGM_API dgm_var *dgm_block_forward(dgm_block *blk, dgm_graph *g, dgm_var *x);

/* ====================================================================== */
/* Kind interfaces                                                        */
/* ====================================================================== */

/* Every kind's interface has an optional slot
 *
 *     int (*check)(const dgm_config *cfg);
 *
 * that checks a validated cfg (defaults filled in) for what the schema
 * cannot say (one value against another, lr > 0), without side effects:
 * no files read, nothing kept, no data needed. The host calls it when an
 * experiment is loaded, so `dgm config` and `dgm sweep --dry-run` refuse
 * what create() would refuse. It returns 0, or a DGM_E* code with a
 * message (dgm_cfg_error); create() should make the same checks (call the
 * same function). */

typedef struct dgm_dataset_iface {
    int (*create)(void **self, const dgm_config *cfg);
    int (*info)(void *self, dgm_data_info *out);
    /* Fill batch with examples idx[0..batch->n) of split; per-example
     * randomness (binarisation, random windows) draws from rng. */
    int (*get)(void *self, dgm_split split, const int64_t *idx,
               dgm_batch *batch, dgm_rng *rng);
    void (*destroy)(void *self);
    /* Optional: state derived from the files that a checkpoint
     * must keep so a run is rebuilt with it (a vocabulary). save_state adds
     * tensors to `state` with dgm_params_add (role BUFFER); the host saves
     * them as "data.<name>". load_state receives them back when a run is
     * resumed, sampled or evaluated, and refuses a mismatch with its data
     * (DGM_ESTATE and a message naming both). */
    int (*save_state)(void *self, dgm_params *state);
    int (*load_state)(void *self, const dgm_params *state);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
} dgm_dataset_iface;

typedef struct dgm_augment_iface {
    int (*create)(void **self, const dgm_config *cfg,
                  const dgm_data_info *data);
    /* In-place on a data batch x [n, ...]; NULL if differentiable only. */
    int (*apply)(void *self, dgm_tensor *x, dgm_rng *rng);
    /* On the graph (differentiable); NULL if not. */
    dgm_var *(*forward)(void *self, dgm_graph *g, dgm_var *x, dgm_rng *rng);
    void (*destroy)(void *self);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
} dgm_augment_iface;

typedef struct dgm_block_iface {
    int (*create)(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out);
    /* x [N, in...] -> [N, out...], out as create reported it (the host
     * checks, for x of the shape create was given). */
    dgm_var *(*forward)(void *self, dgm_graph *g, dgm_var *x);
    void (*destroy)(void *self);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
} dgm_block_iface;

/* A training phase: its parameters and default objective. */
typedef struct dgm_phase_desc {
    const char *name;      /* "train", "discriminator", ... */
    const char *params;    /* space-separated globs: "generator.*" */
    const char *objective; /* default objective, YAML flow text */
    int repeat;            /* default updates per step (n_critic) */
} dgm_phase_desc;

/* How generate() draws each token. */
typedef struct dgm_generate_opts {
    float temperature; /* > 0; logits are divided by it */
    int top_k;         /* 0: all tokens; else the k most likely only */
} dgm_generate_opts;

/* Draw one token id from logits[0..n) with o's temperature and top-k
 * (ties at the k-th value are all kept), using r. For generate(). */
DGM_API int32_t dgm_draw_token(const float *logits, int64_t n,
                               const dgm_generate_opts *o, dgm_rng *r);

typedef struct dgm_model_iface {
    /* The phases in training order (static, so the host can resolve an
     * experiment's objectives without building the model); at least 1. */
    const dgm_phase_desc *phases;
    int n_phases;
    int (*create)(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data);
    /* io holds "x" (and "y", "y_mask" if the data has labels); add the
     * named outputs the phase's objective reads. */
    int (*forward)(void *self, dgm_step *s, int phase, dgm_vars *io);
    /* n samples in data space [n, x_shape...]; io may hold "y" (i64 [n])
     * to condition on: a model that used it sets io "y_used" (any var,
     * e.g. y itself), so the host can tell conditional sampling from a
     * model that ignored the labels. */
    int (*sample)(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out);
    /* Optional: per-example log p(x) estimate [N] from k importance
     * samples. */
    int (*log_likelihood)(void *self, dgm_step *s, dgm_var *x, int k,
                          dgm_var **out);
    /* Optional: reconstruction of x in data space. */
    int (*reconstruct)(void *self, dgm_step *s, dgm_var *x, dgm_var **out);
    void (*destroy)(void *self);
    /* Optional: called after each optimizer update of `phase`
     * (weight clipping, exponential moving averages); s->step is the step
     * being trained, s->g may be used for no-grad work. */
    int (*after_update)(void *self, dgm_step *s, int phase);
    /* Optional, sequence models: continue `prompt` (ids in
     * [0, n_classes), prompt_len >= 1) by `length` tokens drawn with the
     * step's RNG; out receives prompt_len + length ids. */
    int (*generate)(void *self, dgm_step *s, const int32_t *prompt,
                    int64_t prompt_len, int64_t length,
                    const dgm_generate_opts *o, int32_t *out);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
    /* (ABI 2.2) Optional, latent-variable models (what `dgm explore`
     * walks through): the size of z, > 0. */
    int64_t (*latent_size)(void *self);
    /* (ABI 2.2) Optional, with latent_size: data space [n, x_shape...]
     * for given z [n, latent_size], what sample() gives for those draws
     * (a VAE's decoder mean, a GAN's generator with its averaged weights);
     * io may hold "y" (i64 [n]) to condition on, and a model that used it
     * sets "y_used", as in sample(). A sequence model gives token windows
     * (seq_vae: greedy); io may hold "temperature" (f32 [1] > 0) to draw
     * the tokens at with the step's RNG instead, and a model that did
     * sets "temperature_used". */
    int (*decode)(void *self, dgm_step *s, dgm_var *z, dgm_vars *io,
                  dgm_var **out);
    /* (ABI 2.2) Optional, models with an inference network: the
     * posterior q(z | x) of x as its mean and log-variance, each
     * [n, latent_size] (a deterministic encoder sets *logvar NULL). Token
     * windows x may be shorter than the data's, [n, t] with t <= T. */
    int (*encode)(void *self, dgm_step *s, dgm_var *x, dgm_var **mean,
                  dgm_var **logvar);
    /* (ABI 2.3) Optional: true when the training phase `phase` leaves on
     * the graph what the next phase of the same step reads (a GAN's
     * generator forward, recorded in the discriminator phase and reused
     * for the generator's loss). The host then records that phase with
     * the next phase's weights trainable too (the model detaches what
     * `phase`'s own loss must not differentiate), and does not reset the
     * graph between the last repeat of `phase` and the next phase: vars
     * made in `phase` stay valid there, except the nodes `phase`'s
     * backward walked, which leave the tape. Called right before the
     * forward of the last repeat of each training phase but the last
     * (so a model may keep its graph only after a true answer). */
    bool (*keeps_graph)(void *self, int phase);
} dgm_model_iface;

typedef struct dgm_loss_iface {
    int (*create)(void **self, const dgm_config *cfg); /* may be NULL */
    int min_inputs, max_inputs;
    const char *inputs_help; /* "logits target" */
    /* Per-example values [N] (training takes the, possibly masked, batch
     * mean) or a scalar, which evaluation counts once per example of the
     * batch (docs/writing-plugins.md). */
    dgm_var *(*apply)(void *self, dgm_graph *g, dgm_var *const *in, int n);
    void (*destroy)(void *self);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
} dgm_loss_iface;

typedef struct dgm_optimizer_iface {
    int (*create)(void **self, const dgm_config *cfg);
    /* Update ps[0..n) (trainable weights with gradients) at learning rate
     * lr; t is the 1-based update count. Keep state in dgm_param_slot so
     * it checkpoints. */
    int (*step)(void *self, dgm_param *const *ps, int n, double lr,
                int64_t t);
    void (*destroy)(void *self);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
    /* (ABI 2.5) true: step() treats each parameter on its own (its update
     * reads only that parameter's value, gradient and slots, and lr and
     * t), so stepping any subset of ps gives those parameters the values
     * and slots the whole call would. Several processes on one node then
     * split the step: each rank steps the parameters it owns and the
     * ranks exchange the new values (docs/distributed.md). false (and a
     * plugin built before 2.5): every rank steps every parameter. */
    bool params_independent;
} dgm_optimizer_iface;

typedef struct dgm_eval dgm_eval;
typedef struct dgm_results dgm_results;
typedef struct dgm_registry dgm_registry;

/* Which way a metric's figure improves. UNKNOWN (0) is "not declared":
 * `dgm compare` then falls back to guessing from words in the name; NONE
 * says the figure has no better side (a deviation, a count). */
typedef enum dgm_better {
    DGM_BETTER_UNKNOWN = 0,
    DGM_BETTER_NONE,
    DGM_BETTER_LOWER,
    DGM_BETTER_HIGHER
} dgm_better;

/* One row of a metric's direction table: the figures whose name matches
 * the glob `pattern` (fnmatch syntax, so "accuracy/" plus a star covers
 * every output) improve as `better` says. */
typedef struct dgm_metric_figure {
    const char *pattern;
    dgm_better better;
} dgm_metric_figure;

typedef struct dgm_metric_iface {
    int (*create)(void **self, const dgm_config *cfg);
    int (*evaluate)(void *self, dgm_eval *ev, dgm_results *out);
    void (*destroy)(void *self);
    /* Optional: the config check described above. */
    int (*check)(const dgm_config *cfg);
    /* (ABI 2.1) Which way each figure it sets improves, ending with
     * {NULL}: the first row whose pattern matches a figure's name wins.
     * The run records it in summary.json for `dgm compare`. May be NULL
     * (every figure undeclared), as for a plugin built before 2.1. */
    const dgm_metric_figure *figures;
    /* (ABI 2.3) true: evaluate() is shard-aware. Under several processes
     * (mpirun) every rank then runs it, walking only the share of its
     * items that dgm_eval_shard gives, keying its draws with
     * dgm_eval_draws, and summing its partial sums with dgm_eval_sum
     * before it divides; every rank sets the same figures. false (and a
     * plugin built before 2.3): rank 0 alone runs it over everything and
     * the other ranks skip it. With one process both are the same. */
    bool shard_aware;
} dgm_metric_iface;

/* ---- what a metric can ask of the host -------------------------------- */

DGM_API const dgm_data_info *dgm_eval_data(dgm_eval *ev);
/* Load examples [start, start + n) of split into a fresh eval-mode step
 * (no gradients); io holds "x", "y", "y_mask". Valid until the next call. */
DGM_API int dgm_eval_batch(dgm_eval *ev, dgm_split split, int64_t start,
                           int64_t n, dgm_step **s, dgm_vars **io);
/* The model's forward for its first phase on the loaded batch. */
DGM_API int dgm_eval_forward(dgm_eval *ev, dgm_step *s, dgm_vars *io);
/* The first phase's objective per example: total [N], and each term's
 * weighted values into terms[i] when terms is not NULL (up to max). A
 * term whose loss gives a scalar has that value for every example. */
DGM_API int dgm_eval_objective(dgm_eval *ev, dgm_step *s, dgm_vars *io,
                               dgm_var **total, dgm_var **terms, int max,
                               int *n_terms);
/* The first phase's objective terms: count, label and weight. */
DGM_API int dgm_eval_term_count(dgm_eval *ev);
DGM_API const char *dgm_eval_term_name(dgm_eval *ev, int i);
DGM_API double dgm_eval_term_weight(dgm_eval *ev, int i);
DGM_API int dgm_eval_log_likelihood(dgm_eval *ev, dgm_step *s, dgm_var *x,
                                    int k, dgm_var **out);
DGM_API int dgm_eval_reconstruct(dgm_eval *ev, dgm_step *s, dgm_var *x,
                                 dgm_var **out);
DGM_API int dgm_eval_sample(dgm_eval *ev, dgm_step *s, int64_t n,
                            dgm_var **out);
/* Samples conditioned on labels y [n] (i64 class ids), for conditional
 * models; DGM_EUNSUPPORTED if the model ignores "y". */
DGM_API int dgm_eval_sample_cond(dgm_eval *ev, dgm_step *s,
                                 const dgm_tensor *y, dgm_var **out);
/* The registry the experiment was loaded with (metrics that open another
 * run, e.g. a feature extractor, find its plugins here). */
DGM_API dgm_registry *dgm_eval_registry(dgm_eval *ev);

/* (ABI 2.3) Sharded evaluation, for a shard-aware metric (its iface's
 * shard_aware; docs/distributed.md):
 *
 *     int64_t n = ..., at, cnt;       // items: examples, windows, samples
 *     dgm_eval_shard(ev, n, batch, &at, &cnt);
 *     for (int64_t i = at; i < at + cnt; i += batch) {
 *         dgm_eval_draws(ev, i);      // this batch's random draws
 *         ... dgm_eval_batch(ev, split, i, min(batch, at + cnt - i), ...)
 *         ... sums[0] += ...
 *     }
 *     dgm_eval_sum(ev, sums, 2);      // over every rank
 *     dgm_results_set(out, "figure", sums[0] / (double)n);
 *
 * dgm_eval_shard: this rank's items [*start, *start + *count) of n items
 * walked in batches of `batch`: the ranks take contiguous runs of whole
 * batches (the single process's batches), so *count may be 0 on some
 * rank. With one process, or for a metric that is not shard-aware:
 * [0, n). n >= 0 and batch >= 1, else DGM_EINVAL. */
DGM_API int dgm_eval_shard(dgm_eval *ev, int64_t n, int64_t batch,
                           int64_t *start, int64_t *count);
/* Sum v[0..n) over the ranks in place (identity with one process). Every
 * rank of a shard-aware metric calls it the same number of times with
 * the same n, a rank with no items too. Each rank sums its items in
 * double first, then the ranks' sums are added, so a figure may differ
 * from one process's in the last bits. When another rank failed in this
 * metric, returns DGM_EINTERRUPTED naming it and leaves v unchanged. */
DGM_API int dgm_eval_sum(dgm_eval *ev, double *v, int n);
/* Re-seed the evaluation's random draws (the model's noise, a dataset's
 * per-example draws, a corruption's) from the metric's seed and `key`,
 * normally the index of the batch's first item: a batch then draws the
 * same values whichever rank reads it and whatever was read before. Keys
 * of different kinds of batch (examples and samples) must not collide:
 * add DGM_EVAL_DRAWS_SAMPLES to a sample batch's key. */
#define DGM_EVAL_DRAWS_SAMPLES ((uint64_t)1 << 62)
DGM_API void dgm_eval_draws(dgm_eval *ev, uint64_t key);

DGM_API int dgm_results_set(dgm_results *r, const char *name, double value);

#ifdef __cplusplus
}
#endif
#endif
