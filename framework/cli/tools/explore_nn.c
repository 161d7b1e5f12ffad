/* explore_nn.c - nearest neighbours of generated samples among training
 * examples, in a classifier's feature space or in data space: the
 * memorisation check done by eye. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "explore.h"

/* Rows of t [n, x...] as [n, d] features: the classifier's "features"
 * output, or a flat copy of the data. */
static int features(dgm_run *feat, const dgm_tensor *t, dgm_tensor **out)
{
    if (feat)
        return dgm_run_forward_output(feat, t, "features", out);
    dgm_tensor *c = dgm_tensor_clone(t);
    int64_t n = t->shape[0], flat[2] = {n, n ? dgm_tensor_numel(t) / n : 0};
    int rc = c ? dgm_view_reshape(c, 2, flat) : dgm_last_code();
    if (rc < 0) {
        dgm_tensor_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int dgm__explore_neighbours(dgm_run *feat, const dgm_tensor *queries,
                            const dgm_tensor *base, int k, int64_t *idx,
                            float *dist)
{
    int64_t nb = base->shape[0];
    if (k < 1 || k > nb)
        return dgm_error(DGM_ERANGE,
                         "nearest neighbours: k = %d of %lld candidates", k,
                         (long long)nb);
    dgm_tensor *fq = NULL, *fb = NULL;
    int rc = features(feat, queries, &fq);
    if (rc == 0)
        rc = features(feat, base, &fb);
    if (rc == 0 && (fq->dtype != DGM_F32 || fb->dtype != DGM_F32))
        rc = dgm_error(DGM_EDTYPE, "nearest neighbours: features are not f32");
    int64_t nq = queries->shape[0], d = rc == 0 ? fq->shape[1] : 0;
    for (int64_t q = 0; rc == 0 && q < nq; q++) {
        const float *a = dgm_tensor_f32(fq) + q * d;
        int64_t *bi = idx + q * k;
        float *bd = dist + q * k;
        for (int j = 0; j < k; j++)
            bi[j] = -1, bd[j] = FLT_MAX;
        for (int64_t i = 0; i < nb; i++) {
            const float *b = dgm_tensor_f32(fb) + i * d;
            double s = 0;
            for (int64_t c = 0; c < d; c++) {
                double e = (double)a[c] - b[c];
                s += e * e;
            }
            float v = (float)s;
            if (v >= bd[k - 1])
                continue;
            /* insertion into the sorted k best; ties keep the lower index */
            int j = k - 1;
            for (; j > 0 && bd[j - 1] > v; j--)
                bd[j] = bd[j - 1], bi[j] = bi[j - 1];
            bd[j] = v, bi[j] = i;
        }
        for (int j = 0; j < k; j++)
            bd[j] = sqrtf(bd[j]);
    }
    dgm_tensor_free(fq);
    dgm_tensor_free(fb);
    return rc;
}
