"""The package's results equal the command line's, digit for digit: --grad,
--train's final lines, --predict, --save, and every --emit kind."""
import os

import numpy as np
import pytest

import nnc
from conftest import DIGITS, EXAMPLES, MOONS, cli, number, rows

ENGINES = [pytest.param(True, id="jit"), pytest.param(False, id="interp")]


def grad_lines(m, loss, grads):
    out = ["loss " + number(loss, m.dtype)]
    for p in m.layout:
        values = " ".join(number(v, m.dtype) for v in grads[p.name].ravel())
        out.append("%s [%s] %s" % (p.name, ",".join(map(str, p.shape)), values))
    return out


@pytest.mark.parametrize("jit", ENGINES)
@pytest.mark.parametrize("path", [MOONS, DIGITS], ids=["moons", "digits"])
def test_grad_equals_the_command_line(path, jit):
    m = nnc.Model(path, jit=jit)
    expected = cli(path, "--grad", *(["--jit"] if jit else [])).splitlines()
    assert grad_lines(m, *m.grad()) == expected
    d = m.data()  # the same, given the batch
    assert grad_lines(m, *m.grad(d.x_train[:m.max_batch], d.t_train[:m.max_batch])) == expected


def final_lines(h, dtype):
    out = ["final train loss " + number(h.final_train_loss, dtype)]
    if h.final_valid_loss is not None:
        out.append("final valid loss " + number(h.final_valid_loss, dtype))
    if h.final_train_accuracy is not None:
        out.append("final train accuracy %.9g" % h.final_train_accuracy)
    if h.final_valid_accuracy is not None:
        out.append("final valid accuracy %.9g" % h.final_valid_accuracy)
    return out


@pytest.mark.parametrize("path,jit,epochs", [(MOONS, True, None), (MOONS, False, 10),
                                             (os.path.join(EXAMPLES, "circles.nn"), True, None),
                                             (DIGITS, True, 2)], ids=["moons-jit", "moons-interp", "circles-jit",
                                                                      "digits-jit"])
def test_fit_equals_train(path, jit, epochs, tmp_path):
    args = ["--train", "--threads", "1"] + (["--jit"] if jit else []) + (["--epochs", str(epochs)] if epochs else [])
    out = cli(path, *args, "--save", str(tmp_path / "cli.safetensors"))
    expected = [l for l in out.splitlines() if l.startswith("final ")]
    m = nnc.Model(path, jit=jit, epochs=epochs)
    h = m.fit()
    assert final_lines(h, m.dtype) == expected
    progress = [l.split() for l in out.splitlines() if l.startswith("epoch ")]
    for p in progress:  # "epoch 40/400  train loss X ...": the running loss, %.6g
        assert "%.6g" % h.train_loss[int(p[1].split("/")[0]) - 1] == p[4]
    m.save(tmp_path / "py.safetensors")
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()


def test_fit_verbose_prints_what_train_prints(capfd):
    m = nnc.Model(MOONS, epochs=20)
    m.fit(verbose=True)
    out = capfd.readouterr().out.splitlines()
    expected = cli(MOONS, "--jit", "--train", "--epochs", "20").splitlines()
    assert [l for l in out if l.startswith("final")] == [l for l in expected if l.startswith("final")]
    assert len([l for l in out if l.startswith("epoch ")]) == 11


@pytest.mark.parametrize("jit", ENGINES)
def test_predict_equals_the_command_line(jit, tmp_path):
    x = rows(7, 64, np.float32, seed=3)
    csv = tmp_path / "x.csv"
    csv.write_text(",".join("x%d" % i for i in range(64)) + "\n" +
                   "".join(",".join("%.9g" % v for v in r) + "\n" for r in x))
    m = nnc.Model(DIGITS, jit=jit)
    out = cli(DIGITS, "--predict", str(csv), *(["--jit"] if jit else [])).splitlines()
    # the CLI reads the CSV as doubles and rounds to f32, as astype does
    x = np.array([[float(v) for v in l.split(",")] for l in csv.read_text().splitlines()[1:]]).astype(np.float32)
    y = m.predict(x)
    assert out[0] == ",".join("logits[%d]" % k for k in range(10))
    assert out[1:] == [",".join(number(v, np.float32) for v in r) for r in y]


def test_load_equals_the_command_line(tmp_path):
    p = str(tmp_path / "p.safetensors")
    cli(MOONS, "--jit", "--train", "--epochs", "3", "--save", p)
    m = nnc.Model(MOONS)
    m.load(p)
    assert grad_lines(m, *m.grad()) == cli(MOONS, "--jit", "--grad", "--load", p).splitlines()


@pytest.mark.parametrize("kind", ["ast", "ir", "grad", "opt", "layout", "dot", "llvm", "asm", "header", "obj"])
def test_emit_equals_the_command_line(kind, tmp_path):
    m = nnc.Model(MOONS)
    if kind in ("obj", "header"):
        out = tmp_path / "out"
        cli(MOONS, "--emit", kind, "-o", str(out))
        expected = out.read_bytes()
    else:
        expected = cli(MOONS, "--emit", kind).encode()
    got = m.emit(kind)
    assert (got if kind == "obj" else got.encode()) == expected
