// LeNet5 on real data: a short run on a Fashion-MNIST subset must learn (skipped, and reported as
// skipped, when Debian's dataset-fashion-mnist is not installed).

#include <doctest/doctest.h>

#include <filesystem>

#include "hydra/backend/cpu.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/idx.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/skip.hpp"

namespace hydra::test {

TEST_CASE("LeNet5 learns a Fashion-MNIST subset in a few hundred steps") {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir / "train-images-idx3-ubyte.gz")) {
    HYDRA_TEST_SKIP("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)");
    return;
  }
  const auto all = load_idx_dataset<float>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
  const auto train = split(all, 0, 2000);
  const auto held_out = split(all, 50000, 1000);
  LeNet5<float> net;
  SoftmaxCrossEntropy<float> loss;
  SGD<float> optimizer(net.parameter_count(), {.momentum = 0.9, .weight_decay = 2e-5});
  constant_schedule schedule(0.01);
  trainer fit(net, loss, optimizer, schedule, {.progress = progress_mode::never});
  vector<float, cpu> w(net.parameter_count());
  net.initialize(w.view(), 1);
  const auto before = fit.evaluate(w.view(), held_out);
  fit.fit(w.view(), train, batch_order::shuffled(train.size(), 32, 5, 2), nullptr);  // 310 steps
  const auto after = fit.evaluate(w.view(), held_out);
  MESSAGE("held-out loss " << before.loss << " -> " << after.loss << ", accuracy " << after.accuracy);
  // From chance (ln 10 ≈ 2.30) to well below 1 nat and above 65 % accuracy on unseen images.
  CHECK(before.loss > 2.0);
  CHECK(after.loss < 1.0);
  CHECK(after.accuracy > 0.65);
}

} // namespace hydra::test
