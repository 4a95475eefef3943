#!/usr/bin/env bash
# Fetch the wheels that benchmarks/gpu.py needs on the lent GPU machine into .whl/ (git-ignored).
# That machine's image has torch, transformers, accelerate, safetensors, psutil, pillow, numpy and
# scikit-image, but no diffusers, and it cannot reach a package registry: the wheel travels with the
# working tree (`carry: [".whl"]`). diffusers is pure Python (py3-none-any); on Python >= 3.8 it
# needs nothing else that the image lacks (it uses importlib.metadata, not importlib_metadata).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
mkdir -p .whl
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "diffusers==$(grep -i '^diffusers==' requirements.txt | cut -d= -f3)"
ls -la .whl
