#!/usr/bin/env bash
# abi_mismatch.sh NNC EXAMPLES - a header and an object of one model built
# with another dtype, batch or layout do not link: the object defines
# nnc_MODEL_abi_DTYPE_bBATCH_HASH and the header refers to its own, so the
# link fails with an undefined reference naming the header's (also with
# --gc-sections), where it used to link and overrun the buffers. The
# matched pair links, from C and from C++.
set -eu
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" "$examples/waves.nn" --emit header -o "$tmp/waves.h"
abi=$(grep -oE 'nnc_waves_abi_f32_b32_[0-9a-f]{8}' "$tmp/waves.h" | head -1)
[ -n "$abi" ] || { echo "no ABI symbol in the header"; exit 1; }
cat >"$tmp/main.c" <<'C'
#include "waves.h"
static nnc_waves_real buf[nnc_waves_BUFFER_ELEMS];
int main(void) {
  nnc_waves_buffer_init(buf);
  nnc_waves_update(buf);
  return 0;
}
C
cp "$tmp/main.c" "$tmp/main.cpp"
cc -std=c99 -Wall -Wextra -pedantic -Werror -I"$tmp" -c "$tmp/main.c" -o "$tmp/main.o"
cc -std=c99 -Wall -Wextra -pedantic -Werror -ffunction-sections -fdata-sections -I"$tmp" -c "$tmp/main.c" -o "$tmp/main_gc.o"

"$nnc" "$examples/waves.nn" --emit obj -o "$tmp/same.o"
nm "$tmp/same.o" | grep -q " R $abi\$" || { echo "the object does not define $abi"; nm "$tmp/same.o"; exit 1; }
cc "$tmp/main.o" "$tmp/same.o" -lm -o "$tmp/ok"
"$tmp/ok"
if command -v c++ >/dev/null; then
  c++ -Wall -Wextra -pedantic -Werror -I"$tmp" "$tmp/main.cpp" "$tmp/same.o" -lm -o "$tmp/ok_cxx"
  "$tmp/ok_cxx"
fi

# another layout under the same name, dtype and batch: a channel more in a layer
sed "s/conv1d(8,/conv1d(9,/; s|\"data/|\"$examples/data/|" "$examples/waves.nn" > "$tmp/waves9.nn"
cmp -s "$examples/waves.nn" "$tmp/waves9.nn" && { echo "waves.nn has no conv1d(8, to widen"; exit 1; }
"$nnc" "$examples/waves.nn" --dtype f64 --emit obj -o "$tmp/f64.o"
"$nnc" "$examples/waves.nn" --batch 16 --emit obj -o "$tmp/b16.o"
"$nnc" "$tmp/waves9.nn" --emit obj -o "$tmp/wide.o"
for o in f64 b16 wide; do
  for main in main main_gc; do
    flags=
    [ $main = main_gc ] && flags=-Wl,--gc-sections
    if cc $flags "$tmp/$main.o" "$tmp/$o.o" -lm -o "$tmp/bad" 2> "$tmp/err"; then
      echo "a header of waves.nn links with the object $o ($main)"
      exit 1
    fi
    grep -q "undefined reference to \`$abi'" "$tmp/err" || { echo "$o ($main):"; cat "$tmp/err"; exit 1; }
  done
done
echo "ok: $abi; f64, batch 16 and a wider layer do not link"
