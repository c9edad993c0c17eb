#pragma once
// The one place numbers become text: log lines, tables, the FLOP breakdown.
//
//   format_value(json(0.123456))            == "0.1235"   // logs: 4 significant digits
//   format_metric("params_total", 729e6)    == "729.0M"   // tables: SI suffix for counts and rates
//   format_metric("forward_ms", 12.3456)    == "12.3"     // tables: 3 significant digits for times
//   format_si(1234567, 3, " ")              == "1.235 M"  // the FLOP breakdown
#include <nlohmann/json.hpp>
#include <string>

namespace megabench {

/// Short text of a JSON value for log lines: integers in full, other numbers with 4 significant
/// digits (std::ostream default notation), strings as they are, null as "", anything else dumped.
std::string format_value(const nlohmann::json& v);

/// The current UTC time as records write it: "2026-12-02T08:51:13Z" (ISO 8601, sorts as text).
std::string utc_now_iso();

/// One printf conversion of one double (`fmt` takes exactly one double, e.g. "%.3f", "%g").
std::string format_double(const char* fmt, double v);

/// v divided by the largest power of 1000 not above |v| (at most 1e18), printed with `decimals`
/// decimals, then `sep` and the suffix K, M, G, T, P or E (none below 1000):
/// format_si(729e6, 1) == "729.0M", format_si(512, 3, " ") == "512.000 ". A value that would print
/// as 1000 of one suffix moves to the next: format_si(999.96e3, 1) == "1.0M". Non-finite: "%g".
std::string format_si(double v, int decimals, const std::string& sep = "");

/// 3 significant digits without exponent for |v| >= 1 ("1235", "12.3", "2.35"), "%.3g" below
/// ("0.00123"), "0" for zero.
std::string format_sig3(double v);

/// Whether a metric name is a time read in ms or s (`..._ms`, `..._s`, `..._ms_...`, not a rate
/// `..._per_s`): such metrics never get an SI suffix.
bool is_time_metric(const std::string& metric);

/// A metric value for a table cell: "–" for null, strings as they are, non-finite with "%g";
/// times with format_sig3; other values with |v| >= 1000 as format_si(v, 1), integers below in
/// full, the rest with format_sig3.
std::string format_metric(const std::string& metric, const nlohmann::ordered_json& value);

}  // namespace megabench
