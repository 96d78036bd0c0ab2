#!/usr/bin/python3
"""torch_reference.py - torch.optim's results written down for tests/optim.

Not run by the tests (they must not need torch): run it by hand with
Debian's python3-torch (`apt-get install python3-torch`; /usr/bin/python3,
not another python3 on PATH), from any directory:

    /usr/bin/python3 tests/optim/torch_reference.py

It writes, next to itself:
  data.csv              7 rows: x[3] then t[2]
  init_f64.safetensors  the starting parameters (F64), and the same values
  init_f32.safetensors  rounded to F32
  reference.json        per case: the train block lines nnc runs, epochs,
                        batch, the learning rate of each epoch, and the
                        parameters torch ends with in float64 (params) and
                        in float32 (params_f32)

The model is tests/optim/model.nn: x[3] -> linear(4) -> tanh -> linear(2),
mse loss, the batch loss the mean over its rows (as nnc). Batches take the
rows in file order (7 rows: with batch 2 the last batch has one row).
Learning rates per epoch come from torch's schedulers (StepLR,
CosineAnnealingLR with T_max = epochs, LinearLR for the warm-up epochs:
start_factor 1/N over N - 1 steps gives lr (e + 1) / N), set on the
optimizer before each epoch. Clipping is torch.nn.utils.clip_grad_norm_
between backward and step.
"""
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
ROWS, IN, HID, OUT = 7, 3, 4, 2
NAMES = ["linear1.W", "linear1.b", "linear2.W", "linear2.b"]


def make_data():
    g = torch.Generator().manual_seed(19)
    x = torch.randn(ROWS, IN, generator=g)
    t = torch.randn(ROWS, OUT, generator=g)
    # short decimals, so the CSV holds the numbers exactly as torch has them
    x = torch.round(x * 1000) / 1000
    t = torch.round(t * 1000) / 1000
    return x, t


def make_params():
    g = torch.Generator().manual_seed(7)
    shapes = [(HID, IN), (HID,), (OUT, HID), (OUT,)]
    return [torch.round(torch.randn(*s, generator=g) * 0.6 * 2**20) / 2**20 for s in shapes]


def write_safetensors(path, tensors, dtype):
    fmt, name = {"F64": ("d", "F64"), "F32": ("f", "F32")}[dtype]
    header, body = {}, b""
    for key, t in tensors:
        values = [float(v) for v in t.flatten()]
        data = struct.pack("<%d%s" % (len(values), fmt), *values)
        header[key] = {"dtype": name, "shape": list(t.shape), "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)


def lr_per_epoch(base, epochs, schedule):
    """The learning rate of each epoch from torch's schedulers."""
    kind, args = schedule
    warmup = args.get("warmup", 0)

    def run(make):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=base)
        sched = make(opt)
        out = []
        for _ in range(epochs):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    if kind == "constant":
        lrs = [base] * epochs
    elif kind == "step":
        lrs = run(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=args["every"], gamma=args["gamma"]))
    else:
        lrs = run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs, eta_min=args["min_lr"]))
    if warmup:
        warm = run(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / warmup, end_factor=1,
                                                                 total_iters=max(warmup - 1, 1)))
        if warmup == 1:
            warm = [base] * epochs  # LinearLR from lr / 1: the rate itself
        lrs = [warm[e] if e < warmup else lrs[e] for e in range(epochs)]
    return lrs


def train(case, x, t, init, dtype):
    x, t = x.to(dtype), t.to(dtype)
    params = [torch.nn.Parameter(p.clone().to(dtype)) for p in init]
    w1, b1, w2, b2 = params
    opt = case["torch"](params)
    lrs = lr_per_epoch(case["lr"], case["epochs"], case.get("schedule", ("constant", {})))
    batch = case["batch"]
    for epoch in range(case["epochs"]):
        for group in opt.param_groups:
            group["lr"] = lrs[epoch]
        for r in range(0, ROWS, batch):
            xb, tb = x[r:r + batch], t[r:r + batch]
            y = torch.tanh(xb @ w1.T + b1) @ w2.T + b2
            loss = ((y - tb) ** 2).mean(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            if "clip" in case:
                torch.nn.utils.clip_grad_norm_(params, case["clip"])
            opt.step()
    return lrs, {n: [float(v) for v in p.detach().flatten()] for n, p in zip(NAMES, params)}


def O(cls, **kw):
    return lambda params: cls(params, **kw)


SGD, Adam, AdamW, RMSprop = torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop
CASES = [
    # name, nnc's optimizer, the same in torch, base lr
    ("sgd", "sgd(lr: 0.1)", O(SGD, lr=0.1), 0.1),
    ("sgd_momentum", "sgd(lr: 0.05, momentum: 0.9)", O(SGD, lr=0.05, momentum=0.9), 0.05),
    ("sgd_weight_decay", "sgd(lr: 0.05, momentum: 0.5, weight_decay: 0.1)",
     O(SGD, lr=0.05, momentum=0.5, weight_decay=0.1), 0.05),
    ("sgd_nesterov", "sgd(lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01)",
     O(SGD, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), 0.05),
    ("adam", "adam(lr: 0.01)", O(Adam, lr=0.01), 0.01),
    ("adam_betas", "adam(lr: 0.02, beta1: 0.8, beta2: 0.99, eps: 1e-6)",
     O(Adam, lr=0.02, betas=(0.8, 0.99), eps=1e-6), 0.02),
    ("adam_weight_decay", "adam(lr: 0.01, weight_decay: 0.1)", O(Adam, lr=0.01, weight_decay=0.1), 0.01),
    # (f32 cannot hold beta2^t near 1 finely enough for its bias correction)
    ("adam_beta2_near_one", "adam(lr: 0.01, beta2: 0.99999)", O(Adam, lr=0.01, betas=(0.9, 0.99999)), 0.01),
    ("adamw", "adamw(lr: 0.01)", O(AdamW, lr=0.01), 0.01),
    ("adamw_decay", "adamw(lr: 0.02, weight_decay: 0.3, beta2: 0.99)",
     O(AdamW, lr=0.02, weight_decay=0.3, betas=(0.9, 0.99)), 0.02),
    ("rmsprop", "rmsprop(lr: 0.01)", O(RMSprop, lr=0.01), 0.01),
    ("rmsprop_momentum", "rmsprop(lr: 0.005, alpha: 0.9, momentum: 0.8, eps: 1e-6)",
     O(RMSprop, lr=0.005, alpha=0.9, momentum=0.8, eps=1e-6), 0.005),
    ("rmsprop_centered", "rmsprop(lr: 0.005, centered: true, weight_decay: 0.05)",
     O(RMSprop, lr=0.005, centered=True, weight_decay=0.05), 0.005),
]
SCHEDULED = [
    # name, optimizer, torch, lr, schedule line, (kind, args), extra train lines, clip
    ("step", "sgd(lr: 0.1, momentum: 0.5)", O(SGD, lr=0.1, momentum=0.5), 0.1,
     "step(every: 2, gamma: 0.5)", ("step", {"every": 2, "gamma": 0.5}), None),
    ("cosine", "adam(lr: 0.02)", O(Adam, lr=0.02), 0.02,
     "cosine(min_lr: 0.001)", ("cosine", {"min_lr": 0.001}), None),
    ("cosine_warmup", "adamw(lr: 0.02, weight_decay: 0.1)", O(AdamW, lr=0.02, weight_decay=0.1), 0.02,
     "cosine(warmup: 3)", ("cosine", {"min_lr": 0, "warmup": 3}), None),
    ("step_warmup", "sgd(lr: 0.1)", O(SGD, lr=0.1), 0.1,
     "step(every: 3, gamma: 0.2, warmup: 2)", ("step", {"every": 3, "gamma": 0.2, "warmup": 2}), None),
    ("constant_warmup", "rmsprop(lr: 0.01)", O(RMSprop, lr=0.01), 0.01,
     "constant(warmup: 4)", ("constant", {"warmup": 4}), None),
    ("clip_sgd", "sgd(lr: 0.1, momentum: 0.9, weight_decay: 0.05)",
     O(SGD, lr=0.1, momentum=0.9, weight_decay=0.05), 0.1, None, None, 0.3),
    ("clip_adam", "adam(lr: 0.05, weight_decay: 0.01)", O(Adam, lr=0.05, weight_decay=0.01), 0.05,
     None, None, 0.2),
    ("clip_large", "adamw(lr: 0.01)", O(AdamW, lr=0.01), 0.01, None, None, 100.0),
    ("clip_cosine", "rmsprop(lr: 0.01, momentum: 0.5)", O(RMSprop, lr=0.01, momentum=0.5), 0.01,
     "cosine(min_lr: 0.002, warmup: 2)", ("cosine", {"min_lr": 0.002, "warmup": 2}), 0.25),
]


def main():
    x, t = make_data()
    with open(os.path.join(HERE, "data.csv"), "w") as f:
        f.write("x0,x1,x2,t0,t1\n")
        for r in range(ROWS):
            f.write(",".join("%.3f" % float(v) for v in list(x[r]) + list(t[r])) + "\n")
    init = make_params()
    write_safetensors(os.path.join(HERE, "init_f64.safetensors"), list(zip(NAMES, init)), "F64")
    write_safetensors(os.path.join(HERE, "init_f32.safetensors"), list(zip(NAMES, init)), "F32")
    cases = []
    for name, line, make, lr in CASES:
        cases.append({"name": name, "train": ["optimizer %s" % line], "torch": make, "lr": lr, "epochs": 4})
    for name, line, make, lr, sline, sched, clip in SCHEDULED:
        c = {"name": name, "train": ["optimizer %s" % line], "torch": make, "lr": lr, "epochs": 6}
        if sline:
            c["train"].append("schedule %s" % sline)
            c["schedule"] = sched
        if clip is not None:
            c["train"].append("clip_norm %g" % clip)
            c["clip"] = clip
        cases.append(c)
    out = []
    for c in cases:
        for batch in (1, 2):
            c = dict(c, batch=batch)
            lrs, params = train(c, x, t, init, torch.float64)
            _, params32 = train(c, x, t, init, torch.float32)
            out.append({"name": "%s.b%d" % (c["name"], batch), "train": c["train"], "epochs": c["epochs"],
                        "batch": batch, "lr": lrs, "params": params, "params_f32": params32})
    meta = {"torch": torch.__version__, "cases": out}
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("%d cases written by torch %s" % (len(out), torch.__version__))


if __name__ == "__main__":
    main()
