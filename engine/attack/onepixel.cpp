// One-pixel attack (Su, Vargas, Sakurai 2019): differential evolution over k pixels, using
// forward passes only.
//
// A candidate sets k pixels: k genes (row, col, v_1..v_C) with row, col real (rounded when
// applied) and v in [0, 1]. Fitness, lower is better: for classification p_y(x') untargeted,
// -p_t(x') targeted, with p = softmax f(x'); for any other objective -l_n(f(x')), the negated
// per-sample loss of the objective (objective.h), with its success test. Per sample, a
// population of P candidates evolves by DE/rand/1 without crossover, as in the paper:
//   trial_i = c_r1 + F (c_r2 - c_r3),   F = 0.5,   r1, r2, r3, i distinct
// clipped to the pixel grid and to [0, 1]; the trial replaces c_i when its fitness is no worse.
// The initial population is uniform (positions over the image, values in [0, 1]). A sample
// stops as soon as one candidate succeeds (with early_stop); otherwise it keeps the fittest
// candidate after the last generation. Candidate images are built on the host and evaluated
// in chunks on x's device.
#include <algorithm>
#include <cmath>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

namespace {

constexpr double kDifferentialWeight = 0.5;  // F of DE/rand/1 (Su et al.)
constexpr int64_t kChunk = 1024;             // candidate images per forward pass

struct Problem {
  const Run* run;
  const Model* model;
  int64_t C, H, W, k, genes;  // genes = k * (2 + C) numbers per candidate
  std::vector<double> x0;     // the clean batch on the host [N, C, H, W]
  Tensor like;                // dtype and device for candidate images
};

// The image of sample n with the pixels of candidate c applied, written into out [C, H, W].
void apply(const Problem& p, int64_t n, const double* c, double* out) {
  const int64_t D = p.C * p.H * p.W;
  std::copy(p.x0.begin() + n * D, p.x0.begin() + (n + 1) * D, out);
  for (int64_t j = 0; j < p.k; ++j) {
    const double* gene = c + j * (2 + p.C);
    const int64_t row = std::clamp<int64_t>(std::llround(gene[0]), 0, p.H - 1);
    const int64_t col = std::clamp<int64_t>(std::llround(gene[1]), 0, p.W - 1);
    for (int64_t ch = 0; ch < p.C; ++ch) out[(ch * p.H + row) * p.W + col] = gene[2 + ch];
  }
}

// Keeps a candidate on the grid and its values in [0, 1].
void clip(const Problem& p, double* c) {
  for (int64_t j = 0; j < p.k; ++j) {
    double* gene = c + j * (2 + p.C);
    gene[0] = std::clamp(gene[0], 0.0, double(p.H - 1));
    gene[1] = std::clamp(gene[1], 0.0, double(p.W - 1));
    for (int64_t ch = 0; ch < p.C; ++ch) gene[2 + ch] = std::clamp(gene[2 + ch], 0.0, 1.0);
  }
}

// Evaluates (sample[i], candidate i) pairs: fitness and success of each, in chunks.
void evaluate(const Problem& p, const std::vector<int64_t>& sample, const std::vector<double>& cand,
              std::vector<double>& fitness, std::vector<bool>& success) {
  const int64_t M = int64_t(sample.size()), D = p.C * p.H * p.W;
  const Run& run = *p.run;
  fitness.assign(size_t(M), 0);
  success.assign(size_t(M), false);
  NoGradGuard ng;
  for (int64_t b = 0; b < M; b += kChunk) {
    const int64_t m = std::min(kChunk, M - b);
    std::vector<double> img(size_t(m * D));
    for (int64_t i = 0; i < m; ++i)
      apply(p, sample[size_t(b + i)], &cand[size_t((b + i) * p.genes)], &img[size_t(i * D)]);
    Tensor xb = from_vector<double>(img, {m, p.C, p.H, p.W}).to(p.like.dtype()).to(p.like.device());
    Tensor logits = (*p.model)(xb);
    if (!run.classification()) {
      // Any other objective: fitness -l_n (the loss the gradient attacks ascend), success s_n,
      // each candidate measured against the labels and goal of its sample.
      checked_output(run, logits, xb);
      const Run sub = rows(run, std::vector<int64_t>(sample.begin() + b, sample.begin() + b + m));
      const std::vector<double> l =
          sample_losses(sub, logits).to(Device::cpu()).to_vector<double>();
      const std::vector<bool> ok = successes(sub, logits);
      for (int64_t i = 0; i < m; ++i) {
        fitness[size_t(b + i)] = -l[size_t(i)];
        success[size_t(b + i)] = ok[size_t(i)];
      }
      continue;
    }
    NABLA_CHECK(
        logits.defined() && logits.dim() == 2 && logits.size(0) == m && logits.size(1) == run.K,
        run.name, ": the model must map x ", xb.str(), " to logits [", m, ", ", run.K, "], got ",
        logits.defined() ? logits.str() : std::string("an undefined tensor"));
    const std::vector<double> prob = softmax(logits, 1).to(Device::cpu()).to_vector<double>();
    for (int64_t i = 0; i < m; ++i) {
      const int64_t n = sample[size_t(b + i)];
      const double* pr = &prob[size_t(i * run.K)];
      const int64_t top = std::max_element(pr, pr + run.K) - pr;
      const size_t at = size_t(b + i);
      if (run.targeted) {
        fitness[at] = -pr[run.target[size_t(n)]];
        success[at] = top == run.target[size_t(n)];
      } else {
        fitness[at] = pr[run.y_host[size_t(n)]];
        success[at] = top != run.y_host[size_t(n)];
      }
    }
  }
}

// An index in [0, P) uniformly among those not in `excluded` (sorted ascending), from u in [0, 1).
int64_t pick_excluding(double u, int64_t P, const std::vector<int64_t>& excluded) {
  int64_t j =
      std::min(int64_t(u * double(P - int64_t(excluded.size()))), P - int64_t(excluded.size()) - 1);
  for (int64_t e : excluded) j += j >= e;
  return j;
}

}  // namespace

Result one_pixel(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "one_pixel";
  NABLA_CHECK(x.defined() && x.dim() == 4, name, ": x must be [N, C, H, W], got ",
              x.defined() ? x.str() : std::string("an undefined tensor"));
  NABLA_CHECK(opt.pixels >= 1 && int64_t(opt.pixels) <= x.size(2) * x.size(3), name,
              ": pixels must be in [1, H*W] = [1, ", x.size(2) * x.size(3), "] for x ", x.str(),
              ", got ", opt.pixels);
  NABLA_CHECK(opt.population >= 4, name,
              ": population must be >= 4 (DE/rand/1 draws 3 others), got ", opt.population);
  NABLA_CHECK(opt.generations >= 0, name, ": generations must be >= 0, got ", opt.generations);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, false);
  Problem p{&run, &model, x.size(1), x.size(2), x.size(3), opt.pixels, 0, {}, run.x0};
  p.genes = p.k * (2 + p.C);
  p.x0 = run.x0.to(Device::cpu()).to_vector<double>();
  const int64_t N = run.N, P = opt.population, G = p.genes;

  // Samples that already succeed on x0 keep x0 (as the gradient attacks' early stop does).
  std::vector<bool> active(size_t(N), true);
  if (opt.early_stop) {
    for (size_t n = 0; n < active.size(); ++n) active[n] = !run.clean_success[n];
  }
  // pop[(n * P + i) * G ...]: candidate i of sample n; fit the matching fitness.
  std::vector<double> pop(size_t(N * P * G)), fit(size_t(N * P), 0);
  std::vector<int64_t> chosen(size_t(N), -1);  // the successful candidate of a finished sample
  {
    const std::vector<double> u =
        rand({N * P * G}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
    for (int64_t c = 0; c < N * P; ++c)
      for (int64_t j = 0; j < p.k; ++j) {
        const size_t at = size_t(c * G + j * (2 + p.C));
        pop[at] = u[at] * double(p.H - 1);
        pop[at + 1] = u[at + 1] * double(p.W - 1);
        for (int64_t ch = 0; ch < p.C; ++ch) pop[at + 2 + size_t(ch)] = u[at + 2 + size_t(ch)];
      }
  }
  std::vector<double> fitness;
  std::vector<bool> success;
  // Records fitness of the evaluated (sample, candidate) pairs and freezes samples that succeed.
  auto settle = [&](const std::vector<int64_t>& sample, const std::vector<int64_t>& index,
                    bool trial, std::vector<double>& trials) {
    for (size_t e = 0; e < sample.size(); ++e) {
      const int64_t n = sample[e], i = index[e];
      const size_t slot = size_t(n * P + i);
      if (trial) {
        if (!(fitness[e] <= fit[slot]) && !success[e]) continue;
        std::copy(trials.begin() + int64_t(e) * G, trials.begin() + int64_t(e + 1) * G,
                  pop.begin() + int64_t(slot) * G);
      }
      fit[slot] = fitness[e];
      if (success[e] && opt.early_stop && chosen[size_t(n)] < 0) chosen[size_t(n)] = i;
    }
    for (int64_t n = 0; n < N; ++n)
      if (chosen[size_t(n)] >= 0) active[size_t(n)] = false;
  };
  // The initial population of every active sample.
  {
    std::vector<int64_t> sample, index;
    std::vector<double> cand;
    for (int64_t n = 0; n < N; ++n)
      if (active[size_t(n)])
        for (int64_t i = 0; i < P; ++i) {
          sample.push_back(n);
          index.push_back(i);
          cand.insert(cand.end(), pop.begin() + (n * P + i) * G, pop.begin() + (n * P + i + 1) * G);
        }
    evaluate(p, sample, cand, fitness, success);
    settle(sample, index, false, cand);
  }
  for (int gen_i = 0; gen_i < opt.generations; ++gen_i) {
    std::vector<int64_t> sample, index;
    for (int64_t n = 0; n < N; ++n)
      if (active[size_t(n)])
        for (int64_t i = 0; i < P; ++i) {
          sample.push_back(n);
          index.push_back(i);
        }
    if (sample.empty()) break;
    const std::vector<double> u =
        rand({int64_t(sample.size()) * 3}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
    std::vector<double> trials(sample.size() * size_t(G));
    for (size_t e = 0; e < sample.size(); ++e) {
      const int64_t n = sample[e], i = index[e];
      std::vector<int64_t> excluded = {i};
      int64_t r[3];
      for (int q = 0; q < 3; ++q) {
        r[q] = pick_excluding(u[3 * e + size_t(q)], P, excluded);
        excluded.insert(std::upper_bound(excluded.begin(), excluded.end(), r[q]), r[q]);
      }
      const double* a = &pop[size_t((n * P + r[0]) * G)];
      const double* b = &pop[size_t((n * P + r[1]) * G)];
      const double* c = &pop[size_t((n * P + r[2]) * G)];
      double* t = &trials[e * size_t(G)];
      for (int64_t g = 0; g < G; ++g) t[g] = a[g] + kDifferentialWeight * (b[g] - c[g]);
      clip(p, t);
    }
    evaluate(p, sample, trials, fitness, success);
    settle(sample, index, true, trials);
  }

  // x_adv: the successful candidate, else the fittest one; x0 for samples never attacked.
  const int64_t D = p.C * p.H * p.W;
  std::vector<double> adv(p.x0);
  const std::vector<bool>& clean_ok = run.clean_success;
  for (int64_t n = 0; n < N; ++n) {
    if (opt.early_stop && clean_ok[size_t(n)]) continue;
    int64_t best = chosen[size_t(n)];
    if (best < 0)
      best =
          std::min_element(fit.begin() + n * P, fit.begin() + (n + 1) * P) - (fit.begin() + n * P);
    apply(p, n, &pop[size_t((n * P + best) * G)], &adv[size_t(n * D)]);
  }
  Tensor x_adv = from_vector<double>(adv, x.shape()).to(x.dtype()).to(x.device());
  return finish(run, model, x_adv);
}

}  // namespace nabla::attack
