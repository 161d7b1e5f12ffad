/* test_explore_text.c - `dgm explore` on text models, on tiny runs trained
 * once for the suite (a sequence VAE and a char-RNN on a repeated
 * sentence): a homotopy's ends are the greedy decodes of the two
 * prompts' posterior means and its points the line between them, the
 * greedy decode is what drawing at a vanishing temperature gives, a seed
 * repeats a sampled homotopy, the default ends are test windows 0 and 1,
 * and the CLI writes homotopy.txt into explore.html while refusing, with
 * the reason, what does not apply (image figures of a text model, a
 * homotopy of a char-RNN). */
#include <check.h>
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
#include "shipped_registry.h"
#include "train.h"

static char root[1024];

#define T 16

static const char seq_vae_yaml[] =
    "name: sv\n"
    "seed: 1\n"
    "threads: 1\n"
    "data: {plugin: text, path: '%s/corpus.txt', seq_len: 16, batch_size: 8, "
    "val_fraction: 0.2}\n"
    "model: {plugin: seq_vae, cell: gru, embedding: 8, hidden: 16, latent: 4, "
    "word_dropout: 0.3}\n"
    "objective:\n"
    "  - {loss: cross_entropy, inputs: [logits, target]}\n"
    "  - {loss: gaussian_kl, inputs: [mu, logvar], weight: 0.0625}\n"
    "optimizer: {plugin: adam, lr: 1.0e-2}\n"
    "train: {steps: 30, log_every: 10}\n";

static const char char_rnn_yaml[] =
    "name: cr\n"
    "seed: 1\n"
    "threads: 1\n"
    "data: {plugin: text, path: '%s/corpus.txt', seq_len: 16, batch_size: 8, "
    "val_fraction: 0.2}\n"
    "model: {plugin: char_rnn, cell: gru, embedding: 8, hidden: 16}\n"
    "optimizer: {plugin: adam, lr: 1.0e-2}\n"
    "train: {steps: 4, log_every: 2}\n";

static void path_of(char *out, size_t n, const char *what)
{
    snprintf(out, n, "%s/%s", root, what);
}

static void train(const char *fmt, const char *name)
{
    char y[1200], d[1200], text[2048];
    snprintf(text, sizeof text, fmt, root);
    snprintf(y, sizeof y, "%s/%s.yaml", root, name);
    FILE *f = fopen(y, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
    path_of(d, sizeof d, name);
    ck_assert_msg(tc_train(tc_reg, y, d, NULL, 0) == 0, "%s: %s", name,
                  dgm_last_error());
}

static void suite_setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/explore-text-%ld", t ? t : "/tmp",
             (long)getpid());
    char p[1200];
    ck_assert_int_eq(dgm_mkdirs(root), 0);
    path_of(p, sizeof p, "corpus.txt");
    FILE *f = fopen(p, "w");
    ck_assert(f != NULL);
    for (int i = 0; i < 40; i++)
        fputs("the quick brown fox jumps over the lazy dog. ", f);
    fclose(f);
    tc_shipped_setup();
    train(seq_vae_yaml, "sv");
    train(char_rnn_yaml, "cr");
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

/* The posterior mean [1, Z] of text, through the public API alone. */
static dgm_tensor *mean_of(dgm_run *r, const char *text)
{
    int64_t len = (int64_t)strlen(text);
    int32_t ids[T];
    ck_assert_int_le(len, T);
    ck_assert_int_eq(dgm_run_text_ids(r, text, ids), 0);
    dgm_tensor *x = dgm_tensor_new(DGM_I64, 2, (int64_t[]){1, len}), *m;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)x->data)[i] = ids[i];
    ck_assert_msg(dgm_run_encode(r, x, &m, NULL) == 0, "%s", dgm_last_error());
    dgm_tensor_free(x);
    return m;
}

/* Row i of a [n, k] tensor equals row j of b [m, k], bit for bit. */
static bool same_row(const dgm_tensor *a, int64_t i, const dgm_tensor *b,
                     int64_t j)
{
    ck_assert_int_eq(a->shape[1], b->shape[1]);
    size_t row = dgm_dtype_size(a->dtype) * (size_t)a->shape[1];
    return !memcmp((const char *)a->data + (size_t)i * row,
                   (const char *)b->data + (size_t)j * row, row);
}

START_TEST(homotopy_ends_are_greedy_decodes)
{
    dgm_run *r = open_run("sv");
    dgm__explore_opts o = dgm__explore_defaults();
    o.steps = 5;
    o.prompts[0] = "the quick brown";
    o.prompts[1] = "lazy dog. the";
    dgm__homotopy h;
    ck_assert_msg(dgm__explore_homotopy(r, &o, &h) == 0, "%s",
                  dgm_last_error());
    ck_assert_int_eq(h.steps, 5);
    ck_assert_int_eq(h.len, T);
    ck_assert(!h.from_test);
    ck_assert_str_eq(h.text[0], "the quick brown");
    ck_assert_int_eq(h.z->shape[0], 5);
    ck_assert_int_eq(h.z->shape[1], 4);
    ck_assert_int_eq(h.greedy->shape[0], 5);
    ck_assert_int_eq(h.greedy->shape[1], T);
    ck_assert_int_eq(h.greedy->dtype, DGM_I64);
    ck_assert_ptr_null(h.sampled);

    /* the ends: each prompt's mean, decoded greedily */
    dgm_tensor *a = mean_of(r, o.prompts[0]), *b = mean_of(r, o.prompts[1]);
    dgm_tensor *ra, *rb;
    ck_assert_int_eq(dgm_run_decode(r, a, NULL, &ra), 0);
    ck_assert_int_eq(dgm_run_decode(r, b, NULL, &rb), 0);
    ck_assert(same_row(h.z, 0, a, 0));
    ck_assert(same_row(h.z, 4, b, 0));
    ck_assert(same_row(h.greedy, 0, ra, 0));
    ck_assert(same_row(h.greedy, 4, rb, 0));
    ck_assert(!same_row(a, 0, b, 0)); /* two prompts, two means */
    /* the points: (1 - a) A + a B at a = i / 4 */
    const float *za = a->data, *zb = b->data, *z = h.z->data;
    for (int i = 0; i < 5; i++)
        for (int d = 0; d < 4; d++)
            ck_assert_float_eq_tol(
                z[i * 4 + d], (1 - i / 4.0) * za[d] + i / 4.0 * zb[d], 1e-6);
    /* greedy is the most likely byte: drawing at a vanishing temperature
     * gives the same windows */
    dgm_tensor *cold;
    ck_assert_int_eq(dgm_run_decode_sampled(r, h.z, 1e-4f, 3, &cold), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(same_row(cold, i, h.greedy, i), "row %d", i);
    /* decoded tokens are bytes of the vocabulary: no unknown id */
    for (int64_t i = 0; i < 5 * T; i++)
        ck_assert_int_lt(((const int64_t *)h.greedy->data)[i],
                         dgm_run_data_info(r)->n_classes);

    /* sampled: a seed repeats it */
    dgm__homotopy_free(&h);
    o.temperature = 1.0f;
    o.seed = 7;
    dgm__homotopy h2, h3;
    ck_assert_int_eq(dgm__explore_homotopy(r, &o, &h2), 0);
    ck_assert_int_eq(dgm__explore_homotopy(r, &o, &h3), 0);
    ck_assert_ptr_nonnull(h2.sampled);
    ck_assert_int_eq(h2.sampled->shape[0], 5);
    for (int i = 0; i < 5; i++)
        ck_assert(same_row(h2.sampled, i, h3.sampled, i));
    dgm__homotopy_free(&h2);
    dgm__homotopy_free(&h3);

    /* a prompt longer than the window is refused, naming it */
    o.prompts[1] = "the quick brown fox jumps";
    ck_assert_int_eq(dgm__explore_homotopy(r, &o, &h), DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "window holds 1 to 16"));
    for (dgm_tensor **t = (dgm_tensor *[]){a, b, ra, rb, cold, NULL}; *t; t++)
        dgm_tensor_free(*t);
    dgm_run_close(r);
}
END_TEST

START_TEST(homotopy_defaults_to_test_windows)
{
    dgm_run *r = open_run("sv");
    dgm__explore_opts o = dgm__explore_defaults();
    o.steps = 3;
    dgm__homotopy h;
    ck_assert_int_eq(dgm__explore_homotopy(r, &o, &h), 0);
    ck_assert(h.from_test);
    dgm_tensor *x, *m, *rec;
    ck_assert_int_eq(dgm_run_examples(r, DGM_SPLIT_TEST, 0, 2, &x, NULL), 0);
    ck_assert_int_eq(dgm_run_encode(r, x, &m, NULL), 0);
    ck_assert_int_eq(dgm_run_decode(r, m, NULL, &rec), 0);
    char text[T + 1];
    for (int end = 0; end < 2; end++) {
        ck_assert_int_eq(
            dgm_run_ids_text(r, (const int64_t *)x->data + end * T, T, text),
            0);
        ck_assert_str_eq(h.text[end], text);
        ck_assert(same_row(h.z, end * 2, m, end));
        ck_assert(same_row(h.greedy, end * 2, rec, end));
    }
    dgm__homotopy_free(&h);
    dgm_tensor_free(x);
    dgm_tensor_free(m);
    dgm_tensor_free(rec);
    dgm_run_close(r);
}
END_TEST

START_TEST(cli_writes_homotopy_and_refuses)
{
    char args[4200], out[8192], err[8192], p[1400];
    snprintf(args, sizeof args,
             "explore '%s/sv' --what homotopy --prompts 'the quick' 'lazy "
             "dog' --steps 4 --temperature 1 --seed 2",
             root);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    ck_assert_ptr_nonnull(strstr(out, "sv/explore/homotopy.txt"));
    snprintf(p, sizeof p, "%s/sv/explore/homotopy.txt", root);
    char *txt = tc_slurp(p, NULL, true);
    ck_assert_msg(strstr(txt, "A: the quick\nB: lazy dog\n"), "%s", txt);
    /* four points greedy, four sampled: a = 0, 1/3, 2/3, 1 */
    static const char *at[] = {"\n0.000  ", "\n0.333  ", "\n0.667  ",
                               "\n1.000  "};
    const char *sampled = strstr(txt, "sampled at temperature 1, seed 2:");
    ck_assert_ptr_nonnull(sampled);
    for (int i = 0; i < 4; i++) {
        const char *g = strstr(txt, at[i]);
        ck_assert_msg(g && g < sampled, "%s", at[i]);
        ck_assert_ptr_nonnull(strstr(sampled, at[i]));
    }
    ck_assert_ptr_null(strstr(txt, "\n0.250  "));
    /* the first greedy line is the decode of the first prompt's mean */
    dgm_run *r = open_run("sv");
    dgm_tensor *a = mean_of(r, "the quick"), *ra;
    ck_assert_int_eq(dgm_run_decode(r, a, NULL, &ra), 0);
    char text[T + 1], line[T + 16];
    ck_assert_int_eq(dgm_run_ids_text(r, ra->data, T, text), 0);
    snprintf(line, sizeof line, "\n0.000  %s\n", text);
    ck_assert_msg(strstr(txt, line), "%s not in %s", line, txt);
    dgm_tensor_free(a);
    dgm_tensor_free(ra);
    dgm_run_close(r);
    free(txt);
    snprintf(p, sizeof p, "%s/sv/explore/explore.html", root);
    char *html = tc_slurp(p, NULL, true);
    ck_assert_ptr_nonnull(
        strstr(html, "<figure id=\"homotopy\"><pre>A: the quick\nB: lazy dog"));
    ck_assert_ptr_nonnull(strstr(html, "<b>homotopy.txt</b>: homotopy"));
    free(html);
    /* the report shows it too, with the run's other explore figures */
    snprintf(args, sizeof args, "report '%s/sv' -o '%s/r.html'", root, root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    snprintf(p, sizeof p, "%s/r.html", root);
    html = tc_slurp(p, NULL, true);
    const char *ex = strstr(html, "<h2>Explore</h2>");
    ck_assert_msg(ex != NULL, "no Explore section in the report");
    ck_assert_ptr_nonnull(
        strstr(ex, "<figure id=\"homotopy\"><pre>A: the quick\nB: lazy dog"));
    ck_assert_ptr_nonnull(strstr(ex, "<b>homotopy.txt</b>: "));
    free(html);

    /* every family: the image ones are skipped with the reason */
    snprintf(args, sizeof args, "explore '%s/sv' --steps 3 --map-n 20", root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    ck_assert_msg(strstr(out, "skipped traversals: model 'seq_vae' makes "
                              "text, and traversals are drawn as images"),
                  "%s", out);
    ck_assert_msg(strstr(out, "skipped interpolations: model 'seq_vae' makes "
                              "text"),
                  "%s", out);
    ck_assert_msg(strstr(out, "skipped nearest neighbours: model 'seq_vae' "
                              "makes text"),
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "homotopy.txt"));

    /* a char-RNN has no latent space: refused alone, skipped otherwise */
    snprintf(args, sizeof args, "explore '%s/cr' --what homotopy", root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(err, "model 'char_rnn' has no latent space to walk "
                              "between two texts"),
                  "%s", err);
    snprintf(args, sizeof args, "explore '%s/cr'", root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(out, "skipped homotopy: model 'char_rnn' has no "
                              "latent space"),
                  "%s", out);
    ck_assert_msg(strstr(err, "no figure applies to model 'char_rnn'"), "%s",
                  err);
    /* --prompts takes two texts */
    snprintf(args, sizeof args, "explore '%s/sv' --prompts 'the'", root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(st, 2);
    ck_assert_ptr_nonnull(strstr(err, "--prompts takes two non-empty texts"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("explore_text");
    TCase *tc = tq_case(s, "homotopy", homotopy_ends_are_greedy_decodes,
                        homotopy_defaults_to_test_windows,
                        cli_writes_homotopy_and_refuses);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 300);
    return s;
}

int main(void)
{
    return tq_run(suite(), "installed", false);
}
