#pragma once
// Where the tracker keeps its two n × P states (dv/dε_i and ∇_i, one row per tracked sample):
// memory, or a memory-mapped scratch file for states larger than RAM. On a host backend, memory is
// an anonymous mapping with transparent huge pages requested: gigabytes of states then cost a
// page fault per 2 MiB instead of per 4 KiB (measured: 13 s to zero 8 GB of 4 KiB pages on our
// virtual machines), are zero without a memset, and are touched only when first written. The file is
// reserved in full up front (posix_fallocate), so running out of disk is an error at
// construction instead of a SIGBUS mid-run, and it is unlinked as soon as it is mapped, so
// nothing is left behind by a crash. With the lazy update only the rows of one batch are touched
// per step; release() hands their pages back so that resident memory stays bounded.

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"

namespace hydra {

template <Scalar T, class B>
class state_store {
public:
  state_store() = default;

  /// Both states in memory, zeroed.
  state_store(index rows, index cols) : rows_(rows), cols_(cols) {
    if constexpr (B::host_accessible) {
      if (rows < 0 || cols < 0) throw invalid_argument("state_store: negative shape");
      bytes_ = 2 * static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(T);
      if (bytes_ == 0) return;
      void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED)
        throw allocation_error("state_store: cannot allocate " + std::to_string(bytes_) + " bytes for the states: " +
                               std::strerror(errno));
      ::madvise(p, bytes_, MADV_HUGEPAGE);  // a request; without THP the mapping works with 4 KiB pages
      mapped_ = static_cast<T*>(p);
    } else {
      memory_dv_ = matrix<T, B>(rows, cols);
      memory_grad_ = matrix<T, B>(rows, cols);
    }
  }

  /// Both states in one file created in `directory` and mapped (host-accessible backends only).
  state_store(const std::filesystem::path& directory, index rows, index cols)
    requires(B::host_accessible)
      : rows_(rows), cols_(cols) {
    if (rows < 0 || cols < 0) throw invalid_argument("state_store: negative shape");
    bytes_ = 2 * static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(T);
    if (bytes_ == 0) return;
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) throw io_error("state_store: cannot create the state directory " + directory.string() + ": " + ec.message());
    struct statvfs fs {};
    if (::statvfs(directory.c_str(), &fs) == 0) {
      const double available = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
      if (static_cast<double>(bytes_) > available)
        throw allocation_error("state_store: the states need " + std::to_string(bytes_) + " bytes, " + directory.string() +
                               " has " + std::to_string(static_cast<long long>(available)) + " bytes free");
    }
    static std::atomic<unsigned> counter{0};
    const auto file = directory / ("hydra-state-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".bin");
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw io_error("state_store: cannot create " + file.string() + ": " + std::strerror(errno));
    const int reserved = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_));
    void* p = reserved == 0 ? ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    const int mapped_errno = errno;
    ::close(fd);  // the mapping keeps the file open
    ::unlink(file.c_str());
    if (reserved != 0)
      throw io_error("state_store: cannot reserve " + std::to_string(bytes_) + " bytes for " + file.string() + ": " +
                     std::strerror(reserved));
    if (p == MAP_FAILED)
      throw io_error("state_store: cannot map " + file.string() + ": " + std::strerror(mapped_errno));
    mapped_ = static_cast<T*>(p);
    file_backed_ = true;
  }

  state_store(state_store&& o) noexcept { swap(o); }
  state_store& operator=(state_store&& o) noexcept {
    state_store(std::move(o)).swap(*this);
    return *this;
  }
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;
  ~state_store() {
    if (mapped_ != nullptr) ::munmap(mapped_, bytes_);
  }

  [[nodiscard]] bool file_backed() const noexcept { return file_backed_; }
  [[nodiscard]] index rows() const noexcept { return rows_; }
  [[nodiscard]] index cols() const noexcept { return cols_; }

  /// Row r: dv/dε_i.
  [[nodiscard]] matrix_view<T> momentum_derivatives() noexcept {
    return mapped_ != nullptr ? matrix_view<T>{mapped_, rows_, cols_, cols_} : memory_dv_.view();
  }
  [[nodiscard]] matrix_view<const T> momentum_derivatives() const noexcept {
    return const_cast<state_store*>(this)->momentum_derivatives();
  }
  /// Row r: ∇_i.
  [[nodiscard]] matrix_view<T> hypergradients() noexcept {
    return mapped_ != nullptr ? matrix_view<T>{mapped_ + rows_ * cols_, rows_, cols_, cols_} : memory_grad_.view();
  }
  [[nodiscard]] matrix_view<const T> hypergradients() const noexcept {
    return const_cast<state_store*>(this)->hypergradients();
  }

  /// Hands the pages lying wholly inside rows [first, first + count) of both states back to the
  /// kernel (file-backed only; their contents stay in the file). A no-op in backend memory.
  void release(index first, index count) const noexcept {
    if (!file_backed_ || count <= 0) return;  // anonymous memory would be zeroed
    release_range(mapped_ + first * cols_, count * cols_);
    release_range(mapped_ + (rows_ + first) * cols_, count * cols_);
  }

private:
  static void release_range(T* begin, index elements) noexcept {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto from = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
    const auto to = reinterpret_cast<std::uintptr_t>(begin + elements) / page * page;
    // MADV_DONTNEED on a shared file mapping drops our mapping of the pages; dirty data is
    // already in the page cache and reaches the file by normal writeback.
    if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
  }

  void swap(state_store& o) noexcept {
    std::swap(memory_dv_, o.memory_dv_);
    std::swap(memory_grad_, o.memory_grad_);
    std::swap(mapped_, o.mapped_);
    std::swap(file_backed_, o.file_backed_);
    std::swap(bytes_, o.bytes_);
    std::swap(rows_, o.rows_);
    std::swap(cols_, o.cols_);
  }

  matrix<T, B> memory_dv_;
  matrix<T, B> memory_grad_;
  T* mapped_ = nullptr;  // host backends: both states, dv rows first
  bool file_backed_ = false;
  std::size_t bytes_ = 0;
  index rows_ = 0;
  index cols_ = 0;
};

} // namespace hydra
