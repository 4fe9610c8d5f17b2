"""minigrad: a small reverse-mode autograd engine on NumPy (CPU) or CuPy (GPU).

    import minigrad
    x = minigrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad        # tensor([2., 4., 6.])

Importing minigrad changes nothing in the process. The faster implementations (numba
CPU kernels, CuPy kernels, threads) are opt-in: ``minigrad.accel.enable()``, or
``MINIGRAD_ACCEL=1`` in the environment, which enables them at import.
"""

import os as _os

from . import accel, functional, nn, optim
from .accel import data_parallel_backward, get_num_threads, set_num_threads
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled
from .autograd import Function, enable_grad, is_grad_enabled, no_grad, scope, set_grad_enabled
from .backend import (
    BackendError,
    bool_,
    float16,
    float32,
    float64,
    get_default_device,
    get_default_dtype,
    int32,
    int64,
    is_available,
    manual_seed,
    set_default_device,
    set_default_dtype,
)
from .creation import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .engine import grad
from .functional import cat, concat, split, stack, where
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "BackendError",
    "Function",
    "GradcheckError",
    "Tensor",
    "accel",
    "arange",
    "empty",
    "eye",
    "from_numpy",
    "linspace",
    "bool_",
    "cat",
    "concat",
    "enable_grad",
    "float16",
    "float32",
    "float64",
    "full",
    "full_like",
    "functional",
    "nn",
    "optim",
    "data_parallel_backward",
    "detect_anomaly",
    "get_default_device",
    "get_default_dtype",
    "get_num_threads",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "int32",
    "int64",
    "is_anomaly_enabled",
    "is_available",
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "scope",
    "set_default_device",
    "set_default_dtype",
    "set_num_threads",
    "set_grad_enabled",
    "split",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]

if _os.environ.get("MINIGRAD_ACCEL") == "1":  # the user asked for the acceleration at import
    accel.enable()
