/* dgm/config.h - experiment configuration: a YAML tree that remembers where
 * every node came from (file, line, column) and its key path.
 *
 * The host loads and validates the tree; a plugin receives its own,
 * already validated node with every default filled in and reads it:
 *
 *     int64_t latent = dgm_cfg_int(cfg, "latent");
 *     const dgm_config *enc = dgm_cfg_child(cfg, "encoder");
 *     if (latent > 512)
 *         return dgm_cfg_error(cfg, "latent", DGM_ERANGE,
 *                              "at most 512, got %lld", (long long)latent);
 *
 * which produces "exp.yaml:7:11: model.latent: at most 512, got 1024".
 *
 * Ownership: dgm_config_load / _parse return a root the caller frees with
 * dgm_config_free; nodes reached from it belong to the root.
 */
#ifndef DGM_CONFIG_H
#define DGM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dgm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dgm_config dgm_config;

typedef enum dgm_cfg_kind {
    DGM_CFG_NULL = 0,
    DGM_CFG_SCALAR,
    DGM_CFG_SEQ,
    DGM_CFG_MAP
} dgm_cfg_kind;

/* ---- loading --------------------------------------------------------- */

/* Parse a file. `include: base.yaml` (or a list) at the top level of any
 * file is loaded first, relative to the including file, and the including
 * file's keys are merged over it map by map. Anchors and aliases resolve. */
DGM_API int dgm_config_load(dgm_config **out, const char *path);
/* Parse text; `name` is what messages call the source. */
DGM_API int dgm_config_parse(dgm_config **out, const char *text,
                             const char *name);
DGM_API void dgm_config_free(dgm_config *root);
/* A deep copy (keeps source positions). */
DGM_API dgm_config *dgm_config_clone(const dgm_config *node);

/* Apply a command-line override: "a.b.c=value" replaces the key or, if
 * absent, adds it (making maps on the way; validation later refuses keys
 * no schema knows), "+a.b=value" adds a key that must not exist yet.
 * Values are parsed as YAML ("[1, 2]", "{plugin: mlp}"). Indices:
 * "a.b[1]=3" ("[len]" appends). A refused override changes nothing. */
DGM_API int dgm_config_override(dgm_config *root, const char *assignment);
/* Set a path to a node (deep-copied), creating maps along the way. */
DGM_API int dgm_config_set(dgm_config *root, const char *path,
                           const dgm_config *value);
/* Remove the key at path ("sweep", "model.encoder"; not a list
 * element) and free its subtree. 0, or DGM_ENOTFOUND when absent. */
DGM_API int dgm_config_remove(dgm_config *root, const char *path);
/* A new plain scalar (read by YAML's core schema, as any plain scalar
 * is) that stands where `at` stands (file, line, column; "<string>" when
 * at is NULL), for values a program makes (a sweep's drawn values), so
 * that messages about it point where it came from. Ownership: free with
 * dgm_config_free. NULL when out of memory. */
DGM_API dgm_config *dgm_config_new_scalar(const char *text,
                                          const dgm_config *at);
/* Whether a and b hold the same configuration: the same kinds, keys in
 * the same order and scalar texts, and each scalar reading as the same
 * type (dgm_cfg_type_of). Positions are ignored. */
DGM_API bool dgm_config_equal(const dgm_config *a, const dgm_config *b);

/* Write as YAML (block style, keys in file order). */
DGM_API int dgm_config_write(const dgm_config *node, FILE *f);
/* Same into a malloc'ed string the caller frees with free(). */
DGM_API char *dgm_config_to_string(const dgm_config *node);
/* The node as one line of flow-style YAML ("20", "[400, 200]",
 * "{plugin: mlp, hidden: [400]}", "\"a b\""), quoted and escaped as
 * dgm_config_write does, so that it reads back as the same value (a
 * KEY=VALUE override's VALUE). Refused as dgm_config_write refuses.
 * malloc'ed; the caller frees it with free(). */
DGM_API char *dgm_config_to_flow_string(const dgm_config *node);

/* ---- navigation ------------------------------------------------------ */

/* DGM_CFG_NULL for an absent node and for YAML's null (null, ~, empty). */
DGM_API dgm_cfg_kind dgm_cfg_kind_of(const dgm_config *node);
/* A node by relative path ("model.encoder.hidden[1]"); NULL if absent. */
DGM_API const dgm_config *dgm_cfg_get(const dgm_config *node,
                                      const char *path);
DGM_API dgm_config *dgm_cfg_get_mut(dgm_config *node, const char *path);
DGM_API int dgm_cfg_len(const dgm_config *node); /* map or seq size */
DGM_API const dgm_config *dgm_cfg_at(const dgm_config *node, int i);
DGM_API const char *dgm_cfg_key_at(const dgm_config *map, int i);
/* The scalar text of a node; NULL if not a scalar. */
DGM_API const char *dgm_cfg_text(const dgm_config *node);

/* Where a node came from. */
DGM_API const char *dgm_cfg_file(const dgm_config *node);
DGM_API int dgm_cfg_line(const dgm_config *node);   /* 1-based */
DGM_API int dgm_cfg_column(const dgm_config *node); /* 1-based */
/* "model.encoder.hidden[1]" ("" for the root). */
DGM_API const char *dgm_cfg_path(const dgm_config *node);
/* True if the node was filled in from a schema default. */
DGM_API bool dgm_cfg_is_default(const dgm_config *node);

/* How YAML's core schema reads a node: a quoted scalar is a string; a
 * plain one is null (null, ~, empty), a bool, an int, a float or else a
 * string. DGM_CFG_T_NONE for an absent node, a list or a map. */
typedef enum dgm_cfg_type {
    DGM_CFG_T_NONE = 0,
    DGM_CFG_T_NULL,
    DGM_CFG_T_BOOL,
    DGM_CFG_T_INT,
    DGM_CFG_T_FLOAT,
    DGM_CFG_T_STRING
} dgm_cfg_type;
DGM_API dgm_cfg_type dgm_cfg_type_of(const dgm_config *node);

/* Make a path-valued scalar absolute, in place: a relative path is
 * relative to the folder of the file it was written in (for text that
 * came from no file, "<command line>" or "<string>", to the working
 * directory), and made canonical when it exists. A config then works
 * from any working directory. 0, or DGM_ETYPE / DGM_ENOMEM / DGM_EIO. */
DGM_API int dgm_cfg_absolute_path(dgm_config *node);

/* ---- typed reading with errors --------------------------------------- */

/* Each returns 0, or DGM_ETYPE / DGM_ERANGE with "file:line:col: path:
 * ..." when the node is not of that type. */
DGM_API int dgm_cfg_to_int(const dgm_config *node, int64_t *out);
DGM_API int dgm_cfg_to_float(const dgm_config *node, double *out);
DGM_API int dgm_cfg_to_bool(const dgm_config *node, bool *out);
DGM_API int dgm_cfg_to_str(const dgm_config *node, const char **out);

/* ---- reading validated values (what plugins use) --------------------- */

/* For keys the schema declared; a missing or ill-typed key here is a
 * programmer error in the plugin (the schema and the code disagree) and
 * aborts with a message naming the key. */
DGM_API int64_t dgm_cfg_int(const dgm_config *node, const char *key);
DGM_API double dgm_cfg_float(const dgm_config *node, const char *key);
DGM_API bool dgm_cfg_bool(const dgm_config *node, const char *key);
DGM_API const char *dgm_cfg_str(const dgm_config *node, const char *key);
/* A list of ints/floats: returns the count and writes at most max. */
DGM_API int dgm_cfg_int_list(const dgm_config *node, const char *key,
                             int64_t *out, int max);
DGM_API int dgm_cfg_float_list(const dgm_config *node, const char *key,
                               double *out, int max);
/* A nested node (a sub-plugin's map); NULL if absent or null. */
DGM_API const dgm_config *dgm_cfg_child(const dgm_config *node,
                                        const char *key);
DGM_API bool dgm_cfg_has(const dgm_config *node, const char *key);

/* Set the last error to "file:line:col: path.key: <message>" for node's
 * child `key` (a key or a relative path such as "encoder.hidden[1]"; the
 * node itself if key is NULL or absent) and return
 * code. */
DGM_API int dgm_cfg_error(const dgm_config *node, const char *key, int code,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- schemas --------------------------------------------------------- */

typedef enum dgm_ptype {
    DGM_P_BOOL = 1,
    DGM_P_INT,
    DGM_P_FLOAT,
    DGM_P_STRING,
    DGM_P_CHOICE, /* a string from `choices` */
    DGM_P_INT_LIST,
    DGM_P_FLOAT_LIST,
    DGM_P_STRING_LIST,
    DGM_P_PLUGIN,      /* a map with `plugin:`, validated by that plugin */
    DGM_P_PLUGIN_LIST, /* a list of such maps */
    DGM_P_ANY,         /* any YAML; the plugin checks it */
    /* (ABI 2.3) A file or folder name: a string ("" for none) that the
     * host makes absolute when it validates the map, relative to the
     * working directory, so that the run's saved config.yaml names the
     * same file from any working directory. */
    DGM_P_PATH,
    DGM_P_PATHS /* (ABI 2.3) one such path or a list of them */
} dgm_ptype;

/* One key of a plugin's map. Declare it with the typed macros below,
 * which name every field (designated initializers), never positionally:
 *
 *     static const dgm_param_spec params[] = {
 *         DGM_PARAM_FLOAT("lr", .def = "1e-3", DGM_GT(0),
 *                         .help = "learning rate"),
 *         DGM_PARAM_FLOAT("p", .def = "0.5", DGM_GE(0), DGM_LT(1)),
 *         DGM_PARAM_INT_LIST("hidden", .def = "[400]", DGM_GE(1),
 *                            .min_len = 1, .max_len = 8),
 *         DGM_PARAM_CHOICE("act", .def = "relu", .choices = "relu|tanh"),
 *         DGM_PARAM_PLUGIN("encoder", .kind = "block"),
 *         DGM_PARAM_END,
 *     };
 *
 * The registry checks a schema when the plugin loads (a bound on a type
 * without numbers, an empty interval, a default of the wrong type or
 * outside its own bounds), so such a plugin is refused, named, before any
 * experiment uses it. */
typedef struct dgm_param_spec {
    const char *name;
    dgm_ptype type;
    const char *help;
    /* YAML text of the default ("1.0e-3", "[400]", "null"); NULL means
     * the key is required (for every type, P_PLUGIN included); "null"
     * means optional: absent or null reads as null (dgm_cfg_child gives
     * NULL). */
    const char *def;
    const char *choices; /* P_CHOICE: "relu|tanh|gelu" */
    const char *kind;    /* P_PLUGIN(_LIST): the kind ("block"); NULL: any */
    /* Bounds of an INT or FLOAT, or of each element of an INT_LIST or
     * FLOAT_LIST; set them with DGM_GE/GT/LE/LT. A bounded FLOAT is also
     * finite (never NaN or +-inf). */
    double min, max;
    bool has_min, has_max;
    bool min_excl, max_excl; /* > instead of >=, < instead of <= */
    /* Lists: the number of elements, min_len..max_len (max_len 0: no
     * upper limit). */
    int32_t min_len, max_len;
} dgm_param_spec;

/* The typed declarations: the first argument is the key, the rest are
 * designated fields (.def, .help, .choices, .kind, .min_len, .max_len)
 * and bounds. */
#define DGM_PARAM_BOOL(...)                                                    \
    {                                                                          \
        .type = DGM_P_BOOL, .name = __VA_ARGS__                                \
    }
#define DGM_PARAM_INT(...)                                                     \
    {                                                                          \
        .type = DGM_P_INT, .name = __VA_ARGS__                                 \
    }
#define DGM_PARAM_FLOAT(...)                                                   \
    {                                                                          \
        .type = DGM_P_FLOAT, .name = __VA_ARGS__                               \
    }
#define DGM_PARAM_STRING(...)                                                  \
    {                                                                          \
        .type = DGM_P_STRING, .name = __VA_ARGS__                              \
    }
#define DGM_PARAM_CHOICE(...)                                                  \
    {                                                                          \
        .type = DGM_P_CHOICE, .name = __VA_ARGS__                              \
    }
#define DGM_PARAM_INT_LIST(...)                                                \
    {                                                                          \
        .type = DGM_P_INT_LIST, .name = __VA_ARGS__                            \
    }
#define DGM_PARAM_FLOAT_LIST(...)                                              \
    {                                                                          \
        .type = DGM_P_FLOAT_LIST, .name = __VA_ARGS__                          \
    }
#define DGM_PARAM_STRING_LIST(...)                                             \
    {                                                                          \
        .type = DGM_P_STRING_LIST, .name = __VA_ARGS__                         \
    }
#define DGM_PARAM_PLUGIN(...)                                                  \
    {                                                                          \
        .type = DGM_P_PLUGIN, .name = __VA_ARGS__                              \
    }
#define DGM_PARAM_PLUGIN_LIST(...)                                             \
    {                                                                          \
        .type = DGM_P_PLUGIN_LIST, .name = __VA_ARGS__                         \
    }
#define DGM_PARAM_ANY(...)                                                     \
    {                                                                          \
        .type = DGM_P_ANY, .name = __VA_ARGS__                                 \
    }
#define DGM_PARAM_PATH(...)                                                    \
    {                                                                          \
        .type = DGM_P_PATH, .name = __VA_ARGS__                                \
    }
#define DGM_PARAM_PATHS(...)                                                   \
    {                                                                          \
        .type = DGM_P_PATHS, .name = __VA_ARGS__                               \
    }

/* Bounds: value >= v, > v, <= v, < v. Combine one lower and one upper
 * bound: DGM_GE(0), DGM_LT(1) is [0, 1). */
#define DGM_GE(v) .min = (v), .has_min = true
#define DGM_GT(v) .min = (v), .has_min = true, .min_excl = true
#define DGM_LE(v) .max = (v), .has_max = true
#define DGM_LT(v) .max = (v), .has_max = true, .max_excl = true

/* Marks the end of a schema array. */
#define DGM_PARAM_END                                                          \
    {                                                                          \
        .name = NULL                                                           \
    }

/* Check `node` (a map) against schema: unknown keys (with a did-you-mean),
 * types, bounds, list lengths, choices, required keys; add the defaults for
 * absent keys.
 * `owner` names the plugin in messages ("for plugin 'vae'"); "experiment"
 * reads "for the experiment" and an owner with a blank ("the train
 * section") is printed as is. Keys in `extra_keys` (NULL-ended,
 * may be NULL) are allowed and left alone. Nested P_PLUGIN values are not
 * descended into (the host validates them when it creates that plugin). */
DGM_API int dgm_config_validate(dgm_config *node, const dgm_param_spec *schema,
                                const char *owner,
                                const char *const *extra_keys);

/* A schema entry's bounds as messages print them ("[1, 1048576]",
 * "> 0", "in [0, 1)"), written into buf (cap bytes). Returns buf. */
DGM_API const char *dgm_param_range_text(const dgm_param_spec *s, char *buf,
                                         size_t cap);

/* Check one schema entry for consistency (bounds, list lengths, its
 * default against its own type and bounds): 0, or DGM_EFORMAT with
 * "param 'x': ..." (the caller prefixes the file and plugin). The
 * registry runs it on every entry when a plugin loads. */
DGM_API int dgm_param_spec_check(const dgm_param_spec *s);

/* The closest of candidates to word by edit distance, or NULL if none is
 * close enough to suggest. */
DGM_API const char *dgm_did_you_mean(const char *word,
                                     const char *const *candidates, int n);

#ifdef __cplusplus
}
#endif
#endif
