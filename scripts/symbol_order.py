#!/usr/bin/env python3
"""scripts/symbol_order.py - make cmake/nnc.symbol-order.tar.xz, the order in
which the linker (lld's --symbol-ordering-file) lays out the functions of
`nnc` and libnnc.so: one name a line, in an archive (1.3 MB of names, 150 KB
compressed) that CMake unpacks when it configures.

The `nnc` executable holds ~34 MB of LLVM code, of which a compile executes a
few MB scattered over the whole range; every page first touched costs a page
fault. Laid out in the order of this file, the functions that start-up and a
typical compile execute sit together at the front of .text.

The order comes from a profile: valgrind's callgrind lists every function a
run executed. The workloads, in this order, each adding the functions the
ones before did not run, sorted by name (so the file does not depend on
the layout of the binary profiled):
  help         nnc --help  (start-up and exit: LLVM's static constructors)
  moons        examples/moons.nn --jit --train, no compile cache
  moons_avx512 its object compiled for an AVX-512 machine (--emit obj --cpu
               znver5): valgrind's CPU has no AVX-512, so --jit under it
               takes other paths of LLVM's code generation than on such a host
  moons_cached moons --jit --train with its object in the compile cache
  w2           bench/w2_digits.nn --jit --train --epochs 0, no cache
  w2_avx512    its object compiled for znver5
  conv         tests/conv/conv_net.nn --jit --train --epochs 1 (convolutions
               and pooling), no cache
  interp       examples/circles.nn --epochs 1 (the interpreter)

  scripts/symbol_order.py [--nnc build/nnc] [-o cmake/nnc.symbol-order.tar.xz]
                          [--workloads help,moons,...] [--keep DIR]
                          [--profiles NAME=FILE ...]

--profiles takes callgrind output files made earlier (no valgrind run);
--keep keeps the callgrind files; an output not ending in .tar.xz is
written as plain text. Only function symbols of the binary are written, so
the file names no JIT-compiled code; and two markers of driver/main.c,
nnc_code_compile before the second group's functions and nnc_code_end after
the last, which bound the code a thread faults in at start-up. The archive is the same bytes for the
same names. Needs valgrind and nm; takes a few minutes.
"""
import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# driver/main.c's markers: where the functions after the first group
# (start-up's) begin, and where the ordered functions end; a thread faults
# in the pages between them while start-up runs
MARK_COMPILE = "nnc_code_compile"
MARK_END = "nnc_code_end"

WORKLOADS = [
    ("help", ["--help"], {}),
    ("moons", ["examples/moons.nn", "--jit", "--train"], {"NNC_CACHE": "0"}),
    ("moons_avx512", ["examples/moons.nn", "--emit", "obj", "-o", "{tmp}/m.o", "--cpu", "znver5"], {}),
    ("moons_cached", ["examples/moons.nn", "--jit", "--train"], {"cached": "1"}),
    ("w2", ["bench/w2_digits.nn", "--jit", "--train", "--epochs", "0"], {"NNC_CACHE": "0"}),
    ("w2_avx512", ["bench/w2_digits.nn", "--emit", "obj", "-o", "{tmp}/w.o", "--cpu", "znver5"], {}),
    ("conv", ["tests/conv/conv_net.nn", "--jit", "--train", "--epochs", "1"], {"NNC_CACHE": "0"}),
    ("interp", ["examples/circles.nn", "--epochs", "1"], {"NNC_CACHE": "0"}),
]


def function_symbols(nnc):
    """The names of the binary's function symbols."""
    out = subprocess.run(["nm", "--defined-only", nnc], check=True, capture_output=True, text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwWiI":
            syms.add(parts[2])
    return syms


def executed(profile):
    """The functions a callgrind output file names (fn= lines), mangled."""
    names = set()
    rec = re.compile(r"'\d+$")  # callgrind's recursion-depth suffix
    with open(profile, errors="replace") as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                name = line.split("=", 1)[1].strip()
                if name.startswith("("):  # compressed form "(id) name"
                    name = name.split(") ", 1)[1] if ") " in name else ""
                names.add(rec.sub("", name))
    return names


def profile(nnc, argv, env_extra, out, tmp):
    argv = [a.replace("{tmp}", tmp) for a in argv]
    env = dict(os.environ)
    env["NNC_COMPILE_THREADS"] = "1"
    if env_extra.get("cached"):
        env["NNC_CACHE_DIR"] = os.path.join(tmp, "cache")
        env.pop("NNC_CACHE", None)
        subprocess.run([nnc] + argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    else:
        env.update(env_extra)
    cmd = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--compress-strings=no", "--compress-pos=no",
           "--demangle=no", "--callgrind-out-file=" + out, nnc] + argv
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    ap.add_argument("-o", "--output", default=os.path.join(ROOT, "cmake", "nnc.symbol-order.tar.xz"))
    ap.add_argument("--workloads", default=",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--profiles", nargs="*", default=[], metavar="NAME=FILE")
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()

    nnc = os.path.abspath(args.nnc)
    syms = function_symbols(nnc)
    groups = []
    if args.profiles:
        for p in args.profiles:
            name, _, path = p.partition("=")
            groups.append((name, executed(path)))
    else:
        if not shutil.which("valgrind"):
            sys.exit("symbol_order.py: needs valgrind (or --profiles)")
        wanted = args.workloads.split(",")
        unknown = set(wanted) - {w[0] for w in WORKLOADS}
        if unknown:
            sys.exit("symbol_order.py: unknown workload " + ", ".join(sorted(unknown)))
        with tempfile.TemporaryDirectory() as tmp:
            keep = args.keep or tmp
            os.makedirs(keep, exist_ok=True)
            for name, argv, env in WORKLOADS:
                if name not in wanted:
                    continue
                out = os.path.join(keep, name + ".callgrind")
                print("profiling", name, file=sys.stderr)
                profile(nnc, argv, env, out, tmp)
                groups.append((name, executed(out)))

    seen = set()
    lines = ["# the order of nnc's functions in .text (lld --symbol-ordering-file)",
             "# made by scripts/symbol_order.py from a profile of: " + ", ".join(g[0] for g in groups)]
    for i, (name, names) in enumerate(groups):
        fresh = sorted(n for n in names if n in syms and n not in seen)
        seen.update(fresh)
        lines.append("# " + name)
        if i == 1:
            lines.append(MARK_COMPILE)
        lines.extend(fresh)
    if len(groups) < 2:
        lines.append(MARK_COMPILE)
    lines.append(MARK_END)
    text = ("\n".join(lines) + "\n").encode()
    if args.output.endswith(".tar.xz"):
        info = tarfile.TarInfo("nnc.symbol-order")  # mtime, owner: 0
        info.size = len(text)
        info.mode = 0o644
        with tarfile.open(args.output, "w:xz", preset=9, format=tarfile.USTAR_FORMAT) as tar:
            tar.addfile(info, io.BytesIO(text))
    else:
        with open(args.output, "wb") as f:
            f.write(text)
    print("%s: %d functions" % (args.output, len(seen)), file=sys.stderr)


if __name__ == "__main__":
    main()
