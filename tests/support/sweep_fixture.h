/* sweep_fixture.h - test support: the tiny VAE whose trials the sweep
 * suites (test_sweep, test_sweep_asha, test_sweep_tpe) launch, and its
 * data in the test's scratch folder (linked into every test; uses Check).
 *
 *     static const char exp_fmt[] = TS_TINY_VAE
 *         "train: {epochs: 1, log_every: 1, samples: 4}\n"
 *         "sweep: ...";
 *     ts_sweep_setup();   // in a checked fixture; tc_scratch_teardown after
 *     fprintf(f, exp_fmt, DGM_TEST_PLUGIN_DIR, tc_scratch_dir);
 */
#ifndef DGM_TEST_SWEEP_FIXTURE_H
#define DGM_TEST_SWEEP_FIXTURE_H

/* The experiment but its `train:` and `sweep:`: 8x8 bands (ts_sweep_setup's
 * data), a VAE of latent 4 with MLPs of 8, Adam at 0.01, the `elbo`
 * metric, the test plugins on the path. A printf format taking the test
 * plugins' folder, then the scratch folder holding data/. */
#define TS_TINY_VAE                                                            \
    "name: tiny\n"                                                             \
    "seed: 1\n"                                                                \
    "threads: 1\n"                                                             \
    "plugin_path: [\"%s\"]\n"                                                  \
    "data: {plugin: idx, path: %s/data, train_images: ti, train_labels: "      \
    "tl, test_images: si, test_labels: sl, batch_size: 16}\n"                  \
    "model:\n"                                                                 \
    "  plugin: vae\n"                                                          \
    "  latent: 4\n"                                                            \
    "  encoder: {plugin: mlp, hidden: [8]}\n"                                  \
    "  decoder: {plugin: mlp, hidden: [8]}\n"                                  \
    "optimizer: {plugin: adam, lr: 0.01}\n"                                    \
    "metrics: [{plugin: elbo}]\n"

/* tc_scratch_setup, then tc_scratch_dir/data holding 64 training (ti, tl)
 * and 16 test (si, sl) band images; a failure fails the test. */
void ts_sweep_setup(void);

/* Under AddressSanitizer a SIGSEGV would be ASan's report and exit 1: let
 * a crashing plugin's signal through, as without it (adds handle_segv=0
 * to ASAN_OPTIONS). */
void ts_let_segv_through(void);

#endif
