# Experiment 4 of docs/experiments.md: clustering mislabelled data (the paper's Table 4).
hydra_paper_experiment(clustering)
# Smoke test: 640 training samples (32 wrongly labelled per class on average), 1 epoch, M = 8
# validation points; every method, k-means and the figures, in a few seconds.
set(clustering_smoke --train-size 640 --validation-size 100 --test-size 100 --epochs 1 --validation-points 8
                     --cg-max-iter 3)
hydra_paper_smoke_test(clustering ${clustering_smoke})
# float32: the HYDRA contributions of the emulated device are 2e-7 of their scale off the CPU's
# (measured). Influence functions' per-sample gradients pass through kinks: three samples sit at a
# ReLU or max-pool tie where one rounding step moves their gradients by up to 6e-3, so that file is
# 3e-4 off (the g++ and the nvcc-built CPU binaries already differ by 5e-5) and the CG residuals 2e-6.
hydra_paper_device_test(clustering smoke RTOL 1e-5
                        RTOL_FILE contributions_influence.npy=1e-3 influence_solver.csv=1e-4
                        ARGS ${clustering_smoke})
hydra_paper_refusal_test(clustering noise_rate "--noise must be in \\(0, 1\\) for clustering" --noise 1.5)
# The file-backed trajectory is host memory: refused for the device in every build.
hydra_paper_refusal_test(clustering state_dir_on_device "--state-dir keeps the trajectory in a mapped file" --device cuda
                         --state-dir ${CMAKE_CURRENT_BINARY_DIR}/refused/clustering-state)
