#!/usr/bin/python3
"""torch_ops.py - PyTorch's gradients of max, min, where and embedding,
written down for tests/ops.

Not run by the tests (they must not need torch): run it by hand with
Debian's python3-torch (/usr/bin/python3), from any directory:

    /usr/bin/python3 tests/ops/torch_ops.py

For each case it writes CASE.nn (the model), CASE.csv (its rows),
CASE.safetensors (the parameters, F64) next to itself, and the loss and
gradients torch computes for all rows as one batch into reference.json;
check.sh compares `nnc CASE.nn --grad --load CASE.safetensors --batch N`
with them. The cases put ties where they matter: torch.maximum and
torch.minimum send half the gradient to each side of a tie, where sends
none to its condition, and an embedding row used twice gets both
contributions.
"""
import json
import os
import struct

import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors):
    header, body = {}, b""
    for name, t in tensors:
        values = [float(v) for v in t.flatten()]
        data = struct.pack("<%dd" % len(values), *values)
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)


def tensor(values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


CASES = []


def case(name, source, columns, rows, params, forward):
    """forward(params, x, t) -> per-row losses, for x, t the CSV's input
    and target columns (x_cols of them first)."""
    CASES.append((name, source, columns, rows, params, forward))


# max and min of a parameter and an input, ties on rows 0 and 2; squared loss
W = [0.5, -1.0, 2.0, 0.25]
TIE_ROWS = [[0.5, -2.0, 2.0, 1.0, 1.0, 0.0, -1.0, 2.0],
            [0.0, -1.0, 3.0, 0.25, 0.5, 0.5, 0.5, 0.5],
            [1.5, 0.0, 2.0, 0.25, -1.0, 1.0, 0.0, 3.0]]
for op in ("max", "min"):
    fn = torch.maximum if op == "max" else torch.minimum
    case("%s_tie" % op,
         """model %s_tie {
  dtype f64
  input  x[4]
  target t[4]
  param  w[4] = normal(std: 1)
  y = %s(w, x)
  loss squared(y, t)
}
""" % (op, op), "x0,x1,x2,x3,t0,t1,t2,t3", TIE_ROWS, [("w", W)],
         lambda p, x, t, fn=fn: ((t - fn(p["w"], x)) ** 2).sum(dim=1))

# both sides parameters (a tie on elements 0 and 2: half the gradient each)
case("max_params", """model max_params {
  dtype f64
  input  x[3]
  target t[3]
  param  a[3] = normal(std: 1)
  param  b[3] = normal(std: 1)
  y = max(a, b) * x + min(a * x, b)
  loss mse(y, t)
}
""", "x0,x1,x2,t0,t1,t2", [[1.0, 2.0, -1.0, 0.5, 0.0, 1.0], [0.5, -1.0, 2.0, 1.0, 1.0, -1.0]],
     [("a", [1.0, -0.5, 2.0]), ("b", [1.0, 0.5, 2.0])],
     lambda p, x, t: ((torch.maximum(p["a"], p["b"]) * x + torch.minimum(p["a"] * x, p["b"]) - t) ** 2).mean(dim=1))

# where: the condition an input (no gradient), both branches parameters;
# c = 0 takes b, as torch.where(c > 0, a, b)
case("where", """model where {
  dtype f64
  input  c[4]
  target t[4]
  param  a[4] = normal(std: 1)
  param  b[4] = normal(std: 1)
  y = where(c, a * 2, b ^ 2)
  loss squared(y, t)
}
""", "c0,c1,c2,c3,t0,t1,t2,t3", [[1.0, -1.0, 0.0, 2.0, 0.5, 0.5, 0.5, 0.5],
                               [-0.5, 3.0, 1e-3, -2.0, 1.0, -1.0, 0.0, 2.0]],
     [("a", [0.3, -0.7, 1.1, 0.9]), ("b", [-0.4, 0.2, 1.5, -1.2])],
     lambda p, x, t: ((t - torch.where(x > 0, p["a"] * 2, p["b"] ** 2)) ** 2).sum(dim=1))

# embedding: 5 indices per row into a [6, 3] table (row 2 used twice in row
# 0), the mean over the sequence, a linear layer
EMB = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [-0.7, 0.8, 0.9], [1.0, -1.1, 1.2], [-1.3, 1.4, 0.05],
       [0.25, 0.35, -0.45]]
LIN_W = [[0.5, -0.25, 0.75], [-1.0, 0.5, 0.25]]
LIN_B = [0.1, -0.1]


def embedding_forward(p, x, t):
    rows = p["embedding1.W"][x.long()]          # [n, 5, 3]
    h = rows.mean(dim=1) @ p["linear1.W"].T + p["linear1.b"]
    return -(t * torch.log_softmax(h, dim=1)).sum(dim=1)


case("embedding", """model embedding {
  dtype f64
  input  ids[5]
  target t[2]
  z = ids -> embedding(6, 3) -> mean(axis: 0) -> linear(2)
  loss cross_entropy(z, t)
}
""", "i0,i1,i2,i3,i4,t0,t1", [[2, 0, 2, 5, 1, 1, 0], [3, 3, 4, 0, 1, 0, 1], [5, 4, 3, 2, 1, 1, 0]],
     [("embedding1.W", EMB), ("linear1.W", LIN_W), ("linear1.b", LIN_B)], embedding_forward)


def main():
    out = {"torch": torch.__version__, "cases": {}}
    for name, source, columns, rows, params, forward in CASES:
        with open(os.path.join(HERE, name + ".nn"), "w") as f:
            f.write("# written by torch_ops.py: PyTorch's gradients are in reference.json\n" + source +
                    "\ntrain {\n  data csv(\"%s.csv\")\n}\n" % name)
        with open(os.path.join(HERE, name + ".csv"), "w") as f:
            f.write(columns + "\n")
            for r in rows:
                f.write(",".join("%r" % float(v) if v != int(v) else "%d" % v for v in r) + "\n")
        p = {k: tensor(v) for k, v in params}
        write_safetensors(os.path.join(HERE, name + ".safetensors"), [(k, p[k].detach()) for k, _ in params])
        data = torch.tensor(rows, dtype=torch.float64)
        ncols = len(columns.split(","))
        tcols = sum(1 for c in columns.split(",") if c.startswith("t"))
        x, t = data[:, :ncols - tcols], data[:, ncols - tcols:]
        loss = forward(p, x, t).mean()
        loss.backward()
        out["cases"][name] = {"rows": len(rows), "loss": loss.item(),
                              "grads": {k: [float(v) for v in p[k].grad.flatten()] for k, _ in params}}
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("%d cases written by torch %s" % (len(CASES), torch.__version__))


if __name__ == "__main__":
    main()
