// expect: hydra: an optimizer must provide const `momentum()` and `weight_decay()`
#include <hydra/hydra.hpp>
struct plain_step {  // steps, but does not say its momentum and weight decay
  using value_type = double;
  void step(hydra::vector_view<double>, hydra::vector_view<const double>, double) {}
  hydra::vector_view<const double> velocity() const { return {}; }
};
int main() {
  hydra::Mlp<double> model(2, {3}, 2);
  hydra::SoftmaxCrossEntropy<double> loss;
  plain_step optimizer;
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule);
  (void)fit;
}
