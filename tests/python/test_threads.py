"""Threads, Ctrl-C and the model's life: close() from another thread waits
for the call it races, fit() stops at Ctrl-C with the run where it stood,
and the library leaves the process's signal handlers alone."""
import json
import os
import signal
import struct
import sys
import threading
import time

import numpy as np
import pytest

import nnc
from conftest import TINY, cli


def rows(n, cols, seed=0):
    return np.random.default_rng(seed).standard_normal((n, cols))


def test_close_from_another_thread_waits_for_the_call():
    """A thread calls train_step, forward and data() in a loop while another
    closes the model: every call either completes or raises ValueError
    ("closed"); none runs freed code (the process would crash)."""
    for trial in range(40):
        m = nnc.Model.from_source(TINY, name="tiny.nn")
        x, t = rows(4, 2), rows(4, 1)
        seen = []

        def calls():
            try:
                while True:
                    m.train_step(x, t)
                    m.forward(x, t)
                    m.data()
            except ValueError as e:
                seen.append(str(e))

        th = threading.Thread(target=calls)
        th.start()
        time.sleep(0.002 * (trial % 5))
        m.close()
        th.join()
        assert seen and "closed" in seen[0]


def test_fit_stops_at_ctrl_c_where_the_run_stands(tmp_path):
    """SIGINT during fit() raises KeyboardInterrupt within a step or so (not
    after every epoch), and the run stands where it stopped: epochs_trained
    counts the epochs done, a checkpoint saved now resumes mid-epoch, and
    fit() goes on."""
    m = nnc.Model.from_source(TINY.replace("epochs 3", "epochs 100000000"), name="tiny.nn")
    pid = os.getpid()
    timer = threading.Timer(0.5, lambda: os.kill(pid, signal.SIGINT))
    began = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        m.fit()
    took = time.monotonic() - began
    timer.join()
    assert took < 30, "fit() went on for %.1f s after Ctrl-C" % took
    assert m.epochs_trained > 0
    path = str(tmp_path / "stopped.safetensors")
    m.save(path)
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(size))["__metadata__"]
    assert int(meta["epoch"]) == m.epochs_trained and int(meta["steps"]) > 0
    before = m.epochs_trained
    m.fit(epochs=2)  # goes on, and the model is usable
    assert m.epochs_trained == before + 2
    assert np.isfinite(m.evaluate(*m.data()[:2]))


def test_fit_leaves_the_signal_handlers_alone():
    """fit(verbose=True), in two threads at once, installs no handler of its
    own: Ctrl-C afterwards is Python's KeyboardInterrupt."""
    src = TINY.replace("epochs 3", "epochs 200")
    models = [nnc.Model.from_source(src, name="tiny.nn") for _ in range(2)]
    before = signal.getsignal(signal.SIGINT)
    threads = [threading.Thread(target=lambda m=m: m.fit(verbose=True)) for m in models]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # (the handler raises here)


def test_jit_model_is_held_to_compiled_code_memory():
    """The 16 GiB limit follows the code that runs: a 2000 x 2000 layer at a
    batch of 1100 needs 17 GiB in the interpreter (a [2000, 2000] gradient a
    row) and a few MB of workspace compiled."""
    src = ("model wide {\n  input x[2000]\n  target t[1]\n  y = x -> linear(2000) -> linear(1)\n"
           "  loss squared(y, t)\n}\ntrain {\n  batch 1100\n}\n")
    with pytest.raises(nnc.CompileError, match="a batch of 1100 rows"):
        nnc.Model.from_source(src, name="wide.nn", jit=False)
    with nnc.Model.from_source(src, name="wide.nn", jit=True) as m:
        assert m.max_batch == 1100


def test_params_refuse_values_that_are_not_finite():
    """What load() would refuse, so that save() writes a file it reads: NaN,
    infinity, and a float64 too large for an f32 model's buffer."""
    m = nnc.Model.from_source(TINY, name="tiny.nn")
    b = m.params["linear1.b"].copy()
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="not finite"):
            m.params["linear1.b"] = np.full(3, bad)
    assert np.array_equal(m.params["linear1.b"], b)
    f32 = nnc.Model.from_source(TINY.replace("dtype f64", "dtype f32"), name="tiny.nn")
    with pytest.raises(ValueError, match="not finite"):
        f32.params["linear1.b"] = np.full(3, 1e300)
    f32.params["linear1.b"] = np.full(3, 0.1)  # rounds to f32, as the buffer holds it
    assert f32.params["linear1.b"][0] == np.float32(0.1)
