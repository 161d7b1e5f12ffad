/* config_write.c - a config tree back to YAML (block style, file order),
 * quoting what would otherwise read back differently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "dgm/error.h"

/* Plain text reads back as the same string only if it has no YAML
 * indicators and, for a quoted (string) scalar, does not look like a
 * number, bool or null. */
static bool needs_quotes(const dgm_config *n)
{
    const char *s = n->text;
    if (!*s)
        return n->quoted;
    if (n->quoted) {
        long long i;
        double f;
        bool b;
        if (dgm__cfg_parse_int(s, &i) || dgm__cfg_parse_float(s, &f) ||
            dgm__cfg_parse_bool(s, &b) || dgm__cfg_is_null(n) ||
            !strcmp(s, "~") || !strcmp(s, "null"))
            return true;
    }
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) || s[strlen(s) - 1] == ' ' ||
        s[strlen(s) - 1] == ':')
        return !(s[0] == '-' && s[1] && s[1] != ' ' && !n->quoted &&
                 !strpbrk(s, ":#,[]{}"));
    if (strstr(s, ": ") || strstr(s, " #") || strpbrk(s, "\n\t\r,[]{}"))
        return true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20)
            return true;
    return false;
}

static void scalar(FILE *f, const dgm_config *n)
{
    if (n->kind == DGM_CFG_NULL) {
        fputs("null", f);
        return;
    }
    if (!needs_quotes(n)) {
        fputs(n->text[0] ? n->text : "null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)n->text; *c; c++) {
        switch (*c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            if (*c < 0x20)
                fprintf(f, "\\x%02x", *c);
            else
                fputc(*c, f);
        }
    }
    fputc('"', f);
}

static bool all_scalars(const dgm_config *n)
{
    for (int i = 0; i < n->n; i++)
        if (n->child[i]->kind == DGM_CFG_MAP ||
            n->child[i]->kind == DGM_CFG_SEQ)
            return false;
    return true;
}

static void flow_list(FILE *f, const dgm_config *n)
{
    fputc('[', f);
    for (int i = 0; i < n->n; i++) {
        if (i)
            fputs(", ", f);
        scalar(f, n->child[i]);
    }
    fputc(']', f);
}

static void node(FILE *f, const dgm_config *n, int indent);

/* The value after "key:" or "- ". */
static void value(FILE *f, const dgm_config *v, int indent, bool in_seq)
{
    if (v->kind == DGM_CFG_MAP) {
        if (v->n == 0) {
            fputs(" {}\n", f);
            return;
        }
        if (in_seq) {
            fputc(' ', f);
            node(f, v, -(indent + 2)); /* first line continues "- " */
        } else {
            fputc('\n', f);
            node(f, v, indent + 2);
        }
    } else if (v->kind == DGM_CFG_SEQ) {
        if (v->n == 0 || all_scalars(v)) {
            fputc(' ', f);
            flow_list(f, v);
            fputc('\n', f);
        } else {
            fputc('\n', f);
            node(f, v, indent + 2);
        }
    } else {
        fputc(' ', f);
        scalar(f, v);
        fputc('\n', f);
    }
}

/* indent < 0: the first line is already indented by -indent. */
static void node(FILE *f, const dgm_config *n, int indent)
{
    bool first_inline = indent < 0;
    if (first_inline)
        indent = -indent;
    for (int i = 0; i < n->n; i++) {
        const dgm_config *c = n->child[i];
        if (!(first_inline && i == 0))
            fprintf(f, "%*s", indent, "");
        if (n->kind == DGM_CFG_MAP) {
            fprintf(f, "%s:", c->key);
            value(f, c, indent, false);
        } else {
            fputc('-', f);
            value(f, c, indent, true);
        }
    }
}

int dgm_config_write(const dgm_config *n, FILE *f)
{
    if (!n)
        return dgm_error(DGM_EINVAL, "config: nothing to write");
    if (n->kind == DGM_CFG_MAP || n->kind == DGM_CFG_SEQ) {
        if (n->n == 0)
            fputs(n->kind == DGM_CFG_MAP ? "{}\n" : "[]\n", f);
        else
            node(f, n, 0);
    } else {
        scalar(f, n);
        fputc('\n', f);
    }
    return ferror(f) ? dgm_error(DGM_EIO, "config: write failed") : 0;
}

char *dgm_config_to_string(const dgm_config *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        dgm_error(DGM_ENOMEM, "config: out of memory");
        return NULL;
    }
    int rc = dgm_config_write(n, f);
    fclose(f);
    if (rc < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
