// The run log (see log.h).
#include <nabla/train/log.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include <nabla/error.h>
#include <nabla/io/plot.h>
#include <nabla/io/safetensors.h>

namespace nabla::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// JSON has no NaN or infinity: a non-finite value is stored as null (and comes back as NaN; the
// curves draw it as a gap either way).
json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
double number(const json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}
std::vector<double> numbers(const json& j) {
  std::vector<double> out;
  for (const json& v : j) out.push_back(number(v));
  return out;
}
json numbers(const std::vector<double>& v) {
  json out = json::array();
  for (double x : v) out.push_back(number(x));
  return out;
}

}  // namespace

RunLog::RunLog(std::string dir, std::vector<std::string> columns, std::vector<CurvePanel> panels)
    : dir_(std::move(dir)), columns_(std::move(columns)), panels_(std::move(panels)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  NABLA_CHECK(!ec, "RunLog: cannot create ", dir_, ": ", ec.message());
  csv_ = std::make_unique<io::CsvWriter>(csv_path(), columns_);
}

std::string RunLog::csv_path() const {
  return (fs::path(dir_) / "metrics.csv").string();
}
std::string RunLog::curves_path() const {
  return (fs::path(dir_) / "curves.png").string();
}
std::string RunLog::summary_path() const {
  return (fs::path(dir_) / "summary.json").string();
}

void RunLog::record(const Record& r, double x) {
  std::string missing, extra;
  std::vector<double> row;
  for (const auto& c : columns_) {
    auto it = r.find(c);
    if (it == r.end())
      missing += (missing.empty() ? "" : ", ") + c;
    else
      row.push_back(it->second);
  }
  for (const auto& [k, _] : r)
    if (std::find(columns_.begin(), columns_.end(), k) == columns_.end())
      extra += (extra.empty() ? "" : ", ") + k;
  NABLA_CHECK(missing.empty() && extra.empty(), "RunLog::record (", csv_path(),
              "): ", missing.empty() ? "" : "missing columns: " + missing,
              !missing.empty() && !extra.empty() ? "; " : "",
              extra.empty() ? "" : "unknown columns: " + extra);
  csv_->row(row);
  records_.push_back(r);
  for (const auto& [k, v] : r) point(k, x, v);
  draw();
}

void RunLog::point(const std::string& key, double x, double y) {
  auto& [xs, ys] = points_[key];
  xs.push_back(x);
  ys.push_back(y);
}

void RunLog::draw() const {
  std::vector<io::PlotPanel> panels;
  for (const CurvePanel& p : panels_) {
    io::PlotPanel out{p.title, p.xlabel, p.ylabel, {}};
    for (const Curve& c : p.curves) {
      auto it = points_.find(c.key);
      if (it == points_.end() || it->second.first.empty()) continue;
      out.series.push_back({c.label, it->second.first, it->second.second, c.color});
    }
    if (!out.series.empty()) panels.push_back(std::move(out));
  }
  if (!panels.empty()) io::save_plot(curves_path(), panels);
}

void RunLog::write_summary(const json& j) const {
  const std::string text = j.dump(2) + "\n";
  io::write_file_atomic(summary_path(), "RunLog::write_summary",
                        [&](std::FILE* f) { std::fwrite(text.data(), 1, text.size(), f); });
}

json RunLog::records() const {
  json out = json::array();
  for (const Record& r : records_) {
    json o = json::object();
    for (const auto& c : columns_) o[c] = number(r.at(c));
    out.push_back(o);
  }
  return out;
}

json RunLog::state() const {
  json points = json::object();
  for (const auto& [k, xy] : points_) points[k] = {numbers(xy.first), numbers(xy.second)};
  return {{"columns", columns_}, {"records", records()}, {"points", points}};
}

void RunLog::restore(const json& s) {
  try {
    NABLA_CHECK(s.at("columns").get<std::vector<std::string>>() == columns_,
                "RunLog::restore: the saved log has columns ", s.at("columns").dump(),
                ", this run logs ", json(columns_).dump());
    records_.clear();
    points_.clear();
    csv_ = std::make_unique<io::CsvWriter>(csv_path(), columns_);
    for (const json& r : s.at("records")) {
      Record rec;
      std::vector<double> row;
      for (const auto& c : columns_) {
        rec[c] = number(r.at(c));
        row.push_back(rec[c]);
      }
      csv_->row(row);
      records_.push_back(std::move(rec));
    }
    for (const auto& [k, xy] : s.at("points").items())
      points_[k] = {numbers(xy.at(0)), numbers(xy.at(1))};
  } catch (const json::exception& e) {
    throw Error(std::string("RunLog::restore (") + dir_ + "): malformed saved log: " + e.what());
  }
  draw();
}

}  // namespace nabla::train
