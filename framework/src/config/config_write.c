/* config_write.c - a config tree back to YAML (block style, file order),
 * quoting what would otherwise read back differently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "dgm/error.h"

/* Would text written plain read back as a string with exactly this text
 * (`as_string`) or at least with this text (a plain scalar read back as
 * itself)? flow: inside [ ]. Also quotes YAML 1.1's yes/no/on/off so
 * that other YAML readers (PyYAML) see strings too. */
static bool plain_ok(const char *s, bool as_string, bool flow)
{
    size_t l = strlen(s);
    if (l == 0)
        return false;
    static const char *const yaml11[] = {
        "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON",
        "off", "Off", "OFF", "y",  "Y",  "n",  "N",  NULL};
    for (int k = 0; yaml11[k]; k++)
        if (!strcmp(s, yaml11[k]))
            return false;
    if (as_string) {
        long long i;
        double f;
        bool b;
        if (dgm__cfg_parse_int(s, &i) || dgm__cfg_parse_float(s, &f) ||
            dgm__cfg_parse_bool(s, &b) || !strcmp(s, "~") ||
            !strcasecmp(s, "null"))
            return false;
    }
    /* Unicode line breaks (NEL, LS, PS) would fold. */
    if (strstr(s, "\xc2\x85") || strstr(s, "\xe2\x80\xa8") ||
        strstr(s, "\xe2\x80\xa9"))
        return false;
    /* Indicators that cannot start a plain scalar; "-", "?", ":" only
     * when followed by a blank (or nothing). */
    if (strchr("[]{},#&*!|>'\"%@`", s[0]) || s[0] == ' ')
        return false;
    if (strchr("-?:", s[0]) && (s[1] == '\0' || s[1] == ' '))
        return false;
    /* In [ ] libyaml reads a leading "?" as a key indicator. */
    if (flow && s[0] == '?')
        return false;
    if (!strncmp(s, "---", 3) || !strncmp(s, "...", 3))
        return false;
    if (s[l - 1] == ' ' || s[l - 1] == ':')
        return false;
    if (strstr(s, ": ") || strstr(s, " #"))
        return false;
    if (flow && strpbrk(s, ",[]{}:#"))
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static bool needs_quotes(const dgm_config *n, bool flow)
{
    if (!*n->text)
        return n->quoted; /* plain empty is null, written as null */
    return !plain_ok(n->text, n->quoted, flow);
}

static void quoted(FILE *f, const char *text)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
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
        case 0xc2:
            if (c[1] == 0x85) {
                fputs("\\N", f);
                c++;
            } else {
                fputc(*c, f);
            }
            break;
        case 0xe2:
            if (c[1] == 0x80 && (c[2] == 0xa8 || c[2] == 0xa9)) {
                fputs(c[2] == 0xa8 ? "\\L" : "\\P", f);
                c += 2;
            } else {
                fputc(*c, f);
            }
            break;
        default:
            if (*c < 0x20 || *c == 0x7f)
                fprintf(f, "\\x%02x", *c);
            else
                fputc(*c, f);
        }
    }
    fputc('"', f);
}

/* A map key: keys are always strings, so only the syntax matters. */
static void key(FILE *f, const char *k)
{
    if (plain_ok(k, false, false) && !strchr(k, '\n') && strcmp(k, "<<") != 0)
        fputs(k, f);
    else
        quoted(f, k);
}

static void scalar(FILE *f, const dgm_config *n, bool flow)
{
    if (n->kind == DGM_CFG_NULL) {
        fputs("null", f);
        return;
    }
    if (!needs_quotes(n, flow))
        fputs(n->text[0] ? n->text : "null", f);
    else
        quoted(f, n->text);
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
        scalar(f, n->child[i], true);
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
        scalar(f, v, false);
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
            key(f, c->key);
            fputc(':', f);
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
        scalar(f, n, false);
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
