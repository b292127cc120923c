#!/usr/bin/env bash
# Installs what zo2 needs to build and test on Debian 12 (CPU): idempotent, prints what it installs.
# CUDA builds additionally need the CUDA toolkit and a LibTorch with CUDA (docs/building.md).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libtorch-dev                      # LibTorch 1.13 (CPU)
  libopenblas0-pthread              # fast BLAS for it (the reference libblas is ~3x slower)
  libboost-program-options-dev      # CLI and INI run files
  libopenmpi-dev openmpi-bin        # multi-rank runs and the mpi tests
  nlohmann-json3-dev                # safetensors headers, config.json, JSONL
  libpcre2-dev                      # GPT-2 pre-tokenisation (\p{L}, \p{N}, lookahead)
  libgtest-dev                      # tests
  python3                           # scripts/
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
