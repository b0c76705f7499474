// expect: hydra: the hypergradient tracker needs the linear map of the optimizer's step
#include <hydra/hydra.hpp>
struct plain_step {  // trains (hydra::trainer accepts it), but cannot say what a step does to a hypergradient
  using value_type = double;
  void step(hydra::vector_view<double>, hydra::vector_view<const double>, double) {}
};
int main() {
  hydra::Mlp<double> model(2, {3}, 2);
  hydra::SoftmaxCrossEntropy<double> loss;
  plain_step optimizer;
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule);  // fine: training needs only the update rule
  hydra::hypergradient_tracker<hydra::Mlp<double>, hydra::SoftmaxCrossEntropy<double>> tracker(model, loss, optimizer,
                                                                                              {0, 1}, 4);
  (void)fit;
  (void)tracker;
}
