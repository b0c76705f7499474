#pragma once
// LeNet5: the paper's network for MNIST and Fashion-MNIST (supplement: 61,706 trainable
// parameters, tanh replaced by ReLU), exactly
//   Conv2d(1, 6, 5, padding=2) → ReLU → MaxPool2d(2) → Conv2d(6, 16, 5) → ReLU → MaxPool2d(2)
//   → Flatten → Dense(400, 120) → ReLU → Dense(120, 84) → ReLU → Dense(84, 10)
// on 1 × 28 × 28 inputs, with PyTorch's parameter order, so that weights move between hydra and
// torch.nn.utils.parameters_to_vector of the same nn.Sequential.

#include "hydra/nn/activation.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/pooling.hpp"
#include "hydra/nn/sequential.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
using lenet5_layers = Sequential<Conv2d<T, B>, ReLU<T, B>, MaxPool2d<T, B>, Conv2d<T, B>, ReLU<T, B>, MaxPool2d<T, B>,
                                 Flatten<T, B>, Dense<T, B>, ReLU<T, B>, Dense<T, B>, ReLU<T, B>, Dense<T, B>>;

template <Scalar T, Backend B = default_backend>
class LeNet5 : public lenet5_layers<T, B> {
public:
  static constexpr index parameters = 61706;

  LeNet5()
      : lenet5_layers<T, B>(Conv2d<T, B>(1, 28, 28, 6, 5, 1, 2), ReLU<T, B>(), MaxPool2d<T, B>(6, 28, 28, 2),
                            Conv2d<T, B>(6, 14, 14, 16, 5), ReLU<T, B>(), MaxPool2d<T, B>(16, 10, 10, 2),
                            Flatten<T, B>(400), Dense<T, B>(400, 120), ReLU<T, B>(), Dense<T, B>(120, 84), ReLU<T, B>(),
                            Dense<T, B>(84, 10)) {}
};

} // namespace hydra
