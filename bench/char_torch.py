"""PyTorch reference for dgm's character language models
(experiments/char_{lstm,gru,transformer}_fortunes.yaml): the same corpus,
split, vocabulary, sizes and recipe. Prints one JSON line at the end with
ms per training step and validation bits per character.

Run with Debian's torch at its best configuration:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    /usr/bin/python3 bench/char_torch.py --model lstm --steps 3000
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def binary(b):
    """dgm's text data set rule: NUL bytes, or > 30% odd bytes."""
    if b"\0" in b:
        return True
    odd, i, n = 0, 0, len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            odd += (c < 0x20 and c not in b"\t\n\r\f\v") or c == 0x7F
            i += 1
            continue
        k = 1 if 0xC2 <= c <= 0xDF else 2 if 0xE0 <= c <= 0xEF else \
            3 if 0xF0 <= c <= 0xF4 else 0
        ok = k > 0 and all(i + j < n and (b[i + j] & 0xC0) == 0x80
                           for j in range(1, k + 1))
        if ok:
            i += k + 1
        else:
            odd += 1
            i += 1
    return odd * 10 > n * 3


def corpus(path):
    if os.path.isfile(path):
        return open(path, "rb").read()
    out = b""
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        if name.startswith(".") or (len(name) > 4 and name.endswith(".dat")):
            continue
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        b = open(p, "rb").read()
        if not binary(b):
            out += b
    return out


class CharRNN(nn.Module):
    def __init__(self, cell, vocab, emb, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(emb, hidden, layers)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):  # x [N, T]
        y, _ = self.rnn(self.embedding(x.t()))
        return self.head(y).transpose(0, 1)


class Block(nn.Module):
    def __init__(self, d, heads, ratio):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.q, self.k, self.v = (nn.Linear(d, d) for _ in range(3))
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, int(d * ratio))
        self.fc2 = nn.Linear(int(d * ratio), d)

    def forward(self, x):
        n, t, d = x.shape
        h = self.ln1(x)
        split = lambda z: z.view(n, t, self.heads, -1).transpose(1, 2)
        q = split(self.q(h)) / math.sqrt(d // self.heads)
        k, v = split(self.k(h)), split(self.v(h))
        s = q @ k.transpose(-1, -2)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        a = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class CharTransformer(nn.Module):
    def __init__(self, vocab, d, layers, heads, ratio, T):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(T, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, ratio)
                                    for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, x):
        h = self.embedding(x) + self.pos[: x.shape[1]]
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln_f(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["lstm", "gru", "transformer"],
                    default="lstm")
    ap.add_argument("--path", default="/usr/share/games/fortunes")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--width", type=int, default=128,
                    help="transformer width (bench/scaling.sh)")
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=10,
                    help="untimed steps first (at most --steps)")
    ap.add_argument("--time-only", action="store_true",
                    help="skip the validation pass")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    data = corpus(a.path)
    n_val = int(a.val_fraction * len(data))
    n_train = len(data) - n_val
    seen = sorted(set(data[:n_train]))
    ids = {b: i for i, b in enumerate(seen)}
    vocab = len(seen) + 1  # the last id: bytes never seen in training
    enc = torch.tensor([ids.get(b, len(seen)) for b in data],
                       dtype=torch.long)
    T = a.seq_len

    if a.model == "transformer":
        model = CharTransformer(vocab, a.width, 4, 4, 4.0, T)
        lr = 1e-3
    else:
        model = CharRNN(a.model, vocab, 64, 256, 2)
        lr = 2e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    offsets = torch.arange(T)

    def step():
        s = torch.randint(0, n_train - T, (a.batch,))
        x = enc[s[:, None] + offsets]
        y = enc[s[:, None] + offsets + 1]
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    warm = min(a.warmup, a.steps)
    for _ in range(warm):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps - warm):
        loss = step()
    dt = time.perf_counter() - t0
    out = {"model": a.model, "steps": a.steps,
           "ms_per_step": 1000 * dt / max(1, a.steps - warm),
           "train_loss": loss}
    if not a.time_only:
        model.eval()
        nats, count = 0.0, 0
        n_win = (n_val - 1) // T
        with torch.no_grad():
            for i in range(0, n_win, 64):
                s = n_train + torch.arange(i, min(n_win, i + 64)) * T
                x = enc[s[:, None] + offsets]
                y = enc[s[:, None] + offsets + 1]
                nats += F.cross_entropy(model(x).reshape(-1, vocab),
                                        y.reshape(-1), reduction="sum").item()
                count += y.numel()
        out["bits_per_char"] = nats / count / math.log(2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
