// HybridClock: hybrid logical clock timestamps (docs/ARCHITECTURE.md "Order").
//
// A timestamp is 64 bits: 48 bits of milliseconds since the Unix epoch, then a
// 16-bit logical counter. tick() returns a timestamp above every timestamp this
// clock has issued or observed, so it never runs backwards, even when the wall
// clock does; a counter overflow carries into the milliseconds, which is how a
// burst "bumps" time. The owner persists high_water() and passes it back on
// restart, so the clock is monotonic across restarts too.
//
// Thread safety: not synchronised; the node's writer thread owns it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "node/core/clock.h"
#include "replog/status.h"

namespace replog {

namespace hlc {
inline constexpr int kLogicalBits = 16;
inline constexpr uint64_t make(int64_t millis, uint16_t logical) {
  return (static_cast<uint64_t>(millis) << kLogicalBits) | logical;
}
inline constexpr int64_t millis(uint64_t ts) { return static_cast<int64_t>(ts >> kLogicalBits); }
inline constexpr uint16_t logical(uint64_t ts) { return static_cast<uint16_t>(ts & 0xffff); }
// "2026-11-25T14:33:07.123Z+5" (ISO-8601 ms, then the logical counter).
std::string to_string(uint64_t ts);
}  // namespace hlc

class HybridClock {
 public:
  HybridClock(const Clock& clock, uint64_t high_water) : clock_(clock), last_(high_water) {}

  // A new timestamp for a local event.
  uint64_t tick();

  // Moves the clock past a timestamp received from elsewhere. Refuses (and
  // leaves the clock alone) one more than max_skew_ms ahead of the wall clock;
  // that refusal is temporary: the same timestamp is accepted once the wall
  // clock has caught up.
  Status observe(uint64_t remote, int64_t max_skew_ms);

  // The highest timestamp observe() accepts now.
  uint64_t ceiling(int64_t max_skew_ms) const;
  // Moves the clock past a timestamp already checked against ceiling().
  void advance_to(uint64_t remote) { last_ = std::max(last_, remote); }

  uint64_t high_water() const { return last_; }

 private:
  const Clock& clock_;
  uint64_t last_;
};

}  // namespace replog
