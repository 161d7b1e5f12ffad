/* passthrough_loss.c - one loss that returns its input, built once per
 * descriptor defect the registry must notice: tests/CMakeLists.txt makes
 * tp_<variant>.so from it with -DTP_<VARIANT>. Only the descriptor differs
 * between the variants, so it is the only thing written per variant:
 *
 *   abi_major     built for ABI 3.0 (major mismatch)
 *   abi_minor     needs ABI 2.99 (a newer host)
 *   small         claims 16 bytes, too small for the fields the host reads
 *   abi_layout    the right ABI version, but built (as it claims) with
 *                 DGM_MAX_DIMS = 4, so every dgm_tensor it touched would be
 *                 laid out differently from the host's
 *   bad_kind      kind 99 (out of range)
 *   bad_name      the name "Bad-Name" is not [a-z0-9_]
 *   short_iface   iface_size stops before the `check` slot, as a descriptor
 *                 written without DGM_PLUGIN_LOSS (or for a shorter
 *                 interface) has it; the host must not read past it
 *   bad_default   a default outside the parameter's own bounds (> 0 with
 *                 default 0), which no experiment has to leave out first
 *                 for the bug to show
 *   bad_param     the second descriptor's schema has a param of invalid
 *                 type 42, so the whole file (its good first plugin too)
 *                 is refused
 *   loss_weight   declares `weight`, a key the host reads from every
 *                 objective term (the term's weight)
 *   dup_a, dup_b  two files that both define "dup_thing": the name becomes
 *                 ambiguous
 */
#include <stddef.h>

#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

/* A variant defines NAME and what it gets wrong: HEADER (the ABI fields),
 * KIND (kind and interface), PARAMS or SUMMARY; the rest is well formed. */
#define RAW_HEADER(major, minor, bytes)                                        \
    .abi_major = (major), .abi_minor = (minor), .size = (bytes)

#if defined(TP_ABI_MAJOR)
#define NAME "tp_abi_major"
#define HEADER RAW_HEADER(DGM_ABI_MAJOR + 1, 0, sizeof(dgm_plugin_desc))
#elif defined(TP_ABI_MINOR)
#define NAME "tp_abi_minor"
#define HEADER RAW_HEADER(DGM_ABI_MAJOR, 99, sizeof(dgm_plugin_desc))
#elif defined(TP_SMALL)
#define NAME "tp_small"
#define HEADER RAW_HEADER(DGM_ABI_MAJOR, DGM_ABI_MINOR, 16)
#elif defined(TP_ABI_LAYOUT)
#define NAME "tp_abi_layout"
/* DGM_PLUGIN_HEADER with one value changed, as a build against headers
 * with another DGM_MAX_DIMS would have it. */
#define HEADER                                                                 \
    RAW_HEADER(DGM_ABI_MAJOR, DGM_ABI_MINOR, sizeof(dgm_plugin_desc)),         \
        .layout = DGM__ABI_LAYOUT_DIMS(4)
#elif defined(TP_BAD_KIND)
#define NAME "tp_bad_kind"
#define KIND                                                                   \
    .kind = (dgm_kind)99, .iface = {.loss = &iface}, .iface_size = sizeof iface
#elif defined(TP_BAD_NAME)
#define NAME "Bad-Name"
#elif defined(TP_SHORT_IFACE)
#define NAME "short_iface"
#define KIND                                                                   \
    .kind = DGM_KIND_LOSS, .iface = {.loss = &iface},                          \
    .iface_size = offsetof(dgm_loss_iface, check)
#elif defined(TP_BAD_DEFAULT)
#define NAME "bad_default"
static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("scale", .def = "0", DGM_GT(0), .help = "a factor"),
    DGM_PARAM_END,
};
#define PARAMS params
#elif defined(TP_BAD_PARAM)
#define NAME "bad_param"
static const dgm_param_spec params[] = {
    DGM_PARAM_INT("fine", .def = "1", .help = "a valid param"),
    {.name = "broken",
     .type = (dgm_ptype)42,
     .def = "1",
     .help = "invalid type"},
    DGM_PARAM_END,
};
#define PARAMS params
#elif defined(TP_LOSS_WEIGHT)
#define NAME "loss_weight"
#define SUMMARY "refused: declares weight"
static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("weight", .def = "1.0", .help = "a class weight"),
    DGM_PARAM_END,
};
#define PARAMS params
#elif defined(TP_DUP_A) || defined(TP_DUP_B)
#define NAME "dup_thing"
#ifdef TP_DUP_A
#define SUMMARY "duplicate name (a)"
#else
#define SUMMARY "duplicate name (b)"
#endif
/* Listed, so a registry on demand loads both files when asked for it. */
DGM_PLUGIN_NAME(dup_thing);
#else
#error "passthrough_loss.c: define one TP_<VARIANT> (see the list above)"
#endif

#ifndef HEADER
#define HEADER DGM_PLUGIN_HEADER
#endif
#ifndef KIND
#define KIND DGM_PLUGIN_LOSS(&iface)
#endif
#ifndef SUMMARY
#define SUMMARY "refused"
#endif
#ifndef PARAMS
#define PARAMS NULL
#endif

static const dgm_plugin_desc descs[] = {
#ifdef TP_BAD_PARAM
    /* valid, but refused with the rest of its file */
    {DGM_PLUGIN_HEADER, KIND, .name = "bad_param_ok", .version = "1.0",
     .summary = "valid"},
#endif
    {HEADER, KIND, .name = NAME, .version = "1.0", .summary = SUMMARY,
     .params = PARAMS},
};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof *descs ? &descs[i] : NULL;
}
