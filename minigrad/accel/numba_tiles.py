"""Stacks of small matrix products in registers: attention's products, one per batch entry and head.

Attention multiplies one small pair of matrices per batch entry and head, (seq, d_head) by
(d_head, seq) for the scores. A BLAS call per pair spends much of its time on set-up made
for large matrices (packing both operands, blocking for caches the pair fits in already),
and the heads of attention's layouts lie interleaved in memory (the (batch, seq, heads,
d_head) array that splitting the heads views), so that one head's rows are far apart. Here:

* each thread takes whole batch entries (:func:`split_heads`; a batch entry's heads split
  only when there are fewer entries than threads) and first copies their b (and a, unless
  each a[i, j] lies in one block of its own) into contiguous buffers, reading memory in the
  order it lies (:func:`gather`): every row of b then comes with vector loads;
* each product c = a @ b is computed in tiles of 4 rows by 2 vectors (16 columns in float32,
  8 in float64): the tile's 8 accumulators stay in registers while p runs over k, one fused
  multiply-add per vector and step, and the tile is written to c once. numba's loops do not
  keep such a tile in registers, so :func:`_tile` writes it as LLVM vector instructions
  (``llvm.fma``; AVX2 registers on x86).

Each entry is c[i, j] = sum_p a[i, p] * b[p, j], summed in the order p = 0, 1, ..., k - 1 with
one rounding per multiply-add, whatever the thread count. :func:`fits` says which shapes
this takes (the caller, ``numba_gemm.matmul_stack``, uses BLAS for the others). Nothing
here knows tensors or autograd.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from llvmlite import binding, ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

ROWS = 4  # rows of c per tile
VECTOR_BYTES = 32  # one AVX register
MAX_PANEL_BYTES = 64 * 1024  # one b's (k, n) copy, at most; larger products stay BLAS's
UNIT_BYTES = 256 * 1024  # the b copies of one work unit, at most (they stay in the core's cache)
_OPTIONS = {"cache": True, "nogil": True}


@functools.cache
def vector_fma() -> bool:
    """Whether this CPU has the vector fused multiply-add the tiles are written for (x86: AVX2
    and FMA); elsewhere LLVM would split each tile's instructions into slow scalar calls."""
    features = binding.get_host_cpu_features()
    return bool(features.get("avx2")) and bool(features.get("fma"))


@njit(**_OPTIONS)
def columns(itemsize: int) -> int:
    """Columns of c per tile: two vectors of the dtype."""
    return 2 * VECTOR_BYTES // itemsize


def fits(m: int, k: int, n: int, itemsize: int) -> bool:
    """Whether (m, k) @ (k, n) products run in tiles: whole tiles, and a b small enough to copy."""
    return (
        m % ROWS == 0 and n % columns(itemsize) == 0 and 0 < k * n * itemsize <= MAX_PANEL_BYTES and vector_fma()
    )


@intrinsic
def _tile(typingctx, like, a, a_row, a_col, b, ldb, c, ldc, k):
    """c[r, :w] = sum_p a[r * a_row + p * a_col] * b[p * ldb : p * ldb + w] for r < ROWS, with w =
    columns(): a, b and c are addresses, the strides are in elements of ``like``'s dtype."""
    if not isinstance(like, types.Array) or like.dtype not in (types.float32, types.float64):
        return None
    bits = like.dtype.bitwidth
    sig = types.void(like, a, a_row, a_col, b, ldb, c, ldc, k)

    def codegen(context, builder, signature, args):
        _, a, a_row, a_col, b, ldb, c, ldc, k = args
        real = ir.FloatType() if bits == 32 else ir.DoubleType()
        lanes = VECTOR_BYTES * 8 // bits
        vec = ir.VectorType(real, lanes)
        align = bits // 8
        fma_type = ir.FunctionType(vec, [vec] * 3)
        fma = cgutils.get_or_insert_function(builder.module, fma_type, f"llvm.fma.v{lanes}f{bits}")
        index = a_row.type
        pa, pb, pc = (builder.inttoptr(v, ir.PointerType()) for v in (a, b, c))
        accumulators = [cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * lanes)) for _ in range(2 * ROWS)]
        undef = ir.Constant(vec, ir.Undefined)
        first = ir.Constant(ir.IntType(32), 0)
        broadcast = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        a_rows = [builder.gep(pa, [builder.mul(ir.Constant(index, r), a_row)], source_etype=real) for r in range(ROWS)]
        with cgutils.for_range(builder, k) as loop:
            p = loop.index
            row = builder.gep(pb, [builder.mul(p, ldb)], source_etype=real)
            halves = [
                builder.load(builder.gep(row, [ir.Constant(index, h * lanes)], source_etype=real), typ=vec, align=align)
                for h in range(2)
            ]
            column = builder.mul(p, a_col)
            for r in range(ROWS):
                value = builder.load(builder.gep(a_rows[r], [column], source_etype=real), typ=real)
                splat = builder.shuffle_vector(builder.insert_element(undef, value, first), undef, broadcast)
                for h in range(2):
                    acc = accumulators[2 * r + h]
                    builder.store(builder.call(fma, [splat, halves[h], builder.load(acc)]), acc)
        for r in range(ROWS):
            out = builder.gep(pc, [builder.mul(ir.Constant(index, r), ldc)], source_etype=real)
            for h in range(2):
                target = builder.gep(out, [ir.Constant(index, h * lanes)], source_etype=real)
                builder.store(builder.load(accumulators[2 * r + h]), target, align=align)
        return context.get_dummy_value()

    return sig, codegen


@njit(**_OPTIONS)
def product(a, a_row, a_col, m, panel, c, ldc):  # pragma: no cover - compiled
    """c = a @ panel, tile by tile: a (m, k) at address ``a`` with strides ``a_row`` and ``a_col``
    (in elements), panel (k, n) C-contiguous, c (m, n) at address ``c`` with rows ``ldc``
    elements apart and contiguous columns; the shapes as :func:`fits` accepts them. Addresses
    and strides, not arrays: one compiled version serves every layout."""
    k, n = panel.shape
    item = panel.itemsize
    width = columns(item)
    for r in range(0, m, ROWS):
        for j in range(0, n, width):
            _tile(panel, a + r * a_row * item, a_row, a_col, panel.ctypes.data + j * item, n,
                  c + (r * ldc + j) * item, ldc, k)  # fmt: skip


def _vectors(bits):
    """The LLVM types of one AVX register of floats of ``bits``: (element, vector, lanes)."""
    real = ir.FloatType() if bits == 32 else ir.DoubleType()
    lanes = VECTOR_BYTES * 8 // bits
    return real, ir.VectorType(real, lanes), lanes


@intrinsic
def _copy_vectors(typingctx, like, src, dst, count):
    """dst[:count * lanes] = src[:count * lanes] in whole vectors (src, dst: addresses of
    elements of ``like``'s dtype)."""
    if not isinstance(like, types.Array) or like.dtype not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        _, src, dst, count = args
        real, vec, lanes = _vectors(like.dtype.bitwidth)
        align = like.dtype.bitwidth // 8
        ps, pd = (builder.inttoptr(v, ir.PointerType()) for v in (src, dst))
        with cgutils.for_range(builder, count) as loop:
            at = builder.mul(loop.index, ir.Constant(count.type, lanes))
            value = builder.load(builder.gep(ps, [at], source_etype=real), typ=vec, align=align)
            builder.store(value, builder.gep(pd, [at], source_etype=real), align=align)
        return context.get_dummy_value()

    return types.void(like, src, dst, count), codegen


def _transpose_masks(lanes):
    """Each stage of an in-register transpose of lanes x lanes: (row i, row j, mask) per new row,
    the masks the two-source shuffles that x86's unpack, shuffle and permute instructions do."""
    if lanes == 8:
        lo, hi = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
        lo2, hi2 = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
        lo3, hi3 = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        return [
            [(p, p + 1, mask) for p in range(0, 8, 2) for mask in (lo, hi)],
            [(i, i + 2, mask) for i in (0, 1, 4, 5) for mask in (lo2, hi2)],
            [(i, i + 4, mask) for mask in (lo3, hi3) for i in range(4)],
        ]
    lo, hi, lo2, hi2 = [0, 4, 2, 6], [1, 5, 3, 7], [0, 1, 4, 5], [2, 3, 6, 7]
    return [[(0, 1, lo), (0, 1, hi), (2, 3, lo), (2, 3, hi)], [(0, 2, lo2), (1, 3, lo2), (0, 2, hi2), (1, 3, hi2)]]


@intrinsic
def _transpose_block(typingctx, like, src, src_row, dst, dst_row):
    """dst[l * dst_row + t] = src[t * src_row + l] for t, l < lanes: one lanes x lanes block,
    loaded as ``lanes`` vectors, transposed in registers, stored as ``lanes`` vectors."""
    if not isinstance(like, types.Array) or like.dtype not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        _, src, src_row, dst, dst_row = args
        real, vec, lanes = _vectors(like.dtype.bitwidth)
        align = like.dtype.bitwidth // 8
        ps, pd = (builder.inttoptr(v, ir.PointerType()) for v in (src, dst))
        index = src_row.type
        rows = [
            builder.load(builder.gep(ps, [builder.mul(ir.Constant(index, t), src_row)], source_etype=real), typ=vec,
                         align=align)
            for t in range(lanes)
        ]  # fmt: skip
        for stage in _transpose_masks(lanes):
            mask = [ir.Constant(ir.VectorType(ir.IntType(32), lanes), m) for _, _, m in stage]
            rows = [builder.shuffle_vector(rows[i], rows[j], mk) for (i, j, _), mk in zip(stage, mask)]
        for t in range(lanes):
            target = builder.gep(pd, [builder.mul(ir.Constant(index, t), dst_row)], source_etype=real)
            builder.store(rows[t], target, align=align)
        return context.get_dummy_value()

    return types.void(like, src, src_row, dst, dst_row), codegen


@njit(**_OPTIONS)
def gather(x, buf):  # pragma: no cover - compiled
    """buf (H, r, c), C-contiguous = x (H, r, c) with its rows or its columns contiguous, read
    along memory in attention's layouts, where the heads of one token lie next to each other:
    rows (or columns) outermost, then the heads, then the contiguous axis. Rows are copied in
    whole vectors; columns (a transpose) in blocks transposed in registers; the rest (a tail
    shorter than a vector) one element at a time."""
    heads, r, c = x.shape
    item = x.itemsize
    lanes = VECTOR_BYTES // item
    s0, s1, s2 = x.strides[0] // item, x.strides[1] // item, x.strides[2] // item
    src, dst = x.ctypes.data, buf.ctypes.data
    if s2 == 1:
        whole = c - c % lanes
        for i in range(r):
            for h in range(heads):
                _copy_vectors(buf, src + (h * s0 + i * s1) * item, dst + (h * r + i) * c * item, whole // lanes)
                for j in range(whole, c):
                    buf[h, i, j] = x[h, i, j]
        return
    whole_r = r - r % lanes if s1 == 1 else 0
    for j0 in range(0, c, lanes):
        j1 = min(c, j0 + lanes)
        blocked = whole_r if j1 - j0 == lanes else 0  # rows done in blocks for these columns
        for h in range(heads):
            for p0 in range(0, blocked, lanes):
                _transpose_block(buf, src + (h * s0 + p0 + j0 * s2) * item, s2,
                                 dst + ((h * r + p0) * c + j0) * item, c)  # fmt: skip
            for j in range(j0, j1):
                for i in range(blocked, r):
                    buf[h, i, j] = x[h, i, j]


@njit(**_OPTIONS)
def split_heads(outer, inner, parts, panel_bytes):  # pragma: no cover - compiled
    """Work units over an (outer, inner) stack for ``parts`` threads: each unit is a range of
    the heads (inner) of one batch entry (outer), the heads split only as far as needed to
    give every thread a unit and to keep a unit's copies of b (``panel_bytes`` each) within
    UNIT_BYTES. Returns (units, units per entry)."""
    per = min(inner, max(1, (parts + outer - 1) // outer))
    most = max(1, UNIT_BYTES // panel_bytes)  # heads per unit
    per = max(per, (inner + most - 1) // most)
    return outer * per, per


@njit(**_OPTIONS)
def unit_range(u, inner, per):  # pragma: no cover - compiled
    """(entry, first head, end head) of work unit u."""
    i, c = u // per, u % per
    return i, c * inner // per, (c + 1) * inner // per


@njit(**_OPTIONS)
def is_compact(x):  # pragma: no cover - compiled
    """Whether the matrices x[i, j] of a 4-D stack (non-negative strides) lie one after the
    other along j, none inside another's span: then each is read where it is, without a copy."""
    span = (x.shape[2] - 1) * x.strides[2] + (x.shape[3] - 1) * x.strides[3] + x.itemsize
    return x.shape[1] == 1 or x.strides[1] >= span


def _stack_product(a, b, c, parts):  # pragma: no cover - compiled
    """The loops of :func:`stack_product`, compiled by it once per dtype."""
    outer, inner, m, k = a.shape
    n = b.shape[3]
    item = c.itemsize
    units, per = split_heads(outer, inner, parts, k * n * item)
    parts = min(parts, units)
    most = (inner + per - 1) // per  # heads in a unit
    copies = 0 if is_compact(a) else most
    a_row, a_col, ldc = a.strides[2] // item, a.strides[3] // item, c.strides[2] // item
    for t in prange(parts):
        panels = np.empty((most, k, n), dtype=c.dtype)
        rows = np.empty((copies, m, k), dtype=c.dtype)
        for u in range(t * units // parts, (t + 1) * units // parts):
            i, h0, h1 = unit_range(u, inner, per)
            gather(b[i, h0:h1], panels)
            if copies:
                gather(a[i, h0:h1], rows)
            for j in range(h0, h1):
                if copies:  # a's copy: C-contiguous (m, k)
                    product(rows[j - h0].ctypes.data, k, 1, m, panels[j - h0], c[i, j].ctypes.data, ldc)
                else:
                    product(a[i, j].ctypes.data, a_row, a_col, m, panels[j - h0], c[i, j].ctypes.data, ldc)


_compiled: dict[np.dtype, Any] = {}  # dtype -> stack_product's kernel for it


def stack_product(a: np.ndarray, b: np.ndarray, c: np.ndarray, parts: int) -> None:
    """c[i, j] = a[i, j] @ b[i, j] for 4-D stacks of one dtype whose shapes :func:`fits`
    accepts, c's columns contiguous, on ``parts`` numba threads: each takes whole units of
    :func:`split_heads`, copies their b (and a, unless compact) in the order they lie in
    memory, then multiplies. The kernel is compiled once per dtype for arrays of any layout,
    read-only operands included (numba would compile one for each mix otherwise)."""
    kernel = _compiled.get(c.dtype)
    if kernel is None:
        kernel = njit(parallel=True, **_OPTIONS)(_stack_product)
        real = numba.from_dtype(c.dtype)
        operand = types.Array(real, 4, "A", readonly=True)  # takes writable arrays too
        kernel.compile((operand, operand, types.Array(real, 4, "A"), types.intp))
        kernel.disable_compile()
        _compiled[c.dtype] = kernel
    kernel(a, b, c, parts)
