"""The cases of ops_shape_reference.npz: shape and indexing ops, einsum, losses, rms_norm.

Shared by tests/reference/make_ops_shape_reference.py (runs them with PyTorch and stores
the results) and tests/test_ops_shape.py (runs them with minigrad and compares). Each
case is (input specs, function of ``lib`` and the inputs): ``lib`` is the library's
namespace (``lib.F``: torch.nn.functional or minigrad.functional; ``lib.einsum``), and
the functions use only the names both libraries share (Tensor methods and functional
calls spelled as in PyTorch). Imports neither library.

Input specs: ("n", shape) normal floats, ("u", shape, lo, hi) uniform floats (these
require grad), ("i", values) integer and ("b", values) boolean constants, ("c", values)
float constants (weights; no gradient).
"""

from __future__ import annotations

import numpy as np


def n(*shape):
    return ("n", shape)


def u(lo, hi, *shape):
    return ("u", shape, lo, hi)


def i(values):
    return ("i", values)


def b(values):
    return ("b", values)


def c(values):
    return ("c", values)


CASES = {
    # shape and indexing
    "clone": ([n(3, 4)], lambda lib, x: x.clone() * 2.0),
    "t": ([n(3, 4)], lambda lib, x: x.t()),
    "t_1d": ([n(4)], lambda lib, x: x.t() * 1.0),
    "flip": ([n(2, 3, 4)], lambda lib, x: x.flip(0, 2)),
    "roll": ([n(3, 4)], lambda lib, x: x.roll((1, -3), (0, 1))),
    "roll_flat": ([n(3, 4)], lambda lib, x: x.roll(5)),
    "pad_constant": ([n(2, 3, 4)], lambda lib, x: lib.F.pad(x, (1, 2, 0, 3), value=1.5)),
    "pad_constant_crop": ([n(2, 3, 4)], lambda lib, x: lib.F.pad(x, (-1, 2, 1, -2, -1, 0))),
    "pad_reflect": ([n(2, 3, 4)], lambda lib, x: lib.F.pad(x, (3, 2, 1, 2), mode="reflect")),
    "pad_replicate": ([n(2, 3, 4)], lambda lib, x: lib.F.pad(x, (2, 5, 3, 1), mode="replicate")),
    "pad_circular": ([n(1, 2, 3, 4)], lambda lib, x: lib.F.pad(x, (2, 3, 1, 3), mode="circular")),
    "tril": ([n(2, 3, 4)], lambda lib, x: x.tril()),
    "tril_diag": ([n(4, 3)], lambda lib, x: x.tril(-1)),
    "triu": ([n(3, 5)], lambda lib, x: x.triu(2)),
    "repeat": ([n(2, 3)], lambda lib, x: x.repeat(2, 1, 3)),
    "tile": ([n(2, 3)], lambda lib, x: x.tile((2,))),
    "repeat_interleave": ([n(2, 3)], lambda lib, x: x.repeat_interleave(2, dim=1)),
    "repeat_interleave_tensor": ([n(3, 2), i([2, 0, 3])], lambda lib, x, r: x.repeat_interleave(r, dim=0)),
    "repeat_interleave_flat": ([n(2, 2)], lambda lib, x: x.repeat_interleave(3)),
    "chunk": ([n(5, 2)], lambda lib, x: list(x.chunk(3, 0))),
    "chunk_fewer": ([n(2, 6)], lambda lib, x: list(x.chunk(4, 1))),
    "gather": ([n(3, 4), i([[0, 3, 3], [1, 0, 2]])], lambda lib, x, idx: x.gather(1, idx)),
    "gather_dim0": ([n(3, 4), i([[2, 0], [2, 2]])], lambda lib, x, idx: x.gather(0, idx)),
    "scatter": ([n(3, 5), i([[4, 0, 2], [1, 3, 0]]), n(2, 3)], lambda lib, x, idx, s: x.scatter(1, idx, s)),
    "scatter_value": ([n(3, 4), i([[0], [3]])], lambda lib, x, idx: x.scatter(1, idx, -2.0)),
    "scatter_add": ([n(3, 4), i([[0, 0, 2], [2, 1, 2]]), n(2, 3)], lambda lib, x, idx, s: x.scatter_add(0, idx, s)),
    "masked_select": ([n(2, 3), b([True, False, True])], lambda lib, x, m: x.masked_select(m)),
    "masked_select_broadcast": ([n(3), b([[True, False, True], [False, True, True]])],
                                lambda lib, x, m: x.masked_select(m)),
    "one_hot": ([i([[0, 3], [2, 2]])], lambda lib, t: lib.F.one_hot(t, 5)),
    "one_hot_inferred": ([i([1, 0, 2])], lambda lib, t: lib.F.one_hot(t)),
    # einsum
    "einsum_matmul": ([n(3, 4), n(4, 2)], lambda lib, x, y: lib.einsum("ij,jk->ik", x, y)),
    "einsum_trace": ([n(3, 3)], lambda lib, x: lib.einsum("ii->", x)),
    "einsum_diagonal": ([n(3, 3)], lambda lib, x: lib.einsum("ii->i", x)),
    "einsum_attention": ([n(2, 2, 3, 4), n(2, 2, 5, 4)], lambda lib, q, k: lib.einsum("bhqd,bhkd->bhqk", q, k)),
    "einsum_ellipsis": ([n(2, 3, 4), n(4, 2)], lambda lib, x, y: lib.einsum("...ij,jk->...ik", x, y)),
    "einsum_implicit": ([n(2, 3), n(4, 3)], lambda lib, x, y: lib.einsum("ij,kj", x, y)),
    "einsum_sum_axis": ([n(2, 3)], lambda lib, x: lib.einsum("ij->j", x)),
    "einsum_three": ([n(2, 3), n(3, 4), n(4)], lambda lib, x, y, z: lib.einsum("ij,jk,k->i", x, y, z)),
    "einsum_outer": ([n(3), n(2)], lambda lib, x, y: lib.einsum("i,j->ij", x, y)),
    # losses
    "nll_loss": ([n(4, 3), i([0, 2, -100, 1])], lambda lib, x, t: lib.F.nll_loss(x, t)),
    "nll_loss_weight_ignore": ([n(2, 3, 4), i([[0, 2, 1, 1], [2, 2, 0, 1]]), c([0.5, 2.0, 1.0])],
                               lambda lib, x, t, w: lib.F.nll_loss(x, t, weight=w, ignore_index=1)),
    "nll_loss_none": ([n(3, 4), i([3, 0, 1]), c([1.0, 2.0, 3.0, 0.5])],
                      lambda lib, x, t, w: lib.F.nll_loss(x, t, weight=w, reduction="none")),
    "nll_loss_sum_1d": ([n(4), i(2)], lambda lib, x, t: lib.F.nll_loss(x, t, reduction="sum")),
    "binary_cross_entropy": ([u(0.05, 0.95, 3, 4), u(0.0, 1.0, 3, 4)],
                             lambda lib, x, t: lib.F.binary_cross_entropy(x, t)),
    "binary_cross_entropy_weight_sum": (
        [u(0.05, 0.95, 3, 4), u(0.0, 1.0, 3, 4), c([0.5, 1.0, 2.0, 1.5])],
        lambda lib, x, t, w: lib.F.binary_cross_entropy(x, t, weight=w, reduction="sum"),
    ),
    "bce_with_logits": ([n(3, 4), u(0.0, 1.0, 3, 4)], lambda lib, x, t: lib.F.binary_cross_entropy_with_logits(x, t)),
    "bce_with_logits_pos_weight": (
        [n(3, 4), u(0.0, 1.0, 3, 4), c([[2.0], [1.0], [0.5]]), c([1.0, 3.0, 0.5, 2.0])],
        lambda lib, x, t, w, p: lib.F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=p),
    ),
    "bce_with_logits_none": ([n(2, 3), u(0.0, 1.0, 2, 3), c([2.0, 1.0, 0.5])],
                             lambda lib, x, t, p: lib.F.binary_cross_entropy_with_logits(x, t, reduction="none",
                                                                                         pos_weight=p)),
    "l1_loss": ([n(3, 4), n(3, 4)], lambda lib, x, y: lib.F.l1_loss(x, y)),
    "l1_loss_none": ([n(3, 4), n(3, 4)], lambda lib, x, y: lib.F.l1_loss(x, y, reduction="none")),
    "smooth_l1_loss": ([n(3, 4), n(3, 4)], lambda lib, x, y: lib.F.smooth_l1_loss(x, y, beta=0.8)),
    "smooth_l1_loss_beta0_sum": ([n(3, 4), n(3, 4)], lambda lib, x, y: lib.F.smooth_l1_loss(x, y, reduction="sum",
                                                                                               beta=0.0)),
    "huber_loss": ([n(3, 4), n(3, 4)], lambda lib, x, y: lib.F.huber_loss(x, y, delta=0.7)),
    "huber_loss_none": ([n(3, 4), n(3, 4)], lambda lib, x, y: lib.F.huber_loss(x, y, reduction="none", delta=1.5)),
    "kl_div_batchmean": ([n(3, 4), u(0.05, 1.0, 3, 4)], lambda lib, x, t: lib.F.kl_div(x, t, reduction="batchmean")),
    "kl_div_mean": ([n(3, 4), u(0.05, 1.0, 3, 4)], lambda lib, x, t: lib.F.kl_div(x, t, reduction="mean")),
    "kl_div_log_target_sum": ([n(3, 4), n(3, 4)],
                              lambda lib, x, t: lib.F.kl_div(x, t, reduction="sum", log_target=True)),
    "kl_div_none": ([n(2, 3), u(0.05, 1.0, 2, 3)], lambda lib, x, t: lib.F.kl_div(x, t, reduction="none")),
    # normalization
    "rms_norm": ([n(2, 3, 4), n(4)], lambda lib, x, w: lib.F.rms_norm(x, (4,), w, 1e-5)),
    "rms_norm_two_axes_default_eps": ([n(2, 3, 4)], lambda lib, x: lib.F.rms_norm(x, (3, 4))),
}  # fmt: skip


def make_inputs(specs, rng):
    """NumPy arrays for the specs, and which of them require grad."""
    arrays, grads = [], []
    for spec in specs:
        kind = spec[0]
        if kind == "n":
            arrays.append(rng.standard_normal(spec[1]))
        elif kind == "u":
            arrays.append(rng.uniform(spec[2], spec[3], spec[1]))
        elif kind == "i":
            arrays.append(np.asarray(spec[1], dtype=np.int64))
        elif kind == "b":
            arrays.append(np.asarray(spec[1], dtype=bool))
        else:
            arrays.append(np.asarray(spec[1], dtype=np.float64))
        grads.append(kind in "nu")
    return arrays, grads


def seed(name):
    """The seed of a case: stable across runs and machines."""
    return sum(ord(ch) * (k + 1) for k, ch in enumerate(name)) % (2**31)
