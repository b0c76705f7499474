#pragma once
// Choosing how H⁻¹ is applied: explicit (form and factor H), conjugate gradient, or LiSSA, by a
// run-time value so that a command line can pick it; each method keeps its own options and its
// own report.

#include <string>
#include <string_view>
#include <variant>

#include "hydra/core/error.hpp"
#include "hydra/influence/concepts.hpp"
#include "hydra/influence/conjugate_gradient.hpp"
#include "hydra/influence/explicit.hpp"
#include "hydra/influence/lissa.hpp"

namespace hydra {

enum class ihvp_method {
  explicit_hessian,    ///< form H + δI and factor it (small models); "explicit"
  conjugate_gradient,  ///< CG on H + δI with whole-training-set HVPs; "cg"
  lissa,               ///< LiSSA, solving H + s·δ·I; "lissa"
};

/// "explicit", "cg" or "lissa": the names hydra-attribute's --ihvp takes.
[[nodiscard]] constexpr const char* name_of(ihvp_method m) noexcept {
  switch (m) {
    case ihvp_method::explicit_hessian: return "explicit";
    case ihvp_method::conjugate_gradient: return "cg";
    case ihvp_method::lissa: return "lissa";
  }
  return "?";
}

/// The inverse of name_of; throws invalid_argument naming the text for anything else.
[[nodiscard]] inline ihvp_method parse_ihvp_method(std::string_view text) {
  if (text == "explicit") return ihvp_method::explicit_hessian;
  if (text == "cg") return ihvp_method::conjugate_gradient;
  if (text == "lissa") return ihvp_method::lissa;
  throw invalid_argument("unknown inverse-HVP method '" + std::string(text) + "': expected explicit, cg or lissa");
}

struct ihvp_options {
  ihvp_method method = ihvp_method::conjugate_gradient;
  explicit_options explicit_hessian{};
  cg_options cg{};
  lissa_options lissa{};
};

/// Which method ran is the alternative held.
using ihvp_report = std::variant<explicit_report, cg_report, lissa_report>;

/// solutions.row(j) ≈ (H + damping)⁻¹ rhs.row(j) by the chosen method (solutions may be rhs).
template <class O>
ihvp_report inverse_hvp(O& op, matrix_view<const typename O::scalar_type> rhs,
                        matrix_view<typename O::scalar_type> solutions, const ihvp_options& options = {}) {
  switch (options.method) {
    case ihvp_method::explicit_hessian: return explicit_inverse_hvp(op, rhs, solutions, options.explicit_hessian);
    case ihvp_method::conjugate_gradient: return conjugate_gradient(op, rhs, solutions, options.cg);
    case ihvp_method::lissa: return lissa(op, rhs, solutions, options.lissa);
  }
  throw invalid_argument("inverse_hvp: unknown method " + std::to_string(static_cast<int>(options.method)));
}

} // namespace hydra
