// expect: hydra: a callback's after_update cannot be called as after_update(const hydra::step_context<T, B>&)
#include <hydra/hydra.hpp>
struct float_logger {  // written for a float run, attached to a double one: it would never be called
  void after_update(const hydra::step_context<float, hydra::cpu>&) {}
};
int main() {
  hydra::Mlp<double> model(2, {3}, 2);
  hydra::SoftmaxCrossEntropy<double> loss;
  hydra::SGD<double> optimizer(model.parameter_count());
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule);
  const hydra::dataset<double> data({2}, std::vector<double>(8, 0.5), std::vector<hydra::label_type>{0, 1, 0, 1});
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
  float_logger logger;
  (void)fit.fit(hydra::vector_view<double>(w.data(), model.parameter_count()), data,
                hydra::batch_order::sequential(4, 2, 1), nullptr, logger);
}
