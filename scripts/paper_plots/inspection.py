"""Experiment 2, the manual inspection (paper Table 2 and Figure 2; supplement Tables 1-2), from
what examples/paper/inspection.cpp wrote:

- inspection_distribution: the C(i) of every training sample (exact and Hessian-free), their mean
  and standard deviation beside the paper's Fashion-MNIST (-4.9858e-7, 1.0e-4), and Hessian-free
  against exact;
- inspection_inter_class: the inter-class matrix (Eq. 23), raw and normalised by
  sqrt(row sum x column sum), for both methods; the class pairs the paper calls symmetric low
  contributions are outlined; entries whose normalisation is undefined are grey "n/a";
- inspection_extremes: the most helpful and most harmful training images with true label,
  predicted label, confidence and C(i);
- inspection_neighbours: each of them with the test images whose loss it changes most, C(i, j)
  signed.
"""
import os
import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from .common import class_names, load, read_csv, save

FASHION_PAIRS = [2, 4, 0, 6, 7, 9]  # (Pullover, Coat), (T-shirt, Shirt), (Sneaker, Ankle boot)
FASHION_SHORT = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
PAPER_EXAMPLES = {  # Table 2 of the paper (50,000 training images)
    "Fashion-MNIST": "Coat / Pullover, confidence 0.66, C = +0.93e-3",
    "MNIST": "5 / 5, confidence 0.66, C = -1.0e-4; 8 / 8, confidence 0.73, C = +4.8e-5",
}
HELP, HARM = "#1a7f37", "#b3261e"


def _recurrence(s):
    """'' or, where the recurrence's weight decay is not training's (experiment 5), a note saying so."""
    decay = s.get("recurrence_decay", s["weight_decay"])
    return "" if decay == s["weight_decay"] else f"; recurrence weight decay {decay:g} (the published code's)"


def _dataset(settings):
    """What the figures take from the run's data set: its name, class names (short ones for ticks),
    the pairs the paper outlines (settings' paper_pairs; folders written before it are Fashion-MNIST)."""
    s = settings["settings"]
    names = class_names(settings)
    mnist = s.get("dataset") == "mnist"
    flat = [int(v) for v in s.get("paper_pairs", FASHION_PAIRS)]
    return {"label": "MNIST" if mnist else "Fashion-MNIST", "names": names,
            "short": names if mnist else FASHION_SHORT, "pairs": list(zip(flat[0::2], flat[1::2]))}


def _matrix(folder, name):
    table = read_csv(folder, name)
    return np.array([table[c] for c in list(table)[1:]]).T  # rows: training class; columns: test class


def _distribution(folder, settings):
    exact = load(folder, "contributions_exact.npy")
    hessian_free = load(folder, "contributions_hessian_free.npy")
    summary = read_csv(folder, "summary.csv")
    paper_mean, paper_std = settings["settings"]["paper_mean"], settings["settings"]["paper_std"]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(18, 5.6))
    for ax, values, label, colour in ((left, exact, "exact (adjoint)", "tab:blue"),
                                      (middle, hessian_free, "Hessian-free (adjoint)", "tab:orange")):
        lo, hi = min(values.min(), -paper_std), max(values.max(), paper_std)
        ax.hist(values, bins=np.linspace(lo, hi, 80), color=colour, alpha=0.75, label=label)
        ax.set_yscale("log")
        for x in (paper_mean - paper_std, paper_mean + paper_std):
            ax.axvline(x, color="k", linestyle="--", linewidth=1)
        ax.axvline(paper_mean, color="k", linestyle=":", linewidth=1, label="paper: mean; mean ± std (dashed)")
        ax.set_xlabel("C(i) on the mean test loss (positive = helpful)")
        ax.set_ylabel("training samples")
        ax.legend(loc="upper left", fontsize=8)
    text = "\n".join([
        f"C(i) of all {len(exact):,} training samples     mean        std",
        f"  exact (adjoint)                   {summary['mean'][0]:+.3e}  {summary['std'][0]:.3e}",
        f"  Hessian-free (adjoint)            {summary['mean'][1]:+.3e}  {summary['std'][1]:.3e}",
        f"  paper, {_dataset(settings)['label'] + ', 50,000':<26}{paper_mean:+.3e}  {paper_std:.3e}",
    ])
    left.set_title(text, fontsize=8, family="monospace", loc="left")
    middle.set_title("Hessian-free (the paper's approximation): mind the wider x-range", fontsize=9)

    lo = min(exact.min(), hessian_free.min())
    hi = max(exact.max(), hessian_free.max())
    right.scatter(exact, hessian_free, s=3, alpha=0.4, color="tab:blue", rasterized=True)
    line = [min(lo, 0), max(hi, 0)]
    right.plot(line, line, color="k", linewidth=0.8, label="y = x")
    right.axhline(0, color="0.6", linewidth=0.6)
    right.axvline(0, color="0.6", linewidth=0.6)
    right.set_xlabel("exact C(i)")
    right.set_ylabel("Hessian-free C(i)")
    right.set_title(f"Hessian-free against exact: sign error {summary['sign_error_vs_exact'][1]:.3f}, "
                    f"Spearman {summary['spearman_vs_exact'][1]:.3f}", fontsize=10)
    right.legend(loc="upper left", fontsize=8)
    s = settings["settings"]
    fig.suptitle(f"Contributions on the test set, {_dataset(settings)['label']}: LeNet-5, {int(s['train_size']):,} training images, "
                 f"{int(s['epochs'])} epochs{_recurrence(s)}", fontsize=11)
    return save(fig, folder, "inspection_distribution")


def _heatmap(ax, values, title, annotate_scale, unit, data):
    off = values[~np.eye(10, dtype=bool)]
    off = off[np.isfinite(off)]
    vmax = np.max(np.abs(off)) if off.size else 1.0
    shown = np.ma.masked_invalid(values)
    cmap = plt.get_cmap("RdBu").copy()
    cmap.set_bad("0.8")
    image = ax.imshow(shown, cmap=cmap, norm=Normalize(-vmax, vmax))
    for a in range(10):
        for b in range(10):
            v = values[a, b]
            if not np.isfinite(v):
                ax.text(b, a, "n/a", ha="center", va="center", fontsize=6.5, color="0.3")
                continue
            strong = abs(v) > 0.6 * vmax
            ax.text(b, a, f"{v / annotate_scale:.2f}" if abs(v / annotate_scale) < 100 else f"{v / annotate_scale:.0f}",
                    ha="center", va="center", fontsize=6.5, color="white" if strong else "black")
    for a, b in data["pairs"]:
        for (r, c) in ((a, b), (b, a)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="gold", linewidth=2.2))
    ax.set_xticks(range(10), data["short"], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(10), data["short"], fontsize=8)
    ax.set_xlabel("test class", fontsize=9)
    ax.set_ylabel("training class", fontsize=9)
    ax.set_title(title + (f"\nentries in units of {unit}" if unit else ""), fontsize=9.5)
    bar = plt.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("colour clipped at the largest off-diagonal |value|", fontsize=7)


def _inter_class(folder, settings):
    fig, axes = plt.subplots(2, 2, figsize=(14, 13))
    diagonal = read_csv(folder, "inter_class_diagonal.csv")
    data = _dataset(settings)
    for m, (name, label) in enumerate((("exact", "exact"), ("hessian_free", "Hessian-free"))):
        raw = _matrix(folder, f"inter_class_{name}.csv")
        normalised = _matrix(folder, f"inter_class_{name}_normalised.csv")
        scale = 10.0 ** np.floor(np.log10(np.nanmax(np.abs(raw))))
        _heatmap(axes[m, 0], raw, f"{label}: C(S_a, T_b), Eq. 23 (mean over pairs)", scale, f"{scale:.0e}", data)
        undefined = int(diagonal["undefined_normalised_entries"][m])
        note = (f"{undefined} of 100 entries undefined: row and column sums of opposite signs"
                if undefined else "defined everywhere")
        _heatmap(axes[m, 1], normalised, f"{label}: normalised by sqrt(row sum x column sum)\n({note})", 1.0, "", data)
    s = settings["settings"]
    pairs = ", ".join(f"{data['names'][a]}/{data['names'][b]}" for a, b in data["pairs"])
    fig.suptitle(f"Inter-class contribution (paper Fig. 2), {data['label']}: LeNet-5, {int(s['train_size']):,} "
                 f"training images, {int(s['test_size']):,} test images{_recurrence(s)}. Positive (blue) = helps.\n"
                 f"Gold outlines: the pairs the paper calls symmetric low contributions ({pairs})", fontsize=11)
    return save(fig, folder, "inspection_inter_class")


def _title(names, index, true, predicted, confidence, contribution, what):
    return (f"#{int(index)}\n{names[int(true)]} / {names[int(predicted)]}\nconf {confidence:.2f}\n"
            f"{what} {contribution:+.2e}")


def _extremes(folder, settings):
    extremes = read_csv(folder, "extremes.csv")
    images = load(folder, "extreme_images.npy")
    top = int(settings["settings"]["top"])
    fig, axes = plt.subplots(2, top, figsize=(1.75 * top + 0.6, 5.6), squeeze=False)
    for r in range(2 * top):
        ax = axes[r // top, r % top]
        ax.imshow(images[r], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        helpful = extremes["helpful"][r] > 0
        ax.set_title(_title(class_names(settings), extremes["train_index"][r], extremes["true_label"][r], extremes["predicted_label"][r],
                            extremes["confidence"][r], extremes["contribution_exact"][r], "C ="),
                     fontsize=7.5, color=HELP if helpful else HARM)
        if r % top == 0:
            ax.set_ylabel("most helpful" if helpful else "most harmful", fontsize=10)
    s = settings["settings"]
    title = (f"Training images with extreme exact C(i) on the mean test loss: true / predicted label, confidence "
             f"(softmax probability of the prediction) - LeNet-5, {int(s['train_size']):,} images{_recurrence(s)}.\n"
             f"The paper's {_dataset(settings)['label']} example (Table 2, 50,000 images): "
             f"{PAPER_EXAMPLES[_dataset(settings)['label']]}")
    # Wrapped to the figure's width (about 12 characters per inch at this size), which --top sets.
    width = int(12 * fig.get_figwidth())
    title = "\n".join(textwrap.fill(line, width) for line in title.split("\n"))
    fig.set_figheight(4.9 + 0.2 * (title.count("\n") + 1))  # room for the title above the two rows
    fig.suptitle(title, fontsize=9.5)
    return save(fig, folder, "inspection_extremes")


def _neighbours(folder, settings):
    extremes = read_csv(folder, "extremes.csv")
    neighbours = read_csv(folder, "neighbours.csv")
    train_images = load(folder, "extreme_images.npy")
    test_images = load(folder, "neighbour_images.npy")
    top, k = int(settings["settings"]["top"]), int(settings["settings"]["neighbours"])
    policy = settings["settings"]["neighbour_policy"]
    fig, axes = plt.subplots(top, 2 * (k + 1), figsize=(1.75 * 2 * (k + 1) + 0.4, 2.05 * top + 1.0), squeeze=False)
    for r in range(2 * top):
        row, block = r % top, r // top
        first = block * (k + 1)
        helpful = extremes["helpful"][r] > 0
        ax = axes[row, first]
        ax.imshow(train_images[r], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(_title(class_names(settings), extremes["train_index"][r], extremes["true_label"][r], extremes["predicted_label"][r],
                            extremes["confidence"][r], extremes["contribution_exact"][r], "C(i) ="),
                     fontsize=6.5, color=HELP if helpful else HARM, fontweight="bold")
        for spine in ax.spines.values():
            spine.set_edgecolor(HELP if helpful else HARM)
            spine.set_linewidth(2)
        for n in range(k):
            q = r * k + n
            ax = axes[row, first + 1 + n]
            ax.imshow(test_images[r, n], cmap="gray_r", vmin=0, vmax=1)
            c = neighbours["contribution"][q]
            ax.set_title(f"test #{int(neighbours['test_index'][q])}\n"
                         f"{class_names(settings)[int(neighbours['true_label'][q])]} / "
                         f"{class_names(settings)[int(neighbours['predicted_label'][q])]}\n"
                         f"conf {neighbours['confidence'][q]:.2f}\nC(i,j) {c:+.2e}",
                         fontsize=6.5, color=HELP if c > 0 else HARM)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("most helpful", fontsize=9)
    axes[0, k + 1].set_ylabel("most harmful", fontsize=9)
    fig.suptitle(f"Each framed training image (true / predicted, confidence, exact C(i)), then the {k} test images "
                 f"whose loss it changes most:\nlargest |C(i, j)|, green = it lowers that test loss; C(i, j) from the "
                 f"{policy} tracker of the replayed training{_recurrence(settings['settings'])}\n", fontsize=9.5, y=0.995)
    return save(fig, folder, "inspection_neighbours")


def plot(folder, settings):
    written = []
    written += _distribution(folder, settings)
    written += _inter_class(folder, settings)
    written += _extremes(folder, settings)
    written += _neighbours(folder, settings)
    return written
