"""Which recorded nodes may still read an array's memory in backward.

An op keeps its constant inputs (masks, targets, ...) and its output for backward. Writing
into that memory in place (``x[i] = v``, :mod:`minigrad.ops.assign`) between forward and
backward would change the gradient silently, so such a write is refused while a node that
may read the memory is alive and has not run its backward. The bookkeeping is weak: an
entry goes away with its node, and it never keeps an array alive.

Memory is identified by its root array, the one that owns it (views lead to it through
``.base``).
"""

from __future__ import annotations

import weakref
from typing import Any

# id(root array) -> {id(weak ref to the node): (weak ref to the root, weak ref to the node)}
_readers: dict[int, dict[int, tuple[Any, Any]]] = {}


def _root(array: Any) -> Any:
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def mark_saved(t: Any, node: Any) -> None:
    """Remember (weakly) that ``node`` may read ``t``'s memory in backward: ``t`` is a
    constant input of the node, or shares its output's data. The entry goes when the node does."""
    root = _root(t.data)
    key = id(root)

    def forget(node_ref: Any, key: int = key, readers: dict = _readers) -> None:
        entries = readers.get(key)
        if entries is not None:
            entries.pop(id(node_ref), None)
            if not entries:
                readers.pop(key, None)

    try:
        entry = (weakref.ref(root), weakref.ref(node, forget))
    except TypeError:  # an array type without weak references: nothing to remember
        return
    _readers.setdefault(key, {})[id(entry[1])] = entry


def readers_of(array: Any) -> list[Any]:
    """The recorded nodes, alive and not yet run by backward, that may read ``array``'s memory."""
    root = _root(array)
    nodes = []
    for array_ref, node_ref in list(_readers.get(id(root), {}).values()):
        node = node_ref()
        if array_ref() is root and node is not None and not node.released:
            nodes.append(node)
    return nodes
