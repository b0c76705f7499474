// backend/fwd.hpp: the headers above the seam name the backends without including them, so code
// that builds models, optimizers, trainers and trackers on another backend does not compile
// Eigen. This file includes all of those headers and none of a backend's: it fails to build if
// one of them pulls Eigen in. (fwd_cuda.test.cu does the same with hydra::cuda's header.)

#include <doctest/doctest.h>

#include <string>
#include <type_traits>

#include "hydra/attribution/contributions.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/influence/influence.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"

#if defined(EIGEN_CORE_H) || defined(EIGEN_WORLD_VERSION)
#error "a header above the backend seam included Eigen (through backend/cpu.hpp?); include backend/fwd.hpp instead"
#endif

// The default backend is named; using it (hydra::Mlp<double>) needs its header, which this file
// deliberately does not include.
static_assert(std::is_same_v<hydra::default_backend, hydra::cpu>);

// The checks are the #error and static_asserts above; this case only gives the executable a
// test to run.
TEST_CASE("the headers above the seam compile without any backend's definition") {
  CHECK(std::string(hydra::name_of(hydra::update_mode::lazy)) == "lazy");
}
