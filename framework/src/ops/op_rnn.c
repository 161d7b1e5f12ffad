/* op_rnn.c - multi-layer unidirectional LSTM and GRU in PyTorch's layout and
 * semantics: a plain-C reference (forward and backward through time) and a
 * oneDNN path (LSTM and linear-before-reset GRU primitives, layer by layer).
 *
 * One node holds the packed result [y | h_n | c_n] (flat); the public
 * outputs are reshaped slices of it, so the gradients of y, h_n and c_n
 * all arrive in that node's gradient and one backward rule serves them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl_util.h"
#include "graph_internal.h"
#include "tensor_internal.h"

/* oneDNN gate g' holds PyTorch gate gate_map[g']: LSTM orders agree
 * (i, f, g/c~, o); oneDNN's GRU is u(=z), r, o(=n), PyTorch's r, z, n. */
static const int lstm_map[4] = {0, 1, 2, 3};
static const int gru_map[3] = {1, 0, 2};

/* Saved for backward (in the arena). Per layer l: the layer input
 * [T, N, in_l], its output [T, N, H], initial states [N, H]; the reference
 * also keeps activated gates [T, N, G*H] (LSTM i f g o, GRU r z n), the
 * cell sequence [T, N, H] and, for GRU, W_hn h + b_hn [T, N, H]; oneDNN
 * keeps its workspace. */
typedef struct rnn_ctx {
    dgm_rnn_cell cell;
    int L, G;
    int64_t T, N, I, H;
    bool dnnl;
    float **in, **out, **h0, **c0, **gates, **cs, **ghn;
    void **ws;
} rnn_ctx;

static float *f32(const dgm_tensor *t)
{
    return (float *)t->data;
}
static const float *wdata(dgm_var *v)
{
    return v ? f32(dgm_value(v)) : NULL;
}
static float sigm(float a)
{
    return 1.0f / (1.0f + expf(-a));
}

/* ---- small GEMMs for the reference ------------------------------------ */

/* C[M, P] = A[M, K] @ B[P, K]^T + bias[P] (bias may be NULL) */
static void mm_nt_bias(float *C, const float *A, const float *B,
                       const float *bias, int64_t M, int64_t P, int64_t K)
{
    for (int64_t i = 0; i < M; i++) {
        const float *a = A + i * K;
        for (int64_t j = 0; j < P; j++) {
            const float *b = B + j * K;
            float s = bias ? bias[j] : 0.0f;
            for (int64_t k = 0; k < K; k++)
                s += a[k] * b[k];
            C[i * P + j] = s;
        }
    }
}

/* C[M, P] += A[M, K] @ B[K, P] */
static void mm_nn_acc(float *C, const float *A, const float *B, int64_t M,
                      int64_t P, int64_t K)
{
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * P;
        for (int64_t k = 0; k < K; k++) {
            const float a = A[i * K + k], *b = B + k * P;
            for (int64_t j = 0; j < P; j++)
                c[j] += a * b[j];
        }
    }
}

/* C[M, P] += A[R, M]^T @ B[R, P] */
static void mm_tn_acc(float *C, const float *A, const float *B, int64_t M,
                      int64_t P, int64_t R)
{
    for (int64_t r = 0; r < R; r++) {
        const float *a = A + r * M, *b = B + r * P;
        for (int64_t i = 0; i < M; i++) {
            const float ai = a[i];
            float *c = C + i * P;
            for (int64_t j = 0; j < P; j++)
                c[j] += ai * b[j];
        }
    }
}

static void add_into(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* ---- reference forward ------------------------------------------------ */

/* One layer: in [T, N, K] -> out [T, N, H]; gates, cs, ghn as in rnn_ctx;
 * gh is scratch [N, G*H]. */
static void layer_forward_ref(const rnn_ctx *c, int l, const float *wih,
                              const float *whh, const float *bih,
                              const float *bhh, float *gh)
{
    const int64_t T = c->T, N = c->N, H = c->H, GH = c->G * H;
    const int64_t K = l ? H : c->I;
    float *pre = c->gates[l], *out = c->out[l];
    mm_nt_bias(pre, c->in[l], wih, bih, T * N, GH, K);
    for (int64_t t = 0; t < T; t++) {
        const float *hp = t ? out + (t - 1) * N * H : c->h0[l];
        float *gt = pre + t * N * GH, *ht = out + t * N * H;
        mm_nt_bias(gh, hp, whh, bhh, N, GH, H);
        if (c->cell == DGM_RNN_LSTM) {
            const float *cp = t ? c->cs[l] + (t - 1) * N * H : c->c0[l];
            float *ct = c->cs[l] + t * N * H;
            for (int64_t n = 0; n < N; n++) {
                float *a = gt + n * GH;
                const float *b = gh + n * GH;
                for (int64_t k = 0; k < H; k++) {
                    float ig = sigm(a[k] + b[k]);
                    float fg = sigm(a[H + k] + b[H + k]);
                    float gg = tanhf(a[2 * H + k] + b[2 * H + k]);
                    float og = sigm(a[3 * H + k] + b[3 * H + k]);
                    float cc = fg * cp[n * H + k] + ig * gg;
                    a[k] = ig, a[H + k] = fg, a[2 * H + k] = gg,
                    a[3 * H + k] = og;
                    ct[n * H + k] = cc;
                    ht[n * H + k] = og * tanhf(cc);
                }
            }
        } else {
            float *gn = c->ghn[l] + t * N * H;
            for (int64_t n = 0; n < N; n++) {
                float *a = gt + n * GH;
                const float *b = gh + n * GH;
                for (int64_t k = 0; k < H; k++) {
                    float r = sigm(a[k] + b[k]);
                    float z = sigm(a[H + k] + b[H + k]);
                    float hn = b[2 * H + k];
                    float nn = tanhf(a[2 * H + k] + r * hn);
                    a[k] = r, a[H + k] = z, a[2 * H + k] = nn;
                    gn[n * H + k] = hn;
                    ht[n * H + k] = (1.0f - z) * nn + z * hp[n * H + k];
                }
            }
        }
    }
}

/* ---- reference backward ----------------------------------------------- */

/* One layer, top-down: dY [T, N, H] (gradient of this layer's output
 * sequence), dh/dc [N, H] hold d h_n / d c_n on entry and d h0 / d c0 on
 * exit. Adds weight gradients into dwih..dbhh (each may be NULL) and, if
 * dX is not NULL, writes d input [T, N, K] to it. dgx, dgh: scratch
 * [T, N, G*H] (dgh may equal dgx for LSTM). */
static void layer_backward_ref(const rnn_ctx *c, int l, const float *dY,
                               float *dh, float *dc, const float *wih,
                               const float *whh, float *dwih, float *dwhh,
                               float *dbih, float *dbhh, float *dX, float *dgx,
                               float *dgh, float *dht)
{
    const int64_t T = c->T, N = c->N, H = c->H, GH = c->G * H;
    const int64_t K = l ? H : c->I, NH = N * H;
    const bool lstm = c->cell == DGM_RNN_LSTM;
    for (int64_t t = T - 1; t >= 0; t--) {
        const float *hp = t ? c->out[l] + (t - 1) * NH : c->h0[l];
        const float *gt = c->gates[l] + t * N * GH;
        float *ax = dgx + t * N * GH, *ah = dgh + t * N * GH;
        for (int64_t i = 0; i < NH; i++)
            dht[i] = dh[i] + dY[t * NH + i];
        if (lstm) {
            const float *ct = c->cs[l] + t * NH;
            const float *cp = t ? c->cs[l] + (t - 1) * NH : c->c0[l];
            for (int64_t n = 0; n < N; n++) {
                const float *a = gt + n * GH;
                float *d = ax + n * GH;
                for (int64_t k = 0; k < H; k++) {
                    const int64_t e = n * H + k;
                    float ig = a[k], fg = a[H + k], gg = a[2 * H + k],
                          og = a[3 * H + k];
                    float tc = tanhf(ct[e]);
                    float dcc = dc[e] + dht[e] * og * (1.0f - tc * tc);
                    d[k] = dcc * gg * ig * (1.0f - ig);
                    d[H + k] = dcc * cp[e] * fg * (1.0f - fg);
                    d[2 * H + k] = dcc * ig * (1.0f - gg * gg);
                    d[3 * H + k] = dht[e] * tc * og * (1.0f - og);
                    dc[e] = dcc * fg;
                    dh[e] = 0.0f;
                }
            }
        } else {
            const float *gn = c->ghn[l] + t * NH;
            for (int64_t n = 0; n < N; n++) {
                const float *a = gt + n * GH;
                float *dx = ax + n * GH, *dhh = ah + n * GH;
                for (int64_t k = 0; k < H; k++) {
                    const int64_t e = n * H + k;
                    float r = a[k], z = a[H + k], nn = a[2 * H + k];
                    float dz = dht[e] * (hp[e] - nn);
                    float dan = dht[e] * (1.0f - z) * (1.0f - nn * nn);
                    float dar = dan * gn[e] * r * (1.0f - r);
                    float daz = dz * z * (1.0f - z);
                    dx[k] = dhh[k] = dar;
                    dx[H + k] = dhh[H + k] = daz;
                    dx[2 * H + k] = dan;
                    dhh[2 * H + k] = dan * r;
                    dh[e] = dht[e] * z;
                }
            }
        }
        mm_nn_acc(dh, ah, whh, N, H, GH); /* dh_prev += dgh @ W_hh */
    }
    const float *X = c->in[l];
    if (dwih)
        mm_tn_acc(dwih, dgx, X, GH, K, T * N);
    if (dwhh) {
        mm_tn_acc(dwhh, dgh, c->h0[l], GH, H, N);
        if (T > 1)
            mm_tn_acc(dwhh, dgh + N * GH, c->out[l], GH, H, (T - 1) * N);
    }
    for (int64_t r = 0; r < T * N; r++) {
        if (dbih)
            add_into(dbih, dgx + r * GH, GH);
        if (dbhh)
            add_into(dbhh, dgh + r * GH, GH);
    }
    if (dX) {
        memset(dX, 0, sizeof(float) * (size_t)(T * N * K));
        mm_nn_acc(dX, dgx, wih, T * N, K, GH);
    }
}

/* ---- oneDNN ----------------------------------------------------------- */

/* Slots of the buffers a primitive reads or writes; `bwl`/`bwi` are the
 * backward's weights (ldgoi), `wl`/`wi` the forward's (ldigo). */
enum {
    S_SRC_L,
    S_SRC_I,
    S_SRC_IC,
    S_WL,
    S_WI,
    S_BIAS,
    S_DST_L,
    S_DST_I,
    S_DST_IC,
    S_WS,
    S_BWL,
    S_BWI,
    S_DSRC_L,
    S_DSRC_I,
    S_DSRC_IC,
    S_DWL,
    S_DWI,
    S_DBIAS,
    S_DDST_L,
    S_DDST_I,
    S_DDST_IC,
    S_COUNT
};

typedef struct rnn_exec {
    dnnl_primitive_t prim;
    int n;
    int arg[S_COUNT], slot[S_COUNT];
    dnnl_memory_t mem[S_COUNT];
} rnn_exec;

typedef struct rnn_prim {
    rnn_exec fwd, bwd; /* bwd.prim NULL for inference */
    size_t ws_bytes;
    bool unsupported; /* oneDNN refused: this shape runs the reference */
} rnn_prim;

typedef struct rnn_key {
    char tag[8];
    int cell, training;
    int64_t T, N, K, H;
} rnn_key;

static void exec_clear(rnn_exec *e)
{
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < e->n; i++)
        if (e->mem[i])
            dnnl_memory_destroy(e->mem[i]);
}

static void rnn_prim_destroy(void *v)
{
    rnn_prim *p = v;
    exec_clear(&p->fwd);
    exec_clear(&p->bwd);
    free(p);
}

/* The primitive plus one memory object per (arg, slot) pair, each with the
 * descriptor the primitive descriptor reports for that argument. */
static int exec_make(rnn_exec *e, dnnl_primitive_desc_t pd, int n,
                     const int *args, const int *slots)
{
    int rc = dgm__dnnl_check(dnnl_primitive_create(&e->prim, pd), "rnn");
    for (int i = 0; i < n && rc == 0; i++) {
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, args[i]);
        e->arg[i] = args[i];
        e->slot[i] = slots[i];
        e->n = i + 1;
        rc = md ? dgm__dnnl_memory(&e->mem[i], md, NULL)
                : dgm_error(DGM_EDNNL,
                            "oneDNN: rnn: no descriptor for "
                            "argument %d",
                            args[i]);
    }
    return rc;
}

static int exec_run(rnn_exec *e, void *const *ptr)
{
    dnnl_exec_arg_t a[S_COUNT];
    for (int i = 0; i < e->n; i++) {
        dnnl_memory_set_data_handle(e->mem[i], ptr[e->slot[i]]);
        a[i].arg = e->arg[i];
        a[i].memory = e->mem[i];
    }
    return dgm__dnnl_check(
        dnnl_primitive_execute(e->prim, dgm__dnnl_stream(), e->n, a), "rnn");
}

static dnnl_status_t md_tag(dnnl_memory_desc_t *md, int nd, const int64_t *dims,
                            dnnl_format_tag_t tag)
{
    dnnl_dims_t d;
    for (int i = 0; i < nd; i++)
        d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, nd, d, dnnl_f32, tag);
}

static dnnl_status_t rnn_desc(dnnl_rnn_desc_t *rd, bool lstm, bool backward,
                              dnnl_prop_kind_t prop, int64_t T, int64_t N,
                              int64_t K, int64_t H)
{
    const int64_t G = lstm ? 4 : 3, GB = 4; /* LBR-GRU has 4 biases */
    dnnl_memory_desc_t sl, si, wl, wi, b, dl, di;
    dnnl_status_t st = md_tag(&sl, 3, (int64_t[]){T, N, K}, dnnl_tnc);
    if (st == dnnl_success)
        st = md_tag(&si, 4, (int64_t[]){1, 1, N, H}, dnnl_ldnc);
    if (st == dnnl_success)
        st = md_tag(&wl, 5, (int64_t[]){1, 1, K, G, H},
                    backward ? dnnl_ldgoi : dnnl_ldigo);
    if (st == dnnl_success)
        st = md_tag(&wi, 5, (int64_t[]){1, 1, H, G, H},
                    backward ? dnnl_ldgoi : dnnl_ldigo);
    if (st == dnnl_success)
        st = md_tag(&b, 4, (int64_t[]){1, 1, GB, H}, dnnl_ldgo);
    if (st == dnnl_success)
        st = md_tag(&dl, 3, (int64_t[]){T, N, H}, dnnl_tnc);
    di = si;
    if (st != dnnl_success)
        return st;
    const dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    if (!backward)
        return lstm
                   ? dnnl_lstm_forward_desc_init(rd, prop, dir, &sl, &si, &si,
                                                 &wl, &wi, &b, &dl, &di, &di, 0)
                   : dnnl_lbr_gru_forward_desc_init(rd, prop, dir, &sl, &si,
                                                    &wl, &wi, &b, &dl, &di, 0);
    /* Diff weights in ldigo, the layout the CPU backward accumulates in. */
    dnnl_memory_desc_t dwl, dwi;
    st = md_tag(&dwl, 5, (int64_t[]){1, 1, K, G, H}, dnnl_ldigo);
    if (st == dnnl_success)
        st = md_tag(&dwi, 5, (int64_t[]){1, 1, H, G, H}, dnnl_ldigo);
    if (st != dnnl_success)
        return st;
    return lstm ? dnnl_lstm_backward_desc_init(
                      rd, dnnl_backward, dir, &sl, &si, &si, &wl, &wi, &b, &dl,
                      &di, &di, &sl, &si, &si, &dwl, &dwi, &b, &dl, &di, &di, 0)
                : dnnl_lbr_gru_backward_desc_init(
                      rd, dnnl_backward, dir, &sl, &si, &wl, &wi, &b, &dl, &di,
                      &sl, &si, &dwl, &dwi, &b, &dl, &di, 0);
}

static int rnn_prim_make(const rnn_key *k, rnn_prim *p)
{
    const bool lstm = k->cell == DGM_RNN_LSTM;
    dnnl_rnn_desc_t fd, bd;
    dnnl_prop_kind_t prop =
        k->training ? dnnl_forward_training : dnnl_forward_inference;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_status_t st = rnn_desc(&fd, lstm, false, prop, k->T, k->N, k->K, k->H);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&fpd, &fd, NULL, dgm__dnnl_engine(),
                                        NULL);
    if (st == dnnl_success && k->training) {
        st = rnn_desc(&bd, lstm, true, dnnl_backward, k->T, k->N, k->K, k->H);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&bpd, &bd, NULL, dgm__dnnl_engine(),
                                            fpd);
    }
    if (st == dnnl_unimplemented) {
        /* Not an error: this configuration runs on the reference. */
        if (fpd)
            dnnl_primitive_desc_destroy(fpd);
        p->unsupported = true;
        return 0;
    }
    int rc = dgm__dnnl_check(st, "rnn primitive descriptor");
    if (rc == 0) {
        int fa[10] = {DNNL_ARG_SRC_LAYER,     DNNL_ARG_SRC_ITER,
                      DNNL_ARG_WEIGHTS_LAYER, DNNL_ARG_WEIGHTS_ITER,
                      DNNL_ARG_BIAS,          DNNL_ARG_DST_LAYER,
                      DNNL_ARG_DST_ITER,      DNNL_ARG_SRC_ITER_C,
                      DNNL_ARG_DST_ITER_C,    DNNL_ARG_WORKSPACE};
        int fs[10] = {S_SRC_L, S_SRC_I, S_WL,     S_WI,     S_BIAS,
                      S_DST_L, S_DST_I, S_SRC_IC, S_DST_IC, S_WS};
        int nf = lstm ? 9 : 7;
        if (k->training) {
            fa[nf] = DNNL_ARG_WORKSPACE;
            fs[nf++] = S_WS;
            const dnnl_memory_desc_t *ws =
                dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
            p->ws_bytes = ws ? dnnl_memory_desc_get_size(ws) : 0;
        }
        rc = exec_make(&p->fwd, fpd, nf, fa, fs);
    }
    if (rc == 0 && bpd) {
        int ba[S_COUNT] = {DNNL_ARG_SRC_LAYER,
                           DNNL_ARG_SRC_ITER,
                           DNNL_ARG_WEIGHTS_LAYER,
                           DNNL_ARG_WEIGHTS_ITER,
                           DNNL_ARG_BIAS,
                           DNNL_ARG_DST_LAYER,
                           DNNL_ARG_DST_ITER,
                           DNNL_ARG_WORKSPACE,
                           DNNL_ARG_DIFF_SRC_LAYER,
                           DNNL_ARG_DIFF_SRC_ITER,
                           DNNL_ARG_DIFF_WEIGHTS_LAYER,
                           DNNL_ARG_DIFF_WEIGHTS_ITER,
                           DNNL_ARG_DIFF_BIAS,
                           DNNL_ARG_DIFF_DST_LAYER,
                           DNNL_ARG_DIFF_DST_ITER,
                           DNNL_ARG_SRC_ITER_C,
                           DNNL_ARG_DST_ITER_C,
                           DNNL_ARG_DIFF_SRC_ITER_C,
                           DNNL_ARG_DIFF_DST_ITER_C};
        int bs[S_COUNT] = {S_SRC_L,  S_SRC_I,  S_BWL,     S_BWI,    S_BIAS,
                           S_DST_L,  S_DST_I,  S_WS,      S_DSRC_L, S_DSRC_I,
                           S_DWL,    S_DWI,    S_DBIAS,   S_DDST_L, S_DDST_I,
                           S_SRC_IC, S_DST_IC, S_DSRC_IC, S_DDST_IC};
        rc = exec_make(&p->bwd, bpd, lstm ? 19 : 15, ba, bs);
    }
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (bpd)
        dnnl_primitive_desc_destroy(bpd);
    return rc;
}

/* The cached primitives for one layer shape; NULL with the error set. */
static rnn_prim *rnn_prim_get(dgm_rnn_cell cell, bool training, int64_t T,
                              int64_t N, int64_t K, int64_t H)
{
    rnn_key key;
    memset(&key, 0, sizeof key);
    memcpy(key.tag, "rnn", 4);
    key.cell = (int)cell;
    key.training = training;
    key.T = T, key.N = N, key.K = K, key.H = H;
    rnn_prim *p = dgm__dnnl_cache_get(&key, sizeof key);
    if (p)
        return p;
    p = calloc(1, sizeof *p);
    if (!p) {
        dgm_error(DGM_ENOMEM, "rnn: out of memory");
        return NULL;
    }
    dgm__count_heap_alloc();
    int rc = rnn_prim_make(&key, p);
    if (rc == 0)
        rc = dgm__dnnl_cache_put(&key, sizeof key, p, rnn_prim_destroy);
    if (rc < 0) {
        rnn_prim_destroy(p);
        return NULL;
    }
    return p;
}

/* PyTorch W [G*H, K] -> oneDNN ldigo [K, G, H] with the gate permutation. */
static void to_ldigo(float *dst, const float *w, const int *map, int G,
                     int64_t H, int64_t K)
{
    for (int64_t i = 0; i < K; i++)
        for (int g = 0; g < G; g++) {
            const float *src = w + (int64_t)map[g] * H * K + i;
            float *d = dst + (i * G + g) * H;
            for (int64_t o = 0; o < H; o++)
                d[o] = src[o * K];
        }
}

/* W [G*H, K] (+)= ldigo [K, G, H] (the inverse permutation); store: the
 * first write of W's gradient, every element stored. */
static void add_from_ldigo(float *w, const float *src, const int *map, int G,
                           int64_t H, int64_t K, bool store)
{
    for (int g = 0; g < G; g++)
        for (int64_t o = 0; o < H; o++) {
            float *row = w + ((int64_t)map[g] * H + o) * K;
            const float *s = src + g * H + o;
            if (store)
                for (int64_t i = 0; i < K; i++)
                    row[i] = s[i * G * H];
            else
                for (int64_t i = 0; i < K; i++)
                    row[i] += s[i * G * H];
        }
}

/* PyTorch W [G*H, K] -> ldgoi [G, H, K]: only the gate blocks move. */
static void to_ldgoi(float *dst, const float *w, const int *map, int G,
                     int64_t H, int64_t K)
{
    for (int g = 0; g < G; g++)
        memcpy(dst + g * H * K, w + (int64_t)map[g] * H * K,
               sizeof(float) * (size_t)(H * K));
}

/* oneDNN bias: LSTM [4, H] = b_ih + b_hh; LBR-GRU [4, H] = u, r sums,
 * b_in, b_hn. */
static void make_bias(float *b, const rnn_ctx *c, const float *bih,
                      const float *bhh)
{
    const int64_t H = c->H;
    const int *map = c->cell == DGM_RNN_LSTM ? lstm_map : gru_map;
    memset(b, 0, sizeof(float) * (size_t)(4 * H));
    for (int g = 0; g < c->G; g++)
        for (int64_t o = 0; o < H; o++) {
            int64_t s = map[g] * H + o;
            float v = (bih ? bih[s] : 0.0f);
            if (c->cell == DGM_RNN_LSTM || g < 2)
                v += bhh ? bhh[s] : 0.0f;
            else
                b[3 * H + o] = bhh ? bhh[s] : 0.0f;
            b[g * H + o] = v;
        }
}

/* d b_ih, d b_hh (+)= oneDNN's d bias; sih / shh: store (first write). */
static void add_bias_grad(float *dbih, float *dbhh, const float *db,
                          const rnn_ctx *c, bool sih, bool shh)
{
    const int64_t H = c->H;
    const int *map = c->cell == DGM_RNN_LSTM ? lstm_map : gru_map;
    for (int g = 0; g < c->G; g++)
        for (int64_t o = 0; o < H; o++) {
            int64_t s = map[g] * H + o;
            if (dbih)
                dbih[s] = (sih ? 0.0f : dbih[s]) + db[g * H + o];
            if (dbhh)
                dbhh[s] = (shh ? 0.0f : dbhh[s]) +
                          ((c->cell == DGM_RNN_GRU && g == 2) ? db[3 * H + o]
                                                              : db[g * H + o]);
        }
}

/* dst (+)= src over n floats; store: the first write. */
static void put_into(float *dst, const float *src, int64_t n, bool store)
{
    if (store)
        memcpy(dst, src, sizeof(float) * (size_t)n);
    else
        add_into(dst, src, n);
}

/* ---- the op ------------------------------------------------------------ */

/* Inputs: x, h0, c0, then per layer w_ih, w_hh, b_ih, b_hh. */
#define IN_W(l, k) (3 + 4 * (l) + (k))

static int rnn_backward(dgm_graph *g, dgm_var *node)
{
    rnn_ctx *c = node->ctx;
    const int L = c->L, G = c->G;
    const int64_t T = c->T, N = c->N, H = c->H, NH = N * H, GH = G * H;
    const bool lstm = c->cell == DGM_RNN_LSTM;
    const int *map = lstm ? lstm_map : gru_map;
    const float *dpk = f32(node->grad);
    /* first contributions store (s*): x's gradient is written in place by
     * layer 0, h0's and c0's slice by slice, the weights' once each */
    bool sx, sh0, sc0;
    dgm_tensor *dxt = dgm__grad_in(g, node, 0, &sx);
    dgm_tensor *dh0t = dgm__grad_in(g, node, 1, &sh0);
    dgm_tensor *dc0t = dgm__grad_in(g, node, 2, &sc0);
    if (dgm_graph_status(g))
        return dgm_graph_status(g);
    if (dc0t && sc0 && !lstm) /* a GRU has no cell state: c0 gets zeros */
        memset(f32(dc0t), 0, dgm_tensor_nbytes(dc0t));
    float *dh = dgm__arena_alloc(g, sizeof(float) * (size_t)NH);
    float *dc = dgm__arena_alloc(g, sizeof(float) * (size_t)NH);
    float *dY = NULL;
    if (!dh || !dc)
        return dgm_last_code();
    const float *dYtop = dpk;
    for (int l = L - 1; l >= 0; l--) {
        const int64_t K = l ? H : c->I;
        dgm_var **w = node->in + IN_W(l, 0);
        dgm_tensor *gw[4];
        bool sw[4];
        for (int k = 0; k < 4; k++)
            gw[k] = dgm__grad_in(g, node, IN_W(l, k), &sw[k]);
        if (dgm_graph_status(g))
            return dgm_graph_status(g);
        const bool want_dx = l > 0 || dxt;
        const bool dx_direct = l == 0 && dxt && sx; /* written in place */
        float *dX = NULL;
        if (dx_direct)
            dX = f32(dxt);
        else if (want_dx) {
            dX = dgm__arena_alloc(g, sizeof(float) * (size_t)(T * N * K));
            if (!dX)
                return dgm_last_code();
        }
        const float *dYl = l == L - 1 ? dYtop : dY;
        memcpy(dh, dpk + T * NH + l * NH, sizeof(float) * (size_t)NH);
        if (lstm)
            memcpy(dc, dpk + T * NH + L * NH + l * NH,
                   sizeof(float) * (size_t)NH);
        if (!c->dnnl) {
            float *dgx =
                dgm__arena_alloc(g, sizeof(float) * (size_t)(T * N * GH));
            float *dgh =
                lstm
                    ? dgx
                    : dgm__arena_alloc(g, sizeof(float) * (size_t)(T * N * GH));
            float *dht = dgm__arena_alloc(g, sizeof(float) * (size_t)NH);
            if (!dgx || !dgh || !dht)
                return dgm_last_code();
            for (int k = 0; k < 4; k++) /* the kernel accumulates */
                if (gw[k] && sw[k])
                    memset(f32(gw[k]), 0, dgm_tensor_nbytes(gw[k]));
            layer_backward_ref(c, l, dYl, dh, dc, wdata(w[0]), wdata(w[1]),
                               gw[0] ? f32(gw[0]) : NULL,
                               gw[1] ? f32(gw[1]) : NULL,
                               gw[2] ? f32(gw[2]) : NULL,
                               gw[3] ? f32(gw[3]) : NULL, dX, dgx, dgh, dht);
        } else {
            rnn_prim *p = rnn_prim_get(c->cell, true, T, N, K, H);
            if (!p)
                return dgm_last_code();
            float *bwl = NULL, *bwi = NULL;
            size_t nwl = (size_t)(GH * K), nwi = (size_t)(GH * H);
            float *dwl = dgm__arena_alloc(g, sizeof(float) * nwl);
            float *dwi = dgm__arena_alloc(g, sizeof(float) * nwi);
            float *bias = dgm__arena_alloc(g, sizeof(float) * 4 * (size_t)H);
            float *db = dgm__arena_alloc(g, sizeof(float) * 4 * (size_t)H);
            float *dsl =
                dX ? dX
                   : dgm__arena_alloc(g, sizeof(float) * (size_t)(T * N * K));
            if (lstm) { /* ldgoi is PyTorch's own layout */
                bwl = (float *)wdata(w[0]);
                bwi = (float *)wdata(w[1]);
            } else {
                bwl = dgm__arena_alloc(g, sizeof(float) * nwl);
                bwi = dgm__arena_alloc(g, sizeof(float) * nwi);
            }
            if (!dwl || !dwi || !bias || !db || !dsl || !bwl || !bwi)
                return dgm_last_code();
            if (!lstm) {
                to_ldgoi(bwl, wdata(w[0]), map, G, H, K);
                to_ldgoi(bwi, wdata(w[1]), map, G, H, H);
            }
            make_bias(bias, c, wdata(w[2]), wdata(w[3]));
            /* oneDNN accumulates into diff weights and bias. */
            memset(dwl, 0, sizeof(float) * nwl);
            memset(dwi, 0, sizeof(float) * nwi);
            memset(db, 0, sizeof(float) * 4 * (size_t)H);
            float *dsi = dgm__arena_alloc(g, sizeof(float) * (size_t)NH);
            float *dsic = dgm__arena_alloc(g, sizeof(float) * (size_t)NH);
            if (!dsi || !dsic)
                return dgm_last_code();
            void *ptr[S_COUNT] = {0};
            ptr[S_SRC_L] = c->in[l];
            ptr[S_SRC_I] = c->h0[l];
            ptr[S_SRC_IC] = lstm ? c->c0[l] : NULL;
            ptr[S_BWL] = bwl;
            ptr[S_BWI] = bwi;
            ptr[S_BIAS] = bias;
            ptr[S_DST_L] = c->out[l];
            ptr[S_DST_I] = (float *)dgm_value(node)->data + T * NH + l * NH;
            ptr[S_DST_IC] =
                lstm ? (float *)dgm_value(node)->data + T * NH + L * NH + l * NH
                     : NULL;
            ptr[S_WS] = c->ws[l];
            ptr[S_DSRC_L] = dsl;
            ptr[S_DSRC_I] = dsi;
            ptr[S_DSRC_IC] = dsic;
            ptr[S_DWL] = dwl;
            ptr[S_DWI] = dwi;
            ptr[S_DBIAS] = db;
            ptr[S_DDST_L] = (void *)dYl;
            ptr[S_DDST_I] = dh;
            ptr[S_DDST_IC] = dc;
            int rc = exec_run(&p->bwd, ptr);
            if (rc < 0)
                return rc;
            if (gw[0])
                add_from_ldigo(f32(gw[0]), dwl, map, G, H, K, sw[0]);
            if (gw[1])
                add_from_ldigo(f32(gw[1]), dwi, map, G, H, H, sw[1]);
            if (gw[2] || gw[3])
                add_bias_grad(gw[2] ? f32(gw[2]) : NULL,
                              gw[3] ? f32(gw[3]) : NULL, db, c, sw[2], sw[3]);
            memcpy(dh, dsi, sizeof(float) * (size_t)NH);
            if (lstm)
                memcpy(dc, dsic, sizeof(float) * (size_t)NH);
        }
        if (dh0t)
            put_into(f32(dh0t) + l * NH, dh, NH, sh0);
        if (dc0t && lstm)
            put_into(f32(dc0t) + l * NH, dc, NH, sc0);
        if (l == 0 && dxt && !dx_direct)
            add_into(f32(dxt), dX, T * N * K);
        dY = dX;
    }
    return 0;
}

static const dgm__op op_rnn = {DGM_OP_RNN, rnn_backward};

/* Contiguous copies for strided inputs (the kernels index densely). */
static dgm_var *rnn_input(dgm_graph *g, dgm_var *v)
{
    return v && !dgm_tensor_is_contiguous(dgm_value(v)) ? dgm_contiguous(g, v)
                                                        : v;
}

static bool shape_is(const dgm_tensor *t, int nd, int64_t a, int64_t b,
                     int64_t c)
{
    const int64_t s[3] = {a, b, c};
    if (t->ndim != nd)
        return false;
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != s[i])
            return false;
    return true;
}

/* Check one weight of layer l: f32 and the expected shape. */
static void *bad_weight(dgm_graph *g, const char *name, int l,
                        const dgm_tensor *t, int nd, int64_t a, int64_t b)
{
    char s1[96], s2[96];
    int64_t want[2] = {a, b};
    return dgm__fail_null(g, t->dtype != DGM_F32 ? DGM_EDTYPE : DGM_ESHAPE,
                          "rnn: layer %d %s %s, expected f32 %s", l, name,
                          dgm_tensor_describe(t, s1, sizeof s1),
                          dgm_shape_str(nd, want, s2, sizeof s2));
}

dgm_var *dgm_rnn(dgm_graph *g, dgm_var *x, const dgm_rnn_weights *w,
                 dgm_var *h0, dgm_var *c0, dgm_var **h_n, dgm_var **c_n)
{
    if (h_n)
        *h_n = NULL;
    if (c_n)
        *c_n = NULL;
    if (!g)
        return NULL;
    if (!w || (w->cell != DGM_RNN_LSTM && w->cell != DGM_RNN_GRU) ||
        w->hidden < 1 || !w->w_ih || !w->w_hh || !w->b_ih || !w->b_hh)
        return dgm__fail_null(g, DGM_EINVAL,
                              "rnn: invalid weights (cell, hidden >= 1 and "
                              "four weight arrays needed)");
    if (w->layers < 1 || w->layers > DGM_RNN_MAX_LAYERS)
        return dgm__fail_null(g, DGM_ERANGE,
                              "rnn: %d layers, outside 1..%d "
                              "(DGM_RNN_MAX_LAYERS)",
                              w->layers, DGM_RNN_MAX_LAYERS);
    if (!x)
        return NULL;
    const int L = w->layers;
    const bool lstm = w->cell == DGM_RNN_LSTM;
    const int G = lstm ? 4 : 3;
    const int64_t H = w->hidden, GH = G * H;
    for (int l = 0; l < L; l++)
        if (!w->w_ih[l] || !w->w_hh[l])
            return NULL; /* an earlier error */
    const dgm_tensor *xt = dgm_value(x);
    char s1[96], s2[96], s3[96];
    if (xt->dtype != DGM_F32 || xt->ndim != 3 || dgm_tensor_numel(xt) == 0)
        return dgm__fail_null(g, xt->dtype != DGM_F32 ? DGM_EDTYPE : DGM_ESHAPE,
                              "rnn: x %s must be f32 [T, N, I], non-empty",
                              dgm_tensor_describe(xt, s1, sizeof s1));
    const int64_t T = xt->shape[0], N = xt->shape[1], I = xt->shape[2];
    for (int l = 0; l < L; l++) {
        const int64_t K = l ? H : I;
        const dgm_tensor *t = dgm_value(w->w_ih[l]);
        if (t->dtype != DGM_F32 || !shape_is(t, 2, GH, K, 0))
            return bad_weight(g, "w_ih", l, t, 2, GH, K);
        t = dgm_value(w->w_hh[l]);
        if (t->dtype != DGM_F32 || !shape_is(t, 2, GH, H, 0))
            return bad_weight(g, "w_hh", l, t, 2, GH, H);
        for (int k = 0; k < 2; k++) {
            dgm_var *b = k ? w->b_hh[l] : w->b_ih[l];
            if (b && (dgm_value(b)->dtype != DGM_F32 ||
                      !shape_is(dgm_value(b), 1, GH, 0, 0)))
                return bad_weight(g, k ? "b_hh" : "b_ih", l, dgm_value(b), 1,
                                  GH, 0);
        }
    }
    dgm_var *st[2] = {h0, lstm ? c0 : NULL};
    for (int k = 0; k < 2; k++) {
        if (!st[k])
            continue;
        const dgm_tensor *t = dgm_value(st[k]);
        if (t->dtype != DGM_F32 || !shape_is(t, 3, L, N, H)) {
            int64_t want[3] = {L, N, H};
            return dgm__fail_null(
                g, t->dtype != DGM_F32 ? DGM_EDTYPE : DGM_ESHAPE,
                "rnn: %s %s does not fit x %s, expected f32 %s",
                k ? "c0" : "h0", dgm_tensor_describe(t, s1, sizeof s1),
                dgm_tensor_describe(xt, s2, sizeof s2),
                dgm_shape_str(3, want, s3, sizeof s3));
        }
    }

    /* Inputs, made contiguous where needed. */
    const int n_in = 3 + 4 * L;
    dgm_var **ins = dgm__arena_alloc(g, sizeof *ins * (size_t)n_in);
    if (!ins)
        return NULL;
    ins[0] = rnn_input(g, x);
    ins[1] = rnn_input(g, h0);
    ins[2] = rnn_input(g, st[1]);
    if (!ins[0] || (h0 && !ins[1]) || (st[1] && !ins[2]))
        return NULL;
    for (int l = 0; l < L; l++) {
        dgm_var *src[4] = {w->w_ih[l], w->w_hh[l], w->b_ih[l], w->b_hh[l]};
        for (int k = 0; k < 4; k++) {
            ins[IN_W(l, k)] = rnn_input(g, src[k]);
            if (src[k] && !ins[IN_W(l, k)])
                return NULL;
        }
    }
    bool need_grad = false;
    if (dgm__grad_enabled(g))
        for (int i = 0; i < n_in; i++)
            if (ins[i] && ins[i]->requires_grad)
                need_grad = true;

    const int64_t NH = N * H, TNH = T * NH;
    const int64_t packed_n = TNH + L * NH * (lstm ? 2 : 1);
    dgm_tensor *pk = dgm__alloc_uninit(g, DGM_F32, 1, &packed_n);
    rnn_ctx *c = dgm__arena_alloc(g, sizeof *c);
    if (!pk || !c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->cell = w->cell;
    c->L = L, c->G = G;
    c->T = T, c->N = N, c->I = I, c->H = H;
    float ***arrs[8] = {&c->in,    &c->out, &c->h0,  &c->c0,
                        &c->gates, &c->cs,  &c->ghn, (float ***)&c->ws};
    for (int k = 0; k < 8; k++) {
        *arrs[k] = dgm__arena_alloc(g, sizeof(float *) * (size_t)L);
        if (!*arrs[k])
            return NULL;
        memset(*arrs[k], 0, sizeof(float *) * (size_t)L);
    }
    float *zeros = NULL;
    if (!h0 || (lstm && !c0)) {
        dgm_tensor *zt = dgm__alloc(g, DGM_F32, 1, &NH);
        if (!zt)
            return NULL;
        zeros = f32(zt);
    }
    float *pkd = f32(pk);
    for (int l = 0; l < L; l++) {
        c->h0[l] = h0 ? f32(dgm_value(ins[1])) + l * NH : zeros;
        if (lstm)
            c->c0[l] = c0 ? f32(dgm_value(ins[2])) + l * NH : zeros;
        c->in[l] = l ? c->out[l - 1] : f32(dgm_value(ins[0]));
        if (l == L - 1) {
            c->out[l] = pkd;
        } else {
            c->out[l] = dgm__arena_alloc(g, sizeof(float) * (size_t)TNH);
            if (!c->out[l])
                return NULL;
        }
    }

    /* oneDNN when it takes every layer's shape, else the reference. */
    rnn_prim *prims[DGM_RNN_MAX_LAYERS];
    c->dnnl = dgm__use_dnnl(g);
    for (int l = 0; l < L && c->dnnl; l++) {
        prims[l] = rnn_prim_get(w->cell, need_grad, T, N, l ? H : I, H);
        if (!prims[l])
            return dgm__fail_null(g, dgm_last_code(), "rnn: %s",
                                  dgm_last_error());
        if (prims[l]->unsupported)
            c->dnnl = false;
    }

    const int *map = lstm ? lstm_map : gru_map;
    for (int l = 0; l < L; l++) {
        const int64_t K = l ? H : I;
        const float *wih = wdata(ins[IN_W(l, 0)]),
                    *whh = wdata(ins[IN_W(l, 1)]);
        const float *bih = wdata(ins[IN_W(l, 2)]),
                    *bhh = wdata(ins[IN_W(l, 3)]);
        float *hn = pkd + TNH + l * NH;
        float *cn = lstm ? pkd + TNH + L * NH + l * NH : NULL;
        if (!c->dnnl) {
            c->gates[l] =
                dgm__arena_alloc(g, sizeof(float) * (size_t)(T * N * GH));
            float *gh = dgm__arena_alloc(g, sizeof(float) * (size_t)(N * GH));
            if (lstm)
                c->cs[l] = dgm__arena_alloc(g, sizeof(float) * (size_t)TNH);
            else
                c->ghn[l] = dgm__arena_alloc(g, sizeof(float) * (size_t)TNH);
            if (!c->gates[l] || !gh || !(lstm ? c->cs[l] : c->ghn[l]))
                return NULL;
            layer_forward_ref(c, l, wih, whh, bih, bhh, gh);
            memcpy(hn, c->out[l] + (T - 1) * NH, sizeof(float) * (size_t)NH);
            if (lstm)
                memcpy(cn, c->cs[l] + (T - 1) * NH, sizeof(float) * (size_t)NH);
            continue;
        }
        rnn_prim *p = prims[l];
        float *wl = dgm__arena_alloc(g, sizeof(float) * (size_t)(GH * K));
        float *wi = dgm__arena_alloc(g, sizeof(float) * (size_t)(GH * H));
        float *bias = dgm__arena_alloc(g, sizeof(float) * 4 * (size_t)H);
        if (!wl || !wi || !bias)
            return NULL;
        if (need_grad) {
            c->ws[l] = dgm__arena_alloc(g, p->ws_bytes);
            if (!c->ws[l])
                return NULL;
        }
        to_ldigo(wl, wih, map, G, H, K);
        to_ldigo(wi, whh, map, G, H, H);
        make_bias(bias, c, bih, bhh);
        void *ptr[S_COUNT] = {0};
        ptr[S_SRC_L] = c->in[l];
        ptr[S_SRC_I] = c->h0[l];
        ptr[S_SRC_IC] = lstm ? c->c0[l] : NULL;
        ptr[S_WL] = wl;
        ptr[S_WI] = wi;
        ptr[S_BIAS] = bias;
        ptr[S_DST_L] = c->out[l];
        ptr[S_DST_I] = hn;
        ptr[S_DST_IC] = cn;
        ptr[S_WS] = c->ws[l];
        if (exec_run(&p->fwd, ptr) < 0)
            return dgm__fail_null(g, dgm_last_code(), "rnn: %s",
                                  dgm_last_error());
    }

    dgm_var *node = dgm__node(g, &op_rnn, pk, ins, n_in);
    if (!node)
        return NULL;
    node->ctx = c;
    dgm_var *y = dgm_reshape(g, dgm_slice(g, node, 0, 0, TNH, 1), 3,
                             (int64_t[]){T, N, H});
    if (h_n)
        *h_n = dgm_reshape(g, dgm_slice(g, node, 0, TNH, TNH + L * NH, 1), 3,
                           (int64_t[]){L, N, H});
    if (c_n && lstm)
        *c_n = dgm_reshape(
            g, dgm_slice(g, node, 0, TNH + L * NH, TNH + 2 * L * NH, 1), 3,
            (int64_t[]){L, N, H});
    if (!y || (h_n && !*h_n) || (c_n && lstm && !*c_n))
        return NULL;
    return y;
}
