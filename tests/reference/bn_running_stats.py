# bn_running_stats.py - the PyTorch numbers tests/test_ops_conv.c embeds for
# dgm_batch_norm (running statistics, eval output). Run:
#   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
#       /usr/bin/python3 tests/reference/bn_running_stats.py
import numpy as np
import torch


def make_x(shape, step):
    # Same formula as bn_input() in the C test, evaluated in double.
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    x = np.sin(0.37 * i + step) * 2.0 + 0.3 * ((i * 7) % 5)
    return torch.tensor(x.astype(np.float32).reshape(shape))


def run(shape):
    c = shape[1]
    bn = torch.nn.BatchNorm2d(c) if len(shape) == 4 else torch.nn.BatchNorm1d(c)
    bn.momentum = 0.1
    bn.eps = 1e-5
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 0.5, 2.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.1, -0.2]))
    bn.train()
    y0 = bn(make_x(shape, 0))
    bn(make_x(shape, 1))
    bn.eval()
    y2 = bn(make_x(shape, 2))
    fmt = lambda t: ", ".join("%.7ef" % v for v in t.detach().flatten().tolist())
    print("shape", list(shape))
    print("  running_mean {%s}" % fmt(bn.running_mean))
    print("  running_var  {%s}" % fmt(bn.running_var))
    print("  train y0[0:6] {%s}" % fmt(y0.flatten()[:6]))
    print("  eval  y2[0:6] {%s}" % fmt(y2.flatten()[:6]))


run((4, 3, 2, 2))
run((5, 3))
