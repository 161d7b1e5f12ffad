/* test_conv_blocks.c - conv_encoder and conv_decoder at the image sizes
 * and channel counts they take: the stage count derived from the size
 * (16, 32, 64, 128 with 1 and 3 channels), the defaults at 28x28 the same
 * network as before the count could be derived, the sizes and counts
 * refused, and finite differences on a small RGB image. The shared size
 * logic is the dcgan blocks' (plugins/blocks/image_stages.h), whose own
 * cases are in test_gan_blocks.c. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "block_check.h"
#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "shipped_registry.h"

/* Shapes and layer counts: S = 2^(k + 2) gives k stages down to 4x4;
 * width doubles away from the image; the image end has C channels. */
START_TEST(sizes_and_channels)
{
    const int64_t sides[4] = {16, 32, 64, 128}, chans[2] = {1, 3};
    for (int si = 0; si < 4; si++)
        for (int ci = 0; ci < 2; ci++) {
            int64_t S = sides[si], C = chans[ci], d1 = 0;
            int k = si + 2;
            dgm_shape img = {3, {C, S, S}}, z = {1, {6}}, none = {0};
            ck_assert_int_eq(tc_count_layers("{plugin: conv_encoder, width: 4}",
                                             img, none, "conv", &d1),
                             k);
            ck_assert_int_eq(d1, 4 << (k - 2)); /* the last conv's input */
            /* the features: (4 << (k - 1)) channels at 4x4 */
            tc_sized_block("{plugin: conv_encoder, width: 4}", img, none, 2,
                           (int64_t[]){2, (4 << (k - 1)) * 16});
            tc_sized_block("{plugin: conv_encoder, width: 4, out: 5}", img,
                           none, 2, (int64_t[]){2, 5});
            ck_assert_int_eq(tc_count_layers("{plugin: conv_decoder, width: 4}",
                                             z, img, "deconv", &d1),
                             k);
            ck_assert_int_eq(d1, C); /* the last deconv gives C channels */
            tc_sized_block("{plugin: conv_decoder, width: 4}", z, img, 4,
                           (int64_t[]){2, C, S, S});
        }
    /* stages set: 64x64 RGB in 3 stages to an 8x8 map of 4 << 2 */
    dgm_shape img = {3, {3, 64, 64}};
    tc_sized_block("{plugin: conv_encoder, width: 4, stages: 3}", img,
                   (dgm_shape){0}, 2, (int64_t[]){2, 16 * 8 * 8});
    tc_sized_block("{plugin: conv_decoder, width: 4, stages: 3}",
                   (dgm_shape){1, {6}}, img, 4, (int64_t[]){2, 3, 64, 64});
    /* an explicit list still sets the count at any size the layers fit */
    tc_sized_block("{plugin: conv_encoder, channels: [4, 8, 8]}",
                   (dgm_shape){3, {3, 28, 28}}, (dgm_shape){0}, 2,
                   (int64_t[]){2, 8 * 3 * 3}); /* 28, 14, 7, 3 */
}
END_TEST

/* Every parameter of a and b: the same names, shapes and values. */
static void same_params(const char *a, const char *b, dgm_shape in,
                        dgm_shape out)
{
    dgm_params *pa = dgm_params_new(), *pb = dgm_params_new();
    dgm_build *ba, *bb;
    dgm_config *ca, *cb;
    dgm_shape oa = out, ob = out;
    tc_make_block(&ba, pa, &ca, a, in, &oa);
    tc_make_block(&bb, pb, &cb, b, in, &ob);
    ck_assert_int_eq(dgm_params_count(pa), dgm_params_count(pb));
    ck_assert_int_gt(dgm_params_count(pa), 4);
    for (int i = 0; i < dgm_params_count(pa); i++) {
        const dgm_param *x = dgm_params_at(pa, i), *y = dgm_params_at(pb, i);
        ck_assert_str_eq(x->name, y->name);
        int64_t n = dgm_tensor_numel(x->value);
        ck_assert_int_eq(n, dgm_tensor_numel(y->value));
        ck_assert_int_eq(x->value->ndim, y->value->ndim);
        for (int d = 0; d < x->value->ndim; d++)
            ck_assert_int_eq(x->value->shape[d], y->value->shape[d]);
        ck_assert_msg(!memcmp(dgm_tensor_f32(x->value),
                              dgm_tensor_f32(y->value),
                              sizeof(float) * (size_t)n),
                      "%s differs between %s and %s", x->name, a, b);
    }
    ck_assert_int_eq(oa.ndim, ob.ndim);
    ck_assert_int_eq(oa.dim[0], ob.dim[0]);
    dgm_build_free(ba);
    dgm_build_free(bb);
    dgm_config_free(ca);
    dgm_config_free(cb);
    dgm_params_free(pa);
    dgm_params_free(pb);
}

/* 28x28 with the defaults is the network the old defaults made
 * (channels [32, 64] / [64, 32]); 32x32 RGB derived is the list
 * vae_conv_cifar.yaml spelled out. */
START_TEST(defaults_as_before)
{
    dgm_shape fm = {3, {1, 28, 28}}, rgb = {3, {3, 32, 32}};
    dgm_shape z = {1, {20}}, none = {0};
    same_params("{plugin: conv_encoder, out: 7}",
                "{plugin: conv_encoder, channels: [32, 64], out: 7}", fm, none);
    same_params("{plugin: conv_decoder}",
                "{plugin: conv_decoder, channels: [64, 32]}", z, fm);
    same_params("{plugin: conv_encoder, width: 8}",
                "{plugin: conv_encoder, channels: [8, 16, 32]}", rgb, none);
    same_params("{plugin: conv_decoder, width: 8}",
                "{plugin: conv_decoder, channels: [32, 16, 8]}", z, rgb);
}
END_TEST

/* Sizes and counts that do not fit: the code, and a message naming the
 * block, the key, the value and what is allowed. */
START_TEST(sizes_refused)
{
    const struct {
        const char *yaml;
        bool dec;
        dgm_shape img;
        int rc;
        const char *key, *says;
    } bad[] = {
        {"{plugin: conv_encoder}",
         false,
         {3, {3, 48, 48}},
         DGM_ESHAPE,
         "stages",
         "image [3, 48, 48]: the stages are derived for H a power of two "
         "from 16 to 128 (or 28)"},
        {"{plugin: conv_decoder}",
         true,
         {3, {3, 100, 100}},
         DGM_ESHAPE,
         "stages",
         "image [3, 100, 100]: the stages are derived for H a power of two"},
        {"{plugin: conv_encoder}",
         false,
         {3, {1, 256, 256}},
         DGM_ESHAPE,
         "stages",
         "image [1, 256, 256] is larger than 128 x 128"},
        {"{plugin: conv_decoder, stages: 6}",
         true,
         {3, {3, 32, 32}},
         DGM_ESHAPE,
         "stages",
         "6 stride-2 stages need H and W divisible by 64; the image is "
         "[3, 32, 32]"},
        {"{plugin: conv_encoder, stages: 3, channels: [8, 16]}",
         false,
         {3, {3, 32, 32}},
         DGM_ERANGE,
         "channels",
         "2 entries for 3 stages"},
        {"{plugin: conv_encoder, stride: 1}",
         false,
         {3, {3, 32, 32}},
         DGM_ERANGE,
         "stages",
         "derived for stride 2 only (stride is 1)"},
        {"{plugin: conv_decoder, channels: [1, 1, 1, 1, 1, 1, 1, 1, 1]}",
         true,
         {3, {3, 32, 32}},
         DGM_ERANGE,
         "channels",
         "at most 8 stages, got 9 entries"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dgm_params *ps = dgm_params_new();
        dgm_build *b;
        dgm_config *cfg;
        ck_assert_int_eq(dgm_build_new(&b, tc_reg, ps, 3), 0);
        ck_assert_int_eq(dgm_config_parse(&cfg, bad[i].yaml, "block.yaml"), 0);
        dgm_shape z = {1, {6}}, out = bad[i].dec ? bad[i].img : (dgm_shape){0};
        dgm_block *blk = NULL;
        int rc = dgm_block_create(b, cfg, "blk", bad[i].dec ? &z : &bad[i].img,
                                  &out, &blk);
        const char *m = dgm_last_error();
        char key[32];
        snprintf(key, sizeof key, "%s:", bad[i].key);
        ck_assert_msg(rc == bad[i].rc, "%s: rc %d: %s", bad[i].yaml, rc, m);
        ck_assert_ptr_null(blk);
        ck_assert_msg(strstr(m, bad[i].dec ? "conv_decoder" : "conv_encoder") &&
                          strstr(m, key) && strstr(m, bad[i].says),
                      "%s: %s", bad[i].yaml, m);
        dgm_build_free(b);
        dgm_config_free(cfg);
        dgm_params_free(ps);
    }
}
END_TEST

/* Finite differences through both blocks with derived stages on a 16x16
 * RGB image, and the oneDNN path against the reference (one image for the
 * encoder: its 768 inputs are each perturbed twice). */
START_TEST(rgb_gradients)
{
    dgm_shape img = {3, {3, 16, 16}}, z = {1, {5}};
    tc_gradcheck_block("{plugin: conv_encoder, width: 2, out: 3, "
                       "activation: tanh, batch_norm: false}",
                       img, (dgm_shape){0}, 1, false);
    tc_gradcheck_block("{plugin: conv_decoder, width: 2, activation: tanh, "
                       "batch_norm: false}",
                       z, img, 2, false);
}
END_TEST

static Suite *conv_blocks_suite(void)
{
    Suite *s = suite_create("conv_blocks");
    TCase *tc = tq_case(s, "sizes", sizes_and_channels, defaults_as_before,
                        sizes_refused, rgb_gradients);
    tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conv_blocks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
