// The checkpoint archive: round trips of every element type and of chunked arrays, every error a
// reader can meet (each message naming the file and the section), truncation at every byte and a
// flipped byte anywhere, the writer's misuse, and the atomicity of commit (an unfinished writer
// never touches the archive at its path).

#include <doctest/doctest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "hydra/core/archive.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;


std::vector<char> bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& file, const std::vector<char>& bytes, std::size_t count) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(count));
}

struct pose {  // a trivially copyable struct without padding
  double x;
  std::int64_t id;
  float scale;
  std::int32_t flags;
};

enum class colour : std::int16_t { red = 1, green = 2 };

/// A small archive of several kinds of sections, and the reading that matches it.
void write_small(const fs::path& file) {
  archive_writer out(file);
  out.write_string("format", "test");
  out.write_value<std::int64_t>("steps", 42);
  const std::vector<double> w{1.5, -2.25, 3.0};
  out.write<double>("w", w);
  out.write_value("flag", true);
  out.begin_array<float>("chunks", 5);
  const std::vector<float> c{1, 2, 3, 4, 5};
  out.append<float>(std::span<const float>(c).first(2));
  out.append<float>(std::span<const float>(c).subspan(2));
  out.write_value("pose", pose{0.5, 7, 2.0f, 3});
  out.commit();
}

void read_small(const fs::path& file) {
  archive_reader in(file);
  CHECK(in.read_string("format", 16) == "test");
  CHECK(in.read_value<std::int64_t>("steps") == 42);
  std::vector<double> w(3);
  in.read<double>("w", w);
  CHECK(in.read_value<bool>("flag"));
  std::vector<float> c(5);
  REQUIRE(in.begin_array<float>("chunks") == 5);
  in.take<float>(std::span<float>(c).first(4));
  in.take<float>(std::span<float>(c).subspan(4));
  (void)in.read_value<pose>("pose");
  in.finish();
}

/// The same reading without checks, for the loops over damaged files: it must throw.
void read_small_unchecked(const fs::path& file) {
  archive_reader in(file);
  (void)in.read_string("format", 16);
  (void)in.read_value<std::int64_t>("steps");
  std::vector<double> w(3);
  in.read<double>("w", w);
  (void)in.read_value<bool>("flag");
  std::vector<float> c(5);
  if (in.begin_array<float>("chunks") != 5) throw std::logic_error("wrong count read back");
  in.take<float>(std::span<float>(c));
  (void)in.read_value<pose>("pose");
  in.finish();
}

template <class T>
std::vector<T> ramp(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(static_cast<long long>(i * 37 % 251) - 100);
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

} // namespace

TEST_CASE("archive round trip of every element type, strings, structs and empty sections") {
  temp_dir dir;
  const auto file = dir / "all.hydra";
  const auto i8 = ramp<std::int8_t>(7);
  const auto i16 = ramp<std::int16_t>(9);
  const auto i32 = ramp<std::int32_t>(11);
  const auto i64 = std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -1, 0,
                                             std::numeric_limits<std::int64_t>::max()};
  const auto u8 = std::vector<std::uint8_t>{0, 1, 255};
  const auto u16 = std::vector<std::uint16_t>{0, 65535};
  const auto u32 = std::vector<std::uint32_t>{0, 4294967295u, 12345};
  const auto u64 = std::vector<std::uint64_t>{0, std::numeric_limits<std::uint64_t>::max()};
  const auto f32 = std::vector<float>{0.0f, -0.0f, 1.5f, std::numeric_limits<float>::infinity(),
                                      std::numeric_limits<float>::quiet_NaN(),
                                      std::numeric_limits<float>::denorm_min()};
  const auto f64 = std::vector<double>{-0.0, 1e-310, std::numeric_limits<double>::quiet_NaN(), 3.141592653589793,
                                       -std::numeric_limits<double>::infinity()};
  const std::vector<pose> poses{{1.0, 1, 0.5f, 0}, {-2.0, 2, 0.25f, 7}};
  const std::string text("with\0nul and \xff bytes", 21);
  const std::size_t big = (std::size_t(3) << 20) / sizeof(double) + 13;  // more than the 1 MiB buffer
  const auto large = ramp<double>(big);
  {
    archive_writer out(file);
    CHECK(out.path() == file);
    CHECK(out.temporary_path() == fs::path(file.string() + ".tmp"));
    out.write<std::int8_t>("i8", i8);
    out.write<std::int16_t>("i16", i16);
    out.write<std::int32_t>("i32", i32);
    out.write<std::int64_t>("i64", i64);
    out.write<std::uint8_t>("u8", u8);
    out.write<std::uint16_t>("u16", u16);
    out.write<std::uint32_t>("u32", u32);
    out.write<std::uint64_t>("u64", u64);
    out.write<float>("f32", f32);
    out.write<double>("f64", f64);
    out.write_value("bool", false);
    out.write_value("char", 'x');
    out.write_value("value", 2.5f);
    out.write_value("pose", poses[1]);
    out.write<pose>("poses", poses);
    out.write_value("colour", colour::green);
    out.write_string("text", text);
    out.write_string("empty text", "");
    out.write<double>("empty", std::span<const double>());
    out.write<double>("large", large);
    CHECK(fs::exists(out.temporary_path()));
    CHECK(!fs::exists(file));
    out.commit();
    CHECK(out.committed());
  }
  CHECK(fs::exists(file));
  CHECK(!fs::exists(file.string() + ".tmp"));

  archive_reader in(file);
  CHECK(in.path() == file);
  CHECK(in.read_vector<std::int8_t>("i8", 100) == i8);
  CHECK(in.read_vector<std::int16_t>("i16", 100) == i16);
  CHECK(in.read_vector<std::int32_t>("i32", 100) == i32);
  CHECK(in.read_vector<std::int64_t>("i64", 100) == i64);
  CHECK(in.read_vector<std::uint8_t>("u8", 100) == u8);
  CHECK(in.read_vector<std::uint16_t>("u16", 100) == u16);
  CHECK(in.read_vector<std::uint32_t>("u32", 100) == u32);
  CHECK(in.read_vector<std::uint64_t>("u64", 100) == u64);
  CHECK(same_bits(in.read_vector<float>("f32", 100), f32));  // -0, NaN and denormals bit for bit
  std::vector<double> f64_back(f64.size());
  in.read<double>("f64", f64_back);
  CHECK(same_bits(f64_back, f64));
  CHECK(in.read_value<bool>("bool") == false);
  CHECK(in.read_value<char>("char") == 'x');
  CHECK(in.read_value<float>("value") == 2.5f);
  const auto p = in.read_value<pose>("pose");
  CHECK(p.x == -2.0);
  CHECK(p.id == 2);
  CHECK(p.scale == 0.25f);
  CHECK(p.flags == 7);
  const auto ps = in.read_vector<pose>("poses", 2);
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].x == 1.0);
  CHECK(ps[1].flags == 7);
  CHECK(in.read_value<colour>("colour") == colour::green);
  CHECK(in.read_string("text") == text);
  CHECK(in.read_string("empty text").empty());
  CHECK(in.read_vector<double>("empty", 0).empty());
  std::vector<double> large_back(big);
  in.read<double>("large", large_back);
  CHECK(same_bits(large_back, large));
  CHECK(in.position() + 12 == in.size());
  in.finish();
  CHECK(in.finished());
  archive_reader::verify(file);
}

TEST_CASE("archive chunked arrays: any chunking on either side, across the buffer") {
  temp_dir dir;
  const auto file = dir / "chunks.hydra";
  const std::size_t n = (std::size_t(5) << 20) / sizeof(float) + 7;  // 5 MiB and a bit
  const auto values = ramp<float>(n);
  const std::vector<std::size_t> write_cuts{1, 3, 1000, std::size_t(1) << 18, std::size_t(3) << 18};
  const std::vector<std::size_t> read_cuts{2, 999, std::size_t(1) << 19, 5};
  {
    archive_writer out(file);
    out.write_value<std::int32_t>("before", -1);
    out.begin_array<float>("values", n);
    std::size_t at = 0;
    for (std::size_t k = 0; at < n; ++k) {
      const std::size_t len = std::min(write_cuts[k % write_cuts.size()], n - at);
      out.append<float>(std::span<const float>(values).subspan(at, len));
      at += len;
    }
    out.append<float>(std::span<const float>());  // an empty chunk at the end is harmless
    out.begin_array<double>("nothing", 0);         // an empty array needs no chunk
    out.write_value<std::int32_t>("after", 1);
    out.commit();
  }
  {  // read in other chunks
    archive_reader in(file);
    CHECK(in.read_value<std::int32_t>("before") == -1);
    REQUIRE(in.begin_array<float>("values") == n);
    std::vector<float> back(n);
    std::size_t at = 0;
    for (std::size_t k = 0; at < n; ++k) {
      const std::size_t len = std::min(read_cuts[k % read_cuts.size()], n - at);
      in.take<float>(std::span<float>(back).subspan(at, len));
      at += len;
    }
    CHECK(same_bits(back, values));
    CHECK(in.begin_array<double>("nothing") == 0);
    CHECK(in.read_value<std::int32_t>("after") == 1);
    in.finish();
  }
  {  // or all at once: chunks leave no trace in the file
    archive_reader in(file);
    CHECK(in.read_value<std::int32_t>("before") == -1);
    CHECK(same_bits(in.read_vector<float>("values", n), values));
    in.skip("nothing");
    in.skip("after");
    in.finish();
  }
}

TEST_CASE("archive reader: a section that differs names the file, the section expected and what was found") {
  temp_dir dir;
  const auto file = dir / "small.hydra";
  write_small(file);
  read_small(file);
  const std::string path = file.string();

  const auto wrong_name = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("kind", 16);
  });
  CHECK(contains(wrong_name, path));
  CHECK(contains(wrong_name, "expected section 'kind' (char)"));
  CHECK(contains(wrong_name, "found 'format' (char, 4 elements)"));

  const auto wrong_type = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("format", 16);
    (void)in.read_value<std::int32_t>("steps");
  });
  CHECK(contains(wrong_type, path));
  CHECK(contains(wrong_type, "expected section 'steps' (int32)"));
  CHECK(contains(wrong_type, "found 'steps' (int64, 1 element)"));

  const auto wrong_count = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("format", 16);
    (void)in.read_value<std::int64_t>("steps");
    std::vector<double> w(4);
    in.read<double>("w", w);
  });
  CHECK(contains(wrong_count, path));
  CHECK(contains(wrong_count, "expected section 'w' (float64, 4 elements), found 'w' (float64, 3 elements)"));

  struct wider {
    double x;
    std::int64_t id;
    double more[2];
  };
  const auto wrong_struct = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("format", 16);
    (void)in.read_value<std::int64_t>("steps");
    in.skip("w");
    in.skip("flag");
    in.skip("chunks");
    (void)in.read_value<wider>("pose");
  });
  CHECK(contains(wrong_struct, "expected section 'pose' (struct of 32 bytes), found 'pose' (struct of 24 bytes, 1 element)"));

  const auto past_the_end = message_of<format_error>([&] {
    archive_reader in(file);
    for (const char* name : {"format", "steps", "w", "flag", "chunks", "pose"}) in.skip(name);
    (void)in.read_value<double>("extra");
  });
  CHECK(contains(past_the_end, path));
  CHECK(contains(past_the_end, "expected section 'extra' (float64), found the end of the archive"));

  const auto unread = message_of<format_error>([&] {
    archive_reader in(file);
    for (const char* name : {"format", "steps", "w", "flag", "chunks"}) in.skip(name);
    in.finish();
  });
  CHECK(contains(unread, "expected the end of the archive, found another section 'pose'"));

  const auto too_many = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("format", 16);
    (void)in.read_value<std::int64_t>("steps");
    (void)in.read_vector<double>("w", 2);
  });
  CHECK(contains(too_many, path));
  CHECK(contains(too_many, "section 'w' has 3 elements, more than the 2 expected at most"));

  const auto long_string = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("format", 3);
  });
  CHECK(contains(long_string, "section 'format' holds a string of 4 chars, more than the 3 expected at most"));

  // After an error the reader refuses to go on rather than read from the middle of a section.
  archive_reader in(file);
  CHECK_THROWS_AS((void)in.read_value<double>("format"), format_error);
  CHECK(contains(message_of<invalid_argument>([&] { (void)in.read_string("format"); }), "unusable after an earlier error"));
}

TEST_CASE("archive reader: a file truncated at any byte gives format_error saying truncated, never a crash") {
  temp_dir dir;
  const auto file = dir / "small.hydra";
  write_small(file);
  const auto bytes = bytes_of(file);
  REQUIRE(bytes.size() > 100);
  const auto cut = dir / "cut.hydra";
  int truncated = 0;
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    write_bytes(cut, bytes, length);
    const auto message = message_of<format_error>([&] { read_small_unchecked(cut); });
    const auto verify_message = message_of<format_error>([&] { archive_reader::verify(cut); });
    const bool ok = contains(message, "truncated") && contains(message, cut.string()) &&
                    contains(verify_message, "truncated");
    if (!ok) {
      INFO("length ", length, ": ", message, " / ", verify_message);
      CHECK(ok);
    }
    truncated += ok ? 1 : 0;
  }
  CHECK(truncated == static_cast<int>(bytes.size()));

  // The section is named: cut inside the payload of "w".
  const auto in_w = message_of<format_error>([&] {
    archive_reader in(file);
    (void)in.read_string("format", 16);
    (void)in.read_value<std::int64_t>("steps");
    const auto offset = in.position();
    write_bytes(cut, bytes, static_cast<std::size_t>(offset) + 4 + 4 + 1 + 16 + 8);  // the header and 8 of 24 bytes
    archive_reader short_in(cut);
    (void)short_in.read_string("format", 16);
    (void)short_in.read_value<std::int64_t>("steps");
    std::vector<double> w(3);
    short_in.read<double>("w", w);
  });
  CHECK(contains(in_w, "is truncated in section 'w'"));

  const auto empty = dir / "empty.hydra";
  write_bytes(empty, bytes, 0);
  CHECK(contains(message_of<format_error>([&] { archive_reader in(empty); }), "is truncated: 0 bytes"));
}

TEST_CASE("archive reader: a flipped byte anywhere gives format_error; in a payload, at finish() by the checksum") {
  temp_dir dir;
  const auto file = dir / "small.hydra";
  write_small(file);
  const auto bytes = bytes_of(file);
  const auto bad = dir / "bad.hydra";
  int caught = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5A);
    write_bytes(bad, damaged, damaged.size());
    const auto message = message_of<format_error>([&] { read_small_unchecked(bad); });
    const bool ok = message != "<nothing thrown>" && contains(message, bad.string());
    if (!ok) {
      INFO("byte ", i, ": ", message);
      CHECK(ok);
    }
    const bool verified = contains(message_of<format_error>([&] { archive_reader::verify(bad); }), bad.string());
    if (!verified) {
      INFO("verify, byte ", i);
      CHECK(verified);
    }
    caught += ok && verified ? 1 : 0;
  }
  CHECK(caught == static_cast<int>(bytes.size()));

  // A payload byte of "w": every section reads, only the checksum at finish() notices.
  auto damaged = bytes;
  std::size_t w_payload = 0;
  {
    archive_reader in(file);
    (void)in.read_string("format", 16);
    (void)in.read_value<std::int64_t>("steps");
    w_payload = static_cast<std::size_t>(in.position()) + 4 + 4 + 1 + 16;
  }
  damaged[w_payload + 3] = static_cast<char>(damaged[w_payload + 3] ^ 0x01);
  write_bytes(bad, damaged, damaged.size());
  archive_reader in(bad);
  CHECK(in.read_string("format", 16) == "test");
  CHECK(in.read_value<std::int64_t>("steps") == 42);
  std::vector<double> w(3);
  in.read<double>("w", w);
  CHECK(w[0] != 1.5);  // the damage went through
  for (const char* name : {"flag", "chunks", "pose"}) in.skip(name);
  const auto message = message_of<format_error>([&] { in.finish(); });
  CHECK(contains(message, bad.string()));
  CHECK(contains(message, "is corrupt: its checksum is"));
}

TEST_CASE("archive reader: bad headers, foreign byte order, other versions, corrupt fields, trailing bytes") {
  temp_dir dir;
  const auto file = dir / "small.hydra";
  write_small(file);
  const auto bytes = bytes_of(file);
  const auto other = dir / "other.hydra";

  const auto missing = dir / "missing.hydra";
  const auto no_file = message_of<io_error>([&] { archive_reader in(missing); });
  CHECK(contains(no_file, "cannot open"));
  CHECK(contains(no_file, missing.string()));
  CHECK_THROWS_AS(archive_reader(dir.path()), io_error);  // a directory

  std::vector<char> text(64, 'x');
  write_bytes(other, text, text.size());
  CHECK(contains(message_of<format_error>([&] { archive_reader in(other); }), "is not a hydra archive"));

  auto swapped = bytes;
  std::swap(swapped[8], swapped[11]);
  std::swap(swapped[9], swapped[10]);
  write_bytes(other, swapped, swapped.size());
  CHECK(contains(message_of<format_error>([&] { archive_reader in(other); }), "other byte order"));

  auto version = bytes;
  version[12] = 2;
  write_bytes(other, version, version.size());
  const auto v2 = message_of<format_error>([&] { archive_reader in(other); });
  CHECK(contains(v2, "has format version 2; this build reads version 1"));
  CHECK(contains(v2, other.string()));

  // The first section is "format": marker (4), name length (4), name (6), type (4), size (4), count (8).
  const std::size_t count_at = 16 + 4 + 4 + 6 + 4 + 4;
  auto huge = bytes;
  const std::uint64_t enormous = std::uint64_t(1) << 62;
  std::memcpy(huge.data() + count_at, &enormous, sizeof enormous);
  write_bytes(other, huge, huge.size());
  const auto huge_count = message_of<format_error>([&] {
    archive_reader in(other);
    (void)in.read_vector<char>("format", std::numeric_limits<std::uint64_t>::max());  // no limit: the file size still is
  });
  CHECK(contains(huge_count, "is truncated in section 'format': it declares 4611686018427387904 elements"));

  auto long_name = bytes;
  const std::uint32_t name_length = 0xFFFFFFF0u;
  std::memcpy(long_name.data() + 20, &name_length, sizeof name_length);
  write_bytes(other, long_name, long_name.size());
  CHECK(contains(message_of<format_error>([&] { (void)archive_reader(other).read_string("format"); }),
                 "is corrupt: a section name of 4294967280 bytes"));

  auto type = bytes;
  type[16 + 4 + 4 + 6] = 99;
  write_bytes(other, type, type.size());
  CHECK(contains(message_of<format_error>([&] { (void)archive_reader(other).read_string("format"); }),
                 "section 'format' has the unknown element type 99"));

  auto trailing = bytes;
  trailing.push_back('!');
  write_bytes(other, trailing, trailing.size());
  const auto after_end = message_of<format_error>([&] { read_small_unchecked(other); });
  CHECK(contains(after_end, "has bytes after the end of the archive"));

  // A bool byte other than 0 or 1 is corruption, not undefined behaviour.
  {
    archive_writer out(other);
    out.write_value<std::uint8_t>("flag", 1);
    out.commit();
  }
  auto not_bool = bytes_of(other);
  const std::size_t tag_at = 16 + 4 + 4 + 4;
  not_bool[tag_at] = 1;                          // uint8 -> bool
  not_bool[tag_at + 4 + 4 + 4 + 4] = 2;          // payload 2
  write_bytes(other, not_bool, not_bool.size());
  CHECK(contains(message_of<format_error>([&] { (void)archive_reader(other).read_value<bool>("flag"); }),
                 "holds a bool byte 2"));
}

TEST_CASE("archive writer: misuse is invalid_argument naming the section; io_error names the file") {
  temp_dir dir;
  const auto file = dir / "w.hydra";
  {
    archive_writer out(file);
    out.begin_array<double>("big", 3);
    out.append<double>(std::vector<double>{1, 2});
    const auto early = message_of<invalid_argument>([&] { out.write_value("next", 1); });
    CHECK(contains(early, "section 'big' was declared with 3 elements but only 2 were appended"));
    CHECK(contains(message_of<invalid_argument>([&] { out.commit(); }), "section 'big' was declared with 3 elements"));
    CHECK(contains(message_of<invalid_argument>([&] { out.append<float>(std::vector<float>{1}); }),
                   "section 'big' holds float64, got a chunk of float32"));
    CHECK(contains(message_of<invalid_argument>([&] { out.append<double>(std::vector<double>{1, 2}); }),
                   "a chunk of 2 overruns it by 1"));
    out.append<double>(std::vector<double>{3});
    CHECK(contains(message_of<invalid_argument>([&] { out.append<double>(std::vector<double>{4}); }),
                   "no begin_array() section is open"));
    CHECK(contains(message_of<invalid_argument>([&] { out.write_value("", 1); }), "a section name must have 1 to 4096"));
    out.commit();
    CHECK(contains(message_of<invalid_argument>([&] { out.write_value("late", 1); }), "unusable after commit()"));
  }
  archive_reader in(file);
  CHECK(in.begin_array<double>("big") == 3);
  std::vector<double> v(2);
  CHECK(contains(message_of<invalid_argument>([&] { in.take<float>(std::span<float>()); }),
                 "section 'big' of '" + file.string() + "' holds float64, not float32"));
  in.take<double>(v);
  CHECK(contains(message_of<invalid_argument>([&] { in.finish(); }), "section 'big' of '" + file.string() +
                                                                          "' still has 1 of its 3 elements to take"));
  CHECK(contains(message_of<invalid_argument>([&] { in.take<double>(v); }), "has only 1 left"));
  in.take<double>(std::span<double>(v).first(1));
  CHECK(v[0] == 3);
  in.finish();
  CHECK(contains(message_of<invalid_argument>([&] { in.finish(); }), "has already finished"));

  const auto nowhere = dir / "no" / "such" / "dir" / "x.hydra";
  const auto cannot = message_of<io_error>([&] { archive_writer out(nowhere); });
  CHECK(contains(cannot, "cannot create '" + nowhere.string() + ".tmp'"));
}

TEST_CASE("archive writer: nothing reaches the path before commit; commit replaces the archive there") {
  temp_dir dir;
  const auto file = dir / "ckpt.hydra";
  const auto tmp = fs::path(file.string() + ".tmp");

  {  // an uncommitted writer leaves nothing behind
    archive_writer out(file);
    out.write_value("x", 1.0);
    CHECK(fs::exists(tmp));
  }
  CHECK(!fs::exists(file));
  CHECK(!fs::exists(tmp));

  write_small(file);
  const auto before = bytes_of(file);
  {  // ... and does not touch an archive already there
    archive_writer out(file);
    out.write_string("format", "something else");
    out.write<double>("w", std::vector<double>(100000, 1.0));
  }
  CHECK(bytes_of(file) == before);
  CHECK(!fs::exists(tmp));
  read_small(file);

  // The crash-safety claim: a writer destroyed by an exception half-way leaves the existing
  // checkpoint readable and unchanged.
  struct crash {};
  CHECK_THROWS_AS(
      [&] {
        archive_writer out(file);
        out.write_string("format", "test");
        out.begin_array<double>("w", 1000000);
        out.append<double>(std::vector<double>(300000, 2.0));  // part of it, past the buffer
        throw crash{};
      }(),
      crash);
  CHECK(bytes_of(file) == before);
  CHECK(!fs::exists(tmp));
  read_small(file);
  archive_reader::verify(file);

  {  // commit replaces it
    archive_writer out(file);
    out.write_string("format", "second");
    out.commit();
  }
  archive_reader in(file);
  CHECK(in.read_string("format") == "second");
  in.finish();
  CHECK(!fs::exists(tmp));

  // A moved writer carries the file with it; the moved-from one neither deletes nor commits it.
  {
    archive_writer first(dir / "moved.hydra");
    first.write_value("a", 1);
    archive_writer second(std::move(first));
    second.write_value("b", 2);
    second.commit();
  }
  archive_reader moved(dir / "moved.hydra");
  CHECK(moved.read_value<int>("a") == 1);
  archive_reader taken(std::move(moved));
  CHECK(taken.read_value<int>("b") == 2);
  taken.finish();
}

TEST_CASE("archive checksum: independent of how the bytes are cut, sensitive to every byte, and fast") {
  using detail::archive::checksum64;
  std::vector<unsigned char> data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 131 + 7);
  checksum64 whole;
  whole.update(data.data(), data.size());
  for (std::size_t step : {1u, 3u, 7u, 31u, 32u, 33u, 500u}) {
    checksum64 pieces;
    for (std::size_t at = 0; at < data.size(); at += step) pieces.update(data.data() + at, std::min(step, data.size() - at));
    CHECK(pieces.digest() == whole.digest());
  }
  checksum64 shorter;  // the length counts: a trailing zero byte changes the sum
  shorter.update(data.data(), 999);
  CHECK(shorter.digest() != whole.digest());
  std::vector<unsigned char> zeros(64, 0);
  checksum64 z63, z64;
  z63.update(zeros.data(), 63);
  z64.update(zeros.data(), 64);
  CHECK(z63.digest() != z64.digest());
  int differing = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    auto copy = data;
    copy[i] = static_cast<unsigned char>(copy[i] ^ 0x10);
    checksum64 h;
    h.update(copy.data(), copy.size());
    differing += h.digest() != whole.digest() ? 1 : 0;
  }
  CHECK(differing == 1000);

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
  // Tracker checkpoints run to tens of GB: the checksum must not be what limits writing them.
  std::vector<std::uint64_t> block((std::size_t(64) << 20) / 8);
  std::iota(block.begin(), block.end(), std::uint64_t{1});
  double best = 0;
  std::uint64_t sink = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    checksum64 h;
    const auto start = std::chrono::steady_clock::now();
    h.update(block.data(), block.size() * 8);
    sink ^= h.digest();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(block.size() * 8) / seconds / 1e9);
  }
  MESSAGE("checksum64: " << best << " GB/s (digest " << sink << ")");
  CHECK(best >= 2.0);
#endif
}

} // namespace hydra::test
