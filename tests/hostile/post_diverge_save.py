#!/usr/bin/env python3
"""After a diverging `--train --save out.safetensors`: out.safetensors must
be a complete safetensors file of model.nn's parameters, every value finite
(the last parameters before the run diverged). Removes it when it passes."""
import json
import math
import os
import struct
import sys

PATH = "out.safetensors"
SHAPES = {"linear1.W": [3, 2], "linear1.b": [3],
          "linear2.W": [1, 3], "linear2.b": [1]}


def fail(msg):
    print("%s: %s" % (PATH, msg))
    sys.exit(1)


if not os.path.isfile(PATH):
    fail("missing")
with open(PATH, "rb") as f:
    data = f.read()
if len(data) < 8:
    fail("too short")
n = struct.unpack("<Q", data[:8])[0]
if 8 + n > len(data):
    fail("header length %d past the end" % n)
header = json.loads(data[8:8 + n])
header.pop("__metadata__", None)
if sorted(header) != sorted(SHAPES):
    fail("tensors %s, expected %s" % (sorted(header), sorted(SHAPES)))
blob = data[8 + n:]
for name, entry in header.items():
    if entry["dtype"] != "F64" or entry["shape"] != SHAPES[name]:
        fail("%s is %s %s" % (name, entry["dtype"], entry["shape"]))
    begin, end = entry["data_offsets"]
    count = math.prod(SHAPES[name])
    if end - begin != 8 * count or end > len(blob):
        fail("%s: bad data_offsets %s" % (name, entry["data_offsets"]))
    values = struct.unpack("<%dd" % count, blob[begin:end])
    if not all(math.isfinite(v) for v in values):
        fail("%s holds a value that is not finite: %s" % (name, values))
os.remove(PATH)
