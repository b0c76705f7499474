#pragma once
// hydra::archive_reader: reads a file written by hydra::archive_writer (layout in
// core/io/archive_format.hpp) section by section. Reading checks every section's name, element
// type and count against what the caller expects, never reads past the end or allocates from an
// unchecked count, and finish() verifies a 64-bit checksum over the whole file.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hydra/core/error.hpp"
#include "hydra/core/io/archive_format.hpp"
#include "hydra/core/io/checksum.hpp"

namespace hydra {

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
