"""libnnc through ctypes: finding the library, and nnc.h's types and calls.

The structures mirror nnc.h field for field (tests/python/test_abi.py reads
the header and checks them), so a change there must be made here too.
"""
import ctypes
import ctypes.util
import os
import threading

from ctypes import (POINTER, Structure, c_bool, c_char_p, c_double, c_float, c_int, c_int64, c_size_t,
                    c_void_p)

# LLVM's one-time set-up and the pipeline's timers are process-wide: one
# compilation at a time, whichever thread asks.
compile_lock = threading.Lock()


class NncOptions(Structure):
    _fields_ = [
        ("file", c_char_p),
        ("jit", c_bool),
        ("train", c_bool),
        ("grad", c_bool),
        ("check_grad", c_bool),
        ("predict", c_char_p),
        ("emit", c_char_p),
        ("load", c_char_p),
        ("save", c_char_p),
        ("out", c_char_p),
        ("plot", c_char_p),
        ("epochs", c_int64),
        ("batch", c_int64),
        ("seed", c_int64),
        ("lr", c_double),
        ("dtype", c_int),
        ("opt_level", c_int),
        ("time", c_bool),
        ("threads", c_int),
        ("plot_linear", c_bool),
        ("cpu", c_char_p),
        ("resume", c_char_p),
        ("eval", c_bool),
    ]


class NncDiagnostic(Structure):
    _fields_ = [
        ("file", c_char_p),
        ("line", c_int),
        ("col", c_int),
        ("severity", c_int),
        ("message", c_char_p),
        ("text", c_char_p),
    ]


class NncDiagnostics(Structure):
    _fields_ = [("count", c_int), ("items", POINTER(NncDiagnostic))]


class NncParam(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("offset", c_int64),
        ("grad_offset", c_int64),
        ("size", c_int64),
        ("rank", c_int),
        ("shape", c_int64 * 4),
    ]


class NncLayout(Structure):
    _fields_ = [
        ("model", c_char_p),
        ("dtype", c_int),
        ("elem_size", c_int),
        ("total", c_int64),
        ("param_elems", c_int64),
        ("max_batch", c_int),
        ("input_cols", c_int64),
        ("target_cols", c_int64),
        ("output_cols", c_int64),
        ("has_predict", c_bool),
        ("nparams", c_int),
        ("params", POINTER(NncParam)),
        ("lr_offset", c_int64),
        ("nstates", c_int),
        ("states", POINTER(NncParam)),
        ("min_train_rows", c_int),
    ]


class NncIndexInput(Structure):
    _fields_ = [
        ("input", c_char_p),
        ("table", c_char_p),
        ("column", c_int64),
        ("count", c_int64),
        ("rows", c_int64),
    ]


FUNCTION_NAMES = ("forward", "predict", "backward", "update", "train_step", "train_epoch")


class _FunctionSet(Structure):
    """One dtype's six function pointers, as addresses (model.py makes
    callables of them with SIGNATURES)."""
    _fields_ = [(name, c_void_p) for name in FUNCTION_NAMES]


class NncFunctions(Structure):
    _fields_ = [("dtype", c_int), ("f64", _FunctionSet), ("f32", _FunctionSet)]


class NncDataset(Structure):
    _fields_ = [("rows", c_int64), ("x", c_void_p), ("t", c_void_p)]


class NncFitResult(Structure):
    _fields_ = [
        ("epochs", c_int64),
        ("train_loss", POINTER(c_double)),
        ("valid_loss", POINTER(c_double)),
        ("final_train_loss", c_double),
        ("final_valid_loss", c_double),
        ("final_train_accuracy", c_double),
        ("final_valid_accuracy", c_double),
        ("train_time", c_double),
        ("steps", c_int64),
    ]


# The compiled functions' C types, by dtype (nnc.h's NncFunctions). They
# keep the GIL (PYFUNCTYPE): a call is short, and no other thread can run
# Python, so none can change the model's buffer in the middle of a step.
def _signatures(real):
    return {
        "forward": ctypes.PYFUNCTYPE(None, c_void_p, c_void_p, c_void_p, c_int64, c_void_p, c_void_p),
        "predict": ctypes.PYFUNCTYPE(None, c_void_p, c_void_p, c_int64, c_void_p),
        "backward": ctypes.PYFUNCTYPE(real, c_void_p, c_void_p, c_void_p, c_int64),
        "update": ctypes.PYFUNCTYPE(None, c_void_p),
        "train_step": ctypes.PYFUNCTYPE(real, c_void_p, c_void_p, c_void_p, c_int64),
        "train_epoch": ctypes.PYFUNCTYPE(real, c_void_p, c_void_p, c_void_p, c_int64),
    }


SIGNATURES = {0: _signatures(c_float), 1: _signatures(c_double)}

# name: (restype, argtypes, releases the GIL)
_PROTOTYPES = {
    "nnc_options_default": (None, [POINTER(NncOptions)], False),
    "nnc_version": (c_char_p, [], False),
    "nnc_cpu_known": (c_bool, [c_char_p], False),
    "nnc_compile_file": (c_void_p, [c_char_p, POINTER(NncOptions), POINTER(NncDiagnostics)], True),
    "nnc_compile_string": (c_void_p, [c_char_p, c_char_p, POINTER(NncOptions), POINTER(NncDiagnostics)], True),
    "nnc_model_free": (None, [c_void_p], False),
    "nnc_diagnostics_free": (None, [POINTER(NncDiagnostics)], False),
    "nnc_model_layout": (POINTER(NncLayout), [c_void_p], False),
    "nnc_model_index_inputs": (c_int, [c_void_p, POINTER(POINTER(NncIndexInput))], False),
    "nnc_buffer_init": (None, [c_void_p, c_void_p], False),
    "nnc_model_init_params": (None, [c_void_p, c_void_p], False),
    "nnc_model_jit": (POINTER(NncFunctions), [c_void_p, c_int], True),
    "nnc_interp_forward": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, c_void_p, c_void_p], False),
    "nnc_interp_backward": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, POINTER(c_double)], False),
    "nnc_interp_train_step": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, POINTER(c_double)], False),
    "nnc_model_emit": (c_void_p, [c_void_p, c_char_p, c_int, POINTER(c_size_t), POINTER(NncDiagnostics)], True),
    "nnc_model_save": (c_int, [c_void_p, c_void_p, c_char_p, c_int64, POINTER(NncDiagnostics)], False),
    "nnc_model_load": (c_int, [c_void_p, c_void_p, c_char_p, POINTER(NncDiagnostics)], False),
    "nnc_model_data": (c_int, [c_void_p, POINTER(NncDataset), POINTER(NncDataset), POINTER(NncDiagnostics)], True),
    "nnc_dataset_free": (None, [POINTER(NncDataset)], False),
    "nnc_model_fit": (c_int, [c_void_p, c_void_p, POINTER(NncFunctions), c_int64, c_bool, POINTER(NncFitResult),
                              POINTER(NncDiagnostics)], True),
    "nnc_fit_result_free": (None, [POINTER(NncFitResult)], False),
    "nnc_model_restart": (None, [c_void_p], False),
    "nnc_model_stop": (None, [c_void_p, c_bool], False),
}


def _candidates():
    """Where libnnc.so may be, in the order tried."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("NNC_LIBRARY")
    if env:
        return [env]  # asked for: that one or none
    found = []
    try:  # written by CMake for the build tree and for `cmake --install`
        from . import _location
        found.append(os.path.normpath(os.path.join(here, _location.LIBRARY)))
    except ImportError:
        pass
    found.append(os.path.join(here, "libnnc.so"))  # bundled by `pip install`
    found.append(os.path.join(here, "..", "..", "build", "libnnc.so"))  # python/ in a built source tree
    system = ctypes.util.find_library("nnc")
    found.append(system or "libnnc.so.0.1")  # the loader's own search (ldconfig, LD_LIBRARY_PATH)
    return found


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (not there)")
            continue
        try:
            cdll = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        # another library, or a libnnc older than the package: it loads,
        # but lacks calls the package makes
        missing = [name for name in _PROTOTYPES if not hasattr(cdll, name)]
        if missing:
            tried.append("%s (loads, but is not a libnnc with the calls this package makes: no %s)"
                         % (path, ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")))
            continue
        return path, cdll
    raise ImportError("nnc: cannot load libnnc.so; tried: " + "; ".join(tried) +
                      ". Build nnc (scripts/build.sh) and install the package with pip from the source tree, "
                      "install nnc with `cmake --install`, or set NNC_LIBRARY to the library's path")


path, _cdll = _load()
# the same library, with calls that keep the GIL (short ones)
_pydll = ctypes.PyDLL(path)


class _Lib:
    pass


lib = _Lib()
for _name, (_res, _args, _releases) in _PROTOTYPES.items():
    _f = getattr(_cdll if _releases else _pydll, _name)
    _f.restype = _res
    _f.argtypes = _args
    setattr(lib, _name[4:], _f)

libc = ctypes.CDLL(None)
libc.free.argtypes = [c_void_p]
libc.free.restype = None
