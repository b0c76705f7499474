# Paper experiment 2, the manual inspection (Table 2, Figure 2; supplement Tables 1-2):
# docs/experiments.md. The smoke test trains LeNet-5 for one epoch on 640 images (10 steps), runs
# both adjoint sweeps and the exact replay, and draws the figures.
hydra_paper_experiment(inspection)
hydra_paper_smoke_test(inspection --train-size 640 --validation-size 200 --test-size 200 --epochs 1)
# Experiment 5's recurrence decay: the built-in check that the replay's tracker agrees with the
# adjoint fails unless both take the decay given here (a wrong or missing one is off by O(1)).
add_test(NAME paper_inspection_recurrence_decay
         COMMAND paper_inspection --out ${CMAKE_CURRENT_BINARY_DIR}/smoke/inspection-recurrence-decay
                 --train-size 640 --validation-size 200 --test-size 200 --epochs 1 --recurrence-decay 1)
hydra_paper_refusal_test(inspection recurrence_decay "--recurrence-decay must be finite and at least 0"
                         --recurrence-decay -1)
