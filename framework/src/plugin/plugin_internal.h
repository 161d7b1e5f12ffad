/* plugin_internal.h - what the registry and the build helpers share with
 * the host: named-tensor lists, plugin instances, blocks and the build
 * context (never installed). */
#ifndef DGM_PLUGIN_INTERNAL_H
#define DGM_PLUGIN_INTERNAL_H

#include "dgm/host.h"
#include "dgm/plugin.h"

/* Named tensors of one step (a host limit: see host_internal.h). */
#define DGM_MAX_VARS 48

struct dgm_vars {
    int n;
    /* Copies: a caller's name may be a buffer it reuses (public rule in
     * dgm/plugin.h). */
    char name[DGM_MAX_VARS][DGM_VAR_NAME_MAX];
    dgm_var *var[DGM_MAX_VARS];
};

void dgm__vars_clear(dgm_vars *vs);
/* "a, b, c": the names vs holds, for an error that says what there is;
 * cut to fit buf's n bytes. Returns buf. */
const char *dgm__vars_names(const dgm_vars *vs, char *buf, size_t n);

/* A plugin instance: descriptor, its state and the config it was made
 * from. */
typedef struct dgm__inst {
    const dgm_plugin_desc *desc;
    void *self;
    const dgm_config *cfg;
} dgm__inst;

void dgm__inst_destroy(dgm__inst *in);

struct dgm_block {
    dgm__inst inst;
    char *scope;
    dgm_shape in, out;
    struct dgm_block *next; /* the build's list, for destruction */
};

struct dgm_build {
    dgm_registry *reg;
    dgm_params *params;
    dgm_rng *rng;
    char scope[512];
    dgm_block *blocks; /* every block created, newest first */
};

/* Destroy every block a build created. */
void dgm__build_destroy_blocks(dgm_build *b);

#endif
