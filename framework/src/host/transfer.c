/* transfer.c - `init:` loads parameters and buffers by name from
 * safetensors files (dgm checkpoints or any state_dict) with rename rules
 * and a report of what was loaded, left and unused; `freeze:` marks
 * parameters frozen. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "transfer.h"

static const dgm_param_spec source_schema[] = {
    DGM_PARAM_STRING("path", .help =
                                 "a .safetensors file, or a run directory (its "
                                 "checkpoints/last.safetensors)"),
    DGM_PARAM_ANY("rename", .def = "[]",
                  .help = "list of {FILE_PATTERN: MODEL_PATTERN}: '*' globs, "
                          "prefixes ending in "
                          "'.', or exact names; the first match wins"),
    DGM_PARAM_ANY(
        "params", .def = "'*'",
        .help = "globs of model names this source may set (after renaming)"),
    DGM_PARAM_BOOL(
        "skip_mismatch", .def = "false",
        .help = "skip tensors whose shape or dtype differs instead of failing"),
    DGM_PARAM_BOOL(
        "strict", .def = "false",
        .help =
            "fail unless every model tensor is set and every file tensor used"),
    DGM_PARAM_END,
};

/* ---- globs and renames ----------------------------------------------- */

bool dgm__globs_in(const char *text, const char *name)
{
    if (!text)
        return true;
    /* each glob copied alone, so a list of any length is read whole */
    char small[256], *tok = small;
    size_t cap = sizeof small;
    bool hit = false;
    for (const char *p = text; *p && !hit;) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, " \t");
        if (n == 0)
            break;
        if (n >= cap) {
            char *big = realloc(tok == small ? NULL : tok, n + 1);
            if (!big)
                break; /* out of memory: no match */
            tok = big, cap = n + 1;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        hit = fnmatch(tok, name, 0) == 0;
        p += n;
    }
    if (tok != small)
        free(tok);
    return hit;
}

bool dgm__globs_match(const dgm_config *globs, const char *name)
{
    if (!globs || dgm_cfg_kind_of(globs) == DGM_CFG_NULL)
        return true;
    if (dgm_cfg_kind_of(globs) == DGM_CFG_SCALAR)
        return dgm__globs_in(dgm_cfg_text(globs), name);
    for (int i = 0; i < dgm_cfg_len(globs); i++) {
        const char *t = dgm_cfg_text(dgm_cfg_at(globs, i));
        if (t && dgm__globs_in(t, name))
            return true;
    }
    return false;
}

static int check_globs(const dgm_config *node, const char *what)
{
    if (dgm_cfg_kind_of(node) == DGM_CFG_SCALAR)
        return 0;
    if (dgm_cfg_kind_of(node) == DGM_CFG_SEQ) {
        for (int i = 0; i < dgm_cfg_len(node); i++)
            if (dgm_cfg_kind_of(dgm_cfg_at(node, i)) != DGM_CFG_SCALAR)
                return dgm_cfg_error(dgm_cfg_at(node, i), NULL, DGM_ETYPE,
                                     "%s: a glob (string) expected", what);
        return 0;
    }
    return dgm_cfg_error(node, NULL, DGM_ETYPE,
                         "%s: a glob or a list of globs expected", what);
}

/* Does `name` match rule pattern `from`? Writes the mapped name. */
static bool rename_one(const char *from, const char *to, const char *name,
                       char *out, size_t n)
{
    const char *star = strchr(from, '*');
    size_t ln = strlen(name);
    if (star) {
        size_t pre = (size_t)(star - from), suf = strlen(star + 1);
        if (ln < pre + suf || strncmp(name, from, pre) != 0 ||
            strcmp(name + ln - suf, star + 1) != 0)
            return false;
        const char *tstar = strchr(to, '*');
        if (!tstar) {
            snprintf(out, n, "%s", to);
            return true;
        }
        snprintf(out, n, "%.*s%.*s%s", (int)(tstar - to), to,
                 (int)(ln - pre - suf), name + pre, tstar + 1);
        return true;
    }
    size_t lf = strlen(from);
    if (lf && from[lf - 1] == '.') {
        if (strncmp(name, from, lf) != 0)
            return false;
        snprintf(out, n, "%s%s", to, name + lf);
        return true;
    }
    if (strcmp(name, from) != 0)
        return false;
    snprintf(out, n, "%s", to);
    return true;
}

void dgm__rename(const dgm_config *rules, const char *name, char *out, size_t n)
{
    for (int i = 0; rules && i < dgm_cfg_len(rules); i++) {
        const dgm_config *r = dgm_cfg_at(rules, i);
        for (int k = 0; k < dgm_cfg_len(r); k++)
            if (rename_one(dgm_cfg_key_at(r, k), dgm_cfg_text(dgm_cfg_at(r, k)),
                           name, out, n))
                return;
    }
    snprintf(out, n, "%s", name);
}

/* ---- validation ------------------------------------------------------- */

int dgm__init_validate(dgm_config *init)
{
    if (dgm_cfg_kind_of(init) == DGM_CFG_NULL)
        return 0;
    if (dgm_cfg_kind_of(init) != DGM_CFG_SEQ)
        return dgm_cfg_error(init, NULL, DGM_ETYPE,
                             "`init:` is a list of {path, rename, params, "
                             "skip_mismatch, strict}");
    for (int i = 0; i < dgm_cfg_len(init); i++) {
        dgm_config *s = (dgm_config *)dgm_cfg_at(init, i);
        if (dgm_cfg_kind_of(s) != DGM_CFG_MAP)
            return dgm_cfg_error(s, NULL, DGM_ETYPE,
                                 "an init source is a map with `path:`");
        int rc = dgm_config_validate(s, source_schema, "init", NULL);
        if (rc < 0)
            return rc;
        if ((rc = check_globs(dgm_cfg_get(s, "params"), "params")) < 0)
            return rc;
        const dgm_config *rn = dgm_cfg_get(s, "rename");
        if (dgm_cfg_kind_of(rn) == DGM_CFG_MAP)
            return dgm_cfg_error(rn, NULL, DGM_ETYPE,
                                 "rename is a list of one-key maps, "
                                 "e.g. [{\"enc.*\": \"encoder.*\"}], so "
                                 "that the order of the rules is explicit");
        if (dgm_cfg_kind_of(rn) != DGM_CFG_SEQ)
            return dgm_cfg_error(rn, NULL, DGM_ETYPE,
                                 "rename is a list of {FROM: TO} maps");
        for (int k = 0; k < dgm_cfg_len(rn); k++) {
            const dgm_config *r = dgm_cfg_at(rn, k);
            if (dgm_cfg_kind_of(r) != DGM_CFG_MAP)
                return dgm_cfg_error(r, NULL, DGM_ETYPE,
                                     "a rename rule is a map {FROM: TO}");
            for (int j = 0; j < dgm_cfg_len(r); j++) {
                const char *from = dgm_cfg_key_at(r, j);
                const char *to = dgm_cfg_text(dgm_cfg_at(r, j));
                if (!to)
                    return dgm_cfg_error(dgm_cfg_at(r, j), NULL, DGM_ETYPE,
                                         "a rename target is a string");
                const char *s1 = strchr(from, '*'), *s2 = strchr(to, '*');
                if ((s1 && strchr(s1 + 1, '*')) || (s2 && strchr(s2 + 1, '*')))
                    return dgm_cfg_error(dgm_cfg_at(r, j), NULL, DGM_EINVAL,
                                         "rename '%s' -> '%s': at most one "
                                         "'*' on each side",
                                         from, to);
                if (s2 && !s1)
                    return dgm_cfg_error(dgm_cfg_at(r, j), NULL, DGM_EINVAL,
                                         "rename '%s' -> '%s': the target "
                                         "has a '*' the pattern lacks",
                                         from, to);
            }
        }
    }
    return 0;
}

int dgm__freeze_validate(dgm_config *freeze)
{
    if (dgm_cfg_kind_of(freeze) == DGM_CFG_NULL)
        return 0;
    return check_globs(freeze, "freeze");
}

/* ---- loading ----------------------------------------------------------- */

/* One planned copy: model tensor <- file tensor. */
typedef struct plan {
    dgm_param *p;
    int src;   /* index of the source */
    int entry; /* tensor index in the file */
} plan;

typedef struct source {
    char path[4096];
    dgm_st_file *f;
    uint64_t data_start; /* 8 + header length: where the buffer starts */
    bool dgm_ckpt;
} source;

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int open_source(source *s, const dgm_config *node)
{
    const char *p = dgm_cfg_str(node, "path");
    if (is_dir(p))
        snprintf(s->path, sizeof s->path, "%s/checkpoints/last.safetensors", p);
    else
        snprintf(s->path, sizeof s->path, "%s", p);
    int rc = dgm_st_open(&s->f, s->path);
    if (rc < 0)
        return dgm_cfg_error(node, "path", rc, "%s", dgm_last_error());
    FILE *fp = fopen(s->path, "rb");
    unsigned char b[8];
    if (!fp || fread(b, 1, 8, fp) != 8) {
        if (fp)
            fclose(fp);
        dgm_st_close(s->f);
        s->f = NULL;
        return dgm_cfg_error(node, "path", DGM_EIO, "cannot read '%s'",
                             s->path);
    }
    fclose(fp);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    s->data_start = 8 + n;
    s->dgm_ckpt = dgm_st_meta(s->f, "dgm.format_version") != NULL;
    return 0;
}

/* Tensors of a dgm checkpoint that are not model state. */
static bool run_state_name(const char *n)
{
    return !strncmp(n, "optim.", 6) || !strncmp(n, "rng.", 4) ||
           !strncmp(n, "data.", 5);
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f,
             man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            bits = sign | exp << 23 | man << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp - 15 + 127) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Can a file dtype be converted to the model's? */
static bool convertible(const char *fd, dgm_dtype md)
{
    const char *mn = dgm_st_dtype_name(md);
    if (mn && !strcmp(fd, mn))
        return true;
    if (md == DGM_F32)
        return !strcmp(fd, "F64") || !strcmp(fd, "F16") || !strcmp(fd, "BF16");
    return false;
}

/* Copy entry e of s into dst (shapes checked), converting F64, F16 and
 * BF16 to F32. */
static int copy_entry(const source *s, int e, dgm_tensor *dst)
{
    dgm_st_entry en;
    int rc = dgm_st_entry_at(s->f, e, &en);
    if (rc < 0)
        return rc;
    if (!strcmp(en.dtype, "F16") || !strcmp(en.dtype, "BF16")) {
        int64_t n = dgm_tensor_numel(dst);
        uint16_t *raw = malloc((size_t)(n ? n : 1) * 2);
        if (!raw)
            return dgm_error(DGM_ENOMEM, "init: out of memory");
        FILE *fp = fopen(s->path, "rb");
        bool ok = fp &&
                  fseek(fp, (long)(s->data_start + en.begin), SEEK_SET) == 0 &&
                  fread(raw, 2, (size_t)n, fp) == (size_t)n;
        if (fp)
            fclose(fp);
        if (!ok) {
            free(raw);
            return dgm_error(DGM_EIO, "init: %s: cannot read tensor '%s'",
                             s->path, en.name);
        }
        float *d = dgm_tensor_f32(dst);
        bool bf = en.dtype[0] == 'B';
        for (int64_t i = 0; i < n; i++) {
            /* the file is little-endian, as is every host dgm runs on */
            uint16_t h = raw[i];
            if (bf) {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&d[i], &bits, 4);
            } else {
                d[i] = half_to_float(h);
            }
        }
        free(raw);
        return 0;
    }
    dgm_tensor *v;
    if ((rc = dgm_st_get(s->f, en.name, &v)) < 0)
        return rc;
    if (v->dtype == dst->dtype)
        return dgm_tensor_copy(dst, v);
    int64_t n = dgm_tensor_numel(dst);
    for (int64_t i = 0; i < n; i++)
        dgm_tensor_set(dst, i, dgm_tensor_get(v, i));
    return 0;
}

static const char *shape_of(const dgm_st_entry *en, char *buf, size_t n)
{
    return dgm_shape_str(en->ndim, en->shape, buf, n);
}

static bool same_shape(const dgm_st_entry *en, const dgm_tensor *t)
{
    if (en->ndim != t->ndim)
        return false;
    for (int i = 0; i < en->ndim; i++)
        if (en->shape[i] != t->shape[i])
            return false;
    return true;
}

static int plan_source(dgm_params *ps, source *s, int si,
                       const dgm_config *node, plan *pl, int *n_plan, FILE *rep)
{
    const dgm_config *rules = dgm_cfg_get(node, "rename");
    const dgm_config *globs = dgm_cfg_get(node, "params");
    bool skip = dgm_cfg_bool(node, "skip_mismatch");
    bool strict = dgm_cfg_bool(node, "strict");
    int nt = dgm_st_count(s->f), loaded = 0, unused = 0, skipped = 0,
        ignored = 0;
    /* Unused entries are listed after the loaded ones. */
    char *unused_s = NULL;
    size_t unused_len = 0;
    FILE *unused_txt = open_memstream(&unused_s, &unused_len);
    if (!unused_txt)
        return dgm_error(DGM_ENOMEM, "init: out of memory");
    fprintf(rep, "init: from %s (%d tensors%s)\n", s->path, nt,
            s->dgm_ckpt ? ", a dgm checkpoint" : "");
    for (int i = 0; i < nt; i++) {
        dgm_st_entry en;
        dgm_st_entry_at(s->f, i, &en);
        char sh[96], mn[512], msh[96];
        if (s->dgm_ckpt && run_state_name(en.name)) {
            ignored++;
            continue;
        }
        dgm__rename(rules, en.name, mn, sizeof mn);
        dgm_param *p =
            dgm__globs_match(globs, mn) ? dgm_params_find(ps, mn) : NULL;
        if (!p) {
            fprintf(unused_txt, "  unused %s %s %s\n", en.name, en.dtype,
                    shape_of(&en, sh, sizeof sh));
            unused++;
            continue;
        }
        dgm_shape_str(p->value->ndim, p->value->shape, msh, sizeof msh);
        bool shape_ok = same_shape(&en, p->value);
        bool dtype_ok = convertible(en.dtype, p->value->dtype);
        if (!shape_ok || !dtype_ok) {
            if (skip) {
                fprintf(rep, "  skipped %s %s %s <- %s %s %s (%s mismatch)\n",
                        p->name, dgm_st_dtype_name(p->value->dtype), msh,
                        en.name, en.dtype, shape_of(&en, sh, sizeof sh),
                        shape_ok ? "dtype" : "shape");
                skipped++;
                continue;
            }
            fclose(unused_txt);
            free(unused_s);
            return dgm_cfg_error(
                node, "path", shape_ok ? DGM_EDTYPE : DGM_ESHAPE,
                "init: model tensor '%s' %s %s cannot take '%s' tensor "
                "'%s' %s %s (%s mismatch; skip_mismatch: true skips it)",
                p->name, dgm_st_dtype_name(p->value->dtype), msh, s->path,
                en.name, en.dtype, shape_of(&en, sh, sizeof sh),
                shape_ok ? "dtype" : "shape");
        }
        pl[*n_plan] = (plan){.p = p, .src = si, .entry = i};
        (*n_plan)++;
        loaded++;
        if (!strcmp(en.name, p->name))
            fprintf(rep, "  loaded %s %s%s\n", p->name, msh,
                    strcmp(en.dtype, dgm_st_dtype_name(p->value->dtype))
                        ? " (converted)"
                        : "");
        else
            fprintf(rep, "  loaded %s %s <- %s%s\n", p->name, msh, en.name,
                    strcmp(en.dtype, dgm_st_dtype_name(p->value->dtype))
                        ? " (converted)"
                        : "");
    }
    fclose(unused_txt);
    if (unused_s)
        fputs(unused_s, rep);
    free(unused_s);
    if (ignored)
        fprintf(rep,
                "  ignored %d optimizer, RNG and data-set entries of the "
                "checkpoint\n",
                ignored);
    fprintf(rep, "  %d loaded, %d skipped, %d unused\n", loaded, skipped,
            unused);
    if (strict && (unused || skipped))
        return dgm_cfg_error(node, "strict", DGM_ECONFIG,
                             "init: %s: %d tensors unused and %d skipped "
                             "(strict: true)",
                             s->path, unused, skipped);
    if (strict) {
        int np = dgm_params_count(ps);
        for (int k = 0; k < np; k++) {
            dgm_param *p = dgm_params_at(ps, k);
            bool found = false;
            for (int j = 0; j < *n_plan && !found; j++)
                found = pl[j].p == p && pl[j].src == si;
            if (!found)
                return dgm_cfg_error(node, "strict", DGM_ECONFIG,
                                     "init: %s sets no value for model "
                                     "tensor '%s' (strict: true)",
                                     s->path, p->name);
        }
    }
    return 0;
}

int dgm__init_apply(dgm_params *ps, const dgm_config *init, char **report)
{
    *report = NULL;
    int ns = dgm_cfg_kind_of(init) == DGM_CFG_SEQ ? dgm_cfg_len(init) : 0;
    if (ns == 0)
        return 0;
    source *src = calloc((size_t)ns, sizeof *src);
    int cap = 0;
    int rc = 0, n_plan = 0;
    /* The report, written with stdio into memory (open_memstream). */
    char *rep_s = NULL;
    size_t rep_len = 0;
    FILE *rep = open_memstream(&rep_s, &rep_len);
    plan *pl = NULL;
    if (!src || !rep) {
        free(src);
        if (rep)
            fclose(rep);
        free(rep_s);
        return dgm_error(DGM_ENOMEM, "init: out of memory");
    }
    for (int i = 0; i < ns && rc == 0; i++) {
        rc = open_source(&src[i], dgm_cfg_at(init, i));
        if (rc == 0)
            cap += dgm_st_count(src[i].f);
    }
    if (rc == 0 && !(pl = malloc(sizeof *pl * (size_t)(cap ? cap : 1))))
        rc = dgm_error(DGM_ENOMEM, "init: out of memory");
    for (int i = 0; i < ns && rc == 0; i++)
        rc = plan_source(ps, &src[i], i, dgm_cfg_at(init, i), pl, &n_plan, rep);
    /* Everything checked: copy (a later source overrides an earlier). */
    for (int j = 0; j < n_plan && rc == 0; j++)
        rc = copy_entry(&src[pl[j].src], pl[j].entry, pl[j].p->value);
    if (rc == 0) {
        int np = dgm_params_count(ps), left = 0;
        for (int k = 0; k < np; k++) {
            dgm_param *p = dgm_params_at(ps, k);
            bool found = false;
            for (int j = 0; j < n_plan && !found; j++)
                found = pl[j].p == p;
            if (!found) {
                char sh[96];
                fprintf(rep, "  left at its initialisation: %s %s\n", p->name,
                        dgm_shape_str(p->value->ndim, p->value->shape, sh,
                                      sizeof sh));
                left++;
            }
        }
        fprintf(rep,
                "init: %d of %d model tensors loaded, %d left at their "
                "initialisation\n",
                np - left, np, left);
        if (ferror(rep))
            rc = dgm_error(DGM_ENOMEM, "init: out of memory");
    }
    for (int i = 0; i < ns; i++)
        dgm_st_close(src[i].f);
    free(src);
    free(pl);
    if (fclose(rep) != 0 && rc == 0)
        rc = dgm_error(DGM_ENOMEM, "init: out of memory");
    if (rc < 0) {
        free(rep_s);
        return rc;
    }
    *report = rep_s;
    return 0;
}

/* ---- freezing ------------------------------------------------------------ */

static bool bn_stat(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot &&
           (!strcmp(dot, ".running_mean") || !strcmp(dot, ".running_var"));
}

int dgm__freeze_apply(dgm_params *ps, const dgm_config *freeze, bool bn_stats)
{
    if (dgm_cfg_kind_of(freeze) == DGM_CFG_NULL)
        return 0;
    int np = dgm_params_count(ps);
    int ng = dgm_cfg_kind_of(freeze) == DGM_CFG_SEQ ? dgm_cfg_len(freeze) : 1;
    /* every glob must match something: a typo would silently train all */
    for (int i = 0; i < ng; i++) {
        const dgm_config *gn = dgm_cfg_kind_of(freeze) == DGM_CFG_SEQ
                                   ? dgm_cfg_at(freeze, i)
                                   : freeze;
        bool any = false;
        for (int k = 0; k < np && !any; k++)
            any = dgm__globs_match(gn, dgm_params_at(ps, k)->name);
        if (!any)
            return dgm_cfg_error(gn, NULL, DGM_ENOTFOUND,
                                 "freeze: '%s' matches no parameter of the "
                                 "model (e.g. '%s')",
                                 dgm_cfg_text(gn),
                                 np ? dgm_params_at(ps, 0)->name : "");
    }
    for (int k = 0; k < np; k++) {
        dgm_param *p = dgm_params_at(ps, k);
        if (!dgm__globs_match(freeze, p->name))
            continue;
        if (p->role == DGM_ROLE_WEIGHT || (bn_stats && bn_stat(p->name)))
            p->frozen = true;
    }
    return 0;
}
