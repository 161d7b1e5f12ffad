/* explore.h - `dgm explore`'s figures of a finished run: latent
 * traversals, interpolations, the latent map, nearest neighbours (never
 * installed). Each figure is computed into tensors first (what the tests
 * check) and then written as a PNG into the run's explore/ folder.
 *
 *     dgm__explore_opts o = dgm__explore_defaults();
 *     dgm__traversal t;
 *     if (dgm__explore_traversal(run, &o, 0, &t) == 0) {
 *         ... t.images [rows * steps, x...], t.dims[row] ...
 *         dgm__traversal_free(&t);
 *     }
 */
#ifndef DGM_EXPLORE_H
#define DGM_EXPLORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dgm/host.h"

#define DGM__EXPLORE_MAX_DIMS 64

typedef struct dgm__explore_opts {
    int n_dims; /* traversal rows: the first n_dims by order (default 10) */
    int dims[DGM__EXPLORE_MAX_DIMS]; /* or these dimensions, when n_list */
    int n_list;
    float range;  /* latents move over [-range, range] (default 3) */
    int steps;    /* columns of traversals and interpolations (default 9) */
    int examples; /* traversal figures, one per example (default 2) */
    int pairs;    /* interpolation rows (default 6) */
    int map_n;    /* test examples on the latent map (default 1000) */
    int nn_n;     /* generated samples for nearest neighbours (default 8) */
    int nn_k;     /* neighbours each (default 5) */
    int nn_train; /* training examples searched (default 10000) */
    const char *classifier; /* run whose "features" the neighbours use */
    const char *prompt;     /* text whose attention is drawn */
    const char *prompts[2]; /* homotopy ends (NULL: test windows 0, 1) */
    float temperature;      /* > 0: a sampled homotopy too (default 0) */
    uint64_t seed;
} dgm__explore_opts;

dgm__explore_opts dgm__explore_defaults(void);

/* ---- traversals ------------------------------------------------------- */

typedef struct dgm__traversal {
    dgm_tensor *images; /* [rows * steps, x_shape...], row-major */
    int rows, steps;
    int dims[DGM__EXPLORE_MAX_DIMS];     /* the latent dimension of each row */
    double score[DGM__EXPLORE_MAX_DIMS]; /* its ordering figure */
    bool
        by_kl; /* score: mean KL over test examples (else variance of effect) */
} dgm__traversal;

/* Traversal number `which`: from the posterior mean of test example
 * `which` (models with an encoder) or from prior draw `which` (seeded),
 * each chosen dimension set to `steps` values evenly over
 * [-range, range], the others kept. Rows by decreasing score unless
 * dims are listed. */
int dgm__explore_traversal(dgm_run *r, const dgm__explore_opts *o, int which,
                           dgm__traversal *out);
void dgm__traversal_free(dgm__traversal *t);

/* ---- interpolations --------------------------------------------------- */

/* Rows of `steps` images from latent a to latent b for `pairs` pairs: the
 * posterior means of test examples 2i and 2i+1 (encoder: *posterior set
 * when not NULL) or two prior draws; spherical (slerp) or linear.
 * *images [pairs * steps, x...]. A conditional model draws them all as
 * class 0, as it does traversals. */
int dgm__explore_interpolation(dgm_run *r, const dgm__explore_opts *o,
                               bool spherical, dgm_tensor **images,
                               bool *posterior);
/* A conditional model: the linear path of the first pair, one row per
 * class (*images [classes * steps, x...]). DGM_EUNSUPPORTED if the model
 * ignores labels. */
int dgm__explore_class_rows(dgm_run *r, const dgm__explore_opts *o,
                            dgm_tensor **images, int *classes);

/* ---- latent map ------------------------------------------------------- */

/* The posterior means of the first map_n test examples projected to 2-D:
 * *xy [n, 2] (the means themselves for a 2-D latent, else their first two
 * principal components), *labels i64 [n] or NULL; *exact says no
 * projection was needed. */
int dgm__explore_latent_map(dgm_run *r, const dgm__explore_opts *o,
                            dgm_tensor **xy, dgm_tensor **labels, bool *exact);
/* A 2-D latent: the decoded grid over [-range, range]^2, steps x steps
 * (row 0 at z1 = +range, so up is up), *images [steps * steps, x...]. */
int dgm__explore_manifold(dgm_run *r, const dgm__explore_opts *o,
                          dgm_tensor **images);

/* ---- nearest neighbours ----------------------------------------------- */

/* For each query row, the k nearest rows of `base` (both [n, x...] in the
 * data's shape) by Euclidean distance in the feature space of the
 * classifier run `feat` (its "features" output), or in data space when
 * feat is NULL: idx[q * k + j], dist[q * k + j], nearest first. */
int dgm__explore_neighbours(dgm_run *feat, const dgm_tensor *queries,
                            const dgm_tensor *base, int k, int64_t *idx,
                            float *dist);

/* ---- attention maps --------------------------------------------------- */

/* A model whose generator records "attention" [n, HW, HW] over a square
 * map (self_attention): `examples` prior draws (seeded), each beside the
 * attention of four query positions (the quadrants' centres, marked
 * green) drawn over it, *fig RGB [examples * 5, 3, H, W] in [0, 1],
 * *cols = 5; *att (if not NULL) the recorded [n, HW, HW]. */
int dgm__explore_attention_image(dgm_run *r, const dgm__explore_opts *o,
                                 dgm_tensor **fig, int *cols, dgm_tensor **att);
/* A sequence model whose blocks record "attention" [1, N, heads, T, T]
 * (transformer blocks): the prompt's tokens over the earlier ones, one
 * heat map per layer and head (*fig RGB [layers * heads, 3, len * cell,
 * len * cell], row = query token, column = key token), *att (if not
 * NULL) the probabilities [layers * heads, len, len]. */
int dgm__explore_attention_text(dgm_run *r, const char *prompt, int cell,
                                dgm_tensor **fig, int *heads, int *layers,
                                dgm_tensor **att);
/* The heat colour of v in [0, 1]: black, red, yellow, white. */
void dgm__heat_rgb(float v, float rgb[3]);

/* ---- homotopies (sequence VAE) --------------------------------------- */

typedef struct dgm__homotopy {
    int steps;           /* points, ends included */
    int64_t len;         /* bytes per decoded window: the data's T */
    char *text[2];       /* the ends' texts: the prompts or test windows */
    bool from_test;      /* the ends are test windows 0 and 1 */
    dgm_tensor *z;       /* [steps, latent]: the points of the line */
    dgm_tensor *greedy;  /* i64 [steps, T]: each point decoded greedily */
    dgm_tensor *sampled; /* i64 [steps, T] drawn at o->temperature, or NULL */
} dgm__homotopy;

/* The homotopy of Bowman et al. 2016 between o->prompts (or test windows
 * 0 and 1): their posterior means A and B, the o->steps points (1 - a) A
 * + a B for a evenly over [0, 1], each decoded. DGM_EUNSUPPORTED for a
 * model whose examples are not token windows or that has no latent
 * space to encode into. Free with dgm__homotopy_free. */
int dgm__explore_homotopy(dgm_run *r, const dgm__explore_opts *o,
                          dgm__homotopy *h);
void dgm__homotopy_free(dgm__homotopy *h);
/* The text figure: the ends, then one line per point (a, then the
 * decoded bytes with \n, \t, \\ and \xHH escapes). */
int dgm__homotopy_write(FILE *f, dgm_run *r, const dgm__homotopy *h,
                        const dgm__explore_opts *o);

/* ---- drawing ---------------------------------------------------------- */

/* A scatter plot of xy [n, 2] coloured by labels (i64 [n] or NULL) with
 * a legend of the classes and the axis names, into a PNG. */
int dgm__plot_scatter(const char *path, const dgm_tensor *xy,
                      const dgm_tensor *labels, int64_t n_classes,
                      const char *x_name, const char *y_name);
/* A heat map of m [rows, cols] (values in [0, max]) scaled up by `cell`
 * pixels per value, into a PNG. */
int dgm__plot_heat(const char *path, const float *m, int rows, int cols,
                   int cell);

/* ---- the whole command ------------------------------------------------ */

/* Which figure families `dgm explore --what` names. */
enum {
    DGM__EX_TRAVERSE = 1,
    DGM__EX_INTERP = 2,
    DGM__EX_MAP = 4,
    DGM__EX_NEIGHBOURS = 8,
    DGM__EX_ATTENTION = 16,
    DGM__EX_HOMOTOPY = 32,
    DGM__EX_ALL = 63
};

/* Write the figures `what` asks for into run_dir/explore/ and
 * explore.html beside them; a family that does not apply to the model is
 * skipped with a line on `log` saying why, unless it was asked for alone
 * (then refused). 0, or a DGM_E* code. */
int dgm__explore_run(dgm_registry *reg, const char *run_dir, unsigned what,
                     const dgm__explore_opts *o, FILE *log);

/* The page: each figure of dir (explore/) embedded with its caption, a
 * PNG as an image, a .txt file (a text model's figure) as preformatted
 * text. */
int dgm__explore_page(const char *dir, const char *title,
                      const char *const *png, const char *const *caption,
                      int n);

/* The PNGs of run_dir/explore/ (by name) embedded in an HTML page f as
 * figures captioned with label and their file, after `heading` (written
 * before the first only; may be NULL); nothing when there are none.
 * Returns how many were embedded. */
int dgm__explore_embed(FILE *f, const char *run_dir, const char *label,
                       const char *heading);

/* Base64 of d[0..n) written to f (data: URIs of the report and the
 * explore page). */
void dgm__base64(FILE *f, const unsigned char *d, size_t n);

#endif
