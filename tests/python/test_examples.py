"""examples/python: the notebook-style moons script reproduces the seed's
run; the PyTorch one (when torch is installed) shows the same network and
weights in both."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnc
from conftest import DATA, ROOT

EXAMPLES = os.path.join(ROOT, "examples", "python")


def run(script, **env):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, script)], capture_output=True, text=True,
                       env=dict(os.environ, **env), timeout=600)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout


def test_moons_reproduces_the_seed():
    with open(os.path.join(DATA, "expected.json")) as f:
        seed = json.load(f)["moons"][0]
    lines = [l.split() for l in run("moons.py").splitlines() if l.startswith("seed run with")]
    assert [l[3] for l in lines] == ["fit():", "train_epoch:", "train_step:"]
    assert lines[1][4:] == lines[0][4:]  # train_epoch gives fit()'s numbers, digit for digit
    for l in lines:  # "... final train loss X, valid loss Y"
        train, valid = float(l[-4].rstrip(",")), float(l[-1])
        assert train == pytest.approx(seed["final_train_loss"], rel=1e-14)
        assert valid == pytest.approx(seed["final_test_loss"], rel=1e-14)


def test_torch_interop():
    pytest.importorskip("torch")
    out = run("torch_interop.py", EPOCHS="2").splitlines()
    assert out[0].endswith("changes nnc's predictions: True")
    for l in out[1:3]:
        assert float(l.split()[-1]) < 1e-14
    assert float(out[3].split()[-1].rstrip(")")) < 1e-12


def test_params_round_trip_through_torch():
    torch = pytest.importorskip("torch")
    m = nnc.Model(os.path.join(EXAMPLES, "..", "moons.nn"))
    t = {k: torch.from_numpy(v) for k, v in m.params.items()}
    t["linear2.b"].fill_(0.5)
    assert (m.params["linear2.b"] == 0.5).all()
    m.params.update({k: v.numpy() * 2 for k, v in t.items()})
    assert (t["linear2.b"] == 1.0).all()
    assert np.shares_memory(t["linear1.W"].numpy(), m.buffer)
