// Attacks on segmentation models over whole sets, and the two ways of generating training data of
// Avramidis, Kieseberg and Holzinger, "Robustness in Medical AI: a training scheme for more
// robust semantic segmentation" (draft): layered PGD (their Formula 2) and the sign-choice
// enhancement (their Formulas 3-5).
//
// Notation: f the model (x [N, C, H, W] in [0, 1] -> logits [N, K, H, W]), y int64 [N, H, W] the
// true masks, J(x, m) = (1/HW) sum_ij CE(f(x)_:,ij, m_ij) the mean per-pixel cross-entropy of one
// image against a mask m, u_c the full-area mask of class c (every pixel c), clip the clipping to
// [0, 1], Pi_{z,eps} the projection onto the L-inf ball of radius eps around z followed by clip.
//
//   attack_set      one attack of attack.h (attack::run) over a whole set, `batch` images at a
//                   time: the adversarial images and the mean norms of x_adv - x
//   layered_pgd     method 1, Formula 2. For every class c present in y_n, in ascending order,
//                   one targeted PGD toward u_c starting where the previous class left off:
//                     z_0 = x_prev, z_{k+1} = Pi_{x_prev,eps}(z_k - alpha sign(grad_z J(z_k,
//                     u_c))),
//                   k < steps, then x_prev = z_steps. Formula 2's minus sign is the descent of
//                   the cross-entropy toward the target Y_adv = u_c (the targeted attack); each
//                   layer has its own eps-ball around its start, so the perturbations of the
//                   layers add up (at most (#classes present) eps in L-inf) and only the clip to
//                   [0, 1] bounds the total, as Formula 2 clips the sum.
//   sign_choice     method 2, Formulas 3-5. a_c = eps sign(grad_x J(x, u_c)) for every class c
//                   (Formula 4's a: Formula 1's FGSM perturbation for the full-area target u_c,
//                   taken at the clean x); the candidates x(s) = clip(x + sum_c s_c a_c) for
//                   s in {-1, 0, +1}^K; kept: x(s*) with s* = argmin_s J(x(s), y) (Formula 5's
//                   choice between adding, leaving out and removing each a_c, made jointly over
//                   the classes; s = 0 is a candidate, so the kept image never has a higher loss
//                   than x). Forward passes only after the K gradients.
//                   exhaustive: all 3^K candidates, `max_batch` per forward pass.
//                   greedy: coordinate search from s = 0; a sweep evaluates s and its 2K
//                   neighbours that differ in one coordinate (2K + 1 candidates, one batch),
//                   moves to the best, and stops when s itself is the best (ties keep s).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/attack/attack.h>
#include <nabla/device.h>
#include <nabla/tensor.h>

namespace nabla::attack {

// requires: n >= 1, h >= 1, w >= 1, cls >= 0.
// ensures:  u_cls: int64 [n, h, w] on the CPU, every element cls.
Tensor full_mask(int64_t n, int64_t h, int64_t w, int64_t cls);

struct SetResult {
  Tensor x_adv;                                                  // float CPU, shaped like x
  double mean_linf = 0, max_linf = 0, mean_l2 = 0, mean_l0 = 0;  // of x_adv - x per image
  double seconds = 0;
};

// requires: x float CPU [N, C, H, W] in [0, 1], y int64 CPU [N, H, W]; method one of
//   method_names(); opt as attack::run takes it (a segmentation target mask [H, W], or [N, H, W]
//   for the whole set); batch >= 1; model in eval mode on dev.
// ensures: the attack applied batch by batch on dev; progress (if set) after every batch.
SetResult attack_set(const std::string& method, const Model& model, const Tensor& x,
                     const Tensor& y, const Options& opt, int64_t batch, Device dev,
                     const Progress& progress = {});

// requires: as attack_set; classes >= 2 (the model's K); every mask value in [0, classes).
// ensures: method 1 as in the file comment, with opt.eps, opt.alpha and opt.steps (opt.objective
//   and opt.early_stop are ignored: every layer runs all its steps). x_adv in [0, 1].
SetResult layered_pgd(const Model& model, const Tensor& x, const Tensor& y, int64_t classes,
                      const Options& opt, int64_t batch, Device dev, const Progress& progress = {});

struct SignChoiceOptions {
  double eps = 0.01;
  bool greedy = false;      // coordinate search instead of all 3^K candidates
  int64_t max_batch = 243;  // candidates per forward pass
  int64_t max_sweeps = 0;   // greedy: at most this many sweeps (0: 2K, enough to reach any s)
};

struct SignChoiceResult {
  Tensor x_imp;                               // float CPU, shaped like x: x(s*) per image
  std::vector<std::vector<int>> choice;       // per image: s*_c in {-1, 0, +1}, c = 0..K-1
  std::vector<double> loss_clean, loss_best;  // J(x, y) and J(x(s*), y) per image
  int64_t evaluations = 0;                    // candidates evaluated (forward rows), all images
  double seconds = 0;
};

// ensures: the code sum_c (s_c + 1) 3^c of a choice, in [0, 3^K); and back.
int64_t choice_code(const std::vector<int>& s);
std::vector<int> choice_from_code(int64_t code, int64_t classes);

// requires: x float CPU [N, C, H, W] in [0, 1], y int64 CPU [N, H, W]; 2 <= classes <= 12 (the
//   model's K; 3^12 candidates at most); eps >= 0; max_batch >= 1; model in eval mode on dev.
// ensures: method 2 as in the file comment; loss_best[n] <= loss_clean[n] up to the rounding of
//   the batched forward passes. progress (if set) after every image.
SignChoiceResult sign_choice(const Model& model, const Tensor& x, const Tensor& y, int64_t classes,
                             const SignChoiceOptions& opt, Device dev,
                             const Progress& progress = {});

}  // namespace nabla::attack
