/* tool_config.c - the known-keys check of the tools' config sections. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "tool_config.h"

int dgm__tool_known_keys(const dgm_config *sec, const char *what,
                         const char *const *keys, int n)
{
    for (int i = 0; i < dgm_cfg_len(sec); i++) {
        const char *k = dgm_cfg_key_at(sec, i);
        bool known = false;
        for (int j = 0; j < n && !known; j++)
            known = !strcmp(k, keys[j]);
        if (known)
            continue;
        char list[512];
        size_t len = 0;
        for (int j = 0; j < n && len < sizeof list; j++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                    j ? ", " : "", keys[j]);
        const char *dym = dgm_did_you_mean(k, keys, n);
        return dgm_cfg_error(dgm_cfg_at(sec, i), NULL, DGM_EKEY,
                             "unknown %skey '%s'%s%s%s (%s)", what, k,
                             dym ? " (did you mean '" : "", dym ? dym : "",
                             dym ? "'?)" : "", list);
    }
    return 0;
}

const dgm_config *dgm__tool_scalar(dgm__tool_scalars *s, const dgm_config *at,
                                   const char *text)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        dgm_config **m = realloc(s->made, sizeof *m * (size_t)cap);
        if (!m)
            return NULL;
        s->made = m;
        s->cap = cap;
    }
    dgm_config *n = dgm_config_new_scalar(text, at);
    if (n)
        s->made[s->n++] = n;
    return n;
}

void dgm__tool_scalars_free(dgm__tool_scalars *s)
{
    for (int i = 0; i < s->n; i++)
        dgm_config_free(s->made[i]);
    free(s->made);
    *s = (dgm__tool_scalars){0};
}
