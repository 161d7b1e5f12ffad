/* build_rnn.c - LSTM/GRU weights for blocks and models (PyTorch's names
 * and initialisation) and running them with dropout between layers. */
#include <math.h>
#include <stdio.h>

#include "dgm/error.h"
#include "plugin_internal.h"

int dgm_build_rnn(dgm_build *b, const char *name, dgm_rnn_cell cell,
                  int layers, int64_t input, int64_t hidden,
                  dgm_rnn_params *out)
{
    if (layers < 1 || layers > DGM_RNN_MAX_LAYERS || input < 1 || hidden < 1)
        return dgm_error(DGM_ERANGE,
                         "rnn '%s': %d layers (1..%d), input %lld, hidden "
                         "%lld (need >= 1)",
                         name, layers, DGM_RNN_MAX_LAYERS, (long long)input,
                         (long long)hidden);
    *out = (dgm_rnn_params){.cell = cell, .layers = layers, .input = input,
                            .hidden = hidden};
    int64_t gh = (cell == DGM_RNN_LSTM ? 4 : 3) * hidden;
    float k = 1.0f / sqrtf((float)hidden);
    for (int l = 0; l < layers; l++) {
        struct {
            const char *what;
            int ndim;
            int64_t cols;
            dgm_param **p;
        } t[4] = {{"weight_ih", 2, l ? hidden : input, &out->w_ih[l]},
                  {"weight_hh", 2, hidden, &out->w_hh[l]},
                  {"bias_ih", 1, 0, &out->b_ih[l]},
                  {"bias_hh", 1, 0, &out->b_hh[l]}};
        for (int i = 0; i < 4; i++) {
            char n[256];
            int64_t shape[2] = {gh, t[i].cols};
            snprintf(n, sizeof n, "%s.%s_l%d", name, t[i].what, l);
            int rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, t[i].ndim, shape,
                                     t[i].p);
            if (rc < 0)
                return rc;
            dgm_init_uniform((*t[i].p)->value, b->rng, -k, k);
        }
    }
    return 0;
}

/* Layers [first, first + n) of p as graph weights for dgm_rnn. */
static void weights_of(dgm_graph *g, const dgm_rnn_params *p, int first,
                       int n, dgm_var **buf, dgm_rnn_weights *w)
{
    *w = (dgm_rnn_weights){.cell = p->cell, .layers = n, .hidden = p->hidden,
                           .w_ih = buf, .w_hh = buf + n, .b_ih = buf + 2 * n,
                           .b_hh = buf + 3 * n};
    for (int l = 0; l < n; l++) {
        w->w_ih[l] = dgm_param_var(g, p->w_ih[first + l]);
        w->w_hh[l] = dgm_param_var(g, p->w_hh[first + l]);
        w->b_ih[l] = dgm_param_var(g, p->b_ih[first + l]);
        w->b_hh[l] = dgm_param_var(g, p->b_hh[first + l]);
    }
}

dgm_var *dgm_rnn_forward(dgm_graph *g, const dgm_rnn_params *p, dgm_var *x,
                         float dropout, dgm_var *h0, dgm_var *c0,
                         dgm_var **h_n, dgm_var **c_n)
{
    dgm_var *buf[4 * DGM_RNN_MAX_LAYERS];
    dgm_rnn_weights w;
    bool lstm = p->cell == DGM_RNN_LSTM;
    if (!(dropout > 0.0f && p->layers > 1 && dgm_graph_training(g))) {
        weights_of(g, p, 0, p->layers, buf, &w);
        return dgm_rnn(g, x, &w, h0, c0, h_n, c_n);
    }
    /* Dropout between layers: one dgm_rnn per layer, states sliced from
     * h0/c0 and the final ones concatenated back. */
    dgm_var *hs[DGM_RNN_MAX_LAYERS], *cs[DGM_RNN_MAX_LAYERS];
    for (int l = 0; l < p->layers && x; l++) {
        if (l > 0)
            x = dgm_dropout(g, x, dropout);
        weights_of(g, p, l, 1, buf, &w);
        dgm_var *h = h0 ? dgm_slice(g, h0, 0, l, l + 1, 1) : NULL;
        dgm_var *c = lstm && c0 ? dgm_slice(g, c0, 0, l, l + 1, 1) : NULL;
        x = dgm_rnn(g, x, &w, h, c, &hs[l], lstm ? &cs[l] : NULL);
    }
    if (x && h_n)
        *h_n = dgm_concat(g, hs, p->layers, 0);
    if (x && c_n)
        *c_n = lstm ? dgm_concat(g, cs, p->layers, 0) : NULL;
    return x;
}
