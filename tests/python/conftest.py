"""Shared set-up of the Python package's tests (run by CTest: python.*).

NNC names the nnc command the results are compared with (default: build/nnc
of the source tree); the package is the one on PYTHONPATH.
"""
import os
import subprocess

import numpy as np
import pytest

import nnc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NNC = os.path.abspath(os.environ.get("NNC") or os.path.join(ROOT, "build", "nnc"))
EXAMPLES = os.path.join(ROOT, "examples")
MOONS = os.path.join(EXAMPLES, "moons.nn")
DIGITS = os.path.join(EXAMPLES, "digits.nn")
DATA = os.path.join(ROOT, "tests", "data")

TINY = """model tiny {
  dtype f64
  input x[2]
  target t[1]
  y = x -> linear(3) -> tanh -> linear(1)
  loss squared(y, t)
}
train {
  data moons(samples: 40, noise: 0.1, seed: 3)
  split 30
  optimizer sgd(lr: 0.1)
  epochs 3
  batch 4
}
"""


def cli(*args, cwd=None, status=0):
    """Run nnc; return its standard output (and check the exit status and,
    on success, that standard error is empty)."""
    r = subprocess.run([NNC, *args], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == status, (args, r.returncode, r.stderr)
    if status == 0:
        assert r.stderr == "", r.stderr
    return r.stdout if status == 0 else r.stderr


def number(v, dtype):
    """A value as nnc prints it: %.17g for f64, %.9g for f32, no -0."""
    v = float(v)
    if v == 0:
        v = 0.0
    return ("%.17g" if np.dtype(dtype) == np.float64 else "%.9g") % v


def rows(n, cols, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, cols)).astype(dtype)


@pytest.fixture
def tiny():
    with nnc.Model.from_source(TINY, name="tiny.nn") as m:
        yield m


@pytest.fixture(scope="module")
def moons():
    return nnc.Model(MOONS)
