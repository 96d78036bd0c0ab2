#!/usr/bin/env python3
"""report.py -- the table of bench/run (markdown on standard output).

    report.py DATA.tsv META.tsv [EXPECTED.json]

DATA.tsv has lines "ROUND<TAB>KEY<TAB>VALUE" as bench/run records them
(ROUND 0: not part of a timed round); META.tsv "KEY<TAB>VALUE" (machine,
versions); EXPECTED.json (tests/data/expected.json) gives the reference
losses the final losses are checked against.  Medians are of the rounds; a ratio to the reference is the
median over rounds of (implementation / reference) measured in the same
round, back to back.  python3 without numpy.
"""
import json
import statistics
import sys
from collections import defaultdict

# the performance targets (bench/RESULTS.md)
T_W1_RATIO = 1.10
T_W2_RATIO = 1.25
T_PROC_MS = 30.0
T_COMPILE_MS = 20.0
T_RSS_MB = 80.0   # MB = 10^6 bytes (ru_maxrss is in KiB)

STAGES = ["parse", "check", "lower", "autodiff", "passes", "codegen",
          "verify", "llvm-opt", "machine-code", "join", "jit-link"]

W1_SAMPLES_PER_STEP = 1.0
W2_SAMPLES_PER_STEP = 1797 * 50 / 1450.0   # 28 batches of 64, one of 5


def load(path):
    per_round = defaultdict(dict)   # key -> {round: value}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            r, k, v = parts
            try:
                per_round[k][int(r)] = float(v)
            except ValueError:
                pass
    return per_round


def load_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v.strip()
    return meta


def med(d):
    return statistics.median(d.values()) if d else None


def paired(a, b):
    """per-round a/b where both exist"""
    return {r: a[r] / b[r] for r in a if r in b and b[r] > 0}


def fmt_ns(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e6:
        return "%.3f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f us" % (ns / 1e3)
    return "%.1f ns" % ns


def fmt_rate(x):
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def spread(d, f):
    if not d or len(d) < 2:
        return ""
    return " (%s – %s)" % (f(min(d.values())), f(max(d.values())))


def verdict_upper(value, target, unit, fmt):
    """'met' or 'missed by ...' for value <= target"""
    if value is None:
        return "not measured"
    if value <= target:
        return "**met**: %s%s (target <= %s%s)" % (fmt(value), unit, fmt(target), unit)
    return ("**missed**: %s%s (target <= %s%s), %.0f%% over the target; "
            "it has to come down by %.0f%%"
            % (fmt(value), unit, fmt(target), unit,
               100.0 * (value - target) / target, 100.0 * (1.0 - target / value)))


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    D = load(argv[0])
    meta = load_meta(argv[1])
    expected = None
    if len(argv) == 3:
        with open(argv[2]) as f:
            expected = json.load(f)
    runs = int(meta.get("runs", "0") or 0)
    out = []
    p = out.append

    p("## nnc benchmark")
    p("")
    p("Machine: %s, %s cores, %s; Linux %s; gcc %s; %s (work tree %s)."
      % (meta.get("cpu", "?"), meta.get("cores", "?"), meta.get("isa", "?").strip(),
         meta.get("kernel", "?"), meta.get("gcc", "?"), meta.get("nnc", "nnc"),
         meta.get("git", "?")))
    p("%d rounds, alternating; ns/step from each program's own training timer "
      "(training steps only), median over the rounds (min – max); ratio = median "
      "of the per-round paired ratios to the reference (what the targets use); "
      "fastest / fastest = best run over best reference run, less sensitive "
      "to other load on the machine. %s" % (runs, meta.get("nice_note", "")))
    if runs < 5:
        p("")
        p("(Only %d rounds: the targets ask for medians over at least 5.)" % runs)
    p("")
    p("| workload | implementation | ns/step (median, min – max) | samples/s | "
      "ratio to reference (median, min – max) | fastest / fastest | final train loss | peak RSS |")
    p("|---|---|---|---|---|---|---|---|")

    rows = [
        ("W1 moons (128,000 SGD steps, batch 1, f64)", W1_SAMPLES_PER_STEP, "w1.ref", [
            ("nnc --jit", "w1.nnc", ""),
            ("reference C (ref_moons.c)", "w1.ref", ""),
            ("nnc interpreter", "w1.interp",
             " (%s epochs)" % meta.get("interp_epochs", "?")),
            ("PyTorch", "w1.torch",
             " (%s epochs, %s)" % (meta.get("torch_w1_epochs", "?"), meta.get("torch", ""))),
        ]),
        ("W2 digits (1450 steps, batch 64, f32)", W2_SAMPLES_PER_STEP, "w2.ref", [
            ("nnc --jit", "w2.nnc", ""),
            ("reference C (ref_digits.c)", "w2.ref", ""),
            ("PyTorch", "w2.torch", " (%s)" % meta.get("torch", "")),
        ]),
    ]
    ratios = {}
    for wl, sps, ref, impls in rows:
        for name, key, note in impls:
            ns = D.get(key + ".ns")
            if not ns:
                if key.endswith("torch"):
                    p("| %s | PyTorch | not run (python3 cannot import torch) | | | | | |" % wl)
                continue
            m = med(ns)
            rat = paired(ns, D.get(ref + ".ns", {}))
            ratios[key] = rat
            loss = D.get(key + ".loss")
            loss_s = ("%.9g" % loss[min(loss)]) if loss else ""
            rss = D.get(key + ".rss_kb")
            rss_s = ("%.1f MB" % (max(rss.values()) * 1024 / 1e6)) if rss else ""
            refns = D.get(ref + ".ns", {})
            best = ("%.2fx" % (min(ns.values()) / min(refns.values()))) if refns else ""
            p("| %s | %s%s | %s%s | %s | %s | %s | %s | %s |"
              % (wl, name, note, fmt_ns(m), spread(ns, fmt_ns),
                 fmt_rate(sps * 1e9 / m),
                 ("%.2fx%s" % (med(rat), spread(rat, lambda x: "%.2f" % x))) if rat else "",
                 best, loss_s, rss_s))

    # compile time
    p("")
    p("Compile time by stage, `--time`, -O2 (ms, median over the rounds):")
    p("")
    p("| stage | W1 moons | W2 digits |")
    p("|---|---|---|")
    sums = {}
    for wl in ("w1.nnc", "w2.nnc"):
        tot = defaultdict(float)
        for st in STAGES:
            for r, v in D.get("%s.stage.%s" % (wl, st), {}).items():
                tot[r] += v
        sums[wl] = dict(tot)
    for st in STAGES:
        cells = []
        for wl in ("w1.nnc", "w2.nnc"):
            v = med(D.get("%s.stage.%s" % (wl, st), {}))
            cells.append("n/a" if v is None else "%.3f" % v)
        p("| %s | %s | %s |" % (st, cells[0], cells[1]))
    cells = []
    for wl in ("w1.nnc", "w2.nnc"):
        v = med(sums[wl])
        cells.append("n/a" if v is None else "**%.1f**%s" % (v, spread(sums[wl], lambda x: "%.1f" % x)))
    p("| total (median of per-run sums) | %s | %s |" % (cells[0], cells[1]))

    # whole process, allocations, RSS
    proc = D.get("proc.moons.wall_s", {})
    proc_ms = {r: v * 1e3 for r, v in proc.items()}
    proc_rss = D.get("proc.moons.rss_kb", {})
    p("")
    p("| measure | value |")
    p("|---|---|")
    m_proc = med(proc_ms)
    p("| `nnc examples/moons.nn --jit --train`, whole process (wall, median) | %s |"
      % ("n/a" if m_proc is None else "%.1f ms%s" % (m_proc, spread(proc_ms, lambda x: "%.1f" % x))))
    # where the process's time goes: the compile's stages (--time), the
    # training steps (its "train time"), and the rest: starting the process
    # (LLVM's static constructors), the data, evaluations, output and exit
    p_stages = defaultdict(float)
    for st in STAGES:
        for r, v in D.get("proc.moons.stage.%s" % st, {}).items():
            p_stages[r] += v
    p_train = {r: v * 1e3 for r, v in D.get("proc.moons.train_s", {}).items()}
    p_rest = {r: proc_ms[r] - p_stages[r] - p_train[r] for r in proc_ms if r in p_stages and r in p_train}
    if p_rest:
        p("| of which the compile's stages / the training steps / the rest (start, data, evaluations, output, exit), medians | %.1f / %.1f / %.1f ms |"
          % (med(dict(p_stages)), med(p_train), med(p_rest)))
    warm_ms = {r: v * 1e3 for r, v in D.get("proc.moons_warm.wall_s", {}).items()}
    if warm_ms:
        p("| the same with its objects in nnc's compile cache (warm; all else cold) | %.1f ms%s |"
          % (med(warm_ms), spread(warm_ms, lambda x: "%.1f" % x)))
    ver_ms = {r: v * 1e3 for r, v in D.get("proc.version.wall_s", {}).items()}
    if ver_ms:
        p("| of which starting the process: `nnc --version` (wall, median) | %.1f ms%s |"
          % (med(ver_ms), spread(ver_ms, lambda x: "%.1f" % x)))
    rss_mb = max(proc_rss.values()) * 1024 / 1e6 if proc_rss else None
    p("| peak RSS of that process (max over the rounds) | %s |"
      % ("n/a" if rss_mb is None else "%.1f MB" % rss_mb))

    # heap allocations: the whole process at two epoch counts (the extra
    # steps: W1 320 an epoch, W2 29)
    alloc_delta = {}
    for key, label, eps, steps in (("w1.nnc", "W1 nnc --jit", (200, 400), 64000),
                                   ("w2.nnc", "W2 nnc --jit", (25, 75), 1450),
                                   ("w1.interp", "W1 nnc interpreter", (20, 40), 6400)):
        lo = D.get("alloc.%s.total.%d" % (key, eps[0]))
        hi = D.get("alloc.%s.total.%d" % (key, eps[1]))
        if lo and hi:
            a, b = lo[0], hi[0]
            alloc_delta[key] = (b - a, steps)
            val = ("%+d for %d more steps (whole process: %d allocations at %d epochs, %d at %d)"
                   % (b - a, steps, a, eps[0], b, eps[1]))
        else:
            val = "n/a"
        p("| heap allocations of the extra training steps, %s | %s |" % (label, val))

    # targets
    p("")
    p("Targets:")
    p("")
    p("| target | result |")
    p("|---|---|")
    r1 = med(ratios.get("w1.nnc", {}))
    p("| W1 nnc training loop <= %.2fx the reference | %s |"
      % (T_W1_RATIO, verdict_upper(r1, T_W1_RATIO, "x", lambda x: "%.2f" % x)))
    p("| `nnc examples/moons.nn --jit --train` whole process <= %.0f ms | %s |"
      % (T_PROC_MS, verdict_upper(m_proc, T_PROC_MS, " ms", lambda x: "%.1f" % x)))
    r2 = med(ratios.get("w2.nnc", {}))
    p("| W2 nnc training loop <= %.2fx the reference | %s |"
      % (T_W2_RATIO, verdict_upper(r2, T_W2_RATIO, "x", lambda x: "%.2f" % x)))
    c1 = med(sums["w1.nnc"])
    p("| compile (parse to callable code) of moons <= %.0f ms at -O2 | %s |"
      % (T_COMPILE_MS, verdict_upper(c1, T_COMPILE_MS, " ms", lambda x: "%.1f" % x)))
    d1, d2 = alloc_delta.get("w1.nnc"), alloc_delta.get("w2.nnc")
    if d1 is None or d2 is None:
        res = "not measured"
    elif abs(d1[0]) < d1[1] / 2 and abs(d2[0]) < d2[1] / 2:
        # one allocation per step would add as many as the steps; the
        # compile's own count varies a little between runs
        res = ("**met**: %+d for %d more W1 steps, %+d for %d more W2 steps (no allocation per step)"
               % (d1[0], d1[1], d2[0], d2[1]))
    else:
        res = ("**missed**: %+d for %d more W1 steps, %+d for %d more W2 steps"
               % (d1[0], d1[1], d2[0], d2[1]))
    p("| zero heap allocations inside the training loop | %s |" % res)
    p("| peak RSS <= %.0f MB for moons | %s |"
      % (T_RSS_MB, verdict_upper(rss_mb, T_RSS_MB, " MB", lambda x: "%.1f" % x)))
    if expected:
        p("")
        p("Correctness (final train loss against tests/data/expected.json):")
        p("")
        p("| check | value | expected | relative difference |")
        p("|---|---|---|---|")
        w1 = expected["moons"][0]["final_train_loss"]
        w2 = expected["digits"]["f64_reference"]["1"]["train_loss"]
        for label, key, want, tol in (
                ("W1 nnc --jit, 400 epochs", "w1.nnc.loss", w1, 1e-9),
                ("W1 reference C, 400 epochs", "w1.ref.loss", w1, 1e-9),
                ("W2 nnc --jit, 1 epoch (f32)", "check.w2.nnc.loss1", w2, 1e-5),
                ("W2 reference C, 1 epoch (f32)", "check.w2.ref.loss1", w2, 1e-5)):
            got = D.get(key)
            if not got:
                p("| %s | n/a | %.17g | |" % (label, want))
                continue
            v = got[min(got)]
            rel = abs(v - want) / abs(want)
            p("| %s | %r | %r | %.1e (%s, tolerance %.0e) |"
              % (label, v, want, rel, "ok" if rel <= tol else "**MISMATCH**", tol))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
