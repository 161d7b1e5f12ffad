#!/usr/bin/env python3
"""Write the fuzz harnesses' seed corpora (tests/fuzz/corpus/<harness>/).

Run once from the source root; the files are checked in. Real experiments
from experiments/, and small safetensors, IDX and JSON files in the formats
dgm writes (docs/formats.md). Never run it to grow a corpus: fuzz.sh fuzzes
a copy."""
import gzip
import json
import os
import re
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEP = b"\n#--\n"


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def exp(name):
    with open(os.path.join(ROOT, "experiments", name), "rb") as f:
        return f.read()


def rebase(text, base):
    return re.sub(rb"^include: .*$", b"include: " + base, text, flags=re.M)


# ---- config: exp.yaml #-- base.yaml #-- sub/inc.yaml #-- overrides
for e in ["vae_fashion.yaml", "dcgan_fashion.yaml", "char_gru_fortunes.yaml",
          "classifier_fashion.yaml", "distill_fashion.yaml",
          "vae_conv_finetune_59.yaml", "vae_aux_fashion.yaml"]:
    put("config", e, exp(e))
put("config", "beta_vae_include.yaml",
    rebase(exp("beta_vae_fashion.yaml"), b"base.yaml") + SEP +
    exp("vae_fashion.yaml"))
put("config", "dcgan_hinge_include.yaml",
    rebase(exp("dcgan_hinge_fashion.yaml"), b"[sub/inc.yaml]") + SEP + b"" +
    SEP + rebase(exp("dcgan_fashion.yaml"), b"../base.yaml"))
put("config", "anchors_overrides.yaml",
    b"name: a\nmodel:\n  plugin: vae\n  latent: 4\n"
    b"  encoder: &m {plugin: mlp, hidden: [8]}\n  decoder:\n    <<: *m\n"
    b"    hidden: [16]\nobjective:\n"
    b"  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
    b"  - {loss: gaussian_kl, inputs: [mu, logvar], weight: 0.5}\n"
    b"data: {plugin: idx, batch_size: 8}\n" + SEP + SEP + SEP +
    b"model.latent=8\n+train.epochs=2\nobjective[1].weight=2\n"
    b"metrics=[{plugin: elbo}]\nmetrics[len]={plugin: recon_error}\n")

# ---- override: one KEY=VALUE per line
put("override", "simple", b"model.latent=32\ntrain.epochs=3\n")
put("override", "add", b"+train.new_key=1\n+model.encoder.act=tanh\n")
put("override", "index", b"objective[0].weight=2\ngrid[1][1][0]=9\n"
    b"augment[len]={plugin: noise}\n")
put("override", "flow", b"model.encoder={plugin: mlp, hidden: [1, 2]}\n"
    b"tags.x=[a, 'b', \"c\"]\ntrain.note=~\n")
put("override", "refused", b"+seed=1\nmodel.latent[3]=1\n=\nobjective[9].x=1\n")

# ---- safetensors: 8-byte little-endian header length, JSON header, data


def safetensors(tensors, meta=None):
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
put("safetensors", "checkpoint.safetensors", safetensors([
    ("encoder.fc1.bias", "F32", [3], f32(0.5, -1, 2)),
    ("encoder.fc1.weight", "F32", [2, 3], f32(*range(6))),
    ("step", "I64", [], struct.pack("<q", 1200)),
    ("data.vocab", "U8", [4], b"\nabc")],
    {"dgm.step": "1200", "dgm.format": "1"}))
put("safetensors", "dtypes.safetensors", safetensors([
    ("bf16", "BF16", [2], b"\x80\x3f\x00\x40"),
    ("f64", "F64", [1, 1], struct.pack("<d", 1.5)),
    ("i32", "I32", [2], struct.pack("<2i", -1, 7)),
    ("u64", "U64", [1], struct.pack("<Q", 2**63)),
    ("empty", "F32", [0, 4], b"")]))

# ---- IDX: flag byte (bit 0: the harness gzips it), then the file


def idx(code, shape, raw):
    return bytes([0, 0, code, len(shape)]) + b"".join(
        struct.pack(">I", d) for d in shape) + raw


idx_u8 = idx(0x08, [2, 2, 2], bytes(range(8)))
put("idx", "u8", b"\x00" + idx_u8)
put("idx", "u8_gz_by_harness", b"\x01" + idx_u8)
put("idx", "u8_gz_file", b"\x00" + gzip.compress(idx_u8, mtime=0))
put("idx", "i8", b"\x00" + idx(0x09, [3], b"\xff\x00\x7f"))
put("idx", "i16", b"\x00" + idx(0x0B, [2], struct.pack(">2h", -2, 300)))
put("idx", "i32", b"\x01" + idx(0x0C, [1, 2], struct.pack(">2i", -7, 1 << 20)))
put("idx", "f32", b"\x00" + idx(0x0D, [2], struct.pack(">2f", 0.25, -3)))
put("idx", "f64", b"\x00" + idx(0x0E, [1], struct.pack(">d", 1e300)))
put("idx", "empty", b"\x00" + idx(0x08, [0, 5], b""))

# ---- image: flag (bit 0: .npy, else PNG/JPEG; bit 1: decode to grey)
def png(w, h, color, depth, rows, extra=b""):
    def chunk(t, d):
        return (struct.pack(">I", len(d)) + t + d +
                struct.pack(">I", zlib.crc32(t + d) & 0xffffffff))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


put("image", "png_rgb", b"\x00" + png(2, 2, 2, 8, [bytes(range(6)), bytes(6)]))
put("image", "png_grey_to_grey", b"\x02" + png(3, 1, 0, 8, [b"\x00\x80\xff"]))
put("image", "png_rgba", b"\x00" + png(1, 2, 6, 8, [b"\x10\x20\x30\x80"] * 2))
put("image", "png_grey16", b"\x00" + png(2, 1, 0, 16, [b"\x12\x34\xff\x7f"]))
put("image", "png_palette", b"\x00" + png(
    2, 1, 3, 8, [b"\x00\x01"],
    extra=(struct.pack(">I", 6) + b"PLTE" + b"\xff\x00\x00\x00\xff\x00" +
           struct.pack(">I", zlib.crc32(b"PLTE\xff\x00\x00\x00\xff\x00")))))


def npy(descr, shape, raw, major=1):
    d = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }" %
         (descr, "(%s)" % "".join("%d, " % v for v in shape))).encode()
    pre = 10 if major == 1 else 12
    hlen = (pre + len(d) + 1 + 63) // 64 * 64 - pre
    head = d + b" " * (hlen - len(d) - 1) + b"\n"
    size = struct.pack("<H" if major == 1 else "<I", hlen)
    return b"\x93NUMPY" + bytes([major, 0]) + size + head + raw


put("image", "npy_u8", b"\x01" + npy("|u1", [2, 3], bytes(range(6))))
put("image", "npy_f32_v2", b"\x01" + npy("<f4", [2], struct.pack("<2f", 1, 2), 2))
put("image", "npy_i8_scalar", b"\x01" + npy("<i8", [], struct.pack("<q", 7)))
# The JPEG seeds (jpeg_rgb, jpeg_grey) were written once with libjpeg, as
# tests/support/img_write.c writes them, and are kept as they are.

# ---- text_state: flags, corpus length, corpus, vocabulary bytes
corpus = b"the quick brown fox jumps over the lazy dog\n" * 3
vocab = bytes(sorted(set(corpus)))
put("text_state", "match", bytes([0, len(corpus)]) + corpus + vocab)
put("text_state", "other", bytes([0, len(corpus)]) + corpus + vocab[1:])
put("text_state", "i32", bytes([4, len(corpus)]) + corpus + b"\0" * 8)
put("text_state", "val_half", bytes([32, len(corpus)]) + corpus + vocab)

# ---- samples: flag (bit 0: safetensors), then the file
put("samples", "idx_u8", b"\x00" + idx(0x08, [2, 28, 28],
                                      bytes(i % 256 for i in range(1568))))
put("samples", "idx_u8_1x", b"\x00" + idx(0x08, [1, 1, 28, 28], bytes(784)))
put("samples", "st_f32", b"\x01" + safetensors([
    ("samples", "F32", [2, 1, 28, 28], f32(*[i / 1568 for i in range(1568)]))]))
put("samples", "st_f32_3d", b"\x01" + safetensors([
    ("x", "F32", [1, 28, 28], f32(*[0.5] * 784))]))

# ---- report_json: selector (0 summary, 1 metrics.jsonl, 2 manifest)
put("report_json", "summary", b"\x00" + json.dumps(
    {"name": "vae", "status": "completed", "steps": 3, "train_loss": 1.5,
     "final": {"neg_elbo": 100.25, "fid": 3.5, "accuracy": 0.75},
     "timings": {"train": 1.0}}).encode() + b"\n")
put("report_json", "summary_failed", b"\x00" + json.dumps(
    {"name": "vae", "status": "failed", "steps": 1, "error": "x"}).encode())
put("report_json", "metrics", b"\x01" + b"".join(json.dumps(o).encode() + b"\n"
    for o in [{"step": 1, "epoch": 1, "loss": 3, "generator/gan_g": 1.5,
               "lr": 0.001, "time": 0.1},
              {"step": 2, "loss": 2.5, "generator/gan_g": 1.25},
              {"step": 2, "eval": {"fid": 3}}]))
put("report_json", "metrics_step_2p53",
    b"\x01" + b'{"step":9007199254740992,"loss":1}\n')
put("report_json", "manifest", b"\x02" + json.dumps(
    {"format": 1, "name": "sweep", "experiment": "exp.yaml",
     "launcher": "local", "created": "2026-01-01T00:00:00",
     "trials": [{"name": "t0", "run_dir": "t0", "status": "done", "seed": 0,
                 "params": {"model.latent": 2},
                 "overrides": ["model.latent=2"]},
                {"name": "t1", "run_dir": "t1", "status": "failed",
                 "seed": 1, "params": {"model.latent": 4},
                 "message": "diverged at step 3"}]}).encode())
