#!/usr/bin/env python3
"""PyTorch reference timings for hydra's LeNet-5 benchmarks (docs/performance.md, "LeNet-5 (CPU)").

Times, on the same CPU and in float32, the network of include/hydra/nn/lenet.hpp built as a
torch.nn.Sequential with the same parameter order:

  * one training epoch: 50,000 samples in batches of 64 (781 steps), SGD momentum 0.9, weight
    decay 2e-5, lr 0.01 -- the paper's Fashion-MNIST settings;
  * per-sample gradients of a batch of 64, with functorch's vmap(grad) (the fast way) and with a
    loop of 64 backward passes (the plain way).

With --hydra-bench PATH it also runs hydra's benchmark binary (hydra_bench_nn) on the LeNet cases in
the same invocation and prints the hydra / PyTorch ratios, so both sides see the same machine load.
Uses Debian's python3-torch (torch 1.13 with functorch). Inputs are real Fashion-MNIST images
when Debian's dataset-fashion-mnist is installed, otherwise uniform pixels (the timings do not
depend on the values).
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

FASHION_MNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
BATCH = 64
TRAIN = 50000


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def images(n, seed):
    if os.path.exists(FASHION_MNIST):
        with gzip.open(FASHION_MNIST, "rb") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
        x = raw[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255.0
        return torch.from_numpy(x), "Fashion-MNIST"
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=generator), "uniform pixels"


def best_of(repeats, fn):
    """Smallest wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def training_epoch_seconds(x, y, repeats):
    torch.manual_seed(0)
    model = lenet5()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-5)
    steps = x.shape[0] // BATCH

    def epoch():
        order = torch.randperm(x.shape[0])
        for s in range(steps):
            batch = order[s * BATCH:(s + 1) * BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()

    return best_of(repeats, epoch), steps


def per_sample_gradient_seconds(x, y, repeats):
    from functorch import grad, make_functional, vmap

    torch.manual_seed(0)
    model = lenet5()
    loss_fn = nn.CrossEntropyLoss()
    xb, yb = x[:BATCH], y[:BATCH]
    fmodel, params = make_functional(model)

    def sample_loss(p, xi, yi):
        return loss_fn(fmodel(p, xi.unsqueeze(0)), yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))

    def vectorised():
        grads = per_sample(params, xb, yb)
        return torch.cat([g.reshape(BATCH, -1) for g in grads], dim=1)

    def loop():
        rows = []
        for b in range(BATCH):
            model.zero_grad(set_to_none=True)
            loss_fn(model(xb[b:b + 1]), yb[b:b + 1]).backward()
            rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
        return torch.stack(rows)

    # Both ways must agree before either is timed.
    a, b = vectorised(), loop()
    assert a.shape == (BATCH, 61706), a.shape
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), float((a - b).abs().max())
    return best_of(repeats, vectorised), best_of(repeats, loop)


def hydra_rates(binary):
    """samples/s of hydra's LeNet training step and per-sample gradients (float), from JSON."""
    out = subprocess.run([binary, "--benchmark_filter=BM_LeNet(TrainingStep|PerSampleGradients)<float>",
                          "--benchmark_format=json", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    rates = {}
    for case in json.loads(out)["benchmarks"]:
        if case.get("aggregate_name") == "median":
            rates[case["run_name"]] = case["samples/s"]
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (hydra::cpu is single-threaded; default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions; the best is kept")
    parser.add_argument("--train-size", type=int, default=TRAIN, help="samples in the timed epoch")
    parser.add_argument("--hydra-bench", help="path of hydra_bench_nn, to time hydra in the same run")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    x, source = images(args.train_size, 0)
    y = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(1))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {source}, float32, batch {BATCH}")

    epoch, steps = training_epoch_seconds(x, y, args.repeats)
    train_rate = steps * BATCH / epoch
    print(f"training epoch ({steps} steps): {epoch:.2f} s = {train_rate:,.0f} samples/s")
    vectorised, loop = per_sample_gradient_seconds(x, y, max(args.repeats, 5))
    psg_rate = BATCH / vectorised
    print(f"per-sample gradients, batch {BATCH}: vmap(grad) {1e3 * vectorised:.2f} ms = {psg_rate:,.0f} samples/s; "
          f"loop of backward passes {1e3 * loop:.2f} ms = {BATCH / loop:,.0f} samples/s")

    if args.hydra_bench:
        rates = hydra_rates(args.hydra_bench)
        hydra_train = rates["BM_LeNetTrainingStep<float>"]
        hydra_psg = rates["BM_LeNetPerSampleGradients<float>"]
        print(f"hydra: training step {hydra_train:,.0f} samples/s (epoch of {steps} steps ≈ "
              f"{steps * BATCH / hydra_train:.2f} s), per-sample gradients {hydra_psg:,.0f} samples/s")
        print(f"ratio hydra / PyTorch (samples/s, higher is better for hydra): training {hydra_train / train_rate:.2f}, "
              f"per-sample gradients {hydra_psg / psg_rate:.2f} (vs the loop: {hydra_psg * loop / BATCH:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
