/* oplog.c - the log of checked ops behind the op_table test (see oplog.h).
 * It reads the tape's nodes (graph_internal.h) to find the ops under y. */
#include "oplog.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph_internal.h"

static const char *const op_names[] = {
#define DGM_OP(id, name, file, grad, path, suite) [DGM_OP_##id] = name,
#include "ops.def"
#undef DGM_OP
};
_Static_assert(sizeof op_names / sizeof *op_names == DGM_OP_COUNT,
               "one name per op of ops.def");

/* Empty the log when the program starts: Check forks each test from this
 * process, so the children's lines add up in one fresh file. */
__attribute__((constructor)) static void oplog_reset(void)
{
    const char *path = getenv("DGM_OP_LOG");
    if (path && *path) {
        FILE *f = fopen(path, "w");
        if (f)
            fclose(f);
    }
}

/* Depth-first over the inputs; seen[] keeps shared subgraphs to one visit
 * and marks each op once. */
static void walk(const dgm_var *v, const dgm_var **seen, size_t *n_seen,
                 size_t cap, bool *ops)
{
    if (!v || *n_seen == cap)
        return;
    for (size_t i = 0; i < *n_seen; i++)
        if (seen[i] == v)
            return;
    seen[(*n_seen)++] = v;
    if (!v->op)
        return;
    if (v->op->id >= 0 && v->op->id < DGM_OP_COUNT)
        ops[v->op->id] = true;
    for (int i = 0; i < v->n_in; i++)
        walk(v->in[i], seen, n_seen, cap, ops);
}

bool oplog_enabled(void)
{
    const char *path = getenv("DGM_OP_LOG");
    return path && *path;
}

void oplog_checked(const dgm_var *y, const char *how)
{
    if (!oplog_enabled() || !y)
        return;
    const char *path = getenv("DGM_OP_LOG");
    enum { CAP = 1 << 14 };
    const dgm_var **seen = malloc(CAP * sizeof *seen);
    bool ops[DGM_OP_COUNT] = {0};
    size_t n_seen = 0;
    if (!seen)
        return;
    walk(y, seen, &n_seen, CAP, ops);
    free(seen);
    char buf[DGM_OP_COUNT * 48];
    size_t len = 0;
    for (int i = 0; i < DGM_OP_COUNT; i++)
        if (ops[i])
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %s\n",
                                    op_names[i], how);
    /* One write on an O_APPEND file: lines from forked tests never mix. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        return;
    if (write(fd, buf, len) < 0)
        perror("oplog");
    close(fd);
}
