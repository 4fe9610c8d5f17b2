"""The array fast path of backward agrees with the Tensor-op definition, for every op.

Ops may define ``backward_array`` (the derivative on raw arrays) next to ``backward``
(the same derivative written with Tensor ops). The engine uses the fast one for
first-order gradients and the Tensor one when ``create_graph=True``; here both run on
every case of the backend-independence table and must agree to 1e-12 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_backend_independence import CASES, _make_inputs

import minigrad
from minigrad.autograd import Function


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


FAST_OPS = sorted(
    {c for c in _all_subclasses(Function) if c.backward_array is not None and c.__module__.startswith("minigrad.ops")},
    key=lambda c: c.__name__,
)


def _grads(fn, specs, create_graph: bool):
    minigrad.manual_seed(1234)
    inputs = _make_inputs(specs, "cpu", 0)
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    diff = [o for o in outs if o.requires_grad]
    if not diff:
        return []
    rng = np.random.default_rng(7)
    ups = [minigrad.tensor(rng.standard_normal(o.shape), dtype=o.dtype) for o in diff]
    wrt = [t for t in inputs if t.requires_grad]
    grads = minigrad.grad(diff, wrt, ups, create_graph=create_graph, allow_unused=True)
    return [None if g is None else g.detach().numpy() for g in grads]


@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_matches_tensor_path(name):
    fn, specs = CASES[name]
    fast = _grads(fn, specs, create_graph=False)
    slow = _grads(fn, specs, create_graph=True)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        if a is None or b is None:
            assert a is None and b is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_every_fast_op_is_exercised(monkeypatch):
    used: set[type] = set()
    for cls in FAST_OPS:
        original = cls.__dict__.get("backward_array")
        if original is None:
            continue

        def spy(self, g, _original=original):
            used.add(type(self))
            return _original(self, g)

        monkeypatch.setattr(cls, "backward_array", spy)
    for fn, specs in CASES.values():
        _grads(fn, specs, create_graph=False)
    missing = [c.__name__ for c in FAST_OPS if c not in used]
    assert not missing, f"ops with a backward_array that no case exercises: {missing}"
