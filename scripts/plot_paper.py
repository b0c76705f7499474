#!/usr/bin/python3
"""Draws the figures of the paper's experiments (docs/experiments.md) from their results folders.

    scripts/plot_paper.py [--check] FOLDER [FOLDER ...]

Each FOLDER is what an examples/paper/ program wrote with --out; its settings.json names the
experiment, and scripts/paper_plots/<experiment>.py draws it (PNG and SVG beside the data).
--check: exit 1 unless every figure the module says it drew exists and is not empty.
The C++ programs compute every number; this script only reads and draws them.
"""
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    check = "--check" in argv
    folders = [a for a in argv if a != "--check"]
    if not folders:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    for folder in folders:
        settings_path = os.path.join(folder, "settings.json")
        if not os.path.exists(settings_path):
            print(f"plot_paper: {folder}: no settings.json (the run did not finish)", file=sys.stderr)
            return 1
        with open(settings_path) as f:
            settings = json.load(f)
        experiment = settings["experiment"]
        try:
            module = importlib.import_module(f"paper_plots.{experiment}")
        except ModuleNotFoundError:
            print(f"plot_paper: {folder}: no plotting module for experiment '{experiment}'", file=sys.stderr)
            return 1
        written = module.plot(folder, settings)
        for path in written:
            ok = os.path.exists(path) and os.path.getsize(path) > 0
            print(f"{'wrote' if ok else 'MISSING'} {path}")
            if check and not ok:
                return 1
        if check and not written:
            print(f"plot_paper: {folder}: the module drew nothing", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
