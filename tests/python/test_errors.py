"""Every error: source errors as nnc.CompileError printing what the command
line prints, hostile files, wrong arguments. None may crash the process."""
import ctypes.util
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import nnc
from conftest import MOONS, ROOT, TINY, cli, rows

ERRORS = os.path.join(ROOT, "tests", "errors")
HOSTILE = os.path.join(ROOT, "tests", "hostile")


@pytest.mark.parametrize("name", sorted(os.path.basename(f)[:-3] for f in glob.glob(os.path.join(ERRORS, "*.nn"))))
def test_compile_error_prints_as_the_command_line(name, monkeypatch):
    monkeypatch.chdir(ERRORS)  # the .err files name the file as given
    with open(name + ".err", "rb") as f:
        expected = f.read().decode("utf-8", "replace")
    with pytest.raises(nnc.CompileError) as e:
        nnc.Model(name + ".nn", jit=False)
    assert str(e.value) + "\n" == expected
    errors = [d for d in e.value.diagnostics if d.severity == "error"]
    assert errors and all(d.file == name + ".nn" for d in e.value.diagnostics)


def test_diagnostics_as_data():
    src = "model bad {\n  input x[2]\n  target t[1]\n  y = x -> relux -> linear(1)\n  loss squared(y, t)\n}\n"
    with pytest.raises(nnc.CompileError) as e:
        nnc.Model.from_source(src, name="bad.nn")
    (d,) = e.value.diagnostics
    assert (d.file, d.line, d.col, d.severity) == ("bad.nn", 4, 12, "error")
    assert "relux" in d.message and "\n" not in d.message
    assert d.text.startswith("bad.nn:4:12: error: ") and d.text.endswith("^\n")
    assert str(d) == d.text.rstrip("\n") and "relux" in repr(d)
    assert isinstance(e.value, nnc.Error)


def test_a_missing_file_is_a_compile_error():
    with pytest.raises(nnc.CompileError) as e:
        nnc.Model("/dev/null/model.nn")
    (d,) = e.value.diagnostics
    assert d.line == 0 and str(e.value).startswith("/dev/null/model.nn: error: cannot open")


@pytest.mark.parametrize("kwargs,error,match", [
    ({"batch": 0}, ValueError, "batch must be from 1 to 65536"),
    ({"batch": 1.5}, TypeError, "batch must be a whole number"),
    ({"epochs": -1}, ValueError, "epochs must be from 0"),
    ({"epochs": True}, TypeError, "epochs must be a whole number"),
    ({"seed": -3}, ValueError, "seed"),
    ({"lr": 0}, ValueError, "lr must be positive"),
    ({"lr": float("nan")}, ValueError, "lr must be positive"),
    ({"lr": "0.1"}, TypeError, "lr must be a number"),
    ({"dtype": "f16"}, ValueError, "dtype must be 'f32' or 'f64'"),
    ({"opt_level": 4}, ValueError, "opt_level must be from 0 to 3"),
    ({"cpu": "pentium9"}, ValueError, r"cpu must be native, x86-64, .* such as haswell or znver4 \(as --cpu\), "
                                      r"got 'pentium9'"),
    ({"cpu": ""}, ValueError, "got ''"),
    ({"cpu": 7}, TypeError, "cpu must be a str"),
])
def test_options_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        nnc.Model.from_source(TINY, **kwargs)


@pytest.mark.parametrize("library,why", [
    ("/nowhere/libnnc.so", r"/nowhere/libnnc.so \(not there\)"),
    (ctypes.util.find_library("c"), r"loads, but is not a libnnc with the calls this package makes: no nnc_"),
])
def test_a_library_that_is_not_libnnc_is_an_import_error(library, why):
    r = subprocess.run([sys.executable, "-c", "import nnc"], capture_output=True, text=True,
                       env=dict(os.environ, NNC_LIBRARY=library))
    assert r.returncode == 1
    last = r.stderr.splitlines()[-1]
    assert last.startswith("ImportError: nnc: cannot load libnnc.so; tried: ") and "set NNC_LIBRARY" in last
    assert re.search(why, last), last


def test_sources_and_paths_are_checked():
    with pytest.raises(TypeError, match="text must be a str"):
        nnc.Model.from_source(42)
    with pytest.raises(ValueError, match="NUL"):
        nnc.Model.from_source("model a {\0}")
    with pytest.raises(ValueError, match="NUL"):
        nnc.Model("a\0b.nn")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        nnc.Model(None)
    with pytest.raises(nnc.CompileError, match="empty"):
        nnc.Model.from_source("")
    with pytest.raises(nnc.CompileError, match="is a directory|cannot"):
        nnc.Model(ROOT)


@pytest.fixture(scope="module", params=[True, False], ids=["jit", "interp"])
def model(request):
    return nnc.Model.from_source(TINY, name="tiny.nn", jit=request.param)


X, T = rows(4, 2), rows(4, 1)


@pytest.mark.parametrize("call", ["train_step", "grad", "forward"])
@pytest.mark.parametrize("x,t,error,match", [
    ([[0.0, 1.0]], T[:1], TypeError, r"x must be a numpy array of shape \(n, 2\) and dtype float64, got list"),
    (X, T.tolist(), TypeError, "t must be a numpy array"),
    (X[:, :1], T, ValueError, r"x must have shape \(n, 2\), got \(4, 1\)"),
    (X.ravel(), T, ValueError, r"x must have shape \(n, 2\), got \(8,\)"),
    (X[None], T, ValueError, r"x must have shape \(n, 2\), got \(1, 4, 2\)"),
    (X, rows(4, 2), ValueError, r"t must have shape \(n, 1\) or \(n,\), got \(4, 2\)"),
    (X.astype(np.float32), T, ValueError, r"x has dtype float32; the model computes in float64: pass "
                                          r"x.astype\(np.float64\)"),
    (X.astype(">f8"), T, ValueError, "x has dtype >f8"),
    (X.astype(np.int64), T, ValueError, "x has dtype int64"),
    (np.asfortranarray(rows(4, 2)), T, ValueError, "x must be C-contiguous"),
    (rows(2, 4).T, T, ValueError, "x must be C-contiguous"),
    (X, T[:3], ValueError, "x has 4 rows but t has 3"),
])
def test_arrays_are_checked(model, call, x, t, error, match):
    before = model.buffer.copy()
    with pytest.raises(error, match=match):
        getattr(model, call)(x, t)
    assert np.array_equal(model.buffer, before)


def test_row_counts_are_checked(model):
    with pytest.raises(ValueError, match=r"x has 5 rows; train_step takes 1 to 4 rows \(the train block's batch is 4\)"):
        model.train_step(rows(5, 2), rows(5, 1))
    with pytest.raises(ValueError, match="x has 0 rows; grad takes 1 to 4 rows"):
        model.grad(rows(0, 2), rows(0, 1))
    with pytest.raises(ValueError, match="x has 0 rows; train_step takes 1 to 4 rows"):
        model.train_step(rows(0, 2), rows(0, 1))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\), got \(4, 3\)"):
        model.predict(rows(4, 3))
    with pytest.raises(TypeError, match="grad\\(\\) takes both x and t, or neither"):
        model.grad(X)
    unaligned = np.frombuffer(b"\0" + rows(4, 2).tobytes(), dtype=np.uint8)[1:].view(np.float64).reshape(4, 2)
    assert not unaligned.flags.aligned
    with pytest.raises(ValueError, match="aligned"):
        model.train_step(unaligned, T)


def test_other_calls_are_checked(model, tmp_path):
    with pytest.raises(ValueError, match="kind must be one of ast, ir"):
        model.emit("pdf")
    with pytest.raises(ValueError, match="opt_level must be from 0 to 3"):
        model.emit("llvm", opt_level=7)
    with pytest.raises(ValueError, match="epochs must be from 0 to 100000000"):
        model.fit(epochs=-2)
    with pytest.raises(TypeError, match="epochs must be a whole number"):
        model.fit(epochs="3")
    with pytest.raises(nnc.Error, match="nodir/p.safetensors: error: cannot"):
        model.save(tmp_path / "nodir" / "p.safetensors")
    with pytest.raises(nnc.Error, match="Is a directory"):
        model.save(tmp_path)
    assert os.listdir(tmp_path) == []
    if not model.jit:
        with pytest.raises(ValueError, match="update\\(\\) runs compiled code"):
            model.update()


def test_what_the_checks_rely_on_cannot_be_changed(model):
    for name in ("max_batch", "input_cols", "target_cols", "output_cols", "dtype", "buffer", "layout"):
        with pytest.raises(AttributeError):
            setattr(model, name, 10 ** 6)
    assert model.max_batch == 4


def test_predict_needs_an_output_of_the_inputs():
    src = TINY.replace("loss squared(y, t)", "loss squared(y - t, t)")
    m = nnc.Model.from_source(src, name="o.nn")
    assert not m.has_predict
    with pytest.raises(ValueError, match="depends on the targets"):
        m.predict(X)
    y, loss = m.forward(X, T)  # forward still works
    assert y.shape == (4, 1)


EMBEDDING = """model emb {
  dtype f64
  input x[2]
  target t[1]
  y = x -> embedding(3, 2) -> flatten -> linear(1)
  loss squared(y, t)
}
train {
  batch 2
}
"""


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("bad", [3.0, -1.0, 1.5, np.nan, 1e300])
def test_embedding_indices_are_checked(jit, bad):
    m = nnc.Model.from_source(EMBEDDING, name="emb.nn", jit=jit)
    x, t = np.array([[0.0, 1.0], [2.0, bad]]), np.zeros((2, 1))
    before = m.buffer.copy()
    calls = [lambda: m.predict(x), lambda: m.forward(x, t), lambda: m.grad(x, t), lambda: m.train_step(x, t),
             lambda: m.train_epoch(x, t), lambda: m.evaluate(x, t)]
    for call in calls:
        with pytest.raises(ValueError, match=r"^x\[1, 1\] \(x\[1\]\) is .*, which is not a row of embedding1.W "
                                             r"\(an integer in \[0, 3\)\)$"):
            call()
    assert np.array_equal(m.buffer, before, equal_nan=True)  # nothing ran
    x[1, 1] = 2.0
    m.train_step(x, t)  # rows of the table are fine


def test_data_errors():
    src = TINY.replace("moons(samples: 40, noise: 0.1, seed: 3)", 'csv("nowhere.csv")').replace("split 30\n", "")
    m = nnc.Model.from_source(src, name="/tmp/d.nn")
    with pytest.raises(nnc.Error, match="nowhere.csv: error: cannot open"):
        m.data()
    with pytest.raises(nnc.Error, match="nowhere.csv: error: cannot open") as e:
        m.fit()
    assert not isinstance(e.value, nnc.TrainingError)
    with pytest.raises(nnc.Error, match="nowhere.csv"):
        m.grad()
    m = nnc.Model.from_source(TINY.replace("split 30", "split 40"), name="s.nn")
    with pytest.raises(nnc.Error, match="split 40 leaves no rows on one side"):
        m.fit()
    m = nnc.Model.from_source(TINY.split("train {")[0], name="n.nn")
    with pytest.raises(nnc.Error, match="no training data"):
        m.fit()


def test_divergence_is_a_training_error_as_the_command_line_reports_it(monkeypatch):
    monkeypatch.chdir(os.path.dirname(MOONS))
    m = nnc.Model("moons.nn", lr=1000, epochs=20)
    with pytest.raises(nnc.TrainingError) as e:
        m.fit()
    stderr = cli("moons.nn", "--jit", "--train", "--lr", "1000", "--epochs", "20", cwd=os.path.dirname(MOONS),
                 status=1)
    assert str(e.value) + "\n" == stderr
    assert "diverged" in str(e.value) and e.value.diagnostics[0].line > 0
    h = e.value.history
    assert h.epochs < 20 and h.final_train_loss is None and np.isfinite(h.train_loss).all()
    assert all(np.isfinite(v).all() for v in m.params.values())


def hostile_cases():
    """The cases of tests/hostile/cases.txt that have a Python counterpart:
    --load (Model.load), the data of a model (Model.data), .nn files
    (Model), --save (Model.save). --predict CSV and --emit -o have none:
    the package takes arrays and returns text."""
    out = []
    with open(os.path.join(HOSTILE, "cases.txt")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, args, expected = line.rstrip("\n").split("|", 2)
            args = args.split()
            if "--load" in args:
                out.append((name, args[0], "load", args[args.index("--load") + 1], expected))
            elif "--save" in args:
                out.append((name, args[0], "save", args[args.index("--save") + 1], expected))
            elif "--predict" in args or "--emit" in args:
                continue
            elif args[0].startswith("csv_"):
                out.append((name, args[0], "data", None, expected))
            else:
                out.append((name, args[0], "compile", None, expected))
    return out


@pytest.mark.parametrize("name,nn,action,arg,expected", hostile_cases(), ids=lambda v: v if isinstance(v, str)
                         and not v.endswith(".nn") else None)
def test_hostile_files(name, nn, action, arg, expected, tmp_path, monkeypatch):
    work = tmp_path / "d"
    shutil.copytree(HOSTILE, work)
    monkeypatch.chdir(work)
    for d in ("dir.csv", "dir.nn", "dir.safetensors"):
        os.makedirs(d, exist_ok=True)
    if arg == "fifo.safetensors":
        os.mkfifo(arg)  # with no writer: the load must not wait for one
    if "csv_huge_line" in nn:
        with open("csv_huge_line.csv", "w") as f:
            f.write("x0,x1,t\n0.5,-1,1\n" + "1" * (2 << 20) + ",2,0\n")
    if nn == "nn_enormous.nn":
        with open("model.nn") as f, open(nn, "w") as g:
            g.write(f.read() + ("#" * 78 + "\n") * ((5 << 20) // 79))
    if arg == "st_header_over_limit.safetensors":
        with open(arg, "wb") as f:
            f.write(b"\x00\x00\x60\x09\x00\x00\x00\x00")
            f.truncate(200 << 20)
    before = sorted(os.listdir("."))
    with pytest.raises(nnc.Error) as e:
        m = nnc.Model(nn, jit=False)
        start = m.buffer.copy()
        try:
            if action == "load":
                m.load(arg)
            elif action == "save":
                m.fit(epochs=1)
                m.save(arg)
            else:
                m.data()
        finally:
            if action == "load":
                assert np.array_equal(m.buffer, start)  # a failed load changes nothing
    if action == "save":  # the command line refuses the path before training, in its own words
        assert str(e.value).startswith(arg + ": error: cannot ") and expected.startswith(arg + ": error: cannot ")
    else:
        assert str(e.value) == expected
    assert isinstance(e.value, nnc.CompileError) == (action == "compile")
    assert sorted(os.listdir(".")) == before  # nothing left behind
