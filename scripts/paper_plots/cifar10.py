"""CIFAR-10 end to end (examples/paper/cifar10.cpp): the tracked training images with the largest
and the smallest contribution C(i) to the mean test loss, with their class and C(i)."""
import csv
import os

import matplotlib.pyplot as plt
import numpy as np

from .common import load, save

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def plot(folder, settings):
    with open(os.path.join(folder, "tracked.csv")) as f:
        rows = list(csv.DictReader(f))  # its "class" column is text
    tracked = {key: np.array([float(r[key]) for r in rows]) for key in ("train_index", "label", "contribution")}
    images = load(folder, "tracked_images.npy")  # n × 3 × 32 × 32 in [0, 1]
    order = np.argsort(-tracked["contribution"], kind="stable")
    k = max(1, min(8, len(order) // 2))
    rows = [("largest C(i)", order[:k]), ("smallest C(i)", order[::-1][:k])]
    fig, axes = plt.subplots(2, k, figsize=(1.6 * k + 0.6, 4.2), squeeze=False)
    for r, (what, chosen) in enumerate(rows):
        for c in range(k):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(chosen):
                continue
            i = chosen[c]
            ax.imshow(np.clip(images[i].transpose(1, 2, 0), 0, 1), interpolation="nearest")
            label = int(tracked["label"][i])
            ax.set_title(f"#{int(tracked['train_index'][i])} {CIFAR10_CLASSES[label]}\n"
                         f"C = {tracked['contribution'][i]:.2e}", fontsize=7)
        axes[r][0].text(-0.15, 0.5, what, transform=axes[r][0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=9)
    s = settings["settings"]
    fig.suptitle(f"CIFAR-10, {s['model']}: tracked training images by C(i) on {int(s['test_size'])} test images "
                 f"({s['method']}, {s['batch_norm']} statistics)", fontsize=9)
    return save(fig, folder, "cifar10_extremes")
