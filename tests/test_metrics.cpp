// engine/metrics: accuracy, per-sample accuracy and the confusion matrix, on hand-counted cases.
#include <doctest/doctest.h>

#include <nabla/metrics/classification.h>
#include <nabla/nabla.h>

using namespace nabla;

TEST_CASE("accuracy from class indices and from logits") {
  const Tensor y = from_vector<int64_t>({0, 1, 2, 1}, {4});
  const Tensor pred = from_vector<int64_t>({0, 2, 2, 1}, {4});
  CHECK(metrics::count_correct(pred, y) == 3);
  CHECK(metrics::accuracy(pred, y) == doctest::Approx(0.75));
  // Logits [4, 3]: argmax per row is 0, 2, 2, 0.
  const Tensor logits = from_vector<float>({5, 1, 0, 0, 1, 2, 0, 0, 3, 9, 1, 1}, {4, 3});
  CHECK(metrics::count_correct(logits, y) == 2);
  const std::vector<double> per = metrics::per_sample_accuracy(logits, y);
  CHECK(per == std::vector<double>{1, 0, 1, 0});
}

TEST_CASE("pixel accuracy of segmentation scores [N, K, H, W] against masks [N, H, W]") {
  // Two 1x2 images, two classes; class-1 score wins where it is larger.
  const Tensor scores = from_vector<float>({0, 0, 1, 1,   // image 0: predicts 1, 1
                                            1, 0, 0, 1},  // image 1: predicts 0, 1
                                           {2, 2, 1, 2});
  const Tensor mask = from_vector<int64_t>({1, 0, 0, 1}, {2, 1, 2});
  CHECK(metrics::count_correct(scores, mask) == 3);
  CHECK(metrics::per_sample_accuracy(scores, mask) == std::vector<double>{0.5, 1.0});
  CHECK_THROWS_WITH_AS(metrics::accuracy(scores, from_vector<int64_t>({1, 0}, {2})),
                       doctest::Contains("[2]"), Error);
}

TEST_CASE("confusion matrix: counts, recall per class, range errors") {
  metrics::ConfusionMatrix cm(3, {"a", "b", "c"});
  cm.add(from_vector<int64_t>({0, 1, 1, 2, 2}, {5}), from_vector<int64_t>({0, 1, 2, 2, 0}, {5}));
  cm.add(from_vector<int64_t>({1}, {1}), from_vector<int64_t>({1}, {1}));
  CHECK(cm.counts()[0] == std::vector<int64_t>{1, 0, 1});
  CHECK(cm.counts()[1] == std::vector<int64_t>{0, 2, 0});
  CHECK(cm.counts()[2] == std::vector<int64_t>{0, 1, 1});
  CHECK(cm.total() == 6);
  CHECK(cm.correct() == 4);
  CHECK(cm.accuracy() == doctest::Approx(4.0 / 6));
  CHECK(cm.per_class_accuracy() == std::vector<double>{0.5, 1.0, 0.5});
  CHECK(cm.name(2) == "c");
  CHECK_THROWS_WITH_AS(cm.add(from_vector<int64_t>({3}, {1}), from_vector<int64_t>({0}, {1})),
                       doctest::Contains("prediction 3"), Error);
  CHECK_THROWS_WITH_AS(cm.add(from_vector<int64_t>({0}, {1}), from_vector<int64_t>({-1}, {1})),
                       doctest::Contains("label -1"), Error);
  CHECK_THROWS_AS(metrics::ConfusionMatrix(2, {"only one"}), Error);
}
