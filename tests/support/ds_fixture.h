/* ds_fixture.h - test support for the dataset suites of the pixels module
 * (cifar, array, images, and idx beside them): a scratch folder, files
 * written into it, the plugin created from YAML and batches fetched from
 * it.
 *
 *     ds_setup("cifar");                       // in a checked fixture
 *     ds_write("data_batch_1.bin", bytes, n);
 *     void *self;
 *     ck_assert_int_eq(ds_create("cifar", "variant: cifar10\n", &self), 0);
 *     ds_batch b = ds_fetch(self, DGM_SPLIT_TRAIN, idx, 4);
 *     ds_batch_free(b);
 *     ds_destroy(self);
 */
#ifndef DGM_TEST_DS_FIXTURE_H
#define DGM_TEST_DS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "dgm/dgm.h"

/* The scratch folder of this test (made by ds_setup). */
extern char ds_dir[];

/* Make <DGM_TEST_TMP>/<tag>-<pid> and load the pixels and idx modules. */
void ds_setup_tag(const char *tag);
/* Remove the scratch folder, unload the module. */
void ds_teardown(void);
/* <scratch>/<name> (one of 4 rotating buffers). */
const char *ds_path(const char *name);
/* Write n bytes to <scratch>/<name>, making its parent folders. */
void ds_write(const char *name, const void *p, size_t n);
/* The descriptor of plugin `name` in either module. */
const dgm_plugin_desc *ds_desc(const char *name);
/* Create plugin `name` from YAML `yaml` (validated against its schema;
 * a validation failure fails the test); create's code. The config lives
 * until ds_destroy. */
int ds_create(const char *name, const char *yaml, void **self);
void ds_destroy(void *self);
dgm_data_info ds_info(void *self);

typedef struct ds_batch {
    dgm_tensor *x, *y; /* y NULL for unlabelled data */
    dgm_tensor *m;     /* y_mask [n] */
} ds_batch;
/* Examples idx[0..n) of split (x shaped from info); a failure fails. */
ds_batch ds_fetch(void *self, dgm_split split, const int64_t *idx, int64_t n);
void ds_batch_free(ds_batch b);

/* A .npy file (format `major`.0) with header dict `dict` and n data bytes,
 * the header padded with spaces and a newline to a multiple of 64 as
 * NumPy does; its size in *len, malloc'ed. */
unsigned char *ds_npy_bytes(int major, const char *dict, const void *data,
                            size_t n, size_t *len);
/* That file written to <scratch>/<name>. */
void ds_write_npy(const char *name, int major, const char *dict,
                  const void *data, size_t n);

#endif
