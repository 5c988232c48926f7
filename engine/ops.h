// All op families.
#pragma once

#include <nabla/ops/elementwise.h>
#include <nabla/ops/reduce.h>
