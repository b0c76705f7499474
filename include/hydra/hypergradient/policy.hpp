#pragma once
// The two variants of the recurrence, chosen at compile time: Exact keeps the Hessian term
// H_t ∇_{t−1,i} (Hessian-vector products), HessianFree drops it (the paper's approximation).

#include <concepts>

namespace hydra {

/// Hessian-aware: every tracked sample's H_t ∇_{t−1,i} in batched Hessian-vector products.
struct Exact {
  static constexpr bool hessian_aware = true;
  static constexpr const char* name = "exact";
};

/// The paper's approximation: the H_t term dropped (Theorem 1 bounds the error).
struct HessianFree {
  static constexpr bool hessian_aware = false;
  static constexpr const char* name = "hessian-free";
};

template <class P>
concept HypergradientPolicy = requires {
  { P::hessian_aware } -> std::convertible_to<bool>;
  { P::name } -> std::convertible_to<const char*>;
};

} // namespace hydra
