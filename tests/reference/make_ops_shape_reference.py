"""Write tests/reference/ops_shape_reference.npz: PyTorch's values and input gradients for
the cases of ops_shape_cases.py (shape and indexing ops, einsum, losses, rms_norm), which
tests/test_ops_shape.py compares minigrad against.

Regenerate (needs PyTorch and NumPy; minigrad is not used):

    /path/to/python-with-torch tests/reference/make_ops_shape_reference.py

For each case the file holds its inputs (``NAME/in0``...), its outputs (``NAME/out0``...),
the random upstream gradient of each float output (``NAME/up0``...) and the gradient of
sum(out * up) with respect to every float input (``NAME/grad0``..., NaN-free; an input
that gets no gradient is stored as zeros), all float64.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ops_shape_cases import CASES, make_inputs, seed  # noqa: E402

OUT = Path(__file__).with_name("ops_shape_reference.npz")


def main() -> None:
    import torch

    lib = types.SimpleNamespace(F=torch.nn.functional, einsum=torch.einsum)
    stored: dict[str, np.ndarray] = {}
    for name, (specs, fn) in CASES.items():
        rng = np.random.default_rng(seed(name))
        arrays, needs = make_inputs(specs, rng)
        inputs = [torch.tensor(a, requires_grad=bool(g)) for a, g in zip(arrays, needs)]
        outs = fn(lib, *inputs)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        loss = None
        for k, o in enumerate(outs):
            stored[f"{name}/out{k}"] = o.detach().numpy()
            if o.dtype.is_floating_point:
                up = rng.standard_normal(tuple(o.shape))
                stored[f"{name}/up{k}"] = up
                term = (o * torch.tensor(up)).sum()
                loss = term if loss is None else loss + term
        for k, a in enumerate(arrays):
            stored[f"{name}/in{k}"] = a
        if loss is not None:
            float_inputs = [t for t in inputs if t.requires_grad]
            grads = torch.autograd.grad(loss, float_inputs, allow_unused=True)
            for k, (t, g) in enumerate(zip(float_inputs, grads)):
                stored[f"{name}/grad{k}"] = np.zeros(tuple(t.shape)) if g is None else g.numpy()
    np.savez_compressed(OUT, torch_version=np.array(torch.__version__), **stored)
    print(f"wrote {OUT} ({len(CASES)} cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
