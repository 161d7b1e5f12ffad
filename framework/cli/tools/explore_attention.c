/* explore_attention.c - attention maps of `dgm explore`: for a model whose
 * blocks record "attention" (self_attention in a GAN's generator: where
 * chosen positions of a generated image look; transformer blocks: which
 * earlier tokens each token of a prompt looks at, per layer and head). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/rng.h"
#include "explore.h"

#define MAX_TAPS 64

static void free_taps(dgm_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        dgm_tensor_free(t[i]);
}

void dgm__heat_rgb(float v, float rgb[3])
{
    /* black -> red -> yellow -> white as v goes from 0 to 1 */
    rgb[0] = fminf(1, fmaxf(0, 3 * v));
    rgb[1] = fminf(1, fmaxf(0, 3 * v - 1));
    rgb[2] = fminf(1, fmaxf(0, 3 * v - 2));
}

int dgm__explore_attention_image(dgm_run *r, const dgm__explore_opts *o,
                                 dgm_tensor **fig, int *cols, dgm_tensor **att)
{
    *fig = NULL;
    if (att)
        *att = NULL;
    int64_t L = dgm_run_latent_size(r), n = o->examples > 0 ? o->examples : 1;
    if (L < 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' has no latent space to draw images "
                         "from for attention maps",
                         dgm_run_model_name(r));
    const dgm_data_info *info = dgm_run_data_info(r);
    const dgm_shape *xs = &info->x_shape;
    if (info->x_dtype != DGM_F32 || xs->ndim != 3)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s': its examples are not images [C, H, W]",
                         dgm_run_model_name(r));
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 2, (int64_t[]){n, L}), *x = NULL;
    if (!z)
        return dgm_last_code();
    dgm_rng g;
    dgm_rng_seed(&g, o->seed);
    for (int64_t i = 0; i < n * L; i++)
        dgm_tensor_f32(z)[i] = dgm_rng_normal(&g);
    dgm_tensor *taps[MAX_TAPS];
    int nt = 0;
    int rc = dgm_run_probe(r, NULL, z, "attention", taps, MAX_TAPS, &nt);
    if (rc == 0)
        rc = dgm_run_decode(r, z, NULL, &x);
    dgm_tensor_free(z);
    /* the first (lowest-resolution) attention of the generator */
    const dgm_tensor *a = rc == 0 ? taps[0] : NULL;
    int64_t hw = a ? a->shape[a->ndim - 1] : 0,
            h = (int64_t)llround(sqrt((double)hw));
    if (rc == 0 && (a->ndim != 3 || a->shape[0] != n || h * h != hw))
        rc = dgm_error(DGM_ESHAPE,
                       "model '%s': attention is not [n, HW, HW] over a "
                       "square map",
                       dgm_run_model_name(r));
    int64_t C = xs->dim[0], H = xs->dim[1], W = xs->dim[2];
    const int64_t Q = 4; /* query positions: the four quadrants' centres */
    int64_t qpos[4] = {(h / 4) * h + h / 4, (h / 4) * h + 3 * h / 4,
                       (3 * h / 4) * h + h / 4, (3 * h / 4) * h + 3 * h / 4};
    if (rc == 0 &&
        !(*fig = dgm_tensor_new(DGM_F32, 4, (int64_t[]){n * (Q + 1), 3, H, W})))
        rc = dgm_last_code();
    float span = info->x_max - info->x_min;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        const float *img = dgm_tensor_f32(x) + i * C * H * W;
        for (int64_t col = 0; col <= Q; col++) {
            float *dst = dgm_tensor_f32(*fig) + (i * (Q + 1) + col) * 3 * H * W;
            const float *row =
                col ? dgm_tensor_f32(a) + (i * hw + qpos[col - 1]) * hw : NULL;
            float mx = 0;
            for (int64_t j = 0; row && j < hw; j++)
                mx = fmaxf(mx, row[j]);
            for (int64_t y = 0; y < H; y++)
                for (int64_t xx = 0; xx < W; xx++) {
                    float grey = 0;
                    for (int64_t c = 0; c < C; c++)
                        grey += (img[(c * H + y) * W + xx] - info->x_min) /
                                (span > 0 ? span : 1) / (float)C;
                    float rgb[3] = {grey, grey, grey};
                    if (row) {
                        int64_t cell = (y * h / H) * h + xx * h / W;
                        float heat[3];
                        dgm__heat_rgb(mx > 0 ? row[cell] / mx : 0, heat);
                        for (int k = 0; k < 3; k++)
                            rgb[k] = 0.35f * grey + 0.65f * heat[k];
                        if (cell == qpos[col - 1]) /* the query: green */
                            rgb[0] = 0, rgb[1] = 1, rgb[2] = 0;
                    }
                    for (int k = 0; k < 3; k++)
                        dst[(k * H + y) * W + xx] = rgb[k];
                }
        }
    }
    *cols = (int)(Q + 1);
    if (rc == 0 && att)
        *att = taps[0], taps[0] = NULL;
    free_taps(taps, nt);
    dgm_tensor_free(x);
    if (rc < 0) {
        dgm_tensor_free(*fig);
        *fig = NULL;
    }
    return rc;
}

int dgm__explore_attention_text(dgm_run *r, const char *prompt, int cell,
                                dgm_tensor **fig, int *heads, int *layers,
                                dgm_tensor **att)
{
    *fig = NULL;
    if (att)
        *att = NULL;
    const dgm_data_info *info = dgm_run_data_info(r);
    if (info->x_dtype != DGM_I64 || info->x_shape.ndim != 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s': its examples are not token windows "
                         "to give a prompt",
                         dgm_run_model_name(r));
    int64_t T = info->x_shape.dim[0], len = (int64_t)strlen(prompt);
    if (len < 1 || len > T)
        return dgm_error(DGM_ERANGE,
                         "--prompt: %lld bytes, the model's window holds 1 "
                         "to %lld",
                         (long long)len, (long long)T);
    int32_t *ids = malloc(sizeof *ids * (size_t)len);
    dgm_tensor *x = dgm_tensor_new(DGM_I64, 2, (int64_t[]){1, T});
    int rc = ids && x ? dgm_run_text_ids(r, prompt, ids)
                      : dgm_error(DGM_ENOMEM, "explore: out of memory");
    /* later positions pad the window; causal attention keeps them out of
     * the prompt's rows, which are all that is drawn */
    for (int64_t i = 0; rc == 0 && i < len; i++)
        ((int64_t *)x->data)[i] = ids[i];
    dgm_tensor *taps[MAX_TAPS];
    int nt = 0;
    if (rc == 0)
        rc = dgm_run_probe(r, x, NULL, "attention", taps, MAX_TAPS, &nt);
    free(ids);
    dgm_tensor_free(x);
    /* each tap [1, 1, H, T, T], one per layer */
    int64_t H = rc == 0 ? taps[0]->shape[2] : 0;
    for (int l = 0; rc == 0 && l < nt; l++)
        if (taps[l]->ndim != 5 || taps[l]->shape[2] != H ||
            taps[l]->shape[3] != T || taps[l]->shape[4] != T)
            rc = dgm_error(DGM_ESHAPE,
                           "model '%s': attention %d is not [1, 1, heads, "
                           "T, T]",
                           dgm_run_model_name(r), l);
    int64_t side = len * cell;
    if (rc == 0 && !(*fig = dgm_tensor_new(DGM_F32, 4,
                                           (int64_t[]){nt * H, 3, side, side})))
        rc = dgm_last_code();
    for (int64_t m = 0; rc == 0 && m < nt * H; m++) {
        const float *p = dgm_tensor_f32(taps[m / H]) + (m % H) * T * T;
        float *dst = dgm_tensor_f32(*fig) + m * 3 * side * side;
        for (int64_t y = 0; y < side; y++)
            for (int64_t xx = 0; xx < side; xx++) {
                float rgb[3];
                dgm__heat_rgb(p[(y / cell) * T + xx / cell], rgb);
                for (int k = 0; k < 3; k++)
                    dst[(k * side + y) * side + xx] = rgb[k];
            }
    }
    *heads = (int)H;
    *layers = nt;
    if (rc == 0 && att) {
        /* every layer's [H, len, len] block of the prompt, stacked */
        *att = dgm_tensor_new(DGM_F32, 3, (int64_t[]){nt * H, len, len});
        if (!*att)
            rc = dgm_last_code();
        for (int64_t m = 0; rc == 0 && m < nt * H; m++)
            for (int64_t i = 0; i < len; i++)
                memcpy(dgm_tensor_f32(*att) + (m * len + i) * len,
                       dgm_tensor_f32(taps[m / H]) + (m % H) * T * T + i * T,
                       sizeof(float) * (size_t)len);
    }
    free_taps(taps, nt);
    if (rc < 0) {
        dgm_tensor_free(*fig);
        *fig = NULL;
        if (att) {
            dgm_tensor_free(*att);
            *att = NULL;
        }
    }
    return rc;
}
