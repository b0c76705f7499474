// expect: hydra::trainer::resume: the optimizer must have `set_velocity(vector_view<const T>)` besides velocity()
#include <hydra/hydra.hpp>
struct no_set_velocity {  // a complete Optimizer, but its velocity cannot be restored from a checkpoint
  using value_type = double;
  void step(hydra::vector_view<double>, hydra::vector_view<const double>, double) {}
  double momentum() const { return 0; }
  double weight_decay() const { return 0; }
  hydra::vector_view<const double> velocity() const { return {}; }
};
int main() {
  hydra::Mlp<double> model(2, {3}, 2);
  hydra::SoftmaxCrossEntropy<double> loss;
  no_set_velocity optimizer;
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule);
  const hydra::dataset<double> data({2}, std::vector<double>(8, 0.5), std::vector<hydra::label_type>{0, 1, 0, 1});
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
  (void)fit.resume("checkpoints", hydra::vector_view<double>(w.data(), model.parameter_count()), data,
                   hydra::batch_order::sequential(4, 2, 1), nullptr);
}
