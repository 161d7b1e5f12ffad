/* generate.c - `dgm sample --prompt`'s work: text from a sequence model's
 * run, through the data set's vocabulary (which also turns a prompt into
 * ids for `dgm explore`). */
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "run_internal.h"

/* The run's vocabulary: bytes in id order, from the data-set state. */
static int vocab_of(dgm_experiment *e, const unsigned char **bytes, int64_t *n)
{
    dgm_param *v =
        e->data_state ? dgm_params_find(e->data_state, "vocab") : NULL;
    if (!v || v->value->dtype != DGM_U8 || v->value->ndim != 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "data set '%s' keeps no byte vocabulary (\"vocab\" "
                         "state), so there is no text to generate",
                         e->data.desc->name);
    *bytes = v->value->data;
    *n = v->value->shape[0];
    return 0;
}

static int encode_prompt(const char *prompt, const unsigned char *vocab,
                         int64_t nv, int32_t *ids)
{
    int32_t id_of[256];
    for (int b = 0; b < 256; b++)
        id_of[b] = -1;
    for (int64_t i = 0; i < nv; i++)
        id_of[vocab[i]] = (int32_t)i;
    size_t len = strlen(prompt);
    char missing[256] = {0};
    size_t nm = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)prompt[i];
        ids[i] = id_of[c];
        if (ids[i] < 0 && !memchr(missing, c, nm) && nm < sizeof missing - 1)
            missing[nm++] = (char)c;
    }
    if (!nm)
        return 0;
    char shown[1024];
    size_t at = 0;
    for (size_t i = 0; i < nm && at + 8 < sizeof shown; i++) {
        unsigned c = (unsigned char)missing[i];
        at += (size_t)snprintf(shown + at, sizeof shown - at,
                               c >= 0x21 && c < 0x7f ? "%s'%c'" : "%s0x%02x",
                               i ? " " : "", c);
    }
    return dgm_error(DGM_EINVAL,
                     "the prompt holds %zu byte value(s) the vocabulary does "
                     "not: %s",
                     nm, shown);
}

int dgm_run_text_ids(dgm_run *r, const char *text, int32_t *ids)
{
    const unsigned char *vocab = NULL;
    int64_t nv = 0;
    int rc = vocab_of(dgm_run_experiment(r), &vocab, &nv);
    return rc < 0 ? rc : encode_prompt(text, vocab, nv, ids);
}

int dgm_run_ids_text(dgm_run *r, const int64_t *ids, int64_t n, char *text)
{
    const unsigned char *vocab = NULL;
    int64_t nv = 0;
    int rc = vocab_of(dgm_run_experiment(r), &vocab, &nv);
    for (int64_t i = 0; rc == 0 && i < n; i++)
        text[i] = ids[i] >= 0 && ids[i] < nv ? (char)vocab[ids[i]] : '?';
    text[rc == 0 ? n : 0] = '\0';
    return rc;
}

int dgm_run_generate(dgm_registry *reg, const char *run_dir, const char *prompt,
                     int64_t length, const dgm_generate_opts *o, uint64_t seed,
                     char **text)
{
    *text = NULL;
    size_t plen = prompt ? strlen(prompt) : 0;
    if (plen == 0 || length < 0)
        return dgm_error(DGM_EINVAL,
                         "generating: the prompt must be non-empty and the "
                         "length >= 0");
    dgm_run *r;
    int rc = dgm_run_open(&r, reg, run_dir);
    if (rc < 0)
        return rc;
    dgm_experiment *e = dgm_run_experiment(r);
    const dgm_model_iface *mi = e->model.desc->iface.model;
    const unsigned char *vocab = NULL;
    int64_t nv = 0, total = (int64_t)plen + length;
    int32_t *ids = NULL;
    if (!mi->generate)
        rc = dgm_error(DGM_EUNSUPPORTED,
                       "model '%s' does not generate sequences",
                       e->model.desc->name);
    if (rc == 0)
        rc = vocab_of(e, &vocab, &nv);
    if (rc == 0 && !(ids = malloc(sizeof *ids * (size_t)total)))
        rc = dgm_error(DGM_ENOMEM, "generating: out of memory");
    if (rc == 0)
        rc = encode_prompt(prompt, vocab, nv, ids);
    if (rc == 0) {
        dgm_eval *ev = dgm__run_eval(r);
        dgm_rng_seed(&ev->rng, seed);
        rc = mi->generate(e->model.self, dgm__eval_empty_step(ev), ids,
                          (int64_t)plen, length, o, ids);
        if (rc < 0)
            dgm_error_context("model '%s': ", e->model.desc->name);
    }
    char *out = rc == 0 ? malloc((size_t)total + 1) : NULL;
    if (rc == 0 && !out)
        rc = dgm_error(DGM_ENOMEM, "generating: out of memory");
    for (int64_t i = 0; rc == 0 && i < total; i++)
        /* the "unknown" id (== nv) has no byte: shown as '?' */
        out[i] = ids[i] >= 0 && ids[i] < nv ? (char)vocab[ids[i]] : '?';
    if (out)
        out[total] = '\0';
    free(ids);
    dgm_run_close(r);
    *text = out;
    return rc;
}
