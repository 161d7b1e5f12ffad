/* ds_fixture.h - test support for the dataset suites of the pixels module
 * (cifar, array, images): a scratch folder, files written into it, the
 * plugin created from YAML and batches fetched from it.
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

/* Make <DGM_TEST_TMP>/<tag>-<pid> and load the pixels module. */
void ds_setup_tag(const char *tag);
/* Remove the scratch folder, unload the module. */
void ds_teardown(void);
/* <scratch>/<name> (one of 4 rotating buffers). */
const char *ds_path(const char *name);
/* Write n bytes to <scratch>/<name>, making its parent folders. */
void ds_write(const char *name, const void *p, size_t n);
/* The descriptor of plugin `name` in the module. */
const dgm_plugin_desc *ds_desc(const char *name);
/* Create plugin `name` from YAML `yaml` (validated against its schema;
 * a validation failure fails the test); create's code. The config lives
 * until ds_destroy. */
int ds_create(const char *name, const char *yaml, void **self);
void ds_destroy(void *self);
dgm_data_info ds_info(void *self);

typedef struct ds_batch {
    dgm_tensor *x, *y;
} ds_batch;
/* Examples idx[0..n) of split (x shaped from info); a failure fails. */
ds_batch ds_fetch(void *self, dgm_split split, const int64_t *idx, int64_t n);
void ds_batch_free(ds_batch b);

#endif
