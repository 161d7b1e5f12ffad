/* explore_run.c - `dgm explore`'s work on one run: each figure family
 * asked for, computed (explore_latent.c, explore_nn.c,
 * explore_attention.c, explore_homotopy.c), written as a PNG (a text
 * model's homotopy as text)
 * into RUNDIR/explore/ with its caption, and explore.html over them; a
 * family that does not apply to the model is skipped with the reason, or
 * refused when it was the only one asked for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "explore.h"

#define MAX_FIGS 64

typedef struct figs {
    char dir[4096];
    char *png[MAX_FIGS], *caption[MAX_FIGS];
    int n;
    FILE *log;
} figs;

/* Images [n, x...] as a grid of `cols` per row into dir/name, recorded
 * with its caption. Data that are not images (sequences, vectors) are
 * refused with DGM_EUNSUPPORTED. */
static int write_grid(figs *f, dgm_run *r, const char *name,
                      const dgm_tensor *images, int cols, const char *caption)
{
    const dgm_data_info *info = dgm_run_data_info(r);
    const dgm_shape *s = &info->x_shape;
    if (info->x_dtype != DGM_F32 ||
        !(s->ndim == 2 || (s->ndim == 3 && (s->dim[0] == 1 || s->dim[0] == 3))))
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s': its examples are not images to draw",
                         dgm_run_model_name(r));
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    int rc = dgm_png_write_grid(path, images, cols, info->x_min, info->x_max);
    if (rc < 0)
        return rc;
    return 1; /* recorded by the caller, after the file exists */
}

/* Traversals, interpolations, the manifold and neighbours are drawn as
 * images: a text model is refused before anything is computed (unless
 * the family needs a latent space the model lacks: that reason comes
 * first, from the family itself). */
static int images_or_refuse(dgm_run *r, const char *family, bool latent)
{
    const dgm_data_info *info = dgm_run_data_info(r);
    if (info->x_dtype == DGM_I64 && info->x_shape.ndim == 1 &&
        (!latent || dgm_run_latent_size(r) > 0))
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' makes text, and %s are drawn as images "
                         "(text has the homotopy of a sequence VAE and the "
                         "attention of a transformer)",
                         dgm_run_model_name(r), family);
    return 0;
}

static int record(figs *f, const char *name, const char *caption)
{
    if (f->n == MAX_FIGS)
        return dgm_error(DGM_ERANGE, "explore: more than %d figures", MAX_FIGS);
    f->png[f->n] = strdup(name);
    f->caption[f->n] = strdup(caption);
    if (!f->png[f->n] || !f->caption[f->n])
        return dgm_error(DGM_ENOMEM, "explore: out of memory");
    f->n++;
    if (f->log)
        fprintf(f->log, "%s/%s\n", f->dir, name);
    return 0;
}

static int grid_fig(figs *f, dgm_run *r, const char *name,
                    const dgm_tensor *images, int cols, const char *caption)
{
    int rc = write_grid(f, r, name, images, cols, caption);
    return rc < 0 ? rc : record(f, name, caption);
}

static int traversals(figs *f, dgm_run *r, const dgm__explore_opts *o)
{
    int rc = images_or_refuse(r, "traversals", true);
    for (int k = 0; k < o->examples && rc == 0; k++) {
        dgm__traversal t;
        if ((rc = dgm__explore_traversal(r, o, k, &t)) < 0)
            break;
        char name[64], cap[2048];
        snprintf(name, sizeof name, "traversal_%d.png", k);
        int at = snprintf(cap, sizeof cap,
                          "latent traversal from %s %d: each row moves one "
                          "dimension from %g to %g in %d steps, the others "
                          "kept; rows (dimension: %s) ",
                          t.by_kl ? "the posterior mean of test example"
                                  : "prior draw",
                          k, -o->range, o->range, t.steps,
                          o->n_list ? "listed, with its score"
                          : t.by_kl ? "mean KL to the prior, in nats, largest "
                                      "first"
                                    : "variance of its effect on the output, "
                                      "largest first");
        for (int i = 0; i < t.rows && at < (int)sizeof cap - 40; i++)
            at += snprintf(cap + at, sizeof cap - (size_t)at, "%s%d: %.4g",
                           i ? ", " : "", t.dims[i], t.score[i]);
        rc = grid_fig(f, r, name, t.images, t.steps, cap);
        dgm__traversal_free(&t);
    }
    return rc;
}

static int interpolations(figs *f, dgm_run *r, const dgm__explore_opts *o)
{
    int rc = images_or_refuse(r, "interpolations", true);
    for (int sph = 0; sph < 2 && rc == 0; sph++) {
        dgm_tensor *im;
        bool post = false;
        if ((rc = dgm__explore_interpolation(r, o, sph, &im, &post)) < 0)
            break;
        char cap[512];
        snprintf(cap, sizeof cap,
                 "%s interpolation in %d steps, one row per pair, between %s",
                 sph ? "spherical (slerp)" : "linear", o->steps,
                 post ? "the posterior means of test examples 2i and 2i+1 "
                        "(row i; the ends are their reconstructions)"
                      : "two prior draws");
        rc = grid_fig(f, r, sph ? "interp_slerp.png" : "interp_linear.png", im,
                      o->steps, cap);
        dgm_tensor_free(im);
    }
    if (rc < 0)
        return rc;
    dgm_tensor *im;
    int nc = 0;
    rc = dgm__explore_class_rows(r, o, &im, &nc);
    if (rc == DGM_EUNSUPPORTED)
        return 0; /* an unconditional model: nothing more to show */
    if (rc < 0)
        return rc;
    char cap[256];
    snprintf(cap, sizeof cap,
             "the first pair's linear path with the class fixed per row "
             "(classes 0..%d, top to bottom): what the label changes",
             nc - 1);
    rc = grid_fig(f, r, "interp_classes.png", im, o->steps, cap);
    dgm_tensor_free(im);
    return rc;
}

static int latent_map(figs *f, dgm_run *r, const dgm__explore_opts *o)
{
    dgm_tensor *xy, *labels;
    bool exact;
    int rc = dgm__explore_latent_map(r, o, &xy, &labels, &exact);
    if (rc < 0)
        return rc;
    char path[4200], cap[256];
    snprintf(path, sizeof path, "%s/latent_map.png", f->dir);
    rc = dgm__plot_scatter(path, xy, labels, dgm_run_data_info(r)->n_classes,
                           exact ? "latent 0" : "pc 1",
                           exact ? "latent 1" : "pc 2");
    snprintf(cap, sizeof cap,
             "posterior means of %lld test examples %s, coloured by class "
             "(legend: class number)",
             (long long)xy->shape[0],
             exact ? "(the 2-D latent itself)"
                   : "projected on their first two principal components");
    dgm_tensor_free(xy);
    dgm_tensor_free(labels);
    if (rc == 0)
        rc = record(f, "latent_map.png", cap);
    if (rc < 0 || !exact)
        return rc;
    if (images_or_refuse(r, "manifolds", true) < 0)
        return 0; /* a text model's 2-D map has no grid of images */
    dgm_tensor *im;
    if ((rc = dgm__explore_manifold(r, o, &im)) < 0)
        return rc;
    snprintf(cap, sizeof cap,
             "the decoded manifold: z0 from %g (left) to %g (right), z1 from "
             "%g (top) to %g (bottom), %d steps each",
             -o->range, o->range, o->range, -o->range, o->steps);
    rc = grid_fig(f, r, "manifold.png", im, o->steps, cap);
    dgm_tensor_free(im);
    return rc;
}

static int neighbours(figs *f, dgm_registry *reg, dgm_run *r,
                      const dgm__explore_opts *o)
{
    dgm_run *feat = NULL;
    dgm_tensor *gen = NULL, *train = NULL, *grid = NULL;
    int64_t *idx = NULL;
    float *dist = NULL;
    int64_t nt = dgm_run_data_info(r)->size[DGM_SPLIT_TRAIN];
    if (nt > o->nn_train)
        nt = o->nn_train;
    int k = o->nn_k, n = o->nn_n;
    int rc = images_or_refuse(r, "nearest neighbours", false);
    if (rc == 0)
        rc = dgm_run_samples(r, n, o->seed, &gen);
    if (rc == 0 && o->classifier)
        rc = dgm_run_open(&feat, reg, o->classifier);
    if (rc == 0)
        rc = dgm_run_examples(r, DGM_SPLIT_TRAIN, 0, nt, &train, NULL);
    if (rc == 0 && (!(idx = malloc(sizeof *idx * (size_t)(n * k))) ||
                    !(dist = malloc(sizeof *dist * (size_t)(n * k)))))
        rc = dgm_error(DGM_ENOMEM, "explore: out of memory");
    if (rc == 0)
        rc = dgm__explore_neighbours(feat, gen, train, k, idx, dist);
    /* the grid: each sample, then its neighbours, nearest first */
    if (rc == 0) {
        int64_t shape[DGM_MAX_DIMS];
        memcpy(shape, gen->shape, sizeof(int64_t) * (size_t)gen->ndim);
        shape[0] = (int64_t)n * (k + 1);
        if (!(grid = dgm_tensor_new(DGM_F32, gen->ndim, shape)))
            rc = dgm_last_code();
    }
    for (int q = 0; rc == 0 && q < n; q++)
        for (int j = 0; j <= k && rc == 0; j++) {
            dgm_tensor dst = *grid, src = j ? *train : *gen;
            int64_t row = j ? idx[q * k + j - 1] : q;
            int64_t at = (int64_t)q * (k + 1) + j;
            rc = dgm_view_slice(&dst, 0, at, at + 1, 1);
            if (rc == 0)
                rc = dgm_view_slice(&src, 0, row, row + 1, 1);
            if (rc == 0)
                rc = dgm_tensor_copy(&dst, &src);
        }
    if (rc == 0) {
        char cap[2048];
        int at = snprintf(cap, sizeof cap,
                          "each row: a generated sample, then its %d nearest "
                          "of the first %lld training examples in %s%s "
                          "(Euclidean); distances by row: ",
                          k, (long long)nt,
                          feat ? "the feature space of classifier run "
                               : "data space (no --classifier)",
                          feat ? o->classifier : "");
        for (int q = 0; q < n && at < (int)sizeof cap - 40; q++)
            at += snprintf(cap + at, sizeof cap - (size_t)at, "%s%.3g",
                           q ? "; " : "", dist[q * k]);
        at += snprintf(cap + at, sizeof cap - (size_t)at, " (nearest)");
        rc = grid_fig(f, r, "neighbours.png", grid, k + 1, cap);
    }
    dgm_tensor_free(gen);
    dgm_tensor_free(train);
    dgm_tensor_free(grid);
    free(idx);
    free(dist);
    dgm_run_close(feat);
    return rc;
}

/* An RGB figure in [0, 1] (attention maps) into dir/name. */
static int rgb_fig(figs *f, const char *name, const dgm_tensor *im, int cols,
                   const char *caption)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    int rc = dgm_png_write_grid(path, im, cols, 0.0f, 1.0f);
    return rc < 0 ? rc : record(f, name, caption);
}

static int attention(figs *f, dgm_run *r, const dgm__explore_opts *o)
{
    dgm_tensor *im;
    int cols, heads, layers, rc;
    char cap[1024];
    if (dgm_run_data_info(r)->x_dtype == DGM_I64) {
        if (!o->prompt)
            return dgm_error(DGM_EUNSUPPORTED,
                             "model '%s': give --prompt TEXT to draw its "
                             "attention",
                             dgm_run_model_name(r));
        if ((rc = dgm__explore_attention_text(r, o->prompt, 8, &im, &heads,
                                              &layers, NULL)) < 0)
            return rc;
        snprintf(cap, sizeof cap,
                 "attention of each token of the prompt \"%s\" (rows, top "
                 "to bottom) over the tokens up to it (columns): one map "
                 "per head (%d per row) and layer (rows of maps, first "
                 "layer on top); black 0, white 1",
                 o->prompt, heads);
        rc = rgb_fig(f, "attention.png", im, heads, cap);
    } else {
        if ((rc = dgm__explore_attention_image(r, o, &im, &cols, NULL)) < 0)
            return rc;
        snprintf(cap, sizeof cap,
                 "generator self-attention: each row a sample (prior draw), "
                 "then where four query positions (green) attend over the "
                 "feature map, brightest where most; seed %llu",
                 (unsigned long long)o->seed);
        rc = rgb_fig(f, "attention.png", im, cols, cap);
    }
    dgm_tensor_free(im);
    return rc;
}

static int homotopy(figs *f, dgm_run *r, const dgm__explore_opts *o)
{
    dgm__homotopy h;
    int rc = dgm__explore_homotopy(r, o, &h);
    if (rc < 0)
        return rc;
    char path[4200], cap[512];
    snprintf(path, sizeof path, "%s/homotopy.txt", f->dir);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        rc = dgm_error(DGM_ENOMEM, "explore: out of memory");
    else {
        rc = dgm__homotopy_write(m, r, &h, o);
        fclose(m);
    }
    if (rc == 0)
        rc = dgm_write_file_atomic(path, text, len);
    free(text);
    snprintf(cap, sizeof cap,
             "homotopy (Bowman et al. 2016): %d evenly spaced points on the "
             "line between the posterior means of %s, each decoded greedily%s; "
             "the ends are the decodes of the two means",
             h.steps, h.from_test ? "test windows 0 and 1" : "the two prompts",
             h.sampled ? " and sampled" : "");
    dgm__homotopy_free(&h);
    return rc < 0 ? rc : record(f, "homotopy.txt", cap);
}

static void figs_free(figs *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->png[i]);
        free(f->caption[i]);
    }
}

int dgm__explore_run(dgm_registry *reg, const char *run_dir, unsigned what,
                     const dgm__explore_opts *o, FILE *log)
{
    static const struct {
        unsigned bit;
        const char *name;
    } fam[] = {{DGM__EX_TRAVERSE, "traversals"},
               {DGM__EX_INTERP, "interpolations"},
               {DGM__EX_MAP, "latent map"},
               {DGM__EX_NEIGHBOURS, "nearest neighbours"},
               {DGM__EX_ATTENTION, "attention maps"},
               {DGM__EX_HOMOTOPY, "homotopy"}};
    figs f = {.log = log};
    snprintf(f.dir, sizeof f.dir, "%s/explore", run_dir);
    dgm_run *r;
    int rc = dgm_run_open(&r, reg, run_dir);
    if (rc < 0)
        return rc;
    if ((rc = dgm_mkdirs(f.dir)) < 0) {
        dgm_run_close(r);
        return rc;
    }
    bool alone = (what & (what - 1)) == 0;
    for (size_t i = 0; i < sizeof fam / sizeof fam[0] && rc == 0; i++) {
        if (!(what & fam[i].bit))
            continue;
        switch (fam[i].bit) {
        case DGM__EX_TRAVERSE:
            rc = traversals(&f, r, o);
            break;
        case DGM__EX_INTERP:
            rc = interpolations(&f, r, o);
            break;
        case DGM__EX_MAP:
            rc = latent_map(&f, r, o);
            break;
        case DGM__EX_ATTENTION:
            rc = attention(&f, r, o);
            break;
        case DGM__EX_HOMOTOPY:
            rc = homotopy(&f, r, o);
            break;
        default:
            rc = neighbours(&f, reg, r, o);
            break;
        }
        if (rc == DGM_EUNSUPPORTED && !alone) {
            if (log)
                fprintf(log, "skipped %s: %s\n", fam[i].name, dgm_last_error());
            rc = 0;
        } else if (rc < 0)
            dgm_error_context("%s: ", fam[i].name);
    }
    if (rc == 0 && f.n == 0)
        rc = dgm_error(DGM_EUNSUPPORTED,
                       "run %s: no figure applies to model '%s'", run_dir,
                       dgm_run_model_name(r));
    if (rc == 0) {
        char title[4200];
        snprintf(title, sizeof title, "dgm explore: %s (model %s)", run_dir,
                 dgm_run_model_name(r));
        rc = dgm__explore_page(f.dir, title, (const char *const *)f.png,
                               (const char *const *)f.caption, f.n);
        if (rc == 0 && log)
            fprintf(log, "%s/explore.html\n", f.dir);
    }
    figs_free(&f);
    dgm_run_close(r);
    return rc;
}
