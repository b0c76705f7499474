#pragma once
// hydra::archive_writer: writes a sequential binary file of named, typed sections, the format of
// every hydra checkpoint (layout in core/io/archive_format.hpp). Writing is atomic: everything
// goes to `path.tmp`, and only commit() (fsync, rename, fsync of the directory) makes it `path`,
// so a crash at any moment leaves either the previous archive or the new one, complete.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "hydra/core/error.hpp"
#include "hydra/core/io/archive_format.hpp"
#include "hydra/core/io/checksum.hpp"

namespace hydra {

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

} // namespace hydra
