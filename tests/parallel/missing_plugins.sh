#!/bin/bash
# missing_plugins.sh NNC MOONS.nn - a copy of nnc without nnc-report.so and
# nnc-mpi.so next to it (and none installed where it looks next) reports
# the missing plugin in one line and exits 1; a run that needs neither works.
set -u
nnc=$1 nn=$2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
cp "$nnc" "$tmp/nnc"
status=0
"$tmp/nnc" "$nn" --jit --train --epochs 2 >"$tmp/out" 2>&1 || { echo "FAIL: plain training needs a plugin"; cat "$tmp/out"; status=1; }
"$tmp/nnc" "$nn" --train --epochs 2 --plot "$tmp/r.png" >"$tmp/out" 2>"$tmp/err"
rc=$?
if grep -q "nnc-report.so" "$tmp/err" && [ -e "$tmp/r.png" ]; then echo "FAIL: a report file without the plugin"; status=1; fi
if grep -q "cannot load nnc-report.so" "$tmp/err"; then
  [ $rc -eq 1 ] || { echo "FAIL: --plot without nnc-report.so exited $rc"; status=1; }
  [ "$(grep -c . "$tmp/err")" -eq 1 ] || { echo "FAIL: more than one line:"; cat "$tmp/err"; status=1; }
  ls "$tmp" | grep -q "r.png" && { echo "FAIL: left a file"; status=1; }
else
  # an installed nnc's plugins (NNC_PLUGIN_DIR) were found: then it must work
  [ $rc -eq 0 ] && [ -s "$tmp/r.png" ] || { echo "FAIL: --plot: exit $rc"; cat "$tmp/err"; status=1; }
fi
OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$tmp/nnc" "$nn" --train --epochs 2 >"$tmp/out" 2>"$tmp/err"
rc=$?
if grep -q "cannot load nnc-mpi.so\|built without MPI" "$tmp/err"; then
  [ $rc -eq 1 ] || { echo "FAIL: mpirun without nnc-mpi.so exited $rc"; status=1; }
  grep -q "^nnc: started by mpirun with 2 processes, but" "$tmp/err" || { echo "FAIL: message"; cat "$tmp/err"; status=1; }
fi
[ $status = 0 ] && echo "ok: without its plugins nnc trains, and --plot and mpirun say what is missing"
cat "$tmp/err" | head -2
exit $status
