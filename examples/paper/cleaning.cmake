# Experiment 3, cleaning noisy labels (paper Table 3, supplement Table 4): paper_cleaning, and a
# smoke test on 640 real Fashion-MNIST training images, one epoch, 50% wrong labels.
hydra_paper_experiment(cleaning)
hydra_paper_smoke_test(cleaning --train-size 640 --validation-size 200 --test-size 200 --epochs 1 --noise 0.5
                       --cg-max-iter 20)
hydra_paper_refusal_test(cleaning noise_rate "--noise must be in \\[0, 1\\), got 1.2" --noise 1.2)
hydra_paper_refusal_test(cleaning paper_mnist "--paper runs the paper's Fashion-MNIST protocol; --dataset mnist has 5,000 digits"
                         --paper --dataset mnist)
