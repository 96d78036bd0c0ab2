#!/usr/bin/env python3
"""check.py NNC CASE ENGINE - one case of reference.json, in nnc.

Runs `nnc CASE.nn --grad --load CASE.safetensors --batch ROWS` (all the
case's rows in one batch) in the interpreter or with --jit and compares
the loss and every gradient with what torch_ops.py wrote down from
PyTorch (torch.maximum, torch.minimum, torch.where, nn.Embedding): to
1e-12 relative (f64), plus 1e-15 absolute for values torch rounds to 0.
Only the standard library: the test needs no torch.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def parse(text):
    """{'loss': [x], NAME: [values]} from --grad's output."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "loss":
            out["loss"] = [float(words[1])]
        elif len(words) > 2 and words[1].startswith("["):
            out[words[0]] = [float(w) for w in words[2:]]
    return out


def main(argv):
    nnc, name, engine = argv[1:4]
    case = json.load(open(os.path.join(HERE, "reference.json")))["cases"][name]
    cmd = [nnc, name + ".nn", "--grad", "--load", name + ".safetensors", "--batch", str(case["rows"])]
    if engine == "jit":
        cmd.append("--jit")
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if run.returncode != 0:
        print("FAIL: %s exited %d\n%s%s" % (" ".join(cmd), run.returncode, run.stdout, run.stderr))
        return 1
    got = parse(run.stdout)
    want = dict(case["grads"], loss=[case["loss"]])
    bad = []
    for key, values in want.items():
        have = got.get(key)
        if have is None or len(have) != len(values):
            bad.append("%s: nnc printed %s, torch has %d values" % (key, have, len(values)))
            continue
        for k, (a, b) in enumerate(zip(have, values)):
            if not abs(a - b) <= 1e-15 + 1e-12 * abs(b):
                bad.append("%s[%d] = %.17g, torch %.17g" % (key, k, a, b))
    if bad:
        print("FAIL: %s (%s)\n  %s" % (name, engine, "\n  ".join(bad)))
        return 1
    print("ok: %s (%s) equals torch %s" % (name, engine, json.load(open(os.path.join(HERE, "reference.json")))["torch"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
