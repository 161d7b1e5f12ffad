/* graph.c - the tape: graph modes and status, leaves, the helpers op files
 * build nodes with (graph_internal.h), and dgm_backward.
 *
 * Environment: DGM_BACKEND=ref makes every new graph start on the plain-C
 * reference kernels (dgm_graph_set_backend still overrides it); handy to
 * tell a oneDNN problem from a model bug. DGM_PROFILE=1 turns the per-op
 * profile on (dgm/profile.h). DGM_GRAD_ZERO=1 makes every new graph
 * zero-fill each gradient buffer and every backward rule add into it, as
 * before first-write buffers (dgm__grad_in), with no aliased views: the
 * same gradients to the bit, slower; handy to tell a first-write bug from
 * a model bug. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/profile.h"
#include "graph_internal.h"
#include "profile_internal.h"
#include "tensor_internal.h"

struct dgm_graph {
    dgm_arena *arena;
    /* The tape lives on the heap, not in the arena, so that its capacity
     * survives dgm_graph_reset: a steady-state step never grows it. */
    dgm_var **tape;
    int n_tape, cap_tape;
    dgm_backend backend;
    bool training, grad;
    dgm_rng *rng;
    int status;
    /* probes kept while tapping (dgm_graph_tap) */
    bool tapping;
    int n_taps;
    const char *tap_name[DGM_GRAPH_MAX_TAPS];
    dgm_var *tap_var[DGM_GRAPH_MAX_TAPS];
    /* Data-parallel training: this graph's batch is rows [shard_off,
     * shard_off + shard_n) of a global batch of shard_total rows (0: no
     * shard). See dgm__graph_set_shard. */
    int64_t shard_off, shard_n, shard_total;
    /* dgm__graph_on_grad_final: the hook, and per backward the parameters
     * it will be told of with the tape index after whose backward each
     * one's gradient is final (heap, reused across steps). */
    void (*grad_final)(void *ctx, dgm_param *p);
    /* dgm__graph_on_sum: sums across processes (sync batch norm) */
    int (*sum)(void *ctx, double *buf, int n);
    void *sum_ctx;
    void *grad_final_ctx;
    dgm_param **fin_p;
    int *fin_at;
    int n_fin, cap_fin;
    /* The profile's last event on this graph: a forward op's time runs
     * from here to its node. */
    double prof_mark;
    /* dgm_backward's count, never 0: an op result's gradient holds this
     * pass's contributions when its grad_pass equals it (dgm__grad_in). */
    unsigned pass;
    bool grad_zero; /* DGM_GRAD_ZERO: always zero-fill and add */
};

#define GRAPH_ARENA_INITIAL (1u << 20)

/* ---- the graph ------------------------------------------------------- */

dgm_graph *dgm_graph_new(void)
{
    dgm_graph *g = calloc(1, sizeof *g);
    if (!g) {
        dgm_error(DGM_ENOMEM, "graph: allocating the graph");
        return NULL;
    }
    dgm__count_heap_alloc();
    g->arena = dgm_arena_new(GRAPH_ARENA_INITIAL);
    if (!g->arena) {
        free(g);
        return NULL;
    }
    g->cap_tape = 256;
    g->tape = malloc((size_t)g->cap_tape * sizeof *g->tape);
    if (!g->tape) {
        dgm_arena_free(g->arena);
        free(g);
        dgm_error(DGM_ENOMEM, "graph: allocating the tape");
        return NULL;
    }
    dgm__count_heap_alloc();
    const char *be = getenv("DGM_BACKEND");
    g->backend = (be && !strcmp(be, "ref")) ? DGM_BACKEND_REF
                                            : DGM_BACKEND_DNNL;
    g->training = true;
    g->grad = true;
    const char *gz = getenv("DGM_GRAD_ZERO");
    g->grad_zero = gz && *gz && strcmp(gz, "0");
    const char *prof = getenv("DGM_PROFILE");
    if (prof && *prof && strcmp(prof, "0"))
        dgm_profile_enable(true);
    if (dgm__profile_on)
        g->prof_mark = dgm__profile_now();
    return g;
}

void dgm_graph_free(dgm_graph *g)
{
    if (!g)
        return;
    dgm_arena_free(g->arena);
    free(g->tape);
    free(g->fin_p);
    free(g->fin_at);
    free(g);
}

void dgm_graph_reset(dgm_graph *g)
{
    if (!g)
        return;
    dgm_arena_reset(g->arena);
    g->n_tape = 0;
    g->status = 0;
    g->n_taps = 0;
    if (dgm__profile_on)
        g->prof_mark = dgm__profile_now();
}

void dgm_graph_set_backend(dgm_graph *g, dgm_backend b) { g->backend = b; }
void dgm_graph_set_training(dgm_graph *g, bool t) { g->training = t; }
bool dgm_graph_training(const dgm_graph *g) { return g->training; }

bool dgm_graph_set_grad(dgm_graph *g, bool enabled)
{
    bool prev = g->grad;
    g->grad = enabled;
    return prev;
}

void dgm_graph_set_rng(dgm_graph *g, dgm_rng *r) { g->rng = r; }

void dgm__graph_set_shard(dgm_graph *g, int64_t off, int64_t n, int64_t total)
{
    g->shard_off = off;
    g->shard_n = n;
    g->shard_total = n < total ? total : 0;
}

void dgm__graph_on_grad_final(dgm_graph *g, void (*fn)(void *ctx, dgm_param *p),
                              void *ctx)
{
    g->grad_final = fn;
    g->grad_final_ctx = ctx;
}

void dgm__graph_on_sum(dgm_graph *g, int (*fn)(void *ctx, double *buf, int n),
                       void *ctx)
{
    g->sum = fn;
    g->sum_ctx = ctx;
}

bool dgm__graph_sums(const dgm_graph *g, double *share)
{
    if (!g->sum)
        return false;
    *share = g->shard_total ? (double)g->shard_n / (double)g->shard_total : 1.0;
    return true;
}

int dgm__graph_sum(dgm_graph *g, double *buf, int n)
{
    return g->sum ? g->sum(g->sum_ctx, buf, n) : 0;
}

/* The trainable parameters nodes [0, top] read, each with the lowest tape
 * index that reads it: found in tape order, so the list is sorted by that
 * index, and a reverse walk of the tape finishes them from its end. */
static int find_final(dgm_graph *g, int top)
{
    g->n_fin = 0;
    for (int i = 0; i <= top; i++) {
        dgm_var *v = g->tape[i];
        for (int j = 0; j < v->n_in; j++) {
            dgm_var *in = v->in[j];
            if (!in || in->op || !in->param || !in->requires_grad)
                continue;
            bool seen = false;
            for (int k = 0; k < g->n_fin && !seen; k++)
                seen = g->fin_p[k] == in->param;
            if (seen)
                continue;
            if (g->n_fin == g->cap_fin) {
                int cap = g->cap_fin ? 2 * g->cap_fin : 64;
                dgm_param **p = realloc(g->fin_p, (size_t)cap * sizeof *p);
                if (p)
                    g->fin_p = p;
                int *a = realloc(g->fin_at, (size_t)cap * sizeof *a);
                if (a)
                    g->fin_at = a;
                if (!p || !a)
                    return dgm__fail(g, DGM_ENOMEM, "backward: out of memory");
                g->cap_fin = cap;
            }
            g->fin_p[g->n_fin] = in->param;
            g->fin_at[g->n_fin++] = i;
        }
    }
    return 0;
}

void dgm__graph_drop_walked(dgm_graph *g)
{
    int k = 0;
    for (int i = 0; i < g->n_tape; i++)
        if (!g->tape[i]->grad)
            g->tape[k++] = g->tape[i];
    g->n_tape = k;
}

bool dgm__graph_shard(const dgm_graph *g, int64_t rows, int64_t *off,
                      int64_t *total)
{
    if (!g->shard_total || rows != g->shard_n)
        return false;
    *off = g->shard_off;
    *total = g->shard_total;
    return true;
}
dgm_rng *dgm_graph_rng(dgm_graph *g) { return g->rng; }
int dgm_graph_status(const dgm_graph *g) { return g->status; }
dgm_arena *dgm_graph_arena(dgm_graph *g) { return g->arena; }

void dgm_graph_tap(dgm_graph *g, const char *name, dgm_var *v)
{
    if (g && g->tapping && v && name && g->n_taps < DGM_GRAPH_MAX_TAPS) {
        g->tap_name[g->n_taps] = name;
        g->tap_var[g->n_taps++] = v;
    }
}

bool dgm_graph_set_tapping(dgm_graph *g, bool on)
{
    bool prev = g->tapping;
    g->tapping = on;
    return prev;
}

bool dgm_graph_tapping(const dgm_graph *g) { return g->tapping; }

int dgm_graph_tap_count(const dgm_graph *g)
{
    return g->n_taps;
}

dgm_var *dgm_graph_tap_at(const dgm_graph *g, int i, const char **name)
{
    if (i < 0 || i >= g->n_taps)
        return NULL;
    if (name)
        *name = g->tap_name[i];
    return g->tap_var[i];
}

bool dgm__use_dnnl(const dgm_graph *g)
{
    return g->backend == DGM_BACKEND_DNNL;
}

bool dgm__grad_enabled(const dgm_graph *g) { return g->grad; }

/* ---- errors ---------------------------------------------------------- */

static int vfail(dgm_graph *g, int code, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    dgm_error(code, "%s", msg);
    if (g && !g->status)
        g->status = code;
    return code;
}

int dgm__fail(dgm_graph *g, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(g, code, fmt, ap);
    va_end(ap);
    return code;
}

void *dgm__fail_null(dgm_graph *g, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(g, code, fmt, ap);
    va_end(ap);
    return NULL;
}

/* ---- memory ---------------------------------------------------------- */

void *dgm__arena_alloc(dgm_graph *g, size_t bytes)
{
    void *p = dgm_arena_alloc(g->arena, bytes ? bytes : 1);
    if (!p)
        dgm__fail(g, DGM_ENOMEM, "graph: arena allocation of %zu bytes",
                  bytes);
    return p;
}

dgm_tensor *dgm__alloc(dgm_graph *g, dgm_dtype dtype, int ndim,
                       const int64_t *shape)
{
    dgm_tensor *t = dgm_arena_tensor(g->arena, dtype, ndim, shape);
    if (!t && !g->status)
        g->status = dgm_last_code() ? dgm_last_code() : DGM_ENOMEM;
    return t;
}

dgm_tensor *dgm__alloc_uninit(dgm_graph *g, dgm_dtype dtype, int ndim,
                              const int64_t *shape)
{
    dgm_tensor *t = dgm__arena_alloc(g, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    dgm_contiguous_strides(ndim, shape, t->strides);
    t->data = dgm__arena_alloc(g, (size_t)dgm_shape_numel(ndim, shape) *
                                      dgm_dtype_size(dtype));
    return t->data ? t : NULL;
}

dgm_tensor *dgm__copy(dgm_graph *g, const dgm_tensor *t)
{
    dgm_tensor *c = dgm__alloc_uninit(g, t->dtype, t->ndim, t->shape);
    if (c && dgm_tensor_copy(c, t) < 0) {
        dgm__fail(g, dgm_last_code(), "%s", dgm_last_error());
        return NULL;
    }
    return c;
}

dgm_tensor *dgm__contig(dgm_graph *g, dgm_tensor *t)
{
    return dgm_tensor_is_contiguous(t) ? t : dgm__copy(g, t);
}

int dgm__fail_rc(const dgm_graph *g)
{
    return g->status ? g->status : DGM_ENOMEM;
}

dgm_tensor *dgm__view(dgm_graph *g, const dgm_tensor *base)
{
    dgm_tensor *t = dgm__arena_alloc(g, sizeof *t);
    if (!t)
        return NULL;
    *t = *base;
    /* Arena views hold no reference: the graph borrows the storage for
     * the step, like dgm_input does. */
    t->storage = NULL;
    return t;
}

static int tape_push(dgm_graph *g, dgm_var *v)
{
    if (g->n_tape == g->cap_tape) {
        int cap = g->cap_tape * 2;
        dgm_var **t = realloc(g->tape, (size_t)cap * sizeof *t);
        if (!t)
            return dgm__fail(g, DGM_ENOMEM, "graph: growing the tape to %d",
                             cap);
        dgm__count_heap_alloc();
        g->tape = t;
        g->cap_tape = cap;
    }
    g->tape[g->n_tape++] = v;
    return 0;
}

static dgm_var *new_var(dgm_graph *g, dgm_tensor *value)
{
    dgm_var *v = dgm__arena_alloc(g, sizeof *v);
    if (!v)
        return NULL;
    memset(v, 0, sizeof *v);
    v->value = value;
    if (dgm__profile_on)
        g->prof_mark = dgm__profile_now();
    return v;
}

dgm_var *dgm__node(dgm_graph *g, const dgm__op *op, dgm_tensor *value,
                   dgm_var *const *in, int n_in)
{
    if (!value)
        return NULL;
    double t0 = g->prof_mark;
    dgm_var *v = new_var(g, value);
    if (!v)
        return NULL;
    if (dgm__profile_on)
        dgm__profile_forward(op, value, in, n_in, g->prof_mark - t0);
    v->op = op;
    bool rg = false;
    if (g->grad)
        for (int i = 0; i < n_in; i++)
            if (in[i] && in[i]->requires_grad)
                rg = true;
    v->requires_grad = rg;
    if (rg && n_in > 0) {
        v->in = dgm__arena_alloc(g, (size_t)n_in * sizeof *v->in);
        if (!v->in)
            return NULL;
        memcpy(v->in, in, (size_t)n_in * sizeof *v->in);
        v->n_in = n_in;
        if (tape_push(g, v))
            return NULL;
    }
    return v;
}

/* An op result's gradient buffer for the first contribution of this pass:
 * its own (not an alias left by an earlier pass, whose storage belongs to
 * another node), contents undefined. */
static dgm_tensor *first_buf(dgm_graph *g, dgm_var *v)
{
    if (!v->grad || v->grad_alias) {
        v->grad =
            dgm__alloc_uninit(g, DGM_F32, v->value->ndim, v->value->shape);
        v->grad_alias = false;
        if (!v->grad)
            return NULL;
    }
#ifdef __SANITIZE_ADDRESS__
    /* In the sanitizer build a rule that adds into a buffer it was told to
     * store into reads NaN (all bits set), and the tests see it. */
    memset(v->grad->data, 0xff, dgm_tensor_nbytes(v->grad));
#endif
    v->grad_pass = g->pass;
    return v->grad;
}

dgm_tensor *dgm__grad_buf(dgm_graph *g, dgm_var *v)
{
    if (!v || !v->requires_grad)
        return NULL;
    if (v->param) {
        dgm__param_grad_settle(v->param); /* zero it if still fresh */
        return v->grad = v->param->grad;
    }
    if (!v->op) { /* a leaf: zero once, then accumulate across passes */
        if (!v->grad)
            v->grad = dgm__alloc(g, DGM_F32, v->value->ndim, v->value->shape);
        return v->grad;
    }
    if (v->grad_pass == g->pass)
        return v->grad;
    dgm_tensor *t = first_buf(g, v);
    if (t)
        memset(t->data, 0, dgm_tensor_nbytes(t));
    return t;
}

dgm_tensor *dgm__grad_in(dgm_graph *g, dgm_var *node, int i, bool *store)
{
    dgm_var *v = node->in[i];
    *store = false;
    if (!v || !v->requires_grad)
        return NULL;
    bool fresh_param = v->param && *dgm__param_fresh(v->param);
    if ((!v->op && !fresh_param) || g->grad_zero || v->grad_pass == g->pass)
        return dgm__grad_buf(g, v);
    /* x * x and the like: two contributions from one rule, in whatever
     * order it writes them, so both add into a zero-filled buffer (two
     * vars of one parameter count as one input). */
    for (int j = 0; j < node->n_in; j++) {
        const dgm_var *u = node->in[j];
        if (j != i && u && (u == v || (v->param && u->param == v->param)))
            return dgm__grad_buf(g, v);
    }
    *store = true;
    if (fresh_param) {
        *dgm__param_fresh(v->param) = false;
        v->grad = v->param->grad;
#ifdef __SANITIZE_ADDRESS__
        memset(v->grad->data, 0xff, dgm_tensor_nbytes(v->grad));
#endif
        return v->grad;
    }
    return first_buf(g, v);
}

bool dgm__grad_alias(dgm_graph *g, dgm_var *node)
{
    return node->n_in == 1 && dgm__grad_alias_in(g, node, 0);
}

bool dgm__grad_alias_in(dgm_graph *g, dgm_var *node, int i)
{
    dgm_var *x = node->in[i];
    dgm_tensor *dy = node->grad;
    if (g->grad_zero || !x || !x->requires_grad || !x->op || x->n_uses != 1 ||
        x->grad_pass == g->pass || !dgm_tensor_is_contiguous(dy) ||
        dgm_tensor_numel(dy) != dgm_tensor_numel(x->value))
        return false;
    dgm_tensor *t = dgm__view(g, dy);
    if (!t)
        return false;
    t->ndim = x->value->ndim;
    memcpy(t->shape, x->value->shape, sizeof t->shape);
    dgm_contiguous_strides(t->ndim, t->shape, t->strides);
    x->grad = t;
    x->grad_alias = true;
    x->grad_pass = g->pass;
    return true;
}

/* ---- leaves ---------------------------------------------------------- */

dgm_var *dgm_input(dgm_graph *g, dgm_tensor *t)
{
    return dgm_leaf(g, t, false);
}

dgm_var *dgm_leaf(dgm_graph *g, dgm_tensor *t, bool requires_grad)
{
    if (!t)
        return dgm__fail_null(g, DGM_EINVAL, "graph: leaf given NULL tensor");
    if (requires_grad && t->dtype != DGM_F32) {
        char b[96];
        return dgm__fail_null(g, DGM_EDTYPE,
                              "graph: leaf %s cannot require a gradient "
                              "(f32 only)",
                              dgm_tensor_describe(t, b, sizeof b));
    }
    dgm_var *v = new_var(g, t);
    if (v)
        v->requires_grad = requires_grad && g->grad;
    return v;
}

dgm_var *dgm_param_var(dgm_graph *g, dgm_param *p)
{
    if (!p)
        return dgm__fail_null(g, DGM_EINVAL, "graph: param_var given NULL");
    dgm_var *v = new_var(g, p->value);
    if (!v)
        return NULL;
    v->param = p;
    v->requires_grad = g->grad && p->role == DGM_ROLE_WEIGHT && !p->frozen &&
                       p->grad != NULL;
    return v;
}

dgm_var *dgm_detach(dgm_graph *g, dgm_var *x)
{
    if (!x)
        return NULL;
    return new_var(g, x->value);
}

dgm_var *dgm_constant(dgm_graph *g, int ndim, const int64_t *shape,
                      float value)
{
    dgm_tensor *t = dgm__alloc(g, DGM_F32, ndim, shape);
    if (!t)
        return NULL;
    if (value != 0.0f) {
        float *p = dgm_tensor_f32(t);
        int64_t n = dgm_tensor_numel(t);
        for (int64_t i = 0; i < n; i++)
            p[i] = value;
    }
    return new_var(g, t);
}

/* ---- accessors ------------------------------------------------------- */

static const char *const op_names[] = {
#define DGM_OP(id, name, file, grad, path, suite) [DGM_OP_##id] = name,
#include "ops.def"
#undef DGM_OP
};
_Static_assert(sizeof op_names / sizeof *op_names == DGM_OP_COUNT,
               "one name per op of ops.def");

const char *dgm__op_name(const dgm__op *op)
{
    return op->id >= 0 && op->id < DGM_OP_COUNT ? op_names[op->id] : "?";
}

dgm_tensor *dgm_value(const dgm_var *v) { return v ? v->value : NULL; }
dgm_tensor *dgm_grad(const dgm_var *v)
{
    if (!v || !v->requires_grad)
        return NULL;
    if (v->param)
        return v->param->grad;
    return v->grad;
}
bool dgm_requires_grad(const dgm_var *v) { return v && v->requires_grad; }

const char *dgm_var_op_name(const dgm_var *v)
{
    if (!v)
        return "(null)";
    if (v->op)
        return dgm__op_name(v->op);
    return v->param ? "param" : "leaf";
}

/* ---- backward -------------------------------------------------------- */

int dgm_backward(dgm_graph *g, dgm_var *loss)
{
    if (!loss)
        return dgm__fail(g, DGM_EINVAL, "backward: loss is NULL");
    if (g->status)
        return dgm__fail(g, g->status,
                         "backward: the graph has an earlier error (%s)",
                         dgm_strerror(g->status));
    if (dgm_tensor_numel(loss->value) != 1) {
        char b[96];
        return dgm__fail(g, DGM_ESHAPE,
                         "backward: loss %s must have one element",
                         dgm_tensor_describe(loss->value, b, sizeof b));
    }
    if (!loss->requires_grad)
        return dgm__fail(g, DGM_ESTATE,
                         "backward: loss (op '%s') does not require a "
                         "gradient (no trainable input, or grad off)",
                         dgm_var_op_name(loss));
    if (!loss->op) { /* a leaf: d loss / d loss = 1 */
        dgm_tensor *gl = dgm__grad_buf(g, loss);
        if (!gl)
            return g->status ? g->status : DGM_ENOMEM;
        dgm_tensor_set(gl, 0, dgm_tensor_get(gl, 0) + 1.0);
        return 0;
    }
    /* Find the loss on the tape; later nodes cannot feed it. */
    int top = g->n_tape - 1;
    while (top >= 0 && g->tape[top] != loss)
        top--;
    if (top < 0)
        return dgm__fail(g, DGM_ESTATE, "backward: loss is not on the tape");
    /* A new pass: every op result's gradient is stale until its first
     * contribution stores into it (dgm__grad_in), so nothing is zeroed
     * here and a second backward adds exactly one more d loss/d leaf to
     * leaves and params. n_uses feeds the aliasing rule (dgm__grad_alias). */
    if (++g->pass == 0)
        g->pass = 1;
    for (int i = 0; i <= top; i++)
        for (int j = 0; j < g->tape[i]->n_in; j++)
            if (g->tape[i]->in[j])
                g->tape[i]->in[j]->n_uses = 0;
    for (int i = 0; i <= top; i++)
        for (int j = 0; j < g->tape[i]->n_in; j++)
            if (g->tape[i]->in[j])
                g->tape[i]->in[j]->n_uses++;
    dgm_tensor *seed = first_buf(g, loss);
    if (!seed)
        return g->status ? g->status : DGM_ENOMEM;
    dgm_tensor_f32(seed)[0] = 1.0f;
    int fin = 0, rc;
    if (g->grad_final && (rc = find_final(g, top)) < 0)
        return rc;
    fin = g->grad_final ? g->n_fin - 1 : -1;
    for (int i = top; i >= 0; i--) {
        dgm_var *v = g->tape[i];
        if (v->grad && v->grad_pass == g->pass && v->op && v->op->backward) {
            double t0 = dgm__profile_on ? dgm__profile_now() : 0;
            rc = v->op->backward(g, v);
            if (dgm__profile_on)
                dgm__profile_backward(v, dgm__profile_now() - t0);
            if (rc < 0) {
                if (!g->status)
                    g->status = rc;
                return dgm_error_context("backward of '%s': ",
                                         dgm__op_name(v->op));
            }
        }
        /* no node below i reads these: their gradients are final */
        for (; fin >= 0 && g->fin_at[fin] == i; fin--) {
            dgm__param_grad_settle(g->fin_p[fin]); /* none came: zeros */
            g->grad_final(g->grad_final_ctx, g->fin_p[fin]);
        }
    }
    if (dgm__profile_on)
        g->prof_mark = dgm__profile_now();
    return 0;
}
