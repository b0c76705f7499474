// The Layer, Loss and Model concepts, positively and negatively.

#include <doctest/doctest.h>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/nn/sequential.hpp"

namespace hydra::test {
namespace {
struct not_a_layer {
  using scalar_type = double;
  using backend_type = cpu;
  index input_size() const { return 1; }
  index output_size() const { return 1; }
  index parameter_count() const { return 0; }
  // no forward/backward/...
};
struct loss_without_hessian {
  using scalar_type = double;
  using backend_type = cpu;
  void values(matrix_view<const double>, batch_targets<double>, vector_view<double>) {}
  void gradient(matrix_view<const double>, batch_targets<double>, double, matrix_view<double>) {}
};
struct model_without_hvp {
  using scalar_type = double;
  using backend_type = cpu;
  index input_size() const { return 1; }
  index output_size() const { return 1; }
  index parameter_count() const { return 1; }
};
} // namespace

static_assert(Layer<Dense<double>>);
static_assert(Layer<Dense<float>>);
static_assert(Layer<ReLU<double>>);
static_assert(Layer<Activation<float>>);
static_assert(!Layer<int>);
static_assert(!Layer<not_a_layer>);

static_assert(Loss<SoftmaxCrossEntropy<double>>);
static_assert(Loss<MeanSquaredError<float>>);
static_assert(!Loss<loss_without_hessian>);
static_assert(!Loss<Dense<double>>);

static_assert(Model<Mlp<double>>);
static_assert(Model<SoftmaxRegression<float>>);
static_assert(Model<LinearRegression<double>>);
static_assert(Model<Sequential<Dense<double>, Tanh<double>, Dense<double>>>);
static_assert(!Model<Dense<double>>);
static_assert(!Model<model_without_hvp>);
static_assert(!Model<SoftmaxCrossEntropy<double>>);
static_assert(check_model<Mlp<float>>());
static_assert(check_loss<SoftmaxCrossEntropy<float>>());

TEST_CASE("the nn concepts are checked at compile time") { CHECK(Model<Mlp<double>>); }

} // namespace hydra::test
