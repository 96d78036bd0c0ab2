#!/usr/bin/python3
# gen.py - the PyTorch side of the torch.* tests, run once by hand:
#
#   /usr/bin/python3 tests/torch/gen.py
#
# For each case it draws data and parameters (seeded), writes NAME.csv and
# NAME.safetensors, and writes NAME.grad: what `nnc NAME.nn --load
# NAME.safetensors --grad` must print (the loss of the file's first batch
# and every parameter's gradient), computed by PyTorch in float64.
import json, os, struct
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        data = t.detach().numpy().astype('<f8').tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_csv(path, x, t):
    x, t = x.reshape(len(x), -1), t.reshape(len(t), -1)
    head = [f"x{i}" for i in range(x.shape[1])] + [f"t{i}" for i in range(t.shape[1])]
    with open(path, "w") as f:
        f.write(",".join(head) + "\n")
        for row in np.concatenate([x, t], axis=1):
            f.write(",".join(f"{v:.4f}" for v in row) + "\n")


def run(name, x, t, params, per_sample_loss):
    """params: [(nnc name, tensor)] in nnc's order; per_sample_loss(x, t, p)
    gives a vector of per-sample losses from a dict of parameters."""
    write_csv(os.path.join(HERE, name + ".csv"), x, t)
    # the values the csv holds, as nnc reads them
    x = torch.tensor(np.round(x, 4), dtype=torch.float64)
    t = torch.tensor(np.round(t, 4), dtype=torch.float64)
    write_safetensors(os.path.join(HERE, name + ".safetensors"), params)
    p = {n: v.clone().requires_grad_(True) for n, v in params}
    loss = per_sample_loss(x, t, p).mean()
    loss.backward()
    lines = [f"loss {loss.item():.17g}"]
    for n, _ in params:
        g = p[n].grad
        shape = ",".join(str(d) for d in g.shape)
        lines.append(f"{n} [{shape}] " + " ".join(f"{v:.17g}" for v in g.flatten().tolist()))
    with open(os.path.join(HERE, name + ".grad"), "w") as f:
        f.write("\n".join(lines) + "\n")


def layer_norm_case(rng):
    x = rng.uniform(-2, 2, (4, 2, 3))
    t = rng.uniform(-2, 2, (4, 2))
    params = [("linear1.W", torch.tensor(rng.normal(0, 0.7, (4, 3)))),
              ("linear1.b", torch.tensor(rng.normal(0, 0.3, (4,)))),
              ("layer_norm1.g", torch.tensor(rng.uniform(0.5, 1.5, (4,)))),
              ("layer_norm1.b", torch.tensor(rng.normal(0, 0.3, (4,)))),
              ("second.g", torch.tensor(rng.uniform(0.5, 1.5, (4,)))),
              ("second.b", torch.tensor(rng.normal(0, 0.3, (4,))))]

    def loss(x, t, p):
        h = F.linear(x, p["linear1.W"], p["linear1.b"])
        h = torch.tanh(F.layer_norm(h, (4,), p["layer_norm1.g"], p["layer_norm1.b"], eps=1e-5))
        y = F.layer_norm(h, (4,), p["second.g"], p["second.b"], eps=0.01).sum(dim=2)
        return ((t - y) ** 2).sum(dim=1)
    run("layer_norm", x, t, params, loss)


def concat_slice_case(rng):
    x = rng.uniform(-2, 2, (3, 2, 3))
    v = rng.uniform(-2, 2, (3, 4))
    t = rng.uniform(-2, 2, (3, 5))
    params = [("linear1.W", torch.tensor(rng.normal(0, 0.7, (4, 3)))),
              ("linear1.b", torch.tensor(rng.normal(0, 0.3, (4,)))),
              ("linear2.W", torch.tensor(rng.normal(0, 0.7, (4, 3)))),
              ("linear2.b", torch.tensor(rng.normal(0, 0.3, (4,))))]
    xv = np.concatenate([x.reshape(3, -1), v], axis=1)

    def loss(xv, t, p):
        x, v = xv[:, :6].reshape(-1, 2, 3), xv[:, 6:]
        a = torch.tanh(F.linear(x, p["linear1.W"], p["linear1.b"]))
        b = torch.cat([a, F.linear(x[:, 1:], p["linear2.W"], p["linear2.b"])], dim=1)
        c = b[:, :, -3:100].sum(dim=1)
        d = torch.tanh(torch.cat([c, v, v[:, 1:2]], dim=1))
        y = d[:, :5]
        return ((t - y) ** 2).sum(dim=1)
    run("concat_slice", xv, t, params, loss)


if __name__ == "__main__":
    layer_norm_case(np.random.default_rng(17))
    concat_slice_case(np.random.default_rng(18))
