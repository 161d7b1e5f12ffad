/* bench_ab.h - what bench_conv's and bench_rnn's `ab` modes share: the
 * clocks, the median, two graphs (zero fill + add against first write)
 * and one A/B timing loop over them in alternating rounds. Static inline:
 * each bench includes its own copy. */
#ifndef DGM_BENCH_AB_H
#define DGM_BENCH_AB_H

#include <stdlib.h>
#include <time.h>

#include "dgm/graph.h"

static inline double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* g[0] made under DGM_GRAD_ZERO=1 (every gradient zero-filled, then
 * added to), g[1] with the default rule (first contribution stores).
 * Both NULL-checked by the caller. */
static inline void ab_graphs(dgm_graph *g[2])
{
    setenv("DGM_GRAD_ZERO", "1", 1);
    g[0] = dgm_graph_new();
    unsetenv("DGM_GRAD_ZERO");
    g[1] = dgm_graph_new();
}

/* One step of a case on graph g: 0 or a DGM_E* code. */
typedef int (*ab_step_fn)(void *ctx, dgm_graph *g);

#define AB_MAX_REPS 64

/* warm + reps rounds, each a step on both graphs, which one first
 * alternating; the medians of the reps timed rounds, wall ms in ms[arm]
 * and process CPU ms in cpu[arm]. */
static inline int ab_time(dgm_graph *g[2], ab_step_fn step, void *ctx, int warm,
                          int reps, double ms[2], double cpu[2])
{
    double t[2][AB_MAX_REPS], u[2][AB_MAX_REPS];
    if (reps > AB_MAX_REPS)
        reps = AB_MAX_REPS;
    for (int it = 0; it < warm + reps; it++)
        for (int k = 0; k < 2; k++) {
            int arm = (it + k) % 2; /* alternate which arm goes first */
            double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            int rc = step(ctx, g[arm]);
            if (rc < 0)
                return rc;
            if (it >= warm) {
                t[arm][it - warm] = now() - t0;
                u[arm][it - warm] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            }
        }
    for (int arm = 0; arm < 2; arm++) {
        qsort(t[arm], (size_t)reps, sizeof t[arm][0], cmp_double);
        qsort(u[arm], (size_t)reps, sizeof u[arm][0], cmp_double);
        ms[arm] = t[arm][reps / 2] * 1e3;
        cpu[arm] = u[arm][reps / 2] * 1e3;
    }
    return 0;
}

#endif
