#pragma once
// A rows × cols row-major matrix in host memory for data larger than is comfortable to allocate
// with new: an anonymous mapping with transparent huge pages requested (gigabytes then cost a page
// fault per 2 MiB instead of per 4 KiB — measured 13 s to zero 8 GB of 4 KiB pages on our virtual
// machines — are zero without a memset and are touched only when first written), or a scratch
// file in a given directory, mapped, for data larger than RAM. The file is reserved in full up
// front (posix_fallocate), so running out of disk is an error at construction instead of a
// SIGBUS mid-run, and it is unlinked as soon as it is mapped, so a crash leaves nothing behind.
// release() hands a file-backed block's pages back to the kernel so that resident memory stays
// bounded by what is in use. The hypergradient states (state_store.hpp) and the recorded training
// trajectory (trajectory.hpp) live in it.

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T>
class mapped_matrix {
public:
  mapped_matrix() = default;

  /// In anonymous memory, zeroed. `what` names the contents in error messages ("the states").
  mapped_matrix(index rows, index cols, const std::string& what) : rows_(rows), cols_(cols) {
    bytes_ = checked_bytes(rows, cols, what);
    if (bytes_ == 0) return;
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      throw allocation_error("hydra: cannot allocate " + std::to_string(bytes_) + " bytes for " + what + ": " +
                             message(err));
    }
    ::madvise(p, bytes_, MADV_HUGEPAGE);  // a request; without THP the mapping works with 4 KiB pages
    data_ = static_cast<T*>(p);
  }

  /// In a scratch file created in `directory` (which is created if missing) and mapped shared.
  /// Every failure is thrown here, before the matrix is used, and leaves no file behind:
  /// hydra::io_error naming the directory or the scratch file and the system's reason when the
  /// directory or the file cannot be created, its bytes cannot be reserved (a full disk: ENOSPC)
  /// or mapped; hydra::allocation_error when the file system reports fewer free bytes than needed.
  mapped_matrix(const std::filesystem::path& directory, index rows, index cols, const std::string& what)
      : rows_(rows), cols_(cols) {
    bytes_ = checked_bytes(rows, cols, what);
    if (bytes_ == 0) return;
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) throw io_error("hydra: cannot create the directory " + quoted(directory) + " for " + what + ": " + ec.message());
    struct statvfs fs {};
    if (::statvfs(directory.c_str(), &fs) == 0) {
      const double available = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
      if (static_cast<double>(bytes_) > available)
        throw allocation_error("hydra: " + what + " need " + std::to_string(bytes_) + " bytes, " + quoted(directory) +
                               " has " + std::to_string(static_cast<long long>(available)) + " bytes free");
    }
    static std::atomic<unsigned> counter{0};
    const auto file = directory / ("hydra-scratch-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".bin");
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int err = errno;
      throw io_error("hydra: cannot create the scratch file " + quoted(file) + " for " + what + ": " + message(err));
    }
    int reserved = 0;
    do {
      reserved = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_));  // returns the error; errno is untouched
    } while (reserved == EINTR);
    void* p = reserved == 0 ? ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    const int mapped_errno = errno;
    ::close(fd);  // the mapping keeps the file open
    ::unlink(file.c_str());
    if (reserved != 0)
      throw io_error("hydra: cannot reserve " + std::to_string(bytes_) + " bytes for " + what + " in " + quoted(file) +
                     ": " + message(reserved));
    if (p == MAP_FAILED)
      throw io_error("hydra: cannot map " + std::to_string(bytes_) + " bytes of " + quoted(file) + " for " + what +
                     ": " + message(mapped_errno));
    data_ = static_cast<T*>(p);
    file_backed_ = true;
  }

  mapped_matrix(mapped_matrix&& o) noexcept { swap(o); }
  mapped_matrix& operator=(mapped_matrix&& o) noexcept {
    mapped_matrix(std::move(o)).swap(*this);
    return *this;
  }
  mapped_matrix(const mapped_matrix&) = delete;
  mapped_matrix& operator=(const mapped_matrix&) = delete;
  ~mapped_matrix() {
    if (data_ != nullptr) ::munmap(data_, bytes_);
  }

  [[nodiscard]] bool file_backed() const noexcept { return file_backed_; }
  [[nodiscard]] index rows() const noexcept { return rows_; }
  [[nodiscard]] index cols() const noexcept { return cols_; }
  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }
  [[nodiscard]] matrix_view<T> view() noexcept { return {data_, rows_, cols_, cols_}; }
  [[nodiscard]] matrix_view<const T> view() const noexcept { return {data_, rows_, cols_, cols_}; }

  /// Hands the pages lying wholly inside rows [first, first + count) back to the kernel
  /// (file-backed only: their contents stay in the page cache and the file; anonymous memory
  /// would come back zeroed, so there it is a no-op).
  void release(index first, index count) const noexcept {
    if (!file_backed_ || count <= 0) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(data_ + first * cols_);
    const auto end = reinterpret_cast<std::uintptr_t>(data_ + (first + count) * cols_);
    const auto from = (begin + page - 1) / page * page, to = end / page * page;
    // MADV_DONTNEED on a shared file mapping drops our mapping of the pages; dirty data is
    // already in the page cache and reaches the file by normal writeback.
    if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
  }

private:
  static std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }
  static std::string message(int err) { return std::generic_category().message(err); }

  static std::size_t checked_bytes(index rows, index cols, const std::string& what) {
    if (rows < 0 || cols < 0)
      throw invalid_argument("hydra: " + what + " cannot be " + std::to_string(rows) + " x " + std::to_string(cols));
    const auto r = static_cast<std::size_t>(rows), c = static_cast<std::size_t>(cols);
    if (c != 0 && r > SIZE_MAX / sizeof(T) / c)
      throw allocation_error("hydra: " + what + " (" + std::to_string(rows) + " x " + std::to_string(cols) +
                             " values) do not fit in this machine's address space");
    return r * c * sizeof(T);
  }

  void swap(mapped_matrix& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(file_backed_, o.file_backed_);
    std::swap(bytes_, o.bytes_);
    std::swap(rows_, o.rows_);
    std::swap(cols_, o.cols_);
  }

  T* data_ = nullptr;
  bool file_backed_ = false;
  std::size_t bytes_ = 0;
  index rows_ = 0;
  index cols_ = 0;
};

} // namespace hydra
