"""The compiled loop behind ``minigrad.accel.cpu.add``: a + b for two large arrays of one
shape, their elements cut into slices for numba's threads.

The adds it serves are the residual connections of a Transformer layer and the engine's
first sum of two gradients that reach one tensor: arrays of batch x seq x d_model
elements, where NumPy's add runs on one core. Each element is one IEEE addition, as in
NumPy, so the result has NumPy's bits; ``cpu.add`` checks the arrays before the call.
"""

from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def add(a, b, out, parts):
    """out = a + b for C-contiguous arrays of one shape and dtype, in ``parts`` slices."""
    x, y, z = a.reshape(a.size), b.reshape(b.size), out.reshape(out.size)
    n = z.size
    for t in prange(parts):
        lo, hi = t * n // parts, (t + 1) * n // parts
        xs, ys, zs = x[lo:hi], y[lo:hi], z[lo:hi]  # slices: the loop over them vectorizes
        for i in range(zs.size):
            zs[i] = xs[i] + ys[i]
