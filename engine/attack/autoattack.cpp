// AutoAttack, "standard" version without FAB-T (Croce & Hein 2020): APGD-CE, APGD-T and Square
// in sequence, each on the samples still robust. The contract is in attack.h.
#include <algorithm>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

Result autoattack(const Model& model, const Tensor& x, const Tensor& y, const Options& opt,
                  std::vector<AutoAttackStage>* stages) {
  const char* name = "autoattack";
  NABLA_CHECK(opt.objective.kind() == Objective::Kind::Classification &&
                  opt.target_mode == TargetMode::None,
              name, ": needs the untargeted classification objective, got objective '",
              opt.objective.name(), "', target mode '", target_mode_name(opt.target_mode), "'");
  NABLA_CHECK(x.defined() && x.dim() == 4, name, ": x must be images [N, C, H, W], got ",
              x.defined() ? x.str() : std::string("undefined"));
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  const int64_t N = run.N;
  std::vector<bool> robust(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) robust[size_t(n)] = !run.clean_success[size_t(n)];
  std::vector<int64_t> queries(size_t(N), 0);
  Tensor x_adv = run.x0;
  if (stages) stages->clear();

  const char* names[] = {"apgd-ce", "apgd-t", "square"};
  for (int s = 0; s < 3; ++s) {
    std::vector<int64_t> idx;
    for (int64_t n = 0; n < N; ++n)
      if (robust[size_t(n)]) idx.push_back(n);
    AutoAttackStage st;
    st.name = names[s];
    st.attacked = int64_t(idx.size());
    if (!idx.empty()) {
      const Tensor xs = gather_rows(run.x0, idx), ys = gather_rows(run.y, idx);
      Options o = opt;
      o.seed = opt.seed + uint64_t(s);  // each stage its own stream, fixed by the seed
      Result r;
      if (s == 0) {
        o.apgd_loss = ApgdLoss::CE;
        r = apgd(model, xs, ys, o);
      } else if (s == 1) {
        r = apgd_targeted(model, xs, ys, o);
      } else {
        r = square(model, xs, ys, o);
      }
      std::vector<bool> fooled(size_t(N), false);
      std::vector<int64_t> back(size_t(N), 0);
      for (size_t k = 0; k < idx.size(); ++k) {
        const size_t n = size_t(idx[k]);
        queries[n] += r.queries[k];
        st.queries += r.queries[k];
        if (r.success[k]) {
          fooled[n] = true;
          robust[n] = false;
        }
        back[n] = int64_t(k);
      }
      // Scatter the fooled rows of r.x_adv back into x_adv.
      std::vector<int64_t> src(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) src[size_t(n)] = fooled[size_t(n)] ? back[size_t(n)] : 0;
      NoGradGuard ng;
      x_adv = where(sample_mask(fooled, x_adv), gather_rows(r.x_adv, src), x_adv);
    }
    st.robust = int64_t(std::count(robust.begin(), robust.end(), true));
    if (stages) stages->push_back(st);
  }
  Result res = finish(run, model, x_adv);
  res.queries = queries;
  return res;
}

}  // namespace nabla::attack
