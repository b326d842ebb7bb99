#!/usr/bin/env bash
# Creates (once) the Python virtualenv the PyTorch comparison scripts need: torch==2.13.0 (the
# libtorch prunelab links; PyPI's wheel, ~3.5 GB with its CUDA libraries), numpy and safetensors,
# in ${PRUNELAB_CACHE:-~/.cache/prunelab}/pyvenv, and prints the path of its python.
#   "$(scripts/pytorch-env.sh)" scripts/pytorch-crosscheck.py --activation sigmoid
set -euo pipefail
cache=${PRUNELAB_CACHE:-$HOME/.cache/prunelab}
venv="$cache/pyvenv"
if ! "$venv/bin/python" -c 'import torch, numpy, safetensors' >/dev/null 2>&1; then
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q torch==2.13.0 numpy safetensors >&2
fi
echo "$venv/bin/python"
