#pragma once
// What the hydra-attribute tests share: running the binary, the one-line error every refusal must
// be, and a small data set in a scratch folder.

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hydra/data/npy.hpp"
#include "support/finite_difference.hpp"

#ifndef HYDRA_ATTRIBUTE_PATH
#error "HYDRA_ATTRIBUTE_PATH must name the hydra-attribute binary"
#endif

namespace hydra::test {
namespace fs = std::filesystem;

struct run_result {
  int status;
  std::string err;
  std::string out;
};

inline std::string text_of(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The binary under test: the build's own, or $HYDRA_ATTRIBUTE where the test binary was moved to
/// another machine with it (scripts/gpu-bundle.sh).
inline std::string attribute_binary() {
  const char* moved = std::getenv("HYDRA_ATTRIBUTE");
  return moved != nullptr && *moved != '\0' ? moved : HYDRA_ATTRIBUTE_PATH;
}

inline run_result run_tool(const fs::path& dir, const std::string& args) {
  const auto err = dir / "stderr.txt", out = dir / "stdout.txt";
  const std::string command = attribute_binary() + " " + args + " > " + out.string() + " 2> " + err.string();
  const int raw = std::system(command.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, text_of(err), text_of(out)};
}

/// run_tool for a run that must succeed: the test stops here, showing the arguments and stderr,
/// when it does not.
inline run_result run_ok(const fs::path& dir, const std::string& args) {
  const auto r = run_tool(dir, args);
  INFO(args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  return r;
}

/// stderr's last line: a failed run's one error line (a warning may come before it).
inline std::string last_line(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  const auto cut = trimmed.rfind('\n');
  return cut == std::string::npos ? trimmed : trimmed.substr(cut + 1);
}

/// A refusal as docs/attribution.md promises it: exit code `code` (its table, "Exit codes"), one
/// error line with the one prefix, naming flags and files rather than library functions or fields
/// (no "::" in it), and containing `needle`.
inline void check_refusal(const run_result& r, int code, const std::string& needle) {
  CHECK(r.status == code);
  const auto line = last_line(r.err);
  CHECK_MESSAGE(line.rfind("hydra-attribute: error: ", 0) == 0, r.err);
  CHECK_MESSAGE(line.find("::") == std::string::npos, r.err);
  CHECK_MESSAGE(line.find(needle) != std::string::npos, r.err);
  CHECK(r.err.find("hydra-attribute: error:") == r.err.rfind("hydra-attribute: error:"));  // one error
}

struct fixture {
  fs::path dir = fs::temp_directory_path() / ("hydra_attribute_cli_" + std::to_string(::getpid()));
  index N = 12, M = 4, D = 3, C = 3;
  std::vector<double> x, xt;
  std::vector<std::int64_t> y, yt;
  fixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    x = normal_vector(static_cast<std::size_t>(N * D), 1);
    xt = normal_vector(static_cast<std::size_t>(M * D), 2);
    for (index i = 0; i < N; ++i) y.push_back((i * 5 + 1) % C);
    for (index j = 0; j < M; ++j) yt.push_back(j % C);
    save_npy(dir / "x.npy", x, {N, D});
    save_npy(dir / "y.npy", y, {N});
    save_npy(dir / "xt.npy", xt, {M, D});
    save_npy(dir / "yt.npy", yt, {M});
  }
  ~fixture() { fs::remove_all(dir); }
  [[nodiscard]] std::string data_args() const {
    return "--train-x " + (dir / "x.npy").string() + " --train-y " + (dir / "y.npy").string() + " --test-x " +
           (dir / "xt.npy").string() + " --test-y " + (dir / "yt.npy").string();
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir / name).string(); }
};

} // namespace hydra::test
