#pragma once
// One classification batch for a model benchmark: the model, softmax cross-entropy, parameters in
// PyTorch's default ranges and B deterministic images with labels, built once per benchmark run
// (outside the timed loop).

#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/loss.hpp"
#include "support/inputs.hpp"

namespace hydra::bench {

template <class Model>
struct classification_batch {
  using T = typename Model::scalar_type;

  Model model;
  SoftmaxCrossEntropy<T> loss;
  vector<T, cpu> w;
  matrix<T, cpu> x;
  std::vector<label_type> labels;

  classification_batch(Model m, index batch)
      : model(std::move(m)), w(model.parameter_count()), x(batch, model.input_size()) {
    model.initialize(w.view(), deterministic_uniform(1));
    fill_pixels(x.flat(), 2);
    for (index b = 0; b < batch; ++b) labels.push_back(static_cast<label_type>((b * 7) % model.output_size()));
  }
  [[nodiscard]] batch_targets<T> y() const { return {labels.data(), {}}; }
};

} // namespace hydra::bench
