"""Anomaly mode (``minigrad.detect_anomaly``): the first non-finite output or gradient is named."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad
from minigrad import autograd, engine, nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 3)
        self.second = nn.Linear(3, 2)

    def forward(self, x):
        return self.second(self.first(x).tanh())


def test_a_nan_weight_names_the_op_the_module_path_and_the_shapes():
    minigrad.manual_seed(0)
    net = Net()
    net.second.weight.data[0, 1] = np.nan
    x = minigrad.randn(5, 4)
    with minigrad.detect_anomaly(), pytest.raises(minigrad.AnomalyError) as info:
        net(x).sum()
    message = str(info.value)
    assert "second" in message and "(Linear)" in message and "NaN" in message
    assert "(5, 3)" in message and "(2, 3)" in message  # input shapes: x and the weight
    assert "first" not in message  # the first layer is finite


def test_without_anomaly_mode_the_nan_passes_silently():
    minigrad.manual_seed(0)
    net = Net()
    net.second.weight.data[0, 1] = np.nan
    out = net(minigrad.randn(5, 4)).sum()
    assert np.isnan(out.item())


def test_a_non_finite_gradient_names_the_backward():
    x = minigrad.tensor([0.0, 1.0], requires_grad=True)
    with minigrad.detect_anomaly():
        y = x.sqrt()  # finite forward: sqrt(0) = 0
        with np.errstate(divide="ignore"), pytest.raises(minigrad.AnomalyError) as info:
            y.sum().backward()
    message = str(info.value)
    assert "backward of sqrt" in message and "inf" in message and "(2,)" in message


def test_finite_runs_are_untouched_and_the_hooks_are_removed():
    minigrad.manual_seed(0)
    net = Net()
    x = minigrad.randn(5, 4)
    net(x).sum().backward()
    expected = net.first.weight.grad.numpy().copy()
    net.zero_grad()
    with minigrad.detect_anomaly():
        assert minigrad.is_anomaly_enabled()
        with minigrad.detect_anomaly():  # nested: still on after the inner one ends
            pass
        assert minigrad.is_anomaly_enabled()
        net(x).sum().backward()
    assert not minigrad.is_anomaly_enabled()
    np.testing.assert_array_equal(net.first.weight.grad.numpy(), expected)
    assert autograd.node_observers == [] and engine.grad_observers == []


def test_check_nan_false_is_a_no_op():
    x = minigrad.tensor([np.nan], requires_grad=True)
    with minigrad.detect_anomaly(check_nan=False):
        assert not minigrad.is_anomaly_enabled()
        y = x * 2
    assert np.isnan(y.item())


def test_hooks_are_removed_after_an_error():
    x = minigrad.tensor([np.inf], requires_grad=True)
    with pytest.raises(minigrad.AnomalyError, match="mul"):
        with minigrad.detect_anomaly():
            x * 2
    assert autograd.node_observers == [] and engine.grad_observers == []
