#!/usr/bin/env python3
"""bench/python_overhead.py -- nnc driven from Python: the cost of a
train_step call from Python over the compiled step itself, and W1/W2 as
Python loops against the same loops in PyTorch.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [-n ROUNDS] [--calls N] [--torch-epochs E]

(or with the package installed: docs/python.md). Needs cc; PyTorch
(python3-torch) for its rows, which are left out without it.

- per call: bench/step_loop.c (built here against the package's libnnc.so)
  calls the compiled train_step from C on the train rows in order; the same
  calls from Python are m.train_step(x, t) on row views made before timing
  (as bench/torch_w1.py lays out its rows), and, for the floor of ctypes
  itself, the bare function pointer on precomputed addresses. Each figure is
  the fastest of ROUNDS rounds of N calls, in CPU time (steadier than wall
  time on a shared machine); the overhead is Python's minus C's.
- W1 (moons, per-sample SGD, f64, 400 epochs x 320 rows, the seed's data
  and initial weights) and W2 (digits 64-256-256-10, batch 64, f32, 50
  epochs x 29 steps): a Python loop of train_step and fit() (the compiled
  epoch loop), in CPU time, and bench/torch_w1.py / torch_w2.py (E epochs
  of W1: a PyTorch step costs ~0.1 ms), by their own wall-clock timers,
  in ns per step.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import nnc
from nnc import _lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "bench")
DATA = os.path.join(ROOT, "tests", "data")
W1 = (os.path.join(B, "w1_moons.nn"), os.path.join(DATA, "init_seed0.safetensors"))
W2 = (os.path.join(B, "w2_digits.nn"), os.path.join(DATA, "digits_init_seed0.safetensors"))


def build_step_loop(tmp):
    header = os.path.join(ROOT, "include")
    generated = os.path.join(os.path.dirname(_lib.path), "include")  # nnc_version.h, from the build
    exe = os.path.join(tmp, "step_loop")
    subprocess.run(["cc", "-O2", os.path.join(B, "step_loop.c"), "-I", header, "-I", generated, _lib.path,
                    "-Wl,-rpath," + os.path.dirname(_lib.path), "-o", exe], check=True)
    return exe


def c_ns_per_call(exe, workload, calls, rounds):
    out = subprocess.run([exe, workload[0], workload[1], str(calls), str(rounds)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[1])


def model(workload):
    m = nnc.Model(workload[0])
    m.load(workload[1])
    return m


def batches(m):
    """The train rows as views of max_batch rows (whole batches only, as
    step_loop.c takes them), made before timing."""
    x, t = m.data()[:2]
    k = m.max_batch
    return [(x[r:r + k], t[r:r + k]) for r in range(0, len(x) - k + 1, k)]


def py_ns_per_call(m, calls, rounds):
    rows = batches(m)
    step = m.train_step
    best = float("inf")
    for _ in range(rounds):
        it = [rows[i % len(rows)] for i in range(calls)]
        t0 = time.process_time()
        for x, t in it:
            step(x, t)
        best = min(best, (time.process_time() - t0) * 1e9 / calls)
    return best


def ctypes_ns_per_call(m, calls, rounds):
    rows = [(x.ctypes.data, t.ctypes.data, len(x)) for x, t in batches(m)]
    f, buf = m._c_train_step, m._bufp
    best = float("inf")
    for _ in range(rounds):
        it = [rows[i % len(rows)] for i in range(calls)]
        t0 = time.process_time()
        for x, t, n in it:
            f(buf, x, t, n)
        best = min(best, (time.process_time() - t0) * 1e9 / calls)
    return best


def python_loop(workload, epochs):
    """ns per step of `epochs` epochs as a Python loop of train_step over
    all rows in order (the last batch may be short), and the final loss."""
    m = model(workload)
    x, t = m.data()[:2]
    k = m.max_batch
    rows = [(x[r:r + k], t[r:r + k]) for r in range(0, len(x), k)]
    step = m.train_step
    t0 = time.process_time()
    for _ in range(epochs):
        for xb, tb in rows:
            step(xb, tb)
    secs = time.process_time() - t0
    return secs * 1e9 / (epochs * len(rows)), m.evaluate(x, t)


def fit_loop(workload):
    """ns per step of fit() in CPU time (with its data loading and, for W1,
    the validation set's loss after each epoch)."""
    m = model(workload)
    t0 = time.process_time()
    h = m.fit()
    return (time.process_time() - t0) * 1e9 / h.steps, h.final_train_loss


def torch_ns(script, args):
    r = subprocess.run([sys.executable, os.path.join(B, script), *args], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return float(next(l.split()[1] for l in r.stdout.splitlines() if l.startswith("ns/step")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=5, help="rounds (the fastest counts)")
    ap.add_argument("--calls", type=int, default=100000, help="calls a round for the per-call figures")
    ap.add_argument("--torch-epochs", type=int, default=10, help="W1 epochs in PyTorch")
    a = ap.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if l.startswith("Model name")), platform.processor())
    print("nnc %s, Python %s, numpy %s, %s; load average %s at the start" % (
        nnc.__version__, platform.python_version(), np.__version__, cpu,
        " ".join("%.2f" % v for v in os.getloadavg())))
    print()
    tmp = tempfile.mkdtemp()
    try:
        exe = build_step_loop(tmp)
        print("| per train_step call | compiled step from C | from Python (m.train_step) | overhead | "
              "bare ctypes call |")
        print("|---|---|---|---|---|")
        for name, w, calls in (("W1 moons, batch 1, f64", W1, a.calls), ("W2 digits, batch 64, f32", W2,
                                                                         max(1, a.calls // 100))):
            m = model(w)
            c = c_ns_per_call(exe, w, calls, a.n)
            p = py_ns_per_call(m, calls, a.n)
            raw = ctypes_ns_per_call(m, calls, a.n)
            print("| %s | %.0f ns | %.0f ns | %.2f us | %.0f ns |" % (name, c, p, (p - c) / 1000, raw))
        print()
        print("| workload, ns/step | Python loop of train_step | fit() (compiled epochs) | PyTorch loop |")
        print("|---|---|---|---|")
        py1, loss1 = python_loop(W1, 400)
        fit1, fitloss1 = fit_loop(W1)
        t1 = torch_ns("torch_w1.py", [os.path.join(DATA, "moons_train.csv"), os.path.join(DATA, "moons_test.csv"),
                                      W1[1], str(a.torch_epochs)]) if have_torch else None
        print("| W1 moons, 128,000 steps (PyTorch: %d epochs) | %.0f | %.0f | %s |" % (
            a.torch_epochs, py1, fit1, "%.0f" % t1 if t1 else "(no torch)"))
        py2, loss2 = python_loop(W2, 50)
        fit2, fitloss2 = fit_loop(W2)
        t2 = torch_ns("torch_w2.py", [os.path.join(ROOT, "examples", "data", "digits.csv"), W2[1]]) \
            if have_torch else None
        print("| W2 digits, 1,450 steps | %.0f | %.0f | %s |" % (py2, fit2, "%.0f" % t2 if t2 else "(no torch)"))
        print()
        print("final train loss: W1 loop %.17g, fit %.17g; W2 loop %.9g, fit %.9g" % (loss1, fitloss1, loss2,
                                                                                      fitloss2))
        print("load average %s at the end" % " ".join("%.2f" % v for v in os.getloadavg()))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
