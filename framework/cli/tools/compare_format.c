/* compare_format.c - a comparison as an aligned table, CSV, Markdown or
 * JSON. */
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

int dgm__compare_format_parse(const char *s, dgm__cmp_format *out)
{
    static const struct {
        const char *name;
        dgm__cmp_format f;
    } names[] = {{"table", DGM__CMP_TABLE},
                 {"csv", DGM__CMP_CSV},
                 {"markdown", DGM__CMP_MARKDOWN},
                 {"md", DGM__CMP_MARKDOWN},
                 {"json", DGM__CMP_JSON}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) {
            *out = names[i].f;
            return 0;
        }
    return dgm_error(DGM_EINVAL,
                     "--format %s: expected table, csv, markdown or json", s);
}

const char *dgm__cmp_num(double v, int digits, char *buf, size_t n)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.*g", digits, v);
    return buf;
}

/* "1 running, 2 pending" or "-". */
static void others(const dgm__cmp_variant *v, char *buf, size_t n)
{
    buf[0] = '\0';
    const int k[3] = {v->stopped, v->running, v->pending};
    const char *w[3] = {"stopped", "running", "pending"};
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        if (k[i] && len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%d %s",
                                    len ? ", " : "", k[i], w[i]);
    if (!buf[0])
        snprintf(buf, n, "-");
}

/* Display width of UTF-8 text (code points). */
static int width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* The cells of the table and markdown formats, row 0 the header. */
typedef struct grid {
    int rows, cols;
    char **cell;
} grid;

static int make_grid(const dgm__compare *c, bool markdown, grid *g)
{
    g->rows = c->n_variants + 1;
    g->cols = 6 + 2 * c->n_metrics;
    g->cell = calloc((size_t)g->rows * (size_t)g->cols, sizeof *g->cell);
    if (!g->cell)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    static const char *const head[6] = {"variant", "runs",     "done",
                                        "failed",  "diverged", "other"};
    bool oom = false;
    for (int j = 0; j < 6; j++)
        oom |= !(g->cell[j] = strdup(head[j]));
    for (int m = 0; m < c->n_metrics; m++) {
        oom |= !(g->cell[6 + 2 * m] = strdup(c->metrics[m]));
        oom |= !(g->cell[7 + 2 * m] = strdup("sd"));
    }
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        char **row = g->cell + (size_t)(v + 1) * (size_t)g->cols;
        sbuf lb = {0};
        if (markdown) /* '|' would end the cell */
            for (const char *p = va->label; *p; p++)
                dgm__cmp_sb_add(&lb, *p == '|' ? "\\|" : "%c", *p);
        else
            dgm__cmp_sb_add(&lb, "%s", va->label);
        row[0] = dgm__cmp_sb_take(&lb);
        char b[256];
        const int k[4] = {va->n_runs, va->done, va->failed, va->diverged};
        for (int j = 0; j < 4; j++) {
            snprintf(b, sizeof b, "%d", k[j]);
            row[1 + j] = strdup(b);
        }
        others(va, b, sizeof b);
        row[5] = strdup(b);
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            char mean[64], nn[32] = "";
            dgm__cmp_num(st->mean, 6, mean, sizeof mean);
            if (st->n && st->n != va->done)
                snprintf(nn, sizeof nn, " (n=%d)", st->n);
            if (st->best && markdown)
                snprintf(b, sizeof b, "**%s**%s", mean, nn);
            else
                snprintf(b, sizeof b, "%s%s%s", mean, nn, st->best ? " *" : "");
            row[6 + 2 * m] = strdup(b);
            row[7 + 2 * m] = strdup(dgm__cmp_num(st->sd, 3, b, sizeof b));
        }
        for (int j = 0; j < g->cols; j++)
            oom |= !row[j];
    }
    return oom ? dgm_error(DGM_ENOMEM, "compare: out of memory") : 0;
}

static void grid_free(grid *g)
{
    for (int i = 0; g->cell && i < g->rows * g->cols; i++)
        free(g->cell[i]);
    free(g->cell);
}

static void write_rule(const dgm__compare *c, FILE *f, const char *best)
{
    /* one clause per direction: "lower is better for a, b" */
    const char *word[3] = {"lower is better for", "higher is better for",
                           "no direction for"};
    const dgm_better order[3] = {DGM_BETTER_LOWER, DGM_BETTER_HIGHER,
                                 DGM_BETTER_NONE};
    fprintf(f, "%s best per metric; ", best);
    int clauses = 0;
    for (int o = 0; o < 3; o++) {
        int k = 0;
        for (int m = 0; m < c->n_metrics; m++) {
            /* unknown (0) has no direction either */
            dgm_better b = c->better[m] == DGM_BETTER_LOWER ||
                                   c->better[m] == DGM_BETTER_HIGHER
                               ? c->better[m]
                               : DGM_BETTER_NONE;
            if (b != order[o])
                continue;
            if (k++ == 0)
                fprintf(f, "%s%s ", clauses++ ? "; " : "", word[o]);
            else
                fprintf(f, ", ");
            fprintf(f, "%s", c->metrics[m]);
        }
    }
    fprintf(f, "%s\n", clauses ? "" : "no metrics");
}

static void write_table(const dgm__compare *c, const grid *g, FILE *f)
{
    int *w = calloc((size_t)g->cols, sizeof *w);
    if (!w)
        return;
    for (int i = 0; i < g->rows; i++)
        for (int j = 0; j < g->cols; j++) {
            int x = width(g->cell[i * g->cols + j]);
            if (x > w[j])
                w[j] = x;
        }
    for (int i = 0; i < g->rows; i++) {
        for (int j = 0; j < g->cols; j++) {
            const char *s = g->cell[i * g->cols + j];
            int pad = w[j] - width(s);
            if (j == 0)
                fprintf(f, "%s%*s", s, pad, "");
            else
                fprintf(f, "  %*s%s", pad, "", s);
        }
        fputc('\n', f);
    }
    free(w);
    write_rule(c, f, "*");
}

static void write_markdown(const dgm__compare *c, const grid *g, FILE *f)
{
    for (int i = 0; i < g->rows; i++) {
        fputc('|', f);
        for (int j = 0; j < g->cols; j++)
            fprintf(f, " %s |", g->cell[i * g->cols + j]);
        fputc('\n', f);
        if (i == 0) {
            fputc('|', f);
            for (int j = 0; j < g->cols; j++)
                fputs(j ? " ---: |" : " --- |", f);
            fputc('\n', f);
        }
    }
    fputc('\n', f);
    write_rule(c, f, "**bold**:");
}

/* One CSV field, quoted when it holds a comma, quote, newline or edge
 * blank (RFC 4180). */
static void csv_field(const char *s, FILE *f)
{
    size_t n = strlen(s);
    bool q = strpbrk(s, ",\"\r\n") || (n && (s[0] == ' ' || s[n - 1] == ' '));
    if (!q) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(const dgm__compare *c, FILE *f)
{
    fputs("variant,runs,done,failed,diverged,stopped,running,pending", f);
    for (int m = 0; m < c->n_metrics; m++) {
        const char *suffix[4] = {"_mean", "_sd", "_n", "_best"};
        for (int k = 0; k < 4; k++) {
            char h[512];
            snprintf(h, sizeof h, "%s%s", c->metrics[m], suffix[k]);
            fputc(',', f);
            csv_field(h, f);
        }
    }
    fputc('\n', f);
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        csv_field(va->label, f);
        fprintf(f, ",%d,%d,%d,%d,%d,%d,%d", va->n_runs, va->done, va->failed,
                va->diverged, va->stopped, va->running, va->pending);
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            fputc(',', f);
            if (st->n)
                fprintf(f, "%.12g", st->mean);
            fputc(',', f);
            if (st->n > 1)
                fprintf(f, "%.12g", st->sd);
            fprintf(f, ",%d,%d", st->n, st->best ? 1 : 0);
        }
        fputc('\n', f);
    }
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *dgm__compare_json(const dgm__compare *c)
{
    json_t *root = json_object(), *metrics = json_array(),
           *variants = json_array(), *notes = json_array();
    for (int m = 0; m < c->n_metrics; m++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(c->metrics[m]));
        json_object_set_new(o, "better",
                            c->better[m] != DGM_BETTER_LOWER &&
                                    c->better[m] != DGM_BETTER_HIGHER
                                ? json_null()
                                : json_string(dgm_better_name(c->better[m])));
        json_array_append_new(metrics, o);
    }
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        json_t *o = json_object(), *figs = json_object(), *mem = json_array();
        json_object_set_new(o, "label", json_string(va->label));
        json_object_set(o, "group", va->group);
        json_object_set_new(o, "runs", json_integer(va->n_runs));
        json_object_set_new(o, "done", json_integer(va->done));
        json_object_set_new(o, "failed", json_integer(va->failed));
        json_object_set_new(o, "diverged", json_integer(va->diverged));
        json_object_set_new(o, "stopped", json_integer(va->stopped));
        json_object_set_new(o, "running", json_integer(va->running));
        json_object_set_new(o, "pending", json_integer(va->pending));
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            json_t *s = json_object();
            json_object_set_new(s, "n", json_integer(st->n));
            json_object_set_new(s, "mean", num_or_null(st->mean));
            json_object_set_new(s, "sd", num_or_null(st->sd));
            json_object_set_new(s, "best", json_boolean(st->best));
            json_object_set_new(figs, c->metrics[m], s);
        }
        json_object_set_new(o, "metrics", figs);
        for (int k = 0; k < va->n_runs; k++) {
            const dgm__cmp_run *r = &c->runs[va->runs[k]];
            json_t *ro = json_object();
            json_object_set_new(ro, "dir", json_string(r->dir));
            json_object_set_new(ro, "status", json_string(r->status));
            json_object_set_new(ro, "seed",
                                r->seed ? json_incref(r->seed) : json_null());
            json_array_append_new(mem, ro);
        }
        json_object_set_new(o, "members", mem);
        json_array_append_new(variants, o);
    }
    for (int k = 0; k < c->n_notes; k++)
        json_array_append_new(notes, json_string(c->notes[k]));
    json_object_set_new(root, "metrics", metrics);
    json_object_set_new(root, "variants", variants);
    json_object_set_new(root, "notes", notes);
    json_t *asha = dgm__compare_asha_json(c);
    if (json_array_size(asha))
        json_object_set(root, "asha", asha);
    json_decref(asha);
    return root;
}

int dgm__compare_write(const dgm__compare *c, dgm__cmp_format fmt, FILE *f)
{
    int rc = 0;
    if (fmt == DGM__CMP_JSON) {
        json_t *j = dgm__compare_json(c);
        if (!j ||
            json_dumpf(j, f, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) < 0)
            rc = dgm_error(DGM_EIO, "compare: cannot write JSON");
        json_decref(j);
        fputc('\n', f);
    } else if (fmt == DGM__CMP_CSV) {
        write_csv(c, f);
    } else {
        grid g = {0};
        rc = make_grid(c, fmt == DGM__CMP_MARKDOWN, &g);
        if (rc == 0 && fmt == DGM__CMP_MARKDOWN)
            write_markdown(c, &g, f);
        else if (rc == 0)
            write_table(c, &g, f);
        grid_free(&g);
        if (rc == 0)
            dgm__compare_asha_write(c, fmt == DGM__CMP_MARKDOWN, f);
    }
    if (rc == 0 && (fflush(f) != 0 || ferror(f)))
        rc = dgm_error(DGM_EIO, "compare: write failed: %s", strerror(errno));
    return rc;
}
