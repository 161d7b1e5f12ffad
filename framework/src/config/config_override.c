/* config_override.c - command-line overrides (a.b.c=value, +a.b=value) and
 * setting a path to a subtree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "dgm/error.h"

/* Follow path from root without changing anything, checking every
 * segment, also those below maps still to be made, so that a refusal
 * comes before any change. *parent gets the parent of the last segment
 * (*key the last key or *index the last index), or NULL when maps have
 * to be made on the way (or a null replaced by a map): then *last is the
 * deepest node the path reaches and *missing the path from its first
 * absent (or null) key on. `what` starts every message ("override
 * 'a.b=1'"). */
static int walk(dgm_config *root, const char *path, dgm_config **parent,
                char *key, size_t cap, int *index, dgm_config **last,
                const char **missing, const char *what)
{
    dgm_config *n = root;
    const char *p = path;
    *last = root;
    *missing = NULL;
    if (!*p)
        return dgm_error(DGM_EINVAL, "%s: empty key", what);
    for (;;) {
        int idx = -1;
        const char *seg = p;
        if (*p == '[') {
            char *end;
            long v = strtol(p + 1, &end, 10);
            if (end == p + 1 || *end != ']' || v < 0 || v > 1 << 30)
                return dgm_error(DGM_EINVAL, "%s: bad index at '%s'", what,
                                 seg);
            idx = (int)v;
            p = end + 1;
        } else {
            size_t l = strcspn(p, ".[]");
            if (l == 0 || l >= cap || p[l] == ']')
                return dgm_error(DGM_EINVAL, "%s: bad key at '%s'", what, seg);
            memcpy(key, p, l);
            key[l] = '\0';
            p += l;
        }
        if (*p == '.' && p[1] != '\0')
            p++;
        else if (*p && *p != '[')
            return dgm_error(DGM_EINVAL, "%s: bad key at '%s'", what, p);
        if (*p == '\0') {
            *parent = n;
            *index = idx;
            return 0;
        }
        dgm_config *c = NULL;
        if (!n) {
            /* Below a map still to be made: only keys can follow (an
             * index after a key is refused below, before we get here). */
        } else if (idx >= 0) {
            if (n->kind != DGM_CFG_SEQ || idx >= n->n)
                return dgm_error(DGM_EKEY, "%s: no element [%d] at '%.*s'",
                                 what, idx, (int)(seg - path), path);
            c = n->child[idx];
        } else {
            if (n->kind != DGM_CFG_MAP)
                return dgm_error(DGM_EKEY, "%s: '%.*s' is not a map", what,
                                 (int)(seg - path), path);
            int i = dgm__cfg_index(n, key);
            if (i >= 0 && !dgm__cfg_is_null(n->child[i]))
                c = n->child[i];
            else {
                *last = n;
                *missing = seg;
            }
        }
        /* A key to be made is made as a map, never as a list. */
        if (!c && idx < 0 && *p == '[')
            return dgm_error(DGM_EKEY, "%s: '%.*s' is not a list", what,
                             (int)(p - path), path);
        n = c;
    }
}

/* Attach value under the keys of `missing` (at least two dotted keys; the
 * first absent or null in `at`, as walk() found): the maps on the way are
 * built apart and hung in last, so that running out of memory half-way
 * changes nothing either. Made maps stand on the command line at their
 * key (col0 >= 0, the path's column in the argument), else where their
 * parent is; a null they replace lends them its place. */
static int build(dgm_config *at, const char *path, const char *missing,
                 dgm_config *value, int col0)
{
    char key[256], first[256];
    const char *seg = missing;
    size_t l = strcspn(seg, ".");
    memcpy(first, seg, l);
    first[l] = '\0';
    int i = dgm__cfg_index(at, first);
    dgm_config *top = NULL, *n = NULL;
    int rc = 0;
    while (seg[l] == '.') {
        const dgm_config *near = n ? n : i >= 0 ? at->child[i] : at;
        dgm_config *m =
            col0 >= 0 && (n || i < 0)
                ? dgm__cfg_new(DGM_CFG_MAP, "<command line>", 1,
                               col0 + (int)(seg - path) + 1)
                : dgm__cfg_new(DGM_CFG_MAP, near->file, near->line, near->col);
        if (!m) {
            rc = dgm_error(DGM_ENOMEM, "config: out of memory");
            break;
        }
        if (!n && i >= 0) {
            m->key_line = near->key_line;
            m->key_col = near->key_col;
        }
        if (n && (rc = dgm__cfg_append(n, key, m)) < 0) {
            dgm_config_free(m);
            break;
        }
        if (!top)
            top = m;
        n = m;
        seg += l + 1;
        l = strcspn(seg, ".");
        memcpy(key, seg, l);
        key[l] = '\0';
    }
    if (rc == 0 && (rc = dgm__cfg_append(n, key, value)) == 0 && i < 0 &&
        (rc = dgm__cfg_append(at, first, top)) < 0)
        n->n--; /* value stays the caller's */
    if (rc < 0) {
        dgm_config_free(top);
        return rc;
    }
    if (i >= 0)
        dgm__cfg_replace(at, i, top);
    if (col0 >= 0) { /* an unknown key is reported at the key */
        value->key_line = 1;
        value->key_col = col0 + (int)(seg - path) + 1;
    }
    return 0;
}

/* Levels of a subtree (a scalar is 1). */
static int height(const dgm_config *n)
{
    int h = 0;
    for (int i = 0; i < n->n; i++) {
        int c = height(n->child[i]);
        if (c > h)
            h = c;
    }
    return h + 1;
}

/* Put value (taken over on success) at path. Every check runs before
 * anything changes, so a refused call leaves the tree as it was. */
static int put(dgm_config *root, const char *path, dgm_config *value,
               bool must_be_new, const char *what, int col0)
{
    dgm_config *parent = NULL, *last = NULL;
    const char *missing = NULL;
    char key[256];
    int idx = -1;
    if (!root)
        return dgm_error(DGM_EINVAL, "%s: no config", what);
    int rc =
        walk(root, path, &parent, key, sizeof key, &idx, &last, &missing, what);
    if (rc < 0)
        return rc;
    /* What the reader could not read back is not made either. The value
     * lands at the depth of the path's segments (the root is 0). */
    int depth = path[0] == '[' ? 0 : 1;
    for (const char *c = path; *c; c++)
        depth += *c == '.' || *c == '[';
    if (depth + height(value) - 1 > DGM__CFG_MAX_DEPTH)
        return dgm_error(DGM_ERANGE,
                         "%s: the value would be nested deeper than %d levels",
                         what, DGM__CFG_MAX_DEPTH);
    if (idx >= 0) {
        int pl = (int)(strrchr(path, '[') - path);
        if ((!parent || parent->kind != DGM_CFG_SEQ) && pl == 0)
            return dgm_error(DGM_EKEY, "%s: the top level is not a list", what);
        if (!parent || parent->kind != DGM_CFG_SEQ)
            return dgm_error(DGM_EKEY, "%s: '%.*s' is not a list", what, pl,
                             path);
        if (idx > parent->n)
            return dgm_error(DGM_EKEY,
                             "%s: no element [%d] (the list has %d; [%d] "
                             "appends)",
                             what, idx, parent->n, parent->n);
        if (must_be_new && idx < parent->n)
            return dgm_error(DGM_EKEY,
                             "%s: element [%d] exists (use '%s=...' to "
                             "replace it)",
                             what, idx, path);
        if (idx == parent->n)
            return dgm__cfg_append(parent, NULL, value);
        dgm__cfg_replace(parent, idx, value);
        return 0;
    }
    if (!parent)
        return build(last, path, missing, value, col0);
    if (parent->kind != DGM_CFG_MAP) {
        /* Name the path that is not a map, as walk() does on the way. */
        int pl = (int)(strlen(path) - strlen(key));
        if (pl == 0)
            return dgm_error(DGM_EKEY, "%s: the top level is not a map", what);
        return dgm_error(DGM_EKEY, "%s: '%.*s' is not a map", what, pl - 1,
                         path);
    }
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
    if ((rc = dgm__cfg_append(parent, key, value)) < 0)
        return rc;
    if (col0 >= 0) { /* an unknown key is reported at the key */
        const char *dot = strrchr(path, '.');
        value->key_line = 1;
        value->key_col = col0 + (dot ? (int)(dot - path) + 1 : 0) + 1;
    }
    return 0;
}

int dgm_config_set(dgm_config *root, const char *path, const dgm_config *value)
{
    char what[600];
    snprintf(what, sizeof what, "config set '%.500s'", path ? path : "");
    if (!path || !value)
        return dgm_error(DGM_EINVAL, "%s: no path or no value", what);
    dgm_config *v = dgm_config_clone(value);
    if (!v)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    int rc = put(root, path, v, false, what, -1);
    if (rc < 0)
        dgm_config_free(v);
    return rc;
}

/* Multi-line values only: move the parsed positions onto the argument. */
static void place(dgm_config *n, int col)
{
    n->col += col - 1;
    for (int i = 0; i < n->n; i++)
        place(n->child[i], col);
}

/* Overrides add keys freely (creating maps on the way): a misspelt key
 * is caught by schema validation afterwards, which points at its column
 * on the command line. "+KEY=VALUE" insists that KEY is new. */
int dgm_config_override(dgm_config *root, const char *a)
{
    if (!a)
        return dgm_error(DGM_EINVAL, "override: NULL");
    char what[600];
    snprintf(what, sizeof what, "override '%.500s'", a);
    const char *eq = strchr(a, '=');
    bool add = a[0] == '+';
    const char *k = a + add;
    if (!eq || eq == k)
        return dgm_error(DGM_EINVAL,
                         "%s: expected KEY=VALUE or +KEY=VALUE (KEY a dotted "
                         "path such as model.encoder.hidden[1])",
                         what);
    char path[512];
    if ((size_t)(eq - k) >= sizeof path)
        return dgm_error(DGM_EINVAL, "%s: key too long", what);
    memcpy(path, k, (size_t)(eq - k));
    path[eq - k] = '\0';
    if (strpbrk(path, " \t\n"))
        return dgm_error(DGM_EINVAL, "%s: blank in the key '%s'", what, path);
    /* A config holds only UTF-8 (the writer refuses anything else, and
     * libyaml already refuses it in values and files). */
    for (const unsigned char *c = (const unsigned char *)path; *c;) {
        uint32_t cp;
        int w = dgm__utf8_next(c, &cp);
        if (w == 0)
            return dgm_error(DGM_EINVAL,
                             "%s: the key holds a byte 0x%02x that is not "
                             "UTF-8 (at byte %d of the argument)",
                             what, *c, (int)(c - (const unsigned char *)a) + 1);
        c += w;
    }
    /* Blanks before the value are not part of it (a tab would even be a
     * YAML error). "KEY=" and "KEY=  " are null; "KEY=#1" would be a
     * comment, which libyaml reads as an empty document: say so and how
     * to quote it. */
    const char *text = eq + 1 + strspn(eq + 1, " \t");
    if (*text == '#')
        return dgm_error(DGM_EINVAL,
                         "%s: the value is a YAML comment; quote it: "
                         "'%.*s\"%s\"'",
                         what, (int)(eq + 1 - a), a, text);
    int col = (int)(text - a) + 1;
    /* Parse the value indented by its column in the argument so that
     * positions (and syntax errors) name the column on the command line;
     * an empty value is null. */
    bool one_line = !strchr(text, '\n');
    size_t len = strlen(text);
    char *buf = malloc((size_t)col + len + 8);
    if (!buf)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    int pad = one_line ? col - 1 : 0;
    memset(buf, ' ', (size_t)pad);
    strcpy(buf + pad, *text ? text : "null");
    dgm_config *v = NULL;
    int rc = dgm_config_parse(&v, buf, "<command line>");
    free(buf);
    if (rc < 0) {
        /* libyaml places "ran out of text" errors on the line after the
         * end; on the command line that is the argument's end. */
        int line = 0, c = 0, used = 0;
        const char *m = dgm_last_error();
        if (one_line &&
            sscanf(m, "<command line>:%d:%d:%n", &line, &c, &used) == 2 &&
            used > 0 && line > 1) {
            char rest[1024];
            snprintf(rest, sizeof rest, "%s", m + used);
            return dgm_error(rc, "%s: <command line>:1:%d:%s", what,
                             col + (int)len, rest);
        }
        return dgm_error_context("%s: ", what);
    }
    if (!one_line)
        place(v, col);
    rc = put(root, path, v, add, what, (int)(k - a));
    if (rc < 0) {
        dgm_config_free(v);
        return rc;
    }
    return 0;
}
