"""Experiment 1 + 5 (paper Fig. 3, 4, 5): the Hessian-free error and the agreement of Hessian-free
HYDRA and influence functions with Exact HYDRA along training, for the faithful recurrence (the
optimiser's weight decay) and the published code's (weight decay 1)."""
import matplotlib.pyplot as plt
import numpy as np

from .common import dataset_label, read_csv, save

PAPER = {"error": 0.74, "hf_sign": 0.014, "if_sign": 0.130, "hf_rho": 0.986, "if_rho": 0.820}


def _variants(data):
    return [v for v in ("faithful", "published") if f"{v}_error_mean" in data]


def _label(settings, variant):
    decays = settings["settings"]["recurrence_decays"]
    return {"faithful": f"recurrence λ = {decays[0]:g} (the optimiser's)",
            "published": f"recurrence λ = {decays[1]:g} (published code)"}[variant]


def plot(folder, settings):
    data = read_csv(folder, "records.csv")
    epochs = data["epoch"]
    variants = _variants(data)
    model = f"{settings['settings']['model']}, {dataset_label(settings)}"
    n = int(settings["settings"]["tracked"])
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for v, style in zip(variants, ("-o", "--s")):
        ax.plot(epochs, data[f"{v}_error_mean"], style, ms=3, label=_label(settings, v))
    ax.axhline(PAPER["error"], color="grey", ls=":", label="paper (LeNet-5, 200 epochs): 0.74")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean ‖∇ − ∇̃‖₂ over tracked samples")
    ax.set_title(f"Fig. 3: Hessian-free error, {n} samples\n{model}", fontsize=10)
    ax.legend(fontsize=8)
    written += save(fig, folder, "fig3_error")

    for key, stem, title, ylabel, hf_paper, if_paper in (
            ("sign_error", "fig4_sign_error", "Fig. 4: sign error vs Exact", "sign error rate", "hf_sign", "if_sign"),
            ("spearman", "fig5_spearman", "Fig. 5: Spearman ρ vs Exact", "Spearman ρ", "hf_rho", "if_rho")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for ax, pair, what in ((axes[0], "", f"C(i) on the test set, {n} samples"),
                               (axes[1], "pair_", "pairwise C(i, j)")):
            for v, style in zip(variants, ("-", "--")):
                short = "recurrence λ" if v == "faithful" else "recurrence λ=1"
                ax.plot(epochs, data[f"{v}_hf_{pair}{key}"], style + "o", ms=3, color="C0",
                        label=f"HYDRA Hessian-free vs Exact ({short})")
                for method, colour in (("lissa", "C1"), ("cg", "C2")):
                    values = data[f"{v}_{method}_{pair}{key}"]
                    if np.isfinite(values).any():
                        ax.plot(epochs, values, style + "^", ms=3, color=colour,
                                label=f"IF, {method.upper() if method == 'cg' else 'LiSSA'}, vs Exact ({short})")
            ax.axhline(PAPER[hf_paper], color="C0", ls=":", lw=1, label=f"paper HYDRA {PAPER[hf_paper]}")
            ax.axhline(PAPER[if_paper], color="C1", ls=":", lw=1, label=f"paper IF {PAPER[if_paper]}")
            ax.set_xlabel("epoch")
            ax.set_title(what, fontsize=10)
        axes[0].set_ylabel(ylabel)
        axes[1].legend(fontsize=7, loc="best")
        fig.suptitle(f"{title} ({model})\nsolid: faithful recurrence, dashed: published code's", fontsize=11)
        written += save(fig, folder, stem)
    return written
