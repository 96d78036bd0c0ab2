#!/usr/bin/env python3
"""set_metadata.py IN OUT KEY=VALUE... - a copy of a safetensors file with
__metadata__ entries changed (KEY=VALUE) or removed (KEY=), for the tests of
--resume's metadata errors. Only the standard library."""
import json
import struct
import sys


def main(argv):
    src, dst = argv[1], argv[2]
    data = open(src, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.setdefault("__metadata__", {})
    for item in argv[3:]:
        key, _, value = item.partition("=")
        if value:
            meta[key] = value
        else:
            meta.pop(key, None)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[8 + n:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
