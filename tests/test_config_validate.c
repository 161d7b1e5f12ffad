/* test_config_validate.c - validating a config map against a plugin's
 * schema: defaults filled in, types, bounds (inclusive and exclusive),
 * list lengths, choices, did-you-mean, the owner in messages, and the
 * consistency check of a schema entry the registry runs at load. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "config_internal.h"
#include "dgm/config.h"
#include "dgm/error.h"

#include "cfg_check.h"

/* ---- validation --------------------------------------------------------- */

static const dgm_param_spec schema[] = {
    DGM_PARAM_INT("latent", .def = "20", DGM_GE(1), DGM_LE(512),
                  .help = "latent size"),
    DGM_PARAM_FLOAT("lr", .def = "1e-3", DGM_GE(0), DGM_LE(1), .help = "rate"),
    DGM_PARAM_BOOL("bn", .def = "false", .help = "batch norm"),
    DGM_PARAM_CHOICE("act", .def = "relu", .choices = "relu|tanh",
                     .help = "activation"),
    DGM_PARAM_STRING("path", .help = "where"),
    DGM_PARAM_INT_LIST("hidden", .def = "[400]", DGM_GE(1), DGM_LE(4096),
                       .help = "widths"),
    DGM_PARAM_FLOAT_LIST("betas", .def = "[0.9, 0.99]", DGM_GE(0), DGM_LE(1),
                         .help = "betas"),
    DGM_PARAM_STRING_LIST("tags", .def = "[]", .help = "tags"),
    DGM_PARAM_PLUGIN("encoder", .def = "{plugin: mlp}", .kind = "block",
                     .help = "enc"),
    DGM_PARAM_PLUGIN_LIST("heads", .def = "[]", .kind = "block",
                          .help = "heads"),
    DGM_PARAM_STRING("note", .def = "null", .help = "optional"),
    DGM_PARAM_ANY("extra", .def = "{}", .help = "free form"),
    DGM_PARAM_END,
};

static int validate(const char *text, dgm_config **out)
{
    dgm_config *c = tc_parse(text);
    int rc = dgm_config_validate(c, schema, "vae", NULL);
    if (out)
        *out = c;
    else
        dgm_config_free(c);
    return rc;
}

START_TEST(validation_fills_defaults)
{
    dgm_config *c;
    ck_assert_msg(validate("path: /data\nlatent: 8\n", &c) == 0, "%s",
                  dgm_last_error());
    ck_assert_int_eq(dgm_cfg_int(c, "latent"), 8);
    ck_assert(!dgm_cfg_is_default(dgm_cfg_get(c, "latent")));
    ck_assert(dgm_cfg_is_default(dgm_cfg_get(c, "lr")));
    ck_assert_double_eq(dgm_cfg_float(c, "lr"), 1e-3);
    ck_assert(!dgm_cfg_bool(c, "bn"));
    ck_assert_str_eq(dgm_cfg_str(c, "act"), "relu");
    int64_t h[4];
    ck_assert_int_eq(dgm_cfg_int_list(c, "hidden", h, 4), 1);
    ck_assert_int_eq(h[0], 400);
    double be[2];
    ck_assert_int_eq(dgm_cfg_float_list(c, "betas", be, 2), 2);
    ck_assert_double_eq_tol(be[1], 0.99, 1e-12);
    ck_assert_str_eq(dgm_cfg_str(c, "encoder.plugin"), "mlp");
    ck_assert_ptr_null(dgm_cfg_str(c, "note"));
    /* idempotent: validating again changes nothing */
    ck_assert_int_eq(dgm_config_validate(c, schema, "vae", NULL), 0);
    dgm_config_free(c);
    /* an explicit null for an optional key; ints where floats go */
    ck_assert_int_eq(validate("path: p\nnote: null\nlr: 1\n", NULL), 0);
    /* extra keys are let through */
    c = tc_parse("path: p\nclip_norm: 1.0\n");
    const char *extra[] = {"clip_norm", NULL};
    ck_assert_int_eq(dgm_config_validate(c, schema, "vae", extra), 0);
    dgm_config_free(c);
}
END_TEST

START_TEST(validation_errors)
{
    ASSERT_ERR(validate("path: p\nlatnt: 3\n", NULL), DGM_EKEY,
               "t.yaml:2:1: latnt: unknown key for plugin 'vae'",
               "did you mean 'latent'?");
    ASSERT_ERR(validate("path: p\nzzzzzz: 3\n", NULL), DGM_EKEY, "zzzzzz");
    ck_assert_ptr_null(strstr(dgm_last_error(), "did you mean"));
    ASSERT_ERR(validate("latent: 3\n", NULL), DGM_EMISSING, "path",
               "required by plugin 'vae'");
    ASSERT_ERR(validate("path: p\nlatent: big\n", NULL), DGM_ETYPE,
               "t.yaml:2:9: latent", "an integer", "'big'");
    ASSERT_ERR(validate("path: p\nlatent: \"8\"\n", NULL), DGM_ETYPE, "latent");
    ASSERT_ERR(validate("path: p\nlatent: 1000\n", NULL), DGM_ERANGE,
               "t.yaml:2:9: latent", "[1, 512]");
    ASSERT_ERR(validate("path: p\nlr: 2.5\n", NULL), DGM_ERANGE, "lr");
    ASSERT_ERR(validate("path: p\nbn: yes\n", NULL), DGM_ETYPE, "bn",
               "boolean");
    ASSERT_ERR(validate("path: p\nact: gelu\n", NULL), DGM_ERANGE, "act",
               "relu|tanh");
    ASSERT_ERR(validate("path: p\nhidden: [400, x]\n", NULL), DGM_ETYPE,
               "t.yaml:2:15: hidden[1]");
    ASSERT_ERR(validate("path: p\nhidden: [400, 0]\n", NULL), DGM_ERANGE,
               "hidden[1]");
    ASSERT_ERR(validate("path: p\nhidden: 400\n", NULL), DGM_ETYPE,
               "list of integers");
    ASSERT_ERR(validate("path: p\nbetas: [0.9, 1.5]\n", NULL), DGM_ERANGE,
               "betas[1]");
    ASSERT_ERR(validate("path: [a]\n", NULL), DGM_ETYPE, "path");
    ASSERT_ERR(validate("path: p\nencoder: mlp\n", NULL), DGM_ETYPE, "encoder",
               "plugin");
    ASSERT_ERR(validate("path: p\nencoder: {hidden: [3]}\n", NULL),
               DGM_EMISSING, "encoder.plugin");
    ASSERT_ERR(validate("path: p\nheads: [{plugin: a}, {x: 1}]\n", NULL),
               DGM_EMISSING, "heads[1].plugin");
    ASSERT_ERR(validate("path: p\ntags: [a, [b]]\n", NULL), DGM_ETYPE,
               "tags[1]");
    /* not a map at all */
    dgm_config *c = tc_parse("[1, 2]\n");
    ASSERT_ERR(dgm_config_validate(c, schema, "vae", NULL), DGM_ETYPE, "a map");
    dgm_config_free(c);
}
END_TEST

START_TEST(did_you_mean)
{
    const char *c[] = {"latent", "encoder", "decoder", "lr"};
    ck_assert_str_eq(dgm_did_you_mean("latnt", c, 4), "latent");
    ck_assert_str_eq(dgm_did_you_mean("encodre", c, 4), "encoder");
    ck_assert_str_eq(dgm_did_you_mean("lf", c, 4), "lr");
    ck_assert_ptr_null(dgm_did_you_mean("batch_size", c, 4));
}
END_TEST

/* ---- validation, continued ---------------------------------------------- */

START_TEST(validation_details)
{
    static const dgm_param_spec s2[] = {
        DGM_PARAM_FLOAT("lr", .def = "1e-3", DGM_GE(0), DGM_LE(1),
                        .help = "rate"),
        DGM_PARAM_FLOAT("width", .def = "0x10", .help = "hex int"),
        DGM_PARAM_PLUGIN("block", .def = "null", .kind = "block",
                         .help = "optional"),
        DGM_PARAM_PLUGIN_LIST("blocks", .def = "[{plugin: mlp, hidden: [3]}]",
                              .kind = "block", .help = "list"),
        DGM_PARAM_ANY("any", .def = "{a: [1, {b: 2}]}", .help = "any"),
        DGM_PARAM_END,
    };
    dgm_config *c = tc_parse("lr: 1\nblock: null\n");
    ck_assert_msg(dgm_config_validate(c, s2, "opt", NULL) == 0, "%s",
                  dgm_last_error());
    ck_assert_double_eq(dgm_cfg_float(c, "width"), 16.0);
    ck_assert_ptr_null(dgm_cfg_child(c, "block"));
    /* defaults are flagged down to their leaves, and come from the schema */
    ck_assert(dgm_cfg_is_default(dgm_cfg_get(c, "blocks[0].hidden[0]")));
    ck_assert(dgm_cfg_is_default(dgm_cfg_get(c, "any.a[1].b")));
    ck_assert(!dgm_cfg_is_default(dgm_cfg_get(c, "lr")));
    ck_assert_str_eq(dgm_cfg_file(dgm_cfg_get(c, "any")), "<default of opt>");
    ck_assert_str_eq(dgm_cfg_path(dgm_cfg_get(c, "any.a[1].b")), "any.a[1].b");
    /* the resolved map writes and reads back the same */
    char *out = dgm_config_to_string(c);
    dgm_config *back = NULL;
    ck_assert_int_eq(dgm_config_parse(&back, out, "back.yaml"), 0);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(back, "blocks[0].plugin")),
                     "mlp");
    free(out);
    dgm_config_free(back);
    dgm_config_free(c);

    /* a refused map is left as it was: no defaults half added */
    c = tc_parse("lr: .nan\n");
    ASSERT_ERR(dgm_config_validate(c, s2, "opt", NULL), DGM_ERANGE,
               "t.yaml:1:5: lr: .nan is out of range [0, 1] for plugin 'opt'");
    ck_assert_int_eq(dgm_cfg_len(c), 1);
    dgm_config_free(c);
    c = tc_parse("blocks: {plugin: mlp}\n");
    ASSERT_ERR(dgm_config_validate(c, s2, "opt", NULL), DGM_ETYPE,
               "t.yaml:1:9: blocks: expected a list of maps with `plugin:` "
               "for plugin 'opt', found a map");
    ck_assert_int_eq(dgm_cfg_len(c), 1);
    dgm_config_free(c);
    c = tc_parse("block: {plugin: [mlp]}\n");
    ASSERT_ERR(dgm_config_validate(c, s2, "opt", NULL), DGM_ETYPE,
               "block.plugin", "a plugin name");
    dgm_config_free(c);
    c = tc_parse("lr: \"0.1\"\n");
    ASSERT_ERR(dgm_config_validate(c, s2, "opt", NULL), DGM_ETYPE,
               "t.yaml:1:5: lr: expected a number for plugin 'opt', found "
               "the string \"0.1\"");
    dgm_config_free(c);

    /* a schema whose default is not YAML, or breaks its own rule */
    static const dgm_param_spec bad1[] = {
        DGM_PARAM_INT_LIST("x", .def = "[1, 2", .help = "broken"),
        DGM_PARAM_END,
    };
    static const dgm_param_spec bad2[] = {
        DGM_PARAM_INT("x", .def = "1000", DGM_GE(0), DGM_LE(10),
                      .help = "out of its range"),
        DGM_PARAM_END,
    };
    c = tc_parse("{}\n");
    ASSERT_ERR(dgm_config_validate(c, bad1, "p", NULL), DGM_EPLUGIN,
               "plugin 'p': bad default for 'x'", "<default of p>");
    ASSERT_ERR(dgm_config_validate(c, bad2, "p", NULL), DGM_EPLUGIN,
               "fails its own schema", "[0, 10]");
    ck_assert_int_eq(dgm_cfg_len(c), 0);
    dgm_config_free(c);

    /* the experiment's own keys name no plugin */
    c = tc_parse("modle: {plugin: vae}\n");
    static const dgm_param_spec top[] = {
        DGM_PARAM_PLUGIN("model", .kind = "model", .help = "the model"),
        DGM_PARAM_END,
    };
    ASSERT_ERR(dgm_config_validate(c, top, "experiment", NULL), DGM_EKEY,
               "t.yaml:1:1: modle: unknown key for the experiment (did you "
               "mean 'model'?)");
    dgm_config_free(c);
    c = tc_parse("{}\n");
    ASSERT_ERR(dgm_config_validate(c, top, "experiment", NULL), DGM_EMISSING,
               "t.yaml:1:1: model: required by the experiment (the model)");
    dgm_config_free(c);
}
END_TEST

START_TEST(did_you_mean_rule)
{
    /* within max(1, len/3) edits, transpositions count once */
    const char *c[] = {"batch_size", "hidden", "lr", "beta1"};
    ck_assert_str_eq(dgm_did_you_mean("batchsize", c, 4), "batch_size");
    ck_assert_str_eq(dgm_did_you_mean("hiddne", c, 4), "hidden");
    ck_assert_str_eq(dgm_did_you_mean("btach_szie", c, 4), "batch_size");
    ck_assert_str_eq(dgm_did_you_mean("beta2", c, 4), "beta1");
    ck_assert_ptr_null(dgm_did_you_mean("hdn", c, 4));
    ck_assert_ptr_null(dgm_did_you_mean("xy", c, 4));
    ck_assert_ptr_null(dgm_did_you_mean("lr", c, 0));
}
END_TEST

/* ---- added: validation messages, owners, every default ------------------ */

START_TEST(validation_exclusive_bounds_and_lengths)
{
    /* Bounds a plugin can state since the typed declarations: open ends
     * (lr > 0), half-open intervals ([0, 1)) and list lengths; messages
     * say which end is open. */
    static const dgm_param_spec s[] = {
        DGM_PARAM_FLOAT("lr", .def = "1e-3", DGM_GT(0), .help = "rate"),
        DGM_PARAM_FLOAT("p", .def = "0.5", DGM_GE(0), DGM_LT(1)),
        DGM_PARAM_INT("k", .def = "1", DGM_LT(4)),
        DGM_PARAM_INT_LIST("hidden", .def = "[8]", DGM_GE(1), .min_len = 1,
                           .max_len = 3),
        DGM_PARAM_STRING_LIST("tags", .def = "[]", .max_len = 2),
        DGM_PARAM_END,
    };
    struct {
        const char *yaml;
        const char *msg;
    } bad[] = {
        {"lr: 0\n", "t.yaml:1:5: lr: 0 is out of range for plugin 'x': must "
                    "be > 0"},
        {"p: 1\n", "t.yaml:1:4: p: 1 is out of range for plugin 'x': must be "
                   "in [0, 1)"},
        {"p: -0.5\n", "p: -0.5 is out of range for plugin 'x': must be in "
                      "[0, 1)"},
        {"k: 4\n", "k: 4 is out of range for plugin 'x': must be < 4"},
        {"lr: .inf\n", "lr: .inf is out of range for plugin 'x': must be > 0"},
        {"hidden: []\n", "t.yaml:1:9: hidden: a list of 0 elements for "
                         "plugin 'x', which takes 1 to 3"},
        {"hidden: [1, 2, 3, 4]\n", "hidden: a list of 4 elements for plugin "
                                   "'x', which takes 1 to 3"},
        {"tags: [a, b, c]\n", "tags: a list of 3 elements for plugin 'x', "
                              "which takes at most 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dgm_config *c = tc_parse(bad[i].yaml);
        ASSERT_ERR(dgm_config_validate(c, s, "x", NULL), DGM_ERANGE,
                   bad[i].msg);
        dgm_config_free(c);
    }
    /* The ends that are in. */
    dgm_config *c = tc_parse("lr: 1e-9\np: 0\nk: -7\nhidden: [1, 2, 3]\n"
                             "tags: [a, b]\n");
    ck_assert_msg(dgm_config_validate(c, s, "x", NULL) == 0, "%s",
                  dgm_last_error());
    dgm_config_free(c);
}
END_TEST

START_TEST(param_check_at_load)
{
    /* What the registry runs on each schema entry when a plugin loads:
     * a default outside its own bounds or of the wrong type, an empty
     * interval, bounds or lengths where they mean nothing. */
    struct {
        dgm_param_spec s;
        const char *msg;
    } bad[] = {
        {DGM_PARAM_FLOAT("lr", .def = "0", DGM_GT(0)),
         "param 'lr': default 0 fails: "},
        {DGM_PARAM_FLOAT("p", .def = "1", DGM_GE(0), DGM_LT(1)),
         "must be in [0, 1)"},
        {DGM_PARAM_INT("n", .def = "1.5"), "param 'n': default 1.5 fails: "},
        {DGM_PARAM_INT("n", .def = "[1"), "param 'n': its default is not YAML"},
        {DGM_PARAM_INT_LIST("h", .def = "[]", .min_len = 1),
         "a list of 0 elements for its own schema, which takes at least 1"},
        {DGM_PARAM_FLOAT("q", DGM_GT(1), DGM_LT(1)),
         "param 'q': the range in (1, 1) is empty"},
        {DGM_PARAM_FLOAT("q", DGM_GE(2), DGM_LE(1)),
         "param 'q': the range [2, 1] is empty"},
        {DGM_PARAM_STRING("s", DGM_GE(0)),
         "param 's': bounds on a type without numbers"},
        {DGM_PARAM_INT("n", .max_len = 3),
         "param 'n': min_len/max_len on a type that is not a list"},
        {DGM_PARAM_INT_LIST("h", .min_len = 4, .max_len = 3),
         "param 'h': list length 4..3 is not a valid range"},
        {DGM_PARAM_STRING("s", .choices = "a|b"),
         "param 's': choices on a type other than DGM_P_CHOICE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_ERR(dgm_param_spec_check(&bad[i].s), DGM_EFORMAT, bad[i].msg);
    const dgm_param_spec good[] = {
        DGM_PARAM_FLOAT("lr", .def = "1e-3", DGM_GT(0)),
        DGM_PARAM_FLOAT("p", .def = "null", DGM_GE(0), DGM_LT(1)),
        DGM_PARAM_INT("n"),
        DGM_PARAM_INT_LIST("h", .def = "[1, 2]", DGM_GE(1), .max_len = 2),
        DGM_PARAM_CHOICE("a", .def = "x", .choices = "x|y"),
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(dgm_param_spec_check(&good[i]) == 0, "%s: %s",
                      good[i].name, dgm_last_error());
}
END_TEST

START_TEST(validation_owner_and_ranges)
{
    static const dgm_param_spec s[] = {
        DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.0e15),
                      .help = "seed"),
        DGM_PARAM_FLOAT("lr", .def = "1e-3", DGM_GE(0), .help = "rate"),
        DGM_PARAM_FLOAT("mix", .def = "0", DGM_GE(-1.5), DGM_LE(2.5),
                        .help = "mix"),
        DGM_PARAM_CHOICE("act", .def = "relu", .choices = "relu|tanh",
                         .help = "act"),
        DGM_PARAM_CHOICE("k", .def = "1", .choices = "1|2", .help = "k"),
        DGM_PARAM_STRING("path", .help = "where"),
        DGM_PARAM_END,
    };
    dgm_config *c = tc_parse("seed: -1\n");
    ASSERT_ERR(dgm_config_validate(c, s, "experiment", NULL), DGM_ERANGE,
               "t.yaml:1:7: seed: -1 is out of range [0, 9000000000000000] "
               "for the experiment");
    dgm_config_free(c);
    c = tc_parse("path: p\nlr: -1\n");
    ASSERT_ERR(dgm_config_validate(c, s, "adam", NULL), DGM_ERANGE,
               "t.yaml:2:5: lr: -1 is out of range [0, inf] for plugin 'adam'");
    dgm_config_free(c);
    c = tc_parse("path: p\nmix: 3\n");
    ASSERT_ERR(dgm_config_validate(c, s, "the train section", NULL), DGM_ERANGE,
               "t.yaml:2:6: mix: 3 is out of range [-1.5, 2.5] for the train "
               "section");
    dgm_config_free(c);
    c = tc_parse("path: p\nmixx: 3\n");
    ASSERT_ERR(dgm_config_validate(c, s, "the train section", NULL), DGM_EKEY,
               "t.yaml:2:1: mixx: unknown key for the train section (did you "
               "mean 'mix'?)");
    dgm_config_free(c);
    c = tc_parse("{}\n");
    ASSERT_ERR(dgm_config_validate(c, s, "experiment", NULL), DGM_EMISSING,
               "t.yaml:1:1: path: required by the experiment (where)");
    ck_assert_int_eq(dgm_cfg_len(c), 0); /* no default added */
    dgm_config_free(c);
    /* an explicit null is not "absent": a required key must have a value */
    c = tc_parse("path: null\n");
    ASSERT_ERR(dgm_config_validate(c, s, "idx", NULL), DGM_ETYPE,
               "t.yaml:1:7: path: expected a string for plugin 'idx', found "
               "null");
    dgm_config_free(c);
    c = tc_parse("path: p\nact: ~\n");
    ASSERT_ERR(dgm_config_validate(c, s, "mlp", NULL), DGM_ETYPE,
               "t.yaml:2:6: act: expected a string for plugin 'mlp', found "
               "null");
    dgm_config_free(c);
    c = tc_parse("path: p\nact: Relu\n");
    ASSERT_ERR(dgm_config_validate(c, s, "mlp", NULL), DGM_ERANGE,
               "t.yaml:2:6: act: 'Relu' is not a choice of plugin 'mlp' "
               "(choose one of: relu|tanh)");
    dgm_config_free(c);
    /* a quoted number is a string: fine for a string or a choice, not an
     * int */
    c = tc_parse("path: \"3\"\nk: 2\nact: \"tanh\"\n");
    ck_assert_msg(dgm_config_validate(c, s, "p", NULL) == 0, "%s",
                  dgm_last_error());
    ck_assert_str_eq(dgm_cfg_str(c, "path"), "3");
    ck_assert_str_eq(dgm_cfg_str(c, "k"), "2");
    ck_assert(dgm_cfg_is_default(dgm_cfg_get(c, "seed")));
    ck_assert(!dgm_cfg_is_default(dgm_cfg_get(c, "k")));
    dgm_config_free(c);
    c = tc_parse("path: p\nseed: \"3\"\n");
    ASSERT_ERR(dgm_config_validate(c, s, "experiment", NULL), DGM_ETYPE,
               "t.yaml:2:7: seed: expected an integer for the experiment, "
               "found the string \"3\"");
    dgm_config_free(c);
    c = tc_parse("path: p\nseed: 1.5\n");
    ASSERT_ERR(dgm_config_validate(c, s, "experiment", NULL), DGM_ETYPE,
               "found '1.5'");
    dgm_config_free(c);
}
END_TEST

START_TEST(validation_every_default)
{
    dgm_config *c;
    ck_assert_msg(validate("path: /data\n", &c) == 0, "%s", dgm_last_error());
    /* every schema entry is present, in schema order after the file's */
    ck_assert_int_eq(dgm_cfg_len(c), 12);
    ck_assert_str_eq(dgm_cfg_key_at(c, 0), "path");
    ck_assert_str_eq(dgm_cfg_key_at(c, 1), "latent");
    ck_assert_str_eq(dgm_cfg_key_at(c, 11), "extra");
    for (int i = 1; i < dgm_cfg_len(c); i++)
        ck_assert_msg(dgm_cfg_is_default(dgm_cfg_at(c, i)), "%s",
                      dgm_cfg_key_at(c, i));
    ck_assert(!dgm_cfg_is_default(dgm_cfg_get(c, "path")));
    ck_assert_int_eq(dgm_cfg_int(c, "latent"), 20);
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "tags")), 0);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "tags")), DGM_CFG_SEQ);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "heads")), DGM_CFG_SEQ);
    ck_assert_int_eq(dgm_cfg_kind_of(dgm_cfg_get(c, "extra")), DGM_CFG_MAP);
    ck_assert(dgm_cfg_has(c, "note"));
    ck_assert_ptr_null(dgm_cfg_child(c, "note"));
    ck_assert(dgm_cfg_is_default(dgm_cfg_get(c, "encoder.plugin")));
    ck_assert_str_eq(dgm_cfg_path(dgm_cfg_get(c, "encoder.plugin")),
                     "encoder.plugin");
    ck_assert_str_eq(dgm_cfg_file(dgm_cfg_get(c, "hidden[0]")),
                     "<default of vae>");
    dgm_config_free(c);
    /* values given for every type pass and stay as written */
    ck_assert_msg(validate("path: p\nlatent: 512\nlr: 0\nbn: TRUE\nact: tanh\n"
                           "hidden: [1, 0x10]\nbetas: [0, 1, 0.5]\n"
                           "tags: [a, 2, \"3\"]\n"
                           "encoder: {plugin: conv, anything: [1]}\n"
                           "heads: [{plugin: a}, {plugin: b, x: 1}]\n"
                           "note: hi\nextra: [1, {a: b}]\n",
                           &c) == 0,
                  "%s", dgm_last_error());
    ck_assert(dgm_cfg_bool(c, "bn"));
    int64_t h[2];
    ck_assert_int_eq(dgm_cfg_int_list(c, "hidden", h, 2), 2);
    ck_assert_int_eq(h[1], 16);
    ck_assert_str_eq(dgm_cfg_str(c, "note"), "hi");
    ck_assert_int_eq(dgm_cfg_len(c), 12);
    for (int i = 0; i < dgm_cfg_len(c); i++)
        ck_assert(!dgm_cfg_is_default(dgm_cfg_at(c, i)));
    dgm_config_free(c);
    /* element errors name the element and its place */
    ASSERT_ERR(validate("path: p\nhidden: [1, \"2\"]\n", NULL), DGM_ETYPE,
               "t.yaml:2:13: hidden[1]: expected an integer for plugin 'vae', "
               "found the string \"2\"");
    ASSERT_ERR(validate("path: p\nbetas: [0.5, .inf]\n", NULL), DGM_ERANGE,
               "t.yaml:2:14: betas[1]: .inf is out of range [0, 1]");
    ASSERT_ERR(validate("path: p\nheads: [{plugin: a}, 3]\n", NULL), DGM_ETYPE,
               "t.yaml:2:22: heads[1]: expected a map with `plugin: NAME` for "
               "plugin 'vae', found '3'");
    ASSERT_ERR(validate("path: p\nheads: [{plugin: null}]\n", NULL), DGM_ETYPE,
               "t.yaml:2:18: heads[0].plugin: expected a plugin name");
    ASSERT_ERR(validate("path: p\nnote: [x]\n", NULL), DGM_ETYPE,
               "t.yaml:2:7: note: expected a string for plugin 'vae', found a "
               "list");
}
END_TEST

/* ---- path keys ----------------------------------------------------------- */

static const dgm_param_spec path_schema[] = {
    DGM_PARAM_PATH("data", .help = "a folder"),
    DGM_PARAM_PATH("cache", .def = "\"\"", .help = "none by default"),
    DGM_PARAM_PATH("here", .def = ".", .help = "the working directory"),
    DGM_PARAM_PATH("opt", .def = "null", .help = "optional"),
    DGM_PARAM_PATHS("corpus", .def = "[a.txt, /b/c.txt]", .help = "files"),
    DGM_PARAM_END,
};

/* A relative path becomes the working directory joined with it, as the
 * text was written (no symlink resolved); "" and absolute ones stay. */
START_TEST(validation_paths)
{
    char cwd[4096], want[4200];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    dgm_config *c = tc_parse("data: sub/../d\nopt: rel\n");
    ck_assert_int_eq(dgm_config_validate(c, path_schema, "p", NULL), 0);
    snprintf(want, sizeof want, "%s/sub/../d", cwd);
    ck_assert_str_eq(dgm_cfg_str(c, "data"), want);
    snprintf(want, sizeof want, "%s/rel", cwd);
    ck_assert_str_eq(dgm_cfg_str(c, "opt"), want);
    ck_assert_str_eq(dgm_cfg_str(c, "cache"), "");
    ck_assert_str_eq(dgm_cfg_str(c, "here"), cwd);
    const dgm_config *corpus = dgm_cfg_get(c, "corpus");
    ck_assert_int_eq(dgm_cfg_len(corpus), 2);
    snprintf(want, sizeof want, "%s/a.txt", cwd);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_at(corpus, 0)), want);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_at(corpus, 1)), "/b/c.txt");
    /* validating the result again (a saved config read back) changes
     * nothing: the paths are absolute now */
    char before[8192] = "", after[8192] = "";
    FILE *f = fmemopen(before, sizeof before - 1, "w");
    ck_assert_int_eq(dgm_config_write(c, f), 0);
    fclose(f);
    ck_assert_int_eq(dgm_config_validate(c, path_schema, "p", NULL), 0);
    f = fmemopen(after, sizeof after - 1, "w");
    ck_assert_int_eq(dgm_config_write(c, f), 0);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(before, "corpus"));
    ck_assert_str_eq(before, after);
    dgm_config_free(c);

    c = tc_parse("data: /abs/x\ncorpus: one.txt\nopt: null\n");
    ck_assert_int_eq(dgm_config_validate(c, path_schema, "p", NULL), 0);
    ck_assert_str_eq(dgm_cfg_str(c, "data"), "/abs/x");
    snprintf(want, sizeof want, "%s/one.txt", cwd);
    ck_assert_str_eq(dgm_cfg_str(c, "corpus"), want);
    ck_assert_ptr_null(dgm_cfg_child(c, "opt"));
    dgm_config_free(c);
}
END_TEST

/* A wrong value is refused like any other, and the map is left as it was
 * (no path made absolute when another key fails). */
START_TEST(validation_path_errors)
{
    dgm_config *c = tc_parse("data: [x]\n");
    ck_assert_int_eq(dgm_config_validate(c, path_schema, "p", NULL), DGM_ETYPE);
    ck_assert_str_eq(dgm_last_error(),
                     "t.yaml:1:7: data: expected a path (a string) for plugin "
                     "'p', found a list");
    dgm_config_free(c);
    c = tc_parse("data: d\ncorpus: [a, {b: 1}]\n");
    ck_assert_int_eq(dgm_config_validate(c, path_schema, "p", NULL), DGM_ETYPE);
    ck_assert_str_eq(dgm_last_error(),
                     "t.yaml:2:13: corpus[1]: expected a path (a string) for "
                     "plugin 'p', found a map");
    ck_assert_str_eq(dgm_cfg_str(c, "data"), "d");
    dgm_config_free(c);
    c = tc_parse("data: d\ncorpus: []\n");
    ck_assert_int_eq(dgm_config_validate(c, path_schema, "p", NULL), DGM_ETYPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "corpus: expected a path "
                                                   "or a non-empty list"));
    dgm_config_free(c);
}
END_TEST

static Suite *config_validate_suite(void)
{
    Suite *s = suite_create("config_validate");
    tq_case(s, "validation", validation_fills_defaults, validation_errors,
            did_you_mean, validation_details, did_you_mean_rule,
            validation_owner_and_ranges,
            validation_exclusive_bounds_and_lengths, param_check_at_load,
            validation_every_default, validation_paths, validation_path_errors);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_validate_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
