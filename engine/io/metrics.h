// Metrics logs: a CSV file that gains one flushed row per step or epoch, so a run that crashes
// keeps every row written before the crash; plus human-readable durations and counts.
//
//   epoch,train_loss,test_acc
//   1,0.5123456,0.8421
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace nabla::io {

class CsvWriter {
 public:
  // requires: at least one column, no empty or duplicate column name.
  // ensures: `path` is created (or truncated) and holds the header line, flushed. Names with a
  //   comma, quote or newline are quoted as RFC 4180 says. Throws nabla::Error naming the path
  //   when the file cannot be created.
  CsvWriter(const std::string& path, std::vector<std::string> columns);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  CsvWriter(CsvWriter&& o) noexcept;
  CsvWriter& operator=(CsvWriter&& o) noexcept;

  // requires: one value per column.
  // ensures: one line appended and flushed to the OS; integers print without a fraction ("12"),
  //   other values with 8 significant digits ("0.51234567", "1.5e-07"), NaN as "nan", infinities
  //   as "inf" / "-inf". Throws nabla::Error naming the path and both sizes otherwise.
  void row(const std::vector<double>& values);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::FILE* f_ = nullptr;
};

// One CSV field for a number, as CsvWriter::row prints it.
std::string format_number(double v);
// "0.42s", "9.8s", "1m05s", "2h03m07s"; "?" for a negative or non-finite duration (an ETA
// before the first step).
std::string format_duration(double seconds);
// Counts with a metric suffix and 3 significant digits: "950", "1.23k", "45.6M", "7.00G".
std::string format_count(double n);

}  // namespace nabla::io
