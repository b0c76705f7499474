#pragma once
// Readers for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
// a big-endian header (magic 0x00000803 for images N x rows x cols, 0x00000801 for labels N)
// followed by unsigned bytes. Files may be gzip-compressed or raw; zlib reads both.

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/detail/checked.hpp"

namespace hydra {

/// An IDX array of unsigned bytes: shape {N, rows, cols} for images, {N} for labels.
struct idx_array {
  std::vector<index> shape;
  std::vector<std::uint8_t> data;
};

namespace detail {

inline constexpr std::uint32_t idx_images_magic = 0x00000803;  // ubyte, 3 dimensions
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;  // ubyte, 1 dimension
// No dimension of a real IDX file comes near this; it keeps products of header fields small.
inline constexpr std::uint32_t idx_max_dim = 1u << 28;

struct gz_closer {
  void operator()(gzFile f) const noexcept { gzclose(f); }
};
using gz_handle = std::unique_ptr<std::remove_pointer_t<gzFile>, gz_closer>;

class idx_reader {
public:
  explicit idx_reader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) file_.reset(gzopen(path.c_str(), "rb"));
    if (!file_) throw io_error("hydra: cannot open IDX file " + quoted(path_));
  }

  // Reads up to n bytes into out (appending); returns how many were read before end of file.
  std::size_t read_some(std::vector<std::uint8_t>& out, std::size_t n, const char* field) {
    constexpr std::size_t chunk = std::size_t{1} << 20;
    std::size_t got = 0;
    while (got < n) {
      const auto want = static_cast<unsigned>(std::min(chunk, n - got));
      const auto old = out.size();
      out.resize(old + want);  // grows by what the file really holds, never by the header's claim
      const int r = gzread(file_.get(), out.data() + old, want);
      if (r < 0) fail_stream(field);
      out.resize(old + static_cast<std::size_t>(r));
      got += static_cast<std::size_t>(r);
      if (static_cast<unsigned>(r) < want) {
        int err = Z_OK;
        gzerror(file_.get(), &err);
        if (err != Z_OK && err != Z_BUF_ERROR) fail_stream(field);  // Z_BUF_ERROR: truncated gzip
        break;
      }
    }
    return got;
  }

  void read_exact(std::vector<std::uint8_t>& out, std::size_t n, const char* field) {
    const auto got = read_some(out, n, field);
    if (got != n) {
      throw format_error("hydra: IDX file " + quoted(path_) + " is truncated in the " + field + ": expected " +
                         std::to_string(n) + " bytes, got " + std::to_string(got));
    }
  }

  std::uint32_t read_u32(const char* field) {
    std::vector<std::uint8_t> b;
    read_exact(b, 4, field);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
  }

  void check_magic(std::uint32_t expected) {
    const auto magic = read_u32("magic number");
    if (magic != expected) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "0x%08x (expected 0x%08x)", static_cast<unsigned>(magic),
                    static_cast<unsigned>(expected));
      throw format_error("hydra: IDX file " + quoted(path_) + " has a bad magic number " + buf);
    }
  }

  index read_dim(const char* field) {
    const auto v = read_u32(field);
    if (v > idx_max_dim) {
      throw format_error("hydra: IDX file " + quoted(path_) + ": " + field + " = " + std::to_string(v) +
                         " exceeds the limit " + std::to_string(idx_max_dim));
    }
    return static_cast<index>(v);
  }

  void check_end() {
    std::vector<std::uint8_t> extra;
    if (read_some(extra, 1, "trailing data") != 0) {
      throw format_error("hydra: IDX file " + quoted(path_) + " has trailing bytes after the payload");
    }
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
  [[noreturn]] void fail_stream(const char* field) {
    int err = Z_OK;
    const char* msg = gzerror(file_.get(), &err);
    if (err == Z_ERRNO) throw io_error("hydra: reading IDX file " + quoted(path_) + " failed in the " + field);
    throw format_error("hydra: IDX file " + quoted(path_) + " is corrupt in the " + field + ": " +
                       (msg != nullptr ? msg : "unknown zlib error"));
  }

  std::filesystem::path path_;
  gz_handle file_;
};

inline std::vector<std::uint8_t> read_idx_payload(idx_reader& in, std::span<const index> shape) {
  index bytes = 0;
  if (!checked_product(shape, bytes)) {
    throw format_error("hydra: IDX file " + quoted(in.path()) + ": shape " + shape_string(shape) + " overflows");
  }
  std::vector<std::uint8_t> data;
  data.reserve(std::min<std::size_t>(static_cast<std::size_t>(bytes), std::size_t{64} << 20));
  in.read_exact(data, static_cast<std::size_t>(bytes), "payload");
  in.check_end();
  return data;
}

} // namespace detail

/// Reads an IDX image file: shape {N, rows, cols}, N*rows*cols bytes.
/// Throws io_error if it cannot be opened; format_error (naming the file and field) for a bad magic
/// number, a dimension of 0 rows/cols or above 2^28, a truncated payload, or trailing bytes.
[[nodiscard]] inline idx_array read_idx_images(const std::filesystem::path& path) {
  detail::idx_reader in(path);
  in.check_magic(detail::idx_images_magic);
  idx_array out;
  out.shape = {in.read_dim("image count"), in.read_dim("row count"), in.read_dim("column count")};
  if (out.shape[1] == 0 || out.shape[2] == 0) {
    throw format_error("hydra: IDX file " + detail::quoted(path) + " has images of " + std::to_string(out.shape[1]) +
                       " x " + std::to_string(out.shape[2]) + " pixels");
  }
  out.data = detail::read_idx_payload(in, out.shape);
  return out;
}

/// Reads an IDX label file: shape {N}, N bytes. Errors as for read_idx_images.
[[nodiscard]] inline idx_array read_idx_labels(const std::filesystem::path& path) {
  detail::idx_reader in(path);
  in.check_magic(detail::idx_labels_magic);
  idx_array out;
  out.shape = {in.read_dim("label count")};
  out.data = detail::read_idx_payload(in, out.shape);
  return out;
}

/// An image/label pair of IDX files as a data set with sample shape {1, rows, cols}, each pixel
/// multiplied by pixel_scale (default 1/255: [0, 1]). Throws format_error naming both files when
/// their counts differ.
template <Scalar T>
[[nodiscard]] dataset<T> load_idx_dataset(const std::filesystem::path& images_path,
                                          const std::filesystem::path& labels_path, T pixel_scale = T(1) / T(255),
                                          index num_classes = dataset<T>::infer_classes) {
  const auto images = read_idx_images(images_path);
  const auto labels = read_idx_labels(labels_path);
  if (images.shape[0] != labels.shape[0]) {
    throw format_error("hydra::load_idx_dataset: " + std::to_string(images.shape[0]) + " images in " +
                       detail::quoted(images_path) + " but " + std::to_string(labels.shape[0]) + " labels in " +
                       detail::quoted(labels_path));
  }
  std::vector<T> x(images.data.size());
  std::ranges::transform(images.data, x.begin(), [&](std::uint8_t p) { return static_cast<T>(p) * pixel_scale; });
  std::vector<label_type> y(labels.data.begin(), labels.data.end());
  return dataset<T>({1, images.shape[1], images.shape[2]}, std::move(x), std::move(y), num_classes);
}

} // namespace hydra
