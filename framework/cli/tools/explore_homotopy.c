/* explore_homotopy.c - homotopies of a sequence VAE (Bowman et al. 2016,
 * sec. 4): two texts encoded to their posterior means and the windows
 * decoded at evenly spaced points of the line between them, greedily and,
 * with a temperature, drawn with a seed; written as a text figure. */
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "explore.h"

void dgm__homotopy_free(dgm__homotopy *h)
{
    free(h->text[0]);
    free(h->text[1]);
    dgm_tensor_free(h->z);
    dgm_tensor_free(h->greedy);
    dgm_tensor_free(h->sampled);
    memset(h, 0, sizeof *h);
}

/* The posterior mean [1, Z] of text, which becomes h->text[end]. */
static int encode_text(dgm_run *r, const char *text, int64_t T,
                       dgm__homotopy *h, int end, dgm_tensor **mean)
{
    int64_t len = (int64_t)strlen(text);
    if (len < 1 || len > T)
        return dgm_error(DGM_ERANGE,
                         "--prompts: \"%s\" is %lld bytes, the model's "
                         "window holds 1 to %lld",
                         text, (long long)len, (long long)T);
    int32_t *ids = malloc(sizeof *ids * (size_t)len);
    dgm_tensor *x = dgm_tensor_new(DGM_I64, 2, (int64_t[]){1, len});
    int rc = ids && x && (h->text[end] = strdup(text))
                 ? dgm_run_text_ids(r, text, ids)
                 : dgm_error(DGM_ENOMEM, "explore: out of memory");
    for (int64_t i = 0; rc == 0 && i < len; i++)
        ((int64_t *)x->data)[i] = ids[i];
    if (rc == 0)
        rc = dgm_run_encode(r, x, mean, NULL);
    free(ids);
    dgm_tensor_free(x);
    return rc;
}

/* The posterior means [1, Z] of test windows 0 and 1, and their texts. */
static int encode_test(dgm_run *r, int64_t T, dgm__homotopy *h,
                       dgm_tensor **mean)
{
    dgm_tensor *x = NULL, *m = NULL;
    int rc = dgm_run_examples(r, DGM_SPLIT_TEST, 0, 2, &x, NULL);
    if (rc == 0)
        rc = dgm_run_encode(r, x, &m, NULL);
    for (int end = 0; end < 2 && rc == 0; end++) {
        if (!(h->text[end] = malloc((size_t)T + 1)))
            rc = dgm_error(DGM_ENOMEM, "explore: out of memory");
        else
            rc = dgm_run_ids_text(r, (const int64_t *)x->data + end * T, T,
                                  h->text[end]);
        dgm_tensor row = *m;
        if (rc == 0)
            rc = dgm_view_slice(&row, 0, end, end + 1, 1);
        if (rc == 0 && !(mean[end] = dgm_tensor_clone(&row)))
            rc = dgm_last_code();
    }
    dgm_tensor_free(x);
    dgm_tensor_free(m);
    return rc;
}

int dgm__explore_homotopy(dgm_run *r, const dgm__explore_opts *o,
                          dgm__homotopy *h)
{
    memset(h, 0, sizeof *h);
    const dgm_data_info *info = dgm_run_data_info(r);
    if (info->x_dtype != DGM_I64 || info->x_shape.ndim != 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s': homotopies are paths between two "
                         "texts, and its examples are not token windows "
                         "(its latent paths are the interpolations)",
                         dgm_run_model_name(r));
    int64_t Z = dgm_run_latent_size(r), T = info->x_shape.dim[0];
    if (Z < 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' has no latent space to walk between "
                         "two texts (its plugin has no latent_size, decode "
                         "and encode slots; a sequence VAE has)",
                         dgm_run_model_name(r));
    h->steps = o->steps;
    h->len = T;
    h->from_test = !o->prompts[0];
    dgm_tensor *mean[2] = {NULL, NULL};
    int rc = 0;
    if (h->from_test)
        rc = encode_test(r, T, h, mean);
    for (int end = 0; end < 2 && rc == 0 && !h->from_test; end++)
        rc = encode_text(r, o->prompts[end], T, h, end, &mean[end]);
    if (rc == 0 &&
        !(h->z = dgm_tensor_new(DGM_F32, 2, (int64_t[]){h->steps, Z})))
        rc = dgm_last_code();
    /* z_i = (1 - a) mu_A + a mu_B with a = i / (steps - 1): the ends are
     * the means themselves, bit for bit */
    for (int i = 0; rc == 0 && i < h->steps; i++) {
        double a = (double)i / (h->steps - 1);
        const float *za = mean[0]->data, *zb = mean[1]->data;
        float *zi = (float *)h->z->data + (int64_t)i * Z;
        for (int64_t d = 0; d < Z; d++)
            zi[d] = (float)((1.0 - a) * za[d] + a * zb[d]);
    }
    if (rc == 0)
        rc = dgm_run_decode(r, h->z, NULL, &h->greedy);
    if (rc == 0 && o->temperature > 0.0f)
        rc = dgm_run_decode_sampled(r, h->z, o->temperature, o->seed,
                                    &h->sampled);
    dgm_tensor_free(mean[0]);
    dgm_tensor_free(mean[1]);
    if (rc < 0)
        dgm__homotopy_free(h);
    return rc;
}

/* text shown on one line: \n, \t, \\ and other unprintable bytes
 * escaped. */
static void shown(FILE *f, const char *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\\')
            fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

static int rows(FILE *f, dgm_run *r, const dgm__homotopy *h,
                const dgm_tensor *ids)
{
    char *text = malloc((size_t)h->len + 1);
    if (!text)
        return dgm_error(DGM_ENOMEM, "explore: out of memory");
    int rc = 0;
    for (int i = 0; i < h->steps && rc == 0; i++) {
        rc = dgm_run_ids_text(r, (const int64_t *)ids->data + i * h->len,
                              h->len, text);
        fprintf(f, "%.3f  ", (double)i / (h->steps - 1));
        shown(f, text, h->len);
        fputc('\n', f);
    }
    free(text);
    return rc;
}

int dgm__homotopy_write(FILE *f, dgm_run *r, const dgm__homotopy *h,
                        const dgm__explore_opts *o)
{
    for (int end = 0; end < 2; end++) {
        fprintf(f, "%c: ", end ? 'B' : 'A');
        shown(f, h->text[end], (int64_t)strlen(h->text[end]));
        if (h->from_test)
            fprintf(f, "   (test window %d)", end);
        fputc('\n', f);
    }
    fprintf(f,
            "\n%d points z = (1 - a) mean_A + a mean_B, a = 0 .. 1, each "
            "decoded to %lld bytes from the unknown id\n\ngreedy (the most "
            "likely byte at each step):\n",
            h->steps, (long long)h->len);
    int rc = rows(f, r, h, h->greedy);
    if (rc == 0 && h->sampled) {
        fprintf(f, "\nsampled at temperature %g, seed %llu:\n",
                (double)o->temperature, (unsigned long long)o->seed);
        rc = rows(f, r, h, h->sampled);
    }
    return rc;
}
