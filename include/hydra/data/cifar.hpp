#pragma once
// Reader for the CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin from
// https://www.cs.toronto.edu/~kriz/cifar.html): records of one label byte (0..9) followed by
// 3072 pixel bytes, 1024 red, 1024 green, 1024 blue, each 32 x 32 row-major.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/detail/checked.hpp"

namespace hydra {

inline constexpr index cifar10_classes = 10;
inline constexpr index cifar10_image_bytes = 3 * 32 * 32;
inline constexpr index cifar10_record_bytes = 1 + cifar10_image_bytes;

namespace detail {
// Appends the records of one file to x (scaled pixels) and y.
template <Scalar T>
void append_cifar10_batch(const std::filesystem::path& path, T pixel_scale, std::vector<T>& x,
                          std::vector<label_type>& y) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  const auto size = regular ? std::filesystem::file_size(path, ec) : 0;
  std::ifstream in(path, std::ios::binary);
  if (!regular || ec || !in) throw io_error("hydra: cannot open CIFAR-10 file " + quoted(path));
  // The size is known before anything is allocated, so a wrong file fails here, not in new[].
  if (size == 0 || size % static_cast<std::uintmax_t>(cifar10_record_bytes) != 0) {
    throw format_error("hydra: CIFAR-10 file " + quoted(path) + " has " + std::to_string(size) +
                       " bytes, not a positive multiple of the record size " + std::to_string(cifar10_record_bytes));
  }
  const auto records = static_cast<index>(size / static_cast<std::uintmax_t>(cifar10_record_bytes));
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    throw io_error("hydra: reading CIFAR-10 file " + quoted(path) + " failed");
  }
  x.reserve(x.size() + static_cast<std::size_t>(records * cifar10_image_bytes));
  for (index r = 0; r < records; ++r) {
    const auto* rec = bytes.data() + r * cifar10_record_bytes;
    if (rec[0] >= cifar10_classes) {
      throw format_error("hydra: CIFAR-10 file " + quoted(path) + ": record " + std::to_string(r) + " has label " +
                         std::to_string(rec[0]) + " (expected 0..9)");
    }
    y.push_back(static_cast<label_type>(rec[0]));
    for (index k = 1; k <= cifar10_image_bytes; ++k) x.push_back(static_cast<T>(rec[k]) * pixel_scale);
  }
}
} // namespace detail

/// One CIFAR-10 batch file as a data set: sample shape {3, 32, 32} (channel-major, as stored),
/// 10 classes, pixels multiplied by pixel_scale (default 1/255: [0, 1]).
/// Throws io_error if the file cannot be opened, format_error (naming the file) when its size is
/// not a positive multiple of 3073 bytes or a label is above 9 (naming the record).
template <Scalar T>
[[nodiscard]] dataset<T> load_cifar10_batch(const std::filesystem::path& path, T pixel_scale = T(1) / T(255)) {
  std::vector<T> x;
  std::vector<label_type> y;
  detail::append_cifar10_batch(path, pixel_scale, x, y);
  return dataset<T>({3, 32, 32}, std::move(x), std::move(y), cifar10_classes);
}

/// Several batch files concatenated in the given order (e.g. data_batch_1.bin ... data_batch_5.bin).
template <Scalar T>
[[nodiscard]] dataset<T> load_cifar10(std::span<const std::filesystem::path> paths, T pixel_scale = T(1) / T(255)) {
  if (paths.empty()) throw invalid_argument("hydra::load_cifar10: no files given");
  std::vector<T> x;
  std::vector<label_type> y;
  for (const auto& p : paths) detail::append_cifar10_batch(p, pixel_scale, x, y);
  return dataset<T>({3, 32, 32}, std::move(x), std::move(y), cifar10_classes);
}

} // namespace hydra
