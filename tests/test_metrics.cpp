// engine/metrics: accuracy, per-sample accuracy and the confusion matrix, on hand-counted cases.
#include <doctest/doctest.h>

#include <cmath>

#include <nabla/metrics/classification.h>
#include <nabla/metrics/segmentation.h>
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

TEST_CASE("segmentation metrics: IoU, Dice, the two mean IoUs and pixel accuracy by hand") {
  // Masks and predictions of one 2x3 image; class 3 is nowhere (its IoU and Dice are undefined).
  const Tensor masks = from_vector<int64_t>({0, 0, 1, 1, 2, 0}, {1, 2, 3});
  const Tensor pred = from_vector<int64_t>({0, 1, 1, 2, 2, 0}, {1, 2, 3});
  metrics::SegmentationMetrics m(4, {"bg", "a", "b", "c"});
  m.add(pred, masks);
  // C[t][p]: t0: p0 2, p1 1; t1: p1 1, p2 1; t2: p2 1.
  const std::vector<double> iou = m.iou(), dice = m.dice();
  CHECK(iou[0] == doctest::Approx(2.0 / 3));  // 2 / (3 + 2 - 2)
  CHECK(iou[1] == doctest::Approx(1.0 / 3));  // 1 / (2 + 2 - 1)
  CHECK(iou[2] == doctest::Approx(0.5));      // 1 / (1 + 2 - 1)
  CHECK(std::isnan(iou[3]));
  CHECK(dice[0] == doctest::Approx(0.8));
  CHECK(dice[1] == doctest::Approx(0.5));
  CHECK(dice[2] == doctest::Approx(2.0 / 3));
  CHECK(std::isnan(dice[3]));
  CHECK(m.miou() == doctest::Approx((1.0 / 3 + 0.5) / 2));
  CHECK(m.miou_all() == doctest::Approx((2.0 / 3 + 1.0 / 3 + 0.5) / 3));
  CHECK(m.mean_dice() == doctest::Approx((0.5 + 2.0 / 3) / 2));
  CHECK(m.pixel_accuracy() == doctest::Approx(4.0 / 6));
  const nlohmann::json j = m.to_json();
  CHECK(j["miou"].get<double>() == doctest::Approx(m.miou()));
  CHECK(j["per_class_iou"][3].is_null());
  CHECK(j["per_class"][1]["pixels"].get<int64_t>() == 2);
  CHECK(j["per_class"][1]["predicted"].get<int64_t>() == 2);
  CHECK(j["per_class"][2]["class"] == "b");
  CHECK(j["confusion"][0][1].get<int64_t>() == 1);
  CHECK(j["pixels"].get<int64_t>() == 6);
  CHECK(j["miou_over"].get<std::string>().find("background excluded") != std::string::npos);
  // Scores [N, K, H, W] count as their argmax; a second batch adds up.
  Tensor scores = zeros({1, 4, 2, 3});
  std::vector<float> s(24, 0.f);
  for (int64_t k = 0; k < 6; ++k) s[size_t(pred.to_vector<int64_t>()[size_t(k)] * 6 + k)] = 1;
  m.add(from_vector<float>(s, {1, 4, 2, 3}), masks);
  CHECK(m.confusion().total() == 12);
  CHECK(m.miou() == doctest::Approx((1.0 / 3 + 0.5) / 2));
  CHECK(metrics::nan_mean({std::nan(""), 1, 3}) == doctest::Approx(2));
  CHECK(std::isnan(metrics::nan_mean({1, std::nan("")}, 1)));
  CHECK_THROWS_WITH_AS(metrics::SegmentationMetrics(1), doctest::Contains("1 classes"), Error);
  CHECK_THROWS_WITH_AS(m.add(pred, from_vector<int64_t>({0, 0, 1, 1, 2, 4}, {1, 2, 3})),
                       doctest::Contains("label 4"), Error);
}
