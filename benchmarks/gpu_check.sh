#!/usr/bin/env bash
# Check minigrad on an NVIDIA GPU: install the gpu extra, run the CUDA tests, time the medium step.
#
#   bash benchmarks/gpu_check.sh                 # venv in .venv-gpu (created if missing)
#   VENV=/path/to/venv bash benchmarks/gpu_check.sh
#   WITH_TORCH=1 bash benchmarks/gpu_check.sh    # also pip-install torch for the CUDA comparison
#   CONFIGS="tiny small medium" bash benchmarks/gpu_check.sh   # step 4 for these configs (default: medium)
#   ACCEL=on bash benchmarks/gpu_check.sh        # step 4 with these --accel values only (default: "on off")
#   NO_INSTALL=1 PYTHON=python3 bash benchmarks/gpu_check.sh
#                                                # no venv, no pip: use a Python that already has
#                                                # numpy, cupy, pytest (and torch), e.g. an offline GPU box
#
# Steps:
#   1. create (or reuse) the virtualenv $VENV and `pip install -e '.[gpu,test]'` (CuPy for CUDA 12);
#      with NO_INSTALL=1, run $PYTHON on this checkout (PYTHONPATH) instead;
#   2. print the GPU (nvidia-smi), check that CuPy sees it and minigrad.is_available("cuda"), and
#      print minigrad.accel.enable()'s status (the CUDA kernels compile on first use);
#   3. run tests/test_cupy.py (if present) and every other test module that mentions the
#      "cuda" device, with -v (they skip themselves when no GPU is usable, so a run that
#      only skips is reported as a failure here);
#   4. run benchmarks/encoder_step.py --config medium --device cuda --accel on|off (each of $CONFIGS and
#      $ACCEL): minigrad on the GPU (CuPy, synchronized after every step; --accel on: minigrad's CUDA
#      kernels, off: the reference ops in CuPy calls) and, when the venv's torch has CUDA, the same
#      step in PyTorch on the GPU (torch.cuda.synchronize()); otherwise minigrad only.
# Exit status: non-zero as soon as a step fails.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-gpu}"
PYTHON="${PYTHON:-python3}"

if [ "${NO_INSTALL:-0}" = "1" ]; then
    echo "== 1. no install: $PYTHON on this checkout"
    PY="$(command -v "$PYTHON")"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    "$PY" -c "import sys, numpy, cupy, pytest; print(sys.version.split()[0], 'numpy', numpy.__version__)"
else
    echo "== 1. virtualenv $VENV"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
    "$PY" -m pip install --upgrade pip >/dev/null
    "$PY" -m pip install -e '.[gpu,test]'
    if [ "${WITH_TORCH:-0}" = "1" ]; then
        "$PY" -m pip install torch threadpoolctl psutil
    fi
fi

echo "== 2. the GPU"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
else
    echo "nvidia-smi not found"
fi
"$PY" - <<'PY'
import cupy
import minigrad

print("cupy", cupy.__version__, "devices:", cupy.cuda.runtime.getDeviceCount())
print("device 0:", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
assert minigrad.is_available("cuda"), "minigrad cannot use device 'cuda'"
x = minigrad.randn(3, 4, device="cuda", requires_grad=True)
(x * x).sum().backward()
assert x.grad.device == "cuda"
print("minigrad cuda smoke test: OK")
print(minigrad.accel.enable())
y = minigrad.randn(4, 8, device="cuda", requires_grad=True)
minigrad.functional.layer_norm(y, 8).sum().backward()  # a CUDA kernel forward and backward
assert y.grad.device == "cuda"
print("minigrad accelerated cuda smoke test: OK")
PY

echo "== 3. CUDA tests"
tests=()
if [ -f tests/test_cupy.py ]; then
    tests+=(tests/test_cupy.py)
fi
while IFS= read -r f; do
    [ "$f" = tests/test_cupy.py ] || tests+=("$f")
done < <(grep -l -E "[\"']cuda[\"']" tests/test_*.py 2>/dev/null || true)
if [ ${#tests[@]} -eq 0 ]; then
    echo "no test module exercises device 'cuda'"
else
    echo "modules: ${tests[*]}"
    # -rs lists the skipped tests with their reasons
    "$PY" -m pytest "${tests[@]}" -v -rs -p no:cacheprovider | tee /tmp/gpu_check_pytest.txt
    if grep -q -E "^=+ .*skipped" /tmp/gpu_check_pytest.txt && ! grep -q -E "[0-9]+ passed" /tmp/gpu_check_pytest.txt; then
        echo "every CUDA test was skipped: the GPU was not used" >&2
        exit 1
    fi
fi

echo "== 4. training steps on the GPU: ${CONFIGS:-medium}, --accel ${ACCEL:-on off}"
torch_flag=--no-torch
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    torch_flag=
    echo "torch with CUDA found: comparing with PyTorch on the GPU"
else
    echo "no torch with CUDA for $PY (WITH_TORCH=1 installs one): minigrad only"
fi
for config in ${CONFIGS:-medium}; do
    for accel in ${ACCEL:-on off}; do
        "$PY" benchmarks/encoder_step.py --config "$config" --device cuda --accel "$accel" $torch_flag
    done
done
echo "== gpu_check: OK"
