#pragma once
// A portable pseudo-random generator for everything hydra shuffles. The standard library's
// distributions and std::shuffle are implementation-defined, so the same seed would give other
// batch orders with another compiler; these functions are fully specified, and the same seed
// gives the same numbers on every machine.
//
//   splitmix64   - Steele, Lea & Flood (2014); used only to expand a 64-bit seed into a state.
//   xoshiro256** - Blackman & Vigna (2018), the generator itself.
//   bounded      - rejection sampling: unbiased integers in [0, n).
//   shuffle      - Fisher-Yates from the last element down.
//   uniform01    - a double in [0, 1) from the top 53 bits of one draw.

#include <cstdint>
#include <span>
#include <utility>

namespace hydra {

/// splitmix64: each call adds the golden-ratio increment and mixes.
class splitmix64 {
public:
  explicit constexpr splitmix64(std::uint64_t seed) noexcept : state_(seed) {}

  constexpr std::uint64_t operator()() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

private:
  std::uint64_t state_;
};

/// xoshiro256**; seeded from one 64-bit value through splitmix64 (the authors' recommendation,
/// which also guarantees a state that is not all zero).
class xoshiro256ss {
public:
  using result_type = std::uint64_t;

  explicit constexpr xoshiro256ss(std::uint64_t seed) noexcept {
    splitmix64 sm(seed);
    for (auto& word : s_) word = sm();
  }
  /// The raw state, for tests against published sequences. Must not be all zero.
  constexpr xoshiro256ss(std::uint64_t s0, std::uint64_t s1, std::uint64_t s2, std::uint64_t s3) noexcept
      : s_{s0, s1, s2, s3} {}

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~std::uint64_t{0}; }

  constexpr result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

  std::uint64_t s_[4];
};

/// A uniformly distributed integer in [0, n), n > 0. Draws below 2^64 mod n are rejected so that
/// every residue is hit by the same number of 64-bit values (no modulo bias).
constexpr std::uint64_t bounded(xoshiro256ss& rng, std::uint64_t n) noexcept {
  const std::uint64_t threshold = (0 - n) % n;  // = 2^64 mod n
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

/// A double uniformly distributed in [0, 1): the top 53 bits of one draw times 2^-53.
constexpr double uniform01(xoshiro256ss& rng) noexcept { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// Fisher-Yates: for i = n-1 down to 1, swap element i with element bounded(i + 1).
template <class V>
constexpr void shuffle(std::span<V> values, xoshiro256ss& rng) noexcept {
  for (std::size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(bounded(rng, i));
    using std::swap;
    swap(values[i - 1], values[j]);
  }
}

} // namespace hydra
