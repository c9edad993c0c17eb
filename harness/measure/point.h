#pragma once
// Measures one point: walks the metric table (harness/api/metrics.h) in run order and runs each
// metric the point asks for.
//
//   PointRecord r = measure_point(point, calibration, outdir);   // side files under outdir
#include <string>

#include "harness/api/record.h"
#include "harness/config/expand.h"

namespace megabench {

/// Seeds, sets threads, then runs the point's metrics in table order (analytical counts first,
/// training late, the profile -- "profile": true -- last). Never throws: a failure becomes status
/// "failed" with the metrics measured so far. `profile_dir` defaults to "profiles".
/// A "failed" record of `point` with `error` and no measurements: for a point that never
/// reported (its worker process died, ran out of time or memory).
PointRecord failed_record(const Point& point, const std::string& error);

/// `out_dir`: the results folder; profiles/, curves/ and checkpoints/ go under it ("" = ".").
PointRecord measure_point(const Point& point, const json& calibration,
                          const std::string& out_dir = "");

}  // namespace megabench
