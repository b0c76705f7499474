#pragma once
// Where the tracker keeps its two n × P states (dv/dε_i and ∇_i, one row per tracked sample): on a
// host backend one mapped_matrix of 2n rows (anonymous memory, or a scratch file for states larger
// than RAM; core/mapped_matrix.hpp), on a device backend two matrices in its memory. With the
// lazy update only the rows of one batch are touched per step; release() hands their pages back
// so that resident memory stays bounded.

#include <filesystem>
#include <utility>

#include "hydra/core/error.hpp"
#include "hydra/core/mapped_matrix.hpp"
#include "hydra/core/tensor.hpp"

namespace hydra {

template <Scalar T, class B>
class state_store {
public:
  state_store() = default;

  /// Both states in memory, zeroed.
  state_store(index rows, index cols) : rows_(rows), cols_(cols) {
    if (rows < 0 || cols < 0) throw invalid_argument("state_store: negative shape");
    if constexpr (B::host_accessible) {
      mapped_ = mapped_matrix<T>(2 * rows, cols, "the states");
    } else {
      memory_dv_ = matrix<T, B>(rows, cols);
      memory_grad_ = matrix<T, B>(rows, cols);
    }
  }

  /// Both states in one file created in `directory` and mapped (host-accessible backends only).
  state_store(const std::filesystem::path& directory, index rows, index cols)
    requires(B::host_accessible)
      : rows_(rows), cols_(cols) {
    if (rows < 0 || cols < 0) throw invalid_argument("state_store: negative shape");
    mapped_ = mapped_matrix<T>(directory, 2 * rows, cols, "the states");
  }

  [[nodiscard]] bool file_backed() const noexcept { return mapped_.file_backed(); }
  [[nodiscard]] index rows() const noexcept { return rows_; }
  [[nodiscard]] index cols() const noexcept { return cols_; }

  /// Row r: dv/dε_i.
  [[nodiscard]] matrix_view<T> momentum_derivatives() noexcept {
    if constexpr (B::host_accessible) return mapped_.view().row_block(0, rows_);
    else return memory_dv_.view();
  }
  [[nodiscard]] matrix_view<const T> momentum_derivatives() const noexcept {
    return const_cast<state_store*>(this)->momentum_derivatives();
  }
  /// Row r: ∇_i.
  [[nodiscard]] matrix_view<T> hypergradients() noexcept {
    if constexpr (B::host_accessible) return mapped_.view().row_block(rows_, rows_);
    else return memory_grad_.view();
  }
  [[nodiscard]] matrix_view<const T> hypergradients() const noexcept {
    return const_cast<state_store*>(this)->hypergradients();
  }

  /// Hands the pages lying wholly inside rows [first, first + count) of both states back to the
  /// kernel (file-backed only; their contents stay in the file). A no-op in memory.
  void release(index first, index count) const noexcept {
    mapped_.release(first, count);
    mapped_.release(rows_ + first, count);
  }

private:
  matrix<T, B> memory_dv_;    // device backends
  matrix<T, B> memory_grad_;
  mapped_matrix<T> mapped_;   // host backends: both states, dv rows first
  index rows_ = 0;
  index cols_ = 0;
};

} // namespace hydra
