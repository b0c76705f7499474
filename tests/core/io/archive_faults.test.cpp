// hydra::archive_writer under injected faults (support/fault_injection.hpp): ENOSPC and EIO at
// every write() of an archive, a short write at every write(), a failed open, fsync, close and
// rename of the .tmp file, a failed open or fsync of the directory. Each failure is a one-line
// hydra::io_error naming the file and the system's reason; the archive already at the path is
// untouched (byte for byte) and still verifies, and no .tmp file is left behind, except when only
// the directory's fsync after the rename fails: then the new archive is in place. A short write
// is continued: the archive is byte-identical to one written without faults. The injector itself
// is tested first.

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hydra/core/archive.hpp"
#include "support/fault_injection.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;
using faults::call;
using faults::effect;

using faults::bytes_of;
using faults::tmp_of;

/// An archive whose writing takes several write() calls: small sections gathered in the buffer,
/// a section larger than the buffer (written directly), a begin_array section appended in three
/// chunks larger than the buffer, and the trailer. `version` changes every payload.
void write_archive(const fs::path& file, int version) {
  archive_writer out(file);
  out.write_string("format", "faults " + std::to_string(version));
  std::vector<double> w(1000);
  std::iota(w.begin(), w.end(), version);
  out.write<double>("w", w);
  std::vector<std::uint8_t> big(detail::archive::buffer_size + 100, static_cast<std::uint8_t>(version));
  out.write<std::uint8_t>("big", big);
  const std::size_t chunk = 300000;  // 1.2 MB of floats: past the buffer
  out.begin_array<float>("chunks", 3 * chunk);
  for (int c = 0; c < 3; ++c) out.append<float>(std::vector<float>(chunk, static_cast<float>(version + c)));
  out.write_value<std::int64_t>("end", version);
  out.commit();
}

/// The number of write() calls write_archive makes without faults.
long writes_of_a_clean_archive(const fs::path& file) {
  auto counter = faults::count(faults::writes);
  write_archive(file, 0);
  return counter.calls();
}

/// The archive at `file` is the complete one of write_archive(file, version).
void check_archive(const fs::path& file, int version) {
  archive_reader in(file);
  CHECK(in.read_string("format") == "faults " + std::to_string(version));
  (void)in.read_vector<double>("w", 1000);
  (void)in.read_vector<std::uint8_t>("big", detail::archive::buffer_size + 100);
  std::vector<float> chunks(3 * 300000);
  in.read<float>("chunks", chunks);
  CHECK(in.read_value<std::int64_t>("end") == version);
  in.finish();
}

} // namespace

TEST_CASE("the fault injector: counts calls on files only, fails, shortens and disarms") {
  temp_dir dir;
  const auto file = dir / "f";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd > 2);
  const char text[] = "0123456789";
  {
    auto counter = faults::count(faults::writes | call::fsync);
    CHECK(::write(fd, text, 10) == 10);
    CHECK(::write(2, text, 0) == 0);  // stderr: not counted
    CHECK(::fsync(fd) == 0);
    CHECK(counter.calls() == 2);
    CHECK(counter.hits() == 0);
  }
  {
    auto armed = faults::arm({.calls = call::write, .nth = 2, .error = ENOSPC});
    CHECK(::write(fd, text, 10) == 10);
    errno = 0;
    CHECK(::write(fd, text, 10) == -1);
    CHECK(errno == ENOSPC);
    CHECK(::write(fd, text, 10) == 10);  // only the nth
    CHECK(armed.hits() == 1);
  }
  {
    auto armed = faults::arm({.calls = call::write, .nth = 2, .error = EIO, .repeat = true});
    CHECK(::write(fd, text, 10) == 10);
    CHECK(::write(fd, text, 10) == -1);
    CHECK(::write(fd, text, 10) == -1);  // a disk that stays full
    CHECK(armed.hits() == 2);
  }
  {
    auto armed = faults::arm({.calls = call::write, .what = effect::short_write});
    CHECK(::write(fd, text, 10) == 5);
    CHECK(::write(fd, text, 10) == 10);
  }
  CHECK(::write(fd, text, 10) == 10);  // disarmed
  {  // writev (std::ofstream's way for large writes): shortened across its buffers, or failed
    const struct iovec parts[2] = {{const_cast<char*>(text), 4}, {const_cast<char*>(text + 4), 6}};
    auto armed = faults::arm({.calls = faults::writes, .what = effect::short_write, .repeat = true, .short_bytes = 7});
    CHECK(::writev(fd, parts, 2) == 7);
    CHECK(::write(fd, text, 3) == 3);
  }
  {
    const struct iovec part = {const_cast<char*>(text), 10};
    auto armed = faults::arm({.calls = call::writev, .error = EIO});
    CHECK(::writev(fd, &part, 1) == -1);
    CHECK(errno == EIO);
  }
  {
    auto armed = faults::arm({.calls = call::posix_fallocate, .error = ENOSPC});
    CHECK(::posix_fallocate(fd, 0, 4096) == ENOSPC);
  }
  {
    auto armed = faults::arm({.calls = call::rename, .error = EXDEV, .path_part = "other"});
    CHECK(::rename(file.c_str(), (dir / "g").c_str()) == 0);  // another path: not counted
    CHECK(armed.calls() == 0);
    errno = 0;
    CHECK(::rename((dir / "g").c_str(), (dir / "other").c_str()) == -1);
    CHECK(errno == EXDEV);
    CHECK(fs::exists(dir / "g"));
  }
  {
    auto armed = faults::arm({.calls = call::close, .error = EIO});
    CHECK(::close(fd) == -1);
    CHECK(errno == EIO);
  }
  CHECK(::fcntl(fd, F_GETFD) == -1);  // closed all the same, as Linux does
  CHECK_THROWS_AS([] {
    auto first = faults::count(call::write);
    auto second = faults::count(call::write);
  }(), std::logic_error);
}

TEST_CASE("archive writer: ENOSPC and EIO at every write leave the previous archive untouched") {
  temp_dir dir;
  const auto file = dir / "a.hydra";
  const long writes = writes_of_a_clean_archive(file);
  // The buffer before 'big', 'big', the buffer before the first chunk, the 3 chunks, the rest.
  CHECK(writes == 7);
  write_archive(file, 1);
  const auto previous = bytes_of(file);
  for (const int error : {ENOSPC, EIO}) {
    for (long k = 1; k <= writes; ++k) {
      CAPTURE(error);
      CAPTURE(k);
      std::string message;
      {
        auto armed = faults::arm({.calls = faults::writes, .nth = k, .error = error});
        message = message_of<io_error>([&] { write_archive(file, 2); });
        CHECK(armed.hits() == 1);
      }
      CHECK(message == "hydra::archive_writer: cannot write '" + tmp_of(file).string() + "': " + faults::text_of(error));
      CHECK(bytes_of(file) == previous);
      CHECK(!fs::exists(tmp_of(file)));
      archive_reader::verify(file);
    }
  }
  // A disk that stays full from the first write on.
  {
    auto armed = faults::arm({.calls = faults::writes, .error = ENOSPC, .repeat = true});
    CHECK(contains(message_of<io_error>([&] { write_archive(file, 2); }), "No space left on device"));
  }
  CHECK(bytes_of(file) == previous);
  CHECK(!fs::exists(tmp_of(file)));
  check_archive(file, 1);
}

TEST_CASE("archive writer: a short write at any call is continued, and the archive is byte-identical") {
  temp_dir dir;
  const auto clean = dir / "clean.hydra", file = dir / "short.hydra";
  write_archive(clean, 2);
  const auto expected = bytes_of(clean);
  const long writes = writes_of_a_clean_archive(dir / "count.hydra");
  for (long k = 1; k <= writes; ++k) {
    CAPTURE(k);
    {
      auto armed = faults::arm({.calls = faults::writes, .nth = k, .what = effect::short_write});
      write_archive(file, 2);
      CHECK(armed.hits() == 1);
      CHECK(armed.calls() == writes + 1);  // the rest of the short one took one more call
    }
    CHECK(bytes_of(file) == expected);
    CHECK(!fs::exists(tmp_of(file)));
  }
  for (const long bytes : {61L, 4095L, 65536L}) {  // every write short: many calls, the same bytes
    CAPTURE(bytes);
    {
      auto armed = faults::arm({.calls = faults::writes, .what = effect::short_write, .repeat = true, .short_bytes = bytes});
      write_archive(file, 2);
    }
    CHECK(bytes_of(file) == expected);
  }
  // A write() that writes nothing would make a naive retry loop spin: it is an error instead.
  write_archive(file, 1);
  const auto previous = bytes_of(file);
  {
    auto armed = faults::arm({.calls = faults::writes, .nth = 3, .what = effect::short_write, .short_bytes = 0});
    CHECK(contains(message_of<io_error>([&] { write_archive(file, 2); }),
                   "cannot write '" + tmp_of(file).string() + "': the system wrote 0 of "));
  }
  CHECK(bytes_of(file) == previous);
  CHECK(!fs::exists(tmp_of(file)));
}

TEST_CASE("archive writer: a failed open, fsync, close or rename leaves the previous archive untouched") {
  temp_dir dir;
  const auto file = dir / "a.hydra";
  write_archive(file, 1);
  const auto previous = bytes_of(file);
  const std::string tmp = "'" + tmp_of(file).string() + "'";
  struct case_ {
    const char* name;
    faults::fault fault;
    std::string message;
  };
  const case_ cases[] = {
      {"open of the .tmp file", {.calls = call::open, .error = ENOSPC, .path_part = ".tmp"}, "cannot create " + tmp},
      {"open of the .tmp file", {.calls = call::open, .error = EACCES, .path_part = ".tmp"}, "cannot create " + tmp},
      {"fsync of the file", {.calls = call::fsync, .nth = 1, .error = EIO}, "cannot fsync " + tmp},
      {"fsync of the file", {.calls = call::fsync, .nth = 1, .error = ENOSPC}, "cannot fsync " + tmp},
      {"close of the file", {.calls = call::close, .nth = 1, .error = EIO}, "cannot close " + tmp},
      {"rename", {.calls = call::rename, .error = EXDEV}, "cannot rename " + tmp + " to '" + file.string() + "'"},
      {"rename", {.calls = call::rename, .error = ENOSPC}, "cannot rename " + tmp + " to '" + file.string() + "'"},
      {"rename", {.calls = call::rename, .error = EIO}, "cannot rename " + tmp + " to '" + file.string() + "'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CAPTURE(c.fault.error);
    std::string message;
    {
      auto armed = faults::arm(c.fault);
      message = message_of<io_error>([&] { write_archive(file, 2); });
      CHECK(armed.hits() == 1);
    }
    CHECK(message == "hydra::archive_writer: " + c.message + ": " + faults::text_of(c.fault.error));
    CHECK(bytes_of(file) == previous);
    CHECK(!fs::exists(tmp_of(file)));
    check_archive(file, 1);
  }
  // Without an archive before: still nothing at the path.
  const auto fresh = dir / "fresh.hydra";
  {
    auto armed = faults::arm({.calls = call::fsync, .nth = 1, .error = EIO});
    CHECK(contains(message_of<io_error>([&] { write_archive(fresh, 2); }), "cannot fsync"));
  }
  CHECK(!fs::exists(fresh));
  CHECK(!fs::exists(tmp_of(fresh)));
}

TEST_CASE("archive writer: a failed directory fsync or open after the rename names the directory; the new archive is in place") {
  temp_dir dir;
  const auto file = dir / "a.hydra";
  for (const bool open_fails : {false, true}) {
    CAPTURE(open_fails);
    write_archive(file, 1);
    std::string message;
    {
      // The second fsync of a commit is the directory's; the second open is the directory's.
      auto armed = faults::arm({.calls = open_fails ? call::open : call::fsync, .nth = 2, .error = EIO});
      message = message_of<io_error>([&] {
        archive_writer out(file);
        out.write_string("format", "second");
        try {
          out.commit();
        } catch (...) {
          CHECK(out.committed());
          throw;
        }
      });
      CHECK(armed.hits() == 1);
    }
    CHECK(message == std::string("hydra::archive_writer: cannot ") + (open_fails ? "open" : "fsync") + " the directory '" +
                         dir.path().string() + "' after renaming '" + tmp_of(file).string() + "' to '" + file.string() +
                         "': " + faults::text_of(EIO));
    archive_reader in(file);
    CHECK(in.read_string("format") == "second");
    in.finish();
    CHECK(!fs::exists(tmp_of(file)));
  }
  // EINVAL (a file system that cannot sync directories) is no error.
  {
    auto armed = faults::arm({.calls = call::fsync, .nth = 2, .error = EINVAL});
    write_archive(file, 3);
    CHECK(armed.hits() == 1);
  }
  check_archive(file, 3);
}

} // namespace hydra::test
