/* test_explore.c - `dgm explore`'s figures checked by their content on
 * tiny runs trained once for the suite (8x8 band images of 4 classes,
 * 28x28 quadrants for a SAGAN, a repeated sentence for a transformer): a
 * traversal of a dimension the decoder ignores gives identical images, an
 * interpolation's ends are the reconstructions and its points the
 * reference paths, the latent map of a 2-D latent is the means, a
 * training image is its own nearest neighbour at distance 0, attention
 * rows sum to one, and what does not apply is refused. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "cli.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/io.h"
#include "explore.h"
#include "files.h"
#include "quadrants.h"
#include "shipped_registry.h"
#include "train.h"

static char root[1024];

static const char data_yaml[] = "seed: 1\n"
                                "threads: 1\n"
                                "data:\n"
                                "  plugin: idx\n"
                                "  path: %s/data\n"
                                "  train_images: train-img\n"
                                "  train_labels: train-lab\n"
                                "  test_images: test-img\n"
                                "  test_labels: test-lab\n"
                                "  batch_size: 32\n";

static const char vae_yaml[] = "name: vae\n"
                               "model:\n"
                               "  plugin: vae\n"
                               "  latent: 3\n"
                               "  encoder: {plugin: mlp, hidden: [16]}\n"
                               "  decoder: {plugin: mlp, hidden: [16]}\n"
                               "optimizer: {plugin: adam, lr: 0.01}\n"
                               "train: {epochs: 2, log_every: 8, samples: 4}\n";

static const char gan_yaml[] = "name: gan\n"
                               "model:\n"
                               "  plugin: gan\n"
                               "  latent: 4\n"
                               "  conditional: true\n"
                               "  generator: {plugin: mlp, hidden: [16]}\n"
                               "  discriminator: {plugin: mlp, hidden: [16]}\n"
                               "train: {steps: 6, log_every: 2, samples: 4}\n";

static const char cls_yaml[] =
    "name: cls\n"
    "model:\n"
    "  plugin: classifier\n"
    "  features: {plugin: mlp, hidden: [16]}\n"
    "objective:\n"
    "  - {loss: cross_entropy, inputs: [logits, y]}\n"
    "optimizer: {plugin: adam, lr: 0.01}\n"
    "train: {epochs: 1, log_every: 8, samples: 0}\n";

static const char sagan_yaml[] =
    "name: sagan\n"
    "seed: 1\n"
    "threads: 1\n"
    "data: {plugin: idx, path: %s/data, train_images: q-img, train_labels: "
    "q-lab, test_images: q-img, test_labels: q-lab, scale: symmetric, "
    "batch_size: 8}\n"
    "model:\n"
    "  plugin: gan\n"
    "  latent: 8\n"
    "  generator: {plugin: dcgan_generator, width: 8, attention_at: 14}\n"
    "  discriminator: {plugin: dcgan_discriminator, width: 8}\n"
    "train: {steps: 2, log_every: 1, samples: 0}\n";

static const char tf_yaml[] =
    "name: tf\n"
    "seed: 1\n"
    "threads: 1\n"
    "data: {plugin: text, path: '%s/corpus.txt', seq_len: 16, batch_size: 8, "
    "val_fraction: 0.2}\n"
    "model: {plugin: char_transformer, width: 16, layers: 2, block: {plugin: "
    "transformer_block, heads: 2}}\n"
    "optimizer: {plugin: adam, lr: 1.0e-2}\n"
    "train: {steps: 4, log_every: 1}\n";

static void path_of(char *out, size_t n, const char *what)
{
    snprintf(out, n, "%s/%s", root, what);
}

static void write_yaml(const char *name, const char *model)
{
    char p[1200], head[2048];
    path_of(p, sizeof p, name);
    snprintf(head, sizeof head, data_yaml, root);
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "%s", p);
    fprintf(f, "%s%s", head, model);
    fclose(f);
}

static void train(const char *yaml, const char *dir, const char *ov)
{
    char y[1200], d[1200];
    path_of(y, sizeof y, yaml);
    path_of(d, sizeof d, dir);
    const char *ovs[1] = {ov};
    ck_assert_msg(tc_train(tc_reg, y, d, ovs, ov ? 1 : 0) == 0, "%s: %s", dir,
                  dgm_last_error());
}

/* Once for the suite: data, and the runs every case opens. */
static void suite_setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/explore-%ld", t ? t : "/tmp",
             (long)getpid());
    char d[1200];
    path_of(d, sizeof d, "data");
    ck_assert_int_eq(dgm_mkdirs(d), 0);
    ck_assert_int_eq(tq_write_bands(d, "train-img", "train-lab", 256, 7), 0);
    ck_assert_int_eq(tq_write_bands(d, "test-img", "test-lab", 64, 99), 0);
    ck_assert_int_eq(tq_write_quadrants(d, "q-img", "q-lab", 32, 5), 0);
    char p[1200], text[4096];
    path_of(p, sizeof p, "corpus.txt");
    FILE *f = fopen(p, "w");
    ck_assert(f != NULL);
    for (int i = 0; i < 40; i++)
        fputs("the quick brown fox jumps over the lazy dog. ", f);
    fclose(f);
    static const struct {
        const char *file, *fmt;
    } whole[] = {{"sagan.yaml", sagan_yaml}, {"tf.yaml", tf_yaml}};
    for (int i = 0; i < 2; i++) {
        path_of(p, sizeof p, whole[i].file);
        snprintf(text, sizeof text, whole[i].fmt, root);
        f = fopen(p, "w");
        ck_assert(f != NULL);
        fputs(text, f);
        fclose(f);
    }
    write_yaml("vae.yaml", vae_yaml);
    write_yaml("gan.yaml", gan_yaml);
    write_yaml("cls.yaml", cls_yaml);
    tc_shipped_setup();
    train("vae.yaml", "vae3", NULL);
    train("vae.yaml", "vae2", "model.latent=2");
    train("gan.yaml", "gan", NULL);
    train("gan.yaml", "gan_uncond", "model.conditional=false");
    train("cls.yaml", "cls", NULL);
    train("sagan.yaml", "sagan", NULL);
    train("tf.yaml", "tf", NULL);
    tc_shipped_teardown();
}

static void suite_teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static dgm_run *open_run(const char *dir)
{
    char d[1200];
    path_of(d, sizeof d, dir);
    dgm_run *r;
    ck_assert_msg(dgm_run_open(&r, tc_reg, d) == 0, "%s: %s", d,
                  dgm_last_error());
    return r;
}

/* Largest |a - b| over rows ra of a and rb of b. */
static double row_diff(const dgm_tensor *a, int64_t ra, const dgm_tensor *b,
                       int64_t rb)
{
    int64_t per = dgm_tensor_numel(a) / a->shape[0];
    ck_assert_int_eq(per, dgm_tensor_numel(b) / b->shape[0]);
    const float *p = dgm_tensor_f32(a) + ra * per,
                *q = dgm_tensor_f32(b) + rb * per;
    double m = 0;
    for (int64_t i = 0; i < per; i++)
        m = fmax(m, fabs((double)p[i] - q[i]));
    return m;
}

/* Zero column d of the decoder's first weight in the run's checkpoint,
 * so the decoder ignores z_d. */
static void cut_latent(const char *dir, int d)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s/checkpoints/last.safetensors", root, dir);
    dgm_st_file *f;
    ck_assert_int_eq(dgm_st_open(&f, p), 0);
    dgm_st_writer *w = dgm_st_writer_new();
    dgm_tensor *copies[256];
    int n = dgm_st_count(f);
    ck_assert_int_le(n, 256);
    for (int i = 0; i < n; i++) {
        const char *name = dgm_st_name_at(f, i);
        dgm_tensor *v;
        ck_assert_int_eq(dgm_st_get(f, name, &v), 0);
        copies[i] = dgm_tensor_clone(v);
        if (!strcmp(name, "decoder.fc1.weight")) {
            int64_t L = copies[i]->shape[1];
            for (int64_t r = 0; r < copies[i]->shape[0]; r++)
                dgm_tensor_f32(copies[i])[r * L + d] = 0.0f;
        }
        ck_assert_int_eq(dgm_st_writer_add(w, name, copies[i]), 0);
    }
    for (int i = 0; i < dgm_st_meta_count(f); i++)
        dgm_st_writer_meta(w, dgm_st_meta_key_at(f, i),
                           dgm_st_meta(f, dgm_st_meta_key_at(f, i)));
    dgm_st_close(f);
    ck_assert_int_eq(dgm_st_writer_write(w, p), 0);
    dgm_st_writer_free(w);
    for (int i = 0; i < n; i++)
        dgm_tensor_free(copies[i]);
}

START_TEST(traversal_of_ignored_dim_is_constant)
{
    /* a copy of the run whose decoder no longer reads z_1 */
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cp -r '%s/vae3' '%s/vae3_cut'", root, root);
    ck_assert_int_eq(system(cmd), 0);
    cut_latent("vae3_cut", 1);
    dgm_run *r = open_run("vae3_cut");
    dgm__explore_opts o = dgm__explore_defaults();
    o.n_list = 2, o.dims[0] = 1, o.dims[1] = 0, o.steps = 5;
    dgm__traversal t;
    ck_assert_msg(dgm__explore_traversal(r, &o, 0, &t) == 0, "%s",
                  dgm_last_error());
    ck_assert_int_eq(t.rows, 2);
    ck_assert_int_eq(t.images->shape[0], 10);
    ck_assert(t.by_kl);
    for (int j = 1; j < 5; j++) /* row 0 (z_1): bit for bit the same */
        ck_assert_msg(row_diff(t.images, 0, t.images, j) == 0.0,
                      "step %d differs by %g", j,
                      row_diff(t.images, 0, t.images, j));
    /* row 1 (z_0, still read) changes across the row */
    ck_assert_msg(row_diff(t.images, 5, t.images, 9) > 1e-4, "%g",
                  row_diff(t.images, 5, t.images, 9));
    dgm__traversal_free(&t);

    /* ordered by KL: the scores decrease and belong to their dims */
    o.n_list = 0, o.n_dims = 3;
    ck_assert_int_eq(dgm__explore_traversal(r, &o, 1, &t), 0);
    ck_assert_int_eq(t.rows, 3);
    ck_assert(t.score[0] >= t.score[1] && t.score[1] >= t.score[2]);
    ck_assert(t.dims[0] != t.dims[1] && t.dims[1] != t.dims[2] &&
              t.dims[0] != t.dims[2]);
    dgm__traversal_free(&t);
    o.n_list = 1, o.dims[0] = 3;
    ck_assert_int_eq(dgm__explore_traversal(r, &o, 0, &t), DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "--dims: dimension 3"));
    dgm_run_close(r);
}
END_TEST

/* The reference great-circle path in double. */
static void slerp_ref(const float *a, const float *b, int64_t L, double t,
                      float *out)
{
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < L; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i],
            bb += (double)b[i] * b[i];
    double th = acos(ab / sqrt(aa * bb));
    for (int64_t i = 0; i < L; i++)
        out[i] =
            (float)((sin((1 - t) * th) * a[i] + sin(t * th) * b[i]) / sin(th));
}

START_TEST(interpolation_ends_are_reconstructions)
{
    dgm_run *r = open_run("vae3");
    dgm__explore_opts o = dgm__explore_defaults();
    o.pairs = 3, o.steps = 5;
    dgm_tensor *lin, *sph, *x, *mu, *rec;
    bool post = false;
    ck_assert_int_eq(dgm__explore_interpolation(r, &o, false, &lin, &post), 0);
    ck_assert(post);
    ck_assert_int_eq(dgm__explore_interpolation(r, &o, true, &sph, NULL), 0);
    ck_assert_int_eq(lin->shape[0], 15);
    ck_assert_int_eq(dgm_run_examples(r, DGM_SPLIT_TEST, 0, 6, &x, NULL), 0);
    ck_assert_int_eq(dgm_run_encode(r, x, &mu, NULL), 0);
    ck_assert_int_eq(dgm_run_decode(r, mu, NULL, &rec), 0);
    for (int i = 0; i < 3; i++) {
        /* the ends: the reconstructions of test examples 2i and 2i + 1 */
        ck_assert(row_diff(lin, i * 5, rec, 2 * i) < 1e-6);
        ck_assert(row_diff(lin, i * 5 + 4, rec, 2 * i + 1) < 1e-6);
        ck_assert(row_diff(sph, i * 5, rec, 2 * i) < 1e-6);
        ck_assert(row_diff(sph, i * 5 + 4, rec, 2 * i + 1) < 1e-6);
        /* the middle is neither end */
        ck_assert(row_diff(lin, i * 5 + 2, rec, 2 * i) > 1e-4);
    }
    /* the points: decoded reference latents, t = 1/4 */
    float zl[3], zs[3];
    const float *m = dgm_tensor_f32(mu);
    for (int k = 0; k < 3; k++)
        zl[k] = 0.75f * m[k] + 0.25f * m[3 + k];
    slerp_ref(m, m + 3, 3, 0.25, zs);
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 2, (int64_t[]){2, 3}), *ref;
    memcpy(dgm_tensor_f32(z), zl, sizeof zl);
    memcpy(dgm_tensor_f32(z) + 3, zs, sizeof zs);
    ck_assert_int_eq(dgm_run_decode(r, z, NULL, &ref), 0);
    ck_assert_msg(row_diff(lin, 1, ref, 0) < 1e-5, "%g",
                  row_diff(lin, 1, ref, 0));
    ck_assert_msg(row_diff(sph, 1, ref, 1) < 1e-5, "%g",
                  row_diff(sph, 1, ref, 1));
    ck_assert(row_diff(ref, 0, ref, 1) > 1e-6); /* the two paths differ */
    /* an unconditional model has no class rows */
    int nc;
    dgm_tensor *im;
    ck_assert_int_eq(dgm__explore_class_rows(r, &o, &im, &nc),
                     DGM_EUNSUPPORTED);
    for (dgm_tensor **t = (dgm_tensor *[]){lin, sph, x, mu, rec, z, ref, NULL};
         *t; t++)
        dgm_tensor_free(*t);
    dgm_run_close(r);
}
END_TEST

START_TEST(latent_map_of_2d_latent_is_the_means)
{
    dgm_run *r = open_run("vae2");
    dgm__explore_opts o = dgm__explore_defaults();
    o.map_n = 40;
    dgm_tensor *xy, *lab, *x, *y, *mu;
    bool exact;
    ck_assert_int_eq(dgm__explore_latent_map(r, &o, &xy, &lab, &exact), 0);
    ck_assert(exact);
    ck_assert_int_eq(xy->shape[0], 40);
    ck_assert_int_eq(dgm_run_examples(r, DGM_SPLIT_TEST, 0, 40, &x, &y), 0);
    ck_assert_int_eq(dgm_run_encode(r, x, &mu, NULL), 0);
    ck_assert(memcmp(xy->data, mu->data, 40 * 2 * sizeof(float)) == 0);
    ck_assert_ptr_nonnull(lab);
    ck_assert(memcmp(lab->data, y->data, 40 * sizeof(int64_t)) == 0);
    for (int i = 0; i < 40; i++) /* the bands' classes: i % 4 */
        ck_assert_int_eq(((int64_t *)lab->data)[i], i % 4);
    dgm_tensor *grid;
    o.steps = 4;
    ck_assert_int_eq(dgm__explore_manifold(r, &o, &grid), 0);
    ck_assert_int_eq(grid->shape[0], 16);
    char png[1200];
    path_of(png, sizeof png, "map.png");
    ck_assert_int_eq(dgm__plot_scatter(png, xy, lab, 4, "latent 0", "latent 1"),
                     0);
    size_t n;
    char *s = tc_slurp(png, &n, true);
    ck_assert(n > 100 && !memcmp(s, "\x89PNG", 4));
    free(s);
    for (dgm_tensor **t = (dgm_tensor *[]){xy, lab, x, y, mu, grid, NULL}; *t;
         t++)
        dgm_tensor_free(*t);
    dgm_run_close(r);

    /* 3-D: the first two principal components, uncorrelated, the first
     * of at least the variance of the second and of any single axis */
    r = open_run("vae3");
    ck_assert_int_eq(dgm__explore_latent_map(r, &o, &xy, &lab, &exact), 0);
    ck_assert(!exact);
    ck_assert_int_eq(dgm_run_examples(r, DGM_SPLIT_TEST, 0, 40, &x, NULL), 0);
    ck_assert_int_eq(dgm_run_encode(r, x, &mu, NULL), 0);
    double m[2] = {0}, v[2] = {0}, c = 0, ax[3] = {0}, am[3] = {0};
    const float *p = dgm_tensor_f32(xy), *q = dgm_tensor_f32(mu);
    for (int i = 0; i < 40; i++)
        for (int k = 0; k < 3; k++) {
            if (k < 2)
                m[k] += p[i * 2 + k] / 40.0;
            am[k] += q[i * 3 + k] / 40.0;
        }
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < 2; k++)
            v[k] += pow(p[i * 2 + k] - m[k], 2);
        c += (p[i * 2] - m[0]) * (p[i * 2 + 1] - m[1]);
        for (int k = 0; k < 3; k++)
            ax[k] += pow(q[i * 3 + k] - am[k], 2);
    }
    ck_assert_msg(fabs(c) < 1e-3 * v[0], "cov %g var %g", c, v[0]);
    ck_assert(v[0] >= v[1]);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(v[0] >= ax[k] * (1 - 1e-5), "pc1 %g axis %d %g", v[0], k,
                      ax[k]);
    /* the projection keeps distances no longer than the originals */
    double tot = ax[0] + ax[1] + ax[2];
    ck_assert(v[0] + v[1] <= tot * (1 + 1e-5));
    for (dgm_tensor **t = (dgm_tensor *[]){xy, lab, x, mu, NULL}; *t; t++)
        dgm_tensor_free(*t);
    dgm_run_close(r);
}
END_TEST

START_TEST(training_image_is_its_own_nearest_neighbour)
{
    dgm_run *r = open_run("vae3"), *cls = open_run("cls");
    dgm_tensor *base, *q;
    ck_assert_int_eq(dgm_run_examples(r, DGM_SPLIT_TRAIN, 0, 50, &base, NULL),
                     0);
    ck_assert_int_eq(dgm_run_examples(r, DGM_SPLIT_TRAIN, 17, 2, &q, NULL), 0);
    int64_t idx[2 * 5];
    float dist[2 * 5];
    for (int space = 0; space < 2; space++) {
        dgm_run *feat = space ? cls : NULL;
        ck_assert_msg(dgm__explore_neighbours(feat, q, base, 5, idx, dist) == 0,
                      "%s", dgm_last_error());
        /* features of one image in two batches differ by rounding (the
         * kernels block by batch size): 0 up to that in feature space */
        float zero = space ? 1e-5f : 0.0f;
        for (int i = 0; i < 2; i++) {
            /* itself among the nearest at distance 0 (a duplicate band
             * image at distance 0 may come before it) */
            ck_assert_msg(dist[i * 5] <= zero, "%g", dist[i * 5]);
            bool self = false;
            for (int j = 0; j < 5; j++)
                self |= idx[i * 5 + j] == 17 + i && dist[i * 5 + j] <= zero;
            ck_assert_msg(self, "space %d query %d", space, i);
            for (int j = 1; j < 5; j++)
                ck_assert(dist[i * 5 + j] >= dist[i * 5 + j - 1]);
        }
    }
    /* data space: the distances are the plain Euclidean ones, and none of
     * the 50 is nearer than the fifth */
    ck_assert_int_eq(dgm__explore_neighbours(NULL, q, base, 5, idx, dist), 0);
    for (int64_t b = 0; b < 50; b++) {
        double s = 0;
        for (int64_t k = 0; k < 64; k++)
            s +=
                pow(dgm_tensor_f32(q)[k] - dgm_tensor_f32(base)[b * 64 + k], 2);
        double d = sqrt(s);
        bool listed = false;
        for (int j = 0; j < 5; j++)
            if (idx[j] == b) {
                listed = true;
                ck_assert_msg(fabs(dist[j] - d) < 1e-4, "%g vs %g", dist[j], d);
            }
        if (!listed)
            ck_assert(d >= dist[4] - 1e-4);
    }
    ck_assert_int_eq(dgm__explore_neighbours(NULL, q, base, 51, idx, dist),
                     DGM_ERANGE);
    dgm_tensor_free(base);
    dgm_tensor_free(q);
    dgm_run_close(r);
    dgm_run_close(cls);
}
END_TEST

START_TEST(gan_traversal_and_class_rows)
{
    dgm_run *r = open_run("gan");
    dgm__explore_opts o = dgm__explore_defaults();
    o.steps = 3;
    dgm__traversal t;
    ck_assert_int_eq(dgm__explore_traversal(r, &o, 0, &t), 0);
    ck_assert(!t.by_kl); /* no encoder: by the variance of the effect */
    ck_assert_int_eq(t.rows, 4);
    for (int i = 1; i < 4; i++)
        ck_assert(t.score[i - 1] >= t.score[i]);
    dgm__traversal_free(&t);
    dgm_tensor *im, *a;
    int nc = 0;
    ck_assert_int_eq(dgm__explore_class_rows(r, &o, &im, &nc), 0);
    ck_assert_int_eq(nc, 4);
    ck_assert_int_eq(im->shape[0], 12);
    /* paths hold the class fixed (class 0): two calls agree bit for bit
     * (a label drawn per image would differ between them) */
    dgm_tensor *p1, *p2;
    ck_assert_int_eq(dgm__explore_interpolation(r, &o, false, &p1, NULL), 0);
    ck_assert_int_eq(dgm__explore_interpolation(r, &o, false, &p2, NULL), 0);
    ck_assert(memcmp(p1->data, p2->data, dgm_tensor_nbytes(p1)) == 0);
    /* and are the class rows' class 0 for the first pair */
    ck_assert(row_diff(p1, 0, im, 0) == 0.0 && row_diff(p1, 2, im, 2) == 0.0);
    dgm_tensor_free(p1);
    dgm_tensor_free(p2);
    /* the same z with another label gives another image */
    ck_assert(row_diff(im, 0, im, 3) > 1e-6);
    /* and decode with labels is what the class rows hold */
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 2, (int64_t[]){1, 4});
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, (int64_t[]){1});
    ((int64_t *)y->data)[0] = 2;
    ck_assert_int_eq(dgm_run_decode(r, z, y, &a), 0);
    dgm_tensor_free(a);
    dgm_tensor_free(im);
    /* no encoder: no latent map */
    dgm_tensor *xy, *lab;
    bool exact;
    ck_assert_int_eq(dgm__explore_latent_map(r, &o, &xy, &lab, &exact),
                     DGM_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'gan' has no encoder"));
    dgm_run_close(r);
    /* an unconditional GAN refuses labels */
    r = open_run("gan_uncond");
    ck_assert_int_eq(dgm_run_decode(r, z, y, &a), DGM_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "not conditional"));
    dgm_tensor_free(z);
    dgm_tensor_free(y);
    dgm_run_close(r);
}
END_TEST

/* Rows of a [m, rows, cols] stack: each sums to 1 (within float
 * rounding) over non-negative entries. */
static void rows_sum_to_one(const dgm_tensor *a)
{
    int64_t cols = a->shape[a->ndim - 1];
    int64_t rows = dgm_tensor_numel(a) / cols;
    const float *p = dgm_tensor_f32(a);
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < cols; j++) {
            ck_assert(p[i * cols + j] >= 0);
            s += p[i * cols + j];
        }
        ck_assert_msg(fabs(s - 1) < 1e-5, "row %lld sums to %.8f", (long long)i,
                      s);
    }
}

START_TEST(attention_rows_sum_to_one)
{
    /* SAGAN: the generator's self-attention over its 14x14 map */
    dgm_run *r = open_run("sagan");
    dgm__explore_opts o = dgm__explore_defaults();
    o.examples = 2;
    dgm_tensor *fig, *att;
    int cols, heads, layers;
    ck_assert_msg(dgm__explore_attention_image(r, &o, &fig, &cols, &att) == 0,
                  "%s", dgm_last_error());
    ck_assert_int_eq(att->ndim, 3);
    ck_assert_int_eq(att->shape[0], 2);
    ck_assert_int_eq(att->shape[1], 14 * 14);
    rows_sum_to_one(att);
    ck_assert_int_eq(cols, 5);
    ck_assert_int_eq(fig->shape[0], 10);
    ck_assert_int_eq(fig->shape[2], 28);
    /* the first query (map cell (3, 3)) is marked green in column 1 */
    const float *px = dgm_tensor_f32(fig) + 1 * 3 * 28 * 28;
    int64_t at = 3 * 2 * 28 + 3 * 2;
    ck_assert(px[at] == 0 && px[28 * 28 + at] == 1 &&
              px[2 * 28 * 28 + at] == 0);
    dgm_tensor_free(fig);
    dgm_tensor_free(att);
    dgm_run_close(r);

    /* a transformer: per layer and head, causal rows over the prompt */
    r = open_run("tf");
    ck_assert_msg(dgm__explore_attention_text(r, "the quick", 4, &fig, &heads,
                                              &layers, &att) == 0,
                  "%s", dgm_last_error());
    ck_assert_int_eq(heads, 2);
    ck_assert_int_eq(layers, 2);
    ck_assert_int_eq(att->shape[0], 4);
    ck_assert_int_eq(att->shape[1], 9);
    rows_sum_to_one(att);
    const float *p = dgm_tensor_f32(att);
    for (int m = 0; m < 4; m++) {
        for (int i = 0; i < 9; i++)
            for (int j = i + 1; j < 9; j++) /* no look at a later token */
                ck_assert_float_eq(p[(m * 9 + i) * 9 + j], 0.0f);
        ck_assert_float_eq(p[m * 81], 1.0f); /* the first sees itself */
    }
    ck_assert_int_eq(fig->shape[0], 4);
    ck_assert_int_eq(fig->shape[2], 36);
    dgm_tensor_free(fig);
    dgm_tensor_free(att);
    ck_assert_int_eq(dgm__explore_attention_text(r, "the quick?", 4, &fig,
                                                 &heads, &layers, &att),
                     DGM_EINVAL); /* '?' is not in the corpus */
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'?'"));
    dgm_run_close(r);

    /* a model none of whose blocks records attention */
    r = open_run("vae3");
    ck_assert_int_eq(dgm__explore_attention_image(r, &o, &fig, &cols, &att),
                     DGM_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "records no 'attention'"));
    dgm_run_close(r);
}
END_TEST

START_TEST(cli_writes_figures_and_refuses)
{
    char args[4200], out[8192], err[8192];
    snprintf(args, sizeof args,
             "explore '%s/vae2' --steps 4 --pairs 2 --examples 1 --map-n 30 "
             "--neighbours 2 -k 3 --train-n 40 --classifier '%s/cls'",
             root, root);
    const char *env = NULL; /* the build's plugins */
    int st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    static const char *files[] = {"traversal_0.png",  "interp_linear.png",
                                  "interp_slerp.png", "latent_map.png",
                                  "manifold.png",     "neighbours.png"};
    char p[1400];
    snprintf(p, sizeof p, "%s/vae2/explore/explore.html", root);
    char *html = tc_slurp(p, NULL, true);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        ck_assert_msg(strstr(out, files[i]), "%s not listed: %s", files[i],
                      out);
        char fig[128];
        snprintf(fig, sizeof fig, "<figure id=\"%.*s\"",
                 (int)(strlen(files[i]) - 4), files[i]);
        ck_assert_msg(strstr(html, fig), "%s not in the page", fig);
    }
    /* self-contained: every image is a data: URI */
    int imgs = 0;
    for (const char *s = html; (s = strstr(s, "<img ")); s++, imgs++)
        ck_assert_ptr_nonnull(strstr(s, "src=\"data:image/png;base64,iVBOR"));
    ck_assert_int_eq(imgs, 6);
    ck_assert_ptr_nonnull(strstr(html, "classifier run"));
    free(html);

    /* the report embeds a run's figures when it has some, only then */
    snprintf(args, sizeof args,
             "report '%s/vae2' '%s/gan_uncond' -o '%s/r.html'", root, root,
             root);
    st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    snprintf(p, sizeof p, "%s/r.html", root);
    html = tc_slurp(p, NULL, true);
    const char *ex = strstr(html, "<h2>Explore</h2>");
    ck_assert_ptr_nonnull(ex);
    ck_assert_ptr_null(strstr(ex + 1, "<h2>Explore</h2>"));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char fig[128];
        snprintf(fig, sizeof fig, "explore/%s</span>", files[i]);
        ck_assert_msg(strstr(ex, fig), "%s not in the report", fig);
    }
    ck_assert_ptr_nonnull(strstr(ex, "src=\"data:image/png;base64,iVBOR"));
    ck_assert_ptr_null(strstr(ex, "gan_uncond/explore"));
    free(html);
    snprintf(args, sizeof args, "report '%s/gan_uncond' -o '%s/r2.html'", root,
             root);
    ck_assert_int_eq(tc_cli(env, args, out, sizeof out, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/r2.html", root);
    html = tc_slurp(p, NULL, true);
    ck_assert_ptr_null(strstr(html, "<h2>Explore</h2>"));
    free(html);

    /* what does not apply: skipped with the reason, or refused alone */
    snprintf(args, sizeof args,
             "explore '%s/gan' --steps 3 --pairs 1 "
             "--examples 1 --neighbours 1 -k 1 --train-n 8",
             root);
    st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    ck_assert_msg(strstr(out, "skipped latent map: model 'gan' has no "
                              "encoder"),
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "interp_classes.png"));
    snprintf(args, sizeof args, "explore '%s/cls' --what traversals", root);
    st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(err, "model 'classifier' has no latent space to "
                              "explore"),
                  "%s", err);
    /* a char transformer: only attention applies, with a prompt */
    snprintf(args, sizeof args, "explore '%s/tf' --prompt 'the lazy'", root);
    st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    ck_assert_msg(strstr(out, "skipped traversals: model 'char_transformer' "
                              "has no latent space"),
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "attention.png"));
    snprintf(args, sizeof args, "explore '%s/tf' --what attention", root);
    st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(err, "give --prompt TEXT"));
    snprintf(args, sizeof args, "explore '%s/vae2' --what maps", root);
    st = tc_cli(env, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(st, 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown figure 'maps'"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("explore");
    TCase *tc = tq_case(s, "figures", traversal_of_ignored_dim_is_constant,
                        interpolation_ends_are_reconstructions,
                        latent_map_of_2d_latent_is_the_means,
                        training_image_is_its_own_nearest_neighbour,
                        gan_traversal_and_class_rows, attention_rows_sum_to_one,
                        cli_writes_figures_and_refuses);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 300);
    return s;
}

int main(void)
{
    return tq_run(suite(), "installed", false);
}
