// CsvWriter and number formatting (see metrics.h).
#include <nabla/io/metrics.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include <nabla/error.h>

namespace nabla::io {

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

CsvWriter::CsvWriter(const std::string& path, std::vector<std::string> columns)
    : path_(path), columns_(std::move(columns)) {
  NABLA_CHECK(!columns_.empty(), "CsvWriter: ", path, ": no columns");
  std::set<std::string> seen;
  for (const std::string& c : columns_) {
    NABLA_CHECK(!c.empty(), "CsvWriter: ", path, ": empty column name");
    NABLA_CHECK(seen.insert(c).second, "CsvWriter: ", path, ": column '", c, "' appears twice");
  }
  f_ = std::fopen(path.c_str(), "w");
  NABLA_CHECK(f_ != nullptr, "CsvWriter: cannot create ", path, ": ", std::strerror(errno));
  std::string header;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i) header += ',';
    header += csv_field(columns_[i]);
  }
  header += '\n';
  std::fputs(header.c_str(), f_);
  NABLA_CHECK(std::fflush(f_) == 0, "CsvWriter: cannot write ", path, ": ", std::strerror(errno));
}

CsvWriter::~CsvWriter() {
  if (f_) std::fclose(f_);
}

CsvWriter::CsvWriter(CsvWriter&& o) noexcept
    : path_(std::move(o.path_)), columns_(std::move(o.columns_)), f_(o.f_) {
  o.f_ = nullptr;
}

CsvWriter& CsvWriter::operator=(CsvWriter&& o) noexcept {
  if (this != &o) {
    if (f_) std::fclose(f_);
    path_ = std::move(o.path_);
    columns_ = std::move(o.columns_);
    f_ = o.f_;
    o.f_ = nullptr;
  }
  return *this;
}

void CsvWriter::row(const std::vector<double>& values) {
  NABLA_CHECK(f_ != nullptr, "CsvWriter::row: ", path_, ": writer was moved from");
  NABLA_CHECK(values.size() == columns_.size(), "CsvWriter::row: ", path_, ": expected ",
              columns_.size(), " values (", columns_.size() == 1 ? columns_[0] : "one per column",
              "), got ", values.size());
  std::string line;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) line += ',';
    line += format_number(values[i]);
  }
  line += '\n';
  std::fputs(line.c_str(), f_);
  NABLA_CHECK(!std::ferror(f_) && std::fflush(f_) == 0, "CsvWriter::row: cannot write ", path_,
              ": ", std::strerror(errno));
}

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  // Integers up to 2^53 are exact in a double: print them whole (epochs, steps, counts).
  if (v == std::round(v) && std::abs(v) < 9007199254740992.0)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char buf[64];
  if (seconds < 1)
    std::snprintf(buf, sizeof buf, "%.2fs", seconds);
  else if (seconds < 59.95)
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  else {
    const long long total = std::llround(seconds);
    const long long h = total / 3600, m = total / 60 % 60, s = total % 60;
    if (h > 0)
      std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", h, m, s);
    else
      std::snprintf(buf, sizeof buf, "%lldm%02llds", m, s);
  }
  return buf;
}

std::string format_count(double n) {
  if (!std::isfinite(n)) return format_number(n);
  static const char* kSuffix[] = {"", "k", "M", "G", "T", "P"};
  double a = std::abs(n);
  int k = 0;
  // Rounding to 3 significant digits can carry into the next unit (999.7k -> 1.00M).
  while (k < 5 && a >= 999.5) a /= 1000, ++k;
  char buf[64];
  const char* sign = n < 0 ? "-" : "";
  if (k == 0)
    std::snprintf(buf, sizeof buf, "%s%.3g", sign, a);
  else
    std::snprintf(buf, sizeof buf, "%s%.*f%s", sign,
                  a < 9.995   ? 2
                  : a < 99.95 ? 1
                              : 0,
                  a, kSuffix[k]);
  return buf;
}

}  // namespace nabla::io
