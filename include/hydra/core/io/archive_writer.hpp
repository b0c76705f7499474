#pragma once
// hydra::archive_writer: writes a sequential binary file of named, typed sections, the format of
// every hydra checkpoint (layout in core/io/archive_format.hpp). Writing is atomic: everything
// goes to `path.tmp`, and only commit() (fsync, rename, fsync of the directory) makes it `path`,
// so a crash at any moment leaves either the previous archive or the new one, complete (the
// mechanism is detail::atomic_file, core/io/atomic_file.hpp, which also writes save_npy's files).

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
#include "hydra/core/io/atomic_file.hpp"
#include "hydra/core/io/checksum.hpp"

namespace hydra {

/// Writes an archive to `path + ".tmp"`; commit() makes it `path`. Sections are written in order,
/// each with a name the reader checks. Not thread-safe; move-constructible, not copyable.
class archive_writer {
public:
  /// Creates (truncating) `path + ".tmp"`. Throws hydra::io_error naming that file when it cannot
  /// be created. `path` itself is not touched before commit().
  explicit archive_writer(std::filesystem::path path)
      : file_(std::move(path), "hydra::archive_writer"), buffer_(detail::archive::buffer_size) {
    state_ = state::open;
    using namespace detail::archive;
    put(magic, sizeof magic);
    put_value(byte_order_marker);
    put_value(format_version);
  }

  archive_writer(archive_writer&& other) noexcept
      : file_(std::move(other.file_)),
        buffer_(std::move(other.buffer_)),
        used_(std::exchange(other.used_, 0)),
        hash_(other.hash_),
        array_(std::move(other.array_)),
        state_(std::exchange(other.state_, state::moved_from)) {}
  archive_writer& operator=(archive_writer&&) = delete;
  archive_writer(const archive_writer&) = delete;
  archive_writer& operator=(const archive_writer&) = delete;

  /// Without a successful commit(): closes and deletes the .tmp file. Never touches path().
  ~archive_writer() = default;

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
                             " bytes overflows 64 bits (" + detail::archive::quoted(file_.temporary_path()) + ")");
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
                             detail::archive::quoted(file_.temporary_path()) + ")");
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
  /// path() is unchanged, unless only the final directory fsync failed: then committed() is true,
  /// path() holds this archive and the message names the directory).
  void commit() {
    start_call("commit");
    using namespace detail::archive;
    put_value(end_marker);
    put_raw_value(hash_.digest());
    flush();
    try {
      file_.commit();
    } catch (...) {
      if (file_.renamed()) state_ = state::committed;  // the new archive is in place: nothing to delete
      throw;
    }
    state_ = state::committed;
  }

  /// The archive's final path (the writer writes to path() + ".tmp" until commit()).
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return file_.path(); }
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return file_.temporary_path(); }
  [[nodiscard]] bool committed() const noexcept { return state_ == state::committed; }

private:
  enum class state { open, failed, committed, moved_from };


  void check_usable(const char* member) const {
    if (state_ == state::open) return;
    const char* why = state_ == state::committed ? "after commit()"
                      : state_ == state::failed  ? "after an earlier error"
                                                 : "after being moved from";
    throw invalid_argument(std::string("hydra::archive_writer::") + member + ": the writer of " +
                           detail::archive::quoted(file_.path()) + " is unusable " + why);
  }

  /// Every member that writes marks the writer failed first and open again when it completes, so
  /// that an exception half-way (a full disk) leaves it unusable rather than inconsistent.
  void start_call(const char* member) {
    check_usable(member);
    if (!array_.name.empty())
      throw invalid_argument(std::string("hydra::archive_writer::") + member + ": section '" + array_.name +
                             "' was declared with " + std::to_string(array_.count) + " elements but only " +
                             std::to_string(array_.count - array_.remaining) + " were appended (" +
                             detail::archive::quoted(file_.temporary_path()) + ")");
    state_ = state::failed;
  }
  void finish_call() noexcept { state_ = state::open; }

  void start_section(const char* member, std::string_view name, detail::archive::element_type type,
                     std::uint64_t element_size, std::uint64_t count) {
    check_usable(member);
    if (name.empty() || name.size() > detail::archive::max_name_length)
      throw invalid_argument(std::string("hydra::archive_writer::") + member + ": a section name must have 1 to " +
                             std::to_string(detail::archive::max_name_length) + " bytes, got " +
                             std::to_string(name.size()) + " (" + detail::archive::quoted(file_.temporary_path()) + ")");
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
      file_.write(p, n);
      return;
    }
    if (used_ + n > buffer_.size()) flush();
    std::memcpy(buffer_.data() + used_, p, n);
    used_ += n;
  }
  void flush() {
    file_.write(buffer_.data(), used_);
    used_ = 0;
  }

  detail::atomic_file file_;
  std::vector<std::byte> buffer_;
  std::size_t used_ = 0;
  detail::archive::checksum64 hash_;
  detail::archive::open_array array_;
  state state_ = state::failed;
};

} // namespace hydra
