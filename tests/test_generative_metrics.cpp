// engine/metrics/generative: the Frechet distance, KID, precision and recall, class coverage, on
// hand-computed cases.
#include <cmath>

#include <nabla/metrics/generative.h>
#include <nabla/ops.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("frechet distance: zero against itself, hand-computed cases, translation") {
  // 1-D: a = {-1, 1} has mean 0 and variance 2, b = {1, 5} mean 3 and variance 8:
  // FD = 3^2 + (sqrt 2 - sqrt 8)^2 = 9 + 2.
  CHECK(metrics::frechet_distance(tensor({-1, 1}, {2, 1}), tensor({1, 5}, {2, 1})) ==
        doctest::Approx(11.0).epsilon(1e-12));
  // 2-D with covariances that do not commute; the value numpy gives with the eigh square root.
  Tensor a = tensor({0, 0, 2, 1, 1, 3, -1, 2, 0.5, -1}, {5, 2}, DType::Float64);
  Tensor b = tensor({1, 1, 3, 0, 2, 2, 0, 4}, {4, 2}, DType::Float64);
  CHECK(metrics::frechet_distance(a, b) == doctest::Approx(2.491746078601066).epsilon(1e-10));
  CHECK(metrics::frechet_distance(b, a) == doctest::Approx(2.491746078601066).epsilon(1e-10));
  // A set against itself is 0; shifting it by v adds |v|^2.
  Tensor x = uniform({300, 16}, -1, 1, 3);
  CHECK(std::abs(metrics::frechet_distance(x, x)) < 1e-9);
  CHECK(metrics::frechet_distance(x, add(x, 0.5)) == doctest::Approx(16 * 0.25).epsilon(1e-9));
  // Float32 input is accepted (computed in double).
  CHECK(std::abs(metrics::frechet_distance(x.to(DType::Float32), x.to(DType::Float32))) < 1e-6);
  check_error(
      [&] {
        metrics::frechet_distance(x, uniform({10, 15}));
      },
      {"frechet_distance", "[300, 16]", "[10, 15]"});
  check_error([&] { metrics::frechet_distance(x, uniform({1, 16})); }, {"[1, 16]"});
}

TEST_CASE("symmetric eigen: eigenvalues and vectors of a known matrix") {
  // [[2, 1], [1, 2]]: eigenvalues 1 and 3, vectors (1, -1) and (1, 1) over sqrt 2.
  std::vector<double> v;
  std::vector<double> w = metrics::symmetric_eigen({2, 1, 1, 2}, 2, &v);
  CHECK(w[0] == doctest::Approx(1.0));
  CHECK(w[1] == doctest::Approx(3.0));
  CHECK(std::abs(v[0] * v[1] + v[2] * v[3]) < 1e-12);  // orthogonal columns
  CHECK(std::abs(v[0] + v[2]) < 1e-12);                // column 0 along (1, -1)
  CHECK(std::abs(v[1] - v[3]) < 1e-12);                // column 1 along (1, 1)
}

TEST_CASE("kid: the unbiased MMD^2 with the cubic kernel, by hand") {
  // d = 1, k(x, y) = (xy + 1)^3. a = {0, 1}: k(0, 1) = 1. b = {1, 2}: k(1, 2) = 27.
  // Cross terms k(0, 1) + k(0, 2) + k(1, 1) + k(1, 2) = 1 + 1 + 8 + 27 = 37.
  // KID = 1 + 27 - 2 * 37 / 4 = 9.5.
  CHECK(metrics::kid(tensor({0, 1}, {2, 1}), tensor({1, 2}, {2, 1})) ==
        doctest::Approx(9.5).epsilon(1e-12));
  // Two draws of one distribution are close to 0; a shifted one is not.
  Tensor x = uniform({400, 8}, -1, 1, 4), y = uniform({400, 8}, -1, 1, 5);
  CHECK(std::abs(metrics::kid(x, y)) < 0.01);
  CHECK(metrics::kid(x, add(y, 1.0)) > 0.5);
}

TEST_CASE("precision and recall: k-th neighbour balls, by hand") {
  // Real {0, 1, 2, 10} with k = 1: ball radii 1, 1, 1, 8. Generated {0.5, 5, 21, 22}: radii
  // 4.5, 4.5, 1, 1. Precision: 0.5 (in 0's ball) and 5 (in 10's) of 4. Recall: 0, 1 and 2 lie in
  // 0.5's ball; 10 lies in none (5 away from 5, 11 from 21).
  metrics::PrecisionRecall pr =
      metrics::precision_recall(tensor({0, 1, 2, 10}, {4, 1}), tensor({0.5, 5, 21, 22}, {4, 1}), 1);
  CHECK(pr.precision == 0.5);
  CHECK(pr.recall == 0.75);
  // Identical sets: everything is covered both ways.
  Tensor x = uniform({50, 4}, -1, 1, 6);
  pr = metrics::precision_recall(x, x, 3);
  CHECK(pr.precision == 1.0);
  CHECK(pr.recall == 1.0);
  // A collapsed generator (every sample the same point) has low recall.
  pr = metrics::precision_recall(x, add(mul(uniform({50, 4}, -1, 1, 7), 1e-3), 0.0), 3);
  CHECK(pr.recall < 0.2);
  check_error([&] { metrics::precision_recall(x, x.narrow(0, 0, 3), 3); }, {"[3, 4]"});
}

TEST_CASE("class coverage: covered classes, KL to uniform, classifier score") {
  Tensor p = tensor({1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0}, {4, 3});
  metrics::Coverage c = metrics::class_coverage(p);
  CHECK(c.histogram == std::vector<int64_t>{2, 2, 0});
  CHECK(c.classes_covered == 2);
  CHECK(c.coverage_kl == doctest::Approx(std::log(1.5)));  // 2 * 0.5 log(3 * 0.5)
  CHECK(c.classifier_score == doctest::Approx(2.0));       // each row: KL = log 2
  // Uniform predictions of a uniform classifier: KL 0, score 1.
  metrics::Coverage u = metrics::class_coverage(full({6, 3}, 1.0 / 3));
  CHECK(u.classifier_score == doctest::Approx(1.0));
  check_error([] { metrics::class_coverage(ones({4, 1})); }, {"class_coverage", "[4, 1]"});
}
