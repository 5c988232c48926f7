// All op families.
#pragma once

#include <nabla/ops/activation.h>
#include <nabla/ops/attack_step.h>
#include <nabla/ops/conv.h>
#include <nabla/ops/elementwise.h>
#include <nabla/ops/linalg.h>
#include <nabla/ops/loss.h>
#include <nabla/ops/norm.h>
#include <nabla/ops/pool.h>
#include <nabla/ops/reduce.h>
#include <nabla/ops/shape.h>
