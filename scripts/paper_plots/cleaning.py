"""Experiment 3, cleaning noisy labels (paper Table 3 at 80 %, supplement Table 4 at 50 %):
final test accuracy after removing the least useful r% by each score and retraining, per noise
rate, with the paper's values for the data set marked; and each score's detection AUC for the
flipped samples with the fraction of the removed samples that were flipped."""
import numpy as np
import matplotlib.pyplot as plt

from .common import dataset_label, read_csv, save

METHODS = [("none", "no filtering"), ("influence", "influence\nfunctions"),
           ("hydra_hessian_free", "HYDRA\nHessian-free"), ("hydra_exact", "HYDRA\nExact"),
           ("flipped_removed", "flipped\nremoved"), ("random_removed", "random\nremoved")]
SCORES = [("influence", "influence functions"), ("hydra_hessian_free", "HYDRA Hessian-free"),
          ("hydra_exact", "HYDRA Exact")]
# The paper's final test accuracies (%), LeNet-5: main Table 3 (80 %) and supplement Table 4
# (50 %). Its HYDRA row is the Hessian-free method; its MNIST rows used 50,000 digits.
PAPER = {"fashion-mnist": {0.8: {"none": 78.52, "influence": 63.20, "hydra_hessian_free": 86.72},
                           0.5: {"none": 87.44, "influence": 76.70, "hydra_hessian_free": 87.28}},
         "mnist": {0.8: {"none": 72.93, "influence": 90.07, "hydra_hessian_free": 98.31},
                   0.5: {"none": 94.65, "influence": 93.83, "hydra_hessian_free": 98.31}}}
COLOURS = ["#7f7f7f", "#d62728", "#1f77b4", "#17becf", "#2ca02c", "#bcbd22"]


def _paper(dataset, rate, key):
    for r, values in PAPER.get(dataset, {}).items():
        if abs(r - rate) < 1e-9:
            return values.get(key)
    return None


def plot(folder, settings):
    acc = read_csv(folder, "accuracy.csv")
    auc = read_csv(folder, "auc.csv")
    precision = read_csv(folder, "precision.csv")
    rates = acc["noise_rate"]
    s = settings["settings"]
    dataset = s.get("dataset", "fashion-mnist")  # folders written before --dataset are Fashion-MNIST
    # The paper's scale, whatever the noise rates and solver settings (a --paper run of one rate).
    full_scale = dataset == "fashion-mnist" and int(s["train_size"]) == 50000 and int(s["epochs"]) == 20
    scale = (f"{int(s['train_size']):,} training samples, LeNet-5, {int(s['epochs'])} epoch{'s' if int(s['epochs']) != 1 else ''}"
             + ("" if full_scale else "\n(scaled; the paper: 50,000 samples, 20 epochs)"))

    fig, axes = plt.subplots(1, len(rates), figsize=(5.6 * len(rates) + 0.6, 5.0), squeeze=False)
    for ax, k in zip(axes[0], range(len(rates))):
        rate = rates[k]
        values = [100 * acc[f"{key}_test_accuracy"][k] for key, _ in METHODS]
        x = np.arange(len(METHODS))
        bars = ax.bar(x, values, color=COLOURS, width=0.7)
        for bar, v in zip(bars, values):
            if np.isfinite(v):
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.8, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        marked = False
        for i, (key, _) in enumerate(METHODS):
            p = _paper(dataset, rate, key)
            if p is not None:
                ax.plot([i - 0.38, i + 0.38], [p, p], color="black", linewidth=2,
                        label="paper" if not marked else None)
                ax.text(i + 0.40, p, f"{p:.1f}", va="center", ha="left", fontsize=7)
                marked = True
        ax.set_xticks(x)
        ax.set_xticklabels([label for _, label in METHODS], fontsize=8)
        ax.set_ylim(0, 112)
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title(f"{100 * rate:g}% wrong labels: remove the lowest {int(acc['removed'][k]):,}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if marked:
            ax.legend(loc="upper right", fontsize=8, ncol=1, framealpha=0.9)
    fig.suptitle(f"Cleaning noisy labels, {dataset_label(settings)}: {scale}", fontsize=10)
    written = save(fig, folder, "cleaning_accuracy")

    fig, axes = plt.subplots(1, 2, figsize=(6 + 2.5 * len(rates), 4.8))
    width = 0.75 / len(SCORES)
    x = np.arange(len(rates))
    for j, (key, label) in enumerate(SCORES):
        offset = (j - (len(SCORES) - 1) / 2) * width
        axes[0].bar(x + offset, auc[key], width, color=COLOURS[j + 1], label=label)
        axes[1].bar(x + offset, 100 * precision[key], width, color=COLOURS[j + 1], label=label)
        for xi, a, p in zip(x + offset, auc[key], precision[key]):
            if np.isfinite(a):
                axes[0].text(xi, a + 0.01, f"{a:.3f}", ha="center", va="bottom", fontsize=7)
            if np.isfinite(p):
                axes[1].text(xi, 100 * p + 1, f"{100 * p:.1f}", ha="center", va="bottom", fontsize=7)
    axes[0].axhline(0.5, color="black", linestyle="--", linewidth=1, label="chance")
    axes[0].set_ylim(0, 1.25)
    axes[0].set_ylabel("detection AUC (score −C, flipped = positive)")
    axes[1].hlines(100 * precision["random_removed"], x - 0.42, x + 0.42, color="black", linewidth=2,
                   label="random removal")
    axes[1].set_ylim(0, 125)
    axes[1].set_ylabel("removed samples that were flipped (%)")
    for ax, title in zip(axes, ["detection AUC of each score", "precision of the removal"]):
        ax.set_xticks(x)
        ax.set_xticklabels([f"{100 * r:g}% wrong labels" for r in rates])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_xlim(-0.6, len(rates) - 0.4)
        ax.legend(loc="upper center", fontsize=7, ncol=2, framealpha=0.9)
    fig.suptitle(f"Finding the flipped labels by their contribution to the validation loss: {scale}", fontsize=10)
    written += save(fig, folder, "cleaning_detection")
    return written
