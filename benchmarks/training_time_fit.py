#!/usr/bin/env python3
"""Linear fits of the training-time study (benchmarks/hypergradient/training_time.bench.cpp).

Reads the JSON of

    hydra_bench_hypergradient --benchmark_filter='TrainingStep|StateUpdate' \
        --benchmark_repetitions=3 --benchmark_format=json --benchmark_out=training_time.json

and prints, per model and setting, the median step time (CPU) at each n, the least-squares line
t(n) = a + b·n over the n ≥ 1 cases (every one of them computes the batch's per-sample gradients; n = 0
does not), b per parameter, the largest residual, the same fit of the time inside before_update
("tracker s"), the update kernel alone (BM_StateUpdate) per tracked sample, the Exact ÷ HessianFree
ratio at equal n, and the paper's experiment extrapolated from these lines: tracking 20 000 samples of
DenseNet-40 for one epoch of 50 000 / 64 = 782 steps.

Usage: python3 benchmarks/training_time_fit.py training_time.json
"""
import json
import re
import statistics
import sys
from collections import defaultdict

NAME = re.compile(r"BM_TrainingStep<(\w+), hydra::(\w+)>/n:(\d+)/batch:(\d)/warm:\d")
UPDATE = re.compile(r"BM_StateUpdate/n:(\d+)/P:(\d+)")
UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def fit(points):
    """Least squares t = a + b n; returns a, b and the largest |residual| / t."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    a = my - b * mx
    worst = max(abs(y - (a + b * x)) / y for x, y in points)
    return a, b, worst


def main(path):
    with open(path) as f:
        runs = json.load(f)["benchmarks"]
    times = defaultdict(list)    # (model, policy, batch, n) -> CPU seconds per step
    tracker = defaultdict(list)  # the same, time inside before_update
    params = {}
    updates = {}
    for r in runs:
        if r.get("run_type") == "aggregate":
            continue
        name = r["run_name"] if "run_name" in r else r["name"]
        m = NAME.fullmatch(name.split("/iterations")[0])
        if m:
            model, policy, n, batch = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
            key = (model, policy, batch, n)
            times[key].append(r["cpu_time"] * UNIT[r["time_unit"]])
            tracker[key].append(r.get("tracker s", 0.0))
            params[model] = r["params"]
            continue
        m = UPDATE.fullmatch(name)
        if m:
            n, p = int(m.group(1)), int(m.group(2))
            updates.setdefault((n, p), []).append(r["cpu_time"] * UNIT[r["time_unit"]])
    med = {k: statistics.median(v) for k, v in times.items()}
    med_tracker = {k: statistics.median(v) for k, v in tracker.items()}
    lines = {}
    for model in params:
        for policy in ("HessianFree", "Exact"):
            for batch in (0, 1):
                ns = sorted(n for (m, p, b, n) in med if (m, p, b) == (model, policy, batch))
                if not ns:
                    continue
                setting = "batch" if batch else "running"
                print(f"{model} {policy} ({setting} statistics), |w| = {params[model]:.0f}")
                for n in ns:
                    k = (model, policy, batch, n)
                    print(f"  n = {n:6d}: step {med[k]*1e3:10.1f} ms, in before_update {med_tracker[k]*1e3:10.1f} ms"
                          f" ({len(times[k])} runs)")
                tracked = [n for n in ns if n > 0]
                if policy == "HessianFree" and len(tracked) >= 2:
                    a, b, worst = fit([(n, med[(model, policy, batch, n)]) for n in tracked])
                    at, bt, worstt = fit([(n, med_tracker[(model, policy, batch, n)]) for n in tracked])
                    lines[(model, batch)] = (a, b)
                    print(f"  step      = {a*1e3:.1f} ms + {b*1e6:.2f} µs·n  ({b/params[model]*1e9:.3f} ns per sample·parameter;"
                          f" largest residual {worst*100:.1f} %)")
                    print(f"  tracker   = {at*1e3:.1f} ms + {bt*1e6:.2f} µs·n  ({bt/params[model]*1e9:.3f} ns per sample·parameter;"
                          f" largest residual {worstt*100:.1f} %)")
                    base = med.get((model, "HessianFree", 0, 0))
                    if base:
                        print(f"  n = 0 (training alone): {base*1e3:.1f} ms; intercept ÷ training step = {a/base:.2f}")
    for (n, p), v in sorted(updates.items()):
        t = statistics.median(v)
        print(f"update kernel alone, n = {n}, |w| = {p}: {t*1e3:.1f} ms = {t/n*1e6:.2f} µs per sample"
              f" = {t/n/p*1e9:.3f} ns per sample·parameter")
    for model in params:
        for batch in (0, 1):
            for (m, p, b, n) in list(med):
                if (m, p, b) == (model, "Exact", batch) and (model, "HessianFree", batch, n) in med:
                    e, h = med[(m, p, b, n)], med[(model, "HessianFree", batch, n)]
                    per = (e - h) / n
                    print(f"{model}: Exact ÷ HessianFree step at n = {n} ({'batch' if batch else 'running'}): {e/h:.2f}"
                          f"  (Exact adds {per:.3f} s per tracked sample per step)")
                    if model == "densenet40" and (model, batch) in lines:
                        a, bh = lines[(model, batch)]
                        steps, tracked = 782, 20000
                        hf = a + bh * tracked
                        ex = hf + per * tracked
                        print(f"  extrapolated, 20 000 tracked, one epoch of {steps} steps: HessianFree {hf*steps/3600:.2f} h"
                              f" ({hf:.2f} s/step), Exact {ex*steps/3600/24/365:.2f} years ({ex/3600:.1f} h/step);"
                              f" ratio {ex/hf:.0f} (paper: 49 h ÷ 3 min ≈ 980)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "training_time.json")
