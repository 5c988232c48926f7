// Device dispatch of kernels, used by the ops and tensor.cpp (internal; not part of the API).
//
//   NABLA_KERNEL(device, fn)(args...)   calls nabla::cuda::fn(args...) for a CUDA device (after
//                                       making it this thread's current device), else
//                                       nabla::cpu::fn(args...)
// The cpu:: and cuda:: twins have identical signatures (kernels/<family>.h), so the macro picks
// one of two function pointers of the same type. Without the CUDA backend a CUDA device is an
// error naming the kernel.
#pragma once

#include <nabla/device.h>

namespace nabla::detail {
// ensures: when d is a CUDA device it is this thread's current device; returns d.is_cuda().
//          Throws naming `kernel` when d is a CUDA device and the build has no CUDA backend.
bool select_device(Device d, const char* kernel);
}  // namespace nabla::detail

#ifdef NABLA_HAVE_CUDA
#define NABLA_KERNEL(dev, ...)                                                       \
  (::nabla::detail::select_device((dev), #__VA_ARGS__) ? &::nabla::cuda::__VA_ARGS__ \
                                                       : &::nabla::cpu::__VA_ARGS__)
#else
// select_device throws for a CUDA device here; the conditional (rather than a comma) gives the
// template-id a context in which it names one function.
#define NABLA_KERNEL(dev, ...)                                                      \
  (::nabla::detail::select_device((dev), #__VA_ARGS__) ? &::nabla::cpu::__VA_ARGS__ \
                                                       : &::nabla::cpu::__VA_ARGS__)
#endif
