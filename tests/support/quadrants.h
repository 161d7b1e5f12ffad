/* quadrants.h - test support: a tiny labelled image set in IDX files for
 * GAN and host tests (linked into every test; uses only libc).
 *
 * dir/img and dir/lab get n 28x28 u8 images of 4 classes and their labels:
 * class c = i % 4 is a bright square in quadrant c on a dark speckled
 * background, the speckle drawn from an LCG seeded with seed. Returns 0, or
 * -1 when a file cannot be written. */
#ifndef DGM_TEST_QUADRANTS_H
#define DGM_TEST_QUADRANTS_H

#include <stdbool.h>

int tq_write_quadrants(const char *dir, const char *img, const char *lab, int n,
                       unsigned seed);

/* The same for n 8x8 images: class c lights rows 2c and 2c+1 (230) on a
 * dark (10) background, with a sparse speckle (200) drawn from an LCG
 * seeded with seed; seed 0: no speckle. For the host's tiny experiments. */
int tq_write_bands(const char *dir, const char *img, const char *lab, int n,
                   unsigned seed);

/* <root>/data (made if absent) holding train-img/train-lab (n_train
 * images, seed 7) and test-img/test-lab (n_test, seed 99), quadrants or
 * (bands) bands: the split the host suites' tiny experiments name. Returns 0,
 * or -1 when a folder or file cannot be made. */
int tq_write_data(const char *root, int n_train, int n_test, bool bands);

/* <root>/tiny.yaml: yaml_fmt with its one %s replaced by root (where the
 * data of tq_write_data lies). Returns 0, or -1 when it cannot be written
 * or the text does not fit 8 kB. */
int tq_write_yaml(const char *root, const char *yaml_fmt);

/* For tq_write_yaml: the threads, data and model lines of a tiny DCGAN
 * (latent 8, width 8, batch 16, one thread) on tq_write_data's data (its
 * one %s: the root), to go between a test's name and seed lines and its
 * phases; TQ_TINY_GAN_ADAM, phases with the DCGAN recipe's Adam. */
#define TQ_TINY_GAN                                                            \
    "threads: 1\n"                                                             \
    "data:\n"                                                                  \
    "  plugin: idx\n"                                                          \
    "  path: %s/data\n"                                                        \
    "  train_images: train-img\n"                                              \
    "  train_labels: train-lab\n"                                              \
    "  test_images: test-img\n"                                                \
    "  test_labels: test-lab\n"                                                \
    "  scale: symmetric\n"                                                     \
    "  batch_size: 16\n"                                                       \
    "model:\n"                                                                 \
    "  plugin: gan\n"                                                          \
    "  latent: 8\n"                                                            \
    "  generator: {plugin: dcgan_generator, width: 8}\n"                       \
    "  discriminator: {plugin: dcgan_discriminator, width: 8}\n"
#define TQ_TINY_GAN_ADAM                                                       \
    "phases:\n"                                                                \
    "  discriminator:\n"                                                       \
    "    optimizer: {plugin: adam, lr: 2.0e-3, beta1: 0.5}\n"                  \
    "  generator:\n"                                                           \
    "    optimizer: {plugin: adam, lr: 2.0e-3, beta1: 0.5}\n"

#endif
