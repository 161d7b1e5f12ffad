/* fuzz_common.c - scratch folder, registry, config comparison and
 * property failures shared by the fuzz harnesses. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static char dir[1024];

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st, (void)flag;
    if (ftw->level > 0 || strcmp(p, dir) != 0)
        remove(p);
    return 0;
}

void fz_clear(void)
{
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static pid_t owner;

static void cleanup(void)
{
    if (dir[0] && getpid() == owner) { /* not from a forked child */
        fz_clear();
        rmdir(dir);
    }
}

const char *fz_dir(void)
{
    if (dir[0])
        return dir;
    const char *t = getenv("DGM_TEST_TMP");
    if (!t || !*t)
        t = getenv("TMPDIR");
    if (!t || !*t)
        t = "/tmp";
    mkdir(t, 0755);
    snprintf(dir, sizeof dir, "%s/dgm-fuzz-XXXXXX", t);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz: cannot make a scratch folder in %s: %s\n", t,
                strerror(errno));
        abort();
    }
    owner = getpid();
    atexit(cleanup);
    return dir;
}

void fz_write(const char *name, const void *data, size_t n, char *path,
              size_t cap)
{
    snprintf(path, cap, "%s/%s", fz_dir(), name);
    for (char *s = path + strlen(dir) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(path, 0755);
            *s = '/';
        }
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

bool fz_rel_inside(int depth, const char *rel)
{
    if (!rel || rel[0] == '/')
        return false;
    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && !strncmp(p, "..", 2)) {
            if (--depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && p[0] == '.'))
            depth++;
        p += n + (p[n] == '/');
    }
    return true;
}

dgm_registry *fz_registry(void)
{
    static dgm_registry *reg;
    if (reg)
        return reg;
    if (dgm_registry_new(&reg) < 0 || dgm_registry_add_default(reg) < 0 ||
        dgm_registry_add_dir(reg, DGM_FUZZ_PLUGIN_DIR) < 0 ||
        dgm_registry_scan(reg) < 0) {
        fprintf(stderr, "fuzz: no plugin registry: %s\n", dgm_last_error());
        abort();
    }
    return reg;
}

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: property broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nfuzz: last error: %s\n", dgm_last_error());
    fflush(stderr);
    abort();
}

void fz_expect_error(int rc, const char *place)
{
    const char *msg = dgm_last_error();
    if (rc >= 0)
        fz_fail("expected a refusal, got %d", rc);
    if (!msg || !*msg)
        fz_fail("refused with %d (%s) but no message", rc, dgm_strerror(rc));
    if (place && !strstr(msg, place))
        fz_fail("the message does not name %s", place);
    if (getenv("DGM_FUZZ_VERBOSE")) /* why a seed is refused */
        fprintf(stderr, "refused (%s): %s\n", dgm_strerror(rc), msg);
}

/* ---- config trees ------------------------------------------------------- */

enum { T_NULL, T_BOOL, T_INT, T_FLOAT, T_STR, T_SEQ, T_MAP };

static int type_of(const dgm_config *n)
{
    int64_t i;
    double d;
    bool b;
    int t;
    switch (dgm_cfg_kind_of(n)) {
    case DGM_CFG_NULL:
        return T_NULL;
    case DGM_CFG_SEQ:
        return T_SEQ;
    case DGM_CFG_MAP:
        return T_MAP;
    default:
        t = dgm_cfg_to_int(n, &i) == 0     ? T_INT
            : dgm_cfg_to_float(n, &d) == 0 ? T_FLOAT
            : dgm_cfg_to_bool(n, &b) == 0  ? T_BOOL
                                           : T_STR;
        dgm_error_clear();
        return t;
    }
}

bool fz_cfg_same(const dgm_config *a, const dgm_config *b, const char **where)
{
    int ta = type_of(a), tb = type_of(b);
    *where = dgm_cfg_path(a);
    if (ta != tb)
        return false;
    if (ta == T_NULL)
        return true;
    if (ta != T_SEQ && ta != T_MAP)
        return !strcmp(dgm_cfg_text(a), dgm_cfg_text(b));
    if (dgm_cfg_len(a) != dgm_cfg_len(b))
        return false;
    for (int i = 0; i < dgm_cfg_len(a); i++) {
        if (ta == T_MAP && strcmp(dgm_cfg_key_at(a, i), dgm_cfg_key_at(b, i)))
            return false;
        if (!fz_cfg_same(dgm_cfg_at(a, i), dgm_cfg_at(b, i), where))
            return false;
    }
    return true;
}

void fz_cfg_round_trip(const dgm_config *c, const char *what)
{
    char *text = dgm_config_to_string(c);
    if (!text)
        fz_fail("%s: the writer refused the tree", what);
    dgm_config *back;
    int rc = dgm_config_parse(&back, text, "<written>");
    if (rc < 0) {
        fprintf(stderr, "---- written\n%s----\n", text);
        fz_fail("%s: what the writer wrote does not read back", what);
    }
    const char *where = "";
    if (!fz_cfg_same(c, back, &where)) {
        fprintf(stderr, "---- written\n%s----\n", text);
        fz_fail("%s: read back differs at '%s'", what, where);
    }
    char *again = dgm_config_to_string(back);
    if (!again || strcmp(text, again)) {
        fprintf(stderr, "---- first\n%s---- second\n%s----\n", text,
                again ? again : "(refused)");
        fz_fail("%s: writing what was read back gives other text", what);
    }
    free(again);
    free(text);
    dgm_config_free(back);
}
