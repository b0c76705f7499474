// hydra::save_npy under injected faults (support/fault_injection.hpp): ENOSPC and EIO at every
// write(), a failed open, fsync, close or rename, a short write at every write(). A failure is a
// one-line hydra::io_error naming the file and the system's reason, and the file already at the
// path (if any) is byte for byte what it was, with no .tmp left beside it; a short write is
// continued and gives the same file as a clean save. A failed directory fsync after the rename
// leaves the new file in place and says so.

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include "hydra/data/npy.hpp"
#include "support/fault_injection.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;
using faults::call;
using faults::effect;

using faults::bytes_of;
using faults::tmp_of;

/// 300 × 500 float64: 1.2 MB of payload after the header.
std::vector<double> values(double first) {
  std::vector<double> v(300 * 500);
  std::iota(v.begin(), v.end(), first);
  return v;
}

void save(const fs::path& file, double first) { save_npy(file, values(first), {300, 500}); }

} // namespace

TEST_CASE("save_npy: a failed write, open, fsync, close or rename leaves the previous file untouched") {
  temp_dir dir;
  const auto file = dir / "contributions.npy";
  long writes = 0;
  {
    auto counter = faults::count(faults::writes);
    save(file, 0);
    writes = counter.calls();
  }
  CHECK(writes == 2);  // the header, the payload
  save(file, 1);
  const auto previous = bytes_of(file);
  const std::string tmp = "'" + tmp_of(file).string() + "'";
  struct case_ {
    faults::fault fault;
    std::string what;
  };
  std::vector<case_> cases;
  for (const int error : {ENOSPC, EIO})
    for (long k = 1; k <= writes; ++k) cases.push_back({{.calls = faults::writes, .nth = k, .error = error}, "cannot write " + tmp});
  cases.push_back({{.calls = faults::writes, .error = ENOSPC, .repeat = true}, "cannot write " + tmp});
  cases.push_back({{.calls = call::open, .error = ENOSPC, .path_part = ".npy.tmp"}, "cannot create " + tmp});
  cases.push_back({{.calls = call::open, .error = EACCES, .path_part = ".npy.tmp"}, "cannot create " + tmp});
  cases.push_back({{.calls = call::fsync, .nth = 1, .error = EIO}, "cannot fsync " + tmp});
  cases.push_back({{.calls = call::close, .nth = 1, .error = EIO}, "cannot close " + tmp});
  cases.push_back({{.calls = call::close, .nth = 1, .error = ENOSPC}, "cannot close " + tmp});
  cases.push_back({{.calls = call::rename, .error = EIO}, "cannot rename " + tmp + " to '" + file.string() + "'"});
  for (const auto& c : cases) {
    CAPTURE(c.what);
    CAPTURE(c.fault.nth);
    CAPTURE(c.fault.error);
    std::string message;
    {
      auto armed = faults::arm(c.fault);
      message = message_of<io_error>([&] { save(file, 2); });
      CHECK(armed.hits() >= 1);
    }
    CHECK(message == "hydra::save_npy: " + c.what + ": " + faults::text_of(c.fault.error));
    CHECK(bytes_of(file) == previous);
    CHECK(!fs::exists(tmp_of(file)));
    CHECK(load_npy_features<double>(file).data == values(1));
  }
  // No file before: none after.
  const auto fresh = dir / "fresh.npy";
  {
    auto armed = faults::arm({.calls = faults::writes, .nth = 2, .error = ENOSPC});
    CHECK(contains(message_of<io_error>([&] { save(fresh, 2); }), "No space left on device"));
  }
  CHECK(!fs::exists(fresh));
  CHECK(!fs::exists(tmp_of(fresh)));
}

TEST_CASE("save_npy: short writes are continued and give the file of a clean save") {
  temp_dir dir;
  const auto clean = dir / "clean.npy", file = dir / "short.npy";
  save(clean, 3);
  const auto expected = bytes_of(clean);
  for (const faults::fault& fault : {faults::fault{.calls = faults::writes, .nth = 1, .what = effect::short_write},
                                     faults::fault{.calls = faults::writes, .nth = 2, .what = effect::short_write},
                                     faults::fault{.calls = faults::writes, .what = effect::short_write, .repeat = true,
                                                   .short_bytes = 4093}}) {
    CAPTURE(fault.nth);
    CAPTURE(fault.repeat);
    {
      auto armed = faults::arm(fault);
      save(file, 3);
      CHECK(armed.hits() >= 1);
    }
    CHECK(bytes_of(file) == expected);
    CHECK(!fs::exists(tmp_of(file)));
  }
}

TEST_CASE("save_npy: a failed directory fsync after the rename names the directory; the new file is in place") {
  temp_dir dir;
  const auto file = dir / "weights.npy";
  save(file, 1);
  std::string message;
  {
    auto armed = faults::arm({.calls = call::fsync, .nth = 2, .error = EIO});
    message = message_of<io_error>([&] { save(file, 2); });
    CHECK(armed.hits() == 1);
  }
  CHECK(message == "hydra::save_npy: cannot fsync the directory '" + dir.path().string() + "' after renaming '" +
                       tmp_of(file).string() + "' to '" + file.string() + "': " + faults::text_of(EIO));
  CHECK(load_npy_features<double>(file).data == values(2));
  CHECK(!fs::exists(tmp_of(file)));
}

} // namespace hydra::test
