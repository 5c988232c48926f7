#include <nabla/ops/common.h>

#include <sstream>

namespace nabla::ops_detail {

void check_same(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  bool ok = true;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first)
      first = t;
    else if (t->dtype() != first->dtype() || t->device() != first->device())
      ok = false;
  }
  if (ok) return;
  std::ostringstream os;
  os << op << ": dtype or device mismatch between";
  for (const Tensor* t : ts)
    if (t && t->defined()) os << ' ' << t->str();
  throw Error(os.str());
}

Axis axis_of(const Shape& s, int64_t dim) {
  Axis a;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    if (i < dim)
      a.outer *= s[size_t(i)];
    else if (i == dim)
      a.D = s[size_t(i)];
    else
      a.inner *= s[size_t(i)];
  }
  return a;
}

void check_dim(const char* op, const char* what, const Tensor& t, int64_t ndim) {
  NABLA_CHECK(t.dim() == ndim, op, ": ", what, " must have ", ndim, " dims, got ", t.str());
}

}  // namespace nabla::ops_detail
