// The whole public API in one include.
#pragma once

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/data/image_folder.h>
#include <nabla/data/loader.h>
#include <nabla/data/mnist.h>
#include <nabla/device.h>
#include <nabla/error.h>
#include <nabla/explain/explain.h>
#include <nabla/io/heatmap.h>
#include <nabla/io/image.h>
#include <nabla/io/metrics.h>
#include <nabla/io/plot.h>
#include <nabla/io/progress.h>
#include <nabla/io/safetensors.h>
#include <nabla/nn/init.h>
#include <nabla/nn/layers.h>
#include <nabla/nn/model.h>
#include <nabla/nn/module.h>
#include <nabla/ops.h>
#include <nabla/optim/optimizer.h>
#include <nabla/optim/schedule.h>
#include <nabla/random.h>
#include <nabla/tensor.h>
