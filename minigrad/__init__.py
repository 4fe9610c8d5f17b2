"""minigrad: a small reverse-mode autograd engine on NumPy (CPU) or CuPy (GPU).

    import minigrad
    x = minigrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad        # tensor([2., 4., 6.])
"""

import os as _os
import sys as _sys

from .allocator import keep_freed_memory as _keep_freed_memory
from .parallel import OPENBLAS_SPIN_SETTING as _SPIN

if "numpy" not in _sys.modules:  # OpenBLAS reads it when NumPy loads; see minigrad.parallel
    _os.environ.setdefault(*_SPIN)
_keep_freed_memory()  # glibc: reuse freed arrays' pages instead of faulting in new ones; see minigrad.allocator

from . import functional, nn, optim
from .autograd import Function, enable_grad, grad, is_grad_enabled, no_grad, scope, set_grad_enabled
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
    full,
    full_like,
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
from .data_parallel import data_parallel_backward
from .functional import cat, concat, split, stack, where
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .parallel import get_num_threads, set_num_threads
from .tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
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
    "get_default_device",
    "get_default_dtype",
    "get_num_threads",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "int32",
    "int64",
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
