#!/usr/bin/env bash
# pip_install.sh PYTHON SOURCE_DIR LIBNNC - what docs/python.md tells a user:
# a virtual environment that sees Debian's numpy, `pip install ./python`
# (offline: nothing is downloaded), and the package works from there with
# the libnnc.so it bundled, in a directory far from the source tree.
set -eu
python=$1 src=$2 lib=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a copy of python/, so the source tree gets no build/ or egg-info
cp -R "$src/python" "$tmp/python"
"$python" -m venv --system-site-packages --without-pip "$tmp/env"
NNC_LIBRARY=$lib PIP_NO_INDEX=1 "$tmp/env/bin/python" -m pip install --no-cache-dir -q "$tmp/python" \
  > "$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; exit 1; }
cd "$tmp"
env -u NNC_LIBRARY -u PYTHONPATH "$tmp/env/bin/python" - "$src/examples/moons.nn" <<'PY'
import os, sys
import numpy as np
import nnc
from nnc import _lib
assert _lib.path.startswith(os.path.dirname(nnc.__file__)), _lib.path  # the bundled library
m = nnc.Model(sys.argv[1])
h = m.fit()
print("installed package: %s, final train loss %.17g" % (nnc.__file__, h.final_train_loss))
assert h.final_train_loss < 0.02
PY
