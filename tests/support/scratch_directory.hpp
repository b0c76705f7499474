#pragma once
// A fresh directory under the system's temporary directory for one test, removed with everything
// in it when the test ends (also when it fails).

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace hydra::test {

struct scratch_directory {
  std::filesystem::path path;
  explicit scratch_directory(const std::string& tag = "test") {
    static int counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() / ("hydra-" + tag + "-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(stamp) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~scratch_directory() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;
  [[nodiscard]] std::filesystem::path operator/(const char* name) const { return path / name; }
};

} // namespace hydra::test
