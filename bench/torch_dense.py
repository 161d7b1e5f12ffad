# torch_dense.py - PyTorch's forward+backward time for the cases of
# bench/bench_dense.c (same names, same shapes), one "name<TAB>ms" line each.
#   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
#       /usr/bin/python3 bench/torch_dense.py > /tmp/torch_dense.txt
import time

import torch

torch.set_num_threads(2)

# name, kind (0 linear, 1 batched a @ b^T, 2 relu, 3 sigmoid), n, in, out, batch
CASES = [
    ("vae.fc1 linear [128,784]->400", 0, 128, 784, 400, 0),
    ("vae.mu linear [128,400]->20", 0, 128, 400, 20, 0),
    ("vae.fc3 linear [128,20]->400", 0, 128, 20, 400, 0),
    ("vae.fc4 linear [128,400]->784", 0, 128, 400, 784, 0),
    ("attn matmul [32x4,64,32]@^T", 1, 64, 32, 64, 128),
    ("relu [128,400]", 2, 128, 400, 0, 0),
    ("sigmoid [128,784]", 3, 128, 784, 0, 0),
]


def run(kind, t):
    if kind == 0:
        y = torch.nn.functional.linear(t[0], t[1], t[2])
    elif kind == 1:
        y = torch.matmul(t[0], t[1].transpose(1, 2))
    elif kind == 2:
        y = torch.relu(t[0])
    else:
        y = torch.sigmoid(t[0])
    y.sum().backward()


for name, kind, n, i, o, b in CASES:
    if kind == 0:
        t = [torch.randn(n, i), torch.randn(o, i, requires_grad=True),
             torch.randn(o, requires_grad=True)]
    elif kind == 1:
        t = [torch.randn(b, n, i, requires_grad=True),
             torch.randn(b, o, i, requires_grad=True)]
    else:
        t = [torch.randn(n, i, requires_grad=True)]
    for _ in range(5):
        run(kind, t)
    ts = []
    for _ in range(50):
        for x in t:
            x.grad = None
        t0 = time.perf_counter()
        run(kind, t)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    print(f"{name}\t{ts[25] * 1e3:.4f}")
