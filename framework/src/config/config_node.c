/* config_node.c - config nodes: navigation, typed reading, positions and
 * the messages that name them. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_internal.h"
#include "dgm/error.h"

dgm_config *dgm__cfg_new(dgm_cfg_kind kind, const char *file, int line, int col)
{
    dgm_config *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->file = strdup(file ? file : "");
    if (!n->file) {
        free(n);
        return NULL;
    }
    n->line = line;
    n->col = col;
    return n;
}

void dgm_config_free(dgm_config *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++)
        dgm_config_free(n->child[i]);
    free(n->child);
    free(n->text);
    free(n->key);
    free(n->file);
    free(n->path);
    free(n);
}

int dgm__cfg_append(dgm_config *parent, const char *key, dgm_config *child)
{
    if (parent->n == parent->cap) {
        int cap = parent->cap ? parent->cap * 2 : 4;
        dgm_config **c = realloc(parent->child, sizeof *c * (size_t)cap);
        if (!c)
            return dgm_error(DGM_ENOMEM, "config: out of memory");
        parent->child = c;
        parent->cap = cap;
    }
    free(child->key);
    child->key = key ? strdup(key) : NULL;
    if (key && !child->key)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    child->parent = parent;
    parent->child[parent->n++] = child;
    return 0;
}

void dgm__cfg_replace(dgm_config *parent, int i, dgm_config *child)
{
    dgm_config *old = parent->child[i];
    free(child->key);
    child->key = old->key;
    old->key = NULL;
    child->parent = parent;
    parent->child[i] = child;
    dgm_config_free(old);
}

int dgm__cfg_index(const dgm_config *map, const char *key)
{
    if (!map || map->kind != DGM_CFG_MAP)
        return -1;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->child[i]->key, key))
            return i;
    return -1;
}

void dgm__cfg_mark_default(dgm_config *n)
{
    n->is_default = true;
    for (int i = 0; i < n->n; i++)
        dgm__cfg_mark_default(n->child[i]);
}

dgm_config *dgm_config_clone(const dgm_config *n)
{
    if (!n)
        return NULL;
    dgm_config *c = dgm__cfg_new(n->kind, n->file, n->line, n->col);
    if (!c)
        return NULL;
    c->quoted = n->quoted;
    c->is_default = n->is_default;
    c->key_line = n->key_line;
    c->key_col = n->key_col;
    if (n->text && !(c->text = strdup(n->text))) {
        dgm_config_free(c);
        return NULL;
    }
    for (int i = 0; i < n->n; i++) {
        dgm_config *k = dgm_config_clone(n->child[i]);
        if (!k || dgm__cfg_append(c, n->child[i]->key, k) < 0) {
            dgm_config_free(k);
            dgm_config_free(c);
            return NULL;
        }
    }
    return c;
}

int dgm__cfg_merge(dgm_config *dst, dgm_config *src)
{
    if (dst->kind != DGM_CFG_MAP || src->kind != DGM_CFG_MAP) {
        /* Not reached for the root (callers merge maps); kept total. */
        dgm_config_free(src);
        return 0;
    }
    for (int i = 0; i < src->n; i++) {
        dgm_config *s = src->child[i];
        int j = dgm__cfg_index(dst, s->key);
        src->child[i] = NULL;
        int rc = 0;
        if (j >= 0 && dst->child[j]->kind == DGM_CFG_MAP &&
            s->kind == DGM_CFG_MAP)
            rc = dgm__cfg_merge(dst->child[j], s);
        else if (j >= 0)
            dgm__cfg_replace(dst, j, s);
        else {
            char *k = s->key;
            s->key = NULL;
            rc = dgm__cfg_append(dst, k, s);
            free(k);
        }
        if (rc < 0) {
            for (int r = i + 1; r < src->n; r++)
                dgm_config_free(src->child[r]);
            src->n = 0;
            dgm_config_free(src);
            return rc;
        }
    }
    src->n = 0;
    dgm_config_free(src);
    return 0;
}

/* ---- navigation ------------------------------------------------------ */

dgm_cfg_kind dgm_cfg_kind_of(const dgm_config *n)
{
    /* An unquoted null, ~ or empty scalar is YAML's null. */
    return !n || dgm__cfg_is_null(n) ? DGM_CFG_NULL : n->kind;
}

int dgm_cfg_len(const dgm_config *n)
{
    return n && (n->kind == DGM_CFG_MAP || n->kind == DGM_CFG_SEQ) ? n->n : 0;
}

const dgm_config *dgm_cfg_at(const dgm_config *n, int i)
{
    return n && i >= 0 && i < n->n ? n->child[i] : NULL;
}

const char *dgm_cfg_key_at(const dgm_config *map, int i)
{
    return map && map->kind == DGM_CFG_MAP && i >= 0 && i < map->n
               ? map->child[i]->key
               : NULL;
}

const char *dgm_cfg_text(const dgm_config *n)
{
    return n && n->kind == DGM_CFG_SCALAR ? n->text : NULL;
}

const char *dgm_cfg_file(const dgm_config *n)
{
    return n ? n->file : "";
}
int dgm_cfg_line(const dgm_config *n)
{
    return n ? n->line : 0;
}
int dgm_cfg_column(const dgm_config *n)
{
    return n ? n->col : 0;
}
bool dgm_cfg_is_default(const dgm_config *n)
{
    return n && n->is_default;
}

static void path_into(const dgm_config *n, char *buf, size_t cap)
{
    if (!n->parent) {
        buf[0] = '\0';
        return;
    }
    path_into(n->parent, buf, cap);
    size_t l = strlen(buf);
    if (n->parent->kind == DGM_CFG_MAP)
        snprintf(buf + l, cap - l, "%s%s", l ? "." : "", n->key);
    else {
        int i = 0;
        while (i < n->parent->n && n->parent->child[i] != n)
            i++;
        snprintf(buf + l, cap - l, "[%d]", i);
    }
}

const char *dgm_cfg_path(const dgm_config *n)
{
    if (!n)
        return "";
    char buf[1024];
    path_into(n, buf, sizeof buf);
    dgm_config *m = (dgm_config *)n; /* the cache only */
    /* Keep the cached string while the path is unchanged, so that two
     * calls in one argument list both stay valid. */
    if (m->path && !strcmp(m->path, buf))
        return m->path;
    char *fresh = strdup(buf);
    if (!fresh)
        return m->path ? m->path : "";
    free(m->path);
    m->path = fresh;
    return m->path;
}

/* One path segment: a key (up to '.' or '[') or an index "[n]". */
static const char *segment(const char *p, char *key, size_t cap, int *index)
{
    *index = -1;
    if (*p == '[') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != ']' || v < 0)
            return NULL;
        *index = (int)v;
        p = end + 1;
    } else {
        size_t l = strcspn(p, ".[");
        if (l == 0 || l >= cap)
            return NULL;
        memcpy(key, p, l);
        key[l] = '\0';
        p += l;
    }
    if (*p == '.')
        p++;
    return p;
}

dgm_config *dgm_cfg_get_mut(dgm_config *n, const char *path)
{
    char key[256];
    const char *p = path;
    while (n && p && *p) {
        int idx;
        p = segment(p, key, sizeof key, &idx);
        if (!p)
            return NULL;
        if (idx >= 0)
            n = n->kind == DGM_CFG_SEQ && idx < n->n ? n->child[idx] : NULL;
        else {
            int i = dgm__cfg_index(n, key);
            n = i >= 0 ? n->child[i] : NULL;
        }
    }
    return n;
}

const dgm_config *dgm_cfg_get(const dgm_config *n, const char *path)
{
    return dgm_cfg_get_mut((dgm_config *)n, path);
}

/* ---- errors ---------------------------------------------------------- */

static int verror(const dgm_config *n, const char *key, int code,
                  const char *fmt, va_list ap)
{
    char msg[2048], where[1300];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const dgm_config *at = n;
    const char *path = dgm_cfg_path(n);
    if (key) {
        /* key may be a path below n ("encoder.hidden[1]") */
        const dgm_config *c = dgm_cfg_get(n, key);
        if (c) {
            at = c;
            path = dgm_cfg_path(at);
            snprintf(where, sizeof where, "%s", path);
        } else {
            snprintf(where, sizeof where, "%s%s%s", path, *path ? "." : "",
                     key);
        }
    } else {
        snprintf(where, sizeof where, "%s", path);
    }
    if (!at)
        return where[0] ? dgm_error(code, "%s: %s", where, msg)
                        : dgm_error(code, "%s", msg);
    if (!where[0])
        return dgm_error(code, "%s:%d:%d: %s", at->file, at->line, at->col,
                         msg);
    return dgm_error(code, "%s:%d:%d: %s: %s", at->file, at->line, at->col,
                     where, msg);
}

int dgm_cfg_error(const dgm_config *n, const char *key, int code,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(n, key, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- scalars ----------------------------------------------------------- */

bool dgm__cfg_is_null(const dgm_config *n)
{
    if (!n || n->kind == DGM_CFG_NULL)
        return true;
    if (n->kind != DGM_CFG_SCALAR || n->quoted)
        return false;
    return !strcmp(n->text, "") || !strcmp(n->text, "~") ||
           !strcmp(n->text, "null") || !strcmp(n->text, "Null") ||
           !strcmp(n->text, "NULL");
}

bool dgm__cfg_parse_int(const char *s, long long *out)
{
    if (!s || !*s || isspace((unsigned char)s[0]))
        return false;
    const char *p = s;
    int base = 10;
    if ((p[0] == '+' || p[0] == '-') && p[1])
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16;
    else if (p[0] == '0' && p[1] == 'o')
        base = 8;
    /* strtoull would skip blanks and take a sign after the prefix. */
    if (base != 10 && !(base == 16 ? isxdigit((unsigned char)p[2])
                                   : (p[2] >= '0' && p[2] <= '7')))
        return false;
    errno = 0;
    char *end;
    long long v;
    if (base == 10)
        v = strtoll(s, &end, 10);
    else {
        unsigned long long u = strtoull(p + 2, &end, base);
        if (u > (unsigned long long)INT64_MAX)
            return false;
        v = (long long)u * (s[0] == '-' ? -1 : 1);
        if (end == p + 2)
            return false;
    }
    if (errno || *end || end == s)
        return false;
    *out = v;
    return true;
}

bool dgm__cfg_parse_float(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)s[0]))
        return false;
    const char *p = s + (s[0] == '+' || s[0] == '-');
    if (!strcasecmp(p, ".inf")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!strcasecmp(s, ".nan")) {
        *out = NAN;
        return true;
    }
    long long i;
    if (dgm__cfg_parse_int(s, &i)) {
        *out = (double)i;
        return true;
    }
    /* Core schema floats: no hex floats, no "inf"/"nan" words. */
    for (const char *c = p; *c; c++)
        if (!strchr("0123456789.eE+-", *c))
            return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    /* Underflow reads as the nearest value (0 or a denormal); overflow
     * is refused rather than silently becoming infinity. */
    if (*end || end == s || (errno == ERANGE && fabs(v) > 1.0))
        return false;
    *out = v;
    return true;
}

bool dgm__cfg_parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *out = false;
        return true;
    }
    return false;
}

/* What a reader found, for messages: plain text in '', a quoted scalar
 * as "the string \"3\"" (so that a quoted number explains itself), else
 * "a map", "a list", "null" or "nothing". */
const char *dgm__cfg_describe(const dgm_config *n, char *buf, size_t cap)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case DGM_CFG_MAP:
        return "a map";
    case DGM_CFG_SEQ:
        return "a list";
    case DGM_CFG_NULL:
        return "null";
    default:
        if (dgm__cfg_is_null(n))
            return "null";
        snprintf(buf, cap, n->quoted ? "the string \"%.200s\"" : "'%.200s'",
                 n->text);
        return buf;
    }
}

int dgm_cfg_to_int(const dgm_config *n, int64_t *out)
{
    char buf[256];
    long long v;
    if (!n || n->kind != DGM_CFG_SCALAR || n->quoted ||
        !dgm__cfg_parse_int(n->text, &v))
        return dgm_cfg_error(n, NULL, DGM_ETYPE,
                             "expected an integer, found %s",
                             dgm__cfg_describe(n, buf, sizeof buf));
    *out = v;
    return 0;
}

int dgm_cfg_to_float(const dgm_config *n, double *out)
{
    char buf[256];
    if (!n || n->kind != DGM_CFG_SCALAR || n->quoted ||
        !dgm__cfg_parse_float(n->text, out))
        return dgm_cfg_error(n, NULL, DGM_ETYPE, "expected a number, found %s",
                             dgm__cfg_describe(n, buf, sizeof buf));
    return 0;
}

int dgm_cfg_to_bool(const dgm_config *n, bool *out)
{
    char buf[256];
    if (!n || n->kind != DGM_CFG_SCALAR || n->quoted ||
        !dgm__cfg_parse_bool(n->text, out))
        return dgm_cfg_error(n, NULL, DGM_ETYPE,
                             "expected true or false, found %s",
                             dgm__cfg_describe(n, buf, sizeof buf));
    return 0;
}

int dgm_cfg_to_str(const dgm_config *n, const char **out)
{
    char buf[256];
    /* Quote found text, not "null", "a map" or "nothing". */
    if (!n || n->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(n))
        return dgm_cfg_error(n, NULL, DGM_ETYPE, "expected a string, found %s",
                             dgm__cfg_describe(n, buf, sizeof buf));
    *out = n->text;
    return 0;
}

dgm_cfg_type dgm_cfg_type_of(const dgm_config *n)
{
    long long i;
    double d;
    bool b;
    if (dgm__cfg_is_null(n))
        return n ? DGM_CFG_T_NULL : DGM_CFG_T_NONE;
    if (n->kind != DGM_CFG_SCALAR)
        return DGM_CFG_T_NONE;
    if (n->quoted)
        return DGM_CFG_T_STRING;
    if (dgm__cfg_parse_bool(n->text, &b))
        return DGM_CFG_T_BOOL;
    if (dgm__cfg_parse_int(n->text, &i))
        return DGM_CFG_T_INT;
    return dgm__cfg_parse_float(n->text, &d) ? DGM_CFG_T_FLOAT
                                             : DGM_CFG_T_STRING;
}

bool dgm_config_equal(const dgm_config *a, const dgm_config *b)
{
    dgm_cfg_kind kind = dgm_cfg_kind_of(a);
    if (kind != dgm_cfg_kind_of(b))
        return false;
    if (kind == DGM_CFG_NULL)
        return true;
    if (kind == DGM_CFG_SCALAR)
        return !strcmp(a->text, b->text) &&
               dgm_cfg_type_of(a) == dgm_cfg_type_of(b);
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if ((kind == DGM_CFG_MAP &&
             strcmp(a->child[i]->key, b->child[i]->key)) ||
            !dgm_config_equal(a->child[i], b->child[i]))
            return false;
    return true;
}

dgm_config *dgm_config_new_scalar(const char *text, const dgm_config *at)
{
    dgm_config *n = dgm__cfg_new(DGM_CFG_SCALAR, at ? at->file : "<string>",
                                 at ? at->line : 1, at ? at->col : 1);
    if (n && !(n->text = strdup(text ? text : ""))) {
        dgm_config_free(n);
        n = NULL;
    }
    if (!n)
        dgm_error(DGM_ENOMEM, "config: out of memory");
    return n;
}

int dgm_config_remove(dgm_config *root, const char *path)
{
    /* The parent is what the path names without its last key. */
    const char *dot = strrchr(path ? path : "", '.');
    const char *last = dot ? dot + 1 : path;
    dgm_config *parent = root;
    if (dot) {
        char *head = strndup(path, (size_t)(dot - path));
        if (!head)
            return dgm_error(DGM_ENOMEM, "config: out of memory");
        parent = dgm_cfg_get_mut(root, head);
        free(head);
    }
    int i = parent && parent->kind == DGM_CFG_MAP && !strchr(last, '[')
                ? dgm__cfg_index(parent, last)
                : -1;
    if (i < 0)
        return dgm_error(DGM_ENOTFOUND, "config: no key '%s' to remove",
                         path ? path : "");
    dgm_config_free(parent->child[i]);
    memmove(&parent->child[i], &parent->child[i + 1],
            (size_t)(parent->n - i - 1) * sizeof *parent->child);
    parent->n--;
    return 0;
}

/* Replace n's text by base/rel (base: the working directory when
 * from_file is false or n came from no file, else the folder of n's
 * file), made canonical when it exists and `canonical` asks for it. */
static int make_absolute(dgm_config *n, bool from_file, bool canonical)
{
    const char *rel;
    int rc = dgm_cfg_to_str(n, &rel);
    if (rc < 0)
        return rc;
    if (rel[0] == '/' || (!from_file && !rel[0]))
        return 0;
    /* The file's folder: none for "<command line>" and the like. */
    const char *file = !from_file || n->file[0] == '<' ? "" : n->file;
    const char *slash = strrchr(file, '/');
    char cwd[PATH_MAX] = "";
    if (file[0] != '/' && !getcwd(cwd, sizeof cwd))
        return dgm_cfg_error(n, NULL, DGM_EIO,
                             "cannot make '%s' absolute: the working "
                             "directory: %s",
                             rel, strerror(errno));
    /* "." names the folder itself: no "/." tail in what is saved */
    if (!strcmp(rel, "."))
        rel = "";
    size_t need = strlen(cwd) + strlen(file) + strlen(rel) + 3;
    char *joined = malloc(need), *real = malloc(PATH_MAX);
    if (!joined || !real) {
        free(joined);
        free(real);
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    }
    snprintf(joined, need, "%s%s%.*s%s%s", cwd,
             cwd[0] && (slash || rel[0]) ? "/" : "",
             slash ? (int)(slash - file) : 0, file, slash && rel[0] ? "/" : "",
             rel);
    /* A folder that does not exist (yet) keeps the joined path: whoever
     * opens it reports it missing. */
    char *text =
        canonical && realpath(joined, real) ? strdup(real) : strdup(joined);
    free(joined);
    free(real);
    if (!text)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    free(n->text);
    n->text = text;
    return 0;
}

int dgm_cfg_absolute_path(dgm_config *n)
{
    return make_absolute(n, true, true);
}

/* Schema paths (DGM_P_PATH) are relative to the working directory, as
 * they always were, and kept as written below it (no symlink resolved:
 * a data folder that is a link stays that link). */
int dgm__cfg_absolute_cwd(dgm_config *n)
{
    return make_absolute(n, false, false);
}

/* ---- validated reading: a failure is a bug in the plugin --------------- */

static const dgm_config *must(const dgm_config *n, const char *key)
{
    const dgm_config *c = dgm_cfg_get(n, key);
    if (!c) {
        dgm_cfg_error(n, key, DGM_EMISSING,
                      "read by the plugin but absent (is it in the "
                      "plugin's schema?)");
        fprintf(stderr, "dgm: plugin bug: %s\n", dgm_last_error());
        abort();
    }
    return c;
}

static void bug(void)
{
    fprintf(stderr, "dgm: plugin bug: %s\n", dgm_last_error());
    abort();
}

int64_t dgm_cfg_int(const dgm_config *n, const char *key)
{
    int64_t v = 0;
    if (dgm_cfg_to_int(must(n, key), &v) < 0)
        bug();
    return v;
}

double dgm_cfg_float(const dgm_config *n, const char *key)
{
    double v = 0;
    if (dgm_cfg_to_float(must(n, key), &v) < 0)
        bug();
    return v;
}

bool dgm_cfg_bool(const dgm_config *n, const char *key)
{
    bool v = false;
    if (dgm_cfg_to_bool(must(n, key), &v) < 0)
        bug();
    return v;
}

const char *dgm_cfg_str(const dgm_config *n, const char *key)
{
    const dgm_config *c = must(n, key);
    if (dgm__cfg_is_null(c))
        return NULL;
    const char *s = NULL;
    if (dgm_cfg_to_str(c, &s) < 0)
        bug();
    return s;
}

int dgm_cfg_int_list(const dgm_config *n, const char *key, int64_t *out,
                     int max)
{
    const dgm_config *c = must(n, key);
    if (c->kind != DGM_CFG_SEQ) {
        dgm_cfg_error(c, NULL, DGM_ETYPE, "expected a list");
        bug();
    }
    for (int i = 0; i < c->n && i < max; i++)
        if (dgm_cfg_to_int(c->child[i], &out[i]) < 0)
            bug();
    return c->n;
}

int dgm_cfg_float_list(const dgm_config *n, const char *key, double *out,
                       int max)
{
    const dgm_config *c = must(n, key);
    if (c->kind != DGM_CFG_SEQ) {
        dgm_cfg_error(c, NULL, DGM_ETYPE, "expected a list");
        bug();
    }
    for (int i = 0; i < c->n && i < max; i++)
        if (dgm_cfg_to_float(c->child[i], &out[i]) < 0)
            bug();
    return c->n;
}

const dgm_config *dgm_cfg_child(const dgm_config *n, const char *key)
{
    const dgm_config *c = dgm_cfg_get(n, key);
    return c && !dgm__cfg_is_null(c) ? c : NULL;
}

bool dgm_cfg_has(const dgm_config *n, const char *key)
{
    return dgm_cfg_get(n, key) != NULL;
}

/* ---- suggestions ------------------------------------------------------ */

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent
 * transpositions), case-sensitive. */
static int osa(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* Suggest the closest candidate within max(1, len/3) edits (so "latnt"
 * finds "latent", "lr" finds "l1" but "x" finds nothing far off). */
const char *dgm_did_you_mean(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 1 << 20;
    int limit = (int)strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    for (int i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        int d = osa(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best_d <= limit ? best : NULL;
}
