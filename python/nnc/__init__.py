"""nnc from Python: compile a .nn model, then train and run it on numpy
arrays with the compiled functions called directly on numpy memory.

    import nnc, numpy as np
    m = nnc.Model("examples/moons.nn", jit=True)
    m.params["linear1.W"]            # a numpy view of the parameter buffer
    loss, grads = m.grad(x, t)       # as `nnc --grad` prints them
    loss = m.train_step(x, t)        # one fused step, no copies
    history = m.fit(epochs=400)      # the file's train block
    y = m.predict(x)

See docs/python.md.
"""
from . import safetensors
from .model import (EMIT_KINDS, CompileError, Dataset, Diagnostic, Error, History, Model, Param,
                    TrainingError)

from ._lib import lib as _library

__version__ = _library.version().decode()  # the library's (project(VERSION) in CMakeLists.txt)
del _library  # nnc._lib stays the module
__all__ = ["Model", "Error", "CompileError", "TrainingError", "Diagnostic", "History", "Dataset", "Param",
           "EMIT_KINDS", "safetensors"]
