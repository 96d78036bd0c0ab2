"""nnc.safetensors: any safetensors file as numpy arrays, in both directions
with the model's own checkpoints."""
import struct

import numpy as np
import pytest

import nnc
from nnc import safetensors
from conftest import DATA, TINY


def test_reads_what_the_model_writes(tmp_path):
    m = nnc.Model.from_source(TINY, name="tiny.nn")
    m.fit()
    m.save(tmp_path / "p.safetensors")
    tensors = safetensors.load_file(tmp_path / "p.safetensors")
    assert list(tensors) == list(m.params)
    for k, v in tensors.items():
        assert v.dtype == np.float64 and np.array_equal(v, m.params[k])
    assert safetensors.metadata(tmp_path / "p.safetensors")["epoch"] == "3"


def test_the_model_reads_what_it_writes(tmp_path):
    m = nnc.Model.from_source(TINY, name="tiny.nn", jit=False)
    new = {k: np.full(v.shape, 0.5) for k, v in m.params.items()}
    safetensors.save_file(new, tmp_path / "q.safetensors", metadata={"source": "test"})
    m.load(tmp_path / "q.safetensors")
    assert all((v == 0.5).all() for v in m.params.values())
    assert safetensors.metadata(tmp_path / "q.safetensors") == {"source": "test"}
    # the header pads the data to 8 bytes
    raw = (tmp_path / "q.safetensors").read_bytes()
    assert struct.unpack("<Q", raw[:8])[0] % 8 == 0


def test_reads_the_seed_checkpoint():
    t = safetensors.load_file(DATA + "/init_seed0.safetensors")
    assert t["linear1.W"].shape == (4, 2) and t["linear1.W"].dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, ">f8"])
def test_round_trip(dtype, tmp_path):
    a = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    safetensors.save_file({"a": a, "empty": np.zeros((0, 3), np.float32)}, tmp_path / "a.safetensors")
    back = safetensors.load_file(tmp_path / "a.safetensors")
    assert np.array_equal(back["a"], a) and back["a"].dtype == np.dtype(dtype).newbyteorder("=")
    assert back["empty"].shape == (0, 3)


def header_file(tmp_path, header, body=b""):
    p = tmp_path / "h.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + body)
    return p


@pytest.mark.parametrize("raw,match", [
    (b"", "shorter than a safetensors header"),
    (struct.pack("<Q", 1000) + b"{}", "runs past the end"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
])
def test_damaged_files(raw, match, tmp_path):
    p = tmp_path / "d.safetensors"
    p.write_bytes(raw)
    with pytest.raises(safetensors.SafetensorsError, match=match):
        safetensors.load_file(p)


@pytest.mark.parametrize("entry,match", [
    ('{"a": {"dtype": "F9", "shape": [1], "data_offsets": [0, 8]}}', "unknown dtype"),
    ('{"a": {"dtype": "F64", "shape": [-1], "data_offsets": [0, 8]}}', "shape must be"),
    ('{"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}', "8 bytes of data for shape"),
    ('{"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 800]}}', "out of the file's range"),
    ('{"a": {"dtype": "F64", "shape": [1]}}', "needs exactly"),
    ('{"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}, '
     '"b": {"dtype": "F64", "shape": [1], "data_offsets": [4, 12]}}', "overlap"),
    ('{"__metadata__": {"a": 1}}', "__metadata__ must map"),
])
def test_damaged_headers(entry, match, tmp_path):
    with pytest.raises(safetensors.SafetensorsError, match=match):
        safetensors.load_file(header_file(tmp_path, entry.encode(), bytes(16)))


def test_save_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="no safetensors name"):
        safetensors.save_file({"a": np.zeros(2, complex)}, tmp_path / "c.safetensors")
    with pytest.raises(TypeError, match="metadata"):
        safetensors.save_file({}, tmp_path / "c.safetensors", metadata={"a": 1})
    with pytest.raises(ValueError, match="tensor names"):
        safetensors.save_file({"__metadata__": np.zeros(1)}, tmp_path / "c.safetensors")
    assert list(tmp_path.iterdir()) == []
