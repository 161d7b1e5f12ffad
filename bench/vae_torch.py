#!/usr/bin/env python3
"""PyTorch reference for experiments/vae_fashion.yaml: the classic example
VAE (784-400-20-400-784, ReLU, Bernoulli decoder, Adam 1e-3, batch 128) on
Fashion-MNIST. Prints seconds per epoch and the test negative ELBO in nats
per image, as JSON on the last line. With --bench-steps N it only times
N training steps after --warmup steps (batch --batch, hidden width
--hidden) and prints ms per step instead (bench/scaling.sh).

Run it at PyTorch's best configuration on this machine:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    /usr/bin/python3 bench/vae_torch.py --epochs 10
"""
import argparse
import gzip
import json
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
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h * w).astype(np.float32) / 255.0


class VAE(nn.Module):
    def __init__(self, latent=20, hidden=400):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def loss_sum(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def bench(a, train):
    """ms per training step (sum-reduced loss, as in training) of batch
    a.batch, after a.warmup steps; JSON on the last line."""
    model = VAE(hidden=a.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, times = train.shape[0], []
    for i in range(a.warmup + a.bench_steps):
        j = (i * a.batch) % (n - a.batch)
        x = train[j:j + a.batch]
        t0 = time.perf_counter()
        opt.zero_grad()
        logits, mu, logvar = model(x)
        loss = loss_sum(logits, x, mu, logvar)
        loss.backward()
        opt.step()
        loss.item()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"framework": "pytorch", "threads": a.threads,
                      "batch": a.batch, "hidden": a.hidden,
                      "steps": a.bench_steps,
                      "ms_per_step": 1000.0 * sum(times) / len(times)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench-steps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=400)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train = torch.from_numpy(idx_images("train-images-idx3-ubyte.gz"))
    if a.bench_steps > 0:
        bench(a, train)
        return
    test = torch.from_numpy(idx_images("t10k-images-idx3-ubyte.gz"))
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    epoch_times = []
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(train.shape[0])
        total = 0.0
        for i in range(0, train.shape[0], 128):
            x = train[perm[i:i + 128]]
            opt.zero_grad()
            logits, mu, logvar = model(x)
            loss = loss_sum(logits, x, mu, logvar)
            loss.backward()
            opt.step()
            total += loss.item()
        epoch_times.append(time.perf_counter() - t0)
        print(f"epoch {epoch + 1}: train loss {total / train.shape[0]:.3f} "
              f"({epoch_times[-1]:.2f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        test_loss = 0.0
        for i in range(0, test.shape[0], 500):
            x = test[i:i + 500]
            logits, mu, logvar = model(x)
            test_loss += loss_sum(logits, x, mu, logvar).item()
    result = {"framework": "pytorch", "torch": torch.__version__,
              "threads": a.threads, "epochs": a.epochs,
              "s_per_epoch": sum(epoch_times) / len(epoch_times),
              "test_neg_elbo": test_loss / test.shape[0]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
