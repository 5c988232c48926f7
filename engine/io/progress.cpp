// ProgressBar (see progress.h).
#include <nabla/io/progress.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <nabla/error.h>

namespace nabla::io {

std::string format_clock(double s) {
  const long long t = std::llround(std::max(0.0, s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled, FILE* out)
    : label_(std::move(label)), total_(total), enabled_(enabled), out_(out) {
  NABLA_CHECK(total > 0, "ProgressBar: total must be positive, got ", total);
  tty_ = isatty(fileno(out_)) != 0;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double ProgressBar::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done, const std::string& postfix) {
  if (!enabled_) return;
  done = std::clamp<int64_t>(done, 0, total_);
  if (tty_) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(done, postfix, false);
  } else {
    const int quarter = int(4 * done / total_);
    if (quarter == last_quarter_ || done == total_) return;  // finish() prints the last one
    last_quarter_ = quarter;
    if (done > 0) draw(done, postfix, false);
  }
}

void ProgressBar::finish(const std::string& postfix) {
  if (!enabled_) return;
  draw(total_, postfix, true);
}

void ProgressBar::draw(int64_t done, const std::string& postfix, bool final) {
  constexpr int kWidth = 20;
  const double secs = elapsed();
  const int fill = int(kWidth * done / total_);
  const double eta = done > 0 ? secs * double(total_ - done) / double(done) : 0;
  std::string bar(size_t(fill), '#');
  bar += std::string(size_t(kWidth - fill), '-');
  const int digits = int(std::to_string(total_).size());
  std::fprintf(out_, "%s%s [%s] %*lld/%lld  %s<%s  %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               bar.c_str(), digits, (long long)done, (long long)total_, format_clock(secs).c_str(),
               format_clock(eta).c_str(), postfix.c_str(), (final || !tty_) ? "\n" : "");
  std::fflush(out_);
}

}  // namespace nabla::io
