#pragma once
// Fixture of the layering test: core/ may not include train/, so the check must fail on this tree.
#include "hydra/core/types.hpp"
#include "hydra/train/trainer.hpp"
