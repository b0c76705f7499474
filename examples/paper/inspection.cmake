# Paper experiment 2, the manual inspection (Table 2, Figure 2; supplement Tables 1-2):
# docs/experiments.md. The smoke test trains LeNet-5 for one epoch on 640 images (10 steps), runs
# both adjoint sweeps and the exact replay, and draws the figures.
hydra_paper_experiment(inspection)
hydra_paper_smoke_test(inspection --train-size 640 --validation-size 200 --test-size 200 --epochs 1)
