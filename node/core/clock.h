// Clock: the wall clock behind an interface, so tests drive time (docs/ARCHITECTURE.md).
//
// Thread safety: now_millis() may be called from any thread.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace replog {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. May jump backwards (NTP, a person).
  virtual int64_t now_millis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_millis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  int64_t now_millis() const override { return now_.load(); }
  void set(int64_t ms) { now_.store(ms); }
  void advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// CPU time of the calling thread, in ns (what a thread spent, not how long it took).
inline int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace replog
