#!/usr/bin/env python3
"""Writes the small files of the hostile-file test set (tests/hostile/).

Run it from anywhere: `python3 tests/hostile/make_files.py`. It rewrites
good.safetensors, the hostile safetensors files (st_*.safetensors), the
hostile CSV files (csv_*.csv), a model variant per CSV (csv_*.nn, whose
train block reads that CSV) and the hostile .nn files (nn_*.nn). The output
is deterministic, so running it again leaves git with nothing to commit.

Files too large to commit, and directories, are made by run.sh at test time
(see `setup` there): csv_huge_line.csv, nn_enormous.nn, dir.csv, dir.nn,
dir.safetensors, st_header_over_limit.safetensors.

model.nn and good.csv are written by hand and are not touched here.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# The parameters of model.nn, in creation order, with their shapes.
PARAMS = [
    ("linear1.W", [3, 2], [0.5, -0.25, 0.125, 0.75, -0.5, 1.0]),
    ("linear1.b", [3], [0.0, 0.25, -0.125]),
    ("linear2.W", [1, 3], [1.0, -0.5, 0.25]),
    ("linear2.b", [1], [0.5]),
]


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(HERE, name), mode) as f:
        f.write(data)


def tensors(params=PARAMS, fmt="d", dtype="F64"):
    """The header dict and the data blob of a well-formed file."""
    header, blob = {}, b""
    for name, shape, values in params:
        data = struct.pack("<%d%s" % (len(values), fmt), *values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    return header, blob


def safetensors(header, blob, length=None):
    """A safetensors file: header (a dict, or raw bytes/str) and blob.
    length overrides the 8-byte header length field."""
    if isinstance(header, dict):
        text = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        text = header.encode()
    else:
        text = header
    text += b" " * (-len(text) % 8)  # the usual padding to 8 bytes
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + blob


def st_files():
    h, blob = tensors()
    out = {"good.safetensors": safetensors(h, blob)}

    def variant(edit):
        h2 = json.loads(json.dumps(h))
        edit(h2)
        return safetensors(h2, blob)

    # The file itself.
    out["st_empty.safetensors"] = b""
    out["st_short.safetensors"] = b"\x10\x00\x00"
    out["st_header_past_end.safetensors"] = safetensors(h, blob, length=4096)
    out["st_header_absurd.safetensors"] = safetensors(h, blob, length=1 << 40)
    out["st_header_max.safetensors"] = safetensors(h, blob, length=(1 << 64) - 1)
    # The JSON header.
    out["st_bad_json.safetensors"] = safetensors(
        '{"linear1.W":{"dtype":"F64","shape":[3,2],"data_offsets":[0,48]', blob)
    out["st_json_garbage.safetensors"] = safetensors("hello, world", blob)
    out["st_json_nul.safetensors"] = safetensors(b'{"a\x00":1}', blob)
    out["st_json_array.safetensors"] = safetensors("[1,2,3]", blob)
    out["st_entry_not_object.safetensors"] = variant(
        lambda d: d.update({"linear1.b": [1, 2, 3]}))
    out["st_metadata_not_strings.safetensors"] = variant(
        lambda d: d.update({"__metadata__": {"epoch": 3}}))
    # data_offsets.
    out["st_offsets_out_of_range.safetensors"] = variant(
        lambda d: d["linear2.b"].update({"data_offsets": [96, 112]}))
    out["st_offsets_reversed.safetensors"] = variant(
        lambda d: d["linear1.b"].update({"data_offsets": [72, 48]}))
    out["st_offsets_not_pair.safetensors"] = variant(
        lambda d: d["linear1.b"].update({"data_offsets": [48]}))
    out["st_offsets_negative.safetensors"] = variant(
        lambda d: d["linear1.b"].update({"data_offsets": [-8, 16]}))
    out["st_offsets_huge.safetensors"] = variant(
        lambda d: d["linear2.b"].update({"data_offsets": [96, 1 << 52]}))
    # Beyond 2^53 a JSON number is no longer an exact integer for cJSON.
    out["st_offsets_u64.safetensors"] = variant(
        lambda d: d["linear2.b"].update({"data_offsets": [96, 1 << 60]}))

    def overlap(d):
        d["linear1.b"]["data_offsets"] = [40, 64]
        d["linear2.W"]["data_offsets"] = [64, 88]
        d["linear2.b"]["data_offsets"] = [88, 96]
    out["st_offsets_overlap.safetensors"] = variant(overlap)
    out["st_offsets_size_mismatch.safetensors"] = variant(
        lambda d: d["linear1.W"].update({"data_offsets": [0, 40]}))
    # Values: NaN parameters load as they are (see cases.txt).
    out["st_nan_values.safetensors"] = safetensors(*tensors(
        [(n, s, [float("nan")] * len(v)) for n, s, v in PARAMS]))
    # dtype and shape.
    out["st_wrong_dtype.safetensors"] = safetensors(
        *tensors(fmt="f", dtype="F32"))
    out["st_unknown_dtype.safetensors"] = variant(
        lambda d: d["linear1.W"].update({"dtype": "Q7"}))
    out["st_dtype_missing.safetensors"] = variant(
        lambda d: d["linear1.W"].pop("dtype"))
    out["st_wrong_shape.safetensors"] = variant(
        lambda d: d["linear1.W"].update({"shape": [2, 3]}))
    out["st_wrong_rank.safetensors"] = variant(
        lambda d: d["linear1.W"].update({"shape": [6]}))
    out["st_shape_huge.safetensors"] = variant(
        lambda d: d["linear2.b"].update({"shape": [1 << 40]}))
    out["st_shape_negative.safetensors"] = variant(
        lambda d: d["linear1.b"].update({"shape": [-3]}))
    out["st_shape_rank5.safetensors"] = variant(
        lambda d: d["linear1.b"].update({"shape": [3, 1, 1, 1, 1]}))
    # Names.
    out["st_missing_tensor.safetensors"] = safetensors(
        *tensors([p for p in PARAMS if p[0] != "linear2.W"]))
    out["st_unexpected_tensor.safetensors"] = safetensors(
        *tensors(PARAMS + [("linear3.W", [2], [1.0, 2.0])]))
    out["st_duplicate_tensor.safetensors"] = safetensors(
        '{"linear1.W":{"dtype":"F64","shape":[3,2],"data_offsets":[0,48]},'
        '"linear1.b":{"dtype":"F64","shape":[3],"data_offsets":[48,72]},'
        '"linear1.b":{"dtype":"F64","shape":[3],"data_offsets":[48,72]},'
        '"linear2.W":{"dtype":"F64","shape":[1,3],"data_offsets":[72,96]},'
        '"linear2.b":{"dtype":"F64","shape":[1],"data_offsets":[96,104]}}',
        blob)
    return out


CSV = {
    # Rows with too few and too many fields.
    "ragged_short": "x0,x1,t\n0.5,-1,1\n1,2\n",
    "ragged_long": "x0,x1,t\n0.5,-1,1\n1,2,0,4\n",
    "non_number": "x0,x1,t\n0.5,-1,1\n1,abc,0\n",
    "empty_field": "x0,x1,t\n0.5,-1,1\n1,,0\n",
    "nan": "x0,x1,t\n0.5,-1,1\n1,nan,0\n",
    "inf": "x0,x1,t\n0.5,-1,1\n-inf,2,0\n",
    "inf_target": "x0,x1,t\n0.5,-1,1\n1,2,inf\n",
    "too_few_columns": "x0\n0.5\n1\n",
    "overflow": "x0,x1,t\n0.5,-1,1\n1e999,2,0\n",
    "empty": "",
    "header_only": "x0,x1,t\n",
    "binary": "0.5,-1,1\n\x00\x01\x02\xff,\x7f\x00,1\n",
    "hex": "x0,x1,t\n0.5,-1,1\n0x10,2,0\n",
    "wide": "x0,x1,t,u,v\n0.5,-1,1,2,3\n",
}

CSV_MODEL = """\
# model.nn reading the hostile %s.
model hostile {
  dtype f64
  input  x[2]
  target t[1]
  y = x -> linear(3) -> relu -> linear(1)
  loss squared(y, t)
}
train {
  data      csv("%s")
  optimizer sgd(lr: 0.1)
  epochs    1
  batch     2
}
"""

# CSVs made at test time by run.sh, or not there at all.
CSV_NOT_HERE = ["huge_line", "missing", "dir"]


def csv_files():
    out = {}
    for name, text in CSV.items():
        out["csv_%s.csv" % name] = text.encode("latin-1")
    for name in list(CSV) + CSV_NOT_HERE:
        csv = "dir.csv" if name == "dir" else "csv_%s.csv" % name
        out["csv_%s.nn" % name] = (CSV_MODEL % (csv, csv)).encode()
    return out


def nn_files():
    # Random-looking bytes, NULs included, from a fixed linear congruential
    # generator (no `random`, so the bytes never change between Pythons).
    state, garbage = 12345, bytearray()
    for i in range(512):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        garbage.append(0 if i % 7 == 0 else (state >> 16) & 0xFF)
    return {
        "nn_empty.nn": b"",
        "nn_binary.nn": bytes(garbage),
        "nn_nul_inside.nn": b"model m {\n  input x[2]\x00\n}\n",
    }


def main():
    for files in (st_files(), csv_files(), nn_files()):
        for name, data in files.items():
            write(name, data)


if __name__ == "__main__":
    main()
