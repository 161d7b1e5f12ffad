/* registry.c - the plugin registry: a search path of folders, the *.so
 * files found there (dlopen'ed, ABI-checked, descriptors validated) and
 * lookup by name or path. Refused files are recorded as problems.
 *
 * On demand (dgm_registry_set_on_demand): a file that lists its plugin
 * names in a `.dgm_plugins` section (plugin_names.c reads it without
 * running any of the file's code) is only indexed by a scan, and dlopen'ed
 * when a lookup asks for one of its names; a file without the section is
 * loaded at scan time, as it always was.
 *
 * Unloading: dgm_registry_free dlcloses every file, except when the
 * environment variable DGM_NO_DLCLOSE is set (non-empty, not "0") or libdgm
 * is built with AddressSanitizer: LeakSanitizer cannot symbolise frames in
 * a module that is no longer mapped, so its reports would be unreadable.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "dgm/error.h"
#include "dgm/host.h"
#include "plugin_check.h"
#include "plugin_names.h"

#define MAX_DESCS_PER_FILE 256

typedef struct file_rec {
    char *path;   /* as found: "<dir>/<name>.so" */
    char *real;   /* realpath, to recognise a file met twice */
    void *handle; /* NULL for a refused or pending file */
    char *names;  /* its .dgm_plugins section (NUL-ended names) or NULL */
    size_t names_len;
    bool pending; /* indexed by name, not loaded yet (on demand) */
} file_rec;

typedef struct entry {
    const dgm_plugin_desc *desc;
    int file; /* index into files */
} entry;

struct dgm_registry {
    char **dirs;
    int n_dirs;
    char *search_path; /* dirs joined with ':' (rebuilt on add) */
    file_rec *files;   /* every file met, loaded or refused */
    int n_files;
    entry *entries;
    int n_entries;
    char **problems;
    int n_problems;
    bool on_demand;
};

static const char *kind_label(dgm_kind k)
{
    return k == 0 ? "any kind" : dgm_kind_name(k) ? dgm_kind_name(k) : "?";
}

static bool keep_loaded(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return true;
#else
    const char *e = getenv("DGM_NO_DLCLOSE");
    return e && e[0] && strcmp(e, "0") != 0;
#endif
}

static void unload(void *handle)
{
    if (handle && !keep_loaded())
        dlclose(handle);
}

/* ---- lifetime and search path ---------------------------------------- */

int dgm_registry_new(dgm_registry **out)
{
    dgm_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->search_path = strdup(""))) {
        free(r);
        return dgm_error(DGM_ENOMEM, "registry: out of memory");
    }
    *out = r;
    return 0;
}

void dgm_registry_free(dgm_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_files; i++) {
        unload(r->files[i].handle);
        free(r->files[i].path);
        free(r->files[i].real);
        free(r->files[i].names);
    }
    for (int i = 0; i < r->n_dirs; i++)
        free(r->dirs[i]);
    for (int i = 0; i < r->n_problems; i++)
        free(r->problems[i]);
    free(r->files);
    free(r->dirs);
    free(r->problems);
    free(r->entries);
    free(r->search_path);
    free(r);
}

/* An array of n elements of sz bytes made room for one more; NULL (and
 * old untouched) when out of memory. */
static void *more(void *old, int n, size_t sz)
{
    return realloc(old, (size_t)(n + 1) * sz);
}

int dgm_registry_add_dir(dgm_registry *r, const char *dir)
{
    if (!r || !dir || !dir[0])
        return dgm_error(DGM_EINVAL, "registry: add_dir needs a folder");
    size_t old = strlen(r->search_path);
    char *d = strdup(dir);
    char *sp = malloc(old + strlen(dir) + 2);
    char **dirs = more(r->dirs, r->n_dirs, sizeof *r->dirs);
    if (dirs)
        r->dirs = dirs;
    if (!d || !sp || !dirs) {
        free(d);
        free(sp);
        return dgm_error(DGM_ENOMEM, "registry: out of memory adding %s", dir);
    }
    sprintf(sp, "%s%s%s", r->search_path, old ? ":" : "", dir);
    free(r->search_path);
    r->search_path = sp;
    r->dirs[r->n_dirs++] = d;
    return 0;
}

int dgm_registry_add_env(dgm_registry *r)
{
    const char *env = getenv("DGM_PLUGIN_PATH");
    if (!r)
        return dgm_error(DGM_EINVAL, "registry: NULL registry");
    if (!env)
        return 0;
    char *copy = strdup(env);
    if (!copy)
        return dgm_error(DGM_ENOMEM, "registry: out of memory");
    int rc = 0;
    char *save = NULL;
    /* Empty elements ("a::b") are skipped rather than meaning ".". */
    for (char *tok = strtok_r(copy, ":", &save); tok && rc == 0;
         tok = strtok_r(NULL, ":", &save))
        rc = dgm_registry_add_dir(r, tok);
    free(copy);
    return rc;
}

int dgm_registry_add_default(dgm_registry *r)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (!r)
        return dgm_error(DGM_EINVAL, "registry: NULL registry");
    if (n <= 0)
        return dgm_error(DGM_EIO, "registry: cannot resolve /proc/self/exe: %s",
                         strerror(errno));
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return dgm_error(DGM_EIO, "registry: odd executable path '%s'", exe);
    *slash = '\0';
    const char *dir = exe[0] ? exe : "/";
    const char *const rel[] = {"/../plugins", "/../lib/dgm/plugins"};
    for (int i = 0; i < 2; i++) {
        char buf[PATH_MAX + 32];
        snprintf(buf, sizeof buf, "%s%s", dir, rel[i]);
        int rc = dgm_registry_add_dir(r, buf);
        if (rc < 0)
            return rc;
    }
    return 0;
}

const char *dgm_registry_search_path(const dgm_registry *r)
{
    return r ? r->search_path : "";
}

/* ---- problems -------------------------------------------------------- */

int dgm_registry_problem_count(const dgm_registry *r)
{
    return r ? r->n_problems : 0;
}

const char *dgm_registry_problem(const dgm_registry *r, int i)
{
    return r && i >= 0 && i < r->n_problems ? r->problems[i] : NULL;
}

/* Record the last error message as a problem (best effort on ENOMEM). */
static void record_problem(dgm_registry *r)
{
    char *p = strdup(dgm_last_error());
    char **ps = more(r->problems, r->n_problems, sizeof *r->problems);
    if (ps)
        r->problems = ps;
    if (!p || !ps) {
        free(p);
        return;
    }
    r->problems[r->n_problems++] = p;
}

/* Whether a file's .dgm_plugins names hold `name`. */
static bool has_name(const char *names, size_t len, const char *name)
{
    for (size_t i = 0; i < len; i += strlen(names + i) + 1)
        if (!strcmp(names + i, name))
            return true;
    return false;
}

/* A file that lists its names must list every one: a name it leaves out
 * could not be found on demand. */
static int check_listed(const char *path, const char *names, size_t len,
                        const dgm_plugin_desc *d)
{
    if (!names || has_name(names, len, d->name))
        return 0;
    return dgm_error(DGM_EFORMAT,
                     "%s: plugin '%s' is missing from the file's %s section "
                     "(add DGM_PLUGIN_NAME(%s) beside its descriptor)",
                     path, d->name, DGM__NAMES_SECTION, d->name);
}

/* dlopen `path`, validate every descriptor and append the file and its
 * entries; on failure nothing is added and the file is closed. Returns
 * the index of the file record or a negative code. */
static int load(dgm_registry *r, const char *path, const char *real)
{
    char *names = NULL;
    size_t names_len = 0;
    dgm__plugin_file_names(path, &names, &names_len);
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        /* dlerror() usually starts with the path again: say it once. */
        const char *why = dlerror();
        size_t n = strlen(path);
        if (why && !strncmp(why, path, n) && !strncmp(why + n, ": ", 2))
            why += n + 2;
        free(names);
        return dgm_error(DGM_EDLOPEN, "%s: cannot load: %s", path,
                         why ? why : "unknown dlopen error");
    }
    void *sym = dlsym(h, DGM_PLUGIN_QUERY_SYMBOL);
    dgm_plugin_query_fn query;
    memcpy(&query, &sym, sizeof query); /* POSIX: object to function ptr */
    if (!query) {
        free(names);
        unload(h);
        return dgm_error(DGM_ENOSYM,
                         "%s: no %s symbol (not a dgm plugin, or built "
                         "without DGM_PLUGIN_EXPORT)",
                         path, DGM_PLUGIN_QUERY_SYMBOL);
    }
    const dgm_plugin_desc *descs[MAX_DESCS_PER_FILE];
    uint32_t n = 0;
    int rc = 0;
    for (;; n++) {
        const dgm_plugin_desc *d = query(n);
        if (!d)
            break;
        if (n == MAX_DESCS_PER_FILE) {
            rc = dgm_error(DGM_EFORMAT,
                           "%s: %s returns more than %d descriptors (it "
                           "must return NULL past the last)",
                           path, DGM_PLUGIN_QUERY_SYMBOL, MAX_DESCS_PER_FILE);
            break;
        }
        if ((rc = dgm__plugin_desc_check(path, n, d)) < 0 ||
            (rc = check_listed(path, names, names_len, d)) < 0)
            break;
        descs[n] = d;
    }
    if (rc == 0 && n == 0)
        rc = dgm_error(DGM_EFORMAT, "%s: %s(0) returned NULL: no plugins", path,
                       DGM_PLUGIN_QUERY_SYMBOL);
    char *p = NULL, *rp = NULL;
    if (rc == 0) {
        p = strdup(path);
        rp = strdup(real);
        entry *e = realloc(r->entries, (size_t)(r->n_entries + (int)n) *
                                           sizeof *r->entries);
        if (e)
            r->entries = e;
        file_rec *f = more(r->files, r->n_files, sizeof *r->files);
        if (f)
            r->files = f;
        if (!p || !rp || !e || !f)
            rc = dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    }
    if (rc < 0) {
        free(p);
        free(rp);
        free(names);
        unload(h);
        return rc;
    }
    int fi = r->n_files++;
    r->files[fi] = (file_rec){p, rp, h, names, names_len, false};
    for (uint32_t i = 0; i < n; i++)
        r->entries[r->n_entries++] = (entry){descs[i], fi};
    return fi;
}

/* Remember a refused file so a rescan does not report it twice, or
 * (names not NULL, taken over) a file indexed to load on demand. Returns
 * false when out of memory. */
static bool remember(dgm_registry *r, const char *path, const char *real,
                     char *names, size_t names_len)
{
    char *p = strdup(path), *rp = strdup(real);
    file_rec *f = more(r->files, r->n_files, sizeof *r->files);
    if (f)
        r->files = f;
    if (!p || !rp || !f) {
        free(p);
        free(rp);
        free(names);
        return false;
    }
    r->files[r->n_files++] =
        (file_rec){p, rp, NULL, names, names_len, names != NULL};
    return true;
}

static void remember_refused(dgm_registry *r, const char *path,
                             const char *real)
{
    remember(r, path, real, NULL, 0);
}

/* The record of a file by realpath (only loaded ones if loaded_only). */
static int find_file(const dgm_registry *r, const char *real, bool loaded_only)
{
    for (int i = 0; i < r->n_files; i++)
        if (!strcmp(r->files[i].real, real) &&
            (r->files[i].handle || !loaded_only))
            return i;
    return -1;
}

/* Record a problem for each name of file fi that an earlier file has. */
static void note_duplicates(dgm_registry *r, int fi)
{
    for (int i = 0; i < r->n_entries; i++) {
        if (r->entries[i].file != fi)
            continue;
        for (int j = 0; j < i; j++)
            if (!strcmp(r->entries[j].desc->name, r->entries[i].desc->name)) {
                dgm_error(DGM_EDUP,
                          "%s: plugin name '%s' is also defined in %s; the "
                          "name is ambiguous",
                          r->files[fi].path, r->entries[i].desc->name,
                          r->files[r->entries[j].file].path);
                record_problem(r);
                break;
            }
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && !strcmp(name + n - 3, ".so") && name[0] != '.';
}

/* Load every new *.so of one folder, in name order. */
static void scan_dir(dgm_registry *r, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        if (errno == ENOENT || errno == ENOTDIR)
            return; /* kept in the path, skipped */
        dgm_error(DGM_EIO, "%s: cannot read folder: %s", dir, strerror(errno));
        record_problem(r);
        return;
    }
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!is_so(de->d_name))
            continue;
        char **q = more(names, n, sizeof *names);
        if (!q)
            break;
        names = q;
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(dp);
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, name_cmp);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], real[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
            !realpath(path, real) || find_file(r, real, false) >= 0)
            continue;
        char *listed = NULL;
        size_t listed_len = 0;
        if (r->on_demand &&
            dgm__plugin_file_names(path, &listed, &listed_len) == 1 &&
            remember(r, path, real, listed, listed_len))
            continue; /* loaded when one of its names is asked for */
        int fi = load(r, path, real);
        if (fi < 0) {
            record_problem(r);
            remember_refused(r, path, real);
        } else {
            note_duplicates(r, fi);
        }
    }
    free(names);
}

/* Load pending file fi. Its record becomes a plain "met" record (so a
 * rescan skips the file) and the loaded file gets a record of its own.
 * A refusal is recorded as a problem too, as a scan would. */
static int load_pending(dgm_registry *r, int fi, bool record)
{
    char path[PATH_MAX], real[PATH_MAX];
    snprintf(path, sizeof path, "%s", r->files[fi].path);
    snprintf(real, sizeof real, "%s", r->files[fi].real);
    r->files[fi].pending = false;
    int got = load(r, path, real);
    if (got < 0 && record)
        record_problem(r);
    else
        note_duplicates(r, got);
    return got;
}

/* Load every pending file that lists `name`; returns the first refusal's
 * code and sets *problem to its index among the problems, or 0. */
static int load_providers(dgm_registry *r, const char *name, int *problem)
{
    int first = 0;
    for (int i = 0; i < r->n_files; i++) {
        if (!r->files[i].pending ||
            !has_name(r->files[i].names, r->files[i].names_len, name))
            continue;
        int before = r->n_problems;
        int rc = load_pending(r, i, true);
        if (rc < 0 && first == 0 && r->n_problems > before) {
            first = rc;
            *problem = before;
        }
    }
    return first;
}

void dgm_registry_set_on_demand(dgm_registry *r, bool on)
{
    if (r)
        r->on_demand = on;
}

int dgm_registry_load_all(dgm_registry *r)
{
    if (!r)
        return dgm_error(DGM_EINVAL, "registry: NULL registry");
    int before = r->n_problems;
    for (int i = 0; i < r->n_files; i++)
        if (r->files[i].pending)
            load_pending(r, i, true);
    return r->n_problems - before;
}

int dgm_registry_scan(dgm_registry *r)
{
    if (!r)
        return dgm_error(DGM_EINVAL, "registry: NULL registry");
    int before = r->n_problems;
    for (int i = 0; i < r->n_dirs; i++)
        scan_dir(r, r->dirs[i]);
    return r->n_problems - before;
}

/* Load a file given by path (or find it among the loaded ones); returns
 * its file index. */
static int load_path(dgm_registry *r, const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return dgm_error(DGM_ENOTFOUND, "%s: plugin file not found: %s", path,
                         strerror(errno));
    int fi = find_file(r, real, true);
    if (fi >= 0)
        return fi;
    fi = find_file(r, real, false);
    if (fi >= 0 && r->files[fi].pending) {
        return load_pending(r, fi, false);
    }
    fi = load(r, path, real);
    if (fi >= 0)
        note_duplicates(r, fi);
    return fi;
}

int dgm_registry_load_file(dgm_registry *r, const char *path)
{
    if (!r || !path)
        return dgm_error(DGM_EINVAL, "registry: load_file needs a path");
    int fi = load_path(r, path);
    return fi < 0 ? fi : 0;
}

/* ---- lookup ---------------------------------------------------------- */

static bool is_path(const char *name)
{
    size_t n = strlen(name);
    return strchr(name, '/') || (n > 3 && !strcmp(name + n - 3, ".so"));
}

static int give(const dgm_registry *r, const entry *e,
                const dgm_plugin_desc **desc, const char **file)
{
    if (desc)
        *desc = e->desc;
    if (file)
        *file = r->files[e->file].path;
    return 0;
}

static int wrong_kind(const dgm_registry *r, const entry *e, dgm_kind want)
{
    return dgm_error(DGM_EKIND, "plugin '%s' (%s) is a %s, not a %s",
                     e->desc->name, r->files[e->file].path,
                     dgm_kind_name(e->desc->kind), dgm_kind_name(want));
}

/* By path: the file's first descriptor of the wanted kind. */
static int find_in_file(dgm_registry *r, dgm_kind kind, const char *path,
                        const dgm_plugin_desc **desc, const char **file)
{
    int fi = load_path(r, path);
    if (fi < 0)
        return fi;
    const entry *first = NULL;
    for (int i = 0; i < r->n_entries; i++) {
        const entry *e = &r->entries[i];
        if (e->file != fi)
            continue;
        if (kind == 0 || e->desc->kind == kind)
            return give(r, e, desc, file);
        if (!first)
            first = e;
    }
    return first ? wrong_kind(r, first, kind)
                 : dgm_error(DGM_ENOTFOUND, "%s: holds no plugins", path);
}

int dgm_registry_find(dgm_registry *r, dgm_kind kind, const char *name,
                      const dgm_plugin_desc **desc, const char **file)
{
    if (!r || !name || !name[0])
        return dgm_error(DGM_EINVAL, "registry: find needs a name");
    if (kind != 0 && !dgm_kind_name(kind))
        return dgm_error(DGM_EINVAL,
                         "registry: invalid kind %d looking for "
                         "'%s'",
                         (int)kind, name);
    if (is_path(name))
        return find_in_file(r, kind, name, desc, file);
    int problem = -1;
    int refused = r->on_demand ? load_providers(r, name, &problem) : 0;

    /* Names are meant to be unique; when they are not, a kind can still
     * single one out, otherwise the name is ambiguous. */
    const entry *match = NULL, *other = NULL;
    for (int i = 0; i < r->n_entries; i++) {
        const entry *e = &r->entries[i];
        if (strcmp(e->desc->name, name))
            continue;
        if (kind != 0 && e->desc->kind != kind) {
            if (!other)
                other = e;
            continue;
        }
        if (match)
            return dgm_error(DGM_EDUP,
                             "plugin name '%s' is ambiguous: defined in %s "
                             "and in %s",
                             name, r->files[match->file].path,
                             r->files[e->file].path);
        match = e;
    }
    if (match)
        return give(r, match, desc, file);
    if (other)
        return wrong_kind(r, other, kind);
    if (refused < 0) /* a file listing the name was refused: say why */
        return dgm_error(refused, "%s", r->problems[problem]);
    return dgm_error(DGM_ENOTFOUND,
                     "plugin '%s' (%s) not found; search "
                     "path: %s",
                     name, kind_label(kind),
                     r->search_path[0] ? r->search_path : "(empty)");
}

int dgm_registry_count(const dgm_registry *r)
{
    return r ? r->n_entries : 0;
}

const dgm_plugin_desc *dgm_registry_at(const dgm_registry *r, int i,
                                       const char **file)
{
    if (!r || i < 0 || i >= r->n_entries)
        return NULL;
    if (file)
        *file = r->files[r->entries[i].file].path;
    return r->entries[i].desc;
}
