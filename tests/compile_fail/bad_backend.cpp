// expect: hydra: a backend must declare `static constexpr const char* name`
#include <hydra/backend/cpu.hpp>
#include <hydra/nn/dense.hpp>
#include <hydra/nn/network.hpp>
#include <hydra/nn/sequential.hpp>
struct no_backend {};
int main() {
  hydra::basic_network<double, no_backend, hydra::detail::layer_tuple<hydra::Dense<double>>>* net = nullptr;
  (void)sizeof(*net);
}
