#!/usr/bin/env python3
"""doccheck.py NNC ROOT DOC.md [--update] - the examples of a document still do
what it says.

  ```console blocks   every `$ COMMAND` line (a trailing backslash continues
                      it) runs with bash in a scratch directory that holds
                      ROOT's files (symbolic links; `build` is NNC's build
                      directory); its standard output and error must be the
                      lines that follow it, up to the next `$` or the end of
                      the block. A line `...` stands for any number of lines.
  ```nn blocks        a whole file (it has `model NAME`) must check and
                      compile (`nnc FILE` exits 0); a part of a model block
                      is put in a model that declares the names the
                      document's examples assume (PRELUDE) and must pass
                      `nnc FILE --emit ir`; a part of a train block (it
                      starts with a train key) goes in a train block.
  links               every relative link names a file or directory of ROOT;
                      there are no links out of the repository.

--update writes what the commands print into the document's console blocks
instead (those without `...`), for review with git diff.

Compared loosely, so that the test holds on any x86-64 host: numbers agree
to 1e-4 relative (training in f64 ends within about 1e-6 across CPUs with
and without FMA), and what measures time (`train time`, steps/s, time left,
`--time`'s milliseconds) or rounding (--check-grad's errors) is not
compared.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The names the examples of docs/language.md use without declaring them.
PRELUDE = [
    ("x", "input x[3]"),
    ("v", "input v[4]"),
    ("m", "input m[2,3]"),
    ("img", "input img[1,8,8]"),
    ("seq", "input seq[2,16]"),
    ("t", "target t[3]"),
]
TRAIN_KEYS = {"data", "valid", "split", "init", "optimizer", "schedule", "clip_norm", "early_stop", "epochs", "batch",
              "shuffle", "seed"}
TRAIN_MODEL = "model doc {\n  input x[2]\n  target t[1]\n  y = x -> linear(1)\n  loss squared(y, t)\n}\n"

NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
TOKEN = re.compile(r"[^\s,]+|[\s,]+")


def normalize(line):
    """What is compared of a line: figures that vary with time and rounding out."""
    line = re.sub(r"\d+ steps/s  \S+ left", "N steps/s  T left", line)
    line = re.sub(r"^train time \S+ s$", "train time T s", line)
    line = re.sub(r"^steps/s \d+$", "steps/s N", line)
    line = re.sub(r"(max (abs|rel) err) \S+", r"\1 E", line)
    line = re.sub(r"^time (\S+)\s+\S+ ms$", r"time \1 T ms", line)
    return line.rstrip()


def same_line(want, got):
    want, got = normalize(want), normalize(got)
    if want == got:
        return True
    a, b = TOKEN.findall(want), TOKEN.findall(got)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        if not (NUMBER.match(x) and NUMBER.match(y)):
            return False
        fx, fy = float(x), float(y)
        if abs(fx - fy) > 1e-4 * max(abs(fx), abs(fy)) and abs(fx - fy) > 1e-12:
            return False
    return True


def match(want, got):
    """Whether the lines got fit the lines want, where `...` takes any run."""
    if not want:
        return not got
    if want[0] == "...":
        return any(match(want[1:], got[i:]) for i in range(len(got) + 1))
    return bool(got) and same_line(want[0], got[0]) and match(want[1:], got[1:])


def blocks(lines):
    """(info string, first and end line index, indent, lines) of every fenced block."""
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\S*)", lines[i])
        if not m:
            i += 1
            continue
        indent, info, start, body = m.group(1), m.group(2), i + 1, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        out.append((info, start, i, indent, body))
        i += 1
    return out


def commands(body):
    """(command, expected output lines) of a console block."""
    out, i = [], 0
    while i < len(body):
        if not body[i].startswith("$ "):
            raise ValueError("a console block starts with '$ ': " + body[i])
        cmd = body[i][2:]
        while cmd.endswith("\\") and i + 1 < len(body):
            i += 1
            cmd = cmd + "\n" + body[i]
        i += 1
        want = []
        while i < len(body) and not body[i].startswith("$ "):
            want.append(body[i])
            i += 1
        while want and want[-1] == "":
            want.pop()
        out.append((cmd, want))
    return out


def scratch(root, builddir):
    work = tempfile.mkdtemp(prefix="doccheck.")
    for name in os.listdir(root):
        if name in ("build", ".git"):
            continue
        os.symlink(os.path.join(root, name), os.path.join(work, name))
    os.symlink(builddir, os.path.join(work, "build"))
    os.mkdir(os.path.join(work, "cache"))
    return work


def run(cmd, work):
    env = dict(os.environ, NNC_CACHE_DIR=os.path.join(work, "cache"), LC_ALL="C")
    p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    return p.stdout.decode("utf-8", "replace").rstrip("\n").split("\n") if p.stdout else []


def nn_source(body):
    text = "\n".join(body) + "\n"
    if re.search(r"^\s*model\s+\w+", text, re.M):
        return text, False
    first = next((l.split()[0] for l in body if l.strip() and not l.strip().startswith("#")), "")
    if first in TRAIN_KEYS:
        return TRAIN_MODEL + "train {\n" + text + "}\n", True
    decls = [d for name, d in PRELUDE
             if not re.search(r"^\s*(input|target|param)\s+%s\b" % name, text, re.M)
             and not re.search(r"^\s*%s\s*=" % name, text, re.M)]
    loss = "" if re.search(r"^\s*loss\b", text, re.M) else "  loss sum(x)\n"
    return "model doc {\n" + "".join("  %s\n" % d for d in decls) + text + loss + "}\n", True


def check_links(text, doc, root, name):
    failures = 0
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path = target.split("#")[0]
        if not path:
            continue
        full = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(doc)), path))
        if re.match(r"^[a-z]+:", target) or not full.startswith(root + os.sep) \
                or not os.path.exists(full):
            print("%s: link '%s' does not name a file of the repository" % (name, target))
            failures += 1
    return failures


def check_nn(nnc, work, k, body, name, line):
    src, part = nn_source(body)
    path = os.path.join(work, "doc%d.nn" % k)
    with open(path, "w") as f:
        f.write(src)
    args = [nnc, path] + (["--emit", "ir"] if part else [])
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode == 0:
        return 0
    print("%s:%d: this example does not compile:" % (name, line))
    print(src + p.stdout.decode("utf-8", "replace"))
    return 1


def main():
    nnc, root, doc = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    update = "--update" in sys.argv[4:]
    lines = open(doc, encoding="utf-8").read().split("\n")
    name = os.path.relpath(doc, root)
    failures = check_links("\n".join(lines), doc, root, name)
    work = scratch(root, os.path.dirname(nnc))
    edits = []
    try:
        for k, (info, start, end, indent, body) in enumerate(blocks(lines)):
            if info == "nn":
                failures += check_nn(nnc, work, k, body, name, start)
            if info != "console":
                continue
            new = []
            for cmd, want in commands(body):
                got = run(cmd, work)
                if match(want, got):
                    new += ["$ " + cmd] + want
                    continue
                new += ["$ " + cmd] + (want if "..." in want else got)
                if update and "..." not in want:
                    print("%s:%d: updated: $ %s" % (name, start, cmd))
                    continue
                failures += 1
                print("%s:%d: $ %s" % (name, start, cmd))
                print("--- the document says")
                print("\n".join(want))
                print("--- the command printed")
                print("\n".join(got))
            edits.append((start, end, [indent + l if l else l for l in new]))
    finally:
        shutil.rmtree(work)
    if update:
        for start, end, new in reversed(edits):
            lines[start:end] = new
        with open(doc, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    if failures:
        print("%s: %d example%s disagree; when the document is what is wrong, run\n"
              "  %s %s %s %s --update\nand review the change with git diff"
              % (name, failures, "" if failures == 1 else "s", sys.argv[0], sys.argv[1], root, doc))
        return 1
    print("%s: every example agrees" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
