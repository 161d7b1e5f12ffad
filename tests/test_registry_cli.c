/* test_registry_cli.c - the registry seen from the command line: the
 * `dgm plugins` listing and details, what the host promises a plugin
 * author, and `dgm config` (and `dgm sweep --dry-run`) running the
 * plugins' own checks. Scratch folders of test plugins come from
 * tests/support/registry_fixture.h; the library-level registry cases are
 * in test_registry.c. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "cli.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "host_internal.h"
#include "quadrants.h"
#include "registry_fixture.h"

/* ---- dgm plugins ------------------------------------------------------ */

/* Run `dgm ARGS` (ARGS starting with the command) with the environment
 * settings env (e.g. "COLUMNS=80", or "-u COLUMNS"); capture stdout and
 * stderr into buffers. */
static int run_dgm_env(const char *env, const char *args, char *out,
                       size_t n_out, char *err, size_t n_err)
{
    int st = tc_cli(env, args, out, n_out, err, n_err);
    ck_assert_int_ge(st, 0);
    return st;
}

/* `dgm ARGS`, wide enough for whole lines: summaries and paths uncut. */
static int run_dgm(const char *args, char *out, size_t n_out, char *err,
                   size_t n_err)
{
    return run_dgm_env("COLUMNS=1000", args, out, n_out, err, n_err);
}

/* `dgm plugins ARGS` with the environment settings env. */
static int run_cli_env(const char *env, const char *args, char *out,
                       size_t n_out, char *err, size_t n_err)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "plugins %s", args);
    return run_dgm_env(env, cmd, out, n_out, err, n_err);
}

/* `dgm plugins ARGS`, wide enough for whole lines. */
static int run_cli(const char *args, char *out, size_t n_out, char *err,
                   size_t n_err)
{
    return run_cli_env("COLUMNS=1000", args, out, n_out, err, n_err);
}

START_TEST(cli_list)
{
    char dir[PATH_MAX], args[2 * PATH_MAX], out[16384], err[8192];
    tc_scratch(dir, sizeof dir, "cli", "tp_good", "tp_abi_major",
               "tp_create_fails", NULL);
    snprintf(args, sizeof args, "--path '%s'", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "KIND");
    /* Sorted by kind: block before loss before optimizer. */
    char *blk = strstr(out, "block  ");
    char *loss = strstr(out, "loss  ");
    char *opt = strstr(out, "optimizer  ");
    ck_assert(blk && loss && opt && blk < loss && loss < opt);
    ck_assert_contains(blk, "good_block");
    ck_assert_contains(loss, "good_loss");
    ck_assert_contains(loss, "1.2");
    ck_assert_contains(loss, "test loss: returns its first input");
    ck_assert_contains(loss, "/tp_good.so");
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want,
             "dgm: warning: %s/tp_abi_major.so: plugin ABI 3.0, host ABI 2.5",
             dir);
    ck_assert_contains(err, want);

    ck_assert_int_eq(run_cli("--bogus", out, sizeof out, err, sizeof err), 2);
    ck_assert_contains(err, "unknown option '--bogus'");
    ck_assert_int_eq(run_cli("--help", out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "usage: dgm plugins");
}
END_TEST

START_TEST(cli_show)
{
    char dir[PATH_MAX], args[2 * PATH_MAX], out[16384], err[8192];
    tc_scratch(dir, sizeof dir, "clishow", "tp_good", NULL);
    snprintf(args, sizeof args, "show --path '%s' good_block", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "name:     good_block");
    ck_assert_contains(out, "kind:     block");
    ck_assert_contains(out, "version:  0.3");
    /* One row per param: name, type, default or "required", range or
     * choices, help. */
    char *row = strstr(out, "  width ");
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(sscanf(row, " width int 8 [1, 1024] %s", args), 1);
    ck_assert_str_eq(args, "units");
    ck_assert_ptr_nonnull(strstr(out, "  act "));
    ck_assert_contains(strstr(out, "  act "), "choice");
    ck_assert_contains(strstr(out, "  act "), "relu|tanh");
    ck_assert_contains(strstr(out, "  scale "), "required");
    ck_assert_contains(strstr(out, "  scale "), "[0, 2]");
    ck_assert_contains(strstr(out, "  inner "), "(none)");

    snprintf(args, sizeof args, "show --path '%s' good_loss", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "inputs:   x [target] (1..2)");
    ck_assert_contains(out, "parameters: none");

    snprintf(args, sizeof args, "show --path '%s' nope", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_contains(err, "plugin 'nope' (any kind) not found; search "
                            "path: ");
    ck_assert_contains(err, dir);
    snprintf(args, sizeof args, "show --kind model --path '%s' good_loss", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_contains(err, "is a loss, not a model");
    ck_assert_int_eq(run_cli("show", out, sizeof out, err, sizeof err), 2);
}
END_TEST

/* A metric's details: its direction table and whether it evaluates
 * sharded, each read only from a plugin built with that slot. */
START_TEST(cli_show_metric)
{
    static const struct {
        const char *name, *figures, *sharded;
    } want[] = {
        {"shard_probe", "figures:  * [none]\n", "sharded:  yes"},
        {"rank0_probe", "figures:  * [none]\n", "sharded:  no"},
        {"error_rate", "figures:  error_rate [higher]\n", "sharded:  no"},
        /* ABI 2.0: neither slot exists, its tables are not read */
        {"old_error_rate", "figures:  (no direction declared)\n",
         "sharded:  no"},
    };
    char dir[PATH_MAX], args[2 * PATH_MAX], out[16384], err[8192];
    tc_scratch(dir, sizeof dir, "clishowm", "tp_shard", "tp_error_rate", NULL);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        snprintf(args, sizeof args, "show --path '%s' %s", dir, want[i].name);
        ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
        ck_assert_contains(out, want[i].figures);
        ck_assert_contains(out, want[i].sharded);
    }
}
END_TEST

/* ---- what the host promises a plugin author ---------------------------- */

/* docs/writing-plugins.md states these; tests/plugins/tp_host.c carries
 * the plugins that probe them, trained on a tiny VAE experiment. */

static char host_dir[PATH_MAX];

static void host_setup(void)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    snprintf(host_dir, sizeof host_dir, "%s/registry-%ld-host",
             tmp ? tmp : "/tmp", (long)getpid());
    tc_mkdir_p(host_dir);
    ck_assert_int_eq(
        tq_write_quadrants(host_dir, "train-img", "train-lab", 32, 5), 0);
    ck_assert_int_eq(
        tq_write_quadrants(host_dir, "test-img", "test-lab", 16, 6), 0);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/host.yaml", host_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name: host\n"
            "seed: 3\n"
            "threads: 1\n"
            "data: {plugin: idx, path: '%s', train_images: train-img,\n"
            "       train_labels: train-lab, test_images: test-img,\n"
            "       test_labels: test-lab, batch_size: 8}\n"
            "model: {plugin: vae, latent: 2, encoder: {plugin: mlp, hidden: "
            "[8]},\n"
            "        decoder: {plugin: mlp, hidden: [8]}}\n"
            "optimizer: {plugin: adam, lr: 0.01}\n"
            "train: {steps: 3, log_every: 1, samples: 0}\n"
            "metrics: []\n",
            host_dir);
    fclose(f);
}

static void host_teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", host_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Load host.yaml with the overrides, the shipped plugins and tp_host. */
static dgm_experiment *host_experiment(dgm_registry **reg,
                                       const char *const *ov, int n_ov)
{
    ck_assert_int_eq(dgm_registry_new(reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(*reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(*reg), 0);
    ck_assert_msg(
        dgm_registry_load_file(*reg, DGM_TEST_PLUGIN_DIR "/tp_host.so") == 0,
        "%s", dgm_last_error());
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/host.yaml", host_dir);
    dgm_experiment *e;
    ck_assert_msg(dgm_experiment_load(&e, *reg, path, ov, n_ov) == 0, "%s",
                  dgm_last_error());
    return e;
}

static int host_run(dgm_experiment *e, const char *tag)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", host_dir, tag);
    dgm_run_options o = {.run_dir = dir, .quiet = true};
    return dgm_experiment_run(e, &o);
}

/* A block whose forward returns another shape than its create reported
 * is refused at that forward, naming the plugin, its scope and both
 * shapes (here a decoder asked for [1, 28, 28] that returns z). The
 * build's probe forward on two examples is the first to meet it. */
START_TEST(block_output_shape_checked)
{
    const char *ov[] = {"model.decoder={plugin: tp_wrong_shape}"};
    dgm_registry *reg;
    dgm_experiment *e = host_experiment(&reg, ov, 1);
    int rc = host_run(e, "wrong_shape");
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dgm_last_error());
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    ck_assert_msg(rc == DGM_ESHAPE, "rc %d: %s", rc, msg);
    ck_assert_contains(msg, "block 'tp_wrong_shape' (decoder): forward "
                            "returned [2, 2] for input [2, 2], but its "
                            "create reported [1, 28, 28] per example "
                            "([2, 1, 28, 28] for this batch)");
}
END_TEST

static double final_figure(const char *tag, const char *key)
{
    char path[PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/%s/summary.json", host_dir, tag);
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);
    ck_assert_msg(s != NULL, "%s: %s", path, jerr.text);
    json_t *v = json_object_get(json_object_get(s, "final"), key);
    ck_assert_msg(json_is_number(v), "no final figure '%s' in %s", key, path);
    double d = json_number_value(v);
    json_decref(s);
    return d;
}

/* A loss returning a scalar (the batch mean) is evaluated as that value
 * for each example of its batch: over batches of 5, 5, 5 and 1 the
 * split's figure equals that of `mse`, its per-example counterpart. */
START_TEST(scalar_loss_evaluates)
{
    const char *ov[] = {
        "objective=[{loss: bernoulli_nll, inputs: [logits, x]}, "
        "{loss: gaussian_kl, inputs: [mu, logvar]}, "
        "{loss: mse, inputs: [logits, x]}, "
        "{loss: tp_scalar_mse, inputs: [logits, x], weight: 0.5}]",
        "metrics=[{plugin: elbo, batch_size: 5}]"};
    dgm_registry *reg;
    dgm_experiment *e = host_experiment(&reg, ov, 2);
    int rc = host_run(e, "scalar");
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dgm_last_error());
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, msg);
    double per = final_figure("scalar", "neg_elbo/mse");
    double scalar = final_figure("scalar", "neg_elbo/tp_scalar_mse");
    ck_assert_msg(per > 0 && fabs(scalar - per) <= 1e-5 * per,
                  "scalar loss %.9g, per-example %.9g", scalar, per);
}
END_TEST

static dgm_tensor *find_slot(const dgm_param *p, const char *name)
{
    for (int i = 0; i < dgm_param_slot_count(p); i++) {
        const char *s = NULL;
        dgm_tensor *t = dgm_param_slot_at(p, i, &s);
        if (s && !strcmp(s, name))
            return t;
    }
    return NULL;
}

/* An optimizer's step receives only trainable weights (never a frozen
 * parameter or a buffer), each with a contiguous f32 gradient of its
 * value's shape (tp_probe_sgd refuses anything else), every update, with
 * t counting from 1; a param_groups entry's weight_decay reaches its
 * optimizer instance as the key `weight_decay`. */
START_TEST(optimizer_step_gets_trainable_weights)
{
    const char *ov[] = {
        "optimizer={plugin: tp_probe_sgd, lr: 0.01}", "freeze=[encoder.*]",
        "param_groups=[{params: decoder.*, weight_decay: 0.25}]"};
    dgm_registry *reg;
    dgm_experiment *e = host_experiment(&reg, ov, 3);
    int rc = host_run(e, "probe");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, dgm_last_error());
    int frozen = 0, stepped = 0;
    for (int k = 0; k < dgm_params_count(e->params); k++) {
        dgm_param *p = dgm_params_at(e->params, k);
        dgm_tensor *calls = find_slot(p, "calls");
        if (p->role != DGM_ROLE_WEIGHT || p->frozen) {
            ck_assert_msg(!calls, "'%s' reached step", p->name);
            frozen += p->frozen;
            continue;
        }
        ck_assert_msg(calls != NULL, "'%s' never reached step", p->name);
        ck_assert_float_eq(dgm_tensor_f32(calls)[0], 3.0f);
        if (dgm_tensor_numel(calls) > 1)
            ck_assert_float_eq(dgm_tensor_f32(calls)[1], 3.0f);
        stepped++;
    }
    ck_assert_int_gt(frozen, 0);
    ck_assert_int_gt(stepped, 0);
    dgm__phase *ph = &e->phases[0];
    ck_assert_int_eq(ph->n_groups, 1);
    ck_assert_double_eq(dgm_cfg_float(ph->groups[0].opt_cfg, "weight_decay"),
                        0.25);
    ck_assert_double_eq(dgm_cfg_float(ph->opt.cfg, "weight_decay"), 0.0);
    dgm_experiment_free(e);
    dgm_registry_free(reg);
}
END_TEST

static int widest_line(const char *text)
{
    int widest = 0;
    while (*text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        widest = len > widest ? len : widest;
        text += len + (nl != NULL);
    }
    return widest;
}

/* The line of text that holds needle, without its newline. */
static void line_with(const char *text, const char *needle, char *out, size_t n)
{
    const char *at = strstr(text, needle);
    ck_assert_msg(at != NULL, "no '%s' in:\n%s", needle, text);
    while (at > text && at[-1] != '\n')
        at--;
    size_t len = strcspn(at, "\n");
    snprintf(out, n, "%.*s", (int)len, at);
}

/* The list fits $COLUMNS, else 80 when stdout is not a terminal: long
 * summaries are cut with "...", then paths shortened to "..." and their
 * end, then the FILE column left out; `show` keeps the full text. The
 * scratch folder's long name makes its paths need shortening. */
START_TEST(cli_list_fits_width)
{
    char dir[PATH_MAX], args[2 * PATH_MAX], out[32768], err[8192];
    char line[1024], file[PATH_MAX + 16];
    tc_scratch(dir, sizeof dir,
               "cliwidth_with_a_folder_name_long_enough_that_its_paths_never_"
               "fit_in_120_columns",
               "tp_good", "tp_host", NULL);
    snprintf(args, sizeof args, "--path '%s'", dir);
    snprintf(file, sizeof file, "%s/tp_host.so", dir);
    const char *full = "test optimizer: SGD that checks its input";

    ck_assert_int_eq(
        run_cli_env("COLUMNS=1000", args, out, sizeof out, err, sizeof err), 0);
    line_with(out, "tp_probe_sgd", line, sizeof line);
    ck_assert_contains(line, full);
    ck_assert_contains(line, file);

    /* Summaries cut, paths shortened at a '/'. */
    ck_assert_int_eq(
        run_cli_env("COLUMNS=120", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_le(widest_line(out), 120);
    line_with(out, "tp_probe_sgd", line, sizeof line);
    ck_assert_msg(tc_ends_with(line, "/tp_host.so") && strstr(line, ".../") &&
                      !strstr(line, dir) && !strstr(line, full),
                  "%s", line);
    ck_assert_contains(out, "FILE");

    /* No room for files: the column goes, the summary fills the line. */
    ck_assert_int_eq(
        run_cli_env("COLUMNS=60", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_eq(widest_line(out), 60);
    line_with(out, "tp_probe_sgd", line, sizeof line);
    ck_assert_msg(strlen(line) == 60 && tc_ends_with(line, "..."), "%s", line);
    ck_assert_msg(!strstr(out, "FILE") && !strstr(out, ".so"), "%s", out);

    /* Not a terminal, no COLUMNS: 80; a COLUMNS that is not a positive
     * number is ignored. */
    ck_assert_int_eq(
        run_cli_env("-u COLUMNS", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_le(widest_line(out), 80);
    ck_assert_int_ge(widest_line(out), 70);
    ck_assert_int_eq(
        run_cli_env("COLUMNS=abc", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_le(widest_line(out), 80);

    snprintf(args, sizeof args, "show --path '%s' tp_probe_sgd", dir);
    ck_assert_int_eq(
        run_cli_env("COLUMNS=40", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, full);
}
END_TEST

/* ---- dgm config runs the plugins' own checks -------------------------- */

/* An experiment that validates (no data is read by `dgm config`), in a
 * scratch folder that also holds tp_check.so; line 6 is the optimizer,
 * line 9 the objective's check_loss term. Returns its path in exp. */
static void write_check_experiment(char *exp, size_t n, const char *tag,
                                   const char *optimizer, const char *extra)
{
    char dir[PATH_MAX / 2];
    tc_scratch(dir, sizeof dir, tag, "tp_check", NULL);
    ck_assert_int_lt(snprintf(exp, n, "%s/exp.yaml", dir), (int)n);
    FILE *f = fopen(exp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name: chk\n"
            "plugin_path: [\"%s\"]\n"
            "data: {plugin: idx, path: %s/no-data, batch_size: 8}\n"
            "model: {plugin: vae, latent: 2, encoder: {plugin: mlp, hidden: "
            "[8]}, decoder: {plugin: mlp, hidden: [8]}}\n"
            "train: {steps: 10}\n"
            "optimizer: %s\n"
            "objective:\n"
            "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
            "  - {loss: check_loss, inputs: [mu], limit: 1}\n"
            "%s",
            dir, dir, optimizer, extra ? extra : "");
    fclose(f);
}

/* `dgm config EXP OVERRIDES` must refuse with exit 2 and a message on
 * stderr holding each of the NULL-ended strings; nothing on stdout. */
static void config_refuses(const char *exp, const char *overrides, ...)
{
    char args[4 * PATH_MAX], out[65536], err[8192];
    snprintf(args, sizeof args, "config '%s' %s", exp, overrides);
    int rc = run_dgm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 2, "dgm %s: exit %d, stderr: %s", args, rc, err);
    ck_assert_str_eq(out, "");
    va_list ap;
    va_start(ap, overrides);
    for (const char *w; (w = va_arg(ap, const char *));)
        ck_assert_contains(err, w);
    va_end(ap);
}

START_TEST(config_runs_optimizer_checks)
{
    char exp[PATH_MAX], args[2 * PATH_MAX], out[65536], err[8192];
    write_check_experiment(exp, sizeof exp, "cfgopt", "{plugin: sgd, lr: 0.1}",
                           NULL);
    /* The baseline is valid: what follows is refused for its value. */
    snprintf(args, sizeof args, "config '%s'", exp);
    ck_assert_msg(run_dgm(args, out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_contains(out, "nesterov: false");
    /* Overridden values are located on the command line. */
    config_refuses(exp, "optimizer.lr=0", "optimizer 'sgd': ",
                   "<command line>:1:14: optimizer.lr: must be > 0, got 0",
                   NULL);
    config_refuses(exp, "optimizer.nesterov=true", "optimizer 'sgd': ",
                   "optimizer.nesterov: Nesterov momentum needs momentum > 0 "
                   "and dampening 0 (momentum 0, dampening 0)",
                   NULL);
    /* With momentum it is valid. */
    snprintf(args, sizeof args,
             "config '%s' optimizer.nesterov=true optimizer.momentum=0.9", exp);
    ck_assert_msg(run_dgm(args, out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    /* A phase's own optimizer, the other shipped optimizers, and a
     * parameter group's optimizer are checked too. */
    config_refuses(exp, "'phases.train.optimizer={plugin: adam, beta1: 1}'",
                   "optimizer 'adam': ",
                   "phases.train.optimizer.beta1: must "
                   "be in [0, 1), got 1",
                   NULL);
    config_refuses(exp, "'optimizer={plugin: rmsprop, lr: 0}'",
                   "optimizer 'rmsprop': ", "optimizer.lr: must be > 0", NULL);
    config_refuses(exp,
                   "'param_groups=[{params: \"decoder.*\", optimizer: "
                   "{plugin: adamw, lr: 0}}]'",
                   "optimizer 'adamw': ",
                   "param_groups[0].optimizer.lr: must be > 0", NULL);
    /* Values from the file are located in it: lr: 0 passes the schema
     * ([0, inf)) but not sgd's create, and so not its check. */
    write_check_experiment(exp, sizeof exp, "cfgopt", "{plugin: sgd, lr: 0}",
                           NULL);
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where,
             "optimizer 'sgd': %s:6:30: optimizer.lr: must be > 0, got 0", exp);
    config_refuses(exp, "", where, NULL);
}
END_TEST

/* `dgm config` and `dgm run` never dlopen a stray plugin on the search
 * path that the experiment does not name; `dgm plugins` lists it. */
START_TEST(cli_skips_stray_plugin)
{
    char exp[PATH_MAX], dir[PATH_MAX], marker[PATH_MAX + 16];
    char env[4 * PATH_MAX], args[3 * PATH_MAX], out[65536], err[8192];
    write_check_experiment(exp, sizeof exp, "stray", "{plugin: sgd, lr: 0.1}",
                           NULL);
    tc_scratch(dir, sizeof dir, "stray", "tp_stray", NULL);
    snprintf(marker, sizeof marker, "%s/marker", dir);
    snprintf(env, sizeof env,
             "COLUMNS=1000 DGM_TEST_STRAY_MARKER='%s' DGM_PLUGIN_PATH='%s'",
             marker, dir);
    unlink(marker);
    snprintf(args, sizeof args, "config '%s'", exp);
    int rc = run_dgm_env(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_contains(out, "check_loss"); /* it did read the experiment */
    ck_assert_msg(access(marker, F_OK) != 0, "dgm config loaded tp_stray");
    /* dgm run gets as far as the data (there is none): the plugins named
     * by the experiment are loaded by then, the stray one is not. */
    snprintf(args, sizeof args, "run '%s' --runs '%s/runs'", exp, dir);
    rc = run_dgm_env(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc != 0, "dgm run without data succeeded: %s", out);
    ck_assert_contains(err, "no-data");
    ck_assert_msg(access(marker, F_OK) != 0, "dgm run loaded tp_stray");
    /* The experiment names it: loaded. */
    snprintf(args, sizeof args,
             "config '%s' 'model.encoder={plugin: stray_block}'", exp);
    rc = run_dgm_env(env, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(access(marker, F_OK), 0);
    unlink(marker);
    /* dgm plugins lists everything. */
    rc = run_dgm_env(env, "plugins", out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_contains(out, "stray_block");
    ck_assert_int_eq(access(marker, F_OK), 0);
}
END_TEST

START_TEST(config_runs_loss_checks)
{
    char exp[PATH_MAX], args[2 * PATH_MAX], out[65536], err[8192];
    write_check_experiment(exp, sizeof exp, "cfgloss", "{plugin: adam}", NULL);
    snprintf(args, sizeof args, "config '%s'", exp);
    ck_assert_msg(run_dgm(args, out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    config_refuses(exp, "objective[1].limit=11", "loss 'check_loss': ",
                   "objective[1].limit: at most 10, got 11", NULL);
    /* A check that fails without a message is still reported, as the
     * plugin's fault. */
    config_refuses(exp, "objective[1].limit=7",
                   "loss 'check_loss': check returned -6 (DGM_ECONFIG) "
                   "without a message (a plugin bug)",
                   NULL);
    /* Located in the file when the value is there. */
    write_check_experiment(exp, sizeof exp, "cfgloss", "{plugin: adam}",
                           "phases: {train: {objective: [{loss: check_loss, "
                           "inputs: [mu], limit: 12}]}}\n");
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "loss 'check_loss': %s:10:", exp);
    config_refuses(exp, "", where, "limit: at most 10, got 12", NULL);
}
END_TEST

START_TEST(sweep_dry_run_runs_checks)
{
    char exp[PATH_MAX], args[4 * PATH_MAX], out[65536], err[8192];
    char sd[PATH_MAX + 16];
    write_check_experiment(exp, sizeof exp, "sweepchk",
                           "{plugin: sgd, lr: 0.1}",
                           "sweep: {grid: {optimizer.lr: [0.1, 0, 0.01]}}\n");
    snprintf(sd, sizeof sd, "%s.sweep", exp);
    snprintf(args, sizeof args, "sweep '%s' --dry-run --sweep-dir '%s'", exp,
             sd);
    int rc = run_dgm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 2, "exit %d: %s%s", rc, out, err);
    ck_assert_contains(err, "trial 1 (001-lr=0)");
    ck_assert_contains(err, "optimizer 'sgd': ");
    ck_assert_contains(err, "optimizer.lr: must be > 0, got 0");
    ck_assert_contains(err, "1 of 3 trials are invalid");
    ck_assert_ptr_null(strstr(err, "trial 0 "));
    ck_assert_ptr_null(strstr(err, "trial 2 "));
    ck_assert_int_ne(access(sd, F_OK), 0);
    /* Without the bad value every trial is valid. */
    write_check_experiment(exp, sizeof exp, "sweepchk",
                           "{plugin: sgd, lr: 0.1}",
                           "sweep: {grid: {optimizer.lr: [0.1, 0.01]}}\n");
    rc = run_dgm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s%s", rc, out, err);
    ck_assert_contains(out, "2 trials, all valid");
}
END_TEST

static Suite *registry_cli_suite(void)
{
    Suite *s = suite_create("registry_cli");
    TCase *tc = tq_case(s, "cli", cli_list, cli_show, cli_show_metric,
                        cli_list_fits_width);
    tcase_set_timeout(tc, 60);
    tc = tq_case(s, "host_promises", block_output_shape_checked,
                 scalar_loss_evaluates, optimizer_step_gets_trainable_weights);
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, host_setup, host_teardown);
    tc = tq_case(s, "config_check", config_runs_optimizer_checks,
                 config_runs_loss_checks, sweep_dry_run_runs_checks,
                 cli_skips_stray_plugin);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registry_cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
