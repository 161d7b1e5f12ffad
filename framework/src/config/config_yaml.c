/* config_yaml.c - YAML text to a config tree with libyaml's event API:
 * positions for every node, anchors and aliases (and `<<` merge keys),
 * duplicate keys, depth and size limits, and `include:` of base files
 * merged key by key. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "config_internal.h"
#include "dgm/error.h"

typedef struct anchor {
    char *name;
    dgm_config *node; /* a private copy */
} anchor;

typedef struct parser {
    yaml_parser_t p;
    const char *name;
    anchor *anchors;
    int n_anchors, cap_anchors;
    long nodes; /* made so far, aliases counted in full */
    char path[1024];
    const unsigned char *text; /* the document, for reader errors */
    size_t len;
} parser;

static int yaml_fail(parser *ps)
{
    yaml_parser_t *p = &ps->p;
    if (p->error == YAML_MEMORY_ERROR)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", ps->name);
    if (p->error == YAML_READER_ERROR) {
        /* Bad bytes (not UTF-8, a control character) come with a byte
         * offset only: turn it into a line and a column. */
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < ps->len; i++) {
            if (ps->text[i] == '\n')
                line++, col = 1;
            else if ((ps->text[i] & 0xc0) != 0x80)
                col++;
        }
        return dgm_error(
            DGM_ECONFIG,
            "%s:%zu:%zu: invalid YAML: %s (byte 0x%02x at "
            "offset %zu)",
            ps->name, line, col, p->problem ? p->problem : "bad input",
            p->problem_offset < ps->len ? ps->text[p->problem_offset] : 0,
            p->problem_offset);
    }
    return dgm_error(DGM_ECONFIG, "%s:%zu:%zu: invalid YAML: %s%s%s", ps->name,
                     p->problem_mark.line + 1, p->problem_mark.column + 1,
                     p->problem ? p->problem : "syntax error",
                     p->context ? " " : "", p->context ? p->context : "");
}

/* Count a subtree's nodes and its height (a leaf is 1). */
static void measure(const dgm_config *n, long *count, int *height)
{
    int h = 0;
    *count += 1;
    for (int i = 0; i < n->n; i++) {
        int ch = 0;
        measure(n->child[i], count, &ch);
        if (ch > h)
            h = ch;
    }
    *height = h + 1;
}

static int too_many(parser *ps, int line, int col)
{
    return dgm_error(DGM_ECONFIG,
                     "%s:%d:%d: the document expands to more than %ld "
                     "nodes (aliases of aliases?)",
                     ps->name, line, col, DGM__CFG_MAX_NODES);
}

static int next(parser *ps, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ps->p, ev))
        return yaml_fail(ps);
    return 0;
}

static int remember(parser *ps, const char *name, const dgm_config *n)
{
    if (ps->n_anchors == ps->cap_anchors) {
        int cap = ps->cap_anchors ? ps->cap_anchors * 2 : 8;
        anchor *a = realloc(ps->anchors, sizeof *a * (size_t)cap);
        if (!a)
            return dgm_error(DGM_ENOMEM, "config: out of memory");
        ps->anchors = a;
        ps->cap_anchors = cap;
    }
    anchor *a = &ps->anchors[ps->n_anchors];
    a->name = strdup(name);
    a->node = dgm_config_clone(n);
    if (!a->name || !a->node) {
        free(a->name);
        dgm_config_free(a->node);
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    }
    ps->n_anchors++;
    return 0;
}

static int parse_node(parser *ps, yaml_event_t *ev, int depth,
                      dgm_config **out);

/* A "\0" escape makes a NUL that a C string would silently cut at. */
static bool has_nul(const yaml_event_t *ev)
{
    return memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL;
}

static int nul_refused(parser *ps, int line, int col, const char *what)
{
    return dgm_error(DGM_ECONFIG,
                     "%s:%d:%d: %s%sa %s holding a NUL character (\\0) is "
                     "not supported",
                     ps->name, line, col, ps->path, *ps->path ? ": " : "",
                     what);
}

/* Insert child under key at position pos of map (taking it over). */
static int insert_at(dgm_config *map, int pos, const char *key,
                     dgm_config *child)
{
    int rc = dgm__cfg_append(map, key, child);
    if (rc < 0)
        return rc;
    memmove(map->child + pos + 1, map->child + pos,
            sizeof *map->child * (size_t)(map->n - 1 - pos));
    map->child[pos] = child;
    return 0;
}

/* YAML's merge key: the keys of src (a map, or a list of maps, earlier
 * ones first) that n does not set itself, placed where `<<` stood. */
static int apply_merge(dgm_config *n, dgm_config *src, int pos)
{
    int n_src = src->kind == DGM_CFG_SEQ ? src->n : 1;
    for (int s = 0; s < n_src; s++) {
        dgm_config *m = src->kind == DGM_CFG_SEQ ? src->child[s] : src;
        for (int i = 0; i < m->n; i++) {
            dgm_config *c = m->child[i];
            if (dgm__cfg_index(n, c->key) >= 0)
                continue;
            char *key = c->key;
            c->key = NULL;
            int rc = insert_at(n, pos, key, c);
            free(key);
            if (rc < 0)
                return rc;
            m->child[i] = NULL; /* now n's */
            pos++;
        }
    }
    return 0;
}

static bool is_merge_source(const dgm_config *v)
{
    if (v->kind == DGM_CFG_MAP)
        return true;
    if (v->kind != DGM_CFG_SEQ)
        return false;
    for (int i = 0; i < v->n; i++)
        if (v->child[i]->kind != DGM_CFG_MAP)
            return false;
    return true;
}

/* Free a merge source whose moved children were set to NULL. */
static void free_sparse(dgm_config *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++)
        if (n->child[i] && n->child[i]->kind == DGM_CFG_MAP &&
            n->kind == DGM_CFG_SEQ)
            free_sparse(n->child[i]);
        else if (n->child[i])
            dgm_config_free(n->child[i]);
    n->n = 0;
    dgm_config_free(n);
}

/* ps->path holds the key path of the node being filled, so messages name
 * it before the node is attached to its parent. */
static void path_push(parser *ps, const char *key, int index, size_t *saved)
{
    size_t l = strlen(ps->path);
    *saved = l;
    if (key)
        snprintf(ps->path + l, sizeof ps->path - l, "%s%s", l ? "." : "", key);
    else
        snprintf(ps->path + l, sizeof ps->path - l, "[%d]", index);
}

/* The keys of one map being read, hashed from 16 keys on, so that a map
 * of many keys is checked for duplicates in linear time, not quadratic. */
typedef struct keyset {
    int *slot;  /* child index + 1; 0 is empty */
    size_t cap; /* a power of two, or 0 while the map is small */
} keyset;

static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void keyset_put(keyset *ks, const dgm_config *map, int i)
{
    size_t j = (size_t)key_hash(map->child[i]->key) & (ks->cap - 1);
    while (ks->slot[j])
        j = (j + 1) & (ks->cap - 1);
    ks->slot[j] = i + 1;
}

/* The index of key among map's children, or -1. */
static int keyset_find(const keyset *ks, const dgm_config *map, const char *key)
{
    if (!ks->cap)
        return dgm__cfg_index(map, key);
    for (size_t j = (size_t)key_hash(key) & (ks->cap - 1);;
         j = (j + 1) & (ks->cap - 1)) {
        int i = ks->slot[j];
        if (!i)
            return -1;
        if (!strcmp(map->child[i - 1]->key, key))
            return i - 1;
    }
}

/* Record map's last child. */
static int keyset_add(keyset *ks, const dgm_config *map)
{
    if (map->n < 16)
        return 0;
    if ((size_t)map->n * 2 <= ks->cap) {
        keyset_put(ks, map, map->n - 1);
        return 0;
    }
    size_t cap = 64;
    while (cap < (size_t)map->n * 2)
        cap *= 2;
    int *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    free(ks->slot);
    ks->slot = slot;
    ks->cap = cap;
    for (int i = 0; i < map->n; i++)
        keyset_put(ks, map, i);
    return 0;
}

static int parse_children(parser *ps, dgm_config *n, bool map, int depth)
{
    keyset keys = {NULL, 0};
    dgm_config *merge = NULL; /* the value of `<<`, applied at the end */
    int merge_pos = 0, merge_line = 0;
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next(ps, &ev)) < 0)
            break;
        if (ev.type ==
            (map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&ev);
            if (merge)
                rc = apply_merge(n, merge, merge_pos);
            break;
        }
        char *key = NULL;
        bool merge_key = false;
        int kline = (int)ev.start_mark.line + 1,
            kcol = (int)ev.start_mark.column + 1;
        if (map) {
            if (ev.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&ev);
                rc = dgm_error(DGM_ECONFIG,
                               "%s:%d:%d: %s%smap keys must be plain "
                               "strings",
                               ps->name, kline, kcol, ps->path,
                               *ps->path ? ": " : "");
                break;
            }
            if (has_nul(&ev)) {
                yaml_event_delete(&ev);
                rc = nul_refused(ps, kline, kcol, "key");
                break;
            }
            key = strdup((const char *)ev.data.scalar.value);
            merge_key = key && !strcmp(key, "<<") &&
                        ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            yaml_event_delete(&ev);
            if (!key) {
                rc = dgm_error(DGM_ENOMEM, "config: out of memory");
                break;
            }
            int dup = keyset_find(&keys, n, key);
            if (dup >= 0 || (merge_key && merge)) {
                const dgm_config *first = dup >= 0 ? n->child[dup] : NULL;
                int fl = !first            ? merge_line
                         : first->key_line ? first->key_line
                                           : first->line;
                rc = dgm_error(DGM_ECONFIG,
                               "%s:%d:%d: %s%s%s: duplicate key (first at "
                               "line %d)",
                               ps->name, kline, kcol, ps->path,
                               *ps->path ? "." : "", key, fl);
                free(key);
                break;
            }
            if ((rc = next(ps, &ev)) < 0) {
                free(key);
                break;
            }
        }
        size_t saved;
        path_push(ps, key, n->n, &saved);
        dgm_config *c = NULL;
        rc = parse_node(ps, &ev, depth + 1, &c);
        yaml_event_delete(&ev);
        if (rc == 0 && merge_key) {
            if (is_merge_source(c)) {
                merge = c;
                merge_pos = n->n;
                merge_line = kline;
            } else {
                rc = dgm_error(DGM_ECONFIG,
                               "%s:%d:%d: %s: `<<` merges a map or a list "
                               "of maps",
                               ps->name, c->line, c->col, ps->path);
                dgm_config_free(c);
            }
        } else if (rc == 0) {
            rc = dgm__cfg_append(n, key, c);
            if (rc < 0)
                dgm_config_free(c);
            else if (map) {
                c->key_line = kline, c->key_col = kcol;
                rc = keyset_add(&keys, n);
            }
        }
        ps->path[saved] = '\0';
        free(key);
        if (rc < 0)
            break;
    }
    free_sparse(merge);
    free(keys.slot);
    return rc;
}

/* Build the node that starts with ev (which the caller deletes). */
static int parse_node(parser *ps, yaml_event_t *ev, int depth, dgm_config **out)
{
    int line = (int)ev->start_mark.line + 1,
        col = (int)ev->start_mark.column + 1;
    *out = NULL;
    if (depth > DGM__CFG_MAX_DEPTH)
        return dgm_error(
            DGM_ECONFIG, "%s:%d:%d: %.200s%s: nested deeper than %d levels",
            ps->name, line, col, ps->path, strlen(ps->path) > 200 ? "..." : "",
            DGM__CFG_MAX_DEPTH);
    const yaml_char_t *anchor_name = NULL;
    dgm_config *n = NULL;
    int rc = 0;
    if (ev->type != YAML_ALIAS_EVENT && ++ps->nodes > DGM__CFG_MAX_NODES)
        return too_many(ps, line, col);
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        for (int i = ps->n_anchors - 1; i >= 0; i--)
            if (!strcmp(ps->anchors[i].name,
                        (const char *)ev->data.alias.anchor)) {
                long count = 0;
                int height = 0;
                measure(ps->anchors[i].node, &count, &height);
                if (depth + height - 1 > DGM__CFG_MAX_DEPTH)
                    return dgm_error(DGM_ECONFIG,
                                     "%s:%d:%d: %s: nested deeper than %d "
                                     "levels (through alias '*%s')",
                                     ps->name, line, col, ps->path,
                                     DGM__CFG_MAX_DEPTH, ev->data.alias.anchor);
                if ((ps->nodes += count) > DGM__CFG_MAX_NODES)
                    return too_many(ps, line, col);
                n = dgm_config_clone(ps->anchors[i].node);
                if (!n)
                    return dgm_error(DGM_ENOMEM, "config: out of memory");
                /* The alias's own place, so messages point at its use. */
                free(n->file);
                n->file = strdup(ps->name);
                n->line = line;
                n->col = col;
                *out = n;
                return n->file ? 0 : dgm_error(DGM_ENOMEM, "out of memory");
            }
        return dgm_error(DGM_ECONFIG,
                         "%s:%d:%d: %s%sunknown alias '*%s' (an anchor "
                         "'&%s' must come first)",
                         ps->name, line, col, ps->path, *ps->path ? ": " : "",
                         ev->data.alias.anchor, ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (has_nul(ev))
            return nul_refused(ps, line, col, "string");
        anchor_name = ev->data.scalar.anchor;
        n = dgm__cfg_new(DGM_CFG_SCALAR, ps->name, line, col);
        if (!n || !(n->text = strdup((const char *)ev->data.scalar.value))) {
            dgm_config_free(n);
            return dgm_error(DGM_ENOMEM, "config: out of memory");
        }
        n->quoted =
            ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
            (ev->data.scalar.tag && !strcmp((const char *)ev->data.scalar.tag,
                                            "tag:yaml.org,2002:str"));
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        anchor_name = map ? ev->data.mapping_start.anchor
                          : ev->data.sequence_start.anchor;
        n = dgm__cfg_new(map ? DGM_CFG_MAP : DGM_CFG_SEQ, ps->name, line, col);
        if (!n)
            return dgm_error(DGM_ENOMEM, "config: out of memory");
        rc = parse_children(ps, n, map, depth);
        break;
    }
    default:
        return dgm_error(DGM_ECONFIG, "%s:%d:%d: unexpected YAML event",
                         ps->name, line, col);
    }
    if (rc == 0 && anchor_name)
        rc = remember(ps, (const char *)anchor_name, n);
    if (rc < 0) {
        dgm_config_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

static int parse_text(dgm_config **out, const unsigned char *text, size_t len,
                      const char *name)
{
    parser ps = {.name = name, .text = text, .len = len};
    *out = NULL;
    if (!yaml_parser_initialize(&ps.p))
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&ps.p, text, len);
    yaml_event_t ev;
    dgm_config *root = NULL;
    int rc = next(&ps, &ev); /* stream start */
    if (rc == 0) {
        yaml_event_delete(&ev);
        rc = next(&ps, &ev);
    }
    if (rc == 0 && ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        rc = dgm_error(DGM_ECONFIG, "%s: empty document", name);
    } else if (rc == 0) {
        yaml_event_delete(&ev); /* document start */
        if ((rc = next(&ps, &ev)) == 0) {
            rc = parse_node(&ps, &ev, 0, &root);
            yaml_event_delete(&ev);
        }
        if (rc == 0 && (rc = next(&ps, &ev)) == 0) { /* document end */
            yaml_event_delete(&ev);
            if ((rc = next(&ps, &ev)) == 0) {
                if (ev.type != YAML_STREAM_END_EVENT)
                    rc = dgm_error(
                        DGM_ECONFIG, "%s:%zu:%zu: more than one YAML document",
                        name, ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
            }
        }
    }
    for (int i = 0; i < ps.n_anchors; i++) {
        free(ps.anchors[i].name);
        dgm_config_free(ps.anchors[i].node);
    }
    free(ps.anchors);
    yaml_parser_delete(&ps.p);
    if (rc < 0) {
        dgm_config_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

int dgm_config_parse(dgm_config **out, const char *text, const char *name)
{
    return parse_text(out, (const unsigned char *)text, strlen(text),
                      name ? name : "<string>");
}

/* ---- files and includes ---------------------------------------------- */

#define MAX_INCLUDE_DEPTH 16

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dgm_error(DGM_EIO, "%s: %s", path, strerror(errno));
    /* fopen takes a directory; reading it fails with EISDIR later. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return dgm_error(DGM_EIO, "%s: %s", path, strerror(EISDIR));
    }
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap > (size_t)64 << 20) {
            free(b);
            fclose(f);
            return dgm_error(DGM_ECONFIG, "%s: larger than 64 MB", path);
        }
        unsigned char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!b)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    if (err) {
        free(b);
        return dgm_error(DGM_EIO, "%s: read error", path);
    }
    if (memchr(b, '\0', n)) {
        free(b);
        return dgm_error(DGM_ECONFIG,
                         "%s: binary data (a NUL byte), not "
                         "YAML",
                         path);
    }
    *buf = b;
    *len = n;
    return 0;
}

static int load(dgm_config **out, const char *path, const char **chain,
                int depth)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return dgm_error(DGM_EIO, "%s: %s", path, strerror(errno));
    for (int i = 0; i < depth; i++)
        if (!strcmp(chain[i], real)) {
            char msg[2048] = "";
            for (int j = i; j < depth; j++) {
                size_t l = strlen(msg);
                snprintf(msg + l, sizeof msg - l, "%s -> ", chain[j]);
            }
            return dgm_error(DGM_ECONFIG, "include cycle: %s%s", msg, real);
        }
    if (depth >= MAX_INCLUDE_DEPTH)
        return dgm_error(DGM_ECONFIG, "%s: includes nested deeper than %d",
                         path, MAX_INCLUDE_DEPTH);
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc < 0)
        return rc;
    dgm_config *root;
    rc = parse_text(&root, text, len, path);
    free(text);
    if (rc < 0)
        return rc;
    if (dgm__cfg_is_null(root)) {
        dgm_config_free(root);
        return dgm_error(DGM_ECONFIG, "%s: empty document", path);
    }
    int at = dgm__cfg_index(root, "include");
    if (at < 0) {
        *out = root;
        return 0;
    }
    /* Detach `include:` and load each base, in order, into one tree. */
    dgm_config *inc = root->child[at];
    memmove(root->child + at, root->child + at + 1,
            sizeof *root->child * (size_t)(root->n - at - 1));
    root->n--;
    dgm_config *base = NULL;
    int n_inc = inc->kind == DGM_CFG_SEQ ? inc->n : 1;
    chain[depth] = real;
    for (int i = 0; i < n_inc && rc == 0; i++) {
        dgm_config *item = inc->kind == DGM_CFG_SEQ ? inc->child[i] : inc;
        const char *rel;
        if ((rc = dgm_cfg_to_str(item, &rel)) < 0)
            break;
        char full[PATH_MAX + 256];
        const char *slash = strrchr(path, '/');
        if (rel[0] == '/' || !slash)
            snprintf(full, sizeof full, "%s", rel);
        else
            snprintf(full, sizeof full, "%.*s/%s", (int)(slash - path), path,
                     rel);
        dgm_config *b;
        rc = load(&b, full, chain, depth + 1);
        if (rc < 0) {
            dgm_error_context("%s:%d:%d: include: ", item->file, item->line,
                              item->col);
            break;
        }
        if (b->kind != DGM_CFG_MAP) {
            rc = dgm_error(DGM_ECONFIG,
                           "%s:%d:%d: include: %s: an included file must be "
                           "a map",
                           item->file, item->line, item->col, full);
            dgm_config_free(b);
        } else if (!base) {
            base = b;
        } else {
            rc = dgm__cfg_merge(base, b);
        }
    }
    dgm_config_free(inc);
    if (rc == 0 && base && root->kind == DGM_CFG_MAP) {
        rc = dgm__cfg_merge(base, root);
        root = NULL;
        *out = base;
        return rc < 0 ? (dgm_config_free(base), rc) : 0;
    }
    dgm_config_free(base);
    if (rc < 0) {
        dgm_config_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

int dgm_config_load(dgm_config **out, const char *path)
{
    const char *chain[MAX_INCLUDE_DEPTH];
    *out = NULL;
    return load(out, path, chain, 0);
}
