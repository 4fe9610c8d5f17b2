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
__all__ += ["ModuleDict", "RMSNorm"]
