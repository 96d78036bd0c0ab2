#!/usr/bin/python3
"""make.py -- the convolution and pooling gradients of tests/torchref, from
PyTorch.

    /usr/bin/python3 tests/torchref/make.py

Writes, for each case below, into this directory: CASE.nn (an f64 model in
nnc's language), CASE.csv (its rows: inputs then targets, flattened
row-major), CASE.safetensors (its parameters, by nnc's names) and
CASE.grad (what `nnc CASE.nn --grad --load CASE.safetensors` must print:
the batch loss and every parameter's gradient, computed by PyTorch's own
modules in float64). The files are checked in; the tests
(torchref.cmake) compare nnc's numbers with them and never need PyTorch.
Run it again only to add a case: it draws the same numbers every time.

Needs Debian's python3-torch (PyTorch 1.13), which is /usr/bin/python3's.
"""
import json
import os
import struct
import warnings

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Case:
    """A model written twice: in .nn (`body`) and as PyTorch modules."""

    def __init__(self, name, comment, inputs, target, body, loss, rows, layers, forward,
                 onehot=False):
        self.name, self.comment = name, comment
        self.inputs, self.target = inputs, target  # [(name, shape)], (name, shape)
        self.body, self.loss = body, loss
        self.rows, self.layers, self.forward = rows, layers, forward
        self.onehot = onehot


def conv2d(cin, cout, kernel, stride=1, padding=0, bias=True):
    return torch.nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=bias)


def conv1d(cin, cout, kernel, stride=1, padding=0, bias=True):
    return torch.nn.Conv1d(cin, cout, kernel, stride=stride, padding=padding, bias=bias)


def cases():
    out = []

    L = [conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), torch.nn.Linear(60, 4)]
    out.append(Case(
        "conv2d_stride_pad", "conv2d with a kernel, stride and padding per axis",
        [("x", [2, 7, 6])], ("t", [4]),
        "y = x -> conv2d(3, kernel: [3, 2], stride: [2, 1], padding: [1, 0]) -> tanh -> flatten "
        "-> linear(4)",
        "squared", 3, [("conv1", L[0]), ("linear1", L[1])],
        lambda x, L=L: L[1](torch.tanh(L[0](x[0])).flatten(1))))

    L = [conv2d(2, 3, 4, padding="same"), torch.nn.Linear(18, 3)]
    out.append(Case(
        "conv2d_same_even", "padding \"same\" with an even kernel: the extra row and column at the end",
        [("x", [2, 6, 5])], ("t", [3]),
        "y = x -> conv2d(3, kernel: 4, padding: \"same\") -> relu -> max_pool2d(2) -> flatten "
        "-> linear(3)",
        "cross_entropy", 3, [("conv1", L[0]), ("linear1", L[1])],
        lambda x, L=L: L[1](F.max_pool2d(F.relu(L[0](x[0])), 2).flatten(1)), onehot=True))

    L = [conv1d(3, 4, 3, stride=2, padding=1, bias=False), torch.nn.Linear(8, 2)]
    out.append(Case(
        "conv1d_pool", "conv1d without bias, overlapping max pooling with padding, average pooling",
        [("x", [3, 10])], ("t", [2]),
        "y = x -> conv1d(4, kernel: 3, stride: 2, padding: 1, bias: false) -> sigmoid\n"
        "    -> max_pool1d(2, stride: 1, padding: 1) -> avg_pool1d(3) -> flatten -> linear(2)",
        "mse", 3, [("conv1", L[0]), ("linear1", L[1])],
        lambda x, L=L: L[1](F.avg_pool1d(F.max_pool1d(torch.sigmoid(L[0](x[0])), 2, stride=1, padding=1),
                                    3).flatten(1))))

    L = [conv2d(2, 2, 1), torch.nn.Linear(3, 2)]
    out.append(Case(
        "pool2d_reshape", "a 1x1 convolution, pooling windows per axis, reshape with -1",
        [("x", [2, 5, 7])], ("t", [8]),
        "h = x -> conv2d(2, kernel: 1) -> max_pool2d([3, 2], stride: [2, 1], padding: [1, 1])\n"
        "    -> avg_pool2d([2, 3], stride: [1, 2])\n"
        "y = reshape(h, shape: [4, -1]) -> linear(2) -> flatten",
        "squared", 8, [("conv1", L[0]), ("linear1", L[1])],
        lambda x, L=L: L[1](F.avg_pool2d(F.max_pool2d(L[0](x[0]), (3, 2), stride=(2, 1), padding=(1, 1)),
                                    (2, 3), stride=(1, 2)).reshape(-1, 4, 3)).flatten(1)))

    L = [conv2d(1, 4, 3, padding="same"), conv2d(4, 6, 3, padding="same"), torch.nn.Linear(24, 5),
         torch.nn.Linear(5, 3)]
    out.append(Case(
        "conv_net", "two convolutions, relu and max pooling, two linear layers: a small image classifier",
        [("x", [1, 8, 8])], ("t", [3]),
        "y = x -> conv2d(4, kernel: 3, padding: \"same\") -> relu -> max_pool2d(2)\n"
        "      -> conv2d(6, kernel: 3, padding: \"same\") -> relu -> max_pool2d(2)\n"
        "      -> flatten -> linear(5) -> relu -> linear(3)",
        "cross_entropy", 1,
        [("conv1", L[0]), ("conv2", L[1]), ("linear1", L[2]), ("linear2", L[3])],
        lambda x, L=L: L[3](F.relu(L[2](F.max_pool2d(F.relu(L[1](F.max_pool2d(F.relu(L[0](x[0])), 2))),
                                                2).flatten(1)))), onehot=True))

    L = [conv1d(2, 3, 2, padding="same"), conv1d(3, 2, 4, stride=3)]
    out.append(Case(
        "conv1d_same_even", "conv1d with padding \"same\" and an even kernel, then a strided conv1d",
        [("x", [2, 9])], ("t", [4]),
        "y = x -> conv1d(3, kernel: 2, padding: \"same\") -> tanh -> conv1d(2, kernel: 4, stride: 3) "
        "-> flatten",
        "squared", 3, [("conv1", L[0]), ("conv2", L[1])],
        lambda x, L=L: L[1](torch.tanh(L[0](x[0]))).flatten(1)))

    L = [conv2d(3, 2, (2, 3), stride=3, padding=(1, 2))]
    out.append(Case(
        "conv2d_two_inputs", "stride larger than the kernel, a residual sum of two inputs",
        [("a", [3, 5, 5]), ("b", [3, 5, 5])], ("t", [2, 2, 3]),
        "y = (a + b) -> conv2d(2, kernel: [2, 3], stride: 3, padding: [1, 2])",
        "mse", 3, [("conv1", L[0])],
        lambda x, L=L: L[0](x[0] + x[1])))
    return out


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def loss_of(kind, y, t):
    """nnc's per-sample losses, then their mean over the batch."""
    y = y.flatten(1)
    t = t.flatten(1)
    if kind == "squared":
        per = ((t - y) ** 2).sum(1)
    elif kind == "mse":
        per = ((y - t) ** 2).mean(1)
    elif kind == "cross_entropy":
        per = -(t * torch.log_softmax(y, 1)).sum(1)
    else:
        raise ValueError(kind)
    return per.mean()


def fmt(v):
    return repr(float(v))


def write_safetensors(path, tensors):
    header, blob = {}, b""
    for name, t in tensors:
        data = t.detach().contiguous().double().numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape),
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


def params_of(case):
    """(nnc name, tensor) in nnc's order of creation: per layer W, then b."""
    out = []
    for layer, mod in case.layers:
        out.append((layer + ".W", mod.weight))
        if mod.bias is not None:
            out.append((layer + ".b", mod.bias))
    return out


def write_case(case, gen):
    for _, mod in case.layers:
        mod.double()
        with torch.no_grad():
            for p in mod.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    xs = [torch.randn([case.rows] + shape, generator=gen, dtype=torch.float64) for _, shape in case.inputs]
    tname, tshape = case.target
    if case.onehot:
        labels = torch.randint(0, numel(tshape), (case.rows,), generator=gen)
        t = F.one_hot(labels, numel(tshape)).double().reshape([case.rows] + tshape)
    else:
        t = torch.randn([case.rows] + tshape, generator=gen, dtype=torch.float64)
    params = params_of(case)
    write_safetensors(os.path.join(HERE, case.name + ".safetensors"), params)

    y = case.forward(xs)
    loss = loss_of(case.loss, y, t)
    grads = torch.autograd.grad(loss, [p for _, p in params])

    lines = ["loss " + fmt(loss)]
    for (name, p), g in zip(params, grads):
        shape = "[" + ",".join(str(d) for d in p.shape) + "]"
        lines.append("%s %s %s" % (name, shape, " ".join(fmt(v) for v in g.flatten())))
    with open(os.path.join(HERE, case.name + ".grad"), "w") as f:
        f.write("\n".join(lines) + "\n")

    cols = []
    for (name, shape) in case.inputs + [case.target]:
        cols += ["%s%d" % (name, i) for i in range(numel(shape))]
    with open(os.path.join(HERE, case.name + ".csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for r in range(case.rows):
            vals = []
            for x in xs + [t]:
                vals += [fmt(v) for v in x[r].flatten()]
            f.write(",".join(vals) + "\n")

    decls = ["  input  %s[%s]" % (n, ", ".join(str(d) for d in s)) for n, s in case.inputs]
    body = "\n".join("  " + line for line in case.body.split("\n"))
    nn = ("# %s: %s\n"
          "# (written by tests/torchref/make.py; PyTorch's gradients in %s.grad)\n"
          "model %s {\n  dtype f64\n%s\n  target %s[%s]\n%s\n  loss %s(y, %s)\n}\n\n"
          "train {\n  data  csv(\"%s.csv\")\n  batch %d\n}\n") % (
              case.name, case.comment, case.name, case.name, "\n".join(decls), tname,
              ", ".join(str(d) for d in tshape), body, case.loss, tname, case.name, case.rows)
    with open(os.path.join(HERE, case.name + ".nn"), "w") as f:
        f.write(nn)


def main():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Using padding=.same. with even kernel")
    gen = torch.Generator().manual_seed(17)
    for case in cases():
        write_case(case, gen)
        print("wrote", case.name)


if __name__ == "__main__":
    main()
