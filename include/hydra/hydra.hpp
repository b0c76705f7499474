#pragma once
// The umbrella header: everything hydra offers on the CPU.
//
//   core/      index, views, owning containers, errors, the checkpoint archive format
//   backend/   the operation set (Backend concept) and hydra::cpu on Eigen
//   nn/        layers (dense, convolution, pooling, batch norm), composites (Chain, Residual,
//              DenseBlock), losses, Sequential/Network, ready models: LeNet5, DenseNet40, MobileNetV2
//              (Layer, Loss, Model concepts)
//   optim/     SGD and learning-rate schedules (Optimizer, LearningRateSchedule concepts)
//   data/      datasets, IDX / NPY / CIFAR-10 readers, batch orders (Dataset concept)
//   train/     the training loop with per-step callbacks, checkpoint and resume
//   hypergradient/  dw_T/dε_i through training: Exact and HessianFree trackers, approximation error
//   attribution/    contributions C(i, j), ranking helpers, ground truth by retraining
//   influence/      the influence-function baseline (explicit, conjugate gradient, LiSSA)
//   metrics/        sign error, rank correlation, detection AUC, k-means / Jaccard, class matrix

#include "hydra/attribution/contributions.hpp"
#include "hydra/attribution/ground_truth.hpp"
#include "hydra/attribution/ranking.hpp"
#include "hydra/backend/concepts.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/core/archive.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/cifar.hpp"
#include "hydra/data/concepts.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/idx.hpp"
#include "hydra/data/npy.hpp"
#include "hydra/hypergradient/adjoint.hpp"
#include "hydra/hypergradient/approximation_error.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/hypergradient/trajectory.hpp"
#include "hydra/influence/influence.hpp"
#include "hydra/metrics/metrics.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/any_layer.hpp"
#include "hydra/nn/batch_norm.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/blocks.hpp"
#include "hydra/nn/chain.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/dropout.hpp"
#include "hydra/nn/densenet.hpp"
#include "hydra/nn/dynamic_network.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/mobilenet.hpp"
#include "hydra/nn/model_spec.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/nn/pooling.hpp"
#include "hydra/nn/sequential.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/checkpoint.hpp"
#include "hydra/train/trainer.hpp"
