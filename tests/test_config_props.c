/* test_config_props.c - properties of the config tree that hold for any
 * input: whatever the writer writes the reader reads back as the same
 * tree, what the reader would refuse the writer refuses first, and a
 * refused override changes nothing. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "config_internal.h"
#include "dgm/config.h"
#include "dgm/error.h"

#include "cfg_check.h"

#define FIX(name) DGM_SOURCE_DIR "/tests/fixtures/config/" name

/* Append code point cp to s as UTF-8. */
static size_t put_utf8(char *s, size_t at, uint32_t cp)
{
    unsigned char *o = (unsigned char *)s + at;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return at + 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return at + 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return at + 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return at + 4;
}

/* s (UTF-8) as a YAML double-quoted scalar that escapes every character
 * but printable ASCII, so that the test's own documents always read. */
static char *yq(const char *s)
{
    char *out = malloc(strlen(s) * 10 + 3), *w = out;
    *w++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        uint32_t cp;
        int n = dgm__utf8_next(c, &cp);
        ck_assert_int_gt(n, 0);
        if (cp == '"' || cp == '\\')
            w += sprintf(w, "\\%c", (char)cp);
        else if (cp >= 0x20 && cp < 0x7f)
            *w++ = (char)cp;
        else
            w += sprintf(w, cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
        c += n;
    }
    *w++ = '"';
    *w = '\0';
    return out;
}

/* Write a, read it back: the same tree, and writing that gives the same
 * text again. */
static void assert_round_trip(const dgm_config *a)
{
    char *out = dgm_config_to_string(a);
    ck_assert_msg(out != NULL, "%s", dgm_last_error());
    dgm_config *b = NULL;
    int rc = dgm_config_parse(&b, out, "written.yaml");
    ck_assert_msg(rc == 0, "written text does not read back: %s\n---\n%.3000s",
                  dgm_last_error(), out);
    ck_assert_msg(dgm_config_equal(a, b), "read back differently:\n%.3000s",
                  out);
    char *again = dgm_config_to_string(b);
    ck_assert_str_eq(out, again);
    free(again);
    free(out);
    dgm_config_free(b);
}

/* ---- the table of nasty strings ----------------------------------------- */

#define MAX_NASTY 200
static char *nasty[MAX_NASTY];
static int n_nasty;

static void add(const char *s)
{
    ck_assert_int_lt(n_nasty, MAX_NASTY);
    nasty[n_nasty++] = strdup(s);
}

static void add_cp(const char *pre, uint32_t cp, const char *post)
{
    char s[64];
    size_t l = strlen(pre);
    memcpy(s, pre, l);
    l = put_utf8(s, l, cp);
    strcpy(s + l, post);
    add(s);
}

static void add_repeat(const char *unit, int times)
{
    size_t l = strlen(unit);
    char *s = malloc(l * (size_t)times + 1);
    for (int i = 0; i < times; i++)
        memcpy(s + l * (size_t)i, unit, l);
    s[l * (size_t)times] = '\0';
    add(s);
    free(s);
}

static void make_table(void)
{
    static const char *const plain[] = {"",
                                        " ",
                                        "  ",
                                        "a",
                                        "~",
                                        "null",
                                        "Null",
                                        "NULL",
                                        "true",
                                        "False",
                                        "yes",
                                        "off",
                                        "1",
                                        "-1",
                                        "0x1f",
                                        "0o17",
                                        "1e3",
                                        "1.5",
                                        ".inf",
                                        "-.inf",
                                        ".nan",
                                        "+1",
                                        "007",
                                        "1_000",
                                        ": ",
                                        "a: b",
                                        "a:b",
                                        "a:",
                                        ":a",
                                        "#",
                                        "a #b",
                                        "a#b",
                                        "-",
                                        "- a",
                                        "-a",
                                        "?",
                                        "? a",
                                        "?a",
                                        "<<",
                                        "---",
                                        "...",
                                        "--- a",
                                        "[a]",
                                        "{a: 1}",
                                        "a, b",
                                        "&a",
                                        "*a",
                                        "!a",
                                        "!!str",
                                        "|",
                                        ">",
                                        "'",
                                        "\"",
                                        "''",
                                        "%YAML",
                                        "@",
                                        "`",
                                        " lead",
                                        "trail ",
                                        " both ",
                                        "a\nb",
                                        "a\n",
                                        "\n",
                                        "a\r\nb",
                                        "\t",
                                        "a\tb",
                                        "a\\b",
                                        "\\",
                                        "line1\n  line2\n",
                                        "# not a comment",
                                        "a \"q\" b",
                                        "=",
                                        "a=b",
                                        "x.y[0]",
                                        "\x01",
                                        "\x1f",
                                        "a\x7f"
                                        "b",
                                        "\x1b[0m"};
    n_nasty = 0;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        add(plain[i]);
    /* Every C1 control, U+0085 (NEL) among them. */
    for (uint32_t cp = 0x80; cp <= 0x9f; cp++)
        add_cp("a", cp, "b");
    add_cp("", 0x85, "");
    static const uint32_t cps[] = {
        0xa0,   0xad,   0x2028,  0x2029,   0xd7ff,  0xe000, 0xfeff,  0xfffd,
        0xfffe, 0xffff, 0x1f600, 0x10ffff, 0x10000, 0xfdd0, 0x1fffe, 0x200b};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        add_cp("", cps[i], "");
        add_cp("x", cps[i], "y");
    }
    add_cp("", 0xfeff, "key"); /* a BOM starting a line */
    /* Long: around libyaml's 1024-character limit on implicit keys, in
     * bytes and in characters that escapes make longer. */
    add_repeat("k", 128);
    add_repeat("k", 129);
    add_repeat("k", 1023);
    add_repeat("k", 1024);
    add_repeat("k", 1025);
    add_repeat("k", 5000);
    add_repeat("\xc2\x80", 300); /* U+0080: 4 characters written each */
    add_repeat("\x01", 300);
    add_repeat("\xef\xbf\xbe", 300); /* U+FFFE: 6 each */
    add_repeat("a: ", 400);
}

static void free_table(void)
{
    for (int i = 0; i < n_nasty; i++)
        free(nasty[i]);
    n_nasty = 0;
}

START_TEST(round_trip_nasty_strings)
{
    make_table();
    for (int i = 0; i < n_nasty; i++) {
        char *q = yq(nasty[i]);
        char *doc = malloc(strlen(q) * 12 + 400);
        /* As a key (block map, in a list item, at depth), as a value
         * (block, flow list, list item), and as key and value at once. */
        /* (explicit "? key" keys: libyaml takes implicit ones up to
         * 1024 characters only) */
        sprintf(doc,
                "? %s\n"
                ": %s\n"
                "top:\n"
                "  ? %s\n"
                "  : {? %s : [%s, 1, %s]}\n"
                "list:\n"
                "  - ? %s\n"
                "    : 1\n"
                "    after: 2\n"
                "  - %s\n"
                "  - [%s]\n"
                "  - ? %s\n"
                "    :\n"
                "      - %s\n"
                "      - {x: %s}\n"
                "plain: [1, 1.5, true, null, ~, x]\n",
                q, q, q, q, q, q, q, q, q, q, q, q);
        dgm_config *a = tc_parse(doc);
        /* the table's string is what the tree holds */
        ck_assert_str_eq(dgm_cfg_key_at(a, 0), nasty[i]);
        ck_assert_str_eq(dgm_cfg_text(dgm_cfg_at(a, 0)), nasty[i]);
        assert_round_trip(a);
        dgm_config_free(a);
        free(doc);
        free(q);
    }
    free_table();
}
END_TEST

/* Random strings of nasty pieces and code points, as keys and values. */
START_TEST(round_trip_random_strings)
{
    make_table();
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (int it = 0; it < 2000; it++) {
        char s[4096];
        size_t l = 0;
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        int parts = (int)(state >> 60);
        for (int j = 0; j < parts; j++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t r = (uint32_t)(state >> 32);
            if (r % 3) { /* a piece of the table, if it fits */
                const char *p = nasty[r / 3 % (uint32_t)n_nasty];
                size_t pl = strlen(p);
                if (l + pl < sizeof s - 8) {
                    memcpy(s + l, p, pl);
                    l += pl;
                }
            } else { /* any code point YAML can escape */
                uint32_t cp = 1 + r / 3 % 0x10fffe;
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffe;
                l = put_utf8(s, l, cp);
            }
        }
        s[l] = '\0';
        char *q = yq(s);
        char *doc = malloc(strlen(q) * 3 + 64);
        sprintf(doc, "? %s\n: %s\nl: [%s]\n", q, q, q);
        dgm_config *a = tc_parse(doc);
        assert_round_trip(a);
        dgm_config_free(a);
        free(doc);
        free(q);
    }
    free_table();
}
END_TEST

/* The reader refuses what a C string cannot hold, at its place. */
START_TEST(reader_refuses_nul_and_bad_bytes)
{
    dgm_config *c = NULL;
    ASSERT_ERR(dgm_config_parse(&c, "a: 1\nb: {c: \"x\\0y\"}\n", "t.yaml"),
               DGM_ECONFIG, "t.yaml:2:8: b.c: a string holding a NUL");
    ASSERT_ERR(dgm_config_parse(&c, "a: 1\n\"k\\0\": 2\n", "t.yaml"),
               DGM_ECONFIG, "t.yaml:2:1: a key holding a NUL");
    /* not UTF-8: placed by line and column, and the byte named */
    ASSERT_ERR(dgm_config_parse(&c, "a: 1\nbb: x\xff\n", "t.yaml"), DGM_ECONFIG,
               "t.yaml:2:6: invalid YAML", "0xff");
    /* a raw C1 control is refused by YAML itself: why the writer
     * escapes it */
    ASSERT_ERR(dgm_config_parse(&c, "a: \"x\xc2\x80y\"\n", "t.yaml"),
               DGM_ECONFIG, "t.yaml:1:6: invalid YAML", "control characters");
    ck_assert_ptr_null(c);
}
END_TEST

/* What the reader would refuse, the writer refuses before writing. */
START_TEST(writer_refuses_what_cannot_be_read)
{
    dgm_config *c = tc_parse("model: {name: ok, list: [a, b]}\n");
    /* Text that is not UTF-8 cannot be written as YAML (no escape for a
     * lone byte); such text only comes from code, not from YAML. */
    dgm_config *n = dgm_cfg_get_mut(c, "model.list[1]");
    free(n->text);
    n->text = strdup("x\xc3(");
    char *s = dgm_config_to_string(c);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(dgm_last_code(), DGM_EINVAL);
    ck_assert_msg(strstr(dgm_last_error(), "t.yaml:1:29: model.list[1]: the "
                                           "text holds a byte 0xc3"),
                  "%s", dgm_last_error());
    free(n->text);
    n->text = strdup("b");
    dgm_config *k = dgm_cfg_get_mut(c, "model.name");
    free(k->key);
    k->key = strdup("na\xedme"); /* a surrogate's lead byte */
    FILE *f = tmpfile();
    ASSERT_ERR(dgm_config_write(c, f), DGM_EINVAL, "the key holds a byte 0xed");
    ck_assert_int_eq(ftell(f), 0); /* nothing half-written */
    fclose(f);
    dgm_config_free(c);
}
END_TEST

/* ---- overrides ---------------------------------------------------------- */

static const char *const base_doc = "model:\n"
                                    "  latent: 20\n"
                                    "  hidden: [1, 2]\n"
                                    "  enc: {plugin: mlp, layers: [{w: 1}]}\n"
                                    "note: null\n"
                                    "list: [{a: 1}, 2]\n";

START_TEST(refused_override_changes_nothing)
{
    static const char *const refused[] = {
        "a.b[0].c=1", /* the issue's example: no 'a' may be left behind */
        "a.b[0]=1",
        "a.b.c[2].d=1",
        "note.x[0]=1",
        "note.x.y[0].z=1",
        "model.new.deeper[0]=1",
        "model.x.y[1].z=[1, 2]",
        "model.latent.x=1",
        "model.latent.x.y=1",
        "model.hidden[0].x=1",
        "model.hidden[5]=1",
        "model.hidden[5].x=1",
        "model.enc.layers[3].w=1",
        "model.enc.layers[0].w.x.y=1",
        "list[0].a.b=1",
        "list[2].a=1",
        "+model.latent=1",
        "+model.hidden[0]=1",
        "+list[0].a=1",
        "[0]=1",
        "a..b=1",
        "a.=1",
        "a.b]=1",
        "a.b[x]=1",
        "new.key=[1, 2",
        "new.key={a: ",
        "new.key=#c",
        "a b=1",
        "=1",
        "novalue",
        "a\xff=1",          /* not UTF-8: the writer could not write it */
        "model.\xc3\x28=1", /* a broken two-byte sequence */
    };
    dgm_config *c = tc_parse(base_doc);
    char *before = dgm_config_to_string(c);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = dgm_config_override(c, refused[i]);
        ck_assert_msg(rc < 0, "'%s' was accepted", refused[i]);
        ck_assert_msg(strstr(dgm_last_error(), "override '"), "%s",
                      dgm_last_error());
        char *after = dgm_config_to_string(c);
        ck_assert_msg(!strcmp(before, after),
                      "'%s' changed the config:\n%s\n---\n%s", refused[i],
                      before, after);
        free(after);
    }
    /* too deep for the reader to read back: refused, nothing made */
    char deep[400] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, i ? ".k" : "d");
    strcat(deep, "=1");
    ASSERT_ERR(dgm_config_override(c, deep), DGM_ERANGE,
               "nested deeper than 64 levels");
    char *after = dgm_config_to_string(c);
    ck_assert_str_eq(before, after);
    free(after);
    free(before);
    dgm_config_free(c);
}
END_TEST

START_TEST(accepted_override_round_trips)
{
    static const char *const accepted[] = {
        "a.b.c=1",           "note.x.y=2",         "model.enc.layers[1]={w: 2}",
        "model.hidden[2]=3", "list[0].q.b.c=\"\"", "+z.y=[1, {q: ~}]",
        "model.latent=",     "k=\"\\x85\\uFFFE\"", "model.enc=null",
    };
    dgm_config *c = tc_parse(base_doc);
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        int rc = dgm_config_override(c, accepted[i]);
        ck_assert_msg(rc == 0, "'%s': %s", accepted[i], dgm_last_error());
        assert_round_trip(c);
    }
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "a.b.c")), "1");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "note.x.y")), "2");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "list[0].q.b.c")), "");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "k")), "\xc2\x85\xef\xbf\xbe");
    /* the deepest override the reader can read back is taken */
    char deep[400] = "";
    for (int i = 0; i < 64; i++)
        strcat(deep, i ? ".k" : "d");
    strcat(deep, "=1");
    ck_assert_msg(dgm_config_override(c, deep) == 0, "%s", dgm_last_error());
    assert_round_trip(c);
    dgm_config_free(c);
}
END_TEST

/* ---- writer ------------------------------------------------------------- */

static void assert_same_tree(const dgm_config *a, const dgm_config *b)
{
    ck_assert_int_eq(dgm_cfg_kind_of(a), dgm_cfg_kind_of(b));
    if (dgm_cfg_kind_of(a) == DGM_CFG_SCALAR) {
        ck_assert_str_eq(dgm_cfg_text(a), dgm_cfg_text(b));
        /* a string stays a string, a number a number */
        int64_t i;
        double d;
        bool v;
        const char *t;
        ck_assert_int_eq(dgm_cfg_to_int(a, &i) == 0,
                         dgm_cfg_to_int(b, &i) == 0);
        ck_assert_int_eq(dgm_cfg_to_float(a, &d) == 0,
                         dgm_cfg_to_float(b, &d) == 0);
        ck_assert_int_eq(dgm_cfg_to_bool(a, &v) == 0,
                         dgm_cfg_to_bool(b, &v) == 0);
        ck_assert_int_eq(dgm_cfg_to_str(a, &t) == 0,
                         dgm_cfg_to_str(b, &t) == 0);
        return;
    }
    ck_assert_int_eq(dgm_cfg_len(a), dgm_cfg_len(b));
    for (int i = 0; i < dgm_cfg_len(a); i++) {
        if (dgm_cfg_kind_of(a) == DGM_CFG_MAP)
            ck_assert_str_eq(dgm_cfg_key_at(a, i), dgm_cfg_key_at(b, i));
        assert_same_tree(dgm_cfg_at(a, i), dgm_cfg_at(b, i));
    }
}

START_TEST(write_round_trip)
{
    const char *text = "name: \"a: b # c\"\n"
                       "seed: 0\n"
                       "quoted: \"42\"\n"
                       "truth: \"true\"\n"
                       "empty: \"\"\n"
                       "nothing: null\n"
                       "neg: -3.5e-2\n"
                       "dash: -x\n"
                       "path: /usr/share/datasets/fashion-mnist\n"
                       "multi: \"line1\\nline2\\t\\\"q\\\"\"\n"
                       "list: [1, two, \"3\"]\n"
                       "emptylist: []\n"
                       "emptymap: {}\n"
                       "nested:\n"
                       "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
                       "  - loss: gaussian_kl\n"
                       "    weight: 4.0\n"
                       "    extra: {deep: [[1, 2], {k: v}]}\n";
    dgm_config *a = tc_parse(text);
    char *out = dgm_config_to_string(a);
    ck_assert_ptr_nonnull(out);
    dgm_config *b = NULL;
    ck_assert_msg(dgm_config_parse(&b, out, "out.yaml") == 0, "%s\n---\n%s",
                  dgm_last_error(), out);
    assert_same_tree(a, b);
    free(out);
    dgm_config_free(a);
    dgm_config_free(b);
}
END_TEST

START_TEST(write_tricky_text)
{
    const char *text =
        "\"key: with colon\": 1\n"
        "\"#hash\": 2\n"
        "\"-\": 3\n"
        "\"<<\": 4\n"
        "\"\": empty key\n"
        "s1: \"Null\"\n"
        "s2: \"yes\"\n"
        "s3: \"---\"\n"
        "s4: \"0x10\"\n"
        "s5: \".inf\"\n"
        "s6: \"a\\u0085b\"\n"
        "s7: \" lead\"\n"
        "s8: \"trail \"\n"
        "s9: \"@at\"\n"
        "s10: \"x\\u007fy\"\n"
        "flow: [\"a:b\", \"c#d\", \"e, f\", -1, \"-\", ~, \"\", \"?x\", "
        "\"?\", \"-x\"]\n"
        "plainyes: yes\n"
        "url: http://example.com/a#b\n"
        "seqs: [[1], [[2, 3]], []]\n"
        "? complex key\n"
        ": v\n";
    dgm_config *a = tc_parse(text);
    char *out = dgm_config_to_string(a);
    ck_assert_ptr_nonnull(out);
    dgm_config *b = NULL;
    ck_assert_msg(dgm_config_parse(&b, out, "out.yaml") == 0, "%s\n---\n%s",
                  dgm_last_error(), out);
    assert_same_tree(a, b);
    /* strings stay strings, nulls null */
    bool v;
    ck_assert_int_eq(dgm_cfg_to_bool(dgm_cfg_get(b, "s2"), &v), DGM_ETYPE);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(b, "s1")), DGM_CFG_SCALAR);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(b, "flow[5]")), DGM_CFG_NULL);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(b, "flow[6]")),
                     DGM_CFG_SCALAR);
    /* writing the re-read tree gives the same text */
    char *again = dgm_config_to_string(b);
    ck_assert_str_eq(out, again);
    free(again);
    free(out);
    dgm_config_free(a);
    dgm_config_free(b);
    /* a whole fixture, includes resolved */
    ck_assert_int_eq(dgm_config_load(&a, FIX("exp/child.yaml")), 0);
    out = dgm_config_to_string(a);
    ck_assert_int_eq(dgm_config_parse(&b, out, "out.yaml"), 0);
    assert_same_tree(a, b);
    free(out);
    dgm_config_free(a);
    dgm_config_free(b);
}
END_TEST

/* ---- added: the writer on many generated strings ------------------------ */

START_TEST(write_generated_strings)
{
    /* Pieces YAML treats specially; each string is read from a quoted
     * scalar, written, read back and must be the same string (as a map
     * key, a block value and a flow list element). */
    static const char *const piece[] = {
        "a",    "0",    "1",  " ",  "-",  ":",  "#",       "?",        ",",
        "[",    "]",    "{",  "}",  "&",  "*",  "!",       "|",        ">",
        "'",    "\"",   "%",  "@",  "`",  ".",  "~",       "\n",       "\t",
        "\\",   "e",    "x",  "+",  "=",  "\r", "\x01",    "\xc3\xa9", "null",
        "true", ".inf", "0x", "- ", "? ", ": ", "\xc2\x85"};
    const int np = (int)(sizeof piece / sizeof piece[0]);
    unsigned long long state = 12345;
    for (int it = 0; it < 3000; it++) {
        char s[128] = "", esc[512] = "";
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        int n = (int)((state >> 33) % 7);
        for (int j = 0; j < n; j++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            strcat(s, piece[(state >> 33) % (unsigned)np]);
        }
        size_t k = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            if (p[0] == 0xc2 && p[1] == 0x85) {
                k += (size_t)sprintf(esc + k, "\\N");
                p++;
            } else if (*p == '"' || *p == '\\')
                k += (size_t)sprintf(esc + k, "\\%c", *p);
            else if (*p < 0x20)
                k += (size_t)sprintf(esc + k, "\\x%02x", *p);
            else
                esc[k++] = (char)*p;
        }
        esc[k] = '\0';
        char doc[2200];
        snprintf(doc, sizeof doc,
                 "\"%s\": \"%s\"\nl: [\"%s\", x]\nm: {n: [\"%s\"]}\n", esc, esc,
                 esc, esc);
        dgm_config *a = NULL, *b = NULL;
        ck_assert_msg(dgm_config_parse(&a, doc, "a") == 0, "%s: %s", doc,
                      dgm_last_error());
        char *out = dgm_config_to_string(a);
        ck_assert_msg(dgm_config_parse(&b, out, "b") == 0, "%s\n%s", out,
                      dgm_last_error());
        ck_assert_str_eq(dgm_cfg_key_at(b, 0), s);
        ck_assert_str_eq(dgm_cfg_text(dgm_cfg_at(b, 0)), s);
        ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(b, "l[0]")), s);
        ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(b, "m.n[0]")), s);
        assert_same_tree(a, b);
        free(out);
        dgm_config_free(a);
        dgm_config_free(b);
    }
}
END_TEST

static Suite *props_suite(void)
{
    Suite *s = suite_create("config_props");
    TCase *rt = tq_case(
        s, "round_trip", round_trip_nasty_strings, round_trip_random_strings,
        reader_refuses_nul_and_bad_bytes, writer_refuses_what_cannot_be_read);
    tcase_set_timeout(rt, 120);
    TCase *wr = tq_case(s, "write", write_round_trip, write_tricky_text,
                        write_generated_strings);
    tcase_set_timeout(wr, 60);
    tq_case(s, "overrides", refused_override_changes_nothing,
            accepted_override_round_trips);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(props_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
