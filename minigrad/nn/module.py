"""``Module`` and ``Parameter``: the building blocks of models, in PyTorch's spirit.

A Module registers the Parameters and submodules assigned to it as attributes, in the
order they were assigned (never a set's order), so ``parameters()`` and
``state_dict()`` list them the same way every run. Calling a module runs its
``forward`` inside a *scope* (``minigrad.autograd.push_scope``), so every op it records
knows which module made it: ``minigrad.viz`` draws those scopes as labelled boxes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import backend as B
from ..autograd import pop_scope, push_scope
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires grad by default)."""

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None, device: str | None = None) -> None:
        if isinstance(data, Tensor) and dtype is None:
            dtype = data.dtype
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    @classmethod
    def _make(cls, data: Any, device: str, requires_grad: bool, ctx: Any) -> Tensor:
        """What ops make from a Parameter is a plain Tensor (as in PyTorch): assigning a
        result to a module attribute must not register it as a parameter."""
        return Tensor._make(data, device, requires_grad, ctx)


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model. Subclasses define ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_persistent", set())
        object.__setattr__(self, "training", True)

    # ---- registration ---------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if isinstance(value, Parameter):
            home = self._parameters
        elif isinstance(value, Module):
            home = self._modules
        elif name in self._buffers and (value is None or isinstance(value, Tensor)):
            home = self._buffers  # a tensor assigned to a buffer's name replaces the buffer
        else:
            home = None
        # reassigning keeps the name's slot (as PyTorch); only other stores forget the name
        for store in (self._parameters, self._modules, self._buffers):
            if store is not home:
                store.pop(name, None)
        if home is None:
            object.__setattr__(self, name, value)
            return
        home[name] = value
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: parameters, submodules and buffers
        d = self.__dict__
        for store in ("_parameters", "_modules", "_buffers"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._modules, self._buffers):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that belongs to the module's state but is not trained (e.g. a table)."""
        self._buffers[name] = tensor
        if persistent:
            self._persistent.add(name)
        else:
            self._persistent.discard(name)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # ---- calling ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        push_scope(self)
        try:
            return self.forward(*args, **kwargs)
        finally:
            pop_scope()

    # ---- traversal ------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, with dotted paths."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def apply(self, fn: Any) -> Module:
        """Call ``fn(module)`` on every submodule (children first), then on this module, and
        return this module (as ``torch.nn.Module.apply``: e.g. a custom initialization)."""
        for child in self._modules.values():
            if child is not None:
                child.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted path, parameter) pairs in definition order, each parameter once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, module in modules:
            for pname, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mname, module in self.named_modules(prefix):
            for bname, b in module._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    # ---- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- device and dtype -------------------------------------------------------------------------
    def to(self, device: str | None = None, dtype: Any = None) -> Module:
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``, in place."""
        dt = None if dtype is None else B.as_dtype(dtype)
        target = None if device is None else B.get_backend(device)

        def convert(t: Tensor) -> None:
            data = t.data
            if target is not None and t.device != target.device:
                data = target.from_host(t.backend.to_host(data))
                t.device = target.device
            if dt is not None and data.dtype.kind == "f" and data.dtype != dt:
                data = data.astype(dt)
            t.data = data

        for module in self.modules():
            for p in module._parameters.values():
                if p is not None:
                    convert(p)
                    if p.grad is not None:
                        convert(p.grad)
            for b in module._buffers.values():
                if b is not None:
                    convert(b)
        return self

    def double(self) -> Module:
        return self.to(dtype=B.float64)

    def float(self) -> Module:
        return self.to(dtype=B.float32)

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted path (detached tensors sharing data)."""
        state: OrderedDict[str, Tensor] = OrderedDict()
        for mname, module in self.named_modules():
            for pname, p in module._parameters.items():
                if p is not None:
                    state[f"{mname}.{pname}" if mname else pname] = p.detach()
            for bname, b in module._buffers.items():
                if b is not None and bname in module._persistent:
                    state[f"{mname}.{bname}" if mname else bname] = b.detach()
        return state

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors or NumPy arrays) into parameters and buffers, in place.

        Shapes must match exactly; with ``strict`` (the default) missing and unexpected
        keys are errors too. Every problem is reported by key name.
        """
        own = self.state_dict()
        targets: dict[str, Tensor] = {}
        for mname, module in self.named_modules():
            for store in (module._parameters, module._buffers):
                for n, t in store.items():
                    if t is not None:
                        targets[f"{mname}.{n}" if mname else n] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        for key, value in state_dict.items():
            if key not in own:
                continue
            shape = tuple(value.shape)
            if shape != own[key].shape:
                problems.append(f"{key}: checkpoint shape {shape} != model shape {own[key].shape}")
        if strict:
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(
                f"load_state_dict into {type(self).__name__} failed:\n  " + "\n  ".join(problems)
            )
        for key, value in state_dict.items():
            if key not in own:
                continue
            target = targets[key]
            source = value.data if isinstance(value, Tensor) else value
            if isinstance(value, Tensor) and value.device != target.device:
                source = value.backend.to_host(source)
            new = Tensor(source, dtype=target.dtype, device=target.device).data
            target.data = new
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        # PyTorch's layout: a one-line extra_repr stays inline only for a leaf module;
        # otherwise it goes on its own line(s) above the children
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        lines += [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({extra})"
        if not lines:
            return f"{type(self).__name__}()"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
