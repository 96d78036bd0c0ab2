"""nnc.Model: a compiled .nn model, its parameters as numpy arrays, and the
calls that train and run it on numpy data (see docs/python.md)."""
import _thread
import collections
import ctypes
import functools
import os
import threading
import weakref
from ctypes import POINTER, byref, c_double, c_size_t

import numpy as np

from ._lib import (FUNCTION_NAMES, SIGNATURES, NncDataset, NncDiagnostics, NncFitResult, NncIndexInput, NncOptions,
                   compile_lock, lib, libc)

EMIT_KINDS = ("ast", "ir", "grad", "opt", "layout", "dot", "llvm", "asm", "obj", "header")
_DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.float64)}


class Diagnostic:
    """One message of the compiler: file, line and col (1-based; 0 for a
    message about a whole file), severity ("error" or "note"), message (the
    sentence alone) and text (what the command line prints: the first line,
    then the source line and a caret)."""

    __slots__ = ("file", "line", "col", "severity", "message", "text")

    def __init__(self, file, line, col, severity, message, text):
        self.file, self.line, self.col = file, line, col
        self.severity, self.message, self.text = severity, message, text

    def __str__(self):
        return self.text.rstrip("\n")

    def __repr__(self):
        return "Diagnostic(%r, %d, %d, %r, %r)" % (self.file, self.line, self.col, self.severity, self.message)


class Error(Exception):
    """An error nnc reported: `diagnostics` holds each message; str() is
    what the command line prints."""

    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        super().__init__("".join(d.text for d in self.diagnostics).rstrip("\n"))


class CompileError(Error):
    """The .nn source has errors (each in `diagnostics`, with its position)."""


class TrainingError(Error):
    """Training stopped: the loss or a parameter stopped being finite. The
    model keeps the last finite parameters; `history` holds the epochs
    before."""

    def __init__(self, diagnostics, history):
        super().__init__(diagnostics)
        self.history = history


def _take_diagnostics(d):
    """The Diagnostics of a C list, which is then freed."""
    out = []
    for i in range(d.count):
        it = d.items[i]
        out.append(Diagnostic(os.fsdecode(it.file), it.line, it.col, "error" if it.severity == 0 else "note",
                              it.message.decode("utf-8", "replace"), it.text.decode("utf-8", "replace")))
    lib.diagnostics_free(byref(d))
    return out


def _path_arg(path, what="path"):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError("%s must be a str or os.PathLike, got %s" % (what, type(path).__name__))
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError("%s holds a NUL character" % what)
    return b


def _int_arg(v, name, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError("%s must be a whole number, got %s" % (name, type(v).__name__))
    if not lo <= v <= hi:
        raise ValueError("%s must be from %d to %d, got %d" % (name, lo, hi, v))
    return int(v)


def _options(epochs, batch, seed, lr, dtype, cpu, threads=1):
    o = NncOptions()
    lib.options_default(byref(o))
    o.threads = _int_arg(threads, "threads", 1, 2)
    if epochs is not None:
        o.epochs = _int_arg(epochs, "epochs", 0, 100000000)
    if batch is not None:
        o.batch = _int_arg(batch, "batch", 1, 65536)
    if seed is not None:
        o.seed = _int_arg(seed, "seed", 0, (1 << 62) - 1)
    if lr is not None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)):
            raise TypeError("lr must be a number, got %s" % type(lr).__name__)
        if not 0 < lr <= 1e6:
            raise ValueError("lr must be positive and at most 1e6, got %r" % (lr,))
        o.lr = float(lr)
    if dtype is not None:
        names = {"f32": 0, "float32": 0, "f64": 1, "float64": 1}
        key = dtype if isinstance(dtype, str) else getattr(np.dtype(dtype), "name", None) \
            if isinstance(dtype, (type, np.dtype)) else None
        if key not in names:
            raise ValueError("dtype must be 'f32' or 'f64' (or np.float32, np.float64), got %r" % (dtype,))
        o.dtype = names[key]
    if cpu is not None:
        o.cpu = _path_arg(cpu, "cpu")
        if not lib.cpu_known(o.cpu):
            raise ValueError("cpu must be native, x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or an LLVM x86-64 processor "
                             "name such as haswell or znver4 (as --cpu), got %r" % (cpu,))
    return o


_ndarray = np.ndarray
_addresses = {}


def _address(a):
    """a.ctypes.data, remembered for views: a view's data never moves (numpy
    moves data only in ndarray.resize, which views refuse), and a.ctypes
    costs about a microsecond, as much as a small compiled step. Keyed by
    id() with a weak reference, so the entry neither keeps a alive nor
    serves another array that gets its id."""
    e = _addresses.get(id(a))
    if e is not None and e[0]() is a:
        return e[1]
    p = a.ctypes.data
    if a.base is not None:
        if len(_addresses) >= 4096:
            _addresses.clear()
        _addresses[id(a)] = (weakref.ref(a), p)
    return p


def _aligned_zeros(count, dtype):
    """A zeroed array of count elements whose data starts on 64 bytes."""
    raw = np.zeros(count * dtype.itemsize + 64, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 64
    return raw[skip:skip + count * dtype.itemsize].view(dtype)


class Param:
    """Where a parameter lives in the buffer: name, shape, offset and
    grad_offset (elements), size (elements)."""

    __slots__ = ("name", "shape", "offset", "grad_offset", "size")

    def __init__(self, p):
        self.name = p.name.decode()
        self.shape = tuple(p.shape[k] for k in range(p.rank))
        self.offset, self.grad_offset, self.size = p.offset, p.grad_offset, p.size

    def __repr__(self):
        return "Param(%r, shape=%r, offset=%d, grad_offset=%d)" % (self.name, self.shape, self.offset,
                                                                  self.grad_offset)


_guards = weakref.WeakSet()  # every model's, for fork


def _reset_locks_in_child():
    """A child of fork() has one thread, the one that forked: a lock
    another thread held would stay held for good. A model that a fit() of
    another thread was training stays busy (its buffer is half a step, and
    the loop is not in the child): make a new one there."""
    global compile_lock
    for g in list(_guards):
        g.lock = threading.RLock()
    compile_lock = threading.Lock()  # (a compilation of another thread)


os.register_at_fork(after_in_child=_reset_locks_in_child)


def _holding(method):
    """method, called with the model's lock held (see _Guard)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._guard.lock:
            return method(self, *args, **kwargs)

    return call


class _Guard:
    """Whether fit() runs, which lets other threads run while the C loop
    trains on the buffer: `with guard:` around a write to the buffer raises
    RuntimeError meanwhile, and fit() starts only between two such writes
    (the lock), never in the middle of one. Every call of a model holds the
    lock (re-entrant: a call may make another), so that close() cannot free
    the code or the model under a call that another thread is making: a
    thread may run Python code between reading a compiled function and
    calling it, or be inside a call that lets other threads run (data,
    emit)."""

    __slots__ = ("busy", "lock", "__weakref__")

    def __init__(self):
        self.busy = False
        self.lock = threading.RLock()
        _guards.add(self)

    def __enter__(self):
        self.lock.acquire()
        if self.busy:
            self.lock.release()
            raise RuntimeError("the model is training in another thread (fit)")
        return self

    def __exit__(self, *exc):
        self.lock.release()


class _Views:
    """name -> a numpy view of the model's buffer (parameters, their
    gradients, or the states layers keep), in creation order. Writing into a view changes the model;
    assigning `views[name] = array` copies the values in (same shape), and
    raises RuntimeError while the model trains in fit() in another thread."""

    def __init__(self, buf, params, grads, kind="parameter", guard=None):
        self._kind = kind
        self._guard = guard or _Guard()
        self._arrays = {}
        for p in params:
            at = p.grad_offset if grads else p.offset
            self._arrays[p.name] = buf[at:at + p.size].reshape(p.shape)

    def __getitem__(self, name):
        try:
            return self._arrays[name]
        except KeyError:
            have = ", ".join(self._arrays) or "none"
            raise KeyError("no %s %r (the model has %s)" % (self._kind, name, have)) from None

    def _checked(self, name, value):
        """(the view, the values as an array it can take)"""
        view = self[name]
        value = np.asarray(value)
        if value.shape != view.shape:
            raise ValueError("%s has shape %s; got an array of shape %s" % (name, view.shape, value.shape))
        if not np.can_cast(value.dtype, view.dtype, "same_kind"):
            raise ValueError("%s holds %s; cannot take values of dtype %s" % (name, view.dtype, value.dtype))
        # as the buffer will hold them (float64 into f32 rounds), finite:
        # load() and --load refuse others, and save() writes a file they read
        with np.errstate(over="ignore", invalid="ignore"):
            value = value.astype(view.dtype, copy=False)
        if not np.isfinite(value).all():
            raise ValueError("%s: a value is not finite (in %s)" % (name, view.dtype))
        return view, value

    def __setitem__(self, name, value):
        self.update({name: value})

    def update(self, other):
        """Copy in the values of each name: all are checked before any is
        written."""
        pairs = [self._checked(name, value) for name, value in dict(other).items()]
        with self._guard:
            for view, value in pairs:
                np.copyto(view, value, casting="same_kind")

    def __contains__(self, name):
        return name in self._arrays

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def keys(self):
        return self._arrays.keys()

    def values(self):
        return self._arrays.values()

    def items(self):
        return self._arrays.items()

    def __repr__(self):
        return "{%s}" % ", ".join("%r: array%s" % (k, v.shape) for k, v in self._arrays.items())


class History:
    """What fit() did: train_loss (per epoch, the mean loss of its rows
    before their steps, as --train's progress lines), valid_loss (per
    epoch, the validation set's loss at its end; None without one), the
    final figures --train prints (final_train_loss, final_valid_loss,
    final_train_accuracy, final_valid_accuracy: None when it does not print
    them), train_time (seconds in training steps) and steps. It behaves as
    the array train_loss: len(), indexing, np.asarray(history)."""

    def __init__(self, r):
        n = r.epochs
        self.epochs = n
        self.train_loss = np.ctypeslib.as_array(r.train_loss, (n,)).copy() if n and r.train_loss else np.zeros(0)
        self.valid_loss = np.ctypeslib.as_array(r.valid_loss, (n,)).copy() if n and r.valid_loss else \
            (np.zeros(0) if r.valid_loss else None)

        def final(v):
            return None if v != v else float(v)  # NaN: not printed
        self.final_train_loss = final(r.final_train_loss)
        self.final_valid_loss = final(r.final_valid_loss)
        self.final_train_accuracy = final(r.final_train_accuracy)
        self.final_valid_accuracy = final(r.final_valid_accuracy)
        self.train_time = r.train_time
        self.steps = r.steps

    def __len__(self):
        return len(self.train_loss)

    def __getitem__(self, i):
        return self.train_loss[i]

    def __iter__(self):
        return iter(self.train_loss)

    def __array__(self, dtype=None):
        return self.train_loss if dtype is None else self.train_loss.astype(dtype)

    def __repr__(self):
        s = "History(%d epochs, final train loss %s" % (self.epochs, self.final_train_loss)
        if self.final_valid_loss is not None:
            s += ", final valid loss %s" % self.final_valid_loss
        return s + ")"


Dataset = collections.namedtuple("Dataset", "x_train t_train x_valid t_valid")
Dataset.__doc__ = """The train block's data: x_train, t_train, x_valid, t_valid (rows in
the model's dtype; the valid arrays have 0 rows without a validation
set)."""


class Model:
    """A .nn model compiled by nnc, with its parameter buffer.

    Model(path, jit=True): compile the file; jit=True runs LLVM-compiled
    native code (at opt_level 0..3, for `cpu`), jit=False the reference
    interpreter. epochs, batch, seed, lr and dtype override the file's train
    block as the command line's options do. threads=2 (with jit): fit()
    splits each large matrix product, and Adam's step of a large parameter,
    between two threads, with the results of one thread, bit for bit.
    Source errors raise CompileError.
    """

    def __init__(self, path, jit=True, *, opt_level=2, epochs=None, batch=None, seed=None, lr=None, dtype=None,
                 cpu=None, threads=1):
        self._m = None
        self._setup(_path_arg(path), None, jit, opt_level, _options(epochs, batch, seed, lr, dtype, cpu, threads))

    @classmethod
    def from_source(cls, text, name="<string>", jit=True, *, opt_level=2, epochs=None, batch=None, seed=None,
                    lr=None, dtype=None, cpu=None, threads=1):
        """Compile source text; name stands for the file in messages, and
        relative csv() paths start from its directory. The other arguments
        are Model()'s."""
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise TypeError("text must be a str, got %s" % type(text).__name__)
        source = text.encode("utf-8")
        if b"\0" in source:
            raise ValueError("the source text holds a NUL character")
        self = cls.__new__(cls)
        self._m = None
        self._setup(_path_arg(name, "name"), source, jit, opt_level,
                    _options(epochs, batch, seed, lr, dtype, cpu, threads))
        return self

    name = property(lambda self: self._name, doc="the model's name (`model NAME`)")
    dtype = property(lambda self: self._dtype, doc="np.float32 or np.float64")
    max_batch = property(lambda self: self._max_batch, doc="rows per step (the train block's batch)")
    input_cols = property(lambda self: self._input_cols, doc="input values per row")
    target_cols = property(lambda self: self._target_cols, doc="target values per row")
    output_cols = property(lambda self: self._output_cols, doc="output values per row")
    has_predict = property(lambda self: self._has_predict, doc="whether the output needs no targets")
    layout = property(lambda self: self._layout, doc="each parameter's place in the buffer (Param)")
    state_layout = property(lambda self: self._state_layout,
                            doc="each state a layer keeps (batch_norm's running statistics): its place in the buffer")
    buffer = property(lambda self: self._buffer, doc="the whole buffer: parameters, gradients, optimizer state")
    jit = property(lambda self: self._jit, doc="compiled code (True) or the interpreter")

    @property
    def lr(self):
        """The learning rate of the next steps: the buffer's optimizer.lr,
        which the compiled step reads (the train block's lr at first; None
        for a model without parameters). Set it between steps to follow a
        schedule: nothing is compiled again. Setting it while fit() runs in
        another thread raises RuntimeError."""
        return None if self._lr_offset < 0 else float(self._buffer[self._lr_offset])

    @lr.setter
    def lr(self, value):
        if self._lr_offset < 0:
            raise ValueError("the model has no parameters to train, so no learning rate")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError("lr must be a number, got %s" % type(value).__name__)
        if not 0 <= value <= 1e6:
            raise ValueError("lr must be from 0 to 1e6, got %r" % value)
        with self._guard:
            self._buffer[self._lr_offset] = value
    opt_level = property(lambda self: self._opt_level, doc="LLVM's optimization level")

    # ---- set-up and teardown ----

    def _setup(self, name, source, jit, opt_level, opts):
        self._m = None
        self._guard = _Guard()
        opt_level = _int_arg(opt_level, "opt_level", 0, 3)
        if opts.threads > 1 and not jit:
            raise ValueError("threads=2 needs jit=True (the interpreter runs on one thread)")
        opts.jit = bool(jit)  # which memory limit applies: compiled code's or the interpreter's
        d = NncDiagnostics()
        with compile_lock:
            if source is None:
                m = lib.compile_file(name, byref(opts), byref(d))
            else:
                m = lib.compile_string(name, source, byref(opts), byref(d))
        diags = _take_diagnostics(d)
        if not m:
            raise CompileError(diags)
        self._m = m
        self.notes = [x for x in diags if x.severity == "note"]
        L = lib.model_layout(m).contents
        # read-only (properties below): the checks that keep the compiled
        # code inside its memory rely on them
        self._name = L.model.decode()
        self._dtype = _DTYPES[L.dtype]
        self._max_batch = L.max_batch
        self._min_train_rows = L.min_train_rows
        self._input_cols, self._target_cols, self._output_cols = L.input_cols, L.target_cols, L.output_cols
        self._has_predict = bool(L.has_predict)
        self._layout = tuple(Param(L.params[i]) for i in range(L.nparams))
        self._lr_offset = L.lr_offset
        self._buffer = _aligned_zeros(L.total, self.dtype)
        self._bufp = self.buffer.ctypes.data
        lib.buffer_init(m, self._bufp)
        lib.model_init_params(m, self._bufp)
        self._state_layout = tuple(Param(L.states[i]) for i in range(L.nstates))
        ix = POINTER(NncIndexInput)()
        # (column, count, rows, input, table) of each input an embedding reads
        self._index_inputs = tuple((p.column, p.count, p.rows, p.input.decode(), p.table.decode())
                                   for p in ix[:lib.model_index_inputs(m, byref(ix))])
        self.params = _Views(self.buffer, self.layout, False, guard=self._guard)
        self.states = _Views(self.buffer, self._state_layout, False, "state", self._guard)
        self.grads = _Views(self.buffer, self.layout, True, guard=self._guard)
        self.epochs_trained = 0
        self._data = None
        self._fns = None
        self._fast_step = None
        self._jit = bool(jit)
        self._opt_level = opt_level
        if self.jit:
            with compile_lock:
                fns = lib.model_jit(m, opt_level)
            if not fns:
                raise Error([Diagnostic(os.fsdecode(name), 0, 0, "error", "JIT compilation failed",
                                        "%s: error: JIT compilation failed (see standard error)\n" %
                                        os.fsdecode(name))])
            self._fns = fns
            addrs = fns.contents.f64 if L.dtype == 1 else fns.contents.f32
            for fn in FUNCTION_NAMES:
                addr = getattr(addrs, fn)
                setattr(self, "_c_" + fn, SIGNATURES[L.dtype][fn](addr) if addr else None)
            # (indices are checked on the way that checks everything)
            self._fast_step = None if self._index_inputs else self._c_train_step

    def close(self):
        """Free the compiled model and its code. The parameter arrays stay
        valid (they belong to numpy); calls on the model raise ValueError."""
        guard = getattr(self, "_guard", None)
        if guard is None:  # (compiling failed)
            return
        # (_is_owned: whether this thread holds it, in a call on the model
        # that a signal handler or a finalizer interrupted; CPython's RLock
        # has it, as threading.Condition relies on)
        if guard.lock._is_owned():
            raise RuntimeError("close() inside a call on the model (a signal handler, a finalizer): the call "
                               "would go on in freed code; close it after")
        with guard.lock:  # after any call another thread is making
            if guard.busy:
                raise RuntimeError("the model is training in another thread (fit): close it after")
            m, self._m = getattr(self, "_m", None), None
            if m:
                self._fns = self._fast_step = None
                for fn in FUNCTION_NAMES:
                    setattr(self, "_c_" + fn, None)
                lib.model_free(m)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if not hasattr(self, "_layout"):
            return "<nnc.Model (not compiled)>"
        state = "closed" if not self._m else ("jit -O%d" % self.opt_level if self.jit else "interpreter")
        return "<nnc.Model %s: %s, %d parameters in %d tensors, %s>" % (
            self.name, "f64" if self.dtype == np.float64 else "f32", sum(p.size for p in self.layout),
            len(self.layout), state)

    def _ready(self):
        if not self._m:
            raise ValueError("the model is closed")
        if self._guard.busy:
            raise RuntimeError("the model is training in another thread (fit)")

    # ---- argument checks ----

    def _rows(self, a, cols, what, lo=0, hi=None, call=None):
        """The number of rows of a: a C-contiguous array of shape (n, cols)
        (or (n,) when cols is 1) in the model's dtype, lo <= n <= hi."""
        if not isinstance(a, np.ndarray):
            raise TypeError("%s must be a numpy array of shape (n, %d) and dtype %s, got %s"
                            % (what, cols, self.dtype, type(a).__name__))
        shape = a.shape
        if not (len(shape) == 2 and shape[1] == cols or len(shape) == 1 and cols == 1):
            raise ValueError("%s must have shape (n, %d)%s, got %s" % (
                what, cols, " or (n,)" if cols == 1 else "", shape))
        if a.dtype != self.dtype:
            raise ValueError("%s has dtype %s; the model computes in %s: pass %s.astype(np.%s)"
                             % (what, a.dtype, self.dtype, what, self.dtype))
        if not a.flags.c_contiguous or not a.flags.aligned:
            raise ValueError("%s must be C-contiguous and aligned: pass np.ascontiguousarray(%s)" % (what, what))
        n = shape[0]
        if n < lo and hi is None:
            raise ValueError("%s has %d rows; %s takes at least %d" % (what, n, call, lo))
        if hi is not None and not lo <= n <= hi:
            raise ValueError("%s has %d rows; %s takes %s (the train block's batch is %d)"
                             % (what, n, call, "1 row" if hi == 1 else "1 to %d rows" % hi, self.max_batch))
        if what == "x":
            self._check_indices(a.reshape(n, cols))
        return n

    def _check_indices(self, x):
        """Every value an embedding reads from x is a row of its table (as
        the command line checks its data): ValueError naming the first that
        is not (compiled code would read some row of the table instead)."""
        for column, count, rows, name, table in self._index_inputs:
            v = x[:, column:column + count]
            bad = ~((v >= 0) & (v < rows) & (v == np.floor(v)))  # (NaN is bad)
            if bad.any():
                r, k = (int(i) for i in np.argwhere(bad)[0])
                raise ValueError("x[%d, %d] (%s[%d]) is %r, which is not a row of %s (an integer in [0, %d))"
                                 % (r, column + k, name, k, float(v[r, k]), table, rows))

    def _batch(self, x, t, call):
        self._ready()
        n = self._rows(x, self.input_cols, "x", 1, self.max_batch, call)
        if self._rows(t, self.target_cols, "t", 1, self.max_batch, call) != n:
            raise ValueError("x has %d rows but t has %d" % (n, t.shape[0]))
        if n < self._min_train_rows:  # training mode: batch statistics
            raise ValueError("a batch of %d row gives a batch_norm layer one value per channel, and the variance of "
                             "one value is no statistic (PyTorch refuses it too); %s takes at least %d rows"
                             % (n, call, self._min_train_rows))
        return n

    # ---- running the model ----

    def train_step(self, x, t):
        """One optimizer step on the batch x (n rows of input_cols values),
        t (n rows of target_cols), 1 <= n <= max_batch (2 <= n with a
        batch_norm that a row gives one value per channel), on the arrays'
        memory; returns the batch loss before the step (the mean over rows)."""
        with self._guard.lock:
            f = self._fast_step  # compiled code, not closed, not busy
            # the common case checked inline, as cheaply as it can be: this
            # is the call made in a loop (the full checks below say what is
            # wrong)
            if f is not None and type(x) is _ndarray and type(t) is _ndarray:
                xs = x.shape
                if len(xs) == 2 and x.dtype is self._dtype and t.dtype is self._dtype and x.flags.carray \
                        and t.flags.carray:
                    n = xs[0]
                    if xs[1] == self._input_cols and t.shape == (n, self._target_cols) \
                            and self._min_train_rows <= n <= self._max_batch:
                        return f(self._bufp, _address(x), _address(t), n)
            n = self._batch(x, t, "train_step")
            if self._fns:
                return self._c_train_step(self._bufp, x.ctypes.data, t.ctypes.data, n)
            loss = c_double()
            lib.interp_train_step(self._m, self._bufp, x.ctypes.data, t.ctypes.data, n, byref(loss))
            return loss.value

    @_holding
    def grad(self, x=None, t=None):
        """The batch loss and each parameter's gradient (a dict of new
        arrays, in creation order) for the batch x, t, as `nnc --grad`
        prints them; without arguments, for the first batch of the train
        block's data (what --grad uses). The gradients also stay in
        self.grads."""
        if x is None and t is None:
            self._ready()
            d = self.data()
            n = min(self.max_batch, len(d.x_train))
            if n < 1:
                raise ValueError("the training set is empty")
            x, t = d.x_train[:n], d.t_train[:n]
        elif x is None or t is None:
            raise TypeError("grad() takes both x and t, or neither")
        n = self._batch(x, t, "grad")
        if self._fns:
            loss = self._c_backward(self._bufp, x.ctypes.data, t.ctypes.data, n)
        else:
            out = c_double()
            lib.interp_backward(self._m, self._bufp, x.ctypes.data, t.ctypes.data, n, byref(out))
            loss = out.value
        return float(loss), {k: v.copy() for k, v in self.grads.items()}

    @_holding
    def update(self):
        """One optimizer step from the gradients in self.grads (after grad(),
        or gradients written there)."""
        self._ready()
        if not self._fns:
            raise ValueError("update() runs compiled code: make the model with jit=True")
        self._c_update(self._bufp)

    @_holding
    def train_epoch(self, x, t):
        """The steps of train_step over all rows of x, t in order, in
        batches of max_batch (the last may be smaller), in one compiled
        loop: the one fit() and `nnc --train` run (the same bits as they
        over the same rows), which agrees with a loop of train_step calls
        to rounding, not bit for bit. Returns the mean over rows of each
        row's loss before its step: 0.0 for no rows, which take no step
        (the compiled loop's sum of no losses)."""
        self._ready()
        n = self._rows(x, self.input_cols, "x", 0, None, "train_epoch")
        if self._rows(t, self.target_cols, "t", 0, None, "train_epoch") != n:
            raise ValueError("x has %d rows but t has %d" % (n, t.shape[0]))
        if n == 0:
            return 0.0
        last = n % self.max_batch or min(n, self.max_batch)
        if last < self._min_train_rows:
            raise ValueError("%d rows in batches of %d leave a last batch of %d row, which gives a batch_norm layer one "
                             "value per channel (PyTorch refuses it too); pass rows that leave none or at least %d"
                             % (n, self.max_batch, last, self._min_train_rows))
        if self._fns:
            return float(self._c_train_epoch(self._bufp, x.ctypes.data, t.ctypes.data, n)) / n
        total = 0.0
        loss = c_double()
        for r in range(0, n, self.max_batch):
            k = min(self.max_batch, n - r)
            lib.interp_train_step(self._m, self._bufp, x[r:r + k].ctypes.data, t[r:r + k].ctypes.data, k,
                                  byref(loss))
            total += loss.value * k
        return total / n

    @_holding
    def forward(self, x, t):
        """The outputs (n rows of output_cols) and per-row losses (n) for
        any number of rows."""
        self._ready()
        n = self._rows(x, self.input_cols, "x", 0, None, "forward")
        if self._rows(t, self.target_cols, "t", 0, None, "forward") != n:
            raise ValueError("x has %d rows but t has %d" % (n, t.shape[0]))
        y = np.empty((n, self.output_cols), self.dtype)
        loss = np.empty(n, self.dtype)
        self._run(n, x, t, y, loss)
        return y, loss

    @_holding
    def evaluate(self, x, t):
        """The mean per-row loss over x, t (what --train's `final train
        loss` line prints for the training set); 0.0 for no rows, as nnc's
        mean over an empty set."""
        _, loss = self.forward(x, t)
        if len(loss) == 0:
            return 0.0
        # summed in row order in double, as nnc does
        return float(np.cumsum(loss, dtype=np.float64)[-1] / len(loss))

    @_holding
    def predict(self, x):
        """The outputs for each row of x (any number of rows): an array of
        shape (n, output_cols)."""
        self._ready()
        n = self._rows(x, self.input_cols, "x", 0, None, "predict")
        if not self.has_predict:
            raise ValueError("the output of model %s depends on the targets, so it cannot be predicted from "
                             "inputs alone: use forward(x, t), or name a value computed from the inputs with "
                             "`output NAME`" % self.name)
        y = np.empty((n, self.output_cols), self.dtype)
        self._run(n, x, None, y, None)
        return y

    def _run(self, n, x, t, y, loss):
        """y (and loss, with t) for all n rows: one call of the library,
        which runs them in batches of max_batch (as nnc evaluates a data
        set), with the values of a call per batch."""
        if n == 0:
            return
        xp, yp = x.ctypes.data, y.ctypes.data
        if self._fns and t is None:
            self._c_predict(self._bufp, xp, n, yp)
        elif self._fns:
            self._c_forward(self._bufp, xp, t.ctypes.data, n, yp, loss.ctypes.data)
        elif lib.interp_forward(self._m, self._bufp, xp, None if t is None else t.ctypes.data, n, yp,
                                None if t is None else loss.ctypes.data) != 0:
            raise ValueError("the interpreter refused the call")  # checked above; not expected

    # ---- the train block ----

    @_holding
    def data(self):
        """The train block's data sets (a Dataset: x_train, t_train,
        x_valid, t_valid), loaded as --train loads them; cached."""
        self._ready()
        if self._data is None:
            tr, va, d = NncDataset(), NncDataset(), NncDiagnostics()
            rc = lib.model_data(self._m, byref(tr), byref(va), byref(d))
            diags = _take_diagnostics(d)
            if rc != 0:
                raise Error(diags)
            try:
                arrays = []
                for s in (tr, va):
                    for p, cols in ((s.x, self.input_cols), (s.t, self.target_cols)):
                        count = s.rows * cols
                        a = np.empty((s.rows, cols), self.dtype)
                        if count:
                            ctypes.memmove(a.ctypes.data, p, count * self.dtype.itemsize)
                        arrays.append(a)
            finally:
                lib.dataset_free(byref(tr))
                lib.dataset_free(byref(va))
            self._data = Dataset(*arrays)
        return self._data

    def fit(self, epochs=None, verbose=False):
        """Train as `nnc --train` does: the train block's data, shuffling,
        optimizer and epochs (or `epochs`), with the model's code, on one
        thread. A call goes on with the run the last one left: fit(3)
        twice trains as fit(6), its schedule and shuffled order included
        (init_params and load start a new run). verbose prints --train's progress and final lines on
        standard output. Returns a History; raises TrainingError when the
        loss or a parameter stops being finite."""
        guard = self._guard
        r, d = NncFitResult(), NncDiagnostics()
        out, done = [], threading.Lock()
        done.acquire()  # released by the worker once the C loop has returned

        def release():
            """The model is no longer the loop's: run once, by the worker
            (which no signal interrupts), or here when none started."""
            lib.model_stop(m, False)
            self.epochs_trained += r.epochs
            self._fast_step = fast
            guard.busy = False

        def train():
            rc = -1
            try:
                rc = lib.model_fit(m, self._bufp, self._fns, epochs, bool(verbose), byref(r), byref(d))
            finally:
                release()
                out.append(rc)
                done.release()

        # The C loop runs on a thread of its own, so that this one sees
        # Ctrl-C (KeyboardInterrupt, or any exception raised in it) and asks
        # the loop to stop at its next step, as --train stops at SIGINT.
        # Whatever arrives, and wherever, the model stays the loop's until
        # the loop returns: the worker releases it. fit() waits for that
        # (`out` holds the result); an exception that escapes the wait
        # leaves with the stop asked for, and the worker releases the model
        # a step later. (A bare lock to wait on: an Event's wait,
        # interrupted, could leave its condition held and the worker stuck
        # in set(); an interrupted Thread.join() could leave is_alive()
        # False while the thread ran. That an exception signalled at a
        # statement comes after its call, never between two stores of one
        # statement, is Python 3.10's: it checks only at calls and
        # backward jumps.)
        interrupted, started = None, False
        try:
            with guard.lock:
                self._ready()
                epochs = -1 if epochs is None else _int_arg(epochs, "epochs", 0, 100000000)
                m = self._m
                lib.model_stop(m, False)
                fast = self._fast_step
                # the call lets other threads run: their calls raise RuntimeError
                guard.busy, self._fast_step = True, None
                try:
                    started = True
                    _thread.start_new_thread(train, ())
                except BaseException:
                    started = False  # (the call raised: no thread)
                    release()
                    raise
            while not out:
                done.acquire()
        except BaseException as e:  # (KeyboardInterrupt above all)
            if started:
                lib.model_stop(m, True)
            interrupted = e
        finally:
            while started and not out:
                try:
                    lib.model_stop(m, True)
                    done.acquire(timeout=0.1)
                except BaseException as e:
                    interrupted = interrupted or e
        if interrupted is not None and not out:
            raise interrupted
        rc = out[0] if out else -1
        try:
            history = History(r)
        finally:
            lib.fit_result_free(byref(r))
        diags = _take_diagnostics(d)
        if interrupted is not None:  # the run stands where it stopped: fit() goes on from there
            raise interrupted
        if rc > 0:
            raise TrainingError(diags, history)
        if rc < 0:
            raise Error(diags)
        return history

    def stop(self):
        """Ask the fit() that runs (in another thread) to stop at its next
        step, as Ctrl-C stops one the main thread runs: that fit() returns
        its History, the run standing where it stopped. Does nothing when
        no fit() runs."""
        with self._guard.lock:  # (not closed meanwhile; fit() holds it only to start)
            if self._m and self._guard.busy:
                lib.model_stop(self._m, True)

    @_holding
    def init_params(self):
        """Set the parameters as the file's initializers do (a fresh start)
        and the optimizer state to its starting values."""
        self._ready()
        lib.buffer_init(self._m, self._bufp)
        lib.model_init_params(self._m, self._bufp)
        lib.model_restart(self._m)
        self.epochs_trained = 0

    # ---- checkpoints and text ----

    @_holding
    def save(self, path):
        """Write the parameters to a safetensors file, as --save (tensor
        names as self.params; metadata model, epoch, dtype, format)."""
        self._ready()
        d = NncDiagnostics()
        rc = lib.model_save(self._m, self._bufp, _path_arg(path), self.epochs_trained, byref(d))
        diags = _take_diagnostics(d)
        if rc != 0:
            raise Error(diags)

    @_holding
    def load(self, path):
        """Read the parameters from a safetensors file, as --load: every
        parameter with its dtype and shape, finite values; the optimizer
        state starts again, and so does the run (epochs_trained 0). On an
        error nothing changes."""
        self._ready()
        d = NncDiagnostics()
        rc = lib.model_load(self._m, self._bufp, _path_arg(path), byref(d))
        diags = _take_diagnostics(d)
        if rc != 0:
            raise Error(diags)
        self.epochs_trained = 0

    @_holding
    def emit(self, kind, opt_level=None):
        """What `nnc --emit KIND` writes: a str for ast, ir, grad, opt,
        layout, dot, llvm, asm and header; bytes for obj. opt_level (default:
        the model's) is -O for llvm, asm and obj."""
        self._ready()
        if kind not in EMIT_KINDS:
            raise ValueError("kind must be one of %s, got %r" % (", ".join(EMIT_KINDS), kind))
        level = self.opt_level if opt_level is None else _int_arg(opt_level, "opt_level", 0, 3)
        n, d = c_size_t(), NncDiagnostics()
        with compile_lock:
            p = lib.model_emit(self._m, kind.encode(), level, byref(n), byref(d))
        diags = _take_diagnostics(d)
        if not p:
            raise Error(diags)
        try:
            data = ctypes.string_at(p, n.value)
        finally:
            libc.free(p)
        return data if kind == "obj" else data.decode("utf-8")
