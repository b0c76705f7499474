// Checks hydra::paper::load_mnist_5k (mnist.hpp) on small gzip CSV files it writes itself: values
// and labels read back exactly, the class-by-class split, and a refusal naming the line and field
// for every kind of malformed input. Then, when scripts/fetch-mnist-5k.sh has fetched the real
// file into data/mnist-5k/, loads it and checks 5,000 digits with all 10 labels in every set.
// Prints each failed check; exit code 0 when all pass, 1 otherwise.

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "mnist.hpp"

namespace {

namespace fs = std::filesystem;
using hydra::index;
using hydra::paper::load_mnist_5k;

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    fmt::print("FAIL: {}\n", what);
  }
}

/// Runs f; passes when it throws exactly E with every one of `parts` in its message.
template <class E>
void expect_refusal(const std::string& what, const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    check(false, what + ": no exception");
  } catch (const E& e) {
    const std::string message = e.what();
    for (const auto& part : parts)
      check(message.find(part) != std::string::npos, what + ": \"" + part + "\" not in \"" + message + "\"");
  } catch (const std::exception& e) {
    check(false, what + ": wrong exception type, message \"" + std::string(e.what()) + "\"");
  }
}

void write_gz(const fs::path& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path.string());
  const int written = gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  if (written != static_cast<int>(text.size())) throw std::runtime_error("cannot write " + path.string());
}

int pixel_of(int row, int p) { return row == 0 && p == 0 ? 255 : (row * 7 + p * 13) % 256; }

/// `rows` lines sorted by label like the real file: row r has label r / (rows / 10).
std::string csv_text(int rows) {
  std::string text;
  for (int r = 0; r < rows; ++r) {
    for (int p = 0; p < 784; ++p) text += std::to_string(pixel_of(r, p)) + ",";
    text += std::to_string(r / (rows / 10)) + "\n";
  }
  return text;
}

/// csv_text(30) with line `line` (1-based) replaced.
std::string with_line(int line, const std::string& replacement) {
  const auto text = csv_text(30);
  std::size_t begin = 0;
  for (int l = 1; l < line; ++l) begin = text.find('\n', begin) + 1;
  const auto end = text.find('\n', begin);
  return text.substr(0, begin) + replacement + text.substr(end);
}

std::string line_of(int row, int pixel_index = -1, const std::string& pixel_value = "", const std::string& label = "") {
  std::string s;
  for (int p = 0; p < 784; ++p) s += (p == pixel_index ? pixel_value : std::to_string(pixel_of(row, p))) + ",";
  return s + (label.empty() ? std::to_string(row / 3) : label);
}

template <class T>
void check_small(const fs::path& dir) {
  const auto name = std::string(sizeof(T) == 4 ? "float" : "double");
  const auto file = dir / "sorted.csv.gz";
  write_gz(file, csv_text(30));  // 3 digits per class, sorted by label: row = 3 * class + rank
  const auto data = load_mnist_5k<T>(file, 12, 10, 5);
  check(data.train.size() == 12 && data.validation.size() == 10 && data.test.size() == 5, name + ": set sizes");
  for (const auto* set : {&data.train, &data.validation, &data.test}) {
    const auto shape = set->sample_shape();
    check(shape.size() == 3 && shape[0] == 1 && shape[1] == 28 && shape[2] == 28, name + ": shape {1, 28, 28}");
    check(set->num_classes() == 10, name + ": 10 classes");
  }
  // The order is class by class in turn: position k is the (k / 10)-th digit of class k % 10.
  const auto verify = [&](const hydra::dataset<T>& set, index first, const std::string& what) {
    for (index k = 0; k < set.size(); ++k) {
      const index position = first + k, label = position % 10, rank = position / 10;
      const int row = static_cast<int>(3 * label + rank);
      check(set.label(k) == label,
            fmt::format("{}: {} sample {} has label {}, not {}", name, what, k, set.label(k), label));
      const auto x = set.sample(k);
      bool same = true;
      for (int p = 0; p < 784; ++p)
        same = same && x[static_cast<std::size_t>(p)] == static_cast<T>(pixel_of(row, p)) / T(255);
      check(same, fmt::format("{}: {} sample {} is not file row {} scaled by 1/255", name, what, k, row));
    }
  };
  verify(data.train, 0, "training");
  verify(data.validation, 12, "validation");
  verify(data.test, 22, "test");
  check(data.train.sample(0)[0] == T(1), name + ": pixel 255 reads back as exactly 1");
  check(data.provenance.find("training = the first 12 of that order (per class, its digits 0: [0, 2), 1: [0, 2), "
                             "2: [0, 1), ") != std::string::npos,
        name + ": provenance names the training digits: " + data.provenance);
  check(data.provenance.find("test = the next 5 (per class, its digits 0: none, 1: none, 2: [2, 3), ") !=
                std::string::npos &&
            data.provenance.find("6: [2, 3), 7: none, 8: none, 9: none)") != std::string::npos,
        name + ": provenance names the test digits: " + data.provenance);
  const auto even = load_mnist_5k<T>(file, 10, 10, 10);
  check(even.provenance.find("validation = the next 10 (digits [1, 2) of each class)") != std::string::npos,
        name + ": provenance of an even split: " + even.provenance);
  check(even.train.label(9) == 9 && even.test.label(0) == 0, name + ": even split labels");
}

void check_refusals(const fs::path& dir) {
  using hydra::format_error;
  const auto refuse = [&](const std::string& what, const std::string& text, const std::vector<std::string>& parts) {
    const auto file = dir / (what + ".csv.gz");
    write_gz(file, text);
    auto all = parts;
    all.push_back(file.string());
    expect_refusal<format_error>(what, [&] { (void)load_mnist_5k<float>(file, 10, 10, 10); }, all);
  };
  auto short_line = line_of(1);
  short_line.erase(short_line.rfind(','));  // 784 fields
  refuse("784 fields", with_line(2, short_line), {"line 2 has 784 fields, not 785"});
  refuse("786 fields", with_line(4, line_of(3) + ",0"), {"line 4 has 786 fields"});
  refuse("pixel 256", with_line(3, line_of(2, 4, "256")), {"line 3 field 5 (a pixel) is 256, outside 0..255"});
  refuse("label 10", with_line(2, line_of(1, -1, "", "10")), {"line 2 field 785 (the label) is 10, outside 0..9"});
  refuse("text", with_line(5, line_of(4, 100, "abc")), {"line 5 field 101 (a pixel) is \"abc\", not an integer"});
  refuse("negative", with_line(5, line_of(4, 0, "-1")), {"line 5 field 1 (a pixel) is \"-1\", not an integer"});
  refuse("fraction", with_line(6, line_of(5, -1, "", "1.0")), {"line 6 field 785 (the label) is \"1.0\""});
  refuse("empty field", with_line(7, line_of(6, 783, "")), {"line 7 field 784 (a pixel) is \"\", not an integer"});
  refuse("blank line", with_line(8, ""), {"line 8 is empty"});
  refuse("no digits", "", {"holds no digits"});
  // A gzip stream cut short: the first 600 bytes of a valid file.
  {
    const auto whole = dir / "whole.csv.gz", cut = dir / "truncated.csv.gz";
    write_gz(whole, csv_text(30));
    fs::copy_file(whole, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, 600);
    expect_refusal<format_error>("truncated gzip", [&] { (void)load_mnist_5k<float>(cut, 1, 1, 1); },
                                 {"truncated or corrupt at line", cut.string()});
  }
  expect_refusal<hydra::io_error>("missing file", [&] { (void)load_mnist_5k<float>(dir / "absent.csv.gz"); },
                                  {"absent.csv.gz", "is missing: run scripts/fetch-mnist-5k.sh"});
  const auto good = dir / "good.csv.gz";
  write_gz(good, csv_text(30));
  expect_refusal<hydra::invalid_argument>("sizes past the rows", [&] { (void)load_mnist_5k<float>(good, 20, 6, 5); },
                                          {"--train-size + --validation-size + --test-size = 20 + 6 + 5 exceeds the 30 "
                                           "digits in"});
  expect_refusal<hydra::invalid_argument>("test size 0", [&] { (void)load_mnist_5k<float>(good, 20, 5, 0); },
                                          {"--test-size must be at least 1, got 0"});
  // Accepted variants: CRLF line ends, no newline after the last line, trailing blank lines.
  auto crlf = csv_text(30);
  for (std::size_t at = crlf.find('\n'); at != std::string::npos; at = crlf.find('\n', at + 2)) crlf.insert(at, "\r");
  for (const auto& [what, text] : std::vector<std::pair<std::string, std::string>>{
           {"crlf", crlf}, {"no final newline", csv_text(30).substr(0, csv_text(30).size() - 1)},
           {"trailing blank lines", csv_text(30) + "\n\n"}}) {
    const auto file = dir / "variant.csv.gz";
    write_gz(file, text);
    try {
      const auto data = load_mnist_5k<double>(file, 10, 10, 10);
      check(data.test.label(9) == 9 && data.test.sample(9)[783] == pixel_of(29, 783) / 255.0, what + ": read back");
    } catch (const std::exception& e) {
      check(false, what + ": refused: " + e.what());
    }
  }
}

void check_real() {
  const fs::path file = fs::path(HYDRA_SOURCE_DIR) / hydra::paper::mnist_5k_file;
  if (!fs::exists(file)) {
    fmt::print("skipped: the real file {} is absent (run scripts/fetch-mnist-5k.sh to check it too)\n", file.string());
    return;
  }
  const auto data = load_mnist_5k<float>(file, 3000, 1000, 1000);
  check(data.train.size() + data.validation.size() + data.test.size() == 5000, "real: 5,000 digits in all");
  expect_refusal<hydra::invalid_argument>("real: 5,001 asked", [&] { (void)load_mnist_5k<float>(file, 3001); },
                                          {"exceeds the 5000 digits"});
  const auto count = [](const hydra::dataset<float>& set) {
    std::vector<index> n(10, 0);
    for (index i = 0; i < set.size(); ++i) ++n[static_cast<std::size_t>(set.label(i))];
    return n;
  };
  const std::vector<std::pair<const char*, const hydra::dataset<float>*>> sets{
      {"training", &data.train}, {"validation", &data.validation}, {"test", &data.test}};
  for (const auto& [what, set] : sets) {
    const auto n = count(*set);
    fmt::print("real {} set: {} digits, per label 0..9:", what, set->size());
    for (auto c : n) fmt::print(" {}", c);
    fmt::print("\n");
    for (std::size_t c = 0; c < 10; ++c)
      check(n[c] == set->size() / 10, fmt::format("real {}: label {} occurs {} times", what, c, n[c]));
    float lo = 1, hi = 0;
    for (float v : set->features()) lo = std::min(lo, v), hi = std::max(hi, v);
    check(lo == 0 && hi == 1, fmt::format("real {}: pixels span [{}, {}], not [0, 1]", what, lo, hi));
  }
  fmt::print("real file: {}\n", data.provenance);
}

} // namespace

int main() {
  const auto dir = fs::temp_directory_path() / ("hydra-mnist-5k-test-" + std::to_string(::getpid()));
  try {
    fs::create_directories(dir);
    check_small<float>(dir);
    check_small<double>(dir);
    check_refusals(dir);
    check_real();
  } catch (const std::exception& e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fmt::print("{}\n", failures == 0 ? "all checks passed" : fmt::format("{} checks failed", failures));
  return failures == 0 ? 0 : 1;
}
