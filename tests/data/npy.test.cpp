// .npy reading and writing. Files written by save_npy are read back both by hydra and by
// xtensor's xt::load_npy (an independent reader); hand-made files cover the numpy header
// variants and every corruption the reader must name.
#include "hydra/data/npy.hpp"

#include <xtensor/xnpy.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"


using hydra::test::bytes;

namespace {
// A .npy file with the given header dictionary (padded like numpy's) and payload.
bytes make_npy(const std::string& dict, const bytes& payload, int major = 1) {
  std::string header = dict;
  const std::size_t preamble = major == 1 ? 10 : 12;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  bytes b{0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  for (std::size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) b.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

template <class U>
bytes raw(const std::vector<U>& v) {
  bytes b(v.size() * sizeof(U));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::string header_text(const bytes& file) {
  const std::size_t len = file[8] | (std::size_t{file[9]} << 8);
  return std::string(file.begin() + 10, file.begin() + 10 + static_cast<std::ptrdiff_t>(len));
}
} // namespace

TEST_CASE("save_npy writes numpy's layout") {
  hydra::test::temp_dir dir;
  hydra::save_npy(dir / "a.npy", std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const auto file = hydra::test::read_file(dir / "a.npy");
  REQUIRE(file.size() == 128 + 24);  // payload 64-byte aligned, as numpy writes it
  CHECK(std::string(file.begin() + 1, file.begin() + 6) == "NUMPY");
  CHECK(file[0] == 0x93);
  CHECK(file[6] == 1);
  CHECK(file[7] == 0);
  const auto header = header_text(file);
  CHECK(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
  CHECK(header.back() == '\n');

  hydra::save_npy(dir / "b.npy", std::vector<std::int64_t>{7, 8, 9}, {3});
  CHECK(header_text(hydra::test::read_file(dir / "b.npy")).rfind("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 0) == 0);
  hydra::save_npy(dir / "c.npy", std::vector<double>{2.5}, std::span<const hydra::index>{});
  CHECK(header_text(hydra::test::read_file(dir / "c.npy")).rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 0) == 0);
}

TEST_CASE("save_npy round trip through hydra and through xt::load_npy") {
  hydra::test::temp_dir dir;
  const std::vector<double> d{0.5, -1.25, 3e300, 4, 5, 6};
  const std::vector<hydra::index> shape{3, 1, 2};
  hydra::save_npy(dir / "d.npy", d, shape);
  const auto xd = xt::load_npy<double>((dir / "d.npy").string());
  CHECK(xd.dimension() == 3);
  CHECK(xd.shape()[0] == 3);
  CHECK(std::vector<double>(xd.begin(), xd.end()) == d);
  const auto hd = hydra::load_npy_features<double>(dir / "d.npy");
  CHECK(hd.shape == shape);
  CHECK(hd.data == d);
  const auto hf = hydra::load_npy_features<float>(dir / "d.npy");
  CHECK(hf.data[1] == -1.25f);

  const std::vector<std::int32_t> i32{3, -1, 7};
  hydra::save_npy(dir / "i32.npy", std::span<const std::int32_t>(i32), {3});
  const auto xi = xt::load_npy<std::int32_t>((dir / "i32.npy").string());
  CHECK(std::vector<std::int32_t>(xi.begin(), xi.end()) == i32);
  CHECK(hydra::load_npy_labels(dir / "i32.npy") == std::vector<hydra::label_type>{3, -1, 7});

  const std::vector<std::int64_t> i64{1, 2, 0, 5};
  hydra::save_npy(dir / "i64.npy", i64, {4, 1});  // (N, 1) labels are accepted
  CHECK(hydra::load_npy_labels(dir / "i64.npy") == std::vector<hydra::label_type>{1, 2, 0, 5});
  const auto xl = xt::load_npy<std::int64_t>((dir / "i64.npy").string());
  CHECK(xl.shape()[1] == 1);

  const std::vector<std::uint8_t> u8{9, 0, 255};
  hydra::save_npy(dir / "u8.npy", u8, {3});
  CHECK(hydra::load_npy_labels(dir / "u8.npy") == std::vector<hydra::label_type>{9, 0, 255});

  // Large enough to need a multi-chunk write; an empty array too.
  std::vector<float> big(100000);
  for (std::size_t k = 0; k < big.size(); ++k) big[k] = static_cast<float>(k) * 0.5f;
  hydra::save_npy(dir / "big.npy", big, {1000, 100});
  CHECK(hydra::load_npy_features<float>(dir / "big.npy").data == big);
  hydra::save_npy(dir / "empty.npy", std::vector<float>{}, {0, 4});
  const auto e = hydra::load_npy_features<float>(dir / "empty.npy");
  CHECK(e.shape == std::vector<hydra::index>{0, 4});
  CHECK(e.data.empty());
}

TEST_CASE("files written by xt::dump_npy are read by hydra") {
  hydra::test::temp_dir dir;
  xt::xarray<double> x = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.5}};
  xt::dump_npy((dir / "x.npy").string(), x);
  const auto a = hydra::load_npy_features<float>(dir / "x.npy");
  CHECK(a.shape == std::vector<hydra::index>{2, 3});
  CHECK(a.data == std::vector<float>{1, 2, 3, 4, 5, 6.5f});
  xt::xarray<std::int64_t> y = {3, 1};
  xt::dump_npy((dir / "y.npy").string(), y);
  CHECK(hydra::load_npy_labels(dir / "y.npy") == std::vector<hydra::label_type>{3, 1});
  xt::xarray<std::uint8_t> z = {0, 200};
  xt::dump_npy((dir / "z.npy").string(), z);
  CHECK(hydra::load_npy_labels(dir / "z.npy") == std::vector<hydra::label_type>{0, 200});
}

TEST_CASE_TEMPLATE("load_npy_dataset", T, float, double) {
  hydra::test::temp_dir dir;
  hydra::save_npy(dir / "x.npy", std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  hydra::save_npy(dir / "y.npy", std::vector<std::int64_t>{1, 0}, {2});
  const auto ds = hydra::load_npy_dataset<T>(dir / "x.npy", dir / "y.npy");
  CHECK(ds.size() == 2);
  CHECK(ds.sample_size() == 4);
  CHECK(ds.sample_shape().size() == 2);
  CHECK(ds.sample(1)[3] == T(8));
  CHECK(ds.num_classes() == 2);
  hydra::save_npy(dir / "x1.npy", std::vector<double>{1, 2}, {2});
  CHECK(hydra::load_npy_dataset<T>(dir / "x1.npy", dir / "y.npy", 5).sample_size() == 1);

  hydra::save_npy(dir / "y3.npy", std::vector<std::int32_t>{1, 0, 1}, {3});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_dataset<T>(dir / "x.npy", dir / "y3.npy"), hydra::format_error,
                              "2 samples", "x.npy", "3 labels", "y3.npy");
}

TEST_CASE("hand-written headers: key order, spacing, version 2.0") {
  hydra::test::temp_dir dir;
  const bytes payload = raw(std::vector<float>{1.5f, 2.5f});
  hydra::test::write_file(dir / "order.npy", make_npy("{ 'shape':(2,1) ,'fortran_order':False, \"descr\":'<f4'}", payload));
  const auto a = hydra::load_npy_features<float>(dir / "order.npy");
  CHECK(a.shape == std::vector<hydra::index>{2, 1});
  const auto h = hydra::read_npy_header(dir / "order.npy");
  CHECK(h.descr == "<f4");
  CHECK(h.word_size == 4);
  CHECK(h.data_offset % 64 == 0);
  CHECK(std::filesystem::file_size(dir / "order.npy") == static_cast<std::uintmax_t>(h.data_offset) + 8);

  hydra::test::write_file(dir / "v2.npy",
                          make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", payload, 2));
  CHECK(hydra::load_npy_features<double>(dir / "v2.npy").data == std::vector<double>{1.5, 2.5});
  // A 1-d array flagged Fortran-ordered is the same bytes as C order.
  hydra::test::write_file(dir / "f1.npy", make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", payload));
  CHECK(hydra::load_npy_features<float>(dir / "f1.npy").data.size() == 2);
}

TEST_CASE("npy errors name the file and what is wrong") {
  hydra::test::temp_dir dir;
  const auto f4 = [](const std::string& shape) {
    return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  };
  const bytes two = raw(std::vector<float>{1, 2});
  auto write = [&](const std::string& name, const bytes& b) {
    hydra::test::write_file(dir / name, b);
    return dir / name;
  };
  using hydra::format_error;

  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(dir / "nope.npy"), hydra::io_error, "nope.npy");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_labels(dir.path()), hydra::io_error, dir.path().string());

  auto bad_magic = make_npy(f4("(2,)"), two);
  bad_magic[1] = 'X';
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("magic.npy", bad_magic)), format_error,
                              "magic.npy", "magic");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("tiny.npy", {0x93, 'N'})), format_error,
                              "tiny.npy", "truncated");
  auto v3 = make_npy(f4("(2,)"), two, 2);
  v3[6] = 3;
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("v3.npy", v3)), format_error, "v3.npy", "3.0");

  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(write("f2.npy", make_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", {1, 2, 3, 4}))),
      format_error, "f2.npy", "unsupported dtype '<f2'");
  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(write("be.npy", make_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two))),
      format_error, "be.npy", "'>f4'");
  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(write("fortran.npy", make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", two))),
      format_error, "fortran.npy", "Fortran");

  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("short.npy", make_npy(f4("(3,)"), two))),
                              format_error, "short.npy", "truncated", "needs 12 bytes, got 8");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("long.npy", make_npy(f4("(1,)"), two))),
                              format_error, "long.npy", "4 trailing bytes");
  // A shape claiming petabytes is compared with the file size, not allocated.
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("huge.npy", make_npy(f4("(1000000000, 1000000)"), two))),
                              format_error, "huge.npy", "truncated");
  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(write("overflow.npy", make_npy(f4("(99999999999999, 99999999999999)"), two))),
      format_error, "overflow.npy", "overflows");
  auto cut_header = make_npy(f4("(2,)"), two);
  cut_header.resize(40);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("cut-header.npy", cut_header)), format_error,
                              "cut-header.npy", "header");

  // Corrupt dictionaries.
  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(write("nokey.npy", make_npy("{'descr': '<f4', 'shape': (2,), }", two))),
      format_error, "nokey.npy", "missing key 'fortran_order'");
  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(
          write("extra.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two))),
      format_error, "extra.npy", "unexpected key 'x'");
  HYDRA_CHECK_THROWS_WITH_ALL(
      hydra::load_npy_features<float>(write("bool.npy", make_npy("{'descr': '<f4', 'fortran_order': No, 'shape': (2,), }", two))),
      format_error, "bool.npy", "fortran_order");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("neg.npy", make_npy(f4("(-2,)"), two))),
                              format_error, "neg.npy", "shape");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(write("open.npy", make_npy("{'descr': '<f4'", two))),
                              format_error, "open.npy");

  // Right file, wrong use.
  hydra::save_npy(dir / "ints.npy", std::vector<std::int32_t>{1, 2}, {2});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(dir / "ints.npy"), format_error, "ints.npy", "'<i4'",
                              "float32");
  hydra::save_npy(dir / "floats.npy", std::vector<float>{1, 2}, {2});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_labels(dir / "floats.npy"), format_error, "floats.npy", "'<f4'");
  hydra::save_npy(dir / "wide.npy", std::vector<std::int64_t>{1, std::int64_t{1} << 40}, {2});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_labels(dir / "wide.npy"), format_error, "wide.npy", "label[1]",
                              "1099511627776");
  hydra::save_npy(dir / "matrix.npy", std::vector<std::int32_t>{1, 2, 3, 4}, {2, 2});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_labels(dir / "matrix.npy"), format_error, "matrix.npy", "(2, 2)");
  hydra::save_npy(dir / "scalar.npy", std::vector<float>{1}, std::span<const hydra::index>{});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_npy_features<float>(dir / "scalar.npy"), format_error, "scalar.npy",
                              "scalar");
}

TEST_CASE("save_npy errors") {
  hydra::test::temp_dir dir;
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::save_npy(dir / "w.npy", std::vector<float>{1, 2, 3}, {2, 2}), hydra::shape_error,
                              "3 values", "(2, 2)", "w.npy");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::save_npy(dir / "no-such-dir" / "w.npy", std::vector<float>{1}, {1}),
                              hydra::io_error, "no-such-dir");
}

TEST_CASE("load_npy_indices reads int64 and int32 tables and refuses other dtypes") {
  hydra::test::temp_dir dir;
  hydra::save_npy(dir / "t64.npy", std::vector<std::int64_t>{0, 5, 9, 2, 7, 1}, {2, 3});
  const auto t64 = hydra::load_npy_indices(dir / "t64.npy");
  CHECK(t64.shape == std::vector<hydra::index>{2, 3});
  CHECK(t64.data == std::vector<hydra::index>{0, 5, 9, 2, 7, 1});
  hydra::save_npy(dir / "t32.npy", std::vector<std::int32_t>{4, -1}, {2});
  CHECK(hydra::load_npy_indices(dir / "t32.npy").data == std::vector<hydra::index>{4, -1});
  hydra::save_npy(dir / "f.npy", std::vector<float>{1, 2}, {2});
  CHECK_THROWS_WITH_AS(hydra::load_npy_indices(dir / "f.npy"), doctest::Contains("indices must be int64"),
                       hydra::format_error);
}
