#pragma once
// In-process fault injection for the tests of hydra's file writes (checkpoints, state stores,
// .npy outputs): the test executable itself defines the libc functions that write files —
// open, write, writev, fsync, fdatasync, close, rename, posix_fallocate — with C linkage. The
// definitions of an executable come first in the dynamic linker's lookup, so hydra's inline code,
// libstdc++ (std::ofstream writes through write/writev) and everything else in the process call
// these; they forward to the real functions (dlsym(RTLD_NEXT): under ASan its interceptor, which
// forwards to libc), unless a fault is armed:
//
//   {
//     auto armed = hydra::test::faults::arm({.calls = faults::call::write, .nth = 3, .error = ENOSPC});
//     ...  // the third write() on a file from here fails with ENOSPC, the others succeed
//   }      // disarmed
//
// A fault fails the nth matching call with an errno (or every one from the nth on: a disk that
// stays full), makes a write short (writes fewer bytes than asked and says so: the caller must
// loop), or SIGKILLs the process just before the call (in a forked child: a crash at that
// boundary). faults::count(calls) arms nothing and counts, so a test learns how many matching
// calls a clean run makes and can then fail each one in turn.
//
// Only calls on descriptors above 2 count (doctest reports to stdout and stderr); open and rename
// count by path, optionally only paths containing `path_part`. libc's own internal calls (stdio's
// fopen and fclose, for instance, so std::ifstream and std::ofstream's open and close) bypass the
// symbols and are not seen; std::ofstream's writes are (write, writev).
//
// The definitions are in this header: include it in exactly one translation unit of a test
// executable (each tests/<component>/<name>.test.cpp is an executable of its own; a second
// inclusion is a duplicate-symbol error at link time). Linux with glibc; not thread-safe
// (arm and disarm while no other thread writes files).

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace hydra::test::faults {

/// The functions a fault can target; combine with |.
enum class call : unsigned {
  none = 0,
  open = 1u << 0,
  write = 1u << 1,
  writev = 1u << 2,
  fsync = 1u << 3,
  fdatasync = 1u << 4,
  close = 1u << 5,
  rename = 1u << 6,
  posix_fallocate = 1u << 7,
};
[[nodiscard]] constexpr call operator|(call a, call b) noexcept {
  return static_cast<call>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
[[nodiscard]] constexpr bool includes(call set, call c) noexcept {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(c)) != 0;
}

/// Both ways of writing bytes.
inline constexpr call writes = call::write | call::writev;
/// Every call on the way of bytes to a file's final name: the boundaries at which a process may die.
inline constexpr call boundaries =
    call::open | call::write | call::writev | call::fsync | call::fdatasync | call::close | call::rename;

enum class effect {
  count_only,   ///< nothing: the calls are only counted
  fail,         ///< the call does nothing and fails with `error` (close: closes, then fails, as Linux does)
  short_write,  ///< write/writev write `short_bytes` (default: half the request, at least 1) and return that
  kill,         ///< SIGKILL just before the call
};

struct fault {
  call calls = call::none;         ///< which functions count
  long nth = 1;                    ///< the first affected call, counting matching calls from 1 after arm()
  effect what = effect::fail;
  int error = EIO;                 ///< fail: the errno (posix_fallocate returns it instead)
  bool repeat = false;             ///< every matching call from the nth on, not only the nth
  long short_bytes = -1;           ///< short_write: bytes written; -1: half the request (at least 1)
  const char* path_part = "";      ///< open, rename: only paths containing this count (empty: all); a literal
};

namespace detail {

struct injector {
  std::atomic<bool> active{false};
  fault spec;
  std::atomic<long> seen{0};  // matching calls since arm()
  std::atomic<long> hits{0};  // calls the fault affected
};

inline injector& global() noexcept {
  static injector state;
  return state;
}

enum class verdict { pass, fail, short_write, kill };

/// What to do with a call of `c` on descriptor `fd` (-1: a call by path) or paths `a`, `b`.
inline verdict decide(call c, int fd, const char* a = nullptr, const char* b = nullptr) noexcept {
  injector& s = global();
  if (!s.active.load(std::memory_order_acquire) || !includes(s.spec.calls, c)) return verdict::pass;
  if (fd >= 0 && fd <= 2) return verdict::pass;
  if (fd < 0 && s.spec.path_part != nullptr && *s.spec.path_part != '\0') {
    const char* part = s.spec.path_part;
    const bool in_a = a != nullptr && std::strstr(a, part) != nullptr;
    const bool in_b = b != nullptr && std::strstr(b, part) != nullptr;
    if (!in_a && !in_b) return verdict::pass;
  }
  const long k = ++s.seen;
  if (s.spec.what == effect::count_only) return verdict::pass;
  if (k != s.spec.nth && !(s.spec.repeat && k > s.spec.nth)) return verdict::pass;
  verdict v = verdict::pass;
  switch (s.spec.what) {
    case effect::fail: v = verdict::fail; break;
    case effect::short_write: v = c == call::write || c == call::writev ? verdict::short_write : verdict::pass; break;
    case effect::kill: v = verdict::kill; break;
    case effect::count_only: break;
  }
  if (v != verdict::pass) ++s.hits;
  return v;
}

/// The bytes a short write writes out of `requested`.
inline std::size_t short_length(std::size_t requested) noexcept {
  const long fixed = global().spec.short_bytes;
  if (fixed >= 0) return std::min(requested, static_cast<std::size_t>(fixed));
  return requested <= 1 ? requested : requested / 2;
}

[[noreturn]] inline void die() noexcept {
  ::raise(SIGKILL);
  for (;;) ::pause();
}

/// The next definition of `name` after this executable's: the sanitizer's interceptor, or libc's.
template <class F>
F next(const char* name) noexcept {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "support/fault_injection.hpp: dlsym(RTLD_NEXT) found no definition of %s\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

} // namespace detail

/// A fault armed from construction to destruction. One at a time (std::logic_error otherwise).
class armed {
public:
  explicit armed(fault f) {
    auto& s = detail::global();
    if (s.active.load()) throw std::logic_error("support/fault_injection.hpp: a fault is already armed");
    if (f.nth < 1) throw std::logic_error("support/fault_injection.hpp: nth counts from 1");
    s.spec = std::move(f);
    s.seen = 0;
    s.hits = 0;
    s.active.store(true, std::memory_order_release);
  }
  ~armed() { detail::global().active.store(false, std::memory_order_release); }
  armed(const armed&) = delete;
  armed& operator=(const armed&) = delete;

  /// Matching calls since arm(), the affected ones included.
  [[nodiscard]] long calls() const noexcept { return detail::global().seen.load(); }
  /// How many calls the fault affected (0: the run made fewer than nth matching calls).
  [[nodiscard]] long hits() const noexcept { return detail::global().hits.load(); }
};

[[nodiscard]] inline armed arm(fault f) { return armed(std::move(f)); }

/// Counts the matching calls of a clean run (calls()).
[[nodiscard]] inline armed count(call calls, const char* path_part = "") {
  return armed({.calls = calls, .what = effect::count_only, .path_part = path_part});
}

/// errno's text as hydra's messages spell it (std::generic_category, which is strerror's).
[[nodiscard]] inline std::string text_of(int error) { return std::strerror(error); }

/// A file's bytes (empty when it does not exist): what a failed write must leave unchanged.
inline std::string bytes_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The temporary file atomic_file writes before renaming it to `file` (core/io/atomic_file.hpp).
inline std::filesystem::path tmp_of(const std::filesystem::path& file) {
  return std::filesystem::path(file.string() + ".tmp");
}

} // namespace hydra::test::faults

// ---- the interposed functions ------------------------------------------------------------------
// Declared by glibc's headers with these exact signatures (rename with __THROW, which is noexcept
// in C++). Each one asks decide() and forwards to the next definition.

extern "C" {

int open(const char* path, int flags, ...) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<int (*)(const char*, int, ...)>("open");
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list args;
    va_start(args, flags);
    mode = static_cast<mode_t>(va_arg(args, unsigned));
    va_end(args);
  }
  switch (decide(hydra::test::faults::call::open, -1, path)) {
    case verdict::fail: errno = global().spec.error; return -1;
    case verdict::kill: die();
    default: break;
  }
  return real(path, flags, mode);
}

ssize_t write(int fd, const void* data, size_t n) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  switch (decide(hydra::test::faults::call::write, fd)) {
    case verdict::fail: errno = global().spec.error; return -1;
    case verdict::kill: die();
    case verdict::short_write: {
      const std::size_t part = short_length(n);
      return part == 0 ? 0 : real(fd, data, part);
    }
    case verdict::pass: break;
  }
  return real(fd, data, n);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<ssize_t (*)(int, const struct iovec*, int)>("writev");
  switch (decide(hydra::test::faults::call::writev, fd)) {
    case verdict::fail: errno = global().spec.error; return -1;
    case verdict::kill: die();
    case verdict::short_write: {
      std::size_t total = 0;
      for (int i = 0; i < count; ++i) total += iov[i].iov_len;
      std::size_t left = short_length(total);
      if (left == 0) return 0;
      std::vector<struct iovec> part;
      for (int i = 0; i < count && left > 0; ++i) {
        const std::size_t len = std::min(left, iov[i].iov_len);
        part.push_back({iov[i].iov_base, len});
        left -= len;
      }
      return real(fd, part.data(), static_cast<int>(part.size()));
    }
    case verdict::pass: break;
  }
  return real(fd, iov, count);
}

int fsync(int fd) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<int (*)(int)>("fsync");
  switch (decide(hydra::test::faults::call::fsync, fd)) {
    case verdict::fail: errno = global().spec.error; return -1;
    case verdict::kill: die();
    default: break;
  }
  return real(fd);
}

int fdatasync(int fd) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<int (*)(int)>("fdatasync");
  switch (decide(hydra::test::faults::call::fdatasync, fd)) {
    case verdict::fail: errno = global().spec.error; return -1;
    case verdict::kill: die();
    default: break;
  }
  return real(fd);
}

int close(int fd) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<int (*)(int)>("close");
  switch (decide(hydra::test::faults::call::close, fd)) {
    case verdict::fail: {  // Linux releases the descriptor even when close reports an error
      const int error = global().spec.error;
      real(fd);
      errno = error;
      return -1;
    }
    case verdict::kill: die();
    default: break;
  }
  return real(fd);
}

int rename(const char* from, const char* to) noexcept {
  using namespace hydra::test::faults::detail;
  static const auto real = next<int (*)(const char*, const char*)>("rename");
  switch (decide(hydra::test::faults::call::rename, -1, from, to)) {
    case verdict::fail: errno = global().spec.error; return -1;
    case verdict::kill: die();
    default: break;
  }
  return real(from, to);
}

int posix_fallocate(int fd, off_t offset, off_t length) {
  using namespace hydra::test::faults::detail;
  static const auto real = next<int (*)(int, off_t, off_t)>("posix_fallocate");
  switch (decide(hydra::test::faults::call::posix_fallocate, fd)) {
    case verdict::fail: return global().spec.error;  // returns the error, leaves errno alone
    case verdict::kill: die();
    default: break;
  }
  return real(fd, offset, length);
}

} // extern "C"
