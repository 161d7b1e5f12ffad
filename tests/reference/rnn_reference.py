# rnn_reference.py - the PyTorch 1.13 numbers test_ops_rnn.c embeds for its
# fixed small case: a 2-layer LSTM and GRU (T=3, N=2, I=3, H=2) with h0/c0,
# outputs y, h_n, c_n and the gradients of
#   loss = sum(y * wy) + sum(h_n * wh) + sum(c_n * wc)
# for x, h0, c0 and every weight. Values come from closed formulas the C
# test reproduces (fill below). Run: /usr/bin/python3 rnn_reference.py
import math

import torch

T, N, I, H, L = 3, 2, 3, 2, 2


def fill(n, seed):
    return [0.5 * math.sin(0.7 * k + seed) for k in range(n)]


def lw(n, seed):  # loss weights
    return [1.0 + 0.5 * math.cos(0.3 * k + seed) for k in range(n)]


def t(vals, shape, grad=True):
    return torch.tensor(vals, dtype=torch.float32).reshape(shape).requires_grad_(grad)


def emit(name, ten):
    v = ten.detach().reshape(-1).tolist()
    print("static const float %s[%d] = {" % (name, len(v)))
    for i in range(0, len(v), 4):
        print("    " + ", ".join("%.9gf" % a for a in v[i:i + 4]) + ",")
    print("};")


for cell, G in (("lstm", 4), ("gru", 3)):
    mod = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, num_layers=L)
    with torch.no_grad():
        for l in range(L):
            K = I if l == 0 else H
            shapes = [(G * H, K), (G * H, H), (G * H,), (G * H,)]
            names = ["weight_ih_l%d", "weight_hh_l%d", "bias_ih_l%d", "bias_hh_l%d"]
            for k in range(4):
                p = getattr(mod, names[k] % l)
                n = 1
                for s in shapes[k]:
                    n *= s
                p.copy_(torch.tensor(fill(n, 10 + 4 * l + k)).reshape(shapes[k]))
    x = t(fill(T * N * I, 1), (T, N, I))
    h0 = t(fill(L * N * H, 2), (L, N, H))
    c0 = t(fill(L * N * H, 3), (L, N, H))
    if cell == "lstm":
        y, (hn, cn) = mod(x, (h0, c0))
    else:
        y, hn = mod(x, h0)
    loss = (y * t(lw(T * N * H, 0), (T, N, H), False)).sum() + \
        (hn * t(lw(L * N * H, 1), (L, N, H), False)).sum()
    if cell == "lstm":
        loss = loss + (cn * t(lw(L * N * H, 2), (L, N, H), False)).sum()
    loss.backward()
    emit("%s_y" % cell, y)
    emit("%s_hn" % cell, hn)
    if cell == "lstm":
        emit("%s_cn" % cell, cn)
    emit("%s_dx" % cell, x.grad)
    emit("%s_dh0" % cell, h0.grad)
    if cell == "lstm":
        emit("%s_dc0" % cell, c0.grad)
    for l in range(L):
        for k, nm in enumerate(["weight_ih_l%d", "weight_hh_l%d", "bias_ih_l%d", "bias_hh_l%d"]):
            emit("%s_d%s" % (cell, (nm % l).replace("weight_", "w").replace("bias_", "b")),
                 getattr(mod, nm % l).grad)
