/* tp_shard.c - test metrics of sharded evaluation (ABI 2.3): `shard_probe`
 * (shard-aware) and `rank0_probe` (the same code, not shard-aware) walk n
 * items in batches through dgm_eval_shard, key each batch's draws with
 * dgm_eval_draws and sum over the ranks with dgm_eval_sum. They report
 * the share this process walked (<name>/start, <name>/count), the summed
 * item count, index sum and draws, which must be one process's figures
 * (<name>/items, <name>/index_sum, <name>/draws); `fail_start_above: k`
 * fails, before the sum, on a process whose share starts above k (another
 * rank than 0); `bad: true` calls dgm_eval_shard and dgm_eval_sum with bad
 * arguments and reports their codes. */
#include <stdio.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("n", .def = "10", DGM_GE(0), DGM_LE(1e6),
                  .help = "items walked"),
    DGM_PARAM_INT("batch", .def = "3", DGM_GE(1), DGM_LE(1e6),
                  .help = "items per batch"),
    DGM_PARAM_INT("fail_start_above", .def = "-1", DGM_GE(-1), DGM_LE(1e6),
                  .help = "fail where the share starts above this (-1: never)"),
    DGM_PARAM_BOOL("bad", .def = "false",
                   .help = "call the ABI with bad arguments"),
    DGM_PARAM_END,
};

typedef struct opts {
    int64_t n, batch, fail_above;
    bool bad;
    const char *name;
} opts;

static int create(void **self, const dgm_config *cfg, const char *name)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    o->n = dgm_cfg_int(cfg, "n");
    o->batch = dgm_cfg_int(cfg, "batch");
    o->fail_above = dgm_cfg_int(cfg, "fail_start_above");
    o->bad = dgm_cfg_bool(cfg, "bad");
    o->name = name;
    *self = o;
    return 0;
}

static int create_shard(void **self, const dgm_config *cfg)
{
    return create(self, cfg, "shard_probe");
}

static int create_rank0(void **self, const dgm_config *cfg)
{
    return create(self, cfg, "rank0_probe");
}

static int set(dgm_results *out, const opts *o, const char *what, double v)
{
    char name[96];
    snprintf(name, sizeof name, "%s/%s", o->name, what);
    return dgm_results_set(out, name, v);
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    int64_t at0 = -1, cnt = -1;
    if (o->bad) {
        double v = 1;
        int a = dgm_eval_shard(ev, -1, 3, &at0, &cnt);
        int b = dgm_eval_shard(ev, 5, 0, &at0, &cnt);
        int c = dgm_eval_sum(ev, NULL, 2);
        int rc = set(out, o, "bad_n", a);
        if (rc == 0)
            rc = set(out, o, "bad_batch", b);
        if (rc == 0)
            rc = set(out, o, "bad_sum", c);
        if (rc == 0) /* nothing to sum is fine */
            rc = set(out, o, "empty_sum", dgm_eval_sum(ev, &v, 0));
        return rc;
    }
    int rc = dgm_eval_shard(ev, o->n, o->batch, &at0, &cnt);
    if (rc < 0)
        return rc;
    if (o->fail_above >= 0 && at0 > o->fail_above)
        return dgm_error(DGM_EINVAL, "%s: failing on purpose (share at %lld)",
                         o->name, (long long)at0);
    /* items, index sum, one draw per batch (from the eval step's RNG, the
     * draws a model would make) */
    double s[3] = {0, 0, 0};
    for (int64_t i = at0; i < at0 + cnt; i += o->batch) {
        int64_t b = at0 + cnt - i < o->batch ? at0 + cnt - i : o->batch;
        dgm_step *st;
        dgm_vars *io;
        dgm_eval_draws(ev, (uint64_t)i);
        if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TEST, 0, 1, &st, &io)) < 0)
            return rc;
        s[0] += (double)b;
        for (int64_t k = i; k < i + b; k++)
            s[1] += (double)k;
        s[2] += dgm_rng_uniform_f64(st->rng);
    }
    if ((rc = dgm_eval_sum(ev, s, 3)) < 0)
        return rc;
    if ((rc = set(out, o, "start", (double)at0)) < 0 ||
        (rc = set(out, o, "count", (double)cnt)) < 0 ||
        (rc = set(out, o, "items", s[0])) < 0 ||
        (rc = set(out, o, "index_sum", s[1])) < 0)
        return rc;
    return set(out, o, "draws", s[2]);
}

static const dgm_metric_figure figures[] = {{"*", DGM_BETTER_NONE}, {NULL}};

static const dgm_metric_iface shard_iface = {.create = create_shard,
                                             .evaluate = evaluate,
                                             .destroy = free,
                                             .figures = figures,
                                             .shard_aware = true};
static const dgm_metric_iface rank0_iface = {.create = create_rank0,
                                             .evaluate = evaluate,
                                             .destroy = free,
                                             .figures = figures};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&shard_iface), .name = "shard_probe",
     .version = "1.0",
     .summary = "test: a shard-aware walk, its share and sums",
     .params = params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&rank0_iface), .name = "rank0_probe",
     .version = "1.0", .summary = "test: the same walk, not shard-aware",
     .params = params},
};

DGM_PLUGIN_NAME(shard_probe);
DGM_PLUGIN_NAME(rank0_probe);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
