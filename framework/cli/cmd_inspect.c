/* cmd_inspect.c - `dgm inspect`: the tensors (dtype, shape, bytes, CRC32)
 * and metadata of a safetensors file; for a run directory also its step,
 * status and resolved config. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <zlib.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/io.h"

static const char help[] =
    "usage: dgm inspect FILE.safetensors|RUNDIR\n"
    "\n"
    "List every tensor of a safetensors file, sorted by name: dtype, shape,\n"
    "bytes and the CRC-32 (zlib's crc32, as Python's zlib.crc32) of its\n"
    "raw little-endian bytes; then the __metadata__ entries. For a run\n"
    "directory, first its status and step (summary.json, else the\n"
    "checkpoint's dgm.step), then its checkpoints/last.safetensors, then\n"
    "its resolved config.yaml.\n"
    "\n"
    "exit status: 0 ok, 1 unreadable or malformed file, 2 usage error\n";

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* CRC-32 of each tensor's bytes, read in one pass over the data buffer. */
static int list_tensors(const char *path, const dgm_st_file *f)
{
    FILE *fp = fopen(path, "rb");
    unsigned char b8[8];
    if (!fp || fread(b8, 1, 8, fp) != 8) {
        if (fp)
            fclose(fp);
        dgm_error(DGM_EIO, "%s: cannot read", path);
        return DGM_EIO;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b8[i];
    int n = dgm_st_count(f);
    uint64_t total = 0;
    unsigned char *buf = malloc(1 << 16);
    if (!buf) {
        fclose(fp);
        return dgm_error(DGM_ENOMEM, "inspect: out of memory");
    }
    printf("%-40s %-5s %-18s %12s %s\n", "tensor", "dtype", "shape", "bytes",
           "crc32");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        dgm_st_entry e;
        dgm_st_entry_at(f, i, &e);
        uLong crc = crc32(0L, Z_NULL, 0);
        uint64_t left = e.end - e.begin;
        if (fseek(fp, (long)(8 + hlen + e.begin), SEEK_SET) != 0)
            rc = dgm_error(DGM_EIO, "%s: cannot seek to '%s'", path, e.name);
        while (rc == 0 && left > 0) {
            size_t k = left < (1 << 16) ? (size_t)left : (1 << 16);
            if (fread(buf, 1, k, fp) != k)
                rc = dgm_error(DGM_EIO, "%s: short read in '%s'", path, e.name);
            else
                crc = crc32(crc, buf, (uInt)k);
            left -= k;
        }
        char sh[128] = "[]";
        if (e.ndim > 0)
            dgm_shape_str(e.ndim, e.shape, sh, sizeof sh);
        printf("%-40s %-5s %-18s %12llu %08lx\n", e.name, e.dtype, sh,
               (unsigned long long)(e.end - e.begin), (unsigned long)crc);
        total += e.end - e.begin;
    }
    free(buf);
    fclose(fp);
    if (rc == 0)
        printf("%d tensors, %llu bytes of data\n", n,
               (unsigned long long)total);
    return rc;
}

static int inspect_file(const char *path)
{
    dgm_st_file *f;
    int rc = dgm_st_open(&f, path);
    if (rc < 0)
        return rc;
    printf("file: %s\n", path);
    rc = list_tensors(path, f);
    if (rc == 0 && dgm_st_meta_count(f) > 0) {
        printf("metadata:\n");
        for (int i = 0; i < dgm_st_meta_count(f); i++) {
            const char *k = dgm_st_meta_key_at(f, i);
            printf("  %s: %s\n", k, dgm_st_meta(f, k));
        }
    }
    dgm_st_close(f);
    return rc;
}

static void print_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        printf("  (no %s)\n", path);
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, fp))
        printf("  %s", line);
    fclose(fp);
}

static int inspect_run(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/summary.json", dir);
    json_error_t jerr;
    json_t *s = json_load_file(p, 0, &jerr);
    printf("run: %s\n", dir);
    if (s) {
        json_t *st = json_object_get(s, "status");
        json_t *steps = json_object_get(s, "steps");
        json_t *tot = json_object_get(s, "total_steps");
        printf("status: %s\nstep: %lld of %lld\n",
               json_is_string(st) ? json_string_value(st) : "?",
               (long long)json_integer_value(steps),
               (long long)json_integer_value(tot));
        json_decref(s);
    } else {
        printf("status: running or interrupted (no summary.json)\n");
    }
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", dir);
    dgm_st_file *f;
    if (dgm_st_open(&f, p) == 0) {
        const char *step = dgm_st_meta(f, "dgm.step");
        printf("checkpoint step: %s\n", step ? step : "?");
        dgm_st_close(f);
        int rc = inspect_file(p);
        if (rc < 0)
            return rc;
    } else {
        printf("(no readable checkpoint: %s)\n", dgm_last_error());
    }
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    printf("config (%s):\n", p);
    print_file(p);
    return 0;
}

int dgm__cmd_inspect(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "dgm inspect: want one FILE.safetensors or RUNDIR\n"
                        "(see 'dgm inspect --help')\n");
        return DGM_EXIT_USAGE;
    }
    int rc = is_dir(argv[1]) ? inspect_run(argv[1]) : inspect_file(argv[1]);
    if (rc < 0) {
        dgm__cli_error("inspect", rc);
        return DGM_EXIT_FAILED;
    }
    return DGM_EXIT_OK;
}
