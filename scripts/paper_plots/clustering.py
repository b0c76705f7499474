"""Experiment 4, clustering mislabelled data (the paper's Table 4): per-class Jaccard bars with the
paper's means, and a 2-D view (first two principal components) of one class's sign vectors."""
import csv
import os

import matplotlib.pyplot as plt
import numpy as np

from .common import class_names, load, read_csv, save

METHODS = [  # key in the CSVs, label, colour
    ("hydra_hessian_free", "HYDRA Hessian-free", "tab:blue"),
    ("hydra_exact", "HYDRA Exact", "tab:green"),
    ("influence", "influence functions", "tab:red"),
    ("random_split", "random 2-split (chance)", "tab:gray"),
]
GROUPS = [("correct", "correct labels"), ("random", "random labels")]


def _table4(folder):
    with open(os.path.join(folder, "table4.csv")) as f:
        return {row["method"]: {k: float(v) for k, v in row.items() if k != "method"} for row in csv.DictReader(f)}


def _bars(folder, settings, table):
    per_class = read_csv(folder, "jaccard_per_class.csv")
    classes = per_class["class"].astype(int)
    names = [class_names(settings)[c] for c in classes]
    fig, axes = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    width = 0.8 / len(METHODS)
    x = np.arange(len(classes))
    for ax, (group, title) in zip(axes, GROUPS):
        for k, (key, label, colour) in enumerate(METHODS):
            mean = table[key][f"{group}_labels"]
            ax.bar(x + (k - (len(METHODS) - 1) / 2) * width, 100 * per_class[f"{key}_{group}"], width,
                   color=colour, label=f"{label} (mean {100 * mean:.1f}%)")
        # The paper's means (Table 4, Fashion-MNIST): HYDRA and influence functions.
        for key, colour, who in (("hydra_hessian_free", "tab:blue", "HYDRA"), ("influence", "tab:red", "IF")):
            paper = table[key][f"paper_{group}_labels"]
            if np.isfinite(paper):
                ax.axhline(100 * paper, color=colour, linestyle="--", linewidth=1.5,
                           label=f"paper, {who}: {100 * paper:.2f}%")
        ax.set_ylabel(f"Jaccard index, {title} (%)")
        ax.set_ylim(0, 118)  # room for the legend above the bars
        ax.set_yticks(range(0, 101, 20))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=3, loc="upper left")
    axes[-1].set_xticks(x, names, rotation=20)
    axes[-1].set_xlabel("given (noisy) label")
    s = settings["settings"]
    fig.suptitle(f"Table 4: k-means (k = 2) on the signs of C(i, j) to {int(s['validation_points'])} validation points; "
                 f"{int(s['train_size'])} training samples, {100 * s['noise_rate']:.0f}% uniformly wrong, "
                 f"{int(s['epochs'])} epochs;\ninfluence functions with (H + {s['damping']:g}·I)⁻¹ ({s['ihvp']}); "
                 f"dashed: the paper's means ({'MNIST' if settings['settings'].get('dataset') == 'mnist' else 'Fashion-MNIST'})",
                 fontsize=10)
    return save(fig, folder, "clustering_jaccard")


def _view(folder, settings):
    s = settings["settings"]
    c = int(s["view_class"])
    given = load(folder, "given_labels.npy")
    flipped = load(folder, "is_flipped.npy").astype(bool)
    variance = read_csv(folder, "principal_variance.csv")
    rows = given == c
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for ax, (key, label, _) in zip(axes, METHODS[:3]):
        view = load(folder, f"view_{key}.npy")[rows]
        predicted = load(folder, f"predicted_flipped_{key}.npy").astype(bool)[rows]
        truth = flipped[rows]
        for is_flipped, colour, name in ((False, "tab:blue", "correct label"), (True, "tab:orange", "random label")):
            for pred, marker in ((False, "o"), (True, "x")):
                pick = (truth == is_flipped) & (predicted == pred)
                ax.scatter(view[pick, 0], view[pick, 1], s=14, c=colour, marker=marker, alpha=0.5, linewidths=1,
                           label=f"{name}, clustered as {'random' if pred else 'correct'} ({pick.sum()})")
        at = np.flatnonzero(variance["class"].astype(int) == c)[0]
        pc1, pc2 = variance[f"{key}_pc1"][at], variance[f"{key}_pc2"][at]
        ax.set_title(f"{label}", fontsize=10)
        ax.set_xlabel(f"PC 1 ({100 * pc1:.1f}% of variance)")
        ax.set_ylabel(f"PC 2 ({100 * pc2:.1f}%)")
        ax.legend(fontsize=6.5, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Sign vectors of the samples labelled '{class_names(settings)[c]}' ({rows.sum()} samples, "
                 f"{flipped[rows].sum()} wrongly): first two principal components (identical sign vectors overlap)",
                 fontsize=10)
    return save(fig, folder, "clustering_view")


def plot(folder, settings):
    table = _table4(folder)
    return _bars(folder, settings, table) + _view(folder, settings)
