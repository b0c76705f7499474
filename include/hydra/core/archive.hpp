#pragma once
// hydra::archive_writer and hydra::archive_reader: a sequential binary file of named, typed
// sections, the format of every hydra checkpoint. Writing is atomic: everything goes to
// `path.tmp`, and only commit() (fsync, rename, fsync of the directory) makes it `path`, so a
// crash at any moment leaves either the previous archive or the new one, complete. Reading checks
// every section's name, element type and count against what the caller expects, never reads past
// the end or allocates from an unchecked count, and finish() verifies a 64-bit checksum over the
// whole file.
//
// Layout (native byte order, recorded by a marker; a reader refuses a foreign one):
//   header   "HYDRAARC" | u32 byte-order marker 0x01020304 | u32 format version (1)
//   section  u32 'SECT' | u32 name length | name | u32 element type | u32 element size | u64 count | payload
//   trailer  u32 'END!' | u64 checksum of every byte before it

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hydra/core/error.hpp"

namespace hydra {

namespace detail::archive {

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

} // namespace detail::archive

/// Writes an archive to `path + ".tmp"`; commit() makes it `path`. Sections are written in order,
/// each with a name the reader checks. Not thread-safe; move-constructible, not copyable.
class archive_writer {
public:
  /// Creates (truncating) `path + ".tmp"`. Throws hydra::io_error naming that file when it cannot
  /// be created. `path` itself is not touched before commit().
  explicit archive_writer(std::filesystem::path path) : path_(std::move(path)), buffer_(detail::archive::buffer_size) {
    temporary_ = path_;
    temporary_ += ".tmp";
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int err = errno;
      throw io_error("hydra::archive_writer: cannot create " + detail::archive::quoted(temporary_) + ": " +
                     detail::archive::system_message(err));
    }
    state_ = state::open;
    using namespace detail::archive;
    put(magic, sizeof magic);
    put_value(byte_order_marker);
    put_value(format_version);
  }

  archive_writer(archive_writer&& other) noexcept
      : path_(std::move(other.path_)),
        temporary_(std::move(other.temporary_)),
        fd_(std::exchange(other.fd_, -1)),
        buffer_(std::move(other.buffer_)),
        used_(std::exchange(other.used_, 0)),
        hash_(other.hash_),
        array_(std::move(other.array_)),
        state_(std::exchange(other.state_, state::moved_from)) {}
  archive_writer& operator=(archive_writer&&) = delete;
  archive_writer(const archive_writer&) = delete;
  archive_writer& operator=(const archive_writer&) = delete;

  /// Without a successful commit(): closes and deletes the .tmp file. Never touches path().
  ~archive_writer() {
    if (fd_ >= 0) ::close(fd_);
    if (state_ == state::open || state_ == state::failed) ::unlink(temporary_.c_str());
  }

  /// A section of values.size() elements. Throws hydra::invalid_argument for a name that is empty
  /// or longer than 4096 bytes, or while a begin_array() section is incomplete; hydra::io_error
  /// naming the file when writing fails (the writer is unusable afterwards).
  template <detail::archive::archivable T>
  void write(std::string_view name, std::span<const T> values) {
    constexpr auto type = detail::archive::element_type_of<T>();
    start_section("write", name, type, sizeof(T), values.size());
    put(values.data(), values.size_bytes());
    finish_call();
  }

  /// A section of one element: an arithmetic value, or a trivially copyable struct stored as its
  /// bytes (padding included, as it is in memory; the reader checks sizeof). Enums are structs here.
  template <detail::archive::archivable T>
  void write_value(std::string_view name, const T& value) {
    write(name, std::span<const T>(&value, 1));
  }

  /// A section of text.size() chars.
  void write_string(std::string_view name, std::string_view text) {
    write(name, std::span<const char>(text.data(), text.size()));
  }

  /// Opens a section of `count` elements whose payload follows in append() calls; the chunks must
  /// add up to `count` before the next section or commit() (hydra::invalid_argument otherwise).
  /// For arrays too large to hold in memory at once (tracker states).
  template <detail::archive::archivable T>
  void begin_array(std::string_view name, std::uint64_t count) {
    constexpr auto type = detail::archive::element_type_of<T>();
    if (count > std::numeric_limits<std::uint64_t>::max() / sizeof(T))
      throw invalid_argument("hydra::archive_writer::begin_array: section '" + std::string(name) + "' of " +
                             std::to_string(count) + " elements of " + std::to_string(sizeof(T)) +
                             " bytes overflows 64 bits (" + detail::archive::quoted(temporary_) + ")");
    start_section("begin_array", name, type, sizeof(T), count);
    if (count > 0) array_ = detail::archive::open_array{std::string(name), type, sizeof(T), count, count};
    finish_call();
  }

  /// The next chunk of the section opened by begin_array<T>(). Throws hydra::invalid_argument
  /// when no section is open, T differs from begin_array's, or the chunk overruns the count.
  template <detail::archive::archivable T>
  void append(std::span<const T> chunk) {
    check_usable("append");
    constexpr auto type = detail::archive::element_type_of<T>();
    if (array_.name.empty()) {
      if (chunk.empty()) return;  // the chunks of an empty array
      throw invalid_argument("hydra::archive_writer::append: no begin_array() section is open (" +
                             detail::archive::quoted(temporary_) + ")");
    }
    if (type != array_.type || sizeof(T) != array_.element_size)
      throw invalid_argument("hydra::archive_writer::append: section '" + array_.name + "' holds " +
                             detail::archive::describe_type(array_.type, array_.element_size) + ", got a chunk of " +
                             detail::archive::describe_type(type, sizeof(T)));
    if (chunk.size() > array_.remaining)
      throw invalid_argument("hydra::archive_writer::append: section '" + array_.name + "' was declared with " +
                             std::to_string(array_.count) + " elements; a chunk of " + std::to_string(chunk.size()) +
                             " overruns it by " + std::to_string(chunk.size() - array_.remaining));
    state_ = state::failed;
    put(chunk.data(), chunk.size_bytes());
    array_.remaining -= chunk.size();
    if (array_.remaining == 0) array_ = {};
    finish_call();
  }

  /// Writes the trailer (checksum), flushes, fsyncs the file, renames it to path() and fsyncs the
  /// directory, so that path() is either the previous archive or this one, complete, whenever the
  /// machine stops. The writer is closed afterwards. Throws hydra::invalid_argument while a
  /// begin_array() section is incomplete, hydra::io_error naming the file when a step fails (then
  /// path() is unchanged, unless only the final directory fsync failed).
  void commit() {
    start_call("commit");
    using namespace detail::archive;
    put_value(end_marker);
    put_raw_value(hash_.digest());
    flush();
    if (::fsync(fd_) != 0) {
      const int err = errno;
      fail_io("cannot fsync", temporary_, err);
    }
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) {
      const int err = errno;
      fail_io("cannot close", temporary_, err);
    }
    if (::rename(temporary_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      fail_io("cannot rename " + quoted(temporary_) + " to", path_, err);
    }
    state_ = state::committed;  // from here on the new archive is in place: nothing to delete
    sync_directory();
  }

  /// The archive's final path (the writer writes to path() + ".tmp" until commit()).
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return temporary_; }
  [[nodiscard]] bool committed() const noexcept { return state_ == state::committed; }

private:
  enum class state { open, failed, committed, moved_from };


  void check_usable(const char* member) const {
    if (state_ == state::open) return;
    const char* why = state_ == state::committed ? "after commit()"
                      : state_ == state::failed  ? "after an earlier error"
                                                 : "after being moved from";
    throw invalid_argument(std::string("hydra::archive_writer::") + member + ": the writer of " +
                           detail::archive::quoted(path_) + " is unusable " + why);
  }

  /// Every member that writes marks the writer failed first and open again when it completes, so
  /// that an exception half-way (a full disk) leaves it unusable rather than inconsistent.
  void start_call(const char* member) {
    check_usable(member);
    if (!array_.name.empty())
      throw invalid_argument(std::string("hydra::archive_writer::") + member + ": section '" + array_.name +
                             "' was declared with " + std::to_string(array_.count) + " elements but only " +
                             std::to_string(array_.count - array_.remaining) + " were appended (" +
                             detail::archive::quoted(temporary_) + ")");
    state_ = state::failed;
  }
  void finish_call() noexcept { state_ = state::open; }

  void start_section(const char* member, std::string_view name, detail::archive::element_type type,
                     std::uint64_t element_size, std::uint64_t count) {
    check_usable(member);
    if (name.empty() || name.size() > detail::archive::max_name_length)
      throw invalid_argument(std::string("hydra::archive_writer::") + member + ": a section name must have 1 to " +
                             std::to_string(detail::archive::max_name_length) + " bytes, got " +
                             std::to_string(name.size()) + " (" + detail::archive::quoted(temporary_) + ")");
    start_call(member);
    put_value(detail::archive::section_marker);
    put_value(static_cast<std::uint32_t>(name.size()));
    put(name.data(), name.size());
    put_value(static_cast<std::uint32_t>(type));
    put_value(static_cast<std::uint32_t>(element_size));
    put_value(count);
  }

  template <class U>
  void put_value(const U& v) {
    put(&v, sizeof v);
  }
  template <class U>
  void put_raw_value(const U& v) {
    put_raw(&v, sizeof v);
  }

  /// Checksummed and buffered.
  void put(const void* data, std::size_t n) {
    hash_.update(data, n);
    put_raw(data, n);
  }
  /// Buffered; a payload at least as large as the buffer goes straight to the file.
  void put_raw(const void* data, std::size_t n) {
    if (n == 0) return;  // an empty span's data() may be null, which memcpy must not see
    const auto* p = static_cast<const std::byte*>(data);
    if (n >= buffer_.size()) {
      flush();
      write_fully(p, n);
      return;
    }
    if (used_ + n > buffer_.size()) flush();
    std::memcpy(buffer_.data() + used_, p, n);
    used_ += n;
  }
  void flush() {
    write_fully(buffer_.data(), used_);
    used_ = 0;
  }
  void write_fully(const std::byte* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, std::min<std::size_t>(n, std::size_t(1) << 30));
      if (w < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        fail_io("cannot write", temporary_, err);
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  /// Makes the rename durable. File systems that cannot fsync a directory (EINVAL) have nothing
  /// more to offer, so that is not an error.
  void sync_directory() {
    const std::filesystem::path dir = path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      fail_io("cannot open the directory", dir, err);
    }
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL && err != ENOTSUP)
      fail_io("cannot fsync the directory", dir, err);
  }

  [[noreturn]] void fail_io(const std::string& what, const std::filesystem::path& file, int err) {
    if (state_ != state::committed) state_ = state::failed;
    throw io_error("hydra::archive_writer: " + what + " " + detail::archive::quoted(file) + ": " +
                   detail::archive::system_message(err));
  }

  std::filesystem::path path_;
  std::filesystem::path temporary_;
  int fd_ = -1;
  std::vector<std::byte> buffer_;
  std::size_t used_ = 0;
  detail::archive::checksum64 hash_;
  detail::archive::open_array array_;
  state state_ = state::failed;
};

/// Reads an archive section by section, in the order it was written. Every read names the section
/// it expects; any difference (name, element type, count), a truncated file, a corrupt header or
/// a checksum mismatch throws hydra::format_error naming the file and the section. After an error
/// the reader is unusable. Not thread-safe; move-constructible, not copyable.
class archive_reader {
public:
  /// Throws hydra::io_error naming the file when it cannot be opened, hydra::format_error when it
  /// is not a hydra archive, of another byte order or of an unsupported format version.
  explicit archive_reader(std::filesystem::path path) : path_(std::move(path)), buffer_(detail::archive::buffer_size) {
    using namespace detail::archive;
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      throw io_error("hydra::archive_reader: cannot open " + quoted(path_) + ": " + system_message(err));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      throw io_error("hydra::archive_reader: cannot stat " + quoted(path_) + ": " + system_message(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw io_error("hydra::archive_reader: " + quoted(path_) + " is not a regular file");
    }
    file_size_ = static_cast<std::uint64_t>(st.st_size);
    // The destructor does not run if the constructor throws: close the file on the way out.
    struct closer {
      int& fd;
      bool armed = true;
      ~closer() {
        if (armed) ::close(std::exchange(fd, -1));
      }
    } guard{fd_};
    if (file_size_ < header_size)
      fail("is truncated: " + std::to_string(file_size_) + " bytes, shorter than the " + std::to_string(header_size) +
           "-byte archive header");
    char m[sizeof magic];
    get(m, sizeof m, "the header");
    if (std::memcmp(m, magic, sizeof magic) != 0) fail("is not a hydra archive (the magic bytes differ)");
    const auto order = get_value<std::uint32_t>("the header");
    if (order == foreign_byte_order_marker)
      fail("was written on a machine of the other byte order; hydra archives are not portable across byte orders");
    if (order != byte_order_marker) fail("has a corrupt header (byte-order marker " + std::to_string(order) + ")");
    const auto version = get_value<std::uint32_t>("the header");
    if (version != format_version)
      fail("has format version " + std::to_string(version) + "; this build reads version " +
           std::to_string(format_version));
    guard.armed = false;
    broken_ = false;
  }

  archive_reader(archive_reader&& other) noexcept
      : path_(std::move(other.path_)),
        fd_(std::exchange(other.fd_, -1)),
        file_size_(other.file_size_),
        offset_(other.offset_),
        buffer_(std::move(other.buffer_)),
        buffer_pos_(std::exchange(other.buffer_pos_, 0)),
        buffer_end_(std::exchange(other.buffer_end_, 0)),
        hash_(other.hash_),
        array_(std::move(other.array_)),
        finished_(other.finished_),
        broken_(std::exchange(other.broken_, true)) {}
  archive_reader& operator=(archive_reader&&) = delete;
  archive_reader(const archive_reader&) = delete;
  archive_reader& operator=(const archive_reader&) = delete;
  ~archive_reader() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Reads the next section, which must be called `name`, hold T and exactly out.size() elements.
  template <detail::archive::archivable T>
  void read(std::string_view name, std::span<T> out) {
    start_call("read");
    const auto h = next_section(name, detail::archive::element_type_of<T>(), sizeof(T));
    if (h.count != out.size()) mismatch(name, detail::archive::element_type_of<T>(), sizeof(T), out.size(), h);
    get_elements(out.data(), out.size(), name);
    broken_ = false;
  }

  /// Reads a one-element section written by write_value<T>.
  template <detail::archive::archivable T>
  T read_value(std::string_view name) {
    T value{};
    read(name, std::span<T>(&value, 1));
    return value;
  }

  /// Reads a section of any count up to max_count (checked before allocating).
  template <detail::archive::archivable T>
  std::vector<T> read_vector(std::string_view name, std::uint64_t max_count) {
    start_call("read_vector");
    const auto h = next_section(name, detail::archive::element_type_of<T>(), sizeof(T));
    if (h.count > max_count)
      fail("section '" + h.name + "' has " + std::to_string(h.count) + " elements, more than the " +
           std::to_string(max_count) + " expected at most");
    std::vector<T> out(static_cast<std::size_t>(h.count));
    if constexpr (std::same_as<T, bool>) {  // std::vector<bool> has no data()
      for (auto&& element : out) element = read_bool(name);
    } else {
      get_elements(out.data(), out.size(), name);
    }
    broken_ = false;
    return out;
  }

  /// Reads a section written by write_string, of at most max_length chars (checked before allocating).
  std::string read_string(std::string_view name, std::size_t max_length = std::size_t(1) << 20) {
    start_call("read_string");
    const auto h = next_section(name, detail::archive::element_type::character, 1);
    if (h.count > max_length)
      fail("section '" + h.name + "' holds a string of " + std::to_string(h.count) + " chars, more than the " +
           std::to_string(max_length) + " expected at most");
    std::string out(static_cast<std::size_t>(h.count), '\0');
    get(out.data(), out.size(), name);
    broken_ = false;
    return out;
  }

  /// Opens the next section (named `name`, holding T) for reading in take() chunks; returns its
  /// element count. The count is checked against the bytes left in the file.
  template <detail::archive::archivable T>
  std::uint64_t begin_array(std::string_view name) {
    start_call("begin_array");
    const auto h = next_section(name, detail::archive::element_type_of<T>(), sizeof(T));
    array_.name = h.name;
    array_.type = h.type;
    array_.element_size = h.element_size;
    array_.count = h.count;
    array_.remaining = h.count;
    if (h.count == 0) array_ = {};
    broken_ = false;
    return h.count;
  }

  /// The next chunk of the section opened by begin_array<T>(). Throws hydra::invalid_argument when
  /// none is open, T differs, or the chunk is larger than what is left of the section.
  template <detail::archive::archivable T>
  void take(std::span<T> chunk) {
    check_usable("take");
    constexpr auto type = detail::archive::element_type_of<T>();
    if (array_.name.empty())
      throw invalid_argument("hydra::archive_reader::take: no begin_array() section is open (" +
                             detail::archive::quoted(path_) + ")");
    if (type != array_.type || sizeof(T) != array_.element_size)
      throw invalid_argument("hydra::archive_reader::take: section '" + array_.name + "' of " +
                             detail::archive::quoted(path_) + " holds " +
                             detail::archive::describe_type(array_.type, array_.element_size) + ", not " +
                             detail::archive::describe_type(type, sizeof(T)));
    if (chunk.size() > array_.remaining)
      throw invalid_argument("hydra::archive_reader::take: a chunk of " + std::to_string(chunk.size()) +
                             " elements, but section '" + array_.name + "' of " + detail::archive::quoted(path_) +
                             " has only " + std::to_string(array_.remaining) + " left");
    broken_ = true;
    get_elements(chunk.data(), chunk.size(), array_.name);
    array_.remaining -= chunk.size();
    if (array_.remaining == 0) array_ = {};
    broken_ = false;
  }

  /// Skips the next section, which must be called `name` (whatever it holds); its bytes still
  /// count towards the checksum.
  void skip(std::string_view name) {
    start_call("skip");
    const auto h = read_header(name);
    if (h.end) fail("expected section '" + std::string(name) + "', found the end of the archive");
    if (h.name != name) fail("expected section '" + std::string(name) + "', found '" + h.name + "'");
    discard(h.count * h.element_size, name);  // checked against the file size by read_header
    broken_ = false;
  }

  /// Reads the trailer: verifies the checksum over the whole file and that nothing follows it.
  /// Throws hydra::format_error (the archive is corrupt or has more sections than were read) or
  /// hydra::invalid_argument while a begin_array() section has elements left to take.
  void finish() {
    start_call("finish");
    const auto h = read_header("the trailer");
    if (!h.end) fail("expected the end of the archive, found another section '" + h.name + "'");
    check_trailer();
  }

  /// Reads the whole archive at `path` without interpreting it: every section header, the
  /// checksum and the end. Throws as the constructor and finish() do. For checking a file before
  /// anything is restored from it (a second pass over the file).
  static void verify(const std::filesystem::path& path) {
    archive_reader in(path);
    in.broken_ = true;
    for (;;) {
      const auto h = in.read_header("the next section");
      if (h.end) break;
      in.discard(h.count * h.element_size, h.name);  // checked against the file size by read_header
    }
    in.check_trailer();
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// The file's size in bytes, and how many have been consumed so far.
  [[nodiscard]] std::uint64_t size() const noexcept { return file_size_; }
  [[nodiscard]] std::uint64_t position() const noexcept { return offset_; }
  [[nodiscard]] bool finished() const noexcept { return finished_; }

private:
  /// After the trailer's marker: the stored checksum against the computed one, then the end of the file.
  void check_trailer() {
    const std::uint64_t computed = hash_.digest();
    std::uint64_t stored = 0;
    get(&stored, sizeof stored, "the trailer", /*hashed=*/false);
    if (stored != computed)
      fail("is corrupt: its checksum is " + hex(stored) + " but its contents hash to " + hex(computed));
    if (offset_ != file_size_ || more_bytes())
      fail("has bytes after the end of the archive (byte " + std::to_string(offset_) + " on)");
    finished_ = true;
    broken_ = false;
  }

  struct section_header {
    bool end = false;  // the trailer, not a section
    std::string name;
    detail::archive::element_type type = detail::archive::element_type::bytes;
    std::uint64_t element_size = 0;
    std::uint64_t count = 0;
  };

  void check_usable(const char* member) const {
    if (broken_ || fd_ < 0)
      throw invalid_argument(std::string("hydra::archive_reader::") + member + ": the reader of " +
                             detail::archive::quoted(path_) + " is unusable after an earlier error");
    if (finished_)
      throw invalid_argument(std::string("hydra::archive_reader::") + member + ": the reader of " +
                             detail::archive::quoted(path_) + " has already finished");
  }
  /// Marks the reader broken until the call completes, so that an error half-way leaves it unusable.
  void start_call(const char* member) {
    check_usable(member);
    if (!array_.name.empty())
      throw invalid_argument(std::string("hydra::archive_reader::") + member + ": section '" + array_.name +
                             "' of " + detail::archive::quoted(path_) + " still has " +
                             std::to_string(array_.remaining) + " of its " + std::to_string(array_.count) +
                             " elements to take");
    broken_ = true;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw format_error("hydra::archive_reader: " + detail::archive::quoted(path_) + " " + what);
  }

  static std::string hex(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s = "0x";
    for (int shift = 60; shift >= 0; shift -= 4) s += digits[(v >> shift) & 0xF];
    return s;
  }

  static std::string describe(std::string_view name, detail::archive::element_type type, std::uint64_t element_size,
                              std::uint64_t count) {
    return "'" + std::string(name) + "' (" + detail::archive::describe_type(type, element_size) + ", " +
           std::to_string(count) + (count == 1 ? " element)" : " elements)");
  }

  [[noreturn]] void mismatch(std::string_view name, detail::archive::element_type type, std::uint64_t element_size,
                             std::uint64_t count, const section_header& found) const {
    fail("expected section " + describe(name, type, element_size, count) + ", found " +
         describe(found.name, found.type, found.element_size, found.count));
  }

  /// The next section's header, checked for name, element type and size (not count).
  section_header next_section(std::string_view name, detail::archive::element_type type, std::uint64_t element_size) {
    auto h = read_header(name);
    if (h.end)
      fail("expected section '" + std::string(name) + "' (" + detail::archive::describe_type(type, element_size) +
           "), found the end of the archive");
    if (h.name != name || h.type != type || h.element_size != element_size)
      fail("expected section '" + std::string(name) + "' (" + detail::archive::describe_type(type, element_size) +
           "), found " + describe(h.name, h.type, h.element_size, h.count));
    return h;
  }

  /// Reads a section header (or the trailer's marker). Every field is checked before it is used:
  /// a known element type with its size, a name of at most 4096 bytes, and a payload that fits in
  /// what is left of the file — so a corrupt count can never size an allocation or a read.
  section_header read_header(std::string_view expected) {
    using namespace detail::archive;
    section_header h;
    const auto marker = get_value<std::uint32_t>(expected);
    if (marker == end_marker) {
      h.end = true;
      return h;
    }
    if (marker != section_marker)
      fail("is corrupt: no section marker at byte " + std::to_string(offset_ - 4) + " (expecting '" +
           std::string(expected) + "')");
    const auto length = get_value<std::uint32_t>(expected);
    if (length == 0 || length > max_name_length)
      fail("is corrupt: a section name of " + std::to_string(length) + " bytes at byte " +
           std::to_string(offset_ - 4) + " (expecting '" + std::string(expected) + "')");
    h.name.resize(length);
    get(h.name.data(), length, expected);
    const auto tag = get_value<std::uint32_t>(h.name);
    if (tag >= element_type_count)
      fail("is corrupt: section '" + h.name + "' has the unknown element type " + std::to_string(tag));
    h.type = static_cast<element_type>(tag);
    h.element_size = get_value<std::uint32_t>(h.name);
    if (h.type == element_type::bytes ? h.element_size == 0 : h.element_size != size_of(h.type))
      fail("is corrupt: section '" + h.name + "' has " + name_of(h.type) + " elements of " +
           std::to_string(h.element_size) + " bytes");
    h.count = get_value<std::uint64_t>(h.name);
    const std::uint64_t left = file_size_ - offset_;
    if (h.count > left / h.element_size)
      fail("is truncated in section '" + h.name + "': it declares " + std::to_string(h.count) + " elements of " +
           std::to_string(h.element_size) + " bytes, but only " + std::to_string(left) + " bytes follow");
    return h;
  }

  /// n elements into out. A bool is read through a byte and must be 0 or 1: any other byte in a
  /// bool's storage would be undefined behaviour.
  template <class T>
  void get_elements(T* out, std::size_t n, std::string_view section) {
    if constexpr (std::same_as<T, bool>) {
      for (std::size_t i = 0; i < n; ++i) out[i] = read_bool(section);
    } else {
      get(out, n * sizeof(T), section);
    }
  }
  bool read_bool(std::string_view section) {
    const auto b = get_value<std::uint8_t>(section);
    if (b > 1) fail("is corrupt: " + section_name(section) + " holds a bool byte " + std::to_string(b));
    return b == 1;
  }

  template <class U>
  U get_value(std::string_view section) {
    U v;
    get(&v, sizeof v, section);
    return v;
  }

  /// Exactly n bytes into dst, checksummed unless told otherwise; a file that ends first is a
  /// format_error naming the section ("truncated").
  void get(void* dst, std::uint64_t n, std::string_view section, bool hashed = true) {
    if (n == 0) return;  // an empty destination's pointer may be null
    if (n > file_size_ - offset_)
      fail("is truncated in " + section_name(section) + ": " + std::to_string(n) + " more bytes needed at byte " +
           std::to_string(offset_) + ", the file has " + std::to_string(file_size_ - offset_) + " left");
    auto* out = static_cast<std::byte*>(dst);
    std::uint64_t left = n;
    const std::size_t from_buffer = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer_end_ - buffer_pos_));
    if (from_buffer > 0) {
      std::memcpy(out, buffer_.data() + buffer_pos_, from_buffer);
      buffer_pos_ += from_buffer;
      out += from_buffer;
      left -= from_buffer;
    }
    if (left >= buffer_.size()) {  // a large payload: straight into its destination
      read_fully(out, static_cast<std::size_t>(left), section);
    } else if (left > 0) {
      refill(section);
      if (buffer_end_ < left) truncated_while_reading(section);
      std::memcpy(out, buffer_.data(), static_cast<std::size_t>(left));
      buffer_pos_ = static_cast<std::size_t>(left);
    }
    if (hashed) hash_.update(dst, static_cast<std::size_t>(n));
    offset_ += n;
  }

  /// Like get() without a destination, for skip().
  void discard(std::uint64_t n, std::string_view section) {
    while (n > 0) {
      if (buffer_pos_ == buffer_end_) refill(section);
      if (buffer_end_ == 0) truncated_while_reading(section);
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, buffer_end_ - buffer_pos_));
      hash_.update(buffer_.data() + buffer_pos_, k);
      buffer_pos_ += k;
      offset_ += k;
      n -= k;
    }
  }

  void refill(std::string_view section) {
    buffer_pos_ = 0;
    buffer_end_ = 0;
    while (buffer_end_ < buffer_.size()) {
      const ssize_t r = ::read(fd_, buffer_.data() + buffer_end_, buffer_.size() - buffer_end_);
      if (r < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        throw io_error("hydra::archive_reader: cannot read " + detail::archive::quoted(path_) + " in " +
                       section_name(section) + ": " + detail::archive::system_message(err));
      }
      if (r == 0) break;
      buffer_end_ += static_cast<std::size_t>(r);
    }
  }

  void read_fully(std::byte* out, std::size_t n, std::string_view section) {
    while (n > 0) {
      const ssize_t r = ::read(fd_, out, std::min<std::size_t>(n, std::size_t(1) << 30));
      if (r < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        throw io_error("hydra::archive_reader: cannot read " + detail::archive::quoted(path_) + " in " +
                       section_name(section) + ": " + detail::archive::system_message(err));
      }
      if (r == 0) truncated_while_reading(section);
      out += r;
      n -= static_cast<std::size_t>(r);
    }
  }

  /// The file shrank after it was opened.
  [[noreturn]] void truncated_while_reading(std::string_view section) const {
    fail("is truncated in " + section_name(section) + ": the file ended while it was being read");
  }

  /// Whether anything follows the bytes consumed so far (buffered or still in the file).
  bool more_bytes() {
    if (buffer_pos_ < buffer_end_) return true;
    std::byte b;
    for (;;) {
      const ssize_t r = ::read(fd_, &b, 1);
      if (r < 0 && errno == EINTR) continue;
      return r > 0;
    }
  }

  static std::string section_name(std::string_view section) {
    if (section.starts_with("the ")) return std::string(section);
    return "section '" + std::string(section) + "'";
  }

  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t file_size_ = 0;
  std::uint64_t offset_ = 0;  // bytes consumed
  std::vector<std::byte> buffer_;
  std::size_t buffer_pos_ = 0;
  std::size_t buffer_end_ = 0;
  detail::archive::checksum64 hash_;
  detail::archive::open_array array_;
  bool finished_ = false;
  bool broken_ = true;
};

} // namespace hydra
