#!/usr/bin/python3
"""Reference numbers for tests/test_optim.c, from PyTorch 1.13.

Rerun (from the repository root) after changing a case:
    /usr/bin/python3 tests/reference/gen_optim.py > tests/reference/optim.txt

Each optimizer case runs STEPS updates of two parameters, p0 [7] and
p1 [2, 2], whose initial values and gradients are exact binary fractions
given by the formulas below (test_optim.c computes the same ones), at a
learning rate that changes every step, as the host's schedules make it.
Then the same for torch.optim.lr_scheduler schedules.
"""
import torch

STEPS = 6
SHAPES = [(7,), (2, 2)]


def init(j, i):
    return ((i * 5 + j * 2) % 9 - 4) / 8.0


def grad(j, i, t):
    return ((i * 7 + t * 3 + j * 5) % 11 - 5) / 4.0


def lr_at(base, t):
    return base * (1.0 - 0.05 * t)


# name, plugin, the YAML the test validates, torch class and arguments
CASES = [
    ("sgd_plain", "sgd", "{lr: 0.1}", torch.optim.SGD, dict(lr=0.1)),
    ("sgd_momentum", "sgd", "{lr: 0.1, momentum: 0.9}", torch.optim.SGD,
     dict(lr=0.1, momentum=0.9)),
    ("sgd_damp_wd", "sgd",
     "{lr: 0.05, momentum: 0.8, dampening: 0.25, weight_decay: 0.01}",
     torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.25,
                           weight_decay=0.01)),
    ("sgd_nesterov", "sgd",
     "{lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.001}",
     torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True,
                           weight_decay=0.001)),
    ("adam_default", "adam", "{lr: 0.01}", torch.optim.Adam, dict(lr=0.01)),
    ("adam_wd", "adam",
     "{lr: 0.02, beta1: 0.5, beta2: 0.9, eps: 1.0e-6, weight_decay: 0.1}",
     torch.optim.Adam, dict(lr=0.02, betas=(0.5, 0.9), eps=1e-6,
                            weight_decay=0.1)),
    ("adam_amsgrad", "adam", "{lr: 0.01, amsgrad: true}", torch.optim.Adam,
     dict(lr=0.01, amsgrad=True)),
    ("adamw_default", "adamw", "{lr: 0.01}", torch.optim.AdamW,
     dict(lr=0.01)),
    ("adamw_amsgrad", "adamw",
     "{lr: 0.05, weight_decay: 0.2, amsgrad: true, beta2: 0.99}",
     torch.optim.AdamW, dict(lr=0.05, weight_decay=0.2, amsgrad=True,
                             betas=(0.9, 0.99))),
    ("rmsprop_default", "rmsprop", "{lr: 0.01}", torch.optim.RMSprop,
     dict(lr=0.01)),
    ("rmsprop_full", "rmsprop",
     "{lr: 0.005, alpha: 0.9, eps: 1.0e-6, weight_decay: 0.05, "
     "momentum: 0.7, centered: true}",
     torch.optim.RMSprop, dict(lr=0.005, alpha=0.9, eps=1e-6,
                               weight_decay=0.05, momentum=0.7,
                               centered=True)),
]


def fmt(t):
    return " ".join("%.9g" % v for v in t.detach().reshape(-1).tolist())


def optimizer_cases():
    for name, plugin, yaml, cls, kw in CASES:
        ps = []
        for j, shape in enumerate(SHAPES):
            n = 1
            for d in shape:
                n *= d
            v = torch.tensor([init(j, i) for i in range(n)],
                             dtype=torch.float32).reshape(shape)
            ps.append(torch.nn.Parameter(v))
        opt = cls(ps, **kw)
        base = kw["lr"]
        print("case %s %s %s" % (name, plugin, yaml))
        for t in range(1, STEPS + 1):
            lr = lr_at(base, t)
            for g in opt.param_groups:
                g["lr"] = lr
            for j, p in enumerate(ps):
                n = p.numel()
                p.grad = torch.tensor([grad(j, i, t) for i in range(n)],
                                      dtype=torch.float32).reshape(p.shape)
            opt.step()
            print("step %d %.17g" % (t, lr))
            for j, p in enumerate(ps):
                print("p%d %s" % (j, fmt(p)))
        for j, p in enumerate(ps):
            for key, val in sorted(opt.state[p].items()):
                if key == "step" or val is None:
                    continue
                print("slot p%d %s %s" % (j, key, fmt(val)))
        print("end")


SCHEDULES = [
    ("step", "{lr: 0.1, schedule: step, step_size: 3, gamma: 0.5}", 10,
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    ("cosine", "{lr: 0.1, schedule: cosine, min_lr: 0.001}", 10,
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10,
                                                          eta_min=0.001)),
    ("linear", "{lr: 0.1, schedule: linear, min_lr: 0.02}", 10,
     lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1.0,
                                                 end_factor=0.2,
                                                 total_iters=10)),
]


def schedule_cases():
    for name, yaml, total, make in SCHEDULES:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sch = make(opt)
        print("sched %s %d %s" % (name, total, yaml))
        # Past total_steps torch's cosine climbs again (it is periodic);
        # dgm holds min_lr, so only steps 0..total are compared.
        for s in range(total + 1):
            print("lr %d %.17g" % (s, opt.param_groups[0]["lr"]))
            opt.step()
            sch.step()
        print("end")


if __name__ == "__main__":
    print("# generated by tests/reference/gen_optim.py with torch %s; "
          "rerun: /usr/bin/python3 tests/reference/gen_optim.py > "
          "tests/reference/optim.txt" % torch.__version__)
    optimizer_cases()
    schedule_cases()
