#!/usr/bin/env bash
# thread_limit.sh NNC EXAMPLES - a training thread that cannot be started
# (a limit on processes: prlimit --nproc=1 as another user than root, as a
# container's pids limit) is a note, and training goes on the threads that
# started, with the final lines of one thread (not an internal error and
# SIGABRT). Needs root, to become nobody.
set -u
nnc=$1 examples=$2
[ "$(id -u)" = 0 ] || { echo "FAILED: needs root to run as nobody under a process limit"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$examples/digits.nn" "$examples/data" "$tmp/"
chmod -R a+rwX "$tmp"
cd "$tmp" || exit 1
"$nnc" digits.nn --jit --train --epochs 1 --threads 1 2>/dev/null | grep '^final' >one || { echo "FAILED: one thread"; exit 1; }
prlimit --nproc=1 setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp" NNC_CACHE=0 \
  "$nnc" digits.nn --jit --train --epochs 1 --threads 2 >out 2>err
status=$?
[ $status = 0 ] || { cat err; echo "FAILED: exit status $status"; exit 1; }
grep -q '^nnc: note: cannot start training thread 2 of 2 (.*); training on 1$' err || { cat err; echo "FAILED: no note"; exit 1; }
grep '^final' out | diff one - || { echo "FAILED: other final lines than one thread's"; exit 1; }
echo "ok: $(cat err)"
