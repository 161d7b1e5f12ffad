/* after_n_loss.c - a test loss that behaves until its N-th call, then
 * misbehaves; tests/CMakeLists.txt builds it twice, crash_loss.so and
 * nan_loss.so:
 *
 *   crash_after   -DTP_CRASH_LOSS: zero per example until the N-th call,
 *                 then raise(SIGSEGV); a crashing plugin fails one sweep
 *                 trial and not the sweep
 *   nan_after     -DTP_NAN_LOSS: the mean of its input until the N-th
 *                 call, then NaN; divergence stops a run
 *   fail_after    -DTP_FAIL_LOSS: the mean of its input until the N-th
 *                 call, then an error, on the MPI rank `rank` only (from
 *                 Open MPI's OMPI_COMM_WORLD_RANK; -1: every process): one
 *                 rank failing inside a step stops every rank
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "dgm/dgm.h"

#if defined(TP_CRASH_LOSS)
#define NAME "crash_after"
#define SUMMARY "test: SIGSEGV after N calls"
#elif defined(TP_FAIL_LOSS)
#define NAME "fail_after"
#define SUMMARY "test: an error after N calls, on one MPI rank"
#else
#define NAME "nan_after"
#define SUMMARY "test: NaN after N calls"
#endif

static const dgm_param_spec params[] = {
#if defined(TP_CRASH_LOSS)
    DGM_PARAM_INT("after", .def = "1", DGM_GE(0), DGM_LE(1e9),
                  .help = "calls before the crash"),
    DGM_PARAM_STRING(
        "unless_exists", .def = "null",
        .help = "a file whose existence disarms the crash (for resume tests)"),
#elif defined(TP_NAN_LOSS)
    DGM_PARAM_INT("after", .def = "3", DGM_GE(0), DGM_LE(1e9),
                  .help = "calls before the NaN"),
#elif defined(TP_FAIL_LOSS)
    DGM_PARAM_INT("after", .def = "3", DGM_GE(0), DGM_LE(1e9),
                  .help = "calls before the error"),
    DGM_PARAM_INT("rank", .def = "-1", DGM_GE(-1), DGM_LE(1e6),
                  .help = "the MPI rank that fails (-1: every process)"),
#else
#error "after_n_loss.c: define TP_CRASH_LOSS, TP_NAN_LOSS or TP_FAIL_LOSS"
#endif
    DGM_PARAM_END,
};

typedef struct state {
    int64_t after, calls;
} state;

static int create(void **self, const dgm_config *cfg)
{
    state *s = calloc(1, sizeof *s);
    if (!s)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", NAME);
    s->after = dgm_cfg_int(cfg, "after");
#if defined(TP_FAIL_LOSS)
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    int64_t rank = dgm_cfg_int(cfg, "rank");
    if (rank >= 0 && (!r || atoll(r) != rank))
        s->after = INT64_MAX;
#endif
    /* crash_after only: a file that disarms it */
    const char *f = dgm_cfg_child(cfg, "unless_exists")
                        ? dgm_cfg_str(cfg, "unless_exists")
                        : NULL;
    if (f && access(f, F_OK) == 0)
        s->after = INT64_MAX;
    *self = s;
    return 0;
}

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    state *s = self;
    (void)n;
#if defined(TP_CRASH_LOSS)
    if (s->calls++ >= s->after)
        raise(SIGSEGV);
    /* zero per example ([N]), as evaluation needs */
    dgm_var *x = in[0];
    int nd = x ? dgm_value(x)->ndim : 0;
    dgm_var *s0 = nd > 1 ? dgm_sum(g, x, ((1u << nd) - 1u) & ~1u, false) : x;
    return dgm_affine(g, s0, 0.0f, 0.0f);
#elif defined(TP_FAIL_LOSS)
    if (s->calls++ >= s->after) {
        dgm_error(DGM_EINVAL, "fail_after: failing on call %lld as asked",
                  (long long)s->calls);
        return NULL;
    }
    return dgm_affine(g, dgm_mean_all(g, in[0]), 0.0f, 0.0f);
#else
    dgm_var *m = dgm_affine(g, dgm_mean_all(g, in[0]), 0.0f, 0.0f);
    return s->calls++ < s->after ? m : dgm_affine(g, m, 1.0f, NAN);
#endif
}

static const dgm_loss_iface iface = {.create = create,
                                     .min_inputs = 1,
                                     .max_inputs = 1,
                                     .inputs_help = "any",
                                     .apply = apply,
                                     .destroy = free};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&iface), .name = NAME,
    .version = "1.0",  .summary = SUMMARY,      .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
