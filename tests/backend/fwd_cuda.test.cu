// A CUDA translation unit with models, optimizers, the trainer and the tracker on hydra::cuda
// does not compile Eigen (backend/fwd.hpp; fwd.test.cpp checks the same without CUDA).

#include <doctest/doctest.h>

#include <type_traits>

#include "hydra/backend/cuda.cuh"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"

#if defined(EIGEN_CORE_H) || defined(EIGEN_WORLD_VERSION)
#error "a header of the CUDA path included Eigen"
#endif

using model = hydra::LeNet5<float, hydra::cuda>;
using tracker = hydra::hypergradient_tracker<model, hydra::SoftmaxCrossEntropy<float, hydra::cuda>, hydra::Exact>;
static_assert(hydra::Backend<hydra::cuda>);
static_assert(hydra::Model<model>);

// The checks are the #error and static_asserts above; this case only gives the executable a
// test to run.
TEST_CASE("the CUDA path's headers compile without Eigen") {
  CHECK(model::parameters == 61706);
  CHECK(std::is_same_v<tracker::backend_type, hydra::cuda>);
}
