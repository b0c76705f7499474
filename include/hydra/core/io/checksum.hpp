#pragma once
// hydra::detail::archive::checksum64: the streaming 64-bit checksum that guards every hydra
// archive (its trailer) and fingerprints a batch order (train/checkpoint.hpp).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hydra::detail::archive {

/// A streaming 64-bit checksum over a byte sequence, independent of how the sequence is cut into
/// update() calls. Four independent lanes of multiply-rotate mixing over 32-byte stripes (the
/// structure of xxHash64) keep it memory-bound (well above 2 GB/s): checkpoints of trackers run to
/// tens of GB, and a byte-at-a-time hash would dominate writing them. It detects corruption; it is
/// not a cryptographic hash.
class checksum64 {
public:
  checksum64() noexcept { reset(); }

  void reset() noexcept {
    lanes_[0] = seed + prime1 + prime2;
    lanes_[1] = seed + prime2;
    lanes_[2] = seed;
    lanes_[3] = seed - prime1;
    pending_size_ = 0;
    total_ = 0;
  }

  void update(const void* data, std::size_t n) noexcept {
    if (n == 0) return;
    const auto* p = static_cast<const unsigned char*>(data);
    total_ += n;
    if (pending_size_ > 0) {  // complete the stripe left over from the previous call
      const std::size_t take = std::min(n, stripe - pending_size_);
      std::memcpy(pending_ + pending_size_, p, take);
      pending_size_ += take;
      p += take;
      n -= take;
      if (pending_size_ < stripe) return;
      consume(pending_);
      pending_size_ = 0;
    }
    std::uint64_t a = lanes_[0], b = lanes_[1], c = lanes_[2], d = lanes_[3];
    for (; n >= stripe; p += stripe, n -= stripe) {  // the hot loop: four independent chains
      a = round(a, load(p));
      b = round(b, load(p + 8));
      c = round(c, load(p + 16));
      d = round(d, load(p + 24));
    }
    lanes_[0] = a;
    lanes_[1] = b;
    lanes_[2] = c;
    lanes_[3] = d;
    if (n > 0) {
      std::memcpy(pending_, p, n);
      pending_size_ = n;
    }
  }

  /// The checksum of everything passed to update() so far; update() may continue afterwards.
  [[nodiscard]] std::uint64_t digest() const noexcept {
    std::uint64_t h = std::rotl(lanes_[0], 1) + std::rotl(lanes_[1], 7) + std::rotl(lanes_[2], 12) +
                      std::rotl(lanes_[3], 18);
    for (const std::uint64_t lane : lanes_) h = (h ^ round(0, lane)) * prime1 + prime4;
    h += total_;
    std::size_t i = 0;
    for (; i + 8 <= pending_size_; i += 8) h = std::rotl(h ^ round(0, load(pending_ + i)), 27) * prime1 + prime4;
    if (i < pending_size_) {  // the last 1..7 bytes, zero-padded (the total length is mixed in above)
      unsigned char tail[8] = {};
      std::memcpy(tail, pending_ + i, pending_size_ - i);
      h = std::rotl(h ^ round(0, load(tail)), 23) * prime2 + prime3;
    }
    h ^= h >> 33;
    h *= prime2;
    h ^= h >> 29;
    h *= prime3;
    h ^= h >> 32;
    return h;
  }

private:
  static constexpr std::size_t stripe = 32;
  static constexpr std::uint64_t seed = 0x6879647261617263ULL;  // "hydraarc"
  static constexpr std::uint64_t prime1 = 0x9E3779B185EBCA87ULL;
  static constexpr std::uint64_t prime2 = 0xC2B2AE3D27D4EB4FULL;
  static constexpr std::uint64_t prime3 = 0x165667B19E3779F9ULL;
  static constexpr std::uint64_t prime4 = 0x85EBCA77C2B2AE63ULL;

  static std::uint64_t load(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
  }
  static std::uint64_t round(std::uint64_t acc, std::uint64_t word) noexcept {
    return std::rotl(acc + word * prime2, 31) * prime1;
  }
  void consume(const unsigned char* p) noexcept {
    for (int k = 0; k < 4; ++k) lanes_[k] = round(lanes_[k], load(p + 8 * k));
  }

  std::uint64_t lanes_[4];
  unsigned char pending_[stripe];
  std::size_t pending_size_;
  std::uint64_t total_;
};

} // namespace hydra::detail::archive
