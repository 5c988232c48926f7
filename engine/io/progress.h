// A terminal progress bar for long loops (training epochs, evaluation):
//
//   epoch 1/3 [###########---------]  512/938  0:09<0:07  loss 0.4312  acc 0.842  3120 img/s
//
// On a terminal it redraws one line in place, at most 10 times a second. When the stream is not
// a terminal (CI logs, pipes) it prints a plain line at every 25% instead, so logs stay short.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace nabla::io {

// "1:05", "1:02:03" for seconds >= 0.
std::string format_clock(double seconds);

class ProgressBar {
 public:
  // requires: total > 0. enabled = false prints nothing (--json runs, quiet tests).
  ProgressBar(std::string label, int64_t total, bool enabled = true, FILE* out = stderr);
  // done in [0, total]; postfix is appended after the counts (loss, rate...).
  void update(int64_t done, const std::string& postfix = "");
  // Draws the final state and ends the line.
  void finish(const std::string& postfix = "");
  double elapsed() const;  // seconds since construction

 private:
  void draw(int64_t done, const std::string& postfix, bool final);

  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_quarter_ = 0;  // non-terminal output: the last quarter printed
};

}  // namespace nabla::io
