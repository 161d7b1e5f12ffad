/* tp_stray.c - a plugin that lists its name (`stray_block`) in the
 * .dgm_plugins section and has a constructor that creates the file named
 * by $DGM_TEST_STRAY_MARKER: the marker exists exactly when the file was
 * dlopen'ed, which a registry on demand does only when asked for
 * stray_block (`dgm plugins` loads it; `dgm config` of an experiment that
 * does not name it must not). */
#include <stdio.h>
#include <stdlib.h>

#include "dgm/dgm.h"

__attribute__((constructor)) static void mark_loaded(void)
{
    const char *marker = getenv("DGM_TEST_STRAY_MARKER");
    FILE *f = marker && marker[0] ? fopen(marker, "w") : NULL;
    if (f)
        fclose(f);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    *out = *in;
    *self = malloc(1);
    return *self ? 0 : dgm_error(DGM_ENOMEM, "stray_block: out of memory");
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    return x;
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&iface), .name = "stray_block",
    .version = "1.0", .summary = "test block: marks that it was loaded"};
DGM_PLUGIN_NAME(stray_block);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
