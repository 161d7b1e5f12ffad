/* text.c - the `text` dataset: a byte-level corpus (by default Debian's
 * fortunes) cut into windows of seq_len bytes for character-level language
 * models: x = bytes[s, s+T), y = bytes[s+1, s+T+1) as vocabulary ids.
 * `path` is a file, a folder or a list of them. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_PATHS(
        "path", .def = "/usr/share/games/fortunes",
        .help =
            "a text file or a folder (its regular files sorted by name, "
            "skipping "
            "symlinks, *.dat and files that look binary), or a list of them, "
            "concatenated in order"),
    DGM_PARAM_INT("seq_len", .def = "64", DGM_GE(1), DGM_LE(1e9),
                  .help = "bytes per window (T)"),
    DGM_PARAM_FLOAT(
        "val_fraction", .def = "0.05", DGM_GE(0.0), DGM_LE(0.5),
        .help =
            "the last fraction of the corpus bytes is the validation split"),
    DGM_PARAM_INT("batch_size", .def = "32", DGM_GE(1), DGM_LE(1e9),
                  .help = "windows per batch (read by the host)"),
    DGM_PARAM_BOOL(
        "shuffle", .def = "true",
        .help = "shuffle the training order each epoch (read by the host)"),
    DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.2e18),
                  .help =
                      "seed of the window draws when the host passes no rng"),
    DGM_PARAM_INT(
        "train_windows", .def = "0", DGM_GE(0), DGM_LE(1e12),
        .help =
            "random windows per training epoch (0: training bytes / seq_len)"),
    DGM_PARAM_CHOICE(
        "order", .def = "random", .choices = "random|stream",
        .help =
            "training windows: random starts, or `stream`: batch_size "
            "contiguous "
            "streams read in order, row i of consecutive batches continuing "
            "stream i (truncated BPTT; needs shuffle: false)"),
    DGM_PARAM_END,
};

/* The vocabulary: the sorted distinct bytes of the training split get ids
 * 0..V-2 and id V-1 is reserved for "unknown", the id of any validation
 * byte never seen in training, so V = distinct training bytes + 1.
 * The vocabulary is the data set's state (save_state): a U8 tensor "vocab"
 * [V - 1] of the bytes in id order, stored with every checkpoint, so a
 * run is sampled and evaluated with the vocabulary it was trained on and a
 * corpus that would give another one is refused (load_state). */
typedef struct text_ds {
    unsigned char *bytes; /* the whole corpus, training split first */
    int64_t len, n_train; /* validation = bytes[n_train, len) */
    int64_t T, train_windows, n_val_windows;
    int64_t streams, stream_len; /* order: stream (0 streams: random) */
    int64_t id[256];             /* byte -> id (V - 1 for unknown) */
    int64_t vocab;               /* V */
    dgm_rng own;                 /* draws when get() is given no rng */
    char *path;                  /* the corpus, for messages */
} text_ds;

static void ds_destroy(void *self)
{
    text_ds *d = self;
    if (!d)
        return;
    free(d->bytes);
    free(d->path);
    free(d);
}

/* Why a buffer looks binary (NULL if it looks like text): a NUL byte, or
 * more than 30% of bytes neither printable ASCII, whitespace nor part of a
 * well-formed UTF-8 sequence. */
static const char *binary_reason(const unsigned char *p, int64_t n, char *buf,
                                 size_t size)
{
    int64_t odd = 0;
    for (int64_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c == 0)
            return "it holds NUL bytes";
        if (c < 0x80) {
            odd += (c < 0x20 && !strchr("\t\n\r\f\v", (int)c)) || c == 0x7f;
            i++;
            continue;
        }
        int k = c >= 0xc2 && c <= 0xdf   ? 1
                : c >= 0xe0 && c <= 0xef ? 2
                : c >= 0xf0 && c <= 0xf4 ? 3
                                         : 0;
        bool ok = k > 0;
        for (int j = 1; ok && j <= k; j++)
            ok = i + j < n && (p[i + j] & 0xc0) == 0x80;
        if (ok)
            i += k + 1;
        else {
            odd++;
            i++;
        }
    }
    if (n > 0 && (double)odd > 0.3 * (double)n) {
        snprintf(buf, size, "%.0f%% of its bytes are not text",
                 100.0 * (double)odd / (double)n);
        return buf;
    }
    return NULL;
}

/* Append the file at path to *buf (size *len, capacity *cap). */
static int read_file(const dgm_config *cfg, const char *path,
                     unsigned char **buf, int64_t *len, int64_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dgm_cfg_error(cfg, "path", DGM_EIO, "%s: cannot open: %s", path,
                             strerror(errno));
    int rc = 0;
    for (;;) {
        if (*cap - *len < 65536) {
            int64_t nc = *cap ? *cap * 2 : 1 << 20;
            unsigned char *nb = realloc(*buf, (size_t)nc);
            if (!nb) {
                rc = dgm_error(DGM_ENOMEM, "text: %s: out of memory", path);
                break;
            }
            *buf = nb;
            *cap = nc;
        }
        size_t got = fread(*buf + *len, 1, (size_t)(*cap - *len), f);
        *len += (int64_t)got;
        if (got == 0) {
            if (ferror(f))
                rc = dgm_cfg_error(cfg, "path", DGM_EIO,
                                   "%s: read error at byte %lld", path,
                                   (long long)*len);
            break;
        }
    }
    fclose(f);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The text files of folder dir, concatenated in name order. */
static int read_folder(const dgm_config *cfg, const char *dir,
                       unsigned char **buf, int64_t *len, int64_t *cap)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return dgm_cfg_error(cfg, "path", DGM_EIO, "%s: cannot open: %s", dir,
                             strerror(errno));
    char **names = NULL;
    size_t n = 0, ncap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' ||
            (nl > 4 && strcmp(e->d_name + nl - 4, ".dat") == 0))
            continue;
        if (n == ncap) {
            ncap = ncap ? ncap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *names);
            if (!nn) {
                rc = dgm_error(DGM_ENOMEM, "text: %s: out of memory", dir);
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = dgm_error(DGM_ENOMEM, "text: %s: out of memory", dir);
            break;
        }
        n++;
    }
    closedir(dp);
    if (rc == 0 && n)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char p[4096];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p)
            rc = dgm_cfg_error(cfg, "path", DGM_EINVAL, "%s/%s: path too long",
                               dir, names[i]);
        /* lstat: symlinks (fortunes' *.u8) would repeat their targets. */
        else if (lstat(p, &st) != 0)
            rc = dgm_cfg_error(cfg, "path", DGM_EIO, "%s: cannot stat: %s", p,
                               strerror(errno));
        else if (S_ISREG(st.st_mode)) {
            int64_t start = *len;
            char why[64];
            rc = read_file(cfg, p, buf, len, cap);
            if (rc == 0 &&
                binary_reason(*buf + start, *len - start, why, sizeof why))
                *len = start; /* skipped: looks binary */
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Append one `path` entry, a file or a folder, to d->bytes. */
static int load_one(text_ds *d, const dgm_config *cfg, const char *path,
                    int64_t *cap)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return dgm_cfg_error(cfg, "path", DGM_EIO, "%s: cannot open: %s", path,
                             strerror(errno));
    if (S_ISDIR(st.st_mode))
        return read_folder(cfg, path, &d->bytes, &d->len, cap);
    int64_t start = d->len;
    int rc = read_file(cfg, path, &d->bytes, &d->len, cap);
    char buf[64];
    const char *why = rc == 0 ? binary_reason(d->bytes + start, d->len - start,
                                              buf, sizeof buf)
                              : NULL;
    if (why)
        rc = dgm_cfg_error(cfg, "path", DGM_EFORMAT,
                           "%s: looks binary, not text: %s", path, why);
    return rc;
}

/* `path` as a list of entries (a string is a list of one); d->path gets
 * them joined by ", " for messages. */
static int load(text_ds *d, const dgm_config *cfg)
{
    const dgm_config *pn = dgm_cfg_child(cfg, "path");
    bool seq = dgm_cfg_kind_of(pn) == DGM_CFG_SEQ;
    int n = seq ? dgm_cfg_len(pn) : 1;
    size_t plen = 1;
    for (int i = 0; i < n; i++) {
        const char *t = dgm_cfg_text(seq ? dgm_cfg_at(pn, i) : pn);
        char key[32] = "path";
        if (seq)
            snprintf(key, sizeof key, "path[%d]", i);
        if (!t || !*t)
            return dgm_cfg_error(cfg, key, DGM_ETYPE,
                                 "needs a file or folder name (path is one, "
                                 "or a non-empty list of them)");
        plen += strlen(t) + 2;
    }
    if (n == 0)
        return dgm_cfg_error(cfg, "path", DGM_ETYPE,
                             "an empty list names no corpus");
    if (!(d->path = malloc(plen)))
        return dgm_error(DGM_ENOMEM, "text: out of memory");
    d->path[0] = '\0';
    int64_t cap = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *t = dgm_cfg_text(seq ? dgm_cfg_at(pn, i) : pn);
        if (i)
            strcat(d->path, ", ");
        strcat(d->path, t);
        rc = load_one(d, cfg, t, &cap);
    }
    if (rc < 0)
        return rc;
    const char *path = d->path;
    if (d->len == 0)
        return dgm_cfg_error(cfg, "path", DGM_EFORMAT,
                             "%s: empty corpus (no text bytes)", path);
    double vf = dgm_cfg_float(cfg, "val_fraction");
    int64_t n_val = (int64_t)(vf * (double)d->len);
    d->n_train = d->len - n_val;
    d->T = dgm_cfg_int(cfg, "seq_len");
    if (d->n_train < d->T + 2 || (vf > 0 && n_val < d->T + 2))
        return dgm_cfg_error(
            cfg, "path", DGM_EFORMAT,
            "%s: the %s split holds %lld bytes, fewer than seq_len + 2 = "
            "%lld (corpus %lld bytes, val_fraction %g)",
            path, d->n_train < d->T + 2 ? "training" : "validation",
            (long long)(d->n_train < d->T + 2 ? d->n_train : n_val),
            (long long)d->T + 2, (long long)d->len, vf);
    d->n_val_windows = n_val > 0 ? (n_val - 1) / d->T : 0;
    d->train_windows = dgm_cfg_int(cfg, "train_windows");
    if (d->train_windows == 0)
        d->train_windows = d->n_train / d->T;
    if (!strcmp(dgm_cfg_str(cfg, "order"), "stream")) {
        /* batch_size streams of stream_len bytes; window k of stream i
         * starts at i * stream_len + k * T and its targets end inside the
         * stream, so every batch is full and consecutive batches continue
         * each row. */
        if (dgm_cfg_bool(cfg, "shuffle"))
            return dgm_cfg_error(cfg, "order", DGM_ECONFIG,
                                 "order: stream reads windows in order; set "
                                 "shuffle: false");
        d->streams = dgm_cfg_int(cfg, "batch_size");
        d->stream_len = d->n_train / d->streams;
        int64_t per = (d->stream_len - 1) / d->T;
        if (per < 1)
            return dgm_cfg_error(cfg, "order", DGM_ECONFIG,
                                 "%s: %lld training bytes make %lld streams "
                                 "of %lld bytes, shorter than seq_len + 1",
                                 path, (long long)d->n_train,
                                 (long long)d->streams,
                                 (long long)d->stream_len);
        d->train_windows = per * d->streams;
    }

    bool seen[256] = {false};
    for (int64_t i = 0; i < d->n_train; i++)
        seen[d->bytes[i]] = true;
    int64_t v = 0;
    for (int b = 0; b < 256; b++)
        if (seen[b])
            d->id[b] = v++;
    for (int b = 0; b < 256; b++)
        if (!seen[b])
            d->id[b] = v; /* unknown */
    d->vocab = v + 1;
    return 0;
}

static int ds_create(void **self, const dgm_config *cfg)
{
    text_ds *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "text: out of memory");
    int rc = load(d, cfg);
    if (rc < 0) {
        ds_destroy(d);
        return rc;
    }
    dgm_rng_seed(&d->own, (uint64_t)dgm_cfg_int(cfg, "seed"));
    *self = d;
    return 0;
}

static int ds_info(void *self, dgm_data_info *out)
{
    const text_ds *d = self;
    memset(out, 0, sizeof *out);
    out->x_shape.ndim = 1;
    out->x_shape.dim[0] = d->T;
    out->x_dtype = DGM_I64;
    out->has_y = true;
    out->y_shape.ndim = 1;
    out->y_shape.dim[0] = d->T;
    out->y_dtype = DGM_I64;
    out->n_classes = d->vocab;
    out->size[DGM_SPLIT_TRAIN] = d->train_windows;
    out->size[DGM_SPLIT_TEST] = d->n_val_windows;
    out->x_min = 0.0f;
    out->x_max = (float)(d->vocab - 1);
    return 0;
}

/* Refuse a batch tensor that is not [n, T] i64 (or [n] f32 for y_mask). */
static int check_tensor(const dgm_tensor *t, const char *what, dgm_dtype dt,
                        int ndim, const int64_t *shape)
{
    char a[96], b[96];
    bool ok = t->dtype == dt && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok)
        return dgm_error(DGM_ESHAPE, "text: batch %s is %s, expected %s %s",
                         what, dgm_tensor_describe(t, a, sizeof a),
                         dgm_shape_str(ndim, shape, b, sizeof b),
                         dgm_dtype_name(dt));
    return 0;
}

static void put_ids(const text_ds *d, dgm_tensor *t, int64_t row,
                    const unsigned char *src)
{
    int64_t *p = (int64_t *)t->data + row * t->strides[0];
    for (int64_t k = 0; k < d->T; k++)
        p[k * t->strides[1]] = d->id[src[k]];
}

static int ds_get(void *self, dgm_split split, const int64_t *idx,
                  dgm_batch *batch, dgm_rng *rng)
{
    text_ds *d = self;
    if ((unsigned)split >= DGM_SPLIT_COUNT || !batch || (!idx && batch->n))
        return dgm_error(DGM_EINVAL, "text: get given a bad split or batch");
    int64_t n = batch->n, size = split == DGM_SPLIT_TRAIN ? d->train_windows
                                                          : d->n_val_windows;
    int64_t sh[2] = {n, d->T};
    int rc;
    if (batch->x && (rc = check_tensor(batch->x, "x", DGM_I64, 2, sh)) < 0)
        return rc;
    if (batch->y && (rc = check_tensor(batch->y, "y", DGM_I64, 2, sh)) < 0)
        return rc;
    if (batch->y_mask &&
        (rc = check_tensor(batch->y_mask, "y_mask", DGM_F32, 1, sh)) < 0)
        return rc;
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= size)
            return dgm_error(DGM_ERANGE,
                             "text: example %lld outside the %s split "
                             "[0, %lld)",
                             (long long)idx[i],
                             split == DGM_SPLIT_TRAIN ? "train" : "test",
                             (long long)size);
    dgm_rng *r = rng ? rng : &d->own;
    for (int64_t i = 0; i < n; i++) {
        /* Training windows lie wholly in the training split: starts
         * 0..n_train-T-1, so the last target is byte n_train-1. */
        int64_t s;
        if (split != DGM_SPLIT_TRAIN)
            s = d->n_train + idx[i] * d->T;
        else if (d->streams)
            s = idx[i] % d->streams * d->stream_len +
                idx[i] / d->streams * d->T;
        else
            s = (int64_t)dgm_rng_below(r, (uint64_t)(d->n_train - d->T));
        if (batch->x)
            put_ids(d, batch->x, i, d->bytes + s);
        if (batch->y)
            put_ids(d, batch->y, i, d->bytes + s + 1);
        if (batch->y_mask)
            ((float *)batch->y_mask->data)[i * batch->y_mask->strides[0]] =
                1.0f;
    }
    return 0;
}

/* The bytes of ids 0..V-2 in order ("unknown" has no byte). */
static void vocab_bytes(const text_ds *d, unsigned char *out)
{
    for (int b = 0; b < 256; b++)
        if (d->id[b] < d->vocab - 1)
            out[d->id[b]] = (unsigned char)b;
}

static int ds_save_state(void *self, dgm_params *state)
{
    const text_ds *d = self;
    unsigned char bytes[256];
    vocab_bytes(d, bytes);
    int64_t n = d->vocab - 1;
    dgm_tensor *t = dgm_tensor_wrap(bytes, DGM_U8, 1, &n, NULL);
    if (!t)
        return dgm_last_code();
    int rc = dgm_params_add_copy(state, "vocab", t, NULL);
    dgm_tensor_free(t);
    return rc;
}

/* Printable form of a byte for messages. */
static const char *show_byte(unsigned b, char *buf, size_t n)
{
    if (b >= 0x21 && b < 0x7f)
        snprintf(buf, n, "'%c'", (int)b);
    else
        snprintf(buf, n, "0x%02x", b);
    return buf;
}

static int ds_load_state(void *self, const dgm_params *state)
{
    const text_ds *d = self;
    dgm_param *p = dgm_params_find(state, "vocab");
    if (!p || p->value->dtype != DGM_U8 || p->value->ndim != 1)
        return dgm_error(DGM_ESTATE,
                         "text: the checkpoint has no U8 [V] \"vocab\" to "
                         "check corpus %s against",
                         d->path);
    unsigned char mine[256];
    vocab_bytes(d, mine);
    const unsigned char *theirs = p->value->data;
    int64_t n = p->value->shape[0], nm = d->vocab - 1;
    for (int64_t i = 0; i < n && i < nm; i++)
        if (theirs[i] != mine[i]) {
            char a[16], b[16];
            return dgm_error(
                DGM_ESTATE,
                "text: the vocabulary of corpus %s differs from "
                "the checkpoint's: id %lld is %s in the "
                "checkpoint, %s in the corpus (%lld and %lld "
                "symbols)",
                d->path, (long long)i, show_byte(theirs[i], a, sizeof a),
                show_byte(mine[i], b, sizeof b), (long long)n, (long long)nm);
        }
    if (n != nm) {
        /* one is a prefix of the other: name the first extra byte */
        char a[16];
        return dgm_error(DGM_ESTATE,
                         "text: the vocabulary of corpus %s differs from the "
                         "checkpoint's: %lld symbols in the corpus, %lld in "
                         "the checkpoint (id %lld is %s only in the %s)",
                         d->path, (long long)nm, (long long)n,
                         (long long)(n < nm ? n : nm),
                         show_byte(n < nm ? mine[n] : theirs[nm], a, sizeof a),
                         n < nm ? "corpus" : "checkpoint");
    }
    return 0;
}

static const dgm_dataset_iface iface = {.create = ds_create,
                                        .info = ds_info,
                                        .get = ds_get,
                                        .destroy = ds_destroy,
                                        .save_state = ds_save_state,
                                        .load_state = ds_load_state};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_DATASET(&iface),
    .name = "text",
    .version = "1.1",
    .summary = "byte-level text corpus in windows (fortunes by default)",
    .params = params,

};

DGM_PLUGIN_NAME(text);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
