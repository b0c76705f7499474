// expect: hydra: a loss must provide values(outputs, targets, out)
#include <hydra/hydra.hpp>
struct half_a_loss {  // no hessian_product
  using scalar_type = double;
  using backend_type = hydra::cpu;
  void values(hydra::matrix_view<const double>, hydra::batch_targets<double>, hydra::vector_view<double>) {}
  void gradient(hydra::matrix_view<const double>, hydra::batch_targets<double>, double, hydra::matrix_view<double>) {}
};
int main() {
  hydra::Mlp<double> model(2, {3}, 2);
  half_a_loss loss;
  hydra::SGD<double> optimizer(model.parameter_count());
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule);
  (void)fit;
}
