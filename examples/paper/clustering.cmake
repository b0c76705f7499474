# Experiment 4 of docs/experiments.md: clustering mislabelled data (the paper's Table 4).
hydra_paper_experiment(clustering)
# Smoke test: 640 training samples (32 wrongly labelled per class on average), 1 epoch, M = 8
# validation points; every method, k-means and the figures, in a few seconds.
hydra_paper_smoke_test(clustering --train-size 640 --validation-size 100 --test-size 100 --epochs 1
                       --validation-points 8 --cg-max-iter 3)
hydra_paper_refusal_test(clustering noise_rate "--noise must be in \\(0, 1\\) for clustering" --noise 1.5)
