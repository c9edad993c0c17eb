#include "harness/api/format.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace megabench {

std::string utc_now_iso() {
  char text[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

std::string format_value(const nlohmann::json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    const double x = v.get<double>();
    if (!std::isfinite(x)) return std::to_string(x);
    std::ostringstream os;
    os.precision(4);
    os << x;
    return os.str();
  }
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string format_double(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string format_si(double v, int decimals, const std::string& sep) {
  static const char* kSuffix[] = {"", "K", "M", "G", "T", "P", "E"};
  if (!std::isfinite(v)) return format_double("%g", v);
  const double a = std::fabs(v);
  int k = a < 1000 ? 0 : std::min(6, static_cast<int>(std::floor(std::log10(a) / 3)));
  // What would print as 1000 of this suffix (999.96K at 1 decimal) is 1 of the next.
  const double rounds_up = 1000.0 - 0.5 * std::pow(10.0, -decimals);
  if (k < 6 && a / std::pow(1000.0, k) >= rounds_up) ++k;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v / std::pow(1000.0, k));
  return buf + sep + kSuffix[k];
}

std::string format_sig3(double v) {
  const double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 100) return format_double("%.0f", v);
  if (a >= 10) return format_double("%.1f", v);
  if (a >= 1) return format_double("%.2f", v);
  return format_double("%.3g", v);
}

bool is_time_metric(const std::string& m) {
  auto ends = [&](const std::string& s) {
    return m.size() >= s.size() && m.compare(m.size() - s.size(), s.size(), s) == 0;
  };
  if (ends("_per_s")) return false;
  return ends("_ms") || ends("_s") || m.find("_ms_") != std::string::npos || m == "elapsed_s";
}

std::string format_metric(const std::string& metric, const nlohmann::ordered_json& value) {
  if (value.is_null()) return "–";
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_number()) return value.dump();
  const double v = value.get<double>();
  if (!std::isfinite(v)) return format_double("%g", v);
  if (is_time_metric(metric)) return format_sig3(v);
  if (std::fabs(v) >= 1000) return format_si(v, 1);
  if (v == std::floor(v)) return format_double("%.0f", v);
  return format_sig3(v);
}

}  // namespace megabench
