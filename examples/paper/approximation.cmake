# Experiment 1 + 5: Exact vs Hessian-free hypergradients and influence functions along one run
# (paper Fig. 3-5), with the published code's recurrence weight decay beside.
hydra_paper_experiment(approximation)
# 640 samples, 1 % of each class (10 tracked), 4 epochs recorded every 2, influence from epoch 2.
set(approximation_smoke --train-size 640 --validation-size 100 --test-size 100 --pairs 5 --model mlp:8 --epochs 4
                       --record-every 2 --cg-max-iter 20 --lissa-depth 100)
hydra_paper_smoke_test(approximation ${approximation_smoke})
# float64: the emulated device's sums in another order put it 9e-15 of each array's scale off the
# CPU (measured); 1e-10 leaves room for other compilers' contractions and still catches any
# misplaced term.
hydra_paper_device_test(approximation mlp RTOL 1e-10 ARGS ${approximation_smoke})
hydra_paper_refusal_test(approximation missing_data "Fashion-MNIST file .* is missing: install Debian's dataset-fashion-mnist"
                         --data-dir ${CMAKE_CURRENT_BINARY_DIR}/no-such-folder)
hydra_paper_refusal_test(approximation too_many_tracked "--tracked-share 2 of 640 training samples tracks 1280"
                         --train-size 640 --tracked-share 2)
# A diverging influence solve (LiSSA with too small a scale) costs its record points, not the run.
if(HYDRA_BUILD_TESTS)
  add_test(NAME paper_approximation_survives_diverging_lissa
           COMMAND paper_approximation --out ${CMAKE_CURRENT_BINARY_DIR}/smoke/approximation-lissa --train-size 640
                   --validation-size 100 --test-size 100 --pairs 5 --model mlp:8 --epochs 4 --record-every 2
                   --cg-max-iter 20 --lissa-depth 300 --lissa-scale 0.05)
  set_tests_properties(paper_approximation_survives_diverging_lissa PROPERTIES
                       PASS_REGULAR_EXPRESSION "influence functions diverged at 2 record points \\(LiSSA\\) and 0 \\(CG\\).*results in")
endif()
