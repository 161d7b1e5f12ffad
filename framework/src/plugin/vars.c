/* vars.c - the name -> var map models read their inputs from and write
 * their outputs to. */
#include <stdio.h>
#include <string.h>

#include "dgm/error.h"
#include "plugin_internal.h"

void dgm__vars_clear(dgm_vars *vs) { vs->n = 0; }

int dgm_vars_set(dgm_vars *vs, const char *name, dgm_var *v)
{
    if (!name || !v)
        return dgm_error(DGM_EINVAL, "vars: setting '%s' to %s",
                         name ? name : "(null)", v ? "a var" : "NULL");
    for (int i = 0; i < vs->n; i++)
        if (!strcmp(vs->name[i], name)) {
            vs->var[i] = v;
            return 0;
        }
    size_t len = strlen(name);
    if (len >= DGM_VAR_NAME_MAX)
        return dgm_error(DGM_ERANGE,
                         "vars: the name '%.40s...' is %zu bytes, at most %d",
                         name, len, DGM_VAR_NAME_MAX - 1);
    if (vs->n == DGM_MAX_VARS)
        return dgm_error(DGM_ERANGE,
                         "vars: more than %d named tensors "
                         "(adding '%s')",
                         DGM_MAX_VARS, name);
    memcpy(vs->name[vs->n], name, len + 1);
    vs->var[vs->n++] = v;
    return 0;
}

dgm_var *dgm_vars_get(const dgm_vars *vs, const char *name)
{
    for (int i = 0; i < vs->n; i++)
        if (!strcmp(vs->name[i], name))
            return vs->var[i];
    return NULL;
}

int dgm_vars_count(const dgm_vars *vs) { return vs->n; }

const char *dgm_vars_name_at(const dgm_vars *vs, int i)
{
    return i >= 0 && i < vs->n ? vs->name[i] : NULL;
}

const char *dgm__vars_names(const dgm_vars *vs, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int k = 0; k < vs->n; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", k ? ", " : "", vs->name[k]);
    }
    return buf;
}
