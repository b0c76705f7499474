// hydra/data/xtensor.hpp: xtensor adaptors of views, host containers and a data set's features are
// the same memory (the same data pointer, every element at hydra's address), have hydra's shape,
// and carry writes into hydra's storage.

#include <doctest/doctest.h>

#include <numeric>
#include <tuple>
#include <type_traits>
#include <vector>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>

#include "hydra/backend/cpu.hpp"
#include "hydra/data/xtensor.hpp"

namespace hydra::test {
namespace {
/// Whether a (non-const) adaptor of this type gives only read access to its elements.
template <class Adaptor>
constexpr bool read_only =
    std::is_const_v<std::remove_reference_t<decltype(*std::declval<std::remove_cvref_t<Adaptor>&>().data())>>;

/// The number of axes of an expression whose rank is fixed at compile time (its shape is a std::array).
template <class E>
constexpr std::size_t static_rank = std::tuple_size_v<std::remove_cvref_t<decltype(std::declval<E&>().shape())>>;

template <class C>
concept adaptable = requires(C&& c) { as_xtensor(std::forward<C>(c)); };
template <class D>
concept features_adaptable = requires(D&& d) { features_as_xtensor(std::forward<D>(d)); };

template <class T>
std::vector<T> counting(std::size_t n) {
  std::vector<T> values(n);
  std::iota(values.begin(), values.end(), T(1));
  return values;
}
} // namespace

TEST_CASE_TEMPLATE("as_xtensor(matrix_view): rows x cols over the view's memory, its stride kept", T, float, double) {
  auto storage = counting<T>(3 * 5);
  const matrix_view<T> m(storage.data(), 3, 4, 5);  // the first 4 columns of a 3 x 5 block
  auto a = as_xtensor(m);
  static_assert(static_rank<decltype(a)> == 2);
  static_assert(!read_only<decltype(a)>);
  CHECK(a.shape()[0] == 3);
  CHECK(a.shape()[1] == 4);
  CHECK(a.size() == 12);
  CHECK(a.data() == storage.data());
  for (index r = 0; r < m.rows; ++r)
    for (index c = 0; c < m.cols; ++c) {
      CAPTURE(r);
      CAPTURE(c);
      CHECK(&a(r, c) == m.row(r) + c);
    }
  CHECK(xt::sum(a)() == doctest::Approx(1 + 2 + 3 + 4 + 6 + 7 + 8 + 9 + 11 + 12 + 13 + 14));

  a(1, 2) = -1;
  CHECK(storage[1 * 5 + 2] == -1);
  a = 2 * a;  // an xtensor expression assigned through the adaptor: the view's elements only
  CHECK(storage[0] == 2);
  CHECK(storage[1 * 5 + 2] == -2);
  CHECK(storage[2 * 5 + 3] == 28);
  CHECK(storage[4] == 5);  // column 4 is outside the view
  CHECK(storage[2 * 5 + 4] == 15);

  const auto c = as_xtensor(matrix_view<const T>(m));
  static_assert(read_only<decltype(c)>);
  static_assert(read_only<decltype(as_xtensor(matrix_view<const T>(m)))>);
  CHECK(c.data() == storage.data());
  CHECK(c(2, 3) == 28);
}

TEST_CASE("as_xtensor(matrix_view): blocks, one row, one column and no rows") {
  auto storage = counting<double>(4 * 6);
  const matrix_view<double> m(storage.data(), 4, 6);
  const auto block = as_xtensor(m.row_block(1, 2).col_block(2, 3));  // rows 1-2, columns 2-4
  CHECK(block.shape()[0] == 2);
  CHECK(block.shape()[1] == 3);
  CHECK(&block(0, 0) == &storage[1 * 6 + 2]);
  CHECK(&block(1, 2) == &storage[2 * 6 + 4]);
  const auto row = as_xtensor(m.row_block(3, 1));
  CHECK(row.shape()[0] == 1);
  CHECK(&row(0, 5) == &storage[3 * 6 + 5]);
  const auto column = as_xtensor(m.col_block(1, 1));
  CHECK(column.shape()[1] == 1);
  CHECK(&column(3, 0) == &storage[3 * 6 + 1]);
  CHECK(xt::sum(column)() == 2 + 8 + 14 + 20);
  const auto none = as_xtensor(m.row_block(0, 0));
  CHECK(none.size() == 0);

  // Assignments reach the block's elements and no others (xtensor must not copy linearly here).
  auto inner = as_xtensor(m.row_block(1, 2).col_block(2, 3));
  inner = xt::zeros<double>({2, 3});
  for (index r = 0; r < 4; ++r)
    for (index c = 0; c < 6; ++c) {
      const bool inside = r >= 1 && r <= 2 && c >= 2 && c <= 4;
      CHECK(storage[static_cast<std::size_t>(r * 6 + c)] == (inside ? 0.0 : static_cast<double>(r * 6 + c + 1)));
    }
  auto whole = as_xtensor(m);  // contiguous: xtensor may assign linearly
  whole += 1.0;
  CHECK(storage[0] == 2);
  CHECK(storage[1 * 6 + 2] == 1);
  CHECK(storage[23] == 25);
}

TEST_CASE_TEMPLATE("as_xtensor(vector_view): size elements over the view's memory", T, float, double) {
  auto storage = counting<T>(7);
  const vector_view<T> v(storage.data() + 2, 4);
  auto a = as_xtensor(v);
  static_assert(static_rank<decltype(a)> == 1);
  CHECK(a.shape()[0] == 4);
  CHECK(a.data() == storage.data() + 2);
  for (index i = 0; i < v.size; ++i) CHECK(&a(i) == v.data + i);
  a += T(10);
  CHECK(storage == std::vector<T>{1, 2, 13, 14, 15, 16, 7});
  const auto c = as_xtensor(vector_view<const T>(v));
  static_assert(read_only<decltype(c)>);
  CHECK(c(3) == 16);
}

TEST_CASE("as_xtensor of hydra::cpu containers: the container's memory, its accessor's elements") {
  matrix<double, cpu> m(2, 3);
  for (index r = 0; r < 2; ++r)
    for (index c = 0; c < 3; ++c) m(r, c) = static_cast<double>(10 * r + c);
  auto a = as_xtensor(m);
  CHECK(a.data() == m.data());
  CHECK(a.shape()[0] == 2);
  CHECK(a.shape()[1] == 3);
  for (index r = 0; r < 2; ++r)
    for (index c = 0; c < 3; ++c) CHECK(&a(r, c) == &m(r, c));
  a(1, 0) = 99;
  CHECK(m(1, 0) == 99);
  const auto& cm = m;
  static_assert(read_only<decltype(as_xtensor(cm))>);
  CHECK(as_xtensor(cm)(1, 2) == 12);

  vector<float, cpu> v(5);
  auto x = as_xtensor(v);
  CHECK(x.data() == v.data());
  x = xt::arange<float>(5);
  CHECK(v[4] == 4.0f);
  const auto& cv = v;
  CHECK(as_xtensor(cv)(3) == 3.0f);
  // A temporary container is refused: its adaptor would outlive the memory.
  static_assert(adaptable<matrix<double, cpu>&> && adaptable<const vector<double, cpu>&>);
  static_assert(!adaptable<matrix<double, cpu>> && !adaptable<vector<double, cpu>>);
}

TEST_CASE_TEMPLATE("features_as_xtensor: N x sample shape over the data set's storage", T, float, double) {
  const index N = 3;
  dataset<T> images({2, 3, 4}, counting<T>(N * 24), {0, 1, 0});  // N x C x H x W
  const auto& read = images;
  const auto x = features_as_xtensor(read);
  REQUIRE(x.dimension() == 4);
  CHECK(std::vector<std::size_t>(x.shape().begin(), x.shape().end()) == std::vector<std::size_t>{3, 2, 3, 4});
  CHECK(x.data() == images.features().data());
  static_assert(read_only<decltype(x)>);
  for (index i = 0; i < N; ++i)
    for (index ch = 0; ch < 2; ++ch)
      for (index r = 0; r < 3; ++r)
        for (index c = 0; c < 4; ++c)
          CHECK(&x(i, ch, r, c) == &images.sample(i)[static_cast<std::size_t>((ch * 3 + r) * 4 + c)]);

  const auto fixed = features_as_xtensor<4>(read);
  static_assert(static_rank<decltype(fixed)> == 4);
  CHECK(fixed.data() == images.features().data());
  CHECK(fixed(2, 1, 2, 3) == images.sample(2)[23]);
  CHECK_THROWS_WITH_AS((void)features_as_xtensor<2>(read),
                       "hydra::features_as_xtensor<2>: the samples have shape (2, 3, 4), so the features have rank 4",
                       shape_error);

  auto w = features_as_xtensor<4>(images);  // mutable: writes land in the data set
  static_assert(!read_only<decltype(w)>);
  w(1, 0, 2, 1) = -5;
  CHECK(images.sample(1)[2 * 4 + 1] == -5);
  auto all = features_as_xtensor(images);
  all /= T(2);
  CHECK(images.sample(1)[2 * 4 + 1] == T(-2.5));
  CHECK(images.sample(0)[0] == T(0.5));

  const dataset<T> flat({5}, counting<T>(2 * 5), {1, 0});
  const auto f = features_as_xtensor<2>(flat);
  CHECK(f.shape()[0] == 2);
  CHECK(f.shape()[1] == 5);
  CHECK(&f(1, 4) == &flat.features()[9]);
  static_assert(features_adaptable<dataset<T>&> && features_adaptable<const dataset<T>&>);
  static_assert(!features_adaptable<dataset<T>>);
}

} // namespace hydra::test
