#!/usr/bin/env python3
"""Compares two results folders of a paper program (examples/paper/) number by number.

    compare_results.py [--rtol R] EXPECTED ACTUAL

Every .csv and .npy file of EXPECTED must exist in ACTUAL with the same shape; text cells must be
equal, NaN must stand where NaN stands, and every finite number x' of ACTUAL must lie within
R * max|x| of its x in EXPECTED, max|x| taken over the file's column (CSV) or array (.npy), so
that values near zero are judged on their array's scale. settings.json is left out (it holds the
device and the wall time), and so are CSV columns named seconds or *_seconds (wall time).
--rtol-file NAME=R judges file NAME to R instead: a quantity that passes through a kink of the
model (a ReLU or a max-pool at a rounding-level tie) moves by more than rounding between devices.
Exit code 0 when all agree, 1 with one line per difference otherwise. Used by the tests that run a
program with --device cuda (host-emulated) against its CPU run.
"""

import argparse
import csv
import math
import pathlib
import sys

import numpy as np


def numbers(cells):
    out = []
    for cell in cells:
        try:
            out.append(float(cell))
        except ValueError:
            return None
    return np.array(out)


def compare_arrays(name, expected, actual, rtol, problems):
    if expected.shape != actual.shape:
        problems.append(f"{name}: shape {actual.shape}, expected {expected.shape}")
        return
    expected = expected.astype(np.float64)
    actual = actual.astype(np.float64)
    nan_expected, nan_actual = np.isnan(expected), np.isnan(actual)
    if not np.array_equal(nan_expected, nan_actual):
        problems.append(f"{name}: NaN at {int(np.sum(nan_expected != nan_actual))} places where the other has a number")
        return
    finite = ~nan_expected
    if not finite.any():
        return
    scale = float(np.max(np.abs(expected[finite])))
    difference = np.abs(expected[finite] - actual[finite])
    worst = float(np.max(difference))
    if worst > rtol * scale:
        k = int(np.argmax(difference))
        problems.append(f"{name}: largest difference {worst:.3e} (at flat index {k}: {expected[finite][k]!r} vs "
                        f"{actual[finite][k]!r}) exceeds {rtol:g} x {scale:.3e}")


def compare_csv(name, expected_path, actual_path, rtol, problems):
    with open(expected_path, newline="") as f:
        expected = list(csv.reader(f))
    with open(actual_path, newline="") as f:
        actual = list(csv.reader(f))
    if len(expected) != len(actual) or any(len(a) != len(b) for a, b in zip(expected, actual)):
        problems.append(f"{name}: {len(actual)} rows, expected {len(expected)} (or rows of other lengths)")
        return
    if expected and expected[0] != actual[0]:
        problems.append(f"{name}: header {actual[0]}, expected {expected[0]}")
        return
    for column in range(len(expected[0]) if expected else 0):
        header = expected[0][column]
        if header == "seconds" or header.endswith("_seconds"):
            continue  # wall time: it depends on the machine and its load, not on the computation
        e = [row[column] for row in expected[1:]]
        a = [row[column] for row in actual[1:]]
        e_numbers, a_numbers = numbers(e), numbers(a)
        if e_numbers is None or a_numbers is None:
            for row, (x, y) in enumerate(zip(e, a)):
                if x != y:
                    problems.append(f"{name}: column {header}, row {row + 1}: {y!r}, expected {x!r}")
            continue
        compare_arrays(f"{name}: column {header}", e_numbers, a_numbers, rtol, problems)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("expected", type=pathlib.Path)
    parser.add_argument("actual", type=pathlib.Path)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--rtol-file", action="append", default=[], metavar="NAME=R")
    args = parser.parse_args()
    rtol_of = {}
    for item in args.rtol_file:
        name, _, value = item.partition("=")
        try:
            rtol_of[name] = float(value)
        except ValueError:
            sys.exit(f"compare_results.py: --rtol-file takes NAME=R, got {item!r}")
    for r in [args.rtol, *rtol_of.values()]:
        if not math.isfinite(r) or r < 0:
            sys.exit(f"compare_results.py: a tolerance must be finite and >= 0, got {r}")
    problems, compared = [], 0
    files = sorted(p for p in args.expected.iterdir() if p.suffix in (".csv", ".npy"))
    if not files:
        sys.exit(f"compare_results.py: {args.expected} holds no .csv or .npy file")
    for path in files:
        other = args.actual / path.name
        if not other.exists():
            problems.append(f"{path.name}: missing in {args.actual}")
            continue
        rtol = rtol_of.get(path.name, args.rtol)
        if path.suffix == ".npy":
            compare_arrays(path.name, np.load(path), np.load(other), rtol, problems)
        else:
            compare_csv(path.name, path, other, rtol, problems)
        compared += 1
    for line in problems:
        print(f"compare_results.py: {line}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"compare_results.py: {compared} files of {args.actual} agree with {args.expected} to {args.rtol:g}")


if __name__ == "__main__":
    main()
