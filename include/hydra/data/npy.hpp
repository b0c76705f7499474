#pragma once
// NumPy .npy files: reading features and labels, writing results (weights, contributions).
// The header is parsed and checked completely (magic, version, dictionary, dtype, and the file
// size against the shape) before anything is allocated, so every malformed file gets an error
// naming it. The payload is then read directly: after those checks it is a plain array, and
// xtensor's xt::load_npy would require one key order and quoting style, and would copy it twice.
// xnpy serves instead as the independent reader and writer in the tests. Writing produces format
// version 1.0 (2.0 for huge headers) with numpy's 64-byte alignment.

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <ranges>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/io/atomic_file.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/detail/checked.hpp"

namespace hydra {

static_assert(std::endian::native == std::endian::little, "hydra's .npy support assumes a little-endian host");

/// What a .npy header says.
struct npy_header {
  std::string descr;           ///< dtype string, e.g. "<f4", "<i8", "|u1"
  bool fortran_order = false;
  std::vector<index> shape;    ///< () for a scalar
  index word_size = 0;         ///< bytes per element
  index data_offset = 0;       ///< bytes before the payload
};

/// A shape and its row-major values.
template <class U>
struct npy_array {
  std::vector<index> shape;
  std::vector<U> data;
};

namespace detail {

inline constexpr char npy_magic[] = "\x93NUMPY";

// The dtypes hydra reads and writes, and their sizes.
inline index npy_word_size(const std::string& descr) {
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "<f8" || descr == "<i8") return 8;
  if (descr == "|u1") return 1;
  return 0;
}

template <class U>
inline constexpr const char* npy_descr_of = nullptr;
template <> inline constexpr const char* npy_descr_of<float> = "<f4";
template <> inline constexpr const char* npy_descr_of<double> = "<f8";
template <> inline constexpr const char* npy_descr_of<std::int32_t> = "<i4";
template <> inline constexpr const char* npy_descr_of<std::int64_t> = "<i8";
template <> inline constexpr const char* npy_descr_of<std::uint8_t> = "|u1";

// A parser for the one Python literal a header holds: {'descr': '<f4', 'fortran_order': False,
// 'shape': (3, 4), }. Keys may come in any order; unknown keys are errors, as in numpy.
class npy_header_parser {
public:
  npy_header_parser(const std::string& text, const std::filesystem::path& path) : s_(text), path_(path) {}

  void parse(npy_header& h) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') break;
      const auto key = string_literal("key");
      expect(':');
      if (key == "descr") {
        h.descr = string_literal("descr");
        seen_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        seen_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        seen_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') ++pos_;
      else if (peek() != '}') fail("expected ',' or '}' after the value of '" + key + "'");
    }
    ++pos_;
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the dictionary");
    if (!seen_descr) fail("missing key 'descr'");
    if (!seen_order) fail("missing key 'fortran_order'");
    if (!seen_shape) fail("missing key 'shape'");
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    throw format_error("hydra: .npy file " + quoted(path_) + " has a corrupt header: " + what);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
    ++pos_;
  }
  std::string string_literal(const char* what) {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail(std::string("expected a string for the ") + what);
    const auto end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail(std::string("unterminated string for the ") + what);
    auto out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("fortran_order is neither True nor False");
  }
  std::vector<index> tuple() {
    std::vector<index> dims;
    expect('(');
    for (;;) {
      skip_ws();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') fail("shape holds something other than a non-negative integer");
      index v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (!checked_mul(v, 10, v) || v > std::numeric_limits<index>::max() - (peek() - '0')) fail("shape overflows");
        v += peek() - '0';
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long
      dims.push_back(v);
      skip_ws();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++pos_;
    return dims;
  }

  const std::string& s_;
  const std::filesystem::path& path_;
  std::size_t pos_ = 0;
};

inline std::uintmax_t npy_file_size(const std::filesystem::path& path) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  const auto size = regular ? std::filesystem::file_size(path, ec) : 0;
  if (!regular || ec) throw io_error("hydra: cannot open .npy file " + quoted(path));
  return size;
}

// The payload as U (the dtype the header named). read_npy_header has checked that the file
// holds exactly this many bytes, so the allocation is bounded by the real file size.
template <class U>
std::vector<U> npy_payload(const std::filesystem::path& path, const npy_header& h) {
  index count = 0;
  static_cast<void>(checked_product(h.shape, count));  // checked by read_npy_header
  std::vector<U> v(static_cast<std::size_t>(count));
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(h.data_offset));
  if (!in || !in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(U)))) {
    throw io_error("hydra: reading the payload of .npy file " + quoted(path) + " failed");
  }
  return v;
}

} // namespace detail

/// Parses and checks the header of a .npy file: magic, version (1.0 or 2.0), the header
/// dictionary, and that the file holds exactly data_offset + prod(shape) * word_size bytes.
/// Throws io_error if it cannot be opened, format_error naming the file and field otherwise
/// (including an unsupported dtype: hydra reads <f4, <f8, <i4, <i8 and |u1).
[[nodiscard]] inline npy_header read_npy_header(const std::filesystem::path& path) {
  const auto file_size = detail::npy_file_size(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("hydra: cannot open .npy file " + detail::quoted(path));
  const auto where = "hydra: .npy file " + detail::quoted(path);

  char pre[8] = {};
  if (file_size < 10 || !in.read(pre, 8)) throw format_error(where + " is truncated in the header");
  if (!std::equal(pre, pre + 6, detail::npy_magic)) throw format_error(where + " has a bad magic string");
  const int major = static_cast<unsigned char>(pre[6]), minor = static_cast<unsigned char>(pre[7]);
  if ((major != 1 && major != 2) || minor != 0) {
    throw format_error(where + " has format version " + std::to_string(major) + "." + std::to_string(minor) +
                       " (supported: 1.0, 2.0)");
  }
  unsigned char len[4] = {};
  const int len_bytes = major == 1 ? 2 : 4;
  if (!in.read(reinterpret_cast<char*>(len), len_bytes)) throw format_error(where + " is truncated in the header length");
  std::uintmax_t header_len = 0;
  for (int i = len_bytes - 1; i >= 0; --i) header_len = (header_len << 8) | len[i];
  const std::uintmax_t preamble = 8 + static_cast<std::uintmax_t>(len_bytes);
  if (header_len > file_size - preamble) {
    throw format_error(where + " is truncated in the header: its length field says " + std::to_string(header_len) +
                       " bytes, the file has " + std::to_string(file_size - preamble) + " left");
  }
  std::string text(static_cast<std::size_t>(header_len), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_len))) throw format_error(where + " could not read the header");

  npy_header h;
  detail::npy_header_parser(text, path).parse(h);
  h.word_size = detail::npy_word_size(h.descr);
  if (h.word_size == 0) {
    throw format_error(where + " has the unsupported dtype '" + h.descr + "' (supported: <f4, <f8, <i4, <i8, |u1)");
  }
  if (h.fortran_order && h.shape.size() > 1) {
    throw format_error(where + " is in Fortran order (fortran_order: True); save it C-contiguous");
  }
  h.data_offset = static_cast<index>(preamble + header_len);
  index count = 0, bytes = 0;
  if (!detail::checked_product(h.shape, count) || !detail::checked_mul(count, h.word_size, bytes)) {
    throw format_error(where + " has a shape " + detail::shape_string(h.shape) + " that overflows");
  }
  const auto payload = file_size - static_cast<std::uintmax_t>(h.data_offset);
  if (payload < static_cast<std::uintmax_t>(bytes)) {
    throw format_error(where + " is truncated in the payload: shape " + detail::shape_string(h.shape) + " of " +
                       h.descr + " needs " + std::to_string(bytes) + " bytes, got " + std::to_string(payload));
  }
  if (payload > static_cast<std::uintmax_t>(bytes)) {
    throw format_error(where + " has " + std::to_string(payload - static_cast<std::uintmax_t>(bytes)) +
                       " trailing bytes after the payload");
  }
  return h;
}

/// A float32 or float64 array converted to T; shape as stored (at least one dimension).
template <Scalar T>
[[nodiscard]] npy_array<T> load_npy_features(const std::filesystem::path& path) {
  const auto h = read_npy_header(path);
  if (h.shape.empty()) throw format_error("hydra: .npy file " + detail::quoted(path) + " holds a scalar, not features");
  npy_array<T> out{h.shape, {}};
  auto take = [&]<class U>(std::vector<U>&& v) {
    if constexpr (std::is_same_v<U, T>) out.data = std::move(v);
    else out.data.assign(v.begin(), v.end());
  };
  if (h.descr == "<f4") {
    take(detail::npy_payload<float>(path, h));
  } else if (h.descr == "<f8") {
    take(detail::npy_payload<double>(path, h));
  } else {
    throw format_error("hydra: .npy file " + detail::quoted(path) + " has dtype '" + h.descr +
                       "'; features must be float32 (<f4) or float64 (<f8)");
  }
  return out;
}

/// Class labels of shape (N,) or (N, 1), stored as int32, int64 or uint8; every value must fit
/// in label_type.
[[nodiscard]] inline std::vector<label_type> load_npy_labels(const std::filesystem::path& path) {
  const auto h = read_npy_header(path);
  const auto where = "hydra: .npy file " + detail::quoted(path);
  if (h.shape.empty() || h.shape.size() > 2 || (h.shape.size() == 2 && h.shape[1] != 1)) {
    throw format_error(where + " has labels of shape " + detail::shape_string(h.shape) + "; expected (N,) or (N, 1)");
  }
  auto convert = [&](const auto& v) {
    std::vector<label_type> y(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::in_range<label_type>(v[i])) {
        throw format_error(where + ": label[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                           " does not fit in int32");
      }
      y[i] = static_cast<label_type>(v[i]);
    }
    return y;
  };
  if (h.descr == "<i4") return convert(detail::npy_payload<std::int32_t>(path, h));
  if (h.descr == "<i8") return convert(detail::npy_payload<std::int64_t>(path, h));
  if (h.descr == "|u1") return convert(detail::npy_payload<std::uint8_t>(path, h));
  throw format_error(where + " has dtype '" + h.descr + "'; labels must be int32, int64 or uint8");
}

/// Integer indices (batch tables, tracked samples) stored as int64 or int32, any shape,
/// converted to hydra::index.
[[nodiscard]] inline npy_array<index> load_npy_indices(const std::filesystem::path& path) {
  const auto h = read_npy_header(path);
  npy_array<index> out{h.shape, {}};
  auto take = [&](const auto& v) { out.data.assign(v.begin(), v.end()); };
  if (h.descr == "<i8") take(detail::npy_payload<std::int64_t>(path, h));
  else if (h.descr == "<i4") take(detail::npy_payload<std::int32_t>(path, h));
  else
    throw format_error("hydra: .npy file " + detail::quoted(path) + " has dtype '" + h.descr +
                       "'; indices must be int64 (<i8) or int32 (<i4)");
  return out;
}

/// Features x of shape (N, ...) and labels y of shape (N,) as a data set; the sample shape is
/// x's shape without its first dimension ({1} when x is 1-d).
template <Scalar T>
[[nodiscard]] dataset<T> load_npy_dataset(const std::filesystem::path& x_path, const std::filesystem::path& y_path,
                                          index num_classes = dataset<T>::infer_classes) {
  auto x = load_npy_features<T>(x_path);
  auto y = load_npy_labels(y_path);
  if (x.shape[0] != static_cast<index>(y.size())) {
    throw format_error("hydra::load_npy_dataset: " + std::to_string(x.shape[0]) + " samples in " +
                       detail::quoted(x_path) + " but " + std::to_string(y.size()) + " labels in " +
                       detail::quoted(y_path));
  }
  std::vector<index> sample_shape(x.shape.begin() + 1, x.shape.end());
  if (sample_shape.empty()) sample_shape = {1};
  return dataset<T>(std::move(sample_shape), std::move(x.data), std::move(y), num_classes);
}

/// Element types save_npy writes.
template <class U>
concept npy_storable = std::same_as<U, float> || std::same_as<U, double> || std::same_as<U, std::int32_t> ||
                       std::same_as<U, std::int64_t> || std::same_as<U, std::uint8_t>;

/// Writes data (row-major, prod(shape) elements) as a C-order .npy file that numpy.load reads.
/// Throws shape_error if the sizes disagree, io_error naming the file and the system's reason if
/// it cannot be written. Atomic (core/io/atomic_file.hpp): the file is
/// written as `path.tmp`, fsynced and renamed to `path`, so `path` holds either what it held
/// before or the complete new array, also when the disk fills up or the process dies; a failed
/// save deletes `path.tmp`. The new file replaces `path` (a new inode with default permissions).
template <std::ranges::contiguous_range R>
  requires npy_storable<std::remove_cv_t<std::ranges::range_value_t<R>>>
void save_npy(const std::filesystem::path& path, const R& data, std::span<const index> shape) {
  using U = std::remove_cv_t<std::ranges::range_value_t<R>>;
  index count = 0;
  if (!detail::checked_product(shape, count) || count != static_cast<index>(std::ranges::size(data))) {
    throw shape_error("hydra::save_npy: " + std::to_string(std::ranges::size(data)) + " values for shape " +
                      detail::shape_string(shape) + " (writing " + detail::quoted(path) + ")");
  }
  std::string dict = std::string("{'descr': '") + detail::npy_descr_of<U> + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(shape[i]);
  }
  dict += shape.size() == 1 ? ",), }" : "), }";  // Python's one-element tuple is (n,)
  // Pad with spaces and end with '\n' so that the payload starts 64-byte aligned (numpy's ARRAY_ALIGN).
  const bool v2 = dict.size() + 1 + 10 > 65535;
  const std::size_t preamble = v2 ? 12 : 10;
  const std::size_t total = (preamble + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - preamble - dict.size() - 1, ' ');
  dict += '\n';

  std::string header(detail::npy_magic, 6);
  header += static_cast<char>(v2 ? 2 : 1);
  header += '\0';
  for (std::size_t i = 0; i < (v2 ? 4u : 2u); ++i) header += static_cast<char>((dict.size() >> (8 * i)) & 0xff);
  header += dict;
  detail::atomic_file file(path, "hydra::save_npy");
  file.write(header.data(), header.size());
  if (count > 0) file.write(std::ranges::data(data), static_cast<std::size_t>(count) * sizeof(U));
  file.commit();
}

template <std::ranges::contiguous_range R>
  requires npy_storable<std::remove_cv_t<std::ranges::range_value_t<R>>>
void save_npy(const std::filesystem::path& path, const R& data, std::initializer_list<index> shape) {
  save_npy(path, data, std::span<const index>(shape.begin(), shape.size()));
}

} // namespace hydra
