# Experiment 4 of docs/experiments.md: clustering mislabelled data (the paper's Table 4).
hydra_paper_experiment(clustering)
# Smoke test: 320 training samples (16 wrongly labelled per class on average), 1 epoch (5 steps),
# M = 8 validation points; every method, k-means and the figures, in a few seconds on the CPU (the
# emulated device run below takes about 100 s, the longest test, so it stays this small).
set(clustering_smoke --train-size 320 --validation-size 100 --test-size 100 --epochs 1 --validation-points 8
                     --cg-max-iter 2)
hydra_paper_smoke_test(clustering ${clustering_smoke})
# float32, emulated device against the CPU (measured): HYDRA contributions 2e-7 of their scale,
# influence-function contributions 1.6e-6, CG residuals 5e-7. The influence file has its own, looser
# bound: its per-sample gradients pass through ReLU and max-pool kinks, where one rounding step of
# the weights moves a sample's gradient by up to 6e-3 (a 640-sample run had three such samples, 3e-4
# off; the g++ and nvcc-built CPU binaries already differ there by 5e-5).
hydra_paper_device_test(clustering smoke RTOL 1e-5
                        RTOL_FILE contributions_influence.npy=1e-3 influence_solver.csv=1e-4
                        ARGS ${clustering_smoke})
hydra_paper_refusal_test(clustering noise_rate "--noise must be in \\(0, 1\\) for clustering" --noise 1.5)
# The file-backed trajectory is host memory: refused for the device in every build.
hydra_paper_refusal_test(clustering state_dir_on_device "--state-dir keeps the trajectory in a mapped file" --device cuda
                         --state-dir ${CMAKE_CURRENT_BINARY_DIR}/refused/clustering-state)
