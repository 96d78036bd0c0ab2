#!/usr/bin/env python3
"""check.py NNC CASE DTYPE - one case of reference.json, in nnc.

Trains tests/optim/model.nn with the case's train lines (optimizer,
schedule, clip_norm), epochs and batch, from init_DTYPE.safetensors, with
the interpreter, with --jit and (batches of 2) with --jit --threads 2 (each
thread's gradients summed, then the compiled update: clipping sees the
sum), and compares each with what torch_reference.py wrote down from
torch.optim:
  - the parameters after training, against torch's in the same dtype: to
    1e-10 relative in f64; in f32 to 1e-4 relative or 1e-5 absolute
    (rounding: torch's CPU kernels fuse multiply-adds, take the
    optimizer's scalars in double, and differ in the order of sums);
  - with a schedule, the learning rate each epoch's progress line shows.
Only the standard library (json, subprocess): no torch.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "train"))
import seedcheck  # noqa: E402  (read_safetensors)


def main(argv):
    nnc, name, dtype = argv[1:4]
    ref = {c["name"]: c for c in json.load(open(os.path.join(HERE, "reference.json")))["cases"]}
    case = ref[name]
    engines = ["interp", "jit"]
    if case["batch"] > 1:
        engines.append("threads")  # grad_part on two threads, then the update function
    return max(check(nnc, case, name, engine, dtype) for engine in engines)


def check(nnc, case, name, engine, dtype):
    rtol, atol = (1e-10, 1e-13) if dtype == "f64" else (1e-4, 1e-5)
    model = open(os.path.join(HERE, "model.nn")).read().replace('"data.csv"', json.dumps(os.path.join(HERE, "data.csv")))
    lines = case["train"] + ["epochs %d" % case["epochs"], "batch %d" % case["batch"]]
    with tempfile.TemporaryDirectory() as tmp:
        nn = os.path.join(tmp, "case.nn")
        with open(nn, "w") as f:
            f.write(model + "".join("  %s\n" % l for l in lines) + "}\n")
        out = os.path.join(tmp, "out.safetensors")
        cmd = [nnc, nn, "--train", "--dtype", dtype, "--load", os.path.join(HERE, "init_%s.safetensors" % dtype),
               "--save", out] + {"interp": [], "jit": ["--jit"], "threads": ["--jit", "--threads", "2"]}[engine]
        # threads: the batch split (the features' is one thread's step)
        run = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, NNC_SPLIT="batch"))
        if run.returncode != 0:
            print("FAIL: %s exited %d\n%s%s" % (" ".join(cmd), run.returncode, run.stdout, run.stderr))
            return 1
        got = seedcheck.read_safetensors(out)
    bad, worst = [], 0.0
    for pname, want in case["params" if dtype == "f64" else "params_f32"].items():
        values = got[pname][2]
        for k, (a, b) in enumerate(zip(values, want)):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
            if not abs(a - b) <= atol + rtol * abs(b):
                bad.append("%s[%d] = %.17g, torch %.17g (rel %.3g)" % (pname, k, a, b, abs(a - b) / max(abs(b), 1e-300)))
    if any(l.startswith("schedule") for l in case["train"]):
        shown = [float(w.split()[1]) for l in run.stdout.splitlines() if l.startswith("epoch ")
                 for w in l.split("  ") if w.startswith("lr ")]
        if len(shown) != case["epochs"]:
            bad.append("%d progress lines show a learning rate, expected %d:\n%s" % (len(shown), case["epochs"], run.stdout))
        for e, (a, b) in enumerate(zip(shown, case["lr"])):
            if abs(a - b) > 1e-5 * abs(b):
                bad.append("epoch %d: lr %g, torch %.17g" % (e + 1, a, b))
    for b in bad[:20]:
        print("mismatch:", b)
    if bad:
        print("FAIL: %s (%s, %s): %d mismatches" % (name, engine, dtype, len(bad)))
        return 1
    print("ok: %s (%s, %s) equals torch.optim (largest relative difference %.2g)" % (name, engine, dtype, worst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
