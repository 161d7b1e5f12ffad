/* images.c - the `images` dataset: a folder of PNG and JPEG files, class
 * labels from sub-folder names in sorted order (the ImageFolder
 * convention) or a flat folder without labels, split by `train/` and
 * `test/` sub-folders or by a seeded fraction; decoded once into a uint8
 * cache (image_cache.c) that is memory-mapped. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "images.h"

#define MAX_DEPTH 32

static const dgm_param_spec params[] = {
    DGM_PARAM_PATH("path", .help = "the image folder: class sub-folders, "
                                   "or images directly, or train/ and "
                                   "test/ holding either"),
    DGM_PARAM_STRING_LIST("classes", .def = "[]",
                          .help = "class folders to use, in label order "
                                  "([]: all, sorted by name)"),
    DGM_PARAM_INT("size", .def = "64", DGM_GE(1), DGM_LE(4096),
                  .help = "examples are size x size"),
    DGM_PARAM_CHOICE("resize", .def = "shorter", .choices = "shorter|crop",
                     .help = "shorter: scale the shorter side to size, "
                             "centre crop; crop: centre crop, no scaling"),
    DGM_PARAM_INT("channels", .def = "3", DGM_GE(1), DGM_LE(3),
                  .help = "1 (grey) or 3 (RGB)"),
    DGM_PARAM_FLOAT("test_fraction", .def = "0.1", DGM_GE(0), DGM_LE(0.9),
                    .help = "without train/ and test/ folders: the seeded "
                            "fraction of images held out"),
    DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.2e18),
                  .help = "seed of the test_fraction, train_fraction and "
                          "label_fraction choices"),
    DS_FRACTION_PARAMS,
    DGM_PARAM_CHOICE("scale", .def = "unit", .choices = "unit|symmetric",
                     .help = "pixel range: unit [0, 1] or symmetric [-1, 1]"),
    DGM_PARAM_PATH("cache", .def = "\"\"",
                   .help = "the cache file (\"\": "
                           "$XDG_CACHE_HOME/dgm or ~/.cache/dgm)"),
    DGM_PARAM_INT("batch_size", .def = "128", DGM_GE(1), DGM_LE(1e9),
                  .help = "examples per batch (read by the host)"),
    DGM_PARAM_BOOL(
        "shuffle", .def = "true",
        .help = "shuffle the training set each epoch (read by the host)"),
    DGM_PARAM_END,
};

typedef struct file_list {
    img_file *f;
    int64_t n, cap;
} file_list;

static void list_free(file_list *l)
{
    for (int64_t i = 0; i < l->n; i++)
        free(l->f[i].path);
    free(l->f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The visible entries of dir, sorted; *out malloc'ed (free each and it). */
static int list_dir(const char *dir, char ***out, int *count)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return dgm_error(DGM_EIO, "%s: cannot open folder: %s", dir,
                         strerror(errno));
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') /* ., .., hidden files */
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        if (!(v[n] = strdup(e->d_name)))
            break;
        n++;
    }
    bool short_ = e != NULL;
    closedir(dp);
    if (short_) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", dir);
    }
    if (n > 1) /* v is NULL for an empty folder */
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *count = n;
    return 0;
}

static void names_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The folders on the way down, to refuse a symlink loop. */
typedef struct walk_stack {
    dev_t dev[MAX_DEPTH];
    ino_t ino[MAX_DEPTH];
    int depth;
} walk_stack;

static int add_file(file_list *l, const char *path, const struct stat *st,
                    int64_t label, int split)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        img_file *nf = realloc(l->f, (size_t)l->cap * sizeof *nf);
        if (!nf)
            return dgm_error(DGM_ENOMEM, "images: out of memory");
        l->f = nf;
    }
    img_file *f = &l->f[l->n];
    if (!(f->path = strdup(path)))
        return dgm_error(DGM_ENOMEM, "images: out of memory");
    f->size = st->st_size;
    f->mtime_ns =
        (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    f->label = label;
    f->split = split;
    l->n++;
    return 0;
}

/* Every file under dir (depth first, sorted), following symlinks but
 * refusing one that leads back into a folder on the way down. */
static int walk(const char *dir, walk_stack *ws, file_list *l, int64_t label,
                int split)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return dgm_error(DGM_EIO, "%s: %s", dir, strerror(errno));
    for (int i = 0; i < ws->depth; i++)
        if (ws->dev[i] == st.st_dev && ws->ino[i] == st.st_ino)
            return dgm_error(DGM_EFORMAT,
                             "%s: symlink loop (leads back to a folder "
                             "above it)",
                             dir);
    if (ws->depth >= MAX_DEPTH)
        return dgm_error(DGM_EFORMAT, "%s: folders nested deeper than %d", dir,
                         MAX_DEPTH);
    ws->dev[ws->depth] = st.st_dev;
    ws->ino[ws->depth++] = st.st_ino;
    char **names = NULL;
    int n = 0, rc = list_dir(dir, &names, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >=
            (int)sizeof path) {
            rc = dgm_error(DGM_EINVAL, "%s/%s: path too long", dir, names[i]);
            break;
        }
        if (stat(path, &st) < 0)
            rc = dgm_error(DGM_EIO, "%s: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = walk(path, ws, l, label, split);
        else if (S_ISREG(st.st_mode))
            rc = add_file(l, path, &st, label, split);
        else
            rc = dgm_error(DGM_EFORMAT, "%s: not a regular file or folder",
                           path);
    }
    names_free(names, n);
    ws->depth--;
    return rc;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The classes of a split folder: `classes` from the YAML (each must be a
 * folder there), else its sub-folders in sorted order. A folder holding
 * both images and folders is refused; one holding only files is flat (no
 * labels): *n_classes = 0. */
static int find_classes(const dgm_config *cfg, const char *root,
                        char ***classes, int *n_classes)
{
    char **names = NULL;
    int n = 0, rc = list_dir(root, &names, &n);
    if (rc < 0)
        return rc;
    int dirs = 0;
    const char *a_file = NULL;
    char path[8448];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        if (is_dir(path))
            dirs++;
        else if (!a_file)
            a_file = names[i];
    }
    if (n == 0)
        rc = dgm_error(DGM_EFORMAT, "%s: empty folder: no images", root);
    else if (dirs && a_file)
        rc = dgm_error(DGM_EFORMAT,
                       "%s/%s: a file beside class folders (images go in "
                       "the class folders, or all directly in %s)",
                       root, a_file, root);
    const dgm_config *want = dgm_cfg_child(cfg, "classes");
    int nw = want ? dgm_cfg_len(want) : 0;
    if (rc == 0 && nw > 0 && !dirs)
        rc = dgm_cfg_error(cfg, "classes", DGM_EINVAL,
                           "%s has no class folders", root);
    if (rc < 0 || !dirs) {
        names_free(names, n);
        *classes = NULL;
        *n_classes = 0;
        return rc;
    }
    if (nw > 0) {
        names_free(names, n);
        names = calloc((size_t)nw, sizeof *names);
        if (!names)
            return dgm_error(DGM_ENOMEM, "images: out of memory");
        for (int i = 0; i < nw && rc == 0; i++) {
            const char *c = dgm_cfg_text(dgm_cfg_at(want, i));
            snprintf(path, sizeof path, "%s/%s", root, c);
            if (!c || !c[0] || strchr(c, '/') || !is_dir(path))
                rc = dgm_cfg_error(want, NULL, DGM_ENOTFOUND,
                                   "class '%s' is not a folder in %s",
                                   c ? c : "", root);
            for (int j = 0; j < i && rc == 0; j++)
                if (!strcmp(names[j], c))
                    rc = dgm_cfg_error(want, NULL, DGM_EDUP,
                                       "class '%s' listed twice", c);
            if (rc == 0 && !(names[i] = strdup(c)))
                rc = dgm_error(DGM_ENOMEM, "images: out of memory");
        }
        n = nw;
        if (rc < 0) {
            names_free(names, n);
            return rc;
        }
    }
    *classes = names;
    *n_classes = n;
    return 0;
}

/* The files of one split folder, labelled by `classes` (n_classes 0:
 * flat). A class folder without images is refused. */
static int collect(const char *root, char **classes, int n_classes, int split,
                   file_list *l)
{
    walk_stack ws = {.depth = 0};
    if (n_classes == 0) {
        int64_t before = l->n;
        int rc = walk(root, &ws, l, -1, split);
        if (rc == 0 && l->n == before)
            rc = dgm_error(DGM_EFORMAT, "%s: no images", root);
        return rc;
    }
    struct stat st;
    if (stat(root, &st) == 0) {
        ws.dev[0] = st.st_dev;
        ws.ino[0] = st.st_ino;
        ws.depth = 1;
    }
    for (int c = 0; c < n_classes; c++) {
        char path[8448];
        snprintf(path, sizeof path, "%s/%s", root, classes[c]);
        int64_t before = l->n;
        if (split == DGM_SPLIT_TEST && !is_dir(path))
            continue; /* a class may lack test images */
        int rc = is_dir(path) ? walk(path, &ws, l, c, split)
                              : dgm_error(DGM_ENOTFOUND,
                                          "%s: class folder missing", path);
        if (rc == 0 && l->n == before)
            rc =
                dgm_error(DGM_EFORMAT, "%s: class folder without images", path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Without `classes:`, every class folder of test/ must be one of train/'s
 * (a test label the model never saw would be silently wrong); with it,
 * only the listed ones are read from either. */
static int check_test_classes(const dgm_config *cfg, const char *te,
                              char **classes, int nc)
{
    const dgm_config *want = dgm_cfg_child(cfg, "classes");
    if (want && dgm_cfg_len(want) > 0)
        return 0;
    char **names = NULL;
    int n = 0, rc = list_dir(te, &names, &n);
    for (int i = 0; i < n && rc == 0; i++) {
        char path[8448];
        snprintf(path, sizeof path, "%s/%s", te, names[i]);
        bool known = nc == 0 && !is_dir(path);
        for (int c = 0; c < nc && !known; c++)
            known = !strcmp(classes[c], names[i]);
        if (!known)
            rc = dgm_error(DGM_EFORMAT, "%s: %s the training split lacks", path,
                           nc ? "a class folder" : "a folder");
    }
    names_free(names, n);
    return rc;
}

/* The default cache: one file per folder and options, under
 * $XDG_CACHE_HOME/dgm (or ~/.cache/dgm, or /tmp/dgm-cache). */
static int default_cache(const char *root, const img_opts *o, char *buf,
                         size_t cap)
{
    char real[4096];
    if (!realpath(root, real))
        snprintf(real, sizeof real, "%s", root);
    uint64_t h = 14695981039346656037ull;
    char opt[64];
    int on =
        snprintf(opt, sizeof opt, "|%d|%d|%d", o->size, o->crop, o->channels);
    for (const char *p = real; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (int i = 0; i < on; i++)
        h = (h ^ (unsigned char)opt[i]) * 1099511628211ull;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    const char *base = xdg && xdg[0] ? xdg : home && home[0] ? home : NULL;
    int n = snprintf(
        buf, cap, "%s%s/dgm/images-%016llx.u8", base ? base : "/tmp/dgm-cache",
        base && base == home ? "/.cache" : "", (unsigned long long)h);
    return n > 0 && (size_t)n < cap
               ? 0
               : dgm_error(DGM_EINVAL, "images: cache path too long");
}

/* Seeded: round(fraction x N) of the files not already split go to the
 * test split, the rest to training. */
static void split_by_fraction(file_list *l, double frac, uint64_t seed)
{
    int64_t *idx = malloc((size_t)(l->n ? l->n : 1) * sizeof *idx);
    if (!idx)
        return;
    int64_t m = 0;
    for (int64_t i = 0; i < l->n; i++)
        if (l->f[i].split < 0)
            idx[m++] = i;
    dgm_rng rng;
    dgm_rng_seed(&rng, seed);
    dgm_rng_shuffle(&rng, idx, m);
    int64_t k = (int64_t)(frac * (double)m + 0.5);
    for (int64_t i = 0; i < m; i++)
        l->f[idx[i]].split = i < k ? DGM_SPLIT_TEST : DGM_SPLIT_TRAIN;
    free(idx);
}

static int build(px_set *d, const dgm_config *cfg, file_list *l)
{
    const char *root = dgm_cfg_str(cfg, "path");
    img_opts o = {.size = (int)dgm_cfg_int(cfg, "size"),
                  .crop = !strcmp(dgm_cfg_str(cfg, "resize"), "crop"),
                  .channels = (int)dgm_cfg_int(cfg, "channels")};
    if (o.channels == 2)
        return dgm_cfg_error(cfg, "channels", DGM_ERANGE,
                             "channels is 1 (grey) or 3 (RGB), not 2");
    struct stat st;
    errno = 0;
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
        return dgm_cfg_error(cfg, "path", DGM_EIO, "%s: not a folder%s%s", root,
                             errno ? ": " : "", errno ? strerror(errno) : "");
    char tr[4096], te[4096];
    snprintf(tr, sizeof tr, "%s/train", root);
    snprintf(te, sizeof te, "%s/test", root);
    bool folders = is_dir(tr);
    if (folders && !is_dir(te))
        return dgm_cfg_error(cfg, "path", DGM_EFORMAT,
                             "%s: a train/ folder but no test/ folder", root);
    char **classes = NULL;
    int nc = 0;
    int rc = find_classes(cfg, folders ? tr : root, &classes, &nc);
    if (rc == 0 && folders)
        rc = collect(tr, classes, nc, DGM_SPLIT_TRAIN, l);
    if (rc == 0 && folders)
        rc = check_test_classes(cfg, te, classes, nc);
    if (rc == 0 && folders)
        rc = collect(te, classes, nc, DGM_SPLIT_TEST, l);
    if (rc == 0 && !folders) {
        rc = collect(root, classes, nc, -1, l);
        if (rc == 0)
            split_by_fraction(l, dgm_cfg_float(cfg, "test_fraction"),
                              (uint64_t)dgm_cfg_int(cfg, "seed"));
    }
    size_t tlen = 1;
    for (int c = 0; c < nc; c++)
        tlen += strlen(classes[c]) + 1;
    if (rc == 0 && !(d->class_names = calloc(tlen, 1)))
        rc = dgm_error(DGM_ENOMEM, "images: out of memory");
    for (int c = 0; c < nc && rc == 0; c++) {
        strcat(d->class_names, classes[c]);
        strcat(d->class_names, c + 1 < nc ? "\n" : "");
    }
    names_free(classes, nc);
    if (rc < 0)
        return rc;
    char cache[4096];
    const char *cp = dgm_cfg_str(cfg, "cache");
    if (cp[0])
        snprintf(cache, sizeof cache, "%s", cp);
    else if ((rc = default_cache(root, &o, cache, sizeof cache)) < 0)
        return rc;
    const unsigned char *px;
    if ((rc = img_cache_open(d, cache, l->f, l->n, &o, &px, NULL)) < 0)
        return rc;
    d->ndim = 3;
    d->dim[0] = o.channels;
    d->dim[1] = d->dim[2] = o.size;
    d->n_classes = nc;
    for (int sp = 0; sp < DGM_SPLIT_COUNT; sp++) {
        px_split *s = &d->s[sp];
        s->base = px;
        s->stride = (size_t)o.channels * o.size * o.size;
        s->total = l->n;
        if (nc == 0)
            continue;
        s->labels = malloc((size_t)l->n * sizeof *s->labels);
        if (!s->labels)
            return dgm_error(DGM_ENOMEM, "images: out of memory");
        for (int64_t i = 0; i < l->n; i++)
            s->labels[i] = l->f[i].label;
    }
    if ((rc = px_finish(d, cfg, false)) < 0)
        return rc;
    /* px_finish kept every record in both splits: keep each split's own. */
    for (int sp = 0; sp < DGM_SPLIT_COUNT; sp++) {
        px_split *s = &d->s[sp];
        s->n = 0;
        for (int64_t i = 0; i < l->n; i++)
            if (l->f[i].split == sp)
                s->keep[s->n++] = i;
    }
    if (d->s[DGM_SPLIT_TRAIN].n == 0)
        return dgm_cfg_error(cfg, "test_fraction", DGM_EFORMAT,
                             "%s: no image left for training", root);
    return px_fractions(d, cfg);
}

static int ds_create(void **self, const dgm_config *cfg)
{
    px_set *d = px_new("images", cfg);
    if (!d)
        return DGM_ENOMEM;
    file_list l = {0};
    int rc = build(d, cfg, &l);
    list_free(&l);
    if (rc < 0) {
        px_destroy(d);
        return rc;
    }
    *self = d;
    return 0;
}

/* The state: the class names in label order ("classes", U8, '\n'-joined),
 * so a run resumed, sampled or evaluated on a folder whose classes differ
 * (a folder added or renamed shifts every label) is refused. */
static int ds_save_state(void *self, dgm_params *state)
{
    const px_set *d = self;
    int64_t n = (int64_t)strlen(d->class_names);
    if (n == 0)
        return 0; /* unlabelled */
    dgm_tensor *t = dgm_tensor_wrap(d->class_names, DGM_U8, 1, &n, NULL);
    if (!t)
        return dgm_last_code();
    int rc = dgm_params_add_copy(state, "classes", t, NULL);
    dgm_tensor_free(t);
    return rc;
}

/* '\n'-joined names as "a, b, c" for a message (cut at cap). */
static const char *show_names(const char *p, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < cap; i++) {
        if (p[i] == '\n') {
            buf[k++] = ',';
            buf[k++] = ' ';
        } else
            buf[k++] = p[i];
    }
    buf[k] = '\0';
    return buf;
}

static int ds_load_state(void *self, const dgm_params *state)
{
    const px_set *d = self;
    dgm_param *p = dgm_params_find(state, "classes");
    size_t mine = strlen(d->class_names);
    if (!p && mine == 0)
        return 0;
    bool ok = p && p->value->dtype == DGM_U8 && p->value->ndim == 1;
    const char *theirs = ok ? p->value->data : "";
    size_t n = ok ? (size_t)p->value->shape[0] : 0;
    if (n == mine && !memcmp(theirs, d->class_names, n))
        return 0;
    char a[1024], b[1024];
    return dgm_error(DGM_ESTATE,
                     "images: the class folders differ from the "
                     "checkpoint's: the folder has [%s], the checkpoint "
                     "[%s] (in label order)",
                     show_names(d->class_names, mine, a, sizeof a),
                     show_names(theirs, n, b, sizeof b));
}

static const dgm_dataset_iface iface = {.create = ds_create,
                                        .info = px_info,
                                        .get = px_get,
                                        .destroy = px_destroy,
                                        .save_state = ds_save_state,
                                        .load_state = ds_load_state};

const dgm_plugin_desc px_images_desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_DATASET(&iface),
    .name = "images",
    .version = "1.0",
    .summary = "a folder of PNG/JPEG images (class sub-folders), cached",
    .params = params,
};

DGM_PLUGIN_NAME(images);
