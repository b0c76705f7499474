#pragma once
// hydra::directory_lock: one process at a time in a directory (a checkpoint directory, a scratch
// directory of mapped states). The lock is flock(LOCK_EX | LOCK_NB) on `<directory>/hydra.lock`,
// which holds the PID of its holder for the messages of those refused.
//
// Stale locks need no detection of their own: a flock lock belongs to the open file description,
// and the kernel drops it when the last descriptor of it closes, which includes the death of the
// process by any signal. A hydra.lock left behind by a killed process is therefore an unlocked
// file, and the next process simply takes it (and writes its own PID into it). The descriptor is
// opened O_CLOEXEC, so a program the holder starts does not keep the lock alive after it.
//
// A holder that releases the lock deletes hydra.lock while it still holds it; a process that was
// waiting for that file's lock and gets it afterwards finds the path gone or naming another file,
// and starts again from open(). So the file at the path is the one whose lock counts.
//
// flock is advisory (processes that do not take it are not stopped) and local: on NFS it is
// emulated with POSIX byte-range locks or not at all, depending on the mount.

#if !__has_include(<sys/file.h>) || !__has_include(<unistd.h>)
#error "hydra/core/io/directory_lock.hpp needs POSIX flock() (<sys/file.h>, <unistd.h>); hydra's directory locks are not available on this platform"
#endif

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hydra/core/error.hpp"

namespace hydra {

/// The directory is locked by another process (or by another directory_lock of this one).
/// holder() is the PID written in the lock file, 0 when it could not be read (the holder had not
/// written it yet).
class directory_busy : public io_error {
public:
  directory_busy(const std::string& message, std::filesystem::path directory, long holder)
      : io_error(message), directory_(std::move(directory)), holder_(holder) {}
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] long holder() const noexcept { return holder_; }

private:
  std::filesystem::path directory_;
  long holder_;
};

/// An exclusive lock on a directory, held from construction to destruction (or release()).
/// Movable, not copyable. Not a lock between threads of one process that share the object; two
/// directory_lock objects on one directory conflict even within a process.
class directory_lock {
public:
  /// The lock file inside the directory.
  static constexpr const char* file_name = "hydra.lock";

  /// Takes the lock on `directory`, which must exist, without waiting. Throws hydra::directory_busy
  /// when another holder has it (the message names the directory and the holder's PID), and
  /// hydra::io_error naming the lock file when it cannot be created or locked.
  explicit directory_lock(std::filesystem::path directory)
      : directory_(std::move(directory)), file_(directory_ / file_name) {
    for (;;) {
      fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      if (fd_ < 0) fail("cannot create", errno);
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EINTR) {
          close_fd();
          continue;
        }
        if (err == EWOULDBLOCK) {
          const long holder = read_holder(fd_);
          close_fd();
          throw directory_busy("hydra::directory_lock: " + quoted(directory_) + " is in use by " +
                                   (holder > 0 ? "process " + std::to_string(holder) : std::string("another process")) +
                                   " (it holds " + quoted(file_) + ")",
                               directory_, holder);
        }
        fail("cannot lock", err);
      }
      if (still_at_path()) break;
      close_fd();  // its holder deleted it while we waited for its lock: start again
    }
    const std::string pid = std::to_string(static_cast<long>(::getpid())) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
      fail("cannot write the PID into", errno);
  }

  directory_lock(directory_lock&& other) noexcept
      : directory_(std::move(other.directory_)), file_(std::move(other.file_)), fd_(std::exchange(other.fd_, -1)) {}
  directory_lock& operator=(directory_lock&& other) noexcept {
    if (this != &other) {
      release();
      directory_ = std::move(other.directory_);
      file_ = std::move(other.file_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  directory_lock(const directory_lock&) = delete;
  directory_lock& operator=(const directory_lock&) = delete;

  ~directory_lock() { release(); }

  /// Deletes the lock file (while still holding it) and unlocks. Idempotent.
  void release() noexcept {
    if (fd_ < 0) return;
    if (still_at_path()) ::unlink(file_.c_str());
    close_fd();
  }

  [[nodiscard]] bool held() const noexcept { return fd_ >= 0; }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }

  /// The PID written in `<directory>/hydra.lock`, 0 when there is none or it cannot be read. For
  /// messages only: the lock itself, not this number, decides who holds the directory.
  [[nodiscard]] static long holder_of(const std::filesystem::path& directory) {
    const int fd = ::open((directory / file_name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const long pid = read_holder(fd);
    ::close(fd);
    return pid;
  }

private:
  [[nodiscard]] static std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

  /// The decimal PID at the start of the file behind fd; 0 when absent or unreadable.
  static long read_holder(int fd) noexcept {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    long pid = 0;
    for (ssize_t k = 0; k < n && text[k] >= '0' && text[k] <= '9'; ++k) {
      if (pid > 100000000L) return 0;  // not a PID
      pid = pid * 10 + (text[k] - '0');
    }
    return pid;
  }

  /// Whether the file open as fd_ is still the one named file_ (a releasing holder unlinks it).
  [[nodiscard]] bool still_at_path() const noexcept {
    struct stat open_file {}, named {};
    if (::fstat(fd_, &open_file) != 0 || ::stat(file_.c_str(), &named) != 0) return false;
    return open_file.st_dev == named.st_dev && open_file.st_ino == named.st_ino;
  }

  void close_fd() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  [[noreturn]] void fail(const char* what, int err) {
    close_fd();
    throw io_error(std::string("hydra::directory_lock: ") + what + " " + quoted(file_) + ": " +
                   std::generic_category().message(err));
  }

  std::filesystem::path directory_;
  std::filesystem::path file_;
  int fd_ = -1;
};

} // namespace hydra
