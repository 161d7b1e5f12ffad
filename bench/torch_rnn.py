# torch_rnn.py - PyTorch's forward+backward time for the cases of
# bench/bench_rnn.c (same names, same shapes), one "name<TAB>ms" per line.
#   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
#       /usr/bin/python3 bench/torch_rnn.py > /tmp/torch_rnn.txt
import time

import torch

torch.set_num_threads(2)

# name, module, T, N, input, hidden, layers
CASES = [
    ("char-lstm T=64 N=32 64->256x2", torch.nn.LSTM, 64, 32, 64, 256, 2),
    ("char-gru T=64 N=32 64->256x2", torch.nn.GRU, 64, 32, 64, 256, 2),
]

WARM, REPS = 3, 15

for name, cls, T, N, I, H, L in CASES:
    m = cls(I, H, num_layers=L)
    m.train()
    x = (torch.rand(T, N, I) * 2 - 1).requires_grad_(True)
    times = []
    for it in range(WARM + REPS):
        t0 = time.perf_counter()
        y, _ = m(x)
        y.sum().backward()
        t = time.perf_counter() - t0
        if it >= WARM:
            times.append(t)
    times.sort()
    print("%s\t%.4f" % (name, times[REPS // 2] * 1e3), flush=True)
