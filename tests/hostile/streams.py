#!/usr/bin/env python3
"""streams.py NNC - data that arrives as a stream (runtime/data.c).

Each case runs nnc on a source that is not a regular file: /dev/zero, a pipe
that stays open, a FIFO. nnc must stop with its one-line message (or read
the rows) without waiting for the end of a stream that has none, and with
its memory bounded: the run is killed, and the case fails, when its
resident memory passes RSS_LIMIT or it takes longer than TIMEOUT.
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

RSS_LIMIT = 600 << 20  # bytes; the whole compiler is ~50 MB, ASan ~300 MB
TIMEOUT = 60           # seconds: a hang, not a speed test

MODEL = """model m {
  dtype f64
  input x[2]
  target t[1]
  y = x -> linear(1)
  loss squared(y, t)
}
train {
  data csv("%s")
}
"""


def rss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(args, stdin=None, feed=None):
    """Runs nnc; feed(pipe) writes its standard input from a thread.
    Returns (status, stdout, stderr, why) with why set when it was killed."""
    p = subprocess.Popen(args, stdin=subprocess.PIPE if feed else stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = [], []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()))
               for s, b in ((p.stdout, out), (p.stderr, err))]
    for r in readers:
        r.start()
    if feed:
        threading.Thread(target=feed, args=(p.stdin,), daemon=True).start()
    why = None
    start = time.monotonic()
    while p.poll() is None:
        if rss(p.pid) > RSS_LIMIT:
            why = "resident memory passed %d MiB" % (RSS_LIMIT >> 20)
        elif time.monotonic() - start > TIMEOUT:
            why = "still running after %d s" % TIMEOUT
        if why:
            p.kill()
            break
        time.sleep(0.02)
    p.wait()
    for r in readers:
        r.join()
    return p.returncode, out[0].decode(errors="replace"), err[0].decode(errors="replace"), why


def endless_line(pipe):
    """A line with no end, written slowly; the pipe stays open."""
    try:
        while True:
            pipe.write(b"1" * 65536)
            pipe.flush()
            time.sleep(0.01)
    except (BrokenPipeError, ValueError, OSError):
        pass


def rows_then_hold(pipe):
    """A header and a row, a pause, then two rows with other line endings
    (a lone CR, then CR LF) and the end."""
    try:
        pipe.write(b"x0,x1,t\n1,2,0\n")
        pipe.flush()
        time.sleep(0.3)
        pipe.write(b"3,4,1\r5,6,0\r\n")
        pipe.close()
    except (BrokenPipeError, OSError):
        pass


def main():
    nnc = sys.argv[1]
    failed = []
    tmp = tempfile.mkdtemp()
    try:
        def model(path):
            f = os.path.join(tmp, "m%d.nn" % len(os.listdir(tmp)))
            with open(f, "w") as out:
                out.write(MODEL % path)
            return f

        zero = model("/dev/zero")
        stdin_model = model("/dev/stdin")
        fifo = os.path.join(tmp, "rows.csv")
        os.mkfifo(fifo)
        fifo_model = model(fifo)

        def fifo_writer():
            with open(fifo, "w") as w:
                w.write("1,2,0\n3,4,1\n")

        cases = [
            ("predict_dev_zero", [nnc, zero, "--predict", "/dev/zero"], None, None,
             1, "/dev/zero:1:1: error: line is longer than 1 MiB\n", None),
            ("train_dev_zero", [nnc, zero, "--grad"], None, None,
             1, "/dev/zero:1:1: error: line is longer than 1 MiB\n", None),
            ("jit_train_dev_zero", [nnc, zero, "--jit", "--train"], None, None,
             1, "/dev/zero:1:1: error: line is longer than 1 MiB\n", None),
            ("pipe_endless_line", [nnc, stdin_model, "--predict", "/dev/stdin"], None,
             endless_line, 1, "/dev/stdin:1:1: error: line is longer than 1 MiB\n", None),
            ("pipe_rows", [nnc, stdin_model, "--predict", "/dev/stdin"], None,
             rows_then_hold, 0, "", "y\n"),
            ("fifo_rows", [nnc, fifo_model, "--grad"], "fifo", None, 0, "", "loss "),
        ]
        for name, args, special, feed, want_status, want_err, want_out in cases:
            writer = None
            if special == "fifo":
                writer = threading.Thread(target=fifo_writer, daemon=True)
                writer.start()
            status, out, err, why = run(args, stdin=subprocess.DEVNULL, feed=feed)
            problems = []
            if why:
                problems.append(why)
            if status != want_status:
                problems.append("exit status %s, expected %d" % (status, want_status))
            if want_err is not None and err != want_err:
                problems.append("standard error %r, expected %r" % (err[:300], want_err))
            if want_out is None and out:
                problems.append("standard output is not empty: %r" % out[:200])
            if want_out and not out.startswith(want_out):
                problems.append("standard output %r does not start with %r" % (out[:200], want_out))
            if name == "pipe_rows" and out.count("\n") != 4:
                problems.append("expected a header and 3 rows: %r" % out)
            if problems:
                failed.append(name)
                print("FAIL %s: %s" % (name, " ".join(args)))
                for p in problems:
                    print("  " + p)
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    print("%d passed, %d failed" % (len(cases) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
