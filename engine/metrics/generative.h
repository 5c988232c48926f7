// Metrics of generated samples, computed on feature vectors (one row per sample) from a fixed
// network, and on a classifier's class probabilities.
//
//   frechet_distance(A, B)   Heusel et al. 2017 ("GANs trained by a two time-scale update rule
//                            converge to a local Nash equilibrium"), the FID formula:
//                              FD = |mu_A - mu_B|^2 + Tr(S_A + S_B - 2 (S_A S_B)^(1/2))
//                            with the sample means mu and covariances S (divisor n - 1, as
//                            numpy.cov). Tr (S_A S_B)^(1/2) = sum_i sqrt(lambda_i) over the
//                            eigenvalues of S_A^(1/2) S_B S_A^(1/2), which is symmetric positive
//                            semi-definite and similar to S_A S_B (Jacobi eigenvalues, in double)
//   kid(A, B)                Binkowski et al. 2018 ("Demystifying MMD GANs"): the unbiased MMD^2
//                            with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3:
//                              1/(m(m-1)) sum_{i!=j} k(a_i, a_j) + 1/(n(n-1)) sum_{i!=j} k(b_i,
//                              b_j)
//                              - 2/(mn) sum_{i,j} k(a_i, b_j)
//                            over the whole sets (no subsets); it can be slightly negative
//   precision_recall(R, G, k) Kynkaanniemi et al. 2019 ("Improved precision and recall metric for
//                            assessing generative models"): each real sample r gets the ball of
//                            radius |r - NN_k(r)|, its k-th nearest other real sample; precision
//                            is the fraction of generated samples inside at least one real ball,
//                            recall the fraction of real samples inside at least one generated
//                            ball (the same construction on the generated set)
//   class_coverage(P, t)     P [N, K] class probabilities of generated samples. With the
//                            predicted classes' histogram p^(y): the classes covered (those
//                            predicted for at least a fraction t of the n/K samples a uniform
//                            generator would give them), KL(p^ || uniform) = sum p^ log(K p^), and
//                            the classifier score exp(E_x KL(p(y|x) || p(y))) with
//                            p(y) = mean_x p(y|x) (the Inception score formula, Salimans et al.
//                            2016, on the given classifier)
//
// Inputs are float32 or float64 CPU or device tensors; everything is computed in double on the
// CPU. Errors name the function and the shapes.
#pragma once

#include <cstdint>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::metrics {

// requires: a [m, d] and b [n, d] with m, n >= 2 and d >= 1.
double frechet_distance(const Tensor& a, const Tensor& b);

// requires: a [m, d] and b [n, d] with m, n >= 2.
double kid(const Tensor& a, const Tensor& b);

struct PrecisionRecall {
  double precision = 0, recall = 0;
};
// requires: real [m, d], generated [n, d], m and n > k >= 1.
PrecisionRecall precision_recall(const Tensor& real, const Tensor& generated, int64_t k = 3);

struct Coverage {
  int64_t classes_covered = 0;
  double coverage_kl = 0;          // KL(p^ || uniform) in nats; 0 for a uniform histogram
  double classifier_score = 0;     // exp E KL(p(y|x) || p(y)), in [1, K]
  std::vector<int64_t> histogram;  // predicted-class counts
};
// requires: probs [N, K] with N >= 1, K >= 2, rows summing to 1; threshold in [0, 1].
Coverage class_coverage(const Tensor& probs, double threshold = 0.1);

// Eigenvalues of a symmetric n x n matrix (row-major, in place destroyed), ascending; with
// vectors != nullptr also the orthonormal eigenvectors as columns of an n x n row-major matrix.
std::vector<double> symmetric_eigen(std::vector<double> a, int64_t n,
                                    std::vector<double>* vectors = nullptr);

}  // namespace nabla::metrics
