"""safetensors files as dicts of numpy arrays, for checkpoints shared with
other tools (PyTorch: torch.from_numpy on each array). The names of the
`safetensors` package's numpy module: load_file(path) and
save_file(tensors, path, metadata=None).

Model.save and Model.load read and write a model's own checkpoints; these
read and write any file: a header (8 bytes of little-endian length, then
JSON: per tensor dtype, shape and data_offsets; optional __metadata__ of
strings), then the data, row-major, little-endian.
"""
import json
import os
import struct

import numpy as np

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 << 20


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file (the message says where)."""


def load_file(path):
    """The tensors of a safetensors file: {name: numpy array} in the
    file's order (new arrays, native byte order)."""
    with open(path, "rb") as f:
        data = f.read()
    return _parse(data, os.fspath(path))


def metadata(path):
    """The file's __metadata__ (a dict of strings; empty without one)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError("%s: shorter than a safetensors header" % os.fspath(path))
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise SafetensorsError("%s: header length %d is not plausible" % (os.fspath(path), n))
        header = _header(f.read(n), n, os.fspath(path))
    return dict(header.get("__metadata__", {}))


def _header(raw, n, where):
    if len(raw) < n:
        raise SafetensorsError("%s: header runs past the end of the file" % where)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError("%s: header is not JSON: %s" % (where, e)) from None
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not a JSON object" % where)
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise SafetensorsError("%s: __metadata__ must map names to strings" % where)
    return header


def _parse(data, where):
    if len(data) < 8:
        raise SafetensorsError("%s: shorter than a safetensors header" % where)
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, _MAX_HEADER):
        raise SafetensorsError("%s: header length %d runs past the end of the file" % (where, n))
    header = _header(data[8:8 + n], n, where)
    body = memoryview(data)[8 + n:]
    out, spans = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError("%s: tensor %s: needs exactly dtype, shape and data_offsets" % (where, name))
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPES:
            raise SafetensorsError("%s: tensor %s: unknown dtype %r" % (where, name, dtype))
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise SafetensorsError("%s: tensor %s: shape must be a list of sizes" % (where, name))
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(v) is int for v in offsets)
                and 0 <= offsets[0] <= offsets[1] <= len(body)):
            raise SafetensorsError("%s: tensor %s: data_offsets out of the file's range" % (where, name))
        dt = np.dtype(_DTYPES[dtype])
        count = 1
        for d in shape:
            count *= d
        if offsets[1] - offsets[0] != count * dt.itemsize:
            raise SafetensorsError("%s: tensor %s: %d bytes of data for shape %s of %s" % (
                where, name, offsets[1] - offsets[0], shape, dtype))
        spans.append((offsets[0], offsets[1], name))
        array = np.frombuffer(body[offsets[0]:offsets[1]], dtype=dt).reshape(shape)
        out[name] = array.astype(dt.newbyteorder("="))
    spans.sort()
    for (b0, e0, a), (b1, e1, b) in zip(spans, spans[1:]):
        if b1 < e0:
            raise SafetensorsError("%s: tensors %s and %s overlap" % (where, a, b))
    return out


def save_file(tensors, path, metadata=None):
    """Write {name: array} (numpy arrays, or anything np.asarray takes, such
    as a CPU torch tensor's .numpy()) to path, with optional metadata
    {str: str}. The file is written beside path and renamed, so it appears
    whole or not at all."""
    header, blobs, at = {}, [], 0
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError("tensor names must be strings other than __metadata__, got %r" % (name,))
        a = np.asarray(value)
        key = _NAMES.get(a.dtype.newbyteorder("<") if a.dtype.byteorder not in "|" else a.dtype)
        if key is None:
            raise ValueError("tensor %s: dtype %s has no safetensors name" % (name, a.dtype))
        raw = np.ascontiguousarray(a, dtype=np.dtype(_DTYPES[key])).tobytes()
        header[name] = {"dtype": key, "shape": list(a.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    tmp = "%s.tmp.%d" % (os.fspath(path), os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
