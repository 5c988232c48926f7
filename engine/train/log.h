// The run log every training command writes: metrics.csv, curves.png and summary.json.
//
//   metrics.csv   one flushed row per record (an epoch, usually) in fixed columns, so a crashed
//                 run keeps every row written before the crash
//   curves.png    panels of named curves, redrawn at each record: each curve is a series of
//                 (x, y) points, fed by the records (a column's curve gets (x, value) per record)
//                 and by point() (finer series, such as a running mean within epochs)
//   summary.json  what the command's --json prints, written once at the end
//
// Everything logged is also kept in memory and returned by state(), so a resumed run restores
// its log (restore() rewrites metrics.csv up to the checkpoint) and its files end up as if the
// run had never stopped.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <nabla/io/image.h>
#include <nabla/io/metrics.h>

namespace nabla::train {

// One row: column name -> value.
using Record = std::map<std::string, double>;

struct Curve {
  std::string key;    // a column name, or a key given to point()
  std::string label;  // the legend entry
  io::Rgb color = io::kBlue;
};

struct CurvePanel {
  std::string title, xlabel, ylabel;
  std::vector<Curve> curves;
};

class RunLog {
 public:
  // requires: columns non-empty and distinct (CsvWriter's rules); dir creatable.
  // ensures: dir/metrics.csv holds the header; no curve drawn yet. Errors name the path.
  RunLog(std::string dir, std::vector<std::string> columns, std::vector<CurvePanel> panels);

  // requires: r holds every column (nabla::Error naming the missing ones otherwise; extra keys
  //   are an error too, so a misspelt column never vanishes silently).
  // ensures: one CSV row; a point (x, r[c]) on column c's curve; the record kept for records();
  //   curves.png redrawn.
  void record(const Record& r, double x);
  // ensures: (x, y) appended to the curve `key` (drawn at the next record() or draw()).
  void point(const std::string& key, double x, double y);
  // ensures: curves.png drawn from every curve with at least one point (panels with none are
  //   left out; nothing is written while every panel is empty).
  void draw() const;
  // ensures: dir/summary.json holds j (atomically).
  void write_summary(const nlohmann::json& j) const;

  // The records so far, as JSON objects in order (what a summary's "per_epoch" holds).
  nlohmann::json records() const;
  // ensures: everything logged, for a run checkpoint.
  nlohmann::json state() const;
  // requires: s from state() of a log with the same columns.
  // ensures: the log holds exactly what it held then; metrics.csv rewritten with those rows and
  //   curves.png redrawn.
  void restore(const nlohmann::json& s);

  const std::string& dir() const { return dir_; }
  const std::vector<std::string>& columns() const { return columns_; }
  std::string csv_path() const;
  std::string curves_path() const;
  std::string summary_path() const;

 private:
  std::string dir_;
  std::vector<std::string> columns_;
  std::vector<CurvePanel> panels_;
  std::unique_ptr<io::CsvWriter> csv_;
  std::vector<Record> records_;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> points_;
};

}  // namespace nabla::train
