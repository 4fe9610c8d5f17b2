"""Gradient checking: compare backward with finite differences.

For a function f with inputs x and a *random* upstream gradient u (an all-ones
upstream hides bugs: sum(softmax(x)) is constant, so any softmax backward would pass),
the scalar L(x) = sum(u * f(x)) has dL/dx = the vector-Jacobian product that backward
computes. Its numerical estimate by central differences is

    dL/dx_j  ~  (L(x + eps e_j) - L(x - eps e_j)) / (2 eps),

accurate to O(eps**2), which is why checks run in float64.

* ``mode="full"`` perturbs every element (exact location of any error);
* ``mode="directional"`` perturbs each input along one random direction v and compares
  the directional derivative (L(x + eps v) - L(x - eps v)) / 2eps with <dL/dx, v>:
  two evaluations per input, fast enough for a whole encoder layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import backend as B
from .autograd import enable_grad, no_grad
from .engine import grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytical and numerical gradients disagree."""


def _as_tuple(out: Any) -> tuple[Tensor, ...]:
    return out if isinstance(out, tuple) else tuple(out) if isinstance(out, list) else (out,)


def _random_like(t: Tensor, rng: Any) -> Tensor:
    return Tensor(rng.standard_normal(t.shape), dtype="float64", device=t.device)


def _dot(a: Tensor, b: Tensor) -> float:
    return float((a * b).sum().item())


def _check_inputs(inputs: Sequence[Tensor], what: str) -> list[int]:
    checked = []
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            continue
        if t.requires_grad:
            if t.dtype != B.float64:
                raise TypeError(
                    f"{what}: input {i} has dtype {t.dtype}; finite differences need float64 "
                    "(use .double() or minigrad.set_default_dtype('float64'))"
                )
            checked.append(i)
    if not checked:
        raise ValueError(f"{what}: no input requires grad, nothing to check")
    return checked


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check the gradients of ``fn(*inputs)`` for every input that requires grad.

    Returns True on success. On failure raises :class:`GradcheckError` (or returns False
    with ``raise_exception=False``) naming the output, the input, the worst element and
    the numerical and analytical values.
    """
    if mode not in ("full", "directional"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'directional', got {mode!r}")
    inputs = list(inputs)
    checked = _check_inputs(inputs, "gradcheck")
    rng = B.np.random.default_rng(seed)
    outputs = _as_tuple(fn(*inputs))
    try:
        for k, out in enumerate(outputs):
            if not isinstance(out, Tensor) or out.dtype.kind != "f":
                continue
            u = _random_like(out, rng)
            if out.requires_grad:
                analytic = grad(out, [inputs[i] for i in checked], u, retain_graph=True, allow_unused=True)
            else:
                # no graph reached this output: its analytical gradient is zero, and the finite
                # differences must agree (a graph broken by a stray detach would pass otherwise)
                analytic = (None,) * len(checked)

            def loss(k: int = k, u: Tensor = u) -> float:
                with no_grad():
                    return _dot(_as_tuple(fn(*inputs))[k], u)

            for i, a in zip(checked, analytic):
                x = inputs[i]
                a_data = B.np.zeros(x.shape) if a is None else a.detach().numpy()
                if mode == "directional":
                    _directional(loss, x, a_data, rng, eps, atol, rtol, k, i)
                else:
                    _full(loss, x, a_data, eps, atol, rtol, k, i)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _full(
    loss: Callable[[], float], x: Tensor, analytic: Any, eps: float, atol: float, rtol: float, k: int, i: int
) -> None:
    numeric = B.np.zeros(x.shape)
    data = x.data
    for idx in B.np.ndindex(*x.shape):
        orig = data[idx].item()
        data[idx] = orig + eps
        plus = loss()
        data[idx] = orig - eps
        minus = loss()
        data[idx] = orig
        numeric[idx] = (plus - minus) / (2 * eps)
    err = B.np.abs(analytic - numeric) - (atol + rtol * B.np.abs(numeric))
    if err.size and (err.max() > 0 or not B.np.all(B.np.isfinite(analytic))):
        worst = B.np.unravel_index(B.np.nanargmax(B.np.where(B.np.isfinite(analytic), err, B.np.inf)), x.shape)
        raise GradcheckError(
            f"gradcheck: gradient of output {k} with respect to input {i} (shape {x.shape}) is wrong; "
            f"worst element {tuple(int(j) for j in worst)}: numerical {numeric[worst]:.10g}, "
            f"analytical {analytic[worst]:.10g} (atol={atol}, rtol={rtol}); "
            f"{int((err > 0).sum())} of {err.size} elements differ"
        )


def _directional(
    loss: Callable[[], float], x: Tensor, analytic: Any, rng: Any, eps: float, atol: float, rtol: float, k: int, i: int
) -> None:
    v = rng.standard_normal(x.shape)
    v /= max(B.np.linalg.norm(v), 1e-12)
    step = x.backend.from_host(v * eps)
    orig = x.data.copy()
    x.data[...] = orig + step
    plus = loss()
    x.data[...] = orig - step
    minus = loss()
    x.data[...] = orig
    numeric = (plus - minus) / (2 * eps)
    expected = float((analytic * v).sum())
    if not abs(expected - numeric) <= atol + rtol * abs(numeric):
        raise GradcheckError(
            f"gradcheck (directional): gradient of output {k} with respect to input {i} (shape {x.shape}) "
            f"is wrong: directional derivative numerical {numeric:.10g}, analytical {expected:.10g} "
            f"(atol={atol}, rtol={rtol})"
        )


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check second-order gradients: gradcheck of ``x, u -> grad(fn(x), x, u, create_graph=True)``.

    The random upstream gradients u are inputs too, so both second derivatives
    (d2L/dx2 and the mixed one) are checked.
    """
    inputs = list(inputs)
    checked = _check_inputs(inputs, "gradgradcheck")
    rng = B.np.random.default_rng(seed + 1)
    with no_grad():
        outputs = _as_tuple(fn(*inputs))
    keep = [k for k, o in enumerate(outputs) if isinstance(o, Tensor) and o.dtype.kind == "f"]
    upstream = [_random_like(outputs[k], rng).requires_grad_() for k in keep]
    n = len(inputs)

    def first_order(*args: Tensor) -> tuple[Tensor, ...]:
        xs, us = list(args[:n]), args[n:]
        with enable_grad():  # the numerical half of gradcheck calls this under no_grad
            outs = _as_tuple(fn(*xs))
            return _first_order_grads(outs, xs, us)

    def _first_order_grads(outs: tuple[Tensor, ...], xs: list[Tensor], us: Sequence[Tensor]) -> tuple[Tensor, ...]:
        roots = [outs[k] for k in keep if outs[k].requires_grad]
        ups = [u for k, u in zip(keep, us) if outs[k].requires_grad]
        grads = grad(roots, [xs[i] for i in checked], ups, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None and g.requires_grad)

    return gradcheck(first_order, inputs + upstream, eps, atol, rtol, mode, seed, raise_exception)
