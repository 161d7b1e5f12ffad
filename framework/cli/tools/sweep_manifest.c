/* sweep_manifest.c - the sweep directory's manifest.json (one object per
 * trial: its overrides, parameters, status and times) and a finished
 * trial's outcome. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "sweep.h"
#include "tool_files.h"

const char *dgm__sweep_now(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return buf;
}

json_t *dgm__sweep_manifest_new(const dgm__sweep *s, const char *name,
                                const char *experiment, const char *launcher)
{
    char now[40];
    json_t *m = json_object(), *trials = json_array();
    if (!m || !trials) {
        json_decref(m);
        json_decref(trials);
        return NULL;
    }
    json_object_set_new(m, "format", json_integer(1));
    json_object_set_new(m, "name", json_string(name ? name : ""));
    json_object_set_new(m, "experiment",
                        json_string(experiment ? experiment : ""));
    json_object_set_new(m, "launcher", json_string(launcher));
    json_object_set_new(m, "created", json_string(dgm__sweep_now(now, 40)));
    int64_t base_seed = 0;
    const dgm_config *bs = dgm_cfg_get(s->base, "seed");
    if (bs && dgm_cfg_to_int(bs, &base_seed) < 0)
        base_seed = 0;
    for (int i = 0; i < s->n_trials; i++) {
        const dgm__sweep_trial *t = &s->trials[i];
        json_t *o = json_object(), *ov = json_array(), *p = json_object();
        int64_t seed = base_seed;
        char rd[300];
        for (int k = 0; k < t->n_assign; k++) {
            char *txt = dgm__sweep_override_text(&t->assign[k]);
            json_array_append_new(ov, json_string(txt ? txt : ""));
            free(txt);
            json_object_set_new(p, t->assign[k].key,
                                dgm__sweep_cfg_json(t->assign[k].value));
            if (!strcmp(t->assign[k].key, "seed") &&
                dgm_cfg_to_int(t->assign[k].value, &seed) < 0)
                seed = base_seed;
        }
        snprintf(rd, sizeof rd, "trials/%s", t->name);
        json_object_set_new(o, "index", json_integer(i));
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "overrides", ov);
        json_object_set_new(o, "params", p);
        json_object_set_new(o, "seed", json_integer(seed));
        json_object_set_new(o, "run_dir", json_string(rd));
        json_object_set_new(o, "status", json_string("pending"));
        json_object_set_new(o, "exit_code", json_null());
        json_object_set_new(o, "signal", json_null());
        json_object_set_new(o, "message", json_null());
        json_object_set_new(o, "started", json_null());
        json_object_set_new(o, "ended", json_null());
        json_array_append_new(trials, o);
    }
    json_object_set_new(m, "trials", trials);
    dgm_error_clear();
    return m;
}

int dgm__sweep_manifest_write(const char *dir, const json_t *m)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = json_dumps(m, JSON_INDENT(1));
    if (!text)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    /* Atomic without fsync: readers need a whole file (rename gives
     * that), and it is rewritten on every change of a trial. */
    int rc = dgm_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int dgm__sweep_manifest_load(const char *dir, json_t **out)
{
    char path[4096];
    json_error_t err;
    *out = NULL;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_t *m = json_load_file(path, 0, &err);
    if (!m)
        return dgm_error(access(path, F_OK) == 0 ? DGM_EFORMAT : DGM_ENOTFOUND,
                         "%s: %s (line %d)", path, err.text, err.line);
    json_t *t = json_object_get(m, "trials");
    if (json_integer_value(json_object_get(m, "format")) != 1 ||
        !json_is_array(t)) {
        json_decref(m);
        return dgm_error(DGM_EFORMAT,
                         "%s: not a format-1 sweep manifest (no \"format\": "
                         "1 or no \"trials\" list)",
                         path);
    }
    for (size_t i = 0; i < json_array_size(t); i++) {
        json_t *o = json_array_get(t, i);
        if (!json_is_string(json_object_get(o, "name")) ||
            !json_is_string(json_object_get(o, "run_dir")) ||
            !json_is_string(json_object_get(o, "status"))) {
            json_decref(m);
            return dgm_error(DGM_EFORMAT,
                             "%s: trial %zu lacks name, run_dir or status",
                             path, i);
        }
    }
    *out = m;
    return 0;
}

json_t *dgm__sweep_manifest_trial(json_t *m, int i)
{
    return json_array_get(json_object_get(m, "trials"), (size_t)i);
}

const char *dgm__sweep_outcome(const char *run_dir, int exit_code)
{
    char path[4096];
    json_error_t err;
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    json_t *s = json_load_file(path, 0, &err);
    const char *st = s ? json_string_value(json_object_get(s, "status")) : NULL;
    const char *out = "failed";
    if (st && !strcmp(st, "diverged"))
        out = "diverged";
    else if (st && !strcmp(st, "completed") && exit_code == 0)
        out = "done";
    json_decref(s);
    return out;
}
