"""The numba kernels' runtime: refusals, threads, the threading layer and the self-check.

This module proves that

* what the kernels do not take (layouts, read-only arrays, dtypes, shapes, indices out of
  range) raises before any array changes;
* every kernel gives the same bits on 1 and 2 numba threads (rows split, sums over rows
  taken per fixed block), and two Python threads may run kernels at once;
* importing the module starts no threads; ``configure_threading`` then pins OpenMP;
  ``set_threads`` / ``get_threads`` set and read the count;
* ``self_check`` passes, and names a kernel that gives wrong values or raises;
* the kernel modules import nothing of minigrad's core (only NumPy, numba and each other); the
  self-check also imports the reference Adam update it compares with.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the numba kernels need numba: pip install -e '.[fast]'")

from minigrad.accel import numba_kernels as K  # noqa: E402 - only once numba is known to be there

ROOT = Path(__file__).resolve().parents[1]


# ---- what the kernels refuse ----------------------------------------------------------------
def test_refusals_raise_before_anything_changes():
    x = np.ones((4, 6))
    f32 = x.astype("float32")
    read_only = x.copy()
    read_only.flags.writeable = False
    cases = {
        "scores not contiguous": lambda: K.attention_softmax(np.ones((6, 4)).T, 1.0),
        "scores read-only": lambda: K.attention_softmax(read_only, 1.0),
        "scores int": lambda: K.attention_softmax(np.ones((4, 6), dtype=int), 1.0),
        "mask does not broadcast": lambda: K.attention_softmax(x.copy(), 1.0, bool_mask=np.ones((3, 6), bool)),
        "bias_relu out transposed": lambda: K.bias_relu(np.ones((6, 4)).T, None),
        "bias_relu bias length": lambda: K.bias_relu(x.copy(), np.ones(5)),
        "bias_relu mixed dtypes": lambda: K.bias_relu(x.copy(), np.ones(6, dtype="float32")),
        "layer norm 3-D": lambda: K.layer_norm_forward(np.ones((2, 3, 4)), None, None, 1e-5),
        "layer norm weight dtype": lambda: K.layer_norm_forward(f32, np.ones(6), None, 1e-5),
        "softmax_backward shapes": lambda: K.softmax_backward(np.ones((4, 5)), x),
        "relu_backward dtypes": lambda: K.relu_backward(f32, x, True),
        "adam p transposed": lambda: K.adam_update(np.ones((6, 4)).T, x, x.copy(), x.copy(), 1e-3, 1.0, 0.9, 0.9, 1e-8),
        "adam mixed dtypes": lambda: K.adam_update(x.copy(), x, f32.copy(), x.copy(), 1e-3, 1.0, 0.9, 0.9, 1e-8),
        "adam shapes": lambda: K.adam_update(x.copy(), x, x.copy(), np.ones(24), 1e-3, 1.0, 0.9, 0.9, 1e-8),
        "scatter float index": lambda: K.scatter_add(x, np.zeros(2), np.ones((2, 6))),
        "scatter values shape": lambda: K.scatter_add(x, np.zeros(2, dtype=int), np.ones((3, 6))),
    }
    for name, call in cases.items():
        with pytest.raises(ValueError):
            call()
        np.testing.assert_array_equal(x, 1.0, err_msg=name)
    for bad in ([0, 4], [-5], np.array([2**63], dtype=np.uint64)):  # out of range for 4 rows: nothing added
        with pytest.raises(IndexError, match="out of range"):
            K.scatter_add(x, np.asarray(bad), np.ones((len(bad), 6)))
        np.testing.assert_array_equal(x, 1.0)


def test_supported_accepts_only_writable_contiguous_floats_of_one_dtype():
    x, f32 = np.ones((4, 6)), np.ones((4, 6), dtype="float32")
    read_only = x.copy()
    read_only.flags.writeable = False
    assert K.supported(x) and K.supported(f32) and K.supported(x, None, x[1]) and K.supported(None, f32)
    refused = {
        "nothing": (),
        "only None": (None, None),
        "a list": ([1.0, 2.0],),
        "ints": (np.ones((4, 6), dtype=int),),
        "float16": (np.ones(3, dtype="float16"),),
        "mixed float dtypes": (x, f32),
        "mixed after a None": (x, None, f32),
        "transposed": (x, x.T),
        "a strided view": (x[:, ::2],),
        "read-only": (x, read_only),
        "an ndarray subclass": (x.view(type("Sub", (np.ndarray,), {})),),
    }
    for name, arrays in refused.items():
        assert not K.supported(*arrays), name


# ---- threads ----------------------------------------------------------------------------------
def _run_everything(rng_seed=0):
    """Every kernel once on arrays big enough for several threads' rows; all results."""
    rng = np.random.default_rng(rng_seed)
    x = (1 + rng.standard_normal((301, 67))).astype("float32")
    w, g = rng.standard_normal(67).astype("float32"), rng.standard_normal((301, 67)).astype("float32")
    out = list(K.layer_norm_forward(x, w, w, 1e-5))
    out += K.layer_norm_backward(g, x, out[1], out[2], w, True, True, True)
    scores = rng.standard_normal((4, 3, 29, 67))
    out.append(K.attention_softmax(scores, 0.3, bool_mask=rng.random((4, 1, 1, 67)) < 0.2))
    out += [K.softmax_forward(scores), K.softmax_backward(scores, scores[::-1].copy(), 0.5)]
    h = g.copy()
    out.append(K.bias_relu(h, w))
    out += K.relu_backward(g, h, True)
    p, m, v = (np.abs(rng.standard_normal(100_000)) for _ in range(3))
    K.adam_update(p, rng.standard_normal(100_000), m, v, 1e-3, 0.5, 0.9, 0.999, 1e-8)
    target = np.zeros((50, 200))
    K.scatter_add(target, rng.integers(0, 50, size=(32, 64)), rng.standard_normal((32, 64, 200)))
    return out + [p, m, v, target]


def test_two_threads_give_the_one_thread_bits():
    K.configure_threading()
    before = numba.get_num_threads()
    try:
        results = []
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n)
            results.append(_run_everything())
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_two_python_threads_may_run_kernels_at_once():
    """With the OpenMP layer two Python threads run parallel kernels side by side (numba's
    workqueue layer would abort the process here) and each gets its own results."""
    K.configure_threading()
    want = _run_everything(7)
    got, errors = {}, []

    def work(name):
        try:
            for _ in range(5):
                got[name] = _run_everything(7)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == [] and len(got) == 2
    for results in got.values():
        for a, b in zip(results, want):
            np.testing.assert_array_equal(a, b)


def test_import_starts_no_threads_and_configure_threading_pins_openmp():
    code = (
        "import numba\n"
        "from minigrad.accel import numba_kernels as K\n"
        "try:\n    numba.threading_layer(); started = True\n"
        "except ValueError:\n    started = False\n"
        "print(started, K.configure_threading(), K.configure_threading('workqueue'), numba.threading_layer())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "omp", "omp", "omp"]  # started later: the layer stays


def test_set_threads_and_get_threads():
    K.configure_threading()
    before = K.get_threads()
    try:
        assert K.set_threads(1) == 1 and K.get_threads() == 1 == numba.get_num_threads()
        top = numba.config.NUMBA_NUM_THREADS
        assert K.set_threads(top + 5) == top and K.get_threads() == top  # at most numba's threads
        assert K.set_threads(0) == 1
    finally:
        K.set_threads(before)


# ---- the self-check ---------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2])
def test_self_check_passes(threads):
    K.configure_threading()
    before = K.get_threads()
    try:
        K.set_threads(threads)
        assert K.self_check() == []
    finally:
        K.set_threads(before)


def test_self_check_names_a_wrong_kernel(monkeypatch):
    real = K.softmax_backward
    monkeypatch.setitem(K.KERNELS, "softmax_backward", lambda g, w, scale=1.0: real(g, w, scale) * 1.01)
    failures = K.self_check()
    assert failures and all(line.startswith("softmax_backward ") and "max error" in line for line in failures)
    assert len(failures) == 8  # both dtypes, each of the 4 row counts


def test_self_check_names_a_kernel_that_breaks_numpys_bits_or_raises(monkeypatch):
    def off_by_an_ulp(out, bias):  # a value within any tolerance, but not NumPy's bits
        K.bias_relu(out, bias)
        out[-1, -1] = np.nextafter(out[-1, -1], np.inf)

    monkeypatch.setitem(K.KERNELS, "bias_relu", off_by_an_ulp)
    monkeypatch.setitem(K.KERNELS, "scatter_add", lambda target, index, values: 1 / 0)
    failures = K.self_check()
    assert {line.split()[0] for line in failures} == {"bias_relu", "scatter_add"}
    assert any("allowed 0" in line for line in failures if line.startswith("bias_relu"))
    assert any("raised ZeroDivisionError" in line for line in failures if line.startswith("scatter_add"))


def test_the_modules_import_only_numpy_numba_and_each_other():
    """The kernels know nothing of minigrad; the self-check may also import the reference it checks against."""
    allowed = {"__future__", "math", "os", "typing", "collections.abc", "numpy", "numba", "numba.extending"}
    for name in ("numba_kernels", "numba_loops", "numba_selfcheck"):
        if name == "numba_selfcheck":
            allowed = allowed | {"optim.adam"}
        tree = ast.parse((ROOT / "minigrad" / "accel" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert {a.name for a in node.names} <= allowed, name
            elif isinstance(node, ast.ImportFrom):
                assert (node.level == 1 and node.module is None) or node.module in allowed, (name, node.module)
