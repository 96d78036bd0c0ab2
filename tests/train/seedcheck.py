#!/usr/bin/env python3
"""seedcheck.py - compare nnc's output with the seed's reference results.

  seedcheck.py grad EXPECTED.json OUTPUT          --grad output vs moons[0].first_sample_grad
  seedcheck.py losses EXPECTED.json OUTPUT WHICH  --train output's final lines vs
        WHICH = final | initial | batch32 | checkpoint:N   (moons[0])
  seedcheck.py params A.safetensors B.safetensors RTOL
        the same tensors (names, dtypes, shapes) with values equal to RTOL
  seedcheck.py model A.safetensors B.safetensors RTOL
        the same, leaving out optimizer state (optimizer.* tensors)

Numbers agree when |a - b| <= rtol * max(|a|, |b|) (so zeros must be zero).
Only the standard library (json, struct): no numpy.
"""
import json
import struct
import sys

RTOL = 1e-12


def close(a, b, rtol):
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def check_grad(expected_path, output_path):
    ref = json.load(open(expected_path))["moons"][0]["first_sample_grad"]
    lines = [l.split() for l in open(output_path).read().splitlines() if l.strip()]
    bad = []
    if not lines or lines[0][0] != "loss" or len(lines[0]) != 2:
        return ["first line is not `loss VALUE`: %r" % (lines[:1],)]
    if not close(float(lines[0][1]), ref["loss"], RTOL):
        bad.append("loss %s, expected %r" % (lines[0][1], ref["loss"]))
    names = [k for k in ref if k != "loss"]
    got_names = [l[0] for l in lines[1:]]
    if got_names != names:
        bad.append("parameters %s, expected %s in that order" % (got_names, names))
    for l in lines[1:]:
        name, values = l[0], [float(v) for v in l[2:]]
        if name not in ref:
            continue
        exp = ref[name]
        if len(values) != len(exp):
            bad.append("%s has %d values, expected %d" % (name, len(values), len(exp)))
            continue
        for k, (g, e) in enumerate(zip(values, exp)):
            if not close(g, e, RTOL):
                bad.append("%s[%d] = %r, expected %r" % (name, k, g, e))
    return bad


def final_lines(output_path):
    got = {}
    for line in open(output_path).read().splitlines():
        if line.startswith("final "):
            words = line.split()
            got[" ".join(words[:-1])] = float(words[-1])
    return got


def check_losses(expected_path, output_path, which):
    m = json.load(open(expected_path))["moons"][0]
    if which == "final":
        ref = {"final train loss": m["final_train_loss"], "final valid loss": m["final_test_loss"],
               "final train accuracy": m["final_train_accuracy"],
               "final valid accuracy": m["final_test_accuracy"]}
    elif which == "initial":
        ref = {"final train loss": m["initial_train_loss"], "final valid loss": m["initial_test_loss"]}
    elif which == "batch32":
        b = m["batch32"]
        ref = {"final train loss": b["final_train_loss"], "final valid loss": b["final_test_loss"],
               "final train accuracy": b["final_train_accuracy"],
               "final valid accuracy": b["final_test_accuracy"]}
    elif which.startswith("checkpoint:"):
        c = m["checkpoints"][which.split(":", 1)[1]]
        ref = {"final train loss": c["train_loss"], "final valid loss": c["test_loss"]}
    else:
        return ["unknown reference %r" % which]
    got = final_lines(output_path)
    bad = []
    for key, exp in ref.items():
        if key not in got:
            bad.append("no `%s` line" % key)
        elif not close(got[key], exp, 1e-9):
            bad.append("%s %r, expected %r (rel %.3g)" % (key, got[key], exp,
                       abs(got[key] - exp) / max(abs(exp), 1e-300)))
    return bad


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        fmt = {"F64": "d", "F32": "f"}[info["dtype"]]
        start, end = info["data_offsets"]
        count = (end - start) // struct.calcsize(fmt)
        values = struct.unpack("<%d%s" % (count, fmt), body[start:end])
        tensors[name] = (info["dtype"], list(info["shape"]), values)
    return tensors


def check_params(a_path, b_path, rtol, model_only=False):
    a, b = read_safetensors(a_path), read_safetensors(b_path)
    if model_only:
        a = {k: v for k, v in a.items() if not k.startswith("optimizer.")}
        b = {k: v for k, v in b.items() if not k.startswith("optimizer.")}
    bad = []
    if sorted(a) != sorted(b):
        bad.append("tensor names differ: %s vs %s" % (sorted(a), sorted(b)))
    for name in sorted(set(a) & set(b)):
        (da, sa, va), (db, sb, vb) = a[name], b[name]
        if da != db or sa != sb:
            bad.append("%s: %s %s vs %s %s" % (name, da, sa, db, sb))
            continue
        for k, (x, y) in enumerate(zip(va, vb)):
            if not close(x, y, rtol):
                bad.append("%s[%d] = %r vs %r" % (name, k, x, y))
    return bad


def main(argv):
    if len(argv) >= 4 and argv[1] == "grad":
        bad = check_grad(argv[2], argv[3])
    elif len(argv) >= 5 and argv[1] == "losses":
        bad = check_losses(argv[2], argv[3], argv[4])
    elif len(argv) >= 5 and argv[1] in ("params", "model"):
        bad = check_params(argv[2], argv[3], float(argv[4]), argv[1] == "model")
    else:
        print(__doc__)
        return 2
    for b in bad[:40]:
        print("mismatch:", b)
    if len(bad) > 40:
        print("... and %d more" % (len(bad) - 40))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
