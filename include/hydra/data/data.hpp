#pragma once
// Everything of the data component in one include: the dataset type and its helpers, the
// Dataset concept, the IDX / .npy / CIFAR-10 readers, and batch orders.

#include "hydra/data/batch_order.hpp"
#include "hydra/data/cifar.hpp"
#include "hydra/data/concepts.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/idx.hpp"
#include "hydra/data/npy.hpp"
#include "hydra/core/random.hpp"
