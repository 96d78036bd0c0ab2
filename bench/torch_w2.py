#!/usr/bin/env python3
"""torch_w2.py -- workload W2 in PyTorch, for bench/run.

    torch_w2.py DIGITS.csv INIT.safetensors [EPOCHS]

As bench/ref_digits.c: 64 -> linear(256) -> relu -> linear(256) -> relu ->
linear(10), softmax cross-entropy (mean over the batch), f32, SGD lr 0.1,
minibatches of 64 rows in dataset order (1797 rows: 29 steps an epoch,
the last of 5 rows), 50 epochs by default.  One thread.  Only the
training loop is timed.  Prints "final train loss", "final train
accuracy", "train time T s", "steps N", "ns/step X".
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

BATCH = 64


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


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    epochs = int(argv[2]) if len(argv) == 3 else 50
    torch.set_num_threads(1)
    with open(argv[0]) as f:
        rows = [r for r in list(csv.reader(f))[1:] if r]
    x = torch.tensor([[float(v) for v in r[:64]] for r in rows], dtype=torch.float32)
    y = torch.tensor([int(float(r[64])) for r in rows], dtype=torch.long)
    init = load_safetensors(argv[1])

    layers = [torch.nn.Linear(64, 256), torch.nn.Linear(256, 256), torch.nn.Linear(256, 10)]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(),
                                layers[2])
    with torch.no_grad():
        for i, lin in enumerate(layers, 1):
            lin.weight.copy_(init["linear%d.W" % i].reshape(lin.weight.shape).float())
            lin.bias.copy_(init["linear%d.b" % i].reshape(lin.bias.shape).float())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lossf = torch.nn.CrossEntropyLoss()

    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, x.shape[0], BATCH)]
    steps = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
            steps += 1
    secs = time.perf_counter() - t0

    with torch.no_grad():
        logits = model(x)
        ltr = torch.nn.functional.cross_entropy(logits.double(), y).item()
        acc = (logits.argmax(1) == y).double().mean().item()
    print("final train loss %.9g" % ltr)
    print("final train accuracy %.9g" % acc)
    print("train time %.9f s" % secs)
    print("steps %d" % steps)
    print("ns/step %.3f" % (secs * 1e9 / steps if steps else 0.0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
