"""Every op has rows in the test tables, and the rows are pinned here, by hand.

The ops are found by walking the package ``minigrad.ops`` (every module, every class
defined there that subclasses ``minigrad.autograd.Function``). ``OP_ROWS`` maps each op,
by its qualified name, to the table rows that test it, written ``"TABLE:row"``:

* first order: a gradient check (finite differences against a random upstream
  gradient) in one of ``FIRST_ORDER`` (tables of tests/test_ops_gradcheck.py);
* second order: a ``GRADGRAD`` row (gradgradcheck, tests/test_ops_gradcheck.py) and a
  ``SECOND_ORDER`` row (double backward on the marked backend, tests/test_backend_independence.py);
* backend independence: a ``CASES`` row (tests/test_backend_independence.py).

An op needs a row of every kind. Only ``EXEMPT`` may excuse one (never first order), and
only with a reason. The tests here fail when an op has no pinned rows, when a pinned op
or row no longer exists, and when a pinned row does not build a node of its op.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest
import test_backend_independence as BI
import test_ops_gradcheck as GC
import test_ops_math as OM

import minigrad.ops
from minigrad import autograd, gradcheck
from minigrad.autograd import Function

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


def _cases_row(name):
    fn, specs = BI.CASES[name]
    return fn, BI._make_inputs(specs, "cpu", 0)


# table -> (its rows, row name -> (function, inputs)): how each test of the table calls a row
FIRST_ORDER = {
    "BINARY_OPS": (GC.BINARY_OPS, GC.binary_case),
    "UNARY_OPS": (GC.UNARY_OPS, GC.unary_case),
    "REDUCTIONS": (GC.REDUCTIONS, GC.reduction_case),
    "SOFTMAX_OPS": (GC.SOFTMAX_OPS, GC.softmax_case),
    "SHAPE_OPS": (GC.SHAPE_OPS, GC.shape_case),
    "MATMUL_SHAPES": (GC.MATMUL_SHAPES, GC.matmul_case),
    "LINEAR_OPS": (GC.LINEAR_OPS, GC.linear_case),
    "LAYER_NORM_CASES": (GC.LAYER_NORM_CASES, GC.layer_norm_case),
    "CE_CASES": (GC.CE_CASES, GC.ce_case),
    "ATTENTION_CASES": (GC.ATTENTION_CASES, GC.attention_case),
    "OP_CASES": (GC.OP_CASES, GC.op_case),
    "ELEMENTWISE": (OM.ELEMENTWISE, OM.elementwise_case),  # issue 22: tests/test_ops_math.py
    "SCANS": (OM.SCANS, OM.scan_case),
    "MATH_CASES": (OM.MATH_CASES, OM.math_case),
}
SECOND = {"GRADGRAD": (GC.GRADGRAD, GC.gradgrad_case), "SECOND_ORDER": (BI.SECOND_ORDER, _cases_row)}
BACKEND = {"CASES": (BI.CASES, _cases_row)}
TABLES = {**FIRST_ORDER, **SECOND, **BACKEND}
REQUIRED = ("first order", "GRADGRAD", "SECOND_ORDER", "CASES")  # every op needs a row of each kind


def _kind(table):
    return "first order" if table in FIRST_ORDER else table


# ---- the pinned mapping: op -> the rows that test it -------------------------------------------
_A, _T, _I, _R, _S = "arithmetic", "attention", "indexing", "reduction", "selection"
_RA, _SC = "minigrad.ops.rearrange", "minigrad.ops.scatter"  # issue 22
_RL, _PL = "minigrad.ops.regression_loss", "minigrad.ops.probability_loss"  # issue 22
OP_ROWS = {
    f"minigrad.ops.{_A}.Add": ("BINARY_OPS:add", "GRADGRAD:add_broadcast", "SECOND_ORDER:add", "CASES:add",
                               "CASES:add_scalar", "CASES:radd_scalar", "CASES:int_plus_float"),
    f"minigrad.ops.{_A}.Sub": ("BINARY_OPS:sub", "UNARY_OPS:rsub_rdiv", "GRADGRAD:sub_broadcast",
                               "SECOND_ORDER:mse_loss", "CASES:sub", "CASES:rsub"),
    f"minigrad.ops.{_A}.Mul": ("BINARY_OPS:mul", "GRADGRAD:mul_broadcast", "SECOND_ORDER:mul", "CASES:mul"),
    f"minigrad.ops.{_A}.Div": ("BINARY_OPS:div", "UNARY_OPS:rsub_rdiv", "GRADGRAD:div_broadcast",
                               "SECOND_ORDER:div", "CASES:div", "CASES:rdiv"),
    f"minigrad.ops.{_A}.Neg": ("UNARY_OPS:neg", "GRADGRAD:neg", "SECOND_ORDER:neg", "CASES:neg"),
    f"minigrad.ops.{_A}.PowScalar": ("UNARY_OPS:pow_2", "UNARY_OPS:pow_3", "UNARY_OPS:pow_1", "UNARY_OPS:pow_half",
                                     "UNARY_OPS:pow_neg", "GRADGRAD:pow_scalar", "GRADGRAD:pow_scalar_2_half",
                                     "SECOND_ORDER:pow_scalar", "CASES:pow_scalar", "CASES:pow_scalar_2",
                                     "CASES:pow_scalar_1", "CASES:pow_scalar_half"),
    f"minigrad.ops.{_A}.Pow": ("BINARY_OPS:pow", "UNARY_OPS:rpow", "GRADGRAD:pow_tensor", "GRADGRAD:rpow",
                               "SECOND_ORDER:pow_tensor", "CASES:pow_tensor", "CASES:rpow"),
    f"minigrad.ops.{_T}.AttentionWeights": (
        "ATTENTION_CASES:plain", "ATTENTION_CASES:broadcast_batch", "ATTENTION_CASES:bool_mask_with_dead_row",
        "ATTENTION_CASES:float_mask", "ATTENTION_CASES:float_mask_requires_grad", "ATTENTION_CASES:transposed_k",
        "GRADGRAD:attention_weights", "GRADGRAD:attention_weights_float_mask",
        "SECOND_ORDER:attention_weights_bool_mask", "CASES:attention_weights", "CASES:attention_weights_bool_mask",
        "CASES:attention_weights_float_mask"),
    "minigrad.ops.conversion.Cast": ("OP_CASES:cast_float32", "GRADGRAD:cast_float32", "SECOND_ORDER:cast",
                                     "CASES:cast", "CASES:to_dtype"),
    "minigrad.ops.conversion.ToDevice": ("OP_CASES:to_device", "GRADGRAD:to_device"),
    "minigrad.ops.dropout.Dropout": ("OP_CASES:dropout", "GRADGRAD:dropout", "SECOND_ORDER:dropout", "CASES:dropout"),
    f"minigrad.ops.{_I}.GetItem": (
        "SHAPE_OPS:getitem_slices", "SHAPE_OPS:getitem_negative_step", "SHAPE_OPS:getitem_int",
        "SHAPE_OPS:getitem_none_ellipsis", "SHAPE_OPS:getitem_int_array_repeats", "SHAPE_OPS:getitem_int_tensor_2d",
        "SHAPE_OPS:getitem_mixed", "SHAPE_OPS:getitem_two_arrays", "SHAPE_OPS:getitem_bool_mask", "SHAPE_OPS:split",
        "SHAPE_OPS:split_sections", "SHAPE_OPS:chunk", "GRADGRAD:getitem", "SECOND_ORDER:getitem_int_tensor",
        "SECOND_ORDER:getitem_slices", "CASES:getitem_slices", "CASES:getitem_int", "CASES:getitem_none_ellipsis",
        "CASES:getitem_int_list", "CASES:getitem_int_tensor", "CASES:getitem_mixed", "CASES:getitem_bool_mask",
        "CASES:split", "CASES:split_sections", "CASES:chunk"),
    f"minigrad.ops.{_I}.IndexAddZeros": ("OP_CASES:index_backward_repeats", "OP_CASES:index_backward_slices",
                                         "GRADGRAD:index_backward", "SECOND_ORDER:index_backward",
                                         "CASES:index_backward"),
    f"minigrad.ops.{_I}.Embedding": ("OP_CASES:embedding", "GRADGRAD:embedding", "SECOND_ORDER:embedding",
                                     "CASES:embedding", "CASES:embedding_padding"),
    f"minigrad.ops.{_I}.Concat": ("OP_CASES:concat", "OP_CASES:concat_transposed", "OP_CASES:stack_first",
                                  "OP_CASES:stack_middle", "OP_CASES:stack_last", "GRADGRAD:concat",
                                  "SECOND_ORDER:concat", "CASES:concat", "CASES:stack"),
    "minigrad.ops.layernorm.LayerNorm": (
        "LAYER_NORM_CASES:affine", "LAYER_NORM_CASES:3d_two_axes", "LAYER_NORM_CASES:no_affine",
        "LAYER_NORM_CASES:weight_only", "LAYER_NORM_CASES:bias_only", "LAYER_NORM_CASES:transposed",
        "LAYER_NORM_CASES:4d", "GRADGRAD:layer_norm", "GRADGRAD:layer_norm_no_affine", "SECOND_ORDER:layer_norm",
        "CASES:layer_norm", "CASES:layer_norm_no_affine"),
    "minigrad.ops.linalg.MatMul": (
        "MATMUL_SHAPES:1d_1d", "MATMUL_SHAPES:1d_2d", "MATMUL_SHAPES:2d_1d", "MATMUL_SHAPES:2d_2d",
        "MATMUL_SHAPES:3d_2d", "MATMUL_SHAPES:1d_3d", "MATMUL_SHAPES:batch_broadcast_4d", "MATMUL_SHAPES:size1",
        "GRADGRAD:matmul_2d", "GRADGRAD:matmul_batch", "SECOND_ORDER:matmul_batch_broadcast", "CASES:matmul_1d_1d",
        "CASES:matmul_1d_2d", "CASES:matmul_2d_1d", "CASES:matmul_2d", "CASES:matmul_nd",
        "CASES:matmul_batch_broadcast"),
    "minigrad.ops.linalg.Linear": ("LINEAR_OPS:linear", "GRADGRAD:linear", "SECOND_ORDER:linear", "CASES:linear",
                                   "CASES:linear_no_bias"),
    "minigrad.ops.linalg.LinearReLU": ("LINEAR_OPS:linear_relu", "GRADGRAD:linear_relu", "SECOND_ORDER:linear_relu",
                                       "CASES:linear_relu", "CASES:linear_relu_no_bias"),
    "minigrad.ops.loss.CrossEntropy": (
        "CE_CASES:mean", "CE_CASES:sum", "CE_CASES:none", "CE_CASES:ignore_index", "CE_CASES:ignore_custom",
        "CE_CASES:label_smoothing", "CE_CASES:ignore_and_smoothing_none", "CE_CASES:transposed",
        "CE_CASES:single_position", "GRADGRAD:cross_entropy", "SECOND_ORDER:cross_entropy_ignore_smooth",
        "CASES:cross_entropy", "CASES:cross_entropy_ignore_smooth", "CASES:cross_entropy_sum",
        "CASES:cross_entropy_none",
        "CE_CASES:ignore_weighted_smoothing", "CE_CASES:weighted_sum", "CASES:cross_entropy_probs",
        "CASES:cross_entropy_weight"),
    f"minigrad.ops.{_R}.Sum": ("REDUCTIONS:sum_all", "REDUCTIONS:sum_axis", "REDUCTIONS:sum_axes_keepdims",
                               "GRADGRAD:sum", "SECOND_ORDER:sum_axis", "CASES:sum", "CASES:sum_axis",
                               "CASES:sum_keepdims"),
    f"minigrad.ops.{_R}.Mean": ("REDUCTIONS:mean_all", "REDUCTIONS:mean_neg_axis", "REDUCTIONS:mean_keepdims",
                                "GRADGRAD:mean", "SECOND_ORDER:mse_loss", "CASES:mean", "CASES:mean_axis"),
    f"minigrad.ops.{_R}.Var": ("REDUCTIONS:var_all", "REDUCTIONS:var_axis_ddof", "REDUCTIONS:var_keepdims",
                               "GRADGRAD:var", "SECOND_ORDER:var", "CASES:var", "CASES:var_axis_ddof"),
    f"minigrad.ops.{_R}.Max": ("REDUCTIONS:max_all", "REDUCTIONS:max_axis", "REDUCTIONS:max_keepdims",
                               "GRADGRAD:max", "SECOND_ORDER:max_axis", "CASES:max", "CASES:max_axis"),
    f"minigrad.ops.{_R}.Min": ("REDUCTIONS:min_all", "REDUCTIONS:min_axis", "GRADGRAD:min", "SECOND_ORDER:min_axis",
                               "CASES:min", "CASES:min_axis"),
    f"minigrad.ops.{_R}.SumTo": ("REDUCTIONS:sum_to", "GRADGRAD:sum_to", "SECOND_ORDER:sum_to", "CASES:sum_to"),
    f"minigrad.ops.{_S}.Maximum": ("BINARY_OPS:maximum", "GRADGRAD:maximum", "SECOND_ORDER:maximum",
                                   "CASES:maximum", "CASES:maximum_scalar"),
    f"minigrad.ops.{_S}.Minimum": ("BINARY_OPS:minimum", "GRADGRAD:minimum", "SECOND_ORDER:minimum",
                                   "CASES:minimum"),
    f"minigrad.ops.{_S}.Clip": ("UNARY_OPS:clip", "UNARY_OPS:clip_min", "UNARY_OPS:clip_max", "GRADGRAD:clip",
                                "SECOND_ORDER:clip", "CASES:clip", "CASES:clip_min", "CASES:clip_max"),
    f"minigrad.ops.{_S}.Where": ("OP_CASES:where", "OP_CASES:where_scalar", "OP_CASES:where_transposed",
                                 "GRADGRAD:where", "SECOND_ORDER:where", "CASES:where", "CASES:where_scalar"),
    f"minigrad.ops.{_S}.MaskedFill": ("OP_CASES:masked_fill", "OP_CASES:masked_fill_transposed",
                                      "GRADGRAD:masked_fill", "SECOND_ORDER:masked_fill", "CASES:masked_fill"),
    "minigrad.ops.shape.Reshape": ("SHAPE_OPS:reshape", "SHAPE_OPS:reshape_transposed", "SHAPE_OPS:flatten",
                                   "GRADGRAD:reshape", "SECOND_ORDER:reshape", "CASES:reshape", "CASES:flatten"),
    "minigrad.ops.shape.Squeeze": ("SHAPE_OPS:squeeze_all", "SHAPE_OPS:squeeze_axis", "GRADGRAD:squeeze_unsqueeze",
                                   "SECOND_ORDER:squeeze", "CASES:squeeze", "CASES:squeeze_axis"),
    "minigrad.ops.shape.Unsqueeze": ("SHAPE_OPS:unsqueeze", "GRADGRAD:squeeze_unsqueeze", "SECOND_ORDER:unsqueeze",
                                     "CASES:unsqueeze"),
    "minigrad.ops.shape.Transpose": ("SHAPE_OPS:transpose_all", "SHAPE_OPS:permute", "SHAPE_OPS:swapaxes",
                                     "GRADGRAD:transpose", "SECOND_ORDER:transpose", "CASES:transpose",
                                     "CASES:permute", "CASES:T", "CASES:swapaxes"),
    "minigrad.ops.shape.SplitHeads": ("SHAPE_OPS:split_heads", "SHAPE_OPS:split_heads_transposed",
                                      "SHAPE_OPS:merge_heads_of_split", "GRADGRAD:split_heads",
                                      "SECOND_ORDER:split_heads", "CASES:split_heads"),
    "minigrad.ops.shape.MergeHeads": ("SHAPE_OPS:merge_heads", "SHAPE_OPS:merge_heads_of_split",
                                      "GRADGRAD:merge_heads", "SECOND_ORDER:merge_heads", "CASES:merge_heads"),
    "minigrad.ops.shape.Expand": ("SHAPE_OPS:expand", "SHAPE_OPS:expand_new_axes", "GRADGRAD:expand",
                                  "SECOND_ORDER:expand", "CASES:expand"),
    "minigrad.ops.softmax.Softmax": ("SOFTMAX_OPS:softmax", "GRADGRAD:softmax", "GRADGRAD:softmax_axis0",
                                     "SECOND_ORDER:softmax", "CASES:softmax", "CASES:softmax_axis0"),
    "minigrad.ops.softmax.LogSoftmax": ("SOFTMAX_OPS:log_softmax", "GRADGRAD:log_softmax",
                                        "GRADGRAD:log_softmax_axis0", "SECOND_ORDER:log_softmax", "CASES:log_softmax"),
    "minigrad.ops.softmax.LogSumExp": ("SOFTMAX_OPS:logsumexp", "REDUCTIONS:logsumexp_last",
                                       "REDUCTIONS:logsumexp_first_keepdims", "GRADGRAD:logsumexp",
                                       "GRADGRAD:logsumexp_axis1_of_3d", "SECOND_ORDER:logsumexp", "CASES:logsumexp",
                                       "CASES:logsumexp_keepdims"),
    "minigrad.ops.unary.Exp": ("UNARY_OPS:exp", "GRADGRAD:exp", "SECOND_ORDER:exp", "CASES:exp"),
    "minigrad.ops.unary.Log": ("UNARY_OPS:log", "GRADGRAD:log", "SECOND_ORDER:log", "CASES:log"),
    "minigrad.ops.unary.Sqrt": ("UNARY_OPS:sqrt", "GRADGRAD:sqrt", "SECOND_ORDER:sqrt", "CASES:sqrt"),
    "minigrad.ops.unary.Abs": ("UNARY_OPS:abs", "GRADGRAD:abs", "SECOND_ORDER:abs", "CASES:abs"),
    "minigrad.ops.unary.Tanh": ("UNARY_OPS:tanh", "GRADGRAD:tanh", "SECOND_ORDER:tanh", "CASES:tanh"),
    "minigrad.ops.unary.Sigmoid": ("UNARY_OPS:sigmoid", "GRADGRAD:sigmoid", "SECOND_ORDER:sigmoid", "CASES:sigmoid"),
    "minigrad.ops.unary.ReLU": ("UNARY_OPS:relu", "GRADGRAD:relu", "SECOND_ORDER:relu", "CASES:relu"),
    "minigrad.ops.unary.Erf": ("UNARY_OPS:erf", "GRADGRAD:erf", "SECOND_ORDER:erf", "CASES:erf", "CASES:erf_0d"),
    "minigrad.ops.unary.GELU": ("UNARY_OPS:gelu", "UNARY_OPS:gelu_tanh", "GRADGRAD:gelu", "GRADGRAD:gelu_tanh",
                                "SECOND_ORDER:gelu", "SECOND_ORDER:gelu_tanh", "CASES:gelu", "CASES:gelu_tanh"),
    "minigrad.ops.unary.Sin": ("UNARY_OPS:sin", "GRADGRAD:sin_cos", "SECOND_ORDER:sin", "CASES:sin"),
    "minigrad.ops.unary.Cos": ("UNARY_OPS:cos", "GRADGRAD:sin_cos", "SECOND_ORDER:cos", "CASES:cos"),
    "minigrad.ops.flash_attention.FlashAttention": (
        "OP_CASES:flash_attention", "OP_CASES:flash_attention_causal_padding", "OP_CASES:flash_attention_float_mask",
        "GRADGRAD:flash_attention", "GRADGRAD:flash_attention_float_mask_causal", "SECOND_ORDER:flash_attention_masks",
        "SECOND_ORDER:flash_attention_float_mask", "CASES:flash_attention", "CASES:flash_attention_masks",
        "CASES:flash_attention_float_mask"),
    # ---- shape and indexing, einsum, losses, rms_norm ----
    f"{_RA}.Clone": ("OP_CASES:clone", "GRADGRAD:clone", "SECOND_ORDER:clone", "CASES:clone"),
    f"{_RA}.Flip": ("OP_CASES:flip", "GRADGRAD:flip_roll", "SECOND_ORDER:flip", "CASES:flip"),
    f"{_RA}.Roll": ("OP_CASES:roll", "OP_CASES:roll_flat", "GRADGRAD:flip_roll", "SECOND_ORDER:roll", "CASES:roll",
                    "CASES:roll_flat"),
    f"{_RA}.Pad": ("OP_CASES:pad_constant", "OP_CASES:pad_constant_crop", "OP_CASES:pad_reflect",
                   "OP_CASES:pad_replicate", "OP_CASES:pad_circular", "GRADGRAD:pad", "GRADGRAD:pad_replicate_circular",
                   "SECOND_ORDER:pad_constant", "SECOND_ORDER:pad_constant_crop", "SECOND_ORDER:pad_reflect",
                   "SECOND_ORDER:pad_replicate", "CASES:pad_constant", "CASES:pad_constant_crop", "CASES:pad_reflect",
                   "CASES:pad_replicate"),
    f"{_RA}.Tril": ("OP_CASES:tril", "GRADGRAD:tril_triu", "SECOND_ORDER:tril", "CASES:tril"),
    f"{_RA}.Triu": ("OP_CASES:triu_diagonal", "GRADGRAD:tril_triu", "SECOND_ORDER:triu", "CASES:triu"),
    f"{_RA}.Repeat": ("OP_CASES:repeat", "OP_CASES:tile", "GRADGRAD:repeat", "SECOND_ORDER:repeat", "CASES:repeat",
                      "CASES:tile"),
    f"{_RA}.RepeatInterleave": ("OP_CASES:repeat_interleave", "OP_CASES:repeat_interleave_counts",
                                "GRADGRAD:repeat_interleave", "SECOND_ORDER:repeat_interleave_counts",
                                "CASES:repeat_interleave", "CASES:repeat_interleave_counts"),
    f"{_SC}.Gather": ("OP_CASES:gather", "OP_CASES:gather_dim0", "GRADGRAD:gather", "SECOND_ORDER:gather",
                      "CASES:gather"),
    f"{_SC}.Scatter": ("OP_CASES:scatter", "OP_CASES:scatter_value", "GRADGRAD:scatter", "SECOND_ORDER:scatter",
                       "SECOND_ORDER:scatter_value", "CASES:scatter", "CASES:scatter_value"),
    f"{_SC}.ScatterAdd": ("OP_CASES:scatter_add", "GRADGRAD:scatter_add", "SECOND_ORDER:scatter_add",
                          "CASES:scatter_add"),
    f"{_SC}.MaskedSelect": ("OP_CASES:masked_select", "OP_CASES:masked_select_broadcast", "GRADGRAD:masked_select",
                            "SECOND_ORDER:masked_select", "CASES:masked_select"),
    "minigrad.ops.einsum.Einsum": (
        "OP_CASES:einsum_matmul", "OP_CASES:einsum_trace_diag", "OP_CASES:einsum_attention",
        "OP_CASES:einsum_ellipsis_broadcast", "OP_CASES:einsum_summed_away", "OP_CASES:einsum_three",
        "GRADGRAD:einsum", "SECOND_ORDER:einsum", "SECOND_ORDER:einsum_diagonal_summed", "CASES:einsum",
        "CASES:einsum_trace", "CASES:einsum_diagonal_summed"),
    f"{_RL}.L1Loss": ("OP_CASES:l1_loss", "OP_CASES:l1_loss_none", "GRADGRAD:l1_loss", "SECOND_ORDER:l1_loss",
                      "CASES:l1_loss"),
    f"{_RL}.SmoothL1Loss": ("OP_CASES:smooth_l1_loss", "OP_CASES:smooth_l1_loss_beta0_sum", "GRADGRAD:smooth_l1_loss",
                            "SECOND_ORDER:smooth_l1_loss", "CASES:smooth_l1_loss"),
    f"{_RL}.HuberLoss": ("OP_CASES:huber_loss", "OP_CASES:huber_loss_none", "GRADGRAD:huber_loss",
                         "SECOND_ORDER:huber_loss", "CASES:huber_loss"),
    f"{_PL}.NLLLoss": ("OP_CASES:nll_loss", "OP_CASES:nll_loss_weight_ignore", "OP_CASES:nll_loss_none_1d",
                       "GRADGRAD:nll_loss", "SECOND_ORDER:nll_loss", "SECOND_ORDER:nll_loss_weight", "CASES:nll_loss",
                       "CASES:nll_loss_weight"),
    f"{_PL}.BinaryCrossEntropy": ("OP_CASES:binary_cross_entropy", "OP_CASES:binary_cross_entropy_weight",
                                  "GRADGRAD:binary_cross_entropy", "SECOND_ORDER:binary_cross_entropy",
                                  "CASES:binary_cross_entropy"),
    f"{_PL}.BinaryCrossEntropyWithLogits": ("OP_CASES:bce_with_logits", "OP_CASES:bce_with_logits_pos_weight",
                                            "GRADGRAD:bce_with_logits", "SECOND_ORDER:bce_with_logits",
                                            "CASES:bce_with_logits"),
    f"{_PL}.KLDiv": ("OP_CASES:kl_div", "OP_CASES:kl_div_log_target", "GRADGRAD:kl_div", "SECOND_ORDER:kl_div",
                     "SECOND_ORDER:kl_div_log_target", "CASES:kl_div", "CASES:kl_div_log_target"),
    "minigrad.ops.rmsnorm.RMSNorm": ("OP_CASES:rms_norm", "OP_CASES:rms_norm_two_axes", "GRADGRAD:rms_norm",
                                     "SECOND_ORDER:rms_norm", "CASES:rms_norm", "CASES:rms_norm_no_weight"),
}  # fmt: skip


def _rows(first, gradgrad, second, *cases):
    """The four kinds of row of an op whose rows share its name (issue 22's ops)."""
    return (*(first if isinstance(first, tuple) else (first,)), f"GRADGRAD:{gradgrad}", f"SECOND_ORDER:{second}",
            *(f"CASES:{c}" for c in (cases or (second,))))  # fmt: skip


_E, _AC, _RO, _SC = "minigrad.ops.elementwise", "minigrad.ops.activations", "minigrad.ops.rounding", "minigrad.ops.scan"
OP_ROWS |= {  # issue 22: elementwise functions, activations, reductions, scans, sorting
    f"{_E}.Tan": _rows("ELEMENTWISE:tan", "tan", "tan"),
    f"{_E}.Asin": _rows("ELEMENTWISE:asin", "asin", "asin"),
    f"{_E}.Acos": _rows("ELEMENTWISE:acos", "acos", "acos"),
    f"{_E}.Atan": _rows("ELEMENTWISE:atan", "atan", "atan"),
    f"{_E}.Sinh": _rows("ELEMENTWISE:sinh", "sinh_cosh", "sinh"),
    f"{_E}.Cosh": _rows("ELEMENTWISE:cosh", "sinh_cosh", "cosh"),
    f"{_E}.Asinh": _rows("ELEMENTWISE:asinh", "asinh", "asinh"),
    f"{_E}.Acosh": _rows("ELEMENTWISE:acosh", "acosh", "acosh"),
    f"{_E}.Atanh": _rows("ELEMENTWISE:atanh", "atanh", "atanh"),
    f"{_E}.Log2": _rows("ELEMENTWISE:log2", "log2_log10", "log2"),
    f"{_E}.Log10": _rows("ELEMENTWISE:log10", "log2_log10", "log10"),
    f"{_E}.Exp2": _rows("ELEMENTWISE:exp2", "exp2", "exp2"),
    f"{_E}.Expm1": _rows("ELEMENTWISE:expm1", "expm1_log1p", "expm1"),
    f"{_E}.Log1p": _rows("ELEMENTWISE:log1p", "expm1_log1p", "log1p"),
    f"{_E}.Rsqrt": _rows("ELEMENTWISE:rsqrt", "rsqrt", "rsqrt"),
    f"{_E}.Lerp": _rows(("MATH_CASES:lerp_scalar", "MATH_CASES:lerp_tensor", "MATH_CASES:lerp_method_weight_only"),
                        "lerp", "lerp", "lerp", "lerp_scalar"),
    f"{_RO}.Floor": _rows("MATH_CASES:floor", "rounding", "rounding_times", "rounding", "rounding_times"),
    f"{_RO}.Ceil": _rows("MATH_CASES:ceil", "rounding", "rounding_times", "rounding", "rounding_times"),
    f"{_RO}.Round": _rows("MATH_CASES:round", "rounding", "rounding_times", "rounding", "rounding_times"),
    f"{_RO}.Trunc": _rows("MATH_CASES:trunc", "rounding", "rounding_times", "rounding", "rounding_times"),
    f"{_AC}.SiLU": _rows("ELEMENTWISE:silu", "silu", "silu"),
    f"{_AC}.LeakyReLU": _rows("ELEMENTWISE:leaky_relu", "leaky_relu", "leaky_relu"),
    f"{_AC}.ELU": _rows(("ELEMENTWISE:elu", "ELEMENTWISE:selu"), "elu", "elu", "elu", "selu"),
    f"{_AC}.Softplus": _rows(("ELEMENTWISE:softplus", "ELEMENTWISE:softplus_beta_threshold"), "softplus",
                             "softplus", "softplus", "softplus_threshold"),
    f"{_AC}.Softsign": _rows("ELEMENTWISE:softsign", "softsign", "softsign"),
    f"{_AC}.LogSigmoid": _rows("ELEMENTWISE:logsigmoid", "logsigmoid", "logsigmoid"),
    f"{_AC}.Hardtanh": _rows(("ELEMENTWISE:hardtanh", "ELEMENTWISE:relu6"), "hardtanh", "hardtanh", "hardtanh",
                             "relu6"),
    f"{_AC}.Hardswish": _rows("ELEMENTWISE:hardswish", "hardswish", "hardswish"),
    f"{_AC}.Mish": _rows("ELEMENTWISE:mish", "mish", "mish"),
    f"minigrad.ops.{_R}.Std": _rows(("SCANS:std_all", "SCANS:std_axis", "SCANS:std_correction0_keepdims"), "std",
                                    "std", "std", "std_axis_correction0"),
    f"minigrad.ops.{_R}.Prod": _rows(("SCANS:prod_all", "SCANS:prod_axis", "SCANS:prod_keepdims",
                                      "MATH_CASES:prod_zeros", "MATH_CASES:prod_all_one_zero"), "prod", "prod_axis",
                                     "prod", "prod_axis", "prod_zeros"),
    f"{_SC}.CumSum": _rows(("SCANS:cumsum_first", "SCANS:cumsum_last"), "cumsum", "cumsum"),
    f"{_SC}.CumProd": _rows(("SCANS:cumprod", "SCANS:cumprod_first", "MATH_CASES:cumprod_zeros",
                             "MATH_CASES:cumprod_zeros_first"), "cumprod", "cumprod", "cumprod", "cumprod_zeros"),
    f"{_SC}.LogCumSumExp": _rows(("SCANS:logcumsumexp", "SCANS:logcumsumexp_first"), "logcumsumexp",
                                 "logcumsumexp"),
    "minigrad.ops.sorting.Sort": _rows(("SCANS:sort", "SCANS:sort_descending_first"), "sort", "sort_values", "sort",
                                       "sort_values"),
    "minigrad.ops.sorting.TopK": _rows(("SCANS:topk", "SCANS:topk_smallest"), "topk", "topk_values", "topk",
                                       "topk_values"),
}  # fmt: skip
# ops whose derivative is 0 wherever it exists: scaling the gradient into them changes nothing, so
# rows_blind_to_their_op cannot apply; tests/test_ops_math.py checks that their gradient is exactly 0
ZERO_DERIVATIVE = {f"{_RO}.Floor", f"{_RO}.Ceil", f"{_RO}.Round", f"{_RO}.Trunc"}

# (op, kind) -> why the op has no row of that kind. First order is never exempt.
EXEMPT = {
    ("minigrad.ops.conversion.ToDevice", "CASES"): (
        "the op is the move between two backends: a run that stays on the marked backend has nothing to move "
        "(to_device to its own device is no node). tests/test_dtype_device_grads.py checks each side of a move "
        "holds its own device's arrays, and OP_CASES/GRADGRAD:to_device check its gradients through a real move"
    ),
    ("minigrad.ops.conversion.ToDevice", "SECOND_ORDER"): (
        "as for CASES: the double backward of a move crosses backends by design; "
        "test_dtype_device_grads.py::test_second_order_when_the_gradient_crosses_back checks where each lands"
    ),
}


# ---- the ops, discovered ----------------------------------------------------------------------------
def discover_ops(package=minigrad.ops) -> dict[str, type]:
    """Every Function subclass defined in a module of ``package``, by qualified name."""
    ops = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Function) and obj.__module__ == module.__name__:
                ops[f"{module.__name__}.{obj.__qualname__}"] = obj
    return ops


OPS = discover_ops()


def _split(entry):
    table, _, row = entry.partition(":")
    return table, row


# ---- the checks (functions of the mapping, so that the tests below can feed them a broken one) -------
def missing_ops(ops, op_rows):
    missing = sorted(set(ops) - set(op_rows))
    if not missing:
        return []
    return [
        "ops with no rows in the test tables: " + ", ".join(missing) + ". Add a first-order gradient-check row "
        "(one of " + ", ".join(FIRST_ORDER) + " in tests/test_ops_gradcheck.py), a GRADGRAD row there, a CASES "
        "row and its name in SECOND_ORDER (tests/test_backend_independence.py), then pin them in OP_ROWS of "
        "tests/test_op_tables.py (tests/README.md, 'Adding an op')"
    ]


def stale_ops(ops, op_rows, exempt):
    stale = sorted(set(op_rows) - set(ops)) + sorted({op for op, _ in exempt} - set(ops))
    return [f"OP_ROWS or EXEMPT name an op that minigrad.ops no longer defines: {op}" for op in stale]


def unknown_rows(op_rows):
    problems = []
    for op, entries in op_rows.items():
        if len(set(entries)) != len(entries):
            problems.append(f"{op}: a row is pinned twice")
        for entry in entries:
            table, row = _split(entry)
            if table not in TABLES:
                problems.append(f"{op}: {entry!r} names no table (known: {', '.join(TABLES)})")
            elif row not in TABLES[table][0]:
                problems.append(f"{op}: {entry!r}: {table} has no row {row!r}")
    return problems


def kinds_without_rows(op_rows, exempt):
    problems = []
    for op, entries in op_rows.items():
        kinds = {_kind(_split(entry)[0]) for entry in entries}
        if "first order" not in kinds:
            problems.append(f"{op}: no first-order gradient check (a row in one of {', '.join(FIRST_ORDER)})")
        for kind in REQUIRED[1:]:
            reason = exempt.get((op, kind))
            if kind in kinds and reason is not None:
                problems.append(f"{op}: exempt from {kind} but pins a {kind} row: drop one")
            elif kind not in kinds and not (reason and reason.strip()):
                problems.append(f"{op}: no {kind} row and no reason in EXEMPT")
    for op, kind in exempt:
        if kind not in REQUIRED[1:]:
            problems.append(f"EXEMPT[{op!r}, {kind!r}]: only {', '.join(REQUIRED[1:])} can be exempt")
    return problems


def _reference_op(node_type):
    """The op a node stands for: its own class, or the reference op an accelerated subclass replaces."""
    for cls in node_type.__mro__:
        name = f"{cls.__module__}.{cls.__qualname__}"
        if OPS.get(name) is cls:
            return name
    return None


def _ops_built(fn, inputs):
    """The ops whose nodes ``fn(*inputs)`` records (forward only: these are the backwards a check runs)."""
    built = set()
    observers = autograd.node_observers
    autograd.node_observers = [*observers, lambda node, out: built.add(_reference_op(type(node)))]
    try:
        fn(*inputs)
    finally:
        autograd.node_observers = observers
    return built


def rows_missing_their_op(op_rows):
    """Pinned rows that, called the way their test calls them, record no node of their op."""
    built_by_row = {}
    problems = []
    for op, entries in op_rows.items():
        for entry in entries:
            if entry not in built_by_row:
                table, row = _split(entry)
                built_by_row[entry] = _ops_built(*TABLES[table][1](row))
            if op not in built_by_row[entry]:
                problems.append(f"{op}: row {entry} records no {op.rsplit('.', 1)[1]} node")
    return problems


def _check_keywords(table, row):
    """The gradcheck keywords a row's test passes (OP_CASES rows may carry some)."""
    case = GC.OP_CASES[row] if table == "OP_CASES" else ()
    return case[2] if len(case) > 2 else {}


def rows_blind_to_their_op(op_rows, factor=1.1):
    """Pinned first-order rows whose gradient check still passes when the gradient flowing
    into their op's backward is scaled by ``factor`` (a hook on each of the op's nodes):
    such a row cannot see a wrong backward of its op (e.g. an output scaled by 1e-9)."""
    problems = []
    for op, entries in op_rows.items():
        if op in ZERO_DERIVATIVE:
            continue

        def scale_into(node, out, op=op):
            if _reference_op(type(node)) == op:
                out.register_hook(lambda g: g * factor)

        for entry in entries:
            table, row = _split(entry)
            if table not in FIRST_ORDER:
                continue
            fn, inputs = TABLES[table][1](row)
            observers = autograd.node_observers
            autograd.node_observers = [*observers, scale_into]
            try:
                passed = gradcheck(fn, inputs, raise_exception=False, **_check_keywords(table, row))
            finally:
                autograd.node_observers = observers
            if passed:
                problems.append(f"{op}: row {entry} passes with the gradient into its op scaled by {factor}")
    return problems


# ---- the tests ------------------------------------------------------------------------------------
def test_discovery_finds_the_op_families():
    """The walk reaches every module (a broken walk would make the checks below vacuous)."""
    modules = {name.rsplit(".", 2)[1] for name in OPS}
    assert {"arithmetic", "unary", "reduction", "softmax", "shape", "indexing", "linalg", "loss"} <= modules
    assert len(OPS) >= 50, sorted(OPS)
    assert OPS["minigrad.ops.softmax.LogSoftmax"] is minigrad.ops.softmax.LogSoftmax
    assert OPS["minigrad.ops.reduction.Min"] is minigrad.ops.reduction.Min  # a subclass of another op counts


def test_discovery_takes_classes_defined_in_the_package_only(tmp_path, monkeypatch):
    package = tmp_path / "fake_ops"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "twice.py").write_text(
        "from minigrad.autograd import Function\n"
        "from minigrad.ops.unary import Exp  # imported, defined elsewhere: not this package's op\n"
        "class Twice(Function):\n    pass\n"
        "class Helper:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert list(discover_ops(importlib.import_module("fake_ops"))) == ["fake_ops.twice.Twice"]
    finally:
        sys.modules.pop("fake_ops.twice", None)
        sys.modules.pop("fake_ops", None)


def test_every_op_has_pinned_rows():
    problems = missing_ops(OPS, OP_ROWS)
    assert not problems, "\n".join(problems)


def test_every_pinned_op_exists():
    problems = stale_ops(OPS, OP_ROWS, EXEMPT)
    assert not problems, "\n".join(problems)


def test_every_zero_derivative_op_exists():
    assert ZERO_DERIVATIVE <= set(OPS), sorted(ZERO_DERIVATIVE - set(OPS))


def test_every_pinned_row_exists():
    problems = unknown_rows(OP_ROWS)
    assert not problems, "\n".join(problems)


def test_every_op_has_a_row_of_each_kind_or_a_reason():
    problems = kinds_without_rows(OP_ROWS, EXEMPT)
    assert not problems, "\n".join(problems)


def test_every_pinned_row_builds_a_node_of_its_op(marked):
    """A pinned row really checks its op: called the way its test calls it, it records a node of the op.

    A row that stops reaching its op (the op replaced by a composite, a wrapper that
    returns early) fails here, instead of leaving the op silently unchecked.
    """
    problems = rows_missing_their_op(OP_ROWS)
    assert not problems, "\n".join(problems)


def test_every_first_order_row_sees_a_wrong_gradient_of_its_op(marked):
    problems = rows_blind_to_their_op(OP_ROWS)
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_broken_mapping():
    """Each check names what is wrong: a new op without rows, a stale op, an unknown row,
    a missing kind without a reason, a row that does not reach its op."""
    new_op = "minigrad.ops.unary.Softplus"
    (message,) = missing_ops({**OPS, new_op: Function}, OP_ROWS)
    assert new_op in message and "BINARY_OPS" in message and "SECOND_ORDER" in message

    assert stale_ops(OPS, {**OP_ROWS, new_op: ()}, EXEMPT) == [
        f"OP_ROWS or EXEMPT name an op that minigrad.ops no longer defines: {new_op}"
    ]

    log = "minigrad.ops.unary.Log"
    broken = {log: ("UNARY_OPS:log", "UNARY_OPS:no_such_row", "NO_TABLE:log", "CASES:log")}
    assert unknown_rows(broken) == [
        f"{log}: 'UNARY_OPS:no_such_row': UNARY_OPS has no row 'no_such_row'",
        f"{log}: 'NO_TABLE:log' names no table (known: {', '.join(TABLES)})",
    ]

    assert kinds_without_rows({log: ("GRADGRAD:log", "SECOND_ORDER:log", "CASES:log")}, {}) == [
        f"{log}: no first-order gradient check (a row in one of {', '.join(FIRST_ORDER)})"
    ]
    assert kinds_without_rows({log: ("UNARY_OPS:log", "GRADGRAD:log", "CASES:log")}, {}) == [
        f"{log}: no SECOND_ORDER row and no reason in EXEMPT"
    ]
    assert kinds_without_rows({log: ("UNARY_OPS:log", "GRADGRAD:log", "CASES:log")}, {(log, "SECOND_ORDER"): " "})
    assert not kinds_without_rows({log: ("UNARY_OPS:log", "GRADGRAD:log", "CASES:log")}, {(log, "SECOND_ORDER"): "why"})
    assert kinds_without_rows({log: OP_ROWS[log]}, {(log, "first order"): "no"})

    assert rows_missing_their_op({log: ("UNARY_OPS:log", "UNARY_OPS:exp")}) == [
        f"{log}: row UNARY_OPS:exp records no Log node"
    ]
    # a change far under gradcheck's tolerance goes unseen: the check reports the row
    assert rows_blind_to_their_op({log: ("UNARY_OPS:log",)}, factor=1 + 1e-9) == [
        f"{log}: row UNARY_OPS:log passes with the gradient into its op scaled by {1 + 1e-9}"
    ]
    assert not rows_blind_to_their_op({log: ("UNARY_OPS:log",)})
