/* op_conv.c - dgm_conv2d and dgm_conv_transpose2d: plain-C reference kernels
 * and oneDNN (dilated) convolution / deconvolution primitives, cached per
 * shape. Tensors at the op boundary are contiguous NCHW f32; inside a
 * primitive oneDNN picks its layouts (`any`) and we reorder at the edges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "dnnl_util.h"
#include "graph_internal.h"

/* ====================================================================== */
/* Geometry                                                               */
/* ====================================================================== */

/* A convolution seen from the conv side: x [N, IC, IH, IW] -> y [N, OC, OH,
 * OW], weights [OC, IC/G, KH, KW]. A transposed conv is described by the
 * geometry of the conv whose backward-data it is (its input is that conv's
 * output), so all three reference kernels serve both ops. */
typedef struct conv_geom {
    int64_t n, ic, ih, iw, oc, oh, ow, kh, kw;
    int64_t sh, sw, ph, pw, dh, dw, groups;
} conv_geom;

/* y[n,oc,oh,ow] += sum_{ic,kh,kw} x[n,g*icg+ic,ih,iw] * w[oc,ic,kh,kw]
 * with ih = oh*sh - ph + kh*dh. x, w, y contiguous. */
static void ref_conv_fwd(const conv_geom *c, float *y, const float *x,
                         const float *w)
{
    const int64_t icg = c->ic / c->groups, ocg = c->oc / c->groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->oc; oc++) {
            const int64_t gi = oc / ocg;
            float *yp = y + (n * c->oc + oc) * c->oh * c->ow;
            for (int64_t ic = 0; ic < icg; ic++) {
                const float *xp =
                    x + (n * c->ic + gi * icg + ic) * c->ih * c->iw;
                const float *wp = w + (oc * icg + ic) * c->kh * c->kw;
                for (int64_t kh = 0; kh < c->kh; kh++)
                    for (int64_t kw = 0; kw < c->kw; kw++) {
                        const float wv = wp[kh * c->kw + kw];
                        for (int64_t oh = 0; oh < c->oh; oh++) {
                            int64_t ih = oh * c->sh - c->ph + kh * c->dh;
                            if (ih < 0 || ih >= c->ih)
                                continue;
                            for (int64_t ow = 0; ow < c->ow; ow++) {
                                int64_t iw = ow * c->sw - c->pw + kw * c->dw;
                                if (iw < 0 || iw >= c->iw)
                                    continue;
                                yp[oh * c->ow + ow] += wv * xp[ih * c->iw + iw];
                            }
                        }
                    }
            }
        }
}

/* dx[n,ic,ih,iw] += sum dy[n,oc,oh,ow] * w[oc,ic,kh,kw] (the transpose of
 * ref_conv_fwd); parallel over (n, ic) so no two threads write one dx. */
static void ref_conv_bwd_data(const conv_geom *c, float *dx, const float *dy,
                              const float *w)
{
    const int64_t icg = c->ic / c->groups, ocg = c->oc / c->groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t ic = 0; ic < c->ic; ic++) {
            const int64_t gi = ic / icg, icl = ic % icg;
            float *xp = dx + (n * c->ic + ic) * c->ih * c->iw;
            for (int64_t ocl = 0; ocl < ocg; ocl++) {
                const int64_t oc = gi * ocg + ocl;
                const float *yp = dy + (n * c->oc + oc) * c->oh * c->ow;
                const float *wp = w + (oc * icg + icl) * c->kh * c->kw;
                for (int64_t kh = 0; kh < c->kh; kh++)
                    for (int64_t kw = 0; kw < c->kw; kw++) {
                        const float wv = wp[kh * c->kw + kw];
                        for (int64_t oh = 0; oh < c->oh; oh++) {
                            int64_t ih = oh * c->sh - c->ph + kh * c->dh;
                            if (ih < 0 || ih >= c->ih)
                                continue;
                            for (int64_t ow = 0; ow < c->ow; ow++) {
                                int64_t iw = ow * c->sw - c->pw + kw * c->dw;
                                if (iw < 0 || iw >= c->iw)
                                    continue;
                                xp[ih * c->iw + iw] += wv * yp[oh * c->ow + ow];
                            }
                        }
                    }
            }
        }
}

/* dw[oc,ic,kh,kw] += sum_{n,oh,ow} dy[n,oc,oh,ow] * x[n,g*icg+ic,ih,iw] */
static void ref_conv_bwd_weights(const conv_geom *c, float *dw, const float *x,
                                 const float *dy)
{
    const int64_t icg = c->ic / c->groups, ocg = c->oc / c->groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t oc = 0; oc < c->oc; oc++)
        for (int64_t ic = 0; ic < icg; ic++) {
            const int64_t gi = oc / ocg;
            float *wp = dw + (oc * icg + ic) * c->kh * c->kw;
            for (int64_t kh = 0; kh < c->kh; kh++)
                for (int64_t kw = 0; kw < c->kw; kw++) {
                    double acc = 0.0;
                    for (int64_t n = 0; n < c->n; n++) {
                        const float *xp =
                            x + (n * c->ic + gi * icg + ic) * c->ih * c->iw;
                        const float *yp = dy + (n * c->oc + oc) * c->oh * c->ow;
                        for (int64_t oh = 0; oh < c->oh; oh++) {
                            int64_t ih = oh * c->sh - c->ph + kh * c->dh;
                            if (ih < 0 || ih >= c->ih)
                                continue;
                            for (int64_t ow = 0; ow < c->ow; ow++) {
                                int64_t iw = ow * c->sw - c->pw + kw * c->dw;
                                if (iw < 0 || iw >= c->iw)
                                    continue;
                                acc += (double)yp[oh * c->ow + ow] *
                                       xp[ih * c->iw + iw];
                            }
                        }
                    }
                    wp[kh * c->kw + kw] += (float)acc;
                }
        }
}

/* y[n,c,:,:] += b[c] */
static void ref_bias_fwd(float *y, const float *b, int64_t n, int64_t c,
                         int64_t hw)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            float *p = y + (i * c + j) * hw;
            for (int64_t k = 0; k < hw; k++)
                p[k] += b[j];
        }
}

/* db[c] += sum_{n,h,w} dy[n,c,h,w] */
static void ref_bias_bwd(float *db, const float *dy, int64_t n, int64_t c,
                         int64_t hw)
{
    for (int64_t j = 0; j < c; j++) {
        double acc = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = dy + (i * c + j) * hw;
            for (int64_t k = 0; k < hw; k++)
                acc += p[k];
        }
        db[j] += (float)acc;
    }
}

/* ====================================================================== */
/* oneDNN: a primitive plus reorders at its edges                         */
/* ====================================================================== */

enum { ARG_IN = 0, ARG_OUT, ARG_OUT_ACC };

/* One argument of a primitive: the user's NCHW memory, the primitive's
 * memory (the same object when layouts agree) and the reorder between. An
 * ARG_OUT_ACC argument (a gradient) has its own primitive memory always:
 * adding, it goes through a reorder with a sum post-op, so oneDNN's
 * overwrite becomes the tape's +=; storing (the gradient's first write),
 * the primitive writes the user's buffer itself when the layouts agree
 * (`same`), else a plain reorder (`store`) brings it there. */
typedef struct plan_arg {
    int arg;
    int dir;
    dnnl_memory_t user, prim;
    dnnl_primitive_t reorder, store;
    bool same;    /* ARG_OUT_ACC: the primitive's layout is the user's */
    size_t bytes; /* size of the primitive-layout buffer when separate */
} plan_arg;

#define PLAN_MAX_ARGS 6

typedef struct dnnl_plan {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int nargs;
    plan_arg a[PLAN_MAX_ARGS];
    dnnl_exec_arg_t exec[PLAN_MAX_ARGS];
} dnnl_plan;

static void plan_destroy(dnnl_plan *p)
{
    for (int i = 0; i < p->nargs; i++) {
        if (p->a[i].reorder)
            dnnl_primitive_destroy(p->a[i].reorder);
        if (p->a[i].store)
            dnnl_primitive_destroy(p->a[i].store);
        if (p->a[i].prim && p->a[i].prim != p->a[i].user)
            dnnl_memory_destroy(p->a[i].prim);
        if (p->a[i].user)
            dnnl_memory_destroy(p->a[i].user);
    }
    if (p->prim)
        dnnl_primitive_destroy(p->prim);
    if (p->pd)
        dnnl_primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
}

static int make_reorder(dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, bool accumulate)
{
    dnnl_engine_t eng = dgm__dnnl_engine();
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    int rc = 0;
    if (accumulate) {
        rc = dgm__dnnl_check(dnnl_primitive_attr_create(&attr), "attr");
        if (!rc)
            rc = dgm__dnnl_check(dnnl_post_ops_create(&po), "post_ops");
        if (!rc)
            rc = dgm__dnnl_check(dnnl_post_ops_append_sum(po, 1.0f), "sum");
        if (!rc)
            rc = dgm__dnnl_check(dnnl_primitive_attr_set_post_ops(attr, po),
                                 "set_post_ops");
    }
    if (!rc)
        rc = dgm__dnnl_check(dnnl_reorder_primitive_desc_create(
                                 &rpd, from, eng, to, eng, attr),
                             "reorder pd");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_create(out, rpd), "reorder");
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* Take ownership of pd (also on failure) and set up memories and reorders
 * for the listed arguments; user_md[i] is the user's layout of arg i. */
static int plan_init(dnnl_plan *p, dnnl_primitive_desc_t pd, int nargs,
                     const int *args, const int *dirs,
                     const dnnl_memory_desc_t *user_md)
{
    dnnl_engine_t eng = dgm__dnnl_engine();
    memset(p, 0, sizeof *p);
    p->pd = pd;
    int rc = dgm__dnnl_check(dnnl_primitive_create(&p->prim, pd), "primitive");
    for (int i = 0; i < nargs && !rc; i++) {
        plan_arg *a = &p->a[i];
        p->nargs = i + 1;
        a->arg = args[i];
        a->dir = dirs[i];
        const dnnl_memory_desc_t *pmd =
            dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, args[i]);
        if (!pmd)
            return plan_destroy(p), dgm_error(DGM_EDNNL, "no md for arg %d",
                                              args[i]);
        rc = dgm__dnnl_check(
            dnnl_memory_create(&a->user, &user_md[i], eng, DNNL_MEMORY_NONE),
            "memory");
        if (rc)
            break;
        bool same = dnnl_memory_desc_equal(pmd, &user_md[i]);
        if (same && a->dir != ARG_OUT_ACC) {
            a->prim = a->user;
            continue;
        }
        a->same = same;
        a->bytes = dnnl_memory_desc_get_size(pmd);
        rc = dgm__dnnl_check(
            dnnl_memory_create(&a->prim, pmd, eng, DNNL_MEMORY_NONE), "memory");
        if (!rc)
            rc = a->dir == ARG_IN
                     ? make_reorder(&a->reorder, &user_md[i], pmd, false)
                     : make_reorder(&a->reorder, pmd, &user_md[i],
                                    a->dir == ARG_OUT_ACC);
        if (!rc && a->dir == ARG_OUT_ACC && !same)
            rc = make_reorder(&a->store, pmd, &user_md[i], false);
    }
    if (rc) {
        plan_destroy(p);
        return rc;
    }
    for (int i = 0; i < p->nargs; i++) {
        p->exec[i].arg = p->a[i].arg;
        p->exec[i].memory = p->a[i].prim;
    }
    return 0;
}

/* The primitive-layout md of argument i (the user's when they agree). */
static const dnnl_memory_desc_t *plan_md(const dnnl_plan *p, int i)
{
    return dnnl_primitive_desc_query_md(p->pd, dnnl_query_exec_arg_md,
                                        p->a[i].arg);
}

/* Whether input i of p and input j of q are reordered to the same layout,
 * so one reordered copy can feed both. */
static bool plan_same_in(const dnnl_plan *p, int i, const dnnl_plan *q, int j)
{
    return p->a[i].prim != p->a[i].user && q->a[j].prim != q->a[j].user &&
           dnnl_memory_desc_equal(plan_md(p, i), plan_md(q, j));
}

/* Run the plan on user buffers (one per argument, NCHW/PyTorch layouts);
 * primitive-layout buffers come from the graph's arena. Reorders at the
 * edges cost about a quarter of conv time, so an input may come already
 * reordered: pre[i] (if given and non-NULL) holds argument i in the
 * primitive's layout. done[i] (if given) receives the primitive-layout
 * buffer of each reordered input (NULL when none was needed); it lives in
 * the arena until the graph is reset. store[i] (if given) true: the
 * ARG_OUT_ACC argument i is overwritten (its first write), else added to. */
static int plan_exec(dgm_graph *g, dnnl_plan *p, void *const *handles,
                     void *const *pre, void **done, const bool *store)
{
    dnnl_stream_t s = dgm__dnnl_stream();
    int rc = 0;
    for (int i = 0; i < p->nargs && !rc; i++) {
        plan_arg *a = &p->a[i];
        rc = dgm__dnnl_check(dnnl_memory_set_data_handle(a->user, handles[i]),
                             "set handle");
        if (done)
            done[i] = NULL;
        if (rc || a->prim == a->user)
            continue;
        if (a->dir == ARG_OUT_ACC && a->same && store && store[i]) {
            /* the primitive writes the gradient itself */
            rc = dgm__dnnl_check(
                dnnl_memory_set_data_handle(a->prim, handles[i]), "set handle");
            continue;
        }
        if (pre && pre[i] && a->dir == ARG_IN) {
            rc = dgm__dnnl_check(dnnl_memory_set_data_handle(a->prim, pre[i]),
                                 "set handle");
            if (done)
                done[i] = pre[i];
            continue;
        }
        void *buf = dgm__arena_alloc(g, a->bytes);
        if (!buf)
            return dgm__fail(g, DGM_ENOMEM, "conv: no memory for %zu bytes",
                             a->bytes);
        rc = dgm__dnnl_check(dnnl_memory_set_data_handle(a->prim, buf),
                             "set handle");
        if (!rc && a->dir == ARG_IN) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, a->user},
                                     {DNNL_ARG_TO, a->prim}};
            rc = dgm__dnnl_check(dnnl_primitive_execute(a->reorder, s, 2, ra),
                                 "reorder");
            if (done)
                done[i] = buf;
        }
    }
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_primitive_execute(p->prim, s, p->nargs, p->exec), "execute");
    for (int i = 0; i < p->nargs && !rc; i++) {
        plan_arg *a = &p->a[i];
        if (a->dir == ARG_IN || a->prim == a->user)
            continue;
        bool st = a->dir == ARG_OUT_ACC && store && store[i];
        if (st && a->same)
            continue; /* written in place */
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, a->prim},
                                 {DNNL_ARG_TO, a->user}};
        rc = dgm__dnnl_check(
            dnnl_primitive_execute(st ? a->store : a->reorder, s, 2, ra),
            "reorder");
    }
    if (!rc)
        rc = dgm__dnnl_check(dnnl_stream_wait(s), "stream wait");
    if (rc)
        dgm__fail(g, rc, "%s", dgm_last_error());
    return rc;
}

/* ====================================================================== */
/* oneDNN conv / deconv entries, one per shape                            */
/* ====================================================================== */

typedef struct conv_key {
    char tag[8]; /* "conv" or "deconv" */
    conv_geom c; /* conv-side geometry (see conv_geom) */
    int has_bias;
} conv_key;

/* Backward plans are made on the first backward of that shape. */
typedef struct conv_entry {
    conv_key key;
    dnnl_plan fwd, bwd_data, bwd_w;
    bool has_bwd_data, has_bwd_w;
    dnnl_memory_desc_t x_md, w_md, y_md, b_md; /* op-side user layouts */
} conv_entry;

static void conv_entry_destroy(void *v)
{
    conv_entry *e = v;
    plan_destroy(&e->fwd);
    if (e->has_bwd_data)
        plan_destroy(&e->bwd_data);
    if (e->has_bwd_w)
        plan_destroy(&e->bwd_w);
    free(e);
}

static void any_md(dnnl_memory_desc_t *md, const dnnl_memory_desc_t *like)
{
    dnnl_memory_desc_init_by_tag(md, like->ndims, like->dims, dnnl_f32,
                                 dnnl_format_tag_any);
}

/* Op-side memory descs. For "conv" the op is the convolution with x = conv
 * input; for "deconv" the op's input is the conv output (y of the geometry)
 * and its weights are PyTorch's [C, OC/G, KH, KW], which oneDNN sees as
 * [G, OC/G, C/G, KH, KW] ("oihw" with o = the deconv's output channels). */
static int entry_mds(conv_entry *e)
{
    const conv_geom *c = &e->key.c;
    bool deconv = e->key.tag[0] == 'd';
    dnnl_dims_t xd = {c->n, c->ic, c->ih, c->iw};
    dnnl_dims_t yd = {c->n, c->oc, c->oh, c->ow};
    dnnl_status_t st;
    /* the op's src is x for conv and the conv-output y for deconv */
    st = dnnl_memory_desc_init_by_tag(&e->x_md, 4, deconv ? yd : xd, dnnl_f32,
                                      dnnl_nchw);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->y_md, 4, deconv ? xd : yd,
                                          dnnl_f32, dnnl_nchw);
    int64_t g = c->groups;
    /* conv weights [OC, IC/G, KH, KW] in both ops' PyTorch layouts */
    int64_t ocg = c->oc / g, icg = c->ic / g, k = c->kh * c->kw;
    if (st == dnnl_success) {
        if (!deconv) {
            dnnl_dims_t wd = {g, ocg, icg, c->kh, c->kw};
            dnnl_dims_t wd4 = {ocg, icg, c->kh, c->kw};
            st = g == 1 ? dnnl_memory_desc_init_by_tag(&e->w_md, 4, wd4,
                                                       dnnl_f32, dnnl_oihw)
                        : dnnl_memory_desc_init_by_tag(&e->w_md, 5, wd,
                                                       dnnl_f32, dnnl_goihw);
        } else {
            /* deconv: o = conv ic (deconv output), i = conv oc (its input);
             * memory holds [conv oc][icg][kh][kw] */
            dnnl_dims_t wd = {g, icg, ocg, c->kh, c->kw};
            dnnl_dims_t ws = {ocg * icg * k, k, icg * k, c->kw, 1};
            dnnl_dims_t wd4 = {icg, ocg, c->kh, c->kw};
            dnnl_dims_t ws4 = {k, icg * k, c->kw, 1};
            st = g == 1 ? dnnl_memory_desc_init_by_strides(&e->w_md, 4, wd4,
                                                           dnnl_f32, ws4)
                        : dnnl_memory_desc_init_by_strides(&e->w_md, 5, wd,
                                                           dnnl_f32, ws);
        }
    }
    if (st == dnnl_success) {
        dnnl_dims_t bd = {deconv ? c->ic : c->oc};
        st = dnnl_memory_desc_init_by_tag(&e->b_md, 1, bd, dnnl_f32, dnnl_x);
    }
    return dgm__dnnl_check(st, "conv memory desc");
}

static void conv_strides_pads(const conv_key *k, dnnl_dims_t s, dnnl_dims_t d,
                              dnnl_dims_t pl, dnnl_dims_t pr)
{
    const conv_geom *c = &k->c;
    s[0] = c->sh, s[1] = c->sw;
    d[0] = c->dh - 1, d[1] = c->dw - 1;
    pl[0] = c->ph, pl[1] = c->pw;
    /* right padding so that the conv-side output size comes out exact */
    pr[0] = (c->oh - 1) * c->sh + (c->kh - 1) * c->dh + 1 - c->ih - c->ph;
    pr[1] = (c->ow - 1) * c->sw + (c->kw - 1) * c->dw + 1 - c->iw - c->pw;
}

static int make_fwd(conv_entry *e)
{
    bool deconv = e->key.tag[0] == 'd';
    dnnl_memory_desc_t xa, wa, ya;
    dnnl_dims_t s, d, pl, pr;
    any_md(&xa, &e->x_md);
    any_md(&wa, &e->w_md);
    any_md(&ya, &e->y_md);
    /* With fewer than 8 output channels `any` picks a blocked layout padded
     * to 16 channels (deconv 32->1 [128,32,14,14]: 3.1 ms in jit:avx512);
     * asked for plain NCHW it runs as gemm:jit in 0.4 ms. */
    if (e->y_md.dims[1] < 8)
        ya = e->y_md;
    conv_strides_pads(&e->key, s, d, pl, pr);
    const dnnl_memory_desc_t *bmd = e->key.has_bias ? &e->b_md : NULL;
    dnnl_status_t st;
    union {
        dnnl_convolution_desc_t c;
        dnnl_deconvolution_desc_t d;
    } od;
    if (deconv)
        st = dnnl_dilated_deconvolution_forward_desc_init(
            &od.d, dnnl_forward_training, dnnl_deconvolution_direct, &xa, &wa,
            bmd, &ya, s, d, pl, pr);
    else
        st = dnnl_dilated_convolution_forward_desc_init(
            &od.c, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa,
            bmd, &ya, s, d, pl, pr);
    int rc = dgm__dnnl_check(st, "conv forward desc");
    dnnl_primitive_desc_t pd = NULL;
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_desc_create(
                                 &pd, &od, NULL, dgm__dnnl_engine(), NULL),
                             "conv forward pd");
    if (rc)
        return rc;
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    int dirs[4] = {ARG_IN, ARG_IN, ARG_OUT, ARG_IN};
    dnnl_memory_desc_t mds[4] = {e->x_md, e->w_md, e->y_md, e->b_md};
    return plan_init(&e->fwd, pd, e->key.has_bias ? 4 : 3, args, dirs, mds);
}

static int make_bwd_data(conv_entry *e)
{
    bool deconv = e->key.tag[0] == 'd';
    dnnl_memory_desc_t xa, wa, ya;
    dnnl_dims_t s, d, pl, pr;
    any_md(&xa, &e->x_md);
    any_md(&wa, &e->w_md);
    any_md(&ya, &e->y_md);
    conv_strides_pads(&e->key, s, d, pl, pr);
    dnnl_status_t st;
    union {
        dnnl_convolution_desc_t c;
        dnnl_deconvolution_desc_t d;
    } od;
    if (deconv)
        st = dnnl_dilated_deconvolution_backward_data_desc_init(
            &od.d, dnnl_deconvolution_direct, &xa, &wa, &ya, s, d, pl, pr);
    else
        st = dnnl_dilated_convolution_backward_data_desc_init(
            &od.c, dnnl_convolution_direct, &xa, &wa, &ya, s, d, pl, pr);
    int rc = dgm__dnnl_check(st, "conv backward-data desc");
    dnnl_primitive_desc_t pd = NULL;
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_primitive_desc_create(&pd, &od, NULL, dgm__dnnl_engine(),
                                       e->fwd.pd),
            "conv backward-data pd");
    if (rc)
        return rc;
    int args[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    int dirs[3] = {ARG_IN, ARG_IN, ARG_OUT_ACC};
    dnnl_memory_desc_t mds[3] = {e->y_md, e->w_md, e->x_md};
    return plan_init(&e->bwd_data, pd, 3, args, dirs, mds);
}

static int make_bwd_w(conv_entry *e)
{
    bool deconv = e->key.tag[0] == 'd';
    dnnl_memory_desc_t xa, wa, ya;
    dnnl_dims_t s, d, pl, pr;
    any_md(&xa, &e->x_md);
    any_md(&wa, &e->w_md);
    any_md(&ya, &e->y_md);
    conv_strides_pads(&e->key, s, d, pl, pr);
    const dnnl_memory_desc_t *bmd = e->key.has_bias ? &e->b_md : NULL;
    dnnl_status_t st;
    union {
        dnnl_convolution_desc_t c;
        dnnl_deconvolution_desc_t d;
    } od;
    if (deconv)
        st = dnnl_dilated_deconvolution_backward_weights_desc_init(
            &od.d, dnnl_deconvolution_direct, &xa, &wa, bmd, &ya, s, d, pl,
            pr);
    else
        st = dnnl_dilated_convolution_backward_weights_desc_init(
            &od.c, dnnl_convolution_direct, &xa, &wa, bmd, &ya, s, d, pl, pr);
    int rc = dgm__dnnl_check(st, "conv backward-weights desc");
    dnnl_primitive_desc_t pd = NULL;
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_primitive_desc_create(&pd, &od, NULL, dgm__dnnl_engine(),
                                       e->fwd.pd),
            "conv backward-weights pd");
    if (rc)
        return rc;
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS,
                   DNNL_ARG_DIFF_BIAS};
    int dirs[4] = {ARG_IN, ARG_IN, ARG_OUT_ACC, ARG_OUT_ACC};
    dnnl_memory_desc_t mds[4] = {e->x_md, e->y_md, e->w_md, e->b_md};
    return plan_init(&e->bwd_w, pd, e->key.has_bias ? 4 : 3, args, dirs, mds);
}

/* The cached entry for this shape, made (with its forward plan) on a miss. */
static conv_entry *conv_entry_get(dgm_graph *g, const conv_key *key)
{
    conv_entry *e = dgm__dnnl_cache_get(key, sizeof *key);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return dgm__fail_null(g, DGM_ENOMEM, "conv: out of memory");
    e->key = *key;
    int rc = entry_mds(e);
    if (!rc)
        rc = make_fwd(e);
    if (rc) {
        free(e);
        return dgm__fail_null(g, rc, "%s", dgm_last_error());
    }
    rc = dgm__dnnl_cache_put(key, sizeof *key, e, conv_entry_destroy);
    if (rc) {
        conv_entry_destroy(e);
        return dgm__fail_null(g, rc, "%s", dgm_last_error());
    }
    return e;
}

/* ====================================================================== */
/* The ops                                                                */
/* ====================================================================== */

typedef struct conv_ctx {
    conv_geom c;
    bool transpose;
    conv_entry *e; /* NULL on the reference backend */
    void *x_prim;  /* forward's x in its primitive layout, or NULL */
} conv_ctx;

static int conv_backward(dgm_graph *g, dgm_var *node)
{
    conv_ctx *cx = node->ctx;
    const conv_geom *c = &cx->c;
    dgm_var *bv = node->n_in > 2 ? node->in[2] : NULL;
    dgm_tensor *x = node->saved[0], *w = node->saved[1];
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm_graph_status(g) ? dgm_graph_status(g) : DGM_ENOMEM;
    /* first contributions store: oneDNN's result is the gradient (no zero
     * fill, no sum post-op), the reference kernels add into zeros */
    bool sx = false, sw = false, sb = false;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &sx);
    dgm_tensor *dw = dgm__grad_in(g, node, 1, &sw);
    dgm_tensor *db = bv ? dgm__grad_in(g, node, 2, &sb) : NULL;
    if (dgm_graph_status(g))
        return dgm_graph_status(g);
    const float *dyp = dgm_tensor_f32(dy), *xp = dgm_tensor_f32(x),
                *wp = dgm_tensor_f32(w);

    if (cx->e) {
        conv_entry *e = cx->e;
        int rc = 0;
        if (dx && !e->has_bwd_data) {
            rc = make_bwd_data(e);
            if (rc)
                return dgm__fail(g, rc, "%s", dgm_last_error());
            e->has_bwd_data = true;
        }
        if ((dw || db) && !e->has_bwd_w) {
            rc = make_bwd_w(e);
            if (rc)
                return dgm__fail(g, rc, "%s", dgm_last_error());
            e->has_bwd_w = true;
        }
        void *dy_prim = NULL; /* dy as bwd_data reordered it */
        if (dx) {
            void *h[3] = {(void *)dyp, (void *)wp, dx->data};
            void *done[3];
            const bool st[3] = {false, false, sx};
            rc = plan_exec(g, &e->bwd_data, h, NULL, done, st);
            if (rc)
                return rc;
            dy_prim = done[0];
        }
        if (dw || db) {
            /* the bias gradient comes with the weights' (and vice versa):
             * send whichever is not wanted to scratch, stored */
            dgm_tensor *wt =
                dw ? dw : dgm__alloc_uninit(g, DGM_F32, w->ndim, w->shape);
            dgm_tensor *bt = NULL;
            if (e->key.has_bias)
                bt = db ? db
                        : dgm__alloc_uninit(g, DGM_F32, 1, bv->value->shape);
            if (!wt || (e->key.has_bias && !bt))
                return DGM_ENOMEM;
            void *wbuf = wt->data, *bbuf = bt ? bt->data : NULL;
            void *h[4] = {(void *)xp, (void *)dyp, wbuf, bbuf};
            const bool st[4] = {false, false, dw ? sw : true, db ? sb : true};
            /* reuse forward's reordered x and bwd_data's reordered dy */
            void *pre[4] = {NULL, NULL, NULL, NULL};
            if (cx->x_prim && plan_same_in(&e->fwd, 0, &e->bwd_w, 0))
                pre[0] = cx->x_prim;
            if (dy_prim && plan_same_in(&e->bwd_data, 0, &e->bwd_w, 1))
                pre[1] = dy_prim;
            rc = plan_exec(g, &e->bwd_w, h, pre, NULL, st);
        }
        return rc;
    }

    /* reference: the transposed conv is conv's backward-data, so its own
     * backward-data is conv forward and the roles of x / dy swap for w; the
     * kernels add, so a first write starts from zeros */
    dgm_tensor *zero[3] = {sx ? dx : NULL, sw ? dw : NULL, sb ? db : NULL};
    for (int i = 0; i < 3; i++)
        if (zero[i])
            memset(zero[i]->data, 0, dgm_tensor_nbytes(zero[i]));
    if (!cx->transpose) {
        if (dx)
            ref_conv_bwd_data(c, dgm_tensor_f32(dx), dyp, wp);
        if (dw)
            ref_conv_bwd_weights(c, dgm_tensor_f32(dw), xp, dyp);
        if (db)
            ref_bias_bwd(dgm_tensor_f32(db), dyp, c->n, c->oc, c->oh * c->ow);
    } else {
        if (dx)
            ref_conv_fwd(c, dgm_tensor_f32(dx), dyp, wp);
        if (dw)
            ref_conv_bwd_weights(c, dgm_tensor_f32(dw), dyp, xp);
        if (db)
            ref_bias_bwd(dgm_tensor_f32(db), dyp, c->n, c->ic, c->ih * c->iw);
    }
    return 0;
}

static const dgm__op op_conv2d = {DGM_OP_CONV2D, conv_backward};
static const dgm__op op_conv_transpose2d = {DGM_OP_CONV_TRANSPOSE2D,
                                            conv_backward};

static dgm_var *conv_common(dgm_graph *g, dgm_var *xv, dgm_var *wv,
                            dgm_var *bv, const dgm_conv_params *p,
                            bool transpose)
{
    const char *name = transpose ? "conv_transpose2d" : "conv2d";
    if (!xv || !wv || !p)
        return NULL;
    dgm_tensor *xt = xv->value, *wt = wv->value, *bt = bv ? bv->value : NULL;
    char sx[96], sw[96], sb[96];
    dgm_tensor_describe(xt, sx, sizeof sx);
    dgm_tensor_describe(wt, sw, sizeof sw);
    if (bt)
        dgm_tensor_describe(bt, sb, sizeof sb);
    else
        snprintf(sb, sizeof sb, "none");
    if (xt->dtype != DGM_F32 || wt->dtype != DGM_F32 ||
        (bt && bt->dtype != DGM_F32))
        return dgm__fail_null(g, DGM_EDTYPE,
                              "%s: x %s, w %s, b %s: f32 only", name, sx, sw,
                              sb);
    int groups = p->groups ? p->groups : 1;
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 ||
        p->dilation[1] < 1 || p->pad[0] < 0 || p->pad[1] < 0 || groups < 1 ||
        p->output_pad[0] < 0 || p->output_pad[1] < 0)
        return dgm__fail_null(
            g, DGM_EINVAL,
            "%s: stride (%d, %d) and dilation (%d, %d) must be >= 1, pad "
            "(%d, %d) and output_pad (%d, %d) >= 0, groups %d >= 1",
            name, p->stride[0], p->stride[1], p->dilation[0], p->dilation[1],
            p->pad[0], p->pad[1], p->output_pad[0], p->output_pad[1],
            p->groups);
    if (xt->ndim != 4 || wt->ndim != 4 || (bt && bt->ndim != 1))
        return dgm__fail_null(g, DGM_ESHAPE,
                              "%s: want x [N, C, H, W], w 4-D, b 1-D; got x "
                              "%s, w %s, b %s",
                              name, sx, sw, sb);
    conv_geom c = {0};
    int64_t n = xt->shape[0], cin = xt->shape[1], h = xt->shape[2],
            wd = xt->shape[3];
    c.n = n;
    c.kh = wt->shape[2], c.kw = wt->shape[3];
    c.sh = p->stride[0], c.sw = p->stride[1];
    c.ph = p->pad[0], c.pw = p->pad[1];
    c.dh = p->dilation[0], c.dw = p->dilation[1];
    c.groups = groups;
    int64_t oc_op; /* the op's output channels */
    if (!transpose) {
        if (p->output_pad[0] || p->output_pad[1])
            return dgm__fail_null(g, DGM_EINVAL,
                                  "conv2d: output_pad (%d, %d) is for "
                                  "conv_transpose2d only",
                                  p->output_pad[0], p->output_pad[1]);
        oc_op = wt->shape[0];
        if (cin % groups || oc_op % groups || wt->shape[1] != cin / groups)
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "conv2d: x %s and w %s disagree with groups "
                                  "%d (want w [OC, C/groups, KH, KW], C and "
                                  "OC divisible by groups)",
                                  sx, sw, groups);
        c.ic = cin, c.ih = h, c.iw = wd, c.oc = oc_op;
        c.oh = (h + 2 * c.ph - c.dh * (c.kh - 1) - 1);
        c.ow = (wd + 2 * c.pw - c.dw * (c.kw - 1) - 1);
        if (c.oh < 0 || c.ow < 0)
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "conv2d: x %s too small for w %s with pad "
                                  "(%d, %d), dilation (%d, %d)",
                                  sx, sw, p->pad[0], p->pad[1],
                                  p->dilation[0], p->dilation[1]);
        c.oh = c.oh / c.sh + 1, c.ow = c.ow / c.sw + 1;
    } else {
        if (wt->shape[0] != cin || cin % groups)
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "conv_transpose2d: x %s and w %s disagree "
                                  "with groups %d (want w [C, OC/groups, KH, "
                                  "KW], C divisible by groups)",
                                  sx, sw, groups);
        if ((p->output_pad[0] >= p->stride[0] &&
             p->output_pad[0] >= p->dilation[0]) ||
            (p->output_pad[1] >= p->stride[1] &&
             p->output_pad[1] >= p->dilation[1]))
            return dgm__fail_null(g, DGM_EINVAL,
                                  "conv_transpose2d: output_pad (%d, %d) must "
                                  "be smaller than stride (%d, %d) or "
                                  "dilation (%d, %d)",
                                  p->output_pad[0], p->output_pad[1],
                                  p->stride[0], p->stride[1], p->dilation[0],
                                  p->dilation[1]);
        oc_op = wt->shape[1] * groups;
        /* conv side: its output is our input */
        c.oc = cin, c.oh = h, c.ow = wd, c.ic = oc_op;
        c.ih = (h - 1) * c.sh - 2 * c.ph + c.dh * (c.kh - 1) +
               p->output_pad[0] + 1;
        c.iw = (wd - 1) * c.sw - 2 * c.pw + c.dw * (c.kw - 1) +
               p->output_pad[1] + 1;
        if (c.ih < 1 || c.iw < 1)
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "conv_transpose2d: x %s with w %s and pad "
                                  "(%d, %d) gives an empty output",
                                  sx, sw, p->pad[0], p->pad[1]);
    }
    if (bt && bt->shape[0] != oc_op)
        return dgm__fail_null(g, DGM_ESHAPE,
                              "%s: b %s does not match %lld output channels "
                              "(x %s, w %s)",
                              name, sb, (long long)oc_op, sx, sw);
    if (n < 1 || cin < 1 || oc_op < 1)
        return dgm__fail_null(g, DGM_ESHAPE, "%s: empty x %s or w %s", name,
                              sx, sw);

    dgm_tensor *x = dgm__contig(g, xt), *w = dgm__contig(g, wt);
    dgm_tensor *b = bt ? dgm__contig(g, bt) : NULL;
    if (!x || !w || (bt && !b))
        return NULL;
    int64_t yshape[4] = {n, oc_op, transpose ? c.ih : c.oh,
                         transpose ? c.iw : c.ow};
    /* oneDNN overwrites y; the reference kernels accumulate into zeros */
    dgm_tensor *y = dgm__use_dnnl(g) ? dgm__alloc_uninit(g, DGM_F32, 4, yshape)
                                     : dgm__alloc(g, DGM_F32, 4, yshape);
    conv_ctx *cx = dgm__arena_alloc(g, sizeof *cx);
    if (!y || !cx)
        return NULL;
    memset(cx, 0, sizeof *cx);
    cx->c = c;
    cx->transpose = transpose;

    float *yp = dgm_tensor_f32(y);
    const float *xp = dgm_tensor_f32(x), *wp = dgm_tensor_f32(w);
    if (dgm__use_dnnl(g)) {
        conv_key key;
        memset(&key, 0, sizeof key);
        memcpy(key.tag, transpose ? "deconv" : "conv", transpose ? 6 : 4);
        key.c = c;
        key.has_bias = b != NULL;
        conv_entry *e = conv_entry_get(g, &key);
        if (!e)
            return NULL;
        void *hs[4] = {(void *)xp, (void *)wp, yp, b ? b->data : NULL};
        void *done[4];
        if (plan_exec(g, &e->fwd, hs, NULL, done, NULL))
            return NULL;
        cx->x_prim = done[0];
        cx->e = e;
    } else if (!transpose) {
        ref_conv_fwd(&c, yp, xp, wp);
        if (b)
            ref_bias_fwd(yp, dgm_tensor_f32(b), n, c.oc, c.oh * c.ow);
    } else {
        ref_conv_bwd_data(&c, yp, xp, wp);
        if (b)
            ref_bias_fwd(yp, dgm_tensor_f32(b), n, c.ic, c.ih * c.iw);
    }
    dgm_var *ins[3] = {xv, wv, bv};
    dgm_var *out = dgm__node(g, transpose ? &op_conv_transpose2d : &op_conv2d,
                             y, ins, bv ? 3 : 2);
    if (!out)
        return NULL;
    out->saved[0] = x;
    out->saved[1] = w;
    out->ctx = cx;
    return out;
}

dgm_var *dgm_conv2d(dgm_graph *g, dgm_var *x, dgm_var *w, dgm_var *b,
                    const dgm_conv_params *p)
{
    return conv_common(g, x, w, b, p, false);
}

dgm_var *dgm_conv_transpose2d(dgm_graph *g, dgm_var *x, dgm_var *w,
                              dgm_var *b, const dgm_conv_params *p)
{
    return conv_common(g, x, w, b, p, true);
}
