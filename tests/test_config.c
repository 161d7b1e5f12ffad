/* test_config.c - the YAML config tree: positions and key paths, every
 * error with its code and place, overrides, include merging, anchors,
 * hostile documents, typed reading, schema validation and the writer. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "config_internal.h"
#include "dgm/config.h"
#include "dgm/error.h"

#include "cfg_check.h"

static char dir[1024];

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/config-%ld", t ? t : "/tmp", (long)getpid());
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static const char *put(const char *name, const char *text)
{
    static char path[4][1200];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 1200, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* ---- parsing and positions --------------------------------------------- */

START_TEST(positions_and_paths)
{
    dgm_config *c = tc_parse("name: x\n"
                             "model:\n"
                             "  latent: 20\n"
                             "  encoder: {plugin: mlp, hidden: [400, 200]}\n");
    const dgm_config *h = dgm_cfg_get(c, "model.encoder.hidden[1]");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(dgm_cfg_text(h), "200");
    ck_assert_int_eq(dgm_cfg_line(h), 4);
    ck_assert_int_eq(dgm_cfg_column(h), 40);
    ck_assert_str_eq(dgm_cfg_path(h), "model.encoder.hidden[1]");
    ck_assert_str_eq(dgm_cfg_file(h), "t.yaml");
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "model")), DGM_CFG_MAP);
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "model")), 2);
    ck_assert_str_eq(dgm_cfg_key_at(dgm_cfg_get(c, "model"), 1), "encoder");
    ck_assert_ptr_null(dgm_cfg_get(c, "model.decoder"));
    ck_assert_ptr_null(dgm_cfg_get(c, "model.encoder.hidden[2]"));
    ASSERT_ERR(
        dgm_cfg_error(dgm_cfg_get(c, "model"), "latent", DGM_ERANGE, "too big"),
        DGM_ERANGE, "t.yaml:3:11: model.latent: too big");
    ASSERT_ERR(dgm_cfg_error(dgm_cfg_get(c, "model"), "absent", DGM_EMISSING,
                             "needed"),
               DGM_EMISSING, "t.yaml:3:3: model.absent: needed");
    /* the key may be a path below the node */
    ASSERT_ERR(dgm_cfg_error(c, "model.encoder.hidden[1]", DGM_ERANGE, "odd"),
               DGM_ERANGE, "t.yaml:4:40: model.encoder.hidden[1]: odd");
    ASSERT_ERR(dgm_cfg_error(dgm_cfg_get(c, "model"), "encoder.act",
                             DGM_EMISSING, "needed"),
               DGM_EMISSING, "t.yaml:3:3: model.encoder.act: needed");
    dgm_config_free(c);
}
END_TEST

START_TEST(anchors_and_aliases)
{
    dgm_config *c = tc_parse("base: &b {plugin: mlp, hidden: [64]}\n"
                             "enc: *b\n"
                             "dec: *b\n");
    const dgm_config *e = dgm_cfg_get(c, "enc.hidden[0]");
    ck_assert_str_eq(dgm_cfg_text(e), "64");
    /* an alias is positioned at its use */
    ck_assert_int_eq(dgm_cfg_line(dgm_cfg_get(c, "dec")), 3);
    ck_assert_str_eq(dgm_cfg_path(dgm_cfg_get(c, "dec.plugin")), "dec.plugin");
    dgm_config_free(c);
    dgm_config *bad = NULL;
    ASSERT_ERR(dgm_config_parse(&bad, "a: *nope\n", "t.yaml"), DGM_ECONFIG,
               "t.yaml:1:4", "nope");
    ck_assert_ptr_null(bad);
}
END_TEST

START_TEST(bad_documents_refused)
{
    dgm_config *c = NULL;
    ASSERT_ERR(dgm_config_load(&c, put("empty.yaml", "")), DGM_ECONFIG,
               "empty.yaml", "empty document");
    ASSERT_ERR(dgm_config_load(&c, put("comment.yaml", "# nothing\n")),
               DGM_ECONFIG, "empty document");
    ASSERT_ERR(dgm_config_load(&c, put("dup.yaml", "a: 1\nb: 2\na: 3\n")),
               DGM_ECONFIG, "dup.yaml:3:1", "duplicate key", "line 1");
    ASSERT_ERR(dgm_config_load(&c, put("syntax.yaml", "a: [1, 2\nb: 3\n")),
               DGM_ECONFIG, "syntax.yaml:", "invalid YAML");
    ASSERT_ERR(dgm_config_load(&c, put("tabs.yaml", "a:\n\t- 1\n")),
               DGM_ECONFIG, "tabs.yaml:2:");
    ASSERT_ERR(dgm_config_load(&c, put("two.yaml", "a: 1\n---\nb: 2\n")),
               DGM_ECONFIG, "more than one YAML document");
    /* binary: a NUL byte, and invalid UTF-8 */
    const char *bin = put("bin.yaml", "x");
    FILE *f = fopen(bin, "wb");
    const unsigned char junk[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0xff, 0xfe};
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    ASSERT_ERR(dgm_config_load(&c, bin), DGM_ECONFIG, "bin.yaml", "binary");
    ASSERT_ERR(dgm_config_load(&c, put("utf.yaml", "a: \xff\xfe\n")),
               DGM_ECONFIG, "utf.yaml");
    /* 100 levels of nesting */
    char deep[1024] = "";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]");
    ASSERT_ERR(dgm_config_load(&c, put("deep.yaml", deep)), DGM_ECONFIG,
               "deep.yaml:1:", "deeper than 64");
    ASSERT_ERR(dgm_config_load(&c, "/nonexistent/x.yaml"), DGM_EIO,
               "/nonexistent/x.yaml");
    ck_assert_ptr_null(c);
}
END_TEST

/* ---- include ----------------------------------------------------------- */

START_TEST(include_merges_key_by_key)
{
    put("base.yaml", "name: base\n"
                     "model: {plugin: vae, latent: 20,\n"
                     "        encoder: {plugin: mlp, hidden: [400]}}\n"
                     "train: {epochs: 10}\n"
                     "metrics: [{plugin: elbo}, {plugin: iwae_nll}]\n");
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
    ck_assert_int_eq(system(cmd), 0);
    const char *top = put("sub/exp.yaml", "include: ../base.yaml\n"
                                          "name: child\n"
                                          "model: {encoder: {hidden: [64]}}\n"
                                          "metrics: [{plugin: elbo}]\n");
    dgm_config *c;
    ck_assert_msg(dgm_config_load(&c, top) == 0, "%s", dgm_last_error());
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "name")), "child");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.latent")), "20");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.encoder.plugin")),
                     "mlp");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.encoder.hidden[0]")),
                     "64");
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "metrics")), 1); /* replaced */
    ck_assert_ptr_null(dgm_cfg_get(c, "include"));
    /* nodes remember their own file */
    ck_assert_ptr_nonnull(
        strstr(dgm_cfg_file(dgm_cfg_get(c, "model.latent")), "base.yaml"));
    ck_assert_ptr_nonnull(strstr(
        dgm_cfg_file(dgm_cfg_get(c, "model.encoder.hidden")), "exp.yaml"));
    dgm_config_free(c);

    /* a list of includes, applied in order */
    put("a.yaml", "x: 1\ny: 1\n");
    put("b.yaml", "y: 2\nz: 2\n");
    ck_assert_int_eq(
        dgm_config_load(&c, put("ab.yaml", "include: [a.yaml, b.yaml]\n"
                                           "z: 3\n")),
        0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "x")), "1");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "y")), "2");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "z")), "3");
    dgm_config_free(c);

    put("c1.yaml", "include: c2.yaml\na: 1\n");
    put("c2.yaml", "include: c1.yaml\nb: 2\n");
    ASSERT_ERR(dgm_config_load(&c, put("c0.yaml", "include: c1.yaml\n")),
               DGM_ECONFIG, "include cycle", "c1.yaml", "c2.yaml");
    ASSERT_ERR(dgm_config_load(&c, put("miss.yaml", "include: gone.yaml\n")),
               DGM_EIO, "miss.yaml:1:10", "gone.yaml");
}
END_TEST

/* ---- overrides ---------------------------------------------------------- */

START_TEST(overrides)
{
    dgm_config *c = tc_parse("model: {latent: 20, hidden: [1, 2, 3]}\n"
                             "train: {epochs: 10}\n");
    ck_assert_int_eq(dgm_config_override(c, "model.latent=32"), 0);
    const dgm_config *l = dgm_cfg_get(c, "model.latent");
    ck_assert_str_eq(dgm_cfg_text(l), "32");
    ck_assert_str_eq(dgm_cfg_file(l), "<command line>");
    ck_assert_int_eq(dgm_cfg_column(l), 14);
    ck_assert_int_eq(dgm_config_override(c, "model.hidden[1]=7"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.hidden[1]")), "7");
    /* flow values, creating maps on the way */
    ck_assert_int_eq(
        dgm_config_override(c, "model.encoder={plugin: mlp, hidden: [8, 9]}"),
        0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.encoder.hidden[1]")),
                     "9");
    ck_assert_int_eq(dgm_config_override(c, "eval.batch=5"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "eval.batch")), "5");
    ck_assert_int_eq(dgm_config_override(c, "+train.steps=100"), 0);
    ASSERT_ERR(dgm_config_override(c, "+train.epochs=3"), DGM_EKEY,
               "train.epochs", "exists");
    ASSERT_ERR(dgm_config_override(c, "model.latent"), DGM_EINVAL, "KEY=VALUE");
    ASSERT_ERR(dgm_config_override(c, "=3"), DGM_EINVAL, "KEY=VALUE");
    ASSERT_ERR(dgm_config_override(c, "model.hidden[9]=1"), DGM_EKEY, "[9]");
    ASSERT_ERR(dgm_config_override(c, "model.latent.x=1"), DGM_EKEY,
               "not a map");
    ASSERT_ERR(dgm_config_override(c, "a=[1, 2"), DGM_ECONFIG, "a=[1, 2");
    /* key= is null */
    ck_assert_int_eq(dgm_config_override(c, "train.epochs="), 0);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "train.epochs")),
                     DGM_CFG_NULL);
    dgm_config_free(c);
}
END_TEST

/* ---- typed reading ------------------------------------------------------ */

START_TEST(typed_scalars)
{
    dgm_config *c = tc_parse("i: -3\nh: 0x10\nf: 1e-3\ninf: .inf\nb: true\n"
                             "q: \"3\"\ns: hello\nn: null\nl: [1]\n");
    int64_t i;
    double d;
    bool b;
    const char *s;
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "i"), &i), 0);
    ck_assert_int_eq(i, -3);
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "h"), &i), 0);
    ck_assert_int_eq(i, 16);
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "f"), &d), 0);
    ck_assert_double_eq(d, 1e-3);
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "i"), &d), 0);
    ck_assert_double_eq(d, -3.0);
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "inf"), &d), 0);
    ck_assert(d > 1e300);
    ck_assert_int_eq(dgm_cfg_to_bool(dgm_cfg_get(c, "b"), &b), 0);
    ck_assert(b);
    ck_assert_int_eq(dgm_cfg_to_str(dgm_cfg_get(c, "s"), &s), 0);
    ck_assert_str_eq(s, "hello");
    /* a quoted number is a string */
    ASSERT_ERR(dgm_cfg_to_int(dgm_cfg_get(c, "q"), &i), DGM_ETYPE, "t.yaml:6:4",
               "q", "integer");
    ck_assert_int_eq(dgm_cfg_to_str(dgm_cfg_get(c, "q"), &s), 0);
    ASSERT_ERR(dgm_cfg_to_int(dgm_cfg_get(c, "f"), &i), DGM_ETYPE, "1e-3");
    ASSERT_ERR(dgm_cfg_to_bool(dgm_cfg_get(c, "s"), &b), DGM_ETYPE, "hello");
    ASSERT_ERR(dgm_cfg_to_str(dgm_cfg_get(c, "n"), &s), DGM_ETYPE, "null");
    ASSERT_ERR(dgm_cfg_to_float(dgm_cfg_get(c, "l"), &d), DGM_ETYPE, "list");
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "n")), DGM_CFG_NULL);
    ck_assert_ptr_null(dgm_cfg_child(c, "n"));
    dgm_config_free(c);
}
END_TEST

/* ---- fixtures in tests/fixtures/config ---------------------------------- */

#define FIX(name) DGM_SOURCE_DIR "/tests/fixtures/config/" name

START_TEST(fixture_include)
{
    dgm_config *c = NULL;
    ck_assert_msg(dgm_config_load(&c, FIX("exp/child.yaml")) == 0, "%s",
                  dgm_last_error());
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "name")), "child");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.plugin")), "vae");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.latent")), "8");
    /* nested maps merged, lists replaced */
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.encoder.plugin")),
                     "mlp");
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "model.encoder.hidden")), 2);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.encoder.hidden[1]")),
                     "32");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.decoder.hidden[0]")),
                     "400");
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "metrics")), 1);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "train.epochs")), "10");
    ck_assert_ptr_null(dgm_cfg_get(c, "include"));
    /* every node keeps its own file, line and column */
    const dgm_config *e = dgm_cfg_get(c, "train.epochs");
    ck_assert_ptr_nonnull(strstr(dgm_cfg_file(e), "config/exp/../base.yaml"));
    ck_assert_int_eq(dgm_cfg_line(e), 9);
    ck_assert_int_eq(dgm_cfg_column(e), 17);
    const dgm_config *h = dgm_cfg_get(c, "model.encoder.hidden[1]");
    ck_assert_ptr_nonnull(strstr(dgm_cfg_file(h), "exp/child.yaml"));
    ck_assert_int_eq(dgm_cfg_line(h), 7);
    ck_assert_int_eq(dgm_cfg_column(h), 18);
    /* the key order is the base's, then the including file's new keys */
    ck_assert_str_eq(dgm_cfg_key_at(c, 0), "name");
    ck_assert_str_eq(dgm_cfg_key_at(c, 2), "model");
    dgm_config_free(c);

    ASSERT_ERR(dgm_config_load(&c, FIX("cycle_a.yaml")), DGM_ECONFIG,
               "include cycle", "cycle_a.yaml -> ", "cycle_b.yaml -> ",
               "cycle_b.yaml:1:11: include");
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(fixture_validation_and_anchors)
{
    static const dgm_param_spec vae[] = {
        DGM_PARAM_INT("latent", .def = "20", DGM_GE(1), DGM_LE(512),
                      .help = "latent size"),
        DGM_PARAM_INT_LIST("hidden", .def = "[400]", DGM_GE(1), DGM_LE(4096),
                           .help = "widths"),
        DGM_PARAM_END,
    };
    dgm_config *c = NULL;
    ck_assert_int_eq(dgm_config_load(&c, FIX("typo.yaml")), 0);
    dgm_config *m = dgm_cfg_get_mut(c, "model");
    ASSERT_ERR(dgm_config_validate(m, vae, "vae", NULL), DGM_EKEY,
               "typo.yaml:4:3: model.latnt: unknown key for plugin 'vae' "
               "(did you mean 'latent'?)");
    ck_assert_int_eq(dgm_cfg_len(m), 3); /* nothing added */
    ck_assert_int_eq(dgm_config_override(c, "+model.latent=4"), 0);
    dgm_config *fixed = NULL;
    ck_assert_int_eq(dgm_config_parse(&fixed, "{}", "x"), 0);
    dgm_config_free(fixed);
    /* drop the typo by rebuilding the map without it */
    ck_assert_int_eq(dgm_config_override(c, "model={plugin: vae, hidden: "
                                            "[400, -1]}"),
                     0);
    m = dgm_cfg_get_mut(c, "model");
    ASSERT_ERR(dgm_config_validate(m, vae, "vae", NULL), DGM_ERANGE,
               "<command line>:1:35: model.hidden[1]", "plugin 'vae'",
               "[1, 4096]");
    dgm_config_free(c);

    ASSERT_ERR(dgm_config_load(&c, FIX("dup_nested.yaml")), DGM_ECONFIG,
               "dup_nested.yaml:5:3: model.latent: duplicate key (first at "
               "line 3)");
    ck_assert_ptr_null(c);

    ck_assert_msg(dgm_config_load(&c, FIX("anchors.yaml")) == 0, "%s",
                  dgm_last_error());
    /* `<<` merges the anchored map under the explicit keys, in place */
    const dgm_config *enc = dgm_cfg_get(c, "encoder");
    ck_assert_int_eq(dgm_cfg_len(enc), 3);
    ck_assert_str_eq(dgm_cfg_key_at(enc, 0), "plugin");
    ck_assert_str_eq(dgm_cfg_key_at(enc, 1), "act");
    ck_assert_str_eq(dgm_cfg_key_at(enc, 2), "hidden");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "encoder.hidden[0]")), "200");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "encoder.act")), "relu");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "decoder.hidden[0]")), "400");
    ck_assert_int_eq(dgm_cfg_line(dgm_cfg_get(c, "decoder")), 8);
    ck_assert_int_eq(dgm_cfg_column(dgm_cfg_get(c, "decoder")), 10);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "heads[1].out")), "10");
    ck_assert_str_eq(dgm_cfg_path(dgm_cfg_get(c, "heads[1].out")),
                     "heads[1].out");
    dgm_config_free(c);
}
END_TEST

/* ---- hostile documents -------------------------------------------------- */

START_TEST(hostile_documents)
{
    dgm_config *c = NULL;
    /* nine levels of nine aliases: 9^9 nodes if expanded */
    char bomb[2048] = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 10; i++) {
        char line[128];
        snprintf(line, sizeof line,
                 "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                 "*a%d, *a%d]\n",
                 i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                 i - 1);
        strcat(bomb, line);
    }
    ASSERT_ERR(dgm_config_parse(&c, bomb, "bomb.yaml"), DGM_ECONFIG,
               "bomb.yaml:", "more than 1048576 nodes");
    ck_assert_ptr_null(c);
    /* an alias that would nest the document deeper than the limit */
    char deep[4096] = "a: &d ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "\nb: ");
    for (int i = 0; i < 30; i++)
        strcat(deep, "[");
    strcat(deep, "*d");
    for (int i = 0; i < 30; i++)
        strcat(deep, "]");
    strcat(deep, "\n");
    ASSERT_ERR(dgm_config_parse(&c, deep, "deep.yaml"), DGM_ECONFIG,
               "deep.yaml:2:34: b", "deeper than 64", "'*d'");
    /* deep nesting names the place */
    char blk[8192] = "";
    for (int i = 0; i < 70; i++) {
        char line[160];
        snprintf(line, sizeof line, "%*sk%d:\n", i, "", i);
        strcat(blk, line);
    }
    ASSERT_ERR(dgm_config_parse(&c, blk, "blk.yaml"), DGM_ECONFIG,
               "blk.yaml:66:66: k0.k1.k2", "...: nested", "deeper than 64");
    /* keys must be strings; `<<` must merge maps; alias before anchor */
    ASSERT_ERR(dgm_config_parse(&c, "m:\n  [1, 2]: x\n", "k.yaml"), DGM_ECONFIG,
               "k.yaml:2:3: m: map keys must be plain strings");
    ASSERT_ERR(dgm_config_parse(&c, "m:\n  <<: 3\n", "k.yaml"), DGM_ECONFIG,
               "k.yaml:2:7", "`<<` merges a map");
    ASSERT_ERR(dgm_config_parse(&c, "m:\n  a: *x\n", "k.yaml"), DGM_ECONFIG,
               "k.yaml:2:6: m.a: unknown alias '*x'");
    /* syntax errors give libyaml's problem at its place */
    ASSERT_ERR(dgm_config_parse(&c, "a: 1\n b: 2\n", "s.yaml"), DGM_ECONFIG,
               "s.yaml:2:", "invalid YAML: mapping values are not allowed");
    ASSERT_ERR(dgm_config_parse(&c, "a: \"open\n", "s.yaml"), DGM_ECONFIG,
               "s.yaml:", "invalid YAML", "quoted scalar");
    ASSERT_ERR(dgm_config_parse(&c, "", "e.yaml"), DGM_ECONFIG,
               "e.yaml: empty document");
    ASSERT_ERR(dgm_config_load(&c, "/nonexistent/x.yaml"), DGM_EIO,
               "/nonexistent/x.yaml: No such file or directory");
    ck_assert_ptr_null(c);
}
END_TEST

/* ---- overrides, continued ----------------------------------------------- */

START_TEST(override_details)
{
    dgm_config *c =
        tc_parse("model: {latent: 20, hidden: [1, 2]}\nnote: null\n");
    char *before = dgm_config_to_string(c);
    /* refused overrides leave the tree as it was */
    ASSERT_ERR(dgm_config_override(c, "model.latent"), DGM_EINVAL,
               "override 'model.latent': expected KEY=VALUE");
    ASSERT_ERR(dgm_config_override(c, "model..latent=1"), DGM_EINVAL,
               "override 'model..latent=1'", "bad key");
    ASSERT_ERR(dgm_config_override(c, "model.hidden[x]=1"), DGM_EINVAL,
               "bad index");
    ASSERT_ERR(dgm_config_override(c, "model.hidden[1]x=1"), DGM_EINVAL,
               "bad key");
    ASSERT_ERR(dgm_config_override(c, "model lat=1"), DGM_EINVAL, "blank");
    ASSERT_ERR(dgm_config_override(c, "model.new.deeper[0]=1"), DGM_EKEY,
               "'model.new.deeper' is not a list");
    ASSERT_ERR(dgm_config_override(c, "+model.hidden[0]=5"), DGM_EKEY,
               "element [0] exists");
    ASSERT_ERR(dgm_config_override(c, "+model.latent=5"), DGM_EKEY,
               "'model.latent' exists (at t.yaml:1:17)");
    ASSERT_ERR(dgm_config_override(c, "model.hidden[5]=1"), DGM_EKEY,
               "no element [5] (the list has 2");
    ASSERT_ERR(dgm_config_override(c, "model.x=[1, 2"), DGM_ECONFIG,
               "override 'model.x=[1, 2': <command line>:", "invalid YAML");
    char *after = dgm_config_to_string(c);
    ck_assert_str_eq(before, after);
    free(after);
    free(before);
    /* [len] appends; a null on the way becomes a map */
    ck_assert_int_eq(dgm_config_override(c, "model.hidden[2]=3"), 0);
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "model.hidden")), 3);
    ck_assert_int_eq(dgm_config_override(c, "note.text=hi"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "note.text")), "hi");
    /* made maps point at their key on the command line, values at theirs */
    ck_assert_int_eq(dgm_config_override(c, "+eval.every.steps=[5, 6]"), 0);
    const dgm_config *ev = dgm_cfg_get(c, "eval.every");
    ck_assert_str_eq(dgm_cfg_file(ev), "<command line>");
    ck_assert_int_eq(dgm_cfg_column(ev), 7);
    ck_assert_int_eq(dgm_cfg_column(dgm_cfg_get(c, "eval.every.steps")), 19);
    ck_assert_int_eq(dgm_cfg_column(dgm_cfg_get(c, "eval.every.steps[1]")), 23);
    ck_assert_int_eq(dgm_cfg_line(dgm_cfg_get(c, "eval.every.steps[1]")), 1);
    /* an added key that no schema knows is reported at the key */
    static const dgm_param_spec none[] = {DGM_PARAM_END};
    ASSERT_ERR(
        dgm_config_validate(dgm_cfg_get_mut(c, "eval.every"), none, "ev", NULL),
        DGM_EKEY, "<command line>:1:13: eval.every.steps: unknown key");
    /* a quoted value stays a string */
    ck_assert_int_eq(dgm_config_override(c, "model.latent=\"32\""), 0);
    int64_t i;
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "model.latent"), &i),
                     DGM_ETYPE);
    /* dgm_config_set copies and creates maps where the parent is */
    dgm_config *v = tc_parse("{plugin: adam, lr: 0.1}");
    ck_assert_int_eq(dgm_config_set(c, "phases.gen.optimizer", v), 0);
    dgm_config_free(v);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "phases.gen.optimizer.lr")),
                     "0.1");
    ck_assert_str_eq(dgm_cfg_file(dgm_cfg_get(c, "phases.gen")), "t.yaml");
    ASSERT_ERR(dgm_config_set(c, "model.latent.x", dgm_cfg_get(c, "note")),
               DGM_EKEY, "config set 'model.latent.x'", "not a map");
    dgm_config_free(c);
}
END_TEST

/* ---- typed reading, continued ------------------------------------------- */

START_TEST(scalar_edges)
{
    dgm_config *c = tc_parse("a: 0o17\nb: +5\nc: 0x-5\nd: \"0x 5\"\ne: 1e-400\n"
                             "f: 1e400\ng: .NaN\nh: -.inf\ni: 'true'\nj: True\n"
                             "k: yes\nl: 08\nm: {x: 1}\nn: 1_000\no: 1.\n");
    int64_t i;
    double d;
    bool b;
    const char *s;
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "a"), &i), 0);
    ck_assert_int_eq(i, 15);
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "b"), &i), 0);
    ck_assert_int_eq(i, 5);
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "l"), &i), 0);
    ck_assert_int_eq(i, 8);
    ASSERT_ERR(dgm_cfg_to_int(dgm_cfg_get(c, "c"), &i), DGM_ETYPE,
               "t.yaml:3:4: c: expected an integer, found '0x-5'");
    ASSERT_ERR(dgm_cfg_to_int(dgm_cfg_get(c, "d"), &i), DGM_ETYPE, "0x 5");
    ASSERT_ERR(dgm_cfg_to_int(dgm_cfg_get(c, "n"), &i), DGM_ETYPE, "1_000");
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "e"), &d), 0);
    ck_assert(d >= 0 && d < 1e-300);
    ASSERT_ERR(dgm_cfg_to_float(dgm_cfg_get(c, "f"), &d), DGM_ETYPE,
               "t.yaml:6:4: f", "1e400");
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "g"), &d), 0);
    ck_assert(d != d);
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "h"), &d), 0);
    ck_assert(d < -1e300);
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "o"), &d), 0);
    ck_assert_double_eq(d, 1.0);
    ASSERT_ERR(dgm_cfg_to_bool(dgm_cfg_get(c, "i"), &b), DGM_ETYPE,
               "t.yaml:9:4: i: expected true or false, found the string "
               "\"true\"");
    ck_assert_int_eq(dgm_cfg_to_bool(dgm_cfg_get(c, "j"), &b), 0);
    ck_assert(b);
    ASSERT_ERR(dgm_cfg_to_bool(dgm_cfg_get(c, "k"), &b), DGM_ETYPE, "yes");
    ck_assert_int_eq(dgm_cfg_to_str(dgm_cfg_get(c, "k"), &s), 0);
    ck_assert_str_eq(s, "yes");
    ASSERT_ERR(dgm_cfg_to_int(dgm_cfg_get(c, "m"), &i), DGM_ETYPE,
               "t.yaml:13:4: m: expected an integer, found a map");
    ASSERT_ERR(dgm_cfg_to_str(dgm_cfg_get(c, "m"), &s), DGM_ETYPE, "a map");
    ASSERT_ERR(dgm_cfg_to_int(NULL, &i), DGM_ETYPE, "expected an integer");
    ck_assert(dgm_last_error()[0] != ':');
    /* clone keeps positions and flags; free(NULL) is fine */
    dgm_config *k = dgm_config_clone(dgm_cfg_get(c, "i"));
    ck_assert_int_eq(dgm_cfg_line(k), 9);
    ck_assert_int_eq(dgm_cfg_to_bool(k, &b), DGM_ETYPE);
    dgm_config_free(k);
    dgm_config_free(NULL);
    dgm_config_free(c);
}
END_TEST

/* The readers treat a missing or ill-typed key as a bug in the plugin. */
START_TEST(reader_missing_key_aborts)
{
    dgm_config *c = tc_parse("latent: 3\n");
    dgm_cfg_int(c, "latnt");
}
END_TEST

START_TEST(reader_wrong_type_aborts)
{
    dgm_config *c = tc_parse("latent: three\n");
    dgm_cfg_int(c, "latent");
}
END_TEST

START_TEST(reader_list_aborts)
{
    dgm_config *c = tc_parse("hidden: 3\n");
    int64_t h[2];
    dgm_cfg_int_list(c, "hidden", h, 2);
}
END_TEST

/* ---- added: the depth limit, exactly ------------------------------------ */

START_TEST(depth_boundary)
{
    /* the top level and 64 levels below it are fine; one more is not */
    char text[512];
    dgm_config *c = NULL;
    for (int n = 64; n <= 66; n++) {
        memset(text, '[', (size_t)n);
        memset(text + n, ']', (size_t)n);
        text[2 * n] = '\0';
        int rc = dgm_config_parse(&c, text, "d.yaml");
        if (n <= 65) {
            ck_assert_msg(rc == 0, "%d: %s", n, dgm_last_error());
            const dgm_config *x = c;
            int levels = 0;
            while (dgm_cfg_len(x) > 0) {
                x = dgm_cfg_at(x, 0);
                levels++;
            }
            ck_assert_int_eq(levels, n - 1);
            ck_assert_int_eq(dgm_cfg_column(x), n);
            dgm_config_free(c);
        } else {
            ASSERT_ERR(rc, DGM_ECONFIG, "d.yaml:1:66: [0][0]",
                       "nested deeper than 64 levels");
            ck_assert_ptr_null(c);
        }
    }
}
END_TEST

/* ---- added: a map of many keys ----------------------------------------- */

START_TEST(many_keys)
{
    /* 20000 keys read (in linear time: duplicates are hashed), and a
     * repeated one is still found with both lines */
    const int n = 20000;
    char *text = malloc((size_t)n * 24 + 64);
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "key_%d: %d\n", i, i);
    dgm_config *c = NULL;
    ck_assert_msg(dgm_config_parse(&c, text, "many.yaml") == 0, "%s",
                  dgm_last_error());
    ck_assert_int_eq(dgm_cfg_len(c), n);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "key_19999")), "19999");
    ck_assert_int_eq(dgm_cfg_line(dgm_cfg_get(c, "key_12345")), 12346);
    dgm_config_free(c);
    sprintf(text + len, "key_777: again\n");
    ASSERT_ERR(dgm_config_parse(&c, text, "many.yaml"), DGM_ECONFIG,
               "many.yaml:20001:1: key_777: duplicate key (first at line "
               "778)");
    ck_assert_ptr_null(c);
    /* a duplicate among the first keys, before hashing starts */
    ASSERT_ERR(dgm_config_parse(&c, "a: 1\nb: 2\na: 3\n", "few.yaml"),
               DGM_ECONFIG, "few.yaml:3:1: a: duplicate key (first at line 1)");
    free(text);
}
END_TEST

/* ---- added: override values, messages and positions -------------------- */

START_TEST(override_values)
{
    dgm_config *c =
        tc_parse("model: {latent: 20, tag: a, hidden: [1, 2]}\n"
                 "x: 1\n"
                 "m: [[1, 2]]\n"
                 "metrics: [{plugin: elbo}, {plugin: iwae, k: 64}]\n");
    char *before = dgm_config_to_string(c);
    /* a value that is only a comment is refused, with the quoted form */
    ASSERT_ERR(dgm_config_override(c, "model.tag=#1"), DGM_EINVAL,
               "override 'model.tag=#1': the value is a YAML comment; "
               "quote it: 'model.tag=\"#1\"'");
    ASSERT_ERR(dgm_config_override(c, "x.y=2"), DGM_EKEY,
               "override 'x.y=2': 'x' is not a map");
    ASSERT_ERR(dgm_config_override(c, "model.latent.deep=2"), DGM_EKEY,
               "override 'model.latent.deep=2': 'model.latent' is not a map");
    ASSERT_ERR(dgm_config_override(c, "[0]=1"), DGM_EKEY,
               "override '[0]=1': the top level is not a list");
    /* syntax errors in a value point into the argument, on line 1 */
    ASSERT_ERR(dgm_config_override(c, "model.latent=[1"), DGM_ECONFIG,
               "override 'model.latent=[1': <command line>:1:16: invalid "
               "YAML: did not find expected ',' or ']'");
    ASSERT_ERR(dgm_config_override(c, "a={b: 1"), DGM_ECONFIG,
               "<command line>:1:8: invalid YAML");
    ASSERT_ERR(dgm_config_override(c, "a=b: c: d"), DGM_ECONFIG,
               "<command line>:1:7: invalid YAML: mapping values are not "
               "allowed");
    ASSERT_ERR(dgm_config_override(NULL, "a=1"), DGM_EINVAL, "no config");
    char *after = dgm_config_to_string(c);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);

    /* blanks only, like nothing, are null, placed on the command line */
    ck_assert_int_eq(dgm_config_override(c, "model.tag=  "), 0);
    const dgm_config *t = dgm_cfg_get(c, "model.tag");
    ck_assert_int_eq(dgm_cfg_kind_of(t), DGM_CFG_NULL);
    ck_assert_str_eq(dgm_cfg_file(t), "<command line>");
    ck_assert_int_eq(dgm_cfg_line(t), 1);
    /* a quoted comment character is text */
    ck_assert_int_eq(dgm_config_override(c, "model.tag=\"#1\""), 0);
    const char *str;
    ck_assert_int_eq(dgm_cfg_to_str(dgm_cfg_get(c, "model.tag"), &str), 0);
    ck_assert_str_eq(str, "#1");
    /* a replaced key keeps its place in the map */
    ck_assert_int_eq(dgm_config_override(c, "model.latent=0x10"), 0);
    ck_assert_str_eq(dgm_cfg_key_at(dgm_cfg_get(c, "model"), 0), "latent");
    int64_t i;
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "model.latent"), &i), 0);
    ck_assert_int_eq(i, 16);
    /* through lists: nested index, then a key in a list's map */
    ck_assert_int_eq(dgm_config_override(c, "m[0][1]=5"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "m[0][1]")), "5");
    ck_assert_str_eq(dgm_cfg_path(dgm_cfg_get(c, "m[0][1]")), "m[0][1]");
    ck_assert_int_eq(dgm_config_override(c, "metrics[1].k=16"), 0);
    const dgm_config *k = dgm_cfg_get(c, "metrics[1].k");
    ck_assert_str_eq(dgm_cfg_text(k), "16");
    ck_assert_int_eq(dgm_cfg_column(k), 14);
    ck_assert_int_eq(dgm_config_override(c, "+metrics[1].max=5"), 0);
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "metrics[1]")), 3);
    /* a flow map value: every node at its column in the argument */
    ck_assert_int_eq(
        dgm_config_override(c, "+model.encoder={plugin: mlp, hidden: [8, 9]}"),
        0);
    const dgm_config *e = dgm_cfg_get(c, "model.encoder");
    ck_assert_int_eq(dgm_cfg_column(e), 16);
    ck_assert_int_eq(dgm_cfg_column(dgm_cfg_get(e, "plugin")), 25);
    ck_assert_int_eq(dgm_cfg_column(dgm_cfg_get(e, "hidden[1]")), 42);
    ck_assert_str_eq(dgm_cfg_path(dgm_cfg_get(e, "hidden[1]")),
                     "model.encoder.hidden[1]");
    /* leading blanks, a tab too, are not part of the value */
    ck_assert_int_eq(dgm_config_override(c, "model.tag=\t 7"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.tag")), "7");
    ck_assert_int_eq(dgm_cfg_column(dgm_cfg_get(c, "model.tag")), 13);
    /* '=' inside the value belongs to the value */
    ck_assert_int_eq(dgm_config_override(c, "x=a=b"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "x")), "a=b");
    dgm_config_free(c);
}
END_TEST

/* ---- added: include edge cases ------------------------------------------ */

START_TEST(include_edges)
{
    dgm_config *c = NULL;
    put("seq.yaml", "- 1\n- 2\n");
    ASSERT_ERR(dgm_config_load(&c, put("inc_seq.yaml", "include: seq.yaml\n")),
               DGM_ECONFIG, "inc_seq.yaml:1:10: include: ",
               "seq.yaml: an "
               "included file must be a map");
    ASSERT_ERR(dgm_config_load(&c, put("inc_null.yaml", "include:\nq: 1\n")),
               DGM_ETYPE,
               "inc_null.yaml:1:9: include: expected a string, "
               "found null");
    char sub[1100], cmd[2200];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/adir' '%s/x/y/sub'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ASSERT_ERR(dgm_config_load(&c, sub), DGM_EIO, "adir: Is a directory");
    ASSERT_ERR(dgm_config_load(&c, put("inc_dir.yaml", "include: adir\n")),
               DGM_EIO, "inc_dir.yaml:1:10: include: ", "adir: Is a directory");
    ASSERT_ERR(dgm_config_load(&c, put("self.yaml", "include: self.yaml\n")),
               DGM_ECONFIG,
               "self.yaml:1:10: include: include cycle: ", "self.yaml -> ");
    ck_assert_ptr_null(c);

    /* relative to the including file at every level, not to the cwd */
    put("x/mid.yaml", "include: y/sub/low.yaml\n"
                      "model: {enc: {act: tanh}}\n");
    put("x/y/sub/low.yaml", "model: {plugin: vae, enc: {plugin: mlp, act: "
                            "relu, hidden: [1, 2]}, dec: {plugin: mlp}}\n"
                            "seed: 3\n"
                            "lr: {min: 1}\n");
    const char *top = put("x/y/top.yaml", "include: [../mid.yaml]\n"
                                          "model: {enc: {hidden: [5]}, dec: "
                                          "null}\n"
                                          "seed: {nested: true}\n"
                                          "lr: 0.1\n");
    ck_assert_msg(dgm_config_load(&c, top) == 0, "%s", dgm_last_error());
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.plugin")), "vae");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.enc.plugin")), "mlp");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.enc.act")), "tanh");
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "model.enc.hidden")), 1);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.enc.hidden[0]")), "5");
    /* a null, a map or a scalar replaces what the base had there */
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "model.dec")),
                     DGM_CFG_NULL);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "seed.nested")), "true");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "lr")), "0.1");
    /* each value remembers its file, line and column */
    const dgm_config *act = dgm_cfg_get(c, "model.enc.act");
    /* paths join the including file's folder as written: x/y/../mid.yaml */
    ck_assert_ptr_nonnull(strstr(dgm_cfg_file(act), "x/y/../mid.yaml"));
    ck_assert_int_eq(dgm_cfg_line(act), 2);
    ck_assert_int_eq(dgm_cfg_column(act), 20);
    const dgm_config *pl = dgm_cfg_get(c, "model.enc.plugin");
    ck_assert_ptr_nonnull(strstr(dgm_cfg_file(pl), "x/y/../y/sub/low.yaml"));
    ck_assert_int_eq(dgm_cfg_column(pl), 36);
    ck_assert_str_eq(dgm_cfg_path(pl), "model.enc.plugin");
    dgm_config_free(c);

    /* `include:` below the top level is an ordinary key */
    ck_assert_int_eq(
        dgm_config_load(&c, put("inner.yaml", "model: {include: seq.yaml}\n")),
        0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.include")), "seq.yaml");
    dgm_config_free(c);

    /* a chain of 20 includes is refused past 16 */
    for (int i = 0; i < 20; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "chain%d.yaml", i);
        snprintf(text, sizeof text, "include: chain%d.yaml\nk%d: 1\n", i + 1,
                 i);
        put(name, text);
    }
    put("chain20.yaml", "end: 1\n");
    ASSERT_ERR(
        dgm_config_load(&c, put("chain_top.yaml", "include: chain0.yaml\n")),
        DGM_ECONFIG, "includes nested deeper than 16");
    ck_assert_ptr_null(c);
    /* ... and a shorter one merges every level */
    ck_assert_int_eq(dgm_config_load(&c, put("chain12.yaml", "include: "
                                                             "chain13.yaml\n"
                                                             "k12: 2\n")),
                     0);
    /* the deepest base's keys come first: end, k19, ..., k13, then k12 */
    ck_assert_int_eq(dgm_cfg_len(c), 9);
    ck_assert_str_eq(dgm_cfg_key_at(c, 0), "end");
    ck_assert_str_eq(dgm_cfg_key_at(c, 1), "k19");
    ck_assert_str_eq(dgm_cfg_key_at(c, 8), "k12");
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "k12")), "2");
    dgm_config_free(c);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *p = tq_case(s, "parse", positions_and_paths, anchors_and_aliases,
                       bad_documents_refused, hostile_documents, depth_boundary,
                       many_keys);
    /* the alias bomb builds ~700k nodes before it is refused: seconds
     * under the sanitizers on a busy machine */
    tcase_set_timeout(p, 60);
    tcase_add_checked_fixture(p, setup, teardown);
    TCase *inc =
        tq_case(s, "include", include_merges_key_by_key, fixture_include,
                fixture_validation_and_anchors, include_edges);
    tcase_add_checked_fixture(inc, setup, teardown);
    tq_case(s, "overrides", overrides, override_details, override_values);
    TCase *ty = tq_case(s, "types", typed_scalars, scalar_edges);
    tcase_add_test_raise_signal(ty, reader_missing_key_aborts, SIGABRT);
    tcase_add_test_raise_signal(ty, reader_wrong_type_aborts, SIGABRT);
    tcase_add_test_raise_signal(ty, reader_list_aborts, SIGABRT);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
