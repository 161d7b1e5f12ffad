#!/usr/bin/python3
"""char_transformer_ref.py - PyTorch reference for dgm's char_transformer
(tests/test_transformer.c): reads a run's checkpoint (safetensors, parsed
here with struct/json/numpy), rebuilds the model with nn-free torch ops in
float64 (pre-norm blocks: x + proj(attn(LN1 x)), x + fc2(gelu(fc1(LN2 x)));
causal softmax(q k^T / sqrt(d)) v; final LN, linear head) and prints the
logits of one window, one value per line (%.9g).

char_transformer_ref.py CHECKPOINT LAYERS HEADS ID...
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(blob[8 + n + a:8 + n + b], dtype=np.float32)
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).astype(
            np.float64))
    return out


def main():
    w = load(sys.argv[1])
    layers, heads = int(sys.argv[2]), int(sys.argv[3])
    ids = torch.tensor([int(v) for v in sys.argv[4:]])
    t = len(ids)
    h = w["embedding.weight"][ids] + w["pos.weight"][:t]
    d_model = h.shape[1]
    d = d_model // heads
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)

    def ln(x, p):
        return F.layer_norm(x, (d_model,), w[p + ".weight"], w[p + ".bias"],
                            1e-5)

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    for i in range(layers):
        b = "blocks.%d." % i
        qkv = lin(ln(h, b + "ln1"), b + "attn.qkv")  # [t, 3D]
        q, k, v = (qkv[:, j * d_model:(j + 1) * d_model]
                   .reshape(t, heads, d).transpose(0, 1) for j in range(3))
        s = (q @ k.transpose(1, 2)) / math.sqrt(d)
        a = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        h = h + lin(a.transpose(0, 1).reshape(t, d_model), b + "attn.proj")
        m = F.gelu(lin(ln(h, b + "ln2"), b + "mlp.fc1"))
        h = h + lin(m, b + "mlp.fc2")
    logits = lin(ln(h, "ln_f"), "head")
    for v in logits.flatten().tolist():
        print("%.9g" % v)


if __name__ == "__main__":
    main()
