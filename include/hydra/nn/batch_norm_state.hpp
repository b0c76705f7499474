#pragma once
// What a model with batch norms carries besides w, and the modes it runs in. The trainer and the
// tools reach every BatchNorm2d of a model (inside composites too) through these functions; for a
// model without batch norms they do nothing.
//
//   training step   batch statistics, then each running estimate updated once (PyTorch's train())
//   evaluation      running statistics (PyTorch's eval()): accuracy, test losses
//   attribution     the model's own setting, set_batch_norm_statistics: batch (exact derivatives of
//                   the training step, samples coupled) or running (the eval-mode approximation)
//
// The buffers are each batch norm's running_mean then running_var, batch norms in layer order:
// PyTorch's state_dict order of those buffers (without num_batches_tracked).

#include <functional>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/nn/batch_norm.hpp"

namespace hydra {

namespace detail {
template <class M>
concept has_layer_visitor = requires(M& m, const std::type_info& type, const std::function<void(void*)>& f) {
  m.for_each_erased(type, f);
};

template <class M, class F>
void for_each_batch_norm(M& model, F&& f) {
  if constexpr (has_layer_visitor<M>)
    model.for_each_erased(typeid(BatchNorm2d<typename M::scalar_type, typename M::backend_type>),
                          [&](void* layer) {
                            f(*static_cast<BatchNorm2d<typename M::scalar_type, typename M::backend_type>*>(layer));
                          });
}
} // namespace detail

/// How many BatchNorm2d layers the model has.
template <class M>
[[nodiscard]] index batch_norm_count(M& model) {
  index n = 0;
  detail::for_each_batch_norm(model, [&](auto&) { ++n; });
  return n;
}

/// The statistics every batch norm of the model uses in the passes that follow.
template <class M>
void set_batch_norm_statistics(M& model, batch_norm_statistics statistics) {
  detail::for_each_batch_norm(model, [&](auto& bn) { bn.set_statistics(statistics); });
}

/// The model's running statistics, 2·C values per batch norm (running_mean, running_var).
template <class M>
[[nodiscard]] std::vector<typename M::scalar_type> model_buffers(M& model) {
  std::vector<typename M::scalar_type> out;
  detail::for_each_batch_norm(model, [&](auto& bn) {
    for (const auto& part : {bn.running_mean(), bn.running_var()}) out.insert(out.end(), part.begin(), part.end());
  });
  return out;
}

/// Sets them from values in model_buffers' layout; a count that differs is a shape_error naming
/// both (before anything changes).
template <class M>
void set_model_buffers(M& model, std::span<const typename M::scalar_type> values) {
  std::size_t expected = 0;
  detail::for_each_batch_norm(model, [&](auto& bn) { expected += 2 * static_cast<std::size_t>(bn.channels()); });
  if (values.size() != expected)
    throw shape_error("hydra::set_model_buffers: " + std::to_string(values.size()) + " values for a model whose batch "
                      "norms hold " + std::to_string(expected) + " (running_mean and running_var of each)");
  std::size_t at = 0;
  detail::for_each_batch_norm(model, [&](auto& bn) {
    const auto c = static_cast<std::size_t>(bn.channels());
    bn.set_running_statistics(values.subspan(at, c), values.subspan(at + c, c));
    at += 2 * c;
  });
}

/// Every batch norm on `statistics` for this object's lifetime, each restored to its own setting
/// afterwards: the trainer's training step (batch) and evaluation (running).
template <class M>
class batch_norm_scope {
public:
  batch_norm_scope(M& model, batch_norm_statistics statistics) : model_(model) {
    detail::for_each_batch_norm(model_, [&](auto& bn) {
      saved_.push_back(bn.statistics());
      bn.set_statistics(statistics);
    });
  }
  batch_norm_scope(const batch_norm_scope&) = delete;
  batch_norm_scope& operator=(const batch_norm_scope&) = delete;
  ~batch_norm_scope() {
    std::size_t k = 0;
    detail::for_each_batch_norm(model_, [&](auto& bn) { bn.set_statistics(saved_[k++]); });
  }

  /// After the training step's forward pass: every running estimate moves once towards its batch
  /// statistics (momentum), as a PyTorch forward in train mode does.
  void update_running_statistics() {
    detail::for_each_batch_norm(model_, [](auto& bn) { bn.update_running_statistics(); });
  }

private:
  M& model_;
  std::vector<batch_norm_statistics> saved_;
};

} // namespace hydra
