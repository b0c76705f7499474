// The example of docs/metrics.md, compiled and run so that the page cannot drift from the code.
// Keep the two in sync: the body below between the markers is the page's example.
#include "hydra/metrics/metrics.hpp"

#include <cmath>
#include <vector>

#include <doctest/doctest.h>

TEST_CASE("docs/metrics.md example") {
  // --- docs/metrics.md example begins ---
  // Contributions of 6 training samples to the mean test loss, by two methods.
  const std::vector<double> exact{0.30, -0.12, 0.05, 0.41, -0.02, 0.18};  // HYDRA, Hessian-aware
  const std::vector<double> fast{0.28, -0.10, -0.01, 0.39, -0.03, 0.20};  // HYDRA, Hessian-free
  const double flips = hydra::sign_error_rate(fast, exact);  // 1/6: sample 2 changed sign
  const double rho = hydra::spearman(fast, exact);           // rank agreement, in [-1, 1]
  const double error = hydra::relative_error(fast, exact);   // ‖fast − exact‖ / ‖exact‖

  // Samples 1 and 4 had their labels flipped. Harmful (negative) contributions are the
  // suspicious ones, so the score is −C.
  const std::vector<bool> is_flipped{false, true, false, false, true, false};
  std::vector<double> suspicion;
  for (const double c : fast) suspicion.push_back(-c);
  const double auc = hydra::detection_auc(suspicion, is_flipped);  // 1: both flips rank first

  // The paper's clustering: each sample described by the signs of its contributions to 4
  // validation points (6 × 4, row-major), split in two by k-means, scored against the flips.
  const std::vector<double> signs{+1, +1, -1, +1,  -1, -1, +1, -1,  +1, +1, +1, +1,
                                  +1, -1, -1, +1,  -1, -1, -1, -1,  +1, +1, -1, +1};
  const auto clusters = hydra::kmeans(hydra::matrix_view<const double>(signs.data(), 6, 4), 2, {.seed = 1});
  const auto jaccard = hydra::jaccard_index(clusters.labels, is_flipped);
  // jaccard.per_group[0]: the correctly labelled samples; [1]: the flipped ones (Table 4's columns)

  // Eq. 23: contributions of 4 training samples (rows) to 3 test points (columns), 2 classes.
  const std::vector<double> C{0.4, 0.1, 0.5,  0.3, -0.1, 0.2,  0.0, 0.6, 0.1,  -0.2, 0.4, 0.3};
  const std::vector<hydra::label_type> train_labels{0, 0, 1, 1}, test_labels{0, 1, 0};
  const auto M = hydra::inter_class_contribution(hydra::matrix_view<const double>(C.data(), 4, 3), train_labels,
                                                 test_labels, 2);
  const auto heat = hydra::normalize_inter_class(M);  // heat(a, b): training class a, test class b
  // --- docs/metrics.md example ends ---

  // What the comments above claim, checked (1e-12: a few roundings of short sums).
  CHECK(flips == doctest::Approx(1.0 / 6).epsilon(1e-12));
  // Both arrays have the ranks 5 1 3 6 2 4: ρ = 1, the order agrees exactly.
  CHECK(rho == doctest::Approx(1.0).epsilon(1e-12));
  // fast − exact = −0.02 0.02 −0.06 −0.02 −0.01 0.02, squares summing to 0.0053;
  // ‖exact‖² = 0.09 + 0.0144 + 0.0025 + 0.1681 + 0.0004 + 0.0324 = 0.3078. The decimal inputs are
  // not exact in binary: 1e-9.
  CHECK(error == doctest::Approx(std::sqrt(0.0053 / 0.3078)).epsilon(1e-9));
  CHECK(auc == 1.0);
  CHECK(jaccard.per_group[0] == 1.0);
  CHECK(jaccard.per_group[1] == 1.0);
  // M(0,0) = (0.4 + 0.5 + 0.3 + 0.2) / 4 = 0.35, M(1,0) = (0.0 + 0.1 − 0.2 + 0.3) / 4 = 0.05,
  // M(0,1) = (0.1 − 0.1) / 2 = 0, M(1,1) = (0.6 + 0.4) / 2 = 0.5; row sums 0.35, 0.55; column
  // sums 0.4, 0.5.
  CHECK(M(0, 0) == doctest::Approx(0.35).epsilon(1e-12));
  CHECK(M(1, 0) == doctest::Approx(0.05).epsilon(1e-12));
  CHECK(std::abs(M(0, 1)) < 1e-15);
  CHECK(M(1, 1) == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(heat(0, 0) == doctest::Approx(0.35 / std::sqrt(0.35 * 0.4)).epsilon(1e-12));
  CHECK(heat(1, 1) == doctest::Approx(0.5 / std::sqrt(0.55 * 0.5)).epsilon(1e-12));
}
