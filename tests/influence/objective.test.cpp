// training_objective against an explicit Hessian of R(w) = mean training loss + (λ/2)‖w‖² from
// central second differences of R's VALUES (no gradient or HVP code involved), with chunks of
// unequal size, directions split by the memory bound, and both batch-keeping modes; the
// mini-batch product the same way against the batch's own R; and bad input.

#include <doctest/doctest.h>

#include <span>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/influence/objective.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

using objective_type = training_objective<Mlp<double>, SoftmaxCrossEntropy<double>>;

/// A HessianOperator without a mini-batch product.
struct fixed_operator {
  using scalar_type = double;
  using backend_type = cpu;
  index parameter_count() const { return 2; }
  void hessian_vector_products(matrix_view<const double>, matrix_view<double>) {}
};
struct no_products {
  using scalar_type = double;
  using backend_type = cpu;
  index parameter_count() const { return 2; }
};

static_assert(HessianOperator<objective_type>);
static_assert(SampledHessianOperator<objective_type>);
static_assert(HessianOperator<fixed_operator>);
static_assert(!SampledHessianOperator<fixed_operator>);
static_assert(!HessianOperator<no_products>);
static_assert(!HessianOperator<int>);

/// R(w) on `data` from loss values only.
template <class M, class L>
double objective_value(M& model, L& loss, const dataset<double>& data, const std::vector<double>& w, double lambda) {
  double squares = 0;
  for (double x : w) squares += x * x;
  return model.loss(vector_view<const double>(w.data(), model.parameter_count()), data.features_view(),
                    labels_of(data), loss) +
         0.5 * lambda * squares;
}

/// Row c = (product of the objective with e_c), for all P unit vectors at once.
std::vector<double> products_of_identity(objective_type& objective) {
  const index P = objective.parameter_count();
  std::vector<double> I(static_cast<std::size_t>(P * P), 0.0), HI(I.size());
  for (index c = 0; c < P; ++c) I[static_cast<std::size_t>(c * P + c)] = 1;
  objective.hessian_vector_products(matrix_view<const double>(I.data(), P, P), matrix_view<double>(HI.data(), P, P));
  return HI;
}

} // namespace

TEST_CASE("the whole-training-set HVP equals the second-difference Hessian of mean loss + (λ/2)‖w‖²") {
  const auto train = make_data(7, 3, 2, 4);
  Mlp<double> model(3, {4}, 2, activation::tanh);  // 26 parameters
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 2);
  const double lambda = 0.05;
  const vector_view<const double> wv(w.data(), P);

  const auto H_fd = second_differences_hessian(
      [&](const std::vector<double>& v) { return objective_value(model, loss, train, v, lambda); }, w);

  // Chunks of 3, 3 and 1 samples (unequal weights 3/7, 3/7, 1/7); a 1-byte memory bound forces
  // one direction per model call; keep_batches both ways.
  objective_type whole(model, loss, train, wv, lambda, {.batch_size = 64});
  objective_type chunked(model, loss, train, wv, lambda, {.batch_size = 3, .hvp_memory_bytes = 1});
  objective_type streamed(model, loss, train, wv, lambda, {.batch_size = 3, .keep_batches = false});
  const auto H_whole = products_of_identity(whole);
  const auto H_chunked = products_of_identity(chunked);
  const auto H_streamed = products_of_identity(streamed);
  // Second differences with h = 1e-4: O(h²) truncation and O(ε/h²) rounding, ~1e-8 here.
  CHECK(relative_error(H_whole, H_fd) <= 1e-6);
  CHECK(relative_error(H_chunked, H_fd) <= 1e-6);
  // The same sums in another order: rounding only.
  CHECK(relative_error(H_chunked, H_whole) <= 1e-13);
  CHECK(relative_error(H_streamed, H_chunked) <= 1e-15);
  // Weight decay is in: the product differs from the loss-only Hessian by exactly λ on the diagonal.
  const auto H_loss = reference_hessian(model, loss, train, w, 0.0);
  double diagonal_gap = 0;
  for (index c = 0; c < P; ++c)
    diagonal_gap = std::max(diagonal_gap, std::abs(H_whole[static_cast<std::size_t>(c * P + c)] -
                                                   H_loss[static_cast<std::size_t>(c * P + c)] - lambda));
  CHECK(diagonal_gap <= 1e-14);
  CHECK(whole.full_passes() == 1);
  CHECK(chunked.full_passes() == 1);

  // k random directions at once against H_fd · v.
  const index k = 4;
  const auto V = normal_vector(static_cast<std::size_t>(k * P), 31);
  std::vector<double> HV(V.size());
  chunked.hessian_vector_products(matrix_view<const double>(V.data(), k, P), matrix_view<double>(HV.data(), k, P));
  for (index j = 0; j < k; ++j) {
    CAPTURE(j);
    const auto v = row_of(V, static_cast<std::size_t>(j), static_cast<std::size_t>(P));
    const auto hv = row_of(HV, static_cast<std::size_t>(j), static_cast<std::size_t>(P));
    CHECK(relative_error(hv, multiply(H_fd, v)) <= 1e-6);
  }
}

TEST_CASE("the mini-batch HVP is the Hessian of the batch's mean loss + (λ/2)‖w‖², repeats counted") {
  const auto train = make_data(9, 3, 3, 6);
  Mlp<double> model(3, {3}, 3, activation::sigmoid);
  MeanSquaredError<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 8);
  const double lambda = 0.2;
  // Batch of 4 with sample 4 twice; batch_size 3 splits it into 3 + 1 (weights 3/4 and 1/4).
  const std::vector<index> batch{4, 0, 4, 8};
  training_objective objective(model, loss, train, vector_view<const double>(w.data(), P), lambda, {.batch_size = 3});
  const auto batch_data = subset(train, std::span<const index>(batch));
  const auto H_fd = second_differences_hessian(
      [&](const std::vector<double>& v) { return objective_value(model, loss, batch_data, v, lambda); }, w);

  std::vector<double> I(static_cast<std::size_t>(P * P), 0.0), HI(I.size());
  for (index c = 0; c < P; ++c) I[static_cast<std::size_t>(c * P + c)] = 1;
  objective.batch_hessian_vector_products(batch, matrix_view<const double>(I.data(), P, P),
                                          matrix_view<double>(HI.data(), P, P));
  CHECK(relative_error(HI, H_fd) <= 1e-6);
  CHECK(objective.batch_passes() == 1);
  CHECK(objective.full_passes() == 0);
  // And it is not the whole-set product (a test that could not tell them apart would be void).
  std::vector<double> full(I.size());
  objective.hessian_vector_products(matrix_view<const double>(I.data(), P, P), matrix_view<double>(full.data(), P, P));
  CHECK(relative_error(full, H_fd) > 1e-3);
}

TEST_CASE("training_objective refuses bad input, naming the sizes") {
  const auto train = make_data(5, 3, 2, 1);
  Mlp<double> model(3, {2}, 2, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P), 0.1);
  const vector_view<const double> wv(w.data(), P);

  CHECK_THROWS_WITH_AS(objective_type(model, loss, train, vector_view<const double>(w.data(), P - 1), 0.1),
                       doctest::Contains(("has " + std::to_string(P - 1) + " entries").c_str()), shape_error);
  CHECK_THROWS_WITH_AS(objective_type(model, loss, make_data(5, 4, 2, 1), wv, 0.1),
                       doctest::Contains("training samples have 4 features, the model takes 3"), shape_error);
  CHECK_THROWS_WITH_AS(objective_type(model, loss, dataset<double>{}, wv, 0.1), doctest::Contains("empty"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(objective_type(model, loss, train, wv, -0.1), doctest::Contains("weight decay"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(objective_type(model, loss, train, wv, 0.1, {.batch_size = 0}),
                       doctest::Contains("batch_size 0"), invalid_argument);

  objective_type objective(model, loss, train, wv, 0.1);
  std::vector<double> V(static_cast<std::size_t>(2 * P), 1.0), HV(V.size());
  CHECK_THROWS_WITH_AS(objective.hessian_vector_products(matrix_view<const double>(V.data(), 2, P - 1),
                                                         matrix_view<double>(HV.data(), 2, P - 1)),
                       doctest::Contains(("directions 2 x " + std::to_string(P - 1)).c_str()), shape_error);
  CHECK_THROWS_WITH_AS(objective.hessian_vector_products(matrix_view<const double>(V.data(), 2, P),
                                                         matrix_view<double>(HV.data(), 1, P)),
                       doctest::Contains(("products 1 x " + std::to_string(P)).c_str()), shape_error);
  CHECK_THROWS_WITH_AS(objective.hessian_vector_products(matrix_view<const double>(V.data(), 2, P),
                                                         matrix_view<double>(V.data() + 1, 1, P)),
                       doctest::Contains("products 1 x"), shape_error);
  CHECK_THROWS_WITH_AS(objective.hessian_vector_products(matrix_view<const double>(V.data(), 1, P),
                                                         matrix_view<double>(V.data() + P / 2, 1, P)),
                       doctest::Contains("must not overlap"), invalid_argument);
  const std::vector<index> outside{0, 5};
  CHECK_THROWS_WITH_AS(objective.batch_hessian_vector_products(outside, matrix_view<const double>(V.data(), 1, P),
                                                               matrix_view<double>(HV.data(), 1, P)),
                       doctest::Contains("batch[1] = 5 is outside the training set [0, 5)"), invalid_argument);
  CHECK_THROWS_WITH_AS(objective.batch_hessian_vector_products({}, matrix_view<const double>(V.data(), 1, P),
                                                               matrix_view<double>(HV.data(), 1, P)),
                       doctest::Contains("the batch is empty"), invalid_argument);
  // Zero directions: nothing to do, no error.
  objective.hessian_vector_products(matrix_view<const double>(V.data(), 0, P), matrix_view<double>(HV.data(), 0, P));
}

} // namespace hydra::test
