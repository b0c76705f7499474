// File-backed hypergradient states (state_store.hpp over core/mapped_matrix.hpp) under injected
// faults (support/fault_injection.hpp): when the scratch file cannot be created (open fails) or
// its bytes cannot be reserved (posix_fallocate: ENOSPC, EIO, EFBIG), the state store — and so
// the tracker, at construction, before any training step — throws a one-line hydra::io_error
// naming the scratch file in the state directory and the system's reason, and leaves nothing in
// the directory. A store that succeeds leaves nothing either (its file is unlinked once mapped).

#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/state_store.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/sgd.hpp"
#include "support/fault_injection.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;
using faults::call;

using model_t = Mlp<double>;
using loss_t = SoftmaxCrossEntropy<double>;
using free_tracker = hypergradient_tracker<model_t, loss_t, HessianFree>;

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

} // namespace

TEST_CASE("a state store whose file cannot be reserved or created fails at construction, names the file, leaves nothing") {
  temp_dir dir;
  const auto states = dir / "states";  // created by the store
  const std::string scratch = "'" + states.string() + "/hydra-scratch-";
  {  // the clean case: a file-backed store, and nothing in the directory
    state_store<double, cpu> store(states, 10, 100);
    CHECK(store.file_backed());
    CHECK(fs::is_empty(states));
    const auto last = store.hypergradients();
    last.data[9 * last.stride + 99] = 1.5;  // the whole mapping is writable
    CHECK(store.hypergradients().data[9 * last.stride + 99] == 1.5);
  }
  for (const int error : {ENOSPC, EIO, EFBIG}) {
    CAPTURE(error);
    std::string message;
    {
      auto armed = faults::arm({.calls = call::posix_fallocate, .error = error});
      message = message_of<io_error>([&] { state_store<double, cpu> store(states, 10, 100); });
      CHECK(armed.hits() == 1);
    }
    // 2 × 10 rows of 100 doubles
    CHECK(contains(message, "hydra: cannot reserve 16000 bytes for the states in " + scratch));
    CHECK(ends_with(message, ".bin': " + faults::text_of(error)));
    CHECK(message.find('\n') == std::string::npos);
    CHECK(fs::is_empty(states));
  }
  for (const int error : {EACCES, ENOSPC, EMFILE}) {
    CAPTURE(error);
    std::string message;
    {
      auto armed = faults::arm({.calls = call::open, .error = error, .path_part = "hydra-scratch-"});
      message = message_of<io_error>([&] { state_store<double, cpu> store(states, 10, 100); });
      CHECK(armed.hits() == 1);
    }
    CHECK(contains(message, "hydra: cannot create the scratch file " + scratch));
    CHECK(ends_with(message, ".bin' for the states: " + faults::text_of(error)));
    CHECK(fs::is_empty(states));
  }
}

TEST_CASE("a tracker whose state directory is full fails at construction, before training") {
  temp_dir dir;
  const auto states = dir / "states";
  model_t model(4, {6}, 3, activation::tanh);
  loss_t loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = 0.9});
  const std::vector<index> tracked{0, 3, 7};
  const auto bytes = std::to_string(2 * 3 * model.parameter_count() * static_cast<index>(sizeof(double)));
  {
    free_tracker clean(model, loss, optimizer, tracked, 10, {.state_directory = states});
    CHECK(clean.file_backed());
  }
  CHECK(fs::is_empty(states));
  for (const auto calls : {call::posix_fallocate, call::open}) {
    CAPTURE(static_cast<unsigned>(calls));
    std::string message;
    {
      auto armed = faults::arm({.calls = calls, .error = ENOSPC, .path_part = "hydra-scratch-"});
      message = message_of<io_error>(
          [&] { free_tracker tracker(model, loss, optimizer, tracked, 10, {.state_directory = states}); });
      CHECK(armed.hits() == 1);
    }
    CHECK(contains(message, (calls == call::open ? "cannot create the scratch file '"
                                                 : "cannot reserve " + bytes + " bytes for the states in '") +
                                states.string() + "/hydra-scratch-"));
    CHECK(ends_with(message, faults::text_of(ENOSPC)));
    CHECK(fs::is_empty(states));
  }
}

} // namespace hydra::test
