"""Every call of nnc.Model on small models: what it returns, and that the
compiled code and the interpreter agree."""
import os
import threading

import numpy as np
import pytest

import nnc
from conftest import DATA, MOONS, TINY, cli, rows


def test_layout_as_the_command_line_prints_it(moons):
    assert moons.name == "moons" and moons.dtype == np.float64 and moons.jit
    assert (moons.max_batch, moons.input_cols, moons.target_cols, moons.output_cols) == (1, 2, 1, 1)
    assert moons.has_predict
    layout = [line.split() for line in cli(MOONS, "--emit", "layout").splitlines()[1:]]
    params = [(l[1], l[2], int(l[4])) for l in layout if l[0] == "param"]
    grads = [(l[1][2:], int(l[4])) for l in layout if l[0] == "grad"]
    assert [(p.name, "[%s]" % ",".join(map(str, p.shape)), p.offset) for p in moons.layout] == params
    assert [(p.name, p.grad_offset) for p in moons.layout] == grads
    assert list(moons.params) == [p.name for p in moons.layout]
    assert moons.buffer.ctypes.data % 64 == 0
    assert "moons" in repr(moons) and "57 parameters in 8 tensors" in repr(moons)


def test_params_are_views_of_the_buffer(tiny):
    w = tiny.params["linear1.W"]
    assert w.shape == (3, 2) and w.dtype == np.float64
    assert np.shares_memory(w, tiny.buffer)
    x = rows(4, 2)
    before = tiny.predict(x)
    w *= 2  # writes go to the model
    assert not np.array_equal(tiny.predict(x), before)
    tiny.params["linear1.W"] = w / 2  # assignment copies in
    assert np.array_equal(tiny.predict(x), before)
    tiny.params.update({"linear2.b": np.array([0.25])})
    assert tiny.params["linear2.b"][0] == 0.25
    assert np.shares_memory(tiny.grads["linear1.W"], tiny.buffer)
    assert "linear1.W" in tiny.params and len(tiny.params) == 4
    assert dict(tiny.params.items()).keys() == set(tiny.params.keys())


def test_params_refuse_other_shapes_and_names(tiny):
    with pytest.raises(ValueError, match=r"linear1.W has shape \(3, 2\); got an array of shape \(2, 3\)"):
        tiny.params["linear1.W"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match="cannot take values of dtype complex128"):
        tiny.params["linear1.W"] = np.zeros((3, 2), complex)
    with pytest.raises(KeyError, match="no parameter 'linear9.W'"):
        tiny.params["linear9.W"]


def test_jit_and_interpreter_agree():
    a = nnc.Model.from_source(TINY, name="tiny.nn", jit=True)
    b = nnc.Model.from_source(TINY, name="tiny.nn", jit=False)
    assert not b.jit and "interpreter" in repr(b)
    assert np.array_equal(a.buffer, b.buffer)  # the same initializers
    x, t = rows(4, 2, seed=1), rows(4, 1, seed=2)
    for _ in range(5):
        la, lb = a.train_step(x, t), b.train_step(x, t)
        assert abs(la - lb) <= 1e-12 * abs(lb)
    assert np.allclose(a.buffer, b.buffer, rtol=1e-12, atol=1e-15)
    ya, yb = a.predict(rows(9, 2)), b.predict(rows(9, 2))
    assert ya.shape == (9, 1) and np.allclose(ya, yb, rtol=1e-12)
    (fa, la), (fb, lb) = a.forward(x, t), b.forward(x, t)
    assert np.allclose(fa, fb, rtol=1e-12) and np.allclose(la, lb, rtol=1e-12) and la.shape == (4,)
    ga, gb = a.grad(x, t), b.grad(x, t)
    assert abs(ga[0] - gb[0]) <= 1e-12 * gb[0]
    for k in ga[1]:
        assert np.allclose(ga[1][k], gb[1][k], rtol=1e-10, atol=1e-15)
    ha, hb = a.fit(), b.fit()
    assert np.allclose(ha.train_loss, hb.train_loss, rtol=1e-10)
    assert a.train_epoch(x, t) == pytest.approx(b.train_epoch(x, t), rel=1e-10)


def test_train_step_returns_the_batch_loss_before_the_step(tiny):
    x, t = rows(4, 2), rows(4, 1, seed=5)
    y, loss = tiny.forward(x, t)
    assert np.allclose(loss, ((y - t) ** 2).sum(axis=1))
    assert tiny.train_step(x, t) == pytest.approx(loss.mean(), rel=1e-14)
    assert tiny.train_step(x, t) < loss.mean()
    # fewer rows than the batch; targets as (n,) for one column
    assert isinstance(tiny.train_step(x[:1], t[:1, 0]), float)
    # a read-only array is fine: nothing writes to x or t
    x.flags.writeable = False
    tiny.train_step(x, t)


def test_grad_then_update_is_a_train_step(tiny):
    x, t = rows(4, 2), rows(4, 1, seed=5)
    start = tiny.buffer.copy()
    loss, grads = tiny.grad(x, t)
    assert list(grads) == list(tiny.params) and grads["linear1.W"].shape == (3, 2)
    assert np.array_equal(grads["linear1.W"], tiny.grads["linear1.W"])
    assert not np.shares_memory(grads["linear1.W"], tiny.buffer)
    tiny.update()
    after_update = {k: v.copy() for k, v in tiny.params.items()}
    tiny.buffer[:] = start
    assert tiny.train_step(x, t) == loss
    for k, v in tiny.params.items():  # (the fused step need not store gradients)
        assert np.array_equal(v, after_update[k])
    # SGD: W - lr * dW
    assert np.allclose(tiny.params["linear1.W"], start[:6].reshape(3, 2) - 0.1 * grads["linear1.W"])


def test_grad_without_arguments_uses_the_first_batch(tiny):
    d = tiny.data()
    assert tiny.grad()[0] == tiny.grad(d.x_train[:4], d.t_train[:4])[0]


def test_train_epoch_runs_every_row(tiny):
    x, t = rows(10, 2), rows(10, 1, seed=3)
    start = tiny.buffer.copy()
    mean = tiny.train_epoch(x, t)
    end = tiny.buffer.copy()
    tiny.buffer[:] = start
    losses = [tiny.train_step(x[r:r + 4], t[r:r + 4]) * len(x[r:r + 4]) for r in range(0, 10, 4)]
    assert mean == pytest.approx(sum(losses) / 10, rel=1e-12)
    assert np.allclose(tiny.buffer, end, rtol=1e-12)


@pytest.mark.parametrize("jit", [True, False])
def test_fit_is_train_epoch_bit_for_bit_and_train_step_to_rounding(jit):
    """fit() (and nnc --train) run the compiled epoch loop that train_epoch
    runs: over the same rows in the same order (TINY does not shuffle), the
    same bits. train_step is compiled apart, and agrees to rounding; in the
    interpreter the epoch is a loop of its steps, the same bits too."""
    fitted = nnc.Model.from_source(TINY, name="tiny.nn", jit=jit)
    h = fitted.fit()
    epochs = nnc.Model.from_source(TINY, name="tiny.nn", jit=jit)
    steps = nnc.Model.from_source(TINY, name="tiny.nn", jit=jit)
    x, t, _, _ = epochs.data()
    losses = [epochs.train_epoch(x, t) for _ in range(3)]
    for _ in range(3):
        for r in range(0, len(x), 4):
            steps.train_step(x[r:r + 4], t[r:r + 4])
    assert np.array_equal(epochs.buffer, fitted.buffer) and losses == list(h.train_loss)
    assert np.allclose(steps.buffer, epochs.buffer, rtol=1e-13, atol=1e-15)
    if not jit:
        assert np.array_equal(steps.buffer, epochs.buffer)


def test_predict_and_evaluate_take_any_number_of_rows(tiny):
    x = rows(11, 2)
    y = tiny.predict(x)
    assert y.shape == (11, 1) and y.dtype == np.float64
    assert np.array_equal(np.concatenate([tiny.predict(x[:4]), tiny.predict(x[4:])]), y)
    assert tiny.predict(x[:0]).shape == (0, 1)
    t = rows(11, 1, seed=9)
    assert tiny.evaluate(x, t) == pytest.approx(((y - t) ** 2).mean(), rel=1e-13)


@pytest.mark.parametrize("jit", [True, False])
def test_predict_and_forward_are_one_call_of_the_library(jit, monkeypatch):
    """All rows go to the library at once, which runs them in batches of
    max_batch: the values of one call per batch, without a Python loop."""
    m = nnc.Model(MOONS, jit=jit)  # batch 1
    x, t = rows(50, 2), rows(50, 1, seed=4)
    per_row = [m.forward(x[r:r + 1], t[r:r + 1]) for r in range(50)]
    calls = []
    if jit:
        for name in ("_c_predict", "_c_forward"):
            f = getattr(m, name)
            monkeypatch.setattr(m, name, lambda *a, f=f, name=name: calls.append(name) or f(*a))
    else:
        f = nnc.model.lib.interp_forward
        monkeypatch.setattr(nnc.model.lib, "interp_forward", lambda *a, f=f: calls.append("interp_forward") or f(*a))
    y = m.predict(x)
    out, loss = m.forward(x, t)
    mean = m.evaluate(x, t)
    assert len(calls) == 3
    assert np.array_equal(y, np.concatenate([p[0] for p in per_row]))
    assert np.array_equal(out, y) and np.array_equal(loss, np.concatenate([p[1] for p in per_row]))
    assert mean == float(np.cumsum(loss)[-1] / 50)


def test_data_is_the_train_block(tiny):
    d = tiny.data()
    x, t, xv, tv = d
    assert x.shape == (30, 2) and t.shape == (30, 1) and xv.shape == (10, 2) and tv.shape == (10, 1)
    assert set(np.unique(t)) <= {0.0, 1.0}
    assert tiny.data() is d


def test_csv_data_is_read_as_the_file_holds_it():
    m = nnc.Model(os.path.join(DATA, "seed_moons.nn"), jit=False)
    d = m.data()
    with open(os.path.join(DATA, "moons_train.csv")) as f:
        lines = [l.split(",") for l in f.read().split("\n")[1:] if l]
    assert len(d.x_train) == len(lines)
    assert d.x_train[0].tolist() == [float(v) for v in lines[0][:2]]
    assert d.t_train[-1, 0] == float(lines[-1][2])


def test_from_source_reads_csv_relative_to_its_name():
    with open(os.path.join(DATA, "seed_moons.nn")) as f:
        text = f.read()
    m = nnc.Model.from_source(text, name=os.path.join(DATA, "seed_moons.nn"), epochs=1)
    assert len(m.data().x_train) == 320
    assert m.fit().epochs == 1


def test_fit_history(tiny):
    h = tiny.fit()
    assert h.epochs == 3 == len(h) and h.steps == 3 * 8
    assert h.train_loss.shape == (3,) and h.valid_loss.shape == (3,)
    assert np.array_equal(np.asarray(h), h.train_loss) and h[0] == h.train_loss[0] and list(h) == list(h.train_loss)
    assert h.final_train_loss == tiny.evaluate(*tiny.data()[:2])
    assert h.final_valid_loss == pytest.approx(h.valid_loss[-1], rel=1e-15)
    assert 0 <= h.final_train_accuracy <= 1 and 0 <= h.final_valid_accuracy <= 1
    assert h.train_time >= 0 and "3 epochs" in repr(h)
    assert tiny.fit(epochs=2).epochs == 2 and tiny.epochs_trained == 5
    h0 = tiny.fit(epochs=0)
    assert h0.epochs == 0 and len(h0.train_loss) == 0 and h0.final_train_loss is not None


RUN = TINY.replace("optimizer sgd(lr: 0.1)", "optimizer adam(lr: 0.02)\n  schedule step(every: 2, gamma: 0.5)\n"
                                             "  shuffle true")


@pytest.mark.parametrize("jit", [False, True])
def test_fit_goes_on_with_the_run(jit, tmp_path):
    """fit(3) twice trains as fit(6) (Adam's state, the schedule, the
    shuffled order); load() starts a new run, as --load does."""
    one = nnc.Model.from_source(RUN, name="run.nn", jit=jit)
    one.save(tmp_path / "init.safetensors")
    h6 = one.fit(epochs=6)
    two = nnc.Model.from_source(RUN, name="run.nn", jit=jit)
    h3a, h3b = two.fit(epochs=3), two.fit(epochs=3)
    assert two.epochs_trained == 6
    assert np.array_equal(two.buffer, one.buffer)
    assert list(h3a.train_loss) + list(h3b.train_loss) == list(h6.train_loss)
    two.load(tmp_path / "init.safetensors")
    assert two.epochs_trained == 0
    again = two.fit(epochs=3)
    assert list(again.train_loss) == list(h3a.train_loss)  # the optimizer state and the run began again


def test_fit_without_validation_or_labels():
    src = TINY.replace("split 30\n", "").replace("moons(samples: 40, noise: 0.1, seed: 3)", "circles(samples: 20)")
    m = nnc.Model.from_source(src.replace("t[1]", "t[1]"), name="nv.nn", jit=False)
    h = m.fit()
    assert h.valid_loss is None and h.final_valid_loss is None and h.final_valid_accuracy is None


def test_init_params_starts_again(tiny):
    start = tiny.buffer.copy()
    tiny.fit()
    assert not np.array_equal(tiny.buffer, start)
    tiny.init_params()
    assert np.array_equal(tiny.buffer, start) and tiny.epochs_trained == 0


def test_save_and_load(tiny, tmp_path):
    tiny.fit()
    p = tmp_path / "p.safetensors"
    tiny.save(p)
    other = nnc.Model.from_source(TINY, name="tiny.nn", jit=False)
    assert not np.array_equal(other.params["linear1.W"], tiny.params["linear1.W"])
    other.load(str(p))
    for name in tiny.params:
        assert np.array_equal(other.params[name], tiny.params[name])
    meta = nnc.safetensors.metadata(p)
    # the fit's counts, as --save writes them
    assert {k: meta[k] for k in ("model", "epoch", "dtype", "format", "steps")} == \
        {"model": "tiny", "epoch": "3", "dtype": "f64", "format": "nnc", "steps": "24"}
    assert len(meta["shuffle_rng"].split()) == 4


def test_emit_kinds(tiny):
    assert tiny.emit("ir").startswith("; model tiny, f64, forward graph\n")
    assert isinstance(tiny.emit("obj"), bytes) and tiny.emit("obj", opt_level=0)[:4] == b"\x7fELF"
    assert "nnc_tiny_train_step" in tiny.emit("header")
    assert tiny.emit("llvm", opt_level=0) != tiny.emit("llvm", opt_level=2)


def test_options_override_the_file():
    m = nnc.Model.from_source(TINY, name="tiny.nn", batch=2, epochs=1, lr=0.5, dtype="f32", seed=4, opt_level=1)
    assert m.max_batch == 2 and m.dtype == np.float32 and m.opt_level == 1
    assert m.fit().epochs == 1
    assert nnc.Model.from_source(TINY, dtype=np.float32).dtype == np.float32
    # --seed replaces the init seed: another start
    a = nnc.Model.from_source(TINY, seed=1, jit=False).buffer
    b = nnc.Model.from_source(TINY, seed=2, jit=False).buffer
    assert not np.array_equal(a, b)
    assert nnc.Model.from_source(TINY, cpu="x86-64-v2").fit().epochs == 3


def test_notes_are_kept():
    src = TINY.replace("y = x -> linear(3) -> tanh -> linear(1)", "z = x -> linear(1)") \
              .replace("loss squared(y, t)", "loss bce(sigmoid(z), t)")
    m = nnc.Model.from_source(src, name="n.nn")
    assert len(m.notes) == 1 and m.notes[0].severity == "note" and m.notes[0].line == 6


def test_close_keeps_the_arrays(tiny):
    w = tiny.params["linear1.W"]
    copy = w.copy()
    tiny.close()
    tiny.close()  # twice is fine
    assert np.array_equal(w, copy)
    assert "closed" in repr(tiny)
    for call in (lambda: tiny.train_step(rows(1, 2), rows(1, 1)), lambda: tiny.predict(rows(1, 2)),
                 lambda: tiny.fit(), lambda: tiny.emit("ir"), lambda: tiny.save("x"), lambda: tiny.data()):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_fit_in_a_thread_makes_other_calls_wait_their_turn():
    m = nnc.Model.from_source(TINY.replace("epochs 3", "epochs 3000"), name="tiny.nn")
    x, t = rows(1, 2), rows(1, 1)
    refused = []
    th = threading.Thread(target=m.fit)
    th.start()
    while th.is_alive():
        try:
            m.train_step(x, t)
        except RuntimeError as e:
            refused.append(str(e))
    th.join()
    assert refused and "training in another thread" in refused[0]
    assert m.epochs_trained == 3000


def test_writes_during_fit_in_a_thread_are_refused():
    """m.lr = ..., params/grads/states[...] = ... and update() write the
    buffer the C loop trains on: refused while fit() runs, so the run is
    the run alone."""
    src = TINY.replace("epochs 3", "epochs 300000")
    alone = nnc.Model.from_source(src, name="tiny.nn")
    alone.fit()
    m = nnc.Model.from_source(src, name="tiny.nn")
    writes = {"lr": lambda: setattr(m, "lr", 0.5),
              "params[]": lambda: m.params.__setitem__("linear1.b", np.zeros(3)),
              "params.update": lambda: m.params.update({"linear2.b": np.ones(1)}),
              "grads[]": lambda: m.grads.__setitem__("linear1.W", np.ones((3, 2))),
              "init_params": m.init_params}
    th = threading.Thread(target=m.fit)
    th.start()
    while not m._guard.busy and th.is_alive():
        pass
    refused = {}
    for what, write in writes.items():
        try:
            write()
        except RuntimeError as e:
            refused[what] = str(e)
    running = th.is_alive()
    th.join()
    assert running, "fit() ended before the writes: make its run longer"
    assert list(refused) == list(writes) and all("training in another thread" in e for e in refused.values())
    assert np.array_equal(m.buffer, alone.buffer)
    m.lr = 0.5  # after fit(), writes go through again
    m.params["linear1.b"] = np.zeros(3)
    assert m.lr == 0.5 and not m.params["linear1.b"].any()


def test_params_update_checks_every_value_first(tiny):
    before = tiny.buffer.copy()
    with pytest.raises(ValueError, match="linear2.b has shape"):
        tiny.params.update({"linear1.b": np.ones(3), "linear2.b": np.ones(2)})
    assert np.array_equal(tiny.buffer, before)


def test_lr_is_read_from_the_buffer(tiny):
    x, t = rows(4, 2), rows(4, 1, seed=5)
    assert tiny.lr == pytest.approx(0.1)
    before = [p.copy() for p in tiny.params.values()]
    tiny.lr = 0.0  # no step at all
    tiny.train_step(x, t)
    assert all(np.array_equal(a, b) for a, b in zip(before, tiny.params.values()))
    tiny.lr = 0.05
    assert tiny.lr == 0.05
    tiny.train_step(x, t)
    assert not all(np.array_equal(a, b) for a, b in zip(before, tiny.params.values()))
    with pytest.raises(ValueError):
        tiny.lr = -1
    with pytest.raises(TypeError):
        tiny.lr = "fast"


BATCH_NORM = """model bn {
  dtype f64
  input x[2]
  target t[1]
  y = x -> linear(4) -> batch_norm(momentum: 0.5) -> relu -> linear(1)
  loss squared(y, t)
}
train {
  data moons(samples: 40, noise: 0.1, seed: 3)
  split 30
  optimizer sgd(lr: 0.1)
  epochs 2
  batch 5
}
"""


@pytest.mark.parametrize("jit", [True, False])
def test_batch_norm_one_row(jit):
    # one row gives each channel one value: refused in training, as PyTorch
    # refuses it (the running variance would become infinite)
    m = nnc.Model.from_source(BATCH_NORM, name="bn.nn", jit=jit)
    x, t = rows(1, 2), rows(1, 1)
    before = m.buffer.copy()
    for call in (m.train_step, m.grad):
        with pytest.raises(ValueError, match="one value per channel.*at least 2 rows"):
            call(x, t)
    with pytest.raises(ValueError, match="last batch of 1 row"):
        m.train_epoch(rows(6, 2), rows(6, 1))  # batches of 5: 5 and 1
    assert np.array_equal(m.buffer, before)
    m.train_epoch(rows(7, 2), rows(7, 1))
    m.train_step(rows(2, 2), rows(2, 1))
    assert np.isfinite(m.states["batch_norm1.running_var"]).all()
    assert m.predict(x).shape == (1, 1)  # evaluation reads the running statistics
    m.close()


@pytest.mark.parametrize("jit", [True, False])
def test_batch_norm_states(tmp_path, jit):
    m = nnc.Model.from_source(BATCH_NORM, name="bn.nn", jit=jit)
    layout = [line.split() for line in m.emit("layout").splitlines()[1:]]
    states = [(l[1], int(l[4])) for l in layout if l[0] == "state" and not l[1].startswith("optimizer.")]
    assert [(s.name, s.offset) for s in m.state_layout] == states
    assert list(m.states) == ["batch_norm1.running_mean", "batch_norm1.running_var"]
    assert np.shares_memory(m.states["batch_norm1.running_var"], m.buffer)
    assert (m.states["batch_norm1.running_mean"] == 0).all() and (m.states["batch_norm1.running_var"] == 1).all()
    x = rows(6, 2)
    before = m.predict(x)
    m.grad()  # training mode, no step: the running statistics stay
    assert (m.states["batch_norm1.running_mean"] == 0).all()
    m.fit()
    assert not (m.states["batch_norm1.running_mean"] == 0).any()
    # evaluation reads the running statistics: one row predicts as in a batch
    y = m.predict(x)
    assert not np.array_equal(y, before)
    assert np.array_equal(m.predict(x[2:3]), y[2:3])
    p = tmp_path / "bn.safetensors"
    m.save(p)
    other = nnc.Model.from_source(BATCH_NORM, name="bn.nn", jit=jit)
    other.load(str(p))
    for name in m.states:
        assert np.array_equal(other.states[name], m.states[name])
    assert np.array_equal(other.predict(x), y)
    with pytest.raises(KeyError, match="no state 'running_mean'"):
        m.states["running_mean"]
    m.close()
    other.close()


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("src", [TINY, RUN, BATCH_NORM], ids=["sgd", "adam", "batch_norm"])
def test_no_rows(src, jit):
    """train_epoch, evaluate, forward and predict take any number of rows,
    0 too: no step, and 0.0 for the mean loss of no rows (the compiled
    train_epoch's sum of no losses; nnc's mean over an empty set)."""
    m = nnc.Model.from_source(src, name="z.nn", jit=jit)
    x, t = rows(0, 2), rows(0, 1)
    before = m.buffer.copy()
    assert m.train_epoch(x, t) == 0.0 and type(m.train_epoch(x, t[:, 0])) is float
    assert np.array_equal(m.buffer, before)
    assert m.evaluate(x, t) == 0.0
    y, loss = m.forward(x, t)
    assert y.shape == (0, 1) and loss.shape == (0,) and m.predict(x).shape == (0, 1)
    with pytest.raises(ValueError, match="x has 0 rows but t has 1"):
        m.train_epoch(x, rows(1, 1))
    for call in (m.train_step, m.grad):
        with pytest.raises(ValueError, match="x has 0 rows"):
            call(x, t)
    assert np.array_equal(m.buffer, before)


def test_numbers_do_not_follow_the_locale(tmp_path):
    """A host program in a locale with a decimal comma (de_DE) reads the
    language's and the CSV's numbers as the command does: libnnc works in
    the "C" locale whatever the host set."""
    import shutil
    import subprocess
    import sys
    if not shutil.which("localedef") or not os.path.exists("/usr/share/i18n/locales/de_DE"):
        pytest.fail("localedef and Debian's locales package are needed (scripts/build.sh installs them)")
    loc = tmp_path / "loc"
    loc.mkdir()
    subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(loc / "de_DE.UTF-8")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (tmp_path / "rows.csv").write_text("x0,x1,t\n0.5,1.25,0.75\n-0.5,2.5,1.5\n")
    (tmp_path / "m.nn").write_text(TINY.replace("data moons(samples: 40, noise: 0.1, seed: 3)\n  split 30",
                                                'data csv("rows.csv")'))
    script = """
import locale, sys, nnc, numpy as np
def run():
    m = nnc.Model(sys.argv[1], jit=False)
    d = m.data()
    m.fit(epochs=2)
    return d[0].tolist(), d[1].tolist(), m.lr, m.evaluate(d[0], d[1])
before = run()
locale.setlocale(locale.LC_ALL, "de_DE.UTF-8")
assert locale.localeconv()["decimal_point"] == ","
after = run()
print(before == after, before[2], after[2])
"""
    env = dict(os.environ, LOCPATH=str(loc))
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.nn")], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "True", out.stdout
