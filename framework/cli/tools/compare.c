/* compare.c - the numbers of `dgm compare` and `dgm report`: runs gathered
 * from run, sweep and run-folder paths, grouped into variants, each
 * metric's mean and sample deviation over seeds, the best per metric. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "compare.h"
#include "dgm/error.h"
#include "sweep.h"

/* How deep a folder of runs is searched: runs/<name>/<run>. */
#define MAX_DEPTH 2

/* ---- small strings ---------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = true;
        return;
    }
    if (b->len + (size_t)k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

/* The buffer's string (malloc'ed, "" when empty), or NULL on ENOMEM. */
static char *sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (!b->s)
        return strdup("");
    return b->s;
}

static char *path_join(const char *a, const char *b)
{
    sbuf s = {0};
    if (b[0] == '/')
        sb_add(&s, "%s", b);
    else
        sb_add(&s, "%s/%s", a, b);
    return sb_take(&s);
}

static bool exists(const char *dir, const char *file)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

static bool push(void **arr, int *n, int *cap, size_t size)
{
    if (*n < *cap)
        return true;
    int c = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, (size_t)c * size);
    if (!p)
        return false;
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
    *arr = p;
    *cap = c;
    return true;
}

/* ---- the loader's state ----------------------------------------------- */

struct leaves;
typedef struct loader {
    dgm__compare *c;
    int cap_sources, cap_runs, cap_variants, cap_notes;
    struct leaves *fixed;   /* per source: its sweep.yaml flattened */
    dgm_config **fixed_cfg; /* per source: its sweep.yaml, or NULL */
} loader;

static const char *const statuses[] = {"done",    "failed",  "diverged",
                                       "stopped", "running", "pending"};

static const char *status_of(const char *s)
{
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (!strcmp(s, statuses[i]))
            return statuses[i];
    return NULL;
}

static int note(loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int note(loader *L, const char *fmt, ...)
{
    dgm__compare *c = L->c;
    if (!push((void **)&c->notes, &c->n_notes, &L->cap_notes, sizeof *c->notes))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    va_list ap;
    va_start(ap, fmt);
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!(c->notes[c->n_notes] = strdup(buf)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    c->n_notes++;
    return 0;
}

/* A JSON object from a file; DGM_ENOTFOUND when absent, DGM_EFORMAT with
 * file:line:col when malformed or not an object. */
static int load_object(const char *path, json_t **out)
{
    json_error_t e;
    *out = NULL;
    if (access(path, F_OK) != 0)
        return dgm_error(DGM_ENOTFOUND, "%s: %s", path, strerror(errno));
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        return dgm_error(DGM_EFORMAT, "%s:%d:%d: %s", path, e.line, e.column,
                         e.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return dgm_error(DGM_EFORMAT, "%s: not a JSON object", path);
    }
    *out = j;
    return 0;
}

static int add_source(loader *L, const char *path, json_t *manifest)
{
    dgm__compare *c = L->c;
    if (!push((void **)&c->sources, &c->n_sources, &L->cap_sources,
              sizeof *c->sources)) {
        json_decref(manifest);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    dgm__cmp_source *s = &c->sources[c->n_sources];
    s->manifest = manifest;
    if (!(s->path = strdup(path))) {
        json_decref(manifest);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    return c->n_sources++;
}

/* A new run slot (zeroed), or NULL on ENOMEM. */
static dgm__cmp_run *new_run(loader *L)
{
    dgm__compare *c = L->c;
    if (!push((void **)&c->runs, &c->n_runs, &L->cap_runs, sizeof *c->runs))
        return NULL;
    dgm__cmp_run *r = &c->runs[c->n_runs++];
    memset(r, 0, sizeof *r);
    r->variant = -1;
    return r;
}

/* summary.json and config.yaml of r->dir, when present. */
static int read_run_files(dgm__cmp_run *r)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/summary.json", r->dir);
    if (access(p, F_OK) == 0) {
        int rc = load_object(p, &r->summary);
        if (rc < 0)
            return rc;
    }
    snprintf(p, sizeof p, "%s/config.yaml", r->dir);
    if (access(p, F_OK) == 0) {
        int rc = dgm_config_load(&r->config, p);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_plain_run(loader *L, const char *dir)
{
    int src = add_source(L, dir, NULL);
    if (src < 0)
        return src;
    dgm__cmp_run *r = new_run(L);
    if (!r || !(r->dir = strdup(dir)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    r->source = src;
    int rc = read_run_files(r);
    if (rc < 0)
        return rc;
    if (r->summary) {
        const char *st =
            json_string_value(json_object_get(r->summary, "status"));
        if (!st)
            return dgm_error(DGM_EFORMAT, "%s/summary.json: no \"status\"",
                             dir);
        r->status = !strcmp(st, "completed") ? "done" : status_of(st);
        if (!r->status || !strcmp(st, "done"))
            return dgm_error(DGM_EFORMAT,
                             "%s/summary.json: unknown status '%s' "
                             "(completed, failed, diverged or stopped)",
                             dir, st);
    } else {
        r->status = "running";
        if ((rc = note(L,
                       "%s: no summary.json yet (in progress, or killed "
                       "before its end): counted as running",
                       dir)) < 0)
            return rc;
    }
    const char *name = json_string_value(json_object_get(r->summary, "name"));
    if (!name && r->config)
        name = dgm_cfg_text(dgm_cfg_get(r->config, "name"));
    char parent[4096];
    if (!name) {
        /* runs/<name>/<time>: the folder above the run names it. */
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            *slash = '\0';
        slash = strrchr(parent, '/');
        name = slash ? slash + 1 : parent;
    }
    if (!(r->name = strdup(name)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    const dgm_config *seed = dgm_cfg_get(r->config, "seed");
    int64_t sv;
    if (seed && dgm_cfg_to_int(seed, &sv) == 0)
        r->seed = json_integer(sv);
    dgm_error_clear();
    return 0;
}

static int add_sweep(loader *L, const char *dir)
{
    json_t *m;
    int rc = dgm__sweep_manifest_load(dir, &m);
    if (rc < 0)
        return rc;
    int src = add_source(L, dir, m);
    if (src < 0)
        return src;
    const char *name = json_string_value(json_object_get(m, "name"));
    json_t *trials = json_object_get(m, "trials");
    for (size_t i = 0; i < json_array_size(trials); i++) {
        json_t *t = json_array_get(trials, i);
        const char *st = json_string_value(json_object_get(t, "status"));
        const char *status = status_of(st);
        if (!status)
            return dgm_error(DGM_EFORMAT,
                             "%s/manifest.json: trial %zu: unknown status "
                             "'%s'",
                             dir, i, st);
        dgm__cmp_run *r = new_run(L);
        if (!r)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        r->source = src;
        r->status = status;
        r->trial = t;
        r->dir =
            path_join(dir, json_string_value(json_object_get(t, "run_dir")));
        r->name = strdup(name ? name : dir);
        json_t *seed = json_object_get(t, "seed");
        r->seed = seed ? json_deep_copy(seed) : NULL;
        if (!r->dir || !r->name)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        if ((rc = read_run_files(r)) < 0)
            return rc;
        if (!r->summary &&
            (!strcmp(status, "done") || !strcmp(status, "diverged")))
            return dgm_error(DGM_ENOTFOUND,
                             "%s/summary.json: missing, but "
                             "%s/manifest.json says trial %zu is %s",
                             r->dir, dir, i, status);
        const char *ss =
            json_string_value(json_object_get(r->summary, "status"));
        if (ss && (!strcmp(status, "running") || !strcmp(status, "pending")) &&
            (rc = note(L,
                       "%s: the manifest says %s but summary.json says %s "
                       "(a sweep stopped without updating its manifest? "
                       "dgm sweep --resume settles it)",
                       r->dir, status, ss)) < 0)
            return rc;
    }
    return 0;
}

static bool is_dir(const char *p, bool follow)
{
    struct stat st;
    return (follow ? stat(p, &st) : lstat(p, &st)) == 0 && S_ISDIR(st.st_mode);
}

static int skip_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* A sweep, a run, or (above MAX_DEPTH) a folder to search; *found counts
 * what was added. Symbolic links inside folders (runs/<name>/latest) are
 * skipped so a run is not counted twice. */
static int add_path(loader *L, const char *path, int depth, int *found)
{
    if (exists(path, "manifest.json")) {
        (*found)++;
        return add_sweep(L, path);
    }
    if (exists(path, "summary.json") || exists(path, "config.yaml") ||
        exists(path, "metrics.jsonl")) {
        (*found)++;
        return add_plain_run(L, path);
    }
    if (depth >= MAX_DEPTH)
        return 0;
    struct dirent **list;
    int n = scandir(path, &list, skip_hidden, alphasort);
    if (n < 0)
        return dgm_error(DGM_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char *child = rc == 0 ? path_join(path, list[i]->d_name) : NULL;
        if (rc == 0 && !child)
            rc = dgm_error(DGM_ENOMEM, "compare: out of memory");
        if (child && is_dir(child, false))
            rc = add_path(L, child, depth + 1, found);
        free(child);
        free(list[i]);
    }
    free(list);
    return rc;
}

/* ---- grouping into variants ------------------------------------------- */

/* A config node as flow-style YAML text ("20", "[400, 200]",
 * "{plugin: mlp, hidden: [400]}"). */
static void render(const dgm_config *n, sbuf *b)
{
    switch (dgm_cfg_kind_of(n)) {
    case DGM_CFG_SCALAR:
        sb_add(b, "%s", dgm_cfg_text(n));
        break;
    case DGM_CFG_SEQ:
        sb_add(b, "[");
        for (int i = 0; i < dgm_cfg_len(n); i++) {
            if (i)
                sb_add(b, ", ");
            render(dgm_cfg_at(n, i), b);
        }
        sb_add(b, "]");
        break;
    case DGM_CFG_MAP:
        sb_add(b, "{");
        for (int i = 0; i < dgm_cfg_len(n); i++) {
            sb_add(b, "%s%s: ", i ? ", " : "", dgm_cfg_key_at(n, i));
            render(dgm_cfg_at(n, i), b);
        }
        sb_add(b, "}");
        break;
    default:
        sb_add(b, "null");
    }
}

static char *render_str(const dgm_config *n)
{
    sbuf b = {0};
    render(n, &b);
    return sb_take(&b);
}

/* A config flattened to leaves: "model.encoder.hidden" -> "[400]". */
typedef struct leaves {
    int n, cap;
    char **path, **text;
    bool oom;
} leaves;

static void leaf_add(leaves *l, const char *path, char *text)
{
    if (l->oom || !text) {
        free(text);
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        int c = l->cap ? l->cap * 2 : 64;
        char **p = realloc(l->path, (size_t)c * sizeof *p);
        if (p)
            l->path = p;
        char **t = p ? realloc(l->text, (size_t)c * sizeof *t) : NULL;
        if (!t) {
            free(text);
            l->oom = true;
            return;
        }
        l->text = t;
        l->cap = c;
    }
    l->path[l->n] = strdup(path);
    l->text[l->n] = text;
    if (!l->path[l->n]) {
        free(text);
        l->oom = true;
        return;
    }
    l->n++;
}

static void flatten(const dgm_config *n, const char *prefix, leaves *l)
{
    dgm_cfg_kind k = dgm_cfg_kind_of(n);
    bool nested = false;
    if (k == DGM_CFG_SEQ)
        for (int i = 0; i < dgm_cfg_len(n); i++)
            nested |= dgm_cfg_kind_of(dgm_cfg_at(n, i)) >= DGM_CFG_SEQ;
    if ((k == DGM_CFG_MAP && dgm_cfg_len(n) > 0) || nested) {
        for (int i = 0; i < dgm_cfg_len(n); i++) {
            char p[2048];
            if (k == DGM_CFG_MAP)
                snprintf(p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "",
                         dgm_cfg_key_at(n, i));
            else
                snprintf(p, sizeof p, "%s[%d]", prefix, i);
            flatten(dgm_cfg_at(n, i), p, l);
        }
        return;
    }
    leaf_add(l, prefix, render_str(n));
}

static void leaves_free(leaves *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->path[i]);
        free(l->text[i]);
    }
    free(l->path);
    free(l->text);
}

static const char *leaf_get(const leaves *l, const char *path)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->path[i], path))
            return l->text[i];
    return NULL;
}

static void loader_free_fixed(loader *L)
{
    for (int s = 0; s < L->c->n_sources; s++) {
        if (L->fixed)
            leaves_free(&L->fixed[s]);
        if (L->fixed_cfg)
            dgm_config_free(L->fixed_cfg[s]);
    }
    free(L->fixed);
    free(L->fixed_cfg);
    L->fixed = NULL;
    L->fixed_cfg = NULL;
}

/* A JSON value as label text: strings bare, the rest compact JSON. */
static char *json_text(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The shortest dotted suffix of key that no other key of keys ends with. */
static const char *short_key(const char *key, const char *const *keys, int n)
{
    const char *best = key;
    for (const char *p = key + strlen(key); p > key; p--) {
        if (p[-1] != '.')
            continue;
        bool unique = true;
        size_t len = strlen(p);
        for (int i = 0; i < n && unique; i++) {
            size_t kl = strlen(keys[i]);
            if (keys[i] == key || kl < len)
                continue;
            if (!strcmp(keys[i] + kl - len, p) &&
                (kl == len || keys[i][kl - len - 1] == '.'))
                unique = false;
        }
        if (unique)
            return p;
    }
    return best;
}

/* The value text of key in the trial's overrides ("KEY=VALUE"), the
 * flow-style YAML dgm sweep wrote, else NULL. */
static const char *override_value(const json_t *trial, const char *key)
{
    json_t *ov = json_object_get(trial, "overrides");
    size_t kl = strlen(key);
    for (size_t i = 0; i < json_array_size(ov); i++) {
        const char *s = json_string_value(json_array_get(ov, i));
        if (s && !strncmp(s, key, kl) && s[kl] == '=')
            return s + kl + 1;
    }
    return NULL;
}

/* A swept value's short name, as dgm sweep names trials: a plugin map
 * stands as its plugin, an objective term as its loss, a list of those
 * as the names joined by '+'; NULL for anything else. */
static char *short_value(const json_t *v)
{
    const char *one = NULL;
    if (json_is_object(v)) {
        one = json_string_value(json_object_get(v, "plugin"));
        if (!one)
            one = json_string_value(json_object_get(v, "loss"));
        return one ? strdup(one) : NULL;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return NULL;
    sbuf b = {0};
    for (size_t i = 0; i < json_array_size(v); i++) {
        char *t = short_value(json_array_get(v, i));
        if (!t) {
            free(b.s);
            return NULL;
        }
        sb_add(&b, "%s%s", i ? "+" : "", t);
        free(t);
    }
    return sb_take(&b);
}

/* Variant index for key (added if new; takes label and group over). */
static int variant_for(loader *L, const char *key, char *label, json_t *group)
{
    dgm__compare *c = L->c;
    for (int v = 0; v < c->n_variants; v++)
        if (!strcmp(c->variants[v].key, key)) {
            free(label);
            json_decref(group);
            return v;
        }
    if (!label || !group ||
        !push((void **)&c->variants, &c->n_variants, &L->cap_variants,
              sizeof *c->variants)) {
        free(label);
        json_decref(group);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    dgm__cmp_variant *va = &c->variants[c->n_variants];
    memset(va, 0, sizeof *va);
    va->label = label;
    va->group = group;
    if (!(va->key = strdup(key)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    return c->n_variants++;
}

static bool several_names(const dgm__compare *c)
{
    for (int i = 1; i < c->n_runs; i++)
        if (strcmp(c->runs[i].name, c->runs[0].name))
            return true;
    return false;
}

static int group_by_keys(loader *L, const dgm__cmp_options *o)
{
    dgm__compare *c = L->c;
    for (int k = 0; k < o->n_group_by; k++) {
        bool any = false;
        const char *example = NULL;
        for (int i = 0; i < c->n_runs && !any; i++) {
            any = dgm_cfg_get(c->runs[i].config, o->group_by[k]) != NULL;
            if (c->runs[i].config && !example)
                example = c->runs[i].dir;
        }
        if (!any)
            return dgm_error(DGM_EKEY,
                             "--group-by %s: no run's config.yaml has this "
                             "key%s%s%s",
                             o->group_by[k], example ? " (e.g. " : "",
                             example ? example : "",
                             example ? "/config.yaml)" : "");
    }
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_run *r = &c->runs[i];
        sbuf key = {0}, label = {0};
        json_t *group = json_object();
        for (int k = 0; k < o->n_group_by; k++) {
            const dgm_config *n = dgm_cfg_get(r->config, o->group_by[k]);
            /* a trial not started yet has no config.yaml: its swept value */
            const char *ov =
                r->config ? NULL : override_value(r->trial, o->group_by[k]);
            char *t = n    ? render_str(n)
                      : ov ? strdup(ov)
                           : strdup(r->config ? "(absent)" : "(no config)");
            if (t) {
                sb_add(&key, "%s\x1f", t);
                sb_add(&label, "%s%s=%s", k ? " " : "", o->group_by[k], t);
                json_object_set_new(group, o->group_by[k], json_string(t));
            } else
                key.oom = true;
            free(t);
        }
        char *ks = sb_take(&key);
        int v = ks ? variant_for(L, ks, sb_take(&label), group)
                   : (free(label.s), json_decref(group),
                      dgm_error(DGM_ENOMEM, "compare: out of memory"));
        free(ks);
        if (v < 0)
            return v;
        r->variant = v;
    }
    return 0;
}

/* A sweep trial's label: its swept values but seed, values by their
 * short names unless full (then as the overrides spell them). */
static char *trial_label(const dgm__cmp_run *r, const json_t *group,
                         bool prefix, bool full)
{
    const char *keys[256];
    int nk = 0;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)group, k, val)
    {
        if (nk < 256)
            keys[nk++] = k;
    }
    sbuf label = {0};
    if (prefix || nk == 0)
        sb_add(&label, "%s", r->name);
    for (int i = 0; i < nk; i++) {
        const json_t *v = json_object_get(group, keys[i]);
        const char *ov = override_value(r->trial, keys[i]);
        char *t = full ? NULL : short_value(v);
        if (!t)
            t = ov ? strdup(ov) : json_text(v);
        sb_add(&label, "%s%s=%s", label.len ? " " : "",
               short_key(keys[i], keys, nk), t ? t : "?");
        free(t);
    }
    return sb_take(&label);
}

/* Two sweeps of one experiment name can differ in what every trial
 * shares (overrides given to the whole sweep: `dgm sweep EXP.yaml
 * freeze=[encoder.*]`), which the manifest's params do not show. Each
 * sweep's sweep.yaml (the experiment with those overrides) is read once;
 * a leaf (seed and sweep.* aside) whose value differs between the sweeps
 * of r's name puts its key into r's group, so those sweeps stay apart. A
 * leaf inside a list stands for the list (`teachers`, `objective`), shown
 * whole as flow YAML; a key a sweep does not set reads "(absent)". */
static bool same_name(const dgm__cmp_source *src, const char *name)
{
    const char *n = json_string_value(json_object_get(src->manifest, "name"));
    return n && !strcmp(n, name);
}

static int fixed_key(json_t *group, const dgm_config *cfg, const char *path)
{
    char key[2048];
    snprintf(key, sizeof key, "%s", path);
    char *br = strchr(key, '[');
    if (br) {
        *br = '\0';
        if (br > key && br[-1] == '.')
            br[-1] = '\0';
    }
    if (!key[0] || !strcmp(key, "seed") || !strcmp(key, "sweep") ||
        !strncmp(key, "sweep.", 6) || json_object_get(group, key))
        return 0;
    const dgm_config *n = dgm_cfg_get(cfg, key);
    char *t = n ? render_str(n) : strdup("(absent)");
    if (!t || json_object_set_new(group, key, json_string(t)) < 0) {
        free(t);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    free(t);
    return 0;
}

static int sweep_fixed(loader *L, const dgm__cmp_run *r, json_t *group)
{
    dgm__compare *c = L->c;
    if (!L->fixed) {
        L->fixed = calloc((size_t)c->n_sources + 1, sizeof *L->fixed);
        L->fixed_cfg = calloc((size_t)c->n_sources + 1, sizeof *L->fixed_cfg);
        if (!L->fixed || !L->fixed_cfg)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        for (int s = 0; s < c->n_sources; s++) {
            char *p = path_join(c->sources[s].path, "sweep.yaml");
            if (!p)
                return dgm_error(DGM_ENOMEM, "compare: out of memory");
            /* an unreadable sweep.yaml only loses the split; dgm sweep
             * --resume is what needs it, and says so */
            if (c->sources[s].manifest && access(p, R_OK) == 0 &&
                dgm_config_load(&L->fixed_cfg[s], p) == 0)
                flatten(L->fixed_cfg[s], "", &L->fixed[s]);
            dgm_error_clear();
            free(p);
            if (L->fixed[s].oom)
                return dgm_error(DGM_ENOMEM, "compare: out of memory");
        }
    }
    const leaves *mine = &L->fixed[r->source];
    const dgm_config *cfg = L->fixed_cfg[r->source];
    if (!cfg)
        return 0;
    for (int s = 0; s < c->n_sources; s++) {
        if (s == r->source || !L->fixed_cfg[s] ||
            !same_name(&c->sources[s], r->name))
            continue;
        const leaves *other = &L->fixed[s];
        for (int j = 0; j < mine->n; j++) {
            const char *t = leaf_get(other, mine->path[j]);
            int rc = !t || strcmp(t, mine->text[j])
                         ? fixed_key(group, cfg, mine->path[j])
                         : 0;
            if (rc < 0)
                return rc;
        }
        for (int j = 0; j < other->n; j++) {
            int rc = !leaf_get(mine, other->path[j])
                         ? fixed_key(group, cfg, other->path[j])
                         : 0;
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* A sweep trial: its params without seed (and the settings that tell its
 * sweep from another of the same name). */
static int group_trial(loader *L, dgm__cmp_run *r, bool prefix)
{
    json_t *params = json_object_get(r->trial, "params");
    json_t *group = json_object();
    const char *k;
    json_t *val;
    json_object_foreach(params, k, val)
    {
        if (strcmp(k, "seed"))
            json_object_set(group, k, val);
    }
    int rc = group ? sweep_fixed(L, r, group)
                   : dgm_error(DGM_ENOMEM, "compare: out of memory");
    if (rc < 0) {
        json_decref(group);
        return rc;
    }
    sbuf key = {0};
    char *gs = json_dumps(group, JSON_COMPACT | JSON_SORT_KEYS);
    sb_add(&key, "S\x1f%s\x1f%s", r->name, gs ? gs : "");
    free(gs);
    char *ks = sb_take(&key);
    int v = ks ? variant_for(L, ks, trial_label(r, group, prefix, false), group)
               : (json_decref(group),
                  dgm_error(DGM_ENOMEM, "compare: out of memory"));
    free(ks);
    if (v < 0)
        return v;
    r->variant = v;
    return 0;
}

/* Short names can collide (two decoders both "mlp"): such sweep variants
 * get their values in full. */
static int relabel_collisions(loader *L, bool prefix)
{
    dgm__compare *c = L->c;
    bool *clash = calloc((size_t)c->n_variants + 1, sizeof *clash);
    if (!clash)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    for (int a = 0; a < c->n_variants; a++)
        for (int b = a + 1; b < c->n_variants; b++)
            if (!strcmp(c->variants[a].label, c->variants[b].label))
                clash[a] = clash[b] = true;
    int rc = 0;
    for (int i = 0; i < c->n_runs && rc == 0; i++) {
        int v = c->runs[i].variant;
        if (!clash[v] || !c->runs[i].trial)
            continue;
        char *l = trial_label(&c->runs[i], c->variants[v].group, prefix, true);
        if (!l)
            rc = dgm_error(DGM_ENOMEM, "compare: out of memory");
        else {
            free(c->variants[v].label);
            c->variants[v].label = l;
        }
        clash[v] = false;
    }
    free(clash);
    return rc;
}

/* Plain runs of one experiment name: the config keys (but seed) whose
 * values differ among them tell their variants apart. */
static int group_plain(loader *L, const char *name, bool prefix)
{
    dgm__compare *c = L->c;
    int n = 0;
    for (int i = 0; i < c->n_runs; i++)
        n += !c->runs[i].trial && c->runs[i].variant < 0 &&
             !strcmp(c->runs[i].name, name);
    int *idx = malloc(sizeof *idx * (size_t)n);
    leaves *lv = calloc((size_t)n, sizeof *lv);
    if (!idx || !lv) {
        free(idx);
        free(lv);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    n = 0;
    bool oom = false;
    for (int i = 0; i < c->n_runs; i++)
        if (!c->runs[i].trial && c->runs[i].variant < 0 &&
            !strcmp(c->runs[i].name, name)) {
            idx[n] = i;
            if (c->runs[i].config)
                flatten(c->runs[i].config, "", &lv[n]);
            oom |= lv[n].oom;
            n++;
        }
    /* varying keys, in first-seen order */
    leaves vary = {0};
    for (int a = 0; a < n && !oom; a++) {
        if (!c->runs[idx[a]].config)
            continue;
        for (int j = 0; j < lv[a].n; j++) {
            const char *p = lv[a].path[j];
            if (!strcmp(p, "seed") || leaf_get(&vary, p))
                continue;
            bool differs = false;
            for (int b = 0; b < n && !differs; b++) {
                if (!c->runs[idx[b]].config)
                    continue;
                const char *t = leaf_get(&lv[b], p);
                differs = !t || strcmp(t, lv[a].text[j]);
            }
            if (differs)
                leaf_add(&vary, p, strdup(""));
        }
    }
    oom |= vary.oom;
    int rc = oom ? dgm_error(DGM_ENOMEM, "compare: out of memory") : 0;
    for (int a = 0; a < n && rc == 0; a++) {
        dgm__cmp_run *r = &c->runs[idx[a]];
        sbuf key = {0}, label = {0};
        json_t *group = json_object();
        json_object_set_new(group, "name", json_string(name));
        sb_add(&key, "R\x1f%s", name);
        if (prefix || vary.n == 0 || !r->config)
            sb_add(&label, "%s", name);
        if (!r->config) {
            sb_add(&key, "\x1f(no config)");
            sb_add(&label, " (no config.yaml)");
        }
        for (int j = 0; j < vary.n && r->config; j++) {
            const char *t = leaf_get(&lv[a], vary.path[j]);
            if (!t)
                t = "(absent)";
            sb_add(&key, "\x1f%s=%s", vary.path[j], t);
            sb_add(&label, "%s%s=%s", label.len ? " " : "", vary.path[j], t);
            json_object_set_new(group, vary.path[j], json_string(t));
        }
        char *ks = sb_take(&key);
        int v = ks ? variant_for(L, ks, sb_take(&label), group)
                   : (free(label.s), json_decref(group),
                      dgm_error(DGM_ENOMEM, "compare: out of memory"));
        free(ks);
        if (v < 0)
            rc = v;
        else
            r->variant = v;
    }
    for (int a = 0; a < n; a++)
        leaves_free(&lv[a]);
    leaves_free(&vary);
    free(lv);
    free(idx);
    return rc;
}

static int group_runs(loader *L, const dgm__cmp_options *o)
{
    dgm__compare *c = L->c;
    if (o->n_group_by > 0)
        return group_by_keys(L, o);
    bool prefix = several_names(c);
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_run *r = &c->runs[i];
        if (r->variant >= 0)
            continue;
        int rc = r->trial ? group_trial(L, r, prefix)
                          : group_plain(L, r->name, prefix);
        if (rc < 0)
            return rc;
    }
    return relabel_collisions(L, prefix);
}

/* ---- metrics ------------------------------------------------------------ */

/* A run's figure: summary "final".name, else a top-level number. */
static bool figure(const dgm__cmp_run *r, const char *name, double *out)
{
    json_t *v = json_object_get(json_object_get(r->summary, "final"), name);
    if (!json_is_number(v))
        v = json_object_get(r->summary, name);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out);
}

static bool has_word(const char *name, const char *const *words)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    char *save = NULL;
    for (char *w = strtok_r(buf, "_/.- ", &save); w;
         w = strtok_r(NULL, "_/.- ", &save))
        for (int i = 0; words[i]; i++)
            if (!strcmp(w, words[i]))
                return true;
    return false;
}

dgm__better dgm__compare_better(const char *metric)
{
    static const char *const none[] = {"std",    "var",   "steps", "epochs",
                                       "params", "count", NULL};
    static const char *const lower[] = {
        "neg", "nll",  "loss", "fid",  "kid",        "error", "err",
        "bpc", "bpd",  "bits", "nats", "perplexity", "ppl",   "mse",
        "mae", "rmse", "kl",   "time", "distance",   NULL};
    static const char *const higher[] = {
        "accuracy",  "acc", "precision", "recall",  "elbo",       "f1", "auc",
        "inception", "is",  "coverage",  "density", "likelihood", "ll", NULL};
    if (has_word(metric, none))
        return DGM__BETTER_NONE;
    if (has_word(metric, lower))
        return DGM__BETTER_LOWER;
    if (has_word(metric, higher))
        return DGM__BETTER_HIGHER;
    return DGM__BETTER_NONE;
}

const char *dgm__better_name(dgm__better b)
{
    return b == DGM__BETTER_LOWER    ? "lower"
           : b == DGM__BETTER_HIGHER ? "higher"
                                     : "none";
}

static int metric_index(const dgm__compare *c, const char *name)
{
    for (int m = 0; m < c->n_metrics; m++)
        if (!strcmp(c->metrics[m], name))
            return m;
    return -1;
}

static int add_metric(loader *L, int *cap, const char *name)
{
    dgm__compare *c = L->c;
    if (metric_index(c, name) >= 0)
        return 0;
    if (!push((void **)&c->metrics, &c->n_metrics, cap, sizeof *c->metrics) ||
        !(c->metrics[c->n_metrics] = strdup(name)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    c->n_metrics++;
    return 0;
}

/* Every figure name of any run, for did-you-mean. */
static int candidate_names(const dgm__compare *c, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < c->n_runs; i++) {
        const json_t *objs[2] = {json_object_get(c->runs[i].summary, "final"),
                                 c->runs[i].summary};
        for (int o = 0; o < 2; o++) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)objs[o], k, v)
            {
                if (!json_is_number(v))
                    continue;
                bool seen = false;
                for (int j = 0; j < n && !seen; j++)
                    seen = !strcmp(out[j], k);
                if (!seen && n < max)
                    out[n++] = k;
            }
        }
    }
    return n;
}

static int choose_metrics(loader *L, const dgm__cmp_options *o)
{
    dgm__compare *c = L->c;
    int cap = 0, rc;
    if (o->n_metrics > 0) {
        for (int k = 0; k < o->n_metrics; k++) {
            bool any = false;
            double x;
            for (int i = 0; i < c->n_runs && !any; i++)
                any = figure(&c->runs[i], o->metrics[k], &x);
            if (!any) {
                const char *cand[512];
                int nc = candidate_names(c, cand, 512);
                const char *dym = dgm_did_you_mean(o->metrics[k], cand, nc);
                return dgm_error(DGM_EKEY,
                                 "--metric %s: no run's summary.json has "
                                 "this figure%s%s%s",
                                 o->metrics[k], dym ? " (did you mean '" : "",
                                 dym ? dym : "", dym ? "'?)" : "");
            }
            if ((rc = add_metric(L, &cap, o->metrics[k])) < 0)
                return rc;
        }
    } else {
        bool loss = false;
        for (int i = 0; i < c->n_runs; i++) {
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(c->runs[i].summary, "final"), k,
                                v)
            {
                if (json_is_number(v) && (rc = add_metric(L, &cap, k)) < 0)
                    return rc;
            }
            loss |= json_is_number(
                json_object_get(c->runs[i].summary, "train_loss"));
        }
        if (loss && (rc = add_metric(L, &cap, "train_loss")) < 0)
            return rc;
    }
    c->better = calloc((size_t)c->n_metrics + 1, sizeof *c->better);
    if (!c->better)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    for (int m = 0; m < c->n_metrics; m++)
        c->better[m] = dgm__compare_better(c->metrics[m]);
    const char *const *lists[2] = {o->higher, o->lower};
    int counts[2] = {o->n_higher, o->n_lower};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < counts[l]; k++) {
            int m = metric_index(c, lists[l][k]);
            if (m < 0)
                return dgm_error(DGM_EKEY,
                                 "--%s %s: not a metric of this comparison",
                                 l ? "lower" : "higher", lists[l][k]);
            c->better[m] = l ? DGM__BETTER_LOWER : DGM__BETTER_HIGHER;
        }
    return 0;
}

static int compute(dgm__compare *c)
{
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_variant *v = &c->variants[c->runs[i].variant];
        int *p = realloc(v->runs, sizeof *p * (size_t)(v->n_runs + 1));
        if (!p)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        v->runs = p;
        v->runs[v->n_runs++] = i;
        const char *s = c->runs[i].status;
        int *counter[] = {&v->done,    &v->failed,  &v->diverged,
                          &v->stopped, &v->running, &v->pending};
        for (int k = 0; k < 6; k++)
            if (s == statuses[k])
                (*counter[k])++;
    }
    for (int vi = 0; vi < c->n_variants; vi++) {
        dgm__cmp_variant *v = &c->variants[vi];
        v->stat = calloc((size_t)c->n_metrics + 1, sizeof *v->stat);
        if (!v->stat)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        for (int m = 0; m < c->n_metrics; m++) {
            dgm__cmp_stat *st = &v->stat[m];
            double sum = 0, x;
            for (int k = 0; k < v->n_runs; k++) {
                const dgm__cmp_run *r = &c->runs[v->runs[k]];
                if (r->status == statuses[0] && figure(r, c->metrics[m], &x)) {
                    sum += x;
                    st->n++;
                }
            }
            st->mean = st->n ? sum / st->n : NAN;
            double ss = 0;
            for (int k = 0; k < v->n_runs; k++) {
                const dgm__cmp_run *r = &c->runs[v->runs[k]];
                if (r->status == statuses[0] && figure(r, c->metrics[m], &x))
                    ss += (x - st->mean) * (x - st->mean);
            }
            st->sd = st->n > 1 ? sqrt(ss / (st->n - 1)) : NAN;
        }
    }
    /* best: only when at least two variants have the figure */
    for (int m = 0; m < c->n_metrics; m++) {
        if (c->better[m] == DGM__BETTER_NONE)
            continue;
        int have = 0;
        double best = 0;
        for (int vi = 0; vi < c->n_variants; vi++) {
            const dgm__cmp_stat *st = &c->variants[vi].stat[m];
            if (!st->n)
                continue;
            if (!have++ ||
                (c->better[m] == DGM__BETTER_LOWER ? st->mean < best
                                                   : st->mean > best))
                best = st->mean;
        }
        for (int vi = 0; vi < c->n_variants && have > 1; vi++) {
            dgm__cmp_stat *st = &c->variants[vi].stat[m];
            st->best = st->n && st->mean == best;
        }
    }
    return 0;
}

/* ---- load and free --------------------------------------------------------
 */

int dgm__compare_load(dgm__compare **out, const char *const *paths, int n_paths,
                      const dgm__cmp_options *o)
{
    static const dgm__cmp_options none = {0};
    *out = NULL;
    if (!o)
        o = &none;
    if (n_paths < 1)
        return dgm_error(DGM_EINVAL, "compare: no run or sweep directory");
    loader L = {.c = calloc(1, sizeof(dgm__compare))};
    if (!L.c)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    int rc = 0;
    for (int i = 0; i < n_paths && rc == 0; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s", paths[i]);
        for (size_t k = strlen(p); k > 1 && p[k - 1] == '/'; k--)
            p[k - 1] = '\0';
        struct stat st;
        if (stat(p, &st) != 0) {
            rc = dgm_error(DGM_ENOTFOUND, "%s: %s", p, strerror(errno));
            break;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc = dgm_error(DGM_ENOTFOUND,
                           "%s: not a directory (give a run directory, a "
                           "sweep directory or a folder of runs)",
                           p);
            break;
        }
        int found = 0;
        rc = add_path(&L, p, 0, &found);
        if (rc == 0 && found == 0)
            rc = dgm_error(DGM_ENOTFOUND,
                           "%s: no run directory (config.yaml, summary.json "
                           "or metrics.jsonl) or sweep directory "
                           "(manifest.json) here or %d levels below",
                           p, MAX_DEPTH);
    }
    if (rc == 0)
        rc = group_runs(&L, o);
    loader_free_fixed(&L);
    if (rc == 0)
        rc = choose_metrics(&L, o);
    if (rc == 0)
        rc = compute(L.c);
    if (rc < 0) {
        dgm__compare_free(L.c);
        return rc;
    }
    *out = L.c;
    return 0;
}

void dgm__compare_free(dgm__compare *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_sources; i++) {
        free(c->sources[i].path);
        json_decref(c->sources[i].manifest);
    }
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_run *r = &c->runs[i];
        free(r->dir);
        free(r->name);
        json_decref(r->seed);
        json_decref(r->summary);
        dgm_config_free(r->config);
    }
    for (int v = 0; v < c->n_variants; v++) {
        free(c->variants[v].key);
        free(c->variants[v].label);
        json_decref(c->variants[v].group);
        free(c->variants[v].runs);
        free(c->variants[v].stat);
    }
    for (int m = 0; m < c->n_metrics; m++)
        free(c->metrics[m]);
    for (int k = 0; k < c->n_notes; k++)
        free(c->notes[k]);
    free(c->sources);
    free(c->runs);
    free(c->variants);
    free(c->metrics);
    free(c->better);
    free(c->notes);
    free(c);
}

/* ---- output
 * ------------------------------------------------------------------ */

int dgm__compare_format_parse(const char *s, dgm__cmp_format *out)
{
    static const struct {
        const char *name;
        dgm__cmp_format f;
    } names[] = {{"table", DGM__CMP_TABLE},
                 {"csv", DGM__CMP_CSV},
                 {"markdown", DGM__CMP_MARKDOWN},
                 {"md", DGM__CMP_MARKDOWN},
                 {"json", DGM__CMP_JSON}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) {
            *out = names[i].f;
            return 0;
        }
    return dgm_error(DGM_EINVAL,
                     "--format %s: expected table, csv, markdown or json", s);
}

const char *dgm__cmp_num(double v, int digits, char *buf, size_t n)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.*g", digits, v);
    return buf;
}

/* "1 running, 2 pending" or "-". */
static void others(const dgm__cmp_variant *v, char *buf, size_t n)
{
    buf[0] = '\0';
    const int k[3] = {v->stopped, v->running, v->pending};
    const char *w[3] = {"stopped", "running", "pending"};
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        if (k[i] && len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%d %s",
                                    len ? ", " : "", k[i], w[i]);
    if (!buf[0])
        snprintf(buf, n, "-");
}

/* Display width of UTF-8 text (code points). */
static int width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* The cells of the table and markdown formats, row 0 the header. */
typedef struct grid {
    int rows, cols;
    char **cell;
} grid;

static int make_grid(const dgm__compare *c, bool markdown, grid *g)
{
    g->rows = c->n_variants + 1;
    g->cols = 6 + 2 * c->n_metrics;
    g->cell = calloc((size_t)g->rows * (size_t)g->cols, sizeof *g->cell);
    if (!g->cell)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    static const char *const head[6] = {"variant", "runs",     "done",
                                        "failed",  "diverged", "other"};
    bool oom = false;
    for (int j = 0; j < 6; j++)
        oom |= !(g->cell[j] = strdup(head[j]));
    for (int m = 0; m < c->n_metrics; m++) {
        oom |= !(g->cell[6 + 2 * m] = strdup(c->metrics[m]));
        oom |= !(g->cell[7 + 2 * m] = strdup("sd"));
    }
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        char **row = g->cell + (size_t)(v + 1) * (size_t)g->cols;
        sbuf lb = {0};
        if (markdown) /* '|' would end the cell */
            for (const char *p = va->label; *p; p++)
                sb_add(&lb, *p == '|' ? "\\|" : "%c", *p);
        else
            sb_add(&lb, "%s", va->label);
        row[0] = sb_take(&lb);
        char b[256];
        const int k[4] = {va->n_runs, va->done, va->failed, va->diverged};
        for (int j = 0; j < 4; j++) {
            snprintf(b, sizeof b, "%d", k[j]);
            row[1 + j] = strdup(b);
        }
        others(va, b, sizeof b);
        row[5] = strdup(b);
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            char mean[64], nn[32] = "";
            dgm__cmp_num(st->mean, 6, mean, sizeof mean);
            if (st->n && st->n != va->done)
                snprintf(nn, sizeof nn, " (n=%d)", st->n);
            if (st->best && markdown)
                snprintf(b, sizeof b, "**%s**%s", mean, nn);
            else
                snprintf(b, sizeof b, "%s%s%s", mean, nn, st->best ? " *" : "");
            row[6 + 2 * m] = strdup(b);
            row[7 + 2 * m] = strdup(dgm__cmp_num(st->sd, 3, b, sizeof b));
        }
        for (int j = 0; j < g->cols; j++)
            oom |= !row[j];
    }
    return oom ? dgm_error(DGM_ENOMEM, "compare: out of memory") : 0;
}

static void grid_free(grid *g)
{
    for (int i = 0; g->cell && i < g->rows * g->cols; i++)
        free(g->cell[i]);
    free(g->cell);
}

static void write_rule(const dgm__compare *c, FILE *f, const char *best)
{
    /* one clause per direction: "lower is better for a, b" */
    const char *word[3] = {"no direction for", "lower is better for",
                           "higher is better for"};
    const dgm__better order[3] = {DGM__BETTER_LOWER, DGM__BETTER_HIGHER,
                                  DGM__BETTER_NONE};
    fprintf(f, "%s best per metric; ", best);
    int clauses = 0;
    for (int o = 0; o < 3; o++) {
        int k = 0;
        for (int m = 0; m < c->n_metrics; m++) {
            if (c->better[m] != order[o])
                continue;
            if (k++ == 0)
                fprintf(f, "%s%s ", clauses++ ? "; " : "", word[order[o]]);
            else
                fprintf(f, ", ");
            fprintf(f, "%s", c->metrics[m]);
        }
    }
    fprintf(f, "%s\n", clauses ? "" : "no metrics");
}

static void write_table(const dgm__compare *c, const grid *g, FILE *f)
{
    int *w = calloc((size_t)g->cols, sizeof *w);
    if (!w)
        return;
    for (int i = 0; i < g->rows; i++)
        for (int j = 0; j < g->cols; j++) {
            int x = width(g->cell[i * g->cols + j]);
            if (x > w[j])
                w[j] = x;
        }
    for (int i = 0; i < g->rows; i++) {
        for (int j = 0; j < g->cols; j++) {
            const char *s = g->cell[i * g->cols + j];
            int pad = w[j] - width(s);
            if (j == 0)
                fprintf(f, "%s%*s", s, pad, "");
            else
                fprintf(f, "  %*s%s", pad, "", s);
        }
        fputc('\n', f);
    }
    free(w);
    write_rule(c, f, "*");
}

static void write_markdown(const dgm__compare *c, const grid *g, FILE *f)
{
    for (int i = 0; i < g->rows; i++) {
        fputc('|', f);
        for (int j = 0; j < g->cols; j++)
            fprintf(f, " %s |", g->cell[i * g->cols + j]);
        fputc('\n', f);
        if (i == 0) {
            fputc('|', f);
            for (int j = 0; j < g->cols; j++)
                fputs(j ? " ---: |" : " --- |", f);
            fputc('\n', f);
        }
    }
    fputc('\n', f);
    write_rule(c, f, "**bold**:");
}

/* One CSV field, quoted when it holds a comma, quote, newline or edge
 * blank (RFC 4180). */
static void csv_field(const char *s, FILE *f)
{
    size_t n = strlen(s);
    bool q = strpbrk(s, ",\"\r\n") || (n && (s[0] == ' ' || s[n - 1] == ' '));
    if (!q) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(const dgm__compare *c, FILE *f)
{
    fputs("variant,runs,done,failed,diverged,stopped,running,pending", f);
    for (int m = 0; m < c->n_metrics; m++) {
        const char *suffix[4] = {"_mean", "_sd", "_n", "_best"};
        for (int k = 0; k < 4; k++) {
            char h[512];
            snprintf(h, sizeof h, "%s%s", c->metrics[m], suffix[k]);
            fputc(',', f);
            csv_field(h, f);
        }
    }
    fputc('\n', f);
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        csv_field(va->label, f);
        fprintf(f, ",%d,%d,%d,%d,%d,%d,%d", va->n_runs, va->done, va->failed,
                va->diverged, va->stopped, va->running, va->pending);
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            fputc(',', f);
            if (st->n)
                fprintf(f, "%.12g", st->mean);
            fputc(',', f);
            if (st->n > 1)
                fprintf(f, "%.12g", st->sd);
            fprintf(f, ",%d,%d", st->n, st->best ? 1 : 0);
        }
        fputc('\n', f);
    }
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *dgm__compare_json(const dgm__compare *c)
{
    json_t *root = json_object(), *metrics = json_array(),
           *variants = json_array(), *notes = json_array();
    for (int m = 0; m < c->n_metrics; m++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(c->metrics[m]));
        json_object_set_new(o, "better",
                            c->better[m] == DGM__BETTER_NONE
                                ? json_null()
                                : json_string(dgm__better_name(c->better[m])));
        json_array_append_new(metrics, o);
    }
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        json_t *o = json_object(), *figs = json_object(), *mem = json_array();
        json_object_set_new(o, "label", json_string(va->label));
        json_object_set(o, "group", va->group);
        json_object_set_new(o, "runs", json_integer(va->n_runs));
        json_object_set_new(o, "done", json_integer(va->done));
        json_object_set_new(o, "failed", json_integer(va->failed));
        json_object_set_new(o, "diverged", json_integer(va->diverged));
        json_object_set_new(o, "stopped", json_integer(va->stopped));
        json_object_set_new(o, "running", json_integer(va->running));
        json_object_set_new(o, "pending", json_integer(va->pending));
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            json_t *s = json_object();
            json_object_set_new(s, "n", json_integer(st->n));
            json_object_set_new(s, "mean", num_or_null(st->mean));
            json_object_set_new(s, "sd", num_or_null(st->sd));
            json_object_set_new(s, "best", json_boolean(st->best));
            json_object_set_new(figs, c->metrics[m], s);
        }
        json_object_set_new(o, "metrics", figs);
        for (int k = 0; k < va->n_runs; k++) {
            const dgm__cmp_run *r = &c->runs[va->runs[k]];
            json_t *ro = json_object();
            json_object_set_new(ro, "dir", json_string(r->dir));
            json_object_set_new(ro, "status", json_string(r->status));
            json_object_set_new(ro, "seed",
                                r->seed ? json_incref(r->seed) : json_null());
            json_array_append_new(mem, ro);
        }
        json_object_set_new(o, "members", mem);
        json_array_append_new(variants, o);
    }
    for (int k = 0; k < c->n_notes; k++)
        json_array_append_new(notes, json_string(c->notes[k]));
    json_object_set_new(root, "metrics", metrics);
    json_object_set_new(root, "variants", variants);
    json_object_set_new(root, "notes", notes);
    return root;
}

int dgm__compare_write(const dgm__compare *c, dgm__cmp_format fmt, FILE *f)
{
    int rc = 0;
    if (fmt == DGM__CMP_JSON) {
        json_t *j = dgm__compare_json(c);
        if (!j ||
            json_dumpf(j, f, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) < 0)
            rc = dgm_error(DGM_EIO, "compare: cannot write JSON");
        json_decref(j);
        fputc('\n', f);
    } else if (fmt == DGM__CMP_CSV) {
        write_csv(c, f);
    } else {
        grid g = {0};
        rc = make_grid(c, fmt == DGM__CMP_MARKDOWN, &g);
        if (rc == 0 && fmt == DGM__CMP_MARKDOWN)
            write_markdown(c, &g, f);
        else if (rc == 0)
            write_table(c, &g, f);
        grid_free(&g);
    }
    if (rc == 0 && (fflush(f) != 0 || ferror(f)))
        rc = dgm_error(DGM_EIO, "compare: write failed: %s", strerror(errno));
    return rc;
}
