#pragma once
// Lazy Hessian-free updating. Without the Hessian term, every coordinate of a tracked sample's
// state x = (dv/dε_i, ∇_i) obeys x_t = A_t·x_{t−1} + [i ∈ B_t]·w_{t,i}·g_{t,i}·(1, −η_t) with one
// 2 × 2 matrix A_t per step (recurrence.hpp). So a state needs touching only when its sample
// is in a batch: bring it from its last touch s to now with the 2 × 2 product A_t ⋯ A_{s+1}, then
// add the gradient term. transfer_ledger keeps those products, in double, for every last-touch
// step that still has samples waiting ("groups"), advancing each by one left-multiplication per
// step. That is the same order of products an eager update applies to every coordinate, so the
// lazy result differs from the eager one only by rounding; no prefix product is ever inverted
// (det A_t = p, which is 0 without momentum and underflows as p^t with it).
//
// The ledger is host bookkeeping only: O(live groups) ≤ O(min(n, steps since the oldest touch))
// scalar work per step. The vectors are updated by the backend's hypergradient_transfer.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/hypergradient/recurrence.hpp"

namespace hydra {

/// Which transfer brings each tracked state from its last touch to the current step.
class transfer_ledger {
public:
  static constexpr index untouched = -1;

  transfer_ledger() = default;
  explicit transfer_ledger(index rows) : group_of_(static_cast<std::size_t>(rows), untouched) {}

  [[nodiscard]] index rows() const noexcept { return static_cast<index>(group_of_.size()); }

  /// One optimizer step with transfer A: every waiting state's pending product becomes A · product.
  void advance(const transfer_matrix& A) {
    for (const index g : live_) groups_[static_cast<std::size_t>(g)].product = A * groups_[static_cast<std::size_t>(g)].product;
  }

  /// The product that brings row r's stored state to the current step; the zero matrix when the
  /// row was never touched (its state is zero, and the backend then writes without reading).
  [[nodiscard]] transfer_matrix pending(index r) const {
    const index g = group_of_[checked(r)];
    return g == untouched ? transfer_matrix{} : groups_[static_cast<std::size_t>(g)].product;
  }

  /// Rows `touched` (distinct) are now current: they leave their groups and form one new group
  /// whose product starts at the identity.
  void touch(std::span<const index> touched) {
    if (touched.empty()) return;
    const index fresh = new_group(static_cast<index>(touched.size()));
    for (const index r : touched) {
      index& g = group_of_[checked(r)];
      if (g == fresh) throw invalid_argument("transfer_ledger::touch: row " + std::to_string(r) + " is listed twice");
      if (g != untouched) leave(g);
      g = fresh;
    }
  }

  /// Every touched row is current (after the tracker brought all states to this step).
  void mark_all_current() {
    std::vector<index> rows;
    for (index r = 0; r < this->rows(); ++r)
      if (group_of_[static_cast<std::size_t>(r)] != untouched) rows.push_back(r);
    touch(rows);
  }

  /// Groups waiting (for tests and the checkpoint).
  [[nodiscard]] index live_groups() const noexcept { return static_cast<index>(live_.size()); }

  /// The ledger as plain arrays, and back (checkpoints): per row its group, per group its product
  /// and member count.
  struct snapshot {
    std::vector<index> group_of;
    std::vector<double> products;  // 4 per group
    std::vector<index> members;
  };
  [[nodiscard]] snapshot save() const {
    snapshot s{group_of_, {}, {}};
    s.products.reserve(groups_.size() * 4);
    for (const auto& g : groups_) {
      s.products.insert(s.products.end(), g.product.begin(), g.product.end());
      s.members.push_back(g.members);
    }
    return s;
  }
  void restore(const snapshot& s) {
    const std::size_t count = s.members.size();
    if (s.products.size() != 4 * count || s.group_of.size() != group_of_.size())
      throw format_error("transfer_ledger::restore: " + std::to_string(s.group_of.size()) + " rows and " +
                         std::to_string(s.products.size()) + " product entries for " + std::to_string(count) +
                         " groups; expected " + std::to_string(group_of_.size()) + " rows and 4 entries per group");
    std::vector<group> groups(count);
    std::vector<index> counted(count, 0);
    for (std::size_t g = 0; g < count; ++g) {
      for (std::size_t k = 0; k < 4; ++k) groups[g].product[k] = s.products[4 * g + k];
      groups[g].members = s.members[g];
    }
    for (std::size_t r = 0; r < s.group_of.size(); ++r) {
      const index g = s.group_of[r];
      if (g == untouched) continue;
      if (g < 0 || static_cast<std::size_t>(g) >= count)
        throw format_error("transfer_ledger::restore: row " + std::to_string(r) + " names group " + std::to_string(g) +
                           " of " + std::to_string(count));
      ++counted[static_cast<std::size_t>(g)];
    }
    std::vector<index> live;
    std::vector<index> free;
    for (std::size_t g = 0; g < count; ++g) {
      if (counted[g] != groups[g].members)
        throw format_error("transfer_ledger::restore: group " + std::to_string(g) + " claims " +
                           std::to_string(groups[g].members) + " members, " + std::to_string(counted[g]) + " rows name it");
      (groups[g].members > 0 ? live : free).push_back(static_cast<index>(g));
    }
    group_of_ = s.group_of;
    groups_ = std::move(groups);
    live_ = std::move(live);
    free_ = std::move(free);
  }

private:
  struct group {
    transfer_matrix product = identity_transfer;
    index members = 0;
  };

  std::size_t checked(index r) const {
    if (r < 0 || r >= rows())
      throw invalid_argument("transfer_ledger: row " + std::to_string(r) + " is outside [0, " + std::to_string(rows()) + ")");
    return static_cast<std::size_t>(r);
  }

  index new_group(index members) {
    index g;
    if (!free_.empty()) {
      g = free_.back();
      free_.pop_back();
    } else {
      g = static_cast<index>(groups_.size());
      groups_.emplace_back();
    }
    groups_[static_cast<std::size_t>(g)] = {identity_transfer, members};
    live_.push_back(g);
    return g;
  }

  void leave(index g) {
    if (--groups_[static_cast<std::size_t>(g)].members > 0) return;
    // Order of live_ does not matter: each group's product is advanced independently.
    for (std::size_t k = 0; k < live_.size(); ++k)
      if (live_[k] == g) {
        live_[k] = live_.back();
        live_.pop_back();
        break;
      }
    free_.push_back(g);
  }

  std::vector<index> group_of_;  // per row: its group, or untouched
  std::vector<group> groups_;
  std::vector<index> live_;      // groups with members
  std::vector<index> free_;      // reusable group slots
};

} // namespace hydra
