#!/usr/bin/env python3
"""torch_w1.py -- workload W1 in PyTorch, for bench/run.

    torch_w1.py TRAIN.csv VALID.csv INIT.safetensors [EPOCHS]

The seed's training as bench/ref_moons.c does it: 2 -> linear(4) -> relu
-> linear(4) -> relu -> linear(4) -> relu -> linear(1), per-sample loss
sum((t - y)^2), SGD lr 0.05, batch 1 in dataset order, f64, 400 epochs
by default (bench/run uses fewer: it costs ~0.1 ms a step).  One thread.
Only the training loop is timed.  Prints the lines bench/run reads:
"final train loss", "final valid loss", "train time T s", "steps N",
"ns/step X".
"""
import csv
import json
import os
import struct
import sys
import time

# one thread for OpenBLAS too (Debian's PyTorch calls the system BLAS, whose
# pthread build otherwise starts a thread per core)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    hdr = json.loads(buf[8:8 + n])
    blob = buf[8 + n:]
    types = {"F64": torch.float64, "F32": torch.float32}
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(blob[b:e]), dtype=types[t["dtype"]]) \
            .reshape(t["shape"]).clone()
    return out


def load_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    rows = [[float(v) for v in r] for r in rows if r]
    x = torch.tensor([r[:2] for r in rows], dtype=torch.float64)
    t = torch.tensor([r[2:3] for r in rows], dtype=torch.float64)
    return x, t


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    epochs = int(argv[3]) if len(argv) == 4 else 400
    torch.set_num_threads(1)
    xtr, ttr = load_csv(argv[0])
    xva, tva = load_csv(argv[1])
    init = load_safetensors(argv[2])

    layers = [torch.nn.Linear(2, 4), torch.nn.Linear(4, 4),
              torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(),
                                layers[2], torch.nn.ReLU(), layers[3]).double()
    with torch.no_grad():
        for i, lin in enumerate(layers, 1):
            lin.weight.copy_(init["linear%d.W" % i].reshape(lin.weight.shape))
            lin.bias.copy_(init["linear%d.b" % i].reshape(lin.bias.shape))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    # one-row views made before timing, as the references lay out their data
    xs = [xtr[r:r + 1] for r in range(xtr.shape[0])]
    ts = [ttr[r:r + 1] for r in range(ttr.shape[0])]
    steps = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, t in zip(xs, ts):
            opt.zero_grad(set_to_none=True)
            loss = ((t - model(x)) ** 2).sum()
            loss.backward()
            opt.step()
            steps += 1
    secs = time.perf_counter() - t0

    with torch.no_grad():
        ltr = ((ttr - model(xtr)) ** 2).sum(1).mean().item()
        lva = ((tva - model(xva)) ** 2).sum(1).mean().item()
    print("final train loss %.17g" % ltr)
    print("final valid loss %.17g" % lva)
    print("train time %.9f s" % secs)
    print("steps %d" % steps)
    print("ns/step %.3f" % (secs * 1e9 / steps if steps else 0.0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
