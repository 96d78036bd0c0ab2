"""Threads, Ctrl-C and the model's life: close() from another thread waits
for the call it races, fit() stops at Ctrl-C with the run where it stood,
and the library leaves the process's signal handlers alone."""
import ctypes
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


def test_ctrl_c_twice_and_exceptions_anywhere_leave_the_model_whole():
    """A burst of SIGINTs, which may land anywhere in fit() (its set-up, the
    handler of the first, its clean-up): fit() returns only once the C loop
    has, the model is not left busy, and it trains on."""
    src = TINY.replace("epochs 3", "epochs 100000000")
    armed = [False]

    def interrupt(signum, frame):  # Python's, until the burst is over
        if armed[0]:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, interrupt)
    try:
        for trial in range(6):
            m = nnc.Model.from_source(src, name="tiny.nn")
            pid = os.getpid()

            def burst():
                time.sleep(0.05 * trial)
                for _ in range(30):
                    os.kill(pid, signal.SIGINT)
                    time.sleep(0.0005)

            th = threading.Thread(target=burst)
            armed[0] = True
            th.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    m.fit()
            finally:
                while th.is_alive():
                    try:
                        th.join()
                    except KeyboardInterrupt:
                        pass
                armed[0] = False
            check_whole(m)
    finally:
        armed[0] = False
        for _ in range(10):  # signals still pending run this handler, not Python's
            time.sleep(0.01)
        signal.signal(signal.SIGINT, old)


def check_whole(m):
    """m after an interrupted fit(): not busy (once its loop has returned,
    a step after the stop), not training, trains on."""
    for _ in range(1000):
        if not m._guard.busy:
            break
        time.sleep(0.001)
    assert not m._guard.busy
    w = m.params["linear1.W"].copy()
    time.sleep(0.05)
    assert np.array_equal(w, m.params["linear1.W"]), "the C loop trains on after fit() returned"
    before = m.epochs_trained
    m.fit(epochs=1)
    assert m.epochs_trained == before + 1
    m.close()


def test_stop_ends_a_fit_in_another_thread():
    """Ctrl-C reaches the main thread only: stop() is how another thread's
    fit() is asked to stop; it returns its History, the run where it
    stopped."""
    m = nnc.Model.from_source(TINY.replace("epochs 3", "epochs 100000000"), name="tiny.nn")
    got = []
    th = threading.Thread(target=lambda: got.append(m.fit()))
    th.start()
    while not m._guard.busy:
        time.sleep(0.001)
    time.sleep(0.2)
    m.stop()
    th.join(30)
    assert not th.is_alive() and got
    assert got[0].epochs == m.epochs_trained > 0
    m.stop()  # no fit() runs: nothing
    m.fit(epochs=1)
    assert m.epochs_trained == got[0].epochs + 1


def test_close_inside_a_call_is_refused():
    """close() from a signal handler while the same thread is inside a call
    on the model would free the code the call runs: RuntimeError."""
    m = nnc.Model.from_source(TINY, name="tiny.nn")
    x, t = rows(4, 2), rows(4, 1)
    refused = []

    def handler(signum, frame):
        try:
            m.close()
        except RuntimeError as e:
            refused.append(str(e))

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        with m._guard.lock:  # as inside a call
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert refused and "inside a call" in refused[0]
    m.train_step(x, t)  # still open
    m.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_gets_its_models_unlocked():
    m = nnc.Model.from_source(TINY, name="tiny.nn")
    x, t = rows(4, 2), rows(4, 1)
    held, go = threading.Event(), threading.Event()

    def hold():
        with m._guard.lock:
            held.set()
            go.wait(10)

    th = threading.Thread(target=hold)
    th.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: one thread, the lock is free
        try:
            m.train_step(x, t)
            os._exit(0)
        except BaseException:
            os._exit(1)
    go.set()
    th.join()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_diverging_compiled_model_above_the_interpreters_limit():
    """Compiled, the wide model runs in a few MB; when it diverges, the
    error names the epoch (finding the op would run the step in the
    interpreter, 35 GB), and the process lives on."""
    src = ("model wide {\n  input x[2]\n  target t[1]\n  y = x -> linear(2000) -> linear(2000) -> linear(1)\n"
           "  loss squared(y, t)\n}\ntrain {\n  data moons(samples: 2200, noise: 0.1, seed: 1)\n"
           "  optimizer sgd(lr: 0.01)\n  epochs 1\n  batch 1100\n}\n")
    with nnc.Model.from_source(src, name="wide.nn", jit=True) as m:
        m.params["linear2.W"] = np.full(m.params["linear2.W"].shape, 1e30)
        with pytest.raises(nnc.TrainingError, match="non-finite value in epoch 1"):
            m.fit()
        # the library's interpreter calls refuse it (nnc.h): -1, an error
        from nnc._lib import NncDiagnostics, NncFitResult, lib
        x, t = np.zeros((2, 2), np.float32), np.zeros((2, 1), np.float32)
        y, loss = np.zeros((2, 1), np.float32), np.zeros(2, np.float32)
        assert lib.interp_forward(m._m, m._bufp, x.ctypes.data, t.ctypes.data, 2, y.ctypes.data,
                                  loss.ctypes.data) == -1
        r, d = NncFitResult(), NncDiagnostics()
        assert lib.model_fit(m._m, m._bufp, None, 1, False, ctypes.byref(r), ctypes.byref(d)) == -1
        assert "the interpreter would need" in d.items[0].message.decode()
        lib.fit_result_free(ctypes.byref(r))
        lib.diagnostics_free(ctypes.byref(d))


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
    batch of 1100 needs 33 GiB in the interpreter (a [2000, 2000] gradient a
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


W2 = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench",
                  "w2_digits.nn")


@pytest.mark.parametrize("optimizer", ["sgd(lr: 0.1)", "adam(lr: 0.001)"])
def test_fit_on_two_threads_is_one_thread_bit_for_bit(optimizer, tmp_path):
    """threads=2: fit() splits W2's products (and Adam's steps of its
    weights) between two threads, and ends with the parameters and history
    of one thread, bit for bit."""
    src = open(W2).read().replace("sgd(lr: 0.1)", optimizer)
    assert optimizer in src
    name = os.path.join(os.path.dirname(W2), "w2_threads.nn")  # its csv() path is relative to bench/
    runs = []
    for threads in (1, 2):
        m = nnc.Model.from_source(src, name=name, epochs=2, threads=threads)
        h = m.fit()
        runs.append((np.array(h), m.buffer.copy()))  # parameters, gradients, optimizer state
        m.close()
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])


def test_threads_argument():
    with pytest.raises(ValueError, match="threads"):
        nnc.Model.from_source(TINY, name="tiny.nn", threads=3)
    with pytest.raises(ValueError, match="threads=2 needs jit=True"):
        nnc.Model.from_source(TINY, name="tiny.nn", jit=False, threads=2)

