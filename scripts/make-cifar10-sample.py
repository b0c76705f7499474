#!/usr/bin/python3
"""Writes CIFAR-10 files in the official binary format, with generated images, for tests.

    scripts/make-cifar10-sample.py FOLDER [RECORDS]

FOLDER gets data_batch_1.bin … data_batch_5.bin and test_batch.bin, RECORDS records each (default
100): one label byte (record r of every file has label r mod 10, so every class is present),
then 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, 32 × 32 row-major). The pixels are
a per-class colour plus noise from a fixed seed, so a network can learn something from them. This
is not CIFAR-10: no CIFAR-10 files exist on our machines; users give the real ones to the programs.
"""
import os
import sys

import numpy as np


def main(argv):
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder = argv[0]
    records = int(argv[1]) if len(argv) > 1 else 100
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(17)
    colours = rng.integers(40, 216, size=(10, 3))
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        labels = np.arange(records) % 10
        noise = rng.normal(0, 40, size=(records, 3, 1024))
        pixels = np.clip(colours[labels][:, :, None] + noise, 0, 255).astype(np.uint8)
        body = np.concatenate([labels.astype(np.uint8)[:, None], pixels.reshape(records, 3072)], axis=1)
        body.tofile(os.path.join(folder, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
