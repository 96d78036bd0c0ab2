#!/usr/bin/env bash
# install.sh BUILD_DIR SOURCE_DIR [PYTHON SITEDIR] - `cmake --install` into a
# temporary prefix puts nnc, libnnc, nnc.h (and its nnc_version.h) alone, the CMake package and the
# pkg-config file there; consumer.c builds against the installed tree with
# pkg-config (shared and static) and with find_package(nnc), and runs; the
# installed nnc runs; with PYTHON, the Python package installed in
# PREFIX/SITEDIR imports and trains with the installed libnnc.so.
set -eu
build=$1 src=$2 python=${3:-} sitedir=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
for f in bin/nnc lib/libnnc.so lib/libnnc.a include/nnc.h include/nnc_version.h lib/pkgconfig/nnc.pc lib/cmake/nnc/nncConfig.cmake \
         lib/cmake/nnc/nncConfigVersion.cmake lib/cmake/nnc/nncTargets.cmake; do
  [ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
[ "$(ls "$prefix/include" | tr '\n' ' ')" = "nnc.h nnc_version.h " ] ||
  { echo "include/ holds more than nnc.h and nnc_version.h:"; ls "$prefix/include"; exit 1; }
"$prefix/bin/nnc" "$src/examples/moons.nn" | grep -q "model moons"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
echo "== pkg-config: $(pkg-config --cflags --libs nnc)"
cc -Wall -Wextra -Werror "$src/tests/api/consumer.c" $(pkg-config --cflags --libs nnc) -lm \
   -Wl,-rpath,"$prefix/lib" -o "$tmp/consumer_pc"
"$tmp/consumer_pc"
ldd "$tmp/consumer_pc" | grep -q "$prefix/lib/libnnc.so" || { echo "not linked with the installed libnnc.so"; exit 1; }

echo "== pkg-config --static"
cc "$src/tests/api/consumer.c" $(pkg-config --cflags nnc) "$prefix/lib/libnnc.a" \
   $(pkg-config --static --libs nnc | sed 's/ -lnnc / /') -o "$tmp/consumer_static"
"$tmp/consumer_static"
if ldd "$tmp/consumer_static" | grep -q libnnc; then echo "the static build uses libnnc.so"; exit 1; fi

echo "== find_package(nnc)"
cmake -S "$src/tests/api/consumer" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$tmp/cm.log" \
  || { cat "$tmp/cm.log"; exit 1; }
cmake --build "$tmp/cm" > "$tmp/cm-build.log" || { cat "$tmp/cm-build.log"; exit 1; }
"$tmp/cm/consumer"

if [ -n "$python" ]; then
  echo "== the Python package in $sitedir"
  (cd "$tmp" && env -u NNC_LIBRARY PYTHONPATH="$prefix/$sitedir" "$python" - "$prefix" "$src/examples/moons.nn" <<'PY'
import os, sys
import nnc
from nnc import _lib
prefix = os.path.realpath(sys.argv[1])
assert os.path.realpath(nnc.__file__).startswith(prefix), nnc.__file__
assert os.path.realpath(_lib.path) == os.path.realpath(os.path.join(prefix, "lib", "libnnc.so")), _lib.path
print("nnc from %s: final train loss %.6g" % (_lib.path, nnc.Model(sys.argv[2], epochs=50).fit().final_train_loss))
PY
  )
fi
