#include "node/core/hlc.h"

#include <algorithm>

#include "replog/value.h"

namespace replog {

std::string hlc::to_string(uint64_t ts) {
  std::string s = format_iso8601(Time::from_millis(millis(ts)));
  if (logical(ts) != 0) s += "+" + std::to_string(logical(ts));
  return s;
}

uint64_t HybridClock::tick() {
  int64_t wall = std::max<int64_t>(clock_.now_millis(), 0);
  last_ = std::max(hlc::make(wall, 0), last_ + 1);
  return last_;
}

Status HybridClock::observe(uint64_t remote, int64_t max_skew_ms) {
  int64_t wall = clock_.now_millis();
  if (hlc::millis(remote) > wall + max_skew_ms)
    return Status::refused("timestamp " + hlc::to_string(remote) + " is " +
                           std::to_string(hlc::millis(remote) - wall) + " ms ahead of this clock (limit " +
                           std::to_string(max_skew_ms) + " ms)");
  last_ = std::max(last_, remote);
  return Status::ok();
}

}  // namespace replog
