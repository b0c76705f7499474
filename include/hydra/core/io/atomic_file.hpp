#pragma once
// detail::atomic_file: a file written under a temporary name and renamed into place by commit(),
// the one mechanism behind every file hydra replaces — checkpoints and other archives
// (archive_writer.hpp) and .npy outputs (data/npy.hpp, save_npy). Its failure modes are tested by
// injecting them (tests/core/io/archive_faults.test.cpp, tests/data/npy_faults.test.cpp).

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "hydra/core/error.hpp"
#include "hydra/core/io/archive_format.hpp"

namespace hydra {

namespace detail {

/// A file written under a temporary name and given its final name by commit(), so that the final
/// name holds either what it held before or the complete new contents whenever the process or the
/// machine stops. Writes go to `path + ".tmp"` (created, or truncated when a killed process left
/// one behind); commit() fsyncs and closes it, renames it to `path` and fsyncs the directory.
/// Until the rename the destructor closes and deletes the .tmp file; `path` is never touched
/// before it. Every failure is a hydra::io_error of one line: `who`, what failed, the file, and
/// the system's reason (ENOSPC: "No space left on device"). Move-only; not thread-safe.
class atomic_file {
public:
  /// Throws hydra::io_error naming `path + ".tmp"` when it cannot be created.
  atomic_file(std::filesystem::path path, std::string who) : path_(std::move(path)), who_(std::move(who)) {
    temporary_ = path_;
    temporary_ += ".tmp";
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int err = errno;
      fail("cannot create", temporary_, err);
    }
    owner_ = true;
  }
  atomic_file(atomic_file&& other) noexcept
      : path_(std::move(other.path_)),
        temporary_(std::move(other.temporary_)),
        who_(std::move(other.who_)),
        fd_(std::exchange(other.fd_, -1)),
        renamed_(other.renamed_),
        owner_(std::exchange(other.owner_, false)) {}
  atomic_file& operator=(atomic_file&&) = delete;
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  /// Without a successful commit(): closes and deletes the .tmp file. Never touches path().
  ~atomic_file() {
    if (fd_ >= 0) ::close(fd_);
    if (owner_ && !renamed_) ::unlink(temporary_.c_str());
  }

  /// Writes all n bytes: after a short write (a signal, a disk that fills up mid-call) the next
  /// call goes on where it stopped, EINTR retries; any other error throws hydra::io_error naming
  /// the .tmp file. Not after commit().
  void write(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::byte*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, std::min<std::size_t>(n, std::size_t(1) << 30));
      if (w < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        fail("cannot write", temporary_, err);
      }
      if (w == 0)  // never for a regular file; retrying could spin for ever
        throw io_error(who_ + ": cannot write " + archive::quoted(temporary_) + ": the system wrote 0 of " +
                       std::to_string(n) + " bytes");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  /// fsync, close, rename to path(), fsync of the directory. When it throws, path() is unchanged
  /// unless renamed() is true: then only the directory's fsync failed, path() holds the new
  /// contents, and whether the rename survives a power loss is unknown.
  void commit() {
    if (::fsync(fd_) != 0) {
      const int err = errno;
      fail("cannot fsync", temporary_, err);
    }
    // Linux releases the descriptor whatever close() returns; after EINTR the data is already
    // on disk (fsync above), so only the other errors mean the file may be incomplete.
    if (::close(std::exchange(fd_, -1)) != 0) {
      const int err = errno;
      if (err != EINTR) fail("cannot close", temporary_, err);
    }
    if (::rename(temporary_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      fail("cannot rename " + archive::quoted(temporary_) + " to", path_, err);
    }
    renamed_ = true;
    sync_directory();
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return temporary_; }
  /// Whether commit() has renamed the file into place (it may still have thrown afterwards).
  [[nodiscard]] bool renamed() const noexcept { return renamed_; }

private:
  /// Makes the rename durable. File systems that cannot fsync a directory (EINVAL, ENOTSUP) have
  /// nothing more to offer, so that is not an error.
  void sync_directory() {
    const std::filesystem::path dir = path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path();
    const std::string after = " after renaming " + archive::quoted(temporary_) + " to " + archive::quoted(path_);
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      fail("cannot open the directory", dir, err, after);
    }
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL && err != ENOTSUP) fail("cannot fsync the directory", dir, err, after);
  }

  [[noreturn]] void fail(const std::string& what, const std::filesystem::path& file, int err,
                         const std::string& context = {}) const {
    throw io_error(who_ + ": " + what + " " + archive::quoted(file) + context + ": " + archive::system_message(err));
  }

  std::filesystem::path path_;
  std::filesystem::path temporary_;
  std::string who_;
  int fd_ = -1;
  bool renamed_ = false;
  bool owner_ = false;  // false when moved from: the .tmp file is another object's
};

} // namespace detail

} // namespace hydra
