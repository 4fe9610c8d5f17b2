"""The backend: the one boundary between minigrad and an array library.

Every array a Tensor holds belongs to a *backend*: an array library bound to a device.

* ``"cpu"``  -> NumPy (always available, the default)
* ``"cuda"`` -> CuPy (the ``gpu`` extra; needs an NVIDIA GPU)

Ops compute with the array module of their inputs, ``xp`` (``numpy`` and ``cupy`` share
one API). The few things that differ between the libraries are methods here: moving
data between devices, scatter-add, the error function and the seeded random numbers.
That is all: no kernels live here (faster implementations belong to ``minigrad.accel``).

Tests register an extra backend (see ``tests/marked_backend.py``) that runs on the CPU
but marks every array it makes, to prove that no op silently falls back to NumPy.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

# dtypes are NumPy dtype objects; CuPy uses the same ones.
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

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

    def __init__(self) -> None:
        self._generator: Any = None
        self._seed: int | None = None

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


class NumpyBackend(Backend):
    """NumPy on the CPU."""


class CupyBackend(Backend):
    """CuPy on an NVIDIA GPU."""

    device = "cuda"

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

    def from_host(self, array: np.ndarray) -> Any:
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        return self.xp.asnumpy(array)

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        if hasattr(self.xp.add, "at"):  # CuPy >= 13
            self.xp.add.at(target, index, values)
        else:
            import cupyx

            cupyx.scatter_add(target, index, values)

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
