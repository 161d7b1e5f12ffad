/* test_transfer.c - transfer learning and auxiliary tasks through the dgm
 * executable: init: (report, renames, Python-written files, mismatches),
 * freeze: (and batch-norm statistics), param_groups learning-rate
 * multipliers, masked auxiliary heads, dgm inspect; the distill loss
 * against hand-computed values; teachers: (a student distilled from a
 * teacher run, refusals). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/io.h"
#include "files.h"
#include "scratch.h"
#include "train.h"

static char root[1024];
static char out[1 << 16];

static char *read_text(const char *path)
{
    return tc_slurp(path, NULL, false);
}

static int dgm_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int dgm_cli(const char *fmt, ...)
{
    char args[4096], cmd[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", root, DGM_CLI, args);
    FILE *p = popen(cmd, "r");
    ck_assert(p != NULL);
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A tiny VAE on 8x8 images of 4 classes; `extra` is appended (YAML). */
static const char base_yaml[] =
    "name: %s\n"
    "seed: %d\n"
    "threads: 1\n"
    "data: {plugin: idx, path: data, train_images: train-img,\n"
    "       train_labels: train-lab, test_images: test-img,\n"
    "       test_labels: test-lab, batch_size: 32, shuffle: false,\n"
    "       label_fraction: %s}\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: %d\n"
    "  encoder: {plugin: mlp, hidden: [16], batch_norm: true}\n"
    "  decoder: {plugin: mlp, hidden: [16]}\n"
    "optimizer: {plugin: sgd, lr: 0.1}\n"
    "%s";

/* Write NAME.yaml and run it into run directory NAME; exit status. */
static int run(const char *name, int seed, int latent, const char *lf,
               const char *extra)
{
    char p[1200], text[8192];
    snprintf(p, sizeof p, "%s/%s.yaml", root, name);
    snprintf(text, sizeof text, base_yaml, name, seed, lf, latent, extra);
    FILE *f = fopen(p, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
    return dgm_cli("run %s.yaml --run-dir %s --quiet", name, name);
}

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/transfer-%ld", t ? t : "/tmp",
             (long)getpid());
    tc_sh("mkdir -p '%s/data'", root);
    tc_sh("cd '%s' && /usr/bin/python3 -c '\n"
          "import struct, random\n"
          "def split(img, lab, n, seed):\n"
          "    random.seed(seed)\n"
          "    with open(img, \"wb\") as fi, open(lab, \"wb\") as fl:\n"
          "        fi.write(struct.pack(\">IIII\", 0x803, n, 8, 8))\n"
          "        fl.write(struct.pack(\">II\", 0x801, n))\n"
          "        for i in range(n):\n"
          "            c = i %% 4\n"
          "            fi.write(bytes([230 if (k // 8) // 2 == c else\n"
          "                (200 if random.random() < 0.06 else 10)\n"
          "                for k in range(64)]))\n"
          "            fl.write(bytes([c]))\n"
          "split(\"data/train-img\", \"data/train-lab\", 128, 1)\n"
          "split(\"data/test-img\", \"data/test-lab\", 32, 2)\n'",
          root);
    /* the source run every test loads from */
    int rc = run("src", 1, 4, "1.0", "train: {steps: 2, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
}

static void teardown(void)
{
    tc_sh("rm -rf '%s'", root);
}

/* Tensor `name` of run `run`'s last checkpoint, copied (caller frees). */
static dgm_tensor *ckpt(const char *run_dir, const char *name)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, run_dir);
    dgm_st_file *f = tc_ckpt(dir);
    dgm_tensor *v;
    ck_assert_msg(dgm_st_get(f, name, &v) == 0, "%s", dgm_last_error());
    dgm_tensor *c = dgm_tensor_clone(v);
    dgm_st_close(f);
    return c;
}

static bool same_bits(const char *ra, const char *rb, const char *name)
{
    dgm_tensor *a = ckpt(ra, name), *b = ckpt(rb, name);
    bool same = dgm_tensor_nbytes(a) == dgm_tensor_nbytes(b) &&
                memcmp(a->data, b->data, dgm_tensor_nbytes(a)) == 0;
    dgm_tensor_free(a);
    dgm_tensor_free(b);
    return same;
}

static char *run_log(const char *run_dir)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s/log.txt", root, run_dir);
    char *s = read_text(p);
    ck_assert_msg(s != NULL, "no %s", p);
    return s;
}

#define ASSERT_HAS(text, needle)                                               \
    ck_assert_msg(strstr((text), (needle)) != NULL, "'%s' not in:\n%s",        \
                  (needle), (text))

/* ---- init ------------------------------------------------------------- */

START_TEST(init_reports_what_it_loaded)
{
    int rc = run("b", 2, 4, "1.0",
                 "init: [{path: src, params: 'encoder.*'}]\n"
                 "train: {epochs: 0, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    char *log = run_log("b");
    ASSERT_HAS(log, "init: from src/checkpoints/last.safetensors "
                    "(18 tensors, a dgm checkpoint)");
    ASSERT_HAS(log, "  loaded encoder.fc1.weight [16, 64]\n");
    ASSERT_HAS(log, "  loaded encoder.bn1.running_var [16]\n");
    ASSERT_HAS(log, "  unused decoder.fc2.weight F32 [64, 16]\n");
    ASSERT_HAS(log, "  ignored 4 optimizer, RNG and data-set entries");
    ASSERT_HAS(log, "  10 loaded, 0 skipped, 4 unused\n");
    ASSERT_HAS(log, "  left at its initialisation: decoder.fc1.weight "
                    "[16, 4]\n");
    ASSERT_HAS(log, "init: 10 of 14 model tensors loaded, 4 left at their "
                    "initialisation\n");
    ck_assert(strstr(log, "loaded decoder.") == NULL);
    free(log);
    ck_assert(same_bits("src", "b", "encoder.fc1.weight"));
    ck_assert(same_bits("src", "b", "encoder.bn1.running_mean"));
    ck_assert(!same_bits("src", "b", "decoder.fc1.weight"));
    /* strict: the unused decoder tensors are an error */
    rc = run("c", 2, 4, "1.0",
             "init: [{path: src, params: 'encoder.*', strict: true}]\n"
             "train: {epochs: 0, samples: 0}\n");
    ck_assert_int_eq(rc, 1);
    ASSERT_HAS(out, "init[0].strict: init: src/checkpoints/last.safetensors:"
                    " 4 tensors unused and 0 skipped (strict: true)");
    /* strict with everything matching passes */
    rc = run("d", 2, 4, "1.0",
             "init: [{path: src, strict: true}]\n"
             "train: {epochs: 0, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert(same_bits("src", "d", "decoder.fc1.weight"));
}
END_TEST

/* numpy writes the documented layout: F64, F16 and BF16 tensors under
 * other names, an unused tensor and metadata. */
static const char py_writer[] =
    "import json, struct, zlib, numpy as np\n"
    "w = np.arange(16 * 64, dtype=np.float64).reshape(16, 64) * 0.001 - 0.3\n"
    "mu_b = np.array([0.5, -1.25, 2.0, 0.1], dtype=np.float16)\n"
    "lv_b = np.array([1.0, -2.0, 0.375, 3.0], dtype=np.float32)\n"
    "bf = (lv_b.view(np.uint32) >> 16).astype(np.uint16)\n"
    "extra = np.array([1, 2, 3], dtype=np.float32)\n"
    "ts = [('enc.fc1.weight', 'F64', w), ('enc.mu.bias', 'F16', mu_b),\n"
    "      ('enc.logvar.bias', 'BF16', bf), ('other.thing', 'F32', extra)]\n"
    "hdr, off, blob = {}, 0, b''\n"
    "for n, dt, a in ts:\n"
    "    b = a.tobytes()\n"
    "    hdr[n] = {'dtype': dt, 'shape': list(a.shape),\n"
    "              'data_offsets': [off, off + len(b)]}\n"
    "    off += len(b); blob += b\n"
    "    print('crc', n, '%08x' % zlib.crc32(b))\n"
    "hdr['__metadata__'] = {'format': 'pt'}\n"
    "h = json.dumps(hdr).encode()\n"
    "h += b' ' * ((8 - len(h) % 8) % 8)\n"
    "open('torch.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + "
    "blob)\n";

START_TEST(init_from_python_file_with_renames)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/writer.py", root);
    FILE *f = fopen(p, "w");
    fputs(py_writer, f);
    fclose(f);
    char cmd[2600], crcs[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/python3 writer.py", root);
    FILE *pp = popen(cmd, "r");
    size_t got = fread(crcs, 1, sizeof crcs - 1, pp);
    crcs[got] = '\0';
    ck_assert_int_eq(pclose(pp), 0);

    int rc = run("b", 2, 4, "1.0",
                 "init: [{path: torch.safetensors,\n"
                 "        rename: [{'enc.*': 'encoder.*'}]}]\n"
                 "train: {epochs: 0, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    char *log = run_log("b");
    ASSERT_HAS(log, "  loaded encoder.fc1.weight [16, 64] <- "
                    "enc.fc1.weight (converted)\n");
    ASSERT_HAS(log, "  loaded encoder.mu.bias [4] <- enc.mu.bias "
                    "(converted)\n");
    ASSERT_HAS(log, "  unused other.thing F32 [3]\n");
    ASSERT_HAS(log, "  3 loaded, 0 skipped, 1 unused\n");
    free(log);
    dgm_tensor *w = ckpt("b", "encoder.fc1.weight");
    for (int i = 0; i < 16 * 64; i++)
        ck_assert_float_eq(dgm_tensor_f32(w)[i], (float)(i * 0.001 - 0.3));
    dgm_tensor_free(w);
    /* float16 values as numpy rounds them (0.1 -> 0.0999755859375) */
    const float mu[4] = {0.5f, -1.25f, 2.0f, 0.0999755859375f};
    dgm_tensor *m = ckpt("b", "encoder.mu.bias");
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(dgm_tensor_f32(m)[i], mu[i]);
    dgm_tensor_free(m);
    const float lv[4] = {1.0f, -2.0f, 0.375f, 3.0f}; /* exact in bf16 */
    dgm_tensor *l = ckpt("b", "encoder.logvar.bias");
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(dgm_tensor_f32(l)[i], lv[i]);
    dgm_tensor_free(l);

    /* dgm inspect: every tensor with dtype, shape, bytes and the CRC-32
     * Python computed */
    rc = dgm_cli("inspect torch.safetensors");
    ck_assert_msg(rc == 0, "%s", out);
    char *save = NULL;
    for (char *ln = strtok_r(crcs, "\n", &save); ln;
         ln = strtok_r(NULL, "\n", &save)) {
        char name[64], crc[16];
        ck_assert_int_eq(sscanf(ln, "crc %63s %15s", name, crc), 2);
        char *row = strstr(out, name);
        ck_assert_msg(row != NULL, "%s not in:\n%s", name, out);
        char *eol = strchr(row, '\n');
        ck_assert_msg(strstr(row, crc) && strstr(row, crc) < eol,
                      "crc %s of %s not in:\n%s", crc, name, out);
    }
    ASSERT_HAS(out, "enc.fc1.weight                           F64   "
                    "[16, 64]                   8192 ");
    ASSERT_HAS(out, "enc.mu.bias                              F16   [4]");
    ASSERT_HAS(out, "4 tensors, 8220 bytes of data\n");
    ASSERT_HAS(out, "  format: pt\n");
    ck_assert_int_eq(dgm_cli("inspect"), 2);
    ck_assert_int_eq(dgm_cli("inspect nothing.safetensors"), 1);
    ASSERT_HAS(out, "nothing.safetensors");
}
END_TEST

START_TEST(init_mismatch_names_both)
{
    int rc = run("b", 2, 5, "1.0",
                 "init: [{path: src/checkpoints/last.safetensors}]\n"
                 "train: {epochs: 0, samples: 0}\n");
    ck_assert_int_eq(rc, 1);
    /* tensors are checked in name order: the decoder's first layer */
    ASSERT_HAS(out, "init[0].path: init: model tensor 'decoder.fc1.weight' "
                    "F32 [16, 5] cannot take "
                    "'src/checkpoints/last.safetensors' tensor "
                    "'decoder.fc1.weight' F32 [16, 4] (shape mismatch");
    ASSERT_HAS(out, "b.yaml:");
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/b", root);
    ck_assert_msg(access(dir, F_OK) != 0, "a refused init left %s", dir);
    /* skip_mismatch: the others load, the mismatched are reported */
    rc = run("b", 2, 5, "1.0",
             "init: [{path: src, skip_mismatch: true}]\n"
             "train: {epochs: 0, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    char *log = run_log("b");
    ASSERT_HAS(log, "  skipped encoder.mu.weight F32 [5, 16] <- "
                    "encoder.mu.weight F32 [4, 16] (shape mismatch)\n");
    ASSERT_HAS(log, "  loaded encoder.fc1.weight [16, 64]\n");
    free(log);
    ck_assert(same_bits("src", "b", "encoder.fc1.weight"));
}
END_TEST

/* ---- freeze -------------------------------------------------------------- */

START_TEST(frozen_params_bit_identical)
{
    int rc = run("b", 2, 4, "1.0",
                 "init: [{path: src}]\n"
                 "freeze: ['encoder.*']\n"
                 "freeze_bn_stats: true\n"
                 "train: {steps: 3, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    const char *enc[] = {"encoder.fc1.weight",      "encoder.fc1.bias",
                         "encoder.bn1.weight",      "encoder.bn1.running_mean",
                         "encoder.bn1.running_var", "encoder.mu.weight",
                         "encoder.logvar.bias"};
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++)
        ck_assert_msg(same_bits("src", "b", enc[i]), "%s changed", enc[i]);
    ck_assert(!same_bits("src", "b", "decoder.fc1.weight"));
    char *log = run_log("b");
    ASSERT_HAS(log, "parameters: 1168 trainable, 1208 frozen)");
    free(log);
    /* without freeze_bn_stats the statistics follow the data */
    tc_sh("rm -rf '%s/b'", root);
    rc = run("b", 2, 4, "1.0",
             "init: [{path: src}]\n"
             "freeze: 'encoder.*'\n"
             "train: {steps: 3, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert(same_bits("src", "b", "encoder.fc1.weight"));
    ck_assert(!same_bits("src", "b", "encoder.bn1.running_mean"));
    /* a glob that matches nothing is refused */
    tc_sh("rm -rf '%s/b'", root);
    rc = run("b", 2, 4, "1.0",
             "freeze: ['encodr.*']\ntrain: {steps: 1, samples: 0}\n");
    ck_assert_int_ne(rc, 0);
    ASSERT_HAS(out, "freeze: 'encodr.*' matches no parameter");
}
END_TEST

/* ---- param_groups ----------------------------------------------------------
 */

START_TEST(lr_mult_acts_on_its_group)
{
    /* same seed, same first batch: r0 is the initialisation, c one plain
     * SGD step, d the same step with multipliers 0.5 and 0 */
    ck_assert_int_eq(run("r0", 3, 4, "1.0", "train: {epochs: 0, samples: 0}\n"),
                     0);
    ck_assert_int_eq(run("c", 3, 4, "1.0", "train: {steps: 1, samples: 0}\n"),
                     0);
    int rc = run("d", 3, 4, "1.0",
                 "param_groups:\n"
                 "  - {params: 'decoder.*', lr_mult: 0.5}\n"
                 "  - {params: [encoder.fc1.weight], lr_mult: 0.0}\n"
                 "  - {params: 'decoder.fc1.weight encoder.fc1.bias',\n"
                 "     lr_mult: 1.0}\n"
                 "train: {steps: 1, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    const char *dec[] = {"decoder.fc1.weight", "decoder.fc2.bias"};
    for (int k = 0; k < 2; k++) {
        dgm_tensor *a = ckpt("r0", dec[k]), *c = ckpt("c", dec[k]),
                   *d = ckpt("d", dec[k]);
        double moved = 0;
        for (int64_t i = 0; i < dgm_tensor_numel(a); i++) {
            float w0 = dgm_tensor_f32(a)[i], dc = dgm_tensor_f32(c)[i] - w0;
            float want = w0 + 0.5f * dc, got = dgm_tensor_f32(d)[i];
            ck_assert_msg(fabsf(got - want) <= 1e-6f + 1e-5f * fabsf(dc),
                          "%s[%lld]: %g, want %g", dec[k], (long long)i,
                          (double)got, (double)want);
            moved += fabs(dc);
        }
        ck_assert_msg(moved > 1e-4, "%s did not move", dec[k]);
        dgm_tensor_free(a);
        dgm_tensor_free(c);
        dgm_tensor_free(d);
    }
    ck_assert(same_bits("r0", "d", "encoder.fc1.weight"));
    ck_assert(!same_bits("r0", "d", "encoder.fc1.bias"));
    ck_assert(same_bits("c", "d", "encoder.fc1.bias"));
    /* a group with an optimizer of its own: lr 0.05 = half of 0.1 */
    rc = run("e", 3, 4, "1.0",
             "param_groups:\n"
             "  - {params: 'decoder.fc2.*', optimizer: {plugin: sgd, "
             "lr: 0.05}}\n"
             "train: {steps: 1, samples: 0}\n");
    ck_assert_msg(rc == 0, "%s", out);
    dgm_tensor *a = ckpt("r0", "decoder.fc2.weight"),
               *c = ckpt("c", "decoder.fc2.weight"),
               *e = ckpt("e", "decoder.fc2.weight");
    for (int64_t i = 0; i < dgm_tensor_numel(a); i++) {
        float w0 = dgm_tensor_f32(a)[i], dc = dgm_tensor_f32(c)[i] - w0;
        ck_assert_msg(fabsf(dgm_tensor_f32(e)[i] - (w0 + 0.5f * dc)) <=
                          1e-6f + 1e-5f * fabsf(dc),
                      "decoder.fc2.weight[%lld]", (long long)i);
    }
    dgm_tensor_free(a);
    dgm_tensor_free(c);
    dgm_tensor_free(e);
    ck_assert(same_bits("c", "e", "decoder.fc1.weight"));
    /* a group that takes nothing is refused */
    rc = run("f", 3, 4, "1.0",
             "param_groups: [{params: 'decodr.*', lr_mult: 2}]\n"
             "train: {steps: 1, samples: 0}\n");
    ck_assert_int_ne(rc, 0);
    ASSERT_HAS(out, "param_groups[0].params: param_groups[0] takes no "
                    "trainable parameter");
}
END_TEST

/* ---- auxiliary heads
 * --------------------------------------------------------- */

static const char head_yaml[] =
    "heads: [{name: cls, input: mu, out: [4],\n"
    "         block: {plugin: mlp, hidden: []}}]\n"
    "objective:\n"
    "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
    "  - {loss: gaussian_kl, inputs: [mu, logvar]}\n"
    "  - {loss: cross_entropy, inputs: [cls, y], mask: y_mask, weight: 2}\n";

START_TEST(masked_head_gets_no_gradient)
{
    char extra[1024];
    snprintf(extra, sizeof extra, "%strain: {epochs: 0, samples: 0}\n",
             head_yaml);
    ck_assert_int_eq(run("r0", 4, 4, "1.0", extra), 0);
    snprintf(extra, sizeof extra, "%strain: {steps: 3, samples: 0}\n",
             head_yaml);
    /* no labels: the head's term is zero and so is its gradient */
    int rc = run("none", 4, 4, "0.0", extra);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert(same_bits("r0", "none", "heads.cls.fc1.weight"));
    ck_assert(same_bits("r0", "none", "heads.cls.fc1.bias"));
    ck_assert(!same_bits("r0", "none", "encoder.mu.weight"));
    /* with labels the head learns; output_accuracy scores it */
    snprintf(extra, sizeof extra,
             "%strain: {steps: 3, samples: 0}\n"
             "metrics: [{plugin: output_accuracy, output: cls}]\n",
             head_yaml);
    rc = run("all", 4, 4, "1.0", extra);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert(!same_bits("r0", "all", "heads.cls.fc1.weight"));
    char *log = run_log("all");
    char *acc = strstr(log, "dgm: accuracy/cls = ");
    ck_assert_msg(acc != NULL, "%s", log);
    double a = atof(acc + strlen("dgm: accuracy/cls = "));
    ck_assert_msg(a >= 0 && a <= 1, "accuracy %g", a);
    free(log);
    /* an input the model does not have is named */
    rc = run("bad", 4, 4, "1.0",
             "heads: [{name: cls, input: mew, out: [4],\n"
             "         block: {plugin: mlp}}]\n"
             "train: {steps: 1, samples: 0}\n");
    ck_assert_int_ne(rc, 0);
    ASSERT_HAS(out, "head 'cls': model 'vae' has no output 'mew'");
}
END_TEST

/* ---- distill
 * ------------------------------------------------------------------ */

static dgm_var *apply_distill(dgm_registry *reg, dgm_graph *g,
                              const char *cfg_text, dgm_var *s, dgm_var *t)
{
    const dgm_plugin_desc *d;
    ck_assert_msg(dgm_registry_find(reg, DGM_KIND_LOSS, "distill", &d, NULL) ==
                      0,
                  "%s", dgm_last_error());
    dgm_config *cfg;
    ck_assert_int_eq(dgm_config_parse(&cfg, cfg_text, "t"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, d->params, "distill", NULL), 0);
    const dgm_loss_iface *li = d->iface.loss;
    void *self;
    ck_assert_int_eq(li->create(&self, cfg), 0);
    dgm_var *in[2] = {s, t};
    dgm_var *v = li->apply(self, g, in, 2);
    li->destroy(self);
    dgm_config_free(cfg);
    return v;
}

START_TEST(distill_matches_hand_values)
{
    dgm_registry *reg;
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
    float sv[6] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f};
    float tv[6] = {0.5f, 2.5f, -0.5f, 0.0f, 1.0f, 1.0f};
    int64_t shape[2] = {2, 3};
    dgm_tensor *st = dgm_tensor_wrap(sv, DGM_F32, 2, shape, NULL);
    dgm_tensor *tt = dgm_tensor_wrap(tv, DGM_F32, 2, shape, NULL);
    dgm_graph *g = dgm_graph_new();
    dgm_var *s = dgm_input(g, st), *t = dgm_input(g, tt);
    dgm_var *kl = apply_distill(reg, g, "{mode: kl, temperature: 2.0}", s, t);
    ck_assert_msg(kl != NULL, "%s", dgm_last_error());
    double T = 2.0;
    for (int n = 0; n < 2; n++) {
        double zs = 0, zt = 0, want = 0;
        for (int c = 0; c < 3; c++) {
            zs += exp(sv[n * 3 + c] / T);
            zt += exp(tv[n * 3 + c] / T);
        }
        for (int c = 0; c < 3; c++) {
            double pt = exp(tv[n * 3 + c] / T) / zt;
            double ps = exp(sv[n * 3 + c] / T) / zs;
            want += pt * log(pt / ps);
        }
        want *= T * T;
        /* float32 softmax ops: relative 2e-4 */
        ck_assert_double_eq_tol(dgm_tensor_get(dgm_value(kl), n), want,
                                2e-4 * want);
    }
    dgm_var *mse = apply_distill(reg, g, "{mode: mse}", s, t);
    ck_assert(mse != NULL);
    for (int n = 0; n < 2; n++) {
        double want = 0;
        for (int c = 0; c < 3; c++)
            want += pow(sv[n * 3 + c] - tv[n * 3 + c], 2) / 3;
        ck_assert_double_eq_tol(dgm_tensor_get(dgm_value(mse), n), want, 1e-6);
    }
    /* shapes that disagree are refused naming both */
    int64_t s2[2] = {3, 2};
    dgm_tensor *ot = dgm_tensor_wrap(tv, DGM_F32, 2, s2, NULL);
    ck_assert(apply_distill(reg, g, "{}", s, dgm_input(g, ot)) == NULL);
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert(strstr(dgm_last_error(), "[2, 3]") &&
              strstr(dgm_last_error(), "[3, 2]"));
    dgm_graph_free(g);
    dgm_tensor_free(st);
    dgm_tensor_free(tt);
    dgm_tensor_free(ot);
    dgm_registry_free(reg);
}
END_TEST

START_TEST(inspect_run_dir)
{
    int rc = dgm_cli("inspect src");
    ck_assert_msg(rc == 0, "%s", out);
    ASSERT_HAS(out, "status: completed\nstep: 2 of 2\n");
    ASSERT_HAS(out, "checkpoint step: 2\n");
    ASSERT_HAS(out, "encoder.fc1.weight                       F32   "
                    "[16, 64]                   4096 ");
    ASSERT_HAS(out, "  dgm.format_version: 1\n");
    ASSERT_HAS(out, "    plugin: vae\n");
    /* runs/<name>/latest names the newest run */
    ck_assert_int_eq(dgm_cli("run src.yaml --runs runs --quiet"), 0);
    rc = dgm_cli("inspect runs/src/latest");
    ck_assert_msg(rc == 0, "%s", out);
    ASSERT_HAS(out, "status: completed");
}
END_TEST

/* Groups with optimizers of their own and heads resume exactly: every
 * tensor (parameters, each group's optimizer state, RNG) bit for bit. */
START_TEST(groups_and_heads_resume_exactly)
{
    static const char extra[] =
        "param_groups: [{params: 'decoder.*', lr_mult: 0.3,\n"
        "                optimizer: {plugin: adam, lr: 0.01}}]\n"
        "heads: [{name: cls, input: mu, out: [4], block: {plugin: mlp}}]\n"
        "objective:\n"
        "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
        "  - {loss: gaussian_kl, inputs: [mu, logvar]}\n"
        "  - {loss: cross_entropy, inputs: [cls, y], mask: y_mask}\n"
        "train: {steps: 12, samples: 0}\n";
    ck_assert_int_eq(run("full", 5, 4, "0.5", extra), 0);
    ck_assert_int_eq(dgm_cli("run full.yaml --run-dir part --stop-after 5 "
                             "--quiet"),
                     0);
    char sp[1400];
    snprintf(sp, sizeof sp, "%s/part/summary.json", root);
    char *sum = read_text(sp);
    ck_assert(sum != NULL);
    ASSERT_HAS(sum, "\"stopped\"");
    free(sum);
    int rc = dgm_cli("run --resume part --quiet");
    ck_assert_msg(rc == 0, "%s", out);
    char p[1400];
    snprintf(p, sizeof p, "%s/full/checkpoints/last.safetensors", root);
    dgm_st_file *f;
    ck_assert_int_eq(dgm_st_open(&f, p), 0);
    int n = dgm_st_count(f), slots = 0;
    for (int i = 0; i < n; i++) {
        const char *name = dgm_st_name_at(f, i);
        slots += strncmp(name, "optim.", 6) == 0;
        ck_assert_msg(same_bits("full", "part", name), "%s differs", name);
    }
    dgm_st_close(f);
    /* the decoder's group keeps Adam's two slots for each of its 4
     * tensors; plain SGD keeps none */
    ck_assert_int_eq(slots, 8);
}
END_TEST

/* ---- teachers -------------------------------------------------------- */

/* Mean squared difference between output `name` of runs a and b on the
 * test images. */
static double output_msd(const char *a, const char *b, const char *name)
{
    dgm_registry *reg;
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
    char p[1400];
    snprintf(p, sizeof p, "%s/data/test-img", root);
    dgm_tensor *u8;
    ck_assert_msg(dgm_idx_load(p, &u8) == 0, "%s", dgm_last_error());
    /* the runs name their data relative to the folder they ran in */
    char cwd[1024];
    ck_assert(getcwd(cwd, sizeof cwd) != NULL);
    ck_assert_int_eq(chdir(root), 0);
    dgm_run *ra, *rb;
    ck_assert_msg(dgm_run_open(&ra, reg, a) == 0, "%s", dgm_last_error());
    ck_assert_msg(dgm_run_open(&rb, reg, b) == 0, "%s", dgm_last_error());
    ck_assert_int_eq(chdir(cwd), 0);
    const dgm_data_info *info = dgm_run_data_info(ra);
    int64_t shape[DGM_MAX_DIMS + 1] = {u8->shape[0]};
    for (int d = 0; d < info->x_shape.ndim; d++)
        shape[d + 1] = info->x_shape.dim[d];
    dgm_tensor *x = dgm_tensor_new(DGM_F32, info->x_shape.ndim + 1, shape);
    ck_assert(x && dgm_tensor_numel(x) == dgm_tensor_numel(u8));
    for (int64_t i = 0; i < dgm_tensor_numel(x); i++)
        dgm_tensor_set(x, i, dgm_tensor_get(u8, i) / 255.0);
    dgm_tensor *oa, *ob;
    ck_assert_msg(dgm_run_forward_output(ra, x, name, &oa) == 0, "%s",
                  dgm_last_error());
    ck_assert_msg(dgm_run_forward_output(rb, x, name, &ob) == 0, "%s",
                  dgm_last_error());
    double sq = 0;
    int64_t n = dgm_tensor_numel(oa);
    for (int64_t i = 0; i < n; i++) {
        double d = dgm_tensor_get(oa, i) - dgm_tensor_get(ob, i);
        sq += d * d;
    }
    dgm_tensor_free(oa);
    dgm_tensor_free(ob);
    dgm_tensor_free(x);
    dgm_tensor_free(u8);
    dgm_run_close(ra);
    dgm_run_close(rb);
    dgm_registry_free(reg);
    return sq / (double)n;
}

/* A student distilled from a teacher run (its `mu` as the `teacher`
 * tensor, MSE) ends with a `mu` far closer to the teacher's than the same
 * student trained without the term; the teacher run is left untouched. */
START_TEST(teacher_run_distilled)
{
    static const char with[] =
        "teachers: [{name: teacher, run: src, output: mu}]\n"
        "objective: [{loss: distill, inputs: [mu, teacher], mode: mse}]\n"
        "train: {steps: 150, samples: 0}\n";
    static const char without[] = "train: {steps: 150, samples: 0}\n";
    dgm_tensor *before = ckpt("src", "encoder.fc1.weight");
    int rc = run("stu", 3, 4, "1.0", with);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(run("alone", 3, 4, "1.0", without), 0);
    double d_with = output_msd("src", "stu", "mu");
    double d_without = output_msd("src", "alone", "mu");
    ck_assert_msg(d_with < 0.1 * d_without,
                  "distilled %g, alone %g (mean squared mu difference)", d_with,
                  d_without);
    dgm_tensor *after = ckpt("src", "encoder.fc1.weight");
    ck_assert(memcmp(before->data, after->data, dgm_tensor_nbytes(after)) == 0);
    dgm_tensor_free(before);
    dgm_tensor_free(after);
    /* the term is logged under the loss's name */
    char mp[1400];
    snprintf(mp, sizeof mp, "%s/stu/metrics.jsonl", root);
    char *m = read_text(mp);
    ck_assert(m != NULL);
    ASSERT_HAS(m, "{\"distill\":");
    free(m);
}
END_TEST

/* Bad `teachers:` entries are refused before training, naming the key. */
START_TEST(teacher_refusals)
{
    static const struct {
        const char *yaml, *needle;
    } bad[] = {
        {"teachers: [{name: t, run: nosuch, output: mu}]\n",
         "teachers[0].run: teacher 't': "},
        {"teachers: [{name: t, run: src, output: nosuch}]\n",
         "has no output 'nosuch' (it has: "},
        {"teachers: [{name: t, run: src, output: mu},\n"
         "           {name: t, run: src, output: z}]\n",
         "two teachers are named 't'"},
        {"teachers: [{name: t, run: src}]\n", "teachers[0].output"},
        {"teachers: [{name: t, run: src, output: mu, inptu: x}]\n",
         "did you mean"},
        {"teachers: {name: t}\n", "`teachers:` is a list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, "%strain: {steps: 1, samples: 0}\n",
                 bad[i].yaml);
        tc_sh("rm -rf '%s/tb'", root);
        int rc = run("tb", 1, 4, "1.0", extra);
        ck_assert_msg(rc != 0, "case %zu ran", i);
        ASSERT_HAS(out, bad[i].needle);
    }
    /* a teacher trained on another value range */
    tc_sh(
        "sed 's/label_fraction: 1.0}/label_fraction: 1.0, scale: symmetric}/' "
        "'%s/src.yaml' > '%s/sym.yaml'",
        root, root);
    int rc = dgm_cli("run sym.yaml --run-dir tb2 --quiet "
                     "'+teachers=[{name: t, run: src, output: mu}]' "
                     "'train.steps=1'");
    ck_assert_int_ne(rc, 0);
    ASSERT_HAS(out, "was trained on x in [0, 1], this data set gives [-1, 1]");
}
END_TEST

/* The thread count is the process's: a student run with threads: 1 keeps
 * it while a teacher (or any run opened during it, as the feature
 * metrics' classifier) whose config says threads: 2 is built. */
START_TEST(teacher_keeps_student_threads)
{
    tc_sh("sed -i 's/^threads: 1$/threads: 2/' '%s/src/config.yaml'", root);
    char p[1400];
    snprintf(p, sizeof p, "%s/src/config.yaml", root);
    char *src_cfg = read_text(p);
    ck_assert_ptr_nonnull(src_cfg);
    ASSERT_HAS(src_cfg, "threads: 2");
    free(src_cfg);
    snprintf(p, sizeof p, "%s/stu.yaml", root);
    FILE *f = fopen(p, "w");
    ck_assert(f != NULL);
    fprintf(f, base_yaml, "stu", 3, "1.0", 4,
            "teachers: [{name: teacher, run: src, output: mu}]\n"
            "objective: [{loss: distill, inputs: [mu, teacher], mode: mse}]\n"
            "train: {steps: 1, samples: 0}\n");
    fclose(f);
    dgm_registry *reg;
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
    ck_assert_int_eq(chdir(root), 0);
    dgm_experiment *e;
    ck_assert_msg(dgm_experiment_load(&e, reg, "stu.yaml", NULL, 0) == 0, "%s",
                  dgm_last_error());
    ck_assert_msg(dgm_experiment_build(e) == 0, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_threads(), 1);
    dgm_run *r;
    ck_assert_msg(dgm_run_open(&r, reg, "src") == 0, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_threads(), 1);
    dgm_run_close(r);
    dgm_experiment_free(e);
    /* with no experiment alive, opening the run is the top level again */
    ck_assert_msg(dgm_run_open(&r, reg, "src") == 0, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_threads(), 2);
    dgm_run_close(r);
    dgm_registry_free(reg);
}
END_TEST

/* Teachers of teachers open (top -> mid -> src); a run that is, through
 * its teacher, its own teacher (src -> mid -> src) is refused with the
 * chain of both run directories, not opened until a depth runs out. */
START_TEST(teacher_cycle_refused)
{
    static const char t_src[] =
        "teachers: [{name: t, run: src, output: mu}]\n"
        "objective: [{loss: distill, inputs: [mu, t], mode: mse}]\n"
        "train: {steps: 1, samples: 0}\n";
    static const char t_mid[] =
        "teachers: [{name: t, run: mid, output: mu}]\n"
        "objective: [{loss: distill, inputs: [mu, t], mode: mse}]\n"
        "train: {steps: 1, samples: 0}\n";
    int rc = run("mid", 2, 4, "1.0", t_src);
    ck_assert_msg(rc == 0, "%s", out);
    rc = run("top", 3, 4, "1.0", t_mid);
    ck_assert_msg(rc == 0, "%s", out);
    /* src now names mid, which names src */
    char p[1400];
    snprintf(p, sizeof p, "%s/src/config.yaml", root);
    FILE *f = fopen(p, "w");
    ck_assert(f != NULL);
    fprintf(f, base_yaml, "src", 1, "1.0", 4, t_mid);
    fclose(f);
    dgm_registry *reg;
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
    char cwd[1024];
    ck_assert(getcwd(cwd, sizeof cwd) != NULL);
    ck_assert_int_eq(chdir(root), 0);
    char real[1024]; /* the chain names real paths */
    ck_assert(getcwd(real, sizeof real) != NULL);
    dgm_run *r = NULL;
    rc = dgm_run_open(&r, reg, "src");
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, DGM_ECONFIG);
    ck_assert_ptr_null(r);
    const char *msg = dgm_last_error();
    char a[3200], b[3200];
    snprintf(a, sizeof a, "run cycle: %s/src -> %s/mid -> %s/src", real, real,
             real);
    snprintf(b, sizeof b, "run cycle: %s/mid -> %s/src -> %s/mid", real, real,
             real);
    ck_assert_msg(strstr(msg, a) || strstr(msg, b), "%s", msg);
    ck_assert_msg(strstr(msg, "teachers[0].run"), "%s", msg);
    /* and through the CLI, from a student that names src */
    rc = run("stu", 4, 4, "1.0",
             "teachers: [{name: t, run: src, output: mu}]\n"
             "train: {steps: 1, samples: 0}\n");
    ck_assert_int_ne(rc, 0);
    ASSERT_HAS(out, "run cycle: ");
    dgm_registry_free(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("transfer");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"init_report", init_reports_what_it_loaded},
        {"init_python", init_from_python_file_with_renames},
        {"init_mismatch", init_mismatch_names_both},
        {"freeze", frozen_params_bit_identical},
        {"param_groups", lr_mult_acts_on_its_group},
        {"resume", groups_and_heads_resume_exactly},
        {"heads", masked_head_gets_no_gradient},
        {"distill", distill_matches_hand_values},
        {"inspect", inspect_run_dir},
        {"teacher", teacher_run_distilled},
        {"teacher_refusals", teacher_refusals},
        {"teacher_threads", teacher_keeps_student_threads},
        {"teacher_cycle", teacher_cycle_refused},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
