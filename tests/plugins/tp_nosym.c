/* tp_nosym.c - a shared object without dgm_plugin_query: the registry
 * must refuse it with DGM_ENOSYM. */
#include "dgm/dgm.h"

DGM_PLUGIN_EXPORT int tp_nosym_something_else(void)
{
    return 42;
}
