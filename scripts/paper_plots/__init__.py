"""One module per experiment of examples/paper/: plot(folder, settings) draws its figures and
returns the paths written. common.py holds what they share."""
