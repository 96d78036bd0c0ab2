"""No call leaks: the heap in use (glibc's mallinfo2, or the sanitizer's
count when the sanitizers' runtimes are loaded) is the same after thousands
of calls."""
import ctypes
import gc

import numpy as np
import pytest

import nnc
from conftest import MOONS, TINY, rows

_process = ctypes.CDLL(None)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use():
    if hasattr(_process, "__sanitizer_get_current_allocated_bytes"):
        f = _process.__sanitizer_get_current_allocated_bytes
        f.restype = ctypes.c_size_t
        return f()
    f = _process.mallinfo2
    f.restype = _Mallinfo2
    m = f()
    return m.uordblks + m.hblkhd


def growth(call, times, rounds=3, warm_up=None):
    """The least growth of the heap over `rounds` rounds of `times` calls: a
    leak grows it in every round, the interpreter's own bookkeeping (a
    dict resized, a free list) only now and then."""
    for _ in range(times // 10 if warm_up is None else warm_up):  # caches, first-use allocations
        call()
    least = None
    for _ in range(rounds):
        gc.collect()
        before = heap_in_use()
        for _ in range(times):
            call()
        gc.collect()
        g = heap_in_use() - before
        least = g if least is None else min(least, g)
    return least


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "interp"])
def test_train_step_does_not_leak(jit):
    m = nnc.Model(MOONS, jit=jit)
    x, t = rows(1, 2), rows(1, 1)
    # a leak of a single byte a call would show as 10,000 bytes
    assert growth(lambda: m.train_step(x, t), 10000, rounds=1) < 4096


def test_the_other_calls_do_not_leak(tmp_path):
    m = nnc.Model.from_source(TINY, name="tiny.nn")
    x, t = rows(4, 2), rows(4, 1)
    p = str(tmp_path / "p.safetensors")
    m.save(p)
    calls = [lambda: m.grad(x, t), lambda: m.predict(x), lambda: m.forward(x, t), lambda: m.train_epoch(x, t),
             lambda: m.emit("grad"), lambda: m.emit("header")]
    for call in calls:
        assert growth(call, 300) < 2048, call.__code__.co_names
    # a glibc chunk is at least 32 bytes: any leak a call shows here
    for call in [lambda: m.fit(epochs=1), lambda: m.save(p), lambda: m.load(p)]:
        assert growth(call, 100) < 2048, call.__code__.co_names


def test_errors_do_not_leak(tmp_path):
    m = nnc.Model.from_source(TINY, name="tiny.nn", jit=False)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")

    def load_bad():
        with pytest.raises(nnc.Error):
            m.load(bad)

    def compile_bad():
        with pytest.raises(nnc.CompileError):
            nnc.Model.from_source("model a {\n  y = x -> relux\n}\n", name="a.nn")
    assert growth(load_bad, 300) < 4096
    assert growth(compile_bad, 300) < 4096


def test_models_are_freed():
    def make():
        nnc.Model.from_source(TINY, name="tiny.nn", jit=False).close()

    def make_jit():
        nnc.Model.from_source(TINY, name="tiny.nn").close()
    assert growth(make, 200) < 4096
    # the C heap grows over a process's first few hundred JIT compiles, a
    # few KB per 20 early on and none after (mallinfo2 round by round, less
    # what tracemalloc counts for Python): not a leak, which would grow it
    # in every round; warm up past the first burst
    assert growth(make_jit, 20, rounds=5, warm_up=100) < 4096
    arrays = nnc.Model.from_source(TINY, name="tiny.nn", jit=False).params["linear1.W"]
    gc.collect()
    assert np.isfinite(arrays).all()  # the views outlive the model
