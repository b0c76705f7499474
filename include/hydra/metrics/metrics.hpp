#pragma once
// Evaluation metrics for contribution estimates, as used in the paper's experiments:
//
//   agreement.hpp     - sign error rate, Spearman and Pearson correlation, relative error
//   clustering.hpp    - k-means (k-means++, restarts) and the per-group Jaccard index
//   detection.hpp     - mislabel-detection AUC
//   class_matrix.hpp  - the inter-class contribution matrix (Eq. 23) and its normalisation
//   counterfactual.hpp - scores against retraining: linear datamodeling score, leave-one-out
//                       correlation
//
// All of them work on host memory and accumulate in double.

#include "hydra/metrics/agreement.hpp"
#include "hydra/metrics/class_matrix.hpp"
#include "hydra/metrics/clustering.hpp"
#include "hydra/metrics/concepts.hpp"
#include "hydra/metrics/counterfactual.hpp"
#include "hydra/metrics/detection.hpp"
