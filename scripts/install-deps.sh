#!/usr/bin/env bash
# Installs the Debian 12 packages that hydra's build, tests, examples and benchmarks need — only
# those that are missing. A machine that already has them all is left untouched (no apt-get update).
# CUDA is optional and not installed here.
#
# Runs as root, or through sudo when not root. HYDRA_SKIP_DEPS=1 skips this step entirely (for
# machines that provide the dependencies some other way).
set -euo pipefail

packages=(
  build-essential cmake g++
  libeigen3-dev xtensor-dev zlib1g-dev  # what the library itself needs
  doctest-dev libbenchmark-dev          # tests, benchmarks
  libcli11-dev libfmt-dev               # examples
  dataset-fashion-mnist                 # the main job's data: /usr/share/datasets/fashion-mnist/
  python3-numpy python3-matplotlib      # helper scripts; the figures of docs/experiments.md
  clang-14 libclang-rt-14-dev           # scripts/fuzz.sh: libFuzzer targets of tests/fuzz/
)

if [[ "${HYDRA_SKIP_DEPS:-0}" == 1 ]]; then
  echo "install-deps: HYDRA_SKIP_DEPS=1, not checking packages"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: dpkg-query not found; this script supports Debian 12 only." >&2
  echo "install-deps: install the equivalent of: ${packages[*]}" >&2
  echo "install-deps: then rerun with HYDRA_SKIP_DEPS=1" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} required Debian packages are already installed; nothing to do"
  exit 0
fi

as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}), and not root and no sudo to install them" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
echo "install-deps: done"
