/* test_robust.c - robustness and generalization figures: a metric's
 * `corrupt:` list and `generalization_gap:` run through the dgm
 * executable on a tiny VAE. A corruption of strength 0
 * gives the clean figure exactly (and a drop of 0), a real one a positive
 * drop, the metrics after it are those of a run without corruptions, a
 * gap's training figure is the metric run on the training subset, dgm
 * eval on the run gives the figures of its summary.json (and evaluates
 * corruptions and gaps set with --set), and bad values are refused at
 * their place. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "cli.h"
#include "files.h"
#include "quadrants.h"

static char root[1024];
static char out[1 << 16], err[1 << 16];

static const char tiny_yaml[] =
    "name: tiny\n"
    "seed: 3\n"
    "threads: 1\n"
    "data: {plugin: idx, path: %s/data, train_images: train-img, "
    "train_labels: train-lab, test_images: test-img, test_labels: test-lab, "
    "batch_size: 32}\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 4\n"
    "  encoder: {plugin: mlp, hidden: [32]}\n"
    "  decoder: {plugin: mlp, hidden: [32]}\n"
    "optimizer: {plugin: adam, lr: 0.01}\n"
    "train: {steps: 6, log_every: 3, samples: 0}\n";

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/robust-%ld", t ? t : "/tmp",
             (long)getpid());
    char cmd[1400], d[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/data'", root);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(d, sizeof d, "%s/data", root);
    ck_assert_int_eq(tq_write_bands(d, "train-img", "train-lab", 128, 7), 0);
    ck_assert_int_eq(tq_write_bands(d, "test-img", "test-lab", 64, 99), 0);
    char y[1200], text[2048];
    snprintf(y, sizeof y, "%s/tiny.yaml", root);
    snprintf(text, sizeof text, tiny_yaml, root);
    FILE *f = fopen(y, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* Train tiny.yaml with `metrics=<metrics>` into root/<tag>; its "final"
 * figures and "better" (new references). */
static json_t *run(const char *tag, const char *metrics, json_t **better)
{
    char args[4096];
    snprintf(args, sizeof args,
             "run %s/tiny.yaml --quiet --run-dir %s/%s 'metrics=%s'", root,
             root, tag, metrics);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %.2000s", st, err);
    char p[1400];
    snprintf(p, sizeof p, "%s/%s/summary.json", root, tag);
    json_error_t e;
    json_t *s = json_load_file(p, 0, &e);
    ck_assert_msg(s != NULL, "%s: %s", p, e.text);
    json_t *fin = json_incref(json_object_get(s, "final"));
    *better = json_incref(json_object_get(s, "better"));
    json_decref(s);
    ck_assert_ptr_nonnull(fin);
    return fin;
}

static double fig(const json_t *fin, const char *name)
{
    const json_t *v = json_object_get(fin, name);
    ck_assert_msg(json_is_number(v), "no figure %s", name);
    return json_number_value(v);
}

/* summary.json holds figures to 9 significant digits: a drop computed
 * from two of them agrees with the recorded one to about that. */
static bool close_to(double a, double b)
{
    return fabs(a - b) <= 1e-6 * (fabs(a) + fabs(b) + 1.0);
}

/* `dgm <args>` (an eval with --json): its figures. */
static json_t *eval_json(const char *args)
{
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%s: exit %d: %.2000s", args, st, err);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s in %.2000s", args, e.text, out);
    return j;
}

/* dgm eval of run root/<tag> (default seed) prints the figures of its
 * summary.json's "final", in the same order, to the 9 digits stored
 * there; a different seed moves a figure that draws (when it has one). */
static void expect_eval_is_final(const char *tag, const json_t *fin,
                                 const char *draws)
{
    char args[2048];
    snprintf(args, sizeof args, "eval %s/%s --json", root, tag);
    json_t *ev = eval_json(args);
    ck_assert_int_eq(json_object_size(ev), json_object_size(fin));
    void *it = json_object_iter((json_t *)fin), *jt = json_object_iter(ev);
    for (; it && jt; it = json_object_iter_next((json_t *)fin, it),
                     jt = json_object_iter_next(ev, jt)) {
        const char *k = json_object_iter_key(it);
        ck_assert_str_eq(json_object_iter_key(jt), k);
        double a = json_number_value(json_object_iter_value(it)),
               b = json_number_value(json_object_iter_value(jt));
        ck_assert_msg(fabs(a - b) <= 1e-8 * fabs(a) + 1e-12,
                      "%s: run %.17g, eval %.17g", k, a, b);
    }
    if (draws) {
        snprintf(args, sizeof args, "eval %s/%s --json --seed 1", root, tag);
        json_t *other = eval_json(args);
        ck_assert_msg(fig(other, draws) != fig(ev, draws), "%s %.17g", draws,
                      fig(ev, draws));
        json_decref(other);
    }
    json_decref(ev);
}

START_TEST(strength_zero_is_clean)
{
    /* iwae_nll draws importance samples: its corrupted runs must start
     * from the clean run's draws, and the elbo after it must be the
     * elbo of a run without corruptions. */
    json_t *bc, *bp;
    json_t *c = run("corrupt",
                    "[{plugin: iwae_nll, k: 4, corrupt: [{noise: 0}, "
                    "{occlude: 0}, {rotate: 0}, {blur: 0}, {noise: 0.5}, "
                    "{occlude: 4}, {blur: 1.5}]}, {plugin: elbo}]",
                    &bc);
    json_t *p = run("plain", "[{plugin: iwae_nll, k: 4}, {plugin: elbo}]", &bp);
    const char *zero[] = {"noise=0", "occlude=0", "rotate=0", "blur=0"};
    double clean = fig(c, "iwae_nll");
    ck_assert_msg(clean == fig(p, "iwae_nll"), "%.17g vs %.17g", clean,
                  fig(p, "iwae_nll"));
    ck_assert(fig(c, "neg_elbo") == fig(p, "neg_elbo"));
    char name[128];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "iwae_nll@%s", zero[i]);
        ck_assert_msg(fig(c, name) == clean, "%s %.17g, clean %.17g", name,
                      fig(c, name), clean);
        snprintf(name, sizeof name, "iwae_nll@%s/drop", zero[i]);
        ck_assert(fig(c, name) == 0.0);
    }
    /* Real corruptions: the figure and drop = corrupted - clean (nll:
     * lower is better), recorded as lower-is-better. */
    const char *real[] = {"noise=0.5", "occlude=4", "blur=1.5"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "iwae_nll@%s", real[i]);
        double v = fig(c, name);
        ck_assert_str_eq(json_string_value(json_object_get(bc, name)), "lower");
        snprintf(name, sizeof name, "iwae_nll@%s/drop", real[i]);
        ck_assert_msg(close_to(fig(c, name), v - clean) && v != clean,
                      "%s %g %g", name, v, clean);
        ck_assert_str_eq(json_string_value(json_object_get(bc, name)), "lower");
    }
    /* Noise of std 0.5 on 8x8 bands is a large disturbance. */
    ck_assert_msg(fig(c, "iwae_nll@noise=0.5/drop") > 0, "%g",
                  fig(c, "iwae_nll@noise=0.5/drop"));
    ck_assert_ptr_null(json_object_get(c, "neg_elbo@noise=0"));
    /* dgm compare reads them like any figure, with the recorded
     * direction */
    char args[2048];
    snprintf(args, sizeof args,
             "compare %s/corrupt --metric 'iwae_nll@noise=0.5/drop' --format "
             "json",
             root);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    json_t *cmp = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(cmp);
    json_t *m0 = json_array_get(json_object_get(cmp, "metrics"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(m0, "better")), "lower");
    json_t *st0 = json_object_get(
        json_object_get(json_array_get(json_object_get(cmp, "variants"), 0),
                        "metrics"),
        "iwae_nll@noise=0.5/drop");
    ck_assert(close_to(json_real_value(json_object_get(st0, "mean")),
                       fig(c, "iwae_nll@noise=0.5/drop")));
    json_decref(cmp);
    /* dgm eval on the run (its seed by default) gives the run's final
     * figures, variants included, in the same order */
    expect_eval_is_final("corrupt", c, "iwae_nll@noise=0.5");
    json_decref(c);
    json_decref(p);
    json_decref(bc);
    json_decref(bp);
}
END_TEST

/* A higher-is-better figure's drop is clean - corrupted. */
START_TEST(drop_of_higher_is_better)
{
    json_t *b;
    json_t *c =
        run("hb", "[{plugin: elbo, corrupt: [{rotate: 90}, {jpeg: 10}]}]", &b);
    /* JPEG at quality 10 changes 8x8 bands, so the figure moves. */
    ck_assert(isfinite(fig(c, "elbo@jpeg=10")) &&
              fig(c, "elbo@jpeg=10") != fig(c, "elbo"));
    ck_assert_str_eq(json_string_value(json_object_get(b, "elbo")), "higher");
    ck_assert(close_to(fig(c, "elbo@rotate=90/drop"),
                       fig(c, "elbo") - fig(c, "elbo@rotate=90")));
    ck_assert(close_to(fig(c, "neg_elbo@rotate=90/drop"),
                       fig(c, "neg_elbo@rotate=90") - fig(c, "neg_elbo")));
    ck_assert(fig(c, "elbo@rotate=90/drop") > 0);
    json_decref(c);
    json_decref(b);
}
END_TEST

/* generalization_gap: N reports F@train, the metric run on its own with
 * split: train and max_examples: N, and F@train/gap = train - test. */
START_TEST(gap_is_train_minus_test)
{
    /* Each metric alone, so the reference run's draws start where the
     * training-subset run's do. */
    static const struct {
        const char *metric, *fig[3];
    } cases[] = {
        {"plugin: iwae_nll, k: 4", {"iwae_nll", NULL, NULL}},
        {"plugin: elbo", {"neg_elbo", "elbo", "neg_elbo/gaussian_kl"}},
    };
    for (int c = 0; c < 2; c++) {
        char m[256], tag[32];
        json_t *bg, *bt;
        snprintf(m, sizeof m, "[{%s, generalization_gap: 48}]",
                 cases[c].metric);
        snprintf(tag, sizeof tag, "gap%d", c);
        json_t *g = run(tag, m, &bg);
        expect_eval_is_final(tag, g, c == 0 ? "iwae_nll@train" : NULL);
        snprintf(m, sizeof m, "[{%s, split: train, max_examples: 48}]",
                 cases[c].metric);
        snprintf(tag, sizeof tag, "train%d", c);
        json_t *t = run(tag, m, &bt);
        for (int i = 0; i < 3 && cases[c].fig[i]; i++) {
            const char *f = cases[c].fig[i];
            char name[128];
            snprintf(name, sizeof name, "%s@train", f);
            ck_assert_msg(fig(g, name) == fig(t, f), "%s %.17g vs %.17g", name,
                          fig(g, name), fig(t, f));
            ck_assert_str_eq(json_string_value(json_object_get(bg, name)),
                             json_string_value(json_object_get(bg, f)));
            snprintf(name, sizeof name, "%s@train/gap", f);
            ck_assert_msg(close_to(fig(g, name), fig(t, f) - fig(g, f)), "%s",
                          name);
            ck_assert_str_eq(json_string_value(json_object_get(bg, name)),
                             "none");
            ck_assert(fig(g, f) != fig(t, f));
        }
        json_decref(g);
        json_decref(t);
        json_decref(bg);
        json_decref(bt);
    }
    /* dgm eval --set adds corruptions and a gap to the metrics it names:
     * the same figures as those of the metric run on the training subset
     * with the same seed */
    char args[2048];
    snprintf(args, sizeof args,
             "eval %s/train1 --metric elbo --set 'elbo.corrupt=[{noise: 0}, "
             "{rotate: 90}]' --set generalization_gap=48 --seed 5 --json",
             root);
    json_t *ev = eval_json(args);
    snprintf(args, sizeof args,
             "eval %s/train1 --metric elbo --set split=train --set "
             "max_examples=48 --seed 5 --json",
             root);
    json_t *tr = eval_json(args);
    ck_assert(fig(ev, "neg_elbo@noise=0") == fig(ev, "neg_elbo"));
    ck_assert(fig(ev, "neg_elbo@noise=0/drop") == 0);
    ck_assert(close_to(fig(ev, "neg_elbo@rotate=90/drop"),
                       fig(ev, "neg_elbo@rotate=90") - fig(ev, "neg_elbo")));
    ck_assert(fig(ev, "neg_elbo@rotate=90/drop") > 0);
    ck_assert_msg(fig(ev, "neg_elbo@train") == fig(tr, "neg_elbo"),
                  "%.17g vs %.17g", fig(ev, "neg_elbo@train"),
                  fig(tr, "neg_elbo"));
    ck_assert(
        close_to(fig(ev, "elbo@train/gap"), fig(tr, "elbo") - fig(ev, "elbo")));
    json_decref(ev);
    json_decref(tr);
    /* and checks them as dgm run does, naming the key */
    snprintf(args, sizeof args,
             "eval %s/train1 --metric elbo --set 'corrupt=[{nois: 0.1}]'",
             root);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 1 && strstr(err, "metrics[0].corrupt[0].nois") &&
                      strstr(err, "did you mean 'noise'"),
                  "exit %d: %s", st, err);
    snprintf(args, sizeof args,
             "eval %s/train1 --metric elbo --set generalization_gap=0", root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 1 && strstr(err, "metrics[0].generalization_gap") &&
                      strstr(err, ">= 1"),
                  "exit %d: %s", st, err);
    /* bad values are refused at the key */
    static const char *bad[][2] = {
        {"[{plugin: elbo, generalization_gap: 0}]", ">= 1"},
        {"[{plugin: elbo, generalization_gap: x}]", "integer"},
        {"[{plugin: fid, classifier: nowhere, generalization_gap: 8}]",
         "no `split: train`"},
    };
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "config %s/tiny.yaml 'metrics=%s'", root,
                 bad[i][0]);
        st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
        ck_assert_msg(st == 2 && strstr(err, "metrics[0].generalization_gap") &&
                          strstr(err, bad[i][1]),
                      "%s: exit %d: %s", bad[i][0], st, err);
    }
}
END_TEST

/* Bad lists: refused by dgm config, naming the entry. */
START_TEST(bad_lists_named)
{
    static const struct {
        const char *list, *where, *what;
    } cases[] = {
        {"[{nois: 0.1}]", "metrics[0].corrupt[0].nois", "did you mean 'noise'"},
        {"[{rotate: 400}]", "metrics[0].corrupt[0].rotate", "outside [0, 360]"},
        {"[{jpeg: 0}]", "metrics[0].corrupt[0].jpeg", "outside [1, 100]"},
        {"[{noise: 0.1}, {noise: 0.1}]", "metrics[0].corrupt[1].noise",
         "twice"},
        {"[{noise: 0.1, blur: 1}]", "metrics[0].corrupt[0]", "one key"},
        {"{noise: 0.1}", "metrics[0].corrupt", "a list"},
        {"[{noise: abc}]", "metrics[0].corrupt[0].noise", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[2048];
        snprintf(args, sizeof args,
                 "config %s/tiny.yaml 'metrics=[{plugin: elbo, corrupt: "
                 "%s}]'",
                 root, cases[i].list);
        int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
        ck_assert_msg(st == 2 && strstr(err, cases[i].where) &&
                          strstr(err, cases[i].what),
                      "%s: exit %d: %s", cases[i].list, st, err);
    }
}
END_TEST

static Suite *robust_suite(void)
{
    Suite *s = suite_create("robust");
    TCase *tc =
        tq_case(s, "corrupt", strength_zero_is_clean, drop_of_higher_is_better,
                bad_lists_named, gap_is_train_minus_test);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    return s;
}

int main(void)
{
    return tq_run(robust_suite(), "installed", false);
}
