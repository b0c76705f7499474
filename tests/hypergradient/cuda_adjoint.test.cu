// The adjoint sweep on hydra::cuda against the same sweep on hydra::cpu: the trajectory recorded
// in device memory (every step, and checkpoints every K = 4 steps recomputed on the device), the
// test gradients, adjoint state and couplings in device memory, Exact (couplings from the HVP's
// tangent pass: a strided-batched GEMM of B tiny products) and HessianFree (forward-mode
// couplings, and per-sample gradients where M exceeds a batch). The emulated build (docs/backend.md,
// "Host emulation") runs this everywhere; with a real device and no emulation, it is skipped
// without one.
//
// Tolerance against the CPU, double: 1e-9 relative (max over elements / max magnitude), the bound
// and argument of cuda_pipeline.test.cu (summation order and FMA contraction only, over 15
// steps). Checkpointed against every step kept, on the device: bit for bit.

#include <doctest/doctest.h>

#include <hydra/backend/cuda.cuh>

#include <algorithm>
#include <cmath>
#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/adjoint.hpp"
#include "hydra/hypergradient/trajectory.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"
#include "support/cuda_device.hpp"

namespace hydra::test {
namespace {

struct sweeps {
  std::vector<double> exact, exact_checkpointed, hessian_free;
};

/// Trains `make.on<B>()` on `train` along `order` with both trajectories attached, then sweeps
/// back onto the test set's per-sample gradients at w_T.
template <class B, class Make>
sweeps run(Make make, const dataset<double>& train, const dataset<double>& test, const batch_order& order) {
  auto model = make.template on<B>();
  SoftmaxCrossEntropy<double, B> loss;
  const index P = model.parameter_count();
  SGD<double, B> optimizer(P, {.momentum = 0.9, .weight_decay = 1e-3});
  step_schedule schedule(0.2, {1}, 0.5);
  vector<double, B> w(P);
  model.initialize(w.view(), 5);
  trajectory_recorder<double, B> everything;
  sweeps out;
  {
    checkpointed_trajectory checkpointed(model, loss, optimizer, train, order, 4);
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    (void)fit.fit(w.view(), train, order, nullptr, everything, checkpointed);
    const auto U = per_sample_gradients(model, loss, std::as_const(w).view(), test);
    out.exact = adjoint_projections<Exact>(model, loss, train, order, everything, U.view(), optimizer).to_host();
    out.hessian_free =
        adjoint_projections<HessianFree>(model, loss, train, order, everything, U.view(), optimizer).to_host();
    out.exact_checkpointed =
        adjoint_projections<Exact>(model, loss, train, order, checkpointed, U.view(), optimizer).to_host();
  }
  return out;
}

template <class Make>
void compare(Make make, const dataset<double>& train, const dataset<double>& test, const batch_order& order) {
  if (!have_device()) return;
  const auto host = run<cpu>(make, train, test, order);
  const auto device = run<cuda>(make, train, test, order);
  CHECK(device.exact_checkpointed == device.exact);  // recomputed on the device, bit for bit
  const double exact = relative_difference(device.exact, host.exact);
  const double hessian_free = relative_difference(device.hessian_free, host.hessian_free);
  MESSAGE("cuda vs cpu adjoint: Exact " << exact << ", HessianFree " << hessian_free);
  CHECK(exact <= 1e-9);
  CHECK(hessian_free <= 1e-9);
  CHECK(relative_difference(host.hessian_free, host.exact) >= 1e-3);  // the two differ: each check tells
}

struct make_mlp {
  template <class B>
  Mlp<double, B> on() const { return Mlp<double, B>(4, {6}, 3, activation::tanh); }
};
struct make_lenet {
  template <class B>
  LeNet5<double, B> on() const { return LeNet5<double, B>(); }
};

} // namespace

TEST_CASE("cuda adjoint equals cpu: tanh MLP, momentum, weight decay, step schedule, last batch of 3") {
  const auto train = classification_data(23, 4, 3, 5, 7, 2);
  // 7 test points: more than the last batch's 3 samples, so HessianFree takes both coupling routes.
  const auto test = classification_data(7, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 3, 17, /*drop_last=*/false);
  compare(make_mlp{}, train, test, order);
}

TEST_CASE("cuda adjoint equals cpu: LeNet-5") {
  dataset<double> images({1, 28, 28}, normal_vector(static_cast<std::size_t>(10 * 784), 31, 0.5),
                         std::vector<label_type>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10);
  dataset<double> test_images({1, 28, 28}, normal_vector(2 * 784, 32, 0.5), std::vector<label_type>{3, 7}, 10);
  const auto order = batch_order::shuffled(10, 4, 2, 9, /*drop_last=*/false);
  compare(make_lenet{}, images, test_images, order);
}

} // namespace hydra::test
