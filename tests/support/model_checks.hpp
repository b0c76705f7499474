#pragma once
// Shared derivative checks for every model/loss pair (double precision, CPU backend):
// gradient and per-sample gradients against central differences of the loss, HVPs against
// central differences of the gradient and against the k = 1 product, and the explicit Hessian.

#include <doctest/doctest.h>

#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/concepts.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {

/// A batch on the host in double: B × D features, labels, optional B × C real targets.
struct host_batch {
  index rows = 0;
  index cols = 0;
  std::vector<double> x;
  std::vector<label_type> labels;
  std::vector<double> targets;  // empty: losses use the labels
  index target_cols = 0;

  [[nodiscard]] matrix_view<const double> features() const { return {x.data(), rows, cols}; }
  [[nodiscard]] batch_targets<double> y() const {
    return {labels.data(), targets.empty() ? matrix_view<const double>{}
                                           : matrix_view<const double>(targets.data(), rows, target_cols)};
  }
};

inline host_batch random_batch(index rows, index cols, index classes, unsigned seed, bool real_targets = false) {
  host_batch b{rows, cols, normal_vector(static_cast<std::size_t>(rows * cols), seed), {}, {}, 0};
  for (index r = 0; r < rows; ++r) b.labels.push_back(static_cast<label_type>((r * 7 + seed) % classes));
  if (real_targets) {
    b.targets = normal_vector(static_cast<std::size_t>(rows * classes), seed + 1);
    b.target_cols = classes;
  }
  return b;
}

template <class M, class L>
double loss_at(M& model, L& loss, const host_batch& b, const std::vector<double>& w) {
  return model.loss(vector_view<const double>(w.data(), static_cast<index>(w.size())), b.features(), b.y(), loss);
}

template <class M, class L>
std::vector<double> gradient_at(M& model, L& loss, const host_batch& b, const std::vector<double>& w) {
  std::vector<double> g(w.size());
  model.gradient(vector_view<const double>(w.data(), static_cast<index>(w.size())), b.features(), b.y(), loss,
                 vector_view<double>(g.data(), static_cast<index>(g.size())));
  return g;
}

template <class M, class L>
std::vector<double> hvps_at(M& model, L& loss, const host_batch& b, const std::vector<double>& w,
                            const std::vector<double>& directions, index k) {
  const index P = model.parameter_count();
  std::vector<double> out(static_cast<std::size_t>(k * P));
  model.hessian_vector_products(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                                matrix_view<const double>(directions.data(), k, P), matrix_view<double>(out.data(), k, P));
  return out;
}

/// ℓ(x_b, y_b; w) for every sample b of the batch. For a model whose samples are coupled (batch
/// statistics), sample b's loss inside its batch, from one forward pass of the whole batch; for any
/// other model each sample is run alone, which also shows that no sample leaks into another.
template <class M, class L>
std::vector<double> per_sample_losses_at(M& model, L& loss, const host_batch& b, const std::vector<double>& w) {
  std::vector<double> out;
  if constexpr (requires { model.couples_samples(); }) {
    if (model.couples_samples()) {
      std::vector<double> z(static_cast<std::size_t>(b.rows * model.output_size()));
      model.forward(vector_view<const double>(w.data(), static_cast<index>(w.size())), b.features(),
                    matrix_view<double>(z.data(), b.rows, model.output_size()));
      out.resize(static_cast<std::size_t>(b.rows));
      loss.values(matrix_view<const double>(z.data(), b.rows, model.output_size()), b.y(),
                  vector_view<double>(out.data(), b.rows));
      return out;
    }
  }
  for (index s = 0; s < b.rows; ++s) {
    host_batch one{1, b.cols, {b.x.begin() + s * b.cols, b.x.begin() + (s + 1) * b.cols}, {b.labels[static_cast<std::size_t>(s)]}, {}, b.target_cols};
    if (!b.targets.empty())
      one.targets.assign(b.targets.begin() + s * b.target_cols, b.targets.begin() + (s + 1) * b.target_cols);
    out.push_back(loss_at(model, loss, one, w));
  }
  return out;
}

/// How check_model_derivatives differences. Batch normalisation over a handful of values has
/// large third derivatives: its truncation error (∝ h²) needs a smaller step for the second-order
/// checks, and the explicit Hessian (P² evaluations, O(h²) second differences) is for tiny models.
struct derivative_check_options {
  double second_order_step = 1e-5;  ///< h of the differences that the HVP checks compare with
  bool explicit_hessian = true;
};

/// Runs every first- and second-order check on (model, loss) at parameters w.
template <class M, class L>
void check_model_derivatives(M& model, L& loss, const host_batch& b, const std::vector<double>& w,
                             derivative_check_options options = {}) {
  const index P = model.parameter_count();
  REQUIRE(static_cast<index>(w.size()) == P);
  auto f = [&](const std::vector<double>& v) { return loss_at(model, loss, b, v); };

  SUBCASE("mean gradient against central differences of the loss") {
    const auto g = gradient_at(model, loss, b, w);
    CHECK(relative_error(g, central_gradient(f, w)) <= 1e-7);
  }
  SUBCASE("per-sample gradients against central differences of each sample's loss") {
    std::vector<double> G(static_cast<std::size_t>(b.rows * P));
    const double mean = model.per_sample_gradients(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                                                   matrix_view<double>(G.data(), b.rows, P));
    CHECK(mean == doctest::Approx(f(w)).epsilon(1e-14));
    for (index s = 0; s < b.rows; ++s) {
      auto fs = [&](const std::vector<double>& v) {
        return per_sample_losses_at(model, loss, b, v)[static_cast<std::size_t>(s)];
      };
      const std::vector<double> row(G.begin() + s * P, G.begin() + (s + 1) * P);
      CHECK(relative_error(row, central_gradient(fs, w)) <= 1e-7);
    }
  }
  SUBCASE("batched HVPs against central differences of the gradient and against k single products") {
    const index k = 5;
    const auto V = normal_vector(static_cast<std::size_t>(k * P), 99);
    const auto HV = hvps_at(model, loss, b, w, V, k);
    auto G = [&](const std::vector<double>& v) { return gradient_at(model, loss, b, v); };
    for (index j = 0; j < k; ++j) {
      const std::vector<double> v(V.begin() + j * P, V.begin() + (j + 1) * P);
      const std::vector<double> hv(HV.begin() + j * P, HV.begin() + (j + 1) * P);
      CHECK(relative_error(hv, central_directional(G, w, v, options.second_order_step)) <= 1e-7);
      const auto single = hvps_at(model, loss, b, w, v, 1);
      CHECK(relative_error(hv, single) <= 1e-13);
    }
  }
  SUBCASE("per-sample loss derivatives (HVP tangent pass, forward mode) against per-sample gradients and differences") {
    const index k = 3;
    const auto V = normal_vector(static_cast<std::size_t>(k * P), 98);
    const auto plain = hvps_at(model, loss, b, w, V, k);
    std::vector<double> HV(plain.size()), D(static_cast<std::size_t>(b.rows * k)), G(static_cast<std::size_t>(b.rows * P));
    model.hessian_vector_products(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                                  matrix_view<const double>(V.data(), k, P), matrix_view<double>(HV.data(), k, P),
                                  matrix_view<double>(D.data(), b.rows, k));
    CHECK(HV == plain);  // the derivatives are an extra output; the products do not change by a bit
    std::vector<double> J(D.size());  // the same derivatives by forward mode alone
    model.directional_derivatives(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                                  matrix_view<const double>(V.data(), k, P), matrix_view<double>(J.data(), b.rows, k));
    model.per_sample_gradients(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                               matrix_view<double>(G.data(), b.rows, P));
    // Per-sample losses as a vector function of w, for the differences.
    auto losses = [&](const std::vector<double>& v) { return per_sample_losses_at(model, loss, b, v); };
    for (index j = 0; j < k; ++j) {
      const std::vector<double> v(V.begin() + j * P, V.begin() + (j + 1) * P);
      std::vector<double> fused, forward_mode, from_gradients;
      for (index s = 0; s < b.rows; ++s) {
        fused.push_back(D[static_cast<std::size_t>(s * k + j)]);
        forward_mode.push_back(J[static_cast<std::size_t>(s * k + j)]);
        double dot = 0;
        for (index q = 0; q < P; ++q) dot += G[static_cast<std::size_t>(s * P + q)] * v[static_cast<std::size_t>(q)];
        from_gradients.push_back(dot);
      }
      // Two exact routes (tangent forward vs backward pass) differ by rounding alone: ~√P·ε.
      CHECK(relative_error(fused, from_gradients) <= 1e-12);
      CHECK(relative_error(forward_mode, from_gradients) <= 1e-12);
      CHECK(relative_error(fused, central_directional(losses, w, v, options.second_order_step)) <= 1e-7);
    }
    CHECK_THROWS_AS(model.directional_derivatives(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                                                  matrix_view<const double>(V.data(), k, P),
                                                  matrix_view<double>(J.data(), b.rows, k + 1)),
                    shape_error);
    CHECK_THROWS_AS(model.hessian_vector_products(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                                                  matrix_view<const double>(V.data(), k, P),
                                                  matrix_view<double>(HV.data(), k, P),
                                                  matrix_view<double>(D.data(), b.rows + 1, k)),
                    shape_error);
  }
  if (options.explicit_hessian) SUBCASE("HVPs against the explicit Hessian from second differences of the loss") {
    const auto H = second_differences_hessian(f, w);
    const auto I = [&] {
      std::vector<double> e(static_cast<std::size_t>(P * P), 0.0);
      for (index i = 0; i < P; ++i) e[static_cast<std::size_t>(i * P + i)] = 1;
      return e;
    }();
    const auto HI = hvps_at(model, loss, b, w, I, P);  // row j = H e_j = column j of H
    // Second differences carry O(h²) truncation and O(ε/h²) rounding: ~1e-8 at h = 1e-4.
    CHECK(relative_error(HI, H) <= 1e-6);
  }
}

} // namespace hydra::test
