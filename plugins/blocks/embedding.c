/* embedding.c - block `embedding`: token ids [N, ...] -> vectors
 * [N, ..., dim], one learned row per id (PyTorch's nn.Embedding: weight
 * "<scope>.weight" [vocab, dim] drawn from N(0, 1)). */
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("vocab", DGM_GE(1), DGM_LE(1 << 24), .help = "number of ids"),
    DGM_PARAM_INT("dim", .def = "64", DGM_GE(1), DGM_LE(1 << 20),
                  .help = "vector width"),
    DGM_PARAM_END,
};

typedef struct emb {
    dgm_param *w;
} emb;

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    int64_t shape[2] = {dgm_cfg_int(cfg, "vocab"), dgm_cfg_int(cfg, "dim")};
    if (in->ndim + 1 > DGM_MAX_DIMS - 1)
        return dgm_error(DGM_ESHAPE, "embedding: input rank %d is too high",
                         in->ndim);
    emb *e = calloc(1, sizeof *e);
    if (!e)
        return dgm_error(DGM_ENOMEM, "embedding: out of memory");
    int rc = dgm_build_embedding(b, "weight", shape[0], shape[1], 1.0f, &e->w);
    if (rc < 0) {
        free(e);
        return rc;
    }
    *out = *in;
    out->dim[out->ndim++] = shape[1];
    *self = e;
    return 0;
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    emb *e = self;
    return dgm_embedding(g, dgm_param_var(g, e->w), x);
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_BLOCK(&iface),
    .name = "embedding",
    .version = "1.0",
    .summary = "token ids -> learned vectors",
    .params = params,

};

DGM_PLUGIN_NAME(embedding);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
