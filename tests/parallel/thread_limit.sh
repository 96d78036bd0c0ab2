#!/usr/bin/env bash
# thread_limit.sh NNC EXAMPLES - a training thread that cannot be started
# (a limit on processes: prlimit --nproc=N as another user than root, as a
# container's pids limit) is a note, and training goes on the threads that
# started (not an internal error and SIGABRT): on one, with the final lines
# of one thread; on two of three, whose shards are larger than the code was
# compiled for (each thread's workspace holds a third of the batch), with
# the same losses to rounding. Needs root, to become nobody.
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

# three threads planned, two started: each shard in pieces of a third
prlimit --nproc=2 setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp" NNC_CACHE=0 \
  "$nnc" digits.nn --jit --train --epochs 1 --threads 3 >out3 2>err3
status=$?
[ $status = 0 ] || { cat err3; echo "FAILED: two of three: exit status $status"; exit 1; }
grep -q '^nnc: note: cannot start training thread 3 of 3 (.*); training on 2$' err3 ||
  { cat err3; echo "FAILED: two of three: no note"; exit 1; }
# the same lines to rounding: every number within 1e-5 relative
grep '^final' out3 >got3
paste -d'|' one got3 | awk -F'|' '{
    na = split($1, a, " "); nb = split($2, b, " ")
    if (na != nb) bad = 1
    for (i = 1; i <= na; i++)
      if (a[i] ~ /^[0-9.e+-]+$/) { d = a[i] - b[i]; if (d < 0) d = -d; m = a[i] < 0 ? -a[i] : a[i]; if (d > 1e-5 * m + 1e-7) bad = 1 }
      else if (a[i] != b[i]) bad = 1
  } END { exit bad }' || { paste one got3; echo "FAILED: two of three: other final lines than one thread's"; exit 1; }
[ "$(wc -l <got3)" = "$(wc -l <one)" ] || { cat got3; echo "FAILED: two of three: final lines missing"; exit 1; }
echo "ok: $(cat err) / $(cat err3)"
