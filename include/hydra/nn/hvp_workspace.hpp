#pragma once
// How many Hessian-vector-product directions one model call may take so that its workspace stays
// within a memory bound: shared by the hypergradient tracker, the adjoint sweep and the
// influence functions' objective.

#include <algorithm>
#include <cstddef>

#include "hydra/core/types.hpp"

namespace hydra {

/// Hessian-vector-product directions per call such that the call's workspace (the products and
/// the tangents the model reports per direction for a batch of `batch` samples) stays within
/// `bytes`; at least 1.
template <class M>
[[nodiscard]] index hvp_directions_per_call(M& model, index batch, std::size_t bytes) {
  using T = typename M::scalar_type;
  index per_direction = model.parameter_count();  // the products
  if constexpr (requires { model.tangent_elements_per_direction(batch); })
    per_direction += model.tangent_elements_per_direction(batch);
  else
    per_direction += 4 * batch * (model.input_size() + model.output_size());
  const auto fit = static_cast<index>(bytes / (sizeof(T) * static_cast<std::size_t>(per_direction)));
  return std::max<index>(1, fit);
}

} // namespace hydra
