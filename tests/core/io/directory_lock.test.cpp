// hydra::directory_lock: taken and refused within one process (flock belongs to the open file
// description, so a second open() conflicts), released on destruction, refused while another
// process holds it, and free again once that process has died without releasing it (the stale
// lock file it leaves is no lock).

#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hydra/core/io/directory_lock.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;

std::string text_of(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Whether a fresh open() of the lock file can take flock(LOCK_EX | LOCK_NB): what any other
/// holder, in this process or another, would try.
bool raw_flock_succeeds(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  REQUIRE(fd >= 0);
  const bool ok = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) CHECK(err == EWOULDBLOCK);
  return ok;
}

const std::string pid_line = std::to_string(static_cast<long>(::getpid())) + "\n";

} // namespace

TEST_CASE("directory_lock: taken, refused to a second holder in the same process, released on destruction") {
  temp_dir dir("lock");
  const auto file = dir / "hydra.lock";
  {
    directory_lock lock(dir.path());
    CHECK(lock.held());
    CHECK(lock.file() == file);
    CHECK(text_of(file) == pid_line);
    CHECK(directory_lock::holder_of(dir.path()) == static_cast<long>(::getpid()));

    // A new open file description conflicts even in the process that holds the lock.
    CHECK_FALSE(raw_flock_succeeds(file));
    const auto message = message_of<directory_busy>([&] { directory_lock second(dir.path()); });
    CHECK_MESSAGE(contains(message, "'" + dir.path().string() + "' is in use by process " +
                                        std::to_string(static_cast<long>(::getpid()))),
                  message);
    try {
      directory_lock second(dir.path());
      FAIL("a second lock was taken");
    } catch (const directory_busy& e) {
      CHECK(e.holder() == static_cast<long>(::getpid()));
      CHECK(e.directory() == dir.path());
    }
    CHECK(lock.held());  // the refused attempt left the lock as it was
    CHECK(text_of(file) == pid_line);
  }
  CHECK_FALSE(fs::exists(file));  // released, and the file is removed with it
  directory_lock again(dir.path());
  CHECK(again.held());
}

TEST_CASE("directory_lock: move, release(), a missing directory, an unlocked leftover file") {
  temp_dir dir("lock");
  std::optional<directory_lock> outer;
  {
    directory_lock lock(dir.path());
    outer.emplace(std::move(lock));
    CHECK_FALSE(lock.held());  // NOLINT(bugprone-use-after-move): the moved-from object is empty
  }
  CHECK(outer->held());  // the moved-from object's destruction released nothing
  CHECK_FALSE(raw_flock_succeeds(dir / "hydra.lock"));
  outer->release();
  CHECK_FALSE(outer->held());
  outer->release();  // idempotent
  CHECK_FALSE(fs::exists(dir / "hydra.lock"));

  const auto missing = dir.path() / "nowhere";
  const auto message = message_of<io_error>([&] { directory_lock lock(missing); });
  CHECK_MESSAGE(contains(message, "cannot create '" + (missing / "hydra.lock").string() + "'"), message);

  // A lock file nobody holds (here: garbage left by hand) is no lock; its content is replaced.
  std::ofstream(dir / "hydra.lock") << "not a pid";
  CHECK(directory_lock::holder_of(dir.path()) == 0);
  directory_lock lock(dir.path());
  CHECK(text_of(dir / "hydra.lock") == pid_line);
}

TEST_CASE("directory_lock: a child process holding it blocks the parent; once it dies the lock is free") {
  temp_dir dir("lock");
  int ready[2], go[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(go) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // no doctest here: report by exit status
    ::close(ready[0]);
    ::close(go[1]);
    int code = 0;
    try {
      directory_lock lock(dir.path());
      const char ok = 'k';
      if (::write(ready[1], &ok, 1) != 1) ::_exit(2);
      char c = 0;
      if (::read(go[0], &c, 1) != 1) ::_exit(3);
      // Dies holding the lock: no destructor runs, hydra.lock stays behind with this PID.
      ::_exit(0);
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  ::close(ready[1]);
  ::close(go[0]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);

  CHECK_FALSE(raw_flock_succeeds(dir / "hydra.lock"));
  try {
    directory_lock lock(dir.path());
    FAIL("the parent took the lock the child holds");
  } catch (const directory_busy& e) {
    CHECK(e.holder() == static_cast<long>(child));
    CHECK_MESSAGE(contains(e.what(), "is in use by process " + std::to_string(static_cast<long>(child))), e.what());
  }

  const char go_on = 'g';
  REQUIRE(::write(go[1], &go_on, 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(ready[0]);
  ::close(go[1]);

  // The stale lock: the file and the dead child's PID are still there, the lock is not.
  REQUIRE(fs::exists(dir / "hydra.lock"));
  CHECK(directory_lock::holder_of(dir.path()) == static_cast<long>(child));
  directory_lock lock(dir.path());
  CHECK(lock.held());
  CHECK(text_of(dir / "hydra.lock") == pid_line);
}

TEST_CASE("directory_lock: a child killed with SIGKILL while holding it leaves it free") {
  temp_dir dir("lock");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    try {
      directory_lock lock(dir.path());
      const char ok = 'k';
      if (::write(ready[1], &ok, 1) != 1) ::_exit(2);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(1);
    }
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  CHECK(message_of<directory_busy>([&] { directory_lock lock(dir.path()); }) != "<nothing thrown>");
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  directory_lock lock(dir.path());
  CHECK(lock.held());
}

} // namespace hydra::test
