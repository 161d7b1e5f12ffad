/* block_check.c - test support: blocks made from YAML and checked (shapes,
 * layer counts, gradients); see block_check.h. */
#include "block_check.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "shipped_registry.h"

dgm_var *tc_run_block(dgm_graph *g, dgm_var **in, void *ctx)
{
    tc_block_ctx *c = ctx;
    if (c->eval)
        dgm_graph_set_training(g, false);
    return dgm_block_forward(c->blk, g, in[0]);
}

dgm_block *tc_make_block(dgm_build **b, dgm_params *ps, dgm_config **cfg,
                         const char *yaml, dgm_shape in, dgm_shape *out)
{
    ck_assert_int_eq(dgm_build_new(b, tc_reg, ps, 3), 0);
    ck_assert_int_eq(dgm_config_parse(cfg, yaml, "block.yaml"), 0);
    dgm_block *blk;
    int rc = dgm_block_create(*b, *cfg, "blk", &in, out, &blk);
    ck_assert_msg(rc == 0, "%s: %s", yaml, dgm_last_error());
    return blk;
}

dgm_tensor *tc_batch_of(dgm_shape in, int64_t n, uint64_t seed)
{
    int64_t xs[DGM_MAX_DIMS] = {n};
    memcpy(xs + 1, in.dim, sizeof(int64_t) * (size_t)in.ndim);
    return gc_randn(in.ndim + 1, xs, seed);
}

void tc_gradcheck_block(const char *yaml, dgm_shape in, dgm_shape out,
                        int64_t n, bool eval)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    tc_block_ctx c = {tc_make_block(&b, ps, &cfg, yaml, in, &out), eval};
    dgm_tensor *x = tc_batch_of(in, n, 11);
    gc_result r = gc_gradcheck(tc_run_block, &c, 1, &x, NULL, DGM_BACKEND_REF,
                               1e-2, 2e-2, 2e-3);
    ck_assert_msg(r.ok, "%s: %s", yaml, gc_describe(&r));
    r = gc_compare_backends(tc_run_block, &c, 1, &x, NULL, 1e-4, 1e-4);
    ck_assert_msg(r.ok, "%s: %s", yaml, gc_describe(&r));
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}

void tc_sized_block(const char *yaml, dgm_shape in, dgm_shape out,
                    int ndim_want, const int64_t *want)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_block *blk = tc_make_block(&b, ps, &cfg, yaml, in, &out);
    dgm_graph *g = dgm_graph_new();
    dgm_rng rng;
    dgm_rng_seed(&rng, 2);
    dgm_graph_set_rng(g, &rng);
    dgm_tensor *x = tc_batch_of(in, 2, 5);
    dgm_var *y = dgm_block_forward(blk, g, dgm_input(g, x));
    ck_assert_msg(y != NULL, "%s: %s", yaml, dgm_last_error());
    const dgm_tensor *t = dgm_value(y);
    ck_assert_int_eq(t->ndim, ndim_want);
    for (int i = 0; i < ndim_want; i++)
        ck_assert_msg(t->shape[i] == want[i], "%s: dim %d is %lld, not %lld",
                      yaml, i, (long long)t->shape[i], (long long)want[i]);
    dgm_tensor_free(x);
    dgm_graph_free(g);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}

int tc_count_layers(const char *yaml, dgm_shape in, dgm_shape out,
                    const char *prefix, int64_t *dim1_of_last)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    tc_make_block(&b, ps, &cfg, yaml, in, &out);
    int k = 0;
    char name[64];
    for (;;) {
        snprintf(name, sizeof name, "blk.%s%d.weight", prefix, k + 1);
        dgm_param *p = dgm_params_find(ps, name);
        if (!p)
            break;
        *dim1_of_last = p->value->shape[1];
        k++;
    }
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
    return k;
}
