"""The backend: the one module that imports NumPy or CuPy.

Every array a Tensor holds belongs to a *backend*: an array library bound to a device.

* ``"cpu"``  -> NumPy (always available, the default)
* ``"cuda"`` -> CuPy (the ``gpu`` extra; needs an NVIDIA GPU)

The rest of minigrad never imports numpy or cupy for computation. Ops receive the
array module of their inputs as ``xp`` (``numpy`` or ``cupy`` share one API), and the
few operations that differ between the libraries (scatter-add, random numbers,
moving data between devices) are methods of :class:`Backend`. So are the inner loops
that each library runs best its own way: the row reductions of the fused ops and Adam's
update (array expressions on NumPy; small CUDA kernels on CuPy, where every launch costs
CPU time), and whole passes of layer norm, softmax and ReLU, which a GPU runs as one
kernel each (source in ``minigrad/cuda_kernels.py``) and the CPU as C loops over rows
when it can compile them (``minigrad/cpu_kernels.py``, built by ``minigrad.native``).
Where a backend has no such kernel the hook declines (returns None or False) and the op
composes the same formulas from array calls, on threads.

Tests register an extra backend (see ``tests/marked_backend.py``) that runs on the CPU
but marks every array it makes, to prove that no op silently falls back to NumPy.
"""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from . import cuda_kernels, native, parallel

# dtypes are NumPy dtype objects; CuPy uses the same ones.
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

# one parameter's Adam update: (param, grad, exp_avg, exp_avg_sq, step_size, bias_correction2_sqrt)
AdamUpdate = tuple[Any, Any, Any, Any, float, float]

_DTYPE_NAMES = {
    "float16": float16,
    "float32": float32,
    "float64": float64,
    "int32": int32,
    "int64": int64,
    "bool": bool_,
}


class BackendError(RuntimeError):
    """A device or backend that cannot be used (CuPy missing, no GPU, unknown name)."""


def as_dtype(dtype: Any) -> np.dtype:
    """Turn ``"float32"``, ``minigrad.float32`` or a NumPy dtype into a dtype object."""
    if isinstance(dtype, str):
        try:
            return _DTYPE_NAMES[dtype]
        except KeyError:
            raise TypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPE_NAMES)}") from None
    return np.dtype(dtype)


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


class Backend:
    """An array library bound to one device.

    Attributes:
        device: the device name tensors report (``"cpu"``, ``"cuda"``).
        xp: the array module (``numpy`` or ``cupy``) ops compute with.
        array_type: the class of the arrays this backend makes.
    """

    device = "cpu"
    xp: Any = np
    array_type: type = np.ndarray
    threaded = False  # True: run_rows splits work across CPU threads (minigrad.parallel)
    # True: the device runs behind the CPU (a GPU), so reading a value back (bool(array))
    # waits for all queued work; ops then prefer a branch-free formula to a check
    asynchronous = False

    def __init__(self) -> None:
        self._generator: Any = None
        self._seed: int | None = None

    # ---- the matrix library's threads ---------------------------------------------
    def blas_threads(self) -> int | None:
        """How many threads the matrix-product library uses, or None when it cannot say."""
        return None

    def set_blas_threads(self, n: int) -> bool:
        """Ask the matrix-product library to use ``n`` threads (for the whole process).

        Returns False when it cannot be told (then nothing changed).
        """
        return False

    # ---- arrays -----------------------------------------------------------------
    def asarray(self, data: Any, dtype: np.dtype | None = None) -> Any:
        """Make a backend array from Python data, a host array or a backend array."""
        return self.xp.asarray(data, dtype=dtype)

    def from_host(self, array: np.ndarray) -> Any:
        """Copy a NumPy array onto this backend's device."""
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        """Copy a backend array into a NumPy array (no copy on the CPU)."""
        return np.asarray(array)

    def normalize(self, out: Any) -> Any:
        """Turn an op's raw result into a backend array.

        NumPy returns scalars (``np.float32``) instead of 0-d arrays from operations on
        0-d arrays; tensors always hold arrays.
        """
        if isinstance(out, self.array_type):
            return out
        return self.xp.asarray(out)

    def run_rows(self, kernel: Callable[[int, int], Any], rows: int, work: int) -> list[Any]:
        """Run ``kernel(lo, hi)`` over row slices covering ``[0, rows)``; their results in order.

        On the CPU the slices run on several threads (see ``minigrad.parallel``); on a GPU
        one call covers every row, because the device is parallel already.
        """
        if self.threaded:
            return parallel.run_rows(kernel, rows, work)
        return [kernel(0, rows)]

    # ---- reductions over the last axis (keepdims), the inner loops of the fused ops -----
    def row_max(self, x: Any) -> Any:
        """``x.max(axis=-1, keepdims=True)``."""
        return x.max(axis=-1, keepdims=True)

    def row_sum(self, x: Any) -> Any:
        """``x.sum(axis=-1, keepdims=True)``."""
        return x.sum(axis=-1, keepdims=True)

    def row_dot(self, a: Any, b: Any) -> Any:
        """``(a * b).sum(axis=-1, keepdims=True)``."""
        return (a * b).sum(axis=-1, keepdims=True)

    def col_sum(self, x: Any) -> Any:
        """``x.sum(axis=0)`` of a 2-D array: the sum of its rows (a bias gradient)."""
        return x.sum(axis=0)

    def matmul2d(self, a: Any, b: Any) -> Any:
        """``a @ b`` for 2-D arrays (either may be a transposed view): a Linear layer's products."""
        return a @ b

    # ---- whole fused-op passes as single kernels ------------------------------------
    # On a GPU each array call is a kernel launch that costs CPU time, so a backend may do
    # a fused op's whole pass over its rows in one kernel. These return None (or False)
    # where the backend has no such kernel or it does not apply (dtype, layout); the op
    # then composes the same formulas from array calls, as it does on NumPy.
    def softmax_rows(self, w: Any, scale: float = 1.0, bool_mask: Any = None, float_mask: Any = None) -> bool:
        """Overwrite ``w`` with ``softmax(w * scale + mask)`` along its last axis, shifted by
        the row max; ``bool_mask`` (True: masked, -inf) or ``float_mask`` (added) broadcast
        to ``w``. A row whose every entry is -inf becomes 0. False: not done, w unchanged."""
        return False

    def softmax_backward(self, g: Any, w: Any, scale: float = 1.0) -> Any:
        """``w * (g - sum(g * w, -1)) * scale`` (softmax's vector-Jacobian product), or None."""
        return None

    def layer_norm_forward(self, x: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any] | None:
        """``(y, mean, rstd)`` of layer norm over the rows of 2-D ``x`` (weight, bias:
        1-D or None; mean, rstd: one per row, shape (rows, 1)), or None."""
        return None

    def layer_norm_backward(
        self, g: Any, x: Any, mean: Any, rstd: Any, weight: Any, want_dx: bool, want_dweight: bool, want_dbias: bool
    ) -> tuple[Any, Any, Any] | None:
        """``(dx, dweight, dbias)`` of layer norm for 2-D ``g`` and ``x``: dx like x,
        ``dweight = sum(g * xhat)`` and ``dbias = sum(g)`` over the rows (each None when
        not wanted), or None."""
        return None

    def bias_relu(self, out: Any, bias: Any) -> bool:
        """Overwrite 2-D ``out`` with ``max(out + bias, 0)`` (bias: 1-D or None). False: not
        done, out unchanged."""
        return False

    def linear_forward(self, x: Any, weight: Any, bias: Any, relu: bool) -> Any:
        """``x @ weight.T + bias`` (then ``max(., 0)`` when relu) for 2-D ``x`` and ``weight``
        and 1-D ``bias`` or None, as one call, or None."""
        return None

    def linear_backward(
        self, g: Any, y: Any, x: Any, weight: Any, want_dx: bool, want_dweight: bool, want_dbias: bool
    ) -> tuple[Any, Any, Any] | None:
        """``(dx, dweight, dbias)`` of :meth:`linear_forward` for the 2-D output gradient ``g``
        (y: the output, when the ReLU was applied, else None), each None when not wanted, as
        one call, or None."""
        return None

    def relu_backward(self, g: Any, y: Any, want_dbias: bool) -> tuple[Any, Any] | None:
        """``(g * [y > 0], its sum over all axes but the last, or None)`` for ``g`` and ``y``
        of one shape (the first array is new, shaped like g, not a view), or None."""
        return None

    def quiet_overflow(self) -> AbstractContextManager:
        """A context in which an overflow (``exp`` of a large number) gives inf silently:
        for a kernel that checks its results and recomputes when one is not finite."""
        return nullcontext()

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        """``target[index] += values`` where repeated indices accumulate (in place)."""
        np.add.at(target, index, values)

    def erf(self, array: Any) -> Any:
        """The error function, elementwise (SciPy's when installed, else math.erf)."""
        try:
            from scipy.special import erf
        except ImportError:
            # frompyfunc returns a Python float, not an array, for 0-d input
            return np.asarray(np.frompyfunc(math.erf, 1, 1)(array), dtype=array.dtype)
        return erf(array)

    # ---- the optimizer's inner loop ----------------------------------------------
    def adam_passes(self) -> int:
        """How many passes over a parameter's elements :meth:`adam_update` makes (the
        optimizer's estimate of its work, which decides whether threads pay off): one per
        array expression below."""
        return 12

    def adam_update(
        self,
        param: Any,
        grad: Any,
        exp_avg: Any,
        exp_avg_sq: Any,
        *,
        beta1: float,
        beta2: float,
        step_size: float,
        bias_correction2_sqrt: float,
        eps: float,
    ) -> None:
        """One Adam update, in place (the math is in ``minigrad.optim.Adam``)::

            m = b1 m + (1 - b1) g
            v = b2 v + (1 - b2) g^2
            p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)

        Array expressions with one scratch array here; CuPy runs it as one fused kernel,
        since on a GPU each of these lines would be a kernel launch of its own.
        """
        xp = self.xp
        scratch = grad * (1.0 - beta1)
        exp_avg *= beta1
        exp_avg += scratch  # m = b1 m + (1 - b1) g
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += scratch  # v = b2 v + (1 - b2) g^2
        denom = xp.sqrt(exp_avg_sq, out=scratch)
        denom /= bias_correction2_sqrt
        denom += eps  # denom = sqrt(v) / sqrt(1 - b2^t) + eps
        update = xp.divide(exp_avg, denom, out=scratch)
        update *= -step_size
        param += update  # p -= lr / (1 - b1^t) * m / denom

    def adam_update_many(self, updates: Sequence[AdamUpdate], *, beta1: float, beta2: float, eps: float) -> None:
        """:meth:`adam_update` for each ``(param, grad, exp_avg, exp_avg_sq, step_size,
        bias_correction2_sqrt)`` in ``updates`` (the parameters of one group). They are
        independent, so on the CPU slices of the list run on threads when the work is large.
        """

        def run(lo: int, hi: int) -> None:
            for param, grad, exp_avg, exp_avg_sq, step_size, bc2_sqrt in updates[lo:hi]:
                self.adam_update(
                    param, grad, exp_avg, exp_avg_sq, beta1=beta1, beta2=beta2, step_size=step_size,
                    bias_correction2_sqrt=bc2_sqrt, eps=eps,
                )  # fmt: skip

        self.run_rows(run, len(updates), self.adam_passes() * sum(u[1].size for u in updates))

    # ---- random numbers ---------------------------------------------------------
    def seed(self, seed: int) -> None:
        self._seed = seed
        self._generator = np.random.default_rng(seed)

    @property
    def generator(self) -> Any:
        if self._generator is None:
            self.seed(_initial_seed())
        return self._generator

    def get_rng_state(self) -> dict[str, Any]:
        """The generator's state as JSON-able data (to resume a run bit for bit)."""
        return self.generator.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self.generator.bit_generator.state = state

    def uniform(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """Samples from U[0, 1) with this device's seeded generator."""
        return self.generator.random(shape, dtype=dtype)

    def normal(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """Samples from N(0, 1) with this device's seeded generator."""
        return self.generator.standard_normal(shape, dtype=dtype)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Any:
        return self.generator.integers(low, high, size=shape, dtype=np.int64)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} device={self.device!r}>"


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _address(array: Any, offset: int = 0) -> int | None:
    """The address of ``array``'s element number ``offset`` (C order), for the C kernels; None for None."""
    return None if array is None else array.ctypes.data + offset * array.itemsize


_OPENBLAS: list[dict[str, Any] | None] = []  # the lookup's result, once made


def _openblas_libraries() -> list[ctypes.CDLL]:
    """The OpenBLAS libraries this process has mapped (Linux ``/proc/self/maps``), as ctypes
    handles (opening a loaded library again gives the same handle)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line and ".so" in line})
    except OSError:
        return []
    libraries = []
    for path in paths:
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


def openblas_api() -> dict[str, Any] | None:
    """``get_num_threads``, ``set_num_threads`` and ``get_corename`` of the OpenBLAS that NumPy
    loaded, called through ctypes; None for another BLAS or where it cannot be found.

    The NumPy wheels bundle OpenBLAS under prefixed names (``scipy_openblas_..._64_``, with
    64-bit integers); a NumPy built against a system OpenBLAS has the plain names. The
    library is found among the files this process has mapped (Linux ``/proc/self/maps``).
    Its thread count is one setting for the whole process.
    """
    if _OPENBLAS:
        return _OPENBLAS[0]

    found = None
    for lib in _openblas_libraries():
        for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "64_"), ("openblas_", "")):
            names = {n: f"{prefix}{n}{suffix}" for n in ("get_num_threads", "set_num_threads", "get_corename")}
            if all(hasattr(lib, name) for name in names.values()):
                found = {n: getattr(lib, name) for n, name in names.items()}
                found["get_corename"].restype = ctypes.c_char_p
                found["set_num_threads"].argtypes = [ctypes.c_int]
                break
        if found is not None:
            break
    _OPENBLAS.append(found)
    return found


_CBLAS: dict[str, int | None] = {}  # the lookup's results, once made
LINEAR_KERNEL_MIN_SIZE = 1 << 15  # elements of a Linear layer's input and output (NumpyBackend._linear_kernel)


def cblas_gemm(kind: str) -> int | None:
    """The address of ``cblas_sgemm`` (kind "s") or ``cblas_dgemm`` ("d") in the OpenBLAS
    that NumPy loaded, for minigrad's C kernels to call; None where not found.

    Only the names of builds with 64-bit integers are taken (NumPy's wheels:
    ``scipy_cblas_sgemm64_``; ``cblas_sgemm64_``), the integers the kernels pass; a plain
    ``cblas_sgemm`` does not tell its integer width.
    """
    if kind in _CBLAS:
        return _CBLAS[kind]
    found = None
    if openblas_api() is not None:
        for lib in _openblas_libraries():
            for name in (f"scipy_cblas_{kind}gemm64_", f"cblas_{kind}gemm64_"):
                if hasattr(lib, name):
                    found = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                    break
            if found is not None:
                break
    _CBLAS[kind] = found
    return found


class NumpyBackend(Backend):
    """NumPy on the CPU.

    Layer norm and the attention softmax run as C loops over rows when the machine can
    compile them (``minigrad.native``, source in ``minigrad/cpu_kernels.py``); otherwise
    these hooks decline and the ops compose the same formulas from NumPy calls.
    """

    threaded = True
    use_native = True  # False: never use the C kernels (tests compare both paths)

    def native(self) -> Any:
        """The compiled C kernels (``minigrad.native.Library``), or None."""
        return native.library() if self.use_native else None

    def adam_passes(self) -> int:
        # the C kernel reads and writes four arrays once: like two passes of an array expression
        return 2 if self.native() is not None else super().adam_passes()

    def _native_kernel(self, name: str, *arrays: Any) -> Any:
        """C kernel ``name`` for these arrays, or None: it applies to plain float32/float64
        arrays of one dtype, C-contiguous, with non-empty rows."""
        first = arrays[0]
        if first.dtype not in _BLAS_FLOATS or first.ndim == 0 or first.shape[-1] == 0:
            return None
        if not all(type(a) is np.ndarray and a.dtype == first.dtype and a.flags.c_contiguous for a in arrays):
            return None
        lib = self.native()
        return None if lib is None else lib.function(name, "f32" if first.dtype == float32 else "f64")

    def layer_norm_forward(self, x: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any] | None:
        affine = [a for a in (weight, bias) if a is not None]
        if x.ndim != 2 or any(a.shape != x.shape[-1:] for a in affine):
            return None
        kernel = self._native_kernel("layer_norm_forward", x, *affine)
        if kernel is None:
            return None
        rows, n = x.shape
        out = np.empty_like(x)
        mean = np.empty((rows, 1), dtype=x.dtype)
        rstd = np.empty_like(mean)

        def run(lo: int, hi: int) -> None:
            kernel(_address(x, lo * n), _address(weight), _address(bias), _address(out, lo * n),
                   _address(mean, lo), _address(rstd, lo), hi - lo, n, eps)  # fmt: skip

        self.run_rows(run, rows, 3 * x.size)
        return out, mean, rstd

    def layer_norm_backward(
        self, g: Any, x: Any, mean: Any, rstd: Any, weight: Any, want_dx: bool, want_dweight: bool, want_dbias: bool
    ) -> tuple[Any, Any, Any] | None:
        g = np.ascontiguousarray(g)  # an upstream gradient may be a broadcast view
        if x.ndim != 2 or g.shape != x.shape or mean.size != x.shape[0] or rstd.size != x.shape[0]:
            return None
        if weight is not None and weight.shape != x.shape[-1:]:
            return None
        kernel = self._native_kernel("layer_norm_backward", x, g, mean, rstd, *([weight] if weight is not None else []))
        if kernel is None:
            return None
        rows, n = x.shape
        dx = np.empty_like(x) if want_dx else None

        def run(lo: int, hi: int) -> tuple[Any, Any]:  # this slice's sums for dL/dw and dL/db
            dw = np.zeros(n, dtype=x.dtype) if want_dweight else None
            db = np.zeros(n, dtype=x.dtype) if want_dbias else None
            kernel(_address(g, lo * n), _address(x, lo * n), _address(mean, lo), _address(rstd, lo),
                   _address(weight), _address(dx, lo * n), _address(dw), _address(db), hi - lo, n)  # fmt: skip
            return dw, db

        parts = self.run_rows(run, rows, 4 * x.size)
        dweight = parallel.add_partials([p[0] for p in parts]) if want_dweight else None
        dbias = parallel.add_partials([p[1] for p in parts]) if want_dbias else None
        return dx, dweight, dbias

    def softmax_rows(self, w: Any, scale: float = 1.0, bool_mask: Any = None, float_mask: Any = None) -> bool:
        prepare = self._native_kernel("softmax_prepare", w)
        if prepare is None:
            return False
        finish = self.native().function("softmax_finish", "f32" if w.dtype == float32 else "f64")
        kind, mask = 0, None
        if bool_mask is not None:
            kind, mask = 1, np.broadcast_to(np.asarray(bool_mask, dtype=bool_), w.shape)
        elif float_mask is not None:
            kind, mask = 2, np.broadcast_to(np.asarray(float_mask, dtype=w.dtype), w.shape)
        lead = w.ndim - 1
        shape = (ctypes.c_longlong * max(lead, 1))(*w.shape[:-1])
        strides = (ctypes.c_longlong * max(lead, 1))(*(s // mask.itemsize for s in mask.strides[:-1]) if kind else ())
        last = mask.strides[-1] // mask.itemsize if kind else 0
        n = w.shape[-1]
        rows = w.size // n
        w2 = w.reshape(rows, n)  # a view: w is C-contiguous
        row_max = np.empty(rows, dtype=w.dtype)
        block = max(1, (1 << 16) // n)  # rows per pass of the three: they stay in the cache between passes

        def run(lo: int, hi: int) -> None:
            for start in range(lo, hi, block):
                stop = min(start + block, hi)
                prepare(w2.ctypes.data, start, stop, n, scale, kind, _address(mask), lead, shape, strides, last,
                        row_max.ctypes.data)  # fmt: skip
                np.exp(w2[start:stop], out=w2[start:stop])
                finish(w2.ctypes.data, start, stop, n, row_max.ctypes.data)

        self.run_rows(run, rows, 3 * w.size)
        return True

    def bias_relu(self, out: Any, bias: Any) -> bool:
        if out.ndim != 2 or (bias is not None and bias.shape != out.shape[-1:]):
            return False
        kernel = self._native_kernel("bias_relu", out, *([bias] if bias is not None else []))
        if kernel is None:
            return False
        n = out.shape[1]

        def run(lo: int, hi: int) -> None:
            kernel(_address(out, lo * n), _address(bias), hi - lo, n)

        self.run_rows(run, out.shape[0], 2 * out.size)
        return True

    def _linear_kernel(self, name: str, size: int, rows: int, work: int, *arrays: Any) -> tuple[Any, int] | None:
        """``(kernel, gemm address)`` for a fused Linear kernel on these arrays, or None.

        It needs the BLAS's gemm. It pays where the arrays are not small: preparing a C call
        costs more Python than NumPy's calls on tiny arrays (``size``, the elements of the
        layer's input and output, below ``LINEAR_KERNEL_MIN_SIZE``), while on larger ones one
        call instead of several hands the GIL over fewer times, which is what data-parallel
        threads wait for. It runs its elementwise passes (``work`` elements over ``rows``
        rows) on one thread, so it is not taken where minigrad's threads would split them.
        """
        if size < LINEAR_KERNEL_MIN_SIZE or len(parallel.slices(rows, work)) > 1:
            return None
        if any(a.size == 0 for a in arrays):
            return None
        kernel = self._native_kernel(name, *arrays)
        if kernel is None:
            return None
        gemm = cblas_gemm("s" if arrays[0].dtype == float32 else "d")
        return None if gemm is None else (kernel, gemm)

    def linear_forward(self, x: Any, weight: Any, bias: Any, relu: bool) -> Any:
        if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
            return None
        if bias is not None and bias.shape != weight.shape[:1]:
            return None
        rows, n_in = x.shape
        n_out = weight.shape[0]
        affine = [bias] if bias is not None else []
        size, work = rows * (n_in + n_out), 2 * rows * n_out  # work: the bias pass of the NumPy path
        found = self._linear_kernel("linear_forward", size, rows, work, x, weight, *affine)
        if found is None:
            return None
        kernel, gemm = found
        out = np.empty((rows, n_out), dtype=x.dtype)
        kernel(gemm, _address(x), _address(weight), _address(bias), _address(out), rows, n_in, n_out, int(relu))
        return out

    def linear_backward(
        self, g: Any, y: Any, x: Any, weight: Any, want_dx: bool, want_dweight: bool, want_dbias: bool
    ) -> tuple[Any, Any, Any] | None:
        if g.ndim != 2 or x.ndim != 2 or weight.shape != (g.shape[1], x.shape[1]):
            return None
        if g.shape[0] != x.shape[0] or (y is not None and y.shape != g.shape):
            return None
        rows, n_out = g.shape
        n_in = x.shape[1]
        relu = [y] if y is not None else []
        size, work = rows * (n_in + n_out), 3 * g.size  # work: the ReLU's backward pass of the NumPy path
        found = self._linear_kernel("linear_backward", size, rows, work, g, x, weight, *relu)
        if found is None:
            return None
        kernel, gemm = found
        kept = np.empty_like(g) if y is not None else None
        dx = np.empty((rows, n_in), dtype=g.dtype) if want_dx else None
        dw = np.empty(weight.shape, dtype=g.dtype) if want_dweight else None
        db = np.zeros(n_out, dtype=g.dtype) if want_dbias else None
        kernel(gemm, *map(_address, (g, y, kept, x, weight, dx, dw, db)), rows, n_in, n_out)
        return dx, dw, db

    def relu_backward(self, g: Any, y: Any, want_dbias: bool) -> tuple[Any, Any] | None:
        g = np.ascontiguousarray(g)
        if g.ndim == 0 or g.shape != y.shape:
            return None
        kernel = self._native_kernel("relu_backward", g, y)
        if kernel is None:
            return None
        n = g.shape[-1]
        dx = np.empty_like(g)  # g's shape: a gradient that is not a view needs no copy at a leaf

        def run(lo: int, hi: int) -> Any:  # this slice's share of the bias gradient
            db = np.zeros(n, dtype=g.dtype) if want_dbias else None
            kernel(_address(g, lo * n), _address(y, lo * n), _address(dx, lo * n), _address(db), hi - lo, n)
            return db

        parts = self.run_rows(run, g.size // n, 3 * g.size)
        return dx, (parallel.add_partials(parts) if want_dbias else None)

    def adam_update(
        self,
        param: Any,
        grad: Any,
        exp_avg: Any,
        exp_avg_sq: Any,
        *,
        beta1: float,
        beta2: float,
        step_size: float,
        bias_correction2_sqrt: float,
        eps: float,
    ) -> None:
        arrays = (param, grad, exp_avg, exp_avg_sq)
        kernel = self._native_kernel("adam_update", *arrays) if param.size else None
        if kernel is None or any(a.shape != param.shape for a in arrays):
            super().adam_update(
                param, grad, exp_avg, exp_avg_sq, beta1=beta1, beta2=beta2, step_size=step_size,
                bias_correction2_sqrt=bias_correction2_sqrt, eps=eps,
            )  # fmt: skip
            return
        kernel(*(_address(a) for a in arrays), param.size, beta1, 1.0 - beta1, beta2, 1.0 - beta2,
               step_size, bias_correction2_sqrt, eps)  # fmt: skip

    def adam_update_many(self, updates: Sequence[AdamUpdate], *, beta1: float, beta2: float, eps: float) -> None:
        # one C call per slice of the list (a call per parameter costs ~8 us of Python, more
        # than the update of a small parameter); the others take adam_update's path
        native, others = [], []
        for u in updates:
            arrays = u[:4]
            fits = u[0].size and all(a.shape == u[0].shape for a in arrays)
            (native if fits and self._native_kernel("adam_update_many", *arrays) else others).append(u)
        if others:
            super().adam_update_many(others, beta1=beta1, beta2=beta2, eps=eps)
        for dtype in dict.fromkeys(u[0].dtype for u in native):  # float32, float64: a kernel each
            self._adam_many([u for u in native if u[0].dtype == dtype], beta1, beta2, eps)

    def _adam_many(self, updates: list[AdamUpdate], beta1: float, beta2: float, eps: float) -> None:
        first = updates[0][0]
        kernel = self._native_kernel("adam_update_many", first)
        columns = zip(*(u[:4] for u in updates))  # the params, the grads, the ms, the vs
        addresses = [np.array([a.ctypes.data for a in arrays], dtype=np.uintp) for arrays in columns]
        sizes = np.array([u[0].size for u in updates], dtype=np.int64)
        step_sizes = np.array([u[4] for u in updates], dtype=first.dtype)
        bc2_sqrts = np.array([u[5] for u in updates], dtype=first.dtype)

        def run(lo: int, hi: int) -> None:
            kernel(*(_address(a, lo) for a in (*addresses, sizes, step_sizes, bc2_sqrts)), hi - lo,
                   beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps)  # fmt: skip

        self.run_rows(run, len(updates), self.adam_passes() * int(sizes.sum()))

    def softmax_backward(self, g: Any, w: Any, scale: float = 1.0) -> Any:
        g = np.ascontiguousarray(g)
        if g.shape != w.shape:
            return None
        kernel = self._native_kernel("softmax_backward", w, g)
        if kernel is None:
            return None
        n = w.shape[-1]
        out = np.empty_like(w)

        def run(lo: int, hi: int) -> None:
            kernel(_address(g, lo * n), _address(w, lo * n), _address(out, lo * n), hi - lo, n, scale)

        self.run_rows(run, w.size // n, 3 * w.size)
        return out

    def blas_threads(self) -> int | None:
        api = openblas_api()
        return int(api["get_num_threads"]()) if api is not None else None

    def set_blas_threads(self, n: int) -> bool:
        api = openblas_api()
        if api is None:
            return False
        api["set_num_threads"](int(n))
        return int(api["get_num_threads"]()) == n

    # NumPy's reductions along a short contiguous last axis are slow (an attention row has
    # 64 scores): these give the same values 1.4-3x faster (benchmarks/micro.py).
    def row_max(self, x: Any) -> Any:
        # fmax skips max's NaN bookkeeping; a NaN in a row still reaches the output via x - max
        return np.fmax.reduce(x, axis=-1, keepdims=True)

    def row_sum(self, x: Any) -> Any:
        return np.einsum("...j->...", x)[..., None]

    def row_dot(self, a: Any, b: Any) -> Any:
        return np.einsum("...j,...j->...", a, b)[..., None]  # no a * b temporary

    def quiet_overflow(self) -> AbstractContextManager:
        return np.errstate(over="ignore", invalid="ignore")

    def col_sum(self, x: Any) -> Any:
        # ones @ x is a BLAS matrix-vector product: on every core and 2-3x faster than
        # x.sum(axis=0), which walks the rows on one core (benchmarks/micro.py)
        if x.ndim == 2 and x.dtype in _BLAS_FLOATS and x.shape[0] > 1:
            return np.ones(x.shape[0], dtype=x.dtype) @ x
        return x.sum(axis=0)

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        # np.add.at is slow when each index selects a whole row (an embedding's gradient);
        # the same sums, in the same order, via one flat index per element are ~4x faster
        if (
            isinstance(index, np.ndarray)
            and index.dtype.kind in "iu"
            and target.ndim >= 2
            and target.flags.c_contiguous
            and values.shape == index.shape + target.shape[1:]
        ):
            row = math.prod(target.shape[1:])
            rows = np.where(index < 0, index + target.shape[0], index)  # negative indices, as target[index]
            if rows.size and (rows.min() < 0 or rows.max() >= target.shape[0]):
                raise IndexError(
                    f"scatter_add: index out of range for {target.shape[0]} rows "
                    f"(got indices from {int(index.min())} to {int(index.max())})"
                )
            kernel = self._native_kernel("scatter_add_rows", target, values) if rows.size else None
            if kernel is not None:  # a C loop over the rows: the same additions in the same order
                rows = np.ascontiguousarray(rows, dtype=np.int64)
                kernel(_address(target), _address(rows), _address(values), rows.size, row)
                return
            flat = (rows.reshape(-1, 1) * row + np.arange(row)).reshape(-1)
            np.add.at(target.reshape(-1), flat, values.reshape(-1))
            return
        np.add.at(target, index, values)


_ROW_SUM, _ROW_DOT, _ROW_MAX = 0, 1, 2


class CupyBackend(Backend):
    """CuPy on an NVIDIA GPU."""

    device = "cuda"
    asynchronous = True

    def __init__(self) -> None:
        super().__init__()
        try:
            import cupy
        except ImportError as exc:
            raise BackendError(
                "device 'cuda' needs CuPy, which is not installed; "
                "install the gpu extra: pip install 'minigrad-encoder[gpu]'"
            ) from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            raise BackendError(f"device 'cuda': CuPy is installed but found no usable GPU ({exc})") from exc
        if count == 0:
            raise BackendError("device 'cuda': CuPy is installed but no GPU is present")
        self.xp = cupy
        self.array_type = cupy.ndarray
        import cupyx

        self._cupyx = cupyx
        self._adam_kernel: Any = None
        self._module: Any = None  # compiled on first use
        self._kernels: dict[tuple[str, Any], Any] = {}  # (name, dtype) -> compiled kernel
        self._cublas: Any = None
        self._cublas = self._init_cublas()
        self.direct_cublas = self._cublas is not None  # False: every product goes through CuPy's matmul

    # ---- the project's own kernels (source: minigrad/cuda_kernels.py) ----------------
    def _kernel(self, name: str, dtype: np.dtype) -> Any:
        """The compiled kernel ``name`` for float32 or float64 (the module compiles once)."""
        kernel = self._kernels.get((name, dtype))
        if kernel is None:
            if self._module is None:
                names = [f"{k}<{t}>" for k in cuda_kernels.KERNELS for t in ("float", "double")]
                self._module = self.xp.RawModule(code=cuda_kernels.SOURCE, name_expressions=names)
            kernel = self._module.get_function(f"{name}<{'float' if dtype == float32 else 'double'}>")
            self._kernels[name, dtype] = kernel
        return kernel

    @staticmethod
    def _rows_fit(*arrays: Any) -> bool:
        """True when the row kernels apply: float32/float64, one dtype, C-contiguous, not
        empty, and no more rows than a grid has blocks."""
        a = arrays[0]
        if a.dtype not in _BLAS_FLOATS or a.ndim == 0 or a.size == 0 or a.size // a.shape[-1] >= 2**31:
            return False
        return all(b.dtype == a.dtype and b.flags.c_contiguous for b in arrays)

    @staticmethod
    def _threads(n: int) -> int:
        """Threads per block for rows of n values: a power of two in [32, 256]."""
        threads = 32
        while threads < n and threads < 256:
            threads *= 2
        return threads

    def _row_reduce(self, a: Any, b: Any, op: int) -> Any:
        """``a``'s last axis reduced (kept as size 1) by one kernel; None when the kernel does not apply."""
        if not self._rows_fit(a, *(() if b is None else (b,))) or (b is not None and b.shape != a.shape):
            return None
        n = a.shape[-1]
        rows = a.size // n
        out = self.xp.empty(a.shape[:-1] + (1,), dtype=a.dtype)
        args = (a, a if b is None else b, out, np.int64(rows), np.int32(n), np.int32(op))
        self._kernel("row_reduce", a.dtype)((rows,), (self._threads(n),), args)
        return out

    def softmax_rows(self, w: Any, scale: float = 1.0, bool_mask: Any = None, float_mask: Any = None) -> bool:
        if not self._rows_fit(w):
            return False
        if bool_mask is not None:  # scale and mask in one elementwise pass (CuPy broadcasts the mask)
            self._masking_kernel("bool")(bool_mask, scale, w)
            scale = 1.0
        elif float_mask is not None:
            self._masking_kernel("float")(float_mask.astype(w.dtype, copy=False), scale, w)
            scale = 1.0
        n = w.shape[-1]
        rows = w.size // n
        args = (w, np.int64(rows), np.int32(n), w.dtype.type(scale))
        self._kernel("softmax_rows", w.dtype)((rows,), (self._threads(n),), args)
        return True

    def _masking_kernel(self, kind: str) -> Any:
        """``w = w * scale`` and then -inf where a boolean mask is True, or + a float mask."""
        kernel = self._kernels.get((kind, None))
        if kernel is None:
            if kind == "bool":
                minus_inf = "(T)__longlong_as_double(0xfff0000000000000LL)"
                params, body = "bool m, float64 scale", f"w = m ? {minus_inf} : (T)(w * scale)"
            else:
                params, body = "T m, float64 scale", "w = (T)(w * scale) + m"
            kernel = self.xp.ElementwiseKernel(params, "T w", body, f"minigrad_{kind}_mask")
            self._kernels[kind, None] = kernel
        return kernel

    def softmax_backward(self, g: Any, w: Any, scale: float = 1.0) -> Any:
        g = self.xp.ascontiguousarray(g)
        if g.shape != w.shape or not self._rows_fit(w, g):
            return None
        n = w.shape[-1]
        rows = w.size // n
        out = self.xp.empty_like(w)
        args = (g, w, out, np.int64(rows), np.int32(n), w.dtype.type(scale))
        self._kernel("softmax_backward_rows", w.dtype)((rows,), (self._threads(n),), args)
        return out

    def layer_norm_forward(self, x: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any] | None:
        affine = [a for a in (weight, bias) if a is not None]
        if x.ndim != 2 or not self._rows_fit(x, *affine) or any(a.shape != x.shape[-1:] for a in affine):
            return None
        rows, n = x.shape
        out = self.xp.empty_like(x)
        mean = self.xp.empty((rows, 1), dtype=x.dtype)
        rstd = self.xp.empty_like(mean)
        flags = (1 if weight is not None else 0) | (2 if bias is not None else 0)
        args = (x, weight if weight is not None else x, bias if bias is not None else x, out, mean, rstd,
                np.int64(rows), np.int32(n), x.dtype.type(eps), np.int32(flags))  # fmt: skip
        self._kernel("layer_norm_forward", x.dtype)((rows,), (self._threads(n),), args)
        return out, mean, rstd

    def layer_norm_backward(
        self, g: Any, x: Any, mean: Any, rstd: Any, weight: Any, want_dx: bool, want_dweight: bool, want_dbias: bool
    ) -> tuple[Any, Any, Any] | None:
        want_gxhat = want_dweight
        g = self.xp.ascontiguousarray(g)
        arrays = [x, g, mean, rstd] + ([weight] if weight is not None else [])
        if x.ndim != 2 or g.shape != x.shape or mean.size != x.shape[0] or not self._rows_fit(*arrays):
            return None
        if weight is not None and weight.shape != x.shape[-1:]:
            return None
        rows, n = x.shape
        dx = self.xp.empty_like(x) if want_dx else None
        gxhat = self.xp.empty_like(x) if want_gxhat else None
        flags = (1 if weight is not None else 0) | (2 if want_dx else 0) | (4 if want_gxhat else 0)
        args = (g, x, mean, rstd, weight if weight is not None else x, dx if want_dx else x,
                gxhat if want_gxhat else x, np.int64(rows), np.int32(n), np.int32(flags))  # fmt: skip
        self._kernel("layer_norm_backward", x.dtype)((rows,), (self._threads(n),), args)
        return dx, (self.col_sum(gxhat) if want_dweight else None), (self.col_sum(g) if want_dbias else None)

    def row_max(self, x: Any) -> Any:
        out = self._row_reduce(x, None, _ROW_MAX)
        return super().row_max(x) if out is None else out

    def row_sum(self, x: Any) -> Any:
        out = self._row_reduce(x, None, _ROW_SUM)
        return super().row_sum(x) if out is None else out

    def row_dot(self, a: Any, b: Any) -> Any:
        out = self._row_reduce(a, b, _ROW_DOT)
        return super().row_dot(a, b) if out is None else out

    def col_sum(self, x: Any) -> Any:
        if x.ndim != 2 or x.dtype not in _BLAS_FLOATS or x.size == 0 or not x.flags.c_contiguous:
            return super().col_sum(x)
        rows, cols = x.shape
        out = self.xp.empty(cols, dtype=x.dtype)
        kernel = self._kernel("col_sum", x.dtype)
        kernel(((cols + 31) // 32,), (32, 32), (x, out, np.int64(rows), np.int64(cols)))
        return out

    def matmul2d(self, a: Any, b: Any) -> Any:
        """``a @ b`` as one cuBLAS call made here: CuPy's ``matmul`` spends more CPU time
        on checks and dispatch than the product takes on the GPU (benchmarks/cupy_overhead.py).
        Falls back to CuPy for other dtypes, layouts or empty matrices, or when the
        environment sets ``MINIGRAD_CUBLAS=0``."""
        if self._cublas is None or not self._cublas_fits(a, b):
            return a @ b
        cublas, handle, scalars = self._cublas
        m, k = a.shape
        n = b.shape[1]
        out = self.xp.empty((m, n), dtype=a.dtype)
        # cuBLAS is column-major: row-major out (m, n) is column-major out^T = b^T a^T. A
        # C-contiguous row-major matrix is its transpose to cuBLAS (no op); an F-contiguous
        # one (a transposed view) is itself, so cuBLAS transposes it (op T).
        op_b, ldb = (cublas.CUBLAS_OP_N, n) if b.flags.c_contiguous else (cublas.CUBLAS_OP_T, k)
        op_a, lda = (cublas.CUBLAS_OP_N, k) if a.flags.c_contiguous else (cublas.CUBLAS_OP_T, m)
        gemm, one, zero = scalars[a.dtype]
        gemm(handle, op_b, op_a, n, m, k, one.ctypes.data, b.data.ptr, ldb, a.data.ptr, lda,
             zero.ctypes.data, out.data.ptr, n)  # fmt: skip
        return out

    @staticmethod
    def _cublas_fits(a: Any, b: Any) -> bool:
        return (
            a.ndim == 2
            and b.ndim == 2
            and a.dtype == b.dtype
            and a.dtype in _BLAS_FLOATS
            and a.shape[1] == b.shape[0]
            and a.size > 0
            and b.size > 0
            and max(a.shape + b.shape) < 2**31
            and (a.flags.c_contiguous or a.flags.f_contiguous)
            and (b.flags.c_contiguous or b.flags.f_contiguous)
        )

    def _init_cublas(self) -> Any:
        """(cublas module, handle, {dtype: (gemm, 1, 0)}), or None when cuBLAS cannot be
        called directly (another CuPy layout, or MINIGRAD_CUBLAS=0)."""
        if os.environ.get("MINIGRAD_CUBLAS", "1") == "0":
            return None
        try:
            from cupy_backends.cuda.libs import cublas

            handle = self.xp.cuda.device.get_cublas_handle()
            scalars = {
                float32: (cublas.sgemm, np.array(1.0, float32), np.array(0.0, float32)),
                float64: (cublas.dgemm, np.array(1.0, float64), np.array(0.0, float64)),
            }
        except Exception:  # noqa: BLE001 - any failure means: use CuPy's matmul
            return None
        self._cublas = cublas, handle, scalars
        try:  # a first product, checked against CuPy's, before any op relies on the direct call
            xp = self.xp
            a, b = xp.arange(6, dtype=float32).reshape(2, 3), xp.arange(12, dtype=float32).reshape(4, 3).T
            c, d = xp.arange(6, dtype=float32).reshape(3, 2).T, xp.arange(12, dtype=float32).reshape(3, 4)
            ok = bool((self.matmul2d(a, b) == a @ b).all()) and bool((self.matmul2d(c, d) == c @ d).all())
        except Exception:  # noqa: BLE001
            ok = False
        return (cublas, handle, scalars) if ok else None

    def from_host(self, array: np.ndarray) -> Any:
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        return self.xp.asnumpy(array)

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        if hasattr(self.xp.add, "at"):  # CuPy >= 13
            self.xp.add.at(target, index, values)
        else:
            self._cupyx.scatter_add(target, index, values)

    def adam_update(
        self,
        param: Any,
        grad: Any,
        exp_avg: Any,
        exp_avg_sq: Any,
        *,
        beta1: float,
        beta2: float,
        step_size: float,
        bias_correction2_sqrt: float,
        eps: float,
    ) -> None:
        """The same update as :meth:`Backend.adam_update`, as one elementwise kernel."""
        if self._adam_kernel is None:
            # p, m and v are both read and written (in-place outputs); the scalars stay double
            self._adam_kernel = self.xp.ElementwiseKernel(
                "T g, float64 b1, float64 b2, float64 step_size, float64 bc2_sqrt, float64 eps",
                "T p, T m, T v",
                """
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                p = p - step_size * m / (sqrt((double)v) / bc2_sqrt + eps);
                """,
                "minigrad_adam_update",
            )
        self._adam_kernel(grad, beta1, beta2, step_size, bias_correction2_sqrt, eps, param, exp_avg, exp_avg_sq)

    def erf(self, array: Any) -> Any:
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(array)

    def seed(self, seed: int) -> None:
        self._seed = seed
        self._generator = self.xp.random.RandomState(seed)

    def get_rng_state(self) -> dict[str, Any]:
        return {"seed": self._seed, "note": "CuPy generator state is not saved; resumed GPU runs reseed"}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        if state.get("seed") is not None:
            self.seed(int(state["seed"]))

    def uniform(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.generator.random_sample(shape, dtype=dtype)

    def normal(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.generator.standard_normal(shape, dtype=dtype)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Any:
        return self.generator.randint(low, high, size=shape, dtype=np.int64)


# ---- the registry of devices -----------------------------------------------------
_BACKENDS: dict[str, Backend] = {"cpu": NumpyBackend()}
_FACTORIES = {"cuda": CupyBackend}
_state = {"device": "cpu", "dtype": float32, "seed": None}


def normalize_device(device: str | None) -> str:
    if device is None:
        return _state["device"]
    if not isinstance(device, str):
        device = str(device)
    name = device.split(":", 1)[0] if device.startswith("cuda") else device
    return name


def get_backend(device: str | None = None) -> Backend:
    """The backend for ``device`` (default: the process default device)."""
    name = normalize_device(device)
    backend = _BACKENDS.get(name)
    if backend is None:
        factory = _FACTORIES.get(name)
        if factory is None:
            known = sorted(set(_BACKENDS) | set(_FACTORIES))
            raise BackendError(f"unknown device {device!r}; expected one of {known}")
        backend = factory()
        if _state["seed"] is not None:
            backend.seed(_state["seed"])
        _BACKENDS[name] = backend
    return backend


def register_backend(backend: Backend) -> None:
    """Add (or replace) the backend for ``backend.device``; used by tests."""
    if _state["seed"] is not None:
        backend.seed(_state["seed"])
    _BACKENDS[backend.device] = backend


def unregister_backend(device: str) -> None:
    if device == "cpu":
        raise ValueError("the cpu backend cannot be removed")
    _BACKENDS.pop(device, None)
    if _state["device"] == device:
        _state["device"] = "cpu"


def is_available(device: str) -> bool:
    """True when ``device`` can be used (for ``"cuda"``: CuPy installed and a GPU present)."""
    try:
        get_backend(device)
    except BackendError:
        return False
    return True


def set_default_device(device: str) -> None:
    """Device used by creation functions when ``device=`` is not given."""
    get_backend(device)  # fail early with a clear message
    _state["device"] = normalize_device(device)


def get_default_device() -> str:
    return _state["device"]


def set_default_dtype(dtype: Any) -> None:
    """Floating dtype of new tensors made from Python floats (``"float32"`` or ``"float64"``)."""
    dt = as_dtype(dtype)
    if not is_floating(dt):
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dt}")
    _state["dtype"] = dt


def get_default_dtype() -> np.dtype:
    return _state["dtype"]


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device (parameter init, dropout, randn...)."""
    _state["seed"] = int(seed)
    for backend in _BACKENDS.values():
        backend.seed(int(seed))


def _initial_seed() -> int:
    return _state["seed"] if _state["seed"] is not None else 0


def host_array(data: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """A NumPy array from Python data (used by creation functions and data loading)."""
    return np.asarray(data, dtype=dtype)


def is_host_array(obj: Any) -> bool:
    return isinstance(obj, (np.ndarray, np.generic))


def find_backend(array: Any) -> Backend:
    """The registered backend whose array type is exactly ``type(array)``."""
    for backend in _BACKENDS.values():
        if type(array) is backend.array_type:
            return backend
    for backend in _BACKENDS.values():
        if isinstance(array, backend.array_type):
            return backend
    raise BackendError(f"no backend holds arrays of type {type(array).__name__}")


_env_device = os.environ.get("MINIGRAD_DEVICE")
if _env_device:
    set_default_device(_env_device)
