#!/usr/bin/env python3
"""PyTorch reference for experiments/dcgan_fashion.yaml: the common 28x28
DCGAN (G: linear 64 -> 128@7x7 + BN + ReLU, 4x4 s2 transposed conv -> 64@14x14
+ BN + ReLU, 4x4 s2 transposed conv -> 1@28x28, tanh; D: 4x4 s2 conv 64 +
LeakyReLU 0.2, 4x4 s2 conv 128 + BN + LeakyReLU, linear -> 1), DCGAN init,
non-saturating loss, Adam 2e-4 betas (0.5, 0.999), batch 64, Fashion-MNIST
scaled to [-1, 1]. The training step is the pytorch/examples dcgan one:
one G forward, D on real and on the detached fake, then G through D.

Two modes; both print JSON on the last line.
  --bench-steps N   time N training steps (after --warmup steps) and print
                    ms per step (D step + G step)
  --epochs N        train N epochs, then write --samples images drawn from
                    G in eval mode, in [-1, 1], to --out as safetensors
                    (one F32 tensor "samples" [n, 1, 28, 28]) for `dgm eval`

Run it at PyTorch's best configuration on this machine:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    /usr/bin/python3 bench/gan_torch.py --bench-steps 200
"""
import argparse
import gzip
import json
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def idx_images(name):
    with gzip.open(f"{DATA}/{name}", "rb") as f:
        raw = f.read()
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w)
    return x.astype(np.float32) / 127.5 - 1.0


class Generator(nn.Module):
    def __init__(self, latent=64, width=64):
        super().__init__()
        self.c0 = 2 * width
        self.fc = nn.Linear(latent, self.c0 * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm2d(self.c0)
        self.deconv1 = nn.ConvTranspose2d(self.c0, width, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.deconv2 = nn.ConvTranspose2d(width, 1, 4, 2, 1)

    def forward(self, z):
        h = F.relu(self.bn0(self.fc(z).view(-1, self.c0, 7, 7)))
        h = F.relu(self.bn1(self.deconv1(h)))
        return torch.tanh(self.deconv2(h))


class Discriminator(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 4, 2, 1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.head = nn.Linear(2 * width * 7 * 7, 1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        return self.head(h.flatten(1))


def dcgan_init(m):
    """DCGAN's init, as dgm's dcgan blocks with init: normal."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def train_step(G, D, optG, optD, x, latent):
    z = torch.randn(x.shape[0], latent)
    fake = G(z)
    # D step: softplus(-D(x)) + softplus(D(G(z))) = BCE with real/fake labels
    optD.zero_grad(set_to_none=True)
    d_loss = (F.softplus(-D(x)) + F.softplus(D(fake.detach()))).mean()
    d_loss.backward()
    optD.step()
    # G step: non-saturating, softplus(-D(G(z)))
    optG.zero_grad(set_to_none=True)
    g_loss = F.softplus(-D(fake)).mean()
    g_loss.backward()
    optG.step()
    return d_loss.item(), g_loss.item()


def write_safetensors(path, name, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    header = {name: {"dtype": "F32", "shape": list(arr.shape),
                     "data_offsets": [0, arr.nbytes]},
              "__metadata__": {"source": "bench/gan_torch.py"}}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(arr.tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-steps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--out", default="gan_torch_samples.safetensors")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train = torch.from_numpy(idx_images("train-images-idx3-ubyte.gz"))
    G, D = Generator(a.latent), Discriminator()
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    result = {"framework": "pytorch", "torch": torch.__version__,
              "threads": a.threads, "batch": a.batch}
    if a.bench_steps > 0:
        n = train.shape[0]
        times = []
        for i in range(a.warmup + a.bench_steps):
            j = (i * a.batch) % (n - a.batch)
            x = train[j:j + a.batch]
            t0 = time.perf_counter()
            train_step(G, D, optG, optD, x, a.latent)
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
        result["ms_per_step"] = 1000.0 * sum(times) / len(times)
        result["ms_per_step_median"] = 1000.0 * float(np.median(times))
        result["steps"] = a.bench_steps
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(train.shape[0])
        dl = gl = 0.0
        steps = 0
        for i in range(0, train.shape[0], a.batch):
            x = train[perm[i:i + a.batch]]
            d, g = train_step(G, D, optG, optD, x, a.latent)
            dl, gl, steps = dl + d, gl + g, steps + 1
        print(f"epoch {epoch + 1}: D {dl / steps:.4f} G {gl / steps:.4f} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if a.epochs > 0:
        G.eval()
        out = []
        with torch.no_grad():
            for i in range(0, a.samples, 500):
                k = min(500, a.samples - i)
                out.append(G(torch.randn(k, a.latent)).numpy())
        write_safetensors(a.out, "samples", np.concatenate(out))
        result.update(epochs=a.epochs, samples=a.samples, out=a.out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
