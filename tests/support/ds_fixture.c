/* ds_fixture.c - see ds_fixture.h. */
#include "ds_fixture.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char ds_dir[PATH_MAX / 2];
static void *ds_so, *idx_so;
static const dgm_plugin_desc *ds_cur;
static dgm_config *ds_cfg;

void ds_setup_tag(const char *tag)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    char base[PATH_MAX / 4];
    snprintf(base, sizeof base, "%s", tmp ? tmp : "/tmp");
    mkdir(base, 0755);
    snprintf(ds_dir, sizeof ds_dir, "%s/%s-%ld", base, tag, (long)getpid());
    ck_assert_msg(mkdir(ds_dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s",
                  ds_dir, strerror(errno));
    ds_so = dlopen(DGM_PLUGIN_DIR "/datasets_pixels.so", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(ds_so, "dlopen: %s", dlerror());
    idx_so = dlopen(DGM_PLUGIN_DIR "/datasets_idx.so", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(idx_so, "dlopen: %s", dlerror());
}

void ds_teardown(void)
{
    char cmd[2 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", ds_dir,
             ds_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", ds_dir);
    dgm_config_free(ds_cfg);
    ds_cfg = NULL;
    dlclose(ds_so);
    dlclose(idx_so);
}

const char *ds_path(const char *name)
{
    static char buf[4][PATH_MAX];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", ds_dir, name);
    return buf[k];
}

void ds_write(const char *name, const void *p, size_t n)
{
    const char *path = ds_path(name);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    ck_assert_int_eq(system(cmd), 0);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

const dgm_plugin_desc *ds_desc(const char *name)
{
    void *const so[2] = {ds_so, idx_so};
    for (int k = 0; k < 2; k++) {
        dgm_plugin_query_fn q =
            (dgm_plugin_query_fn)dlsym(so[k], DGM_PLUGIN_QUERY_SYMBOL);
        ck_assert_ptr_nonnull(q);
        for (uint32_t i = 0; q(i); i++)
            if (!strcmp(q(i)->name, name))
                return q(i);
    }
    ck_abort_msg("no plugin %s in datasets_pixels.so or datasets_idx.so", name);
    return NULL;
}

int ds_create(const char *name, const char *yaml, void **self)
{
    ds_cur = ds_desc(name);
    dgm_config_free(ds_cfg);
    ds_cfg = NULL;
    ck_assert_msg(dgm_config_parse(&ds_cfg, yaml, "test.yaml") == 0, "%s",
                  dgm_last_error());
    int rc = dgm_config_validate(ds_cfg, ds_cur->params, name, NULL);
    ck_assert_msg(rc == 0, "validate: %s", dgm_last_error());
    *self = NULL;
    rc = ds_cur->iface.dataset->create(self, ds_cfg);
    if (rc == 0)
        ck_assert_ptr_nonnull(*self);
    return rc;
}

void ds_destroy(void *self)
{
    ds_cur->iface.dataset->destroy(self);
}

dgm_data_info ds_info(void *self)
{
    dgm_data_info in;
    ck_assert_int_eq(ds_cur->iface.dataset->info(self, &in), 0);
    return in;
}

ds_batch ds_fetch(void *self, dgm_split split, const int64_t *idx, int64_t n)
{
    dgm_data_info in = ds_info(self);
    int64_t xs[DGM_MAX_DIMS] = {n};
    for (int i = 0; i < in.x_shape.ndim; i++)
        xs[1 + i] = in.x_shape.dim[i];
    ds_batch b = {dgm_tensor_new(DGM_F32, 1 + in.x_shape.ndim, xs),
                  in.has_y ? dgm_tensor_new(DGM_I64, 1, xs) : NULL,
                  dgm_tensor_new(DGM_F32, 1, xs)};
    dgm_batch bt = {n, b.x, b.y, b.m};
    int rc = ds_cur->iface.dataset->get(self, split, idx, &bt, NULL);
    ck_assert_msg(rc == 0, "get: %s", dgm_last_error());
    return b;
}

void ds_batch_free(ds_batch b)
{
    dgm_tensor_free(b.x);
    dgm_tensor_free(b.y);
    dgm_tensor_free(b.m);
}

unsigned char *ds_npy_bytes(int major, const char *dict, const void *data,
                            size_t n, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, d = strlen(dict);
    size_t hlen = ((pre + d + 1 + 63) / 64) * 64 - pre;
    unsigned char *b = malloc(pre + hlen + n + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, d);
    b[pre + hlen - 1] = '\n';
    if (n)
        memcpy(b + pre + hlen, data, n);
    *len = pre + hlen + n;
    return b;
}

void ds_write_npy(const char *name, int major, const char *dict,
                  const void *data, size_t n)
{
    size_t len;
    unsigned char *b = ds_npy_bytes(major, dict, data, n, &len);
    ds_write(name, b, len);
    free(b);
}
