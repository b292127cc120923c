#!/usr/bin/env bash
# Builds zo2 with CUDA against the LibTorch inside a pip torch (torch 2.x + CUDA 13, e.g. the H100
# machines) into build-gpu/. Usage: scripts/build-gpu.sh [--debs DIR] [extra cmake args]
#   --debs DIR  unpack Debian .deb files from DIR into build-gpu/deps first (for machines without a
#               package registry that lack Boost.Program_options or PCRE2 headers: docs/building.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DEBS=""
if [ "${1:-}" = "--debs" ]; then DEBS="$2"; shift 2; fi
DEPS="$PWD/build-gpu/deps"
EXTRA=()
if [ -n "$DEBS" ]; then
  mkdir -p "$DEPS"
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$DEPS"; done
  EXTRA+=(-DBoost_ROOT="$DEPS/usr" -DBoost_NO_SYSTEM_PATHS=ON -DPCRE2_ROOT="$DEPS/usr")
  EXTRA+=(-Dboost_program_options_DIR="$DEPS/usr/lib/x86_64-linux-gnu/cmake/boost_program_options-1.74.0")
  EXTRA+=(-DBoost_DIR="$DEPS/usr/lib/x86_64-linux-gnu/cmake/Boost-1.74.0")
fi
PY=${PYTHON:-python3}
TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
NCCL_ROOT=$($PY -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
cmake -S . -B build-gpu "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" ${NCCL_ROOT:+-DNCCL_ROOT="$NCCL_ROOT"} "${EXTRA[@]}" "$@"
cmake --build build-gpu -j"$(nproc)"
