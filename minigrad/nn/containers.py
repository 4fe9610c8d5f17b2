"""``nn.ModuleDict``: submodules held by name, as ``torch.nn.ModuleDict``.

(``Sequential`` and ``ModuleList``, the containers indexed by position, are in
:mod:`minigrad.nn.layers`.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .module import Module


class ModuleDict(Module):
    """A dict of submodules, registered under their keys (so that their parameters are found,
    moved and saved); keys keep their insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check(self, key: Any, module: Any) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without '.', got {key!r}")
        if hasattr(type(self), key) or key in self.__dict__:
            raise KeyError(f"ModuleDict: key {key!r} would hide the attribute of the same name; choose another key")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: {key!r} must map to a Module, got {type(module).__name__}")

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r} (keys: {', '.join(self._modules) or 'none'})")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self._check(key, module)
        self._modules[key] = module

    def __delitem__(self, key: str) -> None:
        self[key]  # the KeyError above for a missing key
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) modules from a mapping or from (key, module) pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ModuleDict.update: expected (key, module) pairs, got {pair!r}")
            self[pair[0]] = pair[1]

    def pop(self, key: str) -> Module:
        module = self[key]
        del self._modules[key]
        return module

    def clear(self) -> None:
        self._modules.clear()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward: call the modules it holds, e.g. d['name'](x)")
