// The whole public API in one include.
#pragma once

#include <nabla/autograd.h>
#include <nabla/device.h>
#include <nabla/error.h>
#include <nabla/ops.h>
#include <nabla/random.h>
#include <nabla/tensor.h>
