#!/usr/bin/env python3
"""examples/python/moons.py: nnc from Python, notebook style.

    python3 examples/python/moons.py          # from the source tree, after pip install ./python

Each block below is a notebook cell. It compiles examples/moons.nn, looks at
its parameters, gradients and code, trains it (one step at a time, then the
file's 400 epochs), predicts, saves and loads; then reproduces the seed's
moons run (tests/data: its data, its initial weights, 400 epochs of
per-sample SGD) three times: with fit(), with a Python loop of train_epoch
calls (fit()'s numbers, bit for bit) and with a Python loop of train_step
calls in the data's order (the same steps, equal to rounding: not bit for
bit).
"""
import os
import tempfile

import numpy as np

import nnc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ---- compile: native code through LLVM (jit=False: the interpreter) ----
m = nnc.Model(os.path.join(ROOT, "examples", "moons.nn"), jit=True)
print(m)
print("parameters:", {name: p.shape for name, p in m.params.items()})

# ---- parameters are numpy views of the model's buffer ----
W = m.params["linear1.W"]
print("linear1.W =\n", W)

# ---- the train block's data, and the gradients of the first batch ----
x_train, t_train, x_valid, t_valid = m.data()
print("data: %d train rows, %d valid rows" % (len(x_train), len(x_valid)))
loss, grads = m.grad(x_train[:1], t_train[:1])  # what `nnc --grad` prints
print("loss %.17g, d linear1.W =\n" % loss, grads["linear1.W"])

# ---- one fused step at a time (the rows are used in place: no copies) ----
for row in range(3):
    print("step %d: loss %.6f" % (row, m.train_step(x_train[row:row + 1], t_train[row:row + 1])))

# ---- the file's training: 400 epochs, per-epoch losses back ----
m.init_params()
history = m.fit()
print("fit: %d epochs, train loss %.4f -> %.4f, final valid loss %.4f, valid accuracy %.3f"
      % (len(history), history[0], history[-1], history.final_valid_loss, history.final_valid_accuracy))

# ---- predictions for any number of rows ----
y = m.predict(x_valid)
print("predict: %d rows, accuracy %.3f" % (len(y), np.mean((y > 0.5) == (t_valid > 0.5))))

# ---- checkpoints (safetensors), and the compiler's stages as text ----
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "moons.safetensors")
    m.save(path)
    fresh = nnc.Model(os.path.join(ROOT, "examples", "moons.nn"))
    fresh.load(path)
    print("loaded: same predictions:", np.array_equal(fresh.predict(x_valid), y))
print(m.emit("grad").splitlines()[0], "...")
print("LLVM IR: %d lines" % len(m.emit("llvm").splitlines()))

# ---- errors are exceptions that print as the command line does ----
try:
    nnc.Model.from_source("model bad {\n  input x[2]\n  target t[1]\n  y = x -> relux\n}\n", name="bad.nn")
except nnc.CompileError as e:
    print("CompileError:\n" + str(e))
try:
    m.train_step(x_train[:5], t_train[:5])
except ValueError as e:
    print("ValueError:", e)

# ---- the seed's run: its data and initial weights, 400 epochs of SGD ----
seed_nn = os.path.join(ROOT, "tests", "data", "seed_moons.nn")
init = os.path.join(ROOT, "tests", "data", "init_seed0.safetensors")
seed = nnc.Model(seed_nn)
seed.load(init)
h = seed.fit()
print("seed run with fit():        final train loss %.17g, valid loss %.17g"
      % (h.final_train_loss, h.final_valid_loss))

# the same run as a Python loop of epochs: fit() (and `nnc --train`) run the
# compiled epoch loop train_epoch runs, so the same rows in the same order
# (this file does not shuffle) give its numbers bit for bit
seed = nnc.Model(seed_nn)
seed.load(init)
x, t, xv, tv = seed.data()
for epoch in range(400):
    seed.train_epoch(x, t)
print("seed run with train_epoch: final train loss %.17g, valid loss %.17g"
      % (seed.evaluate(x, t), seed.evaluate(xv, tv)))

# and as a Python loop of steps: per-sample SGD over the rows in order. These
# are the same steps, but train_step is compiled apart from the epoch loop,
# and LLVM schedules the two differently: the results agree to rounding, and
# the last digits differ
seed = nnc.Model(seed_nn)
seed.load(init)
for epoch in range(400):
    for r in range(len(x)):
        seed.train_step(x[r:r + 1], t[r:r + 1])
print("seed run with train_step:  final train loss %.17g, valid loss %.17g"
      % (seed.evaluate(x, t), seed.evaluate(xv, tv)))
print("the seed's own numbers:    final train loss 0.022556145561633878, valid loss 0.021996021815804123")
