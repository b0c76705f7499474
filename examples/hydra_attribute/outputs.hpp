#pragma once
// hydra-attribute's outputs, all or nothing: the folder of --out is checked (created, written
// into) before training, every result file is written into a staging folder inside it, checked
// finite, and only when all of them are complete are they renamed into place, so that an error, a
// full disk or a diverged result leaves the files of an earlier run in --out as they were.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include <hydra/hydra.hpp>

#include "options.hpp"

namespace hydra::cli {

/// A row-major host copy of m (device memory is not readable on the host).
template <class B, class T>
std::vector<T> host_copy(hydra::matrix_view<const T> m) {
  std::vector<T> host(static_cast<std::size_t>(m.rows * m.cols));
  if (m.stride == m.cols) {
    B::copy_to_host(m.data, m.rows * m.cols, host.data());
  } else {
    for (index r = 0; r < m.rows; ++r) B::copy_to_host(m.row(r), m.cols, host.data() + r * m.cols);
  }
  return host;
}

/// Refuses a non-finite result before it is written: `name`'s entry (row, col) is named with what
/// the row and column stand for ("tracked sample 7, test point 3").
template <class T>
void check_finite_result(const std::vector<T>& values, index cols, const std::string& name,
                         const std::vector<index>& row_samples, const char* col_meaning) {
  const auto bad = std::find_if(values.begin(), values.end(), [](T v) { return !std::isfinite(v); });
  if (bad == values.end()) return;
  const auto at = static_cast<index>(bad - values.begin());
  const index row = cols > 0 ? at / cols : 0, col = cols > 0 ? at % cols : at;
  const std::string sample = row < static_cast<index>(row_samples.size())
                                 ? "tracked sample " + std::to_string(row_samples[static_cast<std::size_t>(row)])
                                 : "row " + std::to_string(row);
  throw numerical_error(fmt::format("{} is {} at {}, {} {}: the run went numerically wrong without a non-finite "
                                    "loss; nothing was written to --out (lower --lr or --max-loss, or use "
                                    "--precision float64)",
                                    name, static_cast<double>(*bad), sample, col_meaning, col));
}

/// The --out folder of one run. Constructed after every input is read and checked, before
/// training: it creates the folder and a staging folder inside it (".hydra-attribute.partial-PID"),
/// which proves the folder writable and holds every result until commit() renames them into
/// place. A run that fails leaves --out as it was: the destructor removes the staging folder, and
/// --out too when this run created it. One killed outright leaves its staging folder, which the
/// next run into the same --out removes.
class output_folder {
public:
  /// The result files hydra-attribute writes; commit() removes those of an earlier run that this
  /// run does not write (a hypergradients.npy beside another method's contributions would lie).
  static constexpr const char* result_files[] = {"weights.npy", "hypergradients.npy", "contributions.npy",
                                                 "tracked.npy", "buffers.npy"};

  explicit output_folder(std::filesystem::path out) : out_(std::move(out)) {
    std::error_code ec;
    created_ = !std::filesystem::exists(out_, ec);
    std::filesystem::create_directories(out_, ec);
    if (ec || !std::filesystem::is_directory(out_))
      throw io_error("--out " + out_.string() + ": cannot create the folder (" +
                     (ec ? ec.message() : std::string("a file of that name exists")) + ")");
    remove_abandoned_staging();
    staging_ = out_ / (std::string(staging_prefix) + std::to_string(::getpid()));
    std::filesystem::remove_all(staging_, ec);
    if (!std::filesystem::create_directory(staging_, ec) || ec)
      throw io_error("--out " + out_.string() + ": cannot write into the folder (" + ec.message() + ")");
  }
  output_folder(const output_folder&) = delete;
  output_folder& operator=(const output_folder&) = delete;
  ~output_folder() {
    std::error_code ignored;  // a destructor reports nothing; the run's own error is the one that matters
    if (staging_.empty()) return;  // committed
    std::filesystem::remove_all(staging_, ignored);
    if (created_) std::filesystem::remove(out_, ignored);  // only if empty: removes nothing of anyone's
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return out_; }

  /// Writes `values` of `shape` as staged result file `name` (one of result_files).
  template <class V>
  void stage(const std::string& name, const std::vector<V>& values, std::vector<index> shape) {
    save_npy(staging_ / name, values, std::move(shape));
    staged_.push_back(name);
  }

  /// Makes the staged files the results in --out: the earlier run's result files that this run
  /// does not replace are removed, then every staged file is renamed into place (renames in one
  /// folder: no copy, nothing half-written).
  void commit() {
    // What could make a rename fail is checked before the first one: a result's name taken by
    // something that is not a file.
    for (const auto& name : staged_) {
      std::error_code ec;
      const auto status = std::filesystem::symlink_status(out_ / name, ec);
      if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
        throw io_error("--out " + out_.string() + ": " + (out_ / name).string() +
                       " exists and is not a file; nothing was written (move it away and run again)");
    }
    for (const char* name : result_files)
      if (std::find(staged_.begin(), staged_.end(), name) == staged_.end()) std::filesystem::remove(out_ / name);
    for (const auto& name : staged_) {
      std::error_code ec;
      std::filesystem::rename(staging_ / name, out_ / name, ec);
      if (ec) throw io_error("--out " + out_.string() + ": cannot move " + name + " into place (" + ec.message() + ")");
    }
    std::filesystem::remove_all(staging_);
    staging_.clear();
  }

private:
  static constexpr const char* staging_prefix = ".hydra-attribute.partial-";

  /// Staging folders of runs whose process no longer exists (killed before they could clean up).
  void remove_abandoned_staging() const {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(out_, ec)) {
      const auto name = entry.path().filename().string();
      if (name.rfind(staging_prefix, 0) != 0) continue;
      char* end = nullptr;
      const long pid = std::strtol(name.c_str() + std::strlen(staging_prefix), &end, 10);
      const bool dead = pid > 0 && *end == '\0' && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
      std::error_code ignored;
      if (dead) std::filesystem::remove_all(entry.path(), ignored);
    }
  }

  std::filesystem::path out_, staging_;
  bool created_ = false;
  std::vector<std::string> staged_;
};

} // namespace hydra::cli
