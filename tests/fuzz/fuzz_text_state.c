/* fuzz_text_state.c - the `text` data set's saved vocabulary (its
 * load_state), against a corpus the input also chooses.
 * Input: a flag byte, a corpus length byte L, L corpus bytes, then the
 * state tensor's bytes. Flags: bits 0-1 the tensor's rank (1, 2 as
 * [1, n], 0 as a scalar, 1); bits 2-3 its dtype (U8, I32, F32, U8); bit 4
 * names it "vocab2" instead of "vocab"; bit 5 a validation fraction of 0.5
 * instead of 0.05.
 * Properties: a refusal is DGM_ESTATE with a message; accepted state is
 * exactly the vocabulary the data set saves itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    size_t L = data[1] < size - 2 ? data[1] : size - 2;
    const uint8_t *corpus = data + 2, *state = data + 2 + L;
    size_t ns = size - 2 - L;
    static const dgm_plugin_desc *desc;
    if (!desc && dgm_registry_find(fz_registry(), DGM_KIND_DATASET, "text",
                                   &desc, NULL) < 0)
        fz_fail("no text plugin");
    const dgm_dataset_iface *di = desc->iface.dataset;
    char path[4096], yaml[4300];
    fz_write("corpus.txt", corpus, L, path, sizeof path);
    snprintf(yaml, sizeof yaml, "{path: '%s', seq_len: 1, val_fraction: %s}",
             path, flags & 32 ? "0.5" : "0.05");
    dgm_config *cfg;
    if (dgm_config_parse(&cfg, yaml, "<text>") < 0 ||
        dgm_config_validate(cfg, desc->params, desc->name, NULL) < 0)
        fz_fail("the text data set's config does not validate");
    void *self = NULL;
    int rc = di->create(&self, cfg);
    if (rc < 0) { /* a corpus too short or binary */
        fz_expect_error(rc, NULL);
        goto out;
    }
    static const dgm_dtype types[4] = {DGM_U8, DGM_I32, DGM_F32, DGM_U8};
    dgm_dtype dt = types[(flags >> 2) & 3];
    int64_t n = (int64_t)(ns / dgm_dtype_size(dt)), shape[2];
    static const int ranks[4] = {1, 2, 0, 1};
    int rank = ranks[flags & 3];
    if (rank == 0 && n == 0)
        rank = 1;
    if (rank == 2) {
        shape[0] = 1;
        shape[1] = n;
    } else
        shape[0] = n;
    void *copy = malloc(ns ? ns : 1);
    if (!copy)
        fz_fail("out of memory");
    memcpy(copy, state, ns);
    dgm_tensor *t = dgm_tensor_wrap(copy, dt, rank, shape, NULL);
    dgm_params *st = dgm_params_new(), *mine = dgm_params_new();
    if (!t || !st || !mine ||
        dgm_params_add_copy(st, flags & 16 ? "vocab2" : "vocab", t, NULL) < 0)
        fz_fail("cannot make the state");
    rc = di->load_state(self, st);
    if (rc < 0) {
        fz_expect_error(rc, NULL);
        if (rc != DGM_ESTATE)
            fz_fail("refused with %d (%s), not DGM_ESTATE", rc,
                    dgm_strerror(rc));
    } else {
        dgm_param *p;
        if (di->save_state(self, mine) < 0 ||
            !(p = dgm_params_find(mine, "vocab")))
            fz_fail("no vocabulary saved");
        if (!(flags & 16) && rank == 1 && dt == DGM_U8 &&
            p->value->shape[0] == n &&
            !memcmp(p->value->data, state, (size_t)n))
            ; /* the same vocabulary */
        else
            fz_fail("accepted state that is not the data set's vocabulary");
    }
    dgm_params_free(mine);
    dgm_params_free(st);
    dgm_tensor_free(t);
    free(copy);
out:
    if (self)
        di->destroy(self);
    dgm_config_free(cfg);
    dgm_error_clear();
    return 0;
}
