#!/usr/bin/env python3
"""examples/python/torch_interop.py: nnc and PyTorch on the same weights.

    python3 examples/python/torch_interop.py

- params round-trip with torch.from_numpy: the tensors share the model's
  memory, so a change on either side is seen by the other;
- a checkpoint nnc saved loads into the equivalent torch.nn.Sequential
  (safetensors naming: nnc's linear1.W is the Sequential's 0.weight), and a
  state_dict written by PyTorch loads into nnc;
- the seed's moons run (its data and initial weights, per-sample SGD)
  trained side by side for a few epochs by nnc and by PyTorch.

Without PyTorch (python3-torch on Debian) it says so and exits 0.
"""
import os
import sys
import tempfile

import numpy as np

import nnc
from nnc import safetensors

try:
    import torch
except ImportError:
    print("torch is not installed (apt-get install python3-torch): nothing to show")
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
torch.set_num_threads(1)

m = nnc.Model(os.path.join(ROOT, "tests", "data", "seed_moons.nn"))
m.load(os.path.join(ROOT, "tests", "data", "init_seed0.safetensors"))

# ---- params as torch tensors, sharing memory ----
W = torch.from_numpy(m.params["linear1.W"])
before = m.predict(m.data().x_valid)
W[0, 0] += 1.0  # a change through torch is the model's
print("a change through torch.from_numpy(m.params[...]) changes nnc's predictions:",
      not np.array_equal(m.predict(m.data().x_valid), before))
W[0, 0] -= 1.0


# ---- the same network in PyTorch, and the names between the two ----
def sequential():
    return torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU(),
                               torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()


# linearK in nnc (creation order) is the K-th Linear of the Sequential: index 2(K-1);
# W is [out, in] in both
TO_TORCH = {"linear%d.%s" % (k, p): "%d.%s" % (2 * (k - 1), {"W": "weight", "b": "bias"}[p])
            for k in range(1, 5) for p in "Wb"}
TO_NNC = {v: k for k, v in TO_TORCH.items()}

with tempfile.TemporaryDirectory() as tmp:
    # nnc -> torch: nnc's checkpoint, renamed, is the Sequential's state_dict
    m.save(os.path.join(tmp, "nnc.safetensors"))
    tensors = safetensors.load_file(os.path.join(tmp, "nnc.safetensors"))
    net = sequential()
    net.load_state_dict({TO_TORCH[k]: torch.from_numpy(v) for k, v in tensors.items()})
    x_train, t_train, x_valid, t_valid = m.data()
    with torch.no_grad():
        y_torch = net(torch.from_numpy(x_valid)).numpy()
    print("nnc checkpoint in torch: max |y_torch - y_nnc| = %.3g" % np.abs(y_torch - m.predict(x_valid)).max())

    # torch -> nnc: a state_dict saved with nnc's names loads into the model
    torch.manual_seed(1)
    other = sequential()
    safetensors.save_file({TO_NNC[k]: v.detach().numpy() for k, v in other.state_dict().items()},
                          os.path.join(tmp, "torch.safetensors"))
    n = nnc.Model(os.path.join(ROOT, "tests", "data", "seed_moons.nn"))
    n.load(os.path.join(tmp, "torch.safetensors"))
    with torch.no_grad():
        y_torch = other(torch.from_numpy(x_valid)).numpy()
    print("torch state_dict in nnc: max |y_nnc - y_torch| = %.3g" % np.abs(n.predict(x_valid) - y_torch).max())

# ---- the seed's moons run, side by side: per-sample SGD, lr 0.05 ----
epochs = int(os.environ.get("EPOCHS", "5"))
opt = torch.optim.SGD(net.parameters(), lr=0.05)
xt, tt = torch.from_numpy(x_train), torch.from_numpy(t_train)
for epoch in range(epochs):
    for r in range(len(x_train)):
        m.train_step(x_train[r:r + 1], t_train[r:r + 1])
        opt.zero_grad(set_to_none=True)
        loss = ((tt[r:r + 1] - net(xt[r:r + 1])) ** 2).sum()
        loss.backward()
        opt.step()
with torch.no_grad():
    torch_loss = ((tt - net(xt)) ** 2).sum(1).mean().item()
nnc_loss = m.evaluate(x_train, t_train)
print("after %d epochs: train loss nnc %.17g, torch %.17g (relative difference %.2g)"
      % (epochs, nnc_loss, torch_loss, abs(nnc_loss - torch_loss) / torch_loss))
worst = max(np.abs(m.params[k] - p.detach().numpy()).max() for k, p in
            ((TO_NNC[name], p) for name, p in net.state_dict().items()))
print("largest difference of a parameter: %.3g" % worst)
