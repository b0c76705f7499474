#pragma once
// training_scope: a model as PyTorch's train() runs it, for one training step. Its batch norms use
// the batch's statistics (batch_norm_state.hpp) and its dropouts drop by the step's mask
// (dropout.hpp); when the scope ends every layer is back in the mode it had, which is how
// evaluation and the attribution passes see the model. A model with neither is unaffected.
//
//   {
//     hydra::training_scope train(model, step);
//     model.gradient(w, x, y, loss, g);
//     train.update_running_statistics();  // once per step, as a train-mode forward pass does
//   }

#include <cstdint>
#include <functional>
#include <typeinfo>

#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/dropout.hpp"

namespace hydra {

namespace detail {
template <class M, class F>
void for_each_dropout(M& model, F&& f) {
  using layer = Dropout<typename M::scalar_type, typename M::backend_type>;
  if constexpr (has_layer_visitor<M>)
    model.for_each_erased(typeid(layer), [&](void* d) { f(*static_cast<layer*>(d)); });
}
} // namespace detail

/// How many Dropout layers the model has.
template <class M>
[[nodiscard]] index dropout_count(M& model) {
  index n = 0;
  detail::for_each_dropout(model, [&](auto&) { ++n; });
  return n;
}

template <class M>
class training_scope {
public:
  /// Training step `step` (it keys the dropout masks: the same step draws the same mask).
  training_scope(M& model, index step) : model_(model), batch_norms_(model, batch_norm_statistics::batch) {
    detail::for_each_dropout(model_, [&](auto& d) { d.set_training_step(static_cast<std::uint64_t>(step)); });
  }
  training_scope(const training_scope&) = delete;
  training_scope& operator=(const training_scope&) = delete;
  ~training_scope() {
    detail::for_each_dropout(model_, [](auto& d) { d.stop_training(); });
  }

  /// After the step's forward pass: every batch norm's running estimates move once.
  void update_running_statistics() { batch_norms_.update_running_statistics(); }

private:
  M& model_;
  batch_norm_scope<M> batch_norms_;
};

} // namespace hydra
