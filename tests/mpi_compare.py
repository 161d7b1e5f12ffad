#!/usr/bin/env python3
"""mpi_compare.py - compare what two runs wrote (tests/test_mpi.sh).

  mpi_compare.py A.safetensors B.safetensors TOL [--weights]
      every tensor of two checkpoints: TOL 0 asks for equal bytes; else
      |a - b| / |a| <= TOL per tensor (2-norms: one element's rounding
      noise in a large tensor does not count as the tensor's error). --weights: parameters only
      (not the optimizer slots, whose second moments of tiny gradients
      amplify rounding, nor the data RNG).
  mpi_compare.py --metrics A.jsonl B.jsonl TOL
      every number of every line but "time", relative to max(|a|, 1e-3)
      (TOL 0: equal).
Exit 0 when they agree, 1 (with the worst tensor named) when not."""
import json, struct, sys

import numpy as np

DT = {"F32": np.float32, "F64": np.float64, "U64": np.uint64,
      "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            out[k] = v
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DT[v["dtype"]])
    return out


def checkpoints(a, b, tol, weights):
    A, B = load(a), load(b)
    if set(A) != set(B):
        print("tensors differ:", sorted(set(A) ^ set(B)))
        return 1
    worst, name = 0.0, None
    for k in sorted(A):
        if k == "__metadata__":
            # everything but the time it took
            ma = {m: v for m, v in A[k].items() if m != "dgm.train_time"}
            mb = {m: v for m, v in B[k].items() if m != "dgm.train_time"}
            if ma != mb:
                print("metadata differ:", A[k], B[k])
                return 1
            continue
        if weights and (k.startswith("optim.") or k.startswith("rng.")
                        or k.startswith("data.")):
            continue
        if tol == 0:
            if A[k].tobytes() != B[k].tobytes():
                print(f"{k}: not bit-identical")
                return 1
            continue
        x, y = A[k].astype(np.float64), B[k].astype(np.float64)
        d = np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30)
        if d > worst:
            worst, name = d, k
    if tol == 0:
        print("bit-identical")
        return 0
    print(f"worst relative difference {worst:.3g} ({name})")
    return 0 if worst <= tol else 1


def metrics(a, b, tol):
    la = [json.loads(l) for l in open(a)]
    lb = [json.loads(l) for l in open(b)]
    if len(la) != len(lb):
        print(f"{len(la)} lines against {len(lb)}")
        return 1
    worst = 0.0

    def walk(x, y, where):
        nonlocal worst
        for k, v in x.items():
            if k == "time":
                continue
            if k not in y:
                raise KeyError(f"{where}{k} missing")
            if isinstance(v, dict):
                walk(v, y[k], f"{where}{k}.")
            elif isinstance(v, (int, float)):
                d = abs(v - y[k]) / max(abs(v), 1e-3)
                worst = max(worst, d)
    for x, y in zip(la, lb):
        walk(x, y, "")
    print(f"metrics: worst relative difference {worst:.3g}")
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    if sys.argv[1] == "--metrics":
        sys.exit(metrics(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    sys.exit(checkpoints(sys.argv[1], sys.argv[2], float(sys.argv[3]),
                         "--weights" in sys.argv[4:]))
