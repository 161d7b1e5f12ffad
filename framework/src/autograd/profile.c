/* profile.c - the per-op profile (dgm/profile.h): one process-wide table
 * indexed by the op ids of ops.def, plus a few named sections, and the
 * FLOP count of the ops whose arithmetic is worth counting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/profile.h"
#include "graph_internal.h"
#include "profile_internal.h"

bool dgm__profile_on;

#define N_SECTIONS 16

typedef struct prof_entry {
    int64_t calls[2];
    double seconds[2], flops[2];
} prof_entry;

static prof_entry ops[DGM_OP_COUNT];

/* The names again, from ops.def: the tape (graph.c) calls this file, so
 * this file does not call it back. */
static const char *const op_names[] = {
#define DGM_OP(id, name, file, grad, path, suite) [DGM_OP_##id] = name,
#include "ops.def"
#undef DGM_OP
};
_Static_assert(sizeof op_names / sizeof *op_names == DGM_OP_COUNT,
               "one name per op of ops.def");
static struct {
    char name[32];
    prof_entry e;
} sections[N_SECTIONS];
static int n_sections;

double dgm__profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dgm_profile_enable(bool on)
{
    dgm__profile_on = on;
}
bool dgm_profile_enabled(void)
{
    return dgm__profile_on;
}

void dgm_profile_reset(void)
{
    memset(ops, 0, sizeof ops);
    memset(sections, 0, sizeof sections);
    n_sections = 0;
}

static double numel(const dgm_tensor *t)
{
    return t ? (double)dgm_tensor_numel(t) : 0.0;
}

static const dgm_tensor *in_value(dgm_var *const *in, int n_in, int i)
{
    return i < n_in && in[i] ? in[i]->value : NULL;
}

/* The inner dimension of a (batched) matmul c = op(a) op(b): of a's last
 * two dims, the one that is not c's row count (either, when both are). */
static double matmul_k(const dgm_tensor *a, const dgm_tensor *c)
{
    int64_t r = a->shape[a->ndim - 2], s = a->shape[a->ndim - 1];
    return (double)(r == c->shape[c->ndim - 2] ? s : r);
}

/* Multiply-adds count 2. Ops not listed count none (their time is bound
 * by memory, and the table shows their time alone) or count their own
 * (dgm__profile_add_flops: attention). */
static double forward_flops(dgm__op_id id, const dgm_tensor *out,
                            dgm_var *const *in, int n_in)
{
    const dgm_tensor *a = in_value(in, n_in, 0), *w = in_value(in, n_in, 1);
    switch (id) {
    case DGM_OP_LINEAR: /* x [M, K], w [N, K] -> [M, N] */
    case DGM_OP_LINEAR_GELU:
        return 2.0 * numel(out) * (double)a->shape[a->ndim - 1];
    case DGM_OP_MATMUL:
        return 2.0 * numel(out) * matmul_k(a, out);
    case DGM_OP_CONV2D: /* w [Co, Ci / groups, kh, kw] */
        return 2.0 * numel(out) * numel(w) / (double)w->shape[0];
    case DGM_OP_CONV_TRANSPOSE2D: /* w [Ci, Co / groups, kh, kw] */
        return 2.0 * numel(a) * numel(w) / (double)w->shape[0];
    case DGM_OP_RNN: { /* x [T, N, I]; every 2-D weight meets each (t, n) */
        double wsum = 0;
        for (int i = 1; i < n_in; i++) {
            const dgm_tensor *t = in_value(in, n_in, i);
            if (t && t->ndim == 2 && i > 2)
                wsum += numel(t);
        }
        return 2.0 * (double)a->shape[0] * (double)a->shape[1] * wsum;
    }
    default:
        return 0.0;
    }
}

/* GEMM-like backward: one product per input that needs a gradient (the
 * data and the weight), each as costly as the forward. */
static double backward_flops(const dgm_var *node)
{
    double f = forward_flops(node->op->id, node->value, node->in, node->n_in);
    if (f == 0.0)
        return 0.0;
    int n = 0;
    for (int i = 0; i < node->n_in && i < 2; i++)
        n += node->in[i] && node->in[i]->requires_grad;
    if (node->op->id == DGM_OP_RNN)
        n = 2; /* the weights' and the sequence's gradients */
    return f * n;
}

void dgm__profile_forward(const dgm__op *op, const dgm_tensor *out,
                          dgm_var *const *in, int n_in, double seconds)
{
    prof_entry *e = &ops[op->id];
    e->calls[0]++;
    e->seconds[0] += seconds;
    e->flops[0] += forward_flops(op->id, out, in, n_in);
}

void dgm__profile_backward(const dgm_var *node, double seconds)
{
    prof_entry *e = &ops[node->op->id];
    e->calls[1]++;
    e->seconds[1] += seconds;
    e->flops[1] += backward_flops(node);
}

void dgm__profile_add_flops(dgm__op_id id, int dir, double flops)
{
    ops[id].flops[dir] += flops;
}

void dgm_profile_add(const char *name, double seconds)
{
    if (!dgm__profile_on || !name)
        return;
    int i = 0;
    while (i < n_sections && strcmp(sections[i].name, name))
        i++;
    if (i == n_sections) {
        if (n_sections == N_SECTIONS)
            return;
        snprintf(sections[i].name, sizeof sections[i].name, "%s", name);
        n_sections++;
    }
    sections[i].e.calls[0]++;
    sections[i].e.seconds[0] += seconds;
}

static void fill(dgm_profile_row *row, const char *name, const prof_entry *e)
{
    row->name = name;
    memcpy(row->calls, e->calls, sizeof row->calls);
    memcpy(row->seconds, e->seconds, sizeof row->seconds);
    memcpy(row->flops, e->flops, sizeof row->flops);
}

int dgm_profile_get(const char *name, dgm_profile_row *row)
{
    for (int i = 0; name && i < DGM_OP_COUNT; i++)
        if (!strcmp(op_names[i], name) &&
            ops[i].calls[0] + ops[i].calls[1] > 0) {
            fill(row, op_names[i], &ops[i]);
            return 0;
        }
    for (int i = 0; name && i < n_sections; i++)
        if (!strcmp(sections[i].name, name)) {
            fill(row, sections[i].name, &sections[i].e);
            return 0;
        }
    return dgm_error(DGM_ENOTFOUND, "profile: no calls of '%s' recorded",
                     name ? name : "(null)");
}

static int by_time(const void *pa, const void *pb)
{
    const dgm_profile_row *a = pa, *b = pb;
    double ta = a->seconds[0] + a->seconds[1];
    double tb = b->seconds[0] + b->seconds[1];
    return (ta < tb) - (ta > tb);
}

static void cell_gflops(char *buf, size_t n, double flops, double s)
{
    if (flops > 0 && s > 0)
        snprintf(buf, n, "%.1f", flops / s * 1e-9);
    else
        snprintf(buf, n, "-");
}

int dgm_profile_write(FILE *f, int64_t steps)
{
    dgm_profile_row rows[DGM_OP_COUNT + N_SECTIONS];
    int n = 0;
    double total = 0;
    for (int i = 0; i < DGM_OP_COUNT; i++)
        if (ops[i].calls[0] + ops[i].calls[1] > 0)
            fill(&rows[n++], op_names[i], &ops[i]);
    for (int i = 0; i < n_sections; i++)
        fill(&rows[n++], sections[i].name, &sections[i].e);
    for (int i = 0; i < n; i++)
        total += rows[i].seconds[0] + rows[i].seconds[1];
    qsort(rows, (size_t)n, sizeof *rows, by_time);
    double per = steps > 0 ? 1.0 / (double)steps : 1.0;
    const char *unit = steps > 0 ? "/step" : "";
    fprintf(f, "%-20s %10s %10s %8s %10s %10s %8s %6s\n", "op", "fwd calls",
            "fwd ms", "GFLOP/s", "bwd calls", "bwd ms", "GFLOP/s", "share");
    for (int i = 0; i < n; i++) {
        const dgm_profile_row *r = &rows[i];
        char g0[32], g1[32];
        cell_gflops(g0, sizeof g0, r->flops[0], r->seconds[0]);
        cell_gflops(g1, sizeof g1, r->flops[1], r->seconds[1]);
        double t = r->seconds[0] + r->seconds[1];
        fprintf(f, "%-20s %10.4g %10.3f %8s %10.4g %10.3f %8s %5.1f%%\n",
                r->name, (double)r->calls[0] * per, r->seconds[0] * 1e3 * per,
                g0, (double)r->calls[1] * per, r->seconds[1] * 1e3 * per, g1,
                total > 0 ? 100.0 * t / total : 0.0);
    }
    double fl = 0;
    for (int i = 0; i < n; i++)
        fl += rows[i].flops[0] + rows[i].flops[1];
    fprintf(f, "total: %.3f ms%s, %.2f GFLOP%s, %.1f GFLOP/s overall",
            total * 1e3 * per, unit, fl * 1e-9 * per, unit,
            total > 0 ? fl / total * 1e-9 : 0.0);
    if (steps > 0)
        fprintf(f, " (%lld steps; calls and ms are per step)",
                (long long)steps);
    fprintf(f, "\n");
    return ferror(f) ? dgm_error(DGM_EIO, "profile: writing the table") : 0;
}
