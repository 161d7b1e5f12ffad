# torch_conv.py - PyTorch's forward+backward time for the cases of
# bench/bench_conv.c (same names, same shapes), one "name<TAB>ms" per line.
#   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
#       /usr/bin/python3 bench/torch_conv.py > /tmp/torch_conv.txt
import time

import torch

torch.set_num_threads(2)

# name, kind (0 conv, 1 transpose, 2 batch norm), x shape, out channels,
# kernel, input needs grad
CASES = [
    ("dcgan.D.conv1 1->64 [64,1,28,28]", 0, (64, 1, 28, 28), 64, 4, False),
    ("dcgan.D.conv2 64->128 [64,64,14,14]", 0, (64, 64, 14, 14), 128, 4, True),
    ("dcgan.G.deconv1 128->64 [64,128,7,7]", 1, (64, 128, 7, 7), 64, 4, True),
    ("dcgan.G.deconv2 64->1 [64,64,14,14]", 1, (64, 64, 14, 14), 1, 4, True),
    ("dcgan.bn [64,128,7,7]", 2, (64, 128, 7, 7), 0, 0, True),
    ("dcgan.bn [64,64,14,14]", 2, (64, 64, 14, 14), 0, 0, True),
    ("vae.enc.conv1 1->32 [128,1,28,28]", 0, (128, 1, 28, 28), 32, 4, False),
    ("vae.enc.conv2 32->64 [128,32,14,14]", 0, (128, 32, 14, 14), 64, 4, True),
    ("vae.dec.deconv1 64->32 [128,64,7,7]", 1, (128, 64, 7, 7), 32, 4, True),
    ("vae.dec.deconv2 32->1 [128,32,14,14]", 1, (128, 32, 14, 14), 1, 4, True),
    ("vae.bn [128,32,14,14]", 2, (128, 32, 14, 14), 0, 0, True),
    ("vae.bn [128,64,7,7]", 2, (128, 64, 7, 7), 0, 0, True),
]

WARM, REPS = 3, 15

for name, kind, xs, oc, k, xg in CASES:
    c = xs[1]
    if kind == 0:
        m = torch.nn.Conv2d(c, oc, k, stride=2, padding=1)
    elif kind == 1:
        m = torch.nn.ConvTranspose2d(c, oc, k, stride=2, padding=1)
    else:
        m = torch.nn.BatchNorm2d(c)
    m.train()
    x = torch.rand(xs) * 2 - 1
    x.requires_grad_(xg)
    times = []
    for it in range(WARM + REPS):
        t0 = time.perf_counter()
        y = m(x)
        y.sum().backward()
        t = time.perf_counter() - t0
        if it >= WARM:
            times.append(t)
    times.sort()
    print("%s\t%.4f" % (name, times[REPS // 2] * 1e3), flush=True)
