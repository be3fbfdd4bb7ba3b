// engine::SideThread: one job at a time on a thread of its own, for a
// batch's work that can run beside the writer's: signing its heads while its
// commit syncs, hashing its origins' chains (and checking their heads) beside
// the writer, each taking the next origin left, folding it while its puts and its
// commit run. A job the side thread has not begun when the
// caller asks for it is run by the caller: on a busy machine the side thread
// may not be scheduled in time, and then the job costs what it would inline.
// The thread starts with the first job.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace replog::engine {

class SideThread {
 public:
  SideThread() = default;
  SideThread(const SideThread&) = delete;
  SideThread& operator=(const SideThread&) = delete;
  ~SideThread();

  // Hands `job` to the side thread. REQUIRES: the job started last was finished.
  void start(std::function<void()> job);
  // Returns once the job started last has run: on this thread if the side
  // thread has not taken it yet. At once when none was started.
  void finish();

 private:
  enum State : int { kIdle, kPosted, kTaken, kDone };
  void loop();

  std::once_flag started_;
  std::thread thread_;
  std::function<void()> job_;  // handed over by state_: kPosted publishes it, whoever takes it runs it
  std::atomic<int> state_{kIdle};
  std::atomic<uint64_t> posted_{0};  // jobs handed over; the side thread sleeps on it
  std::atomic<bool> stopping_{false};
};

}  // namespace replog::engine
