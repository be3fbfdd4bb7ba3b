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

uint64_t HybridClock::ceiling(int64_t max_skew_ms) const {
  int64_t limit = clock_.now_millis() + max_skew_ms;
  if (limit < 0) return 0;
  if (limit >= (int64_t{1} << 48)) return UINT64_MAX;
  return hlc::make(limit, 0xffff);
}

Status HybridClock::observe(uint64_t remote, int64_t max_skew_ms) {
  int64_t wall = clock_.now_millis();
  if (remote > ceiling(max_skew_ms))
    return Status::refused("timestamp " + hlc::to_string(remote) + " is " +
                           std::to_string(hlc::millis(remote) - wall) + " ms ahead of this clock (limit " +
                           std::to_string(max_skew_ms) + " ms)");
  last_ = std::max(last_, remote);
  return Status::ok();
}

}  // namespace replog
