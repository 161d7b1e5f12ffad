/* config_internal.h - the config tree's node, shared by config_*.c
 * (never installed). */
#ifndef DGM_CONFIG_INTERNAL_H
#define DGM_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/config.h"

#define DGM__CFG_MAX_DEPTH 64
/* Nodes one document may expand to: aliases copy, and a few nested
 * aliases ("billion laughs") would otherwise exhaust memory. */
#define DGM__CFG_MAX_NODES (1L << 20)

struct dgm_config {
    dgm_cfg_kind kind;
    char *text;  /* scalar text (NULL for maps and sequences) */
    bool quoted; /* a quoted scalar is always a string */
    char *key;   /* this node's key in its parent map, else NULL */
    dgm_config **child;
    int n, cap;
    dgm_config *parent;
    char *file;
    int line, col;         /* 1-based */
    int key_line, key_col; /* where its key stands (0: no key or unknown) */
    bool is_default;
    char *path; /* cache for dgm_cfg_path */
};

dgm_config *dgm__cfg_new(dgm_cfg_kind kind, const char *file, int line,
                         int col);
/* Append child (taking it over); key for maps. 0 or DGM_ENOMEM. */
int dgm__cfg_append(dgm_config *parent, const char *key, dgm_config *child);
/* Replace parent's i-th child (freeing the old one). */
void dgm__cfg_replace(dgm_config *parent, int i, dgm_config *child);
int dgm__cfg_index(const dgm_config *map, const char *key);
/* Mark a subtree as filled in from a default. */
void dgm__cfg_mark_default(dgm_config *n);
/* A DGM_P_PATH value made absolute from the working directory ("" and
 * absolute paths stay as they are). */
int dgm__cfg_absolute_cwd(dgm_config *n);
/* Merge src over dst: maps key by key (recursively), anything else
 * replaced; src is consumed. */
int dgm__cfg_merge(dgm_config *dst, dgm_config *src);
/* YAML core-schema tests of an unquoted scalar. */
bool dgm__cfg_is_null(const dgm_config *n);
bool dgm__cfg_parse_int(const char *s, long long *out);
bool dgm__cfg_parse_float(const char *s, double *out);
bool dgm__cfg_parse_bool(const char *s, bool *out);
/* What was found, for "expected X, found Y" messages (buf may be used). */
const char *dgm__cfg_describe(const dgm_config *n, char *buf, size_t cap);
/* The code point at s (NUL-terminated) and its length in bytes; 0 for
 * bytes that are not UTF-8 (overlong forms and surrogates included).
 * In config_utf8.c, on its own: the tests compile it in. */
int dgm__utf8_next(const unsigned char *s, uint32_t *cp);


#endif
