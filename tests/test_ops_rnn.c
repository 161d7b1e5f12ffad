/* test_ops_rnn.c - suite "ops_rnn": dgm_rnn (multi-layer LSTM and GRU in
 * PyTorch's layout). Gradients of y, h_n and c_n together against central
 * finite differences on both backends, oneDNN against the plain-C
 * reference at a realistic size, exact values against PyTorch 1.13
 * (tests/reference/rnn_reference.py), and bad input. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/tensor.h"
#include "gradcheck.h"

#define MAX_L 2
#define MAX_LEAVES (3 + 4 * MAX_L)

typedef struct rnn_case {
    dgm_rnn_cell cell;
    int L;
    int64_t T, N, I, H;
    bool h0, c0; /* pass initial states (c0 only means something for LSTM) */
} rnn_case;

static int gates(const rnn_case *c)
{
    return c->cell == DGM_RNN_LSTM ? 4 : 3;
}

/* Leaves: x, [h0], [c0], then per layer w_ih, w_hh, b_ih, b_hh. */
static int case_leaves(const rnn_case *c, int ndim[MAX_LEAVES],
                       int64_t shape[MAX_LEAVES][3])
{
    int n = 0;
    const int64_t GH = gates(c) * c->H;
    ndim[n] = 3, shape[n][0] = c->T, shape[n][1] = c->N, shape[n][2] = c->I;
    n++;
    for (int k = 0; k < 2; k++)
        if (k ? c->c0 : c->h0) {
            ndim[n] = 3, shape[n][0] = c->L, shape[n][1] = c->N,
            shape[n][2] = c->H;
            n++;
        }
    for (int l = 0; l < c->L; l++) {
        ndim[n] = 2, shape[n][0] = GH, shape[n][1] = l ? c->H : c->I, n++;
        ndim[n] = 2, shape[n][0] = GH, shape[n][1] = c->H, n++;
        ndim[n] = 1, shape[n][0] = GH, n++;
        ndim[n] = 1, shape[n][0] = GH, n++;
    }
    return n;
}

/* Run dgm_rnn on the leaves; outputs y, h_n, c_n (NULL for GRU). */
static dgm_var *run_rnn(dgm_graph *g, dgm_var **in, const rnn_case *c,
                        dgm_var **hn, dgm_var **cn)
{
    dgm_var *w[4][MAX_L];
    int i = 1;
    dgm_var *h0 = c->h0 ? in[i++] : NULL;
    dgm_var *c0 = c->c0 ? in[i++] : NULL;
    for (int l = 0; l < c->L; l++)
        for (int k = 0; k < 4; k++)
            w[k][l] = in[i++];
    dgm_rnn_weights rw = {c->cell, c->L, c->H, w[0], w[1], w[2], w[3]};
    return dgm_rnn(g, in[0], &rw, h0, c0, hn, cn);
}

/* One output holding y, h_n and c_n flattened, so the checker's weighted
 * sum covers all three at once. */
static dgm_var *build_all(dgm_graph *g, dgm_var **in, void *ctx)
{
    const rnn_case *c = ctx;
    dgm_var *hn = NULL, *cn = NULL;
    dgm_var *y = run_rnn(g, in, c, &hn, &cn);
    if (!y)
        return NULL;
    int64_t flat[1] = {-1};
    dgm_var *parts[3] = {dgm_reshape(g, y, 1, flat),
                         dgm_reshape(g, hn, 1, flat),
                         cn ? dgm_reshape(g, cn, 1, flat) : NULL};
    return dgm_concat(g, parts, cn ? 3 : 2, 0);
}

/* States and x in U(-0.8, 0.8), weights in U(-ws, ws). */
static int make_leaves(const rnn_case *c, dgm_tensor **t, uint64_t seed,
                       float ws)
{
    int ndim[MAX_LEAVES];
    int64_t shape[MAX_LEAVES][3];
    int n = case_leaves(c, ndim, shape);
    const int first_w = 1 + c->h0 + c->c0;
    for (int i = 0; i < n; i++) {
        float r = i >= first_w ? ws : 0.8f;
        t[i] = gc_rand(ndim[i], shape[i], seed + (uint64_t)i, -r, r);
        ck_assert_ptr_nonnull(t[i]);
    }
    return n;
}

static void free_leaves(dgm_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        dgm_tensor_free(t[i]);
}

/* ---- finite differences ------------------------------------------------ */

/* cell x layers x states, plus a few longer sequences */
static const rnn_case gc_cases[] = {
    {DGM_RNN_LSTM, 1, 1, 1, 3, 2, false, false},
    {DGM_RNN_LSTM, 1, 1, 1, 3, 2, true, true},
    {DGM_RNN_LSTM, 2, 1, 1, 3, 2, false, false},
    {DGM_RNN_LSTM, 2, 1, 1, 3, 2, true, true},
    {DGM_RNN_LSTM, 2, 1, 1, 3, 2, true, false},
    {DGM_RNN_GRU, 1, 1, 1, 3, 2, false, false},
    {DGM_RNN_GRU, 1, 1, 1, 3, 2, true, false},
    {DGM_RNN_GRU, 2, 1, 1, 3, 2, false, false},
    {DGM_RNN_GRU, 2, 1, 1, 3, 2, true, false},
    /* through time, batch > 1 */
    {DGM_RNN_LSTM, 2, 3, 2, 2, 3, true, true},
    {DGM_RNN_GRU, 2, 3, 2, 2, 3, true, false},
};
#define N_GC_CASES ((int)(sizeof gc_cases / sizeof gc_cases[0]))

START_TEST(rnn_gradcheck)
{
    const rnn_case *c = &gc_cases[_i / 2];
    dgm_backend be = _i % 2 ? DGM_BACKEND_DNNL : DGM_BACKEND_REF;
    dgm_tensor *t[MAX_LEAVES];
    int n = make_leaves(c, t, 100 + (uint64_t)_i, 0.8f);
    gc_result r =
        gc_gradcheck(build_all, (void *)c, n, t, NULL, be, 1e-3, 1e-2, 1e-3);
    ck_assert_msg(r.ok, "case %d (%s, L=%d, T=%lld) on %s: %s", _i / 2,
                  c->cell == DGM_RNN_LSTM ? "lstm" : "gru", c->L,
                  (long long)c->T, be == DGM_BACKEND_REF ? "ref" : "dnnl",
                  gc_describe(&r));
    free_leaves(t, n);
}
END_TEST

/* ---- oneDNN against the reference ------------------------------------- */

START_TEST(rnn_ref_vs_dnnl)
{
    rnn_case c = {_i / 2 ? DGM_RNN_GRU : DGM_RNN_LSTM,
                  2,
                  16,
                  8,
                  32,
                  64,
                  true,
                  _i % 2 == 0};
    if (c.cell == DGM_RNN_GRU)
        c.h0 = _i % 2 == 0, c.c0 = false;
    dgm_tensor *t[MAX_LEAVES];
    /* PyTorch's init scale, 1/sqrt(H): with larger weights the gates
     * saturate and 16 steps amplify float rounding past any tolerance. */
    int n = make_leaves(&c, t, 7 + (uint64_t)_i, 0.125f);
    gc_result r = gc_compare_backends(build_all, &c, n, t, NULL, 1e-3, 1e-4);
    ck_assert_msg(r.ok, "%s variant %d: %s",
                  c.cell == DGM_RNN_LSTM ? "lstm" : "gru", _i, gc_describe(&r));
    free_leaves(t, n);
}
END_TEST

/* Inference (grad off) runs oneDNN's forward_inference primitive: the
 * same values as training mode and as the reference. */
START_TEST(rnn_no_grad)
{
    rnn_case c = {_i ? DGM_RNN_GRU : DGM_RNN_LSTM, 2, 5, 3, 4, 6, true, !_i};
    dgm_tensor *t[MAX_LEAVES];
    int n = make_leaves(&c, t, 21, 0.5f);
    dgm_tensor *ref = NULL;
    for (int run = 0; run < 3; run++) {
        dgm_graph *g = dgm_graph_new();
        dgm_graph_set_backend(g, run ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
        dgm_graph_set_grad(g, run != 2);
        dgm_var *in[MAX_LEAVES];
        for (int k = 0; k < n; k++)
            in[k] = dgm_leaf(g, t[k], true);
        dgm_var *out = build_all(g, in, &c);
        ck_assert_ptr_nonnull(out);
        ck_assert(dgm_requires_grad(out) == (run != 2));
        if (!ref) {
            ref = dgm_tensor_clone(dgm_value(out));
        } else {
            gc_result r = gc_compare_tensors(ref, dgm_value(out), 1e-5, 1e-6);
            ck_assert_msg(r.ok, "run %d: %s", run, gc_describe(&r));
        }
        dgm_graph_free(g);
    }
    dgm_tensor_free(ref);
    free_leaves(t, n);
}
END_TEST

/* x as a strided view ([N, T, I] storage permuted to [T, N, I]). */
START_TEST(rnn_strided_x)
{
    rnn_case c = {DGM_RNN_LSTM, 1, 3, 2, 2, 3, true, false};
    dgm_tensor *t[MAX_LEAVES];
    int n = make_leaves(&c, t, 31, 0.8f);
    dgm_tensor *base = gc_rand(3, (int64_t[]){2, 3, 2}, 5, -0.8f, 0.8f);
    dgm_tensor_free(t[0]);
    t[0] = dgm_tensor_permute(base, (int[]){1, 0, 2});
    dgm_tensor_free(base);
    ck_assert(!dgm_tensor_is_contiguous(t[0]));
    gc_result r =
        gc_gradcheck(build_all, &c, n, t, NULL,
                     _i ? DGM_BACKEND_DNNL : DGM_BACKEND_REF, 1e-3, 1e-2, 1e-3);
    ck_assert_msg(r.ok, "%s", gc_describe(&r));
    free_leaves(t, n);
}
END_TEST

/* ---- PyTorch 1.13 ------------------------------------------------------ */

/* Generated by tests/reference/rnn_reference.py (T=3, N=2, I=3, H=2, two
 * layers, h0 and c0 given). */
static const float lstm_y[12] = {
    -0.0716377571f, 0.18871285f,  0.173665375f, 0.243893847f,
    0.064201653f,   0.198476955f, 0.16372171f,  0.211525634f,
    0.120848142f,   0.198207483f, 0.160668522f, 0.201827735f,
};
static const float lstm_hn[8] = {
    0.11191909f,  -0.127701566f, 0.10804639f,  -0.13679646f,
    0.120848142f, 0.198207483f,  0.160668522f, 0.201827735f,
};
static const float lstm_cn[8] = {
    0.286857605f, -0.564333379f, 0.3187038f,   -0.450949728f,
    0.179172799f, 0.33021456f,   0.244276851f, 0.337995052f,
};
static const float lstm_dx[18] = {
    0.13514775f,   0.140156597f,  0.0792476237f, 0.00755468849f, 0.0568605624f,
    0.0794240162f, 0.0996005759f, 0.132672101f,  0.103345856f,   0.119833499f,
    0.139403537f,  0.0934099406f, 0.123855814f,  0.221497506f,   0.214965463f,
    0.117020182f,  0.0950687602f, 0.028405007f,
};
static const float lstm_dh0[8] = {
    -0.194297642f, -0.102190807f, -0.177941233f, -0.151842728f,
    0.236608759f,  0.0423561893f, 0.0869916007f, 0.010232199f,
};
static const float lstm_dc0[8] = {
    0.436187238f, 0.29077822f,  0.238243133f, 0.223103702f,
    0.699683368f, 0.532175064f, 0.429416955f, 0.57259959f,
};
static const float lstm_dwih_l0[24] = {
    -0.0551965423f, -0.0210763272f, 0.0229564104f,   0.0749173686f,
    0.0703552812f,  0.0327040032f,  -0.0211901907f,  -0.0253434889f,
    -0.0175773539f, -0.0189084746f, -0.00742136128f, 0.0075561353f,
    -0.169906139f,  -0.27964887f,   -0.257868379f,   -0.0335844718f,
    0.00829358865f, 0.0462710224f,  -0.0289955214f,  -0.0452333726f,
    -0.0401972681f, 0.0336407609f,  0.0547547713f,   0.0501167551f,
};
static const float lstm_dwhh_l0[16] = {
    0.0129904365f, -0.0337561369f, -0.0133609725f, 0.0273020342f,
    0.0193183646f, 0.00411100127f, -0.0187250618f, 0.0233174227f,
    0.137159526f,  -0.220127612f,  0.184108764f,   -0.12828283f,
    0.01227492f,   -0.0173639711f, -0.0167305991f, 0.0202037096f,
};
static const float lstm_dbih_l0[8] = {
    0.360534072f, -0.251318038f, 0.0939171538f, -0.247505099f,
    2.00469351f,  1.94366634f,   0.163054094f,  -0.200846538f,
};
static const float lstm_dbhh_l0[8] = {
    0.360534042f, -0.251318038f, 0.0939171612f, -0.247505099f,
    2.00469351f,  1.94366646f,   0.163054079f,  -0.200846538f,
};
static const float lstm_dwih_l1[16] = {
    0.0412268601f,  -0.0677637532f, 0.0563368909f, -0.0989966542f,
    0.00304033258f, -0.0171009842f, 0.0316233747f, -0.0628067255f,
    0.13983883f,    -0.246228099f,  0.0692731664f, -0.125844389f,
    0.0129016917f,  -0.0272702221f, 0.0278098863f, -0.0545049198f,
};
static const float lstm_dwhh_l1[16] = {
    0.0375885814f, 0.133867532f,  -0.0762636662f, 0.0799139589f,
    0.0686414391f, 0.0954511613f, 0.0117026512f,  0.114329815f,
    -0.183164686f, 0.21408762f,   -0.0695376396f, 0.132466719f,
    0.0299116429f, 0.073157914f,  -0.0352868214f, 0.0576352552f,
};
static const float lstm_dbih_l1[8] = {
    0.597302258f, 0.957549512f, 0.138510317f, 0.579421043f,
    2.35741019f,  1.20318043f,  0.242386207f, 0.521361411f,
};
static const float lstm_dbhh_l1[8] = {
    0.597302318f, 0.957549453f, 0.138510317f, 0.579421043f,
    2.35741043f,  1.20318031f,  0.242386207f, 0.521361411f,
};
static const float gru_y[12] = {
    -0.00529929996f, 0.279815227f, -0.0396875665f, 0.327135086f,
    0.221519172f,    0.420417607f, 0.094006367f,   0.380743444f,
    0.278653562f,    0.448623806f, 0.158506081f,   0.417271316f,
};
static const float gru_hn[8] = {
    0.313364118f, -0.0607479215f, 0.25671953f,  -0.17351298f,
    0.278653562f, 0.448623806f,   0.158506081f, 0.417271316f,
};
static const float gru_dx[18] = {
    0.414591342f,    0.366478831f,  0.146005645f, -0.024656564f, 0.151332274f,
    0.256147206f,    0.0509002954f, 0.108097635f, 0.11445497f,   0.205960989f,
    0.264037907f,    0.197933689f,  0.119785249f, 0.20332092f,   0.191231593f,
    -0.00948100258f, 0.0763604268f, 0.126288354f,
};
static const float gru_dh0[8] = {
    1.90122354f, 1.25223434f,  0.718201995f, 0.828511596f,
    1.04704046f, 0.653094351f, 0.944063902f, 0.906994641f,
};
static const float gru_dwih_l0[18] = {
    0.0131948935f,  -0.000490166887f, -0.0139446901f,  -0.033008419f,
    -0.0420335419f, -0.0312896334f,   -0.00894810073f, -0.029707022f,
    -0.03649427f,   -0.225654304f,    -0.157675788f,   -0.0155399041f,
    -0.122685976f,  -0.202980831f,    -0.187810659f,   0.312312573f,
    0.37495321f,    0.261247396f,
};
static const float gru_dwhh_l0[12] = {
    -0.0459297895f, -0.0272979848f, -0.0934144109f, -0.00738544576f,
    0.0876419693f,  0.130142882f,   0.185501382f,   0.149798781f,
    0.255596071f,   -0.136391267f,  0.487098962f,   -0.0260564201f,
};
static const float gru_dbih_l0[6] = {
    -0.0642104074f, -0.297222972f, -0.190588385f,
    0.201336861f,   2.69263077f,   2.82727981f,
};
static const float gru_dbhh_l0[6] = {
    -0.0642104074f, -0.297222972f, -0.190588385f,
    0.201336861f,   1.30577719f,   1.76998782f,
};
static const float gru_dwih_l1[12] = {
    0.150005311f, -0.076175645f,  0.103476308f,  -0.0125511261f,
    -0.22824125f, -0.0593276918f, -0.282372147f, -0.0771668106f,
    1.74563158f,  -0.428371996f,  1.01367521f,   -0.291361749f,
};
static const float gru_dwhh_l1[12] = {
    0.0206172839f, 0.19770588f,   -0.0570853837f, 0.0308294669f,
    0.178333297f,  0.0624513403f, 0.250867158f,   0.117063373f,
    -0.203889757f, 0.403251767f,  -0.141954452f,  0.149226621f,
};
static const float gru_dbih_l1[6] = {
    0.619911909f,  0.35508731f, -0.575133741f,
    -0.708153784f, 6.38395309f, 3.83275819f,
};
static const float gru_dbhh_l1[6] = {
    0.619911909f,  0.35508728f, -0.575133801f,
    -0.708153844f, 2.34638023f, 1.13240206f,
};

/* Expected leaf gradients in leaf order (x, h0, [c0], per layer w_ih,
 * w_hh, b_ih, b_hh) and their sizes. */
static const float *const lstm_grads[] = {
    lstm_dx,      lstm_dh0,     lstm_dc0,     lstm_dwih_l0,
    lstm_dwhh_l0, lstm_dbih_l0, lstm_dbhh_l0, lstm_dwih_l1,
    lstm_dwhh_l1, lstm_dbih_l1, lstm_dbhh_l1};
static const int64_t lstm_sizes[] = {18, 8, 8, 24, 16, 8, 8, 16, 16, 8, 8};
static const float *const gru_grads[] = {
    gru_dx,      gru_dh0,     gru_dwih_l0, gru_dwhh_l0, gru_dbih_l0,
    gru_dbhh_l0, gru_dwih_l1, gru_dwhh_l1, gru_dbih_l1, gru_dbhh_l1};
static const int64_t gru_sizes[] = {18, 8, 18, 12, 6, 6, 12, 12, 6, 6};

static void fill_formula(dgm_tensor *t, double seed)
{
    for (int64_t k = 0; k < dgm_tensor_numel(t); k++)
        dgm_tensor_set(t, k, 0.5 * sin(0.7 * (double)k + seed));
}

static dgm_var *loss_weight(dgm_graph *g, dgm_tensor **keep, int64_t n,
                            double seed)
{
    *keep = dgm_tensor_new(DGM_F32, 1, &n);
    for (int64_t k = 0; k < n; k++)
        dgm_tensor_set(*keep, k, 1.0 + 0.5 * cos(0.3 * (double)k + seed));
    return dgm_input(g, *keep);
}

static void expect_close(const char *what, const dgm_tensor *got,
                         const float *want, int64_t n)
{
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(dgm_tensor_numel(got), n);
    for (int64_t k = 0; k < n; k++) {
        double a = dgm_tensor_get(got, k), b = want[k];
        ck_assert_msg(fabs(a - b) <= 2e-6 + 1e-5 * fabs(b),
                      "%s[%lld]: %.9g, PyTorch %.9g", what, (long long)k, a, b);
    }
}

START_TEST(rnn_vs_torch)
{
    const bool lstm = _i / 2 == 0;
    rnn_case c = {lstm ? DGM_RNN_LSTM : DGM_RNN_GRU, 2, 3, 2, 3, 2, true, lstm};
    dgm_tensor *t[MAX_LEAVES];
    int n = make_leaves(&c, t, 1, 0.8f);
    /* x, h0, c0 use seeds 1, 2, 3; weight k of layer l 10 + 4l + k */
    int i = 0;
    fill_formula(t[i++], 1);
    fill_formula(t[i++], 2);
    if (lstm)
        fill_formula(t[i++], 3);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++)
            fill_formula(t[i++], 10 + 4 * l + k);
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_backend(g, _i % 2 ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
    dgm_var *in[MAX_LEAVES];
    for (int k = 0; k < n; k++)
        in[k] = dgm_leaf(g, t[k], true);
    dgm_var *hn = NULL, *cn = NULL;
    dgm_var *y = run_rnn(g, in, &c, &hn, &cn);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(hn);
    ck_assert(lstm ? cn != NULL : cn == NULL);
    dgm_tensor *lw[3] = {NULL, NULL, NULL};
    int64_t flat[1] = {-1};
    dgm_var *loss =
        dgm_add(g,
                dgm_sum_all(g, dgm_mul(g, dgm_reshape(g, y, 1, flat),
                                       loss_weight(g, &lw[0], 12, 0))),
                dgm_sum_all(g, dgm_mul(g, dgm_reshape(g, hn, 1, flat),
                                       loss_weight(g, &lw[1], 8, 1))));
    if (lstm)
        loss = dgm_add(g, loss,
                       dgm_sum_all(g, dgm_mul(g, dgm_reshape(g, cn, 1, flat),
                                              loss_weight(g, &lw[2], 8, 2))));
    ck_assert_int_eq(dgm_backward(g, loss), 0);
    const float *const *want = lstm ? lstm_grads : gru_grads;
    const int64_t *sizes = lstm ? lstm_sizes : gru_sizes;
    expect_close("y", dgm_value(y), lstm ? lstm_y : gru_y, 12);
    expect_close("h_n", dgm_value(hn), lstm ? lstm_hn : gru_hn, 8);
    if (lstm)
        expect_close("c_n", dgm_value(cn), lstm_cn, 8);
    for (int k = 0; k < n; k++) {
        char what[32];
        snprintf(what, sizeof what, "grad of leaf %d", k);
        expect_close(what, dgm_grad(in[k]), want[k], sizes[k]);
    }
    for (int k = 0; k < 3; k++)
        dgm_tensor_free(lw[k]);
    dgm_graph_free(g);
    free_leaves(t, n);
}
END_TEST

/* ---- bad input --------------------------------------------------------- */

static void expect_fail(dgm_graph *g, dgm_var *v, int code, const char *a,
                        const char *b)
{
    ck_assert_msg(v == NULL, "expected failure naming '%s' '%s'", a, b);
    ck_assert_int_eq(dgm_last_code(), code);
    ck_assert_msg(strstr(dgm_last_error(), a) && strstr(dgm_last_error(), b),
                  "message '%s' should name '%s' and '%s'", dgm_last_error(), a,
                  b);
    ck_assert_int_eq(dgm_graph_status(g), code);
    dgm_graph_reset(g);
}

START_TEST(rnn_bad_input)
{
    rnn_case c = {DGM_RNN_LSTM, 2, 3, 2, 5, 4, true, true};
    dgm_tensor *t[MAX_LEAVES];
    int n = make_leaves(&c, t, 3, 0.8f);
    dgm_graph *g = dgm_graph_new();
    dgm_var *in[MAX_LEAVES];
    dgm_var *hn = NULL, *cn = NULL;
#define LEAVES()                                                               \
    for (int k = 0; k < n; k++)                                                \
        in[k] = dgm_input(g, t[k]);
    /* layer 1's w_ih must be [16, 4] (its input is layer 0's output) */
    int64_t bad_w[2] = {16, 5};
    dgm_tensor *wb = dgm_tensor_new(DGM_F32, 2, bad_w);
    LEAVES();
    in[3 + 4] = dgm_input(g, wb);
    expect_fail(g, run_rnn(g, in, &c, &hn, &cn), DGM_ESHAPE,
                "rnn: layer 1 w_ih [16, 5]", "[16, 4]");
    ck_assert_ptr_null(hn);
    /* x of rank 2 */
    int64_t x2s[2] = {3, 5};
    dgm_tensor *x2 = dgm_tensor_new(DGM_F32, 2, x2s);
    LEAVES();
    in[0] = dgm_input(g, x2);
    expect_fail(g, run_rnn(g, in, &c, &hn, &cn), DGM_ESHAPE, "rnn: x [3, 5]",
                "[T, N, I]");
    /* h0 with the wrong batch */
    int64_t hs[3] = {2, 3, 4};
    dgm_tensor *hb = dgm_tensor_new(DGM_F32, 3, hs);
    LEAVES();
    in[1] = dgm_input(g, hb);
    expect_fail(g, run_rnn(g, in, &c, &hn, &cn), DGM_ESHAPE,
                "rnn: h0 [2, 3, 4]", "[2, 2, 4]");
    /* GRU given LSTM-sized weights */
    c.cell = DGM_RNN_GRU;
    c.c0 = false;
    LEAVES();
    dgm_var *gin[MAX_LEAVES];
    gin[0] = in[0], gin[1] = in[1];
    for (int k = 3; k < n; k++)
        gin[k - 1] = in[k];
    expect_fail(g, run_rnn(g, gin, &c, &hn, NULL), DGM_ESHAPE,
                "rnn: layer 0 w_ih [16, 5]", "[12, 5]");
    /* no weights at all */
    expect_fail(g, dgm_rnn(g, dgm_input(g, t[0]), NULL, NULL, NULL, NULL, NULL),
                DGM_EINVAL, "rnn", "weights");
    /* a NULL input passes through without touching the message */
    c.cell = DGM_RNN_LSTM;
    c.c0 = true;
    LEAVES();
    in[0] = NULL;
    dgm_error(DGM_EIO, "earlier");
    ck_assert_ptr_null(run_rnn(g, in, &c, &hn, &cn));
    ck_assert_str_eq(dgm_last_error(), "earlier");
#undef LEAVES
    dgm_tensor_free(wb);
    dgm_tensor_free(x2);
    dgm_tensor_free(hb);
    dgm_graph_free(g);
    free_leaves(t, n);
}
END_TEST

/* DGM_RNN_MAX_LAYERS layers run; one more is refused naming the limit
 * (the op once allowed 64 while dgm_rnn_params holds 16). */
START_TEST(rnn_layer_limit)
{
    enum { L = DGM_RNN_MAX_LAYERS + 1 };
    int64_t ws[2] = {4, 1}, bs[1] = {4}, xs[3] = {2, 1, 1};
    dgm_tensor *w = dgm_tensor_new(DGM_F32, 2, ws);
    dgm_tensor *bt = dgm_tensor_new(DGM_F32, 1, bs);
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    dgm_tensor_fill(w, 0.5);
    dgm_tensor_fill(bt, 0.1);
    dgm_tensor_fill(x, 1.0);
    dgm_graph *g = dgm_graph_new();
    dgm_var *wi[L], *wh[L], *bi[L], *bh[L];
    for (int l = 0; l < L; l++) {
        wi[l] = dgm_input(g, w);
        wh[l] = dgm_input(g, w);
        bi[l] = dgm_input(g, bt);
        bh[l] = dgm_input(g, bt);
    }
    dgm_rnn_weights rw = {DGM_RNN_LSTM, DGM_RNN_MAX_LAYERS, 1, wi, wh, bi, bh};
    dgm_var *hn = NULL;
    dgm_var *y = dgm_rnn(g, dgm_input(g, x), &rw, NULL, NULL, &hn, NULL);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_value(hn)->shape[0], DGM_RNN_MAX_LAYERS);
    dgm_graph_reset(g);
    for (int l = 0; l < L; l++) {
        wi[l] = dgm_input(g, w);
        wh[l] = dgm_input(g, w);
        bi[l] = dgm_input(g, bt);
        bh[l] = dgm_input(g, bt);
    }
    rw.layers = L;
    char got[32], want[32];
    snprintf(got, sizeof got, "rnn: %d layers", L);
    snprintf(want, sizeof want, "outside 1..%d", DGM_RNN_MAX_LAYERS);
    expect_fail(g, dgm_rnn(g, dgm_input(g, x), &rw, NULL, NULL, &hn, NULL),
                DGM_ERANGE, got, want);
    ck_assert_ptr_null(hn);
    dgm_graph_free(g);
    dgm_tensor_free(w);
    dgm_tensor_free(bt);
    dgm_tensor_free(x);
}
END_TEST

static Suite *ops_rnn_suite(void)
{
    Suite *s = suite_create("ops_rnn");
    TCase *tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, rnn_gradcheck, 0, 2 * N_GC_CASES);
    tcase_add_loop_test(tc, rnn_strided_x, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("ref_vs_dnnl");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, rnn_ref_vs_dnnl, 0, 4);
    tcase_add_loop_test(tc, rnn_no_grad, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("torch");
    tcase_add_loop_test(tc, rnn_vs_torch, 0, 4);
    suite_add_tcase(s, tc);
    tq_case(s, "errors", rnn_bad_input, rnn_layer_limit);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_rnn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
