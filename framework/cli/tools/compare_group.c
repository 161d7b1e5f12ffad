/* compare_group.c - runs grouped into variants (by --group-by, by sweep
 * trial, by plain run) and the variants' labels. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "compare.h"
#include "compare_internal.h"
#include "dgm/config.h"
#include "dgm/error.h"

/* A config node as flow-style YAML text ("20", "[400, 200]",
 * "{plugin: mlp, hidden: [400]}"). */
static void render(const dgm_config *n, sbuf *b)
{
    switch (dgm_cfg_kind_of(n)) {
    case DGM_CFG_SCALAR:
        dgm__cmp_sb_add(b, "%s", dgm_cfg_text(n));
        break;
    case DGM_CFG_SEQ:
        dgm__cmp_sb_add(b, "[");
        for (int i = 0; i < dgm_cfg_len(n); i++) {
            if (i)
                dgm__cmp_sb_add(b, ", ");
            render(dgm_cfg_at(n, i), b);
        }
        dgm__cmp_sb_add(b, "]");
        break;
    case DGM_CFG_MAP:
        dgm__cmp_sb_add(b, "{");
        for (int i = 0; i < dgm_cfg_len(n); i++) {
            dgm__cmp_sb_add(b, "%s%s: ", i ? ", " : "", dgm_cfg_key_at(n, i));
            render(dgm_cfg_at(n, i), b);
        }
        dgm__cmp_sb_add(b, "}");
        break;
    default:
        dgm__cmp_sb_add(b, "null");
    }
}

static char *render_str(const dgm_config *n)
{
    sbuf b = {0};
    render(n, &b);
    return dgm__cmp_sb_take(&b);
}

/* A config flattened to leaves: "model.encoder.hidden" -> "[400]". */
typedef struct leaves {
    int n, cap;
    char **path, **text;
    bool oom;
} leaves;

static void leaf_add(leaves *l, const char *path, char *text)
{
    if (l->oom || !text) {
        free(text);
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        int c = l->cap ? l->cap * 2 : 64;
        char **p = realloc(l->path, (size_t)c * sizeof *p);
        if (p)
            l->path = p;
        char **t = p ? realloc(l->text, (size_t)c * sizeof *t) : NULL;
        if (!t) {
            free(text);
            l->oom = true;
            return;
        }
        l->text = t;
        l->cap = c;
    }
    l->path[l->n] = strdup(path);
    l->text[l->n] = text;
    if (!l->path[l->n]) {
        free(text);
        l->oom = true;
        return;
    }
    l->n++;
}

static void flatten(const dgm_config *n, const char *prefix, leaves *l)
{
    dgm_cfg_kind k = dgm_cfg_kind_of(n);
    bool nested = false;
    if (k == DGM_CFG_SEQ)
        for (int i = 0; i < dgm_cfg_len(n); i++)
            nested |= dgm_cfg_kind_of(dgm_cfg_at(n, i)) >= DGM_CFG_SEQ;
    if ((k == DGM_CFG_MAP && dgm_cfg_len(n) > 0) || nested) {
        for (int i = 0; i < dgm_cfg_len(n); i++) {
            char p[2048];
            if (k == DGM_CFG_MAP)
                snprintf(p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "",
                         dgm_cfg_key_at(n, i));
            else
                snprintf(p, sizeof p, "%s[%d]", prefix, i);
            flatten(dgm_cfg_at(n, i), p, l);
        }
        return;
    }
    leaf_add(l, prefix, render_str(n));
}

static void leaves_free(leaves *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->path[i]);
        free(l->text[i]);
    }
    free(l->path);
    free(l->text);
}

static const char *leaf_get(const leaves *l, const char *path)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->path[i], path))
            return l->text[i];
    return NULL;
}

void dgm__cmp_loader_free_fixed(dgm__cmp_loader *L)
{
    for (int s = 0; s < L->c->n_sources; s++) {
        if (L->fixed)
            leaves_free(&L->fixed[s]);
        if (L->fixed_cfg)
            dgm_config_free(L->fixed_cfg[s]);
    }
    free(L->fixed);
    free(L->fixed_cfg);
    L->fixed = NULL;
    L->fixed_cfg = NULL;
}

/* A JSON value as label text: strings bare, the rest compact JSON. */
static char *json_text(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The shortest dotted suffix of key that no other key of keys ends with. */
static const char *short_key(const char *key, const char *const *keys, int n)
{
    const char *best = key;
    for (const char *p = key + strlen(key); p > key; p--) {
        if (p[-1] != '.')
            continue;
        bool unique = true;
        size_t len = strlen(p);
        for (int i = 0; i < n && unique; i++) {
            size_t kl = strlen(keys[i]);
            if (keys[i] == key || kl < len)
                continue;
            if (!strcmp(keys[i] + kl - len, p) &&
                (kl == len || keys[i][kl - len - 1] == '.'))
                unique = false;
        }
        if (unique)
            return p;
    }
    return best;
}

/* The value text of key in the trial's overrides ("KEY=VALUE"), the
 * flow-style YAML dgm sweep wrote, else NULL. */
static const char *override_value(const json_t *trial, const char *key)
{
    json_t *ov = json_object_get(trial, "overrides");
    size_t kl = strlen(key);
    for (size_t i = 0; i < json_array_size(ov); i++) {
        const char *s = json_string_value(json_array_get(ov, i));
        if (s && !strncmp(s, key, kl) && s[kl] == '=')
            return s + kl + 1;
    }
    return NULL;
}

/* A swept value's short name, as dgm sweep names trials: a plugin map
 * stands as its plugin, an objective term as its loss, a list of those
 * as the names joined by '+'; NULL for anything else. */
static char *short_value(const json_t *v)
{
    const char *one = NULL;
    if (json_is_object(v)) {
        one = json_string_value(json_object_get(v, "plugin"));
        if (!one)
            one = json_string_value(json_object_get(v, "loss"));
        return one ? strdup(one) : NULL;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return NULL;
    sbuf b = {0};
    for (size_t i = 0; i < json_array_size(v); i++) {
        char *t = short_value(json_array_get(v, i));
        if (!t) {
            free(b.s);
            return NULL;
        }
        dgm__cmp_sb_add(&b, "%s%s", i ? "+" : "", t);
        free(t);
    }
    return dgm__cmp_sb_take(&b);
}

/* Variant index for key (added if new; takes label and group over). */
static int variant_for(dgm__cmp_loader *L, const char *key, char *label,
                       json_t *group)
{
    dgm__compare *c = L->c;
    for (int v = 0; v < c->n_variants; v++)
        if (!strcmp(c->variants[v].key, key)) {
            free(label);
            json_decref(group);
            return v;
        }
    if (!label || !group ||
        !dgm__cmp_push((void **)&c->variants, &c->n_variants, &L->cap_variants,
                       sizeof *c->variants)) {
        free(label);
        json_decref(group);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    dgm__cmp_variant *va = &c->variants[c->n_variants];
    memset(va, 0, sizeof *va);
    va->label = label;
    va->group = group;
    if (!(va->key = strdup(key)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    return c->n_variants++;
}

static bool several_names(const dgm__compare *c)
{
    for (int i = 1; i < c->n_runs; i++)
        if (strcmp(c->runs[i].name, c->runs[0].name))
            return true;
    return false;
}

static int group_by_keys(dgm__cmp_loader *L, const dgm__cmp_options *o)
{
    dgm__compare *c = L->c;
    for (int k = 0; k < o->n_group_by; k++) {
        bool any = false;
        const char *example = NULL;
        for (int i = 0; i < c->n_runs && !any; i++) {
            any = dgm_cfg_get(c->runs[i].config, o->group_by[k]) != NULL;
            if (c->runs[i].config && !example)
                example = c->runs[i].dir;
        }
        if (!any)
            return dgm_error(DGM_EKEY,
                             "--group-by %s: no run's config.yaml has this "
                             "key%s%s%s",
                             o->group_by[k], example ? " (e.g. " : "",
                             example ? example : "",
                             example ? "/config.yaml)" : "");
    }
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_run *r = &c->runs[i];
        sbuf key = {0}, label = {0};
        json_t *group = json_object();
        for (int k = 0; k < o->n_group_by; k++) {
            const dgm_config *n = dgm_cfg_get(r->config, o->group_by[k]);
            /* a trial not started yet has no config.yaml: its swept value */
            const char *ov =
                r->config ? NULL : override_value(r->trial, o->group_by[k]);
            char *t = n    ? render_str(n)
                      : ov ? strdup(ov)
                           : strdup(r->config ? "(absent)" : "(no config)");
            if (t) {
                dgm__cmp_sb_add(&key, "%s\x1f", t);
                dgm__cmp_sb_add(&label, "%s%s=%s", k ? " " : "", o->group_by[k],
                                t);
                json_object_set_new(group, o->group_by[k], json_string(t));
            } else
                key.oom = true;
            free(t);
        }
        char *ks = dgm__cmp_sb_take(&key);
        int v = ks ? variant_for(L, ks, dgm__cmp_sb_take(&label), group)
                   : (free(label.s), json_decref(group),
                      dgm_error(DGM_ENOMEM, "compare: out of memory"));
        free(ks);
        if (v < 0)
            return v;
        r->variant = v;
    }
    return 0;
}

/* A sweep trial's label: its swept values but seed, values by their
 * short names unless full (then as the overrides spell them). */
static char *trial_label(const dgm__cmp_run *r, const json_t *group,
                         bool prefix, bool full)
{
    const char *keys[256];
    int nk = 0;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)group, k, val)
    {
        if (nk < 256)
            keys[nk++] = k;
    }
    sbuf label = {0};
    if (prefix || nk == 0)
        dgm__cmp_sb_add(&label, "%s", r->name);
    for (int i = 0; i < nk; i++) {
        const json_t *v = json_object_get(group, keys[i]);
        const char *ov = override_value(r->trial, keys[i]);
        char *t = full ? NULL : short_value(v);
        if (!t)
            t = ov ? strdup(ov) : json_text(v);
        dgm__cmp_sb_add(&label, "%s%s=%s", label.len ? " " : "",
                        short_key(keys[i], keys, nk), t ? t : "?");
        free(t);
    }
    return dgm__cmp_sb_take(&label);
}

/* Two sweeps of one experiment name can differ in what every trial
 * shares (overrides given to the whole sweep: `dgm sweep EXP.yaml
 * freeze=[encoder.*]`), which the manifest's params do not show. Each
 * sweep's sweep.yaml (the experiment with those overrides) is read once;
 * a leaf (seed and sweep.* aside) whose value differs between the sweeps
 * of r's name puts its key into r's group, so those sweeps stay apart. A
 * leaf inside a list stands for the list (`teachers`, `objective`), shown
 * whole as flow YAML; a key a sweep does not set reads "(absent)". */
static bool same_name(const dgm__cmp_source *src, const char *name)
{
    const char *n = json_string_value(json_object_get(src->manifest, "name"));
    return n && !strcmp(n, name);
}

static int fixed_key(json_t *group, const dgm_config *cfg, const char *path)
{
    char key[2048];
    snprintf(key, sizeof key, "%s", path);
    char *br = strchr(key, '[');
    if (br) {
        *br = '\0';
        if (br > key && br[-1] == '.')
            br[-1] = '\0';
    }
    if (!key[0] || !strcmp(key, "seed") || !strcmp(key, "sweep") ||
        !strncmp(key, "sweep.", 6) || json_object_get(group, key))
        return 0;
    const dgm_config *n = dgm_cfg_get(cfg, key);
    char *t = n ? render_str(n) : strdup("(absent)");
    if (!t || json_object_set_new(group, key, json_string(t)) < 0) {
        free(t);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    free(t);
    return 0;
}

static int sweep_fixed(dgm__cmp_loader *L, const dgm__cmp_run *r, json_t *group)
{
    dgm__compare *c = L->c;
    if (!L->fixed) {
        L->fixed = calloc((size_t)c->n_sources + 1, sizeof *L->fixed);
        L->fixed_cfg = calloc((size_t)c->n_sources + 1, sizeof *L->fixed_cfg);
        if (!L->fixed || !L->fixed_cfg)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        for (int s = 0; s < c->n_sources; s++) {
            char *p = dgm__cmp_path_join(c->sources[s].path, "sweep.yaml");
            if (!p)
                return dgm_error(DGM_ENOMEM, "compare: out of memory");
            /* an unreadable sweep.yaml only loses the split; dgm sweep
             * --resume is what needs it, and says so */
            if (c->sources[s].manifest && access(p, R_OK) == 0 &&
                dgm_config_load(&L->fixed_cfg[s], p) == 0)
                flatten(L->fixed_cfg[s], "", &L->fixed[s]);
            dgm_error_clear();
            free(p);
            if (L->fixed[s].oom)
                return dgm_error(DGM_ENOMEM, "compare: out of memory");
        }
    }
    const leaves *mine = &L->fixed[r->source];
    const dgm_config *cfg = L->fixed_cfg[r->source];
    if (!cfg)
        return 0;
    for (int s = 0; s < c->n_sources; s++) {
        if (s == r->source || !L->fixed_cfg[s] ||
            !same_name(&c->sources[s], r->name))
            continue;
        const leaves *other = &L->fixed[s];
        for (int j = 0; j < mine->n; j++) {
            const char *t = leaf_get(other, mine->path[j]);
            int rc = !t || strcmp(t, mine->text[j])
                         ? fixed_key(group, cfg, mine->path[j])
                         : 0;
            if (rc < 0)
                return rc;
        }
        for (int j = 0; j < other->n; j++) {
            int rc = !leaf_get(mine, other->path[j])
                         ? fixed_key(group, cfg, other->path[j])
                         : 0;
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* A sweep trial: its params without seed (and the settings that tell its
 * sweep from another of the same name). */
static int group_trial(dgm__cmp_loader *L, dgm__cmp_run *r, bool prefix)
{
    json_t *params = json_object_get(r->trial, "params");
    json_t *group = json_object();
    const char *k;
    json_t *val;
    json_object_foreach(params, k, val)
    {
        if (strcmp(k, "seed"))
            json_object_set(group, k, val);
    }
    int rc = group ? sweep_fixed(L, r, group)
                   : dgm_error(DGM_ENOMEM, "compare: out of memory");
    if (rc < 0) {
        json_decref(group);
        return rc;
    }
    sbuf key = {0};
    char *gs = json_dumps(group, JSON_COMPACT | JSON_SORT_KEYS);
    dgm__cmp_sb_add(&key, "S\x1f%s\x1f%s", r->name, gs ? gs : "");
    free(gs);
    char *ks = dgm__cmp_sb_take(&key);
    int v = ks ? variant_for(L, ks, trial_label(r, group, prefix, false), group)
               : (json_decref(group),
                  dgm_error(DGM_ENOMEM, "compare: out of memory"));
    free(ks);
    if (v < 0)
        return v;
    r->variant = v;
    return 0;
}

/* Short names can collide (two decoders both "mlp"): such sweep variants
 * get their values in full. */
static int relabel_collisions(dgm__cmp_loader *L, bool prefix)
{
    dgm__compare *c = L->c;
    bool *clash = calloc((size_t)c->n_variants + 1, sizeof *clash);
    if (!clash)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    for (int a = 0; a < c->n_variants; a++)
        for (int b = a + 1; b < c->n_variants; b++)
            if (!strcmp(c->variants[a].label, c->variants[b].label))
                clash[a] = clash[b] = true;
    int rc = 0;
    for (int i = 0; i < c->n_runs && rc == 0; i++) {
        int v = c->runs[i].variant;
        if (!clash[v] || !c->runs[i].trial)
            continue;
        char *l = trial_label(&c->runs[i], c->variants[v].group, prefix, true);
        if (!l)
            rc = dgm_error(DGM_ENOMEM, "compare: out of memory");
        else {
            free(c->variants[v].label);
            c->variants[v].label = l;
        }
        clash[v] = false;
    }
    free(clash);
    return rc;
}

/* Plain runs of one experiment name: the config keys (but seed) whose
 * values differ among them tell their variants apart. */
static int group_plain(dgm__cmp_loader *L, const char *name, bool prefix)
{
    dgm__compare *c = L->c;
    int n = 0;
    for (int i = 0; i < c->n_runs; i++)
        n += !c->runs[i].trial && c->runs[i].variant < 0 &&
             !strcmp(c->runs[i].name, name);
    int *idx = malloc(sizeof *idx * (size_t)n);
    leaves *lv = calloc((size_t)n, sizeof *lv);
    if (!idx || !lv) {
        free(idx);
        free(lv);
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    }
    n = 0;
    bool oom = false;
    for (int i = 0; i < c->n_runs; i++)
        if (!c->runs[i].trial && c->runs[i].variant < 0 &&
            !strcmp(c->runs[i].name, name)) {
            idx[n] = i;
            if (c->runs[i].config)
                flatten(c->runs[i].config, "", &lv[n]);
            oom |= lv[n].oom;
            n++;
        }
    /* varying keys, in first-seen order */
    leaves vary = {0};
    for (int a = 0; a < n && !oom; a++) {
        if (!c->runs[idx[a]].config)
            continue;
        for (int j = 0; j < lv[a].n; j++) {
            const char *p = lv[a].path[j];
            if (!strcmp(p, "seed") || leaf_get(&vary, p))
                continue;
            bool differs = false;
            for (int b = 0; b < n && !differs; b++) {
                if (!c->runs[idx[b]].config)
                    continue;
                const char *t = leaf_get(&lv[b], p);
                differs = !t || strcmp(t, lv[a].text[j]);
            }
            if (differs)
                leaf_add(&vary, p, strdup(""));
        }
    }
    oom |= vary.oom;
    int rc = oom ? dgm_error(DGM_ENOMEM, "compare: out of memory") : 0;
    for (int a = 0; a < n && rc == 0; a++) {
        dgm__cmp_run *r = &c->runs[idx[a]];
        sbuf key = {0}, label = {0};
        json_t *group = json_object();
        json_object_set_new(group, "name", json_string(name));
        dgm__cmp_sb_add(&key, "R\x1f%s", name);
        if (prefix || vary.n == 0 || !r->config)
            dgm__cmp_sb_add(&label, "%s", name);
        if (!r->config) {
            dgm__cmp_sb_add(&key, "\x1f(no config)");
            dgm__cmp_sb_add(&label, " (no config.yaml)");
        }
        for (int j = 0; j < vary.n && r->config; j++) {
            const char *t = leaf_get(&lv[a], vary.path[j]);
            if (!t)
                t = "(absent)";
            dgm__cmp_sb_add(&key, "\x1f%s=%s", vary.path[j], t);
            dgm__cmp_sb_add(&label, "%s%s=%s", label.len ? " " : "",
                            vary.path[j], t);
            json_object_set_new(group, vary.path[j], json_string(t));
        }
        char *ks = dgm__cmp_sb_take(&key);
        int v = ks ? variant_for(L, ks, dgm__cmp_sb_take(&label), group)
                   : (free(label.s), json_decref(group),
                      dgm_error(DGM_ENOMEM, "compare: out of memory"));
        free(ks);
        if (v < 0)
            rc = v;
        else
            r->variant = v;
    }
    for (int a = 0; a < n; a++)
        leaves_free(&lv[a]);
    leaves_free(&vary);
    free(lv);
    free(idx);
    return rc;
}

int dgm__cmp_group_runs(dgm__cmp_loader *L, const dgm__cmp_options *o)
{
    dgm__compare *c = L->c;
    if (o->n_group_by > 0)
        return group_by_keys(L, o);
    bool prefix = several_names(c);
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_run *r = &c->runs[i];
        if (r->variant >= 0)
            continue;
        int rc = r->trial ? group_trial(L, r, prefix)
                          : group_plain(L, r->name, prefix);
        if (rc < 0)
            return rc;
    }
    return relabel_collisions(L, prefix);
}

/* ---- metrics ------------------------------------------------------------ */

/* A run's figure: summary "final".name, else a top-level number. */
