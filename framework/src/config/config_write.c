/* config_write.c - a config tree back to YAML (block style, file order),
 * quoting what would otherwise read back differently. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "dgm/error.h"

/* The characters YAML lets a file hold raw (libyaml's reader refuses the
 * rest: C0 and C1 controls, DEL, surrogates, U+FFFE, U+FFFF). */
static bool raw_char(uint32_t cp)
{
    return cp == 0x09 || cp == 0x0a || cp == 0x0d ||
           (cp >= 0x20 && cp <= 0x7e) || cp == 0x85 ||
           (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) ||
           (cp >= 0x10000 && cp <= 0x10ffff);
}

/* Raw in a double-quoted scalar and in a plain one: no breaks (NEL, LS,
 * PS fold like a newline), no tab, and no BOM, which libyaml skips at the
 * start of a line. */
static bool plain_char(uint32_t cp)
{
    return raw_char(cp) && cp >= 0x20 && cp != 0x85 && cp != 0x2028 &&
           cp != 0x2029 && cp != 0xfeff;
}

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
    /* Only characters a plain scalar holds as themselves. */
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        uint32_t cp;
        int w = dgm__utf8_next(c, &cp);
        if (w == 0 || !plain_char(cp))
            return false;
        c += w;
    }
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
    return true;
}

/* Longer keys are written as explicit keys ("? key" and ": value"):
 * libyaml takes an implicit key of at most 1024 characters, and escapes
 * make up to four of a byte. */
#define MAX_SIMPLE_KEY 128

static bool needs_quotes(const dgm_config *n, bool flow)
{
    if (!*n->text)
        return n->quoted; /* plain empty is null, written as null */
    return !plain_ok(n->text, n->quoted, flow);
}

/* Double-quoted, escaping what cannot stand raw. The text is valid UTF-8
 * (check_tree() refused the tree otherwise). */
static void quoted(FILE *f, const char *text)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)text; *c;) {
        uint32_t cp;
        int w = dgm__utf8_next(c, &cp);
        if (w == 0) { /* not reached: check_tree() runs first */
            cp = 0xfffd;
            w = 1;
        }
        switch (cp) {
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
        case 0x85:
            fputs("\\N", f);
            break;
        case 0x2028:
            fputs("\\L", f);
            break;
        case 0x2029:
            fputs("\\P", f);
            break;
        default:
            if (plain_char(cp))
                fwrite(c, 1, (size_t)w, f);
            else if (cp < 0x100)
                fprintf(f, "\\x%02x", (unsigned)cp);
            else if (cp < 0x10000)
                fprintf(f, "\\u%04x", (unsigned)cp);
            else
                fprintf(f, "\\U%08x", (unsigned)cp);
        }
        c += w;
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

/* A node as one line of flow YAML. Keys longer than libyaml's implicit
 * keys may be are written as explicit keys ("? key : value"). */
static void flow_node(FILE *f, const dgm_config *n)
{
    if (n->kind == DGM_CFG_SEQ) {
        fputc('[', f);
        for (int i = 0; i < n->n; i++) {
            fputs(i ? ", " : "", f);
            flow_node(f, n->child[i]);
        }
        fputc(']', f);
    } else if (n->kind == DGM_CFG_MAP) {
        fputc('{', f);
        for (int i = 0; i < n->n; i++) {
            const char *k = n->child[i]->key;
            fputs(i ? ", " : "", f);
            if (strlen(k) > MAX_SIMPLE_KEY)
                fputs("? ", f);
            if (plain_ok(k, false, true) && strcmp(k, "<<") != 0)
                fputs(k, f);
            else
                quoted(f, k);
            fputs(strlen(k) > MAX_SIMPLE_KEY ? " : " : ": ", f);
            flow_node(f, n->child[i]);
        }
        fputc('}', f);
    } else {
        scalar(f, n, true);
    }
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
        if (n->kind == DGM_CFG_MAP && strlen(c->key) > MAX_SIMPLE_KEY) {
            fputs("? ", f);
            key(f, c->key);
            fprintf(f, "\n%*s:", indent, "");
            value(f, c, indent, false);
        } else if (n->kind == DGM_CFG_MAP) {
            key(f, c->key);
            fputc(':', f);
            value(f, c, indent, false);
        } else {
            fputc('-', f);
            value(f, c, indent, true);
        }
    }
}

/* What the reader would refuse is refused before a byte is written: text
 * that is not UTF-8 (YAML has no escape for a lone byte), nesting deeper
 * or more nodes than the reader takes. */
static int check_tree(const dgm_config *n, int depth, long *count)
{
    if (depth > DGM__CFG_MAX_DEPTH)
        return dgm_cfg_error(n, NULL, DGM_ERANGE,
                             "nested deeper than %d levels; a config file "
                             "cannot hold it",
                             DGM__CFG_MAX_DEPTH);
    if (++*count > DGM__CFG_MAX_NODES)
        return dgm_cfg_error(n, NULL, DGM_ERANGE,
                             "more than %ld nodes; a config file cannot "
                             "hold them",
                             DGM__CFG_MAX_NODES);
    const char *const texts[2] = {n->key, n->text};
    for (int k = 0; k < 2; k++)
        for (const unsigned char *c = (const unsigned char *)texts[k];
             c && *c;) {
            uint32_t cp;
            int w = dgm__utf8_next(c, &cp);
            if (w == 0)
                return dgm_cfg_error(
                    n, NULL, DGM_EINVAL,
                    "the %s holds a byte 0x%02x that is not "
                    "UTF-8 (at byte %d); a config file "
                    "cannot hold it",
                    k ? "text" : "key", *c,
                    (int)(c - (const unsigned char *)texts[k]));
            c += w;
        }
    for (int i = 0; i < n->n; i++) {
        int rc = check_tree(n->child[i], depth + 1, count);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int dgm_config_write(const dgm_config *n, FILE *f)
{
    long count = 0;
    if (!n)
        return dgm_error(DGM_EINVAL, "config: nothing to write");
    int rc = check_tree(n, 0, &count);
    if (rc < 0)
        return rc;
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

char *dgm_config_to_flow_string(const dgm_config *n)
{
    long count = 0;
    if (!n) {
        dgm_error(DGM_EINVAL, "config: nothing to write");
        return NULL;
    }
    if (check_tree(n, 0, &count) < 0)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        dgm_error(DGM_ENOMEM, "config: out of memory");
        return NULL;
    }
    flow_node(f, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        dgm_error(DGM_ENOMEM, "config: out of memory");
        return NULL;
    }
    return buf;
}
