/* build.c - what a model plugin builds itself with: parameters under name
 * scopes and block plugins the host instantiates and owns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "graph_internal.h"
#include "plugin_internal.h"

void dgm__inst_destroy(dgm__inst *in)
{
    if (in->desc && in->self) {
        /* Every kind's interface begins with create, then kind-specific
         * slots; destroy sits at a different offset per kind. */
        switch (in->desc->kind) {
        case DGM_KIND_DATASET:
            in->desc->iface.dataset->destroy(in->self);
            break;
        case DGM_KIND_AUGMENT:
            in->desc->iface.augment->destroy(in->self);
            break;
        case DGM_KIND_BLOCK:
            in->desc->iface.block->destroy(in->self);
            break;
        case DGM_KIND_MODEL:
            in->desc->iface.model->destroy(in->self);
            break;
        case DGM_KIND_LOSS: {
            const dgm_loss_iface *li = in->desc->iface.loss;
            if (li->destroy)
                li->destroy(in->self);
            break;
        }
        case DGM_KIND_OPTIMIZER:
            in->desc->iface.optimizer->destroy(in->self);
            break;
        case DGM_KIND_METRIC:
            in->desc->iface.metric->destroy(in->self);
            break;
        default:
            break;
        }
    }
    in->self = NULL;
}

int dgm_build_param(dgm_build *b, const char *name, dgm_param_role role,
                    int ndim, const int64_t *shape, dgm_param **out)
{
    char full[768];
    int len = b->scope[0]
                  ? snprintf(full, sizeof full, "%s.%s", b->scope, name)
                  : snprintf(full, sizeof full, "%s", name);
    if (len < 0 || (size_t)len >= sizeof full)
        return dgm_error(DGM_EINVAL, "parameter name too long: %s.%s",
                         b->scope, name);
    return dgm_params_add(b->params, full, role, ndim, shape, out);
}

dgm_rng *dgm_build_rng(dgm_build *b) { return b->rng; }

int dgm_build_weights(dgm_build *b, const char *name, int ndim,
                      const int64_t *shape, int64_t bias_len,
                      dgm_param **weight, dgm_param **bias)
{
    char n[256];
    if (ndim < 2)
        return dgm_error(DGM_ESHAPE, "weights '%s': rank %d, need >= 2", name,
                         ndim);
    snprintf(n, sizeof n, "%s.weight", name);
    int rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, ndim, shape, weight);
    if (rc < 0)
        return rc;
    /* a = sqrt(5): PyTorch's default for Linear and Conv */
    dgm_init_kaiming_uniform((*weight)->value, b->rng, 2.2360679775f);
    if (bias_len <= 0)
        return 0;
    snprintf(n, sizeof n, "%s.bias", name);
    if ((rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, 1, &bias_len, bias)) < 0)
        return rc;
    dgm_init_fan_in_uniform((*bias)->value, b->rng,
                            dgm_shape_numel(ndim - 1, shape + 1));
    return 0;
}

int dgm_build_batch_norm(dgm_build *b, const char *name, int64_t c,
                         dgm_bn_params *out)
{
    struct {
        const char *n;
        dgm_param_role role;
        dgm_param **p;
        double v;
    } t[4] = {{"weight", DGM_ROLE_WEIGHT, &out->weight, 1.0},
              {"bias", DGM_ROLE_WEIGHT, &out->bias, 0.0},
              {"running_mean", DGM_ROLE_BUFFER, &out->running_mean, 0.0},
              {"running_var", DGM_ROLE_BUFFER, &out->running_var, 1.0}};
    for (int i = 0; i < 4; i++) {
        char n[256];
        snprintf(n, sizeof n, "%s.%s", name, t[i].n);
        int rc = dgm_build_param(b, n, t[i].role, 1, &c, t[i].p);
        if (rc < 0)
            return rc;
        dgm_tensor_fill((*t[i].p)->value, t[i].v);
    }
    return 0;
}

dgm_var *dgm_bn_forward(dgm_graph *g, const dgm_bn_params *p, dgm_var *x)
{
    return dgm_batch_norm(g, x, dgm_param_var(g, p->weight),
                          dgm_param_var(g, p->bias), p->running_mean,
                          p->running_var, 0.1f, 1e-5f);
}

int dgm_build_layer_norm(dgm_build *b, const char *name, int64_t d,
                         dgm_param **weight, dgm_param **bias)
{
    char n[256];
    snprintf(n, sizeof n, "%s.weight", name);
    int rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, 1, &d, weight);
    snprintf(n, sizeof n, "%s.bias", name);
    if (rc == 0)
        rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, 1, &d, bias);
    if (rc == 0)
        dgm_tensor_fill((*weight)->value, 1.0);
    return rc;
}

int dgm_build_embedding(dgm_build *b, const char *name, int64_t n, int64_t dim,
                        float std, dgm_param **out)
{
    int64_t s[2] = {n, dim};
    int rc = dgm_build_param(b, name, DGM_ROLE_WEIGHT, 2, s, out);
    if (rc == 0)
        dgm_init_normal((*out)->value, dgm_build_rng(b), 0.0f, std);
    return rc;
}

const dgm_params *dgm_build_params(const dgm_build *b)
{
    return b->params;
}

int dgm_block_create(dgm_build *b, const dgm_config *cfg, const char *scope,
                     const dgm_shape *in, dgm_shape *out, dgm_block **blk)
{
    *blk = NULL;
    if (!cfg || dgm_cfg_kind_of(cfg) != DGM_CFG_MAP)
        return cfg ? dgm_cfg_error(cfg, NULL, DGM_ECONFIG,
                                   "a block must be a map with `plugin:`")
                   : dgm_error(DGM_EMISSING, "block '%s': no config given",
                               scope);
    const dgm_config *pn = dgm_cfg_get(cfg, "plugin");
    const char *pname = NULL;
    if (!pn || dgm_cfg_to_str(pn, &pname) < 0)
        return dgm_cfg_error(cfg, "plugin", DGM_EMISSING,
                             "a block needs `plugin: NAME`");
    const dgm_plugin_desc *desc;
    const char *file;
    int rc = dgm_registry_find(b->reg, DGM_KIND_BLOCK, pname, &desc, &file);
    if (rc < 0)
        return dgm_cfg_error(cfg, "plugin", rc, "%s", dgm_last_error());
    /* Configs reached through a model's schema were validated when the
     * experiment loaded; validating again is idempotent and covers blocks
     * a model builds from configs of its own. */
    rc = dgm_config_validate((dgm_config *)cfg, desc->params, desc->name,
                             NULL);
    if (rc < 0)
        return rc;

    dgm_block *k = calloc(1, sizeof *k);
    if (!k)
        return dgm_error(DGM_ENOMEM, "block '%s': out of memory", pname);
    size_t old = strlen(b->scope);
    int len = old ? snprintf(b->scope + old, sizeof b->scope - old, ".%s",
                             scope)
                  : snprintf(b->scope, sizeof b->scope, "%s", scope);
    if (len < 0 || (size_t)len >= sizeof b->scope - old) {
        b->scope[old] = '\0';
        free(k);
        return dgm_error(DGM_EINVAL, "block scope too long at '%s'", scope);
    }
    k->scope = strdup(b->scope);
    k->in = *in;
    k->out = *out;
    const dgm_block_iface *bi = desc->iface.block;
    rc = k->scope ? bi->create(&k->inst.self, cfg, b, in, &k->out)
                  : dgm_error(DGM_ENOMEM, "out of memory");
    b->scope[old] = '\0';
    if (rc < 0) {
        dgm_error_context("block '%s' (%s, %s:%d): ", desc->name,
                          k->scope ? k->scope : scope, dgm_cfg_file(cfg),
                          dgm_cfg_line(cfg));
        free(k->scope);
        free(k);
        return rc;
    }
    k->inst.desc = desc;
    k->inst.cfg = cfg;
    k->next = b->blocks;
    b->blocks = k;
    *out = k->out;
    *blk = k;
    return 0;
}

static bool same_dims(int n, const int64_t *a, const int64_t *b)
{
    return n == 0 || memcmp(a, b, sizeof *a * (size_t)n) == 0;
}

dgm_var *dgm_block_forward(dgm_block *blk, dgm_graph *g, dgm_var *x)
{
    if (!blk || !x)
        return NULL;
    const dgm_block_iface *bi = blk->inst.desc->iface.block;
    dgm_var *y = bi->forward(blk->inst.self, g, x);
    if (!y) {
        if (dgm_graph_status(g) == 0)
            dgm_error_context("block '%s' (%s): ", blk->inst.desc->name,
                              blk->scope);
        return NULL;
    }
    /* The model sized what follows from the shape create reported, so a
     * forward that gives another one would fail later in some op far from
     * its cause, or not at all. Only inputs of the shape create saw are
     * checked: a sequence block may run on a shorter window (generation). */
    const dgm_tensor *xv = dgm_value(x), *yv = dgm_value(y);
    if (xv->ndim != blk->in.ndim + 1 ||
        !same_dims(blk->in.ndim, xv->shape + 1, blk->in.dim))
        return y;
    if (yv->ndim == blk->out.ndim + 1 && yv->shape[0] == xv->shape[0] &&
        same_dims(blk->out.ndim, yv->shape + 1, blk->out.dim))
        return y;
    char got[96], want[96], batch[96], in[96];
    int64_t w[DGM_MAX_DIMS + 1];
    w[0] = xv->shape[0];
    memcpy(w + 1, blk->out.dim, sizeof *w * (size_t)blk->out.ndim);
    return dgm__fail_null(
        g, DGM_ESHAPE,
        "block '%s' (%s): forward returned %s for input %s, but its create "
        "reported %s per example (%s for this batch)",
        blk->inst.desc->name, blk->scope,
        dgm_shape_str(yv->ndim, yv->shape, got, sizeof got),
        dgm_shape_str(xv->ndim, xv->shape, in, sizeof in),
        dgm_shape_str(blk->out.ndim, blk->out.dim, want, sizeof want),
        dgm_shape_str(blk->out.ndim + 1, w, batch, sizeof batch));
}

void dgm__build_destroy_blocks(dgm_build *b)
{
    while (b->blocks) {
        dgm_block *k = b->blocks;
        b->blocks = k->next;
        dgm__inst_destroy(&k->inst);
        free(k->scope);
        free(k);
    }
}

/* A standalone build keeps its RNG right behind the struct. */
typedef struct standalone_build {
    dgm_build b;
    dgm_rng rng;
} standalone_build;

int dgm_build_new(dgm_build **out, dgm_registry *reg, dgm_params *params,
                  uint64_t seed)
{
    *out = NULL;
    if (!reg || !params)
        return dgm_error(DGM_EINVAL, "dgm_build_new: no registry or params");
    standalone_build *sb = calloc(1, sizeof *sb);
    if (!sb)
        return dgm_error(DGM_ENOMEM, "dgm_build_new: out of memory");
    dgm_rng_seed(&sb->rng, seed);
    sb->b.reg = reg;
    sb->b.params = params;
    sb->b.rng = &sb->rng;
    *out = &sb->b;
    return 0;
}

void dgm_build_free(dgm_build *b)
{
    if (!b)
        return;
    dgm__build_destroy_blocks(b);
    free((standalone_build *)b);
}
