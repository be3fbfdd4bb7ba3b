// Trace: every step, fault, call and frame count of a run, folded into a
// BLAKE2b hash as it is written, so two runs of one seed can be compared by
// one printed line. The newest lines are kept to show what led to a failure.
#pragma once

#include <sodium.h>

#include <deque>
#include <string>

namespace replog::sim {

class Trace {
 public:
  explicit Trace(bool echo);
  // Appends one line (no newline in it).
  void line(const std::string& text);
  // 32 hex digits; REQUIRES: called once, at the end.
  std::string hash();
  const std::deque<std::string>& recent() const { return recent_; }
  uint64_t lines() const { return lines_; }

 private:
  static constexpr size_t kRecentLines = 40;
  crypto_generichash_state state_;
  std::deque<std::string> recent_;
  uint64_t lines_ = 0;
  bool echo_;
};

}  // namespace replog::sim
