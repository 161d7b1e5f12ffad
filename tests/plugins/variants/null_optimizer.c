/* null_optimizer.c - one optimizer whose step does nothing, built once per
 * case (tests/CMakeLists.txt makes tp_<variant>.so from it with
 * -DTP_<VARIANT>); only the parameters and create() differ:
 *
 *   create_fails  create() always fails with DGM_ERANGE and a message: the
 *                 message must survive the trip from the plugin through
 *                 libdgm's last-error buffer to the caller
 *   opt_gamma     refused by the registry: declares `gamma`, a key the host
 *                 reads from every optimizer's map (the step schedule's
 *                 decay), so one value would mean two things
 *   opt_nolr      refused by the registry: no `lr`, the base rate the host
 *                 reads to apply its schedules
 */
#include "dgm/dgm.h"

static int create(void **self, const dgm_config *cfg)
{
    *self = NULL;
#ifdef TP_CREATE_FAILS
    return dgm_error(DGM_ERANGE, "create_fails: lr must be positive, got -1");
#else
    return 0;
#endif
}

static int step(void *self, dgm_param *const *ps, int n, double lr, int64_t t)
{
    return 0;
}

static void destroy(void *self) {}

static const dgm_optimizer_iface iface = {
    .create = create, .step = step, .destroy = destroy};

#if defined(TP_CREATE_FAILS)
#define NAME "create_fails"
#define SUMMARY "create() always fails"
#elif defined(TP_OPT_GAMMA)
#define NAME "opt_gamma"
#define SUMMARY "refused: declares gamma"
#elif defined(TP_OPT_NOLR)
#define NAME "opt_nolr"
#define SUMMARY "refused: no lr"
#else
#error "null_optimizer.c: define one TP_<VARIANT> (see the list above)"
#endif

static const dgm_param_spec params[] = {
#if defined(TP_CREATE_FAILS)
    /* Every optimizer declares `lr`: the host reads it. */
    DGM_PARAM_FLOAT("lr", .def = "0.1", .help = "base learning rate"),
#elif defined(TP_OPT_GAMMA)
    DGM_PARAM_FLOAT("lr", .def = "0.1", DGM_GE(0),
                    .help = "base learning rate"),
    DGM_PARAM_FLOAT("gamma", .def = "0.9", DGM_GE(0), DGM_LE(1),
                    .help = "the plugin's own decay"),
#else
    DGM_PARAM_FLOAT("rate", .def = "0.1", DGM_GE(0),
                    .help = "not what the host reads"),
#endif
    DGM_PARAM_END,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_OPTIMIZER(&iface), .name = NAME,
    .version = "1.0",  .summary = SUMMARY,           .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
