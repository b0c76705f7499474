// The adjoint sweep (hypergradient/adjoint.hpp) against independent computations:
//  - forward tracking of every training sample (the tracker, Exact and HessianFree, eager) along
//    the same training run, projected onto the same test gradients: ≤ 1e-10 relative in double
//    (both are exact in real arithmetic; they only sum the same terms in other orders);
//  - today's lean mode (a second run along the identical trajectory) for HessianFree;
//  - central finite differences of retraining with a perturbed sample weight (Richardson, O(h⁴))
//    for Exact;
// on MLPs (tanh, ReLU), softmax regression and LeNet-5, with momentum 0 and 0.9, weight decay 0
// and > 0, constant, step, plateau (decided during training) and per-step schedules, and an
// incomplete last batch.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <utility>
#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/adjoint.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hypergradient/retraining.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

template <class T>
std::vector<double> host_values(matrix_view<const T> m) {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(m.rows * m.cols));
  for (index r = 0; r < m.rows; ++r)
    for (index c = 0; c < m.cols; ++c) out.push_back(static_cast<double>(m.row(r)[c]));
  return out;
}

struct comparison {
  double exact = 0;        // adjoint Exact vs forward Exact
  double hessian_free = 0; // adjoint HessianFree vs forward HessianFree
  double hessian_term = 0; // forward Exact vs forward HessianFree: the Hessian term's size here
};

/// Trains once with a trajectory recorder and forward trackers of every sample attached, then
/// compares the adjoint projections onto the test gradients at w_T with the forward ones.
template <class Model, class Schedule, class T = typename Model::scalar_type>
comparison compare_with_forward(Model& model, Schedule&& schedule, const dataset<T>& train, const batch_order& order,
                                const dataset<T>& test, double momentum, double weight_decay) {
  using loss_t = SoftmaxCrossEntropy<T>;
  loss_t loss;
  const index P = model.parameter_count(), N = train.size();
  SGD<T> optimizer(P, {.momentum = momentum, .weight_decay = weight_decay});
  std::vector<index> everyone(static_cast<std::size_t>(N));
  std::iota(everyone.begin(), everyone.end(), index{0});
  hypergradient_tracker<Model, loss_t, Exact> exact(model, loss, optimizer, everyone, N);
  hypergradient_tracker<Model, loss_t, HessianFree> free(model, loss, optimizer, everyone, N,
                                                         {.update = update_mode::eager});
  trajectory_recorder<T, cpu> trajectory;
  std::vector<T> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<T>(w.data(), P), 3);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  (void)fit.fit(vector_view<T>(w.data(), P), train, order, nullptr, trajectory, exact, free);
  REQUIRE(trajectory.steps() == order.steps());

  const auto U = per_sample_gradients(model, loss, vector_view<const T>(w.data(), P), test);  // M × P at w_T
  const auto project = [&](matrix_view<const T> hypergradients) {
    matrix<T, cpu> out(N, test.size());
    cpu::gemm(transpose::no, transpose::yes, T(1), hypergradients, U.view(), T(0), out.view());
    return host_values<T>(out.view());
  };
  const auto forward_exact = project(exact.hypergradients());
  const auto forward_free = project(free.hypergradients());
  const auto adjoint_exact =
      adjoint_projections<Exact>(model, loss, train, order, trajectory, U.view(), optimizer);
  const auto adjoint_free =
      adjoint_projections<HessianFree>(model, loss, train, order, trajectory, U.view(), optimizer);
  return {relative_error(host_values<T>(adjoint_exact.view()), forward_exact),
          relative_error(host_values<T>(adjoint_free.view()), forward_free),
          relative_error(forward_free, forward_exact)};
}

void check(const comparison& c) {
  MESSAGE("adjoint vs forward: Exact " << c.exact << ", HessianFree " << c.hessian_free << "; Exact vs HessianFree "
                                       << c.hessian_term);
  CHECK(c.exact <= 1e-10);
  CHECK(c.hessian_free <= 1e-10);
  CHECK(c.hessian_term >= 1e-3);  // the two variants differ here, so each comparison is telling
}

/// A model offering only the Model concept's HVP (no per-sample loss derivatives from the tangent
/// pass), so that the sweep takes its per-sample-gradient route for the Exact couplings.
template <class M>
struct without_fused_couplings {
  using scalar_type = typename M::scalar_type;
  using backend_type = typename M::backend_type;
  using T = scalar_type;
  M inner;

  [[nodiscard]] index input_size() const { return inner.input_size(); }
  [[nodiscard]] index output_size() const { return inner.output_size(); }
  [[nodiscard]] index parameter_count() const { return inner.parameter_count(); }
  void initialize(vector_view<T> w, std::uint64_t seed) { inner.initialize(w, seed); }
  void forward(vector_view<const T> w, matrix_view<const T> x, matrix_view<T> z) { inner.forward(w, x, z); }
  template <class L>
  T loss(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& l) { return inner.loss(w, x, y, l); }
  template <class L>
  T gradient(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& l, vector_view<T> g) {
    return inner.gradient(w, x, y, l, g);
  }
  template <class L>
  T per_sample_gradients(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& l, matrix_view<T> g) {
    return inner.per_sample_gradients(w, x, y, l, g);
  }
  template <class L>
  void hessian_vector_products(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& l,
                               matrix_view<const T> v, matrix_view<T> hv) {
    inner.hessian_vector_products(w, x, y, l, v, hv);
  }
};

} // namespace

TEST_CASE("adjoint equals forward tracking of every sample: tanh MLP, momentum, weight decay, step schedule") {
  const auto train = classification_data(23, 4, 3, 5, 7, 2);
  const auto test = classification_data(5, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 3, 17, /*drop_last=*/false);  // last batch of 3
  Mlp<double> model(4, {6}, 3, activation::tanh);
  check(compare_with_forward(model, step_schedule(0.3, {1, 2}, 0.5), train, order, test, 0.9, 0.01));
}

TEST_CASE("adjoint equals forward tracking: ReLU MLP, plain SGD, constant rate") {
  const auto train = classification_data(20, 5, 4, 7, 3, 1);
  const auto test = classification_data(4, 5, 4, 8, 3, 1);
  const auto order = batch_order::shuffled(20, 6, 3, 5, /*drop_last=*/false);
  Mlp<double> model(5, {7, 5}, 4, activation::relu);
  check(compare_with_forward(model, constant_schedule(0.2), train, order, test, 0.0, 0.0));
}

TEST_CASE("adjoint equals forward tracking: softmax regression, momentum, per-step rates") {
  const auto train = classification_data(18, 3, 3, 9, 5, 1);
  const auto test = classification_data(6, 3, 3, 10, 5, 1);
  const auto order = batch_order::shuffled(18, 4, 2, 3, /*drop_last=*/false);  // 5 steps per epoch
  std::vector<double> rates;
  for (index t = 0; t < order.steps(); ++t) rates.push_back(0.4 / (1.0 + 0.3 * static_cast<double>(t)));
  SoftmaxRegression<double> model(3, 3);
  check(compare_with_forward(model, list_schedule(rates), train, order, test, 0.9, 0.0));
}

TEST_CASE("adjoint equals forward tracking: a plateau schedule decided during training, weight decay") {
  const auto train = classification_data(24, 4, 3, 11, 5, 2);
  const auto test = classification_data(5, 4, 3, 12, 5, 2);
  const auto order = batch_order::shuffled(24, 5, 6, 21, /*drop_last=*/false);
  Mlp<double> model(4, {5}, 3, activation::tanh);
  plateau_schedule schedule(0.5, 0.5, 1, 0.5);  // patience 1, a high threshold: reduces during training
  check(compare_with_forward(model, schedule, train, order, test, 0.5, 0.02));
  CHECK(schedule.reductions() >= 1);
}

TEST_CASE("adjoint equals forward tracking: LeNet-5, momentum and weight decay") {
  dataset<double> images({1, 28, 28}, normal_vector(static_cast<std::size_t>(10 * 784), 31, 0.5),
                         std::vector<label_type>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10);
  const auto test_images = [] {
    std::vector<label_type> labels{3, 7};
    return dataset<double>({1, 28, 28}, normal_vector(2 * 784, 32, 0.5), std::move(labels), 10);
  }();
  const auto order = batch_order::shuffled(10, 4, 2, 9, /*drop_last=*/false);  // 3 steps per epoch, last of 2
  LeNet5<double> model;
  check(compare_with_forward(model, constant_schedule(0.05), images, order, test_images, 0.9, 1e-3));
}

TEST_CASE("adjoint equals forward tracking for a model without fused couplings (per-sample gradient route)") {
  static_assert(!fused_couplings<without_fused_couplings<Mlp<double>>, SoftmaxCrossEntropy<double>, double>);
  static_assert(fused_couplings<Mlp<double>, SoftmaxCrossEntropy<double>, double>);
  const auto train = classification_data(23, 4, 3, 5, 7, 2);
  const auto test = classification_data(5, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 3, 17, /*drop_last=*/false);
  without_fused_couplings<Mlp<double>> model{Mlp<double>(4, {6}, 3, activation::tanh)};
  check(compare_with_forward(model, step_schedule(0.3, {1, 2}, 0.5), train, order, test, 0.9, 0.01));
}

TEST_CASE("adjoint equals forward tracking in float32 to float rounding: tanh MLP, momentum, weight decay") {
  const auto train = classification_data<float>(23, 4, 3, 5, 7, 2);
  const auto test = classification_data<float>(5, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 3, 17, /*drop_last=*/false);
  Mlp<float> model(4, {6}, 3, activation::tanh);
  const auto c = compare_with_forward(model, step_schedule(0.3, {1, 2}, 0.5), train, order, test, 0.9, 0.01);
  MESSAGE("float32 adjoint vs forward: Exact " << c.exact << ", HessianFree " << c.hessian_free);
  // Both sum the same 15 steps of terms in float in different orders: measured about ε of float
  // (1.2e-7); 1e-5 (≈ 80 ε) leaves room for another compiler's contractions, while the two
  // variants differ by O(1).
  CHECK(c.exact <= 1e-5);
  CHECK(c.hessian_free <= 1e-5);
  CHECK(c.hessian_term >= 1e-2);
}

TEST_CASE("HessianFree adjoint equals lean mode, its forward counterpart for a known test set") {
  const auto train = classification_data(21, 4, 3, 13, 5, 1);
  const auto test = classification_data(4, 4, 3, 14, 5, 1);
  const auto order = batch_order::shuffled(21, 4, 3, 8, /*drop_last=*/false);
  using loss_t = SoftmaxCrossEntropy<double>;
  Mlp<double> model(4, {6}, 3, activation::tanh);
  loss_t loss;
  const index P = model.parameter_count(), N = train.size();
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 5);
  const auto run = [&](auto&... callbacks) {
    SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 0.01});
    step_schedule schedule(0.3, {1}, 0.5);
    std::vector<double> w = w0;
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    (void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, callbacks...);
    return std::pair{w, optimizer.step_coefficients(0.0)};
  };
  trajectory_recorder<double, cpu> trajectory;
  const auto [w_T, coefficients] = run(trajectory);
  const auto U = per_sample_gradients(model, loss, vector_view<const double>(w_T.data(), P), test);
  std::vector<index> everyone(static_cast<std::size_t>(N));
  std::iota(everyone.begin(), everyone.end(), index{0});
  hypergradient_tracker<Mlp<double>, loss_t, HessianFree> lean(model, loss, everyone, N, coefficients.p,
                                                                 coefficients.lambda, lean_projection<double>{U.view()});
  const auto [w_again, unused] = run(lean);
  REQUIRE(w_again == w_T);  // the identical trajectory
  const SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 0.01});
  const auto adjoint = adjoint_projections<HessianFree>(model, loss, train, order, trajectory, U.view(), optimizer);
  CHECK(relative_error(host_values<double>(adjoint.view()), host_values<double>(lean.projections())) <= 1e-10);
}

TEST_CASE("Exact adjoint equals central finite differences of retraining with a perturbed sample weight") {
  const auto train = classification_data(12, 3, 3, 1);
  const auto test = classification_data(3, 3, 3, 2);
  const auto order = batch_order::shuffled(12, 4, 3, 5);  // 9 steps
  using loss_t = SoftmaxCrossEntropy<double>;
  Mlp<double> model(3, {5}, 3, activation::tanh);
  loss_t loss;
  const index P = model.parameter_count();
  const sgd_run settings{0.9, 0.01, [&] {
                           std::vector<double> r;
                           for (index t = 0; t < order.steps(); ++t) r.push_back(0.3 * std::pow(0.9, static_cast<double>(t)));
                           return r;
                         }()};
  SGD<double> optimizer(P, {.momentum = settings.momentum, .weight_decay = settings.weight_decay});
  list_schedule schedule(settings.rates);
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 7);
  std::vector<double> w = w0;
  trajectory_recorder<double, cpu> trajectory;
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  (void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, trajectory);
  const auto U = per_sample_gradients(model, loss, vector_view<const double>(w.data(), P), test);
  const auto adjoint = host_values<double>(
      adjoint_projections<Exact>(model, loss, train, order, trajectory, U.view(), optimizer).view());
  const auto u = host_values<double>(U.view());
  for (const index i : {index{0}, index{5}, index{11}}) {
    CAPTURE(i);
    const auto d = retraining_derivative(model, loss, train, order, w0, settings, i, 1e-3);  // dw_T/dε_i
    std::vector<double> want(static_cast<std::size_t>(test.size())), got(want.size());
    for (index j = 0; j < test.size(); ++j) {
      double s = 0;
      for (index k = 0; k < P; ++k) s += u[static_cast<std::size_t>(j * P + k)] * d[static_cast<std::size_t>(k)];
      want[static_cast<std::size_t>(j)] = s;
      got[static_cast<std::size_t>(j)] = adjoint[static_cast<std::size_t>(i * test.size() + j)];
    }
    // Richardson truncation O(h⁴) ≈ 1e-12 at h = 1e-3 plus roundoff ≈ ε/h: 1e-9 leaves room, a wrong
    // term would be off by O(1).
    CHECK(relative_error(got, want) <= 1e-9);
  }
}

TEST_CASE("checkpoints every K steps: recomputed segments are the recorded parameters bit for bit, and so is the adjoint") {
  const auto train = classification_data(23, 4, 3, 5, 7, 2);
  const auto test = classification_data(4, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 3, 17, /*drop_last=*/false);  // 15 steps, last batch of 3
  using loss_t = SoftmaxCrossEntropy<double>;
  Mlp<double> model(4, {6}, 3, activation::tanh);
  loss_t loss;
  const index P = model.parameter_count(), T = order.steps();
  for (const index K : {index{1}, index{2}, index{3}, index{7}, T, T + 5}) {
    CAPTURE(K);
    SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 0.01});
    plateau_schedule schedule(0.3, 0.5, 1, 0.3);  // rates decided during training, replayed as recorded
    std::vector<double> w(static_cast<std::size_t>(P));
    model.initialize(vector_view<double>(w.data(), P), 3);
    trajectory_recorder<double, cpu> everything;
    checkpointed_trajectory checkpointed(model, loss, optimizer, train, order, K);
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    (void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, everything, checkpointed);
    const auto final_velocity = host_values<double>(optimizer.velocity().as_matrix(1, P));
    const auto U = per_sample_gradients(model, loss, vector_view<const double>(w.data(), P), test);
    {
      bool identical = true;
      for (index t = T - 1; t >= 0; --t)  // the sweep's order
        identical = identical && host_values<double>(checkpointed.parameters(t).as_matrix(1, P)) ==
                                     host_values<double>(everything.parameters(t).as_matrix(1, P)) &&
                    checkpointed.learning_rate(t) == everything.learning_rate(t);
      CHECK(identical);
      CHECK(checkpointed.recomputed_segments() == (T + K - 1) / K);
      const auto from_all = adjoint_projections<Exact>(model, loss, train, order, everything, U.view(), optimizer);
      const auto from_checkpoints =
          adjoint_projections<Exact>(model, loss, train, order, checkpointed, U.view(), optimizer);
      CHECK(host_values<double>(from_checkpoints.view()) == host_values<double>(from_all.view()));
    }
    // ~checkpointed_trajectory is still ahead; the optimizer's velocity was moved by the replays.
    CHECK(host_values<double>(optimizer.velocity().as_matrix(1, P)) != final_velocity);
  }
}

TEST_CASE("a trajectory kept in a mapped file is the one kept in memory, bit for bit, and so is the adjoint") {
  const auto train = classification_data(23, 4, 3, 5, 7, 2);
  const auto test = classification_data(4, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 3, 17, /*drop_last=*/false);  // 15 steps
  using loss_t = SoftmaxCrossEntropy<double>;
  // Wide enough (|w| = 1 603 doubles, 12.8 KB a row) that rows straddle pages and whole pages get
  // handed back while the run writes and the sweep reads.
  Mlp<double> model(4, {200}, 3, activation::tanh);
  loss_t loss;
  const index P = model.parameter_count(), T = order.steps();
  SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 0.01});
  constant_schedule schedule(0.1);
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 3);
  const auto directory = std::filesystem::temp_directory_path() / "hydra-adjoint-trajectory-test";
  std::filesystem::remove_all(directory);
  {
    trajectory_recorder<double, cpu> in_memory;
    trajectory_recorder<double, cpu> in_file(T, P, directory);
    CHECK(in_file.file_backed());
    CHECK_FALSE(in_memory.file_backed());
    CHECK(std::filesystem::is_empty(directory));  // unlinked as soon as mapped
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    (void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, in_memory, in_file);
    REQUIRE(in_file.steps() == T);
    const auto U = per_sample_gradients(model, loss, vector_view<const double>(w.data(), P), test);
    const auto from_file = adjoint_projections<Exact>(model, loss, train, order, in_file, U.view(), optimizer);
    const auto from_memory = adjoint_projections<Exact>(model, loss, train, order, in_memory, U.view(), optimizer);
    CHECK(host_values<double>(from_file.view()) == host_values<double>(from_memory.view()));
    bool identical = true;
    for (index t = 0; t < T; ++t)  // read again, forwards, after the sweep released the pages
      identical = identical && host_values<double>(in_file.parameters(t).as_matrix(1, P)) ==
                                   host_values<double>(in_memory.parameters(t).as_matrix(1, P));
    CHECK(identical);
    CHECK_THROWS_WITH_AS((void)in_file.parameters(T), doctest::Contains("outside the 15 recorded steps"), invalid_argument);
  }
  {  // sized for fewer steps than the run has: refused at the step that does not fit
    trajectory_recorder<double, cpu> too_short(4, P, directory);
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    CHECK_THROWS_WITH_AS((void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, too_short),
                         doctest::Contains("step 4 is beyond the 4 steps"), invalid_argument);
  }
  CHECK(std::filesystem::is_empty(directory));
  std::filesystem::remove_all(directory);
}

TEST_CASE("checkpointed_trajectory gives the optimizer back its final velocity and refuses bad requests") {
  const auto train = classification_data(8, 3, 3, 1);
  const auto order = batch_order::sequential(8, 2, 2);  // 8 steps
  SoftmaxCrossEntropy<double> loss;
  Mlp<double> model(3, {4}, 3, activation::tanh);
  const index P = model.parameter_count();
  SGD<double> optimizer(P, {.momentum = 0.9});
  std::vector<double> w(static_cast<std::size_t>(P), 0.1);
  std::vector<double> final_velocity;
  {
    checkpointed_trajectory checkpointed(model, loss, optimizer, train, order, 3);
    constant_schedule schedule(0.1);
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    (void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, checkpointed);
    final_velocity = host_values<double>(optimizer.velocity().as_matrix(1, P));
    (void)checkpointed.parameters(0);  // replays from step 0: the velocity moves
    CHECK_THROWS_AS((void)checkpointed.parameters(8), invalid_argument);
    CHECK_THROWS_AS((void)checkpointed.parameters(-1), invalid_argument);
  }
  CHECK(host_values<double>(optimizer.velocity().as_matrix(1, P)) == final_velocity);
  CHECK_THROWS_AS((checkpointed_trajectory{model, loss, optimizer, train, order, 0}), invalid_argument);
}

TEST_CASE("adjoint_projections refuses a trajectory, an order or directions that do not fit") {
  const auto train = classification_data(8, 3, 3, 1);
  const auto order = batch_order::sequential(8, 4, 1);
  Mlp<double> model(3, {4}, 3, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  SGD<double> optimizer(P);
  trajectory_recorder<double, cpu> empty;
  matrix<double, cpu> U(2, P);
  CHECK_THROWS_AS((void)adjoint_projections<Exact>(model, loss, train, order, empty, U.view(), optimizer), invalid_argument);
  matrix<double, cpu> wrong(2, P + 1);
  trajectory_recorder<double, cpu> two_steps;
  std::vector<double> w(static_cast<std::size_t>(P));
  constant_schedule schedule(0.1);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  (void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, two_steps);
  CHECK_THROWS_AS((void)adjoint_projections<Exact>(model, loss, train, order, two_steps, wrong.view(), optimizer),
                  shape_error);
  CHECK_THROWS_AS((void)adjoint_projections<Exact>(model, loss, train, batch_order::sequential(8, 2, 1), two_steps,
                                                   U.view(), optimizer),
                  invalid_argument);
  // Recording must start at step 0: a second run into the same recorder is refused.
  CHECK_THROWS_AS((void)fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, two_steps), invalid_argument);
}

} // namespace hydra::test
