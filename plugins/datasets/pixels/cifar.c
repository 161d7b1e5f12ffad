/* cifar.c - the `cifar` dataset: the "binary version" files of CIFAR-10
 * (data_batch_1..5.bin, test_batch.bin: records of 1 label byte and 3072
 * pixel bytes) and CIFAR-100 (train.bin, test.bin: a coarse and a fine
 * label byte, then the pixels). Pixels are 1024 red, 1024 green, 1024 blue
 * bytes, each plane 32 rows of 32: already [C, H, W], so a record's pixels
 * are used where they lie. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pixels.h"

#define CIFAR_PIXELS 3072
#define CIFAR10_TRAIN_FILES 5

static const dgm_param_spec params[] = {
    DGM_PARAM_PATH("path", .help = "folder holding the binary version's "
                                   "files (cifar-10-batches-bin or "
                                   "cifar-100-binary)"),
    DGM_PARAM_CHOICE("variant", .def = "auto",
                     .choices = "auto|cifar10|cifar100",
                     .help = "auto: cifar10 when data_batch_1.bin is there, "
                             "else cifar100"),
    DGM_PARAM_CHOICE("labels", .def = "fine", .choices = "fine|coarse",
                     .help = "CIFAR-100: the 100 fine or 20 coarse classes"),
    DGM_PARAM_CHOICE("scale", .def = "unit", .choices = "unit|symmetric",
                     .help = "pixel range: unit [0, 1] or symmetric [-1, 1]"),
    DGM_PARAM_INT_LIST(
        "classes", .def = "[]", DGM_GE(0), DGM_LE(99),
        .help = "keep only these labels in both splits ([] keeps all)"),
    DS_FRACTION_PARAMS,
    DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.2e18),
                  .help = "seed of the train_fraction and label_fraction "
                          "choices"),
    DGM_PARAM_INT("batch_size", .def = "128", DGM_GE(1), DGM_LE(1e9),
                  .help = "examples per batch (read by the host)"),
    DGM_PARAM_BOOL(
        "shuffle", .def = "true",
        .help = "shuffle the training set each epoch (read by the host)"),
    DGM_PARAM_END,
};

/* Read whole record files into one buffer (the five CIFAR-10 training
 * batches are one split); each file's size must be a whole number of
 * records. */
static int read_records(px_set *d, const dgm_config *cfg,
                        const char *const *names, int n_files, size_t record,
                        int sp)
{
    const char *dir = dgm_cfg_str(cfg, "path");
    char path[4096];
    size_t total = 0, sizes[CIFAR10_TRAIN_FILES];
    int rc;
    for (int i = 0; i < n_files; i++) {
        if ((rc = px_join(cfg, "path", dir, names[i], path, sizeof path)) < 0)
            return rc;
        FILE *f = fopen(path, "rb");
        long len = -1;
        if (f && fseek(f, 0, SEEK_END) == 0)
            len = ftell(f);
        if (f)
            fclose(f);
        if (len < 0)
            return dgm_cfg_error(cfg, "path", DGM_EIO, "%s: cannot read: %s",
                                 path, strerror(errno));
        if (len == 0 || (size_t)len % record != 0)
            return dgm_cfg_error(cfg, "path", DGM_EFORMAT,
                                 "%s: %ld bytes is not a whole number of "
                                 "%zu-byte records (truncated, or not a "
                                 "%s file)",
                                 path, len, record,
                                 record == CIFAR_PIXELS + 1 ? "CIFAR-10"
                                                            : "CIFAR-100");
        sizes[i] = (size_t)len;
        total += (size_t)len;
    }
    unsigned char *buf = malloc(total);
    if (!buf)
        return dgm_error(DGM_ENOMEM, "cifar: out of memory for %zu bytes",
                         total);
    d->owned[sp] = buf;
    size_t at = 0;
    for (int i = 0; i < n_files; i++) {
        px_join(cfg, "path", dir, names[i], path, sizeof path);
        FILE *f = fopen(path, "rb");
        bool ok = f && fread(buf + at, 1, sizes[i], f) == sizes[i];
        if (f)
            fclose(f);
        if (!ok)
            return dgm_cfg_error(cfg, "path", DGM_EIO,
                                 "%s: read failed (changed while reading?)",
                                 path);
        at += sizes[i];
    }
    px_split *s = &d->s[sp];
    s->base = buf;
    s->stride = record;
    s->x_off = record - CIFAR_PIXELS;
    s->total = (int64_t)(total / record);
    return 0;
}

/* Labels from byte `at` of each record; a value >= limit is refused with
 * the file's record number. */
static int take_labels(px_set *d, const dgm_config *cfg, int sp, size_t at,
                       int limit, const char *what)
{
    px_split *s = &d->s[sp];
    s->labels = malloc((size_t)s->total * sizeof *s->labels);
    if (!s->labels)
        return dgm_error(DGM_ENOMEM, "cifar: out of memory");
    for (int64_t i = 0; i < s->total; i++) {
        int v = s->base[(size_t)i * s->stride + at];
        if (v >= limit)
            return dgm_cfg_error(cfg, "path", DGM_EFORMAT,
                                 "%s record %lld: %s label %d outside "
                                 "[0, %d) (not a %s file?)",
                                 sp ? "test" : "training", (long long)i, what,
                                 v, limit,
                                 limit == 10 ? "CIFAR-10" : "CIFAR-100");
        s->labels[i] = v;
    }
    return 0;
}

static int ds_create(void **self, const dgm_config *cfg)
{
    px_set *d = px_new("cifar", cfg);
    if (!d)
        return DGM_ENOMEM;
    const char *variant = dgm_cfg_str(cfg, "variant");
    char probe[4096];
    int rc = px_join(cfg, "path", dgm_cfg_str(cfg, "path"), "data_batch_1.bin",
                     probe, sizeof probe);
    bool c10 = !strcmp(variant, "cifar10") ||
               (!strcmp(variant, "auto") && access(probe, F_OK) == 0);
    if (rc == 0 && c10) {
        static const char *const train[CIFAR10_TRAIN_FILES] = {
            "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
            "data_batch_4.bin", "data_batch_5.bin"};
        static const char *const test[1] = {"test_batch.bin"};
        size_t rec = 1 + CIFAR_PIXELS;
        rc = read_records(d, cfg, train, CIFAR10_TRAIN_FILES, rec,
                          DGM_SPLIT_TRAIN);
        if (rc == 0)
            rc = read_records(d, cfg, test, 1, rec, DGM_SPLIT_TEST);
        for (int sp = 0; sp < DGM_SPLIT_COUNT && rc == 0; sp++)
            rc = take_labels(d, cfg, sp, 0, 10, "class");
        d->n_classes = 10;
    } else if (rc == 0) {
        static const char *const train[1] = {"train.bin"};
        static const char *const test[1] = {"test.bin"};
        bool fine = !strcmp(dgm_cfg_str(cfg, "labels"), "fine");
        size_t rec = 2 + CIFAR_PIXELS;
        rc = read_records(d, cfg, train, 1, rec, DGM_SPLIT_TRAIN);
        if (rc == 0)
            rc = read_records(d, cfg, test, 1, rec, DGM_SPLIT_TEST);
        for (int sp = 0; sp < DGM_SPLIT_COUNT && rc == 0; sp++)
            rc = take_labels(d, cfg, sp, fine ? 1 : 0, fine ? 100 : 20,
                             fine ? "fine" : "coarse");
        d->n_classes = fine ? 100 : 20;
    }
    d->ndim = 3;
    d->dim[0] = 3;
    d->dim[1] = d->dim[2] = 32;
    return px_create_done(d, cfg, rc, self);
}

static const dgm_dataset_iface iface = {
    .create = ds_create, .info = px_info, .get = px_get, .destroy = px_destroy};

const dgm_plugin_desc px_cifar_desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_DATASET(&iface),
    .name = "cifar",
    .version = "1.0",
    .summary = "CIFAR-10 / CIFAR-100 binary version files (3x32x32, RGB)",
    .params = params,
};

DGM_PLUGIN_NAME(cifar);
