/* compare.c - the numbers of `dgm compare` and `dgm report`: runs gathered
 * from run, sweep and run-folder paths and loaded; grouping is in
 * compare_group.c, statistics in compare_stats.c, the formats in
 * compare_format.c. */
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
#include "compare_internal.h"
#include "dgm/error.h"
#include "sweep.h"

/* How deep a folder of runs is searched: runs/<name>/<run>. */
#define MAX_DEPTH 2

/* ---- small strings ---------------------------------------------------- */

void dgm__cmp_sb_add(sbuf *b, const char *fmt, ...)
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
char *dgm__cmp_sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (!b->s)
        return strdup("");
    return b->s;
}

char *dgm__cmp_path_join(const char *a, const char *b)
{
    sbuf s = {0};
    if (b[0] == '/')
        dgm__cmp_sb_add(&s, "%s", b);
    else
        dgm__cmp_sb_add(&s, "%s/%s", a, b);
    return dgm__cmp_sb_take(&s);
}

static bool exists(const char *dir, const char *file)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

bool dgm__cmp_push(void **arr, int *n, int *cap, size_t size)
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

/* ---- the dgm__cmp_loader's state
 * ----------------------------------------------- */

const char *const dgm__cmp_statuses[] = {"done",    "failed",  "diverged",
                                         "stopped", "running", "pending"};

static const char *status_of(const char *s)
{
    for (size_t i = 0;
         i < sizeof dgm__cmp_statuses / sizeof dgm__cmp_statuses[0]; i++)
        if (!strcmp(s, dgm__cmp_statuses[i]))
            return dgm__cmp_statuses[i];
    return NULL;
}

static int note(dgm__cmp_loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int note(dgm__cmp_loader *L, const char *fmt, ...)
{
    dgm__compare *c = L->c;
    if (!dgm__cmp_push((void **)&c->notes, &c->n_notes, &L->cap_notes,
                       sizeof *c->notes))
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

static int add_source(dgm__cmp_loader *L, const char *path, json_t *manifest)
{
    dgm__compare *c = L->c;
    if (!dgm__cmp_push((void **)&c->sources, &c->n_sources, &L->cap_sources,
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
static dgm__cmp_run *new_run(dgm__cmp_loader *L)
{
    dgm__compare *c = L->c;
    if (!dgm__cmp_push((void **)&c->runs, &c->n_runs, &L->cap_runs,
                       sizeof *c->runs))
        return NULL;
    dgm__cmp_run *r = &c->runs[c->n_runs++];
    memset(r, 0, sizeof *r);
    r->variant = -1;
    return r;
}

/* A summary's "better", when present: {figure: "lower" | "higher" |
 * "none"}. Absent in summaries written before runs recorded it. */
static int check_better(const char *path, const json_t *summary)
{
    const json_t *b = json_object_get(summary, "better");
    if (!b)
        return 0;
    if (!json_is_object(b))
        return dgm_error(DGM_EFORMAT,
                         "%s: \"better\" is not an object of directions", path);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)b, k, v)
    {
        const char *s = json_string_value(v);
        if (!s ||
            (strcmp(s, "lower") && strcmp(s, "higher") && strcmp(s, "none")))
            return dgm_error(DGM_EFORMAT,
                             "%s: better.%s: expected \"lower\", "
                             "\"higher\" or \"none\"",
                             path, k);
    }
    return 0;
}

/* summary.json and config.yaml of r->dir, when present. */
static int read_run_files(dgm__cmp_run *r)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/summary.json", r->dir);
    if (access(p, F_OK) == 0) {
        int rc = load_object(p, &r->summary);
        if (rc < 0 || (rc = check_better(p, r->summary)) < 0)
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

static int add_plain_run(dgm__cmp_loader *L, const char *dir)
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

static int add_sweep(dgm__cmp_loader *L, const char *dir)
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
        r->dir = dgm__cmp_path_join(
            dir, json_string_value(json_object_get(t, "run_dir")));
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
static int add_path(dgm__cmp_loader *L, const char *path, int depth, int *found)
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
        char *child =
            rc == 0 ? dgm__cmp_path_join(path, list[i]->d_name) : NULL;
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

int dgm__compare_load(dgm__compare **out, const char *const *paths, int n_paths,
                      const dgm__cmp_options *o)
{
    static const dgm__cmp_options none = {0};
    *out = NULL;
    if (!o)
        o = &none;
    if (n_paths < 1)
        return dgm_error(DGM_EINVAL, "compare: no run or sweep directory");
    dgm__cmp_loader L = {.c = calloc(1, sizeof(dgm__compare))};
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
        rc = dgm__cmp_group_runs(&L, o);
    dgm__cmp_loader_free_fixed(&L);
    if (rc == 0)
        rc = dgm__cmp_choose_metrics(&L, o);
    if (rc == 0)
        rc = dgm__cmp_compute(L.c);
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
