// hydra::batch_order: fixed seeded orders (values computed independently, see random.test.cpp),
// epoch structure, drop_last, tables, and the errors.
#include "hydra/data/batch_order.hpp"

#include <algorithm>
#include <set>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"

using hydra::batch_order;
using hydra::index;

namespace {
std::vector<index> as_vector(std::span<const index> s) { return {s.begin(), s.end()}; }
} // namespace

TEST_CASE("shuffled: fixed order for a fixed seed, on every machine") {
  // Epoch permutations for seed 7, N = 10: [8 3 9 0 7 2 1 6 5 4] and [8 4 6 3 7 5 1 0 2 9].
  const auto o = batch_order::shuffled(10, 3, 2, 7);
  CHECK(o.steps() == 6);
  CHECK(o.steps_per_epoch() == 3);
  CHECK(o.batch_size() == 3);
  CHECK(o.num_samples() == 10);
  CHECK(as_vector(o.batch(0)) == std::vector<index>{8, 3, 9});
  CHECK(as_vector(o.batch(2)) == std::vector<index>{1, 6, 5});  // sample 4 dropped this epoch
  CHECK(as_vector(o.batch(3)) == std::vector<index>{8, 4, 6});
  CHECK(as_vector(o.batch(5)) == std::vector<index>{1, 0, 2});
  CHECK(o.epoch_of(2) == 0);
  CHECK(o.epoch_of(3) == 1);
  CHECK(o.table().size() == 18);
}

TEST_CASE("shuffled: keep the incomplete last batch") {
  const auto o = batch_order::shuffled(10, 3, 2, 7, false);
  CHECK(o.steps() == 8);
  CHECK(o.steps_per_epoch() == 4);
  CHECK(as_vector(o.batch(3)) == std::vector<index>{4});
  CHECK(as_vector(o.batch(4)) == std::vector<index>{8, 4, 6});
  CHECK(as_vector(o.batch(7)) == std::vector<index>{9});
  CHECK(o.epoch_of(7) == 1);
}

TEST_CASE("shuffled: every epoch is a permutation; same seed same order; epochs are a prefix") {
  const auto a = batch_order::shuffled(1000, 10, 3, 123);
  const auto b = batch_order::shuffled(1000, 10, 3, 123);
  const auto c = batch_order::shuffled(1000, 10, 3, 124);
  const auto shorter = batch_order::shuffled(1000, 10, 2, 123);
  CHECK(as_vector(a.table()) == as_vector(b.table()));
  CHECK(as_vector(a.table()) != as_vector(c.table()));
  CHECK(std::equal(shorter.table().begin(), shorter.table().end(), a.table().begin()));
  for (index e = 0; e < 3; ++e) {
    std::vector<index> epoch(a.table().begin() + e * 1000, a.table().begin() + (e + 1) * 1000);
    std::ranges::sort(epoch);
    std::vector<index> identity(1000);
    for (index i = 0; i < 1000; ++i) identity[static_cast<std::size_t>(i)] = i;
    CHECK(epoch == identity);
  }
  // Epochs differ from each other.
  CHECK(!std::equal(a.batch(0).begin(), a.batch(0).end(), a.batch(100).begin()));
}

TEST_CASE("sequential") {
  const auto o = batch_order::sequential(5, 2, 2);
  CHECK(o.steps() == 4);
  CHECK(as_vector(o.batch(1)) == std::vector<index>{2, 3});
  CHECK(as_vector(o.batch(2)) == std::vector<index>{0, 1});
  CHECK(batch_order::sequential(5, 5, 1).steps() == 1);
  CHECK(batch_order::shuffled(5, 2, 0, 1).steps() == 0);
}

TEST_CASE("errors name the numbers") {
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::shuffled(10, 0, 1, 1), hydra::invalid_argument, "batch size 0", "10");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::shuffled(10, 11, 1, 1), hydra::invalid_argument, "batch size 11",
                              "[1, 10]");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::shuffled(0, 1, 1, 1), hydra::invalid_argument, "number of samples 0");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::shuffled(10, 2, -1, 1), hydra::invalid_argument, "epochs -1");
  // Counts past what an index holds (10 × 2^62 entries overflow) or what memory can: refused
  // before anything is reserved, not a std::length_error or a wrapped size.
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::shuffled(10, 2, index{1} << 62, 1), hydra::allocation_error,
                              "4611686018427387904 epochs of 10 samples");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::sequential(10, 2, index{1} << 58, 1), hydra::allocation_error,
                              "hydra::batch_order::sequential");
  const auto o = batch_order::shuffled(10, 2, 1, 1);
  HYDRA_CHECK_THROWS_WITH_ALL(o.batch(5), hydra::invalid_argument, "step 5", "[0, 5)");
  CHECK_THROWS_AS(static_cast<void>(o.batch(-1)), hydra::invalid_argument);
}

TEST_CASE("from_table") {
  const auto o = batch_order::from_table({0, 1, 2, 3, 4, 5, 5, 5}, 4, 2, 6);
  CHECK(o.steps() == 4);
  CHECK(o.batch_size() == 2);
  CHECK(o.steps_per_epoch() == 3);  // default N / B
  CHECK(o.epoch_of(3) == 1);
  CHECK(as_vector(o.batch(3)) == std::vector<index>{5, 5});

  CHECK(batch_order::from_table({0, 1}, 1, 2, 6, 7).steps_per_epoch() == 7);
  CHECK(batch_order::from_table({0, 1}, 1, 2, 1 + 1).steps_per_epoch() == 1);
  CHECK(batch_order::from_table({0}, 1, 1, 1).steps_per_epoch() == 1);
  CHECK(batch_order::from_table({0, 0, 0}, 1, 3, 2).steps_per_epoch() == 1);  // N / B = 0 -> 1
  CHECK(batch_order::from_table({}, 0, 3, 2).steps() == 0);

  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::from_table({0, 1, 2, 9}, 2, 2, 6), hydra::invalid_argument, "row 1",
                              "column 1", "9", "[0, 6)");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::from_table({-1, 1}, 1, 2, 6), hydra::invalid_argument, "row 0",
                              "column 0", "-1");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::from_table({0, 1, 2}, 2, 2, 6), hydra::shape_error, "3 entries",
                              "2 steps x 2");
  HYDRA_CHECK_THROWS_WITH_ALL(batch_order::from_table({0, 1}, 1, 0, 6), hydra::invalid_argument, "batch size 0");
  CHECK_THROWS_AS(batch_order::from_table({0, 1}, 1, 2, 0), hydra::invalid_argument);
  CHECK_THROWS_AS(batch_order::from_table({0, 1}, -1, 2, 6), hydra::invalid_argument);
  CHECK_THROWS_AS(batch_order::from_table({0, 1}, 1, 2, 6, -1), hydra::invalid_argument);
}
