/* config_override.c - command-line overrides (a.b.c=value, +a.b=value) and
 * setting a path to a subtree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "dgm/error.h"

/* Walk to the parent of the last segment of path, creating maps on the
 * way when `create`; *key gets the last key or *index the last index. */
static int walk(dgm_config *root, const char *path, bool create,
                dgm_config **parent, char *key, size_t cap, int *index,
                const char *what)
{
    dgm_config *n = root;
    const char *p = path;
    if (!*p)
        return dgm_error(DGM_EINVAL, "%s: empty key", what);
    for (;;) {
        int idx = -1;
        const char *seg = p;
        if (*p == '[') {
            char *end;
            long v = strtol(p + 1, &end, 10);
            if (end == p + 1 || *end != ']' || v < 0)
                return dgm_error(DGM_EINVAL, "%s: bad index at '%s'", what,
                                 seg);
            idx = (int)v;
            p = end + 1;
        } else {
            size_t l = strcspn(p, ".[");
            if (l == 0 || l >= cap)
                return dgm_error(DGM_EINVAL, "%s: bad key at '%s'", what,
                                 seg);
            memcpy(key, p, l);
            key[l] = '\0';
            p += l;
        }
        if (*p == '.')
            p++;
        bool last = *p == '\0';
        if (last) {
            *parent = n;
            *index = idx;
            return 0;
        }
        dgm_config *c = NULL;
        if (idx >= 0) {
            if (n->kind != DGM_CFG_SEQ || idx >= n->n)
                return dgm_error(DGM_EKEY, "%s: no element [%d] at '%.*s'",
                                 what, idx, (int)(seg - path), path);
            c = n->child[idx];
        } else {
            if (n->kind != DGM_CFG_MAP)
                return dgm_error(DGM_EKEY, "%s: '%.*s' is not a map", what,
                                 (int)(seg - path), path);
            int i = dgm__cfg_index(n, key);
            if (i >= 0) {
                c = n->child[i];
                if (dgm__cfg_is_null(c) && create) {
                    dgm_config *m = dgm__cfg_new(DGM_CFG_MAP, c->file,
                                                 c->line, c->col);
                    if (!m)
                        return dgm_error(DGM_ENOMEM, "out of memory");
                    dgm__cfg_replace(n, i, m);
                    c = m;
                }
            } else if (create) {
                c = dgm__cfg_new(DGM_CFG_MAP, "<command line>", 1, 1);
                if (!c || dgm__cfg_append(n, key, c) < 0) {
                    dgm_config_free(c);
                    return dgm_error(DGM_ENOMEM, "out of memory");
                }
            } else {
                return dgm_error(DGM_EKEY, "%s: no key '%s'", what, key);
            }
        }
        n = c;
    }
}

static int put(dgm_config *root, const char *path, dgm_config *value,
               bool must_be_new, const char *what)
{
    dgm_config *parent = NULL;
    char key[256];
    int idx = -1;
    int rc = walk(root, path, true, &parent, key, sizeof key, &idx, what);
    if (rc < 0)
        return rc;
    if (idx >= 0) {
        if (parent->kind != DGM_CFG_SEQ || idx > parent->n)
            return dgm_error(DGM_EKEY, "%s: no element [%d]", what, idx);
        if (must_be_new && idx < parent->n)
            return dgm_error(DGM_EKEY, "%s: element [%d] exists (use "
                                       "'%s=...' to replace it)",
                             what, idx, path);
        if (idx == parent->n)
            return dgm__cfg_append(parent, NULL, value);
        dgm__cfg_replace(parent, idx, value);
        return 0;
    }
    if (parent->kind != DGM_CFG_MAP)
        return dgm_error(DGM_EKEY, "%s: the parent of '%s' is not a map", what,
                         key);
    int i = dgm__cfg_index(parent, key);
    if (i >= 0 && must_be_new)
        return dgm_error(DGM_EKEY,
                         "%s: '%s' exists (at %s:%d:%d); use '%s=...' to "
                         "replace it",
                         what, path, parent->child[i]->file,
                         parent->child[i]->line, parent->child[i]->col, path);
    if (i >= 0) {
        dgm__cfg_replace(parent, i, value);
        return 0;
    }
    return dgm__cfg_append(parent, key, value);
}

int dgm_config_set(dgm_config *root, const char *path, const dgm_config *value)
{
    dgm_config *v = dgm_config_clone(value);
    if (!v)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    int rc = put(root, path, v, false, path);
    if (rc < 0)
        dgm_config_free(v);
    return rc;
}

static void place(dgm_config *n, int col)
{
    free(n->file);
    n->file = strdup("<command line>");
    n->line = 1;
    n->col += col - 1;
    for (int i = 0; i < n->n; i++)
        place(n->child[i], col);
}

int dgm_config_override(dgm_config *root, const char *a)
{
    const char *eq = strchr(a, '=');
    bool add = a[0] == '+';
    const char *k = a + add;
    if (!eq || eq == k)
        return dgm_error(DGM_EINVAL,
                         "override '%s': expected KEY=VALUE or +KEY=VALUE", a);
    char path[512];
    if ((size_t)(eq - k) >= sizeof path)
        return dgm_error(DGM_EINVAL, "override '%s': key too long", a);
    memcpy(path, k, (size_t)(eq - k));
    path[eq - k] = '\0';
    dgm_config *v;
    const char *text = eq + 1;
    int rc;
    rc = *text ? dgm_config_parse(&v, text, "<command line>")
               : dgm_config_parse(&v, "null", "<command line>");
    if (rc < 0)
        return dgm_error(rc, "override '%s': %s", a, dgm_last_error());
    place(v, (int)(text - a) + 1);
    rc = put(root, path, v, add, a);
    if (rc < 0) {
        dgm_config_free(v);
        return rc;
    }
    return 0;
}
