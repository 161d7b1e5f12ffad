/* token_loop.h - what the sequence models (char_rnn, seq_vae,
 * char_transformer) share: the check of their data, and when they
 * generate, the prompt checked and fed, then each drawn token fed back
 * with the carried state. Static inline, so each module that includes it
 * has its own copy (a plugin links only libdgm). */
#ifndef DGM_PLUGINS_TOKEN_LOOP_H
#define DGM_PLUGINS_TOKEN_LOOP_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

/* create()'s check of the data: token windows (i64 [T] ids with
 * next-token targets and a vocabulary); an error names the plugin. */
static inline int token_data_check(const char *who, const dgm_data_info *data)
{
    if (data->x_dtype == DGM_I64 && data->x_shape.ndim == 1 &&
        data->n_classes >= 2 && data->has_y)
        return 0;
    return dgm_error(DGM_EDTYPE,
                     "%s: needs token windows (i64 [T] ids with next-token "
                     "targets and a vocabulary), e.g. the text data set; got "
                     "%s examples with %lld classes",
                     who, dgm_dtype_name(data->x_dtype),
                     (long long)data->n_classes);
}

/* sample() of a text model: its samples are text, made by generate. */
static inline int token_no_sample(const char *who, dgm_var **out)
{
    *out = NULL;
    return dgm_error(DGM_EUNSUPPORTED,
                     "%s: samples are text; use dgm sample --prompt", who);
}

/* The end of a recurrent feed: the last step's logits of logits
 * [t, n, V] into last [n, V], the final states h_n (and c_n, when c is
 * not NULL) into h (and c) for the next feed. */
static inline int token_feed_end(dgm_var *logits, float *last, dgm_tensor *h,
                                 dgm_var *h_n, dgm_tensor *c, dgm_var *c_n)
{
    if (!logits)
        return dgm_last_code();
    const dgm_tensor *lv = dgm_value(logits);
    int64_t t = lv->shape[0], nv = lv->shape[1] * lv->shape[2];
    memcpy(last, (const float *)dgm_tensor_f32(lv) + (t - 1) * nv,
           sizeof *last * (size_t)nv);
    int rc = dgm_tensor_copy(h, dgm_value(h_n));
    if (rc == 0 && c)
        rc = dgm_tensor_copy(c, dgm_value(c_n));
    return rc;
}

/* Feed ids [t, 1] from the state the model keeps in ctx (zeros unless
 * have_state); the last step's logits land in last [V] and the final
 * state back in ctx. */
typedef int (*token_feed_fn)(void *ctx, dgm_graph *g, dgm_tensor *ids,
                             bool have_state, float *last);

/* generate() of the model interface: prompt ids checked against
 * [0, vocab) (an error names the plugin `who`), fed, then `length` tokens
 * drawn with o from the step's RNG, each fed back; out receives
 * prompt_len + length ids. */
static inline int token_generate(const char *who, void *ctx, token_feed_fn feed,
                                 int64_t vocab, dgm_step *s,
                                 const int32_t *prompt, int64_t prompt_len,
                                 int64_t length, const dgm_generate_opts *o,
                                 int32_t *out)
{
    int64_t pshape[2] = {prompt_len, 1}, one[2] = {1, 1};
    dgm_tensor *ids = dgm_tensor_new(DGM_I64, 2, pshape);
    dgm_tensor *tok = dgm_tensor_new(DGM_I64, 2, one);
    float *last = malloc(sizeof *last * (size_t)vocab);
    int rc = ids && tok && last ? 0 : DGM_ENOMEM;
    if (rc < 0)
        dgm_error(DGM_ENOMEM, "%s: out of memory", who);
    for (int64_t i = 0; rc == 0 && i < prompt_len; i++) {
        if (prompt[i] < 0 || prompt[i] >= vocab)
            rc = dgm_error(DGM_ERANGE,
                           "%s: prompt id %d at %lld is "
                           "outside the vocabulary [0, %lld)",
                           who, prompt[i], (long long)i, (long long)vocab);
        ((int64_t *)ids->data)[i] = prompt[i];
        out[i] = prompt[i];
    }
    if (rc == 0)
        rc = feed(ctx, s->g, ids, false, last);
    for (int64_t i = 0; rc == 0 && i < length; i++) {
        int32_t next = dgm_draw_token(last, vocab, o, s->rng);
        out[prompt_len + i] = next;
        ((int64_t *)tok->data)[0] = next;
        if (i + 1 < length)
            rc = feed(ctx, s->g, tok, true, last);
    }
    dgm_tensor_free(ids);
    dgm_tensor_free(tok);
    free(last);
    return rc;
}

#endif
