// Tests of the backend concepts (include/hydra/backend/concepts.hpp): hydra::cpu models Backend,
// and types that miss one requirement each do not; hydra::Scalar admits exactly float and double.

#include <doctest/doctest.h>

#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/cpu.hpp"

namespace {

using hydra::cpu;

/// Re-exports every member of cpu: the positive control showing that the re-export itself is
/// complete, so each negative below fails only for the member it leaves out.
struct cpu_reexport : private cpu {
  using cpu::name;
  using cpu::host_accessible;
  using cpu::devices;
  using cpu::no_device_reason;
  using cpu::buffer;
  using cpu::copy_from_host;
  using cpu::copy_to_host;
  using cpu::gemm;
  using cpu::gemm_batched;
  using cpu::axpy;
  using cpu::scal;
  using cpu::copy;
  using cpu::fill;
  using cpu::dot;
  using cpu::sum;
  using cpu::add_row_vector;
  using cpu::add_row_vectors;
  using cpu::column_sums;
  using cpu::column_sums_batched;
  using cpu::row_outer_products;
  using cpu::all_finite;
  using cpu::hypergradient_update;
  using cpu::hypergradient_transfer;
  using cpu::im2col;
  using cpu::col2im;
  using cpu::swap_leading_axes;
  using cpu::max_pool_forward;
  using cpu::max_pool_backward;
  using cpu::max_pool_tangent;
  using cpu::avg_pool_forward;
  using cpu::avg_pool_backward;
  using cpu::channel_sums;
  using cpu::channel_combine;
  using cpu::inverse_sqrt;
  using cpu::activation_forward;
  using cpu::activation_backward;
  using cpu::activation_tangent;
  using cpu::activation_second_backward;
  using cpu::softmax_cross_entropy;
  using cpu::softmax_cross_entropy_gradient;
  using cpu::softmax_cross_entropy_hessian_product;
  using cpu::squared_error;
  using cpu::squared_error_gradient;
  using cpu::count_correct;
};

/// Everything but gemm_batched (cpu's member stays private: inaccessible, hence absent).
struct cpu_without_gemm_batched : private cpu {
  using cpu::name;
  using cpu::host_accessible;
  using cpu::devices;
  using cpu::no_device_reason;
  using cpu::buffer;
  using cpu::copy_from_host;
  using cpu::copy_to_host;
  using cpu::gemm;
  using cpu::axpy;
  using cpu::scal;
  using cpu::copy;
  using cpu::fill;
  using cpu::dot;
  using cpu::sum;
  using cpu::add_row_vector;
  using cpu::add_row_vectors;
  using cpu::column_sums;
  using cpu::column_sums_batched;
  using cpu::row_outer_products;
  using cpu::all_finite;
  using cpu::hypergradient_update;
  using cpu::hypergradient_transfer;
  using cpu::im2col;
  using cpu::col2im;
  using cpu::swap_leading_axes;
  using cpu::max_pool_forward;
  using cpu::max_pool_backward;
  using cpu::max_pool_tangent;
  using cpu::avg_pool_forward;
  using cpu::avg_pool_backward;
  using cpu::channel_sums;
  using cpu::channel_combine;
  using cpu::inverse_sqrt;
  using cpu::activation_forward;
  using cpu::activation_backward;
  using cpu::activation_tangent;
  using cpu::activation_second_backward;
  using cpu::softmax_cross_entropy;
  using cpu::softmax_cross_entropy_gradient;
  using cpu::softmax_cross_entropy_hessian_product;
  using cpu::squared_error;
  using cpu::squared_error_gradient;
  using cpu::count_correct;
};

/// cpu with one loss kernel hidden by a member of the same name that cannot be called that way.
struct cpu_without_count_correct : cpu {
  static void count_correct() = delete;
};

/// cpu with one recurrence kernel hidden.
struct cpu_without_hypergradient_transfer : cpu {
  static void hypergradient_transfer() = delete;
};

/// cpu with one reduction hidden.
struct cpu_without_all_finite : cpu {
  static void all_finite() = delete;
};

/// cpu that cannot list its devices.
struct cpu_without_devices : cpu {
  static void devices() = delete;
};

/// cpu with one activation kernel hidden.
struct cpu_without_activation_tangent : cpu {
  static void activation_tangent() = delete;
};

/// cpu with one pooling kernel hidden.
struct cpu_without_max_pool_tangent : cpu {
  static void max_pool_tangent() = delete;
};

/// cpu with one channel operation hidden.
struct cpu_without_channel_combine : cpu {
  static void channel_combine() = delete;
};

/// cpu without owned memory.
struct cpu_without_buffer : private cpu {
  using cpu::name;
  using cpu::host_accessible;
  using cpu::devices;
  using cpu::no_device_reason;
  using cpu::copy_from_host;
  using cpu::copy_to_host;
  using cpu::gemm;
  using cpu::gemm_batched;
  using cpu::axpy;
  using cpu::scal;
  using cpu::copy;
  using cpu::fill;
  using cpu::dot;
  using cpu::sum;
  using cpu::add_row_vector;
  using cpu::add_row_vectors;
  using cpu::column_sums;
  using cpu::column_sums_batched;
  using cpu::row_outer_products;
  using cpu::all_finite;
  using cpu::hypergradient_update;
  using cpu::hypergradient_transfer;
  using cpu::im2col;
  using cpu::col2im;
  using cpu::swap_leading_axes;
  using cpu::max_pool_forward;
  using cpu::max_pool_backward;
  using cpu::max_pool_tangent;
  using cpu::avg_pool_forward;
  using cpu::avg_pool_backward;
  using cpu::channel_sums;
  using cpu::channel_combine;
  using cpu::inverse_sqrt;
  using cpu::activation_forward;
  using cpu::activation_backward;
  using cpu::activation_tangent;
  using cpu::activation_second_backward;
  using cpu::softmax_cross_entropy;
  using cpu::softmax_cross_entropy_gradient;
  using cpu::softmax_cross_entropy_hessian_product;
  using cpu::squared_error;
  using cpu::squared_error_gradient;
  using cpu::count_correct;
};

/// cpu whose dot returns the wrong type: the concept checks result types too.
struct cpu_with_int_dot : cpu {
  template <class U, class V>
  static int dot(U /*x*/, V /*y*/) {
    return 0;
  }
};

/// Only the two static data members.
struct name_only {
  static constexpr const char* name = "name_only";
  static constexpr bool host_accessible = true;
};

/// The full operation set but no name.
struct cpu_without_name : private cpu {
  using cpu::host_accessible;
  using cpu::devices;
  using cpu::no_device_reason;
  using cpu::buffer;
  using cpu::copy_from_host;
  using cpu::copy_to_host;
  using cpu::gemm;
  using cpu::gemm_batched;
  using cpu::axpy;
  using cpu::scal;
  using cpu::copy;
  using cpu::fill;
  using cpu::dot;
  using cpu::sum;
  using cpu::add_row_vector;
  using cpu::add_row_vectors;
  using cpu::column_sums;
  using cpu::column_sums_batched;
  using cpu::row_outer_products;
  using cpu::all_finite;
  using cpu::hypergradient_update;
  using cpu::hypergradient_transfer;
  using cpu::im2col;
  using cpu::col2im;
  using cpu::swap_leading_axes;
  using cpu::max_pool_forward;
  using cpu::max_pool_backward;
  using cpu::max_pool_tangent;
  using cpu::avg_pool_forward;
  using cpu::avg_pool_backward;
  using cpu::channel_sums;
  using cpu::channel_combine;
  using cpu::inverse_sqrt;
  using cpu::activation_forward;
  using cpu::activation_backward;
  using cpu::activation_tangent;
  using cpu::activation_second_backward;
  using cpu::softmax_cross_entropy;
  using cpu::softmax_cross_entropy_gradient;
  using cpu::softmax_cross_entropy_hessian_product;
  using cpu::squared_error;
  using cpu::squared_error_gradient;
  using cpu::count_correct;
};

} // namespace

// ---- Backend ----
static_assert(hydra::Backend<hydra::cpu>);
static_assert(hydra::host_accessible_v<hydra::cpu>);
static_assert(hydra::Backend<cpu_reexport>);

static_assert(!hydra::Backend<int>);
static_assert(!hydra::Backend<void>);
static_assert(!hydra::Backend<hydra::cpu::buffer<float>>);
static_assert(!hydra::Backend<name_only>);
static_assert(!hydra::Backend<cpu_without_gemm_batched>);
static_assert(!hydra::Backend<cpu_without_count_correct>);
static_assert(!hydra::Backend<cpu_without_activation_tangent>);
static_assert(!hydra::Backend<cpu_without_max_pool_tangent>);
static_assert(!hydra::Backend<cpu_without_buffer>);
static_assert(!hydra::Backend<cpu_with_int_dot>);
static_assert(!hydra::Backend<cpu_without_name>);

// The groups fail where they should: the missing member is in exactly one group.
static_assert(hydra::BackendStorage<cpu_without_gemm_batched, double>);
static_assert(!hydra::BackendBlas<cpu_without_gemm_batched, double>);
static_assert(hydra::BackendElementwise<cpu_without_gemm_batched, double>);
static_assert(hydra::BackendLosses<cpu_without_gemm_batched, double>);
static_assert(hydra::BackendRecurrence<cpu_without_gemm_batched, double>);
static_assert(hydra::BackendBlas<cpu_without_count_correct, float>);
static_assert(!hydra::BackendLosses<cpu_without_count_correct, float>);
static_assert(!hydra::BackendElementwise<cpu_without_activation_tangent, float>);
static_assert(!hydra::BackendStorage<cpu_without_buffer, float>);
static_assert(!hydra::BackendImages<cpu_without_max_pool_tangent, double>);
static_assert(hydra::BackendReductions<cpu_without_max_pool_tangent, double>);
static_assert(hydra::BackendImages<cpu_without_gemm_batched, float>);
static_assert(!hydra::BackendRecurrence<cpu_without_hypergradient_transfer, double>);
static_assert(hydra::BackendBlas<cpu_without_hypergradient_transfer, double>);
static_assert(!hydra::Backend<cpu_without_hypergradient_transfer>);
static_assert(!hydra::BackendReductions<cpu_without_all_finite, float>);
static_assert(hydra::BackendElementwise<cpu_without_all_finite, float>);
static_assert(!hydra::BackendChannels<cpu_without_channel_combine, float>);
static_assert(hydra::BackendImages<cpu_without_channel_combine, float>);
static_assert(hydra::BackendChannels<cpu_without_max_pool_tangent, double>);
static_assert(!hydra::Backend<cpu_without_channel_combine>);
static_assert(hydra::BackendChannels<hydra::cpu, float> && hydra::BackendChannels<hydra::cpu, double>);
static_assert(!hydra::BackendDevices<cpu_without_devices>);
static_assert(!hydra::Backend<cpu_without_devices>);
static_assert(hydra::BackendDevices<hydra::cpu>);
static_assert(!hydra::BackendDevices<name_only>);

// ---- Scalar ----
static_assert(hydra::Scalar<float>);
static_assert(hydra::Scalar<double>);
static_assert(!hydra::Scalar<int>);
static_assert(!hydra::Scalar<long double>);
static_assert(!hydra::Scalar<const double>);
static_assert(!hydra::Scalar<double&>);
static_assert(!hydra::Scalar<hydra::label_type>);

TEST_CASE("the backend concepts hold at run time too") {
  CHECK(hydra::Backend<hydra::cpu>);
  CHECK(!hydra::Backend<cpu_without_gemm_batched>);
  CHECK(!hydra::Backend<name_only>);
  CHECK(hydra::Scalar<double>);
  CHECK(!hydra::Scalar<long double>);
  CHECK(std::string(hydra::cpu::name) == "cpu");
}
