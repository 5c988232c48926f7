// End-to-end runs of the example programs, as a user would run them: the exit code, the
// files they write, and the numbers they print.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nabla/nabla.h>

namespace {

struct Run {
  int status = -1;
  std::string out;
};

// Runs `cmd` through the shell, capturing stdout (stderr goes to the test log).
Run run(const std::string& cmd) {
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE_MESSAGE(p != nullptr, "cannot run " << cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  r.status = pclose(p);
  return r;
}

const std::string kBin = NABLA_BIN_DIR;

}  // namespace

TEST_CASE("input_gradient: trains, localises the saliency, runs no weight-gradient kernel") {
  const std::string dir = "/tmp/nabla_test_input_gradient";
  std::filesystem::remove_all(dir);
  Run r = run(kBin + "/input_gradient --json --steps 150 --seed 3 --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["test_accuracy"].get<double>() >= 0.95);
  CHECK(j["weight_gradient_kernels_in_grad_x"].get<int>() == 0);
  // The shape's box is 1/16 of the image; a saliency map that ignored it would put ~6% there.
  CHECK(j["saliency_on_shape"].get<double>() > 4 * j["shape_area_fraction"].get<double>());
  CHECK(std::filesystem::file_size(dir + "/saliency.png") > 1000);
  nabla::Tensor maps = nabla::load_npy(dir + "/saliency.npy");
  CHECK(maps.shape() == nabla::Shape{8, 16, 16});
  std::vector<float> v = maps.to_vector<float>();
  CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);  // |dS/dx|
  CHECK(std::filesystem::exists(dir + "/report.json"));
}

TEST_CASE("input_gradient: --help explains every flag, bad flags fail cleanly") {
  Run h = run(kBin + "/input_gradient --help");
  CHECK(h.status == 0);
  for (const char* flag : {"--out", "--steps", "--batch", "--lr", "--seed", "--show", "--json"})
    CHECK_MESSAGE(h.out.find(flag) != std::string::npos, flag);
  Run bad = run(kBin + "/input_gradient --steps 0 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("--steps") != std::string::npos);
}
