#!/usr/bin/env python3
"""difftest.py NNC [--seed S] [--count N | --minutes M] [--keep DIR] - random
models, and the two engines of nnc checked against each other.

Each model is generated from its seed (the same seed makes the same model on
any machine): a chain or DAG of the language's ops on a random input shape,
a loss, a dtype, a batch size, an initializer and an optimizer, with a small
CSV data set. For each model:

  grad    `--grad` of the interpreter and of `--jit` (at a random -O level)
          agree: 1e-12 relative in f64 (or within 1e-12 of the largest
          gradient or the loss); in f32 within 1e-5 of the largest gradient
          or the loss (a sum of cancelling f32 terms is known only to ~1e-7
          of its terms); the loss to 1e-12 (f64) or 1e-5 (f32) relative (a
          power or exp of an f32 value multiplies its rounding);
  check   `--check-grad` passes, with the interpreter and with `--jit`;
  train   a few epochs of `--train` in both engines end at the same final
          losses (1e-9 relative in f64, 1e-3 in f32), or both diverge.

nnc must never crash (a signal, or an exit status other than 0 and 1). A
model the generator made badly (the interpreter's loss is not finite) is
skipped and counted. A failing model is kept in DIR/seed-S/ (default
./difftest-failures) with its data, every command, and what each printed.

A model may have a second input, word indices w[L] with an embedding (its
data whole rows of the table), and a schedule and clip_norm in its train
block. Ops come from the tables OPS, LOSSES, INITS and OPTIMIZERS below: a new op,
loss or optimizer is one more entry (a function that writes its expression
from the values made so far, and says what shape and range it gives).
"""
import argparse
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------
# values: what the generator knows about each named value

class Val:
    """A value of the model: its name, per-sample shape, and what is known
    of its range: |v| <= bound (None: unknown) and v >= lo (None: unknown)."""

    def __init__(self, name, shape, bound=None, lo=None, dep=False):
        self.name, self.shape, self.bound, self.lo = name, tuple(shape), bound, lo
        self.dep = dep  # depends on a parameter: its ops' derivatives are used

    @property
    def rank(self):
        return len(self.shape)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def shape_text(shape):
    return "[%s]" % ", ".join(str(d) for d in shape)


def mul_bound(a, b):
    return None if a is None or b is None else a * b


def add_bound(a, b):
    return None if a is None or b is None else a + b


class Gen:
    """One model being written: its statements, values and parameters."""

    def __init__(self, rng):
        self.rng = rng
        self.lines = []      # statements of the model block, after inputs
        self.params = []     # param declarations
        self.pool = []       # values an op may use
        self.counter = 0
        self.layers = 0      # named linear layers
        self.deps = set()    # names of parameters and of values that depend on one

    def fresh(self, prefix="v"):
        self.counter += 1
        return "%s%d" % (prefix, self.counter)

    def bind(self, expr, shape, bound=None, lo=None):
        name = self.fresh()
        self.lines.append("%s = %s" % (name, expr))
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
        dep = bool(words & ({"linear", "embedding"} | self.deps))
        if dep:
            self.deps.add(name)
        v = Val(name, shape, bound, lo, dep)
        self.pool.append(v)
        return v

    def pick(self, pred=lambda v: True, recent=True):
        """A value of the pool satisfying pred: mostly one that depends on a
        parameter (else an op's derivative is never used), recent ones more
        often, so chains grow deep while older values still feed DAG
        edges."""
        cands = [v for v in self.pool if pred(v)]
        if not cands:
            return None
        if self.rng.random() < 0.85 and any(v.dep for v in cands):
            cands = [v for v in cands if v.dep]
        if recent and self.rng.random() < 0.6:
            return cands[-1]
        return self.rng.choice(cands)

    def param(self, shape, bound_hint=1.0):
        """A new explicit parameter of this shape with a random initializer."""
        name = self.fresh("p")
        init, bound = self.rng.choice(PARAM_INITS)(self.rng, shape)
        decl = "param %s%s = %s" % (name, shape_text(shape) if shape else "", init)
        self.params.append(decl)
        self.deps.add(name)
        return Val(name, shape, bound, None, True)

    # guards: expressions that keep an op inside its domain whatever the value

    def positive(self, v, at_least):
        """Text of an expression of v that is >= at_least."""
        if v.lo is not None and v.lo >= at_least:
            return v.name, v.bound
        c = max(at_least, 0.1) + round(self.rng.uniform(0, 0.5), 2)
        forms = [
            ("softplus(%s) + %g" % (v.name, c), None),
            ("%s ^ 2 + %g" % (v.name, c), None),
            ("sigmoid(%s) + %g" % (v.name, c), 1 + c),
            ("abs(%s) + %g" % (v.name, c), add_bound(v.bound, c)),
            ("exp(tanh(%s)) + %g" % (v.name, c), math.e + c),
        ]
        return self.rng.choice(forms)

    def bounded(self, v, limit):
        """Text of an expression of v within [-limit, limit]."""
        if v.bound is not None and v.bound <= limit:
            return v.name, v.bound
        s = round(self.rng.uniform(0.5, limit), 2)
        return self.rng.choice(["%g * tanh(%s)" % (s, v.name), "%g * sigmoid(%s)" % (s, v.name)]), s

    def same_shape_or_param(self, a):
        """A second operand broadcastable with a: a value of the same shape,
        a scalar, a trailing-axis vector, a new parameter or a constant."""
        r = self.rng.random()
        if r < 0.4:
            b = self.pick(lambda v: v.shape == a.shape and v is not a, recent=False)
            if b:
                return b.name, b
        if r < 0.55:
            b = self.pick(lambda v: v.rank == 0 and v is not a, recent=False)
            if b:
                return b.name, b
        if r < 0.75:
            shape = a.shape
            if a.rank >= 1 and self.rng.random() < 0.5:
                shape = a.shape[-1:] if self.rng.random() < 0.7 else ()
            p = self.param(shape)
            return p.name, p
        c = round(self.rng.uniform(0.2, 2.0), 2) * self.rng.choice([1, -1])
        return "%g" % c, Val("%g" % c, (), abs(c), c)


# ---------------------------------------------------------------------------
# the op table: each entry writes one binding, or returns None when the pool
# has nothing it can take

def op_unary(fn, bound_of, lo_of=lambda v: None, guard=None):
    def make(g):
        v = g.pick(lambda v: True)
        text, bnd = v.name, v.bound
        if guard == "pos":
            text, bnd = g.positive(v, 0.2)
        elif guard == "small":
            text, bnd = g.bounded(v, 3.0)
        chain = g.rng.random() < 0.4 and guard is None
        expr = "%s -> %s" % (text, fn) if chain else "%s(%s)" % (fn, text)
        return g.bind(expr, v.shape, bound_of(bnd), lo_of(bnd))
    return make


def op_leaky(g):
    v = g.pick()
    slope = g.rng.choice([0.01, 0.1, 0.2, 0.3])
    expr = ("%s -> leaky_relu(slope: %g)" % (v.name, slope) if g.rng.random() < 0.5
            else "leaky_relu(%s, slope: %g)" % (v.name, slope))
    return g.bind(expr, v.shape, v.bound)


def op_neg(g):
    v = g.pick()
    return g.bind("-%s" % v.name, v.shape, v.bound)


def op_pow(g):
    v = g.pick()
    k = g.rng.choice([2, 3, 0.5, 1.7, -1, 2.5])
    if k in (2, 3):
        text, b = g.bounded(v, 2.0)
        return g.bind("(%s) ^ %g" % (text, k), v.shape, b ** k, 0 if k == 2 else None)
    text, b = g.positive(v, 0.5 if k < 0 else 0.2)
    return g.bind("(%s) ^ %g" % (text, k), v.shape, None, 0)


def op_binary(sym):
    def make(g):
        a = g.pick()
        btext, b = g.same_shape_or_param(a)
        shape = a.shape if a.rank >= b.rank else b.shape
        if sym == "/":
            btext, bb = g.positive(b, 0.5)
            bound = None if a.bound is None else a.bound / 0.5
            return g.bind("%s / (%s)" % (a.name, btext), shape, bound)
        if g.rng.random() < 0.5:  # either order
            a_text, b_text = a.name, btext
        else:
            a_text, b_text = btext, a.name
        bound = mul_bound(a.bound, b.bound) if sym == "*" else add_bound(a.bound, b.bound)
        return g.bind("%s %s %s" % (a_text, sym, b_text), shape, bound)
    return make


def op_linear(g):
    v = g.pick(lambda v: v.rank in (1, 2))
    if v is None:
        return None
    units = g.rng.randint(1, 5)
    args = [str(units)]
    if g.rng.random() < 0.2:
        args.append("bias: false")
    if g.rng.random() < 0.15:
        g.layers += 1
        args.append('name: "fc%d"' % g.layers)
    return g.bind("%s -> linear(%s)" % (v.name, ", ".join(args)), v.shape[:-1] + (units,))


def op_matmul(g):
    v = g.pick(lambda v: v.rank in (1, 2))
    if v is None:
        return None
    form = g.rng.choice(["left", "right", "dot"] if v.rank == 1 else ["left", "right"])
    n = g.rng.randint(1, 4)
    if form == "left":   # P[n, k] @ v
        p = g.param((n, v.shape[0]))
        return g.bind("%s @ %s" % (p.name, v.name), (n,) + v.shape[1:])
    if form == "right":  # v @ P[k, n]
        p = g.param((v.shape[-1], n))
        return g.bind("%s @ %s" % (v.name, p.name), v.shape[:-1] + (n,))
    other = g.pick(lambda u: u.shape == v.shape and u is not v, recent=False)
    other = other or g.param(v.shape)
    return g.bind("%s @ %s" % (v.name, other.name), ())


def op_transpose(g):
    v = g.pick(lambda v: v.rank == 2)
    if v is None:
        return None
    expr = "%s -> transpose" % v.name if g.rng.random() < 0.5 else "transpose(%s)" % v.name
    return g.bind(expr, (v.shape[1], v.shape[0]), v.bound, v.lo)


def op_reduce(fn):
    def make(g):
        v = g.pick(lambda v: v.rank >= 1)
        if v is None:
            return None
        n = numel(v.shape)
        if v.rank == 2 and g.rng.random() < 0.6:
            axis = g.rng.choice([0, 1, -1, -2])
            kept = v.shape[1] if axis in (0, -2) else v.shape[0]
            over = v.shape[0] if axis in (0, -2) else v.shape[1]
            expr = ("%s -> %s(axis: %d)" % (v.name, fn, axis) if g.rng.random() < 0.5
                    else "%s(%s, axis: %d)" % (fn, v.name, axis))
            bound = mul_bound(v.bound, over) if fn == "sum" else v.bound
            return g.bind(expr, (kept,), bound)
        bound = mul_bound(v.bound, n) if fn == "sum" else v.bound
        return g.bind("%s(%s)" % (fn, v.name), (), bound)
    return make


def op_lastaxis(fn):
    def make(g):
        v = g.pick(lambda v: v.rank >= 1)
        if v is None:
            return None
        if fn == "softmax":
            return g.bind("%s(%s)" % (fn, v.name), v.shape, 1.0, 0)
        if fn == "log_softmax":
            return g.bind("%s -> %s" % (v.name, fn), v.shape, None)
        return g.bind("%s(%s)" % (fn, v.name), v.shape[:-1], None)  # logsumexp
    return make


def op_maxmin(fn):
    """max(a, b) or min(a, b): b a value, parameter or constant; ties come
    from relu's zeros against 0 and from a value against itself."""
    def make(g):
        a = g.pick()
        r = g.rng.random()
        if r < 0.15:
            btext, b = a.name, a
        elif r < 0.3:
            btext, b = "0", Val("0", (), 0.0, 0.0)
        else:
            btext, b = g.same_shape_or_param(a)
        shape = a.shape if a.rank >= b.rank else b.shape
        args = (a.name, btext) if g.rng.random() < 0.5 else (btext, a.name)
        bound = None if a.bound is None or b.bound is None else max(a.bound, b.bound)
        lo = None
        if fn == "max" and (a.lo is not None or b.lo is not None):
            lo = max(x for x in (a.lo, b.lo) if x is not None)
        return g.bind("%s(%s, %s)" % (fn, *args), shape, bound, lo)
    return make


def op_where(g):
    """where(c, a, b): the condition and one side from the pool, the other
    side a value, parameter or constant broadcasting with them."""
    c = g.pick()
    other = g.pick(lambda v: v.shape == c.shape, recent=False) or c
    btext, b = g.same_shape_or_param(c)
    a_text, a = (other.name, other) if g.rng.random() < 0.7 else ("-%s" % c.name, c)
    if g.rng.random() < 0.5:
        a_text, a, btext, b = btext, b, a_text, a
    bound = None if a.bound is None or b.bound is None else max(a.bound, b.bound)
    return g.bind("where(%s, %s, %s)" % (c.name, a_text, btext), c.shape, bound)


def op_residual(g):
    """a + f(a): the DAG every residual network has."""
    v = g.pick(lambda v: v.rank in (1, 2))
    if v is None:
        return None
    f = g.rng.choice(["tanh", "relu", "sigmoid"])
    return g.bind("%s + (%s -> linear(%d) -> %s)" % (v.name, v.name, v.shape[-1], f), v.shape)


OPS = [  # (weight, maker)
    (3, op_unary("relu", lambda b: b, lambda b: 0)),
    (3, op_unary("tanh", lambda b: 1.0)),
    (3, op_unary("sigmoid", lambda b: 1.0, lambda b: 0)),
    (2, op_unary("exp", lambda b: None if b is None else math.exp(b), lambda b: 0, guard="small")),
    (2, op_unary("log", lambda b: None, guard="pos")),
    (2, op_unary("sqrt", lambda b: None if b is None else math.sqrt(b), lambda b: 0.4, guard="pos")),
    (2, op_unary("abs", lambda b: b, lambda b: 0)),
    (2, op_unary("softplus", lambda b: None if b is None else b + 1, lambda b: 0)),
    (2, op_leaky),
    (1, op_neg),
    (2, op_pow),
    (2, op_binary("+")),
    (2, op_binary("-")),
    (2, op_binary("*")),
    (2, op_binary("/")),
    (4, op_linear),
    (2, op_matmul),
    (1, op_transpose),
    (1, op_reduce("sum")),
    (1, op_reduce("mean")),
    (1, op_lastaxis("softmax")),
    (1, op_lastaxis("log_softmax")),
    (1, op_lastaxis("logsumexp")),
    (1, op_residual),
    (2, op_maxmin("max")),
    (2, op_maxmin("min")),
    (2, op_where),
]

# ops that bring in a parameter
PARAMETRIC_OPS = [op_linear, op_matmul, op_residual, op_binary("*"), op_binary("+")]

# ---------------------------------------------------------------------------
# inputs, losses, initializers, optimizers

INPUT_SHAPES = [  # (weight, shape maker)
    (4, lambda r: (r.randint(1, 6),)),
    (2, lambda r: (r.randint(2, 4), r.randint(2, 4))),
    (1, lambda r: (r.randint(6, 20),)),
]


def to_vector(g, v, n):
    """y of shape [n] from v (a linear layer, unless it already is [n])."""
    if v.shape == (n,) and g.rng.random() < 0.5:
        return v
    if v.rank == 0:
        v = g.bind("%s * %s" % (v.name, g.param((n,)).name), (n,))
        return v
    if v.rank == 2:
        v = g.bind("%s -> sum(axis: 0)" % v.name, v.shape[1:])
    return g.bind("%s -> linear(%d)" % (v.name, n), (n,))


def loss_regression(kind):
    def make(g, last):
        if last.rank == 2 and g.rng.random() < 0.5:
            y, tshape = last, last.shape
        elif last.rank == 0 and g.rng.random() < 0.5:
            y, tshape = last, ()
        else:
            n = g.rng.randint(1, 3)
            y, tshape = to_vector(g, last, n), (n,)
        return y, "%s(%s, t)" % (kind, y.name), tshape, "real"
    return make


def loss_bce(g, last):
    n = g.rng.randint(1, 3)
    z = to_vector(g, last, n)
    p = g.bind("sigmoid(%s)" % z.name, (n,), 1.0, 0)
    return p, "bce(%s, t)" % p.name, (n,), "binary"


def loss_bce_logits(g, last):
    n = g.rng.randint(1, 3)
    z = to_vector(g, last, n)
    return z, "bce_logits(%s, t)" % z.name, (n,), "binary"


def loss_cross_entropy(g, last):
    n = g.rng.randint(2, 5)
    z = to_vector(g, last, n)
    return z, "cross_entropy(%s, t)" % z.name, (n,), "onehot"


LOSSES = [
    (3, loss_regression("squared")),
    (2, loss_regression("mse")),
    (1, loss_bce),
    (1, loss_bce_logits),
    (2, loss_cross_entropy),
]


def init_normal(r, shape):
    s = r.choice([0.1, 0.3, 0.5, 1.0])
    return "normal(std: %g%s)" % (s, seed_arg(r)), None


def init_uniform(r, shape):
    s = r.choice([0.2, 0.5, 1.0])
    return "uniform(limit: %g%s)" % (s, seed_arg(r)), s


def init_constant(r, shape):
    c = r.choice([0.5, -0.3, 1.0, 0.1])
    return "constant(value: %g)" % c, abs(c)


def init_named(name):
    return lambda r, shape: (name if r.random() < 0.5 else "%s(seed: %d)" % (name, r.randint(0, 99)), None)


def seed_arg(r):
    return ", seed: %d" % r.randint(0, 99) if r.random() < 0.5 else ""


PARAM_INITS = [init_normal, init_uniform, init_constant, init_named("xavier_normal"),
               init_named("xavier_uniform"), init_named("he_normal")]
TRAIN_INITS = ["xavier_normal", "xavier_uniform", "he_normal", "normal(std: 0.3)", "uniform(limit: 0.5)"]


def opt_sgd(r):
    args = ["lr: %g" % r.choice([0.01, 0.02, 0.05])]
    if r.random() < 0.5:
        args.append("momentum: %g" % r.choice([0.5, 0.9]))
        if r.random() < 0.3:
            args.append("nesterov: true")
    if r.random() < 0.3:
        args.append("weight_decay: %g" % r.choice([0.001, 0.01]))
    return "sgd(%s)" % ", ".join(args)


def opt_adam(r):
    args = ["lr: %g" % r.choice([0.001, 0.005, 0.01])]
    if r.random() < 0.3:
        args.append("beta1: %g" % r.choice([0.8, 0.9]))
    if r.random() < 0.3:
        args.append("beta2: %g" % r.choice([0.99, 0.999]))
    if r.random() < 0.2:
        args.append("eps: %g" % r.choice([1e-6, 1e-8]))
    if r.random() < 0.3:
        args.append("weight_decay: %g" % r.choice([0.01, 0.1]))
    return "%s(%s)" % (r.choice(["adam", "adamw"]), ", ".join(args))


def opt_rmsprop(r):
    args = ["lr: %g" % r.choice([0.001, 0.005, 0.01])]
    if r.random() < 0.3:
        args.append("alpha: %g" % r.choice([0.9, 0.99]))
    if r.random() < 0.3:
        args.append("momentum: %g" % r.choice([0.5, 0.9]))
    if r.random() < 0.3:
        args.append("centered: true")
    return "rmsprop(%s)" % ", ".join(args)


OPTIMIZERS = [(2, opt_sgd), (1, opt_adam), (1, opt_rmsprop)]


def schedule_lines(r, epochs):
    """A schedule (with or without warm-up) and clipping, sometimes."""
    lines = []
    if r.random() < 0.3:
        kind = r.choice(["step(every: 1, gamma: 0.5", "cosine(min_lr: 0.001", "constant("])
        warm = ", warmup: %d" % r.randint(1, epochs) if r.random() < 0.5 or kind == "constant(" else ""
        lines.append("  schedule %s%s)" % (kind, warm if kind != "constant(" else warm[2:]))
    if r.random() < 0.2:
        lines.append("  clip_norm %g" % r.choice([0.05, 0.5, 5]))
    return lines


def weighted(r, table):
    total = sum(w for w, _ in table)
    x = r.uniform(0, total)
    for w, item in table:
        x -= w
        if x <= 0:
            return item
    return table[-1][1]


# ---------------------------------------------------------------------------
# one model

def generate(seed):
    """(source text of the model, CSV text, dtype) for this seed."""
    r = random.Random(seed)
    g = Gen(r)
    dtype = r.choice(["f32", "f64"])
    ishape = weighted(r, INPUT_SHAPES)(r)
    x = Val("x", ishape, 1.5)
    g.pool.append(x)
    vocab = None
    if r.random() < 0.2:  # word indices w[L] and their embedding [L, D]
        length, vocab, dim = r.randint(1, 5), r.randint(2, 9), r.randint(1, 4)
        g.bind("w -> embedding(%d, %d)" % (vocab, dim), (length, dim), None)
    steps = r.randint(1, 7)
    for _ in range(steps):
        for _attempt in range(10):
            # mostly a parameter early, so the ops after it have gradients to check
            early = not any(v.dep for v in g.pool) and r.random() < 0.8
            op = r.choice(PARAMETRIC_OPS) if early else weighted(r, OPS)
            if op(g) is not None:
                break
    out, loss, tshape, tkind = weighted(r, LOSSES)(g, g.pool[-1])
    if r.random() < 0.2:
        p = g.pick(lambda v: v.name.startswith("p"), recent=False)
        extra = [v for v in g.pool if v is not x]
        if extra and r.random() < 0.5:
            v = r.choice(extra)
            loss = "%s + 0.01 * sum(%s ^ 2)" % (loss, v.name) if v.rank else "%s + 0.01 * %s ^ 2" % (loss, v.name)
        elif r.random() < 0.5:
            loss = "0.5 * %s" % loss
    rows = r.randint(3, 12)
    batch = r.randint(1, rows)
    onehot_column = tkind == "onehot" and r.random() < 0.4
    src = ["# difftest seed %d" % seed, "model m%d {" % seed, "  dtype %s" % dtype,
           "  input x%s" % shape_text(ishape)] + (["  input w[%d]" % length] if vocab else []) + [
           "  target t%s" % (shape_text(tshape) if tshape else "")]
    src += ["  " + p for p in g.params]
    src += ["  " + line for line in g.lines]
    src.append("  loss %s" % loss)
    if r.random() < 0.2:  # any value may be named the output
        src.append("  output %s" % r.choice([v for v in g.pool if v is not x] or [out]).name)
    src.append("}")
    data_args = ['"data.csv"']
    if onehot_column:
        data_args.append("onehot: true")
    if r.random() < 0.2:
        data_args.append("shuffle: true")
    train = ["train {", "  data csv(%s)" % ", ".join(data_args)]
    if rows >= 4 and r.random() < 0.3:
        train.append("  split %s" % r.choice(["%d" % (rows - 1), "0.75"]))
    if r.random() < 0.7:
        init = r.choice(TRAIN_INITS)
        train.append("  init %s" % (init if "(" in init or r.random() < 0.5 else "%s(seed: %d)" % (init, r.randint(0, 99))))
    train.append("  optimizer %s" % weighted(r, OPTIMIZERS)(r))
    epochs = r.randint(1, 3)
    train += schedule_lines(r, epochs) + ["  epochs %d" % epochs, "  batch %d" % batch]
    if r.random() < 0.3:
        train.append("  shuffle true")
    if r.random() < 0.5:
        train.append("  seed %d" % r.randint(0, 1000))
    train.append("}")
    text = "\n".join(src + train) + "\n"

    nin, nt = numel(ishape), numel(tshape)
    header = ["x%d" % i for i in range(nin)] + (["w%d" % i for i in range(length)] if vocab else []) + (["label"] if onehot_column else ["t%d" % i for i in range(nt)])
    lines = [",".join(header)]
    for _ in range(rows):
        xs = ["%.3f" % r.uniform(-1.5, 1.5) for _ in range(nin)]
        xs += [str(r.randrange(vocab)) for _ in range(length)] if vocab else []
        if tkind == "real":
            ts = ["%.3f" % r.uniform(-1, 1) for _ in range(nt)]
        elif tkind == "binary":
            ts = [str(r.randint(0, 1)) for _ in range(nt)]
        else:
            k = r.randrange(nt)
            ts = [str(k)] if onehot_column else [str(int(i == k)) for i in range(nt)]
        lines.append(",".join(xs + ts))
    return text, "\n".join(lines) + "\n", dtype


# ---------------------------------------------------------------------------
# running nnc and comparing

NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf)$", re.I)


class Failure(Exception):
    pass


def run(nnc, args, cwd, log, timeout=120):
    """Runs nnc; records the command and its output; a crash is a failure."""
    env = dict(os.environ, NNC_CACHE="0")
    try:
        p = subprocess.run([nnc] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        log.append(("nnc " + " ".join(args), "", "timed out after %d s" % timeout, None))
        raise Failure("nnc %s: timed out" % " ".join(args))
    log.append(("nnc " + " ".join(args), p.stdout, p.stderr, p.returncode))
    if p.returncode not in (0, 1):
        raise Failure("nnc %s: exit status %d (a crash)" % (" ".join(args), p.returncode))
    return p


def grad_lines(out):
    """{name: [numbers]} of a --grad output."""
    res = {}
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        nums = [w for w in words[1:] if NUMBER.match(w)]
        res[words[0]] = [float(w) for w in nums]
    return res


def compare_grads(a, b, f64):
    """Differences beyond the tolerance (see the top of this file): relative,
    with a floor at a small fraction of the largest gradient or the loss (a
    gradient that is zero in exact arithmetic, as through sum(softmax(v)),
    is rounding noise of the size of the terms it sums)."""
    bad = []
    if set(a) != set(b):
        return ["the engines print other lines: %s vs %s" % (sorted(a), sorted(b))]
    # the scale of the terms a gradient sums: the largest gradient, or the
    # loss when every gradient is (nearly) zero
    big = max([abs(v) for name in a for v in a[name] + b[name] if math.isfinite(v)] + [0.0])
    for name in a:
        va, vb = a[name], b[name]
        if len(va) != len(vb):
            bad.append("%s: %d values vs %d" % (name, len(va), len(vb)))
            continue
        for i, (x, y) in enumerate(zip(va, vb)):
            if not (math.isfinite(x) and math.isfinite(y)):
                if not (math.isnan(x) and math.isnan(y)) and x != y:
                    bad.append("%s[%d]: %r vs %r" % (name, i, x, y))
                continue
            d = abs(x - y)
            if name == "loss":
                ok = d <= (1e-12 if f64 else 1e-5) * max(abs(x), abs(y))
            else:
                ok = d <= 1e-12 * max(abs(x), abs(y)) or d <= 1e-12 * big if f64 else d <= 1e-5 * big
            if not ok:
                bad.append("%s[%d]: interpreter %r, jit %r" % (name, i, x, y))
    return bad


def finals(out):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^final (train loss|valid loss) (\S+)$", out, re.M)}


def check_model(nnc, seed, work, opt):
    """Runs every check on the model of this seed in work; returns
    'ok' or 'skipped', or raises Failure."""
    text, csv, dtype = generate(seed)
    with open(os.path.join(work, "m.nn"), "w") as f:
        f.write(text)
    with open(os.path.join(work, "data.csv"), "w") as f:
        f.write(csv)
    log = opt["log"]
    f64 = dtype == "f64"
    interp = run(nnc, ["m.nn", "--grad"], work, log)
    if interp.returncode != 0:
        raise Failure("the interpreter refused a generated model: %s" % interp.stderr.strip()[:400])
    ig = grad_lines(interp.stdout)
    if not all(math.isfinite(v) for vs in ig.values() for v in vs):
        return "skipped"
    level = random.Random(seed).choice(["-O0", "-O1", "-O2", "-O3"])
    jit = run(nnc, ["m.nn", "--grad", "--jit", level], work, log)
    if jit.returncode != 0:
        raise Failure("--grad --jit %s failed: %s" % (level, jit.stderr.strip()[:400]))
    bad = compare_grads(ig, grad_lines(jit.stdout), f64)
    if bad:
        raise Failure("--grad: interpreter and --jit %s differ: %s" % (level, "; ".join(bad[:5])))
    for engine in ([], ["--jit"]):
        c = run(nnc, ["m.nn", "--check-grad"] + engine, work, log)
        if c.returncode != 0:
            raise Failure("--check-grad %s failed" % " ".join(engine))
    ti = run(nnc, ["m.nn", "--train"], work, log)
    tj = run(nnc, ["m.nn", "--train", "--jit", "--threads", "1"], work, log)
    if ti.returncode != tj.returncode:
        raise Failure("--train: interpreter exit %d, --jit exit %d" % (ti.returncode, tj.returncode))
    if ti.returncode == 0:
        fi, fj = finals(ti.stdout), finals(tj.stdout)
        if set(fi) != set(fj) or not fi:
            raise Failure("--train: final lines differ: %s vs %s" % (fi, fj))
        rtol = 1e-9 if f64 else 1e-3
        for k in fi:
            a, b = fi[k], fj[k]
            if abs(a - b) > rtol * max(abs(a), abs(b)) + (0 if f64 else 1e-6):
                raise Failure("--train: final %s %r (interpreter) vs %r (jit)" % (k, a, b))
    elif "diverged" not in ti.stderr or "diverged" not in tj.stderr:
        raise Failure("--train failed: %s | %s" % (ti.stderr.strip()[:300], tj.stderr.strip()[:300]))
    return "ok"


def keep(faildir, seed, work, log, why):
    dest = os.path.join(faildir, "seed-%d" % seed)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(work, dest)
    with open(os.path.join(dest, "why.txt"), "w") as f:
        f.write("difftest seed %d: %s\n\n" % (seed, why))
        for cmd, out, err, status in log:
            f.write("$ %s   (exit %s)\n%s%s\n" % (cmd, status, out, err))
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("nnc")
    ap.add_argument("--seed", type=int, default=1, help="the first model's seed")
    ap.add_argument("--count", type=int, default=20, help="models to check")
    ap.add_argument("--minutes", type=float, help="check models until this much time has passed")
    ap.add_argument("--keep", default="difftest-failures", help="where failing models are kept")
    ap.add_argument("--show", action="store_true", help="print the model of --seed and stop")
    a = ap.parse_args()
    if a.show:
        text, csv, _ = generate(a.seed)
        sys.stdout.write(text + "\n# data.csv\n" + csv)
        return 0
    nnc = os.path.abspath(a.nnc)
    start = time.monotonic()
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    seed = a.seed
    while True:
        if a.minutes is not None:
            if time.monotonic() - start > a.minutes * 60:
                break
        elif seed >= a.seed + a.count:
            break
        work = tempfile.mkdtemp(prefix="nnc-difftest.")
        log = []
        try:
            counts[check_model(nnc, seed, work, {"log": log})] += 1
        except Failure as e:
            counts["failed"] += 1
            dest = keep(a.keep, seed, work, log, str(e))
            print("FAIL seed %d: %s\n  kept in %s" % (seed, e, dest))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        seed += 1
    print("difftest: %d models from seed %d: %d ok, %d skipped (the interpreter's loss was not finite), "
          "%d failed, %.0f s" % (seed - a.seed, a.seed, counts["ok"], counts["skipped"], counts["failed"],
                                 time.monotonic() - start))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
