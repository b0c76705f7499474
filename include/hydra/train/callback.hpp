#pragma once
// What the trainer tells its callbacks, and what it requires of them. A callback is any object
// with some of the hooks
//   before_update(const step_context<T, B>&)   step t, at w_t (the hypergradient engine hooks in here)
//   after_update(const step_context<T, B>&)    step t, at w_{t+1}
//   on_epoch_end(const epoch_report&)
// A hook that a callback names but that cannot be called that way (a wrong scalar type or
// backend in the context, a non-const reference, another argument) is a compile-time error with
// one sentence (check_callback_hooks), never a hook silently left uncalled.

#include <concepts>
#include <limits>
#include <span>

#include "hydra/core/types.hpp"
#include "hydra/train/batch.hpp"

namespace hydra {

/// What a callback sees at step t (0-based; the paper's step t + 1). In before_update the
/// parameters are w_t, the point where the batch gradient was taken; in after_update they are
/// w_{t+1}. All views point into backend memory and are valid only during the call.
template <Scalar T, class B>
struct step_context {
  index step;
  index epoch;
  std::span<const index> batch;        // training-sample indices of this step's batch
  T learning_rate;                     // η applied at this step
  vector_view<const T> parameters;
  matrix_view<const T> features;       // batch × input_size
  batch_targets<T> targets;
  T loss;                              // mean batch loss at the pre-update parameters
  vector_view<const T> gradient;       // mean batch gradient there, without weight decay
};

/// One line of the training history; what on_epoch_end sees.
struct epoch_report {
  index epoch = 0;                 // 0-based
  index steps = 0;                 // steps taken in this epoch
  double training_loss = 0;        // mean of the epoch's batch losses (each at its pre-update point)
  double validation_loss = std::numeric_limits<double>::quiet_NaN();
  double validation_accuracy = std::numeric_limits<double>::quiet_NaN();
  double learning_rate = 0;        // η of the epoch's last step
  double seconds = 0;
};

namespace detail::callback {
// Whether C names a hook: a member of that name whose address can be taken (a single,
// non-template member function). A template or overloaded hook is not detected here; it is
// called when it can be, like any other.
template <class C>
concept names_before_update = requires { &C::before_update; };
template <class C>
concept names_after_update = requires { &C::after_update; };
template <class C>
concept names_on_epoch_end = requires { &C::on_epoch_end; };

template <class C, class Ctx>
concept calls_before_update = requires(C& c, const Ctx& ctx) { c.before_update(ctx); };
template <class C, class Ctx>
concept calls_after_update = requires(C& c, const Ctx& ctx) { c.after_update(ctx); };
template <class C>
concept calls_on_epoch_end = requires(C& c, const epoch_report& r) { c.on_epoch_end(r); };
} // namespace detail::callback

/// A callback for a trainer of scalar type T on backend B: every hook it names can be called
/// as the trainer calls it.
template <class C, class T, class B>
concept Callback =
    (!detail::callback::names_before_update<C> || detail::callback::calls_before_update<C, step_context<T, B>>) &&
    (!detail::callback::names_after_update<C> || detail::callback::calls_after_update<C, step_context<T, B>>) &&
    (!detail::callback::names_on_epoch_end<C> || detail::callback::calls_on_epoch_end<C>);

/// `static_assert(hydra::check_callback_hooks<C, T, B>())` (fit and resume do): one sentence per
/// hook that would never be called.
template <class C, class T, class B>
consteval bool check_callback_hooks() {
  using namespace detail::callback;
  static_assert(!names_before_update<C> || calls_before_update<C, step_context<T, B>>,
                "hydra: a callback's before_update cannot be called as before_update(const hydra::step_context<T, "
                "B>&) with this trainer's scalar type T and backend B, so it would never be called; see docs/train.md, "
                "section 'Callbacks'.");
  static_assert(!names_after_update<C> || calls_after_update<C, step_context<T, B>>,
                "hydra: a callback's after_update cannot be called as after_update(const hydra::step_context<T, B>&) "
                "with this trainer's scalar type T and backend B, so it would never be called; see docs/train.md, "
                "section 'Callbacks'.");
  static_assert(!names_on_epoch_end<C> || calls_on_epoch_end<C>,
                "hydra: a callback's on_epoch_end cannot be called as on_epoch_end(const hydra::epoch_report&), so it "
                "would never be called; see docs/train.md, section 'Callbacks'.");
  return true;
}

/// Calls the hooks a callback has (fit and resume have checked that those it names are callable).
template <class C, class Ctx>
void call_before_update(C& c, const Ctx& ctx) {
  if constexpr (detail::callback::calls_before_update<C, Ctx>) c.before_update(ctx);
}
template <class C, class Ctx>
void call_after_update(C& c, const Ctx& ctx) {
  if constexpr (detail::callback::calls_after_update<C, Ctx>) c.after_update(ctx);
}
template <class C>
void call_on_epoch_end(C& c, const epoch_report& r) {
  if constexpr (detail::callback::calls_on_epoch_end<C>) c.on_epoch_end(r);
}

} // namespace hydra
