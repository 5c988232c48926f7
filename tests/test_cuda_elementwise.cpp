// CPU/CUDA parity of the elementwise family (kernels/cuda/elementwise.cu) and the reductions
// (kernels/cuda/reduce.cu), at the op level: outputs and every input gradient, with new CUDA
// allocations filled with NaN (tests/cuda_parity.h), in float32 and float64.
//
//   1. every unary op, inputs drawn away from its kinks (relu/abs/sign at 0, clamp's bounds),
//      on a contiguous tensor whose length is not a multiple of the vector width (packs plus a
//      scalar tail) and on an unaligned view of it (the scalar fallback);
//   2. every binary op on equal shapes, with ties for minimum/maximum (the gradient is split),
//      and with broadcasting (materialized by the strided copy, reduced back by sum_to);
//   3. where, with a broadcast condition;
//   4. sum, mean, var (dims, keepdim, correction), max/argmax (values and first indices under
//      ties, NaN propagation), including shapes long enough that the sums are split into
//      chunks and added by a second pass, and a bit-for-bit repeat (determinism).
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"
#include "gradcheck.h"

namespace {

using nabla::Device;
using nabla::DType;
using nabla::Shape;
using nabla::Tensor;
using nabla::test::check_parity;
using nabla::test::gpu_or_skip;
using nabla::test::ParityOptions;

enum class Domain { Any, Positive, Kinks };

// Values in [lo, hi] from a fixed seed; Kinks keeps them at least 0.05 away from 0, -0.5 and
// 0.7 (the kinks of relu, abs, sign, leaky_relu and clamp(-0.5, 0.7)).
Tensor values(const Shape& s, uint64_t seed, Domain d, DType dt = DType::Float32) {
  const double lo = d == Domain::Positive ? 0.5 : -2.0, hi = 2.0;
  std::vector<double> v = nabla::test::uniform_values(nabla::shape_numel(s), seed, lo, hi);
  for (double& e : v) {
    if (d == Domain::Kinks)
      for (double k : {0.0, -0.5, 0.7})
        if (std::abs(e - k) < 0.05) e = k + (e < k ? -0.05 : 0.05);
  }
  return nabla::from_vector<double>(v, s).to(dt);
}

ParityOptions tolerance(DType dt) {
  ParityOptions o;
  if (dt == DType::Float64) {
    o.atol = 1e-12;
    o.rtol = 1e-11;
  }
  return o;
}

// Number of elements whose bits differ (NaN against NaN counts as equal).
int64_t bit_diffs(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> y = b.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  REQUIRE(x.size() == y.size());
  int64_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i)
    bad += !(std::isnan(x[i]) && std::isnan(y[i])) && std::memcmp(&x[i], &y[i], sizeof(double));
  return bad;
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
  Domain domain;
};

std::vector<UnaryCase> unary_cases() {
  using namespace nabla;
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, Domain::Any},
      {"exp", [](const Tensor& x) { return exp(x); }, Domain::Any},
      {"log", [](const Tensor& x) { return log(x); }, Domain::Positive},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, Domain::Positive},
      {"abs", [](const Tensor& x) { return abs(x); }, Domain::Kinks},
      {"sign", [](const Tensor& x) { return sign(x); }, Domain::Kinks},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, Domain::Positive},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, Domain::Any},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, Domain::Positive},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }, Domain::Kinks},
      {"add scalar", [](const Tensor& x) { return add(x, 1.5); }, Domain::Any},
      {"sub scalar", [](const Tensor& x) { return sub(x, 0.25); }, Domain::Any},
      {"mul scalar", [](const Tensor& x) { return mul(x, -2.0); }, Domain::Any},
      {"div scalar", [](const Tensor& x) { return div(x, 4.0); }, Domain::Any},
      {"rsub scalar", [](const Tensor& x) { return rsub(1.5, x); }, Domain::Any},
      {"rdiv scalar", [](const Tensor& x) { return rdiv(2.0, x); }, Domain::Positive},
      {"relu", [](const Tensor& x) { return relu(x); }, Domain::Kinks},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }, Domain::Kinks},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, Domain::Any},
      {"sigmoid wide", [](const Tensor& x) { return sigmoid(mul(x, 20.0)); }, Domain::Any},
      {"tanh", [](const Tensor& x) { return tanh(x); }, Domain::Any},
  };
}

}  // namespace

TEST_CASE("cuda elementwise: every unary op, forward and backward, aligned and unaligned") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64}) {
    uint64_t seed = 1;
    for (const UnaryCase& c : unary_cases()) {
      const std::string name = std::string(c.name) + (dt == DType::Float32 ? " f32" : " f64");
      // 555 elements: 138 float4 packs (277 double2 packs) and a scalar tail.
      const Tensor x = values({3, 37, 5}, seed++, c.domain, dt);
      check_parity(
          name, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{c.f(in[0])}; }, {x},
          tolerance(dt));
      // A view one element into the storage: its pointer is not 16-byte aligned, so the kernel
      // takes the scalar path; the gradient reaches x through narrow's backward.
      check_parity(
          name + " unaligned",
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{c.f(in[0].reshape({555}).narrow(0, 1, 554))};
          },
          {x}, tolerance(dt));
    }
  }
}

TEST_CASE("cuda elementwise: every binary op, equal shapes, ties and broadcasting") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  struct BinaryCase {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> f;
    Domain d1, d2;
  };
  const std::vector<BinaryCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, Domain::Any, Domain::Any},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, Domain::Any, Domain::Any},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, Domain::Any, Domain::Any},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, Domain::Any,
       Domain::Positive},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, Domain::Positive,
       Domain::Any},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, Domain::Any,
       Domain::Any},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, Domain::Any,
       Domain::Any},
  };
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 37, 5}, {3, 37, 5}},  // equal: the kernels' own vector path and tail
      {{4, 1, 5}, {3, 5}},       // both sides broadcast
      {{2, 3, 7}, {1}},          // a one-element operand
      {{6}, {5, 1}},             // a row against a column
  };
  for (DType dt : {DType::Float32, DType::Float64}) {
    uint64_t seed = 100;
    for (const BinaryCase& c : cases)
      for (const auto& [sa, sb] : shapes) {
        const std::string name = std::string(c.name) + " " + shape_str(sa) + " with " +
                                 shape_str(sb) + (dt == DType::Float32 ? " f32" : " f64");
        check_parity(
            name,
            [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{c.f(in[0], in[1])}; },
            {values(sa, seed, c.d1, dt), values(sb, seed + 1, c.d2, dt)}, tolerance(dt));
        seed += 2;
      }
    // Ties: every other element of b equals a, where the gradient is split evenly.
    Tensor a = values({3, 37, 5}, 7, Domain::Any, dt);
    std::vector<double> av = a.to_vector<double>(),
                        bv = values({555}, 8, Domain::Any, dt).to_vector<double>();
    for (size_t i = 0; i < bv.size(); i += 2) bv[i] = av[i];
    Tensor b = from_vector<double>(bv, {3, 37, 5}).to(dt);
    for (const BinaryCase& c : {cases[5], cases[6]})
      check_parity(
          std::string(c.name) + " ties",
          [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{c.f(in[0], in[1])}; },
          {a, b}, tolerance(dt));
  }
}

TEST_CASE("cuda elementwise: where with broadcasting") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64}) {
    std::vector<double> cv = {1, 0, 0, 1};
    Tensor cond = from_vector<double>(cv, {4, 1}).to(dt);
    check_parity(
        "where broadcast",
        [](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{where(in[0], in[1], in[2])};
        },
        {cond, values({4, 5}, 1, Domain::Any, dt), values({5}, 2, Domain::Any, dt)}, tolerance(dt));
    Tensor c2 = gt(values({3, 37, 5}, 3, Domain::Kinks, dt), 0.0);
    check_parity(
        "where equal shapes",
        [](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{where(in[0], in[1], in[2])};
        },
        {c2, values({3, 37, 5}, 4, Domain::Any, dt), values({3, 37, 5}, 5, Domain::Any, dt)},
        tolerance(dt));
  }
}

TEST_CASE("cuda reduce: sum and mean over every dim combination, keepdim") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  const std::vector<std::vector<int64_t>> dim_sets = {{},   {0},    {1},    {2},
                                                      {-1}, {0, 2}, {1, 2}, {0, 1, 2}};
  for (DType dt : {DType::Float32, DType::Float64})
    for (const auto& dims : dim_sets)
      for (bool keep : {false, true}) {
        const std::string name = "dims " + shape_str(dims) + (keep ? " keepdim" : "") +
                                 (dt == DType::Float32 ? " f32" : " f64");
        const Tensor x = values({4, 33, 6}, 11, Domain::Any, dt);
        check_parity(
            "sum " + name,
            [&](const std::vector<Tensor>& in) {
              return std::vector<Tensor>{sum(in[0], dims, keep)};
            },
            {x}, tolerance(dt));
        if (!dims.empty())
          check_parity(
              "mean " + name,
              [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{mean(in[0], dims, keep)};
              },
              {x}, tolerance(dt));
      }
  check_parity("sum all",
               [](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(in[0])}; },
               {values({7, 9, 11}, 12, Domain::Any)});
  check_parity("mean all",
               [](const std::vector<Tensor>& in) { return std::vector<Tensor>{mean(in[0])}; },
               {values({7, 9, 11}, 13, Domain::Any)});
}

TEST_CASE("cuda reduce: long rows and columns (two-pass chunked sums), deterministic") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  // [2, 300000] over dim 1: rows split into chunks; [50000, 3] over dim 0: columns split;
  // [1000, 999] over everything: a column pass, then a row pass.
  struct Case {
    Shape shape;
    std::vector<int64_t> dims;
  };
  for (const Case& c : {Case{{2, 300000}, {1}}, Case{{50000, 3}, {0}}, Case{{1000, 999}, {0, 1}}}) {
    const std::string name = "sum " + shape_str(c.shape) + " dims " + shape_str(c.dims);
    const Tensor x = values(c.shape, 21, Domain::Any);
    ParityOptions o;
    o.backward = false;
    check_parity(
        name,
        [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(in[0], c.dims)}; }, {x},
        o);
    const Tensor xg = x.to(Device::cuda(0));
    Tensor a = sum(xg, c.dims), b = sum(xg, c.dims);
    CHECK_MESSAGE(bit_diffs(a, b) == 0, name << ": two runs differ");
  }
}

TEST_CASE("cuda reduce: var over dims with correction and keepdim") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {2}, {0, 2}, {0, 1, 2}};
  for (DType dt : {DType::Float32, DType::Float64})
    for (const auto& dims : dim_sets)
      for (int64_t correction : {0, 1})
        for (bool keep : {false, true}) {
          const std::string name = "var dims " + shape_str(dims) + " correction " +
                                   std::to_string(correction) + (keep ? " keepdim" : "") +
                                   (dt == DType::Float32 ? " f32" : " f64");
          check_parity(
              name,
              [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{var(in[0], dims, correction, keep)};
              },
              {values({4, 33, 6}, 31, Domain::Any, dt)}, tolerance(dt));
        }
  check_parity("var all",
               [](const std::vector<Tensor>& in) { return std::vector<Tensor>{var(in[0])}; },
               {values({5, 300}, 32, Domain::Any)});
}

TEST_CASE("cuda reduce: max and argmax, ties keep the first index, NaN wins") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  // Small integers: many ties in every slice, so a wrong tie rule changes the indices.
  std::mt19937_64 gen(41);
  std::vector<double> v(4 * 33 * 6);
  for (double& e : v) e = double(gen() % 4);
  for (DType dt : {DType::Float32, DType::Float64}) {
    const Tensor ties = from_vector<double>(v, {4, 33, 6}).to(dt);
    const Tensor distinct = values({4, 33, 6}, 42, Domain::Any, dt);
    for (int64_t dim : {0, 1, 2, -1})
      for (bool keep : {false, true}) {
        const std::string name = "max dim " + std::to_string(dim) + (keep ? " keepdim" : "") +
                                 (dt == DType::Float32 ? " f32" : " f64");
        auto f = [&](const std::vector<Tensor>& in) {
          auto [y, idx] = max(in[0], dim, keep);
          return std::vector<Tensor>{y, idx};
        };
        check_parity(name, f, {distinct}, tolerance(dt));
        ParityOptions o = tolerance(dt);
        o.backward = false;  // with ties the gradient follows the index, already compared
        check_parity(name + " ties", f, {ties}, o);
      }
    check_parity(
        "argmax flat",
        [](const std::vector<Tensor>& in) { return std::vector<Tensor>{argmax(in[0])}; }, {ties},
        tolerance(dt));
    check_parity(
        "max all", [](const std::vector<Tensor>& in) { return std::vector<Tensor>{max(in[0])}; },
        {distinct}, tolerance(dt));
    // A long row: one block per row with (value, index) pairs reduced in a tree.
    std::vector<double> row(2 * 5000);
    for (double& e : row) e = double(gen() % 50);
    ParityOptions o = tolerance(dt);
    o.backward = false;
    check_parity(
        "argmax long rows",
        [](const std::vector<Tensor>& in) { return std::vector<Tensor>{argmax(in[0], 1)}; },
        {from_vector<double>(row, {2, 5000}).to(dt)}, o);
    // NaN propagates and its first index is returned, along rows and along columns.
    std::vector<double> nv = distinct.to_vector<double>();
    nv[5] = nv[77] = nv[300] = std::numeric_limits<double>::quiet_NaN();
    const Tensor with_nan = from_vector<double>(nv, {4, 33, 6}).to(dt);
    for (int64_t dim : {0, 1, 2})
      check_parity(
          "max with NaN dim " + std::to_string(dim),
          [&](const std::vector<Tensor>& in) {
            auto [y, idx] = max(in[0], dim);
            return std::vector<Tensor>{y, idx};
          },
          {with_nan}, o);
  }
}
