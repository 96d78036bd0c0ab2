#!/usr/bin/env python3
"""measure.py -- run one command, print its wall time and peak RSS.

    measure.py STDOUT STDERR [--nice N] [NAME=VALUE ...] -- COMMAND [ARG ...]

Runs COMMAND (extra environment NAME=VALUE) with standard output and error
into the two files, and prints one line "WALL_S MAXRSS_KB EXIT_STATUS":
the wall clock from just before the spawn to the end of the child's wait
(posix_spawn, so the cost of starting the process is counted, that of
Python is not) and ru_maxrss of that child alone (os.wait4).  --nice N
sets the niceness the child inherits (negative values need root).  Used by
bench/run; python3 without numpy is enough.
"""
import os
import sys
import time


def main(argv):
    if "--" not in argv or argv.index("--") < 2:
        sys.stderr.write(__doc__)
        return 2
    sep = argv.index("--")
    out, err = argv[0], argv[1]
    env = dict(os.environ)
    opts = argv[2:sep]
    if opts[:1] == ["--nice"]:
        os.setpriority(os.PRIO_PROCESS, 0, int(opts[1]))
        opts = opts[2:]
    for kv in opts:
        k, _, v = kv.partition("=")
        env[k] = v
    cmd = argv[sep + 1:]
    if not cmd:
        sys.stderr.write(__doc__)
        return 2
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out, flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, err, flags, 0o644),
    ]
    path = cmd[0]
    if "/" not in path:
        for d in env.get("PATH", "").split(os.pathsep):
            p = os.path.join(d, path)
            if os.access(p, os.X_OK):
                path = p
                break
    t0 = time.perf_counter()
    pid = os.posix_spawn(path, cmd, env, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter()
    code = os.waitstatus_to_exitcode(status)
    print("%.6f %d %d" % (t1 - t0, ru.ru_maxrss, code))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
