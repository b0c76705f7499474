#pragma once
// What every benchmark executable shares: deterministic inputs (a hash formula, no RNG state, so a
// 50-million-entry matrix fills in a fraction of a second and every run sees the same data) and
// Google Benchmark rate counters in the units docs/performance.md quotes.

#include <benchmark/benchmark.h>

#include <cstdint>

#include "hydra/core/types.hpp"

namespace hydra::bench {

/// A deterministic value in [-1, 1) for entry i of stream `seed` (a multiplicative hash).
template <class T>
T pseudo_random(index i, std::uint32_t seed) {
  std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u + seed * 0x9E3779B9u;
  h ^= h >> 15;
  h *= 0x2C1B3C6Du;
  h ^= h >> 12;
  return static_cast<T>(static_cast<double>(h) / 2147483648.0 - 1.0);
}

/// v[i] = scale · pseudo_random(i, seed).
template <class T>
void fill(vector_view<T> v, std::uint32_t seed, T scale = T(1)) {
  for (index i = 0; i < v.size; ++i) v.data[i] = scale * pseudo_random<T>(i, seed);
}

/// Pixels in [0, 1), like normalised image data.
template <class T>
void fill_pixels(vector_view<T> v, std::uint32_t seed) {
  for (index i = 0; i < v.size; ++i) v.data[i] = T(0.5) * pseudo_random<T>(i, seed) + T(0.5);
}

/// A `uniform(lo, hi)` source for Model::initialize (PyTorch's default ranges, deterministic).
inline auto deterministic_uniform(std::uint32_t seed) {
  return [seed, n = index{0}](double lo, double hi) mutable {
    return lo + (hi - lo) * 0.5 * (pseudo_random<double>(n++, seed) + 1.0);
  };
}

/// A rate counter that reads in units of 1e9 per second (GFLOP/s from FLOPs per iteration).
inline benchmark::Counter giga_rate(double per_iteration, benchmark::IterationCount iterations) {
  return benchmark::Counter(per_iteration * static_cast<double>(iterations) * 1e-9, benchmark::Counter::kIsRate);
}

/// A rate counter in bytes, printed in binary multiples (GiB/s).
inline benchmark::Counter byte_rate(double per_iteration, benchmark::IterationCount iterations) {
  return benchmark::Counter(per_iteration * static_cast<double>(iterations), benchmark::Counter::kIsRate,
                            benchmark::Counter::OneK::kIs1024);
}

/// A plain per-second rate (samples/s, directions/s).
inline benchmark::Counter per_second(double per_iteration, benchmark::IterationCount iterations) {
  return benchmark::Counter(per_iteration * static_cast<double>(iterations), benchmark::Counter::kIsRate);
}

} // namespace hydra::bench
