// expect: hydra: a layer must provide input_size(), output_size() and parameter_count()
#include <hydra/backend/cpu.hpp>
#include <hydra/nn/dense.hpp>
#include <hydra/nn/sequential.hpp>
struct not_a_layer {
  using scalar_type = double;
  using backend_type = hydra::cpu;
};
int main() {
  hydra::Sequential<hydra::Dense<double>, not_a_layer> net(hydra::Dense<double>(2, 2), not_a_layer{});
  (void)net;
}
