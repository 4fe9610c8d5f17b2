"""The compiled loops behind ``minigrad.accel.numba_gemm``: slices of a product, one BLAS call
per numba thread; and a Linear layer's bias, added and summed on the same threads.

The BLAS functions (NumPy's ``cblas_sgemm`` and ``cblas_dgemm``) arrive as addresses, and
``_cblas_gemm`` calls the one at an address: the compiled loops hold no address of this
process, so numba can cache them like the other kernels.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .numba_loops import BLOCKS, _add_blocks, _block, _parallel

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_OPTIONS = {"cache": True, "nogil": True}


def _gemm_intrinsic(size_bits: int):
    @intrinsic
    def call(typingctx, fn, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """cblas_?gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) at address fn."""
        sig = types.void(fn, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

        def codegen(context, builder, signature, args):
            enum, size, ptr = ir.IntType(32), ir.IntType(size_bits), ir.IntType(8).as_pointer()
            real = context.get_value_type(signature.args[7])
            params = [enum] * 3 + [size] * 3 + [real, ptr, size, ptr, size, real, ptr, size]
            fnty = ir.FunctionType(ir.VoidType(), params)
            target = builder.inttoptr(args[0], fnty.as_pointer())

            def cast(value, to):
                return builder.trunc(value, to) if value.type.width > to.width else value

            o, t_a, t_b = (cast(v, enum) for v in args[1:4])
            dims = [cast(v, size) for v in args[4:7]]
            pa, pb, pc = (builder.inttoptr(args[i], ptr) for i in (8, 10, 13))
            lda_, ldb_, ldc_ = (cast(args[i], size) for i in (9, 11, 14))
            builder.call(target, [o, t_a, t_b, *dims, args[7], pa, lda_, pb, ldb_, args[12], pc, ldc_])
            return context.get_dummy_value()

        return sig, codegen

    return call


_gemm64, _gemm32 = _gemm_intrinsic(64), _gemm_intrinsic(32)


@njit(**_OPTIONS)
def _call(fns, m, n, k, a_ptr, ta, lda, b_ptr, tb, ldb, c_ptr, ldc, single):
    """One BLAS product on this thread: c = a @ b, for fns = (cblas_sgemm's address,
    cblas_dgemm's address, 64 when the library's sizes are 64-bit integers, else 32)."""
    t_a = TRANS if ta else NO_TRANS
    t_b = TRANS if tb else NO_TRANS
    one32, zero32 = np.float32(1.0), np.float32(0.0)
    if single and fns[2] == 64:
        _gemm64(fns[0], ROW_MAJOR, t_a, t_b, m, n, k, one32, a_ptr, lda, b_ptr, ldb, zero32, c_ptr, ldc)
    elif single:
        _gemm32(fns[0], ROW_MAJOR, t_a, t_b, m, n, k, one32, a_ptr, lda, b_ptr, ldb, zero32, c_ptr, ldc)
    elif fns[2] == 64:
        _gemm64(fns[1], ROW_MAJOR, t_a, t_b, m, n, k, 1.0, a_ptr, lda, b_ptr, ldb, 0.0, c_ptr, ldc)
    else:
        _gemm32(fns[1], ROW_MAJOR, t_a, t_b, m, n, k, 1.0, a_ptr, lda, b_ptr, ldb, 0.0, c_ptr, ldc)


@njit(**_OPTIONS)
def _slice(fns, a, ta, lda, b, tb, ldb, c, t, parts):
    """Slice ``t`` of ``parts`` of c = a @ b: c's rows, or its columns when it has more."""
    m, k = a.shape
    n = b.shape[1]
    item = c.itemsize
    by_rows = m >= n
    total = m if by_rows else n
    lo = t * total // parts
    hi = (t + 1) * total // parts
    if by_rows:
        _call(fns, hi - lo, n, k, a.ctypes.data + lo * a.strides[0], ta, lda, b.ctypes.data, tb, ldb,
              c.ctypes.data + lo * n * item, n, item == 4)  # fmt: skip
    else:
        _call(fns, m, hi - lo, k, a.ctypes.data, ta, lda, b.ctypes.data + lo * b.strides[1], tb, ldb,
              c.ctypes.data + lo * item, n, item == 4)  # fmt: skip


@njit(parallel=True, **_OPTIONS)
def gemm(fns, a, ta, lda, b, tb, ldb, c, parts):
    """c = a @ b (c C-contiguous), its rows (or columns, when it has more) cut into ``parts``."""
    parts = max(1, min(parts, max(a.shape[0], b.shape[1])))
    for t in prange(parts):
        _slice(fns, a, ta, lda, b, tb, ldb, c, t, parts)


@njit(parallel=True, **_OPTIONS)
def gemm_pair(fns, a, ta, lda, b, tb, ldb, c, a2, ta2, lda2, b2, tb2, ldb2, c2, parts):
    """c = a @ b and c2 = a2 @ b2 at once, half of the ``parts`` threads on each (a Linear
    layer's two gradient products, which cost the same): on two threads each product runs
    whole, as one BLAS call, and neither thread waits between the two."""
    half = max(1, parts // 2)
    for t in prange(2 * half):
        if t < half:
            _slice(fns, a, ta, lda, b, tb, ldb, c, t, half)
        else:
            _slice(fns, a2, ta2, lda2, b2, tb2, ldb2, c2, t - half, half)


@njit(parallel=True, **_OPTIONS)
def gemm_stack(fns, a, ta, lda, b, tb, ldb, c, ldc, parts):
    """c[i, j] = a[i, j] @ b[i, j] for 4-D stacks, the stack cut into ``parts``; each c[i, j]
    has rows ``ldc`` elements apart and contiguous columns."""
    outer, inner, m, k = a.shape
    n = b.shape[3]
    count = outer * inner
    item = c.itemsize
    single = item == 4
    parts = max(1, min(parts, count))
    for t in prange(parts):
        for s in range(t * count // parts, (t + 1) * count // parts):
            i, j = s // inner, s % inner
            _call(fns, m, n, k, a.ctypes.data + i * a.strides[0] + j * a.strides[1], ta, lda,
                  b.ctypes.data + i * b.strides[0] + j * b.strides[1], tb, ldb,
                  c.ctypes.data + i * c.strides[0] + j * c.strides[1], ldc, single)  # fmt: skip


@_parallel
def bias_add(out, bias):
    """In place on out (rows, n): out += bias (n,), row by row."""
    for r in prange(out.shape[0]):
        o = out[r]
        for j in range(o.size):
            o[j] = o[j] + bias[j]


@_parallel
def column_sum(g):
    """sum_rows g (n,) for g (rows, n): a bias's gradient, summed per block of rows."""
    rows, n = g.shape
    blocks = max(1, min(rows, BLOCKS))
    parts = np.zeros((blocks, n), dtype=g.dtype)
    for b in prange(blocks):
        lo, hi = _block(b, blocks, rows)
        part = parts[b]
        for r in range(lo, hi):
            gr = g[r]
            for j in range(n):
                part[j] += gr[j]
    total = np.zeros(n, dtype=g.dtype)
    _add_blocks(parts, total)
    return total
