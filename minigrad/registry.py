"""Where faster implementations are registered beneath the reference ops.

``implementations`` maps ``(reference, device)`` to its replacement: an op class to a
subclass with the same derivative, or a reference function (such as the optimizers'
update) to a faster function with the same arguments. It is empty unless
``minigrad.accel.enable()`` filled it; ``Function.apply`` and the optimizers look up
what to run here, and the reference runs when nothing is registered.
"""

from __future__ import annotations

from typing import Any

implementations: dict[tuple[Any, str], Any] = {}


def lookup(reference: Any, device: str) -> Any:
    """The implementation registered for ``reference`` on ``device``, else ``reference``."""
    return implementations.get((reference, device), reference)


def register(reference: Any, device: str, implementation: Any) -> None:
    """Run ``implementation`` in place of ``reference`` on ``device``."""
    if isinstance(reference, type) and isinstance(implementation, type):
        if not issubclass(implementation, reference):
            raise TypeError(f"register: {implementation.__name__} must subclass {reference.__name__}")
        implementation.name = getattr(reference, "name", None) or reference.__name__.lower()
    implementations[reference, device] = implementation


def unregister(reference: Any, device: str) -> None:
    implementations.pop((reference, device), None)


def clear() -> None:
    """Back to the reference implementations everywhere."""
    implementations.clear()
