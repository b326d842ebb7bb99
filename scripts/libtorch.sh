#!/usr/bin/env bash
# Fetch libtorch 2.13.0 (the version tch 0.26 pins) from PyPI wheels, once per machine.
#
#   scripts/libtorch.sh          CPU libtorch (~540 MB) cached in $PRUNELAB_CACHE (default ~/.cache/prunelab)
#   scripts/libtorch.sh cuda     a virtualenv with torch==2.13.0 (~3.5 GB) for CUDA builds
#
# Either way the clone's `.libtorch` becomes a link to it, which `.cargo/config.toml` hands to tch's
# build as LIBTORCH, so that plain `cargo build/test/run` work afterwards. Idempotent: a cache whose
# build-version reads 2.13.0 is reused; anything else is rebuilt in a temporary folder and moved into
# place only when complete, so an interrupted run never leaves a half-extracted libtorch behind.
set -euo pipefail

version=2.13.0
cuda_runtime=13.0.96
cuda_cupti=13.0.85
cache=${PRUNELAB_CACHE:-$HOME/.cache/prunelab}
variant=cpu
repo=$(cd "$(dirname "$0")/.." && pwd)
for arg in "$@"; do
  case "$arg" in
    cpu|cuda) variant=$arg ;;
    *) echo "usage: scripts/libtorch.sh [cpu|cuda]" >&2; exit 2 ;;
  esac
done

say() { echo "libtorch: $*" >&2; }
use() {
  if [ "$(readlink "$repo/.libtorch" 2>/dev/null)" != "$1" ]; then
    ln -sfn "$1" "$repo/.libtorch"
    # torch-sys caches what it found; make it look again
    if [ -d "$repo/target" ]; then (cd "$repo" && cargo clean -q -p torch-sys) || true; fi
  fi
  say "ready: $1 (linked as .libtorch)"
}
need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if ! need apt-get; then echo "libtorch: please install $* (no apt-get here)" >&2; exit 1; fi
  say "installing $* with apt-get"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
}

if [ "$variant" = cuda ]; then
  venv=$cache/torch-$version-venv
  if ! "$venv/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
    say "creating $venv with torch==$version (large download)"
    rm -rf "$venv.partial"
    python3 -m venv "$venv.partial"
    "$venv.partial/bin/pip" install -q "torch==$version"
    rm -rf "$venv"; mv "$venv.partial" "$venv"
    # a venv records its own path; recreate the scripts so they point at the final location
    python3 -m venv --upgrade "$venv" >/dev/null
  fi
  use "$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
  exit 0
fi

dir=$cache/libtorch-$version-cpu
if [ "$(cat "$dir/build-version" 2>/dev/null)" = "$version" ] && [ -f "$dir/lib/libtorch_cpu.so" ]; then
  use "$dir"
  exit 0
fi

need unzip || apt_install unzip
need patchelf || apt_install patchelf
need python3 || { echo "libtorch: python3 with pip is needed to download the torch wheel" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.libtorch-XXXXXX")
trap 'rm -rf "$work"' EXIT
say "downloading torch==$version and the CUDA runtime wheels it links against"
python3 -m pip download -q --no-deps -d "$work/wheels" \
  "torch==$version" "nvidia-cuda-runtime==$cuda_runtime" "nvidia-cuda-cupti==$cuda_cupti"

stage=$work/libtorch
mkdir -p "$stage/lib"
libs="libc10.so libtorch_cpu.so libtorch.so libgomp.so.1 libshm.so libtorch_global_deps.so"
unzip -q "$work"/wheels/torch-*.whl 'torch/include/*' $(for l in $libs; do echo "torch/lib/$l"; done) -d "$work/torch"
mv "$work/torch/torch/include" "$stage/include"
for l in $libs; do mv "$work/torch/torch/lib/$l" "$stage/lib/"; done
for w in "$work"/wheels/nvidia_cuda_runtime-*.whl "$work"/wheels/nvidia_cuda_cupti-*.whl; do
  unzip -q "$w" -d "$work/nvidia"
done
find "$work/nvidia" \( -name 'libcudart.so.13*' -o -name 'libcupti.so.13*' \) -exec cp {} "$stage/lib/" \;
[ -f "$stage/lib/libcudart.so.13" ] && [ -f "$stage/lib/libcupti.so.13" ] \
  || { echo "libtorch: libcudart.so.13 / libcupti.so.13 not found in the nvidia wheels" >&2; exit 1; }
# libtorch.so names libtorch_cuda.so as needed; the CPU variant has none.
patchelf --remove-needed libtorch_cuda.so "$stage/lib/libtorch.so"
echo "$version" > "$stage/build-version"

rm -rf "$dir"
mv "$stage" "$dir"
use "$dir"
