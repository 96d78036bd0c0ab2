#!/usr/bin/env python3
"""random_check.py NNC CASE ENGINE - one case of tests/optim/random, in nnc.

scripts/torch_optim_check.py (with PyTorch) draws random cases: a small
network with max, min, where or an embedding, random data, an optimizer
with random hyperparameters, a schedule, clip_norm, early stopping; and
trains each with torch.optim. A few of them are kept here (--write-tests):
CASE.nn, CASE.csv, the starting parameters CASE.safetensors and torch's
parameters after training, CASE.json. This trains CASE.nn from the same
start with ENGINE (interp, jit, or threads: --jit --threads 2) and compares
the parameters it saves with torch's: 1e-9 relative (1e-12 absolute) in
f64, 1e-4 relative or 1e-5 absolute in f32. Only the standard library.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "train"))
import seedcheck  # noqa: E402  (read_safetensors)

ENGINES = {"interp": [], "jit": ["--jit"], "threads": ["--jit", "--threads", "2"]}


def train(nnc, cwd, nn, init, out, engine):
    """nnc trains nn from init and saves to out: (parameters, None), or
    (None, what went wrong)."""
    cmd = [nnc, nn, "--train", "--load", init, "--save", out] + ENGINES[engine]
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=dict(os.environ, NNC_CACHE="0", NNC_SPLIT="batch"),
                       timeout=300)
    log = "$ %s\n%s%s(exit %d)\n" % (" ".join(cmd), p.stdout, p.stderr, p.returncode)
    if p.returncode != 0:
        return None, log
    return seedcheck.read_safetensors(out), log


def compare(got, want, dtype):
    """The values of got (read_safetensors) that differ from want (name ->
    list) beyond the tolerance, and the largest relative difference."""
    rtol, atol = (1e-9, 1e-12) if dtype == "f64" else (1e-4, 1e-5)
    bad, worst = [], 0.0
    for name, values in want.items():
        if name not in got:
            bad.append("%s missing" % name)
            continue
        for k, (a, b) in enumerate(zip(got[name][2], values)):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
            if not abs(a - b) <= atol + rtol * abs(b):
                bad.append("%s[%d] = %.17g, torch %.17g" % (name, k, a, b))
    return bad, worst


def main(argv):
    nnc, case, engine = os.path.abspath(argv[1]), argv[2], argv[3]
    ref = json.load(open(os.path.join(HERE, "random", case + ".json")))
    with tempfile.TemporaryDirectory() as tmp:
        got, log = train(nnc, os.path.join(HERE, "random"), case + ".nn", case + ".safetensors",
                         os.path.join(tmp, "out.safetensors"), engine)
    if got is None:
        print("FAIL: %s (%s): nnc failed\n%s" % (case, engine, log))
        return 1
    bad, worst = compare(got, ref["params"], ref["dtype"])
    for b in bad[:20]:
        print("mismatch:", b)
    if bad:
        print("FAIL: %s (%s): %d values differ from torch's\n%s" % (case, engine, len(bad), log))
        return 1
    print("ok: %s (%s, %s) equals torch (largest relative difference %.2g)" % (case, engine, ref["dtype"], worst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
