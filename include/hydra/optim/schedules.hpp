#pragma once
// All learning-rate schedules: constant, step (MultiStepLR), exponential, plateau
// (reduce-on-plateau as in the HYDRA paper), list, and the type-erased any_schedule.
// See docs/optim.md.

#include "hydra/optim/concepts.hpp"
#include "hydra/optim/schedules/any.hpp"
#include "hydra/optim/schedules/constant.hpp"
#include "hydra/optim/schedules/exponential.hpp"
#include "hydra/optim/schedules/list.hpp"
#include "hydra/optim/schedules/plateau.hpp"
#include "hydra/optim/schedules/step.hpp"
