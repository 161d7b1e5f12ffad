/* compare_internal.h - what compare.c (discovery and loading),
 * compare_group.c (variants and labels), compare_stats.c (metrics,
 * directions, statistics) and compare_format.c (the four formats)
 * share (never installed). */
#ifndef DGM_COMPARE_INTERNAL_H
#define DGM_COMPARE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "compare.h"

/* A growing string; oom set once an allocation failed. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;
void dgm__cmp_sb_add(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The buffer's string (malloc'ed, "" when empty), or NULL on ENOMEM. */
char *dgm__cmp_sb_take(sbuf *b);
/* "a/b", or b when it is absolute; NULL on ENOMEM. */
char *dgm__cmp_path_join(const char *a, const char *b);
/* Room for one more element of size bytes in *arr (zeroed). */
bool dgm__cmp_push(void **arr, int *n, int *cap, size_t size);

/* The statuses a run may have, in the order the counts list them. */
extern const char *const dgm__cmp_statuses[6];

/* The loader's state while dgm__compare_load runs. */
struct leaves;
typedef struct dgm__cmp_loader {
    dgm__compare *c;
    int cap_sources, cap_runs, cap_variants, cap_notes;
    struct leaves *fixed;   /* per source: its sweep.yaml flattened */
    dgm_config **fixed_cfg; /* per source: its sweep.yaml, or NULL */
} dgm__cmp_loader;

/* Group the runs into variants (by --group-by, else by sweep trial or
 * plain run). */
int dgm__cmp_group_runs(dgm__cmp_loader *L, const dgm__cmp_options *o);
void dgm__cmp_loader_free_fixed(dgm__cmp_loader *L);
/* The metrics to show (--metric, else every final figure). */
int dgm__cmp_choose_metrics(dgm__cmp_loader *L, const dgm__cmp_options *o);
/* Each variant's statistics and the best per metric. */
int dgm__cmp_compute(dgm__compare *c);

#endif
