#!/usr/bin/python3
"""torch_optim_check.py NNC [--cases N] [--seed S] [--keep DIR] [--write-tests S,S,...]
- nnc's training against PyTorch on random cases no test has seen.

Each case is drawn from its seed (S, S+1, ...): a small network (a linear
layer with a random activation; sometimes an embedding of a second input,
its rows' mean joined on with concat; zero to three of max, min (ties
included: two layers that start equal, so every element ties) and where;
an output layer), a loss (mse, squared, bce_logits, cross_entropy), random
data, an optimizer with random hyperparameters (sgd with momentum,
nesterov and weight decay; adam with weight decay; adamw; rmsprop with
momentum, weight decay and centered), a schedule with or without warm-up,
clip_norm, sometimes early_stop on a split, 2 to 6 epochs of batches of 1
to all rows, f64 or f32. nnc trains it from random starting parameters
(--load) with the interpreter, with --jit, and (batches of 2 or more,
sometimes) with --jit --threads 2; PyTorch trains the same network with
torch.optim, torch.nn.utils.clip_grad_norm_ and the learning rate of each
epoch from torch's schedulers; the parameters nnc saves must equal
torch's: 1e-9 relative (1e-12 absolute) in f64; in f32 1e-4 relative or
1e-5 absolute, as tests/optim/check.py (rounding: torch's CPU kernels fuse
multiply-adds and sum in other orders).

Needs PyTorch: run it with Debian's python3 (python3-torch), from any
directory:

    /usr/bin/python3 scripts/torch_optim_check.py build/nnc --cases 300

A failing case is kept in DIR/case-S/ (default ./torch-optim-failures)
with its .nn file, data, starting parameters and both results; a case
whose loss stops being finite in torch is skipped (nnc stops it with an
error); the last line counts the cases. --write-tests S,S,... writes the cases of those
seeds as tests/optim/random/caseS.{nn,csv,safetensors,json} (nnc's inputs
and torch's parameters), which tests/optim/random_check.py checks without
torch.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "optim"))
from torch_reference import lr_per_epoch, write_safetensors  # noqa: E402
import random_check  # noqa: E402  (train, compare)

torch.set_default_dtype(torch.float64)


def exact(r, scale):
    """A random number with few bits, the same in f32 and f64."""
    return round(r.gauss(0, scale) * 2**16) / 2**16


class Case:
    """One random case: the .nn text, the data, the starting parameters and
    a torch forward pass of the same network."""

    def __init__(self, seed):
        r = self.r = random.Random(seed)
        self.seed = seed
        self.dtype = "f64" if r.random() < 0.7 else "f32"
        self.lines = []     # model statements after the inputs and targets
        self.decls = []     # param declarations
        self.steps = []     # torch: functions env, P -> (name, tensor)
        self.params = {}    # name -> list of values (row-major), shape
        self.inputs = []    # (name, shape, kind): kind "real" or ("index", vocab)
        self.n = 0
        self.build()

    # ---- parameters and statements

    def param(self, name, shape, scale=0.5, values=None):
        numel = math.prod(shape)
        self.params[name] = (values or [exact(self.r, scale) for _ in range(numel)], shape)
        return name

    def bind(self, expr, fn):
        self.n += 1
        name = "h%d" % self.n
        self.lines.append("%s = %s" % (name, expr))
        self.steps.append((name, fn))
        return name

    def linear(self, v, units, fan_in, bias=True):
        self.layers = getattr(self, "layers", 0) + 1
        layer = "fc%d" % self.layers
        W = self.param(layer + ".W", (units, fan_in), 1 / math.sqrt(fan_in))
        b = self.param(layer + ".b", (units,), 0.3) if bias else None
        text = 'linear(%d, name: "%s"%s)' % (units, layer, "" if bias else ", bias: false")

        def fn(env, P, v=v, W=W, b=b):
            y = env[v] @ P[W].T
            return y + P[b] if b else y
        return text, fn

    def activation(self):
        kind = self.r.choice(["tanh", "relu", "sigmoid", "leaky_relu", "softplus", "none"])
        if kind == "none":
            return "", lambda t: t
        if kind == "leaky_relu":
            s = self.r.choice([0.01, 0.1, 0.3])
            return " -> leaky_relu(slope: %g)" % s, lambda t, s=s: F.leaky_relu(t, s)
        return " -> " + kind, {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
                               "softplus": F.softplus}[kind]

    # ---- the network

    def build(self):
        r = self.r
        n_in = r.randint(1, 5)
        self.inputs.append(("x", (n_in,), "real"))
        hidden = r.randint(2, 6)
        text, lin = self.linear("x", hidden, n_in)
        act_text, act = self.activation()
        h = self.bind("x -> %s%s" % (text, act_text), lambda env, P, lin=lin, act=act: act(lin(env, P)))
        if r.random() < 0.35:  # an embedding of word indices
            length, vocab, dim = r.randint(1, 6), r.randint(2, 10), r.randint(1, 4)
            self.inputs.append(("w", (length,), ("index", vocab)))
            self.param("emb.W", (vocab, dim), 1.0)
            reduce = r.choice(["mean", "sum"])
            e = self.bind('w -> embedding(%d, %d, name: "emb") -> %s(axis: 0)' % (vocab, dim, reduce),
                          lambda env, P, reduce=reduce: getattr(F.embedding(env["w"].long(), P["emb.W"]),
                                                                reduce)(dim=1))
            h = self.bind("concat(%s, %s)" % (h, e), lambda env, P, h=h, e=e: torch.cat([env[h], env[e]], dim=1))
            hidden += dim
        for _ in range(r.choice([0, 1, 1, 2, 3])):
            h = r.choice([self.op_maxmin, self.op_tie, self.op_where])(h, hidden, n_in)
        n_out = r.randint(1, 3)
        self.loss = r.choice(["mse", "squared", "bce_logits", "cross_entropy"])
        if self.loss == "cross_entropy":
            n_out = max(n_out, 2)
        text, lin = self.linear(h, n_out, hidden)
        self.y = self.bind("%s -> %s" % (h, text), lambda env, P, lin=lin: lin(env, P))
        self.n_out = n_out

    def other(self, h, hidden):
        """A second operand for h: a parameter, a constant, a scalar parameter."""
        r = self.r
        k = r.random()
        if k < 0.5:
            self.n += 1
            p = self.param("p%d" % self.n, (hidden,), 1.0)
            self.decls.append("param p%d[%d] = normal(std: 1)" % (self.n, hidden))
            return p, lambda env, P, p=p: P[p]
        if k < 0.75:
            c = r.choice([0.0, 0.25, -0.5, 1.0])
            return "%g" % c, lambda env, P, c=c: torch.tensor(c, dtype=P[next(iter(P))].dtype)
        return "-%s" % h, lambda env, P, h=h: -env[h]

    def op_maxmin(self, h, hidden, n_in):
        fn = self.r.choice(["max", "min"])
        b_text, b = self.other(h, hidden)
        tf = torch.maximum if fn == "max" else torch.minimum
        swap = self.r.random() < 0.5
        args = (b_text, h) if swap else (h, b_text)

        def step(env, P, h=h, b=b, tf=tf, swap=swap):
            bv = b(env, P).expand_as(env[h])
            return tf(bv, env[h]) if swap else tf(env[h], bv)
        return self.bind("%s(%s, %s)" % (fn, *args), step)

    def op_tie(self, h, hidden, n_in):
        """h + max(u, v) (or min) with u and v two layers that start equal:
        every element ties, so each side gets half of the gradient, and
        they stay equal."""
        fn = self.r.choice(["max", "min"])
        tu, lu = self.linear("x", hidden, n_in)
        tv, lv = self.linear("x", hidden, n_in)
        last = self.layers
        for part in ("W", "b"):  # fc(last) starts as fc(last - 1)
            self.params["fc%d.%s" % (last, part)] = self.params["fc%d.%s" % (last - 1, part)]
        tf = torch.maximum if fn == "max" else torch.minimum
        return self.bind("%s + %s(x -> %s, x -> %s)" % (h, fn, tu, tv),
                         lambda env, P, h=h, lu=lu, lv=lv, tf=tf: env[h] + tf(lu(env, P), lv(env, P)))

    def op_where(self, h, hidden, n_in):
        r = self.r
        c_kind = r.choice(["h", "param", "layer"])
        if c_kind == "h":
            c_text, c = h, lambda env, P, h=h: env[h]
        elif c_kind == "param":
            self.n += 1
            p = self.param("p%d" % self.n, (hidden,), 1.0)
            self.decls.append("param p%d[%d] = normal(std: 1)" % (self.n, hidden))
            c_text, c = p, lambda env, P, p=p: P[p]
        else:
            t, lin = self.linear("x", hidden, n_in)
            c_text, c = "(x -> %s)" % t, lin
        scale = r.choice([0.1, 0.5, 2.0])
        a_text, a = "%g * %s" % (scale, h), lambda env, P, h=h, s=scale: s * env[h]
        b_text, b = self.other(h, hidden)
        if r.random() < 0.5:
            a_text, a, b_text, b = b_text, b, a_text, a

        def step(env, P, c=c, a=a, b=b, h=h):
            shape = env[h].shape
            return torch.where(c(env, P).expand(shape) > 0, a(env, P).expand(shape), b(env, P).expand(shape))
        return self.bind("where(%s, %s, %s)" % (c_text, a_text, b_text), step)

    # ---- training settings and data

    def settings(self):
        r = self.r
        kind = r.choice(["sgd", "adam", "adamw", "rmsprop"])
        lr = r.choice([0.001, 0.005, 0.01, 0.03, 0.1]) if kind == "sgd" else r.choice([0.001, 0.005, 0.01, 0.03])
        args, kw = ["lr: %g" % lr], {"lr": lr}
        if kind == "sgd":
            if r.random() < 0.7:
                m = r.choice([0.5, 0.9, 0.99, round(r.uniform(0.1, 0.95), 3)])
                args.append("momentum: %g" % m)
                kw["momentum"] = m
                if r.random() < 0.5:
                    args.append("nesterov: true")
                    kw["nesterov"] = True
            if r.random() < 0.5:
                wd = r.choice([1e-4, 0.01, 0.1])
                args.append("weight_decay: %g" % wd)
                kw["weight_decay"] = wd
            opt = torch.optim.SGD
        elif kind in ("adam", "adamw"):
            if r.random() < 0.5:
                b1, b2 = r.choice([0.8, 0.9, 0.95]), r.choice([0.99, 0.999, 0.9])
                args += ["beta1: %g" % b1, "beta2: %g" % b2]
                kw["betas"] = (b1, b2)
            if r.random() < 0.3:
                eps = r.choice([1e-6, 1e-8, 1e-3])
                args.append("eps: %g" % eps)
                kw["eps"] = eps
            if r.random() < (0.8 if kind == "adamw" else 0.5):
                wd = r.choice([0.01, 0.1, 0.3])
                args.append("weight_decay: %g" % wd)
                kw["weight_decay"] = wd
            opt = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        else:
            if r.random() < 0.5:
                alpha = r.choice([0.9, 0.99, 0.5])
                args.append("alpha: %g" % alpha)
                kw["alpha"] = alpha
            if r.random() < 0.3:
                eps = r.choice([1e-6, 1e-8, 1e-3])
                args.append("eps: %g" % eps)
                kw["eps"] = eps
            if r.random() < 0.5:
                m = r.choice([0.5, 0.9])
                args.append("momentum: %g" % m)
                kw["momentum"] = m
            if r.random() < 0.4:
                wd = r.choice([0.01, 0.1])
                args.append("weight_decay: %g" % wd)
                kw["weight_decay"] = wd
            if r.random() < 0.4:
                args.append("centered: true")
                kw["centered"] = True
            opt = torch.optim.RMSprop
        self.train_lines = ["optimizer %s(%s)" % (kind, ", ".join(args))]
        self.opt, self.opt_kw, self.lr = opt, kw, lr
        self.epochs = r.randint(2, 6)
        self.schedule = ("constant", {})
        if r.random() < 0.6:
            s = r.choice(["constant", "step", "cosine"])
            sargs, sched = [], {}
            if s == "step":
                every, gamma = r.randint(1, 3), r.choice([0.1, 0.5, 0.9])
                sargs += ["every: %d" % every, "gamma: %g" % gamma]
                sched.update(every=every, gamma=gamma)
            elif s == "cosine":
                min_lr = r.choice([0, lr / 10, lr / 3])
                if min_lr:
                    sargs.append("min_lr: %.17g" % min_lr)
                sched["min_lr"] = min_lr
            if r.random() < 0.6 or s == "constant":
                w = r.randint(1, self.epochs)
                sargs.append("warmup: %d" % w)
                sched["warmup"] = w
            self.train_lines.append("schedule %s%s" % (s, "(%s)" % ", ".join(sargs) if sargs else ""))
            self.schedule = (s, sched)
        self.clip = None
        if r.random() < 0.4:
            self.clip = r.choice([0.01, 0.1, 0.5, 2.0, 100.0])
            self.train_lines.append("clip_norm %g" % self.clip)
        self.rows = r.randint(3, 9)
        self.split = None
        self.early = None
        if r.random() < 0.25:
            self.split = r.randint(2, self.rows - 1)
            self.early = r.randint(1, 2)
            self.train_lines += ["split %d" % self.split, "early_stop %d" % self.early]
        self.batch = r.randint(1, self.split or self.rows)
        self.train_lines += ["epochs %d" % self.epochs, "batch %d" % self.batch]

    def data(self):
        r = self.r
        header, rows = [], []
        for name, shape, kind in self.inputs:
            header += ["%s%d" % (name, i) for i in range(shape[0])]
        header += ["t%d" % i for i in range(self.n_out)]
        for _ in range(self.rows):
            row = []
            for name, shape, kind in self.inputs:
                if kind == "real":
                    row += ["%.3f" % r.uniform(-2, 2) for _ in range(shape[0])]
                else:
                    row += [str(r.randrange(kind[1])) for _ in range(shape[0])]
            if self.loss == "cross_entropy":
                k = r.randrange(self.n_out)
                row += [str(int(i == k)) for i in range(self.n_out)]
            elif self.loss == "bce_logits":
                row += [str(r.randint(0, 1)) for _ in range(self.n_out)]
            else:
                row += ["%.3f" % r.uniform(-1, 1) for _ in range(self.n_out)]
            rows.append(row)
        self.csv_rows = rows
        return ",".join(header) + "\n" + "".join(",".join(row) + "\n" for row in rows)

    def text(self):
        src = ["# torch_optim_check.py case %d" % self.seed, "model case%d {" % self.seed, "  dtype %s" % self.dtype]
        for name, shape, kind in self.inputs:
            src.append("  input  %s[%d]" % (name, shape[0]))
        src.append("  target t[%d]" % self.n_out)
        src += ["  " + d for d in self.decls] + ["  " + l for l in self.lines]
        src.append("  loss %s(%s, t)" % (self.loss, self.y))
        src += ["}", "", "train {", '  data csv("data.csv")'] + ["  " + l for l in self.train_lines] + ["}"]
        return "\n".join(src) + "\n"

    # ---- torch

    def per_sample_loss(self, y, t):
        if self.loss == "mse":
            return ((y - t) ** 2).mean(dim=1)
        if self.loss == "squared":
            return ((t - y) ** 2).sum(dim=1)
        if self.loss == "bce_logits":
            return F.binary_cross_entropy_with_logits(y, t, reduction="none").mean(dim=1)
        return -(t * F.log_softmax(y, dim=1)).sum(dim=1)

    def forward_loss(self, P, x, w, t):
        env = {"x": x, "w": w}
        for name, fn in self.steps:
            env[name] = fn(env, P)
        return self.per_sample_loss(env[self.y], t).mean()

    def torch_train(self):
        dt = torch.float64 if self.dtype == "f64" else torch.float32
        values = [[float(v) for v in row] for row in self.csv_rows]
        cols = 0
        x = w = None
        for name, shape, kind in self.inputs:
            part = torch.tensor([row[cols:cols + shape[0]] for row in values], dtype=torch.float64)
            cols += shape[0]
            if name == "x":
                x = part.to(dt)
            else:
                w = part
        t = torch.tensor([row[cols:] for row in values], dtype=torch.float64).to(dt)
        P = {n: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64).reshape(s).to(dt))
             for n, (v, s) in self.params.items()}
        order = list(P.values())
        opt = self.opt(order, **self.opt_kw)
        lrs = lr_per_epoch(self.lr, self.epochs, self.schedule)
        n_train = self.split or self.rows
        best, best_loss, since = None, math.inf, 0
        for epoch in range(self.epochs):
            for g in opt.param_groups:
                g["lr"] = lrs[epoch]
            for r0 in range(0, n_train, self.batch):
                r1 = min(r0 + self.batch, n_train)
                loss = self.forward_loss(P, x[r0:r1], None if w is None else w[r0:r1], t[r0:r1])
                if not math.isfinite(float(loss)):
                    return None  # diverged: nnc stops with an error
                opt.zero_grad()
                loss.backward()
                if self.clip is not None:
                    torch.nn.utils.clip_grad_norm_(order, self.clip)
                opt.step()
            if self.early:
                with torch.no_grad():
                    v = float(self.forward_loss(P, x[n_train:], None if w is None else w[n_train:], t[n_train:]))
                if v < best_loss:
                    best_loss, since = v, 0
                    best = {n: p.detach().clone() for n, p in P.items()}
                else:
                    since += 1
                    if since >= self.early:
                        break
        final = best if self.early else {n: p.detach() for n, p in P.items()}
        return {n: [float(v) for v in p.flatten()] for n, p in final.items()}


def run_nnc(nnc, work, engine):
    got, log = random_check.train(nnc, work, "case.nn", "init.safetensors",
                                  os.path.join(work, "nnc_%s.safetensors" % engine), engine)
    with open(os.path.join(work, "nnc_%s.log" % engine), "w") as f:
        f.write(log)
    return got, None if got else "%s: %s" % (engine, log.strip()[-300:])


def prepare(seed, work):
    case = Case(seed)
    case.settings()
    with open(os.path.join(work, "data.csv"), "w") as f:
        f.write(case.data())
    with open(os.path.join(work, "case.nn"), "w") as f:
        f.write(case.text())
    tensors = [(n, torch.tensor(v).reshape(s)) for n, (v, s) in case.params.items()]
    write_safetensors(os.path.join(work, "init.safetensors"), tensors, "F64" if case.dtype == "f64" else "F32")
    return case


def check(nnc, seed, work, stats):
    case = prepare(seed, work)
    want = case.torch_train()
    if want is None or not all(math.isfinite(v) for vs in want.values() for v in vs):
        return case, None  # the generator made a case that diverges
    with open(os.path.join(work, "torch.json"), "w") as f:
        json.dump(want, f, indent=1)
    engines = ["interp", "jit"]
    if case.batch > 1 and case.r.random() < 0.3:
        engines.append("threads")
    problems = []
    for engine in engines:
        got, err = run_nnc(nnc, work, engine)
        if err:
            problems.append(err)
            continue
        bad, worst = random_check.compare(got, want, case.dtype)
        stats[case.dtype] = max(stats.get(case.dtype, 0.0), worst)
        if bad:
            problems.append("%s: %d values differ from torch: %s" % (engine, len(bad), "; ".join(bad[:4])))
    return case, problems


def write_tests(seeds):
    """tests/optim/random/: these cases, for tests/optim/random_check.py."""
    dest = os.path.join(ROOT, "tests", "optim", "random")
    os.makedirs(dest, exist_ok=True)
    for seed in seeds:
        with tempfile.TemporaryDirectory() as work:
            case = prepare(seed, work)
            want = case.torch_train()
            name = "case%d" % seed
            text = open(os.path.join(work, "case.nn")).read().replace('csv("data.csv")', 'csv("%s.csv")' % name)
            with open(os.path.join(dest, name + ".nn"), "w") as f:
                f.write(text)
            shutil.copy(os.path.join(work, "data.csv"), os.path.join(dest, name + ".csv"))
            shutil.copy(os.path.join(work, "init.safetensors"), os.path.join(dest, name + ".safetensors"))
            with open(os.path.join(dest, name + ".json"), "w") as f:
                json.dump({"torch": torch.__version__, "dtype": case.dtype, "params": want}, f, indent=1)
                f.write("\n")
    print("wrote %d cases to %s" % (len(seeds), dest))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("nnc")
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", default="torch-optim-failures")
    ap.add_argument("--write-tests", metavar="S,S,...", help="write the cases of these seeds as tests")
    a = ap.parse_args()
    nnc = os.path.abspath(a.nnc)
    if a.write_tests:
        write_tests([int(s) for s in a.write_tests.split(",")])
        return 0
    start = time.monotonic()
    failed, skipped, stats, kinds = 0, 0, {}, {}
    for seed in range(a.seed, a.seed + a.cases):
        work = tempfile.mkdtemp(prefix="nnc-torch-optim.")
        try:
            case, problems = check(nnc, seed, work, stats)
            for word in ("sgd", "adam(", "adamw", "rmsprop", "nesterov", "centered", "schedule", "warmup",
                         "clip_norm", "early_stop", "embedding", "max(", "min(", "where(", "f32"):
                text = case.text()
                if word in text:
                    kinds[word] = kinds.get(word, 0) + 1
            if problems is None:
                skipped += 1
            elif problems:
                failed += 1
                dest = os.path.join(a.keep, "case-%d" % seed)
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(work, dest)
                print("FAIL case %d (%s): %s\n  kept in %s" % (seed, case.train_lines[0], " | ".join(problems), dest))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("cases with: " + ", ".join("%s %d" % (k.rstrip("("), v) for k, v in kinds.items()))
    print("largest relative difference from torch: " + ", ".join("%s %.2g" % kv for kv in sorted(stats.items())))
    print("torch_optim_check: %d cases from seed %d: %d equal torch, %d differ, %d skipped (torch's loss was "
          "not finite); %.0f s" % (a.cases, a.seed, a.cases - failed - skipped, failed, skipped,
                                   time.monotonic() - start))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
