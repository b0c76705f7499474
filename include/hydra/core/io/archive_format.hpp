#pragma once
// The layout of a hydra archive, shared by archive_writer (core/io/archive_writer.hpp) and
// archive_reader (core/io/archive_reader.hpp): the element types a section may hold, the markers
// and sizes of the file, and the helpers both use in their messages.
//
// Layout (native byte order, recorded by a marker; a reader refuses a foreign one):
//   header   "HYDRAARC" | u32 byte-order marker 0x01020304 | u32 format version (1)
//   section  u32 'SECT' | u32 name length | name | u32 element type | u32 element size | u64 count | payload
//   trailer  u32 'END!' | u64 checksum of every byte before it

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>

namespace hydra::detail::archive {

/// The element type of a section, stored as a u32 tag. `bytes` is a trivially copyable struct
/// stored as its object representation; its element size is sizeof the struct.
enum class element_type : std::uint32_t {
  bytes = 0,
  boolean = 1,
  character = 2,
  int8 = 3,
  int16 = 4,
  int32 = 5,
  int64 = 6,
  uint8 = 7,
  uint16 = 8,
  uint32 = 9,
  uint64 = 10,
  float32 = 11,
  float64 = 12,
};
inline constexpr std::uint32_t element_type_count = 13;

[[nodiscard]] constexpr const char* name_of(element_type t) noexcept {
  switch (t) {
    case element_type::bytes: return "bytes";
    case element_type::boolean: return "bool";
    case element_type::character: return "char";
    case element_type::int8: return "int8";
    case element_type::int16: return "int16";
    case element_type::int32: return "int32";
    case element_type::int64: return "int64";
    case element_type::uint8: return "uint8";
    case element_type::uint16: return "uint16";
    case element_type::uint32: return "uint32";
    case element_type::uint64: return "uint64";
    case element_type::float32: return "float32";
    case element_type::float64: return "float64";
  }
  return "?";
}

/// The element size a tag implies (0 for `bytes`, whose size is the struct's).
[[nodiscard]] constexpr std::uint64_t size_of(element_type t) noexcept {
  switch (t) {
    case element_type::bytes: return 0;
    case element_type::boolean:
    case element_type::character:
    case element_type::int8:
    case element_type::uint8: return 1;
    case element_type::int16:
    case element_type::uint16: return 2;
    case element_type::int32:
    case element_type::uint32:
    case element_type::float32: return 4;
    case element_type::int64:
    case element_type::uint64:
    case element_type::float64: return 8;
  }
  return 0;
}

/// What a section may hold: arithmetic values (not long double, whose format varies between
/// platforms) or trivially copyable structs (stored as bytes; pointers are not data).
template <class T>
concept archivable = !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_pointer_v<T> &&
                     !std::is_member_pointer_v<T> && !std::same_as<T, long double> &&
                     std::is_trivially_copyable_v<T> && !std::is_empty_v<T>;

template <archivable T>
[[nodiscard]] consteval element_type element_type_of() {
  if constexpr (std::same_as<T, bool>) return element_type::boolean;
  else if constexpr (std::same_as<T, char>) return element_type::character;
  else if constexpr (std::is_floating_point_v<T>) {
    static_assert(std::numeric_limits<T>::is_iec559 && (sizeof(T) == 4 || sizeof(T) == 8),
                  "hydra::archive: floating-point sections are float or double");
    return sizeof(T) == 4 ? element_type::float32 : element_type::float64;
  } else if constexpr (std::is_integral_v<T>) {
    constexpr bool s = std::is_signed_v<T>;
    if constexpr (sizeof(T) == 1) return s ? element_type::int8 : element_type::uint8;
    else if constexpr (sizeof(T) == 2) return s ? element_type::int16 : element_type::uint16;
    else if constexpr (sizeof(T) == 4) return s ? element_type::int32 : element_type::uint32;
    else {
      static_assert(sizeof(T) == 8, "hydra::archive: integers of more than 64 bits are not supported");
      return s ? element_type::int64 : element_type::uint64;
    }
  } else {
    return element_type::bytes;
  }
}

/// "float64" or "struct of 24 bytes", for messages.
[[nodiscard]] inline std::string describe_type(element_type t, std::uint64_t element_size) {
  if (t == element_type::bytes) return "struct of " + std::to_string(element_size) + " bytes";
  return name_of(t);
}

inline constexpr char magic[8] = {'H', 'Y', 'D', 'R', 'A', 'A', 'R', 'C'};
inline constexpr std::uint32_t byte_order_marker = 0x01020304u;
inline constexpr std::uint32_t foreign_byte_order_marker = 0x04030201u;
inline constexpr std::uint32_t format_version = 1;
inline constexpr std::uint32_t section_marker = 0x54434553u;  // "SECT" read as little-endian
inline constexpr std::uint32_t end_marker = 0x21444E45u;      // "END!"
inline constexpr std::uint64_t header_size = 16;
inline constexpr std::uint64_t trailer_size = 12;
/// Section names are short identifiers; a longer one in a file means corruption.
inline constexpr std::size_t max_name_length = 4096;
/// Writes and reads go through a buffer this large; payloads larger than it bypass it.
inline constexpr std::size_t buffer_size = std::size_t(1) << 20;

[[nodiscard]] inline std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }
[[nodiscard]] inline std::string system_message(int err) { return std::generic_category().message(err); }

/// The begin_array() section a writer or reader is in, between its chunks.
struct open_array {
  std::string name;  // empty when no begin_array() section is open
  element_type type = element_type::bytes;
  std::uint64_t element_size = 0;
  std::uint64_t count = 0;
  std::uint64_t remaining = 0;
};

} // namespace hydra::detail::archive
