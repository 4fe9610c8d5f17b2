"""minigrad.nn: modules, parameters, layers and initializers."""

from .. import functional
from . import init
from .containers import ModuleDict
from .layers import (
    GELU,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Identity,
    LayerNorm,
    Linear,
    ModuleList,
    MSELoss,
    ReLU,
    Sequential,
    Tanh,
)
from .module import IncompatibleKeys, Module, Parameter
from .normalization import RMSNorm

# isort: split
from .activations import (
    ELU,
    SELU,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
)

__all__ = [
    "GELU",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Identity",
    "IncompatibleKeys",
    "LayerNorm",
    "Linear",
    "MSELoss",
    "Module",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "Tanh",
    "functional",
    "init",
]
__all__ += [
    "ELU", "SELU", "Hardswish", "Hardtanh", "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "ReLU6", "Sigmoid",
    "SiLU", "Softmax", "Softplus", "Softsign",
]  # fmt: skip
__all__ += ["ModuleDict", "RMSNorm"]
