/* bench_images.c - decoding throughput of 64 x 64 PNG and JPEG images
 * (dgm_image_load, one thread), the `images` data set's first open
 * (decode in parallel, resize, write the cache) and a cached open, and
 * one epoch of batches from the cache. Writes its images under a scratch
 * folder, removed at the end.
 *
 *     build/bin/bench_images [N] [PLUGIN_DIR]   (N 2000, build/plugins) */
#include <dlfcn.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>

#include "dgm/dgm.h"

enum { S = 64 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A photo-like pattern: gradients plus noise, so neither codec has it easy. */
static void pattern(unsigned char *px, int k)
{
    unsigned s = 12345u + (unsigned)k * 7919u;
    for (int i = 0; i < S * S * 3; i++) {
        s = s * 1103515245u + 12345u;
        int y = i / (S * 3), x = (i / 3) % S, c = i % 3;
        int v = (x * (c + 1) * 2 + y * 3 + k) % 200 + (int)((s >> 16) % 56);
        px[i] = (unsigned char)v;
    }
}

static void write_png(const char *path, const unsigned char *px)
{
    FILE *f = fopen(path, "wb");
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, 0, 0, 0);
    png_infop info = png_create_info_struct(p);
    if (!f || !p || !info || setjmp(png_jmpbuf(p))) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
    png_init_io(p, f);
    png_set_IHDR(p, info, S, S, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < S; y++)
        png_write_row(p, px + y * S * 3);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    fclose(f);
}

static void write_jpeg(const char *path, const unsigned char *px)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = c.image_height = S;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < S) {
        JSAMPROW r = (JSAMPROW)(px + c.next_scanline * S * 3);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static const dgm_dataset_iface *ds;
static const dgm_param_spec *params;

static void *open_ds(const char *yaml, dgm_config **cfg)
{
    if (dgm_config_parse(cfg, yaml, "bench.yaml") < 0 ||
        dgm_config_validate(*cfg, params, "images", NULL) < 0) {
        fprintf(stderr, "%s\n", dgm_last_error());
        exit(1);
    }
    void *self;
    if (ds->create(&self, *cfg) < 0) {
        fprintf(stderr, "images: %s\n", dgm_last_error());
        exit(1);
    }
    return self;
}

/* One epoch of batches of 64 from the training split, seconds. */
static double epoch(void *self)
{
    dgm_data_info in;
    ds->info(self, &in);
    int64_t xs[4] = {64, 3, S, S}, idx[64];
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, xs);
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, xs);
    double t = now();
    for (int64_t i = 0; i + 64 <= in.size[DGM_SPLIT_TRAIN]; i += 64) {
        for (int k = 0; k < 64; k++)
            idx[k] = (i + k * 37) % in.size[DGM_SPLIT_TRAIN];
        dgm_batch b = {64, x, y, NULL};
        if (ds->get(self, DGM_SPLIT_TRAIN, idx, &b, NULL) < 0) {
            fprintf(stderr, "%s\n", dgm_last_error());
            exit(1);
        }
    }
    t = now() - t;
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    return t;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    const char *pdir = argc > 2 ? argv[2] : "build/plugins";
    char so[4096], dir[256], path[512];
    snprintf(so, sizeof so, "%s/datasets_pixels.so", pdir);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    dgm_plugin_query_fn q = (dgm_plugin_query_fn)dlsym(h, "dgm_plugin_query");
    for (uint32_t i = 0; q && q(i); i++)
        if (!strcmp(q(i)->name, "images")) {
            ds = q(i)->iface.dataset;
            params = q(i)->params;
        }
    if (!ds)
        return 1;
    snprintf(dir, sizeof dir, "/tmp/bench_images.%ld", (long)getpid());
    unsigned char px[S * S * 3];
    const char *fmt[2] = {"png", "jpg"};
    for (int f = 0; f < 2; f++)
        for (int c = 0; c < 2; c++) {
            snprintf(path, sizeof path, "%s/%s/c%d", dir, fmt[f], c);
            dgm_mkdirs(path);
        }
    for (int k = 0; k < n; k++) {
        pattern(px, k);
        snprintf(path, sizeof path, "%s/png/c%d/%05d.png", dir, k % 2, k);
        write_png(path, px);
        snprintf(path, sizeof path, "%s/jpg/c%d/%05d.jpg", dir, k % 2, k);
        write_jpeg(path, px);
    }
    printf("%d images of %dx%d RGB per format, %ld CPUs online\n", n, S, S,
           sysconf(_SC_NPROCESSORS_ONLN));
    for (int f = 0; f < 2; f++) {
        double t = now();
        for (int k = 0; k < n; k++) {
            dgm_image img;
            snprintf(path, sizeof path, "%s/%s/c%d/%05d.%s", dir, fmt[f], k % 2,
                     k, fmt[f]);
            if (dgm_image_load(path, 3, &img) < 0) {
                fprintf(stderr, "%s\n", dgm_last_error());
                return 1;
            }
            dgm_image_free(&img);
        }
        t = now() - t;
        printf("%s decode, 1 thread: %.0f images/s\n", fmt[f], n / t);
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "path: %s/%s\nsize: %d\ntest_fraction: 0\ncache: %s/%s.u8\n",
                 dir, fmt[f], S, dir, fmt[f]);
        dgm_config *cfg;
        t = now();
        void *self = open_ds(yaml, &cfg);
        t = now() - t;
        printf("%s first open (decode, resize, write cache; OpenMP): %.2f s, "
               "%.0f images/s\n",
               fmt[f], t, n / t);
        ds->destroy(self);
        dgm_config_free(cfg);
        t = now();
        self = open_ds(yaml, &cfg);
        t = now() - t;
        double e = epoch(self);
        printf("%s cached open: %.3f s; one epoch of batches of 64 from the "
               "cache: %.3f s (%.0f images/s)\n",
               fmt[f], t, e, (n / 64 * 64) / e);
        ds->destroy(self);
        dgm_config_free(cfg);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    dlclose(h);
    return 0;
}
