// The shared training loop (see trainer.h).
#include <nabla/train/trainer.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include <omp.h>

#include <nabla/error.h>
#include <nabla/io/progress.h>

namespace nabla::train {

using nlohmann::json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::abs(v) < 1000 ? "%.4f" : "%.4g", v);
  return buf;
}

}  // namespace

json saved_options(const std::string& dir) {
  const json s = Checkpoint::read_state(dir);
  NABLA_CHECK(s.is_object() && s.contains("options"), dir,
              ": the run state holds no options (not written by a nabla training command)");
  return s["options"];
}

Trainer::Trainer(Options o, std::vector<std::string> columns, std::vector<CurvePanel> panels)
    : o_(std::move(o)), log_(o_.out, std::move(columns), std::move(panels)), ckpt_(o_.out) {
  NABLA_CHECK(o_.epochs >= 1 && o_.steps_per_epoch >= 1 && o_.checkpoint_every >= 0, o_.name,
              ": epochs and steps per epoch must be >= 1 and checkpoint_every >= 0, got ",
              o_.epochs, ", ", o_.steps_per_epoch, " and ", o_.checkpoint_every);
}

void Trainer::add_module(const std::string& name, nn::Module& m) {
  ckpt_.add_module(name, m);
}

void Trainer::add_optimizer(const std::string& name, optim::Optimizer& opt,
                            const optim::LRSchedule* schedule) {
  ckpt_.add_optimizer(name, opt);
  schedules_.emplace_back(&opt, schedule);
}

void Trainer::add_generator(const std::string& name, Generator& gen) {
  ckpt_.add_generator(name, gen);
}

std::string Trainer::stop_message(const std::string& what, int64_t epoch, int64_t batch,
                                  int64_t step) const {
  const std::string where =
      last_saved_step_ >= 0
          ? "the last checkpoint (step " + std::to_string(last_saved_step_) + ") stays in " + o_.out
          : std::string("no checkpoint was written yet");
  const double lr = schedules_.empty() ? NAN : schedules_[0].first->lr();
  return detail::concat(o_.name, ": ", what, " at epoch ", epoch, ", batch ", batch, " (step ",
                        step, ", lr ", lr, "): the run stops; ", where,
                        ". Try a smaller learning rate (--lr).");
}

void Trainer::save(const Position& pos, const Running& r, double total_seconds,
                   int64_t total_samples) {
  // A step whose loss was finite can still leave non-finite weights: such a state is not saved.
  const std::string bad = ckpt_.first_non_finite();
  if (!bad.empty())
    throw Error(stop_message(bad + " became non-finite", pos.batch > 0 ? pos.epoch : pos.epoch - 1,
                             pos.batch > 0 ? pos.batch - 1 : o_.steps_per_epoch - 1, pos.step));
  const json state = {{"options", options_},
                      {"log", log_.state()},
                      {"threads", omp_get_max_threads()},
                      {"epochs", o_.epochs},
                      {"steps_per_epoch", o_.steps_per_epoch},
                      {"running",
                       {{"sum", r.sum},
                        {"window_sum", r.window_sum},
                        {"samples", r.samples},
                        {"window_steps", r.window_steps},
                        {"seconds", r.seconds}}},
                      {"total_seconds", total_seconds},
                      {"total_samples", total_samples}};
  ckpt_.save(pos, state,
             metadata_ ? metadata_() : std::map<std::string, std::map<std::string, std::string>>{});
  last_saved_step_ = pos.step;
}

json Trainer::fit(const std::function<void(int64_t)>& begin_epoch,
                  const std::function<StepResult(const StepInfo&)>& step_fn,
                  const std::function<Record(const EpochStats&)>& end_epoch) {
  Position pos;
  Running run;
  double total_seconds = 0;
  int64_t total_samples = 0;
  json resumed_from = nullptr;
  if (o_.resume) {
    auto [p, state] = ckpt_.load();
    try {
      NABLA_CHECK(state.at("steps_per_epoch").get<int64_t>() == o_.steps_per_epoch, o_.name,
                  ": the run in ", o_.out, " has ", state.at("steps_per_epoch").dump(),
                  " steps per epoch, this one ", o_.steps_per_epoch,
                  " (the data or the batch size differ)");
      log_.restore(state.at("log"));
      const json& r = state.at("running");
      run.sum = r.at("sum").get<std::map<std::string, double>>();
      run.window_sum = r.at("window_sum").get<std::map<std::string, double>>();
      run.samples = r.at("samples").get<int64_t>();
      run.window_steps = r.at("window_steps").get<int64_t>();
      run.seconds = r.at("seconds").get<double>();
      total_seconds = state.at("total_seconds").get<double>();
      total_samples = state.at("total_samples").get<int64_t>();
      const int threads = state.at("threads").get<int>();
      if (threads != omp_get_max_threads())
        std::fprintf(stderr,
                     "%s: warning: the run was checkpointed with %d threads, this process has %d; "
                     "results may differ in the last bits from an uninterrupted run\n",
                     o_.name.c_str(), threads, omp_get_max_threads());
    } catch (const json::exception& e) {
      throw Error(o_.name + ": " + ckpt_.dir() + ": malformed run state: " + e.what());
    }
    pos = p;
    last_saved_step_ = pos.step;
    resumed_from = pos.step;
    if (o_.show)
      std::fprintf(stderr, "%s: resuming %s at epoch %lld, batch %lld (step %lld)\n",
                   o_.name.c_str(), o_.out.c_str(), (long long)pos.epoch, (long long)pos.batch,
                   (long long)pos.step);
  }

  const int64_t S = o_.steps_per_epoch;
  const int64_t window = std::max<int64_t>(1, S / std::max<int64_t>(1, o_.curve_points_per_epoch));
  int64_t step = pos.step;
  for (int64_t epoch = pos.epoch; epoch <= o_.epochs; ++epoch) {
    begin_epoch(epoch);
    const int64_t first = epoch == pos.epoch ? pos.batch : 0;
    io::ProgressBar bar("epoch " + std::to_string(epoch) + "/" + std::to_string(o_.epochs), S,
                        o_.show);
    std::string post;
    double epoch_seconds_before = run.seconds;
    auto t0 = std::chrono::steady_clock::now();
    double paused = 0;  // checkpoint time, not counted as training time
    for (int64_t i = first; i < S; ++i) {
      for (auto& [opt, sched] : schedules_)
        if (sched) opt->set_lr(sched->lr_at(step));
      StepResult r = step_fn({epoch, i, step});
      for (const auto& [name, v] : r.metrics)
        if (!std::isfinite(v))
          throw Error(
              stop_message(detail::concat("the ", name, " became ", v), epoch, i, step + 1));
      ++step;
      run.samples += r.n;
      ++run.window_steps;
      for (const auto& [name, v] : r.metrics) {
        run.sum[name] += v * double(r.n);
        run.window_sum[name] += v;
      }
      if (run.window_steps == window || i + 1 == S) {
        const double x = double(epoch - 1) + double(i + 1) / double(S);
        for (auto& [name, s] : run.window_sum) {
          log_.point(name + ":running", x, s / double(run.window_steps));
          s = 0;
        }
        run.window_steps = 0;
      }
      run.seconds = epoch_seconds_before + seconds_since(t0) - paused;
      post.clear();
      for (const auto& [name, _] : r.metrics)
        post += name + " " + fmt(run.sum[name] / double(run.samples)) + "  ";
      char rate[64];
      std::snprintf(rate, sizeof rate, "%.0f %s/s",
                    double(run.samples) / std::max(run.seconds, 1e-9), o_.unit.c_str());
      post += rate;
      bar.update(i + 1, post);
      if (o_.checkpoint_every > 0 && step % o_.checkpoint_every == 0 && i + 1 < S) {
        auto ts = std::chrono::steady_clock::now();
        save({epoch, i + 1, step}, run, total_seconds, total_samples);
        paused += seconds_since(ts);
      }
    }
    bar.finish(post);

    EpochStats stats;
    stats.epoch = epoch;
    stats.samples = run.samples;
    stats.seconds = run.seconds;
    for (const auto& [name, s] : run.sum)
      stats.mean[name] = s / double(std::max<int64_t>(1, run.samples));
    const Record rec = end_epoch(stats);
    log_.record(rec, double(epoch));
    if (o_.show) {
      std::string line = "epoch " + std::to_string(epoch) + "/" + std::to_string(o_.epochs) + ":";
      for (const auto& c : log_.columns())
        if (c != "epoch") line += "  " + c + " " + fmt(rec.at(c));
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    total_seconds += run.seconds;
    total_samples += run.samples;
    run = Running{};
    save({epoch + 1, 0, step}, run, total_seconds, total_samples);
  }
  return {{"per_epoch", log_.records()},
          {"epochs", o_.epochs},
          {"steps", step},
          {"samples", total_samples},
          {"train_seconds", total_seconds},
          {"samples_per_second", total_samples / std::max(total_seconds, 1e-9)},
          {"resumed_from_step", resumed_from}};
}

}  // namespace nabla::train
