// expect: hydra: a callback with `load_state(archive_reader&)` must also have `void save_state(archive_writer&) const`
#include <hydra/hydra.hpp>
struct restores_only {  // would be restored from a checkpoint that never saved it
  void load_state(hydra::archive_reader&) {}
};
int main() {
  hydra::Mlp<double> model(2, {3}, 2);
  hydra::SoftmaxCrossEntropy<double> loss;
  hydra::SGD<double> optimizer(model.parameter_count());
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule);
  const hydra::dataset<double> data({2}, std::vector<double>(8, 0.5), std::vector<hydra::label_type>{0, 1, 0, 1});
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
  restores_only callback;
  (void)fit.fit(hydra::vector_view<double>(w.data(), model.parameter_count()), data,
                hydra::batch_order::sequential(4, 2, 1), nullptr, callback);
}
