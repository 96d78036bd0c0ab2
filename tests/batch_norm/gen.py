#!/usr/bin/python3
# gen.py - the PyTorch side of the batch_norm.* tests, run once by hand:
#
#   /usr/bin/python3 tests/batch_norm/gen.py
#
# For images.nn it draws 5 rows of data, the parameters and running
# statistics (seeded), writes images.csv and images.safetensors, and, from
# torch.nn.functional.batch_norm in float64:
#   images.grad     what `--grad --load images.safetensors` must print:
#                   training mode, the batch's statistics
#   images.predict  what `--predict images.csv --load images.safetensors`
#                   must print: evaluation mode, the running statistics
#   images.step     --predict after one training step from those values
#                   (sgd, lr 0.1, the 5 rows as one batch): the step's
#                   parameters and the running statistics it moved
import os, sys
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "torch"))
from gen import write_csv, write_safetensors  # noqa: E402 (tests/torch/gen.py)


def outputs(path, y):
    with open(path, "w") as f:
        f.write(",".join(f"y[{i}]" for i in range(y.shape[1])) + "\n")
        for row in y.tolist():
            f.write(",".join(f"{v:.17g}" for v in row) + "\n")


# (layer, momentum, eps) in the model's order
LAYERS = [("batch_norm1", 0.1, 1e-5), ("second", 0.3, 0.01), ("features", 0.1, 1e-5)]


def forward(x, p, s, training):
    def bn(h, k):
        name, momentum, eps = LAYERS[k]
        return F.batch_norm(h, s[name + ".running_mean"], s[name + ".running_var"], p[name + ".g"],
                            p[name + ".b"], training, momentum, eps)
    h = torch.tanh(bn(x, 0)).sum(dim=3)
    h = bn(F.linear(h, p["linear1.W"], p["linear1.b"]), 1)
    return bn(torch.tanh(h).sum(dim=1), 2)


def main(rng):
    x = rng.uniform(-2, 2, (5, 2, 2, 3)) + np.array([0.5, -1.0]).reshape(1, 2, 1, 1)
    t = rng.uniform(-2, 2, (5, 3))
    write_csv(os.path.join(HERE, "images.csv"), x, t)
    x = torch.tensor(np.round(x, 4), dtype=torch.float64)
    t = torch.tensor(np.round(t, 4), dtype=torch.float64)
    params = []
    for name, shape in [("batch_norm1", 2), ("linear1", None), ("second", 2), ("features", 3)]:
        if name == "linear1":
            params += [("linear1.W", torch.tensor(rng.normal(0, 0.7, (3, 2)))),
                       ("linear1.b", torch.tensor(rng.normal(0, 0.3, (3,))))]
        else:
            params += [(name + ".g", torch.tensor(rng.uniform(0.5, 1.5, (shape,)))),
                       (name + ".b", torch.tensor(rng.normal(0, 0.3, (shape,))))]
    states = []
    for name, c in [("batch_norm1", 2), ("second", 2), ("features", 3)]:
        states += [(name + ".running_mean", torch.tensor(rng.normal(0, 0.5, (c,)))),
                   (name + ".running_var", torch.tensor(rng.uniform(0.5, 2, (c,))))]
    write_safetensors(os.path.join(HERE, "images.safetensors"), params + states)

    # training mode: the loss of the batch and the gradients
    p = {n: v.clone().requires_grad_(True) for n, v in params}
    s = {n: v.clone() for n, v in states}
    loss = ((t - forward(x, p, s, True)) ** 2).sum(dim=1).mean()
    loss.backward()
    lines = [f"loss {loss.item():.17g}"]
    for n, _ in params:
        g = p[n].grad
        lines.append(f"{n} [{','.join(str(d) for d in g.shape)}] " + " ".join(f"{v:.17g}" for v in g.flatten().tolist()))
    with open(os.path.join(HERE, "images.grad"), "w") as f:
        f.write("\n".join(lines) + "\n")

    # evaluation mode with the running statistics
    with torch.no_grad():
        outputs(os.path.join(HERE, "images.predict"), forward(x, dict(params), {n: v.clone() for n, v in states}, False))
        # one step: s holds the running statistics the training forward moved
        stepped = {n: p[n] - 0.1 * p[n].grad for n, _ in params}
        outputs(os.path.join(HERE, "images.step"), forward(x, stepped, s, False))


if __name__ == "__main__":
    main(np.random.default_rng(21))
