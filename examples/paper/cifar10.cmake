# CIFAR-10 end to end (docs/experiments.md, "CIFAR-10"): paper_cifar10. No CIFAR-10 files exist on
# our machines, so its tests run on files in the official format with generated images
# (scripts/make-cifar10-sample.py): DenseNet-40 on running statistics, MobileNetV2 and DenseNet-40
# on batch statistics with Exact, each a few steps; then the figure.
hydra_paper_experiment(cifar10)
if(HYDRA_BUILD_TESTS)
  set(hydra_cifar10_sample ${CMAKE_CURRENT_BINARY_DIR}/cifar10-sample)
  add_test(NAME paper_cifar10_sample
           COMMAND ${HYDRA_PLOT_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/make-cifar10-sample.py ${hydra_cifar10_sample} 100)
  set_tests_properties(paper_cifar10_sample PROPERTIES FIXTURES_SETUP cifar10_sample)
endif()
hydra_paper_smoke_test(cifar10 --cifar-dir ${CMAKE_CURRENT_BINARY_DIR}/cifar10-sample --train-size 128
                       --validation-size 32 --test-size 16 --batch-size 32 --track-per-class 1)
if(HYDRA_BUILD_TESTS)
  set_tests_properties(paper_cifar10_run PROPERTIES FIXTURES_REQUIRED cifar10_sample)
  add_test(NAME paper_cifar10_mobilenetv2_batch_exact
           COMMAND paper_cifar10 --out ${CMAKE_CURRENT_BINARY_DIR}/smoke/cifar10-mobilenetv2
                   --cifar-dir ${CMAKE_CURRENT_BINARY_DIR}/cifar10-sample --model mobilenetv2 --batch-norm batch
                   --method exact --train-size 16 --validation-size 8 --test-size 8 --batch-size 8
                   --track-per-class 1)
  set_tests_properties(paper_cifar10_mobilenetv2_batch_exact PROPERTIES FIXTURES_REQUIRED cifar10_sample
                       PASS_REGULAR_EXPRESSION "test accuracy")
endif()
hydra_paper_refusal_test(cifar10 missing_files "CIFAR-10 file .*/nowhere/data_batch_1.bin is missing: download the binary version"
                         --cifar-dir ${CMAKE_CURRENT_BINARY_DIR}/nowhere)
hydra_paper_refusal_test(cifar10 train_size "--train-size must be in \\[1, 400\\] \\(data_batch_1-4 holds 400 images\\), got 100000"
                         --cifar-dir ${CMAKE_CURRENT_BINARY_DIR}/cifar10-sample --train-size 100000)
if(HYDRA_BUILD_TESTS)
  set_tests_properties(paper_cifar10_refuses_train_size PROPERTIES FIXTURES_REQUIRED cifar10_sample)
endif()
