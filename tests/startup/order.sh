#!/usr/bin/env bash
# tests/startup/order.sh applied NNC | script NNC SYMBOL_ORDER_PY
#   applied: the static constructors (_GLOBAL__sub_I_*) of NNC lie within
#            1 MiB (unordered, lld spreads them over ~32 MB of .text), and
#            driver/main.c's markers bound the compile's code: start-up's
#            functions before nnc_code_compile, LLVM's code generation and
#            optimization between it and nnc_code_end, within 32 MiB
#   script:  symbol_order.py turns a callgrind profile into the order:
#            only the binary's functions, each once, in the group that first
#            ran it, sorted by name within a group
set -euo pipefail
mode=$1 nnc=$2
case $mode in
applied)
  addrs=$(nm "$nnc" | awk '/ _GLOBAL__sub_I_/ {print $1}' | sort)
  n=$(echo "$addrs" | grep -c .)
  [ "$n" -ge 100 ] || { echo "only $n static constructors"; exit 1; }
  # here-strings, not `echo | head`: head exits after a line, and echo's
  # next write of the ~7 KB list then fails with SIGPIPE (pipefail)
  first=$(head -1 <<<"$addrs") last=$(tail -1 <<<"$addrs")
  span=$(( 16#$last - 16#$first ))
  if [ "$span" -gt 1048576 ]; then
    echo "$n static constructors over $span bytes: the symbol order is not applied"
    exit 1
  fi
  echo "$n static constructors within $span bytes"
  syms=$(nm "$nnc")
  at() { awk -v s="$1" '$3 == s && !found {print $1; found = 1}' <<<"$syms"; }
  lo=$(at nnc_code_compile) hi=$(at nnc_code_end)
  [ -n "$lo" ] && [ -n "$hi" ] || { echo "no nnc_code_compile / nnc_code_end markers"; exit 1; }
  if [ $(( 16#$hi - 16#$lo )) -le 0 ] || [ $(( 16#$hi - 16#$lo )) -gt 33554432 ]; then
    echo "the markers are not in order: nnc_code_compile $lo, nnc_code_end $hi"
    exit 1
  fi
  [ $(( 16#$last )) -lt $(( 16#$lo )) ] || { echo "a static constructor ($last) lies after nnc_code_compile ($lo)"; exit 1; }
  for f in LLVMTargetMachineEmitToMemoryBuffer LLVMRunPasses LLVMOrcLLJITAddObjectFile; do
    a=$(at "$f")
    [ -n "$a" ] || { echo "no $f in $nnc"; exit 1; }
    if [ $(( 16#$a )) -lt $(( 16#$lo )) ] || [ $(( 16#$a )) -ge $(( 16#$hi )) ]; then
      echo "$f ($a) lies outside the compile's code ($lo to $hi)"
      exit 1
    fi
  done
  echo "the compile's code: $(( (16#$hi - 16#$lo) >> 10 )) KiB from $lo" ;;
script)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # callgrind's output as --compress-strings=no writes it, plus a compressed
  # name, a recursion suffix, an address without a symbol and JIT code
  cat >"$tmp/a.out" <<'PROFILE'
events: Ir
fn=main
1 10
cfn=(7) _GLOBAL__sub_I_Core.cpp
calls=1 0
1 5
fn=_GLOBAL__sub_I_Core.cpp'2
1 3
fn=0x0000000000001050
1 1
fn=train_step_not_in_nnc
1 1
PROFILE
  cat >"$tmp/b.out" <<'PROFILE'
fn=LLVMContextCreate
1 1
fn=main
1 1
PROFILE
  python3 "$3" --nnc "$nnc" -o "$tmp/order" --profiles first="$tmp/a.out" second="$tmp/b.out"
  printf '%s\n' '# first' _GLOBAL__sub_I_Core.cpp main '# second' nnc_code_compile LLVMContextCreate nnc_code_end >"$tmp/want"
  grep -v '^# the \|^# made ' "$tmp/order" | diff "$tmp/want" - ;;
esac
