/* test_run.c - the whole pipeline through the dgm executable: a tiny VAE
 * on generated IDX data trains, checkpoints, resumes bit-identically,
 * samples, refuses bad configs and stops on divergence. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/io.h"
#include "files.h"
#include "quadrants.h"
#include "st_diff.h"

static char root[1024]; /* this process's scratch folder */

static void mkdir_p(const char *p)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    return tc_slurp(path, NULL, false);
}

static const char tiny_yaml[] =
    "name: tiny\n"
    "seed: 1\n"
    "threads: 1\n"
    "data:\n"
    "  plugin: idx\n"
    "  path: %s/data\n"
    "  train_images: train-img\n"
    "  train_labels: train-lab\n"
    "  test_images: test-img\n"
    "  test_labels: test-lab\n"
    "  batch_size: 32\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 4\n"
    "  encoder: {plugin: mlp, hidden: [32]}\n"
    "  decoder: {plugin: mlp, hidden: [32]}\n"
    "optimizer: {plugin: adam, lr: 0.01}\n"
    "train: {epochs: 4, log_every: 1, samples: 16}\n"
    "metrics: [{plugin: elbo}, {plugin: iwae_nll, k: 8}]\n";

/* Run the CLI; returns its exit status and puts stdout+stderr in out. */
static int dgm_cli(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int dgm_cli(char *out, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", DGM_CLI, args);
    FILE *p = popen(cmd, "r");
    ck_assert(p != NULL);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/run-%ld", t ? t : "/tmp",
             (long)getpid());
    mkdir_p(root);
    ck_assert_int_eq(tq_write_data(root, 256, 64, true), 0);
    char y[1200], text[4096];
    snprintf(y, sizeof y, "%s/tiny.yaml", root);
    snprintf(text, sizeof text, tiny_yaml, root);
    write_text(y, text);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static json_t *load_json(const char *dir, const char *file)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    json_error_t err;
    json_t *j = json_load_file(p, 0, &err);
    ck_assert_msg(j != NULL, "%s: %s", p, err.text);
    return j;
}

static char out[1 << 16];

START_TEST(trains_and_writes_run_dir)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/a", root);
    int rc = dgm_cli(out, sizeof out, "run %s/tiny.yaml --run-dir %s --quiet",
                     root, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    json_t *s = load_json(dir, "summary.json");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                     "completed");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "steps")), 32);
    json_t *fin = json_object_get(s, "final");
    double elbo = json_real_value(json_object_get(fin, "neg_elbo"));
    double iwae = json_real_value(json_object_get(fin, "iwae_nll"));
    ck_assert_msg(elbo > 0 && iwae > 0, "neg_elbo %g iwae %g", elbo, iwae);
    /* The importance-weighted bound is the tighter one. */
    ck_assert_msg(iwae < elbo + 0.5, "iwae %g vs neg_elbo %g", iwae, elbo);
    json_decref(s);

    /* The loss goes down: mean of the first 4 steps vs the last 4. */
    char p[1400];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    ck_assert(f != NULL);
    char line[4096];
    double loss[64];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < 64) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert(j != NULL);
        json_t *l = json_object_get(j, "loss");
        if (l)
            loss[n++] = json_real_value(l);
        json_decref(j);
    }
    fclose(f);
    ck_assert_int_eq(n, 32);
    double first = (loss[0] + loss[1] + loss[2] + loss[3]) / 4;
    double last = (loss[28] + loss[29] + loss[30] + loss[31]) / 4;
    ck_assert_msg(last < 0.8 * first, "loss %g -> %g", first, last);

    struct stat st;
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", dir);
    ck_assert_int_eq(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/samples/samples_000032.png", dir);
    ck_assert_msg(stat(p, &st) == 0, "no %s", p);
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    char *cfg = read_text(p);
    ck_assert_ptr_nonnull(strstr(cfg, "bernoulli_nll"));
    free(cfg);
}
END_TEST

START_TEST(resume_is_bit_identical)
{
    char a[1200], b[1200], pa[1400], pb[1400];
    snprintf(a, sizeof a, "%s/full", root);
    snprintf(b, sizeof b, "%s/split", root);
    int rc = dgm_cli(out, sizeof out, "run %s/tiny.yaml --run-dir %s --quiet",
                     root, a);
    ck_assert_msg(rc == 0, "%s", out);
    rc = dgm_cli(out, sizeof out,
                 "run %s/tiny.yaml --run-dir %s --quiet --stop-after 13", root,
                 b);
    ck_assert_msg(rc == 0, "%s", out);
    json_t *s = load_json(b, "summary.json");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                     "stopped");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "steps")), 13);
    json_decref(s);
    rc = dgm_cli(out, sizeof out, "run --resume %s --quiet", b);
    ck_assert_msg(rc == 0, "%s", out);
    s = load_json(b, "summary.json");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                     "completed");
    json_decref(s);
    snprintf(pa, sizeof pa, "%s/checkpoints/last.safetensors", a);
    snprintf(pb, sizeof pb, "%s/checkpoints/last.safetensors", b);
    tq_assert_same_checkpoint(pa, pb, 8);
}
END_TEST

START_TEST(checkpoint_read_by_python)
{
    char a[1200], p[1400];
    snprintf(a, sizeof a, "%s/py", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s/tiny.yaml --run-dir %s --quiet train.epochs=1",
                     root, a);
    ck_assert_msg(rc == 0, "%s", out);
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", a);
    /* An independent reader: struct + json + numpy, by the format's
     * documented layout; prints name, shape and the first values. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '\n"
             "import json, struct, sys, numpy as np\n"
             "b = open(sys.argv[1], \"rb\").read()\n"
             "n = struct.unpack(\"<Q\", b[:8])[0]\n"
             "h = json.loads(b[8:8 + n])\n"
             "t = h[\"encoder.fc1.weight\"]\n"
             "s, e = t[\"data_offsets\"]\n"
             "a = np.frombuffer(b[8 + n + s:8 + n + e], \"<f4\")"
             ".reshape(t[\"shape\"])\n"
             "print(t[\"dtype\"], *a.shape)\n"
             "print(*[repr(float(v)) for v in a.ravel()[:6]])\n"
             "print(h[\"__metadata__\"][\"dgm.step\"])' '%s'",
             p);
    FILE *py = popen(cmd, "r");
    ck_assert(py != NULL);
    char dtype[16];
    long rows, cols, step;
    double v[6];
    ck_assert_int_eq(fscanf(py, "%15s %ld %ld", dtype, &rows, &cols), 3);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(fscanf(py, "%lf", &v[i]), 1);
    ck_assert_int_eq(fscanf(py, "%ld", &step), 1);
    ck_assert_int_eq(pclose(py), 0);
    ck_assert_str_eq(dtype, "F32");
    ck_assert_int_eq(rows, 32);
    ck_assert_int_eq(cols, 64);
    ck_assert_int_eq(step, 8);

    dgm_st_file *f;
    dgm_tensor *w;
    ck_assert_int_eq(dgm_st_open(&f, p), 0);
    ck_assert_int_eq(dgm_st_get(f, "encoder.fc1.weight", &w), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_msg((double)((float *)w->data)[i] == v[i],
                      "value %d: %.9g vs %.9g", i, ((float *)w->data)[i],
                      v[i]);
    dgm_st_close(f);
}
END_TEST

START_TEST(nan_loss_stops_run)
{
    char a[1200], p[1400];
    snprintf(a, sizeof a, "%s/nan", root);
    int rc = dgm_cli(
        out, sizeof out,
        "run %s/tiny.yaml --run-dir %s --quiet "
        "'+plugin_path=[\"%s\"]' train.checkpoint_every=2 "
        "'objective=[{loss: bernoulli_nll, inputs: [logits, x]}, "
        "{loss: gaussian_kl, inputs: [mu, logvar]}, "
        "{loss: nan_after, inputs: [mu], after: 5}]'",
        root, a, DGM_TEST_PLUGIN_DIR);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "step 5") && strstr(out, "nan_after") &&
                      strstr(out, "is nan"),
                  "message: %s", out);
    json_t *s = load_json(a, "summary.json");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                     "diverged");
    json_decref(s);
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", a);
    dgm_st_file *f;
    ck_assert_msg(dgm_st_open(&f, p) == 0, "%s", dgm_last_error());
    ck_assert_str_eq(dgm_st_meta(f, "dgm.step"), "4");
    dgm_st_close(f);
}
END_TEST

/* Rewrite a safetensors file without tensor `drop` (python3, by the
 * format's documented layout). */
static void drop_tensor(const char *path, const char *drop)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '\n"
             "import json, struct, sys\n"
             "p, drop = sys.argv[1], sys.argv[2]\n"
             "b = open(p, \"rb\").read()\n"
             "n = struct.unpack(\"<Q\", b[:8])[0]\n"
             "h = json.loads(b[8:8 + n])\n"
             "del h[drop]\n"
             "out = b\"\"\n"
             "for k, v in h.items():\n"
             "    if k == \"__metadata__\":\n"
             "        continue\n"
             "    s, e = v[\"data_offsets\"]\n"
             "    v[\"data_offsets\"] = [len(out), len(out) + e - s]\n"
             "    out += b[8 + n + s:8 + n + e]\n"
             "hb = json.dumps(h).encode()\n"
             "hb += b\" \" * (-len(hb) %% 8)\n"
             "open(p, \"wb\").write(struct.pack(\"<Q\", len(hb)) + hb + out)' "
             "'%s' '%s'",
             path, drop);
    ck_assert_int_eq(system(cmd), 0);
}

/* A checkpoint that lacks a tensor is refused naming the file once and the
 * missing tensor (the message was once formatted into itself). */
START_TEST(resume_missing_tensor_names_file_once)
{
    char a[1200], p[1400];
    snprintf(a, sizeof a, "%s/miss", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s/tiny.yaml --run-dir %s --quiet --stop-after 3",
                     root, a);
    ck_assert_msg(rc == 0, "%s", out);
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", a);
    drop_tensor(p, "rng.aug");
    rc = dgm_cli(out, sizeof out, "run --resume %s --quiet", a);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    char *first = strstr(out, p);
    ck_assert_msg(first != NULL, "no path in: %s", out);
    ck_assert_msg(strstr(first + strlen(p), p) == NULL, "path named twice: %s",
                  out);
    ck_assert_msg(strstr(out, "no tensor 'rng.aug'") != NULL, "%s", out);
}
END_TEST

/* A metric that fails is recorded the same way whether it fails at
 * eval_every or at the end of training: exit 1, summary.json with
 * status failed, and the error in log.txt. */
START_TEST(failed_eval_is_recorded)
{
    static const struct {
        const char *tag, *over;
    } cases[] = {
        {"final", "'metrics=[{plugin: fail_after, ok: 0}]'"},
        {"every", "'metrics=[{plugin: fail_after, ok: 1}]' "
                  "train.eval_every=8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char a[1200], p[1400];
        snprintf(a, sizeof a, "%s/fail-%s", root, cases[i].tag);
        int rc = dgm_cli(out, sizeof out,
                         "run %s/tiny.yaml --run-dir %s --quiet "
                         "'+plugin_path=[\"%s\"]' %s",
                         root, a, DGM_TEST_PLUGIN_DIR, cases[i].over);
        ck_assert_msg(rc == 1, "%s: exit %d: %s", cases[i].tag, rc, out);
        ck_assert_msg(strstr(out, "fail_after: evaluation") != NULL, "%s: %s",
                      cases[i].tag, out);
        json_t *s = load_json(a, "summary.json");
        ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                         "failed");
        json_decref(s);
        snprintf(p, sizeof p, "%s/log.txt", a);
        char *log = read_text(p);
        ck_assert_ptr_nonnull(log);
        ck_assert_msg(strstr(log, "dgm: failed: ") &&
                          strstr(log, "fail_after: evaluation"),
                      "%s: log.txt:\n%s", cases[i].tag, log);
        free(log);
    }
}
END_TEST

static unsigned be32_at(const unsigned char *b)
{
    return (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 |
           b[3];
}

START_TEST(sample_command_writes_png)
{
    char a[1200], png[1400];
    snprintf(a, sizeof a, "%s/s", root);
    snprintf(png, sizeof png, "%s/grid.png", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s/tiny.yaml --run-dir %s --quiet train.epochs=1",
                     root, a);
    ck_assert_msg(rc == 0, "%s", out);
    rc = dgm_cli(out, sizeof out, "sample %s -n 16 -o %s", a, png);
    ck_assert_msg(rc == 0, "%s", out);
    FILE *f = fopen(png, "rb");
    ck_assert(f != NULL);
    unsigned char h[24];
    ck_assert_int_eq(fread(h, 1, 24, f), 24);
    fclose(f);
    ck_assert(memcmp(h + 1, "PNG", 3) == 0 && memcmp(h + 12, "IHDR", 4) == 0);
    /* 4 x 4 images of 8 x 8 with a 2-pixel border around each. */
    ck_assert_uint_eq(be32_at(h + 16), 4 * 8 + 5 * 2);
    ck_assert_uint_eq(be32_at(h + 20), 4 * 8 + 5 * 2);
}
END_TEST

/* The same pipeline with convolutional blocks swapped in by overrides. */
START_TEST(conv_vae_trains)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/conv", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s/tiny.yaml --run-dir %s --quiet train.epochs=3 "
                     "'model.encoder={plugin: conv_encoder, channels: [8, 16]}' "
                     "'model.decoder={plugin: conv_decoder, channels: [16, 8]}'",
                     root, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    json_t *s = load_json(dir, "summary.json");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                     "completed");
    double first = 0, last = 0;
    char p[1400], line[4096];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    ck_assert(f != NULL);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *l = j ? json_object_get(j, "loss") : NULL;
        if (l) {
            if (n++ == 0)
                first = json_real_value(l);
            last = json_real_value(l);
        }
        json_decref(j);
    }
    fclose(f);
    ck_assert_int_eq(n, 24);
    ck_assert_msg(last < 0.8 * first, "loss %g -> %g", first, last);
    /* batch-norm statistics are buffers, saved with the parameters */
    dgm_st_file *ck;
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", dir);
    ck_assert_int_eq(dgm_st_open(&ck, p), 0);
    int buffers = 0;
    for (int i = 0; i < dgm_st_count(ck); i++)
        buffers += strstr(dgm_st_name_at(ck, i), "running_mean") != NULL;
    ck_assert_int_gt(buffers, 0);
    dgm_st_close(ck);
    json_decref(s);
}
END_TEST

START_TEST(config_errors_name_the_place)
{
    int rc = dgm_cli(out, sizeof out, "config %s/tiny.yaml +model.latnt=3",
                     root);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "model.latnt") && strstr(out, "'latent'"),
                  "%s", out);
    char y[1400], text[4096];
    snprintf(y, sizeof y, "%s/bad.yaml", root);
    snprintf(text, sizeof text, tiny_yaml, root);
    char *at = strstr(text, "plugin: vae");
    memcpy(at, "plugin: vea", 11);
    write_text(y, text);
    rc = dgm_cli(out, sizeof out, "run %s --quiet", y);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "bad.yaml:13:") && strstr(out, "'vea'") &&
                      strstr(out, "not found"),
                  "%s", out);
    /* A data set that cannot be read is a configuration error too. */
    rc = dgm_cli(out, sizeof out, "run %s/tiny.yaml --quiet --runs %s/r "
                 "data.path=%s/nowhere", root, root, root);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "nowhere/train-img") && strstr(out, "idx"),
                  "%s", out);
    /* A block where a model belongs. */
    rc = dgm_cli(out, sizeof out, "config %s/tiny.yaml model.plugin=mlp",
                 root);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "block") && strstr(out, "model"), "%s", out);
}
END_TEST

START_TEST(config_prints_resolved)
{
    int rc = dgm_cli(out, sizeof out, "config %s/tiny.yaml model.latent=7",
                     root);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "latent: 7"));
    ck_assert_ptr_nonnull(strstr(out, "phases:"));
    ck_assert_ptr_nonnull(strstr(out, "gaussian_kl"));
    ck_assert_ptr_nonnull(strstr(out, "beta1")); /* adam's default */
    ck_assert_ptr_nonnull(strstr(out, "log_every: 1"));
}
END_TEST

/* Is folder `dir` absent or empty? */
static bool no_runs_in(const char *dir)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' 2>/dev/null)\"", dir);
    return system(cmd) == 0;
}

/* Configuration errors that only the data or the model can reveal are
 * still configuration errors: exit 2, the place named, no run directory. */
START_TEST(missing_output_is_named)
{
    char runs[1200];
    snprintf(runs, sizeof runs, "%s/runs", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s/tiny.yaml --quiet --runs %s "
                     "'objective=[{loss: bernoulli_nll, inputs: [logitz, x]}]'",
                     root, runs);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "phases.train.objective[0].inputs") &&
                      strstr(out, "'logitz'") && strstr(out, "logits"),
                  "%s", out);
    ck_assert_msg(no_runs_in(runs), "a run directory was left in %s", runs);
    /* a mask no output provides */
    rc = dgm_cli(out, sizeof out,
                 "run %s/tiny.yaml --quiet --runs %s "
                 "'objective=[{loss: bernoulli_nll, inputs: [logits, x], "
                 "mask: nomask}]'",
                 root, runs);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "objective[0].mask") && strstr(out, "'nomask'"),
                  "%s", out);
    ck_assert(no_runs_in(runs));
}
END_TEST

/* What only a built model tells (an objective input no output provides,
 * a warm-up longer than a run counted in epochs): plain `dgm config`
 * cannot see it, `dgm config --check` and `dgm sweep --dry-run --check`
 * refuse it with the place, exit 2, and write nothing. */
START_TEST(config_check_builds)
{
    char runs[1200];
    snprintf(runs, sizeof runs, "%s/runs", root);
    static const char bad_input[] =
        "'objective=[{loss: bernoulli_nll, inputs: [logitz, x]}]'";
    int rc = dgm_cli(out, sizeof out, "config %s/tiny.yaml %s", root,
                     bad_input);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    rc = dgm_cli(out, sizeof out, "config --check %s/tiny.yaml %s", root,
                 bad_input);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "phases.train.objective[0].inputs") &&
                      strstr(out, "'logitz'"),
                  "%s", out);
    rc = dgm_cli(out, sizeof out,
                 "config --check %s/tiny.yaml 'optimizer={plugin: adam, "
                 "lr: 0.01, schedule: cosine, warmup: 100000}'",
                 root);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "phases.train.optimizer.warmup") &&
                      strstr(out, "100000 warm-up updates"),
                  "%s", out);
    rc = dgm_cli(out, sizeof out, "config --check %s/tiny.yaml", root);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* a sweep whose second trial reads an output the model lacks */
    rc = dgm_cli(out, sizeof out,
                 "sweep %s/tiny.yaml --dry-run --check --runs %s "
                 "'sweep={grid: {objective: ["
                 "[{loss: bernoulli_nll, inputs: [logits, x]}], "
                 "[{loss: bernoulli_nll, inputs: [logitz, x]}]]}}'",
                 root, runs);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "trial 1") && strstr(out, "'logitz'") &&
                      strstr(out, "1 of 2 trials are invalid"),
                  "%s", out);
    ck_assert(no_runs_in(runs));
}
END_TEST

/* A warm-up longer than the run: with train.steps it is refused by dgm
 * config too (no data needed); with epochs once the data set's size is
 * known, still before any run directory. */
START_TEST(warmup_longer_than_run)
{
    char runs[1200];
    snprintf(runs, sizeof runs, "%s/runs", root);
    static const char opt[] =
        "'optimizer={plugin: adam, lr: 0.01, schedule: cosine, warmup: 500}'";
    int rc = dgm_cli(out, sizeof out, "config %s/tiny.yaml train.steps=100 %s",
                     root, opt);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "phases.train.optimizer.warmup") &&
                      strstr(out, "500 warm-up updates") && strstr(out, "100"),
                  "%s", out);
    /* 4 epochs of 256 examples in batches of 32: 32 updates */
    rc = dgm_cli(out, sizeof out, "run %s/tiny.yaml --quiet --runs %s %s", root,
                 runs, opt);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "phases.train.optimizer.warmup") &&
                      strstr(out, "500 warm-up updates leave none of the "
                                  "run's 32"),
                  "%s", out);
    ck_assert_msg(no_runs_in(runs), "a run directory was left in %s", runs);
}
END_TEST

/* An objective of any length (65 terms here) trains; one term with more
 * inputs than the host takes is refused at the term's `inputs:`. */
START_TEST(long_objective)
{
    char y[1400], text[16384];
    snprintf(y, sizeof y, "%s/long.yaml", root);
    int len = snprintf(text, sizeof text, tiny_yaml, root);
    len += snprintf(text + len, sizeof text - (size_t)len, "objective:\n");
    for (int i = 0; i < 65; i++)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "  - {loss: gaussian_kl, inputs: [mu, logvar], "
                        "weight: 0.01, name: kl%d}\n",
                        i);
    ck_assert_int_lt(len, (int)sizeof text);
    write_text(y, text);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/long", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s --run-dir %s --quiet train.steps=2 "
                     "train.samples=0 'metrics=[{plugin: elbo, "
                     "max_examples: 64}]'",
                     y, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    json_t *s = load_json(dir, "summary.json");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")),
                     "completed");
    /* elbo counts every term: the 65th is reported, equals the first (same
     * loss, same inputs) and is part of the total. */
    json_t *fin = json_object_get(s, "final");
    double neg = json_real_value(json_object_get(fin, "neg_elbo"));
    double first = json_real_value(json_object_get(fin, "neg_elbo/kl0"));
    double last = json_real_value(json_object_get(fin, "neg_elbo/kl64"));
    ck_assert_msg(first > 0 && fabs(last - first) <= 1e-6 * first,
                  "kl0 %g kl64 %g", first, last);
    ck_assert_msg(fabs(neg - 65 * first) <= 1e-4 * neg, "neg_elbo %g, 65 * %g",
                  neg, first);
    json_decref(s);
    char p[1400];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    char *m = read_text(p);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strstr(m, "\"kl0\"") && strstr(m, "\"kl64\""), "%s", m);
    free(m);
    rc = dgm_cli(out, sizeof out,
                 "config %s/tiny.yaml 'objective=[{loss: bernoulli_nll, "
                 "inputs: [logits, x, x, x, x, x, x, x, x]}]'",
                 root);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "<command line>:1:") &&
                      strstr(out, "objective[0].inputs") &&
                      strstr(out, "at most 8"),
                  "%s", out);
}
END_TEST

/* A scheduled term weight (cyclical: 8 updates in 2 cycles, rising over
 * the first half) trains with the weight of Fu et al.'s formula at each
 * update, logged as weight/<term> beside the term (0 where the weight is
 * 0); evaluation scores the term at its value, so the ELBO keeps its KL. */
START_TEST(weight_schedule_logged)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/wsched", root);
    int rc = dgm_cli(out, sizeof out,
                     "run %s/tiny.yaml --run-dir %s --quiet train.steps=8 "
                     "train.samples=0 'metrics=[{plugin: elbo}]' "
                     "'objective=[{loss: bernoulli_nll, inputs: [logits, x]}, "
                     "{loss: gaussian_kl, inputs: [mu, logvar], weight: "
                     "{value: 2, schedule: cyclical, cycles: 2, ratio: 0.5}}]'",
                     root, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char p[1400];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(j);
        json_t *w = json_object_get(j, "weight/gaussian_kl");
        if (!json_object_get(j, "eval")) {
            /* step s follows s - 1 updates: tau = ((s - 1) mod 4) / 4 */
            int64_t step = json_integer_value(json_object_get(j, "step"));
            double tau = (double)((step - 1) % 4) / 4.0;
            double want = 2.0 * (tau < 0.5 ? tau / 0.5 : 1.0);
            ck_assert_msg(w && fabs(json_real_value(w) - want) < 1e-12,
                          "step %lld: %s", (long long)step, line);
            double kl = json_real_value(json_object_get(j, "gaussian_kl"));
            ck_assert_msg(want == 0 ? kl == 0 : kl > 0, "%s", line);
            seen++;
        }
        json_decref(j);
    }
    fclose(f);
    ck_assert_int_eq(seen, 8);
    json_t *s = load_json(dir, "summary.json");
    json_t *fin = json_object_get(s, "final");
    double kl = json_real_value(json_object_get(fin, "neg_elbo/gaussian_kl"));
    ck_assert_msg(kl > 0, "neg_elbo/gaussian_kl %g", kl);
    json_decref(s);
    /* A misspelt schedule is refused at its key. */
    rc = dgm_cli(out, sizeof out,
                 "config %s/tiny.yaml 'objective=[{loss: gaussian_kl, inputs: "
                 "[mu, logvar], weight: {schedule: cyclic}}]'",
                 root);
    ck_assert_msg(rc == 2 && strstr(out, "objective[0].weight.schedule") &&
                      strstr(out, "cyclical"),
                  "exit %d: %s", rc, out);
}
END_TEST

/* dgm_vars_set copies the name: a tensor set under a name built in a
 * buffer is still found, and listed, under that name after the buffer
 * changes; a name past the limit is refused, naming it. */
static Suite *run_suite(void)
{
    Suite *s = suite_create("run");
    TCase *tc =
        tq_case(s, "train", trains_and_writes_run_dir, resume_is_bit_identical,
                checkpoint_read_by_python, nan_loss_stops_run,
                resume_missing_tensor_names_file_once, failed_eval_is_recorded,
                sample_command_writes_png, conv_vae_trains);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    TCase *cfg =
        tq_case(s, "config", config_errors_name_the_place,
                config_prints_resolved, missing_output_is_named,
                warmup_longer_than_run, config_check_builds, long_objective,
                weight_schedule_logged);
    tcase_add_checked_fixture(cfg, setup, teardown);
    tcase_set_timeout(cfg, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(run_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
